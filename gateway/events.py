"""The wire protocol of ``/ws`` (LocalChatVRM's, kept byte-compatible, plus extensions).

Client to server: JSON text frames discriminated by ``event``, and binary
frames of 16 kHz mono int16 little-endian PCM. Server to client: JSON text
frames only (the client ``JSON.parse``s every frame). Events the old client
does not know (``error``, ``turnMetrics``, ``assistantSpeechInterrupted``)
are ignored by it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter

from .audio import json_byte_array


def _utf8(value: str) -> str:
    # JSON's "\ud800" escape decodes to a lone surrogate, which no UTF-8 request to a
    # service can carry: refuse it here rather than fail every turn later.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text contains a lone surrogate (invalid Unicode)") from None
    return value


Text = Annotated[str, AfterValidator(_utf8)]


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant"]
    content: str


class StartSession(BaseModel):
    """Opens (or, with a matching history, re-attaches to) a conversation."""

    model_config = ConfigDict(extra="ignore")

    event: Literal["startSession"]
    # The real client sends placeholders ("your-stt-model-id"); they are never
    # used as paths or names, only accepted.
    sttModelId: str | None = None  # noqa: N815 - wire names are the client's
    llmModelId: str | None = None  # noqa: N815
    ttsModelId: str | None = None  # noqa: N815
    messages: list[dict[str, Any]] = Field(default_factory=list)
    oneWavPerTurn: bool | None = None  # noqa: N815 - extension: the old one-WAV behaviour
    voice: str | None = None  # extension: a TTS voice id from the TTS service's /voices
    systemPrompt: Text | None = None  # noqa: N815 - extension
    language: str | None = Field(None, pattern=r"^(auto|[a-z]{2,3})$")  # extension: ASR language
    # Extension: the client queues WAVs for gapless playback itself (and stops them on
    # assistantSpeechInterrupted), so the server sends each sentence as soon as it exists.
    streamAudio: bool = False  # noqa: N815


class UserMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    event: Literal["userMessage"]
    message: Text


ClientEvent = Annotated[StartSession | UserMessage, Field(discriminator="event")]
client_event: TypeAdapter[StartSession | UserMessage] = TypeAdapter(ClientEvent)


def dumps(payload: dict[str, Any]) -> str:
    # ensure_ascii=False keeps Japanese readable in logs and frames small.
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def user_speech_start() -> dict[str, Any]:
    return {"event": "userSpeechStart"}


def user_speech_end() -> dict[str, Any]:
    return {"event": "userSpeechEnd"}


def transcript(text: str) -> dict[str, Any]:
    return {"event": "userSpeechTranscript", "transcript": text}


def assistant_message(text: str) -> dict[str, Any]:
    return {"event": "assistantMessageGenerated", "generatedMessageContent": text}


def assistant_speech(wav: bytes) -> str:
    """The client expects the WAV file's bytes as a JSON array of numbers; this is the
    one event built as text directly, since it is large."""
    return '{"event":"assistantSpeechGenerated","audioData":' + json_byte_array(wav) + "}"


def assistant_interrupted(spoken: str) -> dict[str, Any]:
    return {"event": "assistantSpeechInterrupted", "spokenContent": spoken}


def error(stage: str, message: str) -> dict[str, Any]:
    return {"event": "error", "stage": stage, "message": message}


def turn_metrics(metrics: dict[str, float | None]) -> dict[str, Any]:
    return {"event": "turnMetrics", **metrics}


@dataclass
class TurnEvent:
    """What a turn tells its listener, independent of the wire protocol; each kind of
    connection renders it (LocalChatVRM's events here, the Realtime API elsewhere)."""

    kind: Literal["transcript", "message", "audio", "error", "metrics", "interrupted"]
    text: str = ""  # transcript, reply, the sentence spoken (audio), error message
    wav: bytes = b""
    stage: str = ""  # error: which service failed
    metrics: dict[str, float | None] = field(default_factory=dict)


def render(event: TurnEvent) -> str:
    """A turn event as LocalChatVRM's JSON text frame."""
    if event.kind == "audio":
        return assistant_speech(event.wav)
    payload = {
        "transcript": lambda: transcript(event.text),
        "message": lambda: assistant_message(event.text),
        "error": lambda: error(event.stage, event.text),
        "metrics": lambda: turn_metrics(event.metrics),
        "interrupted": lambda: assistant_interrupted(event.text),
    }[event.kind]()
    return dumps(payload)
