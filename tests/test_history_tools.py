"""``mitelacd-report`` and ``mitelacd-replay --history``: reports out of the history, days rebuilt into it."""

from __future__ import annotations

import csv
import datetime
import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mitelacd.cli import EXIT_USAGE
from mitelacd.feed import replay
from mitelacd.feed.capture import Connected, Data, Started, Stopped, write_capture
from mitelacd.reports import cli as reportcli
from mitelacd.reports.format import reason_columns, report_csv, report_document
from mitelacd.reports.rows import FIGURES, IntervalRow, ReasonKind
from mitelacd.reports.store import HistoryStore, open_store
from mitelacd.testing import call_body, wire
from mitelacd.testing.postgres import PostgresServer

DAY = "2026-03-09"
MIDNIGHT = 1773014400  # DAY, 00:00 UTC


def agent_row(agent: str, minutes: int, **figures: float) -> IntervalRow:
    start = MIDNIGHT + 8 * 3600 + minutes * 60
    values = {f.name: figures.get(f.name, 0) for f in FIGURES["agent"]}
    reasons: dict[tuple[ReasonKind, int | None], float] = {}
    if agent == "1001":
        reasons = {("make_busy", 3): 30.0, ("make_busy", None): 5.0}
    return IntervalRow("agent", agent, DAY, start, start - start % 3600, values, reasons)


def filled(url: str) -> None:
    store = open_store(url)
    try:
        store.migrate()
        store.write(
            "pbx",
            [
                agent_row("1001", 0, acd_calls=2, acd_talk_seconds=100.5, make_busy_seconds=35.0),
                agent_row("1001", 15, acd_calls=1, acd_talk_seconds=20.0),
                agent_row("999", 0, acd_calls=1, acd_talk_seconds=10.0),
            ],
            [],
        )
    finally:
        store.close()


def run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    return reportcli.main(argv, stdout=out), out.getvalue()


# --- formats -----------------------------------------------------------------------------------


def test_csv_flattens_the_reasons_into_columns() -> None:
    rows: list[dict[str, Any]] = [
        {
            "id": "1001",
            "day": DAY,
            "start": MIDNIGHT,
            **{f.name: 0 for f in FIGURES["agent"]},
            "acd_calls": 3,
            "acd_talk_seconds": 120.5,
            "acd_talk_average_seconds": 40.167,
            "not_ready_seconds": 35.0,
            "dnd_by_reason": [],
            "make_busy_by_reason": [
                {"reason": 3, "seconds": 30.0},
                {"reason": None, "seconds": 5.0},
            ],
        },
        {
            "id": "1002",
            "day": DAY,
            "start": MIDNIGHT,
            **{f.name: 0 for f in FIGURES["agent"]},
            "acd_talk_average_seconds": None,
            "not_ready_seconds": 7.0,
            "dnd_by_reason": [{"reason": 1, "seconds": 7.0}],
            "make_busy_by_reason": [{"reason": 12, "seconds": 2.5}],
        },
    ]
    assert [c for c, _, _ in reason_columns(rows)] == [
        "dnd_reason_1_seconds",
        "make_busy_reason_3_seconds",
        "make_busy_reason_12_seconds",
        "make_busy_reason_none_seconds",
    ]
    text = report_csv(rows, "agent")
    assert text.endswith("\r\n")
    table = list(csv.DictReader(io.StringIO(text)))
    header = text.split("\r\n")[0].split(",")
    assert header[:8] == [
        "id", "name", "team", "day", "start", "acd_calls", "acd_talk_seconds", "acd_talk_hms"
    ]  # fmt: skip
    plain = [h for h in header if not h.endswith("_hms")]
    assert [f.name for f in FIGURES["agent"]] == plain[5 : 5 + len(FIGURES["agent"])]
    first, second = table
    # No names file: empty names; the start in this machine's zone, with its offset.
    assert (first["name"], first["team"], first["day"]) == ("", "", DAY)
    start = datetime.datetime.fromisoformat(first["start"])
    assert start.timestamp() == MIDNIGHT and start.utcoffset() is not None
    assert first["acd_talk_hms"] == "0:02:01"  # 120.5 s, to the nearest second
    assert (first["acd_calls"], first["acd_talk_seconds"], first["hold_seconds"]) == (
        "3",
        "120.5",
        "0",
    )
    assert first["make_busy_reason_3_seconds"] == "30" and first["dnd_reason_1_seconds"] == ""
    assert first["make_busy_reason_none_seconds"] == "5"
    assert first["make_busy_reason_none_hms"] == "0:00:05"
    assert (
        second["acd_talk_average_seconds"] == "" and second["make_busy_reason_12_seconds"] == "2.5"
    )
    paths = report_csv([], "path").split("\r\n")[0].split(",")
    assert paths[:3] == ["id", "name", "day"]
    derived = ["mean_waiting", "average_handle_seconds", "average_handle_hms"]
    assert paths[paths.index("mean_waiting") :][:3] == derived
    assert paths[-2:] == ["open", "provisional"]
    # waiting_seconds is calls waiting x seconds, not a time: no h:mm:ss twin.
    assert "waiting_hms" not in paths and "covered_hms" in paths
    assert "make_busy_reason" not in ",".join(paths)


def test_the_json_document() -> None:
    doc = report_document([{"id": "860"}], datetime.date(2026, 3, 1), "2026-03-09", "path", "1h")
    assert doc == {
        "from": "2026-03-01",
        "to": "2026-03-09",
        "by": "path",
        "interval": "1h",
        "source": None,
        "figures": [f.name for f in FIGURES["path"]],
        "paths": [{"id": "860"}],
    }


# --- mitelacd-report ---------------------------------------------------------------------------


def test_report_as_json_and_csv(tmp_path: Path) -> None:
    url = str(tmp_path / "h.db")
    filled(url)
    status, out = run(["--history", url, "--from", DAY])
    assert status == 0
    doc = json.loads(out)
    assert (doc["from"], doc["to"], doc["by"], doc["interval"]) == (DAY, DAY, "agent", "day")
    agents = doc["agents"]
    assert [(a["id"], a["acd_calls"], a["acd_talk_seconds"]) for a in agents] == [
        ("999", 1, 10.0),
        ("1001", 3, 120.5),
    ]
    assert agents[1]["make_busy_by_reason"] == [
        {"reason": 3, "seconds": 60.0},
        {"reason": None, "seconds": 10.0},
    ]
    status, out = run(
        ["--history", f"sqlite:///{url}", "--from", DAY, "--to", DAY, "--interval", "15m", "--csv",
         "--id", "1001", "--source", "pbx"]
    )  # fmt: skip
    assert status == 0
    table = list(csv.DictReader(io.StringIO(out)))
    assert [
        (r["id"], datetime.datetime.fromisoformat(r["start"]).timestamp(), r["acd_calls"])
        for r in table
    ] == [
        ("1001", MIDNIGHT + 8 * 3600, "2"),
        ("1001", MIDNIGHT + 8 * 3600 + 900, "1"),
    ]
    assert table[0]["make_busy_reason_3_seconds"] == "30"
    status, out = run(["--history", url, "--from", DAY, "--source", "elsewhere"])
    assert status == 0 and json.loads(out)["agents"] == []


def test_report_from_postgresql(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database("report_cli")
    try:
        filled(url)
        status, out = run(["--history", url, "--from", DAY, "--by", "agent", "--interval", "1h"])
        assert status == 0
        agents = json.loads(out)["agents"]
        assert [(a["id"], a["start"], a["acd_calls"]) for a in agents] == [
            ("999", MIDNIGHT + 8 * 3600, 1),
            ("1001", MIDNIGHT + 8 * 3600, 3),
        ]
    finally:
        postgres_server.drop_database("report_cli")


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--from", DAY], "the following arguments are required: --history"),
        (["--history", "h.db"], "the following arguments are required: --from"),
        (["--history", "h.db", "--from", "9 March"], "not a day: '9 March'"),
        (["--history", "h.db", "--from", DAY, "--to", "2026-03-01"], "is before --from"),
        (["--history", "h.db", "--from", DAY, "--by", "queue"], "invalid choice: 'queue'"),
        (["--history", "h.db", "--from", DAY, "--interval", "5m"], "invalid choice: '5m'"),
        (["--history", "mysql://u:pw@h/db", "--from", DAY], "unknown history database"),
    ],
)
def test_report_usage_errors_exit_64(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        run(argv)
    assert stopped.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert words in err and "pw" not in err


def test_an_unreadable_database_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "none.db"
    assert run(["--history", str(missing), "--from", DAY]) == (1, "")
    assert f"cannot read the history database {missing}: no history database at {missing}" in (
        capsys.readouterr().err
    )
    assert not missing.exists()
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x INTEGER)").connection.commit()
    assert run(["--history", str(other), "--from", DAY]) == (1, "")
    assert "is not a mitelacd history database" in capsys.readouterr().err
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    assert run(["--history", str(garbage), "--from", DAY]) == (1, "")
    assert "cannot read the history database" in capsys.readouterr().err
    status, _ = run(["--history", "postgresql://nobody@127.0.0.1:1/none", "--from", DAY])
    assert status == 1
    assert "database unreachable" in capsys.readouterr().err


def test_the_console_script_is_installed() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "mitelacd-report"), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.startswith("mitelacd-report ")


# --- mitelacd-replay --history -----------------------------------------------------------------


def local_day(day: str) -> tuple[float, float]:
    date = datetime.date.fromisoformat(day)
    start = datetime.datetime.combine(date, datetime.time(0)).timestamp()
    end = datetime.datetime.combine(date + datetime.timedelta(days=1), datetime.time(0)).timestamp()
    return start, end


def day_capture(path: Path, day: str) -> None:
    """A capture from just before ``day`` starts to just after it ends (local time).

    Agent 1001 logs in, takes an ACD call on path 860 for 100 s, is in make
    busy for 300 s with reason 3, and is still logged in at midnight.
    """
    start, end = local_day(day)
    seq = iter(range(100))

    def event(at: float, code: str, tail: str = "") -> Data:
        return Data(at, wire(call_body(next(seq), code, "2001", "1001", tail)))

    write_capture(
        str(path),
        [
            Started(start - 30, "mitelacd 0.2.0"),
            Connected(start - 30, "10.1.2.3", 15373),
            event(start + 8 * 3600, "A"),
            event(start + 9 * 3600, "G", "01860"),
            event(start + 9 * 3600 + 100, "J", "01"),
            event(start + 10 * 3600, "E", "03"),
            event(start + 10 * 3600 + 300, "F"),
            event(end + 20, "D"),
            Stopped(end + 30, "stopped"),
        ],
    )


def test_replay_rebuilds_the_days_it_covers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = tmp_path / "day.capture"
    day_capture(capture, DAY)
    url = str(tmp_path / "h.db")
    store = open_store(url)
    store.migrate()
    # What the daemon stored, wrongly: to be replaced.
    store.write("10.1.2.3", [agent_row("1001", 0, acd_calls=40)], [])
    store.close()
    for _ in range(2):  # twice: the second replaces the first, nothing is doubled
        assert replay.main([str(capture), "--history", url, "--quiet"], stdout=io.StringIO()) == 0
        err = capsys.readouterr().err
        assert f"{DAY} of source '10.1.2.3' in {url}" in err
        assert "2026-03-10 is only partly in the captures: left as it is" in err
        check_rebuilt(open_store(url))


def check_rebuilt(store: HistoryStore) -> None:
    try:
        agents = store.report("agent", DAY, "2026-03-10", source="10.1.2.3")
        assert [(a["id"], a["day"]) for a in agents] == [("1001", DAY)]
        agent = agents[0]
        assert agent["acd_calls"] == 1
        assert agent["acd_talk_seconds"] == 100.0
        assert agent["make_busy_seconds"] == 300.0
        assert agent["make_busy_by_reason"] == [{"reason": 3, "seconds": 300.0}]
        paths = store.report("path", DAY, DAY, source="10.1.2.3")
        assert [(p["id"], p["acd_calls"]) for p in paths] == [("860", 1)]
        start, end = local_day(DAY)
        spans = store.states("10.1.2.3", "1001", start, end)
        assert spans and all(start <= s.start < end for s in spans)
        assert spans[0].start == start + 8 * 3600
        assert any(s.state == "on_call" and s.path == "860" for s in spans)
        assert store.states("10.1.2.3", "1001", end, end + 86400) == []
    finally:
        store.close()


def test_replay_a_day_by_name_and_under_a_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = tmp_path / "day.capture"
    day_capture(capture, DAY)
    url = str(tmp_path / "h.db")
    argv = [str(capture), "--history", url, "--quiet", "--source", "north", "--day", "2026-03-10"]
    assert replay.main(argv, stdout=io.StringIO()) == 0
    assert "2026-03-10 of source 'north'" in capsys.readouterr().err
    store = open_store(url)
    try:
        days = store.report("agent", DAY, "2026-03-10")
        assert [(a["day"], a["acd_calls"]) for a in days] == [("2026-03-10", 0)]
        assert days[0]["logged_in_seconds"] > 0
    finally:
        store.close()


def test_replay_history_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = tmp_path / "day.capture"
    day_capture(capture, DAY)
    with pytest.raises(SystemExit) as stopped:
        replay.main([str(capture), "--history", "mysql://h/db"], stdout=io.StringIO())
    assert stopped.value.code == 2 and "unknown history database" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        replay.main([str(capture), "--source", "x"], stdout=io.StringIO())
    assert "--source and --day go with --history" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        replay.main([str(capture), "--history", "h.db", "--day-starts", "06:10"])
    assert "quarter hour" in capsys.readouterr().err
    folder = tmp_path / "missing" / "h.db"
    assert replay.main([str(capture), "--history", str(folder), "--quiet"]) == 1
    assert "cannot write the history database" in capsys.readouterr().err
