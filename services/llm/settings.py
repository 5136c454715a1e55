"""LLM service settings: environment variables with the ``LLM_`` prefix."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings

# Japanese, because replies are spoken by a Japanese voice: one or two short
# sentences, nothing a TTS would read out literally (markdown, emoji, lists).
DEFAULT_SYSTEM_PROMPT = (
    "あなたは音声で会話する親切なアシスタントです。"
    "返事は話し言葉で、一文か二文の短い日本語にしてください。"
    "マークダウン、箇条書き、絵文字、記号は使わないでください。"
)


class LLMSettings(ServiceSettings):
    """Settings of the chat service (``python -m services.llm --help`` lists them)."""

    model_config = SettingsConfigDict(
        env_prefix="LLM_", use_attribute_docstrings=True, extra="ignore"
    )

    port: int = Field(8002, ge=1, le=65535)
    """TCP port to listen on."""
    backend: Literal["embedded", "transformers", "openai"] = "embedded"
    """embedded: gemma-3-270m from the wheels; transformers: a chat model; openai: forward."""
    model: str = "google/gemma-2-2b-jpn-it"
    """Hub id or local folder for the transformers backend; model name for the openai backend."""
    device: str = "auto"
    """auto (CUDA if available, else CPU), cpu, cuda or cuda:N."""
    threads: int | None = Field(None, ge=1, le=256)
    """CPU threads for torch. Unset: every core this process may use."""
    nice: int = Field(10, ge=0, le=19)
    """CPU priority (Unix nice value). The LLM yields to ASR and TTS on shared cores: the
    sentence being spoken goes before the next one being written (measured on 2 cores: TTS of
    a first clause took 2.4x as long while the LLM generated at equal priority, 1.1x at 10)."""
    cpu_int8_lm_head: bool = True
    """On CPU, keep the output layer (the large vocabulary) in int8: about 1.7x tokens/s."""
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    """System prompt added when a conversation has none. Empty: add none."""
    context_tokens: int = Field(2048, ge=256, le=131072)
    """Prompt plus reply must fit here; older turns are dropped first (never the system prompt)."""
    default_max_tokens: int = Field(128, ge=1, le=8192)
    """Reply length limit when a request gives none."""
    max_tokens_limit: int = Field(1024, ge=1, le=32768)
    """Largest max_tokens a request may ask for; more is a 400."""
    max_content_chars: int = Field(8000, ge=1, le=1_000_000)
    """Longest message content accepted, in characters; more is a 413."""
    max_messages: int = Field(200, ge=1, le=10000)
    """Most messages one request may carry."""
    # A 270M base model strays when sampled hotter, hence the lower embedded default.
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    """Temperature when a request gives none (0: greedy). Unset: 0.3 embedded, 0.7 others."""
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    """Nucleus sampling when a request gives none."""
    repetition_penalty: float = Field(1.1, ge=1.0, le=2.0)
    """Discourages the small embedded model from looping (transformers backends only)."""
    prompt_caches: int = Field(4, ge=0, le=64)
    """Transformers backends: how many recent generations keep their key/value cache for
    the next prompts that begin the same way (conversations taking turns, Japanese and
    English system prompts). Each holds its prompt's cache: about 36 KB a token for the
    embedded model (5 MB for a 130-token prompt), far more for a large model. 0: none."""
    concurrent_replies: int = Field(4, ge=1, le=64)
    """Transformers backends: replies written at once. Each writes its first 16 tokens in the
    order they came, then they take turns a token each (N replies get 1/N of the tokens per
    second), so a new request's first words need not wait until a long reply has ended.
    More wait in line (max_queue). 1: one reply at a time."""
    openai_base_url: str = "http://127.0.0.1:8080/v1"
    """openai backend: base URL of the server (vLLM, llama.cpp server, Ollama: .../v1)."""
    openai_api_key: SecretStr | None = None
    """openai backend: bearer token for that server, if it needs one."""
    openai_timeout_s: float = Field(60.0, gt=0, le=3600)
    """openai backend: connect and read timeout."""
    served_model_name: str | None = None
    """Model id shown by /v1/models and in replies. Unset: derived from the backend."""

    def default_temperature(self) -> float:
        if self.temperature is not None:
            return self.temperature
        return 0.3 if self.backend == "embedded" else 0.7
