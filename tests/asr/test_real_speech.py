"""Real Whisper weights on real recorded speech, through HTTP on loopback, both backends."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
import soundfile as sf
import soxr

from bench.metrics import cer, wer
from services.asr.app import create_app
from services.asr.settings import ASRSettings
from tests.conftest import JSUT_TEXT
from tests.servers import serve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["faster-whisper", "transformers"])
def asr_url(request: pytest.FixtureRequest, cache_dir: Path) -> Iterator[str]:
    settings = ASRSettings(backend=request.param, cache_dir=cache_dir, cpu_threads=2)
    with serve(create_app(settings)) as url:
        yield url


def transcribe(url: str, path: Path, **params: str) -> dict:
    with path.open("rb") as f:
        r = httpx.post(f"{url}/transcribe", files={"file": f}, params=params, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


def test_japanese_jsut_clip(asr_url: str, jsut_wav: Path) -> None:
    body = transcribe(asr_url, jsut_wav)
    assert body["language"] == "ja"
    assert cer(JSUT_TEXT, body["text"]) <= 0.10, body["text"]
    assert abs(body["duration_s"] - 3.19) < 0.05


def test_japanese_detected_with_auto(asr_url: str, jsut_wav: Path) -> None:
    body = transcribe(asr_url, jsut_wav, language="auto")
    assert body["language"] == "ja"
    assert cer(JSUT_TEXT, body["text"]) <= 0.10, body["text"]


def test_english_librivox_clips(asr_url: str, librivox_clips: list[tuple[Path, str]]) -> None:
    hyps = [transcribe(asr_url, path, language="en")["text"] for path, _ in librivox_clips]
    refs = [ref for _, ref in librivox_clips]
    assert wer(refs, hyps) <= 0.15, hyps


def test_raw_pcm_like_the_gateway(asr_url: str, jsut_wav: Path) -> None:
    audio, rate = sf.read(jsut_wav, dtype="float32")
    pcm = (soxr.resample(audio, rate, 16000) * 32767).astype("<i2").tobytes()
    r = httpx.post(
        f"{asr_url}/transcribe", content=pcm, headers={"content-type": "audio/pcm"}, timeout=120
    )
    assert r.status_code == 200
    assert cer(JSUT_TEXT, r.json()["text"]) <= 0.10


def _wav(samples: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["silence", "noise", "hum"])
def test_no_speech_gives_empty_text(asr_url: str, kind: str) -> None:
    rng = np.random.default_rng(1)
    n = 16000 * 3
    if kind == "silence":
        samples = np.zeros(n)
    elif kind == "noise":
        samples = rng.normal(0, 0.1, n)
    else:
        samples = 0.2 * np.sin(2 * np.pi * 50 * np.arange(n) / 16000) + rng.normal(0, 0.01, n)
    r = httpx.post(f"{asr_url}/transcribe", files={"file": ("x.wav", _wav(samples))}, timeout=60)
    assert r.status_code == 200
    assert r.json()["text"] == ""


def test_openai_sdk(asr_url: str, jsut_wav: Path, librivox_clips: list[tuple[Path, str]]) -> None:
    client = openai.OpenAI(base_url=f"{asr_url}/v1", api_key="unused")
    with jsut_wav.open("rb") as f:
        result = client.audio.transcriptions.create(model="whisper-1", file=f, language="ja")
    assert cer(JSUT_TEXT, result.text) <= 0.10
    path, ref = librivox_clips[1]
    with path.open("rb") as f:
        verbose = client.audio.transcriptions.create(
            model="whisper-1", file=f, response_format="verbose_json"
        )
    assert verbose.language == "en"
    assert wer([ref], [verbose.text]) <= 0.15
    assert verbose.segments and verbose.segments[0].end > 0
    with path.open("rb") as f:
        srt = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="srt")
    assert "-->" in str(srt) and "disposed" in str(srt).lower()
