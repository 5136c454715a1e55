"""The ``openai`` backend against a small OpenAI-compatible server started on loopback."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.testclient import TestClient

from services.llm.app import create_app
from services.llm.settings import DEFAULT_SYSTEM_PROMPT, LLMSettings
from tests.servers import free_port, serve

USER = [{"role": "user", "content": "日本の首都は？"}]


class Upstream:
    """Records what it was sent and how far its streams got before the caller left."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.sent = 0
        self.closed = False

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def completions(request: Request) -> Any:
            body = await request.json()
            self.requests.append((request.headers.get("authorization", ""), body))
            last = body["messages"][-1]["content"]
            if last == "reject":
                error = {"message": "bad things", "type": "invalid_request_error"}
                return JSONResponse({"error": error}, status_code=400)
            if last == "crash":
                return JSONResponse({"error": {"message": "oom"}}, status_code=500)
            pieces = ["あ"] * 500 if last == "long" else ["**東京**", "です", "。"]
            return StreamingResponse(self.events(pieces), media_type="text/event-stream")

        return app

    async def events(self, pieces: list[str]) -> AsyncIterator[str]:
        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return "data: " + json.dumps({"id": "u1", "choices": [choice], **extra}) + "\n\n"

        try:
            yield ": keep-alive comment\n\n"
            yield chunk({"role": "assistant", "content": ""})
            for piece in pieces:
                await asyncio.sleep(0.01 if len(pieces) > 10 else 0)
                self.sent += 1
                yield chunk({"content": piece})
            yield chunk({}, "stop")
            usage = {"prompt_tokens": 21, "completion_tokens": len(pieces), "total_tokens": 0}
            yield "data: " + json.dumps({"id": "u1", "choices": [], "usage": usage}) + "\n\n"
            yield "data: [DONE]\n\n"
        finally:
            self.closed = True


@pytest.fixture
def upstream() -> Iterator[tuple[Upstream, str]]:
    up = Upstream()
    with serve(up.app()) as url:
        yield up, url


def forwarding_settings(url: str, **extra: Any) -> LLMSettings:
    return LLMSettings(
        backend="openai",
        openai_base_url=f"{url}/v1",
        openai_api_key="upstream-key",
        model="remote-model",
        **extra,
    )


def test_forwards_and_cleans_the_reply(upstream: tuple[Upstream, str]) -> None:
    up, url = upstream
    with TestClient(create_app(forwarding_settings(url))) as client:
        assert client.get("/health").json()["backend"] == "openai"
        assert client.get("/v1/models").json()["data"][0]["id"] == "remote-model"
        body = client.post("/chat", json={"messages": USER, "max_tokens": 20, "stop": "X"}).json()
    assert body["message"] == "東京です。"  # markdown from upstream stripped here too
    assert body["usage"] == {"prompt_tokens": 21, "completion_tokens": 3, "total_tokens": 24}
    auth, sent = up.requests[0]
    assert auth == "Bearer upstream-key"
    assert sent["model"] == "remote-model"
    assert sent["stream"] is True and sent["max_tokens"] == 20 and sent["stop"] == ["X"]
    assert sent["messages"][0] == {"role": "system", "content": DEFAULT_SYSTEM_PROMPT}
    assert sent["messages"][-1] == USER[0]


def test_streams_through(upstream: tuple[Upstream, str]) -> None:
    _, url = upstream
    with TestClient(create_app(forwarding_settings(url))) as client:
        text = client.post("/chat/stream", json={"messages": USER}).text
    events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]
    assert "".join(e.get("delta", "") for e in events) == "東京です。"
    assert events[-1]["finish_reason"] == "stop"


@pytest.mark.parametrize(("content", "status"), [("reject", 400), ("crash", 502)])
def test_upstream_errors_keep_the_one_shape(
    upstream: tuple[Upstream, str], content: str, status: int
) -> None:
    _, url = upstream
    with TestClient(create_app(forwarding_settings(url))) as client:
        resp = client.post("/chat", json=[{"role": "user", "content": content}])
    assert resp.status_code == status
    assert set(resp.json()["error"]) == {"message", "type", "param", "code"}


def test_unreachable_upstream_is_a_502() -> None:
    settings = forwarding_settings(f"http://127.0.0.1:{free_port()}")
    with TestClient(create_app(settings)) as client:
        resp = client.post("/chat", json=USER)
    assert resp.status_code == 502
    assert resp.json()["error"]["type"] == "upstream_error"


def test_client_disconnect_closes_the_upstream_stream(upstream: tuple[Upstream, str]) -> None:
    up, url = upstream
    with serve(create_app(forwarding_settings(url))) as ours:
        body = {"messages": [{"role": "user", "content": "long"}], "max_tokens": 1000}
        with httpx.stream("POST", f"{ours}/chat/stream", json=body) as resp:
            assert any(line.startswith("data: {") for line in resp.iter_lines())
        deadline = time.monotonic() + 5
        while not up.closed:
            assert time.monotonic() < deadline, "upstream kept streaming for a gone client"
            time.sleep(0.01)
    assert up.sent < 100  # of 500
