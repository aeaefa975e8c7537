"""The benchmarks stay runnable: the in-process one is run small, the suite is asked for its help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.fixture
def change_cost(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import change_cost

    return change_cost


def test_per_change_cost_runs_and_sends_a_delta_per_record(change_cost) -> None:  # type: ignore[no-untyped-def]
    figures = change_cost.measure(agents=300, records=1500)
    assert figures["deltas"] == 1500  # --push-interval 0: every record went out
    assert 0 < figures["us_per_change"] < 10_000
    assert 0 < figures["reference_us"] < 10_000
    assert figures["ratio"] == figures["us_per_change"] / figures["reference_us"]


def test_the_suite_lists_its_phases() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    for phase in (
        "ingest",
        "polls",
        "freshness",
        "pollfresh",
        "footprint",
        "perchange",
        "history",
        "soak",
    ):
        assert phase in out.stdout
