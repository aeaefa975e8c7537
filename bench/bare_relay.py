"""The reference for the freshness benchmarks: records relayed with no state at all.

Dials the fake PBX and cuts its stream into records as mitelacd does (an LF
in front of every STX, ``LineReceiver`` on LF). The records of each read go
to every client of ``/api/v1/events`` as Server-Sent Events, one
``event: delta`` per record (its body, without STX and CR, as the data), in
one write per client. ``/last`` answers the last record's body;
``/api/v1/feed`` says how many records came in, in the daemon's shape, so
the bench can wait for them. Each ``--document URLPATH=FILE`` is served from
memory besides, as ``bare_web.py`` serves it: the bare resource and the bare
relay in one process, for an audience of both kinds. Prints
``relay at http://127.0.0.1:PORT/``. Started by ``bench/run.py``; by hand::

    python bench/bare_relay.py --pbx-port PBX_PORT [--document /api/v1/state=state.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bare_web import Fixed, pairs
from twisted.internet import reactor as _reactor
from twisted.internet.protocol import ClientFactory
from twisted.protocols.basic import LineReceiver
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

STX = b"\x02"
LF = b"\n"

reactor: Any = _reactor


class Relay:
    """The clients of the event stream, and what came in."""

    def __init__(self) -> None:
        self.clients: set[Request] = set()
        self.records = 0
        self.last = b""

    def publish(self, bodies: list[bytes]) -> None:
        first = self.records + 1
        self.records += len(bodies)
        self.last = bodies[-1]
        events = b"".join(
            b"event: delta\nid: %d\ndata: %s\n\n" % (first + i, body)
            for i, body in enumerate(bodies)
        )
        for request in list(self.clients):
            request.write(events)


class Reader(LineReceiver):
    delimiter = LF
    MAX_LENGTH = 4096

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self._bodies: list[bytes] = []

    def dataReceived(self, data: bytes) -> None:
        super().dataReceived(data.replace(STX, LF + STX))
        if self._bodies:
            bodies, self._bodies = self._bodies, []
            self.relay.publish(bodies)

    def lineReceived(self, line: bytes) -> None:
        if line.startswith(STX):
            self._bodies.append(line[1:].rstrip(b"\r"))


class Dialler(ClientFactory):
    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    def buildProtocol(self, addr: object) -> Reader:
        return Reader(self.relay)


class Events(Resource):
    isLeaf = True

    def __init__(self, relay: Relay) -> None:
        super().__init__()
        self.relay = relay

    def render_GET(self, request: Request) -> int:
        request.setHeader(b"content-type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"cache-control", b"no-cache")
        transport = getattr(request.channel, "transport", None)
        if transport is not None and hasattr(transport, "setTcpNoDelay"):
            transport.setTcpNoDelay(True)  # as the daemon does
        self.relay.clients.add(request)
        request.notifyFinish().addBoth(lambda _: self.relay.clients.discard(request))
        request.write(b"retry: 2000\n\n")
        return NOT_DONE_YET


class Last(Resource):
    isLeaf = True

    def __init__(self, relay: Relay) -> None:
        super().__init__()
        self.relay = relay

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/plain")
        request.setHeader(b"cache-control", b"no-cache")
        return self.relay.last


class Feed(Resource):
    isLeaf = True

    def __init__(self, relay: Relay) -> None:
        super().__init__()
        self.relay = relay

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        feed = {"records_by_code": {"*": self.relay.records}, "unparsable_records": 0}
        return json.dumps({"feed": feed}).encode("ascii")


class QuietSite(Site):
    noisy = False

    def log(self, request: http.Request) -> None:
        pass


def mount(root: Resource, path: str, leaf: Resource) -> None:
    """Put ``leaf`` at ``path`` under ``root``, making the folders on the way."""
    *folders, name = path.strip("/").split("/")
    parent = root
    for folder in folders:
        child = parent.children.get(folder.encode())
        if child is None:
            child = Resource()
            parent.putChild(folder.encode(), child)
        parent = child
    parent.putChild(name.encode(), leaf)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pbx-port", type=int, required=True)
    parser.add_argument("--document", action="append", default=[], metavar="URLPATH=FILE")
    args = parser.parse_args(argv)
    relay = Relay()
    root = Resource()
    mount(root, "/api/v1/events", Events(relay))
    mount(root, "/api/v1/feed", Feed(relay))
    mount(root, "/last", Last(relay))
    for path, file in pairs(args.document, "--document").items():
        with open(file, "rb") as f:
            mount(root, path, Fixed(f.read(), None))
    port = reactor.listenTCP(0, QuietSite(root), interface="127.0.0.1")
    print(f"relay at http://127.0.0.1:{port.getHost().port}/", flush=True)
    reactor.connectTCP("127.0.0.1", args.pbx_port, Dialler(relay))
    reactor.run()


if __name__ == "__main__":
    main(sys.argv[1:])
