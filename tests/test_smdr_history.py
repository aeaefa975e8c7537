"""SMDR in the history: schema step 4, the writer, reports by path, the live figures.

Every store test runs on a SQLite file and on a database of the session's
PostgreSQL server (tests/conftest.py). SMDR lines are real standard records
(smdr-protocol.md §3.1) read by the real parser and counted by a real
:class:`~mitelacd.reports.smdrcalls.SmdrDay`; stored intervals are written as
the writer writes them. Expected figures are worked out by hand. Times are
UTC on 9 March 2026 (the days of tests/test_history.py).
"""

from __future__ import annotations

import csv
import datetime
import io
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_twisted
import sqlalchemy as sa
from test_history import (
    DAY,
    NEXT_DAY,
    UTC,
    at,
    flushed,
    row,
    service_for,
    started,
    stopped,
    until,
)
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import LogLevel

from mitelacd.floor.records import parse_record
from mitelacd.floor.smdr import SmdrLine
from mitelacd.floor.state import FloorState
from mitelacd.reports import cli
from mitelacd.reports.format import report_csv, report_json
from mitelacd.reports.live import FiguresService, combine_live
from mitelacd.reports.rows import (
    SMDR_COUNTS,
    SMDR_FIELDS,
    IntervalRow,
    SmdrIntervalRow,
    SmdrSums,
    smdr_sums,
)
from mitelacd.reports.smdrcalls import PROVISIONAL_FIGURES, PathInterval, SmdrSettings
from mitelacd.reports.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    TABLES,
    HistoryStore,
    open_store,
    smdr_fields,
)
from mitelacd.reports.workbook import report_xlsx_bytes
from mitelacd.reports.writer import (
    SPILL_FORMAT,
    describe,
    read_spill,
    row_from_json,
    row_to_json,
)
from mitelacd.testing import call_body, capture_log
from mitelacd.testing.history import FakeSmdr

#: A database nothing listens at.
UNREACHABLE = "postgresql://mitelacd@127.0.0.1:1/history"
PROVISIONAL = list(PROVISIONAL_FIGURES)


def smdr(
    path: str,
    hhmm: str,
    *,
    day_offset: int = 0,
    open: bool = False,
    provisional: bool = True,
    target: int = 20,
    tta: int = 0,
    **counts: int,
) -> SmdrIntervalRow:
    """A stored SMDR interval of ``path`` starting at ``hhmm``; counts not named are 0."""
    assert set(counts) <= set(SMDR_COUNTS), counts
    start = at(hhmm, day_offset)
    return SmdrIntervalRow(
        path=path,
        day=(datetime.date(2026, 3, 9) + datetime.timedelta(days=day_offset)).isoformat(),
        interval_start=start,
        hour_start=start - start % 3600,
        open=open,
        **{name: counts.get(name, 0) for name in SMDR_COUNTS},
        service_level_seconds=target,
        time_to_answer_seconds=tta,
        provisional=provisional,
    )


def interval(path: str, hhmm: str, **changes: Any) -> PathInterval:
    """A PathInterval as :class:`SmdrDay` hands it over (the ratios are not stored)."""
    start = at(hhmm)
    values: dict[str, Any] = dict(
        path=path, day=datetime.date(2026, 3, 9), start=start, end=start + 900, open=True,
        offered=2, answered=1, abandoned=1, short_abandoned=0, interflowed=0, requeued=0,
        unavailable=0, unclassified=0, answered_within_target=1, service_level_seconds=20,
        time_to_answer_seconds=4, service_level_percent=50.0,
        average_time_to_answer_seconds=4.0, provisional=PROVISIONAL_FIGURES,
    )  # fmt: skip
    values.update(changes)
    return PathInterval(**values)


def lay(width: int, columns: dict[int, str]) -> str:
    """A line of ``width`` blanks with each text put at its 1-based column."""
    line = [" "] * width
    for column, text in columns.items():
        line[column - 1 : column - 1 + len(text)] = text
    return "".join(line)


def record(
    start: str,
    calling: str,
    *,
    tta: str = "004",
    called: str = "1001",
    duration: str = "00:02:14",
    path: str = "860",
) -> str:
    """A 90-character standard record of a call to ``path`` on 9 March (smdr-protocol.md §3.1)."""
    answered = called != ""
    digits = f"P{path} 610 611 610" if answered else f"P{path} 610 611"
    return lay(
        90,
        {
            2: "03/09",
            8: start,
            15: duration,
            24: calling,
            30: tta if answered else "***",
            34: digits,
            62: called,
            86: "001",
        },
    )


@pytest.fixture
def store(history_url: str) -> Iterator[HistoryStore]:
    opened = open_store(history_url)
    opened.migrate()
    try:
        yield opened
    finally:
        opened.close()


def pick(rows: list[dict[str, Any]], *names: str) -> list[tuple[Any, ...]]:
    return [tuple(r[n] for n in names) for r in rows]


# --- schema ------------------------------------------------------------------------------------


def test_version_4_adds_the_smdr_tables(history_url: str) -> None:
    store = open_store(history_url)
    try:
        assert store.migrate(MIGRATIONS[:3]) == 3
        names = set(sa.inspect(store.engine).get_table_names())
        assert not names & {"smdr_lines", "smdr_path_intervals"}
        store.write("pbx", [row("path", "860", "08:00", acd_calls=3)], [])
        assert MIGRATIONS[3].version == 4
        assert store.migrate(MIGRATIONS[:4]) == 4
        inspector = sa.inspect(store.engine)
        lines = inspector.get_columns("smdr_lines")
        assert [c["name"] for c in lines] == ["line", "source", "received_at", "layout", "text"]
        assert [c["name"] for c in lines] == [c.name for c in TABLES["smdr_lines"].columns]
        assert all(not c["nullable"] for c in lines)
        intervals = inspector.get_columns("smdr_path_intervals")
        assert [c["name"] for c in intervals] == [
            "source", "day", "interval_start", "hour_start", "path", "open", *SMDR_COUNTS,
            "service_level_seconds", "time_to_answer_seconds", "provisional",
        ]  # fmt: skip
        assert all(not c["nullable"] for c in intervals)
        indexes = {
            i["name"]: (i["column_names"], bool(i["unique"]))
            for i in inspector.get_indexes("smdr_path_intervals")
        }
        assert indexes["smdr_path_intervals_key"] == (["source", "interval_start", "path"], True)
        line_indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes("smdr_lines")}
        assert line_indexes["smdr_lines_source_received_at"] == ["source", "received_at"]
        with store.engine.connect() as connection:
            applied = connection.execute(
                sa.text("SELECT description FROM mitelacd_schema WHERE version = 4")
            ).scalar()
        assert applied == "smdr_lines and smdr_path_intervals: the SMDR stream"
        # What was there is still there, and reads as a path SMDR said nothing of.
        (old,) = store.report("path", DAY, DAY, "15m")
        assert (old["acd_calls"], old["offered"], old["answered_difference"]) == (3, None, None)
        assert (old["open"], old["provisional"], old["provisional_figures"]) == (False, False, [])
        store.write("pbx", [], [], smdr_intervals=[smdr("860", "08:00", offered=4, answered=3)])
        (both,) = store.report("path", DAY, DAY, "15m")
        assert (both["offered"], both["answered_difference"]) == (4, 0)
        assert store.migrate(MIGRATIONS[:4]) == 4  # done once
        assert store.migrate() == SCHEMA_VERSION
    finally:
        store.close()


# --- the store ---------------------------------------------------------------------------------


def test_an_interval_written_again_replaces_the_one_kept(store: HistoryStore) -> None:
    first = smdr("860", "08:00", open=True, offered=1, abandoned=1)
    store.write("pbx", [], [], smdr_intervals=[first, smdr("861", "08:00", offered=1)])
    assert store.smdr_intervals("pbx", DAY, DAY) == [first, smdr("861", "08:00", offered=1)]
    # Revised while open, then closed: each write replaces the row.
    revised = smdr("860", "08:00", open=True, offered=2, answered=1, abandoned=1, tta=9)
    closed = smdr("860", "08:00", offered=3, answered=2, abandoned=1, tta=14, provisional=False)
    store.write("pbx", [], [], smdr_intervals=[revised])
    assert store.smdr_intervals("pbx", DAY, DAY)[0] == revised
    # Twice in one write: the last wins.
    store.write("pbx", [], [], smdr_intervals=[revised, closed])
    store.write("pbx", [], [], smdr_intervals=[closed])
    assert store.smdr_intervals("pbx", DAY, DAY) == [closed, smdr("861", "08:00", offered=1)]
    assert store.count("smdr_path_intervals") == 2
    # Another source's interval of the same path is its own row.
    store.write("b", [], [], smdr_intervals=[smdr("860", "08:00", offered=7)])
    assert store.count("smdr_path_intervals") == 3
    assert store.smdr_intervals("b", DAY, DAY) == [smdr("860", "08:00", offered=7)]
    (summed,) = [r for r in store.report("path", DAY, DAY, "15m") if r["id"] == "860"]
    assert summed["offered"] == 10


def test_smdr_lines_since_a_time(store: HistoryStore) -> None:
    text = record("08:16", "T012")
    lines = [
        SmdrLine(at("08:19") + 0.5, text, "standard"),
        SmdrLine(at("08:20"), "Événement\x7f", "unreadable"),
        # The same time as the one before: kept in the order they came.
        SmdrLine(at("08:20"), record("08:17", "T013", called=""), "standard"),
        SmdrLine(at("08:40"), record("08:30", "T014"), "standard"),
    ]
    store.write("pbx", [], [], smdr_lines=lines[:3])
    store.write("pbx", [], [], smdr_lines=lines[3:])
    store.write("other", [], [], smdr_lines=[SmdrLine(at("08:21"), "x", "unreadable")])
    assert store.smdr_lines("pbx", 0) == lines
    assert store.smdr_lines("pbx", at("08:20")) == lines[1:]
    assert store.smdr_lines("pbx", at("08:20") + 0.001) == lines[3:]
    assert store.smdr_lines("pbx", at("09:00")) == []
    assert store.smdr_lines("other", 0) == [SmdrLine(at("08:21"), "x", "unreadable")]
    assert store.count("smdr_lines") == 5 and store.count("smdr_lines", "pbx") == 4


def test_prune_deletes_the_old_smdr_rows(store: HistoryStore) -> None:
    store.write(
        "pbx",
        [],
        [],
        smdr_lines=[
            SmdrLine(at("23:59"), "old", "unreadable"),
            SmdrLine(at("00:00", 1), "kept", "unreadable"),
        ],
        smdr_intervals=[
            smdr("860", "23:45", offered=1),
            smdr("860", "00:00", day_offset=1, offered=2),
        ],
    )
    assert store.prune(NEXT_DAY, tz=UTC) == 2
    assert [line.text for line in store.smdr_lines("pbx", 0)] == ["kept"]
    assert [r.offered for r in store.smdr_intervals(None, DAY, NEXT_DAY)] == [2]


# --- reports by path ---------------------------------------------------------------------------


def stored(store: HistoryStore) -> None:
    store.write(
        "pbx",
        [
            row("path", "860", "08:00", acd_calls=3),
            row("path", "860", "08:15", acd_calls=2),
            row("path", "862", "08:00", acd_calls=5),
            row("path", "863", "08:30", acd_calls=1),
        ],
        [],
        smdr_intervals=[
            smdr("860", "08:00", offered=4, answered=2, abandoned=1, short_abandoned=1,
                 answered_within_target=1, tta=30),
            smdr("860", "08:15", open=True, offered=2, answered=2, answered_within_target=2,
                 tta=10),
            smdr("860", "09:00", provisional=False, target=30, offered=1, unclassified=1),
            # A path SMDR saw and the ACD stream did not: offered, all short abandoned.
            smdr("861", "08:00", offered=1, short_abandoned=1),
            smdr("863", "08:15", provisional=False, offered=1, answered=1,
                 answered_within_target=1, tta=5),
            smdr("860", "08:00", day_offset=1, offered=9, answered=9),
        ],
    )  # fmt: skip


NAMES = (
    "start", "id", "acd_calls", "offered", "answered", "abandoned", "short_abandoned",
    "unclassified", "answered_within_target", "time_to_answer_seconds",
    "service_level_seconds", "service_level_percent", "average_time_to_answer_seconds",
    "answered_difference", "open", "provisional",
)  # fmt: skip


def test_reports_by_path_sum_the_smdr_intervals_then_work_out_the_ratios(
    store: HistoryStore,
) -> None:
    stored(store)
    quarters = store.report("path", DAY, DAY, "15m")
    assert pick(quarters, *NAMES) == [
        (at("08:00"), "860", 3, 4, 2, 1, 1, 0, 1, 30, 20, 33.333, 15.0, -1, False, True),
        (at("08:00"), "861", 0, 1, 0, 0, 1, 0, 0, 0, 20, None, None, 0, False, True),
        (at("08:00"), "862", 5, *[None] * 11, False, False),
        (at("08:15"), "860", 2, 2, 2, 0, 0, 0, 2, 10, 20, 100.0, 5.0, 0, True, True),
        (at("08:15"), "863", 0, 1, 1, 0, 0, 0, 1, 5, 20, 100.0, 5.0, 1, False, False),
        (at("08:30"), "863", 1, *[None] * 11, False, False),
        (at("09:00"), "860", 0, 1, 0, 0, 0, 1, 0, 0, 30, 0.0, None, 0, False, False),
    ]
    assert [r["provisional_figures"] for r in quarters] == [
        PROVISIONAL, PROVISIONAL, [], PROVISIONAL, [], [], [],
    ]  # fmt: skip
    # A row made for SMDR alone has the ACD figures of none.
    smdr_only = quarters[1]
    assert (smdr_only["acd_talk_seconds"], smdr_only["reports"]) == (0.0, 0)
    assert (smdr_only["average_handle_seconds"], smdr_only["mean_waiting"]) == (None, None)

    hours = store.report("path", DAY, DAY, "1h")
    assert pick(hours, *NAMES) == [
        # 08:00 and 08:15 of 860: 3 of 5 served within the target, 40 s over 4 answered.
        (at("08:00"), "860", 5, 6, 4, 1, 1, 0, 3, 40, 20, 60.0, 10.0, -1, True, True),
        (at("08:00"), "861", 0, 1, 0, 0, 1, 0, 0, 0, 20, None, None, 0, False, True),
        (at("08:00"), "862", 5, *[None] * 11, False, False),
        (at("08:00"), "863", 1, 1, 1, 0, 0, 0, 1, 5, 20, 100.0, 5.0, 0, False, False),
        (at("09:00"), "860", 0, 1, 0, 0, 0, 1, 0, 0, 30, 0.0, None, 0, False, False),
    ]
    days = store.report("path", DAY, DAY, "day")
    assert pick(days, *NAMES) == [
        # The target is the largest of the day's; a day starts at either stream's first.
        (at("08:00"), "860", 5, 7, 4, 1, 1, 1, 3, 40, 30, 50.0, 10.0, -1, True, True),
        (at("08:00"), "861", 0, 1, 0, 0, 1, 0, 0, 0, 20, None, None, 0, False, True),
        (at("08:00"), "862", 5, *[None] * 11, False, False),
        (at("08:15"), "863", 1, 1, 1, 0, 0, 0, 1, 5, 20, 100.0, 5.0, 0, False, False),
    ]
    both = store.report("path", DAY, NEXT_DAY, "day")
    assert pick(both, "day", "id", "offered", "answered_difference")[-1] == (NEXT_DAY, "860", 9, 9)
    only = store.report("path", DAY, DAY, "15m", ids=["861", "862"])
    assert pick(only, "id", "offered") == [("861", 1), ("862", None)]
    # Other kinds have none of it.
    store.write("pbx", [row("agent", "1001", "08:00", acd_calls=1)], [])
    (agent,) = store.report("agent", DAY, DAY)
    assert not set(SMDR_FIELDS) & set(agent)


def test_several_sources_sum_as_the_acd_figures_do(store: HistoryStore) -> None:
    stored(store)
    store.write(
        "b",
        [row("path", "860", "08:00", acd_calls=1)],
        [],
        smdr_intervals=[smdr("860", "08:00", open=True, target=15, offered=2, answered=1,
                             answered_within_target=1, tta=4)],
    )  # fmt: skip
    every = store.report("path", DAY, DAY, "15m")[0]
    assert pick([every], *NAMES) == [
        (at("08:00"), "860", 4, 6, 3, 1, 1, 0, 2, 34, 20, 40.0, 11.333, -1, True, True)
    ]
    (b,) = store.report("path", DAY, DAY, "15m", source="b")
    assert pick([b], *NAMES) == [
        (at("08:00"), "860", 1, 2, 1, 0, 0, 0, 1, 4, 15, 50.0, 4.0, 0, True, True)
    ]
    pbx = store.report("path", DAY, DAY, "day", source="pbx")
    assert pick(pbx, "id", "offered") == [("860", 7), ("861", 1), ("862", None), ("863", 1)]


def test_live_intervals_replace_the_stored_ones_of_their_source(store: HistoryStore) -> None:
    stored(store)
    store.write("b", [], [], smdr_intervals=[smdr("860", "08:15", offered=5)])
    live = [
        # Revised: 08:15 now has a third call, abandoned.
        smdr("860", "08:15", open=True, offered=3, answered=2, abandoned=1,
             answered_within_target=2, tta=10),
        # New: nothing stored of it yet.
        smdr("860", "08:30", open=True, offered=1, answered=1, answered_within_target=1, tta=3),
        # Of a day not asked for.
        smdr("860", "08:30", day_offset=1, offered=50),
    ]  # fmt: skip
    quarters = store.report("path", DAY, DAY, "15m", source="pbx", live_smdr=live)
    assert pick([r for r in quarters if r["id"] == "860"], "start", "offered", "abandoned") == [
        (at("08:00"), 4, 1),
        (at("08:15"), 3, 1),
        (at("08:30"), 1, 0),
        (at("09:00"), 1, 0),
    ]
    (hour,) = [
        r
        for r in store.report("path", DAY, DAY, "1h", source="pbx", live_smdr=live)
        if r["id"] == "860" and r["start"] == at("08:00")
    ]
    # 08:00 stored (outside the live span: summed by the database), the rest live.
    assert pick([hour], "offered", "answered", "answered_within_target", "acd_calls") == [
        (8, 5, 4, 5)
    ]
    assert hour["service_level_percent"] == round(4 / 7 * 100, 3)
    (day,) = [
        r
        for r in store.report("path", DAY, DAY, "day", source="pbx", live_smdr=live)
        if r["id"] == "860"
    ]
    assert (day["offered"], day["answered_difference"]) == (9, 0)
    with pytest.raises(ValueError, match="name it"):
        store.report("path", DAY, DAY, "15m", live_smdr=live)


# --- the sums, and what shows them -------------------------------------------------------------


def test_one_sum_for_intervals_in_memory_and_rows_kept() -> None:
    parts = [interval("860", "08:00"), interval("860", "08:15", open=False, provisional=())]
    kept = [SmdrIntervalRow.of(p, at("08:00")) for p in parts]
    assert kept[1].provisional is False and kept[0].provisional is True
    assert smdr_sums(parts) == smdr_sums(kept) == SmdrSums(
        offered=4, answered=2, abandoned=2, answered_within_target=2,
        time_to_answer_seconds=8, service_level_seconds=20, open=True, provisional=True,
    )  # fmt: skip
    assert smdr_sums([]) is None
    fields = smdr_fields(smdr_sums(parts), 5)
    assert list(fields) == [*SMDR_FIELDS, "provisional_figures"]
    assert (fields["service_level_percent"], fields["average_time_to_answer_seconds"]) == (
        50.0,
        4.0,
    )
    assert fields["answered_difference"] == -3
    none = smdr_fields(None, 5)
    assert none == {
        **dict.fromkeys(SMDR_FIELDS),
        "open": False,
        "provisional": False,
        "provisional_figures": [],
    }


def test_csv_xlsx_and_json_have_the_smdr_fields(store: HistoryStore) -> None:
    stored(store)
    rows = store.report("path", DAY, DAY, "15m")
    text = report_csv(rows, "path", tz=UTC)
    header = text.split("\r\n")[0].split(",")
    at_smdr = header.index("offered")
    assert header[at_smdr:] == [
        "offered", "answered", "abandoned", "short_abandoned", "interflowed", "requeued",
        "unavailable", "unclassified", "answered_within_target", "time_to_answer_seconds",
        "time_to_answer_hms", "service_level_seconds", "service_level_hms",
        "service_level_percent", "average_time_to_answer_seconds",
        "average_time_to_answer_hms", "answered_difference", "open", "provisional",
    ]  # fmt: skip
    table = list(csv.DictReader(io.StringIO(text)))
    first, _, without = table[:3]
    assert (first["id"], first["service_level_percent"], first["average_time_to_answer_hms"]) == (
        "860",
        "33.333",
        "0:00:15",
    )
    assert (first["answered_difference"], first["open"], first["provisional"]) == (
        "-1",
        "false",
        "true",
    )
    assert table[3]["open"] == "true"
    # SMDR said nothing of 862: empty cells, and neither open nor provisional.
    assert without["id"] == "862"
    assert [without[n] for n in ("offered", "service_level_percent", "answered_difference")] == [
        "",
        "",
        "",
    ]
    assert (without["open"], without["provisional"]) == ("false", "false")

    doc = json.loads(report_json(rows, DAY, DAY, "path", "15m"))
    assert doc["paths"][0]["provisional_figures"] == PROVISIONAL
    assert doc["paths"][2]["offered"] is None

    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(report_xlsx_bytes([("path", rows)], tz=UTC)))
    sheet = book["paths"]
    names = [c.value for c in sheet[1]]
    assert "provisional_figures" not in names
    cells = {name: sheet.cell(row=2, column=n + 1).value for n, name in enumerate(names)}
    assert (cells["open"], cells["provisional"], cells["offered"]) == (False, True, 4)
    empty = {name: sheet.cell(row=4, column=n + 1).value for n, name in enumerate(names)}
    assert (empty["id"], empty["offered"], empty["open"]) == ("862", None, False)


def test_mitelacd_report_by_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'history.db'}"
    store = open_store(url)
    try:
        store.migrate()
        stored(store)
    finally:
        store.close()
    assert cli.main(["--history", url, "--from", DAY, "--by", "path", "--interval", "1h"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert pick(doc["paths"], "id", "offered", "service_level_percent")[:2] == [
        ("860", 6, 60.0),
        ("861", 1, None),
    ]
    assert doc["paths"][0]["provisional_figures"] == PROVISIONAL
    out = io.StringIO()
    assert cli.main(["--history", url, "--from", DAY, "--by", "path", "--csv"], stdout=out) == 0
    table = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [(r["id"], r["offered"], r["open"]) for r in table] == [
        ("860", "7", "true"),
        ("861", "1", "false"),
        ("862", "", "false"),
        ("863", "1", "false"),
    ]


# --- the writer --------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_add_smdr_writes_lines_and_replaces_intervals(history_url: str) -> None:
    clock = Clock()
    # Half an hour off UTC: the interval's hour is the local one.
    india = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    service = service_for(history_url, clock, tz=india)
    await started(service, clock)
    try:
        lines = [SmdrLine(at("08:19"), record("08:16", "T012"), "standard")]
        service.add_smdr(lines, [interval("860", "08:15")])
        assert service.backlog == 2
        await flushed(service, clock)
        service.add_smdr(
            [SmdrLine(at("08:31"), record("08:17", "T013", called=""), "standard")],
            [interval("860", "08:15", offered=3, abandoned=2), interval("861", "08:15")],
        )
        await flushed(service, clock)
        assert service.health()["written_rows"] == 5 and service.health()["backlog"] == 0
        assert service.transactions == 2
        kept = await service.query(lambda s: s.smdr_intervals("pbx", DAY, DAY))
        # 08:15 UTC is 13:45 in India: its hour started at 13:00 there, 07:30 UTC.
        assert [(r.path, r.offered, r.abandoned, r.hour_start) for r in kept] == [
            ("860", 3, 2, at("07:30")),
            ("861", 2, 1, at("07:30")),
        ]
        read = await service.query(lambda s: s.smdr_lines("pbx", at("08:00")))
        assert [line.received_at for line in read] == [at("08:19"), at("08:31")]
    finally:
        await stopped(service)


@pytest_twisted.ensureDeferred
async def test_smdr_rows_are_bounded_spilled_at_stop_and_written_at_the_next_start(
    history_url: str, tmp_path: Path
) -> None:
    spill = tmp_path / "mitel_data.json.history-spill.jsonl"
    clock = Clock()
    first = service_for(UNREACHABLE, clock, spill_path=str(spill), max_backlog=4)
    lines = [SmdrLine(at("08:19") + n, record("08:16", f"T01{n}"), "standard") for n in range(3)]
    revised = interval("860", "08:15", open=False, provisional=(), offered=3)
    with capture_log("mitelacd.reports.writer") as logged:
        first.startService()
        clock.advance(0)
        await until(lambda: first.write_failures == 1, what="the first open failed")
        first.add_smdr(lines, [interval("860", "08:15")])
        first.add([row("path", "860", "08:15", acd_calls=2)], [])
        # Over the bound: the oldest line went, counted and said.
        assert (first.backlog, first.dropped_rows) == (4, 1)
        first.add_smdr([], [revised])
        assert (first.backlog, first.dropped_rows) == (4, 2)
        await stopped(first)
    assert any("dropping the oldest" in line for line in logged.lines(LogLevel.warn))
    assert (first.dropped_rows, first.spilled_rows) == (2, 4)
    with open(spill) as saved:
        head = json.loads(saved.readline())
    assert (head["format"], head["version"], head["rows"]) == (SPILL_FORMAT, 2, 4)
    spilled = [r for b in read_spill(str(spill)) for r in b.rows]
    assert spilled[:1] == lines[2:]
    assert isinstance(spilled[-1], SmdrIntervalRow) and spilled[-1].offered == 3

    clock = Clock()
    second = service_for(history_url, clock, spill_path=str(spill))
    await started(second, clock)
    try:
        await flushed(second, clock)
        assert not spill.exists() and second.written_rows == 4
        kept = await second.query(lambda s: s.smdr_intervals("pbx", DAY, DAY))
        # Written in order: the revision replaced the first count.
        assert [(r.offered, r.open, r.provisional) for r in kept] == [(3, False, False)]
        read = await second.query(lambda s: s.smdr_lines("pbx", 0))
        assert read == lines[2:]
        (path,) = await second.query(lambda s: s.report("path", DAY, DAY, "15m"))
        assert (path["acd_calls"], path["offered"], path["answered_difference"]) == (2, 3, -1)
    finally:
        await stopped(second)


def test_smdr_rows_in_the_spill_file_and_the_log() -> None:
    line = SmdrLine(at("08:19") + 0.25, "Événement \x00 ok", "unreadable")
    kept = smdr("860", "08:15", open=True, offered=2, answered=1, tta=7)
    for original in (line, kept):
        again = row_from_json(json.loads(json.dumps(row_to_json(original))))
        assert again == original and type(again) is type(original)
    assert describe(line).startswith("the SMDR line received at 2026-03-09T08:19:00.250Z")
    assert describe(kept) == (
        "the SMDR figures of path '860' in the interval from 2026-03-09T08:15:00.000Z"
        " (day 2026-03-09)"
    )


@pytest_twisted.ensureDeferred
async def test_a_second_writer_lets_smdr_rows_go_then_writes_its_own_after_taking_over(
    history_url: str,
) -> None:
    clock1, clock2 = Clock(), Clock()
    clock2.advance(at("08:20"))
    first = service_for(history_url, clock1)
    second = service_for(history_url, clock2)
    seen = SmdrLine(at("08:19"), record("08:16", "T012"), "standard")
    await started(first, clock1)
    with capture_log("mitelacd.reports.writer"):
        second.startService()
        clock2.advance(0)
        await until(lambda: second.source_taken is not None and second._busy is None)
        # Both daemons read the same stream: only the first writes it.
        second.add_smdr([seen], [interval("860", "08:15")])
        assert (second.skipped_rows, second.backlog) == (2, 0)
        first.add_smdr([seen], [interval("860", "08:15")])
        await flushed(first, clock1)
        await stopped(first)
        clock2.advance(second.lock_retry_delay)  # taken over at 08:20:05
        await until(lambda: second.ok, what="the source taken over")
        later = SmdrLine(at("08:21"), record("08:20", "T013", called=""), "standard")
        # The line received before the takeover is the first's; the interval replaces its.
        second.add_smdr([seen, later], [interval("860", "08:15", offered=3, abandoned=2)])
        assert second.skipped_rows == 3
        await flushed(second, clock2)
        await stopped(second)
    store = open_store(history_url)
    try:
        assert store.smdr_lines("pbx", 0) == [seen, later]
        assert [(r.offered, r.abandoned) for r in store.smdr_intervals("pbx", DAY, DAY)] == [(3, 2)]
    finally:
        store.close()


# --- the live figures --------------------------------------------------------------------------


def fed(fake: FakeSmdr) -> FakeSmdr:
    """Calls of 860 at 08:16 (answered in 4 s), 08:17 (abandoned after 41 s) and 08:31
    (answered in 25 s, over the target), and of 861 at 08:20 (answered in 3 s)."""
    fake.feed(record("08:16", "T012"), at("08:19"))
    fake.feed(record("08:17", "T013", called="", duration="00:00:41"), at("08:18"))
    fake.feed(record("08:20", "T014", path="861", tta="003"), at("08:24"))
    fake.feed(record("08:31", "T015", tta="025"), at("08:35"))
    return fake


async def live_figures(history_url: str, now: float) -> FiguresService:
    """The day's figures at ``now`` (a clock of their own), with a history writer that
    writes as the daemon's does (on the reactor's clock)."""
    floor_clock = Clock()
    floor_clock.advance(now)
    history = service_for(history_url, cast(Clock, reactor), flush_interval=0.05)
    history.startService()
    await until(lambda: history.ok and history._busy is None, what="the store opened")
    figures = FiguresService(FloorState(floor_clock), floor_clock, tz=UTC, history=history)
    figures.startService()
    await figures.seeded
    return figures


_sequence = itertools.count()


def answer(figures: FiguresService, path: str = "860", agent: str = "1001") -> None:
    """One ACD call of ``path`` answered by ``agent``, now."""
    for code, tail in (("A", ""), ("G", f"01{path}")):
        body = call_body(next(_sequence) % 100, code, "2001", agent, tail)
        figures.floor.recordReceived(parse_record(body.encode()))


@pytest_twisted.ensureDeferred
async def test_reports_put_the_intervals_in_memory_in_place_of_the_stored_ones(
    history_url: str,
) -> None:
    figures = await live_figures(history_url, at("08:40"))
    history = figures.history
    assert history is not None
    try:
        day = datetime.date(2026, 3, 9)
        await history.query(
            lambda s: s.write(
                "pbx",
                [row("path", "860", "08:15", acd_calls=1)],
                [],
                smdr_intervals=[
                    smdr("860", "08:00", offered=2, answered=2, answered_within_target=2, tta=6),
                    # What an earlier write kept of 08:15: one call, abandoned.
                    smdr("860", "08:15", open=True, offered=1, abandoned=1),
                ],
            )
        )
        answer(figures)  # at 08:40: the interval under way, from memory
        before = await Deferred.fromCoroutine(figures.report(day, day, "path", "15m"))
        assert pick(before, "start", "id", "acd_calls", "offered", "answered_difference") == [
            (at("08:00"), "860", 0, 2, 2),
            (at("08:15"), "860", 1, 1, -1),
            (at("08:30"), "860", 1, None, None),
        ]
        figures.smdr = fed(FakeSmdr(tz=UTC))
        quarters = await Deferred.fromCoroutine(figures.report(day, day, "path", "15m"))
        assert pick(quarters, "start", "id", "acd_calls", "offered", "answered", "abandoned",
                    "service_level_percent", "answered_difference", "open") == [
            (at("08:00"), "860", 0, 2, 2, 0, 100.0, 2, False),
            (at("08:15"), "860", 1, 2, 1, 1, 50.0, 0, True),
            (at("08:15"), "861", 0, 1, 1, 0, 100.0, 1, True),
            (at("08:30"), "860", 1, 1, 1, 0, 0.0, 0, True),
        ]  # fmt: skip
        (whole,) = [
            r
            for r in await Deferred.fromCoroutine(figures.report(day, day, "path", "day"))
            if r["id"] == "860"
        ]
        assert pick([whole], "acd_calls", "offered", "answered", "time_to_answer_seconds") == [
            (2, 5, 4, 35)
        ]
        assert (whole["average_time_to_answer_seconds"], whole["answered_difference"]) == (
            8.75,
            2,
        )
        assert whole["provisional_figures"] == PROVISIONAL
        # Nothing of it was written: the stored row is as it was.
        kept = await history.query(lambda s: s.smdr_intervals("pbx", DAY, DAY))
        assert [(r.interval_start, r.offered) for r in kept] == [(at("08:00"), 2), (at("08:15"), 1)]
    finally:
        figures.stopService()
        await stopped(history)


@pytest_twisted.ensureDeferred
async def test_todays_paths_have_the_smdr_figures(history_url: str) -> None:
    figures = await live_figures(history_url, at("08:40"))
    history = figures.history
    assert history is not None
    try:
        answer(figures)
        answer(figures, "862", agent="1002")
        plain = figures.today("path")["paths"]
        assert [p["id"] for p in plain] == ["860", "862"]
        for path in plain:
            assert {n: path[n] for n in ("offered", "answered_difference", "open")} == {
                "offered": None,
                "answered_difference": None,
                "open": False,
            }
            assert (path["provisional"], path["provisional_figures"]) == (False, [])

        fake = fed(FakeSmdr(tz=UTC, settings=SmdrSettings(confirmed=True)))
        # Yesterday's call is not today's.
        fake.feed(record("23:50", "T099").replace("03/09", "03/08"), at("00:10"))
        figures.smdr = fake
        paths = {p["id"]: p for p in figures.today("path")["paths"]}
        assert list(paths) == ["860", "861", "862"]
        assert pick(list(paths.values()), "acd_calls", "offered", "answered", "abandoned",
                    "service_level_percent", "average_time_to_answer_seconds",
                    "answered_difference", "open", "provisional") == [
            (1, 3, 2, 1, round(1 / 3 * 100, 3), 14.5, 1, True, False),
            (0, 1, 1, 0, 100.0, 3.0, 1, True, False),
            (1, None, None, None, None, None, None, False, False),
        ]  # fmt: skip
        # A path only SMDR has seen: the ACD figures of none, and its name.
        only = paths["861"]
        assert (only["acd_talk_seconds"], only["average_handle_seconds"]) == (0.0, None)
        assert "name" in only and only["max_waiting_at"] is None
        assert only["provisional_figures"] == []

        current = {p["id"]: p for p in figures.today("path", interval=True)["paths"]}
        assert list(current) == ["860", "862"]
        assert (current["860"]["offered"], current["860"]["answered"]) == (1, 1)
        assert current["860"]["service_level_percent"] == 0.0
        assert current["862"]["offered"] is None
    finally:
        figures.stopService()
        await stopped(history)


def test_a_path_row_made_for_the_interval_under_way_has_no_smdr() -> None:
    day = datetime.date(2026, 3, 9)
    with_smdr = {
        "id": "860", "day": DAY, "start": at("08:00"), "acd_calls": 1,
        **smdr_fields(SmdrSums(offered=3, answered=3), 1),
    }  # fmt: skip
    live = [
        IntervalRow("path", "860", DAY, at("08:15"), at("08:00"), {"acd_calls": 1}),
        IntervalRow("path", "861", DAY, at("08:15"), at("08:00"), {"acd_calls": 2}),
    ]
    rows = combine_live([with_smdr], live, "path", "day", day, day)
    assert pick(rows, "id", "acd_calls", "offered", "answered_difference", "open") == [
        ("860", 2, 3, 1, False),
        ("861", 2, None, None, False),
    ]
    assert rows[0]["start"] == at("08:00")
