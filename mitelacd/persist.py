"""The legacy ``mitel_data.json`` file: read once at start, replaced atomically after.

Display boards poll the file, so a reader must only ever see a whole
document, the old one or the new one. A file that cannot be written (disk
full, folder gone, permissions) must not take the daemon down with it: the
last good file stays, HTTP keeps serving, and the writer retries with a
growing pause, saying once what is wrong and once when it is over.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from twisted.application.service import Service
from twisted.internet.interfaces import IReactorTime
from twisted.python.filepath import FilePath
from zope.interface import implementer

from mitelacd.disk import (
    SYSTEM,
    FailingWrites,
    FileLock,
    SystemCalls,
    duration_words,
    option_number,
    replace_file,
)
from mitelacd.floor.changes import ChangeSet, IFloorListener
from mitelacd.floor.documents import FloorDocuments
from mitelacd.floor.legacy import LegacyDocument, LegacyFileError, validate_legacy
from mitelacd.floor.render import iso_utc
from mitelacd.logs import Logger
from mitelacd.pacing import Coalescer

log = Logger()

#: The longest pause between retries of a failing write, in write intervals.
MAX_BACKOFF_INTERVALS = 30


def load_legacy(path: FilePath[str], now: float, max_age: float = 900.0) -> LegacyDocument | None:
    """Read an earlier run's file, to carry its agents and queues over.

    ``now`` is Unix time. A missing file gives None. A file that is not a
    valid legacy document is renamed aside (so nobody loses it and the next
    write does not clobber it), logged, and also gives None: a bad file must
    never stop the daemon. A valid file is only carried when its
    ``lastUpdate`` is at most ``max_age`` seconds away from ``now``: an old
    floor shown as live would mislead more than an empty one. Such a file is
    left in place; the first write replaces it.
    """
    try:
        content = path.getContent()
    except FileNotFoundError:
        return None
    except OSError as e:
        log.error("cannot read {path}: {error}", path=path.path, error=e)
        return None
    try:
        document = validate_legacy(json.loads(content))
    except (ValueError, LegacyFileError, RecursionError) as e:
        _set_aside(path, now, e)
        return None
    if not _recent_enough(path, document.last_update, now, max_age):
        return None
    return document


def _set_aside(path: FilePath[str], now: float, problem: Exception) -> None:
    stamp = datetime.datetime.fromtimestamp(now).strftime("%Y%m%dT%H%M%S")
    aside = path.sibling(path.basename() + ".invalid-" + stamp)
    try:
        path.moveTo(aside)
    except OSError as move_error:
        log.error(
            "{path} is not a valid data file ({problem}) and could not be"
            " set aside ({error}); it will be overwritten",
            path=path.path,
            problem=problem,
            error=move_error,
        )
    else:
        log.error(
            "{path} is not a valid data file ({problem}): kept as {aside}, starting empty",
            path=path.path,
            problem=problem,
            aside=aside.path,
        )


def _recent_enough(path: FilePath[str], last_update: float, now: float, max_age: float) -> bool:
    """Whether a file's ``lastUpdate`` is close enough to ``now`` to carry it, saying why not."""
    if max_age <= 0:
        log.info("not carrying {path}: --carry-max-age is 0", path=path.path)
        return False
    if last_update <= 0:
        log.info("not carrying {path}: it has no lastUpdate", path=path.path)
        return False
    age = now - last_update
    if age > max_age:
        log.info(
            "not carrying {path}: last updated {age} ago, more than --carry-max-age {max_age} s",
            path=path.path,
            age=duration_words(age),
            max_age=option_number(max_age),
            age_seconds=age,
        )
        return False
    if -age > max_age:
        log.warn(
            "not carrying {path}: last updated {ahead} in the future, more than"
            " --carry-max-age {max_age} s ahead; is the clock right?",
            path=path.path,
            ahead=duration_words(-age),
            max_age=option_number(max_age),
            age_seconds=age,
        )
        return False
    return True


@implementer(IFloorListener)
class LegacyFileWriter(Service):
    """Write the legacy document at most once per ``interval``, always the last state.

    Each write goes through :func:`replace_file`, so a reader sees the old
    or the new document, never a torn one. The document is the one the web
    serves, assembled change by change. When writes fail the writer retries
    after ``interval``, doubling the pause up to ``interval`` × 30; changes
    meanwhile wait for that retry, which writes the latest document.
    ``lock``, when given, is released after the final write at stop.
    """

    def __init__(
        self,
        path: FilePath[str],
        documents: FloorDocuments,
        clock: IReactorTime,
        interval: float = 1.0,
        *,
        system: SystemCalls = SYSTEM,
        lock: FileLock | None = None,
    ) -> None:
        self.path = path
        self.documents = documents
        self.clock = clock
        self.interval = interval
        self.max_delay = interval * MAX_BACKOFF_INTERVALS
        self.lock = lock
        self.writes = 0
        self._failures = FailingWrites(clock, interval, self.max_delay)
        #: Failed attempts since start, for metrics.
        self.write_failures = 0
        self._system = system
        self._last_written_at: float | None = None
        self._written: bytes | None = None
        self._pace = Coalescer(clock, interval, self.flush)

    @property
    def failed_attempts(self) -> int:
        """Failed attempts since the last write that worked."""
        return self._failures.attempts

    @property
    def problem(self) -> str | None:
        """Why the file is not being written, or None while it is."""
        return self._failures.problem

    def health(self) -> dict[str, Any]:
        """The file's state for ``/healthz`` and ``/api/v1/feed``."""
        return {
            "path": self.path.path,
            "writing": self.failed_attempts == 0,
            "problem": self._failures.problem,
            "failing_since": iso_utc(self._failures.since),
            "last_written_at": iso_utc(self._last_written_at),
            "failed_attempts": self.failed_attempts,
            "writes": self.writes,
        }

    def startService(self) -> None:
        super().startService()
        if self.lock is not None:
            self.lock.write_pid()
        self._remove_leftover()
        self.documents.addListener(self)

    def stopService(self) -> None:
        self.documents.removeListener(self)
        self._pace.cancel()
        self._failures.cancel()
        # Not running any more, so a failed final write schedules no retry.
        super().stopService()
        self.flush()
        if self.lock is not None:
            self.lock.release()

    def floorChanged(self, changes: ChangeSet) -> None:
        if self.documents.legacy_version == changes.version and not self._failures.retrying():
            self._pace.poke()

    def flush(self) -> None:
        """Write the current document now, unless the file already holds it.

        While writes fail every attempt writes, even a document the file
        already holds: the attempt is what tells whether writing works again.
        """
        body = self.documents.legacy()
        if body == self._written and self.failed_attempts == 0:
            return
        now = self.clock.seconds()
        try:
            replace_file(self.path.path, body, self._system)
        except OSError as e:
            self._failed(e, now)
        else:
            self._succeeded(body, now)

    def _failed(self, error: OSError, now: float) -> None:
        self.write_failures += 1
        problem = self._failures.failed(error, now)
        if problem is not None:
            log.error(
                "cannot write {path}: {problem} ({error}); the last good file is kept"
                " and writing is retried, at most {max_delay} s apart",
                path=self.path.path,
                problem=problem,
                error=error,
                max_delay=option_number(self.max_delay),
            )
        if self.running:
            # Through the pacer, so the write after a retry still waits its interval.
            self._failures.retry(self._pace.poke)

    def _succeeded(self, body: bytes, now: float) -> None:
        attempts, lasted = self._failures.ended(now)
        if attempts:
            counted = str(attempts) + (" failed attempt" if attempts == 1 else " failed attempts")
            log.info(
                "{path} is written again, after {attempts} over {duration}",
                path=self.path.path,
                attempts=counted,
                failed_attempts=attempts,
                duration=duration_words(lasted),
            )
        self._written = body
        self.writes += 1
        self._last_written_at = now

    def _remove_leftover(self) -> None:
        """Remove a temporary file an interrupted run left (the lock says it is not another's)."""
        tmp = self.path.path + ".tmp"
        try:
            self._system.unlink(tmp)
        except FileNotFoundError:
            return
        except OSError as e:
            log.warn("cannot remove {tmp}, left by an interrupted write: {error}", tmp=tmp, error=e)
            return
        log.info("removed {tmp}, left by an interrupted write", tmp=tmp)
