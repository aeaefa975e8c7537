"""SMDR records into calls, and calls into per-path, per-15-minute figures (pure).

docs/state-model.md §8 is the contract; smdr-protocol.md §4, §6 and §7 the
reasons. Records come from :func:`mitelacd.floor.smdr.parse_smdr`; what one
record says comes from :func:`mitelacd.floor.smdr.classify`. Nothing here
reads a clock, listens or stores: times are the collector's (Unix seconds)
and are passed in.

API::

    day = SmdrDay(day_starts, tz, SmdrSettings(...))
    day.add(parse_smdr(line), received_at)   # -> what became of the record
    day.figures(now)                         # -> list[PathInterval]
    day.pop_closed(now)                      # -> closed intervals, forgotten

:class:`SmdrDay` holds the calls of every interval it has seen, whatever the
report day; the caller hands closed intervals on with :meth:`SmdrDay.pop_closed`.

Records to calls (§6.4):

* Only path calls take part (a ``P`` token in Digits Dialed); other records
  are counted in :attr:`SmdrDay.counts` and go no further.
* A record with the OLI tail and a call identifier joins the call of
  ``(call identifier, path)``; records are ordered by sequence identifier,
  then by arrival. Without a call identifier the key is the documented one,
  ``(system identifier, calling party, ANI, date, start minute, path)``, and
  records are ordered by arrival. The path is in both keys, so a call that
  interflows from one path to another is a call of each path.
* The last record of a call is its outcome; a requeue (``R``) followed by an
  answer is one offered call, answered. ``requeued`` therefore counts the
  calls whose last record so far is a requeue.
* A call's start is the start of its first record; its time to answer is
  that of its first record that shows an answer (the agent who first
  answered, §6.2), when its outcome is ``answered``.
* A call whose last record fits no rule of §6.3 is offered with outcome
  ``unclassified``: counted in the interval's ``unclassified``, never guessed.
  A path record whose path, date or start cannot be read, or whose call
  identifier is sent but cannot be read, belongs to no call; it is counted
  in ``counts["unplaced"]``.

Dates (§4: no year; "take the year from the collector clock; handle 31 Dec
→ 1 Jan"): the record's month and day in the year that gives the nearest
date not after the local date of ``received_at`` plus one day. The day's
allowance keeps a controller clock a little ahead of the collector's at
midnight on 31 December from putting a call a year back. The start time is
read as local time in ``tz`` (the controller's clock is taken to be the
site's); on a repeated hour at the end of summer time the first is taken.

Intervals: local quarter hours (as :class:`mitelacd.floor.days.DayClock`),
bucketed by the call's start. An interval is **open** until
:data:`OPEN_SECONDS` (2 h, §8) after its end: a record for a call of an open
interval revises it; one that arrives later (by its ``received_at``) is not
added and is counted in ``counts["too_late"]``.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Literal, get_args

import attrs

from mitelacd.floor.days import DayClock
from mitelacd.floor.smdr import (
    SHORT_ABANDON_SECONDS,
    Outcome,
    SmdrRecord,
    SmdrResult,
    SmdrUnreadable,
    classify,
)
from mitelacd.reports.rows import INTERVAL_SECONDS, RATIO_DECIMALS

#: An interval stays open for late records this long after its end (§8).
OPEN_SECONDS = 2 * 3600
#: The default service level target (§8).
SERVICE_LEVEL_SECONDS = 20

#: What a path call's last record says it came to.
CallOutcome = Literal[
    "answered", "abandoned", "short_abandoned", "interflowed", "requeued",
    "unavailable", "unclassified",
]  # fmt: skip
CALL_OUTCOMES: tuple[CallOutcome, ...] = get_args(CallOutcome)

#: What :meth:`SmdrDay.add` did with a record.
Added = Literal["call", "unreadable", "not_a_path_call", "unplaced", "too_late"]
ADDED: tuple[Added, ...] = get_args(Added)

#: The figures that rest on [verify] readings until the site confirms (§8).
PROVISIONAL_FIGURES: tuple[str, ...] = (
    "abandoned",
    "short_abandoned",
    "interflowed",
    "requeued",
    "unavailable",
    "service_level_percent",
    "average_time_to_answer_seconds",
)


@attrs.frozen
class SmdrSettings:
    """The site's settings for SMDR figures.

    ``path_service_level_seconds``: targets by path reporting number as the
    records send it (``"860"``). ``confirmed``: the site has confirmed the
    layout and markers on its own capture; figures are then not provisional.
    """

    short_abandon_seconds: int = SHORT_ABANDON_SECONDS
    service_level_seconds: int = SERVICE_LEVEL_SECONDS
    path_service_level_seconds: Mapping[str, int] = attrs.field(factory=dict)
    confirmed: bool = False

    def target(self, path: str) -> int:
        """The service level target of ``path``, in seconds."""
        return self.path_service_level_seconds.get(path, self.service_level_seconds)


@attrs.frozen
class PathInterval:
    """One path's SMDR figures over one 15-minute interval (§8).

    Counts are of calls started in the interval, by outcome; ``offered``
    counts every call, whatever its outcome. ``provisional`` names the
    figures that rest on [verify] readings (empty once confirmed).
    """

    path: str
    #: The report day (by ``day_starts``) and the interval's Unix start and end.
    day: datetime.date
    start: int
    end: int
    #: Late records may still revise it.
    open: bool
    offered: int
    answered: int
    abandoned: int
    short_abandoned: int
    interflowed: int
    requeued: int
    unavailable: int
    unclassified: int
    answered_within_target: int
    #: The target the interval was counted against.
    service_level_seconds: int
    #: Sum of the answered calls' times to answer: spans of intervals add it.
    time_to_answer_seconds: int
    service_level_percent: float | None
    average_time_to_answer_seconds: float | None
    provisional: tuple[str, ...]


def record_date(month: int, day: int, today: datetime.date) -> datetime.date | None:
    """The date of a record's ``mm/dd``, read on ``today`` (see the module notes).

    None when no year near ``today`` has that date (29 February).
    """
    latest = today + datetime.timedelta(days=1)
    candidates = []
    for year in (latest.year - 1, latest.year):
        try:
            candidates.append(datetime.date(year, month, day))
        except ValueError:
            continue
    fitting = [date for date in candidates if date <= latest]
    return max(fitting) if fitting else None


CallKey = tuple[object, ...]


@attrs.define
class _Step:
    order: tuple[str, int]
    outcome: Outcome
    time_to_answer: int | None


@attrs.define
class _Call:
    path: str
    start: float
    interval: int
    steps: list[_Step] = attrs.Factory(list)

    def outcome(self) -> CallOutcome:
        last = self.steps[-1].outcome
        assert last != "not_a_path_call"  # only path records join calls
        return last

    def time_to_answer(self) -> int | None:
        for step in self.steps:
            if step.outcome == "answered":
                return step.time_to_answer
        return None

    def within(self, target: int) -> bool:
        """Answered within ``target`` seconds."""
        if self.outcome() != "answered":
            return False
        tta = self.time_to_answer()
        return tta is not None and tta <= target


@attrs.frozen
class CallChange:
    """What one record did to its call: for counters that only go up (``/metrics``)."""

    path: str
    #: The record started the call: one more offered.
    new: bool
    before: CallOutcome | None
    after: CallOutcome
    #: Answered within the path's target, before and after the record.
    within_before: bool
    within_after: bool


class SmdrDay:
    """The calls of each path, from SMDR records, and their interval figures."""

    def __init__(
        self,
        day_starts: datetime.time = datetime.time(0, 0),
        tz: datetime.tzinfo | None = None,
        settings: SmdrSettings | None = None,
    ) -> None:
        self.days = DayClock(day_starts, tz)
        self.tz = tz
        self.settings = settings or SmdrSettings()
        self._calls: dict[CallKey, _Call] = {}
        self._arrivals = 0
        #: Every record by what :meth:`add` did with it, and ``unclassified``:
        #: the path records (placed or not) that fit no rule of §6.3, plus
        #: the lines that fit no layout.
        self.counts: dict[str, int] = dict.fromkeys((*ADDED, "unclassified"), 0)
        #: What the last record added did to its call; None when it joined none.
        self.changed: CallChange | None = None

    def add(self, result: SmdrResult, received_at: float) -> Added:
        """Take one parsed line, received at ``received_at`` (collector's clock)."""
        added = self._add(result, received_at)
        self.counts[added] += 1
        if added == "unreadable" or (
            isinstance(result, SmdrRecord)
            and added != "not_a_path_call"
            and classify(result, self.settings.short_abandon_seconds) == "unclassified"
        ):
            self.counts["unclassified"] += 1
        return added

    def _add(self, result: SmdrResult, received_at: float) -> Added:
        self.changed = None
        if isinstance(result, SmdrUnreadable):
            return "unreadable"
        if not result.is_path_call:
            return "not_a_path_call"
        path = result.path
        if path is None or "call_id" in result.unread:
            return "unplaced"
        start = self._start(result, received_at)
        if start is None:
            return "unplaced"
        key = _key(result, path)
        call = self._calls.get(key)
        interval = call.interval if call is not None else self.days.interval_start(start)
        if received_at >= interval + INTERVAL_SECONDS + OPEN_SECONDS:
            return "too_late"
        new = call is None
        if call is None:
            call = self._calls[key] = _Call(path, start, interval)
        target = self.settings.target(path)
        before = None if new else call.outcome()
        within_before = not new and call.within(target)
        self._arrivals += 1
        sequence = (result.sequence_id or "") if result.call_id is not None else ""
        step = _Step(
            (sequence, self._arrivals),
            classify(result, self.settings.short_abandon_seconds),
            result.time_to_answer_seconds,
        )
        call.steps.append(step)
        call.steps.sort(key=lambda s: s.order)
        if call.steps[0] is step and start != call.start:
            # An earlier record of the call (by sequence) came late: its start is the call's.
            call.start = start
            call.interval = self.days.interval_start(start)
        self.changed = CallChange(
            path, new, before, call.outcome(), within_before, call.within(target)
        )
        return "call"

    def _start(self, record: SmdrRecord, received_at: float) -> float | None:
        if record.month is None or record.day is None or record.start is None:
            return None
        today = self.days.local(received_at).date()
        date = record_date(record.month, record.day, today)
        if date is None:
            return None
        return datetime.datetime.combine(date, record.start, tzinfo=self.tz).timestamp()

    def figures(self, now: float) -> list[PathInterval]:
        """Every interval with calls, by start then path; ``open`` as of ``now``."""
        return self._figures(self._calls.values(), now)

    def pop_closed(self, now: float) -> list[PathInterval]:
        """The intervals closed at ``now``, whose calls are then forgotten."""
        closed = {
            key: call
            for key, call in self._calls.items()
            if now >= call.interval + INTERVAL_SECONDS + OPEN_SECONDS
        }
        for key in closed:
            del self._calls[key]
        return self._figures(closed.values(), now)

    def forget_before(self, since: float) -> int:
        """Forget the calls of intervals that start before ``since``; how many there were.

        For a day rebuilt from the lines received since ``since``: calls
        that started earlier may have had records before it, and would be
        counted in part.
        """
        gone = [key for key, call in self._calls.items() if call.interval < since]
        for key in gone:
            del self._calls[key]
        return len(gone)

    def _figures(self, calls: Iterable[_Call], now: float) -> list[PathInterval]:
        grouped: dict[tuple[int, str], list[_Call]] = {}
        for call in calls:
            grouped.setdefault((call.interval, call.path), []).append(call)
        return [
            self._interval(path, start, grouped[start, path], now)
            for start, path in sorted(grouped)
        ]

    def _interval(self, path: str, start: int, calls: list[_Call], now: float) -> PathInterval:
        counts = dict.fromkeys(CALL_OUTCOMES, 0)
        target = self.settings.target(path)
        within = 0
        waited = 0
        for call in calls:
            outcome = call.outcome()
            counts[outcome] += 1
            if outcome == "answered":
                tta = call.time_to_answer()
                assert tta is not None  # an answered record has one (§6.3)
                waited += tta
                within += tta <= target
        offered = len(calls)
        served = offered - counts["short_abandoned"]
        answered = counts["answered"]
        end = start + INTERVAL_SECONDS
        return PathInterval(
            path=path,
            day=self.days.day(start),
            start=start,
            end=end,
            open=now < end + OPEN_SECONDS,
            offered=offered,
            answered=answered,
            abandoned=counts["abandoned"],
            short_abandoned=counts["short_abandoned"],
            interflowed=counts["interflowed"],
            requeued=counts["requeued"],
            unavailable=counts["unavailable"],
            unclassified=counts["unclassified"],
            answered_within_target=within,
            service_level_seconds=target,
            time_to_answer_seconds=waited,
            service_level_percent=(
                round(within / served * 100, RATIO_DECIMALS) if served > 0 else None
            ),
            average_time_to_answer_seconds=(
                round(waited / answered, RATIO_DECIMALS) if answered > 0 else None
            ),
            provisional=() if self.settings.confirmed else PROVISIONAL_FIGURES,
        )


def _key(record: SmdrRecord, path: str) -> CallKey:
    """The call a record belongs to (§6.4)."""
    if record.call_id is not None:
        return ("oli", record.call_id, path)
    start = record.start
    minute = None if start is None else (start.hour, start.minute)
    return (
        "key",
        record.system_id,
        record.calling,
        record.ani,
        record.month,
        record.day,
        minute,
        path,
    )
