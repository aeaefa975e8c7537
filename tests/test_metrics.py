"""``GET /metrics``: parsed with prometheus_client's own parser and held against the floor."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import prometheus_client
import pytest
import pytest_twisted
import treq
from prometheus_client.parser import text_string_to_metric_families
from treq.testing import StubTreq
from twisted.internet import defer, reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.error import ConnectionLost, ConnectionRefusedError
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.python.filepath import FilePath

from mitelacd import tap
from mitelacd.feed.protocol import PBXClientFactory
from mitelacd.floor.changes import ChangeSet
from mitelacd.floor.documents import FloorDocuments
from mitelacd.floor.legacy import LEGACY_STATUSES
from mitelacd.floor.names import AGENT_STATES, Names
from mitelacd.floor.records import parse_record
from mitelacd.floor.state import ACTIVITIES, FloorState
from mitelacd.persist import LegacyFileWriter
from mitelacd.testing import Feeder, StreamRequest
from mitelacd.testing.fakes import FakeConnector, FaultyDisk
from mitelacd.web.metrics import RECORD_CODES, Endpoint, FloorMetrics, build_version, endpoint_of
from mitelacd.web.push import EventPush
from mitelacd.web.resources import Root, Served, WebService, WebSettings

BASE = "http://board.test"
TOKEN = "s3cret"
#: Labels of one sample, sorted, as a key.
Labels = tuple[tuple[str, str], ...]


class Scrape:
    """One /metrics body, parsed by prometheus_client."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.types: dict[str, str] = {}
        self.samples: dict[str, dict[Labels, float]] = {}
        for family in text_string_to_metric_families(text):
            self.types[family.name] = family.type
            series = self.samples.setdefault(family.name, {})
            for sample in family.samples:
                series[tuple(sorted(sample.labels.items()))] = sample.value

    def one(self, name: str) -> float:
        """The value of a family without labels."""
        ((labels, value),) = self.samples[name].items()
        assert labels == ()
        return value

    def by(self, name: str, label: str) -> dict[str, float]:
        """A family with one label, as label value -> sample value."""
        out = {}
        for labels, value in self.samples[name].items():
            ((key, text),) = labels
            assert key == label
            out[text] = value
        return out

    def queues(self, name: str) -> dict[tuple[str, str], float]:
        """A per-queue family as (kind, number) -> value."""
        out = {}
        for labels, value in self.samples[name].items():
            found = dict(labels)
            assert set(found) == {"kind", "number"}, found
            out[(found["kind"], found["number"])] = value
        return out


def sync(d: Deferred[Any]) -> Any:
    """The result of a Deferred that StubTreq has already fired."""
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "the request did not complete"
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


class MetricsHarness:
    """A floor on a fake clock with its file writer, push feed, metrics and HTTP tree."""

    def __init__(self, folder: Path, settings: WebSettings | None = None) -> None:
        self.feeder = f = Feeder()
        self.floor, self.clock = f.floor, f.clock
        self.disk = FaultyDisk()
        self.writer = LegacyFileWriter(
            FilePath(str(folder / "mitel_data.json")),
            f.documents,
            f.clock,
            1.0,
            system=self.disk.system(),
        )
        self.push = EventPush(f.floor, f.documents, f.clock, push_interval=0)
        self.metrics = FloorMetrics(f.floor, f.clock, file=self.writer, push=self.push)
        self.settings = settings or WebSettings(token=TOKEN)
        served = Served(
            f.floor,
            f.documents,
            self.settings,
            file_health=self.writer.health,
            metrics=self.metrics,
        )
        root = Root(served, self.push, f.clock)
        # StubTreq makes its methods at run time: mypy cannot see them.
        self.stub: Any = StubTreq(root)
        self.writer.startService()
        self.push.start()
        self.metrics.start()

    def get(self, path: str, token: str | None = TOKEN, **headers: str) -> tuple[int, Any, bytes]:
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        d = self.stub.request("GET", BASE + path, headers=headers)
        self.stub.flush()
        response = sync(d)
        return response.code, response.headers, sync(response.content())

    def scrape(self) -> Scrape:
        code, headers, body = self.get("/metrics")
        assert code == 200, body
        (content_type,) = headers.getRawHeaders("content-type")
        assert content_type.startswith("text/plain; version=0.0.4")
        return Scrape(body.decode("utf-8"))

    def stop(self) -> None:
        self.metrics.stop()
        self.push.stop()
        self.writer.stopService()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[MetricsHarness]:
    d = MetricsHarness(tmp_path)
    try:
        yield d
    finally:
        d.stop()


def known_stream(d: MetricsHarness) -> None:
    """Logins, calls, K and Q records, an unreadable record, noise, sequence trouble,
    a lost link, failed attempts and a reconnection, and a file that fails for a while."""
    f = d.feeder
    f.connect()
    f.steps("A00", agent="1001")  # in, then idle after ringing
    f.steps("A00 T01 G01860", agent="1002")  # ACD call
    f.steps("A00 E01", agent="1003")  # make busy
    f.steps("A00 L01", agent="1004")  # work timer
    f.steps("A00 I02", agent="1005")  # outgoing call
    f.steps("A00 G01860 N01", agent="1006")  # on hold
    f.steps("A00 H01 J00", agent="1007")  # idle
    f.steps("A00 B00", agent="1008")  # logged out
    f.stats("K", "001", "0020030045")
    f.stats("K", "002", "000001000000")
    f.stats("Q", "860", "001002012500")
    d.floor.setNames(Names(groups={"001": "Sales"}, paths={"860": "Main line"}))
    d.disk.full = True
    d.clock.advance(1)  # the paced write fails
    f.raw(b"garbage!")  # unreadable, with no record number
    d.floor.noiseReceived(b"\x00\x00\x00")
    f.seq = (f.seq + 3) % 100
    f.steps("D00", agent="1003")  # a gap of 3
    f.seq = (f.seq - 1) % 100
    f.steps("T01", agent="1001")  # a duplicate
    f.seq = (f.seq + 60) % 100
    f.steps("U01", agent="1001")  # a resynchronisation
    d.clock.advance(1)  # the retry fails too
    d.floor.feedDisconnected("connection lost")
    d.floor.feedConnectFailed("127.0.0.1", 15373, "connection refused")
    d.floor.feedConnectFailed("127.0.0.1", 15373, "connection refused")
    d.disk.full = False
    f.connect()
    f.keepalive()
    f.stats("K", "001", "0040030105")
    f.steps("F00", agent="1003")  # idle
    f.steps("A00", agent="1009")  # in
    d.clock.advance(7)  # the file is written again; the last record is 7 s old


def test_every_family_matches_the_floor_after_a_known_stream(daemon: MetricsHarness) -> None:
    d = daemon
    client = StreamRequest()
    d.push.subscribe(client)
    known_stream(d)
    m = d.scrape()
    floor, feed = d.floor, d.floor.feedView()

    assert m.by("mitelacd_build_info", "version") == {build_version(): 1}
    assert m.one("mitelacd_feed_connected") == 1
    assert m.one("mitelacd_feed_stale") == 0
    assert m.one("mitelacd_feed_stale_after_seconds") == feed["stale_after_seconds"] == 60
    assert floor.feed.last_record_at is not None
    age = d.clock.seconds() - floor.feed.last_record_at
    assert m.one("mitelacd_feed_last_record_age_seconds") == pytest.approx(age, abs=0.001)
    assert age == 7

    # Counters follow the floor's own counts.
    for name in ("mitelacd_records", "mitelacd_unreadable_records", "mitelacd_reconnects"):
        assert m.types[name] == "counter"
    records = m.by("mitelacd_records", "code")
    assert set(records) == set(RECORD_CODES)
    assert records == {code: feed["records_by_code"].get(code, 0) for code in RECORD_CODES}
    assert (records["A"], records["K"], records["Q"], records["R"]) == (9, 3, 1, 1)
    expected = {
        "mitelacd_unreadable_records": ("unparsable_records", 1),
        "mitelacd_noise": ("noise", 1),
        "mitelacd_sequence_gaps": ("sequence_gaps", 1),
        "mitelacd_records_missed": ("records_missed", 3),
        "mitelacd_sequence_duplicates": ("sequence_duplicates", 1),
        "mitelacd_sequence_resyncs": ("sequence_resyncs", 1),
        "mitelacd_connections": ("connections", 2),
        "mitelacd_connect_failures": ("connect_failures", 2),
        "mitelacd_agents_refused": ("agents_refused", 0),
        "mitelacd_extensions_forgotten": ("extensions_forgotten", 0),
        "mitelacd_agents_let_go": ("agents_let_go", 0),
    }
    for name, (key, known) in expected.items():
        assert m.one(name) == feed[key] == known, name
    # Two connections and two failed attempts: three attempts after the first.
    assert m.one("mitelacd_reconnects") == feed["connections"] + feed["connect_failures"] - 1 == 3

    # Agents, every status, activity and state present (zeros included).
    statuses = m.by("mitelacd_agents", "status")
    assert statuses == floor.totals()["agents"]
    assert set(statuses) == set(LEGACY_STATUSES)
    assert statuses == {"in": 1, "out": 1, "busy": 3, "idle": 3, "timer": 1}
    agents = floor.agents.values()
    activities = Counter(a.activity for a in agents)
    assert m.by("mitelacd_agents_by_activity", "activity") == {
        a: activities.get(a, 0) for a in ACTIVITIES
    }
    assert activities["acd_call"] == 1 and activities["hold"] == 1
    states = Counter(a.state for a in agents)
    assert m.by("mitelacd_agents_by_state", "state") == {s: states.get(s, 0) for s in AGENT_STATES}

    # Groups and paths, by kind and number; names only in the info series.
    views = {
        (kind, view["id"]): view
        for kind, table in (("group", floor.groups), ("path", floor.paths))
        for view in floor.queueViews(table)
    }
    assert set(views) == {("group", "001"), ("group", "002"), ("path", "860")}
    for name, key in (
        ("mitelacd_queue_waiting", "waiting"),
        ("mitelacd_queue_agents", "agents_logged_in"),
        ("mitelacd_queue_longest_wait_seconds", "longest_wait_seconds"),
    ):
        assert m.queues(name) == {q: v[key] for q, v in views.items()}, name
    assert m.queues("mitelacd_queue_waiting")[("group", "001")] == 4
    assert m.queues("mitelacd_queue_longest_wait_seconds")[("group", "001")] == 65
    # Only group 001 reported again after the link came back.
    confirmed = m.queues("mitelacd_queue_confirmed")
    assert confirmed == {q: int(v["confirmed"]) for q, v in views.items()}
    assert confirmed == {("group", "001"): 1, ("group", "002"): 0, ("path", "860"): 0}
    assert m.samples["mitelacd_queue_info"] == {
        (("kind", "group"), ("name", "Sales"), ("number", "001")): 1,
        (("kind", "group"), ("name", ""), ("number", "002")): 1,
        (("kind", "path"), ("name", "Main line"), ("number", "860")): 1,
    }

    # The data file, the push feed.
    assert m.one("mitelacd_file_writes") == d.writer.writes >= 1
    assert m.one("mitelacd_file_write_failures") == d.writer.write_failures >= 2
    assert d.writer.failed_attempts == 0  # written again: the total stays
    assert m.one("mitelacd_file_writing") == 1
    assert m.one("mitelacd_push_clients") == len(d.push.subscribers) == 1
    assert m.one("mitelacd_push_deltas") == d.push.deltas_sent > 10
    # The usual process families come from the same registry.
    assert "process_resident_memory_bytes" in m.samples


def test_a_failing_file_and_a_lost_link_show_at_once(daemon: MetricsHarness) -> None:
    d = daemon
    d.feeder.connect()
    d.feeder.steps("A00")
    d.disk.full = True
    d.clock.advance(1)
    d.floor.feedDisconnected("connection lost")
    m = d.scrape()
    assert m.one("mitelacd_file_writing") == 0
    assert m.one("mitelacd_file_write_failures") == d.writer.write_failures == 1
    assert m.one("mitelacd_feed_connected") == 0
    assert m.one("mitelacd_feed_stale") == 1
    assert m.queues("mitelacd_queue_waiting") == {}


def test_before_any_record_the_age_counts_from_the_start(daemon: MetricsHarness) -> None:
    d = daemon
    d.clock.advance(30)
    m = d.scrape()
    assert m.one("mitelacd_feed_last_record_age_seconds") == 30
    assert m.one("mitelacd_reconnects") == 0
    assert m.by("mitelacd_agents", "status") == dict.fromkeys(LEGACY_STATUSES, 0)
    assert set(m.by("mitelacd_records", "code")) == set(RECORD_CODES)


def test_metrics_started_late_take_the_floor_as_it_is(tmp_path: Path) -> None:
    f = Feeder()
    f.connect()
    f.steps("A00 T01", agent="1001")
    f.stats("Q", "860", "001002012500")
    metrics = FloorMetrics(f.floor, f.clock, process=False)
    metrics.start()
    try:
        m = Scrape(prometheus_client.generate_latest(metrics.registry).decode())
        assert m.by("mitelacd_agents", "status")["busy"] == 1
        assert m.by("mitelacd_agents_by_activity", "activity")["ringing"] == 1
        assert m.queues("mitelacd_queue_waiting") == {("path", "860"): 1}
        assert m.by("mitelacd_records", "code")["Q"] == 1
    finally:
        metrics.stop()
    assert not metrics.listening


def test_a_removed_queue_or_agent_leaves_the_series(daemon: MetricsHarness) -> None:
    d = daemon
    f = d.feeder
    f.connect()
    f.steps("A00 G01860", agent="1001")
    f.steps("A00", agent="1002")
    f.stats("K", "001", "0020030045")
    f.stats("K", "002", "0010010010")
    f.stats("Q", "860", "001002012500")
    before = d.scrape()
    assert ("group", "001") in before.queues("mitelacd_queue_waiting")
    version = d.floor.version
    d.metrics.floorChanged(
        ChangeSet(
            version,
            version + 1,
            d.clock.seconds(),
            agents={"1001": None},
            groups={"001": None},
            paths={"860": None},
        )
    )
    after = d.scrape()
    for name in (
        "mitelacd_queue_waiting",
        "mitelacd_queue_agents",
        "mitelacd_queue_longest_wait_seconds",
        "mitelacd_queue_confirmed",
    ):
        assert set(after.queues(name)) == {("group", "002")}, name
    assert [dict(k)["number"] for k in after.samples["mitelacd_queue_info"]] == ["002"]
    assert after.by("mitelacd_agents", "status") == {**dict.fromkeys(LEGACY_STATUSES, 0), "in": 1}
    assert after.by("mitelacd_agents_by_activity", "activity")["acd_call"] == 0


def test_a_renamed_queue_has_one_info_series(daemon: MetricsHarness) -> None:
    d = daemon
    d.feeder.stats("K", "001", "0020030045")
    d.floor.setNames(Names(groups={"001": "Sales"}))
    d.floor.setNames(Names(groups={"001": "Support"}))
    m = d.scrape()
    assert m.samples["mitelacd_queue_info"] == {
        (("kind", "group"), ("name", "Support"), ("number", "001")): 1
    }
    # The figures' own series do not carry the name, so they stay the same series.
    assert set(m.queues("mitelacd_queue_waiting")) == {("group", "001")}


class Untouchable(dict[str, Any]):
    """A floor table that fails any read: a scrape must not walk the floor."""

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a scrape walked the floor")

    __iter__ = __len__ = __getitem__ = __contains__ = _refuse
    get = items = keys = values = _refuse


def test_a_scrape_reads_what_the_change_sets_left_and_never_walks_the_floor(
    daemon: MetricsHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = daemon
    f = d.feeder
    f.connect()
    for n in range(200):
        f.steps("A00 G01860", agent=str(5000 + n))
    f.stats("K", "001", "0020030045")
    expected = d.scrape().samples
    for table in ("agents", "groups", "paths", "extensions"):
        monkeypatch.setattr(d.floor, table, Untouchable())
    for method in ("everything", "snapshot", "agentViews", "queueViews", "legacy", "totals"):
        monkeypatch.setattr(d.floor, method, Untouchable._refuse)
    again = d.scrape()
    assert again.by("mitelacd_agents_by_activity", "activity")["acd_call"] == 200
    # The process and garbage collector families move by themselves between scrapes.
    volatile = {"mitelacd_http_requests", "process_", "python_gc_"}
    assert {k: v for k, v in again.samples.items() if not k.startswith(tuple(volatile))} == {
        k: v for k, v in expected.items() if not k.startswith(tuple(volatile))
    }


def test_one_change_updates_only_what_it_names(daemon: MetricsHarness) -> None:
    d = daemon
    f = d.feeder
    f.connect()
    for n in range(50):
        f.steps("A00", agent=str(5000 + n))
    seen: list[ChangeSet] = []
    real = d.metrics.floorChanged

    def spy(changes: ChangeSet) -> None:
        seen.append(changes)
        real(changes)

    d.floor.removeListener(d.metrics)
    d.metrics.floorChanged = spy  # type: ignore[method-assign]
    d.floor.addListener(d.metrics)
    f.steps("T01", agent="5007")
    (change,) = seen
    assert list(change.agents) == ["5007"]
    m = d.scrape()
    assert m.by("mitelacd_agents_by_activity", "activity")["ringing"] == 1
    assert m.by("mitelacd_agents", "status")["busy"] == 1


def test_the_token_guards_metrics_unless_they_are_public(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    guarded = MetricsHarness(tmp_path / "a")
    try:
        assert guarded.get("/metrics", token=None)[0] == 401
        assert guarded.get("/metrics", token="wrong")[0] == 401
        assert guarded.get("/metrics")[0] == 200
        assert guarded.get("/metrics?token=" + TOKEN, token=None)[0] == 200
    finally:
        guarded.stop()
    (tmp_path / "b").mkdir()
    public = MetricsHarness(tmp_path / "b", WebSettings(token=TOKEN, metrics_public=True))
    try:
        code, _, body = public.get("/metrics", token=None)
        assert code == 200 and b"mitelacd_feed_connected 0.0" in body
        # Only /metrics is opened: the rest still asks for the token.
        assert public.get("/mitel_data.json", token=None)[0] == 401
        assert public.get("/api/v1/state", token=None)[0] == 401
        assert public.get("/metrics/more", token=None)[0] == 404
    finally:
        public.stop()


def test_openmetrics_is_served_when_asked_for(daemon: MetricsHarness) -> None:
    code, headers, body = daemon.get(
        "/metrics", Accept="application/openmetrics-text; version=1.0.0"
    )
    assert code == 200
    (content_type,) = headers.getRawHeaders("content-type")
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")
    head = daemon.get("/metrics")
    assert head[0] == 200 and not head[2].endswith(b"# EOF\n")


def test_each_daemon_has_its_own_registry() -> None:
    first, second = Feeder(), Feeder()
    one = FloorMetrics(first.floor, first.clock)
    two = FloorMetrics(second.floor, second.clock)
    one.start()
    two.start()
    try:
        first.connect()
        assert one.registry.get_sample_value("mitelacd_feed_connected") == 1
        assert two.registry.get_sample_value("mitelacd_feed_connected") == 0
        assert prometheus_client.REGISTRY.get_sample_value("mitelacd_feed_connected") is None
    finally:
        one.stop()
        two.stop()


def test_reconnects_count_every_attempt_after_the_first() -> None:
    f = Feeder()
    metrics = FloorMetrics(f.floor, f.clock, process=False)
    metrics.start()
    factory = PBXClientFactory(f.floor, f.clock, first_delay=1.0)
    connector = FakeConnector()

    def reconnects() -> float | None:
        return metrics.registry.get_sample_value("mitelacd_reconnects_total")

    try:
        # The first attempt fails: not a reconnection yet.
        factory.clientConnectionFailed(connector, Failure(ConnectionRefusedError("refused")))
        assert f.floor.feedView()["connect_failures"] == 1
        assert reconnects() == 0
        f.clock.advance(5)
        assert connector.attempts == 1
        f.connect()  # the retry gets through
        assert reconnects() == 1
        f.floor.feedDisconnected("connection lost")
        f.connect()
        assert reconnects() == 2
        assert metrics.registry.get_sample_value("mitelacd_connect_failures_total") == 1
        assert metrics.registry.get_sample_value("mitelacd_connections_total") == 2
    finally:
        factory.stopTrying()
        metrics.stop()


def test_records_cut_by_the_end_of_a_connection_are_counted() -> None:
    f = Feeder()
    metrics = FloorMetrics(f.floor, f.clock, process=False)
    metrics.start()
    factory = PBXClientFactory(f.floor, f.clock)

    def cut() -> float | None:
        return metrics.registry.get_sample_value("mitelacd_records_cut_total")

    try:
        assert cut() == 0
        for tail in (b"\x0202A0815032002   16", b"\x0203K081510610"):
            receiver = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 15373))
            assert receiver is not None
            receiver.makeConnection(StringTransport())
            receiver.dataReceived(b"\x0201A0815022001   1633   00\r\n" + tail)
            receiver.connectionLost(Failure(ConnectionLost()))
        assert cut() == f.floor.feedView()["records_cut"] == 2
        assert list(f.floor.agents) == ["1633"] and not f.floor.groups
    finally:
        factory.stopTrying()
        metrics.stop()


@pytest.mark.parametrize(
    "path, endpoint",
    [
        (b"/", "/"),
        (b"/mitel_data.json", "/mitel_data.json"),
        (b"/healthz", "/healthz"),
        (b"/metrics", "/metrics"),
        (b"/metrics/", "/metrics"),
        (b"/api/v1/state", "/api/v1/state"),
        (b"/api/v1/state/", "/api/v1/state"),
        (b"/api/v1/events", "/api/v1/events"),
        (b"/api/v1/agents", "/api/v1/agents"),
        (b"/api/v1/agents/1001", "/api/v1/agents/{id}"),
        (b"/api/v1/agents/1001/calls", "other"),
        (b"/api/v1/agents//", "other"),
        (b"/api/v2/state", "other"),
        (b"/wp-login.php", "other"),
        (b"//", "/"),
        (b"", "other"),
    ],
)
def test_endpoint_labels_come_from_a_fixed_set(path: bytes, endpoint: str) -> None:
    assert endpoint_of(path) == endpoint
    assert endpoint in get_args(Endpoint)


class Stream(Protocol):
    """An event stream client that hangs up once the snapshot has come."""

    def __init__(self) -> None:
        self.snapshot: Deferred[None] = Deferred()
        self.data = b""

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(b"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        if b"event: snapshot" in self.data and not self.snapshot.called:
            self.snapshot.callback(None)


@pytest_twisted.ensureDeferred
async def test_http_requests_are_counted_by_endpoint_and_status_over_a_real_socket() -> None:
    floor = FloorState(reactor, stale_after=60)
    service = WebService("tcp:0:interface=127.0.0.1", Served(floor, FloorDocuments(floor)), reactor)
    service.startService()
    try:
        assert service.port is not None
        url = f"http://127.0.0.1:{service.port.getHost().port}"  # type: ignore[attr-defined]
        floor.feedConnected("127.0.0.1", 15373)
        floor.recordReceived(parse_record(b"12A0815022001   1001   00"))

        async def get(path: str, method: str = "GET") -> int:
            response = await treq.request(method, url + path).addTimeout(10, reactor)
            await response.content()
            code: int = response.code
            return code

        asked = [
            ("/", 200),
            ("/mitel_data.json", 200),
            ("/mitel_data.json", 200),
            ("/api/v1/agents/1001", 200),
            ("/api/v1/agents/4242", 404),
            ("/api/v1/state/", 200),
            ("/wp-login.php", 404),
            ("/random/1", 404),
            ("/random/2", 404),
        ]
        for path, code in asked:
            assert await get(path) == code, path
        assert await get("/mitel_data.json", "POST") == 405
        # An event stream client counts when it leaves.
        stream = Stream()
        port = service.port.getHost().port  # type: ignore[attr-defined]
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), stream)
        await stream.snapshot.addTimeout(10, reactor)
        assert stream.transport is not None
        stream.transport.loseConnection()
        for _ in range(200):
            if not service.push.subscribers:
                break
            await deferLater(reactor, 0.01, lambda: None)
        response = await treq.get(url + "/metrics").addTimeout(10, reactor)
        m = Scrape((await response.content()).decode())
        counted = {
            (dict(k)["endpoint"], dict(k)["status"]): v
            for k, v in m.samples["mitelacd_http_requests"].items()
        }
        assert counted == {
            ("/", "200"): 1,
            ("/mitel_data.json", "200"): 2,
            ("/mitel_data.json", "405"): 1,
            ("/api/v1/agents/{id}", "200"): 1,
            ("/api/v1/agents/{id}", "404"): 1,
            ("/api/v1/state", "200"): 1,
            ("other", "404"): 3,
            ("/api/v1/events", "200"): 1,
        }
        assert {e for e, _ in counted} <= set(get_args(Endpoint))
        # The scrape itself is counted once it is answered.
        response = await treq.get(url + "/metrics").addTimeout(10, reactor)
        again = Scrape((await response.content()).decode())
        key = (("endpoint", "/metrics"), ("status", "200"))
        assert again.samples["mitelacd_http_requests"][key] == 1
        assert again.one("mitelacd_push_clients") == 0
        assert service.metrics.listening
    finally:
        await defer.maybeDeferred(service.stopService)
    assert not service.metrics.listening


def test_metrics_public_from_the_command_line_and_the_environment(tmp_path: Path) -> None:
    data = str(tmp_path / "mitel_data.json")
    default = tap.Options()
    default.parseOptions(["--simulate", "--file", data])
    assert default.webSettings().metrics_public is False
    given = tap.Options()
    given.parseOptions(["--simulate", "--file", data, "--metrics-public"])
    assert given.webSettings().metrics_public is True
    env = {"MITELACD_SIMULATE": "1", "MITELACD_FILE": data}
    assert tap.options_from_environment(env).webSettings().metrics_public is False
    for value in ("1", "yes", "true"):
        options = tap.options_from_environment({**env, "MITELACD_METRICS_PUBLIC": value})
        assert options.webSettings().metrics_public is True
    options = tap.options_from_environment({**env, "MITELACD_METRICS_PUBLIC": "0"})
    assert options.webSettings().metrics_public is False


def test_the_daemon_wires_metrics_to_its_file_and_push_feed(tmp_path: Path) -> None:
    options = tap.Options()
    options.parseOptions(["--host", "127.0.0.1", "--file", str(tmp_path / "mitel_data.json")])
    service = tap.makeService(options, MemoryReactorClock())
    (web,) = [s for s in service if isinstance(s, WebService)]
    (writer,) = [s for s in service if isinstance(s, LegacyFileWriter)]
    assert web.metrics.file is writer
    assert web.metrics.push is web.push
    service.startService()
    try:
        assert web.metrics.listening
        assert web.metrics.registry.get_sample_value("mitelacd_file_write_failures_total") == 0
        assert web.metrics.registry.get_sample_value("mitelacd_push_clients") == 0
    finally:
        service.stopService()
    assert not web.metrics.listening


def test_the_benchmark_measures_the_metrics_listener(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent.parent / "bench"))
    import change_cost

    figures = change_cost.measure(agents=300, records=1500)
    assert 0 < figures["metrics_listener_us"] < figures["us_per_change"]
    assert 0 < figures["without_metrics_us"] < 10_000
    assert 0 < figures["scrape_us"] < 1_000_000
