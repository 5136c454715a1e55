"""``python -m services.tts``: run the TTS service (``--help`` lists every setting)."""

from __future__ import annotations

from services.common.server import main

from .app import create_app
from .engine import prepare
from .settings import TTSSettings

if __name__ == "__main__":
    main(
        prog="python -m services.tts",
        description="Text-to-speech service: POST /synthesize, /synthesize/stream, "
        "/v1/audio/speech (OpenAI); GET /voices, /health, /docs.",
        settings_cls=TTSSettings,
        create_app=create_app,
        prepare=prepare,
    )
