"""The wire protocol of ``/v1/realtime``: a subset of the OpenAI Realtime API.

Client events are pydantic models discriminated by ``type``; both the GA shape
(``session.audio.input.format = {type: "audio/pcm", rate}``) and the beta
shape (``input_audio_format: "pcm16"``) of ``session.update`` are accepted.
Server events are built in their GA names; a client that asked for the beta
protocol (``OpenAI-Beta: realtime=v1`` header, or the ``openai-beta.realtime-v1``
WebSocket subprotocol browsers use) gets the beta names instead, never both
(:func:`beta_name`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

DEFAULT_RATE = 24000  # the API's PCM16 rate; "pcm16" (beta) has no other
LANGUAGE = r"^(auto|[a-z]{2,3})$"

# Names the SDKs and tools send; none is a voice of ours, so they mean "the server's default".
OPENAI_VOICES = frozenset(
    "alloy ash ballad cedar coral echo fable marin nova onyx sage shimmer verse".split()
)

# GA name -> beta name; events missing from beta map to None and are not sent.
_BETA_NAMES: dict[str, str | None] = {
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio.done": "response.audio.done",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_audio_transcript.done": "response.audio_transcript.done",
    "conversation.item.added": "conversation.item.created",
    "conversation.item.done": None,
}


def beta_name(name: str) -> str | None:
    return _BETA_NAMES.get(name, name)


def new_id(prefix: str) -> str:
    """An id shaped like the API's (``event_…``, ``item_…``, ``resp_…``)."""
    return f"{prefix}_{secrets.token_hex(11)}"


def error_event(
    message: str,
    *,
    code: str,
    type: str = "invalid_request_error",
    param: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """``error``; ``event_id`` inside it names the client event that caused it."""
    return {
        "type": "error",
        "error": {
            "type": type,
            "code": code,
            "message": message,
            "param": param,
            "event_id": event_id,
        },
    }


# -- client events ---------------------------------------------------------------
class _Model(BaseModel):
    # Clients send many fields this subset does not use (tools, temperature, ...).
    model_config = ConfigDict(extra="ignore")


class AudioFormat(_Model):
    type: str = "audio/pcm"
    rate: int = Field(DEFAULT_RATE, ge=8000, le=48000)


class TurnDetection(_Model):
    type: str = "server_vad"
    threshold: float | None = Field(None, gt=0, lt=1)
    prefix_padding_ms: int | None = Field(None, ge=0, le=2000)
    silence_duration_ms: int | None = Field(None, ge=32, le=5000)
    create_response: bool = True
    interrupt_response: bool = True


class Transcription(_Model):
    model: str | None = None
    language: str | None = Field(None, pattern=LANGUAGE)


class AudioInput(_Model):
    format: AudioFormat | None = None
    turn_detection: TurnDetection | None = None  # explicit null: manual commit
    transcription: Transcription | None = None


class AudioOutput(_Model):
    format: AudioFormat | None = None
    voice: str | None = None


class AudioConfig(_Model):
    input: AudioInput | None = None
    output: AudioOutput | None = None


class SessionUpdateBody(_Model):
    instructions: str | None = None
    audio: AudioConfig | None = None
    output_modalities: list[str] | None = None
    max_output_tokens: int | Literal["inf"] | None = None
    # beta shape
    voice: str | None = None
    input_audio_format: str | None = None
    output_audio_format: str | None = None
    turn_detection: TurnDetection | None = None
    input_audio_transcription: Transcription | None = None
    modalities: list[str] | None = None
    max_response_output_tokens: int | Literal["inf"] | None = None


class ContentPart(_Model):
    type: str
    text: str | None = None
    transcript: str | None = None


class Item(_Model):
    id: str | None = None
    type: str = "message"
    role: str | None = None
    content: list[ContentPart] = Field(default_factory=list)


class _Event(_Model):
    event_id: str | None = None


class SessionUpdate(_Event):
    type: Literal["session.update"]
    session: SessionUpdateBody


class AudioAppend(_Event):
    type: Literal["input_audio_buffer.append"]
    audio: str


class AudioCommit(_Event):
    type: Literal["input_audio_buffer.commit"]


class AudioClear(_Event):
    type: Literal["input_audio_buffer.clear"]


class ItemCreate(_Event):
    type: Literal["conversation.item.create"]
    item: Item
    previous_item_id: str | None = None


class ItemTruncate(_Event):
    type: Literal["conversation.item.truncate"]
    item_id: str
    content_index: int = 0
    audio_end_ms: int = Field(ge=0)


class ResponseCreate(_Event):
    type: Literal["response.create"]
    response: dict[str, Any] | None = None  # per-response overrides are not honoured


class ResponseCancel(_Event):
    type: Literal["response.cancel"]
    response_id: str | None = None


ClientEvent = (
    SessionUpdate
    | AudioAppend
    | AudioCommit
    | AudioClear
    | ItemCreate
    | ItemTruncate
    | ResponseCreate
    | ResponseCancel
)
client_event: TypeAdapter[ClientEvent] = TypeAdapter(
    Annotated[ClientEvent, Field(discriminator="type")]
)
SUPPORTED = frozenset(get_args(m.model_fields["type"].annotation)[0] for m in get_args(ClientEvent))


# -- session state -----------------------------------------------------------------
class Unsupported(ValueError):
    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Session:
    """What a client configured; the server's values where it said nothing."""

    id: str = field(default_factory=lambda: new_id("sess"))
    model: str = "koe"
    instructions: str | None = None
    voice: str | None = None  # as the client named it (echoed back)
    input_rate: int = DEFAULT_RATE
    output_rate: int = DEFAULT_RATE
    vad: TurnDetection | None = field(default_factory=TurnDetection)  # None: manual commit
    language: str | None = None
    max_output_tokens: int | Literal["inf"] = "inf"


def _rate(fmt: AudioFormat | str | None, current: int, param: str) -> int:
    if fmt is None:
        return current
    if isinstance(fmt, str):  # beta: "pcm16" is 24 kHz by definition
        if fmt != "pcm16":
            raise Unsupported(f"audio format {fmt!r} is not supported; use 'pcm16'", param)
        return DEFAULT_RATE
    if fmt.type != "audio/pcm":
        raise Unsupported(f"audio format {fmt.type!r} is not supported; use 'audio/pcm'", param)
    return fmt.rate


def apply_update(s: Session, body: SessionUpdateBody) -> Session:
    """``s`` with a ``session.update`` applied (either shape); raises :class:`Unsupported`."""
    audio_in = body.audio.input if body.audio and body.audio.input else AudioInput()
    audio_out = body.audio.output if body.audio and body.audio.output else AudioOutput()
    changes: dict[str, Any] = {}
    if body.instructions is not None:
        changes["instructions"] = body.instructions
    if (voice := audio_out.voice or body.voice) is not None:
        changes["voice"] = voice
    changes["input_rate"] = _rate(
        audio_in.format or body.input_audio_format, s.input_rate, "session.audio.input.format"
    )
    changes["output_rate"] = _rate(
        audio_out.format or body.output_audio_format, s.output_rate, "session.audio.output.format"
    )
    # None (JSON null) and "not given" differ here: null switches the server VAD off.
    if "turn_detection" in audio_in.model_fields_set:
        changes["vad"] = audio_in.turn_detection
    elif "turn_detection" in body.model_fields_set:
        changes["vad"] = body.turn_detection
    vad = changes.get("vad")
    if vad is not None and vad.type != "server_vad":
        raise Unsupported(
            f"turn_detection type {vad.type!r} is not supported; use 'server_vad' or null",
            "session.audio.input.turn_detection.type",
        )
    transcription = audio_in.transcription or body.input_audio_transcription
    if transcription is not None and transcription.language:
        changes["language"] = transcription.language
    modalities = body.output_modalities or body.modalities
    if modalities is not None and "audio" not in modalities:
        raise Unsupported("only audio output is supported", "session.output_modalities")
    limit = body.max_output_tokens or body.max_response_output_tokens
    if limit is not None:
        changes["max_output_tokens"] = limit
    return replace(s, **changes)


def session_object(s: Session, beta: bool, vad_defaults: dict[str, Any]) -> dict[str, Any]:
    """The session resource as ``session.created``/``session.updated`` carry it."""
    vad = None
    if s.vad is not None:
        vad = {
            **s.vad.model_dump(),
            **{k: v for k, v in vad_defaults.items() if getattr(s.vad, k) is None},
        }
    transcription = {"model": "koe-asr", "language": s.language}
    pcm = {"type": "audio/pcm", "rate": s.input_rate}
    common = {"id": s.id, "object": "realtime.session", "model": s.model}
    if beta:
        return {
            **common,
            "modalities": ["audio", "text"],
            "instructions": s.instructions or "",
            "voice": s.voice,
            "input_audio_format": "pcm16",
            "output_audio_format": "pcm16",
            "input_audio_transcription": transcription,
            "turn_detection": vad,
            "tools": [],
            "tool_choice": "auto",
            "max_response_output_tokens": s.max_output_tokens,
        }
    return {
        **common,
        "type": "realtime",
        "output_modalities": ["audio"],
        "instructions": s.instructions or "",
        "audio": {
            "input": {"format": pcm, "transcription": transcription, "turn_detection": vad},
            "output": {"format": {**pcm, "rate": s.output_rate}, "voice": s.voice},
        },
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": s.max_output_tokens,
    }
