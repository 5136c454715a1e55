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
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import json
import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, WebSocket
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect

from . import realtime_events as rt
from .access import POLICY_VIOLATION, TRY_AGAIN_LATER, over_limit, refusal, session_slot
from .clients import UpstreamError
from .conversation import Conversation, same_text
from .events import TurnEvent, dumps
from .realtime_audio import VAD_RATE, InputResampler
from .realtime_response import Response
from .sender import FrameSender
from .settings import GatewaySettings
from .turn import Turn
from .vad import FRAME_MS, Kind, TurnDetector, VADEvent

if TYPE_CHECKING:
    from .hub import Hub

logger = logging.getLogger(__name__)
SEND_QUEUE_LIMIT = 4096  # audio deltas are many and small
MIN_COMMIT_MS = 100  # as the API: a shorter buffer cannot be committed
KEPT_RESPONSES = 32  # how far back conversation.item.truncate can reach


def _ms(pcm16k: int | bytes) -> int:
    n = pcm16k if isinstance(pcm16k, int) else len(pcm16k)
    return n * 1000 // (2 * VAD_RATE)


class _ResponsePort:
    """What a Turn sees as its connection: events are rendered against *its* response,
    so a late event of an earlier turn can never close the current one."""

    def __init__(self, conn: RealtimeConnection, response: Response) -> None:
        self.conn, self.response = conn, response

    @property
    def closed(self) -> bool:
        return self.conn.closed

    def notify(self, event: TurnEvent) -> None:
        self.conn.send_all(self.response.render(event))
        self.conn.response_rendered(self.response)

    async def deliver(self, event: TurnEvent) -> bool:
        ok = await self.conn.send_all_written(self.response.render(event))
        self.conn.response_rendered(self.response)
        return ok


class RealtimeConnection:
    def __init__(self, ws: WebSocket, hub: Hub, *, beta: bool, model: str) -> None:
        self.ws, self.hub, self.beta = ws, hub, beta
        s = hub.settings
        self._out = FrameSender(ws, SEND_QUEUE_LIMIT)
        self.session = rt.Session(model=model, language=s.language)
        self.conversation = Conversation(
            system_prompt=s.system_prompt,
            voice=hub.voice(None),
            language=s.language,
            paced=False,  # Realtime clients queue the audio deltas and play them in order
            reconnects=False,
        )
        self.detector = self._detector()
        self.resampler = InputResampler(self.session.input_rate)
        self._buffer = bytearray()  # 16 kHz PCM since the last commit
        self._fed = 0  # 16 kHz bytes received this session (for audio_*_ms)
        self._speech_item: str | None = None
        self._sustained = False  # the current utterance went on for barge_in_ms
        self._last_item: str | None = None
        self._response: Response | None = None
        self._responses: OrderedDict[str, Response] = OrderedDict()  # by assistant item id
        self._transcribing: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- sending --------------------------------------------------------------
    def _encode(self, payload: dict[str, Any]) -> str | None:
        name: str | None = payload["type"]
        if self.beta and (name := rt.beta_name(payload["type"])) is None:
            return None
        return dumps({**payload, "type": name, "event_id": rt.new_id("event")})

    @property
    def closed(self) -> bool:
        return self._out.closed

    def send(self, payload: dict[str, Any], done: asyncio.Future[bool] | None = None) -> None:
        text = None if self.closed else self._encode(payload)
        if text is None and not self.closed:
            if done is not None:
                done.set_result(True)  # an event this client's API version has no name for
            return
        self._out.put(text or "", done)

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

    # -- the session's life ------------------------------------------------------
    async def run(self) -> None:
        writer = asyncio.create_task(self._out.run(), name="realtime-writer")
        self.send({"type": "session.created", "session": self._session_object()})
        try:
            while not self.closed:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if message.get("text") is not None:
                    await self._on_text(message["text"])
                elif message.get("bytes") is not None:
                    self.error(
                        "binary frames are not part of the Realtime API; send audio as "
                        "base64 in input_audio_buffer.append",
                        code="invalid_event",
                    )
        except WebSocketDisconnect:
            pass
        finally:
            self._out.closed = True
            for task in self._tasks:
                task.cancel()
            turn = self.conversation.turn
            if turn is not None and not turn.finished:
                await turn.cancel()  # nobody will hear it: stop the LLM and TTS work
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _session_object(self) -> dict[str, Any]:
        p = self.hub.turn_params
        defaults = {
            "threshold": p.threshold,
            "prefix_padding_ms": p.pre_roll_ms,
            "silence_duration_ms": p.silence_end_ms,
        }
        return rt.session_object(self.session, self.beta, defaults)

    def _detector(self) -> TurnDetector:
        vad = self.session.vad
        params = self.hub.turn_params
        if vad is not None:
            params = dataclasses.replace(
                params,
                threshold=vad.threshold or params.threshold,
                pre_roll_ms=params.pre_roll_ms
                if vad.prefix_padding_ms is None
                else vad.prefix_padding_ms,
                silence_end_ms=vad.silence_duration_ms or params.silence_end_ms,
            )
        return TurnDetector(self.hub.vad, params)

    # -- client events ---------------------------------------------------------------
    async def _on_text(self, text: str) -> None:
        if len(text) > self.hub.settings.max_message_bytes:
            self.error(f"message too large ({len(text)} characters)", code="message_too_large")
            return
        try:
            data = json.loads(text)
        except ValueError:
            self.error("client events must be JSON", code="invalid_json")
            return
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            self.error("a JSON object with a 'type' field was expected", code="invalid_event")
            return
        name, event_id = data["type"], data.get("event_id")
        event_id = event_id if isinstance(event_id, str) else None
        if name not in rt.SUPPORTED:
            supported = ", ".join(sorted(rt.SUPPORTED))
            self.error(
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
            self.error(f"invalid {name}: {first['msg']}", "invalid_value", param, event_id=event_id)
            return
        await self._dispatch(event)

    async def _dispatch(self, event: rt.ClientEvent) -> None:
        eid = event.event_id
        if isinstance(event, rt.SessionUpdate):
            self._update_session(event)
        elif isinstance(event, rt.AudioAppend):
            await self._append(event.audio, eid)
        elif isinstance(event, rt.AudioCommit):
            self._commit_buffer(eid)
        elif isinstance(event, rt.AudioClear):
            self._buffer.clear()
            self.detector.reset()
            self._speech_item = None
            self.send({"type": "input_audio_buffer.cleared"})
        elif isinstance(event, rt.ItemCreate):
            self._create_item(event)
        elif isinstance(event, rt.ItemTruncate):
            self._truncate(event)
        elif isinstance(event, rt.ResponseCreate):
            if self._responding():
                self.error(
                    "a response is in progress; cancel it first",
                    "conversation_already_has_active_response",
                    event_id=eid,
                )
                return
            self._start_response()
        else:
            resp = self._response
            if resp is None or resp.done or event.response_id not in (None, resp.id):
                self.error(
                    "no active response to cancel", "response_cancel_not_active", None, event_id=eid
                )
                return
            await self._cancel(resp, "client_cancelled")

    def _update_session(self, event: rt.SessionUpdate) -> None:
        try:
            new = rt.apply_update(self.session, event.session)
        except rt.Unsupported as exc:
            self.error(str(exc), "unsupported_value", exc.param, event_id=event.event_id)
            return
        old, self.session = self.session, new
        if new.input_rate != old.input_rate:
            self.resampler = InputResampler(new.input_rate)
        if new.vad != old.vad:
            self.detector = self._detector()
            self._speech_item = None
        conv, s = self.conversation, self.hub.settings
        conv.system_prompt = new.instructions or s.system_prompt
        # The SDKs' stock names ("alloy") are none of ours: they get the server's default.
        conv.voice = self.hub.voice(None if new.voice in rt.OPENAI_VOICES else new.voice)
        conv.language = new.language or s.language
        self.send({"type": "session.updated", "session": self._session_object()})

    # -- audio in -------------------------------------------------------------------
    async def _append(self, audio: str, event_id: str | None) -> None:
        try:
            raw = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            self.error("audio is not valid base64", "invalid_value", "audio", event_id=event_id)
            return
        pcm = self.resampler.feed(raw)
        self._fed += len(pcm)
        self._buffer += pcm
        limit = int(self.hub.settings.max_utterance_s * 2 * VAD_RATE)
        if len(self._buffer) > limit:
            if self.session.vad is None:
                self.error(
                    f"input audio buffer over {self.hub.settings.max_utterance_s:.0f} s; "
                    "its oldest audio was dropped",
                    "input_audio_buffer_full",
                    event_id=event_id,
                )
            del self._buffer[: len(self._buffer) - limit]
        if self.session.vad is not None:
            for ev in self.detector.feed(pcm):
                await self._on_vad(ev)

    async def _on_vad(self, ev: VADEvent) -> None:
        vad = self.session.vad
        assert vad is not None
        if ev.kind is Kind.SPEECH_START:
            self._speech_item = rt.new_id("item")
            self._sustained = False
            p = self.detector.params
            start = _ms(self._fed) - p.pre_roll_ms - p.speech_start_ms - FRAME_MS
            self.send(
                {
                    "type": "input_audio_buffer.speech_started",
                    "audio_start_ms": max(0, int(start)),
                    "item_id": self._speech_item,
                }
            )
        elif ev.kind is Kind.SUSTAINED:
            # Barge-in after barge_in_ms of speech, as /ws does: a short "うん" cancels nothing.
            self._sustained = True
            resp = self._response
            if vad.interrupt_response and resp is not None and not resp.done:
                await self._cancel(resp, "turn_detected")
        elif ev.kind is Kind.SPEECH_END:
            item = self._speech_item or rt.new_id("item")
            self._speech_item = None
            self.send(
                {
                    "type": "input_audio_buffer.speech_stopped",
                    "audio_end_ms": _ms(self._fed),
                    "item_id": item,
                }
            )
            self._buffer.clear()
            turn = self.conversation.turn
            # A reply already sent may still be playing at the client (the turn estimates it).
            playing = turn is not None and turn.live and not turn.interrupted
            short = not self._sustained
            if vad.interrupt_response and short and (self._responding() or playing):
                return  # too short to interrupt the reply: a backchannel, as on /ws
            respond = vad.create_response and not self._responding()
            self._commit(item, ev.audio, respond=respond)

    def _commit_buffer(self, event_id: str | None) -> None:
        if _ms(len(self._buffer)) < MIN_COMMIT_MS:
            self.error(
                f"buffer too small: expected at least {MIN_COMMIT_MS} ms of audio, "
                f"but the buffer has {_ms(len(self._buffer))} ms",
                "input_audio_buffer_commit_empty",
                event_id=event_id,
            )
            return
        pcm = bytes(self._buffer)
        self._buffer.clear()
        self.detector.reset()  # the committed audio must not end a VAD turn later
        item, self._speech_item = self._speech_item or rt.new_id("item"), None
        self._commit(item, pcm, respond=False)

    def _commit(self, item_id: str, pcm: bytes, *, respond: bool) -> None:
        self.send(
            {
                "type": "input_audio_buffer.committed",
                "item_id": item_id,
                "previous_item_id": self._last_item,
            }
        )
        content = [{"type": "input_audio", "transcript": None}]
        self._add_item(item_id, "user", content)
        if respond:
            self._start_response(audio=pcm, user_item=item_id)
        else:
            self._transcribe(item_id, pcm)

    def _add_item(self, item_id: str, role: str, content: list[dict[str, Any]]) -> None:
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": role,
            "status": "completed",
            "content": content,
        }
        self.send(
            {"type": "conversation.item.added", "previous_item_id": self._last_item, "item": item}
        )
        self.send({"type": "conversation.item.done", "item": item})
        self._last_item = item_id

    def _transcribe(self, item_id: str, pcm: bytes) -> None:
        """Transcripts of committed audio enter the history in commit order."""
        previous = self._transcribing
        self._transcribing = self._spawn(self._transcribe_item(item_id, pcm, previous))

    async def _transcribe_item(
        self, item_id: str, pcm: bytes, previous: asyncio.Task[None] | None
    ) -> None:
        try:
            text = (await self.hub.upstreams.transcribe(pcm, self.conversation.language)).strip()
        except UpstreamError as exc:
            error = {"type": "server_error", "code": "asr_error", "message": exc.message}
            self.send(
                {
                    "type": "conversation.item.input_audio_transcription.failed",
                    "item_id": item_id,
                    "content_index": 0,
                    "error": error,
                }
            )
            return
        if previous is not None:
            await asyncio.wait({previous})
        if text:
            self.conversation.history.append({"role": "user", "content": text})
        self.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": text,
                "usage": {"type": "duration", "seconds": round(len(pcm) / (2 * VAD_RATE), 3)},
            }
        )

    # -- conversation items -----------------------------------------------------------
    def _create_item(self, event: rt.ItemCreate) -> None:
        item, eid = event.item, event.event_id
        if item.type != "message" or item.role not in ("user", "assistant", "system"):
            self.error(
                f"only message items from user, assistant or system are supported, "
                f"not {item.type!r}/{item.role!r}",
                "unsupported_value",
                "item",
                event_id=eid,
            )
            return
        if event.previous_item_id not in (None, self._last_item):
            self.error(
                "items can only be appended at the end of the conversation",
                "unsupported_value",
                "previous_item_id",
                event_id=eid,
            )
            return
        if any(p.type == "input_audio" for p in item.content):
            self.error(
                "audio content is not supported here; use input_audio_buffer.append",
                "unsupported_value",
                "item.content",
                event_id=eid,
            )
            return
        text = "".join(p.text or p.transcript or "" for p in item.content).strip()
        if not text or len(text) > self.hub.settings.max_text_chars:
            self.error(
                f"a message item needs text of 1 to {self.hub.settings.max_text_chars} characters",
                "invalid_value",
                "item.content",
                event_id=eid,
            )
            return
        self.conversation.history.append({"role": item.role, "content": text})
        content = [p.model_dump(exclude_none=True) for p in item.content]
        self._add_item(item.id or rt.new_id("item"), item.role, content)

    def _truncate(self, event: rt.ItemTruncate) -> None:
        resp = self._responses.get(event.item_id)
        if resp is None or event.content_index != 0:
            self.error(
                f"no assistant audio item {event.item_id!r} (content_index 0) to truncate",
                "item_not_found",
                "item_id",
                event_id=event.event_id,
            )
            return
        if event.audio_end_ms > resp.audio_ms + 1:
            self.error(
                f"audio_end_ms {event.audio_end_ms} is beyond the item's audio "
                f"({resp.audio_ms:.0f} ms)",
                "invalid_value",
                "audio_end_ms",
                event_id=event.event_id,
            )
            return
        resp.truncate_ms = event.audio_end_ms
        if resp.settled:
            self._apply_truncation(resp)
        self.send(
            {
                "type": "conversation.item.truncated",
                "item_id": event.item_id,
                "content_index": 0,
                "audio_end_ms": event.audio_end_ms,
            }
        )

    # -- responses -----------------------------------------------------------------
    def _responding(self) -> bool:
        return self._response is not None and not self._response.done

    def _start_response(self, *, audio: bytes | None = None, user_item: str | None = None) -> None:
        resp = Response(self.session, self.beta, user_item=user_item, previous_item=self._last_item)
        self._response = resp
        self._last_item = resp.item_id
        self._responses[resp.item_id] = resp
        while len(self._responses) > KEPT_RESPONSES:
            self._responses.popitem(last=False)
        self.send({"type": "response.created", "response": resp.resource("in_progress")})
        if audio is not None:
            self._launch(resp, audio=audio)
        else:
            resp.starter = self._spawn(self._start_typed(resp))

    async def _start_typed(self, resp: Response) -> None:
        """response.create: respond to the last user message, once transcripts are in."""
        if self._transcribing is not None:
            await asyncio.wait({self._transcribing})  # not cancelled with us: it is the user's
        history = self.conversation.history
        if not history or history[-1]["role"] != "user":
            resp.error = {
                "type": "invalid_request_error",
                "code": "no_user_input",
                "message": "nothing to respond to: the conversation does not end with a user "
                "message (commit audio or create a user item first)",
            }
            self.send({"type": "error", "error": {**resp.error, "param": None, "event_id": None}})
            self.send_all(resp.finish("failed"))
            self.response_rendered(resp)
            return
        self._launch(resp, text=history[-1]["content"])

    def _launch(
        self, resp: Response, *, audio: bytes | None = None, text: str | None = None
    ) -> None:
        s, conv = self.hub.settings, self.conversation
        limit = self.session.max_output_tokens
        turn = Turn(
            conv,
            self.hub.upstreams,
            audio=audio,
            text=text,
            language=conv.language,
            max_tokens=s.max_tokens if limit == "inf" else min(limit, s.max_tokens),
            first_clause_chars=s.first_clause_chars,
            grace_s=s.adopt_grace_s,
            on_done=lambda t: self._turn_done(resp, t),
        )
        resp.turn = turn
        conv.turn = turn
        turn.attach(_ResponsePort(self, resp))
        turn.start()

    def response_rendered(self, resp: Response) -> None:
        if resp.done and not resp.item_started and self._last_item == resp.item_id:
            self._last_item = resp.previous_item  # no assistant item was added after all

    def _turn_done(self, resp: Response, turn: Turn) -> None:
        self.hub.turn_done(turn)  # metrics, as for /ws turns
        if not turn.interrupted:  # an interrupted turn records its history after this
            self._settle(resp)

    async def _cancel(self, resp: Response, reason: str) -> None:
        resp.cancel_reason = reason
        if resp.starter is not None and not resp.starter.done():
            resp.starter.cancel()
            await asyncio.wait({resp.starter})
        if resp.turn is not None:
            await resp.turn.interrupt()  # notifies "interrupted": response.done, cancelled
        if not resp.done:
            self.send_all(resp.finish("cancelled"))
            self.response_rendered(resp)
        self._settle(resp)

    def _settle(self, resp: Response) -> None:
        """Once the turn recorded its exchange: find its history entry, apply truncation."""
        if resp.settled:
            return
        resp.settled = True
        history = self.conversation.history
        turn = resp.turn
        if turn is not None and history and history[-1]["role"] == "assistant":
            said = "".join(turn.spoken) if turn.interrupted else turn.reply
            if said and same_text(history[-1]["content"], said):
                resp.history_entry = history[-1]
        self._apply_truncation(resp)

    def _apply_truncation(self, resp: Response) -> None:
        entry = resp.history_entry
        if resp.truncate_ms is None or entry is None:
            return
        heard = resp.heard(resp.truncate_ms)
        history = self.conversation.history
        if heard:
            entry["content"] = heard
        else:
            history[:] = [m for m in history if m is not entry]


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
