"""What the routes share: the service state dependency, reply start-up, and SSE responses."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from services.common.errors import APIError, ServiceBusy, error_body
from services.common.queue import InferenceQueue

from .chat import build_prompt, check_messages, generation_params, reply_stream
from .engine import ChatModel, Chunk
from .schemas import GenerationFields
from .settings import LLMSettings


@dataclass
class LLMState:
    settings: LLMSettings
    queue: InferenceQueue
    engine: ChatModel | None = None


def get_state(request: Request) -> LLMState:
    state: LLMState = request.app.state.llm
    return state


State = Annotated[LLMState, Depends(get_state)]


def loaded_engine(state: LLMState) -> ChatModel:
    if state.engine is None:
        raise ServiceBusy("the model is still loading", retry_after_s=5)
    return state.engine


async def start_reply(
    state: LLMState, req: GenerationFields, max_tokens: int | None = None
) -> AsyncGenerator[Chunk, None]:
    """Validate, build the prompt and wait for the model: every 4xx/503 happens here.

    Returns the primed :func:`reply_stream` (its placeholder chunk consumed).
    """
    engine = loaded_engine(state)
    messages = check_messages(state.settings, req)
    params = generation_params(state.settings, req, max_tokens)
    prompt = await asyncio.to_thread(build_prompt, state.settings, engine, messages, params)
    chunks = reply_stream(engine, state.queue, prompt, params)
    await anext(chunks)  # raises ServiceBusy while the queue is full
    return chunks


def sse(payload: Any) -> str:
    """One Server-Sent Event; JSON kept readable (Japanese is not \\u-escaped)."""
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n"


def sse_error(exc: Exception) -> str:
    """An error after the headers went out can only be reported as an event."""
    if isinstance(exc, APIError):
        return sse(error_body(exc.message, exc.type, exc.param, exc.code))
    return sse(error_body("internal server error", "server_error"))


class SSEResponse(StreamingResponse):
    """A ``text/event-stream`` response that always closes the reply it streams.

    Closing the reply generator is what stops the model when a client hangs
    up, so it is done here explicitly, even when the body never started,
    instead of whenever the garbage collector gets to an abandoned generator.
    """

    media_type = "text/event-stream"

    def __init__(self, body: AsyncIterator[str], source: AsyncGenerator[Chunk, None]) -> None:
        # no-cache/no-transform and X-Accel-Buffering: proxies must not buffer the stream
        super().__init__(
            body, headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"}
        )
        self._closers = [getattr(body, "aclose", None), getattr(source, "aclose", None)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            for aclose in self._closers:
                if aclose is not None:
                    await aclose()
