"""The ASR's VAD gate: the same answer as counting every frame, from fewer frames."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soxr
from faster_whisper.audio import decode_audio

from services.asr.pipeline import SPEECH_PROB, RecognitionPipeline
from services.asr.settings import ASRSettings
from services.common.vad import FRAME, SAMPLE_RATE


class CountingPipeline(RecognitionPipeline):
    """Counts the frames the gate's VAD reads."""

    def __init__(self, settings: ASRSettings) -> None:
        super().__init__(settings, transcriber=object())  # type: ignore[arg-type]
        assert self.vad is not None
        self.frames_read = 0
        inner = self.vad.iter_speech_probs

        def counted(audio: np.ndarray) -> Iterator[float]:
            for p in inner(audio):
                self.frames_read += 1
                yield p

        self.vad.iter_speech_probs = counted  # type: ignore[method-assign]


def clips(jsut_wav: Path, librivox_clips: list[tuple[Path, str]]) -> dict[str, np.ndarray]:
    audio, rate = decode_audio(str(jsut_wav), sampling_rate=48000), 48000
    rng = np.random.default_rng(3)
    speech = soxr.resample(audio, rate, SAMPLE_RATE).astype(np.float32)
    # the first 0.12 s of speech after 2 s of silence: near the default threshold
    start = int(np.argmax(np.abs(speech) > 0.05))
    blip = np.concatenate([np.zeros(2 * SAMPLE_RATE), speech[start : start + 1920], np.zeros(8000)])
    return {
        "japanese": speech,
        "english": decode_audio(str(librivox_clips[0][0]), sampling_rate=SAMPLE_RATE),
        "silence": np.zeros(3 * SAMPLE_RATE, dtype=np.float32),
        "noise": rng.normal(0, 0.1, 3 * SAMPLE_RATE).astype(np.float32),
        "blip": blip.astype(np.float32),
    }


@pytest.mark.parametrize("min_speech_s", [0.0, 0.15, 0.5, 2.0])
def test_gate_agrees_with_counting_every_frame(
    jsut_wav: Path, librivox_clips: list[tuple[Path, str]], min_speech_s: float
) -> None:
    pipeline = CountingPipeline(ASRSettings(min_speech_s=min_speech_s))
    assert pipeline.vad is not None
    answers = {}
    for name, audio in clips(jsut_wav, librivox_clips).items():
        probs = pipeline.vad.speech_probs(audio)
        speech_s = float((probs > SPEECH_PROB).sum()) * FRAME / SAMPLE_RATE
        answers[name] = pipeline.has_speech(audio)
        assert answers[name] == (speech_s >= min_speech_s), (name, speech_s)
    if min_speech_s == 0.15:  # the default: speech passes, silence and noise do not
        assert answers["japanese"] and answers["english"]
        assert not answers["silence"] and not answers["noise"]


def test_gate_stops_reading_once_it_has_enough(
    jsut_wav: Path, librivox_clips: list[tuple[Path, str]]
) -> None:
    pipeline = CountingPipeline(ASRSettings(min_speech_s=0.15))
    audios = clips(jsut_wav, librivox_clips)
    for name in ("japanese", "english"):
        audio = audios[name]
        pipeline.frames_read = 0
        assert pipeline.has_speech(audio)
        total = len(audio) // FRAME
        assert pipeline.frames_read < total / 4, (name, pipeline.frames_read, total)
    pipeline.frames_read = 0
    assert not pipeline.has_speech(np.zeros(SAMPLE_RATE, dtype=np.float32))
    assert pipeline.frames_read == SAMPLE_RATE // FRAME  # silence is read to the end
