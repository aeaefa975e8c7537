"""Files written so that a failure is said once and never takes the daemon down.

What the legacy file writer, the capture and the history share: the system
calls of a write in one place (so tests can put faults between them), an
atomic replace, the words for a failure and for a duration, a retry with a
growing pause, and a lock that keeps a second daemon off a file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Callable

import attrs
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.filepath import FilePath

from mitelacd.logs import Logger

log = Logger()


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


def option_number(value: float) -> str:
    """``900`` rather than ``900.0`` for an option's value in a message."""
    return str(int(value)) if float(value).is_integer() else format(value, "g")


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
