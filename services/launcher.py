"""``python -m services.launcher``: run every service, wait for health, stop all on Ctrl-C.

Each service runs as its own process (as it would in its own container), so a
crash in one shows up in the log without taking the others down, and Ctrl-C
(SIGINT) or SIGTERM stops them all.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass


@dataclass(frozen=True)
class Service:
    name: str
    module: str
    port: int
    env_prefix: str


SERVICES = [
    Service("asr", "services.asr", 8001, "ASR_"),
    Service("llm", "services.llm", 8002, "LLM_"),
    Service("tts", "services.tts", 8003, "TTS_"),
    Service("gateway", "gateway", 8000, "GATEWAY_"),
]


def available() -> list[Service]:
    """Services whose package exists in this checkout (the project grows one at a time)."""
    return [s for s in SERVICES if importlib.util.find_spec(s.module + ".__main__") is not None]


def port_of(service: Service) -> int:
    return int(os.environ.get(f"{service.env_prefix}PORT", service.port))


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def stop_all(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 10
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    names = [s.name for s in available()]
    parser = argparse.ArgumentParser(
        prog="python -m services.launcher",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "services", nargs="*", help=f"which to run (default: all of {', '.join(names)})"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=1800,
        help="seconds to wait for health (the first start prepares models)",
    )
    args = parser.parse_args(argv)
    args.services = args.services or names
    unknown = set(args.services) - set(names)
    if unknown:
        parser.error(f"unknown service {', '.join(sorted(unknown))}; choose from {names}")
    chosen = [s for s in available() if s.name in args.services]

    procs: dict[str, subprocess.Popen[bytes]] = {}
    # SIGTERM (docker stop, a test harness) ends us like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        for s in chosen:
            print(f"[koe] starting {s.name} on port {port_of(s)}", flush=True)
            procs[s.name] = subprocess.Popen([sys.executable, "-m", s.module])
        deadline = time.monotonic() + args.timeout
        pending = {s.name: port_of(s) for s in chosen}
        while pending:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    print(f"[koe] {name} exited with code {proc.returncode}", flush=True)
                    return 1
            for name, port in list(pending.items()):
                if healthy(port):
                    print(f"[koe] {name} ready: http://127.0.0.1:{port}/docs", flush=True)
                    del pending[name]
            if time.monotonic() > deadline:
                print(f"[koe] timed out waiting for {', '.join(pending)}", flush=True)
                return 1
            time.sleep(0.5)
        print("[koe] all services up; press Ctrl-C to stop", flush=True)
        while all(p.poll() is None for p in procs.values()):
            time.sleep(0.5)
        print("[koe] a service stopped; shutting the others down", flush=True)
        return 1
    except KeyboardInterrupt:
        print("\n[koe] stopping", flush=True)
        return 0
    finally:
        stop_all(procs)


if __name__ == "__main__":
    sys.exit(main())
