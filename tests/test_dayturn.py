"""mitelacd.floor.dayturn and FloorState.forget: the live tables forget at each day start (§4 v3)."""

from __future__ import annotations

import datetime
import json

from mitelacd.floor.dayturn import DayTurn
from mitelacd.floor.legacy import LegacyDocument
from mitelacd.testing import BoardModel, Feeder, StreamRequest, sse_events
from mitelacd.web.push import EventPush

UTC = datetime.timezone.utc
#: 2023-11-14 22:13:20 UTC: a day turn at 00:00 UTC comes 6,400 s later.
TO_MIDNIGHT = 6400.0


def turn(f: Feeder, starts: datetime.time = datetime.time(0)) -> DayTurn:
    service = DayTurn(f.floor, f.clock, starts, UTC)
    service.startService()
    return service


def test_agents_out_since_before_the_day_leave_at_its_start() -> None:
    f = Feeder()
    f.connect()
    f.event("A", agent="1001")
    f.event("B", agent="1001")  # out since yesterday: forgotten
    f.event("A", agent="1002")  # logged in: stays
    f.event("A", agent="1003")
    f.event("B", agent="1003")
    service = turn(f)
    try:
        f.clock.advance(TO_MIDNIGHT - 10)
        f.event("A", agent="1003")  # logged in across midnight
        f.clock.advance(60)
        f.event("B", agent="1003")  # out, but only since today: stays
        f.event("A", agent="1004")
        f.event("B", agent="1004")
        assert sorted(f.floor.agents) == ["1002", "1003", "1004"]
        assert f.floor.feed.agents_forgotten == 1
        gone = [c for c in f.recorder.changes if "1001" in c.agents]
        assert gone[-1].agents["1001"] is None
        assert json.loads(f.documents.legacy())["agents"] == {
            "1002": "in",
            "1003": "out",
            "1004": "out",
        }
        assert f.floor.totals()["agents"]["out"] == 2
        # The next day forgets those out since before it.
        f.clock.advance(86400)
        assert sorted(f.floor.agents) == ["1002"]
        assert f.floor.feed.agents_forgotten == 3
        assert f.floor.feedView()["agents_forgotten"] == 3
    finally:
        service.stopService()


def test_silent_extensions_leave_and_carried_out_agents_too() -> None:
    f = Feeder()
    f.floor.carry(LegacyDocument({"7001": "out", "7002": "idle"}, {}, {}, f.clock.seconds()), None)
    f.connect()
    f.event("C", agent="", dn="3001", tail="")
    service = turn(f)
    try:
        f.clock.advance(TO_MIDNIGHT + 1)
        assert "3001" not in f.floor.extensions
        assert f.floor.feed.extensions_forgotten == 1
        # A carried agent shown as out is forgotten; one shown as logged in is not.
        assert sorted(f.floor.agents) == ["7002"]
    finally:
        service.stopService()


def test_a_board_drops_the_tiles_of_forgotten_agents() -> None:
    f = Feeder(first_version=100)
    f.connect()
    f.event("A", agent="1001")
    f.event("B", agent="1001")
    f.event("A", agent="1002")
    push = EventPush(f.floor, f.documents, f.clock, push_interval=0)
    push.start()
    request = StreamRequest()
    push.subscribe(request, full=False, last_event_id=None)
    service = turn(f)
    try:
        model = BoardModel()
        model.apply_all(sse_events(request.take()))
        assert sorted(model.entities["agents"]) == ["1001", "1002"]
        f.clock.advance(TO_MIDNIGHT + 1)
        model.apply_all(sse_events(request.take()))
        assert sorted(model.entities["agents"]) == ["1002"]
    finally:
        service.stopService()
        push.stop()


def test_a_full_table_refuses_no_real_agent_after_a_day_turn() -> None:
    f = Feeder()
    f.floor.max_agents = 5
    f.connect()
    for n in range(5):
        f.event("A", agent=f"10{n:02d}")
        f.event("B", agent=f"10{n:02d}")
    f.event("A", agent="2000")
    assert "2000" not in f.floor.agents and f.floor.feed.agents_refused == 1
    service = turn(f)
    try:
        f.clock.advance(TO_MIDNIGHT + 1)
        f.event("A", agent="2000")
        assert f.agent("2000").logged_in
    finally:
        service.stopService()


def test_the_day_turn_follows_day_starts() -> None:
    f = Feeder()
    f.connect()
    f.event("A", agent="1001")
    f.event("B", agent="1001")
    # 06:00 UTC is 6 h after midnight.
    service = turn(f, datetime.time(6))
    try:
        f.clock.advance(TO_MIDNIGHT + 1)
        assert "1001" in f.floor.agents
        f.clock.advance(6 * 3600)
        assert "1001" not in f.floor.agents
    finally:
        service.stopService()
