"""``/v1/realtime``: a subset of the OpenAI Realtime API over the same turns as ``/ws``.

One socket is one session: audio in (resampled to 16 kHz for the shared
Silero :class:`~gateway.vad.TurnDetector`), one :class:`Conversation`, and
one response at a time, each a :class:`~gateway.turn.Turn` whose events
:mod:`gateway.realtime_response` renders. Realtime clients queue audio
themselves and never reconnect mid-turn, so the turn runs unpaced and waits
for no handover. Its turns are not in ``hub.turns``: a LocalChatVRM client
whose history happened to match must not adopt another client's reply.

Beta or GA event names: the beta protocol is chosen by the ``OpenAI-Beta:
realtime=v1`` header (the SDK's ``client.beta.realtime``) or the
``openai-beta.realtime-v1`` subprotocol (browsers cannot set headers);
anything else gets the GA names.

The connection itself only reads client events and hands each to the part
that owns it: :mod:`gateway.realtime_input` (the audio buffer, server VAD,
transcripts), :mod:`gateway.realtime_items` (``conversation.item.create``),
:mod:`gateway.realtime_responder` (responses, truncation) and
:mod:`gateway.realtime_config` (``session.update``); what they share, the
writer included, is a :class:`~gateway.realtime_link.RealtimeLink`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING

from fastapi import FastAPI, WebSocket
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect

from . import realtime_events as rt
from .access import POLICY_VIOLATION, TRY_AGAIN_LATER, over_limit, refusal, session_slot
from .events import dumps
from .realtime_config import session_object, update_session
from .realtime_input import InputAudio
from .realtime_items import create_item
from .realtime_link import RealtimeLink
from .realtime_responder import Responder
from .settings import GatewaySettings

if TYPE_CHECKING:
    from .hub import Hub


class RealtimeConnection:
    """One ``/v1/realtime`` socket: its receive loop and the dispatch of client events."""

    def __init__(self, ws: WebSocket, hub: Hub, *, beta: bool, model: str) -> None:
        self.ws = ws
        self.link = RealtimeLink(ws, hub, beta=beta, model=model)
        self.responder = Responder(self.link)
        self.input = InputAudio(self.link, self.responder)

    async def run(self) -> None:
        link = self.link
        writer = asyncio.create_task(link.out.run(), name="realtime-writer")
        link.send({"type": "session.created", "session": session_object(link)})
        try:
            while not link.closed:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if message.get("text") is not None:
                    await self._on_text(message["text"])
                elif message.get("bytes") is not None:
                    link.error(
                        "binary frames are not part of the Realtime API; send audio as "
                        "base64 in input_audio_buffer.append",
                        code="invalid_event",
                    )
        except WebSocketDisconnect:
            pass
        finally:
            link.out.closed = True
            self.input.close()
            for task in link.tasks:
                task.cancel()
            turn = link.conversation.turn
            if turn is not None and not turn.finished:
                await turn.cancel()  # nobody will hear it: stop the LLM and TTS work
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer

    # -- client events ---------------------------------------------------------------
    async def _on_text(self, text: str) -> None:
        error = self.link.error
        if len(text) > self.link.hub.settings.max_message_bytes:
            error(f"message too large ({len(text)} characters)", code="message_too_large")
            return
        try:
            data = json.loads(text)
        except ValueError:
            error("client events must be JSON", code="invalid_json")
            return
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            error("a JSON object with a 'type' field was expected", code="invalid_event")
            return
        name, event_id = data["type"], data.get("event_id")
        event_id = event_id if isinstance(event_id, str) else None
        if name not in rt.SUPPORTED:
            supported = ", ".join(sorted(rt.SUPPORTED))
            error(
                f"unsupported event type {name!r}; this server implements: {supported}",
                code="unsupported_event",
                param="type",
                event_id=event_id,
            )
            return
        try:
            event = rt.client_event.validate_python(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            param = ".".join(str(part) for part in first["loc"][1:]) or None
            error(f"invalid {name}: {first['msg']}", "invalid_value", param, event_id=event_id)
            return
        await self._dispatch(event)

    async def _dispatch(self, event: rt.ClientEvent) -> None:
        eid = event.event_id
        if isinstance(event, rt.SessionUpdate):
            update_session(self.link, self.input, event)
        elif isinstance(event, rt.AudioAppend):
            await self.input.append(event.audio, eid)
        elif isinstance(event, rt.AudioCommit):
            self.input.commit(eid)
        elif isinstance(event, rt.AudioClear):
            self.input.clear()
        elif isinstance(event, rt.ItemCreate):
            create_item(self.link, event)
        elif isinstance(event, rt.ItemTruncate):
            self.responder.truncate(event)
        elif isinstance(event, rt.ResponseCreate):
            self.responder.create(eid)
        else:
            await self.responder.cancel_requested(event)


# -- the route --------------------------------------------------------------------------
def _offered(websocket: WebSocket) -> list[str]:
    return list(websocket.scope.get("subprotocols") or [])


def register_realtime(app: FastAPI, settings: GatewaySettings) -> None:
    """Add ``/v1/realtime`` with the same origin, token and session-limit checks as ``/ws``."""

    @app.websocket("/v1/realtime")
    async def realtime(websocket: WebSocket) -> None:
        hub: Hub = websocket.app.state.hub
        offered = _offered(websocket)
        # Browsers cannot set headers: the OpenAI convention carries the key and the beta
        # flag as subprotocols, next to "realtime", which the server must then select.
        key = next(
            (p.split(".", 1)[1] for p in offered if p.startswith("openai-insecure-api-key.")), None
        )
        reason = refusal(settings, websocket, key)
        if reason:
            await websocket.close(code=POLICY_VIOLATION, reason=reason)
            return
        subprotocol = "realtime" if "realtime" in offered else None
        beta = "realtime=v1" in websocket.headers.get("openai-beta", "") or (
            "openai-beta.realtime-v1" in offered
        )
        if over_limit(hub, websocket):
            await websocket.accept(subprotocol=subprotocol)
            error = rt.error_event("too many sessions", code="session_limit", type="server_error")
            await websocket.send_text(dumps({**error, "event_id": rt.new_id("event")}))
            await websocket.close(code=TRY_AGAIN_LATER)
            return
        await websocket.accept(subprotocol=subprotocol)
        model = websocket.query_params.get("model") or "koe"
        async with session_slot(hub, websocket):
            await RealtimeConnection(websocket, hub, beta=beta, model=model[:64]).run()
