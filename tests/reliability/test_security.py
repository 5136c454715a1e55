"""Security checks: constant-time token comparison, tokens kept out of logs, CORS allowlist."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import SecretStr
from websockets.exceptions import InvalidStatus

from bench.stack import ServiceProcess
from bench.wsclient import WSClient
from gateway.access import token_ok
from gateway.app import create_app as create_gateway
from gateway.settings import GatewaySettings
from services.common.auth import make_token_checker
from tests.reliability.harness import GatewayProcess


@pytest.fixture
def compare_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, bytes]]:
    """Every hmac.compare_digest call (the comparison itself still runs)."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    return calls


TOKEN = "s3cret-Token-42"
WRONG = ["", "s3cret", TOKEN[:-1], TOKEN + "x", TOKEN.upper(), " " + TOKEN + "x", "\x7f" + TOKEN]


def service_app() -> FastAPI:
    from fastapi import Depends

    app = FastAPI(dependencies=[Depends(make_token_checker(SecretStr(TOKEN)))])

    @app.get("/thing")
    async def thing(request: Request) -> dict[str, bool]:
        return {"ok": True}

    return app


def test_service_token_is_compared_in_constant_time(
    compare_calls: list[tuple[bytes, bytes]],
) -> None:
    from services.common.errors import install_error_handlers

    app = service_app()
    install_error_handlers(app)
    client = TestClient(app)
    assert client.get("/thing", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get("/thing", headers={"authorization": f"bearer {TOKEN}"}).status_code == 200
    for wrong in WRONG:
        r = client.get("/thing", headers={"authorization": f"Bearer {wrong}"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key", wrong
        assert TOKEN not in r.text
    for header in ({}, {"authorization": TOKEN}, {"authorization": f"Basic {TOKEN}"}):
        assert client.get("/thing", headers=header).status_code == 401
    # every bearer value went through compare_digest, never ==
    assert len(compare_calls) == 2 + len(WRONG)
    assert all(expected == TOKEN.encode() for _, expected in compare_calls)


def test_gateway_token_is_compared_in_constant_time(
    compare_calls: list[tuple[bytes, bytes]],
) -> None:
    settings = GatewaySettings(api_token=SecretStr(TOKEN))
    assert token_ok(settings, TOKEN)
    assert not any(token_ok(settings, w) for w in WRONG)
    assert not token_ok(settings, "ß" + TOKEN)  # ?token= may carry any Unicode
    assert not token_ok(settings, None)
    assert len(compare_calls) == 2 + len(WRONG)
    assert token_ok(GatewaySettings(), None)  # no token configured: open (loopback only)


def read_log(proc: ServiceProcess) -> str:
    return proc.log.read_text(errors="replace")


def requests_with_tokens(base: str, good: str, paths: list[str]) -> list[int]:
    codes = []
    for token in (good, "wrong-" + secrets.token_hex(8), good[:-1]):
        for path in paths:
            headers = {"authorization": f"Bearer {token}"}
            codes.append(httpx.get(base + path, headers=headers, timeout=10).status_code)
            codes.append(httpx.get(f"{base}{path}?token={token}", timeout=10).status_code)
    return codes


def test_tokens_never_logged_by_a_service() -> None:
    token = "svc-" + secrets.token_hex(12)
    proc = ServiceProcess(
        "tests.reliability.service_proc", "LLM_", {"LLM_API_TOKEN": token, "LLM_LOG_LEVEL": "debug"}
    )
    proc.start(60)
    try:
        codes = requests_with_tokens(proc.url, token, ["/v1/models", "/health"])
        r = httpx.post(
            proc.url + "/chat",
            json={"messages": [{"role": "user", "content": "やあ"}]},
            headers={"authorization": f"Bearer {token}"},
        )
        assert r.status_code == 200
    finally:
        proc.stop()
    assert 200 in codes and 401 in codes
    log = read_log(proc)
    assert '"GET /v1/models' in log  # requests were logged ...
    assert token not in log and token[:-1] not in log  # ... without the token


def test_tokens_never_logged_by_the_gateway() -> None:
    token = "gw-" + secrets.token_hex(12)
    gw = GatewayProcess(api_token=token, log_level="debug")
    gw.start(60)
    try:
        codes = requests_with_tokens(gw.url, token, ["/metrics"])
        WSClient(gw.ws_url + f"?token={token}").close()  # the browser client's way
        with pytest.raises(InvalidStatus):
            WSClient(gw.ws_url + f"?token={token}x")
    finally:
        gw.stop()
    assert 200 in codes and 401 in codes
    log = read_log(gw)
    assert "WebSocket /ws?token=***" in log  # the connection was logged, its token blanked
    assert token not in log


@pytest.mark.parametrize(
    ("send", "preflight"),
    [
        (lambda c, o: c.get("/metrics", headers={"origin": o}), False),
        (
            lambda c, o: c.options(
                "/metrics", headers={"origin": o, "access-control-request-method": "GET"}
            ),
            True,
        ),
    ],
    ids=["simple", "preflight"],
)
def test_cors_allowlist(send: Callable[[TestClient, str], httpx.Response], preflight: bool) -> None:
    settings = GatewaySettings(cors_origins=["http://localhost:3000"])
    with TestClient(create_gateway(settings)) as client:
        ok = send(client, "http://localhost:3000")
        assert ok.headers.get("access-control-allow-origin") == "http://localhost:3000"
        for origin in ("http://evil.example", "http://localhost:3001", "null"):
            other = send(client, origin)
            assert "access-control-allow-origin" not in other.headers, origin
            if preflight:  # a preflight from elsewhere is refused outright
                assert other.status_code == 400
