"""One writer per history source: a second daemon with the same source writes nothing.

On a SQLite file and on a real PostgreSQL: the store's claim on a source (an
advisory lock on PostgreSQL, a lock file beside a SQLite database) and
``mitelacd_writers``; two writers (HistoryService) of one source, of which
the second is refused, writes nothing, and takes over once the first stops;
the same with the day's figures fed the same events; and two real daemons.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_twisted
import sqlalchemy as sa
from test_history import (
    DAY,
    at,
    flushed,
    row,
    span,
    started,
    stopped,
    until,
)
from twisted.internet import reactor
from twisted.internet.interfaces import IReactorFromThreads, IReactorTime
from twisted.internet.task import Clock
from twisted.logger import LogLevel

from mitelacd.floor.render import iso_utc
from mitelacd.reports.rows import INTERVAL_SECONDS, IntervalRow, StateSpan
from mitelacd.reports.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    TABLES,
    HistoryStore,
    SourceTaken,
    SourceWriter,
    open_store,
    source_lock_key,
    source_lock_path,
)
from mitelacd.reports.writer import HistoryService
from mitelacd.testing import Twistd, call_body, capture_log, fake_pbx, wire
from mitelacd.testing.history import FiguresAndHistory
from mitelacd.testing.postgres import PostgresServer

HOST = socket.gethostname()
PID = os.getpid()
#: Nothing listens there: a PostgreSQL that cannot be reached.
UNREACHABLE = "postgresql://mitelacd@127.0.0.1:1/history"


@pytest.fixture
def reader(history_url: str) -> Iterator[HistoryStore]:
    """A store that only reads (as mitelacd-report does): it needs no lock."""
    opened = open_store(history_url)
    opened.migrate()
    try:
        yield opened
    finally:
        opened.close()


def taken_message(source: str, writer: SourceWriter) -> str:
    return (
        f"history source {source!r} is already written by mitelacd on host {writer.host},"
        f" pid {writer.pid}, since {iso_utc(writer.started_at)}"
    )


def taken_problem(source: str, writer: SourceWriter) -> str:
    return (
        f"another daemon writes history source {source!r} (host {writer.host},"
        f" pid {writer.pid}, since {iso_utc(writer.started_at)})"
    )


# --- the schema --------------------------------------------------------------------------------


def test_version_3_adds_the_writers_table(history_url: str) -> None:
    store = open_store(history_url)
    try:
        assert store.migrate(MIGRATIONS[:2]) == 2
        assert "mitelacd_writers" not in sa.inspect(store.engine).get_table_names()
        store.write("pbx", [row("agent", "1001", "08:00", acd_calls=1)], [])
        assert MIGRATIONS[2].version == 3
        assert store.migrate(MIGRATIONS[:3]) == 3
        columns = sa.inspect(store.engine).get_columns("mitelacd_writers")
        assert [c["name"] for c in columns] == [
            "source",
            "host",
            "pid",
            "started_at",
            "heartbeat_at",
        ]
        assert [c["name"] for c in columns] == [c.name for c in TABLES["mitelacd_writers"].columns]
        assert all(not c["nullable"] for c in columns)
        assert sa.inspect(store.engine).get_pk_constraint("mitelacd_writers")[
            "constrained_columns"
        ] == ["source"]
        with store.engine.connect() as connection:
            applied = connection.execute(
                sa.text("SELECT description FROM mitelacd_schema WHERE version = 3")
            ).scalar()
        assert applied == "mitelacd_writers: the daemon writing each source"
        assert store.count("agent_intervals") == 1  # what was there is still there
        assert store.writers() == []
        assert store.migrate() == SCHEMA_VERSION
    finally:
        store.close()


# --- the store's claim -------------------------------------------------------------------------


def test_a_second_claim_of_a_source_is_refused_naming_the_first(
    history_url: str, reader: HistoryStore
) -> None:
    first, second = open_store(history_url), open_store(history_url)
    try:
        first.migrate()
        second.migrate()
        mine = first.claim("pbx1", host="acd-a", pid=4242)
        assert (mine.source, mine.host, mine.pid) == ("pbx1", "acd-a", 4242)
        assert abs(mine.started_at - time.time()) < 60
        with pytest.raises(SourceTaken) as caught:
            second.claim("pbx1", host="acd-b", pid=5151)
        assert caught.value.writer == mine
        assert str(caught.value) == taken_message("pbx1", mine)
        assert str(caught.value).startswith(
            "history source 'pbx1' is already written by mitelacd on host acd-a, pid 4242, since "
        )
        assert caught.value.problem == taken_problem("pbx1", mine)
        # A write of the source refused asks for the lock again: refused, nothing written.
        with pytest.raises(SourceTaken):
            second.write("pbx1", [row("agent", "1001", "08:00", acd_calls=1)], [])
        assert reader.count("agent_intervals") == 0
        first.write("pbx1", [row("agent", "1001", "08:00", acd_calls=1)], [])
        # Another source is free, and reading needs no lock.
        other = second.claim("pbx2", host="acd-b", pid=5151)
        second.write("pbx2", [row("agent", "1001", "08:00", acd_calls=2)], [])
        assert [(r["id"], r["acd_calls"]) for r in second.report("agent", DAY, DAY)] == [
            ("1001", 3)
        ]
        assert reader.writers() == [mine, other]
        # Once the first lets the source go, its row goes and the source is free.
        first.release_source()
        assert reader.writers() == [other]
        again = second.claim("pbx1", host="acd-b", pid=5151)
        assert reader.writer("pbx1") == again
        second.write("pbx1", [row("agent", "1001", "08:15", acd_calls=1)], [])
        assert reader.count("agent_intervals", "pbx1") == 2
        with pytest.raises(SourceTaken, match="already written by mitelacd on host acd-b"):
            first.claim("pbx1")
        # A store writes one source: the one claimed before is let go when it claims another.
        assert reader.writer("pbx2") == other
        assert first.claim("pbx2", host="acd-a", pid=4242).source == "pbx2"
        assert reader.writer("pbx2") != other
    finally:
        first.close()
        second.close()
    # Closing lets every lock go (the rows stay: close does not touch the database).
    third = open_store(history_url)
    try:
        assert third.claim("pbx1").host == HOST
        assert third.claim("pbx2").pid == PID
    finally:
        third.close()


def test_the_heartbeat_says_the_writer_is_still_there(
    history_url: str, reader: HistoryStore
) -> None:
    store = open_store(history_url)
    try:
        store.migrate()
        mine = store.claim("pbx")
        time.sleep(0.01)
        store.heartbeat()
        beaten = reader.writer("pbx")
        assert beaten is not None
        assert beaten.started_at == mine.started_at and beaten.heartbeat_at > mine.heartbeat_at
        # A row gone (deleted by hand) is made again by the next heartbeat.
        with reader.engine.begin() as connection:
            connection.execute(sa.text("DELETE FROM mitelacd_writers"))
        store.heartbeat()
        assert reader.writer("pbx") is not None
    finally:
        store.close()


def test_the_lock_file_of_a_sqlite_database(tmp_path: Path) -> None:
    database = tmp_path / "history.db"
    assert source_lock_path(str(database), "10.1.2.3") == f"{database}.10.1.2.3.lock"
    assert source_lock_path(str(database), "site a/b") == f"{database}.site%20a%2Fb.lock"
    long = source_lock_path(str(database), "x" * 500)
    assert len(os.path.basename(long)) < 80 and long.endswith("-500.lock")
    store = open_store(str(database))
    try:
        store.migrate()
        store.claim("site a/b")
        lock = Path(f"{database}.site%20a%2Fb.lock")
        assert lock.read_text() == f"{PID}\n"
    finally:
        store.close()
    assert lock.exists()  # never deleted: flock on it is what counts


def test_the_postgresql_lock_keys() -> None:
    first, second = source_lock_key("pbx1")
    assert first == 0x6D616364
    assert -(2**31) <= second < 2**31
    assert source_lock_key("pbx1") == (first, second)
    assert source_lock_key("pbx2") != (first, second)


_HOLD = """
import sys, time
from mitelacd.reports.store import open_store
store = open_store(sys.argv[1])
store.migrate()
store.claim(sys.argv[2])
print("held", flush=True)
time.sleep(120)
"""


@pytest.mark.processes
def test_the_lock_of_a_process_that_ended_is_free(history_url: str, reader: HistoryStore) -> None:
    """Killed without stopping: its lock is let go (kernel, or the server's session end)."""
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLD, history_url, "pbx"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "held\n"
        store = open_store(history_url)
        try:
            with pytest.raises(SourceTaken) as caught:
                store.claim("pbx")
            assert caught.value.writer is not None and caught.value.writer.pid == child.pid
            assert f"pid {child.pid}, since " in str(caught.value)
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
            # The row of the daemon that ended stays, with its last heartbeat ...
            left = reader.writer("pbx")
            assert left is not None and left.pid == child.pid
            # ... and says nothing: the lock is free.
            for _ in range(100):
                try:
                    mine = store.claim("pbx")
                    break
                except SourceTaken:
                    time.sleep(0.1)
            else:
                raise AssertionError("the lock of the process killed was not let go")
            assert mine.pid == PID
            assert reader.writer("pbx") == mine
        finally:
            store.close()
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()


def lock_session(store: HistoryStore, source: str) -> int:
    """The PostgreSQL backend that holds the lock on ``source``."""
    first, second = source_lock_key(source)
    with store.engine.connect() as connection:
        pid = connection.execute(
            sa.text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND classid = :first AND objid = :second AND objsubid = 2"
            ),
            {"first": first, "second": second % 2**32},
        ).scalar()
    assert pid is not None
    return int(pid)


def end_session(store: HistoryStore, pid: int) -> None:
    with store.engine.begin() as connection:
        connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


def test_a_postgresql_lock_lost_with_its_connection_is_taken_again_or_refused(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.create_database("lost_lock")
    first, second, reader = open_store(url), open_store(url), open_store(url)
    try:
        first.migrate()
        mine = first.claim("pbx", host="acd-a", pid=1)
        # The server notices within a minute or so that the lock's client is gone.
        lock = first.source_lock
        assert lock is not None and lock.connection is not None
        shown = lock.connection.execute(sa.text("SHOW tcp_keepalives_idle")).scalar()
        lock.connection.commit()
        assert shown in ("30", "30s")
        session = lock_session(reader, "pbx")
        end_session(reader, session)
        for _ in range(100):  # the server ends the session
            try:
                theirs = second.claim("pbx", host="acd-b", pid=2)
                break
            except SourceTaken:
                time.sleep(0.05)
        else:
            raise AssertionError("the lock stayed with a session that was ended")
        rows = [row("agent", "1001", "08:00", acd_calls=1)]
        # The first's connection is gone: its write fails, and the next asks for the
        # lock again, which the second has now.
        with pytest.raises(sa.exc.OperationalError):
            first.write("pbx", rows, [])
        with pytest.raises(SourceTaken) as caught:
            first.write("pbx", rows, [])
        assert caught.value.writer == theirs
        assert reader.count("agent_intervals") == 0
        second.write("pbx", rows, [])
        # A lock lost while nobody else wants it is simply taken again.
        end_session(reader, lock_session(reader, "pbx"))
        with pytest.raises(sa.exc.OperationalError):
            second.write("pbx", rows, [])
        second.write("pbx", rows, [])
        retaken = reader.writer("pbx")
        assert retaken is not None and (retaken.host, retaken.pid) == ("acd-b", 2)
        assert retaken.started_at > theirs.started_at > mine.started_at
        assert lock_session(reader, "pbx") != session
        assert reader.count("agent_intervals") == 2
    finally:
        for store in (first, second, reader):
            store.close()
        postgres_server.drop_database("lost_lock")


# --- two writers of one source -----------------------------------------------------------------


def service(url: str, clock: Clock, source: str = "pbx", **options: Any) -> HistoryService:
    return HistoryService(
        lambda: open_store(url),
        source,
        clock,
        cast(IReactorFromThreads, reactor),
        url=url,
        **options,
    )


async def refused(history: HistoryService, clock: Clock) -> None:
    history.startService()
    clock.advance(0)
    await until(lambda: history.source_taken is not None and history._busy is None, what="refused")


@pytest_twisted.ensureDeferred
async def test_a_second_writer_of_a_source_writes_nothing_then_takes_over(
    history_url: str, reader: HistoryStore
) -> None:
    # The second's figures had counted, at 08:05, one call and five minutes of 1001's
    # interval from 08:00: the first wrote those (at its stop), the second writes the rest.
    def under_way() -> tuple[float, list[IntervalRow]]:
        return at("08:05"), [
            row("agent", "1001", "08:00", acd_calls=1, logged_in_seconds=300.0),
            row("path", "860", "08:00", acd_calls=1, max_waiting=4),
        ]

    clock1, clock2 = Clock(), Clock()
    first = service(history_url, clock1)
    second = service(history_url, clock2, under_way=under_way)
    await started(first, clock1)
    holder = reader.writer("pbx")
    assert holder is not None and (holder.host, holder.pid) == (HOST, PID)
    with capture_log("mitelacd.reports.writer") as logged:
        await refused(second, clock2)
        health = second.health()
        assert health["ok"] is False and second.ok is False
        assert health["problem"] == taken_problem("pbx", holder)
        assert health["problem"] == (
            f"another daemon writes history source 'pbx' (host {HOST}, pid {PID},"
            f" since {iso_utc(holder.started_at)})"
        )
        assert health["failing_since"] is not None  # for /healthz's warning
        assert first.ok and first.health()["problem"] is None

        # Both are handed the same rows; only the first writes them.
        rows = [
            row("agent", "1003", "07:45", acd_calls=5),
            row("agent", "1001", "08:00", acd_calls=1, logged_in_seconds=300.0),
            row("path", "860", "08:00", acd_calls=1, max_waiting=4),
        ]
        spans = [span("1001", at("07:55"), at("07:59"))]
        first.add(rows, spans)
        second.add(rows, spans)
        assert (second.skipped_rows, second.backlog, second.health()["skipped_rows"]) == (4, 0, 4)
        assert second.flushed().called  # nothing of its own waits
        await flushed(first, clock1)
        assert reader.count("agent_intervals") == 2 and reader.count("agent_states") == 1
        # Reading needs no lock: the second answers reports from what the first wrote.
        report = await second.query(lambda s: s.report("agent", DAY, DAY))
        assert {r["id"]: r["acd_calls"] for r in report} == {"1001": 1, "1003": 5}
        # Asked again: still refused, and not said again.
        clock2.advance(second.lock_retry_delay)
        await until(lambda: second._busy is None)
        assert second.source_taken is not None and not second.ok
        # The first says it still writes, every 30 s.
        time.sleep(0.01)
        clock1.advance(30)
        await until(lambda: first._busy is None)
        beaten = reader.writer("pbx")
        assert beaten is not None and beaten.heartbeat_at > holder.heartbeat_at

        await stopped(first)
        assert reader.writers() == []  # a clean stop lets the source go, and says so
        assert not second.ok
        clock2.advance(second.lock_retry_delay)
        await until(lambda: second.ok, what="the source taken over")
    errors = logged.lines(LogLevel.error)
    assert len(errors) == 1, errors
    assert errors[0] == (
        taken_message("pbx", holder) + f": this daemon writes nothing of it to {history_url}"
        " meanwhile (that daemon writes the same rows) and takes the source over when that"
        " daemon stops; daemons that watch different PBXs need a --history-source each"
    )
    over = [line for line in logged.lines(LogLevel.info) if "now writes" in line]
    assert over == [
        f"history: this daemon now writes history source 'pbx' to {history_url}, taken over"
        f" from mitelacd on host {HOST}, pid {PID} after 10 s; 4 rows were let go meanwhile"
        " as that daemon's"
    ]
    took = reader.writer("pbx")
    assert took is not None and took.started_at > holder.started_at

    # What the second hands over now is written from the takeover (08:05) on.
    second.add(
        [
            row("agent", "1003", "07:45", acd_calls=5),  # closed before: the first's
            row("agent", "1001", "08:00", acd_calls=3, logged_in_seconds=900.0),
            row("agent", "1002", "08:00", acd_calls=1),  # nothing counted before 08:05
            row("path", "860", "08:00", acd_calls=1, max_waiting=6),
            row("agent", "1001", "08:15", acd_calls=1),
        ],
        [
            span("1002", at("07:50"), at("08:04")),  # ended before: the first's
            span("1001", at("07:59"), at("08:07")),  # cut at 08:05
            span("1001", at("08:07"), at("08:09")),
        ],
    )
    assert second.skipped_rows == 4 + 2
    await flushed(second, clock2)
    await stopped(second)
    assert reader.writers() == []
    by_interval = {
        (r["id"], r["start"]): (r["acd_calls"], r["logged_in_seconds"])
        for r in reader.report("agent", DAY, DAY, "15m")
    }
    assert by_interval == {
        ("1003", at("07:45")): (5, 0.0),
        ("1001", at("08:00")): (1 + 2, 300.0 + 600.0),
        ("1002", at("08:00")): (1, 0.0),
        ("1001", at("08:15")): (1, 0.0),
    }
    (path,) = reader.report("path", DAY, DAY, "15m")
    # The path's one call counted once; its peak is the larger of the two.
    assert (path["acd_calls"], path["max_waiting"]) == (1, 6)
    states = reader.states(None, None, 0, at("23:00"))
    assert [(s.agent, s.start, s.end) for s in states] == [
        ("1001", at("07:55"), at("07:59")),
        ("1001", at("08:05"), at("08:07")),
        ("1001", at("08:07"), at("08:09")),
    ]


@pytest_twisted.ensureDeferred
async def test_writers_of_different_sources_both_write(
    history_url: str, reader: HistoryStore
) -> None:
    clock = Clock()
    north = service(history_url, clock, "pbx-north")
    south = service(history_url, clock, "pbx-south")
    await started(north, clock)
    await started(south, clock)
    try:
        assert north.ok and south.ok
        north.add([row("agent", "1001", "08:00", acd_calls=1)], [])
        south.add([row("agent", "1001", "08:00", acd_calls=2)], [])
        await flushed(north, clock)
        await flushed(south, clock)
        assert [w.source for w in reader.writers()] == ["pbx-north", "pbx-south"]
    finally:
        await stopped(north)
        await stopped(south)
    assert reader.count("agent_intervals", "pbx-north") == 1
    assert reader.count("agent_intervals", "pbx-south") == 1
    (both,) = reader.report("agent", DAY, DAY)
    assert both["acd_calls"] == 3


@pytest_twisted.ensureDeferred
async def test_rows_of_the_last_run_wait_while_refused_and_are_written_after(
    history_url: str, tmp_path: Path, reader: HistoryStore
) -> None:
    """The spill file of a run that held the source is its own: kept, and written later."""
    spill = tmp_path / "mitel_data.json.history-spill.jsonl"
    clock = Clock()
    last = service(UNREACHABLE, clock, spill_path=str(spill))
    rows = [row("agent", "1001", "08:00", acd_calls=1), row("agent", "1002", "08:00", acd_calls=1)]
    with capture_log("mitelacd.reports.writer"):
        last.startService()
        clock.advance(0)
        await until(lambda: last.write_failures == 1)
        last.add(rows, [])
        await stopped(last)
    assert spill.exists() and last.spilled_rows == 2

    clock1, clock2 = Clock(), Clock()
    first = service(history_url, clock1)
    await started(first, clock1)
    second = service(history_url, clock2, spill_path=str(spill))
    with capture_log("mitelacd.reports.writer") as logged:
        await refused(second, clock2)
        assert second.backlog == 2 and second.written_rows == 0
        assert reader.count("agent_intervals") == 0
        await stopped(first)
        clock2.advance(second.lock_retry_delay)
        await until(lambda: second.ok, what="taken over")
        await flushed(second, clock2)
    assert not spill.exists()
    assert second.written_rows == 2 and second.skipped_rows == 0
    assert len(logged.lines(LogLevel.error)) == 1
    await stopped(second)
    assert reader.count("agent_intervals") == 2


@pytest_twisted.ensureDeferred
async def test_a_writer_whose_postgresql_lock_went_stops_writing_and_names_the_new_one(
    postgres_server: PostgresServer,
) -> None:
    """Its connection ended, the lock is another's: it writes nothing of that daemon's time."""
    url = postgres_server.create_database("lock_went")
    reader = open_store(url)
    clock1, clock2 = Clock(), Clock()
    first = service(url, clock1)
    second = service(url, clock2)
    try:
        await started(first, clock1)
        with capture_log("mitelacd.reports.writer") as logged:
            await refused(second, clock2)
            end_session(reader, lock_session(reader, "pbx"))
            for _ in range(100):
                clock2.advance(second.lock_retry_delay)
                await until(lambda: second._busy is None)
                if second.ok:
                    break
            assert second.ok
            theirs = reader.writer("pbx")
            assert theirs is not None
            # The first still has rows of its own time, and some of the second's.
            now = time.time()
            interval = int(now - now % INTERVAL_SECONDS)
            old = row("agent", "1001", "08:00", acd_calls=1)
            new = IntervalRow("agent", "1002", DAY, interval, interval, {"acd_calls": 1})
            spans = [
                StateSpan("1001", "available", "on_call", now - 100, now - 50, "G"),
                StateSpan("1001", "on_call", "available", now - 50, now + 50, "J"),
            ]
            first.add([old, new], spans)
            for _ in range(5):
                clock1.advance(60)
                await until(lambda: first._busy is None)
                if first.source_taken is not None:
                    break
            assert first.source_taken is not None and not first.ok
            assert first.health()["problem"] == taken_problem("pbx", theirs)
            # Its rows from after the second took the source are let go; the rest wait.
            assert first.skipped_rows == 1
            assert first.backlog == 3
            assert reader.count("agent_intervals") == 0
        errors = [line for line in logged.lines(LogLevel.error) if "already written" in line]
        assert len(errors) == 2 and errors[1].startswith(taken_message("pbx", theirs))
        await stopped(second)
        clock1.advance(first.lock_retry_delay)
        await until(lambda: first.ok, what="the first takes the source back")
        await flushed(first, clock1)
        assert reader.count("agent_intervals") == 1
        (kept,) = reader.report("agent", DAY, DAY)
        assert kept["id"] == "1001"
        states = reader.states(None, "1001", 0, now + 1000)
        assert [(s.start, s.end) for s in states] == [
            (now - 100, now - 50),
            (now - 50, theirs.started_at),
        ]
    finally:
        with capture_log("mitelacd.reports.writer"):
            for history in (first, second):
                if history.running:
                    await stopped(history)
        reader.close()
        postgres_server.drop_database("lock_went")


# --- with the day's figures --------------------------------------------------------------------

CLOCK = cast(IReactorTime, reactor)


def Daemon(url: str) -> FiguresAndHistory:  # noqa: N802 (it stands for a daemon)
    """A daemon's floor, figures and history, retrying the source's lock every 0.1 s."""
    return FiguresAndHistory(url, lock_retry_delay=0.1)


def calls_kept(store: HistoryStore) -> dict[str, int]:
    today = datetime.date.today().isoformat()
    return {r["id"]: r["acd_calls"] for r in store.report("agent", today, today)}


def spans_apart(spans: Sequence[StateSpan]) -> bool:
    """No two spans of an agent cover the same time."""
    by_agent: dict[str, list[StateSpan]] = {}
    for s in spans:
        by_agent.setdefault(s.agent, []).append(s)
    for mine in by_agent.values():
        mine.sort(key=lambda s: s.start)
        if any(a.end > b.start for a, b in zip(mine, mine[1:])):
            return False
    return True


@pytest_twisted.ensureDeferred
async def test_two_daemons_fed_the_same_events_count_each_once(
    history_url: str, reader: HistoryStore
) -> None:
    first, second = Daemon(history_url), Daemon(history_url)
    await first.start()
    with capture_log(None) as logged:
        await second.start()
        assert second.history.source_taken is not None
        for daemon in (first, second):
            daemon.events("A G01860 J01", agent="1001")
            daemon.events("A G01860 J01", agent="1002")
        # The second's live figures go on: its own count, not the first's added in.
        assert first.calls() == second.calls() == {"1001": 1, "1002": 1}
        await first.stop()
        assert calls_kept(reader) == {"1001": 1, "1002": 1}
        await until(lambda: second.history.ok, what="taken over")
        second.events("G01860 J01", agent="1001")
        assert second.calls() == {"1001": 2, "1002": 1}
        await second.stop()
    assert calls_kept(reader) == {"1001": 2, "1002": 1}
    spans = reader.states(None, None, 0, time.time() + 1000)
    assert spans and spans_apart(spans)
    started_from_now = [
        line for line in logged.lines(LogLevel.warn) if "today's figures start from now" in line
    ]
    assert len(started_from_now) == 1
    assert "another daemon writes history source 'pbx'" in started_from_now[0]


# --- two real daemons --------------------------------------------------------------------------


def get_json(port: int, path: str) -> dict[str, Any]:
    """The JSON answer, whatever its status (``/healthz`` says 503 before the first record)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            body = response.read()
    except urllib.error.HTTPError as e:
        body = e.read()
    doc: dict[str, Any] = json.loads(body)
    return doc


def wait_until(read: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 60.0) -> Any:
    end = time.monotonic() + timeout
    value = read()
    while not done(value):
        if time.monotonic() > end:
            raise AssertionError(f"not within {timeout} s; last: {value!r}")
        time.sleep(0.1)
        value = read()
    return value


def said(daemon: Twistd, pattern: str) -> None:
    """``daemon`` logged a line matching ``pattern`` (before now, or within a minute)."""
    if not any(re.search(pattern, line) for line in daemon.seen):
        daemon.wait_for(pattern)


def history_health(port: int) -> dict[str, Any]:
    health: dict[str, Any] = get_json(port, "/api/v1/feed")["feed"]["history"]
    return health


def live_calls(port: int) -> dict[str, int]:
    agents = get_json(port, "/api/v1/reports/today/agents")["agents"]
    return {a["id"]: a["acd_calls"] for a in agents}


def daemon_argv(pbx: int, folder: Path, history: str) -> list[str]:
    folder.mkdir()
    return [
        "mitelacd",
        *("--host", "127.0.0.1", "--port", str(pbx), "--file", str(folder / "mitel_data.json")),
        *("--http", "tcp:0:interface=127.0.0.1"),
        *("--history", history, "--history-source", "pbx1"),
    ]


def calls(seq: int, agent: str, spec: str) -> bytes:
    return b"".join(
        wire(call_body((seq + n) % 100, token[0], "2001", agent, token[1:]))
        for n, token in enumerate(spec.split())
    )


@pytest.mark.processes
def test_two_daemons_of_one_source_the_second_is_refused_and_nothing_is_counted_twice(
    history_url: str, reader: HistoryStore, tmp_path: Path, processes: Callable[..., Twistd]
) -> None:
    server, pbx = fake_pbx()
    with server:
        first = processes(*daemon_argv(pbx, tmp_path / "a", history_url), cwd=tmp_path)
        assert isinstance(first, Twistd)
        to_first, _ = server.accept()
        first_http = first.http_port()
        wait_until(lambda: history_health(first_http), lambda h: h["ok"])
        second = processes(*daemon_argv(pbx, tmp_path / "b", history_url), cwd=tmp_path)
        to_second, _ = server.accept()
        second_http = second.http_port()
        with to_first, to_second:
            holder = reader.writer("pbx1")
            assert holder is not None and holder.pid == first.process.pid
            refusal = wait_until(
                lambda: history_health(second_http),
                lambda h: h["problem"] not in (None, "not open yet"),
            )
            assert refusal["ok"] is False
            assert refusal["problem"] == taken_problem("pbx1", holder)
            said(
                second,
                "history source 'pbx1' is already written by mitelacd on host"
                f" {re.escape(HOST)}, pid {first.process.pid}, since ",
            )
            healthz = get_json(second_http, "/healthz")
            assert any(taken_problem("pbx1", holder) in w for w in healthz["warnings"])
            assert get_json(first_http, "/healthz")["warnings"] == []

            # The same records to both: each counts them live; the history once.
            records = calls(10, "1001", "A G01860 J01") + calls(20, "1002", "A G01860 J01")
            to_first.sendall(records)
            to_second.sendall(records)
            for port in (first_http, second_http):
                wait_until(partial(live_calls, port), lambda c: c == {"1001": 1, "1002": 1})
            first.stop_cleanly()
            assert calls_kept(reader) == {"1001": 1, "1002": 1}
            stored = read_intervals(reader)
            assert len(stored) == len(set(stored))  # each interval's row once

            # The second takes over, and writes what follows.
            wait_until(lambda: history_health(second_http), lambda h: h["ok"], timeout=30)
            said(second, r"this daemon now writes history source 'pbx1'")
            took = reader.writer("pbx1")
            assert took is not None and took.pid == second.process.pid
            to_second.sendall(calls(30, "1001", "G01860 J01"))
            wait_until(lambda: live_calls(second_http), lambda c: c == {"1001": 2, "1002": 1})
            assert history_health(second_http)["skipped_rows"] > 0
            second.stop_cleanly()
    assert calls_kept(reader) == {"1001": 2, "1002": 1}
    spans = reader.states("pbx1", None, 0, time.time() + 1000)
    assert spans and spans_apart(spans)
    assert reader.writers() == []


def read_intervals(store: HistoryStore) -> list[tuple[str, int, str]]:
    """(source, interval start, id) of every agent interval row."""
    table = TABLES["agent_intervals"]
    with store.engine.connect() as connection:
        found = connection.execute(
            sa.select(table.c.source, table.c.interval_start, table.c.id)
        ).all()
    return [(str(s), int(i), str(a)) for s, i, a in found]
