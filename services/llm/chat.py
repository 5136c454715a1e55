"""What every route does around a backend: check limits, build the prompt, stream clean text.

Backends only generate. The rules a caller relies on (the system prompt,
history trimming, stop strings, spoken-style clean-up, one generation at a
time) live here once, so all backends and all routes behave the same.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from services.common.errors import APIError, PayloadTooLarge
from services.common.queue import InferenceQueue

from .engine import ChatModel, Chunk, GenerationParams
from .prompt import ContextOverflow, Message, normalize, trim_history, with_system_prompt
from .schemas import GenerationFields
from .settings import LLMSettings
from .textfilter import SpokenFilter, StopMatcher


def generation_params(
    settings: LLMSettings, req: GenerationFields, max_tokens: int | None = None
) -> GenerationParams:
    """Fill in defaults and enforce the service's limits (a 400 names the offending field)."""
    default = min(settings.default_max_tokens, settings.max_tokens_limit)
    max_tokens = max_tokens or req.max_tokens or default
    if max_tokens > settings.max_tokens_limit:
        raise APIError(
            f"max_tokens must be at most {settings.max_tokens_limit}",
            param="max_tokens",
            code="invalid_value",
        )
    stop = req.stop_list()
    if len(stop) > 4:
        raise APIError("at most 4 stop strings", param="stop", code="invalid_value")
    return GenerationParams(
        max_tokens=max_tokens,
        temperature=settings.default_temperature() if req.temperature is None else req.temperature,
        top_p=settings.top_p if req.top_p is None else req.top_p,
        stop=stop,
    )


def check_messages(settings: LLMSettings, req: GenerationFields) -> list[Message]:
    """Validate the limits that depend on settings; return the messages as engines see them."""
    if len(req.messages) > settings.max_messages:
        raise APIError(
            f"at most {settings.max_messages} messages per request",
            param="messages",
            code="too_many_messages",
        )
    for i, m in enumerate(req.messages):
        if len(m.content) > settings.max_content_chars:
            raise PayloadTooLarge(
                f"messages.{i}.content is longer than {settings.max_content_chars} characters",
                param=f"messages.{i}.content",
                code="content_too_long",
            )
    messages = normalize([Message(m.role, m.content) for m in req.messages])
    if all(m.role == "system" for m in messages):
        raise APIError(
            "messages must contain a user or assistant turn", param="messages", code="no_turn"
        )
    return messages


def build_prompt(
    settings: LLMSettings, engine: ChatModel, messages: list[Message], params: GenerationParams
) -> list[Message]:
    """Add the default system prompt and drop the oldest turns that do not fit the context.

    Blocking (it tokenizes): call it from a worker thread.
    """
    budget = engine.context_tokens - params.max_tokens
    if budget <= 0:
        raise APIError(
            f"max_tokens must be below the context size ({engine.context_tokens})",
            param="max_tokens",
            code="context_length_exceeded",
        )
    full = with_system_prompt(messages, settings.system_prompt)
    try:
        return trim_history(full, engine.count_tokens, budget)
    except ContextOverflow as exc:
        raise APIError(str(exc), param="messages", code="context_length_exceeded") from exc


@dataclass
class Reply:
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


async def reply_stream(
    engine: ChatModel, queue: InferenceQueue, messages: list[Message], params: GenerationParams
) -> AsyncGenerator[Chunk, None]:
    """Stream a cleaned reply.

    The first item is an empty chunk yielded as soon as the model is ours:
    prime the generator with ``anext`` before sending response headers, so a
    full queue still becomes a 503. Then text chunks, then one chunk with
    ``finish_reason``. Closing the generator stops the generation.
    """
    if not engine.concurrent:
        await queue.acquire()
    try:
        yield Chunk()
        stops, spoken = StopMatcher(params.stop), SpokenFilter()
        last = Chunk()
        finish = "length"
        async with contextlib.aclosing(engine.stream(messages, params)) as chunks:
            async for chunk in chunks:
                last = chunk
                if chunk.finish_reason:
                    finish = chunk.finish_reason
                    break
                if text := spoken.feed(stops.feed(chunk.text)):
                    yield Chunk(text, None, chunk.prompt_tokens, chunk.completion_tokens)
                if stops.stopped:  # leaving the block closes the engine's stream: it stops
                    finish = "stop"
                    break
        if text := spoken.feed(stops.flush(), final=True):
            yield Chunk(text, None, last.prompt_tokens, last.completion_tokens)
        yield Chunk("", finish, last.prompt_tokens, last.completion_tokens)
    finally:
        if not engine.concurrent:
            queue.release()


async def collect(chunks: AsyncGenerator[Chunk, None]) -> Reply:
    """Run a primed :func:`reply_stream` to its end."""
    parts: list[str] = []
    last = Chunk(finish_reason="length")
    async with contextlib.aclosing(chunks):
        async for chunk in chunks:
            parts.append(chunk.text)
            last = chunk
    return Reply(
        "".join(parts).strip(),
        last.finish_reason or "length",
        last.prompt_tokens,
        last.completion_tokens,
    )
