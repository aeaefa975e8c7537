"""The simulator's SMDR: lines in every layout, the callers behind them, and the SMDR port.

* ``smdrwire``: every outcome laid out in every layout reads back with
  ``parse_smdr`` (the layout given, and found from the line) to the same
  values and the outcome ``classify`` gives; the clock, long call flag,
  durations and fitting.
* ``callers``: the records of a day tie together as calls should (one key,
  one call identifier, one trunk at a time), start on the controller's clock,
  and leave the ACD stream as it was.
* ``service``: the SMDR port on a fake clock and over loopback, its options.
"""

from __future__ import annotations

import datetime
import itertools
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, cast

import attrs
import pytest
import pytest_twisted
from twisted.internet import defer, protocol, task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.python import usage

from mitelacd.feed.capture import Data, write_capture
from mitelacd.floor.smdr import (
    LAYOUT_NAMES,
    SmdrLayout,
    SmdrRecord,
    classify,
    layout_named,
    parse_smdr,
)
from mitelacd.reports.smdrcalls import SmdrDay
from mitelacd.sim.replayserver import ReplayService
from mitelacd.sim.service import (
    DEFAULT_START,
    SMDR_PORT,
    FeedFactory,
    FloorScript,
    Moment,
    Options,
    SimulatorService,
    SmdrFactory,
    makeService,
)
from mitelacd.sim.smdrwire import (
    SmdrEntry,
    duration_text,
    encode_smdr,
    format_smdr,
    long_call_flag,
    start_text,
)

UTC = datetime.timezone.utc
LAYOUTS = [layout_named(name) for name in LAYOUT_NAMES]
#: Layouts a line shows by itself: a Level 1 line fits Extended Digit Length
#: too, and is read with the shorter layout unless Level 1 is given.
FOUND = [layout for layout in LAYOUTS if layout.kind != "level1"]
STARTS = [
    datetime.datetime(2026, 3, 11, 0, 5, 7),
    datetime.datetime(2026, 3, 11, 8, 16, 59),
    datetime.datetime(2026, 12, 31, 12, 0, 30),
    datetime.datetime(2026, 2, 28, 13, 45, 1),
    datetime.datetime(2026, 7, 4, 23, 59, 59),
]


def entry(outcome: str, start: datetime.datetime = STARTS[1]) -> SmdrEntry:
    """A record of each outcome of smdr-protocol.md §6.3, as the callers make them."""
    base = SmdrEntry(
        start=start,
        duration_seconds=0,
        calling="T012",
        path="860",
        groups=("610", "611"),
        ani="6135550142",
        dnis="5550100",
        call_id="A0010788",
        sequence_id="B",
    )
    table: dict[str, dict[str, Any]] = {
        "answered": {
            "duration_seconds": 134,
            "time_to_answer_seconds": 37,
            "called": "1001",
            "answering_group": "611",
        },
        "abandoned": {"duration_seconds": 401},
        "short_abandoned": {"duration_seconds": 3},
        "interflowed": {"duration_seconds": 700, "transfer": "I", "third_party": "2500"},
        "requeued": {"duration_seconds": 22, "called": "1002", "transfer": "R"},
        "unavailable": {"transfer": "U", "third_party": "2600"},
    }
    return attrs.evolve(base, **table[outcome])


OUTCOMES = ("answered", "abandoned", "short_abandoned", "interflowed", "requeued", "unavailable")


def values(record: SmdrRecord) -> dict[str, Any]:
    names = (
        "month", "day", "start", "duration_seconds", "time_to_answer_seconds", "unanswered",
        "calling", "called", "third_party", "transfer", "completion", "path", "groups",
        "answering_group", "system_id", "ani", "dnis", "call_id", "sequence_id",
        "meter_pulses", "unread",
    )  # fmt: skip
    return {name: getattr(record, name) for name in names}


def expected(e: SmdrEntry, layout: SmdrLayout) -> dict[str, Any]:
    """What the line of ``e`` in ``layout`` must read back as."""
    tail, level = layout.tail != "none", layout.kind in ("level1", "level2")
    seconds = e.start.second if layout.kind == "level2" else 0
    answering = () if e.answering_group is None else (e.answering_group,)
    return {
        "month": e.start.month,
        "day": e.start.day,
        "start": datetime.time(e.start.hour, e.start.minute, seconds),
        "duration_seconds": e.duration_seconds,
        "time_to_answer_seconds": e.time_to_answer_seconds,
        "unanswered": e.time_to_answer_seconds is None,
        "calling": e.calling,
        "called": e.called,
        "third_party": e.third_party,
        "transfer": e.transfer,
        "completion": "",
        "path": e.path,
        "groups": (*e.groups, *answering),
        "answering_group": e.answering_group,
        "system_id": e.system_id,
        "ani": e.ani if tail or level else None,
        "dnis": e.dnis if tail else None,
        "call_id": e.call_id if layout.tail == "oli" else None,
        "sequence_id": e.sequence_id if layout.tail == "oli" else None,
        "meter_pulses": None,
        "unread": (),
    }


def read(line: str | bytes, layout: SmdrLayout | None = None) -> SmdrRecord:
    record = parse_smdr(line, layout)
    assert isinstance(record, SmdrRecord), record
    return record


# --- smdrwire: the round trip -------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_NAMES)
@pytest.mark.parametrize("outcome", OUTCOMES)
def test_every_outcome_reads_back_in_every_layout(layout: SmdrLayout, outcome: str) -> None:
    for start, clock24 in itertools.product(STARTS, (False, True)):
        e = entry(outcome, start)
        line = format_smdr(e, layout, clock24=clock24)
        assert len(line) == layout.length and line.isascii()
        wire = encode_smdr(e, layout, clock24=clock24)
        assert wire == line.encode("ascii") + b"\r\n" and wire.count(b"\n") == 1
        for record in (read(line, layout), read(wire, layout)):
            assert not record.detected and record.layout == layout
            assert values(record) == expected(e, layout), line
            assert classify(record) == outcome
            assert record.field("long_call") == long_call_flag(e.duration_seconds)
        if layout in FOUND:
            found = read(wire)
            assert found.detected and found.layout == layout, (line, found.layout)
            assert values(found) == expected(e, layout)
            assert classify(found) == outcome


def test_a_level1_line_fits_extended_digits_but_is_read_as_level1() -> None:
    e = entry("answered")
    line = format_smdr(e, layout_named("level1"))
    assert values(read(line, layout_named("level1"))) == expected(e, layout_named("level1"))
    assert read(line, layout_named("extended_digits+ani_dnis")).unread  # its ANI is no ANI
    assert read(line).layout == layout_named("level1")
    assert values(read(line)) == expected(e, layout_named("level1"))


def test_a_line_matches_smdr_protocols_synthetic_answered_record() -> None:
    """§9.2 S1, but answered by group 610 after 4 s: column for column."""
    s1 = (
        " 03/11 08:16  00:02:14 T012  004 P860 610 611 610            1001                    001  "
    )
    e = SmdrEntry(
        start=datetime.datetime(2026, 3, 11, 8, 16),
        duration_seconds=134,
        calling="T012",
        path="860",
        groups=("610", "611"),
        time_to_answer_seconds=4,
        answering_group="610",
        called="1001",
    )
    assert format_smdr(e) == s1
    s2 = (
        " 03/11 08:17  00:00:41 T013  *** P860 610 611                                        001  "
    )
    gone = SmdrEntry(datetime.datetime(2026, 3, 11, 8, 17), 41, "T013", "860", ("610", "611"))
    assert format_smdr(gone) == s2


@pytest.mark.parametrize(
    "hour, minute, clock12, clock24",
    [
        (0, 0, "12:00A", "00:00 "),
        (0, 30, "12:30A", "00:30 "),
        (1, 5, "01:05 ", "01:05 "),
        (11, 59, "11:59 ", "11:59 "),
        (12, 0, "12:00P", "12:00 "),
        (12, 45, "12:45P", "12:45 "),
        (13, 0, "01:00P", "13:00 "),
        (23, 59, "11:59P", "23:59 "),
    ],
)
def test_the_start_time_follows_the_12_and_24_hour_clocks(
    hour: int, minute: int, clock12: str, clock24: str
) -> None:
    when = datetime.time(hour, minute, 7)
    assert start_text(when, False, False) == clock12
    assert start_text(when, False, True) == clock24
    assert start_text(when, True, False) == clock12[:5] + ":07" + clock12[5]
    for clock in (False, True):
        e = attrs.evolve(entry("answered"), start=datetime.datetime(2026, 3, 11, hour, minute, 7))
        assert read(format_smdr(e, clock24=clock)).start == datetime.time(hour, minute)


def test_long_call_flags_and_durations() -> None:
    flags = {0: " ", 299: " ", 300: "-", 599: "-", 600: "%", 1799: "%", 1800: "+", 99999: "+"}
    assert {s: long_call_flag(s) for s in flags} == flags
    assert duration_text(134, False) == "00:02:14"
    assert duration_text(134, True) == "0000:02:14"
    assert duration_text(99 * 3600 + 59 * 60 + 59, False) == "99:59:59"
    assert duration_text(100 * 3600, False) == "99:99:99"  # §3.1: over 100 hours
    assert duration_text(100 * 3600, True) == "0100:00:00"
    with pytest.raises(ValueError):
        duration_text(-1, False)
    for seconds, layout in [(1800, LAYOUTS[0]), (12 * 3600 + 5, layout_named("level2"))]:
        e = attrs.evolve(entry("answered"), duration_seconds=seconds)
        record = read(format_smdr(e, layout), layout)
        assert (record.duration_seconds, record.field("long_call")) == (seconds, "+")
    record = read(format_smdr(attrs.evolve(entry("answered"), duration_seconds=360000)))
    assert record.duration_seconds is None and "duration" in record.unread


def test_times_to_answer_that_do_not_fit_are_refused() -> None:
    assert read(format_smdr(attrs.evolve(entry("answered"), time_to_answer_seconds=999)))
    with pytest.raises(ValueError, match="time to answer"):
        format_smdr(attrs.evolve(entry("answered"), time_to_answer_seconds=1000))
    tta4 = layout_named("standard+tta4")
    line = format_smdr(attrs.evolve(entry("answered"), time_to_answer_seconds=1000), tta4)
    assert read(line).time_to_answer_seconds == 1000


def test_fit_keeps_the_last_digits_of_a_wide_agent_and_the_answering_group() -> None:
    wide = attrs.evolve(
        entry("answered"),
        called="1234567",
        groups=("610", "620", "630", "640", "650", "660", "670"),
        answering_group="670",
    )
    with pytest.raises(ValueError, match="called"):
        format_smdr(attrs.evolve(wide, groups=("610",)))
    with pytest.raises(ValueError, match="digits"):
        format_smdr(attrs.evolve(wide, called="1001"))
    standard = read(format_smdr(wide, fit=True))
    assert standard.called == "4567"
    assert standard.groups == ("610", "620", "630", "640", "670")  # 24 of 26 columns
    assert standard.answering_group == "670" and classify(standard) == "answered"
    extended = read(format_smdr(wide, layout_named("extended_digits"), fit=True))
    assert extended.called == "1234567"
    meter = layout_named("standard+meter")
    metered = read(format_smdr(attrs.evolve(wide, meter_pulses=321), meter, fit=True), meter)
    assert metered.meter_pulses == 321 and metered.groups == ("610", "620", "630", "670")


# --- the callers ---------------------------------------------------------------------------------


def day_entries(
    seed: int, steps: int, **kwargs: Any
) -> tuple[FloorScript, list[tuple[float, SmdrEntry]]]:
    script = FloorScript(seed=seed, **kwargs)
    out = [(m.t, e) for m in itertools.islice(script.timeline(), steps) for e in m.smdr]
    return script, out


def test_the_acd_stream_is_the_same_with_smdr_on_or_off() -> None:
    cases: list[tuple[int, dict[str, Any]]] = [
        (0, {}),
        (5, {"agents": 4, "groups": 1, "paths": 2, "faults": True}),
    ]
    for seed, kwargs in cases:
        with_smdr, without = (
            FloorScript(seed=seed, **kwargs),
            FloorScript(seed=seed, smdr=False, **kwargs),
        )
        assert without.callers is None and with_smdr.callers is not None
        first = list(itertools.islice(with_smdr.steps(), 4000))
        assert first == list(itertools.islice(without.steps(), 4000))
        assert with_smdr.callers.records > 100
        assert with_smdr.expected_legacy() == without.expected_legacy()
        assert without.smdr_ledger().intervals == ()


def test_timeline_carries_the_acd_bytes_of_steps_and_smdr_in_time_order() -> None:
    moments = list(itertools.islice(FloorScript(seed=2).timeline(), 3000))
    acd = [(m.t, m.acd) for m in moments if m.acd]
    assert acd == list(itertools.islice(FloorScript(seed=2).steps(), len(acd)))
    assert all(a.t <= b.t for a, b in itertools.pairwise(moments))
    assert any(m.smdr and not m.acd for m in moments)  # a caller of the model's own
    script = FloorScript(seed=2)
    script.timeline()
    with pytest.raises(RuntimeError):
        script.steps()


def test_the_records_of_a_call_tie_together_and_calls_never_share_a_key() -> None:
    script, entries = day_entries(3, 20000, agents=6, groups=2, paths=3)
    calls: dict[str | None, list[SmdrEntry]] = defaultdict(list)
    for _, e in entries:
        calls[e.call_id].append(e)
    keys: dict[tuple[object, ...], set[str | None]] = defaultdict(set)
    requeued_then: Counter[str] = Counter()
    for call_id, records in calls.items():
        first = records[0]
        assert [r.sequence_id for r in records] == [chr(65 + i) for i in range(len(records))]
        for r in records:
            assert (r.start, r.calling, r.ani, r.path) == (
                first.start,
                first.calling,
                first.ani,
                first.path,
            )
            minute = (r.start.date(), r.start.hour, r.start.minute)
            keys[(r.system_id, r.calling, r.ani, minute, r.path)].add(call_id)
        assert all(r.transfer == "R" for r in records[:-1])  # only a requeue comes before the end
        if len(records) > 1:
            requeued_then[classify(read(encode_smdr(records[-1], fit=True)))] += 1
    assert all(len(ids) == 1 for ids in keys.values())
    assert requeued_then["answered"] > 0 and requeued_then["abandoned"] > 0
    # A trunk carries one call at a time, from its arrival to its last record,
    # and never two calls that start in the same minute.
    ends = {e.call_id: t for t, e in entries}
    by_trunk: dict[str, list[tuple[float, float, tuple[int, int, int]]]] = defaultdict(list)
    for call_id, records in calls.items():
        start = records[0].start
        arrived = start.timestamp() - script.epoch
        by_trunk[start_trunk := records[0].calling].append(
            (arrived, ends[call_id], (start.day, start.hour, start.minute))  # when seized
        )
        assert start_trunk.startswith("T")
    assert len(by_trunk) < len(calls) / 3  # trunks are used again
    for spans in by_trunk.values():
        spans.sort()
        for (_, end, seized), (arrived, _, next_seized) in itertools.pairwise(spans):
            assert end <= arrived and seized != next_seized


def test_records_start_at_the_arrival_on_the_controllers_clock() -> None:
    zone = datetime.timezone(datetime.timedelta(hours=5, minutes=45))
    script, entries = day_entries(8, 3000, tz=zone)
    assert script.epoch == DEFAULT_START.replace(tzinfo=zone).timestamp()
    for t, e in entries:
        assert e.start.utcoffset() == datetime.timedelta(hours=5, minutes=45)
        assert e.start.replace(tzinfo=None) - DEFAULT_START == datetime.timedelta(
            seconds=e.start.timestamp() - script.epoch
        )
        assert script.epoch <= e.start.timestamp() <= script.epoch + t
        took = e.duration_seconds
        if e.time_to_answer_seconds is not None:  # sent at the end of the conversation
            took += e.time_to_answer_seconds
        assert e.start.timestamp() + took == script.epoch + t or e.time_to_answer_seconds == 999


# --- the SMDR port ------------------------------------------------------------------------------


def connect(factory: protocol.ServerFactory, port: int) -> tuple[Any, StringTransport]:
    proto: Any = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", port))
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", port))
    proto.makeConnection(transport)
    return proto, transport


def due_smdr(seed: int, layout: SmdrLayout, speed: float, elapsed: float) -> bytes:
    """The SMDR bytes of the moments due after ``elapsed`` real seconds."""
    out: list[bytes] = []
    for moment in FloorScript(seed=seed).timeline():
        if moment.t / speed > elapsed + 1e-9:
            return b"".join(out)
        out += [encode_smdr(e, layout, fit=True) for e in moment.smdr]
    raise AssertionError("unreachable")


def test_smdr_clients_get_the_records_of_the_acd_clients_day_from_when_they_connect() -> None:
    clock = task.Clock()
    layout = layout_named("extended_digits+tta4+oli")
    smdr = SmdrFactory(layout)
    feed = FeedFactory(FloorScript(seed=4), clock, speed=10.0, smdr=smdr)
    _, early = connect(smdr, 1)
    clock.advance(100)
    assert early.value() == b"" and feed.started_at is None  # the day starts with ACD
    connect(feed, 2)
    for _ in range(60):
        clock.advance(1)
        assert early.value() == due_smdr(4, layout, 10.0, clock.seconds() - 100)
    _, late = connect(smdr, 3)
    before = len(early.value())
    clock.advance(60)
    assert late.value() and early.value()[before:] == late.value()
    lines = early.value().split(b"\r\n")
    assert lines[-1] == b"" and all(len(line) == 139 for line in lines[:-1])
    assert smdr.records == len(lines) - 1
    feed.stop()
    assert not early.disconnecting  # the SMDR port is the service's to close
    smdr.hang_up()
    assert all(client.disconnecting for client in (early, late))


def test_the_service_listens_for_smdr_only_when_asked() -> None:
    reactor = MemoryReactorClock()
    plain = SimulatorService(FloorScript(), port=0, reactor=reactor)
    plain.startService()
    assert len(reactor.tcpServers) == 1
    assert (plain.smdr, plain.smdr_port) == (None, None)
    plain.stopService()
    reactor = MemoryReactorClock()
    layout = layout_named("level2")
    svc = SimulatorService(
        FloorScript(),
        port=0,
        reactor=reactor,
        smdr_port=0,
        smdr_interface="::1",
        smdr_layout=layout,
    )
    with capturedLogs() as events:
        svc.startService()
    servers: list[Any] = list(reactor.tcpServers)
    (acd, smdr) = servers
    assert (acd[0], acd[3], smdr[0], smdr[3]) == (0, "127.0.0.1", 0, "::1")
    assert smdr[1] is svc.smdr and isinstance(svc.smdr, SmdrFactory)
    assert svc.smdr.layout == layout
    assert svc.smdr_port == 0
    assert formatEvent(list(events)[-1]) == (
        "simulated ICP SMDR on ::1 port 0 (level2 records, CR LF after each;"
        " the controller's clock starts at 2026-03-09T08:00:00)"
    )
    svc.stopService()
    assert not svc.running


@pytest_twisted.ensureDeferred
async def test_a_taken_smdr_port_leaves_the_acd_stream_served_alone() -> None:
    from twisted.internet import reactor

    taken = reactor.listenTCP(0, protocol.ServerFactory(), interface="127.0.0.1")
    port = cast(Any, taken.getHost()).port
    svc = SimulatorService(FloorScript(), port=0, reactor=reactor, smdr_port=port)
    try:
        with capturedLogs() as events:
            svc.startService()
        assert svc.port and svc.smdr_port is None
        warning = [formatEvent(e) for e in events if e["log_level"].name == "warn"]
        assert len(warning) == 1 and warning[0].startswith(
            f"no SMDR: cannot listen on 127.0.0.1 port {port} ("
        )
        assert warning[0].endswith("the ACD stream is served alone")
    finally:
        await defer.maybeDeferred(svc.stopService)
        await defer.maybeDeferred(taken.stopListening)


class Lines(protocol.Protocol):
    """Keeps what comes; ``enough`` fires once ``count`` CR LF have come."""

    def __init__(self, count: int) -> None:
        self.count, self.data = count, b""
        self.enough: defer.Deferred[None] = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        if self.data.count(b"\r\n") >= self.count and not self.enough.called:
            self.enough.callback(None)


@pytest_twisted.ensureDeferred
async def test_a_real_smdr_client_gets_lines_whose_calls_are_the_ledgers() -> None:
    from twisted.internet import endpoints, reactor

    layout = layout_named("standard+tta4+ani_dnis")
    svc = SimulatorService(
        FloorScript(seed=6, tz=UTC), port=0, speed=3000.0, reactor=reactor,
        smdr_port=0, smdr_layout=layout,
    )  # fmt: skip
    svc.startService()
    try:
        smdr_port, port = svc.smdr_port, svc.port
        assert smdr_port and port and smdr_port != port
        dial = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", smdr_port, timeout=5)
        smdr = await endpoints.connectProtocol(dial, Lines(80))
        assert svc.smdr is not None
        for _ in range(500):  # the server has taken it in before the day starts
            if svc.smdr.clients:
                break
            await task.deferLater(reactor, 0.01, lambda: None)
        assert svc.smdr.clients
        dial = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=5)
        acd = await endpoints.connectProtocol(dial, Lines(1))
        await smdr.enough.addTimeout(10, reactor)
        await acd.enough.addTimeout(10, reactor)
    finally:
        await defer.maybeDeferred(svc.stopService).addTimeout(10, reactor)
    lines = smdr.data.split(b"\r\n")[:-1]
    assert len(lines) >= 80
    # The same day again: its records, at their moments, and the ledger at the last whole moment.
    script = FloorScript(seed=6, tz=UTC)
    day = SmdrDay(tz=UTC)
    sent: list[bytes] = []
    ledger = script.smdr_ledger()
    for moment in script.timeline():  # the ledger counts each moment once it is yielded
        if len(sent) + len(moment.smdr) > len(lines):
            break
        now = script.epoch + moment.t
        for e in moment.smdr:
            sent.append(encode_smdr(e, layout, fit=True)[:-2])
            assert day.add(read(sent[-1]), now) == "call"
        ledger = script.smdr_ledger()
    assert len(sent) >= len(lines) - 3 and lines[: len(sent)] == sent
    assert all(read(line).layout == layout for line in lines)
    names = ("offered", "answered", "abandoned", "short_abandoned", "requeued", "interflowed")
    assert [(r.path, r.start, *(getattr(r, n) for n in names)) for r in day.figures(now)] == [
        (r.path, r.start, *(getattr(r, n) for n in names)) for r in ledger.intervals
    ]
    assert sum(r.offered for r in ledger.intervals) > 50


# --- twistd mitelacd-sim --------------------------------------------------------------------


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


def test_smdr_options_defaults_and_values() -> None:
    options = parse()
    assert (
        (options["smdr-port"], options["smdr-layout"])
        == (SMDR_PORT, "standard")
        == (
            1752,
            "standard",
        )
    )
    assert parse("--smdr-port", "none")["smdr-port"] is None
    assert parse("--smdr-port", "0")["smdr-port"] == 0
    assert parse("--smdr-layout", "STANDARD+oli+tta4")["smdr-layout"] == "standard+tta4+oli"
    for name in LAYOUT_NAMES:
        assert parse("--smdr-layout", name)["smdr-layout"] == name
    text = str(Options())
    assert "--smdr-port" in text and "--smdr-layout" in text and "level2+tta4" in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--smdr-port", "65536"],
            "--smdr-port wants a port number \\(0-65535\\) or none, not '65536'",
        ),
        (["--smdr-port", "-1"], "--smdr-port wants a port number"),
        (
            ["--smdr-port", "off"],
            "--smdr-port wants a port number \\(0-65535\\) or none, not 'off'",
        ),
        (["--smdr-layout", "bogus"], "--smdr-layout wants one of standard, standard\\+tta4, "),
        (["--smdr-layout", "standard+meter"], "not 'standard\\+meter'"),
        (["--smdr-layout", "level1+oli"], "--smdr-layout wants one of"),
    ],
)
def test_bad_smdr_options_are_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(usage.UsageError, match=message):
        parse(*argv)


def test_a_bogus_layout_names_every_choice() -> None:
    with pytest.raises(usage.UsageError) as error:
        parse("--smdr-layout", "bogus")
    said = str(error.value)
    assert "'bogus'" in said
    assert said.count(", ") >= len(LAYOUT_NAMES) - 1
    for name in LAYOUT_NAMES:
        assert f" {name}," in said or f" {name};" in said


def test_make_service_passes_the_smdr_port_and_layout() -> None:
    reactor = MemoryReactorClock()
    svc = makeService(parse("--port", "0", "--smdr-layout", "level2+tta4"), reactor)
    assert isinstance(svc, SimulatorService)
    assert svc.requested_smdr_port == 1752 and svc.smdr is not None
    assert svc.smdr.layout == layout_named("level2+tta4") and svc.smdr_interface == "127.0.0.1"
    svc = makeService(parse("--port", "0", "--smdr-port", "none"), reactor)
    assert isinstance(svc, SimulatorService) and svc.smdr is None
    svc = makeService(parse("--port", "0", "--interface", "::1", "--smdr-port", "0"), reactor)
    assert isinstance(svc, SimulatorService) and svc.smdr_interface == "::1"


def test_replay_serves_no_smdr_and_refuses_its_options(tmp_path: Path) -> None:
    path = tmp_path / "c.capture"
    write_capture(str(path), [Data(DEFAULT_START.timestamp(), b"x")])
    assert isinstance(makeService(parse("--replay", str(path))), ReplayService)
    assert isinstance(
        makeService(parse("--replay", str(path), "--smdr-port", "none")), ReplayService
    )
    for argv, message in [
        (["--smdr-port", "1753"], "--smdr-port cannot apply"),
        (["--smdr-layout", "level2"], "--smdr-layout cannot apply"),
    ]:
        with pytest.raises(usage.UsageError, match=message):
            parse("--replay", str(path), *argv)


def test_moment_is_what_a_second_sends() -> None:
    m = Moment(3.0, b"")
    assert (m.t, m.acd, m.smdr) == (3.0, b"", ())
