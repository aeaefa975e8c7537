"""The legacy ``mitel_data.json`` file: read once at start, replaced atomically after.

Display boards poll the file, so a reader must only ever see a whole
document, the old one or the new one. A file that cannot be written (disk
full, folder gone, permissions) must not take the daemon down with it: the
last good file stays, HTTP keeps serving, and the writer retries with a
growing pause, saying once what is wrong and once when it is over.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
from collections.abc import Callable
from typing import Any

import attrs
from twisted.application.service import Service
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.filepath import FilePath
from zope.interface import implementer

from mitelacd.changes import ChangeSet
from mitelacd.documents import FloorDocuments
from mitelacd.legacy import LegacyDocument, LegacyFileError, validate_legacy
from mitelacd.logs import Logger
from mitelacd.pacing import Coalescer
from mitelacd.state import IFloorListener, iso_utc

log = Logger()

#: The longest pause between retries of a failing write, in write intervals.
MAX_BACKOFF_INTERVALS = 30


def duration_words(seconds: float) -> str:
    """A span as an operator reads it: ``45 s``, ``12 min 5 s``, ``3 h 12 min``, ``4 d 2 h``."""
    if seconds < 1:
        return "under 1 s"
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def _number(value: float) -> str:
    """``900`` rather than ``900.0`` for an option's value in a message."""
    return str(int(value)) if float(value).is_integer() else format(value, "g")


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
            max_age=_number(max_age),
            age_seconds=age,
        )
        return False
    if -age > max_age:
        log.warn(
            "not carrying {path}: last updated {ahead} in the future, more than"
            " --carry-max-age {max_age} s ahead; is the clock right?",
            path=path.path,
            ahead=duration_words(-age),
            max_age=_number(max_age),
            age_seconds=age,
        )
        return False
    return True


@attrs.frozen
class SystemCalls:
    """The system calls a write makes, in one place so tests can put faults between them."""

    open: Callable[[str, int, int], int] = os.open
    write: Callable[[int, bytes], int] = os.write
    fsync: Callable[[int], None] = os.fsync
    close: Callable[[int], None] = os.close
    replace: Callable[[str, str], None] = os.replace
    unlink: Callable[[str], None] = os.unlink


SYSTEM = SystemCalls()

#: What a folder's fsync may answer on file systems that do not do it.
_FOLDER_SYNC_REFUSED = frozenset({errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF})


def replace_file(path: str, body: bytes, system: SystemCalls = SYSTEM) -> None:
    """Replace the file at ``path`` with ``body``; a reader, or a crash, sees old or new.

    The bytes go to ``<path>.tmp``, reach the disk (else a crash after the
    rename can leave an empty file under the real name), and the temporary
    file is renamed over ``path``. The mode is 0644 less the umask, as for
    any new file. On failure the temporary file is removed, ``path`` is left
    as it was, and the OSError is raised. The folder is synced after the
    rename where the file system allows; if that fails otherwise, the new
    file is in place but its error is raised, so the write is tried again.
    """
    tmp = path + ".tmp"
    fd = -1
    try:
        fd = system.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        done = 0
        while done < len(body):
            done += system.write(fd, body[done:])
        system.fsync(fd)
        closing, fd = fd, -1
        system.close(closing)
        system.replace(tmp, path)
    except OSError:
        if fd >= 0:
            with contextlib.suppress(OSError):
                system.close(fd)
        with contextlib.suppress(OSError):
            system.unlink(tmp)
        raise
    _sync_folder(os.path.dirname(path) or ".", system)


def _sync_folder(folder: str, system: SystemCalls) -> None:
    """Make the rename itself durable, where the file system lets us."""
    try:
        fd = system.open(folder, os.O_RDONLY | os.O_DIRECTORY, 0)
    except OSError:
        return  # a folder we may write but not read: the file is written all the same
    try:
        system.fsync(fd)
    except OSError as e:
        if e.errno not in _FOLDER_SYNC_REFUSED:
            raise
    finally:
        with contextlib.suppress(OSError):
            system.close(fd)


def failure_kind(error: OSError) -> str:
    """The reason a write failed, in the words the log and ``/healthz`` use."""
    code = error.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return "disk full"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if code in (errno.ENOENT, errno.ENOTDIR):
        return "folder missing"
    if code == errno.EROFS:
        return "read-only file system"
    if error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


class FailingWrites:
    """A run of failed writes: how many, since when, of what kind, and the next try.

    The pause before the next attempt starts at ``first_delay`` and doubles
    with each failure up to ``max_delay``; at most one retry is due at a time.
    """

    def __init__(self, clock: IReactorTime, first_delay: float, max_delay: float) -> None:
        self.clock = clock
        self.first_delay = first_delay
        self.max_delay = max_delay
        #: Failed attempts since the last write that worked.
        self.attempts = 0
        #: When the first of them failed, or None while writes work.
        self.since: float | None = None
        #: The kind of the last failure (see :func:`failure_kind`), or None.
        self.problem: str | None = None
        self._delay = first_delay
        self._retry: IDelayedCall | None = None

    def failed(self, error: OSError, now: float) -> str | None:
        """Count one failure; its kind when that differs from the last one's, else None.

        A kind is told once, then not again until writes fail in another way.
        """
        self.attempts += 1
        if self.attempts == 1:
            self.since = now
            self._delay = self.first_delay
        else:
            self._delay = min(self._delay * 2, self.max_delay)
        problem = failure_kind(error)
        if problem == self.problem:
            return None
        self.problem = problem
        return problem

    def retry(self, attempt: Callable[[], object]) -> None:
        """Call ``attempt`` after the current pause, unless a retry is already due."""
        if not self.retrying():
            self._retry = self.clock.callLater(self._delay, self._attempt, attempt)

    def _attempt(self, attempt: Callable[[], object]) -> None:
        self._retry = None
        attempt()

    def retrying(self) -> bool:
        return self._retry is not None and self._retry.active()

    def cancel(self) -> None:
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None

    def ended(self, now: float) -> tuple[int, float]:
        """A write worked: the run's failed attempts and how long it lasted, then reset."""
        attempts = self.attempts
        lasted = now - self.since if self.since is not None else 0.0
        self.attempts = 0
        self.since = None
        self.problem = None
        self._delay = self.first_delay
        self.cancel()
        return attempts, lasted


class FileLockedError(Exception):
    """Another process holds the data file's lock: this daemon must not start."""

    def __init__(self, path: str, lock_path: str, holder: int | None) -> None:
        self.path = path
        self.lock_path = lock_path
        self.holder = holder
        by = f"held by process {holder}" if holder is not None else "held by another process"
        super().__init__(f"another mitelacd already writes {path} (lock {lock_path} {by})")


class FileLock:
    """An advisory lock on the data file, so that two daemons never write it at once.

    ``flock`` on the sibling ``<file>.lock``: the kernel drops it however the
    process ends, and it survives twistd's fork into the background (the
    lock belongs to the open file, which the child inherits). The lock file
    holds the holder's PID for humans; it is never deleted, since deleting
    it would let a third process lock a new file while a second still holds
    the old one.
    """

    def __init__(self, path: FilePath[str], lock_path: str, fd: int) -> None:
        self.path = path
        self.lock_path = lock_path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, path: FilePath[str]) -> FileLock:
        """Lock the data file at ``path``, or raise :class:`FileLockedError` saying who has it.

        Other OSErrors (a missing folder, say) are raised as they are.
        """
        lock_path = path.path + ".lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise FileLockedError(path.path, lock_path, holder) from None
        except BaseException:
            os.close(fd)
            raise
        lock = cls(path, lock_path, fd)
        lock.write_pid()
        return lock

    @property
    def held(self) -> bool:
        return self._fd is not None

    def write_pid(self) -> None:
        """Put this process's PID in the lock file (again after a fork: twistd's changes it)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):  # the lock matters, the note is for humans
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, b"%d\n" % os.getpid(), 0)

    def release(self) -> None:
        """Unlock, so another daemon may write the file. Releasing twice is harmless."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0)
    except OSError:
        return None
    try:
        pid = int(text.strip())
    except ValueError:
        return None
    return pid if pid > 0 else None


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
                max_delay=_number(self.max_delay),
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
