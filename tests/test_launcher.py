"""`make run`'s launcher as a user runs it: start, wait for health, use, Ctrl-C, all gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bench.metrics import cer
from tests.conftest import JSUT_TEXT
from tests.servers import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def test_launcher_runs_asr_and_stops_on_sigint(cache_dir: Path, jsut_wav: Path) -> None:
    port = free_port()
    env = {**os.environ, "ASR_PORT": str(port), "KOE_CACHE_DIR": str(cache_dir)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.launcher", "asr"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 300
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "all services up" in line or proc.poll() is not None:
                break
        assert any(f"http://127.0.0.1:{port}/docs" in ln for ln in lines), "".join(lines)
        with jsut_wav.open("rb") as f:
            r = httpx.post(f"http://127.0.0.1:{port}/transcribe", files={"file": f}, timeout=120)
        assert cer(JSUT_TEXT, r.json()["text"]) <= 0.10

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        # no process of the group survives, and the port is free again
        with pytest.raises(ProcessLookupError):
            os.killpg(proc.pid, 0)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
