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

Nothing is bound or listened on.
"""

from __future__ import annotations

import importlib
import ipaddress
import os
from typing import Final

from twisted.internet import endpoints

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


def check_endpoint(description: str) -> str:
    """Return ``description`` if it is a server endpoint this machine can listen on.

    Raise :class:`EndpointError` (a ``ValueError``) saying what is wrong
    otherwise; the message does not repeat the description.
    """
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
        raise EndpointError(_twisted_message(kind, e)) from None
    return description


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
