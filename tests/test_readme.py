"""README.md stays true: its curl examples run against real services, every route of
every service has one, and its configuration table matches the settings classes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from fastapi.routing import APIRoute

from bench.stack import ServiceProcess
from gateway.app import create_app as gateway_app
from services.asr.app import create_app as asr_app
from services.common import settings_doc
from services.llm.app import create_app as llm_app
from services.tts.app import create_app as tts_app
from tests.servers import serve

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
PORTS = {8001: "asr", 8002: "llm", 8003: "tts", 8000: "gateway"}
LOCAL = re.compile(r"\blocalhost:(800[0-3])\b")


def curl_commands() -> list[str]:
    """Every curl command in the README's sh blocks that talks to a local service."""
    out = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        for command in re.sub(r"\\\n\s*", " ", block).splitlines():
            command = command.split("  #")[0].strip()
            if command.startswith("curl ") and LOCAL.search(command):
                out.append(command)
    return out


def routes(app: object) -> set[str]:
    docs = {"/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc"}
    return {r.path for r in app.routes if isinstance(r, APIRoute)} - docs  # type: ignore[attr-defined]


def test_table_is_up_to_date() -> None:
    assert settings_doc.updated(README) == README, (
        "README.md's configuration table is stale: run python -m services.common.settings_doc"
    )


def test_every_route_of_every_service_has_a_curl_example() -> None:
    tried = {
        (PORTS[int(m.group(1))], path)
        for c in curl_commands()
        for m in [LOCAL.search(c)]
        if m
        for path in re.findall(r"localhost:\d+(/[\w/.-]*)", c)
    }
    apps = {"asr": asr_app(), "llm": llm_app(), "tts": tts_app(), "gateway": gateway_app()}
    for name, app in apps.items():
        for path in routes(app):
            assert (name, path) in tried, f"README has no curl example for {name} {path}"


@pytest.fixture(scope="module")
def services(cache_dir: Path) -> Iterator[dict[str, str]]:
    procs = {
        "asr": ServiceProcess("services.asr", "ASR_"),
        "llm": ServiceProcess("services.llm", "LLM_", {"LLM_TEMPERATURE": "0"}),
        "tts": ServiceProcess("services.tts", "TTS_", {"TTS_BACKENDS": "kokoro,openjtalk"}),
    }
    try:
        for p in procs.values():
            p.start()
        urls = {name: p.url for name, p in procs.items()}
        from gateway.settings import GatewaySettings

        settings = GatewaySettings(
            asr_urls=[urls["asr"]], llm_urls=[urls["llm"]], tts_urls=[urls["tts"]]
        )
        with serve(gateway_app(settings)) as gateway:
            yield {**urls, "gateway": gateway}
    finally:
        for p in procs.values():
            p.stop()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, jsut_wav: Path) -> Path:
    """The files the examples name: clip.wav, and clip.pcm as 16 kHz int16."""
    folder = tmp_path_factory.mktemp("readme")
    shutil.copy(jsut_wav, folder / "clip.wav")
    audio, rate = sf.read(jsut_wav, dtype="float32")
    pcm = soxr.resample(audio, rate, 16000)
    (folder / "clip.pcm").write_bytes((np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes())
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("command", curl_commands())
def test_curl_example_runs(command: str, services: dict[str, str], workdir: Path) -> None:
    url = services[PORTS[int(LOCAL.search(command).group(1))]]  # type: ignore[union-attr]
    real = LOCAL.sub(url.removeprefix("http://"), command)
    # --fail-with-body: an HTTP error is a failed example; the rest is the README's own text
    real = real.replace("curl ", "curl -sS --fail-with-body --max-time 120 ", 1)
    result = subprocess.run(["bash", "-c", real], cwd=workdir, capture_output=True, timeout=180)
    assert result.returncode == 0, (real, result.stdout[-500:], result.stderr[-500:])
    output = re.search(r"-o (\S+)", command)
    body = (workdir / output.group(1)).read_bytes() if output else result.stdout
    assert body, real
    if output and output.group(1).endswith(".wav"):
        info = sf.info(workdir / output.group(1))
        assert info.frames / info.samplerate > 0.3
    elif output and output.group(1).endswith(".mp3"):
        assert sf.info(workdir / output.group(1)).frames > 0
    elif output:
        assert len(body) % 2 == 0 and len(body) > 16000  # int16 PCM, over 0.3 s
    elif "/metrics" in command:
        assert b"# TYPE" in body
    elif "data:" in body.decode() or b"[DONE]" in body:
        assert body.rstrip().endswith(b"data: [DONE]")
    elif "response_format=srt" in command:
        assert b"-->" in body
    else:
        payload = json.loads(body)
        if "/transcribe" in command or "/transcriptions" in command:
            assert payload["text"]
        if command.endswith("/health"):
            assert payload["status"] == "ok"
