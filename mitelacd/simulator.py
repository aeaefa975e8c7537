"""A fake Mitel 3300 ICP that sends ACD real time events, for demos and tests.

Two halves:

* :class:`FloorScript` is a pure, seeded model of a call-centre floor (agents
  logging in, ringing, answering, wrapping up, going on break, calls queueing
  and abandoning). It turns the floor's day into the exact wire bytes of
  ``acd-rte-protocol.md`` and keeps its own ground truth of what a correct
  listener's legacy view must be (:meth:`FloorScript.expected_legacy`), so an
  end-to-end test can compare the daemon against it.
* :class:`SimulatorService` serves those bytes on TCP like the PBX does on
  port 15373, paced by an injected clock.

Choices where the protocol documents are silent:

* Networked ACD is not modelled, so no S records are produced.
* A call queued on a path counts as waiting in every group serving the path.
* A call that is ringing an agent is not waiting; if nobody answers it goes
  back to the head of its queue.
* K/Q/R come in one burst at t=0 and then every ``cycle`` seconds; agent
  events due at the same instant are sent before the burst.
"""

from __future__ import annotations

import bisect
import datetime
import functools
import heapq
import random
from collections.abc import Callable, Iterator
from typing import Any, cast

import attrs
from twisted.application import service
from twisted.internet import protocol
from twisted.internet.interfaces import IDelayedCall, IListeningPort, IReactorTCP, IReactorTime
from twisted.python import usage

from mitelacd.logs import Logger

log = Logger()


def _peer(transport: Any) -> str:
    address = transport.getPeer()
    return f"{getattr(address, 'host', address)}:{getattr(address, 'port', '')}"


DEFAULT_START = datetime.datetime(2026, 3, 9, 8, 0, 0)
LINE_ACD, LINE_OUT, LINE_PERSONAL = 1, 2, 3
MAX_QUEUE = 20  # callers beyond this on one path get a busy tone instead


# --- wire encoding ----------------------------------------------------------


def _header(recnum: int, code: str, when: datetime.datetime) -> bytes:
    if not 0 <= recnum <= 99:
        raise ValueError(f"record number out of range: {recnum}")
    return b"\x02%02d%s%s" % (recnum, code.encode("ascii"), when.strftime("%H%M%S").encode("ascii"))


def mmss(seconds: float) -> str:
    """Longest-wait field: ``MMSS``, clamped at ``9959`` (4 digits are all there is)."""
    whole = max(0, int(seconds))
    minutes, secs = divmod(whole, 60)
    return "9959" if minutes > 99 else f"{minutes:02d}{secs:02d}"


def encode_call_event(
    recnum: int,
    code: str,
    when: datetime.datetime,
    dn: str,
    agent: str,
    button: int,
    path: str | None = None,
) -> bytes:
    """A call event; ``agent=""`` gives the 7 blanks of an extension event."""
    if len(dn) > 7 or len(agent) > 7 or not 0 <= button <= 99:
        raise ValueError(f"field too wide: dn={dn!r} agent={agent!r} button={button}")
    if path is not None and not (len(path) == 3 and path.isdigit()):
        raise ValueError(f"path must be 3 digits: {path!r}")
    tail = b"%02d%s" % (button, (path or "").encode("ascii"))
    return (
        _header(recnum, code, when)
        + dn.ljust(7).encode("ascii")
        + agent.ljust(7).encode("ascii")
        + tail
        + b"\r\n"
    )


def encode_stats(
    recnum: int,
    code: str,
    when: datetime.datetime,
    number: str,
    waiting: int,
    agents: int,
    longest: float,
) -> bytes:
    """A K (group) or Q (path) report with the 7 trailing zeros seen on non-networked systems."""
    if code not in ("K", "Q") or not (len(number) == 3 and number.isdigit()):
        raise ValueError(f"bad statistics record: {code!r} {number!r}")
    if not (0 <= waiting <= 999 and 0 <= agents <= 999):
        raise ValueError(f"counts must fit 3 digits: {waiting} {agents}")
    body = b"%s%03d%03d%s0000000\r\n" % (
        number.encode("ascii"),
        waiting,
        agents,
        mmss(longest).encode("ascii"),
    )
    return _header(recnum, code, when) + body


def encode_refresh(recnum: int, when: datetime.datetime) -> bytes:
    """The R keep-alive: time, then ``YYYYMMDD``."""
    return _header(recnum, "R", when) + when.strftime("%Y%m%d").encode("ascii") + b"\r\n"


def group_numbers(count: int) -> list[str]:
    """610, 620, ... as 3-digit strings; past 990 they wrap to 000, 010, ..."""
    return [f"{(610 + 10 * i) % 1000:03d}" for i in range(count)]


def path_numbers(count: int) -> list[str]:
    """860, 861, ...; the third path is 007 so a leading zero is on the wire by default."""
    return ["007" if i == 2 else f"{860 + i:03d}" for i in range(count)]


# --- the floor model --------------------------------------------------------


@attrs.frozen
class FloorPlan:
    """Who is where: fixed for a script's lifetime, public so tests can check K/Q figures."""

    groups: dict[str, tuple[str, ...]]  # group number -> agent IDs
    paths: dict[str, tuple[str, ...]]  # path number -> serving group numbers
    home_dns: dict[str, str]  # agent ID -> the set it normally logs in at
    spare_dns: tuple[str, ...]  # sets no agent calls home


@attrs.define(eq=False)
class _Agent:
    """What one agent is doing, in the simulator's own terms."""

    index: int
    agent_id: str
    group: str
    home: str
    dn: str | None = None
    logged_in: bool = False
    dnd: bool = False
    make_busy: bool = False
    wrap_up: bool = False
    activity: str | None = None  # ringing, acd, personal, outgoing
    on_hold: bool = False
    fresh: bool = False  # logged in and nothing else named this agent since
    seen: bool = False  # some record named this agent
    epoch: int = 0  # bumped when plans change; stale timers check it
    idle_since: float = 0.0
    shift_end: float = 0.0

    @property
    def available(self) -> bool:
        return (
            self.logged_in
            and self.activity is None
            and not (self.on_hold or self.dnd or self.make_busy or self.wrap_up)
        )

    def status(self) -> str:
        if not self.logged_in:
            return "out"
        if self.activity or self.on_hold or self.dnd or self.make_busy:
            return "busy"
        if self.wrap_up:
            return "timer"
        return "in" if self.fresh else "idle"


@attrs.define(eq=False)
class _Set:
    dn: str
    occupant: _Agent | None = None
    dnd: bool = False  # DND left on the set while nobody is logged in
    ext_busy: bool = False  # an extension (blank agent) call or DND is running


@attrs.define(eq=False)
class _Call:
    path: str
    arrived: float
    give_up: float
    order: tuple[float, int]
    queued: bool = True


class _Frozen(Exception):
    """Raised when the event budget is spent: the rest of the action is not sent."""


class FloorScript:
    """A seeded day on the floor, as (simulated seconds, wire bytes) chunks."""

    def __init__(
        self,
        seed: int = 0,
        agents: int = 40,
        groups: int = 4,
        paths: int = 3,
        start: datetime.datetime = DEFAULT_START,
        events: int | None = None,
        cycle: float = 15.0,
    ) -> None:
        if agents < 1 or not 1 <= groups <= 99 or not 1 <= paths <= 99 or cycle <= 0:
            raise ValueError("need agents >= 1, 1 <= groups, paths <= 99 and cycle > 0")
        if events is not None and events < 0:
            raise ValueError("events must be >= 0")
        self.seed, self.start, self.cycle, self.events = seed, start, float(cycle), events
        self._rng = rng = random.Random(seed)
        taken: set[str] = set()  # membership only, never iterated: keeps runs reproducible
        ids = [self._number(4 + i % 4, taken) for i in range(agents)]
        homes = [self._number(rng.choice((4, 4, 5, 6, 7)), taken) for _ in range(agents)]
        spares = tuple(self._number(4, taken) for _ in range(max(2, agents // 8)))
        gnums, pnums = group_numbers(groups), path_numbers(paths)
        serving = {p: [gnums[j % groups]] for j, p in enumerate(pnums)}
        for i, g in enumerate(gnums):  # every group serves some path
            if g not in serving[pnums[i % paths]]:
                serving[pnums[i % paths]].append(g)
        self._agents = [_Agent(i, ids[i], gnums[i % groups], homes[i]) for i in range(agents)]
        self._members = {g: [a for a in self._agents if a.group == g] for g in gnums}
        self.plan = FloorPlan(
            groups={g: tuple(a.agent_id for a in members) for g, members in self._members.items()},
            paths={p: tuple(gs) for p, gs in serving.items()},
            home_dns={a.agent_id: a.home for a in self._agents},
            spare_dns=spares,
        )
        self._sets = {dn: _Set(dn, dnd=rng.random() < 0.2) for dn in homes + list(spares)}
        self._queues: dict[str, list[_Call]] = {p: [] for p in pnums}
        self._heap: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0
        self._recnum = 0
        self._sent = 0
        self._out: list[bytes] = []
        self._frozen = events == 0
        self._frozen_figures = self._figures(0.0) if self._frozen else None
        self._last_groups: dict[str, dict[str, str]] = {}
        self._last_paths: dict[str, dict[str, str]] = {}
        self._iterating = False
        # Callers per second: enough to keep about half the floor on calls.
        self._rate = 0.5 * agents / 180.0 / paths
        for a in self._agents:  # staggered start of day, a few on a late shift
            late = rng.random() < 0.15
            self._later(a, rng.randint(1800, 7200) if late else rng.randint(1, 180), self._login)
        for p in pnums:
            self._at(self._gap(self._rate), self._arrive, p)
        self._at(rng.randint(30, 300), self._extension)

    def _number(self, width: int, taken: set[str]) -> str:
        while True:
            s = str(self._rng.randrange(10 ** (width - 1), 10**width))
            if s not in taken:
                taken.add(s)
                return s

    # --- public --------------------------------------------------------------

    def steps(self) -> Iterator[tuple[float, bytes]]:
        """Yield (simulated seconds since start, bytes to send then), forever.

        Only one iteration per script: the floor is mutable state.
        """
        if self._iterating:
            raise RuntimeError("a FloorScript can be iterated only once")
        self._iterating = True
        return self._run()

    def expected_legacy(self) -> dict[str, Any]:
        """The legacy view a correct listener holds after every chunk yielded so far."""
        return {
            "agents": {a.agent_id: a.status() for a in self._agents if a.seen},
            "groups": {g: dict(v) for g, v in self._last_groups.items()},
            "paths": {p: dict(v) for p, v in self._last_paths.items()},
        }

    @property
    def frozen(self) -> bool:
        return self._frozen

    # --- the engine ----------------------------------------------------------

    def _run(self) -> Iterator[tuple[float, bytes]]:
        k = 0
        while True:
            burst_at = k * self.cycle
            while not self._frozen and self._heap and self._heap[0][0] <= burst_at:
                t = self._heap[0][0]
                self._instant(t)
                if self._out:
                    chunk = b"".join(self._out)
                    self._out.clear()
                    yield float(t), chunk
            yield burst_at, self._burst(burst_at)
            k += 1

    def _instant(self, t: float) -> None:
        """Everything due at ``t``, including what it schedules for ``t`` itself."""
        try:
            while not self._frozen and self._heap and self._heap[0][0] == t:
                _, _, fn, args = heapq.heappop(self._heap)
                fn(t, *args)
                if not self._frozen:
                    self._dispatch(t)
        except _Frozen:
            pass
        if self._frozen and self._frozen_figures is None:
            self._frozen_figures = self._figures(t)

    def _at(self, t: float, fn: Callable[..., None], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, fn, args))

    def _later(self, agent: _Agent, t: float, fn: Callable[..., None], *args: Any) -> None:
        """Schedule an agent's next step; dropped if the agent's plans change first."""
        self._at(t, self._if_current, agent, agent.epoch, fn, args)

    def _if_current(
        self, t: float, agent: _Agent, epoch: int, fn: Callable[..., None], args: tuple[Any, ...]
    ) -> None:
        if agent.epoch == epoch:
            fn(t, agent, *args)

    def _gap(self, rate: float) -> int:
        return max(1, round(self._rng.expovariate(rate)))

    def _when(self, t: float) -> datetime.datetime:
        return self.start + datetime.timedelta(seconds=int(t))

    def _next_recnum(self) -> int:
        n, self._recnum = self._recnum, (self._recnum + 1) % 100
        return n

    def _event(
        self,
        t: float,
        code: str,
        dn: str,
        agent: _Agent | None,
        button: int,
        path: str | None = None,
    ) -> None:
        """Send one call event. State changes that it reports are made by the caller right after."""
        if self._frozen:
            raise _Frozen()
        name = agent.agent_id if agent else ""
        self._out.append(
            encode_call_event(self._next_recnum(), code, self._when(t), dn, name, button, path)
        )
        if agent is not None:
            agent.seen, agent.fresh = True, False
        self._sent += 1
        if self.events is not None and self._sent >= self.events:
            self._frozen = True

    def _figures(
        self, t: float
    ) -> tuple[dict[str, tuple[int, int, float]], dict[str, tuple[int, int, float]]]:
        logged = {g: sum(1 for a in members if a.logged_in) for g, members in self._members.items()}
        paths = {}
        for p, q in self._queues.items():
            agents = sum(logged[g] for g in self.plan.paths[p])
            paths[p] = (len(q), min(agents, 999), t - q[0].arrived if q else 0.0)
        groups = {}
        for g in self.plan.groups:
            mine = [paths[p] for p, gs in self.plan.paths.items() if g in gs]
            waiting = sum(w for w, _, _ in mine)
            groups[g] = (min(waiting, 999), logged[g], max((lw for _, _, lw in mine), default=0.0))
        return groups, paths

    def _burst(self, t: float) -> bytes:
        groups, paths = self._frozen_figures or self._figures(t)
        when, out = self._when(t), []
        for code, figs, last in (("K", groups, self._last_groups), ("Q", paths, self._last_paths)):
            for num, (waiting, agents, longest) in figs.items():
                out.append(
                    encode_stats(self._next_recnum(), code, when, num, waiting, agents, longest)
                )
                last[num] = {
                    "waiting": f"{waiting:03d}",
                    "agents": f"{agents:03d}",
                    "longestwait": mmss(longest),
                }
        out.append(encode_refresh(self._next_recnum(), when))
        return b"".join(out)

    # --- calls ---------------------------------------------------------------

    def _arrive(self, t: float, path: str) -> None:
        self._at(t + self._gap(self._rate), self._arrive, path)
        queue = self._queues[path]
        if len(queue) < MAX_QUEUE:
            call = _Call(path, t, t + 20 + round(self._rng.expovariate(1 / 120)), (t, self._seq))
            queue.append(call)
            self._at(call.give_up, self._abandon, call)

    def _abandon(self, t: float, call: _Call) -> None:
        if call.queued:  # a caller whose call is ringing hangs up at ring end instead
            call.queued = False
            self._queues[call.path].remove(call)

    def _dispatch(self, t: float) -> None:
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

    def _ring(self, t: float, agent: _Agent, call: _Call) -> None:
        assert agent.dn is not None
        agent.epoch += 1
        self._event(t, "T", agent.dn, agent, LINE_ACD)
        agent.activity = "ringing"
        call.queued = False
        self._queues[call.path].remove(call)
        self._later(agent, t + self._rng.randint(2, 12), self._ring_end, call)

    def _ring_end(self, t: float, agent: _Agent, call: _Call) -> None:
        assert agent.dn is not None
        caller_gone = t >= call.give_up
        answered = not caller_gone and self._rng.random() < 0.9
        self._event(t, "U", agent.dn, agent, LINE_ACD)
        agent.activity = None
        if answered:
            self._event(t, "G", agent.dn, agent, LINE_ACD, call.path)
            agent.activity = "acd"
            self._converse(t, agent, LINE_ACD)
            return
        if not caller_gone:  # rang out: back to the head of the queue
            call.queued = True
            bisect.insort(self._queues[call.path], call, key=lambda c: c.order)
        self._available(t, agent)

    def _converse(self, t: float, agent: _Agent, line: int) -> None:
        """The rest of a conversation: maybe a hold, then the end."""
        talk = 20 + round(self._rng.expovariate(1 / 130))
        if self._rng.random() < 0.2 and talk >= 40:
            before = self._rng.randint(5, talk - 20)
            self._later(agent, t + before, self._hold, line, talk - before)
        else:
            self._later(agent, t + talk, self._hang_up, line)

    def _hold(self, t: float, agent: _Agent, line: int, left: int) -> None:
        assert agent.dn is not None
        self._event(t, "N", agent.dn, agent, line)
        agent.on_hold = True
        held = self._rng.randint(10, 90)
        if self._rng.random() < 0.15:
            self._later(agent, t + held, self._hold_abandon, line)
        else:
            self._later(agent, t + held, self._retrieve, line, left)

    def _retrieve(self, t: float, agent: _Agent, line: int, left: int) -> None:
        assert agent.dn is not None
        self._event(t, "O", agent.dn, agent, line)
        agent.on_hold = False
        self._later(agent, t + left, self._hang_up, line)

    def _hold_abandon(self, t: float, agent: _Agent, line: int) -> None:
        assert agent.dn is not None
        self._event(t, "P", agent.dn, agent, line)
        agent.on_hold, agent.activity = False, None
        self._available(t, agent)

    def _hang_up(self, t: float, agent: _Agent, line: int) -> None:
        assert agent.dn is not None
        if agent.activity == "acd" and self._rng.random() < 0.6:
            self._event(t, "L", agent.dn, agent, 0)
            agent.activity, agent.wrap_up = None, True
            self._later(agent, t + self._rng.randint(10, 60), self._wrap_end)
            return
        self._event(t, "J", agent.dn, agent, line)
        agent.activity = None
        self._available(t, agent)

    def _wrap_end(self, t: float, agent: _Agent) -> None:
        assert agent.dn is not None
        self._event(t, "M", agent.dn, agent, 0)
        agent.wrap_up = False
        if self._rng.random() < 0.3:
            self._event(t, "J", agent.dn, agent, LINE_ACD)
        self._available(t, agent)

    # --- the agent's own choices ---------------------------------------------

    def _available(self, t: float, agent: _Agent) -> None:
        """Free for ACD calls; plan the next thing the agent does by itself."""
        agent.idle_since = t
        agent.epoch += 1
        self._later(agent, t + 5 + round(self._rng.expovariate(1 / 400)), self._own_move)

    def _own_move(self, t: float, agent: _Agent) -> None:
        assert agent.dn is not None
        rng, dn = self._rng, agent.dn
        agent.epoch += 1
        if t >= agent.shift_end:  # end of shift; back for the next one
            self._logout(t, agent)
            self._later(agent, t + rng.randint(1800, 5400), self._login)
            return
        r = rng.random()
        if r < 0.30:
            self._event(t, "I", dn, agent, LINE_OUT)
            agent.activity = "outgoing"
            self._converse(t, agent, LINE_OUT)
        elif r < 0.50:
            self._event(t, "H", dn, agent, LINE_PERSONAL)
            agent.activity = "personal"
            self._converse(t, agent, LINE_PERSONAL)
        elif r < 0.72:
            self._event(t, "E", dn, agent, rng.randint(1, 9))
            agent.make_busy = True
            self._later(agent, t + rng.randint(60, 600), self._make_busy_end)
        elif r < 0.85:
            self._event(t, "C", dn, agent, 0)
            agent.dnd = True
            self._later(agent, t + rng.randint(30, 300), self._dnd_end)
        else:  # a break away from the desk
            self._logout(t, agent)
            self._later(agent, t + rng.randint(300, 1500), self._login)

    def _make_busy_end(self, t: float, agent: _Agent) -> None:
        assert agent.dn is not None
        self._event(t, "F", agent.dn, agent, 0)
        agent.make_busy = False
        self._available(t, agent)

    def _dnd_end(self, t: float, agent: _Agent) -> None:
        assert agent.dn is not None
        if self._rng.random() < 0.85:
            self._event(t, "D", agent.dn, agent, 0)
            agent.dnd = False
            self._available(t, agent)
        else:  # leaves with the set still in DND: the next login sends A then D
            self._logout(t, agent)
            self._later(agent, t + self._rng.randint(600, 2400), self._login)

    def _logout(self, t: float, agent: _Agent) -> None:
        assert agent.dn is not None
        self._event(t, "B", agent.dn, agent, 0)
        desk = self._sets[agent.dn]
        desk.occupant, desk.dnd = None, agent.dnd
        agent.logged_in = agent.dnd = agent.make_busy = agent.wrap_up = agent.on_hold = False
        agent.activity, agent.dn = None, None
        agent.epoch += 1

    def _free_set(self, dn: str) -> bool:
        desk = self._sets[dn]
        return desk.occupant is None and not desk.ext_busy

    def _login(self, t: float, agent: _Agent) -> None:
        rng = self._rng
        victims = [a for a in self._agents if a.available] if rng.random() < 0.04 else []
        if victims:  # displacement: the PBX logs the sitting agent out first
            victim = rng.choice(victims)
            assert victim.dn is not None
            dn = victim.dn
            self._logout(t, victim)
            self._later(victim, t + rng.randint(600, 2400), self._login)
        elif self._free_set(agent.home):
            dn = agent.home
        else:
            free = [d for d in self._sets if self._free_set(d)]
            if not free:
                self._later(agent, t + 60, self._login)
                return
            dn = free[0]
        desk = self._sets[dn]
        self._event(t, "A", dn, agent, 0)
        agent.logged_in, agent.dn, agent.fresh = True, dn, True
        agent.dnd = agent.make_busy = agent.wrap_up = agent.on_hold = False
        agent.activity = None
        agent.shift_end = t + rng.randint(3 * 3600, 5 * 3600)
        desk.occupant = agent
        if desk.dnd:
            self._event(t, "D", dn, agent, 0)
            desk.dnd = False
        self._available(t, agent)

    # --- sets with nobody logged in ------------------------------------------

    def _extension(self, t: float) -> None:
        """Now and then an unstaffed ACD set makes a call or toggles DND."""
        rng = self._rng
        self._at(t + rng.randint(60, 600), self._extension)
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
                self._at(t + rng.randint(60, 900), self._extension_dnd_off, desk)
        else:
            line = LINE_PERSONAL if r < 0.7 else LINE_OUT
            self._event(t, "H" if line == LINE_PERSONAL else "I", desk.dn, None, line)
            desk.ext_busy = True
            self._at(t + rng.randint(20, 200), self._extension_idle, desk, line)

    def _extension_dnd_off(self, t: float, desk: _Set) -> None:
        self._event(t, "D", desk.dn, None, 0)
        desk.dnd = desk.ext_busy = False

    def _extension_idle(self, t: float, desk: _Set, line: int) -> None:
        self._event(t, "J", desk.dn, None, line)
        desk.ext_busy = False


# --- the TCP side -----------------------------------------------------------


class FeedProtocol(protocol.Protocol):
    """One listener. A push producer, so a client that stops reading is noticed."""

    factory: FeedFactory
    transport: Any  # a TCP transport once connected: needs abortConnection, registerProducer

    def __init__(self) -> None:
        self.paused = False
        self._backlog: list[bytes] = []
        self._backlog_size = 0

    def connectionMade(self) -> None:
        self.transport.registerProducer(self, True)
        self.factory.clientConnected(self)

    def dataReceived(self, data: bytes) -> None:
        """The PBX ignores anything a client sends; so do we."""

    def connectionLost(self, reason: Any = None) -> None:
        self.factory.clientGone(self)

    def send(self, chunk: bytes) -> None:
        if not self.paused:
            self.transport.write(chunk)
            return
        self._backlog.append(chunk)
        self._backlog_size += len(chunk)
        if self._backlog_size > self.factory.max_backlog:
            log.warn("client {peer} is not reading; dropping it", peer=_peer(self.transport))
            self._backlog.clear()
            self.factory.clientGone(self)
            self.transport.abortConnection()

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        backlog, self._backlog, self._backlog_size = self._backlog, [], 0
        if backlog:
            self.transport.writeSequence(backlog)

    def stopProducing(self) -> None:
        self.paused = True
        self._backlog.clear()


class FeedFactory(protocol.ServerFactory):
    """Broadcasts one script to every client, paced by ``clock`` from the first connect."""

    protocol = FeedProtocol  # type: ignore[assignment]
    noisy = False  # we log clients ourselves; "Starting factory" says nothing useful
    max_chunks_per_tick = 1000  # so a huge speed cannot starve the reactor

    def __init__(
        self,
        script: FloorScript,
        clock: IReactorTime,
        speed: float = 1.0,
        max_backlog: int = 1 << 20,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.script, self.speed, self.max_backlog = script, speed, max_backlog
        self._clock = clock
        self._steps: Iterator[tuple[float, bytes]] | None = None
        self._next: tuple[float, bytes] | None = None
        self._timer: IDelayedCall | None = None
        self.started_at: float | None = None
        self.stopped = False
        self.clients: list[FeedProtocol] = []

    def clientConnected(self, client: FeedProtocol) -> None:
        self.clients.append(client)
        log.info(
            "client {peer} connected ({count} connected)",
            peer=_peer(client.transport),
            count=len(self.clients),
        )
        if self.started_at is None and not self.stopped:
            self.started_at = self._clock.seconds()
            self._steps = self.script.steps()
            self._next = next(self._steps)
            self._tick()

    def clientGone(self, client: FeedProtocol) -> None:
        if client in self.clients:
            self.clients.remove(client)
            log.info(
                "client {peer} disconnected ({count} connected)",
                peer=_peer(client.transport),
                count=len(self.clients),
            )

    def _tick(self) -> None:
        """Send every chunk that is due, then sleep until the next one."""
        self._timer = None
        assert self._steps is not None and self._next is not None and self.started_at is not None
        now = self._clock.seconds()
        for _ in range(self.max_chunks_per_tick):
            due = self.started_at + self._next[0] / self.speed
            if due > now + 1e-9:
                break
            for client in list(self.clients):
                client.send(self._next[1])
            self._next = next(self._steps)
        due = self.started_at + self._next[0] / self.speed
        self._timer = self._clock.callLater(max(0.0, due - now), self._tick)

    def stop(self) -> None:
        """Stop the clock and hang up on everyone."""
        self.stopped = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        for client in list(self.clients):
            client.transport.loseConnection()


class SimulatorService(service.Service):
    """Listens like the ICP's port 15373; ``port`` holds the bound port once started."""

    def __init__(
        self,
        script: FloorScript,
        port: int = 15373,
        interface: str = "127.0.0.1",
        speed: float = 1.0,
        reactor: Any = None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor
        self._reactor: IReactorTCP = reactor
        self.requested_port, self.interface = port, interface
        self.factory = FeedFactory(script, clock=reactor, speed=speed)
        self.port: int | None = None
        self._listening: IListeningPort | None = None

    def startService(self) -> None:
        super().startService()
        self._listening = self._reactor.listenTCP(
            self.requested_port, self.factory, interface=self.interface
        )
        self.port = cast(Any, self._listening.getHost()).port  # IPv4 or IPv6: both have .port
        log.info(
            "simulated ICP feed on {interface} port {port} (seed {seed})",
            interface=self.interface,
            port=self.port,
            seed=self.factory.script.seed,
        )

    def stopService(self) -> Any:
        super().stopService()
        self.factory.stop()
        listening, self._listening = self._listening, None
        return listening.stopListening() if listening is not None else None


# --- twistd mitelacd-sim ----------------------------------------------------


def _coerce(kind: Callable[[str], Any], option: str, wants: str) -> Callable[[str], Any]:
    """A coercer whose error names the option (twistd's own message does not)."""

    def coerce(value: str) -> Any:
        try:
            return kind(value)
        except ValueError:
            raise ValueError(f"{option} wants {wants}, not {value!r}") from None

    coerce.coerceDoc = ""  # type: ignore[attr-defined]
    return coerce


_whole = functools.partial(_coerce, int, wants="a whole number")
_real = functools.partial(_coerce, float, wants="a number")


class Options(usage.Options):
    synopsis = "[--port 15373] [--interface 127.0.0.1] [--agents 40] [--seed N] ..."
    longdesc = "Serve a simulated call-centre floor as a Mitel 3300 ICP ACD real time event stream."
    optParameters = [
        ["port", "p", 15373, "TCP port to listen on (0 = any free port).", _whole("--port")],
        ["interface", "i", "127.0.0.1", "Address to listen on (0.0.0.0: every interface)."],
        ["agents", "a", 40, "Agents on the floor (1-999).", _whole("--agents")],
        ["groups", "g", 4, "Agent skill groups, reported in K records (1-99).", _whole("--groups")],
        ["paths", None, 3, "ACD paths, reported in Q records (1-99).", _whole("--paths")],
        ["speed", "s", 1.0, "Simulated seconds per real second (> 0).", _real("--speed")],
        ["seed", None, None, "Same seed, same day (default: random, logged).", _whole("--seed")],
        [
            "events",
            None,
            None,
            "Freeze the floor after N agent events (K/Q/R go on).",
            _whole("--events"),
        ],
        ["cycle", "c", 15.0, "Seconds between K/Q/R report bursts (> 0).", _real("--cycle")],
    ]

    def postOptions(self) -> None:
        checks = [
            (0 <= self["port"] <= 65535, "--port must be between 0 and 65535"),
            (1 <= self["agents"] <= 999, "--agents must be between 1 and 999"),
            (1 <= self["groups"] <= 99, "--groups must be between 1 and 99"),
            (1 <= self["paths"] <= 99, "--paths must be between 1 and 99"),
            (self["speed"] > 0, "--speed must be greater than 0"),
            (self["events"] is None or self["events"] >= 0, "--events must be 0 or more"),
            (self["cycle"] > 0, "--cycle must be greater than 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise usage.UsageError(message)


def makeService(options: Options, reactor: Any = None) -> SimulatorService:
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    seed = options["seed"]
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    script = FloorScript(
        seed=seed,
        agents=options["agents"],
        groups=options["groups"],
        paths=options["paths"],
        events=options["events"],
        cycle=options["cycle"],
    )
    return SimulatorService(
        script,
        port=options["port"],
        interface=options["interface"],
        speed=options["speed"],
        reactor=reactor,
    )
