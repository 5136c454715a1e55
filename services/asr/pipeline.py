"""One transcription request end to end: VAD gate, the model, hallucination filter."""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from services.common.queue import InferenceQueue
from services.common.vad import FRAME, SAMPLE_RATE, SileroVAD

from .engine import Transcriber, Transcription, create_transcriber
from .filters import clean_segments, join_text
from .settings import ASRSettings

logger = logging.getLogger(__name__)

SPEECH_PROB = 0.5


class RecognitionPipeline:
    def __init__(self, settings: ASRSettings, transcriber: Transcriber | None = None) -> None:
        self.settings = settings
        self._transcriber = transcriber
        self._load_lock = threading.Lock()
        self.vad = SileroVAD() if settings.vad_gate else None
        self.queue = InferenceQueue(settings.max_queue)

    @property
    def loaded(self) -> bool:
        return self._transcriber is not None

    @property
    def transcriber(self) -> Transcriber:
        with self._load_lock:
            if self._transcriber is None:
                self._transcriber = create_transcriber(self.settings)
            return self._transcriber

    def speech_seconds(self, audio: np.ndarray) -> float:
        if self.vad is None:
            return len(audio) / SAMPLE_RATE
        probs = self.vad.speech_probs(audio)
        return float((probs > SPEECH_PROB).sum()) * FRAME / SAMPLE_RATE

    def _run(
        self, audio: np.ndarray, language: str | None, prompt: str | None, temperature: float
    ) -> Transcription:
        duration = len(audio) / SAMPLE_RATE
        if self.speech_seconds(audio) < self.settings.min_speech_s:
            # Silence or noise: Whisper would only invent credits here.
            return Transcription("", language or self.settings.language, duration, [])
        result = self.transcriber.transcribe(audio, language, prompt, temperature)
        result.segments = clean_segments(result.segments)
        result.text = join_text(result.segments, result.language)
        return result

    async def transcribe(
        self,
        audio: np.ndarray,
        language: str | None,
        prompt: str | None = None,
        temperature: float = 0.0,
    ) -> tuple[Transcription, float]:
        """Queue for the model, transcribe, and return the result with the time it took."""
        start = time.perf_counter()
        result = await self.queue.run(self._run, audio, language, prompt, temperature)
        elapsed = time.perf_counter() - start
        logger.info(
            "transcribed %.2f s of audio in %.2f s (%s): %r",
            result.duration_s,
            elapsed,
            result.language,
            result.text[:80],
        )
        return result, elapsed
