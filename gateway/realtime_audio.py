"""PCM16 conversions for ``/v1/realtime``: the client's rate in, the client's rate out.

The VAD and ASR run at 16 kHz; Realtime clients send 24 kHz by default (or the
rate they declared) and expect the same back. Input is resampled as one stream,
so chunk boundaries leave no clicks or gaps; output is resampled per TTS WAV,
each of which stands alone.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator

import numpy as np
import soxr

from .audio import wav_info

VAD_RATE = 16000


TRANSITION_HZ = 1500  # the filter's transition band: it passes up to 6.5 kHz from 24 kHz
FEW_PHASES = 8  # up to this many filter phases, one correlation per phase


@functools.lru_cache(maxsize=8)
def _polyphase_filter(rate_in: int, rate_out: int) -> np.ndarray:
    """:class:`LowDelayResampler`'s filter as (L phases, taps per phase), float32."""
    g = math.gcd(rate_in, rate_out)
    up = rate_out // g
    # the window's transition width is 4 / n of the upsampled rate, n = up * taps
    transition_hz = min(TRANSITION_HZ, 0.1 * min(rate_in, rate_out))
    taps = math.ceil(4 * rate_in / transition_hz)
    n = up * taps
    # cut-off, as a fraction of the upsampled rate: the transition ends at the lower Nyquist
    cutoff = 0.5 * min(rate_in, rate_out) / (rate_in * up) - 2.0 / n
    t = np.arange(n) - (n - 1) / 2
    h = 2 * cutoff * np.sinc(2 * cutoff * t) * np.kaiser(n, 8.0)
    h *= up / h.sum()  # unity gain after the zeros the upsampling inserts
    return np.ascontiguousarray(h.reshape(taps, up).T, dtype=np.float32)


class LowDelayResampler:
    """A streaming rational resampler (up by L, low-pass, down by M, as a polyphase FIR)
    whose output lags its input by half its short filter only.

    soxr's streaming resampler (quality HQ) held back 7-36 ms of a 24 kHz stream fed in
    40 ms chunks, 21 ms on average, so the VAD heard the end of the speech that much
    later than on ``/ws``. This filter (a Kaiser-windowed sinc, a stop band 85 dB down or more) is
    as long as a ``TRANSITION_HZ`` wide transition band needs, which ends at the lower
    Nyquist frequency: 64 input samples and 1.3 ms of delay from 24 kHz, flat to
    6.5 kHz. Plenty for the VAD and Whisper, which hear nothing above 8 kHz (the bench
    clips' transcripts came out the same through both). It costs about 1.5 times soxr's
    CPU: 0.1-0.35 ms per 40 ms append at 24 kHz on a 2-core VM (soxr 0.03-0.23 ms), more
    when the appends come apart than back to back, as the caches cool between them.
    """

    def __init__(self, rate_in: int, rate_out: int) -> None:
        g = math.gcd(rate_in, rate_out)
        self.up, self.down = rate_out // g, rate_in // g
        # phases[p][m] weighs input sample i0 - m for an output at upsampled index i0*L + p
        phases = _polyphase_filter(rate_in, rate_out)
        self.k = phases.shape[1]
        self._reversed = np.ascontiguousarray(phases[:, ::-1])  # oldest input first
        self._history = np.zeros(self.k - 1, np.float32)  # input before this chunk
        self._seen = 0  # input samples so far
        self._made = 0  # output samples so far

    def process(self, samples: np.ndarray) -> np.ndarray:
        """The output samples that ``samples`` (float32) completes, in order."""
        self._seen += len(samples)
        # outputs j whose newest input sample floor(j*M/L) has arrived
        end = (self._seen * self.up - 1) // self.down + 1 if self._seen else 0
        js = np.arange(self._made, end)
        self._made = end
        buf = np.concatenate([self._history, samples.astype(np.float32)])
        base = self._seen - len(buf)  # the input index of buf[0]
        self._history = buf[len(buf) - (self.k - 1) :]
        if not len(js):
            return np.zeros(0, np.float32)
        # The output whose newest input is buf[n] takes buf[n - k + 1 : n + 1], weighed by
        # its phase's taps in reverse: row n - k + 1 of a view of every k-long window.
        first_row = -base - (self.k - 1)
        if self.up > FEW_PHASES:  # e.g. 44.1 kHz: 160 phases, about 4 outputs each a chunk
            t = js * self.down
            rows = _windows(buf, self.k)[t // self.up + first_row]
            return np.einsum("ij,ij->i", rows, self._reversed[t % self.up])
        # Outputs up apart share a phase and lie down inputs apart: one correlation per
        # phase (24 kHz has 2 phases, 48 kHz 1), every down-th value of it. Not np.dot:
        # numpy's BLAS threads then spin between the 40 ms appends and kept a core busy.
        out = np.empty(len(js), np.float32)
        for q in range(min(self.up, len(js))):
            t0 = int(js[q]) * self.down
            count = len(range(q, len(js), self.up))
            start = t0 // self.up + first_row
            span = buf[start : start + (count - 1) * self.down + self.k]
            taps = self._reversed[t0 % self.up]
            out[q :: self.up] = np.correlate(span, taps, "valid")[:: self.down]
        return out


def _windows(buf: np.ndarray, k: int) -> np.ndarray:
    """Every ``k``-long window of ``buf``, row r being ``buf[r : r + k]``: a view, no copy
    (numpy's sliding_window_view costs more than the product here)."""
    size = buf.itemsize
    return np.ndarray((len(buf) - k + 1, k), buf.dtype, buffer=buf, strides=(size, size))


class InputResampler:
    """Client PCM16 chunks (any byte length, even odd) to 16 kHz PCM16."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._odd = b""  # a sample split across two appends
        self._stream = None if rate == VAD_RATE else LowDelayResampler(rate, VAD_RATE)

    def feed(self, data: bytes) -> bytes:
        data = self._odd + data
        whole = len(data) - len(data) % 2
        data, self._odd = data[:whole], data[whole:]
        if self._stream is None or not data:
            return data
        samples = np.frombuffer(data, dtype="<i2").astype(np.float32)
        out = np.clip(np.rint(self._stream.process(samples)), -32768, 32767)
        return bytes(out.astype("<i2").tobytes())


def wav_to_pcm(wav: bytes, rate: int) -> bytes:
    """A 16-bit WAV as mono PCM16 at ``rate``."""
    source_rate, channels, frames = wav_info(wav)
    samples = np.frombuffer(frames, dtype="<i2")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).astype(np.int16)
    if source_rate != rate and len(samples):
        samples = soxr.resample(samples, source_rate, rate)
    return bytes(samples.astype("<i2").tobytes())


def chunks(pcm: bytes, rate: int, ms: int) -> Iterator[bytes]:
    """``pcm`` in pieces of ``ms`` milliseconds (whole samples)."""
    size = max(2, rate * ms // 1000 * 2)
    for i in range(0, len(pcm), size):
        yield pcm[i : i + size]
