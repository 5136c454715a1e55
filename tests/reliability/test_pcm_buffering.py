"""The gateway's PCM buffering: binary frames of any size, even odd, give the same turns.

The real client sends 1280-byte frames, other clients send anything. The turn
detector buffers bytes into 512-sample VAD frames; how the stream is cut must
not change what it detects, and no bytes whatever may make it raise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.wsclient import speech_pcm
from gateway.vad import Kind, TurnDetector, TurnParams
from services.common.vad import FRAME, SileroVAD

PARAMS = TurnParams(max_utterance_s=2.0)  # short, so the "too long" end is reached too


@pytest.fixture(scope="module")
def vad() -> SileroVAD:
    return SileroVAD()


@pytest.fixture(scope="module")
def speech(jsut_wav: Path) -> bytes:
    # speech, a pause, speech again: two turns (the second cut by max_utterance_s)
    one = speech_pcm(jsut_wav, lead_s=0.3, tail_s=0.6)
    return one + one


def events(vad: SileroVAD, pcm: bytes, cuts: list[int]) -> list[tuple[Kind, bytes]]:
    detector = TurnDetector(vad, PARAMS)
    out, last = [], 0
    for cut in [*sorted(set(cuts)), len(pcm)]:
        out += [(e.kind, e.audio) for e in detector.feed(pcm[last:cut])]
        last = cut
    return out


def test_whole_stream_finds_the_turns(vad: SileroVAD, speech: bytes) -> None:
    kinds = [k for k, _ in events(vad, speech, [])]
    # the clip's own pauses split it too: at least one turn per copy, each one closed
    assert kinds.count(Kind.SPEECH_START) >= 2
    assert kinds.count(Kind.SPEECH_START) == kinds.count(Kind.SPEECH_END)
    assert Kind.SUSTAINED in kinds


@given(data=st.data())
@settings(max_examples=25, deadline=None)
def test_any_chunking_gives_the_same_events(
    vad: SileroVAD, speech: bytes, data: st.DataObject
) -> None:
    # Cut points anywhere, odd offsets included (a sample split across two frames).
    cuts = data.draw(st.lists(st.integers(0, len(speech)), max_size=400))
    assert events(vad, speech, cuts) == events(vad, speech, [])


@given(data=st.data())
@settings(max_examples=25, deadline=None)
def test_tiny_odd_frames_give_the_same_events(
    vad: SileroVAD, speech: bytes, data: st.DataObject
) -> None:
    size = data.draw(st.sampled_from([1, 3, 777, 1279, 1281, 4095]))
    cuts = list(range(size, len(speech), size))
    assert events(vad, speech, cuts) == events(vad, speech, [])


@given(st.lists(st.binary(max_size=3000), max_size=30))
@settings(max_examples=60, deadline=None)
def test_arbitrary_bytes_never_raise(vad: SileroVAD, frames: list[bytes]) -> None:
    detector = TurnDetector(vad, PARAMS)
    fed = 0
    for frame in frames:
        for e in detector.feed(frame):
            # an utterance is whole VAD frames, never a half sample
            assert e.kind is not Kind.SPEECH_END or len(e.audio) % (FRAME * 2) == 0
        fed += len(frame)
    assert len(detector._pending) == fed % (FRAME * 2)  # nothing lost, nothing held twice


def test_loud_noise_and_extremes_never_raise(vad: SileroVAD) -> None:
    rng = np.random.default_rng(0)
    loud = rng.integers(-32768, 32767, 16000 * 3, dtype=np.int16).tobytes()
    extremes = np.tile(np.array([-32768, 32767], "<i2"), 16000).tobytes()
    detector = TurnDetector(vad, PARAMS)
    got = [e for chunk in (loud, extremes, b"\x00" * 16001, loud[:1]) for e in detector.feed(chunk)]
    starts = [e for e in got if e.kind is Kind.SPEECH_START]
    ends = [e for e in got if e.kind is Kind.SPEECH_END]
    # whatever the VAD makes of noise, turns open and close in pairs, none over the limit
    assert len(ends) <= len(starts) <= len(ends) + 1
    assert all(len(e.audio) <= 2 * 16000 * PARAMS.max_utterance_s + 2 * FRAME * 20 for e in ends)
