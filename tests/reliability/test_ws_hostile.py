"""The WebSocket under hostile clients: malformed and oversized frames, floods, slow readers.

The gateway runs in its own process (as ``python -m gateway`` runs it, so
uvicorn's message size limit applies and its memory can be measured) over the
instant fake services. Each test checks that nothing crashes, that a
well-behaved session beside the hostile one completes its turns, and that the
gateway's memory and task count stay bounded.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from bench.fakes import FakeBehaviour, create_fake_services
from bench.wsclient import WSClient
from tests.reliability.harness import GatewayProcess, wait_until
from tests.servers import serve

LIMIT = 256 * 1024  # GATEWAY_MAX_MESSAGE_BYTES for these tests


@pytest.fixture(scope="module")
def fake() -> FakeBehaviour:
    return FakeBehaviour(audio_s=0.05)


@pytest.fixture(scope="module")
def gateway(fake: FakeBehaviour) -> Iterator[GatewayProcess]:
    with serve(create_fake_services(fake)) as url:
        gw = GatewayProcess(
            asr_urls=[url],
            llm_urls=[url],
            tts_urls=[url],
            max_message_bytes=LIMIT,
            reconnect_wait_s=0.1,
            adopt_grace_s=2,
            log_level="warning",
        )
        gw.start(120)
        try:
            yield gw
        finally:
            gw.stop()
            log = gw.log.read_text(errors="replace")
            assert "Traceback" not in log, log[-3000:]


@pytest.fixture(autouse=True)
def normal_fake(fake: FakeBehaviour) -> None:
    fake.reply_pieces = ["こんにちは。", "元気です。"]
    fake.audio_s, fake.token_delay_s, fake.tts_delay_s = 0.05, 0.0, 0.0


def names(events: list[dict[str, Any]]) -> list[str]:
    return [e["event"] for e in events]


def turn_works(c: WSClient, text: str = "こんにちは", timeout: float = 20) -> float:
    """A typed turn on ``c`` completes with its reply and audio; returns its duration."""
    t0 = time.monotonic()
    c.send({"event": "userMessage", "message": text})
    got = names(c.until("turnMetrics", timeout=timeout))
    assert "assistantMessageGenerated" in got and "assistantSpeechGenerated" in got, got
    return time.monotonic() - t0


# asyncio tasks per open socket: uvicorn's handler and keepalive ping, our writer
TASKS_PER_SOCKET = 3


def settle(gw: GatewayProcess, tasks: int, timeout: float = 30) -> None:
    """Wait until the gateway is down to ``tasks`` tasks and no live turn (flood drained)."""
    state: dict[str, Any] = {}

    def drained() -> bool:
        state.update(gw.health()["gateway"])
        state["tasks"] = gw.tasks()
        return state["tasks"] <= tasks and state["live_turns"] == 0

    try:
        wait_until(drained, timeout, "the gateway to drain")
    except AssertionError:
        raise AssertionError(f"not drained to {tasks} tasks: {state}") from None


HOSTILE_TEXT = [
    "[" * 100_000,  # nested past the JSON parser's recursion limit
    '{"event": "startSession", "messages": ' + "[" * 50_000 + "]" * 50_000 + "}",
    '{"event":"userMessage","message":"\\ud800"}',  # a lone surrogate
    '{"event":"startSession","systemPrompt":"\\udfff"}',
    '{"event":"dance\\ud800"}',
    "1e999999",
    "NaN",
    '{"event": 1}',
    '{"event": null}',
    '{"event": ["startSession"]}',
    '{"event": "userMessage", "message": {"nested": true}}',
    '{"event": "userMessage", "message": 12}',
    '{"event": "startSession", "messages": 5}',
    '{"event": "startSession", "language": "../../etc"}',
    '{"event": "startSession", "streamAudio": "yes please"}',
    "\x00\x01\x02",
    "",
    " " * 1000,
    '{"event":"userMessage","message":"' + "あ" * 5000 + '"}',  # over max_text_chars
]


def test_malformed_text_frames_get_errors_and_the_session_goes_on(
    gateway: GatewayProcess,
) -> None:
    rng = random.Random(9)
    frames = list(HOSTILE_TEXT)
    for _ in range(200):  # random text, random JSON, random events with random fields
        kind = rng.randrange(3)
        if kind == 0:
            frames.append("".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randrange(60))))
        elif kind == 1:
            frames.append(json.dumps([rng.random(), {"event": rng.random()}]))
        else:
            field = rng.choice(["message", "messages", "voice", "systemPrompt", "oneWavPerTurn"])
            value = rng.choice([None, 1, -1.5, [], {}, [1, {"role": 2}], "x" * rng.randrange(9)])
            if field == "message" and isinstance(value, str):
                value = " " * len(value)  # a message with text would start a turn
            frames.append(json.dumps({"event": "userMessage", field: value}))
    c = WSClient(gateway.ws_url)
    for frame in frames:
        c.ws.send(frame)
        event = c.recv(timeout=10)
        assert event["event"] == "error" and event["stage"] == "protocol", (frame[:80], event)
    # a history entry with a lone surrogate is repaired, not fatal (ASCII JSON carries it)
    history = [{"role": "user", "content": "\ud800壊れた履歴"}]
    c.ws.send(json.dumps({"event": "startSession", "messages": history}))
    turn_works(c)
    c.close()


def test_oversized_frames_close_only_that_socket(gateway: GatewayProcess) -> None:
    bystander = WSClient(gateway.ws_url)
    bystander.start()
    for frame in (b"\x00" * (LIMIT + 2), "x" * (LIMIT + 1)):
        c = WSClient(gateway.ws_url)
        c.start()
        c.ws.send(frame)
        with pytest.raises(ConnectionClosed) as closed:
            c.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009  # message too big
    # just under the limit is accepted: an odd-sized audio frame, then a whole turn
    c = WSClient(gateway.ws_url)
    c.start()
    c.ws.send(b"\x00" * (LIMIT - 1))
    turn_works(c)
    turn_works(bystander)
    c.close()
    bystander.close()
    assert gateway.alive()


def test_event_floods(gateway: GatewayProcess, fake: FakeBehaviour) -> None:
    settle(gateway, 10)
    base_tasks, base_rss = gateway.tasks(), gateway.rss_mb()
    calls_before = len(fake.chat_bodies)
    bystander = WSClient(gateway.ws_url)
    bystander.start()
    flooders = [WSClient(gateway.ws_url) for _ in range(3)]
    t0 = time.monotonic()
    for i in range(5000):
        # a new conversation per startSession: each must end the socket's previous turn
        flooders[0].start([{"role": "user", "content": f"履歴{i}"}])
        flooders[0].send({"event": "userMessage", "message": f"洪水{i}"})
        flooders[1].send({"event": "userMessage", "message": f"洪水{i}"})
        flooders[2].ws.send(random.randbytes(1 + i % 1500))  # audio-sized noise, odd sizes
    sent_s = time.monotonic() - t0
    # the bystander's turns go through while the floods are being worked off
    latencies = [turn_works(bystander, f"割り込み{k}") for k in range(3)]
    settle(gateway, base_tasks + 4 * TASKS_PER_SOCKET)  # four sockets still open
    rss_growth = gateway.rss_mb() - base_rss
    llm_calls = len(fake.chat_bodies) - calls_before
    print(
        f"\nflood: 15,000 frames in {sent_s:.2f} s; bystander turns {latencies}; "
        f"LLM requests {llm_calls}; RSS {base_rss:.0f} MB + {rss_growth:.1f} MB; "
        f"tasks {base_tasks} -> {gateway.tasks()}"
    )
    assert max(latencies) < 10
    # 10,000 typed turns were asked for; each new one cancels the last, so few reach the LLM
    assert llm_calls < 500
    assert rss_growth < 60
    for c in (bystander, *flooders):
        c.close()
    settle(gateway, base_tasks)
    assert gateway.alive()


def test_slow_reader_holds_bounded_memory_and_delays_nobody(
    gateway: GatewayProcess, fake: FakeBehaviour
) -> None:
    # 30 sentences of 2 s each: about 6 MB of JSON that the slow reader never takes
    fake.reply_pieces = [f"これは{i}番目の文です。" for i in range(30)]
    fake.audio_s = 2.0
    settle(gateway, 10)
    base_tasks, base_rss = gateway.tasks(), gateway.rss_mb()
    tts_before = len(fake.tts_texts)
    slow = WSClient(gateway.ws_url, max_queue=1)  # reads one frame into its buffer, no more
    slow.start(streamAudio=True)  # unpaced: the gateway sends as fast as the socket takes
    slow.send({"event": "userMessage", "message": "長い話をして"})
    wait_until(lambda: len(fake.tts_texts) - tts_before >= 30, 20, "the slow reader's reply")
    fast = WSClient(gateway.ws_url)
    fast.start(streamAudio=True)
    fake.reply_pieces = ["はい。"]
    latencies = [turn_works(fast, f"質問{k}") for k in range(3)]
    rss_growth = gateway.rss_mb() - base_rss
    print(
        f"\nslow reader: bystander turns {latencies}; "
        f"RSS {base_rss:.0f} MB + {rss_growth:.1f} MB while it held a 30-sentence reply"
    )
    assert max(latencies) < 5
    assert rss_growth < 60
    slow.ws.close_timeout = 1  # the gateway may be blocked writing to it: do not wait long
    slow.close()
    fast.close()
    settle(gateway, base_tasks)
    assert gateway.alive()
