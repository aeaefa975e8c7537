"""FloorState against state-model.md §2-§5, fed through the real parser."""

from __future__ import annotations

import json

import pytest
from twisted.internet.task import Clock

from mitelacd import testing
from mitelacd.legacy import LegacyFileError, validate_legacy
from mitelacd.records import Malformed
from mitelacd.state import Agent, FloorState
from mitelacd.testing import START

FLAGS = ("logged_in", "dnd", "make_busy", "wrap_up", "activity", "on_hold", "fresh_login")


class Feeder(testing.Feeder):
    def flags(self, agent_id: str = "1001") -> dict:
        a = self.agent(agent_id)
        return {f: getattr(a, f) for f in FLAGS}


@pytest.fixture
def f() -> Feeder:
    return Feeder()


def state(**changes) -> dict:
    """Flags of a logged-in agent with nothing going on, plus changes."""
    base = dict(logged_in=True, dnd=False, make_busy=False, wrap_up=False,
                activity="none", on_hold=False, fresh_login=False)  # fmt: skip
    base.update(changes)
    return base


# §3, row by row: (events before, the event under test, flags afterwards).
# Earlier events put other flags in place so that each row also shows what
# the code leaves alone.
MACHINE = [
    ("CELHN", "A", state(fresh_login=True)),
    ("ACELHN", "B", state(logged_in=False)),
    ("AEL", "C", state(dnd=True, make_busy=True, wrap_up=True)),
    ("CE", "D", state(make_busy=True)),
    ("CL", "E", state(dnd=True, make_busy=True, wrap_up=True)),
    ("CE", "F", state(dnd=True)),
    ("AC", "T", state(dnd=True, activity="ringing")),
    ("AT", "U", state()),
    ("TG", "U", state(activity="acd_call")),
    ("HN", "U", state(activity="personal_call", on_hold=True)),
    ("", "U", state()),
    ("HN", "G", state(activity="acd_call")),
    ("HN", "S", state(activity="acd_call")),
    ("GN", "H", state(activity="personal_call")),
    ("GN", "I", state(activity="outgoing_call")),
    ("A", "N", state(activity="call", on_hold=True)),
    ("G", "N", state(activity="acd_call", on_hold=True)),
    ("A", "O", state(activity="call")),
    ("GN", "O", state(activity="acd_call")),
    ("HN", "O", state(activity="personal_call")),
    ("CGN", "P", state(dnd=True)),
    ("EIN", "J", state(make_busy=True)),
    ("CGN", "L", state(dnd=True, wrap_up=True)),
    ("CL", "M", state(dnd=True)),
    ("LG", "M", state(activity="acd_call")),
]


@pytest.mark.parametrize("before, code, expected", MACHINE, ids=[f"{b}>{c}" for b, c, _ in MACHINE])
def test_state_machine_row(f, before, code, expected):
    f.events(before)
    f.event(code)
    assert f.flags() == expected


@pytest.mark.parametrize("code", "BCDEFGHIJLMNOPSTU")
def test_every_event_but_a_clears_fresh_login(f, code):
    f.event("A")
    assert f.agent().fresh_login
    f.event(code)
    assert not f.agent().fresh_login


def test_g_and_s_remember_the_path(f):
    f.event("G", tail="01860")
    assert (f.agent().last_path, f.view()["last_path"]) == ("860", "860")
    f.event("S", tail="02007")
    assert f.agent().last_path == "007"


def test_e_remembers_the_reason(f):
    f.event("E", tail="05")
    assert (f.agent().make_busy_reason, f.view()["make_busy_reason"]) == (5, 5)


@pytest.mark.parametrize("first", "CDEFGHIJLMNOPSTU")
def test_joining_mid_day_first_event_other_than_a_means_logged_in(f, first):
    f.event(first)
    assert f.agent().logged_in and not f.agent().fresh_login
    assert f.agent().status != "out"


def test_first_event_b_for_unknown_agent_is_out(f):
    f.event("B")
    assert not f.agent().logged_in
    assert f.floor.legacy()["agents"] == {"1001": "out"}


@pytest.mark.parametrize(
    "first, status", [("G", "busy"), ("D", "idle"), ("J", "idle"), ("M", "idle")]
)
def test_joining_mid_day_status(f, first, status):
    f.event(first)
    assert f.floor.legacy()["agents"]["1001"] == status


def test_displacement_b_then_a_on_the_same_dn(f):
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
def test_legacy_status(f, codes, status):
    f.events(codes)
    assert f.agent().status == status
    assert f.floor.legacy()["agents"] == {"1001": status}
    assert f.view()["status"] == status


@pytest.mark.parametrize(
    "flags, status",
    [
        (dict(logged_in=False, dnd=True, wrap_up=True, fresh_login=True), "out"),
        (dict(activity="call", wrap_up=True, fresh_login=True), "busy"),
        (dict(on_hold=True, wrap_up=True, fresh_login=True), "busy"),
        (dict(dnd=True, wrap_up=True, fresh_login=True), "busy"),
        (dict(make_busy=True, wrap_up=True, fresh_login=True), "busy"),
        (dict(wrap_up=True, fresh_login=True), "timer"),
        (dict(fresh_login=True), "in"),
        (dict(), "idle"),
    ],
)
def test_legacy_order_on_flags(flags, status):
    agent = Agent("1001", **{"logged_in": True, **flags})
    assert agent.status == status


def test_since_is_when_the_status_last_changed(f):
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


def test_extension_event_changes_no_agent_and_not_last_update(f):
    f.event("A", agent="1001", dn="2050")
    before = (f.flags(), f.floor.last_update)
    f.clock.advance(10)
    result = f.raw("34C1001012050          00")  # protocol doc §4 #24
    assert result.is_extension_event
    f.event("H", agent="", dn="2050")  # #25 style
    assert list(f.floor.agents) == ["1001"]
    assert (f.flags(), f.floor.last_update) == before
    ext = f.floor.extensions["2050"]
    assert (ext.dn, ext.last_event, ext.last_event_at) == ("2050", "H", START + 10)
    assert [e["dn"] for e in f.floor.snapshot()["extensions"]] == ["2050"]


def test_stripped_short_record_is_an_extension_event(f):
    f.raw("34C1001012050")
    assert f.floor.agents == {} and "2050" in f.floor.extensions


# lastUpdate ---------------------------------------------------------------------


def test_last_update_moves_on_agent_events_and_stats_only(f):
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


def test_groups_and_paths_exactly_as_sent(f):
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


def test_a_new_report_replaces_the_old_figures(f):
    f.stats("K", "610", "0030020145")
    f.stats("K", "610", "0000020000")
    assert f.floor.legacy()["groups"]["610"]["waiting"] == "000"


def test_legacy_document_has_exactly_four_keys(f):
    f.event("A")
    f.stats("K", "610", "0000010000")
    legacy = f.floor.legacy()
    assert set(legacy) == {"agents", "groups", "paths", "lastUpdate"}
    assert json.loads(f.floor.legacyJSON()) == legacy
    f.event("C")
    assert json.loads(f.floor.legacyJSON())["agents"] == {"1001": "busy"}


def test_legacy_document_of_an_empty_floor(f):
    doc = json.loads(FloorState(Clock()).legacyJSON())
    assert set(doc) == {"agents", "groups", "paths", "lastUpdate"}
    assert (doc["agents"], doc["groups"], doc["paths"]) == ({}, {}, {})


# carry() --------------------------------------------------------------------------

CARRIED = {
    "agents": {"6186": "out", "6184": "idle", "6183": "busy", "6185": "timer", "6187": "in"},
    "groups": {"610": {"waiting": "000", "agents": "002", "longestwait": "0145"}},
    "paths": {"860": {"waiting": "003", "agents": "002", "longestwait": "0210"}},
    "lastUpdate": 1383899857.435,
}


def test_carry_shows_carried_statuses_until_a_live_event(f):
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


def test_carried_out_agent_returns_on_a_live_event(f):
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
def test_invalid_documents_are_refused(doc):
    with pytest.raises(LegacyFileError):
        validate_legacy(doc)


# Feed ------------------------------------------------------------------------------


def test_record_number_gaps(f):
    f.seq = 98
    f.events("AJJJ")  # 98 99 00 01: the wrap is no gap
    f.keepalive()  # 02: R shares the counter
    assert f.floor.feed.gaps == 0
    f.seq = 6
    f.event("C")  # 02 -> 06: 3 lost
    assert (f.floor.feed.gaps, f.floor.feed.missed_records) == (1, 3)
    f.event("D")  # 07 follows 06
    assert f.floor.feed.gaps == 1
    assert f.floor.snapshot()["feed"]["sequence_gaps"] == 1


def test_no_gap_across_a_reconnect(f):
    f.floor.feedConnected("pbx", 15373)
    f.event("A")
    f.floor.feedDisconnected("lost")
    f.floor.feedConnected("pbx", 15373)
    f.seq = 50
    f.event("J")
    assert f.floor.feed.gaps == 0


def test_feed_disconnected_keeps_status_but_unconfirms(f):
    f.floor.feedConnected("pbx", 15373)
    f.events("AC")
    f.stats("K", "610", "0000010000")
    assert f.view()["confirmed"] and f.floor.snapshot()["groups"][0]["confirmed"]
    f.floor.feedDisconnected("connection lost")
    assert f.view()["confirmed"] is False
    assert f.floor.snapshot()["groups"][0]["confirmed"] is False
    assert f.agent().status == "busy" and f.flags() == state(dnd=True)
    assert f.floor.feed.connected is False
    assert f.floor.legacy()["agents"] == {"1001": "busy"}


def test_unparsable_records_are_counted_and_change_nothing(f):
    f.events("AC")
    before = (f.flags(), f.floor.legacy())
    bad = [b"12y0815022001   1001   00", b"12B25619920011001", b"\x80\x81", b"12"]
    for raw in bad:
        f.clock.advance(1)
        assert isinstance(f.raw(raw), Malformed)
    assert f.floor.feed.unparsable == len(bad)
    assert (f.flags(), f.floor.legacy()) == before
    assert f.floor.snapshot()["feed"]["unparsable_records"] == len(bad)


def test_records_by_code(f):
    f.events("AJJ")
    f.keepalive()
    assert f.floor.feed.records_by_code == {"A": 1, "J": 2, "R": 1}


def test_keepalive_sets_pbx_time(f):
    f.keepalive("20240311")
    assert f.floor.feed.pbx_time == "2024-03-11T08:15:10"
    assert f.floor.feed.last_keepalive_at == START


# All 36 examples of protocol doc §4, in order ------------------------------------

PROTOCOL_EXAMPLES = """
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
PROTOCOL_EXAMPLES = [b.replace("_", " ") for b in PROTOCOL_EXAMPLES.split()]


def test_the_protocol_examples_in_order(f):
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
    assert f.floor.feed.gaps == 2  # 74 -> 12 and 41 -> 99; 99 -> 00 is none
    assert f.floor.feed.unparsable == 0
