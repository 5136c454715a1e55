"""HTTP behaviour with a scripted fake engine: shapes, streaming format, errors, limits."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from services.llm.app import create_app
from services.llm.settings import DEFAULT_SYSTEM_PROMPT
from tests.llm.conftest import FakeChat, fake_settings
from tests.servers import serve

USER = [{"role": "user", "content": "日本の首都は？"}]


def events(text: str) -> list[Any]:
    out = []
    for line in text.splitlines():
        if line.startswith("data: "):
            data = line[len("data: ") :]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def assert_error(resp: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    return body["error"]


def test_chat_answers_message_finish_reason_usage(client: TestClient, fake: FakeChat) -> None:
    resp = client.post("/chat", json={"messages": USER, "max_tokens": 10})
    assert resp.status_code == 200
    body = resp.json()
    assert body["message"] == "東京です。"
    assert body["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == 3
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 3
    # the default Japanese system prompt was put in front
    assert fake.seen[0][0].role == "system"
    assert fake.seen[0][0].content == DEFAULT_SYSTEM_PROMPT


def test_chat_accepts_the_old_bare_list_body(client: TestClient) -> None:
    resp = client.post("/chat", json=USER)
    assert resp.status_code == 200
    assert resp.json()["message"] == "東京です。"


def test_length_finish_reason(client: TestClient) -> None:
    body = client.post("/chat", json={"messages": USER, "max_tokens": 2}).json()
    assert body == {
        "message": "東京です",
        "finish_reason": "length",
        "usage": body["usage"],
    }


def test_markdown_and_emoji_are_stripped_in_both_forms() -> None:
    fake = FakeChat(["**東", "京**", "です", "😊", "。"])
    with TestClient(create_app(fake_settings(), engine=fake)) as c:
        assert c.post("/chat", json=USER).json()["message"] == "東京です。"
        stream = events(c.post("/chat/stream", json={"messages": USER}).text)
        deltas = "".join(e["delta"] for e in stream if isinstance(e, dict) and "delta" in e)
        assert deltas == "東京です。"


def test_stop_strings_cut_the_reply_and_stop_generation() -> None:
    fake = FakeChat(["東京", "です", "。", "ほか", "に"])
    with TestClient(create_app(fake_settings(), engine=fake)) as c:
        body = c.post("/chat", json={"messages": USER, "stop": ["。"]}).json()
    assert body["message"] == "東京です"
    assert body["finish_reason"] == "stop"
    assert fake.tokens_generated == 3  # nothing generated after the stop string
    assert fake.closed == 1


def test_stream_format(client: TestClient) -> None:
    resp = client.post("/chat/stream", json={"messages": USER})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    evs = events(resp.text)
    assert [e["delta"] for e in evs[:-2]] == ["東京", "です", "。"]
    assert evs[-2]["finish_reason"] == "stop"
    assert evs[-2]["message"] == "東京です。"
    assert evs[-2]["usage"]["completion_tokens"] == 3
    assert evs[-1] == "[DONE]"


def test_history_is_trimmed_to_the_context(fake: FakeChat) -> None:
    fake.context_tokens = 300
    history = []
    for i in range(20):
        history += [
            {"role": "user", "content": f"質問{i}" * 5},
            {"role": "assistant", "content": f"答え{i}" * 5},
        ]
    history.append({"role": "user", "content": "最後"})
    with TestClient(create_app(fake_settings(), engine=fake)) as c:
        assert c.post("/chat", json={"messages": history, "max_tokens": 50}).status_code == 200
    sent = fake.seen[0]
    assert sent[0].content == DEFAULT_SYSTEM_PROMPT
    assert sent[-1].content == "最後"
    assert fake.count_tokens(sent) <= 300 - 50
    assert len(sent) < len(history)


def test_openai_routes(client: TestClient) -> None:
    models = client.get("/v1/models").json()
    assert models["data"][0]["id"] == "fake-model"
    plain = client.post("/v1/chat/completions", json={"model": "x", "messages": USER}).json()
    assert plain["object"] == "chat.completion"
    assert plain["choices"][0]["message"] == {"role": "assistant", "content": "東京です。"}
    body = {"messages": USER, "stream": True, "stream_options": {"include_usage": True}}
    evs = events(client.post("/v1/chat/completions", json=body).text)
    assert evs[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in evs[:-2])
    assert text == "東京です。"
    assert evs[-3]["choices"][0]["finish_reason"] == "stop"
    assert evs[-2]["choices"] == [] and evs[-2]["usage"]["completion_tokens"] == 3
    assert evs[-1] == "[DONE]"


def test_health_and_docs(client: TestClient) -> None:
    health = client.get("/health").json()
    assert health["loaded"] is True and health["backend"] == "fake"
    assert health["busy"] is False
    assert "/chat/stream" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200


def test_token_is_required_when_configured(fake: FakeChat) -> None:
    with TestClient(create_app(fake_settings(api_token="s3cret"), engine=fake)) as c:
        assert c.get("/health").status_code == 200
        assert_error(c.post("/chat", json=USER), 401)
        ok = c.post("/chat", json=USER, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200


BAD_BODIES: list[tuple[str, Any, int]] = [
    ("missing messages", {"max_tokens": 5}, 400),
    ("empty messages", {"messages": []}, 400),
    ("empty bare list", [], 400),
    ("unknown role", {"messages": [{"role": "wizard", "content": "hi"}]}, 400),
    ("missing content", {"messages": [{"role": "user"}]}, 400),
    ("number content", {"messages": [{"role": "user", "content": 42}]}, 400),
    ("list content", {"messages": [{"role": "user", "content": [{"type": "text"}]}]}, 400),
    ("null content", {"messages": [{"role": "user", "content": None}]}, 400),
    ("only a system message", {"messages": [{"role": "system", "content": "x"}]}, 400),
    ("max_tokens 0", {"messages": USER, "max_tokens": 0}, 400),
    ("max_tokens negative", {"messages": USER, "max_tokens": -1}, 400),
    ("max_tokens absurd", {"messages": USER, "max_tokens": 10**9}, 400),
    ("max_tokens a string", {"messages": USER, "max_tokens": "many"}, 400),
    ("temperature too high", {"messages": USER, "temperature": 9}, 400),
    ("five stop strings", {"messages": USER, "stop": list("abcde")}, 400),
    ("oversized content", {"messages": [{"role": "user", "content": "あ" * 201}]}, 413),
    ("not an object", "hello", 400),
]


@pytest.mark.parametrize("path", ["/chat", "/chat/stream", "/v1/chat/completions"])
@pytest.mark.parametrize(("case", "body", "status"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_input(
    client: TestClient, fake: FakeChat, path: str, case: str, body: Any, status: int
) -> None:
    if path.startswith("/v1") and case == "empty bare list":
        status = 400  # the OpenAI route has no bare-list form: still a 400
    assert_error(client.post(path, json=body), status)
    assert fake.seen == []  # nothing reached the model


@pytest.mark.parametrize("path", ["/chat", "/chat/stream", "/v1/chat/completions"])
def test_malformed_json(client: TestClient, path: str) -> None:
    headers = {"content-type": "application/json"}
    resp = client.post(path, content=b'{"messages": [', headers=headers)
    assert "JSON" in assert_error(resp, 400)["message"]


def test_too_long_for_the_context(client: TestClient, fake: FakeChat) -> None:
    fake.context_tokens = 100
    resp = client.post("/chat", json={"messages": [{"role": "user", "content": "あ" * 150}]})
    assert_error(resp, 400, "context_length_exceeded")


@pytest.mark.parametrize("slots", [1, 2])
def test_full_queue_answers_503_with_retry_after(slots: int) -> None:
    fake = FakeChat()
    fake.gate.clear()  # the first requests hold the model until we let them go
    settings = fake_settings(max_queue=0, concurrent_replies=slots)
    with serve(create_app(settings, engine=fake)) as url:
        first: list[httpx.Response] = []
        workers = [
            threading.Thread(
                target=lambda: first.append(httpx.post(f"{url}/chat", json=USER, timeout=30))
            )
            for _ in range(slots)
        ]
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + 10
        while len(fake.seen) < slots:  # every slot taken: each of them reached the engine
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert httpx.get(f"{url}/health").json()["busy"]
        for path in ("/chat", "/chat/stream", "/v1/chat/completions"):
            resp = httpx.post(f"{url}{path}", json={"messages": USER}, timeout=30)
            assert_error(resp, 503, "queue_full")
            assert int(resp.headers["retry-after"]) >= 1
        fake.gate.set()
        for worker in workers:
            worker.join(timeout=30)
        assert [r.status_code for r in first] == [200] * slots
        assert httpx.post(f"{url}/chat", json=USER, timeout=30).status_code == 200


def test_closing_the_stream_closes_the_engine_stream() -> None:
    fake = FakeChat(["あ"] * 200, delay_s=0.02)
    with serve(create_app(fake_settings(max_tokens_limit=500), engine=fake)) as url:
        with httpx.stream(
            "POST", f"{url}/chat/stream", json={"messages": USER, "max_tokens": 300}
        ) as resp:
            lines = resp.iter_lines()
            assert next(line for line in lines if line.startswith("data:"))
        deadline = time.monotonic() + 5
        while fake.closed == 0:
            assert time.monotonic() < deadline, "the engine stream was never closed"
            time.sleep(0.01)
        at_close = fake.tokens_generated
        time.sleep(0.2)
        assert fake.tokens_generated == at_close < 50
        assert not httpx.get(f"{url}/health").json()["busy"]
