"""The push feed: snapshots, deltas, resuming, clients that stop reading, staleness."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_changes import play_all, streams

from mitelacd.testing import BoardModel, Feeder, ResyncNeeded, StreamRequest, sse_events
from mitelacd.web.push import DeltaRing, EventPush, parse_event_id


class Push:
    """A floor, its documents and the push feed, on a fake clock."""

    def __init__(self, interval: float = 0.0, ring: DeltaRing | None = None) -> None:
        self.f = Feeder(first_version=1_000_000)
        self.f.connect()
        self.push = EventPush(
            self.f.floor, self.f.documents, self.f.clock, push_interval=interval, ring=ring
        )
        self.push.start()

    def client(self, **kwargs: Any) -> StreamRequest:
        request = StreamRequest(**kwargs)
        self.push.subscribe(
            request, full=kwargs.get("full", False), last_event_id=kwargs.get("last_event_id")
        )
        return request

    def state(self) -> dict[str, Any]:
        """The /api/v1/state document now, less its time stamp."""
        docs = self.f.documents
        body = b'{"stale":%s,' % (b"true" if self.push.stale else b"false")
        doc = json.loads(body + b"".join(docs.state(b"true" if self.push.stale else b"false")))
        return doc  # type: ignore[no-any-return]


def shown(model: BoardModel) -> dict[str, Any]:
    doc = model.document()
    doc.pop("generated_at")
    return doc


@pytest.fixture
def p() -> Push:
    return Push()


def test_a_client_gets_a_snapshot_then_deltas_of_what_changed(p: Push) -> None:
    p.f.event("A")
    p.f.event("A", agent="1002", dn="2002")
    request = p.client()
    data = request.take()
    assert data.startswith(b"retry: 2000\n\n")
    ((name, event_id, snapshot),) = sse_events(data)
    assert name == "snapshot" and event_id == snapshot["version"] == p.f.floor.version
    assert [a["id"] for a in snapshot["agents"]] == ["1001", "1002"]
    p.f.clock.advance(1)
    p.f.event("C", agent="1002", dn="2002")
    ((name, delta_id, delta),) = sse_events(request.take())
    assert name == "delta"
    assert delta_id == delta["version"] == p.f.floor.version > event_id
    assert delta["from"] == event_id
    assert set(delta) == {
        "from", "version", "generated_at", "stale", "agents", "feed", "totals", "last_update"
    }  # fmt: skip
    assert list(delta["agents"]) == ["1002"]
    assert delta["agents"]["1002"]["dnd"] is True
    assert delta["totals"]["agents"]["busy"] == 1
    assert set(delta["feed"]) == {"last_record_at", "records_by_code", "records_this_connection"}


def test_deltas_are_paced_and_gathered() -> None:
    p = Push(interval=0.5)
    request = p.client()
    request.take()
    for n in range(10):
        p.f.event("A", agent=f"20{n:02d}", dn=f"30{n:02d}")
        p.f.clock.advance(0.1)
    p.f.clock.advance(1)
    deltas = [e for e in sse_events(request.take()) if e[0] == "delta"]
    assert 2 <= len(deltas) <= 3  # one at once, then at most one per half second
    assert sum(len(d["agents"]) for _, _, d in deltas) == 10
    assert all(b["from"] == a["version"] for (_, _, a), (_, _, b) in zip(deltas, deltas[1:]))


@settings(max_examples=120, deadline=None)
@given(streams, st.sampled_from([0.0, 0.002, 0.5]))
def test_every_delta_applied_to_the_first_snapshot_gives_the_final_state(
    stream: list[list[tuple[Any, ...]]], interval: float
) -> None:
    p = Push(interval)
    request = p.client()
    model = BoardModel()
    for read in stream:
        play_all(p.f, [read])
        p.f.clock.advance(interval)
        model.apply_all(sse_events(request.take()))
    p.f.clock.advance(1)
    model.apply_all(sse_events(request.take()))
    assert model.snapshots == 1
    assert shown(model) == p.state()
    assert model.last_id == p.f.floor.version or model.deltas == 0


@settings(max_examples=120, deadline=None)
@given(streams, st.integers(0, 30), st.integers(0, 30), st.sampled_from([4096, 3]))
def test_a_client_resuming_with_last_event_id_ends_like_one_that_stayed(
    stream: list[list[tuple[Any, ...]]], leave: int, back: int, ring_size: int
) -> None:
    p = Push(ring=DeltaRing(1_000_000, max_events=ring_size))
    stayed, stayed_model = p.client(), BoardModel()
    leaving: StreamRequest | None = p.client()
    leaving_model = BoardModel()
    for n, read in enumerate(stream):
        if n == leave and leaving is not None:
            leaving_model.apply_all(sse_events(leaving.take()))
            leaving.processingFailed(Exception("gone"))
            leaving = None
        if n == leave + back and leaving is None:
            leaving = p.client(last_event_id=leaving_model.last_id)
        play_all(p.f, [read])
        stayed_model.apply_all(sse_events(stayed.take()))
    if leaving is None:
        leaving = p.client(last_event_id=leaving_model.last_id)
    leaving_model.apply_all(sse_events(leaving.take()))
    stayed_model.apply_all(sse_events(stayed.take()))
    assert shown(leaving_model) == shown(stayed_model) == p.state()
    assert stayed_model.snapshots == 1


def test_a_resume_within_the_ring_sends_only_what_was_missed(p: Push) -> None:
    first = p.client()
    model = BoardModel()
    model.apply_all(sse_events(first.take()))
    first.processingFailed(Exception("gone"))
    p.f.events("ACD")  # with nobody listening: gathered into one delta
    again = p.client(last_event_id=model.last_id)
    events = sse_events(again.take())
    assert [name for name, _, _ in events] == ["delta", "stale"]
    assert events[0][2]["from"] == model.last_id
    model.apply_all(events)
    assert shown(model) == p.state()


@pytest.mark.parametrize("last", [None, 1, 999_999_999_999, -4])
def test_a_resume_from_unknown_or_future_ids_gets_a_snapshot(p: Push, last: int | None) -> None:
    p.f.event("A")
    request = p.client(last_event_id=last if last is None or last >= 0 else None)
    assert [name for name, _, _ in sse_events(request.take())] == ["snapshot"]


def test_last_event_id_is_read_leniently() -> None:
    assert parse_event_id(b"1795354443310489") == 1795354443310489
    assert parse_event_id(b" 12 ") == 12
    for junk in (None, b"", b"abc", b"-3", b"\xff", b"1.5"):
        assert parse_event_id(junk) is None


def test_a_client_that_stops_reading_holds_at_most_one_pending_snapshot() -> None:
    p = Push(ring=DeltaRing(1_000_000, max_events=5))
    request = p.client()
    subscriber = request.producer
    model = BoardModel()
    model.apply_all(sse_events(request.take()))
    subscriber.pauseProducing()
    for n in range(200):
        p.f.event("A", agent=f"5{n:03d}", dn=f"40{n:02d}")
        p.f.clock.advance(0.01)
        assert request.written == []  # nothing is written to it...
        assert subscriber.pending_bytes == 0  # ...and nothing queues up for it
    assert len(p.push.ring) == 5
    subscriber.resumeProducing()
    events = sse_events(request.take())
    assert [name for name, _, _ in events] == ["snapshot"]  # the ring lost track: one snapshot
    model.apply_all(events)
    assert shown(model) == p.state()
    p.f.event("J", agent="5000", dn="4000")
    assert [name for name, _, _ in sse_events(request.take())] == ["delta"]


def test_a_client_that_pauses_briefly_catches_up_from_the_ring(p: Push) -> None:
    request = p.client()
    model = BoardModel()
    model.apply_all(sse_events(request.take()))
    request.producer.pauseProducing()
    p.f.events("ACDJ")
    assert request.written == []
    request.producer.resumeProducing()
    events = sse_events(request.take())
    assert [name for name, _, _ in events] == ["delta"] * 4
    model.apply_all(events)
    assert shown(model) == p.state()


def test_a_large_snapshot_is_written_slice_by_slice_as_the_client_drains() -> None:
    p = Push()
    with p.f.floor.batch():
        for n in range(600):
            p.f.event("A", agent=f"{10000 + n}", dn=f"{20000 + n}")
    request = StreamRequest()

    class Pausing:
        """Pause after each write, as a socket with a full buffer does."""

        def __init__(self) -> None:
            self.writes = 0

        def __call__(self, data: bytes) -> None:
            self.writes += 1
            request.written.append(data)
            request.producer.pauseProducing()

    writer = Pausing()
    request.write = writer  # type: ignore[method-assign]
    p.push.subscribe(request)
    subscriber = request.producer
    p.f.event("J", agent="10001", dn="20001")  # a change while the snapshot is still going
    while subscriber.pending_bytes or subscriber.paused:
        assert all(len(chunk) <= 64 * 1024 for chunk in request.written)
        subscriber.resumeProducing()
    model = BoardModel()
    model.apply_all(sse_events(b"".join(request.written)))
    assert writer.writes > 3
    assert shown(model) == p.state()


def test_a_thousand_clients_coming_and_going_leave_nothing_behind(p: Push) -> None:
    listeners = len(p.f.documents._listeners)
    for n in range(1000):
        request = p.client(last_event_id=p.f.floor.version if n % 2 else None)
        if n % 3 == 0:
            request.producer.pauseProducing()
        p.f.event("J" if n % 2 else "A")
        request.processingFailed(Exception("gone"))
    assert p.push.subscribers == set()
    assert len(p.f.documents._listeners) == listeners
    p.f.event("A")  # nothing is written to any of them
    p.f.clock.advance(60)


def test_a_stale_feed_is_pushed_without_a_change(p: Push) -> None:
    request = p.client()
    request.take()
    p.f.clock.advance(30)
    assert sse_events(request.take()) == []  # heartbeats only
    p.f.clock.advance(31)  # the watch looks once a second
    ((name, event_id, payload),) = sse_events(request.take())
    assert (name, event_id, payload["stale"]) == ("stale", None, True)
    p.f.event("A")  # a record: fresh again, and the delta says so
    ((name, _, delta),) = sse_events(request.take())
    assert (name, delta["stale"]) == ("delta", False)
    p.f.clock.advance(2)
    assert sse_events(request.take()) == []  # no stale event for what the delta said


def test_a_client_that_stops_reading_for_long_is_disconnected(p: Push) -> None:
    reading, stuck = p.client(), p.client()
    stuck.producer.pauseProducing()
    lost = []
    for seconds in (30, 15):
        p.f.clock.advance(seconds)
        lost.append(stuck.lost)
    assert lost == [False, True]  # a pause of two heartbeats is tolerated, not three
    assert p.push.subscribers == {reading.producer}
    assert reading.written[-1] == b": heartbeat\n\n"


def test_whole_states_for_clients_that_ask_for_them() -> None:
    p = Push(interval=0.002)
    request = p.client(full=True)
    ((name, _, first),) = sse_events(request.take())
    assert name == "state"
    for n in range(10):
        p.f.event("A", agent=f"20{n:02d}", dn=f"30{n:02d}")
        p.f.clock.advance(0.1)
    p.f.clock.advance(1)
    states = sse_events(request.take())
    assert {name for name, _, _ in states} == {"state"}
    assert 2 <= len(states) <= 3  # at most two a second
    assert len(states[-1][2]["agents"]) == 10
    assert states[-1][1] == p.f.floor.version


def test_the_ring_is_bounded_in_bytes_too() -> None:
    ring = DeltaRing(0, max_events=1000, max_bytes=1000)
    p = Push(ring=ring)
    p.client()
    for n in range(100):
        p.f.event("A", agent=f"7{n:03d}")
    assert ring.size <= 1000 and 0 < len(ring) < 100


def test_a_delta_that_does_not_follow_makes_a_client_resynchronise() -> None:
    model = BoardModel()
    model.apply("snapshot", 5, {"version": 5, "feed": {}, "agents": [], "groups": [],
                                "paths": [], "extensions": []})  # fmt: skip
    model.apply("delta", 7, {"from": 5, "version": 7, "agents": {"1": {"id": "1"}}})
    with pytest.raises(ResyncNeeded):
        model.apply("delta", 9, {"from": 8, "version": 9})
