"""Waiting for the other services to finish loading before timing anything at start."""

from __future__ import annotations

import subprocess
import sys
import time

from services.common import cpuload
from services.common.cpuload import others_busy, wait_until_quiet


def test_others_busy_subtracts_this_process() -> None:
    machine = iter([1000, 1000 + 2 * cpuload.TICKS_PER_S])  # 2 s of CPU over the sample
    own = iter([50, 50 + cpuload.TICKS_PER_S // 2])  # half a second of it ours
    slept = []
    load = others_busy(1.0, lambda: next(machine), lambda: next(own), slept.append)
    assert slept == [1.0] and load == 1.5
    assert others_busy(1.0, lambda: None, lambda: 0, slept.append) is None


def test_waits_for_quiet_and_gives_up_at_the_limit() -> None:
    loads = iter([1.8, 1.2, 0.3, 0.0])
    quiet, _, load = wait_until_quiet(60, 0.5, 0.01, lambda _: next(loads))
    assert quiet and load == 0.3
    quiet, waited, load = wait_until_quiet(0.05, 0.5, 0.01, lambda s: time.sleep(s) or 1.0)
    assert not quiet and waited >= 0.05 and load == 1.0
    # where the load cannot be read, nothing is waited for
    quiet, waited, load = wait_until_quiet(60, 0.5, 0.01, lambda _: None)
    assert quiet and waited < 1 and load is None


def test_sees_another_process_spinning() -> None:
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # past its start-up
        busy = others_busy(0.5)
    finally:
        spinner.kill()
        spinner.wait()
    idle = others_busy(0.5)
    assert busy is not None and idle is not None
    assert busy > 0.6 and busy - idle > 0.5, (busy, idle)
