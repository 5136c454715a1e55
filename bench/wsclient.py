"""A test client that speaks /ws like LocalChatVRM does (including its reconnects)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr
from websockets.sync.client import ClientConnection, connect

FRAME_BYTES = 1280  # 640 samples, what the real client sends


def speech_pcm(path: Path, lead_s: float = 0.3, tail_s: float = 0.8) -> bytes:
    """A clip as 16 kHz int16 PCM, with silence around it so the VAD sees a whole turn."""
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = soxr.resample(audio.mean(axis=1), rate, 16000)
    pad = np.zeros(int(16000 * lead_s), np.float32), np.zeros(int(16000 * tail_s), np.float32)
    return (np.concatenate([pad[0], mono, pad[1]]) * 32767).astype("<i2").tobytes()


class WSClient:
    def __init__(self, url: str, **kwargs: Any) -> None:
        self.url = url
        self.kwargs = kwargs
        self.ws: ClientConnection = connect(url, max_size=64 << 20, **kwargs)
        self.received: list[tuple[float, dict[str, Any]]] = []

    def send(self, event: dict[str, Any]) -> None:
        self.ws.send(json.dumps(event, ensure_ascii=False))

    def start(self, messages: list[dict[str, str]] | None = None, **extra: Any) -> None:
        self.send(
            {
                "event": "startSession",
                "sttModelId": "your-stt-model-id",
                "llmModelId": "your-llm-model-id",
                "ttsModelId": "your-tts-model-id",
                "messages": messages or [],
                **extra,
            }
        )

    def reconnect(self, messages: list[dict[str, str]], **extra: Any) -> None:
        """What LocalChatVRM does whenever its chat log changes."""
        self.ws.close()
        self.ws = connect(self.url, max_size=64 << 20, **self.kwargs)
        self.start(messages, **extra)

    def stream(self, pcm: bytes, realtime: bool = True, frame: int = FRAME_BYTES) -> float:
        """Send PCM in frames, at real-time pace if asked; returns when the audio ended."""
        t0 = time.monotonic()
        for i in range(0, len(pcm), frame):
            self.ws.send(pcm[i : i + frame])
            if realtime:
                due = t0 + (i + frame) / 32000
                time.sleep(max(0.0, due - time.monotonic()))
        return time.monotonic()

    def recv(self, timeout: float = 30) -> dict[str, Any]:
        raw = self.ws.recv(timeout=timeout)
        assert isinstance(raw, str), "the server sends JSON text frames only"
        event = json.loads(raw)
        self.received.append((time.monotonic(), event))
        return dict(event)

    def until(self, name: str, timeout: float = 60) -> list[dict[str, Any]]:
        """Events up to and including the first ``name``."""
        deadline = time.monotonic() + timeout
        out = []
        while True:
            event = self.recv(timeout=max(0.01, deadline - time.monotonic()))
            out.append(event)
            if event["event"] == name:
                return out

    def close(self) -> None:
        self.ws.close()
