"""TTS service settings (environment variables prefixed ``TTS_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.common.settings import ServiceSettings

BackendName = Literal["kokoro", "openjtalk", "espeak", "style-bert-vits2"]


class TTSSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="TTS_", use_attribute_docstrings=True, extra="ignore"
    )

    port: int = Field(8003, ge=1, le=65535)
    """TCP port to listen on."""
    backends: Annotated[list[BackendName], NoDecode] = ["kokoro", "openjtalk", "espeak"]
    """Backends to load, comma-separated: kokoro, openjtalk, espeak (English), style-bert-vits2
    (production, GPU). espeak needs the espeak-ng program; without it the others still load."""
    default_voice: str | None = None
    """Voice for requests naming none (or "alloy" etc.). Unset: the first backend's first voice.
    Text it cannot speak (English for a Japanese voice) goes to the first voice that can."""
    max_chars: int = Field(2000, ge=1, le=100_000)
    """Longest accepted input text in characters; longer gets 413."""
    max_sentence_chars: int = Field(120, ge=10, le=1000)
    """Longer sentences are cut at commas: the models slow down and slur on run-ons."""
    sentence_pause_s: float = Field(0.25, ge=0.0, le=2.0)
    """Silence between sentences in one reply."""
    target_level_dbfs: float = Field(-20.0, ge=-40.0, le=-6.0)
    """Speech level every sentence of every voice is normalised to."""

    kokoro_voices: list[str] | None = None
    """Kokoro voices to offer (JSON list). Unset: all the Japanese voices the package ships."""

    espeak_binary: str = "espeak-ng"
    """The espeak-ng program (name on PATH or full path) the espeak backend runs."""

    sbv2_repo: str = "litagin/style_bert_vits2_jvnv"
    """Hugging Face repository of the Style-Bert-VITS2 voice model."""
    sbv2_model: str = "jvnv-F1-jp/jvnv-F1-jp_e160_s14000"
    """Model file in the repo (``.safetensors`` optional); config and style vectors beside it."""
    sbv2_bert: str = "ku-nlp/deberta-v2-large-japanese-char-wwm"
    """Japanese DeBERTa that Style-Bert-VITS2 JP-Extra models read text with."""
    sbv2_model_dir: Path | None = None
    """Local folder with .safetensors, config.json, style_vectors.npy: skips the download."""
    sbv2_bert_dir: Path | None = None
    """Local folder with the BERT model and tokenizer (skips the download)."""
    sbv2_device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where Style-Bert-VITS2 runs; auto takes the GPU when there is one."""

    @field_validator("backends", mode="before")
    @classmethod
    def _split_backends(cls, value: object) -> object:
        # "kokoro,openjtalk" from the environment; a JSON-ish list also works.
        if isinstance(value, str):
            return [v.strip(" []\"'") for v in value.split(",") if v.strip(" []\"'")]
        return value

    @field_validator("backends")
    @classmethod
    def _non_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one backend is needed")
        return list(dict.fromkeys(value))  # drop duplicates, keep order
