"""Processes for the reliability tests: the gateway and fake services, each killable,
with the gateway's memory and task count measurable from outside."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import psutil

from bench.stack import ServiceProcess


class FakeServices(ServiceProcess):
    """bench/fakes.py in its own process; ``behaviour``: FakeBehaviour fields."""

    def __init__(self, sign_replies: bool = False, **behaviour: Any) -> None:
        env = {
            "FAKES_BEHAVIOUR": json.dumps(behaviour),
            "FAKES_SIGN_REPLIES": str(int(sign_replies)),
        }
        super().__init__("tests.reliability.fake_proc", "FAKES_", env)


class GatewayProcess(ServiceProcess):
    """The gateway in its own process; ``settings``: GatewaySettings fields."""

    def __init__(self, **settings: Any) -> None:
        env = {
            f"GATEWAY_{k.upper()}": v if isinstance(v, str) else json.dumps(v)
            for k, v in settings.items()
        }
        super().__init__("tests.reliability.gateway_proc", "GATEWAY_", env)
        self.ws_url = self.url.replace("http://", "ws://") + "/ws"

    def rss_mb(self) -> float:
        assert self.proc is not None
        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    def tasks(self) -> int:
        return int(httpx.get(self.url + "/_debug/tasks", timeout=5).json()["tasks"])

    def health(self) -> dict[str, Any]:
        return dict(httpx.get(self.url + "/health", timeout=10).json())

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` (a state the test needs before it goes on, not an assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
