"""Routes and bad input, in-process with a fake synthesizer (fast, no model)."""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from services.tts.app import create_app
from services.tts.settings import TTSSettings

from .conftest import FakeSynth


@pytest.fixture
def client(fake: FakeSynth) -> Iterator[TestClient]:
    app = create_app(TTSSettings(max_chars=200), engine=fake)
    with TestClient(app) as c:
        yield c


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getsampwidth(), w.getnchannels()) == (2, 1)
        return np.frombuffer(w.readframes(w.getnframes()), "<i2"), w.getframerate()


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    return body["error"]


def test_synthesize_wav_per_sentence_with_even_loudness(
    client: TestClient, fake: FakeSynth
) -> None:
    r = client.post("/synthesize", json={"text": "# 見出し\nこんにちは😀。元気？ https://x.y"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "audio/wav"
    assert r.headers["x-sample-rate"] == "16000"
    pcm, rate = read_wav(r.content)
    assert rate == 16000
    assert [c[0] for c in fake.calls] == ["見出し", "こんにちは。", "元気？"]
    # the fake returns a 3x over-full-scale tone: scaled down, never clipped
    assert np.max(np.abs(pcm.astype(np.int32))) < 32767


def test_loudness_matches_between_voices(client: TestClient) -> None:
    levels = []
    for voice in ("loud", "quiet"):
        pcm, _ = read_wav(
            client.post("/synthesize", json={"text": "あいうえお", "voice": voice}).content
        )
        levels.append(20 * np.log10(np.sqrt(np.mean((pcm / 32768.0) ** 2))))
    assert levels[0] == pytest.approx(levels[1], abs=0.5)


def test_synthesize_pcm_and_resampling(client: TestClient) -> None:
    r = client.post(
        "/synthesize", json={"text": "あいうえお", "format": "pcm", "sample_rate": 8000}
    )
    assert r.headers["content-type"] == "audio/pcm"
    assert r.headers["x-sample-rate"] == "8000"
    assert len(r.content) == 2 * int(0.25 * 8000)  # 5 chars x 0.05 s, resampled


def test_knobs_reach_the_engine(client: TestClient, fake: FakeSynth) -> None:
    body = {
        "text": "はい",
        "voice": "loud",
        "style": "happy",
        "speed": 1.5,
        "pitch": -2,
        "sdp_ratio": 0.5,
    }
    assert client.post("/synthesize", json=body).status_code == 200
    options = fake.calls[-1][2]
    assert (options.style, options.speed, options.pitch, options.sdp_ratio) == (
        "Happy",
        1.5,
        -2,
        0.5,
    )


def test_voices_health_and_docs(client: TestClient) -> None:
    voices = client.get("/voices").json()
    assert voices["default_voice"] == "loud"
    first = voices["voices"][0]
    assert first["styles"] == ["Neutral", "Happy"] and first["sample_rate"] == 16000
    assert first["languages"] == ["ja"] and first["default"] is True
    assert client.get("/health").json() == {
        "status": "ok",
        "backends": ["fake"],
        "voices": 2,
        "busy": False,
    }
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/synthesize", "/synthesize/stream", "/v1/audio/speech", "/voices", "/health"} <= set(
        paths
    )
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"text": ""}, 400, "empty_text"),
        ({"text": "   \n "}, 400, "empty_text"),
        ({"text": "😀🎉👍"}, 400, "nothing_to_speak"),
        ({"text": "！？。、…"}, 400, "nothing_to_speak"),
        ({"text": "あ" * 201}, 413, "text_too_long"),
        ({"text": "はい", "voice": "nobody"}, 400, "unknown_voice"),
        ({"text": "はい", "voice": "quiet", "style": "Happy"}, 400, "unknown_style"),
        ({"text": "Hello there, how are you?", "voice": "loud"}, 422, "unsupported_language"),
        ({"text": "はい", "format": "ogg"}, 400, "invalid_value"),
        ({"text": "はい", "speed": 10}, 400, "invalid_value"),
        ({"voice": "loud"}, 400, "invalid_value"),
    ],
)
def test_bad_input(client: TestClient, body: dict, status: int, code: str) -> None:
    for route in ("/synthesize", "/synthesize/stream"):
        assert_error(client.post(route, json=body), status, code)
    assert client.post("/synthesize", json={"text": "まだ元気"}).status_code == 200


def test_error_messages_list_the_valid_choices(client: TestClient) -> None:
    error = assert_error(client.post("/synthesize", json={"text": "は", "voice": "x"}), 400)
    assert "loud" in error["message"] and "quiet" in error["message"] and error["param"] == "voice"
    error = assert_error(
        client.post("/synthesize", json={"text": "は", "voice": "loud", "style": "x"}), 400
    )
    assert "Neutral, Happy" in error["message"]
    error = assert_error(
        client.post("/synthesize", json={"text": "Good morning", "voice": "loud"}), 422
    )
    assert "voices that can: quiet" in error["message"]


def test_english_goes_to_a_voice_that_speaks_it(client: TestClient, fake: FakeSynth) -> None:
    assert (
        client.post("/synthesize", json={"text": "Good morning.", "voice": "quiet"}).status_code
        == 200
    )
    # No voice named: the default ("loud", Japanese only) gives way to one that speaks it,
    # on every route; its style falls back to the stand-in's own when it lacks one.
    for route, body in [
        ("/synthesize", {"text": "Good morning. See you at 10:00."}),
        ("/synthesize/stream", {"text": "Good morning.", "style": "Happy"}),
        ("/v1/audio/speech", {"input": "Good morning.", "voice": "alloy"}),
    ]:
        fake.calls.clear()
        assert client.post(route, json=body).status_code == 200, route
        assert {(voice, options.style) for _, voice, options in fake.calls} == {
            ("quiet", "Neutral")
        }
    # English symbol reading, not Japanese: "10:00" is not "10時"
    assert [text for text, _, _ in fake.calls] == ["Good morning."]
    client.post("/synthesize", json={"text": "See you at 10:00 & bring $5."})
    assert fake.calls[-1][0] == "See you at 10 o'clock and bring 5 dollars."
    # Japanese text and digits alone still go to the default
    client.post("/synthesize", json={"text": "おはよう。"})
    client.post("/synthesize", json={"text": "42"})
    assert [voice for _, voice, _ in fake.calls[-2:]] == ["loud", "loud"]


class JapaneseOnly(FakeSynth):
    def voices(self):  # noqa: ANN201
        return super().voices()[:1]


def test_english_with_no_voice_that_speaks_it_is_a_422() -> None:
    with TestClient(create_app(TTSSettings(), engine=JapaneseOnly())) as c:
        error = assert_error(c.post("/synthesize", json={"text": "Hello."}), 422)
    assert "no loaded voice can" in error["message"]


def test_malformed_json(client: TestClient) -> None:
    r = client.post(
        "/synthesize", content=b'{"text": "abc', headers={"content-type": "application/json"}
    )
    assert assert_error(r, 400)["message"] == "request body is not valid JSON"
    assert client.post("/synthesize", json={"text": "まだ元気"}).status_code == 200


def test_openai_route_maps_its_voice_names_and_formats(client: TestClient) -> None:
    r = client.post(
        "/v1/audio/speech",
        json={"model": "tts-1", "voice": "alloy", "input": "はい", "response_format": "wav"},
    )
    pcm, rate = read_wav(r.content)
    assert rate == 16000 and len(pcm) > 0
    r = client.post(
        "/v1/audio/speech",
        json={"model": "tts-1", "voice": "alloy", "input": "はい", "response_format": "pcm"},
    )
    assert r.headers["x-sample-rate"] == "24000"  # OpenAI's pcm is always 24 kHz
    assert_error(
        client.post("/v1/audio/speech", json={"voice": "nobody", "input": "はい"}),
        400,
        "unknown_voice",
    )
    error = assert_error(
        client.post("/v1/audio/speech", json={"voice": "alloy", "input": ""}), 400, "empty_text"
    )
    assert error["param"] == "input"
    assert_error(
        client.post("/v1/audio/speech", json={"input": "は", "response_format": "aac"}), 400
    )


def test_bearer_token(fake: FakeSynth) -> None:
    app = create_app(TTSSettings(api_token=SecretStr("sesame")), engine=fake)
    with TestClient(app) as c:
        assert c.get("/health").status_code == 200
        assert_error(c.post("/synthesize", json={"text": "はい"}), 401)
        ok = c.post(
            "/synthesize", json={"text": "はい"}, headers={"Authorization": "Bearer sesame"}
        )
        assert ok.status_code == 200


def test_one_synthesis_at_a_time_and_503_when_the_line_is_full() -> None:
    fake = FakeSynth(delay_s=0.3)
    app = create_app(TTSSettings(max_queue=1), engine=fake)

    async def scenario() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://tts") as c:
                # three at once: one runs, one waits, one is turned away
                return await asyncio.gather(
                    *(c.post("/synthesize", json={"text": "はい"}) for _ in range(3))
                )

    responses = asyncio.run(scenario())
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 200, 503]
    busy = next(r for r in responses if r.status_code == 503)
    assert_error(busy, 503, "queue_full")
    assert busy.headers["retry-after"]
    assert fake.max_running == 1


class Broken(FakeSynth):
    def synthesize(self, text, voice, options):  # noqa: ANN001, ANN201
        if "壊" in text:
            raise RuntimeError("model exploded")
        return super().synthesize(text, voice, options)


def test_model_failure_is_a_500_in_the_one_shape_and_the_service_goes_on() -> None:
    with TestClient(
        create_app(TTSSettings(max_queue=0), engine=Broken()), raise_server_exceptions=False
    ) as c:
        for route in ("/synthesize", "/synthesize/stream"):
            error = assert_error(c.post(route, json={"text": "壊れる"}), 500)
            assert error["type"] == "server_error" and "exploded" not in error["message"]
        assert c.post("/synthesize", json={"text": "大丈夫"}).status_code == 200  # model freed
