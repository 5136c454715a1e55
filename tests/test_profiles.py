"""Settings profiles (`make run PROFILE=production`) and the environment the launcher
gives each service: fast checks, no process started."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from gateway.settings import GatewaySettings
from services.asr.settings import ASRSettings
from services.launcher import PROFILES, child_env, profile_path, read_env_file
from services.llm.settings import LLMSettings
from services.tts.settings import TTSSettings

CLASSES: list[type[Any]] = [ASRSettings, LLMSettings, TTSSettings, GatewaySettings]


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Each settings class as a service process would build it from ``env``."""
    for key in list(os.environ):
        if key.startswith(("ASR_", "LLM_", "TTS_", "GATEWAY_")):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return [cls(_env_file=None) for cls in CLASSES]


def test_every_profile_line_is_a_setting() -> None:
    names = {
        str(cls.model_config["env_prefix"]) + field.upper()
        for cls in CLASSES
        for field in cls.model_fields
    }
    profiles = sorted(PROFILES.glob("*.env"))
    assert [p.stem for p in profiles] == ["embedded", "production"]
    for path in profiles:
        assert set(read_env_file(path)) <= names, path


def test_production_profile_selects_the_production_models(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asr, llm, tts, _ = settings_from(read_env_file(profile_path("production")), monkeypatch)
    assert (asr.backend, asr.model) == ("transformers", "openai/whisper-large-v3-turbo")
    assert (llm.backend, llm.model) == ("transformers", "google/gemma-2-2b-jpn-it")
    assert tts.backends[0] == "style-bert-vits2"
    assert (tts.sbv2_repo, tts.sbv2_model) == (
        "litagin/style_bert_vits2_jvnv",
        "jvnv-F1-jp/jvnv-F1-jp_e160_s14000",
    )
    assert tts.sbv2_bert == "ku-nlp/deberta-v2-large-japanese-char-wwm"


def test_embedded_profile_keeps_every_default() -> None:
    assert read_env_file(profile_path("embedded")) == {}


def test_gateway_follows_the_services_ports_and_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    env = child_env({}, {"ASR_PORT": "18001", "TTS_PORT": "18003", "TTS_API_TOKEN": "s3cret"})
    *_, gateway = settings_from(env, monkeypatch)
    assert gateway.asr_urls == ["http://127.0.0.1:18001"]
    assert gateway.llm_urls == ["http://127.0.0.1:8002"]
    assert gateway.tts_urls == ["http://127.0.0.1:18003"]
    assert gateway.tts_token.get_secret_value() == "s3cret"
    assert gateway.asr_token is None


def test_explicit_variables_win_over_profile_and_derived_values() -> None:
    remote = json.dumps(["https://gpu-host:8003"])
    env = child_env(
        {"ASR_MODEL": "from-profile", "LLM_BACKEND": "transformers"},
        {"ASR_MODEL": "mine", "GATEWAY_TTS_URLS": remote, "GATEWAY_TTS_TOKEN": "remote-token"},
    )
    assert env["ASR_MODEL"] == "mine" and env["LLM_BACKEND"] == "transformers"
    assert env["GATEWAY_TTS_URLS"] == remote and env["GATEWAY_TTS_TOKEN"] == "remote-token"


def test_env_file_syntax(tmp_path: Path) -> None:
    path = tmp_path / "my.env"
    path.write_text("# comment\n\nexport A=1\nB = 'two words'\nC=\"x=y\"\n")
    assert read_env_file(path) == {"A": "1", "B": "two words", "C": "x=y"}
    assert profile_path(str(path)) == path
    path.write_text("NOT A SETTING\n")
    with pytest.raises(ValueError, match="my.env:1"):
        read_env_file(path)


def test_unknown_profile_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    from services.launcher import main

    with pytest.raises(SystemExit) as exit_:
        main(["--profile", "no-such-profile"])
    assert exit_.value.code == 2
    assert "no profile 'no-such-profile'" in capsys.readouterr().err
