"""Memory freed in a thread goes back to the system when asked (``mitelacd.heap``)."""

from __future__ import annotations

import datetime
import gc
import platform
import subprocess
import sys
import textwrap

import pytest
from twisted.internet.task import Clock

from mitelacd import heap
from mitelacd.floor.documents import FloorDocuments
from mitelacd.floor.records import parse_record
from mitelacd.floor.state import FloorState
from mitelacd.reports.figures import DayFigures
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


def test_the_youngest_objects_are_collected_less_often_while_the_service_runs() -> None:
    before = gc.get_threshold()
    service = heap.YoungCollections(threshold=before[0] + 1234)
    service.startService()
    try:
        assert gc.get_threshold() == (before[0] + 1234, *before[1:])
        assert gc.isenabled()
    finally:
        service.stopService()
    assert gc.get_threshold() == before
    service.stopService()  # stopped twice: what it set is not put back again
    assert gc.get_threshold() == before


def test_a_read_of_records_runs_no_collection_once_the_floor_is_built() -> None:
    """At the daemon's threshold a floor in steady work, taking reads of 150 records,
    seldom starts a collection; at Python's default (700 tracked objects made, less those
    freed) at least every other read did."""
    clock = Clock()
    clock.advance(1.8e9)
    floor = FloorState(clock)
    # What listens to a floor in the daemon: its documents, and the day's figures.
    documents = FloorDocuments(floor)
    floor.addListener(DayFigures())
    agents = [str(100_000 + n) for n in range(500)]
    for n, agent in enumerate(agents):
        floor.recordReceived(parse_record(call_body(n % 100, "A", agent, agent, "00").encode()))
    cycle = ("T", "G", "N", "O", "J", "L", "M")
    records = [
        parse_record(
            call_body(n % 100, code, agent, agent, "01860" if code == "G" else "01").encode()
        )
        for code in cycle * 3
        for n, agent in enumerate(agents)
    ]
    collections: list[int] = []

    def counted(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    def reads() -> int:
        collections.clear()
        gc.collect()
        gc.callbacks.append(counted)
        try:
            for start in range(0, len(records), 150):
                with floor.batch():
                    for record in records[start : start + 150]:
                        floor.recordReceived(record)
                documents.legacy()  # as the file writer and the boards read them
                documents.entities["agents"].joined()
                clock.advance(0.02)
        finally:
            gc.callbacks.remove(counted)
        return len(collections)

    before = gc.get_threshold()
    gc.set_threshold(700, *before[1:])  # Python's default
    try:
        default = reads()
    finally:
        gc.set_threshold(*before)
    service = heap.YoungCollections()
    service.startService()
    try:
        paced = reads()
    finally:
        service.stopService()
    assert gc.get_threshold() == before
    reads_made = -(-len(records) // 150)
    print(f"{reads_made} reads: {default} collections at 700, {paced} at {heap.YOUNG_THRESHOLD}")
    assert default >= reads_made // 2
    assert paced <= reads_made // 20
