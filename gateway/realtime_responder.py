"""A connection's responses: one at a time, each a :class:`~gateway.turn.Turn`.

A response starts from committed audio (the turn transcribes it) or, on
``response.create``, from the last user message once pending transcripts are
in. Cancelling interrupts its turn; once the turn has recorded its exchange,
the response finds that history entry, so ``conversation.item.truncate`` can
cut it back to what the user heard, even after the turn ended.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from . import realtime_events as rt
from .conversation import same_text
from .events import TurnEvent
from .realtime_audio import VAD_RATE
from .realtime_link import RealtimeLink
from .realtime_response import Response
from .turn import Turn

KEPT_RESPONSES = 32  # how far back conversation.item.truncate can reach


class _ResponsePort:
    """What a Turn sees as its connection: events are rendered against *its* response,
    so a late event of an earlier turn can never close the current one."""

    def __init__(self, responder: Responder, response: Response) -> None:
        self.responder, self.response = responder, response

    @property
    def closed(self) -> bool:
        return self.responder.link.closed

    def notify(self, event: TurnEvent) -> None:
        self.responder.link.send_all(self.response.render(event))
        self.responder.rendered(self.response)

    async def deliver(self, event: TurnEvent) -> bool:
        ok = await self.responder.link.send_all_written(self.response.render(event))
        self.responder.rendered(self.response)
        return ok


class Responder:
    """Starts, cancels and settles the connection's responses; one is current at a time."""

    def __init__(self, link: RealtimeLink) -> None:
        self.link = link
        self.current: Response | None = None
        self._by_item: OrderedDict[str, Response] = OrderedDict()  # by assistant item id

    def responding(self) -> bool:
        return self.current is not None and not self.current.done

    # -- client events ----------------------------------------------------------
    def create(self, event_id: str | None) -> None:
        """``response.create``."""
        if self.responding():
            self.link.error(
                "a response is in progress; cancel it first",
                "conversation_already_has_active_response",
                event_id=event_id,
            )
            return
        self.start()

    async def cancel_requested(self, event: rt.ResponseCancel) -> None:
        """``response.cancel``: the current response, if it is the one named."""
        resp = self.current
        if resp is None or resp.done or event.response_id not in (None, resp.id):
            self.link.error(
                "no active response to cancel",
                "response_cancel_not_active",
                None,
                event_id=event.event_id,
            )
            return
        await self.cancel(resp, "client_cancelled")

    def truncate(self, event: rt.ItemTruncate) -> None:
        """``conversation.item.truncate`` of an assistant item's audio."""
        resp = self._by_item.get(event.item_id)
        if resp is None or event.content_index != 0:
            self.link.error(
                f"no assistant audio item {event.item_id!r} (content_index 0) to truncate",
                "item_not_found",
                "item_id",
                event_id=event.event_id,
            )
            return
        if event.audio_end_ms > resp.audio_ms + 1:
            self.link.error(
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
        self.link.send(
            {
                "type": "conversation.item.truncated",
                "item_id": event.item_id,
                "content_index": 0,
                "audio_end_ms": event.audio_end_ms,
            }
        )

    # -- a response's life ------------------------------------------------------------
    def start(
        self,
        *,
        audio: bytes | None = None,
        user_item: str | None = None,
        transcript: asyncio.Future[str] | None = None,
        held: Turn | None = None,
    ) -> None:
        """A response to ``audio`` (committed as ``user_item``; ``transcript``: its
        transcription if one was started at a pause; ``held``: the turn already started on
        that transcription, see :meth:`new_turn`), else to the last user text."""
        link = self.link
        resp = Response(
            link.session,
            link.beta,
            user_item=user_item,
            # the committed audio: a held turn's own is the speech up to the pause only
            input_s=len(audio or b"") / (2 * VAD_RATE),
            previous_item=link.last_item,
        )
        self.current = resp
        link.last_item = resp.item_id
        self._by_item[resp.item_id] = resp
        while len(self._by_item) > KEPT_RESPONSES:
            self._by_item.popitem(last=False)
        link.send({"type": "response.created", "response": resp.resource("in_progress")})
        if held is not None:
            self._launch(resp, held)
            held.commit()
        elif audio is not None:
            self._launch(resp, self.new_turn(audio=audio, transcript=transcript))
        else:
            resp.starter = link.spawn(self._start_typed(resp))

    async def _start_typed(self, resp: Response) -> None:
        """response.create: respond to the last user message, once transcripts are in."""
        link = self.link
        if link.transcribing is not None:
            await asyncio.wait({link.transcribing})  # not cancelled with us: it is the user's
        history = link.conversation.history
        if not history or history[-1]["role"] != "user":
            resp.error = {
                "type": "invalid_request_error",
                "code": "no_user_input",
                "message": "nothing to respond to: the conversation does not end with a user "
                "message (commit audio or create a user item first)",
            }
            link.send({"type": "error", "error": {**resp.error, "param": None, "event_id": None}})
            link.send_all(resp.finish("failed"))
            self.rendered(resp)
            return
        self._launch(resp, self.new_turn(text=history[-1]["content"]))

    def new_turn(
        self,
        *,
        audio: bytes | None = None,
        text: str | None = None,
        transcript: asyncio.Future[str] | None = None,
        held: bool = False,
    ) -> Turn:
        """A turn of this connection's conversation, not started. A ``held`` one is started
        by the caller before its response exists: its LLM writes, its synthesis and events
        wait for :meth:`start` to launch and commit it."""
        hub, limit = self.link.hub, self.link.session.max_output_tokens
        return Turn.configured(
            self.link.conversation,
            hub.upstreams,
            hub.settings,
            audio=audio,
            text=text,
            transcript=transcript,
            max_tokens=None if limit == "inf" else limit,
            held=held,
        )

    def _launch(self, resp: Response, turn: Turn) -> None:
        turn.on_done = lambda t: self._turn_done(resp, t)
        resp.turn = turn
        self.link.conversation.turn = turn
        turn.attach(_ResponsePort(self, resp))
        if not turn.held:
            turn.start()  # a held one is running already

    def rendered(self, resp: Response) -> None:
        """After each batch of ``resp``'s events went out."""
        link = self.link
        if resp.done and not resp.item_started and link.last_item == resp.item_id:
            link.last_item = resp.previous_item  # no assistant item was added after all

    def _turn_done(self, resp: Response, turn: Turn) -> None:
        self.link.hub.turn_done(turn)  # metrics, as for /ws turns
        if not turn.interrupted:  # an interrupted turn records its history after this
            self._settle(resp)

    async def cancel(self, resp: Response, reason: str) -> None:
        resp.cancel_reason = reason
        if resp.starter is not None and not resp.starter.done():
            resp.starter.cancel()
            await asyncio.wait({resp.starter})
        if resp.turn is not None:
            await resp.turn.interrupt()  # notifies "interrupted": response.done, cancelled
        if not resp.done:
            self.link.send_all(resp.finish("cancelled"))
            self.rendered(resp)
        self._settle(resp)

    # -- truncation ----------------------------------------------------------------
    def _settle(self, resp: Response) -> None:
        """Once the turn recorded its exchange: find its history entry, apply truncation."""
        if resp.settled:
            return
        resp.settled = True
        history = self.link.conversation.history
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
        history = self.link.conversation.history
        if heard:
            entry["content"] = heard
        else:
            history[:] = [m for m in history if m is not entry]
