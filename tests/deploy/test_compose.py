"""compose.yaml and compose.gpu.yaml, checked without a Docker engine: the Compose spec's
schema, and every path, port and environment name they use against the code."""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest

from services.common.server import check_bind

from .conftest import (
    COMPOSE_FILES,
    MODEL_SERVICES,
    ROOT,
    SETTINGS,
    env_names,
    environment,
    interpolate,
    load,
    merge,
    prefix,
)

# Variables that are not our settings but are read by the programs in the containers.
OTHER_VARIABLES = {"HF_TOKEN"}  # huggingface_hub: gated models (gemma) need it
NO_ENV: dict[str, str] = {}
WITH_TOKEN = {"KOE_API_TOKEN": "s3cret", "KOE_ALLOW_INSECURE_REMOTE": "false"}


def merged() -> dict[str, Any]:
    return merge(load("compose.yaml"), load("compose.gpu.yaml"))


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_matches_the_compose_specification(name: str, compose_schema: dict[str, Any]) -> None:
    jsonschema.Draft201909Validator(compose_schema).validate(load(name))


def test_merged_gpu_config_matches_the_specification(compose_schema: dict[str, Any]) -> None:
    jsonschema.Draft201909Validator(compose_schema).validate(merged())


def test_the_schema_is_strict_enough_to_catch_a_typo(compose_schema: dict[str, Any]) -> None:
    config = load("compose.yaml")
    config["services"]["asr"]["healthchek"] = config["services"]["asr"].pop("healthcheck")
    with pytest.raises(jsonschema.ValidationError, match="healthchek"):
        jsonschema.Draft201909Validator(compose_schema).validate(config)


def test_four_services_each_built_from_its_own_dockerfile() -> None:
    services = load("compose.yaml")["services"]
    assert set(services) == set(SETTINGS)
    for name, service in services.items():
        build = service["build"]
        assert (ROOT / build["context"]).is_dir()
        assert build["dockerfile"] == f"docker/{name}.Dockerfile"
        assert (ROOT / build["context"] / build["dockerfile"]).is_file()
    for name in COMPOSE_FILES:
        for service in load(name)["services"].values():
            files = service.get("env_file", [])
            for path in [files] if isinstance(files, str) else files:
                assert (ROOT / path).is_file(), path


def test_ports_and_healthchecks_are_the_settings_defaults() -> None:
    for name, service in load("compose.yaml")["services"].items():
        port = SETTINGS[name].model_fields["port"].default
        published = [interpolate(p, NO_ENV) for p in service["ports"]]
        assert published == [f"127.0.0.1:{port}:{port}"], name
        check = " ".join(service["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/health" in check
    assert [SETTINGS[n].model_fields["port"].default for n in SETTINGS] == [8001, 8002, 8003, 8000]


def test_gateway_reaches_each_service_by_name_and_port() -> None:
    compose = load("compose.yaml")
    gateway = compose["services"]["gateway"]
    env = environment(gateway, NO_ENV)
    for stage in MODEL_SERVICES:
        urls = json.loads(env[f"GATEWAY_{stage.upper()}_URLS"])
        port = SETTINGS[stage].model_fields["port"].default
        assert [(urlsplit(u).hostname, urlsplit(u).port) for u in urls] == [(stage, port)]
        assert gateway["depends_on"][stage] == {"condition": "service_healthy"}


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_every_environment_name_is_a_setting(name: str) -> None:
    for service_name, service in load(name)["services"].items():
        for key in service.get("environment", {}):
            assert key in env_names(service_name) | OTHER_VARIABLES, f"{service_name}: {key}"
        # an env_file (the production profile) is shared: each line is some service's
        for key in environment(service, NO_ENV):
            assert any(key in env_names(n) for n in SETTINGS) or key in OTHER_VARIABLES, key


@pytest.mark.parametrize("env", [NO_ENV, WITH_TOKEN], ids=["default", "token"])
def test_environment_parses_and_passes_the_bind_check(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What each container's settings class makes of compose's environment: it binds all
    interfaces, and either has the token or is told the network is private."""
    for name, service in merged()["services"].items():
        with monkeypatch.context() as m:
            for key in os.environ:
                if key.startswith(prefix(name)):
                    m.delenv(key)
            for key, value in environment(service, env).items():
                m.setenv(key, value)
            settings: Any = SETTINGS[name](_env_file=None)  # type: ignore[call-arg]
        assert settings.host == "0.0.0.0"
        check_bind(settings)  # exits on failure
        stages = [name] if name in MODEL_SERVICES else list(MODEL_SERVICES)
        for stage in stages:
            token = settings.api_token if name == stage else getattr(settings, f"{stage}_token")
            assert (token.get_secret_value() if token else None) == env.get("KOE_API_TOKEN")


def test_gpu_override_reserves_a_gpu_and_builds_cuda_images() -> None:
    services = merged()["services"]
    for name in MODEL_SERVICES:
        devices = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
        assert services[name]["build"]["args"]["TORCH_VARIANT"] == "cuda"
        assert services[name]["image"].endswith(":cuda")
        assert "deploy" not in load("compose.yaml")["services"][name]  # CPU-only hosts run it
    assert "deploy" not in services["gateway"]
    assert environment(services["asr"], NO_ENV)["ASR_MODEL"] == "openai/whisper-large-v3-turbo"


def test_model_services_share_one_cache_volume() -> None:
    compose = load("compose.yaml")
    assert "models" in compose["volumes"]
    for name in MODEL_SERVICES:
        assert compose["services"][name]["volumes"] == ["models:/cache"]
        assert "KOE_CACHE_DIR=/cache" in (ROOT / f"docker/{name}.Dockerfile").read_text()


def test_llm_yields_the_cpu_to_asr_and_tts_across_containers() -> None:
    """nice works within a cgroup only; across containers the CPU weight does the same."""
    services = load("compose.yaml")["services"]
    assert services["llm"]["cpu_shares"] < 1024
    assert "cpu_shares" not in services["asr"] and "cpu_shares" not in services["tts"]
