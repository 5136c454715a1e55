"""``openai`` backend: forward to an OpenAI-compatible server (vLLM, llama.cpp, Ollama).

How a user who outgrows one PC moves the LLM onto a serving engine: this
service keeps its routes, system prompt, trimming and clean-up, and streams
the upstream reply through. Closing the stream closes the upstream request,
which those servers take as a signal to abort the generation.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import httpx

from services.common.errors import APIError

from .engine import Chunk, GenerationParams
from .prompt import Message
from .settings import LLMSettings

logger = logging.getLogger(__name__)


class UpstreamError(APIError):
    """The forwarded-to server failed or could not be reached: not the caller's fault."""

    status_code = 502
    type = "upstream_error"


class OpenAIForward:
    """A :class:`~services.llm.engine.ChatModel` that streams from a remote server."""

    backend = "openai"
    concurrent = True  # the remote server batches; serialising here would waste it

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        context_tokens: int = 8192,
        timeout_s: float = 60.0,
        served_name: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.upstream_model = model
        self.model_id = served_name or model
        self.device = self.base_url
        self.context_tokens = context_tokens
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=httpx.Timeout(timeout_s)
        )

    def count_tokens(self, messages: Sequence[Message]) -> int:
        # No tokenizer here: one token per character over-counts English and is about right
        # for Japanese, so trimming errs on the safe side. 4 per message for the template.
        return sum(len(m.content) + 4 for m in messages)

    async def stream(
        self, messages: Sequence[Message], params: GenerationParams
    ) -> AsyncGenerator[Chunk, None]:
        body: dict[str, Any] = {
            "model": self.upstream_model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if params.stop:
            body["stop"] = params.stop
        prompt_tokens, completion, finish = 0, 0, "stop"
        try:
            async with self.client.stream("POST", "/chat/completions", json=body) as resp:
                if resp.status_code >= 400:
                    await resp.aread()
                    raise _upstream_failure(resp)
                async for line in resp.aiter_lines():
                    if not line.startswith("data:"):
                        continue  # blank separators, comments and keep-alives
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    event = json.loads(data)
                    if usage := event.get("usage"):
                        prompt_tokens = usage.get("prompt_tokens", prompt_tokens)
                        completion = usage.get("completion_tokens", completion)
                    for choice in event.get("choices") or []:
                        finish = choice.get("finish_reason") or finish
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            completion += 0 if usage else 1  # estimate until usage arrives
                            yield Chunk(text, None, prompt_tokens, completion)
        except httpx.HTTPError as exc:
            logger.warning("upstream %s failed: %s", self.base_url, exc)
            raise UpstreamError(
                f"the upstream LLM server at {self.base_url} is unreachable", code="upstream"
            ) from exc
        except json.JSONDecodeError as exc:
            raise UpstreamError("the upstream LLM server sent malformed events") from exc
        yield Chunk("", "length" if finish == "length" else "stop", prompt_tokens, completion)

    async def aclose(self) -> None:
        await self.client.aclose()


def _upstream_failure(resp: httpx.Response) -> APIError:
    try:
        message = resp.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = resp.text[:200] or resp.reason_phrase
    # The caller's mistakes (4xx upstream) stay 4xx; an upstream crash is a 502.
    if 400 <= resp.status_code < 500 and resp.status_code not in (401, 403, 404):
        return APIError(f"upstream rejected the request: {message}", code="upstream_rejected")
    return UpstreamError(f"upstream LLM server answered {resp.status_code}: {message}")


def load_openai(settings: LLMSettings) -> OpenAIForward:
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    return OpenAIForward(
        settings.openai_base_url,
        settings.model,
        api_key=key,
        context_tokens=settings.context_tokens,
        timeout_s=settings.openai_timeout_s,
        served_name=settings.served_model_name,
    )
