"""Coalescing of frequent changes into paced actions."""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime


class Coalescer:
    """Run ``action`` at most once per ``interval`` seconds, and always after the last poke.

    A burst of pokes costs one run now (or as soon as the interval allows)
    and one more at the end, so the last state is never left behind.
    """

    def __init__(self, clock: IReactorTime, interval: float, action: Callable[[], object]) -> None:
        self._clock = clock
        self.interval = interval
        self._action = action
        self._last = float("-inf")
        self._pending: IDelayedCall | None = None

    def poke(self) -> None:
        if self._pending is not None:
            return
        delay = max(0.0, self._last + self.interval - self._clock.seconds())
        self._pending = self._clock.callLater(delay, self._run)

    def _run(self) -> None:
        self._pending = None
        self._last = self._clock.seconds()
        self._action()

    def cancel(self) -> None:
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        self._pending = None
