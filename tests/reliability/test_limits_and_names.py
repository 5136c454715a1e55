"""Limits everywhere, as settings, and enforced; names from clients are looked up, never opened.

Each limit is a bounded setting (so ``docker compose`` and ``.env`` can change
it) and the service or gateway refuses what exceeds it with a clear error.
Model, voice and style names that look like paths are refused or ignored, and
no file is opened for them (an audit hook watches every ``open``).
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from pydantic_settings import BaseSettings
from websockets.exceptions import ConnectionClosed

from bench.fakes import FakeBehaviour, create_fake_services
from bench.wsclient import WSClient
from gateway.app import create_app as create_gateway
from gateway.settings import GatewaySettings
from services.asr.app import create_app as create_asr
from services.asr.settings import ASRSettings
from services.llm.app import create_app as create_llm
from services.llm.settings import LLMSettings
from services.tts.app import create_app as create_tts
from services.tts.settings import TTSSettings
from tests.llm.conftest import FakeChat
from tests.reliability.fakes import FakeTranscriber, FixedSynth
from tests.servers import serve

LIMITS = [
    (GatewaySettings, "max_message_bytes", "GATEWAY_MAX_MESSAGE_BYTES", "65536"),
    (GatewaySettings, "max_sessions", "GATEWAY_MAX_SESSIONS", "7"),
    (GatewaySettings, "max_sessions_per_client", "GATEWAY_MAX_SESSIONS_PER_CLIENT", "3"),
    (GatewaySettings, "max_history_messages", "GATEWAY_MAX_HISTORY_MESSAGES", "9"),
    (GatewaySettings, "max_text_chars", "GATEWAY_MAX_TEXT_CHARS", "99"),
    (ASRSettings, "max_upload_mb", "ASR_MAX_UPLOAD_MB", "2.5"),
    (ASRSettings, "max_duration_s", "ASR_MAX_DURATION_S", "12"),
    (LLMSettings, "max_content_chars", "LLM_MAX_CONTENT_CHARS", "500"),
    (LLMSettings, "max_messages", "LLM_MAX_MESSAGES", "11"),
    (LLMSettings, "max_tokens_limit", "LLM_MAX_TOKENS_LIMIT", "64"),
    (TTSSettings, "max_chars", "TTS_MAX_CHARS", "300"),
]


@pytest.mark.parametrize(("cls", "name", "env", "value"), LIMITS, ids=[x[2] for x in LIMITS])
def test_every_limit_is_a_bounded_setting(
    monkeypatch: pytest.MonkeyPatch, cls: type[BaseSettings], name: str, env: str, value: str
) -> None:
    field = cls.model_fields[name]
    assert field.description, "documented (--help and the README table read it)"
    assert any(hasattr(m, "le") for m in field.metadata), "an upper bound: no 'unlimited'"
    monkeypatch.setenv(env, value)
    assert getattr(cls(), name) == type(getattr(cls(), name))(value)


def wav(seconds: float) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.zeros(int(16000 * seconds), np.float32), 16000, format="WAV")
    return buf.getvalue()


def error_code(r: Any) -> str:
    assert set(r.json()) == {"error"}, r.text
    return str(r.json()["error"]["code"])


def test_service_limits_are_enforced() -> None:
    asr = create_asr(
        ASRSettings(vad_gate=False, max_upload_mb=0.1, max_duration_s=2), FakeTranscriber()
    )
    with TestClient(asr) as c:
        for route in ("/transcribe", "/v1/audio/transcriptions"):
            r = c.post(route, files={"file": ("a.wav", wav(3.0))})  # 96 kB, 3 s
            assert (r.status_code, error_code(r)) == (413, "audio_too_long")
            r = c.post(route, files={"file": ("a.wav", wav(3.5) + b"\0" * 10)})  # > 0.1 MB
            assert (r.status_code, error_code(r)) == (413, "body_too_large")
            assert c.post(route, files={"file": ("a.wav", wav(1.0))}).status_code == 200
        r = c.post("/transcribe", content=b"\0" * 200_000, headers={"content-type": "audio/pcm"})
        assert (r.status_code, error_code(r)) == (413, "body_too_large")
    llm = create_llm(
        LLMSettings(max_content_chars=50, max_messages=4, max_tokens_limit=16), FakeChat()
    )
    with TestClient(llm) as c:
        for route in ("/chat", "/v1/chat/completions"):
            r = c.post(route, json={"messages": [{"role": "user", "content": "あ" * 51}]})
            assert (r.status_code, error_code(r)) == (413, "content_too_long")
            r = c.post(route, json={"messages": [{"role": "user", "content": "あ"}] * 5})
            assert (r.status_code, error_code(r)) == (400, "too_many_messages")
            r = c.post(
                route, json={"messages": [{"role": "user", "content": "あ"}], "max_tokens": 17}
            )
            assert r.status_code == 400
            r = c.post(route, json={"messages": [{"role": "user", "content": "あ" * 50}] * 4})
            assert r.status_code == 200
    tts = create_tts(TTSSettings(max_chars=40), FixedSynth())
    with TestClient(tts) as c:
        r = c.post("/synthesize", json={"text": "あ" * 41})
        assert (r.status_code, error_code(r)) == (413, "text_too_long")
        r = c.post("/v1/audio/speech", json={"input": "あ" * 41, "response_format": "wav"})
        assert (r.status_code, error_code(r)) == (413, "text_too_long")
        assert c.post("/synthesize", json={"text": "あ" * 40}).status_code == 200


@pytest.fixture
def fake() -> FakeBehaviour:
    return FakeBehaviour(audio_s=0.05)


@pytest.fixture
def fake_url(fake: FakeBehaviour) -> Iterator[str]:
    with serve(create_fake_services(fake)) as url:
        yield url


def gateway_url(fake_url: str, **overrides: Any) -> Any:
    settings = GatewaySettings(
        asr_urls=[fake_url], llm_urls=[fake_url], tts_urls=[fake_url], **overrides
    )
    return serve(create_gateway(settings))


def test_gateway_history_and_text_limits(fake_url: str, fake: FakeBehaviour) -> None:
    with gateway_url(fake_url, max_history_messages=3, max_text_chars=20) as url:
        c = WSClient(url.replace("http", "ws") + "/ws")
        history = [{"role": "system", "content": "システム"}] + [
            {"role": "user" if i % 2 else "assistant", "content": f"{i}番" + "長" * 100}
            for i in range(500)
        ]
        c.start(history)
        c.send({"event": "userMessage", "message": "あ" * 21})
        error = c.recv()
        assert error["event"] == "error" and "20 characters" in error["message"]
        c.send({"event": "userMessage", "message": "あ" * 20})
        c.until("turnMetrics")
        sent = fake.chat_bodies[-1]["messages"]
        # the system prompt, the newest 3 messages (each cut to 20 characters), the question
        assert sent[0] == {"role": "system", "content": "システム"}
        assert [m["content"][:4] for m in sent[1:4]] == ["497番", "498番", "499番"]
        assert all(len(m["content"]) <= 20 for m in sent) and len(sent) == 5


def test_gateway_session_limits(fake_url: str) -> None:
    with gateway_url(fake_url, max_sessions_per_client=2, max_sessions=3) as url:
        ws = url.replace("http", "ws") + "/ws"
        first = [WSClient(ws), WSClient(ws)]
        refused = WSClient(ws)
        assert refused.recv() == {
            "event": "error",
            "stage": "gateway",
            "message": "too many sessions",
        }
        with pytest.raises(ConnectionClosed) as closed:
            refused.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013  # try again later
        first[0].close()
        again = WSClient(ws)  # a slot is free again once one closes
        again.start()
        again.send({"event": "userMessage", "message": "こんにちは"})
        assert any(e["event"] == "assistantMessageGenerated" for e in again.until("turnMetrics"))


# --- names that look like paths ------------------------------------------------------------

PATHS = ["../../etc/passwd", "/etc/passwd", "..\\..\\windows\\win.ini", "voices/../../x.onnx"]
_watch = {"on": False}  # every thread: the apps answer in threads of their own
_opened: list[str] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    # Audit hooks cannot be removed: this one only records while a test asks it to.
    if _watch["on"] and event == "open" and isinstance(args[0], str | bytes):
        _opened.append(str(args[0]))


sys.addaudithook(_audit)


@pytest.fixture
def opened() -> Iterator[list[str]]:
    _opened.clear()
    _watch["on"] = True
    with open(__file__, "rb"):  # the hook sees opens: this one is recorded
        pass
    assert _opened == [__file__]
    _opened.clear()
    yield _opened
    _watch["on"] = False


def no_path_opened(opened: list[str]) -> None:
    hits = [p for p in opened if "passwd" in p or "win.ini" in p or "x.onnx" in p]
    assert not hits, hits


@pytest.mark.parametrize("name", PATHS)
def test_service_names_are_looked_up_not_opened(name: str, opened: list[str]) -> None:
    with TestClient(create_tts(TTSSettings(), FixedSynth())) as c:
        r = c.post("/synthesize", json={"text": "こんにちは", "voice": name})
        assert (r.status_code, error_code(r)) == (400, "unknown_voice")
        assert "alpha" in r.json()["error"]["message"]  # the known names are listed instead
        r = c.post("/synthesize", json={"text": "こんにちは", "voice": "alpha", "style": name})
        assert (r.status_code, error_code(r)) == (400, "unknown_style")
        r = c.post("/v1/audio/speech", json={"input": "こんにちは", "voice": name})
        assert (r.status_code, error_code(r)) == (400, "unknown_voice")
        speech = {"input": "こんにちは", "model": name, "response_format": "wav"}
        assert c.post("/v1/audio/speech", json=speech).status_code == 200  # any model name
    with TestClient(create_llm(LLMSettings(), FakeChat())) as c:
        body = {"model": name, "messages": [{"role": "user", "content": "やあ"}]}
        r = c.post("/v1/chat/completions", json=body)
        assert r.status_code == 200 and r.json()["model"] == "fake-model"  # not the name given
    with TestClient(create_asr(ASRSettings(vad_gate=False), FakeTranscriber())) as c:
        data = {"model": name, "language": "ja"}
        r = c.post("/v1/audio/transcriptions", files={"file": ("a.wav", wav(1.0))}, data=data)
        assert r.status_code == 200 and r.json() == {"text": "はい"}
        r = c.post("/transcribe", files={"file": (name, wav(1.0))})  # the upload's file name
        assert r.status_code == 200
    no_path_opened(opened)


def test_gateway_ids_and_voice_are_never_paths(
    fake_url: str, fake: FakeBehaviour, opened: list[str]
) -> None:
    settings = GatewaySettings(asr_urls=[fake_url], llm_urls=[fake_url], tts_urls=[fake_url])
    app = create_gateway(settings)
    with serve(app) as url:
        for name in PATHS:
            assert app.state.hub.voice(name) is None  # not a name: the TTS default voice
            c = WSClient(url.replace("http", "ws") + "/ws")
            c.start(sttModelId=name, llmModelId=name, ttsModelId=name, voice=name)
            c.send({"event": "userMessage", "message": "こんにちは"})
            got = c.until("turnMetrics")
            assert "error" not in [e["event"] for e in got]  # ignored: the defaults serve
            c.close()
        assert app.state.hub.voice("jf_alpha") == "jf_alpha"  # a name passes to TTS's lookup
    no_path_opened(opened)
