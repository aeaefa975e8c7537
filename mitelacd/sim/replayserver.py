"""``twistd mitelacd-sim --replay FILE``: serve a capture as the PBX sent it.

Each read of the capture is written to the client as one chunk, byte for
byte, at its captured time scaled by ``--speed``: the chunk captured at
``t`` goes at ``start + (t - t0) / speed`` on the reactor's clock, where
``start`` is when the client connected and ``t0`` when the captured
connection was made, so the timing does not drift however long the replay.

The capture's connections are served one per client: when the captured
connection ends (lost, the daemon stopped or restarted, or a gap in the
capture) the client is hung up on, and the next client to connect (the
daemon redialling) gets the next connection, timed from its own connect.
A client that hangs up first gives up the rest of its connection. While a
client is being served, others are turned away at once. When the capture
is over the last connection is kept open with nothing more to send, as a
PBX with nothing to say would, and later clients are kept open the same way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any, cast

from twisted.application import service
from twisted.internet import protocol
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IListeningPort, IReactorTCP, IReactorTime

from mitelacd.feed.capture import CaptureReader, Connected, Data, Entry, first_time
from mitelacd.logs import Logger

log = Logger()


def _peer(transport: Any) -> str:
    address = transport.getPeer()
    return f"{getattr(address, 'host', address)}:{getattr(address, 'port', '')}"


def capture_entries(paths: Sequence[str]) -> Iterator[Entry]:
    """The ACD entries of the captures at ``paths``, in the order of their first entry.

    What a file's reading skipped or dropped is logged when it is done.
    """
    ordered = sorted(paths, key=_first_time)
    for path in ordered:
        reader = CaptureReader(path)
        # The ACD stream is served; SMDR entries of the same capture are not.
        yield from (e for e in reader if getattr(e, "stream", "acd") == "acd")
        for problem in reader.report.problems():
            log.warn("{path}: {problem}", path=path, problem=problem)


def _first_time(path: str) -> float:
    first = first_time(path)
    return float("inf") if first is None else first


class ReplayClient(protocol.Protocol):
    """One client of the replay; what it sends is ignored, as the PBX ignores it."""

    factory: ReplayFactory
    transport: Any

    def connectionMade(self) -> None:
        self.factory.clientConnected(self)

    def dataReceived(self, data: bytes) -> None:
        """Ignored."""

    def connectionLost(self, reason: Any = None) -> None:
        self.factory.clientGone(self)


class ReplayFactory(protocol.ServerFactory):
    """Serves the entries of a capture, one captured connection per client."""

    protocol = ReplayClient  # type: ignore[assignment]
    noisy = False
    #: Chunks written per turn of the reactor at most, so a high speed cannot starve it.
    max_chunks_per_tick = 1000

    def __init__(self, entries: Iterator[Entry], clock: IReactorTime, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.speed = speed
        self._clock = clock
        self._entries = entries
        self._next: Entry | None = next(entries, None)
        self._client: ReplayClient | None = None
        self._waiting: list[ReplayClient] = []
        self._anchor = (0.0, 0.0)
        self._timer: IDelayedCall | None = None
        self._abandoned = False
        self.stopped = False
        #: Captured connections served (or begun), reads sent.
        self.connections = 0
        self.chunks = 0
        #: Fires once the capture has been served to its end.
        self.finished: Deferred[None] = Deferred()

    @property
    def ended(self) -> bool:
        return self._next is None

    def _advance(self) -> None:
        self._next = next(self._entries, None)

    def clientConnected(self, client: ReplayClient) -> None:
        peer = _peer(client.transport)
        if self._client is not None:
            log.warn(
                "client {peer} turned away: the capture is being served to another one",
                peer=peer,
            )
            client.transport.loseConnection()
            return
        if self.stopped:
            client.transport.loseConnection()
            return
        self._skip_abandoned()
        anchor = self._begin()
        if anchor is None:
            log.info(
                "client {peer} connected: the capture is over, nothing more to send", peer=peer
            )
            self._waiting.append(client)
            return
        self._client = client
        self._anchor = (self._clock.seconds(), anchor)
        self.connections += 1
        log.info(
            "client {peer} connected: serving captured connection {number}",
            peer=peer,
            number=self.connections,
        )
        self._tick()

    def clientGone(self, client: ReplayClient) -> None:
        if client in self._waiting:
            self._waiting.remove(client)
        if client is not self._client:
            return
        self._client = None
        self._cancel()
        if self._next is not None:
            self._abandoned = True
            log.info(
                "client {peer} left before captured connection {number} ended: the rest"
                " of it is skipped",
                peer=_peer(client.transport),
                number=self.connections,
            )

    def _skip_abandoned(self) -> None:
        """Pass over what is left of a connection whose client left."""
        if not self._abandoned:
            return
        self._abandoned = False
        while self._next is not None and _within(self._next):
            self._advance()

    def _begin(self) -> float | None:
        """Go to the next captured connection; the capture time it starts at, None at the end."""
        while self._next is not None:
            entry = self._next
            if isinstance(entry, Connected):
                self._advance()
                return entry.time
            if isinstance(entry, Data):
                return entry.time  # a capture that begins mid-connection
            self._advance()  # between connections: a start, stop, loss or gap
        self._end()
        return None

    def _tick(self) -> None:
        """Send what is due, then sleep until the next entry."""
        self._timer = None
        client = self._client
        if client is None:
            return
        started, t0 = self._anchor
        now = self._clock.seconds()
        for _ in range(self.max_chunks_per_tick):
            entry = self._next
            if entry is None:
                self._end()
                return
            due = started + (entry.time - t0) / self.speed
            if due > now + 1e-9:
                self._timer = self._clock.callLater(due - now, self._tick)
                return
            if isinstance(entry, Data):
                client.transport.write(entry.data)
                self.chunks += 1
                self._advance()
            elif isinstance(entry, Connected) and entry.continued:
                self._advance()  # the same connection, in the next day's file
            else:
                if not isinstance(entry, Connected):
                    self._advance()  # a new connection is the next client's start
                self._hang_up(client)
                if self._next is None:
                    self._end()
                return
        self._timer = self._clock.callLater(0, self._tick)

    def _hang_up(self, client: ReplayClient) -> None:
        log.info(
            "captured connection {number} ended: hanging up on {peer}",
            number=self.connections,
            peer=_peer(client.transport),
        )
        self._client = None
        client.transport.loseConnection()

    def _end(self) -> None:
        if self.finished.called:
            return
        log.info(
            "the capture is served to its end ({connections} connection(s), {chunks} reads){open}",
            connections=self.connections,
            chunks=self.chunks,
            open="; the connection is kept open" if self._client is not None else "",
        )
        if self._client is not None:
            self._waiting.append(self._client)
            self._client = None
        self.finished.callback(None)

    def _cancel(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def stop(self) -> None:
        """Stop serving and hang up on everyone."""
        self.stopped = True
        self._cancel()
        clients = list(self._waiting)
        if self._client is not None:
            clients.append(self._client)
        for client in clients:
            client.transport.loseConnection()


def _within(entry: Entry) -> bool:
    """Whether an entry belongs to the connection before it (a read, or its next day)."""
    return isinstance(entry, Data) or (isinstance(entry, Connected) and entry.continued)


class ReplayService(service.Service):
    """Listens like the ICP's port 15373 and serves captures; ``port`` is the bound port."""

    def __init__(
        self,
        paths: Sequence[str],
        port: int = 15373,
        interface: str = "127.0.0.1",
        speed: float = 1.0,
        reactor: Any = None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor
        self._reactor: IReactorTCP = reactor
        self.paths = [os.path.abspath(p) for p in paths]
        self.requested_port, self.interface, self.speed = port, interface, speed
        self.factory: ReplayFactory | None = None
        self.port: int | None = None
        self._listening: IListeningPort | None = None

    def startService(self) -> None:
        super().startService()
        clock = cast(IReactorTime, self._reactor)
        self.factory = ReplayFactory(capture_entries(self.paths), clock, self.speed)
        self._listening = self._reactor.listenTCP(
            self.requested_port, self.factory, interface=self.interface
        )
        self.port = cast(Any, self._listening.getHost()).port
        log.info(
            "capture replay on {interface} port {port} ({files}, speed {speed:g})",
            interface=self.interface,
            port=self.port,
            files=", ".join(self.paths),
            speed=self.speed,
        )

    def stopService(self) -> Any:
        super().stopService()
        if self.factory is not None:
            self.factory.stop()
        listening, self._listening = self._listening, None
        return listening.stopListening() if listening is not None else None
