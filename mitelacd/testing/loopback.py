"""A floor's web service on a loopback port of the real reactor, asked over a real socket.

* :class:`WebOnLoopback`: the floor, its documents and its ``WebService`` on
  ``127.0.0.1``, with :meth:`WebOnLoopback.request` to ask it through treq.
"""

from __future__ import annotations

from typing import Any

import treq

from mitelacd.floor.documents import FloorDocuments
from mitelacd.floor.state import FloorState
from mitelacd.web.message import MessageService
from mitelacd.web.resources import Served, WebService, WebSettings

#: Request headers as treq takes them.
Headers = dict[bytes | str, bytes | str]
#: The response headers :meth:`WebOnLoopback.request` gives back (``""`` when absent).
ANSWER_HEADERS = ("content-type", "allow", "www-authenticate", "x-content-type-options")


class WebOnLoopback:
    """The web service of a floor on a loopback port of the real reactor, started."""

    def __init__(
        self, settings: WebSettings | None = None, messages: MessageService | None = None
    ) -> None:
        # The global reactor, taken when one is wanted rather than when this module is imported.
        from twisted.internet import reactor

        self.reactor: Any = reactor
        self.floor = FloorState(reactor, stale_after=60)
        self.documents = FloorDocuments(self.floor)
        self.service = WebService(
            "tcp:0:interface=127.0.0.1",
            Served(self.floor, self.documents, settings or WebSettings(), messages=messages),
            reactor,
        )
        self.service.startService()
        assert self.service.port is not None
        self.port: int = self.service.port.getHost().port  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.port}"

    async def request(
        self, method: str, path: str, headers: Headers | None = None, data: bytes | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """The status, the headers of ``ANSWER_HEADERS`` and the body of one request."""
        response = await treq.request(
            method, self.url + path, headers=headers, data=data
        ).addTimeout(10, self.reactor)
        body = await response.content()
        found = {name: response.headers.getRawHeaders(name, [""])[0] for name in ANSWER_HEADERS}
        return response.code, found, body
