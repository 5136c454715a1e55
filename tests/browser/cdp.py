"""Just enough of the Chrome DevTools Protocol to drive Debian's headless chromium.

Plain CDP over the ``websockets`` client the tests already use: no node packages,
no browser download (playwright's own download cannot reach its CDN here).
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

CHROMIUM = "/usr/bin/chromium"


class PageError(AssertionError):
    pass


class Browser:
    """A headless chromium with one page, fed ``fake_audio`` as its microphone."""

    def __init__(self, profile: Path, fake_audio: Path, log: Path) -> None:
        self.profile = profile
        self.log = log
        self.console: list[str] = []  # console messages and uncaught exceptions
        self._next_id = 0
        args = [
            CHROMIUM,
            "--headless",
            "--no-sandbox",  # tests may run as root in a container
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--use-fake-ui-for-media-stream",  # grants the microphone without a prompt
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={fake_audio}",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
        ]
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        self.ws = self._connect_page(timeout=60)

    def _connect_page(self, timeout: float) -> ClientConnection:
        # Chromium writes the port it picked into the profile once DevTools listens.
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited ({self.proc.returncode}): see {self.log}")
            if port_file.exists() and (lines := port_file.read_text().split()):
                try:
                    targets = httpx.get(f"http://127.0.0.1:{lines[0]}/json/list").json()
                except httpx.TransportError:
                    targets = []
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    return connect(pages[0]["webSocketDebuggerUrl"], max_size=None)
            time.sleep(0.1)
        raise RuntimeError(f"chromium's DevTools did not come up: see {self.log}")

    def call(self, method: str, timeout: float = 30, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        mid = self._next_id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.01, deadline - time.monotonic())))
            if msg.get("id") == mid:
                if "error" in msg:
                    raise PageError(f"{method}: {msg['error']}")
                return dict(msg.get("result", {}))
            self._on_event(msg)

    def _on_event(self, msg: dict[str, Any]) -> None:
        params = msg.get("params", {})
        if msg.get("method") == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            self.console.append(f"console.{params['type']}: {text}")
        elif msg.get("method") == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            self.console.append(f"uncaught: {text}")

    def evaluate(self, expression: str, user_gesture: bool = False) -> Any:
        """The value of a JavaScript expression in the page (awaited if a promise)."""
        result = self.call(
            "Runtime.evaluate",
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
            userGesture=user_gesture,  # counts as a click for autoplay and permissions
        )
        if "exceptionDetails" in result:
            raise PageError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float, what: str) -> Any:
        """Poll until the expression is truthy; fail with the page's text and console if it
        never is. (A DOM node comes back as ``{}``: test for it with ``!!``.)"""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if value := self.evaluate(expression):
                return value
            time.sleep(0.2)
        text = self.evaluate("document.body.innerText.slice(0, 2000)")
        raise PageError(f"timed out waiting for {what}; page: {text!r}; console: {self.console}")

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
