"""systemd notifications: READY=1, the link in STATUS=, WATCHDOG=1 and STOPPING=1.

A fake ``NOTIFY_SOCKET`` (an AF_UNIX datagram socket on a temporary path)
receives what the notifier sends, first on a fake clock, then from the real
daemon in a ``twistd`` child.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import random
import socket
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import IListeningPort
from twisted.logger import LogLevel
from twisted.python.failure import Failure

from mitelacd import testing
from mitelacd.feed.protocol import PBXClientFactory
from mitelacd.sdnotify import (
    NotifySocket,
    SystemdNotifier,
    socket_address,
    started,
    watchdog_interval,
)
from mitelacd.testing import START, Feeder, capture_log
from mitelacd.testing.fakes import FakeConnector, FakeNotifySocket
from mitelacd.web.resources import Served, WebService

ROOT = Path(__file__).resolve().parent.parent
HOST, PORT = "10.1.2.3", 15373
WHERE = f"{HOST}:{PORT}"
#: Seconds a child process gets for each step.
WAIT = 30.0


def without_watchdog(messages: list[str]) -> list[str]:
    return [m for m in messages if m != "WATCHDOG=1"]


@pytest.fixture
def folder() -> Iterator[Path]:
    # Short: a socket path must fit in 108 bytes.
    with tempfile.TemporaryDirectory(prefix="sd") as name:
        yield Path(name)


@pytest.fixture
def systemd(folder: Path) -> Iterator[FakeNotifySocket]:
    fake = FakeNotifySocket(str(folder / "notify"))
    yield fake
    fake.close()


class Link:
    """When the reconnecting factory would dial next, as the test says."""

    def __init__(self) -> None:
        self.at: float | None = None

    def __call__(self) -> float | None:
        return self.at


def notifier(
    feeder: Feeder,
    systemd: FakeNotifySocket,
    link: Link | None = None,
    **environ: str,
) -> SystemdNotifier:
    return SystemdNotifier.fromEnvironment(
        feeder.floor,
        feeder.clock,
        {"NOTIFY_SOCKET": systemd.value, **environ},
        target=lambda: (HOST, PORT),
        next_attempt=link,
    )


def hhmmss(when: float) -> str:
    return datetime.datetime.fromtimestamp(when).strftime("%H:%M:%S")


# Without NOTIFY_SOCKET ----------------------------------------------------------


def test_without_notify_socket_nothing_happens(systemd: FakeNotifySocket) -> None:
    feeder = Feeder()
    service = SystemdNotifier.fromEnvironment(
        feeder.floor, feeder.clock, {"WATCHDOG_USEC": "1000000"}
    )
    service.startService()
    feeder.connect()
    feeder.keepalive()
    feeder.floor.feedDisconnected("Connection lost")
    feeder.clock.advance(60)
    service.stopService()
    assert service.notify is None and service.watchdog is None
    assert service.status is None and not service.ready
    assert feeder.clock.getDelayedCalls() == []
    assert systemd.take() == []


# READY=1 ------------------------------------------------------------------------


def test_ready_waits_for_every_condition(systemd: FakeNotifySocket) -> None:
    feeder = Feeder()
    listening: Deferred[object] = Deferred()
    writer = Service()
    writer.startService()
    service = SystemdNotifier.fromEnvironment(
        feeder.floor,
        feeder.clock,
        {"NOTIFY_SOCKET": systemd.value},
        ready_when=[started(writer), lambda: listening],
        target=lambda: (HOST, PORT),
    )
    service.startService()
    assert systemd.take() == []
    listening.callback(None)
    assert systemd.take() == [f"READY=1\nSTATUS=dialling {WHERE}"]
    assert service.ready


def test_no_ready_when_a_condition_fails(systemd: FakeNotifySocket) -> None:
    feeder = Feeder()
    writer = Service()
    writer.setName("writer")
    service = SystemdNotifier.fromEnvironment(
        feeder.floor,
        feeder.clock,
        {"NOTIFY_SOCKET": systemd.value},
        ready_when=[started(writer)],
    )
    with capture_log("mitelacd.sdnotify") as log:
        service.startService()
    assert systemd.take() == []
    assert log.lines(LogLevel.error) == ["not telling systemd READY=1: writer is not running"]


@pytest_twisted.inlineCallbacks
def test_web_service_tells_when_it_listens() -> Generator[Deferred[Any], Any, None]:
    from twisted.internet import reactor

    feeder = Feeder()
    web = WebService("tcp:0:interface=127.0.0.1", Served(feeder.floor, feeder.documents), reactor)
    before = web.whenListening()
    assert not before.called
    web.startService()
    try:
        port: IListeningPort = yield before
        assert port is web.port
        assert getattr(port.getHost(), "port", 0) > 0
        after: IListeningPort = yield web.whenListening()
        assert after is port
    finally:
        yield web.stopService()


# STATUS= ------------------------------------------------------------------------


def test_status_follows_the_link_down_and_up(systemd: FakeNotifySocket) -> None:
    feeder = Feeder()
    clock = feeder.clock
    link = Link()
    service = notifier(feeder, systemd, link)
    service.startService()
    assert systemd.take() == [f"READY=1\nSTATUS=dialling {WHERE}"]

    feeder.connect(HOST, PORT)
    assert systemd.take() == []  # once the factory has had its say
    clock.advance(0)
    since = hhmmss(START)
    assert systemd.take() == [f"STATUS=connected to {WHERE} since {since}, 0 records"]

    # The link drops: said at once, with the wait before the next dial.
    clock.advance(1)
    feeder.keepalive()
    feeder.floor.feedDisconnected("Connection was closed cleanly.")
    link.at = clock.seconds() + 2.4
    clock.advance(0)
    assert systemd.take() == [f"STATUS=retrying {WHERE} in ~3 s: Connection was closed cleanly."]
    # Once the wait is over, the daemon is dialling.
    clock.advance(2.4)
    link.at = None
    assert systemd.take() == [
        f"STATUS=dialling {WHERE} (last attempt: Connection was closed cleanly.)"
    ]

    # A failed attempt, with a reason over two lines.
    feeder.floor.feedConnectFailed(HOST, PORT, "Connection refused\nby peer")
    link.at = clock.seconds() + 7.0
    clock.advance(0)
    assert systemd.take() == [f"STATUS=retrying {WHERE} in ~7 s: Connection refused by peer"]

    # Up again before the retry's time (a new connection from elsewhere).
    clock.advance(3)
    feeder.connect(HOST, PORT)
    link.at = None
    clock.advance(0)
    since = hhmmss(clock.seconds())
    assert systemd.take() == [f"STATUS=connected to {WHERE} since {since}, 0 records"]
    clock.advance(10)
    assert systemd.take() == []  # the retry's wake-up was called off
    assert service.status == f"connected to {WHERE} since {since}, 0 records"


def test_record_count_is_paced(systemd: FakeNotifySocket) -> None:
    feeder = Feeder()
    clock = feeder.clock
    service = notifier(feeder, systemd)
    service.startService()
    feeder.connect(HOST, PORT)
    clock.advance(0)
    since = hhmmss(START)
    assert without_watchdog(systemd.take()) == [
        f"READY=1\nSTATUS=dialling {WHERE}",
        f"STATUS=connected to {WHERE} since {since}, 0 records",
    ]
    # Ten records a second for 30 s: a status every 5 s, not a datagram per record.
    sent: list[tuple[float, str]] = []
    for _ in range(300):
        feeder.keepalive()
        clock.advance(0.1)
        sent += [(clock.seconds() - START, m) for m in systemd.take()]
    counts = [int(m.rsplit(", ", 1)[1].split()[0]) for _, m in sent]
    assert 5 <= len(sent) <= 7, sent
    assert counts == sorted(counts) and counts[-1] >= 250
    times = [t for t, _ in sent]
    assert all(b - a >= 5.0 - 1e-6 for a, b in zip(times, times[1:])), times
    # The last count arrives even when the records stop.
    clock.advance(5)
    systemd.take()
    assert service.status == f"connected to {WHERE} since {since}, 300 records"
    # A single record is a record.
    feeder.floor.feedDisconnected("gone")
    clock.advance(0)
    feeder.connect(HOST, PORT)
    clock.advance(0)
    feeder.keepalive()
    clock.advance(5)
    assert service.status is not None and service.status.endswith(", 1 record")


def test_status_before_any_host_is_known(systemd: FakeNotifySocket) -> None:
    feeder = Feeder()
    service = SystemdNotifier(feeder.floor, feeder.clock, NotifySocket(systemd.value))
    service.startService()
    assert systemd.take() == ["READY=1\nSTATUS=dialling the PBX"]


def test_connected_since_another_day_shows_the_date(systemd: FakeNotifySocket) -> None:
    feeder = Feeder()
    clock = feeder.clock
    service = notifier(feeder, systemd)
    service.startService()
    feeder.connect(HOST, PORT)
    clock.advance(0)
    clock.advance(2 * 86400)
    feeder.keepalive()
    clock.advance(5)
    day = datetime.datetime.fromtimestamp(START).strftime("%Y-%m-%d %H:%M:%S")
    assert service.status == f"connected to {WHERE} since {day}, 1 record"


# WATCHDOG=1 -----------------------------------------------------------------------


def test_watchdog_at_half_the_interval(systemd: FakeNotifySocket) -> None:
    feeder = Feeder()
    service = notifier(feeder, systemd, WATCHDOG_USEC="10000000")
    assert service.watchdog == 5.0
    service.startService()
    assert systemd.take() == [f"READY=1\nSTATUS=dialling {WHERE}", "WATCHDOG=1"]
    # Then one every 5 s for a minute, and none in between.
    for _ in range(12):
        feeder.clock.advance(4.9)
        assert systemd.take() == []
        feeder.clock.advance(0.1)
        assert systemd.take() == ["WATCHDOG=1"]
    service.stopService()
    assert systemd.take() == ["STOPPING=1\nSTATUS=stopping"]
    feeder.clock.advance(60)
    assert systemd.take() == []


def test_watchdog_pid_must_be_ours() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}, pid=42) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}, pid=42) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "41"}, pid=42) is None
    assert watchdog_interval({}, pid=42) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}, pid=42) is None
    with capture_log("mitelacd.sdnotify") as log:
        assert watchdog_interval({"WATCHDOG_USEC": "soon"}, pid=42) is None
    assert log.lines() == ["WATCHDOG_USEC=soon is not a number of microseconds: no watchdog"]


def test_no_watchdog_for_another_process(systemd: FakeNotifySocket) -> None:
    feeder = Feeder()
    service = notifier(feeder, systemd, WATCHDOG_USEC="2000000", WATCHDOG_PID=str(os.getpid() + 1))
    assert service.watchdog is None
    service.startService()
    feeder.clock.advance(10)
    assert systemd.take() == [f"READY=1\nSTATUS=dialling {WHERE}"]


# STOPPING=1 -----------------------------------------------------------------------


def test_stopping_on_stop(systemd: FakeNotifySocket) -> None:
    feeder = Feeder()
    link = Link()
    service = notifier(feeder, systemd, link, WATCHDOG_USEC="4000000")
    service.startService()
    feeder.connect(HOST, PORT)
    feeder.clock.advance(0)
    feeder.keepalive()  # a count is due in 5 s
    feeder.floor.feedDisconnected("gone")
    link.at = feeder.clock.seconds() + 9
    feeder.clock.advance(0)
    systemd.take()
    service.stopService()
    assert systemd.take() == ["STOPPING=1\nSTATUS=stopping"]
    assert feeder.clock.getDelayedCalls() == []
    feeder.connect(HOST, PORT)
    feeder.clock.advance(30)
    assert systemd.take() == []


# Sockets --------------------------------------------------------------------------


def test_abstract_namespace_socket() -> None:
    fake = FakeNotifySocket(f"\0mitelacd-test-{uuid.uuid4().hex}")
    try:
        assert fake.value.startswith("@mitelacd-test-")
        feeder = Feeder()
        notifier(feeder, fake).startService()
        assert fake.take() == [f"READY=1\nSTATUS=dialling {WHERE}"]
    finally:
        fake.close()


def test_socket_addresses() -> None:
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("@/org/freedesktop/systemd1/notify/1") == (
        "\0/org/freedesktop/systemd1/notify/1"
    )
    assert socket_address("@") is None
    assert socket_address("vsock:2:1234") is None
    assert socket_address("relative/path") is None


def test_a_send_error_is_logged_once_and_the_recovery_once(folder: Path) -> None:
    path = str(folder / "gone")
    feeder = Feeder()
    service = SystemdNotifier.fromEnvironment(
        feeder.floor,
        feeder.clock,
        {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"},
        target=lambda: (HOST, PORT),
    )
    with capture_log("mitelacd.sdnotify") as log:
        service.startService()
        feeder.connect(HOST, PORT)
        feeder.clock.advance(0)
        for _ in range(10):
            feeder.clock.advance(1)
        assert service.notify is not None and service.notify.failures >= 10
        assert service.running
        assert log.lines() == [
            f"cannot notify systemd at NOTIFY_SOCKET={path}: No such file or directory"
            " (not said again until it works)"
        ]
        # systemd is back (a new socket at the same path).
        fake = FakeNotifySocket(path)
        try:
            feeder.clock.advance(1)
            assert fake.take() == ["WATCHDOG=1"]
            failures = service.notify.failures
            assert log.lines()[1:] == [
                f"notifying systemd at NOTIFY_SOCKET={path} again ({failures} sends failed)"
            ]
            service.stopService()
            assert fake.take() == ["STOPPING=1\nSTATUS=stopping"]
        finally:
            fake.close()
    assert len(log.lines()) == 2


def test_an_unusable_address_is_logged_once() -> None:
    feeder = Feeder()
    service = SystemdNotifier.fromEnvironment(
        feeder.floor, feeder.clock, {"NOTIFY_SOCKET": "vsock:2:1234", "WATCHDOG_USEC": "2000000"}
    )
    with capture_log("mitelacd.sdnotify") as log:
        service.startService()
        feeder.clock.advance(10)
        service.stopService()
    assert len(log.lines()) == 1
    assert "NOTIFY_SOCKET=vsock:2:1234" in log.lines()[0]


# The daemon -----------------------------------------------------------------------


def fetch(port: int, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_daemon_tells_systemd(systemd: FakeNotifySocket, folder: Path) -> None:
    data = folder / "mitel_data.json"
    daemon = testing.Twistd(
        "mitelacd", "--simulate", "--http", "tcp:0:interface=127.0.0.1", "--file", str(data),
        cwd=folder, pythonpath=ROOT,
        env={"NOTIFY_SOCKET": systemd.value, "WATCHDOG_USEC": "1000000"},
    )  # fmt: skip
    try:
        ready, before = systemd.wait_for("READY=1")
        assert set(before) <= {"WATCHDOG=1"}
        assert ready.startswith("READY=1\nSTATUS=")
        # Ready means the file writer runs and HTTP listens.
        port = daemon.http_port(timeout=WAIT)
        code, health = fetch(port, "/healthz")
        assert code in (200, 503) and health["pbx_host"] == "127.0.0.1"
        status, _ = systemd.wait_for("STATUS=connected to 127.0.0.1:")
        assert f":{health['pbx_port']} since " in status
        # WATCHDOG=1 every half second.
        start = time.monotonic()
        pings = 0
        while time.monotonic() - start < 2.0:
            pings += systemd.take().count("WATCHDOG=1")
            time.sleep(0.05)
        assert 3 <= pings <= 6
        assert data.exists()
        daemon.stop_cleanly()
        systemd.wait_for("STOPPING=1\nSTATUS=stopping", timeout=5)
    finally:
        daemon.stop()


def test_daemon_serves_a_socket_from_systemd(systemd: FakeNotifySocket, folder: Path) -> None:
    """``--http systemd:domain=INET:index=0`` serves the socket passed as descriptor 3."""
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listening.bind(("127.0.0.1", 0))
    listening.listen(16)
    port = listening.getsockname()[1]
    try:
        daemon = testing.Twistd(
            "mitelacd", "--simulate", "--http", "systemd:domain=INET:index=0",
            "--file", str(folder / "mitel_data.json"),
            cwd=folder, pythonpath=ROOT, env={"NOTIFY_SOCKET": systemd.value},
            listen_fds=[listening],
        )  # fmt: skip
    finally:
        listening.close()  # the daemon holds it now
    try:
        systemd.wait_for("READY=1")
        assert daemon.http_port(timeout=WAIT) == port
        code, health = fetch(port, "/healthz")
        assert code in (200, 503) and health["pbx_host"] == "127.0.0.1"
        daemon.stop_cleanly()
        systemd.wait_for("STOPPING=1")
    finally:
        daemon.stop()


def test_a_systemd_endpoint_without_a_socket_is_a_usage_error(folder: Path) -> None:
    daemon = testing.Twistd(
        "mitelacd", "--simulate", "--http", "systemd:domain=INET:index=0",
        "--file", str(folder / "mitel_data.json"), cwd=folder, pythonpath=ROOT,
        env={"LISTEN_FDS": "", "LISTEN_PID": "", "LISTEN_FDNAMES": ""},
    )  # fmt: skip
    try:
        assert daemon.process.wait(timeout=WAIT) == 64
        daemon.wait_for(r"--http 'systemd:domain=INET:index=0'.*systemd passed no such socket")
    finally:
        daemon.stop()


def test_status_from_the_real_reconnecting_factory(
    systemd: FakeNotifySocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One standard deviation of jitter, every time: the wait is known.
    monkeypatch.setattr(random, "normalvariate", lambda mu, sigma: mu + sigma)
    feeder = Feeder()
    clock = feeder.clock
    factory = PBXClientFactory(feeder.floor, clock, first_delay=4.0, max_delay=30.0)
    service = notifier(feeder, systemd)
    service.next_attempt = factory.nextAttempt
    service.startService()
    systemd.take()
    assert factory.nextAttempt() is None
    connector = FakeConnector(HOST, PORT)
    factory.clientConnectionFailed(connector, Failure(ConnectionRefusedError("refused")))
    at = factory.nextAttempt()
    assert at is not None and START + 3.0 < at < START + 5.0  # 4 s, jittered
    clock.advance(0)
    wait = math.ceil(at - START)
    (status,) = systemd.take()
    assert (
        status
        == f"STATUS=retrying {WHERE} in ~{wait} s: Connection was refused by other side: refused."
    )
    clock.advance(at - clock.seconds())
    assert connector.attempts == 1 and factory.nextAttempt() is None
    assert systemd.take() == [
        f"STATUS=dialling {WHERE} (last attempt: Connection was refused by other side: refused.)"
    ]
