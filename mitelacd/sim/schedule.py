"""Simulated time for the fake ICP: what is due when, and plans that go stale.

The floor of :mod:`mitelacd.sim.floor` never looks at a clock. It asks this
scheduler to call it back at a simulated second; :class:`FloorScript
<mitelacd.sim.service.FloorScript>` pops what is due, instant by instant.
Actions due at the same second run in the order they were scheduled, so a
seed always gives the same day.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any, Protocol


class Plans(Protocol):
    """Something whose pending plans are dropped by bumping ``epoch`` (an agent)."""

    epoch: int


Action = tuple[Callable[..., None], tuple[Any, ...]]


class Scheduler:
    """A heap of actions by simulated second; ties go in scheduling order."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._tickets = 0

    def ticket(self) -> int:
        """A number larger than every one handed out before: a first-come order."""
        self._tickets += 1
        return self._tickets

    def at(self, t: float, fn: Callable[..., None], *args: Any) -> None:
        """Call ``fn(t, *args)`` at simulated second ``t``."""
        heapq.heappush(self._heap, (t, self.ticket(), fn, args))

    def later(self, owner: Plans, t: float, fn: Callable[..., None], *args: Any) -> None:
        """Call ``fn(t, owner, *args)`` at ``t``, unless ``owner`` has replanned by then.

        An agent that is rung, logs out or becomes available again bumps its
        epoch, and whatever it had planned before silently lapses.
        """
        self.at(t, self._if_current, owner, owner.epoch, fn, args)

    @staticmethod
    def replan(owner: Plans) -> None:
        """Drop every plan ``owner`` has pending."""
        owner.epoch += 1

    @staticmethod
    def _if_current(
        t: float, owner: Plans, epoch: int, fn: Callable[..., None], args: tuple[Any, ...]
    ) -> None:
        if owner.epoch == epoch:
            fn(t, owner, *args)

    def next_time(self) -> float | None:
        """When the next action is due; None when nothing is planned."""
        return self._heap[0][0] if self._heap else None

    def pop_due(self, t: float) -> Action | None:
        """The next action due exactly at ``t``, taken off the heap; None if there is none."""
        if not self._heap or self._heap[0][0] != t:
            return None
        _, _, fn, args = heapq.heappop(self._heap)
        return fn, args
