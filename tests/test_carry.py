"""Carried agents let go after --unconfirmed-max-age (docs/state-model.md §4)."""

from __future__ import annotations

from mitelacd.floor.carry import CarriedAgentsExpiry
from mitelacd.floor.legacy import validate_legacy
from mitelacd.testing import Feeder

DOC = {
    "agents": {"1001": "idle", "1002": "busy", "1003": "out"},
    "groups": {},
    "paths": {},
    "lastUpdate": 1_700_000_000.0,
}


def test_carried_agents_go_after_the_limit_unless_named() -> None:
    f = Feeder()
    f.floor.carry(validate_legacy(DOC))
    expiry = CarriedAgentsExpiry(f.floor, f.clock, 600)
    expiry.startService()
    f.clock.advance(300)
    f.event("G", agent="1002")  # named: confirmed and kept
    f.clock.advance(299)
    assert f.floor.legacy()["agents"] == {"1001": "idle", "1002": "busy", "1003": "out"}
    f.clock.advance(1)
    assert f.floor.legacy()["agents"] == {"1001": "out", "1002": "busy", "1003": "out"}
    assert f.floor.feedView()["agents_let_go"] == 2
    assert f.clock.getDelayedCalls() == []
    expiry.stopService()


def test_nothing_is_scheduled_without_carried_agents_or_after_stop() -> None:
    f = Feeder()
    expiry = CarriedAgentsExpiry(f.floor, f.clock, 600)
    expiry.startService()
    assert f.clock.getDelayedCalls() == []
    f.floor.carry(validate_legacy(DOC))
    late = CarriedAgentsExpiry(f.floor, f.clock, 600)
    late.startService()
    late.stopService()
    f.clock.advance(601)
    assert f.floor.carried_agents == 3
