"""Writing the history database from the daemon, without ever making the feed wait for it.

:class:`HistoryService` takes rows on the reactor's thread (:meth:`~HistoryService.add`
only appends them to a queue) and writes them in a thread of its own, at most
once per ``flush_interval``, everything queued in one transaction. A database
that is down, full or locked is survived as the data file's writer survives a
full disk: what is wrong is logged once, writing is tried again after a pause
that doubles from 1 s to 60 s, and once it works again that is logged once,
with how long it failed and how many attempts it took. Meanwhile rows wait in
memory, up to ``max_backlog``; past that the oldest are dropped and counted.

A batch whose write failed is tried again as it was, before anything newer:
if its commit went through although the database never said so (the link
broke just then), the batch's mark in ``mitelacd_writes`` tells, and it is
not written twice.

A batch the database refuses because of a row in it (a value too large for
its column: :func:`~mitelacd.reports.store.data_error`) is written without that row
(:meth:`~mitelacd.reports.store.HistoryStore.write_apart`): the row is set aside,
counted and named in the log, the others are written.

The SMDR stream's lines and per-path intervals (:meth:`~HistoryService.add_smdr`)
go the same way, in the same queue and batches: counted, bounded, written in
order (a revised interval replaces the one kept), spilled at stop.

A SQLite file deleted or replaced while open is noticed before the next write
(the file at the path is no longer the one open): said once, and a new one is
made there. Rows still waiting at stop are saved to ``spill_path`` and written
at the next start.

One daemon writes a source (:meth:`~mitelacd.reports.store.HistoryStore.claim`).
A service refused the source, because another daemon writes it, says so once
and writes nothing; the rows it is handed meanwhile are the other daemon's
too, and are counted and let go (``skipped_rows``). It asks for the source
again every ``lock_retry_delay`` and takes it over once the other daemon has
let it go: from then on it writes what follows the takeover only (the
interval under way less what ``under_way`` counted of it before, the state
spans from the takeover on), so that nothing is counted twice.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime
import json
import os
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, TypeVar

import attrs
from sqlalchemy.exc import SQLAlchemyError
from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorFromThreads, IReactorTime
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from mitelacd import heap
from mitelacd.disk import duration_words
from mitelacd.floor.days import DayClock
from mitelacd.floor.render import iso_utc
from mitelacd.floor.smdr import SmdrLine
from mitelacd.logs import Logger, Throttle
from mitelacd.reports.rows import (
    FIGURES,
    INTERVAL_SECONDS,
    ROW_KINDS,
    SMDR_COUNTS,
    IntervalRow,
    SmdrIntervalRow,
    StateSpan,
)
from mitelacd.reports.smdrcalls import PathInterval
from mitelacd.reports.store import (
    HistoryError,
    HistoryFileReplaced,
    HistoryRow,
    HistoryStore,
    Refused,
    SourceTaken,
    data_error,
    error_detail,
    problem_kind,
    redact,
    split_rows,
)

log = Logger()

T = TypeVar("T")

#: The first and the longest pause before trying a failing database again, in seconds.
FIRST_RETRY_DELAY: Final = 1.0
MAX_RETRY_DELAY: Final = 60.0

#: The most rows one transaction writes; more wait for the next, at once.
MAX_BATCH_ROWS: Final = 20_000

#: How long stopping waits for the last write, in seconds.
STOP_TIMEOUT: Final = 10.0

#: How often old days are pruned, in seconds.
PRUNE_EVERY: Final = 24 * 3600.0

#: How many rows the database refused are kept to look at (the newest).
MAX_SET_ASIDE: Final = 100

#: The spill file's name is the data file's (``--file``) with this added.
SPILL_SUFFIX: Final = ".history-spill.jsonl"

#: How often a service refused its source asks for it again, in seconds (a takeover
#: loses at most this long: see :class:`_Takeover`).
LOCK_RETRY_DELAY: Final = 5.0

#: How often the writer of a source says so in ``mitelacd_writers``, in seconds.
HEARTBEAT_EVERY: Final = 30.0

#: What the first line of a spill file says it is. Version 2 has SMDR rows, which
#: version 1 cannot hold; a file without any is written as version 1.
SPILL_FORMAT: Final = "mitelacd-history-spill"
SPILL_VERSION: Final = 2
#: The versions of spill files read.
SPILL_VERSIONS: Final = (1, 2)

Row = HistoryRow

#: What counts as the database failing (tried again), rather than a bug in a batch.
_DATABASE_TROUBLE = (SQLAlchemyError, HistoryError, OSError)


class HistoryUnavailable(Exception):
    """The history database cannot be read just now; the message says why."""


class _DaemonThread(threading.Thread):
    """A thread that cannot keep the process alive when a database call in it hangs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.daemon = True


class _DaemonThreadPool(ThreadPool):
    threadFactory = _DaemonThread


@attrs.define
class _Batch:
    """Rows written in one transaction, under a mark that says later whether it went through."""

    rows: list[Row]
    #: The ``source`` its rows are written with.
    source: str
    token: str = attrs.field(factory=lambda: uuid.uuid4().hex)
    #: Marks that, found as the source's last in ``mitelacd_writes``, say that
    #: the first so many rows are written already: a write of this batch failed
    #: without an answer (its own mark), or it was saved at a stop after one.
    written_if: dict[str, int] = attrs.field(factory=dict)
    #: Read from the spill file at start: the file goes once it is written.
    spilled: bool = False

    def trim(self, count: int) -> None:
        """Forget the first ``count`` rows (the oldest)."""
        del self.rows[:count]
        self.written_if = {t: n - count for t, n in self.written_if.items() if n > count}


@attrs.frozen
class _Outcome:
    """What a batch's write did: whether a transaction committed, and the rows refused."""

    transaction: bool
    refused: list[Refused] = attrs.field(factory=list)


@attrs.frozen
class SetAside:
    """A row the database refused: kept to look at, never written."""

    row: Row
    #: What the database or the driver said.
    problem: str
    #: When, by the service's clock.
    at: float


#: How long after a takeover rows may still begin before it, in seconds: state
#: spans are cut at each report day's start (a day of 25 hours at most).
_TAKEOVER_ENDS: Final = 2 * 24 * 3600.0

#: The interval under way as the figures counted it so far, keyed for :class:`_Takeover`.
_Counted = dict[tuple[str, str, int], IntervalRow]


@attrs.define
class _Takeover:
    """The source was taken over at ``at``: what of the rows handed over after is this service's.

    The daemon that wrote the source before wrote, up to its stop, a row for
    the part of the interval under way that it saw, and every state span
    then under way cut at its stop. Of the interval under way at the
    takeover this service writes what it counted after it: its row less
    what ``counted`` held at ``at`` (sums less the sums then; peaks as they
    are, since reports take the largest). When what was counted then is not
    known (``counted`` None), the rows of that interval are let go. A state
    span under way at the takeover is written from ``at`` on. What happened
    between the other daemon's stop and the takeover (at most the pause
    between two asks for the lock) is in neither: nothing is counted twice.
    """

    at: float
    counted: _Counted | None

    def after(
        self, intervals: Sequence[IntervalRow], spans: Sequence[StateSpan]
    ) -> tuple[list[IntervalRow], list[StateSpan]]:
        """The rows, or the part of each, that follow the takeover."""
        at, counted = self.at, self.counted
        kept: list[IntervalRow] = []
        for row in intervals:
            if row.interval_start >= at:
                kept.append(row)
                continue
            if row.interval_start + INTERVAL_SECONDS <= at or counted is None:
                continue
            before = counted.get((row.kind, row.id, row.interval_start))
            rest = row if before is None else _less(row, before)
            if rest is not None:
                kept.append(rest)
        cut: list[StateSpan] = []
        for span in spans:
            if span.end <= at:
                continue
            cut.append(span if span.start >= at else attrs.evolve(span, start=at))
        return kept, cut

    def smdr_after(self, lines: Sequence[SmdrLine]) -> list[SmdrLine]:
        """The SMDR lines received from the takeover on: those before are the other daemon's.

        SMDR intervals are not cut: each replaces the one kept, with the
        figures as this daemon has them.
        """
        return [line for line in lines if line.received_at >= self.at]


def _less(row: IntervalRow, before: IntervalRow) -> IntervalRow | None:
    """What ``row`` counted beyond ``before`` (an earlier count of the same interval and id).

    Sums less the sums of ``before`` (never below 0), peaks as they are;
    None when nothing is left.
    """
    figures: dict[str, int | float] = {}
    for figure in FIGURES[row.kind]:
        value = row.figures.get(figure.name, 0)
        if figure.combine == "sum":
            value = max(value - before.figures.get(figure.name, 0), 0)
        figures[figure.name] = int(value) if figure.integer else round(float(value), 3)
    reasons = {}
    for key, seconds in row.reasons.items():
        left = round(seconds - before.reasons.get(key, 0.0), 3)
        if left > 0:
            reasons[key] = left
    if not any(figures.values()) and not reasons:
        return None
    return attrs.evolve(row, figures=figures, reasons=reasons)


def _before(rows: Sequence[Row], since: float) -> tuple[list[Row], list[int]]:
    """The rows, or the part of each, from before ``since``; and where each was in ``rows``.

    For rows waiting when another daemon turns out to have taken the source
    at ``since``: an interval row of an interval that ends after it may
    count time the other daemon counts too, and is let go; a state span
    running past it is cut there. An SMDR line received from ``since`` on
    is the other daemon's; an SMDR interval still open is let go, as the
    other daemon writes it revised (a closed one is final: the same whoever
    writes it).
    """
    kept: list[Row] = []
    where: list[int] = []
    for n, row in enumerate(rows):
        if isinstance(row, IntervalRow):
            if row.interval_start + INTERVAL_SECONDS > since:
                continue
        elif isinstance(row, SmdrLine):
            if row.received_at >= since:
                continue
        elif isinstance(row, SmdrIntervalRow):
            if row.open:
                continue
        elif row.start >= since:
            continue
        elif row.end > since:
            row = attrs.evolve(row, end=since)
        kept.append(row)
        where.append(n)
    return kept, where


def _write_batch(store: HistoryStore, batch: _Batch) -> _Outcome:
    """In the thread: write what of ``batch`` is not written already.

    A batch the database refuses because of some of its rows is written
    without them (:meth:`HistoryStore.write_apart`); they come back in the
    outcome.
    """
    rows = batch.rows
    if batch.written_if:
        last = store.last_batch(batch.source)
        done = batch.written_if.get(last, 0) if last is not None else 0
        if done >= len(rows):
            return _Outcome(False)
        rows = rows[done:]
    intervals, spans, lines, smdr = split_rows(rows)
    try:
        store.write(
            batch.source,
            intervals,
            spans,
            batch=batch.token,
            smdr_lines=lines,
            smdr_intervals=smdr,
        )
    except Exception as e:
        if not data_error(e):
            raise
        return _Outcome(True, store.write_apart(batch.source, rows, batch=batch.token))
    return _Outcome(True)


def describe(row: Row) -> str:
    """A row in words, for a log line: whose, and when."""
    if isinstance(row, IntervalRow):
        return (
            f"the {row.kind} {row.id!r} row of the interval from"
            f" {_when(row.interval_start)} (day {row.day})"
        )
    if isinstance(row, SmdrLine):
        return (
            f"the SMDR line received at {_when(row.received_at)} (layout {row.layout!r}):"
            f" {row.text!r}"
        )
    if isinstance(row, SmdrIntervalRow):
        return (
            f"the SMDR figures of path {row.path!r} in the interval from"
            f" {_when(row.interval_start)} (day {row.day})"
        )
    return (
        f"the state span of agent {row.agent!r} from {_when(row.start)} to"
        f" {_when(row.end)} ({row.state} to {row.next_state}, code {row.code!r},"
        f" reason {row.reason!r}, path {row.path!r}, button {row.button!r})"
    )


def _when(value: float) -> str:
    """A time of a row as UTC, or as it is when it is none (the row may be the fault)."""
    try:
        return iso_utc(value) or repr(value)
    except (OverflowError, ValueError, OSError, TypeError):
        return repr(value)


# --- the spill file ----------------------------------------------------------------------------


def row_to_json(row: Row) -> dict[str, Any]:
    """A row as a JSON object that :func:`row_from_json` makes the same row from."""
    if isinstance(row, IntervalRow):
        return {
            "row": "interval",
            "kind": row.kind,
            "id": row.id,
            "day": row.day,
            "interval_start": row.interval_start,
            "hour_start": row.hour_start,
            "figures": dict(row.figures),
            "reasons": [[kind, reason, seconds] for (kind, reason), seconds in row.reasons.items()],
        }
    if isinstance(row, SmdrLine):
        return {
            "row": "smdr_line",
            "received_at": row.received_at,
            "layout": row.layout,
            "text": row.text,
        }
    if isinstance(row, SmdrIntervalRow):
        return {"row": "smdr_interval", **attrs.asdict(row)}
    return {
        "row": "span",
        "agent": row.agent,
        "state": row.state,
        "next_state": row.next_state,
        "start": row.start,
        "end": row.end,
        "code": row.code,
        "reason": row.reason,
        "path": row.path,
        "button": row.button,
    }


def row_from_json(found: dict[str, Any]) -> Row:
    """The row :func:`row_to_json` made ``found`` of; ValueError when it is not one."""
    what = found.get("row")
    if what == "interval":
        kind = found["kind"]
        if kind not in ROW_KINDS:
            raise ValueError(f"not a row kind: {kind!r}")
        reasons: dict[Any, float] = {}
        for reason_kind, reason, seconds in found["reasons"]:
            if reason_kind not in ("dnd", "make_busy"):
                raise ValueError(f"not a reason kind: {reason_kind!r}")
            reasons[(reason_kind, None if reason is None else int(reason))] = seconds
        figures = found["figures"]
        if not isinstance(figures, dict):
            raise ValueError("figures are not an object")
        return IntervalRow(
            kind=kind,
            id=str(found["id"]),
            day=str(found["day"]),
            interval_start=int(found["interval_start"]),
            hour_start=int(found["hour_start"]),
            figures=figures,
            reasons=reasons,
        )
    if what == "span":
        return StateSpan(
            agent=str(found["agent"]),
            state=str(found["state"]),
            next_state=str(found["next_state"]),
            start=found["start"],
            end=found["end"],
            code=str(found["code"]),
            reason=found["reason"],
            path=found["path"],
            button=found["button"],
        )
    if what == "smdr_line":
        return SmdrLine(float(found["received_at"]), str(found["text"]), str(found["layout"]))
    if what == "smdr_interval":
        return SmdrIntervalRow(
            path=str(found["path"]),
            day=str(found["day"]),
            interval_start=int(found["interval_start"]),
            hour_start=int(found["hour_start"]),
            open=bool(found["open"]),
            **{name: int(found[name]) for name in SMDR_COUNTS},
            service_level_seconds=int(found["service_level_seconds"]),
            time_to_answer_seconds=int(found["time_to_answer_seconds"]),
            provisional=bool(found["provisional"]),
        )
    raise ValueError(f"not a history row: {what!r}")


def write_spill(path: str, batches: Sequence[_Batch], url: str, saved_at: float) -> int:
    """Save the batches at ``path`` (replacing it whole or not at all); how many rows.

    One JSON object a line: what the file is, then each batch's head (its
    mark, source and ``written_if``) followed by its rows.
    """
    rows = sum(len(b.rows) for b in batches)
    smdr = any(isinstance(r, (SmdrLine, SmdrIntervalRow)) for b in batches for r in b.rows)
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temporary, "w", encoding="utf-8") as out:
            head = {
                "format": SPILL_FORMAT,
                "version": SPILL_VERSION if smdr else 1,
                "url": url,
                "saved_at": iso_utc(saved_at),
                "batches": len(batches),
                "rows": rows,
            }
            out.write(json.dumps(head) + "\n")
            for batch in batches:
                out.write(
                    json.dumps(
                        {
                            "batch": batch.token,
                            "source": batch.source,
                            "written_if": batch.written_if,
                            "rows": len(batch.rows),
                        }
                    )
                    + "\n"
                )
                for row in batch.rows:
                    out.write(json.dumps(row_to_json(row)) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    return rows


def read_spill(path: str) -> list[_Batch]:
    """The batches saved at ``path``; ValueError (or OSError) when it cannot be read as one."""
    with open(path, encoding="utf-8") as lines:

        def line() -> Any:
            text = next(lines, None)
            if text is None:
                raise ValueError("the file ends before its last row")
            return json.loads(text)

        head = line()
        if not isinstance(head, dict) or head.get("format") != SPILL_FORMAT:
            raise ValueError("not a history spill file")
        if head.get("version") not in SPILL_VERSIONS:
            raise ValueError(f"spill file version {head.get('version')!r} is not understood")
        batches: list[_Batch] = []
        for _ in range(int(head["batches"])):
            found = line()
            written_if = {str(t): int(n) for t, n in dict(found["written_if"]).items()}
            rows = [row_from_json(line()) for _ in range(int(found["rows"]))]
            batches.append(_Batch(rows, str(found["source"]), str(found["batch"]), written_if))
        if next(lines, None) is not None:
            raise ValueError("more lines than its batches hold")
    return batches


class HistoryService(Service):
    """Rows of the day's figures and agent state spans, written to the history database.

    ``store_factory`` opens the store; it is called, and the schema
    migrated, in the writing thread at start, and again until it works.
    ``reactor`` delivers the threads' results; ``clock`` times the flushes,
    retries and the daily pruning of days older than ``keep_days`` (today
    included), by ``day_starts`` in local time (or ``tz``). ``spill_path``:
    where rows not written at stop are saved, and read back at start (None:
    they are lost). ``held``: how many rows others hold back for the history
    (counted in :attr:`backlog`). ``give_back``: called once a batch of
    :data:`~mitelacd.heap.LARGE_BATCH_ROWS` rows or more is written and let go.

    The service writes ``source`` only while it holds the source's lock
    (:meth:`~mitelacd.reports.store.HistoryStore.claim`, taken as the store
    opens, and said again every ``heartbeat_every``). Refused it, the store
    is open for reading all the same; the lock is asked for again every
    ``lock_retry_delay``. ``under_way`` tells, at a takeover, the time and
    the interval under way as counted so far (the day's figures set it:
    :meth:`~mitelacd.reports.live.FiguresService.under_way`).
    """

    def __init__(
        self,
        store_factory: Callable[[], HistoryStore],
        source: str,
        clock: IReactorTime,
        reactor: IReactorFromThreads,
        keep_days: int = 400,
        flush_interval: float = 1.0,
        max_backlog: int = 200_000,
        *,
        url: str = "",
        day_starts: datetime.time = datetime.time(0),
        tz: datetime.tzinfo | None = None,
        first_retry_delay: float = FIRST_RETRY_DELAY,
        max_retry_delay: float = MAX_RETRY_DELAY,
        max_batch_rows: int = MAX_BATCH_ROWS,
        stop_timeout: float = STOP_TIMEOUT,
        spill_path: str | None = None,
        held: Callable[[], int] | None = None,
        give_back: Callable[[], object] = heap.give_back,
        lock_retry_delay: float = LOCK_RETRY_DELAY,
        heartbeat_every: float = HEARTBEAT_EVERY,
        under_way: Callable[[], tuple[float, Sequence[IntervalRow]]] | None = None,
    ) -> None:
        if keep_days < 1:
            raise ValueError("keep_days must be 1 or more")
        self.store_factory = store_factory
        self.source = source
        self.keep_days = keep_days
        self.flush_interval = flush_interval
        self.max_backlog = max_backlog
        self.url = redact(url) if url else "the history database"
        self.day_starts = day_starts
        self.tz = tz
        #: The local hour of an SMDR interval, as the figures' rows have it.
        self._hours = DayClock(day_starts, tz)
        self.first_retry_delay = first_retry_delay
        self.max_retry_delay = max_retry_delay
        self.max_batch_rows = max_batch_rows
        self.stop_timeout = stop_timeout
        self.spill_path = spill_path
        #: Rows held back for the history elsewhere (the figures hold what they
        #: close until today's rows of an earlier run are read).
        self.held = held
        #: Called after a large batch is written: the memory it held goes
        #: back to the system (:mod:`mitelacd.heap`).
        self.give_back = give_back
        self._clock = clock
        self._reactor = reactor
        self._store: HistoryStore | None = None
        self._queue: deque[Row] = deque()
        #: Batches tried again, in order, before anything newer: one whose
        #: write failed, and those read from the spill file.
        self._pending: deque[_Batch] = deque()
        #: The operation in the writing thread, if any, and the batch it writes.
        self._busy: Deferred[None] | None = None
        self._busy_rows = 0
        self._busy_batch: _Batch | None = None
        self._call: IDelayedCall | None = None
        self._prune_call: IDelayedCall | None = None
        self._prune_due = True
        self._stopping = False
        # Failing: since when, how many attempts, what kind, the next pause.
        self._failing_since: float | None = None
        self._failed_attempts = 0
        self._problem: str | None = None
        self._delay = first_retry_delay
        self._dropped_since_logged = 0
        self._drop_log = Throttle(clock, burst=1, interval=60.0)
        # Rows lost (refused, or a batch that could not be written) since when
        # the last clean write, and why.
        self._losing_since: float | None = None
        self._losing_problem: str | None = None
        self._refused_since_logged = 0
        self._unwritable_since_logged = 0
        self._refusal_log = Throttle(clock, burst=5, interval=60.0)
        #: The newest rows the database refused.
        self.set_aside: deque[SetAside] = deque(maxlen=MAX_SET_ASIDE)
        # The SQLite file was deleted or replaced: since when (until a new one is open).
        self._replaced_since: float | None = None
        self._replaced_log = Throttle(clock, burst=1, interval=60.0)
        # The spill file read at start: its batches not written yet.
        self._spill_left = 0
        self._spill_mark = 0
        # Why the write at stop failed.
        self._stop_error: BaseException | None = None
        self._writer = _DaemonThreadPool(1, 1, name="mitelacd-history-write")
        self._reader = _DaemonThreadPool(0, 2, name="mitelacd-history-read")
        #: Counters, since start.
        self.written_rows = 0
        self.dropped_rows = 0
        self.refused_rows = 0
        self.spilled_rows = 0
        self.write_failures = 0
        self.transactions = 0
        self.pruned_rows = 0
        self.files_replaced = 0
        self.skipped_rows = 0
        self.last_write_at: float | None = None
        # Another daemon writes the source: who, and since when (None while this one does).
        self.lock_retry_delay = lock_retry_delay
        self.heartbeat_every = heartbeat_every
        #: The figures of the interval under way, and the time they are counted to:
        #: asked at a takeover of the source (:class:`_Takeover`).
        self.under_way = under_way
        self._taken: SourceTaken | None = None
        self._taken_since: float | None = None
        self._taken_said: tuple[str, int, float] | None = None
        self._skipped_before = 0
        self._takeover: _Takeover | None = None
        self._lock_seen: object | None = None
        self._heartbeat_call: IDelayedCall | None = None
        self._heartbeat_due = False
        # Rows ever added, and rows since written or dropped (in the order added).
        self._added = 0
        self._settled = 0
        self._waiters: list[tuple[int, Deferred[None]]] = []

    # --- what the daemon calls -------------------------------------------------------------

    def add(self, intervals: Sequence[IntervalRow], spans: Sequence[StateSpan]) -> None:
        """Queue rows for the next write; returns at once, whatever the database is doing.

        While another daemon writes the source, rows are counted
        (``skipped_rows``) and let go: that daemon writes the same.
        """
        if self._taken is not None:
            self.skipped_rows += len(intervals) + len(spans)
            return
        takeover = self._takeover
        if takeover is not None:
            given = len(intervals) + len(spans)
            intervals, spans = takeover.after(intervals, spans)
            self.skipped_rows += given - len(intervals) - len(spans)
            if intervals and intervals[-1].interval_start >= takeover.at + _TAKEOVER_ENDS:
                # Past the next day's start, which cut every span: nothing left to cut.
                self._takeover = None
        self._enqueue(intervals, spans)

    def add_smdr(self, lines: Sequence[SmdrLine], intervals: Sequence[PathInterval]) -> None:
        """Queue SMDR lines as received and path intervals for the next write, as :meth:`add`.

        Each interval replaces, once written, the one kept of this source,
        path and interval (an open interval is handed over again as it is
        revised). While another daemon writes the source, both are counted
        (``skipped_rows``) and let go; after a takeover, lines received
        before it are (the other daemon wrote them).
        """
        if self._taken is not None:
            self.skipped_rows += len(lines) + len(intervals)
            return
        takeover = self._takeover
        if takeover is not None:
            given = len(lines)
            lines = takeover.smdr_after(lines)
            self.skipped_rows += given - len(lines)
        hours = self._hours
        rows = [SmdrIntervalRow.of(i, hours.hour_start(i.start)) for i in intervals]
        self._enqueue(lines, rows)

    def _enqueue(self, *parts: Sequence[Row]) -> None:
        queue = self._queue
        for rows in parts:
            queue.extend(rows)
            self._added += len(rows)
        if self._waiting() > self.max_backlog:
            self._drop()
        if self._call is None and self._busy is None and self.running and not self._stopping:
            self._schedule(self.flush_interval)

    def _waiting(self) -> int:
        """The rows this service holds and has not written."""
        pending = sum(len(b.rows) for b in self._pending) if self._pending else 0
        return len(self._queue) + pending + self._busy_rows

    @property
    def backlog(self) -> int:
        """Rows not written yet (queued, waiting to be tried again, being written, held back)."""
        held = self.held() if self.held is not None else 0
        return self._waiting() + held

    @property
    def source_taken(self) -> SourceTaken | None:
        """Another daemon writes the source (who, as it said): this one writes nothing meanwhile."""
        return self._taken

    @property
    def ok(self) -> bool:
        """The history is written: the database is open, writes work and take every row."""
        return (
            self._store is not None
            and self._taken is None
            and self._failed_attempts == 0
            and self._losing_since is None
            and self._replaced_since is None
        )

    def _trouble(self) -> tuple[str | None, float | None]:
        """What keeps the history from being written whole, and since when."""
        if self._problem is not None:
            return self._problem, self._failing_since
        if self._taken is not None:
            return self._taken.problem, self._taken_since
        if self._replaced_since is not None:
            return "the database file was deleted or replaced", self._replaced_since
        if self._losing_since is not None:
            return self._losing_problem, self._losing_since
        if self._store is None:
            return "not open yet", None
        return None, None

    def health(self) -> dict[str, Any]:
        """The database's state for ``/api/v1/feed``, ``/healthz`` and ``/metrics``."""
        problem, since = self._trouble()
        last = self.set_aside[-1] if self.set_aside else None
        return {
            "url": self.url,
            "ok": self.ok,
            "backlog": self.backlog,
            "written_rows": self.written_rows,
            "dropped_rows": self.dropped_rows,
            "refused_rows": self.refused_rows,
            "skipped_rows": self.skipped_rows,
            "write_failures": self.write_failures,
            "failing_since": iso_utc(since),
            "problem": problem,
            "last_write_at": iso_utc(self.last_write_at),
            "last_refused": None
            if last is None
            else {"row": describe(last.row), "problem": last.problem, "at": iso_utc(last.at)},
        }

    def flushed(self) -> Deferred[None]:
        """Fires once the rows added so far are written (at once when none wait).

        Writing starts now rather than at the next interval. It also fires
        when a write fails, the service stops or another daemon writes the
        source: a reader is not held up by a database that is down, it reads
        what is there.
        """
        if self._settled >= self._added or self._taken is not None:
            return defer.succeed(None)
        waiter: Deferred[None] = Deferred()
        self._waiters.append((self._added, waiter))
        if self._busy is None and self.running and not self._stopping and not self._failed_attempts:
            self._schedule(0)
        return waiter

    def _settle(self, rows: int) -> None:
        self._settled += rows
        if self._waiters:
            self._release(lambda target: target <= self._settled)

    def _release(self, which: Callable[[int], bool]) -> None:
        ready = [w for w in self._waiters if which(w[0])]
        if not ready:
            return
        self._waiters = [w for w in self._waiters if not which(w[0])]
        for _, waiter in ready:
            waiter.callback(None)

    def query(self, fn: Callable[[HistoryStore], T]) -> Deferred[T]:
        """Run ``fn(store)`` in a reading thread; HistoryUnavailable when the store is not open.

        While the rows saved at the last stop are being written, the query
        waits for them (unless writing fails): today's figures read at start
        then count them. Reading needs no lock: it works while another
        daemon writes the source.
        """
        store = self._store
        if store is None or not self._reader.started:
            why = self._trouble()[0] or "it is not open yet"
            return defer.fail(HistoryUnavailable(f"{self.url} cannot be read: {why}"))
        if (
            self._spill_left
            and not self._failed_attempts
            and self._taken is None
            and not self._stopping
            and self._settled < self._spill_mark
        ):
            waiter: Deferred[None] = Deferred()
            self._waiters.append((self._spill_mark, waiter))
            return waiter.addCallback(lambda _: self.query(fn))
        return deferToThreadPool(self._reactor, self._reader, fn, store)

    # --- service -----------------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._stopping = False
        self._writer.start()
        self._reader.start()
        log.info(
            "history: the day's figures and agent states go to {url}, kept {days} days",
            url=self.url,
            days=self.keep_days,
        )
        self._load_spill()
        self._schedule(0)

    def stopService(self) -> Deferred[None]:
        super().stopService()
        self._stopping = True
        self._cancel()
        for call in (self._prune_call, self._heartbeat_call):
            if call is not None and call.active():
                call.cancel()
        self._prune_call = self._heartbeat_call = None
        done = Deferred.fromCoroutine(self._finish())
        done.addTimeout(self.stop_timeout, self._clock)
        return done.addBoth(self._stopped)

    async def _finish(self) -> None:
        """Let the write under way end, then write what is left, once."""
        busy = self._busy
        if busy is not None:
            # A Deferred of its own: a timeout cancels the wait, not the write.
            ended: Deferred[None] = Deferred()
            busy.addBoth(lambda result: _fire(ended, result))
            await ended
        batches = list(self._pending)
        self._pending.clear()
        if self._queue:
            batches.append(_Batch(self._take(len(self._queue)), self.source))
        replaced = False
        while batches:
            batch = batches.pop(0)
            self._busy_batch = batch
            self._busy_rows = len(batch.rows)
            try:
                outcome = await deferToThreadPool(
                    self._reactor, self._writer, self._final_write, batch
                )
            except defer.CancelledError:
                self._pending.extend(batches)
                raise
            except Exception as e:
                self._busy_batch = None
                self._busy_rows = 0
                if isinstance(e, HistoryFileReplaced) and not replaced:
                    # Once: a new file is made at the path by the next try.
                    replaced = True
                    self._store = None
                    self._noticed_replaced()
                    batches.insert(0, batch)
                    continue
                # It may have been committed without an answer.
                batch.written_if[batch.token] = len(batch.rows)
                self._pending.append(batch)
                self._pending.extend(batches)
                self._stop_error = e
                return
            self._busy_batch = None
            self._busy_rows = 0
            self._written(batch, outcome)
        store = self._store
        if store is not None and store.source_lock is not None:
            # The source is free for another daemon, and mitelacd_writers says so.
            with contextlib.suppress(*_DATABASE_TROUBLE):
                await deferToThreadPool(self._reactor, self._writer, store.release_source)

    def _final_write(self, batch: _Batch) -> _Outcome:
        store = self._store
        if store is not None and store.replaced():
            store.close()
            raise HistoryFileReplaced(f"{store.url.path} was deleted or replaced")
        if store is None:
            store, taken = self._open()
            self._store = store
            if taken is not None:
                raise taken
        # A store refused its source asks once more here: the write needs the lock.
        return _write_batch(store, batch)

    def _stopped(self, result: object) -> None:
        self._release(lambda target: True)
        timed_out = isinstance(result, Failure)
        left = self._leftovers(include_busy=timed_out)
        rows = sum(len(b.rows) for b in left)
        saved, outcome = False, ""
        if rows:
            saved, outcome = self._spill(left, rows)
        if timed_out:
            log.error(
                "stopping: the last write to {url} did not end within {timeout} s;"
                " {rows} rows of history are not written{outcome}",
                url=self.url,
                timeout=_number(self.stop_timeout),
                rows=rows,
                outcome=outcome,
            )
            # A thread stuck in the database is left behind (it cannot keep
            # the process alive); joining it would hang the reactor.
            return
        if rows:
            error = self._stop_error
            problem = self._kind(error) if error is not None else "not written"
            emit = log.warn if saved else log.error
            emit(
                "stopping with {rows} rows of history not written to {url}: {problem}"
                " ({error}){outcome}",
                rows=rows,
                url=self.url,
                problem=problem,
                error=error_detail(error) if error is not None else "stopped",
                outcome=outcome,
            )
        store, self._store = self._store, None
        self._writer.stop()
        self._reader.stop()
        if store is not None:
            store.close()

    def _leftovers(self, include_busy: bool) -> list[_Batch]:
        """What was not written, oldest first, as batches that keep their marks."""
        left: list[_Batch] = []
        busy = self._busy_batch
        if include_busy and busy is not None and busy.rows:
            # Still in the database's hands: it may yet be committed.
            busy.written_if[busy.token] = len(busy.rows)
            left.append(busy)
        left.extend(b for b in self._pending if b.rows)
        if self._queue:
            left.append(_Batch(list(self._queue), self.source))
        return left

    def _spill(self, batches: list[_Batch], rows: int) -> tuple[bool, str]:
        """Save what was not written to the spill file: whether it was, and how to say so."""
        path = self.spill_path
        if path is None:
            self.dropped_rows += rows
            return False, "; they are lost"
        try:
            write_spill(path, batches, self.url, self._clock.seconds())
        except (OSError, ValueError, TypeError) as e:
            self.dropped_rows += rows
            return False, f"; they could not be saved in {path} ({e}) and are lost"
        self.spilled_rows += rows
        self._spill_left = 0
        return True, f"; saved in {path}, to be written at the next start"

    def _load_spill(self) -> None:
        """Put the rows saved at the last stop before anything else, to be written first."""
        path = self.spill_path
        if path is None or not os.path.exists(path):
            return
        try:
            batches = [b for b in read_spill(path) if b.rows]
        except (OSError, ValueError, KeyError, TypeError) as e:
            aside = path + ".unreadable"
            try:
                os.replace(path, aside)
            except OSError:
                aside = path
            log.error(
                "history: the rows saved in {path} at the last stop cannot be read ({error});"
                " the file is left as {aside} and its rows are not written",
                path=path,
                error=f"{type(e).__name__}: {e}",
                aside=aside,
            )
            return
        if not batches:
            self._forget_spill()
            return
        # Any of them found as the last mark written says this one was written
        # before it (they are written in order).
        for n, batch in enumerate(batches):
            batch.spilled = True
            for later in batches[n:]:
                batch.written_if[later.token] = len(batch.rows)
        rows = sum(len(b.rows) for b in batches)
        self._pending.extend(batches)
        self._added += rows
        self._spill_left = len(batches)
        self._spill_mark = self._added
        log.info(
            "history: {rows} rows saved in {path} at the last stop are written to {url} first",
            rows=rows,
            path=path,
            url=self.url,
        )

    def _spill_settled(self) -> None:
        """A batch of the spill file is written, or dropped: the file goes with the last."""
        self._spill_left -= 1
        if self._spill_left <= 0:
            self._spill_left = 0
            self._forget_spill()

    def _forget_spill(self) -> None:
        path = self.spill_path
        if path is None:
            return
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            log.error(
                "history: the rows of {path} are written, but the file cannot be removed"
                " ({error}); remove it before the next start, or they are written again",
                path=path,
                error=e.strerror or str(e),
            )

    # --- the writing loop --------------------------------------------------------------------

    def _schedule(self, delay: float) -> None:
        if self._call is not None and self._call.active():
            if self._call.getTime() <= self._clock.seconds() + delay:
                return
            self._call.cancel()
        self._call = self._clock.callLater(delay, self._next)

    def _cancel(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _next(self) -> None:
        """Start the next thing to do in the writing thread, if there is one."""
        self._call = None
        if self._busy is not None or self._stopping or not self.running:
            return
        if self._store is None:
            self._run(self._open, self._opened)
        elif self._taken is not None:
            self._run(self._claim, self._claimed)
        elif self._prune_due:
            self._prune_due = False
            self._run(self._prune_old, self._pruned)
        elif self._heartbeat_due:
            self._heartbeat_due = False
            self._run(self._heartbeat, self._beaten)
        elif self._pending:
            self._write(self._pending.popleft())
        elif self._queue:
            rows = self._take(self.max_batch_rows)
            self._write(_Batch(rows, self.source))

    def _take(self, most: int) -> list[Row]:
        queue = self._queue
        if len(queue) <= most:
            rows = list(queue)
            queue.clear()
            return rows
        return [queue.popleft() for _ in range(most)]

    def _run(self, work: Callable[[], Any], done: Callable[[Any], None], rows: int = 0) -> None:
        self._busy_rows = rows
        busy: Deferred[Any] = deferToThreadPool(self._reactor, self._writer, work)
        self._busy = busy.addCallbacks(done, self._failed)
        self._busy.addBoth(self._idle)

    def _idle(self, _: object) -> None:
        self._busy = None
        self._busy_rows = 0
        self._busy_batch = None
        if self._stopping or not self.running:
            return
        if self._failed_attempts:
            self._schedule(self._delay)
        elif self._taken is not None:
            self._schedule(self.lock_retry_delay)
        elif (
            self._store is None
            or self._prune_due
            or self._heartbeat_due
            or self._pending
            or len(self._queue) > self.max_batch_rows
        ):
            self._schedule(0)
        elif self._queue:
            self._schedule(self.flush_interval)

    def _open(self) -> tuple[HistoryStore, SourceTaken | None]:
        """In the thread: open the store, bring its schema up to date and claim the source.

        The store is open (for reading) even when another daemon writes the
        source: that comes back beside it.
        """
        store = self.store_factory()
        try:
            store.migrate()
            taken = self._claim_with(store)
        except BaseException:
            store.close()
            raise
        return store, taken

    def _claim_with(self, store: HistoryStore) -> SourceTaken | None:
        try:
            store.claim(self.source)
        except SourceTaken as e:
            return e
        return None

    def _claim(self) -> SourceTaken | None:
        """In the thread: ask for the source again."""
        store = self._store
        assert store is not None
        return self._claim_with(store)

    def _opened(self, opened: tuple[HistoryStore, SourceTaken | None]) -> None:
        store, taken = opened
        self._store = store
        if taken is not None:
            self._refused_source(taken)
        else:
            self._writing_source(store)
        if self._replaced_since is not None:
            self._replaced_since = None
            log.info(
                "history: a new database file is made at {path}; the history goes on in it",
                path=store.url.path or self.url,
            )
        self._recovered()
        if self._prune_call is None:
            self._prune_call = self._clock.callLater(PRUNE_EVERY, self._prune_time)

    # --- one writer per source ---------------------------------------------------------------

    def _writing_source(self, store: HistoryStore) -> None:
        """This service holds the source's lock: it says so every ``heartbeat_every``."""
        self._lock_seen = store.source_lock
        if self._heartbeat_call is None:
            self._heartbeat_call = self._clock.callLater(self.heartbeat_every, self._heartbeat_time)

    def _heartbeat_time(self) -> None:
        self._heartbeat_call = self._clock.callLater(self.heartbeat_every, self._heartbeat_time)
        if self._taken is not None:
            return
        self._heartbeat_due = True
        if self._busy is None and self._failed_attempts == 0:
            self._schedule(0)

    def _heartbeat(self) -> None:
        store = self._store
        assert store is not None
        store.heartbeat()

    def _beaten(self, _: None) -> None:
        self._recovered()

    def _retaken(self) -> None:
        """Say so when the lock was lost with its connection and taken again on the way."""
        store = self._store
        if store is None or self._taken is not None or self._lock_seen is None:
            return
        lock = store.source_lock
        if lock is None or lock is self._lock_seen:
            return
        self._lock_seen = lock
        log.warn(
            "history: the connection that held history source {source!r} at {url} was lost;"
            " the source is taken again and this daemon goes on writing it",
            source=self.source,
            url=self.url,
        )

    def _refused_source(self, taken: SourceTaken) -> None:
        """Another daemon writes the source: write nothing of it, say so, ask again later.

        Rows waiting that may count time the other daemon counts too (after
        it took the source) are let go; those of the spill file, from the
        last run, stay to be written once the source is this daemon's again.
        """
        first = self._taken is None
        self._taken = taken
        self._takeover = None
        self._lock_seen = None
        holder = taken.writer
        if first:
            self._taken_since = self._clock.seconds()
            self._skipped_before = self.skipped_rows
            since = holder.started_at if holder is not None else self._clock.seconds()
            self._let_go_from(since)
            self._release(lambda target: True)
        said = (holder.host, holder.pid, holder.started_at) if holder is not None else None
        # The database answered: whatever failed before is over.
        self._recovered()
        if first or said != self._taken_said:
            self._taken_said = said
            log.error(
                "{taken}: this daemon writes nothing of it to {url} meanwhile (that daemon"
                " writes the same rows) and takes the source over when that daemon stops;"
                " daemons that watch different PBXs need a --history-source each",
                taken=str(taken),
                url=self.url,
            )

    def _let_go_from(self, since: float) -> None:
        """Let go of the rows waiting from ``since`` on (counted in ``skipped_rows``)."""
        skipped = 0
        for batch in list(self._pending):
            if batch.spilled:
                continue  # the last run's
            kept, where = _before(batch.rows, since)
            gone = len(batch.rows) - len(kept)
            if gone:
                # Its marks count the rows kept: a batch that went through after
                # all went through whole, so what is kept of it is written.
                batch.written_if = {
                    t: bisect.bisect_left(where, n) for t, n in batch.written_if.items()
                }
                batch.rows = kept
                skipped += gone
            if not batch.rows:
                self._pending.remove(batch)
        if self._queue:
            rows = list(self._queue)
            kept, _ = _before(rows, since)
            self._queue = deque(kept)
            skipped += len(rows) - len(kept)
        if skipped:
            self.skipped_rows += skipped
            self._settle(skipped)

    def _claimed(self, taken: SourceTaken | None) -> None:
        if taken is not None:
            self._refused_source(taken)
            return
        store = self._store
        assert store is not None
        before = self._taken
        since = self._taken_since
        # What the figures counted of the interval under way: theirs, not this daemon's.
        # Asked before writing resumes: an interval it closes is let go with the others.
        counted: _Counted | None = None
        now = at = self._clock.seconds()
        if self.under_way is not None:
            at, rows = self.under_way()
            counted = {(r.kind, r.id, r.interval_start): r for r in rows}
        self._taken = None
        self._taken_since = None
        self._taken_said = None
        self._takeover = _Takeover(at, counted)
        self._recovered()
        self._writing_source(store)
        log.info(
            "history: this daemon now writes history source {source!r} to {url}, taken over"
            " from {before} after {duration}; {skipped} rows were let go meanwhile as that"
            " daemon's",
            source=self.source,
            url=self.url,
            before=_holder(before),
            duration=duration_words(now - (now if since is None else since)),
            skipped=self.skipped_rows - self._skipped_before,
        )
        self._schedule(0)

    def _prune_time(self) -> None:
        self._prune_call = self._clock.callLater(PRUNE_EVERY, self._prune_time)
        self._prune_due = True
        if self._busy is None and self._failed_attempts == 0:
            self._schedule(0)

    def prune_before(self) -> str:
        """The first report day kept: today (by ``day_starts``) less ``keep_days`` - 1."""
        now = datetime.datetime.fromtimestamp(self._clock.seconds(), self.tz)
        starts = datetime.timedelta(hours=self.day_starts.hour, minutes=self.day_starts.minute)
        today = (now - starts).date()
        return (today - datetime.timedelta(days=self.keep_days - 1)).isoformat()

    def _prune_old(self) -> tuple[str, int]:
        store = self._store
        assert store is not None
        before = self.prune_before()
        return before, store.prune(before, self.day_starts, self.tz)

    def _pruned(self, result: tuple[str, int]) -> None:
        before, rows = result
        self.pruned_rows += rows
        self._recovered()
        if rows:
            log.info(
                "history: {rows} rows of the days before {day} pruned from {url}",
                rows=rows,
                day=before,
                url=self.url,
            )

    def _write(self, batch: _Batch) -> None:
        self._busy_batch = batch
        self._run(
            lambda: self._write_in_thread(batch),
            lambda outcome: self._written(batch, outcome),
            rows=len(batch.rows),
        )

    def _write_in_thread(self, batch: _Batch) -> _Outcome:
        store = self._store
        assert store is not None
        try:
            if store.replaced():
                # What would be written now would go where nobody reads it.
                store.close()
                raise HistoryFileReplaced(f"{store.url.path} was deleted or replaced")
            return _write_batch(store, batch)
        except BaseException as e:
            raise _BatchFailed(batch, e) from e

    def _written(self, batch: _Batch, outcome: _Outcome) -> None:
        refused = outcome.refused
        self.transactions += int(outcome.transaction)
        self.written_rows += len(batch.rows) - len(refused)
        self.last_write_at = self._clock.seconds()
        self._recovered()
        if refused:
            self._refused(refused)
        elif batch.rows:
            self._losses_over()
        if batch.spilled:
            self._spill_settled()
        self._settle(len(batch.rows))
        if len(batch.rows) >= heap.LARGE_BATCH_ROWS:
            # Once the batch is let go: its rows, and what the thread made of them.
            self._clock.callLater(0, self.give_back)

    # --- rows the database refuses -----------------------------------------------------------

    def _refused(self, refused: Iterable[Refused]) -> None:
        """Set the rows aside, count them, and name them in the log (a few a minute)."""
        now = self._clock.seconds()
        for item in refused:
            self.refused_rows += 1
            self._refused_since_logged += 1
            self.set_aside.append(SetAside(item.row, item.problem, now))
            self._losing(f"rows refused by the database ({item.problem})")
            allowed, held = self._refusal_log.allow()
            if allowed:
                log.error(
                    "history: {url} refused {row}: {problem}; the row is set aside and not"
                    " written, the rest of its batch is{held}",
                    url=self.url,
                    row=describe(item.row),
                    problem=item.problem,
                    held=f" ({held} more rows were refused meanwhile)" if held else "",
                )

    def _losing(self, problem: str) -> None:
        """Rows are lost: the history is not ``ok`` until a batch is written whole."""
        if self._losing_since is None:
            self._losing_since = self._clock.seconds()
        self._losing_problem = problem

    def _losses_over(self) -> None:
        if self._losing_since is None:
            return
        lost = []
        if self._refused_since_logged:
            lost.append(f"{self._refused_since_logged} rows were refused and set aside")
        if self._unwritable_since_logged:
            lost.append(
                f"{self._unwritable_since_logged} rows of batches that could not be written"
                " were dropped"
            )
        log.info(
            "history: {url} takes every row again; {lost} over {duration}",
            url=self.url,
            lost=" and ".join(lost) or "nothing was lost",
            duration=duration_words(self._clock.seconds() - self._losing_since),
        )
        self._losing_since = None
        self._losing_problem = None
        self._refused_since_logged = 0
        self._unwritable_since_logged = 0

    # --- failing -----------------------------------------------------------------------------

    def _failed(self, failure: Failure) -> None:
        error = failure.value
        assert error is not None
        batch: _Batch | None = None
        if isinstance(error, _BatchFailed):
            batch, error = error.batch, error.error
        if isinstance(error, SourceTaken):
            # The lock went with its connection, and another daemon has the source now.
            if batch is not None:
                self._pending.appendleft(batch)
            self._refused_source(error)
            return
        if isinstance(error, HistoryFileReplaced):
            # Closed in the thread; the next step opens a new file at the path.
            self._store = None
            if batch is not None:
                self._pending.appendleft(batch)
            self._noticed_replaced()
            return
        if not isinstance(error, _DATABASE_TROUBLE) and data_error(error):
            # Not the database, nor a row (those are set aside as they are
            # written): a batch that can never be written. Say so, and go on.
            self._losing(f"a batch could not be written ({error_detail(error)})")
            if batch is not None:
                self.dropped_rows += len(batch.rows)
                self._unwritable_since_logged += len(batch.rows)
                self._settle(len(batch.rows))
                if batch.spilled:
                    self._spill_settled()
            log.failure(
                "history: a batch of {rows} rows cannot be written and is dropped",
                Failure(error),
                rows=len(batch.rows) if batch else 0,
            )
            return
        if batch is not None:
            batch.written_if[batch.token] = len(batch.rows)
            self._pending.appendleft(batch)
            self._bound()
        self.write_failures += 1
        self._failed_attempts += 1
        self._release(lambda target: True)
        now = self._clock.seconds()
        if self._failed_attempts == 1:
            self._failing_since = now
            self._delay = self.first_retry_delay
        else:
            self._delay = min(self._delay * 2, self.max_retry_delay)
        problem = self._kind(error)
        if problem != self._problem:
            self._problem = problem
            log.error(
                "cannot write the history to {url}: {problem} ({error}); rows wait in memory"
                " (up to {bound}) and writing is tried again, at most {max_delay} s apart",
                url=self.url,
                problem=problem,
                error=error_detail(error),
                bound=self.max_backlog,
                max_delay=_number(self.max_retry_delay),
            )

    def _noticed_replaced(self) -> None:
        self.files_replaced += 1
        if self._replaced_since is None:
            self._replaced_since = self._clock.seconds()
        allowed, held = self._replaced_log.allow()
        if allowed:
            log.warn(
                "history: the database file of {url} was deleted or replaced while open;"
                " what it held is gone with it. A new one is made at the same path and the"
                " rows not yet written go there{held}",
                url=self.url,
                held=f" ({held} more times since the last line)" if held else "",
            )

    def _kind(self, error: BaseException) -> str:
        if isinstance(error, SourceTaken):
            return error.problem
        return problem_kind(error)

    def _recovered(self) -> None:
        self._retaken()
        attempts = self._failed_attempts
        if not attempts:
            return
        since = self._failing_since if self._failing_since is not None else self._clock.seconds()
        lasted = self._clock.seconds() - since
        if self._dropped_since_logged:
            lost = f"{self._dropped_since_logged} rows were dropped"
        else:
            lost = "nothing was lost"
        if self._taken is None:
            log.info(
                "the history is written to {url} again, after {attempts} failed {noun}"
                " over {duration}; {lost}",
                url=self.url,
                attempts=attempts,
                noun="attempt" if attempts == 1 else "attempts",
                failed_attempts=attempts,
                duration=duration_words(lasted),
                lost=lost,
            )
        self._failed_attempts = 0
        self._failing_since = None
        self._problem = None
        self._delay = self.first_retry_delay
        self._dropped_since_logged = 0

    def _drop(self) -> None:
        """Drop the oldest rows waiting until at most ``max_backlog`` do."""
        excess = self._waiting() - self.max_backlog
        dropped = 0
        pending = self._pending
        while excess > 0 and pending:
            batch = pending[0]
            n = min(excess, len(batch.rows))
            batch.trim(n)
            dropped += n
            excess -= n
            if not batch.rows:
                pending.popleft()
                if batch.spilled:
                    self._spill_settled()
        queue = self._queue
        while excess > 0 and queue:
            queue.popleft()
            dropped += 1
            excess -= 1
        if not dropped:
            return
        self.dropped_rows += dropped
        self._settle(dropped)
        self._dropped_since_logged += dropped
        allowed, _held = self._drop_log.allow()
        if allowed:
            log.warn(
                "the history cannot be written to {url} and over {bound} rows wait:"
                " dropping the oldest ({dropped} rows so far)",
                url=self.url,
                bound=self.max_backlog,
                dropped=self.dropped_rows,
            )

    def _bound(self) -> None:
        if self._waiting() > self.max_backlog:
            self._drop()


def _holder(taken: SourceTaken | None) -> str:
    writer = taken.writer if taken is not None else None
    if writer is None:
        return "the daemon that wrote it"
    return f"mitelacd on host {writer.host}, pid {writer.pid}"


def _fire(waiter: Deferred[None], result: T) -> T:
    if not waiter.called:
        waiter.callback(None)
    return result


class _BatchFailed(Exception):
    """A batch's write failed; which batch, and why."""

    def __init__(self, batch: _Batch, error: BaseException) -> None:
        super().__init__(str(error))
        self.batch = batch
        self.error = error


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else format(value, "g")
