"""The streaming route against a real server on loopback: audio leaves sentence by sentence."""

from __future__ import annotations

import time

import httpx
import numpy as np
import pytest

from services.tts.app import create_app
from services.tts.settings import TTSSettings
from tests.servers import serve

from .conftest import FakeSynth

TEXT = "一つ目の文です。二つ目の文です。三つ目の文です。四つ目の文です。"


def stream_chunks(url: str, body: dict) -> tuple[httpx.Headers, list[tuple[float, bytes]]]:
    chunks = []
    with httpx.stream("POST", url + "/synthesize/stream", json=body, timeout=60) as r:
        assert r.status_code == 200, r.read()
        for chunk in r.iter_raw():
            chunks.append((time.monotonic(), chunk))
        return r.headers, chunks


@pytest.mark.slow
def test_first_sentence_leaves_before_the_last_is_synthesized() -> None:
    fake = FakeSynth(delay_s=0.3)
    with serve(create_app(TTSSettings(), engine=fake)) as url:
        headers, chunks = stream_chunks(url, {"text": TEXT, "voice": "quiet"})
    assert headers["content-type"] == "audio/pcm"
    assert headers["x-sample-rate"] == "16000"
    assert len(fake.finished) == 4
    first_arrival = chunks[0][0]
    assert first_arrival < fake.finished[-1] - 0.5  # two sentences' work still to do
    pcm = np.frombuffer(b"".join(c for _, c in chunks), "<i2")
    assert len(pcm) > 4 * int(0.05 * 8 * 16000)


@pytest.mark.slow
def test_a_client_that_leaves_frees_the_model() -> None:
    fake = FakeSynth(delay_s=0.2)
    with serve(create_app(TTSSettings(max_queue=0), engine=fake)) as url:
        with httpx.stream("POST", url + "/synthesize/stream", json={"text": TEXT * 3}) as r:
            next(r.iter_raw())  # take the first sentence, then hang up
        deadline = time.monotonic() + 5
        while True:  # the sentence in progress finishes; then the model is free again
            r2 = httpx.post(url + "/synthesize", json={"text": "はい"}, timeout=30)
            if r2.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert r2.status_code == 200, r2.text
    assert len(fake.finished) < 12  # it stopped instead of finishing all twelve sentences
