"""A conversation: the history and settings a client declared, and its one live turn."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .turn import Turn

ROLES = ("system", "user", "assistant")


def clean_history(raw: list[dict[str, Any]], max_messages: int, max_chars: int) -> list[dict]:
    """Keep well-formed ``{role, content}`` entries; trim long ones and old ones.

    The client's log is trusted for content, not for shape: anything else is
    dropped rather than failing the session.
    """
    out = []
    for m in raw:
        if not isinstance(m, dict):
            continue
        role, content = m.get("role"), m.get("content")
        if not isinstance(content, str):
            continue
        content = content[:max_chars]  # before the check: a cut can leave only whitespace
        # a lone surrogate ("\ud800" in the JSON) cannot be sent on to the LLM as UTF-8
        content = content.encode("utf-8", "replace").decode("utf-8")
        if role in ROLES and content.strip():
            out.append({"role": role, "content": content})
    system = [m for m in out[:1] if m["role"] == "system"]
    rest = out[len(system) :]
    return system + rest[-max_messages:]


def same_text(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


@dataclass
class Conversation:
    history: list[dict[str, str]] = field(default_factory=list)
    system_prompt: str | None = None
    voice: str | None = None
    one_wav: bool = False
    language: str = "ja"
    paced: bool = True  # False: the client queues audio itself (streamAudio)
    reconnects: bool | None = None  # does this client reconnect per chat-log change?
    turn: Turn | None = None

    def llm_messages(self, user_text: str) -> list[dict[str, str]]:
        """History plus the new user message, with the system prompt when the client sent none."""
        messages = list(self.history)
        if self.system_prompt and not (messages and messages[0]["role"] == "system"):
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        if not (
            messages
            and messages[-1]["role"] == "user"
            and same_text(messages[-1]["content"], user_text)
        ):
            messages.append({"role": "user", "content": user_text})
        return messages

    def record(self, user_text: str, assistant_text: str) -> None:
        """Append a finished turn, unless the client's own log already holds it."""
        if not user_text.strip():
            return  # nothing was heard (or the turn was cut during ASR): nothing to keep
        tail = self.history[-2:]
        roles = [m["role"] for m in tail]
        if roles == ["user", "assistant"] and same_text(tail[0]["content"], user_text):
            return
        if not (
            self.history
            and self.history[-1]["role"] == "user"
            and same_text(self.history[-1]["content"], user_text)
        ):
            self.history.append({"role": "user", "content": user_text})
        if assistant_text:
            self.history.append({"role": "assistant", "content": assistant_text})
