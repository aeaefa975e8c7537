"""The command line, the plugins and the service tree."""

from __future__ import annotations

import datetime
import gc
import json
import os
import platform
import re
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from twisted.application.service import IServiceMaker
from twisted.copyright import version as twisted_version
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel
from twisted.plugin import getPlugins
from twisted.python import usage

import mitelacd
from mitelacd import heap, logs, tap
from mitelacd.feed.protocol import PBXClientFactory
from mitelacd.persist import LegacyFileWriter
from mitelacd.testing import TWISTD
from mitelacd.web.endpoint import check_endpoint


def parse(*argv: str) -> tap.Options:
    options = tap.Options()
    options.parseOptions(list(argv))
    return options


def test_defaults(tmp_path: Path) -> None:
    options = parse("--host", "icp.example", "--file", str(tmp_path / "mitel_data.json"))
    assert options["host"] == "icp.example"
    assert options["port"] == 15373
    assert options["write-interval"] == 1.0
    assert options["file"].path == str(tmp_path / "mitel_data.json")
    assert not options["simulate"]
    assert options["push-interval"] == 0.0
    assert options["log-level"] == "info"


def test_push_interval_and_log_level(tmp_path: Path) -> None:
    data = str(tmp_path / "mitel_data.json")
    options = parse("--host", "h", "--file", data, "--push-interval", "0", "--log-level", "warn")
    assert options.webSettings().push_interval == 0
    reactor = MemoryReactorClock()
    reactor.advance(1_700_000_000.25)
    service = tap.makeService(options, reactor=reactor)
    try:
        assert not logs.enabled(LogLevel.info) and logs.enabled(LogLevel.warn)
        # Versions start from the start time, so they grow across restarts.
        assert service.floor.version == 1_700_000_000_250_000
    finally:
        logs.set_level(LogLevel.debug)


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "--host is required"),
        (["--host", "h", "--port", "0"], "out of range"),
        (["--host", "h", "--port", "70000"], "out of range"),
        (["--host", "h", "--port", "pbx"], "must be a number"),
        (["--host", "h", "--write-interval", "0"], "more than 0"),
        (["--host", "h", "--write-interval", "soon"], "number of seconds"),
        (["--host", "h", "--watchdog", "-5"], "more than 0"),
        (["--host", "h", "--stale-after", "0"], "more than 0"),
        (["--host", "h", "--file", "/nonexistent-folder/mitel_data.json"], "does not exist"),
        (["--host", "h", "--colour"], "colour"),
        (["--simulate", "--host", "h"], "not both"),
        (["--host", "h", "--push-interval", "-1"], "from 0 to 10 seconds"),
        (["--host", "h", "--push-interval", "now"], "number of seconds"),
        (["--host", "h", "--log-level", "loud"], "one of debug, info, warn, error"),
        (["--host", "h", "--carry-max-age", "-1"], "0 or more seconds"),
        (["--host", "h", "--carry-max-age", "long"], "number of seconds"),
        (["--host", "h", "--unconfirmed-max-age", "0"], "more than 0"),
    ],
)
def test_bad_command_lines_are_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(usage.UsageError, match=message):
        parse(*argv)


def test_unwritable_folder_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Root may write anywhere, so the permission check itself is stood in for.
    monkeypatch.setattr(tap.os, "access", lambda path, mode: False)
    with pytest.raises(usage.UsageError, match="cannot write"):
        parse("--host", "h", "--file", str(tmp_path / "mitel_data.json"))


def test_file_that_is_a_directory_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(usage.UsageError, match="is a directory"):
        parse("--host", "h", "--file", str(tmp_path))


def test_help_explains_every_option() -> None:
    text = str(tap.Options())
    for name in ("--host", "--port", "--file", "--write-interval", "--simulate", "--watchdog"):
        assert name in text


def test_plugins_are_found() -> None:
    names = {maker.tapname for maker in getPlugins(IServiceMaker)}
    assert {"mitelacd", "mitelacd-sim"} <= names


def test_twistd_help_lists_the_plugins() -> None:
    out = subprocess.run(
        [str(Path(sys.executable).parent / "twistd"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent.parent,
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).parent.parent)),
    ).stdout
    assert "mitelacd " in out or "mitelacd\n" in out
    assert "mitelacd-sim" in out


def test_service_dials_the_pbx_and_carries_the_file(tmp_path: Path) -> None:
    path = tmp_path / "mitel_data.json"
    doc = {"agents": {"6184": "idle"}, "groups": {}, "paths": {}, "lastUpdate": 12.5}
    path.write_text(json.dumps(doc))
    reactor = MemoryReactorClock()
    service = tap.makeService(
        parse("--host", "127.0.0.1", "--port", "1537", "--file", str(path)), reactor
    )
    service.startService()
    ((host, port, factory, _, _),) = reactor.tcpClients
    assert (host, port) == ("127.0.0.1", 1537)
    assert service.floor.legacy()["agents"] == {"6184": "idle"}
    assert service.floor.last_update == 12.5
    service.stopService()
    assert isinstance(factory, PBXClientFactory)
    assert not factory.continueTrying


@pytest.mark.parametrize("age, carried", [(899, True), (901, False)])
def test_only_a_recent_file_is_carried(tmp_path: Path, age: float, carried: bool) -> None:
    path = tmp_path / "mitel_data.json"
    doc = {"agents": {"6184": "idle"}, "groups": {}, "paths": {}, "lastUpdate": 1_000_000.0}
    path.write_text(json.dumps(doc))
    reactor = MemoryReactorClock()
    reactor.advance(1_000_000.0 + age)
    service = tap.makeService(
        parse("--host", "127.0.0.1", "--file", str(path), "--carry-max-age", "900"), reactor
    )
    service.startService()
    agents = service.floor.snapshot()["agents"]
    if carried:
        assert [(a["id"], a["status"], a["carried"], a["confirmed"]) for a in agents] == [
            ("6184", "idle", True, False)
        ]
    else:
        assert agents == []
    service.stopService()


def test_unconfirmed_max_age_lets_carried_agents_go(tmp_path: Path) -> None:
    path = tmp_path / "mitel_data.json"
    doc = {"agents": {"6184": "idle", "6185": "busy"}, "groups": {}, "paths": {}, "lastUpdate": 5}
    path.write_text(json.dumps(doc))
    reactor = MemoryReactorClock()
    argv = ("--host", "127.0.0.1", "--file", str(path), "--unconfirmed-max-age", "300")
    service = tap.makeService(parse(*argv), reactor)
    service.startService()
    reactor.advance(299)
    assert service.floor.legacy()["agents"] == {"6184": "idle", "6185": "busy"}
    reactor.advance(1)
    assert service.floor.legacy()["agents"] == {"6184": "out", "6185": "out"}
    service.stopService()


def test_a_second_daemon_on_the_same_file_stops_at_start(tmp_path: Path) -> None:
    path = tmp_path / "mitel_data.json"
    first = tap.makeService(parse("--host", "127.0.0.1", "--file", str(path)), MemoryReactorClock())
    first.startService()
    with pytest.raises(SystemExit) as stopped:
        tap.makeService(parse("--host", "127.0.0.1", "--file", str(path)), MemoryReactorClock())
    message = str(stopped.value)
    assert message.startswith("mitelacd: another mitelacd already writes " + str(path))
    assert f"held by process {os.getpid()}" in message
    first.stopService()
    # Once the first has stopped, the file is free again.
    again = tap.makeService(parse("--host", "127.0.0.1", "--file", str(path)), MemoryReactorClock())
    again.startService()
    again.stopService()


def test_corrupt_file_at_start_is_set_aside_and_the_service_runs(tmp_path: Path) -> None:
    path = tmp_path / "mitel_data.json"
    path.write_text("not json at all")
    reactor = MemoryReactorClock()
    service = tap.makeService(parse("--host", "127.0.0.1", "--file", str(path)), reactor)
    service.startService()
    assert service.floor.legacy()["agents"] == {}
    assert [p.name for p in tmp_path.iterdir() if ".invalid-" in p.name]
    assert len(reactor.tcpClients) == 1
    writers = [s for s in service if isinstance(s, LegacyFileWriter)]
    assert len(writers) == 1 and writers[0].running
    service.stopService()


def test_environment_stands_for_the_command_line(tmp_path: Path) -> None:
    options = tap.options_from_environment(
        {
            "MITELACD_HOST": "icp.example",
            "MITELACD_PORT": "15400",
            "MITELACD_FILE": str(tmp_path / "boards.json"),
            "MITELACD_WRITE_INTERVAL": "2.5",
            "UNRELATED": "x",
        }
    )
    assert (options["host"], options["port"], options["write-interval"]) == (
        "icp.example",
        15400,
        2.5,
    )
    assert options["file"].basename() == "boards.json"
    assert tap.options_from_environment({"MITELACD_SIMULATE": "yes"})["simulate"]


def test_bad_environment_stops_with_the_option_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit, match="port 99999 is out of range.*MITELACD_") as stopped:
        tap.options_from_environment({"MITELACD_HOST": "h", "MITELACD_PORT": "99999"})
    assert stopped.value.code == tap.EXIT_USAGE == 64
    assert "mitelacd.tac: port 99999 is out of range" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--host is required") as stopped:
        tap.options_from_environment({})
    assert stopped.value.code == 64


def test_tac_file_builds_the_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from twisted.application.service import IService, IServiceCollection

    monkeypatch.setenv("MITELACD_HOST", "127.0.0.1")
    monkeypatch.setenv("MITELACD_FILE", str(tmp_path / "mitel_data.json"))
    namespace: dict[str, object] = {}
    tac = Path(__file__).parent.parent / "mitelacd.tac"
    exec(compile(tac.read_text(), str(tac), "exec"), namespace)
    children = list(IServiceCollection(namespace["application"]))
    assert len(children) == 1
    assert isinstance(IService(children[0]), tap.MitelACDService)


def test_the_file_writers_health_reaches_the_feed_and_healthz(tmp_path: Path) -> None:
    from treq.testing import StubTreq

    from mitelacd.web.resources import WebService

    path = tmp_path / "mitel_data.json"
    reactor = MemoryReactorClock()
    argv = ("--host", "127.0.0.1", "--file", str(path), "--http", "tcp:0:interface=127.0.0.1")
    service = tap.makeService(parse(*argv), reactor)
    service.startService()
    (web,) = [s for s in service if isinstance(s, WebService)]
    # StubTreq makes its request methods at run time.
    stub: Any = StubTreq(web.site.resource)

    def get(url: str) -> dict[str, object]:
        d = stub.request("GET", "http://127.0.0.1" + url)
        stub.flush()
        body: list[bytes] = []
        d.addCallback(lambda r: r.content()).addCallback(body.append)
        doc: dict[str, object] = json.loads(body[0])
        return doc

    feed = get("/api/v1/feed")["feed"]
    assert isinstance(feed, dict)
    assert (feed["file"]["path"], feed["file"]["writing"]) == (str(path), True)
    assert get("/healthz")["warnings"] == []
    service.stopService()


def test_names_file_is_read_at_start_and_a_bad_one_is_a_usage_error(tmp_path: Path) -> None:
    from mitelacd.floor.names import NamesWatcher

    names = tmp_path / "names.toml"
    names.write_text('[agents]\n"1001" = "Ada Lovelace"\n[groups]\n"610" = 610\n')
    data = str(tmp_path / "mitel_data.json")
    with pytest.raises(usage.UsageError, match=r"^--names: .*names.toml, line 4: "):
        parse("--host", "h", "--file", data, "--names", str(names))
    names.write_text('[agents]\n"1001" = "Ada Lovelace"\n[groups]\n"610" = "Sales"\n')
    reactor = MemoryReactorClock()
    service = tap.makeService(parse("--host", "h", "--file", data, "--names", str(names)), reactor)
    service.startService()
    assert service.floor.names.groups == {"610": "Sales"}
    (watcher,) = [s for s in service if isinstance(s, NamesWatcher)]
    # A change on disk reaches the floor on the next look at the file.
    names.write_text('[agents]\n"1001" = "Ada King"\n')
    os.utime(names, ns=(1, 10**18))
    reactor.advance(1.0)
    entry = service.floor.names.agent("1001")
    assert entry is not None and entry.name == "Ada King"
    service.stopService()
    assert not watcher.running


# Usage errors end twistd with status 64; --version ----------------------------

ROOT = Path(__file__).parent.parent
NAMES_LINE_4 = '[agents]\n"1001" = "Ada"\n[groups]\n"610" = 610\n'


def run_twistd(
    *argv: str, cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``twistd -n`` as an operator runs it, to its end."""
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    environ.pop("MITELACD_TOKEN", None)
    return subprocess.run(
        [TWISTD, "-n", "--pidfile=", *argv],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["mitelacd", "--colour"], "twistd mitelacd: option --colour not recognized"),
        (["mitelacd"], "twistd mitelacd: --host is required"),
        (["mitelacd", "--host", "h", "--port", "99999"], "port 99999 is out of range"),
        (["mitelacd", "--host", "h", "--watchdog", "soon"], "--watchdog must be a number"),
        (
            ["mitelacd", "--host", "h", "--http", "tcp:99999"],
            "--http 'tcp:99999': port 99999 is out of range (0-65535",
        ),
        (
            ["mitelacd", "--host", "h", "--http", "tcp:8080:interface=board"],
            "interface 'board' is not an IP address",
        ),
        (["mitelacd", "--host", "h", "--http", "quic:443"], "unknown endpoint type 'quic'"),
        (
            ["mitelacd", "--host", "h", "--http", "unix:/nonexistent-folder/http.sock"],
            "unix: folder /nonexistent-folder does not exist",
        ),
        (["mitelacd", "--host", "h", "--names", "names.toml"], "names.toml, line 4"),
        (["mitelacd-sim", "--agents", "0"], "twistd mitelacd-sim: --agents must be between 1"),
        (["mitelacd-sim", "--colour"], "twistd mitelacd-sim: option --colour not recognized"),
    ],
)
def test_a_usage_error_exits_64_and_says_what_is_wrong(
    tmp_path: Path, argv: list[str], message: str
) -> None:
    (tmp_path / "names.toml").write_text(NAMES_LINE_4)
    done = run_twistd(*argv, cwd=tmp_path)
    assert done.returncode == tap.EXIT_USAGE == 64, done.stderr
    assert message in done.stderr
    # The message first, then where the help is; not the help itself; all on stderr.
    first, pointer = done.stderr.splitlines()
    assert first.startswith(f"twistd {argv[0]}: ") and message in first
    assert pointer == f"Run 'twistd {argv[0]} --help' for the options."
    assert "Usage:" not in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"MITELACD_HOST": "h", "MITELACD_HTTP": "tcp:99999"}, "port 99999 is out of range"),
        ({"MITELACD_HOST": "h", "MITELACD_NAMES": "names.toml"}, "names.toml, line 4"),
        ({}, "--host is required"),
    ],
)
def test_a_bad_environment_for_the_tac_file_exits_64(
    tmp_path: Path, environ: dict[str, str], message: str
) -> None:
    (tmp_path / "names.toml").write_text(NAMES_LINE_4)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MITELACD_")}
    done = subprocess.run(
        [TWISTD, "-n", "--pidfile=", "-y", str(ROOT / "mitelacd.tac")],
        cwd=tmp_path,
        env={**clean, "PYTHONPATH": str(ROOT), **environ},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 64, done.stderr
    assert "mitelacd.tac: " in done.stderr and message in done.stderr
    assert "(from the MITELACD_* environment)" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_failure_that_is_not_a_usage_error_is_not_64(tmp_path: Path) -> None:
    # A taken port may be free at the next try: systemd should restart.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = run_twistd(
            "mitelacd",
            "--simulate",
            "--file",
            str(tmp_path / "mitel_data.json"),
            "--http",
            f"tcp:{port}:interface=127.0.0.1",
            cwd=tmp_path,
        )
    assert done.returncode == 1
    assert f"cannot serve HTTP on 'tcp:{port}:interface=127.0.0.1'" in done.stdout + done.stderr


def test_version_is_mitelacds(tmp_path: Path) -> None:
    assert mitelacd.__version__ == "0.2.0"
    line = f"mitelacd 0.2.0 (Twisted {twisted_version}, Python {platform.python_version()})\n"
    for command in ("mitelacd", "mitelacd-sim"):
        done = run_twistd(command, "--version", cwd=tmp_path)
        assert (done.returncode, done.stdout, done.stderr) == (0, line, "")
    assert "Print mitelacd's version" in str(tap.Options())


# The --http endpoint -----------------------------------------------------------


@pytest.mark.parametrize(
    "description, message",
    [
        ("", "the endpoint is empty"),
        ("tcp", "tcp: needs a port"),
        ("tcp:99999", "port 99999 is out of range (0-65535; 0: any free port)"),
        ("tcp:-1", "port -1 is out of range"),
        ("tcp:http", "the port must be a number, not 'http'"),
        ("tcp:port=70000", "port 70000 is out of range"),
        ("tcp6:99999", "port 99999 is out of range"),
        ("ssl:65536", "port 65536 is out of range"),
        ("tcp:8080:interface=board.example", "interface 'board.example' is not an IP address"),
        ("tcp:8080:interface=300.1.2.3", "interface '300.1.2.3' is not an IP address"),
        ("tcp6:8080:interface=127.0.0.1", "tcp6: interface '127.0.0.1' is not an IPv6 address"),
        ("tcp:8080:backlog=0", "backlog must be a whole number above 0"),
        ("tcp:8080:colour=blue", "unknown parameter 'colour'; tcp: takes port, interface"),
        ("tcp:8080:port=8081", "port is given twice"),
        ("tcp:8080:127.0.0.1:50:extra", "too many parameters"),
        ("quic:443", "unknown endpoint type 'quic' (known types: "),
        ("unix:", "unix: needs a socket path"),
        ("unix:/nonexistent-folder/http.sock", "unix: folder /nonexistent-folder does not exist"),
        ("unix:/tmp", "is a directory"),
        ("unix:/tmp/http.sock:mode=rw", "unix: invalid literal"),
        ("ssl:8443:privateKey=/nonexistent/key.pem", "privateKey file '/nonexistent/key.pem'"),
        ("systemd:domain=INET:index=0", "systemd passed no such socket"),
        ("systemd:domain=INET", "systemd: Specify exactly one of descriptor index or name"),
        ("systemd:INET:0:x=1", "systemd: wrong parameters"),
    ],
)
def test_bad_endpoints_are_usage_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, description: str, message: str
) -> None:
    monkeypatch.delenv("LISTEN_FDS", raising=False)
    with pytest.raises(ValueError) as raised:
        check_endpoint(description)
    assert message in str(raised.value)
    data = str(tmp_path / "mitel_data.json")
    with pytest.raises(usage.UsageError) as refused:
        parse("--host", "h", "--file", data, "--http", description)
    assert str(refused.value) == f"--http {description!r}: {raised.value}"


@pytest.mark.parametrize(
    "description",
    [
        "tcp:0",
        "tcp:8080:interface=127.0.0.1",
        "tcp:65535:interface=\\:\\:1",
        "tcp:port=0:backlog=10",
        "tcp6:0:interface=\\:\\:1",
        "unix:{tmp}/http.sock",
        "unix:{tmp}/http.sock:mode=660",
    ],
)
def test_good_endpoints_pass(tmp_path: Path, description: str) -> None:
    description = description.format(tmp=tmp_path)
    assert check_endpoint(description) == description
    options = parse("--host", "h", "--file", str(tmp_path / "d.json"), "--http", description)
    assert options["http"] == description


def test_history_and_day_options(tmp_path: Path) -> None:
    data = str(tmp_path / "mitel_data.json")
    options = parse("--host", "icp.example", "--file", data)
    assert options["history"] == str(tmp_path / "mitelacd-history.db")
    assert options["history-days"] == 400 and options["history-source"] == "icp.example"
    assert options["day-starts"] == datetime.time(0, 0)
    options = parse("--simulate", "--file", data, "--history", "NONE", "--day-starts", "06:30")
    assert options["history"] is None and options["day-starts"] == datetime.time(6, 30)
    assert options["history-source"] == "simulator"
    url = "postgresql://acd:secret@db.example/acd"
    assert parse("--simulate", "--file", data, "--history", url)["history"] == url


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--day-starts", "06:10"), "--day-starts must be on a quarter hour"),
        (("--day-starts", "noon"), "--day-starts must be HH:MM"),
        (("--history-days", "0"), "--history-days must be 1 or more"),
        (("--history-days", "a year"), "--history-days must be a whole number of days"),
        (("--history", "ftp://db.example/acd"), "--history: unknown history database"),
        (("--history", "postgresql://db.example"), "names no database"),
    ],
)
def test_history_and_day_options_refused(
    tmp_path: Path, argv: tuple[str, ...], message: str
) -> None:
    with pytest.raises(usage.UsageError, match=re.escape(message)):
        parse("--simulate", "--file", str(tmp_path / "d.json"), *argv)


def test_each_source_gets_its_own_link_and_capture(tmp_path: Path) -> None:
    record = tmp_path / "capture"
    record.mkdir()
    argv = ["--source", "a=rte://192.0.2.1", "--source", "b=rte://192.0.2.2:16000"]
    argv += ["--source", "a-calls=smdr://192.0.2.1", "--record", str(record)]
    argv += ["--file", str(tmp_path / "mitel_data.json"), "--history", "none"]
    options = parse(*argv)
    assert options["history-source"] == "a+b+a-calls"
    assert options.floorSources() == ["a", "b"]
    reactor = MemoryReactorClock()
    service = tap.makeService(options, reactor)
    service.startService()
    try:
        dialled = {(host, port): factory for host, port, factory, _, _ in reactor.tcpClients}
        assert set(dialled) == {("192.0.2.1", 15373), ("192.0.2.2", 16000), ("192.0.2.1", 1752)}
        # Each ACD link tells the floor as its own source.
        acd = dialled["192.0.2.2", 16000]
        assert isinstance(acd, PBXClientFactory)
        acd.floor.feedConnected("192.0.2.2", 16000)
        assert service.floor.sources["b"].feed.connected
        assert not service.floor.sources["a"].feed.connected
        assert sorted(p.name for p in record.iterdir()) == ["a", "a-calls", "b"]
    finally:
        service.stopService()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--source", "a=rte://x", "--source", "a=rte://y"], "given twice"),
        (["--source", "a=ftp://x"], "unknown scheme 'ftp'"),
        (["--source", "calls=smdr://x"], "--host is required"),
        (["--simulate", "--source", "a=rte://x"], "--simulate reads its own simulator"),
        (["--source", "a=rte://x", "--failover-seconds", "0"], "more than 0"),
    ],
)
def test_bad_sources_are_usage_errors(tmp_path: Path, argv: list[str], message: str) -> None:
    with pytest.raises(usage.UsageError, match=re.escape(message)):
        parse(*argv, "--file", str(tmp_path / "mitel_data.json"))


def test_the_daemon_paces_the_garbage_collector_while_it_runs(tmp_path: Path) -> None:
    before = gc.get_threshold()
    service = tap.makeService(
        parse("--host", "127.0.0.1", "--file", str(tmp_path / "mitel_data.json")),
        MemoryReactorClock(),
    )
    # First in the tree: started before any part makes objects, stopped after the last.
    first = next(iter(service))
    assert isinstance(first, heap.YoungCollections)
    service.startService()
    try:
        assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD
    finally:
        service.stopService()
    assert gc.get_threshold() == before
