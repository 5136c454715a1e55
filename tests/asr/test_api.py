"""The ASR routes with a fake engine: request handling, limits and the error shape."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import AsyncIterator

import httpx
import numpy as np
import pytest
import soundfile as sf

from services.asr.app import create_app
from services.asr.engine import Segment, Transcription
from services.asr.settings import ASRSettings

pytestmark = pytest.mark.anyio


class FakeTranscriber:
    backend = "fake"
    device = "cpu"
    model_name = "fake"

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.calls: list[tuple[int, str | None]] = []

    def transcribe(self, audio, language, prompt=None, temperature=0.0):  # noqa: ANN001, ANN201
        self.gate.wait(10)
        self.calls.append((len(audio), language))
        text = f"{len(audio)} samples"
        return Transcription("", language or "en", len(audio) / 16000, [Segment(0, 1, text)])


def wav_bytes(seconds: float = 1.0, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    t = np.arange(int(seconds * rate)) / rate
    sf.write(buf, 0.3 * np.sin(2 * np.pi * 300 * t), rate, format="WAV")
    return buf.getvalue()


def make_client(engine: FakeTranscriber, **overrides: object) -> tuple[httpx.AsyncClient, object]:
    settings = ASRSettings(vad_gate=False, max_duration_s=5, max_upload_mb=1, **overrides)
    app = create_app(settings, engine)
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://asr"), app


@pytest.fixture
async def fake() -> FakeTranscriber:
    return FakeTranscriber()


@pytest.fixture
async def client(fake: FakeTranscriber) -> AsyncIterator[httpx.AsyncClient]:
    c, app = make_client(fake, max_queue=0)
    async with app.router.lifespan_context(app), c:  # type: ignore[attr-defined]
        yield c


def assert_error(r: httpx.Response, status: int, code: str | None = None) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"] and "Traceback" not in r.text
    if code:
        assert body["error"]["code"] == code


async def test_multipart_and_pcm(client: httpx.AsyncClient, fake: FakeTranscriber) -> None:
    r = await client.post("/transcribe", files={"file": ("a.wav", wav_bytes(1.0, 44100))})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["text"] == "16000 samples" and body["language"] == "ja"
    assert body["duration_s"] == 1.0 and body["processing_s"] >= 0
    pcm = np.zeros(8000, "<i2").tobytes()
    r = await client.post(
        "/transcribe?language=auto&sample_rate=8000",
        content=pcm,
        headers={"content-type": "audio/pcm"},
    )
    assert r.json()["text"] == "16000 samples"
    assert fake.calls[-1] == (16000, None)


async def test_openai_formats(client: httpx.AsyncClient) -> None:
    files = {"file": ("a.wav", wav_bytes())}
    r = await client.post("/v1/audio/transcriptions", files=files, data={"model": "whisper-1"})
    assert r.json() == {"text": "16000 samples"}
    r = await client.post("/v1/audio/transcriptions", files=files, data={"response_format": "text"})
    assert r.text == "16000 samples"
    r = await client.post(
        "/v1/audio/transcriptions", files=files, data={"response_format": "verbose_json"}
    )
    assert r.json()["segments"][0]["text"] == "16000 samples"
    r = await client.post("/v1/audio/transcriptions", files=files, data={"response_format": "vtt"})
    assert r.text.startswith("WEBVTT")


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"content": b"", "headers": {"content-type": "audio/pcm"}}, 400, "empty_audio"),
        ({"files": {"file": ("x.wav", b"")}}, 400, "empty_audio"),
        ({"files": {"file": ("x.wav", b"definitely not audio" * 50)}}, 400, "invalid_audio"),
        ({"files": {"file": ("x.wav", wav_bytes()[:30])}}, 400, "invalid_audio"),
        (
            {"content": b"\x00" * 1001, "headers": {"content-type": "audio/pcm"}},
            400,
            "odd_length_pcm",
        ),
        (
            {"content": b"{}", "headers": {"content-type": "application/json"}},
            415,
            "unsupported_media_type",
        ),
        ({"content": b"\x00" * 100}, 415, "unsupported_media_type"),
        ({"files": {"file": ("x.wav", wav_bytes(6.0))}}, 413, "audio_too_long"),
        (
            {"content": b"\x00" * (2 << 20), "headers": {"content-type": "audio/pcm"}},
            413,
            "body_too_large",
        ),
        ({"data": {"other": "x"}, "files": {"x": ("x", b"1")}}, 400, "missing_file"),
    ],
)
async def test_bad_input(client: httpx.AsyncClient, kwargs: dict, status: int, code: str) -> None:
    assert_error(await client.post("/transcribe", **kwargs), status, code)
    # and the service keeps serving
    r = await client.post("/transcribe", files={"file": ("a.wav", wav_bytes())})
    assert r.status_code == 200


@pytest.mark.parametrize("query", ["sample_rate=0", "sample_rate=999999999", "sample_rate=abc"])
async def test_bad_sample_rate(client: httpx.AsyncClient, query: str) -> None:
    r = await client.post(
        f"/transcribe?{query}", content=b"\x00\x00" * 100, headers={"content-type": "audio/pcm"}
    )
    assert_error(r, 400)


async def test_unknown_language_and_bad_openai_fields(client: httpx.AsyncClient) -> None:
    files = {"file": ("a.wav", wav_bytes())}
    assert_error(await client.post("/transcribe?language=xx", files=files), 400, "invalid_language")
    r = await client.post("/v1/audio/transcriptions", files=files, data={"response_format": "mp3"})
    assert_error(r, 400)
    r = await client.post("/v1/audio/transcriptions", files=files, data={"temperature": "9"})
    assert_error(r, 400)
    assert_error(await client.post("/v1/audio/transcriptions", data={"model": "x"}), 400)
    assert_error(await client.get("/nope"), 404)


async def test_full_queue_answers_503_with_retry_after(fake: FakeTranscriber) -> None:
    c, app = make_client(fake, max_queue=0)
    async with app.router.lifespan_context(app), c:  # type: ignore[attr-defined]
        fake.gate.clear()
        first = asyncio.create_task(c.post("/transcribe", files={"file": ("a", wav_bytes())}))
        await asyncio.sleep(0.2)
        r = await c.post("/transcribe", files={"file": ("a", wav_bytes())})
        assert_error(r, 503, "queue_full")
        assert int(r.headers["retry-after"]) >= 1
        health = await c.get("/health")
        assert health.status_code == 200
        fake.gate.set()
        assert (await first).status_code == 200


async def test_requests_queue_when_room(fake: FakeTranscriber) -> None:
    c, app = make_client(fake, max_queue=4)
    async with app.router.lifespan_context(app), c:  # type: ignore[attr-defined]
        fake.gate.clear()
        tasks = [
            asyncio.create_task(c.post("/transcribe", files={"file": ("a", wav_bytes())}))
            for _ in range(4)
        ]
        await asyncio.sleep(0.2)
        fake.gate.set()
        assert [(await t).status_code for t in tasks] == [200] * 4


async def test_token_required_when_configured(fake: FakeTranscriber) -> None:
    c, app = make_client(fake, api_token="s3cret")
    async with app.router.lifespan_context(app), c:  # type: ignore[attr-defined]
        assert (await c.get("/health")).status_code == 200
        files = {"file": ("a", wav_bytes())}
        assert_error(await c.post("/transcribe", files=files), 401)
        bad = {"authorization": "Bearer nope"}
        assert_error(await c.post("/transcribe", files=files, headers=bad), 401)
        good = {"authorization": "Bearer s3cret"}
        assert (await c.post("/transcribe", files=files, headers=good)).status_code == 200


async def test_health_and_docs(client: httpx.AsyncClient) -> None:
    health = (await client.get("/health")).json()
    assert health["model_loaded"] is True and health["backend"] == "faster-whisper"
    schema = (await client.get("/openapi.json")).json()
    assert "/transcribe" in schema["paths"] and "/v1/audio/transcriptions" in schema["paths"]
