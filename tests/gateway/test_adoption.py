"""Which live turn a reconnecting LocalChatVRM socket adopts."""

from __future__ import annotations

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


def test_two_sessions_with_the_same_words_each_get_a_turn() -> None:
    """Two sessions of one address type the same message at once (two tabs; the bench's
    load over fakes that answer everyone alike). Each reconnects with the same history
    before the server has seen either old socket close. The second reconnect used to
    adopt the turn the first had just taken, and the other turn was orphaned."""
    url = ["http://127.0.0.1:9"]
    hub = Hub(GatewaySettings(asr_urls=url, llm_urls=url, tts_urls=url))
    old_sockets = [Socket(), Socket()]
    for old in old_sockets:
        turn = Turn(Conversation(), hub.upstreams, text="やあ")
        turn.client = "127.0.0.1"
        turn.sent_user = True
        turn.attach(old)
        turn.expect_reconnect(old)
        hub.turns.add(turn)
    history = [{"role": "user", "content": "やあ"}]
    adopted = []
    for _ in old_sockets:
        turn = hub.adoptable(history, "127.0.0.1")
        assert turn is not None
        new = Socket()
        # what Session._start_session does with the turn it found
        if turn.connection is not None:
            turn.detach(turn.connection)
        turn.attach(new)
        adopted.append(turn)
    assert adopted[0] is not adopted[1]
    assert not any(t.awaiting_reconnect for t in adopted)
