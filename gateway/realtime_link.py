"""What every part of one ``/v1/realtime`` connection shares.

The connection is split by concern (audio input, conversation items,
responses, session config), but one socket has one writer, one API version,
one current session and one conversation. They live here, so that each part
depends on this module and none on another part's internals.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from fastapi import WebSocket

from . import realtime_events as rt
from .conversation import Conversation
from .events import dumps
from .sender import FrameSender

if TYPE_CHECKING:
    from .hub import Hub

SEND_QUEUE_LIMIT = 4096  # audio deltas are many and small


class RealtimeLink:
    """One connection's writer and shared state: API version, session, conversation."""

    def __init__(self, ws: WebSocket, hub: Hub, *, beta: bool, model: str) -> None:
        self.hub, self.beta = hub, beta
        s = hub.settings
        self.out = FrameSender(ws, SEND_QUEUE_LIMIT)
        # Replaced, never mutated, by session.update: read it anew rather than keep it.
        self.session = rt.Session(model=model, language=s.language)
        self.conversation = Conversation(
            system_prompt=s.system_prompt,
            voice=hub.voice(None),
            language=s.language,
            paced=False,  # Realtime clients queue the audio deltas and play them in order
            reconnects=False,
        )
        self.last_item: str | None = None  # the newest item: the next one's previous_item_id
        # The latest transcription of committed audio: each waits for the one before, so
        # transcripts enter the history in commit order; response.create waits for it.
        self.transcribing: asyncio.Task[None] | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    # -- sending --------------------------------------------------------------
    def _encode(self, payload: dict[str, Any]) -> str | None:
        name: str | None = payload["type"]
        if self.beta and (name := rt.beta_name(payload["type"])) is None:
            return None
        return dumps({**payload, "type": name, "event_id": rt.new_id("event")})

    @property
    def closed(self) -> bool:
        return self.out.closed

    def send(self, payload: dict[str, Any], done: asyncio.Future[bool] | None = None) -> None:
        text = None if self.closed else self._encode(payload)
        if text is None and not self.closed:
            if done is not None:
                done.set_result(True)  # an event this client's API version has no name for
            return
        self.out.put(text or "", done)

    def send_all(self, payloads: list[dict[str, Any]]) -> None:
        for p in payloads:
            self.send(p)

    async def send_all_written(self, payloads: list[dict[str, Any]]) -> bool:
        """Queue ``payloads``; wait until the last is written (False: the socket is gone)."""
        if self.closed:
            return False
        if not payloads:
            return True
        self.send_all(payloads[:-1])
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.send(payloads[-1], done)
        return await done

    def error(self, message: str, code: str, param: str | None = None, **kw: Any) -> None:
        self.send(rt.error_event(message, code=code, param=param, **kw))

    # -- background work ------------------------------------------------------
    def spawn(self, coro: Any) -> asyncio.Task[None]:
        """A task that ends with the connection (``tasks`` are cancelled when it closes)."""
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task
