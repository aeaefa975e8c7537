"""Telling systemd how the daemon is doing, over ``$NOTIFY_SOCKET``.

Under a ``Type=notify`` unit systemd passes the path of a datagram socket in
``NOTIFY_SOCKET`` and reads ``KEY=value`` lines from it (sd_notify(3)):

* ``READY=1`` once HTTP listens and the file writer runs, so that units
  ordered after mitelacd start when its boards can be served;
* ``STATUS=`` the PBX link in words, which ``systemctl status`` shows:
  "connected to 10.1.2.3:15373 since 08:15:02, 1234 records", "retrying
  10.1.2.3:15373 in ~8 s: Connection refused", "dialling 10.1.2.3:15373";
* ``WATCHDOG=1`` from the reactor at half of ``WATCHDOG_USEC``, so that a
  wedged reactor misses it and systemd restarts the daemon (``WatchdogSec=``);
* ``STOPPING=1`` when the service stops.

Without ``NOTIFY_SOCKET`` nothing is sent and nothing is scheduled.
"""

from __future__ import annotations

import datetime
import errno
import math
import os
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from twisted.application.service import IService, Service
from twisted.internet.defer import Deferred, FirstError, fail, gatherResults, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure
from zope.interface import implementer

from mitelacd.floor.changes import ChangeSet, IFloorListener
from mitelacd.floor.state import FloorState
from mitelacd.logs import Logger

log = Logger()

#: The feed fields (``ChangeSet.feed`` keys) the status line is made of.
LINK_FIELDS = frozenset(
    {
        "connected",
        "pbx_host",
        "pbx_port",
        "connected_since",
        "disconnected_since",
        "disconnect_reason",
        "connections",
        "connect_failures",
    }
)
COUNT_FIELD = "records_this_connection"
#: The record count in the status line moves at most once per this many seconds.
COUNT_INTERVAL = 5.0
#: A STATUS line longer than this is cut (systemd keeps short texts).
MAX_STATUS = 200

SocketFactory = Callable[[], socket.socket]
#: What a readiness condition gives: a Deferred that fires when it holds.
ReadyWhen = Callable[[], "Deferred[Any]"]

LinkState = Literal["dialling", "connected", "retrying"]


def _datagram_socket() -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setblocking(False)
    return sock


def socket_address(value: str) -> str | None:
    """The address to send to for a ``NOTIFY_SOCKET`` value, or None when unusable.

    An absolute path is a socket file; ``@name`` is a Linux abstract-namespace
    socket (the ``@`` stands for the leading NUL byte).
    """
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    return None


class NotifySocket:
    """The datagram socket systemd reads notifications from.

    :meth:`send` never raises: a failure (the socket gone, systemd not
    reading) is logged once, counted, and the daemon goes on.
    """

    def __init__(self, value: str, socket_factory: SocketFactory = _datagram_socket) -> None:
        self.value = value
        self.address = socket_address(value)
        self._socket_factory = socket_factory
        self._socket: socket.socket | None = None
        #: Datagrams sent, and sends that failed.
        self.sent = 0
        self.failures = 0
        self._failing = False

    def send(self, *lines: str) -> bool:
        """Send ``KEY=value`` lines as one datagram; whether it went."""
        payload = "\n".join(lines).encode("utf-8", "replace")
        try:
            if self.address is None:
                raise OSError(errno.EAFNOSUPPORT, "not a socket path or @abstract name")
            if self._socket is None:
                self._socket = self._socket_factory()
            self._socket.sendto(payload, self.address)
        except OSError as e:
            self.failures += 1
            if not self._failing:
                self._failing = True
                log.warn(
                    "cannot notify systemd at NOTIFY_SOCKET={value}: {error}"
                    " (not said again until it works)",
                    value=self.value,
                    error=e.strerror or e,
                )
            return False
        self.sent += 1
        if self._failing:
            self._failing = False
            log.info(
                "notifying systemd at NOTIFY_SOCKET={value} again ({failures} sends failed)",
                value=self.value,
                failures=self.failures,
            )
        return True

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """Seconds between two ``WATCHDOG=1``: half of ``WATCHDOG_USEC``, or None for no watchdog.

    ``WATCHDOG_PID``, when set, names the process systemd expects them from.
    """
    usec = environ.get("WATCHDOG_USEC", "").strip()
    if not usec:
        return None
    owner = environ.get("WATCHDOG_PID", "").strip()
    if owner and owner != str(pid):
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warn("WATCHDOG_USEC={usec} is not a number of microseconds: no watchdog", usec=usec)
        return None
    if value <= 0:
        return None
    return value / 2 / 1e6


def started(service: IService) -> ReadyWhen:
    """A readiness condition: ``service`` runs (it started earlier in the tree)."""

    def check() -> Deferred[Any]:
        if service.running:
            return succeed(None)
        return fail(RuntimeError(f"{service.name or repr(service)} is not running"))

    return check


def clock_time(when: float, now: float) -> str:
    """``HH:MM:SS`` local time, with the date in front when it is not today."""
    moment = datetime.datetime.fromtimestamp(when)
    if moment.date() == datetime.datetime.fromtimestamp(now).date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _one_line(text: str) -> str:
    return " ".join(text.split())


@implementer(IFloorListener)
class SystemdNotifier(Service):
    """Readiness, the PBX link in words, the watchdog and stopping, for systemd.

    ``target`` says which PBX is being dialled before the floor knows it;
    ``next_attempt`` when the next dial is due (Unix time) while retrying.
    ``ready_when`` are the conditions READY=1 waits for, checked at start:
    put this service after what it waits for in the tree, so that it starts
    after them and stops (saying STOPPING=1) before them.
    """

    name = "systemd-notify"

    def __init__(
        self,
        floor: FloorState,
        clock: IReactorTime,
        notify: NotifySocket | None,
        *,
        watchdog: float | None = None,
        ready_when: Iterable[ReadyWhen] = (),
        target: Callable[[], tuple[str, int]] | None = None,
        next_attempt: Callable[[], float | None] | None = None,
        count_interval: float = COUNT_INTERVAL,
    ) -> None:
        self.floor = floor
        self.clock = clock
        self.notify = notify
        self.watchdog = watchdog
        self.ready_when: Sequence[ReadyWhen] = tuple(ready_when)
        self.target = target
        self.next_attempt = next_attempt
        self.count_interval = count_interval
        #: Whether READY=1 was sent.
        self.ready = False
        #: The last status line sent, and when.
        self.status: str | None = None
        self._status_key: tuple[Any, ...] | None = None
        self._status_at = -math.inf
        self._soon: IDelayedCall | None = None
        self._count_call: IDelayedCall | None = None
        self._retry_call: IDelayedCall | None = None
        self._pinger: LoopingCall | None = None

    @classmethod
    def fromEnvironment(
        cls,
        floor: FloorState,
        clock: IReactorTime,
        environ: Mapping[str, str],
        pid: int | None = None,
        **kwargs: Any,
    ) -> SystemdNotifier:
        """A notifier for ``NOTIFY_SOCKET`` and ``WATCHDOG_USEC``; idle when they are not set."""
        value = environ.get("NOTIFY_SOCKET", "")
        notify = NotifySocket(value) if value else None
        watchdog = None
        if notify is not None:
            watchdog = watchdog_interval(environ, os.getpid() if pid is None else pid)
        return cls(floor, clock, notify, watchdog=watchdog, **kwargs)

    # Service ---------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        if self.notify is None:
            return
        self.floor.addListener(self)
        waiting = gatherResults([condition() for condition in self.ready_when], consumeErrors=True)
        waiting.addCallbacks(self._ready, self._not_ready)
        if self.watchdog is not None:
            self._pinger = LoopingCall(self._ping)
            self._pinger.clock = self.clock
            self._pinger.start(self.watchdog, now=True)

    def stopService(self) -> None:
        super().stopService()
        if self.notify is None:
            return
        self.floor.removeListener(self)
        if self._pinger is not None and self._pinger.running:
            self._pinger.stop()
        self._pinger = None
        for call in (self._soon, self._count_call, self._retry_call):
            if call is not None and call.active():
                call.cancel()
        self._soon = self._count_call = self._retry_call = None
        self.status = "stopping"
        self.notify.send("STOPPING=1", "STATUS=stopping")
        self.notify.close()

    def _ready(self, _: object) -> None:
        if not self.running or self.notify is None:
            return
        self.ready = True
        words, key = self.words()
        self._wake_for_retry()
        self._sent(words, key)
        self.notify.send("READY=1", f"STATUS={words}")

    def _not_ready(self, reason: Failure) -> None:
        why = reason.value
        if isinstance(why, FirstError):
            why = why.subFailure.value
        log.error("not telling systemd READY=1: {why}", why=why)

    def _ping(self) -> None:
        if self.notify is not None:
            self.notify.send("WATCHDOG=1")

    # The status line -------------------------------------------------------

    def floorChanged(self, changes: ChangeSet) -> None:
        feed = changes.feed
        if not feed:
            return
        if not LINK_FIELDS.isdisjoint(feed):
            # The reconnecting factory schedules its next attempt only after
            # the floor has heard of the failure: look once it has.
            if self._soon is None:
                self._soon = self.clock.callLater(0, self._refresh_soon)
        elif COUNT_FIELD in feed and self._count_call is None and self._soon is None:
            self._refresh()

    def _refresh_soon(self) -> None:
        self._soon = None
        self._refresh()

    def _refresh(self) -> None:
        """Send the status line when its words changed; the count no more often than allowed."""
        if not self.ready or self.notify is None:
            return
        words, key = self.words()
        if words == self.status:
            return
        now = self.clock.seconds()
        self._wake_for_retry()
        if key == self._status_key:
            due = self._status_at + self.count_interval
            if now < due:
                if self._count_call is None:
                    self._count_call = self.clock.callLater(due - now, self._count_due)
                return
        if self._count_call is not None:
            self._count_call.cancel()
            self._count_call = None
        self._sent(words, key)
        self.notify.send(f"STATUS={words}")

    def _count_due(self) -> None:
        self._count_call = None
        self._refresh()

    def _sent(self, words: str, key: tuple[Any, ...]) -> None:
        self.status, self._status_key, self._status_at = words, key, self.clock.seconds()

    def words(self) -> tuple[str, tuple[Any, ...]]:
        """The status line, and what it says but the record count (changes of which are paced)."""
        feed = self.floor.feed
        now = self.clock.seconds()
        if feed.host is not None:
            where = f"{feed.host}:{feed.port}"
        elif self.target is not None:
            host, port = self.target()
            where = f"{host}:{port}"
        else:
            where = "the PBX"
        state: LinkState
        if feed.connected:
            state = "connected"
            since = clock_time(feed.connected_since or now, now)
            count = feed.records_this_connection
            noun = "record" if count == 1 else "records"
            return f"connected to {where} since {since}, {count} {noun}", (state, where, since)
        reason = _one_line(feed.disconnect_reason or "")
        if not reason:
            return f"dialling {where}", ("dialling", where)
        at = self._retry_at()
        if at is not None:
            wait = math.ceil(at - now)
            state = "retrying"
            words = f"retrying {where} in ~{wait} s: {reason}"
        else:
            state = "dialling"
            words = f"dialling {where} (last attempt: {reason})"
        return words[:MAX_STATUS], (state, where, words)

    def _retry_at(self) -> float | None:
        """When the next dial is due, if it is still to come."""
        at = self.next_attempt() if self.next_attempt is not None else None
        if at is None or at <= self.clock.seconds():
            return None
        return at

    def _wake_for_retry(self) -> None:
        """Once a retry is due, say "dialling" rather than a wait that has passed."""
        if self._retry_call is not None and self._retry_call.active():
            self._retry_call.cancel()
        self._retry_call = None
        at = self._retry_at()
        if at is not None and not self.floor.feed.connected:
            self._retry_call = self.clock.callLater(at - self.clock.seconds(), self._retry_due)

    def _retry_due(self) -> None:
        self._retry_call = None
        self._refresh()
