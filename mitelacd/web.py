"""HTTP for display boards: the legacy JSON, a typed API, push, health and the wall board.

Every resource reads the floor; none of them changes it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from importlib import resources
from typing import Any

import attrs
from twisted.application.service import Service
from twisted.internet import endpoints
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort, IPushProducer, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import http, pages
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request, Site
from zope.interface import implementer

from mitelacd.pacing import Coalescer
from mitelacd.state import FloorState, IFloorListener, iso_utc

log = Logger()

DEFAULT_HTTP = "tcp:8080:interface=127.0.0.1"
JSON_TYPE = b"application/json"


@attrs.frozen
class WebSettings:
    """What the command line says about HTTP."""

    #: ``Access-Control-Allow-Origin`` value; None sends no CORS headers.
    cors_origin: str | None = "*"
    #: Bearer token every endpoint but /healthz asks for; None: open.
    token: str | None = None
    access_log: bool = False
    #: Shortest time between two pushed state events, in seconds.
    push_interval: float = 0.5
    heartbeat: float = 15.0
    #: Reconnection delay suggested to EventSource clients, in milliseconds.
    retry_ms: int = 2000
    #: Event stream clients served at once; more get 503.
    max_push_clients: int = 1000


def check_endpoint(description: str) -> str:
    """Raise ValueError unless ``description`` is a server endpoint string."""
    endpoints.serverFromString(_NoReactor(), description)
    return description


class _NoReactor:
    """Enough of a reactor for parsing an endpoint string without listening."""


def render_json(request: Request, doc: Any, code: int = http.OK) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"content-type", JSON_TYPE)
    request.setHeader(b"cache-control", b"no-cache")
    return json.dumps(doc, separators=(",", ":")).encode("ascii")


def _error(request: Request, code: int, error: str, detail: str) -> bytes:
    return render_json(request, {"error": error, "detail": detail}, code)


class Legacy(Resource):
    """``/mitel_data.json``: the file's document, rendered once per change, with an ETag."""

    isLeaf = True

    def __init__(self, floor: FloorState) -> None:
        super().__init__()
        self._floor = floor
        self._tagged: tuple[int, bytes, bytes] = (-1, b"", b"")

    def _current(self) -> tuple[bytes, bytes]:
        version, body, etag = self._tagged
        if version != self._floor.version:
            fresh = self._floor.legacyJSON()
            if fresh != body:
                body = fresh
                etag = b'"' + hashlib.sha256(body).hexdigest()[:32].encode("ascii") + b'"'
            self._tagged = (self._floor.version, body, etag)
        return body, etag

    def render_GET(self, request: Request) -> bytes:
        body, etag = self._current()
        request.setHeader(b"content-type", JSON_TYPE)
        request.setHeader(b"cache-control", b"no-cache")
        if request.setETag(etag) == http.CACHED:
            return b""
        return body


class Document(Resource):
    """A JSON document of the typed API.

    The body is built once per change; only ``generated_at`` and ``stale``
    are put in front of it per request.
    """

    isLeaf = True

    def __init__(self, floor: FloorState, build: Callable[[], dict[str, Any]]) -> None:
        super().__init__()
        self._floor = floor
        self._build = build
        self._cached: tuple[int, bytes] = (-1, b"")

    def render_GET(self, request: Request) -> bytes:
        version, body = self._cached
        if version != self._floor.version:
            doc = self._build()
            doc.pop("generated_at", None)
            doc.pop("stale", None)
            body = json.dumps(doc, separators=(",", ":")).encode("ascii")
            self._cached = (self._floor.version, body)
        head = render_json(request, envelope(self._floor, {}))
        return head[:-1] + (b"," + body[1:] if body != b"{}" else b"}")


def envelope(floor: FloorState, doc: dict[str, Any]) -> dict[str, Any]:
    """Every API document says when it was made and whether the feed is stale."""
    return {"generated_at": iso_utc(floor.clock.seconds()), "stale": floor.isStale(), **doc}


class Agents(Resource):
    """``/api/v1/agents`` and ``/api/v1/agents/<id>``."""

    def __init__(self, floor: FloorState) -> None:
        super().__init__()
        self._floor = floor
        self._list = Document(floor, lambda: {"agents": floor.agentViews()})

    def render_GET(self, request: Request) -> bytes:
        return self._list.render_GET(request)

    def getChild(self, path: bytes, request: Request) -> IResource:
        agent_id = path.decode("ascii", "replace")
        return OneAgent(self._floor, agent_id)


class OneAgent(Resource):
    isLeaf = True

    def __init__(self, floor: FloorState, agent_id: str) -> None:
        super().__init__()
        self._floor = floor
        self._agent_id = agent_id

    def render_GET(self, request: Request) -> bytes:
        if request.postpath:
            return _error(request, http.NOT_FOUND, "not_found", "no such resource")
        agent = self._floor.agents.get(self._agent_id)
        if agent is None:
            detail = f"agent {self._agent_id!r} has not been seen"
            return _error(request, http.NOT_FOUND, "not_found", detail)
        return render_json(request, envelope(self._floor, {"agent": agent.view()}))


class Health(Resource):
    """``/healthz``: 200 while the feed is connected and fresh, 503 saying why not."""

    isLeaf = True

    def __init__(self, floor: FloorState) -> None:
        super().__init__()
        self._floor = floor

    def render_GET(self, request: Request) -> bytes:
        floor, feed = self._floor, self._floor.feed
        doc: dict[str, Any] = {"pbx_host": feed.host, "pbx_port": feed.port}
        if feed.connections == 0:
            doc.update(
                status="unavailable", reason="never connected", detail=feed.disconnect_reason
            )
        elif not feed.connected:
            doc.update(
                status="unavailable",
                reason="disconnected",
                since=iso_utc(feed.disconnected_since),
                detail=feed.disconnect_reason,
            )
        elif floor.isStale():
            doc.update(
                status="unavailable",
                reason="stale",
                since=iso_utc(feed.last_record_at or feed.connected_since),
                detail=f"no record for more than {floor.stale_after:g} s",
            )
        else:
            doc.update(
                status="ok",
                connected_since=iso_utc(feed.connected_since),
                last_record_at=iso_utc(feed.last_record_at),
            )
        code = http.OK if doc["status"] == "ok" else http.SERVICE_UNAVAILABLE
        return render_json(request, doc, code)


def board_page() -> bytes:
    """The wall board as one document: its CSS and JS are put inside the HTML."""
    folder = resources.files("mitelacd") / "board"
    html = (folder / "index.html").read_text("utf-8")
    html = html.replace("/*BOARD_CSS*/", (folder / "board.css").read_text("utf-8"))
    html = html.replace("/*BOARD_JS*/", (folder / "board.js").read_text("utf-8"))
    return html.encode("utf-8")


class Board(Resource):
    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self._page = board_page()

    def render_GET(self, request: Request) -> bytes:
        if request.postpath not in ([], [b""]):
            return pages.notFound().render(request)
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"cache-control", b"no-cache")
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(
            b"content-security-policy",
            b"default-src 'none'; connect-src 'self'; img-src 'self' data:;"
            b" style-src 'unsafe-inline'; script-src 'unsafe-inline'",
        )
        return self._page


@implementer(IPushProducer)
class _Subscriber:
    """One EventSource client. Only the newest state matters, so a client that
    does not read is sent nothing more until it does: memory stays bounded."""

    def __init__(self, request: Request, push: EventPush) -> None:
        self.request = request
        self._push = push
        self.paused = False
        self.paused_at = 0.0
        self.behind = False
        self.gone = False
        request.registerProducer(self, True)

    def write(self, data: bytes) -> None:
        if not self.gone:
            self.request.write(data)

    def offer(self, event: bytes) -> None:
        if self.paused:
            self.behind = True
        else:
            self.write(event)

    def pauseProducing(self) -> None:
        if not self.paused:
            self.paused = True
            self.paused_at = self._push.clock.seconds()

    def resumeProducing(self) -> None:
        self.paused = False
        if self.behind:
            self.behind = False
            self.write(self._push.stateEvent())

    def stopProducing(self) -> None:
        self.paused = True
        self._push.drop(self)


@implementer(IFloorListener)
class EventPush:
    """``/api/v1/events``: Server-Sent Events of the whole state, paced."""

    def __init__(self, floor: FloorState, clock: IReactorTime, settings: WebSettings) -> None:
        self._floor = floor
        self._settings = settings
        self.clock = clock
        self.subscribers: set[_Subscriber] = set()
        self._pace = Coalescer(clock, settings.push_interval, self._broadcast)
        self._beat = LoopingCall(self._heartbeat)
        self._beat.clock = clock
        self._event: tuple[int, bytes] = (-1, b"")

    def start(self) -> None:
        self._floor.addListener(self)
        self._beat.start(self._settings.heartbeat, now=False)

    def stop(self) -> None:
        self._floor.removeListener(self)
        self._pace.cancel()
        if self._beat.running:
            self._beat.stop()
        for subscriber in list(self.subscribers):
            self.drop(subscriber)
            subscriber.request.unregisterProducer()
            subscriber.request.finish()
            subscriber.gone = True

    def stateEvent(self) -> bytes:
        """The current state as one SSE event, built once per change for everyone."""
        version, event = self._event
        if version != self._floor.version:
            event = self._render()
            self._event = (self._floor.version, event)
        return event

    def _render(self) -> bytes:
        data = json.dumps(self._floor.snapshot(), separators=(",", ":"))
        return b"event: state\nid: %d\ndata: %s\n\n" % (self._floor.version, data.encode())

    def subscribe(self, request: Request) -> None:
        subscriber = _Subscriber(request, self)
        self.subscribers.add(subscriber)
        request.notifyFinish().addBoth(self._finished, subscriber)
        # Built afresh, so that its generated_at is now even on a quiet floor.
        subscriber.write(b"retry: %d\n\n" % self._settings.retry_ms + self._render())

    def _finished(self, result: Failure | None, subscriber: _Subscriber) -> None:
        subscriber.gone = True
        self.drop(subscriber)

    def drop(self, subscriber: _Subscriber) -> None:
        self.subscribers.discard(subscriber)

    def floorChanged(self, floor: FloorState) -> None:
        if self.subscribers:
            self._pace.poke()

    def _broadcast(self) -> None:
        event = self.stateEvent()
        for subscriber in list(self.subscribers):
            subscriber.offer(event)

    def full(self) -> bool:
        return len(self.subscribers) >= self._settings.max_push_clients

    def _heartbeat(self) -> None:
        limit = self.clock.seconds() - 2 * self._settings.heartbeat
        for subscriber in list(self.subscribers):
            if not subscriber.paused:
                subscriber.write(b": heartbeat\n\n")
            elif subscriber.paused_at < limit:
                # A frozen tab or a dead link: its socket buffers are the
                # only thing it still holds, and they are given back now.
                log.info("dropping an event stream client that stopped reading")
                self.drop(subscriber)
                subscriber.gone = True
                subscriber.request.loseConnection()


class Events(Resource):
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
            return _error(
                request, http.SERVICE_UNAVAILABLE, "busy", "too many event stream clients"
            )
        self._push.subscribe(request)
        return NOT_DONE_YET


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
        return pages.notFound()

    def render(self, request: Request) -> bytes:
        return pages.notFound().render(request)


class Root(_Branch):
    """Checks that apply to every request, then the URL tree."""

    def __init__(self, floor: FloorState, push: EventPush, settings: WebSettings) -> None:
        super().__init__()
        self._settings = settings
        self._token = settings.token.encode("utf-8") if settings.token else None
        self.putChild(b"", Board())
        self.putChild(b"mitel_data.json", Legacy(floor))
        self.putChild(b"healthz", Health(floor))
        v1 = _Branch()
        documents: dict[bytes, Callable[[], dict[str, Any]]] = {
            b"state": floor.snapshot,
            b"groups": lambda: {"groups": floor.queueViews(floor.groups)},
            b"paths": lambda: {"paths": floor.queueViews(floor.paths)},
            b"extensions": lambda: {"extensions": floor.extensionViews()},
            b"feed": lambda: {"feed": floor.feedView()},
        }
        for name, build in documents.items():
            v1.putChild(name, Document(floor, build))
        v1.putChild(b"agents", Agents(floor))
        v1.putChild(b"events", Events(push))
        api = _Branch()
        api.putChild(b"v1", v1)
        self.putChild(b"api", api)

    def getChildWithDefault(self, path: bytes, request: Request) -> IResource:
        origin = self._settings.cors_origin
        if origin:
            request.setHeader(b"access-control-allow-origin", origin.encode("ascii"))
            request.setHeader(b"access-control-expose-headers", b"ETag")
            if origin != "*":
                request.setHeader(b"vary", b"Origin")
            if request.method == b"OPTIONS":
                return Preflight()
        if request.method not in (b"GET", b"HEAD"):
            request.setHeader(b"allow", b"GET, HEAD")
            return pages.errorPage(
                http.NOT_ALLOWED, "Method Not Allowed", "Only GET and HEAD are served here."
            )
        if path != b"healthz" and not self._authorised(request):
            request.setHeader(b"www-authenticate", b'Bearer realm="mitelacd"')
            return pages.errorPage(
                http.UNAUTHORIZED, "Unauthorized", "A valid access token is required."
            )
        return super().getChildWithDefault(path, request)

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


class BoardSite(Site):
    """The HTTP site: no tracebacks to clients, no access log unless asked for."""

    displayTracebacks = False
    noisy = False

    def __init__(self, root: Resource, access_log: bool, reactor: Any) -> None:
        super().__init__(root, reactor=reactor)
        self.access_log = access_log

    def log(self, request: http.Request) -> None:
        if self.access_log:
            super().log(request)


class WebService(Service):
    """Listen on the ``--http`` endpoint and serve the floor."""

    def __init__(
        self, description: str, floor: FloorState, settings: WebSettings, reactor: Any
    ) -> None:
        self.description = description
        self.push = EventPush(floor, reactor, settings)
        self.site = BoardSite(Root(floor, self.push, settings), settings.access_log, reactor)
        self._reactor = reactor
        self.port: IListeningPort | None = None

    def privilegedStartService(self) -> None:
        # Listen before privileges are dropped; a taken port stops the start.
        endpoint = endpoints.serverFromString(self._reactor, self.description)
        outcome: list[Any] = []
        endpoint.listen(self.site).addBoth(outcome.append)
        if outcome and isinstance(outcome[0], Failure):
            failure = outcome[0]
            if isinstance(failure.value, CannotListenError):
                # A taken or forbidden port is the operator's to fix: say so plainly.
                why = failure.value.socketError
                raise SystemExit(f"mitelacd: cannot serve HTTP on {self.description!r}: {why}")
            failure.raiseException()
        self.port = outcome[0] if outcome else None
        super().privilegedStartService()

    def startService(self) -> None:
        if self.port is None:
            self.privilegedStartService()
        super().startService()
        self.push.start()
        address = self.port.getHost() if self.port is not None else None
        host = getattr(address, "host", "?")
        if ":" in host:
            host = f"[{host}]"
        log.info(
            "wall board and API at http://{host}:{port}/",
            host=host,
            port=getattr(address, "port", "?"),
        )

    def stopService(self) -> Any:
        super().stopService()
        self.push.stop()
        port, self.port = self.port, None
        return port.stopListening() if port is not None else None
