"""Tests for the simulated ICP: exact wire bytes, its own ground truth, and the TCP side."""

from __future__ import annotations

import datetime
import functools
import itertools
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

import attrs
import pytest
import pytest_twisted
from twisted.internet import defer, protocol, task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.python import usage

from mitelacd.sim import service as simulator
from mitelacd.sim.service import (
    EOLS,
    FaultCounts,
    FeedFactory,
    FloorScript,
    Options,
    SimulatorService,
    encode_call_event,
    encode_refresh,
    encode_stats,
    group_numbers,
    makeService,
    mmss,
    path_numbers,
)

T0 = datetime.datetime(2024, 3, 11, 8, 15, 2)

CALL = re.compile(rb"\x02\d\d[A-JL-PTU]\d{6}[0-9 ]{7}[0-9 ]{7}\d\d")
PATHED = re.compile(rb"\x02\d\d[GS]\d{6}[0-9 ]{7}[0-9 ]{7}\d\d\d{3}")
STATS = re.compile(rb"\x02\d\d[KQ]\d{6}\d{3}\d{3}\d{3}[0-9]{2}[0-5][0-9](?:0000000)?")
REFRESH = re.compile(rb"\x02\d\dR\d{6}\d{8}")
FIELD = re.compile(rb"\d+ *")  # digits, left-justified, then spaces only


def split(chunk: bytes) -> list[bytes]:
    """Records of a chunk, without the terminator; every record must have one."""
    assert chunk.endswith(b"\r\n")
    parts = chunk.split(b"\r\n")[:-1]
    assert all(p.startswith(b"\x02") and p.count(b"\x02") == 1 for p in parts)
    return parts


def same(actual: object, expected: object) -> None:
    """Equality without pytest's diff, which takes minutes on long byte strings."""
    if actual == expected:
        return
    if isinstance(actual, bytes) and isinstance(expected, bytes):
        at = next(
            (i for i, (x, y) in enumerate(zip(actual, expected)) if x != y),
            min(len(actual), len(expected)),
        )
        window = slice(max(0, at - 30), at + 30)
        pytest.fail(
            f"bytes differ at {at} of {len(actual)}/{len(expected)}: {actual[window]!r} != {expected[window]!r}"
        )
    pytest.fail(f"values differ: {str(actual)[:300]} != {str(expected)[:300]}")


def take(script: FloorScript, count: int) -> list[tuple[float, bytes]]:
    return list(itertools.islice(script.steps(), count))


@functools.cache
def long_run(seed: int = 0) -> tuple[tuple[float, bytes], ...]:
    """About 20 simulated hours of the default floor, shared by the read-only tests."""
    return tuple(take(FloorScript(seed=seed), 30000))


def all_records(run: tuple[tuple[float, bytes], ...]) -> list[bytes]:
    return [r for _, chunk in run for r in split(chunk)]


def agent_of(rec: bytes) -> str:
    return rec[17:24].decode().strip()


# --- encoding helpers ---------------------------------------------------------


def test_call_event_matches_the_documented_examples() -> None:
    assert encode_call_event(12, "A", T0, "2001", "1001", 0) == b"\x0212A0815022001   1001   00\r\n"
    assert (
        encode_call_event(19, "G", T0, "2001", "1001", 1, "860")
        == b"\x0219G0815022001   1001   01860\r\n"
    )
    assert encode_call_event(34, "C", T0, "2050", "", 0) == b"\x0234C0815022050          00\r\n"
    assert (
        encode_call_event(99, "G", T0, "5551234", "1234567", 1, "007")
        == b"\x0299G0815025551234123456701007\r\n"
    )
    assert encode_call_event(30, "E", T0, "2001", "1001", 5)[24:26] == b"05"


def test_stats_and_refresh_match_the_documented_examples() -> None:
    when = datetime.datetime(2024, 3, 11, 10, 15, 10)
    assert encode_stats(37, "K", when, "610", 3, 2, 105) == b"\x0237K10151061000300201450000000\r\n"
    assert (
        encode_stats(38, "Q", when, "860", 12, 2, 630) == b"\x0238Q10151086001200210300000000\r\n"
    )
    assert (
        encode_refresh(74, datetime.datetime(2014, 1, 15, 13, 2, 43))
        == b"\x0274R13024320140115\r\n"
    )


def test_longest_wait_is_mmss_and_clamps() -> None:
    assert mmss(0) == "0000"
    assert mmss(105.9) == "0145"
    assert mmss(99 * 60 + 59) == "9959"
    assert mmss(100 * 60) == "9959"
    assert mmss(10**6) == "9959"
    assert mmss(-3) == "0000"


@pytest.mark.parametrize(
    "args",
    [
        (100, "A", T0, "2001", "1001", 0, None),
        (1, "A", T0, "20011234", "1001", 0, None),
        (1, "A", T0, "2001", "10011234", 0, None),
        (1, "A", T0, "2001", "1001", 100, None),
        (1, "G", T0, "2001", "1001", 1, "86"),
        (1, "G", T0, "2001", "1001", 1, "86a"),
    ],
)
def test_call_event_refuses_fields_that_do_not_fit(args: tuple[Any, ...]) -> None:
    with pytest.raises(ValueError):
        encode_call_event(*args)


def test_stats_refuses_bad_values() -> None:
    with pytest.raises(ValueError):
        encode_stats(1, "K", T0, "61", 0, 0, 0)
    with pytest.raises(ValueError):
        encode_stats(1, "K", T0, "610", 1000, 0, 0)
    with pytest.raises(ValueError):
        encode_stats(1, "A", T0, "610", 0, 0, 0)


def test_reporting_numbers_are_unique_three_digit_strings() -> None:
    assert group_numbers(4) == ["610", "620", "630", "640"]
    assert path_numbers(3) == ["860", "861", "007"]
    for numbers in (group_numbers(99), path_numbers(99)):
        assert len(set(numbers)) == 99
        assert all(len(n) == 3 and n.isdigit() for n in numbers)
    assert any(n.startswith("0") for n in group_numbers(99))


# --- the script: determinism and layout ---------------------------------------------


def test_same_seed_gives_identical_bytes_and_other_seeds_differ() -> None:
    first = take(FloorScript(seed=7), 3000)
    same(first, take(FloorScript(seed=7), 3000))
    assert first != take(FloorScript(seed=8), 3000)
    assert take(FloorScript(seed=7, agents=12), 500) != first[:500]


def test_steps_can_only_be_iterated_once() -> None:
    script = FloorScript()
    script.steps()
    with pytest.raises(RuntimeError):
        script.steps()


@pytest.mark.parametrize(
    "kwargs",
    [{"agents": 0}, {"groups": 0}, {"groups": 100}, {"paths": 0}, {"cycle": 0}, {"events": -1}],
)
def test_script_refuses_impossible_floors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        FloorScript(**kwargs)


def test_every_record_has_the_exact_wire_layout() -> None:
    counts = {"call": 0, "pathed": 0, "stats": 0, "refresh": 0}
    for rec in all_records(long_run()):
        code = rec[3:4]
        if code in b"GS":
            assert PATHED.fullmatch(rec) and len(rec) == 29, rec
            counts["pathed"] += 1
        elif code in b"KQ":
            assert STATS.fullmatch(rec) and len(rec) in (23, 30), rec
            counts["stats"] += 1
        elif code == b"R":
            assert REFRESH.fullmatch(rec) and len(rec) == 18, rec
            counts["refresh"] += 1
        else:
            assert CALL.fullmatch(rec) and len(rec) == 26, rec
            counts["call"] += 1
        if code not in b"KQR":
            assert FIELD.fullmatch(rec[10:17]), rec
            assert rec[17:24] == b" " * 7 or FIELD.fullmatch(rec[17:24]), rec
    assert all(counts.values()), counts


def test_times_follow_the_simulated_clock() -> None:
    script = FloorScript(start=datetime.datetime(2026, 3, 9, 8, 0, 0))
    for t, chunk in take(script, 2000):
        expected = (datetime.datetime(2026, 3, 9, 8) + datetime.timedelta(seconds=int(t))).strftime(
            "%H%M%S"
        )
        assert all(rec[4:10].decode() == expected for rec in split(chunk))


def test_refresh_date_rolls_over_at_midnight() -> None:
    script = FloorScript(start=datetime.datetime(2026, 3, 9, 23, 59, 30), agents=3)
    refreshes = [r for _, c in take(script, 20) for r in split(c) if r[3:4] == b"R"]
    assert refreshes[0][4:18] == b"23593020260309"
    assert b"00000020260310" in [r[4:18] for r in refreshes]


def test_record_numbers_are_one_counter_that_wraps() -> None:
    numbers = [int(rec[1:3]) for rec in all_records(long_run())]
    assert numbers[0] == 0
    assert all(b == (a + 1) % 100 for a, b in zip(numbers, numbers[1:]))
    assert sum(1 for a, b in zip(numbers, numbers[1:]) if (a, b) == (99, 0)) > 100


def test_every_cycle_sends_one_burst_of_k_then_q_then_r() -> None:
    script = FloorScript(groups=3, paths=5, cycle=7.5)
    run = take(script, 3000)
    bursts = [(t, split(c)) for t, c in run if b"R" in {r[3:4] for r in split(c)}]
    assert [t for t, _ in bursts] == [k * 7.5 for k in range(len(bursts))]
    for _, recs in bursts:
        assert [r[3:4] for r in recs] == [b"K"] * 3 + [b"Q"] * 5 + [b"R"]
        assert [r[10:13] for r in recs[:3]] == [b"610", b"620", b"630"]
        assert [r[10:13] for r in recs[3:8]] == [b"860", b"861", b"007", b"863", b"864"]
    others = [r for t, c in run for r in split(c) if b"R" not in {x[3:4] for x in split(c)}]
    assert others and not any(r[3:4] in b"KQR" for r in others)


def test_chunk_times_never_go_backwards() -> None:
    times = [t for t, _ in long_run()]
    assert times == sorted(times)


def test_agent_ids_and_dns_come_in_every_width() -> None:
    script = FloorScript()
    ids = list(script.plan.home_dns)
    assert len(set(ids)) == len(ids) == 40
    assert {len(i) for i in ids} == {4, 5, 6, 7}
    dns = list(script.plan.home_dns.values()) + list(script.plan.spare_dns)
    assert len(set(dns)) == len(dns)
    assert all(4 <= len(d) <= 7 for d in dns)
    seen = {agent_of(r) for r in all_records(long_run()) if r[3:4] not in b"KQR"} - {""}
    assert {len(a) for a in seen} == {4, 5, 6, 7}
    assert seen <= set(ids)


def test_every_agent_event_code_appears() -> None:
    codes = {rec[3:4].decode() for rec in all_records(long_run())}
    assert codes == set("ABCDEFGHIJKLMNOPQRSTU")


def test_a_ringing_call_is_answered_as_u_then_g_in_the_same_chunk() -> None:
    pairs = 0
    for _, chunk in long_run():
        recs = split(chunk)
        for a, b in zip(recs, recs[1:]):
            if b[3:4] in b"GS":
                assert a[3:4] == b"U" and a[10:24] == b[10:24] and a[4:10] == b[4:10]
                pairs += 1
    assert pairs > 100


def test_a_login_sends_d_exactly_when_the_set_was_left_in_dnd() -> None:
    dnd: dict[bytes, bool] = {}  # per set, once the wire has told us
    logins = {True: 0, False: 0}
    for _, chunk in long_run():
        recs = split(chunk)
        for i, rec in enumerate(recs):
            code, dn = rec[3:4], rec[10:17]
            if code == b"A":
                then_d = (
                    i + 1 < len(recs)
                    and recs[i + 1][3:4] == b"D"
                    and recs[i + 1][10:24] == rec[10:24]
                )
                if dn in dnd:
                    assert dnd[dn] == then_d, rec
                    logins[then_d] += 1
                dnd[dn] = False
            elif code in b"CD":
                dnd[dn] = code == b"C"
    assert logins[True] >= 5 and logins[False] >= 50, logins


def test_displacement_is_b_then_a_on_the_same_set_in_the_same_second() -> None:
    found = 0
    for _, chunk in long_run():
        recs = split(chunk)
        for b, a in zip(recs, recs[1:]):
            if b[3:4] == b"B" and a[3:4] == b"A" and b[10:17] == a[10:17]:
                assert b[4:10] == a[4:10]
                assert agent_of(b) != agent_of(a)
                found += 1
    assert found >= 2


def test_extension_events_carry_a_blank_agent_and_change_no_agent() -> None:
    script = FloorScript(seed=3)
    codes = set()
    for _, chunk in itertools.islice(script.steps(), 20000):
        for rec in split(chunk):
            if rec[3:4] not in b"KQR" and rec[17:24] == b" " * 7:
                codes.add(rec[3:4])
                assert rec[10:17].strip()
    assert codes >= {b"C", b"H", b"J"}
    assert codes <= {b"C", b"D", b"H", b"I", b"J"}
    assert "" not in script.expected_legacy()["agents"]


def test_queues_stay_plausible() -> None:
    waiting = [int(r[13:16]) for r in all_records(long_run()) if r[3:4] == b"Q"]
    assert max(waiting) <= simulator.MAX_QUEUE
    assert sum(1 for w in waiting if w) > 100


def test_the_first_logins_are_staggered_from_a_logged_out_start() -> None:
    recs = [r for r in all_records(long_run()) if r[3:4] not in b"KQR" and r[17:24].strip()]
    first_by_agent: dict[str, bytes] = {}
    for r in recs:
        first_by_agent.setdefault(agent_of(r), r)
    assert all(r[3:4] == b"A" for r in first_by_agent.values())
    assert len({r[4:10] for r in first_by_agent.values()}) > 20


# --- freezing -------------------------------------------------------------------------


def test_events_freezes_the_floor_but_not_the_reports() -> None:
    script = FloorScript(seed=5, events=25)
    steps = script.steps()
    run = list(itertools.islice(steps, 400))
    events = [r for _, c in run for r in split(c) if r[3:4] not in b"KQR"]
    assert len(events) == 25
    assert script.frozen
    tail = [split(c) for _, c in run[-50:]]
    assert all(recs[-1][3:4] == b"R" for recs in tail)  # nothing but bursts
    figures = {tuple(r[10:] for r in recs[:-1]) for recs in tail}
    assert len(figures) == 1  # unchanged figures, every cycle
    legacy = script.expected_legacy()
    assert len(legacy["agents"]) > 0
    more = list(itertools.islice(steps, 20))
    assert all(split(c)[-1][3:4] == b"R" for _, c in more)
    assert legacy == script.expected_legacy()


def test_events_zero_sends_only_reports_of_an_empty_floor() -> None:
    run = take(FloorScript(events=0, groups=2, paths=1), 20)
    assert [t for t, _ in run] == [15.0 * k for k in range(20)]
    for _, chunk in run:
        assert [r[3:4] for r in split(chunk)] == [b"K", b"K", b"Q", b"R"]
        assert all(r[13:23] == b"0000000000" for r in split(chunk)[:-1])


# --- the simulator's own ground truth ------------------------------------------------------


# What the last record naming the only agent says about it, when that does not
# depend on the calls on other keys. This holds for this simulator because
# agents start anything new only from "available". J and P end one call of
# maybe two (a consultation): see the consultation tests.
STATUS_AFTER = {
    "A": "in",
    "B": "out",
    "C": "busy",
    "D": "idle",
    "E": "busy",
    "F": "idle",
    "G": "busy",
    "H": "busy",
    "I": "busy",
    "L": "timer",
    "M": "idle",
    "N": "busy",
    "O": "busy",
    "S": "busy",
    "T": "busy",
    "U": "idle",
}


def test_one_agent_status_follows_each_record_by_hand() -> None:
    script = FloorScript(seed=0, agents=1, groups=1, paths=2)
    (agent,) = script.plan.home_dns
    assert script.expected_legacy() == {"agents": {}, "groups": {}, "paths": {}}
    checked: dict[str, int] = {}
    steps = script.steps()
    for _ in range(8000):
        _, chunk = next(steps)
        mine = [r for r in split(chunk) if agent_of(r) == agent]
        if not mine:
            continue
        codes = "".join(chr(r[3]) for r in mine)
        status = script.expected_legacy()["agents"][agent]
        if codes[-1] in STATUS_AFTER:
            assert status == STATUS_AFTER[codes[-1]], (codes, status)
        else:
            assert status in ("idle", "busy"), (codes, status)
        checked[codes] = checked.get(codes, 0) + 1
    # The interesting combinations all came up: plain login, login on a set
    # left in DND, ringing answered (locally and from the remote path) in one
    # chunk, work timer then idle.
    assert {"A", "AD", "T", "UG", "US", "L", "M", "MJ", "J", "N", "O", "I", "P", "B"} <= set(
        checked
    )


def button_of(rec: bytes) -> int:
    """The key of a call event, as state-model §2 reads the tail (0 when not a number)."""
    tail = rec[24:].decode()
    if rec[3:4] in b"GS":
        tail = tail[:-3]
    return int(tail) if tail.strip().isdigit() else 0


class Reference:
    """state-model.md §3 (v2, calls by button) and §4, written from the table, for cross-checking."""

    def __init__(self) -> None:
        self.agents: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, str]] = {}
        self.paths: dict[str, dict[str, str]] = {}

    @staticmethod
    def fresh_agent() -> dict[str, Any]:
        return {
            "logged_in": False,
            "dnd": False,
            "mb": False,
            "wrap": False,
            "fresh": False,
            "ringing": None,
            "calls": {},  # button -> {"kind": ..., "held": ...}
        }

    def feed(self, rec: bytes) -> None:
        code = chr(rec[3])
        if code in "KQ":
            figures = {
                "waiting": rec[13:16].decode(),
                "agents": rec[16:19].decode(),
                "longestwait": rec[19:23].decode(),
            }
            (self.groups if code == "K" else self.paths)[rec[10:13].decode()] = figures
            return
        agent = agent_of(rec)
        if code == "R" or not agent:
            return
        a = self.agents.setdefault(agent, self.fresh_agent())
        button = button_of(rec)
        calls: dict[int, dict[str, Any]] = a["calls"]
        if code in "AB":  # A: clear everything else; B: clear everything
            a.update(self.fresh_agent(), logged_in=code == "A", fresh=code == "A")
            return
        a["logged_in"], a["fresh"] = True, False  # any other event: logged in, not fresh
        # Button 0 on N, O, P, J: the agent's only call, when there is exactly one.
        if code in "NOPJ" and button == 0 and len(calls) == 1:
            button = next(iter(calls))
        if code in "CD":
            a["dnd"] = code == "C"
        elif code in "EF":
            a["mb"] = code == "E"
        elif code == "T":
            a["ringing"] = button
        elif code == "U":
            a["ringing"] = None
        elif code in "GSH":
            calls[button] = {"kind": "acd" if code in "GS" else "personal", "held": False}
            a["ringing"] = None
        elif code == "I":
            calls[button] = {"kind": "outgoing", "held": False}
        elif code in "NO":
            calls.setdefault(button, {"kind": "unknown", "held": False})["held"] = code == "N"
        elif code == "P":
            calls.pop(button, None)
        elif code == "J":
            if calls.pop(button, None) is None:  # no call on that key: the set is idle
                calls.clear()
        elif code == "L":
            calls.clear()
            a["wrap"] = True
        elif code == "M":
            a["wrap"] = False

    @staticmethod
    def status(a: dict[str, Any]) -> str:
        if not a["logged_in"]:
            return "out"
        activity = bool(a["calls"]) or a["ringing"] is not None
        on_hold = any(c["held"] for c in a["calls"].values())
        if activity or on_hold or a["dnd"] or a["mb"]:
            return "busy"
        if a["wrap"]:
            return "timer"
        return "in" if a["fresh"] else "idle"

    def legacy(self) -> dict[str, Any]:
        return {
            "agents": {k: self.status(v) for k, v in self.agents.items()},
            "groups": self.groups,
            "paths": self.paths,
        }


@pytest.mark.parametrize(
    "seed, agents, groups, paths", [(0, 40, 4, 3), (4, 9, 3, 5), (9, 120, 7, 2)]
)
def test_expected_legacy_matches_a_listener_built_from_the_contract(
    seed: int, agents: int, groups: int, paths: int
) -> None:
    script = FloorScript(seed=seed, agents=agents, groups=groups, paths=paths)
    reference = Reference()
    statuses = set()
    for _, chunk in itertools.islice(script.steps(), 8000):
        for rec in split(chunk):
            reference.feed(rec)
        expected = script.expected_legacy()
        same(expected, reference.legacy())
        statuses.update(expected["agents"].values())
    assert statuses == {"in", "out", "busy", "idle", "timer"}


def test_reported_figures_agree_with_the_floor() -> None:
    script = FloorScript(seed=2, agents=30, groups=3, paths=4)
    plan = script.plan
    reference = Reference()
    for _, chunk in itertools.islice(script.steps(), 5000):
        recs = split(chunk)
        for rec in recs:
            reference.feed(rec)
        if recs[-1][3:4] != b"R":
            continue
        logged = {a for a, st in reference.agents.items() if st["logged_in"]}
        for g, members in plan.groups.items():
            assert int(reference.groups[g]["agents"]) == len(logged & set(members))
            served = [reference.paths[p] for p, gs in plan.paths.items() if g in gs]
            assert int(reference.groups[g]["waiting"]) == sum(int(p["waiting"]) for p in served)
            assert reference.groups[g]["longestwait"] == max(p["longestwait"] for p in served)
        for p, gs in plan.paths.items():
            assert int(reference.paths[p]["agents"]) == sum(
                int(reference.groups[g]["agents"]) for g in gs
            )
            if reference.paths[p]["waiting"] == "000":
                assert reference.paths[p]["longestwait"] == "0000"


def test_longest_wait_is_the_age_of_the_oldest_queued_call() -> None:
    # White-box: the wire cannot tell which queued call is the oldest.
    script = FloorScript(agents=2, groups=1, paths=2)
    script.floor.arrive(100, "861")
    script.floor.arrive(130, "861")
    script.floor.arrive(160, "860")
    groups, paths = script.floor.figures(190.0)
    assert paths["861"] == (2, 0, 90.0)
    assert paths["860"] == (1, 0, 30.0)
    assert groups["610"] == (3, 0, 90.0)


def test_every_group_serves_a_path_and_every_path_has_a_group() -> None:
    for groups, paths in [(1, 5), (6, 2), (4, 3), (99, 99)]:
        plan = FloorScript(agents=5, groups=groups, paths=paths).plan
        assert all(plan.paths[p] for p in plan.paths)
        assert {g for gs in plan.paths.values() for g in gs} == set(plan.groups)


# --- v2 floor: keys, consultations, networked ACD, short reports ---------------------------


def tokens_by_agent(records: Iterable[bytes]) -> dict[str, list[str]]:
    """Each agent's call events as code and key, e.g. ``["A00", "T01", "U01", "G01"]``."""
    out: dict[str, list[str]] = {}
    for rec in records:
        if rec[3:4] not in b"KQR" and agent_of(rec):
            out.setdefault(agent_of(rec), []).append(f"{chr(rec[3])}{button_of(rec):02d}")
    return out


def test_remote_paths_are_answered_with_s_and_local_ones_with_g() -> None:
    plan = FloorScript().plan
    assert plan.remote_paths == {"861"}
    answers: Counter[bytes] = Counter()
    for rec in all_records(long_run()):
        if rec[3:4] in b"GS":
            path = rec[26:29].decode()
            assert (rec[3:4] == b"S") == (path in plan.remote_paths), rec
            assert rec[24:26] == b"01"  # ACD calls are answered on key 1
            answers[rec[3:4]] += 1
    assert answers[b"S"] > 100 and answers[b"G"] > 2 * answers[b"S"], answers


def test_s_has_the_layout_of_g() -> None:
    assert (
        encode_call_event(36, "S", datetime.datetime(2024, 3, 11, 10, 15), "2002", "1002", 1, "123")
        == b"\x0236S1015002002   1002   01123\r\n"
    )


def test_some_groups_and_paths_report_without_the_trailing_digits() -> None:
    plan = FloorScript().plan
    assert plan.short_groups == {"620", "640"} and plan.short_paths == {"860", "007"}
    lengths: dict[bytes, set[int]] = {b"K": set(), b"Q": set()}
    for rec in all_records(long_run()):
        code = rec[3:4]
        if code in b"KQ":
            short = plan.short_groups if code == b"K" else plan.short_paths
            assert len(rec) == (23 if rec[10:13].decode() in short else 30), rec
            lengths[code].add(len(rec))
    assert lengths == {b"K": {23, 30}, b"Q": {23, 30}}


def test_buttons_above_3_carry_outgoing_and_personal_calls_and_consultations() -> None:
    keys: dict[str, set[int]] = {}
    for rec in all_records(long_run()):
        if rec[3:4] in b"HIJNOP" and agent_of(rec):
            keys.setdefault(chr(rec[3]), set()).add(button_of(rec))
    assert keys["I"] == {2, 4, 5, 6}  # outgoing on 2, 4, 5; consultations on 2, 4, 6
    assert keys["H"] == {3, 5, 6}
    assert {4, 5, 6} <= keys["J"] and {4, 5, 6} <= keys["N"] and {4, 5, 6} <= keys["O"]
    assert all(k <= 6 for ks in keys.values() for k in ks)


def consultations(history: list[str]) -> Counter[str]:
    """Consultations in an agent's events: the caller on key 1 held while a call runs on another."""
    found: Counter[str] = Counter()
    for i, token in enumerate(history):
        if token != "N01" or i + 1 == len(history) or history[i + 1][0] != "I":
            continue
        key = history[i + 1][1:]
        rest = history[i + 2 : i + 5]
        if rest[:2] == [f"J{key}", "O01"]:
            assert rest[2:] in ([], ["J01"], ["L00"], ["N01"]), history[i : i + 5]
            found["retrieved"] += 1
        elif rest[:2] == ["P01", f"J{key}"]:
            found["caller hung up"] += 1
        else:
            raise AssertionError(f"not a consultation: {history[i : i + 5]}")
        found[f"key {key}"] += 1
    return found


def test_consultation_holds_the_caller_on_key_1_and_calls_on_another_key() -> None:
    found: Counter[str] = Counter()
    for history in tokens_by_agent(all_records(long_run())).values():
        found += consultations(history)
    assert found["retrieved"] > 50 and found["caller hung up"] > 10, found
    assert found["key 02"] and found["key 04"] and found["key 06"], found


def test_the_end_of_a_consultation_leaves_the_agent_busy_with_the_caller_on_hold() -> None:
    script = FloorScript(seed=1)
    reference = Reference()
    history: dict[str, list[str]] = {}
    seen: Counter[str] = Counter()
    for _, chunk in itertools.islice(script.steps(), 12000):
        recs = split(chunk)
        for rec in recs:
            reference.feed(rec)
        expected = script.expected_legacy()["agents"]
        for agent, mine in tokens_by_agent(recs).items():
            past = history.setdefault(agent, [])
            past.extend(mine)
            key = past[-2][1:] if len(past) >= 3 else ""
            if past[-3:] == ["N01", f"I{key}", f"J{key}"] and key != "01":
                # Only the held caller is left: busy, not idle.
                assert expected[agent] == "busy"
                assert reference.agents[agent]["calls"] == {1: {"kind": "acd", "held": True}}
                seen["held caller left"] += 1
            elif past[-4:-2] == ["N01", f"I{past[-1][1:]}"] and past[-2:-1] == ["P01"]:
                assert expected[agent] == "idle"
                assert reference.agents[agent]["calls"] == {}
                seen["nobody left"] += 1
    assert seen["held caller left"] > 20 and seen["nobody left"] > 5, seen


# --- terminators and faults -------------------------------------------------------------------

#: One whole record of any kind, as this simulator sends it, without its terminator.
RECORD = re.compile(
    rb"\x02\d\d(?:[A-FH-JL-PTU]\d{6}[0-9 ]{14}\d\d|[GS]\d{6}[0-9 ]{14}\d{5}"
    rb"|[KQ]\d{19}(?:0000000)?|R\d{14})"
)
GARBAGE = rb"[A-Za-z!-/:-@\[-`{-~]{3,24}"


def read_stream(data: bytes, eol: str) -> tuple[list[bytes], list[bytes]]:
    """Records (STX kept, terminator checked and dropped), and the bytes between them, strictly."""
    end = simulator.TERMINATORS[eol]  # type: ignore[index]
    first = data.find(b"\x02")
    records, between = [], [data[:first]]
    pos = first
    while pos < len(data):
        match = RECORD.match(data, pos)
        assert match, data[pos : pos + 40]
        records.append(match.group())
        pos = match.end()
        assert data.startswith(end, pos), data[pos - 30 : pos + 10]
        pos += len(end)
        after = data.find(b"\x02", pos)
        after = len(data) if after < 0 else after
        between.append(data[pos:after])
        pos = after
    return records, between


def filler(eol: str) -> re.Pattern[bytes]:
    """What may come between records: a NUL run, then a line of garbage, each maybe."""
    end = simulator.TERMINATORS[eol]  # type: ignore[index]
    lead = b"" if end.endswith(b"\n") else b"\n"
    return re.compile(rb"(\x00{1,8})?(" + re.escape(lead) + GARBAGE + re.escape(end) + rb")?")


def frame(data: bytes) -> tuple[list[bytes], int]:
    """state-model §1 framing: record bodies and the count of noise lines.

    A record ends at LF or at the next STX; what is left at the end is a
    record too (the idle flush).
    """
    records, noise = [], 0
    for line in data.replace(b"\x02", b"\n\x02").split(b"\n"):
        if line.startswith(b"\x02"):
            records.append(line[1:].rstrip(b"\r\x00 "))
        elif line.strip(b"\r\n\x00 "):
            noise += 1
    return records, noise


@functools.cache
def faulty(eol: str, seed: int = 0, chunks: int = 6000) -> tuple[FaultCounts, bytes]:
    script = FloorScript(seed=seed, eol=eol, faults=True)  # type: ignore[arg-type]
    data = b"".join(c for _, c in itertools.islice(script.steps(), chunks))
    return attrs.evolve(script.faults), data


def clean_records(eol: str, seed: int = 0, chunks: int = 6000) -> list[bytes]:
    script = FloorScript(seed=seed, eol=eol)  # type: ignore[arg-type]
    return read_stream(b"".join(c for _, c in take(script, chunks)), eol)[0]


@pytest.mark.parametrize("eol", EOLS)
def test_each_terminator_ends_every_record_and_nothing_else_changes(eol: str) -> None:
    run = take(FloorScript(seed=0, eol=eol), 3000)  # type: ignore[arg-type]
    assert [t for t, _ in run] == [t for t, _ in long_run()[:3000]]
    data = b"".join(c for _, c in run)
    records, between = read_stream(data, eol)
    assert not any(between)
    same(records, [r for _, c in long_run()[:3000] for r in split(c)])
    assert data.count(b"\r") == (len(records) if eol in ("crlf", "cr") else 0)
    assert data.count(b"\n") == (len(records) if eol in ("crlf", "lf") else 0)


def test_the_default_terminator_is_crlf_and_faults_are_off() -> None:
    script = FloorScript()
    assert script.eol == "crlf" and not script.wire.faults and not script.wire.noise
    same(b"".join(c for _, c in take(script, 500)), b"".join(c for _, c in long_run()[:500]))
    assert script.faults == FaultCounts()


def test_script_refuses_an_unknown_terminator() -> None:
    with pytest.raises(ValueError, match="crlf, lf, cr, none"):
        FloorScript(eol="dos")  # type: ignore[arg-type]


@pytest.mark.parametrize("eol", EOLS)
def test_noise_is_nuls_and_garbage_lines_between_records_never_inside(eol: str) -> None:
    counts, data = faulty(eol)
    records, between = read_stream(data, eol)  # every record whole, with its terminator
    pattern = filler(eol)
    nul_runs = nul_bytes = noise = 0
    for gap in between:
        match = pattern.fullmatch(gap)
        assert match, gap
        nul_runs += match.group(1) is not None
        nul_bytes += len(match.group(1) or b"")
        noise += match.group(2) is not None
    assert (noise, nul_runs, nul_bytes) == (counts.noise_lines, counts.nul_runs, counts.nul_bytes)
    assert noise >= 10 and nul_runs >= 50, counts
    # A listener framing as state-model §1 says gets every record and every noise line.
    bodies, lines = frame(data)
    same(bodies, [r[1:] for r in records])
    assert lines == counts.noise_lines


@pytest.mark.parametrize("eol", EOLS)
def test_faults_skip_numbers_and_repeat_harmless_records_and_count_them(eol: str) -> None:
    counts, data = faulty(eol)
    records, _ = read_stream(data, eol)
    assert int(records[0][1:3]) == 0
    gaps = skipped = duplicates = 0
    for before, rec in zip(records, records[1:]):
        step = (int(rec[1:3]) - int(before[1:3])) % 100
        assert step <= 4, (before, rec)  # never a resynchronisation
        if step == 0:
            assert rec == before and rec[3:4] not in b"JP", rec
            duplicates += 1
        elif step > 1:
            gaps += 1
            skipped += step - 1
    assert (gaps, skipped, duplicates) == (
        counts.gaps,
        counts.records_skipped,
        counts.duplicates,
    )
    assert gaps >= 20 and duplicates >= 20 and skipped > gaps, counts
    assert counts.feed_counters() == {
        "sequence_gaps": gaps,
        "records_missed": skipped,
        "sequence_duplicates": duplicates,
        "sequence_resyncs": 0,
        "noise": counts.noise_lines,
    }
    # No content is lost or added: without the repeats, the same records as a clean run.
    once = [rec for before, rec in zip([b""] + records, records) if rec != before]
    assert len(once) == len(records) - duplicates
    same([r[3:] for r in once], [r[3:] for r in clean_records(eol)])


def test_faults_are_reproducible_by_seed_and_leave_the_day_alone() -> None:
    first = take(FloorScript(seed=7, eol="cr", faults=True), 3000)
    same(first, take(FloorScript(seed=7, eol="cr", faults=True), 3000))
    assert first != take(FloorScript(seed=8, eol="cr", faults=True), 3000)
    noisy, clean = FloorScript(seed=7, faults=True), FloorScript(seed=7)
    for (t1, _), (t2, _) in itertools.islice(zip(noisy.steps(), clean.steps()), 3000):
        assert t1 == t2
        assert noisy.expected_legacy() == clean.expected_legacy()
    assert noisy.faults.gaps and noisy.faults.duplicates and noisy.faults.noise_lines


def test_noise_alone_keeps_the_numbering_clean() -> None:
    script = FloorScript(seed=3, eol="lf", noise=True)
    data = b"".join(c for _, c in take(script, 4000))
    records, _ = read_stream(data, "lf")
    numbers = [int(r[1:3]) for r in records]
    assert all(b == (a + 1) % 100 for a, b in zip(numbers, numbers[1:]))
    assert script.faults.noise_lines and script.faults.nul_runs
    assert script.faults.feed_counters() == {
        "sequence_gaps": 0,
        "records_missed": 0,
        "sequence_duplicates": 0,
        "sequence_resyncs": 0,
        "noise": script.faults.noise_lines,
    }
    assert not FloorScript(faults=True, noise=False).wire.noise


@pytest.mark.parametrize("eol", ["cr", "none", "crlf"])
def test_a_listener_that_applies_duplicates_again_ends_with_the_ground_truth(eol: str) -> None:
    script = FloorScript(seed=11, eol=eol, faults=True)  # type: ignore[arg-type]
    reference = Reference()
    for _, chunk in itertools.islice(script.steps(), 6000):
        bodies, _ = frame(chunk)  # each chunk ends at a record's end
        for body in bodies:
            reference.feed(b"\x02" + body)
        same(script.expected_legacy(), reference.legacy())
    assert script.faults.duplicates >= 10


def test_an_event_budget_stops_the_faults_with_the_floor() -> None:
    script = FloorScript(seed=5, events=300, eol="lf", faults=True)
    steps = script.steps()
    while not script.frozen:
        next(steps)
    counts = attrs.evolve(script.faults)
    assert counts.gaps and counts.duplicates and counts.nul_runs
    data = b"".join(c for _, c in itertools.islice(steps, 200))
    records, between = read_stream(data, "lf")
    assert not any(between)
    numbers = [int(r[1:3]) for r in records]
    assert all(b == (a + 1) % 100 for a, b in zip(numbers, numbers[1:]))
    assert script.faults == counts
    assert FloorScript(events=0, faults=True).wire.faults is False


# --- the feed: pacing and clients -------------------------------------------------------------


def connect(factory: FeedFactory, port: int = 40000) -> tuple[Any, StringTransport]:
    proto: Any = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", port))
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", port))
    proto.makeConnection(transport)
    return proto, transport


def due_bytes(seed: int, speed: float, elapsed: float, **kwargs: Any) -> bytes:
    """What a client should hold after ``elapsed`` real seconds."""
    out: list[bytes] = []
    for t, chunk in FloorScript(seed=seed, **kwargs).steps():
        if t / speed > elapsed + 1e-9:
            return b"".join(out)
        out.append(chunk)
    raise AssertionError("unreachable")


def test_the_script_starts_at_the_first_connect_and_is_paced_by_the_clock() -> None:
    clock = task.Clock()
    clock.advance(1000)
    factory = FeedFactory(FloorScript(seed=3), clock, speed=4.0)
    clock.advance(50)
    started = [factory.started_at]
    _, transport = connect(factory)
    started.append(factory.started_at)
    assert started == [None, 1050]
    same(transport.value(), due_bytes(3, 4.0, 0))  # the t=0 burst, at once
    assert transport.value().endswith(b"R08000020260309\r\n")
    for step in [0.25, 0.5, 1.0, 3.0, 3.75, 10.0, 0.5, 100.0]:
        clock.advance(step)
        elapsed = clock.seconds() - 1050
        same(transport.value(), due_bytes(3, 4.0, elapsed))


def test_a_chunk_is_not_sent_before_its_time() -> None:
    clock = task.Clock()
    factory = FeedFactory(FloorScript(seed=1, events=0, cycle=15.0), clock, speed=1.0)
    _, transport = connect(factory)
    first = transport.value()
    clock.advance(14.999)
    same(transport.value(), first)
    clock.advance(0.001)
    assert transport.value() != first
    assert transport.value().count(b"R") == 2


def test_a_huge_speed_does_not_starve_the_reactor() -> None:
    clock = task.Clock()
    factory = FeedFactory(FloorScript(), clock, speed=1e12)
    factory.max_chunks_per_tick = 50
    _, transport = connect(factory)
    same(transport.value(), b"".join(c for _, c in take(FloorScript(), 50)))
    (next_tick,) = clock.getDelayedCalls()
    assert next_tick.getTime() < 1e-6


def test_two_clients_get_the_same_broadcast_and_a_late_one_joins_mid_day() -> None:
    clock = task.Clock()
    factory = FeedFactory(FloorScript(seed=4), clock, speed=10.0)
    _, first = connect(factory, 1)
    clock.advance(30)
    _, second = connect(factory, 2)
    assert second.value() == b""  # no replay: the PBX doesn't either
    before = len(first.value())
    for _ in range(30):
        clock.advance(1)
    assert len(factory.clients) == 2
    assert second.value()
    same(first.value()[before:], second.value())


def test_a_disconnected_client_is_dropped_and_ignored_input_is_harmless() -> None:
    clock = task.Clock()
    factory = FeedFactory(FloorScript(seed=4), clock, speed=10.0)
    gone, gone_transport = connect(factory, 1)
    stays, stays_transport = connect(factory, 2)
    stays.dataReceived(b"\x02hello\r\n" * 100)
    clock.advance(5)
    gone.connectionLost(None)
    assert factory.clients == [stays]
    frozen = gone_transport.value()
    clock.advance(60)
    same(gone_transport.value(), frozen)
    assert len(stays_transport.value()) > len(frozen)


def test_a_client_that_stops_reading_is_buffered_up_to_a_bound_then_aborted() -> None:
    clock = task.Clock()
    factory = FeedFactory(FloorScript(seed=4), clock, speed=100.0, max_backlog=4000)
    slow, slow_transport = connect(factory, 1)
    assert (
        slow_transport.streaming and slow_transport.producer == slow
    )  # registered as a push producer
    slow.pauseProducing()
    clock.advance(1)
    held = slow_transport.value()
    slow.resumeProducing()  # within the bound: nothing lost
    assert len(slow_transport.value()) > len(held)
    slow.pauseProducing()
    clock.advance(100)
    assert slow_transport.disconnecting and slow_transport.disconnected  # aborted
    assert slow not in factory.clients


def test_stop_cancels_the_timer_and_hangs_up() -> None:
    clock = task.Clock()
    factory = FeedFactory(FloorScript(), clock)
    _, transport = connect(factory)
    assert clock.getDelayedCalls()
    factory.stop()
    assert clock.getDelayedCalls() == []
    assert transport.disconnecting


def test_feed_refuses_a_non_positive_speed() -> None:
    with pytest.raises(ValueError):
        FeedFactory(FloorScript(), task.Clock(), speed=0)


# --- the service and the command line -------------------------------------------------------------


def test_service_listens_on_start_and_stops_cleanly() -> None:
    reactor = MemoryReactorClock()
    svc = SimulatorService(FloorScript(), port=0, interface="127.0.0.1", speed=2.0, reactor=reactor)
    ports = [svc.port]
    svc.startService()
    ((port, factory, _, interface),) = reactor.tcpServers
    assert (port, interface, factory) == (0, "127.0.0.1", svc.factory)
    ports.append(svc.port)
    assert ports == [None, 0]  # known once listening
    connect(svc.factory)
    assert reactor.getDelayedCalls()
    svc.stopService()
    assert reactor.getDelayedCalls() == []
    assert not svc.running


def test_service_logs_its_settings_and_the_faults_it_sent() -> None:
    reactor = MemoryReactorClock()
    svc = makeService(parse("--port", "0", "--seed", "2", "--eol", "none", "--faults"), reactor)
    with capturedLogs() as events:
        svc.startService()
        list(itertools.islice(svc.factory.script.steps(), 2000))
        svc.stopService()
    lines = [formatEvent(e) for e in events]
    assert lines[0] == (
        "simulated ICP feed on 127.0.0.1 port 0"
        " (seed 2, no record terminator, with numbering faults and noise)"
    )
    counts = svc.factory.script.faults
    assert lines[-1] == (
        f"faults sent: {counts.gaps} numbering gaps ({counts.records_skipped} numbers skipped),"
        f" {counts.duplicates} duplicates, {counts.noise_lines} noise lines,"
        f" {counts.nul_runs} NUL runs"
    )


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


def test_options_defaults_and_values() -> None:
    options = parse()
    assert (options["port"], options["interface"], options["agents"]) == (15373, "127.0.0.1", 40)
    assert (options["groups"], options["paths"], options["speed"], options["cycle"]) == (
        4,
        3,
        1.0,
        15.0,
    )
    assert options["seed"] is None and options["events"] is None
    assert (options["eol"], options["faults"], options["noise"]) == ("crlf", 0, 0)
    options = parse(
        "--port",
        "0",
        "--agents",
        "999",
        "--speed",
        "60",
        "--seed",
        "5",
        "--events",
        "0",
        "--cycle",
        "2.5",
    )
    assert (options["port"], options["agents"], options["speed"]) == (0, 999, 60.0)
    assert (options["seed"], options["events"], options["cycle"]) == (5, 0, 2.5)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--port", "65536"], "--port"),
        (["--port", "-1"], "--port"),
        (["--agents", "0"], "--agents"),
        (["--agents", "1000"], "--agents"),
        (["--groups", "0"], "--groups"),
        (["--groups", "100"], "--groups"),
        (["--paths", "0"], "--paths"),
        (["--paths", "100"], "--paths"),
        (["--speed", "0"], "--speed"),
        (["--speed", "-2"], "--speed"),
        (["--events", "-1"], "--events"),
        (["--cycle", "0"], "--cycle"),
        (["--agents", "many"], "--agents wants a whole number"),
        (["--speed", "fast"], "--speed wants a number"),
        (["--eol", "dos"], "--eol wants one of crlf, lf, cr, none, not 'dos'"),
        (["--eol", "CRLF"], "--eol wants one of crlf, lf, cr, none, not 'CRLF'"),
        (["--eol", ""], "--eol wants one of crlf, lf, cr, none, not ''"),
    ],
)
def test_options_refuse_bad_values_with_a_clear_message(argv: list[str], message: str) -> None:
    with pytest.raises(usage.UsageError, match=message):
        parse(*argv)


def test_help_explains_every_option() -> None:
    text = str(Options())
    for name in (
        "port",
        "interface",
        "agents",
        "groups",
        "paths",
        "speed",
        "seed",
        "events",
        "cycle",
        "eol",
        "faults",
        "noise",
    ):
        assert f"--{name}" in text
    assert "crlf, lf, cr, or none" in text


@pytest.mark.parametrize("eol", EOLS)
def test_options_take_each_terminator(eol: str) -> None:
    assert parse("--eol", eol)["eol"] == eol


@pytest.mark.parametrize(
    "argv, faults, noise",
    [
        ([], False, False),
        (["--noise"], False, True),
        (["--faults"], True, True),
        (["--faults", "--noise"], True, True),
    ],
)
def test_make_service_passes_terminator_and_faults_on(
    argv: list[str], faults: bool, noise: bool
) -> None:
    svc = makeService(
        parse("--port", "0", "--seed", "1", "--eol", "cr", *argv), MemoryReactorClock()
    )
    script = svc.factory.script
    assert (script.eol, script.wire.faults, script.wire.noise) == ("cr", faults, noise)


def test_make_service_builds_the_floor_from_options() -> None:
    reactor = MemoryReactorClock()
    svc = makeService(
        parse("--port", "0", "--agents", "7", "--groups", "2", "--seed", "9", "--speed", "3"),
        reactor,
    )
    assert isinstance(svc, SimulatorService)
    assert (svc.requested_port, svc.interface, svc.factory.speed) == (0, "127.0.0.1", 3.0)
    script = svc.factory.script
    assert (
        script.seed == 9
        and len(script.plan.home_dns) == 7
        and list(script.plan.groups) == ["610", "620"]
    )
    unseeded = makeService(parse(), reactor).factory.script.seed
    assert isinstance(unseeded, int)


# --- a real socket ---------------------------------------------------------------------------------


class Collector(protocol.Protocol):
    def __init__(self, enough: int) -> None:
        self.enough, self.data = enough, b""
        self.done: defer.Deferred[bytes] = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        if self.data.count(b"\r\n") >= self.enough and not self.done.called:
            self.done.callback(self.data)


@pytest_twisted.ensureDeferred
async def test_a_real_client_receives_the_feed_over_loopback() -> None:
    from twisted.internet import endpoints, reactor

    svc = SimulatorService(
        FloorScript(seed=6), port=0, interface="127.0.0.1", speed=200.0, reactor=reactor
    )
    svc.startService()
    try:
        assert svc.port and svc.port > 0
        endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", svc.port, timeout=5)
        client = await endpoints.connectProtocol(endpoint, Collector(enough=40))
        data = await client.done.addTimeout(10, reactor)
        expected = b"".join(c for _, c in take(FloorScript(seed=6), 200))
        assert expected.startswith(data)
        assert data.startswith(b"\x0200K080000610")
        client.transport.loseConnection()
    finally:
        await defer.maybeDeferred(svc.stopService).addTimeout(10, reactor)
