"""What a display board costs the daemon: figures for the HTTP side.

The web service, a floor fed from the simulator's script and every client run
in this one process, on the global reactor, on 127.0.0.1 only, for a bounded
time; then a small table is printed on stdout. Nothing is asserted: the
figures are there to be read. From the repository root::

    PYTHONPATH=. python bench/boards.py [--seconds 5] [--pollers 50] [--sse-clients 200]

Phases, after a warm-up that brings the floor to mid-morning and a measure of
what the feed costs alone (it goes on feeding one chunk of the script every
``--feed-interval`` seconds all through):

1. ``--pollers`` boards polling ``/mitel_data.json`` with ``If-None-Match``;
2. the same on ``/api/v1/state``;
3. ``--sse-clients`` boards on ``/api/v1/events``;
4. ``--slow-clients`` boards on ``/api/v1/events`` that stop reading.

CPU figures are ``time.process_time()`` deltas of the whole process: server,
clients and feed together. The feed's own cost is taken off, so ``cpu`` is an
upper bound of the server's cost; ``handler`` (time inside the server's HTTP
protocol: parse, route, render, buffer the answer) is a lower bound, and
``client`` is the time inside this bench's client protocols.
"""

from __future__ import annotations

import argparse
import fcntl
import gc
import json
import platform
import random
import resource
import socket
import struct
import sys
import termios
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import attrs
from twisted.copyright import version as twisted_version
from twisted.internet.defer import Deferred, gatherResults, maybeDeferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.internet.task import LoopingCall, deferLater, react
from twisted.internet.testing import StringTransport
from twisted.logger import (
    FilteringLogObserver,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    textFileLogObserver,
)
from twisted.python.failure import Failure
from twisted.web.server import Site

from mitelacd.protocol import ACDReceiver, PBXClientFactory
from mitelacd.records import STX
from mitelacd.simulator import FloorScript
from mitelacd.state import FloorState
from mitelacd.web import EventPush, WebService, WebSettings

log = Logger(namespace="bench.boards")

HOST = "127.0.0.1"
P = TypeVar("P", bound=Protocol)


# --- process figures ----------------------------------------------------------


@attrs.frozen
class Mark:
    """Wall and CPU clocks of the process at one moment."""

    wall: float
    cpu: float

    @classmethod
    def now(cls) -> Mark:
        return cls(time.perf_counter(), time.process_time())


def rss_kib() -> int:
    """Resident set size now (``VmRSS``), in KiB."""
    with open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith(b"VmRSS:"):
                return int(line.split()[1])
    return 0


def peak_rss_kib() -> int:
    """Highest resident set size so far (``ru_maxrss``, KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def percentile(values: Sequence[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def sleep(reactor: Any, seconds: float) -> Deferred[None]:
    return deferLater(reactor, seconds)


async def wait_until(reactor: Any, test: Callable[[], bool], timeout: float) -> bool:
    """Poll ``test`` every 20 ms; whether it came true within ``timeout`` seconds."""
    deadline = time.perf_counter() + timeout
    while not test():
        if time.perf_counter() > deadline:
            return False
        await sleep(reactor, 0.02)
    return True


# --- the floor ----------------------------------------------------------------


class Feed:
    """The floor, fed from a FloorScript through the real framing, one chunk at a time.

    The receiver sits on a StringTransport: no socket, but the same code path
    as a PBX connection from ``dataReceived`` on.
    """

    def __init__(self, floor: FloorState, script: FloorScript, reactor: Any) -> None:
        self.floor = floor
        self._steps = script.steps()
        self.sim_seconds = 0.0
        self.chunks = 0
        self.records = 0
        receiver = PBXClientFactory(floor, reactor).buildProtocol(None)
        self._receiver = cast(ACDReceiver, receiver)
        self._receiver.makeConnection(StringTransport())
        self._loop = LoopingCall(self.step)
        self._loop.clock = reactor

    def step(self) -> int:
        """Feed the script's next chunk; the floor's version after it."""
        self.sim_seconds, chunk = next(self._steps)
        self._receiver.dataReceived(chunk)
        self.chunks += 1
        self.records += chunk.count(STX)
        return self.floor.version

    def warm_up(self, sim_seconds: float) -> None:
        """Feed at once everything the script says up to ``sim_seconds``."""
        while self.sim_seconds < sim_seconds:
            self.step()

    def start(self, interval: float) -> None:
        self._loop.start(interval, now=False)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()
        self._receiver.connectionLost(Failure(ConnectionDone("bench over")))


class HandlerClock:
    """Adds up the time the server spends inside its HTTP protocols' ``dataReceived``.

    That covers parsing, routing, rendering and buffering the answer; the
    reactor's reads and writes on the sockets are outside it.
    """

    def __init__(self, site: Site) -> None:
        self.seconds = 0.0
        build = site.buildProtocol

        def buildProtocol(addr: Any) -> Any:
            protocol = build(addr)
            if protocol is not None:
                received = protocol.dataReceived

                def dataReceived(data: bytes) -> None:
                    start = time.perf_counter()
                    try:
                        received(data)
                    finally:
                        self.seconds += time.perf_counter() - start

                protocol.dataReceived = dataReceived
            return protocol

        site.buildProtocol = buildProtocol  # type: ignore[method-assign]


# --- clients --------------------------------------------------------------------


class ResponseReader:
    """Just enough HTTP/1.1 response parsing for Twisted Web's answers.

    Responses follow each other on a keep-alive connection; bodies come with
    a Content-Length or chunked.
    """

    def __init__(
        self,
        on_body: Callable[[bytes], None] = lambda data: None,
        on_done: Callable[[], None] = lambda: None,
    ) -> None:
        self._on_body = on_body
        self._on_done = on_done
        self._buffer = bytearray()
        self._state = "head"
        self._left = 0
        self.status = 0
        self.headers: dict[bytes, bytes] = {}

    def feed(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while True:
            state = self._state
            if state == "head":
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                status, *lines = bytes(buffer[:end]).split(b"\r\n")
                del buffer[: end + 4]
                self.status = int(status.split(b" ", 2)[1])
                self.headers = {}
                for line in lines:
                    name, _, value = line.partition(b":")
                    self.headers[name.strip().lower()] = value.strip()
                if self.status in (204, 304) or self.status < 200:
                    self._on_done()
                elif self.headers.get(b"transfer-encoding", b"").lower() == b"chunked":
                    self._state = "size"
                else:
                    self._state, self._left = "body", int(self.headers[b"content-length"])
            elif state in ("body", "chunk"):
                take = min(self._left, len(buffer))
                if take:
                    self._on_body(bytes(buffer[:take]))
                    del buffer[:take]
                    self._left -= take
                if self._left:
                    return
                if state == "chunk":
                    self._state = "crlf"
                else:
                    self._state = "head"
                    self._on_done()
            elif state == "size":
                end = buffer.find(b"\r\n")
                if end < 0:
                    return
                size = int(bytes(buffer[:end]).split(b";")[0], 16)
                del buffer[: end + 2]
                self._state, self._left = ("chunk", size) if size else ("trailer", 0)
            elif state == "crlf":
                if len(buffer) < 2:
                    return
                del buffer[:2]
                self._state = "size"
            else:  # trailer: lines up to an empty one
                end = buffer.find(b"\r\n")
                if end < 0:
                    return
                empty = end == 0
                del buffer[: end + 2]
                if empty:
                    self._state = "head"
                    self._on_done()


@attrs.define
class PollTally:
    """What the pollers of one phase saw."""

    latencies: list[float] = attrs.Factory(list)
    codes: Counter[int] = attrs.Factory(Counter)
    body_bytes: int = 0
    client_seconds: float = 0.0


class Poller(Protocol):
    """A board polling one URL over one keep-alive connection, asking again at each answer."""

    def __init__(self, path: bytes, port: int, tally: PollTally) -> None:
        self._request = b"GET %s HTTP/1.1\r\nHost: %s:%d\r\n" % (path, HOST.encode(), port)
        self._tally = tally
        self._etag: bytes | None = None
        self._until = 0.0
        self._sent_at = 0.0
        self._done: Deferred[None] = Deferred()
        self._reader = ResponseReader(self._body, self._answered)

    def run(self, until: float) -> Deferred[None]:
        """Poll until ``until`` (perf_counter time); fires at the last answer."""
        self._until = until
        self._send()
        return self._done

    def _send(self) -> None:
        request = self._request
        if self._etag is not None:
            request += b"If-None-Match: " + self._etag + b"\r\n"
        self._sent_at = time.perf_counter()
        assert self.transport is not None
        self.transport.write(request + b"\r\n")

    def dataReceived(self, data: bytes) -> None:
        start = time.perf_counter()
        self._reader.feed(data)
        self._tally.client_seconds += time.perf_counter() - start

    def _body(self, data: bytes) -> None:
        self._tally.body_bytes += len(data)

    def _answered(self) -> None:
        now = time.perf_counter()
        self._tally.latencies.append(now - self._sent_at)
        self._tally.codes[self._reader.status] += 1
        self._etag = self._reader.headers.get(b"etag", self._etag)
        if now < self._until:
            self._send()
        elif not self._done.called:
            self._done.callback(None)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if not self._done.called and self._until:
            self._done.errback(reason)


@attrs.define
class Marker:
    """A change fed at ``fed_at`` that version ``version`` carries, and when boards saw it."""

    version: int
    fed_at: float
    boards: int
    seen: int = 0
    first: float | None = None
    last: float | None = None

    def reached(self, now: float) -> None:
        self.seen += 1
        if self.first is None:
            self.first = now
        if self.seen == self.boards:
            self.last = now


@attrs.define
class StreamTally:
    """What the event readers of one phase saw."""

    markers: list[Marker] = attrs.Factory(list)
    client_seconds: float = 0.0


class EventReader(Protocol):
    """A board on ``/api/v1/events``: reads the raw stream and notes each state event."""

    def __init__(self, port: int, tally: StreamTally) -> None:
        self._port = port
        self._tally = tally
        self._events = bytearray()
        self._reader = ResponseReader(self._body)
        self.bytes = 0
        self.events = 0
        self.marker_index = 0
        #: Fires at the first state event: the server has subscribed this board.
        self.ready: Deferred[None] = Deferred()
        self.state_seen: Callable[[int, float], None] | None = None

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(
            b"GET /api/v1/events HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n\r\n"
            % (HOST.encode(), self._port)
        )

    def dataReceived(self, data: bytes) -> None:
        start = time.perf_counter()
        self.bytes += len(data)
        self._reader.feed(data)
        self._tally.client_seconds += time.perf_counter() - start

    def _body(self, data: bytes) -> None:
        events = self._events
        events += data
        while (end := events.find(b"\n\n")) >= 0:
            if events.startswith(b"event: state\nid: "):
                self._state(int(events[17 : events.index(b"\n", 17)]))
            del events[: end + 2]

    def _state(self, version: int) -> None:
        now = time.perf_counter()
        self.events += 1
        markers = self._tally.markers
        while self.marker_index < len(markers) and markers[self.marker_index].version <= version:
            markers[self.marker_index].reached(now)
            self.marker_index += 1
        if self.state_seen is not None:
            self.state_seen(version, now)
        if not self.ready.called:
            self.ready.callback(None)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if not self.ready.called:
            self.ready.errback(reason)

    @property
    def tcp(self) -> Any:
        """The TCP transport: pausable, with its socket at ``getHandle()``."""
        return self.transport


class _Given(Factory):
    """A factory that hands out one protocol made beforehand."""

    def __init__(self, protocol: Protocol) -> None:
        self._protocol = protocol

    def buildProtocol(self, addr: Any) -> Protocol:
        return self._protocol


# --- the bench ------------------------------------------------------------------


@attrs.define
class Bench:
    """The server, the floor and what every phase needs to measure against."""

    reactor: Any
    args: argparse.Namespace
    floor: FloorState
    feed: Feed
    web: WebService
    handler: HandlerClock
    port: int
    #: CPU seconds the feed costs per chunk, measured with no client.
    feed_cpu_per_chunk: float = 0.0

    @property
    def push(self) -> EventPush:
        return self.web.push

    def cpu_less_feed(self, start: Mark, end: Mark, chunks: int) -> float:
        return end.cpu - start.cpu - chunks * self.feed_cpu_per_chunk

    async def connect(
        self,
        protocols: Sequence[P],
        ready: Callable[[P], Deferred[None]] | None = None,
        batch: int = 25,
    ) -> None:
        """Connect ``protocols`` in batches (the listen backlog is 50), each batch ready."""
        endpoint = TCP4ClientEndpoint(self.reactor, HOST, self.port, timeout=5)
        for start in range(0, len(protocols), batch):
            group = protocols[start : start + batch]
            connected = gatherResults([connectProtocol(endpoint, p) for p in group])
            await connected.addTimeout(10, self.reactor)
            if ready is not None:
                await gatherResults([ready(p) for p in group]).addTimeout(10, self.reactor)

    async def connect_small_window(self, readers: Sequence[EventReader], rcvbuf: int) -> None:
        """Connect ``readers`` from sockets whose receive buffer is set before connecting."""
        for start in range(0, len(readers), 25):
            group = readers[start : start + 25]
            for reader in group:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                    if rcvbuf:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
                    sock.settimeout(5)
                    sock.connect((HOST, self.port))  # loopback: done in the kernel at once
                    sock.setblocking(False)
                    # The reactor takes a duplicate of the descriptor.
                    self.reactor.adoptStreamConnection(
                        sock.fileno(), socket.AF_INET, _Given(reader)
                    )
            await gatherResults([r.ready for r in group]).addTimeout(10, self.reactor)

    async def all_gone(self) -> None:
        """Wait until the server has let go of every event subscriber."""
        if not await wait_until(self.reactor, lambda: not self.push.subscribers, 5.0):
            log.warn("{n} subscribers still held", n=len(self.push.subscribers))
        await sleep(self.reactor, 0.2)  # let closing pollers' sockets go too


def start_logging() -> None:
    """Warnings of everything, and this bench's info, to stderr: the figures go to stdout."""
    predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.warn)
    predicate.setLogLevelForNamespace(log.namespace, LogLevel.info)
    observer = FilteringLogObserver(textFileLogObserver(sys.stderr), [predicate])
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)


async def set_up(reactor: Any, args: argparse.Namespace) -> Bench:
    floor = FloorState(reactor)
    script = FloorScript(seed=args.seed, agents=args.agents, groups=4, paths=3)
    feed = Feed(floor, script, reactor)
    feed.warm_up(args.warm_up)
    web = WebService(f"tcp:0:interface={HOST}", floor, WebSettings(), reactor)
    handler = HandlerClock(web.site)
    web.startService()
    assert web.port is not None
    port = int(getattr(web.port.getHost(), "port", 0))
    bench = Bench(reactor, args, floor, feed, web, handler, port)
    feed.start(args.feed_interval)

    totals = floor.totals()
    chunks, records, sim = feed.chunks, feed.records, feed.sim_seconds
    print(
        f"mitelacd boards bench: Python {platform.python_version()},"
        f" Twisted {twisted_version}, {type(reactor).__name__},"
        f" {args.seconds:g} s per phase"
    )
    print(
        f"floor: seed {args.seed}, {len(floor.agents)} agents seen,"
        f" {totals['logged_in']} logged in, after {sim:.0f} simulated s"
        f" ({chunks} chunks, {records} records)"
    )
    state_size = len(json.dumps(floor.snapshot(), separators=(",", ":")))
    print(
        f"documents: mitel_data.json {len(floor.legacyJSON()) / 1024:.1f} KiB,"
        f" /api/v1/state {state_size / 1024:.1f} KiB,"
        f" SSE state event {len(bench.push.stateEvent()) / 1024:.1f} KiB"
    )
    return bench


async def feed_alone(bench: Bench) -> None:
    """The feed's own cost with no client, taken off the later phases' CPU."""
    feed = bench.feed
    log.info("feed alone for {s:g} s", s=bench.args.seconds)
    chunks, records, start = feed.chunks, feed.records, Mark.now()
    await sleep(bench.reactor, bench.args.seconds)
    end = Mark.now()
    fed = max(1, feed.chunks - chunks)
    wall = end.wall - start.wall
    bench.feed_cpu_per_chunk = (end.cpu - start.cpu) / fed
    print(
        f"feed alone: {fed / wall:.1f} chunks/s, {(feed.records - records) / wall:.0f} records/s"
        f" (the simulated floor's pace x{_pace(bench):.0f}),"
        f" {100 * (end.cpu - start.cpu) / wall:.1f} % of a core,"
        f" {1e6 * bench.feed_cpu_per_chunk:.0f} us CPU per chunk"
    )
    print(
        "CPU is process_time() of this one process (server, clients and feed):"
        " cpu = all less the feed (upper bound of the server);"
        " handler = inside the server's HTTP protocol (lower bound);"
        " client = inside this bench's clients"
    )


def _pace(bench: Bench) -> float:
    """How much faster than the script's own clock the feed goes, on average."""
    return bench.feed.sim_seconds / max(1, bench.feed.chunks) / bench.args.feed_interval


POLL_HEAD = (
    f"{'polling':<18}{'boards':>7}{'req/s':>8}{'304 %':>7}{'body KiB':>9}"
    f"{'mean ms':>9}{'p99 ms':>8}{'cpu us/req':>11}{'handler':>9}{'client':>8}"
    f"{'busy %':>8}{'feed/s':>8}"
)


async def polling(bench: Bench, path: bytes) -> None:
    """``--pollers`` boards asking for ``path`` as fast as the answers come."""
    args, feed = bench.args, bench.feed
    log.info("{n} boards polling {path}", n=args.pollers, path=path.decode())
    tally = PollTally()
    pollers = [Poller(path, bench.port, tally) for _ in range(args.pollers)]
    await bench.connect(pollers)
    handler, chunks, start = bench.handler.seconds, feed.chunks, Mark.now()
    runs = [p.run(start.wall + args.seconds) for p in pollers]
    await gatherResults(runs).addTimeout(args.seconds + 10, bench.reactor)
    end = Mark.now()
    handler = bench.handler.seconds - handler
    fed = feed.chunks - chunks
    for poller in pollers:
        assert poller.transport is not None
        poller.transport.loseConnection()
    wall = end.wall - start.wall
    count = len(tally.latencies)
    answered = count - tally.codes[304]
    unexpected = {c: n for c, n in tally.codes.items() if c not in (200, 304)}
    if unexpected:
        log.warn("unexpected answers on {path}: {codes}", path=path.decode(), codes=unexpected)
    print(
        f"{path.decode():<18}{args.pollers:>7}{count / wall:>8.0f}"
        f"{100 * tally.codes[304] / count:>7.1f}"
        f"{tally.body_bytes / max(1, answered) / 1024:>9.1f}"
        f"{1e3 * mean(tally.latencies):>9.2f}{1e3 * percentile(tally.latencies, 0.99):>8.2f}"
        f"{1e6 * bench.cpu_less_feed(start, end, fed) / count:>11.0f}"
        f"{1e6 * handler / count:>9.0f}{1e6 * tally.client_seconds / count:>8.0f}"
        f"{100 * (end.cpu - start.cpu) / wall:>8.0f}{fed / wall:>8.1f}"
    )
    await bench.all_gone()


PUSH_HEAD = (
    f"{'push':<18}{'boards':>7}{'ev/board/s':>11}{'KiB/board/s':>12}"
    f"{'change->all ms n: mean/p90/max':>32}{'fan-out ms':>11}{'cpu us/ev':>10}{'client':>7}"
    f"{'RSS MiB before->after':>23}{'feed/s':>8}"
)


async def fan_out(bench: Bench) -> None:
    """``--sse-clients`` boards on the event stream; changes marked and timed to every board."""
    args, feed, reactor = bench.args, bench.feed, bench.reactor
    log.info("{n} boards on the event stream", n=args.sse_clients)
    gc.collect()
    rss_before = rss_kib()
    tally = StreamTally()
    readers = [EventReader(bench.port, tally) for _ in range(args.sse_clients)]
    await bench.connect(readers, ready=lambda r: r.ready)
    rng = random.Random(args.seed)
    bytes0 = sum(r.bytes for r in readers)
    events0 = sum(r.events for r in readers)
    client0, chunks, start = tally.client_seconds, feed.chunks, Mark.now()
    # Marks at irregular times, so they fall anywhere in the push pacing.
    while time.perf_counter() < start.wall + args.seconds - 1.0:
        await sleep(reactor, rng.uniform(0.4, 0.8))
        fed_at = time.perf_counter()
        tally.markers.append(Marker(feed.step(), fed_at, len(readers)))
    await sleep(reactor, max(0.0, start.wall + args.seconds - time.perf_counter()))
    end = Mark.now()
    fed = feed.chunks - chunks
    rss_after = rss_kib()
    wall = end.wall - start.wall
    received = sum(r.bytes for r in readers) - bytes0
    events = sum(r.events for r in readers) - events0
    done = [m for m in tally.markers if m.last is not None]
    delays = [cast(float, m.last) - m.fed_at for m in done]
    spread = [cast(float, m.last) - cast(float, m.first) for m in done]
    if len(done) < len(tally.markers):
        log.warn(
            "{n} of {total} marked changes had not reached every board in time",
            n=len(tally.markers) - len(done),
            total=len(tally.markers),
        )
    boards = len(readers)
    delay_text = f"{len(delays)}: " + "/".join(
        f"{1e3 * v:.0f}" for v in (mean(delays), percentile(delays, 0.9), max(delays, default=0))
    )
    print(
        f"{'/api/v1/events':<18}{boards:>7}{events / boards / wall:>11.2f}"
        f"{received / boards / wall / 1024:>12.1f}{delay_text:>32}"
        f"{1e3 * mean(spread):>11.1f}"
        f"{1e6 * bench.cpu_less_feed(start, end, fed) / max(1, events):>10.0f}"
        f"{1e6 * (tally.client_seconds - client0) / max(1, events):>7.0f}"
        f"{_rss_change(rss_before, rss_after, boards):>23}{fed / wall:>8.1f}"
    )
    for reader in readers:
        reader.tcp.loseConnection()
    await bench.all_gone()


def _rss_change(before: int, after: int, boards: int) -> str:
    per_board = (after - before) / boards
    return f"{before / 1024:.1f}->{after / 1024:.1f} ({per_board:+.0f} KiB/b)"


STALL_HEAD = (
    f"{'stalled':<18}{'boards':>7}{'paused':>11}{'behind':>7}"
    f"{'held KiB/board mid/end/max':>27}{'kernel KiB/b snd/rcv':>21}"
    f"{'RSS MiB before->after':>23}{'resume: to newest, read':>28}"
)


def _peer_port(request: Any) -> int:
    return int(request.transport.getPeer().port)


def held_bytes(transport: Any) -> int:
    """Bytes a Twisted TCP transport still has to send (its private buffers)."""
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


def kernel_queue(sock: socket.socket, request: int) -> int:
    """A socket's kernel queue length: ``TIOCOUTQ`` for unsent, ``FIONREAD`` for unread."""
    answer = fcntl.ioctl(sock.fileno(), request, struct.pack("i", 0))
    return int(struct.unpack("i", answer)[0])


async def stalled(bench: Bench) -> None:
    """``--slow-clients`` boards that stop reading while the floor keeps changing."""
    args, reactor, push = bench.args, bench.reactor, bench.push
    log.info("{n} boards on the event stream that stop reading", n=args.slow_clients)
    gc.collect()
    rss_before = rss_kib()
    tally = StreamTally()
    readers = [EventReader(bench.port, tally) for _ in range(args.slow_clients)]
    await bench.connect_small_window(readers, args.slow_sockbuf)
    ports = {r.tcp.getHost().port for r in readers}
    mine = [s for s in push.subscribers if _peer_port(s.request) in ports]
    servers: list[Any] = [s.request.transport for s in mine]
    if len(mine) != len(readers):
        log.warn(
            "found {n} of {k} stalled boards among the subscribers", n=len(mine), k=len(readers)
        )
    if not mine:
        return
    if args.slow_sockbuf:
        for transport in servers:
            transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, args.slow_sockbuf)
    for reader in readers:
        reader.tcp.pauseProducing()
    samples: list[float] = []
    all_paused: float | None = None
    start = time.perf_counter()
    while time.perf_counter() < start + args.seconds:
        await sleep(reactor, 0.25)
        samples.append(sum(held_bytes(t) for t in servers) / len(servers))
        if all_paused is None and all(s.paused for s in mine):
            all_paused = time.perf_counter() - start
    rss_after = rss_kib()
    held_end = samples[-1]
    paused = sum(s.paused for s in mine)
    behind = sum(s.behind for s in mine)
    sent_queue = mean([kernel_queue(t.getHandle(), termios.TIOCOUTQ) for t in servers])
    unread = mean([kernel_queue(r.tcp.getHandle(), termios.FIONREAD) for r in readers])

    # Read again: how long until each board has the state of the moment.
    newest = bench.floor.version
    resumed = time.perf_counter()
    caught_up: dict[EventReader, float] = {}
    drained = {r: r.events for r in readers}
    for reader in readers:

        def seen(version: int, now: float, reader: EventReader = reader) -> None:
            if version >= newest and reader not in caught_up:
                caught_up[reader] = now - resumed

        reader.state_seen = seen
        reader.tcp.resumeProducing()
    await wait_until(reactor, lambda: len(caught_up) == len(readers), 5.0)
    events_after = mean([r.events - drained[r] for r in readers])
    late = len(readers) - len(caught_up)
    slowest = max(caught_up.values(), default=float("nan"))
    resume_text = f"{1e3 * slowest:.0f} ms, {events_after:.1f} ev"
    if late:
        resume_text += f" ({late} late)"
    paused_text = f"{paused} @{all_paused:.1f}s" if all_paused is not None else str(paused)
    print(
        f"{'/api/v1/events':<18}{len(readers):>7}{paused_text:>11}{behind:>7}"
        f"{_kib(samples[len(samples) // 2]) + '/' + _kib(held_end) + '/' + _kib(max(samples)):>27}"
        f"{_kib(sent_queue) + '/' + _kib(unread):>21}"
        f"{_rss_change(rss_before, rss_after, len(readers)):>23}{resume_text:>28}"
    )
    for reader in readers:
        reader.tcp.loseConnection()
    await bench.all_gone()


NOTES = """\
feed/s: chunks fed during the phase (the push phase adds its marked changes).
change->all: from feeding a marked chunk to the last board holding an event of its version
  (pushes are paced at most one per 0.5 s); fan-out: first to last board for that event.
cpu us/ev: per event delivered to one board. RSS: VmRSS before connecting and at the end,
  both ends of the connections; memory freed by earlier phases is reused, so it understates.
held: what Twisted buffers for a stalled board, sampled every 0.25 s; kernel snd/rcv: the
  server socket's unsent queue and the board's unread queue; paused @: when every stalled
  board's subscriber was paused; resume: until every board has the state of the moment it
  read again, and the events each read then. Stalled boards' socket buffers: {sockbuf}.
Peak RSS of the run: {peak:.1f} MiB."""


def _sockbuf(size: int) -> str:
    return f"{size} bytes on both ends" if size else "as the OS sets them"


def _kib(size: float) -> str:
    return f"{size / 1024:.0f}"


async def run(reactor: Any, args: argparse.Namespace) -> None:
    bench = await set_up(reactor, args)
    try:
        await feed_alone(bench)
        print()
        print(POLL_HEAD)
        await polling(bench, b"/mitel_data.json")
        await polling(bench, b"/api/v1/state")
        print()
        print(PUSH_HEAD)
        await fan_out(bench)
        print()
        print(STALL_HEAD)
        await stalled(bench)
        print()
        print(NOTES.format(sockbuf=_sockbuf(args.slow_sockbuf), peak=peak_rss_kib() / 1024))
    finally:
        bench.feed.stop()
        await maybeDeferred(bench.web.stopService)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each phase")
    parser.add_argument("--pollers", type=int, default=50, help="polling boards")
    parser.add_argument("--sse-clients", type=int, default=200, help="boards on the event stream")
    parser.add_argument("--slow-clients", type=int, default=20, help="boards that stop reading")
    parser.add_argument(
        "--slow-sockbuf",
        type=int,
        default=8192,
        help="SO_RCVBUF of the stalled boards and SO_SNDBUF of the server's end of their"
        " connections, so the kernel does not hide the server's own buffering"
        " (0: the OS defaults, which take megabytes first)",
    )
    parser.add_argument(
        "--feed-interval", type=float, default=0.05, help="seconds between two chunks fed"
    )
    parser.add_argument("--warm-up", type=float, default=7200.0, help="simulated seconds fed first")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--agents", type=int, default=48)
    args = parser.parse_args(argv)
    if min(args.seconds, args.pollers, args.sse_clients, args.slow_clients) <= 0:
        parser.error("--seconds and the client counts must be > 0")
    if args.seconds < 2:
        parser.error("--seconds must be at least 2")
    return args


def main(reactor: Any, *argv: str) -> Deferred[None]:
    args = parse_args(argv)
    start_logging()
    budget = 6 * args.seconds + 30  # a guard: a run takes about 5.5 phases
    return Deferred.fromCoroutine(run(reactor, args)).addTimeout(budget, reactor)


if __name__ == "__main__":
    react(main, sys.argv[1:])
