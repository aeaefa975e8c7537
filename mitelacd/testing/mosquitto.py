"""A throwaway Mosquitto broker, and a subscriber to watch it, for the tests of ``--mqtt``.

* :class:`MosquittoBroker`: Debian's ``mosquitto`` in a fresh temporary
  folder, listening on 127.0.0.1 on a port the system picked (found free,
  let go, and written into its configuration: :func:`free_port`), optionally with a password
  file, persistence (its sessions and retained messages survive a restart)
  and a TLS listener. It can be stopped and started again on the same
  port; its log is in the exception when it fails, and in :meth:`log_text`.
* :class:`Subscriber`: a paho-mqtt client on its own network thread
  (``loop_start``) that keeps every message it gets, with bounded waits.

Mosquitto drops root's privileges to another user: run as root, the folder
is given to ``nobody`` and the broker told to run as that user.
"""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from mitelacd.testing.postgres import free_port

if TYPE_CHECKING:
    from paho.mqtt.client import Client, ConnectFlags, MQTTMessage
    from paho.mqtt.properties import Properties
    from paho.mqtt.reasoncodes import ReasonCode

#: Where Debian's package puts the broker and its password tool.
MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"
#: What to do about a machine without Mosquitto.
INSTALL_HINT = "apt-get install mosquitto"
#: How long a start or a stop of the broker may take, in seconds.
TIMEOUT = 10.0


class MosquittoMissing(Exception):
    """Mosquitto is not installed here."""


class MosquittoFailed(Exception):
    """The broker did not start or stop; the message has its log."""


def find_mosquitto() -> str:
    """The broker's program; MosquittoMissing naming the package when it is not there."""
    for candidate in (MOSQUITTO, shutil.which("mosquitto")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise MosquittoMissing(f"the Mosquitto broker ({MOSQUITTO}) is not installed: {INSTALL_HINT}")


class MosquittoBroker:
    """One Mosquitto broker in a temporary folder, for as long as it is open.

    ``passwords`` (user: password) turns anonymous clients away;
    ``persistence`` keeps sessions, queued and retained messages over a
    restart; ``tls`` (certificate and key files, copied into the broker's
    folder) adds a TLS listener on :attr:`tls_port`.
    """

    def __init__(
        self,
        passwords: Mapping[str, str] | None = None,
        persistence: bool = False,
        tls: tuple[str, str] | None = None,
        user: str = "nobody",
    ) -> None:
        self.program = find_mosquitto()
        self.folder = tempfile.mkdtemp(prefix="mitelacd-mosquitto-")
        self.config = os.path.join(self.folder, "mosquitto.conf")
        self.logfile = os.path.join(self.folder, "mosquitto.log")
        self.port = free_port()
        self.tls_port = free_port() if tls is not None else None
        self.process: subprocess.Popen[bytes] | None = None
        atexit.register(self.close)
        root = os.geteuid() == 0
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"log_dest file {self.logfile}",
            "log_type all",
            "connection_messages true",
            # Everything a test sends is kept for a subscriber away for a while.
            "max_queued_messages 0",
            f"pid_file {os.path.join(self.folder, 'mosquitto.pid')}",
        ]
        if root:
            lines.append(f"user {user}")
        if persistence:
            lines += ["persistence true", f"persistence_location {self.folder}/"]
        if passwords:
            file = os.path.join(self.folder, "passwords")
            open(file, "w").close()
            for name, password in passwords.items():
                subprocess.run(
                    [MOSQUITTO_PASSWD, "-b", file, name, password],
                    check=True,
                    capture_output=True,
                    timeout=TIMEOUT,
                )
            lines += [
                "per_listener_settings false",
                f"password_file {file}",
                "allow_anonymous false",
            ]
        else:
            lines.append("allow_anonymous true")
        if tls is not None:
            # Copied into the broker's folder, which its user may read.
            certificate = shutil.copy(tls[0], os.path.join(self.folder, "broker.pem"))
            key = shutil.copy(tls[1], os.path.join(self.folder, "broker.key"))
            lines += [
                f"listener {self.tls_port} 127.0.0.1",
                f"certfile {certificate}",
                f"keyfile {key}",
            ]
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")
        if root:
            account = pwd.getpwnam(user)
            for path in [
                self.folder,
                *(os.path.join(self.folder, n) for n in os.listdir(self.folder)),
            ]:
                os.chown(path, account.pw_uid, account.pw_gid)

    def start(self) -> None:
        """Start the broker and wait until it takes connections."""
        if self.running:
            return
        self.process = subprocess.Popen(
            [self.program, "-c", self.config],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        end = time.monotonic() + TIMEOUT
        ports = [p for p in (self.port, self.tls_port) if p is not None]
        while ports:
            if self.process.poll() is not None:
                error = (
                    self.process.stderr.read().decode(errors="replace")
                    if self.process.stderr
                    else ""
                )
                self.process = None
                raise MosquittoFailed(f"mosquitto exited at start: {error}{self._log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", ports[0]), timeout=1).close()
            except OSError:
                if time.monotonic() > end:
                    self.stop()
                    raise MosquittoFailed(
                        f"mosquitto did not listen on {ports[0]} within {TIMEOUT:g} s"
                        + self._log_tail()
                    ) from None
                time.sleep(0.02)
            else:
                ports.pop(0)

    def stop(self) -> None:
        """Stop the broker as its service would (SIGTERM: what persists is saved)."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise MosquittoFailed(
                f"mosquitto did not stop within {TIMEOUT:g} s{self._log_tail()}"
            ) from None
        finally:
            if process.stderr is not None:
                process.stderr.close()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def close(self) -> None:
        """Stop the broker and delete its folder (again: nothing)."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
            atexit.unregister(self.close)

    def __enter__(self) -> MosquittoBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, prefix: str = "", user: str = "", tls: bool = False) -> str:
        """``--mqtt``'s URL of this broker (``user`` may hold ``user:password``)."""
        scheme, port = ("mqtts", self.tls_port) if tls else ("mqtt", self.port)
        account = f"{user}@" if user else ""
        return f"{scheme}://{account}127.0.0.1:{port}/{prefix}".rstrip("/")

    def log_text(self) -> str:
        """What the broker has logged."""
        try:
            with open(self.logfile, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def _log_tail(self) -> str:
        lines = self.log_text().splitlines()[-30:]
        return "\nmosquitto log:\n" + "\n".join(lines) if lines else ""


@attrs.frozen
class Received:
    """One message as a subscriber got it."""

    topic: str
    payload: bytes
    qos: int
    retain: bool


class Subscriber:
    """A paho client on its own thread that keeps what it gets from ``topics``.

    ``client_id`` with ``clean_session=False`` is a persistent session: the
    broker keeps QoS 1 messages for it while it is away (and, with
    persistence, over a restart of the broker). It reconnects by itself.
    """

    def __init__(
        self,
        port: int,
        topics: str | list[str],
        qos: int = 1,
        client_id: str = "",
        clean_session: bool = True,
        auth: tuple[str, str] | None = None,
    ) -> None:
        from paho.mqtt.client import CallbackAPIVersion, Client

        self.topics = [topics] if isinstance(topics, str) else topics
        self.qos = qos
        self.messages: list[Received] = []
        self.subscriptions = 0
        self._changed = threading.Condition()
        client = Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session
        )
        if auth is not None:
            client.username_pw_set(*auth)
        client.reconnect_delay_set(min_delay=1, max_delay=1)
        client.on_connect = self._connected
        client.on_subscribe = self._subscribed
        client.on_message = self._message
        self.client: Client = client
        client.connect("127.0.0.1", port, keepalive=30)
        client.loop_start()
        self.wait(lambda: self.subscriptions > 0, "subscribed")

    def _connected(
        self,
        client: Client,
        userdata: Any,
        flags: ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if not reason.is_failure:
            client.subscribe([(topic, self.qos) for topic in self.topics])

    def _subscribed(
        self, client: Client, userdata: Any, mid: int, reasons: Any, properties: Any
    ) -> None:
        with self._changed:
            self.subscriptions += 1
            self._changed.notify_all()

    def _message(self, client: Client, userdata: Any, message: MQTTMessage) -> None:
        with self._changed:
            self.messages.append(
                Received(message.topic, bytes(message.payload), message.qos, bool(message.retain))
            )
            self._changed.notify_all()

    def wait(self, condition: Callable[[], bool], what: str = "", timeout: float = 10.0) -> None:
        """Wait (blocking this thread) until ``condition`` holds of what was received."""
        end = time.monotonic() + timeout
        with self._changed:
            while not condition():
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"not within {timeout:g} s: {what or condition};"
                        f" got {len(self.messages)} messages"
                    )
                self._changed.wait(min(left, 0.1))

    def on(self, topic: str) -> list[Received]:
        with self._changed:
            return [m for m in self.messages if m.topic == topic]

    def latest(self) -> dict[str, bytes]:
        """The last payload of each topic."""
        with self._changed:
            return {m.topic: m.payload for m in self.messages}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
