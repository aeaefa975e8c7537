"""The reference for the ingest benchmark: framing alone, with no parsing or state.

Dials the fake PBX, cuts the stream into records the way mitelacd does (an LF
put in front of every STX, then ``LineReceiver`` on LF), counts them, and
when ``--count`` records are in prints ``done COUNT WALLTIME CPUTIME`` and
exits.
Started by ``bench/run.py``; by hand::

    python bench/bare_ingest.py --port PBX_PORT --count 1000000
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.protocol import ClientFactory
from twisted.protocols.basic import LineReceiver

STX = b"\x02"
LF = b"\n"

reactor: Any = _reactor


class Counter(LineReceiver):
    delimiter = LF
    MAX_LENGTH = 4096

    def __init__(self, goal: int) -> None:
        self.goal = goal
        self.records = 0

    def connectionMade(self) -> None:
        print("connected", flush=True)

    def dataReceived(self, data: bytes) -> None:
        super().dataReceived(data.replace(STX, LF + STX))

    def lineReceived(self, line: bytes) -> None:
        if line.startswith(STX):
            self.records += 1
            if self.records == self.goal:
                print(
                    f"done {self.records} {time.time():.6f} {time.process_time():.3f}", flush=True
                )
                assert self.transport is not None
                self.transport.loseConnection()
                reactor.stop()


class Dialler(ClientFactory):
    def __init__(self, goal: int) -> None:
        self.goal = goal

    def buildProtocol(self, addr: object) -> Counter:
        return Counter(self.goal)

    def clientConnectionFailed(self, connector: object, reason: object) -> None:
        print(f"could not connect: {reason}", flush=True)
        reactor.stop()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True, help="the fake PBX's port")
    parser.add_argument("--count", type=int, required=True, help="records to wait for")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after this long")
    args = parser.parse_args(argv)
    reactor.connectTCP("127.0.0.1", args.port, Dialler(args.count))
    reactor.callLater(args.timeout, reactor.stop)
    reactor.run()


if __name__ == "__main__":
    main(sys.argv[1:])
