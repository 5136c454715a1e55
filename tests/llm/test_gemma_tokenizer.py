"""The embedded model's tokenizer is SentencePiece BPE, as Gemma was trained, not Unigram."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tokenizers import Tokenizer

from services.llm.gemma_tokenizer import bpe_model, ensure_bpe

# Scores are merge priorities: "bc" (-2) is merged before "ab" (-3).
PIECES: list[list[Any]] = [
    ["<unk>", 0.0],
    ["<0x08>", 0.0],
    ["\t", 0.0],  # transformers' name for the byte token <0x09>
    ["<0x0A>", 0.0],
    ["a", -1.0],
    ["b", -1.0],
    ["c", -1.0],
    ["bc", -2.0],
    ["ab", -3.0],
    ["abc", -4.0],
    ["▁", -1.0],
    ["\t", -5.0],  # the normal tab piece
]


def _unigram_spec(pieces: list[list[Any]]) -> dict[str, Any]:
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {
                "id": 0,
                "content": "<unk>",
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": True,
            }
        ],
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
            ],
        },
        "model": {"type": "Unigram", "unk_id": 0, "vocab": pieces, "byte_fallback": True},
    }


def test_merges_follow_the_scores_and_the_byte_token_is_restored() -> None:
    model = bpe_model(PIECES, {"<unk>"})
    assert model["vocab"]["<0x09>"] == 2 and model["vocab"]["\t"] == 11
    assert model["merges"][:2] == [["b", "c"], ["a", "b"]]  # bc outranks ab
    spec = _unigram_spec(PIECES)
    spec["model"] = model
    tokenizer = Tokenizer.from_str(json.dumps(spec))
    assert tokenizer.encode("abc").tokens == ["abc"]  # a + bc, then abc
    assert tokenizer.encode("ab").tokens == ["ab"]
    assert tokenizer.encode("\t").ids == [11]
    assert tokenizer.encode("d").ids == [0]  # no piece and no byte token: unknown


def test_a_unigram_folder_is_rewritten_once(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_text(json.dumps(_unigram_spec(PIECES)))
    assert ensure_bpe(tmp_path)
    assert json.loads((tmp_path / "tokenizer.json").read_text())["model"]["type"] == "BPE"
    assert not ensure_bpe(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["tokenizer.json"]  # no scratch left


@pytest.mark.slow
def test_the_embedded_tokenizer_cuts_words_whole(embedded_engine: Any) -> None:
    tokenizer = embedded_engine.tokenizer
    english = "to consider how much there might be"
    ids = tokenizer(english, add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == [
        "to", "▁consider", "▁how", "▁much", "▁there", "▁might", "▁be",
    ]  # fmt: skip
    for text in (english, "水をマレーシアから買わなくてはならないのです。", "a\tb  c 😀\n"):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert tokenizer.decode(ids) == text
