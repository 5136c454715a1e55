"""A lean HTTP/1.1 transport under httpx for the gateway's calls to its services.

httpx's default transport (httpcore over h11 and anyio) spends about 1 ms of
Python per loopback request when warm and over 2 ms after an idle gap, several
times what the bytes on the socket take (``make bench`` prints all three as the
request floor). A turn waits on two such calls before its first audio (the LLM
stream, then TTS), so that cost was most of the gateway's added latency.

This transport keeps httpx's types (requests, responses, timeouts, errors, the
tests' ``MockTransport``) and replaces only the wire part: asyncio streams, a
keep-alive pool per host, the request written in one go, the response read as
a content-length, chunked or until-close body. It speaks plain ``http://`` and
hands other schemes to a fallback (httpx's own transport, see :class:`Sender`).
Unlike httpx's, it has no cap on connections (each service queues its own
work) and does not go through ``HTTP_PROXY``; ``GATEWAY_LEAN_HTTP=false``
brings httpx's transport back for both.

Like httpcore it never sends a request twice: a pooled connection is checked
before reuse (open at our end, nothing buffered, socket not readable, younger
than the keep-alive), and one that breaks anyway fails the request, which the
gateway's failover then handles like any unreachable instance.
"""

from __future__ import annotations

import asyncio
import select
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import httpx

# An idle connection the server has had this long may be closed by it any moment (the
# services keep connections 75 s, uvicorn's default is 5 s): closing ours first avoids
# writing a request into a socket the server is closing.
KEEPALIVE_S = 60.0  # a turn a minute after the last one still finds its connections open
MAX_IDLE_PER_HOST = 200  # a burst of turns opens this many; keep them for the next burst
HEAD_LIMIT = 64 * 1024  # the longest response head accepted
READ_SIZE = 64 * 1024  # the most one body read asks for (the read timeout is per read)

T = TypeVar("T")


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def usable(self, now: float, keepalive_s: float) -> bool:
        """Idle and clean: open at our end, nothing left unread (a server's close, or a
        ``408`` it sends before closing, shows as EOF or readable bytes), not too old."""
        if now - self.idle_since >= keepalive_s or self.writer.is_closing():
            return False
        reader = self.reader
        # StreamReader keeps what it has read but not handed out in _buffer (no public API)
        if reader.at_eof() or reader.exception() is not None or len(reader._buffer):  # type: ignore[attr-defined]
            return False
        sock = self.writer.get_extra_info("socket")
        if sock is None:
            return True
        try:
            readable, _, _ = select.select([sock.fileno()], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def close(self) -> None:
        self.writer.close()


def _timeout(request: httpx.Request, kind: str) -> float | None:
    value = request.extensions.get("timeout", {}).get(kind)
    return None if value is None else float(value)


async def _bounded(awaitable: Awaitable[T], seconds: float | None) -> T:
    async with asyncio.timeout(seconds):
        return await awaitable


async def _read(
    awaitable: Awaitable[T], request: httpx.Request, seconds: float | None, what: str, long: str
) -> T:
    """A read of ``what`` (a part of the response) with httpx's errors for what goes wrong;
    ``long``: the message when a line is longer than the reader's limit."""
    try:
        return await _bounded(awaitable, seconds)
    except TimeoutError:
        raise httpx.ReadTimeout(f"timed out waiting for {what}", request=request) from None
    except asyncio.IncompleteReadError as exc:
        where = f"in the middle of {what}" if exc.partial else f"without {what}"
        raise httpx.RemoteProtocolError(
            f"server closed the connection {where}", request=request
        ) from None
    except asyncio.LimitOverrunError:
        raise httpx.RemoteProtocolError(long, request=request) from None
    except OSError as exc:
        raise httpx.ReadError(str(exc) or exc.__class__.__name__, request=request) from exc


_FORBIDDEN = (b"\r", b"\n", b"\0")


def _request_bytes(request: httpx.Request, body: bytes) -> bytes:
    lines = [request.method.encode("ascii") + b" " + request.url.raw_path + b" HTTP/1.1"]
    for name, value in request.headers.raw:
        if any(c in name or c in value for c in _FORBIDDEN):
            raise httpx.LocalProtocolError(f"header {name!r} holds a line break", request=request)
        if name.lower() in (b"transfer-encoding", b"content-length"):
            continue  # the body was read whole: its length is known
        lines.append(name + b": " + value)
    if body or request.method not in ("GET", "HEAD"):
        lines.append(b"Content-Length: " + str(len(body)).encode("ascii"))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class _Head:
    """A parsed response head: status, reason, headers, and how its body is framed."""

    def __init__(self, head: bytes, request: httpx.Request) -> None:
        def bad(what: str, text: bytes) -> httpx.RemoteProtocolError:
            return httpx.RemoteProtocolError(f"bad {what} {text[:80]!r}", request=request)

        status_line, _, rest = head.partition(b"\r\n")
        version, _, after = status_line.partition(b" ")
        code, _, self.reason = after.partition(b" ")
        if version not in (b"HTTP/1.1", b"HTTP/1.0") or not (len(code) == 3 and code.isdigit()):
            raise bad("status line", status_line)
        self.version = version
        self.status = int(code)
        self.headers: list[tuple[bytes, bytes]] = []
        connection: list[bytes] = []
        lengths: set[bytes] = set()
        coding: list[bytes] = []
        for line in rest.split(b"\r\n"):
            if not line:
                continue
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip() or line[:1] in b" \t":
                raise bad("header line", line)
            value = value.strip()
            self.headers.append((name, value))
            lower = name.lower()
            if lower == b"connection":
                connection += [t.strip().lower() for t in value.split(b",")]
            elif lower == b"content-length":
                lengths.add(value)
            elif lower == b"transfer-encoding":
                coding += [t.strip().lower() for t in value.split(b",")]
        self.keep = b"close" not in connection and (
            version == b"HTTP/1.1" or b"keep-alive" in connection
        )
        self.chunked = False
        self.length: int | None = None  # None: the body runs until the server closes
        if coding:
            if coding[-1] != b"chunked" or len(coding) > 1:
                raise bad("transfer-encoding", b", ".join(coding))
            self.chunked = True
        elif lengths:
            value = lengths.pop()
            if lengths or not value.isdigit():
                raise bad("content-length", value)
            self.length = int(value)
        if self.length is None and not self.chunked:
            self.keep = False

    def no_body(self, method: str) -> bool:
        return method == "HEAD" or self.status in (204, 304)


class _Body(httpx.AsyncByteStream):
    """A response body read off the connection; the connection goes back to the pool once
    the body was read to its end, and is closed if the reader stops early."""

    def __init__(
        self,
        conn: _Connection,
        request: httpx.Request,
        head: _Head,
        give_back: Callable[[_Connection], None],
    ) -> None:
        self._conn = conn
        self._request = request
        self._read_s = _timeout(request, "read")
        self._head = head
        self._empty = head.no_body(request.method)
        self._give_back = give_back
        self._complete = False
        self._closed = False

    def _error(self, message: str) -> httpx.RemoteProtocolError:
        return httpx.RemoteProtocolError(message, request=self._request)

    async def _read(self, awaitable: Awaitable[bytes]) -> bytes:
        return await _read(
            awaitable,
            self._request,
            self._read_s,
            "the response body",
            "chunk header too long",
        )

    async def _exactly(self, n: int) -> AsyncIterator[bytes]:
        """``n`` bytes, in pieces as they arrive (the read timeout applies to each)."""
        reader = self._conn.reader
        while n > 0:
            data = await self._read(reader.read(min(n, READ_SIZE)))
            if not data:
                raise self._error("server closed the connection in the middle of the response body")
            n -= len(data)
            yield data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        reader = self._conn.reader
        if self._empty:
            pass
        elif self._head.chunked:
            while True:
                line = (await self._read(reader.readuntil(b"\r\n")))[:-2]
                size_text = line.split(b";", 1)[0].strip()
                if (
                    not size_text
                    or len(size_text) > 16
                    or size_text.strip(b"0123456789abcdefABCDEF")
                ):
                    raise self._error(f"bad chunk size {line[:40]!r}")
                size = int(size_text, 16)
                if size == 0:
                    while await self._read(reader.readuntil(b"\r\n")) != b"\r\n":
                        pass  # trailers: none expected, skipped
                    break
                async for data in self._exactly(size):
                    yield data
                if await self._read(reader.readexactly(2)) != b"\r\n":
                    raise self._error("chunk not followed by CRLF")
        elif self._head.length is not None:
            async for data in self._exactly(self._head.length):
                yield data
        else:
            while data := await self._read(reader.read(READ_SIZE)):
                yield data
        self._complete = True

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._complete and self._head.keep:
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
        self._closed = False
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
            now = self._clock()
            while idle and now - idle[0].idle_since >= self.keepalive_s:
                idle.pop(0).close()  # the oldest, left over from an earlier burst
            if self._closed or len(idle) >= self.max_idle_per_host or conn.writer.is_closing():
                conn.close()
                return
            conn.idle_since = now
            idle.append(conn)

        return give_back

    async def _connect(self, request: httpx.Request, origin: tuple[str, int]) -> _Connection:
        try:
            reader, writer = await _bounded(
                # (no happy_eyeballs_delay: uvloop, the gateway's loop, does not take it)
                asyncio.open_connection(*origin, limit=HEAD_LIMIT),
                _timeout(request, "connect"),
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
        conn = self._take(origin) or await self._connect(request, origin)
        try:
            head = await self._exchange(conn, request, data)
            body = _Body(conn, request, head, self._give_back(origin))
        except BaseException:
            conn.close()
            raise
        extensions = {"http_version": head.version, "reason_phrase": head.reason}
        return httpx.Response(head.status, headers=head.headers, stream=body, extensions=extensions)

    async def _exchange(self, conn: _Connection, request: httpx.Request, data: bytes) -> _Head:
        """Write the request, read the final response head (interim 1xx ones skipped)."""
        try:
            conn.writer.write(data)
            await _bounded(conn.writer.drain(), _timeout(request, "write"))
        except TimeoutError:
            raise httpx.WriteTimeout("timed out sending the request", request=request) from None
        except OSError as exc:
            raise httpx.WriteError(str(exc) or exc.__class__.__name__, request=request) from exc
        while True:
            raw = await _read(
                conn.reader.readuntil(b"\r\n\r\n"),
                request,
                _timeout(request, "read"),
                "a response",
                "response head too long",
            )
            head = _Head(raw, request)
            if not 100 <= head.status < 200:
                return head
            if head.status == 101:
                raise httpx.RemoteProtocolError("unexpected protocol switch", request=request)

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
        if self.fallback is not None:
            await self.fallback.aclose()


class Sender:
    """Sends the gateway's prepared requests. With a lean transport, straight into it:
    httpx's client layers (building, auth, redirects, cookies, a response bound to its
    stream) cost about 0.2 ms a call and leave a reference cycle per response for the
    garbage collector. Without one, through ``client`` (httpx's own transport, proxies
    from the environment; the tests' ``MockTransport``)."""

    def __init__(self, client: httpx.AsyncClient, lean: LeanTransport | None = None) -> None:
        self.client = client  # also for what is not on a turn's path (health checks)
        self.lean = lean

    @classmethod
    def for_services(cls, lean: bool, limits: httpx.Limits) -> Sender:
        """The lean transport for ``http://`` (the usual case: loopback or a LAN host) and
        httpx's own, with ``limits``, for the rest; httpx's own for everything when
        ``lean`` is off."""
        if not lean:
            return cls(httpx.AsyncClient(limits=limits))
        transport = LeanTransport(httpx.AsyncHTTPTransport(limits=limits))
        return cls(httpx.AsyncClient(transport=transport), transport)

    async def send(self, request: httpx.Request) -> httpx.Response:
        """The response to ``request`` with its body unread: read it or close it."""
        if self.lean is not None:
            return await self.lean.handle_async_request(request)
        return await self.client.send(request, stream=True)

    async def aclose(self) -> None:
        await self.client.aclose()  # closes its transport, the lean one included
