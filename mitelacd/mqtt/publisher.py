"""``--mqtt``: the floor, every record and every SMDR line published to an MQTT broker.

:class:`MQTTPublisher` is a service and a listener of the floor's documents.
What it is told on the reactor's thread it only notes, at a cost that does
not depend on the broker:

* an agent, group or path that changed is marked (``PREFIX/agents/<id>``,
  ``PREFIX/groups/<n>``, ``PREFIX/paths/<n>``, retained). Marks coalesce:
  a topic waits once however often it changes, and what is sent is the
  entity's JSON as the API serves it when it is sent, or an empty message
  (which deletes the retained one) when the entity is gone;
* a record (``PREFIX/records/<source>``) or SMDR line (``PREFIX/smdr/<source>``)
  read is appended to a queue of at most ``max_records`` messages and
  ``max_bytes`` bytes; past that the oldest are dropped and counted, and
  the log says so once until the queue has caught up.

Then a pump, one call later, hands the link (:mod:`mitelacd.mqtt.link`) as
many messages as its window takes, all at QoS 1: the records and SMDR lines
first, in order, then discovery configs, then entity topics. Each
acknowledgement frees a place. When the link breaks, what was handed and
not acknowledged goes back to the front of its queue, and the broker is
dialled again after a capped, jittered backoff. On every connection
``PREFIX/status`` is set to ``online`` (retained; ``offline`` is the last
will) and the whole floor is marked again, for a broker that lost its
retained messages. At a clean stop what waits is sent (for at most
``stop_timeout`` seconds), then ``offline``, then the link is closed.
"""

from __future__ import annotations

import random
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any, Final, Literal

import attrs
from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from zope.interface import implementer

from mitelacd.floor.changes import ChangeSet, IFloorListener
from mitelacd.floor.documents import FloorDocuments
from mitelacd.floor.render import iso_utc
from mitelacd.logs import Logger
from mitelacd.mqtt.discovery import (
    PUBLISHED_KINDS,
    SENSORS,
    PublishedKind,
    Sensor,
    config_payload,
    config_topic,
    node_id,
)
from mitelacd.mqtt.link import BrokerLink
from mitelacd.mqtt.url import Broker, topic_level

log = Logger()

#: The most records and SMDR lines that wait for the broker; past it the oldest go.
MAX_PENDING_RECORDS: Final = 100_000
#: The most bytes of them that wait.
MAX_PENDING_BYTES: Final = 32 * 1024 * 1024
#: Messages handed to the link and not yet acknowledged, at most.
WINDOW: Final = 100
#: How long a clean stop waits for the broker to take what waits, in seconds.
STOP_TIMEOUT: Final = 5.0
#: Twisted's growth and jitter of reconnection delays (``ReconnectingClientFactory``).
BACKOFF_FACTOR: Final = 2.7182818284590451
BACKOFF_JITTER: Final = 0.11962656472

MessageKind = Literal["status", "offline", "record", "config", "entity"]


@attrs.frozen
class _Message:
    """A message handed to the link, kept until it is acknowledged."""

    kind: MessageKind
    topic: str
    payload: bytes
    retain: bool
    #: The entity of an ``entity`` message, the sensor of a ``config`` one.
    entity: tuple[PublishedKind, str] | None = None
    sensor: Sensor | None = None


@attrs.define
class Backoff:
    """Delays between attempts: from ``first``, growing, jittered, never past ``cap``.

    As on the PBX link (:class:`mitelacd.feed.protocol.BackoffClientFactory`),
    the jitter is drawn before the cap is applied, and a draw past the cap
    is folded back below it, so that delays at the cap still spread out.
    """

    first: float
    cap: float
    delay: float = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.delay = min(self.first, self.cap)

    def next(self) -> float:
        """The wait before the next attempt."""
        drawn = random.normalvariate(self.delay, self.delay * BACKOFF_JITTER)
        wait = 2 * self.cap - drawn if drawn > self.cap else drawn
        self.delay = min(self.delay * BACKOFF_FACTOR, self.cap)
        return max(0.0, wait)


@implementer(IFloorListener)
class MQTTPublisher(Service):
    """The floor on an MQTT broker (docs/mqtt.md); health in :meth:`health`.

    ``source`` names the feed in the records' and SMDR lines' topics (the
    ``--history-source``). ``reactor`` watches the broker's socket and runs
    the connecting thread's result; ``clock`` (by default the reactor) times
    the pump, the backoff and the keep-alive. ``discovery`` adds Home
    Assistant's discovery configs.
    """

    def __init__(
        self,
        broker: Broker,
        documents: FloorDocuments,
        source: str,
        reactor: Any,
        clock: IReactorTime | None = None,
        *,
        discovery: bool = False,
        first_delay: float = 1.0,
        max_delay: float = 30.0,
        max_records: int = MAX_PENDING_RECORDS,
        max_bytes: int = MAX_PENDING_BYTES,
        window: int = WINDOW,
        stop_timeout: float = STOP_TIMEOUT,
        client_id: str | None = None,
    ) -> None:
        self.broker = broker
        self.documents = documents
        self.source = source
        self.discovery = discovery
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.window = window
        self.stop_timeout = stop_timeout
        self._reactor = reactor
        self._clock: IReactorTime = clock if clock is not None else reactor
        self._wall: Callable[[], float] = documents.floor.now
        prefix = broker.prefix
        self.status_topic = f"{prefix}/status"
        self.records_topic = f"{prefix}/records/{topic_level(source)}"
        self.smdr_topic = f"{prefix}/smdr/{topic_level(source)}"
        self.client_id = client_id or f"mitelacd-{node_id(prefix)}-{uuid.uuid4().hex[:8]}"
        # What waits for the broker.
        self._records: deque[tuple[str, bytes]] = deque()
        self._record_bytes = 0
        self._entities: OrderedDict[tuple[PublishedKind, str], None] = OrderedDict()
        self._configs: OrderedDict[tuple[PublishedKind, str, Sensor], None] = OrderedDict()
        #: The entities discovery has configs for, and the name each was given.
        self._named: dict[tuple[PublishedKind, str], str | None] = {}
        self._inflight: dict[int, _Message] = {}
        #: The status to publish before anything else, once connected.
        self._announce: bytes | None = None
        # The link.
        self._link: BrokerLink | None = None
        self.connected = False
        #: Why the broker cannot be reached just now; None while connected or first connecting.
        self.problem: str | None = None
        self._since = self._wall()
        self._failures = 0
        self._acked = False
        self._backoff = Backoff(first_delay, max_delay)
        self._retry: IDelayedCall | None = None
        self._pump_call: IDelayedCall | None = None
        # Taking in, and stopping.
        self._accepting = False
        self._listening = False
        self._stopping: Deferred[None] | None = None
        self._deadline: IDelayedCall | None = None
        self._offline_sent = False
        #: Messages the broker acknowledged, records and lines dropped, connections made.
        self.published = 0
        self.dropped = 0
        self.connections = 0
        #: Dropped since the queue last caught up (the log says so once).
        self._dropping = 0

    # What the daemon tells it ----------------------------------------------

    def floorChanged(self, changes: ChangeSet) -> None:
        if not self._accepting:
            return
        marked = False
        for kind in PUBLISHED_KINDS:
            updates = changes.entities(kind)
            if not updates:
                continue
            marked = True
            entities = self._entities
            for key, entity in updates.items():
                entities[(kind, key)] = None
                if self.discovery:
                    self._rename(kind, key, self._name_of(kind, key), entity is None)
        if marked:
            self._wake()

    def _name_of(self, kind: PublishedKind, key: str) -> str | None:
        """The name the entity's view shows: the site's names file's (``name`` of the API)."""
        names = self.documents.floor.names
        if kind == "agents":
            entry = names.agent(key)
            return entry.name if entry else None
        return (names.groups if kind == "groups" else names.paths).get(key)

    def record(self, line: bytes) -> None:
        """An ACD record as read (STX to its end): for ``PREFIX/records/<source>``."""
        self._queue(self.records_topic, line)

    def smdr_line(self, line: bytes) -> None:
        """An SMDR line as read (without its end): for ``PREFIX/smdr/<source>``."""
        self._queue(self.smdr_topic, line)

    def records_of(self, source: str) -> Callable[[bytes], None]:
        """What the link of the named source ``source`` tells of each record it reads."""
        topic = f"{self.broker.prefix}/records/{topic_level(source)}"
        return lambda line: self._queue(topic, line)

    def smdr_lines_of(self, source: str) -> Callable[[bytes], None]:
        """What the SMDR link of the named source ``source`` tells of each line it reads."""
        topic = f"{self.broker.prefix}/smdr/{topic_level(source)}"
        return lambda line: self._queue(topic, line)

    def _queue(self, topic: str, payload: bytes) -> None:
        if not self._accepting:
            return
        self._records.append((topic, payload))
        self._record_bytes += len(payload)
        if len(self._records) > self.max_records or self._record_bytes > self.max_bytes:
            self._bound()
        self._wake()

    def _rename(self, kind: PublishedKind, key: str, name: str | None, gone: bool) -> None:
        """Discovery: mark the entity's configs when it came, went or was renamed."""
        entity = (kind, key)
        if gone:
            if entity not in self._named:
                return
            del self._named[entity]
        elif entity in self._named and self._named[entity] == name:
            return
        else:
            self._named[entity] = name
        for sensor in SENSORS[kind]:
            self._configs[(kind, key, sensor)] = None

    # The service -----------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._accepting = True
        self._since = self._wall()
        self.documents.addListener(self)
        self._listening = True
        if self.discovery:
            for kind in PUBLISHED_KINDS:
                for key in self._keys(kind):
                    self._named[(kind, key)] = self._name_of(kind, key)
        log.info(
            "publishing the floor to the MQTT broker {broker} (records on {records}){discovery}",
            broker=self.broker.shown(),
            records=self.records_topic,
            discovery=", with Home Assistant discovery" if self.discovery else "",
        )
        self._dial()

    def stopService(self) -> Deferred[None]:
        super().stopService()
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        link = self._link
        if link is None or not self.connected:
            self._link = None
            if link is not None:
                link.abort("stopping")
            self._end()
            return succeed(None)
        self._stopping = Deferred()
        self._deadline = self._clock.callLater(self.stop_timeout, self._give_up)
        self._wake()
        return self._stopping

    def _give_up(self) -> None:
        self._deadline = None
        log.warn(
            "stopping without waiting longer for the MQTT broker {broker}:"
            " {pending} messages not acknowledged",
            broker=self.broker.shown(),
            pending=self.pending,
        )
        if self._link is not None:
            self._link.abort("stopping")

    def _end(self) -> None:
        """Stopped: nothing more is taken in; what is left unsent is said."""
        self._accepting = False
        if self._listening:
            self.documents.removeListener(self)
            self._listening = False
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None
        if self._pump_call is not None and self._pump_call.active():
            self._pump_call.cancel()
        self._pump_call = None
        unsent = len(self._records)
        if unsent:
            log.warn(
                "stopped with {unsent} records and SMDR lines not sent to the MQTT broker",
                unsent=unsent,
            )
        stopping, self._stopping = self._stopping, None
        if stopping is not None:
            stopping.callback(None)

    # The link's side (LinkOwner) ---------------------------------------------

    def _dial(self) -> None:
        self._retry = None
        link = BrokerLink(
            self.broker,
            self,
            self._reactor,
            self._clock,
            client_id=self.client_id,
            will_topic=self.status_topic,
            window=self.window,
        )
        self._link = link
        self._acked = False
        link.open()

    def linkUp(self, link: BrokerLink) -> None:
        if link is not self._link:
            return
        self.connected = True
        self.connections += 1
        down_since = self._since if self.problem is not None else None
        self._since = self._wall()
        self.problem = None
        self._failures = 0
        if down_since is None:
            log.info("connected to the MQTT broker {broker}", broker=self.broker.shown())
        else:
            log.info(
                "connected to the MQTT broker {broker} again, after {seconds:.0f} s;"
                " {pending} messages wait",
                broker=self.broker.shown(),
                seconds=self._since - down_since,
                pending=self.pending,
            )
        self._announce = b"online"
        self._mark_everything()
        self._wake()

    def linkPublished(self, link: BrokerLink, mid: int) -> None:
        if link is not self._link:
            return
        message = self._inflight.pop(mid, None)
        if message is None:
            return
        self.published += 1
        if not self._acked:
            # The broker takes what it is sent: the next outage starts from the first delay.
            self._acked = True
            self._backoff.reset()
        if message.kind == "offline":
            link.close()
            return
        self._wake()

    def linkDown(self, link: BrokerLink, why: str) -> None:
        if link is not self._link:
            return
        self._link = None
        was_up, self.connected = self.connected, False
        self._take_back()
        if self._stopping is not None:
            self._end()
            return
        if was_up:
            self._since = self._wall()
            log.warn(
                "lost the MQTT broker {broker}: {why}; {pending} messages wait",
                broker=self.broker.shown(),
                why=why,
                pending=self.pending,
            )
        elif self._failures == 0:
            log.warn(
                "could not connect to the MQTT broker {broker}: {why}",
                broker=self.broker.shown(),
                why=why,
            )
        self.problem = why
        self._failures += 1
        delay = self._backoff.next()
        log.info(
            "trying the MQTT broker {broker} again in {delay:.1f} s (attempt {attempt}{why})",
            broker=self.broker.shown(),
            delay=delay,
            attempt=self._failures,
            why="" if self._failures == 1 else f"; the last: {why}",
        )
        self._retry = self._clock.callLater(delay, self._dial)

    # The pump ------------------------------------------------------------------

    def _wake(self) -> None:
        if self.connected and self._pump_call is None:
            self._pump_call = self._clock.callLater(0, self._pump)

    def _pump(self) -> None:
        self._pump_call = None
        link = self._link
        if link is None or not self.connected:
            return
        inflight = self._inflight
        while len(inflight) < self.window:
            message = self._next()
            if message is None:
                break
            mid = link.publish(message.topic, message.payload, message.retain)
            if mid is None:  # the link is going: it takes nothing more
                self._put_back([message])
                return
            inflight[mid] = message
        if self._stopping is not None and not self._offline_sent and not inflight:
            if not (self._records or self._configs or self._entities):
                self._say_offline(link)

    def _say_offline(self, link: BrokerLink) -> None:
        """All sent at a clean stop: ``offline``, then (once acknowledged) goodbye."""
        self._offline_sent = True
        self._accepting = False
        message = _Message("offline", self.status_topic, b"offline", True)
        mid = link.publish(message.topic, message.payload, message.retain)
        if mid is None:
            link.abort("stopping")
            return
        self._inflight[mid] = message

    def _next(self) -> _Message | None:
        """The next message to send: the status, records and SMDR lines, configs, entities."""
        if self._announce is not None:
            payload, self._announce = self._announce, None
            return _Message("status", self.status_topic, payload, True)
        records = self._records
        if records:
            topic, payload = records.popleft()
            self._record_bytes -= len(payload)
            if not records and self._dropping:
                self._caught_up()
            return _Message("record", topic, payload, False)
        prefix = self.broker.prefix
        if self._configs:
            (kind, key, sensor), _ = self._configs.popitem(last=False)
            entity = (kind, key)
            payload = (
                config_payload(prefix, kind, key, sensor, self._named[entity])
                if entity in self._named
                else b""
            )
            topic = config_topic(prefix, kind, key, sensor)
            return _Message("config", topic, payload, True, entity, sensor)
        if self._entities:
            (kind, key), _ = self._entities.popitem(last=False)
            payload = self.documents.entity(kind, key) or b""
            return _Message("entity", f"{prefix}/{kind}/{key}", payload, True, (kind, key))
        return None

    def _take_back(self) -> None:
        """What the broker never acknowledged waits again, at the front of its queue."""
        if self._inflight:
            messages = list(self._inflight.values())
            self._inflight.clear()
            self._put_back(messages)

    def _put_back(self, messages: list[_Message]) -> None:
        records = [(m.topic, m.payload) for m in messages if m.kind == "record"]
        if records:
            self._records.extendleft(reversed(records))
            self._record_bytes += sum(len(payload) for _, payload in records)
        for message in messages:
            if message.kind == "entity" and message.entity is not None:
                self._entities[message.entity] = None
            elif message.kind == "config" and message.entity is not None:
                kind, key = message.entity
                assert message.sensor is not None
                self._configs[(kind, key, message.sensor)] = None
            elif message.kind == "status" and self._announce is None:
                self._announce = message.payload
        self._bound()

    def _mark_everything(self) -> None:
        """On every connection: the whole floor again (the broker may have lost it)."""
        for kind in PUBLISHED_KINDS:
            entities = self._entities
            for key in self._keys(kind):
                entities[(kind, key)] = None
        if self.discovery:
            for kind, key in self._named:
                for sensor in SENSORS[kind]:
                    self._configs[(kind, key, sensor)] = None

    def _keys(self, kind: PublishedKind) -> list[str]:
        floor = self.documents.floor
        table = (
            floor.agents if kind == "agents" else floor.groups if kind == "groups" else floor.paths
        )
        return list(table)

    def _bound(self) -> None:
        """Past the bound, the oldest records and lines go; the log says so once."""
        records = self._records
        while len(records) > 1 and (
            len(records) > self.max_records or self._record_bytes > self.max_bytes
        ):
            _, payload = records.popleft()
            self._record_bytes -= len(payload)
            self.dropped += 1
            self._dropping += 1
            if self._dropping == 1:
                log.warn(
                    "the MQTT broker {broker} {state}: {count} records and SMDR lines wait,"
                    " the most kept ({most}, or {size} bytes); dropping the oldest until it"
                    " catches up",
                    broker=self.broker.shown(),
                    state="is slow" if self.connected else "cannot be reached",
                    count=len(records),
                    most=self.max_records,
                    size=self.max_bytes,
                )

    def _caught_up(self) -> None:
        log.warn(
            "the MQTT broker {broker} has caught up: {dropped} records and SMDR lines were"
            " dropped, the oldest first, while it could not take them",
            broker=self.broker.shown(),
            dropped=self._dropping,
        )
        self._dropping = 0

    # Health ----------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Messages that wait, or were sent and are not yet acknowledged."""
        return len(self._records) + len(self._configs) + len(self._entities) + len(self._inflight)

    def health(self) -> dict[str, Any]:
        """The link for ``/api/v1/feed`` and ``/healthz`` (the broker without its password)."""
        return {
            "broker": self.broker.shown(),
            "connected": self.connected,
            "since": iso_utc(self._since),
            "problem": self.problem,
            "pending": self.pending,
            "published": self.published,
            "dropped": self.dropped,
            "connections": self.connections,
            "discovery": self.discovery,
        }
