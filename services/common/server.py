"""Command-line entry shared by the services: ``python -m services.<name> --help``."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import re
import sys
from collections.abc import Callable
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic_settings import BaseSettings

KEEPALIVE_S = 75  # idle HTTP connections are kept this long
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
logger = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def settings_help(settings_cls: type[BaseSettings]) -> str:
    """One line per setting: env name, default, description."""
    prefix = settings_cls.model_config.get("env_prefix", "")
    lines = ["settings (environment variables; also read from .env):"]
    for name, field in settings_cls.model_fields.items():
        default = ""
        if not field.is_required():
            default = f" [default: {field.get_default(call_default_factory=True)}]"
        lines.append(f"  {prefix}{name.upper()}{default}")
        if field.description:
            lines.append(f"      {field.description}")
    return "\n".join(lines)


class RedactTokens(logging.Filter):
    """Blank ``token=...`` in log lines: uvicorn logs each WebSocket's path with its query
    string, and the browser client can only send its token there (``/ws?token=``)."""

    _TOKEN = re.compile(r"(token=)[^&\s\"']+", re.IGNORECASE)

    def _clean(self, value: Any) -> Any:
        return self._TOKEN.sub(r"\1***", value) if isinstance(value, str) else value

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._clean(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(self._clean(a) for a in record.args)
        return True


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, force=True)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactTokens())


def check_bind(settings: Any) -> None:
    """Refuse to listen beyond loopback without a token, unless explicitly overridden."""
    if is_loopback(settings.host) or settings.api_token or settings.allow_insecure_remote:
        return
    prefix = settings.model_config.get("env_prefix", "")
    sys.exit(
        f"refusing to listen on {settings.host} without an API token: set {prefix}API_TOKEN "
        "(clients then send 'Authorization: Bearer <token>'), or bind to 127.0.0.1; "
        f"{prefix}ALLOW_INSECURE_REMOTE=true skips this check (only on a private network)"
    )


def lower_priority(nice: int) -> None:
    """Raise this process's nice value by ``nice`` (Unix; elsewhere it is only logged).

    Called before any thread exists: on Linux the value is per thread, and the
    threads started later (torch's, onnxruntime's, the server's) inherit it.
    """
    if nice <= 0:
        return
    if not hasattr(os, "nice"):
        logger.info("CPU priority unchanged: nice values are Unix-only")
        return
    try:
        now = os.nice(nice)
    except OSError as exc:
        logger.warning("could not lower the CPU priority: %s", exc)
        return
    logger.info("CPU priority lowered: nice %d", now)


def main(
    *,
    prog: str,
    description: str,
    settings_cls: type[BaseSettings],
    create_app: Callable[[Any], FastAPI],
    prepare: Callable[[Any], object] | None = None,
    argv: list[str] | None = None,
) -> None:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=settings_help(settings_cls),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", help="address to bind (overrides the HOST setting)")
    parser.add_argument("--port", type=int, help="port to listen on")
    parser.add_argument("--log-level", help="debug, info, warning or error")
    if prepare is not None:
        parser.add_argument(
            "--prepare-only",
            action="store_true",
            help="assemble or download the configured model into the cache, then exit",
        )
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if v is not None and k != "prepare_only"}
    settings = settings_cls(**overrides)
    configure_logging(settings.log_level)  # type: ignore[attr-defined]
    lower_priority(getattr(settings, "nice", 0))
    if prepare is not None and args.prepare_only:
        prepare(settings)
        return
    check_bind(settings)
    uvicorn.run(
        create_app(settings),
        host=settings.host,  # type: ignore[attr-defined]
        port=settings.port,  # type: ignore[attr-defined]
        log_level=settings.log_level,  # type: ignore[attr-defined]
        log_config=None,  # keep our format
        timeout_graceful_shutdown=3,
        # The gateway keeps its connections for a minute between turns (clients.KEEPALIVE_S);
        # uvicorn's 5 s default made most turns open new ones.
        timeout_keep_alive=KEEPALIVE_S,
    )
