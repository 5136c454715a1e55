"""``python -m services.asr``: run the ASR service."""

from services.common.server import main

from .app import create_app
from .models import prepare
from .settings import ASRSettings

if __name__ == "__main__":
    main(
        prog="python -m services.asr",
        description="Whisper speech recognition: POST /transcribe, /v1/audio/transcriptions.",
        settings_cls=ASRSettings,
        create_app=create_app,
        prepare=prepare,
    )
