"""One WebSocket connection: audio in through the VAD, JSON events in and out.

A connection owns its audio buffer, its turn detector and a send queue with
one writer task (so frames never interleave). It does not own turns: those
belong to the conversation, and survive the socket (see :mod:`gateway.turn`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING

from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from . import events
from .conversation import Conversation, clean_history
from .events import StartSession, TurnEvent, UserMessage
from .sender import FrameSender
from .speculation import SpeculativeASR
from .turn import Turn
from .vad import Kind, TurnDetector
from .vad_batcher import VADStopped

if TYPE_CHECKING:
    from .hub import Hub

logger = logging.getLogger(__name__)
SEND_QUEUE_LIMIT = 512
# WAVs up to this size (1 s of 24 kHz speech, rendered to JSON in about 0.5 ms) are rendered
# on the event loop; longer ones in a thread.
INLINE_RENDER_BYTES = 48 * 1024


class Connection:
    def __init__(self, ws: WebSocket, hub: Hub) -> None:
        self.ws = ws
        self.hub = hub
        self._out = FrameSender(ws, SEND_QUEUE_LIMIT)
        self.conversation: Conversation | None = None
        self.detector = TurnDetector(hub.vad, hub.turn_params)
        self._vad_failing = False
        # The transcription started at a pause in the user's speech (see _on_audio), and
        # the turn held on it (speculative_reply).
        self._asr = SpeculativeASR(hub)
        self.client = ws.client.host if ws.client else "?"

    @property
    def closed(self) -> bool:
        return self._out.closed

    # -- sending --------------------------------------------------------------
    def send(self, payload: dict | str) -> None:
        """Queue an event; fire and forget (connection-level events)."""
        if not self.closed:
            self._out.put(payload if isinstance(payload, str) else events.dumps(payload))

    def notify(self, event: TurnEvent) -> None:
        """A turn's event that needs no delivery guarantee (fire and forget)."""
        self.send(events.render(event))

    async def deliver(self, event: TurnEvent) -> bool:
        """Send and wait until written; False if the socket is gone (the turn then waits
        for another connection to adopt it)."""
        if self.closed:
            return False
        # A long sentence's WAV renders to ~1 MB of JSON: do that off the event loop so
        # other sessions' audio and VAD are not held up meanwhile. A short one renders
        # in less time than the hop to a thread takes (about 0.5 ms under load).
        if event.kind == "audio" and len(event.wav) > INLINE_RENDER_BYTES:
            payload = await asyncio.to_thread(events.render, event)
        else:
            payload = events.render(event)
        return await self._out.put_and_wait(payload)

    # -- receiving ------------------------------------------------------------
    async def run(self) -> None:
        writer = asyncio.create_task(self._out.run(), name="ws-writer")
        try:
            while not self.closed:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if message.get("bytes") is not None:
                    await self._on_audio(message["bytes"])
                elif message.get("text") is not None:
                    await self._on_text(message["text"])
        except WebSocketDisconnect:
            pass
        finally:
            self._out.closed = True
            self.hub.vad_batcher.discard(self.detector)
            self._asr.close()
            conv = self.conversation
            if conv is not None and conv.turn is not None:
                conv.turn.detach(self)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer

    def _error(self, message: str, stage: str = "protocol") -> None:
        self.send(events.error(stage, message))

    async def _on_text(self, text: str) -> None:
        if len(text) > self.hub.settings.max_message_bytes:
            self._error(f"message too large ({len(text)} characters)")
            return
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):  # "[[[[..." nested past the parser's stack
            self._error("text frames must be JSON")
            return
        if not isinstance(data, dict) or not isinstance(data.get("event"), str):
            self._error("a JSON object with an 'event' field was expected")
            return
        try:
            event = events.client_event.validate_python(data)
        except ValidationError as exc:
            name = data["event"]
            if name not in ("startSession", "userMessage"):
                self._error(f"unknown event {name!r}")
            else:
                self._error(f"invalid {name}: {exc.errors()[0]['msg']}")
            return
        if isinstance(event, StartSession):
            previous = self.conversation
            self._start_session(event)
            await self._leave(previous)
        else:
            await self._on_user_message(event)

    async def _leave(self, previous: Conversation | None) -> None:
        """One socket drives one turn: a startSession that opens another conversation ends the
        turn this socket listened to. Otherwise replayed startSession/userMessage pairs pile up
        live turns, each holding upstream requests (300 stalled the whole gateway for seconds)."""
        turn = previous.turn if previous is not None else None
        if (
            turn is not None
            and not turn.finished
            and previous is not self.conversation
            and turn.connection is self
        ):
            await turn.interrupt()

    def _start_session(self, event: StartSession) -> None:
        s = self.hub.settings
        history = clean_history(event.messages, s.max_history_messages, s.max_text_chars)
        turn = self.hub.adoptable(history, self.client)
        if turn is not None:
            # The real client reconnects mid-turn: hand the turn to this socket.
            self.conversation = turn.conversation
            self.conversation.history = history
            turn.adopt(self)
            logger.info("connection adopted a turn in flight")
            return
        self.conversation = Conversation(
            history=history,
            system_prompt=event.systemPrompt or s.system_prompt,
            voice=self.hub.voice(event.voice),
            one_wav=s.one_wav_per_turn if event.oneWavPerTurn is None else event.oneWavPerTurn,
            language=event.language or s.language,
            paced=not event.streamAudio,
            # A client that queues audio itself is not LocalChatVRM: it does not reconnect.
            reconnects=False if event.streamAudio else None,
        )

    def _ensure_conversation(self) -> Conversation:
        # Documented default: audio or text before startSession opens an empty conversation.
        if self.conversation is None:
            self.conversation = Conversation(
                system_prompt=self.hub.settings.system_prompt,
                voice=self.hub.voice(None),
                one_wav=self.hub.settings.one_wav_per_turn,
                language=self.hub.settings.language,
            )
        return self.conversation

    async def _on_user_message(self, event: UserMessage) -> None:
        text = event.message.strip()
        if not text:
            self._error("userMessage needs a non-empty message")
            return
        if len(text) > self.hub.settings.max_text_chars:
            self._error(f"message longer than {self.hub.settings.max_text_chars} characters")
            return
        await self._start_turn(text=text)

    async def _on_audio(self, data: bytes) -> None:
        if len(data) > self.hub.settings.max_message_bytes:
            self._error(f"audio frame too large ({len(data)} bytes)")
            return
        conv = self._ensure_conversation()
        try:
            found = await self.hub.vad_batcher.feed(self.detector, data)
        except VADStopped:
            return  # the gateway is shutting down
        except Exception:
            if not self._vad_failing:  # once, not for every frame while it lasts
                logger.exception("VAD failed; this connection's audio starts over")
                self._error("voice activity detection failed", stage="vad")
            self._vad_failing = True
            self._asr.drop()  # the new detector starts a new utterance
            self.hub.vad_batcher.discard(self.detector)
            self.detector = TurnDetector(self.hub.vad, self.hub.turn_params)
            return
        self._vad_failing = False
        for ev in found:
            turn = conv.turn
            # Whether the end of this speech would start a turn: not while the assistant
            # talks, unless the user has interrupted it.
            starts_turn = turn is None or not turn.live or turn.interrupted
            if ev.kind is Kind.SPEECH_START:
                self.send(events.user_speech_start())
            elif ev.kind is Kind.SUSTAINED:
                if turn is not None and turn.live:
                    await turn.interrupt()
            elif ev.kind is Kind.PAUSE:
                if starts_turn:
                    self._speculate(ev.audio, conv.language)
            elif ev.kind is Kind.RESUME:
                self._asr.drop()
            elif ev.kind is Kind.SPEECH_END:
                self.send(events.user_speech_end())
                if not starts_turn:
                    # Too short to interrupt ("うん" while the assistant talks): a backchannel.
                    self._asr.drop()
                    continue
                held = self._asr.take_held(
                    lambda turn: turn.conversation is conv and turn.still_current()
                )
                transcript = self._asr.take()
                if held is not None:
                    await self._commit(held)
                else:
                    await self._start_turn(audio=ev.audio, transcript=transcript)

    # -- speculative ASR ------------------------------------------------------------
    def _speculate(self, audio: bytes, language: str) -> None:
        """Transcribe the turn so far now; the turn's end (and the ASR's answer) may
        follow within the end-of-turn wait, which then no longer adds to the latency."""
        task = self._asr.start(audio, language)
        if task is not None and self.hub.settings.speculative_reply:
            self._asr.hold(
                lambda transcript: self._new_turn(audio=audio, transcript=transcript, held=True)
            )

    def _new_turn(
        self,
        *,
        audio: bytes | None = None,
        text: str | None = None,
        transcript: asyncio.Future[str] | None = None,
        held: bool = False,
    ) -> Turn:
        return Turn.configured(
            self._ensure_conversation(),
            self.hub.upstreams,
            self.hub.settings,
            audio=audio,
            text=text,
            transcript=transcript,
            # a held turn is nobody's yet: the hub hears of it when it is committed
            on_done=None if held else self.hub.turn_done,
            held=held,
        )

    async def _launch(self, turn: Turn) -> None:
        """Make ``turn`` the conversation's turn, this connection's to listen to."""
        conv = turn.conversation
        if conv.turn is not None and not conv.turn.finished:
            await conv.turn.interrupt()
        conv.turn = turn
        turn.attach(self)
        if turn.audio is None:
            turn.expect_reconnect(self)  # LocalChatVRM reconnects right after userMessage
        turn.client = self.client
        self.hub.turns.add(turn)

    async def _commit(self, turn: Turn) -> None:
        """The speech ended as it paused: the held turn is the turn."""
        turn.on_done = self.hub.turn_done
        await self._launch(turn)
        turn.commit()

    async def _start_turn(
        self,
        *,
        audio: bytes | None = None,
        text: str | None = None,
        transcript: asyncio.Future[str] | None = None,
    ) -> None:
        turn = self._new_turn(audio=audio, text=text, transcript=transcript)
        await self._launch(turn)
        turn.start()
