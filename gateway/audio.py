"""WAV helpers the turn needs: duration for pacing, and the client's JSON byte arrays."""

from __future__ import annotations

import io
import wave

import numpy as np


def wav_info(data: bytes) -> tuple[int, int, bytes]:
    """(sample rate, channels, PCM frames) of a 16-bit WAV file."""
    with wave.open(io.BytesIO(data), "rb") as w:
        return w.getframerate(), w.getnchannels(), w.readframes(w.getnframes())


def wav_duration(data: bytes) -> float:
    rate, channels, frames = wav_info(data)
    return len(frames) / (2 * channels * rate)


def _byte_table() -> tuple[np.ndarray, np.ndarray]:
    """For each byte value, its decimal digits and a comma (padded to 4), and the length."""
    table = np.zeros((256, 4), np.uint8)
    lengths = np.zeros(256, np.int64)
    for value in range(256):
        text = f"{value},".encode()
        table[value, : len(text)] = list(text)
        lengths[value] = len(text)
    return table, lengths


_TABLE, _LENGTHS = _byte_table()
_COLUMNS = np.arange(4)


def json_byte_array(data: bytes) -> str:
    """``data`` as a JSON array of numbers, the client's audio format.

    Vectorised: about 2x faster than joining Python strings and 8x faster than
    ``json.dumps(list(data))`` for the 100 KB WAVs a sentence makes.
    """
    if not data:
        return "[]"
    values = np.frombuffer(data, np.uint8)
    keep = _COLUMNS[None, :] < _LENGTHS[values][:, None]
    return "[" + _TABLE[values][keep].tobytes()[:-1].decode("ascii") + "]"
