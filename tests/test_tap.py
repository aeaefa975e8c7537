"""The command line, the plugins and the service tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from twisted.application.service import IServiceMaker
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel
from twisted.plugin import getPlugins
from twisted.python import usage

from mitelacd import logs, tap
from mitelacd.persist import LegacyFileWriter


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


def test_bad_environment_stops_with_the_option_message() -> None:
    with pytest.raises(SystemExit, match="port 99999 is out of range.*MITELACD_"):
        tap.options_from_environment({"MITELACD_HOST": "h", "MITELACD_PORT": "99999"})
    with pytest.raises(SystemExit, match="--host is required"):
        tap.options_from_environment({})


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

    from mitelacd.web import WebService

    path = tmp_path / "mitel_data.json"
    reactor = MemoryReactorClock()
    argv = ("--host", "127.0.0.1", "--file", str(path), "--http", "tcp:0:interface=127.0.0.1")
    service = tap.makeService(parse(*argv), reactor)
    service.startService()
    (web,) = [s for s in service if isinstance(s, WebService)]
    stub = StubTreq(web.site.resource)

    def get(url: str) -> dict[str, object]:
        d = stub.get("http://127.0.0.1" + url)
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
    from mitelacd.names import NamesWatcher

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
