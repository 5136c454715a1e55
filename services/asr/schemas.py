"""Request and response bodies of the ASR service."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

# Whisper's language codes (ISO 639-1 where one exists).
LANGUAGES = frozenset(
    "en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta no "
    "th ur hr bg lt la mi ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn bs kk sq sw "
    "gl mr pa si km sn yo so af oc ka be tg sd gu am yi lo uz fo ht ps tk nn mt sa lb my bo tl "
    "mg as tt haw ln ha ba jw su yue".split()
)

ResponseFormat = Literal["json", "text", "verbose_json", "srt", "vtt"]


class TranscribeResponse(BaseModel):
    text: str = Field(description="The transcript; empty when no speech was heard.")
    language: str = Field(description="Language code used or detected.")
    duration_s: float = Field(description="Length of the audio in seconds.")
    processing_s: float = Field(description="Time spent on this request, in seconds.")


class OpenAITranscription(BaseModel):
    text: str


class OpenAISegment(BaseModel):
    id: int
    seek: int = 0
    start: float
    end: float
    text: str
    tokens: list[int] = Field(default_factory=list)
    temperature: float = 0.0
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0


class OpenAIVerboseTranscription(BaseModel):
    task: Literal["transcribe"] = "transcribe"
    language: str
    duration: float
    text: str
    segments: list[OpenAISegment]


class HealthResponse(BaseModel):
    status: Literal["ok", "loading"]
    backend: str
    device: str | None
    model: str
    model_loaded: bool
    cpu_threads: int | None = None  # faster-whisper on a CPU: the count it chose or was given
    queue_waiting: int
