"""faster-whisper's thread count: chosen by timing both at start, since machines differ."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import soundfile as sf
import soxr

from services.asr.backend_ctranslate2 import FasterWhisperTranscriber, choose_threads
from services.asr.settings import ASRSettings
from services.common.settings import available_cores


def test_the_faster_median_wins_and_a_tie_takes_fewer_threads() -> None:
    assert choose_threads({1: [0.69, 0.70, 0.72], 2: [0.49, 0.53, 0.90]}) == 2
    assert choose_threads({1: [0.22, 0.25], 2: [0.42, 0.45]}) == 1
    assert choose_threads({1: [0.5], 4: [0.5]}) == 1


@pytest.mark.slow
@pytest.mark.skipif(available_cores() < 2, reason="one core: nothing to choose")
def test_automatic_threads_are_timed_then_transcribe(
    cache_dir: Path, jsut_wav: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="services.asr.backend_ctranslate2"):
        transcriber = FasterWhisperTranscriber(ASRSettings(cache_dir=cache_dir, cpu_threads=0))
    cores = available_cores()
    assert transcriber.threads in (1, cores)
    chosen = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("ASR th"))
    assert "with 1" in chosen and f"with {cores}" in chosen, chosen
    audio, rate = sf.read(jsut_wav, dtype="float32")
    text = transcriber.transcribe(soxr.resample(audio, rate, 16000), "ja").segments
    assert "マレーシア" in "".join(s.text for s in text), text
