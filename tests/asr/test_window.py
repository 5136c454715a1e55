"""The short encoder window of faster-whisper: what it encodes, and that it still hears."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
import soxr

from bench.metrics import cer, wer
from services.asr.backend_ctranslate2 import FasterWhisperTranscriber, window_seconds
from services.asr.settings import ASRSettings
from tests.conftest import JSUT_TEXT


def test_window_covers_the_utterance_plus_a_second() -> None:
    assert window_seconds(3.19, 10) == 10  # short: the floor
    assert window_seconds(9.5, 10) == 11  # whole seconds, one past the speech
    assert window_seconds(1.0, 3) == 3
    assert window_seconds(40.0, 10) == 30  # Whisper's own window is the ceiling
    assert window_seconds(2.0, 30) == 30  # 30 turns the short window off


def _load(path: Path) -> Any:
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    return soxr.resample(audio.mean(axis=1), rate, 16000)


@pytest.mark.slow
def test_short_window_is_encoded_and_as_accurate_as_30_s(
    cache_dir: Path, jsut_wav: Path, librivox_clips: list[tuple[Path, str]]
) -> None:
    transcriber = FasterWhisperTranscriber(ASRSettings(cache_dir=cache_dir, cpu_threads=2))
    seen: list[int] = []
    encode = transcriber._model.encode

    def spy(features: Any) -> Any:
        out = encode(features)
        seen.append(out.shape[1])  # encoder positions: two per mel frame... halved
        return out

    transcriber._model.encode = spy
    clips = [(_load(jsut_wav), "ja")] + [(_load(p), "en") for p, _ in librivox_clips]

    def texts() -> list[str]:
        out = []
        for audio, language in clips:
            segments = transcriber.transcribe(audio, language).segments
            out.append("".join(s.text for s in segments))
        return out

    short = texts()
    # JSUT is 3.2 s: a 10 s window, 500 encoder positions instead of 1500
    assert seen[0] == 500, seen
    assert all(n < 1500 for n in seen), seen
    transcriber.min_window_s = 30
    seen.clear()
    full = texts()
    assert set(seen) == {1500}
    refs = [ref for _, ref in librivox_clips]
    assert cer(JSUT_TEXT, short[0]) <= max(cer(JSUT_TEXT, full[0]), 0.10), short[0]
    assert wer(refs, short[1:]) <= max(wer(refs, full[1:]), 0.15), short[1:]
