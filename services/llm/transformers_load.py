"""Loading transformers models for the ``embedded`` and ``transformers`` backends.

Where a model runs and in which precision: bf16 on CUDA; on CPU float32 with
the output layer in int8 (``LLM_CPU_INT8_LM_HEAD``), because decoding on a
CPU is bound by reading weights and that layer is most of them.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from .backends_transformers import TransformersChat
from .engine import cpu_threads
from .prompt import Message, for_strict_template, render_few_shot
from .settings import LLMSettings

logger = logging.getLogger(__name__)


def _render_template(tokenizer: Any, messages: Sequence[Message]) -> list[int]:
    plain = [{"role": m.role, "content": m.content} for m in messages]
    try:
        ids = tokenizer.apply_chat_template(plain, add_generation_prompt=True, tokenize=True)
    except Exception:  # jinja2 TemplateError: e.g. Gemma 2 rejects a system role
        ids = tokenizer.apply_chat_template(
            for_strict_template(messages), add_generation_prompt=True, tokenize=True
        )
    return list(ids)


def _render_few_shot(tokenizer: Any, messages: Sequence[Message]) -> list[int]:
    return list(tokenizer(render_few_shot(messages))["input_ids"])


def _place(settings: LLMSettings) -> tuple[str, torch.dtype]:
    device = settings.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        return device, torch.bfloat16
    torch.set_num_threads(cpu_threads(settings.threads))
    return device, torch.float32


def _load(source: str, settings: LLMSettings, **tokenizer_kwargs: Any) -> tuple[Any, Any]:
    device, dtype = _place(settings)
    cache_dir = settings.cache_dir / "hf"
    tokenizer = AutoTokenizer.from_pretrained(source, cache_dir=cache_dir, **tokenizer_kwargs)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, cache_dir=cache_dir)
    model = model.to(device)  # type: ignore[arg-type]  # transformers types .to() oddly
    if device == "cpu" and settings.cpu_int8_lm_head:
        model = _quantize_lm_head(model)
    return model.eval(), tokenizer


def _quantize_lm_head(model: Any) -> Any:
    """Make the output layer int8 (per output channel; activations quantized per call).

    Gemma's 262k-token vocabulary makes ``lm_head`` most of the weights read
    per token, so this alone gives about 1.7x the tokens per second on a CPU.
    The decoder layers stay float32: quantizing them too made the 270M model
    noticeably worse. torch marks this eager API deprecated in favour of
    torchao, but it ships in the pinned torch; if it is gone, run float32.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its deprecation notices, once per load
            from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

            spec = {"lm_head": per_channel_dynamic_qconfig}
            return quantize_dynamic(model, spec, dtype=torch.qint8, inplace=True)
    except (ImportError, RuntimeError, AttributeError) as exc:
        logger.warning("int8 output layer unavailable (%s); running float32", exc)
        return model


def load_embedded(settings: LLMSettings) -> TransformersChat:
    """gemma-3-270m from the installed GGUF packages (a base model: few-shot prompt)."""
    from .gguf_prepare import EMBEDDED_MODEL_ID, ensure_embedded

    folder = ensure_embedded(settings.cache_dir)
    # transformers 4.57.3+ mistakes any folder it saved itself for a Mistral tokenizer and
    # warns about a regex; this one is Gemma's, so say so and keep the log honest.
    model, tokenizer = _load(str(folder), settings, fix_mistral_regex=False)
    engine = TransformersChat(
        model,
        tokenizer,
        backend="embedded",
        model_id=settings.served_model_name or EMBEDDED_MODEL_ID,
        render=_render_few_shot,
        context_tokens=settings.context_tokens,
        stop_at_newline=True,
        repetition_penalty=settings.repetition_penalty,
        prompt_caches=settings.prompt_caches,
    )
    engine.warm_up()
    return engine


def fetch_model(settings: LLMSettings) -> None:
    """Download (or find) the configured model in the cache without loading it."""
    from huggingface_hub import snapshot_download

    if Path(settings.model).is_dir():
        return
    snapshot_download(settings.model, cache_dir=settings.cache_dir / "hf")


def load_transformers(settings: LLMSettings) -> TransformersChat:
    """A chat model by hub id (downloaded into the cache) or local folder; its chat template."""
    model, tokenizer = _load(settings.model, settings)
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"{settings.model} has no chat template; use the embedded backend style")
    engine = TransformersChat(
        model,
        tokenizer,
        backend="transformers",
        model_id=settings.served_model_name or settings.model,
        render=_render_template,
        context_tokens=settings.context_tokens,
        repetition_penalty=settings.repetition_penalty,
        prompt_caches=settings.prompt_caches,
    )
    engine.warm_up()
    return engine
