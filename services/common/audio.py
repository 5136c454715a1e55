"""Audio out: loudness and peak normalisation, int16 conversion, WAV/PCM/FLAC/MP3/Opus bytes.

Shared by the TTS service and the gateway. Everything works on mono float32
in [-1, 1] until :func:`to_int16`, which never clips: a voice that comes out
too hot is scaled down, not squared off (clipping is audible as crackle).
"""

from __future__ import annotations

import io
import wave

import numpy as np
import soundfile as sf
import soxr

FORMATS = ("wav", "pcm", "flac", "mp3", "opus")
MEDIA_TYPES = {
    "wav": "audio/wav",
    "pcm": "audio/pcm",
    "flac": "audio/flac",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
}
# libsndfile's Opus encoder accepts only these rates; anything else is resampled to 48 kHz.
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)

TARGET_LEVEL_DBFS = -20.0
"""Active speech level every sentence is brought to (about broadcast dialogue level)."""
PEAK_CEILING_DBFS = -1.0
"""Highest sample allowed after normalisation: headroom for resampling and codecs."""


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def speech_level(audio: np.ndarray, sample_rate: int) -> float:
    """RMS over the loud 20 ms frames only (a simple gate, after ITU-T P.56's idea).

    Plain RMS would call a sentence with long pauses quiet and boost it; gating
    at 30 dB below the loudest frame measures the voice, not the pauses.
    """
    frame = max(1, sample_rate // 50)
    n = len(audio) // frame
    if n == 0:
        return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if len(audio) else 0.0
    frames = audio[: n * frame].astype(np.float64).reshape(n, frame)
    energy = np.mean(np.square(frames), axis=1)
    loud = energy[energy >= energy.max() * 1e-3]
    return float(np.sqrt(np.mean(loud))) if len(loud) else 0.0


def normalize_loudness(
    audio: np.ndarray,
    sample_rate: int,
    target_dbfs: float = TARGET_LEVEL_DBFS,
    peak_dbfs: float = PEAK_CEILING_DBFS,
) -> np.ndarray:
    """Scale ``audio`` to ``target_dbfs`` speech level, but never above ``peak_dbfs`` peak.

    Applied per sentence, so every sentence and every voice comes out at the
    same level; near-silence (a model's failed output) is returned unchanged
    rather than amplified into noise.
    """
    audio = np.asarray(audio, dtype=np.float32)
    level = speech_level(audio, sample_rate)
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    if level < 1e-5 or peak == 0.0:
        return audio
    gain = min(db_to_gain(target_dbfs) / level, db_to_gain(peak_dbfs) / peak)
    return (audio * gain).astype(np.float32)


def trim_silence(
    audio: np.ndarray, sample_rate: int, threshold_dbfs: float = -50.0, pad_s: float = 0.03
) -> np.ndarray:
    """Cut leading and trailing near-silence, keeping ``pad_s`` around the speech.

    Voices pad their output differently (HTS adds about 0.2 s each side); trimming
    makes the pause between sentences the same whatever the voice.
    """
    audio = np.asarray(audio, dtype=np.float32)
    loud = np.flatnonzero(np.abs(audio) > db_to_gain(threshold_dbfs))
    if len(loud) == 0:
        return audio
    pad = int(pad_s * sample_rate)
    return audio[max(0, loud[0] - pad) : loud[-1] + 1 + pad]


def to_int16(audio: np.ndarray) -> np.ndarray:
    """Float [-1, 1] to int16; input louder than full scale is scaled down, never clipped."""
    audio = np.asarray(audio, dtype=np.float32)
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    if peak > 1.0:
        audio = audio / peak
    return np.round(audio * 32767.0).astype(np.int16)


def int16_to_float(pcm: np.ndarray) -> np.ndarray:
    return (np.asarray(pcm, dtype=np.float32) / 32768.0).astype(np.float32)


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """High-quality resampling of mono float audio (no-op when the rates match)."""
    if from_rate == to_rate or len(audio) == 0:
        return np.asarray(audio, dtype=np.float32)
    return np.asarray(soxr.resample(audio, from_rate, to_rate, quality="HQ"), dtype=np.float32)


def silence(seconds: float, sample_rate: int) -> np.ndarray:
    return np.zeros(int(round(seconds * sample_rate)), dtype=np.float32)


def wav_bytes(pcm: np.ndarray, sample_rate: int) -> bytes:
    """A complete 16-bit mono WAV file."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(np.asarray(pcm, dtype="<i2").tobytes())
    return buf.getvalue()


def encode(pcm: np.ndarray, sample_rate: int, fmt: str) -> tuple[bytes, int]:
    """Encode int16 mono ``pcm`` as ``fmt`` (one of :data:`FORMATS`).

    Returns the bytes and the sample rate they are at (Opus may force a resample).
    ``pcm`` is raw little-endian int16 with no header.
    """
    pcm = np.asarray(pcm, dtype=np.int16)
    if fmt == "pcm":
        return pcm.astype("<i2").tobytes(), sample_rate
    if fmt == "wav":
        return wav_bytes(pcm, sample_rate), sample_rate
    if fmt == "opus" and sample_rate not in _OPUS_RATES:
        pcm = to_int16(resample(int16_to_float(pcm), sample_rate, 48000))
        sample_rate = 48000
    container, subtype = {
        "flac": ("FLAC", "PCM_16"),
        "mp3": ("MP3", "MPEG_LAYER_III"),
        "opus": ("OGG", "OPUS"),
    }[fmt]
    buf = io.BytesIO()
    sf.write(buf, pcm, sample_rate, format=container, subtype=subtype)
    return buf.getvalue(), sample_rate
