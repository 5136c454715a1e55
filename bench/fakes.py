"""Instant stand-ins for the three services, over real HTTP: for gateway tests and for
measuring what the gateway itself adds. They answer from what they are told, never
pretend to recognise or say anything: the transcript is whatever the test set."""

from __future__ import annotations

import asyncio
import io
import json
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import cast

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse


def tone_wav(seconds: float, rate: int = 24000) -> bytes:
    import numpy as np

    t = np.arange(int(seconds * rate)) / rate
    pcm = (0.2 * np.sin(2 * np.pi * 220 * t) * 32767).astype("<i2").tobytes()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buf.getvalue()


@dataclass
class FakeBehaviour:
    transcript: str = "テストです。"
    reply_pieces: list[str] = field(default_factory=lambda: ["こんにちは。", "元気です。"])
    token_delay_s: float = 0.0
    audio_s: float = 0.2
    tts_delay_s: float = 0.0
    asr_delay_s: float = 0.0
    fail: set[str] = field(default_factory=set)  # stages answering 500
    # what was seen, for assertions
    asr_calls: int = 0
    asr_bytes: list[int] = field(default_factory=list)  # each request's body size
    chat_bodies: list[dict] = field(default_factory=list)
    tts_texts: list[str] = field(default_factory=list)
    pieces_sent: int = 0
    stream_closed_early: int = 0


def create_fake_services(b: FakeBehaviour) -> FastAPI:
    app = FastAPI()
    wav_cache: dict[float, bytes] = {}

    def failing(stage: str) -> JSONResponse | None:
        if stage in b.fail:
            body = {
                "error": {
                    "message": f"{stage} broke",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            }
            return JSONResponse(body, status_code=500)
        return None

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.post("/transcribe", response_model=None)
    async def transcribe(request: Request) -> Response | dict:
        b.asr_bytes.append(len(await request.body()))
        b.asr_calls += 1
        if b.asr_delay_s:
            await asyncio.sleep(b.asr_delay_s)
        return failing("asr") or {"text": b.transcript, "language": "ja"}

    @app.post("/chat/stream", response_model=None)
    async def chat_stream(request: Request) -> Response:
        b.chat_bodies.append(await request.json())
        if (err := failing("llm")) is not None:
            return err

        async def gen() -> AsyncIterator[str]:
            sent = 0
            try:
                for piece in b.reply_pieces:
                    if b.token_delay_s:
                        await asyncio.sleep(b.token_delay_s)
                    yield "data: " + json.dumps({"delta": piece}) + "\n\n"
                    sent += 1
                    b.pieces_sent += 1
                yield "data: " + json.dumps({"finish_reason": "stop"}) + "\n\n"
                yield "data: [DONE]\n\n"
            finally:
                if sent < len(b.reply_pieces):
                    b.stream_closed_early += 1

        return StreamingResponse(gen(), media_type="text/event-stream")

    @app.post("/synthesize", response_model=None)
    async def synthesize(request: Request) -> Response:
        body = await request.json()
        b.tts_texts.append(body["text"])
        if b.tts_delay_s:
            await asyncio.sleep(b.tts_delay_s)
        if (err := failing("tts")) is not None:
            return err
        if b.audio_s not in wav_cache:
            wav_cache[b.audio_s] = tone_wav(b.audio_s)
        return Response(wav_cache[b.audio_s], media_type="audio/wav")

    return app


class InstantFakes(asyncio.Protocol):
    """The same three answers as :func:`create_fake_services` with its defaults, from a
    bare HTTP/1.1 server: each response is prepared bytes, written as soon as the request
    is in (keep-alive, content-length bodies). A FastAPI fake spends about half a
    millisecond of its own per request; measuring the gateway, that time is the fake's,
    not the gateway's, so ``python -m bench.fakes`` serves these."""

    def __init__(self, answers: dict[tuple[str, str], bytes]) -> None:
        self.answers = answers
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            method, target, *_ = self.buffer[:end].split(b" ", 2)
            length = 0
            for line in self.buffer[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"transfer-encoding":
                    self._reply(_response(411, "application/json", b'{"error":"no chunked"}'))
                    self.transport.close()
                    return
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return  # the body is still on its way
            self.buffer = self.buffer[end + 4 + length :]
            path = target.split(b"?", 1)[0].decode("latin-1")
            self._reply(self.answers.get((method.decode("latin-1"), path), NOT_FOUND))

    def _reply(self, response: bytes) -> None:
        assert self.transport is not None
        self.transport.write(response)


def _response(status: int, media_type: str, body: bytes, chunked: bool = False) -> bytes:
    reason = {200: "OK", 404: "Not Found", 411: "Length Required"}[status]
    framing = "transfer-encoding: chunked" if chunked else f"content-length: {len(body)}"
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: {media_type}\r\n{framing}\r\n\r\n".encode()
        + body
    )


NOT_FOUND = _response(404, "application/json", b'{"error":{"message":"not found"}}')


def instant_answers(b: FakeBehaviour) -> dict[tuple[str, str], bytes]:
    """:class:`InstantFakes`' responses: ``b``'s transcript, reply pieces (one SSE chunk
    each, then finish and [DONE], as the LLM service streams) and a tone WAV."""

    def as_json(value: object) -> bytes:
        return json.dumps(value, ensure_ascii=False).encode()

    events = [{"delta": piece} for piece in b.reply_pieces] + [{"finish_reason": "stop"}]
    lines = [f"data: {json.dumps(e)}\n\n".encode() for e in events] + [b"data: [DONE]\n\n"]
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(line), line) for line in lines) + b"0\r\n\r\n"
    return {
        ("GET", "/health"): _response(200, "application/json", as_json({"status": "ok"})),
        ("POST", "/transcribe"): _response(
            200, "application/json", as_json({"text": b.transcript, "language": "ja"})
        ),
        ("POST", "/chat/stream"): _response(200, "text/event-stream", chunks, chunked=True),
        ("POST", "/synthesize"): _response(200, "audio/wav", tone_wav(b.audio_s)),
    }


async def serve_instant(port: int, b: FakeBehaviour) -> None:
    """Serve :class:`InstantFakes` on loopback ``port`` until cancelled."""
    answers = instant_answers(b)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: InstantFakes(answers), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    """``python -m bench.fakes``: serve :class:`InstantFakes` on ``FAKES_PORT`` (loopback)
    until killed, for measuring the gateway in its own process; ``FAKES_AUDIO_S`` sets the
    WAV length."""
    import os

    import uvloop

    behaviour = FakeBehaviour(audio_s=float(os.environ.get("FAKES_AUDIO_S", "0.05")))
    port = int(os.environ.get("FAKES_PORT", "8011"))
    uvloop.run(serve_instant(port, behaviour))


if __name__ == "__main__":
    main()
