"""Memory freed in a thread goes back to the system when asked (``mitelacd.heap``)."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

from mitelacd import heap

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
