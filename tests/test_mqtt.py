"""``--mqtt``: the floor, every record and every SMDR line on an MQTT broker (docs/mqtt.md).

Without a broker: the URL and the options, the record hooks of the feed,
the backoff, the discovery configs against docs/mqtt.md, and a broker that
cannot be reached (bounded, counted, in health and /metrics, no password
anywhere). With a real Mosquitto (``processes``): the retained topics are
the API's entity views and follow the floor, every record arrives in order
at QoS 1, an outage loses nothing up to the bound and drops the oldest past
it, discovery configs have the documented shape, TLS, and a ``twistd``
child whose status is ``online``, then ``offline`` at a clean stop and by
its last will when it is killed.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import queue
import random
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_twisted
import treq
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client import generate_latest
from twisted.internet import reactor, threads
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import LogLevel
from twisted.python import usage
from twisted.python.failure import Failure

from mitelacd import __version__, tap
from mitelacd.feed.protocol import ACDReceiver, PBXClientFactory
from mitelacd.feed.smdr import SmdrClientFactory, SMDRReceiver
from mitelacd.floor.documents import FloorDocuments
from mitelacd.floor.names import parse_names
from mitelacd.floor.state import FloorState
from mitelacd.mqtt import discovery
from mitelacd.mqtt.metrics import MQTTMetrics
from mitelacd.mqtt.publisher import Backoff, MQTTPublisher
from mitelacd.mqtt.url import Broker, BrokerURLError, parse_broker, topic_level
from mitelacd.testing import CheckoutTwistd, call_body, capture_log, fake_pbx, stats_body, wire
from mitelacd.testing.mosquitto import MosquittoBroker, Received, Subscriber, free_port
from mitelacd.web.metrics import FloorMetrics
from mitelacd.web.resources import Served, WebService

ROOT = Path(__file__).parent.parent
PBX = IPv4Address("TCP", "10.1.2.3", 15373)
SMDR = IPv4Address("TCP", "10.1.2.3", 1752)
POINTER = "Run 'twistd mitelacd --help' for the options."
SECRET = "s3cret-Pa55"


# --- the URL and the options ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "broker"),
    [
        ("mqtt://broker.lan", Broker("mqtt", "broker.lan", 1883, "mitelacd")),
        ("mqtts://broker.lan", Broker("mqtts", "broker.lan", 8883, "mitelacd")),
        ("MQTT://10.1.2.9:1884/", Broker("mqtt", "10.1.2.9", 1884, "mitelacd")),
        ("mqtt://[fd00::9]:1884/site1", Broker("mqtt", "fd00::9", 1884, "site1")),
        (
            "mqtts://ha:p%40ss@broker.lan/site1/floor2/",
            Broker("mqtts", "broker.lan", 8883, "site1/floor2", "ha", "p@ss"),
        ),
    ],
)
def test_broker_urls(url: str, broker: Broker) -> None:
    assert parse_broker(url, {}) == broker
    assert "p@ss" not in repr(broker) and "p%40ss" not in broker.shown()


def test_the_broker_is_shown_without_its_password() -> None:
    broker = parse_broker(f"mqtts://ha:{SECRET}@[fd00::9]/site1", {})
    assert broker.password == SECRET
    assert broker.shown() == str(broker) == "mqtts://ha@[fd00::9]:8883/site1"
    assert SECRET not in repr(broker)


def test_the_password_may_come_from_the_environment() -> None:
    environ = {"MITELACD_MQTT_PASSWORD": SECRET}
    assert parse_broker("mqtt://ha@broker.lan", environ).password == SECRET
    # One in the URL comes first.
    assert parse_broker("mqtt://ha:other@broker.lan", environ).password == "other"
    assert parse_broker("mqtt://broker.lan", {}).password is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param(
            "broker.lan:1883",
            "--mqtt 'broker.lan:1883' is not a broker URL: give"
            " mqtt://[USER[:PASSWORD]@]HOST[:PORT][/PREFIX] (mqtts:// for TLS)",
            id="no-scheme",
        ),
        pytest.param(
            f"tcp://ha:{SECRET}@broker.lan",
            "--mqtt 'tcp://ha:***@broker.lan': the scheme must be mqtt:// or mqtts://, not tcp://",
            id="scheme",
        ),
        pytest.param(
            "mqtt:///site1",
            "--mqtt 'mqtt:///site1' names no host: give"
            " mqtt://[USER[:PASSWORD]@]HOST[:PORT][/PREFIX] (mqtts:// for TLS)",
            id="no-host",
        ),
        pytest.param(
            f"mqtt://ha:{SECRET}@broker.lan:99999",
            "--mqtt 'mqtt://ha:***@broker.lan:99999': the port must be a number from 1 to 65535",
            id="port",
        ),
        pytest.param(
            f"mqtt://ha:{SECRET}/x@y@broker.lan",
            "--mqtt 'mqtt://ha:***@broker.lan': the port must be a number from 1 to 65535",
            id="password-not-encoded",
        ),
        pytest.param(
            "mqtt://broker.lan:mqtt",
            "--mqtt 'mqtt://broker.lan:mqtt': the port must be a number from 1 to 65535",
            id="port-name",
        ),
        pytest.param(
            "mqtt://broker.lan/site/#",
            "--mqtt 'mqtt://broker.lan/site/#': a broker URL has no ?query or #fragment: give"
            " mqtt://[USER[:PASSWORD]@]HOST[:PORT][/PREFIX] (mqtts:// for TLS)",
            id="fragment",
        ),
        pytest.param(
            "mqtt://broker.lan/site/+/x",
            "--mqtt 'mqtt://broker.lan/site/+/x': the topic prefix 'site/+/x' may not hold"
            " the wildcards + or #",
            id="wildcard",
        ),
        pytest.param(
            "mqtt://broker.lan/site//x",
            "--mqtt 'mqtt://broker.lan/site//x': the topic prefix 'site//x' has an empty level",
            id="empty-level",
        ),
        pytest.param(
            "mqtt://broker.lan/$SYS",
            "--mqtt 'mqtt://broker.lan/$SYS': the topic prefix '$SYS' may not start with $"
            " (the broker's own topics)",
            id="dollar",
        ),
        pytest.param(
            f"mqtt://:{SECRET}@broker.lan",
            "--mqtt 'mqtt://:***@broker.lan': a password (in the URL) needs a user:"
            " mqtt://USER@broker.lan/...",
            id="password-without-user",
        ),
    ],
)
def test_a_bad_broker_url_is_a_usage_error(tmp_path: Path, url: str, message: str) -> None:
    with pytest.raises(usage.UsageError) as raised:
        options(tmp_path, "--mqtt", url)
    assert str(raised.value) == message
    assert SECRET not in str(raised.value)


def test_the_source_is_one_topic_level() -> None:
    assert topic_level("10.1.2.3") == "10.1.2.3"
    assert topic_level("fd00::9") == "fd00::9"
    assert topic_level("site/a+b#") == "site_a_b_"
    with pytest.raises(BrokerURLError):
        parse_broker("mqtt://", {})


def options(tmp_path: Path, *argv: str) -> tap.Options:
    parsed = tap.Options()
    parsed.parseOptions(["--simulate", "--file", str(tmp_path / "mitel_data.json"), *argv])
    return parsed


def test_the_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MITELACD_MQTT_PASSWORD", raising=False)
    assert options(tmp_path)["mqtt"] is None
    assert options(tmp_path, "--mqtt", "none")["mqtt"] is None
    parsed = options(tmp_path, "--mqtt", "mqtt://ha@broker.lan/site1", "--mqtt-discovery")
    assert parsed["mqtt"] == Broker("mqtt", "broker.lan", 1883, "site1", "ha")
    assert parsed["mqtt-discovery"]
    with pytest.raises(usage.UsageError, match=r"^--mqtt-discovery needs --mqtt$"):
        options(tmp_path, "--mqtt-discovery")
    # The password of the environment needs a user in the URL.
    monkeypatch.setenv("MITELACD_MQTT_PASSWORD", SECRET)
    assert options(tmp_path, "--mqtt", "mqtt://ha@broker.lan")["mqtt"].password == SECRET
    with pytest.raises(usage.UsageError) as raised:
        options(tmp_path, "--mqtt", "mqtt://broker.lan")
    assert str(raised.value) == (
        "--mqtt 'mqtt://broker.lan': a password (in $MITELACD_MQTT_PASSWORD) needs a user:"
        " mqtt://USER@broker.lan/..."
    )


def test_the_tac_environment_turns_it_on(tmp_path: Path) -> None:
    environ = {
        "MITELACD_SIMULATE": "1",
        "MITELACD_FILE": str(tmp_path / "mitel_data.json"),
        "MITELACD_MQTT": "mqtts://broker.lan/site1",
        "MITELACD_MQTT_DISCOVERY": "yes",
    }
    parsed = tap.options_from_environment(environ)
    assert parsed["mqtt"] == Broker("mqtts", "broker.lan", 8883, "site1")
    assert parsed["mqtt-discovery"]


def test_without_paho_it_is_a_usage_error_naming_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "paho", None)
    monkeypatch.setitem(sys.modules, "paho.mqtt", None)
    monkeypatch.setitem(sys.modules, "paho.mqtt.client", None)
    with pytest.raises(usage.UsageError) as raised:
        options(tmp_path, "--mqtt", "mqtt://broker.lan")
    assert str(raised.value) == (
        "--mqtt needs paho-mqtt, which is not installed: pip install 'mitelacd[mqtt]'"
    )
    # Without --mqtt nothing asks for it.
    assert options(tmp_path)["mqtt"] is None


def test_the_mqtt_extra_is_declared() -> None:
    import configparser

    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    extras = config["options.extras_require"]
    wanted = "paho-mqtt>=2.1,<3"
    assert wanted in extras["mqtt"].replace(" ", "").split()
    assert wanted in extras["test"].replace(" ", "").split()


def test_the_daemon_wires_the_publisher_between_the_floor_and_the_links(tmp_path: Path) -> None:
    """Made after the floor, started before the web and the links (so it stops after
    them: what they read last is published); told of every record and SMDR line."""
    argv = ["--host", "127.0.0.1", "--smdr", "same", "--history", "none", "--http", "tcp:0"]
    argv += ["--file", str(tmp_path / "mitel_data.json"), "--mqtt", "mqtt://broker.lan/site1"]
    parsed = tap.Options()
    parsed.parseOptions([*argv, "--mqtt-discovery"])
    service = tap.makeService(parsed, MemoryReactorClock())
    children = list(service)
    publisher = next(c for c in children if isinstance(c, MQTTPublisher))
    web = next(c for c in children if isinstance(c, WebService))
    clients = [c for c in children if isinstance(c, tap.PBXClientService)]
    assert len(clients) == 2
    assert children.index(publisher) < children.index(web) < min(map(children.index, clients))
    acd = next(c.factory for c in clients if isinstance(c.factory, PBXClientFactory))
    smdr = next(c.factory for c in clients if isinstance(c.factory, SmdrClientFactory))
    assert acd.record_listeners == [publisher.record]
    assert smdr.line_listeners == [publisher.smdr_line]
    assert publisher.documents.floor is service.floor
    assert publisher.discovery
    assert publisher.records_topic == "site1/records/127.0.0.1"
    assert publisher.smdr_topic == "site1/smdr/127.0.0.1"
    scraped = generate_latest(web.metrics.registry).decode()
    assert "mitelacd_mqtt_connected 0.0" in scraped
    assert "mitelacd_mqtt_pending 0.0" in scraped


@pytest.mark.processes
def test_twistd_with_a_bad_url_exits_64_with_two_lines(tmp_path: Path) -> None:
    child = CheckoutTwistd(
        "mitelacd",
        "--simulate",
        "--file",
        str(tmp_path / "mitel_data.json"),
        "--mqtt",
        f"mqtt://ha:{SECRET}@broker.lan:0",
        cwd=tmp_path,
    )
    assert child.process.wait(timeout=60) == tap.EXIT_USAGE
    child.wait_for(re.escape(POINTER), timeout=10)
    assert [line.rstrip("\n") for line in child.seen] == [
        "twistd mitelacd: --mqtt 'mqtt://ha:***@broker.lan:0': the port must be a number"
        " from 1 to 65535",
        POINTER,
    ]


# --- what the feed tells ----------------------------------------------------------------------


class NoSink:
    """An SMDR sink that takes everything and keeps nothing."""

    def smdrConnected(self, host: str, port: int) -> None:
        pass

    def smdrLine(self, line: bytes) -> None:
        pass

    def smdrNoise(self, data: bytes, reason: str) -> None:
        pass

    def smdrDisconnected(self, why: str) -> None:
        pass

    def smdrConnectFailed(self, host: str, port: int, why: str) -> None:
        pass


def test_the_acd_link_tells_every_record_as_read_after_the_floor() -> None:
    clock = Clock()
    floor = FloorState(clock)
    factory = PBXClientFactory(floor, clock, idle_timeout=None)
    told: list[tuple[bytes, int]] = []
    factory.record_listeners.append(
        lambda raw: told.append((raw, sum(floor.feed.records_by_code.values())))
    )
    receiver = cast(ACDReceiver, factory.buildProtocol(PBX))
    receiver.makeConnection(StringTransport(peerAddress=PBX))
    login = call_body(1, "A", "2001", "1001", "00")
    report = stats_body(2, "K", "610", "0010020145")
    keepalive = "03R08151020240311"
    # CR LF; a record ended by the next STX; noise; a record cut across reads
    # and ended by a bare LF; one that ends with silence (the idle flush).
    data = wire(login) + b"\x02" + report.encode()
    data += b"\x02" + keepalive.encode() + b"\n" + b"line noise\r\n"
    cut = len(data) - 20
    receiver.dataReceived(data[:cut])
    receiver.dataReceived(data[cut:])
    last = call_body(4, "B", "2001", "1001", "00")
    receiver.dataReceived(b"\x02" + last.encode())
    assert [raw for raw, _ in told] == [b"\x02" + r.encode() for r in (login, report, keepalive)]
    clock.advance(1)  # the last one, after a silence
    assert [raw for raw, _ in told][-1] == b"\x02" + last.encode()
    # Each was told once the floor had taken it in.
    assert [applied for _, applied in told] == [1, 2, 3, 4]
    assert floor.agents["1001"].status == "out"
    assert floor.feed.noise == 1


def test_the_smdr_link_tells_every_line_as_read() -> None:
    clock = Clock()
    factory = SmdrClientFactory(NoSink(), clock)
    told: list[bytes] = []
    factory.line_listeners.append(told.append)
    receiver = cast(SMDRReceiver, factory.buildProtocol(SMDR))
    receiver.makeConnection(StringTransport(peerAddress=SMDR))
    receiver.dataReceived(b"01/02 08:15:02 line one\r\n\x00\x00line two\rline th")
    receiver.dataReceived(b"ree\n")
    assert told == [b"01/02 08:15:02 line one", b"line two", b"line three"]


# --- the backoff ---------------------------------------------------------------------------------


def test_the_backoff_grows_to_its_cap_jittered_and_starts_again() -> None:
    state = random.getstate()
    random.seed(7)
    try:
        backoff = Backoff(0.5, 10.0)
        waits = [backoff.next() for _ in range(40)]
    finally:
        random.setstate(state)
    assert 0.3 < waits[0] < 0.7
    assert waits[1] > waits[0] * 1.5
    assert max(waits) <= 10.0
    capped = waits[10:]
    assert all(6.0 < w <= 10.0 for w in capped), capped
    assert len({round(w, 3) for w in capped}) == len(capped)  # spread out
    backoff.reset()
    assert backoff.next() < 0.7


# --- discovery: the configs docs/mqtt.md shows ------------------------------------------------

#: docs/mqtt.md's examples: its topic, and what it is the config of.
DOCUMENTED = {
    "homeassistant/sensor/mitelacd/agent_1001_state/config": (
        "agents",
        "1001",
        "state",
        "Ada Lovelace",
    ),
    "homeassistant/sensor/mitelacd/group_610_waiting/config": ("groups", "610", "waiting", "Sales"),
    "homeassistant/sensor/mitelacd/path_860_longest_wait/config": (
        "paths",
        "860",
        "longest_wait",
        None,
    ),
}


def documented_configs() -> dict[str, dict[str, Any]]:
    """docs/mqtt.md's discovery examples: a topic in backquotes, then its JSON."""
    text = (ROOT / "docs" / "mqtt.md").read_text()
    found = re.findall(
        r"`(homeassistant/sensor/[A-Za-z0-9_/-]+/config)`(?:(?!```).)*?```json\n(.*?)```",
        text,
        re.S,
    )
    return {topic: json.loads(body) for topic, body in found}


def test_the_discovery_configs_are_those_the_document_shows() -> None:
    shown = documented_configs()
    assert set(shown) == set(DOCUMENTED)
    for topic, (kind, key, sensor, name) in DOCUMENTED.items():
        assert discovery.config_topic("mitelacd", kind, key, sensor) == topic  # type: ignore[arg-type]
        made = discovery.config("mitelacd", kind, key, sensor, name)  # type: ignore[arg-type]
        example = shown[topic]
        assert example["device"]["sw_version"]  # the version at the time of writing
        example["device"]["sw_version"] = __version__
        assert list(made) == list(example), topic
        assert made == example, topic


def check_against_the_document(prefix: str, topic: str, payload: bytes) -> tuple[str, str, str]:
    """A discovery config as published, against the documented one of its sensor:
    the same keys in the same order, the same values but for those of its
    entity, which are its own. Says whose config it is."""
    found = re.fullmatch(
        rf"homeassistant/sensor/{discovery.node_id(prefix)}/(agent|group|path)_(\w+?)_"
        r"(state|waiting|longest_wait)/config",
        topic,
    )
    assert found is not None, topic
    one, key, sensor = found.groups()
    kind = one + "s"
    # The document shows each sensor once (a group's and a path's are alike).
    example = next(
        config for shown, config in documented_configs().items() if DOCUMENTED[shown][2] == sensor
    )
    config = json.loads(payload)
    assert list(config) == list(example), topic
    own = {
        "name",
        "unique_id",
        "state_topic",
        "availability_topic",
        "device",
    }
    for field, value in example.items():
        if field not in own:
            assert config[field] == value, (topic, field)
        assert type(config[field]) is type(value), (topic, field)
    assert config["state_topic"] == f"{prefix}/{kind}/{key}"
    assert config["availability_topic"] == f"{prefix}/status"
    assert config["unique_id"] == f"{discovery.node_id(prefix)}_{one}_{key}_{sensor}"
    assert config["name"].startswith(f"{one.capitalize()} {key}")
    assert list(config["device"]) == list(example["device"])
    assert config["device"]["identifiers"] == [f"mitelacd:{prefix}"]
    assert config["device"]["sw_version"] == __version__
    # What the template reads is in the entity's view.
    field = config["value_template"].removeprefix("{{ value_json.").removesuffix(" }}")
    assert field in {"state", "waiting", "longest_wait_seconds"}
    return kind, key, sensor


# --- a floor on the real reactor, fed as the PBX link feeds it --------------------------------


async def until(condition: Callable[[], bool], what: str = "", timeout: float = 15.0) -> None:
    """Let the reactor run until ``condition`` holds."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"not within {timeout:g} s: {what or condition}")
        await deferLater(reactor, 0.01, lambda: None)


def hhmmss(n: int) -> str:
    return f"{8 + n // 3600:02d}{n // 60 % 60:02d}{n % 60:02d}"


class Records:
    """Record bodies as the PBX sends them, each one different."""

    def __init__(self) -> None:
        self.seq = 0
        self.counted = 0

    def next_seq(self) -> int:
        self.seq = (self.seq + 1) % 100
        return self.seq

    def event(self, code: str, agent: str, tail: str = "00") -> str:
        return call_body(self.next_seq(), code, "2" + agent[1:], agent, tail)

    def report(self, code: str, number: str, waiting: int = 0, longest: int = 0) -> str:
        """A K or Q report (its time counts up, so no two are the same)."""
        self.counted += 1
        figures = f"{waiting:03d}002{longest // 60:02d}{longest % 60:02d}"
        return stats_body(self.next_seq(), code, number, figures, hhmmss(self.counted))


class Site(Records):
    """A floor on the real reactor, its ACD and SMDR links fed by the test, published to a broker."""

    def __init__(self, url: str, source: str = "pbx-1", **publisher: Any) -> None:
        super().__init__()
        self.floor = FloorState(reactor, stale_after=60)
        self.documents = FloorDocuments(self.floor)
        self.factory = PBXClientFactory(self.floor, reactor, idle_timeout=None)
        self.receiver = cast(ACDReceiver, self.factory.buildProtocol(PBX))
        self.receiver.makeConnection(StringTransport(peerAddress=PBX))
        self.smdr = SmdrClientFactory(NoSink(), reactor)
        self.smdr_receiver = cast(SMDRReceiver, self.smdr.buildProtocol(SMDR))
        self.smdr_receiver.makeConnection(StringTransport(peerAddress=SMDR))
        publisher.setdefault("first_delay", 0.05)
        publisher.setdefault("max_delay", 0.2)
        self.publisher = MQTTPublisher(
            parse_broker(url, {}), self.documents, source, reactor, **publisher
        )
        self.factory.record_listeners.append(self.publisher.record)
        self.smdr.line_listeners.append(self.publisher.smdr_line)

    def records(self, *bodies: str) -> list[bytes]:
        """Read records in one read; what they are on the records topic."""
        self.receiver.dataReceived(b"".join(wire(body) for body in bodies))
        return [b"\x02" + body.encode() for body in bodies]

    def views(self) -> dict[str, bytes]:
        """What the retained topics should hold: every entity's API view, and the status."""
        prefix = self.publisher.broker.prefix
        expected = {f"{prefix}/status": b"online"}
        for kind, table in (
            ("agents", self.floor.agents),
            ("groups", self.floor.groups),
            ("paths", self.floor.paths),
        ):
            for key in table:
                view = self.documents.entity(kind, key)  # type: ignore[arg-type]
                assert view is not None
                expected[f"{prefix}/{kind}/{key}"] = view
        return expected

    async def start(self) -> None:
        self.publisher.startService()
        await until(lambda: self.publisher.connected, "connected to the broker")

    async def start_unreachable(self) -> None:
        self.publisher.startService()
        await until(lambda: self.publisher.problem is not None, "the first attempt failed")

    async def settled(self) -> None:
        await until(
            lambda: self.publisher.connected and self.publisher.pending == 0,
            f"everything acknowledged ({self.publisher.health()})",
        )

    async def stop(self) -> None:
        if self.receiver.connected:
            self.receiver.connectionLost(Failure(ConnectionDone("the test is over")))
            self.smdr_receiver.connectionLost(Failure(ConnectionDone("the test is over")))
        if self.publisher.running:
            await self.publisher.stopService().addTimeout(15, reactor)


def snapshot(
    port: int,
    topics: str,
    wanted: Callable[[dict[str, bytes]], bool],
    auth: tuple[str, str] | None = None,
) -> dict[str, bytes]:
    """The retained messages a new subscriber gets, once ``wanted`` (blocking: in a
    test on the reactor, run it in a thread)."""
    subscriber = Subscriber(port, topics, auth=auth)
    try:
        subscriber.wait(lambda: wanted(subscriber.latest()), "the retained messages")
        time.sleep(0.2)  # nothing more comes
        assert all(m.retain for m in subscriber.messages), subscriber.messages
        return subscriber.latest()
    finally:
        subscriber.close()


@pytest.fixture
def broker() -> Iterator[MosquittoBroker]:
    """A Mosquitto broker for the test; its log is printed (shown when the test fails)."""
    server = MosquittoBroker()
    try:
        server.start()
        yield server
    finally:
        print(f"--- mosquitto log ---\n{server.log_text()}")
        server.close()


# --- no broker --------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_an_unreachable_broker_holds_nothing_up_and_keeps_a_bounded_queue() -> None:
    """Nothing listens: the floor goes on, the records wait up to the bound, the oldest go,
    the log says so once; health, /healthz and /metrics say so; the password is nowhere."""
    url = f"mqtt://ha:{SECRET}@127.0.0.1:{free_port()}/site1"
    site = Site(url, max_records=50)
    metrics = FloorMetrics(site.floor, reactor)
    metrics.registry.register(MQTTMetrics(site.publisher))
    web = WebService(
        "tcp:0:interface=127.0.0.1",
        Served(
            site.floor,
            site.documents,
            metrics=metrics,
            mqtt_health=site.publisher.health,
        ),
        reactor,
    )
    web.startService()
    with capture_log(None) as logged:
        await site.start_unreachable()
        try:
            started = time.perf_counter()
            for n in range(200):
                site.records(site.report("K", "610", waiting=n % 7))
            took = time.perf_counter() - started
            assert site.floor.groups["610"].waiting_raw == f"{199 % 7:03d}"
            assert took < 2.0, f"200 reads took {took:.2f} s"
            health = site.publisher.health()
            assert health["connected"] is False
            assert health["problem"] == "connection refused"
            assert health["dropped"] == 150
            assert health["pending"] == 50 + 1  # the newest records, and the group's topic
            assert health["broker"] == f"mqtt://ha@127.0.0.1:{site.publisher.broker.port}/site1"
            port = web.port.getHost().port  # type: ignore[union-attr]
            feed = await get(port, "/api/v1/feed")
            assert json.loads(feed)["feed"]["mqtt"] == health
            healthz = json.loads(await get(port, "/healthz"))
            assert healthz["status"] == "ok"  # the floor is fine
            assert healthz["warnings"] == [
                f"the MQTT broker {health['broker']} cannot be reached (connection refused)"
                f" since {health['since']}; 51 messages wait in memory"
            ]
            scraped = (await get(port, "/metrics")).decode()
            assert "mitelacd_mqtt_connected 0.0" in scraped
            assert "mitelacd_mqtt_dropped_total 150.0" in scraped
            assert "mitelacd_mqtt_pending 51.0" in scraped
            assert "mitelacd_mqtt_published_total 0.0" in scraped
            for text in (feed.decode(), json.dumps(healthz), scraped):
                assert SECRET not in text
        finally:
            await site.stop()
            await web.stopService()
    lines = logged.lines()
    dropping = [line for line in lines if "dropping the oldest" in line]
    assert len(dropping) == 1, dropping
    assert "cannot be reached: 50 records and SMDR lines wait" in dropping[0]
    refused = [line for line in logged.lines(LogLevel.warn) if "could not connect" in line]
    assert len(refused) == 1, refused  # the next attempts at info
    assert any("stopped with 50 records and SMDR lines not sent" in line for line in lines)
    assert not any(SECRET in line for line in lines)


async def get(port: int, path: str) -> bytes:
    response = await treq.get(f"http://127.0.0.1:{port}{path}").addTimeout(10, reactor)
    body: bytes = await response.content()
    return body


# --- with Mosquitto ------------------------------------------------------------------------------


@pytest.mark.processes
@pytest_twisted.ensureDeferred
async def test_the_retained_topics_are_the_api_views_and_follow_the_floor(
    broker: MosquittoBroker,
) -> None:
    site = Site(broker.url("site1"))
    live = Subscriber(broker.port, "site1/#")
    await site.start()
    try:
        site.records(
            site.event("A", "1001"),
            site.event("A", "1002"),
            site.event("G", "1002", "01860"),
            site.event("A", "1003"),
            site.event("B", "1003"),
            site.report("K", "610", waiting=2, longest=75),
            site.report("K", "620"),
            site.report("Q", "860", waiting=1, longest=12),
        )
        await site.settled()
        expected = site.views()
        assert len(expected) == 1 + 3 + 2 + 1
        retained = await threads.deferToThread(
            snapshot, broker.port, "site1/#", lambda got: set(got) >= set(expected)
        )
        assert retained == expected
        # Agent 1003, out, is forgotten at the day's start: its topic is emptied.
        assert site.floor.forget(site.floor.now() + 1) == (1, 0)
        await site.settled()
        expected = site.views()
        assert "site1/agents/1003" not in expected
        retained = await threads.deferToThread(
            snapshot, broker.port, "site1/#", lambda got: set(got) >= set(expected)
        )
        assert retained == expected
        assert [m.payload for m in live.on("site1/agents/1003")][-1] == b""
        # A broker that lost everything (no persistence) gets the whole floor again.
        await threads.deferToThread(broker.stop)
        await until(lambda: not site.publisher.connected, "the loss seen")
        site.records(site.report("K", "610", waiting=3, longest=80))
        await threads.deferToThread(broker.start)
        await until(lambda: site.publisher.connections == 2, "connected again")
        await site.settled()
        expected = site.views()
        assert json.loads(expected["site1/groups/610"])["waiting"] == 3
        retained = await threads.deferToThread(
            snapshot, broker.port, "site1/#", lambda got: set(got) >= set(expected)
        )
        assert retained == expected
    finally:
        live.close()
        await site.stop()
    # A clean stop says offline, retained.
    retained = await threads.deferToThread(
        snapshot, broker.port, "site1/status", lambda got: bool(got)
    )
    assert retained == {"site1/status": b"offline"}


@pytest.mark.processes
@pytest_twisted.ensureDeferred
async def test_every_record_and_smdr_line_arrives_in_order_at_qos_1(
    broker: MosquittoBroker,
) -> None:
    site = Site(broker.url(), source="icp/main+1")
    assert site.publisher.records_topic == "mitelacd/records/icp_main_1"
    subscriber = Subscriber(broker.port, ["mitelacd/records/+", "mitelacd/smdr/+"])
    await site.start()
    try:
        bodies = [
            site.report("K" if n % 3 else "Q", str(610 + n % 4), waiting=n % 9) for n in range(600)
        ]
        # CR LF, LF alone, or the next STX ends a record; reads cut anywhere.
        stream = b"".join(
            b"\x02" + body.encode() + random.choice([b"\r\n", b"\n", b""]) for body in bodies
        )
        cuts = sorted(random.sample(range(1, len(stream)), 80))
        for start, end in zip([0, *cuts], [*cuts, len(stream)]):
            site.receiver.dataReceived(stream[start:end])
        lines = [
            f"01/02 08:{n // 60:02d}:{n % 60:02d} 0:00:{n % 60:02d} 2001 860 line {n}"
            for n in range(40)
        ]
        site.smdr_receiver.dataReceived("".join(line + "\r\n" for line in lines).encode())
        # The last record has no end: it comes after the idle flush.
        records = [b"\x02" + body.encode() for body in bodies]
        await until(lambda: len(subscriber.on(site.publisher.records_topic)) == len(records))
        await until(lambda: len(subscriber.on(site.publisher.smdr_topic)) == len(lines))
        got = subscriber.on(site.publisher.records_topic)
        assert [m.payload for m in got] == records
        assert {(m.qos, m.retain) for m in got} == {(1, False)}
        smdr = subscriber.on(site.publisher.smdr_topic)
        assert [m.payload for m in smdr] == [line.encode() for line in lines]
        assert {(m.qos, m.retain) for m in smdr} == {(1, False)}
        await site.settled()
        # Every record and line and the status acknowledged once; the entity topics at
        # least once each, and not once per record: a change waits once (one per read at most).
        entities = len(site.floor.groups) + len(site.floor.paths)
        views = site.publisher.published - 1 - len(records) - len(lines)
        assert entities <= views <= entities * (len(cuts) + 2), views
        assert site.publisher.dropped == 0
    finally:
        subscriber.close()
        await site.stop()


@pytest.mark.processes
@pytest_twisted.ensureDeferred
async def test_a_broker_outage_loses_nothing_up_to_the_bound_and_drops_the_oldest_past_it(
    tmp_path: Path,
) -> None:
    broker = MosquittoBroker(persistence=True)
    broker.start()
    site = Site(broker.url("site1"), max_records=40)
    metrics = FloorMetrics(site.floor, reactor)
    metrics.registry.register(MQTTMetrics(site.publisher))
    web = WebService(
        "tcp:0:interface=127.0.0.1",
        Served(site.floor, site.documents, metrics=metrics, mqtt_health=site.publisher.health),
        reactor,
    )
    web.startService()
    port = web.port.getHost().port  # type: ignore[union-attr]
    # A subscriber whose session the broker keeps, over its own restart too.
    subscriber = Subscriber(
        broker.port, "site1/records/#", client_id="outage-watcher", clean_session=False
    )
    topic = site.publisher.records_topic

    def received() -> list[bytes]:
        """Each record once, in the order first received (QoS 1 may deliver one twice)."""
        seen: dict[bytes, None] = {}
        for message in subscriber.on(topic):
            seen.setdefault(message.payload, None)
        return list(seen)

    async def outage(count: int) -> tuple[list[bytes], float]:
        """The broker away for a while, ``count`` records read meanwhile; the longest read."""
        await threads.deferToThread(broker.stop)
        await until(lambda: site.publisher.problem is not None, "the loss seen")
        sent: list[bytes] = []
        longest = 0.0
        for n in range(count):
            started = time.perf_counter()
            sent += site.records(site.report("K", "610", waiting=n % 50))
            longest = max(longest, time.perf_counter() - started)
            # The floor took it at once.
            assert site.floor.groups["610"].waiting_raw == f"{n % 50:03d}"
            # Spread over a second and a half: the broker is tried again meanwhile.
            if n % (count // 10) == 0:
                await deferLater(reactor, 0.15, lambda: None)
        assert site.publisher.connected is False
        assert site.publisher.problem == "connection refused"
        return sent, longest

    with capture_log("mitelacd.mqtt.publisher") as logged:
        await site.start()
        try:
            before = site.records(*(site.report("Q", "860", waiting=n) for n in range(10)))
            await until(lambda: received() == before, "the first records")
            # Down for a while, fewer records than the bound: nothing is lost.
            during, longest = await outage(30)
            assert longest < 0.05, f"a read took {longest:.3f} s"
            health = json.loads(await get(port, "/api/v1/feed"))["feed"]["mqtt"]
            assert health["connected"] is False and health["pending"] >= 30
            healthz = json.loads(await get(port, "/healthz"))
            assert healthz["status"] == "ok"
            assert [w for w in healthz["warnings"] if "MQTT broker" in w]
            await threads.deferToThread(broker.start)
            await until(lambda: received() == before + during, "the records of the outage")
            assert site.publisher.dropped == 0
            # Down again, more records than the bound: the oldest go, counted, said once.
            again, _ = await outage(100)
            assert site.publisher.dropped == 60
            scraped = (await get(port, "/metrics")).decode()
            assert "mitelacd_mqtt_dropped_total 60.0" in scraped
            assert "mitelacd_mqtt_connected 0.0" in scraped
            assert re.search(r"^mitelacd_mqtt_pending (4[0-9])\.0$", scraped, re.M), scraped
            assert json.loads(await get(port, "/api/v1/feed"))["feed"]["mqtt"]["dropped"] == 60
            await threads.deferToThread(broker.start)
            await until(lambda: received() == before + during + again[60:], "the newest 40")
            await site.settled()
            assert "mitelacd_mqtt_connected 1.0" in (await get(port, "/metrics")).decode()
            assert site.publisher.connections == 3
        finally:
            subscriber.close()
            await site.stop()
            await web.stopService()
            print(f"--- mosquitto log ---\n{broker.log_text()}")
            broker.close()
    warnings = logged.lines(LogLevel.warn)
    dropping = [line for line in warnings if "dropping the oldest" in line]
    assert len(dropping) == 1, warnings
    caught_up = [line for line in warnings if "has caught up: 60 records" in line]
    assert len(caught_up) == 1, warnings
    assert len([line for line in warnings if "lost the MQTT broker" in line]) == 2
    # Each outage: one warning, then the attempts that failed, told at info, the delays capped.
    retries = [line for line in logged.lines(LogLevel.info) if "again in" in line]
    assert len(retries) >= 6, retries
    assert all(float(re.findall(r"again in ([0-9.]+) s", line)[0]) <= 0.2 for line in retries)


@pytest.mark.processes
@pytest_twisted.ensureDeferred
async def test_discovery_configs_have_the_documented_shape(broker: MosquittoBroker) -> None:
    site = Site(broker.url("site/floor-2"), discovery=True)
    site.floor.setNames(
        parse_names('[agents]\n"1001" = "Ada Lovelace"\n\n[groups]\n"610" = "Sales"\n', "names")
    )
    await site.start()
    try:
        site.records(
            site.event("A", "1001"),
            site.event("A", "1002"),
            site.report("K", "610"),
            site.report("Q", "860"),
        )
        await site.settled()
        configs = await threads.deferToThread(
            snapshot, broker.port, "homeassistant/#", lambda got: len(got) >= 6
        )
        whose = {check_against_the_document("site/floor-2", t, p) for t, p in configs.items()}
        assert whose == {
            ("agents", "1001", "state"),
            ("agents", "1002", "state"),
            ("groups", "610", "waiting"),
            ("groups", "610", "longest_wait"),
            ("paths", "860", "waiting"),
            ("paths", "860", "longest_wait"),
        }
        ada = json.loads(configs["homeassistant/sensor/site_floor-2/agent_1001_state/config"])
        assert ada["name"] == "Agent 1001 (Ada Lovelace) state"
        assert ada["device"]["name"] == "mitelacd site/floor-2"
        # Renamed: the config again; gone: the config emptied.
        site.floor.setNames(parse_names('[agents]\n"1001" = "Ada King"\n', "names"))
        site.records(site.event("B", "1002"))
        await site.settled()
        site.floor.forget(site.floor.now() + 1)
        await site.settled()
        configs = await threads.deferToThread(
            snapshot, broker.port, "homeassistant/#", lambda got: len(got) >= 5
        )
        assert "homeassistant/sensor/site_floor-2/agent_1002_state/config" not in configs
        ada = json.loads(configs["homeassistant/sensor/site_floor-2/agent_1001_state/config"])
        assert ada["name"] == "Agent 1001 (Ada King) state"
    finally:
        await site.stop()


def self_signed(folder: Path) -> tuple[str, str]:
    """A key and a self-signed certificate for 127.0.0.1: their files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mitelacd test broker")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "broker.pem", folder / "broker.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


@pytest.mark.processes
@pytest_twisted.ensureDeferred
async def test_mqtts_trusts_the_system_cas_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    certificate, key = self_signed(tmp_path)
    broker = MosquittoBroker(tls=(certificate, key))
    broker.start()
    try:
        url = broker.url("secure", tls=True)
        assert url.startswith("mqtts://127.0.0.1:")
        # A certificate no system CA signed is refused.
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "none.pem"))
        refused = Site(url)
        with capture_log("mitelacd.mqtt.publisher") as logged:
            await refused.start_unreachable()
            await refused.stop()
        assert refused.publisher.problem is not None
        assert refused.publisher.problem == (
            "TLS: certificate verify failed: self-signed certificate"
        ), logged.lines()
        # Once it is among the system's, the same broker is taken.
        monkeypatch.setenv("SSL_CERT_FILE", certificate)
        site = Site(url)
        await site.start()
        try:
            site.records(site.report("K", "610", waiting=4))
            await site.settled()
            expected = site.views()
            retained = await threads.deferToThread(
                snapshot, broker.port, "secure/#", lambda got: set(got) >= set(expected)
            )
            assert retained == expected
        finally:
            await site.stop()
    finally:
        print(f"--- mosquitto log ---\n{broker.log_text()}")
        broker.close()


# --- a real daemon ------------------------------------------------------------------------------


def http_get(port: int, path: str) -> bytes:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        body: bytes = response.read()
        return body


def http_json(port: int, path: str) -> Any:
    return json.loads(http_get(port, path))


def drain(child: CheckoutTwistd) -> None:
    """Every line an ended child wrote, into its ``seen``."""
    end = time.monotonic() + 10
    while time.monotonic() < end:
        try:
            child.seen.append(child.lines.get(timeout=0.2))
        except queue.Empty:
            if child.process.poll() is not None:
                return


def agent_view(port: int, agent: str) -> bytes:
    """The exact bytes of ``/api/v1/agents/<id>``'s agent."""
    body = http_get(port, f"/api/v1/agents/{agent}")
    start = body.index(b'"agent":') + len(b'"agent":')
    return body[start:-1]


@pytest.mark.processes
def test_a_daemon_publishes_what_its_api_serves_then_offline_cleanly_or_by_its_will(
    tmp_path: Path,
) -> None:
    broker = MosquittoBroker(passwords={"mitelacd": SECRET, "watcher": "watch"})
    broker.start()
    watcher = Subscriber(broker.port, "site1/#", auth=("watcher", "watch"))
    children: list[CheckoutTwistd] = []

    def daemon(pbx_port: int) -> CheckoutTwistd:
        child = CheckoutTwistd(
            "mitelacd",
            "--host",
            "127.0.0.1",
            "--port",
            str(pbx_port),
            "--file",
            str(tmp_path / "mitel_data.json"),
            "--history",
            "none",
            "--http",
            "tcp:0:interface=127.0.0.1",
            "--mqtt",
            broker.url("site1", user="mitelacd"),
            cwd=tmp_path,
            env={"MITELACD_MQTT_PASSWORD": SECRET},
        )
        children.append(child)
        return child

    try:
        server, pbx_port = fake_pbx()
        child = daemon(pbx_port)
        http = child.http_port()
        pbx, _ = server.accept()
        make = Records()
        bodies = [
            make.event("A", "1001"),
            make.event("A", "1002"),
            make.event("G", "1002", "01860"),
            make.report("K", "610", waiting=2, longest=75),
            make.report("Q", "860", waiting=1, longest=12),
        ]
        pbx.sendall(b"".join(wire(body) for body in bodies))
        child.wait_for(r"connected to the MQTT broker mqtt://mitelacd@127\.0\.0\.1:\d+/site1$")
        watcher.wait(
            lambda: len(watcher.on("site1/records/127.0.0.1")) == len(bodies), "the records"
        )
        assert [m.payload for m in watcher.on("site1/records/127.0.0.1")] == [
            b"\x02" + body.encode() for body in bodies
        ]
        # The retained topics are the API's views: an agent's byte for byte, as
        # /api/v1/agents/<id> serves it; the groups and paths as their lists hold them.
        agents = {f"site1/agents/{a}": agent_view(http, a) for a in ("1001", "1002")}
        queues = {
            f"site1/{kind}/{item['id']}": item
            for kind in ("groups", "paths")
            for item in http_json(http, f"/api/v1/{kind}")[kind]
        }
        assert set(queues) == {"site1/groups/610", "site1/paths/860"}

        def published_views() -> bool:
            latest = watcher.latest()
            return all(latest.get(topic) == view for topic, view in agents.items()) and all(
                topic in latest and json.loads(latest[topic]) == view
                for topic, view in queues.items()
            )

        watcher.wait(published_views, f"the views {agents} {queues}")
        feed = http_json(http, "/api/v1/feed")["feed"]["mqtt"]
        assert feed["connected"] is True
        assert feed["broker"] == f"mqtt://mitelacd@127.0.0.1:{broker.port}/site1"
        texts = [http_get(http, p).decode() for p in ("/api/v1/feed", "/healthz", "/metrics")]
        assert "mitelacd_mqtt_connected 1.0" in texts[2]
        # A clean stop: what waits, then offline.
        child.stop_cleanly()
        pbx.close()
        watcher.wait(
            lambda: (
                watcher.on("site1/status")[-1:] == [Received("site1/status", b"offline", 1, False)]
            ),
            "offline",
        )
        assert [m.payload for m in watcher.on("site1/status")] == [b"online", b"offline"]
        assert not any(SECRET in text for text in [*texts, *child.seen])
        # Killed: the broker says offline, by the daemon's last will.
        child = daemon(pbx_port)
        child.wait_for(r"connected to the MQTT broker")
        watcher.wait(lambda: len(watcher.on("site1/status")) == 3, "online again")
        assert watcher.on("site1/status")[-1].payload == b"online"
        child.process.send_signal(signal.SIGKILL)
        child.process.wait(timeout=10)
        watcher.wait(lambda: len(watcher.on("site1/status")) == 4, "the last will")
        assert watcher.on("site1/status")[-1].payload == b"offline"
        drain(child)
        retained = snapshot(
            broker.port, "site1/status", lambda got: bool(got), auth=("watcher", "watch")
        )
        assert retained == {"site1/status": b"offline"}
        assert not any(SECRET in line for line in child.seen)
        server.close()
    finally:
        watcher.close()
        for each in children:
            each.stop()
        print(f"--- mosquitto log ---\n{broker.log_text()}")
        broker.close()
