"""The history database, on SQLite and on a real PostgreSQL server: one suite for both.

Every store test runs twice, on a SQLite file and on a database of the
session's PostgreSQL server (tests/conftest.py). The service tests run the
writer's real threads against the real databases, on a Clock the test moves.
"""

from __future__ import annotations

import csv
import datetime
import io
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_twisted
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError
from twisted.internet import reactor, threads
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.task import Clock, deferLater
from twisted.logger import LogLevel

from mitelacd.reports.format import report_csv
from mitelacd.reports.rows import (
    FIGURES,
    REPORT_INTERVALS,
    ROW_KINDS,
    IntervalRow,
    ReasonKind,
    RowKind,
    StateSpan,
)
from mitelacd.reports.store import (
    DAY_TABLES,
    HOUR_TABLES,
    INTERVAL_TABLES,
    MIGRATIONS,
    SCHEMA_VERSION,
    TABLES,
    HistoryMissing,
    HistorySchemaError,
    HistoryStore,
    HistoryURLError,
    Migration,
    day_bounds,
    open_store,
    parse_url,
    problem_kind,
    redact,
)
from mitelacd.reports.writer import HistoryService, HistoryUnavailable
from mitelacd.testing import capture_log
from mitelacd.testing.history import FlakyHistoryStore, StuckHistoryStore
from mitelacd.testing.postgres import PostgresServer

#: 2026-03-09 00:00 UTC; every test day is a UTC day (the store never looks at time zones
#: but for state spans, and those tests say which zone).
MIDNIGHT = 1773014400
DAY = "2026-03-09"
NEXT_DAY = "2026-03-10"
UTC = datetime.timezone.utc


def at(hhmm: str, day_offset: int = 0) -> int:
    hours, minutes = hhmm.split(":")
    return MIDNIGHT + day_offset * 86400 + int(hours) * 3600 + int(minutes) * 60


def row(
    kind: RowKind,
    identifier: str,
    hhmm: str,
    day_offset: int = 0,
    reasons: Mapping[tuple[ReasonKind, int | None], float] | None = None,
    **figures: int | float,
) -> IntervalRow:
    """A row of the interval starting at ``hhmm``; figures not named are 0."""
    start = at(hhmm, day_offset)
    unknown = set(figures) - {f.name for f in FIGURES[kind]}
    assert not unknown, unknown
    values: dict[str, int | float] = {
        f.name: figures.get(f.name, 0 if f.integer else 0.0) for f in FIGURES[kind]
    }
    day = (datetime.date(2026, 3, 9) + datetime.timedelta(days=day_offset)).isoformat()
    return IntervalRow(
        kind=kind,
        id=identifier,
        day=day,
        interval_start=start,
        hour_start=start - start % 3600,
        figures=values,
        reasons=dict(reasons or {}),
    )


def span(agent: str, start: float, end: float, state: str = "available", **more: Any) -> StateSpan:
    return StateSpan(
        agent=agent,
        state=state,
        next_state=more.pop("next_state", "on_call"),
        start=start,
        end=end,
        code=more.pop("code", "G"),
        **more,
    )


# --- the two backends --------------------------------------------------------------------------


@pytest.fixture
def store(history_url: str) -> Iterator[HistoryStore]:
    opened = open_store(history_url)
    opened.migrate()
    try:
        yield opened
    finally:
        opened.close()


# --- URLs --------------------------------------------------------------------------------------


def test_urls(tmp_path: Path) -> None:
    bare = parse_url(str(tmp_path / "h.db"))
    assert (bare.backend, bare.path) == ("sqlite", str(tmp_path / "h.db"))
    assert parse_url(f"sqlite:///{tmp_path}/h.db").path == str(tmp_path / "h.db")
    relative = parse_url("sqlite:///h.db")
    assert relative.path is not None and relative.path.endswith("/h.db")
    pg = parse_url("postgresql://report:s3cret@db.example:5433/calls")
    assert pg.backend == "postgresql"
    assert pg.engine_url.drivername == "postgresql+psycopg"
    assert pg.engine_url.password == "s3cret"
    assert pg.shown == "postgresql://report:***@db.example:5433/calls"
    assert parse_url("postgres://h/calls").engine_url.drivername == "postgresql+psycopg"
    assert redact("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
    assert redact("mysql://u:pw@h/db") == "mysql://u:***@h/db"
    for wrong, words in [
        ("mysql://u:pw@h/db", "unknown history database 'mysql://u:***@h/db'"),
        ("", "empty"),
        ("sqlite://", "names a file"),
        ("postgresql://h", "names no database"),
        (str(tmp_path), "is a folder"),
    ]:
        with pytest.raises(HistoryURLError) as caught:
            parse_url(wrong)
        assert words in str(caught.value)
        assert "pw" not in str(caught.value)


def test_a_missing_file_is_not_made_when_reading(tmp_path: Path) -> None:
    path = tmp_path / "none.db"
    with pytest.raises(HistoryMissing, match="no history database at"):
        open_store(str(path), create=False)
    assert not path.exists()


# --- schema ------------------------------------------------------------------------------------


def test_migrate_makes_every_table_and_is_idempotent(history_url: str) -> None:
    store = open_store(history_url)
    try:
        assert store.version() == 0
        assert store.migrate() == SCHEMA_VERSION
        assert store.migrate() == SCHEMA_VERSION
        assert store.version() == SCHEMA_VERSION
        inspector = sa.inspect(store.engine)
        names = set(inspector.get_table_names())
        assert {*INTERVAL_TABLES.values(), *DAY_TABLES.values(), *HOUR_TABLES.values()} <= names
        assert {"agent_reasons", "agent_reason_days", "agent_reason_hours"} <= names
        assert {"agent_states", "mitelacd_schema"} <= names
        # A column per figure, named as the figure, of the figure's type.
        for kind, name in INTERVAL_TABLES.items():
            columns = {c["name"]: c["type"] for c in inspector.get_columns(name)}
            for figure in FIGURES[kind]:
                expected = sa.BigInteger if figure.integer else sa.Double
                assert isinstance(columns[figure.name], expected) or (
                    # SQLite reflects DOUBLE as its own type.
                    not figure.integer and "DOUBLE" in str(columns[figure.name]).upper()
                ), (name, figure.name, columns[figure.name])
        indexes = {i["name"] for i in inspector.get_indexes("agent_intervals")}
        assert {"agent_intervals_day_id", "agent_intervals_interval_start"} <= indexes
        state_indexes = {i["name"] for i in inspector.get_indexes("agent_states")}
        assert state_indexes == {"agent_states_start_at", "agent_states_agent_start_at"}
        with store.engine.connect() as connection:
            applied = connection.execute(sa.text("SELECT version FROM mitelacd_schema")).all()
        assert [v for (v,) in applied] == [m.version for m in MIGRATIONS]
    finally:
        store.close()


def test_a_newer_database_is_refused(history_url: str) -> None:
    store = open_store(history_url)
    try:
        store.migrate()
        with store.engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO mitelacd_schema (version, description, applied_at)"
                    " VALUES (99, 'from the future', 0)"
                )
            )
        with pytest.raises(HistorySchemaError) as caught:
            store.migrate()
        assert "schema version 99, newer than this mitelacd knows" in str(caught.value)
        with pytest.raises(HistorySchemaError, match="newer"):
            store.check_schema()
    finally:
        store.close()


def test_upgrading_from_version_1(history_url: str) -> None:
    """A database at version 1 gets the later steps, once each, in order."""
    applied: list[int] = []
    note, index = SCHEMA_VERSION + 1, SCHEMA_VERSION + 2

    def add_column(connection: sa.Connection) -> None:
        applied.append(note)
        connection.execute(sa.text("ALTER TABLE agent_states ADD COLUMN note TEXT"))

    def add_index(connection: sa.Connection) -> None:
        applied.append(index)
        connection.execute(sa.text("CREATE INDEX agent_states_note ON agent_states (note)"))

    later = (
        *MIGRATIONS,
        Migration(note, "a note per state", add_column),
        Migration(index, "an index on it", add_index),
    )
    store = open_store(history_url)
    try:
        assert store.migrate(MIGRATIONS[:1]) == 1
        store.write("pbx", [row("agent", "1001", "08:00", acd_calls=1)], [])
        assert store.migrate(later) == index
        assert store.migrate(later) == index
        assert applied == [note, index]
        with store.engine.connect() as connection:
            versions = connection.execute(
                sa.text("SELECT version FROM mitelacd_schema ORDER BY version")
            ).all()
        assert [v for (v,) in versions] == [m.version for m in later]
        columns = {c["name"] for c in sa.inspect(store.engine).get_columns("agent_states")}
        assert "note" in columns
        # What was there before is still there.
        assert store.count("agent_intervals") == 1
    finally:
        store.close()


def test_version_2_adds_the_wrap_up_of_paths(history_url: str) -> None:
    """A version 1 database gets ``wrap_up_seconds`` on its path tables; its rows read 0."""
    store = open_store(history_url)
    try:
        assert store.migrate(MIGRATIONS[:1]) == 1
        inspector = sa.inspect(store.engine)
        for name in ("path_intervals", "path_days"):
            assert "wrap_up_seconds" not in {c["name"] for c in inspector.get_columns(name)}
        # A path's interval as version 1 kept it.
        with store.engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO path_intervals (source, day, interval_start, hour_start, id,"
                    " acd_calls, acd_talk_seconds, hold_seconds)"
                    " VALUES ('pbx', :day, :start, :start, '860', 2, 150.0, 10.0)"
                ),
                {"day": DAY, "start": at("08:00")},
            )
            connection.execute(
                sa.text(
                    "INSERT INTO path_days (source, day, id, first_interval_start,"
                    " acd_calls, acd_talk_seconds, hold_seconds)"
                    " VALUES ('pbx', :day, '860', :start, 2, 150.0, 10.0)"
                ),
                {"day": DAY, "start": at("08:00")},
            )
        assert store.migrate(MIGRATIONS[:2]) == 2
        assert store.migrate() == SCHEMA_VERSION
        inspector = sa.inspect(store.engine)
        for name in ("path_intervals", "path_days"):
            columns = {c["name"]: c for c in inspector.get_columns(name)}
            # The columns as a new database has them, in the same order.
            assert list(columns) == [c.name for c in TABLES[name].columns]
            added = columns["wrap_up_seconds"]
            assert not added["nullable"]
            assert "0" in str(added["default"])
            assert "DOUBLE" in str(added["type"]).upper()
        # Other tables are as they were.
        agent_columns = [c["name"] for c in inspector.get_columns("agent_intervals")]
        assert agent_columns == [c.name for c in TABLES["agent_intervals"].columns]
        # The old row reads 0 seconds of wrap-up; a new one adds its own.
        (old,) = store.report("path", DAY, DAY, "15m")
        assert (old["wrap_up_seconds"], old["average_handle_seconds"]) == (0.0, (150 + 10) / 2)
        store.write("pbx", [row("path", "860", "08:15", acd_calls=1, acd_talk_seconds=50.0,
                                wrap_up_seconds=30.0)], [])  # fmt: skip
        for interval in ("1h", "day"):
            (both,) = store.report("path", DAY, DAY, interval)
            assert (both["acd_calls"], both["wrap_up_seconds"]) == (3, 30.0)
            assert both["average_handle_seconds"] == (150 + 10 + 50 + 30) / 3
        assert [
            (r["start"], r["wrap_up_seconds"]) for r in store.report("path", DAY, DAY, "15m")
        ] == [(at("08:00"), 0.0), (at("08:15"), 30.0)]
        assert store.migrate() == SCHEMA_VERSION
    finally:
        store.close()


def test_version_5_fills_the_hour_tables_from_the_rows_there(history_url: str) -> None:
    """A database at version 4 reports by hour, once upgraded, as it did before."""
    store = open_store(history_url)
    try:
        assert store.migrate(MIGRATIONS[:4]) == 4
        names = set(sa.inspect(store.engine).get_table_names())
        assert not names & {*HOUR_TABLES.values(), "agent_reason_hours"}
        for source, rows in hour_batches():
            store.write(source, rows, [])
        spans = [span("1001", at("08:00"), at("08:01"))]
        store.write("north", [row("group", "602", "10:00", reports=3)], spans)
        before = {
            (kind, interval): store.report(kind, DAY, THIRD_DAY, interval)
            for kind in ROW_KINDS
            for interval in REPORT_INTERVALS
        }
        assert len(before["agent", "1h"]) == 6
    finally:
        store.close()
    store = open_store(history_url)
    try:
        assert MIGRATIONS[4].version == SCHEMA_VERSION == 5
        assert store.migrate() == SCHEMA_VERSION
        inspector = sa.inspect(store.engine)
        for name in (*HOUR_TABLES.values(), "agent_reason_hours"):
            columns = inspector.get_columns(name)
            assert [c["name"] for c in columns] == [c.name for c in TABLES[name].columns]
        assert store.count("agent_hours") == 7 and store.count("group_hours") == 3
        assert store.count("agent_reason_hours") == 6
        for (kind, interval), reported in before.items():
            assert store.report(kind, DAY, THIRD_DAY, interval) == reported, (kind, interval)
        check_hours_match_intervals(store)
        # Writes after the step add to the rows it made.
        store.write("south", [row("agent", "1001", "08:45", acd_calls=1,
                                  reasons={("make_busy", 3): 2.0}, make_busy_seconds=2.0)], [])  # fmt: skip
        assert store.count("agent_hours") == 7 and store.count("agent_reason_hours") == 6
        check_hours_match_intervals(store)
        with store.engine.connect() as connection:
            applied = connection.execute(
                sa.text("SELECT description FROM mitelacd_schema WHERE version = 5")
            ).scalar()
        assert applied == (
            "agent_hours, path_hours, group_hours and agent_reason_hours: the figures per hour"
        )
    finally:
        store.close()


def test_a_failed_step_leaves_the_version_as_it_was(history_url: str) -> None:
    def broken(connection: sa.Connection) -> None:
        connection.execute(sa.text("CREATE TABLE half_done (x INTEGER)"))
        raise RuntimeError("the step failed half way")

    store = open_store(history_url)
    try:
        store.migrate()
        with pytest.raises(RuntimeError):
            store.migrate((*MIGRATIONS, Migration(SCHEMA_VERSION + 1, "broken", broken)))
        assert store.version() == SCHEMA_VERSION
        assert "half_done" not in sa.inspect(store.engine).get_table_names()
    finally:
        store.close()


def test_a_database_of_someone_else_is_refused(history_url: str) -> None:
    store = open_store(history_url)
    try:
        with store.engine.begin() as connection:
            connection.execute(sa.text("CREATE TABLE agent_states (x INTEGER)"))
        with pytest.raises(HistorySchemaError, match="not a mitelacd history database"):
            store.migrate()
    finally:
        store.close()


# --- reports -----------------------------------------------------------------------------------


def agent_rows() -> list[IntervalRow]:
    return [
        # 08:00: two parts (a restart inside the interval), and one for 999.
        row(
            "agent", "1001", "08:00",
            reasons={("make_busy", 3): 60.0, ("dnd", None): 10.0},
            acd_calls=2, acd_talk_seconds=100.5, hold_seconds=5.25,
            make_busy_seconds=60.0, dnd_seconds=10.0, logged_in_seconds=400.0,
        ),
        row(
            "agent", "1001", "08:00",
            reasons={("make_busy", 3): 30.0, ("make_busy", 1): 15.5},
            acd_calls=1, acd_talk_seconds=20.25, make_busy_seconds=45.5, logged_in_seconds=500.0,
        ),
        row("agent", "999", "08:00", acd_calls=4, acd_talk_seconds=200.0),
        row("agent", "1001", "08:45", acd_calls=1, acd_talk_seconds=30.0, wrap_ups=1),
        row("agent", "1001", "09:00", acd_calls=5, acd_talk_seconds=50.0,
            reasons={("make_busy", None): 7.0}, make_busy_seconds=7.0),
        row("agent", "1001", "08:00", day_offset=1, acd_calls=9, acd_talk_seconds=90.0),
    ]  # fmt: skip


def pick(rows: Sequence[dict[str, Any]], *names: str) -> list[tuple[Any, ...]]:
    return [tuple(r[n] for n in names) for r in rows]


def test_agents_per_interval_hour_and_day(store: HistoryStore) -> None:
    store.write("pbx", agent_rows(), [])
    quarter = store.report("agent", DAY, NEXT_DAY, "15m")
    assert pick(quarter, "id", "day", "start", "acd_calls", "acd_talk_seconds") == [
        ("999", DAY, at("08:00"), 4, 200.0),
        ("1001", DAY, at("08:00"), 3, 120.75),
        ("1001", DAY, at("08:45"), 1, 30.0),
        ("1001", DAY, at("09:00"), 5, 50.0),
        ("1001", NEXT_DAY, at("08:00", 1), 9, 90.0),
    ]
    first = quarter[1]
    assert first["hold_seconds"] == 5.25
    assert first["logged_in_seconds"] == 900.0
    assert first["make_busy_seconds"] == 105.5
    assert first["not_ready_seconds"] == 115.5
    assert first["acd_talk_average_seconds"] == 40.25
    assert first["make_busy_by_reason"] == [
        {"reason": 1, "seconds": 15.5},
        {"reason": 3, "seconds": 90.0},
    ]
    assert first["dnd_by_reason"] == [{"reason": None, "seconds": 10.0}]
    assert quarter[0]["acd_talk_average_seconds"] == 50.0
    assert quarter[0]["make_busy_by_reason"] == []
    assert isinstance(first["acd_calls"], int) and isinstance(first["hold_seconds"], float)
    assert set(FIGURES["agent"]) <= set(FIGURES["agent"])
    assert {f.name for f in FIGURES["agent"]} <= set(first)

    hours = store.report("agent", DAY, NEXT_DAY, "1h")
    assert pick(hours, "id", "start", "acd_calls", "acd_talk_seconds", "wrap_ups") == [
        ("999", at("08:00"), 4, 200.0, 0),
        ("1001", at("08:00"), 4, 150.75, 1),
        ("1001", at("09:00"), 5, 50.0, 0),
        ("1001", at("08:00", 1), 9, 90.0, 0),
    ]
    assert hours[3]["make_busy_by_reason"] == []
    assert hours[2]["make_busy_by_reason"] == [{"reason": None, "seconds": 7.0}]

    days = store.report("agent", DAY, NEXT_DAY, "day")
    assert pick(days, "id", "day", "start", "acd_calls", "acd_talk_seconds") == [
        ("999", DAY, at("08:00"), 4, 200.0),
        ("1001", DAY, at("08:00"), 9, 200.75),
        ("1001", NEXT_DAY, at("08:00", 1), 9, 90.0),
    ]
    whole = days[1]
    assert whole["make_busy_by_reason"] == [
        {"reason": 1, "seconds": 15.5},
        {"reason": 3, "seconds": 90.0},
        {"reason": None, "seconds": 7.0},
    ]
    assert whole["not_ready_seconds"] == 122.5
    assert whole["acd_talk_average_seconds"] == round(200.75 / 9, 3)
    # One day only; one agent only; an agent without calls has no average.
    assert [r["id"] for r in store.report("agent", NEXT_DAY, NEXT_DAY)] == ["1001"]
    assert [r["id"] for r in store.report("agent", DAY, DAY, ids=["999"])] == ["999"]
    store.write("pbx", [row("agent", "1002", "10:00", logged_in_seconds=60.0)], [])
    idle = store.report("agent", DAY, DAY, ids=["1002"])[0]
    assert idle["acd_talk_average_seconds"] is None
    assert store.report("agent", "2026-01-01", "2026-01-31") == []


def test_sources_apart_and_together(store: HistoryStore) -> None:
    store.write("north", [row("agent", "1001", "08:00", acd_calls=2)], [])
    store.write("south", [row("agent", "1001", "08:00", acd_calls=3)], [])
    for interval in ("15m", "1h", "day"):
        assert [r["acd_calls"] for r in store.report("agent", DAY, DAY, interval)] == [5]
        north = store.report("agent", DAY, DAY, interval, source="north")
        assert [r["acd_calls"] for r in north] == [2]
        assert store.report("agent", DAY, DAY, interval, source="west") == []


def queue_rows(kind: RowKind) -> list[IntervalRow]:
    extra: dict[str, Any] = {"acd_calls": 2} if kind == "path" else {}
    return [
        row(kind, "860", "08:00", reports=60, max_waiting=4, max_longest_wait_seconds=30,
            waiting_seconds=900.0, covered_seconds=600.0, **extra),
        row(kind, "860", "08:00", reports=20, max_waiting=7, max_longest_wait_seconds=12,
            waiting_seconds=300.0, covered_seconds=300.0, **extra),
        row(kind, "860", "08:15", reports=60, max_waiting=2, max_longest_wait_seconds=95,
            waiting_seconds=0.0, covered_seconds=900.0),
        row(kind, "861", "08:15", reports=0),
    ]  # fmt: skip


@pytest.mark.parametrize("kind", ["path", "group"])
def test_queues_take_the_largest_and_the_mean(store: HistoryStore, kind: RowKind) -> None:
    store.write("pbx", queue_rows(kind), [])
    quarter = store.report(kind, DAY, DAY, "15m")
    assert pick(quarter, "id", "start", "reports", "max_waiting", "max_longest_wait_seconds") == [
        ("860", at("08:00"), 80, 7, 30),
        ("860", at("08:15"), 60, 2, 95),
        ("861", at("08:15"), 0, 0, 0),
    ]
    assert [r["mean_waiting"] for r in quarter] == [round(1200 / 900, 3), 0.0, None]
    for interval in ("1h", "day"):
        whole = store.report(kind, DAY, DAY, interval)
        assert pick(whole, "id", "reports", "max_waiting", "max_longest_wait_seconds") == [
            ("860", 140, 7, 95),
            ("861", 0, 0, 0),
        ]
        assert whole[0]["waiting_seconds"] == 1200.0
        assert whole[0]["covered_seconds"] == 1800.0
        assert whole[0]["mean_waiting"] == round(1200 / 1800, 3)
        assert whole[1]["mean_waiting"] is None
        assert "make_busy_by_reason" not in whole[0]
    if kind == "path":
        assert store.report("path", DAY, DAY)[0]["acd_calls"] == 4


def handling_rows() -> list[IntervalRow]:
    return [
        # 08:00 in two parts (a restart inside the interval).
        row("agent", "1001", "08:00", acd_calls=1, acd_talk_seconds=60.0, wrap_up_seconds=20.0,
            logged_in_seconds=500.0),
        row("agent", "1001", "08:00", acd_talk_seconds=40.0, logged_in_seconds=400.0),
        row("agent", "1001", "08:15", acd_calls=3, acd_talk_seconds=240.0, hold_seconds=30.0,
            wrap_up_seconds=60.0, logged_in_seconds=900.0, make_busy_seconds=300.0),
        # No call, and not ready the whole time: neither has a divisor.
        row("agent", "1001", "08:30", personal_seconds=90.0, outgoing_seconds=0.0,
            logged_in_seconds=900.0, make_busy_seconds=600.0, dnd_seconds=300.0),
        row("agent", "1001", "09:00", acd_calls=2, acd_talk_seconds=50.0, wrap_up_seconds=10.0,
            logged_in_seconds=600.0, dnd_seconds=600.0),
        row("path", "860", "08:00", acd_calls=2, acd_talk_seconds=100.0, hold_seconds=10.0,
            wrap_up_seconds=30.0),
        row("path", "860", "08:15", wrap_up_seconds=15.0),
        row("path", "860", "09:00", acd_calls=1, acd_talk_seconds=20.0),
    ]  # fmt: skip


def shown(value: float) -> float:
    """A ratio as reports show it: to 3 decimals."""
    return round(value, 3)


def test_handling_figures_are_worked_out_from_the_sums(store: HistoryStore) -> None:
    """Sums first, then the ratio: an hour's or a day's is not the mean of its intervals'."""
    store.write("pbx", handling_rows(), [])
    quarter = store.report("agent", DAY, DAY, "15m")
    assert pick(quarter, "start", "average_handle_seconds", "occupancy_percent") == [
        # (talk + hold + wrap-up) / calls; (those + personal + outgoing) / ready x 100
        (at("08:00"), (100 + 20) / 1, shown((100 + 20) / 900 * 100)),
        (at("08:15"), (240 + 30 + 60) / 3, shown((240 + 30 + 60) / (900 - 300) * 100)),
        (at("08:30"), None, None),
        (at("09:00"), (50 + 10) / 2, None),
    ]
    hours = store.report("agent", DAY, DAY, "1h")
    handled = 100 + 20 + 240 + 30 + 60
    assert pick(hours, "start", "average_handle_seconds", "occupancy_percent") == [
        (at("08:00"), handled / 4, shown((handled + 90) / (2700 - 300 - 900) * 100)),
        (at("09:00"), 30.0, None),
    ]
    (day,) = store.report("agent", DAY, DAY, "day")
    assert day["average_handle_seconds"] == (handled + 60) / 6
    assert day["occupancy_percent"] == shown((handled + 60 + 90) / (3300 - 900 - 900) * 100)
    # The mean of the intervals' averages would be another figure.
    assert day["average_handle_seconds"] != (120.0 + 110.0 + 30.0) / 3

    paths = store.report("path", DAY, DAY, "15m")
    assert [r["average_handle_seconds"] for r in paths] == [(100 + 10 + 30) / 2, None, 20.0]
    assert "occupancy_percent" not in paths[0]
    (path_hour, _) = store.report("path", DAY, DAY, "1h")
    assert path_hour["average_handle_seconds"] == (100 + 10 + 30 + 15) / 2
    (path_day,) = store.report("path", DAY, DAY, "day")
    assert path_day["average_handle_seconds"] == shown((100 + 10 + 30 + 15 + 20) / 3)

    # CSV: a column each, empty where there is no divisor.
    table = list(csv.DictReader(io.StringIO(report_csv(quarter, "agent"))))
    assert [(r["average_handle_seconds"], r["occupancy_percent"]) for r in table] == [
        ("120", "13.333"),
        ("110", "55"),
        ("", ""),
        ("30", ""),
    ]
    path_table = list(csv.DictReader(io.StringIO(report_csv(paths, "path"))))
    assert [r["average_handle_seconds"] for r in path_table] == ["70", "", "20"]
    assert [r["wrap_up_seconds"] for r in path_table] == ["30", "15", "0"]


def test_a_report_asks_for_what_exists(store: HistoryStore) -> None:
    with pytest.raises(ValueError, match="by must be"):
        store.report("queue", DAY, DAY)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="interval must be"):
        store.report("agent", DAY, DAY, "5m")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a day"):
        store.report("agent", "2026-3-9", DAY)


# --- reports by hour ---------------------------------------------------------------------------

THIRD_DAY = "2026-03-11"


def from_intervals(
    store: HistoryStore,
    by: RowKind,
    first_day: str,
    last_day: str,
    source: str | None = None,
    ids: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """The report by hour as it was before the hour tables: the interval rows added up."""
    return store._report(by, first_day, last_day, "1h", source, ids, (), hours=False)


def hour_batches() -> list[tuple[str, list[IntervalRow]]]:
    """Writes of two sources over three days, as (source, rows), in the order written.

    Agent 1001's 08:00 hour on the first day comes in two writes (08:00 and a
    part of 08:00 again after a restart, then 08:15 and 08:45), one of them
    with two rows of the same hour; reasons with and without a code, the same
    code in several parts; paths and groups with peaks (MAX) and sums.
    """
    dnd: tuple[ReasonKind, int | None] = ("dnd", None)
    first = [
        row("agent", "1001", "08:00", reasons={("make_busy", 3): 60.0, dnd: 10.5},
            acd_calls=2, acd_talk_seconds=100.5, make_busy_seconds=60.0, dnd_seconds=10.5,
            logged_in_seconds=900.0, state_available_seconds=120.25),
        row("agent", "999", "08:00", acd_calls=4, acd_talk_seconds=200.0, holds=1,
            hold_seconds=12.75, logged_in_seconds=900.0),
        row("agent", "1001", "09:15", reasons={("make_busy", None): 7.0}, make_busy_seconds=7.0,
            logged_in_seconds=600.0),
        row("path", "860", "08:00", acd_calls=3, acd_talk_seconds=150.0, reports=60,
            max_waiting=4, max_longest_wait_seconds=30, waiting_seconds=900.0,
            covered_seconds=600.0, wrap_up_seconds=20.5),
        row("path", "860", "08:15", acd_calls=1, reports=60, max_waiting=9,
            max_longest_wait_seconds=12, waiting_seconds=300.0, covered_seconds=900.0),
        row("group", "601", "08:00", reports=60, max_waiting=2, max_longest_wait_seconds=95,
            waiting_seconds=450.0, covered_seconds=900.0),
        row("agent", "1001", "08:00", day_offset=1, acd_calls=9, acd_talk_seconds=90.0,
            reasons={dnd: 30.0}, dnd_seconds=30.0),
    ]  # fmt: skip
    second = [
        # The rest of the 08:00 hour: the interval's other part, then two more.
        row("agent", "1001", "08:00", reasons={("make_busy", 3): 30.0, ("make_busy", 1): 15.5},
            acd_calls=1, acd_talk_seconds=20.25, make_busy_seconds=45.5,
            logged_in_seconds=300.0),
        row("agent", "1001", "08:15", reasons={dnd: 4.5, ("make_busy", 1): 0.5}, acd_calls=3,
            acd_talk_seconds=240.0, wrap_ups=2, wrap_up_seconds=60.0, dnd_seconds=4.5,
            make_busy_seconds=0.5, logged_in_seconds=900.0),
        row("agent", "1001", "08:45", acd_calls=1, acd_talk_seconds=30.0, rang_unanswered=1,
            logged_in_seconds=900.0),
        row("path", "860", "08:30", acd_calls=2, reports=60, max_waiting=3,
            max_longest_wait_seconds=140, waiting_seconds=60.0, covered_seconds=900.0),
        row("path", "860", "08:00", reports=20, max_waiting=7, waiting_seconds=300.0,
            covered_seconds=300.0),
        row("group", "601", "08:15", reports=60, max_waiting=5, max_longest_wait_seconds=40,
            waiting_seconds=900.0, covered_seconds=900.0),
        row("agent", "1001", "23:45", day_offset=2, acd_calls=1, acd_talk_seconds=5.0),
    ]  # fmt: skip
    other = [
        row("agent", "1001", "08:30", reasons={("make_busy", 3): 12.0}, acd_calls=5,
            acd_talk_seconds=75.0, make_busy_seconds=12.0, logged_in_seconds=900.0),
        row("agent", "1002", "08:30", acd_calls=1, acd_talk_seconds=10.0),
        row("path", "860", "08:45", acd_calls=6, reports=60, max_waiting=12,
            max_longest_wait_seconds=33, waiting_seconds=1800.0, covered_seconds=900.0),
        row("group", "601", "08:30", reports=60, max_waiting=1, max_longest_wait_seconds=200,
            waiting_seconds=90.0, covered_seconds=900.0),
    ]  # fmt: skip
    return [("north", first), ("north", second), ("south", other)]


def check_hours_match_intervals(store: HistoryStore) -> None:
    """Every report by hour reads as the interval rows added up would, whatever it asks for."""
    asked: list[tuple[str | None, list[str] | None]] = [
        (None, None),
        ("north", None),
        ("south", None),
        (None, ["1001", "860", "601"]),
        ("north", ["999"]),
    ]
    for kind in ROW_KINDS:
        for first_day, last_day in ((DAY, THIRD_DAY), (DAY, DAY), (NEXT_DAY, THIRD_DAY)):
            for source, ids in asked:
                found = store.report(kind, first_day, last_day, "1h", source, ids)
                expected = from_intervals(store, kind, first_day, last_day, source, ids)
                assert found == expected, (kind, first_day, last_day, source, ids)
                # The same values of the same types, in the same order.
                assert [list(map(type, r.values())) for r in found] == [
                    list(map(type, r.values())) for r in expected
                ]


def test_reports_by_hour_read_the_hour_tables(store: HistoryStore) -> None:
    for source, rows in hour_batches():
        store.write(source, rows, [])
    hours = store.report("agent", DAY, THIRD_DAY, "1h")
    assert pick(hours, "id", "day", "start", "acd_calls", "acd_talk_seconds") == [
        ("999", DAY, at("08:00"), 4, 200.0),
        ("1001", DAY, at("08:00"), 12, 465.75),
        ("1002", DAY, at("08:00"), 1, 10.0),
        ("1001", DAY, at("09:00"), 0, 0.0),
        ("1001", NEXT_DAY, at("08:00", 1), 9, 90.0),
        ("1001", THIRD_DAY, at("23:00", 2), 1, 5.0),
    ]
    whole = hours[1]
    assert whole["make_busy_by_reason"] == [
        {"reason": 1, "seconds": 16.0},
        {"reason": 3, "seconds": 102.0},
    ]
    assert whole["dnd_by_reason"] == [{"reason": None, "seconds": 15.0}]
    assert (whole["wrap_ups"], whole["rang_unanswered"]) == (2, 1)
    assert whole["logged_in_seconds"] == 3900.0
    assert hours[3]["make_busy_by_reason"] == [{"reason": None, "seconds": 7.0}]
    (path,) = store.report("path", DAY, DAY, "1h")
    assert (path["acd_calls"], path["max_waiting"], path["max_longest_wait_seconds"]) == (
        12,
        12,
        140,
    )
    assert (path["waiting_seconds"], path["covered_seconds"]) == (3360.0, 3600.0)
    (group,) = store.report("group", DAY, DAY, "1h")
    assert (group["reports"], group["max_waiting"], group["max_longest_wait_seconds"]) == (
        180,
        5,
        200,
    )
    # One row per source, day, hour and id, whatever came in how many parts and writes.
    assert store.count("agent_hours") == 7 and store.count("agent_hours", "south") == 2
    assert store.count("agent_intervals") == 10
    assert store.count("path_hours") == 2 and store.count("group_hours") == 2
    assert store.count("agent_reason_hours") == 6
    check_hours_match_intervals(store)
    # Another part of an hour, later: added to the hour's row.
    store.write("north", [row("agent", "1001", "08:45", acd_calls=2, acd_talk_seconds=1.5,
                              reasons={("make_busy", 3): 1.0}, make_busy_seconds=1.0)], [])  # fmt: skip
    assert store.count("agent_hours") == 7 and store.count("agent_reason_hours") == 6
    check_hours_match_intervals(store)
    assert store.report("agent", DAY, DAY, "1h", ids=["1001"])[0]["acd_calls"] == 14
    # What a report by hour reads is the hour tables, not the intervals.
    with store.engine.begin() as connection:
        for name in (*INTERVAL_TABLES.values(), "agent_reasons"):
            connection.execute(sa.text(f"DELETE FROM {name}"))
    assert store.report("agent", DAY, THIRD_DAY, "1h")[1]["acd_calls"] == 14
    assert from_intervals(store, "agent", DAY, THIRD_DAY) == []


# --- states, days, pruning ---------------------------------------------------------------------


def test_state_spans(store: HistoryStore) -> None:
    spans = [
        span("1001", at("08:00"), at("08:01") + 0.5, "available", path=None),
        span("1001", at("08:01") + 0.5, at("08:05"), "on_call", next_state="wrap_up",
             code="J", path="860", button=2),
        span("1002", at("08:02"), at("08:03"), "not_ready", next_state="available",
             code="F", reason=4),
        span("1001", at("09:00"), at("09:30"), "wrap_up", next_state="available", code="M"),
    ]  # fmt: skip
    store.write("pbx", [], spans)
    store.write("other", [], [span("1001", at("08:00"), at("08:10"))])
    assert store.states("pbx", None, at("08:00"), at("09:00")) == spans[:3]
    assert store.states("pbx", "1001", at("08:00"), at("10:00")) == [spans[0], spans[1], spans[3]]
    assert store.states("pbx", "1002", at("08:03"), at("10:00")) == []
    assert len(store.states(None, "1001", at("08:00"), at("08:01"))) == 2
    got = store.states("pbx", None, at("08:01"), at("08:02"))[0]
    assert (got.path, got.button, got.code, got.start) == ("860", 2, "J", at("08:01") + 0.5)
    assert store.states("pbx", "1002", 0, at("23:59"))[0].reason == 4


def test_day_rows_combine_the_parts_of_an_interval(store: HistoryStore) -> None:
    store.write("pbx", agent_rows(), [])
    store.write("pbx", queue_rows("path"), [])
    store.write("other", [row("agent", "1001", "08:00", acd_calls=50)], [])
    found = store.day_rows("pbx", DAY)
    keys = [(r.interval_start, r.kind, r.id) for r in found]
    assert keys == [
        (at("08:00"), "agent", "999"),
        (at("08:00"), "agent", "1001"),
        (at("08:00"), "path", "860"),
        (at("08:15"), "path", "860"),
        (at("08:15"), "path", "861"),
        (at("08:45"), "agent", "1001"),
        (at("09:00"), "agent", "1001"),
    ]
    first = found[1]
    assert first.day == DAY and first.hour_start == at("08:00")
    assert first.figures["acd_calls"] == 3
    assert first.figures["acd_talk_seconds"] == 120.75
    assert first.reasons == {("make_busy", 3): 90.0, ("make_busy", 1): 15.5, ("dnd", None): 10.0}
    assert found[2].figures["max_waiting"] == 7
    assert found[2].figures["reports"] == 80
    assert set(found[2].figures) == {f.name for f in FIGURES["path"]}
    assert store.day_rows("pbx", "2026-01-01") == []


def test_replace_days(store: HistoryStore) -> None:
    tz = UTC
    store.write(
        "pbx",
        [row("agent", "1001", "08:00", acd_calls=1), row("agent", "1001", "08:00", 1, acd_calls=2)],
        [span("1001", at("08:00"), at("08:01")), span("1001", at("08:00", 1), at("08:01", 1))],
    )
    store.write(
        "other",
        [row("agent", "1001", "08:00", acd_calls=7)],
        [span("1001", at("08:00"), at("08:02"))],
    )
    new_rows = [
        row(
            "agent",
            "1001",
            "10:00",
            acd_calls=4,
            reasons={("make_busy", 2): 5.0},
            make_busy_seconds=5.0,
        ),
        row("path", "860", "10:00", acd_calls=4),
    ]
    new_spans = [span("1001", at("10:00"), at("10:05"), "on_call")]
    deleted = store.replace_days("pbx", [DAY], new_rows, new_spans, tz=tz)
    assert deleted > 0
    days = store.report("agent", DAY, NEXT_DAY, "day", source="pbx")
    assert pick(days, "day", "start", "acd_calls") == [
        (DAY, at("10:00"), 4),
        (NEXT_DAY, at("08:00", 1), 2),
    ]
    assert days[0]["make_busy_by_reason"] == [{"reason": 2, "seconds": 5.0}]
    assert [r["acd_calls"] for r in store.report("agent", DAY, DAY, source="other")] == [7]
    assert store.states("pbx", None, 0, at("23:59", 5)) == [
        new_spans[0],
        span("1001", at("08:00", 1), at("08:01", 1)),
    ]
    assert len(store.states("other", None, 0, at("23:59", 5))) == 1
    # Replacing again gives the same: nothing is stored twice.
    store.replace_days("pbx", [DAY], new_rows, new_spans, tz=tz)
    assert store.report("path", DAY, DAY, source="pbx")[0]["acd_calls"] == 4
    assert store.count("agent_intervals", "pbx") == 2
    assert store.count("agent_hours", "pbx") == 2
    assert store.count("agent_reason_hours", "pbx") == 1
    hours = store.report("agent", DAY, NEXT_DAY, "1h", source="pbx")
    assert pick(hours, "day", "start", "acd_calls") == [
        (DAY, at("10:00"), 4),
        (NEXT_DAY, at("08:00", 1), 2),
    ]
    assert hours[0]["make_busy_by_reason"] == [{"reason": 2, "seconds": 5.0}]
    for kind in ROW_KINDS:
        assert store.report(kind, DAY, NEXT_DAY, "1h") == from_intervals(store, kind, DAY, NEXT_DAY)
    with pytest.raises(ValueError, match="not one of the days replaced"):
        store.replace_days("pbx", [NEXT_DAY], new_rows, [], tz=tz)
    with pytest.raises(ValueError, match="outside the days replaced"):
        store.replace_days("pbx", [NEXT_DAY], [], new_spans, tz=tz)
    # A refused replacement changed nothing.
    assert store.count("agent_intervals", "pbx") == 2


def test_replace_days_by_the_day_start(store: HistoryStore) -> None:
    """With days starting at 06:00, a span at 05:00 belongs to the day before."""
    six = datetime.time(6, 0)
    early = span("1001", at("05:00"), at("05:30"))
    late = span("1001", at("07:00"), at("07:30"))
    store.write("pbx", [], [early, late])
    store.replace_days("pbx", [DAY], [], [], day_starts=six, tz=UTC)
    assert store.states("pbx", None, 0, at("23:59", 3)) == [early]
    assert day_bounds(DAY, six, UTC) == (at("06:00"), at("06:00", 1))


def test_prune(store: HistoryStore) -> None:
    store.write(
        "pbx",
        [
            row(
                "agent", "1001", "08:00", acd_calls=1, reasons={("dnd", None): 3.0}, dnd_seconds=3.0
            ),
            row("path", "860", "08:00", acd_calls=1),
            row("group", "601", "08:00", reports=1),
            row("agent", "1001", "08:00", 1, acd_calls=2),
        ],
        [span("1001", at("08:00"), at("08:01")), span("1001", at("08:00", 1), at("08:01", 1))],
    )
    assert store.prune(DAY, tz=UTC) == 0
    # Day one: 3 interval rows, 1 reason, 3 day rows, 1 reason day, 3 hour rows,
    # 1 reason hour, 1 span.
    assert store.prune(NEXT_DAY, tz=UTC) == 13
    assert store.report("agent", DAY, NEXT_DAY) != []
    assert [r["day"] for r in store.report("agent", DAY, NEXT_DAY)] == [NEXT_DAY]
    assert [r["day"] for r in store.report("agent", DAY, NEXT_DAY, "1h")] == [NEXT_DAY]
    assert store.report("path", DAY, NEXT_DAY) == []
    assert store.report("path", DAY, NEXT_DAY, "1h") == []
    assert store.count("agent_reasons") == 0
    assert store.count("agent_reason_days") == 0
    assert store.count("agent_reason_hours") == 0
    assert (store.count("agent_hours"), store.count("path_hours")) == (1, 0)
    assert len(store.states(None, None, 0, at("23:59", 3))) == 1


def test_a_write_is_all_or_nothing(store: HistoryStore) -> None:
    bad = StateSpan("1001", None, "x", 1.0, 2.0, "G")  # type: ignore[arg-type]
    with pytest.raises(sa.exc.IntegrityError):
        store.write("pbx", [row("agent", "1001", "08:00", acd_calls=1)], [bad], batch="b1")
    assert store.count("agent_intervals") == 0
    assert store.count("agent_days") == 0
    assert store.last_batch("pbx") is None
    store.write("pbx", [row("agent", "1001", "08:00", acd_calls=1)], [], batch="b2")
    store.write("pbx", [], [], batch="b3")
    assert store.last_batch("pbx") == "b3"
    assert store.last_batch("other") is None


def test_many_rows_in_one_write(store: HistoryStore) -> None:
    rows = [row("agent", str(1000 + n), "08:00", acd_calls=1) for n in range(2500)]
    rows += [row("agent", str(1000 + n), "08:00", acd_calls=1) for n in range(2500)]
    spans = [span(str(n), at("08:00") + n / 10, at("08:00") + n / 10 + 1) for n in range(3000)]
    store.write("pbx", rows, spans)
    assert store.count("agent_intervals") == 5000
    assert store.count("agent_days") == 2500
    assert store.count("agent_states") == 3000
    report = store.report("agent", DAY, DAY)
    assert len(report) == 2500 and {r["acd_calls"] for r in report} == {2}


def test_problem_kinds() -> None:
    locked = OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
    assert problem_kind(locked) == "database locked"
    full = OperationalError("INSERT", {}, sqlite3.OperationalError("database or disk is full"))
    assert problem_kind(full) == "disk full"
    refused = OperationalError(
        "x",
        {},
        Exception(
            'connection failed: connection to server at "127.0.0.1", port 1 failed: Connection refused'
        ),
    )
    assert problem_kind(refused) == "database unreachable"
    assert problem_kind(HistorySchemaError("too new")) == "too new"
    assert problem_kind(OSError(28, "No space left on device")) == "disk full"


# --- the service -------------------------------------------------------------------------------


async def until(condition: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    """Let the reactor run (the writing thread reports through it) until ``condition``."""
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await deferLater(reactor, 0.01, lambda: None)
    raise AssertionError(f"not within {timeout} s: {what or condition}")


@pytest.fixture
def flaky() -> Iterator[type[FlakyHistoryStore]]:
    FlakyHistoryStore.reset()
    yield FlakyHistoryStore
    FlakyHistoryStore.reset()


def interval_rows(count: int, first: int = 0) -> list[IntervalRow]:
    """``count`` rows, each of its own agent, one ACD call each."""
    return [row("agent", str(10_000 + first + n), "08:00", acd_calls=1) for n in range(count)]


def service_for(url: str, clock: Clock, **options: Any) -> HistoryService:
    store_class = options.pop("store_class", HistoryStore)
    return HistoryService(
        lambda: open_store(url, store_class=store_class),
        "pbx",
        clock,
        cast(IReactorFromThreads, reactor),
        url=url,
        **options,
    )


async def started(service: HistoryService, clock: Clock) -> None:
    service.startService()
    clock.advance(0)
    await until(lambda: service.ok and service._busy is None, what="the store opened")
    clock.advance(0)  # then old days are pruned
    await until(lambda: service._busy is None, what="the days pruned")


async def flushed(service: HistoryService, clock: Clock, step: float = 1.0) -> None:
    """Move the clock until nothing waits (at most a minute of it)."""
    for _ in range(120):
        if service.backlog == 0 and service._busy is None:
            return
        clock.advance(step)
        await until(lambda: service._busy is None, what="the write ended")
    raise AssertionError(f"still {service.backlog} rows waiting")


async def stopped(service: HistoryService) -> None:
    done = service.stopService()
    await done.addTimeout(30, reactor)


@pytest_twisted.ensureDeferred
async def test_many_adds_make_few_transactions(history_url: str) -> None:
    clock = Clock()
    service = service_for(history_url, clock, flush_interval=1.0)
    await started(service, clock)
    try:
        for n in range(1000):
            service.add(interval_rows(1, n), [span(str(n), at("08:00"), at("08:01"))])
        assert service.backlog == 2000
        clock.advance(0.5)
        assert service._busy is None  # nothing before the interval is up
        clock.advance(0.5)
        await until(lambda: service._busy is None)
        assert service.transactions == 1
        assert service.written_rows == 2000
        service.add(interval_rows(5, 5000), [])
        await flushed(service, clock)
        assert service.transactions == 2
        health = service.health()
        assert health["ok"] is True and health["backlog"] == 0
        assert health["written_rows"] == 2005 and health["dropped_rows"] == 0
        assert health["last_write_at"] is not None and health["failing_since"] is None
        rows = await service.query(lambda s: s.report("agent", DAY, DAY))
        assert len(rows) == 1005
    finally:
        await stopped(service)
    store = open_store(history_url)
    assert store.count("agent_states") == 1000
    store.close()


@pytest_twisted.ensureDeferred
async def test_stopping_writes_what_waits(history_url: str) -> None:
    clock = Clock()
    service = service_for(history_url, clock)
    await started(service, clock)
    service.add(interval_rows(30), [])
    await stopped(service)
    store = open_store(history_url)
    assert store.count("agent_intervals") == 30
    store.close()
    assert service.written_rows == 30


@pytest_twisted.ensureDeferred
async def test_a_long_backlog_drops_the_oldest_and_counts_them(
    tmp_path: Path, flaky: type[FlakyHistoryStore]
) -> None:
    url = str(tmp_path / "h.db")
    clock = Clock()
    service = service_for(url, clock, max_backlog=100, store_class=flaky)
    await started(service, clock)
    flaky.down = True
    with capture_log("mitelacd.reports.writer") as logged:
        service.add(interval_rows(60), [])
        clock.advance(1)
        await until(lambda: service.write_failures == 1)
        service.add(interval_rows(60, 60), [])
        assert service.backlog == 100 and service.dropped_rows == 20
        service.add(interval_rows(10, 120), [])
        assert service.dropped_rows == 30
        assert service.health()["ok"] is False
        assert service.health()["problem"] == "database locked"
        flaky.down = False
        await flushed(service, clock)
    warnings = logged.lines(LogLevel.warn)
    assert len(warnings) == 1 and "dropping the oldest (20 rows so far)" in warnings[0]
    recovered = logged.lines(LogLevel.info)
    assert len(recovered) == 1 and "30 rows were dropped" in recovered[0]
    assert service.dropped_rows == 30 and service.written_rows == 100
    rows = await service.query(lambda s: s.report("agent", DAY, DAY))
    # The newest 100 were kept.
    assert [r["id"] for r in rows] == [str(10_000 + n) for n in range(30, 130)]
    await stopped(service)


@pytest_twisted.ensureDeferred
async def test_a_batch_committed_without_an_answer_is_not_written_twice(
    tmp_path: Path, flaky: type[FlakyHistoryStore]
) -> None:
    url = str(tmp_path / "h.db")
    clock = Clock()
    service = service_for(url, clock, store_class=flaky)
    await started(service, clock)
    flaky.lose_answer = 1
    with capture_log("mitelacd.reports.writer") as logged:
        service.add(interval_rows(10), [])
        clock.advance(1)
        await until(lambda: service.write_failures == 1)
        service.add(interval_rows(5, 10), [])
        await flushed(service, clock)
    assert flaky.writes == 2  # the lost answer's batch was not written again
    assert service.written_rows == 15
    rows = await service.query(lambda s: s.report("agent", DAY, DAY))
    assert [r["acd_calls"] for r in rows] == [1] * 15
    assert len(logged.lines(LogLevel.error)) == 1
    assert len(logged.lines(LogLevel.info)) == 1
    await stopped(service)


@pytest_twisted.ensureDeferred
async def test_an_unreachable_database_at_start_is_tried_again(tmp_path: Path) -> None:
    folder = tmp_path / "later"
    url = f"sqlite:///{folder}/h.db"
    clock = Clock()
    service = service_for(url, clock)
    with capture_log("mitelacd.reports.writer") as logged:
        service.startService()
        clock.advance(0)
        await until(lambda: service.write_failures == 1)
        service.add(interval_rows(3), [])
        assert service.health()["problem"] == "cannot open the database file"
        failed = service.query(lambda s: s.version())
        with pytest.raises(HistoryUnavailable, match="cannot open the database file"):
            await failed
        for delay in (1, 2, 4):
            clock.advance(delay)
            await until(lambda: service._busy is None)
        assert service.write_failures == 4
        folder.mkdir()
        clock.advance(8)
        await until(lambda: service.ok)
        await flushed(service, clock)
    errors = logged.lines(LogLevel.error)
    assert len(errors) == 1, errors
    assert f"cannot write the history to {url}: cannot open the database file" in errors[0]
    infos = [line for line in logged.lines(LogLevel.info) if "again" in line]
    assert len(infos) == 1
    assert "after 4 failed attempts over 15 s; nothing was lost" in infos[0]
    assert service.written_rows == 3
    await stopped(service)


@pytest_twisted.ensureDeferred
async def test_old_days_are_pruned_at_start(history_url: str) -> None:
    store = open_store(history_url)
    store.migrate()
    store.write(
        "pbx", [row("agent", "1001", "08:00", acd_calls=1), row("agent", "1001", "08:00", 1)], []
    )
    store.close()
    clock = Clock()
    clock.advance(at("12:00", 1))  # NEXT_DAY, noon UTC
    service = service_for(history_url, clock, keep_days=1, tz=UTC)
    assert service.prune_before() == NEXT_DAY
    await started(service, clock)
    await until(lambda: service.pruned_rows > 0)
    assert service.pruned_rows == 3  # the interval row, the day row and the hour row of DAY
    rows = await service.query(lambda s: s.report("agent", DAY, NEXT_DAY))
    assert [r["day"] for r in rows] == [NEXT_DAY]
    await stopped(service)


@pytest_twisted.ensureDeferred
async def test_postgresql_stopped_mid_day_loses_nothing() -> None:
    """The server goes away while rows keep coming; once back, each row is there once."""
    server = PostgresServer()
    try:
        server.start()
        url = server.create_database("midday")
        clock = Clock()
        service = service_for(url, clock)
        await started(service, clock)
        expected = 0
        with capture_log("mitelacd.reports.writer") as logged:
            for n in range(5):
                service.add(
                    interval_rows(20, expected),
                    [span("1001", at("08:00") + n, at("08:00") + n + 0.5)],
                )
                expected += 20
            await flushed(service, clock)
            await threads.deferToThread(server.stop)
            for step in range(6):
                service.add(
                    interval_rows(20, expected),
                    [span("1001", at("09:00") + step, at("09:00") + step + 0.5)],
                )
                expected += 20
                clock.advance(2**step)
                await until(lambda: service._busy is None)
            assert service.write_failures >= 4
            assert service.health()["problem"] == "database unreachable"
            assert service.health()["failing_since"] is not None
            assert service.backlog == 120 + 6
            await threads.deferToThread(server.start)
            clock.advance(60)
            await until(lambda: service.ok and service._busy is None)
            await flushed(service, clock)
        errors = logged.lines(LogLevel.error)
        assert len(errors) == 1, errors
        assert "database unreachable" in errors[0] and server.url("midday") in errors[0]
        again = [line for line in logged.lines(LogLevel.info) if "again" in line]
        assert len(again) == 1 and "nothing was lost" in again[0], again
        await stopped(service)
        store = open_store(url)
        try:
            assert store.count("agent_intervals") == expected == 220
            assert store.count("agent_states") == 11
            report = store.report("agent", DAY, DAY)
            assert len(report) == expected
            assert {r["acd_calls"] for r in report} == {1}
        finally:
            store.close()
    finally:
        server.close()


@pytest_twisted.ensureDeferred
async def test_flushed_writes_now_and_does_not_wait_for_a_database_that_is_down(
    tmp_path: Path, flaky: type[FlakyHistoryStore]
) -> None:
    clock = Clock()
    service = service_for(str(tmp_path / "h.db"), clock, flush_interval=5.0, store_class=flaky)
    await started(service, clock)
    assert service.flushed().called  # nothing waits
    service.add(interval_rows(10), [])
    done = service.flushed()
    assert not done.called
    clock.advance(0)  # not the 5 s of the flush interval
    await until(lambda: done.called)
    assert service.written_rows == 10
    flaky.down = True
    with capture_log("mitelacd.reports.writer"):
        service.add(interval_rows(10, 10), [])
        down = service.flushed()
        clock.advance(0)
        await until(lambda: down.called)
        assert service.write_failures == 1 and service.backlog == 10
        flaky.down = False
        await flushed(service, clock)
    await stopped(service)


@pytest_twisted.ensureDeferred
async def test_a_write_that_hangs_does_not_hold_up_the_stop(tmp_path: Path) -> None:
    StuckHistoryStore.release = threading.Event()
    clock = Clock()
    service = service_for(
        str(tmp_path / "h.db"), clock, store_class=StuckHistoryStore, stop_timeout=10.0
    )
    await started(service, clock)
    service.add(interval_rows(7), [])
    clock.advance(1)
    assert service._busy is not None
    try:
        with capture_log("mitelacd.reports.writer") as logged:
            done = service.stopService()
            fired = [False]
            done.addBoth(lambda _: fired.__setitem__(0, True))
            clock.advance(9)
            assert fired == [False]
            clock.advance(1)
            assert fired == [True]  # the reactor is not made to wait for the thread
        errors = logged.lines(LogLevel.error)
        assert len(errors) == 1
        assert "did not end within 10 s; 7 rows of history are not written" in errors[0]
    finally:
        StuckHistoryStore.release.set()
        await until(lambda: service._busy is None)
        service._writer.stop()
        service._reader.stop()


def test_the_benchmark_month(store: HistoryStore) -> None:
    from mitelacd.reports.bench import fill_month, last_day, time_report, time_writes

    assert fill_month(store, agents=3, days=2) == 2 * 96 * (3 + 20 + 10)
    seconds, rows = time_report(store, "agent", "day", days=2, repeat=1)
    assert rows == 3 * 2 and 0 < seconds < 30
    assert last_day(2) == "2026-01-06"
    report = store.report("agent", "2026-01-05", "2026-01-05")
    assert [r["id"] for r in report] == ["1001", "1002", "1003"]
    assert all(r["make_busy_by_reason"] or not r["make_busy_seconds"] for r in report)
    # Written through the store, the month has its hour tables too.
    assert store.count("agent_hours") == 3 * 2 * 24 and store.count("path_hours") == 20 * 2 * 24
    assert 0 < store.count("agent_reason_hours") <= store.count("agent_reasons")
    for kind in ROW_KINDS:
        hourly = store.report(kind, "2026-01-05", "2026-01-06", "1h")
        assert len(hourly) == {"agent": 3, "path": 20, "group": 10}[kind] * 2 * 24
        assert hourly == from_intervals(store, kind, "2026-01-05", "2026-01-06")
    assert 0 < time_writes(store, events=50, batches=3) < 30
    assert store.count("agent_states", "bench-writes") == 150


def test_the_statements_a_report_runs_are_given_to_be_timed_alone(store: HistoryStore) -> None:
    from mitelacd.reports.bench import fill_month

    fill_month(store, agents=3, days=2)
    for interval in REPORT_INTERVALS:
        report = store.report("agent", "2026-01-05", "2026-01-06", interval)
        figures, reasons = store.report_queries("agent", "2026-01-05", "2026-01-06", interval)
        listed = sum(len(r["dnd_by_reason"]) + len(r["make_busy_by_reason"]) for r in report)
        with store.engine.connect() as connection:
            # A row of the report per row of its figures, a reason listed per row of reasons.
            assert len(connection.execute(figures).all()) == len(report), interval
            assert len(connection.execute(reasons).all()) == listed > 0, interval
    (paths,) = store.report_queries("path", "2026-01-05", "2026-01-05", "1h")
    with store.engine.connect() as connection:
        assert len(connection.execute(paths).all()) == 20 * 24
    with pytest.raises(ValueError, match="interval must be one of"):
        store.report_queries("agent", "2026-01-05", "2026-01-05", "2h")  # type: ignore[arg-type]
