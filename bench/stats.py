"""Summaries of turns: percentiles, failures and where the time goes.

Percentiles interpolate linearly between the sorted samples (numpy's default),
so a p95 over 12 turns lies between the two slowest ones.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np

from .talker import TurnResult


def pct(values: Iterable[float | None], q: float, scale: float = 1.0) -> float | None:
    vals = [v * scale for v in values if v is not None]
    return round(float(np.percentile(vals, q)), 4) if vals else None


def failures(turns: list[TurnResult]) -> dict[str, int]:
    return dict(Counter(t.failure for t in turns if t.failure))


def stages(t: TurnResult) -> dict[str, float | None] | None:
    """One successful turn split into consecutive stages (seconds; they add up to v2v).

    The gateway's clock starts at its end-of-speech detection; the client sees
    that moment as ``userSpeechEnd`` arriving, a loopback hop later.
    A turn without the first token's time (a Realtime one: its client does not see it)
    has no ``llm_first_token``, and its ``first_sentence_tts_send`` starts at the
    transcript.
    """
    v2v, detect = t.v2v_s, t.detect_s
    asr_ms, token_ms, audio_ms = t.transcript_ms, t.first_token_ms, t.first_audio_ms
    if v2v is None or detect is None or asr_ms is None or audio_ms is None:
        return None
    asr, audio = asr_ms / 1000, audio_ms / 1000
    token = None if token_ms is None else token_ms / 1000
    return {
        "end_of_turn_wait": detect,  # silence_end_ms of silence, VAD frames, a hop
        "asr": asr,
        "llm_first_token": None if token is None else token - asr,
        # the rest of the first sentence, its TTS, handing over to the reconnected
        # socket and sending the WAV as JSON
        "first_sentence_tts_send": audio - (asr if token is None else token),
        "to_client": v2v - detect - audio,  # transfer + parse of the WAV frame
    }


STAGES = ["end_of_turn_wait", "asr", "llm_first_token", "first_sentence_tts_send", "to_client"]


def breakdown(turns: list[TurnResult]) -> dict[str, float | None]:
    """Median of each stage over the successful turns."""
    rows = [s for t in turns if t.ok and (s := stages(t)) is not None]
    return {k: pct((r[k] for r in rows), 50) for k in STAGES}


def summarise(label: str, turns: list[TurnResult], **extra: Any) -> dict[str, Any]:
    ok = [t for t in turns if t.ok]
    ms = 0.001

    def both(key: str, scale: float = 1.0) -> tuple[float | None, float | None]:
        vals = [getattr(t, key) for t in ok]
        return pct(vals, 50, scale), pct(vals, 95, scale)

    v2v, detect = both("v2v_s"), both("detect_s")
    transcript, token = both("transcript_ms", ms), both("first_token_ms", ms)
    audio = both("first_audio_ms", ms)
    gap = both("max_gap_s")
    return {
        "config": label,
        **extra,
        "turns": len(turns),
        "failed": len(turns) - len(ok),
        "v2v_median_s": v2v[0],
        "v2v_p95_s": v2v[1],
        "detect_median_s": detect[0],
        "detect_p95_s": detect[1],
        "transcript_median_s": transcript[0],
        "transcript_p95_s": transcript[1],
        "first_token_median_s": token[0],
        "first_token_p95_s": token[1],
        "first_audio_median_s": audio[0],
        "first_audio_p95_s": audio[1],
        "gap_median_s": gap[0],
        "gap_p95_s": gap[1],
        "failures": failures(turns),
        "stages_median_s": breakdown(turns),
    }
