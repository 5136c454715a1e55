"""Speculative ASR: transcribing at a pause in the user's speech, before the turn's end is sure.

The gateway's VAD is deterministic, so what it sends to ASR can be checked to
the byte: with speculation, the transcribed audio ends at the pause (64 ms of
silence), not at the turn's end (200 ms): four 32 ms frames shorter.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf
import soxr
from fastapi import FastAPI

from bench.fakes import FakeBehaviour
from bench.wsclient import WSClient, speech_pcm
from gateway.app import create_app
from gateway.settings import GatewaySettings
from gateway.vad import FRAME_BYTES, Kind, TurnDetector, TurnParams
from services.common.vad import SileroVAD
from tests.servers import serve


@pytest.fixture
def fake() -> FakeBehaviour:
    return FakeBehaviour(asr_delay_s=0.05)


def gateway_app(fake_url: str, speculative_asr_ms: int, **settings: Any) -> FastAPI:
    """A gateway on the fake services (``settings``: more of its settings)."""
    config = GatewaySettings(
        asr_urls=[fake_url],
        llm_urls=[fake_url],
        tts_urls=[fake_url],
        speculative_asr_ms=speculative_asr_ms,
        **settings,
    )
    return create_app(config)


def run_turn(
    fake_url: str,
    pcm: bytes,
    speculative_asr_ms: int,
    realtime: bool = False,
    start: dict[str, Any] | None = None,
    **settings: Any,
) -> tuple[list[dict], str]:
    """One spoken turn (``start``: extra startSession fields, ``settings``: the gateway's);
    its events and the gateway's /metrics after it."""
    with serve(gateway_app(fake_url, speculative_asr_ms, **settings)) as url:
        c = WSClient(url.replace("http", "ws") + "/ws")
        c.start(**(start or {}))
        c.stream(pcm, realtime=realtime)
        got = c.until("turnMetrics")
        metrics = httpx.get(url + "/metrics").text
        c.close()
    return got, metrics


def counted(metrics: str, outcome: str, counter: str = "koe_speculative_asr") -> float:
    m = re.search(rf'{counter}_total{{outcome="{outcome}"}} (\S+)', metrics)
    return float(m.group(1)) if m else 0.0


def test_turn_uses_the_transcription_started_at_the_pause(
    fake_url: str, fake: FakeBehaviour, jsut_wav: Path
) -> None:
    pcm = speech_pcm(jsut_wav)
    got, metrics = run_turn(fake_url, pcm, speculative_asr_ms=0)
    assert [e["event"] for e in got][:3] == [
        "userSpeechStart",
        "userSpeechEnd",
        "userSpeechTranscript",
    ]
    whole = fake.asr_bytes[-1]
    assert counted(metrics, "used") == 0
    fake.asr_bytes.clear()

    got, metrics = run_turn(fake_url, pcm, speculative_asr_ms=64)
    assert [e["event"] for e in got][:3] == [
        "userSpeechStart",
        "userSpeechEnd",
        "userSpeechTranscript",
    ]
    assert got[2]["transcript"] == fake.transcript
    assert counted(metrics, "used") == 1
    # the transcription the turn used is the one of the audio up to the pause
    assert fake.asr_bytes[-1] == whole - 4 * FRAME_BYTES
    # and only one transcription ran after the end of the speech
    assert counted(metrics, "dropped") == len(fake.asr_bytes) - 1


def gap_clip(jsut_wav: Path, tmp_path: Path) -> tuple[Path, int]:
    """A WAV of the JSUT clip with 130 ms of silence in the middle (more than 64, less
    than 200 ms); also its samples up to the gap's end (at 16 kHz)."""
    audio, rate = sf.read(jsut_wav, dtype="float32")
    speech = soxr.resample(audio, rate, 16000)
    gap = np.zeros(int(16000 * 0.13), np.float32)
    half = len(speech) // 2
    path = tmp_path / "jsut-with-gap.wav"
    sf.write(path, np.concatenate([speech[:half], gap, speech[half:]]), 16000)
    return path, half + len(gap)


def with_gap(jsut_wav: Path, tmp_path: Path) -> tuple[bytes, int]:
    """That clip as the client's PCM, and the samples up to the gap's end."""
    path, before_second_half = gap_clip(jsut_wav, tmp_path)
    return speech_pcm(path), before_second_half


def test_speech_after_the_pause_drops_the_speculation(
    fake_url: str, fake: FakeBehaviour, jsut_wav: Path, tmp_path: Path
) -> None:
    pcm, before_second_half = with_gap(jsut_wav, tmp_path)
    # at the client's pace: the dropped transcription is long done by the final pause
    got, metrics = run_turn(fake_url, pcm, speculative_asr_ms=64, realtime=True)
    assert [e["event"] for e in got].count("userSpeechTranscript") == 1
    assert counted(metrics, "dropped") >= 1 and counted(metrics, "used") == 1
    # the transcription used holds both halves: at least the gap and the speech after it
    assert fake.asr_bytes[-1] > before_second_half * 2


def test_one_transcription_at_a_time_per_connection(
    fake_url: str, fake: FakeBehaviour, jsut_wav: Path, tmp_path: Path
) -> None:
    """A dropped transcription still running upstream: no new speculation starts behind it
    (the ASR would finish both, the stale one first); the turn's end transcribes."""
    fake.asr_delay_s = 1.0
    pcm, before_second_half = with_gap(jsut_wav, tmp_path)
    got, metrics = run_turn(fake_url, pcm, speculative_asr_ms=64)
    assert [e["event"] for e in got].count("userSpeechTranscript") == 1
    assert counted(metrics, "dropped") >= 1 and counted(metrics, "used") == 0
    # the dropped one and the turn's own: nothing else reached the service
    assert fake.asr_calls == 2
    assert fake.asr_bytes[-1] > before_second_half * 2


def test_detector_reports_pause_and_resume() -> None:
    params = TurnParams(speech_start_ms=64, silence_end_ms=192, pause_ms=64)
    d = TurnDetector(SileroVAD(), params)
    frame = b"\0" * FRAME_BYTES

    def kinds(probs: list[float]) -> list[Kind]:
        return [e.kind for p in probs for e in d.step(frame, p)]

    assert kinds([0.9, 0.9]) == [Kind.SPEECH_START]
    assert kinds([0.1, 0.1]) == [Kind.PAUSE]  # 64 ms of silence
    assert kinds([0.9]) == [Kind.RESUME]
    assert kinds([0.1, 0.1, 0.1, 0.1, 0.1, 0.1]) == [Kind.PAUSE, Kind.SPEECH_END]
    # off by default, and useless (so off) at or past the end-of-turn silence
    for pause in (0, 192, 300):
        d = TurnDetector(
            SileroVAD(), TurnParams(speech_start_ms=64, silence_end_ms=192, pause_ms=pause)
        )
        assert kinds([0.9, 0.9] + [0.1] * 6) == [Kind.SPEECH_START, Kind.SPEECH_END]
