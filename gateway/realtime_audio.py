"""PCM16 conversions for ``/v1/realtime``: the client's rate in, the client's rate out.

The VAD and ASR run at 16 kHz; Realtime clients send 24 kHz by default (or the
rate they declared) and expect the same back. Input is resampled as one stream,
so chunk boundaries leave no clicks or gaps; output is resampled per TTS WAV,
each of which stands alone.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import soxr

from .audio import wav_info

VAD_RATE = 16000


class InputResampler:
    """Client PCM16 chunks (any byte length, even odd) to 16 kHz PCM16."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._odd = b""  # a sample split across two appends
        self._stream = None if rate == VAD_RATE else soxr.ResampleStream(rate, VAD_RATE, 1, "int16")

    def feed(self, data: bytes) -> bytes:
        data = self._odd + data
        whole = len(data) - len(data) % 2
        data, self._odd = data[:whole], data[whole:]
        if self._stream is None or not data:
            return data
        samples = np.frombuffer(data, dtype="<i2")
        return bytes(self._stream.resample_chunk(samples).astype("<i2").tobytes())


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
