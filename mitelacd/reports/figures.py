"""The day's figures per agent, path and group, counted live from the floor's change sets.

:class:`DayFigures` follows docs/reports.md: it reads the agent events and
queue reports that each change set carries (in order, with the agent as each
event left it), keeps running sums for the current 15-minute interval, the
report day and the whole run, and hands closed intervals and every agent
state change to a sink (the history). Each event costs a few dictionary
updates, whatever the size of the floor; an interval's end costs one pass
over the agents and queues active in it. Nothing here reads a clock: times
come from the change sets and from :meth:`DayFigures.advance`.
"""

from __future__ import annotations

import array
import datetime
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs
from zope.interface import implementer

from mitelacd.floor.changes import AgentStep, ChangeSet, IFloorListener, QueueStep
from mitelacd.floor.days import DayClock
from mitelacd.floor.names import AgentState
from mitelacd.floor.render import id_key, iso_utc
from mitelacd.reports.rows import (
    FIGURES,
    INTERVAL_SECONDS,
    IntervalRow,
    ReasonKind,
    RowKind,
    StateSpan,
    handling,
)

#: A U not followed by G, S or H on the same agent within this many seconds
#: is a call that rang and was not answered.
ANSWER_WINDOW = 2.0
#: A queue report stands for the queue until the next one, but no longer than this.
REPORT_HOLDS = 60.0
#: Codes that end wrap-up time besides M.
_WRAP_ENDERS = frozenset("MABGHIS")
_CALL_COUNTS = {"G": "acd_calls", "S": "acd_calls", "H": "personal_calls", "I": "outgoing_calls"}
_TALK = {"acd": "acd_talk_seconds", "personal": "personal_seconds", "outgoing": "outgoing_seconds"}
_STATE_FIGURE: dict[AgentState, str] = {
    "on_call": "state_on_call_seconds",
    "on_hold": "state_on_hold_seconds",
    "ringing": "state_ringing_seconds",
    "not_ready": "state_not_ready_seconds",
    "wrap_up": "state_wrap_up_seconds",
    "available": "state_available_seconds",
}

#: What the figures hand to the history: closed intervals, then agent state spans.
Sink = Callable[[Sequence[IntervalRow], Sequence[StateSpan]], None]


def parse_day_starts(text: str) -> datetime.time:
    """``HH:MM`` on a quarter hour, as ``--day-starts`` takes it; ValueError otherwise."""
    try:
        hours, minutes = text.split(":")
        when = datetime.time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"--day-starts must be HH:MM, not {text!r}") from None
    if when.minute % 15:
        raise ValueError(
            f"--day-starts must be on a quarter hour (:00, :15, :30 or :45), not {text}"
        )
    return when


#: Every figure's place in a :class:`Sums`: the figures of all kinds, by name.
_FIGURE_INDEX: dict[str, int] = {
    name: i
    for i, name in enumerate(sorted({f.name for figures in FIGURES.values() for f in figures}))
}
_NO_FIGURES = array.array("d", bytes(8 * len(_FIGURE_INDEX)))
#: Shared by every Sums without reasons: it is replaced, never changed.
_NO_REASONS: dict[tuple[ReasonKind, int | None], float] = {}


class Sums:
    """Running sums of one agent, path or group over one span (interval, day or run).

    There are three for each agent, path and group, so they are small: the
    figures in an array of doubles made at the first addition (with a bit
    for each figure added to), the reasons in a dict made at the first one.
    """

    __slots__ = ("_present", "_values", "reasons")

    def __init__(self) -> None:
        self._values: array.array[float] | None = None
        self._present = 0
        self.reasons: dict[tuple[ReasonKind, int | None], float] = _NO_REASONS

    def _slot(self, name: str) -> int:
        if self._values is None:
            self._values = array.array("d", _NO_FIGURES)
        return _FIGURE_INDEX[name]

    def add(self, name: str, amount: float) -> None:
        i = self._slot(name)
        self._values[i] += amount  # type: ignore[index]
        self._present |= 1 << i

    def peak(self, name: str, value: float) -> bool:
        i = self._slot(name)
        values = self._values
        assert values is not None
        if self._present >> i & 1 and values[i] >= value:
            return False
        values[i] = value
        self._present |= 1 << i
        return True

    def get(self, name: str, default: float = 0) -> float:
        """The figure, or ``default`` when nothing was added to it."""
        i = _FIGURE_INDEX[name]
        if self._present >> i & 1:
            return self._values[i]  # type: ignore[index]
        return default

    @property
    def empty(self) -> bool:
        """No figure was added to."""
        return not self._present

    @property
    def figures(self) -> dict[str, float]:
        """The figures added to, by name (a copy)."""
        values, present = self._values, self._present
        if values is None:
            return {}
        return {name: values[i] for name, i in _FIGURE_INDEX.items() if present >> i & 1}

    def add_reason(self, key: tuple[ReasonKind, int | None], amount: float) -> None:
        reasons = self.reasons
        if reasons is _NO_REASONS:
            reasons = self.reasons = {}
        reasons[key] = reasons.get(key, 0) + amount

    def clear(self) -> None:
        # Given back: an interval's sums are empty most of the time.
        self._values = None
        self._present = 0
        self.reasons = _NO_REASONS

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sums):
            return NotImplemented
        return self.figures == other.figures and self.reasons == other.reasons

    def __repr__(self) -> str:
        return f"Sums(figures={self.figures!r}, reasons={self.reasons!r})"


@attrs.define
class _Tally:
    """The interval's, the day's and the run's sums of one thing, added to together."""

    kind: RowKind
    id: str
    interval: Sums = attrs.Factory(Sums)
    today: Sums = attrs.Factory(Sums)
    total: Sums = attrs.Factory(Sums)

    def add(self, name: str, amount: float) -> None:
        # Sums.add three times over, written out: every record of the feed
        # adds to a few figures, and the calls were a third of the listener's time.
        i = _FIGURE_INDEX[name]
        bit = 1 << i
        for sums in (self.interval, self.today, self.total):
            values = sums._values
            if values is None:
                values = sums._values = array.array("d", _NO_FIGURES)
            values[i] += amount
            sums._present |= bit

    def add_reason(self, key: tuple[ReasonKind, int | None], amount: float) -> None:
        self.interval.add_reason(key, amount)
        self.today.add_reason(key, amount)
        self.total.add_reason(key, amount)


@attrs.define
class _CallTrack:
    kind: str
    path: str | None
    held: bool
    #: Start of the stretch not yet counted, or None while the agent is not seen today.
    since: float | None


@attrs.define
class _AgentTrack(_Tally):
    #: An event for the agent has been seen in the current report day.
    seen: bool = False
    first_seen: float | None = None
    # The agent as the last event left it.
    state: AgentState | None = None
    logged_in: bool = False
    dnd: bool = False
    dnd_reason: int | None = None
    make_busy: bool = False
    make_busy_reason: int | None = None
    wrapping: bool = False
    calls: dict[int, _CallTrack] = attrs.Factory(dict)
    #: The path of the last ACD call answered (G or S) that named one.
    last_path: str | None = None
    #: The path the wrap-up under way belongs to: ``last_path`` at its L.
    wrap_path: str | None = None
    # Starts of the stretches not yet counted (None: not running or not seen today).
    login_at: float | None = None
    dnd_at: float | None = None
    busy_at: float | None = None
    wrap_at: float | None = None
    state_at: float | None = None
    # The state span under way, as the history keeps it.
    span_start: float | None = None
    span_reason: int | None = None
    span_path: str | None = None
    span_button: int | None = None
    #: Times of U events waiting to see whether G, S or H follows.
    unanswered: list[float] = attrs.Factory(list)


@attrs.define
class _QueueTrack(_Tally):
    waiting: int | None = None
    #: When the standing report came, and how far its time is counted.
    reported_at: float | None = None
    counted_to: float | None = None
    max_waiting_at: float | None = None


@implementer(IFloorListener)
class DayFigures:
    """The §7 figures of the current report day, kept live; closed intervals go to ``sink``."""

    def __init__(
        self,
        day_starts: datetime.time = datetime.time(0, 0),
        tz: datetime.tzinfo | None = None,
        sink: Sink | None = None,
    ) -> None:
        self.days = DayClock(day_starts, tz)
        self.sink = sink
        self.agents: dict[str, _AgentTrack] = {}
        self.paths: dict[str, _QueueTrack] = {}
        self.groups: dict[str, _QueueTrack] = {}
        #: The current interval and report day; None until the first time is known.
        self.interval_start: int | None = None
        self.interval_end: float = float("inf")
        self.day: datetime.date | None = None
        self.day_start: float | None = None
        self.day_end: float = float("inf")
        #: What was active in the current interval: the rows it will close with.
        self._active_agents: dict[str, _AgentTrack] = {}
        self._active_queues: dict[tuple[RowKind, str], _QueueTrack] = {}
        self._pending: deque[tuple[float, float, _AgentTrack]] = deque()
        self._spans: list[StateSpan] = []
        #: The latest time the figures have been brought to.
        self.now: float | None = None

    # Input ------------------------------------------------------------------

    def floorChanged(self, changes: ChangeSet) -> None:
        for step in changes.steps:
            self.advance(step.at)
            if isinstance(step, AgentStep):
                self._agent_step(step)
            else:
                self._queue_step(step)
        self._emit_spans()

    def advance(self, now: float) -> None:
        """Bring the figures to ``now``: close the intervals and days it has passed."""
        if self.now is not None and now < self.now:
            # The clock went back: count nothing backwards.
            now = self.now
        if self.interval_start is None:
            self._open_interval(now)
        while now >= self.interval_end:
            boundary = self.interval_end
            self._resolve_unanswered(boundary)
            self._close_interval(boundary, "day" if boundary >= self.day_end else None)
        self._resolve_unanswered(now)
        self.now = now

    def finish(self, now: float) -> None:
        """The daemon stops: count up to ``now`` and hand over the part of the interval seen."""
        self.advance(now)
        self._resolve_unanswered(float("inf"))
        self._close_interval(now, "stop")
        self._emit_spans()

    def seed(self, rows: Iterable[IntervalRow]) -> None:
        """Add rows of the current day kept by an earlier run (history) to today's sums."""
        for row in rows:
            if self.day is None or row.day != self.day.isoformat():
                continue
            tally = self._lookup(row.kind, row.id)
            for figure in FIGURES[row.kind]:
                value = row.figures.get(figure.name, 0)
                if figure.combine == "max":
                    tally.today.peak(figure.name, value)
                else:
                    tally.today.add(figure.name, value)
            for key, seconds in row.reasons.items():
                tally.today.add_reason(key, seconds)
            if isinstance(tally, _AgentTrack) and tally.first_seen is None:
                tally.first_seen = row.interval_start

    # Agents -----------------------------------------------------------------

    def _agent_step(self, step: AgentStep) -> None:
        t = step.at
        agent = self.agents.get(step.agent)
        if agent is None:
            agent = self.agents[step.agent] = _AgentTrack("agent", step.agent)
        if not agent.seen:
            self._see(agent, t)
        self._active_agents[step.agent] = agent
        code = step.code
        # Logged in.
        if step.logged_in and not agent.logged_in:
            agent.login_at = t
        elif agent.logged_in and not step.logged_in:
            self._count_login(agent, t)
            agent.login_at = None
        # DND and make busy, by reason.
        if agent.dnd and (not step.dnd or step.dnd_reason != agent.dnd_reason):
            self._count_not_ready(agent, "dnd", t)
            agent.dnd_at = None
        if step.dnd and agent.dnd_at is None:
            agent.dnd_at = t
        if agent.make_busy and (
            not step.make_busy or step.make_busy_reason != agent.make_busy_reason
        ):
            self._count_not_ready(agent, "make_busy", t)
            agent.busy_at = None
        if step.make_busy and agent.busy_at is None:
            agent.busy_at = t
        # Wrap-up: L to M, or to the next A, B, G, H, I or S; it belongs to
        # the path of the last ACD call answered before it.
        if code == "L":
            if not agent.wrapping:
                agent.add("wrap_ups", 1)
                agent.wrap_at = t
                agent.wrap_path = agent.last_path
            wrapping = True
        else:
            wrapping = agent.wrapping and code not in _WRAP_ENDERS and step.logged_in
            if agent.wrapping and not wrapping:
                self._count_wrap(agent, t)
                agent.wrap_at = None
                agent.wrap_path = None
        # Calls by key.
        self._calls(agent, step, t)
        if code in "GS" and step.path is not None:
            agent.last_path = step.path
        # Rang, not answered.
        if code == "U":
            agent.unanswered.append(t)
            self._pending.append((t + ANSWER_WINDOW, t, agent))
        elif code in "GSH" and agent.unanswered:
            agent.unanswered = [u for u in agent.unanswered if u + ANSWER_WINDOW < t]
        # The board state, and the span of it the history keeps.
        if step.state != agent.state:
            if agent.state is not None and agent.state_at is not None:
                self._count_state(agent, t)
            if agent.state is not None and agent.span_start is not None:
                self._spans.append(
                    StateSpan(
                        agent.id,
                        agent.state,
                        step.state,
                        agent.span_start,
                        t,
                        code,
                        agent.span_reason,
                        agent.span_path,
                        agent.span_button,
                    )
                )
            agent.state_at = agent.span_start = t
            self._describe_span(agent, step)
        agent.state = step.state
        agent.logged_in = step.logged_in
        agent.dnd, agent.dnd_reason = step.dnd, step.dnd_reason
        agent.make_busy, agent.make_busy_reason = step.make_busy, step.make_busy_reason
        agent.wrapping = wrapping

    def _see(self, agent: _AgentTrack, t: float) -> None:
        """The agent's first event of the day: its figures count from here."""
        agent.seen = True
        if agent.first_seen is None:
            agent.first_seen = t
        if agent.logged_in:
            agent.login_at = t
        if agent.dnd:
            agent.dnd_at = t
        if agent.make_busy:
            agent.busy_at = t
        if agent.wrapping:
            agent.wrap_at = t
        if agent.state is not None:
            agent.state_at = agent.span_start = t
        for call in agent.calls.values():
            call.since = t

    def _calls(self, agent: _AgentTrack, step: AgentStep, t: float) -> None:
        tracks = agent.calls
        now_on = {call.button: call for call in step.calls}
        code = step.code
        started = _CALL_COUNTS.get(code)
        if started is not None:
            key = step.button or 0
            old = tracks.pop(key, None)
            if old is not None:
                self._count_call(agent, old, t)
            call = now_on.get(key)
            if call is not None:
                tracks[key] = _CallTrack(call.kind, call.path, call.held, t)
            agent.add(started, 1)
            if started == "acd_calls" and step.path is not None:
                self._tally("path", step.path).add("acd_calls", 1)
        for key in [k for k in tracks if k not in now_on]:
            self._count_call(agent, tracks.pop(key), t)
        for key, call in now_on.items():
            track = tracks.get(key)
            if track is None:
                # First seen through N or O: a call of unknown kind.
                tracks[key] = _CallTrack(call.kind, call.path, call.held, t)
                if call.held:
                    agent.add("holds", 1)
            elif call.held != track.held:
                self._count_call(agent, track, t)
                track.held = call.held
                track.since = t
                if call.held:
                    agent.add("holds", 1)

    def _describe_span(self, agent: _AgentTrack, step: AgentStep) -> None:
        reason = path = button = None
        match step.state:
            case "not_ready":
                reason = step.make_busy_reason if step.make_busy else step.dnd_reason
            case "on_call" | "on_hold":
                held = step.state == "on_hold"
                calls = [c for c in step.calls if c.held == held]
                mine = [c for c in calls if c.button == (step.button or 0)]
                if mine or calls:
                    call = (mine or calls)[0]
                    path, button = call.path, call.button
            case "ringing":
                button = step.ringing
            case _:
                pass
        agent.span_reason, agent.span_path, agent.span_button = reason, path, button

    def _resolve_unanswered(self, until: float) -> None:
        pending = self._pending
        while pending and pending[0][0] < until:
            _, rang, agent = pending.popleft()
            if rang in agent.unanswered:
                agent.unanswered.remove(rang)
                agent.add("rang_unanswered", 1)
                self._active_agents[agent.id] = agent

    # Counting stretches ----------------------------------------------------

    def _count_login(self, agent: _AgentTrack, t: float) -> None:
        if agent.login_at is not None:
            agent.add("logged_in_seconds", max(0.0, t - agent.login_at))

    def _count_not_ready(self, agent: _AgentTrack, kind: ReasonKind, t: float) -> None:
        since = agent.dnd_at if kind == "dnd" else agent.busy_at
        if since is None:
            return
        seconds = max(0.0, t - since)
        agent.add("dnd_seconds" if kind == "dnd" else "make_busy_seconds", seconds)
        reason = agent.dnd_reason if kind == "dnd" else agent.make_busy_reason
        agent.add_reason((kind, reason), seconds)

    def _count_wrap(self, agent: _AgentTrack, t: float) -> None:
        if agent.wrap_at is None:
            return
        seconds = max(0.0, t - agent.wrap_at)
        agent.add("wrap_up_seconds", seconds)
        if agent.wrap_path is not None:
            self._tally("path", agent.wrap_path).add("wrap_up_seconds", seconds)

    def _count_state(self, agent: _AgentTrack, t: float) -> None:
        figure = _STATE_FIGURE.get(agent.state) if agent.state is not None else None
        if figure is not None and agent.state_at is not None:
            agent.add(figure, max(0.0, t - agent.state_at))

    def _count_call(self, agent: _AgentTrack, call: _CallTrack, t: float) -> None:
        if call.since is None:
            return
        seconds = max(0.0, t - call.since)
        if call.held:
            agent.add("hold_seconds", seconds)
            if call.kind == "acd" and call.path is not None:
                self._tally("path", call.path).add("hold_seconds", seconds)
            return
        figure = _TALK.get(call.kind)
        if figure is None:
            return
        agent.add(figure, seconds)
        if call.kind == "acd" and call.path is not None:
            self._tally("path", call.path).add("acd_talk_seconds", seconds)

    def _count_open(self, agent: _AgentTrack, t: float) -> None:
        """Count every stretch under way up to ``t`` and go on from there."""
        self._count_login(agent, t)
        if agent.login_at is not None:
            agent.login_at = t
        if agent.dnd_at is not None:
            self._count_not_ready(agent, "dnd", t)
            agent.dnd_at = t
        if agent.busy_at is not None:
            self._count_not_ready(agent, "make_busy", t)
            agent.busy_at = t
        if agent.wrap_at is not None:
            self._count_wrap(agent, t)
            agent.wrap_at = t
        if agent.state_at is not None:
            self._count_state(agent, t)
            agent.state_at = t
        for call in agent.calls.values():
            if call.since is not None:
                self._count_call(agent, call, t)
                call.since = t

    def _running(self, agent: _AgentTrack) -> bool:
        return agent.seen and (agent.logged_in or bool(agent.calls))

    # Queues -----------------------------------------------------------------

    def _queue_step(self, step: QueueStep) -> None:
        kind: RowKind = step.kind
        queue = self._tally(kind, step.number)
        assert isinstance(queue, _QueueTrack)
        self._count_queue(queue, step.at)
        queue.add("reports", 1)
        self._active_queues[(kind, step.number)] = queue
        queue.waiting = step.waiting
        queue.reported_at = queue.counted_to = step.at
        if step.waiting is not None:
            for sums in (queue.interval, queue.today, queue.total):
                if sums.peak("max_waiting", step.waiting) and sums is queue.today:
                    queue.max_waiting_at = step.at
        if step.longest_seconds is not None:
            for sums in (queue.interval, queue.today, queue.total):
                sums.peak("max_longest_wait_seconds", step.longest_seconds)

    def _count_queue(self, queue: _QueueTrack, t: float) -> None:
        if queue.reported_at is None or queue.counted_to is None or queue.waiting is None:
            return
        end = min(t, queue.reported_at + REPORT_HOLDS)
        seconds = end - queue.counted_to
        if seconds > 0:
            queue.add("covered_seconds", seconds)
            queue.add("waiting_seconds", queue.waiting * seconds)
            queue.counted_to = end

    def _lookup(self, kind: RowKind, key: str) -> _Tally:
        if kind == "agent":
            agent = self.agents.get(key)
            if agent is None:
                agent = self.agents[key] = _AgentTrack("agent", key)
            return agent
        table = self.paths if kind == "path" else self.groups
        queue = table.get(key)
        if queue is None:
            queue = table[key] = _QueueTrack(kind, key)
        return queue

    def _tally(self, kind: RowKind, key: str) -> _Tally:
        """The tally of ``key``, active in the current interval."""
        tally = self._lookup(kind, key)
        if isinstance(tally, _QueueTrack):
            self._active_queues[(kind, key)] = tally
        return tally

    # Intervals and days -----------------------------------------------------

    def _open_interval(self, now: float) -> None:
        days = self.days
        day = days.day(now)
        if day != self.day:
            self.day = day
            self.day_start = days.day_start(day)
            self.day_end = days.day_start(day + datetime.timedelta(days=1))
        start = days.interval_start(now)
        self.interval_start = start
        self.interval_end = min(float(start + INTERVAL_SECONDS), self.day_end)

    def _close_interval(self, end: float, why: str | None) -> None:
        """Count up to ``end``, hand the interval's rows over and start the next.

        ``why`` is ``"day"`` when the report day ends there (every agent's
        figures then wait for its next event), ``"stop"`` when the daemon
        stops, None at a plain interval's end.
        """
        assert self.interval_start is not None and self.day is not None
        start, day = self.interval_start, self.day.isoformat()
        hour = self.days.hour_start(start)
        rows: list[IntervalRow] = []
        for agent in self._active_agents.values():
            self._count_open(agent, end)
            rows.append(self._row(agent, day, start, hour))
        for queue in self._active_queues.values():
            self._count_queue(queue, end)
            rows.append(self._row(queue, day, start, hour))
        still_agents = {k: a for k, a in self._active_agents.items() if self._running(a)}
        still_queues = {
            k: q
            for k, q in self._active_queues.items()
            if q.reported_at is not None and q.reported_at + REPORT_HOLDS > end
        }
        if why is not None:
            for agent in still_agents.values():
                if agent.state is not None and agent.span_start is not None:
                    self._spans.append(
                        StateSpan(
                            agent.id,
                            agent.state,
                            agent.state,
                            agent.span_start,
                            end,
                            why,
                            agent.span_reason,
                            agent.span_path,
                            agent.span_button,
                        )
                    )
                    agent.span_start = end
        if why == "day":
            self._new_day()
            still_agents = {}
        self._active_agents = still_agents
        self._active_queues = still_queues
        if why == "stop":
            self.interval_start = None
            self.interval_end = float("inf")
        else:
            self._open_interval(end)
        if rows and self.sink is not None:
            self.sink(rows, ())

    def _new_day(self) -> None:
        """Every agent waits for its first event of the new day; today's sums start again."""
        for agent in self.agents.values():
            agent.seen = False
            agent.first_seen = None
            agent.login_at = agent.dnd_at = agent.busy_at = agent.wrap_at = None
            agent.state_at = agent.span_start = None
            for call in agent.calls.values():
                call.since = None
            agent.unanswered.clear()
            agent.today.clear()
        for queue in (*self.paths.values(), *self.groups.values()):
            queue.today.clear()
            queue.max_waiting_at = None

    def _row(self, tally: _Tally, day: str, start: int, hour: int) -> IntervalRow:
        sums = tally.interval
        figures: dict[str, int | float] = {}
        for figure in FIGURES[tally.kind]:
            value = sums.get(figure.name)
            figures[figure.name] = int(value) if figure.integer else round(value, 3)
        row = IntervalRow(tally.kind, tally.id, day, start, hour, figures, dict(sums.reasons))
        sums.clear()
        return row

    def _emit_spans(self) -> None:
        if self._spans:
            spans, self._spans = self._spans, []
            if self.sink is not None:
                self.sink((), spans)

    # Views ------------------------------------------------------------------

    def today(self, kind: RowKind, now: float, interval: bool = False) -> list[dict[str, Any]]:
        """Today's (or the current interval's) figures up to ``now``, one dict per id.

        Stretches under way are counted up to ``now`` without being closed.
        """
        self.advance(now)
        shadow = _Shadow()
        extras: dict[str, Sums] = {}
        table: Mapping[str, _Tally]
        if kind == "agent":
            table = self.agents
            for key, agent in self.agents.items():
                if agent.seen:
                    extras[key] = shadow.under_way(agent, now)
        elif kind == "path":
            table = self.paths
            for agent in self.agents.values():
                if agent.calls or agent.wrap_at is not None:
                    shadow.under_way(agent, now)
            extras = shadow.paths_under_way
        else:
            table = self.groups
        out = []
        for key in sorted(table, key=id_key):
            tally = table[key]
            sums = tally.interval if interval else tally.today
            extra = extras.get(key) or Sums()
            if isinstance(tally, _QueueTrack):
                _queue_under_way(tally, now, extra)
            if sums.empty and extra.empty:
                continue
            out.append(_view(tally, sums, extra))
        return out

    def current_rows(self, now: float) -> list[IntervalRow]:
        """The interval under way as rows, counted up to ``now`` without closing anything."""
        self.advance(now)
        if self.interval_start is None or self.day is None:
            return []
        start, day = self.interval_start, self.day.isoformat()
        hour = self.days.hour_start(start)
        shadow = _Shadow()
        rows = []
        for agent in self._active_agents.values():
            extra = shadow.under_way(agent, now) if agent.seen else Sums()
            rows.append(_peek_row(agent, extra, day, start, hour))
        for agent in self.agents.values():
            if (agent.calls or agent.wrap_at is not None) and agent.id not in self._active_agents:
                shadow.under_way(agent, now)
        for (kind, key), queue in self._active_queues.items():
            extra = shadow.paths_under_way.get(key, Sums()) if kind == "path" else Sums()
            _queue_under_way(queue, now, extra)
            rows.append(_peek_row(queue, extra, day, start, hour))
        return rows

    def totals(self, kind: RowKind) -> Iterator[tuple[str, Sums]]:
        """The run's sums by id: counts and seconds only grow (for Prometheus counters)."""
        table: Mapping[str, _Tally]
        if kind == "agent":
            table = self.agents
        else:
            table = self.paths if kind == "path" else self.groups
        for key, tally in table.items():
            yield key, tally.total


class _Shadow(DayFigures):
    """Counts what stretches under way add up to a time, on copies: nothing real moves."""

    def __init__(self) -> None:
        super().__init__()
        self.paths_under_way: dict[str, Sums] = {}

    def under_way(self, agent: _AgentTrack, now: float) -> Sums:
        probe = _AgentTrack(
            "agent",
            agent.id,
            state=agent.state,
            dnd_reason=agent.dnd_reason,
            make_busy_reason=agent.make_busy_reason,
            calls={k: attrs.evolve(c) for k, c in agent.calls.items()},
            login_at=agent.login_at,
            dnd_at=agent.dnd_at,
            busy_at=agent.busy_at,
            wrap_at=agent.wrap_at,
            wrap_path=agent.wrap_path,
            state_at=agent.state_at,
        )
        self._count_open(probe, now)
        return probe.interval

    def _tally(self, kind: RowKind, key: str) -> _Tally:
        sums = self.paths_under_way.get(key)
        if sums is None:
            sums = self.paths_under_way[key] = Sums()
        return _Into(kind, key, into=sums)


@attrs.define
class _Into(_Tally):
    """A tally whose every addition lands in one given :class:`Sums`."""

    into: Sums = attrs.Factory(Sums)

    def add(self, name: str, amount: float) -> None:
        self.into.add(name, amount)

    def add_reason(self, key: tuple[ReasonKind, int | None], amount: float) -> None:
        self.into.add_reason(key, amount)


def _queue_under_way(queue: _QueueTrack, now: float, into: Sums) -> None:
    if queue.reported_at is None or queue.counted_to is None or queue.waiting is None:
        return
    seconds = min(now, queue.reported_at + REPORT_HOLDS) - queue.counted_to
    if seconds > 0:
        into.add("covered_seconds", seconds)
        into.add("waiting_seconds", queue.waiting * seconds)


def _peek_row(tally: _Tally, extra: Sums, day: str, start: int, hour: int) -> IntervalRow:
    sums = tally.interval
    figures: dict[str, int | float] = {}
    for figure in FIGURES[tally.kind]:
        value = sums.get(figure.name)
        if figure.combine == "sum":
            value += extra.get(figure.name)
        figures[figure.name] = int(value) if figure.integer else round(value, 3)
    reasons = dict(sums.reasons)
    for key, seconds in extra.reasons.items():
        reasons[key] = reasons.get(key, 0) + seconds
    return IntervalRow(tally.kind, tally.id, day, start, hour, figures, reasons)


def _view(tally: _Tally, sums: Sums, extra: Sums) -> dict[str, Any]:
    view: dict[str, Any] = {"id": tally.id}
    for figure in FIGURES[tally.kind]:
        value = sums.get(figure.name)
        if figure.combine == "sum":
            value += extra.get(figure.name)
        view[figure.name] = int(value) if figure.integer else round(value, 3)
    if tally.kind in ("agent", "path"):
        calls = view["acd_calls"]
        view["acd_talk_average_seconds"] = (
            round(view["acd_talk_seconds"] / calls, 3) if calls else None
        )
        # From the figures just shown, what is under way included.
        view.update(handling(tally.kind, view))
    if isinstance(tally, _AgentTrack):
        view["not_ready_seconds"] = round(view["dnd_seconds"] + view["make_busy_seconds"], 3)
        view["first_seen"] = iso_utc(tally.first_seen)
        reasons: dict[tuple[ReasonKind, int | None], float] = dict(sums.reasons)
        for key, seconds in extra.reasons.items():
            reasons[key] = reasons.get(key, 0) + seconds
        for kind in ("dnd", "make_busy"):
            view[f"{kind}_by_reason"] = [
                {"reason": reason, "seconds": round(seconds, 3)}
                for (k, reason), seconds in sorted(
                    reasons.items(), key=lambda item: (item[0][1] is None, item[0][1] or 0)
                )
                if k == kind
            ]
    else:
        assert isinstance(tally, _QueueTrack)
        covered = view["covered_seconds"]
        view["mean_waiting"] = round(view["waiting_seconds"] / covered, 3) if covered else None
        view["max_waiting_at"] = iso_utc(tally.max_waiting_at)
    return view
