"""HTTP resources, in memory through treq's StubTreq and on real loopback sockets."""

from __future__ import annotations

import io
import json
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
import pytest_twisted
import treq
from treq.testing import StubTreq
from twisted.internet import defer, reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IAddress
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import StringTransport
from twisted.python import usage
from twisted.web.http import datetimeToString
from twisted.web.http_headers import Headers
from twisted.web.server import version as SERVER_VERSION
from twisted.web.test.requesthelper import DummyRequest

from mitelacd import tap
from mitelacd.floor.documents import FloorDocuments
from mitelacd.floor.records import Malformed, parse_record
from mitelacd.floor.render import Once
from mitelacd.floor.state import Agent, FloorState
from mitelacd.testing import sse_events
from mitelacd.testing.loopback import WebOnLoopback
from mitelacd.web.metrics import FloorMetrics
from mitelacd.web.push import EventPush
from mitelacd.web.resources import (
    SMALL_BODY,
    BoardSite,
    FixedHeaders,
    Root,
    Served,
    WebService,
    WebSettings,
)

BASE = "http://board.test"
LOGIN = "12A081502{dn:<7}{agent:<7}00"


def feed(floor: FloorState, *bodies: str) -> None:
    for body in bodies:
        floor.recordReceived(parse_record(body.encode()))


def sync(d: Deferred[Any]) -> Any:
    """The result of a Deferred that StubTreq has already fired."""
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "the request did not complete"
    if hasattr(results[0], "raiseException"):
        results[0].raiseException()
    return results[0]


class WebHarness:
    """A floor on a fake clock with its HTTP tree behind an in-memory client."""

    def __init__(
        self,
        settings: WebSettings | None = None,
        file_health: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.floor = FloorState(self.clock, stale_after=60)
        self.documents = FloorDocuments(self.floor)
        self.settings = settings or WebSettings()
        self.push = EventPush(
            self.floor,
            self.documents,
            self.clock,
            push_interval=self.settings.push_interval,
            max_clients=self.settings.max_push_clients,
        )
        self.root = Root(
            Served(self.floor, self.documents, self.settings, file_health=file_health),
            self.push,
            self.clock,
        )
        self.stub = StubTreq(self.root)

    def request(self, method: str, path: str, **kwargs: Any) -> tuple[Any, bytes]:
        # StubTreq makes its request functions at run time, unseen by mypy.
        stub: Any = self.stub
        d = stub.request(method, BASE + path, **kwargs)
        self.stub.flush()
        response = sync(d)
        body = sync(response.content())
        return response, body

    def get(self, path: str, **kwargs: Any) -> tuple[Any, bytes]:
        return self.request("GET", path, **kwargs)

    def connect(self) -> None:
        self.floor.feedConnected("127.0.0.1", 15373)


def header(response: Any, name: str) -> str | None:
    values = response.headers.getRawHeaders(name)
    return values[0] if values else None


@pytest.fixture
def board() -> WebHarness:
    board = WebHarness()
    board.connect()
    feed(
        board.floor,
        LOGIN.format(dn="2001", agent="1001"),
        "13G0816472001   1001   01860",
        LOGIN.format(dn="2002", agent="10045"),
        "14K10151061000300201450000000",
        "15Q10151086001200210300000000",
        "16C1001012050          00",
    )
    return board


# /mitel_data.json -------------------------------------------------------------


def test_legacy_document_matches_the_file_contract(board: WebHarness) -> None:
    response, body = board.get("/mitel_data.json")
    assert response.code == 200
    assert body == json.dumps(board.floor.legacy()).encode()
    doc = json.loads(body)
    assert doc["agents"] == {"1001": "busy", "10045": "in"}
    assert doc["groups"] == {"610": {"waiting": "003", "agents": "002", "longestwait": "0145"}}
    assert set(doc) == {"agents", "groups", "paths", "lastUpdate"}
    assert header(response, "content-type") == "application/json"
    assert header(response, "cache-control") == "no-cache"
    assert header(response, "access-control-allow-origin") == "*"


def test_legacy_etag_gives_304_until_the_floor_changes(board: WebHarness) -> None:
    first, _ = board.get("/mitel_data.json")
    etag = header(first, "etag")
    assert etag and etag.startswith('"')
    again, body = board.get("/mitel_data.json", headers={"If-None-Match": etag})
    assert (again.code, body) == (304, b"")
    # A keep-alive changes nothing the legacy document shows: still 304.
    feed(board.floor, "17R08151020240311")
    assert board.get("/mitel_data.json", headers={"If-None-Match": etag})[0].code == 304
    feed(board.floor, "18J0822422001   1001   01")
    changed, body = board.get("/mitel_data.json", headers={"If-None-Match": etag})
    assert changed.code == 200
    assert json.loads(body)["agents"]["1001"] == "idle"
    assert header(changed, "etag") != etag


def test_legacy_is_assembled_once_per_change(
    board: WebHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    joins = []
    original = board.documents._render_legacy

    def counting() -> bytes:
        joins.append(1)
        return original()

    monkeypatch.setattr(board.documents, "_legacy", Once(counting))
    feed(board.floor, "18J0822422001   1001   01")
    for _ in range(5):
        board.get("/mitel_data.json")
    assert len(joins) == 1


def test_a_large_document_is_written_as_the_socket_drains() -> None:
    board = WebHarness()
    board.connect()
    with board.floor.batch():
        feed(board.floor, *(LOGIN.format(dn=f"{n}", agent=f"{n}") for n in range(10000, 13500)))
    response, body = board.get("/api/v1/state")
    doc = json.loads(body)
    assert len(body) > SMALL_BODY
    assert len(doc["agents"]) == 3500
    assert response.length == len(body)  # said up front, not chunked
    assert doc["agents"] == json.loads(board.get("/api/v1/agents")[1])["agents"]


def test_head_has_headers_and_no_body(board: WebHarness) -> None:
    response, body = board.request("HEAD", "/mitel_data.json")
    assert response.code == 200 and body == b""
    assert header(response, "etag")


# The typed API ----------------------------------------------------------------


def test_state_document(board: WebHarness) -> None:
    response, body = board.get("/api/v1/state")
    assert response.code == 200
    doc = json.loads(body)
    assert doc["stale"] is False
    assert doc["generated_at"] == "2023-11-14T22:13:20.000Z"
    assert [a["id"] for a in doc["agents"]] == ["1001", "10045"]
    agent = doc["agents"][0]
    assert (agent["status"], agent["activity"], agent["last_path"]) == ("busy", "acd_call", "860")
    assert agent["extension"] == "2001" and agent["confirmed"] is True
    (group,) = doc["groups"]
    assert group == {
        "id": "610",
        "name": None,
        "level": "ok",
        "waiting": 3,
        "agents_logged_in": 2,
        "longest_wait_seconds": 105,
        "trailing": "0000000",
        "reported_at": "2023-11-14T22:13:20.000Z",
        "confirmed": True,
    }
    assert doc["paths"][0]["longest_wait_seconds"] == 630
    assert doc["extensions"][0]["dn"] == "2050"
    assert doc["totals"] == {
        "agents": {"in": 1, "out": 0, "busy": 1, "idle": 0, "timer": 0},
        "logged_in": 2,
        "waiting": 12,
        "longest_wait_seconds": 630,
    }
    assert doc["feed"]["connected"] is True
    assert doc["feed"]["records_by_code"]["K"] == 1


@pytest.mark.parametrize(
    "path, key",
    [
        ("/api/v1/agents", "agents"),
        ("/api/v1/groups", "groups"),
        ("/api/v1/paths", "paths"),
        ("/api/v1/extensions", "extensions"),
        ("/api/v1/feed", "feed"),
    ],
)
def test_parts_of_the_state(board: WebHarness, path: str, key: str) -> None:
    response, body = board.get(path)
    doc = json.loads(body)
    assert response.code == 200
    assert set(doc) == {"generated_at", "stale", key}
    assert doc[key] == json.loads(board.get("/api/v1/state")[1])[key]


def test_one_agent(board: WebHarness) -> None:
    doc = json.loads(board.get("/api/v1/agents/10045")[1])
    assert doc["agent"]["status"] == "in" and doc["agent"]["fresh_login"] is True
    response, body = board.get("/api/v1/agents/4242")
    assert response.code == 404
    assert json.loads(body)["error"] == "not_found"
    assert board.get("/api/v1/agents/10045/more")[0].code == 404


def test_stale_feed_is_said_in_every_document(board: WebHarness) -> None:
    board.clock.advance(61)
    assert json.loads(board.get("/api/v1/agents")[1])["stale"] is True
    assert json.loads(board.get("/api/v1/state")[1])["feed"]["stale"] is True


# /healthz ---------------------------------------------------------------------


def test_health_never_connected() -> None:
    board = WebHarness()
    response, body = board.get("/healthz")
    assert response.code == 503
    assert json.loads(body)["reason"] == "never connected"


def test_health_connected_and_fresh_then_stale_then_disconnected(board: WebHarness) -> None:
    response, body = board.get("/healthz")
    assert (response.code, json.loads(body)["status"]) == (200, "ok")
    board.clock.advance(61)
    response, body = board.get("/healthz")
    assert response.code == 503
    assert json.loads(body)["reason"] == "stale"
    assert json.loads(body)["since"] == "2023-11-14T22:13:20.000Z"
    board.floor.feedDisconnected("Connection was refused by other side")
    response, body = board.get("/healthz")
    doc = json.loads(body)
    assert (response.code, doc["reason"]) == (503, "disconnected")
    assert "refused" in doc["detail"]


def test_health_is_no_data_yet_until_a_valid_record_on_this_connection() -> None:
    board = WebHarness()
    board.connect()
    board.floor.recordReceived(Malformed(b"12y", "unknown function code 'y'", None, 12))
    response, body = board.get("/healthz")
    doc = json.loads(body)
    assert (response.code, doc["status"], doc["reason"]) == (503, "unavailable", "no data yet")
    feed(board.floor, "74R13024320140115")
    assert board.get("/healthz")[0].code == 200
    # A new connection has to prove itself again.
    board.floor.feedDisconnected("lost")
    board.connect()
    assert json.loads(board.get("/healthz")[1])["reason"] == "no data yet"


FAILING = {
    "path": "/srv/mitel_data.json",
    "writing": False,
    "problem": "disk full",
    "failing_since": "2023-11-14T22:13:20.000Z",
    "last_written_at": None,
    "failed_attempts": 3,
    "writes": 0,
}


def test_a_file_that_is_not_written_is_a_warning_not_a_failure() -> None:
    health = dict(FAILING)
    board = WebHarness(file_health=lambda: health)
    board.connect()
    feed(board.floor, "74R13024320140115")
    response, body = board.get("/healthz")
    doc = json.loads(body)
    assert (response.code, doc["status"]) == (200, "ok")
    (warning,) = doc["warnings"]
    assert "/srv/mitel_data.json is not being written (disk full)" in warning
    feed_doc = json.loads(board.get("/api/v1/feed")[1])["feed"]
    assert feed_doc["file"] == FAILING
    health.update(writing=True, problem=None, failing_since=None, failed_attempts=0)
    assert json.loads(board.get("/healthz")[1])["warnings"] == []
    assert json.loads(board.get("/api/v1/feed")[1])["feed"]["file"]["writing"] is True


# Methods, 404, CORS, tokens ---------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_other_methods_get_405(board: WebHarness, method: str) -> None:
    response, body = board.request(method, "/mitel_data.json")
    assert response.code == 405
    assert header(response, "allow") == "GET, HEAD"
    assert b"Traceback" not in body


@pytest.mark.parametrize("path", ["/nope", "/api", "/api/v2/state", "/api/v1/nope", "/board.js"])
def test_unknown_paths_get_404(board: WebHarness, path: str) -> None:
    response, body = board.get(path)
    assert response.code == 404
    assert b"Traceback" not in body


def test_cors_origin_can_be_named_or_turned_off() -> None:
    named = WebHarness(WebSettings(cors_origin="https://boards.example"))
    response, _ = named.get("/mitel_data.json")
    assert header(response, "access-control-allow-origin") == "https://boards.example"
    assert header(response, "vary") == "Origin"
    preflight, _ = named.request("OPTIONS", "/api/v1/state")
    assert preflight.code == 204
    assert "Authorization" in (header(preflight, "access-control-allow-headers") or "")
    off = WebHarness(WebSettings(cors_origin=None))
    response, _ = off.get("/mitel_data.json")
    assert header(response, "access-control-allow-origin") is None
    assert off.request("OPTIONS", "/api/v1/state")[0].code == 405


@pytest.mark.parametrize(
    "path", ["/", "/mitel_data.json", "/api/v1/state", "/api/v1/agents/1", "/api/v1/events"]
)
def test_token_is_required_everywhere_but_health(path: str) -> None:
    board = WebHarness(WebSettings(token="s3cret"))
    board.connect()
    feed(board.floor, "74R13024320140115")
    response, _ = board.get(path)
    assert response.code == 401
    assert header(response, "www-authenticate") == 'Bearer realm="mitelacd"'
    assert board.get(path, headers={"Authorization": "Bearer wrong"})[0].code == 401
    assert board.get(path + "?token=wrong")[0].code == 401
    assert board.get("/healthz")[0].code == 200


def test_token_accepted_in_header_or_query() -> None:
    board = WebHarness(WebSettings(token="s3cret"))
    assert board.get("/mitel_data.json", headers={"Authorization": "Bearer s3cret"})[0].code == 200
    assert board.get("/api/v1/state?token=s3cret")[0].code == 200
    assert board.get("/?token=s3cret")[0].code == 200


# The board page ---------------------------------------------------------------


def test_board_page_is_one_self_contained_document(board: WebHarness) -> None:
    response, body = board.get("/")
    assert response.code == 200
    assert header(response, "content-type") == "text/html; charset=utf-8"
    page = body.decode()
    assert "/*BOARD_CSS*/" not in page and "/*BOARD_JS*/" not in page
    assert "EventSource" in page and "/api/v1/events" in page
    # Nothing is fetched from anywhere else.
    assert "http://" not in page and "https://" not in page
    assert "default-src 'none'" in (header(response, "content-security-policy") or "")


# Options ----------------------------------------------------------------------


def test_http_options(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MITELACD_TOKEN", raising=False)
    base = ["--host", "h", "--file", str(tmp_path / "d.json")]
    options = tap.Options()
    options.parseOptions(base)
    assert options["http"] == "tcp:8080:interface=127.0.0.1"
    assert options.webSettings() == WebSettings(cors_origin="*", token=None, access_log=False)
    options = tap.Options()
    options.parseOptions([*base, "--http", "none", "--cors-origin", "none", "--access-log"])
    assert options["http"] is None
    assert options.webSettings() == WebSettings(cors_origin=None, token=None, access_log=True)
    with pytest.raises(usage.UsageError, match="--http 'tcp:port': the port must be a number"):
        tap.Options().parseOptions([*base, "--http", "tcp:port"])
    monkeypatch.setenv("MITELACD_TOKEN", "from-env")
    options = tap.Options()
    options.parseOptions(base)
    assert options["token"] == "from-env"


def test_access_log_is_off_unless_asked_for(board: WebHarness) -> None:
    for wanted in (False, True):
        site = BoardSite(board.root, wanted, board.clock)
        site.logFile = io.StringIO()
        # A request with just what the access log reads.
        request: Any = DummyRequest([b"healthz"])
        request.method = b"GET"
        request.client = None
        request.uri = b"/healthz"
        request.clientproto = b"HTTP/1.1"
        request.code = 200
        request.sentLength = 0
        site.log(request)
        assert bool(site.logFile.getvalue()) is wanted


def answer_of(site: BoardSite, request: bytes) -> bytes:
    """The raw answer of ``site`` to ``request``, over an HTTP channel of its own."""
    address = IPv4Address("TCP", "127.0.0.1", 40000)
    channel = site.buildProtocol(address)
    transport = StringTransport(peerAddress=address)
    channel.makeConnection(transport)
    channel.dataReceived(request)
    channel.connectionLost(None)
    answer: bytes = transport.value()
    return answer


def test_fixed_headers_are_set_as_set_header_sets_them() -> None:
    given = ((b"content-type", b"text/plain"), (b"x-odd", b"a\r\nb"), (b"ETAG", b'"1"'))
    fixed, one_by_one = DummyRequest([b""]), DummyRequest([b""])
    fixed.setHeader(b"server", b"first")
    one_by_one.setHeader(b"server", b"first")
    FixedHeaders(*given).apply(fixed)
    for name, value in given:
        one_by_one.setHeader(name, value)
    expected = list(one_by_one.responseHeaders.getAllRawHeaders())
    assert list(fixed.responseHeaders.getAllRawHeaders()) == expected
    assert expected[-2:] == [(b"X-Odd", [b"a b"]), (b"ETag", [b'"1"'])]


def test_a_poll_is_answered_with_the_headers_in_their_order(board: WebHarness) -> None:
    metrics = FloorMetrics(board.floor, board.clock, process=False)
    site = BoardSite(board.root, False, board.clock, metrics)
    etag = b'"%d"' % board.documents.legacy_version
    poll = b"GET /mitel_data.json HTTP/1.1\r\nHost: x\r\n"
    body = board.documents.legacy()
    for extra, status, length in (
        (b"", b"200 OK", len(body)),
        (b"If-None-Match: " + etag + b"\r\n", b"304 Not Modified", 0),
    ):
        before = time.time()
        head, _, rest = answer_of(site, poll + extra + b"\r\n").partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        date = lines[2].removeprefix(b"Date: ")
        assert date in {datetimeToString(int(before)), datetimeToString(int(time.time()))}
        assert lines[:2] + lines[3:] == [
            b"HTTP/1.1 " + status,
            b"Server: " + SERVER_VERSION,
            b"X-Content-Type-Options: nosniff",
            b"Access-Control-Allow-Origin: *",
            b"Access-Control-Expose-Headers: ETag",
            b"Content-Type: application/json",
            b"Cache-Control: no-cache",
            b"Content-Length: %d" % length,
            b"ETag: " + etag,
        ]
        assert rest == (body if length else b"")
    (requests,) = [f for f in metrics.collect() if f.name == "mitelacd_http_requests"]
    assert [(s.labels, s.value) for s in requests.samples] == [
        ({"endpoint": "/mitel_data.json", "status": "200"}, 1),
        ({"endpoint": "/mitel_data.json", "status": "304"}, 1),
    ]


# Real loopback sockets --------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_legacy_and_etag_over_a_real_socket() -> None:
    live = WebOnLoopback()
    try:
        live.floor.feedConnected("127.0.0.1", 15373)
        feed(live.floor, LOGIN.format(dn="2001", agent="1001"))
        response = await treq.get(live.url + "/mitel_data.json").addTimeout(10, reactor)
        body = await response.content()
        assert json.loads(body)["agents"] == {"1001": "in"}
        etag: bytes = response.headers.getRawHeaders(b"etag")[0]
        again = await treq.get(
            live.url + "/mitel_data.json", headers=Headers({b"If-None-Match": [etag]})
        ).addTimeout(10, reactor)
        assert again.code == 304
        await again.content()
        health = await treq.get(live.url + "/healthz").addTimeout(10, reactor)
        assert health.code == 200
        await health.content()
    finally:
        await live.service.stopService()


class SSEClient(Protocol):
    """Reads the raw event stream of one connection."""

    def __init__(self, target: bytes = b"/api/v1/events", headers: bytes = b"") -> None:
        self.data = b""
        self.lost: Deferred[None] = Deferred()
        self.waiting: list[tuple[bytes, Deferred[None]]] = []
        self.request = b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n" % (target, headers)

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(self.request)

    def events(self) -> list[tuple[str, int | None, dict[str, Any]]]:
        """The events received so far (the body is chunked: its framing is taken out)."""
        body = self.data.split(b"\r\n\r\n", 1)[1]
        text, out = body, b""
        while text:
            size, _, rest = text.partition(b"\r\n")
            length = int(size, 16)
            out, text = out + rest[:length], rest[length + 2 :]
            if not length:
                break
        return sse_events(out)

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        for item in list(self.waiting):
            if item[0] in self.data:
                self.waiting.remove(item)
                item[1].callback(None)

    def until(self, marker: bytes) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        if marker in self.data:
            d.callback(None)
        else:
            self.waiting.append((marker, d))
        return d.addTimeout(10, reactor)

    def connectionLost(self, reason: Any = None) -> None:
        self.lost.callback(None)


class OneClient(ClientFactory):
    """Connects the one client protocol it is given."""

    def __init__(self, client: SSEClient) -> None:
        self.client = client

    def buildProtocol(self, addr: IAddress | None) -> SSEClient:
        self.client.factory = self
        return self.client


@pytest_twisted.ensureDeferred
async def test_sse_change_reaches_a_client_and_a_gone_client_is_dropped() -> None:
    live = WebOnLoopback(WebSettings(push_interval=0.05))
    try:
        live.floor.feedConnected("127.0.0.1", 15373)
        client = SSEClient()
        factory = OneClient(client)
        port = live.service.port.getHost().port  # type: ignore[union-attr]
        reactor.connectTCP("127.0.0.1", port, factory)
        await client.until(b"event: snapshot")
        assert b"text/event-stream" in client.data
        assert len(live.service.push.subscribers) == 1
        feed(live.floor, LOGIN.format(dn="2001", agent="7777"))
        await client.until(b'"id":"7777"')
        client.transport.loseConnection()  # type: ignore[union-attr]
        await client.lost.addTimeout(10, reactor)
        for _ in range(100):
            if not live.service.push.subscribers:
                break
            await deferLater(reactor, 0.02, lambda: None)
        assert live.service.push.subscribers == set()
        feed(live.floor, "13J0822422001   7777   01")  # no write to the gone client
        await deferLater(reactor, 0.1, lambda: None)
    finally:
        await defer.maybeDeferred(live.service.stopService)


async def connect_sse(live: WebOnLoopback, client: SSEClient) -> SSEClient:
    port = live.service.port.getHost().port  # type: ignore[union-attr]
    reactor.connectTCP("127.0.0.1", port, OneClient(client))
    await client.until(b"\n\n")
    return client


@pytest_twisted.ensureDeferred
async def test_a_client_resumes_with_last_event_id_and_full_states_on_request() -> None:
    live = WebOnLoopback()
    try:
        live.floor.feedConnected("127.0.0.1", 15373)
        first = await connect_sse(live, SSEClient())
        await first.until(b"event: snapshot")
        snapshot_id = live.floor.version
        first.transport.loseConnection()  # type: ignore[union-attr]
        await first.lost.addTimeout(10, reactor)
        feed(live.floor, LOGIN.format(dn="2001", agent="4242"))
        headers = b"Last-Event-ID: %d\r\n" % snapshot_id
        again = await connect_sse(live, SSEClient(headers=headers))
        await again.until(b"event: stale")
        names = [name for name, _, _ in again.events()]
        assert names == ["delta", "stale"]  # only what was missed, no snapshot
        ((_, delta_id, delta), _) = again.events()
        assert delta["from"] == snapshot_id and delta_id == live.floor.version
        assert list(delta["agents"]) == ["4242"]
        whole = await connect_sse(live, SSEClient(target=b"/api/v1/events?full=1"))
        await whole.until(b"event: state")
        ((name, _, state),) = whole.events()
        assert name == "state" and [a["id"] for a in state["agents"]] == ["4242"]
        for client in (again, whole):
            client.transport.loseConnection()  # type: ignore[union-attr]
            await client.lost.addTimeout(10, reactor)
    finally:
        await defer.maybeDeferred(live.service.stopService)


def test_api_entities_are_rendered_once_per_change_but_stamped_per_request(
    board: WebHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    renders: list[str] = []
    original = Agent.view

    def counting(agent: Agent, *args: Any) -> dict[str, Any]:
        renders.append(agent.agent_id)
        return original(agent, *args)

    monkeypatch.setattr(Agent, "view", counting)
    first = json.loads(board.get("/api/v1/agents")[1])
    # Views are rendered when first read: each agent's once.
    assert sorted(renders) == sorted(a["id"] for a in first["agents"])
    renders.clear()
    board.clock.advance(2)
    second = json.loads(board.get("/api/v1/agents")[1])
    assert renders == []  # served from the fragments
    assert second["generated_at"] != first["generated_at"]
    assert second["agents"] == first["agents"]
    feed(board.floor, "18J0822422001   1001   01")
    third = json.loads(board.get("/api/v1/agents")[1])
    board.get("/api/v1/state")
    assert renders == ["1001"]  # one agent changed: one rendered, once
    assert third["agents"][0]["status"] == "idle"
    assert third["agents"][1] == first["agents"][1]


@pytest_twisted.ensureDeferred
async def test_a_failing_resource_shows_no_traceback(
    monkeypatch: pytest.MonkeyPatch, logged_failures: list[dict[str, Any]]
) -> None:
    def broken(self: FloorDocuments, stale: bytes) -> list[bytes]:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(FloorDocuments, "feed_document", broken)
    live = WebOnLoopback()
    try:
        response = await treq.get(live.url + "/api/v1/feed").addTimeout(10, reactor)
        body = await response.content()
        assert response.code == 500
        assert b"Traceback" not in body and b"secret internals" not in body
        # The failure is logged for the operator instead.
        assert any("secret internals" in str(e["log_failure"].value) for e in logged_failures)
        logged_failures.clear()
    finally:
        await live.service.stopService()


def test_a_taken_port_is_a_plain_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        floor = FloorState(reactor)
        service = WebService(
            f"tcp:{port}:interface=127.0.0.1", Served(floor, FloorDocuments(floor)), reactor
        )
        with pytest.raises(SystemExit, match=f"cannot serve HTTP on 'tcp:{port}:.*in use"):
            service.privilegedStartService()
