"""The access log (``--access-log``) without the secrets in URLs.

The token may be given as ``?token=`` (the board page and ``EventSource``
cannot send a header), and a browser then also sends the whole page URL as
``Referer`` with its next requests. Twisted writes both into the access log
as they came; here every ``token`` value in the request line and in the
referrer becomes ``<redacted>`` before the line is made.
"""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import unquote_to_bytes

from twisted.web.http import combinedLogFormatter
from twisted.web.iweb import IAccessLogFormatter
from zope.interface import provider

#: What stands for a secret in the log.
REDACTED: Final = b"<redacted>"

#: Query parameters whose values are never logged.
SECRET_PARAMETERS: Final = frozenset({b"token"})

_SEPARATORS = re.compile(rb"([&;])")


def redact_url(url: bytes) -> bytes:
    """``url`` with the value of each secret query parameter replaced by ``<redacted>``.

    Parameters are read as Twisted reads them (split at ``&`` and ``;``,
    names unquoted, ``+`` as a space), so that no spelling of ``token`` that
    the server accepts gets through; the rest of the URL is left as it was.
    """
    head, mark, query = url.partition(b"?")
    if not mark:
        return url
    query, hash_mark, fragment = query.partition(b"#")
    pieces = _SEPARATORS.split(query)
    for i in range(0, len(pieces), 2):
        name, equals, _ = pieces[i].partition(b"=")
        if equals and _is_secret(name):
            pieces[i] = name + b"=" + REDACTED
    return head + mark + b"".join(pieces) + hash_mark + fragment


def _is_secret(name: bytes) -> bool:
    return unquote_to_bytes(name.replace(b"+", b" ")).strip().lower() in SECRET_PARAMETERS


class _RedactedRequest:
    """The request as the access log sees it: its URI and referrer without secrets."""

    def __init__(self, request: Any) -> None:
        self._request = request
        self.uri = redact_url(request.uri)

    def getHeader(self, name: bytes) -> bytes | None:
        value: bytes | None = self._request.getHeader(name)
        if value is not None and name.lower() == b"referer":
            return redact_url(value)
        return value

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)


@provider(IAccessLogFormatter)
def redacted_log_formatter(timestamp: str, request: Any) -> str:
    """A line of the combined log format, as Twisted writes it, with secrets redacted."""
    referrer = request.getHeader(b"referer")
    if b"?" not in request.uri and (referrer is None or b"?" not in referrer):
        # No query, so no secret: the request is logged as it is (a board's poll).
        plain: str = combinedLogFormatter(timestamp, request)
        return plain
    line: str = combinedLogFormatter(timestamp, _RedactedRequest(request))
    return line
