"""An MQTT source's records, applied to the floor as if read from their controllers.

Another mitelacd publishes each record it reads, as read, on
``PREFIX/records/<source>`` (:mod:`mitelacd.mqtt.publisher`).
:class:`FloorRelay` is what the subscriber of an ``mqtt://`` source
(:mod:`mitelacd.mqtt.subscriber`) hands them to: each record is framed and
parsed as the ACD link does, and applied for the source it was read from,
which keeps its name (state-model §9). SMDR lines go to the SMDR service,
for their source too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from mitelacd.feed.protocol import record_of
from mitelacd.floor.records import STX
from mitelacd.floor.state import FloorState
from mitelacd.logs import Logger

log = Logger()

#: The most sources one ``mqtt://`` link may bring, and the longest name: whatever
#: the broker carries, the floor's tables (and the metrics' labels) stay bounded.
MAX_RELAYED_SOURCES = 64
MAX_SOURCE_NAME = 100


@attrs.define
class FloorRelay:
    """The floor's side of one ``mqtt://`` source named ``link``."""

    floor: FloorState
    link: str
    #: The broker, for what the floor shows of the link (never its password).
    broker: Any
    #: Where SMDR lines go, with their source's name; None: this daemon keeps no SMDR.
    smdr_line: Callable[[str, bytes], None] | None = None
    #: SMDR lines let go because this daemon keeps no SMDR.
    smdr_ignored: int = 0
    #: The sources this link has brought so far.
    sources: set[str] = attrs.Factory(set)
    #: Records and SMDR lines let go because their source was one too many (or its
    #: name too long).
    refused: int = 0
    _refusal_said: bool = False
    _smdr_said: bool = False

    def linkUp(self, shown: str) -> None:
        self.floor.feedConnected(self.broker.host, self.broker.port, self.link)

    def linkDown(self, why: str) -> None:
        self.floor.feedDisconnected(why, self.link)

    def _admit(self, source: str) -> bool:
        """Whether a message of ``source`` is taken; the first refusal is logged."""
        if source in self.sources:
            return True
        if len(self.sources) < MAX_RELAYED_SOURCES and len(source) <= MAX_SOURCE_NAME:
            self.sources.add(source)
            return True
        self.refused += 1
        if not self._refusal_said:
            self._refusal_said = True
            log.warn(
                "MQTT source {link!r}: messages of source {source!r} let go: a link brings at"
                " most {most} sources, named in at most {longest} characters; such messages"
                " are counted, not logged again",
                link=self.link,
                source=source[:MAX_SOURCE_NAME],
                most=MAX_RELAYED_SOURCES,
                longest=MAX_SOURCE_NAME,
            )
        return False

    def recordFrom(self, source: str, payload: bytes) -> None:
        if not self._admit(source):
            return
        floor = self.floor
        with floor.batch():
            if not payload.startswith(STX):
                floor.noiseReceived(payload[:80], "a relayed record without its STX", source)
                return
            floor.relayed(self.link, source, record_of(payload))

    def smdrLineFrom(self, source: str, payload: bytes) -> None:
        if not self._admit(source):
            return
        if self.smdr_line is None:
            self.smdr_ignored += 1
            if not self._smdr_said:
                self._smdr_said = True
                log.warn(
                    "MQTT source {link!r} brings SMDR lines, which this daemon does not keep;"
                    " they are counted, not logged again",
                    link=self.link,
                )
            return
        self.smdr_line(source, payload)
