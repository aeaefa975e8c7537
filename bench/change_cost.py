"""What one change costs, record in to every consumer updated, at a given floor size.

In one process, on a fake clock: the parser, the floor, its documents, the
file writer (paced, so a change only pokes it), the push feed with
``--push-interval 0`` and one in-memory client, so every record is rendered
into a delta and written, and the metrics listener of ``/metrics``. The same loop on a floor of 100 agents is the
reference: a change must cost the same whatever the size of the floor.
The large floor is measured once more without the metrics listener, to show
its share, and one scrape of ``/metrics`` is timed on it.

Then records in reads of 147 (as 4 KiB reads of the socket carry them), each
read a change set, with the day's figures listening too (``_reads``): the
large floor with every record another agent, the floor of 100 agents, and
the large floor with each read touching 100 agents, as the small floor's
reads do. Where the last costs what the first does, what grows with the
floor is its size, not how often a read comes back to the same agent.
Log lines are off here (``--log-level warn``); ingest with logging on is
measured over a socket by ``bench/run.py``.

    PYTHONPATH=. python bench/change_cost.py [--agents 10000] [--records 20000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from typing import Any

from prometheus_client import generate_latest
from twisted.logger import LogLevel
from twisted.python.filepath import FilePath

from mitelacd import logs
from mitelacd.floor.records import parse_record
from mitelacd.heap import YoungCollections
from mitelacd.persist import LegacyFileWriter
from mitelacd.reports.live import FiguresService
from mitelacd.testing import Feeder, StreamRequest, call_body
from mitelacd.web.metrics import FloorMetrics
from mitelacd.web.push import EventPush

#: A day's worth of what agents do, in order: ring, answer, hold, retrieve,
#: idle, work timer, its end.
CYCLE = ("T", "G", "N", "O", "J", "L", "M")
TAILS = {"G": "01860"}


def _bodies(agents: int, records: int) -> list[bytes]:
    out = []
    for n in range(records):
        agent = 1_000_000 + n % agents
        code = CYCLE[(n // agents) % len(CYCLE)]
        out.append(call_body(n % 100, code, str(agent), str(agent), TAILS.get(code, "01")).encode())
    return out


def _read_bodies(agents: int, records: int, touched: int, per_read: int) -> list[bytes]:
    """Reads of ``per_read`` records, each over ``touched`` agents in turn (the next read
    the next ``touched``), every agent going through its own events in order."""
    steps = [0] * agents
    out: list[bytes] = []
    while len(out) < records:
        first = len(out) // per_read * touched
        for k in range(per_read):
            n = (first + k % touched) % agents
            code = CYCLE[steps[n] % len(CYCLE)]
            steps[n] += 1
            agent = str(1_000_000 + n)
            out.append(
                call_body(len(out) % 100, code, agent, agent, TAILS.get(code, "01")).encode()
            )
    return out[:records]


def _logged_in(agents: int) -> Feeder:
    f = Feeder(first_version=1)
    f.connect()
    with f.floor.batch():
        for n in range(agents):
            agent = str(1_000_000 + n)
            f.raw(call_body(n % 100, "A", agent, agent, "00"))
    return f


def _reads(agents: int, touched: int, records: int, folder: str, per_read: int = 147) -> float:
    """CPU per record, in µs, of reads of ``per_read`` records, each a change set, through
    the whole pipeline and the day's figures, 50 reads a second on the fake clock."""
    f = _logged_in(agents)
    f.floor.removeListener(f.recorder)  # nothing kept but what the daemon keeps
    writer = LegacyFileWriter(FilePath(folder).child("reads.json"), f.documents, f.clock, 1.0)
    writer.startService()
    push = EventPush(f.floor, f.documents, f.clock)
    push.start()
    client = StreamRequest()
    push.subscribe(client)
    listener = FloorMetrics(f.floor, f.clock, file=writer, push=push, process=False)
    listener.start()
    figures = FiguresService(f.floor, f.clock)
    figures.startService()
    bodies = _read_bodies(agents, records, touched, per_read)
    floor = f.floor
    started = time.process_time()
    for first in range(0, records, per_read):
        with floor.batch():
            for body in bodies[first : first + per_read]:
                floor.recordReceived(parse_record(body))
        f.clock.advance(0.02)
        client.written.clear()
    spent = time.process_time() - started
    figures.stopService()
    listener.stop()
    writer.stopService()
    push.stop()
    return spent / records * 1e6


def _run(agents: int, records: int, folder: str, metrics: bool = True) -> dict[str, float]:
    f = _logged_in(agents)
    writer = LegacyFileWriter(FilePath(folder).child("mitel_data.json"), f.documents, f.clock, 1.0)
    writer.startService()
    push = EventPush(f.floor, f.documents, f.clock, push_interval=0)
    push.start()
    client = StreamRequest()
    push.subscribe(client)
    client.written.clear()
    listener = FloorMetrics(f.floor, f.clock, file=writer, push=push, process=False)
    if metrics:
        listener.start()
    bodies = _bodies(agents, records)
    floor = f.floor
    started = time.perf_counter()
    for n, body in enumerate(bodies):
        floor.recordReceived(parse_record(body))
        if n % 1000 == 999:
            client.written.clear()
    spent = time.perf_counter() - started
    deltas = push.deltas_sent
    # One document request after all that, to show the documents are whole.
    legacy = json.loads(f.documents.legacy())
    assert len(legacy["agents"]) == agents
    parse_started = time.perf_counter()
    for body in bodies:
        parse_record(body)
    parse = time.perf_counter() - parse_started
    scrape_started = time.perf_counter()
    generate_latest(listener.registry)
    scrape = time.perf_counter() - scrape_started
    # The listener alone, on the change sets of the loop above.
    changes = f.recorder.take()[-records:]
    alone = FloorMetrics(f.floor, f.clock, process=False)
    alone_started = time.perf_counter()
    for change in changes:
        alone.floorChanged(change)
    listener_us = (time.perf_counter() - alone_started) / len(changes) * 1e6
    listener.stop()
    writer.stopService()
    push.stop()
    return {
        "us_per_change": spent / records * 1e6,
        "parse_us": parse / records * 1e6,
        "deltas": float(deltas),
        "scrape_us": scrape * 1e6,
        "metrics_listener_us": listener_us,
    }


def measure(agents: int, records: int) -> dict[str, Any]:
    """Per-change cost at ``agents`` agents, and at 100 agents as the reference."""
    logs.set_level(LogLevel.warn)
    # The garbage collector paced as the daemon paces it.
    collections = YoungCollections()
    collections.startService()
    try:
        with tempfile.TemporaryDirectory() as folder:
            big = _run(agents, records, folder)
            small = _run(100, records, folder)
            bare = _run(agents, records, folder, metrics=False)
            # Reads of a few hundred records: the large floor against the small, and the
            # large floor with each read touching as few agents as the small one has.
            reads = [
                (
                    _reads(agents, agents, 3 * records, folder),
                    _reads(100, 100, 3 * records, folder),
                    _reads(agents, 100, 3 * records, folder),
                )
                for _ in range(3)
            ]
    finally:
        collections.stopService()
        logs.set_level(LogLevel.debug)
    return {
        "agents": agents,
        "records": records,
        "us_per_change": big["us_per_change"],
        "reference_us": small["us_per_change"],
        "reference": "the same pipeline with 100 agents",
        "ratio": big["us_per_change"] / small["us_per_change"],
        "parse_us": big["parse_us"],
        "deltas": big["deltas"],
        "without_metrics_us": bare["us_per_change"],
        "scrape_us": big["scrape_us"],
        "metrics_listener_us": big["metrics_listener_us"],
        # Medians of three: per record in reads of 147, as above.
        "reads_us": statistics.median(r[0] for r in reads),
        "reads_reference_us": statistics.median(r[1] for r in reads),
        "reads_touching_100_us": statistics.median(r[2] for r in reads),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--records", type=int, default=20_000)
    args = parser.parse_args()
    print(json.dumps(measure(args.agents, args.records), indent=2))


if __name__ == "__main__":
    main()
