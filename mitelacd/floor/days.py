"""Report days and their quarter hours, in local time.

The day's figures close intervals and days by it, and the floor forgets at
each day's start by it.
"""

from __future__ import annotations

import datetime


class DayClock:
    """Report days and their 15-minute intervals, in local time.

    A day starts at ``day_starts`` local time; intervals start on local
    quarter hours, so a day's start is always an interval's start.
    ``tz`` None means the machine's local time zone.
    """

    def __init__(self, day_starts: datetime.time, tz: datetime.tzinfo | None = None) -> None:
        self.day_starts = day_starts
        self.tz = tz

    def local(self, when: float) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(when, self.tz)

    def interval_start(self, when: float) -> int:
        moment = self.local(when)
        start = moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)
        return int(start.timestamp())

    def hour_start(self, when: float) -> int:
        return int(self.local(when).replace(minute=0, second=0, microsecond=0).timestamp())

    def day(self, when: float) -> datetime.date:
        """The report day ``when`` falls in."""
        moment = self.local(when)
        date = moment.date()
        if moment.time() < self.day_starts:
            date -= datetime.timedelta(days=1)
        return date

    def day_start(self, day: datetime.date) -> float:
        return datetime.datetime.combine(day, self.day_starts, tzinfo=self.tz).timestamp()
