"""LLM service (port 8002): chat replies for the voice pipeline, plain and streamed.

Routes:

- ``POST /chat``: ``{messages, max_tokens?, temperature?, top_p?, stop?}`` (or, as the
  old API, a bare JSON list of messages) answers ``{message, finish_reason, usage}``.
- ``POST /chat/stream``: the same body; Server-Sent Events, one JSON object per
  ``data:`` line::

      data: {"delta": "日本の首都は"}
      data: {"delta": "東京です。"}
      data: {"finish_reason": "stop", "usage": {"prompt_tokens": 120,
             "completion_tokens": 7, "total_tokens": 127}, "message": "日本の首都は東京です。"}
      data: [DONE]

  The final object (no ``delta`` key) always precedes ``[DONE]``; an error after
  the stream started arrives as ``data: {"error": {...}}`` followed by ``[DONE]``.
  Closing the connection stops the generation at the next token.
- ``POST /v1/chat/completions`` and ``GET /v1/models``: OpenAI-compatible.
- ``GET /health``: backend, model, device, whether it is loaded, queue state.

Errors always have the shape ``{"error": {message, type, param, code}}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI

from services.common.auth import make_token_checker
from services.common.errors import install_error_handlers
from services.common.queue import InferenceQueue

from . import openai_api
from .chat import collect
from .deps import LLMState, SSEResponse, State, sse, sse_error, start_reply
from .engine import ChatModel, Chunk, load_engine
from .schemas import ChatRequest, ChatResponse, Health, StreamDelta, StreamEnd, Usage
from .settings import LLMSettings

logger = logging.getLogger(__name__)

BARE_LIST_NOTE = "A bare JSON list of messages is accepted as well (the old API)."


def _usage(chunk: Chunk) -> Usage:
    return Usage(
        prompt_tokens=chunk.prompt_tokens,
        completion_tokens=chunk.completion_tokens,
        total_tokens=chunk.prompt_tokens + chunk.completion_tokens,
    )


def create_app(settings: LLMSettings | None = None, engine: ChatModel | None = None) -> FastAPI:
    """Build the service; with ``engine`` given (tests), nothing is loaded at start-up."""
    settings = settings or LLMSettings()
    # The openai backend queues nothing here; the transformers engines take turns in-process.
    queue = InferenceQueue(settings.max_queue, slots=settings.concurrent_replies)
    state = LLMState(settings=settings, queue=queue, engine=engine)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = state.engine is None
        if owned:
            # In a thread, so a slow first conversion never blocks the event loop.
            state.engine = await asyncio.to_thread(load_engine, settings)
        yield
        aclose = getattr(state.engine, "aclose", None)
        if owned and aclose is not None:
            await aclose()

    app = FastAPI(
        title="koe LLM",
        summary="Chat replies for a voice assistant: short, spoken-style, streamed.",
        version="0.1.0",
        lifespan=lifespan,
        dependencies=[Depends(make_token_checker(settings.api_token))],
    )
    app.state.llm = state
    install_error_handlers(app)
    app.include_router(openai_api.router)

    @app.get("/health", response_model=Health, tags=["service"])
    async def health(state: State) -> Health:
        engine = state.engine
        return Health(
            status="ok" if engine else "loading",
            backend=settings.backend if engine is None else engine.backend,
            model=settings.model if engine is None else engine.model_id,
            device="" if engine is None else engine.device,
            loaded=engine is not None,
            busy=state.queue.busy,
            waiting=state.queue.waiting,
        )

    @app.post("/chat", response_model=ChatResponse, tags=["chat"], description=BARE_LIST_NOTE)
    async def chat(req: ChatRequest, state: State) -> ChatResponse:
        reply = await collect(await start_reply(state, req))
        return ChatResponse(
            message=reply.text,
            finish_reason="length" if reply.finish_reason == "length" else "stop",
            usage=_usage(Chunk("", None, reply.prompt_tokens, reply.completion_tokens)),
        )

    @app.post(
        "/chat/stream",
        tags=["chat"],
        response_class=SSEResponse,
        status_code=200,
        description="Server-Sent Events: `{delta}` objects, a final "
        "`{finish_reason, usage, message}` object, then `[DONE]`. " + BARE_LIST_NOTE,
    )
    async def chat_stream(req: ChatRequest, state: State) -> SSEResponse:
        chunks = await start_reply(state, req)

        async def events() -> AsyncIterator[str]:
            parts: list[str] = []
            try:
                async for chunk in chunks:
                    if chunk.finish_reason:
                        end = StreamEnd(
                            finish_reason="length" if chunk.finish_reason == "length" else "stop",
                            usage=_usage(chunk),
                            message="".join(parts).strip(),
                        )
                        yield sse(end.model_dump())
                    elif chunk.text:
                        parts.append(chunk.text)
                        yield sse(StreamDelta(delta=chunk.text).model_dump())
            except Exception as exc:  # headers are gone: report in-band, never a traceback
                logger.exception("stream failed")
                yield sse_error(exc)
            yield sse("[DONE]")

        return SSEResponse(events(), chunks)

    return app
