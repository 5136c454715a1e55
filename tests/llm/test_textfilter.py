"""Spoken-style clean-up and stop strings, fed whole and in every split."""

from __future__ import annotations

import pytest

from services.llm.textfilter import SpokenFilter, StopMatcher, spoken


def stream_through(text: str, size: int) -> str:
    f = SpokenFilter()
    out = [f.feed(text[i : i + size]) for i in range(0, len(text), size)]
    return "".join(out) + f.flush()


CASES = [
    ("**東京**です。", "東京です。"),
    ("## 答え\n東京です😊", "答え\n東京です"),
    ("- りんご\n- みかん", "りんご\nみかん"),
    ("1. 最初\n2. 次", "最初\n次"),
    ("`code`と~~線~~", "codeと線"),
    ("  こんにちは👍🏻！", "こんにちは！"),
    ("2024年です。", "2024年です。"),
    ("3人です。", "3人です。"),
    ("- ", ""),
]


@pytest.mark.parametrize(("raw", "clean"), CASES)
def test_spoken_whole(raw: str, clean: str) -> None:
    assert spoken(raw) == clean


@pytest.mark.parametrize(("raw", "clean"), CASES)
@pytest.mark.parametrize("size", [1, 2, 3])
def test_spoken_streamed_in_pieces(raw: str, clean: str, size: int) -> None:
    assert stream_through(raw, size).strip() == clean


def test_spoken_filter_does_not_hold_plain_text_back() -> None:
    f = SpokenFilter()
    assert f.feed("今日は") == "今日は"
    assert f.feed("晴れ") == "晴れ"


@pytest.mark.parametrize("size", [1, 2, 5, 100])
def test_stop_matcher_cuts_before_stop_string(size: int) -> None:
    text = "はい。ユーザー：次の質問"
    m = StopMatcher(["ユーザー："])
    out = "".join(m.feed(text[i : i + size]) for i in range(0, len(text), size)) + m.flush()
    assert out == "はい。"
    assert m.stopped


def test_stop_matcher_releases_a_partial_match_that_did_not_complete() -> None:
    m = StopMatcher(["END"])
    assert m.feed("abcE") == "abc"
    assert m.feed("x") == "Ex"
    assert m.flush() == ""
    assert not m.stopped
