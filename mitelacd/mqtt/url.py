"""``--mqtt URL``: the broker to publish to, read and checked before anything starts.

``mqtt://[USER[:PASSWORD]@]HOST[:PORT][/PREFIX]`` is plain MQTT (port 1883
by default), ``mqtts://...`` the same over TLS, checked against the
system's certificate authorities (port 8883 by default). ``PREFIX`` (one
or more topic levels, ``mitelacd`` by default) starts every topic
published. The password may be left out of the URL and given in
``$MITELACD_MQTT_PASSWORD`` instead, which keeps it off the command line.

The password never leaves :class:`Broker`: its ``repr`` and :meth:`Broker.shown`
(what logs, ``/api/v1/feed`` and ``/healthz`` say) leave it out, and an
error about a URL shows it as ``***``.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from typing import Final, Literal

import attrs

Scheme = Literal["mqtt", "mqtts"]

#: The port of each scheme when the URL gives none.
DEFAULT_PORTS: Final[Mapping[Scheme, int]] = {"mqtt": 1883, "mqtts": 8883}
_SCHEMES: Final[Mapping[str, Scheme]] = {"mqtt": "mqtt", "mqtts": "mqtts"}
#: The first topic level(s) when the URL gives no path.
DEFAULT_PREFIX: Final = "mitelacd"
#: The environment variable a password may come from instead of the URL.
PASSWORD_VARIABLE: Final = "MITELACD_MQTT_PASSWORD"
#: What to run when paho-mqtt is missing.
INSTALL_HINT: Final = "pip install 'mitelacd[mqtt]'"
#: What a URL looks like, for the error messages.
SHAPE: Final = "mqtt://[USER[:PASSWORD]@]HOST[:PORT][/PREFIX] (mqtts:// for TLS)"


class BrokerURLError(ValueError):
    """``--mqtt`` is not a broker URL this daemon can use; the message says why (no password)."""


@attrs.frozen
class Broker:
    """Where to publish: the broker, the account, and the topics' prefix."""

    scheme: Scheme
    host: str
    port: int
    prefix: str = DEFAULT_PREFIX
    user: str | None = None
    #: Never shown: not in ``repr``, nor in :meth:`shown`.
    password: str | None = attrs.field(default=None, repr=False)

    @property
    def tls(self) -> bool:
        return self.scheme == "mqtts"

    def shown(self) -> str:
        """The URL without its password, for the log, ``/api/v1/feed`` and ``/healthz``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{urllib.parse.quote(self.user, safe='')}@" if self.user else ""
        return f"{self.scheme}://{user}{host}:{self.port}/{self.prefix}"

    def __str__(self) -> str:
        return self.shown()


def hide_password(text: str) -> str:
    """``scheme://user:***@host``: a password in something that looks like a URL, hidden.

    Everything between the user's ``:`` and the last ``@`` goes, whatever it
    holds (a ``/`` or ``@`` not percent-encoded included).
    """
    scheme, sep, rest = text.partition("://")
    account, at, host = rest.rpartition("@")
    user, colon, _ = account.partition(":")
    if not (sep and at and colon):
        return text
    return f"{scheme}://{user}:***@{host}"


def parse_broker(text: str, environ: Mapping[str, str] | None = None) -> Broker:
    """Read ``--mqtt``; BrokerURLError saying what is wrong and what to give instead.

    ``environ`` (the process's environment) may hold the password in
    :data:`PASSWORD_VARIABLE`; a password in the URL comes first.
    """
    given = text.strip()
    shown = repr(hide_password(given))
    if "://" not in given:
        raise BrokerURLError(f"{shown} is not a broker URL: give {SHAPE}")
    written = given.split("://", 1)[0].lower()
    scheme = _SCHEMES.get(written)
    if scheme is None:
        raise BrokerURLError(f"{shown}: the scheme must be mqtt:// or mqtts://, not {written}://")
    url = urllib.parse.urlsplit(given)
    if url.query or url.fragment or "?" in given or "#" in given.split("://", 1)[1]:
        raise BrokerURLError(f"{shown}: a broker URL has no ?query or #fragment: give {SHAPE}")
    host = url.hostname
    if not host:
        raise BrokerURLError(f"{shown} names no host: give {SHAPE}")
    try:
        port = url.port
    except ValueError:
        raise BrokerURLError(f"{shown}: the port must be a number from 1 to 65535") from None
    if port == 0:
        raise BrokerURLError(f"{shown}: the port must be a number from 1 to 65535")
    user = urllib.parse.unquote(url.username) if url.username else None
    password = urllib.parse.unquote(url.password) if url.password is not None else None
    if password is None and environ is not None:
        password = environ.get(PASSWORD_VARIABLE) or None
    if password is not None and user is None:
        where = "in the URL" if url.password is not None else f"in ${PASSWORD_VARIABLE}"
        raise BrokerURLError(
            f"{shown}: a password ({where}) needs a user: mqtt://USER@{url.netloc.rsplit('@', 1)[-1]}/..."
        )
    return Broker(
        scheme,
        host,
        port if port is not None else DEFAULT_PORTS[scheme],
        _prefix(urllib.parse.unquote(url.path), shown),
        user,
        password,
    )


def _prefix(path: str, shown: str) -> str:
    """The topic prefix from the URL's path: levels without wildcards, nor empty ones."""
    prefix = path.strip("/")
    if not prefix:
        return DEFAULT_PREFIX
    levels = prefix.split("/")
    if any(not level for level in levels):
        raise BrokerURLError(f"{shown}: the topic prefix {prefix!r} has an empty level")
    if any(mark in prefix for mark in "+#\x00"):
        raise BrokerURLError(
            f"{shown}: the topic prefix {prefix!r} may not hold the wildcards + or #"
        )
    if prefix.startswith("$"):
        raise BrokerURLError(
            f"{shown}: the topic prefix {prefix!r} may not start with $ (the broker's own topics)"
        )
    return prefix


def topic_level(name: str) -> str:
    """A name (the ``--history-source``) as one topic level: ``/``, ``+`` and ``#`` made ``_``."""
    level = re.sub(r"[/+#\x00]", "_", name)
    return level or "_"


def paho_missing() -> bool:
    """Whether paho-mqtt (the ``mqtt`` extra) cannot be imported."""
    try:
        import paho.mqtt.client  # noqa: F401
    except ImportError:
        return True
    return False
