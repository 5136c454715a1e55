"""The engine behind the ``embedded`` and ``transformers`` backends (loading: transformers_load).

The model runs in a thread of its own that gives each reply in progress a
token in turn (:mod:`.turn_taking`), so several replies can be written at
once. A streamer hands each decoded piece to the event loop; a reply whose
async generator is closed (its client hung up) is dropped at its next turn.

Prompt cache: the key/value caches of the last few generations are kept, and
the next prompt reuses the one it shares most tokens with (the system prompt,
the few-shot dialogue, the earlier turns of the same conversation), so only
the new tokens are computed before the first reply token: on the embedded
model on 2 CPU cores this takes time to first token from about 0.21 s to
0.08 s. Keeping more than the last one matters when conversations take turns
(two users, or Japanese and English, whose system prompts differ): a prompt
that shares only a few tokens with the last generation computed 75-84 tokens
again, 0.18-0.25 s on the embedded model on 2 CPU cores.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any

import torch
from transformers import DynamicCache, LogitsProcessorList
from transformers.generation.logits_process import (
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopPLogitsWarper,
)

from services.common.errors import ModelError

from .engine import Chunk, GenerationParams
from .prompt import Message
from .token_stream import TokenStreamer
from .turn_taking import Reply, TurnTaking

logger = logging.getLogger(__name__)

Render = Callable[[Any, Sequence[Message]], list[int]]  # (tokenizer, messages) -> input ids


_END = object()
MIN_REUSE = 16  # shorter shared prefixes are not worth copying a cache for


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class TransformersChat:
    """A causal LM from transformers, streaming token by token, several replies at once."""

    concurrent = False  # each reply holds a slot of the service's queue while it is written

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        backend: str,
        model_id: str,
        render: Render,
        context_tokens: int,
        stop_at_newline: bool = False,
        repetition_penalty: float = 1.0,
        prompt_caches: int = 4,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.backend = backend
        self.model_id = model_id
        self.device = str(model.device)
        self.render = render
        limit = getattr(model.config, "max_position_embeddings", None) or context_tokens
        self.context_tokens = min(context_tokens, limit)
        self.stop_at_newline = stop_at_newline
        self.repetition_penalty = repetition_penalty
        self.eos_ids = _eos_ids(model, tokenizer, stop_at_newline)
        self.tokens_generated = 0
        """Lifetime count of generated tokens: what the disconnect test measures."""
        # (token ids, key/value cache) of the last generations, the latest first
        self._caches: list[tuple[list[int], Any]] = []
        self.prompt_caches = prompt_caches
        self.cache_hits = 0
        self.last_reused = 0  # tokens of the last prompt taken from a kept cache
        self._turns = TurnTaking(self._advance, f"llm-{backend}")

    def _prompt_cache(self, ids: list[int]) -> Any:
        """A cache holding what a kept generation computed for this prompt's prefix: the
        one that shares the most tokens with it."""
        window = getattr(self.model.config, "sliding_window", None)
        best, best_n = None, 0
        for kept_ids, kept in self._caches:
            # A sliding-window layer has dropped its oldest entries once past the window:
            # it can no longer be cut back to an earlier length.
            if window and len(kept_ids) > window:
                continue
            n = min(common_prefix(ids, kept_ids), len(ids) - 1)
            if n > best_n:
                best, best_n = kept, n
        if best is None or best_n < MIN_REUSE:
            self.last_reused = 0
            return DynamicCache(config=self.model.config)
        self.last_reused = best_n
        cache = copy.deepcopy(best)
        cache.crop(best_n)
        self.cache_hits += 1
        return cache

    def _keep_cache(self, cache: Any, ids: list[int], generated: list[int]) -> None:
        """Keep this generation's cache first; drop those it extends (the same conversation's
        earlier turns) and the oldest past ``prompt_caches``."""
        if self.prompt_caches <= 0:
            return
        kept_ids = (ids + generated)[: cache.get_seq_length()]
        others = [(i, c) for i, c in self._caches if common_prefix(i, kept_ids) < len(i)]
        self._caches = [(kept_ids, cache), *others][: self.prompt_caches]

    def clear_cache(self) -> None:
        """Forget every kept cache (the next prompt is computed from scratch)."""
        self._caches = []

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return len(self.render(self.tokenizer, messages))

    async def stream(
        self, messages: Sequence[Message], params: GenerationParams
    ) -> AsyncGenerator[Chunk, None]:
        ids = self.render(self.tokenizer, messages)
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[object] = asyncio.Queue()

        def emit(item: object) -> None:
            loop.call_soon_threadsafe(pieces.put_nowait, item)

        streamer = TokenStreamer(self.tokenizer, emit, self.stop_at_newline)
        done: asyncio.Future[None] = loop.create_future()
        reply = Reply(ids, params, streamer, emit, lambda: _resolve(loop, done))
        self._turns.add(reply)
        try:
            while (item := await pieces.get()) is not _END:
                if isinstance(item, Exception):
                    raise ModelError("the model failed to generate a reply")
                assert isinstance(item, str)
                yield Chunk(item, None, len(ids), len(reply.generated))
                if streamer.hit_newline:
                    reply.cancel.set()  # the tokens after the newline are not wanted
            stopped = streamer.hit_newline or bool(
                reply.generated and reply.generated[-1] in self.eos_ids
            )
            yield Chunk(
                finish_reason="stop" if stopped else "length",
                prompt_tokens=len(ids),
                completion_tokens=len(reply.generated),
            )
        finally:
            reply.cancel.set()
            # Hold the caller (and so its queue slot) until the model is done with this reply.
            await asyncio.shield(done)

    def _advance(self, reply: Reply) -> bool:
        """One turn of ``reply`` (in the model's thread): True once it is over."""
        try:
            over = reply.cancel.is_set() or self._next_token(reply)
            if over:
                reply.streamer.push(reply.generated, final=True)
                if reply.cache is not None:
                    self._keep_cache(reply.cache, reply.ids, reply.generated)
        except Exception as exc:  # reported to the caller; the other replies go on
            self.clear_cache()
            logger.exception("generation failed")
            reply.emit(exc)
            over = True
        if over:
            reply.emit(_END)
            reply.finished()
        return over

    def _next_token(self, reply: Reply) -> bool:
        """Run the prompt (its first turn) or the last token through the model and pick the
        next token, as ``generate`` does; True if the reply ends with it."""
        if reply.cache is None:
            reply.cache = self._prompt_cache(reply.ids)
            reply.processors = self._processors(reply.params)
            fed = reply.ids[reply.cache.get_seq_length() :]
        else:
            fed = reply.generated[-1:]
        device = self.model.device
        with torch.inference_mode():
            out = self.model(
                input_ids=torch.tensor([fed], device=device),
                past_key_values=reply.cache,
                use_cache=True,
                logits_to_keep=1,
            )
            logits = out.logits[:, -1, :].to(torch.float32)
            seen = torch.tensor([reply.ids + reply.generated], device=device)
            scores = reply.processors(seen, logits)
            if reply.params.temperature > 0:
                token = int(torch.multinomial(torch.softmax(scores, dim=-1), 1)[0, 0])
            else:
                token = int(scores.argmax(dim=-1)[0])
        reply.generated.append(token)
        self.tokens_generated += 1
        reply.streamer.push(reply.generated)
        return token in self.eos_ids or len(reply.generated) >= reply.params.max_tokens

    def _processors(self, params: GenerationParams) -> LogitsProcessorList:
        """``generate``'s logits processors for these settings, in its order."""
        processors = LogitsProcessorList()
        if self.repetition_penalty != 1.0:
            processors.append(RepetitionPenaltyLogitsProcessor(self.repetition_penalty))
        if params.temperature > 0:
            if params.temperature != 1.0:
                processors.append(TemperatureLogitsWarper(params.temperature))
            if params.top_p < 1.0:
                processors.append(TopPLogitsWarper(params.top_p))
        return processors

    def warm_up(self) -> None:
        """Generate two tokens once: the first call pays one-off kernel set-up (seconds on CPU)."""
        ids = self.render(self.tokenizer, [Message("user", "こんにちは")])
        with torch.inference_mode():
            self.model.generate(
                torch.tensor([ids], device=self.model.device),
                attention_mask=torch.ones(
                    (1, len(ids)), dtype=torch.long, device=self.model.device
                ),
                max_new_tokens=2,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=self.eos_ids[0],
            )


def _resolve(loop: asyncio.AbstractEventLoop, done: asyncio.Future[None]) -> None:
    """Mark ``done`` from the model's thread (nothing to do if its loop has closed)."""

    def mark() -> None:
        if not done.done():
            done.set_result(None)

    try:
        loop.call_soon_threadsafe(mark)
    except RuntimeError:
        pass


def _eos_ids(model: Any, tokenizer: Any, stop_at_newline: bool) -> list[int]:
    ids: list[int] = []
    configured = model.generation_config.eos_token_id
    ids += configured if isinstance(configured, list) else [configured]
    for special in (tokenizer.eos_token, "<end_of_turn>"):
        tid = tokenizer.convert_tokens_to_ids(special) if special else None
        if tid is not None and tid != tokenizer.unk_token_id:
            ids.append(tid)
    if stop_at_newline:
        # Extra EOS ids end the line cheaply; stop_strings would re-decode a 262k vocabulary.
        ids += [i for tok, i in tokenizer.get_vocab().items() if "\n" in tok or tok == "<0x0A>"]
    return list(dict.fromkeys(i for i in ids if i is not None))
