"""faster-whisper (CTranslate2): the fast backend and the embedded default.

Whisper pads every input to a 30 s window, and on a CPU the encoder's cost is
that window, not the speech: a 3 s utterance costs as much as 30 s of audio.
CTranslate2's encoder accepts shorter inputs, so a short utterance is encoded
in a window just longer than itself (``min_window_s`` at least). On the test
clips (Japanese and English, 1 to 7 s) a 10 s window gave the same error rates
as 30 s with the encoder 8x faster; much shorter windows started to drop words.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from .engine import Segment, Transcription, resolve_device
from .models import hub_cache, resolve_model
from .settings import ASRSettings

logger = logging.getLogger(__name__)

FULL_WINDOW_S = 30  # Whisper's own: 3000 mel frames, 1500 encoder positions
FRAMES_PER_S = 100
TAIL_S = 1.0  # silence the window keeps after the speech, so the last word is not cut


def window_seconds(duration_s: float, min_window_s: int) -> int:
    """The encoder window for an utterance of ``duration_s``: whole seconds, at most 30."""
    return min(FULL_WINDOW_S, max(min_window_s, math.ceil(duration_s + TAIL_S)))


def _windowed_model(**kwargs: Any) -> Any:
    """A ``WhisperModel`` whose encoder sees only the first ``window_frames`` mel frames.

    faster-whisper pads each segment to 3000 frames right before encoding; the
    frames past the window are that padding, so cutting them there is all it takes.
    """
    from faster_whisper import WhisperModel

    class WindowedWhisper(WhisperModel):
        window_frames = FULL_WINDOW_S * FRAMES_PER_S

        def encode(self, features: np.ndarray) -> Any:
            return super().encode(features[..., : self.window_frames])

    return WindowedWhisper(**kwargs)


class FasterWhisperTranscriber:
    backend = "faster-whisper"

    def __init__(self, settings: ASRSettings) -> None:
        self.device = resolve_device(settings.device)
        compute_type = settings.compute_type
        if compute_type == "auto":
            # int8 on CPU is about twice as fast as float32 with the same transcripts here.
            compute_type = "float16" if self.device == "cuda" else "int8"
        self.model_name = resolve_model(settings)
        self.beam_size = settings.beam_size
        self.min_window_s = settings.min_window_s
        logger.info("loading %s on %s (%s)", self.model_name, self.device, compute_type)
        self._model = _windowed_model(
            model_size_or_path=self.model_name,
            device=self.device,
            compute_type=compute_type,
            # CTranslate2's threads are for big batches: one utterance's decoding steps are
            # small, and syncing threads per step cost more than they gained (see settings).
            cpu_threads=settings.cpu_threads or 1,
            download_root=str(hub_cache(settings)),
        )

    def transcribe(
        self,
        audio: np.ndarray,
        language: str | None,
        prompt: str | None = None,
        temperature: float = 0.0,
    ) -> Transcription:
        window = window_seconds(len(audio) / 16000, self.min_window_s)
        # One call at a time: the service's inference queue serialises the model.
        self._model.window_frames = window * FRAMES_PER_S
        segments, info = self._model.transcribe(
            audio,
            language=language,
            beam_size=self.beam_size,
            initial_prompt=prompt or None,
            temperature=temperature,
            # Each request is one utterance; conditioning on earlier windows feeds loops.
            condition_on_previous_text=False,
            vad_filter=False,  # the service runs Silero itself, before the model
        )
        out = [Segment(s.start, s.end, s.text, s.no_speech_prob, s.avg_logprob) for s in segments]
        return Transcription("", info.language, len(audio) / 16000, out)
