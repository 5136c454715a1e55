"""The end-to-end benchmark's outputs: a JSON file, a markdown table and a PNG plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .stats import STAGES

STAGE_NAMES = {
    "end_of_turn_wait": "end-of-turn wait",
    "asr": "ASR",
    "llm_first_token": "LLM first token",
    "first_sentence_tts_send": "to first WAV sent",
    "to_client": "WAV to client",
}

# The VAD paths bench.vad_capacity measures: name, what it is, and its result keys
# (streams per core, the CPU time measured at that many, the fitted curve).
VAD_PATHS = [
    (
        "TurnDetector.feed per stream",
        "one model call per frame on the caller's thread; the tests use it",
        ("streams_per_core", "check_at_streams_per_core", "curve"),
    ),
    (
        "VADBatcher (the gateway's)",
        "used by /ws and /v1/realtime; a worker thread batches all streams' frames",
        ("batcher_streams_per_core", "batcher_check", "batcher_curve"),
    ),
    (
        "run_batch alone",
        "all streams' frames in one call per 32 ms; no detector or thread (a floor)",
        ("batched_streams_per_core", "batched_check", "batched_curve"),
    ),
]


def _s(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pair(row: dict[str, Any], key: str) -> str:
    return f"{_s(row.get(key + '_median_s'))} / {_s(row.get(key + '_p95_s'))}"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def _cascade(res: dict[str, Any]) -> list[dict[str, Any]]:
    # The sweep's one-session level is the streaming mode's own turns: listed once.
    modes = res.get("modes", []) + res.get("by_language", [])
    return modes + [r for r in res.get("sweep", []) if r["sessions"] > 1]


def markdown(res: dict[str, Any]) -> str:
    out = [f"## Voice-to-voice benchmark ({res['machine']})", ""]
    out.append(f"{res['date']}; {'quick run; ' if res['quick'] else ''}stack: {res['stack']}.")
    cascade = _cascade(res)
    if res.get("modes"):
        out += ["", "### Through /ws and /v1/realtime, real services (seconds, median / p95)", ""]
        head = ["config", "turns", "failed", "voice to voice", "end-of-turn detected"]
        head += ["transcript", "first LLM token", "first WAV sent", "longest pause"]
        rows = [
            [r["config"], str(r["turns"]), str(r["failed"]), _pair(r, "v2v"), _pair(r, "detect")]
            + [_pair(r, k) for k in ("transcript", "first_token", "first_audio", "gap")]
            for r in cascade
        ]
        out += _table(head, rows)
        out += [
            "",
            "Voice to voice: from the moment the frame holding the last speech sample was sent "
            "to the first assistantSpeechGenerated received (the 200 ms end-of-turn wait "
            "included). End-of-turn detected: the same start to userSpeechEnd received. "
            "Transcript, first token, first WAV sent: the gateway's turnMetrics, from its "
            "end-of-speech detection. Longest pause: the longest silence between two WAVs of "
            "the reply at the client, which plays each as soon as it has arrived and the one "
            "before has ended (0 for a reply in one WAV): the cost of starting the voice "
            "before the reply is written. Realtime rows: the same clips through /v1/realtime "
            "(24 kHz PCM16 in 40 ms input_audio_buffer.append events, server VAD), from the "
            "last speech sample sent to the first response.output_audio.delta received; the "
            "Realtime API has no turnMetrics, so their middle columns are the client's clock "
            "from input_audio_buffer.speech_stopped received, and the first LLM token is not "
            "seen (its transcript deltas go out with the audio).",
            "",
            f"**Streaming / sequential median voice to voice: {_s(res.get('ratio'))}** "
            "(target <= 0.5); "
            + "; ".join(f"{k} only: {_s(v)}" for k, v in res.get("ratio_by_language", {}).items())
            + ".",
        ]
        if res.get("by_clip"):
            out += ["", "By clip, shortest replies first (medians):", ""]
            head = ["clip", "reply chars", "streaming WAVs", "longest pause", "streaming"]
            head += ["sequential", "ratio", "realtime"]
            rows = [
                [r["clip"], _s(r["reply_chars"], 0), _s(r["pieces"], 0)]
                + [_s(r.get(k)) for k in ("longest_pause_s", "streaming_s", "sequential_s")]
                + [_s(r["ratio"]), _s(r.get("realtime_s"))]
                for r in res["by_clip"]
            ]
            out += _table(head, rows)
        out += ["", "### Where the time goes (medians, seconds; they add up to about v2v)", ""]
        head = ["config"] + [STAGE_NAMES[k] for k in STAGES] + ["voice to voice"]
        rows = [
            [r["config"]] + [_s(r["stages_median_s"][k]) for k in STAGES] + [_s(r["v2v_median_s"])]
            for r in cascade
        ]
        out += _table(head, rows)
        failed = {r["config"]: r["failures"] for r in cascade if r["failures"]}
        if failed:
            out += ["", "Failures: " + json.dumps(failed, ensure_ascii=False)]
    if alone := res.get("gateway_alone"):
        out += ["", "### The gateway alone, instant fake services over loopback HTTP (ms)", ""]
        head = ["kind", "sessions", "turns", "failed", "added p50", "added p99 (target <= 5)"]
        head += ["max", "client view p50 / p99", "gateway CPU (% of a core)"]
        rows = [
            [a["config"], str(a["sessions"]), str(a["turns"]), str(a["failed"])]
            + [_s(a["added_p50_ms"], 1)]
            + [f"{_s(a['added_p99_ms'], 1)} ({'met' if a['met'] else 'NOT met'})"]
            + [_s(a["added_max_ms"], 1)]
            + [f"{_s(a['client_p50_ms'], 1)} / {_s(a['client_p99_ms'], 1)}"]
            + [str(a.get("gateway_cpu_pct", "-"))]
            for a in alone
        ]
        out += _table(head, rows)
        out += [
            "",
            "Added: the gateway's firstAudioMs with instant fakes, from its end-of-speech "
            "detection (or the typed message) to the first WAV written: the calls to the "
            "fakes over loopback HTTP still to make, splitting, the WAV as JSON, and waiting "
            "for the event loop. A spoken turn's transcript is asked for at a 64 ms pause, "
            "and with instant fakes its reply is written, and (the fake voice being fast) "
            "synthesized, during the rest of the wait (speculative reply and TTS): only "
            "sending it is left after the detection. A typed "
            "turn makes both the LLM and the TTS call after its message. "
            "Client view: userSpeechEnd received (or userMessage sent) to that WAV "
            "received. Typed turns come at the same rate as the speech turns but send no "
            "audio: the difference is what the audio streams cost the turns.",
        ]
        first_token = ", ".join(
            f"{a['config']} {_s(a.get('first_token_p50_ms'), 1)}" for a in alone
        )
        out += ["", f"Of the added time, up to the LLM's first token (median ms): {first_token}."]
    if floor := res.get("request_floor"):
        busy, idle = floor["back_to_back"], floor["idle_between"]
        out += [
            "",
            "One loopback POST to the fakes from outside the gateway, median ms, back to back "
            f"/ 0.2 s apart: through httpx's own transport {_s(busy['httpx_ms'])} / "
            f"{_s(idle['httpx_ms'])}, as the gateway sends a turn's calls (straight into its lean "
            f"transport) {_s(busy.get('gateway_client_ms'))} / "
            f"{_s(idle.get('gateway_client_ms'))}, over a bare socket "
            f"{_s(busy['bare_socket_ms'])} / {_s(idle['bare_socket_ms'])}. "
            "A typed turn makes two such calls after its message (LLM, TTS), a spoken one "
            "whose reply was written and synthesized during the end-of-turn wait none.",
        ]
    if vad := res.get("vad"):
        out += ["", "### VAD on one core (onnxruntime, 1 thread; CPU time)", ""]
        head = ["path", "per 512-sample frame (us)", "per 1280-byte frame (us)"]
        head += [
            "real-time streams per core (target >= 100)",
            "check: CPU s per s of audio at that N",
        ]
        frame_us = {  # measured for these two only
            "curve": (vad["per_model_frame_us"], vad["per_client_frame_us"]),
            "batched_curve": (vad["batched_per_model_frame_us"], None),
        }
        rows = []
        for name, what, (streams, check, curve) in VAD_PATHS:
            model_us, client_us = frame_us.get(curve, (None, None))
            rows.append(
                [f"{name}: {what}", _s(model_us, 0), _s(client_us, 0)]
                + [str(vad.get(streams, "-")), _s(vad.get(check))]
            )
        out += _table(head, rows)
        out += [
            "",
            "Streams per core: where a line fitted to the measured CPU time per second of "
            "audio crosses one second; the last column is that many streams measured again. "
            "The VADBatcher's time counts both threads, the event loop's and the worker's. "
            "run_batch's frame cost is the fitted cost of one more stream's frame in a batch.",
        ]
    return "\n".join(out) + "\n"


def plot(res: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on a server; must precede pyplot
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    ax = axes[0][0]
    cascade = _cascade(res)
    left = [0.0] * len(cascade)
    for k in STAGES:
        vals = [r["stages_median_s"][k] or 0.0 for r in cascade]
        ax.barh([r["config"] for r in cascade], vals, left=left, label=STAGE_NAMES[k])
        left = [a + b for a, b in zip(left, vals, strict=True)]
    ax.invert_yaxis()
    ax.set(title="Where the time goes (medians)", xlabel="seconds after the end of speech")
    ax.legend(fontsize=7)

    ax = axes[0][1]
    sweep = [r for r in res.get("sweep", []) if r["v2v_median_s"] is not None]
    if sweep:
        n = [r["sessions"] for r in sweep]
        ax.plot(n, [r["v2v_median_s"] for r in sweep], "o-", label="median")
        ax.plot(n, [r["v2v_p95_s"] for r in sweep], "s--", label="p95")
        ax.set_xscale("log", base=2)
        ax.set_xticks(n, [str(x) for x in n])
        ax.legend()
    ax.set(title="Voice to voice vs sessions talking at once", xlabel="sessions", ylabel="s")

    ax = axes[1][0]
    for mode, added in res.get("gateway_alone_ms", {}).items():
        added = sorted(added)
        if added:
            cdf = [(i + 1) / len(added) for i in range(len(added))]
            ax.plot(added, cdf, label="speech" if mode == "streaming" else mode)
    ax.axvline(5.0, color="red", linestyle=":", label="5 ms target")
    ax.axhline(0.99, color="grey", linestyle=":", label="p99")
    ax.set_xscale("log")
    ax.legend()
    sessions = (res.get("gateway_alone") or [{}])[0].get("sessions", "?")
    ax.set(title=f"Gateway added latency, {sessions} sessions", xlabel="ms", ylabel="CDF")

    ax = axes[1][1]
    if vad := res.get("vad"):
        for name, _, (_, _, curve) in VAD_PATHS:
            pts = sorted((int(k), v) for k, v in vad.get(curve, {}).items())
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=name)
        ax.axhline(1.0, color="red", linestyle=":", label="real time")
        ax.legend()
    ax.set(title="VAD on one core", xlabel="streams", ylabel="CPU s per s of audio")

    fig.suptitle(res["machine"], fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(res: dict[str, Any], folder: Path, name: str = "gateway") -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {ext: folder / f"{name}.{ext}" for ext in ("json", "md", "png")}
    paths["json"].write_text(json.dumps(res, indent=2, ensure_ascii=False))
    paths["md"].write_text(markdown(res))
    plot(res, paths["png"])
    return paths
