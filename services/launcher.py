"""``python -m services.launcher``: run every service, wait for health, stop all on Ctrl-C.

Each service runs as its own process (as it would in its own container), so a
crash in one shows up in the log without taking the others down, and Ctrl-C
(SIGINT) or SIGTERM stops them all.

``--profile NAME`` reads ``profiles/NAME.env`` (``production``: the large models
on a GPU); variables already set in the environment win over the profile. The
gateway is pointed at the ports the services were given (``ASR_PORT`` etc.)
and sends them their tokens, unless ``GATEWAY_*_URLS`` / ``*_TOKEN`` say otherwise.
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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PROFILES = Path(__file__).resolve().parent.parent / "profiles"


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


def port_of(service: Service, env: Mapping[str, str] = os.environ) -> int:
    return int(env.get(f"{service.env_prefix}PORT", service.port))


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines; blank lines and ``#`` comments skipped, optional quotes removed."""
    out = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{path}:{number}: expected KEY=VALUE, got {raw!r}")
        out[key.strip()] = value.strip().strip("'\"")
    return out


def profile_path(profile: str) -> Path:
    """A profile name (``profiles/<name>.env``) or a path to an env file."""
    path = Path(profile)
    return path if path.suffix == ".env" or path.exists() else PROFILES / f"{profile}.env"


def child_env(profile: Mapping[str, str], env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The services' environment: the profile under the caller's own variables, plus the
    gateway's upstream URLs and tokens derived from the services' ports and tokens."""
    out = {**profile, **env}
    for s in SERVICES[:3]:
        stage = s.name.upper()
        out.setdefault(f"GATEWAY_{stage}_URLS", f'["http://127.0.0.1:{port_of(s, out)}"]')
        token = out.get(f"{s.env_prefix}API_TOKEN")
        if token:
            out.setdefault(f"GATEWAY_{stage}_TOKEN", token)
    return out


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


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


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
        "--profile",
        default=os.environ.get("KOE_PROFILE", "embedded"),
        help="settings profile: a name in profiles/ (embedded, production) or an .env file",
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
    path = profile_path(args.profile)
    if not path.exists():
        parser.error(f"no profile {args.profile!r}: {path} does not exist")
    env = child_env(read_env_file(path))
    print(f"[koe] profile {args.profile} ({path})", flush=True)

    procs: dict[str, subprocess.Popen[bytes]] = {}
    # SIGTERM (docker stop, a test harness) ends us like Ctrl-C does; SIGINT is set too,
    # since a shell starting us in the background hands it down ignored.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        for s in chosen:
            print(f"[koe] starting {s.name} on port {port_of(s, env)}", flush=True)
            procs[s.name] = subprocess.Popen([sys.executable, "-m", s.module], env=env)
        deadline = time.monotonic() + args.timeout
        pending = {s.name: port_of(s, env) for s in chosen}
        while pending:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    print(f"[koe] {name} exited with code {proc.returncode}", flush=True)
                    return 1
            for name, port in list(pending.items()):
                if healthy(port):
                    print(f"[koe] {name} ready: http://127.0.0.1:{port}/docs", flush=True)
                    if name == "gateway":
                        print(f"[koe] voice chat: ws://127.0.0.1:{port}/ws", flush=True)
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
        # a second Ctrl-C must not cut the shutdown short and leave services running
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_all(procs)


if __name__ == "__main__":
    sys.exit(main())
