"""``--http``: checking a Twisted server endpoint string before anything starts.

Twisted parses an endpoint string when it is about to listen; a port out of
range or an interface that is not an address then fails with a traceback
after the daemon has started. :func:`check_endpoint` finds those mistakes at
the command line, with a message that says what is wrong:

* ``tcp:``, ``tcp6:`` and ``ssl:``: the port is a number from 0 to 65535 (0:
  any free port), ``interface`` an IP address (IPv6 for ``tcp6:``),
  ``backlog`` a positive number, and no parameter is unknown or given twice;
* ``ssl:`` also needs TLS support (``pip install 'mitelacd[tls]'``), and its
  key and certificate files must exist and load;
* ``unix:`` needs a path in a folder that exists;
* every other type (``systemd:``, those of installed plugins) is parsed by
  Twisted, which rejects unknown types and wrong parameters.

A type Twisted does not know is answered with the nearest string that would
do: ``8080`` (a port alone) with ``tcp:8080``, ``127.0.0.1:8080`` with
``tcp:8080:interface=127.0.0.1``, ``tpc:8080`` with ``tcp:8080`` (the
nearest of the types Twisted knows here, or ``none``).

Nothing is bound or listened on.
"""

from __future__ import annotations

import difflib
import importlib
import ipaddress
import os
import re
from typing import Final

from twisted.internet import endpoints
from twisted.internet.interfaces import IStreamServerEndpointStringParser
from twisted.plugin import getPlugins

#: What to install for ``ssl:`` endpoints.
TLS_INSTALL: Final = "pip install 'mitelacd[tls]'"

#: The modules Twisted's TLS needs; the ``tls`` extra brings them (``twisted[tls]``).
TLS_MODULES: Final = ("OpenSSL", "service_identity", "idna")

#: The parameters of each type whose values are checked here, in the order
#: Twisted takes them when they are given without a name.
_PARAMETERS: Final[dict[str, tuple[str, ...]]] = {
    "tcp": ("port", "interface", "backlog"),
    "tcp6": ("port", "backlog", "interface"),
    "ssl": (
        "port",
        "privateKey",
        "certKey",
        "sslmethod",
        "interface",
        "backlog",
        "extraCertChain",
        "dhParameters",
    ),
    "unix": ("address", "mode", "backlog", "lockfile"),
}

#: Examples for the messages.
_EXAMPLES: Final = {
    "tcp": "tcp:8080:interface=127.0.0.1",
    "tcp6": "tcp6:8080:interface=\\:\\:1",
    "ssl": "ssl:8443:privateKey=key.pem:certKey=cert.pem",
    "unix": "unix:/run/mitelacd/http.sock",
}


#: What ``--http`` takes for no HTTP at all; offered beside the endpoint types.
NO_HTTP: Final = "none"

#: The types Twisted itself parses; plugins add more (:func:`endpoint_types`).
_BUILT_IN_TYPES: Final = ("tcp", "ssl", "unix")

#: Types written for what they serve, and the endpoint type that serves it.
_MEANT: Final = {"http": "tcp", "https": "ssl"}

#: A port alone (``8080``, ``:8080``).
_PORT_ALONE = re.compile(r":?(?P<port>[0-9]+)/?")
#: An address or a name and a port, perhaps as a URL (``http://127.0.0.1:8080/``).
_ADDRESS_AND_PORT = re.compile(
    r"(?P<url>https?://)?(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:/\[\]]+)):(?P<port>[0-9]+)/?"
)
#: Hosts written for every interface, or for this machine.
_EVERY_INTERFACE: Final = ("*", "0.0.0.0", "::")
_THIS_MACHINE: Final = {"localhost": "127.0.0.1"}


class EndpointError(ValueError):
    """An endpoint string that cannot be listened on; the message says why."""


def split_endpoint(description: str) -> tuple[list[str], dict[str, str]]:
    """The positional and named parameters of an endpoint string, as Twisted reads them.

    Parameters are separated by ``:``; ``name=value`` names one (only the
    first ``=`` counts); a backslash takes the next character as it is.
    """
    fields: list[tuple[str, ...]] = []
    current: list[str] = []
    field: tuple[str, ...] = ()
    named = False
    chars = iter(description)
    for char in chars:
        if char == "\\":
            current.append(next(chars, ""))
        elif char == ":":
            fields.append((*field, "".join(current)))
            current, field, named = [], (), False
        elif char == "=" and not named:
            field = ("".join(current),)
            current, named = [], True
        else:
            current.append(char)
    fields.append((*field, "".join(current)))
    positional: list[str] = []
    keywords: dict[str, str] = {}
    for item in fields:
        if len(item) == 1:
            positional.append(item[0])
        else:
            keywords[item[0]] = item[1]
    return positional, keywords


def endpoint_kind(description: str) -> str:
    """The type of an endpoint string (``tcp``, ``ssl``, ``unix``, ...), in lower case."""
    positional, _ = split_endpoint(description)
    return positional[0].strip().lower() if positional else ""


def is_tls(description: str) -> bool:
    """Whether the endpoint serves TLS (an ``ssl:`` endpoint), so its URLs are ``https://``."""
    return endpoint_kind(description) == "ssl"


def tls_missing() -> list[str]:
    """The modules TLS needs that cannot be imported; empty when TLS is available."""
    missing = []
    for name in TLS_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def endpoint_types() -> list[str]:
    """The server endpoint types Twisted knows here, its own and its plugins', sorted."""
    found = set(_BUILT_IN_TYPES)
    found.update(parser.prefix.lower() for parser in getPlugins(IStreamServerEndpointStringParser))
    return sorted(found)


def check_endpoint(description: str) -> str:
    """Return ``description`` if it is a server endpoint this machine can listen on.

    Raise :class:`EndpointError` (a ``ValueError``) saying what is wrong
    otherwise; the message does not repeat the description. Of a type
    Twisted does not know, it offers the nearest endpoint string that passes.
    """
    return _check(description, suggest=True)


def _problem(description: str) -> str | None:
    """What is wrong with an endpoint string, or None; nothing is offered in its place."""
    try:
        _check(description, suggest=False)
    except EndpointError as e:
        return str(e)
    return None


def _check(description: str, suggest: bool) -> str:
    if not description.strip():
        raise EndpointError("the endpoint is empty (e.g. tcp:8080)")
    positional, keywords = split_endpoint(description)
    kind = positional[0]
    checked = kind.lower() if kind.lower() == "tcp6" else kind
    names = _PARAMETERS.get(checked)
    if names is not None:
        values = _name_parameters(checked, names, positional[1:], keywords)
        if checked == "unix":
            _check_unix(values)
        else:
            _check_inet(checked, values)
        if checked == "ssl":
            missing = tls_missing()
            if missing:
                raise EndpointError(
                    f"ssl: endpoints need TLS support, and {', '.join(missing)}"
                    f" {'is' if len(missing) == 1 else 'are'} not installed: {TLS_INSTALL}"
                )
            _check_files(values)
    try:
        endpoints.serverFromString(_NoReactor(), description)
    except EndpointError:
        raise
    except Exception as e:  # Twisted's parsers raise whatever they meet
        text = str(e)
        if suggest and isinstance(e, ValueError) and text.startswith("Unknown endpoint type"):
            raise EndpointError(_unknown_type(kind, description)) from None
        raise EndpointError(_twisted_message(kind, e)) from None
    return description


def _unknown_type(kind: str, description: str) -> str:
    """What to say of an endpoint whose type Twisted does not know: what was meant."""
    written = _address_and_port(description)
    if written is not None:
        what, offered = written
        return f"{what} is not an endpoint: {_did_you_mean(offered)}"
    unknown = f"unknown endpoint type {kind!r}"
    types = endpoint_types()
    near = _MEANT.get(kind.lower())
    if near is None:
        close = difflib.get_close_matches(kind.lower(), [*types, NO_HTTP], n=1, cutoff=0.6)
        near = close[0] if close else None
    if near == NO_HTTP:
        return f"{unknown}: did you mean {NO_HTTP} (no HTTP)?"
    if near is not None:
        meant = near + description[len(description.partition(":")[0]) :]
        return f"{unknown}: {_did_you_mean([(meant, None)])}"
    return f"{unknown} (known types: {', '.join(types)}; or {NO_HTTP}, for no HTTP)"


#: Endpoint strings offered, each with what it means (or None).
_Offered = list[tuple[str, str | None]]


def _address_and_port(description: str) -> tuple[str, _Offered] | None:
    """A port, or an address and a port, written as an endpoint: what it is, and what to
    write instead; else None."""
    text = description.strip()
    alone = _PORT_ALONE.fullmatch(text)
    if alone is not None:
        return "a port alone", _tcp(alone["port"], None)
    found = _ADDRESS_AND_PORT.fullmatch(text)
    if found is None:
        return None
    port = found["port"]
    host = found["v6"] if found["v6"] is not None else found["host"]
    what = "a URL" if found["url"] else "an address with a port"
    if host in _EVERY_INTERFACE:
        return what, _tcp(port, None)
    host = _THIS_MACHINE.get(host.lower(), host)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if "." not in host and found["v6"] is None and not found["url"]:
            return None  # more likely a mistyped type, as tpc:8080
        if not found["url"]:
            what = "a host name with a port"
        return what, [
            (f"tcp:{port}", "every interface; interface= takes an IP address, not a name")
        ]
    return what, _tcp(port, host)


def _tcp(port: str, interface: str | None) -> _Offered:
    """The endpoints serving ``port`` on ``interface``; on every interface or this machine."""
    if interface is None:
        return [
            (f"tcp:{port}", "every interface"),
            (f"tcp:{port}:interface=127.0.0.1", "this machine only"),
        ]
    if ipaddress.ip_address(interface).version == 6:
        escaped = interface.replace(":", "\\:")  # a colon would end the parameter
        return [(f"tcp6:{port}:interface={escaped}", None)]
    return [(f"tcp:{port}:interface={interface}", None)]


def _did_you_mean(offered: _Offered) -> str:
    """``did you mean A (what A is) or B?``, of the strings that pass; if none does, the first
    and what is wrong with it too."""
    shown = [(text, label) for text, label in offered if _problem(text) is None] or offered[:1]
    words = " or ".join(f"{text} ({label})" if label else text for text, label in shown)
    problem = _problem(shown[0][0])
    if problem is not None:
        return f"did you mean {words}? (refused too: {problem})"
    return f"did you mean {words}?"


class _NoReactor:
    """Enough of a reactor for parsing an endpoint string without listening."""


def _name_parameters(
    kind: str, names: tuple[str, ...], positional: list[str], keywords: dict[str, str]
) -> dict[str, str]:
    takes = f"{kind}: takes {', '.join(names)} (e.g. {_EXAMPLES[kind]})"
    if len(positional) > len(names):
        raise EndpointError(f"too many parameters; {takes}")
    values = dict(zip(names, positional))
    for name, value in keywords.items():
        if name not in names:
            raise EndpointError(f"unknown parameter {name!r}; {takes}")
        if name in values:
            raise EndpointError(f"{name} is given twice")
        values[name] = value
    first = names[0]
    if not values.get(first, "").strip():
        what = "a socket path" if first == "address" else f"a {first}"
        raise EndpointError(f"{kind}: needs {what}, e.g. {_EXAMPLES[kind]}")
    return values


def _check_inet(kind: str, values: dict[str, str]) -> None:
    text = values["port"].strip()
    try:
        port = int(text)
    except ValueError:
        raise EndpointError(f"the port must be a number, not {text!r}") from None
    if not 0 <= port <= 65535:
        raise EndpointError(f"port {port} is out of range (0-65535; 0: any free port)")
    if "backlog" in values:
        text = values["backlog"].strip()
        if not (text.isdigit() and int(text) > 0):
            raise EndpointError(f"backlog must be a whole number above 0, not {text!r}")
    interface = values.get("interface", "")
    if interface:
        try:
            address = ipaddress.ip_address(interface)
        except ValueError:
            raise EndpointError(
                f"interface {interface!r} is not an IP address"
                " (give the address of one of this machine's interfaces)"
            ) from None
        if kind == "tcp6" and address.version != 6:
            raise EndpointError(
                f"tcp6: interface {interface!r} is not an IPv6 address (tcp: is for IPv4)"
            )


def _check_files(values: dict[str, str]) -> None:
    key = values.get("privateKey", "server.pem")
    files = {"privateKey": key, "certKey": values.get("certKey", key)}
    for name in ("extraCertChain", "dhParameters"):
        if name in values:
            files[name] = values[name]
    for name, path in files.items():
        if not os.path.isfile(path):
            raise EndpointError(f"{name} file {path!r} does not exist")
        if not os.access(path, os.R_OK):
            raise EndpointError(f"{name} file {path!r} cannot be read")


def _check_unix(values: dict[str, str]) -> None:
    path = os.path.abspath(values["address"])
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise EndpointError(f"unix: folder {folder} does not exist")
    if os.path.isdir(path):
        raise EndpointError(f"unix: {path} is a directory, not a socket path")


def _twisted_message(kind: str, error: Exception) -> str:
    text = str(error) or type(error).__name__
    if isinstance(error, TypeError):
        # A parser function's signature speaks of Python, not of the endpoint.
        return f"{kind}: wrong parameters ({text})"
    if kind == "ssl":
        return f"ssl: cannot load the key or certificate: {text}"
    if kind.lower() == "systemd" and isinstance(error, (IndexError, KeyError)):
        return (
            "systemd: systemd passed no such socket (start the unit from"
            " a .socket unit that provides it)"
        )
    if text.startswith("Unknown endpoint type"):
        return text
    return f"{kind}: {text}"
