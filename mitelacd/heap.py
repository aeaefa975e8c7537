"""The daemon's memory: what it freed given back to the system, and the collector paced.

At every quarter hour the day's figures close an interval: for a floor of
2,000 agents that is several thousand rows, built in the reactor's thread
and written in the history's, each a few megabytes of short-lived objects.
Python frees them at once, but glibc's allocator keeps the freed pages of
each thread's arena for itself: the resident size of the process then rises
in a step at an interval close whose peak is a little higher than any
before, and never comes down. Over a day that reads as a slow leak on any
graph of the daemon's memory.

:func:`give_back` asks the allocator to hand the free pages at the top and
in the middle of every arena back to the system (``malloc_trim(0)``). It is
called after work that freed a lot (a large history batch written) and costs
a few milliseconds there. Where the C library is not glibc it does nothing.

:class:`YoungCollections` paces Python's cyclic garbage collector for a
daemon whose objects die young. A record's objects are freed as soon as its
change is handed on, but a read of a few hundred records holds a few
thousand of them for a moment: past the collector's default of 700, nearly
every read ran a collection of the youngest objects, and what it found
alive (an agent's latest state, until that agent's next change) was moved
on and, at most one time in a hundred, made the collector walk every object
of the process. At 10,000 agents that walk takes 36 to 57 ms, during which
no record is read and no board is written to. Collected only after 10,000
more objects have been made than freed, the daemon in steady work runs
almost no collection, and runs them as before while it grows.
"""

from __future__ import annotations

import ctypes
import gc
import sys
from collections.abc import Callable
from typing import Final

import attrs
from twisted.application.service import Service

#: Rows in a history batch from which the memory freed after it is given back.
LARGE_BATCH_ROWS: Final = 1000


def _glibc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        # The process's own symbols, libc's among them: find_library would
        # run ldconfig in a child process to find the same library.
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # musl and others have no malloc_trim
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_trim = _glibc_trim()


def can_give_back() -> bool:
    """Whether this process's allocator can give freed memory back on demand."""
    return _trim is not None


def give_back() -> bool:
    """Give the allocator's free pages back to the system; whether any were."""
    if _trim is None:
        return False
    return bool(_trim(0))


#: Objects made and not yet freed from which the youngest are collected (Python's default: 700).
YOUNG_THRESHOLD: Final = 10_000


@attrs.define(eq=False)
class YoungCollections(Service):
    """While running, the youngest objects are collected every ``threshold`` objects made
    (net of those freed); the older generations' settings are left as they are, and the
    collector's settings are put back when the service stops."""

    threshold: int = YOUNG_THRESHOLD
    _before: tuple[int, int, int] | None = attrs.field(default=None, init=False)

    def startService(self) -> None:
        super().startService()
        self._before = gc.get_threshold()
        gc.set_threshold(self.threshold, *self._before[1:])

    def stopService(self) -> None:
        if self._before is not None:
            gc.set_threshold(*self._before)
            self._before = None
        super().stopService()
