"""The fake ICP's call-centre floor: who logs in, who rings, who talks on which key.

A pure, seeded model. The floor decides (agents log in, are rung, answer,
hold, consult, wrap up, take breaks; callers queue and give up), tells a
:class:`~mitelacd.sim.wire.Wire` each event as the PBX would report it, and
keeps each agent's state the way state-model.md §3 (v2) says a listener
must: flags, the ringing key, and the calls by key (button). An agent's
legacy status (§4) is therefore the ground truth for that agent.

Choices where the protocol documents are silent:

* ACD calls ring and are answered on key 1. Outgoing calls, personal calls
  and consultations use other keys, some above 3.
* Some paths are remote (networked ACD): their calls are answered with S
  instead of G, in the same layout.
* Some groups and paths report K/Q without the 7 trailing digits.
* A call queued on a path counts as waiting in every group serving the path.
* A call that is ringing an agent is not waiting; if nobody answers it goes
  back to the head of its queue.
* The state change an event reports is made right after sending it, so an
  event budget that runs out mid-action leaves the floor as the wire left it.

A :class:`CallWatch` given as :attr:`Floor.watch` (the callers of
:mod:`mitelacd.sim.callers`) is told what becomes of each caller, right
after the event that shows it has gone out; it draws nothing from the
floor's random numbers and changes nothing on the floor.

Given several wires, the floor is a site of several controllers
(:mod:`mitelacd.sim.controllers` says how it splits): each agent and each
set is on one controller, whose wire hears its events; an agent logs in
only at a set of its own controller; each caller arrives on one
controller; :meth:`Floor.figures` gives each controller's K and Q; and a
:class:`~mitelacd.sim.controllers.FailoverPlan` moves agents (and their
sets) to another controller. With one wire none of this draws a random
number: the day is the same as a floor of one controller always had.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

import attrs

from mitelacd.floor.legacy import LegacyStatus
from mitelacd.sim.controllers import FailoverPlan, LastEvent, Move
from mitelacd.sim.schedule import Scheduler
from mitelacd.sim.wire import Wire

#: The key ACD calls ring and are answered on.
LINE_ACD = 1
#: Keys for outgoing calls, personal calls and consultations; some above 3.
OUT_KEYS = (2, 2, 4, 5)
PERSONAL_KEYS = (3, 3, 5, 6)
CONSULT_KEYS = (2, 4, 6)
#: Keys of calls made or taken at a set nobody is logged in at.
LINE_OUT, LINE_PERSONAL = 2, 3
MAX_QUEUE = 20  # callers beyond this on one path get a busy tone instead

CallKind = Literal["acd", "personal", "outgoing"]


def group_numbers(count: int) -> list[str]:
    """610, 620, ... as 3-digit strings; past 990 they wrap to 000, 010, ..."""
    return [f"{(610 + 10 * i) % 1000:03d}" for i in range(count)]


def path_numbers(count: int) -> list[str]:
    """860, 861, ...; the third path is 007 so a leading zero is on the wire by default."""
    return ["007" if i == 2 else f"{860 + i:03d}" for i in range(count)]


@attrs.frozen
class FloorPlan:
    """Who is where: fixed for a script's lifetime, public so tests can check K/Q figures."""

    groups: dict[str, tuple[str, ...]]  # group number -> agent IDs
    paths: dict[str, tuple[str, ...]]  # path number -> serving group numbers
    home_dns: dict[str, str]  # agent ID -> the set it normally logs in at
    spare_dns: tuple[str, ...]  # sets no agent calls home
    #: Paths whose calls come from another system of a networked ACD: answered as S.
    remote_paths: frozenset[str] = frozenset()
    #: Groups and paths whose reports carry no trailing digits.
    short_groups: frozenset[str] = frozenset()
    short_paths: frozenset[str] = frozenset()
    #: The controller (index, 0: the first) each agent starts the day on; all 0 with one.
    controllers: dict[str, int] = attrs.Factory(dict)


@attrs.define
class Line:
    """A call on one key of a set; an ACD call keeps its caller."""

    kind: CallKind
    held: bool = False
    caller: Caller | None = None


@attrs.define(eq=False)
class Agent:
    """One agent, in the terms of state-model §3 (v2)."""

    index: int
    agent_id: str
    group: str
    home: str
    dn: str | None = None
    logged_in: bool = False
    dnd: bool = False
    make_busy: bool = False
    wrap_up: bool = False
    fresh: bool = False  # logged in and nothing else named this agent since
    ringing: int | None = None  # the key that rings
    calls: dict[int, Line] = attrs.Factory(dict)  # key -> the call on it
    epoch: int = 0  # bumped when plans change; stale timers check it
    idle_since: float = 0.0
    shift_end: float = 0.0
    controller: int = 0  # the controller it logs in on (index)
    ring_caller: Caller | None = None  # the caller whose call rings it

    @property
    def available(self) -> bool:
        """Free to be rung for an ACD call."""
        return (
            self.logged_in
            and not self.calls
            and self.ringing is None
            and not (self.dnd or self.make_busy or self.wrap_up)
        )

    def status(self) -> LegacyStatus:
        """The legacy value, in the order of state-model §4."""
        if not self.logged_in:
            return "out"
        if self.calls or self.ringing is not None or self.dnd or self.make_busy:
            return "busy"
        if self.wrap_up:
            return "timer"
        return "in" if self.fresh else "idle"

    def clear(self) -> None:
        """What A and B clear: every flag, ringing and every call."""
        self.dnd = self.make_busy = self.wrap_up = self.fresh = False
        self.ringing = self.ring_caller = None
        self.calls.clear()


@attrs.define(eq=False)
class _Set:
    dn: str
    occupant: Agent | None = None
    dnd: bool = False  # DND left on the set while nobody is logged in
    ext_busy: bool = False  # an extension (blank agent) call or DND is running
    controller: int = 0  # the controller the set is on (index)
    reserved: bool = False  # kept for an agent failing over to it


@attrs.define(eq=False)
class Caller:
    """A caller on a path: when it arrived, when it will give up, its place in the queue."""

    path: str
    arrived: float
    give_up: float
    order: tuple[float, int]
    queued: bool = True
    controller: int = 0  # the controller it arrived on (index)


class CallWatch(Protocol):
    """What is told what becomes of the floor's callers (see the module notes)."""

    def arrived(self, t: float, caller: Caller) -> None:
        """``caller`` joined its path's queue."""

    def turned_away(self, t: float, path: str, controller: int = 0) -> None:
        """A caller on ``controller`` found the queue of ``path`` full and was not queued."""

    def requeued(self, t: float, caller: Caller, agent: Agent) -> None:
        """``agent`` was rung and did not answer: ``caller`` is back at the head of the queue."""

    def answered(self, t: float, caller: Caller, agent: Agent) -> None:
        """``agent`` answered ``caller`` (G or S has gone out)."""

    def ended(self, t: float, caller: Caller) -> None:
        """The conversation with ``caller`` is over (J, L or P has gone out)."""

    def gave_up(self, t: float, caller: Caller) -> None:
        """``caller`` left the queue, or hung up while an agent's set rang."""


class Frozen(Exception):
    """Raised when the event budget is spent: the rest of the action is not sent."""


Figures = dict[str, tuple[int, int, float]]  # number -> waiting, agents, longest wait


class Floor:
    """The agents, sets and queues, and every decision they make."""

    def __init__(
        self,
        rng: random.Random,
        schedule: Scheduler,
        wire: Wire | Sequence[Wire],
        agents: int = 40,
        groups: int = 4,
        paths: int = 3,
        events: int | None = None,
    ) -> None:
        """``wire``: the controller's wire, or one wire per controller of a site."""
        self._rng, self._schedule = rng, schedule
        self._wires = [wire] if isinstance(wire, Wire) else list(wire)
        if not 1 <= len(self._wires) <= agents:
            raise ValueError("need one wire or more, and no more wires than agents")
        #: Several controllers (see the module notes).
        self.several = len(self._wires) > 1
        self.events = events
        self.sent = 0
        #: The floor's own count of what it made happen: (agent ID, code) -> events,
        #: and ACD calls answered by path. The ground truth of the day's figures.
        self.events_by_agent: dict[tuple[str, str], int] = {}
        self.answered_by_path: dict[str, int] = {}
        #: The last event each controller's wire sent for each agent: (agent ID, controller).
        self.last_events: dict[tuple[str, int], LastEvent] = {}
        #: Agents that logged out on one controller and in on another, in order.
        self.moves: list[Move] = []
        self.frozen = events == 0
        #: Told what becomes of each caller; see the module notes.
        self.watch: CallWatch | None = None
        taken: set[str] = set()  # membership only, never iterated: keeps runs reproducible
        ids = [self._number(4 + i % 4, taken) for i in range(agents)]
        homes = [self._number(rng.choice((4, 4, 5, 6, 7)), taken) for _ in range(agents)]
        spares = tuple(self._number(4, taken) for _ in range(max(2, agents // 8)))
        gnums, pnums = group_numbers(groups), path_numbers(paths)
        serving = {p: [gnums[j % groups]] for j, p in enumerate(pnums)}
        for i, g in enumerate(gnums):  # every group serves some path
            if g not in serving[pnums[i % paths]]:
                serving[pnums[i % paths]].append(g)
        self.agents = [Agent(i, ids[i], gnums[i % groups], homes[i]) for i in range(agents)]
        self.by_id = {a.agent_id: a for a in self.agents}
        count = len(self._wires)
        for a in self.agents:  # each group's agents dealt in turn, from the group's own start
            a.controller = (a.index // groups + a.index % groups) % count
        self._members = {g: [a for a in self.agents if a.group == g] for g in gnums}
        self.plan = FloorPlan(
            groups={g: tuple(a.agent_id for a in members) for g, members in self._members.items()},
            paths={p: tuple(gs) for p, gs in serving.items()},
            home_dns={a.agent_id: a.home for a in self.agents},
            spare_dns=spares,
            remote_paths=frozenset(p for i, p in enumerate(pnums) if i % 3 == 1),
            short_groups=frozenset(g for i, g in enumerate(gnums) if i % 2 == 1),
            short_paths=frozenset(p for i, p in enumerate(pnums) if i % 2 == 0),
            controllers={a.agent_id: a.controller for a in self.agents},
        )
        self._sets = {dn: _Set(dn, dnd=rng.random() < 0.2) for dn in homes + list(spares)}
        for a in self.agents:
            self._sets[a.home].controller = a.controller
        for i, dn in enumerate(spares):
            self._sets[dn].controller = i % count
        self._queues: dict[str, list[Caller]] = {p: [] for p in pnums}
        # Callers per second: enough to keep about half the floor on calls.
        self._rate = 0.5 * agents / 180.0 / paths
        for a in self.agents:  # staggered start of day, a few on a late shift
            late = rng.random() < 0.15
            self._later(a, rng.randint(1800, 7200) if late else rng.randint(1, 180), self._login)
        for p in pnums:
            schedule.at(self._gap(self._rate), self.arrive, p)
        schedule.at(rng.randint(30, 300), self._extension)

    def _number(self, width: int, taken: set[str]) -> str:
        while True:
            s = str(self._rng.randrange(10 ** (width - 1), 10**width))
            if s not in taken:
                taken.add(s)
                return s

    def _later(self, agent: Agent, t: float, fn: Callable[..., None], *args: Any) -> None:
        self._schedule.later(agent, t, fn, *args)

    @property
    def arrival_rate(self) -> float:
        """Callers per second on each path."""
        return self._rate

    def _gap(self, rate: float) -> int:
        return max(1, round(self._rng.expovariate(rate)))

    # --- what the wire hears --------------------------------------------------------

    def _event(
        self,
        t: float,
        code: str,
        dn: str,
        agent: Agent | None,
        button: int,
        path: str | None = None,
    ) -> None:
        """Send one call event. State changes that it reports are made by the caller right after."""
        if self.frozen:
            raise Frozen()
        if agent is None:
            self._wires[self._sets[dn].controller].call_event(t, code, dn, "", button, path)
        else:
            before = agent.status()
            self._wires[agent.controller].call_event(t, code, dn, agent.agent_id, button, path)
            self.last_events[(agent.agent_id, agent.controller)] = LastEvent(
                t, code, self.sent, before
            )
            agent.fresh = False
            key = (agent.agent_id, code)
            self.events_by_agent[key] = self.events_by_agent.get(key, 0) + 1
            if code in "GS" and path is not None:
                self.answered_by_path[path] = self.answered_by_path.get(path, 0) + 1
        self.sent += 1
        if self.events is not None and self.sent >= self.events:
            self.frozen = True

    def _say(self, t: float, code: str, agent: Agent, button: int, path: str | None = None) -> None:
        """An event of a logged-in agent, at its set."""
        assert agent.dn is not None
        self._event(t, code, agent.dn, agent, button, path)

    def figures(self, t: float, controller: int | None = None) -> tuple[Figures, Figures]:
        """What K and Q report at ``t``: (groups, paths).

        With ``controller``, what that controller reports: the waiting
        calls and longest wait of its own callers, the agents of every
        controller.
        """
        logged = {g: sum(1 for a in members if a.logged_in) for g, members in self._members.items()}
        paths = {}
        for p, q in self._queues.items():
            if controller is not None:
                q = [c for c in q if c.controller == controller]
            agents = sum(logged[g] for g in self.plan.paths[p])
            paths[p] = (len(q), min(agents, 999), t - q[0].arrived if q else 0.0)
        groups = {}
        for g in self.plan.groups:
            mine = [paths[p] for p, gs in self.plan.paths.items() if g in gs]
            waiting = sum(w for w, _, _ in mine)
            groups[g] = (min(waiting, 999), logged[g], max((lw for _, _, lw in mine), default=0.0))
        return groups, paths

    # --- callers ----------------------------------------------------------------------

    def arrive(self, t: float, path: str) -> None:
        """A caller on ``path``; the next one is planned at once."""
        self._schedule.at(t + self._gap(self._rate), self.arrive, path)
        controller = self._rng.randrange(len(self._wires)) if self.several else 0
        queue = self._queues[path]
        if len(queue) < MAX_QUEUE:
            give_up = t + 20 + round(self._rng.expovariate(1 / 120))
            caller = Caller(path, t, give_up, (t, self._schedule.ticket()), controller=controller)
            queue.append(caller)
            self._schedule.at(caller.give_up, self._abandon, caller)
            if self.watch is not None:
                self.watch.arrived(t, caller)
        elif self.watch is not None:
            self.watch.turned_away(t, path, controller)

    def _abandon(self, t: float, caller: Caller) -> None:
        if caller.queued:  # a caller whose call is ringing hangs up at ring end instead
            caller.queued = False
            self._queues[caller.path].remove(caller)
            if self.watch is not None:
                self.watch.gave_up(t, caller)

    def dispatch(self, t: float) -> None:
        """Ring the longest-idle free agent for the oldest waiting calls."""
        while True:
            heads = sorted((q[0].order, p) for p, q in self._queues.items() if q)
            for _, p in heads:
                free = [a for g in self.plan.paths[p] for a in self._members[g] if a.available]
                if free:
                    self._ring(
                        t, min(free, key=lambda a: (a.idle_since, a.index)), self._queues[p][0]
                    )
                    break
            else:
                return

    def _ring(self, t: float, agent: Agent, caller: Caller) -> None:
        Scheduler.replan(agent)
        self._say(t, "T", agent, LINE_ACD)
        agent.ringing, agent.ring_caller = LINE_ACD, caller
        caller.queued = False
        self._queues[caller.path].remove(caller)
        self._later(agent, t + self._rng.randint(2, 12), self._ring_end, caller)

    def _ring_end(self, t: float, agent: Agent, caller: Caller) -> None:
        caller_gone = t >= caller.give_up
        answered = not caller_gone and self._rng.random() < 0.9
        self._say(t, "U", agent, LINE_ACD)
        agent.ringing = agent.ring_caller = None
        watch = self.watch
        if answered:
            remote = caller.path in self.plan.remote_paths
            self._say(t, "S" if remote else "G", agent, LINE_ACD, caller.path)
            agent.calls[LINE_ACD] = Line("acd", caller=caller)
            if watch is not None:
                watch.answered(t, caller, agent)
            self._converse(t, agent, LINE_ACD)
            return
        self._unring(t, agent, caller, caller_gone)
        self._available(t, agent)

    def _unring(self, t: float, agent: Agent, caller: Caller, caller_gone: bool) -> None:
        """``agent``'s set stopped ringing unanswered: the caller is queued again, or gone."""
        watch = self.watch
        if not caller_gone:  # rang out: back to the head of the queue
            caller.queued = True
            bisect.insort(self._queues[caller.path], caller, key=lambda c: c.order)
            if watch is not None:
                watch.requeued(t, caller, agent)
        elif watch is not None:
            watch.gave_up(t, caller)

    def _ended(self, t: float, line: Line) -> None:
        """The call on ``line`` is over: its caller, if any, is told."""
        if line.caller is not None and self.watch is not None:
            self.watch.ended(t, line.caller)

    # --- conversations ----------------------------------------------------------------

    def _converse(self, t: float, agent: Agent, key: int) -> None:
        """The rest of a conversation: maybe a hold or a consultation, then the end."""
        rng = self._rng
        talk = 20 + round(rng.expovariate(1 / 130))
        r = rng.random()
        if talk >= 40 and r < 0.3:
            before = rng.randint(5, talk - 20)
            if agent.calls[key].kind == "acd" and r < 0.15:
                self._later(agent, t + before, self._consult_hold, talk - before)
            else:
                self._later(agent, t + before, self._hold, key, talk - before)
        else:
            self._later(agent, t + talk, self._hang_up, key)

    def _hold(self, t: float, agent: Agent, key: int, left: int) -> None:
        self._say(t, "N", agent, key)
        agent.calls[key].held = True
        held = self._rng.randint(10, 90)
        if self._rng.random() < 0.15:
            self._later(agent, t + held, self._hold_abandon, key)
        else:
            self._later(agent, t + held, self._retrieve, key, left)

    def _retrieve(self, t: float, agent: Agent, key: int, left: int) -> None:
        self._say(t, "O", agent, key)
        agent.calls[key].held = False
        self._later(agent, t + left, self._hang_up, key)

    def _hold_abandon(self, t: float, agent: Agent, key: int) -> None:
        self._say(t, "P", agent, key)
        self._ended(t, agent.calls.pop(key))
        self._available(t, agent)

    def _consult_hold(self, t: float, agent: Agent, left: int) -> None:
        """The caller on key 1 is put on hold; a consultation is dialled shortly after."""
        self._say(t, "N", agent, LINE_ACD)
        agent.calls[LINE_ACD].held = True
        key = self._rng.choice(CONSULT_KEYS)
        self._later(agent, t + self._rng.randint(1, 6), self._consult_dial, key, left)

    def _consult_dial(self, t: float, agent: Agent, key: int, left: int) -> None:
        rng = self._rng
        self._say(t, "I", agent, key)
        agent.calls[key] = Line("outgoing")
        length = rng.randint(15, 150)
        if rng.random() < 0.25:  # the held caller hangs up meanwhile
            gone = rng.randint(5, length - 5)
            self._later(agent, t + gone, self._consult_caller_gone, key, length - gone)
        else:
            self._later(agent, t + length, self._consult_end, key, left)

    def _consult_end(self, t: float, agent: Agent, key: int, left: int) -> None:
        """The consultation ends; the caller is still on hold until retrieved."""
        self._say(t, "J", agent, key)
        del agent.calls[key]
        self._later(agent, t + self._rng.randint(1, 8), self._retrieve, LINE_ACD, left)

    def _consult_caller_gone(self, t: float, agent: Agent, key: int, rest: int) -> None:
        self._say(t, "P", agent, LINE_ACD)
        self._ended(t, agent.calls.pop(LINE_ACD))
        self._later(agent, t + rest, self._consult_over, key)

    def _consult_over(self, t: float, agent: Agent, key: int) -> None:
        self._say(t, "J", agent, key)
        del agent.calls[key]
        self._available(t, agent)

    def _hang_up(self, t: float, agent: Agent, key: int) -> None:
        if agent.calls[key].kind == "acd" and self._rng.random() < 0.6:
            self._say(t, "L", agent, 0)
            for line in agent.calls.values():
                self._ended(t, line)
            agent.calls.clear()
            agent.wrap_up = True
            self._later(agent, t + self._rng.randint(10, 60), self._wrap_end)
            return
        self._say(t, "J", agent, key)
        self._ended(t, agent.calls.pop(key))
        self._available(t, agent)

    def _wrap_end(self, t: float, agent: Agent) -> None:
        self._say(t, "M", agent, 0)
        agent.wrap_up = False
        if self._rng.random() < 0.3:  # some systems send J after M; no call is left to end
            self._say(t, "J", agent, LINE_ACD)
        self._available(t, agent)

    # --- the agent's own choices ------------------------------------------------------

    def _available(self, t: float, agent: Agent) -> None:
        """Free for ACD calls; plan the next thing the agent does by itself."""
        agent.idle_since = t
        Scheduler.replan(agent)
        self._later(agent, t + 5 + round(self._rng.expovariate(1 / 400)), self._own_move)

    def _own_move(self, t: float, agent: Agent) -> None:
        rng = self._rng
        Scheduler.replan(agent)
        if t >= agent.shift_end:  # end of shift; back for the next one
            self._logout(t, agent)
            self._later(agent, t + rng.randint(1800, 5400), self._login)
            return
        r = rng.random()
        if r < 0.30:
            key = rng.choice(OUT_KEYS)
            self._say(t, "I", agent, key)
            agent.calls[key] = Line("outgoing")
            self._converse(t, agent, key)
        elif r < 0.50:
            key = rng.choice(PERSONAL_KEYS)
            self._say(t, "H", agent, key)
            agent.calls[key] = Line("personal")
            self._converse(t, agent, key)
        elif r < 0.72:
            self._say(t, "E", agent, rng.randint(1, 9))
            agent.make_busy = True
            self._later(agent, t + rng.randint(60, 600), self._make_busy_end)
        elif r < 0.85:
            self._say(t, "C", agent, 0)
            agent.dnd = True
            self._later(agent, t + rng.randint(30, 300), self._dnd_end)
        else:  # a break away from the desk
            self._logout(t, agent)
            self._later(agent, t + rng.randint(300, 1500), self._login)

    def _make_busy_end(self, t: float, agent: Agent) -> None:
        self._say(t, "F", agent, 0)
        agent.make_busy = False
        self._available(t, agent)

    def _dnd_end(self, t: float, agent: Agent) -> None:
        if self._rng.random() < 0.85:
            self._say(t, "D", agent, 0)
            agent.dnd = False
            self._available(t, agent)
        else:  # leaves with the set still in DND: the next login sends A then D
            self._logout(t, agent)
            self._later(agent, t + self._rng.randint(600, 2400), self._login)

    def _logout(self, t: float, agent: Agent) -> None:
        assert agent.dn is not None
        self._say(t, "B", agent, 0)
        desk = self._sets[agent.dn]
        desk.occupant, desk.dnd = None, agent.dnd
        agent.clear()
        agent.logged_in, agent.dn = False, None
        Scheduler.replan(agent)

    def _free_set(self, dn: str, controller: int | None = None) -> bool:
        """Nobody is at set ``dn`` and nothing runs there; with ``controller``, it is on that one."""
        desk = self._sets[dn]
        return (
            desk.occupant is None
            and not desk.ext_busy
            and not desk.reserved
            and (controller is None or desk.controller == controller)
        )

    def _login(self, t: float, agent: Agent) -> None:
        """A login at the agent's home set, or any free set of its controller, or a displacement."""
        rng = self._rng
        mine = agent.controller
        victims = (
            [a for a in self.agents if a.available and a.controller == mine]
            if rng.random() < 0.04
            else []
        )
        if victims:  # displacement: the PBX logs the sitting agent out first
            victim = rng.choice(victims)
            assert victim.dn is not None
            dn = victim.dn
            self._logout(t, victim)
            self._later(victim, t + rng.randint(600, 2400), self._login)
        elif self._free_set(agent.home, mine):
            dn = agent.home
        else:
            free = [d for d in self._sets if self._free_set(d, mine)]
            if not free:
                self._later(agent, t + 60, self._login)
                return
            dn = free[0]
        self._sit(t, agent, dn)

    def _sit(self, t: float, agent: Agent, dn: str) -> None:
        """``agent`` logs in at set ``dn`` (A, and D when the set was left in DND)."""
        rng = self._rng
        desk = self._sets[dn]
        self._event(t, "A", dn, agent, 0)
        agent.clear()
        agent.logged_in, agent.dn, agent.fresh = True, dn, True
        agent.shift_end = t + rng.randint(3 * 3600, 5 * 3600)
        desk.occupant = agent
        if desk.dnd:
            self._event(t, "D", dn, agent, 0)
            desk.dnd = False
        self._available(t, agent)

    # --- sets with nobody logged in ---------------------------------------------------

    def _extension(self, t: float) -> None:
        """Now and then an unstaffed ACD set makes a call or toggles DND."""
        rng = self._rng
        self._schedule.at(t + rng.randint(60, 600), self._extension)
        free = [d for d in self._sets if self._free_set(d)]
        if not free:
            return
        desk = self._sets[rng.choice(free)]
        r = rng.random()
        if r < 0.4:
            self._event(t, "D" if desk.dnd else "C", desk.dn, None, 0)
            desk.dnd = not desk.dnd
            if desk.dnd and rng.random() < 0.8:
                desk.ext_busy = True
                self._schedule.at(t + rng.randint(60, 900), self._extension_dnd_off, desk)
        else:
            line = LINE_PERSONAL if r < 0.7 else LINE_OUT
            self._event(t, "H" if line == LINE_PERSONAL else "I", desk.dn, None, line)
            desk.ext_busy = True
            self._schedule.at(t + rng.randint(20, 200), self._extension_idle, desk, line)

    def _extension_dnd_off(self, t: float, desk: _Set) -> None:
        self._event(t, "D", desk.dn, None, 0)
        desk.dnd = desk.ext_busy = False

    def _extension_idle(self, t: float, desk: _Set, line: int) -> None:
        self._event(t, "J", desk.dn, None, line)
        desk.ext_busy = False

    # --- several controllers: a failover ----------------------------------------------

    def plan_failover(self, plan: FailoverPlan) -> None:
        """Play ``plan`` (see :class:`~mitelacd.sim.controllers.FailoverPlan`) at its second."""
        plan.check(len(self._wires))
        self._schedule.at(plan.at, self._fail_over, plan)

    def _fail_over(self, t: float, plan: FailoverPlan) -> None:
        """The plan's agents leave its source: B there now, A on its target a little later."""
        mine = [a for a in self.agents if a.controller == plan.source]
        movers = sorted(mine, key=lambda a: (not a.logged_in, a.index))[: plan.agents]
        logged = [a for a in movers if a.logged_in]
        late = logged[max(0, len(logged) - plan.late) :] if plan.late else []
        for agent in movers:
            if not agent.logged_in:  # logs in on the target next time, home set and all
                agent.controller = plan.target
                self._move_sets(agent, (agent.home,))
                continue
            dn = agent.dn
            assert dn is not None
            lines, ringing = list(agent.calls.values()), agent.ring_caller
            self._logout(t, agent)  # B on the source; Frozen here leaves the agent where it is
            for line in lines:  # the B cut these calls off
                self._ended(t, line)
            if ringing is not None:
                self._unring(t, agent, ringing, t >= ringing.give_up)
            agent.controller = plan.target
            self._move_sets(agent, (agent.home, dn))
            self._sets[dn].reserved = True
            delay = plan.late_delay if agent in late else plan.delay
            self._later(agent, t + delay, self._fail_in, dn, plan.source, t)

    def _move_sets(self, agent: Agent, dns: Sequence[str]) -> None:
        """The sets ``dns`` go with ``agent`` to its new controller, unless in use by someone else."""
        for dn in dns:
            desk = self._sets[dn]
            if desk.occupant is agent or (desk.occupant is None and not desk.ext_busy):
                desk.controller = agent.controller

    def _fail_in(self, t: float, agent: Agent, dn: str, source: int, logout_at: float) -> None:
        """A failing-over agent logs in on its new controller, at the set it left."""
        self._sets[dn].reserved = False
        if not self.frozen:  # the A below goes out
            self.moves.append(
                Move(agent.agent_id, source, agent.controller, float(logout_at), float(t))
            )
        self._sit(t, agent, dn)
