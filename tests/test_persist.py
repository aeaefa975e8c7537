"""The legacy file: loaded at start, replaced atomically, writes coalesced."""

from __future__ import annotations

import datetime
import json
import threading
from pathlib import Path
from typing import Any

from twisted.internet.task import Clock
from twisted.python.filepath import FilePath

from mitelacd.documents import FloorDocuments
from mitelacd.legacy import validate_legacy
from mitelacd.persist import LegacyFileWriter, load_legacy
from mitelacd.records import parse_record
from mitelacd.state import FloorState

NOW = datetime.datetime(2026, 3, 9, 8, 0, 0)


def event(floor: FloorState, body: str) -> None:
    floor.recordReceived(parse_record(body.encode()))


def login(floor: FloorState, agent: str) -> None:
    event(floor, f"12A081502{'2001':<7}{agent:<7}00")


def test_missing_file_loads_nothing(tmp_path: Path) -> None:
    assert load_legacy(FilePath(str(tmp_path / "mitel_data.json")), NOW) is None


def test_valid_file_is_loaded(tmp_path: Path) -> None:
    doc = {
        "agents": {"6186": "out", "6184": "idle"},
        "groups": {"610": {"waiting": "000", "agents": "002", "longestwait": "0145"}},
        "paths": {"860": {"waiting": "003", "agents": "002", "longestwait": "0210"}},
        "lastUpdate": 1383899857.435,
    }
    path = tmp_path / "mitel_data.json"
    path.write_text(json.dumps(doc))
    assert load_legacy(FilePath(str(path)), NOW) == validate_legacy(doc)


def test_invalid_file_is_set_aside_and_logged(tmp_path: Path) -> None:
    path = tmp_path / "mitel_data.json"
    path.write_bytes(b'{"agents": {"1": "in"}, "groups": ')
    events: list[dict[str, Any]] = []
    from twisted.logger import globalLogPublisher

    globalLogPublisher.addObserver(events.append)
    try:
        assert load_legacy(FilePath(str(path)), NOW) is None
    finally:
        globalLogPublisher.removeObserver(events.append)
    aside = tmp_path / "mitel_data.json.invalid-20260309T080000"
    assert not path.exists()
    assert aside.read_bytes() == b'{"agents": {"1": "in"}, "groups": '
    assert any("not a valid data file" in e.get("log_format", "") for e in events)


def test_wrong_shape_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "mitel_data.json"
    path.write_text(json.dumps({"agents": {"1001": "sleeping"}, "groups": {}, "paths": {}}))
    assert load_legacy(FilePath(str(path)), NOW) is None
    assert (tmp_path / "mitel_data.json.invalid-20260309T080000").exists()


def make_writer(
    tmp_path: Path, interval: float = 1.0
) -> tuple[LegacyFileWriter, FloorState, Clock, Path]:
    clock = Clock()
    clock.advance(1_700_000_000)
    floor = FloorState(clock)
    path = tmp_path / "mitel_data.json"
    writer = LegacyFileWriter(FilePath(str(path)), FloorDocuments(floor), clock, interval)
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


def test_write_failure_is_logged_and_retried(tmp_path: Path) -> None:
    folder = tmp_path / "sub"
    folder.mkdir()
    clock = Clock()
    floor = FloorState(clock)
    path = folder / "mitel_data.json"
    writer = LegacyFileWriter(FilePath(str(path)), FloorDocuments(floor), clock, 1.0)
    writer.startService()
    folder.rename(tmp_path / "gone")
    login(floor, "1001")
    clock.advance(0)
    assert writer.writes == 0
    folder.mkdir()
    clock.advance(1.0)
    assert writer.writes == 1
    assert json.loads(path.read_text())["agents"] == {"1001": "in"}
    writer.stopService()


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
    assert reads > 0
    assert len(json.loads(path.read_bytes())["agents"]) == 1501
