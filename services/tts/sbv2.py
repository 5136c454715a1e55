"""The production voice: Style-Bert-VITS2 (JP-Extra), with styles, downloaded on first start.

Default model: ``litagin/style_bert_vits2_jvnv`` ``jvnv-F1-jp`` with the BERT
``ku-nlp/deberta-v2-large-japanese-char-wwm``. Both are fetched with
``huggingface_hub`` into the model cache (progress bars on the console) unless
local folders are configured; tests point those at a tiny random model.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from services.common.models import building

from .engine import SynthesisOptions, Voice
from .openjtalk import ensure_dictionary

if TYPE_CHECKING:
    from .settings import TTSSettings

logger = logging.getLogger(__name__)

MODEL_FILES = ("config.json", "style_vectors.npy")
BERT_PATTERNS = ["*.json", "*.txt", "*.model"]  # config and tokenizer; weights chosen below
KNOBS = ("speed", "style", "style_weight", "sdp_ratio", "noise", "noise_w", "pitch", "intonation")


def _repo_folder(cache_dir: Path, repo: str) -> Path:
    return cache_dir / "style-bert-vits2" / repo.replace("/", "--")


def download_model(repo: str, model: str, cache_dir: Path) -> Path:
    """Fetch the model file with its config.json and style_vectors.npy; return the model file."""
    import huggingface_hub as hub

    filename = model if model.endswith((".safetensors", ".pth")) else model + ".safetensors"
    subdir = filename.rpartition("/")[0]
    # one folder per model file, so choosing another model of the repo fetches it
    folder = _repo_folder(cache_dir, repo) / filename.rsplit(".", 1)[0].replace("/", "--")
    with building(folder) as scratch:
        if scratch is not None:
            logger.info("downloading Style-Bert-VITS2 model %s/%s", repo, filename)
            for name in (filename, *(f"{subdir}/{f}" if subdir else f for f in MODEL_FILES)):
                hub.hf_hub_download(repo, name, local_dir=scratch)
    return folder / filename


def download_bert(repo: str, cache_dir: Path) -> Path:
    """Fetch the BERT's config, tokenizer and weights (safetensors when the repo has them)."""
    import huggingface_hub as hub

    folder = _repo_folder(cache_dir, repo)
    with building(folder) as scratch:
        if scratch is not None:
            logger.info("downloading BERT %s", repo)
            files = hub.list_repo_files(repo)
            weights = [f for f in files if f.endswith(".safetensors")] or ["pytorch_model.bin"]
            hub.snapshot_download(repo, local_dir=scratch, allow_patterns=BERT_PATTERNS + weights)
    return folder


def _model_file(folder: Path) -> Path:
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.pth"))
    if not files:
        raise FileNotFoundError(f"no .safetensors model in {folder}")
    return files[-1]


def prepare(settings: TTSSettings) -> tuple[Path, Path]:
    """The model file and BERT folder to load, downloading what is not configured locally."""
    if settings.sbv2_model_dir is not None:
        model_file = _model_file(settings.sbv2_model_dir)
    else:
        model_file = download_model(settings.sbv2_repo, settings.sbv2_model, settings.cache_dir)
    bert = settings.sbv2_bert_dir or download_bert(settings.sbv2_bert, settings.cache_dir)
    return model_file, bert


def _patch_frontend() -> None:
    """Make SBV2's reading code accept pyopenjtalk-plus's output for "!".

    pyopenjtalk-plus gives "！" the reading "！" where pyopenjtalk gives "、";
    SBV2 then rejects the reading as "not katakana". Mapping it back keeps the
    exclamation's prosody and costs nothing.
    """
    from style_bert_vits2.nlp.japanese import pyopenjtalk_worker

    original = pyopenjtalk_worker.run_frontend
    if getattr(original, "_koe_patched", False):
        return

    def run_frontend(text: str) -> list[dict[str, Any]]:
        nodes = original(text)
        for node in nodes:
            if node.get("pron") == "！":
                node["pron"] = "、"
        return nodes

    run_frontend._koe_patched = True  # type: ignore[attr-defined]
    pyopenjtalk_worker.run_frontend = run_frontend


class StyleBertVITS2Synthesizer:
    """A JP-Extra model; each speaker in its config is a voice, each style a style."""

    name = "style-bert-vits2"

    def __init__(self, model_file: Path, bert_dir: Path, device: str = "auto") -> None:
        ensure_dictionary()
        import torch
        from style_bert_vits2.constants import Languages
        from style_bert_vits2.logging import logger as sbv2_logger
        from style_bert_vits2.nlp import bert_models
        from style_bert_vits2.tts_model import TTSModel

        # SBV2 logs every request's text at INFO: user content does not belong in logs.
        sbv2_logger.disable("style_bert_vits2")
        _patch_frontend()
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        self._language = Languages.JP
        bert = bert_models.load_model(Languages.JP, str(bert_dir))
        if device == "cpu":
            bert.float()  # an fp16 checkpoint would crash on CPU
        bert_models.load_tokenizer(Languages.JP, str(bert_dir))
        folder = model_file.parent
        self._model = TTSModel(
            model_file, folder / "config.json", folder / "style_vectors.npy", device=device
        )
        self._model.load()
        hps = self._model.hyper_parameters
        if not hps.version.endswith("JP-Extra"):
            logger.warning("model %s is not JP-Extra; only Japanese is used", model_file.name)
        self.sample_rate = int(hps.data.sampling_rate)
        self._speakers = dict(self._model.spk2id)
        self._styles = tuple(self._model.style2id)
        self.synthesize("あ", next(iter(self._speakers)), SynthesisOptions(style=self._styles[0]))

    def voices(self) -> list[Voice]:
        return [
            Voice(
                id=speaker,
                backend=self.name,
                sample_rate=self.sample_rate,
                styles=self._styles,
                description=f"Style-Bert-VITS2 {speaker} ({self.device})",
                knobs=KNOBS,
            )
            for speaker in self._speakers
        ]

    def synthesize(self, text: str, voice: str, options: SynthesisOptions) -> np.ndarray:
        _, wave = self._model.infer(
            text,
            language=self._language,
            speaker_id=self._speakers[voice],
            style=options.style,
            style_weight=options.style_weight,
            sdp_ratio=options.sdp_ratio,
            noise=options.noise,
            noise_w=options.noise_w,
            length=1.0 / options.speed,
            line_split=False,  # the service already hands over one sentence
        )
        pcm = np.asarray(wave, dtype=np.float32) / 32768.0
        pitch_scale = float(2.0 ** (options.pitch / 12.0))
        if pitch_scale == 1.0 and options.intonation == 1.0:
            return pcm
        return self._shift(text, pcm, pitch_scale, options.intonation)

    def _shift(self, text: str, pcm: np.ndarray, pitch: float, intonation: float) -> np.ndarray:
        """SBV2's own pitch and intonation change, applied here rather than inside ``infer``:
        it divides by the voiced frames pyworld finds, and an unvoiced result (a whisper,
        「ッ」) failed the request with a 500. Such a sentence is now spoken unshifted."""
        from style_bert_vits2.voice import adjust_voice

        try:
            _, shifted = adjust_voice(
                fs=self.sample_rate,
                wave=pcm.astype(np.float64),
                pitch_scale=pitch,
                intonation_scale=intonation,
            )
        except ZeroDivisionError:
            logger.info("no voiced frame to shift in %r; spoken without pitch changes", text)
            return pcm
        peak = float(np.abs(shifted).max())
        if peak == 0.0:
            return pcm
        # peak-normalised, as SBV2 does after its own shift
        return (shifted * (32767.0 / 32768.0 / peak)).astype(np.float32)


def create(settings: TTSSettings) -> StyleBertVITS2Synthesizer:
    model_file, bert_dir = prepare(settings)
    return StyleBertVITS2Synthesizer(model_file, bert_dir, settings.sbv2_device)
