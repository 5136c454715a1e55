"""The three upstream services over httpx, with per-stage timeouts and failover.

Each stage may list several base URLs; a turn takes the next URL in turn and,
if it cannot connect, tries the others before giving up. Failures become
:class:`UpstreamError` carrying the stage name, which the turn reports to the
client as an ``error`` event.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import AsyncGenerator
from typing import Any

import httpx
from pydantic import SecretStr

from .settings import GatewaySettings

logger = logging.getLogger(__name__)


class UpstreamError(Exception):
    def __init__(self, stage: str, message: str) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage = stage
        self.message = message


def _error_text(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"


class Stage:
    """One service kind (asr, llm, tts): its URLs, token and timeout."""

    def __init__(
        self, name: str, urls: list[str], token: SecretStr | None, timeout_s: float
    ) -> None:
        if not urls:
            raise ValueError(f"no URL configured for {name}")
        self.name = name
        self.urls = [u.rstrip("/") for u in urls]
        self._next = itertools.cycle(range(len(self.urls)))
        self.headers = {"authorization": f"Bearer {token.get_secret_value()}"} if token else {}
        self.timeout = httpx.Timeout(timeout_s, connect=min(5.0, timeout_s))

    def candidates(self) -> list[str]:
        """All URLs, starting with the next one in the rotation."""
        first = next(self._next)
        return self.urls[first:] + self.urls[:first]


class Upstreams:
    def __init__(self, settings: GatewaySettings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.client = client or httpx.AsyncClient(
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50)
        )
        self.asr = Stage("asr", settings.asr_urls, settings.asr_token, settings.asr_timeout_s)
        self.llm = Stage("llm", settings.llm_urls, settings.llm_token, settings.llm_timeout_s)
        self.tts = Stage("tts", settings.tts_urls, settings.tts_token, settings.tts_timeout_s)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def _post(
        self, stage: Stage, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        last = "unreachable"
        for base in stage.candidates():
            try:
                r = await self.client.post(
                    base + path,
                    headers={**stage.headers, **(headers or {})},
                    timeout=stage.timeout,
                    **kwargs,
                )
            except httpx.TimeoutException:
                raise UpstreamError(stage.name, f"timed out after {stage.timeout.read} s") from None
            except httpx.TransportError as exc:
                last = f"cannot reach {base}: {exc.__class__.__name__}"
                continue
            if r.status_code >= 400:
                raise UpstreamError(stage.name, _error_text(r))
            return r
        raise UpstreamError(stage.name, last)

    async def transcribe(self, pcm: bytes, language: str) -> str:
        r = await self._post(
            self.asr,
            "/transcribe",
            content=pcm,
            params={"language": language, "sample_rate": "16000"},
            headers={"content-type": "audio/pcm"},
        )
        return str(r.json()["text"])

    async def synthesize(self, text: str, voice: str | None) -> bytes:
        body: dict[str, Any] = {"text": text, "format": "wav"}
        if voice:
            body["voice"] = voice
        r = await self._post(self.tts, "/synthesize", json=body)
        return r.content

    async def chat_stream(
        self, messages: list[dict[str, str]], max_tokens: int
    ) -> AsyncGenerator[str, None]:
        """Yield the reply's text pieces. Closing the iterator closes the HTTP stream,
        which stops generation upstream (barge-in depends on it)."""
        stage = self.llm
        body = {"messages": messages, "max_tokens": max_tokens}
        last = "unreachable"
        for base in stage.candidates():
            try:
                async with self.client.stream(
                    "POST",
                    base + "/chat/stream",
                    json=body,
                    headers=stage.headers,
                    timeout=stage.timeout,
                ) as r:
                    if r.status_code >= 400:
                        await r.aread()
                        raise UpstreamError(stage.name, _error_text(r))
                    async for line in r.aiter_lines():
                        if not line.startswith("data:"):
                            continue
                        data = line[5:].strip()
                        if data == "[DONE]":
                            return
                        event = json.loads(data)
                        if "error" in event:
                            raise UpstreamError(stage.name, str(event["error"].get("message")))
                        if event.get("delta"):
                            yield str(event["delta"])
                    return
            except httpx.TimeoutException:
                raise UpstreamError(stage.name, "timed out waiting for tokens") from None
            except httpx.TransportError as exc:
                last = f"cannot reach {base}: {exc.__class__.__name__}"
                continue
        raise UpstreamError(stage.name, last)

    async def health(self) -> dict[str, Any]:
        """Each upstream URL's /health, for the gateway's own /health."""
        out: dict[str, Any] = {}
        for stage in (self.asr, self.llm, self.tts):
            entries = []
            for base in stage.urls:
                try:
                    r = await self.client.get(base + "/health", headers=stage.headers, timeout=3)
                    entries.append({"url": base, "ok": r.status_code == 200})
                except httpx.HTTPError as exc:
                    entries.append({"url": base, "ok": False, "error": exc.__class__.__name__})
            out[stage.name] = {"ok": any(e["ok"] for e in entries), "instances": entries}
        return out
