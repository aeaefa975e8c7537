"""Framing of the SMDR byte stream, and the reconnecting client around it (``--smdr``).

SMDR is one text line per call outcome (docs/smdr-protocol.md §1): no start
mark, a CR, LF or CR LF at the end, no keep-alive. The protocol cuts bytes
into lines whatever the reads look like and hands each whole line to an
:class:`SmdrSink` (the daemon's :class:`mitelacd.reports.smdrlive.SmdrService`);
it reads nothing into them. Silence is normal when nobody calls, so the link
is never dropped for it: TCP keep-alive finds a dead peer, and the sink
marks the feed idle.
"""

from __future__ import annotations

from typing import Protocol

from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from mitelacd.feed.protocol import (
    BackoffClientFactory,
    RecordListener,
    ResumingLineReceiver,
    StreamRecorder,
    host_port,
    why_lost,
)
from mitelacd.logs import Logger

log = Logger()

#: The SMDR port of the controller (smdr-protocol.md §1).
DEFAULT_SMDR_PORT = 1752
LF = b"\n"
CR = b"\r"
#: Longer than any record of any layout, with room for an envelope: a line
#: past this without an end is noise, dropped and counted up to its end.
MAX_LINE = 1024
#: Left over at the end of a line and between lines: NUL fill.
_FILL = b"\x00"


class SmdrSink(Protocol):
    """What the SMDR link tells the daemon."""

    def smdrConnected(self, host: str, port: int) -> None: ...

    def smdrLine(self, line: bytes) -> None:
        """One whole line, without its terminator."""

    def smdrNoise(self, data: bytes, reason: str) -> None:
        """Bytes that are no line: the start of a line past :data:`MAX_LINE`, or one
        cut off by the end of the connection. Counted and kept, never read."""

    def smdrDisconnected(self, why: str) -> None: ...

    def smdrConnectFailed(self, host: str, port: int, why: str) -> None: ...


class SMDRReceiver(ResumingLineReceiver):
    """Cut the SMDR stream into lines at CR, LF or CR LF and pass them on.

    Every CR is made an LF, so that ``LineReceiver`` does all of the
    buffering and the empty line of a CR LF pair is skipped. A line that
    grows past :data:`MAX_LINE` is dropped up to its end, counted, and the
    connection kept.
    """

    MAX_LENGTH = MAX_LINE

    factory: SmdrClientFactory

    def __init__(self) -> None:
        super().__init__()
        self._seen_line = False

    def connectionMade(self) -> None:
        assert self.transport is not None
        host, port = host_port(self.transport.getPeer())
        log.info("connected to SMDR at {host}:{port}", host=host, port=port)
        transport = self.transport
        if hasattr(transport, "setTcpKeepAlive"):
            # No keep-alive in the stream: TCP's finds a controller gone for good.
            transport.setTcpKeepAlive(1)
        if self.factory.recorder is not None:
            self.factory.recorder.connected(host, port)
        self.factory.sink.smdrConnected(host, port)

    def dataReceived(self, data: bytes) -> None:
        try:
            self.takeLines(data.replace(CR, LF))
        finally:
            if self.factory.recorder is not None:
                self.factory.recorder.received(data)

    def overlongLine(self, dropped: bytes) -> None:
        self.factory.sink.smdrNoise(
            dropped[:80], f"dropped {len(dropped)} bytes without a line end"
        )

    def lineReceived(self, line: bytes) -> None:
        line = line.strip(_FILL)
        if not line.strip():
            return  # the LF of a CR LF pair, or blank fill between lines
        if not self._seen_line:
            self._seen_line = True
            self.factory.validRecordSeen()
        try:
            self.factory.sink.smdrLine(line)
        except Exception:
            # One bad line must never cost the connection.
            log.failure("failed to handle SMDR line {line!r}", line=line)
        for listener in self.factory.line_listeners:
            try:
                listener(line)
            except Exception:
                log.failure("failed to pass SMDR line {line!r} on", line=line)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if self.factory.recorder is not None:
            self.factory.recorder.lost(why_lost(reason))
        # A last line without its end was cut off: never read (a record cut
        # after its duration still fits a layout, and would say the wrong
        # thing), only counted and kept as noise.
        rest = self.clearLineBuffer().strip(_FILL)
        if rest.strip() and not self.discarding:
            self.factory.sink.smdrNoise(rest, "a line cut off by the end of the connection")
        self.factory.sink.smdrDisconnected(why_lost(reason))


class SmdrClientFactory(BackoffClientFactory):
    """The SMDR link: one connection to the controller's SMDR port, kept with backoff.

    The delay only starts again from ``first_delay`` once a connection has
    brought a line, as on the ACD link.
    """

    protocol = SMDRReceiver  # type: ignore[assignment]
    link = "SMDR"
    peer = "SMDR"

    def __init__(
        self,
        sink: SmdrSink,
        clock: IReactorTime,
        max_delay: float = 30.0,
        first_delay: float = 1.0,
        recorder: StreamRecorder | None = None,
    ) -> None:
        super().__init__(clock, max_delay, first_delay, recorder)
        self.sink = sink
        #: Told of every line read, after the sink, as the sink gets it (``--mqtt``).
        self.line_listeners: list[RecordListener] = []

    def connectFailed(self, host: str, port: int, why: str) -> None:
        self.sink.smdrConnectFailed(host, port, why)
