"""The legacy ``mitel_data.json`` file: read once at start, replaced atomically after."""

from __future__ import annotations

import datetime
import json

from twisted.application.service import Service
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.filepath import FilePath
from zope.interface import implementer

from mitelacd.changes import ChangeSet
from mitelacd.documents import FloorDocuments
from mitelacd.legacy import LegacyDocument, LegacyFileError, validate_legacy
from mitelacd.logs import Logger
from mitelacd.pacing import Coalescer
from mitelacd.state import IFloorListener

log = Logger()


def load_legacy(path: FilePath[str], now: datetime.datetime) -> LegacyDocument | None:
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
    The document is the one the web serves, assembled change by change.
    """

    def __init__(
        self,
        path: FilePath[str],
        documents: FloorDocuments,
        clock: IReactorTime,
        interval: float = 1.0,
    ) -> None:
        self.path = path
        self.documents = documents
        self.clock = clock
        self.interval = interval
        self.writes = 0
        self._written: bytes | None = None
        self._pace = Coalescer(clock, interval, self.flush)
        self._retry: IDelayedCall | None = None

    def startService(self) -> None:
        super().startService()
        self.documents.addListener(self)

    def stopService(self) -> None:
        self.documents.removeListener(self)
        self._pace.cancel()
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        self.flush()
        super().stopService()

    def floorChanged(self, changes: ChangeSet) -> None:
        if self.documents.legacy_version == changes.version:
            self._pace.poke()

    def flush(self) -> None:
        """Write the current document now, unless the file already holds it."""
        body = self.documents.legacy()
        if body == self._written:
            return
        try:
            self.path.setContent(body, ext=b".tmp")
        except OSError as e:
            # The state itself is intact: try again a little later.
            log.error("cannot write {path}: {error}", path=self.path.path, error=e)
            if self.running and (self._retry is None or not self._retry.active()):
                self._retry = self.clock.callLater(max(self.interval, 1.0), self._pace.poke)
            return
        self._written = body
        self.writes += 1
