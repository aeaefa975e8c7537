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

    def linkUp(self, shown: str) -> None:
        self.floor.feedConnected(self.broker.host, self.broker.port, self.link)

    def linkDown(self, why: str) -> None:
        self.floor.feedDisconnected(why, self.link)

    def recordFrom(self, source: str, payload: bytes) -> None:
        floor = self.floor
        with floor.batch():
            if not payload.startswith(STX):
                floor.noiseReceived(payload[:80], "a relayed record without its STX", source)
                return
            floor.relayed(self.link, source, record_of(payload))

    def smdrLineFrom(self, source: str, payload: bytes) -> None:
        if self.smdr_line is None:
            self.smdr_ignored += 1
            return
        self.smdr_line(source, payload)
