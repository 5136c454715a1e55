"""The README's configuration table, generated from the settings classes.

``python -m services.common.settings_doc`` rewrites the part of README.md between
the markers; ``--check`` only reports whether it is stale (a test runs that, so a
new setting without a regenerated table fails the suite).
"""

from __future__ import annotations

import argparse
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings

START = "<!-- settings-table:start (python -m services.common.settings_doc) -->"
END = "<!-- settings-table:end -->"
README = Path(__file__).resolve().parents[2] / "README.md"


def settings_classes() -> list[tuple[str, type[BaseSettings]]]:
    # Imported here: settings modules are light, but this module must stay importable alone.
    from gateway.settings import GatewaySettings
    from services.asr.settings import ASRSettings
    from services.llm.settings import LLMSettings
    from services.tts.settings import TTSSettings

    return [
        ("ASR service (`python -m services.asr`)", ASRSettings),
        ("LLM service (`python -m services.llm`)", LLMSettings),
        ("TTS service (`python -m services.tts`)", TTSSettings),
        ("Gateway (`python -m gateway`)", GatewaySettings),
    ]


def show_default(name: str, value: Any) -> str:
    if name == "cache_dir":
        return "`$KOE_CACHE_DIR` or `~/.cache/koe`"  # not this machine's home folder
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, list | dict):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, bool):
        text = str(value).lower()
    else:
        text = str(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"`{text}`" if text else '`""`'


def table(cls: type[BaseSettings]) -> str:
    prefix = str(cls.model_config.get("env_prefix", ""))
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in cls.model_fields.items():
        default = field.get_default(call_default_factory=True)
        description = " ".join((field.description or "").split())
        # docstrings use reStructuredText's ``code``; markdown wants single backticks
        description = description.replace("``", "`").replace("|", "\\|")
        rows.append(f"| `{prefix}{name.upper()}` | {show_default(name, default)} | {description} |")
    return "\n".join(rows)


def render() -> str:
    parts = [START, ""]
    for title, cls in settings_classes():
        parts += [f"#### {title}", "", table(cls), ""]
    parts.append(END)
    return "\n".join(parts)


def updated(text: str) -> str:
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"README.md lacks the markers {START!r} ... {END!r}")
    return text[:start] + render() + text[end + len(END) :]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.common.settings_doc")
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is stale")
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    new = updated(text)
    if args.check:
        if new != text:
            print(f"{args.readme} is stale: run python -m services.common.settings_doc")
            return 1
        return 0
    if new != text:
        args.readme.write_text(new, encoding="utf-8")
        print(f"updated the configuration table in {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
