"""Replies taking turns on one model thread: who goes when (no model needed)."""

from __future__ import annotations

import threading

from services.llm.engine import GenerationParams
from services.llm.turn_taking import Reply, TurnTaking


def _reply(name: str, tokens: int, log: list[str], done: threading.Event) -> Reply:
    params = GenerationParams(max_tokens=tokens, temperature=0.0, top_p=1.0)
    reply = Reply([], params, None, lambda item: None, done.set)  # type: ignore[arg-type]
    reply.ids = [ord(c) for c in name]  # which reply a turn belongs to, for the log
    return reply


def test_a_new_reply_goes_first_then_each_takes_a_turn() -> None:
    log: list[str] = []
    gate, entered = threading.Event(), threading.Event()
    done = {name: threading.Event() for name in "abc"}

    def advance(reply: Reply) -> bool:
        entered.set()
        gate.wait(5)
        name = "".join(map(chr, reply.ids))
        log.append(name)
        reply.generated.append(0)
        over = len(reply.generated) >= reply.params.max_tokens
        if over:
            reply.finished()
        return over

    turns = TurnTaking(advance, "test-turns")
    turns.add(_reply("a", 4, log, done["a"]))
    # "a" is in its first turn, held at the gate; "b" and "c" arrive meanwhile
    assert entered.wait(5)
    turns.add(_reply("b", 2, log, done["b"]))
    turns.add(_reply("c", 2, log, done["c"]))
    gate.set()
    for event in done.values():
        assert event.wait(5)
    # the newest first ("c" then "b"), then round robin until each has its tokens
    assert log == ["a", "c", "b", "a", "c", "b", "a", "a"]
    assert len(turns) == 0


def test_a_reply_that_fails_ends_alone() -> None:
    finished: list[str] = []

    def advance(reply: Reply) -> bool:
        name = "".join(map(chr, reply.ids))
        if name == "bad":
            finished.append(name)  # the engine reports its error and ends it
            reply.finished()
            return True
        reply.generated.append(0)
        if len(reply.generated) == 3:
            finished.append(name)
            reply.finished()
            return True
        return False

    turns = TurnTaking(advance, "test-turns")
    events = {name: threading.Event() for name in ("ok", "bad")}
    for name, event in events.items():
        turns.add(_reply(name, 3, [], event))
    assert all(e.wait(5) for e in events.values())
    assert sorted(finished) == ["bad", "ok"]
