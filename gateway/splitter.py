"""Cut a streamed reply into sentences, so each can be spoken as soon as it is complete.

Knows Japanese (。！？ and their half-width forms, 」 after them) and English
(. ! ? followed by a space or the end; not inside "3.5" or "e.g." mid-word)
punctuation, and newlines. A sentence shorter than ``min_chars`` waits to be
joined with the next (「はい。」 alone makes a choppy first WAV), and whatever is
left when the stream ends is flushed.

The first piece of a reply is special: the voice cannot start before it is
synthesized, and synthesis time grows with its length. So, with
``first_clause_chars`` set, the first piece may also end at a clause comma
(、，,) once it is that long, or, in English, before a conjunction that opens
a clause ("I am not sure | if I can come."), where a speaker may pause too,
or, in Japanese, after a case or topic particle that closes a phrase
(「マレーシアの首都は | どこですか」). English replies of the
embedded model often run 20+ words without a comma: waiting for the full stop
cost a second of silence; a long Japanese sentence costs the same. Later
pieces are whole sentences, which read more naturally, unless the caller says
the listener is about to wait (``hungry``: the audio sent so far is nearly
played and nothing else is being synthesized); then the next piece may end at
a clause too, so a long second sentence does not leave a second of silence
after a short first piece.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

# A sentence ends at a terminator (plus closing quotes/brackets), or at a newline.
_END = re.compile(
    r"""(?:[。．！？!?]+|…+|\.(?=\s|$))[」』）)\]"'”’]*|\n+""",
)
_CLAUSE = re.compile(r"[、，](?=.)|,(?=\s+\S)")
_TRAILING_COMMA = re.compile(r"(?:[、，]|(?<=[^\W\d]),)\s*$")
# Before these words a clause begins; the cut needs the word and the space after it, so
# "and" is not mistaken for the start of "android". Not "that"/"so"/"or": too often not
# a clause ("that book", "so good").
_CONJUNCTION = re.compile(
    r"\s+(?=(?:and|but|because|if|when|while|which|who|where|although|though|since|unless|until)"
    r"\s)",
    re.IGNORECASE,
)
# A particle ends a Japanese phrase when a content word (kanji or katakana) comes before
# it and another starts after it: 「水が|冷たい」, 「江戸時代から|続く」, not 「では」 or
# 「こんにちは」. Left out:
# と and の, which join nouns (東京と大阪); に, which starts compound particles and set
# phrases (に関して, 気に入る); が after 我 (我が家). Before hiragana only は and を count,
# and not before another particle or a kana that carries on a word (手はず, 大はしゃぎ):
# がでもへ end words there (曲がる, 前もって, 大へん). Rare misses remain (茹で卵).
_CONTENT = "\u3005\u30a1-\u30fa\u30fc\u4e00-\u9fff"
_PARTICLE_KANA = "はがをにでものとへやかよね"
_NOT_AFTER_WA = f"{_PARTICLE_KANA}ずしじっゃゅょちんら"
# は after に, で, から, まで, へ or より ends a phrase too (「東京には | たくさん」,
# 「日本では | 桜が」), but not before あ or な: 「学生では | ありません」 is one predicate.
_COMPOUND_WA = "|".join(f"(?<=[{_CONTENT}]{p})" for p in ("に", "で", "から", "まで", "へ", "より"))
_PHRASE = re.compile(
    rf"(?<=[{_CONTENT}])"
    rf"(?:(?:(?<!我)が|[はをでもへ]|から|まで|より)(?=[{_CONTENT}])"
    rf"|を(?=[ぁ-ゖ])(?![{_PARTICLE_KANA}])"
    rf"|は(?=[ぁ-ゖ])(?![{_NOT_AFTER_WA}]))"
    rf"|(?:{_COMPOUND_WA})は(?=[{_CONTENT}ぁ-ゖ])(?![{_NOT_AFTER_WA}あな])"
)
MIN_CLAUSE_WORDS = 4  # "Tom and Jerry | and ..." would cut a list of names
_CLOSERS = "」』）)]\"'”’"
_QUOTATIVE = ("と", "って")


# Any of these in a reply makes a 「。」 at the end of the text wait for what follows:
# a quotation may go on past it (「…。」と), even one opened in an earlier piece.
_QUOTING = "「」『』（）()【】[]\"'“”‘’"


class SentenceSplitter:
    def __init__(self, min_chars: int = 4, first_clause_chars: int = 0) -> None:
        self.min_chars = min_chars
        self.first_clause_chars = first_clause_chars
        self._first = True
        # None: clauses may end the first piece only. True/False: set by a caller that
        # knows whether the listener is about to run out of audio (see the module doc).
        self.hungry: bool | None = None
        self._buffer = ""
        self._quoting = False  # a bracket or quote mark was seen in this reply

    def feed(self, text: str) -> Iterator[str]:
        """Add streamed text; yield every sentence it completes."""
        self._buffer += text
        self._quoting = self._quoting or any(c in _QUOTING for c in text)
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
        may_cut = self._first if self.hungry is None else self.hungry
        piece = self._take_clause() if may_cut and self.first_clause_chars else None
        if piece is None:
            piece = self._take_sentence()
        if piece is not None:
            self._first = False
        return piece

    def _take_clause(self) -> str | None:
        """The first clause, if a long enough one ends before any sentence does."""
        for end, min_words in self._clause_ends():
            if self._sentence_before(end):
                return None  # a whole sentence comes first
            piece = self._buffer[:end].strip()
            if end >= self.first_clause_chars and len(piece.split()) >= min_words:
                self._buffer = self._buffer[end:].lstrip()
                return piece
        return None

    def _sentence_before(self, end: int) -> bool:
        # "Mr." is too short to be a sentence of its own: it does not end the clause search.
        return any(
            len(self._buffer[: m.end()].strip()) >= self.min_chars
            for m in _END.finditer(self._buffer, 0, end)
        )

    def _clause_ends(self) -> list[tuple[int, int]]:
        """Where the buffer may be cut, each with the words the piece before it needs.

        A comma is the writer's own pause, and Japanese has no spaces to count; a
        conjunction cut needs a clause before it ("Yes and no", "Tom and Jerry and
        Mickey" stay whole).
        """
        ends = [(m.end(), 1) for m in _CLAUSE.finditer(self._buffer)]
        if not self._quoting and _TRAILING_COMMA.search(self._buffer):
            # The comma the text so far ends with: waiting for the token after it to
            # show the space cost that token's time (about 50 ms) on a first "Yes,".
            # Not after a digit (the next token may make it "3,000") nor in a quotation
            # ('"Yes," he said').
            ends.append((len(self._buffer), 1))
        ends += [(m.end(), 1) for m in _PHRASE.finditer(self._buffer)]
        ends += [(m.start(), MIN_CLAUSE_WORDS) for m in _CONJUNCTION.finditer(self._buffer)]
        return sorted(ends)

    def _take_sentence(self) -> str | None:
        start = 0
        while True:
            match = _END.search(self._buffer, start)
            if match is None:
                return None
            rest = self._buffer[match.end() :]
            # What follows decides: "3." may become "3.5", "？" may gain a "」と" or a "！".
            # A 「。」 outside any quotation ends its sentence now: waiting for the next
            # token cost one token's time (about 50 ms) before each Japanese sentence.
            if not rest and (match.group() != "。" or self._quoting):
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
