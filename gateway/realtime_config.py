"""``session.update`` and the session resource, on one connection.

:func:`gateway.realtime_events.apply_update` turns an update into a new
:class:`~gateway.realtime_events.Session`; this applies that session to what
follows from it: the input resampler and turn detector, and the
conversation's prompt, voice and language, which the next turn reads.
"""

from __future__ import annotations

from typing import Any

from . import realtime_events as rt
from .realtime_input import InputAudio
from .realtime_link import RealtimeLink


def session_object(link: RealtimeLink) -> dict[str, Any]:
    """The session as ``session.created``/``session.updated`` carry it: the server's VAD
    parameters fill in what the client's ``turn_detection`` left out."""
    p = link.hub.turn_params
    defaults = {
        "threshold": p.threshold,
        "prefix_padding_ms": p.pre_roll_ms,
        "silence_duration_ms": p.silence_end_ms,
    }
    return rt.session_object(link.session, link.beta, defaults)


def update_session(link: RealtimeLink, audio_in: InputAudio, event: rt.SessionUpdate) -> None:
    """``session.update``: all of it applies, or (an unsupported value) none of it."""
    try:
        new = rt.apply_update(link.session, event.session)
    except rt.Unsupported as exc:
        link.error(str(exc), "unsupported_value", exc.param, event_id=event.event_id)
        return
    old, link.session = link.session, new
    audio_in.session_changed(old, new)
    conv, s = link.conversation, link.hub.settings
    conv.system_prompt = new.instructions or s.system_prompt
    # The SDKs' stock names ("alloy") are none of ours: they get the server's default.
    conv.voice = link.hub.voice(None if new.voice in rt.OPENAI_VOICES else new.voice)
    conv.language = new.language or s.language
    link.send({"type": "session.updated", "session": session_object(link)})
