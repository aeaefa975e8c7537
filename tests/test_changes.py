"""Change sets: what each record tells the listeners, and the documents kept from them."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_state import MACHINE
from zope.interface import implementer

from mitelacd.floor.changes import ChangeSet, Entity, IFloorListener, PendingChanges
from mitelacd.floor.legacy import validate_legacy
from mitelacd.floor.render import iso_utc
from mitelacd.testing import START, Feeder, call_body, stats_body

#: Feed fields that every readable record moves.
RECORD_FEED_FIELDS = {"last_record_at", "records_by_code", "records_this_connection"}


@pytest.fixture
def f() -> Feeder:
    feeder = Feeder()
    feeder.connect()
    feeder.event("A", agent="1002", dn="2002")  # a bystander that must never be mentioned
    feeder.recorder.take()
    return feeder


def only(f: Feeder) -> ChangeSet:
    (changes,) = f.recorder.take()
    return changes


@pytest.mark.parametrize("before, code, expected", MACHINE, ids=[f"{b}>{c}" for b, c, _ in MACHINE])
def test_each_row_of_the_state_machine_changes_that_agent_and_nothing_else(
    f: Feeder, before: str, code: str, expected: dict[str, Any]
) -> None:
    f.steps(before)
    status_before = f.agent().status if "1001" in f.floor.agents else None
    totals_before = f.floor.totals()
    f.recorder.take()
    f.clock.advance(3)
    f.steps(code)
    changes = only(f)
    assert set(changes.agents) == {"1001"}
    entity = changes.agents["1001"]
    assert entity is not None
    assert entity.view == f.view()
    assert entity.legacy == f.agent().status == entity.view["status"]
    for key in ("status", "activity", "on_hold", "ringing", "wrap_up", "dnd", "make_busy"):
        assert entity.view[key] == expected[key]
    calls = {c["button"]: (c["kind"], c["held"]) for c in entity.view["calls"]}
    assert calls == expected["calls"]
    assert (changes.groups, changes.paths, changes.extensions) == ({}, {}, {})
    assert set(changes.feed) == RECORD_FEED_FIELDS
    assert changes.last_update == START + 3
    # Totals come when, and only when, a status count moved.
    assert (changes.totals is not None) == (f.agent().status != status_before)
    if changes.totals is not None:
        assert changes.totals == f.floor.totals() != totals_before
    assert changes.version == changes.previous + 1 == f.floor.version


def test_a_group_report_changes_that_group(f: Feeder) -> None:
    f.stats("K", "610", "0030020145")
    changes = only(f)
    assert set(changes.groups) == {"610"}
    group = changes.groups["610"]
    assert group is not None
    assert group.legacy == {"waiting": "003", "agents": "002", "longestwait": "0145"}
    assert group.view["waiting"] == 3
    assert (changes.agents, changes.paths, changes.totals) == ({}, {}, None)


def test_a_path_report_changes_that_path_and_the_totals(f: Feeder) -> None:
    f.stats("Q", "860", "0120021030")
    changes = only(f)
    assert set(changes.paths) == {"860"} and changes.groups == {}
    assert changes.totals is not None
    assert (changes.totals["waiting"], changes.totals["longest_wait_seconds"]) == (12, 630)
    f.stats("Q", "860", "0120021030")  # the same figures again: reported again, totals alike
    again = only(f)
    assert set(again.paths) == {"860"} and again.totals is None


def test_an_extension_event_changes_the_extension_only(f: Feeder) -> None:
    f.raw(call_body(f.next_seq(), "C", "2050", "", "00"))
    changes = only(f)
    assert set(changes.extensions) == {"2050"}
    assert changes.agents == {} and changes.last_update is None


def test_a_keepalive_changes_feed_fields_only(f: Feeder) -> None:
    f.clock.advance(15)
    f.keepalive("20240311")
    changes = only(f)
    assert set(changes.feed) == {
        *RECORD_FEED_FIELDS,
        "last_keepalive_at",
        "pbx_time",
    }
    assert changes.feed["pbx_time"] == "2024-03-11T08:15:10"
    assert (changes.agents, changes.groups, changes.paths, changes.last_update) == (
        {},
        {},
        {},
        None,
    )


def test_an_unreadable_record_changes_its_counter_only(f: Feeder) -> None:
    f.raw(b"%02dy0815022001   1001   00" % f.next_seq())
    assert only(f).feed == {"unparsable_records": 1}


def test_a_lost_link_unconfirms_what_it_had_confirmed(f: Feeder) -> None:
    f.stats("K", "610", "0000010000")
    f.recorder.take()
    f.floor.feedDisconnected("lost")
    changes = only(f)
    assert set(changes.agents) == {"1002"} and set(changes.groups) == {"610"}
    assert changes.feed["connected"] is False
    f.clock.advance(1)
    f.floor.feedDisconnected("lost again")
    assert set(only(f).feed) == {"disconnected_since", "disconnect_reason"}


def test_a_batch_is_one_change(f: Feeder) -> None:
    with f.floor.batch():
        f.events("ACD")
        f.event("A", agent="1003")
        f.stats("Q", "860", "0010010010")
    changes = only(f)
    assert set(changes.agents) == {"1001", "1003"} and set(changes.paths) == {"860"}
    assert changes.agents["1001"].view["dnd"] is False  # type: ignore[union-attr]


def test_carrying_a_file_is_one_change_with_everything_in_it() -> None:
    f = Feeder()
    doc = {
        "agents": {"6186": "out", "6184": "idle"},
        "groups": {"610": {"waiting": "000", "agents": "002", "longestwait": "0145"}},
        "paths": {},
        "lastUpdate": 1383899857.435,
    }
    f.floor.carry(validate_legacy(doc))
    changes = only(f)
    assert {k: e.legacy for k, e in changes.agents.items() if e} == doc["agents"]
    assert changes.last_update == 1383899857.435
    assert f.documents.legacy() == json.dumps(doc).encode()


def test_merging_change_sets_keeps_the_newest_values() -> None:
    a = ChangeSet(1, 2, 10.0, agents={"1": Entity({"v": 1}, "in")}, feed={"x": 1})
    b = ChangeSet(2, 3, 11.0, agents={"1": Entity({"v": 2}, "busy"), "2": None}, feed={"y": 2})
    merged = a.merge(b)
    assert (merged.previous, merged.version, merged.at) == (1, 3, 11.0)
    assert merged.agents == {"1": Entity({"v": 2}, "busy"), "2": None}
    assert merged.feed == {"x": 1, "y": 2}
    with pytest.raises(ValueError, match="does not follow"):
        b.merge(a)
    pending = PendingChanges()
    pending.add(a)
    pending.add(b)
    assert (pending.previous, pending.version) == (1, 3)
    # Which changed, in order; what they are now is the documents' to say.
    assert list(pending.entities["agents"]) == list(merged.agents)
    assert pending.feed == merged.feed


# Any stream: the documents kept change by change equal the documents built whole.

CODES = "ABCDEFGHIJLMNOPSTU"
AGENTS = ["1001", "1002", "10045", "1234567", "999"]

record = st.one_of(
    st.builds(
        lambda code, agent, dn, tail: ("event", code, agent, dn, tail),
        st.sampled_from(CODES),
        st.sampled_from([*AGENTS, ""]),
        st.sampled_from(["2001", "2002", "2050"]),
        st.sampled_from(["00", "01", "05", "01860", "02007"]),
    ),
    st.builds(
        lambda code, number, w, a, lw: ("stats", code, number, f"{w:03d}{a:03d}{lw:04d}0000000"),
        st.sampled_from("KQ"),
        st.sampled_from(["610", "620", "007", "860"]),
        st.integers(0, 999),
        st.integers(0, 999),
        st.integers(0, 5959),
    ),
    st.just(("keepalive",)),
    st.just(("disconnect",)),
    st.just(("connect",)),
    st.just(("garbage",)),
    st.sampled_from([("skip", 3), ("skip", 99), ("skip", 70)]),
    st.floats(0, 100).map(lambda s: ("wait", s)),
)
streams = st.lists(st.lists(record, min_size=1, max_size=6), max_size=25)


def play(f: Feeder, step: tuple[Any, ...]) -> None:
    kind = step[0]
    if kind == "event":
        _, code, agent, dn, tail = step
        f.raw(call_body(f.next_seq(), code, dn, agent, tail))
    elif kind == "stats":
        f.raw(stats_body(f.next_seq(), step[1], step[2], step[3]))
    elif kind == "keepalive":
        f.keepalive()
    elif kind == "disconnect":
        f.floor.feedDisconnected("lost")
    elif kind == "connect":
        f.connect()
    elif kind == "garbage":
        f.raw(b"\x01\x02nonsense")
    elif kind == "skip":  # record numbers lost (a gap), sent twice (99) or restarted (70)
        f.seq = (f.seq + step[1]) % 100
    else:
        f.clock.advance(step[1])


def play_all(f: Feeder, stream: list[list[tuple[Any, ...]]]) -> None:
    for read in stream:
        with f.floor.batch():
            for step in read:
                play(f, step)


def state_document(f: Feeder) -> dict[str, Any]:
    body = b"{" + b"".join(f.documents.state(b"false"))
    return json.loads(body)  # type: ignore[no-any-return]


@settings(max_examples=150, deadline=None)
@given(streams)
def test_documents_kept_from_changes_equal_documents_built_whole(
    stream: list[list[tuple[Any, ...]]],
) -> None:
    f = Feeder(first_version=5000)
    play_all(f, stream)
    assert f.documents.legacy() == json.dumps(f.floor.legacy()).encode("ascii")
    whole = f.floor.snapshot()
    whole["feed"] = {"stale": False, **whole["feed"]}
    assert state_document(f) == whole
    assert f.documents.version == f.floor.version
    # The feed's view, kept field by field, is the one computed whole.
    assert f.floor.feedView() == f.floor._compute_feed_view()
    for agent_id in f.floor.agents:
        assert json.loads(f.documents.entity("agents", agent_id) or b"") == f.view(agent_id)


@settings(max_examples=2000, deadline=None)
@given(
    st.one_of(
        st.floats(0, 4e9, allow_nan=False),
        # Just below a millisecond or a second, where rounding decides.
        st.integers(1_600_000_000, 1_900_000_000).map(lambda s: s + 0.9999995),
        st.integers(1_600_000_000, 1_900_000_000).map(lambda s: s + 0.0009995),
    )
)
def test_instants_are_written_as_datetime_writes_them(when: float) -> None:
    stamp = datetime.datetime.fromtimestamp(when, datetime.timezone.utc)
    assert iso_utc(when) == stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@implementer(IFloorListener)
class Eager:
    """Reads every entity's view as it is told of it."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def floorChanged(self, changes: Any) -> None:
        self.seen.append(
            {k: None if e is None else dict(e.view) for k, e in changes.agents.items()}
        )


@implementer(IFloorListener)
class Late:
    """Keeps every entity, and reads the views only when asked, long after."""

    def __init__(self) -> None:
        self.kept: list[dict[str, Any]] = []

    def floorChanged(self, changes: Any) -> None:
        self.kept.append(dict(changes.agents))

    @property
    def seen(self) -> list[dict[str, Any]]:
        return [
            {k: None if e is None else dict(e.view) for k, e in kept.items()} for kept in self.kept
        ]


@settings(max_examples=150, deadline=None)
@given(streams)
def test_a_view_read_late_is_the_view_of_its_change(stream: list[list[tuple[Any, ...]]]) -> None:
    """Agents' views are rendered on first read: whenever that is, each is its change's."""
    eager, late = Feeder(first_version=1), Feeder(first_version=1)
    eager_listener, late_listener = Eager(), Late()
    eager.floor.addListener(eager_listener)
    late.floor.addListener(late_listener)
    play_all(eager, stream)
    play_all(late, stream)
    late.floor.forget(late.floor.timeline.wall() + 1)  # agents leave; their views stay
    eager.floor.forget(eager.floor.timeline.wall() + 1)
    assert late_listener.seen == eager_listener.seen
