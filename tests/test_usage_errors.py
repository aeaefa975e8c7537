"""Usage errors: the error first, then one line pointing to ``--help``, and exit status 64.

Each bad command line is a row: what is given, and the exact message. The
options are parsed in this process (``tap.Options``, and under Twisted's
``ServerOptions`` as ``twistd`` parses them), and ``twistd mitelacd`` is run
as an operator runs it: standard error holds the message and the pointer
to ``--help``, and nothing of the help itself.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.scripts.twistd import ServerOptions

from mitelacd import tap
from mitelacd.cli import EXIT_USAGE, CommandParser, UsageExit
from mitelacd.feed import replay
from mitelacd.reports import cli as report_cli
from mitelacd.testing import TWISTD
from mitelacd.web.endpoint import endpoint_types

ROOT = Path(__file__).parent.parent
POINTER = "Run 'twistd mitelacd --help' for the options."
#: A names file whose line 6 writes group 7 short of its zeros.
SHORT_GROUP = '[agents]\n"1001" = "Ada"\n\n[groups]\n"610" = "Sales"\n"7" = "Bond"\n'
KNOWN_TYPES = ", ".join(endpoint_types())

#: Command lines of ``twistd mitelacd`` (after ``--file``) and the message of each.
BAD_COMMAND_LINES = [
    pytest.param(["--colour"], "option --colour not recognized", id="unknown-option"),
    pytest.param(
        [],
        "--host is required (or --source NAME=rte://HOST, or --simulate to run without a PBX)",
        id="no-host",
    ),
    pytest.param(
        ["--host", "127.0.0.1:15373"],
        "--host takes a host name or address, not a port: use --host 127.0.0.1 --port 15373",
        id="host-with-port",
    ),
    pytest.param(
        ["--host", "icp.example:15373"],
        "--host takes a host name or address, not a port: use --host icp.example --port 15373",
        id="name-with-port",
    ),
    pytest.param(
        ["--host", "[::1]:15373"],
        "--host takes a host name or address, not a port: use --host ::1 --port 15373",
        id="ipv6-with-port",
    ),
    pytest.param(
        ["--host", "2001:db8::7:15373"],
        "--host takes a host name or address, not a port: use --host 2001:db8::7 --port 15373",
        id="ipv6-with-port-no-brackets",
    ),
    pytest.param(
        ["--host", "[fd00::7]"],
        "--host takes an IPv6 address without brackets: use --host fd00::7",
        id="ipv6-in-brackets",
    ),
    pytest.param(
        ["--host", "tcp://10.1.2.3:15373"],
        "--host takes a host name or address, not a URL: use --host 10.1.2.3 --port 15373",
        id="host-as-url",
    ),
    pytest.param(
        ["--host", "icp:feed"],
        "--host 'icp:feed' is not a host name or address",
        id="host-with-words",
    ),
    pytest.param(
        ["--host", "h", "--http", "8080"],
        "--http '8080': a port alone is not an endpoint: did you mean tcp:8080 (every"
        " interface) or tcp:8080:interface=127.0.0.1 (this machine only)?",
        id="http-port-alone",
    ),
    pytest.param(
        ["--host", "h", "--http", "127.0.0.1:8080"],
        "--http '127.0.0.1:8080': an address with a port is not an endpoint:"
        " did you mean tcp:8080:interface=127.0.0.1?",
        id="http-address-and-port",
    ),
    pytest.param(
        ["--host", "h", "--http", "localhost:8080"],
        "--http 'localhost:8080': an address with a port is not an endpoint:"
        " did you mean tcp:8080:interface=127.0.0.1?",
        id="http-localhost-and-port",
    ),
    pytest.param(
        ["--host", "h", "--http", "[::1]:8080"],
        "--http '[::1]:8080': an address with a port is not an endpoint:"
        " did you mean tcp6:8080:interface=\\:\\:1?",
        id="http-ipv6-and-port",
    ),
    pytest.param(
        ["--host", "h", "--http", "http://0.0.0.0:8080/"],
        "--http 'http://0.0.0.0:8080/': a URL is not an endpoint: did you mean tcp:8080"
        " (every interface) or tcp:8080:interface=127.0.0.1 (this machine only)?",
        id="http-url",
    ),
    pytest.param(
        ["--host", "h", "--http", "tpc:8080"],
        "--http 'tpc:8080': unknown endpoint type 'tpc': did you mean tcp:8080?",
        id="http-mistyped-type",
    ),
    pytest.param(
        ["--host", "h", "--http", "TCP:8080:interface=127.0.0.1"],
        "--http 'TCP:8080:interface=127.0.0.1': unknown endpoint type 'TCP':"
        " did you mean tcp:8080:interface=127.0.0.1?",
        id="http-type-in-capitals",
    ),
    pytest.param(
        ["--host", "h", "--http", "http:8080"],
        "--http 'http:8080': unknown endpoint type 'http': did you mean tcp:8080?",
        id="http-for-tcp",
    ),
    pytest.param(
        ["--host", "h", "--http", "tpc:99999"],
        "--http 'tpc:99999': unknown endpoint type 'tpc': did you mean tcp:99999?"
        " (refused too: port 99999 is out of range (0-65535; 0: any free port))",
        id="http-mistyped-and-out-of-range",
    ),
    pytest.param(
        ["--host", "h", "--http", "nnoe"],
        "--http 'nnoe': unknown endpoint type 'nnoe': did you mean none (no HTTP)?",
        id="http-none-mistyped",
    ),
    pytest.param(
        ["--host", "h", "--http", "quic:443"],
        f"--http 'quic:443': unknown endpoint type 'quic' (known types: {KNOWN_TYPES};"
        " or none, for no HTTP)",
        id="http-nothing-near",
    ),
    pytest.param(
        ["--host", "h", "--names", "{names}"],
        '--names: {names}, line 6: group "7" in [groups]: write "007", as the PBX sends it',
        id="names-short-group",
    ),
]


def command_line(argv: list[str], folder: Path) -> list[str]:
    names = folder / "names.toml"
    names.write_text(SHORT_GROUP)
    return ["--file", str(folder / "mitel_data.json"), *(a.format(names=names) for a in argv)]


@pytest.mark.parametrize(("argv", "message"), BAD_COMMAND_LINES)
def test_the_options_say_what_is_wrong(tmp_path: Path, argv: list[str], message: str) -> None:
    options = tap.Options()
    with pytest.raises(usage.UsageError) as refused:
        options.parseOptions(command_line(argv, tmp_path))
    assert str(refused.value) == message.format(names=tmp_path / "names.toml")


@pytest.mark.parametrize(("argv", "message"), BAD_COMMAND_LINES)
def test_under_twistd_the_error_comes_first_then_the_pointer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(UsageExit) as stopped:
        ServerOptions().parseOptions(["mitelacd", *command_line(argv, tmp_path)])
    assert stopped.value.code == EXIT_USAGE == 64
    out, err = capsys.readouterr()
    shown = message.format(names=tmp_path / "names.toml")
    assert (out, err) == ("", f"twistd mitelacd: {shown}\n{POINTER}\n")


def test_help_asked_for_is_the_whole_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        ServerOptions().parseOptions(["mitelacd", "--help"])
    assert stopped.value.code == 0
    out, err = capsys.readouterr()
    assert out.startswith(
        "Usage: twistd [options] mitelacd [--host PBX | --simulate | --source NAME=URL ...] [options]"
    )
    assert all(f"--{name}" in out for name in ("host", "port", "http", "names", "history"))
    assert err == ""


@pytest.mark.parametrize(
    "host", ["::1", "fe80::1%eth0", "2001:db8::7", "10.1.2.3", "icp.example", "icp"]
)
def test_a_host_alone_is_taken_and_dialled_as_given(tmp_path: Path, host: str) -> None:
    options = tap.Options()
    options.parseOptions(["--host", host, "--file", str(tmp_path / "mitel_data.json")])
    assert options["host"] == options["history-source"] == host
    reactor = MemoryReactorClock()
    service = tap.makeService(options, reactor)
    service.startService()
    try:
        ((dialled, port, _, _, _),) = reactor.tcpClients
        assert (dialled, port) == (host, 15373)
    finally:
        service.stopService()


def test_the_tac_environment_says_which_variable_it_came_from(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(UsageExit) as stopped:
        tap.options_from_environment({"MITELACD_HOST": "127.0.0.1:15373"})
    assert stopped.value.code == 64
    assert capsys.readouterr().err == (
        "mitelacd.tac: --host takes a host name or address, not a port:"
        " use --host 127.0.0.1 --port 15373 (from the MITELACD_* environment)\n"
    )


# The commands of argparse: the same shape --------------------------------------


def test_an_argparse_command_says_the_error_then_where_the_help_is(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = CommandParser(prog="mitelacd-example")
    parser.add_argument("--day", required=True)
    with pytest.raises(SystemExit) as stopped:
        parser.parse_args(["--colour"])
    assert stopped.value.code == 64
    assert capsys.readouterr().err == (
        "mitelacd-example: the following arguments are required: --day\n"
        "Run 'mitelacd-example --help' for the options.\n"
    )
    with pytest.raises(SystemExit) as stopped:
        parser.parse_args(["--help"])
    out, err = capsys.readouterr()
    assert stopped.value.code == 0 and out.startswith("usage: mitelacd-example") and err == ""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: FILE"),
        (["day.capture", "--at", "soon"], "argument --at: not a time: 'soon'"),
        (["day.capture", "--source", "north"], "--source and --day go with --history"),
    ],
)
def test_mitelacd_replay_says_the_error_then_where_the_help_is(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as stopped:
        replay.main(argv)
    # mitelacd-replay exits 2 on a bad command line, as on a capture it cannot read.
    assert stopped.value.code == replay.EXIT_UNREADABLE == 2
    first, pointer = capsys.readouterr().err.splitlines()
    assert first.startswith(f"mitelacd-replay: {message}")
    assert pointer == "Run 'mitelacd-replay --help' for the options."


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--from", "today"], "the following arguments are required: --history"),
        (
            ["--history", "h.db", "--from", "today", "--by", "team"],
            "--by",
        ),
        (
            ["--history", "h.db", "--from", "today", "--csv", "--xlsx", "r.xlsx"],
            "--xlsx",
        ),
    ],
)
def test_mitelacd_report_says_the_error_then_where_the_help_is(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as stopped:
        report_cli.main(argv)
    assert stopped.value.code == EXIT_USAGE
    first, pointer = capsys.readouterr().err.splitlines()
    assert first.startswith("mitelacd-report: ") and message in first, first
    assert pointer == "Run 'mitelacd-report --help' for the options."


# twistd mitelacd, run ---------------------------------------------------------------


def run_twistd(
    argv: list[str], cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``twistd -n`` as an operator runs it, with this checkout's mitelacd, to its end."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MITELACD_")}
    return subprocess.run(
        [TWISTD, "-n", "--pidfile=", *argv],
        cwd=cwd,
        env={**clean, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.processes
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        row
        for row in BAD_COMMAND_LINES
        if row.id
        in (
            "unknown-option",
            "host-with-port",
            "ipv6-with-port",
            "http-port-alone",
            "http-mistyped-type",
            "names-short-group",
        )
    ],
)
def test_twistd_mitelacd_prints_two_lines_and_exits_64(
    tmp_path: Path, argv: list[str], message: str
) -> None:
    done = run_twistd(["mitelacd", *command_line(argv, tmp_path)], tmp_path)
    shown = message.format(names=tmp_path / "names.toml")
    assert (done.returncode, done.stdout) == (64, "")
    assert done.stderr == f"twistd mitelacd: {shown}\n{POINTER}\n"


@pytest.mark.processes
def test_twistd_mitelacd_help_is_the_whole_help_and_exits_0(tmp_path: Path) -> None:
    done = run_twistd(["mitelacd", "--help"], tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("Usage: twistd [options] mitelacd ")
    assert len(done.stdout.splitlines()) > 40


@pytest.mark.processes
def test_twistd_mitelacd_sim_says_the_error_first_too(tmp_path: Path) -> None:
    done = run_twistd(["mitelacd-sim", "--agents", "0"], tmp_path)
    assert (done.returncode, done.stdout) == (64, "")
    assert done.stderr == (
        "twistd mitelacd-sim: --agents must be between 1 and 999\n"
        "Run 'twistd mitelacd-sim --help' for the options.\n"
    )


@pytest.mark.processes
def test_the_tac_file_with_a_host_and_port_exits_64(tmp_path: Path) -> None:
    done = run_twistd(
        ["-y", str(ROOT / "mitelacd.tac")],
        tmp_path,
        env={"MITELACD_HOST": "[::1]:15373", "MITELACD_FILE": str(tmp_path / "d.json")},
    )
    assert done.returncode == 64, done.stderr
    assert (
        "mitelacd.tac: --host takes a host name or address, not a port:"
        " use --host ::1 --port 15373 (from the MITELACD_* environment)\n"
    ) in done.stderr
    assert "Traceback" not in done.stderr
