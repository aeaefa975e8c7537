"""MQTT in: the records and SMDR lines another mitelacd published, read back from the broker.

A mitelacd with ``--mqtt`` publishes every ACD record it reads (STX to the
record's end) on ``PREFIX/records/<source>`` and every SMDR line on
``PREFIX/smdr/<source>``, at QoS 1 and not retained
(:mod:`mitelacd.mqtt.publisher`). :class:`MQTTRecordSource` is the other
end: a service that subscribes to ``PREFIX/records/#`` and
``PREFIX/smdr/#`` at QoS 1 and hands each record and line, with the
``<source>`` level of its topic, to a :class:`RecordSink`.

* **Nothing published while this daemon is away is lost**, up to what the
  broker keeps: the session is persistent (``clean_session=False``) under a
  client id made of the source's name and the prefix
  (:func:`client_id_for`), the same at every start, so the broker queues
  what the subscriptions match while nobody reads and delivers it at the
  next connection. The broker must keep enough of it (Mosquitto:
  ``max_queued_messages``, 1000 by default, ``0`` for no bound), keep it
  over its own restart (``persistence true``) and keep the session longer
  than the longest absence (``persistent_client_expiration``). Two daemons
  with the same name and prefix on one broker share the client id and put
  each other off the broker in turn: give each its own name.
* **Each record once**: QoS 1 is at least once, and a publisher whose
  acknowledgement was lost sends again. The last :data:`REMEMBERED`
  payloads of each topic are remembered; one seen among them is dropped
  and counted (``duplicates``). A record is acknowledged to the broker
  once the sink has it; one that comes while the source is stopping is
  not acknowledged, and comes again at the next start.
* **Bad input is counted, not passed on**: a topic outside the two trees
  (or deeper than ``<source>``) and an empty message are counted
  (``ignored``) and logged, a few lines a minute at most.
* **A broker that goes away is dialled again** after a capped, jittered
  backoff (:class:`mitelacd.mqtt.publisher.Backoff`); the log says so once
  per outage, and says when the broker had not kept the session (what was
  published meanwhile is lost).

``<source>`` is the level as published: the publisher made ``/``, ``+``
and ``#`` of the name ``_`` (:func:`mitelacd.mqtt.url.topic_level`), which
cannot be undone.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Sequence
from typing import Any, Final, Literal, Protocol

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from mitelacd.floor.render import iso_utc
from mitelacd.logs import Logger, Throttle
from mitelacd.mqtt.link import KEEPALIVE, BrokerLink
from mitelacd.mqtt.publisher import Backoff
from mitelacd.mqtt.url import Broker

log = Logger()

#: Payloads remembered per topic, to drop one the broker delivers again.
REMEMBERED: Final = 512
#: Topics whose payloads are remembered, at most (past it the longest known is forgotten).
MAX_TOPICS: Final = 1024
#: The QoS of the subscriptions: each message at least once.
QOS: Final = 1
#: How long a clean stop waits for the broker to hear the goodbye, in seconds.
STOP_TIMEOUT: Final = 5.0
#: A connection that lasted this long (seconds) starts the next outage's backoff afresh.
STEADY_AFTER: Final = 10.0
#: What every client id starts with (the rest: a hash of the name and the prefix).
CLIENT_ID_START: Final = "mitelacd-in-"
#: MQTT 3.1.1 brokers must take client ids up to this long.
CLIENT_ID_MOST: Final = 23

Kind = Literal["records", "smdr"]


class RecordSink(Protocol):
    """Where a :class:`MQTTRecordSource` hands what it reads, on the reactor's thread."""

    def recordFrom(self, source: str, payload: bytes) -> None:
        """An ACD record (STX to its end) that ``source`` read from its PBX."""

    def smdrLineFrom(self, source: str, payload: bytes) -> None:
        """An SMDR line (without its end) that ``source`` read from its PBX."""

    def linkUp(self, shown: str) -> None:
        """Subscribed at the broker ``shown`` (its URL without the password)."""

    def linkDown(self, why: str) -> None:
        """The broker was lost (or never reached, or the source stopped): why."""


def client_id_for(prefix: str, name: str) -> str:
    """The client id of a source: the same for the same prefix and name, 23 characters."""
    digest = hashlib.sha256(f"{prefix}\x00{name}".encode()).hexdigest()
    return CLIENT_ID_START + digest[: CLIENT_ID_MOST - len(CLIENT_ID_START)]


class RecentPayloads:
    """The last ``size`` different payloads of a topic: in order, and as a set."""

    def __init__(self, size: int = REMEMBERED) -> None:
        self.size = size
        self._order: deque[bytes] = deque()
        self._seen: set[bytes] = set()

    def seen(self, payload: bytes) -> bool:
        """Whether ``payload`` is among them; if not, it is from now on (the oldest goes)."""
        if payload in self._seen:
            return True
        self._order.append(payload)
        self._seen.add(payload)
        if len(self._order) > self.size:
            self._seen.discard(self._order.popleft())
        return False


class MQTTRecordSource(Service):
    """Records and SMDR lines from an MQTT broker, handed to ``sink``; health in :meth:`health`.

    ``broker`` is where to read, its ``prefix`` the first levels of the
    topics; ``name`` names this source in the daemon (and, with the
    prefix, its session at the broker). ``reactor`` watches the broker's
    socket and runs the connecting thread's result; ``clock`` (by default
    the reactor) times the backoff, the keep-alive and the stop, and is
    the wall clock of :meth:`health`.
    """

    def __init__(
        self,
        broker: Broker,
        name: str,
        sink: RecordSink,
        reactor: Any,
        clock: IReactorTime | None = None,
        *,
        first_delay: float = 1.0,
        max_delay: float = 30.0,
        stop_timeout: float = STOP_TIMEOUT,
        remembered: int = REMEMBERED,
        keepalive: int = KEEPALIVE,
        client_id: str | None = None,
    ) -> None:
        self.broker = broker
        self.source_name = name
        self.sink = sink
        self.stop_timeout = stop_timeout
        self.remembered = remembered
        self.keepalive = keepalive
        self._reactor = reactor
        self._clock: IReactorTime = clock if clock is not None else reactor
        prefix = broker.prefix
        self.client_id = client_id or client_id_for(prefix, name)
        self.subscriptions: Sequence[tuple[str, int]] = (
            (f"{prefix}/records/#", QOS),
            (f"{prefix}/smdr/#", QOS),
        )
        self._roots: tuple[tuple[str, Kind], ...] = (
            (f"{prefix}/records/", "records"),
            (f"{prefix}/smdr/", "smdr"),
        )
        self._recent: dict[str, RecentPayloads] = {}
        # The link.
        self._link: BrokerLink | None = None
        self.connected = False
        #: Why the broker cannot be reached just now; None while connected or first connecting.
        self.problem: str | None = None
        self._since = self._clock.seconds()
        self._failures = 0
        self._backoff = Backoff(first_delay, max_delay)
        self._retry: IDelayedCall | None = None
        self._stopping: Deferred[None] | None = None
        self._deadline: IDelayedCall | None = None
        self._ignored_log = Throttle(self._clock, burst=5, interval=60.0)
        #: Messages read; of them records, SMDR lines, duplicates dropped and messages ignored.
        self.messages = 0
        self.records = 0
        self.smdr_lines = 0
        self.duplicates = 0
        self.ignored = 0
        #: Connections the broker accepted (and granted the subscriptions of).
        self.connections = 0

    # The service -------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._since = self._clock.seconds()
        self.problem = None
        self._failures = 0
        self._backoff.reset()
        log.info(
            "reading records and SMDR lines from the MQTT broker {broker}"
            " ({records}, {smdr}) as {client_id}",
            broker=self.broker.shown(),
            records=self.subscriptions[0][0],
            smdr=self.subscriptions[1][0],
            client_id=self.client_id,
        )
        self._dial()

    def stopService(self) -> Deferred[None]:
        """Say goodbye to the broker (which keeps the session); waits ``stop_timeout`` at most."""
        super().stopService()
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        link = self._link
        if link is None or not self.connected:
            self._link = None
            if link is not None:
                link.abort("stopping")
            return succeed(None)
        self._stopping = Deferred()
        self._deadline = self._clock.callLater(self.stop_timeout, self._give_up)
        link.close()
        return self._stopping

    def _give_up(self) -> None:
        self._deadline = None
        log.warn(
            "stopping without waiting longer for the MQTT broker {broker} to hear goodbye",
            broker=self.broker.shown(),
        )
        if self._link is not None:
            self._link.abort("stopping")

    def _end(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None
        self.sink.linkDown("stopped")
        stopping, self._stopping = self._stopping, None
        if stopping is not None:
            stopping.callback(None)

    # The link's side (LinkOwner, LinkReader) ------------------------------------

    def _dial(self) -> None:
        self._retry = None
        link = BrokerLink(
            self.broker,
            self,
            self._reactor,
            self._clock,
            client_id=self.client_id,
            will_topic=None,
            window=1,
            keepalive=self.keepalive,
            clean_session=False,
            subscriptions=self.subscriptions,
        )
        self._link = link
        link.open()

    def linkUp(self, link: BrokerLink) -> None:
        if link is not self._link:
            return
        again = self.connections > 0
        self.connected = True
        self.connections += 1
        down_since = self._since if self.problem is not None else None
        self._since = self._clock.seconds()
        self.problem = None
        self._failures = 0
        shown = self.broker.shown()
        away = "" if down_since is None else f" after {self._since - down_since:.0f} s"
        if link.session_present:
            log.info(
                "connected to the MQTT broker {broker}{away}: it kept the session of"
                " {client_id}, and gives what was published meanwhile",
                broker=shown,
                away=away,
                client_id=self.client_id,
            )
        elif again:
            log.warn(
                "connected to the MQTT broker {broker}{away}, which had not kept the session"
                " of {client_id}: what was published meanwhile is lost (does it keep"
                " sessions over a restart: persistence true?)",
                broker=shown,
                away=away,
                client_id=self.client_id,
            )
        else:
            log.info(
                "connected to the MQTT broker {broker}: a new session for {client_id}",
                broker=shown,
                client_id=self.client_id,
            )
        self.sink.linkUp(shown)

    def linkPublished(self, link: BrokerLink, mid: int) -> None:
        """Nothing is published: never told."""

    def linkDown(self, link: BrokerLink, why: str) -> None:
        if link is not self._link:
            return
        self._link = None
        was_up, self.connected = self.connected, False
        if self._stopping is not None:
            self._end()
            return
        now = self._clock.seconds()
        if was_up:
            if now - self._since >= STEADY_AFTER:
                self._backoff.reset()
            self._since = now
            log.warn(
                "lost the MQTT broker {broker}: {why}",
                broker=self.broker.shown(),
                why=why,
            )
            self.sink.linkDown(why)
        elif self._failures == 0:
            log.warn(
                "could not connect to the MQTT broker {broker}: {why}",
                broker=self.broker.shown(),
                why=why,
            )
            self.sink.linkDown(why)
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

    def linkMessage(self, link: BrokerLink, topic: str, payload: bytes) -> None:
        self.messages += 1
        kind: Kind | None = None
        source = ""
        for root, root_kind in self._roots:
            # PREFIX/records/# matches PREFIX/records as well.
            if topic.startswith(root) or topic == root[:-1]:
                kind, source = root_kind, topic[len(root) :]
                break
        if kind is None:
            self._ignore(topic, "not a topic of records or SMDR lines")
            return
        if not source or "/" in source:
            self._ignore(topic, f"not {kind}/<source>")
            return
        if not payload:
            self._ignore(topic, "an empty message")
            return
        recent = self._recent.get(topic)
        if recent is None:
            if len(self._recent) >= MAX_TOPICS:
                del self._recent[next(iter(self._recent))]
            recent = self._recent[topic] = RecentPayloads(self.remembered)
        if recent.seen(payload):
            self.duplicates += 1
            return
        if kind == "records":
            self.records += 1
            self.sink.recordFrom(source, payload)
        else:
            self.smdr_lines += 1
            self.sink.smdrLineFrom(source, payload)

    def _ignore(self, topic: str, why: str) -> None:
        self.ignored += 1
        allowed, held = self._ignored_log.allow()
        if allowed:
            log.warn(
                "ignored a message from the MQTT broker {broker} on {topic!r}: {why}"
                " ({held} more not logged since the last such line)",
                broker=self.broker.shown(),
                topic=topic[:200],
                why=why,
                held=held,
            )

    # Health ------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """The link and what came over it (the broker without its password)."""
        return {
            "broker": self.broker.shown(),
            "client_id": self.client_id,
            "connected": self.connected,
            "since": iso_utc(self._since),
            "problem": self.problem,
            "messages": self.messages,
            "records": self.records,
            "smdr_lines": self.smdr_lines,
            "duplicates": self.duplicates,
            "ignored": self.ignored,
            "connections": self.connections,
        }
