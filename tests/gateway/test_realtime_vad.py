"""``/v1/realtime``'s server VAD runs on the hub's shared :class:`VADBatcher`, as ``/ws``'s
does, and a VAD failure is an ``error`` event, not the end of the connection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from openai import OpenAI

from bench.fakes import FakeBehaviour, create_fake_services
from gateway.app import create_app
from gateway.settings import GatewaySettings
from gateway.vad import TurnDetector, VADEvent
from gateway.vad_batcher import VADBatcher
from tests.gateway.test_realtime import Session, speech_b64, types
from tests.servers import serve

SPEECH_TURN = ["input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped"]


class FeedSpy:
    """The hub's ``vad_batcher.feed``, recording the detector of each call. While
    ``breaking``, the detector's model state is broken first, so the worker's model call
    fails for that stream as a broken onnxruntime would."""

    def __init__(self, batcher: VADBatcher) -> None:
        self.feed = batcher.feed
        self.detectors: list[TurnDetector] = []
        self.breaking = False

    async def __call__(self, detector: TurnDetector, data: bytes) -> list[VADEvent]:
        self.detectors.append(detector)
        if self.breaking:
            detector.stream.state = np.zeros((2, 1, 7), np.float32)
        return await self.feed(detector, data)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[OpenAI, FeedSpy]]:
    """A realtime client of a gateway on the fake services, and the spy on its batcher."""

    def synchronous(detector: TurnDetector, data: bytes) -> list[VADEvent]:
        raise AssertionError("TurnDetector.feed would run the model on the event loop")

    monkeypatch.setattr(TurnDetector, "feed", synchronous)
    with serve(create_fake_services(FakeBehaviour())) as fakes:
        app = create_app(GatewaySettings(asr_urls=[fakes], llm_urls=[fakes], tts_urls=[fakes]))
        with serve(app) as url:
            batcher = app.state.hub.vad_batcher
            feed_spy = FeedSpy(batcher)
            monkeypatch.setattr(batcher, "feed", feed_spy)
            ws_url = url.replace("http://", "ws://") + "/v1"
            yield (
                OpenAI(api_key="unused", base_url=url + "/v1", websocket_base_url=ws_url),
                feed_spy,
            )


def append(rt: Session, chunks: list[str]) -> None:
    for chunk in chunks:
        rt.send({"type": "input_audio_buffer.append", "audio": chunk})


def test_server_vad_goes_through_the_hub_batcher(
    spy: tuple[OpenAI, FeedSpy], jsut_wav: Path
) -> None:
    client, feeds = spy
    chunks = speech_b64(jsut_wav)
    with client.realtime.connect(model="koe") as conn:
        rt = Session(conn)
        rt.until("session.created")
        append(rt, chunks)
        got = rt.until("response.done")
    assert types(got)[:2] == SPEECH_TURN and "error" not in types(got)
    assert got[-1]["response"]["status"] == "completed"
    assert len(feeds.detectors) >= len(chunks) // 2  # the appends up to the reply, at least
    assert len(set(feeds.detectors)) == 1  # one detector: the connection's


def test_a_vad_failure_is_an_error_event_and_the_connection_goes_on(
    spy: tuple[OpenAI, FeedSpy], jsut_wav: Path
) -> None:
    client, feeds = spy
    feeds.breaking = True
    chunks = speech_b64(jsut_wav)
    with client.realtime.connect(model="koe") as conn:
        rt = Session(conn)
        rt.until("session.created")
        rt.send({"type": "input_audio_buffer.append", "audio": chunks[0], "event_id": "ev1"})
        error = rt.until("error")[-1]["error"]
        assert (error["type"], error["code"], error["event_id"]) == (
            "server_error",
            "vad_error",
            "ev1",
        )
        # Reported once while it lasts, not per append; client events are handled in order,
        # so "cleared" comes after all of these appends.
        append(rt, chunks[1:4])
        rt.send({"type": "input_audio_buffer.clear"})
        assert "error" not in types(rt.until("input_audio_buffer.cleared"))
        assert len(set(feeds.detectors)) == 4  # each failure left a fresh detector
        feeds.breaking = False
        append(rt, chunks)
        got = rt.until("response.done")
    assert types(got)[:2] == SPEECH_TURN and "error" not in types(got)
    assert got[-1]["response"]["status"] == "completed"
