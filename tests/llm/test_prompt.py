"""Prompt building: system prompt, trimming, templates (pure functions, no model)."""

from __future__ import annotations

import pytest

from services.llm.prompt import (
    FEW_SHOT_ASSISTANT,
    ContextOverflow,
    Message,
    dialogue_language,
    for_strict_template,
    normalize,
    render_few_shot,
    trim_history,
    with_system_prompt,
)

SYS = Message("system", "短く答えて。")


def chars(messages: list[Message]) -> int:
    return sum(len(m.content) for m in messages)


def dialogue(turns: int) -> list[Message]:
    out = []
    for i in range(turns):
        out += [Message("user", f"質問{i:02d}"), Message("assistant", f"答え{i:02d}")]
    return out


def test_default_system_prompt_is_added_only_when_missing() -> None:
    user = [Message("user", "こんにちは")]
    assert with_system_prompt(user, "既定") == [Message("system", "既定"), *user]
    assert with_system_prompt([SYS, *user], "既定") == [SYS, *user]
    assert with_system_prompt(user, "") == user


def test_developer_role_is_system() -> None:
    assert normalize([Message("developer", "x")]) == [Message("system", "x")]


def test_trim_keeps_everything_that_fits() -> None:
    messages = [SYS, *dialogue(3), Message("user", "最後")]
    assert trim_history(messages, chars, 1000) == messages


def test_trim_drops_oldest_turns_first_never_system_or_last() -> None:
    messages = [SYS, *dialogue(5), Message("user", "最後の質問")]
    budget = len(SYS.content) + len("最後の質問") + 2 * 4 * 2  # room for two old turns
    kept = trim_history(messages, chars, budget)
    assert kept[0] == SYS
    assert kept[-1] == Message("user", "最後の質問")
    assert chars(kept) <= budget
    assert kept[1:-1] == dialogue(5)[-4:]  # the newest two exchanges survive, in order


def test_trim_never_leaves_an_assistant_turn_first() -> None:
    messages = [SYS, *dialogue(3), Message("user", "最後")]
    for budget in range(len(SYS.content) + 2, chars(messages)):
        kept = trim_history(messages, chars, budget)
        turns = [m for m in kept if m.role != "system"]
        assert turns[0].role == "user", budget


def test_trim_keeps_system_messages_in_the_middle() -> None:
    note = Message("system", "メモ")
    messages = [SYS, *dialogue(2), note, Message("user", "最後")]
    kept = trim_history(messages, chars, len(SYS.content) + len(note.content) + 2)
    assert kept == [SYS, note, Message("user", "最後")]


def test_trim_raises_when_the_last_message_alone_is_too_long() -> None:
    with pytest.raises(ContextOverflow):
        trim_history([SYS, Message("user", "あ" * 100)], chars, 50)


def test_strict_template_folds_system_and_merges_roles() -> None:
    messages = [
        SYS,
        Message("assistant", "いらっしゃいませ"),
        Message("user", "一"),
        Message("user", "二"),
        Message("assistant", "はい"),
        Message("user", "三"),
    ]
    assert for_strict_template(messages) == [
        {"role": "user", "content": "短く答えて。\n\n一\n二"},
        {"role": "assistant", "content": "はい"},
        {"role": "user", "content": "三"},
    ]


def test_few_shot_renders_one_line_per_turn_and_opens_the_reply() -> None:
    text = render_few_shot([SYS, Message("user", "元気？\nねえ"), Message("assistant", "元気")])
    lines = text.splitlines()
    assert lines[0] == SYS.content
    assert "ユーザー：元気？ ねえ" in lines  # a newline inside a turn would end the line
    assert lines[-2] == f"{FEW_SHOT_ASSISTANT}：元気"
    assert lines[-1] == f"{FEW_SHOT_ASSISTANT}："


def test_few_shot_dialogue_follows_the_language_of_the_last_user_message() -> None:
    english = render_few_shot([SYS, Message("user", "What is your\nfavourite food?")])
    lines = english.splitlines()
    assert lines[0] == SYS.content  # the system prompt is kept as given
    assert "User: What is your favourite food?" in lines
    assert lines[-1] == "Assistant:"  # no trailing space: the model writes "▁Word"
    assert "ユーザー" not in english
    assert dialogue_language([Message("user", "Hello"), Message("user", "東京はどう？")]) == "ja"
    assert dialogue_language([Message("user", "東京"), Message("user", "How is Tokyo?")]) == "en"
    assert dialogue_language([Message("user", "Tokyo タワー")]) == "ja"  # any kana or kanji
    assert dialogue_language([Message("user", "123!")]) == "ja"  # nothing to tell: the default
    assert dialogue_language([]) == "ja"


def test_trim_counts_a_long_history_only_a_few_times() -> None:
    calls = 0

    def counting(messages: list[Message]) -> int:
        nonlocal calls
        calls += 1
        return chars(messages)

    messages = [SYS, *dialogue(200), Message("user", "最後")]
    kept = trim_history(messages, counting, 100)
    assert chars(kept) <= 100 < chars(kept) + len("質問00") + len("答え00")  # dropped no more
    assert calls <= 12  # binary search, not one tokenization per dropped turn
