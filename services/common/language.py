"""Which language a text is in, for the two the server speaks: Japanese and English."""

from __future__ import annotations

import re

_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f々〆]")
_LATIN = re.compile(r"[A-Za-zＡ-Ｚａ-ｚ]")


def detect_language(text: str, default: str = "ja") -> str:
    """``"ja"`` if the text has any kana or kanji, ``"en"`` if it has Latin letters only.

    Japanese with English words in it ("ChatGPTを使う") is Japanese: the
    OpenJTalk frontend reads the words in katakana. Text with no letters at all
    ("42", "12:30") is ``default``: any voice reads digits in its own language.
    """
    if _JAPANESE.search(text):
        return "ja"
    return "en" if _LATIN.search(text) else default
