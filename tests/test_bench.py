"""The end-to-end benchmark's harness, run small against instant fakes so it cannot rot.

Nothing here measures anything: it proves that ``make bench`` streams speech,
follows LocalChatVRM's reconnects, reads turnMetrics, talks to /v1/realtime as
an OpenAI Realtime client does, sweeps concurrency,
loads the gateway alone, sizes the VAD and writes its JSON, table and plot.
Audio goes 8x faster than real time to keep it quick.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.fakes import FakeBehaviour, create_fake_services
from bench.gateway_bench import Plan, run
from bench.speech import Utterance, utterance
from bench.talker import Playback
from gateway.app import create_app
from gateway.settings import GatewaySettings
from services.common.vad import SileroVAD
from tests.servers import serve


@pytest.fixture(scope="module")
def urls() -> Iterator[tuple[str, str, str]]:
    """A gateway over the fakes as LocalChatVRM meets it, one tuned for the overhead
    measurement (no reconnect wait, as in bench.gateway_alone), and the fakes."""
    fake = FakeBehaviour(audio_s=0.02)
    with serve(create_fake_services(fake)) as f:
        base = {"asr_urls": [f], "llm_urls": [f], "tts_urls": [f]}
        with (
            serve(create_app(GatewaySettings(**base))) as g1,
            serve(create_app(GatewaySettings(**base, reconnect_wait_s=0))) as g2,
        ):
            yield (g1.replace("http", "ws") + "/ws", g2.replace("http", "ws") + "/ws", f)


@pytest.fixture(scope="module")
def utts(librivox_clips: list[tuple[Path, str]]) -> list[Utterance]:
    vad = SileroVAD()
    # the two shortest clips (about 3 s each)
    return [
        utterance(p, "en", vad, text)
        for p, text in librivox_clips
        if p.stem[-4:] in ("0880", "0930")
    ]


def test_speech_end_is_inside_the_clip(utts: list[Utterance]) -> None:
    for u in utts:
        # the recordings end in room tone: the last word ends before the file does
        assert 0.5 < u.speech_end_s < u.seconds
        assert u.seconds - u.speech_end_s < 0.5


def test_bench_runs_end_to_end_and_writes_its_results(
    urls: tuple[str, str, str], utts: list[Utterance], tmp_path: Path
) -> None:
    plan = Plan(
        rounds=1,
        levels=[1, 2],
        min_turns=2,
        alone_sessions=3,
        alone_turns=1,
        vad_audio_s=0.1,
        pace=8.0,
        timeout_s=20,
    )
    res = run(plan, utts, urls[0], alone_url=urls[1], out_dir=tmp_path)

    streaming, sequential, realtime = res["modes"]
    assert [r["config"] for r in res["modes"]] == ["streaming", "sequential", "realtime"]
    for row in res["modes"] + res["sweep"]:
        assert row["failed"] == 0, row["failures"]
        assert row["v2v_median_s"] > 0
        assert row["detect_median_s"] > 0
        assert row["stages_median_s"]["asr"] is not None
    assert res["ratio"] is not None
    # one row per mode and language present (these clips are English only)
    assert [r["config"] for r in res["by_language"]] == [
        "streaming, English only",
        "sequential, English only",
        "realtime, English only",
    ]
    assert [r["turns"] for r in res["by_language"]] == [len(utts)] * 3
    assert res["ratio_by_language"]["English"] is not None
    assert res["ratio_by_language"]["Japanese"] is None
    # the fakes reply "こんにちは。元気です。" to every clip: two pieces streamed, one WAV otherwise
    assert [r["clip"] for r in res["by_clip"]] == [u.name for u in utts]
    for r in res["by_clip"]:
        assert r["reply_chars"] == len("こんにちは。元気です。") and r["pieces"] == 2
        assert r["ratio"] == round(r["streaming_s"] / r["sequential_s"], 3)
        assert r["realtime_s"] > 0
    assert [r["sessions"] for r in res["sweep"]] == [1, 2]
    assert res["sweep"][1]["turns"] == 2

    turns = [t for t in res["turns"] if t["config"] in ("streaming", "sequential")]
    assert len(turns) == 2 * len(utts)
    # like LocalChatVRM: a new socket after the transcript and after the reply text
    assert all(t["reconnects"] == 2 and t["transcript"] == "テストです。" for t in turns)
    assert {t["wavs"] for t in turns if t["config"] == "sequential"} == {1}
    assert {t["wavs"] for t in turns if t["config"] == "streaming"} == {2}
    # one WAV has nothing to wait for; two may (the client's playback is modelled)
    assert {t["max_gap_s"] for t in turns if t["config"] == "sequential"} == {0.0}
    assert all(t["max_gap_s"] >= 0 for t in turns if t["config"] == "streaming")
    assert streaming["gap_median_s"] is not None and sequential["gap_p95_s"] == 0
    # Realtime turns: the same transcript, the reply's two pieces as audio deltas, and
    # their stages on the client's clock from speech_stopped, without a first token
    rt_turns = [t for t in res["turns"] if t["config"] == "realtime"]
    assert len(rt_turns) == len(utts)
    assert all(t["transcript"] == "テストです。" and t["wavs"] == 2 for t in rt_turns)
    assert all(t["reply"] == "こんにちは。元気です。" and t["max_gap_s"] >= 0 for t in rt_turns)
    assert all(0 < t["transcript_ms"] <= t["first_audio_ms"] for t in rt_turns)
    assert realtime["stages_median_s"]["llm_first_token"] is None
    assert realtime["stages_median_s"]["first_sentence_tts_send"] is not None

    speech, typed = res["gateway_alone"]
    for row in (speech, typed):
        assert row["turns"] == 3 and row["failed"] == 0, row["failures"]
        assert 0 < row["added_p50_ms"] <= row["added_p99_ms"]
        assert 0 <= row["first_token_p50_ms"] <= row["added_p50_ms"]
    # a typed turn asks the LLM after its message; a spoken one may have had its reply
    # written during the end-of-turn wait (speculative reply: 0 ms after the turn's end)
    assert typed["first_token_p50_ms"] > 0
    assert speech["config"].startswith("speech") and typed["config"].startswith("typed")
    vad = res["vad"]
    assert vad["streams_per_core"] > 0 and vad["per_model_frame_us"] > 0
    assert vad["batcher_streams_per_core"] > 0 and vad["batcher_curve"]

    saved = json.loads((tmp_path / "gateway.json").read_text())
    assert saved["ratio"] == res["ratio"]
    table = (tmp_path / "gateway.md").read_text()
    assert "Where the time goes" in table and "streaming, 2 at once" in table
    assert f"| {utts[0].name} | 11 | 2 |" in table
    assert "| realtime, English only |" in table
    # the VAD table names the path the gateway takes, and has its measurement
    gateway_vad = next(line for line in table.splitlines() if "(the gateway's)" in line)
    assert gateway_vad.startswith("| VADBatcher") and "not used" not in table
    assert f"| {vad['batcher_streams_per_core']} |" in gateway_vad
    assert (tmp_path / "gateway.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_playback_finds_the_longest_silence_between_wavs() -> None:
    p = Playback()
    p.add(10.0, 1.0)  # plays 10.0-11.0
    p.add(10.5, 1.0)  # arrived early: queued, 11.0-12.0
    p.add(12.3, 0.5)  # arrived 0.3 s after the end: 12.3-12.8
    p.add(12.9, 0.2)  # 0.1 s
    assert p.max_gap_s == pytest.approx(0.3)
    assert p.ends_at == pytest.approx(13.1)


def test_request_floor_times_both_clients(urls: tuple[str, str, str]) -> None:
    from bench.gateway_alone import request_floor
    from bench.report import markdown

    floor = request_floor(urls[2], n=3)
    for timing in (floor["back_to_back"], floor["idle_between"]):
        assert timing["httpx_ms"] > 0 and timing["bare_socket_ms"] > 0
        assert timing["gateway_client_ms"] > 0
    res = {"machine": "m", "date": "d", "quick": True, "stack": "s", "request_floor": floor}
    line = markdown(res).splitlines()[-1]
    assert (
        line.startswith("One loopback POST")
        and f"{floor['idle_between']['httpx_ms']:.2f}" in line
        and f"{floor['idle_between']['gateway_client_ms']:.2f}" in line
    )


def test_instant_fakes_answer_as_the_fastapi_fakes_do() -> None:
    """``python -m bench.fakes`` (what the gateway-alone measurement runs against) serves
    the FakeBehaviour defaults from prepared bytes: the gateway's own client reads them."""
    import asyncio
    import socket

    from bench.stack import ServiceProcess
    from gateway.clients import Upstreams

    fakes = ServiceProcess("bench.fakes", "FAKES_", {"FAKES_AUDIO_S": "0.02"}).start(timeout=60)
    try:
        url = fakes.url
        settings = GatewaySettings(asr_urls=[url], llm_urls=[url], tts_urls=[url])
        expected = FakeBehaviour()

        async def through_the_gateway_client() -> tuple[str, list[str], bytes]:
            up = Upstreams(settings)
            try:
                text = await up.transcribe(b"\0\0" * 1600, "ja")
                pieces = [p async for p in up.chat_stream([{"role": "user", "content": "x"}], 8)]
                wav = await up.synthesize("はい", None)
                return text, pieces, wav
            finally:
                await up.aclose()

        text, pieces, wav = asyncio.run(through_the_gateway_client())
        assert text == expected.transcript and pieces == expected.reply_pieces
        assert wav[:4] == b"RIFF" and len(wav) == 44 + 2 * int(0.02 * 24000)

        # a request split across packets, then two in one write, on one connection
        host, port = url.removeprefix("http://").split(":")
        body = b'{"text": "a"}'
        head = b"POST /synthesize HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n" % len(body)
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(head[:10])
            s.sendall(head[10:] + body[:3])
            s.sendall(
                body[3:] + b"GET /nope HTTP/1.1\r\nhost: x\r\n\r\nGET /health HTTP/1.1\r\n\r\n"
            )
            got = b""
            while got.count(b"HTTP/1.1 ") < 3 or not got.endswith(b'{"status": "ok"}'):
                chunk = s.recv(65536)
                assert chunk, got[-200:]
                got += chunk
        assert re.findall(rb"HTTP/1\.1 (\d{3}) ", got) == [b"200", b"404", b"200"]
    finally:
        fakes.stop()
