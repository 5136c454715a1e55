"""Streaming text clean-up: spoken-style filtering and stop strings.

Both work on a stream of deltas, so each holds back only the few characters
it cannot decide on yet (a line that might start a markdown list, the first
half of a stop string) and lets everything else through at once.
"""

from __future__ import annotations

import re

# Markdown that a TTS would read out or stumble on.
_LINE_MARK = re.compile(r"[ \t]*(?:#{1,6}[ \t]+|>[ \t]?|[-*+][ \t]+|\d{1,3}[.)][ \t]+)")
# A line start that may still become one of the above once more text arrives.
_MAYBE_LINE_MARK = re.compile(r"[ \t]*(?:#{1,6}|>|[-*+]|\d{1,3}[.)]?)")
_INLINE_MARKS = re.compile(r"\*+|`+|~~|__")
# Emoji and pictographs, their modifiers and joiners (symbols a voice cannot say).
_EMOJI = re.compile(
    "["
    "\U0001f000-\U0001faff"  # emoticons, pictographs, transport, flags, extended-A
    "\u2600-\u27bf"  # misc symbols and dingbats
    "\u2b00-\u2bff"  # arrows and stars such as U+2B50
    "\ufe00-\ufe0f"  # variation selectors
    "\u200d"  # zero-width joiner
    "\U000e0020-\U000e007f"  # tag characters (subdivision flags)
    "]"
)


def clean_inline(text: str) -> str:
    """Remove emphasis and code marks and emoji from a piece of text."""
    return _EMOJI.sub("", _INLINE_MARKS.sub("", text))


class SpokenFilter:
    """Strips markdown and emoji from a streamed reply, and leading whitespace."""

    def __init__(self) -> None:
        self._pending = ""
        self._line_start = True
        self._started = False

    def feed(self, text: str, final: bool = False) -> str:
        """Return the cleaned text that can be sent now."""
        self._pending += text
        out: list[str] = []
        while self._pending:
            if self._line_start:
                if not final and _MAYBE_LINE_MARK.fullmatch(self._pending):
                    break  # "1" may become "1. ": wait for the next delta
                mark = _LINE_MARK.match(self._pending)
                if mark:
                    self._pending = self._pending[mark.end() :]
                self._line_start = False
                continue
            newline = self._pending.find("\n")
            if newline < 0:
                # A trailing "~" or "_" may be half of "~~" or "__": keep the run for later.
                cut = len(self._pending) if final else len(self._pending.rstrip("~_"))
                out.append(self._pending[:cut])
                self._pending = self._pending[cut:]
                break
            else:
                out.append(self._pending[: newline + 1])
                self._pending = self._pending[newline + 1 :]
                self._line_start = True
        # "**" split across deltas is removed piecewise, so inline cleaning needs no state.
        cleaned = clean_inline("".join(out))
        if not self._started:
            cleaned = cleaned.lstrip()
            self._started = bool(cleaned)
        return cleaned

    def flush(self) -> str:
        return self.feed("", final=True)


def spoken(text: str) -> str:
    """The whole-reply form of :class:`SpokenFilter`."""
    return SpokenFilter().feed(text, final=True).strip()


class StopMatcher:
    """Cuts a streamed text before the first stop string."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self._held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Return what may be sent now; sets :attr:`stopped` once a stop string appeared."""
        if self.stopped:
            return ""
        if not self.stops:
            return text
        buf = self._held + text
        hits = [i for i in (buf.find(s) for s in self.stops) if i >= 0]
        if hits:
            self.stopped = True
            self._held = ""
            return buf[: min(hits)]
        # Hold back the longest tail that could still grow into a stop string.
        keep = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(buf)), 0, -1):
                if buf.endswith(stop[:n]):
                    keep = max(keep, n)
                    break
        self._held = buf[len(buf) - keep :] if keep else ""
        return buf[: len(buf) - keep]

    def flush(self) -> str:
        held, self._held = self._held, ""
        return "" if self.stopped else held
