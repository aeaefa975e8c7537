"""A fake Mitel 3300 ICP that sends ACD real time events, for demos and tests.

The parts:

* :class:`FloorScript` runs a seeded day: it pops what is due from a
  :class:`~mitelacd.sim.schedule.Scheduler`, lets the
  :class:`~mitelacd.sim.floor.Floor` decide, has a
  :class:`~mitelacd.sim.wire.Wire` turn it into the exact bytes of
  docs/protocol.md (with the chosen terminator and faults), and
  answers what a correct listener's legacy view must be
  (:meth:`FloorScript.expected_legacy`), so an end-to-end test can compare
  the daemon against it.
* :class:`SimulatorService` serves those bytes on TCP like the PBX does on
  port 15373, paced by an injected clock.

K/Q/R come in one burst at t=0 and then every ``cycle`` seconds; agent
events due at the same instant are sent before the burst. What the floor
does where the protocol documents are silent is listed in
:mod:`mitelacd.sim.floor`.
"""

from __future__ import annotations

import datetime
import functools
import random
from collections.abc import Callable, Iterator
from typing import Any, cast

from twisted.application import service
from twisted.internet import protocol
from twisted.internet.interfaces import IDelayedCall, IListeningPort, IReactorTCP, IReactorTime
from twisted.python import usage

from mitelacd.cli import CommandOptions
from mitelacd.floor.names import Names
from mitelacd.logs import Logger
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
    "FaultCounts",
    "FeedFactory",
    "FeedProtocol",
    "FloorPlan",
    "FloorScript",
    "Options",
    "SimulatorService",
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
    ) -> None:
        if agents < 1 or not 1 <= groups <= 99 or not 1 <= paths <= 99 or cycle <= 0:
            raise ValueError("need agents >= 1, 1 <= groups, paths <= 99 and cycle > 0")
        if events is not None and events < 0:
            raise ValueError("events must be >= 0")
        self.seed, self.start, self.cycle, self.events = seed, start, float(cycle), events
        self.eol = eol
        self.schedule = Scheduler()
        self.wire = Wire(
            seed, start, eol=eol, faults=faults, noise=faults if noise is None else noise
        )
        self.floor = Floor(
            random.Random(seed), self.schedule, self.wire, agents, groups, paths, events
        )
        self.plan: FloorPlan = self.floor.plan
        self._frozen_figures: tuple[Figures, Figures] | None = None
        if self.floor.frozen:
            self._freeze(0.0)
        self._iterating = False

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
        agents = self.floor.by_id
        wire = self.wire
        return {
            "agents": {a: agents[a].status() for a in wire.named},
            "groups": {g: dict(v) for g, v in wire.groups.items()},
            "paths": {p: dict(v) for p, v in wire.paths.items()},
        }

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
        """What was injected into the bytes yielded so far."""
        return self.wire.counts

    # --- the engine ----------------------------------------------------------

    def _run(self) -> Iterator[tuple[float, bytes]]:
        k = 0
        schedule = self.schedule
        while True:
            burst_at = k * self.cycle
            while not self.frozen:
                t = schedule.next_time()
                if t is None or t > burst_at:
                    break
                self._instant(t)
                chunk = self.wire.take()
                if chunk:
                    yield float(t), chunk
            yield burst_at, self._burst(burst_at)
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

    def _freeze(self, t: float) -> None:
        """The floor stops: its figures are kept, and the stream is clean from here."""
        self._frozen_figures = self.floor.figures(t)
        self.wire.stop_faults()

    def _burst(self, t: float) -> bytes:
        groups, paths = self._frozen_figures or self.floor.figures(t)
        wire, plan = self.wire, self.plan
        for num, (waiting, agents, longest) in groups.items():
            trailing = num not in plan.short_groups
            wire.stats(t, "K", num, waiting, agents, longest, trailing)
        for num, (waiting, agents, longest) in paths.items():
            trailing = num not in plan.short_paths
            wire.stats(t, "Q", num, waiting, agents, longest, trailing)
        wire.refresh(t)
        return wire.take()


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
        script = self.factory.script
        log.info(
            "simulated ICP feed on {interface} port {port} (seed {seed}, {eol}{faults})",
            interface=self.interface,
            port=self.port,
            seed=script.seed,
            eol=_EOL_WORDS[script.eol],
            faults=_fault_settings(script.wire.faults, script.wire.noise),
        )

    def stopService(self) -> Any:
        super().stopService()
        self.factory.stop()
        script = self.factory.script
        if script.wire.faults or script.wire.noise or script.faults != FaultCounts():
            counts = script.faults
            log.info(
                "faults sent: {gaps} numbering gaps ({skipped} numbers skipped),"
                " {duplicates} duplicates, {noise} noise lines, {nuls} NUL runs",
                gaps=counts.gaps,
                skipped=counts.records_skipped,
                duplicates=counts.duplicates,
                noise=counts.noise_lines,
                nuls=counts.nul_runs,
            )
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


def _eol(value: str) -> Eol:
    for eol in EOLS:
        if value == eol:
            return eol
    raise ValueError(f"--eol wants one of {', '.join(EOLS)}, not {value!r}")


_eol.coerceDoc = ""  # type: ignore[attr-defined]


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
            "eol",
            None,
            "crlf",
            "What ends each record: crlf, lf, cr, or none (a record then ends at the next STX).",
            _eol,
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

    #: What --replay leaves out: the floor comes from the capture.
    _FLOOR_OPTIONS = ("agents", "groups", "paths", "seed", "events", "cycle", "eol")
    _FLOOR_FLAGS = ("faults", "noise")

    def __init__(self) -> None:
        super().__init__()
        self["replay"] = []

    def opt_replay(self, path: str) -> None:
        self["replay"].append(path)

    opt_replay.__doc__ = (
        "Serve this capture (from mitelacd --record, plain or .gz) byte for byte instead"
        " of a simulated floor, its timing scaled by --speed; give it again for more files"
        " (docs/capture.md). The floor options do not apply."
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
        for ok, message in checks:
            if not ok:
                raise usage.UsageError(message)

    def _check_replay(self) -> None:
        given = [f"--{n}" for n in self._FLOOR_OPTIONS if self[n] != self.defaults[n]]
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
        agents=options["agents"],
        groups=options["groups"],
        paths=options["paths"],
        events=options["events"],
        cycle=options["cycle"],
        eol=options["eol"],
        faults=bool(options["faults"]),
        noise=bool(options["faults"] or options["noise"]),
    )
    return SimulatorService(
        script,
        port=options["port"],
        interface=options["interface"],
        speed=options["speed"],
        reactor=reactor,
    )
