"""Voice-to-voice benchmark through ``/ws`` (``python -m bench gateway``; ``make bench``).

Streams real recorded speech (the JSUT clip, Japanese, and the five librivox
clips, English, sent with ``"language": "en"``) at real-time pace in 640-sample
frames through the gateway, behaving like LocalChatVRM (see
:mod:`bench.talker`), and measures per turn:

- voice to voice at the client: from sending the frame that holds the last
  speech sample to receiving the first ``assistantSpeechGenerated`` (the
  200 ms end-of-turn wait included);
- end of speech to the gateway's end-of-turn detection (``userSpeechEnd``
  received), then the gateway's ``turnMetrics`` from that detection: to the
  transcript, the first LLM token and the first WAV sent.

In one run: the streaming cascade against the sequential one (startSession
``oneWavPerTurn``: whole reply, one TTS call, one WAV) and the same clips
through ``/v1/realtime`` as an OpenAI Realtime client sends them (see
:mod:`bench.realtime_talker`), turns interleaved so machine noise hits all
alike; 1, 2, 4 and 8 sessions talking at once; the
gateway alone over instant fakes at 50 sessions; and the VAD's capacity on
one core. Writes ``bench/results/gateway.{json,md,png}`` and prints the table.

Without ``--url`` it starts the embedded ASR, LLM and TTS services and the
gateway as processes on loopback; with ``--url ws://HOST:PORT/ws`` (or
``KOE_BENCH_URL``) it uses a running stack.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import math
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import gateway_alone, report, vad_capacity
from .common import RESULTS, machine
from .realtime_talker import MODE as REALTIME
from .realtime_talker import talk_realtime
from .speech import Utterance, bench_utterances
from .stack import ServiceProcess
from .stats import pct, summarise
from .talker import TurnResult, talk


@dataclass
class Plan:
    rounds: int = 2  # passes over the 6 clips per mode: 12 turns each
    levels: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    min_turns: int = 10  # turns per concurrency level, at least
    alone_sessions: int = 50
    alone_turns: int = 6  # per session: 300 turns, so p99 is not just the slowest two
    vad_audio_s: float = 2.0
    pace: float = 1.0  # 1.0 is real time; only the harness's own test goes faster
    timeout_s: float = 180.0  # per turn: 8 sessions queue on two cores
    realtime: bool = True  # the same clips through /v1/realtime, interleaved with the modes

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            rounds=1, levels=[1, 2], min_turns=2, alone_sessions=10, alone_turns=1, vad_audio_s=0.5
        )


@contextlib.contextmanager
def real_stack() -> Iterator[str]:
    """The embedded services and the gateway as processes; yields the ``/ws`` URL."""
    services = [
        ServiceProcess("services.asr", "ASR_"),
        # greedy decoding: both modes then speak the same replies for the same clip
        ServiceProcess("services.llm", "LLM_", {"LLM_TEMPERATURE": "0"}),
        ServiceProcess("services.tts", "TTS_"),
    ]
    procs = list(services)
    try:
        for s in services:
            s.spawn()  # load the three models at once
        for s in services:
            s.wait_healthy()
        env = gateway_alone.gateway_env(*(s.url for s in services))
        gateway = ServiceProcess("gateway", "GATEWAY_", env)
        procs.append(gateway)
        gateway.start(timeout=60)
        yield gateway.url.replace("http://", "ws://") + "/ws"
    finally:
        for p in reversed(procs):
            p.stop()


def _tag(turns: list[TurnResult], config: str) -> list[dict[str, Any]]:
    return [{"config": config, **t.as_dict()} for t in turns]


async def turn(url: str, utt: Utterance, mode: str, plan: Plan) -> TurnResult:
    """One spoken turn in a fresh conversation, through ``/ws`` or ``/v1/realtime``."""
    if mode == REALTIME:
        return await talk_realtime(url, utt, plan.timeout_s, pace=plan.pace)
    one_wav = mode == "sequential"
    return await talk(url, utt, timeout_s=plan.timeout_s, one_wav=one_wav, pace=plan.pace)


async def modes(url: str, utts: list[Utterance], plan: Plan) -> dict[str, list[TurnResult]]:
    """Streaming and sequential turns through ``/ws`` (and Realtime ones), one conversation
    at a time, interleaved clip by clip in a rotating order."""
    names = ["streaming", "sequential"] + ([REALTIME] if plan.realtime else [])
    out: dict[str, list[TurnResult]] = {m: [] for m in names}
    for mode in names:  # warm-up: first calls load lazily and fill caches
        await turn(url, utts[0], mode, plan)
    for r in range(plan.rounds):
        for i, utt in enumerate(utts):
            k = (r + i) % len(names)
            for mode in names[k:] + names[:k]:
                t = await turn(url, utt, mode, plan)
                out[mode].append(t)
                print(f"  {mode:10} {t.clip:45} v2v {t.v2v_s or 0:.2f} s {t.failure or ''}")
    return out


LANGUAGES = {"ja": "Japanese", "en": "English"}


def by_language(
    by_mode: dict[str, list[TurnResult]], utts: list[Utterance]
) -> list[dict[str, Any]]:
    """The modes again, one language at a time: the clips are mostly English, and the two
    languages' replies differ (Japanese goes to Kokoro, English to the fast espeak voice)."""
    language = {u.name: u.language for u in utts}
    rows = []
    for code, name in LANGUAGES.items():
        for mode, turns in by_mode.items():
            mine = [t for t in turns if language.get(t.clip) == code]
            if mine:
                rows.append(summarise(f"{mode}, {name} only", mine, sessions=1))
    return rows


def ratio(rows: list[dict[str, Any]], language: str) -> float | None:
    """Streaming over sequential median voice to voice, for one language's rows."""
    v2v = {r["config"].split(",")[0]: r["v2v_median_s"] for r in rows if language in r["config"]}
    s, q = v2v.get("streaming"), v2v.get("sequential")
    return round(s / q, 3) if s and q else None


def by_clip(by_mode: dict[str, list[TurnResult]]) -> list[dict[str, Any]]:
    """Streaming against sequential clip by clip, with the length of the replies (the same
    clip gets much the same reply): streaming can only start sooner when a reply has more
    than its first piece, so the ratio depends on how long the replies are."""
    rows = []
    for clip in dict.fromkeys(t.clip for turns in by_mode.values() for t in turns):
        mine = {m: [t for t in ts if t.clip == clip and t.ok] for m, ts in by_mode.items()}
        s = pct((t.v2v_s for t in mine.get("streaming", [])), 50)
        q = pct((t.v2v_s for t in mine.get("sequential", [])), 50)
        replies = [t.reply for m, ts in mine.items() if m != REALTIME for t in ts]
        rows.append(
            {
                "clip": clip,
                "reply_chars": pct((len(r) for r in replies), 50),
                "pieces": pct((t.wavs for t in mine.get("streaming", [])), 50),
                "longest_pause_s": pct((t.max_gap_s for t in mine.get("streaming", [])), 50),
                "streaming_s": s,
                "sequential_s": q,
                "ratio": round(s / q, 3) if s and q else None,
                "realtime_s": pct((t.v2v_s for t in mine.get(REALTIME, [])), 50),
            }
        )
    return sorted(rows, key=lambda r: r["reply_chars"] or 0)


async def level(url: str, utts: list[Utterance], n: int, plan: Plan) -> list[TurnResult]:
    """``n`` sessions start speaking together, round after round (a different clip each)."""
    turns: list[TurnResult] = []
    for r in range(math.ceil(plan.min_turns / n)):
        batch = [
            talk(url, utts[(i + r * n) % len(utts)], plan.timeout_s, session=i, pace=plan.pace)
            for i in range(n)
        ]
        turns += await asyncio.gather(*batch)
    return turns


def run(
    plan: Plan,
    utts: list[Utterance],
    url: str | None,
    *,
    alone_url: str | None = None,
    out_dir: Path = RESULTS,
    quick: bool = False,
) -> dict[str, Any]:
    """Everything, in order of increasing cost; returns the results written to ``out_dir``."""
    res: dict[str, Any] = {
        "machine": machine(),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "quick": quick,
        "stack": url or "started by the benchmark (embedded models)",
        "plan": asdict(plan),
        "wall_s": {},
    }
    turns: list[dict[str, Any]] = []
    t0 = time.monotonic()
    print("VAD capacity on one core ...", flush=True)
    res["vad"] = vad_capacity.measure(b"".join(u.pcm for u in utts), plan.vad_audio_s)
    res["wall_s"]["vad"] = round(time.monotonic() - t0, 1)

    t0 = time.monotonic()
    print(f"gateway alone, {plan.alone_sessions} sessions over instant fakes ...", flush=True)
    with contextlib.ExitStack() as stack:
        aurl, pid, fakes_url = (
            (alone_url, None, None)
            if alone_url
            else stack.enter_context(gateway_alone.fake_stack())
        )
        rows, alone = gateway_alone.measure(
            aurl, pid, utts, plan.alone_sessions, plan.alone_turns, plan.pace
        )
        if fakes_url is not None:
            res["request_floor"] = gateway_alone.request_floor(fakes_url)
    res["gateway_alone"] = rows
    res["gateway_alone_ms"] = {
        m: [t.first_audio_ms for t in alone if t.ok and t.mode == m] for m in ("streaming", "typed")
    }
    turns += [{"config": f"gateway alone, {t.mode}", **t.as_dict()} for t in alone]
    res["wall_s"]["gateway_alone"] = round(time.monotonic() - t0, 1)

    t0 = time.monotonic()
    with contextlib.ExitStack() as stack:
        if url is None:
            print("starting the ASR, LLM and TTS services and the gateway ...", flush=True)
            url = stack.enter_context(real_stack())
        res["wall_s"]["startup"] = round(time.monotonic() - t0, 1)
        t0 = time.monotonic()
        print("streaming vs sequential ...", flush=True)
        by_mode = asyncio.run(modes(url, utts, plan))
        res["modes"] = [summarise(m, ts, sessions=1) for m, ts in by_mode.items()]
        for m, ts in by_mode.items():
            turns += _tag(ts, m)
        v2v = {r["config"]: r["v2v_median_s"] for r in res["modes"]}
        s, q = v2v["streaming"], v2v["sequential"]
        res["ratio"] = round(s / q, 3) if s and q else None
        res["by_language"] = by_language(by_mode, utts)
        res["ratio_by_language"] = {
            name: ratio(res["by_language"], name) for name in LANGUAGES.values()
        }
        res["by_clip"] = by_clip(by_mode)
        res["wall_s"]["modes"] = round(time.monotonic() - t0, 1)

        t0 = time.monotonic()
        res["sweep"] = []
        for n in plan.levels:
            if n == 1:  # one session at a time is exactly the streaming run above
                ts = by_mode["streaming"]
            else:
                print(f"{n} sessions at once ...", flush=True)
                ts = asyncio.run(level(url, utts, n, plan))
                turns += _tag(ts, f"{n} at once")
            label = "streaming" if n == 1 else f"streaming, {n} at once"
            res["sweep"].append(summarise(label, ts, sessions=n))
        res["wall_s"]["sweep"] = round(time.monotonic() - t0, 1)
    res["turns"] = turns
    paths = report.write(res, out_dir)
    print("\n" + report.markdown(res), flush=True)
    print("written: " + ", ".join(str(p) for p in paths.values()), flush=True)
    return res


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench gateway", description=__doc__)
    parser.add_argument(
        "--url",
        default=os.environ.get("KOE_BENCH_URL"),
        help="a running gateway's ws://HOST:PORT/ws (default: start the stack)",
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run (a few minutes)")
    parser.add_argument("--rounds", type=int, help="passes over the 6 clips per mode")
    parser.add_argument("--no-realtime", action="store_true", help="skip the /v1/realtime turns")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args, _ = parser.parse_known_args(argv)  # flags meant for the other suites are not ours
    plan = Plan.quick() if args.quick else Plan()
    if args.rounds:
        plan.rounds = args.rounds
    plan.realtime = not args.no_realtime
    return run(plan, bench_utterances(), args.url, out_dir=args.out, quick=args.quick)
