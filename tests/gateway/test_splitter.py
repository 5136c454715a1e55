"""Sentence splitting of a streamed reply: Japanese and English, fed in any pieces."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.splitter import SentenceSplitter, split_sentences


def streamed(text: str, cuts: list[int], **kwargs: int) -> list[str]:
    s = SentenceSplitter(**kwargs)
    out, last = [], 0
    for cut in sorted(set(cuts)) + [len(text)]:
        out += list(s.feed(text[last:cut]))
        last = cut
    return out + list(s.flush())


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        (
            "こんにちは。今日はいい天気ですね！散歩に行きましょうか？",
            ["こんにちは。", "今日はいい天気ですね！", "散歩に行きましょうか？"],
        ),
        (
            "Hello there. It costs 3.5 dollars. Really?! Yes, sure.",
            ["Hello there.", "It costs 3.5 dollars.", "Really?!", "Yes, sure."],
        ),
        ("「本当？」と彼は言った。「行こう！」", ["「本当？」と彼は言った。", "「行こう！」"]),
        ("はい。そうです。", ["はい。そうです。"]),  # too short alone: joined
        ("候補は二つです。1番目は東京です。", ["候補は二つです。", "1番目は東京です。"]),
        ("一行目です\n二行目です", ["一行目です", "二行目です"]),
        # a quotation over two sentences stays whole with what follows it
        ("「今日は晴れ。明日は雨。」と言った。", ["「今日は晴れ。", "明日は雨。」と言った。"]),
        ("彼は“行こう。”と言った。", ["彼は“行こう。”と言った。"]),
    ],
)
def test_split(text: str, pieces: list[str]) -> None:
    assert split_sentences(text) == pieces
    # streamed one character at a time, the same
    assert streamed(text, list(range(len(text)))) == pieces


def test_japanese_full_stop_goes_out_without_waiting_for_the_next_token() -> None:
    s = SentenceSplitter()
    assert list(s.feed("今日はいい天気ですね。")) == ["今日はいい天気ですね。"]
    assert list(s.feed("散歩に")) == []
    assert list(s.feed("行きましょう。")) == ["散歩に行きましょう。"]
    # once a reply quotes, a sentence may go on past its 。 (「…。」と): wait and see
    s = SentenceSplitter()
    assert list(s.feed("彼は「行こう。")) == []
    assert list(s.feed("」と言った。")) == []
    assert list(s.feed("はい")) == ["彼は「行こう。」と言った。"]
    # too short alone still waits to be joined; ？ and ！ still wait for a following ！ or ？
    assert list(SentenceSplitter().feed("はい。")) == []
    assert list(SentenceSplitter().feed("本当ですか？")) == []


def test_first_piece_may_end_at_a_comma() -> None:
    text = "日本で一番高い山は、富士山です。次の山は、北岳です。"
    assert split_sentences(text, first_clause_chars=8) == [
        "日本で一番高い山は、",
        "富士山です。",
        "次の山は、北岳です。",
    ]
    assert split_sentences("はい、そうです。", first_clause_chars=8) == ["はい、そうです。"]


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


@given(
    st.text(alphabet="あいうえおカキ漢字abc 。、！？!?.,\n3", max_size=80),
    st.lists(st.integers(0, 80), max_size=10),
    st.sampled_from([0, 8]),
)
def test_pieces_cover_the_text_in_order(text: str, cuts: list[int], clause: int) -> None:
    pieces = streamed(text, [c for c in cuts if c <= len(text)], first_clause_chars=clause)
    assert all(p.strip() for p in pieces)
    assert _squash("".join(pieces)) == _squash(text)


def test_first_english_piece_may_end_before_a_conjunction() -> None:
    text = "I am not sure if I can come. And you?"
    assert split_sentences(text, first_clause_chars=8) == [
        "I am not sure",
        "if I can come.",
        "And you?",
    ]
    long = "Mr. Dashwood had a sense of duty and he was kind to the people who were with him."
    assert split_sentences(long, first_clause_chars=8) == [
        "Mr. Dashwood had a sense of duty",
        "and he was kind to the people who were with him.",
    ]
    # only the first piece; too short before the conjunction; not inside a word
    assert split_sentences("Yes and no.", first_clause_chars=8) == ["Yes and no."]
    assert split_sentences("I like the android app a lot.", first_clause_chars=8) == [
        "I like the android app a lot."
    ]
    assert split_sentences("I am not sure if I can.", first_clause_chars=0) == [
        "I am not sure if I can."
    ]


def test_conjunction_cut_waits_for_the_whole_word() -> None:
    text = "We walked back home and then slept."
    pieces = streamed(text, [20, 21, 22, 23, 24], first_clause_chars=8)
    assert pieces == ["We walked back home", "and then slept."]
    assert streamed("We walked back home andromeda.", [23, 24], first_clause_chars=8) == [
        "We walked back home andromeda."
    ]
    # a list of names is not a clause
    assert split_sentences("Tom and Jerry and Mickey went out.", first_clause_chars=8) == [
        "Tom and Jerry and Mickey went out."
    ]


def test_first_japanese_piece_may_end_after_a_particle() -> None:
    text = "私は毎日駅前の公園を散歩しています。朝は空気が冷たいです。"
    expected = ["私は毎日駅前の公園を", "散歩しています。", "朝は空気が冷たいです。"]
    assert split_sentences(text, first_clause_chars=8) == expected
    # streamed one character at a time: the cut waits for the word after the particle
    assert streamed(text, list(range(len(text))), first_clause_chars=8) == expected
    assert split_sentences(text, first_clause_chars=0) == [
        "私は毎日駅前の公園を散歩しています。",
        "朝は空気が冷たいです。",
    ]
    # は and を may end a phrase before hiragana too
    assert split_sentences("マレーシアの首都はどこですか？", first_clause_chars=8) == [
        "マレーシアの首都は",
        "どこですか？",
    ]
    for whole in (
        "今日の東京はとても暑いですね。",  # は before と: maybe 「はと」, not a phrase end
        "東京と大阪と名古屋の天気です。",  # と and の join nouns
        "こんにちはお元気ですか。",  # は inside a word
        "とても長い道が曲がりくねっています。",  # が, に, で before hiragana: maybe a verb's
        "小さなペットが死にました。",
        "難しい日本語の勉強ができます。",
        "一番のお気に入りの曲です。",  # に starts set phrases: 気に入る, に関して
        "会議の日程は前もってお知らせします。",  # も, へ, は inside words
        "昨日の大雨で大へんなことになりました。",
        "来週の旅行の手はずを整えました。",
        "今日の公園で大はしゃぎしました。",
        "日曜日の我が家はとても静かです。",
    ):
        assert split_sentences(whole, first_clause_chars=8) == [whole]


def test_a_compound_topic_particle_ends_a_japanese_phrase() -> None:
    # は after に, で, から, まで: the reply's topic, then what is said about it
    for text, first in (
        ("北海道には美しい自然がたくさんあります。", "北海道には"),
        ("アメリカでは英語が話されています。", "アメリカでは"),
        ("東京駅からはバスで行けます。", "東京駅からは"),
        ("京都までは新幹線で二時間です。", "京都までは"),
        ("東京にはたくさんの有名な観光スポットがあります。", "東京には"),
        # から, まで, より between content words: a phrase ends too
        ("寿司は江戸時代から続く伝統的な料理です。", "寿司は江戸時代から"),
        ("東京駅まで歩いて十分です。", "東京駅まで"),
    ):
        assert split_sentences(text, first_clause_chars=4) == [first, text[len(first) :]]
        assert streamed(text, list(range(len(text))), first_clause_chars=4)[0] == first
    for whole in (
        "彼は学生ではありません。",  # ではない, ではありません: one predicate
        "これは問題ではないです。",
        "それではまた明日会いましょう。",  # それでは: no content word before it
        "壁にはしごを立てかけました。",  # は opens a word: はしご
        "それからまた会いましょう。",  # から after hiragana: それから, だから
    ):
        assert split_sentences(whole, first_clause_chars=4) == [whole]


def test_a_hungry_listener_lets_a_later_piece_end_at_a_clause() -> None:
    s = SentenceSplitter(first_clause_chars=8)
    assert list(s.feed("今日はいい天気ですね。")) == ["今日はいい天気ですね。"]
    # after the first piece, whole sentences (the default, hungry None)
    assert list(s.feed("明日は雨が降るそうですが、傘を")) == []
    # the listener is about to run out of audio: the clause goes now
    s.hungry = True
    assert list(s.feed("持って")) == ["明日は雨が降るそうですが、"]
    s.hungry = False
    assert list(s.feed("いきましょう、念のため")) == []
    assert list(s.flush()) == ["傘を持っていきましょう、念のため"]


def test_a_listener_with_audio_to_play_keeps_even_the_first_piece_whole() -> None:
    s = SentenceSplitter(first_clause_chars=8)
    s.hungry = False
    assert list(s.feed("Well, he thought that it was not prudent, and ")) == []


def test_a_short_clause_threshold_lets_a_word_start_the_reply() -> None:
    # what the gateway does for a voice fast enough that the next piece is ready in time
    assert split_sentences("Yes, he was.", first_clause_chars=1) == ["Yes,", "he was."]
    assert split_sentences("Yes, he was.", first_clause_chars=8) == ["Yes, he was."]


def test_a_comma_at_the_end_of_the_text_so_far_cuts_without_waiting_for_the_next_token() -> None:
    # The token after "Yes," would only show the space: the cut goes out a token sooner.
    s = SentenceSplitter(first_clause_chars=1)
    assert list(s.feed("Yes,")) == ["Yes,"]
    assert list(s.feed(" he was.")) == []
    assert list(s.flush()) == ["he was."]
    s = SentenceSplitter(first_clause_chars=5)
    assert list(s.feed("そうですね、")) == ["そうですね、"]
    # too short for the threshold, after a digit ("3,000"), or inside a quotation: wait
    assert list(SentenceSplitter(first_clause_chars=5).feed("はい、")) == []
    assert list(SentenceSplitter(first_clause_chars=1).feed("It is 3,")) == []
    assert list(SentenceSplitter(first_clause_chars=1).feed('"Yes,')) == []
    assert streamed("It is 3,000 yen.", [6, 8], first_clause_chars=1) == ["It is 3,000 yen."]
