"""run.bat mirrors the Makefile: the same targets, the same install steps in the same
order, the same pins. (No Windows here to run it; these checks keep the two in step.)"""

from __future__ import annotations

import re

from .conftest import ROOT

BAT = (ROOT / "run.bat").read_bytes().decode("ascii")
MAKEFILE = (ROOT / "Makefile").read_text()


def makefile_var(name: str) -> str:
    found = re.search(rf"^{name} [:?]?= (\S+)$", MAKEFILE, re.M)
    assert found, name
    return found.group(1)


def bat_var(name: str) -> str:
    found = re.search(rf'^set "{name}=([^"]+)"\r$', BAT, re.M)
    assert found, name
    return found.group(1)


def test_crlf_line_endings() -> None:
    assert "\r\n" in BAT and "\n" not in BAT.replace("\r\n", "")


def test_same_pins_as_the_makefile() -> None:
    for name in ("TORCH", "OPENJTALK"):
        assert bat_var(name) == makefile_var(name)
    assert makefile_var("PROFILE") == "embedded"
    assert 'if not defined PROFILE set "PROFILE=embedded"' in BAT


def test_every_makefile_target_is_a_label() -> None:
    phony = re.search(r"^\.PHONY: (.+)$", MAKEFILE, re.M)
    assert phony
    for target in phony.group(1).split():
        assert re.search(rf"^:{target}\r$", BAT, re.M), target
        if target not in ("help", "install", "clean"):
            assert f'if /i "%TARGET%"=="{target}" goto {target}' in BAT


def test_install_steps_in_the_makefiles_order() -> None:
    steps = [
        "-m venv",
        '--index-url %TORCH_INDEX% "%TORCH%"',
        '-e ".[all,dev]" "%TORCH%"',
        '--force-reinstall --no-deps "%OPENJTALK%"',
    ]
    positions = [BAT.index(step) for step in steps]
    assert positions == sorted(positions)
    assert 'set "TORCH_INDEX=https://download.pytorch.org/whl/cpu"' in BAT  # the CPU build
    recipe = MAKEFILE[MAKEFILE.index("$(STAMP):") : MAKEFILE.index("install: $(STAMP)")]
    assert recipe.index('"$(TORCH)"') < recipe.index(".[all,dev]") < recipe.index("$(OPENJTALK)")


def test_targets_run_the_same_commands() -> None:
    assert re.search(
        r"^run: install\n\t\$\(BIN\)/python -m services\.launcher --profile "
        r"\$\(PROFILE\) \$\(SERVICES\)$",
        MAKEFILE,
        re.M,
    )
    assert '"%PY%" -m services.launcher --profile %PROFILE%%ARGS%' in BAT
    for command in ('ruff.exe" check .', 'ruff.exe" format --check .', 'mypy.exe"'):
        assert command in BAT
    assert '"%PY%" -m pytest %PYTEST_ARGS%' in BAT and '"%PY%" -m bench %BENCH_ARGS%' in BAT


def test_finds_python_311_and_pauses_on_failure() -> None:
    assert "py -3.11" in BAT and "sys.version_info[:2] != (3, 11)" in BAT
    fail = BAT[BAT.index(":fail") :]
    assert "pause" in fail.split(":end")[0]
