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


def test_the_faster_model_is_kept_and_the_other_freed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The choice itself, with stand-in models whose speed depends on their threads."""
    import gc
    import time
    import weakref
    from types import SimpleNamespace
    from typing import Any

    from services.asr import backend_ctranslate2 as backend

    made: list[weakref.ref[Any]] = []

    class Model:
        def __init__(self, cpu_threads: int, **_: Any) -> None:
            self.threads = cpu_threads
            made.append(weakref.ref(self))

        def transcribe(self, audio: Any, **options: Any) -> tuple[Any, Any]:
            assert options["max_new_tokens"] == backend.PROBE_TOKENS
            time.sleep(0.002 if self.threads == 4 else 0.02)
            return iter([]), SimpleNamespace(language="en")

    monkeypatch.setattr(backend, "_windowed_model", Model)
    monkeypatch.setattr(backend, "available_cores", lambda: 4)
    monkeypatch.setattr(backend, "resolve_model", lambda settings: "tiny")
    with caplog.at_level(logging.INFO, logger=backend.__name__):
        transcriber = backend.FasterWhisperTranscriber(ASRSettings(device="cpu"))
    gc.collect()
    assert transcriber.threads == 4 and transcriber._model.threads == 4
    assert [ref() for ref in made if ref() is not None] == [transcriber._model]
    assert any("ASR threads: 4" in r.getMessage() for r in caplog.records)
