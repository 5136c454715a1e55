"""The ``Transcriber`` protocol, its result, and the backend registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from services.common.registry import load_factory

if TYPE_CHECKING:
    from .settings import ASRSettings


@dataclass
class Segment:
    start: float
    end: float
    text: str
    no_speech_prob: float = 0.0
    avg_logprob: float = 0.0


@dataclass
class Transcription:
    text: str
    language: str
    duration_s: float
    segments: list[Segment] = field(default_factory=list)


class Transcriber(Protocol):
    """A speech recogniser over 16 kHz mono float32 audio."""

    backend: str
    device: str
    model_name: str

    def transcribe(
        self,
        audio: np.ndarray,
        language: str | None,
        prompt: str | None = None,
        temperature: float = 0.0,
    ) -> Transcription:
        """Transcribe ``audio``; ``language`` None means detect it."""
        ...


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:  # faster-whisper alone needs no torch
        import ctranslate2

        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


# backend name -> "module:factory"; imported only when chosen, so a container
# with one backend installed never imports the other's heavy packages.
BACKENDS: dict[str, str] = {
    "faster-whisper": "services.asr.backend_ctranslate2:FasterWhisperTranscriber",
    "transformers": "services.asr.backend_transformers:TransformersTranscriber",
}


def create_transcriber(settings: ASRSettings) -> Transcriber:
    factory: Callable[[ASRSettings], Transcriber] = load_factory(BACKENDS[settings.backend])
    return factory(settings)
