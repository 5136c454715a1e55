"""Keep Whisper's stock hallucinations out of transcripts.

On silence, noise or music Whisper tends to "hear" the end credits of the
videos it was trained on. The VAD gate stops most of it before the model
runs; what slips through is dropped here, segment by segment.
"""

from __future__ import annotations

import re
import unicodedata

from .engine import Segment

# Compared after normalise(): lower case, no punctuation, no spaces.
_PHRASES = """
ご視聴ありがとうございました
ご視聴ありがとうございます
ご覧いただきありがとうございます
ご覧いただきありがとうございました
最後までご視聴ありがとうございました
最後までご視聴いただきありがとうございました
チャンネル登録お願いします
チャンネル登録よろしくお願いします
チャンネル登録をお願いします
高評価チャンネル登録よろしくお願いします
次回もお楽しみに
字幕視聴ありがとうございました
おやすみなさいご視聴ありがとうございました
thank you for watching
thanks for watching
thank you so much for watching
please subscribe
please subscribe to my channel
like and subscribe
subtitles by the amaraorg community
transcription by castingwords
"""
HALLUCINATIONS = frozenset(
    re.sub(r"\s+", "", p) for p in _PHRASES.strip().splitlines() if p.strip()
)
_DROP = re.compile(r"[\s\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    return _DROP.sub("", unicodedata.normalize("NFKC", text).lower())


def is_hallucination(segment: Segment, no_speech_threshold: float = 0.6) -> bool:
    key = normalise(segment.text)
    if not key:
        return True
    if key in HALLUCINATIONS:
        return True
    # Whisper's own verdict: it thinks this window was silence and is unsure of the words.
    return segment.no_speech_prob > no_speech_threshold and segment.avg_logprob < -1.0


def clean_segments(segments: list[Segment]) -> list[Segment]:
    """Drop hallucinated segments and strip the rest."""
    kept = []
    for seg in segments:
        if is_hallucination(seg):
            continue
        text = seg.text.strip()
        kept.append(Segment(seg.start, seg.end, text, seg.no_speech_prob, seg.avg_logprob))
    return kept


def join_text(segments: list[Segment], language: str) -> str:
    # Japanese and Chinese do not put spaces between sentences.
    sep = "" if language in ("ja", "zh") else " "
    return sep.join(s.text for s in segments if s.text).strip()
