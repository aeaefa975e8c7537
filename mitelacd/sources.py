"""``--source NAME=URL``: the streams a floor is made from (state-model §9).

A source is one stream with a name:

* ``rte://HOST[:PORT]``: a controller's ACD Real Time Events stream (port
  15373 by default);
* ``smdr://HOST[:PORT]``: a controller's SMDR stream (port 1752 by default);
* ``mqtt://[USER[:PASSWORD]@]BROKER[:PORT]/PREFIX`` (or ``mqtts://``): the
  records and SMDR lines another mitelacd publishes under ``PREFIX`` with
  ``--mqtt``; each keeps the name of the source it was read from there.

An IPv6 address goes in brackets (``rte://[fe80::1]:15373``). A name is
one to 32 letters, digits, ``.``, ``_`` or ``-``: it appears in topics,
metric labels and file names as it is.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from typing import Any, Final, Literal

import attrs

SourceScheme = Literal["rte", "smdr", "mqtt"]

#: The port of each stream's scheme when the URL gives none.
DEFAULT_PORTS: Final[Mapping[str, int]] = {"rte": 15373, "smdr": 1752}
#: What a name may be.
NAME = re.compile(r"[A-Za-z0-9._-]{1,32}")
#: What the option looks like, for the error messages.
SHAPE: Final = "NAME=rte://HOST[:PORT], NAME=smdr://HOST[:PORT] or NAME=mqtt://BROKER/PREFIX"


class SourceError(ValueError):
    """A ``--source`` that cannot be used; the message says why (never with a password)."""


@attrs.frozen
class SourceSpec:
    """One ``--source``: its name, its kind, and where it is read from."""

    name: str
    scheme: SourceScheme
    host: str = ""
    port: int = 0
    #: For ``mqtt://`` and ``mqtts://``: the broker and the prefix read.
    broker: Any = None

    def shown(self) -> str:
        """The source as the log and the API show it (no password)."""
        if self.broker is not None:
            return f"{self.name}={self.broker.shown()}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.name}={self.scheme}://{host}:{self.port}"


def parse_source(text: str, environ: Mapping[str, str] | None = None) -> SourceSpec:
    """``NAME=URL`` read and checked; :class:`SourceError` saying what is wrong."""
    name, equals, url = text.partition("=")
    name, url = name.strip(), url.strip()
    if not equals or not url:
        raise SourceError(f"{_hidden(text)!r} is not {SHAPE}")
    if not NAME.fullmatch(name):
        raise SourceError(f"source name {name!r}: use 1 to 32 letters, digits, '.', '_' or '-'")
    scheme, colon, _ = url.partition("://")
    scheme = scheme.lower()
    if not colon:
        raise SourceError(f"source {name}: {_hidden(url)!r} is not a URL ({SHAPE})")
    if scheme in ("mqtt", "mqtts"):
        from mitelacd.mqtt.url import BrokerURLError, parse_broker

        try:
            broker = parse_broker(url, environ)
        except BrokerURLError as e:
            raise SourceError(f"source {name}: {e}") from None
        return SourceSpec(name, "mqtt", broker.host, broker.port, broker)
    if scheme not in DEFAULT_PORTS:
        raise SourceError(
            f"source {name}: unknown scheme {scheme!r}; use rte://, smdr://, mqtt:// or mqtts://"
        )
    parts = urllib.parse.urlsplit(url)
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise SourceError(f"source {name}: {scheme}:// takes HOST[:PORT] and nothing else")
    try:
        port = parts.port
    except ValueError:
        raise SourceError(f"source {name}: the port of {url!r} is not 1 to 65535") from None
    host = parts.hostname
    if not host:
        raise SourceError(f"source {name}: {url!r} has no host")
    if port == 0:
        raise SourceError(f"source {name}: the port of {url!r} is not 1 to 65535")
    typed: SourceScheme = "rte" if scheme == "rte" else "smdr"
    return SourceSpec(name, typed, host, port if port is not None else DEFAULT_PORTS[scheme])


def _hidden(text: str) -> str:
    from mitelacd.mqtt.url import hide_password

    return hide_password(text)
