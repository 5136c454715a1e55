"""Each service's OpenAPI schema fuzzed with schemathesis (valid and invalid requests).

The services run on loopback with fake engines, so what is fuzzed is the HTTP
layer: validation, limits, decoding, the error handlers. Whatever arrives, the
answer is never a 5xx, never shows a stack trace or a source path, and every
4xx has the one error shape ``{"error": {message, type, param, code}}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case

from services.asr.app import create_app as create_asr
from services.asr.settings import ASRSettings
from services.llm.app import create_app as create_llm
from services.tts.app import create_app as create_tts
from services.tts.settings import TTSSettings
from tests.llm.conftest import FakeChat, fake_settings
from tests.reliability.fakes import FakeTranscriber, FixedSynth
from tests.servers import serve

# Small limits, so the fuzzer reaches them with the sizes it generates.
ASR = create_asr(
    ASRSettings(vad_gate=False, max_upload_mb=0.05, max_duration_s=2), FakeTranscriber()
)
LLM = create_llm(fake_settings(max_messages=20), FakeChat())
TTS = create_tts(TTSSettings(max_chars=300), FixedSynth())

asr_schema = schemathesis.openapi.from_dict(ASR.openapi())
llm_schema = schemathesis.openapi.from_dict(LLM.openapi())
tts_schema = schemathesis.openapi.from_dict(TTS.openapi())

LEAKS = re.compile(r"Traceback|File \"|\.py\b|/site-packages/|/work/|/home/|/usr/lib")
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,  # no example database left behind in the checkout
)


@pytest.fixture(scope="module")
def asr_url() -> Iterator[str]:
    with serve(ASR) as url:
        yield url


@pytest.fixture(scope="module")
def llm_url() -> Iterator[str]:
    with serve(LLM) as url:
        yield url


@pytest.fixture(scope="module")
def tts_url() -> Iterator[str]:
    with serve(TTS) as url:
        yield url


def check(case: Case, base_url: str) -> None:
    response = case.call(base_url=base_url, timeout=30)
    text = response.content.decode("utf-8", "replace")  # audio bodies are bytes
    where = f"{case.method} {case.formatted_path} -> {response.status_code}: {text[:300]}"
    assert response.status_code < 500, where
    if not response.headers.get("content-type", [""])[0].startswith("audio/"):
        assert not LEAKS.search(text), where
    for values in response.headers.values():  # schemathesis keeps every value of a header
        assert not any(LEAKS.search(v) for v in values), where
    if response.status_code >= 400:
        body = json.loads(text)
        assert set(body) == {"error"}, where
        error = body["error"]
        assert set(error) == {"message", "type", "param", "code"}, where
        assert isinstance(error["message"], str) and error["message"], where
        assert isinstance(error["type"], str) and error["type"], where


@asr_schema.parametrize()
@FUZZ
def test_asr_schema(case: Case, asr_url: str) -> None:
    check(case, asr_url)


@llm_schema.parametrize()
@FUZZ
def test_llm_schema(case: Case, llm_url: str) -> None:
    check(case, llm_url)


@tts_schema.parametrize()
@FUZZ
def test_tts_schema(case: Case, tts_url: str) -> None:
    check(case, tts_url)
