"""The browser client in a real headless chromium against the real services: the fake
microphone plays recorded Japanese speech; the page must show its transcript, a reply,
and play the reply's audio."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from bench.metrics import cer
from bench.stack import ROOT, ServiceProcess
from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.browser.cdp import CHROMIUM, Browser
from tests.conftest import JSUT_TEXT
from tests.servers import free_port, serve

pytestmark = pytest.mark.slow

ARTIFACTS = ROOT / "test-artifacts"
TOKEN = "browser-test-token"
RATE = 48000

# Everything the assertions need, read from the DOM in one round trip.
SNAPSHOT = """(() => {
  const texts = (sel) => [...document.querySelectorAll(sel)].map((e) => e.textContent);
  const app = document.getElementById("app");
  const alert = document.getElementById("alert");
  return {
    state: app.dataset.state,
    connection: app.dataset.connection,
    scheduled: Number(app.dataset.chunksScheduled),
    played: Number(app.dataset.chunksPlayed),
    user: texts(".msg.user .text"),
    assistant: texts(".msg.assistant .text"),
    metrics: texts(".metrics"),
    errors: texts(".notice.error"),
    alert: alert.hidden ? "" : alert.textContent,
    voices: document.getElementById("voice").options.length,
  };
})()"""


@pytest.fixture(scope="module")
def page_url(cache_dir: Path) -> Iterator[str]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is missing: run scripts/install-system-deps.sh")
    procs = [
        ServiceProcess("services.asr", "ASR_"),
        ServiceProcess("services.llm", "LLM_", {"LLM_TEMPERATURE": "0"}),
        ServiceProcess("services.tts", "TTS_"),
    ]
    port = free_port()
    settings = GatewaySettings(
        asr_urls=[procs[0].url],
        llm_urls=[procs[1].url],
        tts_urls=[procs[2].url],
        # With a token set, the page must still load without one and pass it on itself.
        api_token=TOKEN,
        # the default allowlist (LocalChatVRM's :3000) does not name this origin: the page
        # served by the gateway itself must connect as same-origin
    )
    try:
        for p in procs:
            p.start()
        with serve(create_app(settings), port=port) as url:
            yield f"{url}/?token={TOKEN}"
    finally:
        for p in procs:
            p.stop()


@pytest.fixture
def fake_mic(jsut_wav: Path, tmp_path: Path) -> Path:
    """The clip with silence around it. Chromium loops the file: the long tail keeps a
    second turn from starting (and barging in) while the test watches the first."""
    audio, rate = sf.read(jsut_wav, dtype="float32", always_2d=True)
    mono = soxr.resample(audio.mean(axis=1), rate, RATE)
    silence = np.zeros
    clip = np.concatenate([silence(RATE * 1, np.float32), mono, silence(RATE * 60, np.float32)])
    path = tmp_path / "mic.wav"
    sf.write(path, clip, RATE, subtype="PCM_16")
    return path


@pytest.fixture
def browser(fake_mic: Path, tmp_path: Path) -> Iterator[Browser]:
    b = Browser(tmp_path / "profile", fake_mic, ARTIFACTS / "chromium.log")
    try:
        b.call("Runtime.enable")
        b.call("Page.enable")
        yield b
    finally:
        b.close()


def test_spoken_turn_in_the_browser(page_url: str, browser: Browser) -> None:
    browser.call(
        "Emulation.setDeviceMetricsOverride",
        width=900,
        height=900,
        deviceScaleFactor=1,
        mobile=False,
    )
    browser.call("Page.navigate", url=page_url)
    browser.wait_for(
        "document.getElementById('app')?.dataset.connection === 'connected'", 30, "/ws to connect"
    )
    browser.wait_for("document.getElementById('voice').options.length > 1", 10, "the voice list")
    browser.evaluate("document.getElementById('mic').click()", user_gesture=True)

    browser.wait_for("!!document.querySelector('.msg.user')", 60, "the transcript")
    browser.wait_for(
        "!!document.querySelector('.metrics') && Number(document.getElementById('app')"
        ".dataset.chunksPlayed) > 0",
        60,
        "the reply's audio to play",
    )
    page = browser.evaluate(SNAPSHOT)
    browser.screenshot(ARTIFACTS / "browser.png")
    # Phone width: the same page must stay readable without horizontal scrolling.
    browser.call(
        "Emulation.setDeviceMetricsOverride",
        width=390,
        height=844,
        deviceScaleFactor=2,
        mobile=True,
    )
    assert browser.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    browser.screenshot(ARTIFACTS / "browser-phone.png")

    assert page["connection"] == "connected", page
    assert not page["alert"] and not page["errors"], page
    assert page["voices"] > 1, "the voice list came through /voices"
    assert len(page["user"]) == 1, page
    assert cer(JSUT_TEXT, page["user"][0]) <= 0.2, page["user"][0]
    assert page["assistant"] and page["assistant"][0].strip(), page
    assert page["scheduled"] >= page["played"] >= 1, page
    assert "first audio" in page["metrics"][0], page["metrics"]

    browser.evaluate("document.getElementById('mic').click()", user_gesture=True)
    assert (
        browser.evaluate("document.getElementById('mic').getAttribute('aria-pressed')") == "false"
    )
    # The reply may have more pieces than the one that played: the page shows it speaking
    # until the last one ends, then idle (the microphone is off).
    browser.wait_for(
        "document.getElementById('app').dataset.state === 'idle'", 30, "the page to go idle"
    )
