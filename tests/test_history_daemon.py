"""The history as the daemon wires it (mitelacd/tap.py): /healthz says when it fails, the
backlog counts every row waiting, and rows waiting at stop wait beside the data file."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest_twisted
from test_history import until
from treq.testing import StubTreq
from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from mitelacd import tap
from mitelacd.floor.documents import FloorDocuments
from mitelacd.floor.records import parse_record
from mitelacd.floor.state import FloorState
from mitelacd.reports.figures import DayFigures
from mitelacd.reports.live import FiguresService
from mitelacd.reports.rows import StateSpan
from mitelacd.reports.store import open_store
from mitelacd.reports.writer import SPILL_SUFFIX, HistoryService, read_spill
from mitelacd.testing import call_body, capture_log
from mitelacd.web.figuremetrics import FigureMetrics
from mitelacd.web.push import EventPush
from mitelacd.web.resources import Root, Served, WebService

#: Nothing listens there: a PostgreSQL that cannot be reached.
UNREACHABLE = "postgresql://mitelacd@127.0.0.1:1/history"


def parse(*argv: str) -> tap.Options:
    options = tap.Options()
    options.parseOptions(list(argv))
    return options


def refusing_port() -> int:
    """A port nothing listens on: the PBX link is refused and tried again."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def get(resource: Any, path: str) -> tuple[int, dict[str, Any]]:
    stub: Any = StubTreq(resource)
    d = stub.request("GET", "http://127.0.0.1" + path)
    stub.flush()
    answers: list[Any] = []
    d.addBoth(answers.append)
    response = answers[0]
    if isinstance(response, Failure):
        response.raiseException()
    bodies: list[bytes] = []
    response.content().addCallback(bodies.append)
    stub.flush()
    doc: dict[str, Any] = json.loads(bodies[0])
    return response.code, doc


def only(service: tap.MitelACDService, kind: type[Any]) -> Any:
    (found,) = [s for s in service if isinstance(s, kind)]
    return found


def events(floor: FloorState, spec: str, agent: str = "1001", first: int = 0) -> None:
    for n, token in enumerate(spec.split()):
        body = call_body(first + n, token[0], "2001", agent, token[1:])
        floor.recordReceived(parse_record(body.encode()))


@pytest_twisted.ensureDeferred
async def test_a_history_down_from_the_start_is_warned_counted_and_kept(tmp_path: Path) -> None:
    """PostgreSQL never reachable: /healthz warns, the backlog counts the rows the figures
    hold, and at stop they are saved beside --file; the next start writes them."""
    data = tmp_path / "mitel_data.json"
    spill = Path(str(data) + SPILL_SUFFIX)
    port = str(refusing_port())
    argv = ("--host", "127.0.0.1", "--port", port, "--file", str(data))
    http = ("--http", "tcp:0:interface=127.0.0.1")
    service = tap.makeService(parse(*argv, *http, "--history", UNREACHABLE), reactor)
    history: HistoryService = only(service, HistoryService)
    web = only(service, WebService)
    with capture_log("mitelacd.reports.writer"):
        service.startService()
        try:
            await until(lambda: history.write_failures >= 1, what="the first open failed")
            # Today's rows of an earlier run cannot be read: the figures hold what they close.
            events(service.floor, "A G01860 J01")
            assert history.backlog == 2, history.health()
            code, health = get(web.site.resource, "/healthz")
            assert code == 503  # no PBX: the feed's own status
            (warning,) = health["warnings"]
            assert (
                f"the history database {UNREACHABLE} is not being written"
                " (database unreachable) since " in warning
            )
            assert warning.endswith("; 2 rows wait in memory")
            _, feed = get(web.site.resource, "/api/v1/feed")
            assert feed["feed"]["history"]["ok"] is False
            assert feed["feed"]["history"]["backlog"] == 2
        finally:
            await service.stopService()
    assert history.spill_path == str(spill)
    # The spans, and at stop the interval's rows and the span under way.
    saved = [r for b in read_spill(str(spill)) for r in b.rows]
    spans = [r for r in saved if isinstance(r, StateSpan)]
    assert [(s.state, s.code) for s in spans] == [
        ("available", "G"),
        ("on_call", "J"),
        ("available", "stop"),
    ]
    assert history.dropped_rows == 0 and history.spilled_rows == len(saved)

    database = tmp_path / "history.db"
    again = tap.makeService(parse(*argv, *http, "--history", str(database)), reactor)
    history = only(again, HistoryService)
    figures: FiguresService = only(again, FiguresService)
    again.startService()
    try:
        await until(lambda: not spill.exists() and history.backlog == 0, what="written")
        await figures.seeded
        # Today's figures go on from what was saved.
        (agent,) = figures.today("agent")["agents"]
        assert agent["id"] == "1001" and agent["acd_calls"] == 1
    finally:
        await again.stopService()
    store = open_store(str(database), create=False)
    try:
        stored = store.states(None, "1001", 0, float("inf"))
    finally:
        store.close()
    assert stored[:3] == spans


def test_healthz_warns_while_the_history_is_not_written() -> None:
    clock = Clock()
    clock.advance(1_700_000_000)
    floor = FloorState(clock, stale_after=60)
    documents = FloorDocuments(floor)
    push = EventPush(floor, documents, clock)
    health: dict[str, Any] = {
        "url": "postgresql://mitelacd:***@db/acd",
        "ok": False,
        "backlog": 1234,
        "problem": "database unreachable",
        "failing_since": "2023-11-14T22:13:20.000Z",
    }
    root = Root(Served(floor, documents, history_health=lambda: dict(health)), push, clock)
    floor.feedConnected("127.0.0.1", 15373)
    floor.recordReceived(parse_record(b"74R13024320140115"))
    code, doc = get(root, "/healthz")
    assert (code, doc["status"]) == (200, "ok")  # a warning, not a failure
    assert doc["warnings"] == [
        "the history database postgresql://mitelacd:***@db/acd is not being written"
        " (database unreachable) since 2023-11-14T22:13:20.000Z; 1234 rows wait in memory"
    ]
    health.update(problem="not open yet", failing_since=None)  # starting: not failing
    assert get(root, "/healthz")[1]["warnings"] == []
    health.update(ok=True, problem=None)
    assert get(root, "/healthz")[1]["warnings"] == []


def test_metrics_count_the_rows_refused() -> None:
    class Health:
        def health(self) -> dict[str, Any]:
            return {"written_rows": 10, "dropped_rows": 1, "refused_rows": 2, "ok": False}

    families = {f.name: f for f in FigureMetrics(DayFigures(), Health()).collect()}
    assert families["mitelacd_history_refused_rows"].samples[0].value == 2
    assert families["mitelacd_history_dropped_rows"].samples[0].value == 1
    assert families["mitelacd_history_writing"].samples[0].value == 0
