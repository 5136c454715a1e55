"""Replies taking turns on one model thread: who goes when (no model needed)."""

from __future__ import annotations

import threading

from services.llm.engine import GenerationParams
from services.llm.turn_taking import Reply, TurnTaking


def _reply(name: str, tokens: int, done: threading.Event) -> Reply:
    """A reply that writes ``tokens`` tokens; its prompt spells its name, for the log."""
    params = GenerationParams(max_tokens=tokens, temperature=0.0, top_p=1.0)
    return Reply([ord(c) for c in name], params, None, lambda item: None, done.set)  # type: ignore[arg-type]


def _name(reply: Reply) -> str:
    return "".join(map(chr, reply.ids))


class FakeModel:
    """Logs whose turn each step was; after ``(name, n)``'s n-th token the reply in
    ``arrivals`` comes in."""

    def __init__(self, arrivals: dict[tuple[str, int], Reply], head_start: int) -> None:
        self.log: list[str] = []
        self.arrivals = arrivals
        self.turns = TurnTaking(self.advance, "test-turns", head_start=head_start)

    def advance(self, reply: Reply) -> bool:
        self.log.append(_name(reply))
        reply.generated.append(0)
        if (came := self.arrivals.pop((_name(reply), len(reply.generated)), None)) is not None:
            self.turns.add(came)
        over = len(reply.generated) >= reply.params.max_tokens
        if over:
            reply.finished()
        return over

    def run(self, first: Reply, done: dict[str, threading.Event]) -> list[str]:
        self.turns.add(first)
        for event in done.values():
            assert event.wait(5)
        assert len(self.turns) == 0
        return self.log


def test_short_replies_go_one_after_the_other_as_if_alone() -> None:
    done = {name: threading.Event() for name in "ab"}
    model = FakeModel({("a", 1): _reply("b", 3, done["b"])}, head_start=4)
    assert model.run(_reply("a", 3, done["a"]), done) == ["a", "a", "a", "b", "b", "b"]


def test_a_newcomer_has_its_head_start_then_the_replies_take_turns() -> None:
    """A reply past its head start waits while a newcomer writes its first tokens."""
    done = {name: threading.Event() for name in "abc"}
    arrivals = {("a", 3): _reply("b", 4, done["b"]), ("b", 1): _reply("c", 3, done["c"])}
    model = FakeModel(arrivals, head_start=2)
    log = model.run(_reply("a", 6, done["a"]), done)
    # "a" alone; "b" comes and has its 2 tokens, "c" (come meanwhile) its 2, then in turn
    assert log == ["a", "a", "a", "b", "b", "c", "c", "a", "b", "c", "a", "b", "a"]


def test_a_reply_that_fails_ends_alone() -> None:
    finished: list[str] = []

    def advance(reply: Reply) -> bool:
        if _name(reply) == "bad":
            finished.append("bad")  # the engine reports its error and ends it
            reply.finished()
            return True
        reply.generated.append(0)
        if len(reply.generated) == 3:
            finished.append(_name(reply))
            reply.finished()
            return True
        return False

    turns = TurnTaking(advance, "test-turns")
    events = {name: threading.Event() for name in ("ok", "bad")}
    for name, event in events.items():
        turns.add(_reply(name, 3, event))
    assert all(e.wait(5) for e in events.values())
    assert sorted(finished) == ["bad", "ok"]
