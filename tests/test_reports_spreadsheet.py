"""Reports for spreadsheets: CSV read back with ``csv``, XLSX read back with openpyxl.

Names and teams beside the IDs, local times with their offset (or UTC),
``h:mm:ss`` beside every duration, reason columns named by their text, a
byte-order mark only when asked, formula-looking names written inert; from
the formats, from ``mitelacd-report`` and from the API over a real socket.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import openpyxl
import pytest
import pytest_twisted
import treq
from twisted.internet import defer, reactor
from twisted.internet.interfaces import IReactorTime

from mitelacd.cli import EXIT_USAGE
from mitelacd.floor.documents import FloorDocuments
from mitelacd.floor.names import Names, parse_names
from mitelacd.reports import cli as reportcli
from mitelacd.reports import workbook
from mitelacd.reports.format import hms, reason_columns, report_csv, report_json, slug
from mitelacd.reports.rows import FIGURES, IntervalRow, ReasonKind, RowKind
from mitelacd.reports.store import open_store
from mitelacd.reports.workbook import report_xlsx_bytes
from mitelacd.testing.history import FiguresAndHistory
from mitelacd.web.reports import Reports
from mitelacd.web.resources import Served, WebService

CLOCK = cast(IReactorTime, reactor)
PARIS = ZoneInfo("Europe/Paris")

DAY = "2026-03-09"
MIDNIGHT_UTC = 1773014400  # 2026-03-09T00:00:00Z
#: 09:15 in Paris on DAY: winter time, an hour ahead of UTC (08:15Z).
QUARTER = MIDNIGHT_UTC + 8 * 3600 + 15 * 60
#: 09:15 in Paris on 2026-07-01 (114 days on): summer time, two hours ahead (07:15Z).
SUMMER_QUARTER = MIDNIGHT_UTC + 114 * 86400 + 7 * 3600 + 15 * 60

FORMULA_NAME = '=HYPERLINK("http://attacker.example/","click")'

NAMES_TOML = f"""
[agents]
"1002" = {{ name = "Hélène Côté", team = "Früh" }}
"1003" = {{ name = '{FORMULA_NAME}', team = "@SUM(1)" }}
"1004" = {{ name = "-2+3", team = "+Night" }}

[paths]
"860" = "Ligne Été"

[make_busy_reasons]
"05" = "Lunch"
"12" = "Pause café"

[dnd_reasons]
"01" = "Meeting"
"02" = "meeting!"
"""


def names() -> Names:
    return parse_names(NAMES_TOML, "names.toml")


def zeros(kind: RowKind) -> dict[str, Any]:
    return {f.name: 0 for f in FIGURES[kind]}


def agent(ident: str, start: int = QUARTER, **figures: Any) -> dict[str, Any]:
    """A report row as HistoryStore.report gives it."""
    row: dict[str, Any] = {"id": ident, "day": DAY, "start": start, **zeros("agent")}
    row.update(acd_talk_average_seconds=None, not_ready_seconds=0.0)
    row.update(average_handle_seconds=None, occupancy_percent=None)
    row.update(dnd_by_reason=[], make_busy_by_reason=[])
    row.update(figures)
    return row


def rows() -> list[dict[str, Any]]:
    return [
        agent(
            "1002",
            acd_calls=3,
            acd_talk_seconds=9789.4,  # 2:43:09.4
            acd_talk_average_seconds=3263.133,  # 0:54:23.1
            logged_in_seconds=97389.5,  # 27:03:09.5, rounds up to 27:03:10
            make_busy_seconds=1500.0,
            make_busy_by_reason=[
                {"reason": 5, "seconds": 600.0},
                {"reason": 9, "seconds": 300.0},
                {"reason": 12, "seconds": 540.0},
                {"reason": None, "seconds": 60.0},
            ],
            dnd_by_reason=[{"reason": 1, "seconds": 30.0}, {"reason": 2, "seconds": 45.0}],
        ),
        agent("1003", acd_calls=1, acd_talk_seconds=-5.0),
        agent("1004", start=SUMMER_QUARTER),
        agent("1005"),
    ]


def table(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def paris(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This machine's local time is Paris's for the test."""
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# --- CSV ---------------------------------------------------------------------------------------


def test_csv_names_local_times_hms_and_reason_texts() -> None:
    text = report_csv(rows(), "agent", names(), PARIS)
    header = text.split("\r\n")[0].split(",")
    assert header[:9] == [
        "id", "name", "team", "day", "start",
        "acd_calls", "acd_talk_seconds", "acd_talk_hms", "holds",
    ]  # fmt: skip
    # The reasons: by text, but the two DND texts that make the same name, by code.
    reasons = header[header.index("occupancy_percent") + 1 :]
    assert reasons == [
        "dnd_reason_1_seconds", "dnd_reason_1_hms",
        "dnd_reason_2_seconds", "dnd_reason_2_hms",
        "make_busy_lunch_seconds", "make_busy_lunch_hms",
        "make_busy_reason_9_seconds", "make_busy_reason_9_hms",
        "make_busy_pause_cafe_seconds", "make_busy_pause_cafe_hms",
        "make_busy_reason_none_seconds", "make_busy_reason_none_hms",
    ]  # fmt: skip
    hopper, formula, summer, nameless = table(text)
    assert (hopper["id"], hopper["name"], hopper["team"]) == ("1002", "Hélène Côté", "Früh")
    assert (nameless["name"], nameless["team"]) == ("", "")
    assert hopper["day"] == DAY
    assert hopper["start"] == "2026-03-09T09:15:00+01:00"
    assert summer["start"] == "2026-07-01T09:15:00+02:00"
    assert (hopper["acd_talk_seconds"], hopper["acd_talk_hms"]) == ("9789.4", "2:43:09")
    assert hopper["acd_talk_average_hms"] == "0:54:23"
    assert (hopper["logged_in_seconds"], hopper["logged_in_hms"]) == ("97389.5", "27:03:10")
    assert (hopper["make_busy_seconds"], hopper["make_busy_hms"]) == ("1500", "0:25:00")
    assert (hopper["make_busy_lunch_seconds"], hopper["make_busy_lunch_hms"]) == ("600", "0:10:00")
    assert hopper["make_busy_pause_cafe_hms"] == "0:09:00"
    assert hopper["make_busy_reason_9_seconds"] == "300"
    assert (hopper["dnd_reason_2_seconds"], hopper["dnd_reason_2_hms"]) == ("45", "0:00:45")
    assert (formula["make_busy_lunch_seconds"], formula["make_busy_lunch_hms"]) == ("", "")
    assert (nameless["acd_talk_average_seconds"], nameless["acd_talk_average_hms"]) == ("", "")
    # waiting_seconds is calls x seconds: paths have no h:mm:ss of it.
    paths = report_csv([], "path", names()).split("\r\n")[0].split(",")
    assert "waiting_hms" not in paths and "max_longest_wait_hms" in paths


def test_csv_in_utc() -> None:
    hopper, _, summer, _ = table(report_csv(rows(), "agent", names(), datetime.timezone.utc))
    assert hopper["start"] == "2026-03-09T08:15:00+00:00"
    assert summer["start"] == "2026-07-01T07:15:00+00:00"


def test_csv_formula_looking_text_is_written_inert() -> None:
    _, formula, summer, _ = table(report_csv(rows(), "agent", names(), PARIS))
    assert formula["name"] == "'" + FORMULA_NAME
    assert formula["team"] == "'@SUM(1)"
    assert (summer["name"], summer["team"]) == ("'-2+3", "'+Night")
    # Numbers stay numbers, negative ones too: only text is quoted.
    assert (formula["acd_talk_seconds"], formula["acd_talk_hms"]) == ("-5", "-0:00:05")
    assert formula["acd_calls"] == "1"
    paths = table(
        report_csv([{"id": "860", "day": DAY, "start": QUARTER, **zeros("path")}], "path", names())
    )
    assert paths[0]["name"] == "Ligne Été"
    tab = parse_names('[groups]\n"610" = "\\tTab"\n', "n.toml")
    (group,) = table(
        report_csv([{"id": "610", "day": DAY, "start": QUARTER, **zeros("group")}], "group", tab)
    )
    assert group["name"] == "'\tTab"


def test_a_byte_order_mark_only_when_asked() -> None:
    plain = report_csv(rows(), "agent", names(), PARIS)
    assert plain.startswith("id,name,")
    marked = report_csv(rows(), "agent", names(), PARIS, excel=True)
    assert marked == "\ufeff" + plain
    # As Excel reads it: UTF-8 with a mark, the first column still "id".
    (first, *_) = csv.DictReader(io.StringIO(marked.encode("utf-8").decode("utf-8-sig")))
    assert (first["id"], first["name"]) == ("1002", "Hélène Côté")


def test_reason_column_names() -> None:
    assert slug("Pause café") == "pause_cafe"
    assert slug("  Straße -- 2 ") == "strasse_2"
    assert slug("会议") == ""
    assert hms(0) == "0:00:00" and hms(59.5) == "0:01:00" and hms(86400 + 3 * 3600) == "27:00:00"
    odd = parse_names(
        '[dnd_reasons]\n"3" = "Reason 7"\n"4" = "会议"\n"5" = "Training"\n"6" = "Seconds"\n',
        "n.toml",
    )
    row = agent("1002", dnd_by_reason=[{"reason": r, "seconds": 1.0} for r in (3, 4, 5, 6)])
    # "Reason 7" would pass for code 7, 会议 leaves no letter: each by its code.
    assert [c for c, _, _ in reason_columns([row], odd)] == [
        "dnd_reason_3_seconds",
        "dnd_reason_4_seconds",
        "dnd_training_seconds",
        "dnd_seconds_seconds",
    ]
    # A name another column has already: by the code.
    assert [c for c, _, _ in reason_columns([row], odd, ["dnd_training_seconds"])][2] == (
        "dnd_reason_5_seconds"
    )


def test_json_gains_names_and_teams() -> None:
    doc = json.loads(report_json(rows(), DAY, DAY, "agent", "day", "pbx", names()))
    first = doc["agents"][0]
    assert list(first)[:4] == ["id", "name", "team", "day"]
    assert (first["name"], first["team"], first["start"]) == ("Hélène Côté", "Früh", QUARTER)
    assert first["make_busy_by_reason"][0] == {"reason": 5, "seconds": 600.0}


# --- XLSX --------------------------------------------------------------------------------------


def sheet_xml(data: bytes, number: int) -> str:
    return zipfile.ZipFile(io.BytesIO(data)).read(f"xl/worksheets/sheet{number}.xml").decode()


def test_xlsx_sheets_header_panes_and_typed_cells() -> None:
    path_row = {"id": "860", "day": DAY, "start": QUARTER, **zeros("path"), "acd_calls": 4}
    path_row.update(covered_seconds=900.0, waiting_seconds=1800.0, mean_waiting=2.0)
    data = report_xlsx_bytes([("agent", rows()), ("path", [path_row])], names(), PARIS)
    book = openpyxl.load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["agents", "paths"]
    agents, paths = book["agents"], book["paths"]
    header = [c.value for c in agents[1]]
    assert header[:10] == [
        "id", "name", "team", "day", "start", "utc_offset",
        "acd_calls", "acd_talk_seconds", "acd_talk_hms", "holds",
    ]  # fmt: skip
    assert "make_busy_lunch_hms" in header and "make_busy_pause_cafe_seconds" in header
    assert all(c.font.bold for c in agents[1])
    # Frozen below the header and right of the names.
    assert agents.freeze_panes == "C2" and paths.freeze_panes == "C2"
    col = {name: index + 1 for index, name in enumerate(header)}

    def cell(row: int, name: str) -> Any:
        return agents.cell(row=row, column=col[name])

    assert cell(2, "id").value == "1002" and cell(2, "id").data_type == "s"
    assert (cell(2, "name").value, cell(2, "team").value) == ("Hélène Côté", "Früh")
    assert cell(2, "day").value == datetime.datetime(2026, 3, 9)
    start = cell(2, "start")
    assert start.value == datetime.datetime(2026, 3, 9, 9, 15)
    assert start.number_format == "yyyy-mm-dd hh:mm:ss"
    assert cell(2, "utc_offset").value == "+01:00"
    assert cell(4, "start").value == datetime.datetime(2026, 7, 1, 9, 15)
    assert cell(4, "utc_offset").value == "+02:00"
    assert cell(2, "acd_talk_seconds").value == 9789.4
    talk = cell(2, "acd_talk_hms")
    assert talk.number_format == "[h]:mm:ss"
    ms = datetime.timedelta(milliseconds=1)
    assert talk.value == pytest.approx(datetime.timedelta(seconds=9789.4), abs=ms)
    logged = cell(2, "logged_in_hms").value
    assert logged == pytest.approx(datetime.timedelta(hours=27, minutes=3, seconds=9.5), abs=ms)
    assert cell(2, "make_busy_lunch_hms").value == datetime.timedelta(minutes=10)
    assert cell(2, "acd_calls").value == 3 and cell(3, "acd_calls").value == 1
    assert cell(5, "name").value is None and cell(5, "acd_talk_average_hms").value is None
    # The formula-looking name is text, and never a formula in the file.
    formula = cell(3, "name")
    assert (formula.value, formula.data_type) == (FORMULA_NAME, "s")
    assert formula.quotePrefix
    assert (cell(3, "team").value, cell(3, "team").data_type) == ("@SUM(1)", "s")
    assert cell(3, "acd_talk_seconds").value == -5
    assert "<f>" not in sheet_xml(data, 1) and "<f " not in sheet_xml(data, 1)
    # Widths: the names fit.
    assert agents.column_dimensions["B"].width >= len(FORMULA_NAME) or (
        agents.column_dimensions["B"].width == 40
    )
    assert agents.column_dimensions["E"].width >= len("2026-03-09 09:15:00")
    path_header = [c.value for c in paths[1]]
    assert path_header[:5] == ["id", "name", "day", "start", "utc_offset"]
    assert "waiting_hms" not in path_header
    assert [c.value for c in paths[2]][:2] == ["860", "Ligne Été"]
    covered = paths.cell(row=2, column=path_header.index("covered_hms") + 1)
    assert covered.value == datetime.timedelta(minutes=15)


def test_xlsx_in_utc() -> None:
    data = report_xlsx_bytes([("agent", rows()[:1])], names(), datetime.timezone.utc)
    sheet = openpyxl.load_workbook(io.BytesIO(data))["agents"]
    assert (sheet["E2"].value, sheet["F2"].value) == (
        datetime.datetime(2026, 3, 9, 8, 15),
        "+00:00",
    )


# --- mitelacd-report ---------------------------------------------------------------------------


def interval_row(kind: RowKind, ident: str, **figures: float) -> IntervalRow:
    values = {f.name: figures.get(f.name, 0) for f in FIGURES[kind]}
    reasons: dict[tuple[ReasonKind, int | None], float] = {}
    if kind == "agent":
        reasons = {("make_busy", 5): 600.0, ("make_busy", 12): 120.0}
    return IntervalRow(kind, ident, DAY, QUARTER, QUARTER - 900, values, reasons)


def history(path: Path) -> str:
    url = f"sqlite:///{path / 'history.db'}"
    store = open_store(url)
    try:
        store.migrate()
        store.write(
            "pbx",
            [
                interval_row(
                    "agent", "1002", acd_calls=2, acd_talk_seconds=3723.0, make_busy_seconds=720
                ),
                interval_row("agent", "1003", acd_calls=1, acd_talk_seconds=61.0),
                interval_row("path", "860", acd_calls=3, covered_seconds=900.0),
            ],
            [],
        )
    finally:
        store.close()
    return url


def names_file(path: Path) -> str:
    file = path / "names.toml"
    file.write_text(NAMES_TOML, encoding="utf-8")
    return str(file)


def run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    return reportcli.main(argv, stdout=out), out.getvalue()


def test_report_csv_with_names(tmp_path: Path, paris: None) -> None:
    url = history(tmp_path)
    base = ["--history", url, "--from", DAY, "--csv"]
    status, out = run([*base, "--names", names_file(tmp_path)])
    assert status == 0 and not out.startswith("\ufeff")
    hopper, formula = table(out)
    assert (hopper["name"], hopper["team"]) == ("Hélène Côté", "Früh")
    assert hopper["start"] == "2026-03-09T09:15:00+01:00"
    assert (hopper["acd_talk_seconds"], hopper["acd_talk_hms"]) == ("3723", "1:02:03")
    assert (hopper["make_busy_lunch_seconds"], hopper["make_busy_lunch_hms"]) == ("600", "0:10:00")
    assert hopper["make_busy_pause_cafe_hms"] == "0:02:00"
    assert formula["name"] == "'" + FORMULA_NAME
    status, out = run([*base, "--names", names_file(tmp_path), "--utc", "--excel"])
    assert status == 0 and out.startswith("\ufeff")
    (hopper, _) = table(out.removeprefix("\ufeff"))
    assert hopper["start"] == "2026-03-09T08:15:00+00:00"
    # Without a names file: empty names, reasons by code.
    status, out = run(base)
    (plain, _) = table(out)
    assert plain["name"] == "" and plain["make_busy_reason_5_seconds"] == "600"
    status, out = run(["--history", url, "--from", DAY, "--names", names_file(tmp_path)])
    assert status == 0 and json.loads(out)["agents"][0]["name"] == "Hélène Côté"


def test_report_xlsx(tmp_path: Path, paris: None) -> None:
    url = history(tmp_path)
    target = tmp_path / "report.xlsx"
    argv = ["--history", url, "--from", DAY, "--by", "agent,path", "--xlsx", str(target)]
    status, out = run([*argv, "--names", names_file(tmp_path)])
    assert (status, out) == (0, "")
    book = openpyxl.load_workbook(target)
    assert book.sheetnames == ["agents", "paths"]
    agents = book["agents"]
    assert [c.value for c in agents[2]][:6] == [
        "1002", "Hélène Côté", "Früh", datetime.datetime(2026, 3, 9),
        datetime.datetime(2026, 3, 9, 9, 15), "+01:00",
    ]  # fmt: skip
    assert agents["B3"].value == FORMULA_NAME and agents["B3"].data_type == "s"
    assert agents["I2"].value == datetime.timedelta(hours=1, minutes=2, seconds=3)
    assert book["paths"]["B2"].value == "Ligne Été"
    status, _ = run([*argv, "--utc"])
    assert status == 0
    assert openpyxl.load_workbook(target)["agents"]["E2"].value == datetime.datetime(
        2026, 3, 9, 8, 15
    )


def test_report_xlsx_failures_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = history(tmp_path)
    missing = tmp_path / "no" / "such" / "dir.xlsx"
    assert run(["--history", url, "--from", DAY, "--xlsx", str(missing)]) == (1, "")
    assert f"cannot write {missing}" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "openpyxl", None)  # not installed
    target = tmp_path / "r.xlsx"
    assert run(["--history", url, "--from", DAY, "--xlsx", str(target)]) == (1, "")
    assert "pip install mitelacd[xlsx]" in capsys.readouterr().err
    assert not target.exists()


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--excel"], "--excel goes with --csv"),
        (["--utc"], "--utc goes with --csv or --xlsx"),
        (["--by", "agent,path", "--csv"], "several kinds goes with --xlsx"),
        (["--by", "agent,queue", "--xlsx", "r.xlsx"], "invalid choice: 'queue'"),
        (["--csv", "--xlsx", "r.xlsx"], "not allowed with argument --csv"),
        (["--names", "/nonexistent/names.toml"], "--names: /nonexistent/names.toml"),
    ],
)
def test_report_spreadsheet_usage_errors_exit_64(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        run(["--history", "h.db", "--from", DAY, *argv])
    assert stopped.value.code == EXIT_USAGE
    assert words in capsys.readouterr().err


# --- the API, over a real socket ---------------------------------------------------------------


class Site:
    """The daemon's reports on 127.0.0.1, over a history with DAY in it; days cut in Paris."""

    def __init__(self, url: str) -> None:
        self.run = FiguresAndHistory(url, names=names(), tz=PARIS)
        self.floor, self.history, self.figures = self.run.floor, self.run.history, self.run.figures
        served = Served(
            self.floor, FloorDocuments(self.floor), reports=Reports(self.figures, self.history)
        )
        self.web = WebService("tcp:0:interface=127.0.0.1", served, reactor)

    async def start(self) -> str:
        await self.run.start()
        self.web.startService()
        assert self.web.port is not None
        return f"http://127.0.0.1:{self.web.port.getHost().port}"  # type: ignore[attr-defined]

    async def stop(self) -> None:
        await defer.maybeDeferred(self.web.stopService)
        await self.run.stop()


async def get(
    url: str, headers: dict[bytes | str, list[bytes | str]] | None = None
) -> tuple[int, Any, bytes]:
    response = await treq.get(url, headers=headers, persistent=False).addTimeout(30, reactor)
    body = await response.content()
    return response.code, response.headers, body


@pytest_twisted.ensureDeferred
async def test_the_api_serves_csv_xlsx_and_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made_in: list[threading.Thread] = []
    make = workbook.report_xlsx_bytes

    def spied(*args: Any) -> bytes:
        made_in.append(threading.current_thread())
        return make(*args)

    monkeypatch.setattr(workbook, "report_xlsx_bytes", spied)
    site = Site(history(tmp_path))
    base = await site.start()
    reports = f"{base}/api/v1/reports?from={DAY}&to={DAY}"
    try:
        code, headers, body = await get(reports + "&format=csv")
        assert code == 200
        assert headers.getRawHeaders(b"content-type") == [b"text/csv; charset=utf-8"]
        assert not body.startswith(b"\xef\xbb\xbf")
        hopper, formula = table(body.decode("utf-8"))
        assert (hopper["name"], hopper["team"]) == ("Hélène Côté", "Früh")
        # The daemon's zone, whatever this machine's: Paris, an hour ahead in March.
        assert hopper["start"] == "2026-03-09T09:15:00+01:00"
        assert hopper["acd_talk_hms"] == "1:02:03"
        assert hopper["make_busy_lunch_seconds"] == "600"
        assert formula["name"] == "'" + FORMULA_NAME

        code, _, body = await get(reports + "&tz=UTC&excel=1", {b"accept": [b"text/csv"]})
        assert code == 200 and body.startswith(b"\xef\xbb\xbf")
        (hopper, _) = table(body.decode("utf-8-sig"))
        assert hopper["start"] == "2026-03-09T08:15:00+00:00"

        code, headers, body = await get(reports + "&tz=Mars")
        assert code == 400
        assert headers.getRawHeaders(b"content-type")[0].startswith(b"application/json")
        error = json.loads(body)
        assert error["error"] == "bad_request" and error["detail"].startswith("tz must be")

        code, _, body = await get(reports)
        agents = json.loads(body)["agents"]
        assert [(a["id"], a["name"], a["team"]) for a in agents] == [
            ("1002", "Hélène Côté", "Früh"),
            ("1003", FORMULA_NAME, "@SUM(1)"),
        ]

        code, headers, body = await get(reports + "&by=agent,path&format=xlsx")
        assert code == 200
        assert headers.getRawHeaders(b"content-type") == [
            b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        ]
        assert headers.getRawHeaders(b"content-disposition") == [
            b'attachment; filename="mitelacd-agent-path-2026-03-09-2026-03-09.xlsx"'
        ]
        book = openpyxl.load_workbook(io.BytesIO(body))
        # Made away from the reactor's thread.
        assert len(made_in) == 1 and made_in[0] is not threading.main_thread()
        assert book.sheetnames == ["agents", "paths"]
        sheet = book["agents"]
        assert sheet.freeze_panes == "C2"
        assert (sheet["B2"].value, sheet["E2"].value, sheet["F2"].value) == (
            "Hélène Côté",
            datetime.datetime(2026, 3, 9, 9, 15),
            "+01:00",
        )
        assert (sheet["B3"].value, sheet["B3"].data_type) == (FORMULA_NAME, "s")

        # Names reloaded show at once.
        site.floor.setNames(parse_names('[agents]\n"1002" = "Grace Hopper"\n', "new.toml"))
        code, _, body = await get(reports + "&format=csv")
        assert table(body.decode())[0]["name"] == "Grace Hopper"

        # Without openpyxl: 501, saying what to install.
        monkeypatch.setitem(sys.modules, "openpyxl", None)
        code, _, body = await get(reports + "&format=xlsx")
        error = json.loads(body)
        assert code == 501 and error["error"] == "xlsx_unavailable"
        assert "pip install mitelacd[xlsx]" in error["detail"]
    finally:
        await site.stop()
