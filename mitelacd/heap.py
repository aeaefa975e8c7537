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


def can_give_back() -> bool:
    """Whether this process's allocator can give freed memory back on demand."""
    return _trim is not None


def give_back() -> bool:
    """Give the allocator's free pages back to the system; whether any were."""
    if _trim is None:
        return False
    return bool(_trim(0))
