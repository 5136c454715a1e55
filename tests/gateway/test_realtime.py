"""``/v1/realtime`` through the official ``openai`` SDK's realtime client, on loopback.

The fake services (bench/fakes.py) check the protocol: event order and names,
session settings reaching the services, audio formats, cancellation, truncation
and errors. The slow test runs the real services with real speech.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import soxr
from openai import OpenAI

from bench.fakes import FakeBehaviour, create_fake_services
from bench.metrics import cer
from bench.stack import ServiceProcess
from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.conftest import JSUT_TEXT
from tests.servers import serve

GA_ONLY = {"response.output_audio.delta", "response.output_audio_transcript.delta"}
BETA_ONLY = {"response.audio.delta", "response.audio_transcript.delta"}


def speech_b64(
    path: Path, rate: int = 24000, chunk_ms: int = 100, tail_s: float = 0.8
) -> list[str]:
    """A clip as base64 PCM16 chunks at ``rate``, with silence after it so the VAD ends the turn."""
    audio, source_rate = sf.read(path, dtype="float32", always_2d=True)
    mono = soxr.resample(audio.mean(axis=1), source_rate, rate)
    pcm = np.concatenate([np.zeros(rate // 4, np.float32), mono, np.zeros(int(rate * tail_s))])
    data = (pcm * 32767).astype("<i2").tobytes()
    size = rate * chunk_ms // 1000 * 2
    return [base64.b64encode(data[i : i + size]).decode() for i in range(0, len(data), size)]


class Session:
    """The SDK's connection plus a record of every event, with a watchdog so a missing
    event fails the test instead of hanging it (the SDK's recv() has no timeout)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.events: list[dict[str, Any]] = []

    def until(self, kind: str, timeout: float = 20) -> list[dict[str, Any]]:
        watchdog = threading.Timer(timeout, self.conn.close)
        watchdog.start()
        out = []
        try:
            while True:
                event = self.conn.recv()
                data = (
                    event
                    if isinstance(event, dict)
                    else event.model_dump(mode="json", exclude_unset=True)
                )
                self.events.append(data)
                out.append(data)
                if data["type"] == kind:
                    return out
        finally:
            watchdog.cancel()

    def send(self, event: dict[str, Any]) -> None:
        self.conn.send(event)


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def audio_of(events: list[dict[str, Any]], name: str = "response.output_audio.delta") -> bytes:
    return b"".join(base64.b64decode(e["delta"]) for e in events if e["type"] == name)


@pytest.fixture
def fake() -> FakeBehaviour:
    return FakeBehaviour()


@pytest.fixture
def gateway_url(fake: FakeBehaviour) -> Iterator[str]:
    with serve(create_fake_services(fake)) as fake_url:
        settings = GatewaySettings(asr_urls=[fake_url], llm_urls=[fake_url], tts_urls=[fake_url])
        with serve(create_app(settings)) as url:
            yield url


@pytest.fixture
def client(gateway_url: str) -> OpenAI:
    # websocket_base_url: the beta client would otherwise switch to wss:// on its own.
    ws_url = gateway_url.replace("http://", "ws://") + "/v1"
    return OpenAI(api_key="unused", base_url=gateway_url + "/v1", websocket_base_url=ws_url)


@pytest.fixture
def rt(client: OpenAI) -> Iterator[Session]:
    with client.realtime.connect(model="koe") as conn:
        s = Session(conn)
        s.until("session.created")
        yield s


def say(s: Session, text: str) -> None:
    s.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": text}],
            },
        }
    )


def test_session_update_reaches_the_services(rt: Session, fake: FakeBehaviour) -> None:
    fake.audio_s = 0.5
    rt.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "instructions": "関西弁で話してください。",
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": 16000},
                        "turn_detection": {"type": "server_vad", "silence_duration_ms": 400},
                    },
                    "output": {"format": {"type": "audio/pcm", "rate": 16000}, "voice": "alloy"},
                },
            },
        }
    )
    session = rt.until("session.updated")[-1]["session"]
    assert session["instructions"] == "関西弁で話してください。"
    assert session["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 16000}
    vad = session["audio"]["input"]["turn_detection"]
    assert vad["silence_duration_ms"] == 400 and vad["threshold"] == 0.5
    say(rt, "こんにちは")
    rt.send({"type": "response.create"})
    got = rt.until("response.done")
    assert types(got)[:2] == ["conversation.item.added", "conversation.item.done"]
    order = [t for t in types(got) if t not in GA_ONLY]
    assert order[2:] == [
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
    ]
    pcm = np.frombuffer(audio_of(got), dtype="<i2")
    assert len(pcm) / 16000 == pytest.approx(1.0, abs=0.02)  # two 0.5 s sentences at 16 kHz
    assert np.abs(pcm).max() > 3000  # the fake's tone, not silence
    deltas = "".join(e["delta"] for e in got if e["type"].endswith("transcript.delta"))
    assert deltas == "こんにちは。元気です。"
    done = got[-1]["response"]
    assert done["status"] == "completed"
    assert done["output"][0]["content"][0] == {
        "type": "output_audio",
        "transcript": "こんにちは。元気です。",
    }
    sent = fake.chat_bodies[-1]["messages"]
    assert sent[0] == {"role": "system", "content": "関西弁で話してください。"}
    assert sent[-1] == {"role": "user", "content": "こんにちは"}


def test_unsupported_and_invalid_events_get_errors(rt: Session) -> None:
    rt.send({"type": "transcription_session.update", "session": {}})
    error = rt.until("error")[-1]["error"]
    assert error["code"] == "unsupported_event"
    assert "'transcription_session.update'" in error["message"]
    rt.send({"type": "input_audio_buffer.append", "audio": "not base64!!", "event_id": "ev1"})
    error = rt.until("error")[-1]["error"]
    assert (error["param"], error["event_id"]) == ("audio", "ev1")
    for session, param in [
        ({"audio": {"input": {"format": {"type": "audio/pcmu"}}}}, "session.audio.input.format"),
        ({"input_audio_format": "g711_ulaw"}, "session.audio.input.format"),
        ({"audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}}, None),
        ({"output_modalities": ["text"]}, "session.output_modalities"),
        ({"audio": {"input": {"format": {"type": "audio/pcm", "rate": 1000}}}}, None),
    ]:
        rt.send({"type": "session.update", "session": session})
        error = rt.until("error")[-1]["error"]
        assert error["code"] in ("unsupported_value", "invalid_value"), error
        if param:
            assert error["param"] == param
    rt.send({"type": "input_audio_buffer.commit"})
    assert rt.until("error")[-1]["error"]["code"] == "input_audio_buffer_commit_empty"
    rt.send({"type": "response.cancel"})
    assert rt.until("error")[-1]["error"]["code"] == "response_cancel_not_active"
    rt.send({"type": "response.create"})  # nothing said yet
    got = rt.until("response.done")
    assert "error" in types(got) and got[-1]["response"]["status"] == "failed"
    rt.send({"type": "conversation.item.truncate", "item_id": "item_x", "audio_end_ms": 0})
    assert rt.until("error")[-1]["error"]["code"] == "item_not_found"
    # still usable after all that
    rt.send({"type": "session.update", "session": {"instructions": "はい"}})
    assert rt.until("session.updated")[-1]["session"]["instructions"] == "はい"


def test_manual_commit_transcribes_then_response_create_answers(
    rt: Session, fake: FakeBehaviour, jsut_wav: Path
) -> None:
    rt.send({"type": "session.update", "session": {"audio": {"input": {"turn_detection": None}}}})
    assert rt.until("session.updated")[-1]["session"]["audio"]["input"]["turn_detection"] is None
    chunks = speech_b64(jsut_wav)
    rt.send({"type": "input_audio_buffer.append", "audio": chunks[0]})
    rt.send({"type": "input_audio_buffer.clear"})
    rt.until("input_audio_buffer.cleared")
    for chunk in chunks:
        rt.send({"type": "input_audio_buffer.append", "audio": chunk})
    rt.send({"type": "input_audio_buffer.commit"})
    got = rt.until("conversation.item.input_audio_transcription.completed")
    assert types(got) == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.input_audio_transcription.completed",
    ]  # no speech_started: the VAD is off, and no response without response.create
    item_id = got[0]["item_id"]
    assert got[1]["item"]["id"] == got[-1]["item_id"] == item_id
    assert got[-1]["transcript"] == fake.transcript
    assert fake.asr_calls == 1 and not fake.chat_bodies
    rt.send({"type": "response.create"})
    got = rt.until("response.done")
    assert got[-1]["response"]["status"] == "completed"
    assert fake.chat_bodies[-1]["messages"][-1] == {"role": "user", "content": fake.transcript}


def test_server_vad_turn_with_beta_names(
    client: OpenAI, fake: FakeBehaviour, jsut_wav: Path
) -> None:
    with client.beta.realtime.connect(model="koe") as conn:
        rt = Session(conn)
        assert rt.until("session.created")[-1]["session"]["input_audio_format"] == "pcm16"
        for chunk in speech_b64(jsut_wav):
            rt.send({"type": "input_audio_buffer.append", "audio": chunk})
        got = rt.until("response.done")
    order = types(got)
    assert order[:4] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.created",
    ]
    assert got[0]["item_id"] == got[1]["item_id"] == got[2]["item_id"] == got[3]["item"]["id"]
    assert 0 < got[0]["audio_start_ms"] < got[1]["audio_end_ms"]
    transcript = next(e for e in got if e["type"].endswith("transcription.completed"))
    assert transcript["transcript"] == fake.transcript
    assert BETA_ONLY <= set(order) and not GA_ONLY & set(order)
    assert "conversation.item.added" not in order and "conversation.item.done" not in order
    pcm = audio_of(got, "response.audio.delta")
    assert len(pcm) / 2 / 24000 == pytest.approx(0.4, abs=0.02)
    assert got[-1]["response"]["status"] == "completed"


def test_response_cancel_stops_the_llm_and_keeps_what_was_sent(
    rt: Session, fake: FakeBehaviour
) -> None:
    fake.reply_pieces = ["一つ目です。", *["ね。"] * 40]
    fake.token_delay_s = 0.1
    say(rt, "長い話をして")
    rt.send({"type": "response.create"})
    rt.until("response.output_audio.delta")
    rt.send({"type": "response.cancel"})
    got = rt.until("response.done")
    done = got[-1]["response"]
    assert done["status"] == "cancelled"
    assert done["status_details"]["reason"] == "client_cancelled"
    assert "response.output_audio.done" in types(got)
    assert fake.pieces_sent < 20
    deadline = time.monotonic() + 5
    while not fake.stream_closed_early and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake.stream_closed_early == 1  # the LLM stream was closed: generation stopped
    fake.reply_pieces, fake.token_delay_s = ["はい。"], 0.0
    say(rt, "続けて")
    rt.send({"type": "response.create"})
    rt.until("response.done")
    history = fake.chat_bodies[-1]["messages"]
    assert history[-3]["content"] == "長い話をして"
    assert history[-2]["role"] == "assistant" and history[-2]["content"].startswith("一つ目です。")
    assert len(history[-2]["content"]) < 20  # only the sentences sent before the cancel


def test_speech_during_a_response_cancels_it(
    rt: Session, fake: FakeBehaviour, jsut_wav: Path
) -> None:
    fake.reply_pieces = ["一つ目です。", *["ね。"] * 40]
    fake.token_delay_s = 0.1
    say(rt, "長い話をして")
    rt.send({"type": "response.create"})
    first = rt.until("response.output_audio.delta")
    response_id = first[-1]["response_id"]
    for chunk in speech_b64(jsut_wav):
        rt.send({"type": "input_audio_buffer.append", "audio": chunk})
    got = rt.until("response.done")
    assert got[-1]["response"]["id"] == response_id
    assert got[-1]["response"]["status"] == "cancelled"
    assert got[-1]["response"]["status_details"]["reason"] == "turn_detected"
    assert "input_audio_buffer.speech_started" in types(got)
    fake.reply_pieces, fake.token_delay_s = ["はい。"], 0.0
    # the speech that interrupted becomes the next turn
    got = rt.until("response.done")
    assert got[-1]["response"]["status"] == "completed"
    assert any(e["type"].endswith("transcription.completed") for e in got)


def test_truncate_keeps_only_what_was_heard(rt: Session, fake: FakeBehaviour) -> None:
    fake.audio_s = 0.4
    say(rt, "こんにちは")
    rt.send({"type": "response.create"})
    got = rt.until("response.done")
    item_id = got[-1]["response"]["output"][0]["id"]
    rt.send(
        {"type": "conversation.item.truncate", "item_id": item_id, "audio_end_ms": 5000}
    )  # beyond the 0.8 s of audio
    assert rt.until("error")[-1]["error"]["param"] == "audio_end_ms"
    rt.send({"type": "conversation.item.truncate", "item_id": item_id, "audio_end_ms": 600})
    truncated = rt.until("conversation.item.truncated")[-1]
    assert (truncated["item_id"], truncated["audio_end_ms"]) == (item_id, 600)
    say(rt, "それで？")
    rt.send({"type": "response.create"})
    rt.until("response.done")
    history = fake.chat_bodies[-1]["messages"]
    # 0.6 s heard: all of the first sentence (0.4 s), half of the second
    assert history[-2] == {"role": "assistant", "content": "こんにちは。元気"}


def test_input_rate_is_resampled_for_the_vad(rt: Session, jsut_wav: Path) -> None:
    rt.send(
        {
            "type": "session.update",
            "session": {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 48000}}}},
        }
    )
    rt.until("session.updated")
    chunks = speech_b64(jsut_wav, rate=48000)
    for chunk in chunks:
        rt.send({"type": "input_audio_buffer.append", "audio": chunk})
    got = rt.until("input_audio_buffer.speech_stopped")
    clip_ms = len(sf.read(jsut_wav)[0]) / sf.info(jsut_wav).samplerate * 1000
    speech_ms = got[-1]["audio_end_ms"] - got[0]["audio_start_ms"]
    assert clip_ms < speech_ms < clip_ms + 1200  # VAD timings in the session's own clock


# -- the real services -----------------------------------------------------------------
@pytest.fixture(scope="module")
def real_gateway(cache_dir: Path) -> Iterator[str]:
    procs = [
        ServiceProcess("services.asr", "ASR_"),
        ServiceProcess("services.llm", "LLM_", {"LLM_TEMPERATURE": "0"}),
        ServiceProcess("services.tts", "TTS_"),
    ]
    try:
        for p in procs:
            p.start()
        settings = GatewaySettings(
            asr_urls=[procs[0].url], llm_urls=[procs[1].url], tts_urls=[procs[2].url]
        )
        with serve(create_app(settings)) as url:
            yield url
    finally:
        for p in procs:
            p.stop()


@pytest.mark.slow
def test_real_speech_turn_through_the_sdk(real_gateway: str, jsut_wav: Path) -> None:
    client = OpenAI(api_key="unused", base_url=real_gateway + "/v1")
    with client.realtime.connect(model="koe") as conn:
        rt = Session(conn)
        rt.until("session.created")
        for chunk in speech_b64(jsut_wav):
            rt.send({"type": "input_audio_buffer.append", "audio": chunk})
        got = rt.until("response.done", timeout=120)
    transcript = next(e for e in got if e["type"].endswith("transcription.completed"))
    assert cer(JSUT_TEXT, transcript["transcript"]) <= 0.2, transcript["transcript"]
    done = got[-1]["response"]
    assert done["status"] == "completed", done
    reply = next(e for e in got if e["type"] == "response.output_audio_transcript.done")
    assert reply["transcript"].strip()
    assert done["output"][0]["content"][0]["transcript"] == reply["transcript"]
    pcm = np.frombuffer(audio_of(got), dtype="<i2")
    seconds = len(pcm) / 24000
    assert 0.3 < seconds < 60, seconds
    assert np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) > 300  # a voice, not silence


def test_token_by_header_or_browser_subprotocol(fake: FakeBehaviour) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    with serve(create_fake_services(fake)) as fake_url:
        settings = GatewaySettings(
            asr_urls=[fake_url], llm_urls=[fake_url], tts_urls=[fake_url], api_token="secret"
        )
        with serve(create_app(settings)) as url:
            ws_url = url.replace("http://", "ws://") + "/v1"
            bad = OpenAI(api_key="wrong", base_url=url + "/v1", websocket_base_url=ws_url)
            with pytest.raises(InvalidStatus), bad.realtime.connect(model="koe") as c:
                c.recv()
            good = OpenAI(api_key="secret", base_url=url + "/v1", websocket_base_url=ws_url)
            with good.realtime.connect(model="koe") as conn:
                assert Session(conn).until("session.created")[-1]["session"]["type"] == "realtime"
            # What a browser does: the key and the beta flag travel as subprotocols.
            offered = ["realtime", "openai-insecure-api-key.secret", "openai-beta.realtime-v1"]
            with connect(ws_url + "/realtime?model=koe", subprotocols=offered) as ws:
                assert ws.subprotocol == "realtime"
                created = json.loads(ws.recv(timeout=5))
                assert created["type"] == "session.created"
                assert created["session"]["input_audio_format"] == "pcm16"  # the beta shape
