"""``python -m tests.reliability.fake_proc``: the fake services (bench/fakes.py) in their own
process, so a test can kill one with SIGKILL mid-turn and start it again on the same port.

``FAKES_PORT`` is the port; ``FAKES_BEHAVIOUR`` a JSON object of FakeBehaviour fields.
With ``FAKES_SIGN_REPLIES=1`` each reply starts with the request's system prompt, so
sessions that send different prompts get different replies (see the soak).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from starlette.routing import Route

from bench.fakes import FakeBehaviour, create_fake_services


def sign_replies(app: FastAPI, behaviour: FakeBehaviour) -> None:
    """Serve ``/chat/stream`` with the system prompt in front of the scripted reply."""

    async def signed(request: Request) -> StreamingResponse:
        body = await request.json()
        system = [m["content"] for m in body["messages"] if m["role"] == "system"]
        pieces = [f"{system[0]}。" if system else "", *behaviour.reply_pieces]

        async def events() -> AsyncIterator[str]:
            for piece in pieces:
                await asyncio.sleep(behaviour.token_delay_s)
                yield "data: " + json.dumps({"delta": piece}, ensure_ascii=False) + "\n\n"
            yield "data: " + json.dumps({"finish_reason": "stop"}) + "\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    # first in the table, so it answers before the fakes' own /chat/stream
    app.router.routes.insert(0, Route("/chat/stream", signed, methods=["POST"]))


def main() -> None:
    behaviour = FakeBehaviour(**json.loads(os.environ.get("FAKES_BEHAVIOUR", "{}")))
    port = int(os.environ["FAKES_PORT"])
    app = create_fake_services(behaviour)
    if os.environ.get("FAKES_SIGN_REPLIES") == "1":
        sign_replies(app, behaviour)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
