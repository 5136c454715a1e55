"""Properties of the pure parts that hostile or unlucky input reaches first.

Text normalisation (what TTS reads), history trimming (what the LLM sees) and
the gateway's history cleaning (what a client's startSession may carry): for
any input they must not raise and must keep their promises.
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.conversation import ROLES, clean_history
from services.llm.prompt import ContextOverflow, Message, trim_history
from services.tts import text as textproc

# Text that looks like what an LLM writes: Japanese and English words, markdown,
# URLs, emoji, symbols, digits and whitespace, mixed freely.
PIECES = st.sampled_from(
    [
        "こんにちは", "東京です", "。", "、", "！", "？", "Hello", "world", ".", ",", " ", "\n",
        "**", "*", "_", "__", "~~", "`", "```", "#", "## ", "> ", "- ", "1. ", "|", "---",
        "[link](http://x.example/a)", "![img](p.png)", "https://example.com/a?b=c",
        "www.example.org", "me@example.com", "<b>", "</b>", "😀", "👍🏽", "🇯🇵", "1️⃣", "\u200d",
        "$5", "¥100", "12:30", "2024/3/14", "3〜5", "-5", "A&B", "50%", "=", "+", "※", "\t",
        "\u3000", "\r\n", "Mr.", "e.g.", "3.14",
    ]
)  # fmt: skip
LLM_TEXT = st.lists(PIECES | st.text(max_size=5), max_size=40).map("".join)
ANY_TEXT = st.text(max_size=300) | LLM_TEXT
# Whole markdown constructs and the formats symbols are read in: a second clean-up
# must not change text cleaned once. (Symbol soup such as "-*0" is excluded: each
# symbol read as a space can form new markup, and nothing writes that.)
WELL_FORMED = st.lists(
    st.sampled_from(
        [
            "こんにちは",
            "東京です",
            "Hello",
            "world",
            "。",
            "、",
            "！",
            "？",
            ".",
            ",",
            " ",
            "\n",
            "**太字**",
            "__bold__",
            "~~消す~~",
            "`code`",
            "```\nx = 1\n```\n",
            "\n# 見出し\n",
            "\n> 引用\n",
            "\n- 項目\n",
            "\n1. 項目\n",
            "\n---\n",
            "[リンク](https://x.example/a)",
            "https://example.com/a",
            "😀",
            "👍🏽",
            "$5",
            "¥100",
            "12:30",
            "2024/3/14",
            "3〜5",
            "-5度",
            "A&B",
            "50%",
            "3.14",
            "Mr. Smith",
            "<b>x</b>",
        ]
    ),
    max_size=30,
).map("".join)
URL = re.compile(r"https?://|www\.", re.IGNORECASE)
MARKDOWN = re.compile(r"```|\*\*|__|~~|\]\(|^\s*#|^\s*>|^\s*[-*+]\s", re.MULTILINE)


@given(ANY_TEXT, st.sampled_from([None, "ja", "en"]))
@example("**太字**と[リンク](https://example.com)😀", None)
@example("-\\0", None)  # the backslash is read as a space: "- 0" looked like a list item
@settings(max_examples=300)
def test_normalize_never_raises_and_leaves_nothing_unspeakable(
    text: str, language: str | None
) -> None:
    out = textproc.normalize(text, language)
    assert isinstance(out, str)
    assert not URL.search(out), out
    assert not textproc._EMOJI.search(out), out
    assert not MARKDOWN.search(out), out
    assert "\r" not in out and "\t" not in out
    for line in out.split("\n") if out else []:
        assert line and line == line.strip(" \u3000")  # no empty or padded lines
        assert "  " not in line


@given(WELL_FORMED, st.sampled_from(["ja", "en"]))
@example("- - 項目", "ja")  # nested list markers
@example("-$5", "ja")  # the sign of an amount
@example("-😀-", "ja")  # emoji between markup
@settings(max_examples=300)
def test_normalize_is_idempotent(text: str, language: str) -> None:
    # TTS may see text the gateway already cleaned: cleaning twice must not change it.
    once = textproc.normalize(text, language)
    assert textproc.normalize(once, language) == once


@given(ANY_TEXT, st.integers(10, 200))
@settings(max_examples=300)
def test_split_sentences_gives_short_speakable_pieces(text: str, max_chars: int) -> None:
    cleaned = textproc.normalize(text)
    sentences = textproc.split_sentences(cleaned, max_chars)
    for s in sentences:
        assert s == s.strip() and textproc.is_speakable(s)
        assert len(s) <= max_chars
    # nothing speakable is lost: every letter and digit survives the split
    letters = [c for c in cleaned if textproc._SPEAKABLE.match(c)]
    assert [c for s in sentences for c in s if textproc._SPEAKABLE.match(c)] == letters


# --- history trimming (services/llm/prompt.py) ------------------------------------------

MESSAGES = st.lists(
    st.builds(
        Message,
        st.sampled_from(["system", "user", "assistant"]),
        st.text("あいうabc ", min_size=0, max_size=30),
    ),
    min_size=1,
    max_size=30,
)


def count(messages: list[Message]) -> int:
    return sum(len(m.content) + 4 for m in messages)  # a per-message overhead, like templates


@given(MESSAGES, st.integers(0, 600))
@settings(max_examples=500)
def test_trim_history(messages: list[Message], budget: int) -> None:
    try:
        out = trim_history(messages, count, budget)
    except ContextOverflow:
        # only when what must stay (system prompts and the last message) does not fit
        kept = [m for m in messages[:-1] if m.role == "system"] + [messages[-1]]
        assert count(kept) > budget
        return
    assert count(out) <= budget or out == messages
    assert out[-1] is messages[-1]
    assert [m for m in out if m.role == "system"] == [
        m for m in messages[:-1] if m.role == "system"
    ] + ([messages[-1]] if messages[-1].role == "system" else [])
    # order is kept, and what was dropped is the oldest turns
    positions = [next(i for i, m in enumerate(messages) if m is o) for o in out]
    assert positions == sorted(positions)
    dropped = [i for i in range(len(messages)) if i not in positions]
    if not dropped:
        return
    kept_turns = [i for i in positions if messages[i].role != "system"]
    if kept_turns:
        assert all(d < kept_turns[0] for d in dropped)
        # an answer never leads the dialogue once its question was dropped
        first = kept_turns[0]
        if messages[first].role == "assistant" and first != len(messages) - 1:
            assert messages[first - 1].role != "user"
    # and no more than needed was dropped: the newest dropped turn back would not fit
    newest = max(dropped)
    if messages[newest].role == "user":
        assert count([messages[i] for i in sorted([*positions, newest])]) > budget


# --- the gateway's startSession history (gateway/conversation.py) ----------------------

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
ENTRY = st.one_of(
    st.fixed_dictionaries(
        {
            "role": st.sampled_from([*ROLES, "tool", "", "System"]),
            "content": st.text(max_size=20) | st.sampled_from(["\ud800", "a\udfff", " \x85x"]),
        }
    ),
    st.fixed_dictionaries({"role": JSONISH, "content": JSONISH}),
    st.dictionaries(st.text(max_size=8), JSONISH, max_size=3),
    JSONISH,
)


@given(st.lists(ENTRY, max_size=40), st.integers(1, 20), st.integers(1, 30))
@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
def test_clean_history(raw: list[Any], max_messages: int, max_chars: int) -> None:
    out = clean_history(raw, max_messages, max_chars)

    def cut(content: str) -> str:  # what may be kept of one message
        return content[:max_chars].encode("utf-8", "replace").decode("utf-8")

    valid = [
        {"role": m["role"], "content": cut(m["content"])}
        for m in raw
        if isinstance(m, dict)
        and m.get("role") in ROLES
        and isinstance(m.get("content"), str)
        and cut(m["content"]).strip()
    ]
    for m in out:
        assert set(m) == {"role", "content"} and m["role"] in ROLES
        assert 0 < len(m["content"]) <= max_chars
        assert m["content"].strip(), "a message of only whitespace would reach the LLM"
        m["content"].encode("utf-8")  # no lone surrogate: it could not be sent on
    # the client's leading system prompt survives, then the newest messages, in order
    system = valid[:1] if valid and valid[0]["role"] == "system" else []
    assert out == system + valid[len(system) :][-max_messages:]
