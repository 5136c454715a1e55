"""LLM test fixtures: a scripted fake engine for HTTP tests, one real embedded model per session."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.llm.app import create_app
from services.llm.engine import Chunk, GenerationParams
from services.llm.prompt import Message
from services.llm.settings import LLMSettings
from tests.servers import serve


class FakeChat:
    """A ChatModel that streams scripted pieces; one token per piece, one per character."""

    backend = "fake"
    model_id = "fake-model"
    device = "cpu"
    concurrent = False

    def __init__(self, pieces: Sequence[str] = ("東京", "です", "。"), delay_s: float = 0.0):
        self.pieces = list(pieces)
        self.delay_s = delay_s
        self.context_tokens = 512
        self.gate = threading.Event()  # cleared: generation waits (queue tests)
        self.gate.set()
        self.seen: list[list[Message]] = []
        self.params: list[GenerationParams] = []
        self.tokens_generated = 0
        self.closed = 0

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return sum(len(m.content) + 1 for m in messages)

    async def stream(
        self, messages: Sequence[Message], params: GenerationParams
    ) -> AsyncGenerator[Chunk, None]:
        self.seen.append(list(messages))
        self.params.append(params)
        prompt = self.count_tokens(messages)
        n = 0
        try:
            await asyncio.to_thread(self.gate.wait)
            for piece in self.pieces[: params.max_tokens]:
                await asyncio.sleep(self.delay_s)
                n += 1
                self.tokens_generated += 1
                yield Chunk(piece, None, prompt, n)
            yield Chunk("", "stop" if n == len(self.pieces) else "length", prompt, n)
        finally:
            self.closed += 1


def fake_settings(**overrides: object) -> LLMSettings:
    base: dict[str, object] = {"max_content_chars": 200, "max_tokens_limit": 64}
    base.update(overrides)
    return LLMSettings(**base)  # type: ignore[arg-type]


@pytest.fixture
def fake() -> FakeChat:
    return FakeChat()


@pytest.fixture
def client(fake: FakeChat) -> Iterator[TestClient]:
    with TestClient(create_app(fake_settings(), engine=fake)) as c:
        yield c


@pytest.fixture(scope="session")
def embedded_engine(cache_dir: Path) -> Any:  # a TransformersChat; torch imported lazily
    """The embedded gemma-3-270m, loaded once for the whole session (built once per machine)."""
    from services.llm.engine import load_engine

    return load_engine(LLMSettings(backend="embedded", cache_dir=cache_dir))


@pytest.fixture(scope="session")
def embedded_url(embedded_engine: Any, cache_dir: Path) -> Iterator[str]:
    """A real LLM server on loopback around the shared embedded model."""
    settings = LLMSettings(backend="embedded", cache_dir=cache_dir)
    with serve(create_app(settings, engine=embedded_engine)) as url:
        yield url
