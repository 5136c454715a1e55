"""Faults: a service killed mid-turn, a service slower than its timeout, the gateway restarted.

Each time the client gets an ``error`` event naming the stage promptly (the
gateway never hangs), and the next turn succeeds once the service is back.
A gateway restart loses nothing a client cannot resend: it reconnects with
its own history and the next turn works with that history.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.fakes import FakeBehaviour, create_fake_services
from bench.wsclient import WSClient, speech_pcm
from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.reliability.harness import FakeServices, GatewayProcess
from tests.servers import serve

PROMPT_S = 5.0  # an error event must arrive this soon after the fault


def names(events: list[dict]) -> list[str]:
    return [e["event"] for e in events]


@pytest.fixture(scope="module")
def stages() -> Iterator[dict[str, FakeServices]]:
    """One fake-service process per stage, slow enough that a kill lands mid-request."""
    procs = {
        "asr": FakeServices(asr_delay_s=1.5),
        "llm": FakeServices(
            reply_pieces=["はい、", "そうです。", "ええ。", "では。"], token_delay_s=0.4
        ),
        "tts": FakeServices(tts_delay_s=1.0, audio_s=0.1),
    }
    try:
        for p in procs.values():
            p.spawn()
        for p in procs.values():
            p.wait_healthy(60)
        yield procs
    finally:
        for p in procs.values():
            p.kill()


@pytest.fixture(scope="module")
def ws_url(stages: dict[str, FakeServices]) -> Iterator[str]:
    settings = GatewaySettings(
        asr_urls=[stages["asr"].url],
        llm_urls=[stages["llm"].url],
        tts_urls=[stages["tts"].url],
        reconnect_wait_s=0.1,
    )
    with serve(create_app(settings)) as url:
        yield url.replace("http://", "ws://") + "/ws"


@pytest.mark.parametrize("stage", ["asr", "llm", "tts"])
def test_service_killed_mid_turn_then_restarted(
    ws_url: str, stages: dict[str, FakeServices], jsut_wav: Path, stage: str
) -> None:
    c = WSClient(ws_url)
    c.start(streamAudio=True)
    c.stream(speech_pcm(jsut_wav), realtime=False)
    # wait until the turn is inside the stage to kill
    c.until(
        {"asr": "userSpeechEnd", "llm": "userSpeechTranscript", "tts": "userSpeechTranscript"}[
            stage
        ]
    )
    if stage == "tts":
        c.until("assistantSpeechGenerated", timeout=20)  # the next sentence is in TTS now
    elif stage == "llm":
        time.sleep(0.5)  # not an assertion: lets the token stream begin before the kill
    stages[stage].kill()
    killed = time.monotonic()
    error = c.until("error", timeout=PROMPT_S)[-1]
    assert error["stage"] == stage and error["message"]
    assert time.monotonic() - killed < PROMPT_S
    c.until("turnMetrics", timeout=PROMPT_S)  # the failed turn ends
    stages[stage].start(60)
    c.stream(speech_pcm(jsut_wav), realtime=False)
    got = names(c.until("turnMetrics", timeout=30))
    assert "error" not in got and "assistantSpeechGenerated" in got, got
    c.close()


@pytest.mark.parametrize("stage", ["asr", "llm", "tts"])
def test_service_slower_than_its_timeout(jsut_wav: Path, stage: str) -> None:
    fake = FakeBehaviour(audio_s=0.1)
    with serve(create_fake_services(fake)) as url:
        settings = GatewaySettings(
            asr_urls=[url],
            llm_urls=[url],
            tts_urls=[url],
            asr_timeout_s=0.5,
            llm_timeout_s=0.5,
            tts_timeout_s=0.5,
        )
        with serve(create_app(settings)) as gw:
            c = WSClient(gw.replace("http://", "ws://") + "/ws")
            c.start(streamAudio=True)
            setattr(
                fake,
                {"asr": "asr_delay_s", "llm": "token_delay_s", "tts": "tts_delay_s"}[stage],
                3.0,
            )
            start = time.monotonic()
            c.stream(speech_pcm(jsut_wav), realtime=False)
            error = c.until("error", timeout=PROMPT_S)[-1]
            assert error["stage"] == stage and "timed out" in error["message"]
            assert time.monotonic() - start < PROMPT_S
            c.until("turnMetrics", timeout=PROMPT_S)
            fake.asr_delay_s = fake.token_delay_s = fake.tts_delay_s = 0.0  # back to normal
            c.send({"event": "userMessage", "message": "もう一度"})
            got = names(c.until("turnMetrics", timeout=10))
            assert "error" not in got and "assistantSpeechGenerated" in got, got


def test_gateway_restart_loses_nothing_the_client_cannot_resend() -> None:
    fake = FakeBehaviour(audio_s=0.1, token_delay_s=0.3, reply_pieces=["はい。", "わかりました。"])
    with serve(create_fake_services(fake)) as url:
        gw = GatewayProcess(asr_urls=[url], llm_urls=[url], tts_urls=[url], log_level="warning")
        gw.start(60)
        try:
            c = WSClient(gw.ws_url)
            history: list[dict[str, str]] = []
            c.start(history, streamAudio=True)
            c.send({"event": "userMessage", "message": "一つ目の質問"})
            reply = c.until("assistantMessageGenerated")[-1]["generatedMessageContent"]
            c.until("turnMetrics")
            history += [
                {"role": "user", "content": "一つ目の質問"},
                {"role": "assistant", "content": reply},
            ]
            c.send({"event": "userMessage", "message": "二つ目の質問"})
            gw.kill()  # mid-turn: the second reply is lost, the history is the client's
            with pytest.raises(Exception):  # noqa: B017 - closed, reset or timed out: any will do
                c.until("turnMetrics", timeout=5)
            gw.start(60)  # same port, fresh process: no memory of the session
            c = WSClient(gw.ws_url)
            c.start(history, streamAudio=True)
            c.send({"event": "userMessage", "message": "二つ目の質問"})  # resent
            got = names(c.until("turnMetrics", timeout=10))
            assert "assistantSpeechGenerated" in got and "error" not in got
            sent = fake.chat_bodies[-1]["messages"]
            assert [m["content"] for m in sent if m["role"] != "system"] == [
                "一つ目の質問",
                reply,
                "二つ目の質問",
            ]
        finally:
            gw.stop()
