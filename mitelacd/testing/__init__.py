"""Fakes and helpers shared by the tests and the benchmarks, one line each.

A floor fed wire strings, and what it gives out (here):

* :func:`call_body`, :func:`stats_body`, :func:`wire`: records as the PBX sends them.
* :class:`Feeder`: a floor and its documents on a fake clock, fed numbered wire strings.
* :class:`LogCapture` and :func:`capture_log`: what a module logs while inside.
* :class:`ChangeRecorder`: a floor listener that keeps every change set.
* :class:`NamesRecorder`: in place of the floor's ``setNames``, keeps every ``Names`` handed in.
* :class:`StreamRequest`: an in-memory event stream client.
* :func:`sse_events`: the events in what an event stream client was sent.
* :class:`ChannelStreamRequest`: an event stream request whose connection records its closing.
* :class:`RecordingChannelTransport`: that connection, recording abort or close.
* :class:`BoardModel`: what a push client keeps (snapshots, deltas, the message), as the board.

Real processes on loopback, in :mod:`mitelacd.testing.daemons` (and here):

* :class:`Twistd`: a ``twistd -n`` child whose log lines can be waited for.
* :class:`CheckoutTwistd`: a ``Twistd`` running the mitelacd these tests import.
* :func:`injected_site`: a ``sitecustomize.py`` to put faults into a child before it imports.
* :func:`fake_pbx`: a listening loopback socket to play the PBX on.

Stand-ins for what the daemon talks to, in :mod:`mitelacd.testing.fakes`:

* :class:`~mitelacd.testing.fakes.FaultyDisk`: the real system calls, recorded, failing on cue.
* :class:`~mitelacd.testing.fakes.SteppingWallClock`: a system clock the test steps.
* :class:`~mitelacd.testing.fakes.FakeOpenFileLimits`: RLIMIT_NOFILE as the test sets it.
* :class:`~mitelacd.testing.fakes.FakeNotifySocket`: the receiving end of ``NOTIFY_SOCKET``.
* :class:`~mitelacd.testing.fakes.FakeConnector`: a connector a reconnecting factory dials.
* :class:`~mitelacd.testing.fakes.FakeReactorFromThreads`: keeps ``callFromThread`` calls to run.

History stores that misbehave, in :mod:`mitelacd.testing.history`:

* :class:`~mitelacd.testing.history.FlakyHistoryStore`: writes fail while down, or lose the answer.
* :class:`~mitelacd.testing.history.DownHistoryStore`: a flaky store whose reads fail too.
* :class:`~mitelacd.testing.history.StuckHistoryStore`: writes hang until let go.

And:

* :class:`~mitelacd.testing.loopback.WebOnLoopback`: a floor's web service on the real reactor.
* :mod:`mitelacd.testing.postgres`: a throwaway PostgreSQL server.
* :mod:`mitelacd.testing.mosquitto`: a throwaway Mosquitto broker, and a subscriber to it.
* :mod:`mitelacd.testing.smdrlines`: SMDR records laid out by hand, and the notes' synthetic ones.

May import: mitelacd.floor, mitelacd.feed, mitelacd.web, mitelacd.reports, mitelacd.sim, mitelacd.logs, mitelacd.disk
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

from twisted.internet.task import Clock
from twisted.logger import ILogObserver, LogLevel, globalLogPublisher
from twisted.web.test.requesthelper import DummyRequest
from zope.interface import implementer

from mitelacd.floor.changes import ENTITY_KINDS, ChangeSet, IFloorListener
from mitelacd.floor.documents import FloorDocuments
from mitelacd.floor.names import Names
from mitelacd.floor.records import Malformed, ParseResult, parse_record
from mitelacd.floor.render import id_key
from mitelacd.floor.state import Agent, FloorState
from mitelacd.logs import render
from mitelacd.testing.daemons import TWISTD, CheckoutTwistd, Twistd, fake_pbx, injected_site

__all__ = [
    "START",
    "TAILS",
    "TWISTD",
    "BoardModel",
    "ChangeRecorder",
    "ChannelStreamRequest",
    "CheckoutTwistd",
    "Feeder",
    "LogCapture",
    "NamesRecorder",
    "RecordingChannelTransport",
    "ResyncNeeded",
    "StreamRequest",
    "Twistd",
    "call_body",
    "capture_log",
    "fake_pbx",
    "injected_site",
    "sse_events",
    "stats_body",
    "wire",
]

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


class NamesRecorder:
    """Where a names watcher hands the names it loads, in place of the floor's ``setNames``."""

    def __init__(self) -> None:
        self.applied: list[Names] = []

    def __call__(self, names: Names) -> None:
        self.applied.append(names)


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


class RecordingChannelTransport:
    """What a request's channel is asked to do with its connection."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def abortConnection(self) -> None:
        self.calls.append("abortConnection")

    def loseConnection(self) -> None:
        self.calls.append("loseConnection")


class ChannelStreamRequest(StreamRequest):
    """An event stream request on a channel, as twisted.web's are, whose transport records."""

    def __init__(self) -> None:
        super().__init__()
        self.transport = RecordingChannelTransport()
        self.channel = SimpleNamespace(transport=self.transport)

    def loseConnection(self) -> None:
        self.transport.calls.append("request.loseConnection")


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
        elif name == "board_message" and self.state is not None:
            self.state["message"] = payload["message"]
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
