"""One SMDR service fed by several named SMDR links (``--source NAME=smdr://HOST``) and relays."""

from __future__ import annotations

import datetime
from typing import Any

import attrs
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.task import Clock

from mitelacd.clock import Timeline
from mitelacd.feed.smdr import SmdrClientFactory, SmdrSink
from mitelacd.floor.smdr import SmdrLine
from mitelacd.floor.state import FloorState
from mitelacd.reports.smdrlive import SmdrLink, SmdrService
from mitelacd.testing.smdrlines import abandoned_line, standard_line
from mitelacd.web.smdrmetrics import SmdrMetrics

UTC = datetime.timezone.utc
#: 11 March 2024, 08:00 UTC: the records below are of that morning.
MORNING = datetime.datetime(2024, 3, 11, 8, 0, tzinfo=UTC).timestamp()


def of_system(line: str, system: str) -> bytes:
    """The line as controller ``system`` sends it (its system identifier at column 86)."""
    assert line[85:88] == "001"
    return (line[:85] + system + line[88:]).encode()


#: The same call, as far as the records tell, on two controllers: 001 and 002.
A1 = of_system(standard_line("08:16"), "001")
A2 = of_system(standard_line("08:16"), "002")
B1 = of_system(abandoned_line("08:17", "00:00:31"), "001")
C2 = of_system(standard_line("08:18", called="1002"), "002")


@attrs.define
class History:
    """In place of the HistoryService: keeps the lines and intervals it is handed."""

    source: str = "pbx"
    lines: list[SmdrLine] = attrs.Factory(list)

    def add_smdr(self, lines: list[SmdrLine], intervals: list[Any]) -> None:
        self.lines.extend(lines)

    def query(self, read: Any) -> Any:
        from twisted.internet.defer import succeed

        class Store:
            def smdr_lines(self, source: str, since: float) -> list[SmdrLine]:
                return []

            def smdr_intervals(self, source: str, first: str, last: str) -> list[Any]:
                return []

        return succeed(read(Store()))


def service(
    start: float = MORNING + 17 * 60 + 30, history: History | None = None, **options: Any
) -> tuple[SmdrService, Clock]:
    clock = Clock()
    clock.advance(start)
    floor = FloorState(clock, timeline=Timeline(clock))
    smdr = SmdrService(floor, clock, tz=UTC, history=history, **options)  # type: ignore[arg-type]
    return smdr, clock


def named(*names: str, **options: Any) -> tuple[SmdrService, Clock, list[SmdrLink]]:
    """A service of named links only (no ``--smdr``), made before it starts."""
    smdr, clock = service(unnamed=False, **options)
    links = [smdr.link(name) for name in names]
    smdr.startService()
    return smdr, clock, links


def test_a_link_is_a_sink_made_once_in_the_order_asked() -> None:
    smdr, _, (a, b) = named("a", "b")
    sink: SmdrSink = a
    assert smdr.link("a") is sink and smdr.link("b") is b
    assert list(smdr.links) == ["a", "b"]
    assert smdr.links["a"] is a.state and a.name == "a"
    factory = SmdrClientFactory(smdr.link("b"), Clock())
    assert factory.sink is b


def test_each_link_counts_only_its_own_lines_and_connections() -> None:
    history = History()
    smdr, clock, (a, b) = named("a", "b", history=history)
    a.smdrConnected("10.1.2.3", 1752)
    b.smdrConnectFailed("10.1.2.4", 1752, "Connection was refused.")
    b.smdrConnected("10.1.2.4", 1752)
    b.smdrDisconnected("Connection was closed cleanly.")
    b.smdrConnected("10.1.2.4", 1752)
    a.smdrLine(A1)
    a.smdrLine(B1)
    a.smdrLine(b"this is no SMDR record")
    b.smdrLine(A2)
    b.smdrNoise(b"xxxx", "dropped 5000 bytes without a line end")
    health = smdr.health()
    sources = health["sources"]
    assert list(sources) == ["a", "b"]
    first, second = sources["a"], sources["b"]
    assert (first["host"], first["connections"], first["lines"]) == ("10.1.2.3", 1, 3)
    assert (first["layouts"], first["unreadable"]) == ({"standard": 2}, 1)
    assert first["disconnect_reason"] is None and first["connected"]
    assert (second["host"], second["connections"], second["lines"]) == ("10.1.2.4", 2, 1)
    assert (second["layouts"], second["unreadable"]) == ({"standard": 1}, 1)
    assert second["disconnect_reason"] == "Connection was closed cleanly."
    assert smdr.links["b"].connect_failures == 1 and smdr.links["a"].connect_failures == 0
    assert smdr.links["b"].noise == 1 and smdr.links["a"].noise == 0
    # The top of the document is the first link, as it was of the one link.
    assert {k: v for k, v in health.items() if k != "sources"} == first
    assert (smdr.host, smdr.connections, smdr.lines) == ("10.1.2.3", 1, 3)
    # Every line goes to the history, as it did.
    assert [line.text.encode() for line in history.lines[:2]] == [A1, B1]
    assert len(history.lines) == 5
    # The counters of the service are of all the links.
    assert smdr.records[("standard", "answered")] == 2
    assert smdr.records[("unreadable", "unreadable")] == 2


def test_one_link_down_too_long_is_named_while_the_other_is_fine() -> None:
    smdr, clock, (a, b) = named("a", "b", idle_after=600.0, stale_after=35.0)
    a.smdrConnected("10.1.2.3", 1752)
    clock.advance(35)
    assert smdr.down_links() == [] and not smdr.down_too_long()
    clock.advance(1)
    assert smdr.down_links() == ["b"]  # never connected
    assert smdr.down_too_long()
    b.smdrConnected("10.1.2.4", 1752)
    a.smdrDisconnected("Connection was lost.")
    assert smdr.down_links() == [] and not smdr.down_too_long()
    clock.advance(36)
    assert smdr.down_links() == ["a"]
    assert not smdr.health()["sources"]["b"]["idle"]
    clock.advance(600 - 36)
    assert smdr.idle_links() == ["b"] and smdr.idle()  # a is down, not idle
    b.smdrLine(A2)
    assert smdr.idle_links() == [] and not smdr.idle()
    a.smdrConnected("10.1.2.3", 1752)
    assert smdr.down_links() == []


def test_lines_of_both_controllers_land_in_the_same_intervals_as_calls_of_each() -> None:
    smdr, clock, (a, b) = named("a", "b")
    a.smdrLine(A1)
    a.smdrLine(B1)
    b.smdrLine(A2)  # the same call as A1 but for the system: a call of its own
    b.smdrLine(C2)
    [interval] = smdr.intervals(clock.seconds())
    assert (interval.path, interval.offered, interval.answered, interval.abandoned) == (
        "860",
        4,
        3,
        1,
    )
    assert smdr.offered == {"860": 4}
    # One controller alone: the same call twice is one call.
    alone, clock = service()
    alone.startService()
    alone.smdrLine(A1)
    alone.smdrLine(A1)
    [interval] = alone.intervals(clock.seconds())
    assert interval.offered == 1


def test_relayed_lines_count_for_their_source_and_never_make_it_down() -> None:
    history = History()
    smdr, clock, (a,) = named("a", history=history, idle_after=600.0, stale_after=35.0)
    a.smdrConnected("10.1.2.3", 1752)
    smdr.smdrLineFrom("b", A2, via="site")  # a source first heard of this way
    smdr.smdrLineFrom("a", A1)  # and a link read here too
    assert list(smdr.links) == ["a", "b"]
    relayed = smdr.links["b"]
    assert (relayed.lines, relayed.relayed, relayed.via, relayed.connections) == (1, 1, "site", 0)
    assert (smdr.links["a"].lines, smdr.links["a"].relayed) == (1, 1)
    assert smdr.health()["sources"]["b"]["lines"] == 1
    [interval] = smdr.intervals(clock.seconds())
    assert interval.offered == 2
    assert [line.text.encode() for line in history.lines] == [A2, A1]
    clock.advance(3600)
    assert smdr.down_links() == []  # b is relayed: never down
    assert smdr.idle_links() == ["a", "b"]  # silent for --smdr-idle
    smdr.smdrLineFrom("b", C2)
    assert smdr.idle_links() == ["a"]
    a.smdrDisconnected("Connection was lost.")
    smdr.smdrLineFrom("a", B1)  # relayed lines do not bring a link read here up
    clock.advance(36)
    assert smdr.down_links() == ["a"]


def test_a_service_of_relayed_lines_only_is_never_down() -> None:
    smdr, clock, _ = named()
    assert smdr.links == {} and smdr.health()["connected"] is False
    assert "sources" not in smdr.health()
    clock.advance(3600)
    assert not smdr.down_too_long()
    smdr.smdrLineFrom("a", A1)
    clock.advance(3600)
    assert smdr.down_links() == [] and not smdr.down_too_long()
    assert smdr.health()["lines"] == 1 and smdr.health()["sources"]["a"]["lines"] == 1


def test_a_link_asked_for_once_running_is_down_from_then() -> None:
    smdr, clock, _ = named(stale_after=35.0)
    smdr.smdrLineFrom("a", A1)
    clock.advance(100)
    smdr.link("b")
    smdr.link("a")  # relayed until now; read here from now
    clock.advance(35)
    assert smdr.down_links() == []
    clock.advance(1)
    assert smdr.down_links() == ["a", "b"]


def test_the_unnamed_link_alone_keeps_todays_health() -> None:
    smdr, clock = service(stale_after=35.0)
    smdr.startService()
    assert list(smdr.links) == [""]
    smdr.smdrConnected("10.1.2.3", 1752)
    smdr.smdrLine(A1)
    health = smdr.health()
    assert "sources" not in health
    assert (health["host"], health["connections"], health["lines"]) == ("10.1.2.3", 1, 1)
    assert smdr.links[""].lines == 1 and smdr.link("") is smdr.link("")
    smdr.smdrDisconnected("gone")
    clock.advance(36)
    assert smdr.down_links() == [""] and smdr.down_too_long()


def test_the_unnamed_link_comes_first_beside_named_ones() -> None:
    smdr, clock = service()
    a = smdr.link("a")
    smdr.startService()
    a.smdrConnected("10.1.2.4", 1752)
    a.smdrLine(A2)
    smdr.smdrConnected("10.1.2.3", 1752)
    health = smdr.health()
    assert health["host"] == "10.1.2.3" and health["lines"] == 0
    assert list(health["sources"]) == ["", "a"]
    assert health["sources"]["a"]["lines"] == 1


def scrape(smdr: SmdrService) -> dict[tuple[str, str], float]:
    """The link's series by (name, source), and the records by their labels."""
    registry = CollectorRegistry()
    registry.register(SmdrMetrics(smdr))
    text = generate_latest(registry).decode()
    return {
        (sample.name, ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def test_the_link_metrics_carry_the_source_label() -> None:
    smdr, clock = service()
    a = smdr.link("a")
    smdr.startService()
    smdr.smdrConnected("10.1.2.3", 1752)
    a.smdrConnected("10.1.2.4", 1752)
    a.smdrDisconnected("gone")
    a.smdrConnected("10.1.2.4", 1752)
    a.smdrLine(A2)
    scraped = scrape(smdr)
    link_series = {key: value for key, value in scraped.items() if key[1].startswith("source=")}
    assert link_series == {
        ("mitelacd_smdr_connected", "source="): 1.0,
        ("mitelacd_smdr_connected", "source=a"): 1.0,
        ("mitelacd_smdr_idle", "source="): 0.0,
        ("mitelacd_smdr_idle", "source=a"): 0.0,
        ("mitelacd_smdr_connections_total", "source="): 1.0,
        ("mitelacd_smdr_connections_total", "source=a"): 2.0,
        ("mitelacd_smdr_last_line_timestamp_seconds", "source=a"): clock.seconds(),
    }
    assert scraped["mitelacd_smdr_records_total", "layout=standard,outcome=answered"] == 1.0
    clock.advance(900)
    scraped = scrape(smdr)
    assert scraped["mitelacd_smdr_idle", "source="] == 1.0
    assert scraped["mitelacd_smdr_idle", "source=a"] == 1.0


def test_without_a_line_there_is_no_last_line_metric() -> None:
    smdr, _ = service()
    smdr.startService()
    scraped = scrape(smdr)
    assert scraped["mitelacd_smdr_connected", "source="] == 0.0
    assert scraped["mitelacd_smdr_connections_total", "source="] == 0.0
    assert not any(name.startswith("mitelacd_smdr_last_line") for name, _ in scraped)
