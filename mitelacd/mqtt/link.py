"""One connection to the broker: a paho-mqtt client driven by the Twisted reactor.

paho-mqtt is used with an external event loop (its own network thread is
never started):

* the blocking part, the name lookup, the TCP connect and the TLS
  handshake, runs in a thread of its own (:meth:`BrokerLink.open`), so a
  slow or silent broker never holds up the reactor; once the socket is
  made (and the CONNECT packet on its way), everything else happens on the
  reactor's thread;
* the socket is then a reader of the reactor, and a writer while paho has
  bytes to send (its ``on_socket_register_write`` and
  ``on_socket_unregister_write`` callbacks); its readiness calls
  ``loop_read`` and ``loop_write``, and ``loop_misc`` (keep-alive pings,
  a broker gone silent) runs once a second on a ``LoopingCall`` of the
  injected clock.

A link is used once: a new connection is a new :class:`BrokerLink` with a
new paho client, so nothing of a connection that broke (paho's own queue
of messages) carries over; the :class:`LinkOwner` keeps what was not
acknowledged and hands it to the next link. Every link ends with exactly
one :meth:`LinkOwner.linkDown`.

A link may also read (``--mqtt`` in the other direction, records another
mitelacd published): given ``subscriptions``, it subscribes to them on
every CONNACK and is up only once the broker has granted them all (a
refusal ends the link, said as why). Each message that comes is handed to
the owner, which then reads :class:`LinkReader` as well, before it is
acknowledged: a message that comes while the link is closing is neither
handed on nor acknowledged, so the broker gives it again next time. With
``clean_session=False`` the broker keeps the session (the subscriptions,
and what they match while the owner is away) under the client id;
:attr:`BrokerLink.session_present` says whether it had kept one.

Such a link says goodbye more carefully than paho does. paho closes the
socket as soon as DISCONNECT is written; a message the broker sent
meanwhile then meets a closed socket, the system answers with a reset,
and the broker throws away what it had not yet read of ours: the last
acknowledgements and the goodbye (Mosquitto logs "Broken pipe"), so it
gives those messages again next time. A reading link keeps the connection
(a duplicate of the socket) after DISCONNECT, reads and drops whatever
still comes until the broker hangs up, for :data:`LINGER` seconds at
most, and only then is it down.
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, TypeVar, runtime_checkable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime, IReadWriteDescriptor
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure
from zope.interface import implementer

from mitelacd.logs import Logger
from mitelacd.mqtt.url import Broker

if TYPE_CHECKING:
    from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessage, SocketLike
    from paho.mqtt.properties import Properties
    from paho.mqtt.reasoncodes import ReasonCode

log = Logger()

T = TypeVar("T")

#: Seconds between pings when nothing else is sent (the broker drops a client
#: silent for 1.5 times as long, and then publishes its last will).
KEEPALIVE: Final = 30
#: How long the TCP connect (and the name lookup) may take, in seconds.
CONNECT_TIMEOUT: Final = 10.0
#: How long the broker may take to accept the connection once it is made, in seconds.
CONNACK_TIMEOUT: Final = 10.0
#: How often paho's ``loop_misc`` runs, in seconds.
MISC_INTERVAL: Final = 1.0
#: How long a reading link waits for the broker to hang up after its goodbye, in seconds.
LINGER: Final = 2.0

State = Literal["new", "connecting", "handshake", "up", "closing", "down"]

#: The topic handed on for a message whose topic is not UTF-8 (MQTT requires it to be).
NOT_UTF8: Final = "\ufffd (a topic that is not UTF-8)"


class LinkOwner(Protocol):
    """What a link tells, always on the reactor's thread."""

    def linkUp(self, link: BrokerLink) -> None:
        """The broker accepted the connection: messages may be published."""

    def linkPublished(self, link: BrokerLink, mid: int) -> None:
        """The broker acknowledged the message ``mid`` (QoS 1: its PUBACK)."""

    def linkDown(self, link: BrokerLink, why: str) -> None:
        """The link ended (never made, refused, lost, or closed); said once per link."""


@runtime_checkable
class LinkReader(Protocol):
    """An owner that reads: what it is handed of its subscriptions, on the reactor's thread."""

    def linkMessage(self, link: BrokerLink, topic: str, payload: bytes) -> None:
        """A message came on ``topic``; it is acknowledged to the broker once this returns."""


def in_thread(reactor: Any, work: Callable[[], T]) -> Deferred[T]:
    """Run ``work`` in a thread of its own; its result on the reactor's thread.

    A daemon thread: a connect hung in a name lookup never keeps the
    process from exiting.
    """
    done: Deferred[T] = Deferred()

    def run() -> None:
        try:
            result = work()
        except BaseException:
            reactor.callFromThread(done.errback, Failure())
        else:
            reactor.callFromThread(done.callback, result)

    threading.Thread(target=run, name="mitelacd-mqtt-connect", daemon=True).start()
    return done


def why_failed(error: BaseException) -> str:
    """A failed connect in words (never the password: paho's errors do not hold it)."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS: certificate verify failed: {error.verify_message or error.reason}"
    if isinstance(error, ssl.SSLError):
        return f"TLS: {error.reason or error}"
    if isinstance(error, socket.gaierror):
        return f"name lookup failed: {error.strerror or error}"
    if isinstance(error, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror[:1].lower() + error.strerror[1:]
    return str(error) or type(error).__name__


@implementer(IReadWriteDescriptor)
class _Descriptor:
    """The link's socket as the reactor sees it."""

    def __init__(self, link: BrokerLink, fileno: int) -> None:
        self._link = link
        self._fileno = fileno

    def fileno(self) -> int:
        return self._fileno

    def doRead(self) -> None:
        self._link.readable()

    def doWrite(self) -> None:
        self._link.writable()

    def connectionLost(self, reason: Failure) -> None:
        self._link.socketLost(reason)

    def logPrefix(self) -> str:
        return "MQTT"


@implementer(IReadWriteDescriptor)
class _Lingering:
    """The connection after a reading link's goodbye: read and dropped until the broker hangs up."""

    def __init__(self, link: BrokerLink, sock: socket.socket) -> None:
        self._link = link
        self.sock = sock

    def fileno(self) -> int:
        return self.sock.fileno()

    def doRead(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._link.hungUp()
                return

    def doWrite(self) -> None:
        pass

    def connectionLost(self, reason: Failure) -> None:
        self._link.hungUp()

    def logPrefix(self) -> str:
        return "MQTT"


class BrokerLink:
    """One paho client, one connection attempt and, once made, the connection.

    ``reactor`` runs the thread's result and watches the socket; ``clock``
    times the keep-alive and the wait for the broker's answer. Messages go
    out at QoS 1; paho holds at most ``window`` of them (its inflight
    window and its queue), as the owner hands it no more than that.
    ``will_topic`` (None: no will) is set to ``offline`` by the broker when
    the link ends without a goodbye.

    ``clean_session=False`` asks the broker to keep the session under
    ``client_id``. ``subscriptions`` (topic filter, QoS) are made on every
    CONNACK; the owner must then be a :class:`LinkReader` too.
    """

    def __init__(
        self,
        broker: Broker,
        owner: LinkOwner,
        reactor: Any,
        clock: IReactorTime,
        client_id: str,
        will_topic: str | None,
        window: int,
        keepalive: int = KEEPALIVE,
        connack_timeout: float = CONNACK_TIMEOUT,
        *,
        clean_session: bool = True,
        subscriptions: Sequence[tuple[str, int]] = (),
    ) -> None:
        from paho.mqtt.client import CallbackAPIVersion, Client, MQTTv311

        self.broker = broker
        self._owner = owner
        self._reader: LinkReader | None = owner if isinstance(owner, LinkReader) else None
        if subscriptions and self._reader is None:
            raise TypeError("a link with subscriptions needs an owner with linkMessage")
        self._subscriptions = list(subscriptions)
        #: The SUBSCRIBE the broker has yet to answer (its mid), before the link is up.
        self._subscribing: int | None = None
        #: Whether the broker had kept a session for the client id (once it accepted the link).
        self.session_present: bool | None = None
        #: DISCONNECT is written; a reading link then waits for the broker to hang up.
        self._goodbye_written = False
        self._lingering: _Lingering | None = None
        self._linger_end: IDelayedCall | None = None
        self._reactor = reactor
        self._clock = clock
        self._keepalive = keepalive
        self._connack_timeout = connack_timeout
        self.state: State = "new"
        client = Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            protocol=MQTTv311,
            # A refusal is told, never answered by paho redialling in the reactor's thread.
            reconnect_on_failure=False,
            # What comes is acknowledged once the owner has it (or never, while closing).
            manual_ack=bool(subscriptions),
        )
        client.max_inflight_messages_set(window)
        client.max_queued_messages_set(window)
        client.connect_timeout = CONNECT_TIMEOUT
        if broker.user is not None:
            client.username_pw_set(broker.user, broker.password)
        if will_topic is not None:
            client.will_set(will_topic, b"offline", qos=1, retain=True)
        self._client: Client = client
        self._descriptor: _Descriptor | None = None
        self._reading = False
        self._writing = False
        self._misc = LoopingCall(self._loop_misc)
        self._misc.clock = clock
        self._connack: IDelayedCall | None = None
        #: What the broker said when it refused the connection.
        self._refused: str | None = None

    # The owner's side --------------------------------------------------------

    def open(self) -> None:
        """Connect in a thread; the owner hears :meth:`LinkOwner.linkUp` or ``linkDown``."""
        assert self.state == "new"
        self.state = "connecting"
        broker, client = self.broker, self._client

        def connect() -> None:
            if broker.tls:
                # Reading the system's certificate authorities takes a while too.
                client.tls_set_context(ssl.create_default_context())
            # No callback is set yet: paho writes the CONNECT packet itself,
            # here, on the socket just made.
            client.connect(broker.host, broker.port, keepalive=self._keepalive)

        made = in_thread(self._reactor, connect).addCallbacks(self._made, self._not_made)
        made.addErrback(lambda failure: log.failure("MQTT connect", failure))

    def publish(self, topic: str, payload: bytes, retain: bool) -> int | None:
        """Hand paho one message at QoS 1; its mid, or None when it was not taken."""
        if self.state != "up":
            return None
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != 0:
            return None
        return info.mid

    def close(self) -> None:
        """Say goodbye (DISCONNECT: the broker keeps the last will to itself), then hang up."""
        if self.state in ("up", "handshake"):
            self.state = "closing"
            self._client.disconnect()
        elif self.state != "closing":
            self.abort("closed")

    def abort(self, why: str) -> None:
        """Hang up now, without a word to the broker (which then publishes the last will)."""
        if self.state == "down":
            return
        if self.state == "connecting":
            # The thread goes on; what it makes is closed when it is done.
            self._down(why)
            return
        sock = self._client.socket()
        self._unwatch()
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass
        self._down(why)

    # Results of the connecting thread --------------------------------------

    def _made(self, _: None) -> None:
        client = self._client
        sock = client.socket()
        if self.state != "connecting" or sock is None:
            # Given up meanwhile (stopped): let it go without a word.
            if sock is not None:
                sock.close()
            return
        self.state = "handshake"
        client.on_socket_close = self._socket_closed
        client.on_socket_register_write = self._register_write
        client.on_socket_unregister_write = self._unregister_write
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected
        client.on_publish = self._published
        if self._subscriptions:
            client.on_subscribe = self._subscribed
            client.on_message = self._message
        self._descriptor = _Descriptor(self, sock.fileno())
        self._reactor.addReader(self._descriptor)
        self._reading = True
        if client.want_write():
            # paho could not write all of the CONNECT packet in the thread.
            self._reactor.addWriter(self._descriptor)
            self._writing = True
        self._misc.start(MISC_INTERVAL, now=False).addErrback(
            lambda failure: log.failure("MQTT keep-alive", failure)
        )
        self._connack = self._clock.callLater(self._connack_timeout, self._no_connack)

    def _not_made(self, failure: Failure) -> None:
        if self.state != "connecting":
            return
        error = failure.value
        self._down(why_failed(error) if error is not None else "failed")

    def _no_connack(self) -> None:
        self._connack = None
        if self.state == "handshake":
            asked = "SUBSCRIBE" if self._subscribing is not None else "CONNECT"
            self.abort(f"no answer to {asked} within {self._connack_timeout:g} s")

    @property
    def ended(self) -> bool:
        """Whether the owner has been told that the link is down."""
        return self.state == "down"

    # The reactor's side ---------------------------------------------------------

    def readable(self) -> None:
        client = self._client
        sock = client.socket()
        client.loop_read()
        # TLS may hold decrypted bytes the socket no longer signals.
        while sock is not None and client.socket() is sock and _pending(sock) > 0:
            client.loop_read()

    def writable(self) -> None:
        self._client.loop_write()

    def socketLost(self, reason: Failure) -> None:
        """The reactor found the socket broken (and has stopped watching it)."""
        self._reading = self._writing = False
        if self.state in ("handshake", "up", "closing"):
            # paho reads the end itself, closes the socket and tells _disconnected.
            self._client.loop_read()
            if not self.ended:
                self.abort(reason.getErrorMessage() or "connection lost")

    def _loop_misc(self) -> None:
        self._client.loop_misc()

    # paho's callbacks (on the reactor's thread) --------------------------------

    def _register_write(self, client: Client, userdata: Any, sock: SocketLike) -> None:
        if self._descriptor is not None and not self._writing and self.state != "down":
            self._reactor.addWriter(self._descriptor)
            self._writing = True

    def _unregister_write(self, client: Client, userdata: Any, sock: SocketLike) -> None:
        if self._descriptor is not None and self._writing:
            self._reactor.removeWriter(self._descriptor)
            self._writing = False

    def _socket_closed(self, client: Client, userdata: Any, sock: SocketLike) -> None:
        # Before paho closes it: the reactor must not watch a closed descriptor.
        self._unwatch()
        if self._goodbye_written and self._lingering is None:
            self._linger(sock)

    def _linger(self, sock: SocketLike) -> None:
        """Keep the connection paho is about to close, until the broker hangs up."""
        try:
            kept = socket.socket(fileno=os.dup(sock.fileno()))
            kept.setblocking(False)
        except OSError:
            self._down("closed")
            return
        try:
            kept.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self._lingering = _Lingering(self, kept)
        self._reactor.addReader(self._lingering)
        self._linger_end = self._clock.callLater(LINGER, self.hungUp)

    def hungUp(self) -> None:
        """The broker hung up after the goodbye (or was waited for long enough)."""
        self._down("closed")

    def _connected(
        self,
        client: Client,
        userdata: Any,
        flags: ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self._stop_connack()
            # paho hangs up next, and tells _disconnected.
            self._refused = f"the broker refused the connection: {reason}"
            return
        if self.state != "handshake":
            self._stop_connack()
            return
        self.session_present = bool(flags.session_present)
        if self._subscriptions:
            # Up once the broker grants them; its answer is waited for as the CONNACK was.
            result, mid = client.subscribe(self._subscriptions)
            if result != 0 or mid is None:
                self.abort(f"could not subscribe: {result}")
                return
            self._subscribing = mid
            return
        self._stop_connack()
        self.state = "up"
        self._owner.linkUp(self)

    def _subscribed(
        self,
        client: Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        if mid != self._subscribing or self.state != "handshake":
            return
        self._subscribing = None
        refused = [
            f"{topic} ({reason})"
            for (topic, _), reason in zip(self._subscriptions, reasons)
            if reason.is_failure
        ]
        if refused or len(reasons) != len(self._subscriptions):
            self.abort(f"the broker refused the subscription to {', '.join(refused) or 'all'}")
            return
        self._stop_connack()
        self.state = "up"
        self._owner.linkUp(self)

    def _message(self, client: Client, userdata: Any, message: MQTTMessage) -> None:
        if self.state not in ("handshake", "up"):
            # Closing: not taken, so not acknowledged; the broker gives it again next time.
            return
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = NOT_UTF8
        reader = self._reader
        if reader is not None:
            try:
                reader.linkMessage(self, topic, bytes(message.payload))
            except Exception:
                # Taken all the same: a message the owner fails on is not asked for again.
                log.failure("reading the MQTT message on {topic}", topic=topic)
        if message.qos > 0 and self.state in ("handshake", "up", "closing"):
            client.ack(message.mid, message.qos)

    def _disconnected(
        self,
        client: Client,
        userdata: Any,
        flags: DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if self.state == "closing" and self._subscriptions and client.socket() is not None:
            # The goodbye is written and paho closes the socket next: see _socket_closed.
            self._goodbye_written = True
            return
        if self.state == "closing":
            why = "closed"
        elif self._refused is not None:
            why = self._refused
        elif flags.is_disconnect_packet_from_server:
            why = f"the broker hung up: {reason}"
        elif str(reason) == "Keep alive timeout":
            why = f"no answer from the broker within {self._keepalive * 1.5:g} s"
        else:
            why = "connection lost"
        self._unwatch()
        self._down(why)

    def _published(
        self,
        client: Client,
        userdata: Any,
        mid: int,
        reason: ReasonCode,
        properties: Properties,
    ) -> None:
        if self.state in ("up", "closing"):
            self._owner.linkPublished(self, mid)

    # ---------------------------------------------------------------------------

    def _unwatch(self) -> None:
        descriptor = self._descriptor
        if descriptor is not None:
            if self._reading:
                self._reactor.removeReader(descriptor)
            if self._writing:
                self._reactor.removeWriter(descriptor)
        self._reading = self._writing = False

    def _stop_connack(self) -> None:
        if self._connack is not None and self._connack.active():
            self._connack.cancel()
        self._connack = None

    def _stop_lingering(self) -> None:
        if self._linger_end is not None and self._linger_end.active():
            self._linger_end.cancel()
        self._linger_end = None
        lingering, self._lingering = self._lingering, None
        if lingering is not None:
            self._reactor.removeReader(lingering)
            lingering.sock.close()

    def _down(self, why: str) -> None:
        if self.state == "down":
            return
        self.state = "down"
        if self._misc.running:
            self._misc.stop()
        self._stop_connack()
        self._stop_lingering()
        self._owner.linkDown(self, why)


def _pending(sock: SocketLike) -> int:
    """Bytes a TLS socket has decrypted and not yet handed out (0 for a plain one)."""
    pending = getattr(sock, "pending", None)
    return int(pending()) if pending is not None else 0
