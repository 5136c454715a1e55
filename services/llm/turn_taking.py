"""Replies written at once, taking turns a token each (the transformers backends).

One thread owns the model. Each reply in progress gets one model step in
turn: its prompt first (what its kept prompt cache lacks), then a token at a
time. A new reply goes to the front of the line, so its first words come
after at most one token of each reply already being written, instead of after
those replies have ended; each of N replies then gets 1/N of the tokens per
second. On a CPU a step is bound by reading the weights, so N replies could
share one batched step; taking turns keeps each reply's own key/value cache
(and the prompt caches) as they are, and is exact: a reply is the same tokens
whether it was written alone or beside others.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .engine import GenerationParams
from .token_stream import TokenStreamer


@dataclass(eq=False)
class Reply:
    """One reply being written; the model's thread alone touches its cache and tokens."""

    ids: list[int]  # the rendered prompt
    params: GenerationParams
    streamer: TokenStreamer
    emit: Callable[[object], None]  # to the caller's event loop: text, an exception, the end
    finished: Callable[[], None]  # called once the model is done with this reply
    cancel: threading.Event = field(default_factory=threading.Event)
    cache: Any = None  # its key/value cache, from its first turn on
    processors: Any = None
    generated: list[int] = field(default_factory=list)


class TurnTaking:
    """The line of replies in progress and the thread that gives each its turns.

    ``advance(reply)`` runs one turn and says whether the reply is over; it must
    not raise (a failure ends that reply, not the thread).
    """

    def __init__(self, advance: Callable[[Reply], bool], name: str) -> None:
        self._advance = advance
        self._name = name
        self._line: collections.deque[Reply] = collections.deque()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, reply: Reply) -> None:
        with self._wake:
            self._line.appendleft(reply)  # first in line: its prompt goes next
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._wake.notify()

    def __len__(self) -> int:
        return len(self._line)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._line:
                    self._wake.wait()
                reply = self._line.popleft()
            if not self._advance(reply):
                with self._wake:
                    self._line.append(reply)
