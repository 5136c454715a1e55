"""Replies written at once, taking turns on one model (the transformers backends).

One thread owns the model and gives one model step at a time to a reply in
progress: its prompt first (what its kept prompt cache lacks), then a token
at a time. Whose step it is: the oldest reply that has not yet written
``HEAD_START`` tokens, else the replies take turns a token each. So a short
reply is written at full speed as if alone (as one at a time would), and a
request that comes while a long reply is under way has its first clause
written at once instead of after that reply has ended; past their head start,
N replies get 1/N of the tokens per second each. On the embedded model on 2
CPU cores, a question asked 0.8 s into an 80-token reply had its first words
after 0.5-0.7 s instead of 2.8-3.2 s.

On a CPU a step is bound by reading the weights, so N replies could share one
batched step; taking turns keeps each reply's own key/value cache (and the
prompt caches) as they are, and is exact: with greedy decoding a reply is the
same tokens whether it was written alone or beside others (sampled replies
draw from one random stream, so those differ as any two samples do).
"""

from __future__ import annotations

import collections
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .engine import GenerationParams
from .token_stream import TokenStreamer

# Tokens a reply writes before it takes turns with the others: a first clause and more
# (the gateway speaks a reply from its first clause on), or all of a short reply.
HEAD_START = 16


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
    arrival: int = 0  # its place in the order the replies came in


class TurnTaking:
    """The line of replies in progress and the thread that gives each its turns.

    ``advance(reply)`` runs one turn and says whether the reply is over; it must
    not raise (a failure ends that reply, not the thread).
    """

    def __init__(
        self, advance: Callable[[Reply], bool], name: str, head_start: int = HEAD_START
    ) -> None:
        self._advance = advance
        self.head_start = head_start
        self._name = name
        self._line: collections.deque[Reply] = collections.deque()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._arrivals = itertools.count()

    def add(self, reply: Reply) -> None:
        with self._wake:
            reply.arrival = next(self._arrivals)
            self._line.append(reply)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._wake.notify()

    def __len__(self) -> int:
        return len(self._line)

    def _next(self) -> Reply:
        """The oldest reply still within its head start, else the first in line."""
        starting = [r for r in self._line if len(r.generated) < self.head_start]
        if starting:
            reply = min(starting, key=lambda r: r.arrival)
            self._line.remove(reply)
            return reply
        return self._line.popleft()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._line:
                    self._wake.wait()
                reply = self._next()
            if not self._advance(reply):
                with self._wake:
                    self._line.append(reply)
