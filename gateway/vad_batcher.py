"""One worker thread running every /ws connection's VAD frames, batched, off the event loop.

:meth:`TurnDetector.feed <gateway.vad.TurnDetector.feed>` runs the model on the
caller's thread: one call per 512-sample frame, on the event loop. With many
connections that call dominated the gateway's time, and every other session's
frames waited behind it. The batcher runs whatever frames are pending across all
streams as one model call (about 2.7x cheaper per frame), in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections import deque
from dataclasses import dataclass, field

from services.common.vad import FRAME, SileroVAD

from .vad import TurnDetector, VADEvent, to_float

logger = logging.getLogger(__name__)


@dataclass
class _Feed:
    """One :meth:`VADBatcher.feed` call's frames on their way through the worker."""

    detector: TurnDetector
    frames: list[bytes]
    done: asyncio.Future[list[VADEvent]]
    events: list[VADEvent] = field(default_factory=list)
    dropped: bool = False  # set on the loop when its caller is gone; the worker skips it


class VADStopped(RuntimeError):
    """The batcher is not running (not started yet, or closed)."""


class VADBatcher:
    """One worker thread running every stream's pending frames as one batched model call.

    There is no tick: the worker takes whatever is pending (at most one frame per
    stream, since a stream's recurrent state needs its frames in order) as soon as
    it is free, so at low load a frame is processed at once. onnxruntime releases
    the GIL, so the event loop goes on meanwhile. Each frame's probability comes
    back to the loop, where the stream's :class:`TurnDetector` steps its state
    machine in frame order: a detector's state machine is only touched on the
    loop, its ``VADStream`` only by the worker.
    """

    def __init__(self, model: SileroVAD) -> None:
        self.model = model
        self._inbox: queue.SimpleQueue[_Feed | None] = queue.SimpleQueue()
        self._unanswered: dict[TurnDetector, list[_Feed]] = {}  # on the loop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the worker; call from the event loop that will await :meth:`feed`."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._work, name="vad-batcher", daemon=True)
        self._thread.start()

    async def aclose(self) -> None:
        """Stop the worker; feeds still unanswered fail with :class:`VADStopped`."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._inbox.put(None)
        await asyncio.to_thread(thread.join)
        for feeds in self._unanswered.values():
            for item in feeds:
                if not item.done.done():
                    item.done.set_exception(VADStopped("the VAD worker stopped"))
        self._unanswered.clear()

    async def feed(self, detector: TurnDetector, data: bytes) -> list[VADEvent]:
        """Add PCM bytes to ``detector``'s stream; return the events they complete.

        One detector must not be fed here and through ``TurnDetector.feed`` at once.
        """
        frames = detector.frames(data)
        if not frames:
            return []
        if self._loop is None or self._thread is None:
            raise VADStopped("the VAD worker is not running")
        item = _Feed(detector, frames, self._loop.create_future())
        self._unanswered.setdefault(detector, []).append(item)
        self._inbox.put(item)
        try:
            return await item.done
        except asyncio.CancelledError:
            self.discard(detector)
            raise

    def discard(self, detector: TurnDetector) -> None:
        """Forget ``detector``'s frames not yet run (its connection closed); a feed still
        awaiting them is cancelled."""
        for item in self._unanswered.pop(detector, ()):
            item.dropped = True
            item.done.cancel()

    # -- the worker thread ------------------------------------------------------
    def _work(self) -> None:
        waiting: dict[TurnDetector, deque[tuple[_Feed, int]]] = {}  # oldest first, fair
        while True:
            # Block only when nothing is left over from the last batch.
            arrived = [] if waiting else [self._inbox.get()]
            with contextlib.suppress(queue.Empty):
                while True:
                    arrived.append(self._inbox.get_nowait())
            for item in arrived:
                if item is None:
                    return
                frames = waiting.setdefault(item.detector, deque())
                frames.extend((item, i) for i in range(len(item.frames)))
            batch = []
            for detector in list(waiting):
                frames = waiting[detector]
                while frames and frames[0][0].dropped:
                    frames.popleft()
                if frames:
                    batch.append(frames.popleft())
                if not frames:
                    del waiting[detector]
            if not batch:
                continue
            probs = self._infer(batch)
            assert self._loop is not None
            try:
                self._loop.call_soon_threadsafe(self._deliver, batch, probs)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                return

    def _infer(self, batch: list[tuple[_Feed, int]]) -> list[float | Exception]:
        try:
            return self._run(batch)
        except Exception as exc:
            if len(batch) == 1:
                return [exc]  # raised to this stream's caller, with its traceback
        # One stream's bad state must not fail the others: run each alone to find it.
        # (run_batch changes no stream's state unless the model call succeeds.)
        out: list[float | Exception] = []
        for one in batch:
            out += self._infer([one])
        return out

    def _run(self, batch: list[tuple[_Feed, int]]) -> list[float | Exception]:
        pcm = b"".join(item.frames[i] for item, i in batch)
        streams = [item.detector.stream for item, _ in batch]
        probs = self.model.run_batch(streams, to_float(pcm).reshape(len(batch), FRAME))
        return [float(p) for p in probs]

    # -- back on the event loop ----------------------------------------------------
    def _deliver(self, batch: list[tuple[_Feed, int]], probs: list[float | Exception]) -> None:
        for (item, i), prob in zip(batch, probs, strict=True):
            if item.done.done():
                continue  # its caller gave up (connection closed) or a frame before failed
            if isinstance(prob, Exception):
                self._answer(item, error=prob)  # this stream's caller sees it; others go on
                continue
            try:
                item.events += item.detector.step(item.frames[i], prob)
            except Exception as exc:  # a bug of ours: fail this stream, not the batch
                self._answer(item, error=exc)
                continue
            if i == len(item.frames) - 1:
                self._answer(item)

    def _answer(self, item: _Feed, error: Exception | None = None) -> None:
        feeds = self._unanswered.get(item.detector)
        if feeds is not None:
            feeds.remove(item)
            if not feeds:
                del self._unanswered[item.detector]
        if error is None:
            item.done.set_result(item.events)
        else:
            item.dropped = True  # the worker skips its remaining frames
            item.done.set_exception(error)
