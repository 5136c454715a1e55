"""Gemma's tokenizer as it was trained: SentencePiece BPE, rebuilt from a GGUF's vocabulary.

transformers reads a Gemma GGUF's tokenizer as a Unigram model over the
vocabulary scores. Gemma's SentencePiece model is BPE, whose scores are merge
priorities, not log probabilities: read as Unigram they favour short pieces,
so "consider how much there" became ``▁cons id er ▁h ow ▁m uch ▁t he re``,
a text the model never saw in training, and it answered English with
misspelt words ("considier", "tthere"). The vocabulary is the same either
way; only how a prompt is cut into it changes, so the weights need nothing.

SentencePiece BPE merges, at each step, the adjacent pair whose joined piece
has the highest score. A tokenizers BPE model does the same when every
(left, right) split of every piece is a merge ranked by that piece's score.
One difference is left: SentencePiece matches Gemma's user-defined pieces
(runs of spaces, HTML tags, the turn markers) whole, and here they are built
by merges or not at all. The embedded prompt has none of them: it is a plain
dialogue with each turn's whitespace collapsed.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_BYTE = re.compile(r"<0x[0-9A-F]{2}>")
_UNIGRAM = re.compile(r'"model"\s*:\s*\{\s*"type"\s*:\s*"Unigram"')


def bpe_model(pieces: list[list[Any]], special: set[str]) -> dict[str, Any]:
    """A tokenizers BPE model from ``[piece, score]`` pairs in id order."""
    pieces = [[piece, score] for piece, score in pieces]
    # transformers renames the byte token <0x09> to a tab, which Gemma also has as a
    # normal piece: put the byte token back, or byte fallback has a hole.
    names = [piece for piece, _ in pieces]
    if "<0x09>" not in names and "<0x08>" in names:
        tab = names.index("<0x08>") + 1
        if pieces[tab][0] == "\t":
            pieces[tab][0] = "<0x09>"
    vocab = {piece: i for i, (piece, _) in enumerate(pieces)}
    ranked: list[tuple[float, int, int, str, str]] = []
    for piece, score in pieces:
        if piece in special or _BYTE.fullmatch(piece):
            continue  # control and byte tokens are never the result of a merge
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in vocab and right in vocab:
                ranked.append((-score, vocab[left], vocab[right], left, right))
    ranked.sort()
    return {
        "type": "BPE",
        "dropout": None,
        "unk_token": "<unk>",
        "continuing_subword_prefix": None,
        "end_of_word_suffix": None,
        "fuse_unk": True,
        "byte_fallback": True,
        "ignore_merges": False,
        "vocab": vocab,
        "merges": [[left, right] for *_, left, right in ranked],
    }


def needs_bpe(folder: Path) -> bool:
    """True if ``folder/tokenizer.json`` holds the Unigram reading (a regex: every start checks)."""
    return bool(_UNIGRAM.search((folder / "tokenizer.json").read_text(encoding="utf-8")))


def ensure_bpe(folder: Path) -> bool:
    """Rewrite ``folder/tokenizer.json`` as BPE if it holds the Unigram reading; True if it did.

    Folders built by earlier versions are repaired in place (a few seconds),
    atomically, so a process loading the folder at the same time reads one
    whole file or the other.
    """
    path = folder / "tokenizer.json"
    text = path.read_text(encoding="utf-8")  # once: the file is tens of megabytes
    if not _UNIGRAM.search(text):
        return False
    spec = json.loads(text)
    special = {token["content"] for token in spec.get("added_tokens", [])}
    spec["model"] = bpe_model(spec["model"]["vocab"], special)
    scratch = path.with_name(f"tokenizer.json.{os.getpid()}.tmp")
    try:
        scratch.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
        os.replace(scratch, path)
    finally:
        scratch.unlink(missing_ok=True)
    logger.info("embedded LLM tokenizer rebuilt as SentencePiece BPE in %s", path)
    return True
