"""Turn what a client sends into 16 kHz mono float32, or a clear 4xx."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf
import soxr

from services.common.errors import APIError, PayloadTooLarge

TARGET_RATE = 16000
MIN_RATE = 4000
MAX_RATE = 192000


def _check_rate(rate: int, param: str) -> None:
    if not MIN_RATE <= rate <= MAX_RATE:
        raise APIError(
            f"sample rate {rate} Hz is outside {MIN_RATE}-{MAX_RATE} Hz",
            param=param,
            code="invalid_sample_rate",
        )


def _finish(audio: np.ndarray, rate: int, max_duration_s: float) -> np.ndarray:
    duration = len(audio) / rate
    if duration > max_duration_s:
        raise PayloadTooLarge(
            f"audio is {duration:.1f} s long; the limit is {max_duration_s:.0f} s",
            code="audio_too_long",
        )
    if len(audio) == 0:
        raise APIError("the audio contains no samples", code="empty_audio")
    if rate != TARGET_RATE:
        audio = soxr.resample(audio, rate, TARGET_RATE)
    audio = np.nan_to_num(audio.astype(np.float32, copy=False))
    return np.clip(audio, -1.0, 1.0)


def decode_file(data: bytes, max_duration_s: float) -> np.ndarray:
    """Decode WAV, FLAC, OGG or MP3 of any rate and channel count."""
    if not data:
        raise APIError("the uploaded file is empty", param="file", code="empty_audio")
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            rate = f.samplerate
            _check_rate(rate, "file")
            # Read no more than the limit allows (plus one second to report the length).
            if f.frames > 0 and f.frames / rate > max_duration_s:
                raise PayloadTooLarge(
                    f"audio is {f.frames / rate:.1f} s long; the limit is {max_duration_s:.0f} s",
                    code="audio_too_long",
                )
            audio = f.read(dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        reason = exc.error_string if isinstance(exc, sf.LibsndfileError) else str(exc)
        raise APIError(
            f"could not decode the audio file (WAV, FLAC, OGG or MP3 expected): {reason}",
            param="file",
            code="invalid_audio",
        ) from None
    return _finish(audio.mean(axis=1), rate, max_duration_s)


def decode_pcm(data: bytes, rate: int, max_duration_s: float) -> np.ndarray:
    """Raw little-endian int16 mono PCM, the gateway's format."""
    _check_rate(rate, "sample_rate")
    if not data:
        raise APIError("the request body is empty", code="empty_audio")
    if len(data) % 2:
        raise APIError(
            f"PCM body has an odd number of bytes ({len(data)}); 16-bit samples take two each",
            code="odd_length_pcm",
        )
    if len(data) / 2 / rate > max_duration_s:
        raise PayloadTooLarge(
            f"audio is {len(data) / 2 / rate:.1f} s long; the limit is {max_duration_s:.0f} s",
            code="audio_too_long",
        )
    samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    return _finish(samples, rate, max_duration_s)
