"""The simulator playing a site of several controllers (``sim/controllers``).

* One controller is the simulator as it always was, byte for byte (digests
  of days taken before several controllers existed).
* Several: each agent's events on one stream until it fails over; every
  path and group reported on every stream, whose parts add up to the
  floor's queues; each stream numbered on its own, with its own bursts and
  clock; each stream alone is what a listener of it must hold; its SMDR
  calls are the ledger's.
* The failover: B on one stream and A on the other, within the window (the
  merged floor keeps the agent logged in) or not (a logout in between); and
  the merge of state-model §9 by hand.
* The service: a port per controller, on a fake clock, over loopback, and
  ``twistd mitelacd-sim --controllers 2`` as a child.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import itertools
import re
import socket
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from test_simulator import Reference, parse, same, split
from twisted.internet import defer, protocol, task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.python import usage

from mitelacd import testing
from mitelacd.floor.smdr import SmdrRecord, layout_named, parse_smdr
from mitelacd.reports.smdrcalls import SmdrDay
from mitelacd.sim.controllers import (
    FAILOVER_SECONDS,
    AgentSeen,
    ControllerView,
    LastEvent,
    merge_figures,
    merge_legacy,
)
from mitelacd.sim.service import (
    FailoverPlan,
    FeedFactory,
    FloorScript,
    SimulatorService,
    SiteMoment,
    SmdrFactory,
    makeService,
)
from mitelacd.sim.smdrwire import encode_smdr

UTC = datetime.timezone.utc
STATS = re.compile(rb"\x02\d\d[KQ]")


def records(chunk: bytes) -> list[bytes]:
    return split(chunk) if chunk else []


def agent_of(rec: bytes) -> str:
    return rec[17:24].decode().strip() if rec[3:4] not in b"KQR" else ""


def site(n: int, **kwargs: Any) -> tuple[FloorScript, list[SiteMoment]]:
    script = FloorScript(**kwargs)
    return script, list(itertools.islice(script.site_timeline(), n))


def seconds(mmss: str) -> int:
    return int(mmss[:2]) * 60 + int(mmss[2:])


def hhmmss(t: float, start: datetime.datetime = datetime.datetime(2026, 3, 9, 8)) -> bytes:
    """The time field of a record sent at simulated second ``t``."""
    return (start + datetime.timedelta(seconds=int(t))).strftime("%H%M%S").encode()


# --- one controller: the simulator as it was ----------------------------------------------

#: Days of one controller, and the digest of their first 4000 moments (ACD bytes,
#: SMDR records), legacy view, ledger, day counts and faults, taken from the
#: simulator before it could play several controllers.
BEFORE: list[tuple[dict[str, Any], str]] = [
    ({"seed": 0}, "2536738d538aae91cd666925226efb0101b02b9b0f5a19fefa26ad488564c1b1"),
    (
        {"seed": 1, "agents": 12, "groups": 2, "paths": 4},
        "36f2e0b801bd0819a7f08c48913296ac2267ef5a71c91311ae50e85460fa06da",
    ),
    (
        {"seed": 7, "eol": "cr", "faults": True},
        "a0c2a524c4839730637da1fd16e7f3a0630d2758d74fc75abcc43d256de251ec",
    ),
    (
        {
            "seed": 42,
            "agents": 120,
            "groups": 7,
            "paths": 5,
            "events": 3000,
            "eol": "none",
            "noise": True,
        },
        "9db0de24e7be2dd2c9fd1fde49a958d2c77db9422785174f57fadfc156e250a7",
    ),
    (
        {"seed": 5, "smdr": False, "cycle": 7.5},
        "fcbb4b34c9d22feab13104afaa115896a9b5b7f33fa2573ab231c14626ece19e",
    ),
    (
        {"seed": 9, "tz": UTC, "start": datetime.datetime(2026, 3, 9, 23, 30)},
        "f0411673bd1ce099c675c844ac789b98e05e3401fa7d68e22f19ca005a59c206",
    ),
]


def digest(script: FloorScript, n: int = 4000) -> str:
    h = hashlib.sha256()
    for m in itertools.islice(script.timeline(), n):
        h.update(repr(m.t).encode())
        h.update(m.acd)
        for e in m.smdr:
            h.update(repr(e).encode())
    h.update(repr(sorted(script.expected_legacy().items())).encode())
    h.update(repr(script.smdr_ledger()).encode())
    h.update(repr(sorted(script.day_counts().items())).encode())
    h.update(repr(script.faults).encode())
    return h.hexdigest()


@pytest.mark.parametrize("kwargs, before", BEFORE, ids=[str(k["seed"]) for k, _ in BEFORE])
def test_one_controller_is_the_simulator_of_before_byte_for_byte(
    kwargs: dict[str, Any], before: str
) -> None:
    assert digest(FloorScript(**kwargs)) == before
    assert digest(FloorScript(**kwargs, controllers=1, clock_skew=5.0)) == before


def test_one_controllers_site_timeline_is_its_timeline_and_the_merge_its_legacy_view() -> None:
    script, moments = site(3000, seed=3, agents=12, groups=2)
    assert all(len(m.acd) == len(m.smdr) == 1 for m in moments)
    timeline = list(itertools.islice(FloorScript(seed=3, agents=12, groups=2).timeline(), 3000))
    assert [(m.t, m.acd[0], m.smdr[0]) for m in moments] == [(m.t, m.acd, m.smdr) for m in timeline]
    # With one stream a B is a logout at once: the merged view is the stream's view.
    script = FloorScript(seed=3, agents=12, groups=2)
    logouts = 0
    for m in itertools.islice(script.site_timeline(), 3000):
        logouts += m.acd[0].count(b"B")
        same(script.expected_merged_legacy(), script.expected_legacy())
    assert logouts > 5
    with pytest.raises(ValueError, match="site_timeline"):
        FloorScript(controllers=2).timeline()


# --- several controllers: the split ---------------------------------------------------


@functools.cache
def failover_day() -> tuple[FloorScript, tuple[SiteMoment, ...], tuple[dict[str, Any], ...]]:
    """Two controllers; 10 agents of the first fail over at 01:00, the last 3 late.

    With the merged legacy view after each moment.
    """
    plan = FailoverPlan(at=3600, agents=10, delay=5, late=3)
    script = FloorScript(seed=4, agents=40, groups=4, paths=3, controllers=2, failover=plan)
    moments, merged = [], []
    for m in itertools.islice(script.site_timeline(), 5000):
        moments.append(m)
        merged.append(script.expected_merged_legacy())
    return script, tuple(moments), tuple(merged)


def test_agents_are_split_and_each_works_on_one_stream_until_it_fails_over() -> None:
    script, moments, _ = failover_day()
    plan = script.plan.controllers
    assert sorted(Counter(plan.values()).items()) == [(0, 20), (1, 20)]
    for members in script.plan.groups.values():  # every group has agents on both
        assert {plan[a] for a in members} == {0, 1}
    moved = {m.agent for m in script.moves()}
    streams: dict[str, set[int]] = defaultdict(set)
    after: dict[str, set[int]] = defaultdict(set)
    sets: dict[bytes, set[int]] = defaultdict(set)
    for m in moments:
        for c, chunk in enumerate(m.acd):
            for rec in records(chunk):
                agent = agent_of(rec)
                if not agent:
                    continue
                (streams if m.t < 3600 or agent not in moved else after)[agent].add(c)
                if m.t < 3600:
                    sets[rec[10:17]].add(c)
    assert len(streams) == 40 and all(streams[a] == {plan[a]} for a in streams)
    assert all(len(on) == 1 for on in sets.values())  # a set is on one controller
    assert len(moved) == 10 and all(plan[a] == 0 for a in moved)
    assert all(after[a] == {0, 1} for a in moved)  # the B at 3600 on 0, then 1 only
    assert all(script.controller_of(a) == 1 for a in moved)


def test_each_stream_has_its_own_numbering_bursts_and_clock() -> None:
    kwargs: dict[str, Any] = {"agents": 20, "groups": 3, "paths": 2, "clock_skew": 4.0}
    script, moments = site(4000, seed=6, controllers=3, **kwargs)
    for c in range(3):
        recs = [(m.t, r) for m in moments for r in records(m.acd[c])]
        numbers = [int(r[1:3]) for _, r in recs]
        assert numbers[0] == 0 and len(numbers) > 500
        assert all(b == (a + 1) % 100 for a, b in itertools.pairwise(numbers))
        assert all(rec[4:10] == hhmmss(t + 4 * c) for t, rec in recs)  # 4c s ahead
        bursts = [(m.t, records(m.acd[c])) for m in moments if STATS.match(m.acd[c])]
        assert [t for t, _ in bursts] == [15.0 * k for k in range(len(bursts))]
        assert bursts[-1][0] + 15 > moments[-1].t
        for _, burst in bursts:
            assert [r[3:4] for r in burst] == [b"K"] * 3 + [b"Q"] * 2 + [b"R"]
            assert [r[10:13] for r in burst[:-1]] == [b"610", b"620", b"630", b"860", b"861"]
            assert burst[-1][10:18] == b"20260309"
    assert all(len(script.wires[c].named) >= 5 for c in range(3))


def test_every_stream_reports_every_queue_and_the_parts_add_up_to_the_floor() -> None:
    script = FloorScript(seed=8, agents=24, groups=3, paths=3, controllers=2, events=6000)
    split_seen = 0
    for m in itertools.islice(script.site_timeline(), 6000):
        if not STATS.match(m.acd[0]):
            continue
        groups, paths = script.floor.figures(m.t)  # the whole floor, at the burst
        views = [script.expected_legacy(c) for c in range(2)]
        merged = script.expected_merged_legacy()
        for kind, table in (("groups", groups), ("paths", paths)):
            assert [set(v[kind]) for v in views] == [set(table)] * 2
            for number, (waiting, agents, longest) in table.items():
                parts = [v[kind][number] for v in views]
                assert sum(int(p["waiting"]) for p in parts) == waiting
                assert {int(p["agents"]) for p in parts} == {agents}
                assert merged[kind][number] == {
                    "waiting": f"{waiting:03d}",
                    "agents": f"{agents:03d}",
                    "longestwait": max((p["longestwait"] for p in parts), key=seconds),
                }
                assert seconds(merged[kind][number]["longestwait"]) == int(longest)
                split_seen += all(int(p["waiting"]) for p in parts)
    assert split_seen > 20  # both controllers had callers waiting at once


def test_each_stream_alone_is_what_a_listener_of_it_must_hold() -> None:
    plan = FailoverPlan(at=2000)
    script = FloorScript(
        seed=5, agents=30, groups=3, controllers=2, faults=True, noise=False, failover=plan
    )
    references = [Reference(), Reference()]
    gaps = [0, 0]
    last = [-1, -1]
    for m in itertools.islice(script.site_timeline(), 5000):
        for c, chunk in enumerate(m.acd):
            for rec in records(chunk):
                references[c].feed(rec)
                step = (int(rec[1:3]) - last[c]) % 100
                gaps[c] += last[c] >= 0 and step > 1
                last[c] = int(rec[1:3])
            same(script.expected_legacy(c), references[c].legacy())
    counts = [script.wires[c].counts for c in range(2)]
    assert gaps == [c.gaps for c in counts] and all(gaps)
    assert all(c.duplicates for c in counts) and counts[0] != counts[1]  # drawn apart
    assert len(script.moves()) >= 5


def test_each_call_is_on_one_smdr_stream_and_both_read_as_one_give_the_ledger() -> None:
    layout = layout_named("standard+oli")
    kwargs: dict[str, Any] = {"agents": 20, "groups": 2, "paths": 3, "clock_skew": 7.0}
    plan = FailoverPlan(at=1800)
    script = FloorScript(seed=2, tz=UTC, controllers=2, failover=plan, **kwargs)
    day = SmdrDay(tz=UTC)
    on: dict[str | None, set[int]] = defaultdict(set)
    now = script.epoch
    for m in itertools.islice(script.site_timeline(), 4000):
        now = script.epoch + m.t
        for c, entries in enumerate(m.smdr):
            for e in entries:
                assert e.system_id == f"00{c + 1}" and e.call_id and e.call_id[1:4] == e.system_id
                record = parse_smdr(encode_smdr(e, layout, fit=True), layout)
                assert isinstance(record, SmdrRecord)
                assert day.add(record, now) == "call"
                on[e.call_id].add(c)
    assert all(len(c) == 1 for c in on.values())
    assert Counter(c for cs in on.values() for c in cs).keys() == {0, 1}
    ledger = script.smdr_ledger()
    names = ("offered", "answered", "abandoned", "short_abandoned", "requeued", "interflowed")
    assert [(r.path, r.start, *(getattr(r, n) for n in names)) for r in day.figures(now)] == [
        (r.path, r.start, *(getattr(r, n) for n in names)) for r in ledger.intervals
    ]
    assert sum(r.offered for r in ledger.intervals) > 100


# --- the failover ---------------------------------------------------------------------


def test_a_failover_in_the_window_keeps_the_agent_logged_in_and_a_late_one_logs_it_out() -> None:
    script, moments, merged = failover_day()
    moves = script.moves()
    inside, late = script.failovers(), [m for m in moves if not m.within()]
    assert len(inside) == 7 and len(late) == 3 and set(inside) | set(late) == set(moves)
    assert all(m.login_at - m.logout_at == 5 for m in inside)
    assert all(m.login_at - m.logout_at == 60 for m in late)
    at: dict[float, int] = {}  # the first moment of each second: its events, before a burst
    for i, m in enumerate(moments):
        at.setdefault(m.t, i)
    for move in moves:
        sent = [
            (rec[3:4], rec[4:10], agent_of(rec))
            for i, c in ((at[move.logout_at], move.source), (at[move.login_at], move.target))
            for rec in records(moments[i].acd[c])
        ]
        assert (b"B", hhmmss(move.logout_at), move.agent) in sent
        assert (b"A", hhmmss(move.login_at), move.agent) in sent
        held = {merged[at[move.logout_at]]["agents"][move.agent]}
        out_seen = False
        for i in range(at[move.logout_at], at[move.login_at]):
            status = merged[i]["agents"][move.agent]
            if moments[i].t - move.logout_at <= FAILOVER_SECONDS:
                held.add(status)  # the B may still be a failover: shown as before it
            else:
                assert status == "out"  # it was not: a logout
                out_seen = True
        assert len(held) == 1 and "out" not in held
        assert out_seen == (move in late)
        assert merged[at[move.login_at]]["agents"][move.agent] != "out"
        assert script.expected_legacy(move.source)["agents"][move.agent] == "out"


def test_a_failover_ends_the_calls_it_cuts_off_and_requeues_what_rang() -> None:
    script = FloorScript(seed=1, agents=40, controllers=2, failover=FailoverPlan(at=5400))
    movers = {a for a, c in script.plan.controllers.items() if c == 0}
    last: dict[str, bytes] = {}  # each agent's last event on the first stream
    ringing: list[str] = []
    cut: list[Any] = []
    for m in script.site_timeline():
        for rec in records(m.acd[0]):
            agent = agent_of(rec)
            if m.t == 5400 and rec[3:4] == b"B" and last.get(agent) == b"T":
                ringing.append(agent)
            if agent:
                last[agent] = rec[3:4]
        if m.t >= 5400:
            cut = [e for entries in m.smdr for e in entries if e.called in movers]
            break
    assert m.t == 5400 and sorted(ringing) == ["8090"]
    # The caller whose call rang goes back to its queue: a requeue record, at once.
    assert sorted(e.called for e in cut if e.transfer == "R") == ringing
    # The conversations the B cut off end there: their answered records, at once.
    answered = [e for e in cut if e.time_to_answer_seconds is not None]
    assert answered and all(e.transfer == "" for e in answered)
    assert len(answered) + len(ringing) == len(cut)
    assert not any(script.floor.by_id[a].calls or script.floor.by_id[a].logged_in for a in movers)
    assert script.moves() == ()  # the A come 5 s later


def test_the_merge_follows_state_model_9_by_hand() -> None:
    def seen(status: Any, t: float, code: str, order: int, before: Any = "idle") -> AgentSeen:
        return AgentSeen(status, LastEvent(t, code, order, before))

    one = ControllerView(
        agents={
            "1001": seen("out", 100, "B", 7, before="busy"),  # then A on two: a failover
            "1002": seen("busy", 90, "G", 3),  # its last event anywhere
            "1003": seen("out", 100, "B", 9, before="timer"),  # logged out, nowhere else
        },
        groups={"610": {"waiting": "004", "agents": "003", "longestwait": "0059"}},
        paths={
            "860": {"waiting": "600", "agents": "005", "longestwait": "0100"},
            "861": {"waiting": "001", "agents": "001", "longestwait": "0005"},
        },
    )
    two = ControllerView(
        agents={
            # Its clock runs behind: time says earlier, the order says later.
            "1001": seen("in", 95, "A", 8, before="out"),
            "1002": seen("out", 80, "B", 2, before="idle"),
        },
        groups={"610": {"waiting": "002", "agents": "003", "longestwait": "0100"}},
        paths={"860": {"waiting": "500", "agents": "004", "longestwait": "0059"}},
    )
    merged = merge_legacy([one, two], now=110)
    assert merged["agents"] == {"1001": "in", "1002": "busy", "1003": "timer"}
    assert merge_legacy([one, two], now=130)["agents"]["1003"] == "timer"  # 30 s: still pending
    assert merge_legacy([one, two], now=131)["agents"]["1003"] == "out"
    assert merge_legacy([one, two], now=110, failover_seconds=5)["agents"]["1003"] == "out"
    assert merge_legacy([one], now=100)["agents"]["1003"] == "out"  # nowhere to fail over to
    assert merged["groups"] == {"610": {"waiting": "006", "agents": "003", "longestwait": "0100"}}
    assert merged["paths"] == {
        "860": {"waiting": "999", "agents": "005", "longestwait": "0100"},
        "861": {"waiting": "001", "agents": "001", "longestwait": "0005"},
    }
    assert set(merged) == {"agents", "groups", "paths"}
    assert merge_figures([]) == {}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"controllers": 0},
        {"controllers": 3, "agents": 2},
        {"failover": FailoverPlan(at=10)},  # one controller
        {"controllers": 2, "failover": FailoverPlan(at=10, target=2)},
        {"controllers": 2, "failover": FailoverPlan(at=10, source=1, target=1)},
    ],
)
def test_a_site_refuses_what_it_cannot_play(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        FloorScript(**kwargs)


@pytest.mark.parametrize(
    "kwargs", [{"at": -1}, {"at": 1, "agents": 0}, {"at": 1, "delay": 0}, {"at": 1, "late": -1}]
)
def test_a_failover_plan_refuses_impossible_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        FailoverPlan(**kwargs)


# --- the service ------------------------------------------------------------------------


def connect(factory: Any, port: int) -> StringTransport:
    proto = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", port))
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", port))
    proto.makeConnection(transport)
    return transport


def due(kwargs: dict[str, Any], speed: float, elapsed: float) -> list[bytes]:
    """What each controller's client holds after ``elapsed`` real seconds."""
    out: list[list[bytes]] = []
    for m in FloorScript(**kwargs).site_timeline():
        if m.t / speed > elapsed + 1e-9:
            return [b"".join(parts) for parts in zip(*out)]
        out.append(list(m.acd))
    raise AssertionError("unreachable")


def test_the_service_serves_each_controller_on_its_own_ports() -> None:
    reactor = MemoryReactorClock()
    plan = FailoverPlan(at=600, agents=4, late=1)
    kwargs: dict[str, Any] = {"seed": 3, "controllers": 2, "clock_skew": 2.0, "failover": plan}
    script = FloorScript(**kwargs)
    svc = SimulatorService(script, port=15373, speed=5.0, reactor=reactor, smdr_port=1752)
    with capturedLogs() as events:
        svc.startService()
    lines = [formatEvent(e) for e in events]
    servers: list[Any] = list(reactor.tcpServers)
    assert [s[0] for s in servers] == [15373, 15374, 1752, 1753]
    feeds = [s[1] for s in servers]
    assert feeds[:2] == svc.factory.feeds and feeds[0] is svc.factory
    assert feeds[2:] == svc.factory.smdr_feeds and feeds[2] is svc.smdr
    assert all(isinstance(f, SmdrFactory) for f in feeds[2:])
    assert (svc.ports, svc.smdr_ports) == ([15373, 15374], [1752, 1753])
    assert (svc.port, svc.smdr_port) == (15373, 1752)
    assert lines == [
        "simulated ICP feed on 127.0.0.1 port 15373 (controller 1 of 2, seed 3,"
        " CR LF after each record)",
        "simulated ICP feed on 127.0.0.1 port 15374 (controller 2 of 2, seed 3,"
        " CR LF after each record, its clock 2 s ahead of controller 1's)",
        "simulated ICP SMDR on 127.0.0.1 port 1752 (controller 1 of 2, standard records,"
        " CR LF after each; the controller's clock starts at 2026-03-09T08:00:00)",
        "simulated ICP SMDR on 127.0.0.1 port 1753 (controller 2 of 2, standard records,"
        " CR LF after each; the controller's clock starts at 2026-03-09T08:00:02)",
        "failover at second 600 of the day from controller 1 to controller 2: 4 agents,"
        " each logging in 5 s after its logout; the last 1 60 s after it",
    ]
    second = connect(feeds[1], 2)  # the second controller's client starts the day
    assert svc.factory.started_at == 0
    first = connect(feeds[0], 1)
    smdr = [connect(feeds[2], 3), connect(feeds[3], 4)]
    late = due(kwargs, 5.0, 0)
    assert second.value() == late[1] and first.value() == b""  # no replay for the first
    for step in (0.5, 3, 7.5, 50, 100, 300):
        reactor.advance(step)
        now = due(kwargs, 5.0, reactor.seconds())
        same(second.value(), now[1])
        same(first.value(), now[0][len(late[0]) :])
    assert all(s.value() for s in smdr)
    assert b"\r\n" in smdr[1].value() and smdr[0].value() != smdr[1].value()
    svc.stopService()
    assert all(t.disconnecting for t in (first, second, *smdr))
    assert reactor.getDelayedCalls() == []


def test_a_feed_of_several_controllers_wants_an_smdr_feed_or_none_for_each() -> None:
    with pytest.raises(ValueError, match="per controller"):
        FeedFactory(FloorScript(controllers=2), task.Clock(), smdr_feeds=[None])


class Collector(protocol.Protocol):
    def __init__(self, enough: int) -> None:
        self.enough, self.data = enough, b""
        self.done: defer.Deferred[bytes] = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        if self.data.count(b"\r\n") >= self.enough and not self.done.called:
            self.done.callback(self.data)


@pytest_twisted.ensureDeferred
async def test_each_port_serves_its_own_controllers_stream_over_loopback() -> None:
    from twisted.internet import endpoints, reactor

    kwargs: dict[str, Any] = {"seed": 6, "controllers": 2}
    svc = SimulatorService(FloorScript(**kwargs), port=0, speed=200.0, reactor=reactor)
    svc.startService()
    try:
        assert len(svc.ports) == 2 and len(set(svc.ports)) == 2 and svc.smdr_ports == []
        clients = []
        for port in svc.ports:
            endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=5)
            clients.append(await endpoints.connectProtocol(endpoint, Collector(enough=40)))
        data = [await c.done.addTimeout(10, reactor) for c in clients]
        for c in clients:
            c.transport.loseConnection()
    finally:
        await defer.maybeDeferred(svc.stopService).addTimeout(10, reactor)
    moments = list(itertools.islice(FloorScript(**kwargs).site_timeline(), 400))
    streams = [b"".join(m.acd[c] for m in moments) for c in range(2)]
    assert streams[0].startswith(data[0])  # the first client heard the day from its start
    assert data[1] in streams[1] and data[1][-60:] not in streams[0]
    assert data[0].startswith(b"\x0200K080000610")


@pytest.mark.processes
def test_twistd_mitelacd_sim_serves_two_controllers(
    tmp_path: Path, processes: Callable[..., testing.Twistd]
) -> None:
    sim = processes(
        "mitelacd-sim", "--controllers", "2", "--port", "0", "--smdr-port", "none",
        "--seed", "3", "--speed", "50", cwd=tmp_path,
    )  # fmt: skip
    first = sim.wait_for(r"simulated ICP feed on \S+ port (\d+) \(controller 1 of 2, seed 3")
    second = sim.wait_for(r"simulated ICP feed on \S+ port (\d+) \(controller 2 of 2, seed 3")
    ports = [int(first.group(1)), int(second.group(1))]
    assert ports[0] != ports[1]
    # The second controller's client starts the day; each hears its own agents.
    conns = [socket.create_connection(("127.0.0.1", port), timeout=10) for port in reversed(ports)]
    heard = [b"", b""]
    deadline = time.monotonic() + 20
    try:
        while min(sum(1 for r in h.split(b"\r\n") if agent_of(r)) for h in heard) < 3:
            assert time.monotonic() < deadline, heard
            for i, conn in enumerate(conns):
                conn.settimeout(0.2)
                try:
                    heard[i] += conn.recv(65536)
                except TimeoutError:
                    pass
    finally:
        for conn in conns:
            conn.close()
    assert heard[0].startswith(b"\x0200K")
    plan = FloorScript(seed=3, controllers=2).plan.controllers
    for controller, data in ((1, heard[0]), (0, heard[1])):
        agents = {agent_of(r) for r in data.split(b"\r\n") if r.startswith(b"\x02")} - {""}
        assert agents and all(plan[a] == controller for a in agents)
    sim.wait_for(r"controller 2 client 127\.0\.0\.1:\d+ connected", timeout=10)
    sim.wait_for(r"controller 1 client 127\.0\.0\.1:\d+ connected", timeout=10)
    sim.stop_cleanly()


# --- twistd mitelacd-sim options ------------------------------------------------------------


def test_site_options_defaults_and_values() -> None:
    options = parse()
    assert (options["controllers"], options["clock-skew"], options["failover-at"]) == (1, 0.0, None)
    failover = ("failover-agents", "failover-delay", "failover-late")
    assert [options[name] for name in failover] == [None, 5, 0]
    svc = makeService(parse("--port", "0", "--seed", "1"), MemoryReactorClock())
    assert svc.factory.script.controllers == 1 and svc.factory.script.failover is None
    argv = "--port 0 --seed 1 --controllers 3 --clock-skew -2.5 --failover-at 900"
    argv += " --failover-agents 6 --failover-delay 12 --failover-late 2"
    svc = makeService(parse(*argv.split()), MemoryReactorClock())
    script = svc.factory.script
    assert (script.controllers, script.clock_skew) == (3, -2.5)
    assert script.failover == FailoverPlan(at=900, agents=6, delay=12, late=2)
    assert script.wires[2].start - script.wires[0].start == datetime.timedelta(seconds=-5)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--controllers", "0"], "--controllers must be between 1 and 4"),
        (["--controllers", "5"], "--controllers must be between 1 and 4"),
        (["--controllers", "3", "--agents", "2"], "--agents must be at least --controllers"),
        (["--clock-skew", "301"], "--clock-skew must be between -300 and 300"),
        (["--controllers", "2", "--port", "65535"], "--port must leave 2 ports up to 65535"),
        (["--controllers", "2", "--port", "1751"], "ACD ports .* and SMDR ports .* overlap"),
        (["--failover-at", "60"], "--failover-at needs --controllers 2 or more"),
        (["--controllers", "2", "--failover-at", "-1"], "--failover-at must be 0 or more"),
        (["--controllers", "2", "--failover-late", "1"], "--failover-late needs --failover-at"),
        (
            ["--controllers", "2", "--failover-at", "9", "--failover-delay", "31"],
            "between 1 and 30",
        ),
        (["--controllers", "2", "--failover-at", "9", "--failover-agents", "0"], "1 or more"),
        (
            "--controllers 2 --failover-at 9 --failover-agents 2 --failover-late 3".split(),
            "--failover-late must be between 0 and --failover-agents",
        ),
        (["--controllers", "two"], "--controllers wants a whole number"),
        (["--replay", "x.cap", "--controllers", "2"], "--controllers cannot apply"),
    ],
)
def test_site_options_refuse_what_cannot_be_played(argv: list[str], message: str) -> None:
    with pytest.raises(usage.UsageError, match=message):
        parse(*argv)
