"""A lean HTTP/1.1 transport under httpx for the gateway's calls to its services.

httpx's default transport (httpcore over h11 and anyio) spends about 1 ms of
Python per loopback request when warm and over 2 ms after an idle gap, three
times what the bytes on the socket take (``make bench`` prints both as the
request floor). A turn waits on two such calls before its first audio (the
LLM stream, then TTS), so that cost was most of the gateway's added latency.

This transport keeps httpx's client API (timeouts, errors, streaming, the
tests' ``MockTransport``) and replaces only the wire part: asyncio streams, a
keep-alive pool per host, request bytes written in one go, and the response
read as a content-length or chunked body. It speaks plain ``http://`` and
hands ``https://`` requests to httpx's own transport; proxies set in the
environment (``HTTP_PROXY``) still apply, through httpx's proxy transports.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import httpx

# An idle connection the server has had this long may be closed by it any moment (the
# services keep connections 75 s, uvicorn's default is 5 s): closing ours first avoids
# writing a request into a socket the server is closing.
KEEPALIVE_S = 60.0
MAX_IDLE_PER_HOST = 200  # a burst of turns opens this many; keep them for the next burst
HEAD_LIMIT = 64 * 1024  # the longest response head accepted

T = TypeVar("T")


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def usable(self, now: float, keepalive_s: float) -> bool:
        """Still open at our end and at the server's (a server's close shows as EOF)."""
        return (
            now - self.idle_since < keepalive_s
            and not self.reader.at_eof()
            and not self.writer.is_closing()
        )

    def close(self) -> None:
        self.writer.close()


def _timeout(request: httpx.Request, kind: str) -> float | None:
    value = request.extensions.get("timeout", {}).get(kind)
    return None if value is None else float(value)


async def _bounded(awaitable: Awaitable[T], seconds: float | None) -> T:
    async with asyncio.timeout(seconds):
        return await awaitable


def _request_bytes(request: httpx.Request, body: bytes) -> bytes:
    lines = [request.method.encode("ascii") + b" " + request.url.raw_path + b" HTTP/1.1"]
    for name, value in request.headers.raw:
        if name.lower() in (b"transfer-encoding", b"content-length"):
            continue  # the body was read whole: its length is known
        lines.append(name + b": " + value)
    if body or request.method not in ("GET", "HEAD"):
        lines.append(b"Content-Length: " + str(len(body)).encode("ascii"))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _parse_head(
    head: bytes, request: httpx.Request
) -> tuple[int, bytes, list[tuple[bytes, bytes]], bool]:
    """Status, reason, headers, and whether the server keeps the connection open."""
    status_line, _, rest = head.partition(b"\r\n")
    try:
        version, code, *reason = status_line.split(b" ", 2)
        status = int(code)
    except ValueError:
        raise httpx.RemoteProtocolError(
            f"bad status line {status_line[:80]!r}", request=request
        ) from None
    if not version.startswith(b"HTTP/1."):
        raise httpx.RemoteProtocolError(f"not HTTP/1.x: {version[:20]!r}", request=request)
    headers = []
    keep = version == b"HTTP/1.1"
    for line in rest.split(b"\r\n"):
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            raise httpx.RemoteProtocolError(f"bad header line {line[:80]!r}", request=request)
        value = value.strip()
        headers.append((name.strip(), value))
        if name.strip().lower() == b"connection":
            keep = value.lower() == b"keep-alive" or (keep and value.lower() != b"close")
    return status, reason[0] if reason else b"", headers, keep


class _Body(httpx.AsyncByteStream):
    """A response body read off the connection; the connection goes back to the pool once
    the body was read to its end, and is closed if the reader stops early."""

    def __init__(
        self,
        conn: _Connection,
        request: httpx.Request,
        headers: list[tuple[bytes, bytes]],
        keep: bool,
        give_back: Callable[[_Connection], None],
        no_body: bool,
    ) -> None:
        self._conn = conn
        self._request = request
        self._read_s = _timeout(request, "read")
        self._keep = keep
        self._give_back = give_back
        self._length: int | None = 0 if no_body else None
        self._chunked = False
        for name, value in headers:
            lower = name.lower()
            if lower == b"transfer-encoding" and b"chunked" in value.lower():
                self._chunked = not no_body
            elif lower == b"content-length" and not no_body:
                try:
                    self._length = int(value)
                except ValueError:
                    raise httpx.RemoteProtocolError("bad content-length", request=request) from None
        if self._chunked:
            self._length = None
        elif self._length is None:
            self._keep = False  # read until the server closes: the connection ends with it
        self._complete = False
        self._closed = False

    async def _read(self, awaitable: Awaitable[bytes]) -> bytes:
        try:
            return await _bounded(awaitable, self._read_s)
        except TimeoutError:
            raise httpx.ReadTimeout(
                "timed out reading the response", request=self._request
            ) from None
        except asyncio.IncompleteReadError:
            raise httpx.RemoteProtocolError(
                "connection closed in the middle of the response", request=self._request
            ) from None
        except asyncio.LimitOverrunError:
            raise httpx.RemoteProtocolError(
                "chunk header too long", request=self._request
            ) from None
        except OSError as exc:
            raise httpx.ReadError(
                str(exc) or exc.__class__.__name__, request=self._request
            ) from exc

    async def __aiter__(self) -> AsyncIterator[bytes]:
        reader = self._conn.reader
        if self._chunked:
            while True:
                line = await self._read(reader.readuntil(b"\r\n"))
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise httpx.RemoteProtocolError(
                        "bad chunk size", request=self._request
                    ) from None
                if size == 0:
                    while await self._read(reader.readuntil(b"\r\n")) != b"\r\n":
                        pass  # trailers: none expected, skipped
                    break
                data = await self._read(reader.readexactly(size + 2))
                yield data[:-2]
        elif self._length is not None:
            if self._length:
                yield await self._read(reader.readexactly(self._length))
        else:
            while data := await self._read(reader.read(65536)):
                yield data
        self._complete = True

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._complete and self._keep:
            self._give_back(self._conn)
        else:
            self._conn.close()


class LeanTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over asyncio streams with keep-alive for ``http://`` URLs; other schemes go
    to ``fallback`` (httpx's own transport) if there is one."""

    def __init__(
        self,
        fallback: httpx.AsyncBaseTransport | None = None,
        keepalive_s: float = KEEPALIVE_S,
        max_idle_per_host: int = MAX_IDLE_PER_HOST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fallback = fallback
        self.keepalive_s = keepalive_s
        self.max_idle_per_host = max_idle_per_host
        self._clock = clock
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self.opened = 0  # connections opened so far (for tests and diagnostics)

    def _take(self, origin: tuple[str, int]) -> _Connection | None:
        idle = self._idle.get(origin)
        now = self._clock()
        while idle:
            conn = idle.pop()  # the most recently used: the least likely to be stale
            if conn.usable(now, self.keepalive_s):
                return conn
            conn.close()
        return None

    def _give_back(self, origin: tuple[str, int]) -> Callable[[_Connection], None]:
        def give_back(conn: _Connection) -> None:
            idle = self._idle.setdefault(origin, [])
            if len(idle) >= self.max_idle_per_host or conn.writer.is_closing():
                conn.close()
                return
            conn.idle_since = self._clock()
            idle.append(conn)

        return give_back

    async def _connect(self, request: httpx.Request, origin: tuple[str, int]) -> _Connection:
        try:
            reader, writer = await _bounded(
                asyncio.open_connection(*origin, limit=HEAD_LIMIT), _timeout(request, "connect")
            )
        except TimeoutError:
            raise httpx.ConnectTimeout(
                f"connecting to {origin[0]}:{origin[1]}", request=request
            ) from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc) or exc.__class__.__name__, request=request) from exc
        self.opened += 1
        return _Connection(reader, writer)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme != "http":
            if self.fallback is not None:
                return await self.fallback.handle_async_request(request)
            raise httpx.UnsupportedProtocol(f"{url.scheme}: not served by LeanTransport")
        origin = (url.host, url.port or 80)
        data = _request_bytes(request, await request.aread())
        while True:
            conn = self._take(origin)
            reused = conn is not None
            if conn is None:
                conn = await self._connect(request, origin)
            try:
                head = await self._exchange(conn, request, data)
            except _Stale:
                conn.close()
                if reused:
                    continue  # the server closed it while idle, before reading our request
                raise httpx.RemoteProtocolError(
                    "server closed the connection without a response", request=request
                ) from None
            except BaseException:
                conn.close()
                raise
            status, reason, headers, keep = _parse_head(head, request)
            no_body = request.method == "HEAD" or status in (204, 304) or 100 <= status < 200
            body = _Body(conn, request, headers, keep, self._give_back(origin), no_body)
            extensions = {"http_version": b"HTTP/1.1", "reason_phrase": reason}
            return httpx.Response(status, headers=headers, stream=body, extensions=extensions)

    async def _exchange(self, conn: _Connection, request: httpx.Request, data: bytes) -> bytes:
        """Write the request, read the response head."""
        try:
            conn.writer.write(data)
            await _bounded(conn.writer.drain(), _timeout(request, "write"))
        except TimeoutError:
            raise httpx.WriteTimeout("timed out sending the request", request=request) from None
        except OSError as exc:
            raise _Stale() from exc
        try:
            return await _bounded(conn.reader.readuntil(b"\r\n\r\n"), _timeout(request, "read"))
        except TimeoutError:
            raise httpx.ReadTimeout("timed out waiting for the response", request=request) from None
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise httpx.RemoteProtocolError(
                    "connection closed in the middle of the response head", request=request
                ) from None
            raise _Stale() from None
        except asyncio.LimitOverrunError:
            raise httpx.RemoteProtocolError("response head too long", request=request) from None
        except OSError as exc:
            raise _Stale() from exc

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
        if self.fallback is not None:
            await self.fallback.aclose()


class _Stale(Exception):
    """The connection broke before any byte of a response came back."""


def client(lean: bool, limits: httpx.Limits) -> httpx.AsyncClient:
    """An httpx client for calling the services: the lean transport for ``http://`` (the
    usual case: loopback or a LAN host) and httpx's own, with ``limits``, for the rest;
    httpx's own for everything when ``lean`` is off."""
    if not lean:
        return httpx.AsyncClient(limits=limits)
    return httpx.AsyncClient(transport=LeanTransport(httpx.AsyncHTTPTransport(limits=limits)))
