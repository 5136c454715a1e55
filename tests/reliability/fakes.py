"""Fake engines for the reliability tests: instant, fixed-size output, never a model."""

from __future__ import annotations

import numpy as np

from services.asr.engine import Segment, Transcription
from services.tts.engine import SynthesisOptions, Voice


class FakeTranscriber:
    """Answers every request with the same short text, whatever the audio."""

    backend = "fake"
    device = "cpu"
    model_name = "fake"

    def transcribe(self, audio, language, prompt=None, temperature=0.0):  # noqa: ANN001, ANN201
        return Transcription("", language or "ja", len(audio) / 16000, [Segment(0, 1, "はい")])


class FixedSynth:
    """0.1 s of tone per sentence, whatever the text: fuzzed 2,000-character inputs stay cheap."""

    name = "fake"

    def voices(self) -> list[Voice]:
        return [
            Voice("alpha", self.name, 16000, styles=("Neutral", "Happy")),
            Voice("beta", self.name, 16000, languages=("ja", "en")),
        ]

    def synthesize(self, text: str, voice: str, options: SynthesisOptions) -> np.ndarray:
        t = np.arange(1600) / 16000
        return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
