"""Glue between the generating thread and an async caller: :class:`TokenStreamer`
decodes a reply's tokens as they come and hands its new text over."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class TokenStreamer:
    """Passes the text a reply's tokens add to ``emit`` (from the model's thread)."""

    def __init__(self, tokenizer: Any, emit: Callable[[str], None], stop_at_newline: bool) -> None:
        self.tokenizer = tokenizer
        self.emit = emit
        self.stop_at_newline = stop_at_newline
        self.sent = 0
        self.hit_newline = False

    def push(self, ids: list[int], final: bool = False) -> None:
        """The reply's tokens so far (``final``: all of them)."""
        if self.hit_newline:
            return
        # Re-decoding the whole reply keeps multi-token characters intact (replies are short).
        # A reply never starts with a space ("Assistant: Hello" is written "▁Hello").
        text = self.tokenizer.decode(ids, skip_special_tokens=True).lstrip(" ")
        if self.stop_at_newline and "\n" in text:
            text, self.hit_newline = text[: text.index("\n")], True
        elif not final and text.endswith("\ufffd"):
            return  # half of a UTF-8 character (byte-fallback tokens): wait for the rest
        if len(text) > self.sent:
            self.emit(text[self.sent :])
            self.sent = len(text)
