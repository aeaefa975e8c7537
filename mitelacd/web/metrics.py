"""``GET /metrics``: the daemon in the Prometheus text format, kept current from change sets.

:class:`FloorMetrics` is a floor listener: each change set updates the few
figures it touches (an agent's status, activity and board state counted
once; a group's or path's three figures; the feed's counters as the floor
keeps them), so a change costs what it changed and a scrape only reads
what is kept, never the floor. The data file's writer, the push feed and
the HTTP site are read (or count) as they go. Everything is in a registry
of its own, never the process-wide default one, so several daemons (or
tests) in one process do not clash.

docs/metrics.md lists every family, its labels and what it means.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping, Sequence, Sized
from importlib import metadata
from typing import Any, Literal, Protocol

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from twisted.internet.interfaces import IReactorTime
from twisted.web import pages
from twisted.web.resource import Resource
from twisted.web.server import Request
from zope.interface import implementer

from mitelacd.floor.changes import ChangeSet, IFloorListener, Update
from mitelacd.floor.legacy import LEGACY_STATUSES
from mitelacd.floor.names import AGENT_STATES
from mitelacd.floor.records import EVENT_NAMES
from mitelacd.floor.state import ACTIVITIES, FloorState, QueueKind

#: The ``endpoint`` label of ``mitelacd_http_requests_total``: the paths the
#: site serves, an agent's own path as a pattern, and ``other`` for the rest
#: (so that a scanner cannot make a series per URL it tries).
Endpoint = Literal[
    "/",
    "/mitel_data.json",
    "/healthz",
    "/metrics",
    "/api/v1/state",
    "/api/v1/feed",
    "/api/v1/agents",
    "/api/v1/agents/{id}",
    "/api/v1/groups",
    "/api/v1/paths",
    "/api/v1/extensions",
    "/api/v1/events",
    "/api/v1/message",
    "/api/v1/reports",
    "/api/v1/reports/today/agents",
    "/api/v1/reports/today/paths",
    "/api/v1/reports/today/groups",
    "other",
]
_PATHS: dict[bytes, Endpoint] = {
    b"/": "/",
    b"/mitel_data.json": "/mitel_data.json",
    b"/healthz": "/healthz",
    b"/metrics": "/metrics",
    b"/api/v1/state": "/api/v1/state",
    b"/api/v1/feed": "/api/v1/feed",
    b"/api/v1/agents": "/api/v1/agents",
    b"/api/v1/groups": "/api/v1/groups",
    b"/api/v1/paths": "/api/v1/paths",
    b"/api/v1/extensions": "/api/v1/extensions",
    b"/api/v1/events": "/api/v1/events",
    b"/api/v1/message": "/api/v1/message",
    b"/api/v1/reports": "/api/v1/reports",
    b"/api/v1/reports/today/agents": "/api/v1/reports/today/agents",
    b"/api/v1/reports/today/paths": "/api/v1/reports/today/paths",
    b"/api/v1/reports/today/groups": "/api/v1/reports/today/groups",
}
_ONE_AGENT = b"/api/v1/agents/"

#: Feed counters the floor keeps (keys of its feed view) and the counter each becomes.
_FEED_COUNTERS: tuple[tuple[str, str, str], ...] = (
    (
        "unparsable_records",
        "mitelacd_unreadable_records",
        "Records from the PBX that could not be read.",
    ),
    ("noise", "mitelacd_noise", "Runs of bytes outside any record (overlong lines included)."),
    (
        "records_cut",
        "mitelacd_records_cut",
        "Records the end of a connection cut short: never applied.",
    ),
    (
        "sequence_gaps",
        "mitelacd_sequence_gaps",
        "Forward jumps of 2 to 50 in the record numbers: records lost upstream.",
    ),
    ("records_missed", "mitelacd_records_missed", "Records the sequence gaps skipped."),
    (
        "sequence_duplicates",
        "mitelacd_sequence_duplicates",
        "Record numbers received twice in a row.",
    ),
    (
        "sequence_resyncs",
        "mitelacd_sequence_resyncs",
        "Record numbers that went back or jumped more than 50: numbering resynchronised.",
    ),
    ("connections", "mitelacd_connections", "Connections made to the PBX."),
    (
        "connect_failures",
        "mitelacd_connect_failures",
        "Connection attempts to the PBX that failed.",
    ),
    (
        "agents_refused",
        "mitelacd_agents_refused",
        "Records for a new agent refused because the agent table was full.",
    ),
    (
        "extensions_forgotten",
        "mitelacd_extensions_forgotten",
        "Sets dropped from the full extensions table.",
    ),
    (
        "agents_forgotten",
        "mitelacd_agents_forgotten",
        "Agents out since before a day began, removed from the live tables at its start.",
    ),
    (
        "pbx_dates_refused",
        "mitelacd_pbx_dates_refused",
        "R records whose date was not a date or went back; the last good date stayed.",
    ),
    (
        "agents_let_go",
        "mitelacd_agents_let_go",
        "Carried agents set to out because the PBX never named them.",
    ),
)
#: Every function code a readable record may have, so each series exists from the start.
RECORD_CODES: tuple[str, ...] = tuple(sorted(EVENT_NAMES))
_QUEUE_KINDS: tuple[QueueKind, ...] = ("group", "path")


class FileStats(Protocol):
    """What metrics read of the data file's writer (``LegacyFileWriter`` has it)."""

    @property
    def writes(self) -> int: ...

    @property
    def write_failures(self) -> int: ...

    @property
    def failed_attempts(self) -> int: ...


class PushStats(Protocol):
    """What metrics read of the push feed (``EventPush`` has it)."""

    @property
    def subscribers(self) -> Sized: ...

    @property
    def deltas_sent(self) -> int: ...


def endpoint_of(path: bytes) -> Endpoint:
    """The ``endpoint`` label of a request path (no query), from a fixed set."""
    known = _PATHS.get(path)
    if known is None and len(path) > 1 and path.endswith(b"/"):
        path = path[:-1]
        known = _PATHS.get(path)
    if known is not None:
        return known
    agent = path[len(_ONE_AGENT) :] if path.startswith(_ONE_AGENT) else b""
    if agent and b"/" not in agent:
        return "/api/v1/agents/{id}"
    return "other"


def build_version() -> str:
    """mitelacd's version as installed, or ``unknown`` when it is run from a bare tree."""
    try:
        return metadata.version("mitelacd")
    except metadata.PackageNotFoundError:
        return "unknown"


def _unix_time(iso: str) -> float:
    """A time as the views give it (``...Z``, UTC) in Unix time."""
    if iso.endswith("Z"):
        iso = iso[:-1] + "+00:00"
    return datetime.datetime.fromisoformat(iso).timestamp()


#: What is kept of one agent: legacy status, activity and board state.
_AgentFigures = tuple[str, str, str]
#: What is kept of one group or path: waiting, agents, longest wait, name, confirmed.
_QueueFigures = tuple[int | None, int | None, int | None, str, bool]


@implementer(IFloorListener)
class FloorMetrics:
    """The daemon's metrics: a floor listener, and the collector of its own registry."""

    def __init__(
        self,
        floor: FloorState,
        clock: IReactorTime,
        file: FileStats | None = None,
        push: PushStats | None = None,
        version: str | None = None,
        process: bool = True,
    ) -> None:
        self.floor = floor
        self.clock = clock
        self.file = file
        self._push = push
        self.version = build_version() if version is None else version
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        if process:
            # The usual process_* and python_* families, read at each scrape from /proc.
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        self.listening = False
        #: Requests answered by endpoint and status code.
        self._requests: dict[tuple[Endpoint, int], int] = {}
        self._reset()

    def _reset(self) -> None:
        self._started_at = self.clock.seconds()
        self._feed: dict[str, Any] = {}
        self._agents: dict[str, _AgentFigures] = {}
        self._by_status: dict[str, int] = dict.fromkeys(LEGACY_STATUSES, 0)
        self._by_activity: dict[str, int] = dict.fromkeys(ACTIVITIES, 0)
        self._by_state: dict[str, int] = dict.fromkeys(AGENT_STATES, 0)
        self._queues: dict[QueueKind, dict[str, _QueueFigures]] = {k: {} for k in _QUEUE_KINDS}
        self._last_record: tuple[str | None, float | None] = (None, None)

    @property
    def push(self) -> PushStats | None:
        """The push feed whose clients and deltas are counted, once told of it."""
        return self._push

    def watch_push(self, push: PushStats) -> None:
        """Count ``push``'s clients and deltas: the web service makes it after these metrics."""
        self._push = push

    # Listening -------------------------------------------------------------

    def start(self) -> None:
        """Take the whole floor as it is now, then follow its changes."""
        if self.listening:
            return
        self._reset()
        self.floorChanged(self.floor.everything())
        self.floor.addListener(self)
        self.listening = True

    def stop(self) -> None:
        if self.listening:
            self.floor.removeListener(self)
            self.listening = False

    def floorChanged(self, changes: ChangeSet) -> None:
        if changes.feed:
            self._feed.update(changes.feed)
        if changes.agents:
            self._agents_changed(changes.agents)
        if changes.groups:
            self._queues_changed(self._queues["group"], changes.groups)
        if changes.paths:
            self._queues_changed(self._queues["path"], changes.paths)

    def _agents_changed(self, updates: Mapping[str, Update]) -> None:
        kept, agents = self._agents, self.floor.agents
        by_status, by_activity, by_state = self._by_status, self._by_activity, self._by_state
        for key, entity in updates.items():
            old = kept.get(key)
            if entity is None:
                if old is None:
                    continue
                del kept[key]
                new = None
            else:
                # Told at the change: the agent is as the entity has it, and reading
                # it spares rendering a view that nobody else may read.
                agent = agents.get(key)
                if agent is not None:
                    new = (entity.legacy, agent.activity, agent.state)
                else:
                    view = entity.view
                    new = (entity.legacy, view["activity"], view["state"])
                if new == old:
                    continue
                kept[key] = new
                by_status[new[0]] = by_status.get(new[0], 0) + 1
                by_activity[new[1]] = by_activity.get(new[1], 0) + 1
                by_state[new[2]] = by_state.get(new[2], 0) + 1
            if old is not None:
                by_status[old[0]] -= 1
                by_activity[old[1]] -= 1
                by_state[old[2]] -= 1

    @staticmethod
    def _queues_changed(kept: dict[str, _QueueFigures], updates: Mapping[str, Update]) -> None:
        for key, entity in updates.items():
            if entity is None:
                kept.pop(key, None)
                continue
            view = entity.view
            kept[key] = (
                view["waiting"],
                view["agents_logged_in"],
                view["longest_wait_seconds"],
                view["name"] or "",
                bool(view["confirmed"]),
            )

    # HTTP ------------------------------------------------------------------

    def requestAnswered(self, endpoint: Endpoint, status: int) -> None:
        key = (endpoint, status)
        requests = self._requests
        requests[key] = requests.get(key, 0) + 1

    def resource(self) -> Resource:
        """``/metrics``, for the site's tree."""
        return MetricsPage(self.registry)

    # Scrapes ---------------------------------------------------------------

    def lastRecordAge(self) -> float:
        """Seconds since the last valid record; since the start while none has come."""
        iso = self._feed.get("last_record_at")
        parsed_for, at = self._last_record
        if iso != parsed_for:
            at = None if iso is None else _unix_time(iso)
            self._last_record = (iso, at)
        return max(0.0, self.clock.seconds() - (self._started_at if at is None else at))

    def collect(self) -> Iterator[Metric]:
        """Every family, from what the change sets left (the registry calls this per scrape)."""
        feed = self._feed
        yield _gauge(
            "mitelacd_build_info", "mitelacd's version.", ["version"], [((self.version,), 1)]
        )
        yield from self._feed_families(feed)
        yield _by(
            "mitelacd_agents",
            "Agents by legacy status (mitel_data.json).",
            "status",
            self._by_status,
        )
        yield _by(
            "mitelacd_agents_by_activity",
            "Agents by what they are doing on their set.",
            "activity",
            self._by_activity,
        )
        yield _by(
            "mitelacd_agents_by_state",
            "Agents by the wall board's state.",
            "state",
            self._by_state,
        )
        yield from self._queue_families()
        yield from self._service_families()

    def _feed_families(self, feed: Mapping[str, Any]) -> Iterator[Metric]:
        """The link's figures; on a floor of several sources, one sample per source."""
        sources: Mapping[str, Mapping[str, Any]] | None = feed.get("sources")
        labels: list[str] = []
        rows: list[tuple[tuple[str, ...], Mapping[str, Any], bool, float]]
        if sources:
            labels = ["source"]
            stale = set(self.floor.staleSources())
            now = self.clock.seconds()
            rows = []
            for name, view in sources.items():
                heard = view.get("last_record_at")
                since = self._started_at if heard is None else _unix_time(heard)
                rows.append(((name,), view, name in stale, max(0.0, now - since)))
        else:
            rows = [((), feed, self.floor.isStale(), self.lastRecordAge())]

        def gauge(name: str, text: str, values: list[float]) -> GaugeMetricFamily:
            family = GaugeMetricFamily(name, text, labels=labels)
            for (key, *_), value in zip(rows, values, strict=True):
                family.add_metric(list(key), value)
            return family

        def counter(name: str, text: str, values: list[float]) -> CounterMetricFamily:
            family = CounterMetricFamily(name, text, labels=labels)
            for (key, *_), value in zip(rows, values, strict=True):
                family.add_metric(list(key), value)
            return family

        yield gauge(
            "mitelacd_feed_connected",
            "1 while the PBX link is up, else 0.",
            [1 if view.get("connected") else 0 for _, view, _, _ in rows],
        )
        yield gauge(
            "mitelacd_feed_stale",
            "1 while the feed is stale (no link, or no record for longer than --stale-after).",
            [1 if is_stale else 0 for _, _, is_stale, _ in rows],
        )
        yield _gauge(
            "mitelacd_feed_stale_after_seconds",
            "Silence after which the feed counts as stale (--stale-after).",
            value=float(feed.get("stale_after_seconds") or 0),
        )
        yield gauge(
            "mitelacd_feed_last_record_age_seconds",
            "Seconds since the last valid record (since the start while none has come).",
            [age for _, _, _, age in rows],
        )
        records = CounterMetricFamily(
            "mitelacd_records",
            "Valid records from the PBX, by function code.",
            labels=[*labels, "code"],
        )
        for key, view, _, _ in rows:
            by_code: Mapping[str, int] = view.get("records_by_code") or {}
            for code in RECORD_CODES:
                records.add_metric([*key, code], by_code.get(code, 0))
        yield records
        for field, name, text in _FEED_COUNTERS:
            yield counter(name, text, [view.get(field) or 0 for _, view, _, _ in rows])
        yield counter(
            "mitelacd_reconnects",
            "Connection attempts to the PBX after the first one, whether they succeeded or failed.",
            [
                max(0, (view.get("connections") or 0) + (view.get("connect_failures") or 0) - 1)
                for _, view, _, _ in rows
            ],
        )

    def _queue_families(self) -> Iterator[Metric]:
        labels = ["kind", "number"]
        waiting = GaugeMetricFamily(
            "mitelacd_queue_waiting", "Calls waiting in a group or path.", labels=labels
        )
        agents = GaugeMetricFamily(
            "mitelacd_queue_agents", "Agents logged in to a group or path.", labels=labels
        )
        longest = GaugeMetricFamily(
            "mitelacd_queue_longest_wait_seconds",
            "How long the longest waiting call of a group or path has waited.",
            labels=labels,
        )
        confirmed = GaugeMetricFamily(
            "mitelacd_queue_confirmed",
            "1 when the figures came from the PBX on this connection; 0 when carried"
            " over from the file or from before the link was lost.",
            labels=labels,
        )
        info = GaugeMetricFamily(
            "mitelacd_queue_info",
            "Always 1: the name of a group or path, to join on kind and number.",
            labels=[*labels, "name"],
        )
        for kind in _QUEUE_KINDS:
            for number, (w, a, lw, name, sure) in self._queues[kind].items():
                series = [kind, number]
                # A figure the PBX sent as something other than digits has no sample.
                if w is not None:
                    waiting.add_metric(series, w)
                if a is not None:
                    agents.add_metric(series, a)
                if lw is not None:
                    longest.add_metric(series, lw)
                confirmed.add_metric(series, 1 if sure else 0)
                info.add_metric([kind, number, name], 1)
        yield from (waiting, agents, longest, confirmed, info)

    def _service_families(self) -> Iterator[Metric]:
        file = self.file
        if file is not None:
            yield CounterMetricFamily(
                "mitelacd_file_writes", "Successful writes of the data file.", value=file.writes
            )
            yield CounterMetricFamily(
                "mitelacd_file_write_failures",
                "Failed attempts to write the data file.",
                value=file.write_failures,
            )
            yield _gauge(
                "mitelacd_file_writing",
                "1 while the data file is being written, 0 while writes fail.",
                value=0 if file.failed_attempts else 1,
            )
        push = self._push
        if push is not None:
            yield _gauge(
                "mitelacd_push_clients",
                "Event stream (/api/v1/events) clients connected.",
                value=len(push.subscribers),
            )
            yield CounterMetricFamily(
                "mitelacd_push_deltas",
                "Deltas sent to event stream clients.",
                value=push.deltas_sent,
            )
        requests = CounterMetricFamily(
            "mitelacd_http_requests",
            "HTTP requests answered, by endpoint and status code.",
            labels=["endpoint", "status"],
        )
        counted = (
            (endpoint, str(status), count) for (endpoint, status), count in self._requests.items()
        )
        for endpoint, status, count in sorted(counted):
            requests.add_metric([endpoint, status], count)
        yield requests


def _gauge(
    name: str,
    text: str,
    labels: Sequence[str] | None = None,
    samples: Sequence[tuple[Sequence[str], float]] = (),
    value: float | None = None,
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, text, value=value, labels=labels)
    for label_values, sample in samples:
        family.add_metric(list(label_values), sample)
    return family


def _by(name: str, text: str, label: str, counts: Mapping[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, text, labels=[label])
    for value, count in counts.items():
        family.add_metric([value], count)
    return family


class MetricsPage(Resource):
    """``/metrics``: the registry in the text format a Prometheus asks for.

    Rendered in the reactor's thread (``prometheus_client.twisted`` would
    render in a thread pool, beside the reactor changing what it reads).
    """

    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self._registry = registry

    def render_GET(self, request: Request) -> bytes:
        if request.postpath not in ([], [b""]):
            result: bytes = pages.notFound().render(request)
            return result
        accept = request.getHeader(b"accept")
        encoder, content_type = choose_encoder(accept.decode("latin-1") if accept else "")
        request.setHeader(b"content-type", content_type.encode("ascii"))
        request.setHeader(b"cache-control", b"no-cache")
        return encoder(self._registry)
