"""The day's figures over whole simulated days: they add up, and they match the floor's own count."""

from __future__ import annotations

import datetime

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from mitelacd.feed.capture import Data
from mitelacd.feed.replay import Replayer
from mitelacd.floor.records import AgentEvent, parse_record
from mitelacd.reports.figures import DayFigures
from mitelacd.reports.rows import IntervalRow, StateSpan
from mitelacd.sim.service import FloorScript

UTC = datetime.timezone.utc
START = datetime.datetime(2026, 3, 9, 8, 0, tzinfo=UTC).timestamp()
STATES = ("on_call", "on_hold", "ringing", "not_ready", "wrap_up", "available")


def simulated_day(
    seed: int, agents: int, events: int
) -> tuple[FloorScript, DayFigures, dict[str, int], list[IntervalRow], float]:
    """A simulated floor's events through the parser, the floor and the figures.

    Returns the script, the figures at the end, the G/S records per path
    read back from the bytes, every closed interval, and the end time.
    """
    script = FloorScript(seed=seed, agents=agents, groups=3, paths=4, events=events)
    replayer = Replayer()
    rows: list[IntervalRow] = []

    def sink(intervals: object, spans: object) -> None:
        assert isinstance(intervals, tuple | list) and isinstance(spans, tuple | list)
        rows.extend(r for r in intervals if isinstance(r, IntervalRow))
        assert all(isinstance(s, StateSpan) for s in spans)

    figures = DayFigures(tz=UTC, sink=sink)
    replayer.floor.addListener(figures)
    answered: dict[str, int] = {}
    t = 0.0
    for t, chunk in script.steps():
        replayer.feed(Data(START + t, chunk))
        for record in chunk.split(b"\x02")[1:]:
            parsed = parse_record(record.rstrip(b"\r\n"))
            if isinstance(parsed, AgentEvent) and parsed.code in "GS" and parsed.agent:
                assert parsed.path is not None
                answered[parsed.path] = answered.get(parsed.path, 0) + 1
        if script.frozen:
            break
    end = START + t + 60
    replayer.finish(end)
    return script, figures, answered, rows, end


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    # A failing day is reported as found: shrinking whole days takes too long.
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
)
@given(
    seed=st.integers(min_value=0, max_value=10_000),
    agents=st.integers(min_value=3, max_value=40),
    events=st.integers(min_value=200, max_value=5_000),
)
def test_simulated_days_add_up(seed: int, agents: int, events: int) -> None:
    script, figures, answered, rows, end = simulated_day(seed, agents, events)
    figures.finish(end)
    agent_rows = [r for r in rows if r.kind == "agent"]
    assert agent_rows, "the floor saw no agent"
    for row in agent_rows:
        # Each logged-in second of an interval is in exactly one state: talk,
        # hold, wrap-up, not ready or idle (available or ringing).
        f = row.figures
        split = sum(f[f"state_{s}_seconds"] for s in STATES)
        assert abs(split - f["logged_in_seconds"]) <= 1.0, row
        assert f["logged_in_seconds"] <= 900.0, row
        # Call times never exceed the time they could have taken.
        talk = f["acd_talk_seconds"] + f["personal_seconds"] + f["outgoing_seconds"]
        assert talk <= f["logged_in_seconds"] + 1.0, row
    # The simulator wraps up only after an ACD call, whose record names its
    # path: per interval, the paths' wrap-up is the agents' (each row rounded
    # to the millisecond).
    wrap: dict[int, list[float]] = {}
    for row in rows:
        if row.kind in ("agent", "path"):
            pair = wrap.setdefault(row.interval_start, [0.0, 0.0])
            pair[row.kind == "path"] += row.figures["wrap_up_seconds"]
    for start, (agents_wrap, paths_wrap) in wrap.items():
        assert abs(agents_wrap - paths_wrap) <= 0.05, (start, agents_wrap, paths_wrap)
    # ACD calls per path: the figures, the G/S records on the wire and the floor agree.
    paths: dict[str, int] = {}
    for row in rows:
        if row.kind == "path" and row.figures["acd_calls"]:
            paths[row.id] = paths.get(row.id, 0) + int(row.figures["acd_calls"])
    assert paths == answered == script.answered_by_path()
    # Per agent, the counts equal the floor's own.
    truth = script.day_counts()
    names = ("acd_calls", "personal_calls", "outgoing_calls", "wrap_ups")
    counted: dict[str, dict[str, int]] = {}
    for row in agent_rows:
        mine = counted.setdefault(row.id, dict.fromkeys(names, 0))
        for name in names:
            mine[name] += int(row.figures[name])
    assert {a: c for a, c in counted.items() if any(c.values())} == {
        a: c for a, c in truth.items() if any(c.values())
    }


def test_today_is_the_open_day_and_its_intervals() -> None:
    _, figures, _, rows, end = simulated_day(seed=5, agents=30, events=3000)
    views = figures.today("agent", end)
    day = figures.day
    assert day is not None
    closed: dict[str, float] = {}
    for row in rows:
        if row.kind == "agent" and row.day == day.isoformat():
            closed[row.id] = closed.get(row.id, 0) + row.figures["acd_calls"]
    current = {v["id"]: v["acd_calls"] for v in figures.today("agent", end, interval=True)}
    assert sum(v["acd_calls"] for v in views) > 0
    for view in views:
        assert closed.get(view["id"], 0) + current.get(view["id"], 0) == view["acd_calls"]
        split = sum(view[f"state_{s}_seconds"] for s in STATES)
        assert abs(split - view["logged_in_seconds"]) <= 1.0, view
