"""Cut a streamed reply into sentences, so each can be spoken as soon as it is complete.

Knows Japanese (。！？ and their half-width forms, 」 after them) and English
(. ! ? followed by a space or the end; not inside "3.5" or "e.g." mid-word)
punctuation, and newlines. A sentence shorter than ``min_chars`` waits to be
joined with the next (「はい。」 alone makes a choppy first WAV), and whatever is
left when the stream ends is flushed.

The first piece of a reply is special: the voice cannot start before it is
synthesized, and synthesis time grows with its length. So, with
``first_clause_chars`` set, the first piece may also end at a clause comma
(、，,) once it is that long; later pieces are whole sentences, which read
more naturally.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

# A sentence ends at a terminator (plus closing quotes/brackets), or at a newline.
_END = re.compile(
    r"""(?:[。．！？!?]+|…+|\.(?=\s|$))[」』）)\]"'”’]*|\n+""",
)
_CLAUSE = re.compile(r"[、，](?=.)|,(?=\s+\S)")
_CLOSERS = "」』）)]\"'”’"
_QUOTATIVE = ("と", "って")


class SentenceSplitter:
    def __init__(self, min_chars: int = 4, first_clause_chars: int = 0) -> None:
        self.min_chars = min_chars
        self.first_clause_chars = first_clause_chars
        self._first = True
        self._buffer = ""

    def feed(self, text: str) -> Iterator[str]:
        """Add streamed text; yield every sentence it completes."""
        self._buffer += text
        while True:
            sentence = self._take()
            if sentence is None:
                return
            yield sentence

    def flush(self) -> Iterator[str]:
        """The rest of the text, once the stream has ended."""
        rest, self._buffer = self._buffer.strip(), ""
        if rest:
            yield rest

    def _take(self) -> str | None:
        piece = self._take_clause() if self._first and self.first_clause_chars else None
        if piece is None:
            piece = self._take_sentence()
        if piece is not None:
            self._first = False
        return piece

    def _take_clause(self) -> str | None:
        """The first clause, if a long enough one ends before any sentence does."""
        for match in _CLAUSE.finditer(self._buffer):
            if _END.search(self._buffer, 0, match.start()):
                return None  # a whole sentence comes first
            if match.end() >= self.first_clause_chars:
                piece = self._buffer[: match.end()].strip()
                self._buffer = self._buffer[match.end() :].lstrip()
                return piece
        return None

    def _take_sentence(self) -> str | None:
        start = 0
        while True:
            match = _END.search(self._buffer, start)
            if match is None:
                return None
            rest = self._buffer[match.end() :]
            if not rest:
                # What follows decides: "3." may become "3.5", "？" may gain a "」と".
                return None
            candidate = self._buffer[: match.end()].strip()
            quoted = match.group()[-1] in _CLOSERS and rest.startswith(_QUOTATIVE)
            if len(candidate) >= self.min_chars and not quoted:
                self._buffer = self._buffer[match.end() :].lstrip()
                return candidate
            start = match.end()
            if start >= len(self._buffer):
                return None


def split_sentences(text: str, min_chars: int = 4, first_clause_chars: int = 0) -> list[str]:
    """All pieces of a finished text."""
    splitter = SentenceSplitter(min_chars, first_clause_chars)
    return [*splitter.feed(text), *splitter.flush()]
