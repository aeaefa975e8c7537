"""Event stream clients and the daemon's sockets: stuck clients let go, a cap with room left.

A client that stops reading is not only skipped: once dropped, its
connection is aborted, not closed politely, since a polite close waits for
buffers it will never drain. Clients beyond the cap get a JSON 503 with
``Retry-After``.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest_twisted
from treq.testing import StubTreq
from twisted.internet import defer, reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall, deferLater
from twisted.python.failure import Failure
from twisted.web import http

from mitelacd.floor.documents import FloorDocuments
from mitelacd.floor.records import Malformed, parse_record
from mitelacd.floor.state import FloorState
from mitelacd.testing import ChannelStreamRequest, Feeder, StreamRequest, call_body, capture_log
from mitelacd.web.push import BUSY_RETRY_AFTER, EventPush
from mitelacd.web.resources import Root, Served, WebService, WebSettings

#: ``tcpi_state`` of Linux's TCP_INFO for an open connection.
ESTABLISHED = 1


def tcp_state(sock: socket.socket) -> int:
    """The kernel's state of a TCP socket: ESTABLISHED until the other end closes or resets."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def stuck_client(port: int) -> socket.socket:
    """A client that asks for the event stream and never reads a byte of it."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    sock.setblocking(False)
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed (FIN) or reset (RST) the connection, read without reading."""
    return tcp_state(sock) != ESTABLISHED


def drain_to_end(sock: socket.socket) -> str:
    """Read what is left: ``eof`` or ``reset`` once the server is gone, ``open`` otherwise."""
    for _ in range(10_000):
        try:
            if not sock.recv(1 << 20):
                return "eof"
        except ConnectionResetError:
            return "reset"
        except BlockingIOError:
            return "open"
    return "open"


class Churn:
    """A floor of ``agents`` agents whose every agent changes ``per_tick`` at a time."""

    def __init__(self, floor: FloorState, agents: int, per_tick: int) -> None:
        self.floor = floor
        self.agents = [f"{100000 + n}" for n in range(agents)]
        self.per_tick = per_tick
        self.seq = 0
        self.turn = 0
        self.record_all("A")

    def record(self, code: str, agent: str) -> None:
        self.seq = (self.seq + 1) % 100
        body = call_body(self.seq, code, f"{200000 + int(agent) % 100000}", agent, "01")
        result = parse_record(body.encode())
        assert not isinstance(result, Malformed), result
        self.floor.recordReceived(result)

    def record_all(self, code: str) -> None:
        with self.floor.batch():
            for agent in self.agents:
                self.record(code, agent)

    def tick(self) -> None:
        """One change of ``per_tick`` agents: DND on, or off, by turns."""
        start = (self.turn * self.per_tick) % len(self.agents)
        code = "C" if (self.turn * self.per_tick // len(self.agents)) % 2 == 0 else "D"
        self.turn += 1
        with self.floor.batch():
            for agent in self.agents[start : start + self.per_tick]:
                self.record(code, agent)


async def wait_until(check: Any, seconds: float, step: float = 0.05) -> bool:
    """Poll ``check`` on the reactor until it holds or ``seconds`` have gone by."""
    for _ in range(int(seconds / step)):
        if check():
            return True
        await deferLater(reactor, step, lambda: None)
    return bool(check())


@pytest_twisted.ensureDeferred
async def test_clients_that_never_read_are_cut_off_and_their_sockets_given_back() -> None:
    """Dropped stuck clients are closed by the server within seconds, with data still unsent.

    Before, the server called ``loseConnection``, which waits for the send
    buffer to drain: the connections stayed ESTABLISHED for good.
    """
    floor = FloorState(reactor, stale_after=60)
    documents = FloorDocuments(floor)
    service = WebService(
        "tcp:0:interface=127.0.0.1",
        # Dropped after a pause of two heartbeats: 0.5 s.
        Served(floor, documents, WebSettings(heartbeat=0.25)),
        reactor,
    )
    churn: LoopingCall | None = None
    clients: list[socket.socket] = []
    service.startService()
    try:
        floor.feedConnected("127.0.0.1", 15373)
        changes = Churn(floor, agents=2000, per_tick=200)
        assert service.port is not None
        port = service.port.getHost().port  # type: ignore[attr-defined]
        push = service.push
        with capture_log("mitelacd.web.push") as logged:
            clients = [stuck_client(port) for _ in range(10)]
            assert await wait_until(lambda: len(push.subscribers) == 10, 10)
            churn = LoopingCall(changes.tick)
            churn.start(0.02)
            # Every one of them fills its buffers, is paused, is dropped...
            assert await wait_until(lambda: not push.subscribers, 20), "not dropped"
            dropped = logged.lines().count("dropping an event stream client that stopped reading")
            assert dropped == 10
            # ...and its connection is gone, seen from the client's side too.
            assert await wait_until(lambda: all(map(closed_by_server, clients)), 5), [
                tcp_state(c) for c in clients
            ]
        assert {drain_to_end(c) for c in clients} <= {"eof", "reset"}
    finally:
        if churn is not None and churn.running:
            churn.stop()
        for sock in clients:
            sock.close()
        await defer.maybeDeferred(service.stopService)


def test_a_dropped_client_is_aborted_not_waited_for() -> None:
    """In memory: the drop aborts the request's transport; ``loseConnection`` is not used."""
    f = Feeder(first_version=1)
    f.connect()
    push = EventPush(f.floor, f.documents, f.clock)
    push.start()
    request = ChannelStreamRequest()
    calls = request.transport.calls
    push.subscribe(request)
    request.producer.pauseProducing()
    f.clock.advance(30)
    assert calls == []  # two heartbeats of pause are tolerated
    f.clock.advance(15)
    assert calls == ["abortConnection"]
    assert push.subscribers == set()
    push.stop()


def test_a_client_beyond_the_cap_gets_a_json_503_with_retry_after() -> None:
    f = Feeder(first_version=1)
    f.connect()
    settings = WebSettings(max_push_clients=1)
    push = EventPush(f.floor, f.documents, f.clock, max_clients=settings.max_push_clients)
    push.start()
    push.subscribe(StreamRequest())
    stub: Any = StubTreq(Root(Served(f.floor, f.documents, settings), push, f.clock))
    d = stub.get("http://board.test/api/v1/events")
    stub.flush()
    response = sync(d)
    body = sync(response.content())
    assert response.code == http.SERVICE_UNAVAILABLE
    assert response.headers.getRawHeaders(b"content-type") == [b"application/json"]
    assert response.headers.getRawHeaders(b"retry-after") == [b"%d" % BUSY_RETRY_AFTER]
    assert json.loads(body) == {"error": "busy", "detail": "too many event stream clients"}
    assert len(push.subscribers) == 1
    push.stop()


def sync(d: Deferred[Any]) -> Any:
    """The result of a Deferred that has already fired."""
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "the request did not complete"
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]
