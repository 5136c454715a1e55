"""A service on "another machine": reached by URL, protected by a bearer token.

The TTS service runs as its own process on its own port, bound to every interface
with TTS_API_TOKEN set (as on a GPU host); the gateway, in this process, is pointed at
it by URL with GATEWAY_TTS_TOKEN. ASR and LLM are instant fakes: this is about the
wire between gateway and a remote service, not about the models.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from bench.fakes import FakeBehaviour, create_fake_services
from bench.stack import ServiceProcess
from bench.wsclient import WSClient
from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.servers import free_port, serve

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "a-long-random-token-for-the-gpu-host"


@pytest.fixture(scope="module")
def remote_tts(cache_dir: Path) -> Iterator[ServiceProcess]:
    env = {"TTS_HOST": "0.0.0.0", "TTS_API_TOKEN": TOKEN, "TTS_BACKENDS": "openjtalk"}
    service = ServiceProcess("services.tts", "TTS_", env)
    try:
        yield service.start()
    finally:
        service.stop()


@pytest.fixture(scope="module")
def fakes() -> Iterator[str]:
    with serve(create_fake_services(FakeBehaviour(reply_pieces=["こんにちは。"]))) as url:
        yield url


def gateway_ws(fakes: str, tts_urls: list[str], token: str | None) -> GatewaySettings:
    return GatewaySettings(
        asr_urls=[fakes],
        llm_urls=[fakes],
        tts_urls=tts_urls,
        tts_token=SecretStr(token) if token else None,
    )


def typed_turn(settings: GatewaySettings) -> list[dict]:
    with serve(create_app(settings)) as url:
        client = WSClient(url.replace("http://", "ws://") + "/ws")
        try:
            client.start()
            client.send({"event": "userMessage", "message": "こんにちは"})
            return client.until("turnMetrics", timeout=60)
        finally:
            client.close()


@pytest.mark.slow
def test_service_requires_the_token_except_on_health(remote_tts: ServiceProcess) -> None:
    body = {"text": "こんにちは。"}
    assert httpx.get(remote_tts.url + "/health").status_code == 200
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": TOKEN}):
        r = httpx.post(remote_tts.url + "/synthesize", json=body, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["type"] == "authentication_error"
        assert TOKEN not in r.text
    r = httpx.get(remote_tts.url + "/voices", headers={"authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.json()["voices"]
    assert TOKEN not in remote_tts.log.read_text()  # never logged


@pytest.mark.slow
def test_gateway_completes_a_turn_through_the_remote_service(
    remote_tts: ServiceProcess, fakes: str
) -> None:
    # The first URL is dead (a stopped GPU host): the gateway fails over to the live one.
    dead = f"http://127.0.0.1:{free_port()}"
    got = typed_turn(gateway_ws(fakes, [dead, remote_tts.url], TOKEN))
    names = [e["event"] for e in got]
    assert "error" not in names, got
    assert (
        next(e for e in got if e["event"] == "assistantMessageGenerated")["generatedMessageContent"]
        == "こんにちは。"
    )
    wav = bytes(next(e for e in got if e["event"] == "assistantSpeechGenerated")["audioData"])
    with wave.open(io.BytesIO(wav)) as w:
        assert w.getnframes() / w.getframerate() > 0.3  # real speech from OpenJTalk


@pytest.mark.slow
def test_gateway_without_the_token_reports_an_error_event(
    remote_tts: ServiceProcess, fakes: str
) -> None:
    got = typed_turn(gateway_ws(fakes, [remote_tts.url], None))
    error = next(e for e in got if e["event"] == "error")
    assert error["stage"] == "tts" and "bearer token" in error["message"]
    assert not any(e["event"] == "assistantSpeechGenerated" for e in got)


@pytest.mark.parametrize("module", ["services.asr", "services.llm", "services.tts", "gateway"])
def test_refuses_to_listen_beyond_loopback_without_a_token(module: str) -> None:
    prefix = "GATEWAY_" if module == "gateway" else module.split(".")[1].upper() + "_"
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefix)}
    result = subprocess.run(
        [sys.executable, "-m", module, "--host", "0.0.0.0", "--port", str(free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert f"refusing to listen on 0.0.0.0 without an API token: set {prefix}API_TOKEN" in (
        result.stderr
    )
