"""What all connections share: settings, the VAD model, upstream clients, live turns, metrics."""

from __future__ import annotations

import re
from collections import Counter

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client import Counter as PromCounter

from services.common.vad import SileroVAD

from .clients import Upstreams
from .settings import GatewaySettings
from .turn import Turn
from .vad import TurnParams
from .vad_batcher import VADBatcher

_VOICE_NAME = re.compile(r"^[\w\-]{1,64}$")
_LATENCY_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8, 13, 20, 30)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.sessions = Gauge("koe_sessions", "Open WebSocket connections", registry=r)
        self.turns = PromCounter("koe_turns", "Turns started", ["kind"], registry=r)
        self.interrupted = PromCounter("koe_turns_interrupted", "Turns cut by barge-in", registry=r)
        self.errors = PromCounter("koe_turn_errors", "Turns that failed", ["stage"], registry=r)
        self.speculations = PromCounter(
            "koe_speculative_asr",
            "Transcriptions started before the turn's end: used, or dropped as speech resumed",
            ["outcome"],
            registry=r,
        )
        self.early_replies = PromCounter(
            "koe_speculative_reply",
            "Replies whose LLM stream started during the end-of-turn wait: used, or dropped",
            ["outcome"],
            registry=r,
        )
        self.latency = Histogram(
            "koe_turn_latency_seconds",
            "From end of user speech (or a typed message) to each milestone",
            ["milestone"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )


class Hub:
    def __init__(self, settings: GatewaySettings, upstreams: Upstreams | None = None) -> None:
        self.settings = settings
        self.vad = SileroVAD()
        # One worker runs the VAD frames of all /ws and /v1/realtime connections, batched,
        # off the event loop; started and stopped by the app's lifespan.
        self.vad_batcher = VADBatcher(self.vad)
        self.turn_params = TurnParams(
            threshold=settings.vad_threshold,
            speech_start_ms=settings.speech_start_ms,
            silence_end_ms=settings.silence_end_ms,
            pre_roll_ms=settings.pre_roll_ms,
            barge_in_ms=settings.barge_in_ms,
            max_utterance_s=settings.max_utterance_s,
            pause_ms=settings.speculative_asr_ms,
        )
        self.upstreams = upstreams or Upstreams(settings)
        self.turns: set[Turn] = set()
        self.clients: Counter[str] = Counter()
        self.metrics = Metrics()

    def voice(self, requested: str | None) -> str | None:
        """A client's voice name is passed on only if it looks like a name; the TTS
        service checks it against its own list (never a path)."""
        if requested and _VOICE_NAME.match(requested):
            return requested
        return self.settings.voice

    def adoptable(self, history: list[dict[str, str]], client: str) -> Turn | None:
        """The live turn a reconnecting client's history points at: one still waiting for
        its client to reconnect first, then detached ones.

        Only turns started from the same address qualify: two users who say the same
        words at the same moment must not receive each other's replies. Two sessions of
        one address with the same history (two tabs, a load test) are told apart by
        which turn is at the stage the history shows and still waiting: the second
        reconnect then takes the other turn instead of the one the first just adopted,
        which left a turn orphaned."""
        candidates = [
            t for t in self.turns if not t.finished and t.client == client and t.matches(history)
        ]
        # A client that has seen the reply's text reconnects with it; one that has not, without.
        seen_reply = bool(history) and history[-1]["role"] == "assistant"
        candidates.sort(
            key=lambda t: (
                t.sent_assistant != seen_reply,  # the turn is at the stage the history shows
                not t.awaiting_reconnect,
                t.connection is not None,
                t.metrics.start,
            )
        )
        return candidates[0] if candidates else None

    def turn_done(self, turn: Turn) -> None:
        self.turns.discard(turn)
        m = turn.metrics
        self.metrics.turns.labels("speech" if turn.audio is not None else "text").inc()
        if turn.interrupted:
            self.metrics.interrupted.inc()
        if turn.error_stage:
            self.metrics.errors.labels(turn.error_stage).inc()
        for name in ("transcript", "first_token", "first_audio", "total"):
            t = getattr(m, name)
            if t is not None:
                self.metrics.latency.labels(name).observe(t - m.start)
