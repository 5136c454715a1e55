"""Settings shared by every service."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_empty_tokens_mean_no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.settings import GatewaySettings
    from services.asr.settings import ASRSettings

    monkeypatch.setenv("GATEWAY_API_TOKEN", "")
    monkeypatch.setenv("GATEWAY_TTS_TOKEN", " ")
    monkeypatch.setenv("ASR_API_TOKEN", "")
    gateway, asr = GatewaySettings(), ASRSettings()
    assert gateway.api_token is None and gateway.tts_token is None and asr.api_token is None
    monkeypatch.setenv("ASR_API_TOKEN", "s3cret")
    token = ASRSettings().api_token
    assert token is not None and token.get_secret_value() == "s3cret"


def test_llm_runs_at_lower_cpu_priority_than_asr_and_tts() -> None:
    from services.asr.settings import ASRSettings
    from services.llm.settings import LLMSettings
    from services.tts.settings import TTSSettings

    assert LLMSettings().nice > ASRSettings().nice == TTSSettings().nice == 0


def test_lower_priority_applies_to_threads_started_after_it() -> None:
    """The service CLI lowers its priority first; threads started later inherit it."""
    code = (
        "import os, threading\n"
        "from services.common.server import lower_priority\n"
        "base = os.nice(0)\n"
        "lower_priority(5)\n"
        "seen = []\n"
        "t = threading.Thread(target=lambda: seen.append(os.nice(0)))\n"
        "t.start(); t.join()\n"
        "print(os.nice(0) - base, seen[0] - base)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["5", "5"]
