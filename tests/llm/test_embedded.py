"""The real embedded model (gemma-3-270m from the GGUF packages) behind a real server."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

from services.llm.app import create_app
from services.llm.engine import GenerationParams, load_engine
from services.llm.prompt import Message
from services.llm.settings import DEFAULT_SYSTEM_PROMPT, LLMSettings

pytestmark = pytest.mark.slow

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
QUESTION: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "日本で一番高い山は何ですか？"}
]
ENGLISH_QUESTION: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "What is the highest mountain in Japan?"}
]
# Greedy decoding repeats this long sentence: a reply of about 45 tokens to cut short.
# Under the default system prompt (short replies) the model answers 「はい。」 instead.
LONG: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "ユーザーの言葉を一字一句そのまま繰り返してください。"},
    {
        "role": "user",
        "content": "次の文をそのまま繰り返してください：吾輩は猫である。名前はまだ無い。"
        "どこで生れたかとんと見当がつかぬ。何でも薄暗いじめじめした所で"
        "ニャーニャー泣いていた事だけは記憶している。",
    },
]


def _chat(url: str, messages: list[Any], max_tokens: int) -> str:
    """A greedy reply through the server."""
    body = {"messages": messages, "temperature": 0, "max_tokens": max_tokens}
    reply = httpx.post(f"{url}/chat", json=body, timeout=120)
    assert reply.status_code == 200, reply.text
    return str(reply.json()["message"])


def test_japanese_question_gets_a_one_sentence_japanese_reply(embedded_url: str) -> None:
    body = {"messages": QUESTION, "temperature": 0}
    reply = httpx.post(f"{embedded_url}/chat", json=body, timeout=120).json()
    message = reply["message"]
    assert JAPANESE.search(message), message
    assert "\n" not in message and reply["finish_reason"] == "stop"
    assert "富士山" in message


def test_english_question_gets_an_english_reply(embedded_url: str) -> None:
    body = {"messages": [{"role": "user", "content": "What is your favourite food?"}]}
    reply = httpx.post(f"{embedded_url}/chat", json={**body, "temperature": 0}, timeout=120)
    message = reply.json()["message"]
    assert re.search(r"[A-Za-z]{3}", message) and not JAPANESE.search(message), message
    assert message == message.strip() and "\n" not in message, repr(message)


def test_stream_is_incremental(embedded_url: str) -> None:
    arrivals: list[float] = []
    final: dict[str, Any] = {}
    body = {"messages": LONG, "temperature": 0, "max_tokens": 20}
    with httpx.stream("POST", f"{embedded_url}/chat/stream", json=body, timeout=120) as resp:
        assert resp.status_code == 200
        for line in resp.iter_lines():
            if not line.startswith("data: {"):
                continue
            event = json.loads(line[6:])
            if "delta" in event:
                arrivals.append(time.monotonic())
            else:
                final = event
    assert len(arrivals) >= 2
    # each token takes tens of milliseconds on a CPU: a buffered reply would arrive at once
    assert arrivals[-1] - arrivals[0] > 0.05
    assert final["usage"]["completion_tokens"] == 20 and final["finish_reason"] == "length"


def test_disconnect_stops_generation_within_two_tokens(
    embedded_url: str, embedded_engine: Any
) -> None:
    body = {"messages": LONG, "temperature": 0, "max_tokens": 200}
    before = embedded_engine.tokens_generated
    full = httpx.post(f"{embedded_url}/chat", json=body, timeout=120).json()
    natural = full["usage"]["completion_tokens"]
    assert embedded_engine.tokens_generated - before == natural >= 30

    start = embedded_engine.tokens_generated
    with httpx.stream("POST", f"{embedded_url}/chat/stream", json=body, timeout=120) as resp:
        for line in resp.iter_lines():
            if line.startswith('data: {"delta"'):
                break  # leaving the block closes the connection
    at_disconnect = embedded_engine.tokens_generated - start
    deadline = time.monotonic() + 30
    while httpx.get(f"{embedded_url}/health").json()["busy"]:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    after = embedded_engine.tokens_generated - start - at_disconnect
    print(f"tokens: natural {natural}, at disconnect {at_disconnect}, after {after}")
    assert after <= 2
    assert at_disconnect + after < natural


def test_openai_sdk_plain_and_streaming(embedded_url: str) -> None:
    client = OpenAI(base_url=f"{embedded_url}/v1", api_key="unused", max_retries=0)
    model = client.models.list().data[0].id
    plain = client.chat.completions.create(model=model, messages=QUESTION, temperature=0)
    assert JAPANESE.search(plain.choices[0].message.content or "")
    assert plain.usage is not None and plain.usage.completion_tokens > 0

    stream = client.chat.completions.create(
        model=model,
        messages=QUESTION,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


# Gemma 2's own chat template: no system role, strict user/model alternation.
GEMMA2_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}"
    "{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)


def test_transformers_backend_loads_a_chat_model_folder(
    tmp_path: Path, embedded_engine: Any
) -> None:
    """The production loading path, on a tiny random Gemma 2 with Gemma 2's template."""
    from transformers import Gemma2Config, Gemma2ForCausalLM

    tokenizer = embedded_engine.tokenizer
    tokenizer.save_pretrained(tmp_path)
    config = Gemma2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=1024,
        eos_token_id=[tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<end_of_turn>")],
    )
    Gemma2ForCausalLM(config).save_pretrained(tmp_path)
    (tmp_path / "chat_template.jinja").write_text(GEMMA2_TEMPLATE)

    settings = LLMSettings(backend="transformers", model=str(tmp_path), cache_dir=tmp_path)
    engine = load_engine(settings)
    assert engine.context_tokens == 1024  # the model's limit beats the 2048 setting
    messages = [Message("system", "system text"), Message("user", "user text")]
    prompt = engine.tokenizer.decode(engine.render(engine.tokenizer, messages))  # type: ignore[attr-defined]
    assert prompt.startswith("<bos><start_of_turn>user\nsystem text\n\nuser text")
    with TestClient(create_app(settings, engine=engine)) as client:
        body = {"messages": [{"role": "user", "content": "こんにちは"}], "max_tokens": 5}
        reply = client.post("/chat", json=body).json()
    assert reply["usage"]["completion_tokens"] >= 1
    assert reply["finish_reason"] in ("stop", "length")


def test_prompt_cache_reuses_the_shared_prefix_and_changes_nothing(
    embedded_url: str, embedded_engine: Any
) -> None:
    """The second turn of a conversation reuses the first's cache; greedy output must equal
    what a cold model says for the same prompt."""
    first = {"messages": QUESTION, "temperature": 0, "max_tokens": 24}
    reply = httpx.post(f"{embedded_url}/chat", json=first, timeout=120).json()["message"]
    follow_up = [
        *QUESTION,
        {"role": "assistant", "content": reply},
        {"role": "user", "content": "その山の高さは？"},
    ]
    hits = embedded_engine.cache_hits
    body = {"messages": follow_up, "temperature": 0, "max_tokens": 24}
    warm = httpx.post(f"{embedded_url}/chat", json=body, timeout=120).json()["message"]
    assert embedded_engine.cache_hits == hits + 1
    embedded_engine.clear_cache()  # cold: no reuse possible
    cold = httpx.post(f"{embedded_url}/chat", json=body, timeout=120).json()["message"]
    assert embedded_engine.cache_hits == hits + 1
    assert warm == cold and warm


def test_conversations_taking_turns_each_keep_their_prompt_cache(
    embedded_url: str, embedded_engine: Any
) -> None:
    """Two conversations with different system prompts, one turn each in turn: the second
    turn of the first still reuses all of its first turn, not only what the two share."""

    def chat(messages: list[dict[str, str]]) -> str:
        return _chat(embedded_url, messages, 12)

    first = [{"role": "system", "content": "あなたは猫です。"}, *QUESTION]
    other = [{"role": "system", "content": "You are a helpful robot."}, *ENGLISH_QUESTION]
    shown = len(embedded_engine.render(embedded_engine.tokenizer, [Message(**m) for m in first]))

    def take_turns() -> int:
        """The first conversation, the other, the first's second turn: tokens reused then."""
        embedded_engine.clear_cache()
        reply = chat(first)
        chat(other)
        follow_up = {"role": "user", "content": "なぜ？"}
        chat([*first, {"role": "assistant", "content": reply}, follow_up])
        return int(embedded_engine.last_reused)

    # the whole first prompt (and the reply it generated) came from its kept cache
    assert take_turns() > shown
    embedded_engine.prompt_caches = 1  # only the last generation kept: the other one's
    try:
        assert take_turns() < shown
    finally:
        embedded_engine.prompt_caches = 4


def _generate_reference(engine: Any, messages: list[Message], max_tokens: int) -> str:
    """What transformers' own ``generate`` says for this prompt, greedy, with the engine's
    settings: the turn-taking loop must pick the very same tokens."""
    import torch

    ids = engine.render(engine.tokenizer, messages)
    x = torch.tensor([ids])
    with torch.inference_mode():
        out = engine.model.generate(
            x,
            attention_mask=torch.ones_like(x),
            max_new_tokens=max_tokens,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            eos_token_id=engine.eos_ids,
            pad_token_id=engine.eos_ids[0],
            repetition_penalty=engine.repetition_penalty,
        )
    text = engine.tokenizer.decode(out[0, len(ids) :], skip_special_tokens=True)
    return str(text).split("\n")[0].strip()


@pytest.mark.parametrize("question", ["日本で一番高い山は何ですか？", "What is your food?"])
def test_replies_are_the_tokens_generate_picks(embedded_engine: Any, question: str) -> None:
    messages = [Message("system", DEFAULT_SYSTEM_PROMPT), Message("user", question)]

    async def ours() -> str:
        parts = []
        params = GenerationParams(max_tokens=24, temperature=0.0, top_p=1.0)
        async for chunk in embedded_engine.stream(messages, params):
            parts.append(chunk.text)
        return "".join(parts).strip()

    embedded_engine.clear_cache()
    reply = asyncio.run(ours())
    assert reply and reply == _generate_reference(embedded_engine, messages, 24)


def test_replies_at_once_take_turns_and_each_is_what_it_is_alone(embedded_url: str) -> None:
    """A long reply under way does not hold a short one back until it ends, and neither
    reply changes for having been written beside the other."""
    long_alone = _chat(embedded_url, LONG, 60)
    short_alone = _chat(embedded_url, QUESTION, 24)
    ended: dict[str, float] = {}
    texts: dict[str, str] = {}
    started = threading.Event()

    def long_reply() -> None:
        body = {"messages": LONG, "temperature": 0, "max_tokens": 60}
        parts = []
        with httpx.stream("POST", f"{embedded_url}/chat/stream", json=body, timeout=120) as r:
            for line in r.iter_lines():
                if line.startswith('data: {"delta"'):
                    started.set()
                    parts.append(json.loads(line[6:])["delta"])
        texts["long"] = "".join(parts).strip()
        ended["long"] = time.monotonic()

    worker = threading.Thread(target=long_reply)
    worker.start()
    assert started.wait(60)
    texts["short"] = _chat(embedded_url, QUESTION, 24)
    ended["short"] = time.monotonic()
    worker.join(120)
    assert ended["short"] < ended["long"]  # 60 tokens against about 10, a token each in turn
    assert texts == {"long": long_alone, "short": short_alone}
