"""Every benchmark of mitelacd, each figure beside a bare Twisted reference from the same run.

The machine these run on is shared and noisy, so no figure stands alone: each
is printed with a reference measured in the same run on the same machine, and
as a ratio to it. The daemon runs as ``twistd mitelacd`` child processes fed
by a fake PBX socket in this process; the references are the small scripts
next to this one (``bare_ingest.py``, ``bare_web.py``, ``bare_relay.py``).
Everything is on 127.0.0.1, on ports the system picks; every phase has a
hard time limit. From the repository root::

    python bench/run.py                  # everything, about 80 minutes
    python bench/run.py --quick          # smaller and shorter: a smoke test
    python bench/run.py --only polls,footprint --wrk-seconds 10

Phases (``--only`` takes these names):

``ingest``
    1,000,000 records of a realistic mix in 4 KiB writes as fast as the socket
    takes them; records/s from the first byte until ``/api/v1/feed`` counts
    them all, with the journald logger at ``--log-level info`` and ``warn``.
    Reference: a bare ``LineReceiver`` with the same framing.
``ingestcpu``
    CPU per record of the daemon as shipped (the unit's journald logger,
    ``--log-level info``, the default SQLite history), 200,000 records of
    2,000 agents in 4 KiB writes, from the first byte until every record is
    applied and every history row written; beside it the bare
    ``LineReceiver`` on the same records, and the same daemon with
    ``--history none``. Each three times, in turn; medians. Beside the
    history's cost, what SQLite alone takes to insert as many rows into the
    daemon's own table: the least a history that keeps every event costs.
``polls``
    wrk on ``/mitel_data.json`` (200, and 304 with If-None-Match) and
    ``/api/v1/state`` against a floor of 2,000 agents changing 20 times a
    second: req/s and server CPU per request (medians of 3 runs). Reference:
    a bare ``twisted.web`` resource serving the same bytes.
``freshness``
    A record on the PBX socket to the event at 200 event stream boards, at
    1,000 records/s over 2,000 and 10,000 agents: latency p50/p99/max and
    whether every board got every event, three runs of each. Reference: a
    bare relay of each record to every board.
``pollfresh``
    A record to the first answer that shows it, for boards polling
    ``/api/v1/agents/<id>`` back to back. Reference: the relay's last record.
``footprint``
    RSS with no client at all, after one read of each view, beside a bare
    ``twisted.web`` resource holding the same bodies; then RSS and CPU share
    with 200 event stream boards and 100 boards polling ``/api/v1/state``
    once a second, the floor changing 20 times a second, beside the bare
    resource and the bare relay in one process with the same audience (and
    the bare resource alone under the same polling).
``perchange``
    In-process cost of one change, from ``bench/change_cost.py`` when it
    exists (``measure(agents, records) -> dict``); beside it, what the
    ``/metrics`` listener alone costs per change, and the whole change
    without it.
``deployed``
    CPU per change over the socket, as deployed: the daemon as shipped with
    10,000 agents and one event stream client, one record per read (1,000
    a second), beside the bare relay doing the same read and one event
    write; then per record in 4 KiB reads (4 KiB writes, 50 a second, each
    read alone) at 10,000 agents against 100 agents (the growth with the
    floor's size). Three rounds; medians.
``history``
    The history database (SQLite, and PostgreSQL in a throwaway server
    from ``mitelacd.testing.postgres``): the ingest phase's 1,000,000 records
    with each, beside the same daemon with ``--history none`` (CPU per record
    until every history row is written); 1,000 agent events/s
    over 500 agents for 20 s, with the history rows written, the largest
    backlog and the drops from ``/metrics``, and each record's latency to
    a board beside ``--history none``'s; a month of 500 agents filled into
    each database by ``bench/history_cost.py`` (1 day with ``--quick``),
    and a report by agent per day and per hour timed beside a bare
    ``SUM ... GROUP BY`` (per hour: ``GROUP BY id, hour_start``) on the same
    database. 6 to 10 minutes alone.
``broker``
    Records through an MQTT broker: 50,000 records of 2,000 agents in 4 KiB
    writes to a site daemon publishing them (``--mqtt``) to a throwaway
    Mosquitto, and a central daemon reading them from it
    (``--source site=mqtt://...``): records/s from the first byte until the
    central daemon has applied them all, beside the site daemon's own
    records/s reading them directly, in the same run; and whether every
    record arrived once.
``soak``
    Memory over a long run: 2,000 agents, 200 records/s, a statistics burst
    every 15 s, 50 event stream clients and 20 boards polling, with the
    default history (SQLite) and, at the same time, with ``--history none``:
    the RSS slope over 30 minutes, in MB an hour, beside the other's. The
    30 minutes follow a warm-up of 16 minutes at least that holds the closes
    of the first two intervals the trickle runs through whole (the first
    closes of a large floor shape the working set: a quarter hour's rows for
    2,000 agents made at once, the history's page cache), so the whole phase
    takes 61 to 76 minutes.

With ``--quick`` every phase is smaller and takes well under a minute
(the soak half a minute, which says nothing of a slope).

A table is printed at the end and a JSON report written (``--json``).
Targets are printed beside the figures, never asserted.
"""

from __future__ import annotations

import argparse
import atexit
import datetime
import itertools
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs
from common import (
    HERE,
    ROOT,
    TWISTD,
    Audience,
    BenchError,
    Child,
    Fetched,
    Floor,
    PBXLink,
    Placement,
    Poller,
    Sequencer,
    Server,
    StreamClient,
    Trickle,
    WrkResult,
    bare_argv,
    connect,
    daemon_argv,
    ensure_wrk,
    http_get,
    median,
    percentile,
    reactor,
    records_applied,
    run_wrk,
    serial_in_record,
    serials_in_json,
    sleep,
    start_server,
    stop_all,
    wait_applied,
    wait_until,
    wrk_script,
)
from twisted.copyright import version as twisted_version
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import LoopingCall, react
from twisted.internet.threads import deferToThread

from mitelacd.reports.rows import INTERVAL_SECONDS
from mitelacd.testing.postgres import PostgresFailed, PostgresMissing, PostgresServer

PHASES = (
    "ingest",
    "ingestcpu",
    "polls",
    "freshness",
    "pollfresh",
    "footprint",
    "perchange",
    "deployed",
    "history",
    "soak",
    "broker",
)

#: Where a daemon run keeps its history: nowhere, a SQLite file, a PostgreSQL database.
HistoryKind = Literal["none", "sqlite", "postgresql"]
HISTORY_STORES: tuple[HistoryKind, ...] = ("sqlite", "postgresql")

#: Sizes and lengths of a full run, and of ``--quick``; each has its option.
FULL: dict[str, Any] = {
    "ingest_records": 1_000_000,
    "ingest_agents": 2000,
    "cpu_records": 200_000,
    "cpu_rounds": 3,
    "floor_agents": 2000,
    "trickle_rate": 20.0,
    "wrk_seconds": 5.0,
    "wrk_connections": 50,
    "poll_repeats": 3,
    "sse_clients": 200,
    "measuring_clients": 20,
    "fresh_agents": [2000, 10000],
    "fresh_rate": 1000.0,
    "fresh_seconds": 5.0,
    "fresh_rounds": 3,
    # 0.002: the paced push the daemon had by default before it pushed every change.
    "push_intervals": ["default", "0", "0.002"],
    "pollfresh_boards": 4,
    "pollfresh_records": 200,
    "pollfresh_interval": 0.025,
    "footprint_agents": [2000, 10000],
    "boards": 100,
    "footprint_seconds": 10.0,
    "change_agents": [10000, 100],
    "change_records": 20000,
    # The first size is the one of the per-change row; growth is first / last.
    "deployed_agents": [10000, 100],
    "deployed_rate": 1000.0,
    "deployed_changes": 10000,
    "deployed_records": 100_000,
    # 4 KiB writes (about 140 records) a second: about a third of what the daemon takes in
    # at 10,000 agents, so that each read is one write.
    "deployed_writes": 50.0,
    "deployed_rounds": 3,
    "history_stores": list(HISTORY_STORES),
    # The ingest phase's records, by default.
    "history_records": 1_000_000,
    "history_agents": 500,
    "history_rate": 1000.0,
    "history_seconds": 20.0,
    "history_scrape_every": 0.5,
    "month_agents": 500,
    "month_days": 30,
    "broker_records": 50_000,
    # Minutes measured after the warm-up.
    "soak_minutes": 30.0,
    # The warm-up lasts this many minutes at least, and until this many
    # intervals (quarter hours) the trickle ran through whole have closed: the
    # first closes of a large floor shape the daemon's working set (the rows
    # of 2,000 agents made at once, the history's page cache); later ones
    # leave nothing behind.
    "soak_warmup": 16.0,
    "soak_closes": 2,
    "soak_sample": 10.0,
    "soak_agents": 2000,
    "soak_rate": 200.0,
    "soak_clients": 50,
    "soak_pollers": 20,
}
QUICK: dict[str, Any] = {
    **FULL,
    "ingest_records": 100_000,
    "cpu_records": 20_000,
    "wrk_seconds": 2.0,
    "wrk_connections": 20,
    "poll_repeats": 1,
    "fresh_agents": [2000],
    "fresh_seconds": 2.0,
    "fresh_rounds": 1,
    "push_intervals": ["default"],
    "pollfresh_records": 60,
    "footprint_agents": [2000],
    "footprint_seconds": 4.0,
    "change_records": 2000,
    "deployed_agents": [2000, 100],
    "deployed_changes": 1000,
    "deployed_records": 20_000,
    "deployed_rounds": 1,
    "history_records": 30_000,
    "history_seconds": 2.0,
    "month_days": 1,
    "broker_records": 10_000,
    "soak_minutes": 0.5,
    "soak_warmup": 0.25,
    "soak_closes": 0,
    "soak_sample": 2.0,
}

# --- figures and the table --------------------------------------------------------------


@attrs.frozen
class Row:
    """One line of the table: a figure, its reference from the same run, their ratio."""

    phase: str
    figure: str
    value: str
    reference: str = ""
    ratio: float | None = None
    target: str = ""
    met: bool | None = None


def rate(x: float) -> str:
    return f"{x:,.0f}/s"


def ms(x: float) -> str:
    return f"{x:.2f}" if x < 100 else f"{x:.0f}"


def mb(kib: float) -> str:
    return f"{kib / 1024:.1f} MB"


def pct(share: float) -> str:
    return f"{100 * share:.1f} %"


def ratio(value: float, reference: float) -> float | None:
    return value / reference if reference else None


def spread(values: Sequence[float], shown: Callable[[float], str]) -> str:
    """The median of ``values``, and their min..max in brackets when there are several."""
    text = shown(median(values))
    if len(values) > 1:
        text += f" [{shown(min(values))}..{shown(max(values))}]"
    return text


def us(x: float) -> str:
    return f"{x:.2f} µs" if x < 10 else f"{x:.1f} µs"


def at_most(value: float | None, limit: float) -> bool:
    return value is not None and value <= limit


def print_table(rows: Sequence[Row]) -> None:
    head = ("phase", "figure", "value", "reference (same run)", "ratio", "target", "met")
    lines = [
        (
            r.phase,
            r.figure,
            r.value,
            r.reference,
            "" if r.ratio is None else f"{r.ratio:.2f}",
            r.target,
            {True: "yes", False: "NO", None: ""}[r.met],
        )
        for r in rows
    ]
    widths = [max(len(str(c)) for c in col) for col in zip(head, *lines)]
    for i, line in enumerate([head, *lines]):
        print("  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


# --- the run ------------------------------------------------------------------------------


@attrs.frozen
class Features:
    """What the daemon's command line offers (it is being changed under us)."""

    log_level: bool
    push_interval: bool
    #: The default ``--push-interval`` in seconds, when it can be read.
    default_push: float | None

    @classmethod
    def probe(cls) -> Features:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        done = subprocess.run(
            [TWISTD, "mitelacd", "--help"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        text = done.stdout + done.stderr
        default: float | None
        try:
            from mitelacd.web.push import DEFAULT_PUSH_INTERVAL

            default = DEFAULT_PUSH_INTERVAL
        except ImportError:
            default = None
        return cls("--log-level" in text, "--push-interval" in text, default)

    @property
    def default_push_label(self) -> str:
        return "?" if self.default_push is None else f"{self.default_push * 1000:g} ms"


@attrs.define
class Bench:
    """What every phase shares: options, scratch folder, CPUs, and what was found."""

    args: argparse.Namespace
    workdir: Path
    placement: Placement
    features: Features
    rows: list[Row] = attrs.Factory(list)
    results: dict[str, Any] = attrs.Factory(dict)
    notes: list[str] = attrs.Factory(list)
    errors: dict[str, str] = attrs.Factory(dict)
    #: What each phase's rows were measured under, printed below the table.
    legend: dict[str, str] = attrs.Factory(dict)
    wrk: str | None = None
    _names: int = 0

    def add(self, row: Row) -> None:
        self.rows.append(row)
        extra = f"  (ref {row.reference}, ratio {row.ratio:.2f})" if row.ratio is not None else ""
        print(f"  {row.phase}: {row.figure}: {row.value}{extra}", flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note: {text}", flush=True)

    def name(self, tag: str) -> str:
        self._names += 1
        return f"{self._names:02d}-{tag}"

    def script(self, name: str, text: str) -> Path:
        path = self.workdir / name
        path.write_text(text)
        return path


@attrs.frozen
class Target:
    """A server to measure: the daemon with some options, or the bare relay."""

    label: str
    kind: str  # "daemon" or "relay"
    log_level: str | None = "info"
    push_interval: float | None = None
    #: More arguments of the relay (``--document`` ...).
    extra: tuple[str, ...] = ()

    async def start(self, bench: Bench, tag: str) -> Server:
        name = bench.name(f"{tag}-{self.kind}")
        if self.kind == "daemon":
            level = self.log_level if bench.features.log_level else None
            push = self.push_interval if bench.features.push_interval else None

            def argv(port: int) -> list[str]:
                return daemon_argv(port, bench.workdir / f"{name}.json", level, push)

        else:

            def argv(port: int) -> list[str]:
                return bare_argv("bare_relay.py", "--pbx-port", str(port), *self.extra)

        return await start_server(name, argv, bench.workdir, bench.placement)

    def serials_of(self, data: bytes) -> list[int]:
        """Serials in the data of one event of this server's stream."""
        return serials_in_json(data) if self.kind == "daemon" else serial_in_record(data)

    def poll_path(self, agent_id: str) -> str:
        return f"/api/v1/agents/{agent_id}" if self.kind == "daemon" else "/last"

    def poll_serials(self, body: bytes, agent_id: str) -> list[int]:
        if self.kind == "daemon":
            return serials_in_json(body)
        return serial_in_record(body) if body[16:23].strip() == agent_id.encode() else []


DAEMON = Target("daemon", "daemon")
RELAY = Target("bare relay", "relay")


async def fed_floor(server: Server, records: list[bytes], timeout: float = 120.0) -> None:
    """Send ``records`` and wait until the server has taken them all in."""
    server.feed(records)
    await wait_applied(server, server.sent, timeout)


# --- 1. ingest ----------------------------------------------------------------------------


@attrs.frozen
class Ingested:
    records: int
    seconds: float
    cpu_seconds: float
    #: Lines the server wrote to its log meanwhile.
    log_lines: int = 0

    @property
    def rate(self) -> float:
        return self.records / self.seconds

    @property
    def cpu_us(self) -> float:
        return self.cpu_seconds / self.records * 1e6


def wall_time(iso: str | None) -> float | None:
    if not iso:
        return None
    return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def ingest_daemon(bench: Bench, data: bytes, count: int, level: str | None) -> Ingested:
    server = await Target("daemon", "daemon", log_level=level).start(bench, f"ingest-{level}")
    try:
        assert server.link is not None
        before = server.child.usage()
        first_byte = server.link.stream(data)
        feed = await wait_applied(server, count, timeout=30 + count / 10_000)
        seen_at = time.time()
        started = await first_byte
        used = server.child.usage().cpu - before.cpu
        # The daemon's own time of its last record, else when the poll saw it.
        applied_at = wall_time(feed.get("last_record_at")) or seen_at
        if feed.get("unparsable_records"):
            bench.note(f"daemon counted {feed['unparsable_records']} unparsable records in ingest")
        await sleep(0.3)  # the journald logger flushes 0.1 s after a line
        return Ingested(count, max(1e-6, applied_at - started), used, log_lines(server.child))
    finally:
        server.stop()


def log_lines(child: Child) -> int:
    with open(child.log_path, "rb") as log:
        return sum(block.count(b"\n") for block in iter(lambda: log.read(1 << 20), b""))


async def ingest_bare(bench: Bench, data: bytes, count: int) -> Ingested:
    name = bench.name("ingest-bare")
    limit = 30 + count / 10_000

    def argv(port: int) -> list[str]:
        return bare_argv(
            "bare_ingest.py",
            "--port",
            str(port),
            "--count",
            str(count),
            "--timeout",
            f"{limit:.0f}",
        )

    server = await start_server(name, argv, bench.workdir, bench.placement, with_http=False)
    try:
        assert server.link is not None
        await server.child.wait_for(r"^connected", 30)
        before = server.child.usage()
        started = await server.link.stream(data)
        done = await server.child.wait_for(r"^done (\d+) ([\d.]+) ([\d.]+)", limit)
        return Ingested(count, float(done.group(2)) - started, float(done.group(3)) - before.cpu)
    finally:
        server.stop()


async def phase_ingest(bench: Bench) -> None:
    a = bench.args
    floor = Floor(a.ingest_agents)
    data = Sequencer().stamp(floor.mix(a.ingest_records))
    count = a.ingest_records
    print(f"  {count:,} records, {len(data) / 1e6:.1f} MB, {a.ingest_agents} agents", flush=True)
    # The reference runs before and after the daemon's runs, and their mean is
    # taken: the machine's load drifts over a phase.
    bares = [await ingest_bare(bench, data, count)]
    levels: list[str | None] = ["info", "warn"] if bench.features.log_level else [None]
    if not bench.features.log_level:
        bench.note("the daemon has no --log-level yet: ingest ran once, with its default logging")
    runs = {level: await ingest_daemon(bench, data, count, level) for level in levels}
    bares.append(await ingest_bare(bench, data, count))
    bare = Ingested(
        count,
        sum(b.seconds for b in bares) / len(bares),
        sum(b.cpu_seconds for b in bares) / len(bares),
    )
    bench.legend["ingest"] = (
        f"{count:,} records ({a.ingest_agents:,} agents) in 4 KiB writes; first byte to all"
        " applied; daemon with --logger mitelacd.logs.journal; bare = mean of a run before"
        f" and after ({' and '.join(rate(b.rate) for b in bares)}); ratio = daemon/bare"
    )
    bench.results["ingest"] = {
        "records": count,
        "agents": a.ingest_agents,
        "bare": attrs.asdict(bare) | {"rate": bare.rate},
        "bare_runs": [attrs.asdict(b) | {"rate": b.rate} for b in bares],
        "daemon": {str(k): attrs.asdict(v) | {"rate": v.rate} for k, v in runs.items()},
    }
    for level, run in runs.items():
        label = f"--log-level {level}" if level else "default logging"
        if level in ("info", None):
            target, met = "≥ 100,000/s", run.rate >= 100_000
        else:
            target, met = "ratio ≥ 0.25", run.rate / bare.rate >= 0.25
        bench.add(
            Row(
                "ingest",
                f"records/s, {label}",
                rate(run.rate),
                f"bare LineReceiver {rate(bare.rate)}",
                ratio(run.rate, bare.rate),
                target,
                met,
            )
        )
        bench.add(
            Row(
                "ingest",
                f"CPU per record, {label}",
                f"{run.cpu_us:.2f} µs, {run.log_lines:,} log lines",
                f"bare {bare.cpu_us:.2f} µs",
                ratio(run.cpu_us, bare.cpu_us),
            )
        )


# --- 1b. CPU per record, the daemon as shipped ---------------------------------------------


async def start_shipped(bench: Bench, tag: str, extra: Sequence[str] = ()) -> Server:
    """The daemon as the unit file starts it: the journald logger, ``--log-level info``,
    the default pushes and the default history (a SQLite file beside ``--file``), with
    ``extra`` options. Each in a folder of its own, so that its history starts empty."""
    name = bench.name(tag)
    folder = bench.workdir / name
    folder.mkdir()
    level = "info" if bench.features.log_level else None

    def argv(port: int) -> list[str]:
        return daemon_argv(port, folder / "mitel_data.json", level, None, extra)

    return await start_server(name, argv, bench.workdir, bench.placement)


async def metrics_read_cpu(server: Server, reads: int = 10) -> float:
    """CPU seconds the daemon spends on one read of ``/metrics``: the mean of ``reads``."""
    before = server.child.usage()
    for _ in range(reads):
        await http_get(server.url("/metrics"))
    return max(0.0, server.child.usage().cpu - before.cpu) / reads


@attrs.frozen
class Streamed:
    """Records streamed in 4 KiB writes to a daemon, through to its history rows written."""

    records: int
    #: Wall seconds from the first byte until every record was applied.
    seconds: float
    #: CPU from the first byte until every record was applied.
    cpu_applied: float
    #: CPU from the first byte until no history row waited, less the ``/metrics`` reads
    #: that watched for that (the same as ``cpu_applied`` and a read without a history).
    cpu_written: float
    #: Seconds from every record applied to every history row written.
    drain_seconds: float
    drained: bool
    metrics_reads: int
    metrics_read_cpu: float
    #: Events an event stream client received meanwhile (one per read), when one listened.
    events: int = 0
    #: History rows written from the first byte on (0 without a history, or when the
    #: count before was not given).
    rows_written: int = 0

    @property
    def cpu_us(self) -> float:
        return self.cpu_written / self.records * 1e6


def paced_writes(
    link: PBXLink, data: bytes, per_second: float, chunk: int = 4096
) -> Deferred[float]:
    """Write ``data`` in ``chunk`` writes, ``per_second`` of them a second (one a tick, fewer
    when the bench is late): a reader that keeps up reads each write alone. Fires with the
    wall time (``time.time()``) of the first write."""
    offsets = iter(range(0, len(data), chunk))
    started = time.time()

    def write() -> None:
        offset = next(offsets, None)
        if offset is None:
            loop.stop()
        else:
            link.send(data[offset : offset + chunk])

    loop = LoopingCall(write)
    return loop.start(1.0 / per_second, now=True).addCallback(lambda _: started)


async def timed_stream(
    server: Server,
    data: bytes,
    records: int,
    goal: int,
    per_second: float | None = None,
    written_before: int | None = None,
) -> Streamed:
    """Stream ``data`` (``records`` records) in 4 KiB writes, as fast as the socket takes
    them or ``per_second`` writes a second, and wait until ``/api/v1/feed`` counts ``goal``
    records, then until no history row waits. The daemon's history must be idle before:
    every row written, and the day's earlier rows read (see :func:`history_drained`)."""
    assert server.link is not None
    before = server.child.usage()
    if per_second is None:
        first_byte = server.link.stream(data)
    else:
        first_byte = paced_writes(server.link, data, per_second)
    feed = await wait_applied(server, goal, timeout=30 + records / 5_000)
    seen_at = time.time()
    applied = server.child.usage()
    started = await first_byte
    applied_at = wall_time(feed.get("last_record_at")) or seen_at
    # A read of /metrics is costly on a large floor (its figures per agent): few of them.
    drain = await history_drained(server, 60 + records / 5_000, every=1.0)
    written = server.child.usage()
    read_cpu = await metrics_read_cpu(server)
    return Streamed(
        records,
        max(1e-6, applied_at - started),
        applied.cpu - before.cpu,
        max(applied.cpu - before.cpu, written.cpu - before.cpu - drain.reads * read_cpu),
        max(0.0, written.wall - applied.wall),
        drain.done,
        drain.reads,
        read_cpu,
        rows_written=(
            drain.health.written - written_before
            if drain.health is not None and written_before is not None
            else 0
        ),
    )


def bare_sqlite_cpu(path: Path, rows: int, per_transaction: int = 1000) -> float:
    """CPU seconds sqlite3 alone takes to insert ``rows`` agent state rows into the history's
    own table (the daemon's schema and settings: WAL, ``synchronous = NORMAL``), as many to
    a transaction as the writer puts in one at 1,000 events a second. No SQLAlchemy, no
    rows to make: the least a history that keeps every agent event can cost."""
    import sqlite3

    from mitelacd.reports.store import open_store

    store = open_store(str(path))
    try:
        store.migrate()
    finally:
        store.close()
    spans = [
        ("bench", str(1001 + i % 2000), "available", "on_call", 1.7e9 + i / 1000,
         1.7e9 + i / 1000 + 0.5, "G", None, "860", 1)
        for i in range(rows)
    ]  # fmt: skip
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        insert = (
            "INSERT INTO agent_states (source, agent, state, next_state, start_at, end_at,"
            " code, reason, path, button) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        began = time.process_time()
        for at in range(0, rows, per_transaction):
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(insert, spans[at : at + per_transaction])
            connection.execute("COMMIT")
        return time.process_time() - began
    finally:
        connection.close()


async def shipped_ingest(
    bench: Bench, data: IngestData, tag: str, extra: Sequence[str] = ()
) -> Streamed:
    """The ingest records to the daemon as shipped (with ``extra`` options): the first
    ones, until their history rows are written, then the rest timed."""
    server = await start_shipped(bench, tag, extra)
    try:
        assert server.link is not None
        server.link.send(data.head)
        await wait_applied(server, data.head_records, timeout=60)
        ready = await history_drained(server, 60)
        if not ready.done:
            raise BenchError(f"{server.child.name}: its history wrote nothing in 60 s")
        before = ready.health.written if ready.health is not None else None
        run = await timed_stream(
            server, data.rest, data.rest_records, data.records, written_before=before
        )
        if not run.drained:
            bench.note(f"{server.child.name}: history rows still waited after the ingest")
        return run
    finally:
        server.stop()


async def phase_ingestcpu(bench: Bench) -> None:
    """CPU per record over the socket: the daemon as shipped, ``--history none``, and the
    bare ``LineReceiver``, ``--cpu-rounds`` times each in turn (reversed every other round,
    so that a drift of the machine's load falls on all three alike)."""
    a = bench.args
    data = IngestData.make(a.ingest_agents, a.cpu_records)
    print(
        f"  {data.records:,} records ({data.rest_records:,} timed),"
        f" {(len(data.head) + len(data.rest)) / 1e6:.1f} MB, {a.ingest_agents} agents",
        flush=True,
    )
    shipped: list[Streamed] = []
    none: list[Streamed] = []
    bare: list[Ingested] = []
    for round_ in range(a.cpu_rounds):
        order = ["bare", "shipped", "none"]
        for which in order if round_ % 2 == 0 else reversed(order):
            if which == "bare":
                bare.append(await ingest_bare(bench, data.rest, data.rest_records))
            elif which == "shipped":
                shipped.append(await shipped_ingest(bench, data, "cpu-shipped"))
            else:
                none.append(await shipped_ingest(bench, data, "cpu-none", ["--history", "none"]))
    shipped_us = [r.cpu_us for r in shipped]
    none_us = [r.cpu_us for r in none]
    bare_us = [r.cpu_us for r in bare]
    bench.add(
        Row(
            "ingestcpu",
            "CPU per record, the daemon as shipped",
            spread(shipped_us, us),
            f"bare LineReceiver {spread(bare_us, us)}",
            ratio(median(shipped_us), median(bare_us)),
            "≤ 6×",
            at_most(ratio(median(shipped_us), median(bare_us)), 6.0),
        )
    )
    bench.add(
        Row(
            "ingestcpu",
            "CPU per record, history on (SQLite)",
            spread(shipped_us, us),
            f"--history none {spread(none_us, us)}",
            ratio(median(shipped_us), median(none_us)),
            "≤ 1.03×",
            at_most(ratio(median(shipped_us), median(none_us)), 1.03),
        )
    )
    rows = median([r.rows_written for r in shipped])
    if rows > 0:
        # What the history cannot do without: SQLite itself inserting its rows.
        cpu = bare_sqlite_cpu(bench.workdir / "bare-sqlite.db", int(rows))
        sqlite_us = cpu / data.rest_records * 1e6
        floor = ratio(median(none_us) + sqlite_us, median(none_us))
        bench.add(
            Row(
                "ingestcpu",
                "of which SQLite alone: the history's rows inserted straight by sqlite3",
                f"{us(sqlite_us)} a record ({rows / data.rest_records:.2f} rows a record)",
                f"the history's cost {us(median(shipped_us) - median(none_us))} a record",
                floor,
                "the lowest ratio to --history none with every row kept",
            )
        )
    bench.add(
        Row(
            "ingestcpu",
            "records/s, the daemon as shipped",
            spread([r.records / r.seconds for r in shipped], rate),
            f"--history none {spread([r.records / r.seconds for r in none], rate)},"
            f" bare {spread([b.rate for b in bare], rate)}",
            ratio(
                median([r.records / r.seconds for r in shipped]),
                median([r.records / r.seconds for r in none]),
            ),
        )
    )
    applied_us = [r.cpu_applied / r.records * 1e6 for r in shipped]
    bench.add(
        Row(
            "ingestcpu",
            "of which: until applied, the history's rows after",
            f"{spread(applied_us, us)};"
            f" written {spread([r.drain_seconds for r in shipped], lambda x: f'{x:.1f} s')} later",
            f"all {spread(shipped_us, us)}",
            ratio(median(applied_us), median(shipped_us)),
        )
    )
    bench.results["ingestcpu"] = {
        "records": data.records,
        "timed_records": data.rest_records,
        "agents": a.ingest_agents,
        "shipped": [attrs.asdict(r) | {"cpu_us": r.cpu_us} for r in shipped],
        "history_none": [attrs.asdict(r) | {"cpu_us": r.cpu_us} for r in none],
        "bare": [attrs.asdict(b) | {"cpu_us": b.cpu_us} for b in bare],
    }
    bench.legend["ingestcpu"] = (
        f"{data.rest_records:,} records ({a.ingest_agents:,} agents; after a login and an"
        " event each, sent first) in 4 KiB writes; the daemon as the unit starts it"
        " (--logger mitelacd.logs.journal, --log-level info, the default SQLite history),"
        " a fresh folder each run; its CPU from the first byte until every record is applied"
        " and every history row written (less the /metrics reads that watched for it);"
        " the same with --history none; bare = bench/bare_ingest.py on the same bytes;"
        f" {a.cpu_rounds} rounds, in turn; median [min..max]; ratio = median/median"
    )


# --- 2. polls -----------------------------------------------------------------------------


@attrs.frozen
class PollCase:
    key: str
    label: str
    path: str
    etag: bool


POLL_CASES = (
    PollCase("legacy", "/mitel_data.json 200", "/mitel_data.json", False),
    PollCase("legacy304", "/mitel_data.json If-None-Match", "/mitel_data.json", True),
    PollCase("state", "/api/v1/state 200", "/api/v1/state", False),
)


@attrs.frozen
class Load:
    """A wrk run against a server, and the server's CPU and memory over it."""

    wrk: WrkResult
    cpu_seconds: float
    cpu_share: float
    rss_kib: int
    peak_rss_kib: int


async def load(
    bench: Bench,
    server: Server,
    path: str,
    script: str,
    seconds: float,
    connections: int,
) -> Load:
    if bench.wrk is None:
        raise BenchError("wrk is not available")
    lua = bench.script(f"{bench.name('wrk')}.lua", script)
    before = server.child.usage()
    result = await run_wrk(bench.wrk, server.url(path), lua, seconds, connections, bench.placement)
    after = server.child.usage()
    if result.failed:
        bench.note(f"wrk on {server.child.name}{path}: errors {result.errors}")
    return Load(
        result,
        after.cpu - before.cpu,
        before.share_until(after),
        server.child.rss_kib(),
        server.child.peak_rss_kib(),
    )


@attrs.frozen
class Polled:
    """Runs of one case against one server, added up."""

    runs: int
    requests: int
    rate: float
    cpu_us: float
    share_304: float
    errors: int
    #: CPU per request of each run, to see how much the machine moved meanwhile.
    cpu_us_each: tuple[float, ...]

    @classmethod
    def of(cls, loads: Sequence[Load]) -> Polled:
        requests = sum(x.wrk.requests for x in loads)
        answered = sum(x.wrk.n200 + x.wrk.n304 + x.wrk.nother for x in loads)
        return cls(
            runs=len(loads),
            requests=requests,
            rate=requests / sum(x.wrk.seconds for x in loads),
            cpu_us=sum(x.cpu_seconds for x in loads) / max(1, requests) * 1e6,
            share_304=sum(x.wrk.n304 for x in loads) / answered if answered else 0.0,
            errors=sum(x.wrk.failed for x in loads),
            cpu_us_each=tuple(x.cpu_seconds / max(1, x.wrk.requests) * 1e6 for x in loads),
        )


async def poll_cases(
    bench: Bench, daemon: Server, bare: Server
) -> dict[str, tuple[Polled, Polled]]:
    """Each case against the daemon and the bare resource in turn, ``--poll-repeats`` times,
    so that both see the same drift of the machine's load."""
    a = bench.args
    out = {}
    for case in POLL_CASES:
        script = wrk_script(etag=case.etag)
        runs: dict[str, list[Load]] = {"daemon": [], "bare": []}
        for _ in range(a.poll_repeats):
            for key, server in (("daemon", daemon), ("bare", bare)):
                runs[key].append(
                    await load(bench, server, case.path, script, a.wrk_seconds, a.wrk_connections)
                )
        out[case.key] = (Polled.of(runs["daemon"]), Polled.of(runs["bare"]))
    return out


async def idle_share(server: Server, seconds: float) -> float:
    before = server.child.usage()
    await sleep(seconds)
    return before.share_until(server.child.usage())


async def start_bare_web(
    bench: Bench, tag: str, documents: dict[str, bytes], etags: dict[str, str]
) -> Server:
    name = bench.name(f"{tag}-bare-web")
    args: list[str] = []
    for i, (path, body) in enumerate(documents.items()):
        file = bench.workdir / f"{name}-{i}.json"
        file.write_bytes(body)
        args += ["--document", f"{path}={file}"]
    for path, tag_value in etags.items():
        args += ["--etag", f"{path}={tag_value}"]
    return await start_server(
        name,
        lambda port: bare_argv("bare_web.py", *args),
        bench.workdir,
        bench.placement,
        with_pbx=False,
    )


async def phase_polls(bench: Bench) -> None:
    a = bench.args
    floor = Floor(a.floor_agents)
    server = await DAEMON.start(bench, "polls")
    trickle = Trickle(server, floor, a.trickle_rate)
    bare: Server | None = None
    try:
        await fed_floor(server, floor.setup())
        trickle.start()
        await sleep(0.5)
        legacy: Fetched = await http_get(server.url("/mitel_data.json"))
        state = (await http_get(server.url("/api/v1/state"))).body
        documents = {"/mitel_data.json": legacy.body, "/api/v1/state": state}
        etags = {"/mitel_data.json": legacy.headers.get("etag", '"1"')}
        bare = await start_bare_web(bench, "polls", documents, etags)
        feed_only = await idle_share(server, 2.0)
        results = await poll_cases(bench, server, bare)
    finally:
        trickle.stop()
        if bare is not None:
            bare.stop()
        server.stop()
    bench.legend["polls"] = (
        f"{a.floor_agents:,} agents changing {a.trickle_rate:g}/s,"
        f" state {len(state) // 1024} KiB, legacy {len(legacy.body) // 1024} KiB;"
        f" wrk -t1 -c{a.wrk_connections} -d{a.wrk_seconds:g}s, {a.poll_repeats} runs each,"
        " daemon and bare in turn; server CPU from /proc, median [min..max] of the runs;"
        " req/s ratio = daemon/bare (all runs), CPU ratio = capacity = bare/daemon (medians)"
    )
    bench.results["polls"] = {
        "agents": a.floor_agents,
        "bytes": {k: len(v) for k, v in documents.items()},
        "daemon_cpu_share_feed_only": feed_only,
        "daemon": {k: attrs.asdict(d) for k, (d, b) in results.items()},
        "bare": {k: attrs.asdict(b) for k, (d, b) in results.items()},
    }
    for case in POLL_CASES:
        d, b = results[case.key]
        bench.add(
            Row(
                "polls",
                f"{case.label}: req/s",
                rate(d.rate),
                f"bare resource {rate(b.rate)}",
                ratio(d.rate, b.rate),
            )
        )
        # Medians of the runs, each beside the bare run just after it.
        capacity = ratio(median(b.cpu_us_each), median(d.cpu_us_each))
        goal = 0.95 if case.path == "/mitel_data.json" else 0.9
        bench.add(
            Row(
                "polls",
                f"{case.label}: CPU per request",
                spread(d.cpu_us_each, lambda x: f"{x:.0f} µs"),
                f"bare {spread(b.cpu_us_each, lambda x: f'{x:.0f} µs')}",
                capacity,
                f"capacity ≥ {goal:g}",
                capacity is not None and capacity >= goal,
            )
        )
        if case.etag:
            bench.add(
                Row(
                    "polls",
                    f"{case.label}: share of 304",
                    pct(d.share_304),
                    f"bare {pct(b.share_304)}",
                    ratio(d.share_304, b.share_304),
                )
            )
    bench.add(
        Row(
            "polls",
            "daemon CPU share, the changes alone",
            pct(feed_only),
        )
    )


# --- 3. freshness --------------------------------------------------------------------------


class Pacer:
    """Records sent at an even rate; ``sent_at[i]`` is when record ``i`` went out."""

    def __init__(self, server: Server, records: list[bytes], per_second: float) -> None:
        self._server = server
        self._records = records
        self._rate = per_second
        self.sent_at: list[float] = []
        self._start = 0.0
        self._call: IDelayedCall | None = None
        self._done: Deferred[list[float]] = Deferred()

    def run(self) -> Deferred[list[float]]:
        self._start = time.perf_counter()
        self._tick()
        return self._done

    def _tick(self) -> None:
        self._call = None
        now = time.perf_counter()
        records, sent = self._records, len(self.sent_at)
        due = min(len(records), int((now - self._start) * self._rate) + 1)
        if due > sent:
            self._server.feed(records[sent:due])
            self.sent_at += [now] * (due - sent)
        if due < len(records):
            next_at = self._start + due / self._rate
            self._call = reactor.callLater(max(0.0, next_at - time.perf_counter()), self._tick)
        else:
            self._done.callback(self.sent_at)

    def cancel(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()


async def wait_quietly(test: Callable[[], bool], timeout: float) -> bool:
    try:
        await wait_until(test, timeout, "")
    except BenchError:
        return False
    return True


@attrs.frozen
class Freshness:
    p50_ms: float
    p99_ms: float
    max_ms: float
    records: int
    samples: int
    #: Share of records that every measuring board saw.
    seen_by_all: float
    measuring: int
    clients: int
    connected: int
    complete: int
    events: int
    kinds: dict[str, int]
    server_cpu_share: float
    bench_cpu_share: float
    pbx_stalls: int

    @property
    def delivered(self) -> bool:
        return self.seen_by_all == 1.0 and self.complete == self.clients == self.connected


def latencies(sent_at: Sequence[float], clients: Sequence[StreamClient]) -> tuple[list[float], int]:
    """Every (board, record) latency in ms, and how many records every board saw."""
    samples, everywhere = [], 0
    for serial, sent in enumerate(sent_at, 1):
        seen_by = [c.seen.get(serial) for c in clients]
        samples += [1000 * (t - sent) for t in seen_by if t is not None]
        everywhere += all(t is not None for t in seen_by)
    return samples, everywhere


async def fresh_run(bench: Bench, target: Target, agents: int) -> Freshness:
    a = bench.args
    floor = Floor(agents)
    server = await target.start(bench, f"fresh{agents}")
    try:
        await fed_floor(server, floor.logins())
        audience = Audience(server.port, a.sse_clients, a.measuring_clients, target.serials_of)
        pacer: Pacer | None = None
        try:
            await audience.open(timeout=90)
            count = int(a.fresh_rate * a.fresh_seconds)
            records = [floor.event((s - 1) % agents, serial=s) for s in range(1, count + 1)]
            cpu_before, wall_before = time.process_time(), time.perf_counter()
            server_before = server.child.usage()
            pacer = Pacer(server, records, a.fresh_rate)
            sent_at = await pacer.run()
            await wait_quietly(lambda: all(count in c.seen for c in audience.measuring), 5.0)
            most = max(c.counter.events for c in audience.measuring)
            await wait_quietly(lambda: min(audience.event_counts()) >= most, 3.0)
            bench_share = (time.process_time() - cpu_before) / (time.perf_counter() - wall_before)
            server_share = server_before.share_until(server.child.usage())
            samples, everywhere = latencies(sent_at, audience.measuring)
            delivery = audience.delivery()
            assert server.link is not None
            return Freshness(
                p50_ms=percentile(samples, 0.50),
                p99_ms=percentile(samples, 0.99),
                max_ms=max(samples, default=float("nan")),
                records=count,
                samples=len(samples),
                seen_by_all=everywhere / count,
                measuring=len(audience.measuring),
                clients=delivery.clients,
                connected=delivery.connected,
                complete=delivery.complete,
                events=delivery.most_events,
                kinds=dict(audience.kinds()),
                server_cpu_share=server_share,
                bench_cpu_share=bench_share,
                pbx_stalls=server.link.stalls,
            )
        finally:
            if pacer is not None:
                pacer.cancel()
            audience.close()
    finally:
        server.stop()


def fresh_targets(bench: Bench) -> list[Target]:
    """The daemon's runs: its default pacing, then each other ``--push-intervals`` value."""
    features, targets = bench.features, []
    for value in bench.args.push_intervals:
        if value == "default":
            targets.append(Target(f"push {features.default_push_label} (default)", "daemon"))
        elif not features.push_interval:
            bench.note("the daemon has no --push-interval: freshness ran with its default only")
        elif float(value) == features.default_push and "default" in bench.args.push_intervals:
            bench.note(f"--push-interval {value} is the daemon's default now: it ran once")
        else:
            targets.append(Target(f"--push-interval {value}", "daemon", push_interval=float(value)))
    return targets


def p99_target(agents: int) -> float | None:
    return 5.0 if agents <= 2000 else 20.0 if agents <= 10000 else None


def describe_delivery(f: Freshness) -> str:
    return (
        f"{pct(f.seen_by_all)} at all {f.measuring};"
        f" {f.complete}/{f.clients} got all {f.events} events"
        + (f", {f.clients - f.connected} dropped" if f.connected < f.clients else "")
    )


async def phase_freshness(bench: Bench) -> None:
    a = bench.args
    results: dict[str, Any] = {}
    targets = fresh_targets(bench)
    for agents in a.fresh_agents:
        relays: list[Freshness] = []
        runs: dict[Target, list[Freshness]] = {t: [] for t in targets}
        for _ in range(a.fresh_rounds):
            relays.append(await fresh_run(bench, RELAY, agents))
            for target in targets:
                runs[target].append(await fresh_run(bench, target, agents))
        results[f"{agents}/relay"] = [attrs.asdict(r) for r in relays]
        for target, done in runs.items():
            results[f"{agents}/{target.label}"] = [attrs.asdict(r) for r in done]
            add_freshness_rows(bench, agents, target, done, relays)
    bench.results["freshness"] = results
    bench.legend["fresh"] = (
        f"record on the PBX socket → SSE event at {a.sse_clients} boards on /api/v1/events"
        f" ({a.measuring_clients} timing), {a.fresh_rate:g} records/s for {a.fresh_seconds:g} s"
        f" over N agents logged in; {a.fresh_rounds} runs of each, relay and daemon in turn:"
        " medians (p99: median [min..max]); CPU = server's share of a core;"
        " ratio = median p99/relay median p99;"
        " delivered = records seen by every timing board, and boards with every event"
    )


#: The daemon's p99 against the relay's, at this many agents.
FRESH_RATIO_AGENTS = 10000
FRESH_RATIO = 1.5


def add_freshness_rows(
    bench: Bench,
    agents: int,
    target: Target,
    runs: Sequence[Freshness],
    relays: Sequence[Freshness],
) -> None:
    goal = p99_target(agents)
    phase = f"fresh {agents:,}"
    for run in runs:
        if "delta" not in run.kinds:
            bench.note(
                f"{target.label}: no 'event: delta' on /api/v1/events, only {sorted(run.kinds)}:"
                " latencies are to whole-state events"
            )
            break
    for run in runs:
        if run.bench_cpu_share > 0.9:
            bench.note(
                f"{phase} {target.label}: the bench itself used {pct(run.bench_cpu_share)} of a"
                " core: its own delay is in the latencies"
            )
            break

    def summary(of: Sequence[Freshness]) -> str:
        return (
            f"{ms(median([r.p50_ms for r in of]))}/{spread([r.p99_ms for r in of], ms)}"
            f"/{ms(max(r.max_ms for r in of))}, CPU {pct(median([r.server_cpu_share for r in of]))}"
        )

    p99 = median([r.p99_ms for r in runs])
    relay_p99 = median([r.p99_ms for r in relays])
    delivered = all(r.delivered for r in runs)
    bench.add(
        Row(
            phase,
            f"{target.label}: ms p50/p99/max",
            summary(runs),
            f"relay {summary(relays)}",
            ratio(p99, relay_p99),
            f"p99 < {goal:g} ms, all delivered" if goal else "",
            (p99 < goal and delivered) if goal else None,
        )
    )
    against = ratio(p99, relay_p99)
    at_goal = agents == FRESH_RATIO_AGENTS
    bench.add(
        Row(
            phase,
            f"{target.label}: p99 against the relay",
            spread([r.p99_ms for r in runs], lambda x: f"{ms(x)} ms"),
            f"relay {spread([r.p99_ms for r in relays], lambda x: f'{ms(x)} ms')}",
            against,
            f"≤ {FRESH_RATIO:g}×" if at_goal else "",
            at_most(against, FRESH_RATIO) if at_goal else None,
        )
    )
    worst = min(runs, key=lambda r: (r.delivered, r.seen_by_all, r.complete))
    relay_seen = min(r.seen_by_all for r in relays)
    bench.add(
        Row(
            phase,
            f"{target.label}: delivered",
            describe_delivery(worst) + (f" (the worst of {len(runs)})" if len(runs) > 1 else ""),
            f"relay {pct(relay_seen)}, {min(r.complete for r in relays)}/{relays[0].clients}",
            ratio(worst.seen_by_all, relay_seen),
            "all, to all",
            delivered,
        )
    )


# --- 4. poll freshness -------------------------------------------------------------------------


@attrs.frozen
class PollFreshness:
    p50_ms: float
    p99_ms: float
    max_ms: float
    records: int
    seen: int
    polls_per_second: float


async def pollfresh_run(bench: Bench, target: Target) -> PollFreshness:
    a = bench.args
    floor = Floor(a.floor_agents)
    server = await target.start(bench, "pollfresh")
    boards: list[Poller] = []
    pacer: Pacer | None = None
    seen: dict[int, float] = {}
    try:
        await fed_floor(server, floor.logins())
        for index in range(a.pollfresh_boards):
            agent = floor.ids[index]

            def answered(body: bytes, now: float, agent: str = agent) -> None:
                for serial in target.poll_serials(body, agent):
                    seen.setdefault(serial, now)

            boards.append(Poller(target.poll_path(agent), server.port, answered))
            await connect(boards[-1], server.port)
        count = a.pollfresh_records
        records = [floor.event((s - 1) % a.pollfresh_boards, serial=s) for s in range(1, count + 1)]
        for board in boards:
            board.start()
        started = time.perf_counter()
        pacer = Pacer(server, records, 1.0 / a.pollfresh_interval)
        sent_at = await pacer.run()
        await wait_quietly(lambda: count in seen, 3.0)
        polls = sum(b.answers for b in boards) / (time.perf_counter() - started)
        samples = [1000 * (seen[s] - t) for s, t in enumerate(sent_at, 1) if s in seen]
        return PollFreshness(
            percentile(samples, 0.5),
            percentile(samples, 0.99),
            max(samples, default=float("nan")),
            count,
            len(samples),
            polls,
        )
    finally:
        if pacer is not None:
            pacer.cancel()
        for board in boards:
            board.running = False
            if board.transport is not None:
                board.transport.loseConnection()
        server.stop()


async def phase_pollfresh(bench: Bench) -> None:
    a = bench.args
    relay = await pollfresh_run(bench, RELAY)
    daemon = await pollfresh_run(bench, DAEMON)
    bench.results["pollfresh"] = {"daemon": attrs.asdict(daemon), "relay": attrs.asdict(relay)}
    bench.legend["pollfresh"] = (
        f"record → first answer showing it, {a.pollfresh_boards} boards polling"
        f" /api/v1/agents/<id> back to back (relay: /last), one record every"
        f" {1000 * a.pollfresh_interval:g} ms, {a.floor_agents:,} agents"
    )
    bench.add(
        Row(
            "pollfresh",
            "ms p50/p99/max, polls/s",
            f"{ms(daemon.p50_ms)}/{ms(daemon.p99_ms)}/{ms(daemon.max_ms)},"
            f" {daemon.polls_per_second:,.0f}/s",
            f"relay {ms(relay.p50_ms)}/{ms(relay.p99_ms)}/{ms(relay.max_ms)},"
            f" {relay.polls_per_second:,.0f}/s",
            ratio(daemon.p99_ms, relay.p99_ms),
        )
    )
    bench.add(
        Row(
            "pollfresh",
            "records seen",
            f"{daemon.seen}/{daemon.records}",
            f"relay {relay.seen}/{relay.records}",
            ratio(daemon.seen, relay.seen),
            "all",
            daemon.seen == daemon.records,
        )
    )


# --- 5. footprint ----------------------------------------------------------------------------


def board_script(bench: Bench) -> str:
    return wrk_script(interval_ms=1000, connections=bench.args.boards)


async def boards_load(bench: Bench, server: Server) -> Load:
    a = bench.args
    return await load(
        bench, server, "/api/v1/state", board_script(bench), a.footprint_seconds, a.boards
    )


@attrs.frozen
class Footprint:
    load: Load | None
    cpu_share: float
    #: The median of the RSS read every half second under the load.
    rss_kib: int
    peak_rss_kib: int
    clients: int
    connected: int
    #: The RSS at the end of the load.
    last_rss_kib: int = 0


class RssSampler:
    """A child's RSS every ``every`` seconds: under a load of large bodies it swings with
    the responses under way (a bare resource writes each body whole), so one reading at
    the end says little."""

    def __init__(self, child: Child, every: float = 0.5) -> None:
        self._child = child
        self._loop = LoopingCall(self._read)
        self._every = every
        self.samples: list[int] = []

    def _read(self) -> None:
        if self._child.alive():
            self.samples.append(self._child.rss_kib())

    def start(self) -> None:
        self._loop.start(self._every, now=True)

    def stop(self) -> int:
        """Stop, and the median of the samples (the RSS now when there were none)."""
        if self._loop.running:
            self._loop.stop()
        self._read()
        return int(median(self.samples))


async def footprint_with_audience(
    bench: Bench, target: Target, agents: int, with_boards: bool
) -> tuple[Footprint, bytes]:
    """A server with a floor, its event stream boards, the trickle, and boards polling."""
    a = bench.args
    floor = Floor(agents)
    server = await target.start(bench, f"footprint{agents}")
    trickle = Trickle(server, floor, a.trickle_rate)
    audience: Audience | None = None
    try:
        await fed_floor(server, floor.setup() if target.kind == "daemon" else floor.logins())
        audience = Audience(server.port, a.sse_clients, 0, target.serials_of)
        await audience.open(timeout=120)
        trickle.start()
        await sleep(0.5)
        before = server.child.usage()
        sampler = RssSampler(server.child)
        sampler.start()
        polled = await boards_load(bench, server) if with_boards else None
        if polled is None:
            await sleep(a.footprint_seconds)
        share = before.share_until(server.child.usage())
        rss = sampler.stop()
        last = server.child.rss_kib()
        delivery = audience.delivery()
        body = b""
        if target.kind == "daemon":
            body = (await http_get(server.url("/api/v1/state"))).body
        result = Footprint(
            polled,
            share,
            rss,
            server.child.peak_rss_kib(),
            delivery.clients,
            delivery.connected,
            last,
        )
        return result, body
    finally:
        trickle.stop()
        if audience is not None:
            audience.close()
        server.stop()


async def footprint_bare_web(bench: Bench, agents: int, state: bytes) -> Footprint:
    server = await start_bare_web(bench, f"footprint{agents}", {"/api/v1/state": state}, {})
    try:
        before = server.child.usage()
        sampler = RssSampler(server.child)
        sampler.start()
        polled = await boards_load(bench, server)
        share = before.share_until(server.child.usage())
        rss = sampler.stop()
        return Footprint(
            polled, share, rss, server.child.peak_rss_kib(), 0, 0, server.child.rss_kib()
        )
    finally:
        server.stop()


#: Every view a board or a tool reads, once each before the idle RSS is taken.
VIEWS = (
    "/mitel_data.json",
    "/api/v1/state",
    "/api/v1/agents",
    "/api/v1/groups",
    "/api/v1/paths",
    "/api/v1/extensions",
    "/api/v1/feed",
)


@attrs.frozen
class Idle:
    """A server with its floor and no client, after one read of each view."""

    rss_kib: int
    peak_rss_kib: int
    view_bytes: dict[str, int]


async def read_views(server: Server) -> dict[str, bytes]:
    bodies = {}
    for path in VIEWS:
        got = await http_get(server.url(path), timeout=60)
        if got.code != 200:
            raise BenchError(f"{server.child.name}{path} answered {got.code}")
        bodies[path] = got.body
    return bodies


async def idle_daemon(
    bench: Bench, agents: int, extra: Sequence[str] = ()
) -> tuple[Idle, dict[str, bytes]]:
    """The daemon as shipped (with ``extra``) with a floor of ``agents``, every history row
    written, each view read once, no client left."""
    server = await start_shipped(bench, f"idle{agents}", extra)
    try:
        await fed_floor(server, Floor(agents).setup())
        await history_drained(server, 120)
        bodies = await read_views(server)
        await sleep(1.5)  # the data file's writer, the history's flush
        idle = Idle(
            server.child.rss_kib(),
            server.child.peak_rss_kib(),
            {k: len(v) for k, v in bodies.items()},
        )
        return idle, bodies
    finally:
        server.stop()


async def idle_bare_web(bench: Bench, agents: int, bodies: dict[str, bytes]) -> Idle:
    """The bare resource holding the same bodies, each read once."""
    server = await start_bare_web(bench, f"idle{agents}", bodies, {})
    try:
        await read_views(server)
        await sleep(0.5)
        return Idle(
            server.child.rss_kib(),
            server.child.peak_rss_kib(),
            {k: len(v) for k, v in bodies.items()},
        )
    finally:
        server.stop()


#: Targets at 10,000 agents: RSS against the bare references.
IDLE_RSS_RATIO = 1.3
AUDIENCE_RSS_RATIO = 1.15


async def phase_footprint(bench: Bench) -> None:
    a = bench.args
    results: dict[str, Any] = {}
    for agents in a.footprint_agents:
        idle, bodies = await idle_daemon(bench, agents)
        idle_none, _ = await idle_daemon(bench, agents, ["--history", "none"])
        idle_web = await idle_bare_web(bench, agents, bodies)
        add_idle_rows(bench, agents, idle, idle_none, idle_web)
        daemon, state = await footprint_with_audience(bench, DAEMON, agents, with_boards=True)
        web = await footprint_bare_web(bench, agents, state)
        state_file = bench.workdir / f"{bench.name('state')}.json"
        state_file.write_bytes(state)
        both = Target(
            "bare resource + relay", "relay", extra=("--document", f"/api/v1/state={state_file}")
        )
        relay, _ = await footprint_with_audience(bench, both, agents, with_boards=True)
        results[str(agents)] = {
            "state_bytes": len(state),
            "idle": {
                "daemon": attrs.asdict(idle),
                "daemon_history_none": attrs.asdict(idle_none),
                "bare_web": attrs.asdict(idle_web),
            },
            "daemon": attrs.asdict(daemon),
            "bare_web": attrs.asdict(web),
            "relay_and_web": attrs.asdict(relay),
        }
        add_footprint_rows(bench, agents, daemon, web, relay)
    bench.results["footprint"] = results
    bench.legend["footprint"] = (
        "idle: the daemon as shipped (default SQLite history; and with --history none)"
        " with N agents set up, every history row written, one read of each of"
        f" {', '.join(VIEWS)}; bare = twisted.web resource holding the same bodies, each"
        f" read once. With an audience: {a.sse_clients} boards on /api/v1/events,"
        f" {a.boards} boards polling /api/v1/state once a second (wrk), {a.trickle_rate:g}"
        f" changes/s, {a.footprint_seconds:g} s; RSS = median of a reading every 0.5 s under"
        " the load (peak = VmHWM); bare + relay = bench/bare_relay.py serving"
        " the same state bytes too, with the same audience and changes; resource alone ="
        " twisted.web with the same state bytes and the polling boards only;"
        " ratio = daemon/bare (+ relay)"
    )


def add_idle_rows(bench: Bench, agents: int, idle: Idle, none: Idle, web: Idle) -> None:
    phase = f"footprint {agents:,}"
    at_goal = agents == 10000
    against = ratio(idle.rss_kib, web.rss_kib)
    bench.add(
        Row(
            phase,
            "RSS, no clients, one read of each view",
            f"{mb(idle.rss_kib)} (--history none {mb(none.rss_kib)})",
            f"bare resource, same bodies {mb(web.rss_kib)}",
            against,
            f"≤ {IDLE_RSS_RATIO:g}×" if at_goal else "",
            at_most(against, IDLE_RSS_RATIO) if at_goal else None,
        )
    )


def add_footprint_rows(
    bench: Bench, agents: int, daemon: Footprint, web: Footprint, both: Footprint
) -> None:
    a = bench.args
    phase = f"footprint {agents:,}"
    at_goal = agents == 10000
    assert daemon.load is not None and web.load is not None
    d, w = daemon.load.wrk, web.load.wrk
    wanted = a.boards  # one poll per board per second
    served = d.failed == 0 and d.rate >= 0.9 * wanted
    bench.add(
        Row(
            phase,
            "boards served, ms p50/p99",
            f"{d.rate:.1f}/s, {ms(d.latency_ms['p50'])}/{ms(d.latency_ms['p99'])}"
            + (f", {d.failed} errors" if d.failed else ""),
            f"bare {w.rate:.1f}/s, {ms(w.latency_ms['p50'])}/{ms(w.latency_ms['p99'])}",
            ratio(d.rate, w.rate),
            f"all {wanted}/s served",
            served,
        )
    )
    bench.add(
        Row(
            phase,
            "daemon CPU share",
            pct(daemon.cpu_share),
            f"bare + relay {pct(both.cpu_share)}, resource alone {pct(web.cpu_share)}",
            ratio(daemon.cpu_share, both.cpu_share),
            "< 20 % of a core" if at_goal else "",
            daemon.cpu_share < 0.2 if at_goal else None,
        )
    )
    against = ratio(daemon.rss_kib, both.rss_kib)
    bench.add(
        Row(
            phase,
            "daemon RSS (peak), same audience",
            f"{mb(daemon.rss_kib)} ({mb(daemon.peak_rss_kib)})",
            f"bare + relay {mb(both.rss_kib)} ({mb(both.peak_rss_kib)}),"
            f" resource alone {mb(web.rss_kib)} ({mb(web.peak_rss_kib)})",
            against,
            f"≤ {AUDIENCE_RSS_RATIO:g}×" if at_goal else "",
            at_most(against, AUDIENCE_RSS_RATIO) if at_goal else None,
        )
    )
    bench.add(
        Row(
            phase,
            "daemon RSS, same audience",
            mb(daemon.rss_kib),
            "",
            None,
            "< 100 MB" if at_goal else "",
            daemon.rss_kib < 100 * 1024 if at_goal else None,
        )
    )
    for run, who in ((daemon, "daemon"), (both, "bare + relay")):
        if run.connected < run.clients:
            bench.note(
                f"{phase}: {run.clients - run.connected} event stream boards of the"
                f" {who} were dropped"
            )


# --- 6. per-change cost -------------------------------------------------------------------------

_CHANGE_COST = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("change_cost", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
measure = getattr(module, "measure", None)
figures = measure(int(sys.argv[2]), int(sys.argv[3])) if measure else None
print("CHANGECOST " + json.dumps(figures), flush=True)
"""


async def change_cost(bench: Bench, agents: int, records: int) -> dict[str, Any] | None:
    module = HERE / "change_cost.py"
    argv = [sys.executable, "-c", _CHANGE_COST, str(module), str(agents), str(records)]
    child = Child(bench.name(f"perchange{agents}"), argv, bench.workdir)
    try:
        bench.placement.pin_server(child.pid)
        found = await child.wait_for(r"^CHANGECOST (.*)$", timeout=240)
        figures: dict[str, Any] | None = json.loads(found.group(1))
        return figures
    finally:
        child.stop()


async def phase_perchange(bench: Bench) -> None:
    a = bench.args
    if not (HERE / "change_cost.py").exists():
        print("per-change: not available", flush=True)
        bench.add(Row("perchange", "per-change cost", "not available (no bench/change_cost.py)"))
        return
    results = {}
    for agents in a.change_agents:
        figures = await change_cost(bench, agents, a.change_records)
        results[str(agents)] = figures
        if figures is None:
            print("per-change: not available", flush=True)
            bench.add(Row("perchange", "per-change cost", "not available (no measure())"))
            break
        us, reference = figures.get("us_per_change"), figures.get("reference_us")
        what = figures.get("reference", "reference")
        if isinstance(us, (int, float)) and isinstance(reference, (int, float)):
            shown, compared, against = (
                f"{us:.1f} µs",
                f"{what}: {reference:.1f} µs",
                ratio(us, reference),
            )
        else:
            shown, compared, against = str(us), str(reference), None
        bench.add(
            Row(
                "perchange",
                f"per change, {agents:,} agents",
                shown,
                compared,
                against,
            )
        )
        # The /metrics listener: alone, and the whole change with and without it.
        listener, without = figures.get("metrics_listener_us"), figures.get("without_metrics_us")
        if (
            isinstance(listener, (int, float))
            and isinstance(without, (int, float))
            and isinstance(us, (int, float))
        ):
            bench.add(
                Row(
                    "perchange",
                    f"metrics listener, {agents:,} agents",
                    f"{listener:.1f} µs",
                    f"the whole change: {us:.1f} µs with it, {without:.1f} µs without",
                    ratio(listener, us),
                )
            )
        # Reads of 147: how the cost grows with the floor, and whether locality is why.
        found: list[Any] = [
            figures.get(k) for k in ("reads_us", "reads_reference_us", "reads_touching_100_us")
        ]
        if agents > 100 and all(isinstance(v, (int, float)) for v in found):
            reads, small, local = (float(v) for v in found)
            bench.add(
                Row(
                    "perchange",
                    f"per record in reads of 147, {agents:,} agents",
                    f"{reads:.1f} µs",
                    f"100 agents {small:.1f} µs",
                    ratio(reads, small),
                    "growth, in one process",
                )
            )
            bench.add(
                Row(
                    "perchange",
                    f"the same, {agents:,} agents, each read touching 100 of them",
                    f"{local:.1f} µs",
                    f"100 agents {small:.1f} µs",
                    ratio(local, small),
                    "growth with the reads of 100 agents",
                )
            )
    bench.results["perchange"] = results
    bench.legend["perchange"] = (
        f"bench/change_cost.py measure(agents, {a.change_records:,}), in its own process;"
        " ratio = figure/its reference"
    )


# --- 6b. per change, as deployed ---------------------------------------------------------------


@attrs.frozen
class Paced:
    """Agent events one per write, at a steady rate, to a server with one event stream client."""

    records: int
    seconds: float
    cpu_seconds: float
    #: Events the client received meanwhile: one per record when every read held one.
    events: int

    @property
    def cpu_us(self) -> float:
        return self.cpu_seconds / self.records * 1e6


#: After the last record of a paced run, how long its CPU is still counted: the history's
#: flush (every second) and the data file's write (paced to a second) of the last changes.
SETTLE_SECONDS = 1.5


async def paced_changes(
    server: Server, floor: Floor, per_second: float, count: int, audience: Audience
) -> Paced:
    """``count`` agent events, each its own write, ``per_second`` a second (fewer when the
    bench is late: one write per tick, never two); CPU from the first until every record is
    applied and the client has gone quiet, and :data:`SETTLE_SECONDS` after the last."""
    records = [floor.event(n % floor.agents) for n in range(count)]
    events_before = audience.event_counts()[0]
    sent = 0

    def send() -> None:
        nonlocal sent
        server.feed([records[sent]])
        sent += 1
        if sent == count:
            loop.stop()

    loop = LoopingCall(send)
    before = server.child.usage()
    await loop.start(1.0 / per_second, now=True)
    last_sent = time.monotonic()
    seconds = last_sent - before.wall
    await wait_applied(server, server.sent, timeout=30)
    await audience.quiet(30, still=0.2)
    await sleep(max(0.0, last_sent + SETTLE_SECONDS - time.monotonic()))
    used = server.child.usage().cpu - before.cpu
    return Paced(count, seconds, used, audience.event_counts()[0] - events_before)


async def deployed_daemon(bench: Bench, agents: int, paced: bool) -> tuple[Paced | None, Streamed]:
    """The daemon as shipped with ``agents`` agents and one event stream client: agent
    events one per read (when ``paced``), then records in 4 KiB reads."""
    a = bench.args
    floor = Floor(agents)
    server = await start_shipped(bench, f"deployed{agents}")
    audience: Audience | None = None
    try:
        await fed_floor(server, floor.setup(), timeout=120 + agents / 1000)
        if not (await history_drained(server, 120, every=0.5)).done:
            raise BenchError(f"{server.child.name}: its history wrote nothing in 120 s")
        audience = Audience(server.port, 1, 0, serials_in_json)
        await audience.open(timeout=60)
        changes = None
        if paced:
            changes = await paced_changes(
                server, floor, a.deployed_rate, a.deployed_changes, audience
            )
            await history_drained(server, 60, every=0.5)
        # The mix of the ingest phase, without its logins: everyone is logged in.
        records = itertools.islice(floor.mix(a.deployed_records + agents), agents, None)
        data = server.sequencer.stamp(records)
        events_before = audience.event_counts()[0]
        streamed = await timed_stream(
            server, data, a.deployed_records, server.sent, a.deployed_writes
        )
        await audience.quiet(30, still=0.2)
        reads = audience.event_counts()[0] - events_before
        streamed = attrs.evolve(streamed, events=reads)
        if not streamed.drained:
            bench.note(f"{server.child.name}: history rows still waited after the stream")
        return changes, streamed
    finally:
        if audience is not None:
            audience.close()
        server.stop()


async def deployed_relay(bench: Bench, agents: int) -> Paced:
    """The bare relay with one event stream client, the same events one per read."""
    a = bench.args
    floor = Floor(agents)
    server = await RELAY.start(bench, f"deployed{agents}")
    audience: Audience | None = None
    try:
        await fed_floor(server, floor.setup(), timeout=120)
        audience = Audience(server.port, 1, 0, serial_in_record)
        await audience.open(timeout=60)
        return await paced_changes(server, floor, a.deployed_rate, a.deployed_changes, audience)
    finally:
        if audience is not None:
            audience.close()
        server.stop()


DEPLOYED_RATIO = 1.8
GROWTH_RATIO = 1.2


async def phase_deployed(bench: Bench) -> None:
    """Per change over the socket: the daemon as shipped against the bare relay, one record
    per read; per record in 4 KiB reads, the largest floor against the smallest. Each
    ``--deployed-rounds`` times, in turn (reversed every other round)."""
    a = bench.args
    big, small = a.deployed_agents[0], a.deployed_agents[-1]
    relay: list[Paced] = []
    paced: list[Paced] = []
    streamed: dict[int, list[Streamed]] = {big: [], small: []}
    for round_ in range(a.deployed_rounds):
        order = ["relay", "big", "small"]
        for which in order if round_ % 2 == 0 else reversed(order):
            if which == "relay":
                relay.append(await deployed_relay(bench, big))
            elif which == "big":
                changes, run = await deployed_daemon(bench, big, paced=True)
                assert changes is not None
                paced.append(changes)
                streamed[big].append(run)
            elif small != big:
                streamed[small].append((await deployed_daemon(bench, small, paced=False))[1])
    if small == big:
        streamed[small] = streamed[big]
    for each in paced:
        if each.events < each.records:
            bench.note(
                f"deployed: {each.records - each.events:,} of {each.records:,} paced records"
                " came in a read with another one (fewer events than records)"
            )
            break
    daemon_us, relay_us = [r.cpu_us for r in paced], [r.cpu_us for r in relay]
    against = ratio(median(daemon_us), median(relay_us))
    bench.add(
        Row(
            "deployed",
            f"CPU per change, one record per read, {big:,} agents",
            spread(daemon_us, us),
            f"bare relay {spread(relay_us, us)}",
            against,
            f"≤ {DEPLOYED_RATIO:g}×",
            at_most(against, DEPLOYED_RATIO),
        )
    )
    big_us = [r.cpu_us for r in streamed[big]]
    small_us = [r.cpu_us for r in streamed[small]]
    growth = ratio(median(big_us), median(small_us))

    def per_read(runs: Sequence[Streamed]) -> str:
        reads = sum(r.events for r in runs)
        return f", {sum(r.records for r in runs) / reads:.0f} records a read" if reads else ""

    bench.add(
        Row(
            "deployed",
            f"CPU per record, 4 KiB reads, {big:,} agents",
            spread(big_us, us) + per_read(streamed[big]),
            f"{small:,} agents {spread(small_us, us)}{per_read(streamed[small])}",
            growth,
            f"≤ {GROWTH_RATIO:g}× growth",
            at_most(growth, GROWTH_RATIO),
        )
    )
    bench.results["deployed"] = {
        "agents": a.deployed_agents,
        "paced": [attrs.asdict(r) | {"cpu_us": r.cpu_us} for r in paced],
        "relay": [attrs.asdict(r) | {"cpu_us": r.cpu_us} for r in relay],
        "streamed": {
            str(k): [attrs.asdict(r) | {"cpu_us": r.cpu_us} for r in v] for k, v in streamed.items()
        },
    }
    rates = [r.records / r.seconds for r in paced + relay]
    bench.legend["deployed"] = (
        "the daemon as the unit starts it (journald logger, --log-level info, the default"
        " SQLite history), N agents set up and their history written, one event stream client;"
        f" per change: {a.deployed_changes:,} agent events, each its own write, at"
        f" {a.deployed_rate:g}/s ({min(rates):,.0f} to {max(rates):,.0f}/s reached), its CPU"
        f" from the first to {SETTLE_SECONDS:g} s after the last (the history's flush and the"
        " data file's write of the last ones), beside bench/bare_relay.py with one client"
        f" and the same events; per record: {a.deployed_records:,} records of the ingest mix"
        f" in 4 KiB writes, {a.deployed_writes:g} a second (records a read = records/events"
        " at the client), CPU until all applied and their history rows written (less the"
        " /metrics reads that watched for it);"
        f" {a.deployed_rounds} rounds in turn, median [min..max]; ratio = median/median"
    )


# --- 7. history ---------------------------------------------------------------------------------

_HISTORY_METRIC = re.compile(rb"^(mitelacd_history_[a-z_]+) (\S+)$", re.MULTILINE)


@attrs.frozen
class HistoryHealth:
    """The history writer's counters, as the daemon's ``/metrics`` shows them."""

    written: int
    backlog: int
    dropped: int

    @classmethod
    def parse(cls, body: bytes) -> HistoryHealth | None:
        """None when the daemon keeps no history (``--history none``)."""
        found = {m.group(1): float(m.group(2)) for m in _HISTORY_METRIC.finditer(body)}
        written = found.get(b"mitelacd_history_written_rows_total")
        if written is None:
            return None
        return cls(
            int(written),
            int(found.get(b"mitelacd_history_backlog_rows", 0)),
            int(found.get(b"mitelacd_history_dropped_rows_total", 0)),
        )


async def history_health(server: Server) -> HistoryHealth | None:
    return HistoryHealth.parse((await http_get(server.url("/metrics"))).body)


class HealthSampler:
    """``/metrics`` read every ``every`` seconds (one read at a time): the largest backlog,
    and when each read was under way (the daemon renders it on its one thread)."""

    def __init__(self, server: Server, every: float = 0.5) -> None:
        self._server = server
        self._loop = LoopingCall(lambda: Deferred.fromCoroutine(self._sample()))
        self._every = every
        self.peak_backlog = 0
        self.scrapes = 0
        self.failures = 0
        #: (asked, answered) of every read, in perf_counter time.
        self.windows: list[tuple[float, float]] = []

    async def _sample(self) -> None:
        asked = time.perf_counter()
        try:
            health = await history_health(self._server)
        except Exception:
            self.failures += 1
            return
        finally:
            self.windows.append((asked, time.perf_counter()))
        self.scrapes += 1
        if health is not None:
            self.peak_backlog = max(self.peak_backlog, health.backlog)

    def start(self) -> None:
        if self._every > 0:
            self._loop.start(self._every, now=True)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()


@attrs.frozen
class Drain:
    """The history writer once it had written everything queued, or when waiting gave up."""

    health: HistoryHealth | None
    #: perf_counter time it was seen empty (or gave up).
    at: float
    done: bool
    peak_backlog: int
    #: Reads of ``/metrics`` it took.
    reads: int = 0


async def history_drained(
    server: Server, timeout: float, every: float = 0.1, written: int = 1
) -> Drain:
    """Read ``/metrics`` until no history row waits and at least ``written`` rows are
    written (at once without a history).

    The daemon holds the rows it makes back until it has read today's rows of
    earlier runs, which it tries every 2 s until the database is open: a
    fresh database with nothing written has not had them yet.
    """
    deadline, peak, reads = time.monotonic() + timeout, 0, 0
    while True:
        health = await history_health(server)
        reads += 1
        if health is None or (health.backlog == 0 and health.written >= written):
            return Drain(health, time.perf_counter(), True, peak, reads)
        peak = max(peak, health.backlog)
        if time.monotonic() > deadline:
            return Drain(health, time.perf_counter(), False, peak, reads)
        await sleep(every)


def every_cpu(placement: Placement) -> frozenset[int] | None:
    """The server's CPUs and the clients': where a database server shared by both runs."""
    if placement.server and placement.clients:
        return placement.server | placement.clients
    return None


@attrs.define
class HistoryDatabases:
    """A fresh history database for each daemon run: a SQLite file, or a database in the
    throwaway PostgreSQL server."""

    postgres: PostgresServer | None = None
    _made: int = 0

    @staticmethod
    def start_postgres(cpus: frozenset[int] | None) -> PostgresServer:
        """In a thread: a PostgreSQL server on ``cpus`` (its processes inherit the thread's)."""
        before = os.sched_getaffinity(0)
        if cpus:
            os.sched_setaffinity(0, cpus)
        try:
            server = PostgresServer()
            try:
                server.start()
            except BaseException:
                server.close()
                raise
            return server
        finally:
            os.sched_setaffinity(0, before)

    async def url(self, bench: Bench, kind: HistoryKind, name: str) -> str:
        """What ``--history`` says for a run named ``name``."""
        if kind == "none":
            return "none"
        if kind == "sqlite":
            return str(bench.workdir / f"{name}-history.db")
        if self.postgres is None:
            raise BenchError("no PostgreSQL server for a history in PostgreSQL")
        self._made += 1
        database = f"history_{self._made:02d}"
        return str(await deferToThread(self.postgres.create_database, database))

    def close(self) -> None:
        if self.postgres is not None:
            self.postgres.close()


async def start_history_daemon(
    bench: Bench, databases: HistoryDatabases, kind: HistoryKind, tag: str
) -> Server:
    """The daemon with its default logging and pushes, and ``--history`` of ``kind``."""
    name = bench.name(f"{tag}-{kind}")
    history = await databases.url(bench, kind, name)
    level = "info" if bench.features.log_level else None

    def argv(port: int) -> list[str]:
        return daemon_argv(
            port, bench.workdir / f"{name}.json", level, None, ["--history", history]
        )

    return await start_server(name, argv, bench.workdir, bench.placement)


@attrs.frozen
class HistoryIngest:
    kind: HistoryKind
    #: The timed part: every record but the first ones.
    run: Ingested
    #: Every record sent.
    records: int
    #: The history rows waiting when every record was in, and once they were written.
    backlog: int
    drain: Drain
    #: Seconds from every record in to no row waiting.
    drain_seconds: float
    #: CPU from the first timed byte to no row waiting, less the ``/metrics`` reads that
    #: watched for it (at least the CPU until every record was in).
    cpu_written: float = 0.0

    @property
    def cpu_written_us(self) -> float:
        return self.cpu_written / self.run.records * 1e6


@attrs.frozen
class IngestData:
    """Records of the ingest phase's mix, stamped, cut in two: the first records (everyone's login
    and one event each), sent before the clock starts, and the rest, timed."""

    head: bytes
    head_records: int
    rest: bytes
    rest_records: int

    @classmethod
    def make(cls, agents: int, count: int) -> IngestData:
        records = list(Floor(agents).mix(count))
        cut = min(len(records) // 2, 2 * agents)
        sequencer = Sequencer()
        head = sequencer.stamp(records[:cut])
        return cls(head, cut, sequencer.stamp(records[cut:]), len(records) - cut)

    @property
    def records(self) -> int:
        return self.head_records + self.rest_records


async def history_ingest(
    bench: Bench, databases: HistoryDatabases, kind: HistoryKind, data: IngestData
) -> HistoryIngest:
    """The ingest phase's run, with a history of ``kind``; then the wait for it to be written.

    The first records go in first, and the clock starts once their history
    rows are written: the daemon holds its rows back until it has read the
    day's rows of earlier runs, a few seconds after its start, and a run
    timed from the start would measure ingest without a history.
    """
    server = await start_history_daemon(bench, databases, kind, "hingest")
    try:
        assert server.link is not None
        server.link.send(data.head)
        await wait_applied(server, data.head_records, timeout=60)
        ready = await history_drained(server, 60)
        if not ready.done:
            raise BenchError(f"{server.child.name}: its history wrote nothing in 60 s")
        before = server.child.usage()
        first_byte = server.link.stream(data.rest)
        count = data.records
        feed = await wait_applied(server, count, timeout=30 + count / 10_000)
        seen_at = time.time()
        started = await first_byte
        used = server.child.usage().cpu - before.cpu
        applied_at = wall_time(feed.get("last_record_at")) or seen_at
        in_at = time.perf_counter()
        health = await history_health(server)
        drain = await history_drained(server, 60 + count / 5_000)
        written = server.child.usage().cpu - before.cpu
        read_cpu = await metrics_read_cpu(server)
        written = max(used, written - (drain.reads + 1) * read_cpu)
        await sleep(0.3)  # the journald logger flushes 0.1 s after a line
        run = Ingested(
            data.rest_records,
            max(1e-6, applied_at - started),
            used,
            log_lines(server.child),
        )
        backlog = health.backlog if health is not None else 0
        return HistoryIngest(kind, run, count, backlog, drain, drain.at - in_at, written)
    finally:
        server.stop()


@attrs.frozen
class Sustained:
    """Agent events at a steady rate to a daemon with a history of ``kind``."""

    kind: HistoryKind
    events: int
    send_seconds: float
    #: History rows written from the first event until none waited; None without a history.
    rows: int | None
    dropped: int | None
    peak_backlog: int | None
    drained: bool
    #: Seconds from the last event sent to no history row waiting.
    drain_seconds: float | None
    #: Record to board, of the records no ``/metrics`` read was under way for.
    p50_ms: float
    p99_ms: float
    max_ms: float
    #: The same over every record.
    p99_all_ms: float
    max_all_ms: float
    seen: int
    #: Records seen while a ``/metrics`` read was under way.
    near_reads: int
    server_cpu_share: float
    scrapes: int
    pbx_stalls: int


def apart_from(
    sent_at: Sequence[float], board: StreamClient, windows: Sequence[tuple[float, float]]
) -> tuple[list[float], list[float]]:
    """Latencies in ms of the records whose way to the board crossed no window, and of all."""
    away: list[float] = []
    every: list[float] = []
    for serial, sent in enumerate(sent_at, 1):
        seen = board.seen.get(serial)
        if seen is None:
            continue
        latency = 1000 * (seen - sent)
        every.append(latency)
        if not any(asked <= seen and sent <= answered for asked, answered in windows):
            away.append(latency)
    return away, every


async def sustained_run(
    bench: Bench, databases: HistoryDatabases, kind: HistoryKind
) -> tuple[Sustained, list[float], list[float]]:
    """``--history-rate`` agent events a second for ``--history-seconds``; each one's
    latency to a board on the event stream, and ``/metrics`` read every 0.5 s meanwhile.

    Also the latencies away from the reads and of all records, for a reference made of
    several runs."""
    a = bench.args
    floor = Floor(a.history_agents)
    server = await start_history_daemon(bench, databases, kind, "hsustained")
    audience: Audience | None = None
    sampler: HealthSampler | None = None
    pacer: Pacer | None = None
    try:
        await fed_floor(server, floor.setup())
        settled = await history_drained(server, 60)
        audience = Audience(server.port, 1, 1, serials_in_json)
        await audience.open(timeout=60)
        count = int(a.history_rate * a.history_seconds)
        records = [floor.event((s - 1) % floor.agents, serial=s) for s in range(1, count + 1)]
        sampler = HealthSampler(server, a.history_scrape_every)
        sampler.start()
        before = server.child.usage()
        pacer = Pacer(server, records, a.history_rate)
        sent_at = await pacer.run()
        send_seconds = time.perf_counter() - sent_at[0]
        board = audience.measuring[0]
        await wait_quietly(lambda: count in board.seen, 5.0)
        share = before.share_until(server.child.usage())
        drain = await history_drained(server, 30 + a.history_seconds)
        sampler.stop()
        away, every = apart_from(sent_at, board, sampler.windows)
        health, start = drain.health, settled.health
        assert server.link is not None
        result = Sustained(
            kind=kind,
            events=count,
            send_seconds=send_seconds,
            rows=None if health is None or start is None else health.written - start.written,
            dropped=None if health is None or start is None else health.dropped - start.dropped,
            peak_backlog=(
                None if health is None else max(sampler.peak_backlog, drain.peak_backlog)
            ),
            drained=drain.done,
            drain_seconds=None if health is None else max(0.0, drain.at - sent_at[-1]),
            p50_ms=percentile(away, 0.50),
            p99_ms=percentile(away, 0.99),
            max_ms=max(away, default=float("nan")),
            p99_all_ms=percentile(every, 0.99),
            max_all_ms=max(every, default=float("nan")),
            seen=len(every),
            near_reads=len(every) - len(away),
            server_cpu_share=share,
            scrapes=sampler.scrapes,
            pbx_stalls=server.link.stalls,
        )
        return result, away, every
    finally:
        if sampler is not None:
            sampler.stop()
        if pacer is not None:
            pacer.cancel()
        if audience is not None:
            audience.close()
        server.stop()


async def month_step(
    bench: Bench, kind: HistoryKind, url: str, step: str, cpus: frozenset[int] | None
) -> dict[str, Any]:
    """``bench/history_cost.py --step STEP`` on the database at ``url``, in its own process
    on ``cpus`` (the server's when None)."""
    a = bench.args
    argv = [
        *(sys.executable, str(HERE / "history_cost.py"), "--history", url, "--step", step),
        *("--agents", str(a.month_agents), "--days", str(a.month_days)),
        *("--repeat", "3", "--hour-repeat", "1", "--mark"),
    ]
    child = Child(bench.name(f"month-{step}-{kind}"), argv, bench.workdir)
    try:
        if cpus:
            os.sched_setaffinity(child.pid, cpus)
        else:
            bench.placement.pin_server(child.pid)
        found = await child.wait_for(r"^HISTORYCOST (.*)$", timeout=month_timeout(a))
        figures: dict[str, Any] = json.loads(found.group(1))
        return figures
    finally:
        child.stop()


async def month_costs(
    bench: Bench, databases: HistoryDatabases, kinds: Sequence[HistoryKind]
) -> dict[str, Any]:
    """Every database filled at once (on every CPU), then each one's reports timed alone."""
    urls = {kind: await databases.url(bench, kind, bench.name("month")) for kind in kinds}
    cpus = every_cpu(bench.placement)
    filled = await defer.gatherResults(
        [
            Deferred.fromCoroutine(month_step(bench, kind, url, "fill", cpus))
            for kind, url in urls.items()
        ],
        consumeErrors=True,
    )
    months: dict[str, Any] = {}
    for (kind, url), figures in zip(urls.items(), filled):
        months[kind] = figures | await month_step(bench, kind, url, "time", None)
        add_month_rows(bench, kind, months[kind])
    return months


def month_timeout(a: argparse.Namespace) -> float:
    """How long one step of ``bench/history_cost.py`` may take, filling or timing."""
    return float(120 + 15 * a.month_agents / 500 * a.month_days)


async def phase_history(bench: Bench) -> None:
    a = bench.args
    kinds: list[HistoryKind] = [k for k in HISTORY_STORES if k in a.history_stores]
    databases = HistoryDatabases()
    atexit.register(databases.close)
    try:
        if "postgresql" in kinds:
            try:
                databases.postgres = await deferToThread(
                    HistoryDatabases.start_postgres, every_cpu(bench.placement)
                )
            except (PostgresMissing, PostgresFailed) as e:
                why = "not installed" if isinstance(e, PostgresMissing) else "did not start"
                bench.note(f"history: PostgreSQL {why}, no rows of it: {e}")
                bench.add(Row("history", "postgresql", f"not available ({why})"))
                kinds.remove("postgresql")
        ingests = await history_ingest_runs(bench, databases, kinds)
        add_history_ingest_rows(bench, ingests)
        sustained = await sustained_runs(bench, databases, kinds)
        add_sustained_rows(bench, sustained)
        months = await month_costs(bench, databases, kinds)
    finally:
        await deferToThread(databases.close)
    bench.results["history"] = {
        "ingest": {f"{n}-{r.kind}": attrs.asdict(r) for n, r in enumerate(ingests)},
        "sustained": {f"{n}-{r.kind}": attrs.asdict(r) for n, (r, _, _) in enumerate(sustained)},
        "month": months,
    }
    postgres = (
        " (PostgreSQL: a throwaway server on every CPU, fsync off)" if databases.postgres else ""
    )
    bench.legend["history"] = (
        f"ingest: {a.history_records:,} records of the ingest phase's mix"
        f" ({a.ingest_agents:,} agents)"
        " to the daemon with --history none before and after (ref = their mean) and with each"
        " database (a fresh one each run); the first records (a login and an event per agent)"
        " go first, and once their history rows are written (the daemon holds its rows back"
        " until it has read the day's earlier rows) the rest are timed; then until no history"
        " row waits (CPU per record: until then, less the /metrics reads that watched)."
        f" sustained: {a.history_rate:,.0f} agent events/s, each a change of board state, over"
        f" {a.history_agents} agents for {a.history_seconds:g} s; rows, backlog and drops from"
        f" /metrics read every {a.history_scrape_every:g} s (also with --history none); a record"
        " to its event at a board on /api/v1/events, of the records no /metrics read was under"
        " way for (all: every record; a read blocks the daemon for its rendering); ref = the"
        " runs with --history none before and after, pooled."
        f" month: bench/history_cost.py fills {a.month_agents} agents × {a.month_days} days"
        " × 96 intervals into each database, all at once (the fill times are of that), then"
        " times, one database at a time, HistoryStore.report by agent (best of 3 per day, 1 run per"
        " hour) beside a bare SELECT id, SUM(..) ... GROUP BY id (, hour_start) on"
        " agent_intervals, and one write of 1,000 state spans (median of 10)" + postgres
    )


async def history_ingest_runs(
    bench: Bench, databases: HistoryDatabases, kinds: Sequence[HistoryKind]
) -> list[HistoryIngest]:
    """The ingest mix: without a history before and after, and with each kind."""
    a = bench.args
    data = IngestData.make(a.ingest_agents, a.history_records)
    print(
        f"  ingest: {data.records:,} records, {(len(data.head) + len(data.rest)) / 1e6:.1f} MB",
        flush=True,
    )
    runs = [await history_ingest(bench, databases, "none", data)]
    for kind in kinds:
        runs.append(await history_ingest(bench, databases, kind, data))
    runs.append(await history_ingest(bench, databases, "none", data))
    return runs


def add_history_ingest_rows(bench: Bench, runs: Sequence[HistoryIngest]) -> None:
    nones = [r.run for r in runs if r.kind == "none"]
    reference = sum(n.rate for n in nones) / len(nones)
    reference_cpu = sum(r.cpu_written_us for r in runs if r.kind == "none") / len(nones)
    for r in runs:
        if r.kind == "none":
            continue
        label = f"--history {r.kind}"
        bench.add(
            Row(
                "history",
                f"ingest records/s, {label}",
                rate(r.run.rate),
                f"--history none {rate(reference)} ({' and '.join(rate(n.rate) for n in nones)})",
                ratio(r.run.rate, reference),
                "ratio ≥ 0.95",
                r.run.rate >= 0.95 * reference,
            )
        )
        against = ratio(r.cpu_written_us, reference_cpu)
        bench.add(
            Row(
                "history",
                f"ingest CPU per record, {label}",
                f"{r.cpu_written_us:.2f} µs ({r.run.cpu_us:.2f} µs until applied)",
                f"--history none {reference_cpu:.2f} µs",
                against,
                "≤ 1.03×",
                at_most(against, 1.03),
            )
        )
        health = r.drain.health
        written, dropped = (health.written, health.dropped) if health else (0, 0)
        left = (
            f"written {r.drain_seconds:.1f} s later"
            if r.drain.done
            else f"{health.backlog if health else '?'} still waiting {r.drain_seconds:.0f} s later"
        )
        bench.add(
            Row(
                "history",
                f"ingest history rows, {label}",
                f"{written:,} written, {dropped:,} dropped; {r.backlog:,} waited at the end, {left}",
                f"{r.records:,} records",
                ratio(written, r.records),
            )
        )


async def sustained_runs(
    bench: Bench, databases: HistoryDatabases, kinds: Sequence[HistoryKind]
) -> list[tuple[Sustained, list[float], list[float]]]:
    """Without a history before and after, and with each kind in between."""
    runs = [await sustained_run(bench, databases, "none")]
    for kind in kinds:
        runs.append(await sustained_run(bench, databases, kind))
    runs.append(await sustained_run(bench, databases, "none"))
    return runs


def add_sustained_rows(
    bench: Bench, runs: Sequence[tuple[Sustained, list[float], list[float]]]
) -> None:
    a = bench.args
    nones = [run for run, _, _ in runs if run.kind == "none"]
    # The reference: the latencies of both runs without a history, together.
    pooled = [x for run, away, _ in runs if run.kind == "none" for x in away]
    none_p50, none_p99 = percentile(pooled, 0.5), percentile(pooled, 0.99)
    none_max = max(pooled, default=float("nan"))
    none_all = percentile([x for run, _, every in runs if run.kind == "none" for x in every], 0.99)
    none_cpu = sum(n.server_cpu_share for n in nones) / len(nones)
    for run, _, _ in runs:
        if run.kind == "none":
            continue
        label = f"sustained {a.history_rate:,.0f} events/s × {a.history_seconds:g} s, {run.kind}"
        rows, dropped, peak = run.rows or 0, run.dropped or 0, run.peak_backlog or 0
        # Bounded: at most two seconds of events wait (a flush interval, and one write).
        bound = 2 * a.history_rate
        drain = (
            f"all written {run.drain_seconds:.1f} s after the last event"
            if run.drained
            else "NOT all written"
        )
        bench.add(
            Row(
                "history",
                f"{label}: history rows",
                f"{rows:,} rows ({rows / run.send_seconds:,.0f}/s), backlog max {peak:,},"
                f" {dropped:,} dropped, {drain}",
                f"{run.events:,} events offered ({run.events / run.send_seconds:,.0f}/s)",
                ratio(rows, run.events),
                f"every event written, backlog ≤ {bound:,.0f}, none dropped",
                run.drained and dropped == 0 and rows >= run.events and peak <= bound,
            )
        )
        bench.add(
            Row(
                "history",
                f"{label}: record → board ms p50/p99/max",
                f"{ms(run.p50_ms)}/{ms(run.p99_ms)}/{ms(run.max_ms)}"
                f" (all: p99 {ms(run.p99_all_ms)}), CPU {pct(run.server_cpu_share)}",
                f"--history none {ms(none_p50)}/{ms(none_p99)}/{ms(none_max)}"
                f" (all: p99 {ms(none_all)}), CPU {pct(none_cpu)}",
                ratio(run.p99_ms, none_p99),
                "p99 < 5 ms, every record seen",
                run.p99_ms < 5.0 and run.seen == run.events,
            )
        )
    for run, _, _ in runs:
        if run.seen < run.events:
            bench.note(
                f"history sustained {run.kind}: the board saw {run.seen:,} of {run.events:,}"
                " records"
            )


#: The month's report by agent per hour against the bare ``GROUP BY id, hour_start``.
HOURLY_RATIO = 1.5


def add_month_rows(bench: Bench, kind: HistoryKind, month: dict[str, Any]) -> None:
    size = f"{month['agents']} agents × {month['days']} days"
    if bench.args.quick and month["days"] < 30:
        size += " (--quick)"
    fill, rows = month["fill_seconds"], month["interval_rows"]
    bench.add(
        Row(
            "history",
            f"month fill, {size}, {kind}",
            f"{rows:,} interval rows in {fill:.0f} s ({rows / fill:,.0f}/s),"
            f" {month['bytes'] / 1e6:.0f} MB",
        )
    )
    for interval, words, bare in (
        ("day", "per day", "GROUP BY id"),
        ("1h", "per hour", "GROUP BY id, hour_start"),
    ):
        report = month[f"report_{interval}"]
        seconds, reference = report["seconds"], report["reference_seconds"]
        against = ratio(seconds, reference)
        if interval == "day":
            target, met = "< 1 s", seconds < 1.0
        else:
            target, met = f"≤ {HOURLY_RATIO:g}×", at_most(against, HOURLY_RATIO)
        bench.add(
            Row(
                "history",
                f"month report by agent {words}, {size}, {kind}",
                f"{seconds:.3f} s, {report['rows']:,} rows",
                f"bare SQL {bare} {reference:.3f} s, {report['reference_rows']:,} rows",
                against,
                target,
                met,
            )
        )
        sql = report.get("sql_seconds")
        if interval == "1h" and isinstance(sql, (int, float)):
            # The report's own statements, their rows only counted: how close it can come.
            bench.add(
                Row(
                    "history",
                    f"of which the report's SQL alone, {kind}: its figures and reasons read",
                    f"{sql:.3f} s, {report['sql_rows']:,} rows",
                    f"bare SQL {bare} {reference:.3f} s",
                    ratio(sql, reference),
                    "the lowest ratio while reading what the report shows",
                )
            )
    spans = month.get("write_1000_spans_seconds")
    if isinstance(spans, (int, float)):
        bench.add(
            Row(
                "history",
                f"one write of 1,000 state spans, {size}, {kind}",
                f"{1000 * spans:.1f} ms",
                "a second (1,000 events/s)",
                spans,
                "< 1 s",
                spans < 1.0,
            )
        )


# --- main -----------------------------------------------------------------------------------


# --- 8. soak -------------------------------------------------------------------------------------


@attrs.frozen
class Soaked:
    """One daemon's memory over a long, steady run."""

    label: str
    #: (seconds since the trickle started, RSS in KiB), one every ``soak_sample`` seconds.
    samples: list[tuple[float, int]]
    warmup: float
    records: int
    applied: int
    polls: int
    poll_errors: int
    clients: int
    connected: int

    def slope_mb_per_hour(self) -> float:
        """Least-squares slope of RSS over the samples after the warm-up, in MB an hour."""
        points = [(t, kib / 1024) for t, kib in self.samples if t >= self.warmup]
        if len(points) < 2:
            return float("nan")
        n = len(points)
        mean_t = sum(t for t, _ in points) / n
        mean_m = sum(m for _, m in points) / n
        spread = sum((t - mean_t) ** 2 for t, _ in points)
        if not spread:
            return float("nan")
        slope = sum((t - mean_t) * (m - mean_m) for t, m in points) / spread
        return slope * 3600

    def rss_after_warmup(self) -> tuple[float, float]:
        after = [kib / 1024 for t, kib in self.samples if t >= self.warmup] or [0.0]
        return after[0], after[-1]


def soak_warmup_seconds(now: float, minutes: float, closes: int) -> float:
    """The warm-up from ``now``, when the trickle starts: ``minutes`` at least, and a minute
    past the close of the ``closes``-th interval the trickle runs through whole.

    An interval is a quarter hour, when the daemon closes one (quarter hours
    fall alike in every time zone whose offset is a whole number of quarter
    hours). The interval under way at ``now`` is not counted: its close may
    come a moment after the trickle starts, holding almost none of it.
    """
    warmup = minutes * 60
    if closes > 0:
        first = -(-now // INTERVAL_SECONDS) * INTERVAL_SECONDS  # the next quarter hour
        warmup = max(warmup, first + closes * INTERVAL_SECONDS + 60 - now)
    return warmup


async def soak_one(bench: Bench, label: str, extra: Sequence[str]) -> Soaked:
    """A daemon fed ``soak_rate`` records/s for ``soak_minutes``, with its audience."""
    a = bench.args
    floor = Floor(a.soak_agents)
    name = bench.name(f"soak-{label}")

    def argv(port: int) -> list[str]:
        return daemon_argv(port, bench.workdir / f"{name}.json", "info", None, extra)

    server = await start_server(name, argv, bench.workdir, bench.placement)
    trickle = Trickle(server, floor, a.soak_rate)
    bursts = LoopingCall(lambda: server.feed(floor.burst()))
    audience: Audience | None = None
    polls = [0, 0]

    async def poll_once() -> None:
        try:
            got = await http_get(server.url("/mitel_data.json"), timeout=10)
            polls[0 if got.code == 200 else 1] += 1
        except Exception:
            polls[1] += 1

    pollers = [
        LoopingCall(lambda: Deferred.fromCoroutine(poll_once())) for _ in range(a.soak_pollers)
    ]
    samples: list[tuple[float, int]] = []
    try:
        await fed_floor(server, floor.setup())
        audience = Audience(server.port, a.soak_clients, 0, serials_in_json)
        await audience.open(timeout=120)
        trickle.start()
        bursts.start(15.0, now=False)
        for poller in pollers:
            poller.start(1.0, now=False)
            await sleep(1.0 / max(1, a.soak_pollers))
        started = time.monotonic()
        warmup = soak_warmup_seconds(time.time(), a.soak_warmup, a.soak_closes)
        end = started + warmup + a.soak_minutes * 60
        while time.monotonic() < end:
            samples.append((time.monotonic() - started, server.child.rss_kib()))
            await sleep(min(a.soak_sample, max(0.0, end - time.monotonic())))
        samples.append((time.monotonic() - started, server.child.rss_kib()))
        trickle.stop()
        for poller in pollers:
            if poller.running:
                poller.stop()
        feed = await wait_applied(server, server.sent, timeout=120)
        delivery = audience.delivery()
        return Soaked(
            label,
            samples,
            warmup,
            server.sent,
            records_applied({"feed": feed}),
            polls[0],
            polls[1],
            delivery.clients,
            delivery.connected,
        )
    finally:
        trickle.stop()
        if bursts.running:
            bursts.stop()
        for poller in pollers:
            if poller.running:
                poller.stop()
        if audience is not None:
            audience.close()
        server.stop()


async def phase_soak(bench: Bench) -> None:
    """Memory over a long run: the default history (SQLite) beside ``--history none``.

    Both daemons run at once, so that they share the machine's weather.
    """
    a = bench.args
    runs = await defer.gatherResults(
        [
            Deferred.fromCoroutine(soak_one(bench, "sqlite", [])),
            Deferred.fromCoroutine(soak_one(bench, "none", ["--history", "none"])),
        ],
        consumeErrors=True,
    )
    history, none = runs
    reference = none.slope_mb_per_hour()
    for run in (history, none):
        slope = run.slope_mb_per_hour()
        first, last = run.rss_after_warmup()
        what = "default history (SQLite)" if run is history else "--history none"
        bench.add(
            Row(
                "soak",
                f"RSS slope after warm-up, {what}",
                f"{slope:+.2f} MB/h ({first:.1f} -> {last:.1f} MB, {len(run.samples)} samples)",
                f"--history none {reference:+.2f} MB/h" if run is history else "",
                None,
                "< 1 MB/h",
                slope < 1.0,
            )
        )
        bench.add(
            Row(
                "soak",
                f"records applied, polls, event clients, {what}",
                f"{run.applied:,} of {run.records:,}; {run.polls:,} polls"
                f" ({run.poll_errors} failed); {run.connected} of {run.clients} connected",
                "",
                None,
                "every record, every poll, every client",
                run.applied == run.records and not run.poll_errors and run.connected == run.clients,
            )
        )
    bench.results["soak"] = {r.label: attrs.asdict(r) for r in (history, none)}
    bench.legend["soak"] = (
        f"{a.soak_agents:,} agents, {a.soak_rate:g} records/s one per write, a K/Q/R burst"
        f" every 15 s, {a.soak_clients} event stream clients, {a.soak_pollers} boards polling"
        f" /mitel_data.json once a second; RSS every {a.soak_sample:g} s, slope by least"
        f" squares over {a.soak_minutes:g} min after a warm-up of {history.warmup / 60:.1f} min"
        f" (at least {a.soak_warmup:g} min, and through the closes of {a.soak_closes} whole"
        " intervals);"
        " both daemons at once"
    )


# --- broker: records through Mosquitto, beside the same records read directly ----------------


def relayed_records(feed_document: dict[str, Any]) -> tuple[int, int, float | None]:
    """Records a central daemon applied over every source, duplicates, and its last record."""
    sources = feed_document["feed"].get("sources") or {}
    applied = sum(
        sum(view["records_by_code"].values()) + view["unparsable_records"]
        for view in sources.values()
    )
    duplicates = sum(view["sequence_duplicates"] for view in sources.values())
    last = max(
        (t for view in sources.values() if (t := wall_time(view["last_record_at"]))),
        default=None,
    )
    return applied, duplicates, last


async def wait_feed(
    server: Server, ready: Callable[[dict[str, Any]], bool], timeout: float = 30.0
) -> None:
    """Poll ``/api/v1/feed`` until ``ready`` says so of its feed object."""
    deadline = time.monotonic() + timeout
    while True:
        feed = json.loads((await http_get(server.url("/api/v1/feed"))).body)["feed"]
        if ready(feed):
            return
        if time.monotonic() > deadline:
            raise BenchError(f"{server.child.name} not ready in {timeout:g} s: {feed}")
        await sleep(0.1)


async def phase_broker(bench: Bench) -> None:
    from mitelacd.testing.mosquitto import MosquittoBroker, MosquittoMissing

    a = bench.args
    count = a.broker_records
    floor = Floor(a.ingest_agents)
    data = Sequencer().stamp(floor.mix(count))
    try:
        broker = MosquittoBroker()
    except MosquittoMissing as e:
        raise BenchError(f"{e}: the broker phase needs Mosquitto") from None
    broker.start()
    url = f"mqtt://127.0.0.1:{broker.port}/bench"
    limit = 60 + count / 1_000
    try:
        folder = bench.workdir / bench.name("broker-central")
        folder.mkdir()

        def central_argv(_: int) -> list[str]:
            argv = daemon_argv(0, folder / "mitel_data.json", "info", None, ["--history", "none"])
            at = argv.index("--host")
            return argv[:at] + ["--source", f"site={url}"] + argv[at + 4 :]

        central = await start_server(
            bench.name("broker-central"), central_argv, bench.workdir, bench.placement, False
        )
        await wait_feed(central, lambda feed: feed["sources"]["site"]["connected"])
        site = await start_shipped(bench, "broker-site", ["--mqtt", url, "--history", "none"])
        await wait_feed(site, lambda feed: feed["mqtt"]["connected"])
        assert site.link is not None
        started = await site.link.stream(data)
        direct = await wait_applied(site, count, limit)
        direct_at = wall_time(direct.get("last_record_at")) or time.time()
        deadline = time.monotonic() + limit
        while True:
            doc = json.loads((await http_get(central.url("/api/v1/feed"))).body)
            applied, duplicates, central_at = relayed_records(doc)
            if applied >= count or time.monotonic() > deadline:
                break
            await sleep(0.05)
        central_at = central_at or time.time()
    finally:
        broker.close()
    direct_rate = count / max(1e-6, direct_at - started)
    broker_rate = count / max(1e-6, central_at - started)
    bench.results["broker"] = {
        "records": count,
        "direct_rate": direct_rate,
        "broker_rate": broker_rate,
        "central_applied": applied,
        "central_duplicates": duplicates,
    }
    bench.legend["broker"] = (
        f"{count:,} records ({a.ingest_agents:,} agents) in 4 KiB writes to a site daemon"
        " (--mqtt, --history none) → Mosquitto on 127.0.0.1 → a central daemon"
        " (--source site=mqtt://...); first byte to the last record applied at each"
    )
    bench.add(
        Row(
            "broker",
            "records/s through the broker, to the central daemon",
            rate(broker_rate),
            f"read directly by the site daemon {rate(direct_rate)}",
            ratio(broker_rate, direct_rate),
        )
    )
    bench.add(
        Row(
            "broker",
            "records the central daemon applied, each once",
            f"{applied:,} of {count:,}, {duplicates} duplicates",
            "",
            None,
            "all, once",
            applied == count and duplicates == 0,
        )
    )


PHASE_RUNNERS: dict[str, Callable[[Bench], Coroutine[Any, Any, None]]] = {
    "ingest": phase_ingest,
    "ingestcpu": phase_ingestcpu,
    "polls": phase_polls,
    "freshness": phase_freshness,
    "pollfresh": phase_pollfresh,
    "footprint": phase_footprint,
    "perchange": phase_perchange,
    "deployed": phase_deployed,
    "history": phase_history,
    "soak": phase_soak,
    "broker": phase_broker,
}


def budget(phase: str, a: argparse.Namespace) -> float:
    """The hard time limit of a phase, in seconds: far above what it takes."""
    # Options come as Any from argparse: float() says what they make.
    if phase == "ingest":
        return float(3 * (60 + a.ingest_records / 10_000))
    if phase == "ingestcpu":
        return float(3 * a.cpu_rounds * (90 + a.cpu_records / 5_000))
    if phase == "polls":
        return float(90 + 6 * a.poll_repeats * (a.wrk_seconds + 40))
    if phase == "freshness":
        runs = len(a.fresh_agents) * a.fresh_rounds * (1 + len(a.push_intervals))
        return float(runs * (a.fresh_seconds + 120))
    if phase == "pollfresh":
        return float(2 * (a.pollfresh_records * a.pollfresh_interval + 90))
    if phase == "footprint":
        idle = 3 * (90 + max(a.footprint_agents, default=0) / 200)
        return float(len(a.footprint_agents) * (idle + 3 * (a.footprint_seconds + 150)))
    if phase == "deployed":
        big = max(a.deployed_agents, default=0)
        writes = a.deployed_records * 30 / 4096 / a.deployed_writes
        each = 180 + big / 200 + a.deployed_changes / a.deployed_rate + writes
        return float(a.deployed_rounds * 3 * each)
    if phase == "history":
        stores = len(a.history_stores)
        ingest = (2 + stores) * (90 + a.history_records / 5_000)
        sustained = (1 + stores) * (a.history_seconds + 150)
        return float(ingest + sustained + (1 + stores) * month_timeout(a))
    if phase == "soak":
        return float((a.soak_minutes + a.soak_warmup) * 60 + (a.soak_closes + 1) * 900 + 660)
    if phase == "broker":
        return float(300 + 3 * a.broker_records / 1_000)
    return len(a.change_agents) * 250


async def run_phase(bench: Bench, phase: str) -> None:
    limit = bench.args.time_limit or budget(phase, bench.args)
    print(f"== {phase} (at most {limit:.0f} s)", flush=True)
    started = time.monotonic()
    try:
        await Deferred.fromCoroutine(PHASE_RUNNERS[phase](bench)).addTimeout(limit, reactor)
    except Exception as e:
        if isinstance(e, defer.TimeoutError):
            detail = f"hard time limit of {limit:.0f} s reached"
        else:
            detail = "".join(traceback.format_exception_only(type(e), e)).strip()
        bench.errors[phase] = detail
        print(f"  {phase} FAILED: {detail}", flush=True)
        if not isinstance(e, (BenchError, defer.TimeoutError)):
            traceback.print_exc()
        bench.add(Row(phase, "phase failed", detail.splitlines()[0][:100]))
    finally:
        stop_all()
        print(f"   {phase}: {time.monotonic() - started:.0f} s", flush=True)


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "twisted": twisted_version,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg(),
    }


async def run(bench: Bench, phases: Sequence[str]) -> None:
    started, wall = time.monotonic(), datetime.datetime.now().astimezone()
    report_machine = machine()
    if any(p in ("polls", "footprint") for p in phases):
        bench.wrk = ensure_wrk()
        if bench.wrk is None:
            bench.note("wrk is missing and could not be installed: polls and footprint fail")
    for phase in phases:
        await run_phase(bench, phase)
    elapsed = time.monotonic() - started
    print()
    print_table(bench.rows)
    print()
    for phase, text in bench.legend.items():
        print(f"{phase}: {text}")
    for text in bench.notes:
        print(f"note: {text}")
    report = {
        "started": wall.isoformat(timespec="seconds"),
        "seconds": round(elapsed, 1),
        "command": " ".join(["python", *sys.argv]),
        "machine": report_machine | {"loadavg_after": os.getloadavg()},
        "placement": bench.placement.describe(),
        "features": attrs.asdict(bench.features),
        "options": vars(bench.args),
        "rows": [attrs.asdict(r) for r in bench.rows],
        "legend": bench.legend,
        "results": bench.results,
        "notes": bench.notes,
        "errors": bench.errors,
    }
    path = Path(bench.args.json)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nreport: {path.resolve()}")
    print(f"took {elapsed:.0f} s ({bench.placement.describe()})")


def int_list(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="smaller and shorter (a smoke test)")
    parser.add_argument("--only", help=f"comma-separated phases out of: {', '.join(PHASES)}")
    parser.add_argument("--json", default=str(HERE / "report.json"), help="where the report goes")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder and logs")
    parser.add_argument(
        "--no-pin", action="store_true", help="do not pin server and clients to CPUs"
    )
    parser.add_argument(
        "--time-limit", type=float, help="hard limit of each phase, seconds (default: by its sizes)"
    )
    sizes = parser.add_argument_group("sizes (defaults: full run / --quick)")
    for key, value in FULL.items():
        kind: Callable[[str], Any]
        if isinstance(value, list):
            kind = int_list if isinstance(value[0], int) else lambda s: s.split(",")
            shown = ",".join(str(v) for v in value)
        else:
            kind, shown = type(value), str(value)
        sizes.add_argument(
            "--" + key.replace("_", "-"),
            type=kind,
            default=None,
            help=f"{shown} / {','.join(map(str, QUICK[key])) if isinstance(QUICK[key], list) else QUICK[key]}",
        )
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.phases = [p for p in (args.only or ",".join(PHASES)).split(",") if p]
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases {sorted(unknown)}; they are {', '.join(PHASES)}")
    stores = set(args.history_stores) - set(HISTORY_STORES)
    if stores:
        parser.error(
            f"unknown history stores {sorted(stores)}; they are {', '.join(HISTORY_STORES)}"
        )
    return args


def main(reactor_: Any, *argv: str) -> Deferred[None]:
    args = parse_args(argv)
    placement = Placement.plan(not args.no_pin)
    placement.pin_bench()
    workdir = Path(tempfile.mkdtemp(prefix="mitelacd-bench-"))
    atexit.register(stop_all)
    if not args.keep:
        atexit.register(shutil.rmtree, workdir, True)
    features = Features.probe()
    bench = Bench(args, workdir, placement, features)
    print(f"mitelacd benchmarks ({'quick' if args.quick else 'full'}), {placement.describe()}")
    print(f"scratch folder {workdir}{' (kept)' if args.keep else ''}", flush=True)
    return Deferred.fromCoroutine(run(bench, args.phases))


if __name__ == "__main__":
    react(main, sys.argv[1:])
