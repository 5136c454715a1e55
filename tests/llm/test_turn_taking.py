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


def _run(turns: TurnTaking, done: dict[str, threading.Event]) -> None:
    for event in done.values():
        assert event.wait(5)
    assert len(turns) == 0


def _advance(log: list[str], arrive: dict[tuple[str, int], Reply], turns: list[TurnTaking]):  # type: ignore[no-untyped-def]
    """A fake model step: logs whose turn it was; after ``(name, n)``'s n-th token the reply
    in ``arrive`` comes in."""

    def advance(reply: Reply) -> bool:
        name = "".join(map(chr, reply.ids))
        log.append(name)
        reply.generated.append(0)
        if (came := arrive.pop((name, len(reply.generated)), None)) is not None:
            turns[0].add(came)
        over = len(reply.generated) >= reply.params.max_tokens
        if over:
            reply.finished()
        return over

    return advance


def test_short_replies_go_one_after_the_other_as_if_alone() -> None:
    log: list[str] = []
    done = {name: threading.Event() for name in "ab"}
    arrive = {("a", 1): _reply("b", 3, log, done["b"])}
    holder: list[TurnTaking] = []
    turns = TurnTaking(_advance(log, arrive, holder), "test-turns", head_start=4)
    holder.append(turns)
    turns.add(_reply("a", 3, log, done["a"]))
    _run(turns, done)
    assert log == ["a", "a", "a", "b", "b", "b"]


def test_a_newcomer_has_its_head_start_then_the_replies_take_turns() -> None:
    """A reply past its head start waits while a newcomer writes its first tokens."""
    log: list[str] = []
    done = {name: threading.Event() for name in "abc"}
    arrive = {
        ("a", 3): _reply("b", 4, log, done["b"]),
        ("b", 1): _reply("c", 3, log, done["c"]),
    }
    holder: list[TurnTaking] = []
    turns = TurnTaking(_advance(log, arrive, holder), "test-turns", head_start=2)
    holder.append(turns)
    turns.add(_reply("a", 6, log, done["a"]))
    _run(turns, done)
    # "a" alone; "b" comes and has its 2 tokens, "c" (come meanwhile) its 2, then in turn
    assert log == ["a", "a", "a", "b", "b", "c", "c", "a", "b", "c", "a", "b", "a"]


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
