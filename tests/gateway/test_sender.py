"""The send side of a socket: frames in the order given, whichever path writes them."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, cast

import pytest
from starlette.websockets import WebSocket

from gateway.sender import FrameSender

pytestmark = pytest.mark.anyio


class FakeSocket:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self.gate = asyncio.Event()  # a client that reads (set) or not (clear)
        self.gate.set()
        self.broken = False

    async def send_text(self, text: str) -> None:
        await self.gate.wait()
        if self.broken:
            raise RuntimeError("socket gone")
        self.sent.append(text)


def sender(ws: FakeSocket, limit: int = 100) -> FrameSender:
    return FrameSender(cast(WebSocket, ws), limit)


async def run_with_writer(out: FrameSender, body: Any) -> None:
    writer = asyncio.create_task(out.run())
    try:
        await body
    finally:
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer


async def test_waited_and_queued_frames_keep_their_order() -> None:
    ws = FakeSocket()
    out = sender(ws)

    async def body() -> None:
        assert await out.put_and_wait("a")  # nothing ahead: written at once
        ws.gate.clear()  # the client stops reading for a while
        out.put("b")
        out.put("c")
        waited = asyncio.create_task(out.put_and_wait("d"))  # behind b and c
        await asyncio.sleep(0.01)
        assert ws.sent == ["a"] and not waited.done()
        ws.gate.set()
        assert await waited
        assert await out.put_and_wait("e")

    await run_with_writer(out, body())
    assert ws.sent == ["a", "b", "c", "d", "e"]


async def test_a_direct_write_blocks_later_frames_behind_it() -> None:
    ws = FakeSocket()
    out = sender(ws)

    async def body() -> None:
        ws.gate.clear()
        first = asyncio.create_task(out.put_and_wait("a"))
        await asyncio.sleep(0)
        second = asyncio.create_task(out.put_and_wait("b"))
        await asyncio.sleep(0)  # b is queued: "a" is being written
        out.put("c")
        await asyncio.sleep(0.01)
        ws.gate.set()
        assert await first and await second

    await run_with_writer(out, body())
    assert ws.sent == ["a", "b", "c"]


async def test_a_broken_socket_answers_false_and_closes() -> None:
    ws = FakeSocket()
    ws.broken = True
    out = sender(ws)
    assert not await out.put_and_wait("a")
    assert out.closed
    assert not await out.put_and_wait("b")  # and stays closed
