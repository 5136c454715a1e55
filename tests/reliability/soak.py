"""A bounded soak: N sessions speak real speech to the gateway, turn after turn, for M minutes.

``python -m tests.reliability.soak --sessions 16 --minutes 10`` (add ``--real`` for the
embedded models instead of the fake services). Loopback only; it stops by itself.
Each session reconnects for every turn with its whole history, as LocalChatVRM
does, and checks that every turn brings all its events. The gateway's memory
(RSS) and asyncio task count are sampled throughout; the run fails on a crashed
session, a lost reply, or memory or tasks that keep growing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.stack import ServiceProcess
from bench.wsclient import WSClient, speech_pcm
from services.common.settings import default_cache_dir
from tests.reliability.harness import FakeServices, GatewayProcess

TURN_EVENTS = {
    "userSpeechStart",
    "userSpeechEnd",
    "userSpeechTranscript",
    "assistantMessageGenerated",
    "assistantSpeechGenerated",
    "turnMetrics",
}
_LOCK = threading.Lock()  # the sessions' threads share one result
TASKS_PER_SESSION = 10  # socket, writer, ping, a turn's producer/deliverer/TTS, threads' futures


@dataclass
class SoakResult:
    sessions: int
    seconds: float
    turns: int = 0
    failures: list[str] = field(default_factory=list)
    first_audio_s: list[float] = field(default_factory=list)
    samples: list[tuple[float, float, int]] = field(default_factory=list)  # (t, RSS MB, tasks)
    idle_tasks_before: int = 0
    idle_tasks_after: int = 0

    def _window(self, start: float, end: float) -> list[tuple[float, float, int]]:
        t0, t1 = self.samples[0][0], self.samples[-1][0]
        span = t1 - t0
        return [s for s in self.samples if t0 + start * span <= s[0] <= t0 + end * span]

    @property
    def rss_early_mb(self) -> float:
        """Median RSS over the second tenth to the third of the run (after warm-up)."""
        return statistics.median(s[1] for s in self._window(0.1, 0.33))

    @property
    def rss_late_mb(self) -> float:
        return statistics.median(s[1] for s in self._window(0.67, 1.0))

    @property
    def max_tasks(self) -> int:
        return max(s[2] for s in self.samples)

    def report(self) -> str:
        audio = sorted(self.first_audio_s)
        p50 = statistics.median(audio) if audio else float("nan")
        p95 = audio[int(0.95 * (len(audio) - 1))] if audio else float("nan")
        return (
            f"soak: {self.sessions} sessions for {self.seconds:.0f} s: {self.turns} turns, "
            f"{len(self.failures)} failures; first audio after end of speech p50 {p50:.2f} s "
            f"p95 {p95:.2f} s; gateway RSS {self.rss_early_mb:.1f} MB early -> "
            f"{self.rss_late_mb:.1f} MB late (max {max(s[1] for s in self.samples):.1f}); "
            f"tasks idle {self.idle_tasks_before} -> max {self.max_tasks} -> idle "
            f"{self.idle_tasks_after}"
        )


def _session(i: int, url: str, pcm: bytes, deadline: float, result: SoakResult) -> None:
    history: list[dict[str, str]] = []
    time.sleep(i * 0.25)  # not all at once: staggered like real users
    while time.monotonic() < deadline:
        try:
            c = WSClient(url)
            try:
                c.start(history[-20:], systemPrompt=f"{i}番のセッション")
                c.stream(pcm, realtime=True)
                got = c.until("turnMetrics", timeout=90)
            finally:
                c.close()
        except Exception as exc:  # a crash or a hang is what the soak looks for
            with _LOCK:
                result.failures.append(f"session {i}: {exc.__class__.__name__}: {exc}")
            return
        events = [e["event"] for e in got]
        if not TURN_EVENTS <= set(events) or "error" in events:
            with _LOCK:
                result.failures.append(f"session {i}: turn {len(history) // 2}: {events}")
            return
        metrics = got[-1]  # measured by the gateway from the end of speech
        transcript = next(e for e in got if e["event"] == "userSpeechTranscript")["transcript"]
        reply = next(e for e in got if e["event"] == "assistantMessageGenerated")
        history += [
            {"role": "user", "content": transcript},
            {"role": "assistant", "content": reply["generatedMessageContent"]},
        ]
        with _LOCK:
            result.turns += 1
            result.first_audio_s.append(metrics["firstAudioMs"] / 1000)


def _idle_tasks(gw: GatewayProcess, timeout: float = 30) -> int:
    """The task count once no turn is live any more (or whatever it is at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        tasks, live = gw.tasks(), gw.health()["gateway"]["live_turns"]
        if live == 0 or time.monotonic() > deadline:
            return tasks
        time.sleep(0.2)


def run_soak(
    sessions: int, seconds: float, clip: Path, real: bool = False, sample_s: float = 2.0
) -> SoakResult:
    if real:
        services = [
            ServiceProcess("services.asr", "ASR_"),
            ServiceProcess("services.llm", "LLM_", {"LLM_TEMPERATURE": "0"}),
            ServiceProcess("services.tts", "TTS_"),
        ]
    else:
        # Replies signed per session: with one fixed transcript and reply for all, a session's
        # reconnect would match (and adopt) another session's turn (see the report).
        fakes = FakeServices(sign_replies=True, audio_s=0.5, token_delay_s=0.05, asr_delay_s=0.1)
        services = [fakes] * 3
    distinct = list(dict.fromkeys(services))
    gw: GatewayProcess | None = None
    try:
        for s in distinct:
            s.spawn()
        for s in distinct:
            s.wait_healthy(900)
        gw = GatewayProcess(
            asr_urls=[services[0].url],
            llm_urls=[services[1].url],
            tts_urls=[services[2].url],
            max_sessions_per_client=2 * sessions + 4,  # a closing socket may still count
            log_level="warning",
        )
        gw.start(120)
        result = SoakResult(sessions, seconds, idle_tasks_before=gw.tasks())
        pcm = speech_pcm(clip)
        deadline = time.monotonic() + seconds
        threads = [
            threading.Thread(target=_session, args=(i, gw.ws_url, pcm, deadline, result))
            for i in range(sessions)
        ]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            result.samples.append((time.monotonic(), gw.rss_mb(), gw.tasks()))
            time.sleep(sample_s)
        for t in threads:
            t.join()
        result.idle_tasks_after = _idle_tasks(gw)
        if not gw.alive():
            result.failures.append("the gateway process died")
        return result
    finally:
        if gw is not None:
            gw.stop()
        for s in distinct:
            s.stop()


def check(result: SoakResult, max_growth_mb: float) -> list[str]:
    """What is wrong with a soak's figures (nothing: an empty list)."""
    problems = list(result.failures)
    if result.turns < result.sessions:
        problems.append(f"only {result.turns} turns for {result.sessions} sessions")
    growth = result.rss_late_mb - result.rss_early_mb
    if growth > max_growth_mb:
        problems.append(f"gateway RSS grew {growth:.1f} MB (limit {max_growth_mb})")
    if result.max_tasks > result.idle_tasks_before + TASKS_PER_SESSION * result.sessions:
        problems.append(f"{result.max_tasks} tasks for {result.sessions} sessions")
    if result.idle_tasks_after > result.idle_tasks_before + 2:
        problems.append(
            f"tasks left behind: {result.idle_tasks_before} before, {result.idle_tasks_after} after"
        )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.soak", description=__doc__)
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--real", action="store_true", help="the embedded models, not fakes")
    parser.add_argument(
        "--clip",
        type=Path,
        default=default_cache_dir() / "testdata" / "BASIC5000_0001.wav",
        help="speech to send (default: the JSUT clip `make test` fetches into the cache)",
    )
    parser.add_argument("--max-growth-mb", type=float, default=50)
    args = parser.parse_args(argv)
    if not args.clip.exists():
        parser.error(f"{args.clip} is missing: run the test suite once, or pass --clip")
    result = run_soak(args.sessions, args.minutes * 60, args.clip, args.real)
    print(result.report())
    problems = check(result, args.max_growth_mb)
    for p in problems:
        print("FAIL:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
