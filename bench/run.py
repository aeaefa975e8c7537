"""Every benchmark of mitelacd, each figure beside a bare Twisted reference from the same run.

The machine these run on is shared and noisy, so no figure stands alone: each
is printed with a reference measured in the same run on the same machine, and
as a ratio to it. The daemon runs as ``twistd mitelacd`` child processes fed
by a fake PBX socket in this process; the references are the small scripts
next to this one (``bare_ingest.py``, ``bare_web.py``, ``bare_relay.py``).
Everything is on 127.0.0.1, on ports the system picks; every phase has a
hard time limit. From the repository root::

    python bench/run.py                  # everything, about 4 to 5 minutes
    python bench/run.py --quick          # smaller and shorter: a smoke test
    python bench/run.py --only polls,footprint --wrk-seconds 10

Phases (``--only`` takes these names):

``ingest``
    1,000,000 records of a realistic mix in 4 KiB writes as fast as the socket
    takes them; records/s from the first byte until ``/api/v1/feed`` counts
    them all, with the journald logger at ``--log-level info`` and ``warn``.
    Reference: a bare ``LineReceiver`` with the same framing.
``polls``
    wrk on ``/mitel_data.json`` (200, and 304 with If-None-Match) and
    ``/api/v1/state`` against a floor of 2,000 agents changing 20 times a
    second: req/s and server CPU per request. Reference: a bare
    ``twisted.web`` resource serving the same bytes.
``freshness``
    A record on the PBX socket to the event at 200 event stream boards, at
    1,000 records/s over 2,000 and 10,000 agents: latency p50/p99/max and
    whether every board got every event. Reference: a bare relay of each
    record to every board.
``pollfresh``
    A record to the first answer that shows it, for boards polling
    ``/api/v1/agents/<id>`` back to back. Reference: the relay's last record.
``footprint``
    RSS and CPU share with 200 event stream boards and 100 boards polling
    ``/api/v1/state`` once a second, the floor changing 20 times a second.
    References: the bare resource under the same polling, the relay's RSS.
``perchange``
    In-process cost of one change, from ``bench/change_cost.py`` when it
    exists (``measure(agents, records) -> dict``); beside it, what the
    ``/metrics`` listener alone costs per change, and the whole change
    without it.

A table is printed at the end and a JSON report written (``--json``).
Targets are printed beside the figures, never asserted.
"""

from __future__ import annotations

import argparse
import atexit
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

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
    percentile,
    reactor,
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
from twisted.internet.task import react

PHASES = ("ingest", "polls", "freshness", "pollfresh", "footprint", "perchange")

#: Sizes and lengths of a full run, and of ``--quick``; each has its option.
FULL: dict[str, Any] = {
    "ingest_records": 1_000_000,
    "ingest_agents": 2000,
    "floor_agents": 2000,
    "trickle_rate": 20.0,
    "wrk_seconds": 5.0,
    "wrk_connections": 50,
    "poll_repeats": 2,
    "sse_clients": 200,
    "measuring_clients": 20,
    "fresh_agents": [2000, 10000],
    "fresh_rate": 1000.0,
    "fresh_seconds": 5.0,
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
}
QUICK: dict[str, Any] = {
    **FULL,
    "ingest_records": 100_000,
    "wrk_seconds": 2.0,
    "wrk_connections": 20,
    "poll_repeats": 1,
    "fresh_agents": [2000],
    "fresh_seconds": 2.0,
    "push_intervals": ["default"],
    "pollfresh_records": 60,
    "footprint_agents": [2000],
    "footprint_seconds": 4.0,
    "change_records": 2000,
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
            from mitelacd.push import DEFAULT_PUSH_INTERVAL

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

    async def start(self, bench: Bench, tag: str) -> Server:
        name = bench.name(f"{tag}-{self.kind}")
        if self.kind == "daemon":
            level = self.log_level if bench.features.log_level else None
            push = self.push_interval if bench.features.push_interval else None

            def argv(port: int) -> list[str]:
                return daemon_argv(port, bench.workdir / f"{name}.json", level, push)

        else:

            def argv(port: int) -> list[str]:
                return bare_argv("bare_relay.py", "--pbx-port", str(port))

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
        " daemon and bare in turn; server CPU from /proc;"
        " req/s ratio = daemon/bare, CPU ratio = capacity = bare/daemon"
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
        capacity = ratio(b.cpu_us, d.cpu_us)
        bench.add(
            Row(
                "polls",
                f"{case.label}: CPU per request",
                f"{d.cpu_us:.0f} µs",
                f"bare {b.cpu_us:.0f} µs",
                capacity,
                "capacity ≥ 0.9",
                capacity is not None and capacity >= 0.9,
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
        relay = await fresh_run(bench, RELAY, agents)
        results[f"{agents}/relay"] = attrs.asdict(relay)
        for target in targets:
            run = await fresh_run(bench, target, agents)
            results[f"{agents}/{target.label}"] = attrs.asdict(run)
            add_freshness_rows(bench, agents, target, run, relay)
    bench.results["freshness"] = results
    bench.legend["fresh"] = (
        f"record on the PBX socket → SSE event at {a.sse_clients} boards on /api/v1/events"
        f" ({a.measuring_clients} timing), {a.fresh_rate:g} records/s for {a.fresh_seconds:g} s"
        " over N agents logged in; CPU = server's share of a core; ratio = p99/relay p99;"
        " delivered = records seen by every timing board, and boards with every event"
    )


def add_freshness_rows(
    bench: Bench, agents: int, target: Target, run: Freshness, relay: Freshness
) -> None:
    goal = p99_target(agents)
    phase = f"fresh {agents:,}"
    if "delta" not in run.kinds:
        bench.note(
            f"{target.label}: no 'event: delta' on /api/v1/events, only {sorted(run.kinds)}:"
            " latencies are to whole-state events"
        )
    if run.bench_cpu_share > 0.9:
        bench.note(
            f"{phase} {target.label}: the bench itself used {pct(run.bench_cpu_share)} of a core:"
            " its own delay is in the latencies"
        )
    bench.add(
        Row(
            phase,
            f"{target.label}: ms p50/p99/max",
            f"{ms(run.p50_ms)}/{ms(run.p99_ms)}/{ms(run.max_ms)}, CPU {pct(run.server_cpu_share)}",
            f"relay {ms(relay.p50_ms)}/{ms(relay.p99_ms)}/{ms(relay.max_ms)},"
            f" CPU {pct(relay.server_cpu_share)}",
            ratio(run.p99_ms, relay.p99_ms),
            f"p99 < {goal:g} ms, all delivered" if goal else "",
            (run.p99_ms < goal and run.delivered) if goal else None,
        )
    )
    bench.add(
        Row(
            phase,
            f"{target.label}: delivered",
            describe_delivery(run),
            f"relay {pct(relay.seen_by_all)}, {relay.complete}/{relay.clients}",
            ratio(run.seen_by_all, relay.seen_by_all),
            "all, to all",
            run.delivered,
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
    rss_kib: int
    peak_rss_kib: int
    clients: int
    connected: int


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
        polled = await boards_load(bench, server) if with_boards else None
        if polled is None:
            await sleep(a.footprint_seconds)
        share = before.share_until(server.child.usage())
        delivery = audience.delivery()
        body = b""
        if target.kind == "daemon":
            body = (await http_get(server.url("/api/v1/state"))).body
        result = Footprint(
            polled,
            share,
            server.child.rss_kib(),
            server.child.peak_rss_kib(),
            delivery.clients,
            delivery.connected,
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
        polled = await boards_load(bench, server)
        share = before.share_until(server.child.usage())
        return Footprint(polled, share, server.child.rss_kib(), server.child.peak_rss_kib(), 0, 0)
    finally:
        server.stop()


async def phase_footprint(bench: Bench) -> None:
    a = bench.args
    results: dict[str, Any] = {}
    for agents in a.footprint_agents:
        daemon, state = await footprint_with_audience(bench, DAEMON, agents, with_boards=True)
        web = await footprint_bare_web(bench, agents, state)
        relay, _ = await footprint_with_audience(bench, RELAY, agents, with_boards=False)
        results[str(agents)] = {
            "state_bytes": len(state),
            "daemon": attrs.asdict(daemon),
            "bare_web": attrs.asdict(web),
            "relay": attrs.asdict(relay),
        }
        add_footprint_rows(bench, agents, daemon, web, relay)
    bench.results["footprint"] = results
    bench.legend["footprint"] = (
        f"N agents, {a.sse_clients} boards on /api/v1/events, {a.boards} boards polling"
        f" /api/v1/state once a second (wrk), {a.trickle_rate:g} changes/s, {a.footprint_seconds:g} s;"
        " bare = twisted.web resource with the same state bytes and boards;"
        f" relay = bare relay with the {a.sse_clients} event stream boards; ratio = daemon/bare"
    )


def add_footprint_rows(
    bench: Bench, agents: int, daemon: Footprint, web: Footprint, relay: Footprint
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
            f"bare {pct(web.cpu_share)}",
            ratio(daemon.cpu_share, web.cpu_share),
            "< 20 % of a core" if at_goal else "",
            daemon.cpu_share < 0.2 if at_goal else None,
        )
    )
    bench.add(
        Row(
            phase,
            "daemon RSS (peak)",
            f"{mb(daemon.rss_kib)} ({mb(daemon.peak_rss_kib)})",
            f"bare {mb(web.rss_kib)}, relay {mb(relay.rss_kib)}",
            ratio(daemon.rss_kib, web.rss_kib),
            "< 100 MB" if at_goal else "",
            daemon.rss_kib < 100 * 1024 if at_goal else None,
        )
    )
    if daemon.connected < daemon.clients:
        bench.note(f"{phase}: {daemon.clients - daemon.connected} event stream boards were dropped")


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
    bench.results["perchange"] = results
    bench.legend["perchange"] = (
        f"bench/change_cost.py measure(agents, {a.change_records:,}), in its own process;"
        " ratio = figure/its reference"
    )


# --- main -----------------------------------------------------------------------------------

PHASE_RUNNERS: dict[str, Callable[[Bench], Coroutine[Any, Any, None]]] = {
    "ingest": phase_ingest,
    "polls": phase_polls,
    "freshness": phase_freshness,
    "pollfresh": phase_pollfresh,
    "footprint": phase_footprint,
    "perchange": phase_perchange,
}


def budget(phase: str, a: argparse.Namespace) -> float:
    """The hard time limit of a phase, in seconds: far above what it takes."""
    # Options come as Any from argparse: float() says what they make.
    if phase == "ingest":
        return float(3 * (60 + a.ingest_records / 10_000))
    if phase == "polls":
        return float(90 + 6 * a.poll_repeats * (a.wrk_seconds + 40))
    if phase == "freshness":
        runs = len(a.fresh_agents) * (1 + len(a.push_intervals))
        return float(runs * (a.fresh_seconds + 120))
    if phase == "pollfresh":
        return float(2 * (a.pollfresh_records * a.pollfresh_interval + 90))
    if phase == "footprint":
        return float(len(a.footprint_agents) * 3 * (a.footprint_seconds + 150))
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
    parser.add_argument("--only", help=f"comma-separated phases out of {','.join(PHASES)}")
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
