"""The pieces that ``bench/run.py`` builds its phases from.

Nothing here measures by itself. There are:

* figures of a process read from ``/proc`` (CPU time, RSS) and percentiles;
* :class:`Placement`: which CPU the server under test gets, and which the
  bench, its clients and wrk get;
* :class:`Child`: a server (``twistd mitelacd`` or one of the bare
  references next to this file) as a child process logging to a file, and
  :class:`Server`, a started one with its fake PBX link;
* :class:`FakePBX` and :class:`PBXLink`: the PBX socket the children dial;
* :class:`Floor` and :class:`Sequencer`: wire records from the simulator's
  encoders, for a floor of any size;
* HTTP and Server-Sent Events clients (:class:`ResponseParser`,
  :class:`StreamClient`, :class:`CountingStreams`, :class:`Audience`,
  :class:`Poller`);
* wrk: finding or installing it, its Lua scripts, running it.

Everything talks to 127.0.0.1 only, on ports the system picks, and every wait
has a deadline.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import Protocol, connectionDone
from twisted.internet.task import LoopingCall, deferLater
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from twisted.web.client import Agent, readBody
from twisted.web.http_headers import Headers

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the checkout's mitelacd, as the children run it
    sys.path.insert(0, str(ROOT))

from mitelacd.sim.service import (  # noqa: E402
    encode_call_event,
    encode_refresh,
    encode_stats,
    group_numbers,
    path_numbers,
)

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"
TWISTD = str(Path(sys.executable).parent / "twistd")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
reactor: Any = _reactor


class BenchError(Exception):
    """A phase cannot go on; the message says why."""


# --- small things -----------------------------------------------------------------


def sleep(seconds: float) -> Deferred[None]:
    return deferLater(reactor, seconds)


async def wait_until(
    test: Callable[[], bool], timeout: float, what: str, step: float = 0.02
) -> None:
    """Poll ``test`` every ``step`` seconds; BenchError saying ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not test():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:g} s waiting for {what}")
        await sleep(step)


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (``share`` from 0 to 1); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def median(values: Sequence[float]) -> float:
    """The middle value (the mean of the two middle ones for an even count); NaN for none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


# --- process figures ----------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from ``/proc/PID/stat``."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        data = stat.read()
    fields = data[data.rindex(b")") + 2 :].split()  # from field 3 (state) on
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def status_kib(pid: int, field: str) -> int:
    """A ``kB`` line of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``), in KiB; 0 if absent."""
    key = field.encode("ascii") + b":"
    with open(f"/proc/{pid}/status", "rb") as status:
        for line in status:
            if line.startswith(key):
                return int(line.split()[1])
    return 0


@attrs.frozen
class Usage:
    """CPU time and wall time of a process at one moment."""

    cpu: float
    wall: float

    @classmethod
    def of(cls, pid: int) -> Usage:
        return cls(cpu_seconds(pid), time.monotonic())

    def share_until(self, later: Usage) -> float:
        """CPU used between the two marks, as a share of one core."""
        return (later.cpu - self.cpu) / max(1e-9, later.wall - self.wall)


@attrs.frozen
class Placement:
    """Which CPUs the server under test runs on, and which the bench and its clients do."""

    server: frozenset[int] | None
    clients: frozenset[int] | None

    @classmethod
    def plan(cls, enabled: bool) -> Placement:
        cpus = sorted(os.sched_getaffinity(0))
        if not enabled or len(cpus) < 2:
            return cls(None, None)
        return cls(frozenset(cpus[:1]), frozenset(cpus[1:]))

    def pin_bench(self) -> None:
        if self.clients:
            os.sched_setaffinity(0, self.clients)

    def pin_server(self, pid: int) -> None:
        if self.server:
            os.sched_setaffinity(pid, self.server)

    def client_prefix(self) -> list[str]:
        """``taskset -c CPUS`` for a client command, when taskset exists."""
        if self.clients and shutil.which("taskset"):
            return ["taskset", "-c", ",".join(str(c) for c in sorted(self.clients))]
        return []

    def describe(self) -> str:
        if not self.server or not self.clients:
            return "not pinned"
        return (
            f"server on CPU {sorted(self.server)}, bench and clients on CPU {sorted(self.clients)}"
        )


# --- child processes -------------------------------------------------------------------

#: Children still running, stopped by :func:`stop_all` whatever happens.
RUNNING: set[Child] = set()
#: The daemon's "wall board and API at" line (info), else Twisted's own line about its
#: site (written at any --log-level); the bare servers print the first form.
_PORT_LINE = r"(?: at http://127\.0\.0\.1:|BoardSite starting on )(\d+)"


class Child:
    """A server or helper process; its output goes to a log file that can be waited on."""

    def __init__(self, name: str, argv: Sequence[str], workdir: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = workdir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=path)
        self.process = subprocess.Popen(
            self.argv,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        RUNNING.add(self)
        self._offset = 0
        self._partial = b""

    @property
    def pid(self) -> int:
        return self.process.pid

    def _new_lines(self) -> list[str]:
        with open(self.log_path, "rb") as log:
            log.seek(self._offset)
            data = log.read(1 << 20)
        self._offset += len(data)
        data = self._partial + data
        *lines, self._partial = data.split(b"\n")
        return [line.decode("utf-8", "replace") for line in lines]

    async def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first new log line matching ``pattern``; BenchError on exit or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self._new_lines():
                match = re.search(pattern, line)
                if match:
                    return match
            if self.process.poll() is not None:
                raise BenchError(
                    f"{self.name} exited ({self.process.returncode}) before {pattern!r}:\n"
                    + self.tail()
                )
            if time.monotonic() > deadline:
                raise BenchError(
                    f"{self.name}: no line {pattern!r} in {timeout:g} s:\n{self.tail()}"
                )
            await sleep(0.02)

    async def http_port(self, timeout: float = 30.0) -> int:
        return int((await self.wait_for(_PORT_LINE, timeout)).group(1))

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_bytes()[-8192:].decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def alive(self) -> bool:
        return self.process.poll() is None

    def usage(self) -> Usage:
        return Usage.of(self.pid)

    def rss_kib(self) -> int:
        return status_kib(self.pid, "VmRSS")

    def peak_rss_kib(self) -> int:
        return status_kib(self.pid, "VmHWM")

    def stop(self, grace: float = 10.0) -> int:
        """SIGTERM, then SIGKILL after ``grace`` seconds; the exit status."""
        RUNNING.discard(self)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(timeout=grace)
        self._log.close()
        return code


def stop_all() -> None:
    for child in list(RUNNING):
        child.stop(grace=3.0)


# --- the fake PBX -------------------------------------------------------------------------


class PBXLink:
    """The accepted connection of a child that dialled the fake PBX; only ever written to."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sent_bytes = 0
        #: Times a paced write found the socket full (the reader was behind).
        self.stalls = 0
        self._backlog = bytearray()
        self._retry: IDelayedCall | None = None

    def send(self, data: bytes) -> None:
        """Write now, without blocking; whatever the socket does not take goes out later."""
        self._backlog += data
        self._flush()

    def _flush(self) -> None:
        self._retry = None
        self.sock.setblocking(False)
        try:
            while self._backlog:
                sent = self.sock.send(self._backlog)
                self.sent_bytes += sent
                del self._backlog[:sent]
        except BlockingIOError:
            self.stalls += 1
            self._retry = reactor.callLater(0.001, self._flush)

    def stream(self, data: bytes, chunk: int = 4096, timeout: float = 60.0) -> Deferred[float]:
        """Write ``data`` in ``chunk`` writes as fast as the socket takes them, in a thread.

        Fires with the wall time (``time.time()``) of the first write.
        """
        if self._backlog:
            raise BenchError("a stream cannot follow paced writes still queued")

        def write_all() -> float:
            sock, view = self.sock, memoryview(data)
            sock.settimeout(timeout)
            started = time.time()
            for offset in range(0, len(view), chunk):
                sock.sendall(view[offset : offset + chunk])
            self.sent_bytes += len(data)
            return started

        return deferToThread(write_all)

    def close(self) -> None:
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes a stream() blocked in a send
        except OSError:
            pass
        self.sock.close()


class FakePBX:
    """A listening loopback socket for a child to dial, as the PBX's port 15373."""

    def __init__(self) -> None:
        self._server = socket.socket()
        self._server.bind((HOST, 0))
        self._server.listen(5)
        self._server.setblocking(False)
        self.port: int = self._server.getsockname()[1]

    async def accept(self, timeout: float = 30.0) -> PBXLink:
        deadline = time.monotonic() + timeout
        while True:
            try:
                conn, _ = self._server.accept()
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BenchError(f"nobody dialled the fake PBX in {timeout:g} s") from None
                await sleep(0.01)
            else:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return PBXLink(conn)

    def close(self) -> None:
        self._server.close()


# --- records ----------------------------------------------------------------------------

#: What each agent does, over and over, once logged in.
AGENT_CODES = "TUGNOJLMCDEF"
_RECNUMS = [b"%02d" % n for n in range(100)]
#: The directory number an agent's own records carry: 9000000 + its index.
HOME_DN = 9_000_000
#: Serial numbers carried in the DN field: 1 up to this.
MAX_SERIAL = 8_999_999


class Floor:
    """Wire records for a floor of ``agents`` agents, from the simulator's encoders.

    Every record comes out with record number 00: a :class:`Sequencer` gives
    the numbers when they are sent. Each agent steps through
    :data:`AGENT_CODES` in turn; its DN is its own set unless a serial is
    given to put there.
    """

    def __init__(self, agents: int, groups: int = 20, paths: int = 10) -> None:
        if not 1 <= agents <= 899_999:
            raise ValueError(f"agents must be from 1 to 899999, not {agents}")
        self.agents = agents
        self.ids = [str(100_000 + i) for i in range(agents)]
        self.groups = group_numbers(groups)
        self.paths = path_numbers(paths)
        self.when = datetime.datetime.now().replace(microsecond=0)
        self._steps = [0] * agents
        self._bursts = 0

    def login(self, index: int) -> bytes:
        return encode_call_event(0, "A", self.when, str(HOME_DN + index), self.ids[index], 1)

    def logins(self) -> list[bytes]:
        return [self.login(i) for i in range(self.agents)]

    def event(self, index: int, serial: int | None = None) -> bytes:
        """The agent's next event; ``serial`` (1 to MAX_SERIAL) goes in the DN field."""
        step = self._steps[index]
        self._steps[index] = step + 1
        code = AGENT_CODES[step % len(AGENT_CODES)]
        dn = str(HOME_DN + index if serial is None else serial)
        path = self.paths[index % len(self.paths)] if code == "G" else None
        button = 3 if code in "CE" else 1  # C and E carry a reason code there
        return encode_call_event(0, code, self.when, dn, self.ids[index], button, path)

    def burst(self) -> list[bytes]:
        """A statistics burst: K for every group, Q for every path, then an R keep-alive."""
        self._bursts += 1
        k = self._bursts
        out = [
            encode_stats(0, "K", self.when, g, (k + i) % 7, 5 + i % 9, 30 * ((k + i) % 5))
            for i, g in enumerate(self.groups)
        ]
        out += [
            encode_stats(0, "Q", self.when, p, (k + i) % 5, 10 + i % 7, 45 * ((k + i) % 4))
            for i, p in enumerate(self.paths)
        ]
        out.append(encode_refresh(0, self.when))
        return out

    def setup(self) -> list[bytes]:
        """Everyone logs in, then agent ``i`` does ``i mod 12`` more events, then a burst."""
        out = self.logins()
        for i in range(self.agents):
            out += [self.event(i) for _ in range(i % len(AGENT_CODES))]
        return out + self.burst()

    def mix(self, count: int, burst_every: int = 2000) -> Iterator[bytes]:
        """``count`` records: logins, then round after round of agent events, with a
        statistics burst after every ``burst_every`` agent events."""
        templates: list[bytes] = []
        for n in range(len(AGENT_CODES) * self.agents):
            templates.append(self.event(n % self.agents))
            if (n + 1) % burst_every == 0:
                templates += self.burst()
        stream = iter(self.logins())
        made = 0
        while made < count:
            for record in stream:
                yield record
                made += 1
                if made == count:
                    return
            stream = iter(templates)


class Sequencer:
    """Stamps record numbers 00..99 in turn, as the PBX does, onto records from :class:`Floor`."""

    def __init__(self) -> None:
        self.next = 0
        self.records = 0

    def stamp(self, records: Iterable[bytes]) -> bytes:
        n, out = self.next, []
        for record in records:
            out.append(b"\x02" + _RECNUMS[n] + record[3:])
            n = n + 1 if n < 99 else 0
        self.next = n
        self.records += len(out)
        return b"".join(out)


# --- servers under test ---------------------------------------------------------------------


def daemon_argv(
    pbx_port: int,
    data_file: Path,
    log_level: str | None,
    push_interval: float | None,
    extra: Sequence[str] = (),
) -> list[str]:
    """``twistd mitelacd`` dialling ``pbx_port``, with ``extra`` options at the end."""
    argv = [TWISTD, "-n", "--pidfile=", "--logger", "mitelacd.logs.journal", "mitelacd"]
    argv += ["--host", HOST, "--port", str(pbx_port), "--file", str(data_file)]
    argv += ["--http", f"tcp:0:interface={HOST}"]
    if log_level is not None:
        argv += ["--log-level", log_level]
    if push_interval is not None:
        argv += ["--push-interval", f"{push_interval:g}"]
    return argv + list(extra)


def bare_argv(script: str, *args: str) -> list[str]:
    """A reference server next to this file (``bare_web.py`` ...), run by this Python."""
    return [sys.executable, str(HERE / script), *args]


@attrs.define(eq=False)
class Server:
    """A child serving HTTP, and the fake PBX link it reads when it has one."""

    child: Child
    port: int
    pbx: FakePBX | None = None
    link: PBXLink | None = None
    sequencer: Sequencer = attrs.Factory(Sequencer)

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    @property
    def sent(self) -> int:
        """Records sent so far."""
        return self.sequencer.records

    def feed(self, records: Iterable[bytes]) -> None:
        if self.link is None:
            raise BenchError(f"{self.child.name} reads no PBX")
        self.link.send(self.sequencer.stamp(records))

    def stop(self) -> int:
        if self.link is not None:
            self.link.close()
        if self.pbx is not None:
            self.pbx.close()
        return self.child.stop()


async def start_server(
    name: str,
    argv_for: Callable[[int], list[str]],
    workdir: Path,
    placement: Placement,
    with_pbx: bool = True,
    with_http: bool = True,
    timeout: float = 30.0,
) -> Server:
    """Start a child (``argv_for(pbx_port)``), wait for its HTTP port and its PBX dial."""
    pbx = FakePBX() if with_pbx else None
    child = Child(name, argv_for(pbx.port if pbx else 0), workdir)
    server = Server(child, 0, pbx)
    try:
        placement.pin_server(child.pid)
        if with_http:
            server.port = await child.http_port(timeout)
        if pbx is not None:
            server.link = await pbx.accept(timeout)
    except BaseException:
        server.stop()
        raise
    return server


class Trickle:
    """Agent events to a server at a steady rate (each its own write: one change each)."""

    def __init__(self, server: Server, floor: Floor, rate: float) -> None:
        self._server = server
        self._floor = floor
        self._next = 0
        self._loop = LoopingCall(self._send)
        self._rate = rate

    def _send(self) -> None:
        index = self._next % self._floor.agents
        self._next += 1
        self._server.feed([self._floor.event(index)])

    def start(self) -> None:
        if self._rate > 0:
            self._loop.start(1.0 / self._rate, now=False)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()


# --- HTTP -------------------------------------------------------------------------------------


@attrs.frozen
class Fetched:
    code: int
    headers: dict[str, str]
    body: bytes


async def http_get(
    url: str, headers: dict[str, str] | None = None, timeout: float = 15.0
) -> Fetched:
    """One GET on a fresh connection."""
    raw = Headers({k.encode(): [v.encode()] for k, v in (headers or {}).items()})
    request = Agent(reactor).request(b"GET", url.encode("ascii"), raw)
    response = await request.addTimeout(timeout, reactor)
    body = await readBody(response).addTimeout(timeout, reactor)
    got = {
        k.decode("latin-1").lower(): v[0].decode("latin-1")
        for k, v in response.headers.getAllRawHeaders()
    }
    return Fetched(response.code, got, body)


def records_applied(feed_document: dict[str, Any]) -> int:
    """Records a server has taken in, by its ``/api/v1/feed`` document."""
    feed = feed_document["feed"]
    return int(sum(feed["records_by_code"].values()) + feed["unparsable_records"])


async def wait_applied(
    server: Server, count: int, timeout: float, every: float = 0.05
) -> dict[str, Any]:
    """Poll ``/api/v1/feed`` until ``count`` records are in; the last feed object."""
    deadline = time.monotonic() + timeout
    while True:
        doc = json.loads((await http_get(server.url("/api/v1/feed"))).body)
        if records_applied(doc) >= count:
            return dict(doc["feed"])
        if time.monotonic() > deadline:
            raise BenchError(
                f"{server.child.name} applied {records_applied(doc)} of {count} records"
                f" in {timeout:g} s"
            )
        await sleep(every)


class ResponseParser:
    """HTTP/1.1 responses following each other on one connection, fed as they arrive.

    Bodies come with a Content-Length, chunked, or until the connection closes.
    """

    def __init__(
        self,
        on_body: Callable[[bytes], None],
        on_done: Callable[[], None] = lambda: None,
        on_head: Callable[[int, dict[bytes, bytes]], None] = lambda status, headers: None,
    ) -> None:
        self._on_body, self._on_done, self._on_head = on_body, on_done, on_head
        self._buffer = bytearray()
        self._state = "head"
        self._left = 0
        self.status = 0
        self.headers: dict[bytes, bytes] = {}

    def feed(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        pos, size = 0, len(buffer)
        while pos < size:
            state = self._state
            if state == "head":
                end = buffer.find(b"\r\n\r\n", pos)
                if end < 0:
                    break
                self._head(bytes(buffer[pos:end]))
                pos = end + 4
            elif state in ("body", "chunk"):
                take = min(self._left, size - pos)
                self._on_body(bytes(buffer[pos : pos + take]))
                pos += take
                self._left -= take
                if self._left:
                    break
                if state == "chunk":
                    self._state = "crlf"
                else:
                    self._done()
            elif state == "all":
                self._on_body(bytes(buffer[pos:]))
                pos = size
            elif state == "crlf":
                if size - pos < 2:
                    break
                pos += 2
                self._state = "size"
            else:  # "size", or "trailer": lines up to an empty one
                end = buffer.find(b"\r\n", pos)
                if end < 0:
                    break
                line = bytes(buffer[pos:end])
                pos = end + 2
                if state == "size":
                    length = int(line.split(b";")[0], 16)
                    self._state, self._left = ("chunk", length) if length else ("trailer", 0)
                elif not line:
                    self._done()
        del buffer[:pos]

    def _head(self, head: bytes) -> None:
        status, *lines = head.split(b"\r\n")
        self.status = int(status.split(b" ", 2)[1])
        self.headers = {}
        for line in lines:
            name, _, value = line.partition(b":")
            self.headers[name.strip().lower()] = value.strip()
        self._on_head(self.status, self.headers)
        if self.status in (204, 304) or self.status < 200:
            self._done()
        elif self.headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            self._state = "size"
        elif b"content-length" in self.headers:
            self._left = int(self.headers[b"content-length"])
            self._state = "body"
            if not self._left:
                self._done()
        else:
            self._state = "all"

    def _done(self) -> None:
        self._state = "head"
        self._on_done()


def request_bytes(path: str, port: int, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n{extra}\r\n".encode("ascii")


class Poller(Protocol):
    """A board asking for one URL again as soon as each answer is in (keep-alive)."""

    def __init__(self, path: str, port: int, on_answer: Callable[[bytes, float], None]) -> None:
        self._request = request_bytes(path, port)
        self._on_answer = on_answer
        self._body: list[bytes] = []
        self._parser = ResponseParser(self._body.append, self._answered)
        self.running = False
        self.answers = 0
        self.connected = False

    def connectionMade(self) -> None:
        self.connected = True

    def start(self) -> None:
        self.running = True
        assert self.transport is not None
        self.transport.write(self._request)

    def dataReceived(self, data: bytes) -> None:
        self._parser.feed(data)

    def _answered(self) -> None:
        body, self._body[:] = b"".join(self._body), []
        self.answers += 1
        self._on_answer(body, time.perf_counter())
        if self.running and self.transport is not None:
            self.transport.write(self._request)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.connected = False


async def connect(protocol: Protocol, port: int) -> Any:
    return await connectProtocol(TCP4ClientEndpoint(reactor, HOST, port, timeout=10), protocol)


# --- Server-Sent Events -------------------------------------------------------------------------

_ID_MARK = b"\nid: "


class EventCounter:
    """Counts events with an id (``\\nid: ``) in an event stream body fed piece by piece."""

    def __init__(self) -> None:
        self.events = 0
        self.bytes = 0
        self._tail = b""

    def feed(self, data: bytes) -> None:
        self.bytes += len(data)
        joined = self._tail + data
        self.events += joined.count(_ID_MARK)
        self._tail = joined[-(len(_ID_MARK) - 1) :]


class EventSplitter:
    """Cuts an event stream body into events (the text between blank lines)."""

    def __init__(self, on_event: Callable[[bytes], None]) -> None:
        self._on_event = on_event
        self._buffer = bytearray()
        self._scanned = 0

    def feed(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        while True:
            end = buffer.find(b"\n\n", max(start, self._scanned))
            if end < 0:
                break
            self._on_event(bytes(buffer[start:end]))
            start = end + 2
        if start:
            del buffer[:start]
        self._scanned = max(0, len(buffer) - 1)


def event_fields(event: bytes) -> tuple[str, bytes]:
    """The name and the data of one event (``message`` when it has no ``event:`` line)."""
    name, data = "message", b""
    for line in event.split(b"\n"):
        if line.startswith(b"event: "):
            name = line[7:].decode("ascii", "replace")
        elif line.startswith(b"data: "):
            data = line[6:]
    return name, data


_EXTENSION = re.compile(rb'"extension":"(\d+)"')


def serials_in_json(data: bytes) -> list[int]:
    """Serials carried as agents' extensions in a snapshot, delta or state (or one agent)."""
    return [int(dn) for dn in _EXTENSION.findall(data)]


def serial_in_record(data: bytes) -> list[int]:
    """The serial in the DN field of a record body, as the bare relay sends it."""
    dn = data[9:16].strip()
    return [int(dn)] if dn.isdigit() else []


class StreamClient(Protocol):
    """A board on the event stream that notes when each serial first reaches it."""

    def __init__(self, port: int, path: str, serials_of: Callable[[bytes], list[int]]) -> None:
        self._request = request_bytes(path, port, "Accept: text/event-stream\r\n")
        self._serials_of = serials_of
        self._now = 0.0
        self._splitter = EventSplitter(self._event)
        self._parser = ResponseParser(self._body)
        self.counter = EventCounter()
        self.kinds: Counter[str] = Counter()
        #: serial -> perf_counter time it was first seen.
        self.seen: dict[int, float] = {}
        self.connected = False
        self.lost = False

    def connectionMade(self) -> None:
        self.connected = True
        assert self.transport is not None
        self.transport.write(self._request)

    def dataReceived(self, data: bytes) -> None:
        self._now = time.perf_counter()
        self._parser.feed(data)

    def _body(self, data: bytes) -> None:
        self.counter.feed(data)
        self._splitter.feed(data)

    def _event(self, event: bytes) -> None:
        name, data = event_fields(event)
        if not data:
            return
        self.kinds[name] += 1
        seen, now = self.seen, self._now
        for serial in self._serials_of(data):
            if serial not in seen:
                seen[serial] = now

    @property
    def status(self) -> int:
        return self._parser.status

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.connected = False
        self.lost = True


class CountingStreams:
    """Event stream boards that only read and count events, on plain sockets.

    They are read every ``interval`` seconds rather than at each event, so that
    the bench spends little on them; the kernel keeps what arrives between two
    reads.
    """

    def __init__(
        self, port: int, path: str, count: int, interval: float = 0.01, slices: int = 5
    ) -> None:
        self._port, self._path, self._count = port, path, count
        self.sockets: list[socket.socket] = []
        self.counters: list[EventCounter] = []
        self._parsers: list[ResponseParser] = []
        self.closed: list[bool] = []
        self._loop = LoopingCall(self.read)
        self._slices = slices
        self._turn = 0
        self._interval = interval / slices

    def _open_all(self, timeout: float) -> None:
        request = request_bytes(self._path, self._port, "Accept: text/event-stream\r\n")
        deadline = time.monotonic() + timeout
        for _ in range(self._count):
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"could not open {self._count} event streams in {timeout:g} s")
            sock = socket.create_connection((HOST, self._port), timeout=left)
            sock.sendall(request)
            sock.setblocking(False)
            counter = EventCounter()
            self.sockets.append(sock)
            self.counters.append(counter)
            self._parsers.append(ResponseParser(counter.feed))
            self.closed.append(False)

    async def open(self, timeout: float = 30.0) -> None:
        await deferToThread(self._open_all, timeout)
        self._loop.start(self._interval)

    def read(self) -> None:
        """Read a slice of the sockets: each is read every ``interval``, in
        ``slices`` turns, so that no turn holds the bench up for long."""
        turn, self._turn = self._turn, (self._turn + 1) % self._slices
        for i in range(turn, len(self.sockets), self._slices):
            if self.closed[i]:
                continue
            sock = self.sockets[i]
            try:
                while True:
                    data = sock.recv(1 << 20)
                    if not data:
                        self.closed[i] = True
                        break
                    self._parsers[i].feed(data)
            except BlockingIOError:
                pass
            except OSError:
                self.closed[i] = True

    def statuses(self) -> list[int]:
        return [p.status for p in self._parsers]

    def close(self) -> None:
        if self._loop.running:
            self._loop.stop()
        for sock in self.sockets:
            sock.close()


@attrs.frozen
class Delivery:
    """How the event stream boards of an audience fared."""

    clients: int
    connected: int
    #: Boards that received as many events as the most any board received.
    complete: int
    most_events: int
    fewest_events: int


class Audience:
    """``total`` boards on an event stream: ``measuring`` of them note serials, the rest count."""

    def __init__(
        self,
        port: int,
        total: int,
        measuring: int,
        serials_of: Callable[[bytes], list[int]],
        path: str = "/api/v1/events",
    ) -> None:
        measuring = min(measuring, total)
        self.measuring = [StreamClient(port, path, serials_of) for _ in range(measuring)]
        self.counting = CountingStreams(port, path, total - measuring)
        self._port = port

    async def open(self, timeout: float = 60.0) -> None:
        """Connect every board, then wait until all are answered and the snapshots are in."""
        for client in self.measuring:
            await connect(client, self._port)
        await self.counting.open()
        await wait_until(
            lambda: all(self._bytes()), timeout, "every event stream board to be answered"
        )
        bad = [s for s in self.statuses() if s != 200]
        if bad:
            raise BenchError(f"event stream answered {Counter(bad)} (want 200)")
        await self.quiet(timeout)

    async def quiet(self, timeout: float, still: float = 0.3) -> None:
        """Wait until no board has received anything for ``still`` seconds."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() - since < still:
            total = sum(self._bytes())
            if total != last:
                last, since = total, time.monotonic()
            if time.monotonic() > deadline:
                raise BenchError(f"event streams still busy after {timeout:g} s")
            await sleep(0.05)

    def _bytes(self) -> list[int]:
        return [c.counter.bytes for c in self.measuring] + [c.bytes for c in self.counting.counters]

    def statuses(self) -> list[int]:
        return [c.status for c in self.measuring] + self.counting.statuses()

    def event_counts(self) -> list[int]:
        return [c.counter.events for c in self.measuring] + [
            c.events for c in self.counting.counters
        ]

    def delivery(self) -> Delivery:
        counts = self.event_counts()
        connected = sum(c.connected for c in self.measuring) + sum(
            not closed for closed in self.counting.closed
        )
        most = max(counts, default=0)
        return Delivery(
            len(counts),
            connected,
            sum(1 for n in counts if n == most),
            most,
            min(counts, default=0),
        )

    def kinds(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for client in self.measuring:
            total += client.kinds
        return total

    def close(self) -> None:
        for client in self.measuring:
            if client.transport is not None:
                client.transport.loseConnection()
        self.counting.close()


# --- wrk --------------------------------------------------------------------------------------


def ensure_wrk() -> str | None:
    """The wrk binary; installed with apt-get (through sudo unless root) when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        return None
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in ([apt, "install", "-y", "-qq", "wrk"], [apt, "update", "-qq"]):
        subprocess.run(sudo + command, env=env, timeout=600, check=False, capture_output=True)
    if not shutil.which("wrk"):
        subprocess.run(
            [*sudo, apt, "install", "-y", "-qq", "wrk"],
            env=env,
            timeout=600,
            check=False,
            capture_output=True,
        )
    return shutil.which("wrk")


_WRK_DONE = """
function done(summary, latency, requests)
  local n200, n304, nother = 0, 0, 0
  for _, t in ipairs(threads) do
    n200 = n200 + (t:get("n200") or 0)
    n304 = n304 + (t:get("n304") or 0)
    nother = nother + (t:get("nother") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},' ..
    '"n200":%d,"n304":%d,"nother":%d}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, n200, n304, nother))
end
"""

_WRK_THREADS = """
threads = {}
function setup(thread)
  table.insert(threads, thread)
end
"""

_WRK_ETAG = """
local etag = nil
n200, n304, nother = 0, 0, 0
function request()
  if etag then
    return wrk.format(nil, nil, {["If-None-Match"] = etag})
  end
  return wrk.format()
end
function response(status, headers, body)
  if status == 200 then n200 = n200 + 1
  elseif status == 304 then n304 = n304 + 1
  else nother = nother + 1 end
  local tag = headers["ETag"] or headers["Etag"] or headers["etag"]
  if tag then etag = tag end
end
"""

_WRK_BOARDS = """
local started = 0
function delay()
  -- The first request of each board at a random moment of the first
  -- interval, so that the boards do not all ask at once; then every interval.
  started = started + 1
  if started <= %(connections)d then
    return math.random(0, %(interval_ms)d - 1)
  end
  return %(interval_ms)d
end
"""


def wrk_script(etag: bool = False, interval_ms: int = 0, connections: int = 0) -> str:
    """Lua for wrk: a JSON summary line; If-None-Match with the last ETag seen; or a pause
    of ``interval_ms`` after every answer (boards polling at a fixed interval)."""
    parts = [_WRK_THREADS]
    if etag:
        parts.append(_WRK_ETAG)
    if interval_ms:
        parts.append(_WRK_BOARDS % {"connections": connections, "interval_ms": interval_ms})
    parts.append(_WRK_DONE)
    return "\n".join(parts)


@attrs.frozen
class WrkResult:
    requests: int
    seconds: float
    errors: dict[str, int]
    latency_ms: dict[str, float]
    n200: int
    n304: int
    nother: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def failed(self) -> int:
        return sum(self.errors.values())


async def run_wrk(
    wrk: str,
    url: str,
    script: Path,
    seconds: float,
    connections: int,
    placement: Placement,
    threads: int = 1,
) -> WrkResult:
    """Run wrk for ``seconds`` (killed if it overruns) and read its JSON summary line."""
    command = [
        *placement.client_prefix(),
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 30, check=False
        )

    done = await deferToThread(run)
    for line in done.stdout.splitlines():
        if line.startswith("WRKJSON "):
            doc = json.loads(line[8:])
            break
    else:
        raise BenchError(f"wrk said no summary ({done.returncode}):\n{done.stdout}{done.stderr}")
    return WrkResult(
        requests=doc["requests"],
        seconds=doc["duration_us"] / 1e6,
        errors=doc["errors"],
        latency_ms={k: v / 1000.0 for k, v in doc["latency_us"].items()},
        n200=doc["n200"],
        n304=doc["n304"],
        nother=doc["nother"],
    )
