"""The legacy ``mitel_data.json`` file: read once at start, replaced atomically after."""

from __future__ import annotations

import datetime
import json
from typing import Any

from twisted.application.service import Service
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.filepath import FilePath
from zope.interface import implementer

from mitelacd.state import FloorState, IFloorListener, LegacyFileError, validate_legacy

log = Logger()


def load_legacy(path: FilePath[str], now: datetime.datetime) -> dict[str, Any] | None:
    """Read an earlier run's file.

    A missing file gives None. A file that is not a valid legacy document is
    renamed aside (so nobody loses it and the next write does not clobber it),
    logged, and also gives None: a bad file must never stop the daemon.
    """
    try:
        content = path.getContent()
    except FileNotFoundError:
        return None
    except OSError as e:
        log.error("cannot read {path}: {error}", path=path.path, error=e)
        return None
    try:
        return validate_legacy(json.loads(content))
    except (ValueError, LegacyFileError, RecursionError) as e:
        aside = path.sibling(path.basename() + ".invalid-" + now.strftime("%Y%m%dT%H%M%S"))
        try:
            path.moveTo(aside)
        except OSError as move_error:
            log.error(
                "{path} is not a valid data file ({problem}) and could not be"
                " set aside ({error}); it will be overwritten",
                path=path.path,
                problem=e,
                error=move_error,
            )
        else:
            log.error(
                "{path} is not a valid data file ({problem}): kept as {aside}, starting empty",
                path=path.path,
                problem=e,
                aside=aside.path,
            )
        return None


@implementer(IFloorListener)
class LegacyFileWriter(Service):
    """Write the legacy document at most once per ``interval``, always the last state.

    Each write goes to a temporary sibling that is then renamed over the
    file, so a reader sees the old or the new document, never a torn one.
    """

    def __init__(
        self,
        path: FilePath[str],
        floor: FloorState,
        clock: IReactorTime,
        interval: float = 1.0,
    ) -> None:
        self.path = path
        self.floor = floor
        self.clock = clock
        self.interval = interval
        self.writes = 0
        self._written: bytes | None = None
        self._last_write = float("-inf")
        self._pending: IDelayedCall | None = None

    def startService(self) -> None:
        super().startService()
        self.floor.addListener(self)

    def stopService(self) -> None:
        self.floor.removeListener(self)
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        self._pending = None
        self.flush()
        super().stopService()

    def floorChanged(self, floor: FloorState) -> None:
        if self._pending is not None:
            return
        delay = max(0.0, self._last_write + self.interval - self.clock.seconds())
        self._pending = self.clock.callLater(delay, self._due)

    def _due(self) -> None:
        self._pending = None
        self.flush()

    def flush(self) -> None:
        """Write the current document now, unless the file already holds it."""
        body = self.floor.legacyJSON()
        if body == self._written:
            return
        try:
            self.path.setContent(body, ext=b".tmp")
        except OSError as e:
            # The state itself is intact: try again a little later.
            log.error("cannot write {path}: {error}", path=self.path.path, error=e)
            if self.running and self._pending is None:
                self._pending = self.clock.callLater(max(self.interval, 1.0), self._due)
            return
        self._written = body
        self._last_write = self.clock.seconds()
        self.writes += 1
