"""The benchmarks stay runnable: the in-process one is run small, the suite is asked for its help,
the rows beside the bare references are built from made-up figures, and the phases of those rows
that need no wrk are run with tiny sizes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from twisted.internet import defer

ROOT = Path(__file__).parent.parent

PHASES = (
    "ingest",
    "ingestcpu",
    "polls",
    "freshness",
    "pollfresh",
    "footprint",
    "perchange",
    "deployed",
    "history",
    "soak",
    "broker",
)


@pytest.fixture
def change_cost(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import change_cost

    return change_cost


@pytest.fixture
def bench_run(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import run

    return run


def test_per_change_cost_runs_and_sends_a_delta_per_record(change_cost) -> None:  # type: ignore[no-untyped-def]
    figures = change_cost.measure(agents=300, records=1500)
    assert figures["deltas"] == 1500  # --push-interval 0: every record went out
    assert 0 < figures["us_per_change"] < 10_000
    assert 0 < figures["reference_us"] < 10_000
    assert figures["ratio"] == figures["us_per_change"] / figures["reference_us"]
    for name in ("reads_us", "reads_reference_us", "reads_touching_100_us"):
        assert 0 < figures[name] < 10_000, name


def test_reads_touch_the_agents_asked_for(change_cost) -> None:  # type: ignore[no-untyped-def]
    bodies = change_cost._read_bodies(agents=1000, records=300, touched=100, per_read=150)
    agents = [{body[16:23] for body in bodies[i : i + 150]} for i in (0, 150)]
    # Each read touches its own 100 agents; the next read the next 100.
    assert [len(a) for a in agents] == [100, 100] and not agents[0] & agents[1]
    everyone = change_cost._read_bodies(agents=1000, records=300, touched=1000, per_read=150)
    assert len({body[16:23] for body in everyone[:150]}) == 150


def test_per_change_rows_show_growth_and_locality(bench_run: ModuleType, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    figures = {
        "us_per_change": 40.0,
        "reference_us": 38.0,
        "reference": "the same pipeline with 100 agents",
        "metrics_listener_us": 2.0,
        "without_metrics_us": 38.0,
        "reads_us": 24.0,
        "reads_reference_us": 20.0,
        "reads_touching_100_us": 23.0,
    }

    async def measured(bench: Any, agents: int, records: int) -> dict[str, Any]:
        return figures

    monkeypatch.setattr(bench_run, "change_cost", measured)
    bench = Rows(bench_run, change_agents=[10000])
    done = defer.ensureDeferred(bench_run.phase_perchange(bench))
    assert done.called  # nothing to wait for: the figures are at hand
    assert bench.row("per record in reads of 147, 10,000 agents").ratio == 1.2
    local = bench.row("each read touching 100 of them")
    assert (local.value, local.reference, local.ratio) == ("23.0 µs", "100 agents 20.0 µs", 1.15)
    # The floor of 100 agents is its own reference: no growth row for it.
    small = Rows(bench_run, change_agents=[100])
    assert defer.ensureDeferred(bench_run.phase_perchange(small)).called
    assert not [r for r in small.rows if "reads of 147" in r.figure]


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
    for phase in PHASES:
        assert phase in out.stdout


def test_medians_and_their_spread(bench_run: ModuleType) -> None:
    assert bench_run.median([3.0, 1.0, 2.0]) == 2.0
    assert bench_run.median([4.0, 1.0, 2.0, 3.0]) == 2.5
    assert bench_run.spread([3.0, 1.0, 2.0], lambda x: f"{x:g}") == "2 [1..3]"
    assert bench_run.spread([3.0], lambda x: f"{x:g}") == "3"


class Rows:
    """What a phase's row builders need of a bench: somewhere to put rows and notes."""

    def __init__(self, run: ModuleType, **args: Any) -> None:
        self.rows: list[Any] = []
        self.notes: list[str] = []
        self.results: dict[str, Any] = {}
        self.legend: dict[str, str] = {}
        self.args = run.parse_args(["--quick"])
        for key, value in args.items():
            setattr(self.args, key, value)

    def add(self, row: Any) -> None:
        self.rows.append(row)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def row(self, figure: str) -> Any:
        (found,) = [r for r in self.rows if figure in r.figure]
        return found


def freshness(run: ModuleType, p99: float) -> Any:
    return run.Freshness(
        p50_ms=p99 / 2,
        p99_ms=p99,
        max_ms=2 * p99,
        records=100,
        samples=2000,
        seen_by_all=1.0,
        measuring=20,
        clients=200,
        connected=200,
        complete=200,
        events=100,
        kinds={"delta": 100},
        server_cpu_share=0.5,
        bench_cpu_share=0.3,
        pbx_stalls=0,
    )


def test_freshness_at_10000_agents_is_held_to_its_ratio_to_the_relay(
    bench_run: ModuleType,
) -> None:
    bench = Rows(bench_run)
    runs = [freshness(bench_run, p) for p in (9.0, 12.0, 30.0)]
    relays = [freshness(bench_run, p) for p in (6.0, 8.0, 7.0)]
    bench_run.add_freshness_rows(bench, 10000, bench_run.DAEMON, runs, relays)
    row = bench.row("p99 against the relay")
    assert row.ratio == 12.0 / 7.0
    assert row.target == "≤ 1.5×"
    assert row.met is False
    assert "[9.00 ms..30.00 ms]" in row.value


def footprint(run: ModuleType, rss_mb: float, share: float) -> Any:
    wrk = run.WrkResult(1000, 10.0, {}, {"p50": 1.0, "p99": 5.0}, 1000, 0, 0)
    load = run.Load(wrk, share * 10, share, int(rss_mb * 1024), int(rss_mb * 1024))
    return run.Footprint(load, share, int(rss_mb * 1024), int(rss_mb * 1024), 200, 200)


def test_footprint_rows_compare_with_the_bare_references(bench_run: ModuleType) -> None:
    bench = Rows(bench_run)
    idle = bench_run.Idle(120 * 1024, 125 * 1024, {})
    none = bench_run.Idle(100 * 1024, 100 * 1024, {})
    web = bench_run.Idle(100 * 1024, 100 * 1024, {})
    bench_run.add_idle_rows(bench, 10000, idle, none, web)
    row = bench.row("RSS, no clients")
    assert (row.ratio, row.target, row.met) == (1.2, "≤ 1.3×", True)
    daemon, alone, both = (footprint(bench_run, mb, 0.3) for mb in (115.0, 60.0, 100.0))
    bench_run.add_footprint_rows(bench, 10000, daemon, alone, both)
    row = bench.row("RSS (peak), same audience")
    assert (row.ratio, row.target, row.met) == (1.15, "≤ 1.15×", True)


def test_the_hourly_report_is_shown_beside_its_own_sql(bench_run: ModuleType) -> None:
    bench = Rows(bench_run, quick=False)
    report = {"rows": 360, "reference_rows": 360, "reference_sql": "SELECT"}
    month = {
        "agents": 5,
        "days": 30,
        "fill_seconds": 2.0,
        "interval_rows": 1000,
        "bytes": 4e6,
        "report_day": report | {"seconds": 0.5, "reference_seconds": 1.0},
        "report_1h": report
        | {"seconds": 6.0, "reference_seconds": 2.0, "sql_seconds": 5.0, "sql_rows": 1800},
    }
    bench_run.add_month_rows(bench, "sqlite", month)
    hourly = bench.row("month report by agent per hour")
    assert (hourly.ratio, hourly.target, hourly.met) == (3.0, "≤ 1.5×", False)
    alone = bench.row("of which the report's SQL alone, sqlite")
    assert alone.ratio == 2.5 and alone.met is None
    assert alone.value == "5.000 s, 1,800 rows"
    assert alone.reference == "bare SQL GROUP BY id, hour_start 2.000 s"


@pytest.mark.processes
def test_the_phases_beside_the_bare_references_run_small(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    tiny = {
        "--cpu-records": "2000",
        "--cpu-rounds": "1",
        "--ingest-agents": "50",
        "--deployed-agents": "300,30",
        "--deployed-changes": "100",
        "--deployed-records": "3000",
        "--deployed-rounds": "1",
    }
    argv = [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--no-pin"]
    argv += ["--only", "ingestcpu,deployed", "--json", str(report)]
    argv += [part for pair in tiny.items() for part in pair]
    out = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    done = json.loads(report.read_text())
    assert done["errors"] == {}, out.stdout
    # At these sizes a figure may be under a tick of the CPU clock: no ratio asked for.
    targets = {(r["phase"], r["target"]) for r in done["rows"]}
    assert ("ingestcpu", "≤ 6×") in targets
    assert ("ingestcpu", "≤ 1.03×") in targets
    assert ("deployed", "≤ 1.8×") in targets
    assert ("deployed", "≤ 1.2× growth") in targets


def test_the_soak_warms_up_through_the_closes_of_whole_intervals(bench_run: ModuleType) -> None:
    quarter = 1_800_000_000 - 1_800_000_000 % 900  # a quarter hour
    warmup = bench_run.soak_warmup_seconds
    # A minute before a quarter hour: that close holds a minute of the trickle, not counted.
    assert warmup(quarter - 60, 16.0, 2) == 60 + 2 * 900 + 60
    # On a quarter hour: the two intervals after it, and a minute.
    assert warmup(quarter, 16.0, 2) == 2 * 900 + 60
    assert warmup(quarter + 1, 16.0, 1) == 899 + 900 + 60
    # The least is kept when the closes come sooner; none asked for, the least alone.
    assert warmup(quarter, 40.0, 2) == 40 * 60
    assert warmup(quarter - 60, 16.0, 0) == 16 * 60
