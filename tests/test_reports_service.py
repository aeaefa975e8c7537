"""The day's figures in the daemon: a restart goes on from the history, and reports are asked right."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.web.server import Request
from twisted.web.test.requesthelper import DummyRequest

from mitelacd.floor.state import FloorState
from mitelacd.reports.live import FiguresService, combine_live
from mitelacd.reports.rows import IntervalRow
from mitelacd.reports.writer import HistoryService
from mitelacd.testing.history import FiguresAndHistory
from mitelacd.web.reports import ReportError, Reports, report_query

CLOCK = cast(IReactorTime, reactor)


async def _stopped(history: HistoryService) -> None:
    await history.stopService().addTimeout(30, reactor)


@pytest_twisted.ensureDeferred
async def test_a_restart_goes_on_from_the_days_figures_kept(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/history.db"
    first = FiguresAndHistory(url)
    await first.start()
    first.events("A G01860 J01 G01861 J01")
    first.events("G01860 J01", agent="1002")
    assert first.figures.today("agent")["agents"][0]["acd_calls"] == 2
    await first.stop()

    again = FiguresAndHistory(url)
    await again.start()
    try:
        # Before any event of this run, the day's calls are those kept.
        before = {a["id"]: a["acd_calls"] for a in again.figures.today("agent")["agents"]}
        assert before == {"1001": 2, "1002": 1}
        again.events("G01860 J01")
        after = {a["id"]: a for a in again.figures.today("agent")["agents"]}
        assert after["1001"]["acd_calls"] == 3
        paths = {p["id"]: p["acd_calls"] for p in again.figures.today("path")["paths"]}
        assert paths == {"860": 3, "861": 1}
        # The report: what is kept plus the interval under way, counted once.
        today = again.figures.figures.day
        assert today is not None
        rows = await Deferred.fromCoroutine(again.figures.report(today, today, "agent", "day"))
        assert {r["id"]: r["acd_calls"] for r in rows} == {"1001": 3, "1002": 1}
        rows = await Deferred.fromCoroutine(again.figures.report(today, today, "path", "15m"))
        assert sum(r["acd_calls"] for r in rows if r["id"] == "860") == 3
    finally:
        await again.stop()


def test_combining_the_interval_under_way() -> None:
    day = datetime.date(2024, 3, 11)
    stored = [
        {
            "id": "1001",
            "day": "2024-03-11",
            "start": 100,
            "acd_calls": 2,
            "acd_talk_seconds": 100.0,
            "make_busy_by_reason": [{"reason": 3, "seconds": 10.0}],
            "dnd_by_reason": [],
        }
    ]
    live = [
        IntervalRow(
            "agent",
            "1001",
            "2024-03-11",
            1000,
            900,
            {"acd_calls": 1, "acd_talk_seconds": 50.0},
            {("make_busy", 3): 5.0, ("make_busy", None): 1.0},
        ),
        IntervalRow("agent", "1002", "2024-03-12", 90000, 90000, {"acd_calls": 4}),
    ]
    rows = combine_live(stored, live, "agent", "day", day, day)
    assert len(rows) == 1
    row = rows[0]
    assert (row["acd_calls"], row["acd_talk_seconds"], row["start"]) == (3, 150.0, 100)
    assert row["acd_talk_average_seconds"] == 50.0
    assert row["make_busy_by_reason"] == [
        {"reason": 3, "seconds": 15.0},
        {"reason": None, "seconds": 1.0},
    ]


def test_the_interval_under_way_joins_the_sums_before_the_ratios() -> None:
    day = datetime.date(2024, 3, 11)
    stored = [
        {"id": "1001", "day": "2024-03-11", "start": 100, "acd_calls": 3,
         "acd_talk_seconds": 200.0, "hold_seconds": 20.0, "wrap_up_seconds": 50.0,
         "logged_in_seconds": 900.0, "make_busy_seconds": 300.0, "average_handle_seconds": 90.0,
         "occupancy_percent": 45.0, "dnd_by_reason": [], "make_busy_by_reason": []},
    ]  # fmt: skip
    live = [
        IntervalRow(
            "agent",
            "1001",
            "2024-03-11",
            1000,
            900,
            {"acd_calls": 1, "acd_talk_seconds": 30.0, "logged_in_seconds": 100.0},
        ),
        IntervalRow("path", "860", "2024-03-11", 1000, 900, {"wrap_up_seconds": 40.0}),
    ]
    (row,) = combine_live(stored, live, "agent", "day", day, day)
    # (200 + 20 + 50 + 30) / (3 + 1); (that) / (900 + 100 - 300) x 100
    assert row["average_handle_seconds"] == 75.0
    assert row["occupancy_percent"] == round(300 / 700 * 100, 3)
    # A path seen only in the interval under way: wrap-up, but no call yet.
    (path,) = combine_live([], live, "path", "day", day, day)
    assert (path["wrap_up_seconds"], path["average_handle_seconds"]) == (40.0, None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"from": "2024-13-01"}, "from must be a date"),
        ({"from": "2024-03-11", "to": "2024-03-10"}, "is before from"),
        ({"from": "2023-01-01", "to": "2024-12-31"}, "by day covers at most 400 days"),
        ({"from": "2024-01-01", "to": "2024-03-01", "interval": "15m"}, "at most 31 days"),
        ({"by": "team"}, "by must be one of agent, path, group"),
        ({"interval": "5m"}, "interval must be one of 15m, 1h, day"),
    ],
)
def test_a_wrong_report_says_what_is_wrong(args: dict[str, str | None], message: str) -> None:
    with pytest.raises(ReportError, match=message):
        report_query(args, datetime.date(2024, 3, 11))


def test_a_report_defaults_to_today_by_agent_and_day() -> None:
    today = datetime.date(2024, 3, 11)
    assert report_query({}, today) == (today, today, "agent", "day")
    first = datetime.date(2024, 3, 1)
    assert report_query({"from": "2024-03-01"}, today)[:2] == (first, first)


def _render(resource: Reports, args: dict[bytes, list[bytes]]) -> tuple[int, dict[str, Any]]:
    request = DummyRequest([b""])
    request.args = args
    body = resource.render_GET(cast(Request, request))
    assert isinstance(body, bytes)
    code: int = request.responseCode or 200
    return code, json.loads(body)


def test_the_endpoint_answers_400_and_503_in_json(tmp_path: Path) -> None:
    floor = FloorState(CLOCK)
    figures = FiguresService(floor, CLOCK)
    with_history = Reports(figures, cast(HistoryService, object()))
    code, doc = _render(with_history, {b"by": [b"team"]})
    assert code == 400 and doc["error"] == "bad_request" and "by must be" in doc["detail"]
    code, doc = _render(with_history, {b"format": [b"xml"]})
    assert code == 400 and "format must be json, csv or xlsx, not 'xml'" in doc["detail"]
    code, doc = _render(with_history, {b"tz": [b"Mars/Olympus"]})
    assert code == 400 and "tz must be local or UTC, not 'Mars/Olympus'" in doc["detail"]
    code, doc = _render(with_history, {b"excel": [b"maybe"]})
    assert code == 400 and "excel must be 1 or 0" in doc["detail"]
    code, doc = _render(with_history, {b"by": [b"agent,path"], b"format": [b"csv"]})
    assert code == 400 and "several kinds only with format=xlsx" in doc["detail"]
    code, doc = _render(Reports(figures, None), {})
    assert code == 503 and doc["error"] == "no_history"
