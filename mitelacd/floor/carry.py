"""Carrying an earlier run's floor over a restart (docs/state-model.md §4).

A carried agent keeps its status on the boards until the PBX names it, but
only as *unconfirmed*. The floor lets such agents go when the PBX date
moves on; this service also lets them go after ``--unconfirmed-max-age``.
"""

from __future__ import annotations

from twisted.application.service import Service
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from mitelacd.floor.state import FloorState


class CarriedAgentsExpiry(Service):
    """Set carried agents the PBX has not named to ``out`` after ``max_age`` seconds."""

    def __init__(self, floor: FloorState, clock: IReactorTime, max_age: float) -> None:
        self.floor = floor
        self.clock = clock
        self.max_age = max_age
        self._call: IDelayedCall | None = None

    def startService(self) -> None:
        super().startService()
        if self.floor.carried_agents:
            self._call = self.clock.callLater(self.max_age, self._expire)

    def _expire(self) -> None:
        self._call = None
        self.floor.letGoCarried(
            f"unconfirmed for {self.max_age:g} s, the --unconfirmed-max-age limit"
        )

    def stopService(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        super().stopService()
