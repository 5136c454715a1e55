"""The three upstream services over httpx, with per-stage timeouts and failover.

Each stage may list several base URLs (several GPU hosts, say). Turns are
spread over them in rotation; a URL that cannot be reached is set aside for
``cooldown_s`` so later turns do not wait on it again, and a request that finds
an instance busy (503) or unreachable is retried on the next one. Failures
become :class:`UpstreamError` carrying the stage name, which the turn reports
to the client as an ``error`` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
import urllib.parse
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import httpx
from pydantic import SecretStr

from services.common.language import detect_language

from . import transport
from .settings import GatewaySettings

logger = logging.getLogger(__name__)


# Long enough that a dead host costs one connect timeout per stage, not one per turn;
# short enough that a restarted service is back in the rotation within a turn or two.
FAILED_URL_COOLDOWN_S = 10.0
BUSY = 503  # a service's inference queue is full (ServiceBusy)
# After an event stream's [DONE], how long to wait for the end of its body (normally there
# at once); reading it lets the connection be reused instead of closed.
STREAM_END_WAIT_S = 1.0
USER_AGENT = "koe-gateway"
JSON = "application/json"


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


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


async def _read_to_end(rest: AsyncIterator[str]) -> None:
    """Read what is left of a streamed body. httpx closes a connection whose response was
    not read to its end: without this every turn's LLM stream cost a new connection."""
    with contextlib.suppress(httpx.HTTPError, TimeoutError):
        async with asyncio.timeout(STREAM_END_WAIT_S):
            async for _ in rest:
                pass


class Stage:
    """One service kind (asr, llm, tts): its URLs, token and timeout, and which URLs failed."""

    def __init__(
        self,
        name: str,
        urls: list[str],
        token: SecretStr | None,
        timeout_s: float,
        cooldown_s: float = FAILED_URL_COOLDOWN_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not urls:
            raise ValueError(f"no URL configured for {name}")
        self.name = name
        self.urls = [u.rstrip("/") for u in urls]
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._turn = 0
        self._failed_until: dict[str, float] = {}
        self.headers = {"authorization": f"Bearer {token.get_secret_value()}"} if token else {}
        self.timeout = httpx.Timeout(timeout_s, connect=min(5.0, timeout_s))
        self._timeouts = {"timeout": self.timeout.as_dict()}

    def request(self, url: str, content: bytes, content_type: str) -> httpx.Request:
        """A POST to ``url`` with this stage's token and timeouts."""
        headers = {**self.headers, "content-type": content_type, "user-agent": USER_AGENT}
        return httpx.Request(
            "POST", _url(url), content=content, headers=headers, extensions=self._timeouts
        )

    def candidates(self) -> list[str]:
        """Every URL in the order to try them: the healthy ones in rotation, then those
        that failed recently (soonest back first), so a stage is never left with none."""
        now = self._clock()
        healthy = [u for u in self.urls if self._failed_until.get(u, 0.0) <= now]
        cooling = sorted(
            (u for u in self.urls if u not in healthy), key=self._failed_until.__getitem__
        )
        if not healthy:
            return cooling
        first = self._turn % len(healthy)
        self._turn += 1
        return healthy[first:] + healthy[:first] + cooling

    def failed(self, url: str) -> None:
        """``url`` could not be reached: skip it for the next ``cooldown_s`` seconds."""
        if url not in self._failed_until or self._failed_until[url] <= self._clock():
            logger.warning(
                "%s at %s unreachable; skipping it for %.0f s", self.name, url, self.cooldown_s
            )
        self._failed_until[url] = self._clock() + self.cooldown_s

    def succeeded(self, url: str) -> None:
        self._failed_until.pop(url, None)


@functools.lru_cache(maxsize=256)
def _url(url: str) -> httpx.URL:
    """Parsed once: the few URLs a gateway calls (parsing one costs tens of microseconds)."""
    return httpx.URL(url)


class SynthesisPace:
    """How long the TTS service has been taking per piece, for each voice and language.

    Without a voice the TTS service picks one by the text's language (Kokoro for
    Japanese, espeak-ng for English here), and the two differ by 50x, hence the
    language in the key. A moving average of successful calls, round trip included.
    """

    WEIGHT = 0.3  # of the newest call

    def __init__(self) -> None:
        self._seconds: dict[tuple[str, str], float] = {}

    def record(self, voice: str | None, text: str, seconds: float) -> None:
        key = (voice or "", detect_language(text))
        old = self._seconds.get(key)
        self._seconds[key] = seconds if old is None else old + self.WEIGHT * (seconds - old)

    def seconds(self, voice: str | None, language: str) -> float | None:
        """The average, or None before the first call of this voice and language."""
        return self._seconds.get((voice or "", language))


class Upstreams:
    def __init__(self, settings: GatewaySettings, client: httpx.AsyncClient | None = None) -> None:
        """``client``: send through it (tests); default: :meth:`Sender.for_services`."""
        self.settings = settings
        # Keep every connection a burst opened (until KEEPALIVE_S idle): a pool capped below
        # the connections in use closes them on release and opens new ones on the next turn.
        self.sender = (
            transport.Sender(client)
            if client is not None
            else transport.Sender.for_services(
                settings.lean_http,
                limits=httpx.Limits(
                    max_connections=200,
                    max_keepalive_connections=200,
                    keepalive_expiry=transport.KEEPALIVE_S,
                ),
            )
        )
        self.asr = Stage("asr", settings.asr_urls, settings.asr_token, settings.asr_timeout_s)
        self.llm = Stage("llm", settings.llm_urls, settings.llm_token, settings.llm_timeout_s)
        self.tts = Stage("tts", settings.tts_urls, settings.tts_token, settings.tts_timeout_s)
        self.synthesis_pace = SynthesisPace()

    async def aclose(self) -> None:
        await self.sender.aclose()

    async def _post(
        self, stage: Stage, path: str, content: bytes, content_type: str
    ) -> httpx.Response:
        """``path`` posted to the stage's first instance that takes it; the response read."""
        last = "unreachable"
        for base in stage.candidates():
            try:
                r = await self.sender.send(stage.request(base + path, content, content_type))
                async with contextlib.aclosing(r):  # closed if reading it fails midway
                    await r.aread()
            except httpx.ConnectTimeout:
                # a host that drops packets (a stopped cloud VM): the next URL may answer
                stage.failed(base)
                last = f"cannot reach {base}: ConnectTimeout"
                continue
            except httpx.TimeoutException:
                raise UpstreamError(stage.name, f"timed out after {stage.timeout.read} s") from None
            except httpx.TransportError as exc:
                stage.failed(base)
                last = f"cannot reach {base}: {exc.__class__.__name__}"
                continue
            stage.succeeded(base)
            if r.status_code == BUSY:
                last = _error_text(r)  # its queue is full; another instance may be free
                continue
            if r.status_code >= 400:
                raise UpstreamError(stage.name, _error_text(r))
            return r
        raise UpstreamError(stage.name, last)

    async def transcribe(self, pcm: bytes, language: str) -> str:
        query = urllib.parse.urlencode({"language": language, "sample_rate": "16000"})
        r = await self._post(self.asr, "/transcribe?" + query, pcm, "audio/pcm")
        return str(r.json()["text"])

    async def synthesize(self, text: str, voice: str | None) -> bytes:
        body: dict[str, Any] = {"text": text, "format": "wav"}
        if voice:
            body["voice"] = voice
        start = time.perf_counter()
        r = await self._post(self.tts, "/synthesize", _json(body), JSON)
        self.synthesis_pace.record(voice, text, time.perf_counter() - start)
        return r.content

    async def chat_stream(
        self, messages: list[dict[str, str]], max_tokens: int
    ) -> AsyncGenerator[str, None]:
        """Yield the reply's text pieces. Closing the iterator closes the HTTP stream,
        which stops generation upstream (barge-in depends on it)."""
        stage = self.llm
        body = _json({"messages": messages, "max_tokens": max_tokens})
        last = "unreachable"
        started = False  # once text went out, another instance would repeat it: no failover
        for base in stage.candidates():
            try:
                r = await self.sender.send(stage.request(base + "/chat/stream", body, JSON))
                async with contextlib.aclosing(r):
                    stage.succeeded(base)
                    if r.status_code == BUSY:
                        await r.aread()
                        last = _error_text(r)
                        continue
                    if r.status_code >= 400:
                        await r.aread()
                        raise UpstreamError(stage.name, _error_text(r))
                    lines = r.aiter_lines()
                    async for line in lines:
                        if not line.startswith("data:"):
                            continue
                        data = line[5:].strip()
                        if data == "[DONE]":
                            await _read_to_end(lines)
                            return
                        event = json.loads(data)
                        if "error" in event:
                            raise UpstreamError(stage.name, str(event["error"].get("message")))
                        if event.get("delta"):
                            started = True
                            yield str(event["delta"])
                    return
            except httpx.ConnectTimeout:
                stage.failed(base)
                last = f"cannot reach {base}: ConnectTimeout"
            except httpx.TimeoutException:
                raise UpstreamError(stage.name, "timed out waiting for tokens") from None
            except httpx.TransportError as exc:
                if started:
                    raise UpstreamError(stage.name, f"connection to {base} lost") from None
                stage.failed(base)
                last = f"cannot reach {base}: {exc.__class__.__name__}"
        raise UpstreamError(stage.name, last)

    async def health(self) -> dict[str, Any]:
        """Each upstream URL's /health, for the gateway's own /health."""
        out: dict[str, Any] = {}
        for stage in (self.asr, self.llm, self.tts):
            entries = []
            for base in stage.urls:
                try:
                    r = await self.sender.client.get(
                        base + "/health", headers=stage.headers, timeout=3
                    )
                    entries.append({"url": base, "ok": r.status_code == 200})
                except httpx.HTTPError as exc:
                    entries.append({"url": base, "ok": False, "error": exc.__class__.__name__})
            out[stage.name] = {"ok": any(e["ok"] for e in entries), "instances": entries}
        return out
