"""How busy other processes keep the CPUs (Linux ``/proc``), for timing things at start.

A service that times alternatives when it starts (the ASR's thread count) must not
do it while the other services are loading their models beside it: started
together by ``make run``, the bench or compose, the ASR timed one thread and two
as equal (0.38 and 0.39 s) and kept one, where on a quiet machine two took 0.7x
the time, and every turn's transcription then took 1.6x as long.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def busy_ticks() -> int | None:
    """CPU ticks spent busy by the whole machine since boot (None where unknown)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    # cpu user nice system idle iowait irq softirq steal ...: idle and iowait are not busy
    values = [int(v) for v in fields[1:9]]
    return sum(values) - values[3] - values[4]


def process_ticks(pid: int | str = "self") -> int | None:
    """CPU ticks a process (all its threads) has used: this one by default (None where
    unknown: not Linux, or no such process)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) + int(fields[12])  # utime + stime


def others_busy(
    sample_s: float = 0.5,
    machine: Callable[[], int | None] = busy_ticks,
    own: Callable[[], int | None] = process_ticks,
    sleep: Callable[[float], None] = time.sleep,
) -> float | None:
    """Cores' worth of CPU that other processes used over the next ``sample_s`` seconds."""
    m0, o0 = machine(), own()
    if m0 is None or o0 is None:
        return None
    sleep(sample_s)
    m1, o1 = machine(), own()
    if m1 is None or o1 is None:
        return None
    return max(0.0, ((m1 - m0) - (o1 - o0)) / TICKS_PER_S / sample_s)


def wait_until_quiet(
    limit_s: float,
    below_cores: float,
    sample_s: float = 0.5,
    measure: Callable[[float], float | None] = others_busy,
) -> tuple[bool, float, float | None]:
    """Wait until other processes use less than ``below_cores`` (over one sample), for at
    most ``limit_s``. Returns whether it got quiet, the seconds waited and the last load
    seen; where the load cannot be read (not Linux) it returns at once, as quiet."""
    start = time.monotonic()
    while True:
        load = measure(sample_s)
        waited = time.monotonic() - start
        if load is None or load < below_cores:
            return True, waited, load
        if waited >= limit_s:
            return False, waited, load
