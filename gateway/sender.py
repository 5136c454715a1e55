"""The send side of a WebSocket: one writer task, a bounded queue, delivery receipts.

Both protocols (``/ws`` and ``/v1/realtime``) send through this, so frames
never interleave, a client that reads nothing cannot make the gateway hold
unbounded memory, and whoever must know that a frame was written (a turn
deciding whether it still has a listener) can wait for it.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.websockets import WebSocket

logger = logging.getLogger(__name__)


class FrameSender:
    def __init__(self, ws: WebSocket, limit: int) -> None:
        self.ws = ws
        self.limit = limit
        self.closed = False
        self._queue: asyncio.Queue[tuple[str, asyncio.Future[bool] | None]] = asyncio.Queue()
        self._writing = asyncio.Lock()  # one frame at a time, from the writer or put_and_wait

    def put(self, text: str, done: asyncio.Future[bool] | None = None) -> None:
        """Queue a frame; ``done`` (if any) gets True once written, False if never."""
        if not self.closed and self._queue.qsize() >= self.limit:
            logger.warning("client is not reading; closing its connection")
            self.closed = True
        if self.closed:
            if done is not None and not done.done():
                done.set_result(False)
            return
        self._queue.put_nowait((text, done))

    async def put_and_wait(self, text: str) -> bool:
        """Queue a frame and wait until it is written; False if the socket is gone."""
        if not self.closed and self._queue.empty() and not self._writing.locked():
            # Nothing ahead of it: write it from here. Two trips through the writer task
            # cost more than the write itself when the event loop is busy.
            async with self._writing:
                try:
                    await self.ws.send_text(text)
                except Exception:
                    self.closed = True
                    return False
            return True
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.put(text, done)
        return await done

    async def run(self) -> None:
        """The writer task: until the socket fails or the task is cancelled."""
        try:
            while True:
                text, done = await self._queue.get()
                try:
                    async with self._writing:
                        await self.ws.send_text(text)
                except BaseException:
                    # CancelledError too (the socket closed mid-send): a turn awaiting this
                    # frame would otherwise wait forever and never be cleaned up.
                    if done is not None:
                        done.set_result(False)
                    raise
                if done is not None:
                    done.set_result(True)
        finally:
            self.closed = True
            while not self._queue.empty():
                _, done = self._queue.get_nowait()
                if done is not None and not done.done():
                    done.set_result(False)
