"""A client that talks to ``/v1/realtime`` the way an OpenAI Realtime client does.

It opens a session, names the clip's language for transcription
(``session.update``), and streams the utterance as base64 PCM16 at 24 kHz in
40 ms ``input_audio_buffer.append`` events at real-time pace (the same 40 ms
as the 640-sample frames of :mod:`bench.talker`), then silence, as an open
microphone does, until ``response.done``. Server VAD ends the turn and the
gateway answers it; every event is timestamped on arrival, before parsing.

The Realtime API has no ``turnMetrics``: the stages come from the client's
clock instead, from ``input_audio_buffer.speech_stopped`` arriving (the
gateway's end-of-turn detection, a loopback hop later). Its transcript
deltas go out with the audio, not as the LLM writes, so the first LLM token
is not seen here.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from typing import Any

import numpy as np
import soxr
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from .speech import Utterance
from .talker import Playback, TurnResult, paced

RATE = 24000  # the Realtime API's default PCM16 rate
CHUNK_S = 0.04  # as the /ws client's 640-sample frames
CHUNK_BYTES = int(RATE * CHUNK_S) * 2
MODE = "realtime"


def realtime_url(ws_url: str) -> str:
    """The gateway's ``/v1/realtime`` for its ``/ws`` URL."""
    base = ws_url.removesuffix("/").removesuffix("/ws")
    return base + "/v1/realtime?model=koe"


def resample(pcm16k: bytes) -> bytes:
    """16 kHz int16 PCM as 24 kHz int16 PCM."""
    audio = np.frombuffer(pcm16k, "<i2").astype(np.float32) / 32768
    out = soxr.resample(audio, 16000, RATE)
    return (np.clip(out, -1, 1) * 32767).astype("<i2").tobytes()


def _ms(later: float | None, earlier: float | None) -> float | None:
    return None if later is None or earlier is None else (later - earlier) * 1000


class RealtimeTalker:
    def __init__(self, url: str, utt: Utterance, *, pace: float = 1.0, session: int = 0) -> None:
        self.url, self.utt, self.pace = realtime_url(url), utt, pace
        self.result = TurnResult(utt.name, MODE, session)
        self.events: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
        self.speech_end_at: float | None = None

    async def _read(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                self.events.put_nowait((time.perf_counter(), json.loads(raw)))

    async def _until(self, kind: str) -> dict[str, Any]:
        while True:
            _, ev = await self.events.get()
            if ev.get("type") == "error":
                raise RuntimeError(f"error: {ev.get('error', {}).get('message')}")
            if ev.get("type") == kind:
                return ev

    async def _stream(self, ws: ClientConnection) -> None:
        pcm = resample(self.utt.pcm)
        async for chunk, last_speech in paced(
            pcm, RATE, CHUNK_BYTES, self.utt.speech_end_s, self.pace
        ):
            event = {"type": "input_audio_buffer.append", "audio": base64.b64encode(chunk).decode()}
            await ws.send(json.dumps(event))
            if last_speech:
                self.speech_end_at = time.perf_counter()

    async def run(self, timeout_s: float = 120.0) -> TurnResult:
        r = self.result
        tasks: list[asyncio.Task[Any]] = []
        try:
            async with asyncio.timeout(timeout_s):
                async with connect(self.url, max_size=64 << 20, open_timeout=30) as ws:
                    tasks.append(asyncio.create_task(self._read(ws)))
                    await self._until("session.created")
                    language = {"transcription": {"language": self.utt.language}}
                    update = {"type": "session.update", "session": {"audio": {"input": language}}}
                    await ws.send(json.dumps(update))
                    await self._until("session.updated")
                    tasks.append(asyncio.create_task(self._stream(ws)))
                    await self._converse()
        except TimeoutError:
            r.failure = r.failure or "timeout"
        except (OSError, WebSocketException, RuntimeError) as exc:
            r.failure = r.failure or f"connection: {exc}"
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return r

    async def _converse(self) -> None:
        r = self.result
        stopped = transcribed = first_audio = None
        playback = Playback()
        while True:
            t, ev = await self.events.get()
            kind = ev.get("type")
            if kind == "input_audio_buffer.speech_stopped":
                if self.speech_end_at is None:
                    r.failure = r.failure or "the VAD ended the turn inside the clip"
                stopped = t
            elif kind == "conversation.item.input_audio_transcription.completed":
                r.transcript, transcribed = ev.get("transcript", ""), t
            elif kind == "response.output_audio.delta":
                samples = len(base64.b64decode(ev.get("delta", ""))) // 2
                playback.add(t, samples / RATE)
                first_audio = first_audio or t
            elif kind == "response.output_audio_transcript.delta":
                r.wavs += 1  # one per piece of the reply, sent with its audio
            elif kind == "response.output_audio_transcript.done":
                r.reply = ev.get("transcript", "")
            elif kind == "error":
                r.failure = r.failure or f"error: {ev.get('error', {}).get('message')}"
            elif kind == "response.done":
                status = ev.get("response", {}).get("status")
                if status != "completed":
                    r.failure = r.failure or f"response {status}"
                r.total_ms = _ms(t, stopped)
                break
        if not r.transcript:
            r.failure = r.failure or "no transcript (turn dropped)"
        elif first_audio is None:
            r.failure = r.failure or "no audio"
        r.max_gap_s = playback.max_gap_s
        r.transcript_ms, r.first_audio_ms = _ms(transcribed, stopped), _ms(first_audio, stopped)
        end = self.speech_end_at
        if end is not None and stopped is not None:
            r.detect_s = stopped - end
        if end is not None and first_audio is not None:
            r.v2v_s = first_audio - end
            if stopped is not None:
                r.after_detect_s = first_audio - stopped


async def talk_realtime(
    url: str, utt: Utterance, timeout_s: float = 120.0, **kwargs: Any
) -> TurnResult:
    """One spoken turn in a fresh Realtime session; ``url`` is the gateway's ``/ws`` URL."""
    return await RealtimeTalker(url, utt, **kwargs).run(timeout_s)
