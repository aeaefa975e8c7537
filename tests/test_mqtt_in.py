"""MQTT in: the records and SMDR lines another mitelacd published, read back from the broker.

Without a broker: the client id (the same at every start, short enough for
any broker), what is ignored and how often the log says so, the payloads
remembered to drop a duplicate, and a broker that cannot be reached. With
a real Mosquitto (``processes``): what a publisher sends reaches the sink
in order with its source; a source stopped and started again gets what was
published meanwhile, once; a broker away for a while (5 s here; 30 s in
test_mqtt_sources_end_to_end.py, through daemons), with persistence, loses
nothing and delivers nothing twice; a payload given twice on a topic is
handed on once; bad topics and empty messages are counted, never handed on.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor, threads
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel

from mitelacd.floor.documents import FloorDocuments
from mitelacd.floor.state import FloorState
from mitelacd.mqtt.link import BrokerLink
from mitelacd.mqtt.publisher import MQTTPublisher
from mitelacd.mqtt.subscriber import (
    CLIENT_ID_MOST,
    MQTTRecordSource,
    RecentPayloads,
    client_id_for,
)
from mitelacd.mqtt.url import Broker, parse_broker
from mitelacd.testing import capture_log, stats_body
from mitelacd.testing.mosquitto import MosquittoBroker, MosquittoMissing, free_port

SECRET = "s3cret-Pa55"
#: Seconds the broker is away in the outage test.
OUTAGE = 5.0
LOGS = "mitelacd.mqtt.subscriber"


class Sink:
    """Keeps what a source hands it, in order."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes]] = []
        self.smdr: list[tuple[str, bytes]] = []
        self.ups: list[str] = []
        self.downs: list[str] = []

    def recordFrom(self, source: str, payload: bytes) -> None:
        self.records.append((source, payload))

    def smdrLineFrom(self, source: str, payload: bytes) -> None:
        self.smdr.append((source, payload))

    def linkUp(self, shown: str) -> None:
        self.ups.append(shown)

    def linkDown(self, why: str) -> None:
        self.downs.append(why)


async def until(condition: Callable[[], bool], what: str = "", timeout: float = 15.0) -> None:
    """Let the reactor run until ``condition`` holds."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"not within {timeout:g} s: {what or condition}")
        await deferLater(reactor, 0.01, lambda: None)


async def pause(seconds: float) -> None:
    await deferLater(reactor, seconds, lambda: None)


def record(n: int) -> bytes:
    """An ACD record as published (STX to its end), each ``n`` its own."""
    hhmmss = f"{8 + n // 3600:02d}{n // 60 % 60:02d}{n % 60:02d}"
    return b"\x02" + stats_body(n % 100, "K", "610", f"{n % 50:03d}0020000", hhmmss).encode()


def smdr_line(n: int) -> bytes:
    return f"01/02 08:{n // 60 % 60:02d}:{n % 60:02d} 0:00:{n % 60:02d} 2001 860 line {n}".encode()


class Feed:
    """A publishing mitelacd's side: records and SMDR lines given to its publisher."""

    def __init__(self, url: str, source: str) -> None:
        self.publisher = MQTTPublisher(
            parse_broker(url, {}),
            FloorDocuments(FloorState(reactor)),
            source,
            reactor,
            first_delay=0.05,
            max_delay=0.2,
        )

    async def start(self) -> None:
        self.publisher.startService()
        await until(lambda: self.publisher.connected, "the publisher connected")

    def records(self, numbers: range) -> list[bytes]:
        sent = [record(n) for n in numbers]
        for line in sent:
            self.publisher.record(line)
        return sent

    def smdr_lines(self, numbers: range) -> list[bytes]:
        sent = [smdr_line(n) for n in numbers]
        for line in sent:
            self.publisher.smdr_line(line)
        return sent

    async def settled(self) -> None:
        await until(
            lambda: self.publisher.connected and self.publisher.pending == 0,
            f"the broker took everything ({self.publisher.health()})",
        )

    async def stop(self) -> None:
        if self.publisher.running:
            await self.publisher.stopService().addTimeout(15, reactor)


def reader(url: str, name: str, sink: Sink, **options: Any) -> MQTTRecordSource:
    options.setdefault("first_delay", 0.05)
    options.setdefault("max_delay", 0.2)
    return MQTTRecordSource(parse_broker(url, {}), name, sink, reactor, **options)


async def start(source: MQTTRecordSource) -> None:
    source.startService()
    await until(lambda: source.connected, f"subscribed ({source.health()})")


async def stop(source: MQTTRecordSource) -> None:
    if source.running:
        await source.stopService().addTimeout(15, reactor)


def mosquitto(persistence: bool = False) -> MosquittoBroker:
    """A started Mosquitto; without one installed the test fails, naming the package."""
    try:
        server = MosquittoBroker(persistence=persistence)
    except MosquittoMissing as e:
        pytest.fail(str(e), pytrace=False)
    server.start()
    return server


@pytest.fixture
def broker() -> Iterator[MosquittoBroker]:
    """A Mosquitto broker for the test; its log is printed (shown when the test fails)."""
    server = mosquitto()
    try:
        yield server
    finally:
        print(f"--- mosquitto log ---\n{server.log_text()}")
        server.close()


def publish_by_hand(port: int, messages: list[tuple[str, bytes]]) -> None:
    """Publish at QoS 1 with a plain paho client, each acknowledged before the next
    (blocking: in a test on the reactor, run it in a thread)."""
    from paho.mqtt.client import CallbackAPIVersion, Client

    client = Client(CallbackAPIVersion.VERSION2, client_id="by-hand")
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    try:
        end = time.monotonic() + 10
        while not client.is_connected():
            assert time.monotonic() < end, "the hand publisher did not connect"
            time.sleep(0.01)
        for topic, payload in messages:
            info = client.publish(topic, payload, qos=1)
            info.wait_for_publish(timeout=10)
            assert info.is_published(), topic
    finally:
        client.disconnect()
        client.loop_stop()


# --- no broker -----------------------------------------------------------------------------


def test_the_client_id_is_the_same_at_every_start_and_short_enough() -> None:
    site = client_id_for("site1", "pbx-1")
    assert site == client_id_for("site1", "pbx-1")
    assert re.fullmatch(r"mitelacd-in-[0-9a-f]{11}", site), site
    assert len(site) == CLIENT_ID_MOST
    others = {
        client_id_for("site1", "pbx-2"),
        client_id_for("site2", "pbx-1"),
        client_id_for("site1/pbx-1", ""),
        site,
    }
    assert len(others) == 4
    broker = Broker("mqtt", "broker.lan", 1883, "site1")
    source = MQTTRecordSource(broker, "pbx-1", Sink(), MemoryReactorClock(), Clock())
    assert source.client_id == site
    assert list(source.subscriptions) == [("site1/records/#", 1), ("site1/smdr/#", 1)]


def test_the_last_payloads_are_remembered_and_the_oldest_forgotten() -> None:
    recent = RecentPayloads(512)
    assert not any(recent.seen(record(n)) for n in range(512))
    assert recent.seen(record(0)) and recent.seen(record(511))
    assert not recent.seen(record(512))  # 0 goes
    assert not recent.seen(record(0))  # and is new again
    assert recent.seen(record(512))


def test_what_is_not_a_record_or_line_is_counted_and_logged_a_few_times_a_minute() -> None:
    clock = Clock()
    clock.advance(1_700_000_000)
    broker = Broker("mqtt", "127.0.0.1", 1883, "site1", "ha", SECRET)
    sink = Sink()
    source = MQTTRecordSource(broker, "reader", sink, MemoryReactorClock(), clock)
    link = BrokerLink(broker, source, MemoryReactorClock(), clock, "t", None, 1)
    bad = [
        ("site1/status", b"online"),
        ("site2/records/pbx-1", record(1)),
        ("site1/records", record(2)),
        ("site1/records/pbx-1/deeper", record(3)),
        ("site1/smdr/", smdr_line(4)),
        ("site1/records/pbx-1", b""),
        ("site1/smdr/pbx-1", b""),
    ]
    with capture_log(LOGS) as logged:
        for topic, payload in bad:
            source.linkMessage(link, topic, payload)
        source.linkMessage(link, "site1/records/pbx-1", record(5))
        source.linkMessage(link, "site1/smdr/pbx-1", smdr_line(6))
        clock.advance(60)
        source.linkMessage(link, "site1/status", b"offline")
    assert sink.records == [("pbx-1", record(5))]
    assert sink.smdr == [("pbx-1", smdr_line(6))]
    health = source.health()
    assert (health["messages"], health["ignored"]) == (10, 8)
    assert (health["records"], health["smdr_lines"], health["duplicates"]) == (1, 1, 0)
    lines = logged.lines(LogLevel.warn)
    assert len(lines) == 6, lines  # five, then the next minute's first
    assert lines[0] == (
        "ignored a message from the MQTT broker mqtt://ha@127.0.0.1:1883/site1 on"
        " 'site1/status': not a topic of records or SMDR lines"
        " (0 more not logged since the last such line)"
    )
    assert "'site1/records': not records/<source>" in lines[2]
    assert "'site1/records/pbx-1/deeper': not records/<source>" in lines[3]
    assert "'site1/smdr/': not smdr/<source>" in lines[4]
    assert "(2 more not logged since the last such line)" in lines[5]
    assert not any(SECRET in line for line in lines)


@pytest_twisted.ensureDeferred
async def test_an_unreachable_broker_is_said_once_tried_again_and_stopped_at_once() -> None:
    sink = Sink()
    source = reader(f"mqtt://ha:{SECRET}@127.0.0.1:{free_port()}/site1", "reader", sink)
    with capture_log(LOGS) as logged:
        source.startService()
        await until(lambda: len([e for e in logged.lines() if "again in" in e]) >= 3, "retries")
        started = time.monotonic()
        await stop(source)
        assert time.monotonic() - started < 1.0
    assert sink.downs == ["connection refused"]
    assert sink.ups == []
    health = source.health()
    assert health["connected"] is False
    assert health["problem"] == "connection refused"
    assert health["connections"] == 0
    assert health["broker"] == f"mqtt://ha@127.0.0.1:{source.broker.port}/site1"
    warnings = logged.lines(LogLevel.warn)
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("could not connect to the MQTT broker mqtt://ha@127.0.0.1:")
    assert not any(SECRET in line for line in logged.lines())


# --- with Mosquitto -------------------------------------------------------------------------


@pytest.mark.processes
@pytest_twisted.ensureDeferred
async def test_records_and_smdr_lines_reach_the_sink_in_order_with_their_sources(
    broker: MosquittoBroker,
) -> None:
    sink = Sink()
    source = reader(broker.url("site1"), "reader", sink)
    one = Feed(broker.url("site1"), "pbx-1")
    two = Feed(broker.url("site1"), "icp/main+1")
    elsewhere = Feed(broker.url("site2"), "pbx-1")
    with capture_log(LOGS) as logged:
        await start(source)
        try:
            for feed in (one, two, elsewhere):
                await feed.start()
            sent_one: list[bytes] = []
            sent_two: list[bytes] = []
            for n in range(0, 300, 10):
                sent_one += one.records(range(n, n + 10))
                sent_two += two.records(range(1000 + n, 1000 + n + 10))
                elsewhere.records(range(n, n + 10))
            lines = one.smdr_lines(range(40))
            await until(
                lambda: len(sink.records) == 600 and len(sink.smdr) == 40,
                f"everything ({source.health()})",
            )
            for feed in (one, two, elsewhere):
                await feed.settled()
            await pause(0.3)  # nothing more comes
            assert [p for s, p in sink.records if s == "pbx-1"] == sent_one
            assert [p for s, p in sink.records if s == "icp_main_1"] == sent_two
            assert len(sink.records) == 600
            assert sink.smdr == [("pbx-1", line) for line in lines]
            assert sink.ups == [f"mqtt://127.0.0.1:{broker.port}/site1"]
            health = source.health()
            assert health["connected"] is True
            assert health["client_id"] == client_id_for("site1", "reader")
            assert {k: health[k] for k in ("records", "smdr_lines", "duplicates", "ignored")} == {
                "records": 600,
                "smdr_lines": 40,
                "duplicates": 0,
                "ignored": 0,
            }
            assert health["messages"] == 640
            assert health["connections"] == 1
        finally:
            for feed in (one, two, elsewhere):
                await feed.stop()
            await stop(source)
    assert source.connected is False
    assert sink.downs == ["stopped"]
    infos = logged.lines(LogLevel.info)
    assert any(f"a new session for {source.client_id}" in line for line in infos), infos
    assert logged.lines(LogLevel.warn) == []


@pytest.mark.processes
@pytest_twisted.ensureDeferred
async def test_a_source_started_again_gets_what_was_published_while_it_was_away_once(
    broker: MosquittoBroker,
) -> None:
    feed = Feed(broker.url("site1"), "pbx-1")
    first, second = Sink(), Sink()
    before = reader(broker.url("site1"), "reader", first)
    after = reader(broker.url("site1"), "reader", second)
    assert after.client_id == before.client_id
    with capture_log(LOGS) as logged:
        await start(before)
        await feed.start()
        try:
            sent = feed.records(range(10))
            await until(lambda: len(first.records) == 10, "the first records")
            await stop(before)
            assert first.downs == ["stopped"]
            # While nobody reads: the broker takes them, and keeps them for the session.
            away = feed.records(range(10, 60)) + feed.smdr_lines(range(5))
            await feed.settled()
            await start(after)
            await until(
                lambda: len(second.records) == 50 and len(second.smdr) == 5,
                f"what was published meanwhile ({after.health()})",
            )
            later = feed.records(range(60, 70))
            await until(lambda: len(second.records) == 60, "the records after")
            await pause(0.3)  # nothing more comes
        finally:
            await feed.stop()
            await stop(after)
            await stop(before)
    assert [p for _, p in first.records] == sent
    assert [p for _, p in second.records] == away[:50] + later
    assert [p for _, p in second.smdr] == away[50:]
    assert after.duplicates == 0
    assert after.health()["connections"] == 1
    infos = logged.lines(LogLevel.info)
    kept = [line for line in infos if f"it kept the session of {after.client_id}" in line]
    assert len(kept) == 1, infos


@pytest.mark.processes
@pytest_twisted.ensureDeferred
async def test_a_broker_away_for_a_while_loses_nothing_and_delivers_nothing_twice() -> None:
    """With persistence the broker keeps the source's session and what it queued over its
    own restart; the publisher sends again what was not acknowledged; the source drops
    what comes twice."""
    server = mosquitto(persistence=True)
    sink = Sink()
    source = reader(server.url("site1"), "reader", sink)
    feed = Feed(server.url("site1"), "pbx-1")
    with capture_log(LOGS) as logged:
        try:
            await start(source)
            await feed.start()
            sent = feed.records(range(20))
            lines = feed.smdr_lines(range(5))
            # The broker goes while records flow: some of them in flight either side.
            sent += feed.records(range(20, 40))
            await threads.deferToThread(server.stop)
            await until(lambda: not source.connected, "the loss seen")
            started = time.monotonic()
            n = 40
            while time.monotonic() - started < OUTAGE:
                sent += feed.records(range(n, n + 2))
                if n % 20 == 0:
                    lines += feed.smdr_lines(range(n, n + 1))
                n += 2
                await pause(0.25)
            assert feed.publisher.connected is False
            assert source.connected is False
            await threads.deferToThread(server.start)
            sent += feed.records(range(n, n + 20))
            await until(
                lambda: len(sink.records) >= len(sent) and len(sink.smdr) >= len(lines),
                f"everything after the outage ({source.health()}, {len(sent)} sent)",
                timeout=60,
            )
            await feed.settled()
            await pause(0.5)  # nothing more comes
        finally:
            await feed.stop()
            await stop(source)
            print(f"--- mosquitto log ---\n{server.log_text()}")
            server.close()
    assert len(sent) > 80
    got = [p for _, p in sink.records]
    assert len(got) == len(sent)
    assert got == sent
    assert [p for _, p in sink.smdr] == lines
    assert {s for s, _ in sink.records} == {"pbx-1"}
    assert feed.publisher.dropped == 0
    health = source.health()
    assert health["connections"] == 2
    assert health["records"] == len(sent)
    assert health["messages"] == len(sent) + len(lines) + health["duplicates"]
    assert len(sink.ups) == 2 and sink.downs[0] == "connection lost"
    warnings = logged.lines(LogLevel.warn)
    assert len([line for line in warnings if "lost the MQTT broker" in line]) == 1, warnings
    assert not [line for line in warnings if "could not connect" in line], warnings
    infos = logged.lines(LogLevel.info)
    back = r"connected to the MQTT broker \S+ after \d+ s: it kept the session of mitelacd-in-"
    assert len([line for line in infos if re.match(back, line)]) == 1, infos


@pytest.mark.processes
@pytest_twisted.ensureDeferred
async def test_a_payload_given_twice_on_a_topic_is_handed_on_once(
    broker: MosquittoBroker,
) -> None:
    sink = Sink()
    source = reader(broker.url("site1"), "reader", sink)
    await start(source)
    try:
        messages = [
            ("site1/records/pbx-1", record(1)),
            ("site1/records/pbx-1", record(1)),  # again, as a publisher sending twice would
            ("site1/records/pbx-1", record(2)),
            ("site1/records/pbx-2", record(1)),  # the same on another topic: its own
            ("site1/smdr/pbx-1", smdr_line(1)),
            ("site1/smdr/pbx-1", smdr_line(1)),
            ("site1/records/pbx-1", record(3)),
        ]
        await threads.deferToThread(publish_by_hand, broker.port, messages)
        await until(lambda: ("pbx-1", record(3)) in sink.records, "the last record")
        await pause(0.3)  # nothing more comes
    finally:
        await stop(source)
    assert sink.records == [
        ("pbx-1", record(1)),
        ("pbx-1", record(2)),
        ("pbx-2", record(1)),
        ("pbx-1", record(3)),
    ]
    assert sink.smdr == [("pbx-1", smdr_line(1))]
    health = source.health()
    assert (health["messages"], health["duplicates"]) == (7, 2)


@pytest.mark.processes
@pytest_twisted.ensureDeferred
async def test_a_bad_topic_or_an_empty_message_is_counted_and_logged_never_handed_on(
    broker: MosquittoBroker,
) -> None:
    sink = Sink()
    source = reader(broker.url("site1"), "reader", sink)
    with capture_log(LOGS) as logged:
        await start(source)
        try:
            messages = [
                ("site1/records", record(1)),  # records/# matches its parent too
                ("site1/records/pbx-1/deeper", record(2)),
                ("site1/smdr/pbx-1", b""),
                ("site1/records/pbx-1", b""),
                ("site1/status", b"online"),  # not subscribed: never comes
                ("site1/records/pbx-1", record(3)),
            ]
            await threads.deferToThread(publish_by_hand, broker.port, messages)
            await until(lambda: source.records == 1, "the good record")
            await pause(0.3)  # nothing more comes
        finally:
            await stop(source)
    assert sink.records == [("pbx-1", record(3))]
    assert sink.smdr == []
    health = source.health()
    assert (health["messages"], health["ignored"], health["records"]) == (5, 4, 1)
    warnings = logged.lines(LogLevel.warn)
    assert [re.sub(r"^.* on ('[^']*'): (.*) \(.*$", r"\1 \2", line) for line in warnings] == [
        "'site1/records' not records/<source>",
        "'site1/records/pbx-1/deeper' not records/<source>",
        "'site1/smdr/pbx-1' an empty message",
        "'site1/records/pbx-1' an empty message",
    ]
