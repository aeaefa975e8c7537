"""The live tables forget at each day's start (docs/state-model.md §4, v3).

Agents out since before the report day began, and extensions silent as
long, leave the floor at the day's start, so that a floor whose staff
changes never fills the tables that guard against hostile streams.
"""

from __future__ import annotations

import datetime

from twisted.application.service import Service
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from mitelacd.floor.days import DayClock
from mitelacd.floor.state import FloorState

#: How long after the day's start the tables are swept (the clock's jitter).
LATE = 0.05


class DayTurn(Service):
    """At each day start, tell the floor to forget what has been gone since before it."""

    def __init__(
        self,
        floor: FloorState,
        clock: IReactorTime,
        day_starts: datetime.time = datetime.time(0, 0),
        tz: datetime.tzinfo | None = None,
    ) -> None:
        self.floor = floor
        self.clock = clock
        self.days = DayClock(day_starts, tz)
        self._call: IDelayedCall | None = None

    def startService(self) -> None:
        super().startService()
        self._schedule()

    def _schedule(self) -> None:
        # How long to wait is measured on the timeline, which never runs back.
        now = self.floor.timeline.now()
        next_day = self.days.day(now) + datetime.timedelta(days=1)
        delay = max(0.0, self.days.day_start(next_day) - now) + LATE
        self._call = self.clock.callLater(delay, self._turn)

    def _turn(self) -> None:
        self._call = None
        # What is compared is stamped by the system clock, so the day is its.
        shown = self.floor.now()
        self.floor.forget(self.days.day_start(self.days.day(shown)))
        self._schedule()

    def stopService(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        super().stopService()
