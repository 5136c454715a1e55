"""The ``ChatModel`` protocol and the registry that picks a backend by name.

Backends live in their own modules and are imported only when chosen, so the
``openai`` forwarder runs without torch installed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from services.common.registry import load_factory
from services.common.settings import available_cores

from .prompt import Message

if TYPE_CHECKING:
    from .settings import LLMSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerationParams:
    max_tokens: int
    temperature: float
    top_p: float
    stop: list[str] = field(default_factory=list)
    """Stop strings; backends may pass them on, the service enforces them anyway."""


@dataclass(frozen=True)
class Chunk:
    """A piece of a streamed reply. The last chunk has ``finish_reason`` and the token counts."""

    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ChatModel(Protocol):
    """A chat model that streams a reply to a conversation.

    ``stream`` is an async generator. Closing it early (``aclose()``, or the
    task being cancelled) must stop the generation within a token or two and
    return only once the model is free again: that is how a client that hangs
    up, or a barge-in in the gateway, stops wasting the GPU or CPU.
    """

    backend: str
    model_id: str
    device: str
    context_tokens: int
    """Prompt plus reply must fit in this many tokens."""
    concurrent: bool
    """True if requests need no queue here (a remote server batches); False: each takes a slot
    of the service's queue first (``concurrent_replies`` slots)."""

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """Tokens the rendered prompt of ``messages`` takes (trimming uses it)."""
        ...

    def stream(
        self, messages: Sequence[Message], params: GenerationParams
    ) -> AsyncGenerator[Chunk, None]:
        """Yield the reply as it is generated, ending with a chunk that has ``finish_reason``."""
        ...


# name -> "module:factory"; the factory takes LLMSettings and returns a ChatModel.
BACKENDS: dict[str, str] = {
    "embedded": "services.llm.transformers_load:load_embedded",
    "transformers": "services.llm.transformers_load:load_transformers",
    "openai": "services.llm.backends_openai:load_openai",
}


def load_engine(settings: LLMSettings) -> ChatModel:
    """Build the backend named by ``settings.backend`` (this loads the model: slow)."""
    engine: ChatModel = load_factory(BACKENDS[settings.backend])(settings)
    logger.info("llm backend %s ready: %s on %s", engine.backend, engine.model_id, engine.device)
    return engine


def prepare(settings: LLMSettings) -> None:
    """``--prepare-only``: build the embedded model folder, or fetch the transformers model."""
    if settings.backend == "embedded":
        from .gguf_prepare import ensure_embedded

        ensure_embedded(settings.cache_dir)
    elif settings.backend == "transformers":
        from .transformers_load import fetch_model

        fetch_model(settings)
    else:
        logger.info("the openai backend has nothing to prepare")


def cpu_threads(requested: int | None) -> int:
    """Threads for torch: the request, else the cores this process may run on."""
    return requested or available_cores()
