"""faster-whisper (CTranslate2): the fast backend and the embedded default.

Whisper pads every input to a 30 s window, and on a CPU the encoder's cost is
that window, not the speech: a 3 s utterance costs as much as 30 s of audio.
CTranslate2's encoder accepts shorter inputs, so a short utterance is encoded
in a window just longer than itself (``min_window_s`` at least). On the test
clips (Japanese and English, 1 to 7 s) a 10 s window gave the same error rates
as 30 s with the encoder 8x faster; much shorter windows started to drop words.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np

from services.common.cpuload import wait_until_quiet
from services.common.settings import available_cores

from .engine import Segment, Transcription, resolve_device
from .models import hub_cache, resolve_model
from .settings import ASRSettings

logger = logging.getLogger(__name__)

FULL_WINDOW_S = 30  # Whisper's own: 3000 mel frames, 1500 encoder positions
FRAMES_PER_S = 100
TAIL_S = 1.0  # silence the window keeps after the speech, so the last word is not cut
CALIBRATION_ROUNDS = 2  # timed probe runs per thread count at start (after one warm-up)
PROBE_TOKENS = 24  # the probe's decoding steps at most: about a short utterance's
# Before timing, wait (at most this long) until other processes use under this many cores:
# the other services load their models for several seconds when all start together.
QUIET_WAIT_S = 20.0
QUIET_BELOW_CORES = 0.5


def choose_threads(times: dict[int, list[float]]) -> int:
    """The thread count with the lowest median time; the fewer threads on a tie."""
    return min(times, key=lambda n: (float(np.median(times[n])), n))


def window_seconds(duration_s: float, min_window_s: int) -> int:
    """The encoder window for an utterance of ``duration_s``: whole seconds, at most 30."""
    return min(FULL_WINDOW_S, max(min_window_s, math.ceil(duration_s + TAIL_S)))


def _windowed_model(**kwargs: Any) -> Any:
    """A ``WhisperModel`` whose encoder sees only the first ``window_frames`` mel frames.

    faster-whisper pads each segment to 3000 frames right before encoding; the
    frames past the window are that padding, so cutting them there is all it takes.
    """
    from faster_whisper import WhisperModel

    class WindowedWhisper(WhisperModel):
        window_frames = FULL_WINDOW_S * FRAMES_PER_S

        def encode(self, features: np.ndarray) -> Any:
            return super().encode(features[..., : self.window_frames])

    return WindowedWhisper(**kwargs)


class FasterWhisperTranscriber:
    backend = "faster-whisper"

    def __init__(self, settings: ASRSettings) -> None:
        self.device = resolve_device(settings.device)
        compute_type = settings.compute_type
        if compute_type == "auto":
            # int8 on CPU is about twice as fast as float32 with the same transcripts here.
            compute_type = "float16" if self.device == "cuda" else "int8"
        self.model_name = resolve_model(settings)
        self.beam_size = settings.beam_size
        self.min_window_s = settings.min_window_s
        logger.info("loading %s on %s (%s)", self.model_name, self.device, compute_type)

        def load(threads: int) -> Any:
            return _windowed_model(
                model_size_or_path=self.model_name,
                device=self.device,
                compute_type=compute_type,
                cpu_threads=threads,
                download_root=str(hub_cache(settings)),
            )

        cores = available_cores()
        if settings.cpu_threads or self.device != "cpu" or cores == 1:
            self.threads = settings.cpu_threads or 1
            self._model = load(self.threads)
        else:
            self._model, self.threads = self._fastest({n: load(n) for n in (1, cores)})

    def _fastest(self, models: dict[int, Any]) -> tuple[Any, int]:
        """The model whose thread count transcribes a probe utterance soonest, here.

        Which is faster is a property of the machine, not of the code: on one 2-core VM
        one thread took half the time two did (3 to 25 s utterances; syncing threads
        per decoding step cost more than they gained), on another two threads took 0.7x
        the time of one. So both are timed at start, alternately, and the other dropped,
        once other processes (the other services loading their models) leave the CPUs
        alone: see :mod:`services.common.cpuload`.
        The probe is 3 s of noise with decoding capped, so that a hallucination loop
        cannot make the start slow; it costs a few seconds on two cores.
        """
        quiet, waited, load = wait_until_quiet(QUIET_WAIT_S, QUIET_BELOW_CORES)
        if not quiet:
            logger.info(
                "other processes kept %.1f cores busy for %.0f s; timing ASR threads anyway",
                load,
                waited,
            )
        elif waited >= 1:
            logger.info("waited %.0f s for other processes to settle before timing", waited)
        probe = np.random.default_rng(0).normal(0, 0.05, 3 * 16000).astype(np.float32)
        times: dict[int, list[float]] = {n: [] for n in models}
        for round_ in range(CALIBRATION_ROUNDS + 1):
            for n, model in models.items():
                start = time.perf_counter()
                self._run(model, probe, "en", temperature=0.0, max_new_tokens=PROBE_TOKENS)
                if round_:  # the first round warms each model up
                    times[n].append(time.perf_counter() - start)
        best = choose_threads(times)
        logger.info(
            "ASR threads: %d (median probe time %s)",
            best,
            ", ".join(f"{np.median(t):.2f} s with {n}" for n, t in times.items()),
        )
        return models[best], best

    def _run(self, model: Any, audio: np.ndarray, language: str | None, **options: Any) -> Any:
        model.window_frames = window_seconds(len(audio) / 16000, self.min_window_s) * FRAMES_PER_S
        segments, info = model.transcribe(
            audio,
            language=language,
            beam_size=self.beam_size,
            # Each request is one utterance; conditioning on earlier windows feeds loops.
            condition_on_previous_text=False,
            vad_filter=False,  # the service runs Silero itself, before the model
            **options,
        )
        return list(segments), info

    def transcribe(
        self,
        audio: np.ndarray,
        language: str | None,
        prompt: str | None = None,
        temperature: float = 0.0,
    ) -> Transcription:
        # One call at a time: the service's inference queue serialises the model.
        segments, info = self._run(
            self._model,
            audio,
            language,
            initial_prompt=prompt or None,
            temperature=temperature,
        )
        out = [Segment(s.start, s.end, s.text, s.no_speech_prob, s.avg_logprob) for s in segments]
        return Transcription("", info.language, len(audio) / 16000, out)
