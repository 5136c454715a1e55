"""The English voice: espeak-ng as a program, its loading, and English through the default voice."""

from __future__ import annotations

import logging
import struct
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from bench.metrics import wer
from services.tts import engine as engine_mod
from services.tts.app import create_app
from services.tts.engine import SynthesisOptions, Synthesizer, create_synthesizer
from services.tts.espeak import SAMPLE_RATE, EspeakError, EspeakSynthesizer, parse_wav
from services.tts.settings import TTSSettings

from .conftest import FakeSynth
from .test_voices import transcribe

ENGLISH = [
    "The weather is nice today, so let's go for a walk in the park.",
    "Could you send me a map of the way to the station?",
    "Thank you very much for your help!",
]
ESPEAK_VOICES = ["en-us", "en-us+f3", "en-gb"]


def piped_wav(pcm: bytes, rate: int = SAMPLE_RATE) -> bytes:
    """A WAV as espeak-ng writes it to a pipe: placeholder RIFF and data sizes."""
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return (
        b"RIFF" + struct.pack("<I", 0x7FFFF024) + b"WAVE"
        + b"fmt " + struct.pack("<I", len(fmt)) + fmt
        + b"data" + struct.pack("<I", 0x7FFFF000) + pcm
    )  # fmt: skip


def test_parse_wav_reads_to_the_end_despite_placeholder_sizes() -> None:
    samples, rate = parse_wav(piped_wav(np.array([0, 16384, -32768], "<i2").tobytes()))
    assert rate == SAMPLE_RATE
    assert samples.tolist() == [0.0, 0.5, -1.0]
    with pytest.raises(EspeakError, match="WAV"):
        parse_wav(b"not audio")


def test_missing_binary_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    monkeypatch.setenv("PATH", str(tmp_path))  # a machine without espeak-ng
    with pytest.raises(EspeakError, match=r"Debian package 'espeak-ng'.*apt-get install espeak-ng"):
        create_synthesizer("espeak", TTSSettings())
    with pytest.raises(EspeakError, match="/opt/nowhere/espeak-ng"):
        create_synthesizer("espeak", TTSSettings(espeak_binary="/opt/nowhere/espeak-ng"))


def fake_backend(settings: TTSSettings) -> FakeSynth:
    return FakeSynth()


def test_service_starts_without_espeak_and_warns(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(engine_mod._REGISTRY, "fake", f"{__name__}:fake_backend")
    # model_copy skips validation: "fake" is not a real backend name
    settings = TTSSettings(espeak_binary="/opt/nowhere/espeak-ng").model_copy(
        update={"backends": ["fake", "espeak"]}
    )
    with caplog.at_level(logging.WARNING), TestClient(create_app(settings)) as c:
        assert c.get("/health").json()["backends"] == ["fake"]
        assert c.post("/synthesize", json={"text": "はい"}).status_code == 200
    assert "espeak not loaded" in caplog.text and "espeak-ng" in caplog.text
    # Alone, or with a required backend failing, it still stops the service.
    alone = settings.model_copy(update={"backends": ["espeak"]})
    with pytest.raises(EspeakError, match="apt-get install"), TestClient(create_app(alone)):
        pass
    monkeypatch.setitem(engine_mod._REGISTRY, "fake", f"{__name__}:no_such_factory")
    with pytest.raises(AttributeError), TestClient(create_app(settings)):
        pass


def test_espeak_is_loaded_by_default() -> None:
    assert TTSSettings().backends == ["kokoro", "openjtalk", "espeak"]


def test_speed_and_pitch_map_to_espeak_flags() -> None:
    synth = EspeakSynthesizer.__new__(EspeakSynthesizer)  # no binary needed to build argv
    synth.binary = "espeak-ng"

    def flags(**kw: float) -> tuple[str, str]:
        argv = synth.command("en-gb", SynthesisOptions(**kw))
        assert argv[argv.index("-v") + 1] == "en-gb"
        return argv[argv.index("-s") + 1], argv[argv.index("-p") + 1]

    assert flags() == ("175", "50")
    assert flags(speed=2.0, pitch=3.0) == ("350", "68")
    assert flags(speed=0.25, pitch=-12.0) == ("80", "0")  # clamped to what espeak-ng takes
    assert flags(speed=4.0, pitch=12.0) == ("450", "99")


def test_real_espeak_speaks_faster_and_higher_when_asked(espeak: Synthesizer) -> None:
    assert [v.id for v in espeak.voices()] == ESPEAK_VOICES
    sentence = ENGLISH[0]
    normal = espeak.synthesize(sentence, "en-us", SynthesisOptions())
    fast = espeak.synthesize(sentence, "en-us", SynthesisOptions(speed=2.0))
    high = espeak.synthesize(sentence, "en-us", SynthesisOptions(pitch=6.0))
    assert normal.dtype == np.float32 and 2.5 < len(normal) / SAMPLE_RATE < 6
    assert 0.05 < np.sqrt(np.mean(normal**2)) and np.max(np.abs(normal)) <= 1.0
    assert len(fast) < 0.6 * len(normal)

    # +6 semitones is 1.41x; espeak-ng's own intonation blurs it, so ask for 1.25x
    assert f0(high) > 1.25 * f0(normal), (f0(high), f0(normal))


def f0(x: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    """Median pitch (Hz) of the loud 93 ms frames, by autocorrelation over 60-400 Hz."""
    lo, hi, pitches = rate // 400, rate // 60, []
    for start in range(0, len(x) - 2048, 1024):
        frame = x[start : start + 2048]
        if np.sqrt(np.mean(frame**2)) > 0.02:
            corr = np.correlate(frame, frame, "full")[2047:]
            pitches.append(rate / (lo + int(np.argmax(corr[lo:hi]))))
    return float(np.median(pitches))


@pytest.mark.slow
def test_english_through_the_default_voice_is_understood(
    kokoro: Synthesizer,
    openjtalk: Synthesizer,
    espeak: Synthesizer,
    whisper,  # noqa: ANN001
) -> None:
    # The default backends, in the default order: Kokoro's jf_alpha is the default voice.
    with TestClient(create_app(TTSSettings(), engine=[kokoro, openjtalk, espeak])) as client:
        listed = client.get("/voices").json()
        assert listed["default_voice"] == "jf_alpha"
        english = [v for v in listed["voices"] if v["backend"] == "espeak"]
        assert [(v["id"], v["languages"], v["sample_rate"]) for v in english] == [
            (voice, ["en"], SAMPLE_RATE) for voice in ESPEAK_VOICES
        ]
        assert all(v["knobs"] == ["speed", "pitch"] for v in english)

        t0 = time.perf_counter()
        r = client.post("/synthesize", json={"text": " ".join(ENGLISH)})  # no voice: the gateway
        elapsed = time.perf_counter() - t0
        assert r.status_code == 200, r.text
        assert r.headers["x-sample-rate"] == str(SAMPLE_RATE)  # espeak's, not Kokoro's 24 kHz
        seconds = (len(r.content) - 44) / 2 / SAMPLE_RATE
        heard = transcribe(whisper, r.content, language="en")
        error = wer([" ".join(ENGLISH)], [heard])
        print(f"espeak en-us: heard {heard!r}, WER {error:.2f}, RTF {elapsed / seconds:.3f}")
        assert error <= 0.2, heard

        # A named Japanese voice is kept: English is a 422 that names the voices that can.
        r = client.post("/synthesize", json={"text": ENGLISH[0], "voice": "jf_alpha"})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "unsupported_language"
        assert "voices that can: en-us, en-us+f3, en-gb" in r.json()["error"]["message"]
        # Japanese still gets the default voice.
        r = client.post("/synthesize", json={"text": "こんにちは。"})
        assert r.status_code == 200 and r.headers["x-sample-rate"] == "24000"
