"""Build a tiny, randomly initialised Style-Bert-VITS2 JP-Extra model and DeBERTa in seconds.

The production weights cannot be downloaded here, so the real loading and
inference code of :mod:`services.tts.sbv2` runs on this instead: the same file
formats (SBV2's own safetensors saver, a transformers DeBERTa-v2 folder with a
character-level ``BertJapaneseTokenizer``), only tiny. Its speech is noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

STYLES = {"Neutral": 0, "Happy": 1}
SPEAKER = "tiny-jp"
SAMPLE_RATE = 44100


def _vocab() -> list[str]:
    # SBV2 feeds the BERT katakana readings plus punctuation, one token per character.
    kana = [chr(c) for c in range(0x3041, 0x3097)] + [chr(c) for c in range(0x30A1, 0x30FB)]
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *kana, *"ー、。！？!?,.…'-・「」"]


def build_bert(folder: Path) -> Path:
    from transformers import BertJapaneseTokenizer, DebertaV2Config, DebertaV2ForMaskedLM

    folder.mkdir(parents=True, exist_ok=True)
    vocab = _vocab()
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertJapaneseTokenizer(
        str(folder / "vocab.txt"),
        do_lower_case=False,
        do_word_tokenize=False,
        subword_tokenizer_type="character",
    )
    tokenizer.save_pretrained(folder)
    # hidden_size must stay 1024: the synthesizer's BERT projection expects it.
    config = DebertaV2Config(
        vocab_size=len(vocab),
        hidden_size=1024,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=512,
        relative_attention=True,
        pos_att_type=["p2c", "c2p"],
        position_buckets=32,
        norm_rel_ebd="layer_norm",
        share_att_key=True,
        position_biased_input=False,
        type_vocab_size=0,
    )
    DebertaV2ForMaskedLM(config).save_pretrained(folder)
    return folder


def build_model(folder: Path) -> Path:
    from style_bert_vits2.models.hyper_parameters import HyperParameters
    from style_bert_vits2.models.infer import get_net_g
    from style_bert_vits2.models.utils.safetensors import save_safetensors

    folder.mkdir(parents=True, exist_ok=True)
    hps = HyperParameters.model_validate(
        {
            "model_name": "tiny",
            "version": "2.5.0-JP-Extra",
            "data": {
                "sampling_rate": SAMPLE_RATE,
                "filter_length": 2048,
                "hop_length": 512,  # = product of upsample_rates
                "win_length": 2048,
                "n_speakers": 1,
                "spk2id": {SPEAKER: 0},
                "num_styles": len(STYLES),
                "style2id": STYLES,
            },
            "model": {
                "inter_channels": 16,
                "hidden_channels": 16,
                "filter_channels": 32,
                "n_heads": 2,
                "n_layers": 3,
                "kernel_size": 3,
                "resblock": "1",
                "resblock_kernel_sizes": [3],
                "resblock_dilation_sizes": [[1, 3, 5]],
                "upsample_rates": [8, 8, 8],
                "upsample_kernel_sizes": [16, 16, 16],
                "upsample_initial_channel": 32,
                "gin_channels": 16,
            },
        }
    )
    config = folder / "config.json"
    config.write_text(hps.model_dump_json(indent=2), encoding="utf-8")
    # get_net_g builds the network the same way loading does; with no file to read
    # yet, build it directly and save it with SBV2's own saver.
    net = _build_net(hps, get_net_g)
    model_file = folder / "tiny_e1_s1.safetensors"
    save_safetensors(net, 1, model_file, for_infer=True)
    styles = np.random.default_rng(0).standard_normal((len(STYLES), 256)).astype(np.float32)
    np.save(folder / "style_vectors.npy", styles)
    return model_file


def _build_net(hps, get_net_g):  # noqa: ANN001, ANN202 - SBV2 types
    import tempfile

    import torch
    from style_bert_vits2.logging import logger
    from style_bert_vits2.models.utils.safetensors import save_safetensors

    logger.disable("style_bert_vits2")  # else one "Missing key" line per random weight
    # get_net_g insists on loading weights: give it an empty file, keep its random init.
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.safetensors"
        save_safetensors(torch.nn.Module(), 0, empty)
        return get_net_g(str(empty), hps.version, "cpu", hps)


def build(folder: Path) -> tuple[Path, Path]:
    """The tiny model folder and BERT folder, built under ``folder``."""
    return build_model(folder / "model").parent, build_bert(folder / "bert")
