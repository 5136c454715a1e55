"""The soak at a CI-sized setting: 8 sessions of real speech for a minute, over fake services.

``python -m tests.reliability.soak --sessions 16 --minutes 10`` is the long run.
"""

from __future__ import annotations

from pathlib import Path

from tests.reliability.soak import check, run_soak


def test_soak(jsut_wav: Path) -> None:
    result = run_soak(sessions=8, seconds=60, clip=jsut_wav)
    print("\n" + result.report())
    assert check(result, max_growth_mb=30) == []
    # every session got several whole turns: nothing was lost or stuck
    assert result.turns >= 8 * 5
