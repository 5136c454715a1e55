"""Decoding what clients send: formats, rates, channels, and the 4xx cases."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from services.asr.audio import decode_file, decode_pcm
from services.common.errors import APIError, PayloadTooLarge


def _tone(rate: int, seconds: float = 1.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    mono = 0.3 * np.sin(2 * np.pi * 440 * t)
    return np.stack([mono] * channels, axis=1) if channels > 1 else mono


@pytest.mark.parametrize(
    ("fmt", "rate", "channels"),
    [
        ("WAV", 16000, 1),
        ("WAV", 44100, 2),
        ("FLAC", 48000, 1),
        ("OGG", 22050, 2),
        ("MP3", 44100, 1),
    ],
)
def test_formats_resample_to_16k_mono(fmt: str, rate: int, channels: int) -> None:
    buf = io.BytesIO()
    sf.write(buf, _tone(rate, channels=channels), rate, format=fmt)
    audio = decode_file(buf.getvalue(), max_duration_s=60)
    assert audio.dtype == np.float32 and audio.ndim == 1
    # MP3 pads a frame or two; everything else keeps the length exactly
    assert abs(len(audio) - 16000) < 2000
    assert 0.15 < np.abs(audio).max() <= 1.0


def test_pcm_round_trip() -> None:
    samples = (np.sin(np.arange(8000) / 10) * 10000).astype("<i2")
    audio = decode_pcm(samples.tobytes(), 16000, max_duration_s=60)
    assert len(audio) == 8000
    np.testing.assert_allclose(audio, samples / 32768.0, atol=1e-6)


def test_pcm_at_other_rate_is_resampled() -> None:
    audio = decode_pcm(np.zeros(8000, "<i2").tobytes(), 8000, max_duration_s=60)
    assert len(audio) == 16000


@pytest.mark.parametrize(
    ("body", "rate", "code"),
    [
        (b"", 16000, "empty_audio"),
        (b"\x00\x01\x02", 16000, "odd_length_pcm"),
        (b"\x00\x00" * 10, 0, "invalid_sample_rate"),
        (b"\x00\x00" * 10, 10_000_000, "invalid_sample_rate"),
    ],
)
def test_bad_pcm(body: bytes, rate: int, code: str) -> None:
    with pytest.raises(APIError) as err:
        decode_pcm(body, rate, max_duration_s=60)
    assert err.value.code == code and err.value.status_code == 400


def test_too_long_is_413() -> None:
    with pytest.raises(PayloadTooLarge):
        decode_pcm(b"\x00\x00" * 16000 * 3, 16000, max_duration_s=2)
    buf = io.BytesIO()
    sf.write(buf, np.zeros(16000 * 3), 16000, format="WAV")
    with pytest.raises(PayloadTooLarge):
        decode_file(buf.getvalue(), max_duration_s=2)


@pytest.mark.parametrize("data", [b"", b"not audio at all" * 10, b"RIFF\x24\x00\x00\x00WAVEfmt "])
def test_bad_files(data: bytes) -> None:
    with pytest.raises(APIError) as err:
        decode_file(data, max_duration_s=60)
    assert err.value.status_code == 400
