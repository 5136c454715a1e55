"""The gateway: ``/ws`` (LocalChatVRM's protocol), ``/health``, ``/metrics`` and the browser
client at ``/`` (``gateway/static``)."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request, WebSocket
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.common.errors import APIError, Unauthorized, install_error_handlers

from . import events
from .access import (
    POLICY_VIOLATION,
    TRY_AGAIN_LATER,
    bearer,
    over_limit,
    refusal,
    session_slot,
    token_ok,
)
from .clients import Upstreams
from .hub import Hub
from .realtime import register_realtime
from .session import Connection
from .settings import GatewaySettings

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
# The browser client's files load without a token (a page cannot send a bearer header
# for its own navigation); it then presents the token on /ws and /voices itself.
PUBLIC_PATHS = frozenset(
    {"/health", "/"} | {f"/{p.name}" for p in STATIC_DIR.iterdir() if p.is_file()}
)


class TTSUnavailable(APIError):
    status_code = 502
    type = "server_error"


def settle_heap() -> None:
    """Hide what startup allocated (modules, the VAD model: about 75,000 objects) from the
    garbage collector. A full collection walks every tracked object: it held the event loop
    for about 16 ms, every few seconds under load, and every turn then in flight waited.
    Objects made later (sessions, turns) are collected as usual."""
    gc.collect()
    gc.freeze()


def create_app(
    settings: GatewaySettings | None = None, upstreams: Upstreams | None = None
) -> FastAPI:
    settings = settings or GatewaySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hub = Hub(settings, upstreams)
        hub.vad_batcher.start()
        app.state.hub = hub
        settle_heap()
        yield
        for turn in list(hub.turns):
            await turn.cancel()
        await hub.vad_batcher.aclose()
        await hub.upstreams.aclose()

    app = FastAPI(
        title="koe gateway",
        description="WebSocket gateway: VAD turns over ASR, LLM and TTS. See /ws.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST"],
        allow_headers=["authorization", "content-type"],
    )

    @app.middleware("http")
    async def require_token(request: Request, call_next: Any) -> Response:
        if request.url.path not in PUBLIC_PATHS and not token_ok(settings, bearer(request.headers)):
            exc = Unauthorized()
            return JSONResponse(
                {
                    "error": {
                        "message": exc.message,
                        "type": exc.type,
                        "param": None,
                        "code": exc.code,
                    }
                },
                status_code=401,
                headers=exc.headers,
            )
        response: Response = await call_next(request)
        return response

    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        hub: Hub = request.app.state.hub
        upstream = await hub.upstreams.health()
        ok = all(s["ok"] for s in upstream.values())
        return {
            "status": "ok" if ok else "degraded",
            "gateway": {
                "ok": True,
                "sessions": sum(hub.clients.values()),
                "live_turns": len(hub.turns),
                "tasks": len(asyncio.all_tasks()),  # a leak shows here first
            },
            **upstream,
        }

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        hub: Hub = request.app.state.hub
        return Response(generate_latest(hub.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/voices")
    async def voices(request: Request) -> Response:
        """The TTS service's voice list, for the browser client's settings."""
        tts = request.app.state.hub.upstreams.tts
        client: httpx.AsyncClient = request.app.state.hub.upstreams.sender.client
        for base in tts.candidates():
            try:
                r = await client.get(base + "/voices", headers=tts.headers, timeout=5)
            except httpx.HTTPError:
                continue
            if r.status_code == 200:
                return Response(r.content, media_type="application/json")
        raise TTSUnavailable("no TTS service answered", code="tts_unavailable")

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        hub: Hub = websocket.app.state.hub
        reason = refusal(settings, websocket)
        if reason:
            await websocket.close(code=POLICY_VIOLATION, reason=reason)
            return
        if over_limit(hub, websocket):
            await websocket.accept()
            await websocket.send_text(events.dumps(events.error("gateway", "too many sessions")))
            await websocket.close(code=TRY_AGAIN_LATER)
            return
        await websocket.accept()
        async with session_slot(hub, websocket):
            await Connection(websocket, hub).run()

    register_realtime(app, settings)  # /v1/realtime, the OpenAI Realtime API subset

    # Last, so /ws, /health, /metrics and /voices take precedence over file names.
    app.mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="static")
    return app
