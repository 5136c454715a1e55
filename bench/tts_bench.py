"""TTS benchmark: real-time factor and first-chunk latency per voice, on this machine.

Each backend's default voice speaks a few sentences in its language (Japanese,
or English for espeak), several times,
after one warm-up, through the service's own pipeline (text clean-up, model,
loudness, int16). RTF = synthesis time / audio duration (below 1 is faster
than real time). First chunk = time from the request text to the first
sentence's audio on ``/synthesize/stream`` (in-process, no network): what a
listener waits before the voice starts.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence

from services.tts.engine import SynthesisOptions, create_synthesizer
from services.tts.settings import TTSSettings
from services.tts.voices import VoiceBook

from .common import print_table, save_results

SENTENCES = {
    "ja": [
        "こんにちは、今日はいい天気ですね。",
        "明日の会議は午後三時から、第二会議室で行います。",
        "駅までの道がわからないので、地図を送っていただけますか？",
    ],
    "en": [
        "Hello, it is a lovely day today, isn't it?",
        "Tomorrow's meeting starts at three in the afternoon, in the second meeting room.",
        "I don't know the way to the station, so could you send me a map?",
    ],
}
REPLY = {
    "ja": "はい、わかりました。明日の朝九時に駅の前で待っています。遅れないように気をつけますね。",
    "en": "Yes, I see. I will wait in front of the station at nine tomorrow morning. "
    "I will make sure not to be late.",
}


async def first_chunk(book: VoiceBook, voice_id: str) -> tuple[float, float]:
    """Seconds to the first sentence's audio, and to the whole reply."""
    t0 = time.perf_counter()
    voice, style = book.resolve(voice_id, None)
    sentences = book.sentences(REPLY[voice.languages[0]], voice)
    chunks = book.stream(voice, sentences, SynthesisOptions(style=style), voice.sample_rate)
    first = None
    async for _ in chunks:
        first = first or time.perf_counter() - t0
    return first or 0.0, time.perf_counter() - t0


def run(backends: Sequence[str], repeats: int) -> list[dict]:
    settings = TTSSettings()
    rows = []
    for backend in backends:
        t0 = time.perf_counter()
        engine = create_synthesizer(backend, settings)
        load_s = time.perf_counter() - t0
        book = VoiceBook([engine])
        voice = book.voices()[0]
        options = SynthesisOptions(style=voice.styles[0])
        sentences = SENTENCES[voice.languages[0]]
        book.render(voice, sentences[0], options, voice.sample_rate, True)  # warm-up
        rtfs, latencies = [], []
        for sentence in sentences:
            for _ in range(repeats):
                t = time.perf_counter()
                pcm = book.render(voice, sentence, options, voice.sample_rate, True)
                elapsed = time.perf_counter() - t
                rtfs.append(elapsed / (len(pcm) / voice.sample_rate))
                latencies.append(elapsed)
        timings = [asyncio.run(first_chunk(book, voice.id)) for _ in range(repeats)]
        firsts, totals = [t[0] for t in timings], [t[1] for t in timings]
        rows.append(
            {
                "backend": backend,
                "voice": voice.id,
                "language": voice.languages[0],
                "sample_rate": voice.sample_rate,
                "load_s": round(load_s, 2),
                "runs": len(rtfs),
                "median_sentence_s": round(statistics.median(latencies), 3),
                "median_rtf": round(statistics.median(rtfs), 3),
                "median_first_chunk_s": round(statistics.median(firsts), 3),
                "median_reply_s": round(statistics.median(totals), 3),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m bench tts", description=__doc__)
    parser.add_argument(
        "--backends",
        nargs="+",
        default=None,
        help="default: TTS_BACKENDS (kokoro openjtalk espeak)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    args, _ = parser.parse_known_args(argv)  # flags meant for the other suites are not ours
    rows = run(args.backends or TTSSettings().backends, args.repeats)
    print_table("TTS (3-sentence reply; RTF below 1 is faster than real time)", rows)
    save_results("tts", rows)
    return rows
