"""ASR service settings (environment prefix ``ASR_``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings

EMBEDDED = "embedded"


class ASRSettings(ServiceSettings):
    """Settings of the speech-recognition service."""

    model_config = SettingsConfigDict(
        env_prefix="ASR_", env_file=".env", use_attribute_docstrings=True, extra="ignore"
    )

    port: int = Field(8001, ge=1, le=65535)
    """TCP port to listen on."""
    backend: Literal["faster-whisper", "transformers"] = "faster-whisper"
    """Inference engine: CTranslate2 (faster-whisper) or PyTorch (transformers)."""
    model: str = EMBEDDED
    """'embedded' (Whisper base from the installed packages), a local folder, or a hub id such as openai/whisper-large-v3-turbo (transformers) or large-v3-turbo (faster-whisper)."""  # noqa: E501
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where to run: 'auto' takes CUDA when present."""
    compute_type: str = "auto"
    """faster-whisper precision: auto (int8 on CPU, float16 on CUDA), int8, float16, float32."""
    cpu_threads: int = Field(0, ge=0, le=256)
    """Threads for CPU inference. 0: faster-whisper times one thread and one per core on a
    probe at start and keeps the faster (which wins differs between machines); transformers
    one per core."""
    beam_size: int = Field(3, ge=1, le=10)
    """Beam width. 1 is greedy and fastest but misreads Japanese names (マレーシア as まれしや);
    3 matched 5's error rates on the test clips and is about a third faster."""
    min_window_s: int = Field(10, ge=1, le=30)
    """faster-whisper only: the shortest encoder window, in seconds. Whisper pads every input to
    30 s; an utterance shorter than this window less 1 s is padded to the window instead (for a 3 s
    clip the encoder took 0.06 s instead of 0.46 s, same error rates on the test clips). 30: off."""
    language: str = "ja"
    """Default language when a request names none; 'auto' detects it."""
    max_upload_mb: float = Field(25.0, gt=0, le=2048)
    """Largest accepted request body, in MB (413 beyond)."""
    max_duration_s: float = Field(600.0, gt=0, le=7200)
    """Longest accepted audio, in seconds (413 beyond)."""
    vad_gate: bool = True
    """Skip Whisper when Silero VAD finds no speech, so silence and noise give empty text."""
    min_speech_s: float = Field(0.15, ge=0, le=10)
    """Speech the VAD must find before Whisper runs at all."""
    preload: bool = True
    """Load the model at start-up (else on the first request)."""
