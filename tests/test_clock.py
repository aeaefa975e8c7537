"""mitelacd.clock: waits on a monotonic clock, stamps on a wall clock that never runs back.

Also the whole daemon (``tap.makeService``) across a step of the system clock
an hour back and an hour forward: the file, the event stream and the figures
handed to the history carry on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from twisted.internet.selectreactor import SelectReactor
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import LogLevel

from mitelacd import tap
from mitelacd.clock import Timeline, install_steady_clock, steady_seconds
from mitelacd.reports.live import FiguresService
from mitelacd.testing import START, StreamRequest, call_body, capture_log, sse_events, wire
from mitelacd.testing.fakes import SteppingWallClock
from mitelacd.web.resources import WebService

HOUR = 3600.0


def test_the_timeline_is_the_wall_clock_while_it_runs_forward() -> None:
    clock = Clock()
    clock.advance(START)
    wall = SteppingWallClock(clock)
    timeline = Timeline(clock, wall)
    assert timeline.now() == START
    clock.advance(10)
    assert timeline.now() == START + 10


def test_a_step_back_runs_on_from_the_last_reading_until_a_step_forward() -> None:
    clock = Clock()
    clock.advance(START)
    wall = SteppingWallClock(clock)
    timeline = Timeline(clock, wall)
    timeline.now()
    with capture_log("mitelacd.clock") as logged:
        wall.offset = -HOUR
        clock.advance(5)
        assert timeline.now() == START + 5
        assert timeline.behind == HOUR
        for _ in range(8):
            clock.advance(900)
            assert timeline.now() == clock.seconds()
        # The system clock is put right again: the two are together once more.
        wall.offset = 0.0
        clock.advance(10)
        assert timeline.now() == wall() == clock.seconds()
        assert timeline.behind == 0.0
    lines = logged.lines()
    assert len(lines) == 2, lines
    assert "stepped back by 3600 s" in lines[0]
    assert "caught up" in lines[1]


def test_a_step_forward_is_followed_and_logged() -> None:
    clock = Clock()
    clock.advance(START)
    wall = SteppingWallClock(clock)
    timeline = Timeline(clock, wall)
    timeline.now()
    with capture_log("mitelacd.clock") as logged:
        wall.offset = HOUR
        clock.advance(1)
        assert timeline.now() == START + 1 + HOUR
        clock.advance(1)
        assert timeline.now() == START + 2 + HOUR
    assert [e["log_level"] for e in logged.events] == [LogLevel.warn]
    assert "stepped forward by 3600 s" in logged.lines()[0]


def test_drift_below_a_step_is_not_logged() -> None:
    clock = Clock()
    wall = SteppingWallClock(clock)
    timeline = Timeline(clock, wall)
    with capture_log("mitelacd.clock") as logged:
        for _ in range(10):
            timeline.now()
            wall.offset -= 0.1
            clock.advance(1)
    assert logged.events == []
    assert timeline.behind == 0.0


def test_without_a_wall_clock_of_its_own_the_clock_is_the_wall() -> None:
    clock = Clock()
    clock.advance(42)
    assert Timeline(clock).now() == 42


def test_the_steady_clock_reads_as_the_wall_did_and_ignores_its_steps() -> None:
    wall, mono = [START], [100.0]
    seconds = steady_seconds(lambda: wall[0], lambda: mono[0])
    assert seconds() == START
    wall[0] -= HOUR
    mono[0] += 2
    assert seconds() == START + 2


def test_a_reactor_with_the_steady_clock_times_calls_by_it() -> None:
    reactor = SelectReactor()
    try:
        before = reactor.seconds
        install_steady_clock(reactor)
        assert reactor.seconds is not before
        assert abs(reactor.seconds() - before()) < 1.0
        call = reactor.callLater(10, lambda: None)
        assert 9.0 < call.getTime() - reactor.seconds() <= 10.0
        call.cancel()
    finally:
        reactor.disconnectAll()
        for reader in reactor.getReaders():
            reactor.removeReader(reader)


class TapOnFakeReactor:
    """The whole daemon on a fake reactor, with a system clock the test steps."""

    def __init__(self, tmp_path: Path) -> None:
        self.reactor = MemoryReactorClock()
        self.reactor.advance(START)
        self.wall = SteppingWallClock(self.reactor)
        self.path = tmp_path / "mitel_data.json"
        options = tap.Options()
        options.parseOptions(
            ["--host", "127.0.0.1", "--file", str(self.path), "--history", "none"]
            + ["--http", "tcp:0:interface=127.0.0.1"]
        )
        self.service = tap.makeService(options, self.reactor, wall=self.wall)
        self.service.startService()
        ((_, _, factory, _, _),) = self.reactor.tcpClients
        protocol = factory.buildProtocol(None)
        assert protocol is not None
        protocol.makeConnection(StringTransport())
        self.protocol = protocol
        self.seq = 0
        web = next(s for s in self.service if isinstance(s, WebService))
        self.stream = StreamRequest()
        web.push.subscribe(self.stream, full=False, last_event_id=None)
        self.stream.take()
        figures = next(s for s in self.service if isinstance(s, FiguresService))
        self.history_rows: list[Any] = []
        figures.history = self  # type: ignore[assignment]
        self.figures = figures

    def add(self, intervals: Any, spans: Any) -> None:
        """Where the figures hand closed intervals to the history."""
        self.history_rows.extend(intervals)

    def event(self, code: str, agent: str = "1001", tail: str = "00") -> None:
        self.seq = (self.seq + 1) % 100
        self.protocol.dataReceived(wire(call_body(self.seq, code, "2001", agent, tail)))

    def written(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.path.read_text())
        return doc

    def pushed(self) -> list[dict[str, Any]]:
        return [data for name, _, data in sse_events(self.stream.take()) if name == "delta"]

    def stop(self) -> None:
        self.service.stopService()


def test_a_step_of_the_system_clock_stops_neither_file_nor_push_nor_history(
    tmp_path: Path,
) -> None:
    d = TapOnFakeReactor(tmp_path)
    try:
        d.event("A")
        d.reactor.advance(2)
        assert d.written()["agents"] == {"1001": "in"}
        assert d.pushed()
        for step in (-HOUR, +HOUR):
            d.wall.offset += step
            shown = d.wall()
            d.event("G", tail="01860")
            d.reactor.advance(2)
            # The file is rewritten on time, stamped by the system clock.
            assert d.written()["agents"] == {"1001": "busy"}
            assert d.written()["lastUpdate"] == shown
            pushed = d.pushed()
            assert pushed and pushed[-1]["agents"]["1001"]["status"] == "busy"
            d.event("J", tail="01")
            d.reactor.advance(2)
            assert d.written()["agents"] == {"1001": "idle"}
            assert d.pushed()[-1]["agents"]["1001"]["status"] == "idle"
        # Intervals keep closing every quarter hour and reach the history.
        closed_before = len({row.interval_start for row in d.history_rows})
        for _ in range(4):
            d.reactor.advance(15 * 60)
        starts = sorted({row.interval_start for row in d.history_rows})
        assert len(starts) >= closed_before + 4
        assert all(b > a for a, b in zip(starts, starts[1:], strict=False))
    finally:
        d.stop()


def test_a_silent_pbx_is_stale_after_stale_after_whatever_the_system_clock_does(
    tmp_path: Path,
) -> None:
    d = TapOnFakeReactor(tmp_path)
    try:
        assert d.service.floor.stale_after == 35.0
        d.event("A")
        d.reactor.advance(30)
        assert not d.service.floor.isStale()
        # A step forward does not fake silence, and a step back does not hide it.
        d.wall.offset = HOUR
        assert not d.service.floor.isStale()
        d.wall.offset = -HOUR
        d.reactor.advance(6)
        assert d.service.floor.isStale()
        stale = [data for name, _, data in sse_events(d.stream.take()) if name == "stale"]
        assert stale and stale[-1]["stale"] is True
        d.event("D")
        assert not d.service.floor.isStale()
    finally:
        d.stop()


def test_stale_after_is_an_option_and_a_variable(tmp_path: Path) -> None:
    options = tap.Options()
    options.parseOptions(["--host", "h", "--file", str(tmp_path / "d.json")])
    assert (options["stale-after"], options["watchdog"]) == (35.0, 60.0)
    environ = {"MITELACD_HOST": "h", "MITELACD_FILE": str(tmp_path / "d.json")}
    options = tap.options_from_environment({**environ, "MITELACD_STALE_AFTER": "20"})
    assert options["stale-after"] == 20.0
