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


def main() -> None:
    """``python -m bench.fakes``: serve the fakes on ``FAKES_PORT`` (loopback) until killed,
    for measuring the gateway in its own process; ``FAKES_AUDIO_S`` sets the WAV length."""
    import os

    import uvicorn

    behaviour = FakeBehaviour(audio_s=float(os.environ.get("FAKES_AUDIO_S", "0.05")))
    port = int(os.environ.get("FAKES_PORT", "8011"))
    uvicorn.run(create_fake_services(behaviour), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
