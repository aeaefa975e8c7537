"""Replays: offline through the parser and the floor, and served over TCP by the simulator.

The replay server's timing is tested on a fake reactor, to the exact
time; one smoke test runs it on the real reactor over loopback, loosely
timed. The end-to-end test (marked ``processes``) records a simulated day
with a real daemon over loopback and shows that both kinds of replay come
to the daemon's final file.
"""

from __future__ import annotations

import datetime
import io
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import endpoints, protocol
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python import usage
from twisted.python.failure import Failure

from mitelacd import testing
from mitelacd.feed.capture import (
    CaptureRecorder,
    Connected,
    Data,
    Entry,
    Gap,
    Lost,
    Started,
    Stopped,
    SweepResult,
    write_capture,
)
from mitelacd.feed.protocol import ACDReceiver, PBXClientFactory
from mitelacd.feed.replay import main, replay_files
from mitelacd.floor.documents import FloorDocuments
from mitelacd.floor.state import FloorState
from mitelacd.sim.replayserver import ReplayFactory, ReplayService
from mitelacd.sim.service import FloorScript, Options, makeService
from mitelacd.testing import START, stats_body, wire

ROOT = Path(__file__).parent.parent
PBX = IPv4Address("TCP", "10.1.2.3", 15373)
SIM_DAY = datetime.date(2026, 3, 9)


def at_once(work: Any) -> Deferred[SweepResult]:
    result: Deferred[SweepResult] = maybeDeferred(work)
    return result


class Live:
    """The daemon's parser, floor and recorder on a fake clock: what a replay must give again."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.clock = Clock()
        self.clock.advance(START)
        self.floor = FloorState(self.clock)
        self.documents = FloorDocuments(self.floor)
        self.recorder = CaptureRecorder(
            str(folder), self.clock, self.floor, run=at_once, local_day=lambda when: SIM_DAY
        )
        self.recorder.startService()
        self.factory = PBXClientFactory(self.floor, self.clock, recorder=self.recorder)
        self.receiver: ACDReceiver | None = None

    def connect(self) -> None:
        receiver = ACDReceiver()
        receiver.factory = self.factory
        receiver.makeConnection(StringTransport(peerAddress=PBX))
        self.receiver = receiver

    def read(self, data: bytes, after: float = 0.0) -> None:
        self.clock.advance(after)
        assert self.receiver is not None
        self.receiver.dataReceived(data)

    def lose(self, after: float = 0.0) -> None:
        self.clock.advance(after)
        assert self.receiver is not None
        self.receiver.connectionLost(Failure(ConnectionDone("closed by the PBX")))
        self.receiver = None

    def stop(self) -> list[str]:
        self.recorder.stopService()
        return sorted(str(p) for p in self.folder.iterdir())


def counters(floor: FloorState) -> dict[str, Any]:
    view = floor.feedView()
    keep = [
        "sequence_gaps",
        "records_missed",
        "sequence_duplicates",
        "sequence_resyncs",
        "records_by_code",
        "unparsable_records",
        "noise",
        "connections",
    ]
    return {k: view[k] for k in keep}


# --- offline ---------------------------------------------------------------------------------


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 1000),
    eol=st.sampled_from(["none", "crlf", "cr"]),
    cuts=st.lists(st.integers(1, 4000), min_size=5, max_size=40),
    pauses=st.lists(st.sampled_from([0.0, 0.01, 0.3, 0.49, 0.5, 0.51, 0.7, 3.0]), min_size=1),
)
def test_a_replay_ends_exactly_where_the_live_floor_did(
    seed: int, eol: Any, cuts: list[int], pauses: list[float]
) -> None:
    """Reads cut anywhere, pauses around the idle flush, records without an end: all alike."""
    steps = FloorScript(seed=seed, eol=eol, faults=True, cycle=5.0).steps()
    stream = b"".join(chunk for _, chunk in itertools.islice(steps, 60))
    with tempfile.TemporaryDirectory() as folder:
        live = Live(Path(folder))
        live.connect()
        at = 0
        for cut, pause in zip(cuts, itertools.cycle(pauses)):
            live.read(stream[at : at + cut], after=pause)
            at += cut
        live.read(stream[at:], after=0.2)
        live.clock.advance(0.2)
        replayed = replay_files(live.stop())
    assert replayed.legacy() == live.documents.legacy()
    assert counters(replayed.floor) == counters(live.floor)
    assert replayed.summary.reads == len(cuts) + 1


def test_the_idle_flush_comes_when_it_came_live(tmp_path: Path) -> None:
    live = Live(tmp_path)
    live.connect()
    record = wire(stats_body(0, "K", "610", "0010020145"))[:-2]  # no terminator
    live.read(record)
    live.read(wire(stats_body(1, "K", "620", "0030040200")), after=0.7)
    live.read(b"\x0202K0815106300", after=0.2)
    live.read(b"050060300", after=0.3)  # joined: 0.3 s is under the idle flush
    live.lose(after=0.1)  # the loss flushes what waits
    replayed = replay_files(live.stop())
    assert replayed.legacy() == live.documents.legacy()
    groups = json.loads(replayed.legacy())["groups"]
    assert set(groups) == {"610", "620", "630"}
    assert json.loads(replayed.legacy())["lastUpdate"] == START + 1.3


def entries_with_a_pending_record(end: Entry) -> list[Entry]:
    return [
        Started(START, "mitelacd 0.2.0"),
        Connected(START, "10.1.2.3", 15373),
        Data(START + 1, wire(stats_body(0, "K", "610", "0010020145")) + b"\x0201K081510620003"),
        Data(START + 1.1, b"0040200"),
        end,
    ]


def test_a_loss_applies_a_waiting_record_and_a_stop_does_not(tmp_path: Path) -> None:
    """A stopping daemon writes its file before the connection closes: the record never got there."""
    lost, stopped = tmp_path / "lost.capture", tmp_path / "stopped.capture"
    write_capture(str(lost), entries_with_a_pending_record(Lost(START + 1.2, "gone")))
    write_capture(str(stopped), entries_with_a_pending_record(Stopped(START + 1.2, "stopped")))
    assert set(json.loads(replay_files([str(lost)]).legacy())["groups"]) == {"610", "620"}
    assert set(json.loads(replay_files([str(stopped)]).legacy())["groups"]) == {"610"}


def test_a_gap_ends_the_connection_and_the_next_read_opens_one(tmp_path: Path) -> None:
    path = tmp_path / "gap.capture"
    write_capture(
        str(path),
        [
            Connected(START, "10.1.2.3", 15373),
            Data(START, wire(stats_body(0, "K", "610", "0010020145")) + b"\x0201K0815"),
            Gap(START + 1, START + 5, 40, 4000),
            Data(START + 6, b"10620003004\r\n" + wire(stats_body(7, "K", "630", "0050060100"))),
        ],
    )
    replayer = replay_files([str(path)])
    assert set(json.loads(replayer.legacy())["groups"]) == {"610", "630"}
    summary = replayer.summary
    assert (summary.gaps, summary.gap_bytes, summary.connections) == (1, 4000, 2)
    assert replayer.floor.feed.host == "10.1.2.3"
    assert "1 gap(s) (4000 bytes missing)" in summary.words()


def day_files(tmp_path: Path) -> list[str]:
    """A capture over two files, the later given first, one compressed."""
    one, two = tmp_path / "one.capture.gz", tmp_path / "two.capture"
    write_capture(
        str(one),
        [
            Started(START, "mitelacd 0.2.0"),
            Connected(START, "10.1.2.3", 15373),
            Data(START + 1, wire(stats_body(0, "K", "610", "0010020145"))),
        ],
        compress=True,
    )
    write_capture(
        str(two),
        [
            Connected(START + 10, "10.1.2.3", 15373, continued=True),
            Data(START + 10, wire(stats_body(1, "K", "610", "0090020145"))),
            Data(START + 20, wire(stats_body(2, "K", "620", "0010020145"))),
        ],
    )
    return [str(two), str(one)]


def test_files_are_replayed_in_the_order_of_their_first_entry(tmp_path: Path) -> None:
    replayer = replay_files(day_files(tmp_path))
    doc = json.loads(replayer.legacy())
    assert doc["groups"]["610"]["waiting"] == "009" and "620" in doc["groups"]
    assert replayer.summary.connections == 1 and replayer.summary.reads == 3
    assert replayer.floor.feed.gaps == 0  # numbering runs on across the files


def test_the_command_prints_the_document_and_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = io.StringIO()
    assert main(day_files(tmp_path), stdout=out) == 0
    doc = json.loads(out.getvalue())
    assert doc["groups"]["610"]["waiting"] == "009" and doc["lastUpdate"] == START + 20
    assert "2 file(s), 3 reads" in capsys.readouterr().err
    out = io.StringIO()
    assert main([*day_files(tmp_path), "--at", str(START + 15), "--quiet"], stdout=out) == 0
    assert set(json.loads(out.getvalue())["groups"]) == {"610"}
    assert capsys.readouterr().err == ""
    at = datetime.datetime.fromtimestamp(START + 5).isoformat()
    out = io.StringIO()
    assert main([*day_files(tmp_path), "--at", at], stdout=out) == 0
    assert json.loads(out.getvalue())["groups"]["610"]["waiting"] == "001"


def test_the_command_says_what_is_wrong_with_a_file_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = io.StringIO()
    assert main([str(tmp_path / "missing.capture")], stdout=out) == 2
    assert "cannot read" in capsys.readouterr().err and out.getvalue() == ""
    other = tmp_path / "mitel_data.json"
    other.write_text("{}")
    assert main([str(other)], stdout=out) == 2
    assert "not a mitelacd capture" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:
        main(["--at", "teatime", str(other)], stdout=out)
    assert stopped.value.code == 2


@pytest.mark.processes
def test_the_console_script_runs_the_replay(tmp_path: Path) -> None:
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name="mitelacd-replay")
    assert script.value == "mitelacd.feed.replay:run"
    run = subprocess.run(
        [sys.executable, "-c", "from mitelacd.feed.replay import run; run()", *day_files(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["groups"]["610"]["waiting"] == "009"
    missing = subprocess.run(
        [sys.executable, "-c", "from mitelacd.feed.replay import run; run()", "nothing.capture"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert missing.returncode == 2 and "cannot read nothing.capture" in missing.stderr


# --- the replay server -----------------------------------------------------------------------


def test_replay_options(tmp_path: Path) -> None:
    path = tmp_path / "c.capture"
    write_capture(str(path), [Data(START, b"x")])
    options = Options()
    options.parseOptions(["--replay", str(path), "--replay", str(path), "--speed", "50"])
    assert options["replay"] == [str(path), str(path)] and options["speed"] == 50.0
    service = makeService(options)
    assert isinstance(service, ReplayService) and service.speed == 50.0
    for argv, message in [
        (["--replay", str(path), "--agents", "5"], "--agents cannot apply"),
        (["--replay", str(path), "--faults", "--seed", "3"], "--seed, --faults cannot apply"),
        (["--replay", str(tmp_path / "none")], "--replay: cannot read"),
    ]:
        with pytest.raises(usage.UsageError, match=message):
            Options().parseOptions(argv)
    assert Options()["replay"] == []


class Arrivals(protocol.Protocol):
    """A client that notes when its bytes came and when it was hung up on."""

    def __init__(self, clock: Any, expect: int = 0) -> None:
        self.clock = clock
        self.data = b""
        self.times: list[tuple[float, int]] = []
        self.closed: Deferred[None] = Deferred()
        self.expect = expect
        #: Fires once ``expect`` bytes have come.
        self.all_in: Deferred[None] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        self.times.append((self.clock.seconds(), len(self.data)))
        if len(self.data) >= self.expect and not self.all_in.called:
            self.all_in.callback(None)

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.closed.callback(None)


async def connect(reactor: Any, port: int, expect: int = 0) -> Arrivals:
    endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=5)
    client: Arrivals = await endpoints.connectProtocol(endpoint, Arrivals(reactor, expect))
    return client


#: 50 s of capture, reads 0.5 to 3 s apart, the first 0.4 s after the connect: 1 s at speed 50.
SPEED_50_GAPS = (0.5, 3.0, 1.25, 0.75, 2.0, 1.0)


def speed_50_capture(path: Path) -> tuple[list[float], list[bytes]]:
    """A capture of 35 reads at uneven times; their capture times and bytes."""
    gaps = itertools.cycle(SPEED_50_GAPS)
    times = list(itertools.accumulate(itertools.islice(gaps, 35), initial=START + 0.4))
    reads = [b"\x02%02dK081510%03d0010020145\r\n" % (i % 100, i) for i in range(len(times))]
    write_capture(
        str(path),
        [Connected(START, "pbx", 15373)] + [Data(t, r) for t, r in zip(times, reads)],
    )
    return times, reads


class TimedTransport(StringTransport):
    """A transport that notes the clock's time of each write."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(peerAddress=PBX)
        self.clock = clock
        self.writes: list[tuple[float, bytes]] = []

    def write(self, data: bytes) -> None:
        super().write(data)
        self.writes.append((self.clock.seconds(), data))


def replay_on_a_fake_reactor(
    tmp_path: Path,
) -> tuple[MemoryReactorClock, ReplayService, TimedTransport, list[float], list[bytes]]:
    """The replay service at speed 50 on a fake reactor, and a client connected at START."""
    times, reads = speed_50_capture(tmp_path / "c.capture")
    reactor = MemoryReactorClock()
    reactor.advance(START)
    service = ReplayService([str(tmp_path / "c.capture")], port=0, speed=50, reactor=reactor)
    service.startService()
    assert service.factory is not None
    ((_, listening, _, interface),) = reactor.tcpServers
    assert (listening, interface) == (service.factory, "127.0.0.1")
    client = service.factory.buildProtocol(PBX)
    assert client is not None
    transport = TimedTransport(reactor)
    client.makeConnection(transport)
    return reactor, service, transport, times, reads


def test_a_replay_at_speed_50_sends_each_read_at_its_scaled_time(tmp_path: Path) -> None:
    """On a fake clock: each read goes exactly at its captured time / 50 after the connect
    (the first was captured 0.4 s after the captured connect), whole, in order; then
    the connection is kept open, as a PBX would, until the service stops."""
    reactor, service, transport, times, reads = replay_on_a_fake_reactor(tmp_path)
    assert service.factory is not None
    while reactor.getDelayedCalls():
        reactor.advance(min(c.getTime() for c in reactor.getDelayedCalls()) - reactor.seconds())
    assert [data for _, data in transport.writes] == reads  # one write per read, in order
    for (sent, _), t in zip(transport.writes, times):
        assert sent == pytest.approx(START + (t - START) / 50, abs=1e-9)
    assert service.factory.finished.called and service.factory.chunks == len(reads)
    assert not transport.disconnecting
    service.stopService()
    assert transport.disconnecting


def test_a_late_reactor_sends_what_is_due_at_once_and_does_not_drift(tmp_path: Path) -> None:
    """A reactor that comes round only every 0.13 s (a busy one): each read goes at
    the first turn at or after its time, never later; the delays do not add up."""
    reactor, service, transport, times, reads = replay_on_a_fake_reactor(tmp_path)
    assert service.factory is not None
    turn = 0.13
    while not service.factory.finished.called:
        reactor.advance(turn)
    assert b"".join(data for _, data in transport.writes) == b"".join(reads)
    arrivals = iter(transport.writes)
    sent_at: dict[int, float] = {}
    received = 0
    ends = list(itertools.accumulate(len(r) for r in reads))
    for i, end in enumerate(ends):
        while received < end:
            when, data = next(arrivals)
            received += len(data)
        sent_at[i] = when
    for i, t in enumerate(times):
        due = START + (t - START) / 50
        assert due - 1e-9 <= sent_at[i] < due + turn, (i, sent_at[i], due)
    service.stopService()


@pytest_twisted.ensureDeferred
async def test_a_replay_at_speed_50_on_the_real_reactor(tmp_path: Path) -> None:
    """A smoke test over loopback: every byte in order, in about the scaled time
    (the exact timing is tested on a fake clock above; a real one is only loosely held)."""
    from twisted.internet import reactor

    times, reads = speed_50_capture(tmp_path / "c.capture")
    span = (times[-1] - START) / 50
    assert span > 0.9
    service = ReplayService([str(tmp_path / "c.capture")], port=0, speed=50, reactor=reactor)
    service.startService()
    try:
        assert service.port is not None and service.factory is not None
        start = reactor.seconds()
        client = await connect(reactor, service.port, expect=sum(len(r) for r in reads))
        await client.all_in.addTimeout(10 + span, reactor)
        took = reactor.seconds() - start
        assert service.factory.finished.called
        assert client.data == b"".join(reads)  # byte for byte, in order
        assert 0.8 * span <= took <= span + 5, (took, span)  # paced, not at once, not stuck
        assert not client.closed.called  # kept open at the end, as a PBX would
    finally:
        await maybeDeferred(service.stopService)
    await client.closed.addTimeout(5, reactor)


@pytest_twisted.ensureDeferred
async def test_each_captured_connection_goes_to_the_next_client(tmp_path: Path) -> None:
    from twisted.internet import reactor

    path = tmp_path / "c.capture"
    write_capture(
        str(path),
        [
            Started(START, "mitelacd 0.2.0"),
            Connected(START, "pbx", 15373),
            Data(START + 0.5, b"one-a "),
            Data(START + 1.0, b"one-b"),
            Lost(START + 1.5, "no data from the PBX for 60 s"),
            Connected(START + 3.0, "pbx", 15373),
            Data(START + 3.5, b"two-a "),
            Connected(START + 20.0, "pbx", 15373, continued=True),
            Data(START + 20.5, b"two-b"),
            Stopped(START + 21.0, "stopped"),
        ],
    )
    service = ReplayService([str(path)], port=0, speed=100, reactor=reactor)
    service.startService()
    try:
        port = service.port
        assert port is not None and service.factory is not None
        first = await connect(reactor, port)
        intruder = await connect(reactor, port)
        await intruder.closed.addTimeout(5, reactor)
        assert intruder.data == b""  # turned away while the first is served
        await first.closed.addTimeout(5, reactor)
        assert first.data == b"one-a one-b"
        second = await connect(reactor, port)
        await second.closed.addTimeout(5, reactor)
        assert second.data == b"two-a two-b"
        assert service.factory.finished.called
        third = await connect(reactor, port)
        await deferLater(reactor, 0.3)
        assert not third.closed.called and third.data == b""
        assert (service.factory.connections, service.factory.chunks) == (2, 4)
    finally:
        await maybeDeferred(service.stopService)
    await third.closed.addTimeout(5, reactor)


def test_a_client_that_leaves_gives_up_the_rest_of_its_connection() -> None:
    clock = Clock()
    entries: list[Entry] = [
        Connected(START, "pbx", 1),
        Data(START + 1, b"a"),
        Data(START + 2, b"b"),
        Lost(START + 3, "x"),
        Connected(START + 4, "pbx", 1),
        Data(START + 5, b"c"),
    ]
    factory = ReplayFactory(iter(entries), clock, speed=1)
    first = factory.buildProtocol(PBX)
    assert first is not None
    first.makeConnection(StringTransport())
    clock.advance(1)
    first.connectionLost(Failure(ConnectionDone()))
    second = factory.buildProtocol(PBX)
    assert second is not None
    transport = StringTransport()
    second.makeConnection(transport)
    clock.advance(0.5)
    assert transport.value() == b""
    clock.advance(0.5)
    assert transport.value() == b"c"  # timed from its own connect
    assert factory.finished.called and not transport.disconnecting


def deferLater(reactor: Any, seconds: float) -> Deferred[None]:
    from twisted.internet.task import deferLater as later

    result: Deferred[None] = later(reactor, seconds, lambda: None)
    return result


# --- record → replay, end to end ---------------------------------------------------------------


class Twistd(testing.Twistd):
    """A ``twistd -n`` child running this checkout's code."""

    def __init__(self, *argv: str, cwd: Path) -> None:
        super().__init__(*argv, cwd=cwd, pythonpath=ROOT)


def wait_until(check: Any, timeout: float = 30.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {check}")


def read_json(path: Path) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = json.loads(path.read_bytes())
    except (FileNotFoundError, ValueError):
        return {}
    return doc


def daemon(port: str, data: Path, *extra: str) -> list[str]:
    return [
        "mitelacd",
        *("--host", "127.0.0.1", "--port", port, "--file", str(data), "--http", "none"),
        *("--write-interval", "0.2", "--log-level", "warn", *extra),
    ]


FLOOR = ("agents", "groups", "paths")


@pytest.mark.processes
def test_record_then_replay_gives_the_daemons_final_file(tmp_path: Path, processes: Any) -> None:
    """A simulated day, 08:00 to past midnight, recorded by a daemon, then replayed both ways."""
    records = tmp_path / "captures"
    records.mkdir()
    sim = processes(
        "mitelacd-sim",
        *("--port", "0", "--seed", "11", "--events", "2500", "--speed", "30000"),
        *("--start", "2026-03-09T08:00"),
        cwd=tmp_path,
    )
    port = sim.wait_for(r"simulated ICP feed on \S+ port (\d+)").group(1)
    first_file = tmp_path / "first.json"
    first = processes(*daemon(port, first_file, "--record", str(records)), cwd=tmp_path)
    # Past the PBX's midnight: the first day is closed and compressed.
    wait_until(lambda: (records / "mitelacd-2026-03-09.capture.gz").exists())
    wait_until(lambda: (records / "mitelacd-2026-03-10.capture").exists())
    # The simulator hangs up first, so the last read is whole and the loss is recorded;
    # then the daemon's last state is written as it stops.
    assert sim.stop() in (0, -15)
    first.wait_for(r"lost the PBX link", timeout=10)
    first.stop_cleanly()
    final = json.loads(first_file.read_bytes())
    assert len(final["agents"]) >= 20 and len(final["groups"]) == 4

    captures = sorted(str(p) for p in records.iterdir())
    assert [Path(p).name for p in captures] == [
        "mitelacd-2026-03-09.capture.gz",
        "mitelacd-2026-03-10.capture",
    ]
    # (a) Offline, through the console script.
    replay = subprocess.run(
        [sys.executable, "-c", "from mitelacd.feed.replay import run; run()", *captures],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert replay.returncode == 0, replay.stderr
    assert "0 gap(s)" in replay.stderr and "1 daemon start(s)" in replay.stderr
    replayed = json.loads(replay.stdout)
    assert {k: replayed[k] for k in FLOOR} == {k: final[k] for k in FLOOR}
    # lastUpdate is the time the daemon applied the last change; the capture holds
    # when it had taken that read in, a moment later.
    assert 0 <= replayed["lastUpdate"] - final["lastUpdate"] < 0.25

    # (b) Served at 50 times the speed to a second daemon over loopback.
    server = processes(
        "mitelacd-sim",
        "--port",
        "0",
        "--speed",
        "50",
        *(f"--replay={c}" for c in captures),
        cwd=tmp_path,
    )
    replay_port = server.wait_for(r"capture replay on \S+ port (\d+)").group(1)
    second_file = tmp_path / "second.json"
    second = processes(*daemon(replay_port, second_file), cwd=tmp_path)
    server.wait_for(r"the capture is served to its end", timeout=30)
    wait_until(
        lambda: {k: read_json(second_file).get(k) for k in FLOOR} == {k: final[k] for k in FLOOR}
    )
    second.stop_cleanly()
    again = json.loads(second_file.read_bytes())
    assert {k: again[k] for k in FLOOR} == {k: final[k] for k in FLOOR}
