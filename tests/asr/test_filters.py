from services.asr.engine import Segment
from services.asr.filters import clean_segments, join_text
from services.asr.subtitles import to_srt, to_vtt


def test_stock_hallucinations_are_dropped() -> None:
    segs = [
        Segment(0, 1, " ご視聴ありがとうございました。"),
        Segment(1, 2, " Thanks for watching!"),
        Segment(2, 3, " こんにちは。"),
        Segment(3, 4, " 。"),
    ]
    kept = clean_segments(segs)
    assert [s.text for s in kept] == ["こんにちは。"]


def test_low_confidence_silence_is_dropped_but_confident_speech_kept() -> None:
    segs = [
        Segment(0, 1, "えーと", no_speech_prob=0.9, avg_logprob=-1.5),
        Segment(1, 2, "はい", no_speech_prob=0.9, avg_logprob=-0.2),
    ]
    assert [s.text for s in clean_segments(segs)] == ["はい"]


def test_join_uses_no_space_for_japanese() -> None:
    segs = [Segment(0, 1, "一つ目。"), Segment(1, 2, "二つ目。")]
    assert join_text(segs, "ja") == "一つ目。二つ目。"
    assert join_text([Segment(0, 1, "One."), Segment(1, 2, "Two.")], "en") == "One. Two."


def test_subtitles() -> None:
    segs = [Segment(0.0, 1.5, " Hello."), Segment(61.25, 3723.004, " World.")]
    assert to_srt(segs) == (
        "1\n00:00:00,000 --> 00:00:01,500\nHello.\n\n2\n00:01:01,250 --> 01:02:03,004\nWorld.\n"
    )
    assert to_vtt(segs).startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello.\n")
