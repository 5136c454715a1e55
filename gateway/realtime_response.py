"""One Realtime response: a :class:`~gateway.turn.Turn`'s events as Realtime server events.

A turn says "transcript", "audio" (one sentence's WAV), "message" (the whole
reply), "error", "metrics" (the end) or "interrupted"; a Realtime client
expects an assistant item with one audio content part, transcript and audio
deltas, and the ``…done`` events in a fixed order ending in ``response.done``.
The response also remembers where each sentence lies in the audio it sent, so
``conversation.item.truncate`` can keep only the text the user heard.
"""

from __future__ import annotations

import asyncio
import base64
import wave
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .events import TurnEvent
from .realtime_audio import chunks, wav_to_pcm
from .realtime_events import Session, new_id

if TYPE_CHECKING:
    from .turn import Turn

AUDIO_DELTA_MS = 200  # about 6 KB of base64 per delta at 24 kHz


@dataclass
class Response:
    session: Session
    beta: bool
    user_item: str | None = None  # the user item whose audio this turn transcribes
    input_s: float = 0.0  # that item's committed audio, in seconds (its usage)
    previous_item: str | None = None  # where the assistant item goes in the conversation
    id: str = field(default_factory=lambda: new_id("resp"))
    item_id: str = field(default_factory=lambda: new_id("item"))
    turn: Turn | None = None
    starter: asyncio.Task[None] | None = None  # waits for transcripts before the turn starts
    item_started: bool = False
    transcript: str = ""  # what the audio deltas said so far
    reply: str = ""
    sentences: list[tuple[float, float, str]] = field(default_factory=list)  # start/end ms
    audio_ms: float = 0.0
    transcribed: bool = False
    done: bool = False
    cancel_reason: str | None = None
    error: dict[str, Any] | None = None
    # conversation.item.truncate, applied once the turn recorded its history entry
    history_entry: dict[str, str] | None = None
    settled: bool = False
    truncate_ms: int | None = None

    # -- turn events -> server events ---------------------------------------------
    def render(self, event: TurnEvent) -> list[dict[str, Any]]:
        if self.done:
            return []  # a late event of a response already cancelled
        if event.kind == "transcript":
            return [self.user_transcript(event.text)]
        if event.kind == "message":
            self.reply = event.text
            return []
        if event.kind == "audio":
            return [*self._start_item(), *self._audio(event)]
        if event.kind == "error":
            self.error = {"type": "server_error", "code": f"{event.stage}_error"}
            self.error["message"] = f"{event.stage} failed: {event.text}"
            return [{"type": "error", "error": {**self.error, "param": None, "event_id": None}}]
        if event.kind == "interrupted":
            return self.finish("cancelled")
        return self.finish("failed" if self.error else "completed")  # metrics: the end

    def user_transcript(self, text: str) -> dict[str, Any]:
        self.transcribed = True
        return {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": self.user_item,
            "content_index": 0,
            "transcript": text,
            "usage": {"type": "duration", "seconds": round(self.input_s, 3)},
        }

    def _part(self, name: str, **fields: Any) -> dict[str, Any]:
        return {
            "type": name,
            "response_id": self.id,
            "item_id": self.item_id,
            "output_index": 0,
            "content_index": 0,
            **fields,
        }

    def item(self, status: str) -> dict[str, Any]:
        return {
            "id": self.item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "assistant",
            "status": status,
            "content": [
                {"type": "audio" if self.beta else "output_audio", "transcript": self.transcript}
            ],
        }

    def _start_item(self) -> list[dict[str, Any]]:
        if self.item_started:
            return []
        self.item_started = True
        item = self.item("in_progress")
        item["content"] = []
        return [
            {
                "type": "response.output_item.added",
                "response_id": self.id,
                "output_index": 0,
                "item": item,
            },
            {
                "type": "conversation.item.added",
                "previous_item_id": self.previous_item,
                "item": item,
            },
            self._part("response.content_part.added", part={"type": "audio", "transcript": ""}),
        ]

    def _audio(self, event: TurnEvent) -> list[dict[str, Any]]:
        rate = self.session.output_rate
        try:
            pcm = wav_to_pcm(event.wav, rate)
        except (wave.Error, EOFError, ValueError) as exc:
            self.error = {"type": "server_error", "code": "tts_error"}
            self.error["message"] = f"TTS sent audio that is not a 16-bit WAV: {exc}"
            return [{"type": "error", "error": {**self.error, "param": None, "event_id": None}}]
        text = event.text
        # Sentences come without the space between them; Japanese needs none, English does.
        if self.transcript and self.transcript[-1].isascii() and text[:1].isascii():
            text = " " + text
        self.transcript += text
        start, self.audio_ms = self.audio_ms, self.audio_ms + len(pcm) / (2 * rate) * 1000
        self.sentences.append((start, self.audio_ms, text))
        out = [self._part("response.output_audio_transcript.delta", delta=text)]
        for piece in chunks(pcm, rate, AUDIO_DELTA_MS):
            delta = base64.b64encode(piece).decode()
            out.append(self._part("response.output_audio.delta", delta=delta))
        return out

    def finish(self, status: str) -> list[dict[str, Any]]:
        """The closing events: the item's ``…done`` events (if it began), ``response.done``."""
        self.done = True
        out: list[dict[str, Any]] = []
        turn = self.turn
        if turn is not None and turn.audio is not None and not self.transcribed:
            # No speech recognised (the turn is dropped), or cut before the transcript went out.
            out.append(self.user_transcript(turn.user_text))
        if status == "completed" and self.reply:
            out += self._start_item()  # a reply whose audio never came still gets its item
            self.transcript = self.reply  # the LLM's own text, spacing included
        if self.item_started:
            item_status = "completed" if status == "completed" else "incomplete"
            transcript = self.transcript
            out += [
                self._part("response.output_audio.done"),
                self._part("response.output_audio_transcript.done", transcript=transcript),
                self._part(
                    "response.content_part.done", part={"type": "audio", "transcript": transcript}
                ),
                {
                    "type": "response.output_item.done",
                    "response_id": self.id,
                    "output_index": 0,
                    "item": self.item(item_status),
                },
                {"type": "conversation.item.done", "item": self.item(item_status)},
            ]
        out.append({"type": "response.done", "response": self.resource(status)})
        return out

    def resource(self, status: str) -> dict[str, Any]:
        details: dict[str, Any] | None = None
        if status == "cancelled":
            details = {"type": "cancelled", "reason": self.cancel_reason or "client_cancelled"}
        elif status == "failed":
            details = {"type": "failed", "error": self.error}
        s = self.session
        output_format = {"type": "audio/pcm", "rate": s.output_rate}
        return {
            "id": self.id,
            "object": "realtime.response",
            "status": status,
            "status_details": details,
            "output": [self.item("completed" if status == "completed" else "incomplete")]
            if self.item_started and status != "in_progress"
            else [],
            "conversation_id": None,
            "output_modalities": ["audio"],
            "modalities": ["audio", "text"],  # beta clients read this name
            "audio": {"output": {"format": output_format, "voice": s.voice}},
            "max_output_tokens": s.max_output_tokens,
            "usage": None,
            "metadata": None,
        }

    # -- truncation --------------------------------------------------------------
    def heard(self, audio_end_ms: int) -> str:
        """The transcript up to ``audio_end_ms``; a sentence cut midway keeps a share of
        its characters proportional to the share of its audio that was played."""
        out = ""
        for start, end, text in self.sentences:
            if end <= audio_end_ms:
                out += text
            elif start < audio_end_ms:
                out += text[: int(len(text) * (audio_end_ms - start) / (end - start))]
        return out.strip()
