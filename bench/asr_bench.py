"""ASR benchmark: real-time factor and median latency per backend on real speech.

Runs each backend in-process on the JSUT clip and the librivox clips, a few
times each, after one warm-up call. RTF = processing time / audio duration.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

import soundfile as sf
import soxr

from services.asr.pipeline import RecognitionPipeline
from services.asr.settings import ASRSettings

from .common import JSUT_TEXT, jsut_clip, librivox_clips, print_table, save_results
from .metrics import cer, wer


def load(path: Path):  # noqa: ANN201
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    return soxr.resample(audio.mean(axis=1), rate, 16000)


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def run(backends: list[str], repeats: int) -> list[dict]:
    clips = [(jsut_clip(), "ja")] + [(p, "en") for p, _ in librivox_clips()]
    rows = []
    for backend in backends:
        pipeline = RecognitionPipeline(ASRSettings(backend=backend))  # type: ignore[arg-type]
        t0 = time.perf_counter()
        pipeline.transcriber  # noqa: B018 - load now, outside the timings
        load_s = time.perf_counter() - t0
        audio0 = load(clips[0][0])
        asyncio.run(pipeline.transcribe(audio0, "ja"))  # warm-up
        latencies, rtfs, texts = [], [], []
        for path, lang in clips:
            audio = load(path)
            for i in range(repeats):
                result, elapsed = asyncio.run(pipeline.transcribe(audio, lang))
                latencies.append(elapsed)
                rtfs.append(elapsed / (len(audio) / 16000))
                if i == 0:
                    texts.append(result.text)
        rows.append(
            {
                "backend": backend,
                # faster-whisper: the count it chose at load (a probe of both; in load_s)
                "threads": getattr(pipeline.transcriber, "threads", None) or torch_threads(),
                "load_s": round(load_s, 2),
                "clips": len(clips),
                "runs": len(latencies),
                "median_latency_s": round(statistics.median(latencies), 3),
                "median_rtf": round(statistics.median(rtfs), 3),
                "jsut_cer": round(cer(JSUT_TEXT, texts[0]), 3),
                "librivox_wer": round(wer([r for _, r in librivox_clips()], texts[1:]), 3),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m bench asr", description=__doc__)
    parser.add_argument("--backends", nargs="+", default=["faster-whisper", "transformers"])
    parser.add_argument("--repeats", type=int, default=3)
    args, _ = parser.parse_known_args(argv)  # flags meant for the other suites are not ours
    rows = run(args.backends, args.repeats)
    print_table("ASR (Whisper base, embedded)", rows)
    save_results("asr", rows)
    return rows
