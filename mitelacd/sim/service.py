"""A fake Mitel 3300 ICP that sends ACD real time events and SMDR, for demos and tests.

The parts:

* :class:`FloorScript` runs a seeded day: it pops what is due from a
  :class:`~mitelacd.sim.schedule.Scheduler`, lets the
  :class:`~mitelacd.sim.floor.Floor` decide, has a
  :class:`~mitelacd.sim.wire.Wire` turn it into the exact bytes of
  docs/protocol.md (with the chosen terminator and faults), and
  answers what a correct listener's legacy view must be
  (:meth:`FloorScript.expected_legacy`), so an end-to-end test can compare
  the daemon against it. Its :class:`~mitelacd.sim.callers.Callers` give
  the SMDR records of the same calls, and count them
  (:meth:`FloorScript.smdr_ledger`).
* :class:`SimulatorService` serves those bytes on TCP like the PBX does on
  port 15373, paced by an injected clock, and with ``smdr_port`` the SMDR
  lines on a port of their own, as the PBX does on 1752 (:class:`SmdrFactory`).
* With ``controllers=N`` the script plays a site of N controllers
  (:mod:`mitelacd.sim.controllers`): :meth:`FloorScript.site_timeline`
  gives each controller's bytes and records, and the service listens on a
  port (and an SMDR port) per controller.

K/Q/R come in one burst at t=0 and then every ``cycle`` seconds; agent
events due at the same instant are sent before the burst. What the floor
does where the protocol documents are silent is listed in
:mod:`mitelacd.sim.floor`.
"""

from __future__ import annotations

import datetime
import functools
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

import attrs
from twisted.application import service
from twisted.internet import defer, error, protocol
from twisted.internet.interfaces import IDelayedCall, IListeningPort, IReactorTCP, IReactorTime
from twisted.python import usage

from mitelacd.cli import CommandOptions
from mitelacd.floor.names import Names
from mitelacd.floor.smdr import LAYOUT_NAMES, SmdrLayout, layout_named
from mitelacd.logs import Logger
from mitelacd.sim.callers import (
    SERVICE_LEVEL_SECONDS,
    SHORT_ABANDON_SECONDS,
    Callers,
    SmdrLedger,
)
from mitelacd.sim.controllers import (
    FAILOVER_LATE_SECONDS,
    FAILOVER_SECONDS,
    AgentSeen,
    ControllerView,
    FailoverPlan,
    Move,
    SiteMoment,
    merge_legacy,
)
from mitelacd.sim.floor import (
    LINE_ACD,
    LINE_OUT,
    LINE_PERSONAL,
    MAX_QUEUE,
    Figures,
    Floor,
    FloorPlan,
    Frozen,
    group_numbers,
    path_numbers,
)
from mitelacd.sim.names import floor_names
from mitelacd.sim.schedule import Scheduler
from mitelacd.sim.smdrwire import STANDARD, SmdrEntry, encode_smdr
from mitelacd.sim.wire import (
    EOLS,
    TERMINATORS,
    Eol,
    FaultCounts,
    Wire,
    encode_call_event,
    encode_refresh,
    encode_stats,
    mmss,
)

__all__ = [
    "DEFAULT_START",
    "EOLS",
    "LINE_ACD",
    "LINE_OUT",
    "LINE_PERSONAL",
    "MAX_QUEUE",
    "TERMINATORS",
    "Eol",
    "ControllerFeed",
    "FailoverPlan",
    "FaultCounts",
    "FeedFactory",
    "FeedProtocol",
    "FloorPlan",
    "FloorScript",
    "Moment",
    "Move",
    "Options",
    "SMDR_PORT",
    "SimulatorService",
    "SiteMoment",
    "SmdrFactory",
    "encode_call_event",
    "encode_refresh",
    "encode_stats",
    "group_numbers",
    "makeService",
    "mmss",
    "path_numbers",
    "random_seed",
]

log = Logger()


def _peer(transport: Any) -> str:
    address = transport.getPeer()
    return f"{getattr(address, 'host', address)}:{getattr(address, 'port', '')}"


DEFAULT_START = datetime.datetime(2026, 3, 9, 8, 0, 0)
#: The port the PBX sends SMDR on (smdr-protocol.md §1).
SMDR_PORT = 1752


@attrs.frozen
class Moment:
    """What the fake ICP sends at one simulated second: ACD bytes, SMDR records, or both."""

    t: float
    acd: bytes
    smdr: tuple[SmdrEntry, ...] = ()


def random_seed() -> int:
    """A seed for a run whose seed was not given; log it, so that the run can be repeated."""
    return random.SystemRandom().randrange(2**31)


class FloorScript:
    """A seeded day on the floor, as (simulated seconds, wire bytes) chunks.

    ``eol`` picks the record terminator; ``faults`` injects numbering gaps
    and duplicates, and ``noise`` (on with ``faults`` unless given) NULs and
    garbage lines between records. What was injected is in :attr:`faults`.
    Neither changes the floor's day: the same seed gives the same events and
    the same :meth:`expected_legacy` whatever the terminator and faults.

    ``start`` is the controller's clock at second 0, read in ``tz`` (None:
    local time) when it carries no zone of its own; :attr:`epoch` is that
    instant in Unix seconds. ``smdr`` (on by default) models the callers
    behind the ACD calls (:mod:`mitelacd.sim.callers`): their SMDR records
    come with the ACD bytes in :meth:`timeline`, and :meth:`smdr_ledger`
    counts them. The callers draw from a random generator of their own: the
    ACD stream of a seed is the same with ``smdr`` on or off.

    ``controllers`` (default 1) makes it a site of that many controllers
    (:mod:`mitelacd.sim.controllers` says how the floor splits), each
    ``clock_skew`` seconds ahead of the one before, playing ``failover``
    if given. Its day is then iterated with :meth:`site_timeline`, and
    :meth:`expected_legacy` answers for each controller,
    :meth:`expected_merged_legacy` for the merged floor, and :meth:`moves`
    and :meth:`failovers` for the agents that changed controller. With one
    controller everything is as it always was, byte for byte.
    """

    def __init__(
        self,
        seed: int = 0,
        agents: int = 40,
        groups: int = 4,
        paths: int = 3,
        start: datetime.datetime = DEFAULT_START,
        events: int | None = None,
        cycle: float = 15.0,
        eol: Eol = "crlf",
        faults: bool = False,
        noise: bool | None = None,
        tz: datetime.tzinfo | None = None,
        smdr: bool = True,
        *,
        controllers: int = 1,
        clock_skew: float = 0.0,
        failover: FailoverPlan | None = None,
    ) -> None:
        if agents < 1 or not 1 <= groups <= 99 or not 1 <= paths <= 99 or cycle <= 0:
            raise ValueError("need agents >= 1, 1 <= groups, paths <= 99 and cycle > 0")
        if events is not None and events < 0:
            raise ValueError("events must be >= 0")
        if not 1 <= controllers <= agents:
            raise ValueError("need 1 <= controllers <= agents")
        if failover is not None:
            failover.check(controllers)
        self.seed, self.start, self.cycle, self.events = seed, start, float(cycle), events
        self.eol = eol
        self.controllers, self.clock_skew, self.failover = controllers, clock_skew, failover
        self.schedule = Scheduler()
        #: One stream per controller, the first one's first.
        self.wires = [
            Wire(
                seed,
                start + datetime.timedelta(seconds=c * clock_skew) if c else start,
                eol=eol,
                faults=faults,
                noise=faults if noise is None else noise,
                stream=f"controller {c + 1}" if c else "",
            )
            for c in range(controllers)
        ]
        self.wire = self.wires[0]
        self.floor = Floor(
            random.Random(seed), self.schedule, self.wires, agents, groups, paths, events
        )
        self.plan: FloorPlan = self.floor.plan
        self.tz = tz
        #: Unix seconds at simulated second 0.
        self.epoch = (start if start.tzinfo else start.replace(tzinfo=tz)).timestamp()
        #: The callers and their SMDR records; None when ``smdr`` is off.
        self.callers: Callers | None = None
        if smdr:
            self.callers = Callers(
                random.Random(f"callers {seed}"),
                self.floor,
                self.schedule,
                self.epoch,
                tz,
                controllers=controllers,
                clock_skew=clock_skew,
            )
            self.floor.watch = self.callers
        if failover is not None:
            self.floor.plan_failover(failover)
        self._frozen_figures: list[tuple[Figures, Figures]] | None = None
        if self.floor.frozen:
            self._freeze(0.0)
        self._iterating = False
        #: The simulated second of the last moment yielded.
        self.now = 0.0

    # --- public --------------------------------------------------------------

    def steps(self) -> Iterator[tuple[float, bytes]]:
        """Yield (simulated seconds since start, ACD bytes to send then), forever.

        Only one iteration per script (this, :meth:`timeline` or
        :meth:`site_timeline`): the floor is mutable state. One controller only.
        """
        return ((m.t, m.acd) for m in self.timeline() if m.acd)

    def timeline(self) -> Iterator[Moment]:
        """Yield every :class:`Moment` that sends something, in time order, forever.

        The ACD bytes are those of :meth:`steps`; a moment may carry SMDR
        records only. Only one iteration per script. One controller only:
        a site of several is iterated with :meth:`site_timeline`.
        """
        if self.controllers > 1:
            raise ValueError("a site of several controllers: iterate site_timeline()")
        return (Moment(m.t, m.acd[0], m.smdr[0]) for m in self.site_timeline())

    def site_timeline(self) -> Iterator[SiteMoment]:
        """Yield every moment that sends something, each controller's part apart, forever.

        A :class:`~mitelacd.sim.controllers.SiteMoment` holds one ACD chunk
        and one tuple of SMDR records per controller, the first
        controller's first; a controller that sends nothing then has
        ``b""`` and ``()``. Only one iteration per script.
        """
        if self._iterating:
            raise RuntimeError("a FloorScript can be iterated only once")
        self._iterating = True
        return self._run()

    def smdr_ledger(
        self,
        service_level_seconds: int = SERVICE_LEVEL_SECONDS,
        path_service_level_seconds: Mapping[str, int] | None = None,
        short_abandon_seconds: int = SHORT_ABANDON_SECONDS,
    ) -> SmdrLedger:
        """The callers' own count of the SMDR records yielded so far (:meth:`Callers.ledger`).

        Per path and 15-minute interval of the call's start: offered,
        answered, abandoned, short abandoned (within ``short_abandon_seconds``),
        interflowed, requeued, unavailable, answered within the path's target
        and the total time to answer; and answered per interval of the
        answer. Empty when ``smdr`` is off.
        """
        if self.callers is None:
            return SmdrLedger((), {}, {})
        return self.callers.ledger(
            service_level_seconds, path_service_level_seconds, short_abandon_seconds
        )

    def expected_legacy(self, controller: int = 0) -> dict[str, Any]:
        """The legacy view a correct listener holds after every chunk yielded so far.

        On a site of several controllers, that of a listener of
        ``controller``'s stream alone (an index, 0: the first): an agent who
        has left that controller is ``out`` there, as its last event there
        (a B) said.
        """
        agents = self.floor.by_id
        wire = self.wires[controller]
        return {
            "agents": {
                a: agents[a].status() if agents[a].controller == controller else "out"
                for a in wire.named
            },
            "groups": {g: dict(v) for g, v in wire.groups.items()},
            "paths": {p: dict(v) for p, v in wire.paths.items()},
        }

    def controller_views(self) -> list[ControllerView]:
        """What each controller's stream has said so far: its legacy view and last events."""
        views, last = [], self.floor.last_events
        for controller in range(self.controllers):
            legacy = self.expected_legacy(controller)
            agents = {
                a: AgentSeen(status, last[(a, controller)])
                for a, status in legacy["agents"].items()
            }
            views.append(ControllerView(agents, legacy["groups"], legacy["paths"]))
        return views

    def expected_merged_legacy(self, failover_seconds: float = FAILOVER_SECONDS) -> dict[str, Any]:
        """The legacy view of the merged floor after every moment yielded so far.

        :func:`~mitelacd.sim.controllers.merge_legacy` (state-model.md §9)
        applied to :meth:`controller_views`, at the last moment yielded. With
        one controller it is :meth:`expected_legacy`.
        """
        return merge_legacy(self.controller_views(), self.now, failover_seconds)

    def moves(self) -> tuple[Move, ...]:
        """Agents that logged out on one controller and in on another so far, in order."""
        return tuple(self.floor.moves)

    def failovers(self, failover_seconds: float = FAILOVER_SECONDS) -> tuple[Move, ...]:
        """The moves that are failovers: the A within ``failover_seconds`` of the B."""
        return tuple(m for m in self.floor.moves if m.within(failover_seconds))

    def controller_of(self, agent: str) -> int:
        """The controller (index) agent ``agent`` is on now, or will log in on next."""
        return self.floor.by_id[agent].controller

    def day_counts(self) -> dict[str, dict[str, int]]:
        """Per agent, the calls the floor made it answer, take and make so far.

        Counted by the floor as it decided them, not read back from the wire:
        ``acd_calls`` (G and S), ``personal_calls`` (H), ``outgoing_calls`` (I)
        and ``wrap_ups`` (L).
        """
        names = {"acd_calls": "GS", "personal_calls": "H", "outgoing_calls": "I", "wrap_ups": "L"}
        counts: dict[str, dict[str, int]] = {}
        for (agent, code), n in self.floor.events_by_agent.items():
            mine = counts.setdefault(agent, dict.fromkeys(names, 0))
            for name, codes in names.items():
                if code in codes:
                    mine[name] += n
        return counts

    def answered_by_path(self) -> dict[str, int]:
        """ACD calls answered (G and S) per path so far, as the floor decided them."""
        return dict(self.floor.answered_by_path)

    def names(self) -> Names:
        """Made-up names for this floor's agents, groups and paths, the same for the same seed.

        Drawn from a random source of their own: asking for them changes nothing of the day.
        """
        return floor_names(self.plan, random.Random(f"names {self.seed}"))

    @property
    def frozen(self) -> bool:
        """The event budget is spent: only clean K/Q/R bursts follow."""
        return self.floor.frozen

    @property
    def faults(self) -> FaultCounts:
        """What was injected into the bytes yielded so far (the first controller's)."""
        return self.wire.counts

    # --- the engine ----------------------------------------------------------

    def _run(self) -> Iterator[SiteMoment]:
        k = 0
        schedule = self.schedule
        callers = self.callers
        wires = self.wires
        nothing: tuple[tuple[SmdrEntry, ...], ...] = ((),) * self.controllers
        while True:
            burst_at = k * self.cycle
            while not self.frozen:
                t = schedule.next_time()
                if t is None or t > burst_at:
                    break
                self._instant(t)
                chunks = tuple(wire.take() for wire in wires)
                records = callers.take_by_controller() if callers is not None else nothing
                if any(chunks) or any(records):
                    self.now = float(t)
                    yield SiteMoment(float(t), chunks, records)
            self.now = burst_at
            yield SiteMoment(burst_at, self._burst(burst_at), nothing)
            k += 1

    def _instant(self, t: float) -> None:
        """Everything due at ``t``, including what it schedules for ``t`` itself."""
        floor = self.floor
        try:
            while not floor.frozen:
                action = self.schedule.pop_due(t)
                if action is None:
                    break
                fn, args = action
                fn(t, *args)
                if not floor.frozen:
                    floor.dispatch(t)
        except Frozen:
            pass
        if floor.frozen and self._frozen_figures is None:
            self._freeze(t)

    def _figures(self, t: float) -> list[tuple[Figures, Figures]]:
        """Each controller's K and Q figures at ``t``."""
        if self.controllers == 1:
            return [self.floor.figures(t)]
        return [self.floor.figures(t, c) for c in range(self.controllers)]

    def _freeze(self, t: float) -> None:
        """The floor stops: its figures are kept, and the streams are clean from here."""
        self._frozen_figures = self._figures(t)
        for wire in self.wires:
            wire.stop_faults()

    def _burst(self, t: float) -> tuple[bytes, ...]:
        """Each controller's K/Q/R burst at ``t``."""
        plan, chunks = self.plan, []
        for wire, (groups, paths) in zip(self.wires, self._frozen_figures or self._figures(t)):
            for num, (waiting, agents, longest) in groups.items():
                trailing = num not in plan.short_groups
                wire.stats(t, "K", num, waiting, agents, longest, trailing)
            for num, (waiting, agents, longest) in paths.items():
                trailing = num not in plan.short_paths
                wire.stats(t, "Q", num, waiting, agents, longest, trailing)
            wire.refresh(t)
            chunks.append(wire.take())
        return tuple(chunks)


# --- the TCP side -----------------------------------------------------------


class FeedProtocol(protocol.Protocol):
    """One listener. A push producer, so a client that stops reading is noticed."""

    factory: Broadcast
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


class Broadcast(protocol.ServerFactory):
    """Clients that each get what is sent from the moment they connected."""

    protocol = FeedProtocol  # type: ignore[assignment]
    noisy = False  # we log clients ourselves; "Starting factory" says nothing useful
    #: How the log names the clients: "client" or "SMDR client".
    what = "client"

    def __init__(self, max_backlog: int = 1 << 20) -> None:
        self.max_backlog = max_backlog
        self.clients: list[FeedProtocol] = []

    def clientConnected(self, client: FeedProtocol) -> None:
        self.clients.append(client)
        log.info(
            "{what} {peer} connected ({count} connected)",
            what=self.what,
            peer=_peer(client.transport),
            count=len(self.clients),
        )

    def clientGone(self, client: FeedProtocol) -> None:
        if client in self.clients:
            self.clients.remove(client)
            log.info(
                "{what} {peer} disconnected ({count} connected)",
                what=self.what,
                peer=_peer(client.transport),
                count=len(self.clients),
            )

    def broadcast(self, data: bytes) -> None:
        for client in list(self.clients):
            client.send(data)

    def hang_up(self) -> None:
        for client in list(self.clients):
            client.transport.loseConnection()


class SmdrFactory(Broadcast):
    """The SMDR port: each record laid out in ``layout``, CR LF after it, to every client.

    No handshake, no replay: a client gets the records sent after it
    connected. A party wider than the layout's field keeps its last
    characters (:func:`~mitelacd.sim.smdrwire.format_smdr` with ``fit``).
    """

    what = "SMDR client"

    def __init__(
        self, layout: SmdrLayout = STANDARD, clock24: bool = False, max_backlog: int = 1 << 20
    ) -> None:
        super().__init__(max_backlog)
        self.layout, self.clock24 = layout, clock24
        #: Records sent (to every client connected then).
        self.records = 0

    def send(self, entries: Iterable[SmdrEntry]) -> None:
        lines = [encode_smdr(e, self.layout, clock24=self.clock24, fit=True) for e in entries]
        self.records += len(lines)
        if lines and self.clients:
            self.broadcast(b"".join(lines))


class FeedFactory(Broadcast):
    """Broadcasts one script to every client, paced by ``clock`` from the first connect.

    With ``smdr``, the script's SMDR records go to that factory's clients at
    their moments, from the same first connect to this one.

    A script of several controllers has a port per controller: this
    factory is the first one's, and :attr:`feeds` holds them all (this one
    first, then a :class:`ControllerFeed` for each other). The day starts
    when the first client connects to any of them; each gets its own
    controller's bytes, and ``smdr_feeds`` (one or None per controller,
    instead of ``smdr``) each controller's SMDR records.
    """

    max_chunks_per_tick = 1000  # so a huge speed cannot starve the reactor

    def __init__(
        self,
        script: FloorScript,
        clock: IReactorTime,
        speed: float = 1.0,
        max_backlog: int = 1 << 20,
        smdr: SmdrFactory | None = None,
        *,
        smdr_feeds: Sequence[SmdrFactory | None] | None = None,
        wait_for_clients: int = 0,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        super().__init__(max_backlog)
        #: The day starts once every controller's port has this many clients (0: at the first).
        self.wait_for_clients = wait_for_clients
        count = script.controllers
        if smdr_feeds is None:
            smdr_feeds = [smdr] + [None] * (count - 1)
        if len(smdr_feeds) != count:
            raise ValueError(f"need one SMDR feed (or None) per controller: {count}")
        self.script, self.speed = script, speed
        #: Each controller's SMDR port (None: no SMDR for it); ``smdr`` is the first one's.
        self.smdr_feeds: list[SmdrFactory | None] = list(smdr_feeds)
        self.smdr = self.smdr_feeds[0]
        #: Each controller's ACD port: this one, then the others'.
        self.feeds: list[Broadcast] = [self]
        self.feeds += [ControllerFeed(self, c, max_backlog) for c in range(1, count)]
        if count > 1:
            self.what = "controller 1 client"
        self._clock = clock
        self._moments: Iterator[SiteMoment] | None = None
        self._next: SiteMoment | None = None
        self._timer: IDelayedCall | None = None
        self.started_at: float | None = None
        self.stopped = False

    def clientConnected(self, client: FeedProtocol) -> None:
        super().clientConnected(client)
        self.start()

    def start(self) -> None:
        """The day starts now, unless it has already (or the feed is stopped).

        With :attr:`wait_for_clients`, only once every controller's port has that many.
        """
        if any(len(feed.clients) < self.wait_for_clients for feed in self.feeds):
            return
        if self.started_at is None and not self.stopped:
            self.started_at = self._clock.seconds()
            self._moments = self.script.site_timeline()
            self._next = next(self._moments)
            self._tick()

    def _tick(self) -> None:
        """Send every chunk that is due, then sleep until the next one.

        At most :attr:`max_chunks_per_tick` moments with ACD bytes a tick,
        and the SMDR records of the moments among them.
        """
        self._timer = None
        assert self._moments is not None and self._next is not None
        assert self.started_at is not None
        now = self._clock.seconds()
        sent = 0
        while sent < self.max_chunks_per_tick:
            moment = self._next
            if self.started_at + moment.t / self.speed > now + 1e-9:
                break
            if any(moment.acd):
                for feed, chunk in zip(self.feeds, moment.acd):
                    if chunk:
                        feed.broadcast(chunk)
                sent += 1
            for smdr, records in zip(self.smdr_feeds, moment.smdr):
                if records and smdr is not None:
                    smdr.send(records)
            self._next = next(self._moments)
        due = self.started_at + self._next.t / self.speed
        self._timer = self._clock.callLater(max(0.0, due - now), self._tick)

    def stop(self) -> None:
        """Stop the clock and hang up on everyone (on every controller's ACD port)."""
        self.stopped = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        for feed in self.feeds:
            feed.hang_up()


class ControllerFeed(Broadcast):
    """The ACD port of a site's controller ``index`` (not the first): what :attr:`lead` sends it.

    Its first client starts the day, as the first controller's does.
    """

    def __init__(self, lead: FeedFactory, index: int, max_backlog: int = 1 << 20) -> None:
        super().__init__(max_backlog)
        self.lead, self.index = lead, index
        self.what = f"controller {index + 1} client"

    def clientConnected(self, client: FeedProtocol) -> None:
        super().clientConnected(client)
        self.lead.start()


class SimulatorService(service.Service):
    """Listens like the ICP's port 15373; ``port`` holds the bound port once started.

    With ``smdr_port`` (0: any free port) it also listens for SMDR clients,
    on ``smdr_interface`` (default: ``interface``), and sends them the
    script's SMDR records laid out in ``smdr_layout``; ``smdr_port`` then
    holds the bound port once started. If that port cannot be listened on,
    a warning says so and the ACD stream is served alone (``smdr_port``
    stays None). The day starts when the first ACD client connects; an SMDR
    client connected before gets the records from then on.

    A script of several controllers is served on a port per controller:
    controller ``k`` (from 0) on ``port + k`` (each on a free port with 0),
    and likewise for SMDR from ``smdr_port``. :attr:`ports` and
    :attr:`smdr_ports` hold the bound ports by controller once started
    (None for an SMDR port that could not be listened on); ``port`` and
    ``smdr_port`` are the first controller's.
    """

    def __init__(
        self,
        script: FloorScript,
        port: int = 15373,
        interface: str = "127.0.0.1",
        speed: float = 1.0,
        reactor: Any = None,
        *,
        smdr_port: int | None = None,
        smdr_interface: str | None = None,
        smdr_layout: SmdrLayout = STANDARD,
        wait_for_clients: int = 0,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor
        self._reactor: IReactorTCP = reactor
        self.requested_port, self.interface = port, interface
        self.requested_smdr_port = smdr_port
        self.smdr_interface = interface if smdr_interface is None else smdr_interface
        count = script.controllers
        smdr_feeds: list[SmdrFactory | None] = [None] * count
        if smdr_port is not None:
            smdr_feeds = [SmdrFactory(smdr_layout) for _ in range(count)]
        if count > 1:
            for c, feed in enumerate(smdr_feeds):
                if feed is not None:
                    feed.what = f"controller {c + 1} SMDR client"
        self.smdr: SmdrFactory | None = smdr_feeds[0]
        self.factory = FeedFactory(
            script,
            clock=reactor,
            speed=speed,
            smdr_feeds=smdr_feeds,
            wait_for_clients=wait_for_clients,
        )
        self.port: int | None = None
        self.smdr_port: int | None = None
        #: The bound ports, by controller, once started.
        self.ports: list[int] = []
        self.smdr_ports: list[int | None] = []
        self._listening: list[IListeningPort] = []

    def _about(self, c: int) -> str:
        """How a log line names controller ``c``: nothing when it is the only one."""
        count = self.factory.script.controllers
        return f"controller {c + 1} of {count}, " if count > 1 else ""

    @staticmethod
    def _nth(port: int, c: int) -> int:
        return port + c if port else 0

    def startService(self) -> None:
        super().startService()
        script = self.factory.script
        self.ports, self.smdr_ports = [], []
        for c, feed in enumerate(self.factory.feeds):
            try:
                listening = self._reactor.listenTCP(
                    self._nth(self.requested_port, c), feed, interface=self.interface
                )
            except error.CannotListenError:
                self._stop_listening()
                raise
            self._listening.append(listening)
            bound = cast(Any, listening.getHost()).port  # IPv4 or IPv6: both have .port
            self.ports.append(bound)
            ahead = c * script.clock_skew
            log.info(
                "simulated ICP feed on {interface} port {port}"
                " ({controller}seed {seed}, {eol}{faults}{clock})",
                interface=self.interface,
                port=bound,
                controller=self._about(c),
                seed=script.seed,
                eol=_EOL_WORDS[script.eol],
                faults=_fault_settings(script.wire.faults, script.wire.noise),
                clock=f", its clock {ahead:g} s ahead of controller 1's" if ahead else "",
            )
        self.port = self.ports[0]
        if self.requested_smdr_port is not None:
            for c, smdr in enumerate(self.factory.smdr_feeds):
                assert smdr is not None
                self.smdr_ports.append(
                    self._listen_smdr(smdr, self._nth(self.requested_smdr_port, c), c)
                )
            self.smdr_port = self.smdr_ports[0]
        if script.failover is not None:
            self._log_failover(script.failover)

    def _listen_smdr(self, smdr: SmdrFactory, port: int, c: int) -> int | None:
        interface = self.smdr_interface
        try:
            listening = self._reactor.listenTCP(port, smdr, interface=interface)
        except error.CannotListenError as e:
            log.warn(
                "no SMDR{of}: cannot listen on {interface} port {port} ({why});"
                " {whose} ACD stream is served alone",
                of=f" for controller {c + 1}" if self.factory.script.controllers > 1 else "",
                interface=interface,
                port=port,
                why=e.socketError,
                whose="its" if self.factory.script.controllers > 1 else "the",
            )
            return None
        self._listening.append(listening)
        bound: int = cast(Any, listening.getHost()).port
        log.info(
            "simulated ICP SMDR on {interface} port {port} ({controller}{layout} records,"
            " CR LF after each; the controller's clock starts at {start})",
            interface=interface,
            port=bound,
            controller=self._about(c),
            layout=smdr.layout.name,
            start=self.factory.script.wires[c].start.isoformat(),
        )
        return bound

    def _log_failover(self, plan: FailoverPlan) -> None:
        if plan.agents is None:
            who = "every agent"
        else:
            who = f"{plan.agents} agent{'s' if plan.agents != 1 else ''}"
        log.info(
            "failover at second {at:g} of the day from controller {source} to controller"
            " {target}: {who}, each logging in {delay} s after its logout{late}",
            at=plan.at,
            source=plan.source + 1,
            target=plan.target + 1,
            who=who,
            delay=plan.delay,
            late=f"; the last {plan.late} {plan.late_delay} s after it" if plan.late else "",
        )

    def stopService(self) -> Any:
        super().stopService()
        self.factory.stop()
        for smdr in self.factory.smdr_feeds:
            if smdr is not None:
                smdr.hang_up()
        script = self.factory.script
        for c, wire in enumerate(script.wires):
            if wire.faults or wire.noise or wire.counts != FaultCounts():
                counts = wire.counts
                log.info(
                    "faults sent{by}: {gaps} numbering gaps ({skipped} numbers skipped),"
                    " {duplicates} duplicates, {noise} noise lines, {nuls} NUL runs",
                    by=f" by controller {c + 1}" if script.controllers > 1 else "",
                    gaps=counts.gaps,
                    skipped=counts.records_skipped,
                    duplicates=counts.duplicates,
                    noise=counts.noise_lines,
                    nuls=counts.nul_runs,
                )
        return self._stop_listening()

    def _stop_listening(self) -> Any:
        listening, self._listening = self._listening, []
        if len(listening) == 1:
            return listening[0].stopListening()
        if not listening:
            return None
        return defer.gatherResults([defer.maybeDeferred(p.stopListening) for p in listening])


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


def _eol(value: str) -> Eol:
    for eol in EOLS:
        if value == eol:
            return eol
    raise ValueError(f"--eol wants one of {', '.join(EOLS)}, not {value!r}")


_eol.coerceDoc = ""  # type: ignore[attr-defined]


def _smdr_port(value: str) -> int | None:
    """``--smdr-port``: a port number, or ``none`` for no SMDR."""
    if value.strip().lower() == "none":
        return None
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise ValueError(f"--smdr-port wants a port number (0-65535) or none, not {value!r}")
    return port


_smdr_port.coerceDoc = ""  # type: ignore[attr-defined]


def _smdr_layout(value: str) -> str:
    """``--smdr-layout``: one of :data:`~mitelacd.floor.smdr.LAYOUT_NAMES`, by its name."""
    try:
        name = layout_named(value).name
    except ValueError:
        name = ""
    if name not in LAYOUT_NAMES:
        raise ValueError(f"--smdr-layout wants one of {', '.join(LAYOUT_NAMES)}; not {value!r}")
    return name


_smdr_layout.coerceDoc = ""  # type: ignore[attr-defined]


_EOL_WORDS: dict[Eol, str] = {
    "crlf": "CR LF after each record",
    "lf": "LF after each record",
    "cr": "CR after each record",
    "none": "no record terminator",
}


def _fault_settings(faults: bool, noise: bool) -> str:
    """The fault settings for a log line: nothing when the stream is clean."""
    if faults:
        return ", with numbering faults and noise" if noise else ", with numbering faults"
    return ", with noise" if noise else ""


def _start(value: str) -> datetime.datetime | str:
    """``--start``: ``now``, or a local date and time."""
    if value.strip().lower() == "now":
        return "now"
    try:
        start = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise usage.UsageError(
            f"--start must be 'now' or a date and time, YYYY-MM-DDTHH:MM, not {value!r}"
        ) from None
    if start.tzinfo is not None:
        raise usage.UsageError("--start is local time: give it without a zone")
    return start


class Options(CommandOptions):
    synopsis = "[--port 15373] [--agents 40] [--seed N] [--eol crlf|lf|cr|none] [--faults] ..."
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
        [
            "wait-for-clients",
            None,
            0,
            "Start the day once every controller's ACD port has this many clients, not at"
            " the first client: listeners of several streams then hear each from its start.",
            _whole("--wait-for-clients"),
        ],
        [
            "start",
            None,
            "now",
            "The controller's clock at the start of the day (its K/Q/R and SMDR records),"
            " as YYYY-MM-DDTHH:MM[:SS] local time; 'now': this machine's clock.",
            _start,
        ],
        [
            "eol",
            None,
            "crlf",
            "What ends each record: crlf, lf, cr, or none (a record then ends at the next STX).",
            _eol,
        ],
        [
            "smdr-port",
            None,
            SMDR_PORT,
            "TCP port to send the SMDR records of the same calls on (0 = any free port;"
            " none = no SMDR). If it is taken, the ACD stream is served alone.",
            _smdr_port,
        ],
        [
            "smdr-layout",
            None,
            "standard",
            "The SMDR options the records are laid out with: " + ", ".join(LAYOUT_NAMES) + ".",
            _smdr_layout,
        ],
        [
            "controllers",
            None,
            1,
            "Controllers of the site (1-4), the agents split between them; each sends its own"
            " ACD stream on --port, --port + 1, ... and SMDR on --smdr-port, --smdr-port + 1, ...",
            _whole("--controllers"),
        ],
        [
            "clock-skew",
            None,
            0.0,
            "Seconds each controller's clock runs ahead of the one before (-300 to 300).",
            _real("--clock-skew"),
        ],
        [
            "failover-at",
            None,
            None,
            "At this simulated second of the day, agents of controller 1 log out there and log"
            " in on controller 2 (needs --controllers 2 or more).",
            _whole("--failover-at"),
        ],
        [
            "failover-agents",
            None,
            None,
            "How many agents of controller 1 fail over, those logged in first"
            " (default: every one, as when a resilient pair's primary fails).",
            _whole("--failover-agents"),
        ],
        [
            "failover-delay",
            None,
            5,
            "Seconds from a failing-over agent's logout to its login on controller 2"
            f" (1-{FAILOVER_SECONDS:g}: inside the failover window).",
            _whole("--failover-delay"),
        ],
        [
            "failover-late",
            None,
            0,
            f"Of the agents failing over, this many (the last) log in only"
            f" {FAILOVER_LATE_SECONDS} s after their logout: outside the window, a logout"
            " then a login.",
            _whole("--failover-late"),
        ],
    ]
    optFlags = [
        [
            "faults",
            None,
            "Now and then skip 1-3 record numbers (a gap; nothing is lost) and send a record"
            " twice under one number (a duplicate; only records that change nothing the second"
            " time). Implies --noise. They stop when --events freezes the floor.",
        ],
        [
            "noise",
            None,
            "Put runs of NUL bytes between records, and now and then a short line of garbage"
            " (no STX) before a record; never inside one.",
        ],
    ]

    #: What --replay leaves out: the floor comes from the capture, and no SMDR is served.
    _FLOOR_OPTIONS = (
        "agents", "groups", "paths", "seed", "events", "cycle", "start", "eol", "smdr-port",
        "smdr-layout", "controllers", "clock-skew", "failover-at", "failover-agents",
        "failover-delay", "failover-late",
    )  # fmt: skip
    _FLOOR_FLAGS = ("faults", "noise")

    def __init__(self) -> None:
        super().__init__()
        self["replay"] = []

    def opt_replay(self, path: str) -> None:
        self["replay"].append(path)

    opt_replay.__doc__ = (
        "Serve this capture (from mitelacd --record, plain or .gz) byte for byte instead"
        " of a simulated floor, its timing scaled by --speed; give it again for more files"
        " (docs/capture.md). The floor and SMDR options do not apply: no SMDR is served."
    )

    def postOptions(self) -> None:
        if self["replay"]:
            self._check_replay()
        checks = [
            (0 <= self["port"] <= 65535, "--port must be between 0 and 65535"),
            (1 <= self["agents"] <= 999, "--agents must be between 1 and 999"),
            (1 <= self["groups"] <= 99, "--groups must be between 1 and 99"),
            (1 <= self["paths"] <= 99, "--paths must be between 1 and 99"),
            (self["speed"] > 0, "--speed must be greater than 0"),
            (self["events"] is None or self["events"] >= 0, "--events must be 0 or more"),
            (self["cycle"] > 0, "--cycle must be greater than 0"),
        ]
        for ok, message in checks + self._site_checks():
            if not ok:
                raise usage.UsageError(message)

    def _site_checks(self) -> list[tuple[bool, str]]:
        """The checks of --controllers, --clock-skew and the failover options."""
        count, port, smdr = self["controllers"], self["port"], self["smdr-port"]
        acd_ports = {port + c for c in range(count)} if port else set()
        smdr_ports = {smdr + c for c in range(count)} if smdr else set()
        failover = self["failover-at"] is not None
        given = [
            f"--{n}"
            for n in ("failover-agents", "failover-delay", "failover-late")
            if self[n] != self.defaults[n]
        ]
        agents, late = self["failover-agents"], self["failover-late"]
        return [
            (1 <= count <= 4, "--controllers must be between 1 and 4"),
            (0 <= self["wait-for-clients"] <= 100, "--wait-for-clients must be between 0 and 100"),
            (-300 <= self["clock-skew"] <= 300, "--clock-skew must be between -300 and 300"),
            (count <= self["agents"], "--agents must be at least --controllers"),
            (
                max(acd_ports, default=0) <= 65535,
                f"--port must leave {count} ports up to 65535: one per controller",
            ),
            (
                max(smdr_ports, default=0) <= 65535,
                f"--smdr-port must leave {count} ports up to 65535: one per controller",
            ),
            (
                count == 1 or not acd_ports & smdr_ports,
                "the controllers' ACD ports (from --port) and SMDR ports (from --smdr-port)"
                " overlap",
            ),
            (not failover or self["failover-at"] >= 0, "--failover-at must be 0 or more"),
            (not failover or count >= 2, "--failover-at needs --controllers 2 or more"),
            (failover or not given, f"{', '.join(given)} needs --failover-at"),
            (agents is None or agents >= 1, "--failover-agents must be 1 or more"),
            (
                1 <= self["failover-delay"] <= FAILOVER_SECONDS,
                f"--failover-delay must be between 1 and {FAILOVER_SECONDS:g}",
            ),
            (
                0 <= late and (agents is None or late <= agents),
                "--failover-late must be between 0 and --failover-agents",
            ),
        ]

    def _check_replay(self) -> None:
        given = [
            f"--{n}"
            for n in self._FLOOR_OPTIONS
            if self[n] != self.defaults[n] and not (n == "smdr-port" and self[n] is None)
        ]
        given += [f"--{n}" for n in self._FLOOR_FLAGS if self[n]]
        if given:
            raise usage.UsageError(
                f"--replay serves a capture as it was: {', '.join(given)} cannot apply"
            )
        from mitelacd.feed.capture import CaptureError, CaptureReader

        for path in self["replay"]:
            try:
                CaptureReader(path).close()
            except CaptureError as e:
                raise usage.UsageError(f"--replay: {e}") from None


def makeService(options: Options, reactor: Any = None) -> Any:
    """A :class:`SimulatorService`, or with ``--replay`` a ``ReplayService``."""
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    if options["replay"]:
        from mitelacd.sim.replayserver import ReplayService

        return ReplayService(
            options["replay"],
            port=options["port"],
            interface=options["interface"],
            speed=options["speed"],
            reactor=reactor,
        )
    seed = options["seed"]
    if seed is None:
        seed = random_seed()
    script = FloorScript(
        seed=seed,
        # By default the controller's clock is this machine's: a listener
        # places SMDR records by their date and start time.
        start=(
            datetime.datetime.now().replace(microsecond=0)
            if options["start"] == "now"
            else options["start"]
        ),
        agents=options["agents"],
        groups=options["groups"],
        paths=options["paths"],
        events=options["events"],
        cycle=options["cycle"],
        eol=options["eol"],
        faults=bool(options["faults"]),
        noise=bool(options["faults"] or options["noise"]),
        controllers=options["controllers"],
        clock_skew=options["clock-skew"],
        failover=(
            None
            if options["failover-at"] is None
            else FailoverPlan(
                at=options["failover-at"],
                agents=options["failover-agents"],
                delay=options["failover-delay"],
                late=options["failover-late"],
            )
        ),
    )
    return SimulatorService(
        script,
        port=options["port"],
        interface=options["interface"],
        speed=options["speed"],
        reactor=reactor,
        smdr_port=options["smdr-port"],
        smdr_layout=layout_named(options["smdr-layout"]),
        wait_for_clients=options["wait-for-clients"],
    )
