"""The callers behind the simulated floor's ACD calls, their SMDR records, and the ledger.

:class:`Callers` is told by the :class:`~mitelacd.sim.floor.Floor` what
becomes of each caller (it is the floor's
:class:`~mitelacd.sim.floor.CallWatch`), and adds a few callers of its own
that never reach the floor's queues. Each caller is one ACD path call and
leaves the SMDR records smdr-protocol.md §6.2 and §6.3 describe, each sent
when what it records happens:

* **answered**: an agent answered (the G or S of the ACD stream). One record
  when the conversation ends (J, L or P): the time to answer is the seconds
  from the caller's arrival on the path to the answer, queue and ringing
  both (reading (b) of §7), at most 999; the duration is the conversation;
  the called party is the agent; Digits Dialed ends with the agent's group.
* **requeued**: an agent's set rang and nobody answered. A record at once,
  ``R`` in the transfer flag and that agent as the called party; the caller
  is queued again and a later record of the same call says how it ended
  (answered after a requeue is one offered call, answered).
* **abandoned**: the caller gave up in the queue, or while a set rang:
  ``***``, the duration is the time since arrival (20 s or more on this
  floor).
* **interflowed**: of the callers who leave the queue after
  :data:`INTERFLOW_AFTER` seconds or more, :data:`INTERFLOW_SHARE` were
  interflowed rather than hanging up: ``I`` in the transfer flag, the path's
  interflow point in the third party. The ACD stream cannot tell the two.
* **short abandoned**: callers of the model's own (:data:`SHORT_SHARE` as
  many as the floor's) who hang up within 1 to 6 seconds, during the path's
  first announcement, before they are queued: they are in no Q record.
* **unavailable**: a caller of the model's own who arrives while no agent of
  the path's groups is logged in out of make busy and do not disturb, and a
  floor caller who finds the queue full, goes to the path's unavailable
  answer point at once: ``U``, the point in the third party, duration 0.

Every record of a call carries the same start (the arrival, on the
controller's clock: the simulated second in the time zone ``tz``), calling
party (a trunk), ANI and OLI call identifier (plane ``A``, the system
identifier, a call number), with sequence identifiers ``A``, ``B``, ... in
the order sent. A trunk carries one call at a time and is never seized
twice in one minute, so that without the OLI tail the documented key
(system identifier, calling party, ANI, date, start minute, path; §6.4)
tells every call apart, up to 1998 calls at once.

:meth:`Callers.ledger` is the model's own count of what it decided, as
state-model.md §8 counts it from the records sent so far: per path and
local 15-minute interval of the call's start (as
:class:`~mitelacd.floor.days.DayClock`), each call by what its last record
says; and the answered calls by the interval of the answer, as the ACD
stream's G and S count them, whether their record has gone out or not.

The callers draw from a random generator of their own, so the floor's day
and its ACD stream are the same with or without them.

On a site of several controllers (:mod:`mitelacd.sim.controllers`), a
call's records are those of the controller it arrived on (a floor caller's
controller; one drawn at random for a caller of the model's own): its
system identifier (:attr:`Callers.system_ids`), in the call identifier too,
and its clock, ``clock_skew`` seconds a controller ahead of the one before.
:meth:`Callers.take_by_controller` gives each controller's records, and the
ledger counts each record by the clock it carries.
"""

from __future__ import annotations

import datetime
import random
from collections import Counter
from collections.abc import Mapping
from typing import Literal, get_args

import attrs

from mitelacd.floor.days import DayClock
from mitelacd.sim.floor import Agent, Caller, Floor
from mitelacd.sim.schedule import Scheduler
from mitelacd.sim.smdrwire import SmdrEntry

#: Callers of the model's own, short abandons and unavailable, per floor caller.
SHORT_SHARE = 0.08
#: The longest short abandon the model makes, in seconds.
SHORT_LONGEST = 6
#: A caller who leaves the queue after this many seconds may have been interflowed...
INTERFLOW_AFTER = 60
#: ...and was, this often.
INTERFLOW_SHARE = 0.35
#: The widest time to answer a 3-digit field holds.
ANSWER_LONGEST = 999
#: The system identifier of every record.
SYSTEM_ID = "001"
#: The OLI plane letter of every call identifier.
PLANE = "A"
#: MiContact Center's short-abandon threshold and the service level target (state-model §8).
SHORT_ABANDON_SECONDS = 6
SERVICE_LEVEL_SECONDS = 20

#: What a call's last record says, as the ledger counts it.
LedgerOutcome = Literal[
    "answered", "abandoned", "short_abandoned", "interflowed", "requeued", "unavailable"
]  # fmt: skip
LEDGER_OUTCOMES: tuple[LedgerOutcome, ...] = get_args(LedgerOutcome)
#: The figures of a :class:`LedgerInterval`, named as state-model §8 names them.
LEDGER_FIGURES: tuple[str, ...] = (
    "offered",
    *LEDGER_OUTCOMES,
    "answered_within_target",
    "time_to_answer_seconds",
)

#: What a record sent says (a short abandon is an abandon until a threshold is given).
_Sent = Literal["answered", "abandoned", "interflowed", "requeued", "unavailable"]
_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@attrs.frozen
class LedgerInterval:
    """One path's calls that started in one 15-minute interval, by what became of them."""

    path: str
    #: The interval's start, Unix seconds.
    start: int
    offered: int
    answered: int
    abandoned: int
    short_abandoned: int
    interflowed: int
    requeued: int
    unavailable: int
    #: Answered within the path's target (``service_level_seconds``).
    answered_within_target: int
    service_level_seconds: int
    #: Sum of the answered calls' times to answer.
    time_to_answer_seconds: int


@attrs.frozen
class SmdrLedger:
    """What the callers came to, as the records sent so far say (see the module notes)."""

    #: By interval start, then path; only intervals with calls.
    intervals: tuple[LedgerInterval, ...]
    #: Calls answered (G or S sent), by (path, interval start of the answer).
    answered_by_answer_interval: Mapping[tuple[str, int], int]
    #: Answered calls whose conversation goes on: their record is not sent yet.
    talking: Mapping[str, int]

    def interval(self, path: str, start: int) -> LedgerInterval | None:
        """The figures of ``path`` in the interval starting at ``start``, if it had calls."""
        for row in self.intervals:
            if row.path == path and row.start == start:
                return row
        return None

    def answered_by_path(self) -> dict[str, int]:
        """Answered calls per path whose record has been sent."""
        totals: dict[str, int] = {}
        for row in self.intervals:
            if row.answered:
                totals[row.path] = totals.get(row.path, 0) + row.answered
        return totals


@attrs.define
class _Row:
    """The calls of one path and interval, by their last record so far."""

    offered: int = 0
    requeued: int = 0
    interflowed: int = 0
    unavailable: int = 0
    #: Abandoned calls by duration, answered calls by time to answer.
    abandoned: Counter[int] = attrs.Factory(Counter)
    answered: Counter[int] = attrs.Factory(Counter)

    def count(self, sent: _Sent, seconds: int, by: int) -> None:
        if sent == "abandoned":
            self.abandoned[seconds] += by
        elif sent == "answered":
            self.answered[seconds] += by
        else:
            setattr(self, sent, getattr(self, sent) + by)


@attrs.define(eq=False)
class _Call:
    """One caller's call, while it lasts."""

    serial: int
    path: str
    arrived: float
    trunk: str
    ani: str
    row: tuple[str, int]
    controller: int = 0
    records: int = 0
    #: What its last record said, and the seconds the ledger keeps of it
    #: (duration of an abandon, time to answer of an answer).
    last: _Sent | None = None
    last_seconds: int = 0
    answered_at: float | None = None
    time_to_answer: int = 0
    agent: Agent | None = None


class _Trunks:
    """The trunks callers come in on (see the module notes)."""

    def __init__(self) -> None:
        self._free: list[str] = []
        self._minute: dict[str, tuple[int, ...]] = {}
        self._made = 0

    def seize(self, minute: tuple[int, ...]) -> str:
        for i, trunk in enumerate(self._free):
            if self._minute[trunk] != minute:
                del self._free[i]
                break
        else:
            trunk = self._new()
        self._minute[trunk] = minute
        return trunk

    def release(self, trunk: str) -> None:
        self._free.append(trunk)

    def _new(self) -> str:
        self._made += 1
        n = self._made
        if n <= 999:
            return f"T{n:03d}"
        if n <= 1998:
            return f"X{n - 999:03d}"
        return f"T{n:04d}"


class Callers:
    """The floor's callers and the model's own; their SMDR records, and the ledger."""

    def __init__(
        self,
        rng: random.Random,
        floor: Floor,
        schedule: Scheduler,
        epoch: float,
        tz: datetime.tzinfo | None = None,
        controllers: int = 1,
        clock_skew: float = 0.0,
    ) -> None:
        if controllers < 1:
            raise ValueError("need one controller or more")
        self._rng, self._floor, self._schedule = rng, floor, schedule
        self.epoch, self.tz = epoch, tz
        self.controllers, self.clock_skew = controllers, clock_skew
        #: Each controller's system identifier: the first is :data:`SYSTEM_ID`.
        self.system_ids = [SYSTEM_ID] + [f"{c + 1:03d}" for c in range(1, controllers)]
        self.days = DayClock(datetime.time(0, 0), tz)
        plan = floor.plan
        self._groups = {p: tuple(gs) for p, gs in plan.paths.items()}
        #: Per path: the number callers dial, the interflow point, the unavailable answer point.
        self.dnis = {p: f"55501{i % 100:02d}" for i, p in enumerate(plan.paths)}
        self.interflow_points = {p: f"25{i % 100:02d}" for i, p in enumerate(plan.paths)}
        self.unavailable_points = {p: f"26{i % 100:02d}" for i, p in enumerate(plan.paths)}
        self._trunks = _Trunks()
        self._calls: dict[Caller, _Call] = {}
        self._serials = 0
        self._out: list[tuple[int, SmdrEntry]] = []
        self._rows: dict[tuple[str, int], _Row] = {}
        self._answered_at: dict[tuple[str, int], int] = {}
        self._talking: dict[str, int] = dict.fromkeys(plan.paths, 0)
        #: Records sent so far.
        self.records = 0
        self._own_rate = floor.arrival_rate * SHORT_SHARE
        for path in plan.paths:
            schedule.at(self._gap(), self._own_caller, path)

    # --- output ---------------------------------------------------------------

    def take(self) -> list[SmdrEntry]:
        """The records sent since the last take, in order (of every controller)."""
        out, self._out = self._out, []
        return [entry for _, entry in out]

    def take_by_controller(self) -> tuple[tuple[SmdrEntry, ...], ...]:
        """The records sent since the last take, each controller's in order."""
        out, self._out = self._out, []
        return tuple(
            tuple(entry for c, entry in out if c == controller)
            for controller in range(self.controllers)
        )

    @property
    def talking(self) -> dict[str, int]:
        """Per path, the answered calls whose conversation goes on (no record sent yet)."""
        return {p: n for p, n in self._talking.items() if n}

    def ledger(
        self,
        service_level_seconds: int = SERVICE_LEVEL_SECONDS,
        path_service_level_seconds: Mapping[str, int] | None = None,
        short_abandon_seconds: int = SHORT_ABANDON_SECONDS,
    ) -> SmdrLedger:
        """The ledger now; targets and the short-abandon threshold as state-model §8 has them."""
        targets = path_service_level_seconds or {}
        intervals = []
        for (path, start), row in sorted(self._rows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            if not row.offered:
                continue
            target = targets.get(path, service_level_seconds)
            short = sum(n for d, n in row.abandoned.items() if d <= short_abandon_seconds)
            intervals.append(
                LedgerInterval(
                    path=path,
                    start=start,
                    offered=row.offered,
                    answered=sum(row.answered.values()),
                    abandoned=sum(row.abandoned.values()) - short,
                    short_abandoned=short,
                    interflowed=row.interflowed,
                    requeued=row.requeued,
                    unavailable=row.unavailable,
                    answered_within_target=sum(
                        n for tta, n in row.answered.items() if tta <= target
                    ),
                    service_level_seconds=target,
                    time_to_answer_seconds=sum(tta * n for tta, n in row.answered.items()),
                )
            )
        return SmdrLedger(tuple(intervals), dict(self._answered_at), self.talking)

    # --- what the floor tells (CallWatch) ---------------------------------------

    def arrived(self, t: float, caller: Caller) -> None:
        self._calls[caller] = self._call(t, caller.path, caller.controller)

    def turned_away(self, t: float, path: str, controller: int = 0) -> None:
        self._unavailable(t, self._call(t, path, controller))

    def requeued(self, t: float, caller: Caller, agent: Agent) -> None:
        call = self._calls[caller]
        self._send(
            t, call, "requeued", self._since(t, call.arrived), called=agent.agent_id, transfer="R"
        )

    def answered(self, t: float, caller: Caller, agent: Agent) -> None:
        call = self._calls[caller]
        call.answered_at, call.agent = t, agent
        call.time_to_answer = min(self._since(t, call.arrived), ANSWER_LONGEST)
        key = (call.path, self.days.interval_start(self._clock(t, agent.controller)))
        self._answered_at[key] = self._answered_at.get(key, 0) + 1
        self._talking[call.path] += 1

    def ended(self, t: float, caller: Caller) -> None:
        call = self._calls.pop(caller)
        assert call.answered_at is not None and call.agent is not None
        self._talking[call.path] -= 1
        self._send(
            t,
            call,
            "answered",
            self._since(t, call.answered_at),
            seconds=call.time_to_answer,
            called=call.agent.agent_id,
            answering_group=call.agent.group,
        )

    def gave_up(self, t: float, caller: Caller) -> None:
        call = self._calls.pop(caller)
        waited = self._since(t, call.arrived)
        if waited >= INTERFLOW_AFTER and self._rng.random() < INTERFLOW_SHARE:
            third = self.interflow_points[call.path]
            self._send(t, call, "interflowed", waited, transfer="I", third_party=third)
        else:
            self._send(t, call, "abandoned", waited, seconds=waited)

    # --- the model's own callers ------------------------------------------------

    def _gap(self) -> int:
        return max(1, round(self._rng.expovariate(self._own_rate)))

    def _own_caller(self, t: float, path: str) -> None:
        self._schedule.at(t + self._gap(), self._own_caller, path)
        controller = self._rng.randrange(self.controllers) if self.controllers > 1 else 0
        call = self._call(t, path, controller)
        groups = set(self._groups[path])
        if not any(_staffs(a, groups) for a in self._floor.agents):
            self._unavailable(t, call)
        else:
            hang_up = t + self._rng.randint(1, SHORT_LONGEST)
            self._schedule.at(hang_up, self._short_abandon, call)

    def _short_abandon(self, t: float, call: _Call) -> None:
        waited = self._since(t, call.arrived)
        self._send(t, call, "abandoned", waited, seconds=waited)

    def _unavailable(self, t: float, call: _Call) -> None:
        third = self.unavailable_points[call.path]
        self._send(t, call, "unavailable", 0, transfer="U", third_party=third)

    # --- records ------------------------------------------------------------------

    def local(self, t: float, controller: int = 0) -> datetime.datetime:
        """The controller's clock at simulated second ``t``."""
        return datetime.datetime.fromtimestamp(self._clock(t, controller), self.tz)

    def _clock(self, t: float, controller: int) -> float:
        """Unix seconds on ``controller``'s clock at simulated second ``t``."""
        if controller:
            return self.epoch + t + controller * self.clock_skew
        return self.epoch + t

    @staticmethod
    def _since(t: float, then: float) -> int:
        return int(t) - int(then)

    def _call(self, t: float, path: str, controller: int = 0) -> _Call:
        self._serials += 1
        when = self.local(t, controller)
        minute = (when.year, when.month, when.day, when.hour, when.minute)
        ani = f"{self._rng.randrange(200, 1000)}{self._rng.randrange(2_000_000, 10_000_000)}"
        row = (path, self.days.interval_start(self._clock(t, controller)))
        return _Call(self._serials, path, t, self._trunks.seize(minute), ani, row, controller)

    def _send(
        self,
        t: float,
        call: _Call,
        sent: _Sent,
        duration: int,
        *,
        seconds: int = 0,
        called: str | None = None,
        answering_group: str | None = None,
        transfer: str = "",
        third_party: str | None = None,
    ) -> None:
        """Send one record of ``call`` and count the call by it."""
        number = call.serial % 36**4
        digits = "".join(_BASE36[number // 36**k % 36] for k in (3, 2, 1, 0))
        system_id = self.system_ids[call.controller]
        entry = SmdrEntry(
            start=self.local(call.arrived, call.controller),
            duration_seconds=duration,
            calling=call.trunk,
            path=call.path,
            groups=self._groups[call.path],
            time_to_answer_seconds=call.time_to_answer if sent == "answered" else None,
            answering_group=answering_group,
            called=called,
            transfer=transfer,
            third_party=third_party,
            system_id=system_id,
            ani=call.ani,
            dnis=self.dnis[call.path],
            call_id=f"{PLANE}{system_id}{digits}",
            sequence_id=chr(ord("A") + min(call.records, 25)),
        )
        self._out.append((call.controller, entry))
        self.records += 1
        row = self._rows.get(call.row)
        if row is None:
            row = self._rows[call.row] = _Row()
        if call.last is None:
            row.offered += 1
        else:
            row.count(call.last, call.last_seconds, -1)
        row.count(sent, seconds, 1)
        call.records += 1
        call.last, call.last_seconds = sent, seconds
        if sent != "requeued":
            self._trunks.release(call.trunk)


def _staffs(agent: Agent, groups: set[str]) -> bool:
    """The agent keeps a path of ``groups`` available: logged in, neither in make busy nor DND."""
    return agent.logged_in and agent.group in groups and not (agent.make_busy or agent.dnd)
