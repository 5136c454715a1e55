"""``/v1/realtime``'s server VAD transcribes at a pause in the speech, and starts the
reply held on that transcription, as ``/ws`` does.

As in test_speculative_asr: the VAD is deterministic, so the audio the ASR got
tells which transcription a turn used: the one started at the pause (64 ms of
silence) is four 32 ms frames shorter than the one at the turn's end (200 ms).
As in test_speculative_reply: the gateway's own clock (its /metrics) tells that
the held reply's LLM had answered before the speech's end, and its audio came after.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from bench.fakes import FakeBehaviour
from gateway.vad import FRAME_BYTES
from tests.gateway.test_realtime import Session, speech_b64, types
from tests.gateway.test_speculative_asr import counted, gap_clip, gateway_app
from tests.servers import serve

CHUNK_MS = 100


@pytest.fixture
def fake() -> FakeBehaviour:
    return FakeBehaviour(asr_delay_s=0.05)


def realtime_turn(
    fake_url: str,
    clip: Path,
    speculative_asr_ms: int,
    *,
    paced: bool = False,
    turn_detection: dict[str, Any] | None = None,
    until: str = "response.done",
    **settings: Any,
) -> tuple[list[dict[str, Any]], str]:
    """``clip`` spoken into a new realtime session (``paced``: at real-time pace), with
    server VAD (``turn_detection``: fields over the default); its events up to ``until``
    and the gateway's /metrics after it (``settings``: the gateway's)."""
    with serve(gateway_app(fake_url, speculative_asr_ms, **settings)) as url:
        ws_url = url.replace("http://", "ws://") + "/v1"
        client = OpenAI(api_key="unused", base_url=url + "/v1", websocket_base_url=ws_url)
        with client.realtime.connect(model="koe") as conn:
            rt = Session(conn)
            rt.until("session.created")
            if turn_detection is not None:
                detection = {"type": "server_vad", **turn_detection}
                audio = {"input": {"turn_detection": detection}}
                rt.send({"type": "session.update", "session": {"audio": audio}})
                rt.until("session.updated")
            for chunk in speech_b64(clip, chunk_ms=CHUNK_MS):
                rt.send({"type": "input_audio_buffer.append", "audio": chunk})
                if paced:
                    time.sleep(CHUNK_MS / 1000)
            got = rt.until(until)
        metrics = httpx.get(url + "/metrics").text
    return got, metrics


def transcripts(events: list[dict[str, Any]]) -> list[str]:
    done = "conversation.item.input_audio_transcription.completed"
    return [e["transcript"] for e in events if e["type"] == done]


def test_a_response_uses_the_transcription_started_at_the_pause(
    fake_url: str, fake: FakeBehaviour, jsut_wav: Path
) -> None:
    got, metrics = realtime_turn(fake_url, jsut_wav, speculative_asr_ms=0)
    assert transcripts(got) == [fake.transcript]
    whole = fake.asr_bytes[-1]
    assert counted(metrics, "used") == 0
    fake.asr_bytes.clear()

    got, metrics = realtime_turn(fake_url, jsut_wav, speculative_asr_ms=64)
    assert types(got)[:2] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
    ]
    assert transcripts(got) == [fake.transcript]
    assert got[-1]["response"]["status"] == "completed"
    assert counted(metrics, "used") == 1
    # the transcription the response used is the one of the audio up to the pause
    assert fake.asr_bytes[-1] == whole - 4 * FRAME_BYTES
    assert counted(metrics, "dropped") == len(fake.asr_bytes) - 1


def test_committed_audio_without_a_response_uses_it_too(
    fake_url: str, fake: FakeBehaviour, jsut_wav: Path
) -> None:
    """create_response off: the committed item is transcribed on its own, from the pause."""
    got, metrics = realtime_turn(
        fake_url,
        jsut_wav,
        speculative_asr_ms=64,
        turn_detection={"create_response": False},
        until="conversation.item.input_audio_transcription.completed",
    )
    assert "response.created" not in types(got)
    assert transcripts(got) == [fake.transcript]
    assert counted(metrics, "used") == 1
    assert fake.asr_calls == 1 + counted(metrics, "dropped")


def test_speech_after_the_pause_drops_the_speculation(
    fake_url: str, fake: FakeBehaviour, jsut_wav: Path, tmp_path: Path
) -> None:
    clip, before_second_half = gap_clip(jsut_wav, tmp_path)
    got, metrics = realtime_turn(fake_url, clip, speculative_asr_ms=64, paced=True)
    assert types(got).count("input_audio_buffer.speech_stopped") == 1
    assert transcripts(got) == [fake.transcript]
    assert counted(metrics, "dropped") >= 1 and counted(metrics, "used") == 1
    # the transcription used holds both halves: at least the gap and the speech after it
    assert fake.asr_bytes[-1] > before_second_half * 2


def test_speech_cut_at_the_length_limit_after_a_pause_is_transcribed_whole(
    fake_url: str, fake: FakeBehaviour, jsut_wav: Path, tmp_path: Path
) -> None:
    """Speech resumed after the pause, then reached max_utterance_s, which ends it without
    a pause: the transcription of the speech up to the pause would miss what came after."""
    clip, before_second_half = gap_clip(jsut_wav, tmp_path)
    _, metrics = realtime_turn(
        fake_url, clip, speculative_asr_ms=64, paced=True, max_utterance_s=2.0
    )
    # The clip's speech was two utterances: cut at 2 s, then the rest up to the silence.
    # Only the second ended with a pause; the first's pause came before speech resumed.
    assert counted(metrics, "dropped") == 1 and counted(metrics, "used") == 1
    # the first was transcribed anew at the cut, past the gap: 2 s of audio, not the half
    assert fake.asr_calls == 3
    assert fake.asr_bytes[1] > before_second_half * 2


def latency(metrics: str, milestone: str) -> float:
    """The sum of the turns' seconds to ``milestone`` (from the end of the speech)."""
    m = re.search(rf'koe_turn_latency_seconds_sum{{milestone="{milestone}"}} (\S+)', metrics)
    assert m, milestone
    return float(m.group(1))


def usage_seconds(events: list[dict]) -> list[float]:
    """The seconds of input audio each user transcript says it used."""
    done = "conversation.item.input_audio_transcription.completed"
    return [e["usage"]["seconds"] for e in events if e["type"] == done]


def reply_turn(fake_url: str, clip: Path, speculative_reply: bool) -> tuple[list[dict], str]:
    """A spoken turn at the client's pace; its events and the gateway's /metrics after it."""
    with serve(gateway_app(fake_url, 64, speculative_reply=speculative_reply)) as url:
        ws_url = url.replace("http://", "ws://") + "/v1"
        client = OpenAI(api_key="unused", base_url=url + "/v1", websocket_base_url=ws_url)
        with client.realtime.connect(model="koe") as conn:
            rt = Session(conn)
            rt.until("session.created")
            for chunk in speech_b64(clip, chunk_ms=CHUNK_MS):
                rt.send({"type": "input_audio_buffer.append", "audio": chunk})
                time.sleep(CHUNK_MS / 1000)
            got = rt.until("response.done")
        metrics = httpx.get(url + "/metrics").text
    return got, metrics


def test_a_held_reply_is_written_during_the_wait_and_spoken_after_it(
    fake_url: str, fake: FakeBehaviour, jsut_wav: Path
) -> None:
    # the first piece comes 20 ms after the request, the WAV 150 ms after its request
    fake.asr_delay_s, fake.token_delay_s, fake.tts_delay_s = 0.0, 0.02, 0.15
    reply = "".join(fake.reply_pieces)
    before, metrics = reply_turn(fake_url, jsut_wav, speculative_reply=False)
    assert counted(metrics, "used", "koe_speculative_reply") == 0
    assert latency(metrics, "first_token") >= 0.02  # asked at the end, answered 20 ms later
    fake.chat_bodies.clear()
    fake.tts_texts.clear()

    got, metrics = reply_turn(fake_url, jsut_wav, speculative_reply=True)
    # the same events in the same order: the response is created after the commit
    assert types(got) == types(before)
    assert types(got)[:3] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
    ]
    assert transcripts(got) == [fake.transcript]
    # its usage counts the committed audio, as without the held reply, not the speech up to
    # the pause that the held turn was started on
    assert usage_seconds(got) == usage_seconds(before)
    assert got[-1]["response"]["status"] == "completed"
    assert "".join(fake.tts_texts) == reply  # all of it spoken, each piece once
    assert counted(metrics, "used", "koe_speculative_reply") == 1
    # the LLM was asked once, on the transcript, and had answered before the turn's end ...
    assert len(fake.chat_bodies) == 1
    assert fake.chat_bodies[0]["messages"][-1]["content"] == fake.transcript
    assert latency(metrics, "first_token") == 0
    # ... but nothing was synthesized before it: the first audio took the TTS's 150 ms after it
    assert latency(metrics, "first_audio") >= 0.15


def test_speech_after_the_pause_stops_the_held_reply(
    fake_url: str, fake: FakeBehaviour, jsut_wav: Path, tmp_path: Path
) -> None:
    # a reply still streaming when the speech resumes (one piece every 30 ms)
    fake.asr_delay_s, fake.token_delay_s = 0.0, 0.03
    fake.reply_pieces = [f"{i}番目です。" for i in range(12)]
    clip, _ = gap_clip(jsut_wav, tmp_path)
    got, metrics = reply_turn(fake_url, clip, speculative_reply=True)
    assert transcripts(got) == [fake.transcript]
    assert types(got).count("response.created") == 1
    assert got[-1]["response"]["status"] == "completed"
    dropped = counted(metrics, "dropped", "koe_speculative_reply")
    assert dropped >= 1 and counted(metrics, "used", "koe_speculative_reply") == 1
    # every dropped reply's stream was closed before its end: generation stopped upstream
    assert fake.stream_closed_early == dropped
    # nothing of the dropped replies was synthesized: the response's reply was, once
    assert "".join(fake.tts_texts) == "".join(fake.reply_pieces)
