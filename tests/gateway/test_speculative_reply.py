"""Speculative reply: the LLM writes during the end-of-turn wait, the voice waits for its end.

When the transcription started at a pause is back before the silence has lasted
long enough to end the turn, the gateway starts the reply on it, held: the LLM
streams, but nothing is synthesized or sent until the turn's end is certain.
If speech resumes, the held reply's LLM stream is closed and nothing of it
reaches the client or the history.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.fakes import FakeBehaviour
from bench.wsclient import WSClient, speech_pcm
from gateway.conversation import Conversation
from gateway.turn import Turn
from tests.gateway import test_speculative_asr as speculative_asr
from tests.gateway.test_speculative_asr import gateway_app, with_gap
from tests.servers import serve


@pytest.fixture
def fake() -> FakeBehaviour:
    # the first piece comes 20 ms after the request, the WAV 150 ms after its request
    return FakeBehaviour(token_delay_s=0.02, tts_delay_s=0.15)


def run_turn(fake_url: str, pcm: bytes, speculative_reply: bool, **start: Any) -> tuple[list, str]:
    """One spoken turn at the client's pace; its events and the gateway's /metrics after it."""
    return speculative_asr.run_turn(
        fake_url,
        pcm,
        64,
        realtime=True,
        start=start,
        speculative_reply=speculative_reply,
        reconnect_wait_s=0,
    )


def replies(got: list[dict]) -> list[str]:
    return [e["generatedMessageContent"] for e in got if e["event"] == "assistantMessageGenerated"]


def counted(metrics: str, outcome: str) -> float:
    return speculative_asr.counted(metrics, outcome, "koe_speculative_reply")


@pytest.mark.parametrize("one_wav", [False, True], ids=["streaming", "one WAV"])
def test_reply_is_written_during_the_wait_and_spoken_after_it(
    fake_url: str, fake: FakeBehaviour, jsut_wav: Path, one_wav: bool
) -> None:
    pcm = speech_pcm(jsut_wav)
    reply = "".join(fake.reply_pieces)

    got, metrics = run_turn(fake_url, pcm, speculative_reply=False, oneWavPerTurn=one_wav)
    before = got[-1]
    assert counted(metrics, "used") == 0
    assert before["firstTokenMs"] >= 20  # asked at the turn's end, answered 20 ms later
    fake.chat_bodies.clear()
    fake.tts_texts.clear()

    got, metrics = run_turn(fake_url, pcm, speculative_reply=True, oneWavPerTurn=one_wav)
    names = [e["event"] for e in got]
    assert names[:3] == ["userSpeechStart", "userSpeechEnd", "userSpeechTranscript"]
    assert got[2]["transcript"] == fake.transcript
    assert replies(got) == [reply]
    # all of it spoken, each piece once
    assert "".join(fake.tts_texts) == reply
    assert names.count("assistantSpeechGenerated") == len(fake.tts_texts) == (1 if one_wav else 2)
    assert counted(metrics, "used") == 1 and counted(metrics, "dropped") == 0
    # the LLM was asked once, on the transcript, and had answered before the turn's end ...
    assert len(fake.chat_bodies) == 1
    assert fake.chat_bodies[0]["messages"][-1]["content"] == fake.transcript
    after = got[-1]
    assert after["transcriptMs"] == 0 and after["firstTokenMs"] == 0
    # ... but nothing was synthesized before it: the first WAV took the TTS's 150 ms after it
    assert after["firstAudioMs"] >= 150


def test_speech_after_the_pause_stops_the_early_reply(
    fake_url: str, fake: FakeBehaviour, jsut_wav: Path, tmp_path: Path
) -> None:
    # a reply still streaming when the speech resumes (one piece every 30 ms)
    fake.reply_pieces = [f"{i}番目です。" for i in range(12)]
    fake.token_delay_s = 0.03
    pcm, _ = with_gap(jsut_wav, tmp_path)
    got, metrics = run_turn(fake_url, pcm, speculative_reply=True)
    names = [e["event"] for e in got]
    assert names.count("userSpeechTranscript") == 1
    assert replies(got) == ["".join(fake.reply_pieces)]
    dropped = counted(metrics, "dropped")
    assert dropped >= 1 and counted(metrics, "used") == 1
    # every dropped reply's stream was closed before its end: generation stopped upstream
    assert fake.stream_closed_early == dropped
    # nothing of the dropped replies was synthesized: the turn's reply was, once
    assert "".join(fake.tts_texts) == "".join(fake.reply_pieces)
    assert names.count("assistantSpeechGenerated") == len(fake.tts_texts)


def test_a_held_reply_is_dropped_when_the_conversation_moved_on() -> None:
    conv = Conversation(history=[{"role": "user", "content": "こんにちは"}])
    turn = Turn(conv, upstreams=None, audio=b"", held=True)  # type: ignore[arg-type]
    turn.user_text = "お元気ですか"
    assert turn.still_current()  # the LLM was not asked yet: it will be asked what is now
    turn.asked = conv.llm_messages(turn.user_text)
    assert turn.still_current()
    conv.record("こんにちは", "こんにちは！")  # e.g. the turn before was recorded meanwhile
    assert not turn.still_current()


def second_turn(fake_url: str, pcm: bytes, speculative_tts_ms: int) -> list[dict[str, Any]]:
    """Two spoken turns on one connection (the first times the voice); the second's
    events."""
    settings = {"speculative_tts_ms": speculative_tts_ms, "reconnect_wait_s": 0}
    with serve(gateway_app(fake_url, 64, **settings)) as url:
        c = WSClient(url.replace("http", "ws") + "/ws")
        c.start()
        for _ in range(2):
            c.stream(pcm, realtime=True)
            got = c.until("turnMetrics")
        c.close()
    return got


def test_a_fast_voice_is_synthesized_during_the_wait_too(
    fake_url: str, fake: FakeBehaviour, jsut_wav: Path
) -> None:
    """A voice that synthesizes a piece in 60 ms: the held reply's first WAV is made during
    the rest of the wait, so it goes out at once when the turn ends; with speculative TTS
    off, it takes the TTS's 60 ms after the end."""
    fake.tts_delay_s = 0.06
    pcm = speech_pcm(jsut_wav)
    waited = second_turn(fake_url, pcm, speculative_tts_ms=0)[-1]
    assert waited["firstTokenMs"] == 0 and waited["firstAudioMs"] >= 60
    for limit in (1000, 150):  # 150, the default, counts a 60 ms voice as fast
        early = second_turn(fake_url, pcm, speculative_tts_ms=limit)[-1]
        assert early["firstTokenMs"] == 0 and early["firstAudioMs"] < 60


def test_a_dropped_reply_synthesized_early_is_never_sent(
    fake_url: str, fake: FakeBehaviour, jsut_wav: Path, tmp_path: Path
) -> None:
    fake.tts_delay_s = 0.0
    fake.reply_pieces = [f"{i}番目です。" for i in range(12)]
    fake.token_delay_s = 0.01
    whole = second_turn(fake_url, speech_pcm(jsut_wav), speculative_tts_ms=1000)
    wavs = [e["event"] for e in whole].count("assistantSpeechGenerated")
    fake.tts_texts.clear()
    pcm, _ = with_gap(jsut_wav, tmp_path)
    got = second_turn(fake_url, pcm, speculative_tts_ms=1000)
    assert replies(got) == ["".join(fake.reply_pieces)]
    # pieces of the reply dropped at the gap were synthesized (the first turn's too) ...
    assert len(fake.tts_texts) > 2 * wavs
    # ... but only the committed reply's WAVs reached the client
    assert [e["event"] for e in got].count("assistantSpeechGenerated") == wavs
