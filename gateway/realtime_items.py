"""``conversation.item.create`` and the user and system items a connection adds.

Items only ever go at the end: the server keeps one linear history (what the
LLM is sent), so there is no ``previous_item_id`` to insert after but the last.
Assistant items are a response's (:mod:`gateway.realtime_response`), and so is
``conversation.item.truncate``, which only applies to their audio.
"""

from __future__ import annotations

from typing import Any

from . import realtime_events as rt
from .realtime_link import RealtimeLink


def add_item(link: RealtimeLink, item_id: str, role: str, content: list[dict[str, Any]]) -> None:
    """Announce a finished item at the end of the conversation."""
    item = {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "role": role,
        "status": "completed",
        "content": content,
    }
    link.send({"type": "conversation.item.added", "previous_item_id": link.last_item, "item": item})
    link.send({"type": "conversation.item.done", "item": item})
    link.last_item = item_id


def create_item(link: RealtimeLink, event: rt.ItemCreate) -> None:
    """A text message from the client: into the history, as its item; else an error."""
    item, eid = event.item, event.event_id
    max_chars = link.hub.settings.max_text_chars
    if item.type != "message" or item.role not in ("user", "assistant", "system"):
        link.error(
            f"only message items from user, assistant or system are supported, "
            f"not {item.type!r}/{item.role!r}",
            "unsupported_value",
            "item",
            event_id=eid,
        )
        return
    if event.previous_item_id not in (None, link.last_item):
        link.error(
            "items can only be appended at the end of the conversation",
            "unsupported_value",
            "previous_item_id",
            event_id=eid,
        )
        return
    if any(p.type == "input_audio" for p in item.content):
        link.error(
            "audio content is not supported here; use input_audio_buffer.append",
            "unsupported_value",
            "item.content",
            event_id=eid,
        )
        return
    text = "".join(p.text or p.transcript or "" for p in item.content).strip()
    if not text or len(text) > max_chars:
        link.error(
            f"a message item needs text of 1 to {max_chars} characters",
            "invalid_value",
            "item.content",
            event_id=eid,
        )
        return
    link.conversation.history.append({"role": item.role, "content": text})
    content = [p.model_dump(exclude_none=True) for p in item.content]
    add_item(link, item.id or rt.new_id("item"), item.role, content)
