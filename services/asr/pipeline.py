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

    def has_speech(self, audio: np.ndarray) -> bool:
        """Whether the VAD finds ``min_speech_s`` of speech in ``audio`` (the whole audio
        counts as speech without the gate).

        It stops reading at the frame that reaches ``min_speech_s``: in real speech that is
        within the first second, so the gate costs a few frames instead of the whole clip
        (20-50 ms for 3-7 s on two cores, every one of them before Whisper starts).
        """
        need = self.settings.min_speech_s * SAMPLE_RATE
        if self.vad is None:
            return len(audio) >= need
        if need <= 0:
            return True
        found = 0
        for prob in self.vad.iter_speech_probs(audio):
            if prob > SPEECH_PROB:
                found += FRAME
                if found >= need:
                    return True
        return False

    def _run(
        self, audio: np.ndarray, language: str | None, prompt: str | None, temperature: float
    ) -> Transcription:
        duration = len(audio) / SAMPLE_RATE
        if not self.has_speech(audio):
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
