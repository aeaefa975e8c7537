"""History stores that misbehave as real databases do, for the history writer's tests.

Each is a real :class:`~mitelacd.reports.store.HistoryStore` (on SQLite or
PostgreSQL) with faults put in; their switches are class-wide, since the
writer opens new stores as it goes (``open_store(url, store_class=...)``).

* :class:`FlakyHistoryStore`: writes fail while ``down``, or lose their answer after the commit.
* :class:`DownHistoryStore`: a flaky store that, while down, cannot even read its batch marks.
* :class:`StuckHistoryStore`: writes hang until ``release`` is set.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence

from sqlalchemy.exc import OperationalError

from mitelacd.reports.rows import IntervalRow, StateSpan
from mitelacd.reports.store import HistoryStore


class FlakyHistoryStore(HistoryStore):
    """A store whose writes fail while ``down`` (class-wide, as the service opens new ones).

    ``reset()`` puts every switch back, before and after a test.
    """

    down = False
    #: Fail after the commit, as when the link breaks before the database answers.
    lose_answer = 0
    #: Writes committed.
    writes = 0

    @classmethod
    def reset(cls) -> None:
        FlakyHistoryStore.down = False
        FlakyHistoryStore.lose_answer = 0
        FlakyHistoryStore.writes = 0

    def write(
        self,
        source: str,
        intervals: Sequence[IntervalRow],
        spans: Sequence[StateSpan],
        batch: str | None = None,
    ) -> None:
        if FlakyHistoryStore.down:
            raise OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
        super().write(source, intervals, spans, batch)
        FlakyHistoryStore.writes += 1
        if FlakyHistoryStore.lose_answer:
            FlakyHistoryStore.lose_answer -= 1
            raise OperationalError(
                "COMMIT", {}, Exception("server closed the connection unexpectedly")
            )


class DownHistoryStore(FlakyHistoryStore):
    """A FlakyHistoryStore that cannot even read its marks while down."""

    def last_batch(self, source: str) -> str | None:
        if FlakyHistoryStore.down:
            raise OperationalError("SELECT", {}, sqlite3.OperationalError("database is locked"))
        return super().last_batch(source)


class StuckHistoryStore(HistoryStore):
    """A store whose writes hang until let go, as on a database host that vanished.

    A test sets ``release`` to a new Event first, and sets it at the end.
    """

    release: threading.Event = threading.Event()

    def write(
        self,
        source: str,
        intervals: Sequence[IntervalRow],
        spans: Sequence[StateSpan],
        batch: str | None = None,
    ) -> None:
        StuckHistoryStore.release.wait(30)
        super().write(source, intervals, spans, batch)
