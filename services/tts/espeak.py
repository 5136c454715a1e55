"""The English voice: eSpeak NG, run as a separate program (``espeak-ng``, Debian package).

Formant synthesis: robotic, but clear, tiny and far faster than real time on
any CPU, and the only English voice installable here (see LICENSES.md). It is
GPL-3.0, so it is only ever executed through :mod:`subprocess`, never linked
or imported; koe's MIT code is not a derivative of it.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from typing import TYPE_CHECKING

import numpy as np

from .engine import SynthesisOptions, Voice

if TYPE_CHECKING:
    from .settings import TTSSettings

SAMPLE_RATE = 22050  # what espeak-ng's own voices produce; checked on every reply
DEBIAN_PACKAGE = "espeak-ng"
# Voice id (as GET /voices lists it) -> espeak-ng voice, with a description.
VOICES = {
    "en-us": ("en-us", "eSpeak NG, American English, male: robotic but clear, very fast"),
    "en-us+f3": ("en-us+f3", "eSpeak NG, American English, female variant"),
    "en-gb": ("en-gb", "eSpeak NG, British English, male"),
}
_BASE_WPM = 175  # espeak-ng's default rate is speed 1.0
_MIN_WPM, _MAX_WPM = 80, 450  # the range espeak-ng accepts; beyond it, it clamps or fails
_TIMEOUT_S = 30.0


class EspeakError(RuntimeError):
    """espeak-ng is missing or failed."""


def parse_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Float samples and rate from espeak-ng's ``--stdout`` WAV.

    Written to a pipe, its RIFF and data sizes are placeholders (0x7ffff000),
    so the standard ``wave`` module would trust a wrong length: the chunks are
    walked by hand and the data runs to the end of what was written.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise EspeakError("espeak-ng did not write a WAV file")
    pos, rate = 12, 0
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = pos + 8
        if chunk == b"fmt ":
            fmt, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            if (fmt, channels, bits) != (1, 1, 16):
                raise EspeakError(f"espeak-ng wrote {channels}ch {bits}-bit format {fmt} audio")
        elif chunk == b"data":
            if not rate:
                raise EspeakError("espeak-ng's WAV has no fmt chunk before its data")
            pcm = data[body : body + min(size, len(data) - body)]
            samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], "<i2")
            return samples.astype(np.float32) / 32768.0, rate
        pos = body + size + (size & 1)
    raise EspeakError("espeak-ng's WAV has no data")


def find_binary(name: str) -> str:
    """The full path of ``name``, or an error that says which package provides it."""
    path = shutil.which(name)
    if path is None:
        raise EspeakError(
            f"espeak-ng not found (looked for {name!r}; TTS_ESPEAK_BINARY sets it): install the "
            f"Debian package {DEBIAN_PACKAGE!r} (apt-get install {DEBIAN_PACKAGE}; "
            "scripts/install-system-deps.sh does), or drop 'espeak' from TTS_BACKENDS"
        )
    return path


class EspeakSynthesizer:
    """English voices of one espeak-ng program; one process per sentence (~10 ms to start)."""

    name = "espeak"

    def __init__(self, binary: str = "espeak-ng") -> None:
        self.binary = find_binary(binary)
        for voice in VOICES:  # fail at startup, not mid-request, if the voice data is missing
            self.synthesize("Hello.", voice, SynthesisOptions())

    def voices(self) -> list[Voice]:
        return [
            Voice(
                id=voice_id,
                backend=self.name,
                sample_rate=SAMPLE_RATE,
                languages=("en",),
                description=description,
                knobs=("speed", "pitch"),
            )
            for voice_id, (_, description) in VOICES.items()
        ]

    def command(self, voice: str, options: SynthesisOptions) -> list[str]:
        wpm = round(min(max(_BASE_WPM * options.speed, _MIN_WPM), _MAX_WPM))
        # -p is 0-99 around 50. Measured on en-us: about 6 steps a semitone from 20 up
        # (78 to 166 Hz), flat below 20; so shifts beyond about -5/+8 semitones clip.
        pitch = round(min(max(50 + 6 * options.pitch, 0), 99))
        # --stdin reads the whole sentence at once; -b 1: it is UTF-8.
        return [self.binary, "--stdout", "--stdin", "-b", "1", "-v", VOICES[voice][0],
                "-s", str(wpm), "-p", str(pitch)]  # fmt: skip

    def synthesize(self, text: str, voice: str, options: SynthesisOptions) -> np.ndarray:
        try:
            done = subprocess.run(  # noqa: S603 - fixed argv, text goes in on stdin
                self.command(voice, options),
                input=text.encode("utf-8"),
                capture_output=True,
                timeout=_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise EspeakError(f"espeak-ng could not run: {e}") from e
        if done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace").strip()
            raise EspeakError(f"espeak-ng failed ({done.returncode}): {message}")
        samples, rate = parse_wav(done.stdout)
        if rate != SAMPLE_RATE:  # another espeak build or an mbrola voice: say so, not resample
            raise EspeakError(f"espeak-ng speaks at {rate} Hz, expected {SAMPLE_RATE}")
        return samples


def create(settings: TTSSettings) -> EspeakSynthesizer:
    return EspeakSynthesizer(settings.espeak_binary)
