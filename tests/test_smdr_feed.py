"""The SMDR link: framing, reconnection, the service's figures and health, capture and replay."""

from __future__ import annotations

import datetime
import io
import json
import random
from typing import Any, cast

import attrs
import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python import usage
from twisted.python.failure import Failure

from mitelacd.clock import Timeline
from mitelacd.feed.capture import (
    CaptureReader,
    CaptureRecorder,
    Connected,
    Data,
    Entry,
    Lost,
    Started,
    encode_entry,
    parse_entry,
    write_capture,
)
from mitelacd.feed.replay import ReplayedSmdr, Replayer, main
from mitelacd.feed.smdr import MAX_LINE, SmdrClientFactory, SMDRReceiver
from mitelacd.floor.names import parse_names
from mitelacd.floor.smdr import SmdrLine
from mitelacd.floor.state import FloorState
from mitelacd.reports.rows import SmdrIntervalRow
from mitelacd.reports.smdrcalls import OPEN_SECONDS, PathInterval
from mitelacd.reports.smdrlive import SmdrService
from mitelacd.tap import Options
from mitelacd.testing.smdrlines import abandoned_line, standard_line

UTC = datetime.timezone.utc
#: 11 March 2024, 08:00 UTC: the records below are of that morning.
MORNING = datetime.datetime(2024, 3, 11, 8, 0, tzinfo=UTC).timestamp()


@attrs.define
class Sink:
    """What an :class:`SMDRReceiver` tells, kept in order."""

    told: list[tuple[str, Any]] = attrs.Factory(list)

    def smdrConnected(self, host: str, port: int) -> None:
        self.told.append(("connected", (host, port)))

    def smdrLine(self, line: bytes) -> None:
        self.told.append(("line", line))

    def smdrNoise(self, data: bytes, reason: str) -> None:
        self.told.append(("noise", reason))

    def smdrDisconnected(self, why: str) -> None:
        self.told.append(("lost", why))

    def smdrConnectFailed(self, host: str, port: int, why: str) -> None:
        self.told.append(("failed", why))

    def lines(self) -> list[bytes]:
        return [what for kind, what in self.told if kind == "line"]


def connect(sink: Sink, clock: Clock | None = None) -> tuple[SMDRReceiver, StringTransport]:
    factory = SmdrClientFactory(sink, clock or Clock())
    address = IPv4Address("TCP", "10.1.2.3", 1752)
    receiver = cast(SMDRReceiver, factory.buildProtocol(address))
    assert type(receiver) is SMDRReceiver
    transport = StringTransport(peerAddress=address)
    receiver.makeConnection(transport)
    return receiver, transport


def received(chunks: list[bytes]) -> Sink:
    sink = Sink()
    receiver, _ = connect(sink)
    for chunk in chunks:
        receiver.dataReceived(chunk)
    receiver.connectionLost(Failure(ConnectionDone()))
    return sink


A = standard_line("08:16").encode()
B = abandoned_line("08:17", "00:00:31").encode()
C = standard_line("08:18", called="1002").encode()
#: CR LF, LF alone, CR alone, NUL fill and a blank line between records.
STREAM = A + b"\r\n" + B + b"\n\x00\x00" + C + b"\r" + b"\r\n" + A + b"\r\n"


def test_lines_are_the_same_however_tcp_cuts_the_stream() -> None:
    whole = received([STREAM]).lines()
    assert whole == [A, B, C, A]
    for cut in range(1, len(STREAM)):
        assert received([STREAM[:cut], STREAM[cut:]]).lines() == whole, cut
    rng = random.Random(1752)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(STREAM)), rng.randint(2, 12)))
        chunks = [STREAM[i:j] for i, j in zip([0, *cuts], [*cuts, len(STREAM)], strict=True)]
        assert received(chunks).lines() == whole
    assert received([bytes([b]) for b in STREAM]).lines() == whole


def test_an_overlong_line_is_counted_and_the_link_kept() -> None:
    sink = Sink()
    receiver, transport = connect(sink)
    receiver.dataReceived(b"x" * 5000)
    receiver.dataReceived(b"y" * 5000 + b"\r\n" + A + b"\r\n")
    receiver.dataReceived(b"z" * (MAX_LINE + 10) + b"\n" + C + b"\n")
    assert not transport.disconnecting
    assert [kind for kind, _ in sink.told] == ["connected", "noise", "line", "noise", "line"]
    assert sink.lines() == [A, C]


def test_a_line_cut_by_the_end_of_the_connection_is_noise_not_a_record() -> None:
    """Cut after its duration, a record would still fit a layout and say the wrong thing."""
    sink = received([A + b"\r\n" + B[:65]])
    assert sink.lines() == [A]
    assert sink.told[-2] == ("noise", "a line cut off by the end of the connection")
    assert sink.told[-1][0] == "lost"
    assert received([A + b"\r\n\x00\x00"]).told[-2] == ("line", A)


def test_the_first_line_resets_the_backoff_and_a_refusal_is_told() -> None:
    sink = Sink()
    clock = Clock()
    factory = SmdrClientFactory(sink, clock, max_delay=8.0, first_delay=1.0)
    factory.delay = 8.0
    receiver = cast(SMDRReceiver, factory.buildProtocol(IPv4Address("TCP", "10.1.2.3", 1752)))
    receiver.makeConnection(StringTransport())
    assert factory.delay == 8.0  # connected, but no line yet
    receiver.dataReceived(A + b"\r\n")
    assert factory.delay == 1.0

    class Connector:
        def getDestination(self) -> IPv4Address:
            return IPv4Address("TCP", "10.1.2.3", 1752)

        def connect(self) -> None:
            pass

    factory.clientConnectionFailed(Connector(), Failure(ConnectionRefusedError()))
    assert sink.told[-1][0] == "failed"
    assert factory.nextAttempt() is not None
    assert factory.nextAttempt() - clock.seconds() <= 8.0  # type: ignore[operator]


# --- the service -----------------------------------------------------------------------------


@attrs.define
class History:
    """In place of the HistoryService: keeps what it is handed, answers the lines it holds."""

    source: str = "pbx"
    lines: list[SmdrLine] = attrs.Factory(list)
    intervals: list[PathInterval] = attrs.Factory(list)
    earlier: list[SmdrLine] = attrs.Factory(list)
    asked_since: list[float] = attrs.Factory(list)
    #: The intervals the history holds, as an earlier run wrote them.
    stored: list[SmdrIntervalRow] = attrs.Factory(list)

    def add_smdr(self, lines: list[SmdrLine], intervals: list[PathInterval]) -> None:
        self.lines.extend(lines)
        self.intervals.extend(intervals)

    def query(self, read: Any) -> Any:
        from twisted.internet.defer import succeed

        history = self

        class Store:
            def smdr_lines(self, source: str, since: float) -> list[SmdrLine]:
                history.asked_since.append(since)
                return [line for line in history.earlier if line.received_at >= since]

            def smdr_intervals(self, source: str, first: str, last: str) -> list[SmdrIntervalRow]:
                return [i for i in history.stored if first <= i.day <= last]

        return succeed(read(Store()))


def service(
    start: float = MORNING + 17 * 60 + 30,
    history: History | None = None,
    **options: Any,
) -> tuple[SmdrService, Clock]:
    clock = Clock()
    clock.advance(start)
    floor = FloorState(clock, timeline=Timeline(clock))
    smdr = SmdrService(floor, clock, tz=UTC, history=history, **options)  # type: ignore[arg-type]
    smdr.startService()
    return smdr, clock


def test_lines_become_figures_counters_and_kept_lines() -> None:
    history = History()
    smdr, clock = service(history=history)
    smdr.smdrConnected("10.1.2.3", 1752)
    for line in (A, B, C, b"this is no SMDR record"):
        smdr.smdrLine(line)
    [interval] = smdr.intervals(clock.seconds())
    assert (interval.path, interval.offered, interval.answered, interval.abandoned) == (
        "860",
        3,
        2,
        1,
    )
    assert interval.open
    assert smdr.offered == {"860": 3}
    assert smdr.abandoned == {"860": 1}
    assert smdr.answered_within_target == {"860": 2}
    assert smdr.records == {
        ("standard", "answered"): 2,
        ("standard", "abandoned"): 1,
        ("unreadable", "unreadable"): 1,
    }
    assert [line.layout for line in history.lines] == ["standard"] * 3 + ["unreadable"]
    assert history.lines[3].text == "this is no SMDR record"
    health = smdr.health()
    assert health["lines"] == 4 and health["unreadable"] == 1
    assert health["layouts"] == {"standard": 3}


def test_a_forced_layout_reads_every_line_with_it() -> None:
    from mitelacd.floor.smdr import layout_named

    smdr, clock = service(layout=layout_named("extended_digits"))
    smdr.smdrLine(A)  # a standard record does not fit Extended Digit Length
    assert smdr.records == {("unreadable", "unreadable"): 1}
    assert smdr.intervals(clock.seconds()) == []


def test_intervals_close_two_hours_after_their_end_and_go_to_history() -> None:
    history = History()
    smdr, clock = service(history=history)
    smdr.smdrLine(A)
    clock.advance(60)
    revised = [i for i in history.intervals if i.path == "860"]
    assert revised and revised[-1].open and revised[-1].offered == 1
    # 08:15-08:30 closes at 10:30.
    clock.advance(MORNING + 2.5 * 3600 + 1 - clock.seconds())
    closed = [i for i in history.intervals if not i.open]
    assert [(i.path, i.offered) for i in closed] == [("860", 1)]
    # Still in today's figures, closed.
    [interval] = smdr.intervals(clock.seconds())
    assert not interval.open and interval.offered == 1
    assert OPEN_SECONDS == 7200


def test_names_settings_reach_the_figures() -> None:
    smdr, clock = service()
    smdr.smdrLine(standard_line("08:16", tta="025").encode())
    [before] = smdr.intervals(clock.seconds())
    assert before.answered_within_target == 0 and before.provisional
    names = parse_names(
        '[service_level]\nseconds = 20\n[service_level.paths."860"]\nseconds = 30\n'
        "[smdr]\nconfirmed = true\n",
        "names.toml",
    )
    smdr.floor.setNames(names)
    [after] = smdr.intervals(clock.seconds())
    assert after.answered_within_target == 1 and after.service_level_seconds == 30
    assert after.provisional == ()


def test_idle_is_shown_and_a_link_down_too_long_is_a_fault() -> None:
    smdr, clock = service(idle_after=600.0, stale_after=35.0)
    assert not smdr.down_too_long()
    clock.advance(36)
    assert smdr.down_too_long()  # never connected
    smdr.smdrConnected("10.1.2.3", 1752)
    assert not smdr.down_too_long() and not smdr.idle()
    clock.advance(599)
    assert not smdr.idle()
    clock.advance(1)
    assert smdr.idle() and smdr.health()["idle"]
    smdr.smdrLine(A)
    assert not smdr.idle()
    smdr.smdrDisconnected("Connection was closed cleanly.")
    assert not smdr.idle()
    clock.advance(35)
    assert not smdr.down_too_long()
    clock.advance(1)
    assert smdr.down_too_long()
    assert smdr.health()["disconnect_reason"] == "Connection was closed cleanly."


def test_a_restart_reads_the_earlier_lines_again_and_holds_new_ones_until_then() -> None:
    requeue = standard_line("08:16", tta="***", called="", transfer="R", digits="P860 610")
    answer = standard_line("08:16", tta="012")
    history = History(
        earlier=[
            # Of yesterday, long closed: not read again.
            SmdrLine(MORNING - 86400, standard_line("08:16", date="03/10"), "standard"),
            SmdrLine(MORNING + 16 * 60 + 40, requeue, "standard"),
        ]
    )
    smdr, clock = service(history=history)
    assert smdr.seeded.called
    assert history.asked_since == [MORNING - 8 * 3600]  # the report day's start
    smdr.smdrLine(answer.encode())
    [interval] = smdr.intervals(clock.seconds())
    # The requeue and the answer are one call, answered.
    assert (interval.offered, interval.answered, interval.requeued) == (1, 1, 0)


def test_stop_hands_the_open_intervals_to_the_history() -> None:
    history = History()
    smdr, clock = service(history=history)
    smdr.smdrLine(A)
    smdr.stopService()
    assert [(i.path, i.open, i.offered) for i in history.intervals] == [("860", True, 1)]


# --- capture and replay ----------------------------------------------------------------------


def test_smdr_entries_are_tagged_in_captures() -> None:
    entries: list[Entry] = [
        Connected(1.5, "10.1.2.3", 1752, stream="smdr"),
        Data(2.5, A + b"\r\n", "smdr"),
        Lost(3.5, "gone", "smdr"),
        Data(4.5, b"\x0200K08", "acd"),
    ]
    lines = [encode_entry(e) for e in entries]
    assert lines[0].split(b" ")[1] == b"smdr-connected"
    assert lines[1].split(b" ")[1] == b"smdr-data"
    assert lines[3].split(b" ")[1] == b"data"
    assert [parse_entry(line.rstrip(b"\n")) for line in lines] == entries


def test_the_recorder_keeps_both_streams_in_one_capture(tmp_path: Any) -> None:
    clock = Clock()
    clock.advance(MORNING)
    recorder = CaptureRecorder(str(tmp_path), clock, date_wait=0)
    recorder.startService()
    smdr = recorder.of("smdr")
    recorder.connected("10.1.2.3", 15373)
    smdr.connected("10.1.2.3", 1752)
    recorder.received(b"\x0200R0800")
    smdr.received(A + b"\r\n")
    smdr.lost("gone")
    clock.advance(2)
    recorder.stopService()
    [path] = [p for p in tmp_path.iterdir() if p.name.endswith(".capture")]
    found = [e for e in CaptureReader(str(path)) if not isinstance(e, Started)]
    kinds = [(type(e).__name__, getattr(e, "stream", None)) for e in found]
    assert kinds[:5] == [
        ("Connected", "acd"),
        ("Connected", "smdr"),
        ("Data", "acd"),
        ("Data", "smdr"),
        ("Lost", "smdr"),
    ]


def test_a_replay_gives_the_daemons_figures_and_leaves_the_acd_floor_alone(tmp_path: Any) -> None:
    lines = (A + b"\r\n" + B + b"\r\n" + C + b"\r\n").split(b"\r\n")[:-1]
    entries: list[Any] = [Connected(MORNING + 1000, "10.1.2.3", 1752, stream="smdr")]
    data = b"".join(line + b"\r\n" for line in lines)
    # Cut anywhere: the lines are the same.
    entries += [Data(MORNING + 1001, data[:50], "smdr"), Data(MORNING + 1002, data[50:], "smdr")]
    path = tmp_path / "one.capture"
    write_capture(str(path), entries)

    live, clock = service(start=MORNING + 1002)
    for line in lines:
        live.smdrLine(line)
    out = io.StringIO()
    assert main([str(path), "--smdr", "--quiet"], stdout=out) == 0
    [row] = json.loads(out.getvalue())["paths"]
    [expected] = live.intervals(clock.seconds())
    for name in ("path", "offered", "answered", "abandoned", "answered_within_target"):
        assert row[name] == getattr(expected, name), name
    # The ACD floor saw none of it.
    replayer = Replayer()
    ReplayedSmdr(replayer)
    replayer.feed_all(entries)
    assert replayer.summary.reads == 0 and replayer.summary.smdr_entries == 3


# --- options ---------------------------------------------------------------------------------


def options(*argv: str) -> Options:
    parsed = Options()
    parsed.parseOptions(["--history", "none", *argv])
    return parsed


@pytest.mark.parametrize(
    ("argv", "target"),
    [
        (["--host", "10.1.2.3"], None),
        (["--host", "10.1.2.3", "--smdr", "same"], ("10.1.2.3", 1752)),
        (["--host", "10.1.2.3", "--smdr", "10.1.2.4"], ("10.1.2.4", 1752)),
        (["--host", "10.1.2.3", "--smdr", "smdr.example:4000"], ("smdr.example", 4000)),
        (["--host", "10.1.2.3", "--smdr", "[fe80::1]:4000"], ("fe80::1", 4000)),
        (["--host", "10.1.2.3", "--smdr", "fe80::1"], ("fe80::1", 1752)),
        (["--host", "10.1.2.3", "--smdr", "none"], None),
    ],
)
def test_smdr_option(argv: list[str], target: tuple[str, int] | None) -> None:
    assert options(*argv)["smdr"] == target


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--simulate", "--smdr", "10.1.2.3"], "with --simulate the simulator's SMDR is read"),
        (["--host", "h", "--sim-smdr-layout", "standard"], "--sim-smdr-layout needs --simulate"),
        (["--host", "h", "--smdr", "h:99999"], "out of range"),
        (["--host", "h", "--smdr", "fe80::zz:1752"], "[fe80::1]:1752"),
        (["--host", "h", "--smdr-layout", "wide"], "the layouts are standard, standard+tta4"),
    ],
)
def test_smdr_option_errors(argv: list[str], error: str) -> None:
    with pytest.raises(usage.UsageError, match=error.replace("[", r"\[").replace("+", r"\+")):
        options(*argv)


def test_a_kept_line_holds_no_nul_and_reads_as_it_did() -> None:
    from mitelacd.floor.smdr import SmdrUnreadable, parse_smdr

    raw = A[:30] + b"\x00" + A[31:] + b"\r\n\x00"
    kept = SmdrLine.of(1.0, raw, parse_smdr(raw))
    assert "\x00" not in kept.text and len(kept.text) == len(A)
    assert kept.layout == "unreadable"
    assert isinstance(parse_smdr(kept.text), SmdrUnreadable)


@attrs.define
class UnreadableHistory(History):
    """A history that takes rows but cannot be read (yet)."""

    def query(self, read: Any) -> Any:
        from twisted.internet.defer import fail

        return fail(OSError("database is locked"))


def test_stopped_before_the_earlier_lines_came_it_replaces_no_interval() -> None:
    history = UnreadableHistory()
    smdr, clock = service(history=history)
    smdr.smdrLine(A)
    clock.advance(61)  # a revision is due, but the day is not whole
    smdr.stopService()
    assert [line.text for line in history.lines] == [A.decode()]
    assert history.intervals == []


def test_when_the_earlier_lines_cannot_be_read_only_whole_intervals_are_written() -> None:
    from mitelacd.reports.smdrlive import SEED_RETRY, SEED_TRIES

    history = UnreadableHistory()
    smdr, clock = service(history=history)  # starts at 08:17:30
    smdr.smdrLine(A)  # 08:16, in the interval the run started in
    for _ in range(SEED_TRIES):  # given up at about 08:22:30
        clock.advance(SEED_RETRY)
    assert smdr.seeded.called
    smdr.smdrLine(standard_line("08:31").encode())  # not yet arrived: read at 08:22 all the same
    clock.advance(60)
    written = {(i.start - MORNING) // 60 for i in history.intervals}
    assert written == {30}  # 08:30-08:45: the 08:15 interval is left as the history has it
    # Both are in the live figures.
    assert sorted((i.start - MORNING) // 60 for i in smdr.intervals(clock.seconds())) == [15, 30]


def test_an_interval_an_earlier_run_left_open_is_closed_at_start() -> None:
    # Yesterday at 23:00 a call was answered; the earlier run stopped at 23:30,
    # with the interval open, and this one starts the next day at 08:17:30.
    late = standard_line("23:00", date="03/10").encode()
    yesterday = MORNING - 9 * 3600  # 23:00 on 10 March
    earlier, _ = service(start=yesterday + 60)
    earlier.smdrLine(late)
    [left_open] = earlier.intervals(yesterday + 30 * 60)
    assert left_open.open
    history = History(
        earlier=[SmdrLine(yesterday + 60, late.decode(), "standard")],
        stored=[SmdrIntervalRow.of(left_open, hour_start=left_open.start)],
    )
    smdr, clock = service(history=history)
    assert history.asked_since == [left_open.start]
    closed = [i for i in history.intervals if i.start == left_open.start]
    assert [(i.open, i.offered, i.answered) for i in closed] == [(False, 1, 1)]
    # Closed, and of yesterday: not among today's figures.
    assert smdr.intervals(clock.seconds()) == []
