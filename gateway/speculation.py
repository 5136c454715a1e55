"""Speculative ASR: a transcription started at a pause in the user's speech.

The VAD reports a PAUSE (``speculative_asr_ms`` of silence) before the turn's
end (``silence_end_ms``) is certain. A connection transcribes the speech so
far then, and uses that transcript if the silence lasts; if speech resumes it
drops it. With ``speculative_reply`` the connection also starts the reply's
turn on that transcription, held (:meth:`gateway.turn.Turn.commit`): its LLM may
write during the rest of the wait; it is dropped with the transcription. Both
``/ws`` and ``/v1/realtime`` connections keep one of these.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from .clients import UpstreamError

if TYPE_CHECKING:
    from .clients import Upstreams
    from .hub import Hub
    from .turn import Turn

logger = logging.getLogger(__name__)


async def transcribe(
    upstreams: Upstreams, audio: bytes, language: str, started: asyncio.Future[str] | None
) -> str:
    """The transcript of ``audio``: the one ``started`` at the pause if there is one."""
    if started is not None:
        try:
            return await started
        except UpstreamError as exc:  # e.g. busy: the whole utterance gets its own try
            logger.info("speculative transcription failed (%s); transcribing again", exc)
    return await upstreams.transcribe(audio, language)


class SpeculativeASR:
    """One connection's transcription started at a pause, the turn held on it, and the
    transcription dropped before it.

    At most one of a connection's transcriptions runs upstream at a time: the ASR
    service finishes a request even after its client has gone, so stale ones would
    queue in front of the one that counts (and fill the service's queue).
    """

    def __init__(self, hub: Hub) -> None:
        self._upstreams: Upstreams = hub.upstreams
        self._counter = hub.metrics.speculations
        self._early = hub.metrics.early_replies
        self.task: asyncio.Task[str] | None = None
        self.held: Turn | None = None
        self._stale: asyncio.Task[str] | None = None

    def start(self, audio: bytes, language: str) -> asyncio.Task[str] | None:
        """Transcribe ``audio`` (the speech up to the pause) now; None if a dropped
        transcription still occupies the ASR (the turn's end transcribes instead)."""
        self.drop()
        if self._stale is not None and not self._stale.done():
            return None
        task = asyncio.create_task(
            self._upstreams.transcribe(audio, language), name="asr-speculative"
        )
        # A dropped task's error is nobody's: retrieve it so asyncio does not log it.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        self.task = task
        return task

    def hold(self, new_turn: Callable[[asyncio.Future[str]], Turn]) -> None:
        """Start the reply's turn, held until the speech's end, on this transcription:
        ``new_turn`` makes it from the transcription, which the turn sees through a shield,
        so that dropping the turn does not cancel the request (see :meth:`drop`)."""
        assert self.task is not None
        self.held = new_turn(asyncio.shield(self.task))
        self.held.start()

    def take_held(self, usable: Callable[[Turn], bool]) -> Turn | None:
        """The speech has ended: the held turn, if ``usable`` says it still fits; else it
        is discarded."""
        held, self.held = self.held, None
        if held is None:
            return None
        if not usable(held):
            held.discard()
            return None
        if held.asked is not None:
            self._early.labels("used").inc()
        return held

    def drop(self) -> None:
        """Speech went on: the transcript would miss words. The request is left to finish
        (cancelling it would not stop the ASR, only lose the pooled connection)."""
        if self.task is not None:
            self._stale, self.task = self.task, None
            self._counter.labels("dropped").inc()
        if self.held is not None:
            held, self.held = self.held, None
            held.discard()  # closing its LLM stream stops the generation upstream
            if held.asked is not None:
                self._early.labels("dropped").inc()

    def take(self) -> asyncio.Task[str] | None:
        """The silence lasted: the turn's transcription, if one was started at the pause."""
        task, self.task = self.task, None
        if task is not None:
            self._counter.labels("used").inc()
        return task

    def close(self) -> None:
        """The connection is gone: nobody waits for its transcriptions (or held turn)."""
        self.drop()
        if self._stale is not None:
            self._stale.cancel()
