"""Settings every service shares. Each service subclasses with its own env prefix."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def no_empty_secret(value: object) -> object:
    """An empty token (``KOE_API_TOKEN=`` in an env file) means "no token", not a token
    that is the empty string, which would lock every client out."""
    if isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, SecretStr) and not value.get_secret_value().strip():
        return None
    return value


def available_cores() -> int:
    """The CPU cores this process may run on (respects taskset and cgroup cpusets)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def default_cache_dir() -> Path:
    """Where models are assembled or downloaded: ``$KOE_CACHE_DIR`` or ``~/.cache/koe``."""
    env = os.environ.get("KOE_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "koe"


class ServiceSettings(BaseSettings):
    """Fields common to the model services (ASR, LLM, TTS)."""

    # Field docstrings become descriptions: --help and the README table read them.
    model_config = SettingsConfigDict(use_attribute_docstrings=True, extra="ignore")

    host: str = "127.0.0.1"
    """Address to bind. Anything but loopback needs ``api_token`` (or ``allow_insecure_remote``)."""
    port: int = Field(8000, ge=1, le=65535)
    """TCP port to listen on."""
    api_token: SecretStr | None = None
    """Bearer token required on every route except ``/health``. Unset: no auth (loopback only)."""
    allow_insecure_remote: bool = False
    """Listen beyond loopback without a token. Only for a private, trusted network."""
    cache_dir: Path = Field(default_factory=default_cache_dir)
    """Model cache: embedded models are assembled here, production models downloaded here."""
    max_queue: int = Field(8, ge=0, le=1000)
    """Requests that may wait for the model; one more gets 503 with Retry-After."""
    log_level: str = "info"
    """Python logging level."""
    nice: int = Field(0, ge=0, le=19)
    """CPU priority as a Unix nice value: higher yields the cores to the other services when
    they compete for them. 0 leaves the priority as it is."""

    _no_empty_token = field_validator("api_token", mode="before")(no_empty_secret)
