"""The gateway's lean HTTP/1.1 transport, against a scripted server speaking raw HTTP.

Each test's server answers with exactly the bytes the test gives it, so the
cases a real service rarely shows (chunk extensions, a body read to EOF, a
keep-alive connection the server drops while idle, a response cut short) are
each checked, and the server reports which connection every request came on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from gateway.transport import LeanTransport

pytestmark = pytest.mark.anyio

# (connection number, request) -> raw response; a list: parts sent 0.2 s apart
Reply = Callable[[int, bytes], bytes | list[bytes] | None]


class Script:
    """A loopback server: reads one request at a time, answers ``reply(conn, request)``;
    a reply of None closes the connection without answering."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.requests: list[tuple[int, bytes]] = []  # (connection number, head + body)
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.close_after_reply = False
        self.eof: list[int] = []  # connections the client closed

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        conn = self.connections
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                request = head + await reader.readexactly(length)
                self.requests.append((conn, request))
                answer = self.reply(conn, request)
                if answer is None:
                    break
                if not answer:  # never answer; wait for the client to give up
                    await reader.read()
                    break
                for i, part in enumerate([answer] if isinstance(answer, bytes) else answer):
                    if i:
                        await asyncio.sleep(0.2)
                    writer.write(part)
                    await writer.drain()
                if self.close_after_reply:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            self.eof.append(conn)
        except asyncio.CancelledError:
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


def ok(body: bytes = b"hello", extra: bytes = b"") -> Callable[[int, bytes], bytes]:
    return lambda conn, req: (
        b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n%s" % (len(body), extra, body)
    )


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=LeanTransport(), timeout=2) as c:
        yield c


async def test_request_bytes_and_keep_alive(client: httpx.AsyncClient) -> None:
    script = Script(ok())
    async with script as url:
        for _ in range(3):
            r = await client.post(
                url + "/synthesize?x=1", json={"text": "はい"}, headers={"a": "b"}
            )
            assert (r.status_code, r.content, r.http_version) == (200, b"hello", "HTTP/1.1")
        await client.get(url + "/health")
    assert [c for c, _ in script.requests] == [1, 1, 1, 1]  # one connection, kept alive
    head, _, body = script.requests[0][1].partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    assert lines[0] == b"post /synthesize?x=1 http/1.1"
    assert b"a: b" in lines and b"content-type: application/json" in lines
    assert body == '{"text":"はい"}'.encode() and f"content-length: {len(body)}".encode() in lines
    assert b"content-length" not in script.requests[3][1].lower()  # a GET has no body


async def test_chunked_body_streams_piece_by_piece(client: httpx.AsyncClient) -> None:
    chunks = b"5;ext=1\r\ndata:\r\n7\r\n 1\n\ndat\r\n5\r\na: 2\n\r\n0\r\ntrailer: x\r\n\r\n"
    script = Script(
        lambda conn, req: b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + chunks
    )
    async with script as url:
        for _ in range(2):
            async with client.stream("POST", url + "/chat/stream", json={}) as r:
                assert [p async for p in r.aiter_raw()] == [b"data:", b" 1\n\ndat", b"a: 2\n"]
    assert script.connections == 1  # read to its end (trailer too): reused


async def test_body_to_eof_and_connection_close_are_not_reused(
    client: httpx.AsyncClient,
) -> None:
    answers = iter(
        [b"HTTP/1.1 200 OK\r\n\r\nuntil the end", ok(b"x", b"connection: close\r\n")(0, b"")]
    )
    script = Script(lambda conn, req: next(answers, ok()(conn, req)))
    script.close_after_reply = True
    async with script as url:
        assert (await client.get(url)).content == b"until the end"
        script.close_after_reply = False
        assert (await client.get(url)).content == b"x"
        assert (await client.get(url)).content == b"hello"
        assert (await client.get(url)).content == b"hello"
    assert [c for c, _ in script.requests] == [1, 2, 3, 3]


async def test_pooled_connection_closed_or_dirty_is_not_reused(
    client: httpx.AsyncClient,
) -> None:
    """A connection the server closed while idle, or wrote to unasked (a 408 before
    closing), is dropped from the pool before use: each request is sent once."""
    script = Script(ok())
    script.close_after_reply = True  # like a server whose keep-alive ran out
    async with script as url:
        assert (await client.get(url)).content == b"hello"
        await asyncio.sleep(0.05)
        assert (await client.get(url)).content == b"hello"
    assert [c for c, _ in script.requests] == [1, 2]

    script = Script(ok(extra=b"x-extra: 1\r\n"))
    async with script as url:
        assert (await client.get(url)).content == b"hello"
        transport = client._transport
        assert isinstance(transport, LeanTransport)
        (conn,) = transport._idle[("127.0.0.1", int(url.rsplit(":", 1)[1]))]
        conn.reader.feed_data(b"HTTP/1.1 408 Request Timeout\r\n\r\n")  # unsolicited
        r = await client.get(url)
        assert (r.status_code, r.headers["x-extra"]) == (200, "1")
    assert [c for c, _ in script.requests] == [1, 2]


async def test_request_is_never_sent_twice(client: httpx.AsyncClient) -> None:
    """A server that takes a POST on a pooled connection and closes it without an answer
    (a crash): the request fails once; it is not replayed on the other pooled ones."""
    crash = False

    def reply(conn: int, req: bytes) -> bytes | None:
        return None if crash else ok()(conn, req)

    script = Script(reply)
    async with script as url:
        await asyncio.gather(*(client.post(url, content=b"x") for _ in range(3)))
        crash = True
        with pytest.raises(httpx.RemoteProtocolError, match="without a response"):
            await client.post(url, content=b"work")
    assert sum(req.endswith(b"work") for _, req in script.requests) == 1


async def test_stream_left_early_closes_the_connection(client: httpx.AsyncClient) -> None:
    script = Script(
        lambda conn, req: (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n"
            if req.startswith(b"POST")
            else ok()(conn, req)
        )
    )
    async with script as url:
        async with client.stream("POST", url, json={}) as r:
            async for piece in r.aiter_raw():
                assert piece == b"first"
                break  # as a barge-in does: the rest of the stream is never read
        assert (await client.get(url)).content == b"hello"
    assert [c for c, _ in script.requests] == [1, 2]


async def test_errors_are_httpx_errors() -> None:
    answers: dict[bytes, bytes] = {
        b"/bad": b"garbage\r\n\r\n",
        b"/cut": b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this",
        b"/badchunk": b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        b"/nocrlf": b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabXY",
        b"/negative": b"HTTP/1.1 200 OK\r\ncontent-length: -5\r\n\r\n",
        b"/gzipped": b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
        b"/slow": b"",  # never answered
        b"/ok": ok()(0, b""),
    }
    script = Script(lambda conn, req: answers.get(req.split(b" ")[1]))
    async with httpx.AsyncClient(transport=LeanTransport(), timeout=0.3) as client:
        async with script as url:
            with pytest.raises(httpx.RemoteProtocolError, match="status line"):
                await client.get(url + "/bad")
            script.close_after_reply = True
            with pytest.raises(httpx.RemoteProtocolError, match="middle of the response"):
                await client.get(url + "/cut")
            with pytest.raises(httpx.RemoteProtocolError, match="chunk size"):
                await client.get(url + "/badchunk")
            with pytest.raises(httpx.RemoteProtocolError, match="CRLF"):
                await client.get(url + "/nocrlf")
            with pytest.raises(httpx.RemoteProtocolError, match="content-length"):
                await client.get(url + "/negative")
            with pytest.raises(httpx.RemoteProtocolError, match="transfer-encoding"):
                await client.get(url + "/gzipped")
            with pytest.raises(httpx.ReadTimeout):
                await client.get(url + "/slow")
            with pytest.raises(httpx.RemoteProtocolError, match="without a response"):
                await client.get(url + "/none")  # closed with no answer
            with pytest.raises(httpx.LocalProtocolError):
                await client.get(url + "/ok", headers={"x": "a\r\nInjected: 1"})
            assert (await client.get(url + "/ok")).content == b"hello"  # still usable
            await asyncio.sleep(0.05)
        assert 1 in script.eof  # the connection with the bad head was closed, not leaked
        with pytest.raises(httpx.ConnectError):
            await client.get(url + "/ok")  # nobody listens there any more


async def test_protocol_details(client: httpx.AsyncClient) -> None:
    answers: dict[bytes, bytes | list[bytes]] = {
        # an interim response, then the real one
        b"/hints": b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n" + ok(b"final")(0, b""),
        b"/old": b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nv0",
        b"/closing": ok(b"c", b"connection: close, te\r\n")(0, b""),
        # 10 bytes over 0.6 s: the read timeout (0.5 s) is per read, not for the body
        b"/trickle": [b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n"]
        + [b"ab", b"cd", b"ef", b"ghij"],
    }
    script = Script(lambda conn, req: answers.get(req.split(b" ")[1]) or ok()(conn, req))
    async with script as url:
        r = await client.get(url + "/hints")
        assert (r.status_code, r.content) == (200, b"final")
        assert (await client.get(url + "/x")).content == b"hello"  # same connection, in step
        r = await client.get(url + "/old")
        assert (r.http_version, r.content) == ("HTTP/1.0", b"v0")
        assert (await client.get(url + "/closing")).content == b"c"
        assert (await client.get(url + "/trickle", timeout=0.5)).content == b"abcdefghij"
    # HTTP/1.0 without keep-alive and "close, te" both end their connection
    assert [c for c, _ in script.requests] == [1, 1, 1, 2, 3]


async def test_closed_transport_keeps_nothing() -> None:
    transport = LeanTransport()
    script = Script(lambda conn, req: b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
    async with script as url:
        client = httpx.AsyncClient(transport=transport)
        async with client.stream("GET", url) as r:
            await client.aclose()  # while a response is still open
            assert await r.aread() == b"ok"
        assert not any(transport._idle.values())


async def test_other_schemes_go_to_the_fallback() -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(200, content=b"tls")

    transport = LeanTransport(fallback=httpx.MockTransport(handler))
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get("https://remote.example/health")).content == b"tls"
    assert asked == ["https://remote.example/health"]
    with pytest.raises(httpx.UnsupportedProtocol):
        await LeanTransport().handle_async_request(httpx.Request("GET", "https://x/"))


def test_runs_on_uvloop() -> None:
    """The gateway runs on uvloop (uvicorn's default where installed), whose streams and
    sockets differ from asyncio's: connect, reuse check and body reads there too."""
    uvloop = pytest.importorskip("uvloop")

    async def main() -> list[int]:
        script = Script(ok())
        async with script as url, httpx.AsyncClient(transport=LeanTransport()) as client:
            for _ in range(3):
                assert (await client.post(url, json={"a": 1})).content == b"hello"
        return [c for c, _ in script.requests]

    assert uvloop.run(main()) == [1, 1, 1]
