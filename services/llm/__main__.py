"""``python -m services.llm``: run the LLM service (``--help`` lists every setting)."""

from __future__ import annotations

from services.common.server import main

from .app import create_app
from .engine import prepare
from .settings import LLMSettings

if __name__ == "__main__":
    main(
        prog="python -m services.llm",
        description="Chat LLM service: /chat, /chat/stream, /v1/chat/completions, /health.",
        settings_cls=LLMSettings,
        create_app=create_app,
        prepare=prepare,
    )
