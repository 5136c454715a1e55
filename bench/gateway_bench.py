"""Voice-to-voice benchmark through ``/ws`` on the embedded models.

Starts ASR, LLM and TTS as processes and the gateway in-process, then streams
real recorded speech at real-time pace in 640-sample frames, as LocalChatVRM
does. Voice-to-voice latency is measured by the client: from the moment the
last sample of speech was sent (the end of the user's speech in the stream,
the 200 ms end-of-turn wait included) to the first ``assistantSpeechGenerated``
received. The same turns run in the streaming mode (a WAV per sentence) and in
the sequential one-WAV-per-turn mode.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from gateway.app import create_app
from gateway.settings import GatewaySettings

from .common import jsut_clip, librivox_clips, print_table, save_results
from .stack import ServiceProcess
from .wsclient import WSClient

LEAD_S, TAIL_S = 0.5, 1.0


def load_pcm(path: Path) -> tuple[bytes, float]:
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = soxr.resample(audio.mean(axis=1), rate, 16000)
    lead, tail = np.zeros(int(16000 * LEAD_S)), np.zeros(int(16000 * TAIL_S))
    pcm = (np.concatenate([lead, mono, tail]) * 32767).astype("<i2").tobytes()
    return pcm, len(mono) / 16000


def one_turn(url: str, pcm: bytes, speech_s: float, language: str, one_wav: bool) -> dict:
    c = WSClient(url)
    try:
        c.start(oneWavPerTurn=one_wav, language=language)
        t0 = time.monotonic()
        c.stream(pcm, realtime=True)
        speech_end = t0 + LEAD_S + speech_s
        events = c.until("turnMetrics", timeout=120)
        first_audio = next(
            (t for t, e in c.received if e["event"] == "assistantSpeechGenerated"), None
        )
        transcript = next((e for e in events if e["event"] == "userSpeechTranscript"), {})
        metrics = events[-1]
        return {
            "v2v_s": None if first_audio is None else first_audio - speech_end,
            "transcript_ms": metrics.get("transcriptMs"),
            "first_token_ms": metrics.get("firstTokenMs"),
            "first_audio_ms": metrics.get("firstAudioMs"),
            "text": transcript.get("transcript", ""),
        }
    finally:
        c.close()


def summarise(mode: str, turns: list[dict]) -> dict:
    def stat(key: str, scale: float = 1.0) -> tuple[float | None, float | None]:
        vals = sorted(t[key] * scale for t in turns if t[key] is not None)
        if not vals:
            return None, None
        p95 = vals[min(len(vals) - 1, int(round(0.95 * (len(vals) - 1))))]
        return round(statistics.median(vals), 3), round(p95, 3)

    v2v = stat("v2v_s")
    return {
        "mode": mode,
        "turns": len(turns),
        "v2v_median_s": v2v[0],
        "v2v_p95_s": v2v[1],
        "to_transcript_median_s": stat("transcript_ms", 0.001)[0],
        "to_first_token_median_s": stat("first_token_ms", 0.001)[0],
        "to_first_audio_median_s": stat("first_audio_ms", 0.001)[0],
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m bench gateway", description=__doc__)
    parser.add_argument("--rounds", type=int, default=1, help="passes over the 6 clips per mode")
    args = parser.parse_args(argv)
    clips = [(jsut_clip(), "ja")] + [(p, "en") for p, _ in librivox_clips()]
    pcms = [(load_pcm(p), lang) for p, lang in clips]
    services = [
        ServiceProcess("services.asr", "ASR_"),
        ServiceProcess("services.llm", "LLM_"),
        ServiceProcess("services.tts", "TTS_"),
    ]
    rows = []
    try:
        for s in services:
            s.start()
        settings = GatewaySettings(
            asr_urls=[services[0].url], llm_urls=[services[1].url], tts_urls=[services[2].url]
        )
        from tests.servers import serve

        with serve(create_app(settings)) as http:
            url = http.replace("http://", "ws://") + "/ws"
            one_turn(url, *pcms[0][0], "ja", False)  # warm-up
            for mode, one_wav in (("streaming", False), ("one WAV per turn", True)):
                turns = [
                    one_turn(url, pcm, speech_s, lang, one_wav)
                    for _ in range(args.rounds)
                    for (pcm, speech_s), lang in pcms
                ]
                rows.append(summarise(mode, turns))
    finally:
        for s in services:
            s.stop()
    if len(rows) == 2 and rows[0]["v2v_median_s"] and rows[1]["v2v_median_s"]:
        ratio = rows[0]["v2v_median_s"] / rows[1]["v2v_median_s"]
        for r in rows:
            r["streaming_to_sequential_v2v"] = round(ratio, 2)
    print_table("Voice to voice through /ws (embedded models)", rows)
    save_results("gateway", rows)
    return rows
