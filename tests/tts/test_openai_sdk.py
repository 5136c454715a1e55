"""The official openai SDK and the streaming route against a real server with real voices."""

from __future__ import annotations

import io
import time
import wave
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import soundfile as sf

from services.tts.app import create_app
from services.tts.engine import SynthesisOptions, Synthesizer, Voice
from services.tts.settings import TTSSettings
from tests.servers import serve

TEXT = "こんにちは。今日は良い天気ですね。散歩に行きましょう。"


class Spy:
    """Wraps a real synthesizer and records when each sentence finished."""

    def __init__(self, inner: Synthesizer) -> None:
        self.inner = inner
        self.name = inner.name
        self.finished: list[float] = []

    def voices(self) -> list[Voice]:
        return self.inner.voices()

    def synthesize(self, text: str, voice: str, options: SynthesisOptions) -> np.ndarray:
        out = self.inner.synthesize(text, voice, options)
        self.finished.append(time.monotonic())
        return out


@pytest.fixture(scope="module")
def spy(openjtalk: Synthesizer) -> Spy:
    return Spy(openjtalk)


@pytest.fixture(scope="module")
def url(kokoro: Synthesizer, spy: Spy) -> Iterator[str]:
    with serve(create_app(TTSSettings(), engine=[kokoro, spy])) as base:
        yield base


def wav_rate(data: bytes) -> tuple[int, int]:
    with wave.open(io.BytesIO(data)) as w:
        return w.getframerate(), w.getnframes()


@pytest.mark.slow
def test_openai_sdk(url: str) -> None:
    import openai

    client = openai.OpenAI(base_url=url + "/v1", api_key="not-needed", max_retries=0)
    speech = client.audio.speech.create(
        model="tts-1", voice="alloy", input=TEXT, response_format="wav"
    )
    rate, frames = wav_rate(speech.content)
    assert rate == 24000 and frames > rate  # Kokoro, the default voice
    flac = client.audio.speech.create(
        model="tts-1", voice="mei", input="はい。", response_format="flac"
    )
    audio, rate = sf.read(io.BytesIO(flac.content))
    assert rate == 48000 and len(audio) > 0
    pcm = client.audio.speech.create(
        model="openjtalk", voice="alloy", input="はい。", response_format="pcm"
    )
    assert len(pcm.content) > 0 and len(pcm.content) % 2 == 0
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="jm_kumo", input="はい。", response_format="mp3", speed=1.2
    ) as streamed:
        assert streamed.headers["content-type"] == "audio/mpeg"
        assert len(b"".join(streamed.iter_bytes())) > 0
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.speech.create(model="tts-1", voice="nobody", input="はい")
    assert "jf_alpha" in str(caught.value)


@pytest.mark.slow
def test_stream_real_voice_first_chunk_before_last_sentence(url: str, spy: Spy) -> None:
    spy.finished.clear()
    arrivals = []
    with httpx.stream(
        "POST", url + "/synthesize/stream", json={"text": TEXT * 2, "voice": "mei"}
    ) as r:
        assert r.status_code == 200 and r.headers["x-sample-rate"] == "48000"
        for chunk in r.iter_raw():
            arrivals.append((time.monotonic(), len(chunk)))
    assert len(spy.finished) == 6
    assert arrivals[0][0] < spy.finished[-1]
    assert sum(n for _, n in arrivals) % 2 == 0
