"""`make run` as a user runs it: start all four services, wait for health, hold a spoken
conversation through /ws, Ctrl-C, and nothing is left running."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from bench.metrics import cer
from bench.wsclient import WSClient, speech_pcm
from tests.conftest import JSUT_TEXT
from tests.servers import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("ASR", "LLM", "TTS", "GATEWAY")


def test_launcher_runs_a_spoken_turn_and_stops_everything_on_sigint(
    cache_dir: Path, jsut_wav: Path
) -> None:
    ports = {name: free_port() for name in SERVICES}
    # A clean slate of our settings, as on a fresh machine; only the ports are moved so the
    # test does not collide with a server the developer is running.
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(tuple(s + "_" for s in SERVICES))
    }
    env |= {f"{name}_PORT": str(port) for name, port in ports.items()}
    env |= {"KOE_CACHE_DIR": str(cache_dir), "LLM_TEMPERATURE": "0"}
    # `make run` itself, in its own process group like a terminal's foreground job (the
    # install step finds the virtualenv up to date and does nothing).
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 600
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "all services up" in line or proc.poll() is not None:
                break
        log = "".join(lines)
        assert "all services up" in log, log
        for port in ports.values():
            assert f"http://127.0.0.1:{port}/docs" in log
        ws_url = f"ws://127.0.0.1:{ports['GATEWAY']}/ws"
        assert ws_url in log

        health = httpx.get(f"http://127.0.0.1:{ports['GATEWAY']}/health", timeout=10).json()
        assert health["status"] == "ok", health  # the gateway found the services' ports
        client = WSClient(ws_url)
        client.start()
        client.stream(speech_pcm(jsut_wav), realtime=True)
        got = client.until("turnMetrics", timeout=120)
        client.close()
        transcript = next(e for e in got if e["event"] == "userSpeechTranscript")["transcript"]
        assert cer(JSUT_TEXT, transcript) <= 0.2, transcript
        reply = next(e for e in got if e["event"] == "assistantMessageGenerated")
        assert reply["generatedMessageContent"].strip()
        assert any(e["event"] == "assistantSpeechGenerated" for e in got)

        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole group
        proc.wait(timeout=30)
        assert "[koe] stopping" in proc.stdout.read()
        # no process of the group survives, and every port is free again
        with pytest.raises(ProcessLookupError):
            os.killpg(proc.pid, 0)
        for port in ports.values():
            with pytest.raises(httpx.TransportError):
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
