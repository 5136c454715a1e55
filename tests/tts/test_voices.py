"""Real voices: round trips through the embedded Whisper, the tiny SBV2 model over HTTP."""

from __future__ import annotations

import io
import re
import unicodedata
import wave
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from services.common.audio import int16_to_float, resample
from services.tts.app import create_app
from services.tts.engine import Synthesizer
from services.tts.settings import TTSSettings

from .tiny_sbv2 import SAMPLE_RATE as TINY_RATE
from .tiny_sbv2 import SPEAKER as TINY_SPEAKER

SENTENCE = "今日は天気が晴れているので、公園を散歩しましょう。"


def reading(text: str) -> str:
    """Katakana reading without punctuation or spaces: 東京 and とうきょう count as the same."""
    import pyopenjtalk

    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if not unicodedata.category(c).startswith(("P", "Z", "S")))
    return re.sub(r"[、。？！?!’]", "", pyopenjtalk.g2p(text, kana=True))


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate: edit distance over the reference length."""
    ref, hyp = reading(reference), reading(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / max(1, len(ref))


def transcribe(whisper, wav: bytes, language: str = "ja") -> str:  # noqa: ANN001 - WhisperModel
    with wave.open(io.BytesIO(wav)) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    segments, _ = whisper.transcribe(
        resample(int16_to_float(pcm), rate, 16000), language=language, beam_size=1
    )
    return "".join(s.text for s in segments)


def test_cer_helper() -> None:
    assert cer("東京に行く。", "とうきょうにいく") == 0.0
    assert cer("あいうえお", "あいうえ") == pytest.approx(0.2)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["kokoro", "openjtalk"])
def test_round_trip_through_whisper(backend: str, request: pytest.FixtureRequest, whisper) -> None:  # noqa: ANN001
    engine: Synthesizer = request.getfixturevalue(backend)
    with TestClient(create_app(TTSSettings(), engine=engine)) as client:
        r = client.post("/synthesize", json={"text": SENTENCE})
    assert r.status_code == 200, r.text
    heard = transcribe(whisper, r.content)
    error = cer(SENTENCE, heard)
    print(f"{backend}: heard {heard!r}, CER {error:.2f}")
    assert error <= 0.2, heard


@pytest.mark.slow
def test_tiny_sbv2_through_http(sbv2_settings: TTSSettings, sbv2: Synthesizer) -> None:
    # No engine passed: the app loads the backend by name from the settings, the real path.
    with TestClient(create_app(sbv2_settings)) as client:
        voices = client.get("/voices").json()["voices"]
        assert [(v["id"], v["styles"], v["sample_rate"]) for v in voices] == [
            (TINY_SPEAKER, ["Neutral", "Happy"], TINY_RATE)
        ]
        body = {
            "text": "こんにちは！今日は、1,234円です。",
            "style": "Happy",
            "style_weight": 2.0,
            "speed": 1.2,
            "sdp_ratio": 0.5,
            "noise": 0.3,
            "noise_w": 0.5,
            "pitch": 1.0,
            "intonation": 1.2,
        }
        r = client.post("/synthesize", json=body)
        assert r.status_code == 200, r.text
        with wave.open(io.BytesIO(r.content)) as w:
            assert (w.getframerate(), w.getsampwidth(), w.getnchannels()) == (TINY_RATE, 2, 1)
            pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
        assert len(pcm) > TINY_RATE * 0.3 and np.max(np.abs(pcm.astype(np.int32))) < 32767
        r = client.post("/synthesize", json={"text": "はい", "style": "Sad"})
        assert r.status_code == 400 and "Neutral, Happy" in r.json()["error"]["message"]


@pytest.mark.slow
def test_sbv2_unvoiced_output_with_intonation_is_not_an_error(
    sbv2_settings: TTSSettings, sbv2: Synthesizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SBV2 shifts pitch through pyworld and divides by the voiced frames it finds; with
    none (the random tiny model sometimes, a whispered 「ッ」 in real use) the request used
    to fail with a 500. pyworld is made to find none here, so the case is certain."""
    import pyworld
    from style_bert_vits2 import voice as sbv2_voice

    harvest = pyworld.harvest

    def unvoiced(wave: np.ndarray, fs: int) -> tuple[np.ndarray, np.ndarray]:
        f0, t = harvest(wave, fs)
        return np.zeros_like(f0), t

    monkeypatch.setattr(sbv2_voice.pyworld, "harvest", unvoiced)
    with TestClient(create_app(sbv2_settings, engine=sbv2)) as client:
        r = client.post("/synthesize", json={"text": "こんにちは。", "intonation": 1.2})
    assert r.status_code == 200, r.text
    with wave.open(io.BytesIO(r.content)) as w:
        assert w.getnframes() > TINY_RATE * 0.1


@pytest.mark.slow
def test_sbv2_download_puts_files_in_the_cache(
    monkeypatch: pytest.MonkeyPatch,
    tiny_sbv2_dirs,
    tmp_path,  # noqa: ANN001
) -> None:
    import shutil

    import huggingface_hub

    from services.tts import sbv2

    model_dir, bert_dir = tiny_sbv2_dirs
    fetched: list[str] = []

    def hf_hub_download(repo: str, filename: str, local_dir) -> str:  # noqa: ANN001
        fetched.append(f"{repo}:{filename}")
        target = Path(local_dir) / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        src = model_dir / filename.rpartition("/")[2]
        if not src.exists():
            src = next(model_dir.glob("*.safetensors"))
        shutil.copy(src, target)
        return str(target)

    def snapshot_download(repo: str, local_dir, allow_patterns) -> str:  # noqa: ANN001
        fetched.append(f"{repo}:{sorted(allow_patterns)}")
        shutil.copytree(bert_dir, local_dir, dirs_exist_ok=True)
        return str(local_dir)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.setattr(huggingface_hub, "list_repo_files", lambda repo: ["model.safetensors"])
    settings = TTSSettings(cache_dir=tmp_path / "cache", backends=["style-bert-vits2"])
    model_file, bert = sbv2.prepare(settings)
    assert model_file.name == "jvnv-F1-jp_e160_s14000.safetensors" and model_file.exists()
    assert (model_file.parent / "config.json").exists()
    assert (model_file.parent / "style_vectors.npy").exists()
    assert (bert / "config.json").exists()
    assert fetched == [
        "litagin/style_bert_vits2_jvnv:jvnv-F1-jp/jvnv-F1-jp_e160_s14000.safetensors",
        "litagin/style_bert_vits2_jvnv:jvnv-F1-jp/config.json",
        "litagin/style_bert_vits2_jvnv:jvnv-F1-jp/style_vectors.npy",
        "ku-nlp/deberta-v2-large-japanese-char-wwm:"
        "['*.json', '*.model', '*.txt', 'model.safetensors']",
    ]
    fetched.clear()
    assert sbv2.prepare(settings) == (model_file, bert)  # cached: no second download
    assert fetched == []


@pytest.mark.slow
def test_real_voices_come_out_equally_loud(kokoro: Synthesizer, openjtalk: Synthesizer) -> None:
    from services.common.audio import speech_level
    from services.tts.engine import SynthesisOptions
    from services.tts.voices import VoiceBook

    book = VoiceBook([kokoro, openjtalk])
    levels = {}
    for voice in (book.resolve("jf_alpha", None)[0], book.resolve("mei", None)[0]):
        for sentence in ("はい。", "今日は天気が晴れているので、公園を散歩しましょう。"):
            pcm = book.render(voice, sentence, SynthesisOptions(), voice.sample_rate, True)
            level = speech_level(int16_to_float(pcm), voice.sample_rate)
            levels[voice.id, sentence] = 20 * np.log10(level)
    assert max(levels.values()) - min(levels.values()) < 1.5, levels
    assert all(v == pytest.approx(-20.0, abs=1.0) for v in levels.values()), levels
