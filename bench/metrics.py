"""Error rates for asserting on real transcripts."""

from __future__ import annotations

import re
import unicodedata

import jiwer


def _chars(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return re.sub(r"[\s\W_]+", "", text)


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate, ignoring punctuation and spaces (for Japanese)."""
    ref, hyp = _chars(reference), _chars(hypothesis)
    return float(jiwer.cer(ref, hyp)) if hyp else 1.0


def _words(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower().replace("-", " ")
    text = re.sub(r"[^\w\s']", " ", text)
    return " ".join(text.split())


def wer(references: list[str], hypotheses: list[str]) -> float:
    """Word error rate over all pairs, case and punctuation ignored."""
    return float(jiwer.wer([_words(r) for r in references], [_words(h) for h in hypotheses]))
