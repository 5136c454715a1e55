"""How many real-time audio streams one core of VAD keeps up with.

N streams of real speech are fed in the client's 1280-byte frames through the
gateway's own path, one :class:`gateway.vad.TurnDetector` per stream over one
shared :class:`SileroVAD` with onnxruntime on one thread, in one Python
thread: a core keeps up with N while processing a second of every stream's
audio takes under a second. Time is this process's CPU time, not wall time:
on a shared machine the wall clock also counts other people's work.

The same through :class:`gateway.vad_batcher.VADBatcher`, the shared worker
thread that ``/ws`` and ``/v1/realtime`` connections use: every stream's
client frame of a tick is fed at once, so the worker batches them all
(process CPU time, both threads). For comparison, the bare model through
``SileroVAD.run_batch``, one call for all streams' frames per 32 ms tick:
the floor of what batching can reach.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from gateway.vad import TurnDetector
from gateway.vad_batcher import VADBatcher
from services.common.vad import FRAME, SAMPLE_RATE, SileroVAD

CLIENT_FRAME = 1280  # bytes
FRAMES_PER_S = SAMPLE_RATE * 2 / CLIENT_FRAME  # 25 client frames per second of audio
MAX_STREAMS = 4096


def client_frames(pcm: bytes, streams: int, audio_s: float) -> Iterator[list[bytes]]:
    """Per tick, each stream's client frame; each stream starts at a different point of
    the speech, like unrelated users."""
    span = len(pcm) - int(audio_s * SAMPLE_RATE * 2) - CLIENT_FRAME
    offsets = [(i * 7919 * CLIENT_FRAME) % max(1, span) // 2 * 2 for i in range(streams)]
    for k in range(0, int(audio_s * FRAMES_PER_S) * CLIENT_FRAME, CLIENT_FRAME):
        yield [pcm[off + k : off + k + CLIENT_FRAME] for off in offsets]


def per_stream_cost(model: SileroVAD, pcm: bytes, streams: int, audio_s: float) -> float:
    """CPU seconds to run ``streams`` TurnDetectors over ``audio_s`` seconds each."""
    detectors = [TurnDetector(model) for _ in range(streams)]
    t0 = time.process_time()
    for tick in client_frames(pcm, streams, audio_s):
        for d, frame in zip(detectors, tick, strict=True):
            d.feed(frame)
    return time.process_time() - t0


def batcher_cost(model: SileroVAD, pcm: bytes, streams: int, audio_s: float) -> float:
    """CPU seconds (all threads) to run ``streams`` TurnDetectors through one VADBatcher."""

    async def run() -> float:
        batcher = VADBatcher(model)
        batcher.start()
        detectors = [TurnDetector(model) for _ in range(streams)]
        t0 = time.process_time()
        for tick in client_frames(pcm, streams, audio_s):
            feeds = [batcher.feed(d, frame) for d, frame in zip(detectors, tick, strict=True)]
            await asyncio.gather(*feeds)
        spent = time.process_time() - t0
        await batcher.aclose()
        return spent

    return asyncio.run(run())


def batched_cost(model: SileroVAD, pcm: bytes, streams: int, audio_s: float) -> float:
    """CPU seconds to run ``streams`` streams through run_batch over ``audio_s`` seconds."""
    audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    vads = [model.stream() for _ in range(streams)]
    ticks = int(audio_s * SAMPLE_RATE / FRAME)
    span = len(audio) - (ticks + 1) * FRAME
    offsets = np.array([(i * 7919) % max(1, span) for i in range(streams)])
    t0 = time.process_time()
    for k in range(ticks):
        idx = offsets[:, None] + k * FRAME + np.arange(FRAME)[None, :]
        model.run_batch(vads, audio[idx])
    return time.process_time() - t0


def capacity(cost: Any, model: SileroVAD, pcm: bytes, audio_s: float) -> dict[str, Any]:
    """Largest N whose CPU time per second of audio stays under one second.

    Cost grows linearly with N (a fixed part plus a part per stream), so a line
    fitted through a few measured points gives N; that N is then measured as a
    check. Fitting averages out the noise that a bisection on single runs
    stumbles over on a shared machine.
    """
    points: dict[int, float] = {}
    n = 16
    points[n] = cost(model, pcm, n, audio_s) / audio_s
    guess = max(2, min(MAX_STREAMS, int(n / max(points[n], 1e-9))))
    for n in (guess // 4, guess // 2, guess):
        points[n] = cost(model, pcm, n, audio_s) / audio_s
    slope, fixed = np.polyfit(list(points), list(points.values()), 1)
    best = max(0, min(MAX_STREAMS, int((1 - fixed) / slope)))
    check = cost(model, pcm, best, audio_s) / audio_s if best else None
    return {
        "streams": best,
        "check_cpu_s_per_audio_s": None if check is None else round(check, 4),
        "per_stream_us_per_audio_s": round(slope * 1e6, 1),
        "cpu_s_per_audio_s": {str(k): round(v, 4) for k, v in sorted(points.items())},
    }


def measure(pcm: bytes, audio_s: float = 2.0) -> dict[str, Any]:
    model = SileroVAD(threads=1)
    per_stream_cost(model, pcm, 4, 0.5)  # warm-up: onnxruntime's first runs are slow
    probe = per_stream_cost(model, pcm, 32, audio_s)
    model_frames = 32 * audio_s * SAMPLE_RATE / FRAME
    single = capacity(per_stream_cost, model, pcm, audio_s)
    batcher = capacity(batcher_cost, model, pcm, audio_s)
    batched = capacity(batched_cost, model, pcm, audio_s)
    return {
        "per_model_frame_us": round(probe / model_frames * 1e6, 1),  # 512 samples, 32 ms
        "per_client_frame_us": round(probe / (32 * audio_s * FRAMES_PER_S) * 1e6, 1),
        "streams_per_core": single["streams"],
        "check_at_streams_per_core": single["check_cpu_s_per_audio_s"],
        "curve": single["cpu_s_per_audio_s"],
        # /ws's path: TurnDetectors through the shared VADBatcher worker
        "batcher_streams_per_core": batcher["streams"],
        "batcher_check": batcher["check_cpu_s_per_audio_s"],
        "batcher_curve": batcher["cpu_s_per_audio_s"],
        "batched_streams_per_core": batched["streams"],
        # the fitted cost of one more stream's frame inside a batch
        "batched_per_model_frame_us": round(
            batched["per_stream_us_per_audio_s"] * FRAME / SAMPLE_RATE, 1
        ),
        "batched_check": batched["check_cpu_s_per_audio_s"],
        "batched_curve": batched["cpu_s_per_audio_s"],
        "audio_s": audio_s,
    }
