"""Turn a CTranslate2 Whisper model (``model.bin``) back into a transformers folder.

The embedded Whisper ships only in CTranslate2 form. Reading its weights into
``WhisperForConditionalGeneration`` lets the transformers backend run the very
same model, so both backends are proven on real speech with real weights.

``model.bin`` layout (CTranslate2 binary version 6): a header (version, spec
name, spec revision), then each variable as name, rank, dims, dtype, byte
count and raw little-endian data, then aliases (``decoder/projection/weight``
is an alias of the token embedding). CTranslate2 fuses attention projections:
self-attention ``linear_0`` is [q; k; v], cross-attention ``linear_1`` is
[k; v]. Whisper's key projection has no bias; the fused bias holds zeros there.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def _read(f: BinaryIO, fmt: str) -> tuple:
    size = struct.calcsize("<" + fmt)
    return struct.unpack("<" + fmt, f.read(size))


def _read_str(f: BinaryIO) -> str:
    (n,) = _read(f, "H")
    return f.read(n)[:-1].decode()


def read_ct2_variables(model_bin: Path) -> dict[str, np.ndarray]:
    """All variables of a CTranslate2 model file, aliases resolved."""
    out: dict[str, np.ndarray] = {}
    with model_bin.open("rb") as f:
        (version,) = _read(f, "I")
        if version < 5:
            raise ValueError(f"unsupported CTranslate2 model version {version}")
        spec = _read_str(f)
        if spec != "WhisperSpec":
            raise ValueError(f"not a Whisper model: {spec}")
        _read(f, "I")  # spec revision
        (count,) = _read(f, "I")
        for _ in range(count):
            name = _read_str(f)
            (rank,) = _read(f, "B")
            dims = _read(f, "I" * rank) if rank else ()
            (dtype,) = _read(f, "B")
            (nbytes,) = _read(f, "I")
            data = np.frombuffer(f.read(nbytes), dtype=_DTYPES[dtype])
            out[name] = data.reshape(dims) if rank else data
        (aliases,) = _read(f, "I")
        for _ in range(aliases):
            alias, target = _read_str(f), _read_str(f)
            out[alias] = out[target]
    return out


def _hf_state_dict(v: dict[str, np.ndarray], layers: tuple[int, int]) -> dict[str, np.ndarray]:
    sd: dict[str, np.ndarray] = {}

    def lin(dst: str, src: str, bias: bool = True) -> None:
        sd[f"{dst}.weight"] = v[f"{src}/weight"]
        if bias:
            sd[f"{dst}.bias"] = v[f"{src}/bias"]

    def norm(dst: str, src: str) -> None:
        sd[f"{dst}.weight"] = v[f"{src}/gamma"]
        sd[f"{dst}.bias"] = v[f"{src}/beta"]

    def fused(dst: str, names: list[str], src: str) -> None:
        w = np.split(v[f"{src}/weight"], len(names))
        b = np.split(v[f"{src}/bias"], len(names))
        for n, wi, bi in zip(names, w, b, strict=True):
            sd[f"{dst}.{n}.weight"] = wi
            if n != "k_proj":  # Whisper's key projection has no bias
                sd[f"{dst}.{n}.bias"] = bi

    for conv in ("conv1", "conv2"):
        lin(f"model.encoder.{conv}", f"encoder/{conv}")
    sd["model.encoder.embed_positions.weight"] = v["encoder/position_encodings/encodings"]
    norm("model.encoder.layer_norm", "encoder/layer_norm")
    for i in range(layers[0]):
        dst, src = f"model.encoder.layers.{i}", f"encoder/layer_{i}"
        fused(f"{dst}.self_attn", ["q_proj", "k_proj", "v_proj"], f"{src}/self_attention/linear_0")
        lin(f"{dst}.self_attn.out_proj", f"{src}/self_attention/linear_1")
        norm(f"{dst}.self_attn_layer_norm", f"{src}/self_attention/layer_norm")
        lin(f"{dst}.fc1", f"{src}/ffn/linear_0")
        lin(f"{dst}.fc2", f"{src}/ffn/linear_1")
        norm(f"{dst}.final_layer_norm", f"{src}/ffn/layer_norm")

    sd["model.decoder.embed_tokens.weight"] = v["decoder/embeddings/weight"]
    sd["model.decoder.embed_positions.weight"] = v["decoder/position_encodings/encodings"]
    norm("model.decoder.layer_norm", "decoder/layer_norm")
    for i in range(layers[1]):
        dst, src = f"model.decoder.layers.{i}", f"decoder/layer_{i}"
        fused(f"{dst}.self_attn", ["q_proj", "k_proj", "v_proj"], f"{src}/self_attention/linear_0")
        lin(f"{dst}.self_attn.out_proj", f"{src}/self_attention/linear_1")
        norm(f"{dst}.self_attn_layer_norm", f"{src}/self_attention/layer_norm")
        lin(f"{dst}.encoder_attn.q_proj", f"{src}/attention/linear_0")
        fused(f"{dst}.encoder_attn", ["k_proj", "v_proj"], f"{src}/attention/linear_1")
        lin(f"{dst}.encoder_attn.out_proj", f"{src}/attention/linear_2")
        norm(f"{dst}.encoder_attn_layer_norm", f"{src}/attention/layer_norm")
        lin(f"{dst}.fc1", f"{src}/ffn/linear_0")
        lin(f"{dst}.fc2", f"{src}/ffn/linear_1")
        norm(f"{dst}.final_layer_norm", f"{src}/ffn/layer_norm")
    return sd


def _count_layers(v: dict[str, np.ndarray], side: str) -> int:
    pattern = re.compile(rf"^{side}/layer_(\d+)/")
    return len({m.group(1) for k in v if (m := pattern.match(k))})


def convert_ct2_to_transformers(ct2_dir: Path, out_dir: Path) -> None:
    """Write a ``WhisperForConditionalGeneration`` folder (config, weights, tokenizer)."""
    import torch
    from transformers import (
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizerFast,
    )

    v = read_ct2_variables(ct2_dir / "model.bin")
    ct2_config = json.loads((ct2_dir / "config.json").read_text())
    vocab, d_model = v["decoder/embeddings/weight"].shape
    layers = (_count_layers(v, "encoder"), _count_layers(v, "decoder"))
    n_mels = v["encoder/conv1/weight"].shape[1]
    tokenizer = WhisperTokenizerFast(tokenizer_file=str(ct2_dir / "tokenizer.json"))
    config = WhisperConfig(
        vocab_size=int(vocab),
        num_mel_bins=int(n_mels),
        d_model=int(d_model),
        encoder_layers=layers[0],
        decoder_layers=layers[1],
        encoder_attention_heads=int(v["encoder/num_heads"][0]),
        decoder_attention_heads=int(v["decoder/num_heads"][0]),
        encoder_ffn_dim=int(v["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        decoder_ffn_dim=int(v["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        max_source_positions=int(v["encoder/position_encodings/encodings"].shape[0]),
        max_target_positions=int(v["decoder/position_encodings/encodings"].shape[0]),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        decoder_start_token_id=tokenizer.convert_tokens_to_ids("<|startoftranscript|>"),
        tie_word_embeddings=True,
    )
    model = WhisperForConditionalGeneration(config)
    weights = _hf_state_dict(v, layers)
    state = {k: torch.from_numpy(a.astype(np.float32)) for k, a in weights.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    # proj_out is tied to the token embedding, so it is the only key we do not fill
    if unexpected or [k for k in missing if k != "proj_out.weight"]:
        raise ValueError(f"weight mapping incomplete: missing={missing} unexpected={unexpected}")
    model.tie_weights()
    _fill_generation_config(model, tokenizer, ct2_config)
    # The weights were fp16 already: saving them so is lossless and halves the folder.
    model.half().save_pretrained(out_dir)
    WhisperProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=int(n_mels)), tokenizer=tokenizer
    ).save_pretrained(out_dir)


def _fill_generation_config(model, tokenizer, ct2_config: dict) -> None:  # noqa: ANN001
    """The fields Whisper's ``generate`` needs for language, task and timestamps."""
    gc = model.generation_config
    tok = tokenizer.convert_tokens_to_ids
    lang_ids = ct2_config["lang_ids"]
    gc.lang_to_id = {tokenizer.convert_ids_to_tokens(i): i for i in lang_ids}
    gc.task_to_id = {"transcribe": tok("<|transcribe|>"), "translate": tok("<|translate|>")}
    gc.no_timestamps_token_id = tok("<|notimestamps|>")
    gc.is_multilingual = len(lang_ids) > 1
    gc.decoder_start_token_id = tok("<|startoftranscript|>")
    gc.prev_sot_token_id = tok("<|startofprev|>")
    gc.pad_token_id = gc.eos_token_id = tok("<|endoftext|>")
    gc.suppress_tokens = ct2_config["suppress_ids"]
    gc.begin_suppress_tokens = ct2_config["suppress_ids_begin"]
    gc.alignment_heads = ct2_config["alignment_heads"]
    gc.max_initial_timestamp_index = 50
    gc.max_length = model.config.max_target_positions
    gc.forced_decoder_ids = None
    gc._from_model_config = False  # else from_pretrained rebuilds it from config.json
