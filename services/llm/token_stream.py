"""Glue between ``model.generate`` (in a worker thread) and an async caller.

:class:`TokenStreamer` decodes tokens as they come and hands text over;
:class:`CancelCriteria` ends generation at the next token once an event is set.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import torch
from transformers import StoppingCriteria
from transformers.generation.streamers import BaseStreamer


class CancelCriteria(StoppingCriteria):
    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
    ) -> Any:
        return torch.full((input_ids.shape[0],), self.event.is_set(), device=input_ids.device)


class TokenStreamer(BaseStreamer):
    """Decodes new tokens incrementally and passes text to ``emit`` (from the generate thread)."""

    def __init__(self, tokenizer: Any, emit: Callable[[str], None], stop_at_newline: bool) -> None:
        self.tokenizer = tokenizer
        self.emit = emit
        self.stop_at_newline = stop_at_newline
        self.ids: list[int] = []
        self.sent = 0
        self.prompt_seen = False
        self.hit_newline = False
        self.on_token: Callable[[int], None] = lambda n: None

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:  # generate() first hands over the prompt
            self.prompt_seen = True
            return
        new = value.reshape(-1).tolist()
        self.on_token(len(new))
        self.ids.extend(new)
        self._push(final=False)

    def end(self) -> None:
        self._push(final=True)

    def _push(self, final: bool) -> None:
        if self.hit_newline:
            return
        # Re-decoding the whole reply keeps multi-token characters intact (replies are short).
        # A reply never starts with a space ("Assistant: Hello" is written "▁Hello").
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True).lstrip(" ")
        if self.stop_at_newline and "\n" in text:
            text, self.hit_newline = text[: text.index("\n")], True
        elif not final and text.endswith("\ufffd"):
            return  # half of a UTF-8 character (byte-fallback tokens): wait for the rest
        if len(text) > self.sent:
            self.emit(text[self.sent :])
            self.sent = len(text)
