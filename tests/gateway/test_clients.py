"""Spreading turns over several URLs per stage: rotation, failover, cooldown, busy instances.

The services are stood in for by httpx's MockTransport, so each test states
exactly which URL is down, busy or slow, and reads which URLs were asked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import SecretStr

from gateway.clients import Stage, UpstreamError, Upstreams
from gateway.settings import GatewaySettings
from tests.servers import serve

pytestmark = pytest.mark.anyio

A, B, C = "http://a:1", "http://b:2", "http://c:3"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def upstreams(handler: Callable[[httpx.Request], httpx.Response], urls: list[str]) -> Upstreams:
    settings = GatewaySettings(
        asr_urls=urls, llm_urls=urls, tts_urls=urls, tts_token=SecretStr("s3cret")
    )
    return Upstreams(settings, httpx.AsyncClient(transport=httpx.MockTransport(handler)))


def base(request: httpx.Request) -> str:
    return f"{request.url.scheme}://{request.url.host}:{request.url.port}"


def test_rotation_spreads_evenly_over_healthy_urls() -> None:
    stage = Stage("tts", [A, B, C], None, 10)
    firsts = [stage.candidates()[0] for _ in range(9)]
    assert sorted(firsts) == sorted([A, B, C] * 3)
    assert stage.candidates() == [A, B, C]  # every URL is always listed


def test_failed_url_is_tried_last_until_its_cooldown_ends() -> None:
    clock = Clock()
    stage = Stage("tts", [A, B, C], None, 10, cooldown_s=5, clock=clock)
    stage.failed(B)
    for _ in range(6):
        order = stage.candidates()
        assert order[-1] == B and set(order) == {A, B, C}
    clock.now += 5.1
    assert B in {stage.candidates()[0] for _ in range(3)}


def test_all_urls_failed_still_tries_them_soonest_back_first() -> None:
    clock = Clock()
    stage = Stage("tts", [A, B], None, 10, cooldown_s=5, clock=clock)
    stage.failed(A)
    clock.now += 1
    stage.failed(B)
    assert stage.candidates() == [A, B]
    stage.succeeded(B)
    assert stage.candidates()[0] == B


async def test_unreachable_url_fails_over_and_is_skipped_afterwards() -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(base(request))
        if base(request) == A:
            raise httpx.ConnectError("refused", request=request)
        assert request.headers["authorization"] == "Bearer s3cret"
        return httpx.Response(200, content=b"RIFF")

    up = upstreams(handler, [A, B])
    results = [await up.synthesize("こんにちは", None) for _ in range(4)]
    assert results == [b"RIFF"] * 4
    # A refused once, then sat out its cooldown: four turns, five requests.
    assert asked.count(A) == 1 and asked.count(B) == 4
    await up.aclose()


async def test_busy_instance_passes_the_request_on() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if base(request) == A:
            body = {"error": {"message": "server busy", "type": "server_busy"}}
            return httpx.Response(503, json=body, headers={"Retry-After": "2"})
        return httpx.Response(200, json={"text": "はい"})

    up = upstreams(handler, [A, B])
    assert [await up.transcribe(b"\0\0", "ja") for _ in range(2)] == ["はい", "はい"]
    await up.aclose()


async def test_all_busy_or_down_reports_the_stage() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if base(request) == A:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(503, json={"error": {"message": "server busy"}})

    up = upstreams(handler, [A, B])
    with pytest.raises(UpstreamError) as err:
        await up.synthesize("x", None)
    assert err.value.stage == "tts" and err.value.message == "server busy"
    await up.aclose()


async def test_caller_mistakes_are_not_retried_elsewhere() -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(base(request))
        return httpx.Response(401, json={"error": {"message": "missing or invalid bearer token"}})

    up = upstreams(handler, [A, B])
    with pytest.raises(UpstreamError, match="bearer token"):
        await up.synthesize("x", None)
    assert len(asked) == 1
    await up.aclose()


def sse(*events: str) -> bytes:
    return "".join(f"data: {e}\n\n" for e in events).encode()


async def test_chat_stream_fails_over_before_the_first_token() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if base(request) == A:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, content=sse('{"delta":"こん"}', '{"delta":"にちは"}', "[DONE]"))

    up = upstreams(handler, [A, B])
    for _ in range(2):
        pieces = [p async for p in up.chat_stream([{"role": "user", "content": "hi"}], 16)]
        assert pieces == ["こん", "にちは"]
    await up.aclose()


class BreaksAfterFirstChunk(httpx.AsyncByteStream):
    async def __aiter__(self):  # type: ignore[no-untyped-def]
        yield sse('{"delta":"こん"}')
        raise httpx.ReadError("connection reset")


async def test_chat_stream_lost_mid_reply_is_an_error_not_a_repeat() -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(base(request))
        return httpx.Response(200, stream=BreaksAfterFirstChunk())

    up = upstreams(handler, [A, B])
    pieces: list[str] = []
    with pytest.raises(UpstreamError, match="lost"):
        async for piece in up.chat_stream([{"role": "user", "content": "hi"}], 16):
            pieces.append(piece)
    assert pieces == ["こん"] and len(asked) == 1
    await up.aclose()


async def test_a_finished_stream_leaves_its_connection_for_the_next_request() -> None:
    # Over real HTTP: a response not read to its end makes httpx close the connection,
    # and each turn then paid for a new one.
    ports: list[int] = []
    app = FastAPI()

    @app.post("/chat/stream")
    async def chat(request: Request) -> StreamingResponse:
        assert request.client is not None
        ports.append(request.client.port)
        events = ['{"delta": "はい。"}', '{"finish_reason": "stop"}', "[DONE]"]
        return StreamingResponse(iter([sse(e) for e in events]), media_type="text/event-stream")

    @app.post("/synthesize")
    async def synthesize(request: Request) -> Response:
        assert request.client is not None
        ports.append(request.client.port)
        return Response(b"RIFF", media_type="audio/wav")

    with serve(app) as url:
        up = Upstreams(GatewaySettings(asr_urls=[url], llm_urls=[url], tts_urls=[url]))
        for _ in range(3):
            assert [d async for d in up.chat_stream([{"role": "user", "content": "x"}], 8)] == [
                "はい。"
            ]
            assert await up.synthesize("はい。", None) == b"RIFF"
        await up.aclose()
    assert len(ports) == 6 and len(set(ports)) == 1  # one connection, kept alive


async def test_a_body_cut_short_fails_the_call_and_closes_its_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lean path reads each response itself: a body that stops midway is the stage's
    error, and its connection is closed then and there (not pooled, not left to the
    garbage collector)."""
    from gateway import transport

    closes = []
    close = transport._Connection.close

    def counted(conn: transport._Connection) -> None:
        closes.append(conn)
        close(conn)

    monkeypatch.setattr(transport._Connection, "close", counted)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nRIFF")
        await writer.drain()
        await reader.read()  # until the gateway closes its end
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    settings = GatewaySettings(asr_urls=[url], llm_urls=[url], tts_urls=[url], tts_timeout_s=0.5)
    up = Upstreams(settings)
    assert up.sender.lean is not None  # the default: straight into the lean transport
    try:
        with pytest.raises(UpstreamError, match="tts: timed out"):
            await up.synthesize("はい。", None)
        assert len(closes) == 1 and not up.sender.lean._idle.get(("127.0.0.1", port))
    finally:
        await up.aclose()
        server.close()


async def test_synthesis_pace_is_kept_per_voice_and_language() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        slow = "ja" in request.content.decode()  # the test's stand-in for a slow voice
        await asyncio.sleep(0.2 if slow else 0.0)
        return httpx.Response(200, content=b"RIFF")

    settings = GatewaySettings(asr_urls=[A], llm_urls=[A], tts_urls=[A])
    up = Upstreams(settings, httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    pace = up.synthesis_pace
    assert pace.seconds(None, "en") is None  # nothing measured yet
    await up.synthesize("Hello there.", None)
    await up.synthesize("ja: こんにちは。", None)
    await up.synthesize("ja: こんにちは。", "jf_alpha")
    fast, slow = pace.seconds(None, "en"), pace.seconds(None, "ja")
    assert fast is not None and slow is not None and fast < 0.1 <= 0.2 <= slow
    assert pace.seconds("jf_alpha", "ja") == pytest.approx(slow, rel=0.5)
    assert pace.seconds("jf_alpha", "en") is None
    # a moving average: one slow call moves it part of the way
    pace.record(None, "Hi.", fast + 1.0)
    assert fast + 0.1 < (pace.seconds(None, "en") or 0) < fast + 1.0
    await up.aclose()
