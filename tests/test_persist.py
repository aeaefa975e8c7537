"""The legacy file: loaded at start, replaced atomically, writes coalesced, faults survived."""

from __future__ import annotations

import datetime
import errno
import json
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.task import Clock
from twisted.logger import LogLevel
from twisted.python.filepath import FilePath

from mitelacd.disk import (
    FileLock,
    FileLockedError,
    SystemCalls,
    duration_words,
    failure_kind,
    replace_file,
)
from mitelacd.floor.documents import FloorDocuments
from mitelacd.floor.legacy import validate_legacy
from mitelacd.floor.records import parse_record
from mitelacd.floor.state import FloorState
from mitelacd.persist import LegacyFileWriter, load_legacy
from mitelacd.testing import LogCapture, capture_log
from mitelacd.testing.fakes import FaultyDisk

#: Start-up time of the load tests, as local time (the set-aside name is local).
NOW = datetime.datetime(2026, 3, 9, 8, 0, 0).timestamp()
START = 1_700_000_000.0


def event(floor: FloorState, body: str) -> None:
    floor.recordReceived(parse_record(body.encode()))


def login(floor: FloorState, agent: str) -> None:
    event(floor, f"12A081502{'2001':<7}{agent:<7}00")


def document(last_update: float | None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "agents": {"6186": "out", "6184": "idle"},
        "groups": {"610": {"waiting": "000", "agents": "002", "longestwait": "0145"}},
        "paths": {"860": {"waiting": "003", "agents": "002", "longestwait": "0210"}},
    }
    if last_update is not None:
        doc["lastUpdate"] = last_update
    return doc


@pytest.fixture
def logged() -> Iterator[LogCapture]:
    with capture_log("mitelacd.persist") as capture:
        yield capture


def run(clock: Clock, seconds: float, step: float = 0.5) -> None:
    """Let ``seconds`` pass step by step, as a reactor would.

    One ``Clock.advance`` jumps to the end first, so a retry scheduled on
    the way would be timed from the end.
    """
    for _ in range(round(seconds / step)):
        clock.advance(step)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# Loading at start


def test_missing_file_loads_nothing(tmp_path: Path) -> None:
    assert load_legacy(FilePath(str(tmp_path / "mitel_data.json")), NOW) is None


def test_recent_file_is_loaded(tmp_path: Path) -> None:
    doc = document(1383899857.435)
    path = tmp_path / "mitel_data.json"
    path.write_text(json.dumps(doc))
    loaded = load_legacy(FilePath(str(path)), 1383899857.435 + 899, max_age=900)
    assert loaded == validate_legacy(doc)


def test_invalid_file_is_set_aside_and_logged(tmp_path: Path, logged: LogCapture) -> None:
    path = tmp_path / "mitel_data.json"
    path.write_bytes(b'{"agents": {"1": "in"}, "groups": ')
    assert load_legacy(FilePath(str(path)), NOW) is None
    aside = tmp_path / "mitel_data.json.invalid-20260309T080000"
    assert not path.exists()
    assert aside.read_bytes() == b'{"agents": {"1": "in"}, "groups": '
    assert any("not a valid data file" in line for line in logged.lines(LogLevel.error))


def test_wrong_shape_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "mitel_data.json"
    path.write_text(json.dumps({"agents": {"1001": "sleeping"}, "groups": {}, "paths": {}}))
    assert load_legacy(FilePath(str(path)), NOW) is None
    assert (tmp_path / "mitel_data.json.invalid-20260309T080000").exists()


def test_old_file_is_not_carried_and_left_in_place(tmp_path: Path, logged: LogCapture) -> None:
    path = tmp_path / "mitel_data.json"
    content = json.dumps(document(NOW - (3 * 3600 + 12 * 60 + 7)))
    path.write_text(content)
    assert load_legacy(FilePath(str(path)), NOW, max_age=900) is None
    assert path.read_text() == content
    assert logged.lines(LogLevel.info) == [
        f"not carrying {path}: last updated 3 h 12 min ago, more than --carry-max-age 900 s"
    ]


def test_file_just_within_max_age_is_carried(tmp_path: Path) -> None:
    path = tmp_path / "mitel_data.json"
    path.write_text(json.dumps(document(NOW - 900)))
    assert load_legacy(FilePath(str(path)), NOW, max_age=900) is not None
    assert load_legacy(FilePath(str(path)), NOW + 0.5, max_age=900) is None


@pytest.mark.parametrize("last_update", [0, None])
def test_file_without_last_update_is_not_carried(
    tmp_path: Path, logged: LogCapture, last_update: float | None
) -> None:
    path = tmp_path / "mitel_data.json"
    path.write_text(json.dumps(document(last_update)))
    assert load_legacy(FilePath(str(path)), NOW) is None
    assert path.exists()
    assert logged.lines() == [f"not carrying {path}: it has no lastUpdate"]


def test_file_from_the_future_is_carried_only_when_slightly_ahead(
    tmp_path: Path, logged: LogCapture
) -> None:
    path = tmp_path / "mitel_data.json"
    path.write_text(json.dumps(document(NOW + 30)))
    assert load_legacy(FilePath(str(path)), NOW, max_age=900) is not None
    assert logged.lines() == []
    path.write_text(json.dumps(document(NOW + 2 * 86400 + 3 * 3600)))
    assert load_legacy(FilePath(str(path)), NOW, max_age=900) is None
    assert path.exists()
    assert logged.lines(LogLevel.warn) == [
        f"not carrying {path}: last updated 2 d 3 h in the future,"
        " more than --carry-max-age 900 s ahead; is the clock right?"
    ]


def test_carry_max_age_zero_never_carries(tmp_path: Path, logged: LogCapture) -> None:
    path = tmp_path / "mitel_data.json"
    path.write_text(json.dumps(document(NOW)))
    assert load_legacy(FilePath(str(path)), NOW, max_age=0) is None
    assert logged.lines() == [f"not carrying {path}: --carry-max-age is 0"]


def test_durations_read_as_words() -> None:
    assert duration_words(0.2) == "under 1 s"
    assert duration_words(45) == "45 s"
    assert duration_words(12 * 60 + 5) == "12 min 5 s"
    assert duration_words(3 * 3600 + 12 * 60 + 59) == "3 h 12 min"
    assert duration_words(4 * 86400 + 2 * 3600) == "4 d 2 h"


# Writing


def make_writer(
    tmp_path: Path,
    interval: float = 1.0,
    probe: FaultyDisk | None = None,
    folder: str | None = None,
) -> tuple[LegacyFileWriter, FloorState, Clock, Path]:
    clock = Clock()
    clock.advance(START)
    if probe is not None:
        probe.clock = clock
    floor = FloorState(clock)
    base = tmp_path / folder if folder else tmp_path
    base.mkdir(exist_ok=True)
    path = base / "mitel_data.json"
    system = probe.system() if probe is not None else SystemCalls()
    writer = LegacyFileWriter(
        FilePath(str(path)), FloorDocuments(floor), clock, interval, system=system
    )
    writer.startService()
    return writer, floor, clock, path


def test_writes_are_coalesced_and_the_last_state_is_written(tmp_path: Path) -> None:
    writer, floor, clock, path = make_writer(tmp_path, interval=1.0)
    login(floor, "1001")
    clock.advance(0)
    assert writer.writes == 1
    assert json.loads(path.read_text())["agents"] == {"1001": "in"}
    for agent in ("1002", "1003", "1004"):
        login(floor, agent)
        clock.advance(0.2)
    assert writer.writes == 1  # still inside the interval
    clock.advance(1.0)
    assert writer.writes == 2
    assert json.loads(path.read_text()) == floor.legacy()
    assert set(floor.legacy()["agents"]) == {"1001", "1002", "1003", "1004"}
    writer.stopService()


def test_stop_flushes_a_pending_write(tmp_path: Path) -> None:
    writer, floor, clock, path = make_writer(tmp_path, interval=3600)
    login(floor, "1001")
    clock.advance(0)
    event(floor, f"13C081502{'2001':<7}{'1001':<7}00")
    assert json.loads(path.read_text())["agents"] == {"1001": "in"}
    writer.stopService()
    assert json.loads(path.read_text())["agents"] == {"1001": "busy"}
    assert not clock.getDelayedCalls()


def test_unchanged_document_is_not_rewritten(tmp_path: Path) -> None:
    writer, floor, clock, path = make_writer(tmp_path)
    login(floor, "1001")
    clock.advance(0)
    event(floor, "16R08151020240311")  # keep-alive: the legacy view does not move
    clock.advance(5)
    assert writer.writes == 1
    writer.stopService()


def test_healthy_writer_reports_its_writes(tmp_path: Path) -> None:
    writer, floor, clock, path = make_writer(tmp_path)
    assert writer.health() == {
        "path": str(path),
        "writing": True,
        "problem": None,
        "failing_since": None,
        "last_written_at": None,
        "failed_attempts": 0,
        "writes": 0,
    }
    login(floor, "1001")
    clock.advance(0)
    health = writer.health()
    assert health["writing"] is True and writer.problem is None
    assert health["last_written_at"] == "2023-11-14T22:13:20.000Z"
    assert health["writes"] == 1
    writer.stopService()


def test_folder_removed_then_restored(tmp_path: Path, logged: LogCapture) -> None:
    probe = FaultyDisk()
    writer, floor, clock, path = make_writer(tmp_path, probe=probe, folder="sub")
    login(floor, "1001")
    clock.advance(0)
    folder = path.parent
    folder.rename(tmp_path / "gone")
    login(floor, "1002")
    run(clock, 1)  # the paced write fails
    run(clock, 1 + 2 + 4)  # so do three retries
    assert writer.writes == 1
    assert writer.failed_attempts == 4
    assert writer.problem == "folder missing"
    # The file that was written moved with its folder, whole, and nothing else is left.
    assert json.loads((tmp_path / "gone" / "mitel_data.json").read_text())["agents"] == {
        "1001": "in"
    }
    assert leftovers(tmp_path / "gone") == []
    [line] = logged.lines(LogLevel.error)
    assert line.startswith(f"cannot write {path}: folder missing ([Errno 2] No such file")
    assert line.endswith("the last good file is kept and writing is retried, at most 30 s apart")
    folder.mkdir()
    login(floor, "1003")
    run(clock, 8)  # the next retry
    assert writer.writes == 2
    assert set(json.loads(path.read_text())["agents"]) == {"1001", "1002", "1003"}
    assert leftovers(folder) == []
    assert logged.lines(LogLevel.info) == [
        f"{path} is written again, after 4 failed attempts over 15 s"
    ]
    writer.stopService()


def test_permission_denied_keeps_the_last_good_file(tmp_path: Path, logged: LogCapture) -> None:
    probe = FaultyDisk()
    writer, floor, clock, path = make_writer(tmp_path, probe=probe)
    login(floor, "1001")
    clock.advance(0)
    before = path.read_bytes()
    probe.fail("open", errno.EACCES, str(path) + ".tmp")
    login(floor, "1002")
    run(clock, 1 + 1 + 2 + 4 + 8)
    assert writer.failed_attempts == 5
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []
    assert logged.lines(LogLevel.error) == [
        f"cannot write {path}: permission denied ([Errno 13] Permission denied:"
        f" '{path}.tmp'); the last good file is kept and writing is retried, at most 30 s apart"
    ]
    probe.heal()
    run(clock, 16)
    assert set(json.loads(path.read_text())["agents"]) == {"1001", "1002"}
    assert len(logged.lines(LogLevel.info)) == 1
    writer.stopService()


def test_disk_full_removes_its_temporary_file(tmp_path: Path, logged: LogCapture) -> None:
    probe = FaultyDisk()
    writer, floor, clock, path = make_writer(tmp_path, probe=probe)
    login(floor, "1001")
    clock.advance(0)
    before = path.read_bytes()
    # The temporary file is created, then the disk is full.
    probe.fail("write", errno.ENOSPC)
    for agent in ("1002", "1003", "1004"):
        login(floor, agent)
        run(clock, 1)
    run(clock, 60)
    assert writer.failed_attempts > 3
    assert ("unlink", str(path) + ".tmp") in probe.calls
    assert leftovers(tmp_path) == []
    assert path.read_bytes() == before
    assert [e["problem"] for e in logged.events if e["log_level"] is LogLevel.error] == [
        "disk full"
    ]
    probe.heal()
    run(clock, 30)
    assert json.loads(path.read_text()) == floor.legacy()
    assert set(floor.legacy()["agents"]) == {"1001", "1002", "1003", "1004"}
    assert leftovers(tmp_path) == []
    writer.stopService()


def test_failed_rename_removes_its_temporary_file(tmp_path: Path) -> None:
    probe = FaultyDisk()
    writer, floor, clock, path = make_writer(tmp_path, probe=probe)
    login(floor, "1001")
    clock.advance(0)
    before = path.read_bytes()
    probe.fail("replace", errno.EPERM)
    login(floor, "1002")
    run(clock, 1)
    assert writer.problem == "permission denied"
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []
    writer.stopService()


def test_each_kind_of_fault_is_logged_once_and_recovery_once(
    tmp_path: Path, logged: LogCapture
) -> None:
    probe = FaultyDisk()
    writer, floor, clock, path = make_writer(tmp_path, probe=probe)
    probe.fail("write", errno.ENOSPC)
    login(floor, "1001")
    clock.advance(0)
    run(clock, 1 + 2 + 4)  # disk full, four attempts
    probe.fail("write", errno.EDQUOT)  # the same kind in other words
    run(clock, 8)
    probe.fail("fsync", errno.EIO)
    run(clock, 16 + 30)
    probe.fail("open", errno.EROFS)
    run(clock, 30)
    probe.fail("write", errno.ENOSPC)
    run(clock, 30 + 30)
    assert writer.failed_attempts == 10
    errors = [e for e in logged.events if e["log_level"] is LogLevel.error]
    assert [e["problem"] for e in errors] == [
        "disk full",
        "Input/output error",
        "read-only file system",
        "disk full",
    ]
    assert logged.lines(LogLevel.info) == []
    probe.heal()
    login(floor, "1002")
    run(clock, 30)
    run(clock, 300)
    assert logged.lines(LogLevel.info) == [
        f"{path} is written again, after 10 failed attempts over 3 min 1 s"
    ]
    assert len(logged.events) == 5
    assert set(json.loads(path.read_text())["agents"]) == {"1001", "1002"}
    writer.stopService()


def test_backoff_doubles_up_to_thirty_intervals(tmp_path: Path) -> None:
    probe = FaultyDisk()
    writer, floor, clock, path = make_writer(tmp_path, interval=2.0, probe=probe)
    probe.fail("open", errno.ENOSPC)
    login(floor, "1001")
    clock.advance(0)
    for n in range(400):
        # Changes while failing wait for the scheduled retry.
        if n % 7 == 0:
            login(floor, str(2000 + n))
        clock.advance(1)
    gaps = [b - a for a, b in zip(probe.attempts, probe.attempts[1:])]
    assert gaps[:8] == [2, 4, 8, 16, 32, 60, 60, 60]
    assert set(gaps[5:]) == {60}
    assert [call.getTime() - clock.seconds() for call in clock.getDelayedCalls()] == [
        probe.attempts[-1] + 60 - clock.seconds()
    ]
    probe.heal()
    clock.advance(60)
    # The retry writes the latest state, and the pace is back to the interval.
    assert json.loads(path.read_text()) == floor.legacy()
    assert writer.writes == 1
    login(floor, "9999")
    clock.advance(0)
    clock.advance(2)
    assert writer.writes == 2
    assert "9999" in json.loads(path.read_text())["agents"]
    writer.stopService()


def test_health_says_the_file_is_not_written(tmp_path: Path) -> None:
    probe = FaultyDisk()
    writer, floor, clock, path = make_writer(tmp_path, probe=probe)
    login(floor, "1001")
    clock.advance(0)
    clock.advance(0.5)
    probe.fail("write", errno.ENOSPC)
    login(floor, "1002")
    run(clock, 0.5)  # the paced write fails
    run(clock, 1 + 2)
    assert writer.health() == {
        "path": str(path),
        "writing": False,
        "problem": "disk full",
        "failing_since": "2023-11-14T22:13:21.000Z",
        "last_written_at": "2023-11-14T22:13:20.000Z",
        "failed_attempts": 3,
        "writes": 1,
    }
    assert writer.problem == "disk full"
    probe.heal()
    run(clock, 4)
    health = writer.health()
    assert health["writing"] is True
    assert health["problem"] is None and health["failing_since"] is None
    assert health["failed_attempts"] == 0
    assert health["last_written_at"] == "2023-11-14T22:13:28.000Z"
    assert health["writes"] == 2
    writer.stopService()


def test_stop_cancels_the_retry_and_tries_once_more(tmp_path: Path, logged: LogCapture) -> None:
    probe = FaultyDisk()
    writer, floor, clock, path = make_writer(tmp_path, probe=probe)
    probe.fail("write", errno.ENOSPC)
    login(floor, "1001")
    clock.advance(0)
    assert writer.failed_attempts == 1 and clock.getDelayedCalls()
    writer.stopService()
    assert writer.failed_attempts == 2
    assert not clock.getDelayedCalls()
    assert len(logged.lines(LogLevel.error)) == 1


def test_stop_writes_the_last_state_once_the_fault_is_gone(tmp_path: Path) -> None:
    probe = FaultyDisk()
    writer, floor, clock, path = make_writer(tmp_path, probe=probe)
    probe.fail("write", errno.ENOSPC)
    login(floor, "1001")
    clock.advance(0)
    probe.heal()
    writer.stopService()
    assert json.loads(path.read_text())["agents"] == {"1001": "in"}
    assert not clock.getDelayedCalls()


def test_a_failing_writer_rewrites_even_an_unchanged_document(tmp_path: Path) -> None:
    """The file already holds the document, but only a write says that writing works."""
    probe = FaultyDisk()
    writer, floor, clock, path = make_writer(tmp_path, probe=probe)
    login(floor, "1001")
    clock.advance(0)
    probe.fail("open", errno.EROFS)
    event(floor, f"13C081502{'2001':<7}{'1001':<7}00")
    clock.advance(1)
    event(floor, f"12A081502{'2001':<7}{'1001':<7}00")  # back to what the file holds
    probe.heal()
    clock.advance(1)
    assert writer.health()["writing"] is True
    assert writer.writes == 2
    writer.stopService()


@pytest.mark.parametrize(
    "code, kind",
    [
        (errno.ENOSPC, "disk full"),
        (errno.EDQUOT, "disk full"),
        (errno.EACCES, "permission denied"),
        (errno.EPERM, "permission denied"),
        (errno.ENOENT, "folder missing"),
        (errno.ENOTDIR, "folder missing"),
        (errno.EROFS, "read-only file system"),
        (errno.EIO, "Input/output error"),
    ],
)
def test_failure_kinds(code: int, kind: str) -> None:
    assert failure_kind(OSError(code, os.strerror(code), "/x")) == kind


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_file_mode_respects_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    path = tmp_path / "mitel_data.json"
    path.write_bytes(b"{}")
    path.chmod(0o755)  # a file from an older version: its mode is not kept
    old = os.umask(umask)
    try:
        replace_file(str(path), b'{"agents": {}}')
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert path.read_bytes() == b'{"agents": {}}'


def test_leftover_temporary_file_is_removed_at_start(tmp_path: Path, logged: LogCapture) -> None:
    tmp = tmp_path / "mitel_data.json.tmp"
    tmp.write_bytes(b'{"agen')
    tmp.chmod(0o755)
    writer, floor, clock, path = make_writer(tmp_path)
    assert not tmp.exists()
    assert logged.lines(LogLevel.info) == [f"removed {tmp}, left by an interrupted write"]
    login(floor, "1001")
    clock.advance(0)
    assert stat.S_IMODE(path.stat().st_mode) & 0o111 == 0
    writer.stopService()


def test_bytes_reach_the_disk_before_the_rename(tmp_path: Path) -> None:
    probe = FaultyDisk()
    path = str(tmp_path / "mitel_data.json")
    replace_file(path, b"{}", probe.system())
    tmp = path + ".tmp"
    assert probe.calls == [
        ("open", tmp),
        ("write", tmp),
        ("fsync", tmp),
        ("close", tmp),
        ("replace", tmp),
        ("open", str(tmp_path)),
        ("fsync", str(tmp_path)),
        ("close", str(tmp_path)),
    ]


def test_partial_writes_are_completed(tmp_path: Path) -> None:
    path = tmp_path / "mitel_data.json"
    body = b"x" * 10_000

    def trickle(fd: int, data: bytes) -> int:
        return os.write(fd, data[:777])

    replace_file(str(path), body, SystemCalls(write=trickle))
    assert path.read_bytes() == body


def test_a_folder_that_refuses_fsync_is_still_written(tmp_path: Path) -> None:
    probe = FaultyDisk()
    probe.fail("fsync", errno.EINVAL, str(tmp_path))
    path = tmp_path / "mitel_data.json"
    replace_file(str(path), b"{}", probe.system())
    assert path.read_bytes() == b"{}"
    assert ("close", str(tmp_path)) in probe.calls


def test_reader_never_sees_a_torn_file(tmp_path: Path) -> None:
    """A reader polling in a tight loop during 1,500 replacements sees only whole documents."""
    writer, floor, clock, path = make_writer(tmp_path, interval=0.001)
    login(floor, "1000")
    clock.advance(0)
    problems: list[str] = []
    reads = 0
    stop = threading.Event()

    def reader() -> None:
        nonlocal reads
        while not stop.is_set():
            try:
                doc = json.loads(path.read_bytes())
            except ValueError as e:
                problems.append(repr(e))
                continue
            reads += 1
            if set(doc) != {"agents", "groups", "paths", "lastUpdate"}:
                problems.append(f"keys {sorted(doc)}")
            # Let the writer have the interpreter between reads: a reader
            # that never lets go keeps it waiting 5 ms at each of its writes.
            stop.wait(0.0001)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for n in range(1, 1501):
            # A growing document, so a torn read would be cut mid-way.
            login(floor, str(1000 + n))
            clock.advance(0.001)
    finally:
        stop.set()
        thread.join(timeout=10)
    writer.stopService()
    assert writer.writes >= 1000
    assert problems == []
    assert reads >= 300  # about one read in five writes, or more
    assert len(json.loads(path.read_bytes())["agents"]) == 1501


# One daemon per file


def test_second_lock_on_the_same_file_fails_clearly(tmp_path: Path) -> None:
    path = FilePath(str(tmp_path / "mitel_data.json"))
    first = FileLock.acquire(path)
    try:
        with pytest.raises(FileLockedError) as failed:
            FileLock.acquire(path)
        assert str(failed.value) == (
            f"another mitelacd already writes {path.path}"
            f" (lock {path.path}.lock held by process {os.getpid()})"
        )
        assert failed.value.holder == os.getpid()
    finally:
        first.release()
    second = FileLock.acquire(path)
    held = [second.held]
    second.release()
    held.append(second.held)
    second.release()  # harmless
    held.append(second.held)
    assert held == [True, False, False]
    # The lock file stays: deleting it would race with a third daemon.
    assert (tmp_path / "mitel_data.json.lock").exists()


def test_lock_without_a_pid_still_says_it_is_held(tmp_path: Path) -> None:
    path = FilePath(str(tmp_path / "mitel_data.json"))
    first = FileLock.acquire(path)
    try:
        (tmp_path / "mitel_data.json.lock").write_bytes(b"")
        with pytest.raises(FileLockedError, match=r"\.lock held by another process\)$"):
            FileLock.acquire(path)
    finally:
        first.release()


def test_writer_releases_its_lock_after_the_final_write(tmp_path: Path) -> None:
    clock = Clock()
    floor = FloorState(clock)
    path = FilePath(str(tmp_path / "mitel_data.json"))
    lock = FileLock.acquire(path)
    writer = LegacyFileWriter(path, FloorDocuments(floor), clock, 3600, lock=lock)
    writer.startService()
    login(floor, "1001")
    clock.advance(0)
    event(floor, f"13C081502{'2001':<7}{'1001':<7}00")
    with pytest.raises(FileLockedError):
        FileLock.acquire(path)
    writer.stopService()
    assert json.loads(path.getContent())["agents"] == {"1001": "busy"}
    FileLock.acquire(path).release()
