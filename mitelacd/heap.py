"""Memory the daemon freed, given back to the system after a burst of work.

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
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable
from typing import Final

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


#: glibc's ``mallopt`` parameter for the most arenas (malloc.h: ``M_ARENA_MAX``).
_M_ARENA_MAX: Final = -8
#: Arenas the daemon's threads share: the reactor's, and one for the rest.
ARENAS: Final = 2


def _glibc_mallopt() -> Callable[[int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt


def share_arenas(arenas: int = ARENAS) -> bool:
    """Let every thread share at most ``arenas`` arenas; whether the allocator took it.

    glibc gives a thread that allocates while another holds the lock an arena
    of its own, up to eight per core, and each keeps what it once held: the
    history's writer, its readers and the name lookups each leave their own
    high-water mark in the resident size. Called once at start.
    """
    mallopt = _glibc_mallopt()
    return mallopt is not None and bool(mallopt(_M_ARENA_MAX, arenas))


def can_give_back() -> bool:
    """Whether this process's allocator can give freed memory back on demand."""
    return _trim is not None


def give_back() -> bool:
    """Give the allocator's free pages back to the system; whether any were."""
    if _trim is None:
        return False
    return bool(_trim(0))
