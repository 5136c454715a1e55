"""The inference queue: one at a time, bounded waiting, and no overlap after a cancel."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from services.common.errors import ServiceBusy
from services.common.queue import InferenceQueue

pytestmark = pytest.mark.anyio


async def test_cancelled_caller_keeps_the_model_until_its_thread_ends() -> None:
    q = InferenceQueue(max_waiting=4)
    running = 0
    overlap = False
    lock = threading.Lock()

    def work() -> None:
        nonlocal running, overlap
        with lock:
            running += 1
            overlap |= running > 1
        time.sleep(0.3)
        with lock:
            running -= 1

    first = asyncio.create_task(q.run(work))
    await asyncio.sleep(0.05)
    first.cancel()
    await q.run(work)  # must wait for the first thread, not run beside it
    assert not overlap


async def test_full_queue_raises_busy() -> None:
    q = InferenceQueue(max_waiting=1)
    gate = threading.Event()
    tasks = [asyncio.create_task(q.run(gate.wait, 5)) for _ in range(2)]
    await asyncio.sleep(0.05)
    with pytest.raises(ServiceBusy):
        await q.run(gate.wait, 5)
    gate.set()
    assert await asyncio.gather(*tasks) == [True, True]


async def test_slots_let_that_many_run_at_once_and_no_more() -> None:
    q = InferenceQueue(max_waiting=4, slots=2)
    running = 0
    most = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.1)
        with lock:
            running -= 1

    assert not q.busy
    await asyncio.gather(*(q.run(work) for _ in range(5)))
    assert most == 2
    assert not q.busy and q.waiting == 0
