"""The benchmark's utterances: recorded speech as a microphone would stream it.

Each clip becomes 16 kHz int16 PCM with a little silence before it, plus the
position where its last word ends. The recordings carry 0.14-0.28 s of room
tone after the last word: measuring from the file's end would hide most of
the 200 ms end-of-turn wait, so the end of speech is the end of the last
frame Silero VAD (the gateway's model and threshold, run offline over the
clip) calls speech. The clip's room tone stays in the stream untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from services.common.vad import FRAME, SAMPLE_RATE, SileroVAD

LEAD_S = 0.5  # silence before the clip, so the VAD has settled when speech starts
SPEECH_THRESHOLD = 0.5  # the gateway's default vad_threshold


@dataclass(frozen=True)
class Utterance:
    name: str
    language: str  # sent as the startSession "language" extension
    pcm: bytes  # 16 kHz mono int16 LE: LEAD_S of silence, then the whole clip
    speech_end_s: float  # where the last word ends, in seconds from the start of pcm
    text: str = ""  # reference transcript, for the record

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / SAMPLE_RATE


def speech_end(audio: np.ndarray, vad: SileroVAD, threshold: float = SPEECH_THRESHOLD) -> float:
    """End of the last frame the VAD calls speech, in seconds (the clip's end if none)."""
    probs = vad.speech_probs(audio)
    speech = np.flatnonzero(probs >= threshold)
    return (int(speech[-1]) + 1) * FRAME / SAMPLE_RATE if len(speech) else len(audio) / SAMPLE_RATE


def utterance(
    path: Path, language: str, vad: SileroVAD, text: str = "", lead_s: float = LEAD_S
) -> Utterance:
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = soxr.resample(audio.mean(axis=1), rate, SAMPLE_RATE).astype(np.float32)
    lead = np.zeros(int(SAMPLE_RATE * lead_s), np.float32)
    pcm = (np.clip(np.concatenate([lead, mono]), -1, 1) * 32767).astype("<i2").tobytes()
    return Utterance(path.stem, language, pcm, lead_s + speech_end(mono, vad), text)


def bench_utterances(vad: SileroVAD | None = None) -> list[Utterance]:
    """The JSUT clip (Japanese) and the five librivox clips (English)."""
    from .common import JSUT_TEXT, jsut_clip, librivox_clips

    vad = vad or SileroVAD()
    out = [utterance(jsut_clip(), "ja", vad, JSUT_TEXT)]
    out += [utterance(p, "en", vad, text) for p, text in librivox_clips()]
    return out
