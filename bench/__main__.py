"""``python -m bench [asr|llm|tts ...]``: run the benchmarks (all by default) and print tables."""

from __future__ import annotations

import importlib
import importlib.util
import sys

from .common import machine

SUITES = ["asr", "llm", "tts", "gateway"]


def main(argv: list[str]) -> int:
    wanted = [a for a in argv if a in SUITES] or SUITES
    rest = [a for a in argv if a not in SUITES]
    print(f"machine: {machine()}", flush=True)
    for name in wanted:
        if importlib.util.find_spec(f"bench.{name}_bench") is None:
            print(f"(no {name} benchmark yet)")
            continue
        module = importlib.import_module(f"bench.{name}_bench")
        module.main(rest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
