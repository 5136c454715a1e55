"""``python -m gateway``: run the WebSocket gateway."""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn

from services.common.server import check_bind, configure_logging, settings_help

from .app import create_app
from .settings import GatewaySettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m gateway",
        description="WebSocket gateway: ws://HOST:PORT/ws (LocalChatVRM protocol).",
        epilog=settings_help(GatewaySettings),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", help="address to bind")
    parser.add_argument("--port", type=int, help="port to listen on")
    parser.add_argument("--log-level", help="debug, info, warning or error")
    args = parser.parse_args(argv)
    settings = GatewaySettings(**{k: v for k, v in vars(args).items() if v is not None})
    configure_logging(settings.log_level)
    check_bind(settings)
    serve(settings)


def serve(settings: GatewaySettings, app: Any = None) -> None:
    """Run the gateway (or ``app`` wrapping it) with the server options it relies on:
    the WebSocket message limit is enforced by uvicorn, pings find dead clients."""
    uvicorn.run(
        app or create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,
        ws_max_size=settings.max_message_bytes,
        ws_ping_interval=20,
        # A sentence's WAV is ~0.3 MB of JSON: compressing it took ~10 ms of the event loop
        # per sentence (and every audio frame in was inflated), for a local network.
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=3,
    )


if __name__ == "__main__":
    main()
