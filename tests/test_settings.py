"""Settings shared by every service."""

from __future__ import annotations

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
