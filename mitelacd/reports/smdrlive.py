"""SMDR in the daemon: the link's health, the calls of each path, and their figures (``--smdr``).

:class:`SmdrService` is what :class:`mitelacd.feed.smdr.SMDRReceiver` tells of
the SMDR link. Every line is read (with ``--smdr-layout``, or by what it
shows), kept raw in the history with the layout it was read with, and added
to a :class:`~mitelacd.reports.smdrcalls.SmdrDay`. It answers:

* :meth:`SmdrService.intervals`: every interval it holds, today's closed
  ones and all that are still open, for ``/api/v1/reports`` and
  ``/api/v1/reports/today/paths`` (state-model §8);
* :meth:`SmdrService.health`: the link, for ``/api/v1/feed`` and ``/healthz``;
* counters for ``/metrics`` that only go up: records by layout and outcome,
  and per path the calls offered, abandoned and answered within target,
  each counted when a call first comes to it.

Intervals go to the history when they close (2 h after their end) and,
while open, again each minute they were revised; the history replaces the
stored row, so a revision is written, not added. At start, the lines an
earlier run kept since the report day began (and for the last 2 h 15 min,
and since the start of any interval of the last week it left open) are
read again, so that a restart neither loses nor counts twice, and no
interval stays open in the history.

Silence is normal on SMDR: after ``idle_after`` seconds without a line the
feed is **idle**, which is shown, never counted as a fault. A link down for
longer than ``stale_after`` is a fault (``/healthz`` 503).

A site with several controllers has an SMDR link for each (``--source
NAME=smdr://HOST``; ``--smdr``'s is named ""): :meth:`SmdrService.link`
gives the sink of each, whose connections, lines and losses are counted
for it alone (:attr:`SmdrService.links`). The lines of all go into the
one day of calls and the history: the call identifiers hold each
controller's system identifier, so calls of different controllers never
mix. Lines another mitelacd relays through a broker come in with
:meth:`SmdrService.smdrLineFrom`; they count for their source's link, which
they never make down. The service is itself the sink of the link "".
"""

from __future__ import annotations

import datetime
import math
from collections import Counter
from typing import Any

import attrs
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure

from mitelacd.floor.render import iso_utc
from mitelacd.floor.smdr import (
    UNREADABLE,
    SmdrLayout,
    SmdrLine,
    SmdrRecord,
    SmdrResult,
    classify,
    parse_smdr,
)
from mitelacd.floor.state import FloorState
from mitelacd.logs import Logger, Throttle
from mitelacd.reports.rows import INTERVAL_SECONDS
from mitelacd.reports.smdrcalls import OPEN_SECONDS, PathInterval, SmdrDay
from mitelacd.reports.smdrsettings import smdr_settings
from mitelacd.reports.store import HistoryStore
from mitelacd.reports.writer import HistoryService

log = Logger()

#: Seconds without a line after which the SMDR feed is shown as idle.
DEFAULT_IDLE_AFTER = 900.0
#: How often revised open intervals are handed to the history.
REVISE_EVERY = 60.0
#: How long after an interval's end the service closes it (the clock's jitter).
TICK_LATE = 0.05
#: How many days back an interval left open by an earlier run is closed at start.
REOPEN_DAYS = 7
#: Reading the lines of an earlier run waits this long between tries.
SEED_RETRY = 2.0
SEED_TRIES = 150


@attrs.define(eq=False)
class SmdrLinkState:
    """One SMDR link: a controller's SMDR stream, read here or relayed (``--mqtt``).

    Its name is its source's ("" for the link of ``--smdr``).
    """

    name: str
    #: Made with :meth:`SmdrService.link`: read here, so down while not connected.
    direct: bool = False
    host: str | None = None
    port: int | None = None
    connected: bool = False
    connections: int = 0
    connect_failures: int = 0
    connected_since: float | None = None
    disconnected_since: float | None = None
    disconnect_reason: str | None = None
    last_line_at: float | None = None
    # What came: lines (relayed ones too), noise, the lines read by layout,
    # and the lines no layout fits with the noise.
    lines: int = 0
    noise: int = 0
    layouts: Counter[str] = attrs.Factory(Counter)
    unreadable: int = 0
    #: Lines relayed by another mitelacd, and the MQTT source the last came through.
    relayed: int = 0
    via: str | None = None
    # Monotonic (the reactor's clock).
    down_since: float | None = None
    last_line_seen: float | None = None
    connected_seen: float | None = None


@attrs.frozen
class SmdrLink:
    """What one SMDR link tells the :class:`SmdrService` (:class:`mitelacd.feed.smdr.SmdrSink`)."""

    service: SmdrService
    state: SmdrLinkState

    @property
    def name(self) -> str:
        return self.state.name

    def smdrConnected(self, host: str, port: int) -> None:
        self.service._connected(self.state, host, port)

    def smdrLine(self, line: bytes) -> None:
        self.service._line(self.state, line)

    def smdrNoise(self, data: bytes, reason: str) -> None:
        self.service._noise(self.state, data, reason)

    def smdrDisconnected(self, why: str) -> None:
        self.service._disconnected(self.state, why)

    def smdrConnectFailed(self, host: str, port: int, why: str) -> None:
        self.service._connect_failed(self.state, host, port, why)


class SmdrService(Service):
    """The SMDR feed's state: its links, their calls and their figures.

    ``unnamed``: ``--smdr``'s link (named "") is read, and made at once; with
    only named sources (``--source NAME=smdr://...`` or relayed ones) give
    False, so that no link "" is waited for (and shown down).
    """

    def __init__(
        self,
        floor: FloorState,
        clock: IReactorTime,
        day_starts: datetime.time = datetime.time(0, 0),
        tz: datetime.tzinfo | None = None,
        history: HistoryService | None = None,
        layout: SmdrLayout | None = None,
        idle_after: float = DEFAULT_IDLE_AFTER,
        stale_after: float = 35.0,
        unnamed: bool = True,
    ) -> None:
        self.floor = floor
        self.clock = clock
        self.history = history
        #: The layout every line is read with; None: each line's own (§3.8).
        self.layout = layout
        self.idle_after = idle_after
        self.stale_after = stale_after
        self._names = floor.names
        self.day = SmdrDay(day_starts, tz, smdr_settings(floor.names))
        #: Closed intervals of the report day, by (start, path).
        self._closed: dict[tuple[int, str], PathInterval] = {}
        #: The links, by source name ("" for ``--smdr``'s), in the order made.
        self.links: dict[str, SmdrLinkState] = {}
        self._sinks: dict[str, SmdrLink] = {}
        self._started_seen: float | None = None  # monotonic
        #: Records by (layout, outcome): outcome is the §6.3 one, or
        #: ``unreadable`` for a line that fits no layout.
        self.records: Counter[tuple[str, str]] = Counter()
        self.offered: Counter[str] = Counter()
        self.abandoned: Counter[str] = Counter()
        self.answered_within_target: Counter[str] = Counter()
        self._unreadable_log = Throttle(clock, burst=5, interval=60.0)
        # History.
        self._tick: IDelayedCall | None = None
        self._reviser: LoopingCall | None = None
        self._revised = False
        self._held: list[SmdrLine] | None = None
        self._seed_call: IDelayedCall | None = None
        self._seed_tries = 0
        #: Intervals that start before this are not written: the run saw them in part.
        self._whole_from = -math.inf
        self._started_at = 0.0
        #: Fires once the lines of an earlier run are in (at once without a history).
        self.seeded: Deferred[None] = Deferred()
        if unnamed:
            self.link("")

    # --- the service -------------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._started_at = self.floor.timeline.now()
        self._started_seen = self.clock.seconds()
        for state in self.links.values():
            if state.direct and not state.connected:
                state.down_since = self._started_seen
        self._schedule()
        reviser = self._reviser = LoopingCall(self._revise)
        reviser.clock = self.clock
        reviser.start(REVISE_EVERY, now=False)
        if self.history is None:
            self.seeded.callback(None)
            return
        self._held = []
        self._seed_tries = 0
        self._try_seed()

    def stopService(self) -> Any:
        super().stopService()
        for call in (self._tick, self._seed_call):
            if call is not None and call.active():
                call.cancel()
        self._tick = self._seed_call = None
        if self._reviser is not None and self._reviser.running:
            self._reviser.stop()
        if self._held is not None:
            # Stopped before the earlier lines came: what this run holds is only
            # part of its intervals, and would replace them whole in the history.
            # The lines are kept (as they came), and the next start counts them.
            self._held = None
            return
        # The open intervals as they stand: the next start revises them.
        self._to_history(self.day.figures(self.floor.timeline.now()))

    # --- the links ---------------------------------------------------------------------------

    def link(self, name: str) -> SmdrLink:
        """What the SMDR link of source ``name`` tells the service through ("": ``--smdr``'s).

        Made on first use, as a link read here: until it connects it is down
        (from the service's start, or from now once started).
        """
        state = self.links.get(name)
        if state is None:
            state = self.links[name] = SmdrLinkState(name)
            self._sinks[name] = SmdrLink(self, state)
        if not state.direct:
            state.direct = True
            if self._started_seen is not None and not state.connected:
                state.down_since = self.clock.seconds()
        return self._sinks[name]

    def smdrLineFrom(self, source: str, line: bytes, via: str | None = None) -> None:
        """A line of source ``source`` that another mitelacd read and relayed (``--mqtt``),
        through the MQTT source ``via``; read as if from that source's link.

        A source first heard of this way is added; a relayed line never makes
        its link down, nor up.
        """
        state = self.links.get(source)
        if state is None:
            state = self.links[source] = SmdrLinkState(source)
            self._sinks[source] = SmdrLink(self, state)
            log.info("SMDR lines from a new source, {source!r}", source=source)
        state.relayed += 1
        if via is not None:
            state.via = via
        self._line(state, line)

    def _primary(self) -> SmdrLinkState:
        """The link of ``--smdr`` if there is one, else the first made (a blank one if none)."""
        state = self.links.get("")
        if state is None:
            state = next(iter(self.links.values()), None)
        if state is None:
            state = SmdrLinkState("")
        return state

    # What ``--smdr``'s link tells (mitelacd.feed.smdr.SmdrSink), as before there were several.

    def smdrConnected(self, host: str, port: int) -> None:
        self.link("").smdrConnected(host, port)

    def smdrDisconnected(self, why: str) -> None:
        self.link("").smdrDisconnected(why)

    def smdrConnectFailed(self, host: str, port: int, why: str) -> None:
        self.link("").smdrConnectFailed(host, port, why)

    def smdrNoise(self, data: bytes, reason: str) -> None:
        self.link("").smdrNoise(data, reason)

    def smdrLine(self, line: bytes) -> None:
        self.link("").smdrLine(line)

    # The first link, as the service showed its one link before there were several.

    @property
    def host(self) -> str | None:
        return self._primary().host

    @property
    def port(self) -> int | None:
        return self._primary().port

    @property
    def connected(self) -> bool:
        return self._primary().connected

    @property
    def connections(self) -> int:
        return self._primary().connections

    @property
    def connect_failures(self) -> int:
        return self._primary().connect_failures

    @property
    def connected_since(self) -> float | None:
        return self._primary().connected_since

    @property
    def disconnected_since(self) -> float | None:
        return self._primary().disconnected_since

    @property
    def disconnect_reason(self) -> str | None:
        return self._primary().disconnect_reason

    @property
    def last_line_at(self) -> float | None:
        return self._primary().last_line_at

    @property
    def lines(self) -> int:
        return self._primary().lines

    @property
    def noise(self) -> int:
        return self._primary().noise

    # --- what a link tells -------------------------------------------------------------------

    def _connected(self, state: SmdrLinkState, host: str, port: int) -> None:
        state.connected = True
        state.host, state.port = host, port
        state.connections += 1
        state.connected_since = self.floor.timeline.now()
        state.disconnected_since = None
        state.down_since = None
        state.connected_seen = self.clock.seconds()

    def _disconnected(self, state: SmdrLinkState, why: str) -> None:
        if not state.connected:
            return
        state.connected = False
        state.disconnected_since = self.floor.timeline.now()
        state.down_since = self.clock.seconds()
        state.disconnect_reason = why

    def _connect_failed(self, state: SmdrLinkState, host: str, port: int, why: str) -> None:
        state.host, state.port = host, port
        state.connect_failures += 1
        state.disconnect_reason = why

    def _noise(self, state: SmdrLinkState, data: bytes, reason: str) -> None:
        state.noise += 1
        state.unreadable += 1
        self.records[UNREADABLE, UNREADABLE] += 1
        self._log_unreadable(data, reason)
        if self.history is not None:
            kept = SmdrLine(self.floor.timeline.now(), data.decode("latin-1"), UNREADABLE)
            self.history.add_smdr([kept], [])

    def _line(self, state: SmdrLinkState, line: bytes) -> None:
        now = self.floor.timeline.now()
        state.last_line_seen = self.clock.seconds()
        state.last_line_at = now
        state.lines += 1
        result = parse_smdr(line, self.layout)
        kept = SmdrLine.of(now, line, result)
        if isinstance(result, SmdrRecord):
            outcome: str = classify(result, self.day.settings.short_abandon_seconds)
        else:
            outcome = UNREADABLE
            self._log_unreadable(line, result.reason)
        self.records[kept.layout, outcome] += 1
        if kept.layout == UNREADABLE:
            state.unreadable += 1
        else:
            state.layouts[kept.layout] += 1
        if self.history is not None:
            self.history.add_smdr([kept], [])
        if self._held is not None:
            self._held.append(kept)
            return
        self._add(result, now)

    def _add(self, result: SmdrResult, received_at: float) -> None:
        self._refresh_settings()
        day = self.day
        day.add(result, received_at)
        change = day.changed
        if change is None:
            return
        self._revised = True
        path = change.path
        if change.new:
            self.offered[path] += 1
        if change.after == "abandoned" and change.before != "abandoned":
            self.abandoned[path] += 1
        if change.within_after and not change.within_before:
            self.answered_within_target[path] += 1

    def _log_unreadable(self, data: bytes, reason: str) -> None:
        allowed, held = self._unreadable_log.allow()
        if allowed:
            log.warn(
                "SMDR line not read ({reason}){held}: {line!r}",
                reason=reason,
                held=f"; {held} more not logged" if held else "",
                line=data[:120],
            )

    def _refresh_settings(self) -> None:
        names = self.floor.names
        if names is not self._names:
            self._names = names
            self.day.settings = smdr_settings(names)

    # --- figures -----------------------------------------------------------------------------

    def intervals(self, now: float) -> list[PathInterval]:
        """Every interval held: the report day's closed ones, and all still open."""
        self._refresh_settings()
        held = list(self._closed.values()) + self.day.figures(now)
        return sorted(held, key=lambda i: (i.start, i.path))

    def _schedule(self) -> None:
        now = self.floor.timeline.now()
        end = self.day.days.interval_start(now) + INTERVAL_SECONDS
        self._tick = self.clock.callLater(max(0.0, end - now) + TICK_LATE, self._wake)

    def _wake(self) -> None:
        self._tick = None
        self._close(self.floor.timeline.now())
        self._schedule()

    def _close(self, now: float) -> None:
        """Hand over the intervals that closed, keep the report day's, forget the rest."""
        if self._held is not None:
            return  # the earlier lines are not in yet: their calls would be cut
        self._refresh_settings()
        closed = self.day.pop_closed(now)
        today = self.day.days.day(now)
        for key in [key for key, interval in self._closed.items() if interval.day != today]:
            del self._closed[key]
        for interval in closed:
            if interval.day == today:
                self._closed[interval.start, interval.path] = interval
        self._to_history(closed)

    def _revise(self) -> None:
        if self._revised and self._held is None:
            self._revised = False
            self._to_history(self.day.figures(self.floor.timeline.now()))

    def _to_history(self, intervals: list[PathInterval]) -> None:
        # A write replaces the stored interval: one this run saw only in part
        # (the earlier run's lines could not be read) is left as stored.
        intervals = [i for i in intervals if i.start >= self._whole_from]
        if self.history is not None and intervals:
            self.history.add_smdr([], intervals)

    # --- the lines of an earlier run ---------------------------------------------------------

    def _seed_since(self) -> float:
        """From when lines are read again: the report day's start, or 2 h 15 min back."""
        now = self._started_at
        day_start = self.day.days.day_start(self.day.days.day(now))
        return min(day_start, now - OPEN_SECONDS - INTERVAL_SECONDS)

    def _try_seed(self) -> None:
        self._seed_call = None
        history = self.history
        assert history is not None
        since, until, source = self._seed_since(), self._started_at, history.source
        days = self.day.days
        first_day = (days.day(until) - datetime.timedelta(days=REOPEN_DAYS)).isoformat()
        last_day = days.day(until).isoformat()

        def read(store: HistoryStore) -> tuple[list[SmdrLine], float]:
            # An interval an earlier run left open (it stopped before the
            # interval closed, and did not start again in time to close it) is
            # counted again from its start, and so written closed.
            still_open = [
                row.interval_start
                for row in store.smdr_intervals(source, first_day, last_day)
                if row.open and row.interval_start < since
            ]
            start = min([since, *still_open])
            return store.smdr_lines(source, start), start

        self._seed_tries += 1
        reading = history.query(read)
        reading.addCallbacks(
            lambda found: self._seed(
                [line for line in found[0] if line.received_at < until], found[1]
            ),
            self._not_seeded,
        )

    def _not_seeded(self, failure: Failure) -> None:
        if not self.running:
            return
        if self._seed_tries < SEED_TRIES:
            self._seed_call = self.clock.callLater(SEED_RETRY, self._try_seed)
            return
        log.warn(
            "could not read the SMDR lines of an earlier run: {why}; the intervals from"
            " {start} on are counted from the lines that come now, and those before it"
            " are left in the history as they are",
            why=failure.getErrorMessage(),
            start=iso_utc(self._started_interval()),
        )
        self._whole_from = self._started_interval()
        self._release()

    def _started_interval(self) -> int:
        """The first interval this run sees whole: the one after its start."""
        return self.day.days.interval_start(self._started_at) + INTERVAL_SECONDS

    def _seed(self, lines: list[SmdrLine], since: float) -> None:
        if not self.running:
            return
        for line in lines:
            layout = self.layout
            self._add(parse_smdr(line.text, layout), line.received_at)
        # Calls the lines began before ``since`` would be counted in part: the
        # history holds those intervals whole.
        self.day.forget_before(since)
        if lines:
            log.info(
                "read {count} SMDR lines kept since {since} by an earlier run",
                count=len(lines),
                since=iso_utc(since),
            )
        self._release()

    def _release(self) -> None:
        held, self._held = self._held or [], None
        for line in held:
            self._add(parse_smdr(line.text, self.layout), line.received_at)
        self._close(self.floor.timeline.now())
        self._revised = True
        if not self.seeded.called:
            self.seeded.callback(None)

    # --- health ------------------------------------------------------------------------------

    def _idle(self, state: SmdrLinkState) -> bool:
        """Connected (or relayed lines) and no line for ``idle_after`` seconds."""
        if state.connected and state.connected_seen is not None:
            since = state.connected_seen
        elif state.relayed and state.last_line_seen is not None:
            since = state.last_line_seen
        else:
            return False
        seen = max(since, state.last_line_seen or since)
        return self.clock.seconds() - seen >= self.idle_after

    def _down_too_long(self, state: SmdrLinkState) -> bool:
        down = state.down_since
        return down is not None and self.clock.seconds() - down > self.stale_after

    def idle_links(self) -> list[str]:
        """The links connected, with no line for ``idle_after`` seconds (nor since they came
        up); a link of relayed lines only, with none for ``idle_after`` seconds."""
        return [name for name, state in self.links.items() if self._idle(state)]

    def down_links(self) -> list[str]:
        """The links read here that have not been connected for more than ``stale_after``
        seconds (or since the start). A link of relayed lines only is never down."""
        return [name for name, state in self.links.items() if self._down_too_long(state)]

    def idle(self) -> bool:
        """A link connected, and no line for ``idle_after`` seconds (nor since it came up)."""
        return bool(self.idle_links())

    def down_too_long(self) -> bool:
        """A link not connected for more than ``stale_after`` seconds."""
        return bool(self.down_links())

    def health(self) -> dict[str, Any]:
        """The SMDR link for ``/api/v1/feed`` and ``/healthz``: the first link (``--smdr``'s
        if there is one), and with named sources each link by name under ``sources``."""
        found = self._link_health(self._primary())
        if any(name != "" for name in self.links):
            found["sources"] = {
                name: self._link_health(state) for name, state in self.links.items()
            }
        return found

    def _link_health(self, state: SmdrLinkState) -> dict[str, Any]:
        return {
            "host": state.host,
            "port": state.port,
            "connected": state.connected,
            "connected_since": iso_utc(state.connected_since) if state.connected else None,
            "disconnected_since": iso_utc(state.disconnected_since),
            "disconnect_reason": state.disconnect_reason,
            "connections": state.connections,
            "idle": self._idle(state),
            "idle_after_seconds": self.idle_after,
            "last_line_at": iso_utc(state.last_line_at),
            "layout": self.layout.name if self.layout is not None else "auto",
            "lines": state.lines,
            "layouts": dict(sorted(state.layouts.items())),
            "unreadable": state.unreadable,
            "unclassified": self.day.counts["unclassified"],
            "too_late": self.day.counts["too_late"],
            "confirmed": self.day.settings.confirmed,
        }
