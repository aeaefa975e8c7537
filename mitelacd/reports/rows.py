"""The rows of the day's figures: what the figures hand to history and what reports read.

Each figure has a fixed name (docs/reports.md) and a way to combine two
intervals into one: ``sum`` for counts and seconds, ``max`` for peaks. The
same names are the JSON keys of ``/api/v1/reports``, the CSV columns and the
database columns, so that a reporting tool written against one reads the
others.

Paths also have the figures of the SMDR stream (state-model §8): each
15-minute interval's counts as :class:`SmdrIntervalRow` (what the history
keeps of a :class:`~mitelacd.reports.smdrcalls.PathInterval`, which imports
this module), summed over a report's bucket by :func:`smdr_sums`; the
fields a row shows are worked out from the sums by
:func:`~mitelacd.reports.store.smdr_fields`, for stored and live figures
alike.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any, Literal, Protocol

import attrs

#: What a row is about.
RowKind = Literal["agent", "path", "group"]
ROW_KINDS: tuple[RowKind, ...] = ("agent", "path", "group")

#: How two intervals' values of one figure make the value of both.
Combine = Literal["sum", "max"]

#: How long one stored interval is, in seconds.
INTERVAL_SECONDS = 15 * 60

#: How a report groups intervals.
ReportInterval = Literal["15m", "1h", "day"]
REPORT_INTERVALS: tuple[ReportInterval, ...] = ("15m", "1h", "day")


@attrs.frozen
class Figure:
    name: str
    combine: Combine
    #: True for counts (stored and shown as integers), False for seconds.
    integer: bool


def _counts(*names: str) -> tuple[Figure, ...]:
    return tuple(Figure(n, "sum", True) for n in names)


def _seconds(*names: str) -> tuple[Figure, ...]:
    return tuple(Figure(n, "sum", False) for n in names)


#: Per agent (docs/reports.md, "Agents").
AGENT_FIGURES: tuple[Figure, ...] = (
    *_counts("acd_calls"),
    *_seconds("acd_talk_seconds"),
    *_counts("holds"),
    *_seconds("hold_seconds"),
    *_counts("wrap_ups"),
    *_seconds("wrap_up_seconds"),
    *_counts("personal_calls"),
    *_seconds("personal_seconds"),
    *_counts("outgoing_calls"),
    *_seconds("outgoing_seconds"),
    *_seconds("dnd_seconds", "make_busy_seconds"),
    *_counts("rang_unanswered"),
    *_seconds("logged_in_seconds"),
    # The logged-in time split by the board's state: each second in one.
    *_seconds(
        "state_on_call_seconds",
        "state_on_hold_seconds",
        "state_ringing_seconds",
        "state_not_ready_seconds",
        "state_wrap_up_seconds",
        "state_available_seconds",
    ),
)

#: Per path: the calls answered from it, and its queue as the Q records told it.
PATH_FIGURES: tuple[Figure, ...] = (
    *_counts("acd_calls"),
    *_seconds("acd_talk_seconds"),
    *_seconds("hold_seconds"),
    *_counts("reports"),
    Figure("max_waiting", "max", True),
    Figure("max_longest_wait_seconds", "max", True),
    # waiting x seconds, and the seconds covered by reports: their ratio is the
    # time-weighted mean number waiting, over any span of intervals.
    *_seconds("waiting_seconds", "covered_seconds"),
    # The agents' wrap-up after calls of the path (history schema version 2:
    # last, as the column was added to the tables).
    *_seconds("wrap_up_seconds"),
)

#: Per group: its queue as the K records told it.
GROUP_FIGURES: tuple[Figure, ...] = (
    *_counts("reports"),
    Figure("max_waiting", "max", True),
    Figure("max_longest_wait_seconds", "max", True),
    *_seconds("waiting_seconds", "covered_seconds"),
)

FIGURES: Mapping[RowKind, tuple[Figure, ...]] = {
    "agent": AGENT_FIGURES,
    "path": PATH_FIGURES,
    "group": GROUP_FIGURES,
}

#: Decimals of what is worked out from the figures (averages, means, percentages).
RATIO_DECIMALS = 3


def _amount(figures: Mapping[str, Any], name: str) -> float:
    value = figures.get(name)
    return float(value) if value else 0.0


def handling(kind: RowKind, figures: Mapping[str, Any]) -> dict[str, float | None]:
    """The handling figures worked out from a row's (or a day's) summed figures.

    ``average_handle_seconds`` (agents and paths): ACD talk, hold and wrap-up
    time per ACD call. ``occupancy_percent`` (agents): ACD talk, hold,
    wrap-up, personal and outgoing time over the time logged in and ready
    (logged in less DND and make busy), times 100. Each is None when what it
    divides by is 0 (to the millisecond, as the figures are kept) or less.
    Never stored: a span of intervals sums its figures first, then divides.
    """
    if kind == "group":
        return {}
    calls = _amount(figures, "acd_calls")
    handled = (
        _amount(figures, "acd_talk_seconds")
        + _amount(figures, "hold_seconds")
        + _amount(figures, "wrap_up_seconds")
    )
    found: dict[str, float | None] = {
        "average_handle_seconds": round(handled / calls, RATIO_DECIMALS) if calls > 0 else None
    }
    if kind == "agent":
        busy = handled + _amount(figures, "personal_seconds") + _amount(figures, "outgoing_seconds")
        ready = round(
            _amount(figures, "logged_in_seconds")
            - _amount(figures, "dnd_seconds")
            - _amount(figures, "make_busy_seconds"),
            3,
        )
        found["occupancy_percent"] = (
            round(busy / ready * 100, RATIO_DECIMALS) if ready > 0 else None
        )
    return found


#: Not-ready time by reason: the kind of not ready it is.
ReasonKind = Literal["dnd", "make_busy"]


@attrs.frozen
class IntervalRow:
    """One agent's, path's or group's figures over one interval (or part of one).

    A daemon that stops or starts inside an interval writes a row for the
    part it saw; rows for the same interval and id combine by each figure's
    rule.
    """

    kind: RowKind
    id: str
    #: The report day (``YYYY-MM-DD``): the local date at which it started,
    #: by ``--day-starts``.
    day: str
    #: Unix time the 15-minute interval starts at, and the hour it falls in
    #: (local time; both whole seconds).
    interval_start: int
    hour_start: int
    #: Every figure of :data:`FIGURES` for the kind, by name.
    figures: Mapping[str, int | float]
    #: Agents only: not-ready seconds by (kind, reason code; None when the PBX
    #: sent none).
    reasons: Mapping[tuple[ReasonKind, int | None], float] = attrs.field(factory=dict)


@attrs.frozen
class StateSpan:
    """An agent spent ``start`` to ``end`` in board state ``state``, then went to ``next_state``.

    ``code`` is the event that ended the span (a one-letter function code, or
    ``"day"`` when the report day ended it, ``"stop"`` when the daemon
    stopped). ``reason`` is the DND or make busy reason while not ready;
    ``path`` and ``button`` those of the ACD call while on one.
    """

    agent: str
    state: str
    next_state: str
    start: float
    end: float
    code: str
    reason: int | None = None
    path: str | None = None
    button: int | None = None


# --- SMDR figures of paths (state-model §8) ---------------------------------------------------

#: The counts of a path's SMDR interval, by the call's outcome (``offered`` counts every
#: call): stored, and summed over a bucket.
SMDR_COUNTS: tuple[str, ...] = (
    "offered",
    "answered",
    "abandoned",
    "short_abandoned",
    "interflowed",
    "requeued",
    "unavailable",
    "unclassified",
    "answered_within_target",
)

#: What a path's row shows of SMDR, in order: the JSON keys beside the ACD figures
#: (``provisional_figures`` too, JSON only) and the CSV and XLSX columns.
SMDR_FIELDS: tuple[str, ...] = (
    *SMDR_COUNTS,
    "time_to_answer_seconds",
    "service_level_seconds",
    "service_level_percent",
    "average_time_to_answer_seconds",
    "answered_difference",
    "open",
    "provisional",
)


@attrs.frozen
class SmdrIntervalRow:
    """One path's SMDR figures over one 15-minute interval, as the history keeps them.

    The stored form of a :class:`~mitelacd.reports.smdrcalls.PathInterval`:
    the counts and the sums that spans of intervals add up, not the ratios
    (worked out after summing, :func:`~mitelacd.reports.store.smdr_fields`);
    ``provisional`` is whether any figure rests on [verify] readings. An
    interval is revised while it is ``open``: a later row of the same
    source, path and interval replaces the earlier one.
    """

    path: str
    #: The report day (``YYYY-MM-DD``) and the interval's and its local hour's Unix starts.
    day: str
    interval_start: int
    hour_start: int
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
    #: Sum of the answered calls' times to answer.
    time_to_answer_seconds: int
    provisional: bool

    @classmethod
    def of(cls, interval: SmdrInterval, hour_start: int) -> SmdrIntervalRow:
        """``interval`` as the history keeps it; ``hour_start`` the local hour it is in."""
        return cls(
            path=interval.path,
            day=interval.day.isoformat(),
            interval_start=interval.start,
            hour_start=hour_start,
            open=interval.open,
            **{name: getattr(interval, name) for name in SMDR_COUNTS},
            service_level_seconds=interval.service_level_seconds,
            time_to_answer_seconds=interval.time_to_answer_seconds,
            provisional=bool(interval.provisional),
        )


class SmdrPart(Protocol):
    """What summing needs of one interval: a PathInterval and a SmdrIntervalRow both are one."""

    @property
    def open(self) -> bool: ...
    @property
    def offered(self) -> int: ...
    @property
    def answered(self) -> int: ...
    @property
    def abandoned(self) -> int: ...
    @property
    def short_abandoned(self) -> int: ...
    @property
    def interflowed(self) -> int: ...
    @property
    def requeued(self) -> int: ...
    @property
    def unavailable(self) -> int: ...
    @property
    def unclassified(self) -> int: ...
    @property
    def answered_within_target(self) -> int: ...
    @property
    def service_level_seconds(self) -> int: ...
    @property
    def time_to_answer_seconds(self) -> int: ...
    @property
    def provisional(self) -> object:
        """Truthy when provisional: the names (a PathInterval) or a flag (a stored row)."""


class SmdrInterval(SmdrPart, Protocol):
    """One path's interval as :class:`~mitelacd.reports.smdrcalls.SmdrDay` hands it over
    (a :class:`~mitelacd.reports.smdrcalls.PathInterval`)."""

    @property
    def path(self) -> str: ...
    @property
    def day(self) -> datetime.date: ...
    @property
    def start(self) -> int: ...


@attrs.frozen
class SmdrSums:
    """SMDR intervals summed: counts and times to answer add up, the target is the largest,
    and the sum is open (or provisional) when any of its intervals is."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    interflowed: int = 0
    requeued: int = 0
    unavailable: int = 0
    unclassified: int = 0
    answered_within_target: int = 0
    time_to_answer_seconds: int = 0
    service_level_seconds: int = 0
    open: bool = False
    provisional: bool = False

    @classmethod
    def of(cls, part: SmdrPart) -> SmdrSums:
        return cls(
            **{name: int(getattr(part, name)) for name in SMDR_COUNTS},
            time_to_answer_seconds=int(part.time_to_answer_seconds),
            service_level_seconds=int(part.service_level_seconds),
            open=bool(part.open),
            provisional=bool(part.provisional),
        )

    def __add__(self, other: SmdrSums) -> SmdrSums:
        return SmdrSums(
            **{name: getattr(self, name) + getattr(other, name) for name in SMDR_COUNTS},
            time_to_answer_seconds=self.time_to_answer_seconds + other.time_to_answer_seconds,
            service_level_seconds=max(self.service_level_seconds, other.service_level_seconds),
            open=self.open or other.open,
            provisional=self.provisional or other.provisional,
        )


def smdr_sums(parts: Iterable[SmdrPart]) -> SmdrSums | None:
    """The intervals summed; None when there are none (SMDR said nothing of them)."""
    total: SmdrSums | None = None
    for part in parts:
        sums = SmdrSums.of(part)
        total = sums if total is None else total + sums
    return total


def answered_difference(answered: int | None, acd_calls: int | float | None) -> int | None:
    """SMDR's answered less the ACD stream's calls of the same path and span; None without SMDR."""
    if answered is None:
        return None
    return int(answered - int(acd_calls or 0))
