"""Request and response bodies of the LLM service (simple routes and the OpenAI-shaped ones)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator

# "developer" is what newer OpenAI clients send instead of "system"; treated the same.
Role = Literal["system", "developer", "user", "assistant"]
FinishReason = Literal["stop", "length"]


class ChatMessage(BaseModel):
    role: Role
    # StrictStr: a number or a list of content parts is a 400, not silently str()-ed
    content: StrictStr


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class GenerationFields(BaseModel):
    """Sampling fields shared by ``/chat`` and ``/v1/chat/completions``."""

    model_config = ConfigDict(extra="ignore")

    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    """Reply length limit in tokens (upper bound: the service's max_tokens_limit)."""
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    stop: StrictStr | list[StrictStr] | None = None
    """Up to 4 strings; the reply ends before the first one that appears."""

    def stop_list(self) -> list[str]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return [s for s in stops if s]


class ChatRequest(GenerationFields):
    """Body of ``/chat`` and ``/chat/stream``; a bare JSON list of messages (old API) works too."""

    @model_validator(mode="before")
    @classmethod
    def _accept_bare_list(cls, data: Any) -> Any:
        return {"messages": data} if isinstance(data, list) else data


class ChatResponse(BaseModel):
    message: str
    finish_reason: FinishReason
    usage: Usage


class StreamDelta(BaseModel):
    """One ``/chat/stream`` event carrying text."""

    delta: str


class StreamEnd(BaseModel):
    """The last ``/chat/stream`` event before ``data: [DONE]``."""

    finish_reason: FinishReason
    usage: Usage
    message: str
    """The whole reply, as ``/chat`` would have answered it."""


# --- OpenAI-shaped -------------------------------------------------------------------------


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(GenerationFields):
    model: str | None = None
    """Ignored beyond echoing: this service serves one model."""
    max_completion_tokens: int | None = Field(None, ge=1)
    """Newer name of ``max_tokens``; wins when both are given."""
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=1)


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


class ChunkDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: FinishReason | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "koe"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class Health(BaseModel):
    status: Literal["ok", "loading"]
    backend: str
    model: str
    device: str
    loaded: bool
    busy: bool
    """A reply is being written."""
    waiting: int
    """Requests waiting for the model (all of its LLM_CONCURRENT_REPLIES taken)."""
