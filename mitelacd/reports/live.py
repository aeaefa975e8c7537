"""The day's figures in the daemon: fed by the floor, ticked at interval ends, kept in history.

:class:`FiguresService` hangs a :class:`~mitelacd.reports.figures.DayFigures` on the
floor, wakes it at each interval's end (so that a quiet floor still closes
its intervals on time), hands what it closes to the history, and at stop
hands over the part of the interval seen. At start it adds today's figures
that an earlier run kept in the history, so that a restart at noon does not
start the day's counts again.

Paths also show the SMDR stream's figures (state-model §8) when the daemon
reads it: :attr:`FiguresService.smdr` holds the intervals in memory, which
today's view sums and which reports put in place of the stored ones.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from mitelacd import heap
from mitelacd.floor.render import id_key, iso_utc
from mitelacd.floor.state import FloorState
from mitelacd.logs import Logger
from mitelacd.reports.figures import DayFigures
from mitelacd.reports.rows import (
    FIGURES,
    IntervalRow,
    ReportInterval,
    RowKind,
    SmdrIntervalRow,
    StateSpan,
    answered_difference,
    smdr_sums,
)
from mitelacd.reports.smdrcalls import PathInterval
from mitelacd.reports.store import HistoryStore, derived, empty_row, smdr_fields
from mitelacd.reports.writer import HistoryService, HistoryUnavailable

log = Logger()

#: Reading today's rows of earlier runs waits this long between tries while
#: the history opens, and gives up after so many tries or rows held back.
SEED_RETRY = 2.0
SEED_TRIES = 150
SEED_HOLD_ROWS = 50_000
#: How long after an interval's end the figures close it (the clock's jitter).
TICK_LATE = 0.05


class SmdrFigures(Protocol):
    """The SMDR figures a daemon holds in memory, for today's view and the reports' live part."""

    def intervals(self, now: float) -> list[PathInterval]:
        """Every interval held: the open ones and today's closed ones, the freshest figures."""


class FiguresService(Service):
    """Keeps the day's figures live while the daemon runs."""

    def __init__(
        self,
        floor: FloorState,
        clock: IReactorTime,
        day_starts: datetime.time = datetime.time(0, 0),
        tz: datetime.tzinfo | None = None,
        history: HistoryService | None = None,
    ) -> None:
        self.floor = floor
        self.clock = clock
        self.history = history
        self.figures = DayFigures(day_starts, tz, sink=self._closed)
        #: The SMDR figures the daemon holds, when it reads SMDR (set once made).
        self.smdr: SmdrFigures | None = None
        self._tick: IDelayedCall | None = None
        self._seed_call: IDelayedCall | None = None
        self._seed_tries = 0
        #: What the figures closed while today's rows of earlier runs are read.
        self._held: list[tuple[Sequence[IntervalRow], Sequence[StateSpan]]] | None = None
        #: Fires once today's figures from the history are in (at once without one).
        self.seeded: Deferred[None] = Deferred()
        if history is not None:
            # Should the history take its source over from another daemon, what
            # this one counted of the interval under way until then is not its.
            history.under_way = self.under_way

    def startService(self) -> None:
        super().startService()
        figures = self.figures
        figures.advance(self.floor.timeline.now())
        self.floor.addListener(figures)
        self._schedule()
        if self.history is None or figures.day is None:
            self._release()
            return
        self._held = []
        self._seed_tries = 0
        self._try_seed()

    def _try_seed(self) -> None:
        """Read today's rows of earlier runs, once the history is open.

        Until then what the figures close is held back, so that the rows
        read are never this run's own.
        """
        self._seed_call = None
        history, day = self.history, self.figures.day
        assert history is not None and day is not None
        source, when = history.source, day.isoformat()
        self._seed_tries += 1
        history.query(lambda store: store.day_rows(source, when)).addCallbacks(
            self._seed, self._not_seeded
        )

    def _seed(self, rows: list[IntervalRow]) -> None:
        taken = self.history.source_taken if self.history is not None else None
        if taken is not None:
            # The rows are another daemon's, which counts what this one counts.
            log.warn("today's figures start from now: {why}", why=taken.problem)
            self._release()
            return
        self.figures.seed(rows)
        if rows:
            log.info(
                "today's figures go on from {rows} interval rows kept by an earlier run",
                rows=len(rows),
            )
        self._release()

    def _not_seeded(self, failure: Failure) -> None:
        if not self.running:
            return
        held = len(self._held or ())
        if (
            failure.check(HistoryUnavailable)
            and self._seed_tries < SEED_TRIES
            and held < SEED_HOLD_ROWS
        ):
            self._seed_call = self.clock.callLater(SEED_RETRY, self._try_seed)
            return
        log.warn(
            "today's figures start from now: the history could not be read ({why})",
            why=failure.getErrorMessage(),
        )
        self._release()

    def _release(self) -> None:
        held, self._held = self._held, None
        if held and self.history is not None:
            for intervals, spans in held:
                self.history.add(intervals, spans)
        if not self.seeded.called:
            self.seeded.callback(None)

    def stopService(self) -> Any:
        for call in (self._tick, self._seed_call):
            if call is not None and call.active():
                call.cancel()
        self._tick = self._seed_call = None
        if self.running:
            self.floor.removeListener(self.figures)
            self.figures.finish(self.floor.timeline.now())
            self._release()
        return super().stopService()

    def _schedule(self) -> None:
        end = self.figures.interval_end
        delay = max(0.0, end - self.floor.timeline.now()) + TICK_LATE
        self._tick = self.clock.callLater(delay, self._wake)

    def _wake(self) -> None:
        self._tick = None
        self.figures.advance(self.floor.timeline.now())
        self._schedule()

    def under_way(self) -> tuple[float, list[IntervalRow]]:
        """The interval under way as rows counted up to now, and now."""
        now = self.floor.timeline.now()
        return now, self.figures.current_rows(now) if self.running else []

    def held_rows(self) -> int:
        """Rows closed while today's rows of earlier runs are read, not yet handed over."""
        return sum(len(intervals) + len(spans) for intervals, spans in self._held or ())

    def _closed(self, intervals: Sequence[IntervalRow], spans: Sequence[StateSpan]) -> None:
        if self._held is not None:
            self._held.append((intervals, spans))
        elif self.history is not None:
            self.history.add(intervals, spans)  # which gives the memory back once written
        elif len(intervals) + len(spans) >= heap.LARGE_BATCH_ROWS:
            # The rows of a large floor's interval, made and dropped: their memory goes back.
            self.clock.callLater(0, heap.give_back)

    # Views ------------------------------------------------------------------

    async def report(
        self,
        first: datetime.date,
        last: datetime.date,
        by: RowKind,
        interval: ReportInterval,
    ) -> list[dict[str, Any]]:
        """This daemon's rows of the history for those days, with the interval under way.

        Rows queued for the history are written first; the interval under
        way is added from memory. Should an interval end while the history
        is read, its rows may or may not have been read with it: the report
        is read again.
        """
        history = self.history
        if history is None:
            raise HistoryUnavailable("this daemon keeps no history")
        source = history.source
        for _ in range(3):
            await history.flushed()
            figures = self.figures
            now = self.floor.timeline.now()
            live = figures.current_rows(now)
            live_smdr = self._smdr_rows(now) if by == "path" else []
            under_way = figures.interval_start
            stored = await history.query(_report_of(by, first, last, interval, source, live_smdr))
            if figures.interval_start == under_way:
                break
        return combine_live(stored, live, by, interval, first, last)

    def _smdr_intervals(self, now: float) -> list[PathInterval]:
        return [] if self.smdr is None else self.smdr.intervals(now)

    def _smdr_rows(self, now: float) -> list[SmdrIntervalRow]:
        """The SMDR intervals held in memory, as the history keeps them."""
        hours = self.figures.days
        return [
            SmdrIntervalRow.of(part, hours.hour_start(part.start))
            for part in self._smdr_intervals(now)
        ]

    def today(self, kind: RowKind, interval: bool = False) -> dict[str, Any]:
        """``/api/v1/reports/today/<kind>s``: the day's (or the interval's) figures by id."""
        now = self.floor.timeline.now()
        figures = self.figures
        rows = figures.today(kind, now, interval)
        if kind == "path":
            rows = self._with_smdr(rows, now, interval)
        names = self.floor.names
        for row in rows:
            if kind == "agent":
                entry = names.agent(row["id"])
                row["name"] = entry.name if entry else None
            else:
                table = names.paths if kind == "path" else names.groups
                row["name"] = table.get(row["id"])
        day = figures.day
        doc: dict[str, Any] = {
            "day": day.isoformat() if day else None,
            "day_start": iso_utc(figures.day_start),
            "as_of": iso_utc(now),
        }
        if interval:
            doc["interval_start"] = iso_utc(figures.interval_start)
            doc["interval_end"] = iso_utc(min(figures.interval_end, now + 900))
        doc[kind + "s"] = rows
        return doc

    def _with_smdr(
        self, rows: list[dict[str, Any]], now: float, interval: bool
    ) -> list[dict[str, Any]]:
        """Today's (or the interval's) path rows with their SMDR fields; a path that only
        SMDR has seen gets a row of its own."""
        figures = self.figures
        day, start = figures.day, figures.interval_start
        parts: dict[str, list[PathInterval]] = {}
        for part in self._smdr_intervals(now):
            if (part.start == start) if interval else (part.day == day):
                parts.setdefault(part.path, []).append(part)
        found = {row["id"]: row for row in rows}
        for path in parts:
            if path not in found:
                found[path] = _no_acd_today(path)
        for path, row in found.items():
            row.update(smdr_fields(smdr_sums(parts.get(path, ())), row["acd_calls"]))
        return [found[path] for path in sorted(found, key=id_key)]


def combine_live(
    stored: list[dict[str, Any]],
    live: Sequence[IntervalRow],
    by: RowKind,
    interval: ReportInterval,
    first: datetime.date,
    last: datetime.date,
) -> list[dict[str, Any]]:
    """Report rows from the history, with the interval under way added in.

    Rows of the same id and bucket combine by each figure's rule; what
    follows from the figures (averages, means, SMDR's ``answered_difference``)
    is worked out again. A path row made here has SMDR fields of none.
    """
    figures = FIGURES[by]
    rows = {_bucket_key(row["id"], row["day"], row["start"], interval): row for row in stored}
    for part in live:
        if part.kind != by or not first.isoformat() <= part.day <= last.isoformat():
            continue
        start = part.hour_start if interval == "1h" else part.interval_start
        key = _bucket_key(part.id, part.day, start, interval)
        row = rows.get(key)
        if row is None:
            row = rows[key] = empty_row(by, part.id, part.day, start)
        row["start"] = min(row["start"], start)
        for f in figures:
            value = part.figures.get(f.name, 0)
            had = row.get(f.name) or 0
            if f.combine == "max":
                row[f.name] = max(had, value)
            elif f.integer:
                row[f.name] = int(had + value)
            else:
                row[f.name] = round(had + value, 3)
        if by == "agent" and part.reasons:
            for kind in ("dnd", "make_busy"):
                listed = {e["reason"]: e["seconds"] for e in row.get(f"{kind}_by_reason", [])}
                for (k, reason), seconds in part.reasons.items():
                    if k == kind:
                        listed[reason] = round(listed.get(reason, 0.0) + seconds, 3)
                row[f"{kind}_by_reason"] = [
                    {"reason": r, "seconds": listed[r]}
                    for r in sorted(listed, key=lambda r: (r is None, r or 0))
                ]
        row.update(derived(by, row))
    if by == "path":
        for row in rows.values():
            if "answered" not in row:
                row.update(smdr_fields(None, row["acd_calls"]))
            else:
                row["answered_difference"] = answered_difference(row["answered"], row["acd_calls"])
    return sorted(rows.values(), key=lambda r: (r["start"], id_key(r["id"])))


def _report_of(
    by: RowKind,
    first: datetime.date,
    last: datetime.date,
    interval: ReportInterval,
    source: str,
    live_smdr: Sequence[SmdrIntervalRow],
) -> Callable[[HistoryStore], list[dict[str, Any]]]:
    """What reads the stored report in a thread of the history."""
    return lambda store: store.report(
        by, first.isoformat(), last.isoformat(), interval, source=source, live_smdr=live_smdr
    )


def _no_acd_today(path: str) -> dict[str, Any]:
    """Today's row of a path the ACD stream has not named: its figures 0."""
    row: dict[str, Any] = {"id": path}
    row.update({f.name: 0 if f.integer else 0.0 for f in FIGURES["path"]})
    row.update(acd_talk_average_seconds=None, average_handle_seconds=None, mean_waiting=None)
    row["max_waiting_at"] = None
    return row


def _bucket_key(ident: str, day: str, start: int, interval: ReportInterval) -> tuple[str, str, int]:
    return (ident, day, 0 if interval == "day" else start)
