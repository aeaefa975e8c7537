"""Several sources, one floor: state-model.md §9, rule by rule, through the real parser."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from test_changes import Eager, Late
from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.logger import LogLevel

from mitelacd.floor.changes import AgentStep
from mitelacd.floor.documents import FloorDocuments
from mitelacd.floor.legacy import validate_legacy
from mitelacd.floor.records import Malformed, parse_record
from mitelacd.floor.state import FAILOVER_SECONDS, FloorState
from mitelacd.mqtt.relay import MAX_RELAYED_SOURCES, MAX_SOURCE_NAME, FloorRelay
from mitelacd.mqtt.url import parse_broker
from mitelacd.reports.figures import DayFigures, parse_day_starts
from mitelacd.reports.smdrlive import SmdrService
from mitelacd.sources import SourceError, parse_source
from mitelacd.testing import START, TAILS, ChangeRecorder, call_body, capture_log, stats_body
from mitelacd.web.metrics import FloorMetrics
from mitelacd.web.push import EventPush
from mitelacd.web.resources import Root, Served, WebSettings
from mitelacd.web.smdrmetrics import SmdrMetrics


class Site:
    """A floor of several named sources on a fake clock, each source with its own numbering."""

    def __init__(self, *sources: str, stale_after: float = 35.0) -> None:
        self.clock = Clock()
        self.clock.advance(START)
        self.floor = FloorState(self.clock, stale_after=stale_after, sources=sources)
        self.documents = FloorDocuments(self.floor)
        self.recorder = ChangeRecorder()
        self.floor.addListener(self.recorder)
        self.seq = dict.fromkeys(sources, 0)
        for name in sources:
            self.floor.input(name).feedConnected("192.0.2.1", 15373)

    def raw(self, source: str, body: str) -> None:
        result = parse_record(body.encode())
        assert not isinstance(result, Malformed), result
        self.floor.input(source).recordReceived(result)

    def next_seq(self, source: str) -> int:
        seq = self.seq.setdefault(source, 0)
        self.seq[source] = (seq + 1) % 100
        return seq

    def event(self, source: str, code: str, agent: str = "1001", dn: str = "2001") -> None:
        tail = TAILS.get(code, "01")
        self.raw(source, call_body(self.next_seq(source), code, dn, agent, tail))

    def stats(self, source: str, code: str, number: str, figures: str) -> None:
        self.raw(source, stats_body(self.next_seq(source), code, number, figures))

    def play(self, script: str) -> None:
        """``"a:A b:G +10 a:B"``: an event on a source, or seconds passing."""
        for token in script.split():
            if token.startswith("+"):
                self.clock.advance(float(token[1:]))
            else:
                source, _, code = token.partition(":")
                self.event(source, code)

    def status(self, agent: str = "1001") -> str:
        return str(self.floor.legacy()["agents"][agent])

    def view(self, agent: str = "1001") -> dict[str, Any]:
        return self.floor.agents[agent].view()

    def logged_in_steps(self, agent: str = "1001") -> list[bool]:
        return [
            step.logged_in
            for changes in self.recorder.changes
            for step in changes.steps
            if isinstance(step, AgentStep) and step.agent == agent
        ]


# state-model §9, agents: (what happens, status then, source then, failover then, logged
# in throughout by the day's figures?). The window is FAILOVER_SECONDS.
AGENTS = [
    pytest.param(
        "a:A a:G +5 a:B",
        "busy",
        "a",
        {"from": "a", "to": None, "pending": True},
        True,
        id="a logout waits out the window, shown as it was",
    ),  # fmt: skip
    pytest.param(
        "a:A a:G +5 a:B +10 b:A",
        "in",
        "b",
        {"from": "a", "to": "b", "pending": False},
        True,
        id="failover within the window",
    ),  # fmt: skip
    pytest.param(
        f"a:A +5 a:B +{FAILOVER_SECONDS - 0.5} b:A",
        "in",
        "b",
        {"from": "a", "to": "b", "pending": False},
        True,
        id="failover at the window's end",
    ),  # fmt: skip
    pytest.param(
        f"a:A +5 a:B +{FAILOVER_SECONDS + 0.5}",
        "out",
        "a",
        None,
        False,
        id="no login in the window: a logout",
    ),  # fmt: skip
    pytest.param(
        f"a:A +5 a:B +{FAILOVER_SECONDS + 0.5} b:A",
        "in",
        "b",
        None,
        False,
        id="login after the window: a logout, then a login",
    ),  # fmt: skip
    pytest.param(
        "a:A +5 a:B +3 a:A",
        "in",
        "a",
        None,
        False,
        id="login again on the same source: a logout, then a login",
    ),  # fmt: skip
    pytest.param(
        "a:A +5 a:B +3 b:C",
        "busy",
        "b",
        None,
        False,
        id="another event elsewhere ends the wait as a logout",
    ),  # fmt: skip
    pytest.param(
        "a:A +5 b:A", "in", "b", None, True, id="the latest event wins, from whichever source"
    ),  # fmt: skip
    pytest.param("a:B", "out", "a", None, False, id="a B of an agent not logged in is not held"),
    pytest.param(
        f"a:A +5 a:B +10 b:A +5 b:B +{FAILOVER_SECONDS + 1}",
        "out",
        "b",
        {"from": "a", "to": "b", "pending": False},
        False,
        id="a later logout leaves the last failover shown",
    ),  # fmt: skip
    pytest.param(
        "a:A +5 b:A +1 a:B",
        "in",
        "b",
        {"from": "a", "to": "b", "pending": False},
        True,
        id="the B of a failover read after its A ends nothing",
    ),  # fmt: skip
]


@pytest.mark.parametrize("script, status, source, failover, throughout", AGENTS)
def test_agents_are_one_across_sources_and_a_failover_is_not_a_logout(
    script: str, status: str, source: str, failover: dict[str, Any] | None, throughout: bool
) -> None:
    site = Site("a", "b")
    site.play(script)
    assert site.status() == status
    view = site.view()
    assert view["source"] == source
    shown = view["failover"]
    if failover is None:
        assert shown is None
    else:
        assert {k: shown[k] for k in ("from", "to", "pending")} == failover
    # The day's figures are told the agent's steps: through a failover it never logs out.
    steps = site.logged_in_steps()
    assert (False not in steps) == throughout, steps


def test_a_held_logout_is_stamped_when_it_came_and_lets_its_timer_go() -> None:
    site = Site("a", "b")
    site.play("a:A +5 a:B")
    logged_out_at = site.floor.timeline.wall()
    assert site.clock.getDelayedCalls(), "the failover window is timed"
    site.clock.advance(FAILOVER_SECONDS + 1)
    agent = site.floor.agents["1001"]
    assert agent.status == "out"
    assert agent.since == logged_out_at
    assert not site.clock.getDelayedCalls()
    site.play("a:A +1 a:B +1 b:A")
    assert not site.clock.getDelayedCalls(), "a failover cancels the wait"


def test_with_one_source_a_logout_is_at_once() -> None:
    site = Site("a")
    site.play("a:A +1 a:B")
    assert site.status() == "out"
    assert not site.clock.getDelayedCalls()


# state-model §9, queues: each source's K or Q figures (waiting, agents, longest), and the
# merged queue's legacy figures.
QUEUES = [
    pytest.param({"a": "0020050130", "b": "0030050200"}, ("005", "005", "0200"), id="summed"),
    pytest.param({"a": "0000040000", "b": "0010060015"}, ("001", "006", "0015"), id="agents max"),
    pytest.param({"a": "9000040000", "b": "2000060015"}, ("999", "006", "0015"), id="capped"),
    pytest.param({"b": "0070030105"}, ("007", "003", "0105"), id="on one source only"),
    pytest.param(
        {"a": "0010021000", "b": "0010020959"}, ("002", "002", "1000"), id="longest by minutes"
    ),  # fmt: skip
]


@pytest.mark.parametrize("figures, merged", QUEUES)
@pytest.mark.parametrize("code, table", [("Q", "paths"), ("K", "groups")])
def test_the_same_number_on_several_sources_is_one_queue(
    figures: dict[str, str], merged: tuple[str, str, str], code: str, table: str
) -> None:
    site = Site("a", "b")
    for source, digits in figures.items():
        site.stats(source, code, "860", digits)
    waiting, agents, longest = merged
    assert site.floor.legacy()[table]["860"] == {
        "waiting": waiting,
        "agents": agents,
        "longestwait": longest,
    }
    view = next(q for q in site.floor.snapshot()[table] if q["id"] == "860")
    assert view["waiting"] == int(waiting)
    # Each source's own figures stay visible.
    assert sorted(view["sources"]) == sorted(figures)
    for source, digits in figures.items():
        assert view["sources"][source]["waiting"] == int(digits[:3])
        assert view["sources"][source]["agents_logged_in"] == int(digits[3:6])


def test_a_later_report_of_one_source_replaces_only_its_part() -> None:
    site = Site("a", "b")
    site.stats("a", "Q", "860", "0020050130")
    site.stats("b", "Q", "860", "0030050200")
    site.stats("a", "Q", "860", "0000050000")
    assert site.floor.legacy()["paths"]["860"]["waiting"] == "003"
    assert site.floor.totals()["waiting"] == 3


def test_a_stale_source_makes_only_its_own_part_stale() -> None:
    site = Site("a", "b", stale_after=35.0)
    site.play("a:A b:A")  # 1001 on a
    site.event("b", "A", agent="1002")
    site.stats("a", "Q", "860", "0010050010")
    site.stats("b", "Q", "860", "0010050010")
    for _ in range(3):  # a keeps talking, b falls silent
        site.clock.advance(15)
        site.stats("a", "Q", "860", "0010050010")
    assert site.floor.staleSources() == ["b"]
    assert not site.floor.isStale()
    site.floor.input("b").feedDisconnected("connection lost")
    assert site.floor.agents["1001"].confirmed is False  # its latest event came from b
    assert site.floor.agents["1002"].confirmed is False
    site.event("a", "C", agent="1003")
    assert site.floor.agents["1003"].confirmed is True
    queue = next(q for q in site.floor.snapshot()["paths"] if q["id"] == "860")
    assert queue["confirmed"] is False
    assert queue["sources"]["a"]["confirmed"] is True
    assert queue["sources"]["b"]["confirmed"] is False
    site.clock.advance(40)
    assert site.floor.isStale()
    assert site.floor.staleSources() == ["a", "b"]


def test_each_source_keeps_its_own_record_numbers_and_r_clock() -> None:
    site = Site("a", "b")
    # Interleaved, each source's numbers run on without a gap.
    for _ in range(5):
        site.stats("a", "K", "610", "0000010000")
        site.stats("b", "K", "610", "0000010000")
    site.raw("a", f"{site.next_seq('a'):02d}R08151020240311")
    site.raw("b", f"{site.next_seq('b'):02d}R08151020240310")  # b's clock is a day behind
    feed = site.floor.feedView()
    for name in ("a", "b"):
        view = feed["sources"][name]
        assert view["sequence_gaps"] == 0
        assert view["sequence_duplicates"] == 0
        assert view["pbx_dates_refused"] == 0
        assert view["records_by_code"] == {"K": 5, "R": 1}
    site.raw("b", f"{site.next_seq('b'):02d}R08151020240309")
    assert site.floor.feedView()["sources"]["b"]["pbx_dates_refused"] == 1
    assert site.floor.feedView()["sources"]["a"]["pbx_dates_refused"] == 0


def test_the_legacy_view_of_a_merged_floor_keeps_its_shape() -> None:
    site = Site("a", "b")
    site.play("a:A a:G b:A")
    site.event("b", "A", agent="1002")
    site.event("b", "C", agent="1002")
    site.stats("a", "Q", "860", "0020050130")
    site.stats("b", "Q", "860", "0030050200")
    site.stats("b", "K", "610", "0010020005")
    site.play("+1 b:B")  # 1001 logs out on b: held for the window
    document = json.loads(site.documents.legacy())
    assert set(document) == {"agents", "groups", "paths", "lastUpdate"}
    assert document["agents"] == {"1001": "in", "1002": "busy"}
    assert document["paths"] == {"860": {"waiting": "005", "agents": "005", "longestwait": "0200"}}
    assert document["groups"] == {"610": {"waiting": "001", "agents": "002", "longestwait": "0005"}}
    validate_legacy(document)
    # The document kept change by change is the one built whole.
    assert document == json.loads(json.dumps(site.floor.legacy()))


def test_an_unnamed_floor_of_one_source_shows_no_sources() -> None:
    floor = FloorState(Clock())
    assert not floor.several
    floor.feedConnected("192.0.2.1", 15373)
    floor.recordReceived(parse_record(call_body(0, "A", "2001", "1001", "01").encode()))
    assert "source" not in floor.agents["1001"].view()
    assert "sources" not in floor.feedView()


def test_a_relayed_record_counts_for_its_source_and_its_link() -> None:
    clock = Clock()
    clock.advance(START)
    floor = FloorState(clock, sources=("site1",))
    floor.feedConnected("broker.example", 1883, "site1")
    floor.relayed("site1", "a", parse_record(call_body(0, "A", "2001", "1001", "01").encode()))
    assert floor.agents["1001"].source == "a"
    assert floor.sources["a"].feed.connected
    assert floor.sources["a"].feed.host == "broker.example"
    assert floor.staleSources() == []
    floor.feedDisconnected("broker gone", "site1")
    relayed = floor.sources["a"].feed
    assert (relayed.connected, floor.agents["1001"].confirmed) == (False, False)


SOURCES = [
    ("a=rte://10.1.2.3", ("a", "rte", "10.1.2.3", 15373)),
    ("b2=rte://pbx-b.example:16000", ("b2", "rte", "pbx-b.example", 16000)),
    ("site.1=smdr://[fe80::1]:1753", ("site.1", "smdr", "fe80::1", 1753)),
    ("c=smdr://10.1.2.4", ("c", "smdr", "10.1.2.4", 1752)),
    ("central=mqtt://u:p@broker:1884/acme/site1", ("central", "mqtt", "broker", 1884)),
]


@pytest.mark.parametrize("text, expected", SOURCES)
def test_source_urls_are_read(text: str, expected: tuple[str, str, str, int]) -> None:
    spec = parse_source(text, {})
    assert (spec.name, spec.scheme, spec.host, spec.port) == expected
    assert "p@" not in spec.shown()


BAD_SOURCES = [
    ("rte://10.1.2.3", "is not NAME=rte://"),
    ("a b=rte://x", "source name 'a b'"),
    ("a=tcp://x", "unknown scheme 'tcp'"),
    ("a=rte://x:0", "not 1 to 65535"),
    ("a=rte://x:99999", "not 1 to 65535"),
    ("a=rte://x/path", "takes HOST[:PORT] and nothing else"),
    ("a=10.1.2.3", "is not a URL"),
    ("a=mqtt://u:secret@", "source a:"),
]


@pytest.mark.parametrize("text, words", BAD_SOURCES)
def test_a_bad_source_says_what_is_wrong(text: str, words: str) -> None:
    with pytest.raises(SourceError) as refused:
        parse_source(text, {})
    assert words in str(refused.value)
    assert "secret" not in str(refused.value)


@pytest.mark.parametrize(
    "script, logged_in",
    [
        pytest.param("a:A +100 a:B +5 b:A +95", 200.0, id="a failover: logged in throughout"),
        # A logout is counted when the window ends (130 s), then the login at 165 s.
        pytest.param("a:A +100 a:B +30 +35 b:A +35", 165.0, id="a logout, then a login"),
    ],
)
def test_the_days_figures_run_on_across_a_failover(script: str, logged_in: float) -> None:
    site = Site("a", "b")
    figures = DayFigures(parse_day_starts("00:00"), datetime.timezone.utc)
    figures.sink = lambda intervals, spans: None
    site.floor.addListener(figures)
    site.play(script)
    rows = {r["id"]: r for r in figures.today("agent", site.floor.timeline.now())}
    assert rows["1001"]["logged_in_seconds"] == pytest.approx(logged_in)


# --- what the web side says of each source ------------------------------------------------


class SiteOnTheWeb:
    """A floor of sources ``a`` and ``b`` with its HTTP tree, and SMDR links of each."""

    def __init__(self) -> None:
        self.site = Site("a", "b", stale_after=35.0)
        self.clock = self.site.clock
        self.smdr = SmdrService(self.site.floor, self.clock, unnamed=False, stale_after=35.0)
        self.smdr_links = {name: self.smdr.link(name) for name in ("a-calls", "b-calls")}
        self.smdr.startService()
        floor, documents = self.site.floor, self.site.documents
        metrics = FloorMetrics(floor, self.clock, process=False)
        metrics.registry.register(SmdrMetrics(self.smdr))
        metrics.start()
        served = Served(floor, documents, WebSettings(), smdr=self.smdr, metrics=metrics)
        push = EventPush(floor, documents, self.clock)
        self.stub = StubTreq(Root(served, push, self.clock))

    def get(self, path: str) -> tuple[int, Any]:
        stub: Any = self.stub
        done: list[Any] = []
        stub.get("http://site.test" + path).addCallback(done.append)
        self.stub.flush()
        response = done[0]
        body: list[bytes] = []
        response.content().addCallback(body.append)
        self.stub.flush()
        document = body[0].decode() if path == "/metrics" else json.loads(body[0])
        return response.code, document

    def close(self) -> None:
        self.smdr.stopService()


def test_healthz_feed_and_metrics_say_which_source_is_not_live() -> None:
    web = SiteOnTheWeb()
    site = web.site
    for link in web.smdr_links.values():
        link.smdrConnected("192.0.2.9", 1752)
    site.stats("a", "Q", "860", "0010050010")
    site.stats("b", "Q", "860", "0010050010")
    code, health = web.get("/healthz")
    assert (code, health["status"]) == (200, "ok")
    assert {name: s["status"] for name, s in health["sources"].items()} == {"a": "ok", "b": "ok"}
    for _ in range(3):  # b falls silent
        site.clock.advance(15)
        site.stats("a", "Q", "860", "0010050010")
    code, health = web.get("/healthz")
    assert (code, health["reason"]) == (503, "source not live")
    assert health["detail"] == "source b: stale (no record for more than 35 s)"
    assert health["sources"]["a"]["status"] == "ok"
    code, feed = web.get("/api/v1/feed")
    assert feed["feed"]["stale_sources"] == ["b"]
    assert feed["stale"] is False
    assert sorted(feed["feed"]["sources"]) == ["a", "b"]
    assert sorted(feed["feed"]["smdr"]["sources"]) == ["a-calls", "b-calls"]
    code, metrics = web.get("/metrics")
    assert 'mitelacd_feed_stale{source="a"} 0.0' in metrics
    assert 'mitelacd_feed_stale{source="b"} 1.0' in metrics
    assert 'mitelacd_records_total{code="Q",source="b"} 1.0' in metrics
    assert 'mitelacd_smdr_connected{source="b-calls"} 1.0' in metrics
    web.close()


def test_healthz_names_the_smdr_link_that_stays_down() -> None:
    web = SiteOnTheWeb()
    site = web.site
    web.smdr_links["a-calls"].smdrConnected("192.0.2.9", 1752)
    web.smdr_links["b-calls"].smdrConnectFailed("192.0.2.10", 1752, "connection refused")
    for _ in range(3):
        site.clock.advance(15)
        site.stats("a", "Q", "860", "0010050010")
        site.stats("b", "Q", "860", "0010050010")
    code, health = web.get("/healthz")
    assert (code, health["reason"]) == (503, "smdr disconnected")
    assert health["detail"] == (
        "the SMDR link b-calls to 192.0.2.10:1752 has been down for more than 35 s:"
        " connection refused"
    )
    assert health["smdr"]["sources"]["a-calls"]["connected"] is True
    web.close()


@pytest.mark.parametrize("script", [row.values[0] for row in AGENTS])
def test_a_view_read_late_is_the_view_of_its_change_through_a_failover(script: str) -> None:
    eager_site, late_site = Site("a", "b"), Site("a", "b")
    eager, late = Eager(), Late()
    eager_site.floor.addListener(eager)
    late_site.floor.addListener(late)
    eager_site.play(script + f" +{FAILOVER_SECONDS + 1}")
    late_site.play(script + f" +{FAILOVER_SECONDS + 1}")
    assert late.seen == eager.seen


def test_an_mqtt_link_brings_a_bounded_number_of_sources() -> None:
    clock = Clock()
    clock.advance(START)
    floor = FloorState(clock, sources=("site1",))
    relay = FloorRelay(floor, "site1", parse_broker("mqtt://broker.example/acme"))
    record = b"\x02" + call_body(0, "A", "2001", "1001", "01").encode()
    with capture_log("mitelacd.mqtt.relay") as logged:
        for n in range(MAX_RELAYED_SOURCES + 6):
            relay.recordFrom(f"pbx-{n}", record)
        relay.recordFrom("x" * (MAX_SOURCE_NAME + 1), record)
        relay.smdrLineFrom("pbx-0", b"a line")
        relay.smdrLineFrom("pbx-0", b"another")
    assert len(floor.sources) == 1 + MAX_RELAYED_SOURCES
    assert relay.refused == 7
    assert relay.smdr_ignored == 2
    warnings = logged.lines(LogLevel.warn)
    assert len(warnings) == 2, warnings
    assert "let go" in warnings[0] and "does not keep" in warnings[1]
