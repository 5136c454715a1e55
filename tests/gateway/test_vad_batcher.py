"""The shared VAD worker: batched frames from many streams give each stream exactly the
events its own synchronous ``TurnDetector.feed`` gives, in order, whatever else happens."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from bench.fakes import FakeBehaviour, create_fake_services
from bench.wsclient import WSClient, speech_pcm
from gateway.app import create_app
from gateway.settings import GatewaySettings
from gateway.vad import FRAME_BYTES, Kind, TurnDetector
from gateway.vad_batcher import VADBatcher, VADStopped
from services.common.vad import SileroVAD, VADStream
from tests.reliability import test_pcm_buffering as synchronous_tests
from tests.servers import serve

pytestmark = pytest.mark.anyio

# The synchronous path's own tests' model, speech (two turns, the second cut by
# max_utterance_s) and parameters.
vad = synchronous_tests.vad
speech = synchronous_tests.speech
PARAMS = synchronous_tests.PARAMS
Events = list[tuple[Kind, bytes]]


@pytest.fixture
async def batcher(vad: SileroVAD) -> AsyncIterator[VADBatcher]:
    b = VADBatcher(vad)
    b.start()
    yield b
    await b.aclose()


def variant(speech: bytes, i: int) -> bytes:
    """Stream ``i``: the speech from another point on, as from an unrelated user."""
    cut = (i * 12_345 * 2) % len(speech)
    return speech[cut:] + speech[:cut]


def chunks(pcm: bytes, size: int) -> list[bytes]:
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


def synchronous(vad: SileroVAD, pcm: bytes) -> Events:
    return [(e.kind, e.audio) for e in TurnDetector(vad, PARAMS).feed(pcm)]


async def batched(batcher: VADBatcher, detector: TurnDetector, parts: list[bytes]) -> Events:
    out: Events = []
    for part in parts:
        out += [(e.kind, e.audio) for e in await batcher.feed(detector, part)]
    return out


async def test_many_streams_get_the_synchronous_events(
    vad: SileroVAD, batcher: VADBatcher, speech: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    run_batch = vad.run_batch

    def spy(streams: list[VADStream], frames: np.ndarray) -> np.ndarray:
        sizes.append(len(streams))
        return run_batch(streams, frames)

    monkeypatch.setattr(vad, "run_batch", spy)
    n = 24
    # the client's 1280-byte frames, and other cuts: odd ones, several VAD frames at once
    cut = [1280, 1280, 1, 777, 4096, 1281]
    pcms = [variant(speech, i) for i in range(n)]
    detectors = [TurnDetector(vad, PARAMS) for _ in range(n)]
    got = await asyncio.gather(
        *(
            batched(batcher, d, chunks(p, cut[i % len(cut)]))
            for i, (d, p) in enumerate(zip(detectors, pcms, strict=True))
        )
    )
    monkeypatch.undo()
    for pcm, events in zip(pcms, got, strict=True):
        assert events == synchronous(vad, pcm)
    assert any(kind is Kind.SPEECH_END for kind, _ in got[0])
    assert max(sizes) > 1  # the streams' frames really were batched together


async def test_frames_queued_together_stay_in_order(
    vad: SileroVAD, batcher: VADBatcher, speech: bytes
) -> None:
    detector = TurnDetector(vad, PARAMS)
    # every chunk is queued before the first is processed: several frames per stream wait
    results = await asyncio.gather(*(batcher.feed(detector, c) for c in chunks(speech, 3000)))
    got = [(e.kind, e.audio) for events in results for e in events]
    assert got == synchronous(vad, speech)


async def test_a_stream_closing_with_frames_pending(
    vad: SileroVAD, batcher: VADBatcher, speech: bytes
) -> None:
    closing, staying = TurnDetector(vad, PARAMS), TurnDetector(vad, PARAMS)
    # a thousand VAD frames, one per batch: most still queued when the connection goes
    long = speech * 4
    task = asyncio.create_task(batcher.feed(closing, long))
    other = asyncio.create_task(batched(batcher, staying, chunks(speech, 1280)))
    await asyncio.sleep(0.01)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert closing not in batcher._unanswered
    assert await other == synchronous(vad, speech)
    # discarded without its caller giving up first: the caller is told, nothing hangs
    pending = asyncio.create_task(batcher.feed(closing, long))
    await asyncio.sleep(0.01)
    assert not pending.done()
    batcher.discard(closing)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(pending, 5)


async def test_a_failing_stream_does_not_fail_the_others(
    vad: SileroVAD, batcher: VADBatcher, speech: bytes
) -> None:
    broken = TurnDetector(vad, PARAMS)
    broken.stream.state = np.zeros((2, 1, 7), np.float32)  # the model call cannot take this
    healthy = [TurnDetector(vad, PARAMS) for _ in range(4)]

    async def feed_broken() -> int:
        failures = 0
        for part in chunks(speech, 1280):
            try:
                await batcher.feed(broken, part)
            except Exception:  # the model's own error (numpy's or onnxruntime's), this stream only
                failures += 1
        return failures

    failures, *got = await asyncio.gather(
        feed_broken(), *(batched(batcher, d, chunks(speech, 1280)) for d in healthy)
    )
    assert failures > 0
    assert got == [synchronous(vad, speech)] * len(healthy)
    # the worker is still there for new streams
    assert await batched(batcher, TurnDetector(vad, PARAMS), [speech]) == synchronous(vad, speech)


async def test_close_fails_waiting_feeds_and_later_ones(vad: SileroVAD, speech: bytes) -> None:
    b = VADBatcher(vad)
    with pytest.raises(VADStopped):  # not started
        await b.feed(TurnDetector(vad, PARAMS), speech[:FRAME_BYTES])
    b.start()
    waiting = asyncio.create_task(b.feed(TurnDetector(vad, PARAMS), speech[: 200 * FRAME_BYTES]))
    await asyncio.sleep(0.01)
    await b.aclose()
    with pytest.raises(VADStopped):
        await waiting
    with pytest.raises(VADStopped):
        await b.feed(TurnDetector(vad, PARAMS), speech[:FRAME_BYTES])
    # a part of a frame needs no model: it is only buffered
    assert await b.feed(TurnDetector(vad, PARAMS), b"\x00\x01\x02") == []


def test_a_vad_failure_is_reported_and_the_connection_goes_on(
    jsut_wav: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = {"now": True}
    run = VADBatcher._run

    def flaky(self: VADBatcher, batch: list) -> list:
        if broken["now"]:
            raise RuntimeError("onnxruntime broke")
        return run(self, batch)

    monkeypatch.setattr(VADBatcher, "_run", flaky)
    with serve(create_fake_services(FakeBehaviour())) as fakes:
        settings = GatewaySettings(asr_urls=[fakes], llm_urls=[fakes], tts_urls=[fakes])
        with serve(create_app(settings)) as url:
            c = WSClient(url.replace("http", "ws") + "/ws")
            c.start()
            pcm = speech_pcm(jsut_wav)
            c.stream(pcm[: 2 * FRAME_BYTES], realtime=False)
            assert c.until("error")[-1]["stage"] == "vad"
            broken["now"] = False
            c.stream(pcm, realtime=False)
            got = [e["event"] for e in c.until("turnMetrics") if e["event"] != "error"]
            c.close()
    assert got[:3] == ["userSpeechStart", "userSpeechEnd", "userSpeechTranscript"]
