"""The faults a site really has, each reproduced against a real ``twistd mitelacd``.

Every fault starts its own daemon (the installed ``twistd``, fed by a fake
PBX socket in this process, on 127.0.0.1 and ports the system picks) and
prints one line: ``held`` or ``NOT HELD``, and what was seen. From the
repository root::

    python bench/faults.py                 # every fault, about 3 minutes
    python bench/faults.py --only reset,silent

The clock-step fault runs the daemon under Debian's ``libfaketime`` (the
``libfaketime`` package), which moves its system clock and leaves its
monotonic clock alone; without it that fault says so and is not run. The
exit status is the number of faults not held.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import resource
import shutil
import socket
import sqlite3
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import attrs
from common import (
    TWISTD,
    BenchError,
    Child,
    Floor,
    Placement,
    Server,
    daemon_argv,
    http_get,
    reactor,
    sleep,
    start_server,
    stop_all,
    wait_until,
)
from twisted.internet.defer import Deferred
from twisted.internet.task import react

from mitelacd.sim.service import encode_call_event, encode_refresh

#: Where Debian's libfaketime is.
FAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


@attrs.frozen
class Outcome:
    held: bool
    detail: str


@attrs.define
class Faults:
    workdir: Path
    extra_env: dict[str, str] = attrs.Factory(dict)
    _names: int = 0

    def name(self, tag: str) -> str:
        self._names += 1
        return f"{self._names:02d}-{tag}"

    async def daemon(
        self,
        tag: str,
        extra: Sequence[str] = (),
        env: dict[str, str] | None = None,
        prefix: Sequence[str] = (),
    ) -> Server:
        name = self.name(tag)

        def argv(port: int) -> list[str]:
            args = daemon_argv(port, self.workdir / f"{name}.json", "info", None, extra)
            return [*prefix, *args]

        saved = dict(os.environ)
        os.environ.update(env or {})
        try:
            return await start_server(
                name, argv, self.workdir, Placement(None, None)
            )  # nothing timed, nothing pinned
        finally:
            os.environ.clear()
            os.environ.update(saved)


def call(
    code: str, agent: str, dn: str = "2001", button: int = 1, path: str | None = None
) -> bytes:
    when = datetime.datetime.now().replace(microsecond=0)
    return encode_call_event(0, code, when, dn, agent, button, path)


async def feed_doc(server: Server) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((await http_get(server.url("/api/v1/feed"))).body)
    return doc


async def agents(server: Server) -> dict[str, Any]:
    doc = json.loads((await http_get(server.url("/api/v1/agents"))).body)
    return {a["id"]: a for a in doc["agents"]}


def data_file(server: Server) -> dict[str, Any]:
    path = Path(server.child.argv[server.child.argv.index("--file") + 1])
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def log_text(server: Server) -> str:
    return server.child.log_path.read_text("utf-8", "replace")


async def settle(server: Server, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        feed = (await feed_doc(server))["feed"]
        if sum(feed["records_by_code"].values()) + feed["unparsable_records"] >= count:
            return
        await sleep(0.05)
    raise BenchError(f"{server.child.name} did not take in {count} records in {timeout:g} s")


# --- the faults ---------------------------------------------------------------------------------


async def long_field(f: Faults) -> Outcome:
    """A well-framed record with a 20-digit tail (and a G whose key is 20 digits)."""
    server = await f.daemon("long-field")
    try:
        when = datetime.datetime.now().strftime("%H%M%S")
        server.feed([call("A", "1001"), call("A", "1002")])
        server.link.send(  # type: ignore[union-attr]
            f"\x0277E{when}2001   1001   99999999999999999999\r\n".encode()
            + f"\x0278G{when}2002   1002   99999999999999999999860\r\n".encode()
        )
        server.sequencer.records += 2
        server.feed([call("G", "1002", "2002", 1, "860")])
        await settle(server, 5)
        feed = (await feed_doc(server))["feed"]
        floor = await agents(server)
        await sleep(2.5)  # the history writes once a second
        history = (await feed_doc(server))["feed"].get("history") or {}
        held = (
            feed["unparsable_records"] == 2
            and not floor["1001"]["make_busy"]
            and floor["1002"]["status"] == "busy"
            and history.get("ok", True)
            and not history.get("dropped_rows")
        )
        return Outcome(
            held,
            f"{feed['unparsable_records']} records unreadable, agent 1001"
            f" {floor['1001']['status']}, 1002 {floor['1002']['status']},"
            f" history ok={history.get('ok')} dropped={history.get('dropped_rows')}",
        )
    finally:
        server.stop()


async def clock_step(f: Faults) -> Outcome:
    """The system clock steps back an hour, then forward again."""
    if not FAKETIME.exists():
        return Outcome(False, f"not run: {FAKETIME} is missing (Debian's libfaketime)")
    offset_file = f.workdir / "faketime"
    offset_file.write_text("+0\n")
    env = {
        "LD_PRELOAD": str(FAKETIME),
        "FAKETIME_TIMESTAMP_FILE": str(offset_file),
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "DONT_FAKE_MONOTONIC": "1",
    }
    server = await f.daemon("clock-step", env=env)
    try:
        reader = await open_stream(server, "/api/v1/events?full=1")
        server.feed([call("A", "1001")])
        await settle(server, 1)
        seen = []
        for step, code, status in (("-3600", "G", "busy"), ("+0", "J", "idle")):
            offset_file.write_text(step + "\n")
            await sleep(0.2)
            states_before = reader.count(b"event: state")
            path = "860" if code == "G" else None
            server.feed([call(code, "1001", path=path)])
            started = time.monotonic()
            try:
                await wait_until(
                    lambda s=status: data_file(server)["agents"].get("1001") == s,  # type: ignore[misc]
                    5.0,
                    "the file to be written",
                )
                await wait_until(
                    lambda b=states_before: reader.count(b"event: state") > b,  # type: ignore[misc]
                    5.0,
                    "a ?full=1 client to be sent the state",
                )
                seen.append(f"{step} s: file and ?full=1 in {time.monotonic() - started:.1f} s")
            except BenchError:
                return Outcome(False, f"{step} s: nothing written or pushed in 5 s")
        health = await http_get(server.url("/healthz"))
        return Outcome(True, "; ".join(seen) + f"; /healthz {health.code}")
    finally:
        server.stop()


async def reset_mid_record(f: Faults) -> Outcome:
    """A reset while a record is half sent, after a whole one."""
    server = await f.daemon("reset", ["--retry-delay", "0.2"])
    try:
        when = datetime.datetime.now().strftime("%H%M%S")
        link = server.link
        assert link is not None
        link.send(f"\x0201A{when}2001   1633   00\r\n\x0202A{when}2002   16".encode())
        await sleep(0.8)  # longer than the idle flush
        link.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        link.sock.close()
        assert server.pbx is not None
        server.link = await server.pbx.accept(10)
        await sleep(0.5)
        feed = (await feed_doc(server))["feed"]
        floor = await agents(server)
        held = sorted(floor) == ["1633"] and feed.get("records_cut") == 1
        return Outcome(held, f"agents {sorted(floor)}, records_cut {feed.get('records_cut')}")
    finally:
        server.stop()


async def silent_pbx(f: Faults) -> Outcome:
    """The PBX stops sending, the link stays up."""
    server = await f.daemon("silent")
    try:
        server.feed([call("A", "1001")])
        await settle(server, 1)
        started = time.monotonic()
        while time.monotonic() - started < 60:
            health = await http_get(server.url("/healthz"))
            if health.code == 503:
                took = time.monotonic() - started
                reason = json.loads(health.body).get("reason")
                return Outcome(took <= 40, f"/healthz 503 ({reason}) after {took:.0f} s of silence")
            await sleep(0.5)
        return Outcome(False, "/healthz still 200 after 60 s of silence")
    finally:
        server.stop()


async def path_under_way(f: Faults) -> Outcome:
    """Six seconds into a call, the path's talk time."""
    server = await f.daemon("path-under-way", ["--history", "none"])
    try:
        server.feed([call("A", "1001"), call("G", "1001", path="860")])
        await settle(server, 2)
        await sleep(6)
        body = (await http_get(server.url("/api/v1/reports/today/paths"))).body
        rows = {r["id"]: r for r in json.loads(body)["paths"]}
        talk = rows.get("860", {}).get("acd_talk_seconds", 0)
        return Outcome(talk >= 5, f"path 860 talk {talk} s six seconds into the call")
    finally:
        server.stop()


async def bad_dates(f: Faults) -> Outcome:
    """An R date with month 13, then one going back."""
    server = await f.daemon("bad-dates", ["--history", "none"])
    try:
        now = datetime.datetime.now().replace(microsecond=0)
        good = encode_refresh(0, now)
        server.feed([good])
        today = now.strftime("%Y%m%d").encode()
        server.feed([good.replace(today, now.strftime("%Y13%d").encode())])
        server.feed(
            [good.replace(today, (now - datetime.timedelta(days=3)).strftime("%Y%m%d").encode())]
        )
        await settle(server, 3)
        feed = (await feed_doc(server))["feed"]
        warned = len(re.findall("the PBX sent the date", log_text(server)))
        refused = feed.get("pbx_dates_refused")
        return Outcome(refused == 2 and warned == 2, f"{refused} dates refused, {warned} warnings")
    finally:
        server.stop()


async def headers(f: Faults) -> Outcome:
    """A 404 for a path with markup in it; the answers' nosniff header."""
    server = await f.daemon("headers", ["--history", "none"])
    try:
        missing = await http_get(server.url("/api/v1/%3Cscript%3Ealert(1)%3C%2Fscript%3E"))
        state = await http_get(server.url("/api/v1/state"))
        echoed = b"script" in missing.body
        sniff = [r.headers.get("x-content-type-options") for r in (missing, state)]
        held = not echoed and sniff == ["nosniff", "nosniff"]
        return Outcome(held, f"404 echoes the path: {echoed}; nosniff: {sniff}")
    finally:
        server.stop()


async def redial_jitter(f: Faults) -> Outcome:
    """A PBX that refuses: every wait between attempts stays under --max-retry-delay."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    name = f.name("redial")
    argv = daemon_argv(port, f.workdir / f"{name}.json", "info", None)
    argv += ["--retry-delay", "0.5", "--max-retry-delay", "2", "--history", "none"]
    child = Child(name, argv, f.workdir)
    try:
        await sleep(20)
        delays = [float(d) for d in re.findall(r"retrying \S+ in ([\d.]+) s", log_text_of(child))]
        top = max(delays, default=0.0)
        return Outcome(
            bool(delays) and top <= 2.0,
            f"{len(delays)} attempts, longest wait {top:.2f} s (cap 2 s)",
        )
    finally:
        child.stop()


def log_text_of(child: Child) -> str:
    return child.log_path.read_text("utf-8", "replace")


async def slow_readers(f: Faults) -> Outcome:
    """50 event stream clients that never read, while the floor changes fast."""
    server = await f.daemon("slow-readers", ["--history", "none"])
    socks: list[socket.socket] = []
    try:
        for _ in range(50):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", server.port))
            s.sendall(
                f"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode()
            )
            socks.append(s)
        floor = Floor(2000)
        server.feed(floor.setup())
        started = time.monotonic()
        mine = {s.getsockname()[1] for s in socks}
        established = len(mine)
        while time.monotonic() - started < 90:
            server.feed([floor.event(i) for i in range(0, 2000, 7)])
            established = len(mine & established_peers(server.port))
            if not established:
                took = time.monotonic() - started
                return Outcome(True, f"all 50 closed by the server after {took:.0f} s")
            await sleep(0.5)
        return Outcome(False, f"{established} of 50 still ESTABLISHED after 90 s")
    finally:
        for s in socks:
            s.close()
        server.stop()


def established_peers(port: int) -> set[int]:
    """Client ports of ESTABLISHED connections to ``port`` on this machine, server side."""
    peers = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state = fields[1], fields[2], fields[3]
        if state == "01" and int(local.split(":")[1], 16) == port:
            peers.add(int(remote.split(":")[1], 16))
    return peers


async def file_table(f: Faults) -> Outcome:
    """A daemon at the usual 1,024 open-file limit, and 1,010 event stream clients."""
    if shutil.which("prlimit") is None:
        return Outcome(False, "not run: prlimit (util-linux) is missing")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    server = await f.daemon(
        "file-table", ["--history", "none"], prefix=["prlimit", "--nofile=1024:1024", "--"]
    )
    socks: list[socket.socket] = []
    answers: dict[str, int] = {}
    try:
        request = f"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n"
        for n in range(1010):
            try:
                s = socket.create_connection(("127.0.0.1", server.port), timeout=2)
                s.sendall(request.encode())
                head = s.recv(12)
                key = head[9:12].decode() or "closed"
            except OSError as e:
                key = type(e).__name__
            else:
                socks.append(s)
            answers[key] = answers.get(key, 0) + 1
            if n % 50 == 0:
                await sleep(0)
        health = None
        for _ in range(20):
            try:
                health = (await http_get(server.url("/healthz"), timeout=2)).code
                break
            except Exception:
                await sleep(0.5)
        server.feed([call("A", "1001")])
        await sleep(2.0)
        written = data_file(server)["agents"].get("1001") == "in"
        emfile = len(re.findall("Could not accept|EMFILE", log_text(server)))
        held = health is not None and written and answers.get("503", 0) > 0 and emfile <= 4
        return Outcome(
            held,
            f"event clients answered {dict(sorted(answers.items()))}; /healthz {health};"
            f" file written: {written}; {emfile} accept-failure lines",
        )
    finally:
        for s in socks:
            s.close()
        server.stop()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def deleted_history(f: Faults) -> Outcome:
    """The SQLite history file is deleted while the daemon runs."""
    server = await f.daemon("deleted-history")
    try:
        floor = Floor(20)
        server.feed(floor.setup())
        json_path = Path(server.child.argv[server.child.argv.index("--file") + 1])
        db = json_path.with_name("mitelacd-history.db")
        await wait_until(db.exists, 10, "the history file")
        await sleep(1.5)
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        for _ in range(10):
            server.feed([floor.event(i) for i in range(20)])
            await sleep(0.5)
        again = db.exists()
        noticed = re.search(r"history.*(deleted|replaced|no longer)", log_text(server), re.I)
        health = json.loads((await http_get(server.url("/healthz"))).body)
        held = again and noticed is not None
        return Outcome(
            held,
            f"file made again: {again}; logged: {noticed.group(0) if noticed else 'nothing'};"
            f" /healthz warnings: {health.get('warnings')}",
        )
    finally:
        server.stop()


class Stream:
    """A raw event stream client that reads and keeps everything."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.data = bytearray()

    def count(self, needle: bytes) -> int:
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.data += chunk
        except BlockingIOError:
            pass
        return self.data.count(needle)


async def open_stream(server: Server, path: str) -> Stream:
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode())
    s.setblocking(False)
    await sleep(0.3)
    return Stream(s)


async def spill_at_stop(f: Faults) -> Outcome:
    """The history database is unreachable when the daemon stops."""
    name = f.name("spill")
    data = f.workdir / f"{name}.json"
    spill = Path(str(data) + ".history-spill.jsonl")
    db = f.workdir / f"{name}.db"
    unreachable = socket.socket()
    unreachable.bind(("127.0.0.1", 0))
    port = unreachable.getsockname()[1]
    unreachable.close()
    runs = (f"postgresql://nobody@127.0.0.1:{port}/none", f"sqlite:///{db}")
    for n, url in enumerate(runs):

        def argv(pbx: int, url: str = url) -> list[str]:
            return daemon_argv(pbx, data, "info", None, ["--history", url])

        server = await start_server(f"{name}-{n}", argv, f.workdir, Placement(None, None))
        try:
            if n == 0:
                floor = Floor(10)
                server.feed(floor.setup())
                await settle(server, server.sent)
                await sleep(1.5)
        finally:
            if n == 1:
                await sleep(3.0)
            server.stop()
        if n == 0:
            if not spill.exists():
                return Outcome(False, "nothing was kept at stop")
            kept = len(spill.read_text().splitlines())
    with sqlite3.connect(db) as connection:
        spans = connection.execute("SELECT count(*) FROM agent_states").fetchone()[0]
    held = not spill.exists() and spans > 0
    return Outcome(
        held,
        f"{kept} lines kept beside the data file at stop; next start wrote {spans} agent"
        f" state rows and {'removed' if not spill.exists() else 'kept'} the file",
    )


FAULTS: dict[str, Callable[[Faults], Coroutine[Any, Any, Outcome]]] = {
    "long-field": long_field,
    "clock-step": clock_step,
    "reset": reset_mid_record,
    "slow-readers": slow_readers,
    "file-table": file_table,
    "deleted-history": deleted_history,
    "spill": spill_at_stop,
    "silent": silent_pbx,
    "path-under-way": path_under_way,
    "bad-dates": bad_dates,
    "headers": headers,
    "redial": redial_jitter,
}


async def run(names: Sequence[str], workdir: Path) -> int:
    faults = Faults(workdir)
    failed = 0
    for name in names:
        started = time.monotonic()
        try:
            outcome = await Deferred.fromCoroutine(FAULTS[name](faults)).addTimeout(180, reactor)
        except Exception as e:  # a fault that cannot be run is not held
            outcome = Outcome(False, f"could not run: {type(e).__name__}: {e}"[:300])
        finally:
            stop_all()
        failed += not outcome.held
        verdict = "held" if outcome.held else "NOT HELD"
        print(
            f"{name:<16} {verdict:<9} {outcome.detail} ({time.monotonic() - started:.0f} s)",
            flush=True,
        )
    return failed


def main(reactor_: Any, *argv: str) -> Deferred[None]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--only", help=f"comma-separated faults out of {','.join(FAULTS)}")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder and logs")
    args = parser.parse_args(argv)
    names = [n for n in (args.only or ",".join(FAULTS)).split(",") if n]
    unknown = set(names) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults {sorted(unknown)}; they are {', '.join(FAULTS)}")
    workdir = Path(tempfile.mkdtemp(prefix="mitelacd-faults-"))
    print(f"twistd: {TWISTD}; scratch folder {workdir}", flush=True)

    async def go() -> None:
        failed = await run(names, workdir)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        if failed:
            raise SystemExit(failed)

    return Deferred.fromCoroutine(go())


if __name__ == "__main__":
    react(main, sys.argv[1:])
