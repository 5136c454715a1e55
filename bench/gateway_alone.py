"""What the gateway itself adds to a turn, with instant fake services over real HTTP.

The gateway, the fakes (:class:`bench.fakes.InstantFakes`: a bare HTTP/1.1
server answering with prepared bytes, a transcript, a two-piece reply and a
50 ms WAV) and the talkers run as three processes on loopback, so none of
them holds the others' interpreter lock. Many sessions stream real speech at
real-time pace at once; each turn's ``firstAudioMs`` (the gateway's clock,
from its end-of-speech detection to the first WAV written to the socket) is
then nothing but gateway work and the loopback HTTP calls left after the
detection (the TTS call: the transcript and the reply's text came during the
end-of-turn wait, see ``GATEWAY_SPECULATIVE_REPLY``): that is the added
latency per turn, reported as p50/p99 against the 5 ms target. The
client's view of the same span (``userSpeechEnd`` received to the first WAV
received) is reported beside it.

These talkers do not reconnect and the gateway is told not to wait for them
to (``reconnect_wait_s=0``): the wait is a policy for LocalChatVRM's
reconnects, not processing, and would otherwise add 0.5 s to a first turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

from services.common.cpuload import TICKS_PER_S, process_ticks

from .speech import Utterance
from .stack import ServiceProcess
from .stats import failures, pct
from .talker import TurnResult, talk

TARGET_P99_MS = 5.0


def gateway_env(asr: str, llm: str, tts: str, **extra: str) -> dict[str, str]:
    return {
        "GATEWAY_ASR_URLS": json.dumps([asr]),
        "GATEWAY_LLM_URLS": json.dumps([llm]),
        "GATEWAY_TTS_URLS": json.dumps([tts]),
        # every talker comes from 127.0.0.1: lift the per-client cap, keep the rest default
        "GATEWAY_MAX_SESSIONS": "1000",
        "GATEWAY_MAX_SESSIONS_PER_CLIENT": "1000",
        "GATEWAY_LOG_LEVEL": "warning",
        **extra,
    }


@contextlib.contextmanager
def fake_stack(audio_s: float = 0.05) -> Iterator[tuple[str, int, str]]:
    """The gateway over the fakes, each in its own process; yields the ``/ws`` URL, the
    gateway's process id and the fakes' base URL."""
    fakes = ServiceProcess("bench.fakes", "FAKES_", {"FAKES_AUDIO_S": str(audio_s)})
    gateway: ServiceProcess | None = None
    try:
        fakes.start(timeout=60)
        env = gateway_env(fakes.url, fakes.url, fakes.url, GATEWAY_RECONNECT_WAIT_S="0")
        gateway = ServiceProcess("gateway", "GATEWAY_", env).start(timeout=60)
        assert gateway.proc is not None
        yield gateway.url.replace("http://", "ws://") + "/ws", gateway.proc.pid, fakes.url
    finally:
        for proc in (gateway, fakes):
            if proc is not None:
                proc.stop()


async def load(
    url: str,
    utts: list[Utterance],
    sessions: int,
    turns: int,
    pace: float = 1.0,
    stagger_s: float = 0.1,
    typed: bool = False,
) -> list[TurnResult]:
    """``sessions`` talkers at once, ``turns`` turns each (a fresh conversation per turn).

    Starts are staggered, so turn ends spread out as with independent users
    instead of all landing in the same 32 ms VAD frame. ``typed``: each turn is
    a ``userMessage`` sent after as long as its clip's speech would have taken,
    so the turn rate is the same but no audio reaches the VAD.
    """

    async def session(i: int) -> list[TurnResult]:
        await asyncio.sleep(i * stagger_s / pace)
        out = []
        for k in range(turns):
            utt = utts[(i + k) % len(utts)]
            if typed:
                await asyncio.sleep(utt.speech_end_s / pace)
            text = "こんにちは" if typed else None
            t = await talk(url, utt, 60, reconnects=False, session=i, pace=pace, typed=text)
            out.append(t)
        return out

    nested = await asyncio.gather(*(session(i) for i in range(sessions)))
    return [t for ts in nested for t in ts]


def summarise(label: str, turns: list[TurnResult], sessions: int) -> dict[str, Any]:
    ok = [t for t in turns if t.ok]
    gw = [t.first_audio_ms for t in ok]
    # from userSpeechEnd received (speech) or userMessage sent (typed) to the first WAV
    client = [t.after_detect_s if t.after_detect_s is not None else t.v2v_s for t in ok]
    p99 = pct(gw, 99)
    return {
        "config": label,
        "sessions": sessions,
        "turns": len(turns),
        "failed": len(turns) - len(ok),
        "added_p50_ms": pct(gw, 50),
        "added_p99_ms": p99,
        "added_max_ms": pct(gw, 100),
        # from the same start to the LLM's first piece of text (the transcript included)
        "first_token_p50_ms": pct((t.first_token_ms for t in ok), 50),
        "client_p50_ms": pct(client, 50, 1000),
        "client_p99_ms": pct(client, 99, 1000),
        "target_p99_ms": TARGET_P99_MS,
        "met": p99 is not None and p99 <= TARGET_P99_MS,
        "failures": failures(turns),
    }


async def _request_times(base_url: str, n: int, gap_s: float) -> dict[str, float | None]:
    """The same small POST to the fakes' /synthesize through an httpx client with its own
    transport, the way the gateway sends a turn's calls (:class:`gateway.transport.Sender`
    over its lean transport) and over a bare socket; median ms of each, ``gap_s`` apart."""
    import httpx

    from gateway.clients import JSON, Stage
    from gateway.transport import Sender

    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    body = json.dumps({"text": "はい", "format": "wav"}).encode()
    headers = {"content-type": JSON}
    raw = (
        f"POST /synthesize HTTP/1.1\r\nhost: {host}\r\ncontent-type: {JSON}"
        f"\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode() + body
    stage = Stage("tts", [base_url], None, 30.0)
    sender = Sender.for_services(True, httpx.Limits())
    times: dict[str, list[float]] = {"httpx_ms": [], "gateway_client_ms": [], "bare_socket_ms": []}
    async with httpx.AsyncClient() as default:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for _ in range(n):
                t0 = time.perf_counter()
                r = await default.post(base_url + "/synthesize", content=body, headers=headers)
                r.raise_for_status()
                times["httpx_ms"].append(1000 * (time.perf_counter() - t0))
                await asyncio.sleep(gap_s)
                t0 = time.perf_counter()
                r = await sender.send(stage.request(base_url + "/synthesize", body, JSON))
                await r.aread()
                assert r.status_code == 200, r.status_code
                times["gateway_client_ms"].append(1000 * (time.perf_counter() - t0))
                await asyncio.sleep(gap_s)
                t0 = time.perf_counter()
                writer.write(raw)
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                times["bare_socket_ms"].append(1000 * (time.perf_counter() - t0))
                await asyncio.sleep(gap_s)
        finally:
            writer.close()
            await sender.aclose()
    return {name: pct(values, 50) for name, values in times.items()}


def request_floor(base_url: str, n: int = 20) -> dict[str, Any]:
    """What one loopback request to the fakes costs on this machine, outside the gateway:
    back to back, and 0.2 s apart (as a turn's calls come, between stretches of idling,
    when caches have gone cold). A turn makes two after its transcript (LLM, TTS), so
    twice the gateway client's figure is a floor under the gateway's added latency."""
    return {
        "back_to_back": asyncio.run(_request_times(base_url, n, 0.0)),
        "idle_between": asyncio.run(_request_times(base_url, n, 0.2)),
    }


def cpu_seconds(pid: int | None) -> float | None:
    """CPU time a process has used so far (Linux /proc; None where unknown)."""
    ticks = None if pid is None else process_ticks(pid)
    return None if ticks is None else ticks / TICKS_PER_S


def measure(
    url: str, pid: int | None, utts: list[Utterance], sessions: int, turns: int, pace: float = 1.0
) -> tuple[list[dict[str, Any]], list[TurnResult]]:
    """Speech turns, then typed turns at the same rate: the difference is what the audio
    streams (VAD, frame handling) cost the turns. Also the gateway's CPU use meanwhile."""
    # Warm-up, not counted: the first turns open the gateway's upstream connections and
    # its WAV-rendering thread pool.
    asyncio.run(load(url, utts, sessions, 1, pace * 4, stagger_s=0.02))
    rows, all_turns = [], []
    for typed in (False, True):
        label = "typed, no audio" if typed else "speech, streaming audio"
        cpu0, t0 = cpu_seconds(pid), time.perf_counter()
        got = asyncio.run(load(url, utts, sessions, turns, pace, typed=typed))
        cpu1, wall = cpu_seconds(pid), time.perf_counter() - t0
        row = summarise(label, got, sessions)
        busy = None if cpu0 is None or cpu1 is None else round(100 * (cpu1 - cpu0) / wall)
        row["gateway_cpu_pct"] = busy  # of one core, over the whole load
        rows.append(row)
        all_turns += got
    return rows, all_turns
