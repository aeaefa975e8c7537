"""The open file limit: raised at start, and the event stream clients it leaves room for."""

from __future__ import annotations

import json
import queue
import re
import socket
import time
from pathlib import Path

import pytest
from twisted.internet.selectreactor import SelectReactor
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel

from mitelacd import openfiles, tap
from mitelacd.openfiles import RESERVE, Limits, OpenFiles, raise_open_files
from mitelacd.testing import CheckoutTwistd, capture_log
from mitelacd.testing.fakes import FakeOpenFileLimits
from mitelacd.web.push import BUSY_RETRY_AFTER
from mitelacd.web.resources import WebService


def limits_of(fake: FakeOpenFileLimits) -> Limits:
    """Where the daemon reads and sets its open file limit: the fake's."""
    return Limits(fake.getrlimit, fake.setrlimit)


def test_the_soft_limit_is_raised_to_the_hard_limit_and_said() -> None:
    fake = FakeOpenFileLimits(1024, 524288)
    with capture_log("mitelacd.openfiles") as logged:
        files = raise_open_files(limits_of(fake))
    assert fake.calls == [(524288, 524288)]
    assert files == OpenFiles(soft=524288, hard=524288, before=1024, usable=524288)
    assert logged.lines() == [
        "open files: soft limit raised from 1024 to 524288 (hard limit 524288)"
    ]


def test_a_limit_already_at_the_hard_limit_is_left_and_said() -> None:
    fake = FakeOpenFileLimits(65536, 65536)
    with capture_log("mitelacd.openfiles") as logged:
        files = raise_open_files(limits_of(fake))
    assert fake.calls == []
    assert files.usable == 65536
    assert logged.lines() == ["open files: soft limit 65536 (hard limit 65536)"]


def test_a_refused_raise_is_a_warning_and_the_limit_stays() -> None:
    fake = FakeOpenFileLimits(1024, 4096, refuse=True)
    with capture_log("mitelacd.openfiles") as logged:
        files = raise_open_files(limits_of(fake))
    assert (files.soft, files.usable) == (1024, 1024)
    assert logged.lines(LogLevel.warn) == [
        "open files: cannot raise the soft limit from 1024 to 4096"
        " ([Errno 1] Operation not permitted); it stays 1024"
    ]


def test_a_select_reactor_is_not_given_more_than_select_can_watch() -> None:
    assert openfiles.ceiling_of(SelectReactor.__new__(SelectReactor)) == 1024
    assert openfiles.ceiling_of(MemoryReactorClock()) is None
    fake = FakeOpenFileLimits(256, 4096)
    files = openfiles.at_start(SelectReactor.__new__(SelectReactor), limits_of(fake))
    assert fake.calls == [(1024, 4096)]
    assert (files.soft, files.usable) == (1024, 1024)
    # A soft limit above what select() takes is left, but not counted on.
    assert raise_open_files(limits_of(FakeOpenFileLimits(8192, 8192)), ceiling=1024).usable == 1024


@pytest.mark.parametrize(
    "soft, most, clients",
    [
        (1024, 1000, 1024 - RESERVE),  # the usual soft limit: room kept
        (4096, 1000, 1000),  # the configured cap
        (65536, 1000, 1000),
        (200, 1000, 200 - RESERVE),
        (100, 1000, 0),  # no room at all: every event stream client gets 503
    ],
)
def test_the_event_client_cap_keeps_room_for_the_rest(soft: int, most: int, clients: int) -> None:
    files = OpenFiles(soft=soft, hard=soft, before=soft, usable=soft)
    assert files.push_clients(most) == clients


def web_of(service: tap.MitelACDService) -> WebService:
    (web,) = [child for child in service if isinstance(child, WebService)]
    return web


@pytest.mark.parametrize(
    "soft, hard, clients",
    [(200, 200, 200 - RESERVE), (1024, 1024, 1024 - RESERVE), (1024, 524288, 1000)],
)
def test_make_service_raises_the_limit_and_derives_the_cap(
    tmp_path: Path, soft: int, hard: int, clients: int
) -> None:
    fake = FakeOpenFileLimits(soft, hard)
    options = tap.Options()
    options.parseOptions(["--host", "h", "--file", str(tmp_path / "mitel_data.json")])
    with capture_log("mitelacd.openfiles") as logged:
        service = tap.makeService(options, MemoryReactorClock(), limits=limits_of(fake))
    assert fake.soft == hard  # raised as far as it goes
    assert web_of(service).push.max_clients == clients
    if clients < 1000:
        (warning,) = logged.lines(LogLevel.warn)
        assert warning.startswith(f"open files: room for {clients} event stream clients, not 1000")
    else:
        assert logged.lines(LogLevel.warn) == []


# A real daemon under a low limit -------------------------------------------------


class TwistdUnderLimit(CheckoutTwistd):
    """``twistd mitelacd --simulate`` under an open file limit of ``nofile``, its log read."""

    def __init__(self, cwd: Path, nofile: int) -> None:
        super().__init__(
            *("--logger", "mitelacd.logs.journal"),
            *("mitelacd", "--simulate", "--http", "tcp:0:interface=127.0.0.1"),
            *("--file", str(cwd / "mitel_data.json"), "--history", "none"),
            cwd=cwd,
            open_files=nofile,
        )

    def log_so_far(self, settle: float = 0.5) -> list[str]:
        end = time.monotonic() + settle
        while time.monotonic() < end:
            try:
                self.seen.append(self.lines.get(timeout=0.05))
            except queue.Empty:
                pass
        return self.seen


def http_head(port: int, path: str) -> tuple[socket.socket, bytes]:
    """A GET of ``path``: the connection, kept open, and the response so far (its headers)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path.encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return sock, data


def fetch(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    """A whole response of ``Connection: close``: status, headers, body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path.encode()
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *fields = head.decode("latin-1").split("\r\n")
    headers = dict(f.lower().split(": ", 1) for f in fields)
    return int(status.split()[1]), headers, body


def test_under_a_low_limit_event_clients_beyond_the_cap_get_503_and_the_rest_keeps_working(
    tmp_path: Path,
) -> None:
    """A daemon held to 200 open files serves 72 event streams, refuses the next
    with a JSON 503, and still answers /healthz; a flood of connections past the
    limit logs each kind of accept failure once."""
    daemon = TwistdUnderLimit(tmp_path, nofile=200)
    streams: list[socket.socket] = []
    flood: list[socket.socket] = []
    try:
        port = int(daemon.wait_for(r"wall board and API at http://[^:]+:(\d+)/", 30).group(1))
        cap = 200 - RESERVE
        log = "".join(daemon.seen)
        assert "<6>open files: soft limit 200 (hard limit 200)" in log
        assert f"<4>open files: room for {cap} event stream clients, not 1000" in log
        for _ in range(cap):
            sock, head = http_head(port, "/api/v1/events")
            streams.append(sock)
            assert head.startswith(b"HTTP/1.1 200 "), head
        status, headers, body = fetch(port, "/api/v1/events")
        assert (status, headers["content-type"]) == (503, "application/json")
        assert headers["retry-after"] == str(BUSY_RETRY_AFTER)
        assert json.loads(body)["error"] == "busy"
        # A refused client keeps no file open: the server closes after the 503.
        sock, head = http_head(port, "/api/v1/events")
        assert head.startswith(b"HTTP/1.1 503 ") and b"connection: close" in head.lower()
        sock.settimeout(5)
        while sock.recv(65536):
            pass
        sock.close()
        status, headers, body = fetch(port, "/healthz")
        assert status in (200, 503) and "status" in json.loads(body)
        # Past the limit: the port cannot accept, and says so once a minute at most.
        end = time.monotonic() + 20
        while len(flood) < 150 and time.monotonic() < end:
            try:
                flood.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            except OSError:
                pass  # the listen queue was full: a SYN dropped; again
        time.sleep(1.5)
        for sock in flood:
            sock.close()
        flood.clear()
        status, _, body = fetch(port, "/healthz")
        assert status in (200, 503) and "status" in json.loads(body)
        accept_lines = [
            line for line in daemon.log_so_far() if "Could not accept" in line or "EMFILE" in line
        ]
        kinds = {re.sub(r"(Closed socket from) .*", r"\1", line.strip()) for line in accept_lines}
        assert accept_lines, "the flood did not reach the limit"
        assert len(accept_lines) == len(kinds), accept_lines  # one line of each kind
    finally:
        for sock in streams + flood:
            sock.close()
        daemon.stop()
