"""History stores that misbehave as real databases do, for the history writer's tests.

Each is a real :class:`~mitelacd.reports.store.HistoryStore` (on SQLite or
PostgreSQL) with faults put in; their switches are class-wide, since the
writer opens new stores as it goes (``open_store(url, store_class=...)``).

* :class:`FlakyHistoryStore`: writes fail while ``down``, or lose their answer after the commit.
* :class:`DownHistoryStore`: a flaky store that, while down, cannot even read its batch marks.
* :class:`StuckHistoryStore`: writes hang until ``release`` is set.

And :class:`FiguresAndHistory`: a floor, its day's figures and a history
writer on the real reactor, wired as the daemon wires them; and
:class:`FakeSmdr`, the SMDR figures a daemon holds, over a real
:class:`~mitelacd.reports.smdrcalls.SmdrDay` fed with lines.
"""

from __future__ import annotations

import datetime
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy.exc import OperationalError
from twisted.internet import reactor
from twisted.internet.interfaces import IReactorFromThreads, IReactorTime

from mitelacd.floor.names import Names
from mitelacd.floor.records import parse_record
from mitelacd.floor.smdr import SmdrLine, parse_smdr
from mitelacd.floor.state import FloorState
from mitelacd.reports.live import FiguresService
from mitelacd.reports.rows import IntervalRow, SmdrIntervalRow, StateSpan
from mitelacd.reports.smdrcalls import PathInterval, SmdrDay, SmdrSettings
from mitelacd.reports.store import HistoryStore, open_store
from mitelacd.reports.writer import HistoryService
from mitelacd.testing import call_body


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
        smdr_lines: Sequence[SmdrLine] = (),
        smdr_intervals: Sequence[SmdrIntervalRow] = (),
    ) -> None:
        if FlakyHistoryStore.down:
            raise OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
        super().write(source, intervals, spans, batch, smdr_lines, smdr_intervals)
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
        smdr_lines: Sequence[SmdrLine] = (),
        smdr_intervals: Sequence[SmdrIntervalRow] = (),
    ) -> None:
        StuckHistoryStore.release.wait(30)
        super().write(source, intervals, spans, batch, smdr_lines, smdr_intervals)


class FiguresAndHistory:
    """A floor, its day's figures and a history writer of ``url`` on the real reactor, as
    the daemon wires them; records are fed with :meth:`events`. ``history_options`` go to
    :class:`~mitelacd.reports.writer.HistoryService` (the flush interval is 0.05 s)."""

    def __init__(
        self,
        url: str,
        *,
        names: Names | None = None,
        tz: datetime.tzinfo | None = None,
        source: str = "pbx",
        **history_options: Any,
    ) -> None:
        clock = cast(IReactorTime, reactor)
        self.floor = FloorState(clock)
        if names is not None:
            self.floor.setNames(names)
        history_options.setdefault("flush_interval", 0.05)
        self.history = HistoryService(
            lambda: open_store(url),
            source,
            clock,
            cast(IReactorFromThreads, reactor),
            url=url,
            **history_options,
        )
        self.figures = FiguresService(self.floor, clock, tz=tz, history=self.history)
        self.seq = 0

    async def start(self) -> None:
        self.history.startService()
        self.figures.startService()
        await self.figures.seeded

    async def stop(self) -> None:
        self.figures.stopService()
        await self.history.stopService().addTimeout(30, reactor)

    def events(self, spec: str, agent: str = "1001", dn: str = "2001") -> None:
        """Call events of ``agent`` as code and tail: ``"A G01860 J01"``."""
        for token in spec.split():
            body = call_body(self.seq, token[0], dn, agent, token[1:])
            self.seq = (self.seq + 1) % 100
            self.floor.recordReceived(parse_record(body.encode()))

    def calls(self) -> dict[str, int]:
        """Today's ACD calls by agent, as the live figures have them."""
        return {a["id"]: a["acd_calls"] for a in self.figures.today("agent")["agents"]}


class FakeSmdr:
    """The SMDR figures a daemon holds (:class:`~mitelacd.reports.rows.SmdrFigures`).

    A real :class:`~mitelacd.reports.smdrcalls.SmdrDay`, fed with lines as
    the listener would feed it (:meth:`feed`); :meth:`intervals` is every
    interval it holds. The lines fed are kept, as the history keeps them.
    """

    def __init__(
        self,
        day_starts: datetime.time = datetime.time(0, 0),
        tz: datetime.tzinfo | None = None,
        settings: SmdrSettings | None = None,
    ) -> None:
        self.day = SmdrDay(day_starts, tz, settings)
        self.lines: list[SmdrLine] = []

    def feed(self, text: str, received_at: float) -> SmdrLine:
        """One line of the stream (without its terminator), received at ``received_at``."""
        raw = text.encode("latin-1") + b"\r\n"
        result = parse_smdr(raw)
        self.day.add(result, received_at)
        line = SmdrLine.of(received_at, raw, result)
        self.lines.append(line)
        return line

    def intervals(self, now: float) -> list[PathInterval]:
        return self.day.figures(now)
