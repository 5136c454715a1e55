"""Turn detection on a stream of PCM bytes: Silero VAD plus a small state machine.

Binary frames arrive in any length (the real client sends 1280 bytes, but
odd lengths must work too): bytes are buffered until whole 512-sample frames
exist. A turn starts after ``speech_start_ms`` of continuous speech and ends
after ``silence_end_ms`` of silence; the utterance handed to ASR includes
``pre_roll_ms`` of audio before the start, where quiet word onsets hide.
With ``pause_ms`` set, a shorter silence inside a turn is reported as PAUSE
(with the audio so far) and speech after it as RESUME: the gateway transcribes
at the PAUSE, speculatively, and keeps the result if the silence ends the turn.

:meth:`TurnDetector.feed` runs the model on the caller's thread. The gateway's
connections go through :class:`gateway.vad_batcher.VADBatcher` instead, which
runs the model for all of them in one thread and calls :meth:`TurnDetector.step`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum

import numpy as np

from services.common.audio import int16_to_float
from services.common.vad import FRAME, SAMPLE_RATE, SileroVAD, VADStream

FRAME_MS = FRAME * 1000 / SAMPLE_RATE  # 32 ms
FRAME_BYTES = FRAME * 2


class Kind(Enum):
    SPEECH_START = "speech_start"
    SPEECH_END = "speech_end"
    SUSTAINED = "sustained"  # speech went on for barge_in_ms: enough to interrupt a reply
    PAUSE = "pause"  # pause_ms of silence in a turn: it may be ending (audio: the turn so far)
    RESUME = "resume"  # speech again after a PAUSE: the turn was not ending there


@dataclass
class VADEvent:
    kind: Kind
    audio: bytes = b""  # the utterance (int16 PCM) on SPEECH_END


@dataclass
class TurnParams:
    threshold: float = 0.5
    speech_start_ms: int = 96
    silence_end_ms: int = 200
    pre_roll_ms: int = 300
    barge_in_ms: int = 300
    max_utterance_s: float = 30.0
    pause_ms: int = 0  # > 0 and < silence_end_ms: report PAUSE/RESUME (speculative ASR)


def _frames(ms: float) -> int:
    return max(1, int(round(ms / FRAME_MS)))


def to_float(pcm: bytes) -> np.ndarray:
    """int16 little-endian PCM bytes as float32 samples in [-1, 1)."""
    return int16_to_float(np.frombuffer(pcm, dtype="<i2"))


class TurnDetector:
    def __init__(self, model: SileroVAD, params: TurnParams | None = None) -> None:
        self.params = p = params or TurnParams()
        self.stream: VADStream = model.stream()
        self._pending = b""
        self._start_frames = _frames(p.speech_start_ms)
        self._end_frames = _frames(p.silence_end_ms)
        self._sustain_frames = _frames(p.barge_in_ms)
        self._max_frames = _frames(p.max_utterance_s * 1000)
        pause = _frames(p.pause_ms) if p.pause_ms > 0 else 0
        self._pause_frames = pause if pause < self._end_frames else 0
        self._paused = False  # a PAUSE was reported in this run of silence
        self._history: deque[bytes] = deque(maxlen=_frames(p.pre_roll_ms) + self._start_frames)
        self._utterance: list[bytes] = []
        self.in_speech = False
        self._speech_run = 0
        self._silence_run = 0
        self._sustained_sent = False

    def frames(self, data: bytes) -> list[bytes]:
        """Add PCM bytes; return the whole VAD frames they complete, in order."""
        self._pending += data
        usable = len(self._pending) - len(self._pending) % FRAME_BYTES
        chunk, self._pending = self._pending[:usable], self._pending[usable:]
        return [chunk[i : i + FRAME_BYTES] for i in range(0, usable, FRAME_BYTES)]

    def feed(self, data: bytes) -> list[VADEvent]:
        """Add PCM bytes; return the events they complete. The model runs here, on the
        caller's thread; :class:`VADBatcher` is the shared, batched way."""
        events: list[VADEvent] = []
        for frame in self.frames(data):
            events.extend(self.step(frame, self.stream.process(to_float(frame))))
        return events

    def step(self, frame: bytes, prob: float) -> list[VADEvent]:
        """Advance the state machine by one frame whose speech probability is known."""
        p = self.params
        speech = prob >= p.threshold
        if not self.in_speech:
            self._history.append(frame)
            self._speech_run = self._speech_run + 1 if speech else 0
            if self._speech_run >= self._start_frames:
                self.in_speech = True
                self._silence_run = 0
                self._sustained_sent = False
                self._utterance = list(self._history)
                self._history.clear()
                return [VADEvent(Kind.SPEECH_START)]
            return []
        self._utterance.append(frame)
        events = []
        if speech:
            if self._paused:
                self._paused = False
                events.append(VADEvent(Kind.RESUME))
            self._silence_run = 0
            self._speech_run += 1
            if not self._sustained_sent and self._speech_run >= self._sustain_frames:
                self._sustained_sent = True
                events.append(VADEvent(Kind.SUSTAINED))
        else:
            self._silence_run += 1
            # Speech with gaps still counts toward "sustained", but a long pause resets it.
            if self._silence_run >= self._end_frames:
                self._speech_run = 0
        if self._silence_run >= self._end_frames or len(self._utterance) >= self._max_frames:
            events.append(VADEvent(Kind.SPEECH_END, b"".join(self._utterance)))
            self.in_speech = False
            self._paused = False
            self._utterance = []
            self._speech_run = 0
        elif self._silence_run == self._pause_frames and self._pause_frames:
            # The audio so far, for a transcription that is used if this silence turns out
            # to end the turn; the frames after it are silence, which ASR does not need.
            self._paused = True
            events.append(VADEvent(Kind.PAUSE, b"".join(self._utterance)))
        return events

    def reset(self) -> None:
        """Start over; with a :class:`VADBatcher`, only while no feed of it is awaited."""
        self.stream.reset()
        self._pending = b""
        self._history.clear()
        self._utterance = []
        self.in_speech = False
        self._paused = False
        self._speech_run = self._silence_run = 0
