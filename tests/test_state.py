"""FloorState against state-model.md §2-§5, fed through the real parser."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from twisted.internet.task import Clock
from twisted.logger import LogLevel, formatEvent

from mitelacd import testing
from mitelacd.floor.legacy import LegacyFileError, LegacyStatus, legacy_status, validate_legacy
from mitelacd.floor.records import AgentEvent, Malformed
from mitelacd.floor.state import Activity, FloorState
from mitelacd.testing import START, capture_log

FLAGS = ("logged_in", "dnd", "make_busy", "wrap_up", "fresh_login", "ringing")


class Feeder(testing.Feeder):
    def flags(self, agent_id: str = "1001") -> dict[str, Any]:
        a = self.agent(agent_id)
        flags: dict[str, Any] = {f: getattr(a, f) for f in FLAGS}
        flags["calls"] = {b: (c.kind, c.held) for b, c in a.calls.items()}
        flags["activity"] = a.activity
        flags["on_hold"] = a.on_hold
        flags["status"] = a.status
        return flags


@pytest.fixture
def f() -> Feeder:
    return Feeder()


def state(**changes: Any) -> dict[str, Any]:
    """A logged-in agent with nothing going on (status idle), plus changes."""
    base: dict[str, Any] = dict(logged_in=True, dnd=False, make_busy=False, wrap_up=False, fresh_login=False,
                ringing=None, calls={}, activity="none", on_hold=False, status="idle")  # fmt: skip
    base.update(changes)
    return base


ACD1 = {1: ("acd", False)}
HELD_ACD1 = {1: ("acd", True)}
BUSY = "busy"

# state-model §3 (v2), row by row: (events before, the event under test, the
# agent afterwards). Events are a code and its tail: "N01" is hold on key 01;
# a bare "G" is an ACD call on key 01 from path 860. Earlier events put other
# flags in place so that each row also shows what the code leaves alone.
MACHINE = [
    # A and B
    ("C E L H03 N03 T02", "A", state(fresh_login=True, status="in")),
    ("A C E L H03 N03 T02", "B", state(logged_in=False, status="out")),
    # C, D, E, F
    ("A E L", "C", state(dnd=True, make_busy=True, wrap_up=True, status=BUSY)),
    ("C E", "D", state(make_busy=True, status=BUSY)),
    ("C L", "E05", state(dnd=True, make_busy=True, wrap_up=True, status=BUSY)),
    ("C E", "F", state(dnd=True, status=BUSY)),
    # T and U
    ("A C", "T02", state(dnd=True, ringing=2, activity="ringing", status=BUSY)),
    ("A", "T04", state(ringing=4, activity="ringing", status=BUSY)),
    ("A T01", "U01", state()),
    ("T01 G", "U01", state(calls=ACD1, activity="acd_call", status=BUSY)),
    (
        "H01 N01",
        "U",
        state(calls={1: ("personal", True)}, activity="hold", on_hold=True, status=BUSY),
    ),  # fmt: skip
    ("", "U", state()),
    # G, S, H, I: a call on the button; answering stops the ringing
    ("T02", "G02860", state(calls={2: ("acd", False)}, activity="acd_call", status=BUSY)),
    ("T02", "S02123", state(calls={2: ("acd", False)}, activity="acd_call", status=BUSY)),
    ("T01", "H01", state(calls={1: ("personal", False)}, activity="personal_call", status=BUSY)),
    (
        "T01",
        "I02",
        state(ringing=1, calls={2: ("outgoing", False)}, activity="outgoing_call", status=BUSY),
    ),  # fmt: skip
    (
        "H01 N01",
        "G02860",
        state(
            calls={1: ("personal", True), 2: ("acd", False)},
            activity="acd_call",
            on_hold=True,
            status=BUSY,
        ),
    ),  # fmt: skip
    # N and O: an unknown call when there was none
    ("A", "N01", state(calls={1: ("unknown", True)}, activity="hold", on_hold=True, status=BUSY)),
    ("G", "N01", state(calls=HELD_ACD1, activity="hold", on_hold=True, status=BUSY)),
    ("A", "O01", state(calls={1: ("unknown", False)}, activity="call", status=BUSY)),
    ("G N01", "O01", state(calls=ACD1, activity="acd_call", status=BUSY)),
    (
        "G N01",
        "O02",
        state(
            calls={1: ("acd", True), 2: ("unknown", False)},
            activity="call",
            on_hold=True,
            status=BUSY,
        ),
    ),  # fmt: skip
    # consultation: caller held on 01 while a call on 02 runs, then ends
    ("G N01 I02", "J02", state(calls=HELD_ACD1, activity="hold", on_hold=True, status=BUSY)),
    ("G N01 I02 J02", "O01", state(calls=ACD1, activity="acd_call", status=BUSY)),
    ("G N01 I02 J02 O01", "J01", state()),
    (
        "G N01 I02",
        "P01",
        state(calls={2: ("outgoing", False)}, activity="outgoing_call", status=BUSY),
    ),  # fmt: skip
    # P: the held call is gone
    ("H03 N03", "P03", state()),
    ("C G N01", "P01", state(dnd=True, status=BUSY)),
    # J: that button's call ends; on a button with no call, every call ends
    ("E I02", "J02", state(make_busy=True, status=BUSY)),
    ("G N01 I02", "J03", state()),
    ("G I02", "J01", state(calls={2: ("outgoing", False)}, activity="outgoing_call", status=BUSY)),
    # button 0: the agent's only call; J with button 0 ends every call
    ("G", "N00", state(calls=HELD_ACD1, activity="hold", on_hold=True, status=BUSY)),
    ("G N01", "O00", state(calls=ACD1, activity="acd_call", status=BUSY)),
    ("G N01", "P00", state()),
    ("G", "J00", state()),
    ("G N01 I02", "J00", state()),
    (
        "G N01 I02",
        "J01",
        state(calls={2: ("outgoing", False)}, activity="outgoing_call", status=BUSY),
    ),  # fmt: skip
    (
        "G I02",
        "N00",
        state(
            calls={1: ("acd", False), 2: ("outgoing", False), 0: ("unknown", True)},
            activity="outgoing_call",
            on_hold=True,
            status=BUSY,
        ),
    ),  # fmt: skip
    ("G", "Jxx", state()),  # a tail that is not a number reads as button 0
    # L and M
    ("G I02 N02", "L", state(wrap_up=True, status="timer")),
    ("C L", "M", state(dnd=True, status=BUSY)),
    ("L G", "M", state(calls=ACD1, activity="acd_call", status=BUSY)),
    ("A L", "M", state()),
    # first seen mid-day through N
    ("", "N01", state(calls={1: ("unknown", True)}, activity="hold", on_hold=True, status=BUSY)),
]


@pytest.mark.parametrize("before, step, expected", MACHINE, ids=[f"{b}>{c}" for b, c, _ in MACHINE])
def test_state_machine_row(f: Feeder, before: str, step: str, expected: dict[str, Any]) -> None:
    f.steps(before)
    f.steps(step)
    assert f.flags() == expected
    assert f.floor.legacy()["agents"] == {"1001": expected["status"]}


@pytest.mark.parametrize(
    "spec, activity",
    [
        ("I02 G01860", "acd_call"),  # the call begun last
        ("G01860 I02", "outgoing_call"),
        ("G01860 I02 N02 O02", "outgoing_call"),  # retrieved last
        ("G01860 I02 N01 O01", "acd_call"),
        ("G01860 H03 N03", "acd_call"),  # a held call never wins over a live one
    ],
)
def test_activity_is_the_most_recent_unheld_call(f: Feeder, spec: str, activity: Activity) -> None:
    f.steps(spec)
    assert f.agent().activity == activity


def test_calls_in_the_rich_view(f: Feeder) -> None:
    f.steps("G03860")
    f.clock.advance(30)
    f.steps("N03 I05")
    view = f.view()
    assert view["calls"] == [
        {"button": 3, "kind": "acd", "held": True, "path": "860",
         "since": "2023-11-14T22:13:20.000Z"},
        {"button": 5, "kind": "outgoing", "held": False, "path": None,
         "since": "2023-11-14T22:13:50.000Z"},
    ]  # fmt: skip
    assert (view["activity"], view["on_hold"], view["ringing"]) == ("outgoing_call", True, None)
    assert (view["last_button"], view["last_event_pbx_time"]) == (5, "081502")


@pytest.mark.parametrize("tail", ["", "  ", "00"])
def test_j_without_a_button_ends_every_call(f: Feeder, tail: str) -> None:
    f.steps("G01860 N01 I02")
    f.event("J", tail=tail)
    assert (f.agent().calls, f.agent().status) == ({}, "idle")


def test_c_keeps_its_tail_as_the_dnd_reason(f: Feeder) -> None:
    f.steps("C07")
    assert (f.agent().dnd_reason, f.view()["dnd_reason"]) == (7, 7)
    f.steps("D")
    assert f.view()["dnd_reason"] is None


@pytest.mark.parametrize("code", "BCDEFGHIJLMNOPSTU")
def test_every_event_but_a_clears_fresh_login(f: Feeder, code: str) -> None:
    f.event("A")
    assert f.agent().fresh_login
    f.event(code)
    assert not f.agent().fresh_login


def test_g_and_s_remember_the_path(f: Feeder) -> None:
    f.event("G", tail="01860")
    assert (f.agent().last_path, f.view()["last_path"]) == ("860", "860")
    f.event("S", tail="02007")
    assert f.agent().last_path == "007"


def test_e_remembers_the_reason(f: Feeder) -> None:
    f.event("E", tail="05")
    assert (f.agent().make_busy_reason, f.view()["make_busy_reason"]) == (5, 5)


@pytest.mark.parametrize("first", "CDEFGHIJLMNOPSTU")
def test_joining_mid_day_first_event_other_than_a_means_logged_in(f: Feeder, first: str) -> None:
    f.event(first)
    assert f.agent().logged_in and not f.agent().fresh_login
    assert f.agent().status != "out"


def test_first_event_b_for_unknown_agent_is_out(f: Feeder) -> None:
    f.event("B")
    assert not f.agent().logged_in
    assert f.floor.legacy()["agents"] == {"1001": "out"}


@pytest.mark.parametrize(
    "first, status", [("G", "busy"), ("D", "idle"), ("J", "idle"), ("M", "idle")]
)
def test_joining_mid_day_status(f: Feeder, first: str, status: LegacyStatus) -> None:
    f.event(first)
    assert f.floor.legacy()["agents"]["1001"] == status


def test_displacement_b_then_a_on_the_same_dn(f: Feeder) -> None:
    # Protocol doc §4 #30 / #31.
    f.raw("40B1300002003   1003   00")
    f.raw("41A1300002003   1004   00")
    assert f.floor.legacy()["agents"] == {"1003": "out", "1004": "in"}
    assert (f.agent("1003").extension, f.agent("1004").extension) == (None, "2003")


# §4 legacy derivation -------------------------------------------------------


@pytest.mark.parametrize(
    "codes, status",
    [
        ("B", "out"),
        ("ACB", "out"),  # out beats busy
        ("ALGB", "out"),
        ("A", "in"),
        ("AC", "busy"),
        ("AE", "busy"),
        ("AT", "busy"),
        ("AG", "busy"),
        ("AS", "busy"),
        ("AH", "busy"),
        ("AI", "busy"),
        ("AN", "busy"),
        ("ALC", "busy"),  # wrap_up + dnd: busy beats timer
        ("ALE", "busy"),
        ("ALT", "busy"),
        ("AL", "timer"),
        ("ALM", "idle"),
        ("AD", "idle"),  # fresh login, then any other event
        ("AF", "idle"),
        ("AU", "idle"),
        ("AJ", "idle"),
        ("AP", "idle"),
        ("AGJ", "idle"),
        ("ACD", "idle"),
        ("AEF", "idle"),
        ("ATU", "idle"),
        ("AGNP", "idle"),
    ],
)
def test_legacy_status(f: Feeder, codes: str, status: LegacyStatus) -> None:
    f.events(codes)
    assert f.agent().status == status
    assert f.floor.legacy()["agents"] == {"1001": status}
    assert f.view()["status"] == status


@pytest.mark.parametrize(
    "flags, status",
    [
        (dict(logged_in=False, dnd=True, wrap_up=True, fresh_login=True), "out"),
        (dict(engaged=True, wrap_up=True, fresh_login=True), "busy"),
        (dict(dnd=True, wrap_up=True, fresh_login=True), "busy"),
        (dict(make_busy=True, wrap_up=True, fresh_login=True), "busy"),
        (dict(wrap_up=True, fresh_login=True), "timer"),
        (dict(fresh_login=True), "in"),
        (dict(), "idle"),
    ],
)
def test_legacy_order_on_flags(flags: dict[str, bool], status: LegacyStatus) -> None:
    base: dict[str, bool] = dict(logged_in=True, engaged=False, dnd=False, make_busy=False, wrap_up=False,
                fresh_login=False)  # fmt: skip
    assert legacy_status(**{**base, **flags}) == status


def test_since_is_when_the_status_last_changed(f: Feeder) -> None:
    # §5: ``since`` = the time the (legacy) status last changed.
    f.event("A")
    f.clock.advance(10)
    f.event("C")  # in -> busy
    assert f.view()["since"] == "2023-11-14T22:13:30.000Z"
    f.clock.advance(10)
    f.event("T")  # busy -> busy (only the activity changes)
    f.clock.advance(10)
    f.event("G")  # busy -> busy
    assert f.view()["since"] == "2023-11-14T22:13:30.000Z"


# Extension events -----------------------------------------------------------


def test_extension_event_changes_no_agent_and_not_last_update(f: Feeder) -> None:
    f.event("A", agent="1001", dn="2050")
    before = (f.flags(), f.floor.last_update)
    f.clock.advance(10)
    result = f.raw("34C1001012050          00")  # protocol doc §4 #24
    assert isinstance(result, AgentEvent) and result.is_extension_event
    f.event("H", agent="", dn="2050")  # #25 style
    assert list(f.floor.agents) == ["1001"]
    assert (f.flags(), f.floor.last_update) == before
    ext = f.floor.extensions["2050"]
    assert (ext.dn, ext.last_event, ext.last_event_at) == ("2050", "H", START + 10)
    assert [e["dn"] for e in f.floor.snapshot()["extensions"]] == ["2050"]


def test_stripped_short_record_is_an_extension_event(f: Feeder) -> None:
    f.raw("34C1001012050")
    assert f.floor.agents == {} and "2050" in f.floor.extensions


# lastUpdate ---------------------------------------------------------------------


def test_last_update_moves_on_agent_events_and_stats_only(f: Feeder) -> None:
    assert f.floor.last_update == 0
    f.event("A")
    assert f.floor.last_update == START
    f.clock.advance(5)
    f.keepalive()
    assert f.floor.last_update == START
    f.event("C", agent="", dn="2050")
    assert f.floor.last_update == START
    f.raw(b"12y0815022001   1001   00")
    f.raw(b"\xff\xfe")
    assert f.floor.last_update == START
    f.stats("K", "610", "0000010000")
    assert f.floor.last_update == START + 5
    f.clock.advance(5)
    f.stats("Q", "860", "0000010000")  # the same figures again still re-report
    assert f.floor.last_update == START + 10
    f.clock.advance(5)
    f.event("J")
    assert f.floor.last_update == START + 15
    assert f.floor.legacy()["lastUpdate"] == START + 15


# Groups and paths -----------------------------------------------------------------


def test_groups_and_paths_exactly_as_sent(f: Feeder) -> None:
    f.stats("K", "007", "0030020145" + "0000000")
    f.stats("Q", "860", "0120021030")
    legacy = f.floor.legacy()
    assert legacy["groups"] == {"007": {"waiting": "003", "agents": "002", "longestwait": "0145"}}
    assert legacy["paths"] == {"860": {"waiting": "012", "agents": "002", "longestwait": "1030"}}
    snap = f.floor.snapshot()
    (group,) = snap["groups"]
    (path,) = snap["paths"]
    assert (group["id"], group["trailing"], group["longest_wait_seconds"]) == (
        "007",
        "0000000",
        105,
    )
    assert (group["waiting"], group["agents_logged_in"], group["confirmed"]) == (3, 2, True)
    assert (path["id"], path["trailing"], path["longest_wait_seconds"]) == ("860", "", 630)


def test_a_new_report_replaces_the_old_figures(f: Feeder) -> None:
    f.stats("K", "610", "0030020145")
    f.stats("K", "610", "0000020000")
    assert f.floor.legacy()["groups"]["610"]["waiting"] == "000"


def test_legacy_document_has_exactly_four_keys(f: Feeder) -> None:
    f.event("A")
    f.stats("K", "610", "0000010000")
    legacy = f.floor.legacy()
    assert set(legacy) == {"agents", "groups", "paths", "lastUpdate"}
    assert json.loads(f.floor.legacyJSON()) == legacy
    f.event("C")
    assert json.loads(f.floor.legacyJSON())["agents"] == {"1001": "busy"}


def test_legacy_document_of_an_empty_floor(f: Feeder) -> None:
    doc = json.loads(FloorState(Clock()).legacyJSON())
    assert set(doc) == {"agents", "groups", "paths", "lastUpdate"}
    assert (doc["agents"], doc["groups"], doc["paths"]) == ({}, {}, {})


# carry() --------------------------------------------------------------------------

CARRIED: dict[str, Any] = {
    "agents": {"6186": "out", "6184": "idle", "6183": "busy", "6185": "timer", "6187": "in"},
    "groups": {"610": {"waiting": "000", "agents": "002", "longestwait": "0145"}},
    "paths": {"860": {"waiting": "003", "agents": "002", "longestwait": "0210"}},
    "lastUpdate": 1383899857.435,
}


def test_carry_shows_carried_statuses_until_a_live_event(f: Feeder) -> None:
    f.floor.carry(validate_legacy(json.loads(json.dumps(CARRIED))))
    legacy = f.floor.legacy()
    assert {k: legacy[k] for k in ("agents", "groups", "paths")} == {
        k: CARRIED[k] for k in ("agents", "groups", "paths")
    }
    assert all(not a["confirmed"] for a in f.floor.snapshot()["agents"])
    assert not f.floor.snapshot()["groups"][0]["confirmed"]
    f.event("D", agent="6183")  # busy was carried; a live D says otherwise
    assert f.agent("6183").status == "idle"
    assert f.view("6183")["confirmed"] is True
    assert f.view("6184")["confirmed"] is False
    assert f.floor.legacy()["agents"] == {**CARRIED["agents"], "6183": "idle"}


def test_carried_agents_are_marked_unconfirmed_until_named(f: Feeder) -> None:
    f.floor.carry(validate_legacy(CARRIED))
    view = f.view("6184")
    assert (view["status"], view["carried"], view["confirmed"]) == ("idle", True, False)
    assert view["carried_since"] == "2023-11-14T22:13:20.000Z"
    assert f.floor.carried_agents == 5
    f.event("J", agent="6184")
    view = f.view("6184")
    assert (view["carried"], view["confirmed"], view["carried_since"]) == (False, True, None)
    assert f.floor.carried_agents == 4


def test_carried_agents_are_let_go_when_the_pbx_date_changes(f: Feeder) -> None:
    f.floor.carry(validate_legacy(CARRIED), pbx_date=datetime.date(2024, 3, 11))
    f.event("G", agent="6183")  # named: no longer carried
    f.keepalive("20240311")  # the same day: nothing happens
    assert f.floor.legacy()["agents"]["6184"] == "idle"
    f.clock.advance(60)
    f.keepalive("20240312")
    agents = f.floor.legacy()["agents"]
    assert agents == {"6186": "out", "6184": "out", "6183": "busy", "6185": "out", "6187": "out"}
    view = f.view("6187")
    assert (view["carried"], view["confirmed"], view["logged_in"]) == (False, False, False)
    assert view["since"] == "2023-11-14T22:14:20.000Z"
    assert f.floor.feedView()["agents_let_go"] == 4
    assert f.floor.carried_agents == 0


def test_the_first_date_is_compared_with_the_files_own_day(f: Feeder) -> None:
    doc = dict(CARRIED, lastUpdate=datetime.datetime(2024, 3, 11, 23, 55).timestamp())
    f.floor.carry(validate_legacy(doc))
    f.keepalive("20240312")  # restarted after midnight: yesterday's floor goes
    assert set(f.floor.legacy()["agents"].values()) == {"out"}


def test_a_bad_r_date_lets_nobody_go(f: Feeder) -> None:
    f.floor.carry(validate_legacy(CARRIED), pbx_date=datetime.date(2024, 3, 11))
    f.keepalive("2024031")
    f.keepalive("20241399")
    assert f.floor.carried_agents == 5
    assert f.floor.feedView()["pbx_date_raw"] == "20241399"
    f.keepalive("20240311")
    assert f.floor.feedView()["pbx_date_raw"] is None


def test_bad_and_backward_r_dates_are_warned_of_once_and_keep_the_last_good_date(
    f: Feeder,
) -> None:
    f.floor.carry(validate_legacy(CARRIED), pbx_date=datetime.date(2024, 3, 11))
    with capture_log("mitelacd.floor.state") as log:
        for raw in ("20241311", "20241399", "20240310", "20240301", "20240311"):
            f.keepalive(raw)
    # A month 13 and a date going back let nobody go and count.
    assert f.floor.carried_agents == 5
    assert f.floor.feedView()["pbx_dates_refused"] == 4
    warnings = [line for line in log.lines(LogLevel.warn) if "the PBX sent the date" in line]
    assert len(warnings) == 2, warnings
    assert "'20241311' (not a date)" in warnings[0] and "keep 2024-03-11" in warnings[0]
    assert "'20240310' (before the last one)" in warnings[1]
    # The last good date still rules: the next day lets the carried agents go.
    f.keepalive("20240312")
    assert f.floor.carried_agents == 0


def test_letting_go_is_logged_with_the_count(f: Feeder) -> None:
    f.floor.carry(validate_legacy(CARRIED))
    with capture_log("mitelacd.floor.state") as log:
        assert f.floor.letGoCarried("unconfirmed for 600 s") == 5
        assert f.floor.letGoCarried("again") == 0
    (line,) = [e for e in log.events if "let go" in e.get("log_format", "")]
    assert (line["count"], line["why"]) == (5, "unconfirmed for 600 s")


# Bounded tables --------------------------------------------------------------------


def test_the_agent_table_is_bounded() -> None:
    f = Feeder()
    f.floor.max_agents = 3
    for agent in ("1", "22", "333", "4444", "55555"):
        f.event("A", agent=agent)
    assert list(f.floor.agents) == ["1", "22", "333"]
    assert f.floor.feedView()["agents_refused"] == 2
    f.event("C", agent="22")  # known agents still change
    assert f.floor.legacy()["agents"]["22"] == "busy"


def test_the_extension_table_forgets_the_set_heard_from_longest_ago() -> None:
    f = Feeder()
    f.floor.max_extensions = 2
    f.event("C", agent="", dn="2050")
    f.event("C", agent="", dn="2051")
    f.event("D", agent="", dn="2050")  # heard again: 2051 is now the oldest
    f.recorder.take()
    f.event("C", agent="", dn="2052")
    assert list(f.floor.extensions) == ["2050", "2052"]
    assert f.floor.feedView()["extensions_forgotten"] == 1
    (changes,) = f.recorder.take()
    assert changes.extensions["2051"] is None and changes.extensions["2052"] is not None


def test_carried_out_agent_returns_on_a_live_event(f: Feeder) -> None:
    f.floor.carry(validate_legacy(CARRIED))
    f.event("G", agent="6186")
    assert f.floor.legacy()["agents"]["6186"] == "busy"


@pytest.mark.parametrize(
    "doc",
    [
        [],
        "agents",
        {},
        {"agents": {}, "groups": {}},
        {"agents": [], "groups": {}, "paths": {}},
        {"agents": {"1": "away"}, "groups": {}, "paths": {}},
        {"agents": {"1": None}, "groups": {}, "paths": {}},
        {"agents": {}, "groups": {"610": {"waiting": "000", "agents": "000"}}, "paths": {}},
        {
            "agents": {},
            "groups": {},
            "paths": {"860": {"waiting": 0, "agents": "0", "longestwait": "0"}},
        },
        {"agents": {}, "groups": {"610": "000"}, "paths": {}},
        {"agents": {}, "groups": {}, "paths": {}, "lastUpdate": "1383899857"},
        {"agents": {}, "groups": {}, "paths": {}, "lastUpdate": True},
        # Not valid JSON (RFC 8259) and not a Unix time: legacyJSON() would emit NaN.
        {"agents": {}, "groups": {}, "paths": {}, "lastUpdate": float("nan")},
        {"agents": {}, "groups": {}, "paths": {}, "lastUpdate": float("inf")},
    ],
)
def test_invalid_documents_are_refused(doc: object) -> None:
    with pytest.raises(LegacyFileError):
        validate_legacy(doc)


# Feed ------------------------------------------------------------------------------


def sequence_counts(f: Feeder) -> tuple[int, int, int, int]:
    feed = f.floor.feedView()
    return (
        feed["sequence_gaps"],
        feed["records_missed"],
        feed["sequence_duplicates"],
        feed["sequence_resyncs"],
    )


def numbered(f: Feeder, *numbers: int, code: str = "J") -> None:
    for seq in numbers:
        f.raw(testing.call_body(seq, code, "2001", "1001", "01"))


@pytest.mark.parametrize(
    "numbers, counts",
    [
        # (gaps, records missed, duplicates, resynchronisations): state-model §6
        ((5, 6, 7, 8), (0, 0, 0, 0)),
        ((98, 99, 0, 1), (0, 0, 0, 0)),  # the wrap is no gap
        ((98, 0), (1, 1, 0, 0)),  # a gap across 99 -> 00
        ((97, 2), (1, 4, 0, 0)),
        ((2, 6, 7), (1, 3, 0, 0)),
        ((10, 60), (1, 49, 0, 0)),  # 50 ahead: still a gap
        ((10, 61), (0, 0, 0, 1)),  # 51 ahead: too far to size
        ((40, 40), (0, 0, 1, 0)),  # a duplicate is never a loss
        ((40, 40, 40, 41), (0, 0, 2, 0)),
        ((40, 30), (0, 0, 0, 1)),  # a step back
        ((40, 39), (0, 0, 0, 1)),
        ((40, 30, 31, 35), (1, 3, 0, 1)),  # counted from the new numbering on
    ],
)
def test_record_numbers(
    f: Feeder, numbers: tuple[int, ...], counts: tuple[int, int, int, int]
) -> None:
    numbered(f, *numbers)
    assert sequence_counts(f) == counts


def test_a_record_with_a_readable_number_counts_even_when_unreadable(f: Feeder) -> None:
    numbered(f, 40)
    f.raw(b"41y0815022001   1001   00")  # unknown code, but number 41 arrived
    f.raw(b"42A08150x2001   1001   00")  # bad time
    numbered(f, 43)
    assert sequence_counts(f) == (0, 0, 0, 0)
    assert f.floor.feed.unparsable == 2
    f.raw(b"4xA0815022001   1001   00")  # no number: nothing to count with
    numbered(f, 44)
    assert sequence_counts(f) == (0, 0, 0, 0)


def test_each_kind_of_numbering_trouble_is_logged_in_its_own_words(f: Feeder) -> None:
    with capture_log("mitelacd.floor.state") as log:
        numbered(f, 10, 13, 13, 2)
    lines = [formatEvent(e) for e in log.events]
    lines = [line for line in lines if "record number" in line]
    assert len(lines) == 3
    assert "jumped from 10 to 13: 2 record(s) lost upstream" in lines[0]
    assert "13 came twice in a row: a duplicate, not a loss" in lines[1]
    assert "went from 13 to 02" in lines[2] and "resynchronised" in lines[2]


def test_numbering_logs_are_rate_limited_per_kind(f: Feeder) -> None:
    with capture_log("mitelacd.floor.state") as log:
        numbered(f, *([5] * 30))  # 29 duplicates
        numbered(f, 7)  # and then a gap: its own allowance
    duplicates = [e for e in log.events if "twice in a row" in e.get("log_format", "")]
    gaps = [e for e in log.events if "lost upstream" in e.get("log_format", "")]
    assert len(duplicates) == 5 and len(gaps) == 1
    assert f.floor.feed.duplicates == 29


def test_record_number_counts_in_the_feed_view(f: Feeder) -> None:
    f.seq = 98
    f.events("AJJJ")  # 98 99 00 01
    f.keepalive()  # 02: R shares the counter
    f.seq = 6
    f.event("C")  # 02 -> 06: 3 lost
    f.event("D")  # 07 follows 06
    feed = f.floor.snapshot()["feed"]
    assert (feed["sequence_gaps"], feed["records_missed"]) == (1, 3)
    assert (feed["sequence_duplicates"], feed["sequence_resyncs"]) == (0, 0)


def test_no_gap_across_a_reconnect(f: Feeder) -> None:
    f.floor.feedConnected("pbx", 15373)
    f.event("A")
    f.floor.feedDisconnected("lost")
    f.floor.feedConnected("pbx", 15373)
    f.seq = 50
    f.event("J")
    assert f.floor.feed.gaps == 0


def test_feed_disconnected_keeps_status_but_unconfirms(f: Feeder) -> None:
    f.floor.feedConnected("pbx", 15373)
    f.events("AC")
    f.stats("K", "610", "0000010000")
    assert f.view()["confirmed"] and f.floor.snapshot()["groups"][0]["confirmed"]
    f.floor.feedDisconnected("connection lost")
    assert f.view()["confirmed"] is False
    assert f.floor.snapshot()["groups"][0]["confirmed"] is False
    assert f.flags() == state(dnd=True, status="busy")
    assert f.floor.feed.connected is False
    assert f.floor.legacy()["agents"] == {"1001": "busy"}


def test_unparsable_records_are_counted_and_change_nothing(f: Feeder) -> None:
    f.events("AC")
    before = (f.flags(), f.floor.legacy())
    bad = [b"12y0815022001   1001   00", b"12B25619920011001", b"\x80\x81", b"12"]
    for raw in bad:
        f.clock.advance(1)
        assert isinstance(f.raw(raw), Malformed)
    assert f.floor.feed.unparsable == len(bad)
    assert (f.flags(), f.floor.legacy()) == before
    assert f.floor.snapshot()["feed"]["unparsable_records"] == len(bad)


@pytest.mark.parametrize("step", ["E" + "9" * 20, "G" + "9" * 20 + "860", "N" + "9" * 20, "T10000"])
def test_a_number_wider_than_its_field_changes_nothing(f: Feeder, step: str) -> None:
    # state-model §1 (v3): unreadable, counted, and no call on a key 99999...
    f.steps("A00 H01")
    before = (f.flags(), f.floor.legacy())
    result = f.raw(f"{f.next_seq():02d}{step[0]}0815022001   1001   {step[1:]}")
    assert isinstance(result, Malformed)
    assert (f.flags(), f.floor.legacy()) == before
    assert f.floor.feedView()["unparsable_records"] == 1


def test_a_cut_record_is_counted_and_changes_nothing_else(f: Feeder) -> None:
    f.events("A")
    f.recorder.take()
    before = (f.flags(), f.floor.legacy(), f.floor.feed.records_this_connection)
    f.floor.recordCut(b"\x0202A0815032002   16")
    assert (f.flags(), f.floor.legacy(), f.floor.feed.records_this_connection) == before
    assert list(f.floor.agents) == ["1001"]
    assert f.floor.feed.records_cut == 1
    (changes,) = f.recorder.take()
    assert changes.feed == {"records_cut": 1}
    assert not (changes.agents or changes.extensions or changes.last_update or changes.steps)


def test_cut_records_are_logged_at_a_limited_rate(f: Feeder) -> None:
    with capture_log("mitelacd.floor.state") as log:
        for _ in range(8):
            f.floor.recordCut(b"\x0202A0815032002   16")
        f.clock.advance(60)
        f.floor.recordCut(b"\x0203K081510610")
    lines = [formatEvent(e) for e in log.events if "cut short" in e.get("log_format", "")]
    assert len(lines) == 6
    assert "A0815032002   16" in lines[0]
    assert "(3 more not logged since the last such line)" in lines[5]
    assert f.floor.feedView()["records_cut"] == 9


def test_records_by_code(f: Feeder) -> None:
    f.events("AJJ")
    f.keepalive()
    assert f.floor.feed.records_by_code == {"A": 1, "J": 2, "R": 1}


def test_keepalive_sets_pbx_time(f: Feeder) -> None:
    f.keepalive("20240311")
    assert f.floor.feed.pbx_time == "2024-03-11T08:15:10"
    assert f.floor.feed.last_keepalive_at == START


# All 36 examples of protocol doc §4, in order ------------------------------------

_PROTOCOL_EXAMPLES = """
74R13024320140115 12A0815022001___1001___00 13D0815022001___1001___00
14K08151061000000100000000000 15Q08151086000000100000000000 16R08151020240311
17T0816442001___1001___01 18U0816472001___1001___01 19G0816472001___1001___01860
20N0819032001___1001___01 21O0819402001___1001___01 22L0822122001___1001___00
23M0822422001___1001___00 24J0822422001___1001___01 25I0830052001___1001___02
26J0831312001___1001___02 27H0844102001___1001___03 28N0844552001___1001___03
29P0845202001___1001___03 30E0900002001___1001___05 31F0915002001___1001___00
32C0930002001___1001___00 33D0934122001___1001___00 34C1001012050__________00
35H1002302050__________01 36S1015002002___1002___01123
37K10151061000300201450000000 38Q10151086001200210300000000
39B1200002001___1001___00 40B1300002003___1003___00 41A1300002003___1004___00
99G1400015551234123456701007 00J1403205551234123456701 01A1500002004___10045__00
02K0818106100000000000 03Q0818108600000000000
"""
PROTOCOL_EXAMPLES = [b.replace("_", " ") for b in _PROTOCOL_EXAMPLES.split()]


def test_the_protocol_examples_in_order(f: Feeder) -> None:
    for body in PROTOCOL_EXAMPLES:
        assert not isinstance(f.raw(body), Malformed)
    assert f.floor.legacy()["agents"] == {
        "1001": "out", "1002": "busy", "1003": "out", "1004": "in",
        "1234567": "idle", "10045": "in",
    }  # fmt: skip
    assert f.floor.legacy()["groups"]["610"] == {
        "waiting": "000",
        "agents": "000",
        "longestwait": "0000",
    }
    assert list(f.floor.extensions) == ["2050"]
    assert f.agent("1234567").last_path == "007"
    # 74 -> 12 is a gap; 41 -> 99 is too far to size; 99 -> 00 is none.
    assert (f.floor.feed.gaps, f.floor.feed.resyncs) == (1, 1)
    assert f.floor.feed.unparsable == 0
