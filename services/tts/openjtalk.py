"""The fast voice: OpenJTalk's HTS engine with the Mei voice bundled in ``pyopenjtalk-plus``.

About 15x faster than real time on a laptop CPU, robotic but clear; the
voice for low latency. Its 48 kHz output is credited to Nagoya Institute of
Technology (see LICENSES.md).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .engine import SynthesisOptions, Voice

if TYPE_CHECKING:
    from .settings import TTSSettings

SAMPLE_RATE = 48000


def ensure_dictionary() -> None:
    """Point OpenJTalk at the dictionary bundled in ``pyopenjtalk-plus``, before it is imported.

    ``pyopenjtalk`` (pulled in by style-bert-vits2) ships the same module name
    and downloads its dictionary on first use, which fails offline. With
    ``OPEN_JTALK_DICT_DIR`` set, whichever package owns the module reads the
    bundled dictionary; without one, fail now with the fix rather than later.
    """
    if os.environ.get("OPEN_JTALK_DICT_DIR"):
        return
    spec = importlib.util.find_spec("pyopenjtalk")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("pyopenjtalk-plus is not installed: pip install pyopenjtalk-plus")
    bundled = Path(next(iter(spec.submodule_search_locations))) / "dictionary"
    if not (bundled / "sys.dic").exists():
        raise ImportError(
            "the pyopenjtalk module is not pyopenjtalk-plus (no bundled dictionary); restore it "
            "with: pip install --force-reinstall --no-deps pyopenjtalk-plus"
        )
    os.environ["OPEN_JTALK_DICT_DIR"] = str(bundled)


class OpenJTalkSynthesizer:
    """HTS synthesis of OpenJTalk's full-context labels; one voice, ``mei``."""

    name = "openjtalk"

    def __init__(self) -> None:
        ensure_dictionary()
        import pyopenjtalk

        self._pyopenjtalk = pyopenjtalk
        # Warm up: the dictionary and the HTS voice load on first use, not at import.
        pyopenjtalk.tts("あ")

    def voices(self) -> list[Voice]:
        return [
            Voice(
                id="mei",
                backend=self.name,
                sample_rate=SAMPLE_RATE,
                description="Mei (HTS, pyopenjtalk-plus): fast, female, Japanese",
                knobs=("speed", "pitch"),
            )
        ]

    def synthesize(self, text: str, voice: str, options: SynthesisOptions) -> np.ndarray:
        wave, sr = self._pyopenjtalk.tts(text, speed=options.speed, half_tone=options.pitch)
        if sr != SAMPLE_RATE:  # the bundled voice is 48 kHz; a swapped one must match
            raise RuntimeError(f"HTS voice runs at {sr} Hz, expected {SAMPLE_RATE}")
        # HTS returns int16-scaled float64
        return (np.asarray(wave, dtype=np.float64) / 32768.0).astype(np.float32)


def create(settings: TTSSettings) -> OpenJTalkSynthesizer:
    return OpenJTalkSynthesizer()
