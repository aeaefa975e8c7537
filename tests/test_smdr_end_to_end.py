"""SMDR end to end: ``twistd mitelacd-sim`` into a real ``twistd mitelacd --smdr``.

The simulator runs a seeded day 400 times faster than real time and sends
SMDR in a layout with the OLI tail; the daemon reads it beside the ACD
stream, records both, keeps a SQLite history and serves HTTP. Once enough
calls have ended the simulator is stopped, so that what the daemon holds
stops moving; the same seeded day, run here up to the same number of SMDR
records (its controller clock starts where the child's log says), gives the
simulator's own count of what it decided: its ledger. The daemon's figures
must be that ledger through ``/api/v1/reports/today/paths``, the CSV report,
``/metrics``, the history's table, and ``mitelacd-replay --smdr`` of the
capture.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mitelacd import testing
from mitelacd.floor.days import DayClock
from mitelacd.sim.callers import LedgerInterval
from mitelacd.sim.service import FloorScript
from mitelacd.sim.smdrwire import encode_smdr
from mitelacd.testing.daemons import CHECKOUT

pytestmark = pytest.mark.processes

SEED, EVENTS, AGENTS, GROUPS, PATHS = 11, 900, 10, 3, 3
LAYOUT = "extended_digits+tta4+oli"
#: Enough ended calls to see every outcome's figures move.
LINES = 50
COUNTS = (
    "offered", "answered", "abandoned", "short_abandoned", "interflowed", "requeued",
    "unavailable", "answered_within_target", "time_to_answer_seconds",
)  # fmt: skip


def get(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
        body: bytes = answer.read()
        return body


def get_json(port: int, path: str) -> Any:
    return json.loads(get(port, path))


def until(check: Callable[[], Any], timeout: float = 90.0) -> Any:
    end = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > end:
            raise AssertionError(f"not within {timeout} s: {check}")
        time.sleep(0.2)


def sim_day(start: datetime.datetime, lines: int) -> tuple[list[LedgerInterval], list[bytes]]:
    """The simulator's day up to its ``lines``-th SMDR record: its ledger, and the lines."""
    from mitelacd.floor.smdr import layout_named

    script = FloorScript(
        seed=SEED, agents=AGENTS, groups=GROUPS, paths=PATHS, events=EVENTS, start=start
    )
    sent: list[bytes] = []
    for moment in script.timeline():
        sent += [encode_smdr(e, layout_named(LAYOUT)) for e in moment.smdr]
        if len(sent) >= lines:
            break
    assert len(sent) == lines, "a moment's records are sent in one write"
    return list(script.smdr_ledger().intervals), sent


def summed(intervals: list[LedgerInterval]) -> dict[str, Counter[str]]:
    paths: dict[str, Counter[str]] = {}
    for i in intervals:
        paths.setdefault(i.path, Counter()).update({n: getattr(i, n) for n in COUNTS})
    return paths


def test_the_simulators_day_through_the_daemon(
    tmp_path: Path, processes: Callable[..., testing.Twistd]
) -> None:
    sim = processes(
        "mitelacd-sim",
        *("--port", "0", "--smdr-port", "0", "--smdr-layout", LAYOUT, "--speed", "400"),
        *("--seed", str(SEED), "--events", str(EVENTS), "--agents", str(AGENTS)),
        *("--groups", str(GROUPS), "--paths", str(PATHS)),
        cwd=tmp_path,
    )
    acd_port = sim.wait_for(r"simulated ICP feed on \S+ port (\d+)").group(1)
    found = sim.wait_for(r"simulated ICP SMDR on \S+ port (\d+) .* starts at ([0-9T:-]+)\)")
    smdr_port, start = found.group(1), datetime.datetime.fromisoformat(found.group(2))
    captures = tmp_path / "captures"
    captures.mkdir()
    history = tmp_path / "history.db"
    daemon = processes(
        "mitelacd",
        *("--host", "127.0.0.1", "--port", acd_port, "--smdr", f"127.0.0.1:{smdr_port}"),
        *("--file", str(tmp_path / "mitel_data.json"), "--history", f"sqlite:///{history}"),
        *("--record", str(captures), "--http", "tcp:0:interface=127.0.0.1"),
        cwd=tmp_path,
    )
    port = daemon.http_port()
    until(lambda: get_json(port, "/api/v1/feed")["feed"]["smdr"]["lines"] >= LINES)
    sim.stop()
    daemon.wait_for(r"lost the SMDR link")
    link = get_json(port, "/api/v1/feed")["feed"]["smdr"]
    assert link["unreadable"] == 0 and link["unclassified"] == 0 and link["too_late"] == 0
    assert link["layouts"] == {LAYOUT: link["lines"]}
    ledger, lines = sim_day(start, link["lines"])
    outcomes = {n for n in COUNTS[1:7] if sum(getattr(i, n) for i in ledger)}
    assert {"answered", "abandoned"} <= outcomes, outcomes

    # Today's figures per path, over the report day's intervals.
    today = get_json(port, "/api/v1/reports/today/paths")
    days = DayClock(datetime.time(0))
    of_today = [i for i in ledger if days.day(i.start).isoformat() == today["day"]]
    expected = summed(of_today)
    rows = {r["id"]: r for r in today["paths"] if r["offered"] is not None}
    assert sorted(rows) == sorted(expected)
    for path, counts in expected.items():
        assert {n: rows[path][n] for n in COUNTS} == dict(counts), path
        served = counts["offered"] - counts["short_abandoned"]
        level = round(counts["answered_within_target"] / served * 100, 3) if served else None
        assert rows[path]["service_level_percent"] == level
        assert rows[path]["provisional"] is True
        assert rows[path]["answered_difference"] == counts["answered"] - rows[path]["acd_calls"]

    # The CSV report of the day, by path.
    csv_text = get(port, f"/api/v1/reports?by=path&interval=day&format=csv&from={today['day']}")
    csv_rows = {r["id"]: r for r in csv.DictReader(io.StringIO(csv_text.decode()))}
    for path, counts in expected.items():
        assert {n: int(csv_rows[path][n]) for n in COUNTS} == dict(counts), path

    # The counters, over everything read.
    metrics = get(port, "/metrics").decode()
    total = summed(ledger)
    for path, counts in total.items():
        for name in ("offered", "abandoned", "answered_within_target"):
            line = f'mitelacd_path_{name}_total{{path="{path}"}} {float(counts[name])}'
            assert line in metrics, line
    assert f'mitelacd_smdr_records_total{{layout="{LAYOUT}",outcome="answered"}}' in metrics

    daemon.stop_cleanly()

    # The history keeps every line and every interval.
    with sqlite3.connect(history) as db:
        kept = [row[0] for row in db.execute("SELECT text FROM smdr_lines ORDER BY received_at")]
        stored = {
            (row[0], row[1]): dict(zip(COUNTS, row[2:], strict=True))
            for row in db.execute(
                f"SELECT path, interval_start, {', '.join(COUNTS)} FROM smdr_path_intervals"
            )
        }
    assert kept == [line.rstrip(b"\r\n").decode() for line in lines]
    assert stored == {(i.path, i.start): {n: getattr(i, n) for n in COUNTS} for i in ledger}

    # The capture, replayed, gives the same figures.
    replayed = subprocess.run(
        [sys.executable, "-m", "mitelacd.feed.replay", "--smdr", "--quiet"]
        + [str(p) for p in captures.iterdir()],
        capture_output=True,
        check=True,
        env={"PYTHONPATH": str(CHECKOUT)},
        timeout=60,
    )
    intervals = json.loads(replayed.stdout)["paths"]
    assert {(r["path"], r["start"]): {n: r[n] for n in COUNTS} for r in intervals} == stored
