"""Text made speakable: pure functions, no model."""

from __future__ import annotations

import pytest

from services.tts.text import (
    detect_language,
    is_speakable,
    normalize,
    read_symbols,
    split_sentences,
    strip_markup,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("# 見出し", "見出し"),
        ("**太字**と*斜体*と~~取消~~", "太字と斜体と取消"),
        ("[リンク](https://example.com)を見て", "リンクを見て"),
        ("![図](a.png)です", "図です"),
        ("- 一つ目\n- 二つ目", "一つ目\n二つ目"),
        ("1. 最初\n2) 次", "最初\n次"),
        ("> 引用です", "引用です"),
        ("`code`を実行", "codeを実行"),
        ("前\n```python\nprint(1)\n```\n後", "前\n \n後"),
        ("詳細は https://example.com/a?b=1 まで", "詳細は   まで"),
        ("www.example.com へ", "  へ"),
        ("連絡は foo@example.com へ", "連絡は   へ"),
        ("楽しい😀🎉ね👍🏻", "楽しいね"),
        ("家族👨‍👩‍👧です", "家族です"),
        ("<b>太字</b>", " 太字 "),
    ],
)
def test_strip_markup(raw: str, expected: str) -> None:
    assert strip_markup(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12:30に集合", "12時30分に集合"),
        ("10:00~12:00", "10時から12時"),
        ("2024/3/14に", "2024年3月14日に"),
        ("1〜3個", "1から3個"),
        ("気温は-5度", "気温はマイナス5度"),
        ("3-5", "3-5"),
        ("価格は$5.5です", "価格は5.5ドルです"),
        ("¥1,000", "1,000円"),
        ("A&B", "AアンドB"),
        ("1+2=3", "1プラス2イコール3"),
        ("※注意", " 注意"),
        ("#タグ", " タグ"),
    ],
)
def test_read_symbols(raw: str, expected: str) -> None:
    assert read_symbols(raw) == expected


def test_normalize_collapses_whitespace_and_drops_empty_lines() -> None:
    text = "# タイトル\n\n  **今日**は　　晴れ 😀 です。\n\n- https://x.y\n"
    assert normalize(text) == "タイトル\n今日は 晴れ です。"


def test_normalize_keeps_numbers_for_the_reader() -> None:
    # OpenJTalk reads these well itself; rewriting them would only risk mistakes.
    assert normalize("1,234円と3.14と50%") == "1,234円と3.14と50%"


def test_only_emoji_and_punctuation_leaves_nothing() -> None:
    assert split_sentences(normalize("😀🎉！！？…")) == []
    assert not is_speakable("、。！？")
    assert is_speakable("あ")
    assert is_speakable("7")


def test_split_on_japanese_and_ascii_terminators() -> None:
    text = "こんにちは。元気ですか？はい！Yes. OK!本当?"
    assert split_sentences(text) == [
        "こんにちは。",
        "元気ですか？",
        "はい！",
        "Yes.",
        "OK!",
        "本当?",
    ]


def test_split_keeps_closers_and_repeated_marks_with_their_sentence() -> None:
    assert split_sentences("「本当？！」と彼は言った。えっ…そう") == [
        "「本当？！」",
        "と彼は言った。",
        "えっ…そう",
    ]


def test_split_does_not_break_decimals() -> None:
    assert split_sentences("円周率は3.14です。次へ") == ["円周率は3.14です。", "次へ"]


def test_split_on_newlines() -> None:
    assert split_sentences("一行目\n二行目\n\n三行目") == ["一行目", "二行目", "三行目"]


def test_long_sentences_are_cut_at_commas_then_hard() -> None:
    text = "あ" * 50 + "、" + "い" * 50 + "、" + "う" * 50 + "。"
    pieces = split_sentences(text, max_chars=120)
    assert pieces == ["あ" * 50 + "、" + "い" * 50 + "、", "う" * 50 + "。"]
    run_on = split_sentences("か" * 250, max_chars=100)
    assert [len(p) for p in run_on] == [100, 100, 50]


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("こんにちは", "ja"),
        ("ChatGPTを使います", "ja"),
        ("東京", "ja"),
        ("Hello, how are you?", "en"),
        ("12345", "ja"),
    ],
)
def test_detect_language(text: str, language: str) -> None:
    assert detect_language(text) == language


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Meet at 10:00.", "Meet at 10 o'clock."),
        ("At 12:05 or 9:30", "At 12 oh 5 or 9:30"),  # espeak-ng reads 9:30 well itself
        ("From 10:00~12:00", "From 10 o'clock to 12 o'clock"),
        ("It costs $5.50, $1 or $1,000.", "It costs 5 dollars 50, 1 dollar or 1,000 dollars."),
        ("£3.00 and ¥500", "3 pounds and 500 yen"),
        ("A&B, 1+2=3", "A and B, 1 plus 2 equals 3"),
        ("#tag and snake_case", "tag and snake case"),
        ("-5 degrees, 50%, 3.14", "-5 degrees, 50%, 3.14"),  # the voice reads these
    ],
)
def test_english_symbols_are_read_in_english(raw: str, expected: str) -> None:
    assert normalize(raw) == expected
    assert normalize(raw, "en") == expected


def test_japanese_symbol_words_do_not_leak_into_english() -> None:
    # Detected before symbols are read: "A&B" would otherwise become "AアンドB", i.e. Japanese.
    assert detect_language(normalize("Tom & Jerry at 12:30")) == "en"
    assert normalize("A&B 12:30", "ja") == "AアンドB 12時30分"


def test_english_full_stops_inside_words_and_after_titles_do_not_split() -> None:
    text = "Mr. Smith met Dr. Jones, e.g. at 3.5 km. See file.txt now... Really!"
    assert split_sentences(text) == [
        "Mr. Smith met Dr. Jones, e.g. at 3.5 km.",
        "See file.txt now...",
        "Really!",
    ]


def test_text_without_letters_takes_the_default_language() -> None:
    assert detect_language("12:30", default="en") == "en"
    assert detect_language("12:30こ", default="en") == "ja"
