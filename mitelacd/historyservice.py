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
"""

from __future__ import annotations

import datetime
import threading
import uuid
from collections import deque
from collections.abc import Callable, Sequence
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

from mitelacd.history import HistoryError, HistoryStore, error_detail, problem_kind, redact
from mitelacd.logs import Logger
from mitelacd.persist import duration_words
from mitelacd.reportrows import IntervalRow, StateSpan
from mitelacd.state import Throttle, iso_utc

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

Row = IntervalRow | StateSpan

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
    token: str = attrs.field(factory=lambda: uuid.uuid4().hex)
    #: A write of it failed: it may have been committed all the same.
    doubtful: bool = False


def _split(rows: Sequence[Row]) -> tuple[list[IntervalRow], list[StateSpan]]:
    intervals = [r for r in rows if isinstance(r, IntervalRow)]
    spans = [r for r in rows if isinstance(r, StateSpan)]
    return intervals, spans


def _write_batch(store: HistoryStore, source: str, batch: _Batch) -> bool:
    """In the thread: write ``batch`` unless it already is; whether it was written now."""
    if batch.doubtful and store.last_batch(source) == batch.token:
        return False
    intervals, spans = _split(batch.rows)
    store.write(source, intervals, spans, batch=batch.token)
    return True


class HistoryService(Service):
    """Rows of the day's figures and agent state spans, written to the history database.

    ``store_factory`` opens the store; it is called, and the schema
    migrated, in the writing thread at start, and again until it works.
    ``reactor`` delivers the threads' results; ``clock`` times the flushes,
    retries and the daily pruning of days older than ``keep_days`` (today
    included), by ``day_starts`` in local time (or ``tz``).
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
        self.first_retry_delay = first_retry_delay
        self.max_retry_delay = max_retry_delay
        self.max_batch_rows = max_batch_rows
        self.stop_timeout = stop_timeout
        self._clock = clock
        self._reactor = reactor
        self._store: HistoryStore | None = None
        self._queue: deque[Row] = deque()
        #: A batch whose write failed, tried again before anything newer.
        self._doubtful: _Batch | None = None
        #: The operation in the writing thread, if any.
        self._busy: Deferred[None] | None = None
        self._busy_rows = 0
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
        self._writer = _DaemonThreadPool(1, 1, name="mitelacd-history-write")
        self._reader = _DaemonThreadPool(0, 2, name="mitelacd-history-read")
        #: Counters, since start.
        self.written_rows = 0
        self.dropped_rows = 0
        self.write_failures = 0
        self.transactions = 0
        self.pruned_rows = 0
        self.last_write_at: float | None = None
        # Rows ever added, and rows since written or dropped (in the order added).
        self._added = 0
        self._settled = 0
        self._waiters: list[tuple[int, Deferred[None]]] = []

    # --- what the daemon calls -------------------------------------------------------------

    def add(self, intervals: Sequence[IntervalRow], spans: Sequence[StateSpan]) -> None:
        """Queue rows for the next write; returns at once, whatever the database is doing."""
        queue = self._queue
        queue.extend(intervals)
        queue.extend(spans)
        self._added += len(intervals) + len(spans)
        if self.backlog > self.max_backlog:
            self._drop()
        if self._call is None and self._busy is None and self.running and not self._stopping:
            self._schedule(self.flush_interval)

    @property
    def backlog(self) -> int:
        """Rows not written yet (queued, waiting to be tried again, being written)."""
        doubtful = self._doubtful
        return len(self._queue) + (len(doubtful.rows) if doubtful else 0) + self._busy_rows

    @property
    def ok(self) -> bool:
        return self._store is not None and self._failed_attempts == 0

    def health(self) -> dict[str, Any]:
        """The database's state for ``/api/v1/feed`` and ``/metrics``."""
        return {
            "url": self.url,
            "ok": self.ok,
            "backlog": self.backlog,
            "written_rows": self.written_rows,
            "dropped_rows": self.dropped_rows,
            "write_failures": self.write_failures,
            "failing_since": iso_utc(self._failing_since),
            "problem": self._problem,
            "last_write_at": iso_utc(self.last_write_at),
        }

    def flushed(self) -> Deferred[None]:
        """Fires once the rows added so far are written (at once when none wait).

        Writing starts now rather than at the next interval. It also fires
        when a write fails or the service stops: a reader is not held up by
        a database that is down, it reads what is there.
        """
        if self._settled >= self._added:
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
        """Run ``fn(store)`` in a reading thread; HistoryUnavailable when the store is not open."""
        store = self._store
        if store is None or not self._reader.started:
            why = self._problem or "it is not open yet"
            return defer.fail(HistoryUnavailable(f"{self.url} cannot be read: {why}"))
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
        self._schedule(0)

    def stopService(self) -> Deferred[None]:
        super().stopService()
        self._stopping = True
        self._cancel()
        if self._prune_call is not None and self._prune_call.active():
            self._prune_call.cancel()
        self._prune_call = None
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
        batches: list[_Batch] = []
        if self._doubtful is not None:
            batches.append(self._doubtful)
            self._doubtful = None
        if self._queue:
            batches.append(_Batch(self._take(len(self._queue))))
        while batches:
            batch = batches.pop(0)
            self._busy_rows = len(batch.rows)
            try:
                written = await deferToThreadPool(
                    self._reactor, self._writer, self._final_write, batch
                )
            except defer.CancelledError:
                self._left(batches)
                raise
            except Exception as e:
                self._busy_rows = 0
                self._doubtful = batch
                self._left(batches)
                log.error(
                    "stopping with {rows} rows of history not written to {url}:"
                    " {problem} ({error})",
                    rows=self.backlog,
                    url=self.url,
                    problem=self._kind(e),
                    error=error_detail(e),
                )
                return
            self._busy_rows = 0
            self._written(batch, written)

    def _left(self, batches: list[_Batch]) -> None:
        for batch in batches:
            self._queue.extend(batch.rows)

    def _final_write(self, batch: _Batch) -> bool:
        store = self._store
        if store is None:
            store = self._store = self._open()
        return _write_batch(store, self.source, batch)

    def _stopped(self, result: object) -> None:
        self._release(lambda target: True)
        if isinstance(result, Failure):
            left = self.backlog
            log.error(
                "stopping: the last write to {url} did not end within {timeout} s;"
                " {rows} rows of history are not written",
                url=self.url,
                timeout=_number(self.stop_timeout),
                rows=left,
            )
            # A thread stuck in the database is left behind (it cannot keep
            # the process alive); joining it would hang the reactor.
            return
        store, self._store = self._store, None
        self._writer.stop()
        self._reader.stop()
        if store is not None:
            store.close()

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
        elif self._prune_due:
            self._prune_due = False
            self._run(self._prune_old, self._pruned)
        elif self._doubtful is not None:
            self._write(self._doubtful)
        elif self._queue:
            rows = self._take(self.max_batch_rows)
            self._write(_Batch(rows))

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
        if self._stopping or not self.running:
            return
        if self._failed_attempts:
            self._schedule(self._delay)
        elif (
            self._prune_due or self._doubtful is not None or len(self._queue) > self.max_batch_rows
        ):
            self._schedule(0)
        elif self._queue:
            self._schedule(self.flush_interval)

    def _open(self) -> HistoryStore:
        """In the thread: open the store and bring its schema up to date."""
        store = self.store_factory()
        try:
            store.migrate()
        except BaseException:
            store.close()
            raise
        return store

    def _opened(self, store: HistoryStore) -> None:
        self._store = store
        self._recovered()
        if self._prune_call is None:
            self._prune_call = self._clock.callLater(PRUNE_EVERY, self._prune_time)

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
        if batch is self._doubtful:
            self._doubtful = None
        self._run(
            lambda: self._write_in_thread(batch),
            lambda written: self._written(batch, written),
            rows=len(batch.rows),
        )

    def _write_in_thread(self, batch: _Batch) -> bool:
        store = self._store
        assert store is not None
        try:
            return _write_batch(store, self.source, batch)
        except BaseException as e:
            raise _BatchFailed(batch, e) from e

    def _written(self, batch: _Batch, written: bool) -> None:
        self.transactions += int(written)
        self.written_rows += len(batch.rows)
        self.last_write_at = self._clock.seconds()
        self._recovered()
        self._settle(len(batch.rows))

    # --- failing -----------------------------------------------------------------------------

    def _failed(self, failure: Failure) -> None:
        error = failure.value
        batch: _Batch | None = None
        if isinstance(error, _BatchFailed):
            batch, error = error.batch, error.error
        if not isinstance(error, _DATABASE_TROUBLE):
            # Not the database: a batch that can never be written. Say so, and go on.
            if batch is not None:
                self.dropped_rows += len(batch.rows)
                self._settle(len(batch.rows))
            log.failure(
                "history: a batch of {rows} rows cannot be written and is dropped",
                Failure(error),
                rows=len(batch.rows) if batch else 0,
            )
            return
        if batch is not None:
            batch.doubtful = True
            self._doubtful = batch
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

    def _kind(self, error: BaseException) -> str:
        return problem_kind(error)

    def _recovered(self) -> None:
        attempts = self._failed_attempts
        if not attempts:
            return
        since = self._failing_since if self._failing_since is not None else self._clock.seconds()
        lasted = self._clock.seconds() - since
        if self._dropped_since_logged:
            lost = f"{self._dropped_since_logged} rows were dropped"
        else:
            lost = "nothing was lost"
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
        excess = self.backlog - self.max_backlog
        dropped = 0
        doubtful = self._doubtful
        if doubtful is not None and excess > 0:
            n = min(excess, len(doubtful.rows))
            del doubtful.rows[:n]
            dropped += n
            excess -= n
            if not doubtful.rows:
                self._doubtful = None
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
        if self.backlog > self.max_backlog:
            self._drop()


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
