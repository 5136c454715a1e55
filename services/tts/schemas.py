"""Request and response bodies of the TTS routes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from .engine import SynthesisOptions


class SynthesizeRequest(BaseModel):
    """``POST /synthesize`` and ``/synthesize/stream``. Style-Bert-VITS2 honours every knob;
    Kokoro only ``speed``; OpenJTalk and eSpeak ``speed`` and ``pitch`` (see ``GET /voices``)."""

    text: str = Field(description="What to say. Markdown, URLs and emoji are skipped.")
    voice: str | None = Field(
        None,
        description="Voice id from GET /voices. Unset: the default voice, or for text it "
        "cannot speak (English) the first voice that can.",
    )
    style: str | None = Field(
        None, description="Style of the voice (e.g. Happy); its first if unset."
    )
    speed: float = Field(1.0, ge=0.25, le=4.0, description="Speaking rate; 2.0 is twice as fast.")
    format: Literal["wav", "pcm"] = Field(
        "wav", description="wav: a 16-bit mono WAV file; pcm: raw int16 little-endian samples."
    )
    sample_rate: int | None = Field(
        None, ge=8000, le=48000, description="Resample to this rate; the voice's own rate if unset."
    )
    style_weight: float = Field(1.0, ge=0.0, le=20.0, description="How strongly the style applies.")
    sdp_ratio: float = Field(
        0.2, ge=0.0, le=1.0, description="Stochastic duration share: livelier tempo."
    )
    noise: float = Field(0.6, ge=0.0, le=2.0, description="Noise scale: variation in the voice.")
    noise_w: float = Field(0.8, ge=0.0, le=2.0, description="Duration noise: variation in timing.")
    pitch: float = Field(0.0, ge=-12.0, le=12.0, description="Pitch shift in semitones.")
    intonation: float = Field(1.0, ge=0.0, le=2.0, description="Intonation range; 1.0 as trained.")

    def options(self, style: str) -> SynthesisOptions:
        return SynthesisOptions(
            style=style,
            speed=self.speed,
            style_weight=self.style_weight,
            sdp_ratio=self.sdp_ratio,
            noise=self.noise,
            noise_w=self.noise_w,
            pitch=self.pitch,
            intonation=self.intonation,
        )


class SpeechRequest(BaseModel):
    """``POST /v1/audio/speech``, as the OpenAI SDK sends it."""

    model: str = Field(
        "tts-1",
        description="Any name; a backend name (kokoro, openjtalk, espeak, style-bert-vits2) "
        "picks it.",
    )
    input: str = Field(description="The text to speak.")
    voice: str | None = Field(
        None, description="A voice id from GET /voices; OpenAI names (alloy, ...) mean the default."
    )
    response_format: Literal["wav", "pcm", "flac", "mp3", "opus"] = Field(
        "mp3", description="pcm is 24 kHz int16 little-endian mono, as OpenAI's."
    )
    speed: float = Field(1.0, ge=0.25, le=4.0)
    instructions: str | None = Field(None, description="Accepted for compatibility; ignored.")


class VoiceInfo(BaseModel):
    id: str
    backend: str
    languages: list[str]
    styles: list[str]
    sample_rate: int
    knobs: list[str] = Field(description="Request fields this voice honours.")
    description: str
    default: bool


class VoicesResponse(BaseModel):
    default_voice: str
    voices: list[VoiceInfo]
    formats: list[str] = Field(description="Formats of /synthesize; /v1/audio/speech adds more.")


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"
    backends: list[str]
    voices: int
    busy: bool = Field(description="Some model is synthesizing right now.")
