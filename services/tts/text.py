"""Make text speakable: strip markdown, emoji and URLs, spell out symbols, split sentences.

Pure functions, no model needed. Numbers themselves are left to the voices'
frontends (OpenJTalk reads ``1,234円`` or ``3.14`` correctly, espeak-ng
``1,234`` or ``50%``); what they read badly (``12:30`` as "12 colon 30",
``A&B`` letter by letter, ``※``, ``2024/3/14`` with slashes, ``$5`` as
"dollar five") is rewritten here first, in Japanese words for Japanese text
and in English words for English text.
"""

from __future__ import annotations

import re
import unicodedata

from services.common.language import detect_language

# Sentence ends: Japanese and ASCII terminators, possibly repeated ("！？", "?!"),
# with any closing brackets or quotes that belong to the sentence before them.
_TERMINATORS = "。！？!?．"
_CLOSERS = "」』）)】〕”’\"'"
_SPLIT = re.compile(
    rf"(?:[{_TERMINATORS}]+|\.{{2,}}(?![\d.])|(?<![\dA-Za-z])\.(?![\dA-Za-z])|\.(?=\s|$))"
    rf"[{re.escape(_CLOSERS)}]*|\n+"
)
# A full stop after these is not a sentence end: "Mr. Smith" stays one sentence.
_ABBREVIATION = re.compile(r"(?:^|\s)(?:Mr|Mrs|Ms|Dr|Prof|St|Jr|Sr|vs|etc|e\.g|i\.e)\.$", re.I)
# Pause marks where an over-long sentence may be cut (the models degrade on long input).
_SOFT_BREAK = re.compile(r"(?<=[、，,；;：:])")

_URL = re.compile(r"(?:https?://|www\.)[^\s<>()（）「」]+", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_FENCED_CODE = re.compile(r"```.*?(?:```|$)", re.DOTALL)
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_INLINE_CODE = re.compile(r"`([^`]*)`")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s*", re.MULTILINE)
_QUOTE = re.compile(r"^\s*>+\s?", re.MULTILINE)
# Repeated: a nested list item ("- 1. item") loses every marker in one pass.
_BULLET = re.compile(r"^\s*(?:(?:[-*+・•]|\d+[.)])\s+)+", re.MULTILINE)
_RULE = re.compile(r"^\s*(?:[-*_=]\s*){3,}$", re.MULTILINE)
_EMPHASIS = re.compile(r"(\*{1,3}|_{2,3}|~~)(?=\S)(.+?)(?<=\S)\1")
_HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{2,}.*$", re.MULTILINE)

# Emoji and pictographs, their joiners and variation selectors, keycaps, flags.
_EMOJI = re.compile(
    "[\U0001f000-\U0001faff\U00002600-\U000027bf\U00002b00-\U00002bff"
    "\U0001f1e6-\U0001f1ff\u200d\ufe0e\ufe0f\u20e3\u2300-\u23ff\u2190-\u21ff"
    "\u25a0-\u25ff\u2700-\u27bf\u3030\u303d\u3297\u3299]"
)

_TIME = re.compile(r"(?<![\d:])(\d{1,2}):([0-5]\d)(?![\d:])")
_DATE = re.compile(r"(?<!\d)(\d{4})[/-](\d{1,2})[/-](\d{1,2})(?!\d)")
_RANGE = re.compile(r"(?<=[\d時分日月年円])\s*[〜~～]\s*(?=\d)")
_MINUS = re.compile(r"(?<![0-9A-Za-z０-９])[-−](?=\d)")  # "-5度", not "3-5" or "ABC-1"
_CURRENCY = re.compile(r"([$＄¥￥€£])\s?(\d[\d,]*(?:\.\d+)?)")
_CURRENCY_NAMES = {"$": "ドル", "＄": "ドル", "¥": "円", "￥": "円", "€": "ユーロ", "£": "ポンド"}
_SYMBOLS = {
    "&": "アンド", "＆": "アンド", "+": "プラス", "＋": "プラス", "=": "イコール",
    "＝": "イコール", "×": "かける", "÷": "わる", "@": "アット", "＠": "アット",
    "#": " ", "＃": " ", "※": " ", "*": " ", "_": " ", "|": "、", "｜": "、", "\t": " ",
    "〜": "ー", "~": "ー", "^": " ", "\\": " ", "<": " ", ">": " ", "{": " ", "}": " ",
}  # fmt: skip
_SYMBOL_RE = re.compile("|".join(re.escape(s) for s in _SYMBOLS))

# English: espeak-ng reads numbers, "-5", "50%", "9:30" and "A&B" itself, but says
# "$5" as "dollar five", "10:00" as "ten zero zero", and "#", "*", "~" by name.
_EN_TIME = re.compile(r"(?<![\d:])(\d{1,2}):([0-5]\d)(?![\d:])")
_EN_RANGE = re.compile(r"(?<=\d)\s*[〜~～]\s*(?=\d)")
_EN_CURRENCY = re.compile(r"([$＄€£¥￥])\s?(\d[\d,]*)(?:\.(\d\d))?(?!\d)")
_EN_CURRENCY_NAMES = {
    "$": "dollar",
    "＄": "dollar",
    "€": "euro",
    "£": "pound",
    "¥": "yen",
    "￥": "yen",
}
_EN_SYMBOLS = {
    "&": " and ", "＆": " and ", "@": " at ", "＠": " at ", "+": " plus ", "＋": " plus ",
    "=": " equals ", "＝": " equals ", "×": " times ", "÷": " divided by ",
    "#": " ", "＃": " ", "※": " ", "*": " ", "_": " ", "|": ", ", "｜": ", ", "\t": " ",
    "〜": " ", "~": " ", "^": " ", "\\": " ", "<": " ", ">": " ", "{": " ", "}": " ",
}  # fmt: skip
_EN_SYMBOL_RE = re.compile("|".join(re.escape(s) for s in _EN_SYMBOLS))

_SPEAKABLE = re.compile(r"[^\W_]")  # any letter or digit, in any script


def strip_markup(text: str) -> str:
    """Remove markdown, HTML tags, URLs, e-mail addresses and emoji, keeping the words."""
    # Emoji first: "-😀-" must look like the "--" it becomes to the markdown patterns.
    text = _EMOJI.sub("", text)
    text = _FENCED_CODE.sub(" ", text)  # code is not read aloud
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _URL.sub(" ", text)
    text = _EMAIL.sub(" ", text)
    text = _INLINE_CODE.sub(r"\1", text)
    text = _HTML_TAG.sub(" ", text)
    text = _TABLE_SEP.sub("", text)
    text = _RULE.sub("", text)
    return _EMPHASIS.sub(r"\2", _strip_line_marks(text))


def _strip_line_marks(text: str) -> str:
    """Headings, quotes and list markers at the start of each line."""
    return _BULLET.sub("", _QUOTE.sub("", _HEADING.sub("", text)))


def _time(m: re.Match[str]) -> str:
    hour, minute = int(m.group(1)), int(m.group(2))
    return f"{hour}時" + (f"{minute}分" if minute else "")


def read_symbols(text: str) -> str:
    """Rewrite times, dates, ranges, signs, currencies and symbols as words."""
    text = _DATE.sub(lambda m: f"{m[1]}年{int(m[2])}月{int(m[3])}日", text)
    text = _TIME.sub(_time, text)
    text = _RANGE.sub("から", text)
    # Currencies before signs: "-$5" becomes "-5ドル", whose minus is then read.
    text = _CURRENCY.sub(lambda m: m[2] + _CURRENCY_NAMES[m[1]], text)
    text = _MINUS.sub("マイナス", text)
    return _SYMBOL_RE.sub(lambda m: _SYMBOLS[m[0]], text)


def _en_time(m: re.Match[str]) -> str:
    hour, minute = m.group(1), m.group(2)
    if minute == "00":
        return f"{hour} o'clock"
    return f"{hour} oh {minute[1]}" if minute[0] == "0" else m[0]  # 12:05: "twelve oh five"


def _en_money(m: re.Match[str]) -> str:
    unit = _EN_CURRENCY_NAMES[m[1]]
    whole = f"{m[2]} {unit}" + ("" if m[2] == "1" or unit == "yen" else "s")
    return f"{whole} {m[3]}" if m[3] and m[3] != "00" else whole  # "$5.50": "5 dollars 50"


def read_symbols_en(text: str) -> str:
    """The English :func:`read_symbols`: currencies, on-the-hour times, ranges, symbols."""
    text = _EN_CURRENCY.sub(_en_money, text)
    text = _EN_RANGE.sub(" to ", text)  # before the times: "10:00~12:00" ends in digits
    text = _EN_TIME.sub(_en_time, text)
    return _EN_SYMBOL_RE.sub(lambda m: _EN_SYMBOLS[m[0]], text)


def normalize(text: str, language: str | None = None) -> str:
    """The whole clean-up: markup out, symbols as words, whitespace collapsed per line.

    ``language`` picks the words symbols are read as; unset, it is detected.
    """
    # NFC, not NFKC: NFKC would turn full-width Japanese punctuation into ASCII.
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = strip_markup(text)
    # Detected before the symbols are read: Japanese words put into English text
    # ("A&B" as "AアンドB") would make it look Japanese.
    language = language or detect_language(text)
    text = read_symbols_en(text) if language == "en" else read_symbols(text)
    # A symbol read as a space can leave a line that starts like markdown ("-\\0" is "- 0").
    text = _strip_line_marks(text)
    lines = (re.sub(r"[ \u3000]+", " ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def is_speakable(sentence: str) -> bool:
    """True if the sentence has at least one letter or digit (not only punctuation)."""
    return bool(_SPEAKABLE.search(sentence))


def split_sentences(text: str, max_chars: int = 120) -> list[str]:
    """Split normalised text into speakable sentences, cutting over-long ones at pauses.

    Sentences end at 。！？!? and at a full stop that is not a decimal point,
    inside a word ("e.g", "file.txt") or after a title ("Mr."), and at line
    breaks (a markdown list item is its own sentence).
    """
    sentences: list[str] = []
    start = 0
    for m in _SPLIT.finditer(text):
        sentences.append(text[start : m.end()])
        start = m.end()
    sentences.append(text[start:])
    for i in range(len(sentences) - 1, 0, -1):  # backwards, so merges can chain
        if _ABBREVIATION.search(sentences[i - 1].rstrip()):
            sentences[i - 1 : i + 1] = [sentences[i - 1] + sentences[i]]
    out: list[str] = []
    for sentence in sentences:
        sentence = sentence.strip()
        if is_speakable(sentence):
            out.extend(_cut_long(sentence, max_chars))
    return out


def _cut_long(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence]
    pieces: list[str] = []
    current = ""
    for part in _SOFT_BREAK.split(sentence):
        if current and len(current) + len(part) > max_chars:
            pieces.append(current)
            current = ""
        current += part
        # No pause mark for a long stretch: cut hard rather than feed the model a run-on.
        while len(current) > max_chars:
            pieces.append(current[:max_chars])
            current = current[max_chars:]
    if current:
        pieces.append(current)
    return [p.strip() for p in pieces if is_speakable(p)]
