"""``input_audio_buffer.*``: the client's audio, server VAD, commits and their transcripts.

Audio is resampled to 16 kHz for the shared Silero
:class:`~gateway.vad.TurnDetector` and the ASR. With server VAD (the
session's ``turn_detection``) the detector ends utterances and may start or
cancel a response; its frames run on the hub's shared
:class:`~gateway.vad_batcher.VADBatcher`, as ``/ws``'s do, not on the event
loop. With ``turn_detection: null`` the client commits the
buffer itself. Committed audio becomes a user item: a response started by it
transcribes it within its turn; otherwise it is transcribed here. As on
``/ws``, server VAD starts the transcription at a pause in the speech
(:class:`~gateway.speculation.SpeculativeASR`), before the turn's end is certain,
and with ``speculative_reply`` a held turn on it, whose LLM may write during
the rest of the wait: its response is created, and it speaks, once the speech
has ended.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import logging

from . import realtime_events as rt
from .clients import UpstreamError
from .realtime_audio import VAD_RATE, InputResampler
from .realtime_items import add_item
from .realtime_link import RealtimeLink
from .realtime_responder import Responder
from .speculation import SpeculativeASR, transcribe
from .turn import Turn
from .vad import FRAME_MS, Kind, TurnDetector, VADEvent
from .vad_batcher import VADStopped

logger = logging.getLogger(__name__)
MIN_COMMIT_MS = 100  # as the API: a shorter buffer cannot be committed


def _ms(pcm16k: int | bytes) -> int:
    n = pcm16k if isinstance(pcm16k, int) else len(pcm16k)
    return n * 1000 // (2 * VAD_RATE)


class InputAudio:
    """The input audio buffer of one connection, and the VAD that watches it."""

    def __init__(self, link: RealtimeLink, responder: Responder) -> None:
        self.link, self.responder = link, responder
        self.detector = self._detector()
        self.resampler = InputResampler(link.session.input_rate)
        self._buffer = bytearray()  # 16 kHz PCM since the last commit
        self._fed = 0  # 16 kHz bytes received this session (for audio_*_ms)
        self._speech_item: str | None = None
        self._sustained = False  # the current utterance went on for barge_in_ms
        self._vad_failing = False  # the last feed failed: report a failure once, not per frame
        self._asr = SpeculativeASR(link.hub)  # started at a pause in the speech

    def _detector(self) -> TurnDetector:
        """The server's turn parameters, with the session's turn_detection over them."""
        vad = self.link.session.vad
        params = self.link.hub.turn_params
        if vad is not None:
            params = dataclasses.replace(
                params,
                threshold=vad.threshold or params.threshold,
                pre_roll_ms=params.pre_roll_ms
                if vad.prefix_padding_ms is None
                else vad.prefix_padding_ms,
                silence_end_ms=vad.silence_duration_ms or params.silence_end_ms,
            )
        return TurnDetector(self.link.hub.vad, params)

    def session_changed(self, old: rt.Session, new: rt.Session) -> None:
        """After session.update: rebuild what depends on the input format or turn detection."""
        if new.input_rate != old.input_rate:
            self.resampler = InputResampler(new.input_rate)
        if new.vad != old.vad:
            self._new_detector()

    def _new_detector(self) -> None:
        # No feed of the old one is awaited (see clear()); any frames of it still queued
        # on the batcher are dropped rather than run for nobody.
        self.link.hub.vad_batcher.discard(self.detector)
        self.detector = self._detector()
        self._speech_item = None  # no utterance is in progress on the new one
        self._asr.drop()

    def close(self) -> None:
        """The connection is gone: the batcher forgets this detector's queued frames."""
        self.link.hub.vad_batcher.discard(self.detector)
        self._asr.close()

    # -- client events ------------------------------------------------------------
    async def append(self, audio: str, event_id: str | None) -> None:
        """``input_audio_buffer.append``."""
        link = self.link
        try:
            raw = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            link.error("audio is not valid base64", "invalid_value", "audio", event_id=event_id)
            return
        pcm = self.resampler.feed(raw)
        self._fed += len(pcm)
        self._buffer += pcm
        max_s = link.hub.settings.max_utterance_s
        limit = int(max_s * 2 * VAD_RATE)
        if len(self._buffer) > limit:
            if link.session.vad is None:
                link.error(
                    f"input audio buffer over {max_s:.0f} s; its oldest audio was dropped",
                    "input_audio_buffer_full",
                    event_id=event_id,
                )
            del self._buffer[: len(self._buffer) - limit]
        if link.session.vad is not None:
            await self._detect(pcm, event_id)

    async def _detect(self, pcm: bytes, event_id: str | None) -> None:
        try:
            found = await self.link.hub.vad_batcher.feed(self.detector, pcm)
        except VADStopped:
            return  # the gateway is shutting down
        except Exception:
            if not self._vad_failing:
                logger.exception("VAD failed; this connection's server VAD starts over")
                self.link.error(
                    "voice activity detection failed",
                    "vad_error",
                    type="server_error",
                    event_id=event_id,
                )
            self._vad_failing = True
            # The worker may still be running a frame of the failed feed on this detector's
            # stream: a fresh detector, not reset(). The buffer keeps its audio.
            self._new_detector()
            return
        self._vad_failing = False
        for ev in found:
            await self._on_vad(ev)

    def clear(self) -> None:
        """``input_audio_buffer.clear``."""
        self._buffer.clear()
        # reset() touches the stream the batcher's worker runs, so it is safe only while
        # no feed of this detector is awaited. The connection handles one client event at
        # a time (append awaits its feed before the next event is read), so none is here.
        self.detector.reset()
        self._speech_item = None
        self._asr.drop()
        self.link.send({"type": "input_audio_buffer.cleared"})

    def commit(self, event_id: str | None) -> None:
        """``input_audio_buffer.commit``: a user item, transcribed; no response."""
        if _ms(len(self._buffer)) < MIN_COMMIT_MS:
            self.link.error(
                f"buffer too small: expected at least {MIN_COMMIT_MS} ms of audio, "
                f"but the buffer has {_ms(len(self._buffer))} ms",
                "input_audio_buffer_commit_empty",
                event_id=event_id,
            )
            return
        pcm = bytes(self._buffer)
        self._buffer.clear()
        # The committed audio must not end a VAD turn later; no feed is awaited (see clear()).
        self.detector.reset()
        self._asr.drop()  # what it transcribes is only part of what is committed
        item, self._speech_item = self._speech_item or rt.new_id("item"), None
        self._commit(item, pcm, respond=False)

    # -- server VAD -------------------------------------------------------------------
    async def _on_vad(self, ev: VADEvent) -> None:
        vad = self.link.session.vad
        assert vad is not None
        responder = self.responder
        if ev.kind is Kind.SPEECH_START:
            self._speech_item = rt.new_id("item")
            self._sustained = False
            p = self.detector.params
            start = _ms(self._fed) - p.pre_roll_ms - p.speech_start_ms - FRAME_MS
            self.link.send(
                {
                    "type": "input_audio_buffer.speech_started",
                    "audio_start_ms": max(0, int(start)),
                    "item_id": self._speech_item,
                }
            )
        elif ev.kind is Kind.SUSTAINED:
            # Barge-in after barge_in_ms of speech, as /ws does: a short "うん" cancels nothing.
            self._sustained = True
            resp = responder.current
            if vad.interrupt_response and resp is not None and not resp.done:
                await responder.cancel(resp, "turn_detected")
        elif ev.kind is Kind.PAUSE:
            if not self._backchannel():
                self._speculate(
                    ev.audio, respond=vad.create_response and not responder.responding()
                )
        elif ev.kind is Kind.RESUME:
            self._asr.drop()
        elif ev.kind is Kind.SPEECH_END:
            item = self._speech_item or rt.new_id("item")
            self._speech_item = None
            self.link.send(
                {
                    "type": "input_audio_buffer.speech_stopped",
                    "audio_end_ms": _ms(self._fed),
                    "item_id": item,
                }
            )
            self._buffer.clear()
            if self._backchannel():
                self._asr.drop()
                return  # too short to interrupt the reply: a backchannel, as on /ws
            respond = vad.create_response and not responder.responding()
            held = self._asr.take_held(lambda turn: respond and turn.still_current())
            transcript = self._asr.take()
            self._commit(item, ev.audio, respond=respond, transcript=transcript, held=held)

    def _speculate(self, audio: bytes, *, respond: bool) -> None:
        """Transcribe the speech so far at this pause; if its end would start a response,
        start that response's turn too, held (see :mod:`gateway.speculation`)."""
        task = self._asr.start(audio, self.link.conversation.language)
        if task is not None and respond and self.link.hub.settings.speculative_reply:
            self._asr.hold(
                lambda transcript: self.responder.new_turn(
                    audio=audio, transcript=transcript, held=True
                )
            )

    def _backchannel(self) -> bool:
        """Whether the speech, if it ended now, would be too short to interrupt the reply
        ("うん" while the assistant talks): it is then neither committed nor answered."""
        vad = self.link.session.vad
        turn = self.link.conversation.turn
        # A reply already sent may still be playing at the client (the turn estimates it).
        playing = turn is not None and turn.live and not turn.interrupted
        replying = self.responder.responding() or playing
        return vad is not None and vad.interrupt_response and not self._sustained and replying

    # -- committed audio ---------------------------------------------------------------
    def _commit(
        self,
        item_id: str,
        pcm: bytes,
        *,
        respond: bool,
        transcript: asyncio.Future[str] | None = None,
        held: Turn | None = None,
    ) -> None:
        self.link.send(
            {
                "type": "input_audio_buffer.committed",
                "item_id": item_id,
                "previous_item_id": self.link.last_item,
            }
        )
        content = [{"type": "input_audio", "transcript": None}]
        add_item(self.link, item_id, "user", content)
        if respond:
            self.responder.start(audio=pcm, user_item=item_id, transcript=transcript, held=held)
        else:
            self._transcribe(item_id, pcm, transcript)

    def _transcribe(
        self, item_id: str, pcm: bytes, transcript: asyncio.Future[str] | None = None
    ) -> None:
        """Transcripts of committed audio enter the history in commit order."""
        previous = self.link.transcribing
        self.link.transcribing = self.link.spawn(
            self._transcribe_item(item_id, pcm, previous, transcript)
        )

    async def _transcribe_item(
        self,
        item_id: str,
        pcm: bytes,
        previous: asyncio.Task[None] | None,
        transcript: asyncio.Future[str] | None,
    ) -> None:
        link = self.link
        try:
            text = (
                await transcribe(link.hub.upstreams, pcm, link.conversation.language, transcript)
            ).strip()
        except UpstreamError as exc:
            error = {"type": "server_error", "code": "asr_error", "message": exc.message}
            link.send(
                {
                    "type": "conversation.item.input_audio_transcription.failed",
                    "item_id": item_id,
                    "content_index": 0,
                    "error": error,
                }
            )
            return
        if previous is not None:
            await asyncio.wait({previous})
        if text:
            link.conversation.history.append({"role": "user", "content": text})
        link.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": text,
                "usage": {"type": "duration", "seconds": round(len(pcm) / (2 * VAD_RATE), 3)},
            }
        )
