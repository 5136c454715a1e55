"""``python -m tests.reliability.service_proc``: the LLM service through its real command-line
entry (settings from ``LLM_*``, logging, uvicorn) with the fake engine instead of a model."""

from __future__ import annotations

from services.common.server import main
from services.llm.app import create_app
from services.llm.settings import LLMSettings
from tests.llm.conftest import FakeChat

if __name__ == "__main__":
    main(
        prog="fake-llm",
        description="the LLM service on a fake engine",
        settings_cls=LLMSettings,
        create_app=lambda settings: create_app(settings, engine=FakeChat()),
    )
