"""LLM benchmark: time to first token and tokens per second, median of a few runs.

Runs the configured backend (the embedded gemma-3-270m unless ``LLM_BACKEND``
says otherwise) in-process through the same prompt building and clean-up as
the service, after one warm-up call. Three prompts: a short question asked
again each run (its prompt cache then holds all of it but the last token: the
floor of the time to first token), a different question each run (the cache
holds the system prompt and few-shot dialogue, the new message is computed:
what a turn of a conversation costs), and a long reply to measure decoding
speed.
``python -m bench llm [--runs N] [--max-tokens N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from services.common.queue import InferenceQueue
from services.llm.chat import build_prompt, reply_stream
from services.llm.engine import ChatModel, GenerationParams, cpu_threads, load_engine
from services.llm.prompt import Message
from services.llm.settings import LLMSettings

from .common import print_table, save_results

NEW_QUESTIONS = [
    "日本で一番長い川は何ですか？",
    "京都でおすすめの観光地を教えてください。",
    "猫と犬、どちらが飼いやすいですか？",
    "明日の朝ごはんは何がいいと思いますか？",
    "富士山に登るには何日かかりますか？",
]
# Each prompt: the conversations its runs take in turn. The long one brings its own system
# prompt: under the default one ("one or two short sentences") the model answers 「はい。」.
PROMPTS = {
    "short question, the same each run": [[Message("user", "日本で一番高い山は何ですか？")]],
    "short question, a new one each run": [[Message("user", q)] for q in NEW_QUESTIONS],
    "long reply": [
        [
            Message("system", "ユーザーの言葉を一字一句そのまま繰り返してください。"),
            Message(
                "user",
                "次の文をそのまま繰り返してください：吾輩は猫である。名前はまだ無い。"
                "どこで生れたかとんと見当がつかぬ。何でも薄暗いじめじめした所でニャーニャー"
                "泣いていた事だけは記憶している。",
            ),
        ]
    ],
}


async def one_run(
    engine: ChatModel, settings: LLMSettings, messages: list[Message], max_tokens: int
) -> tuple[float, float, int, int]:
    """(time to first token, total time, prompt tokens, completion tokens) of one reply."""
    params = GenerationParams(max_tokens=max_tokens, temperature=0.0, top_p=1.0)
    start = time.perf_counter()
    prompt = build_prompt(settings, engine, messages, params)
    first = 0.0
    prompt_tokens = completion = 0
    async for chunk in reply_stream(engine, InferenceQueue(1), prompt, params):
        if chunk.text and not first:
            first = time.perf_counter() - start
        prompt_tokens, completion = chunk.prompt_tokens, chunk.completion_tokens
    return first, time.perf_counter() - start, prompt_tokens, completion


def run(runs: int, max_tokens: int) -> list[dict]:
    settings = LLMSettings()
    t0 = time.perf_counter()
    engine = load_engine(settings)  # includes the one-off conversion on a fresh machine
    load_s = time.perf_counter() - t0
    warm_up = PROMPTS["short question, the same each run"][0]
    asyncio.run(one_run(engine, settings, warm_up, 8))
    rows = []
    for name, conversations in PROMPTS.items():
        picks = [conversations[i % len(conversations)] for i in range(runs)]
        results = [asyncio.run(one_run(engine, settings, m, max_tokens)) for m in picks]
        ttft = statistics.median(r[0] for r in results)
        total = statistics.median(r[1] for r in results)
        # decoding speed: tokens after the first over the time after the first
        speeds = [(r[3] - 1) / (r[1] - r[0]) for r in results if r[3] > 1 and r[1] > r[0]]
        rows.append(
            {
                "backend": engine.backend,
                "model": engine.model_id,
                "device": engine.device,
                "threads": cpu_threads(settings.threads) if engine.device == "cpu" else "-",
                "load_s": round(load_s, 2),
                "prompt": name,
                "prompt_tokens": results[0][2],
                "reply_tokens": results[0][3],
                "runs": runs,
                "median_ttft_s": round(ttft, 3),
                "median_reply_s": round(total, 3),
                "median_tokens_per_s": round(statistics.median(speeds), 1) if speeds else "-",
            }
        )
    return rows


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench llm", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="runs per prompt (median is shown)")
    parser.add_argument("--max-tokens", type=int, default=64, help="reply length limit")
    args, _ = parser.parse_known_args(argv)  # the other suites' flags pass through
    rows = run(args.runs, args.max_tokens)
    print_table("LLM: time to first token and decoding speed", rows)
    save_results("llm", rows)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
