"""One inference at a time per model, a bounded line of waiters, 503 beyond it.

Models here are not re-entrant (and on a 2-core CPU parallel inference only
slows every request down), so each service serialises its model calls. The
blocking call runs in a worker thread so the event loop keeps serving
``/health`` and new connections meanwhile. An engine that shares its model
between requests itself (the LLM's replies taking turns) takes several
``slots``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from .errors import ServiceBusy

T = TypeVar("T")


class InferenceQueue:
    def __init__(self, max_waiting: int, retry_after_s: int = 2, slots: int = 1) -> None:
        self.max_waiting = max_waiting
        self.retry_after_s = retry_after_s
        self.slots = slots
        self._free = asyncio.Semaphore(slots)
        self._waiting = 0
        self._holding = 0

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def busy(self) -> bool:
        """True while any request holds the model."""
        return self._holding > 0

    async def acquire(self) -> None:
        """Take the model (a slot of it), or raise :class:`ServiceBusy` if the line is full."""
        if self._free.locked() and self._waiting >= self.max_waiting:
            raise ServiceBusy(
                f"server busy: {self._waiting} requests already waiting", self.retry_after_s
            )
        self._waiting += 1
        try:
            await self._free.acquire()
        finally:
            self._waiting -= 1
        self._holding += 1

    def release(self) -> None:
        self._holding -= 1
        self._free.release()

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """Run the blocking ``fn(*args)`` in a thread once the model is ours.

        If the caller is cancelled (its client went away) the thread cannot be
        stopped, so the model stays taken until the thread really ends: else
        the next request would run on the model at the same time.
        """
        await self.acquire()
        work = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        try:
            result = await asyncio.shield(work)
        except asyncio.CancelledError:
            work.add_done_callback(lambda _: self.release())
            raise
        except BaseException:
            self.release()
            raise
        self.release()
        return result
