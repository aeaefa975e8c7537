"""Stand-ins for what the daemon talks to, each under the name of what it fakes.

* :class:`FaultyDisk`: the real system calls, recorded in order, failing on cue.
* :class:`SteppingWallClock`: a system clock that the test steps.
* :class:`FakeOpenFileLimits`: RLIMIT_NOFILE as the test sets it.
* :class:`FakeNotifySocket`: the receiving end of ``NOTIFY_SOCKET``, what systemd would read.
* :class:`FakeConnector`: a connector a reconnecting client factory retries through.
* :class:`FakeReactorFromThreads`: keeps what is handed to ``callFromThread`` until run.
"""

from __future__ import annotations

import errno
import os
import resource
import socket
import time
from collections.abc import Callable

import attrs
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock

from mitelacd.disk import SystemCalls


class FaultyDisk:
    """The real system calls, recorded in order, that fail on cue.

    * ``fail(call, code, target)`` makes ``call`` raise ``code`` when it acts
      on ``target`` (any path when None), instead of any earlier such fault,
      until ``heal()``.
    * While ``failing`` is set, every write raises that error number
      (``full``: the disk is full, ENOSPC).
    * ``partial``: the next write writes this many bytes, then the disk fills up.

    ``calls`` holds ``(call, path)`` in order, ``writes`` counts the writes
    asked for, and ``attempts`` the clock's time of each opening of a
    ``.tmp`` file (with a clock). ``system()`` is what the code under test is given.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock
        self.calls: list[tuple[str, str]] = []
        self.attempts: list[float] = []
        self.writes = 0
        self.failing: int | None = None
        self.partial: int | None = None
        self._faults: dict[str, tuple[int, str | None]] = {}
        self._names: dict[int, str] = {}

    @property
    def full(self) -> bool:
        """Whether every write fails as on a full disk."""
        return self.failing == errno.ENOSPC

    @full.setter
    def full(self, full: bool) -> None:
        self.failing = errno.ENOSPC if full else None

    def fail(self, call: str, code: int, target: str | None = None) -> None:
        self._faults = {call: (code, target)}

    def heal(self) -> None:
        self._faults.clear()

    def system(self) -> SystemCalls:
        return SystemCalls(
            open=self.open,
            write=self.write,
            fsync=self.fsync,
            close=self.close,
            replace=self.replace,
            unlink=self.unlink,
        )

    def _check(self, call: str, target: str) -> None:
        self.calls.append((call, target))
        fault = self._faults.get(call)
        if fault is not None and fault[1] in (None, target):
            raise OSError(fault[0], os.strerror(fault[0]), target)

    def _name(self, fd: int) -> str:
        return self._names.get(fd, f"descriptor {fd}")

    def open(self, path: str, flags: int, mode: int) -> int:
        if path.endswith(".tmp") and self.clock is not None:
            self.attempts.append(self.clock.seconds())
        self._check("open", path)
        fd = os.open(path, flags, mode)
        self._names[fd] = path
        return fd

    def write(self, fd: int, data: bytes) -> int:
        self.writes += 1
        self._check("write", self._name(fd))
        if self.partial is not None:
            # Write this much, then fail as a disk that just filled up.
            done, self.partial = os.write(fd, data[: self.partial]), None
            self.failing = errno.ENOSPC
            return done
        if self.failing is not None:
            raise OSError(self.failing, os.strerror(self.failing))
        return os.write(fd, data)

    def fsync(self, fd: int) -> None:
        self._check("fsync", self._name(fd))
        os.fsync(fd)

    def close(self, fd: int) -> None:
        name = self._name(fd)
        self._names.pop(fd, None)
        self._check("close", name)
        os.close(fd)

    def replace(self, src: str, dst: str) -> None:
        self._check("replace", src)
        os.replace(src, dst)

    def unlink(self, path: str) -> None:
        self._check("unlink", path)
        os.unlink(path)


class SteppingWallClock:
    """A system clock that the test steps: the fake clock's time plus ``offset``."""

    def __init__(self, clock: Clock | MemoryReactorClock) -> None:
        self._clock = clock
        self.offset = 0.0

    def __call__(self) -> float:
        return self._clock.seconds() + self.offset


@attrs.define
class FakeOpenFileLimits:
    """RLIMIT_NOFILE as a test sets it; the other limits are not asked for.

    Its ``getrlimit`` and ``setrlimit`` stand in for the ``resource`` module's
    (``mitelacd.openfiles.Limits(fake.getrlimit, fake.setrlimit)``); ``calls``
    holds what was set, ``refuse`` makes setting fail as for an unprivileged process.
    """

    soft: int
    hard: int
    refuse: bool = False
    calls: list[tuple[int, int]] = attrs.Factory(list)

    def getrlimit(self, which: int) -> tuple[int, int]:
        assert which == resource.RLIMIT_NOFILE
        return self.soft, self.hard

    def setrlimit(self, which: int, limits: tuple[int, int]) -> None:
        assert which == resource.RLIMIT_NOFILE
        self.calls.append(limits)
        if self.refuse:
            raise PermissionError(1, "Operation not permitted")
        self.soft, self.hard = limits


class FakeNotifySocket:
    """The receiving end of ``NOTIFY_SOCKET``: what systemd would read.

    An AF_UNIX datagram socket bound to ``address`` (a path, or the abstract
    namespace when it starts with a NUL).
    """

    def __init__(self, address: str) -> None:
        self.address = address
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(address)
        self.socket.setblocking(False)

    @property
    def value(self) -> str:
        """The ``NOTIFY_SOCKET`` value naming this socket."""
        if self.address.startswith("\0"):
            return "@" + self.address[1:]
        return self.address

    def take(self) -> list[str]:
        """Every datagram received so far."""
        got = []
        while True:
            try:
                got.append(self.socket.recv(4096).decode("utf-8"))
            except BlockingIOError:
                return got

    def wait_for(self, prefix: str, timeout: float = 30.0) -> tuple[str, list[str]]:
        """The first datagram starting with ``prefix``, and every one before it."""
        before: list[str] = []
        end = time.monotonic() + timeout
        self.socket.settimeout(0.2)
        try:
            while time.monotonic() < end:
                try:
                    message = self.socket.recv(4096).decode("utf-8")
                except TimeoutError:
                    continue
                if message.startswith(prefix):
                    return message, before
                before.append(message)
        finally:
            self.socket.setblocking(False)
        raise AssertionError(f"no {prefix!r} within {timeout} s; got {before}")

    def close(self) -> None:
        self.socket.close()


class FakeConnector:
    """What a reconnecting client factory asks of a connector; ``attempts`` counts its dials."""

    def __init__(self, host: str = "127.0.0.1", port: int = 15373) -> None:
        self.destination = IPv4Address("TCP", host, port)
        self.attempts = 0

    def getDestination(self) -> IPv4Address:
        return self.destination

    def connect(self) -> None:
        self.attempts += 1

    def stopConnecting(self) -> None:
        pass


class FakeReactorFromThreads:
    """Keeps what a signal handler or a thread hands to ``callFromThread``, until ``run()``."""

    def __init__(self) -> None:
        self.calls: list[tuple[Callable[..., object], tuple[object, ...]]] = []

    def callFromThread(self, f: Callable[..., object], *args: object, **kwargs: object) -> None:
        self.calls.append((f, args))

    def run(self) -> None:
        calls, self.calls = self.calls, []
        for f, args in calls:
            f(*args)
