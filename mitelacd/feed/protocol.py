"""Framing of the PBX byte stream, and the reconnecting client around it.

The protocol only cuts bytes into records and hands the parsed results to the
floor state; it knows nothing of files or HTTP.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Protocol, cast

from twisted.internet.interfaces import IAddress, IDelayedCall, IReactorTime, ITCPTransport
from twisted.internet.protocol import ReconnectingClientFactory
from twisted.protocols.basic import LineReceiver
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure

from mitelacd.floor.records import CALL_EVENT_CODES, STX, Malformed, ParseResult, parse_record
from mitelacd.floor.state import FloorState, SourceInput
from mitelacd.logs import Logger

log = Logger()

LF = b"\n"
_LF_STX = LF + STX
_LF_LF_STX = LF + _LF_STX
#: Stripped from the end of a record: CR of CR LF, NUL fill, space padding.
_TRAILER = b"\r\x00 "
#: Told of each record read, as read: from its STX to its end, without the line end
#: (``--mqtt`` publishes them); called after the floor has taken the record in.
RecordListener = Callable[[bytes], None]
#: Seconds of silence after which a record still waiting for its end is applied.
IDLE_FLUSH = 0.5
#: Bytes between records that are not worth counting as noise.
_FILLER = b"\r\n\x00 "
#: Where the function code sits, counted from the STX.
_CODE_AT = 3
#: How long a record that has no terminator must be, counted from its STX,
#: before it may be applied (state-model §1): through the agent field of a
#: call event, a key digit and the path of G and S, the figures of K and Q,
#: and 17 for R, as §1 sets it. Shorter, the rest of it is missing, and a
#: cut agent ID would name an agent who does not exist.
COMPLETE_LENGTH: dict[int, int] = {
    **{ord(code): 24 for code in CALL_EVENT_CODES},
    ord("G"): 28,
    ord("S"): 28,
    ord("K"): 23,
    ord("Q"): 23,
    ord("R"): 17,
}


def is_complete(record: bytes) -> bool:
    """Whether a record without its terminator is long enough to apply (state-model §1).

    A record cut before its function code is never complete; one whose code
    is unknown is: it is unreadable however much of it comes.
    """
    if len(record) <= _CODE_AT:
        return False
    return len(record) >= COMPLETE_LENGTH.get(record[_CODE_AT], 0)


class ResumingLineReceiver(LineReceiver):
    """A ``LineReceiver`` that drops an overlong line and goes on at its end.

    :meth:`takeLines` is what a subclass feeds its bytes to (its own
    ``dataReceived`` stays LineReceiver's); :meth:`overlongLine` is told the
    start of each line dropped. The connection is kept.
    """

    delimiter = LF

    def __init__(self) -> None:
        self._discarding = False
        self._pending = b""

    def takeLines(self, data: bytes) -> None:
        """Cut ``data`` into lines, dropping the rest of an overlong one first."""
        if self._discarding:
            end = data.find(LF)
            if end < 0:
                return
            self._discarding = False
            data = data[end + 1 :]
        LineReceiver.dataReceived(self, data)
        # What followed an overlong line is fed again here, outside
        # LineReceiver's re-entrancy guard, so nothing after it is lost.
        while self._pending and not self._discarding:
            pending, self._pending = self._pending, b""
            LineReceiver.dataReceived(self, pending)

    def lineLengthExceeded(self, line: bytes) -> None:
        """Drop the overlong line, keep the connection, resume at its end."""
        end = line.find(LF)
        dropped = line if end < 0 else line[:end]
        self.overlongLine(dropped)
        if end < 0:
            self._discarding = True
        else:
            self._pending = line[end + 1 :]

    def overlongLine(self, dropped: bytes) -> None:
        """A line of ``dropped`` bytes (and maybe more to come) was too long to read."""

    @property
    def discarding(self) -> bool:
        """The rest of an overlong line is being dropped."""
        return self._discarding


class ACDReceiver(ResumingLineReceiver, TimeoutMixin):
    """Cut the ACD stream into records (docs/state-model.md §1) and pass them on.

    A record starts at STX and ends at LF or at the next STX. An LF put before
    every STX that has none lets ``LineReceiver`` do all of the buffering: a
    record is then always one line, whatever the reads look like.
    """

    #: A line longer than this without a terminator is noise.
    MAX_LENGTH = 4096

    factory: PBXClientFactory

    def __init__(self) -> None:
        super().__init__()
        self._seen_valid = False
        self._flush: IDelayedCall | None = None

    def callLater(self, period: float, func: Any) -> Any:
        """The watchdog runs on the factory's clock, so tests can drive it."""
        return self.factory.timer.callLater(period, func)

    def connectionMade(self) -> None:
        assert self.transport is not None
        peer = self.transport.getPeer()
        host, port = host_port(peer)
        log.info("connected to the PBX at {host}:{port}", host=host, port=port)
        self.setTimeout(self.factory.idle_timeout)
        if self.factory.recorder is not None:
            self.factory.recorder.connected(host, port)
        self.factory.floor.feedConnected(host, port)

    def dataReceived(self, data: bytes) -> None:
        try:
            # The records of one read are one change of the floor.
            with self.factory.floor.batch():
                self._received(data)
            # A record whose end has not come is applied after a short silence.
            flush = self._flush
            if flush is not None and flush.active():
                flush.reset(self.factory.flush_after)
            else:
                self._flush = self.factory.timer.callLater(
                    self.factory.flush_after, self.flushRecord
                )
        finally:
            # Kept as of when it was taken in: the idle flush counts from here.
            if self.factory.recorder is not None:
                self.factory.recorder.received(data)

    def flushRecord(self, closing: bool = False) -> None:
        """Apply a record whose terminator has not come (docs/state-model.md §1, idle flush).

        Only a complete one: too short for its code, it waits for the rest,
        so that a pause inside a record does not split it; when the
        connection is ``closing`` the rest will never come, and it is counted
        as cut instead. Bytes that come after an applied record start afresh:
        without an STX they are noise.
        """
        if self._flush is not None and self._flush.active():
            self._flush.cancel()
        self._flush = None
        rest = self.clearLineBuffer()
        if self._discarding or not rest:
            return
        floor = self.factory.floor
        if rest.startswith(STX) and not is_complete(rest):
            if closing:
                floor.recordCut(rest)
            else:
                # Back where it was (it holds no LF): the next bytes continue it.
                super().dataReceived(rest)
            return
        with floor.batch():
            self.lineReceived(rest)

    def _received(self, data: bytes) -> None:
        self.resetTimeout()
        # Records end in CR LF, so most STXs follow an LF already: an LF goes
        # before the others only, and a record is one line, not one line and
        # an empty one.
        framed = data.replace(STX, _LF_STX).replace(_LF_LF_STX, _LF_STX)
        if framed[:1] == LF and not self._buffer and not self._discarding:
            framed = framed[1:]  # the last read ended with a line
        self.takeLines(framed)

    def overlongLine(self, dropped: bytes) -> None:
        reason = f"dropped {len(dropped)} bytes without a record end"
        self.factory.floor.noiseReceived(dropped[:80], reason)

    def lineReceived(self, line: bytes) -> None:
        if not line:
            return  # an empty line: nothing to read
        try:
            self._line(line)
        except Exception:
            # One bad record must never cost the connection.
            log.failure("failed to handle {line!r}", line=line)

    def _line(self, line: bytes) -> None:
        floor = self.factory.floor
        if not line.startswith(STX):
            if line.strip(_FILLER):
                floor.noiseReceived(line)
            return
        result = record_of(line)
        if not self._seen_valid and not isinstance(result, Malformed):
            self._seen_valid = True
            self.factory.validRecordSeen()
        floor.recordReceived(result)
        listeners = self.factory.record_listeners
        if listeners:
            raw = line.rstrip(b"\r")
            for listener in listeners:
                listener(raw)

    def timeoutConnection(self) -> None:
        log.warn(
            "no data from the PBX for {seconds} s: dropping the link",
            seconds=self.factory.idle_timeout,
        )
        cast(ITCPTransport, self.transport).abortConnection()

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.setTimeout(None)
        if self.factory.recorder is not None:
            self.factory.recorder.lost(why_lost(reason))
        # The last record may have had no terminator: it still counts when
        # it is complete, and is counted as cut when it is not.
        self.flushRecord(closing=True)
        self.factory.floor.feedDisconnected(why_lost(reason))


def record_of(line: bytes) -> ParseResult:
    """A record as framed (from its STX, maybe with its line end) read by the parser."""
    body = line[1:].rstrip(_TRAILER + LF)
    return parse_record(body) if body else Malformed(line, "empty record")


def host_port(address: IAddress) -> tuple[str, int]:
    return getattr(address, "host", str(address)), getattr(address, "port", 0)


def why_lost(reason: Failure | None) -> str:
    if reason is None:
        return "connection closed"
    return reason.getErrorMessage() or getattr(reason.type, "__name__", "error")


class StreamRecorder(Protocol):
    """Keeps what the PBX sends, as read (``mitelacd.feed.capture.CaptureRecorder``).

    ``received`` is called once the read has been handled, even when that failed.
    """

    def connected(self, host: str, port: int) -> None: ...

    def received(self, data: bytes) -> None: ...

    def lost(self, why: str) -> None: ...


class BackoffClientFactory(ReconnectingClientFactory):
    """Keep one connection, retrying with capped, jittered backoff on an injected clock.

    The delay is only reset once a connection has delivered a valid record
    (:meth:`validRecordSeen`), so a peer that accepts and hangs up at once
    is retried ever more slowly. ``link`` and ``peer`` name the link and
    what is at its other end in the log.
    """

    noisy = False
    link = "PBX"
    peer = "the PBX"

    def __init__(
        self,
        clock: IReactorTime,
        max_delay: float = 30.0,
        first_delay: float = 1.0,
        recorder: StreamRecorder | None = None,
    ) -> None:
        #: Told of every read and connection change; None: nothing is kept.
        self.recorder = recorder
        # ReconnectingClientFactory asks for a whole reactor but only calls
        # callLater on it; so do the watchdogs.
        self.clock = clock  # type: ignore[assignment]
        self.timer = clock
        self.maxDelay = max_delay  # type: ignore[assignment]
        self.initialDelay = self.delay = min(first_delay, max_delay)

    def validRecordSeen(self) -> None:
        self.resetDelay()

    def retry(self, connector: Any = None) -> None:
        """Retry after a jittered delay that never passes ``maxDelay``.

        Twisted jitters the delay after capping it, so a 30 s cap would let
        waits of 33 s and more through. Here the jitter is drawn first, and a
        draw past the cap is folded back below it: waits at the cap still
        spread out, so that many listeners do not redial at once.
        """
        jitter = self.jitter
        if jitter and self.continueTrying:
            drawn = random.normalvariate(self.delay, self.delay * jitter)
            cap = self.maxDelay
            self.delay = max(0.0, 2 * cap - drawn if drawn > cap else drawn)
        # Twisted's own jitter is off for this call: the delay is already drawn.
        self.jitter = 0
        try:
            ReconnectingClientFactory.retry(self, connector)
        finally:
            self.jitter = jitter

    def nextAttempt(self) -> float | None:
        """When the next reconnection attempt is due, or None when none is scheduled."""
        call = self._callID
        return call.getTime() if call is not None and call.active() else None

    def clientConnectionLost(self, connector: Any, reason: Failure) -> None:
        if self.continueTrying:
            log.warn("lost the {link} link: {why}", link=self.link, why=why_lost(reason))
        ReconnectingClientFactory.clientConnectionLost(self, connector, reason)
        self._log_retry(connector)

    def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
        if self.continueTrying:
            host, port = host_port(connector.getDestination())
            log.warn(
                "could not connect to {peer} at {host}:{port}: {why}",
                peer=self.peer,
                host=host,
                port=port,
                why=why_lost(reason),
            )
            self.connectFailed(host, port, why_lost(reason))
        ReconnectingClientFactory.clientConnectionFailed(self, connector, reason)
        self._log_retry(connector)

    def connectFailed(self, host: str, port: int, why: str) -> None:
        """An attempt to connect failed: for the state to say so."""

    def _log_retry(self, connector: Any) -> None:
        call = self._callID
        if self.continueTrying and call is not None and call.active():
            host, port = host_port(connector.getDestination())
            # The delay of the call actually scheduled, jitter included.
            log.info(
                "retrying {host}:{port} in {delay:.1f} s (attempt {attempt})",
                host=host,
                port=port,
                delay=call.getTime() - self.timer.seconds(),
                attempt=self.retries,
            )


class PBXClientFactory(BackoffClientFactory):
    """The ACD link: one connection to the PBX's port 15373, kept with backoff."""

    protocol = ACDReceiver  # type: ignore[assignment]

    def __init__(
        self,
        floor: FloorState | SourceInput,
        clock: IReactorTime,
        idle_timeout: float | None = 60.0,
        max_delay: float = 30.0,
        first_delay: float = 1.0,
        flush_after: float = IDLE_FLUSH,
        recorder: StreamRecorder | None = None,
    ) -> None:
        super().__init__(clock, max_delay, first_delay, recorder)
        self.floor = floor
        self.flush_after = flush_after
        self.idle_timeout = idle_timeout
        #: Told of every record read, after the floor (:data:`RecordListener`).
        self.record_listeners: list[RecordListener] = []

    def connectFailed(self, host: str, port: int, why: str) -> None:
        self.floor.feedConnectFailed(host, port, why)
