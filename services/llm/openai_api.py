"""OpenAI-compatible routes: ``/v1/chat/completions`` (plain and streamed) and ``/v1/models``.

Enough of the API for the official SDKs and common tools: one choice, text
content, ``stream_options.include_usage``. The streamed form follows OpenAI's
chunks: a first chunk with the assistant role, content chunks, a chunk with
``finish_reason``, an optional usage chunk with no choices, then ``[DONE]``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator

from fastapi import APIRouter

from .chat import collect
from .deps import SSEResponse, State, loaded_engine, sse, sse_error, start_reply
from .engine import Chunk
from .schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    ChunkDelta,
    ModelCard,
    ModelList,
    Usage,
)

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["openai"])
STARTED = int(time.time())


def _usage(chunk: Chunk) -> Usage:
    total = chunk.prompt_tokens + chunk.completion_tokens
    return Usage(
        prompt_tokens=chunk.prompt_tokens,
        completion_tokens=chunk.completion_tokens,
        total_tokens=total,
    )


@router.get("/models", response_model=ModelList)
async def list_models(state: State) -> ModelList:
    engine = loaded_engine(state)
    return ModelList(data=[ModelCard(id=engine.model_id, created=STARTED)])


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def chat_completions(
    req: ChatCompletionRequest, state: State
) -> ChatCompletion | SSEResponse:
    chunks = await start_reply(state, req, req.max_completion_tokens)
    model = loaded_engine(state).model_id
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if not req.stream:
        reply = await collect(chunks)
        last = Chunk("", reply.finish_reason, reply.prompt_tokens, reply.completion_tokens)
        return ChatCompletion(
            id=ident,
            created=created,
            model=model,
            choices=[
                Choice(
                    message=AssistantMessage(content=reply.text),
                    finish_reason="length" if reply.finish_reason == "length" else "stop",
                )
            ],
            usage=_usage(last),
        )
    include_usage = bool(req.stream_options and req.stream_options.include_usage)

    def chunk_event(delta: ChunkDelta, finish: str | None = None) -> str:
        choice = ChunkChoice(
            delta=delta,
            finish_reason=None if finish is None else ("length" if finish == "length" else "stop"),
        )
        body = ChatCompletionChunk(id=ident, created=created, model=model, choices=[choice])
        # exclude usage=None: some clients treat "usage": null in every chunk as the usage chunk
        return sse(body.model_dump(exclude={"usage"}))

    async def events() -> AsyncIterator[str]:
        try:
            yield chunk_event(ChunkDelta(role="assistant", content=""))
            async for chunk in chunks:
                if chunk.finish_reason:
                    yield chunk_event(ChunkDelta(), chunk.finish_reason)
                    if include_usage:
                        usage = ChatCompletionChunk(
                            id=ident, created=created, model=model, choices=[], usage=_usage(chunk)
                        )
                        yield sse(usage.model_dump())
                elif chunk.text:
                    yield chunk_event(ChunkDelta(content=chunk.text))
        except Exception as exc:  # headers are gone: report in-band, never a traceback
            logger.exception("stream failed")
            yield sse_error(exc)
        yield sse("[DONE]")

    return SSEResponse(events(), chunks)
