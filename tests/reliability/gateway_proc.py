"""``python -m tests.reliability.gateway_proc``: the gateway as ``python -m gateway`` runs it
(settings from ``GATEWAY_*``, the same uvicorn options), plus ``GET /_debug/tasks``.

The extra route counts the event loop's asyncio tasks, so soak and flood tests
can see a task leak from outside the process whose memory they also measure.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from gateway.__main__ import serve
from gateway.app import create_app
from gateway.settings import GatewaySettings
from services.common.server import configure_logging


def with_task_count(app: Any) -> Any:
    async def wrapped(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/_debug/tasks":
            body = json.dumps({"tasks": len(asyncio.all_tasks())}).encode()
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return wrapped


def main() -> None:
    settings = GatewaySettings()
    configure_logging(settings.log_level)
    serve(settings, with_task_count(create_app(settings)))  # gateway/__main__'s options


if __name__ == "__main__":
    main()
