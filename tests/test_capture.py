"""Captures: the file format, and the recorder behind --record (days, retention, a full disk)."""

from __future__ import annotations

import datetime
import errno
import gzip
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from treq.testing import StubTreq
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import LogLevel
from twisted.python import usage
from twisted.python.failure import Failure

from mitelacd import tap
from mitelacd.feed.capture import (
    HEADER,
    CaptureError,
    CaptureReader,
    CaptureRecorder,
    Connected,
    Data,
    Entry,
    Gap,
    Lost,
    Started,
    Stopped,
    SweepResult,
    capture_day,
    capture_name,
    encode_entry,
    escape,
    parse_entry,
    unescape,
    write_capture,
)
from mitelacd.feed.protocol import ACDReceiver, PBXClientFactory
from mitelacd.floor.documents import FloorDocuments
from mitelacd.floor.state import FloorState
from mitelacd.testing import START, Feeder, LogCapture, capture_log, stats_body, wire
from mitelacd.testing.fakes import FaultyDisk
from mitelacd.web.push import EventPush
from mitelacd.web.resources import Root, Served

ALL_BYTES = bytes(range(256))

ENTRIES: list[Entry] = [
    Started(START, "mitelacd 0.2.0"),
    Connected(START + 0.25, "10.1.2.3", 15373),
    Data(START + 0.5, wire("00R08151020240311")),
    Data(START + 0.5000001, ALL_BYTES),
    Data(START + 1.0, b"\\x41 \\\\ trailing space "),
    Data(START + 1.5, b""),
    Lost(START + 2.0, 'Connection was closed "cleanly".\n'),
    Connected(START + 3.0, "::1", 1, continued=True),
    Gap(START + 4.0, START + 9.5, 12, 3456),
    Stopped(START + 10.0, "stopped"),
]


def entries_of(path: Path | str) -> list[Entry]:
    return list(CaptureReader(str(path)))


# --- the format -------------------------------------------------------------------------------


def test_every_kind_of_entry_comes_back_as_written(tmp_path: Path) -> None:
    path = tmp_path / "c.capture"
    write_capture(str(path), ENTRIES)
    assert entries_of(path) == ENTRIES
    text = path.read_bytes()
    assert text.startswith(HEADER) and text.endswith(b"\n")
    # One line per entry, printable ASCII only.
    assert text.count(b"\n") == len(ENTRIES) + 1
    assert all(0x20 <= b < 0x7F or b == 0x0A for b in text)


def test_every_byte_value_survives_and_the_text_is_readable() -> None:
    line = encode_entry(Data(START, ALL_BYTES))
    assert line.count(b"\n") == 1 and line.endswith(b"\n")
    entry = parse_entry(line[:-1])
    assert entry == Data(START, ALL_BYTES)
    record = encode_entry(Data(START, b"\x0200K0800006100000000000\r\n"))
    assert record == b"1700000000.0 data \\x0200K0800006100000000000\\x0d\\x0a\n"


@given(st.binary(max_size=300))
def test_escaping_round_trips_any_bytes(data: bytes) -> None:
    text = escape(data)
    assert all(0x20 <= b < 0x7F for b in text)
    assert unescape(text) == data


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_times_come_back_as_the_very_same_float(when: float) -> None:
    assert parse_entry(encode_entry(Data(when, b"x"))[:-1]) == Data(when, b"x")


@pytest.mark.parametrize(
    "line",
    [
        b"1700000000.0 data \\x0",  # an escape cut short
        b"1700000000.0 data a\\qb",  # not an escape
        b"1700000000.0 data \x02raw",  # a byte that must be escaped
        b"noon data abc",  # not a time
        b"nan data abc",
        b"1700000000.0 connected 10.1.2.3",  # no port
        b"1700000000.0 lost not-json",
        b"1700000000.0 gap 1 2",
        b"",
        b"1700000000.0",
    ],
)
def test_damaged_lines_are_refused(line: bytes) -> None:
    with pytest.raises(ValueError):
        parse_entry(line)


def test_gzip_and_plain_read_the_same(tmp_path: Path) -> None:
    plain, packed = tmp_path / "a.capture", tmp_path / "a.capture.gz"
    write_capture(str(plain), ENTRIES)
    write_capture(str(packed), ENTRIES, compress=True)
    assert packed.read_bytes()[:2] == b"\x1f\x8b"
    assert entries_of(packed) == entries_of(plain) == ENTRIES


def test_concatenated_files_and_gzip_members_read_as_one(tmp_path: Path) -> None:
    first, second = ENTRIES[:4], ENTRIES[4:]
    a, b = tmp_path / "a", tmp_path / "b"
    write_capture(str(a), first, compress=True)
    write_capture(str(b), second, compress=True)
    both = tmp_path / "both.capture.gz"
    both.write_bytes(a.read_bytes() + b.read_bytes())
    assert entries_of(both) == ENTRIES


def test_a_truncated_last_line_is_dropped_and_counted(tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    write_capture(str(whole), ENTRIES)
    body = whole.read_bytes()
    last_start = body.rindex(b"\n", 0, len(body) - 1) + 1
    cut = tmp_path / "cut"
    for end in range(last_start, len(body)):
        cut.write_bytes(body[:end])
        reader = CaptureReader(str(cut))
        assert list(reader) == ENTRIES[:-1]
        assert reader.report.dropped_bytes == end - last_start
        assert reader.report.damaged_lines == 0
        assert (reader.report.problems() != []) == (end > last_start)


def test_a_file_cut_in_its_header_is_an_empty_capture(tmp_path: Path) -> None:
    path = tmp_path / "c"
    for cut in (b"", b"mitel", HEADER[:-1]):
        path.write_bytes(cut)
        reader = CaptureReader(str(path))
        assert list(reader) == []
        assert reader.report.dropped_bytes == len(cut)


def test_a_truncated_gzip_gives_what_it_holds_and_says_so(tmp_path: Path) -> None:
    many = [Data(START + i, b"\x02%03d" % i + ALL_BYTES) for i in range(400)]
    packed = gzip.compress(HEADER + b"".join(encode_entry(e) for e in many))
    path = tmp_path / "c.gz"
    path.write_bytes(packed[: len(packed) * 2 // 3])
    reader = CaptureReader(str(path))
    got = list(reader)
    assert 0 < len(got) < len(many)
    assert got == many[: len(got)]
    assert reader.report.cut_short is not None
    assert any("compressed data ends early" in p for p in reader.report.problems())


def test_a_damaged_line_inside_is_skipped_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "c"
    lines = [encode_entry(e) for e in ENTRIES[:3]]
    # A run that crashed mid-line, and the next run's lines after it.
    body = HEADER + lines[0] + lines[1][:15] + b"\n" + lines[2]
    body += b"1700000001.0 rumour somebody said something\n"
    path.write_bytes(body)
    reader = CaptureReader(str(path))
    assert list(reader) == [ENTRIES[0], ENTRIES[2]]
    assert (reader.report.damaged_lines, reader.report.damaged_at) == (1, [3])
    assert reader.report.unknown_entries == 1


def test_what_is_not_a_readable_capture_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="cannot read .*missing"):
        CaptureReader(str(tmp_path / "missing"))
    other = tmp_path / "other.json"
    other.write_text('{"agents": {}}')
    with pytest.raises(CaptureError, match="not a mitelacd capture"):
        CaptureReader(str(other))
    newer = tmp_path / "newer"
    newer.write_bytes(b"mitelacd-capture 2\n1.0 data x\n")
    with pytest.raises(CaptureError, match="version 2 is newer"):
        list(CaptureReader(str(newer)))
    broken = tmp_path / "broken.gz"
    broken.write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(CaptureError, match="cannot read"):
        CaptureReader(str(broken))


def test_names_carry_the_day() -> None:
    day = datetime.date(2026, 3, 9)
    assert capture_name(day) == "mitelacd-2026-03-09.capture"
    assert capture_day("mitelacd-2026-03-09.capture") == (day, False)
    assert capture_day("mitelacd-2026-03-09.capture.gz") == (day, True)
    for other in ("mitelacd-2026-13-09.capture", "notes.txt", "mitelacd-2026-03-09.capture.gz.tmp"):
        assert capture_day(other) is None


# --- the recorder -----------------------------------------------------------------------------


def at_once(work: Any) -> Deferred[SweepResult]:
    """Compression and retention run in place of a thread, so tests see them done."""
    result: Deferred[SweepResult] = maybeDeferred(work)
    return result


DAY = datetime.date(2023, 11, 14)  # the local date of START near enough, and the PBX's
SIM_DAY = datetime.date(2026, 3, 9)  # the simulator's first day


def recorder(
    folder: Path,
    clock: Clock,
    disk: FaultyDisk | None = None,
    feeder: Feeder | None = None,
    **kwargs: Any,
) -> CaptureRecorder:
    kwargs.setdefault("local_day", lambda when: DAY)
    rec = CaptureRecorder(
        str(folder),
        clock,
        feeder.floor if feeder is not None else None,
        system=(disk or FaultyDisk()).system(),
        run=at_once,
        **kwargs,
    )
    return rec


@pytest.fixture
def logged() -> Iterator[LogCapture]:
    with capture_log("mitelacd.feed.capture") as capture:
        yield capture


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_reads_are_kept_in_memory_and_written_on_the_timer(tmp_path: Path) -> None:
    clock = Clock()
    clock.advance(START)
    disk = FaultyDisk()
    rec = recorder(tmp_path, clock, disk, date_wait=0)
    rec.startService()
    rec.connected("10.1.2.3", 15373)
    clock.advance(0.25)
    for i in range(50):
        rec.received(b"\x02%02dR08151020231114\r\n" % i)
    # The feed's path only appended: nothing was written yet.
    assert disk.writes == 0 and files(tmp_path) == []
    clock.advance(1.0)
    assert disk.writes == 1
    rec.lost("Connection was closed cleanly.")
    rec.stopService()
    got = entries_of(tmp_path / "mitelacd-2023-11-14.capture")
    assert got[0] == Started(START, "mitelacd 0.2.0")
    assert got[1] == Connected(START, "10.1.2.3", 15373)
    assert [e.data for e in got if isinstance(e, Data)] == [
        b"\x02%02dR08151020231114\r\n" % i for i in range(50)
    ]
    assert all(e.time == START + 0.25 for e in got if isinstance(e, Data))
    assert isinstance(got[-2], Lost) and got[-1] == Stopped(START + 1.25, "stopped")


def test_a_large_burst_is_written_at_once(tmp_path: Path) -> None:
    clock = Clock()
    clock.advance(START)
    disk = FaultyDisk()
    rec = recorder(tmp_path, clock, disk, date_wait=0)
    rec.startService()
    for _ in range(20):
        rec.received(b"x" * 100_000)
    clock.advance(0)
    assert disk.writes >= 1 and rec.pending_bytes == 0
    rec.stopService()


def test_the_protocol_hands_every_read_and_connection_change_over(tmp_path: Path) -> None:
    feeder = Feeder()
    rec = recorder(tmp_path, feeder.clock, feeder=feeder)
    rec.startService()
    factory = PBXClientFactory(feeder.floor, feeder.clock, recorder=rec)
    receiver = ACDReceiver()
    receiver.factory = factory
    receiver.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", "10.1.2.3", 15373)))
    reads = [wire(stats_body(0, "K", "610", "0010020145"))[:9], b"20145\r\n"]
    for read in reads:
        feeder.clock.advance(0.1)
        receiver.dataReceived(read)
    receiver.connectionLost(Failure(ConnectionError("gone")))
    rec.stopService()
    got = entries_of(tmp_path / "mitelacd-2023-11-14.capture")
    assert [type(e) for e in got] == [Started, Connected, Data, Data, Lost, Stopped]
    assert [e.data for e in got if isinstance(e, Data)] == reads
    assert got[1] == Connected(START, "10.1.2.3", 15373)
    assert got[4] == Lost(feeder.clock.seconds(), "gone")


def test_the_file_is_named_by_the_pbx_date_once_the_pbx_says_it(tmp_path: Path) -> None:
    feeder = Feeder()
    rec = recorder(tmp_path, feeder.clock, feeder=feeder)
    rec.startService()
    rec.connected("pbx", 15373)
    feeder.clock.advance(5)
    assert files(tmp_path) == []  # waiting for the PBX to say its date
    feeder.keepalive("20260309")
    rec.received(b"the read that carried it")
    feeder.clock.advance(1)
    assert files(tmp_path) == ["mitelacd-2026-03-09.capture"]
    rec.stopService()


def test_without_a_pbx_date_the_local_date_is_used_after_a_wait(tmp_path: Path) -> None:
    clock = Clock()
    clock.advance(START)
    rec = recorder(tmp_path, clock, local_day=lambda when: datetime.date(2026, 1, 2))
    rec.startService()
    rec.received(b"no keep-alive in this")
    clock.advance(29)
    assert files(tmp_path) == []
    clock.advance(2)
    assert files(tmp_path) == ["mitelacd-2026-01-02.capture"]
    assert rec.pending_bytes == 0
    rec.stopService()


def test_a_new_pbx_day_closes_and_compresses_the_last_one(
    tmp_path: Path, logged: LogCapture
) -> None:
    feeder = Feeder()
    rec = recorder(tmp_path, feeder.clock, feeder=feeder)
    rec.startService()
    rec.connected("10.1.2.3", 15373)
    feeder.keepalive("20260309")
    rec.received(b"day one")
    feeder.clock.advance(1)
    feeder.keepalive("20260310")  # the change set comes within the read that carries it
    rec.received(b"day two")
    feeder.clock.advance(1)
    assert files(tmp_path) == ["mitelacd-2026-03-09.capture.gz", "mitelacd-2026-03-10.capture"]
    one = entries_of(tmp_path / "mitelacd-2026-03-09.capture.gz")
    assert [type(e) for e in one] == [Started, Connected, Data]
    two = entries_of(tmp_path / "mitelacd-2026-03-10.capture")
    # The new file says the connection was already open, so it replays on its own.
    assert two[0] == Connected(START + 1, "10.1.2.3", 15373, continued=True)
    assert two[1] == Data(START + 1, b"day two")
    # A PBX clock set back stays in the current file.
    feeder.keepalive("20260309")
    rec.received(b"back in time")
    feeder.clock.advance(1)
    assert files(tmp_path) == ["mitelacd-2026-03-09.capture.gz", "mitelacd-2026-03-10.capture"]
    rec.stopService()
    assert entries_of(tmp_path / "mitelacd-2026-03-10.capture")[2] == Data(
        START + 2, b"back in time"
    )
    text = "\n".join(logged.lines())
    assert "the PBX date is 2026-03-10" in text and "compressed capture" in text


def test_the_same_day_compressed_twice_keeps_both_parts(tmp_path: Path) -> None:
    earlier = tmp_path / "mitelacd-2026-03-08.capture.gz"
    write_capture(str(earlier), ENTRIES[:3], compress=True)
    write_capture(str(tmp_path / "mitelacd-2026-03-08.capture"), ENTRIES[3:])
    feeder = Feeder()
    rec = recorder(tmp_path, feeder.clock, feeder=feeder)
    rec.startService()
    feeder.keepalive("20260309")
    rec.received(b"x")
    feeder.clock.advance(1)
    feeder.keepalive("20260310")
    feeder.clock.advance(1)
    rec.stopService()
    assert entries_of(earlier) == ENTRIES
    assert not (tmp_path / "mitelacd-2026-03-08.capture").exists()


def test_old_captures_are_deleted_at_start_and_daily(tmp_path: Path, logged: LogCapture) -> None:
    today = datetime.date(2026, 3, 31)
    for back in (0, 1, 2, 3, 5, 40):
        day = today - datetime.timedelta(days=back)
        name = capture_name(day) + ("" if back < 2 else ".gz")
        write_capture(str(tmp_path / name), ENTRIES[:2], compress=back >= 2)
    (tmp_path / "notes.txt").write_text("not ours")
    clock = Clock()
    clock.advance(START)
    days = {"today": today}
    rec = recorder(tmp_path, clock, keep_days=3, local_day=lambda when: days["today"])
    rec.startService()
    # Three days kept, today's included; yesterday stays plain until the PBX says its date.
    assert files(tmp_path) == [
        "mitelacd-2026-03-29.capture.gz",
        "mitelacd-2026-03-30.capture",
        "mitelacd-2026-03-31.capture",
        "notes.txt",
    ]
    days["today"] = today + datetime.timedelta(days=1)
    clock.advance(3600)
    assert files(tmp_path) == [
        "mitelacd-2026-03-30.capture.gz",
        "mitelacd-2026-03-31.capture",
        "mitelacd-2026-04-01.capture",
        "notes.txt",
    ]
    rec.stopService()
    deleted = [line for line in logged.lines() if "deleted capture" in line]
    assert [line.split("mitelacd-")[1][:10] for line in deleted] == [
        "2026-02-19",
        "2026-03-26",
        "2026-03-28",
        "2026-03-29",
    ]


def test_a_full_disk_keeps_everything_and_writes_it_after(
    tmp_path: Path, logged: LogCapture
) -> None:
    clock = Clock()
    clock.advance(START)
    disk = FaultyDisk()
    rec = recorder(tmp_path, clock, disk, date_wait=0)
    rec.startService()
    rec.received(b"before")
    clock.advance(1)
    disk.failing = errno.ENOSPC
    sent = [b"\x02%05d\r\n" % i for i in range(300)]
    for i, data in enumerate(sent):
        rec.received(data)
        if i % 10 == 0:
            clock.advance(1)
    assert rec.health()["writing"] is False and rec.health()["problem"] == "disk full"
    assert rec.pending_bytes > 0 and rec.dropped_bytes == 0
    errors = logged.lines(LogLevel.error)
    assert len(errors) == 1 and "disk full" in errors[0]
    disk.failing = None
    clock.advance(31)
    assert rec.pending_bytes == 0 and rec.health()["writing"] is True
    rec.stopService()
    got = entries_of(tmp_path / "mitelacd-2023-11-14.capture")
    assert [e.data for e in got if isinstance(e, Data)] == [b"before", *sent]
    assert not any(isinstance(e, Gap) for e in got)
    recovered = [line for line in logged.lines(LogLevel.info) if "written again" in line]
    assert len(recovered) == 1 and "nothing was lost" in recovered[0]


def test_retries_back_off(tmp_path: Path) -> None:
    clock = Clock()
    clock.advance(START)
    disk = FaultyDisk()
    rec = recorder(tmp_path, clock, disk, date_wait=0)
    rec.startService()
    disk.failing = errno.ENOSPC
    rec.received(b"x")
    attempts = []
    for _ in range(120):
        before = disk.writes
        clock.advance(1)
        if disk.writes > before:
            attempts.append(clock.seconds() - START)
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    assert gaps[:5] == [1, 2, 4, 8, 16] and max(gaps) == 30
    rec.stopService()


def test_beyond_the_bound_the_oldest_are_dropped_counted_and_marked(
    tmp_path: Path, logged: LogCapture
) -> None:
    clock = Clock()
    clock.advance(START)
    disk = FaultyDisk()
    rec = recorder(tmp_path, clock, disk, date_wait=0, max_pending=10_000)
    rec.startService()
    rec.connected("10.1.2.3", 15373)
    rec.received(b"first")
    clock.advance(1)
    disk.failing = errno.ENOSPC
    sent = [b"%04d" % i + b"." * 96 for i in range(400)]  # 40 000 bytes, 4 times the bound
    for data in sent:
        clock.advance(0.05)
        rec.received(data)
    clock.advance(1)
    assert rec.pending_bytes <= 10_000 + 200
    assert rec.dropped_bytes > 25_000
    warnings = logged.lines(LogLevel.warn)
    assert len(warnings) == 1 and "dropping the oldest" in warnings[0]  # rate-limited
    disk.failing = None
    clock.advance(31)
    rec.stopService()
    got = entries_of(tmp_path / "mitelacd-2023-11-14.capture")
    gaps = [e for e in got if isinstance(e, Gap)]
    assert len(gaps) == 1 and rec.gaps == 1
    gap = gaps[0]
    kept = [e.data for e in got if isinstance(e, Data)][1:]
    # Every read is either in the file or counted in the gap, in order.
    assert gap.entries + len(kept) == len(sent)
    assert gap.data_bytes == rec.dropped_bytes == 100 * gap.entries
    assert kept == sent[gap.entries :]
    assert gap.time == pytest.approx(START + 1.05)
    assert gap.until == pytest.approx(START + 1 + 0.05 * gap.entries)
    assert isinstance(got[got.index(gap) + 1], Data) and got[got.index(gap) + 1].time > gap.until
    recovered = [line for line in logged.lines(LogLevel.info) if "written again" in line]
    assert f"{rec.dropped_bytes} bytes from the PBX were dropped" in recovered[0]


def test_a_write_cut_short_by_the_disk_leaves_no_broken_line(tmp_path: Path) -> None:
    clock = Clock()
    clock.advance(START)
    disk = FaultyDisk()
    rec = recorder(tmp_path, clock, disk, date_wait=0, max_pending=600)
    rec.startService()
    clock.advance(1)
    sent = [b"%03d" % i + b"-" * 100 for i in range(20)]
    for data in sent[:5]:
        rec.received(data)
    disk.partial = 200  # into the second line
    clock.advance(1)
    for data in sent[5:]:
        rec.received(data)
        clock.advance(1)
    disk.failing = None
    clock.advance(31)
    rec.stopService()
    reader = CaptureReader(str(tmp_path / "mitelacd-2023-11-14.capture"))
    got = list(reader)
    assert reader.report.damaged_lines == 0 and reader.report.dropped_bytes == 0
    kept = [e.data for e in got if isinstance(e, Data)]
    (gap,) = [e for e in got if isinstance(e, Gap)]
    assert len(kept) + gap.entries == len(sent)
    assert kept[0] == sent[0]


def test_a_line_torn_by_a_crash_is_ended_before_new_lines(tmp_path: Path) -> None:
    path = tmp_path / "mitelacd-2023-11-14.capture"
    path.write_bytes(HEADER + encode_entry(ENTRIES[0]) + encode_entry(ENTRIES[2])[:20])
    clock = Clock()
    clock.advance(START + 60)
    rec = recorder(tmp_path, clock, date_wait=0)
    rec.startService()
    rec.received(b"after the crash")
    clock.advance(1)
    rec.stopService()
    reader = CaptureReader(str(path))
    got = list(reader)
    assert reader.report.damaged_lines == 1
    assert got[0] == ENTRIES[0] and Data(START + 60, b"after the crash") in got


def test_nothing_is_kept_after_stop_and_stop_waits_for_compression(tmp_path: Path) -> None:
    clock = Clock()
    clock.advance(START)
    write_capture(str(tmp_path / "mitelacd-2023-11-01.capture"), ENTRIES)
    pending: list[Deferred[None]] = []

    def later(work: Any) -> Deferred[SweepResult]:
        begin: Deferred[None] = Deferred()
        pending.append(begin)
        result: Deferred[SweepResult] = begin.addCallback(lambda _: work())
        return result

    rec = CaptureRecorder(str(tmp_path), clock, run=later, local_day=lambda when: DAY)
    rec.startService()
    stopped = rec.stopService()
    assert isinstance(stopped, Deferred)
    done: list[None] = []
    stopped.addCallback(done.append)
    assert done == []
    rec.received(b"too late")
    assert rec.pending_bytes == 0
    pending[0].callback(None)
    assert done == [None]
    assert "mitelacd-2023-11-01.capture.gz" in files(tmp_path)


def test_files_left_plain_by_the_last_run_are_compressed(tmp_path: Path) -> None:
    for day in ("2026-03-06", "2026-03-08"):
        write_capture(str(tmp_path / f"mitelacd-{day}.capture"), ENTRIES)
    feeder = Feeder()
    rec = recorder(tmp_path, feeder.clock, feeder=feeder, local_day=lambda when: SIM_DAY)
    rec.startService()
    # Yesterday stays plain until the PBX says it is today: it may still be on yesterday.
    assert files(tmp_path) == ["mitelacd-2026-03-06.capture.gz", "mitelacd-2026-03-08.capture"]
    feeder.keepalive("20260309")
    assert files(tmp_path) == ["mitelacd-2026-03-06.capture.gz", "mitelacd-2026-03-08.capture.gz"]
    assert entries_of(tmp_path / "mitelacd-2026-03-08.capture.gz") == ENTRIES
    rec.stopService()


# --- the options ------------------------------------------------------------------------------


def tap_options(*argv: str) -> tap.Options:
    options = tap.Options()
    options.parseOptions(list(argv))
    return options


def test_record_options_reach_the_recorder_on_the_feed(tmp_path: Path) -> None:
    data = str(tmp_path / "mitel_data.json")
    (tmp_path / "captures").mkdir()
    argv = ["--host", "127.0.0.1", "--file", data, "--http", "none"]
    options = tap_options(*argv, "--record", str(tmp_path / "captures"), "--record-days", "7")
    assert (options["record"], options["record-days"]) == (str(tmp_path / "captures"), 7)
    assert tap_options(*argv)["record"] is None and tap_options(*argv)["record-days"] == 31
    reactor = MemoryReactorClock()
    reactor.advance(START)
    service = tap.makeService(options, reactor)
    service.startService()
    try:
        ((_, _, factory, _, _),) = reactor.tcpClients
        assert isinstance(factory, PBXClientFactory)
        recorder = factory.recorder
        assert isinstance(recorder, CaptureRecorder) and recorder.running
        assert (recorder.folder, recorder.keep_days) == (str(tmp_path / "captures"), 7)
        children = list(service)
        client = next(c for c in children if isinstance(c, tap.PBXClientService))
        # Started before the client, so it stops after it has hung up.
        assert children.index(recorder) < children.index(client)
    finally:
        service.stopService()
    assert not recorder.running
    assert files(tmp_path / "captures") == [capture_name(datetime.date.fromtimestamp(START))]


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ["--record", "/no/such/folder"],
            "--record /no/such/folder: folder /no/such/folder does not exist",
        ),
        (["--record-days", "0"], "--record-days must be 1 or more, not 0"),
        (["--record-days", "a week"], "--record-days must be a whole number of days, not 'a week'"),
        (["--record-days", "1.5"], "--record-days must be a whole number"),
    ],
)
def test_bad_record_options_are_usage_errors(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    with pytest.raises(usage.UsageError, match=re.escape(message)):
        tap_options("--host", "h", "--file", str(tmp_path / "d.json"), *extra)


def test_a_record_folder_we_cannot_write_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "captures"
    folder.mkdir()
    real_access = os.access
    monkeypatch.setattr(
        tap.os, "access", lambda path, mode: path != str(folder) and real_access(path, mode)
    )
    with pytest.raises(usage.UsageError, match="cannot write in folder"):
        tap_options("--host", "h", "--file", str(tmp_path / "d.json"), "--record", str(folder))


def test_the_environment_stands_for_the_record_options(tmp_path: Path) -> None:
    environ = {
        "MITELACD_HOST": "h",
        "MITELACD_FILE": str(tmp_path / "d.json"),
        "MITELACD_RECORD": str(tmp_path),
        "MITELACD_RECORD_DAYS": "3",
    }
    options = tap.options_from_environment(environ)
    assert (options["record"], options["record-days"]) == (str(tmp_path), 3)


def test_the_capture_is_shown_in_the_feed_and_a_failing_one_warns_in_healthz(
    tmp_path: Path,
) -> None:
    clock = Clock()
    clock.advance(START)
    disk = FaultyDisk()
    rec = recorder(tmp_path, clock, disk, date_wait=0)
    rec.startService()
    floor = FloorState(clock)
    documents = FloorDocuments(floor)
    push = EventPush(floor, documents, clock)
    root = Root(Served(floor, documents, capture_health=rec.health), push, clock)
    stub: Any = StubTreq(root)

    def get(path: str) -> dict[str, Any]:
        d = stub.get("http://board.example" + path)
        stub.flush()
        response: list[dict[str, Any]] = []
        d.addCallback(lambda r: r.json()).addCallback(response.append)
        stub.flush()
        doc: dict[str, Any] = response[0]
        return doc

    try:
        rec.received(b"\x0201R20231114221320\r\n")
        clock.advance(1)
        capture = get("/api/v1/feed")["feed"]["capture"]
        assert capture["writing"] is True and capture["written_bytes"] > 0
        assert get("/healthz")["warnings"] == []
        disk.failing = errno.ENOSPC
        rec.received(b"more")
        clock.advance(1)
        capture = get("/api/v1/feed")["feed"]["capture"]
        assert (capture["writing"], capture["problem"]) == (False, "disk full")
        (warning,) = get("/healthz")["warnings"]
        assert warning.startswith(f"the capture in {tmp_path} is not being written (disk full)")
    finally:
        disk.failing = None
        rec.stopService()
