"""HTTP for display boards: the legacy JSON, a typed API, push, health and the wall board.

Every resource reads the floor; none of them changes it. The one thing a
request may change is the message on every board (``/api/v1/message``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html as html_text
import json
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from typing import TYPE_CHECKING, Any

import attrs
from twisted.application import strports
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort, IPushProducer, IReactorTime
from twisted.web import http, pages
from twisted.web.http import CACHED
from twisted.web.http_headers import Headers
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request, Site
from zope.interface import implementer

from mitelacd import __version__
from mitelacd.floor.changes import EntityKind
from mitelacd.floor.documents import FloorDocuments
from mitelacd.floor.render import compact, iso_utc
from mitelacd.floor.state import Feed, FloorState
from mitelacd.logs import Logger
from mitelacd.web.accesslog import redacted_log_formatter
from mitelacd.web.endpoint import is_tls
from mitelacd.web.message import MessageError, MessageService, parse_put
from mitelacd.web.metrics import FloorMetrics, endpoint_of
from mitelacd.web.push import (
    BUSY_RETRY_AFTER,
    CHUNK,
    DEFAULT_PUSH_INTERVAL,
    EventPush,
    envelope,
    parse_event_id,
)

if TYPE_CHECKING:
    from mitelacd.reports.smdrlive import SmdrService

log = Logger()

#: The data file's health, as its writer tells it (``LegacyFileWriter.health``).
FileHealth = Callable[[], dict[str, Any]]

DEFAULT_HTTP = "tcp:8080:interface=127.0.0.1"


def _raw(headers: Any) -> dict[bytes, list[bytes]] | None:
    """The dict a Twisted ``Headers`` keeps its headers in, or None if it keeps them otherwise."""
    raw = getattr(headers, "_rawHeaders", None)
    return raw if isinstance(raw, dict) else None


class FixedHeaders:
    """Response headers whose names and values never change, checked once rather than per request.

    Twisted's ``Request.setHeader`` canonicalises the name and cleans the
    value at every call, and a board polling ``/mitel_data.json`` gets the
    same handful of headers each time. These are run through a Twisted
    ``Headers`` once, when made, and then put into each request's headers as
    they came out: the names, values and order ``setHeader`` in turn gives.
    """

    __slots__ = ("given", "_checked")

    def __init__(self, *headers: tuple[bytes, bytes]) -> None:
        #: The headers as given, set in this order.
        self.given = headers
        checked = Headers()
        for name, value in headers:
            checked.setRawHeaders(name, [value])
        raw = _raw(checked)
        # The names as the installed Twisted keys them, the values as it cleaned them.
        self._checked = None if raw is None else tuple((k, v[0]) for k, v in raw.items())

    def apply(self, request: Any) -> None:
        """Set every header on ``request``, as ``request.setHeader`` would, in order."""
        headers = request.responseHeaders
        raw = _raw(headers)
        if raw is None or self._checked is None:
            for name, value in self.given:
                headers.setRawHeaders(name, [value])
            return
        for key, value in self._checked:
            # A list of its own: a value may yet be added to it.
            raw[key] = [value]


JSON_TYPE = b"application/json"
#: The headers of every JSON document served.
JSON_HEADERS = FixedHeaders((b"content-type", JSON_TYPE), (b"cache-control", b"no-cache"))
#: No answer is to be read as anything but the type it says it is.
NOSNIFF = FixedHeaders((b"x-content-type-options", b"nosniff"))
#: Bodies up to this size are answered in one write, as a plain resource
#: would; larger ones in slices as the socket drains, so that a hundred
#: boards fetching a 4 MB floor do not each hold a copy of it.
SMALL_BODY = 1024 * 1024
#: The largest request body read (``PUT /api/v1/message``).
MAX_REQUEST_BODY = 16 * 1024
#: The methods served, on every path but those of ``WRITABLE``.
READ_ONLY = (b"GET", b"HEAD")
#: The paths that take more than GET and HEAD, and what they take.
WRITABLE = {b"/api/v1/message": (b"GET", b"HEAD", b"PUT", b"DELETE")}
#: The name of the board page's ``<meta>`` that says which version of the page it is.
BOARD_VERSION_META = "mitelacd-board-version"


@attrs.frozen
class WebSettings:
    """What the command line says about HTTP."""

    #: ``Access-Control-Allow-Origin`` value; None sends no CORS headers.
    cors_origin: str | None = "*"
    #: Bearer token every endpoint but /healthz asks for; None: open.
    token: str | None = None
    access_log: bool = False
    #: Shortest time between two pushed deltas, in seconds; 0: every change.
    push_interval: float = DEFAULT_PUSH_INTERVAL
    heartbeat: float = 15.0
    #: Reconnection delay suggested to EventSource clients, in milliseconds.
    retry_ms: int = 2000
    #: Event stream clients served at once; more get 503.
    max_push_clients: int = 1000
    #: Serve /metrics without the token.
    metrics_public: bool = False


@attrs.frozen
class Served:
    """What the web side serves: the floor, its documents, the health of what is written.

    The daemon gathers it once; the web service and the site only read it.
    """

    floor: FloorState
    documents: FloorDocuments
    settings: WebSettings = attrs.field(factory=WebSettings)
    #: The health of what the daemon writes, for /healthz and /api/v1/feed;
    #: None for what it does not write.
    file_health: FileHealth | None = None
    capture_health: FileHealth | None = None
    history_health: FileHealth | None = None
    #: The MQTT broker the floor is published to (``--mqtt``): the publisher's
    #: health, for /healthz and /api/v1/feed; None: not published.
    mqtt_health: FileHealth | None = None
    #: The SMDR feed (``--smdr``), for /healthz and /api/v1/feed; None: not read.
    smdr: SmdrService | None = None
    #: /metrics; the web service makes its own when none is given.
    metrics: FloorMetrics | None = None
    #: /api/v1/reports; None serves no reports.
    reports: Resource | None = None
    #: The message on every board; the web service makes its own (kept in
    #: memory only) when none is given.
    messages: MessageService | None = None
    #: The board page; the web service reads it when none is given.
    board: BoardPage | None = None


def render_json(request: Request, doc: Any, code: int = http.OK) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"content-type", JSON_TYPE)
    request.setHeader(b"cache-control", b"no-cache")
    return json.dumps(doc, separators=(",", ":")).encode("ascii")


def json_error(request: Request, code: int, error: str, detail: str) -> bytes:
    """An error in the API's JSON shape: ``{"error": ..., "detail": ...}`` (docs/api.md)."""
    return render_json(request, {"error": error, "detail": detail}, code)


class ApiError(Resource):
    """An error in the API's JSON shape (docs/api.md), whatever the method."""

    isLeaf = True

    def __init__(self, code: int, error: str, detail: str) -> None:
        super().__init__()
        self.code = code
        self.error = error
        self.detail = detail

    def render(self, request: Request) -> bytes:
        return json_error(request, self.code, self.error, self.detail)


def not_found(request: Request) -> ApiError:
    """The JSON 404 for a path nothing is served at.

    The path is not echoed: what a client sent is never reflected back.
    """
    return ApiError(http.NOT_FOUND, "not_found", "nothing is served at this path")


class ApiRequest(Request):
    """A request whose unexpected failure is answered with a JSON error (the board page's in HTML).

    It is counted for ``/metrics`` when it is answered (the site's ``log``)
    or, if its client leaves first, when its connection is lost.
    """

    def connectionLost(self, reason: Any) -> None:
        site = getattr(self.channel, "site", None)
        if not self.finished and isinstance(site, BoardSite):
            site.answered(self)
        super().connectionLost(reason)

    def processingFailed(self, reason: Any) -> Any:
        if self.startedWriting or self.path == b"/":
            return super().processingFailed(reason)
        self._log.failure("", failure=reason)
        body = json_error(
            self, http.INTERNAL_SERVER_ERROR, "internal_error", "the request failed; see the log"
        )
        self.setHeader(b"content-length", b"%d" % len(body))
        self.write(body)
        self.finish()
        return reason


@implementer(IPushProducer)
class _PartsProducer:
    """Write a list of byte strings in slices, as the client's socket drains.

    Large documents are shared by every request until the next change;
    serving one never copies it whole into a connection's buffer.
    """

    def __init__(self, request: Request, parts: list[bytes]) -> None:
        self._request = request
        self._parts = deque(memoryview(p) for p in parts if p)
        self._paused = False
        self._writing = False

    def start(self) -> None:
        self._request.registerProducer(self, True)
        self._request.notifyFinish().addErrback(lambda _: self.stopProducing())
        self.resumeProducing()

    def resumeProducing(self) -> None:
        self._paused = False
        if self._writing:
            return  # called back from inside request.write below
        self._writing = True
        try:
            while self._parts and not self._paused:
                head = self._parts[0]
                if len(head) > CHUNK:
                    self._parts[0] = head[CHUNK:]
                    head = head[:CHUNK]
                else:
                    self._parts.popleft()
                self._request.write(bytes(head))
        finally:
            self._writing = False
        if not self._parts and not self._paused and self._request is not None:
            request, self._request = self._request, None  # type: ignore[assignment]
            if request is not None:
                request.unregisterProducer()
                request.finish()

    def pauseProducing(self) -> None:
        self._paused = True

    def stopProducing(self) -> None:
        self._parts.clear()
        self._paused = True


def send_parts(request: Request, parts: list[bytes]) -> bytes | int:
    """Answer with the concatenation of ``parts``, writing large bodies as the socket drains."""
    JSON_HEADERS.apply(request)
    return send_body(request, parts)


def send_body(request: Request, parts: list[bytes]) -> bytes | int:
    """:func:`send_parts` once the JSON headers are set."""
    if request.method == b"HEAD":
        return b"".join(parts)  # Twisted says its length and leaves the body out
    if len(parts) == 1 and len(parts[0]) <= SMALL_BODY:
        return parts[0]
    size = sum(len(p) for p in parts)
    request.setHeader(b"content-length", b"%d" % size)
    if size > SMALL_BODY:
        _PartsProducer(request, parts).start()
    else:
        # Written part by part: the shared document is not copied into a
        # new body for each request.
        for part in parts:
            if part:
                request.write(part)
        request.finish()
    return NOT_DONE_YET


class Stamp:
    """The web layer's own envelope: when a document was made and whether the feed is stale."""

    def __init__(self, floor: FloorState, clock: IReactorTime) -> None:
        self._floor = floor
        self._clock = clock

    def open(self) -> tuple[bytes, bytes]:
        """The envelope to put in front of a document, and the stale flag in JSON."""
        stale = self._floor.isStale()
        return envelope(self._floor.now(), stale), b"true" if stale else b"false"


class Legacy(Resource):
    """``/mitel_data.json``: the file's document, with an ETag that moves when it changes."""

    isLeaf = True

    def __init__(self, documents: FloorDocuments) -> None:
        super().__init__()
        self._documents = documents
        #: The ETag of the document's version, made once per version.
        self._etag: tuple[int, bytes] = (-1, b"")

    def render(self, request: Request) -> bytes | int:
        # What boards poll, straight to its method.
        if request.method == b"GET":
            return self.render_GET(request)
        answer: bytes | int = super().render(request)
        return answer

    def render_GET(self, request: Request) -> bytes | int:
        docs = self._documents
        version, etag = self._etag
        if version != docs.legacy_version:
            version = docs.legacy_version
            etag = b'"%d"' % version
            self._etag = (version, etag)
        JSON_HEADERS.apply(request)
        if request.setETag(etag) == CACHED:
            return b""
        return send_body(request, [docs.legacy()])


class Document(Resource):
    """A JSON document of the typed API: the envelope, then members rendered once per change."""

    isLeaf = True

    def __init__(self, stamp: Stamp, members: Callable[[bytes], list[bytes]]) -> None:
        super().__init__()
        self._stamp = stamp
        self._members = members

    def render_GET(self, request: Request) -> bytes | int:
        head, stale = self._stamp.open()
        return send_parts(request, [head, *self._members(stale)])


class Agents(Document):
    """``/api/v1/agents`` and ``/api/v1/agents/<id>``."""

    isLeaf = False

    def __init__(self, stamp: Stamp, documents: FloorDocuments) -> None:
        super().__init__(stamp, lambda stale: documents.listing("agents"))
        self._documents = documents

    def getChild(self, path: bytes, request: Request) -> IResource:
        return OneAgent(self._stamp, self._documents, path.decode("ascii", "replace"))


class OneAgent(Resource):
    isLeaf = True

    def __init__(self, stamp: Stamp, documents: FloorDocuments, agent_id: str) -> None:
        super().__init__()
        self._stamp = stamp
        self._documents = documents
        self._agent_id = agent_id

    def render_GET(self, request: Request) -> bytes | int:
        if request.postpath:
            return json_error(request, http.NOT_FOUND, "not_found", "no such resource")
        agent = self._documents.entity("agents", self._agent_id)
        if agent is None:
            # An ID is echoed only when it could be one (1-7 digits).
            agent_id = self._agent_id
            named = f"agent {agent_id!r}" if agent_id.isdigit() and len(agent_id) <= 7 else "agent"
            detail = f"{named} has not been seen"
            return json_error(request, http.NOT_FOUND, "not_found", detail)
        head, _ = self._stamp.open()
        return send_parts(request, [head, b'"agent":', agent, b"}"])


class Health(Resource):
    """``/healthz``: 200 while the feed is connected and fresh, 503 saying why not."""

    isLeaf = True

    def __init__(
        self,
        floor: FloorState,
        file_health: FileHealth | None = None,
        capture_health: FileHealth | None = None,
        history_health: FileHealth | None = None,
        smdr: SmdrService | None = None,
        mqtt_health: FileHealth | None = None,
    ) -> None:
        super().__init__()
        self._floor = floor
        self._file_health = file_health
        self._capture_health = capture_health
        self._history_health = history_health
        self._smdr = smdr
        self._mqtt_health = mqtt_health

    def render_GET(self, request: Request) -> bytes:
        floor, feed = self._floor, self._floor.feed
        doc: dict[str, Any] = {"pbx_host": feed.host, "pbx_port": feed.port}
        doc["warnings"] = warnings = []
        file = self._file_health() if self._file_health is not None else None
        if file is not None and not file["writing"]:
            # The feed is still served: a warning, not a failure.
            warnings.append(
                f"the data file {file['path']} is not being written"
                f" ({file['problem']}) since {file['failing_since']}"
            )
        capture = self._capture_health() if self._capture_health is not None else None
        if capture is not None and not capture["writing"]:
            warnings.append(
                f"the capture in {capture['folder']} is not being written"
                f" ({capture['problem']}) since {capture['failing_since']};"
                f" {capture['pending_bytes']} bytes wait in memory"
            )
        history = self._history_health() if self._history_health is not None else None
        if history is not None and not history["ok"] and history["failing_since"] is not None:
            warnings.append(
                f"the history database {history['url']} is not being written"
                f" ({history['problem']}) since {history['failing_since']};"
                f" {history['backlog']} rows wait in memory"
            )
        mqtt = self._mqtt_health() if self._mqtt_health is not None else None
        if mqtt is not None and not mqtt["connected"] and mqtt["problem"] is not None:
            # The floor is fine; what the broker's readers see is not.
            warnings.append(
                f"the MQTT broker {mqtt['broker']} cannot be reached ({mqtt['problem']})"
                f" since {mqtt['since']}; {mqtt['pending']} messages wait in memory"
            )
        if floor.several:
            links = {
                name: _link_status(src.feed, name in stale, floor.stale_after)
                for stale in (set(floor.staleSources()),)
                for name, src in floor.sources.items()
            }
            doc["sources"] = links
            down = {name: link for name, link in links.items() if link["status"] != "ok"}
            if not down:
                doc["status"] = "ok"
            else:
                doc.update(
                    status="unavailable",
                    reason="source not live",
                    detail="; ".join(
                        f"source {name}: {link['reason']}"
                        + (f" ({link['detail']})" if link.get("detail") else "")
                        for name, link in down.items()
                    ),
                )
        else:
            doc.update(_link_status(feed, floor.isStale(), floor.stale_after))
        smdr = self._smdr
        if smdr is not None:
            link = smdr.health()
            doc["smdr"] = {
                key: link[key]
                for key in (
                    "host",
                    "port",
                    "connected",
                    "idle",
                    "last_line_at",
                    "disconnected_since",
                )
            }
            named: dict[str, Any] = link.get("sources") or {}
            if named:
                doc["smdr"]["sources"] = {
                    name: {key: each[key] for key in doc["smdr"]} for name, each in named.items()
                }
            gone = smdr.down_links()
            if doc["status"] == "ok" and gone:
                # Idle is normal on SMDR; a link that stays down loses calls.
                gone_links = [named.get(name, link) for name in gone]
                doc.update(
                    status="unavailable",
                    reason="smdr disconnected",
                    since=gone_links[0]["disconnected_since"],
                    detail="; ".join(
                        f"the SMDR link {f'{name} ' if name else ''}to"
                        f" {each['host']}:{each['port']} has been down for"
                        f" more than {smdr.stale_after:g} s: {each['disconnect_reason']}"
                        for name, each in zip(gone, gone_links, strict=True)
                    ),
                )
        code = http.OK if doc["status"] == "ok" else http.SERVICE_UNAVAILABLE
        return render_json(request, doc, code)


def _link_status(feed: Feed, stale: bool, stale_after: float) -> dict[str, Any]:
    """What ``/healthz`` says of one source's link: ``ok``, or why it is not live."""
    if feed.connections == 0:
        return {
            "status": "unavailable",
            "reason": "never connected",
            "detail": feed.disconnect_reason,
        }
    if not feed.connected:
        return {
            "status": "unavailable",
            "reason": "disconnected",
            "since": iso_utc(feed.disconnected_since),
            "detail": feed.disconnect_reason,
        }
    if feed.records_this_connection == 0:
        return {
            "status": "unavailable",
            "reason": "no data yet",
            "since": iso_utc(feed.connected_since),
            "detail": "connected, but no valid record has arrived on this connection",
        }
    if stale:
        return {
            "status": "unavailable",
            "reason": "stale",
            "since": iso_utc(feed.last_record_at or feed.connected_since),
            "detail": f"no record for more than {stale_after:g} s",
        }
    return {
        "status": "ok",
        "connected_since": iso_utc(feed.connected_since),
        "last_record_at": iso_utc(feed.last_record_at),
    }


def board_version() -> str:
    """The board page's version: mitelacd's, and a hash of the files of ``board/``.

    It changes whenever the page does, so that a board whose page is older
    than the one served knows it (docs/api.md).
    """
    folder = resources.files("mitelacd.web") / "board"
    digest = hashlib.sha256(__version__.encode("utf-8"))
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_file():
            content = entry.read_bytes()
            digest.update(b"%s\0%d\0" % (entry.name.encode("utf-8"), len(content)))
            digest.update(content)
    return f"{__version__}+{digest.hexdigest()[:12]}"


@attrs.frozen
class BoardPage:
    """The wall board page as served, and its version (in its ``<meta>`` too)."""

    html: bytes
    version: str

    @classmethod
    def load(cls) -> BoardPage:
        """Read the board's files: what is served is what was read at start."""
        version = board_version()
        return cls(board_page(version), version)


def board_page(version: str = "") -> bytes:
    """The wall board as one document: its CSS and JS are put inside the HTML,
    and its alarm tone too, as a ``data:`` address (base64 of alarm.wav);
    ``version`` goes in its ``<meta name="mitelacd-board-version">``."""
    folder = resources.files("mitelacd.web") / "board"
    html = (folder / "index.html").read_text("utf-8")
    # Before the CSS and JS are put in, so that nothing in them is taken for it.
    meta = f'<meta name="{BOARD_VERSION_META}" content="'
    html = html.replace(meta + '">', meta + html_text.escape(version) + '">', 1)
    tone = base64.b64encode((folder / "alarm.wav").read_bytes()).decode("ascii")
    html = html.replace("/*BOARD_TONE*/", tone)
    html = html.replace("/*BOARD_CSS*/", (folder / "board.css").read_text("utf-8"))
    html = html.replace("/*BOARD_JS*/", (folder / "board.js").read_text("utf-8"))
    return html.encode("utf-8")


class Board(Resource):
    isLeaf = True

    def __init__(self, page: BoardPage | None = None) -> None:
        super().__init__()
        self._page = (page or BoardPage.load()).html

    def render_GET(self, request: Request) -> bytes:
        if request.postpath not in ([], [b""]):
            missing: bytes = pages.notFound().render(request)
            return missing
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"cache-control", b"no-cache")
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(
            b"content-security-policy",
            b"default-src 'none'; connect-src 'self'; img-src 'self' data:; media-src data:;"
            b" style-src 'unsafe-inline'; script-src 'unsafe-inline'",
        )
        return self._page


class Events(Resource):
    """``/api/v1/events``: see :mod:`mitelacd.web.push`."""

    isLeaf = True

    def __init__(self, push: EventPush) -> None:
        super().__init__()
        self._push = push

    def render_GET(self, request: Request) -> int | bytes:
        request.setHeader(b"content-type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"cache-control", b"no-cache")
        request.setHeader(b"x-accel-buffering", b"no")
        if request.method == b"HEAD":
            return b""
        if self._push.full():
            request.setHeader(b"retry-after", b"%d" % BUSY_RETRY_AFTER)
            # Closed after the answer: a refused client must not keep a file open.
            request.setHeader(b"connection", b"close")
            if request.channel is not None:
                request.channel.persistent = False
            return json_error(
                request, http.SERVICE_UNAVAILABLE, "busy", "too many event stream clients"
            )
        full = (request.args or {}).get(b"full", [b"0"])[0] in (b"1", b"true", b"yes")
        last = parse_event_id(request.getHeader(b"last-event-id"))
        transport = getattr(request.channel, "transport", None)
        if transport is not None and hasattr(transport, "setTcpNoDelay"):
            # Small events must leave at once, not wait for the last one's ACK.
            transport.setTcpNoDelay(True)
        self._push.subscribe(request, full=full, last_event_id=last)
        return NOT_DONE_YET


class MessageResource(Resource):
    """``/api/v1/message``: the message on every board; PUT sets it, DELETE takes it down."""

    isLeaf = True

    def __init__(self, messages: MessageService) -> None:
        super().__init__()
        self._messages = messages

    def render(self, request: Request) -> Any:
        if request.postpath not in ([], [b""]):
            return json_error(request, http.NOT_FOUND, "not_found", "no such resource")
        return super().render(request)

    def render_GET(self, request: Request) -> bytes | int:
        return send_parts(request, [b'{"message":', self._messages.rendered(), b"}"])

    def render_PUT(self, request: Request) -> bytes | int:
        kind = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
        if kind != JSON_TYPE:
            return json_error(
                request,
                http.UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON, sent with Content-Type: application/json",
            )
        body = request.content.read(MAX_REQUEST_BODY + 1) if request.content is not None else b""
        if len(body) > MAX_REQUEST_BODY:
            return json_error(
                request,
                http.REQUEST_ENTITY_TOO_LARGE,
                "too_large",
                f"the body must be at most {MAX_REQUEST_BODY} bytes",
            )
        try:
            doc = json.loads(body)
        except ValueError as e:
            detail = f"the body is not JSON: {e}"
            return json_error(request, http.BAD_REQUEST, "bad_request", detail)
        except RecursionError:
            detail = "the body is nested too deep"
            return json_error(request, http.BAD_REQUEST, "bad_request", detail)
        messages = self._messages
        try:
            text, until = parse_put(doc, messages.wall())
        except MessageError as e:
            return json_error(request, http.BAD_REQUEST, "bad_request", e.detail)
        messages.put(text, until)
        return send_parts(request, [b'{"message":', messages.rendered(), b"}"])

    def render_DELETE(self, request: Request) -> bytes:
        self._messages.delete()
        request.setResponseCode(http.NO_CONTENT)
        return b""


class Preflight(Resource):
    """The CORS preflight a browser sends before a GET with an Authorization header."""

    isLeaf = True

    def render(self, request: Request) -> bytes:
        request.setResponseCode(http.NO_CONTENT)
        request.setHeader(b"access-control-allow-methods", b"GET, HEAD")
        request.setHeader(
            b"access-control-allow-headers",
            b"Authorization, If-None-Match, Cache-Control, Last-Event-ID",
        )
        request.setHeader(b"access-control-max-age", b"600")
        return b""


class _Branch(Resource):
    """A folder of the URL tree: only its children are served."""

    def getChild(self, path: bytes, request: Request) -> IResource:
        return not_found(request)

    def render(self, request: Request) -> bytes:
        return not_found(request).render(request)


class Root(_Branch):
    """Checks that apply to every request, then the URL tree."""

    def __init__(self, served: Served, push: EventPush, clock: IReactorTime) -> None:
        super().__init__()
        settings = served.settings
        documents = served.documents
        origin = settings.cors_origin
        #: The CORS headers of every answer; None: none.
        self._cors = (
            None
            if not origin
            else FixedHeaders(
                (b"access-control-allow-origin", origin.encode("ascii")),
                (b"access-control-expose-headers", b"ETag"),
                *([] if origin == "*" else [(b"vary", b"Origin")]),
            )
        )
        self._token = settings.token.encode("utf-8") if settings.token else None
        #: What is served without the token.
        self._open = {b"healthz", b"metrics"} if settings.metrics_public else {b"healthz"}
        stamp = Stamp(served.floor, clock)
        #: The methods of the paths that take more than GET and HEAD.
        self._methods: dict[bytes, tuple[bytes, ...]] = {}
        self.putChild(b"", Board(served.board))
        self.putChild(b"mitel_data.json", Legacy(documents))
        self.putChild(
            b"healthz",
            Health(
                served.floor,
                served.file_health,
                served.capture_health,
                served.history_health,
                served.smdr,
                served.mqtt_health,
            ),
        )
        v1 = _Branch()
        v1.putChild(b"state", Document(stamp, _state(documents, push)))
        v1.putChild(b"feed", Document(stamp, _feed(served)))
        for kind in ("groups", "paths", "extensions"):
            v1.putChild(kind.encode("ascii"), Document(stamp, _listing(documents, kind)))
        v1.putChild(b"agents", Agents(stamp, documents))
        v1.putChild(b"events", Events(push))
        if served.messages is not None:
            v1.putChild(b"message", MessageResource(served.messages))
            self._methods[b"/api/v1/message"] = WRITABLE[b"/api/v1/message"]
        if served.reports is not None:
            v1.putChild(b"reports", served.reports)
        api = _Branch()
        api.putChild(b"v1", v1)
        self.putChild(b"api", api)
        if served.metrics is not None:
            self.putChild(b"metrics", served.metrics.resource())

    def getChildWithDefault(self, path: bytes, request: Request) -> IResource:
        method = request.method
        if self._cors is not None:
            self._cors.apply(request)
            if method == b"OPTIONS":
                return Preflight()
        # Every path takes GET and HEAD; only other methods are looked up.
        if method not in READ_ONLY:
            methods = self._methods.get(request.path.rstrip(b"/"), READ_ONLY)
            if method not in methods:
                request.setHeader(b"allow", b", ".join(methods))
                named = ", ".join(m.decode("ascii") for m in methods[:-1])
                detail = f"only {named} and {methods[-1].decode('ascii')} are served here"
                return _refusal(path, http.NOT_ALLOWED, "method_not_allowed", detail)
        if self._token is not None and path not in self._open and not self._authorised(request):
            request.setHeader(b"www-authenticate", b'Bearer realm="mitelacd"')
            return _refusal(
                path, http.UNAUTHORIZED, "unauthorized", "a valid access token is required"
            )
        child: IResource = super().getChildWithDefault(path, request)
        return child

    def _authorised(self, request: Request) -> bool:
        if self._token is None:
            return True
        given = b""
        header = request.getHeader(b"authorization") or b""
        scheme, _, credentials = header.partition(b" ")
        if scheme.lower() == b"bearer":
            given = credentials.strip()
        elif request.args and b"token" in request.args:
            given = request.args[b"token"][0]
        return hmac.compare_digest(given, self._token)


def _refusal(path: bytes, code: int, error: str, detail: str) -> IResource:
    """A refused request: a page for the board (people read it), JSON everywhere else."""
    if path == b"":
        brief = http.RESPONSES[code].decode("ascii")
        return pages.errorPage(code, brief, detail[:1].upper() + detail[1:] + ".")
    return ApiError(code, error, detail)


class BoardSite(Site):
    """The HTTP site: JSON errors, no tracebacks to clients, no access log unless asked for.

    The access log never holds the token: see :mod:`mitelacd.web.accesslog`.
    """

    displayTracebacks = False
    noisy = False
    requestFactory = ApiRequest

    def __init__(
        self, root: Resource, access_log: bool, reactor: Any, metrics: FloorMetrics | None = None
    ) -> None:
        super().__init__(root, reactor=reactor, logFormatter=redacted_log_formatter)
        self.access_log = access_log
        self.metrics = metrics

    def getResourceFor(self, request: Request) -> IResource:
        # No answer is to be read as anything but the type it says it is.
        NOSNIFF.apply(request)
        resource: IResource = super().getResourceFor(request)
        return resource

    def log(self, request: http.Request) -> None:
        # Every answer ends here (http.Request.finish); cheaper than a Deferred each.
        self.answered(request)
        if self.access_log:
            super().log(request)

    def answered(self, request: http.Request) -> None:
        """Count ``request`` by endpoint and status: answered, or its client gone first."""
        if self.metrics is not None:
            self.metrics.requestAnswered(endpoint_of(request.path or b"/"), request.code)


def _state(documents: FloorDocuments, push: EventPush) -> Callable[[bytes], list[bytes]]:
    """``/api/v1/state``: the floor's state with what the web adds, as the push feed's snapshot."""
    return lambda stale: [push.web_members(), *documents.state(stale)]


def _listing(documents: FloorDocuments, kind: EntityKind) -> Callable[[bytes], list[bytes]]:
    return lambda stale: documents.listing(kind)


def _feed(served: Served) -> Callable[[bytes], list[bytes]]:
    """``/api/v1/feed``: the feed's health, and that of what the daemon writes and publishes."""
    parts = [
        (b'"file":', served.file_health),
        (b'"capture":', served.capture_health),
        (b'"history":', served.history_health),
        (b'"smdr":', served.smdr.health if served.smdr is not None else None),
        (b'"mqtt":', served.mqtt_health),
        # Whether each source is live is the reader's to say, at its time, as ``stale`` is.
        (b'"stale_sources":', served.floor.staleSources if served.floor.several else None),
    ]
    documents = served.documents
    present = [(key, health) for key, health in parts if health is not None]
    if not present:
        return documents.feed_document
    return lambda stale: documents.feed_document(
        stale, b",".join(key + compact(health()) for key, health in present)
    )


class WebService(MultiService):
    """The HTTP side: the site on the ``--http`` endpoint, and the push feed."""

    def __init__(self, description: str, served: Served, reactor: Any) -> None:
        super().__init__()
        self.description = description
        settings = served.settings
        messages = served.messages
        if messages is None:
            messages = MessageService(reactor, served.floor.now)
            messages.setServiceParent(self)
        board = served.board if served.board is not None else BoardPage.load()
        served = attrs.evolve(served, messages=messages, board=board)
        #: The message on every board.
        self.messages = messages
        #: The board page served, and its version.
        self.board = board
        self.push = EventPush(
            served.floor,
            served.documents,
            reactor,
            push_interval=settings.push_interval,
            heartbeat=settings.heartbeat,
            retry_ms=settings.retry_ms,
            max_clients=settings.max_push_clients,
            messages=messages,
            board_version=board.version,
        )
        metrics = served.metrics
        if metrics is None:
            metrics = FloorMetrics(served.floor, reactor)
            served = attrs.evolve(served, metrics=metrics)
        #: The daemon's metrics; they read the push feed made here.
        self.metrics = metrics
        metrics.watch_push(self.push)
        root = Root(served, self.push, reactor)
        self.site = BoardSite(root, settings.access_log, reactor, self.metrics)
        # Twisted owns the port: it listens before privileges are dropped
        # and a failure to listen stops the start.
        self.listening = strports.service(description, self.site, reactor=reactor)
        self.listening.setServiceParent(self)
        self.port: IListeningPort | None = None
        self._waiting_for_port: list[Deferred[IListeningPort]] = []

    def privilegedStartService(self) -> None:
        with self._plainly():
            super().privilegedStartService()

    def startService(self) -> None:
        with self._plainly():
            super().startService()
        self.push.start()
        self.metrics.start()
        waiting = self.listening._waitingForPort
        if waiting is not None:
            waiting.addCallback(self._listening)

    @contextmanager
    def _plainly(self) -> Iterator[None]:
        try:
            yield
        except CannotListenError as e:
            # A taken or forbidden port is the operator's to fix: say so plainly.
            raise SystemExit(
                f"mitelacd: cannot serve HTTP on {self.description!r}: {e.socketError}"
            ) from None

    def whenListening(self) -> Deferred[IListeningPort]:
        """Fires with the listening port once the site listens (at once if it does)."""
        waiter: Deferred[IListeningPort] = Deferred()
        if self.port is not None:
            waiter.callback(self.port)
        else:
            self._waiting_for_port.append(waiter)
        return waiter

    def _listening(self, port: IListeningPort) -> IListeningPort:
        self.port = port
        waiters, self._waiting_for_port = self._waiting_for_port, []
        for waiter in waiters:
            waiter.callback(port)
        address = port.getHost()
        host = getattr(address, "host", "?")
        if ":" in host:
            host = f"[{host}]"
        log.info(
            "wall board and API at {scheme}://{host}:{port}/",
            scheme="https" if is_tls(self.description) else "http",
            host=host,
            port=getattr(address, "port", "?"),
        )
        return port

    def stopService(self) -> Any:
        self.push.stop()
        self.metrics.stop()
        self.port = None
        return super().stopService()
