"""Start the real services as processes on loopback, as `make run` would (tests and bench)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


_GIVEN: set[int] = set()  # ports free_port() has handed out in this process


def free_port() -> int:
    """A loopback port nothing listens on, never the same one twice in a process.

    The port is free when asked but only taken when its server binds it, seconds later
    for a service loading its model; the system may hand the same port out again
    meanwhile. Two services of one stack were once given the same port: the second
    could not bind, and its health check was answered by the first.
    """
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


class ServiceProcess:
    def __init__(self, module: str, prefix: str, env: dict[str, str] | None = None) -> None:
        self.module = module
        self.prefix = prefix
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, f"{prefix}PORT": str(self.port), **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = ROOT / "test-artifacts" / f"{module.rsplit('.', 1)[-1]}-{self.port}.log"

    def start(self, timeout: float = 600) -> ServiceProcess:
        self.spawn()
        return self.wait_healthy(timeout)

    def spawn(self) -> ServiceProcess:
        """Start the process without waiting for it (several can load their models at once)."""
        self.log.parent.mkdir(exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def wait_healthy(self, timeout: float = 600) -> ServiceProcess:
        assert self.proc is not None, "spawn() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.module} exited: see {self.log}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.module} did not become healthy: see {self.log}")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
