"""The live state of the floor: the one owner of agents, groups and paths.

Records come in from the protocol, one at a time or a whole read in one
:meth:`FloorState.batch`; after each, every listener (documents, file writer,
push, metrics) is handed one :class:`~mitelacd.floor.changes.ChangeSet` saying what
changed, with the new values. A change costs what it changed, whatever the
size of the floor. Nothing here does I/O, and time comes from an injected
clock.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import attrs
from twisted.internet.interfaces import IReactorTime
from twisted.logger import LogLevel

from mitelacd import logs
from mitelacd.clock import Timeline
from mitelacd.floor.changes import (
    AgentStep,
    CallOnKey,
    ChangeSet,
    Entity,
    IFloorListener,
    QueueStep,
    Step,
)
from mitelacd.floor.legacy import LEGACY_STATUSES, LegacyDocument, LegacyStatus, legacy_status
from mitelacd.floor.names import NO_NAMES, AgentState, Limits, Names
from mitelacd.floor.records import (
    EVENT_NAMES,
    AgentEvent,
    CallEventCode,
    Malformed,
    ParseResult,
    Refresh,
    StatsReport,
    mmss_seconds,
)
from mitelacd.floor.render import id_key, iso_utc
from mitelacd.logs import Logger, Throttle

log = Logger()

#: Tables stay bounded however hostile the stream (docs/state-model.md §2).
MAX_AGENTS = 20_000
MAX_EXTENSIONS = 5_000
#: A forward jump in record numbers up to this is a gap; beyond, a resynchronisation.
MAX_GAP = 50
#: state-model §9: a B on one source then an A on another within this many
#: seconds is a failover, not a logout.
FAILOVER_SECONDS = 30.0
#: The widest count a K or Q record holds: merged waiting counts stop there.
_WIDEST = 999


#: What each call event does, in words, for the console log.
_PHRASES = {
    "A": "logged in at {dn}",
    "B": "logged out of {dn}",
    "C": "set DND at {dn}",
    "D": "removed DND at {dn}",
    "E": "made busy at {dn} (reason {reason})",
    "F": "removed make busy at {dn}",
    "G": "answered an ACD call from path {path} at {dn}",
    "H": "answered a personal call at {dn}",
    "I": "made a call from {dn}",
    "J": "is idle at {dn}",
    "L": "started the work timer at {dn}",
    "M": "finished the work timer at {dn}",
    "N": "put a call on hold at {dn}",
    "O": "retrieved a held call at {dn}",
    "P": "lost a held caller at {dn}",
    "S": "answered a networked ACD call from path {path} at {dn}",
    "T": "is ringing at {dn}",
    "U": "stopped ringing at {dn}",
}


CallKind = Literal["acd", "personal", "outgoing", "unknown"]
Activity = Literal["none", "ringing", "hold", "acd_call", "personal_call", "outgoing_call", "call"]
ACTIVITIES: tuple[Activity, ...] = (
    "none",
    "ringing",
    "hold",
    "acd_call",
    "personal_call",
    "outgoing_call",
    "call",
)
_CALL_ACTIVITY: dict[CallKind, Activity] = {
    "acd": "acd_call",
    "personal": "personal_call",
    "outgoing": "outgoing_call",
    "unknown": "call",
}
#: The call each answering or dialling code starts on its button.
QueueKind = Literal["group", "path"]
_CALL_STARTS: dict[CallEventCode, CallKind] = {
    "G": "acd",
    "S": "acd",
    "H": "personal",
    "I": "outgoing",
}


@attrs.define
class Call:
    """One call on one button (line appearance) of an agent's set."""

    kind: CallKind
    held: bool
    path: str | None
    #: When the call was first seen (Unix time).
    since: float
    #: Moves each time the call is started or retrieved: the latest is the one
    #: the agent is talking on.
    turn: int = 0

    def view(self, button: int) -> dict[str, Any]:
        return {
            "button": button,
            "kind": self.kind,
            "held": self.held,
            "path": self.path,
            "since": iso_utc(self.since),
        }


@attrs.frozen
class Failover:
    """An agent's move from one source to another (state-model §9).

    While ``to`` is None the agent logged out (B) on ``source`` less than the
    failover window ago: it is still shown as it was, until an A on another
    source makes it a failover or the window ends and makes it a logout.
    """

    source: str
    logged_out_at: float
    to: str | None = None
    logged_in_at: float | None = None

    def view(self) -> dict[str, Any]:
        return {
            "from": self.source,
            "to": self.to,
            "pending": self.to is None,
            "logged_out_at": iso_utc(self.logged_out_at),
            "logged_in_at": iso_utc(self.logged_in_at),
        }


@attrs.define
class Agent:
    """One agent: the flags and calls of the state machine, and what the rich view adds."""

    agent_id: str
    logged_in: bool = False
    dnd: bool = False
    dnd_reason: int | None = None
    make_busy: bool = False
    make_busy_reason: int | None = None
    wrap_up: bool = False
    fresh_login: bool = False
    #: The button that rings, or None.
    ringing: int | None = None
    #: Button number -> the call on it.
    calls: dict[int, Call] = attrs.Factory(dict)
    #: DN the agent is logged in at; None when logged out or unknown.
    extension: str | None = None
    last_path: str | None = None
    #: When the legacy status last changed (Unix time).
    since: float | None = None
    #: True once an event for this agent arrived on the current connection.
    confirmed: bool = False
    #: Status read from a file at start, shown until a live event arrives.
    carried_status: LegacyStatus | None = None
    #: When this run carried the agent over from the file.
    carried_since: float | None = None
    last_event: CallEventCode | None = None
    last_event_at: float | None = None
    last_button: int | None = None
    #: PBX wall-clock time of the last event, ``HHMMSS`` as sent.
    last_event_pbx_time: str | None = None
    #: The source (state-model §9) of the agent's latest event; None on a floor of one unnamed source.
    source: str | None = None
    #: The agent's last failover (§9).
    failover: Failover | None = None
    #: A logout held for the failover window: a failover that may be under way.
    failing_over: Failover | None = None
    #: When :attr:`state` last changed (Unix time).
    state_since: float | None = None
    _turns: int = 0

    @property
    def carried(self) -> bool:
        return self.carried_status is not None

    @property
    def on_hold(self) -> bool:
        return any(call.held for call in self.calls.values())

    @property
    def activity(self) -> Activity:
        """What the agent is doing, derived from calls and ringing (docs/state-model.md §3)."""
        talking = [call for call in self.calls.values() if not call.held]
        if talking:
            return _CALL_ACTIVITY[max(talking, key=lambda call: call.turn).kind]
        if self.calls:
            return "hold"
        if self.ringing is not None:
            return "ringing"
        return "none"

    @property
    def state(self) -> AgentState:
        """The agent in the board's words: what a colour on the wall stands for."""
        carried = self.carried_status
        if carried is not None:
            return _CARRIED_STATE[carried]
        if not self.logged_in:
            return "logged_out"
        if self.calls:
            return "on_call" if any(not call.held for call in self.calls.values()) else "on_hold"
        if self.ringing is not None:
            return "ringing"
        if self.dnd or self.make_busy:
            return "not_ready"
        if self.wrap_up:
            return "wrap_up"
        return "available"

    @property
    def status(self) -> LegacyStatus:
        """The legacy ``in/out/busy/idle/timer`` value (docs/state-model.md §4)."""
        if self.carried_status is not None:
            return self.carried_status
        return legacy_status(
            logged_in=self.logged_in,
            engaged=bool(self.calls) or self.ringing is not None,
            dnd=self.dnd,
            make_busy=self.make_busy,
            wrap_up=self.wrap_up,
            fresh_login=self.fresh_login,
        )

    def apply(self, event: AgentEvent, now: float) -> None:
        """Apply one call event, per the table of docs/state-model.md §3."""
        if self.carried_status is not None:
            # Flags behind a carried status are unknown: start clean, as for
            # an agent first seen in the middle of the day.
            self.carried_status = None
            self.carried_since = None
        code = event.code
        # A tail that is not a number reads as button 0.
        button = event.button or 0
        if code == "B":
            self.clear()
            self.logged_in = False
            self.extension = None
            return
        self.logged_in = True
        self.extension = event.dn
        self.fresh_login = False
        calls = self.calls
        if code == "A":
            self.clear()
            self.logged_in = True
            self.fresh_login = True
        elif code == "C":
            self.dnd = True
            self.dnd_reason = event.reason
        elif code == "D":
            self.dnd = False
            self.dnd_reason = None
        elif code == "E":
            self.make_busy = True
            self.make_busy_reason = event.reason
        elif code == "F":
            self.make_busy = False
            self.make_busy_reason = None
        elif code == "T":
            self.ringing = button
        elif code == "U":
            self.ringing = None
        elif code in _CALL_STARTS:
            calls[button] = Call(_CALL_STARTS[code], False, event.path, now, self._turn())
            if code != "I":
                self.ringing = None
            if event.path is not None:
                self.last_path = event.path
        elif code in "NO":
            key = self._the_call(button)
            call = calls.get(key)
            if call is None:
                call = calls[key] = Call("unknown", False, None, now)
            call.held = code == "N"
            if code == "O":
                call.turn = self._turn()
        elif code == "P":
            calls.pop(self._the_call(button), None)
        elif code == "J":
            if button == 0 or calls.pop(button, None) is None:
                # J with button 0, or on a button with no call: the set is idle.
                calls.clear()
        elif code == "L":
            calls.clear()
            self.wrap_up = True
        elif code == "M":
            self.wrap_up = False

    def _the_call(self, button: int) -> int:
        """Button 0 means the agent's only call, when there is exactly one."""
        if button == 0 and len(self.calls) == 1:
            return next(iter(self.calls))
        return button

    def _turn(self) -> int:
        self._turns += 1
        return self._turns

    def clear(self) -> None:
        """Everything but the login off: no calls, ringing, DND, make busy or wrap-up."""
        self.dnd = self.make_busy = self.wrap_up = self.fresh_login = False
        self.dnd_reason = self.make_busy_reason = None
        self.ringing = None
        self.calls.clear()

    def entity(self, names: Names = NO_NAMES) -> Entity[LegacyStatus]:
        view = self.view(names)
        return Entity(view, view["status"])

    def view(self, names: Names = NO_NAMES) -> dict[str, Any]:
        entry = names.agent(self.agent_id)
        state = self.state
        return {
            "id": self.agent_id,
            "name": entry.name if entry else None,
            "team": entry.team if entry else None,
            "groups": list(entry.groups) if entry else [],
            "status": self.status,
            "state": state,
            "state_since": iso_utc(self.state_since),
            "attention": _attention(names.agent_limits.get(state), self.state_since),
            "activity": self.activity,
            "logged_in": self.logged_in,
            "dnd": self.dnd,
            "dnd_reason": self.dnd_reason,
            "dnd_reason_text": names.dnd_reason(self.dnd_reason) if self.dnd else None,
            "make_busy": self.make_busy,
            "make_busy_reason": self.make_busy_reason,
            "make_busy_reason_text": (
                names.make_busy_reason(self.make_busy_reason) if self.make_busy else None
            ),
            "wrap_up": self.wrap_up,
            "on_hold": self.on_hold,
            "ringing": self.ringing,
            "calls": [self.calls[b].view(b) for b in sorted(self.calls)],
            "fresh_login": self.fresh_login,
            "extension": self.extension,
            "last_path": self.last_path,
            "since": iso_utc(self.since),
            "confirmed": self.confirmed,
            "carried": self.carried,
            "carried_since": iso_utc(self.carried_since),
            "last_event": EVENT_NAMES[self.last_event] if self.last_event else None,
            "last_event_at": iso_utc(self.last_event_at),
            "last_event_pbx_time": self.last_event_pbx_time,
            "last_button": self.last_button,
            **(
                {
                    "source": self.source,
                    "failover": (
                        self.failing_over.view()
                        if self.failing_over
                        else self.failover.view()
                        if self.failover
                        else None
                    ),
                }
                if self.source is not None
                else {}
            ),
        }


@attrs.define
class Queue:
    """The last K or Q figures for one group or path, kept as sent."""

    number: str
    waiting_raw: str
    agents_raw: str
    longest_raw: str
    trailing: str = ""
    reported_at: float | None = None
    confirmed: bool = False
    kind: QueueKind = "group"
    #: On a floor of several sources, each source's own figures for this
    #: number (state-model §9); None on a floor of one unnamed source.
    parts: dict[str, Queue] | None = None

    def legacy(self) -> dict[str, str]:
        return {
            "waiting": self.waiting_raw,
            "agents": self.agents_raw,
            "longestwait": self.longest_raw,
        }

    def entity(self, names: Names = NO_NAMES) -> Entity[Mapping[str, str]]:
        return Entity(self.view(names), self.legacy())

    def view(self, names: Names = NO_NAMES) -> dict[str, Any]:
        def number(raw: str) -> int | None:
            return int(raw) if raw.isdigit() else None

        longest = self.longest_raw
        waiting = number(self.waiting_raw)
        longest_seconds = mmss_seconds(longest) if _is_mmss(longest) else None
        table = names.groups if self.kind == "group" else names.paths
        return {
            "id": self.number,
            "name": table.get(self.number),
            "level": names.queue_level(self.kind, self.number, waiting, longest_seconds),
            "waiting": waiting,
            "agents_logged_in": number(self.agents_raw),
            "longest_wait_seconds": longest_seconds,
            "trailing": self.trailing,
            "reported_at": iso_utc(self.reported_at),
            "confirmed": self.confirmed,
            **({"sources": self._parts_view()} if self.parts is not None else {}),
        }

    def _parts_view(self) -> dict[str, Any]:
        assert self.parts is not None
        views: dict[str, Any] = {}
        for source in sorted(self.parts):
            part = self.parts[source]
            longest = part.longest_raw
            views[source] = {
                "waiting": int(part.waiting_raw) if part.waiting_raw.isdigit() else None,
                "agents_logged_in": int(part.agents_raw) if part.agents_raw.isdigit() else None,
                "longest_wait_seconds": mmss_seconds(longest) if _is_mmss(longest) else None,
                "reported_at": iso_utc(part.reported_at),
                "confirmed": part.confirmed,
            }
        return views


@attrs.define
class Extension:
    """A set seen with a blank agent field, and what it last did."""

    dn: str
    last_event: CallEventCode
    last_event_at: float
    tail: str

    def entity(self) -> Entity[None]:
        return Entity(self.view(), None)

    def view(self) -> dict[str, Any]:
        return {
            "dn": self.dn,
            "last_event": EVENT_NAMES[self.last_event],
            "last_event_at": iso_utc(self.last_event_at),
            "tail": self.tail,
        }


@attrs.define
class Feed:
    """Health of the PBX feed."""

    host: str | None = None
    port: int | None = None
    connected: bool = False
    connected_since: float | None = None
    disconnected_since: float | None = None
    disconnect_reason: str | None = None
    connections: int = 0
    #: Connection attempts that failed (refused, unreachable, timed out).
    connect_failures: int = 0
    last_record_at: float | None = None
    last_keepalive_at: float | None = None
    pbx_time: str | None = None
    #: The R date as sent, when it is not ``YYYYMMDD``.
    pbx_date_raw: str | None = None
    last_seq: int | None = None
    gaps: int = 0
    missed_records: int = 0
    duplicates: int = 0
    resyncs: int = 0
    #: Valid records since the current connection was made.
    records_this_connection: int = 0
    agents_refused: int = 0
    extensions_forgotten: int = 0
    #: R dates that were not dates, or went back: the last good date stayed.
    pbx_dates_refused: int = 0
    #: Agents out since before a day began, removed at its start.
    agents_forgotten: int = 0
    agents_let_go: int = 0
    records_by_code: dict[str, int] = attrs.Factory(dict)
    unparsable: int = 0
    noise: int = 0
    #: Records the end of a connection cut short: never applied.
    records_cut: int = 0


@attrs.define(eq=False)
class Source:
    """One source's own part of the floor (state-model §9).

    Each source keeps its link's health, its record numbers, its R clock and
    the K and Q figures it sent; the floor merges the figures of every
    source into its groups and paths.
    """

    name: str
    feed: Feed = attrs.Factory(Feed)
    #: The clock's readings at its last valid record and its last connection.
    record_tick: float | None = None
    connected_tick: float | None = None
    #: The last good date its R records gave (§4's date rule).
    pbx_date: datetime.date | None = None
    #: Kinds of bad R date already warned of (once each).
    refused_dates: set[str] = attrs.Factory(set)
    groups: dict[str, Queue] = attrs.Factory(dict)
    paths: dict[str, Queue] = attrs.Factory(dict)
    #: The MQTT source whose link brings its records, for a source read through a broker.
    via: str | None = None


@attrs.define(eq=False)
class _HeldLogout:
    """A B on a floor of several sources, held for the failover window (§9)."""

    event: AgentEvent
    source: Source
    #: Wall time it came, which stamps the logout if the window ends without an A.
    at_wall: float
    timer: Any


class FloorState:
    """Agents, groups, paths, extensions and feed health, kept from records.

    Every change ends in one :class:`ChangeSet` for the listeners. Inside
    :meth:`batch` the records of one read are applied first and told as one
    change at its end.
    """

    def __init__(
        self,
        clock: IReactorTime,
        stale_after: float = 60.0,
        first_version: int = 0,
        max_agents: int = MAX_AGENTS,
        max_extensions: int = MAX_EXTENSIONS,
        timeline: Timeline | None = None,
        sources: Sequence[str] = ("",),
        failover_seconds: float = FAILOVER_SECONDS,
    ) -> None:
        self._clock = clock
        #: Its wall clock stamps what is shown; its own time, which never runs
        #: back, stamps the steps the day's figures count by. ``clock`` only
        #: measures how long to wait.
        self.timeline = timeline if timeline is not None else Timeline(clock)
        if not sources or len(set(sources)) != len(sources):
            raise ValueError(f"sources must be named once each: {list(sources)}")
        #: Each source's own part, in the order given; a floor of one is
        #: unnamed (""), as ``--host`` makes it. Sources an MQTT link brings
        #: are added as their first record comes.
        self.sources: dict[str, Source] = {name: Source(name) for name in sources}
        self.failover_seconds = failover_seconds
        self._held: dict[str, _HeldLogout] = {}
        self.stale_after = stale_after
        self.max_agents = max_agents
        self.max_extensions = max_extensions
        #: Agents carried from a file that no event has named since.
        self._carried: set[str] = set()
        #: The PBX date that carried agents belong to: the file's, then the last R's.
        self._pbx_date: datetime.date | None = None
        #: The carried file's date: the last good date of a source before its first R.
        self._carried_date: datetime.date | None = None
        #: Display names, reasons and thresholds from the site's names file.
        self.names: Names = NO_NAMES
        self.agents: dict[str, Agent] = {}
        self.groups: dict[str, Queue] = {}
        self.paths: dict[str, Queue] = {}
        self.extensions: dict[str, Extension] = {}
        #: The first source's feed (the only one on a floor of one source).
        self.feed = next(iter(self.sources.values())).feed
        #: Unix time of the last record that changed or re-reported the floor.
        self.last_update: float = 0.0
        #: Moves on every change of anything below; starting it from the start
        #: time (in microseconds) lets it grow across restarts too.
        self.version = first_version
        self._listeners: list[IFloorListener] = []
        self._unparsable_log = Throttle(clock)
        self._sequence_logs = {kind: Throttle(clock) for kind in ("gap", "duplicate", "resync")}
        self._refused_log = Throttle(clock)
        self._cut_log = Throttle(clock)
        # What changed since the last change set.
        self._depth = 0
        self._dirty_agents: dict[str, None] = {}
        #: The agents whose last change set holds a view not rendered yet.
        self._unrendered: dict[str, Entity[LegacyStatus]] = {}
        self._dirty_groups: dict[str, None] = {}
        self._dirty_paths: dict[str, None] = {}
        self._dirty_extensions: dict[str, None] = {}
        self._feed_dirty = False
        #: Only what every record moves has changed in the feed (see _hot_feed).
        self._feed_hot = False
        self._last_update_moved = False
        self._steps: list[Step] = []
        # Totals, kept up to date change by change.
        self._counted: dict[str, LegacyStatus] = {}
        self._by_status: dict[LegacyStatus, int] = dict.fromkeys(LEGACY_STATUSES, 0)
        self._totals = self._compute_totals()
        self._feed_view = self._compute_feed_view()

    @property
    def clock(self) -> IReactorTime:
        return self._clock

    def now(self) -> float:
        """The time to stamp what is shown: the system clock (Unix time)."""
        return self.timeline.wall()

    @property
    def several(self) -> bool:
        """The floor has named sources (state-model §9): views say which source is which."""
        return len(self.sources) > 1 or "" not in self.sources

    def source(self, name: str | None = None) -> Source:
        """The source of that name (None: the first), added if an MQTT link brings a new one."""
        if name is None:
            return next(iter(self.sources.values()))
        found = self.sources.get(name)
        if found is None:
            found = self.sources[name] = Source(name)
            log.info("records from a new source, {source!r}", source=name)
        return found

    def input(self, name: str | None = None) -> SourceInput:
        """What a link of source ``name`` tells the floor through (None: the first source)."""
        return SourceInput(self, self.source(name).name)

    # Listeners -------------------------------------------------------------

    def addListener(self, listener: IFloorListener) -> None:
        self._listeners.append(listener)

    def removeListener(self, listener: IFloorListener) -> None:
        self._listeners.remove(listener)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Apply everything inside as one change (the protocol wraps each read in it)."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if not self._depth:
                self._commit()

    def _done(self) -> None:
        """One input has been applied: tell the listeners, unless inside a batch."""
        if not self._depth:
            self._commit()

    def _commit(self) -> None:
        agents: dict[str, Entity[LegacyStatus] | None] = {}
        for k in self._dirty_agents:
            if k in self.agents:
                agents[k] = self._agent_entity(k)
            else:
                self._agent_gone(k)
                agents[k] = None
        names = self.names
        groups = {k: self.groups[k].entity(names) for k in self._dirty_groups}
        paths = {k: self.paths[k].entity(names) for k in self._dirty_paths}
        extensions = {k: _entity_of(self.extensions.get(k)) for k in self._dirty_extensions}
        feed: dict[str, Any] = {}
        if self._feed_dirty or (self._feed_hot and self.several):
            view = self._compute_feed_view()
            old = self._feed_view
            feed = {k: v for k, v in view.items() if old.get(k) != v}
            self._feed_view = view
        elif self._feed_hot:
            old = self._feed_view
            feed = {k: v for k, v in self._hot_feed().items() if old.get(k) != v}
            old.update(feed)
        totals = None
        if agents or paths:
            fresh = self._compute_totals()
            if fresh != self._totals:
                totals = self._totals = fresh
        last_update = self.last_update if self._last_update_moved else None
        self._dirty_agents, self._dirty_groups, self._dirty_paths = {}, {}, {}
        self._dirty_extensions = {}
        self._feed_dirty = self._feed_hot = self._last_update_moved = False
        steps: tuple[Step, ...] = ()
        if self._steps:
            steps, self._steps = tuple(self._steps), []
        if not (agents or groups or paths or extensions or feed or totals or last_update or steps):
            return
        previous = self.version
        self.version += 1
        changes = ChangeSet(
            previous,
            self.version,
            self.timeline.wall(),
            agents,
            groups,
            paths,
            extensions,
            feed,
            totals,
            last_update,
            steps,
        )
        for listener in list(self._listeners):
            try:
                listener.floorChanged(changes)
            except Exception:
                log.failure("listener {listener!r} failed", listener=listener)

    def _agent_entity(self, agent_id: str) -> Entity[LegacyStatus]:
        # A view still owed (after a change of names only) is made before another is.
        self._freeze(agent_id)
        agent = self.agents[agent_id]
        status = agent.status
        counted = self._counted.get(agent_id)
        if counted != status:
            if counted is not None:
                self._by_status[counted] -= 1
            self._by_status[status] += 1
            self._counted[agent_id] = status
        # Its view is rendered when first read, or before the agent next changes.
        entity = Entity(None, status, functools.partial(self._render_agent, agent, self.names))
        self._unrendered[agent_id] = entity
        return entity

    def _render_agent(self, agent: Agent, names: Names) -> dict[str, Any]:
        """The view a change set promised, rendered: the floor need not hold it any longer."""
        self._unrendered.pop(agent.agent_id, None)
        return agent.view(names)

    def _freeze(self, agent_id: str) -> None:
        """The agent is about to change: render the view its last change set promised."""
        entity = self._unrendered.pop(agent_id, None)
        if entity is not None:
            entity.freeze()

    def _agent_gone(self, agent_id: str) -> None:
        """An agent left the tables: it no longer counts in the totals."""
        self._unrendered.pop(agent_id, None)
        counted = self._counted.pop(agent_id, None)
        if counted is not None:
            self._by_status[counted] -= 1

    def everything(self) -> ChangeSet:
        """The whole floor as one change set from nothing, for a listener that starts late."""
        return ChangeSet(
            self.version,
            self.version,
            self.timeline.wall(),
            {k: a.entity(self.names) for k, a in self.agents.items()},
            {k: q.entity(self.names) for k, q in self.groups.items()},
            {k: q.entity(self.names) for k, q in self.paths.items()},
            {k: e.entity() for k, e in self.extensions.items()},
            dict(self._feed_view),
            dict(self._totals),
            self.last_update,
        )

    # Input from the start-up file ------------------------------------------

    def carry(self, doc: LegacyDocument, pbx_date: datetime.date | None = None) -> None:
        """Take agents, groups and paths from an earlier run's checked legacy document.

        Carried agents stay unconfirmed until the PBX names them; they are let
        go when the PBX date moves on from ``pbx_date`` (by default the local
        date of the document's ``lastUpdate``).
        """
        now = self.timeline.wall()
        for agent_id, status in doc.agents.items():
            if agent_id not in self.agents and len(self.agents) >= self.max_agents:
                self.feed.agents_refused += 1
                self._feed_dirty = True
                continue
            self.agents[agent_id] = Agent(
                agent_id, logged_in=status != "out", carried_status=status, carried_since=now
            )
            self._carried.add(agent_id)
            self._dirty_agents[agent_id] = None
        kinds: tuple[
            tuple[dict[str, Queue], Mapping[str, Mapping[str, str]], dict[str, None], QueueKind],
            ...,
        ] = (
            (self.groups, doc.groups, self._dirty_groups, "group"),
            (self.paths, doc.paths, self._dirty_paths, "path"),
        )
        for table, queues, dirty, kind in kinds:
            for number, figures in queues.items():
                table[number] = Queue(
                    number,
                    figures["waiting"],
                    figures["agents"],
                    figures["longestwait"],
                    kind=kind,
                )
                dirty[number] = None
        self.last_update = doc.last_update
        self._last_update_moved = True
        if pbx_date is None and doc.last_update > 0:
            pbx_date = datetime.datetime.fromtimestamp(doc.last_update).date()
        self._pbx_date = self._carried_date = pbx_date
        self._done()

    def setNames(self, names: Names) -> None:
        """Take new names, reasons and thresholds: every view that shows them changes."""
        self.names = names
        self._dirty_agents.update(dict.fromkeys(self.agents))
        self._dirty_groups.update(dict.fromkeys(self.groups))
        self._dirty_paths.update(dict.fromkeys(self.paths))
        self._done()

    @property
    def carried_agents(self) -> int:
        """How many carried agents the PBX has not named yet."""
        return len(self._carried)

    def letGoCarried(self, why: str) -> int:
        """Set every carried agent the PBX has not named to ``out``; say how many."""
        if not self._carried:
            return 0
        now = self.timeline.wall()
        count = len(self._carried)
        for agent_id in sorted(self._carried, key=id_key):
            agent = self.agents[agent_id]
            self._freeze(agent_id)
            agent.carried_status = None
            agent.carried_since = None
            agent.clear()
            agent.logged_in = False
            agent.extension = None
            agent.since = agent.state_since = now
            self._dirty_agents[agent_id] = None
        self._carried.clear()
        self.feed.agents_let_go += count
        self._feed_dirty = True
        log.warn(
            "let go of {count} carried agent(s) the PBX has not named ({why}): now out",
            count=count,
            why=why,
        )
        self._done()
        return count

    def forget(self, before: float) -> tuple[int, int]:
        """Remove agents out, and extensions silent, since before ``before`` (§4 v3).

        Called at the start of each report day, so that a floor that churns
        never fills the tables. Says how many agents and extensions went.
        """
        gone_agents = [
            agent_id
            for agent_id, agent in self.agents.items()
            if agent.status == "out" and (_out_since(agent) or 0.0) < before
        ]
        for agent_id in gone_agents:
            del self.agents[agent_id]
            self._carried.discard(agent_id)
            self._dirty_agents[agent_id] = None
        gone_extensions = [
            dn for dn, extension in self.extensions.items() if extension.last_event_at < before
        ]
        for dn in gone_extensions:
            del self.extensions[dn]
            self._dirty_extensions[dn] = None
        if gone_agents or gone_extensions:
            self.feed.agents_forgotten += len(gone_agents)
            self.feed.extensions_forgotten += len(gone_extensions)
            self._feed_dirty = True
            log.info(
                "a new day: forgot {agents} agent(s) out and {extensions} extension(s)"
                " silent since before it began",
                agents=len(gone_agents),
                extensions=len(gone_extensions),
            )
        self._done()
        return len(gone_agents), len(gone_extensions)

    # Input from the protocol -----------------------------------------------

    def feedConnected(self, host: str, port: int, source: str | None = None) -> None:
        now = self.timeline.wall()
        src = self.source(source)
        feed = src.feed
        feed.host, feed.port = host, port
        feed.connected = True
        feed.connected_since = now
        src.connected_tick = self._clock.seconds()
        feed.disconnected_since = None
        feed.disconnect_reason = None
        feed.connections += 1
        feed.last_seq = None
        feed.records_this_connection = 0
        self._feed_dirty = True
        self._done()

    def feedConnectFailed(
        self, host: str, port: int, reason: str, source: str | None = None
    ) -> None:
        feed = self.source(source).feed
        feed.host, feed.port = host, port
        feed.disconnect_reason = reason
        feed.connect_failures += 1
        self._feed_dirty = True
        self._done()

    def feedDisconnected(self, reason: str, source: str | None = None) -> None:
        src = self.source(source)
        feed = src.feed
        feed.connected = False
        feed.disconnected_since = self.timeline.wall()
        feed.disconnect_reason = reason
        self._feed_dirty = True
        several = self.several
        # What we know now came from a connection that is gone: on a floor of
        # several sources, only what this source said last.
        for agent in self.agents.values():
            if agent.confirmed and (not several or agent.source == src.name):
                self._freeze(agent.agent_id)
                agent.confirmed = False
                self._dirty_agents[agent.agent_id] = None
        if several:
            sides: tuple[tuple[QueueKind, dict[str, Queue]], ...] = (
                ("group", src.groups),
                ("path", src.paths),
            )
            for kind, parts in sides:
                for part in parts.values():
                    if part.confirmed:
                        part.confirmed = False
                        self._merge_queue(kind, part.number)
        else:
            tables = ((self.groups, self._dirty_groups), (self.paths, self._dirty_paths))
            for table, dirty in tables:
                for queue in table.values():
                    if queue.confirmed:
                        queue.confirmed = False
                        dirty[queue.number] = None
        for other in list(self.sources.values()):
            if other.via == src.name and other.feed.connected:
                # Its records came through this link, which is gone.
                self.feedDisconnected(
                    f"the link of source {src.name!r} was lost: {reason}", other.name
                )
        self._done()

    def relayed(self, link: str, source: str, result: ParseResult) -> None:
        """A record of ``source`` that came through the MQTT source ``link`` (another
        mitelacd published it as read): applied as if read from that source.

        ``link`` is live while records come through it; ``source`` is shown
        connected (to the broker) from its first record until the link is lost.
        """
        via = self.source(link)
        src = self.source(source)
        via.record_tick = self._clock.seconds()
        via.feed.last_record_at = self.timeline.wall()
        via.feed.records_this_connection += 1
        if src is not via and (src.via != link or not src.feed.connected):
            src.via = link
            self.feedConnected(via.feed.host or "", via.feed.port or 0, source)
        self.recordReceived(result, source)

    def noiseReceived(
        self, raw: bytes, reason: str | None = None, source: str | None = None
    ) -> None:
        """Bytes outside any record: counted, logged now and then."""
        self.source(source).feed.noise += 1
        self._feed_dirty = True
        self._unparsable(reason or f"{len(raw)} bytes outside any record", raw)
        self._done()

    def recordCut(self, raw: bytes, source: str | None = None) -> None:
        """A record the end of the connection cut short (state-model §1).

        Counted and logged now and then, but never applied: what is missing
        may be the end of an agent ID, and a cut ID would name a new agent.
        """
        self.source(source).feed.records_cut += 1
        self._feed_dirty = True
        allowed, held = self._cut_log.allow()
        if allowed:
            log.warn(
                "record cut short by the end of the connection, not applied: {raw!r}"
                " ({held} more not logged since the last such line)",
                raw=raw[:80],
                held=held,
            )
        self._done()

    def recordReceived(self, result: ParseResult, source: str | None = None) -> None:
        """Apply one parsed record (or count one that could not be parsed)."""
        src = self.source(source)
        feed = src.feed
        # What every record moves; anything else it changes marks the whole feed.
        self._feed_hot = True
        if isinstance(result, Malformed):
            self._feed_dirty = True
            feed.unparsable += 1
            if result.seq is not None:
                self._check_sequence(result.seq, feed)
            self._unparsable(result.reason, result.raw)
            self._done()
            return
        now = self.timeline.wall()
        at = self.timeline.now()
        code = result.code
        feed.records_by_code[code] = feed.records_by_code.get(code, 0) + 1
        feed.last_record_at = now
        src.record_tick = self._clock.seconds()
        feed.records_this_connection += 1
        self._check_sequence(result.seq, feed)
        if isinstance(result, AgentEvent):
            self._agent_event(result, now, at, src)
        elif isinstance(result, StatsReport):
            self._stats(result, now, at, src)
        elif isinstance(result, Refresh):
            feed.last_keepalive_at = now
            stamp = result.pbx_datetime
            feed.pbx_time = stamp.isoformat() if stamp else None
            feed.pbx_date_raw = None if result.date else result.date_raw
            self._pbx_date_seen(result.date, result.date_raw, src)
            log.debug(
                "keep-alive {seq:02d}, PBX time {date} {time}",
                seq=result.seq,
                date=result.date_raw,
                time=result.time,
            )
        self._done()

    def _unparsable(self, reason: str, raw: bytes) -> None:
        allowed, held = self._unparsable_log.allow()
        if allowed:
            log.warn(
                "unreadable input ({reason}): {raw!r}"
                " ({held} more not logged since the last such line)",
                reason=reason,
                raw=raw[:80],
                held=held,
            )

    def _check_sequence(self, seq: int, feed: Feed) -> None:
        """Count loss by record number (docs/state-model.md §6), each source on its own."""
        last, feed.last_seq = feed.last_seq, seq
        if last is None:
            return
        step = (seq - last) % 100
        if step == 1:
            return
        self._feed_dirty = True
        if step == 0:
            feed.duplicates += 1
            kind = "duplicate"
            line = "record number {seq:02d} came twice in a row: a duplicate, not a loss"
        elif step <= MAX_GAP:
            feed.gaps += 1
            feed.missed_records += step - 1
            kind = "gap"
            line = "record number jumped from {last:02d} to {seq:02d}: {missed} record(s) lost upstream"
        else:
            feed.resyncs += 1
            kind = "resync"
            line = (
                "record number went from {last:02d} to {seq:02d}: the PBX restarted its"
                " numbering or lost too much to count; numbering resynchronised"
            )
        allowed, held = self._sequence_logs[kind].allow()
        if allowed:
            log.warn(
                line + " ({held} more not logged since the last such line)",
                last=last,
                seq=seq,
                missed=step - 1,
                held=held,
            )

    def _pbx_date_seen(self, date: datetime.date | None, raw: str, src: Source) -> None:
        """Take the R record's date for the date rule of §4, unless it cannot be right.

        A date that is not a date (month 13), or one before the last good one
        of the same source, is counted and warned of once, and the last good
        date stays.
        """
        # Before its first good R, a source's last date is the carried file's.
        previous = src.pbx_date if src.pbx_date is not None else self._carried_date
        if date is None or (previous is not None and date < previous):
            self._feed_dirty = True
            src.feed.pbx_dates_refused += 1
            kind = "not a date" if date is None else "before the last one"
            if kind not in src.refused_dates:
                src.refused_dates.add(kind)
                log.warn(
                    "the PBX sent the date {raw!r} ({kind}): the date rules keep {kept};"
                    " further such dates are counted, not logged",
                    raw=raw,
                    kind=kind,
                    kept=previous.isoformat() if previous else "none yet",
                )
            return
        src.pbx_date = date
        carried_date, self._pbx_date = self._pbx_date, date
        if self._carried and carried_date is not None and date != carried_date:
            self.letGoCarried(f"the PBX date changed from {carried_date} to {date}")

    def _agent_event(self, event: AgentEvent, now: float, at: float, src: Source) -> None:
        if event.is_extension_event:
            self._extension_event(event, now, src)
            return
        agent = self.agents.get(event.agent)
        if agent is None:
            if len(self.agents) >= self.max_agents:
                self._refuse(event, src)
                return
            agent = self.agents[event.agent] = Agent(event.agent)
        self._freeze(event.agent)
        held = self._held.pop(event.agent, None)
        if held is not None:
            held.timer.cancel()
            if event.code == "A" and held.source is not src:
                # A failover: the B and this A are one move, told as one change.
                agent.failing_over = None
                agent.failover = Failover(held.source.name, held.at_wall, src.name, now)
                log.info(
                    "agent {agent} failed over from source {old!r} to {new!r}",
                    agent=event.agent,
                    old=held.source.name,
                    new=src.name,
                )
                self._apply_agent(agent, event, now, at, src, first=held.event)
                return
            # Anything else first makes the held B the logout it was.
            agent.failing_over = None
            self._apply_agent(agent, held.event, held.at_wall, at, held.source)
        if (
            event.code == "B"
            and agent.logged_in
            and agent.source is not None
            and agent.source != src.name
            and len(self.sources) > 1
        ):
            # The agent's latest event, a login or more, came from another source:
            # this B, which the other link brought late, ends nothing there.
            agent.failover = Failover(src.name, now, agent.source, agent.last_event_at)
            self._dirty_agents[event.agent] = None
            return
        if event.code == "B" and agent.logged_in and len(self.sources) > 1:
            # Another source may log the agent in within the window (§9).
            self._held[event.agent] = _HeldLogout(
                event,
                src,
                now,
                self._clock.callLater(self.failover_seconds, self._failover_lapsed, event.agent),
            )
            agent.failing_over = Failover(src.name, now)
            self._dirty_agents[event.agent] = None
            return
        self._apply_agent(agent, event, now, at, src)

    def _failover_lapsed(self, agent_id: str) -> None:
        """The window after a held B ended with no A elsewhere: it was a logout."""
        held = self._held.pop(agent_id, None)
        agent = self.agents.get(agent_id)
        if held is None or agent is None:
            return
        self._freeze(agent_id)
        agent.failing_over = None
        self._apply_agent(agent, held.event, held.at_wall, self.timeline.now(), held.source)
        self._done()

    def _apply_agent(
        self,
        agent: Agent,
        event: AgentEvent,
        now: float,
        at: float,
        src: Source,
        first: AgentEvent | None = None,
    ) -> None:
        """Apply an agent's event (after ``first``, in the same change, for a failover)."""
        code = event.code
        before = agent.status if agent.since is not None else None
        state_before = agent.state if agent.state_since is not None else None
        if first is not None:
            agent.apply(first, now)
        agent.apply(event, now)
        if self.several:
            agent.source = src.name
        self._carried.discard(event.agent)
        agent.confirmed = True
        agent.last_event = code
        agent.last_event_at = now
        agent.last_button = event.button
        agent.last_event_pbx_time = _hhmmss(event.time)
        if before != agent.status:
            agent.since = now
        state = agent.state
        if state_before != state:
            agent.state_since = now
        calls = agent.calls
        self._steps.append(
            AgentStep(
                at,
                event.agent,
                code,
                event.button,
                event.reason,
                event.path,
                state,
                agent.logged_in,
                agent.dnd,
                agent.dnd_reason,
                agent.make_busy,
                agent.make_busy_reason,
                agent.wrap_up,
                agent.ringing,
                tuple(CallOnKey(b, c.kind, c.held, c.path) for b, c in calls.items())
                if calls
                else (),
            )
        )
        self.last_update = now
        self._last_update_moved = True
        self._dirty_agents[event.agent] = None
        if logs.enabled(LogLevel.info):
            log.emit(
                LogLevel.info,
                _AGENT_LINES[code],
                agent=event.agent,
                dn=event.dn,
                path=event.path,
                reason=event.reason,
            )

    def _extension_event(self, event: AgentEvent, now: float, src: Source) -> None:
        table, dn = self.extensions, event.dn
        # Kept in the order last heard: the first is the one to forget.
        if table.pop(dn, None) is None and len(table) >= self.max_extensions:
            forgotten = next(iter(table))
            del table[forgotten]
            self._dirty_extensions[forgotten] = None
            src.feed.extensions_forgotten += 1
            self._feed_dirty = True
        table[dn] = Extension(dn, event.code, now, event.tail)
        self._dirty_extensions[dn] = None
        log.info(_EXTENSION_LINES[event.code], dn=dn, path=event.path, reason=event.reason)

    def _refuse(self, event: AgentEvent, src: Source) -> None:
        src.feed.agents_refused += 1
        self._feed_dirty = True
        allowed, held = self._refused_log.allow()
        if allowed:
            log.warn(
                "agent table full ({limit} agents): ignored a record for new agent {agent}"
                " ({held} more not logged since the last such line)",
                limit=self.max_agents,
                agent=event.agent,
                held=held,
            )

    def _stats(self, report: StatsReport, now: float, at: float, src: Source) -> None:
        kind: QueueKind = "group" if report.is_group else "path"
        reported = Queue(
            report.number,
            report.waiting_raw,
            report.agents_raw,
            report.longest_raw,
            report.trailing,
            reported_at=now,
            confirmed=True,
            kind=kind,
        )
        if self.several:
            (src.groups if report.is_group else src.paths)[report.number] = reported
            queue = self._merge_queue(kind, report.number)
        else:
            table, dirty = (
                (self.groups, self._dirty_groups)
                if report.is_group
                else (self.paths, self._dirty_paths)
            )
            queue = table[report.number] = reported
            dirty[report.number] = None
        self._steps.append(
            QueueStep(
                at,
                kind,
                report.number,
                int(queue.waiting_raw) if queue.waiting_raw.isdigit() else None,
                mmss_seconds(queue.longest_raw) if _is_mmss(queue.longest_raw) else None,
            )
        )
        self.last_update = now
        self._last_update_moved = True
        if not logs.enabled(LogLevel.info):
            return
        longest = report.longest_raw
        log.info(
            "{kind} {number}: {waiting} waiting, {agents} agents, longest {mm}:{ss}",
            kind="group" if report.is_group else "path",
            number=report.number,
            waiting=int(report.waiting_raw),
            agents=int(report.agents_raw),
            mm=longest[:2],
            ss=longest[2:],
        )

    def _merge_queue(self, kind: QueueKind, number: str) -> Queue:
        """One queue from every source's figures for ``number`` (state-model §9).

        ``waiting`` is the sum (at most 999, the field's width), the longest
        wait the longest and ``agents`` the largest, as each source counts
        the same agents. Figures that are not numbers are left out of the
        sum and the largest; it is confirmed while every part is.
        """
        table, dirty = (
            (self.groups, self._dirty_groups)
            if kind == "group"
            else (self.paths, self._dirty_paths)
        )
        parts = {
            name: part
            for name, src in self.sources.items()
            if (part := (src.groups if kind == "group" else src.paths).get(number)) is not None
        }
        latest = max(parts.values(), key=lambda q: q.reported_at or 0.0)
        if len(parts) == 1:
            waiting, agents, longest = latest.waiting_raw, latest.agents_raw, latest.longest_raw
        else:
            waitings = [int(q.waiting_raw) for q in parts.values() if q.waiting_raw.isdigit()]
            counts = [int(q.agents_raw) for q in parts.values() if q.agents_raw.isdigit()]
            longests = [q.longest_raw for q in parts.values() if _is_mmss(q.longest_raw)]
            waiting = f"{min(sum(waitings), _WIDEST):03d}" if waitings else latest.waiting_raw
            agents = f"{max(counts):03d}" if counts else latest.agents_raw
            longest = max(longests, key=mmss_seconds) if longests else latest.longest_raw
        queue = table[number] = Queue(
            number,
            waiting,
            agents,
            longest,
            latest.trailing,
            reported_at=latest.reported_at,
            confirmed=all(q.confirmed for q in parts.values()),
            kind=kind,
            parts=parts,
        )
        dirty[number] = None
        return queue

    # Views -----------------------------------------------------------------

    def legacy(self) -> dict[str, Any]:
        """The ``mitel_data.json`` document (docs/state-model.md §4), built whole.

        The daemon serves and writes the same document assembled change by
        change (:mod:`mitelacd.floor.documents`); this is its definition.
        """
        return {
            "agents": {a.agent_id: a.status for a in self.agents.values()},
            "groups": {n: q.legacy() for n, q in self.groups.items()},
            "paths": {n: q.legacy() for n, q in self.paths.items()},
            "lastUpdate": self.last_update,
        }

    def legacyJSON(self) -> bytes:
        return json.dumps(self.legacy()).encode("ascii")

    def isStale(self) -> bool:
        """No live feed, or no record for longer than ``stale_after`` seconds.

        On a floor of several sources: none of them is live. Which of them
        are not is :meth:`staleSources`.
        """
        return all(self._source_stale(src) for src in self.sources.values())

    def staleSources(self) -> list[str]:
        """The names of the sources that are not live now (state-model §5, §9)."""
        return [name for name, src in self.sources.items() if self._source_stale(src)]

    def _source_stale(self, src: Source) -> bool:
        if not src.feed.connected:
            return True
        # Measured on the clock, not by the stamps: a step of the system clock
        # must neither hide a silent feed nor fake one.
        heard = src.record_tick if src.record_tick is not None else src.connected_tick
        return heard is None or self._clock.seconds() - heard > self.stale_after

    def feedView(self) -> dict[str, Any]:
        """Health of the feed; whether it is stale is the reader's to say, at its time."""
        return dict(self._feed_view)

    def _compute_feed_view(self) -> dict[str, Any]:
        view = self._source_feed_view(self.feed)
        if self.several:
            view["failover_seconds"] = self.failover_seconds
            view["sources"] = {
                name: self._source_feed_view(src.feed) for name, src in self.sources.items()
            }
        return view

    def _hot_feed(self) -> dict[str, Any]:
        """The fields of the feed view a valid record moves, on a floor of one source."""
        feed = self.feed
        return {
            "last_record_at": iso_utc(feed.last_record_at),
            "last_keepalive_at": iso_utc(feed.last_keepalive_at),
            "pbx_time": feed.pbx_time,
            "pbx_date_raw": feed.pbx_date_raw,
            "records_this_connection": feed.records_this_connection,
            "records_by_code": dict(sorted(feed.records_by_code.items())),
        }

    def _source_feed_view(self, feed: Feed) -> dict[str, Any]:
        return {
            "connected": feed.connected,
            "stale_after_seconds": self.stale_after,
            "pbx_host": feed.host,
            "pbx_port": feed.port,
            "connected_since": iso_utc(feed.connected_since),
            "disconnected_since": iso_utc(feed.disconnected_since),
            "disconnect_reason": feed.disconnect_reason,
            "connections": feed.connections,
            "connect_failures": feed.connect_failures,
            "last_record_at": iso_utc(feed.last_record_at),
            "last_keepalive_at": iso_utc(feed.last_keepalive_at),
            "pbx_time": feed.pbx_time,
            "pbx_date_raw": feed.pbx_date_raw,
            "records_this_connection": feed.records_this_connection,
            "sequence_gaps": feed.gaps,
            "records_missed": feed.missed_records,
            "sequence_duplicates": feed.duplicates,
            "sequence_resyncs": feed.resyncs,
            "records_by_code": dict(sorted(feed.records_by_code.items())),
            "unparsable_records": feed.unparsable,
            "noise": feed.noise,
            "records_cut": feed.records_cut,
            "agents_refused": feed.agents_refused,
            "extensions_forgotten": feed.extensions_forgotten,
            "agents_forgotten": feed.agents_forgotten,
            "pbx_dates_refused": feed.pbx_dates_refused,
            "agents_let_go": feed.agents_let_go,
        }

    def totals(self) -> dict[str, Any]:
        return dict(self._totals)

    def _compute_totals(self) -> dict[str, Any]:
        # A queued call waits on one path but may count in several groups.
        # Paths are few (tens), and they change in one burst every cycle.
        paths = self.paths.values()
        by_status = dict(self._by_status)
        return {
            "agents": by_status,
            "logged_in": sum(by_status.values()) - by_status["out"],
            "waiting": sum(int(q.waiting_raw) for q in paths if q.waiting_raw.isdigit()),
            "longest_wait_seconds": max(
                (mmss_seconds(q.longest_raw) for q in paths if _is_mmss(q.longest_raw)),
                default=0,
            ),
        }

    def snapshot(self) -> dict[str, Any]:
        """The rich view of docs/state-model.md §5, built whole.

        ``generated_at`` and ``stale`` are the web layer's to add, and so is
        the feed's ``stale``.
        """
        return {
            "version": self.version,
            "last_update": iso_utc(self.last_update or None),
            "feed": self.feedView(),
            "totals": self.totals(),
            "agents": self.agentViews(),
            "groups": self.queueViews(self.groups),
            "paths": self.queueViews(self.paths),
            "extensions": self.extensionViews(),
        }

    def agentViews(self) -> list[dict[str, Any]]:
        return [self.agents[k].view(self.names) for k in sorted(self.agents, key=id_key)]

    def queueViews(self, table: dict[str, Queue]) -> list[dict[str, Any]]:
        return [table[k].view(self.names) for k in sorted(table)]

    def extensionViews(self) -> list[dict[str, Any]]:
        return [self.extensions[k].view() for k in sorted(self.extensions, key=id_key)]


#: The log line of each call event, for an agent and for a set with no agent.
_AGENT_LINES = {code: "agent {agent} " + phrase for code, phrase in _PHRASES.items()}
_EXTENSION_LINES = {
    code: "extension {dn} (no agent) " + phrase for code, phrase in _PHRASES.items()
}


#: A carried agent's state, read from its legacy status alone.
_CARRIED_STATE: dict[LegacyStatus, AgentState] = {
    "out": "logged_out",
    "in": "available",
    "idle": "available",
    "busy": "on_call",
    "timer": "wrap_up",
}


def _attention(limits: Limits | None, since: float | None) -> dict[str, str | None] | None:
    """When an agent in this state since ``since`` passes the state's warning and alarm."""
    if limits is None or since is None:
        return None
    return {
        "warning_at": iso_utc(since + limits.warning),
        "alarm_at": iso_utc(since + limits.alarm),
    }


def _out_since(agent: Agent) -> float | None:
    """Since when an agent has had its status (for a carried one: since it was carried)."""
    return agent.since if agent.since is not None else agent.carried_since


def _entity_of(thing: Extension | None) -> Entity[None] | None:
    return None if thing is None else thing.entity()


@functools.lru_cache(maxsize=4096)
def _hhmmss(when: datetime.time) -> str:
    return when.strftime("%H%M%S")


def _is_mmss(raw: str) -> bool:
    return len(raw) == 4 and raw.isdigit()


@attrs.frozen
class SourceInput:
    """What one source's link tells the floor: :class:`FloorState`'s input, with its name.

    The protocols hold one of these where they would hold the floor, so that
    each link's connections, records and noise count for its own source.
    """

    floor: FloorState
    name: str

    def batch(self) -> contextlib.AbstractContextManager[None]:
        return self.floor.batch()

    def feedConnected(self, host: str, port: int) -> None:
        self.floor.feedConnected(host, port, self.name)

    def feedConnectFailed(self, host: str, port: int, reason: str) -> None:
        self.floor.feedConnectFailed(host, port, reason, self.name)

    def feedDisconnected(self, reason: str) -> None:
        self.floor.feedDisconnected(reason, self.name)

    def noiseReceived(self, raw: bytes, reason: str | None = None) -> None:
        self.floor.noiseReceived(raw, reason, self.name)

    def recordCut(self, raw: bytes) -> None:
        self.floor.recordCut(raw, self.name)

    def recordReceived(self, result: ParseResult) -> None:
        self.floor.recordReceived(result, self.name)
