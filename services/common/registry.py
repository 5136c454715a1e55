"""Backend registries name their factories as ``"module:attribute"`` strings, imported
only when chosen: a container with one backend installed never imports another's
heavy packages (torch, onnxruntime, ...)."""

from __future__ import annotations

import importlib
from typing import Any


def load_factory(target: str) -> Any:
    """The object ``target`` (``"package.module:name"``) names, importing its module now."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
