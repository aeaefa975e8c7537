"""Simulated days, SMDR and ACD side by side: both readings of them find the simulator's ledger.

For days drawn from several seeds (floor sizes, layouts, time zones,
clocks and targets drawn with ``random.Random`` from the seed):

* the SMDR lines, read by ``parse_smdr`` (the layout found from each line,
  or given for Level 1) and made into calls by ``SmdrDay``, give per path
  and interval exactly the figures of ``FloorScript.smdr_ledger()``;
* the ACD bytes of the same day, through the parser, the floor and
  ``DayFigures``, count per path and interval (of the answer) the calls the
  ledger has answered by the interval of the answer;
* over the day, SMDR and the ACD stream count the same answered calls per
  path, once no answered call is still in conversation.
"""

from __future__ import annotations

import datetime
import random
from collections import Counter

import attrs
import pytest

from mitelacd.feed.capture import Data
from mitelacd.feed.replay import Replayer
from mitelacd.floor.smdr import (
    LAYOUT_NAMES,
    OUTCOMES,
    SmdrLayout,
    SmdrRecord,
    classify,
    layout_named,
    parse_smdr,
)
from mitelacd.reports.figures import DayFigures
from mitelacd.reports.rows import IntervalRow
from mitelacd.reports.smdrcalls import SmdrDay, SmdrSettings
from mitelacd.sim.callers import LEDGER_FIGURES, SmdrLedger
from mitelacd.sim.service import FloorScript
from mitelacd.sim.smdrwire import encode_smdr

ZONES = (
    datetime.timezone.utc,
    datetime.timezone(datetime.timedelta(hours=5, minutes=45)),
    datetime.timezone(datetime.timedelta(hours=-3, minutes=-30)),
)
#: (seed, agents, groups, paths, events): small floors see paths go unavailable
#: and queues overflow; the three-agent one runs past midnight.
FLOORS = (
    (0, 3, 1, 2, 3000),
    (1, 4, 2, 3, 2500),
    (2, 6, 2, 3, 2500),
    (3, 9, 3, 4, 2000),
    (4, 5, 1, 1, 2000),
    (5, 14, 3, 2, 2000),
)
#: How far past the events a day may run to find a moment without conversations.
QUIET_WITHIN = 6000


@attrs.frozen
class Settings:
    """What one day is read with, drawn from its seed."""

    layouts: tuple[SmdrLayout, ...]
    tz: datetime.tzinfo
    clock24: bool
    smdr: SmdrSettings


def settings_for(seed: int, paths: list[str]) -> Settings:
    draw = random.Random(f"smdr day {seed}")
    names = draw.sample(LAYOUT_NAMES, 3)
    targets = {path: draw.choice((5, 15, 30, 60)) for path in paths if draw.random() < 0.5}
    return Settings(
        layouts=tuple(layout_named(n) for n in names),
        tz=draw.choice(ZONES),
        clock24=draw.random() < 0.5,
        smdr=SmdrSettings(
            short_abandon_seconds=draw.choice((6, 6, 25)),
            service_level_seconds=draw.choice((10, 20, 45)),
            path_service_level_seconds=targets,
        ),
    )


@attrs.define
class Day:
    script: FloorScript
    settings: Settings
    smdr: dict[SmdrLayout, SmdrDay]
    #: ACD calls per (path, interval start), from the day's figures.
    acd: Counter[tuple[str, int]]
    outcomes: Counter[str]
    end: float


def simulated_day(seed: int, agents: int, groups: int, paths: int, events: int) -> Day:
    """Run a day until ``events`` agent events have gone out and nobody is in conversation."""
    plan = FloorScript(seed=seed, agents=agents, groups=groups, paths=paths, smdr=False).plan
    settings = settings_for(seed, list(plan.paths))
    tz = settings.tz
    script = FloorScript(seed=seed, agents=agents, groups=groups, paths=paths, tz=tz)
    assert script.callers is not None
    smdr = {layout: SmdrDay(tz=tz, settings=settings.smdr) for layout in settings.layouts}
    rows: list[IntervalRow] = []

    def sink(intervals: object, spans: object) -> None:
        assert isinstance(intervals, tuple | list)
        rows.extend(r for r in intervals if isinstance(r, IntervalRow))

    replayer = Replayer()
    figures = DayFigures(tz=tz, sink=sink)
    replayer.floor.addListener(figures)
    outcomes: Counter[str] = Counter()
    now = script.epoch
    for moment in script.timeline():
        now = script.epoch + moment.t
        if moment.acd:
            replayer.feed(Data(now, moment.acd))
        for entry in moment.smdr:
            said = set()
            for layout, day in smdr.items():
                line = encode_smdr(entry, layout, clock24=settings.clock24, fit=True)
                given = layout.kind == "level1"  # it fits Extended Digit Length too
                record = parse_smdr(line, layout if given else None)
                assert isinstance(record, SmdrRecord) and record.layout == layout, (line, record)
                assert day.add(record, now) == "call", line
                said.add(classify(record, settings.smdr.short_abandon_seconds))
            assert len(said) == 1  # every layout says the same
            outcomes[said.pop()] += 1
        sent = script.floor.sent
        if sent >= events and not script.callers.talking:
            break
        assert sent < events + QUIET_WITHIN, "no moment without a conversation"
    end = now + 60
    replayer.finish(end)
    figures.finish(end)
    acd: Counter[tuple[str, int]] = Counter()
    for row in rows:
        if row.kind == "path" and row.figures["acd_calls"]:
            acd[(row.id, row.interval_start)] += int(row.figures["acd_calls"])
    return Day(script, settings, smdr, acd, outcomes, end)


def ledger_of(day: Day) -> SmdrLedger:
    smdr = day.settings.smdr
    return day.script.smdr_ledger(
        smdr.service_level_seconds,
        dict(smdr.path_service_level_seconds),
        smdr.short_abandon_seconds,
    )


def figures_by_interval(rows: object) -> dict[tuple[str, int], dict[str, int]]:
    assert isinstance(rows, list | tuple)
    return {(r.path, r.start): {f: getattr(r, f) for f in LEDGER_FIGURES} for r in rows}


@pytest.fixture(scope="module")
def days() -> list[Day]:
    return [simulated_day(*floor) for floor in FLOORS]


@pytest.mark.parametrize("case", range(len(FLOORS)))
def test_smdr_read_back_gives_the_ledger_per_path_and_interval(days: list[Day], case: int) -> None:
    day = days[case]
    ledger = ledger_of(day)
    expected = figures_by_interval(list(ledger.intervals))
    assert sum(f["offered"] for f in expected.values()) > 100
    for layout, smdr in day.smdr.items():
        assert {k: v for k, v in smdr.counts.items() if v} == {"call": smdr.counts["call"]}, layout
        assert figures_by_interval(smdr.figures(day.end)) == expected, layout.name
    for row in ledger.intervals:
        assert (
            row.offered
            == sum(
                getattr(row, o) for o in ("answered", "abandoned", "short_abandoned", "interflowed")
            )
            + row.requeued
            + row.unavailable
        )
        assert row.service_level_seconds == day.settings.smdr.target(row.path)


@pytest.mark.parametrize("case", range(len(FLOORS)))
def test_the_acd_stream_answers_what_the_ledger_answered_per_path_and_interval(
    days: list[Day], case: int
) -> None:
    day = days[case]
    ledger = ledger_of(day)
    assert not ledger.talking
    answered = {k: n for k, n in ledger.answered_by_answer_interval.items() if n}
    assert answered and dict(day.acd) == answered
    # Over the day, SMDR answered the calls the G and S records answered, per path.
    rte: Counter[str] = Counter()
    for (path, _), n in day.acd.items():
        rte[path] += n
    smdr = next(iter(day.smdr.values()))
    read: Counter[str] = Counter()
    for row in smdr.figures(day.end):
        read[row.path] += row.answered
    assert (
        +read
        == +rte
        == Counter(day.script.answered_by_path())
        == Counter(ledger.answered_by_path())
    )


def test_the_days_show_every_outcome_and_layouts_and_zones_vary(days: list[Day]) -> None:
    seen: Counter[str] = sum((day.outcomes for day in days), Counter())
    assert set(seen) == set(OUTCOMES) - {"not_a_path_call", "unclassified"}, seen
    assert len({layout for day in days for layout in day.smdr}) >= 8
    assert len({day.settings.tz for day in days}) >= 2
    assert {day.settings.clock24 for day in days} == {False, True}


def test_a_frozen_day_counts_the_calls_still_in_conversation_on_the_acd_side_only() -> None:
    """With an event budget the floor stops mid-conversation: those calls have a G, no SMDR yet."""
    tz = datetime.timezone.utc
    script = FloorScript(seed=21, agents=30, groups=3, paths=3, events=1500, tz=tz)
    smdr = SmdrDay(tz=tz)
    answered_g: Counter[str] = Counter()
    now = script.epoch
    for moment in script.timeline():
        now = script.epoch + moment.t
        for record in moment.acd.split(b"\x02")[1:]:
            if record[2:3] in (b"G", b"S"):
                answered_g[record[-5:-2].decode()] += 1
        for entry in moment.smdr:
            smdr.add(parse_smdr(encode_smdr(entry, fit=True)), now)
        if script.frozen:
            break
    ledger = script.smdr_ledger()
    assert sum(ledger.talking.values()) > 0
    read: Counter[str] = Counter()
    for row in smdr.figures(now):
        read[row.path] += row.answered
    assert read + Counter(ledger.talking) == answered_g == Counter(script.answered_by_path())
    assert figures_by_interval(smdr.figures(now)) == figures_by_interval(list(ledger.intervals))
