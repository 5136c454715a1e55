"""The whole cascade on the embedded models: real services on loopback, real speech,
streamed at real-time pace in 640-sample frames like the real client."""

from __future__ import annotations

import io
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.metrics import cer
from bench.stack import ServiceProcess
from bench.wsclient import WSClient, speech_pcm
from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.conftest import JSUT_TEXT
from tests.servers import serve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def services(cache_dir: Path) -> Iterator[dict[str, ServiceProcess]]:
    procs = {
        "asr": ServiceProcess("services.asr", "ASR_"),
        "llm": ServiceProcess("services.llm", "LLM_", {"LLM_TEMPERATURE": "0"}),
        "tts": ServiceProcess("services.tts", "TTS_"),
    }
    try:
        for p in procs.values():
            p.start()
        yield procs
    finally:
        for p in procs.values():
            p.stop()


@pytest.fixture(scope="module")
def ws_url(services: dict[str, ServiceProcess]) -> Iterator[str]:
    settings = GatewaySettings(
        asr_urls=[services["asr"].url],
        llm_urls=[services["llm"].url],
        tts_urls=[services["tts"].url],
        tts_timeout_s=20,
    )
    with serve(create_app(settings)) as url:
        yield url.replace("http://", "ws://") + "/ws"


def wav_seconds(event: dict) -> float:
    with wave.open(io.BytesIO(bytes(event["audioData"])), "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1 and w.getframerate() >= 16000
        assert w.getnframes() > 0
        return w.getnframes() / w.getframerate()


def names(events: list[dict]) -> list[str]:
    return [e["event"] for e in events]


def test_spoken_turn(ws_url: str, jsut_wav: Path) -> None:
    c = WSClient(ws_url)
    c.start()
    c.stream(speech_pcm(jsut_wav), realtime=True)
    got = c.until("turnMetrics", timeout=90)
    order = names(got)
    assert order[:3] == ["userSpeechStart", "userSpeechEnd", "userSpeechTranscript"]
    assert cer(JSUT_TEXT, got[2]["transcript"]) <= 0.2, got[2]["transcript"]
    message = next(e for e in got if e["event"] == "assistantMessageGenerated")
    assert message["generatedMessageContent"].strip()
    audio = [e for e in got if e["event"] == "assistantSpeechGenerated"]
    assert audio and all(wav_seconds(e) > 0.2 for e in audio)
    metrics = got[-1]
    assert 0 < metrics["transcriptMs"] <= metrics["firstTokenMs"] <= metrics["firstAudioMs"]


def test_typed_turn(ws_url: str) -> None:
    c = WSClient(ws_url)
    c.start(
        [
            {"role": "user", "content": "こんにちは"},
            {"role": "assistant", "content": "こんにちは！"},
        ]
    )
    c.send({"event": "userMessage", "message": "日本の首都はどこですか？"})
    got = c.until("turnMetrics", timeout=90)
    assert "userSpeechTranscript" not in names(got)
    message = next(e for e in got if e["event"] == "assistantMessageGenerated")
    assert message["generatedMessageContent"].strip()
    assert any(e["event"] == "assistantSpeechGenerated" for e in got)


def test_reconnecting_client_receives_the_whole_reply(ws_url: str, jsut_wav: Path) -> None:
    c = WSClient(ws_url)
    history: list[dict[str, str]] = []
    c.start(history)
    c.stream(speech_pcm(jsut_wav), realtime=True)
    transcript = c.until("userSpeechTranscript", timeout=60)[-1]["transcript"]
    history.append({"role": "user", "content": transcript})
    c.reconnect(history)
    got = c.until("assistantMessageGenerated", timeout=60)
    history.append({"role": "assistant", "content": got[-1]["generatedMessageContent"]})
    c.reconnect(history)
    rest = c.until("turnMetrics", timeout=60)
    assert any(e["event"] == "assistantSpeechGenerated" for e in got + rest)


def test_barge_in_interrupts_and_frees_the_llm(
    ws_url: str, jsut_wav: Path, services: dict[str, ServiceProcess]
) -> None:
    c = WSClient(ws_url)
    c.start()
    c.send({"event": "userMessage", "message": "好きな食べ物について話してください。"})
    c.until("assistantSpeechGenerated", timeout=90)
    c.stream(speech_pcm(jsut_wav, lead_s=0.0, tail_s=0.0)[:32000], realtime=True)
    got = c.until("assistantSpeechInterrupted", timeout=10)
    assert "spokenContent" in got[-1]
    time.sleep(1.0)
    health = httpx.get(services["llm"].url + "/health").json()
    assert not health.get("busy", False)


def test_tts_killed_mid_turn_then_recovers(
    ws_url: str, jsut_wav: Path, services: dict[str, ServiceProcess]
) -> None:
    c = WSClient(ws_url)
    c.start()
    c.stream(speech_pcm(jsut_wav), realtime=True)
    c.until("userSpeechTranscript", timeout=60)
    services["tts"].kill()
    event = c.until("error", timeout=60)[-1]
    assert event["stage"] == "tts"
    c.until("turnMetrics")
    services["tts"].start()
    c.send({"event": "userMessage", "message": "もう一度お願いします。"})
    got = c.until("turnMetrics", timeout=90)
    assert any(e["event"] == "assistantSpeechGenerated" for e in got)
