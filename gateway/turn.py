"""A turn: ASR, the LLM stream, TTS per sentence, and paced delivery to whoever listens.

A turn is not owned by a socket. The real client closes its socket and opens
a new one several times per turn, so the turn publishes its events to the
connection attached *now*, holds them while none is, and is adopted by the
next connection whose history matches it. Its pacing clock (when the last
WAV ends at the client) lives here too, so a reconnect does not make two
WAVs overlap. Cancelling the turn closes its LLM stream: generation stops
upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from services.common.language import detect_language

from .audio import wav_duration
from .clients import UpstreamError, Upstreams
from .conversation import Conversation, same_text
from .events import TurnEvent
from .speculation import transcribe
from .splitter import SentenceSplitter

if TYPE_CHECKING:
    from .settings import GatewaySettings

logger = logging.getLogger(__name__)

# While less audio than this is left to play (and nothing is being synthesized), the
# next piece of the reply may end at a clause instead of a full stop: about what one
# piece takes to synthesize with the embedded Japanese voice.
HUNGRY_S = 1.0


class Listener(Protocol):
    """Whatever a turn publishes to: a LocalChatVRM socket, a Realtime API response."""

    @property
    def closed(self) -> bool: ...

    async def deliver(self, event: TurnEvent) -> bool:
        """Send and wait until written; False if the listener is gone."""
        ...

    def notify(self, event: TurnEvent) -> None:
        """Send without waiting (no delivery guarantee)."""
        ...


class Orphaned(Exception):
    """No connection adopted the turn within the grace period."""


@dataclass
class Outgoing:
    event: TurnEvent
    audio_s: float = 0.0  # > 0: a WAV, paced
    marks: tuple[str, ...] = ()  # what the client knows once this is sent


@dataclass
class TurnMetrics:
    start: float = field(default_factory=time.perf_counter)
    transcript: float | None = None
    first_token: float | None = None
    first_audio: float | None = None
    total: float | None = None

    def mark(self, name: str) -> None:
        if getattr(self, name) is None:
            setattr(self, name, time.perf_counter())

    def restart(self) -> None:
        """Count from now; what was reached before (a held turn's transcript and first
        tokens, during the end-of-turn wait) counts as reached at the start."""
        self.start = time.perf_counter()
        for name in ("transcript", "first_token", "first_audio", "total"):
            if getattr(self, name) is not None:
                setattr(self, name, self.start)

    def as_event(self) -> dict[str, float | None]:
        def ms(t: float | None) -> float | None:
            return None if t is None else round((t - self.start) * 1000, 1)

        return {
            "transcriptMs": ms(self.transcript),
            "firstTokenMs": ms(self.first_token),
            "firstAudioMs": ms(self.first_audio),
            "totalMs": ms(self.total),
        }


class Turn:
    def __init__(
        self,
        conversation: Conversation,
        upstreams: Upstreams,
        *,
        audio: bytes | None = None,
        text: str | None = None,
        transcript: asyncio.Future[str] | None = None,
        language: str = "ja",
        max_tokens: int = 160,
        first_clause_chars: int = 0,
        fast_tts_s: float = 0.0,
        speculative_tts_s: float = 0.0,
        grace_s: float = 10.0,
        reconnect_wait_s: float = 0.5,
        on_done: Callable[[Turn], Awaitable[None] | None] | None = None,
        held: bool = False,
    ) -> None:
        self.conversation = conversation
        self.upstreams = upstreams
        self.audio = audio
        # The audio's transcription, if it was started before the turn (speculative ASR).
        self._transcript = transcript
        self.user_text = text or ""
        self.language = language
        self.max_tokens = max_tokens
        self.first_clause_chars = first_clause_chars
        self.fast_tts_s = fast_tts_s
        self.speculative_tts_s = speculative_tts_s
        self.grace_s = grace_s
        self.reconnect_wait_s = reconnect_wait_s
        self.on_done = on_done
        self.reply = ""
        self.spoken: list[str] = []
        self.sent_user = False
        self.sent_assistant = False
        self.interrupted = False
        self.finished = False
        self.error_stage: str | None = None
        self.client = ""  # address of the connection that started it (adoption is per client)
        self.play_until = 0.0
        self._pending_audio_s = 0.0  # WAVs made but not yet sent (pacing holds them)
        self._synthesizing = False
        self.metrics = TurnMetrics()
        self._outbox: asyncio.Queue[Outgoing | None] = asyncio.Queue()
        self._attached: Listener | None = None
        self._attached_event = asyncio.Event()
        self._moved = asyncio.Event()  # set when a different connection attaches
        # The connection that was just sent (or sent us) something LocalChatVRM answers
        # by reconnecting: the next events wait for the new socket instead of this one.
        self._handover_from: Listener | None = None
        # The connection that got (or sent) the last such event; unlike _handover_from it
        # is not cleared when the wait for a reconnect gives up.
        self._last_marked: Listener | None = None
        self._tasks: list[asyncio.Task[None]] = []
        # Held (see commit): the reply is being written, but nothing is said or sent yet.
        self._go = asyncio.Event()
        if not held:
            self._go.set()
        self.asked: list[dict[str, str]] | None = None  # the messages the LLM was sent

    @classmethod
    def configured(
        cls,
        conversation: Conversation,
        upstreams: Upstreams,
        settings: GatewaySettings,
        *,
        audio: bytes | None = None,
        text: str | None = None,
        transcript: asyncio.Future[str] | None = None,
        max_tokens: int | None = None,
        on_done: Callable[[Turn], Awaitable[None] | None] | None = None,
        held: bool = False,
    ) -> Turn:
        """A turn of ``conversation`` as the gateway's settings say (``max_tokens``: a
        lower limit than theirs)."""
        s = settings
        return cls(
            conversation,
            upstreams,
            audio=audio,
            text=text,
            transcript=transcript,
            language=conversation.language,
            max_tokens=s.max_tokens if max_tokens is None else min(max_tokens, s.max_tokens),
            first_clause_chars=s.first_clause_chars,
            fast_tts_s=s.fast_tts_ms / 1000,
            speculative_tts_s=s.speculative_tts_ms / 1000,
            grace_s=s.adopt_grace_s,
            reconnect_wait_s=s.reconnect_wait_s,
            on_done=on_done,
            held=held,
        )

    # -- attachment -------------------------------------------------------
    def attach(self, conn: Listener) -> None:
        if self._attached is not None and self._attached is not conn:
            self._moved.set()
        if self._handover_from is not None and conn is not self._handover_from:
            self._moved.set()
        self._attached = conn
        self._attached_event.set()

    def adopt(self, conn: Listener) -> None:
        """``conn`` (a client's new socket) takes the turn over from the one that has it."""
        old = self._attached
        if old is not None and old is not conn:
            self.detach(old)
        self.attach(conn)

    def expect_reconnect(self, conn: Listener) -> None:
        """``conn`` will probably be closed by the client soon (it sent userMessage)."""
        self._handover_from = self._last_marked = conn

    def detach(self, conn: Listener) -> None:
        if self._attached is conn:
            self._attached = None
            self._attached_event.clear()

    @property
    def connection(self) -> Listener | None:
        return self._attached

    @property
    def awaiting_reconnect(self) -> bool:
        """The client was sent (or sent) something it answers by reconnecting, and no new
        connection has adopted the turn since."""
        old = self._last_marked
        return old is not None and self._attached in (None, old)

    def matches(self, history: list[dict[str, str]]) -> bool:
        """Whether a new connection's history ends where this turn stands."""
        if not self.sent_user or not history:
            return False
        last = history[-1]
        if last["role"] == "user":
            return same_text(last["content"], self.user_text)
        if last["role"] == "assistant" and len(history) >= 2:
            prev = history[-2]
            return (
                self.sent_assistant
                and same_text(last["content"], self.reply)
                and prev["role"] == "user"
                and same_text(prev["content"], self.user_text)
            )
        return False

    @property
    def live(self) -> bool:
        """Still producing, or its audio still playing at the client."""
        return not self.finished or time.monotonic() < self.play_until

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._produce(), name="turn-produce"),
            asyncio.create_task(self._deliver(), name="turn-deliver"),
        ]

    @property
    def held(self) -> bool:
        return not self._go.is_set()

    def commit(self) -> None:
        """The user's turn has ended: a held turn (started during the end-of-turn wait, see
        :mod:`gateway.speculation`) goes ahead: its events, and its
        synthesis unless its voice is fast enough to have begun (see _may_synthesize),
        which were waiting. Its metrics count from now."""
        if self.held:
            self.metrics.restart()
            self._go.set()

    def still_current(self) -> bool:
        """Whether the LLM (if it was asked yet) was asked what it would be asked now: the
        conversation has not moved on since this held turn started."""
        return self.asked is None or self.asked == self.conversation.llm_messages(self.user_text)

    def discard(self) -> None:
        """Drop a held turn: the user spoke on. Closing its LLM stream stops generation
        upstream; nothing was sent or recorded (only a fast voice synthesized anything)."""
        if self._transcript is not None:
            self._transcript.cancel()  # the turn's view of it (see SpeculativeASR.hold)
        for task in self._tasks:
            task.cancel()

    async def cancel(self) -> None:
        if self._transcript is not None:
            self._transcript.cancel()  # not awaited yet if _produce never ran
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if not self.finished:
            # A task cancelled before its first step never runs its body, so the finally of
            # _deliver did not run either: without this the hub would keep the turn forever.
            await self._done()

    async def interrupt(self) -> None:
        """Barge-in: stop everything, tell the client, keep only what was spoken."""
        if self.interrupted or not self.live:
            return
        self.interrupted = True
        await self.cancel()
        spoken = "".join(self.spoken)
        self.conversation.record(self.user_text, spoken)
        self.finished = True
        self.play_until = 0.0
        conn = self._attached
        if conn is not None:
            conn.notify(TurnEvent("interrupted", spoken))
        logger.info("turn interrupted; spoken so far: %r", spoken[:60])

    def _put(self, item: Outgoing) -> None:
        self._pending_audio_s += item.audio_s
        self._outbox.put_nowait(item)

    def _clause_chars(self) -> int:
        """How long a piece must be before a clause may end it: any length when the voice
        reading this reply has been fast (the next piece is ready in time), otherwise
        first_clause_chars."""
        if not self.first_clause_chars:
            return 0
        return (
            1 if self._voice_faster_than(self.fast_tts_s, self.reply) else self.first_clause_chars
        )

    def _voice_faster_than(self, limit_s: float, text: str) -> bool:
        """Whether the voice reading ``text`` has been synthesizing a piece in under ``limit_s``."""
        language = detect_language(text, self.language)
        seconds = self.upstreams.synthesis_pace.seconds(self.conversation.voice, language)
        return seconds is not None and seconds < limit_s

    async def _may_synthesize(self, text: str) -> None:
        """Wait, in a held turn, until it is committed, unless its voice is fast: a TTS
        request cannot be called back once sent (the service finishes it), so only a voice
        that wastes little on a dropped reply (speculative_tts_s) synthesizes before."""
        if self.held and not self._voice_faster_than(self.speculative_tts_s, text):
            await self._go.wait()

    def _hungry(self, sentences: asyncio.Queue[str | None]) -> bool:
        """Whether the client will soon have nothing to play: no piece waits for or is in
        synthesis, and what was made (sent or held by pacing) ends within HUNGRY_S."""
        if self._synthesizing or not sentences.empty():
            return False
        left = max(0.0, self.play_until - time.monotonic()) + self._pending_audio_s
        return left < HUNGRY_S

    # -- production: ASR -> LLM -> sentences -> TTS --------------------------
    async def _produce(self) -> None:
        try:
            if self.audio is not None:
                self.user_text = await self._transcribe(self.audio)
                self.metrics.mark("transcript")
                if not self.user_text.strip():
                    logger.info("no speech recognised; turn dropped")
                    return
                self._put(Outgoing(TurnEvent("transcript", self.user_text), marks=("user",)))
            else:
                self.sent_user = True  # typed: the client already shows it
            await self._reply()
        except UpstreamError as exc:
            logger.warning("turn failed at %s: %s", exc.stage, exc.message)
            self.error_stage = exc.stage
            self._put(Outgoing(TurnEvent("error", exc.message, stage=exc.stage)))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug of ours must not kill the session
            logger.exception("turn failed")
            self.error_stage = "gateway"
            self._put(Outgoing(TurnEvent("error", str(exc) or "internal error", stage="gateway")))
        finally:
            self._put_metrics_and_end()

    async def _transcribe(self, audio: bytes) -> str:
        """The transcript: the one started at the pause if there is one (speculative ASR)."""
        return await transcribe(self.upstreams, audio, self.language, self._transcript)

    async def _reply(self) -> None:
        if self.conversation.one_wav:
            await self._reply_whole()
        else:
            await self._reply_streaming()

    async def _llm(self) -> AsyncGenerator[str, None]:
        """The reply's text pieces; closing this closes the HTTP stream, which stops the LLM."""
        messages = self.asked = self.conversation.llm_messages(self.user_text)
        stream = self.upstreams.chat_stream(messages, self.max_tokens)
        try:
            async for delta in stream:
                self.metrics.mark("first_token")
                self.reply += delta
                yield delta
        finally:
            await stream.aclose()

    async def _reply_whole(self) -> None:
        """The old, sequential behaviour: whole reply, one TTS call, one WAV."""
        async for _ in self._llm():
            pass
        self.reply = self.reply.strip()
        self._put(Outgoing(TurnEvent("message", self.reply), marks=("assistant",)))
        if self.reply:
            await self._may_synthesize(self.reply)
            wav = await self.upstreams.synthesize(self.reply, self.conversation.voice)
            self._put(Outgoing(TurnEvent("audio", self.reply, wav), wav_duration(wav)))

    async def _reply_streaming(self) -> None:
        """Each sentence goes to TTS as soon as it is complete, while the LLM writes on."""
        sentences: asyncio.Queue[str | None] = asyncio.Queue()
        tts = asyncio.create_task(self._synthesize_each(sentences))
        try:
            splitter = SentenceSplitter(first_clause_chars=self.first_clause_chars)
            async for delta in self._llm():
                splitter.hungry = self._hungry(sentences)
                splitter.first_clause_chars = self._clause_chars()
                for sentence in splitter.feed(delta):
                    sentences.put_nowait(sentence)
            for sentence in splitter.flush():
                sentences.put_nowait(sentence)
            self.reply = self.reply.strip()
            self._put(Outgoing(TurnEvent("message", self.reply), marks=("assistant",)))
            sentences.put_nowait(None)
            await tts
        finally:
            if not tts.done():
                tts.cancel()
                with contextlib.suppress(asyncio.CancelledError, UpstreamError):
                    await tts

    async def _synthesize_each(self, sentences: asyncio.Queue[str | None]) -> None:
        while (sentence := await sentences.get()) is not None:
            await self._may_synthesize(sentence)
            self._synthesizing = True
            try:
                wav = await self.upstreams.synthesize(sentence, self.conversation.voice)
            finally:
                self._synthesizing = False
            self._put(Outgoing(TurnEvent("audio", sentence, wav), wav_duration(wav)))

    def _put_metrics_and_end(self) -> None:
        self._put(Outgoing(TurnEvent("metrics")))
        self._outbox.put_nowait(None)

    # -- delivery: in order, paced, to whichever connection is attached -----
    async def _wait_for_connection(self) -> Listener:
        while self._attached is None or self._attached.closed:
            if self._attached is not None:
                self.detach(self._attached)
            try:
                await asyncio.wait_for(self._attached_event.wait(), self.grace_s)
            except TimeoutError:
                raise Orphaned() from None
        return self._attached

    async def _handover(self) -> None:
        """After an event the real client answers by reconnecting, wait for the new socket.

        Anything sent on the old socket meanwhile is lost: the client is closing it.
        A client that does not reconnect (a browser page, a script) is recognised by
        the first wait running out, and is not waited for again.
        """
        old = self._handover_from
        conv = self.conversation
        if old is None or conv.reconnects is False or self._attached is not old:
            self._handover_from = None
            return
        self._moved.clear()
        timeout = self.grace_s if conv.reconnects else self.reconnect_wait_s
        try:
            # _handover_from stays set while waiting: the old socket may close (detach)
            # before the new one attaches, and attach() must still see the move.
            if timeout <= 0:  # not waiting at all: skip wait_for's task and cancellation
                raise TimeoutError
            await asyncio.wait_for(self._moved.wait(), timeout)
            conv.reconnects = True
        except TimeoutError:
            if not old.closed:
                conv.reconnects = False
        finally:
            self._handover_from = None

    async def _deliver(self) -> None:
        try:
            await self._go.wait()
            while (item := await self._outbox.get()) is not None:
                await self._handover()
                if item.event.kind == "metrics":
                    self.metrics.mark("total")
                    item.event.metrics = self.metrics.as_event()
                if item.audio_s and self.conversation.paced:
                    delay = self.play_until - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                while True:
                    conn = await self._wait_for_connection()
                    if await conn.deliver(item.event):
                        break
                    self.detach(conn)
                if item.audio_s:
                    self._pending_audio_s -= item.audio_s
                    self.metrics.mark("first_audio")
                    # Where the client's playback ends; it queues, so durations add up.
                    self.play_until = max(self.play_until, time.monotonic()) + item.audio_s
                    self.spoken.append(item.event.text)
                self.sent_user |= "user" in item.marks
                self.sent_assistant |= "assistant" in item.marks
                if item.marks:
                    self._handover_from = self._last_marked = conn
            if not self.interrupted:
                self.conversation.record(self.user_text, self.reply)
        except Orphaned:
            logger.info("turn cancelled: no connection adopted it within %.0f s", self.grace_s)
            for task in self._tasks[:1]:
                task.cancel()
        finally:
            await self._done()

    async def _done(self) -> None:
        self.finished = True
        if self.on_done is not None:
            result = self.on_done(self)
            if asyncio.iscoroutine(result):
                await result
