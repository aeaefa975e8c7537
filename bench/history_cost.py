"""A month of history in a database, and how long reports of it take to answer.

A made-up month (``mitelacd.reports.bench.fill_month``: 96 intervals a day
per agent, with 20 paths and 10 groups) is written into the history database
at ``--history`` as the daemon would have written it, then the store's own
report by agent is timed over every day filled, per day and per hour. Beside
each, the reference: a bare SQL query on the same database, timed the same
way, that adds up two figures per agent (and hour) straight from the interval
table, as a reporting tool would without mitelacd's help::

    SELECT id, SUM(acd_calls), SUM(acd_talk_seconds) FROM agent_intervals
    WHERE day BETWEEN :first AND :last GROUP BY id

And the report's own statements alone (``time_report_sql``): its figures and,
by agent, its not-ready time by reason, every row read and counted but none
made into a report's row. What that takes is as close to the bare query as
the report can come while it reads what it shows.

Last, one write of 1,000 agent state spans (``time_writes``, the median of
10), as the daemon's writer makes each second at 1,000 events a second.

After the fill, PostgreSQL's statistics are brought up to date (``ANALYZE``,
as its autovacuum does soon after so many rows); SQLite's are left as the
daemon leaves them. ``bench/run.py`` runs this in a child process, once per
database; by hand::

    PYTHONPATH=. python bench/history_cost.py --history /tmp/month.db
    PYTHONPATH=. python bench/history_cost.py --postgresql --days 3

``--postgresql`` starts a throwaway PostgreSQL server (``mitelacd.testing.postgres``)
and measures a database in it. ``--step fill`` only fills the database,
``--step time`` only times a filled one (``bench/run.py`` fills both
databases at once, then times each alone).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the checkout's mitelacd, when run by hand
    sys.path.insert(0, str(ROOT))

from mitelacd.heap import YoungCollections  # noqa: E402
from mitelacd.reports.bench import (  # noqa: E402
    FIRST_DAY,
    fill_month,
    last_day,
    time_report,
    time_writes,
)
from mitelacd.reports.store import HistoryStore, open_store  # noqa: E402

#: What the line with the figures starts with, for ``bench/run.py`` to find it.
MARK = "HISTORYCOST "

Bucket = Literal["day", "1h"]

_REFERENCE = (
    "SELECT id, {bucket}SUM(acd_calls), SUM(acd_talk_seconds) FROM agent_intervals"
    " WHERE day BETWEEN :first AND :last GROUP BY id{group}"
)


def reference_sql(interval: Bucket) -> str:
    """The bare query for a report per agent over the days, or per agent and hour."""
    if interval == "day":
        return _REFERENCE.format(bucket="", group="")
    return _REFERENCE.format(bucket="hour_start, ", group=", hour_start")


def best_of(repeat: int, work: Callable[[], int]) -> tuple[float, int]:
    """The shortest of ``repeat`` runs of ``work`` in seconds, and what the last returned."""
    best, found = float("inf"), 0
    for _ in range(max(1, repeat)):
        began = time.perf_counter()
        found = work()
        best = min(best, time.perf_counter() - began)
    return best, found


def time_reference(
    store: HistoryStore, interval: Bucket, days: int, repeat: int
) -> tuple[float, int]:
    """The bare query over the filled days: the best of ``repeat`` times, and its rows."""
    query = sa.text(reference_sql(interval))
    bounds = {"first": FIRST_DAY, "last": last_day(days)}

    def run() -> int:
        with store.engine.connect() as connection:
            return len(connection.execute(query, bounds).all())

    return best_of(repeat, run)


def time_report_sql(
    store: HistoryStore, interval: Bucket, days: int, repeat: int
) -> tuple[float, int]:
    """The report's own statements alone (:meth:`HistoryStore.report_queries`), their rows
    read from the database and counted, none made into a report's row: the best of
    ``repeat`` times, and the rows read."""
    queries = store.report_queries("agent", FIRST_DAY, last_day(days), interval)

    def run() -> int:
        with store.engine.connect() as connection:
            return sum(sum(1 for _ in connection.execute(query)) for query in queries)

    return best_of(repeat, run)


def database_bytes(store: HistoryStore) -> int:
    """How much room the database takes: the SQLite file and its log, or PostgreSQL's size."""
    if store.url.path is not None:
        return sum(
            os.path.getsize(p)
            for p in (store.url.path, store.url.path + "-wal")
            if os.path.exists(p)
        )
    with store.engine.connect() as connection:
        size = connection.execute(sa.text("SELECT pg_database_size(current_database())")).scalar()
    return int(size or 0)


def fill(url: str, agents: int = 500, days: int = 30) -> dict[str, Any]:
    """Fill ``days`` days for ``agents`` agents into the empty database at ``url``.

    ``fill_seconds`` is how long the writes took (the migration before them
    and PostgreSQL's ``ANALYZE`` after them are not counted).
    """
    store = open_store(url)
    try:
        store.migrate()
        began = time.perf_counter()
        rows = fill_month(store, agents=agents, days=days)
        seconds = time.perf_counter() - began
        print(f"filled {rows:,} interval rows in {seconds:.1f} s", flush=True)
        if store.url.backend == "postgresql":
            with store.engine.connect() as connection:
                connection.execution_options(isolation_level="AUTOCOMMIT").execute(
                    sa.text("ANALYZE")
                )
        return {
            "backend": store.url.backend,
            "agents": agents,
            "days": days,
            "interval_rows": rows,
            "agent_interval_rows": store.count("agent_intervals"),
            "reason_rows": store.count("agent_reasons"),
            "fill_seconds": seconds,
            "bytes": database_bytes(store),
        }
    finally:
        store.close()


def time_reports(url: str, days: int = 30, repeat: int = 3, hour_repeat: int = 1) -> dict[str, Any]:
    """Time the reports by agent over the ``days`` filled days, and one write of 1,000 spans.

    Per report: the best of ``repeat`` runs (``hour_repeat`` for the hourly
    one, which is long) in seconds and its rows, with its bare query's.
    """
    store = open_store(url, create=False)
    # The garbage collector paced as in the daemon, whose reports these are.
    collections = YoungCollections()
    collections.startService()
    try:
        store.check_schema()
        figures: dict[str, Any] = {}
        for interval, times in (("day", repeat), ("1h", hour_repeat)):
            bucket: Bucket = "day" if interval == "day" else "1h"
            seconds, found = time_report(store, "agent", bucket, days=days, repeat=times)
            print(f"report by agent per {interval}: {seconds:.3f} s, {found:,} rows", flush=True)
            bare, bare_rows = time_reference(store, bucket, days, times)
            print(f"bare query per {interval}: {bare:.3f} s, {bare_rows:,} rows", flush=True)
            sql, sql_rows = time_report_sql(store, bucket, days, times)
            print(f"the report's SQL per {interval}: {sql:.3f} s, {sql_rows:,} rows", flush=True)
            figures[f"report_{interval}"] = {
                "seconds": seconds,
                "rows": found,
                "repeat": times,
                "reference_seconds": bare,
                "reference_rows": bare_rows,
                "reference_sql": reference_sql(bucket),
                "sql_seconds": sql,
                "sql_rows": sql_rows,
            }
        # What the daemon's writer does each second at 1,000 events/s, on the full database.
        figures["write_1000_spans_seconds"] = time_writes(store, events=1000, batches=10)
        return figures
    finally:
        collections.stopService()
        store.close()


def measure(
    url: str, agents: int = 500, days: int = 30, repeat: int = 3, hour_repeat: int = 1
) -> dict[str, Any]:
    """:func:`fill`, then :func:`time_reports`: their figures together."""
    return fill(url, agents, days) | time_reports(url, days, repeat, hour_repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--history", help="an empty database: a SQLite file or postgresql://…")
    where.add_argument(
        "--postgresql", action="store_true", help="a database in a throwaway PostgreSQL server"
    )
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each daily report")
    parser.add_argument("--hour-repeat", type=int, default=1, help="runs of each hourly report")
    parser.add_argument("--mark", action="store_true", help=f"one line {MARK.strip()} {{json}}")
    parser.add_argument(
        "--step",
        choices=("fill", "time", "both"),
        default="both",
        help="fill the empty database, time reports on a filled one, or both (default)",
    )
    args = parser.parse_args()

    def run(url: str) -> dict[str, Any]:
        if args.step == "fill":
            return fill(url, args.agents, args.days)
        if args.step == "time":
            return time_reports(url, args.days, args.repeat, args.hour_repeat)
        return measure(url, args.agents, args.days, args.repeat, args.hour_repeat)

    if args.postgresql:
        from mitelacd.testing.postgres import PostgresServer

        with PostgresServer() as server:
            figures = run(server.create_database("month"))
    else:
        figures = run(args.history)
    if args.mark:
        print(MARK + json.dumps(figures), flush=True)
    else:
        print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
