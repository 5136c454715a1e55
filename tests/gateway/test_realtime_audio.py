"""The Realtime input resampler: faithful, and quick to hand the VAD what it was sent."""

from __future__ import annotations

import time

import numpy as np
import pytest

from gateway.realtime_audio import InputResampler, LowDelayResampler


def tone(freq: float, rate: int, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate)).astype(
        np.float32
    )


def rms_db(x: np.ndarray, reference: float) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(x**2)) / reference))


def in_pieces(r: LowDelayResampler, x: np.ndarray, sizes: list[int]) -> np.ndarray:
    out, i = [], 0
    for n in sizes:
        out.append(r.process(x[i : i + n]))
        i += n
    out.append(r.process(x[i:]))
    return np.concatenate(out)


@pytest.mark.parametrize("rate", [8000, 22050, 24000, 44100, 48000])
def test_a_tone_comes_out_at_16k_as_it_went_in_only_slightly_late(rate: int) -> None:
    r = LowDelayResampler(rate, 16000)
    y = r.process(tone(1000, rate))
    assert len(y) == 16000  # one second in, one second out
    # the same tone at 16 kHz, late by half the filter
    delay_s = (r.up * r.k - 1) / 2 / (rate * r.up)
    assert delay_s < (0.0015 if rate >= 16000 else 0.003)  # 8 kHz: a narrower transition
    t = np.arange(len(y)) / 16000 - delay_s
    expected = 0.5 * np.sin(2 * np.pi * 1000 * t)
    steady = slice(1600, None)  # after the filter has filled
    error = y[steady] - expected[steady]
    assert rms_db(error, float(np.sqrt(np.mean(expected[steady] ** 2)))) < -60


@pytest.mark.parametrize("rate", [24000, 48000])
def test_what_the_16k_output_cannot_hold_is_filtered_out_not_folded_in(rate: int) -> None:
    # 10 kHz would alias to 6 kHz at 16 kHz; speech up to 6 kHz passes untouched
    assert rms_db(LowDelayResampler(rate, 16000).process(tone(10000, rate))[1600:], 0.354) < -60
    assert abs(rms_db(LowDelayResampler(rate, 16000).process(tone(6000, rate))[1600:], 0.354)) < 0.1


def test_chunk_boundaries_change_nothing() -> None:
    x = np.random.default_rng(0).normal(0, 0.1, 24000).astype(np.float32)
    whole = LowDelayResampler(24000, 16000).process(x)
    sizes = [int(n) for n in np.random.default_rng(1).integers(0, 700, 60)]
    pieces = in_pieces(LowDelayResampler(24000, 16000), x, sizes)
    np.testing.assert_allclose(pieces, whole, atol=1e-6)


def test_each_40_ms_append_is_heard_at_once() -> None:
    """soxr's stream held back up to 36 ms of each 40 ms chunk: the VAD heard the end of
    the speech late. Here all of a chunk's output comes with it, every time."""
    r = LowDelayResampler(24000, 16000)
    x = np.random.default_rng(2).normal(0, 0.1, 24000 * 3).astype(np.float32)
    made = 0
    for i in range(0, len(x), 960):
        made += len(r.process(x[i : i + 960]))
        assert made == (i + 960) * 2 // 3


def test_pcm16_appends_of_odd_length_resample_as_one_stream() -> None:
    x = (tone(440, 24000) * 32767).astype("<i2").tobytes()
    whole = InputResampler(24000).feed(x)
    r = InputResampler(24000)
    cuts = [0, 1, 2, 1001, 1002, 5003, 9999, 30000, len(x)]
    pieces = b"".join(r.feed(x[a:b]) for a, b in zip(cuts, cuts[1:], strict=False))
    assert pieces == whole and len(whole) == 16000 * 2
    assert InputResampler(16000).feed(x[:1001]) == x[:1000]  # 16 kHz passes as it is


def test_resampling_between_appends_leaves_the_cpu_alone() -> None:
    """A first version multiplied with np.dot: numpy's BLAS threads then spun between the
    40 ms appends and kept a core busy for as long as a Realtime session lasted (the
    gateway took 13-14 s of CPU in a 13 s turn). Between appends the process must idle."""
    r = InputResampler(24000)
    x = (tone(440, 24000, seconds=2.0) * 32767).astype("<i2").tobytes()
    start_cpu, start = time.process_time(), time.perf_counter()
    for i in range(0, len(x), 1920):
        r.feed(x[i : i + 1920])
        time.sleep(0.02)
    cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start
    # about 0.3 ms of work per 20 ms of sleep; a spinning thread makes it about 1
    assert cpu / wall < 0.5, (cpu, wall)
