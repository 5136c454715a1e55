"""Turning a conversation into a prompt: system prompt, history trimming, templates.

All pure functions, so the rules (never drop the system prompt, never the last
turn) are unit-tested without a model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from services.common.language import detect_language


@dataclass(frozen=True)
class Message:
    """One turn as the engines see it: role is system, user or assistant."""

    role: str
    content: str


class ContextOverflow(ValueError):
    """Even the system prompt and the last message alone do not fit the context."""


def normalize(messages: Sequence[Message]) -> list[Message]:
    """Map OpenAI's ``developer`` role to ``system``."""
    return [Message("system" if m.role == "developer" else m.role, m.content) for m in messages]


def with_system_prompt(messages: Sequence[Message], system_prompt: str) -> list[Message]:
    """Prepend ``system_prompt`` unless the conversation brings its own (or it is empty)."""
    if not system_prompt or any(m.role == "system" for m in messages):
        return list(messages)
    return [Message("system", system_prompt), *messages]


def trim_history(
    messages: Sequence[Message], count_tokens: Callable[[list[Message]], int], budget: int
) -> list[Message]:
    """Drop the oldest non-system turns until ``count_tokens(result) <= budget``.

    System messages and the last message are always kept; a dialogue that
    would then start with an assistant turn loses that turn too, so templates
    that insist on user-first alternation still render. Raises
    :class:`ContextOverflow` if what must be kept does not fit.
    """
    messages = list(messages)
    if count_tokens(messages) <= budget:
        return messages
    droppable = [i for i, m in enumerate(messages[:-1]) if m.role != "system"]

    def without_oldest(k: int) -> list[Message]:
        gone = set(droppable[:k])
        rest = droppable[k:]
        if rest and messages[rest[0]].role == "assistant":
            gone.add(rest[0])  # its question is gone: the answer would lead the dialogue
        return [m for i, m in enumerate(messages) if i not in gone]

    if count_tokens(without_oldest(len(droppable))) > budget:
        raise ContextOverflow(f"the last message and system prompt need more than {budget} tokens")
    # Binary search for the fewest turns to drop: each count renders and tokenizes the
    # whole prompt, so a long history costs a handful of counts, not one per turn.
    low, high = 1, len(droppable)
    while low < high:
        mid = (low + high) // 2
        if count_tokens(without_oldest(mid)) <= budget:
            high = mid
        else:
            low = mid + 1
    return without_oldest(low)


def for_strict_template(messages: Sequence[Message]) -> list[dict[str, str]]:
    """Messages for chat templates without a system role that demand user/assistant alternation.

    Gemma 2's template raises on a system message; the usual workaround is to
    put the system prompt at the top of the first user turn. Consecutive turns
    of one role are merged, and a leading assistant turn is dropped.
    """
    system = "\n".join(m.content for m in messages if m.role == "system")
    turns: list[dict[str, str]] = []
    for m in messages:
        if m.role == "system":
            continue
        if turns and turns[-1]["role"] == m.role:
            turns[-1]["content"] += "\n" + m.content
        else:
            turns.append({"role": m.role, "content": m.content})
    while turns and turns[0]["role"] == "assistant":
        turns.pop(0)
    if system:
        if turns:
            turns[0]["content"] = f"{system}\n\n{turns[0]['content']}"
        else:
            turns.append({"role": "user", "content": system})
    return turns


# A base model continues text; a short dialogue in the target style makes the
# continuation an assistant line, which ends at the newline (the engine stops there).
# The dialogue is in the language of the user's last message: after Japanese examples the
# model answered English speech in Japanese, or echoed it back.
@dataclass(frozen=True)
class FewShot:
    user: str
    assistant: str
    separator: str
    intro: str
    examples: tuple[tuple[str, str], ...]


FEW_SHOT_USER = "ユーザー"
FEW_SHOT_ASSISTANT = "アシスタント"
FEW_SHOT_EXAMPLES: tuple[tuple[str, str], ...] = (
    ("こんにちは。", "こんにちは。今日はどんなお話をしましょうか。"),
    ("日本の首都はどこですか？", "日本の首都は東京です。"),
    ("おすすめの飲み物を教えて。", "温かい緑茶はいかがでしょうか。"),
)
FEW_SHOT = {
    "ja": FewShot(
        FEW_SHOT_USER,
        FEW_SHOT_ASSISTANT,
        "：",
        "以下は、ユーザーとアシスタントの会話です。",
        FEW_SHOT_EXAMPLES,
    ),
    "en": FewShot(
        "User",
        "Assistant",
        ": ",
        "The following is a conversation between a user and an assistant.",
        (
            ("Hello.", "Hello. What would you like to talk about today?"),
            ("What is the capital of Japan?", "The capital of Japan is Tokyo."),
            ("What should I drink?", "How about a cup of warm green tea?"),
        ),
    ),
}


def dialogue_language(messages: Sequence[Message]) -> str:
    """'en' if the last user message is English (Latin letters, no kana or kanji), else 'ja'."""
    return detect_language(next((m.content for m in reversed(messages) if m.role == "user"), ""))


def _one_line(text: str) -> str:
    # A newline inside a turn would end the line the model is taught to write.
    return " ".join(text.split())


def render_few_shot(messages: Sequence[Message]) -> str:
    """Render a conversation as a plain dialogue ending with an open assistant line.

    The reply line opens with the speaker's name and colon and no space: a trailing
    space would be a token of its own, where the model writes "▁Word"; the engine drops
    the space it writes first.
    """
    shot = FEW_SHOT[dialogue_language(messages)]
    system = " ".join(_one_line(m.content) for m in messages if m.role == "system")
    lines = [system or shot.intro, ""]
    for user, reply in shot.examples:
        lines += [f"{shot.user}{shot.separator}{user}", f"{shot.assistant}{shot.separator}{reply}"]
    for m in messages:
        if m.role != "system":
            speaker = shot.user if m.role == "user" else shot.assistant
            lines.append(f"{speaker}{shot.separator}{_one_line(m.content)}")
    lines.append(f"{shot.assistant}{shot.separator.rstrip()}")
    return "\n".join(lines)
