"""A client that talks to ``/ws`` the way LocalChatVRM does, in asyncio so many talk at once.

It streams an utterance like a microphone: 640-sample frames, each sent when
its last sample would have been recorded (real-time pace), and silence after
the clip until the turn is over, as an open microphone does. Like the real
client it closes its socket and opens a new one with the whole chat log after
``userSpeechTranscript`` and after ``assistantMessageGenerated`` (the gateway
hands the turn to the new socket). Every server event is timestamped when it
arrives, before it is parsed, so a busy client does not inflate latencies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import wave
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from gateway.audio import wav_duration

from .speech import Utterance

FRAME_BYTES = 1280  # 640 samples of int16, what the real client sends


@dataclass
class TurnResult:
    clip: str
    mode: str  # "streaming" (a WAV per sentence) or "sequential" (one WAV per turn)
    session: int = 0
    failure: str | None = None
    v2v_s: float | None = None  # speech end sent -> first assistantSpeechGenerated received
    detect_s: float | None = None  # speech end sent -> userSpeechEnd received (VAD + 200 ms)
    after_detect_s: float | None = None  # userSpeechEnd received -> first WAV received
    # the gateway's own turnMetrics, in ms from its end-of-speech detection
    transcript_ms: float | None = None
    first_token_ms: float | None = None
    first_audio_ms: float | None = None
    total_ms: float | None = None
    transcript: str = ""
    reply: str = ""
    wavs: int = 0
    # The longest silence inside the reply as the client plays it: each WAV starts when it
    # arrives or when the one before has ended, whichever is later (0 for one WAV).
    max_gap_s: float | None = None
    reconnects: int = 0

    @property
    def ok(self) -> bool:
        return self.failure is None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Playback:
    """The client's audio queue: WAVs play one after another, each as soon as it has
    arrived and the one before has ended; records the longest wait between two."""

    def __init__(self) -> None:
        self.ends_at: float | None = None
        self.max_gap_s: float | None = None

    def add(self, arrived: float, seconds: float) -> None:
        if self.ends_at is None:
            self.max_gap_s, start = 0.0, arrived
        else:
            start = max(arrived, self.ends_at)
            self.max_gap_s = max(self.max_gap_s or 0.0, start - self.ends_at)
        self.ends_at = start + seconds


async def paced(
    pcm: bytes, rate: int, chunk_bytes: int, speech_end_s: float, pace: float = 1.0
) -> AsyncIterator[tuple[bytes, bool]]:
    """``pcm`` (int16 at ``rate``) as a microphone streams it: ``chunk_bytes`` at a time,
    each when its last sample has been "recorded", then silence for ever; with each chunk,
    whether it holds the last speech sample (at ``speech_end_s``)."""
    last_speech = (int(speech_end_s * rate) * 2 - 1) // chunk_bytes
    chunk_s = chunk_bytes / 2 / rate
    silence = bytes(chunk_bytes)
    t0 = time.perf_counter()
    i = 0
    while True:
        due = t0 + (i + 1) * chunk_s / pace
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        chunk = pcm[i * chunk_bytes : (i + 1) * chunk_bytes]
        yield chunk + silence[len(chunk) :], i == last_speech
        i += 1


def start_session(history: list[dict[str, str]], **extra: Any) -> str:
    # Placeholder ids, exactly as LocalChatVRM sends them.
    event = {
        "event": "startSession",
        "sttModelId": "your-stt-model-id",
        "llmModelId": "your-llm-model-id",
        "ttsModelId": "your-tts-model-id",
        "messages": history,
        **extra,
    }
    return json.dumps(event, ensure_ascii=False)


class Talker:
    def __init__(
        self,
        url: str,
        utt: Utterance,
        *,
        one_wav: bool = False,
        reconnects: bool = True,
        pace: float = 1.0,
        session: int = 0,
        typed: str | None = None,
    ) -> None:
        self.url, self.utt, self.pace, self.reconnects = url, utt, pace, reconnects
        self.options: dict[str, Any] = {"language": utt.language}
        if one_wav:
            self.options["oneWavPerTurn"] = True
        mode = "sequential" if one_wav else "streaming"
        self.result = TurnResult(utt.name, mode, session)
        self.history: list[dict[str, str]] = []
        self.ws: ClientConnection | None = None
        self.events: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
        self.speech_end_at: float | None = None
        # A typed turn (userMessage) instead of speech: no audio, no transcript event.
        self.typed = typed
        if typed:
            self.result.mode = "typed"
        self._tasks: list[asyncio.Task[Any]] = []

    async def _open(self) -> None:
        ws = await connect(self.url, max_size=64 << 20, open_timeout=30)
        await ws.send(start_session(self.history, **self.options))
        self.ws = ws
        self._tasks.append(asyncio.create_task(self._read(ws)))

    async def _read(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                now = time.perf_counter()
                if not isinstance(raw, str):
                    self.events.put_nowait((now, {"event": "<binary frame>"}))
                    continue
                self.events.put_nowait((now, json.loads(raw)))

    async def _reconnect(self) -> None:
        old = self.ws
        assert old is not None
        # The browser's ws.close() does not wait for the closing handshake.
        self._tasks.append(asyncio.create_task(old.close()))
        await self._open()
        self.result.reconnects += 1

    async def _stream(self) -> None:
        utt = self.utt
        async for chunk, last_speech in paced(
            utt.pcm, 16000, FRAME_BYTES, utt.speech_end_s, self.pace
        ):
            if self.ws is not None:
                # Frames sent while the socket is being replaced are lost, as in the browser.
                with contextlib.suppress(ConnectionClosed):
                    await self.ws.send(chunk)
            if last_speech:
                self.speech_end_at = time.perf_counter()

    async def _send_typed(self, text: str) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps({"event": "userMessage", "message": text}))
        self.speech_end_at = time.perf_counter()
        # LocalChatVRM reconnects with the message in its log right after sending it.
        self.history.append({"role": "user", "content": text})
        if self.reconnects:
            await self._reconnect()

    async def run(self, timeout_s: float = 120.0) -> TurnResult:
        r = self.result
        try:
            await self._open()
        except (OSError, TimeoutError, WebSocketException) as exc:
            r.failure = f"connect: {exc}"
            return r
        try:
            async with asyncio.timeout(timeout_s):
                if self.typed:
                    await self._send_typed(self.typed)
                else:
                    self._tasks.append(asyncio.create_task(self._stream()))
                await self._converse()
        except TimeoutError:
            r.failure = r.failure or "timeout"
        except (OSError, WebSocketException) as exc:
            r.failure = r.failure or f"connection: {exc}"
        finally:
            for task in self._tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                if self.ws is not None:
                    await self.ws.close()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        return r

    async def _converse(self) -> None:
        r = self.result
        speech_ends: list[float] = []
        first_audio: float | None = None
        playback = Playback()
        while True:
            t, ev = await self.events.get()
            name = ev.get("event")
            if name == "userSpeechEnd":
                if self.speech_end_at is None:
                    r.failure = r.failure or "the VAD ended the turn inside the clip"
                speech_ends.append(t)
            elif name == "userSpeechTranscript":
                r.transcript = ev.get("transcript", "")
                self.history.append({"role": "user", "content": r.transcript})
                if self.reconnects:
                    await self._reconnect()
            elif name == "assistantMessageGenerated":
                r.reply = ev.get("generatedMessageContent", "")
                self.history.append({"role": "assistant", "content": r.reply})
                if self.reconnects:
                    await self._reconnect()
            elif name == "assistantSpeechGenerated":
                try:
                    playback.add(t, wav_duration(bytes(ev.get("audioData", []))))
                except (wave.Error, EOFError, ValueError):
                    r.failure = r.failure or "audioData is not a WAV file"
                r.wavs += 1
                first_audio = first_audio or t
            elif name == "error":
                r.failure = r.failure or f"error at {ev.get('stage')}: {ev.get('message')}"
            elif name == "turnMetrics":
                r.transcript_ms = ev.get("transcriptMs")
                r.first_token_ms = ev.get("firstTokenMs")
                r.first_audio_ms = ev.get("firstAudioMs")
                r.total_ms = ev.get("totalMs")
                break
        if not r.transcript and not self.typed:
            r.failure = r.failure or "no transcript (turn dropped)"
        elif first_audio is None:
            r.failure = r.failure or "no audio"
        r.max_gap_s = playback.max_gap_s
        end = self.speech_end_at
        if end is not None and speech_ends:
            r.detect_s = speech_ends[-1] - end
        if end is not None and first_audio is not None:
            r.v2v_s = first_audio - end
            if speech_ends:
                r.after_detect_s = first_audio - speech_ends[-1]


async def talk(url: str, utt: Utterance, timeout_s: float = 120.0, **kwargs: Any) -> TurnResult:
    """One turn in a fresh conversation: stream ``utt``, wait for the whole reply."""
    return await Talker(url, utt, **kwargs).run(timeout_s)
