"""Which live turn a reconnecting LocalChatVRM socket adopts."""

from __future__ import annotations

import pytest

from gateway.conversation import Conversation
from gateway.events import TurnEvent
from gateway.hub import Hub
from gateway.settings import GatewaySettings
from gateway.turn import Turn


class Socket:
    """A listener that is never written to: only attachment is under test."""

    closed = False

    async def deliver(self, event: TurnEvent) -> bool:
        return True

    def notify(self, event: TurnEvent) -> None:
        pass


def waiting_turns(n: int, wait_ran_out: bool = False) -> tuple[Hub, list[Turn]]:
    """``n`` turns of one address for the same typed message, each having told its
    client to reconnect (LocalChatVRM does at once after userMessage)."""
    url = ["http://127.0.0.1:9"]
    hub = Hub(GatewaySettings(asr_urls=url, llm_urls=url, tts_urls=url))
    turns = []
    for _ in range(n):
        turn = Turn(Conversation(), hub.upstreams, text="やあ")
        turn.client = "127.0.0.1"
        turn.sent_user = True
        turn.attach(old := Socket())
        turn.expect_reconnect(old)
        if wait_ran_out:
            turn._handover_from = None  # what Turn._handover does when its wait times out
        hub.turns.add(turn)
        turns.append(turn)
    return hub, turns


@pytest.mark.parametrize("wait_ran_out", [False, True])
def test_two_sessions_with_the_same_words_each_get_a_turn(wait_ran_out: bool) -> None:
    """Two sessions of one address type the same message at once (two tabs; the bench's
    load over fakes that answer everyone alike). Each reconnects with the same history
    before the server has seen either old socket close. The second reconnect used to
    adopt the turn the first had just taken, and the other turn was orphaned. The same
    holds after the turns' wait for a reconnect ran out (a slow client)."""
    hub, turns = waiting_turns(2, wait_ran_out)
    history = [{"role": "user", "content": "やあ"}]
    adopted = []
    for _ in turns:
        turn = hub.adoptable(history, "127.0.0.1")
        assert turn is not None
        turn.adopt(Socket())  # as Session._start_session does with the turn it found
        adopted.append(turn)
    assert adopted[0] is not adopted[1]
    assert not any(t.awaiting_reconnect for t in adopted)


def test_a_reconnect_after_the_transcript_takes_the_turn_that_has_not_sent_its_reply() -> None:
    """Of two such turns, one has sent its reply text to its (new) socket; the other
    client now reconnects with only the transcript in its log: it must get the turn
    that has not sent the text yet, or it never sees the reply text and the other
    client's turn loses its socket."""
    hub, (ahead, behind) = waiting_turns(2)
    ahead.sent_assistant = True  # delivered on the socket it is attached to, which will go
    ahead.reply = "こんにちは。"
    assert hub.adoptable([{"role": "user", "content": "やあ"}], "127.0.0.1") is behind
    history = [
        {"role": "user", "content": "やあ"},
        {"role": "assistant", "content": "こんにちは。"},
    ]
    assert hub.adoptable(history, "127.0.0.1") is ahead
