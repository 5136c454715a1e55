"""The ``Synthesizer`` protocol, the backend registry, and what every voice shares.

A backend turns one sentence into float audio. Everything else (text
clean-up, sentence splitting, loudness, pauses, the one-at-a-time queue) is
done once here in :class:`VoiceBook`, so all voices behave the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from services.common.registry import load_factory

if TYPE_CHECKING:
    from .settings import TTSSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Voice:
    """One selectable voice (a backend may offer several)."""

    id: str
    backend: str
    sample_rate: int
    languages: tuple[str, ...] = ("ja",)
    styles: tuple[str, ...] = ("Neutral",)
    description: str = ""
    knobs: tuple[str, ...] = field(default=("speed",))
    """Request fields this voice honours; the others are accepted and ignored."""


@dataclass(frozen=True)
class SynthesisOptions:
    """How to say it. Backends use what they support (see :attr:`Voice.knobs`)."""

    style: str = "Neutral"
    speed: float = 1.0
    style_weight: float = 1.0
    sdp_ratio: float = 0.2
    noise: float = 0.6
    noise_w: float = 0.8
    pitch: float = 0.0
    """Semitones up (+) or down (-)."""
    intonation: float = 1.0


class Synthesizer(Protocol):
    """A loaded TTS model. Not re-entrant: the service calls it from one thread at a time."""

    name: str

    def voices(self) -> list[Voice]:
        """The voices this model offers."""
        ...

    def synthesize(self, text: str, voice: str, options: SynthesisOptions) -> np.ndarray:
        """Speak one sentence; mono float32 in [-1, 1] at the voice's sample rate. Blocking."""
        ...


# name -> "module:factory". Imported only when chosen, so a service with only the
# embedded voices never imports torch, and a missing optional package fails at
# startup with its own ImportError rather than at import of this module.
_REGISTRY: dict[str, str] = {
    "kokoro": "services.tts.kokoro:create",
    "openjtalk": "services.tts.openjtalk:create",
    "espeak": "services.tts.espeak:create",
    "style-bert-vits2": "services.tts.sbv2:create",
}
_PREPARE: dict[str, str] = {
    "kokoro": "services.tts.kokoro:prepare",
    "style-bert-vits2": "services.tts.sbv2:prepare",
}


# Backends that need a system program rather than a pip package: one missing from a
# machine costs its voices (a warning), not the whole service. The others fail startup.
_OPTIONAL = frozenset({"espeak"})


def backend_names() -> list[str]:
    return list(_REGISTRY)


def _load(target: str) -> Callable[[TTSSettings], object]:
    factory: Callable[[TTSSettings], object] = load_factory(target)
    return factory


def create_synthesizer(name: str, settings: TTSSettings) -> Synthesizer:
    """Build the backend called ``name`` (importing its packages only now)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown TTS backend {name!r}; known: {', '.join(_REGISTRY)}")
    synth: Synthesizer = _load(_REGISTRY[name])(settings)  # type: ignore[assignment]
    return synth


def load_synthesizers(settings: TTSSettings) -> list[Synthesizer]:
    """Every backend in ``settings.backends``; an optional one that fails is left out, logged.

    Raises if a required backend fails, or if nothing at all loaded.
    """
    engines: list[Synthesizer] = []
    for name in settings.backends:
        logger.info("loading TTS backend %s", name)
        try:
            engines.append(create_synthesizer(name, settings))
        except Exception as e:
            if name not in _OPTIONAL or len(settings.backends) == 1:
                raise
            logger.warning("TTS backend %s not loaded, its voices are unavailable: %s", name, e)
    if not engines:
        raise RuntimeError(f"no TTS backend loaded (tried {', '.join(settings.backends)})")
    return engines


def prepare(settings: TTSSettings) -> None:
    """Assemble or download every configured backend's model into the cache (``--prepare-only``)."""
    for name in settings.backends:
        if name in _PREPARE:
            _load(_PREPARE[name])(settings)
