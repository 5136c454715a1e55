"""transformers Whisper: the production default (whisper-large-v3-turbo on a GPU)."""

from __future__ import annotations

import logging

import numpy as np

from .engine import Segment, Transcription, resolve_device
from .models import hub_cache, resolve_model
from .settings import ASRSettings

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
WINDOW_S = 30.0


class TransformersTranscriber:
    backend = "transformers"

    def __init__(self, settings: ASRSettings) -> None:
        import torch
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        self._torch = torch
        self.device = resolve_device(settings.device)
        # fp16 halves memory and time on a GPU; CPUs have no fast fp16 matmul.
        self.dtype = torch.float16 if self.device == "cuda" else torch.float32
        if settings.cpu_threads:
            torch.set_num_threads(settings.cpu_threads)
        self.model_name = resolve_model(settings)
        self.num_beams = settings.beam_size
        logger.info("loading %s on %s (%s)", self.model_name, self.device, self.dtype)
        cache = str(hub_cache(settings))
        self._processor = WhisperProcessor.from_pretrained(self.model_name, cache_dir=cache)
        self._model = WhisperForConditionalGeneration.from_pretrained(
            self.model_name, dtype=self.dtype, cache_dir=cache
        ).to(self.device)
        self._model.eval()
        self._id_to_lang = {v: k[2:-2] for k, v in self._model.generation_config.lang_to_id.items()}

    def _features(self, audio: np.ndarray) -> dict:
        long_form = len(audio) > WINDOW_S * SAMPLE_RATE
        feats = self._processor(
            audio,
            sampling_rate=SAMPLE_RATE,
            return_tensors="pt",
            # Over 30 s, Whisper's generate runs its own sequential long-form loop.
            truncation=not long_form,
            padding="longest" if long_form else "max_length",
            return_attention_mask=True,
        )
        return {
            "input_features": feats.input_features.to(self.device, self.dtype),
            "attention_mask": feats.attention_mask.to(self.device),
        }

    def transcribe(
        self,
        audio: np.ndarray,
        language: str | None,
        prompt: str | None = None,
        temperature: float = 0.0,
    ) -> Transcription:
        torch = self._torch
        inputs = self._features(audio)
        with torch.inference_mode():
            if language is None:
                lang_ids = self._model.detect_language(inputs["input_features"][..., :3000])
                language = self._id_to_lang.get(int(lang_ids[0]), "en")
            kwargs: dict = {"language": language, "task": "transcribe", "num_beams": self.num_beams}
            if temperature > 0:
                kwargs.update(do_sample=True, temperature=temperature)
            if prompt:
                kwargs["prompt_ids"] = torch.as_tensor(
                    self._processor.get_prompt_ids(prompt), device=self.device
                )
            out = self._model.generate(**inputs, return_timestamps=True, **kwargs)
        decoded = self._processor.tokenizer.decode(  # type: ignore[attr-defined]
            out[0], skip_special_tokens=True, output_offsets=True
        )
        duration = len(audio) / SAMPLE_RATE
        segments = [
            Segment(
                float(o["timestamp"][0] or 0.0),
                float(o["timestamp"][1] if o["timestamp"][1] is not None else duration),
                o["text"],
            )
            for o in decoded.get("offsets", [])
        ] or [Segment(0.0, duration, decoded["text"])]
        return Transcription("", language, duration, segments)
