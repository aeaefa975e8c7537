"""Two clocks: a monotonic one for how long to wait, the wall for what is shown.

Twisted's reactors time their calls by ``time.time``: when the system clock
steps back an hour (an NTP correction, an operator), every pending
``callLater`` waits an hour longer, so the file stops being written and the
figures stop closing intervals while ``/healthz`` still says all is well.
:func:`install_steady_clock` gives the daemon's reactor a monotonic clock,
anchored at the wall time of the moment it is installed, so that waits are
steps-proof.

What is *shown* (``lastUpdate``, ``since``, ``generated_at``) is stamped by
the system clock: it is what people read. The day's figures count durations
and close intervals by a :class:`Timeline`, the system clock made never to
run backwards, so that a step back neither stops the history nor makes a
duration negative.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from twisted.internet.interfaces import IReactorTime

from mitelacd.logs import Logger

log = Logger()

#: A difference between the wall clock and the timeline below this is drift, not a step.
STEP = 2.0


def steady_seconds(
    wall: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic
) -> Callable[[], float]:
    """A monotonic clock that reads as the wall clock did when it was made."""
    offset = wall() - monotonic()

    def seconds() -> float:
        return monotonic() + offset

    return seconds


def install_steady_clock(reactor: IReactorTime) -> None:
    """Time the reactor's calls by a monotonic clock.

    Calls already pending keep their times: the new clock starts where the
    wall clock stands, so they fire when they would have.
    """
    reactor.seconds = steady_seconds()  # type: ignore[method-assign]


class Timeline:
    """Wall time that never runs backwards, for the figures and the history.

    While the system clock moves forward, :meth:`now` is the system clock.
    When it steps back, time goes on from the last reading at the pace of
    the monotonic ``clock``, ahead of the system clock by the step, until a
    later step forward brings the two together again (a restart does too).
    Durations and interval ends therefore never go backwards, and intervals
    keep closing every quarter hour. A step forward is followed at once.
    Either step is logged.
    """

    def __init__(self, clock: IReactorTime, wall: Callable[[], float] | None = None) -> None:
        self._clock = clock
        #: Without a wall clock of its own (tests on a fake clock), the clock is the wall.
        self.wall = wall if wall is not None else clock.seconds
        self._last = -math.inf
        self._last_tick = 0.0
        #: Seconds the wall clock is behind the timeline, while it is.
        self.behind = 0.0

    def now(self) -> float:
        tick = self._clock.seconds()
        wall = self.wall()
        steady = self._last + (tick - self._last_tick)
        if wall >= steady:
            if wall - steady > STEP and self._last > -math.inf:
                log.warn(
                    "the system clock stepped forward by {seconds:.0f} s:"
                    " the day's figures follow it",
                    seconds=wall - steady,
                )
            if self.behind:
                log.info("the system clock has caught up with the day's figures")
                self.behind = 0.0
            now = wall
        else:
            behind = steady - wall
            if behind > STEP and not self.behind:
                log.warn(
                    "the system clock stepped back by {seconds:.0f} s: the day's figures"
                    " run on from their last reading, ahead of it by as much",
                    seconds=behind,
                )
            self.behind = behind if behind > STEP or self.behind else 0.0
            now = steady
        self._last, self._last_tick = now, tick
        return now
