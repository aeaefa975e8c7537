"""``/api/v1/events``: the floor pushed as Server-Sent Events, a snapshot then deltas.

A client gets one ``snapshot`` (the ``/api/v1/state`` document) and then a
``delta`` per paced change holding only what changed. Event ids are floor
versions: they only grow, also across restarts. Deltas are rendered once
for every client and kept in a bounded ring, so that

* a client reconnecting with ``Last-Event-ID`` gets the deltas it missed, or
  a fresh snapshot once they have left the ring;
* a client whose socket stops draining is skipped (nothing queues up for
  it); when it drains it catches up from the ring, or gets one snapshot.
  One that has not drained for two heartbeats is cut off: its connection
  is aborted, which gives its socket buffers back at once.

``?full=1`` keeps the older stream of whole ``state`` documents, paced apart.

The message on every board (:mod:`mitelacd.web.message`) goes out as a
``board_message`` event at each change, at once. It is not a change of the
floor and has no id: like ``stale``, a client that was skipped or resumes
gets the current message once (when it changed since start), not every
change it missed. The snapshot
holds it too, with the ``board_version`` of the page the daemon serves.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure
from zope.interface import implementer

from mitelacd.floor.changes import ENTITY_KINDS, ChangeSet, IFloorListener, PendingChanges
from mitelacd.floor.documents import FloorDocuments
from mitelacd.floor.render import compact, iso_utc
from mitelacd.floor.state import FloorState
from mitelacd.logs import Logger
from mitelacd.pacing import Coalescer
from mitelacd.web.message import MessageService

log = Logger()

#: The default ``--push-interval``: a delta for every change, that is for every
#: read from the PBX socket. Under load reads grow and so do deltas, which
#: keeps a board closer to the floor than a timer does (docs/PERFORMANCE.md).
DEFAULT_PUSH_INTERVAL = 0.0
#: Large events and documents are written in slices of this size, as the socket drains.
CHUNK = 64 * 1024
#: Whole-state events (``?full=1``) are sent at most this often.
FULL_STATE_INTERVAL = 0.5
#: The ``Retry-After`` of the 503 that clients beyond the cap get, in seconds
#: (the wall board tries its event stream again after as long).
BUSY_RETRY_AFTER = 30


def envelope(now: float, stale: bool) -> bytes:
    """The start of every API document: when it was made and whether the feed is stale."""
    return b'{"generated_at":%s,"stale":%s,' % (
        compact(iso_utc(now)),
        b"true" if stale else b"false",
    )


class EventStreamRequest(Protocol):
    """What an event stream needs of its HTTP request (``twisted.web.server.Request`` has it)."""

    def registerProducer(self, producer: IPushProducer, streaming: bool) -> None: ...

    def unregisterProducer(self) -> None: ...

    def write(self, data: bytes) -> None: ...

    def finish(self) -> None: ...

    def notifyFinish(self) -> Deferred[None]: ...

    def loseConnection(self) -> None: ...


@attrs.frozen
class Delta:
    """One rendered ``delta`` event, from version ``previous`` to ``version``."""

    previous: int
    version: int
    event: bytes


class DeltaRing:
    """The last deltas sent, bounded in count and in bytes, for clients catching up."""

    def __init__(self, version: int, max_events: int = 4096, max_bytes: int = 8 << 20) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        self._deltas: deque[Delta] = deque()
        self._bytes = 0
        #: The version after the newest delta (where the next one starts).
        self.last = version

    def __len__(self) -> int:
        return len(self._deltas)

    @property
    def size(self) -> int:
        return self._bytes

    def append(self, delta: Delta) -> None:
        self._deltas.append(delta)
        self._bytes += len(delta.event)
        self.last = delta.version
        while self._deltas and (
            len(self._deltas) > self.max_events or self._bytes > self.max_bytes
        ):
            self._bytes -= len(self._deltas.popleft().event)

    def since(self, version: int | None, current: int) -> Sequence[Delta] | None:
        """The deltas that bring a client at ``version`` up to date.

        An empty list when it needs none (its version is at least where the
        ring ends, and not ahead of the floor); None when the ring cannot
        bring it up to date and it needs a snapshot.
        """
        if version is None or version > current:
            return None
        if version >= self.last:
            return ()
        deltas = self._deltas
        if not deltas or deltas[0].previous > version:
            return None
        # Deltas are contiguous: each starts where the one before it ended.
        first = bisect.bisect_right(deltas, version, key=_version_of)
        return list(deltas)[first:]


def _version_of(delta: Delta) -> int:
    return delta.version


@implementer(IPushProducer)
class Subscriber:
    """One event stream client, and where it stands.

    ``cursor`` is the version the client holds once everything written to it
    has arrived; None until it has a snapshot. What is still to be written
    is at most one snapshot (or whole state) in slices, or references to
    deltas that the ring holds anyway.
    """

    def __init__(
        self, request: EventStreamRequest, push: EventPush, full: bool, cursor: int | None
    ) -> None:
        self.request = request
        self.push = push
        self.full = full
        self.cursor = cursor
        self.stale_sent: bool | None = None
        #: The version of the board message the client was sent last.
        self.message_sent: int | None = None
        self.paused = False
        self.paused_at = 0.0
        self.gone = False
        self._out: deque[memoryview | bytes] = deque()
        self._pumping = False
        request.registerProducer(self, True)

    @property
    def idle(self) -> bool:
        """Reading, and with nothing of ours still to write."""
        return not self.paused and not self._out and not self.gone

    @property
    def pending_bytes(self) -> int:
        return sum(len(chunk) for chunk in self._out)

    def send(self, data: bytes) -> None:
        """Write now (the caller knows the client is idle)."""
        self.request.write(data)

    def queue(self, parts: Sequence[bytes]) -> None:
        for part in parts:
            if len(part) > CHUNK:
                view = memoryview(part)
                self._out.extend(view[i : i + CHUNK] for i in range(0, len(part), CHUNK))
            elif part:
                self._out.append(part)

    def pump(self) -> None:
        """Write what is due, slice by slice, until the socket is full or all is sent."""
        if self._pumping:
            return  # a write below resumed us: the loop is already running
        self._pumping = True
        try:
            while not self.paused and not self.gone:
                if self._out:
                    chunk = self._out.popleft()
                    self.request.write(chunk if isinstance(chunk, bytes) else bytes(chunk))
                elif not self.push.catch_up(self):
                    break
        finally:
            self._pumping = False

    # IPushProducer, driven by the HTTP channel as its socket fills and drains.

    def pauseProducing(self) -> None:
        if not self.paused:
            self.paused = True
            self.paused_at = self.push.clock.seconds()

    def resumeProducing(self) -> None:
        self.paused = False
        self.pump()

    def stopProducing(self) -> None:
        self.paused = True
        self.push.drop(self)


@implementer(IFloorListener)
class EventPush:
    """Every event stream client, the pacing of deltas and the ring they are kept in."""

    def __init__(
        self,
        floor: FloorState,
        documents: FloorDocuments,
        clock: IReactorTime,
        push_interval: float = DEFAULT_PUSH_INTERVAL,
        heartbeat: float = 15.0,
        retry_ms: int = 2000,
        max_clients: int = 1000,
        ring: DeltaRing | None = None,
        messages: MessageService | None = None,
        board_version: str | None = None,
    ) -> None:
        self.floor = floor
        self.documents = documents
        self.clock = clock
        self.push_interval = push_interval
        self.heartbeat = heartbeat
        self.retry_ms = retry_ms
        self.max_clients = max_clients
        self.subscribers: set[Subscriber] = set()
        #: The board message, in the snapshot and pushed when it changes; None: no message.
        self.messages = messages
        #: The served board page's version, in the snapshot; None: left out.
        self.board_version = board_version
        self.ring = DeltaRing(documents.version) if ring is None else ring
        self.stale = floor.isStale()
        self.deltas_sent = 0
        self._pending = PendingChanges()
        self._pace = Coalescer(clock, push_interval, self._broadcast)
        self._full_pace = Coalescer(clock, max(push_interval, FULL_STATE_INTERVAL), self._send_full)
        self._beat = LoopingCall(self._heartbeat)
        self._beat.clock = clock
        self._stale_watch = LoopingCall(self.checkStale)
        self._stale_watch.clock = clock

    def start(self) -> None:
        self.documents.addListener(self)
        if self.messages is not None:
            self.messages.addListener(self.messageChanged)
        self._beat.start(self.heartbeat, now=False)
        self._stale_watch.start(1.0, now=False)

    def stop(self) -> None:
        self.documents.removeListener(self)
        if self.messages is not None:
            self.messages.removeListener(self.messageChanged)
        self._pace.cancel()
        self._full_pace.cancel()
        for loop in (self._beat, self._stale_watch):
            if loop.running:
                loop.stop()
        for subscriber in list(self.subscribers):
            self.drop(subscriber)
            subscriber.gone = True
            subscriber.request.unregisterProducer()
            subscriber.request.finish()

    # Clients ---------------------------------------------------------------

    def full(self) -> bool:
        return len(self.subscribers) >= self.max_clients

    def subscribe(
        self, request: EventStreamRequest, full: bool = False, last_event_id: int | None = None
    ) -> Subscriber:
        if self._pending and not full:
            self._broadcast()  # what gathered while nobody listened, into the ring
        subscriber = Subscriber(request, self, full, None if full else last_event_id)
        if self.messages is not None:
            # A client resuming holds the message as it was at start, or a later one:
            # the ring has nothing of an earlier run, which gets a snapshot.
            subscriber.message_sent = 0
        self.subscribers.add(subscriber)
        request.notifyFinish().addBoth(self._finished, subscriber)
        subscriber.send(b"retry: %d\n\n" % self.retry_ms)
        subscriber.pump()
        return subscriber

    def _finished(self, result: Failure | None, subscriber: Subscriber) -> None:
        subscriber.gone = True
        self.drop(subscriber)

    def drop(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    def catch_up(self, subscriber: Subscriber) -> bool:
        """Queue what ``subscriber`` is missing; whether there was anything."""
        version = self.documents.version
        message = self.messages.version if self.messages is not None else None
        if subscriber.full:
            if (
                subscriber.cursor == version
                and subscriber.stale_sent == self.stale
                and subscriber.message_sent == message
            ):
                return False
            self._queue_whole(subscriber, b"state")
            return True
        missed = self.ring.since(subscriber.cursor, version)
        if missed is None:
            self._queue_whole(subscriber, b"snapshot")
        elif missed:
            subscriber.queue([delta.event for delta in missed])
            subscriber.cursor = missed[-1].version
        elif subscriber.stale_sent != self.stale:
            subscriber.queue([self._stale_event()])
            subscriber.stale_sent = self.stale
        elif subscriber.message_sent != message:
            subscriber.queue([self._message_event()])
            subscriber.message_sent = message
        else:
            return False
        return True

    def _queue_whole(self, subscriber: Subscriber, kind: bytes) -> None:
        docs = self.documents
        stale = b"true" if self.stale else b"false"
        head = b"event: %s\nid: %d\ndata: " % (kind, docs.version)
        head += envelope(self.floor.now(), self.stale) + self.web_members()
        subscriber.queue([head, *docs.state(stale), b"\n\n"])
        subscriber.cursor = docs.version
        subscriber.stale_sent = self.stale
        subscriber.message_sent = self.messages.version if self.messages is not None else None

    def web_members(self) -> bytes:
        """What the web adds to the ``/api/v1/state`` document, after the envelope."""
        members = b""
        if self.board_version is not None:
            members += b'"board_version":%s,' % compact(self.board_version)
        if self.messages is not None:
            members += b'"message":%s,' % self.messages.rendered()
        return members

    def _message_event(self) -> bytes:
        assert self.messages is not None
        return b'event: board_message\ndata: {"message":%s}\n\n' % self.messages.rendered()

    def messageChanged(self) -> None:
        """The board message changed: every client is sent it now (or when it drains)."""
        for subscriber in list(self.subscribers):
            subscriber.pump()

    def _stale_event(self) -> bytes:
        return b"event: stale\ndata: %s\n\n" % (envelope(self.floor.now(), self.stale)[:-1] + b"}")

    # Changes ---------------------------------------------------------------

    def floorChanged(self, changes: ChangeSet) -> None:
        self._pending.add(changes)
        if not self.subscribers:
            # Nobody to send to: what changed gathers up (one entry per
            # entity at most) and becomes one delta in the ring when a
            # client comes, so a board whose link blinked still resumes.
            return
        if any(not s.full for s in self.subscribers):
            if self.push_interval <= 0:
                self._broadcast()
            else:
                self._pace.poke()
        if any(s.full for s in self.subscribers):
            self._full_pace.poke()

    def _broadcast(self) -> None:
        pending = self._pending
        if not pending:
            return
        self._set_stale(self.floor.isStale())
        delta = self._render(pending)
        pending.clear()
        self.ring.append(delta)
        self.deltas_sent += 1
        for subscriber in list(self.subscribers):
            if subscriber.full:
                continue
            cursor = subscriber.cursor
            if subscriber.idle and cursor is not None and cursor >= delta.previous:
                subscriber.send(delta.event)
                subscriber.cursor = delta.version
                subscriber.stale_sent = self.stale
            else:
                subscriber.pump()

    def _render(self, pending: PendingChanges) -> Delta:
        assert pending.previous is not None and pending.version is not None
        now = self.floor.now()
        out = [
            b'event: delta\nid: %d\ndata: {"from":%d,"version":%d,"generated_at":%s,"stale":%s'
            % (
                pending.version,
                pending.previous,
                pending.version,
                compact(iso_utc(now)),
                b"true" if self.stale else b"false",
            )
        ]
        for kind in ENTITY_KINDS:
            updates = pending.entities[kind]
            if updates:
                fragments = self.documents.entities[kind]
                members = [compact(key) + b":" + (fragments.get(key) or b"null") for key in updates]
                out.append(b',"%s":{%s}' % (kind.encode("ascii"), b",".join(members)))
        if pending.feed:
            out.append(b',"feed":' + compact(pending.feed))
        if pending.totals is not None:
            out.append(b',"totals":' + self.documents.totals_json())
        if pending.last_update is not None:
            out.append(b',"last_update":' + compact(iso_utc(pending.last_update or None)))
        out.append(b"}\n\n")
        return Delta(pending.previous, pending.version, b"".join(out))

    def _send_full(self) -> None:
        for subscriber in list(self.subscribers):
            if subscriber.full:
                subscriber.pump()

    # Staleness and heartbeats ----------------------------------------------

    def checkStale(self) -> None:
        """Tell every client when the feed goes stale (or fresh) with no change of the floor."""
        if self._set_stale(self.floor.isStale()):
            for subscriber in list(self.subscribers):
                subscriber.pump()

    def _set_stale(self, stale: bool) -> bool:
        if stale == self.stale:
            return False
        self.stale = stale
        if stale:
            log.warn(
                "the PBX feed is stale: no record for {seconds} s",
                seconds=self.floor.stale_after,
            )
        return True

    def _heartbeat(self) -> None:
        limit = self.clock.seconds() - 2 * self.heartbeat
        for subscriber in list(self.subscribers):
            if subscriber.idle:
                subscriber.send(b": heartbeat\n\n")
            elif subscriber.paused and subscriber.paused_at < limit:
                # A frozen tab or a dead link: its socket buffers are the
                # only thing it still holds, and they are given back now.
                log.info("dropping an event stream client that stopped reading")
                self.drop(subscriber)
                subscriber.gone = True
                abort(subscriber.request)


def abort(request: EventStreamRequest) -> None:
    """Close a client's connection now, dropping what is still unsent.

    ``loseConnection`` would wait for the send buffers to drain first, which
    a client that stopped reading never lets happen: its connection, and the
    megabytes of kernel buffers behind it, would stay for good. Only a
    request with no transport to abort (a test's) is closed politely.
    """
    transport = getattr(getattr(request, "channel", None), "transport", None)
    abort_connection = getattr(transport, "abortConnection", None)
    if abort_connection is not None:
        abort_connection()
    else:
        request.loseConnection()


def parse_event_id(raw: Any) -> int | None:
    """A ``Last-Event-ID`` as sent back by a client; None when it is not one of ours."""
    if not raw:
        return None
    try:
        text = raw.decode("ascii") if isinstance(raw, bytes) else str(raw)
        return int(text.strip()) if text.strip().isdigit() else None
    except (UnicodeDecodeError, ValueError):
        return None
