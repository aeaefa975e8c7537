"""Does memory grow while the daemon keeps its history? The floor, the figures and the writer
driven at a high rate for minutes of simulated time, with the growth measured as it goes.

Records of a floor of ``--agents`` agents (``bench/common.py``'s :class:`Floor`)
go through the parser, the floor, the day's figures and the history writer,
wired as ``mitelacd/tap.py`` wires them, ``--rate`` records each simulated
second. A :class:`~twisted.internet.task.Clock` is the daemon's clock, moved
a second at a time; the writing thread is the real one, its results come
back through the real reactor, and every second waits for its write to end
(as the daemon's writer keeps up at this rate). Every ``--every`` simulated
seconds a line: RSS, Python's own allocations (``tracemalloc``, with
``--trace``) and the history's counters; at the end the RSS slope over the
second half, in MB per simulated minute, and with ``--trace`` the lines of
code whose allocations grew the most. By hand, from the repository root::

    PYTHONPATH=. python bench/history_memory.py --minutes 10
    PYTHONPATH=. python bench/history_memory.py --minutes 5 --trace
    PYTHONPATH=. python bench/history_memory.py --history none   # the reference
    PYTHONPATH=. python bench/history_memory.py --postgresql

``--history`` takes a database URL or path (default: a SQLite file in a
temporary folder), or ``none`` for the same run without history.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any, cast

from twisted.internet import reactor as _reactor
from twisted.internet import task
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFromThreads

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the checkout's mitelacd, when run by hand
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))

from common import Floor  # noqa: E402

from mitelacd.floor.records import parse_record  # noqa: E402
from mitelacd.floor.state import FloorState  # noqa: E402
from mitelacd.reports.live import FiguresService  # noqa: E402
from mitelacd.reports.store import open_store, sqlite_memory  # noqa: E402
from mitelacd.reports.writer import HistoryService  # noqa: E402

reactor: Any = _reactor

#: 2026-03-09 07:58 UTC: the run crosses interval ends within minutes.
START = 1773043080.0


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def bodies(agents: int, rate: int) -> list[list[bytes]]:
    """A cycle of seconds: each ``rate`` record bodies (no STX, no terminator)."""
    floor = Floor(agents, groups=20, paths=10)
    stream = [r[1:].rstrip(b"\r\n") for r in floor.mix(rate * 120, burst_every=max(rate, 1))]
    logins = [r[1:].rstrip(b"\r\n") for r in floor.logins()]
    stream = [b for b in stream if b not in logins] or stream
    return [logins] + [stream[i : i + rate] for i in range(0, len(stream), rate)]


async def wait(condition: Any, timeout: float = 60.0) -> None:
    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > timeout:
            raise RuntimeError("the writer did not end in time")
        await task.deferLater(reactor, 0.001, lambda: None)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    clock = task.Clock()
    clock.advance(START)
    floor = FloorState(clock)
    floor.feedConnected("127.0.0.1", 1)
    history: HistoryService | None = None
    if args.history != "none":
        url = args.history
        history = HistoryService(
            lambda: open_store(url),
            "bench",
            clock,
            cast(IReactorFromThreads, reactor),
            url=url,
        )
        history.startService()
        clock.advance(0)
        await wait(lambda: history is not None and history.ok and history._busy is None)
    figures = FiguresService(floor, clock, history=history)
    figures.startService()
    if history is not None:
        await figures.seeded
    seconds = bodies(args.agents, args.rate)
    samples: list[tuple[float, float, int]] = []
    if args.trace:
        tracemalloc.start(args.frames)
    first_snapshot = None
    total = int(args.minutes * 60)
    seq = 0
    for second in range(total):
        records = seconds[second % (len(seconds) - 1) + 1 if second else 0]
        with floor.batch():
            for body in records:
                # The PBX numbers records 00..99: stamp them so that no gap is seen.
                floor.recordReceived(parse_record(b"%02d" % seq + body[2:]))
                seq = (seq + 1) % 100
        clock.advance(1)
        if history is not None:
            await wait(lambda: history is not None and history._busy is None)
        if second % args.every == 0 or second == total - 1:
            gc.collect()
            traced = tracemalloc.get_traced_memory()[0] if args.trace else 0
            samples.append((second / 60, rss_mib(), traced))
            health = history.health() if history is not None else {}
            held = sqlite_memory()
            print(
                f"t={second / 60:6.2f} min  rss={samples[-1][1]:7.1f} MiB"
                + (f"  sqlite={held / 2**20:6.1f} MiB" if held is not None else "")
                + (f"  traced={traced / 2**20:7.2f} MiB" if args.trace else "")
                + (
                    f"  written={health['written_rows']} backlog={health['backlog']}"
                    f" transactions={history.transactions}"
                    if history is not None
                    else ""
                ),
                flush=True,
            )
            if args.trace and first_snapshot is None and second >= total // 2:
                first_snapshot = tracemalloc.take_snapshot()
    result: dict[str, Any] = {"samples": samples}
    half = [s for s in samples if s[0] >= samples[-1][0] / 2]
    if len(half) >= 2:
        span = half[-1][0] - half[0][0]
        result["rss_mib_per_minute"] = (half[-1][1] - half[0][1]) / span if span else 0.0
        result["traced_mib_per_minute"] = (half[-1][2] - half[0][2]) / 2**20 / span if span else 0.0
        print(f"second half: RSS {result['rss_mib_per_minute']:+.2f} MiB per simulated minute")
        if args.trace:
            print(f"second half: traced {result['traced_mib_per_minute']:+.2f} MiB per minute")
    if args.trace and first_snapshot is not None:
        last = tracemalloc.take_snapshot()
        print("grew most over the second half:")
        for stat in last.compare_to(first_snapshot, "traceback")[: args.top]:
            print(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks")
            for line in stat.traceback.format()[-2 * args.frames :]:
                print("     ", line)
    figures.stopService()
    if history is not None:
        await history.stopService()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--history", help="a database URL or path, or none")
    where.add_argument("--postgresql", action="store_true", help="a throwaway PostgreSQL")
    parser.add_argument("--minutes", type=float, default=5.0, help="simulated minutes")
    parser.add_argument("--rate", type=int, default=1000, help="records per simulated second")
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--every", type=int, default=30, help="simulated seconds between lines")
    parser.add_argument("--trace", action="store_true", help="tracemalloc, and what grew most")
    parser.add_argument("--frames", type=int, default=6, help="frames kept per allocation")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        server = None
        if args.postgresql:
            from mitelacd.testing.postgres import PostgresServer

            server = PostgresServer()
            server.start()
            args.history = server.create_database("memory")
        elif args.history is None:
            args.history = str(Path(folder) / "history.db")
        try:
            task.react(lambda _: Deferred.fromCoroutine(run(args)))
        finally:
            if server is not None:
                server.close()


if __name__ == "__main__":
    main()
