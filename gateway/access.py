"""Who may open a WebSocket on the gateway: origin, token and session limits.

Shared by ``/ws`` and ``/v1/realtime`` (and the token part by the HTTP routes).
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket

from .settings import GatewaySettings

if TYPE_CHECKING:
    from .hub import Hub

# WebSocket close codes (RFC 6455 / IANA registry)
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013


def bearer(headers: Any) -> str | None:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def token_ok(settings: GatewaySettings, given: str | None) -> bool:
    """Constant-time comparison: the time taken must not reveal how much matched."""
    if settings.api_token is None:
        return True
    expected = settings.api_token.get_secret_value().encode()
    return given is not None and hmac.compare_digest(given.encode(), expected)


def origin_allowed(settings: GatewaySettings, websocket: WebSocket) -> bool:
    """Browsers always send Origin: only the allowed web apps, and the page this gateway
    serves itself (same origin), may connect from one. Other clients send none."""
    origin = websocket.headers.get("origin")
    if not origin or "*" in settings.cors_origins or origin in settings.cors_origins:
        return True
    return origin.partition("://")[2] == websocket.headers.get("host")


def refusal(
    settings: GatewaySettings, websocket: WebSocket, other_token: str | None = None
) -> str | None:
    """Why this connection may not open, or None. ``other_token``: a token the protocol
    carries elsewhere (the Realtime API's subprotocol)."""
    if not origin_allowed(settings, websocket):
        return "origin not allowed"
    token = websocket.query_params.get("token") or bearer(websocket.headers) or other_token
    if not token_ok(settings, token):
        return "missing or invalid token"
    return None


def _client(websocket: WebSocket) -> str:
    return websocket.client.host if websocket.client else "?"


def over_limit(hub: Hub, websocket: WebSocket) -> bool:
    s = hub.settings
    total = sum(hub.clients.values())
    return total >= s.max_sessions or hub.clients[_client(websocket)] >= s.max_sessions_per_client


@asynccontextmanager
async def session_slot(hub: Hub, websocket: WebSocket) -> AsyncIterator[None]:
    """Count the connection against the limits while it lives."""
    client = _client(websocket)
    hub.clients[client] += 1
    hub.metrics.sessions.inc()
    try:
        yield
    finally:
        hub.clients[client] -= 1
        if hub.clients[client] <= 0:
            del hub.clients[client]
        hub.metrics.sessions.dec()
