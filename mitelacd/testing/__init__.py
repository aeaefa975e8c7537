"""Fakes and helpers shared by the tests and the benchmarks.

* :class:`Feeder`: a floor on a fake clock, with its documents, fed wire
  strings with consecutive record numbers.
* :class:`ChangeRecorder`: a listener that keeps every change set.
* :class:`StreamRequest` and :func:`sse_events`: an in-memory event stream
  client and a parser of what it was sent.
* :class:`BoardModel`: what a push client keeps, built from snapshots and
  deltas exactly as the wall board does.
* :class:`Twistd` and :func:`fake_pbx`: real processes and a PBX socket on
  loopback, for end-to-end tests and benchmarks.
* :mod:`mitelacd.testing.postgres`: a throwaway PostgreSQL server.

May import: mitelacd.floor, mitelacd.feed, mitelacd.web, mitelacd.reports, mitelacd.sim
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from twisted.internet.task import Clock
from twisted.logger import ILogObserver, LogLevel, globalLogPublisher
from twisted.web.test.requesthelper import DummyRequest
from zope.interface import implementer

from mitelacd.floor.changes import ENTITY_KINDS, ChangeSet
from mitelacd.floor.documents import FloorDocuments
from mitelacd.floor.records import Malformed, ParseResult, parse_record
from mitelacd.floor.state import Agent, FloorState, IFloorListener, id_key
from mitelacd.logs import render

#: A fixed start for fake clocks (2023-11-14T22:13:20Z).
START = 1_700_000_000.0
#: Default tail per code: G/S carry button 01 + path 860.
TAILS = {"G": "01860", "S": "01123"}


def call_body(seq: int, code: str, dn: str, agent: str, tail: str, hhmmss: str = "081502") -> str:
    """A call event record body (no STX, no terminator)."""
    return f"{seq:02d}{code}{hhmmss}{dn:<7}{agent:<7}{tail}"


def stats_body(seq: int, code: str, number: str, figures: str, hhmmss: str = "081510") -> str:
    """A K or Q record body; ``figures`` is waiting, agents, longest wait and any trailing digits."""
    return f"{seq:02d}{code}{hhmmss}{number}{figures}"


def wire(body: str) -> bytes:
    """A record as the PBX sends it."""
    return b"\x02" + body.encode("ascii") + b"\r\n"


@implementer(ILogObserver)
class LogCapture:
    """The events one module logs (every module's for ``None``), with their rendered text."""

    def __init__(self, namespace: str | None) -> None:
        self.namespace = namespace
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> None:
        if self.namespace is None or event.get("log_namespace") == self.namespace:
            self.events.append(event)

    def lines(self, level: LogLevel | None = None) -> list[str]:
        return [render(e) for e in self.events if level is None or e["log_level"] is level]


@contextmanager
def capture_log(namespace: str | None) -> Iterator[LogCapture]:
    """Keep what ``namespace`` logs while inside (``None``: everything logged)."""
    capture = LogCapture(namespace)
    globalLogPublisher.addObserver(capture)
    try:
        yield capture
    finally:
        globalLogPublisher.removeObserver(capture)


@implementer(IFloorListener)
class ChangeRecorder:
    """Keeps every change set it is told of."""

    def __init__(self) -> None:
        self.changes: list[ChangeSet] = []

    def floorChanged(self, changes: ChangeSet) -> None:
        self.changes.append(changes)

    def take(self) -> list[ChangeSet]:
        taken, self.changes = self.changes, []
        return taken


class Feeder:
    """A FloorState (and its documents) on a fake clock, fed wire strings."""

    def __init__(self, first_version: int = 0, stale_after: float = 60.0) -> None:
        self.clock = Clock()
        self.clock.advance(START)
        self.floor = FloorState(self.clock, stale_after=stale_after, first_version=first_version)
        self.documents = FloorDocuments(self.floor)
        self.recorder = ChangeRecorder()
        self.floor.addListener(self.recorder)
        self.seq = 0

    def raw(self, body: str | bytes) -> ParseResult:
        result = parse_record(body.encode() if isinstance(body, str) else body)
        self.floor.recordReceived(result)
        return result

    def next_seq(self) -> int:
        seq, self.seq = self.seq, (self.seq + 1) % 100
        return seq

    def event(
        self, code: str, agent: str = "1001", dn: str = "2001", tail: str | None = None
    ) -> ParseResult:
        tail = TAILS.get(code, "01") if tail is None else tail
        result = self.raw(call_body(self.next_seq(), code, dn, agent, tail))
        assert not isinstance(result, Malformed), result
        return result

    def events(self, codes: str, agent: str = "1001") -> None:
        for code in codes:
            self.event(code, agent)

    def steps(self, spec: str, agent: str = "1001") -> None:
        """Events written as code and tail, e.g. ``"G01860 N01 I02 J02"``.

        A code alone takes its default tail (button 01; G and S add a path).
        """
        for token in spec.split():
            self.event(token[0], agent, tail=token[1:] or None)

    def stats(self, code: str, number: str, figures: str) -> ParseResult:
        return self.raw(stats_body(self.next_seq(), code, number, figures))

    def keepalive(self, date: str = "20240311") -> ParseResult:
        return self.raw(f"{self.next_seq():02d}R081510{date}")

    def connect(self, host: str = "127.0.0.1", port: int = 15373) -> None:
        self.floor.feedConnected(host, port)

    def agent(self, agent_id: str = "1001") -> Agent:
        return self.floor.agents[agent_id]

    def view(self, agent_id: str = "1001") -> dict[str, Any]:
        return self.floor.agents[agent_id].view()


# Server-Sent Events ------------------------------------------------------------


class StreamRequest(DummyRequest):
    """A DummyRequest that a producer can be registered on, as an event stream client."""

    def __init__(self, last_event_id: int | None = None, full: bool = False) -> None:
        super().__init__([b"api", b"v1", b"events"])
        self.producer: Any = None
        self.lost = False
        if last_event_id is not None:
            self.requestHeaders.setRawHeaders(b"last-event-id", [b"%d" % last_event_id])
        if full:
            self.args[b"full"] = [b"1"]

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self.producer = producer

    def unregisterProducer(self) -> None:
        self.producer = None

    def loseConnection(self) -> None:
        self.lost = True
        self.processingFailed(Exception("connection closed by the server"))

    def take(self) -> bytes:
        """Everything written since the last take."""
        data = b"".join(self.written)
        self.written.clear()
        return data


def sse_events(data: bytes) -> list[tuple[str, int | None, dict[str, Any]]]:
    """``(event, id, data)`` of every event with data in ``data``."""
    events = []
    for block in data.decode("utf-8").split("\n\n"):
        name, event_id, payload = "message", None, None
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                name = value
            elif field == "id":
                event_id = int(value)
            elif field == "data":
                payload = json.loads(value)
        if payload is not None:
            events.append((name, event_id, payload))
    return events


class ResyncNeeded(Exception):
    """A delta that does not follow what the client holds."""


class BoardModel:
    """What a push client holds: the last snapshot with every delta since applied."""

    def __init__(self) -> None:
        self.state: dict[str, Any] | None = None
        self.entities: dict[str, dict[str, Any]] = {k: {} for k in ENTITY_KINDS}
        self.last_id: int | None = None
        self.snapshots = 0
        self.deltas = 0

    def apply_all(self, events: Iterable[tuple[str, int | None, dict[str, Any]]]) -> None:
        for name, event_id, payload in events:
            self.apply(name, event_id, payload)

    def apply(self, name: str, event_id: int | None, payload: dict[str, Any]) -> None:
        if name in ("snapshot", "state"):
            self.state = dict(payload)
            for kind in ENTITY_KINDS:
                self.entities[kind] = {e[_key(kind)]: e for e in payload[kind]}
            self.snapshots += 1
        elif name == "delta":
            if self.state is None or payload["from"] > self.state["version"]:
                raise ResyncNeeded(f"delta from {payload['from']} onto {self.version}")
            for kind in ENTITY_KINDS:
                for key, value in payload.get(kind, {}).items():
                    if value is None:
                        self.entities[kind].pop(key, None)
                    else:
                        self.entities[kind][key] = value
            self.state["feed"] = {**self.state["feed"], **payload.get("feed", {})}
            for field in ("version", "generated_at", "stale", "totals", "last_update"):
                if field in payload:
                    self.state[field] = payload[field]
            self.deltas += 1
        elif name == "stale" and self.state is not None:
            self.state["stale"] = payload["stale"]
            self.state["generated_at"] = payload["generated_at"]
        if event_id is not None:
            self.last_id = event_id

    @property
    def version(self) -> int | None:
        return None if self.state is None else self.state["version"]

    def document(self) -> dict[str, Any]:
        """The ``/api/v1/state`` document this client would show."""
        assert self.state is not None
        doc = dict(self.state)
        doc["feed"] = {**doc["feed"], "stale": doc["stale"]}
        for kind in ENTITY_KINDS:
            order = id_key if kind in ("agents", "extensions") else str
            table = self.entities[kind]
            doc[kind] = [table[k] for k in sorted(table, key=order)]
        return doc


def _key(kind: str) -> str:
    return "dn" if kind == "extensions" else "id"


# Real processes on loopback ------------------------------------------------------

#: The twistd of the running Python environment, as a user would run it.
TWISTD = str(Path(sys.executable).parent / "twistd")


#: Run ``argv[2:]`` with the descriptors listed in ``argv[1]`` moved to 3, 4, ...
_AS_SYSTEMD = """
import os, sys
fds = [int(fd) for fd in sys.argv[1].split(",")]
for i, fd in enumerate(fds):
    os.dup2(fd, 3 + i)
    os.close(fd)
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[2], sys.argv[2:])
"""


class Twistd:
    """A ``twistd -n`` child whose log lines can be waited for.

    ``listen_fds`` are handed over as systemd hands a socket unit's sockets
    (``LISTEN_FDS``, ``LISTEN_PID``, descriptors from 3), for ``--http systemd:...``.
    """

    def __init__(
        self,
        *argv: str,
        cwd: Path,
        pythonpath: Path | None = None,
        stdout: Any = subprocess.PIPE,
        env: Mapping[str, str] | None = None,
        listen_fds: Sequence[socket.socket] = (),
    ) -> None:
        environ = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        if pythonpath is not None:
            environ["PYTHONPATH"] = str(pythonpath)
        command = [TWISTD, "-n", "--pidfile=", *argv]
        passed: list[int] = []
        if listen_fds:
            # As systemd passes sockets: from descriptor 3 on, with LISTEN_PID
            # the daemon's own (the launcher's, kept by exec).
            passed = [fcntl.fcntl(s.fileno(), fcntl.F_DUPFD_CLOEXEC, 100) for s in listen_fds]
            command = [sys.executable, "-c", _AS_SYSTEMD, ",".join(map(str, passed)), *command]
            environ["LISTEN_FDS"] = str(len(passed))
            environ["LISTEN_FDNAMES"] = ":".join(["mitelacd.socket"] * len(passed))
        try:
            self.process = subprocess.Popen(
                command,
                cwd=cwd,
                env=environ,
                stdout=stdout,
                stderr=subprocess.STDOUT,
                text=True,
                pass_fds=passed,
            )
        finally:
            for fd in passed:
                os.close(fd)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        if self.process.stdout is not None:
            threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(self.seen)}")
            try:
                line = self.lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                if self.process.poll() is not None and self.lines.empty():
                    raise AssertionError(
                        f"twistd exited ({self.process.returncode}) before {pattern!r}:\n"
                        + "".join(self.seen)
                    ) from None
                continue
            self.seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def http_port(self, timeout: float = 60.0) -> int:
        """The port of the web service, from its start-up line."""
        return int(self.wait_for(r"wall board and API at https?://[^:]+:(\d+)/", timeout).group(1))

    def stop_cleanly(self) -> None:
        """SIGTERM, then an orderly shutdown (twistd exits by the same signal)."""
        assert self.stop() in (0, -signal.SIGTERM)
        self.wait_for(r"Server Shut Down", timeout=5)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def injected_site(folder: Path, source: str) -> Path:
    """A folder with a ``sitecustomize.py`` of ``source``, to put first on a child's PYTHONPATH.

    Faults (a module that is not installed, a folder that cannot be written)
    are injected into a real process this way, before anything is imported.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(source)
    return folder


def fake_pbx(timeout: float = 60.0) -> tuple[socket.socket, int]:
    """A listening loopback socket to play the PBX on, and its port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(timeout)
    return server, server.getsockname()[1]
