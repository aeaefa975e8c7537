"""A month of history, made up, and the time a report of it takes: for the benchmark and the tests.

:func:`fill_month` writes ``days`` days of 96 intervals for ``agents`` agents
(and a few paths and groups) into a store, as the daemon would have;
:func:`time_report` answers a report over them and says how long it took.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator
from typing import Any

from mitelacd.reports.rows import (
    FIGURES,
    INTERVAL_SECONDS,
    IntervalRow,
    ReportInterval,
    RowKind,
    StateSpan,
)
from mitelacd.reports.store import HistoryStore

#: The first day :func:`fill_month` fills, unless told otherwise.
FIRST_DAY = "2026-01-05"


def _value(integer: bool, seed: int) -> int | float:
    """Something plausible and varied, the same every run."""
    seed = (seed * 2654435761) & 0xFFFFFFFF
    if integer:
        return seed % 7
    return float(seed % 9000) / 10.0


def month_rows(
    agents: int = 500,
    days: int = 30,
    paths: int = 20,
    groups: int = 10,
    first_day: str = FIRST_DAY,
) -> Iterator[list[IntervalRow]]:
    """The rows of each day in turn (UTC days, so that every run makes the same)."""
    start = datetime.date.fromisoformat(first_day)
    for n in range(days):
        date = start + datetime.timedelta(days=n)
        day = date.isoformat()
        midnight = int(
            datetime.datetime.combine(date, datetime.time(0), datetime.timezone.utc).timestamp()
        )
        rows: list[IntervalRow] = []
        for slot in range(86400 // INTERVAL_SECONDS):
            interval_start = midnight + slot * INTERVAL_SECONDS
            hour_start = interval_start - interval_start % 3600
            for kind, count, base in (
                ("agent", agents, 1001),
                ("path", paths, 801),
                ("group", groups, 601),
            ):
                row_kind: RowKind = kind  # type: ignore[assignment]
                for i in range(count):
                    seed = n * 1_000_003 + slot * 10_007 + i * 31 + base
                    figures = {
                        f.name: _value(f.integer, seed + k) for k, f in enumerate(FIGURES[row_kind])
                    }
                    reasons: dict[Any, float] = {}
                    if row_kind == "agent" and figures.get("make_busy_seconds"):
                        reasons[("make_busy", seed % 5)] = float(figures["make_busy_seconds"])
                    if row_kind == "agent" and figures.get("dnd_seconds"):
                        reasons[("dnd", None)] = float(figures["dnd_seconds"])
                    rows.append(
                        IntervalRow(
                            kind=row_kind,
                            id=str(base + i),
                            day=day,
                            interval_start=interval_start,
                            hour_start=hour_start,
                            figures=figures,
                            reasons=reasons,
                        )
                    )
        yield rows


def fill_month(
    store: HistoryStore,
    agents: int = 500,
    days: int = 30,
    source: str = "bench",
    first_day: str = FIRST_DAY,
) -> int:
    """Write a made-up month into ``store`` (migrated); how many interval rows."""
    written = 0
    for rows in month_rows(agents, days, first_day=first_day):
        store.write(source, rows, [])
        written += len(rows)
    return written


def last_day(days: int = 30, first_day: str = FIRST_DAY) -> str:
    """The last day :func:`fill_month` filled."""
    start = datetime.date.fromisoformat(first_day)
    return (start + datetime.timedelta(days=days - 1)).isoformat()


def time_report(
    store: HistoryStore,
    by: RowKind = "agent",
    interval: ReportInterval = "day",
    days: int = 30,
    first_day: str = FIRST_DAY,
    repeat: int = 3,
) -> tuple[float, int]:
    """The best of ``repeat`` times a report over the filled days took, and its rows."""
    best = float("inf")
    rows = 0
    for _ in range(repeat):
        began = time.perf_counter()
        found = store.report(by, first_day, last_day(days, first_day), interval)
        best = min(best, time.perf_counter() - began)
        rows = len(found)
    return best, rows


def time_writes(store: HistoryStore, events: int = 1000, batches: int = 10) -> float:
    """The median time one write of ``events`` agent state spans takes (the daemon's second
    at ``events`` events/s), in seconds; :meth:`HistoryStore.write` as the writer calls it."""
    spans = [
        StateSpan(str(1001 + i % 500), "available", "on_call", 1.7e9 + i, 1.7e9 + i + 0.5, "G",
                  None, "860", 1)
        for i in range(events)
    ]  # fmt: skip
    times = []
    for n in range(batches):
        began = time.perf_counter()
        store.write("bench-writes", [], spans, batch=f"bench-{n}")
        times.append(time.perf_counter() - began)
    return sorted(times)[len(times) // 2]
