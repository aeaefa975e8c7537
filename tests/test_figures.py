"""The day's figures (docs/reports.md) on hand-written streams, one table row per rule."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import pytest

from mitelacd.floor.days import DayClock
from mitelacd.reports.figures import DayFigures, parse_day_starts
from mitelacd.reports.rows import IntervalRow, StateSpan
from mitelacd.testing import Feeder

UTC = datetime.timezone.utc
#: 2024-03-11 08:00:00 UTC: scripts count their seconds from here.
T0 = datetime.datetime(2024, 3, 11, 8, 0, tzinfo=UTC).timestamp()


@attrs.define
class FiguresRun:
    """A floor on a fake clock with the day's figures listening, fed a timed script."""

    figures: DayFigures
    feeder: Feeder
    intervals: list[IntervalRow] = attrs.Factory(list)
    spans: list[StateSpan] = attrs.Factory(list)

    @classmethod
    def start(cls, at: float = T0, day_starts: str = "00:00") -> FiguresRun:
        feeder = Feeder()
        feeder.clock.advance(at - feeder.clock.seconds())
        figures = DayFigures(parse_day_starts(day_starts), UTC)
        run = cls(figures, feeder)
        figures.sink = run._sink
        feeder.floor.addListener(figures)
        return run

    def _sink(self, intervals: Sequence[IntervalRow], spans: Sequence[StateSpan]) -> None:
        self.intervals.extend(intervals)
        self.spans.extend(spans)

    def script(self, text: str, base: float = T0) -> None:
        """Lines of ``SECONDS TOKEN [AGENT]``; a token is a code and its tail (``G01860``)."""
        for line in text.strip().splitlines():
            words = line.split()
            at, token = base + float(words[0]), words[1]
            agent = words[2] if len(words) > 2 else "1001"
            self.to(at)
            if token[0] in "KQ":
                self.feeder.stats(token[0], token[1:4], token[4:])
            else:
                self.feeder.event(token[0], agent, tail=token[1:] or "")

    def to(self, at: float) -> None:
        clock = self.feeder.clock
        clock.advance(at - clock.seconds())

    def agent(self, at: float, agent: str = "1001", interval: bool = False) -> dict[str, Any]:
        rows = {r["id"]: r for r in self.figures.today("agent", at, interval)}
        return rows[agent]

    def path(self, at: float, path: str = "860") -> dict[str, Any]:
        return {r["id"]: r for r in self.figures.today("path", at)}[path]

    def group(self, at: float, group: str) -> dict[str, Any]:
        return {r["id"]: r for r in self.figures.today("group", at)}[group]


def subset(view: Mapping[str, Any], expected: Mapping[str, Any]) -> dict[str, Any]:
    return {k: view.get(k) for k in expected}


# Agents: one row per rule of the contract -----------------------------------------

AGENT_CASES = [
    pytest.param(
        "0 G01860\n60 N01\n90 O01\n200 J01",
        220,
        {
            "acd_calls": 1,
            "acd_talk_seconds": 170.0,
            "holds": 1,
            "hold_seconds": 30.0,
            "logged_in_seconds": 220.0,
            "state_on_call_seconds": 170.0,
            "state_on_hold_seconds": 30.0,
            "state_available_seconds": 20.0,
        },
        id="an ACD call with a hold: talk less the hold",
    ),
    pytest.param(
        "0 G01860\n30 N01\n35 I02\n95 J02\n100 O01\n160 J01",
        160,
        {
            "acd_calls": 1,
            "acd_talk_seconds": 90.0,
            "hold_seconds": 70.0,
            "outgoing_calls": 1,
            "outgoing_seconds": 60.0,
            "state_on_call_seconds": 150.0,
            "state_on_hold_seconds": 10.0,
        },
        id="a consultation: the caller held on key 1 while key 2 talks",
    ),
    pytest.param(
        "0 G01860\n30 N01\n35 I02\n95 J02\n100 P01",
        100,
        {"acd_talk_seconds": 30.0, "hold_seconds": 70.0, "outgoing_seconds": 60.0},
        id="a held caller hangs up (P): the hold ends there",
    ),
    pytest.param(
        "0 G01860\n20 N01\n30 J00",
        40,
        {"acd_talk_seconds": 20.0, "hold_seconds": 10.0, "state_available_seconds": 10.0},
        id="J with button 0 ends the held call too",
    ),
    pytest.param(
        "0 G01860\n100 L\n130 M",
        150,
        {
            "acd_talk_seconds": 100.0,
            "wrap_ups": 1,
            "wrap_up_seconds": 30.0,
            "state_wrap_up_seconds": 30.0,
            "state_available_seconds": 20.0,
        },
        id="L ends the call and starts wrap-up; M ends it",
    ),
    pytest.param(
        "0 G01860\n100 L\n120 G01861\n150 J01",
        150,
        {"acd_calls": 2, "acd_talk_seconds": 130.0, "wrap_up_seconds": 20.0},
        id="the next ACD call ends wrap-up before M",
    ),
    pytest.param(
        "0 H03\n45 J03\n50 I02\n80 J02",
        90,
        {
            "acd_calls": 0,
            "personal_calls": 1,
            "personal_seconds": 45.0,
            "outgoing_calls": 1,
            "outgoing_seconds": 30.0,
        },
        id="personal and outgoing calls: count and duration",
    ),
    pytest.param(
        "0 E03\n60 F\n100 E05\n130 E07\n200 F\n300 C\n350 D\n400 E02\n450 B",
        500,
        {
            "make_busy_seconds": 160.0 + 50.0,
            "make_busy_by_reason": [
                {"reason": 2, "seconds": 50.0},
                {"reason": 3, "seconds": 60.0},
                {"reason": 5, "seconds": 30.0},
                {"reason": 7, "seconds": 70.0},
            ],
            "dnd_seconds": 50.0,
            "not_ready_seconds": 260.0,
            "state_not_ready_seconds": 260.0,
            "logged_in_seconds": 450.0,
        },
        id="make busy by reason, a change of reason, DND, and B ending make busy",
    ),
    pytest.param(
        "500 N01\n560 O01\n600 J01",
        700,
        {
            "logged_in_seconds": 200.0,
            "hold_seconds": 60.0,
            "state_on_hold_seconds": 60.0,
            "state_on_call_seconds": 40.0,
            "acd_calls": 0,
            "first_seen": "2024-03-11T08:08:20.000Z",
        },
        id="first seen mid-day on hold: nothing before its first event",
    ),
    pytest.param(
        "0 T01\n10 U01\n20 T01\n30 U01\n31 G01860\n40 J01\n50 T01\n60 U01\n63 G01860\n70 J01",
        100,
        {"rang_unanswered": 2, "acd_calls": 2},
        id="rang, not answered: U with no G, S or H within 2 s",
    ),
    pytest.param(
        "0 A\n30 G01860\n60 A\n90 B\n120 G01860",
        150,
        {"logged_in_seconds": 90.0 + 30.0, "acd_talk_seconds": 30.0 + 30.0, "acd_calls": 2},
        id="A ends a call; B ends the login; any event logs in again",
    ),
]


@pytest.mark.parametrize(("script", "at", "expected"), AGENT_CASES)
def test_agent_figures(script: str, at: float, expected: dict[str, Any]) -> None:
    run = FiguresRun.start()
    run.script(script)
    assert subset(run.agent(T0 + at), expected) == expected


def test_figures_under_way_count_up_to_now_and_stay_open() -> None:
    run = FiguresRun.start()
    run.script("0 G01860\n60 N01")
    assert subset(run.agent(T0 + 100), {"acd_talk_seconds": 0, "hold_seconds": 0}) == {
        "acd_talk_seconds": 60.0,
        "hold_seconds": 40.0,
    }
    run.script("130 O01\n150 J01")
    view = run.agent(T0 + 150)
    assert (view["acd_talk_seconds"], view["hold_seconds"]) == (80.0, 70.0)


# Paths and groups --------------------------------------------------------------------


@pytest.mark.parametrize("interval", [False, True], ids=["today", "interval"])
def test_path_figures_under_way_count_up_to_now_like_the_agents(interval: bool) -> None:
    run = FiguresRun.start()
    run.script("0 A\n0.5 G01860")
    now = T0 + 6.5
    agent = run.figures.today("agent", now, interval)[0]
    (path,) = run.figures.today("path", now, interval)
    assert (path["acd_calls"], path["acd_talk_seconds"]) == (1, 6.0)
    assert path["acd_talk_seconds"] == agent["acd_talk_seconds"]
    assert path["acd_talk_average_seconds"] == 6.0
    run.script("10.5 N01")
    (path,) = run.figures.today("path", T0 + 20.5, interval)
    assert (path["acd_talk_seconds"], path["hold_seconds"]) == (10.0, 10.0)
    # The interval under way, as the reports read it, counts it too.
    (row,) = [r for r in run.figures.current_rows(T0 + 20.5) if r.kind == "path"]
    assert (row.figures["acd_talk_seconds"], row.figures["hold_seconds"]) == (10.0, 10.0)


def test_path_figures_follow_the_answering_record() -> None:
    run = FiguresRun.start()
    run.script(
        """
        0 G01860 1001
        0 S01861 1002
        30 N01 1001
        40 O01 1001
        100 J01 1001
        100 J01 1002
        110 G01860 1002
        130 J01 1002
        """
    )
    p860, p861 = run.path(T0 + 200, "860"), run.path(T0 + 200, "861")
    assert subset(p860, {"acd_calls": 0, "acd_talk_seconds": 0, "hold_seconds": 0}) == {
        "acd_calls": 2,
        "acd_talk_seconds": 90.0 + 20.0,
        "hold_seconds": 10.0,
    }
    assert (p861["acd_calls"], p861["acd_talk_seconds"]) == (1, 100.0)
    assert p860["acd_talk_average_seconds"] == 55.0


# Path wrap-up: a wrap-up belongs to the path of the last ACD call answered before it.

PATH_WRAP_CASES = [
    pytest.param(
        "0 G01860\n20 N01\n50 O01\n100 L\n130 M",
        150,
        {"860": {"acd_calls": 1, "acd_talk_seconds": 70.0, "hold_seconds": 30.0,
                 "wrap_up_seconds": 30.0}},
        id="L to M after a call of 860: 860's",
    ),
    pytest.param(
        "0 G01860\n100 L\n120 G01861\n150 L\n200 M",
        220,
        {
            "860": {"acd_talk_seconds": 100.0, "wrap_up_seconds": 120.0 - 100.0},
            "861": {"acd_talk_seconds": 30.0, "wrap_up_seconds": 200.0 - 150.0},
        },
        id="the next G on another path ends it; the wrap-up after that call is the new path's",
    ),
    pytest.param(
        "0 S01870\n50 L\n70 A",
        80,
        {"870": {"acd_calls": 1, "acd_talk_seconds": 50.0, "wrap_up_seconds": 20.0}},
        id="S like G, and A ending the wrap-up",
    ),
    pytest.param(
        "0 G01860\n60 J01\n70 H02\n100 J02\n110 L\n140 M",
        150,
        {"860": {"acd_talk_seconds": 60.0, "wrap_up_seconds": 30.0}},
        id="a personal call in between: still the last ACD call's path",
    ),
    pytest.param(
        "0 G01860\n60 J01\n70 G02\n100 L\n130 M",
        150,
        {"860": {"acd_calls": 1, "acd_talk_seconds": 60.0, "wrap_up_seconds": 30.0}},
        id="a G that names no path: the last path named",
    ),
    pytest.param(
        "0 H03\n45 J03\n50 L\n80 M",
        100,
        {},
        id="no ACD call before it: no path's",
    ),
    pytest.param(
        "0 G01860\n100 L",
        160,
        {"860": {"acd_talk_seconds": 100.0, "wrap_up_seconds": 60.0}},
        id="under way: counted up to now",
    ),
    pytest.param(
        "0 G01860 1001\n0 G01861 1002\n40 L 1001\n50 L 1002\n60 M 1001\n90 M 1002",
        100,
        {
            "860": {"acd_talk_seconds": 40.0, "wrap_up_seconds": 20.0},
            "861": {"acd_talk_seconds": 50.0, "wrap_up_seconds": 40.0},
        },
        id="two agents: each wrap-up to its own agent's last path",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("script", "at", "expected"), PATH_WRAP_CASES)
def test_path_wrap_up(script: str, at: float, expected: dict[str, dict[str, Any]]) -> None:
    run = FiguresRun.start()
    run.script(script)
    paths = {p["id"]: p for p in run.figures.today("path", T0 + at)}
    assert {k: subset(paths[k], v) for k, v in expected.items() if k in paths} == expected
    assert set(paths) == set(expected)
    # A path's wrap-up is some agent's: never more than theirs all together.
    agents = run.figures.today("agent", T0 + at)
    assert sum(p["wrap_up_seconds"] for p in paths.values()) <= sum(
        a["wrap_up_seconds"] for a in agents
    )


def test_path_wrap_up_is_split_by_interval() -> None:
    run = FiguresRun.start(at=T0 + 14 * 60)
    run.script("840 G01860\n870 L\n960 M")
    run.figures.advance(T0 + 45 * 60)
    rows = [r for r in run.intervals if r.kind == "path"]
    # 08:14:30 to 08:15 in the first interval, 08:15 to 08:16 in the next.
    assert [(r.interval_start - T0, r.figures["wrap_up_seconds"]) for r in rows] == [
        (0, 30.0),
        (900, 60.0),
    ]
    assert [r.figures["acd_talk_seconds"] for r in rows] == [30.0, 0.0]


def test_path_wrap_up_under_way_reaches_the_current_rows() -> None:
    run = FiguresRun.start()
    run.script("0 G01860\n100 L")
    (row,) = [r for r in run.figures.current_rows(T0 + 130) if r.kind == "path"]
    assert (row.figures["acd_talk_seconds"], row.figures["wrap_up_seconds"]) == (100.0, 30.0)
    # Looking does not count: the figures go on as before.
    run.script("150 M")
    run.figures.advance(T0 + 900)
    (closed,) = [r for r in run.intervals if r.kind == "path"]
    assert closed.figures["wrap_up_seconds"] == 50.0


# Derived figures: average handle time and occupancy ----------------------------------

DERIVED_CASES = [
    pytest.param(
        "0 A\n10 G01860\n40 N01\n50 O01\n100 J01\n100 L\n130 M\n200 G01861\n260 L\n290 M",
        300,
        # talk 30 + 50 + 60, hold 10, wrap-up 30 + 30, over 2 calls; 300 s logged in.
        {"average_handle_seconds": (140 + 10 + 60) / 2,
         "occupancy_percent": (140 + 10 + 60) / 300 * 100},
        {"860": (30 + 50 + 10 + 30) / 1, "861": (60 + 30) / 1},
        id="talk, hold and wrap-up per ACD call; over the time logged in",
    ),
    pytest.param(
        "0 A\n0 E03\n100 F\n100 H02\n160 J02\n200 I03\n230 J03",
        400,
        {"average_handle_seconds": None, "occupancy_percent": (60 + 30) / (400 - 100) * 100},
        {},
        id="personal and outgoing time count; make busy time is left out of the divisor",
    ),
    pytest.param(
        "0 A\n0 C\n200 D\n200 G01860\n250 J01",
        300,
        {"average_handle_seconds": 50.0, "occupancy_percent": 50 / (300 - 200) * 100},
        {"860": 50.0},
        id="DND time is left out of the divisor",
    ),
    pytest.param(
        "0 A\n0 C\n40 E03\n100 B",
        120,
        {"average_handle_seconds": None, "occupancy_percent": None},
        {},
        id="no ACD call and no time ready: both null",
    ),
    pytest.param(
        "0 A\n0 G01860\n30 N01\n35 I02\n95 J02\n100 O01\n160 J01",
        160,
        # The held caller and the consultation call both count: past 100.
        {"average_handle_seconds": (90 + 70) / 1,
         "occupancy_percent": (90 + 70 + 60) / 160 * 100},
        {"860": 160.0},
        id="overlapping figures are not capped",
    ),
    pytest.param(
        "0 G01860\n10 J01\n20 G01860\n60 J01\n70 G01860\n120 J01",
        120,
        # 100 s of talk over 3 calls and 120 s logged in, to the millisecond.
        {"average_handle_seconds": 33.333, "occupancy_percent": 83.333},
        {"860": 33.333},
        id="rounded to 3 decimals",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("script", "at", "agent", "paths"), DERIVED_CASES)
def test_derived_figures(
    script: str, at: float, agent: dict[str, Any], paths: dict[str, float]
) -> None:
    run = FiguresRun.start()
    run.script(script)
    assert subset(run.agent(T0 + at), agent) == agent
    found = {p["id"]: p["average_handle_seconds"] for p in run.figures.today("path", T0 + at)}
    assert found == paths


def test_derived_figures_include_what_is_under_way() -> None:
    run = FiguresRun.start()
    run.script("0 A\n10 G01860")
    view = run.agent(T0 + 70)
    # 60 s of talk under way, 70 s logged in.
    assert view["average_handle_seconds"] == 60.0
    assert view["occupancy_percent"] == 85.714  # 60 / 70 x 100 = 85.7142...
    run.script("100 L")
    view, (path,) = run.agent(T0 + 130), run.figures.today("path", T0 + 130)
    # 90 s of talk, then 30 s of wrap-up under way; 130 s logged in.
    assert view["average_handle_seconds"] == path["average_handle_seconds"] == 90.0 + 30.0
    assert view["occupancy_percent"] == 92.308  # 120 / 130 x 100 = 92.3076...


def test_derived_figures_of_the_current_interval() -> None:
    run = FiguresRun.start(at=T0 + 840)
    run.script("840 G01860\n880 J01\n890 L\n950 M\n980 G01861")
    now = T0 + 1000
    interval = run.agent(now, interval=True)
    # 08:15 to now: wrap-up 50 s, the call on 861 under way 20 s, 100 s logged in.
    assert (interval["acd_calls"], interval["wrap_up_seconds"]) == (1, 50.0)
    assert interval["average_handle_seconds"] == (20 + 50) / 1
    assert interval["occupancy_percent"] == (20 + 50) / 100 * 100
    day = run.agent(now)
    # Since 08:14: talk 40 + 20, wrap-up 60, two calls, 160 s logged in.
    assert day["average_handle_seconds"] == (60 + 60) / 2
    assert day["occupancy_percent"] == (60 + 60) / 160 * 100
    paths = {p["id"]: p for p in run.figures.today("path", now, interval=True)}
    # 860's call was answered in the interval before: only its wrap-up is in this one.
    assert paths["860"]["acd_calls"] == 0 and paths["860"]["average_handle_seconds"] is None
    assert paths["860"]["wrap_up_seconds"] == 50.0
    assert paths["861"]["average_handle_seconds"] == 20.0


def test_groups_have_no_handling_figures() -> None:
    run = FiguresRun.start()
    run.script("0 K6100020040100\n0 G01860\n30 J01")
    group = run.group(T0 + 60, "610")
    assert "average_handle_seconds" not in group and "occupancy_percent" not in group


def test_queue_peaks_and_time_weighted_mean() -> None:
    run = FiguresRun.start()
    # waiting, agents, longest wait (MMSS)
    run.script(
        """
        0 Q8600030020030
        15 Q8600050020130
        30 Q8600010020010
        0 K6100020040100
        """
    )
    path = run.path(T0 + 45)
    assert subset(path, {"max_waiting": 0, "max_longest_wait_seconds": 0, "reports": 0}) == {
        "max_waiting": 5,
        "max_longest_wait_seconds": 90,
        "reports": 3,
    }
    # 3 for 15 s, 5 for 15 s, 1 for 15 s.
    assert path["mean_waiting"] == 3.0
    assert path["max_waiting_at"] == "2024-03-11T08:00:15.000Z"
    # A report stands for at most a minute: the group's 2 waiting covers 60 s, not 600.
    group = run.group(T0 + 600, "610")
    assert (group["covered_seconds"], group["mean_waiting"]) == (60.0, 2.0)


# Intervals, midnight and the day's start -----------------------------------------------


def test_intervals_split_stretches_and_add_up_to_the_day() -> None:
    run = FiguresRun.start(at=T0 + 14 * 60)
    run.script("840 G01860\n960 N01\n1000 O01\n1900 J01")
    run.figures.advance(T0 + 45 * 60)
    rows = [r for r in run.intervals if r.kind == "agent"]
    starts = [r.interval_start for r in rows]
    assert starts == [T0, T0 + 900, T0 + 1800]
    talk = [r.figures["acd_talk_seconds"] for r in rows]
    assert talk == [60.0, 860.0, 100.0]
    assert [r.figures["hold_seconds"] for r in rows] == [0.0, 40.0, 0.0]
    assert [r.day for r in rows] == ["2024-03-11"] * 3
    assert all(r.hour_start == T0 for r in rows)
    day = run.agent(T0 + 45 * 60)
    assert day["acd_talk_seconds"] == sum(talk)
    assert day["logged_in_seconds"] == sum(r.figures["logged_in_seconds"] for r in rows)
    paths = [r for r in run.intervals if r.kind == "path"]
    assert [r.figures["acd_talk_seconds"] for r in paths] == talk


@pytest.mark.parametrize(
    ("day_starts", "boundary"),
    [
        pytest.param("00:00", datetime.datetime(2024, 3, 12, 0, 0, tzinfo=UTC), id="midnight"),
        pytest.param("06:00", datetime.datetime(2024, 3, 12, 6, 0, tzinfo=UTC), id="06:00"),
    ],
)
def test_the_day_boundary(day_starts: str, boundary: datetime.datetime) -> None:
    edge = boundary.timestamp()
    run = FiguresRun.start(at=edge - 600, day_starts=day_starts)
    run.script("0 A\n300 G01860\n900 J01\n960 G01860\n1020 J01", base=edge - 600)
    rows = [r for r in run.intervals if r.kind == "agent"]
    before = [r for r in rows if r.interval_start < edge]
    assert sum(r.figures["acd_talk_seconds"] for r in before) == 300.0
    assert sum(r.figures["logged_in_seconds"] for r in before) == 600.0
    assert {r.day for r in before} == {(boundary.date() - datetime.timedelta(days=1)).isoformat()}
    # The new day counts from the agent's first event in it: the J at +5 min.
    today = run.agent(edge + 600)
    assert today["first_seen"] == (boundary + datetime.timedelta(minutes=5)).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z"
    )
    assert (today["acd_calls"], today["acd_talk_seconds"]) == (1, 60.0)
    assert today["logged_in_seconds"] == 300.0
    day_spans = [s for s in run.spans if s.code == "day"]
    assert [(s.state, s.start, s.end) for s in day_spans] == [("on_call", edge - 300, edge)]


def test_state_spans_are_kept_with_reason_path_and_key() -> None:
    run = FiguresRun.start()
    run.script("0 A\n10 E07\n40 F\n50 G02860\n80 N02\n90 O02\n100 L\n130 M")
    got = [(s.state, s.next_state, s.start - T0, s.end - T0, s.code) for s in run.spans]
    assert got == [
        ("available", "not_ready", 0, 10, "E"),
        ("not_ready", "available", 10, 40, "F"),
        ("available", "on_call", 40, 50, "G"),
        ("on_call", "on_hold", 50, 80, "N"),
        ("on_hold", "on_call", 80, 90, "O"),
        ("on_call", "wrap_up", 90, 100, "L"),
        ("wrap_up", "available", 100, 130, "M"),
    ]
    assert run.spans[1].reason == 7
    assert (run.spans[3].path, run.spans[3].button) == ("860", 2)


def test_stop_hands_over_the_part_seen_and_a_restart_seeds_today() -> None:
    run = FiguresRun.start()
    run.script("0 G01860\n100 J01")
    run.figures.finish(T0 + 200)
    rows = [r for r in run.intervals if r.kind == "agent"]
    assert [(r.figures["acd_calls"], r.figures["logged_in_seconds"]) for r in rows] == [(1, 200.0)]
    assert run.spans[-1].code == "stop"
    again = FiguresRun.start(at=T0 + 300)
    again.figures.advance(T0 + 300)
    again.figures.seed(run.intervals)
    again.script("400 G01860\n460 J01")
    view = again.agent(T0 + 500)
    assert (view["acd_calls"], view["acd_talk_seconds"]) == (2, 160.0)
    assert view["logged_in_seconds"] == 200.0 + 100.0


def test_a_clock_that_goes_back_counts_nothing_backwards() -> None:
    figures = DayFigures(tz=UTC)
    figures.advance(T0 + 100)
    figures.advance(T0 + 50)
    assert figures.now == T0 + 100


def test_day_starts_must_be_a_quarter_hour() -> None:
    assert parse_day_starts("06:30") == datetime.time(6, 30)
    with pytest.raises(ValueError, match="quarter hour"):
        parse_day_starts("06:10")
    with pytest.raises(ValueError, match="HH:MM"):
        parse_day_starts("6")


def test_day_clock_follows_local_time_across_a_change_of_summer_time() -> None:
    from zoneinfo import ZoneInfo

    paris = ZoneInfo("Europe/Paris")
    days = DayClock(datetime.time(0, 0), paris)
    # 2024-03-31 is 23 hours long in Paris.
    start = datetime.datetime(2024, 3, 31, 0, 0, tzinfo=paris).timestamp()
    end = days.day_start(datetime.date(2024, 4, 1))
    assert end - start == 23 * 3600
    assert days.day(end - 1) == datetime.date(2024, 3, 31)
    assert days.interval_start(start + 3 * 3600 + 17 * 60) == start + 3 * 3600 + 15 * 60
