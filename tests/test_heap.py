"""Memory freed in a thread goes back to the system when asked (``mitelacd.heap``)."""

from __future__ import annotations

import datetime
import platform
import subprocess
import sys
import textwrap

import pytest
from twisted.internet.task import Clock

from mitelacd import heap
from mitelacd.floor.records import parse_record
from mitelacd.floor.state import FloorState
from mitelacd.reports.live import FiguresService
from mitelacd.testing import call_body

#: In a fresh interpreter: 80 MB of blocks made and mostly freed in a thread, a few
#: kept so that the arena's top cannot shrink by itself; the resident size before
#: and after the memory is given back.
FREED_IN_A_THREAD = textwrap.dedent(
    """
    import os, threading
    from mitelacd import heap

    def resident():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    kept = []
    def work():
        blocks = [bytes(2000) for _ in range(40_000)]
        kept.extend(blocks[::50])
    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    before = resident()
    given = heap.give_back()
    print(before, resident(), given)
    """
)


def test_glibc_can_give_memory_back() -> None:
    if platform.libc_ver()[0] == "glibc":
        assert heap.can_give_back()
    else:
        assert heap.give_back() is heap.can_give_back()


@pytest.mark.processes
def test_what_a_thread_freed_leaves_the_process_when_given_back() -> None:
    found = subprocess.run(
        [sys.executable, "-c", FREED_IN_A_THREAD],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    before, after, given = found.stdout.split()
    if not heap.can_give_back():
        assert given == "False"
        return
    assert given == "True"
    # Of about 78 MB freed, at least 40 MB are no longer resident.
    assert int(before) - int(after) > 40 * 2**20, (before, after)


def test_a_large_floor_s_interval_close_gives_its_memory_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a history the rows of a closed interval are made and dropped at
    once: for a floor of LARGE_BATCH_ROWS agents their memory is given back
    after the close; a small floor's close leaves the allocator alone."""
    given: list[float] = []
    clock = Clock()
    clock.advance(1_800_000_000)  # a quarter hour's start, UTC
    monkeypatch.setattr(heap, "give_back", lambda: given.append(clock.seconds()))
    for agents, expected in ((10, 0), (heap.LARGE_BATCH_ROWS, 1)):
        floor = FloorState(clock)
        figures = FiguresService(floor, clock, tz=datetime.timezone.utc)
        figures.startService()
        for n in range(agents):
            body = call_body(n % 100, "A", str(20_000 + n), str(10_000 + n), "00")
            floor.recordReceived(parse_record(body.encode()))
        given.clear()
        clock.advance(15 * 60 + 1)  # the interval closes (a moment after its end)
        assert given == [clock.seconds()] * expected, (agents, given)
        figures.stopService()
