"""Audio helpers shared with the gateway: levels, int16, encoders."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest
import soundfile as sf

from services.common import audio

RATE = 24000


def tone(amplitude: float, seconds: float = 0.5, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def level_db(x: np.ndarray, rate: int = RATE) -> float:
    return 20 * np.log10(audio.speech_level(x, rate))


def test_loudness_is_the_same_for_loud_and_quiet_input() -> None:
    quiet = audio.normalize_loudness(tone(0.01), RATE)
    loud = audio.normalize_loudness(tone(0.9), RATE)
    assert level_db(quiet) == pytest.approx(-20.0, abs=0.1)
    assert level_db(loud) == pytest.approx(-20.0, abs=0.1)


def test_pauses_do_not_make_speech_louder() -> None:
    with_pause = np.concatenate([tone(0.1), np.zeros(RATE * 2, np.float32)])
    assert audio.speech_level(with_pause, RATE) == pytest.approx(
        audio.speech_level(tone(0.1), RATE), rel=0.05
    )


def test_peak_ceiling_wins_over_level() -> None:
    spiky = tone(0.001)
    spiky[100] = 0.5  # a click: bringing the level up would push it far past full scale
    out = audio.normalize_loudness(spiky, RATE)
    assert np.max(np.abs(out)) <= audio.db_to_gain(-1.0) + 1e-6


def test_silence_is_not_amplified() -> None:
    hiss = np.full(RATE, 1e-7, np.float32)
    assert np.array_equal(audio.normalize_loudness(hiss, RATE), hiss)


def test_to_int16_never_clips() -> None:
    hot = tone(2.5)
    pcm = audio.to_int16(hot)
    assert pcm.dtype == np.int16
    assert int(np.max(np.abs(pcm.astype(np.int32)))) == 32767
    # scaled, not squared off: the shape is kept
    assert np.corrcoef(pcm.astype(np.float64), hot)[0, 1] > 0.9999


def test_trim_silence_keeps_a_little_padding() -> None:
    x = np.concatenate([np.zeros(RATE, np.float32), tone(0.5), np.zeros(RATE, np.float32)])
    trimmed = audio.trim_silence(x, RATE, pad_s=0.03)
    assert len(trimmed) == pytest.approx(len(tone(0.5)) + 2 * 0.03 * RATE, abs=60)


def test_wav_and_pcm_encoding() -> None:
    pcm = audio.to_int16(tone(0.5))
    data, rate = audio.encode(pcm, RATE, "wav")
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getframerate(), w.getsampwidth(), w.getnchannels()) == (RATE, 2, 1)
        assert np.array_equal(np.frombuffer(w.readframes(w.getnframes()), "<i2"), pcm)
    raw, _ = audio.encode(pcm, RATE, "pcm")
    assert raw == pcm.astype("<i2").tobytes()


@pytest.mark.parametrize(
    ("fmt", "rate", "out_rate"), [("flac", RATE, RATE), ("mp3", RATE, RATE), ("opus", 44100, 48000)]
)
def test_compressed_formats_decode(fmt: str, rate: int, out_rate: int) -> None:
    pcm = audio.to_int16(tone(0.5, rate=rate))
    data, got_rate = audio.encode(pcm, rate, fmt)
    decoded, decoded_rate = sf.read(io.BytesIO(data))
    assert got_rate == decoded_rate == out_rate
    assert abs(len(decoded) / out_rate - 0.5) < 0.1


def test_resample() -> None:
    out = audio.resample(tone(0.5), RATE, 16000)
    assert len(out) == 8000
