"""The history writer loses nothing it need not, and says so when it must.

A row the database refuses costs that row alone; a SQLite file deleted while
open is noticed and made again; rows still waiting at stop are saved beside
the data file and written at the next start; and the memory the writer holds
stays the same however long it writes. On SQLite and on a real PostgreSQL,
with the writer's real threads on a Clock the test moves (tests/test_history.py).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_twisted
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, StatementError
from test_history import (
    DAY,
    at,
    flushed,
    interval_rows,
    row,
    service_for,
    span,
    started,
    stopped,
    until,
)
from twisted.internet import threads
from twisted.internet.task import Clock
from twisted.logger import LogLevel

from mitelacd import heap
from mitelacd.reports.rows import ROW_KINDS, IntervalRow, StateSpan
from mitelacd.reports.store import (
    SQLITE_CACHE_KIB,
    HistoryError,
    HistoryFileReplaced,
    HistoryRow,
    HistoryStore,
    data_error,
    open_store,
    sqlite_memory,
)
from mitelacd.reports.writer import (
    SPILL_FORMAT,
    read_spill,
    row_from_json,
    row_to_json,
)
from mitelacd.testing import capture_log
from mitelacd.testing.history import DownHistoryStore, FlakyHistoryStore
from mitelacd.testing.postgres import PostgresServer

#: Nothing listens there: a PostgreSQL that cannot be reached.
UNREACHABLE = "postgresql://mitelacd@127.0.0.1:1/history"

#: Too large for any integer column of either database.
HUGE = 10**20


@pytest.fixture
def down() -> Iterator[type[DownHistoryStore]]:
    FlakyHistoryStore.reset()
    yield DownHistoryStore
    FlakyHistoryStore.reset()


@pytest.fixture
def store(history_url: str) -> Iterator[HistoryStore]:
    opened = open_store(history_url)
    opened.migrate()
    try:
        yield opened
    finally:
        opened.close()


def quarter(hhmm: str, count: int, first: int = 0) -> list[IntervalRow]:
    """An interval's rows for ``count`` agents, a path and a group."""
    agents = [
        row("agent", str(10_000 + first + n), hhmm, acd_calls=1, acd_talk_seconds=12.5)
        for n in range(count)
    ]
    return [
        *agents,
        row("path", "860", hhmm, acd_calls=count),
        row("group", "610", hhmm, reports=3),
    ]


# --- A: a row the database refuses -------------------------------------------------------------


def test_what_is_about_the_data() -> None:
    assert data_error(OverflowError("Python int too large to convert to SQLite INTEGER"))
    assert data_error(ValueError("cannot convert float NaN to integer"))
    assert data_error(DataError("INSERT", {}, Exception("integer out of range")))
    assert data_error(IntegrityError("INSERT", {}, Exception("NOT NULL constraint failed")))
    assert data_error(StatementError("bind", "INSERT", {}, OverflowError("too large")))
    locked = OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
    assert not data_error(locked)
    assert not data_error(StatementError("bind", "INSERT", {}, locked))
    assert not data_error(HistoryFileReplaced("h.db was deleted"))
    assert not data_error(HistoryError("too new"))
    assert not data_error(OSError(28, "No space left on device"))
    assert not data_error(MemoryError())


def test_write_apart_writes_all_but_the_rows_refused(store: HistoryStore) -> None:
    good = quarter("08:00", 6)
    bad_figure = row("agent", "2001", "08:00", acd_calls=HUGE)
    bad_reason = row("agent", "2002", "08:00", dnd_seconds=5.0, reasons={("dnd", HUGE): 5.0})
    spans = [span(str(n), at("08:00") + n, at("08:00") + n + 0.5, button=1) for n in range(7)]
    bad_span = span("2003", at("08:01"), at("08:02"), button=HUGE)
    rows: list[HistoryRow] = [
        *good[:3], bad_figure, *good[3:], *spans[:4], bad_span, *spans[4:], bad_reason
    ]  # fmt: skip
    with pytest.raises(Exception) as caught:
        store.write("pbx", [r for r in rows if isinstance(r, IntervalRow)], [bad_span], "b0")
    assert data_error(caught.value)
    refused = store.write_apart("pbx", rows, batch="b1")
    assert [r.row for r in refused] == [bad_figure, bad_span, bad_reason]
    assert {r.error_type for r in refused} <= {"OverflowError", "DataError"}
    assert all(r.problem for r in refused)
    assert store.last_batch("pbx") == "b1"
    assert store.count("agent_intervals") == 6
    assert store.count("path_intervals") == store.count("group_intervals") == 1
    assert store.count("agent_reasons") == 0
    assert store.states(None, None, 0, at("23:00")) == spans
    # The day tables hold the rows written, and nothing of those refused.
    report = store.report("agent", DAY, DAY)
    assert [r["id"] for r in report] == [str(10_000 + n) for n in range(6)]
    assert {r["acd_calls"] for r in report} == {1}


@pytest_twisted.ensureDeferred
async def test_a_row_the_database_refuses_costs_that_row_alone(history_url: str) -> None:
    clock = Clock()
    service = service_for(history_url, clock)
    await started(service, clock)
    bad_reason = row("agent", "2002", "08:00", dnd_seconds=5.0, reasons={("dnd", HUGE): 5.0})
    bad_span = span("2003", at("08:01"), at("08:02"), button=HUGE)
    closed = quarter("08:00", 20)
    spans = [span(str(n), at("08:00") + n, at("08:00") + n + 0.5) for n in range(10)]
    following = quarter("08:15", 20)
    with capture_log("mitelacd.reports.writer") as logged:
        # One batch: an interval with a bad row, spans with a bad one, the next interval.
        service.add([*closed[:5], bad_reason, *closed[5:]], [*spans[:3], bad_span, *spans[3:]])
        service.add(following, [])
        await flushed(service, clock)
        total = len(closed) + len(spans) + len(following)
        assert service.transactions == 1
        assert (service.written_rows, service.refused_rows, service.dropped_rows) == (total, 2, 0)
        assert [a.row for a in service.set_aside] == [bad_reason, bad_span]
        health = service.health()
        assert health["ok"] is False and health["refused_rows"] == 2
        assert health["problem"].startswith("rows refused by the database (")
        assert health["failing_since"] is not None
        assert "agent '2003'" in health["last_refused"]["row"]
        errors = logged.lines(LogLevel.error)
        assert len(errors) == 2, errors
        assert "refused the agent '2002' row of the interval from" in errors[0]
        assert "set aside" in errors[0]
        assert "state span of agent '2003'" in errors[1] and f"button {HUGE}" in errors[1]
        # The next batch is taken whole: the history is written again.
        service.add(quarter("08:30", 2), [])
        await flushed(service, clock)
        assert service.ok and service.health()["problem"] is None
        again = [line for line in logged.lines(LogLevel.info) if "every row again" in line]
        assert len(again) == 1 and "2 rows were refused" in again[0]
    report = await service.query(lambda s: s.report("agent", DAY, DAY, "15m"))
    assert len([r for r in report if r["start"] == at("08:00")]) == 20
    assert len([r for r in report if r["start"] == at("08:15")]) == 20
    paths = await service.query(lambda s: s.report("path", DAY, DAY, "15m"))
    assert [(p["start"], p["acd_calls"]) for p in paths] == [
        (at("08:00"), 20),
        (at("08:15"), 20),
        (at("08:30"), 2),
    ]
    states = await service.query(lambda s: s.states(None, None, 0, at("23:00")))
    assert states == spans
    await stopped(service)


# --- B1: a SQLite file deleted while open ------------------------------------------------------


def test_the_store_knows_when_its_file_is_not_the_one_at_the_path(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    store = open_store(str(path))
    try:
        assert not store.replaced()  # not connected yet
        store.migrate()
        assert not store.replaced()
        shutil.copy(path, tmp_path / "copy.db")
        os.replace(tmp_path / "copy.db", path)
        assert store.replaced()
        path.unlink()
        assert store.replaced()
    finally:
        store.close()


@pytest_twisted.ensureDeferred
async def test_a_deleted_sqlite_file_is_noticed_and_made_again(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    clock = Clock()
    service = service_for(str(path), clock)
    await started(service, clock)
    service.add(interval_rows(5), [])
    await flushed(service, clock)
    path.unlink()  # as `rm` would: the WAL beside it stays
    with capture_log("mitelacd.reports.writer") as logged:
        service.add(interval_rows(7, 100), [span("1001", at("08:00"), at("08:01"))])
        clock.advance(1)
        await until(lambda: service._busy is None)
        # Noticed before anything was written into the deleted file.
        assert service.health()["ok"] is False
        assert service.health()["problem"] == "the database file was deleted or replaced"
        assert service.backlog == 8
        await flushed(service, clock)
        assert service.ok and service.health()["problem"] is None
    warnings = logged.lines(LogLevel.warn)
    assert len(warnings) == 1, warnings
    assert f"the database file of {path} was deleted or replaced while open" in warnings[0]
    made = [line for line in logged.lines(LogLevel.info) if "new database file" in line]
    assert len(made) == 1 and str(path) in made[0]
    assert service.files_replaced == 1 and service.dropped_rows == 0
    assert service.written_rows == 5 + 8
    store = open_store(str(path), create=False)
    try:
        assert store.count("agent_intervals") == 7
        assert store.count("agent_states") == 1
    finally:
        store.close()
    await stopped(service)


# --- B4: rows waiting at stop ------------------------------------------------------------------


def every_kind_of_row() -> tuple[list[IntervalRow], list[StateSpan]]:
    """Rows with every field used: floats, reasons with and without a code, None."""
    intervals = [
        row(
            "agent",
            "1001",
            "08:00",
            acd_calls=3,
            acd_talk_seconds=123.456,
            dnd_seconds=30.25,
            make_busy_seconds=61.5,
            reasons={("dnd", None): 30.25, ("make_busy", 7): 60.0, ("make_busy", 12): 1.5},
        ),
        row("agent", "1002", "08:15", wrap_ups=1, wrap_up_seconds=0.1 + 0.2),
        row("path", "860", "08:00", acd_calls=3, max_waiting=4, waiting_seconds=99.999),
        row("group", "610", "08:00", reports=60, max_longest_wait_seconds=75.0),
    ]
    spans = [
        span("1001", at("08:00") + 0.123, at("08:03") + 0.5, path="860", button=1),
        span("1001", at("08:03") + 0.5, at("08:04"), "not_ready", next_state="available",
             code="C", reason=12),
        span("1002", at("08:05"), at("08:06") + 1 / 3, "wrap_up", next_state="available",
             code="day"),
    ]  # fmt: skip
    return intervals, spans


def test_rows_are_saved_as_they_are() -> None:
    intervals, spans = every_kind_of_row()
    originals: list[HistoryRow] = [*intervals, *spans]
    for original in originals:
        text = json.dumps(row_to_json(original))
        again = row_from_json(json.loads(text))
        assert again == original
        assert type(again) is type(original)
        if isinstance(original, IntervalRow):
            assert isinstance(again, IntervalRow)
            kinds = {k: type(v) for k, v in original.figures.items()}
            assert {k: type(v) for k, v in again.figures.items()} == kinds


@pytest_twisted.ensureDeferred
async def test_rows_waiting_at_stop_are_saved_and_written_at_the_next_start(
    history_url: str, tmp_path: Path
) -> None:
    spill = tmp_path / "mitel_data.json.history-spill.jsonl"
    intervals, spans = every_kind_of_row()
    rows = len(intervals) + len(spans)
    clock = Clock()
    first = service_for(UNREACHABLE, clock, spill_path=str(spill))
    with capture_log("mitelacd.reports.writer") as logged:
        first.startService()
        clock.advance(0)
        await until(lambda: first.write_failures == 1, what="the first open failed")
        first.add(intervals, spans)
        assert first.backlog == rows
        await stopped(first)
    assert (first.dropped_rows, first.spilled_rows) == (0, rows)
    warnings = logged.lines(LogLevel.warn)
    assert len(warnings) == 1, warnings
    assert f"stopping with {rows} rows of history not written" in warnings[0]
    assert f"saved in {spill}, to be written at the next start" in warnings[0]
    with open(spill) as saved:
        assert json.loads(saved.readline())["format"] == SPILL_FORMAT
    assert [r for b in read_spill(str(spill)) for r in b.rows] == [*intervals, *spans]
    assert not list(tmp_path.glob("*.tmp"))

    clock = Clock()
    second = service_for(history_url, clock, spill_path=str(spill))
    with capture_log("mitelacd.reports.writer") as logged:
        await started(second, clock)
        assert second.backlog == rows
        # A reader at start (today's figures) waits for the rows saved.
        today = second.query(lambda s: s.day_rows("pbx", DAY))
        await flushed(second, clock)
    loaded = [line for line in logged.lines(LogLevel.info) if f"saved in {spill}" in line]
    assert len(loaded) == 1 and f"{rows} rows saved in {spill} at the last stop" in loaded[0]
    assert not spill.exists()
    assert second.written_rows == rows and second.transactions == 1
    order = {kind: n for n, kind in enumerate(ROW_KINDS)}
    assert await today == sorted(intervals, key=lambda r: (r.interval_start, order[r.kind]))
    states = await second.query(lambda s: s.states(None, None, 0, at("23:00")))
    assert states == spans
    await stopped(second)
    assert not spill.exists()


@pytest_twisted.ensureDeferred
async def test_postgresql_down_at_stop_loses_nothing(tmp_path: Path) -> None:
    """The server stops with 11 rows waiting; the next start writes them."""
    spill = tmp_path / "mitel_data.json.history-spill.jsonl"
    server = PostgresServer()
    try:
        server.start()
        url = server.create_database("atstop")
        clock = Clock()
        service = service_for(url, clock, spill_path=str(spill))
        await started(service, clock)
        service.add(interval_rows(20), [])
        await flushed(service, clock)
        await threads.deferToThread(server.stop)
        with capture_log("mitelacd.reports.writer"):
            service.add(interval_rows(10, 20), [span("1001", at("08:00"), at("08:01"))])
            clock.advance(1)
            await until(lambda: service.write_failures == 1)
            await stopped(service)
        assert service.dropped_rows == 0 and service.spilled_rows == 11
        assert spill.exists()
        await threads.deferToThread(server.start)
        clock = Clock()
        again = service_for(url, clock, spill_path=str(spill))
        await started(again, clock)
        await flushed(again, clock)
        await stopped(again)
        assert not spill.exists()
        store = open_store(url)
        try:
            assert store.count("agent_intervals") == 30
            assert store.count("agent_states") == 1
        finally:
            store.close()
    finally:
        server.close()


@pytest_twisted.ensureDeferred
async def test_a_batch_maybe_committed_is_saved_with_its_mark(
    tmp_path: Path, down: type[DownHistoryStore]
) -> None:
    """Committed without an answer, then saved at stop: the next start does not write it twice."""
    url = str(tmp_path / "h.db")
    spill = tmp_path / "spill.jsonl"
    clock = Clock()
    service = service_for(url, clock, store_class=down, spill_path=str(spill))
    await started(service, clock)
    FlakyHistoryStore.lose_answer = 1
    with capture_log("mitelacd.reports.writer"):
        service.add(interval_rows(10), [])
        clock.advance(1)
        await until(lambda: service.write_failures == 1)
        FlakyHistoryStore.down = True
        service.add(interval_rows(5, 10), [])
        await stopped(service)
    assert service.spilled_rows == 15 and FlakyHistoryStore.writes == 1
    saved = read_spill(str(spill))
    assert [len(b.rows) for b in saved] == [10, 5]
    assert saved[0].written_if == {saved[0].token: 10}
    FlakyHistoryStore.down = False
    clock = Clock()
    again = service_for(url, clock, store_class=down, spill_path=str(spill))
    await started(again, clock)
    await flushed(again, clock)
    assert FlakyHistoryStore.writes == 2  # the batch committed before was not written again
    assert again.written_rows == 15 and again.transactions == 1
    report = await again.query(lambda s: s.report("agent", DAY, DAY))
    assert len(report) == 15 and {r["acd_calls"] for r in report} == {1}
    assert not spill.exists()
    await stopped(again)


@pytest_twisted.ensureDeferred
async def test_a_spill_file_that_cannot_be_read_is_set_aside(tmp_path: Path) -> None:
    spill = tmp_path / "spill.jsonl"
    spill.write_text('{"format": "mitelacd-history-spill", "version": 1, "batches": 1}\n{"batch"')
    clock = Clock()
    service = service_for(str(tmp_path / "h.db"), clock, spill_path=str(spill))
    with capture_log("mitelacd.reports.writer") as logged:
        await started(service, clock)
    errors = logged.lines(LogLevel.error)
    assert (
        len(errors) == 1
        and f"the rows saved in {spill} at the last stop cannot be read" in (errors[0])
    )
    assert not spill.exists() and (tmp_path / "spill.jsonl.unreadable").exists()
    assert service.ok and service.backlog == 0
    await stopped(service)


# --- C: memory ---------------------------------------------------------------------------------


def a_second_of_events(n: int) -> tuple[list[IntervalRow], list[StateSpan]]:
    """What the figures hand over in a second at 5,000 events/s, with 500 agents' rows."""
    base = at("08:00") + n * 10
    spans = [
        span(str(1000 + i % 500), base + i / 1000, base + i / 1000 + 1, path="860", button=1)
        for i in range(5000)
    ]
    return interval_rows(500, n * 500), spans


@pytest_twisted.ensureDeferred
async def test_memory_stays_the_same_however_long_the_history_is_written(
    tmp_path: Path,
) -> None:
    """The writer's SQLite page cache, Python's allocations and SQLAlchemy's statement
    cache after 20 seconds' batches and after 40: the same."""
    before = sqlite_memory()
    assert before is not None and before >= 0, "SQLite's memory cannot be read"
    clock = Clock()
    service = service_for(str(tmp_path / "h.db"), clock)
    await started(service, clock)
    store = service._store
    assert store is not None
    statements = store.engine._compiled_cache
    assert statements is not None

    async def seconds(first: int, count: int) -> None:
        for n in range(first, first + count):
            service.add(*a_second_of_events(n))
            await flushed(service, clock)

    tracemalloc.start()
    try:
        await seconds(0, 20)
        python_at_n = tracemalloc.get_traced_memory()[0]
        sqlite_at_n = sqlite_memory() or 0
        statements_at_n = len(statements)
        await seconds(20, 20)
        python_at_2n = tracemalloc.get_traced_memory()[0]
        sqlite_at_2n = sqlite_memory() or 0
        statements_at_2n = len(statements)
    finally:
        tracemalloc.stop()
    assert service.written_rows == 40 * 5500
    # 40 seconds' rows fill a file of over 20 MiB: its pages were all in the cache once.
    assert os.path.getsize(tmp_path / "h.db") > 20 * 2**20
    assert sqlite_at_2n - sqlite_at_n < 2**20, (sqlite_at_n, sqlite_at_2n)
    assert sqlite_at_2n - before < (SQLITE_CACHE_KIB + 4096) * 1024
    assert python_at_2n - python_at_n < 2**20, (python_at_n, python_at_2n)
    assert statements_at_2n == statements_at_n
    # A report reads every page; what it read is let go after it.
    await service.query(lambda s: s.states(None, None, 0, at("23:00")))
    assert (sqlite_memory() or 0) - sqlite_at_2n < 2**20
    await stopped(service)


@pytest_twisted.ensureDeferred
async def test_memory_freed_by_a_large_batch_is_given_back(tmp_path: Path) -> None:
    """An interval's close for a large floor is a batch of thousands of rows: once it
    is written and let go, what it held goes back to the system; a second's few rows do not."""
    clock = Clock()
    given_back: list[str] = []
    service = service_for(
        str(tmp_path / "h.db"),
        clock,
        give_back=lambda: given_back.append(threading.current_thread().name),
    )
    await started(service, clock)
    service.add(interval_rows(10), [])
    await flushed(service, clock)
    clock.advance(0)
    assert service.written_rows == 10 and given_back == []
    service.add(interval_rows(heap.LARGE_BATCH_ROWS, 100), [])
    await flushed(service, clock)
    assert service.written_rows == 10 + heap.LARGE_BATCH_ROWS
    assert given_back == []  # not while the batch is still held
    clock.advance(0)
    assert given_back == [threading.current_thread().name], given_back
    await stopped(service)
