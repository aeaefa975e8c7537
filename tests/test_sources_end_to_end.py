"""Two simulated controllers read as one floor by one daemon: state-model.md §9 end to end.

``twistd mitelacd-sim --controllers 2`` plays a site whose agents are split
between two controllers, with a failover of ten agents from the first to
the second (eight within the window, two late). ``twistd mitelacd`` reads
both with ``--source a=rte://... --source b=rte://...``; its data file must
settle on the merged floor the simulator's reference makes by hand
(``FloorScript.expected_merged_legacy``), its API must tell each agent's
source and failover, and its health, feed and metrics each source apart.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_end_to_end import poll, poll_file

from mitelacd import testing
from mitelacd.sim.controllers import FailoverPlan
from mitelacd.sim.service import FloorScript

pytestmark = pytest.mark.processes

SEED, EVENTS, SPEED = 5, 250, 40.0
PLAN = FailoverPlan(at=150, agents=10, late=2)


def merged_reference() -> tuple[dict[str, Any], FloorScript]:
    """The merged floor once the day is frozen and every failover window has passed."""
    script = FloorScript(seed=SEED, controllers=2, events=EVENTS, failover=PLAN)
    moments = script.site_timeline()
    while not script.frozen or script.now < PLAN.at + PLAN.late_delay + 60:
        next(moments)
    return script.expected_merged_legacy(), script


def start_site(
    processes: Callable[..., testing.Twistd], folder: Path, clients: int, speed: float = SPEED
) -> tuple[testing.Twistd, list[str]]:
    """The simulated site of :data:`PLAN`, its day waiting for ``clients`` on each controller.

    The simulator, and each controller's ACD port.
    """
    sim = processes(
        "mitelacd-sim", "--controllers", "2", "--port", "0", "--smdr-port", "none",
        "--seed", str(SEED), "--events", str(EVENTS), "--speed", str(speed),
        "--failover-at", str(int(PLAN.at)), "--failover-agents", str(PLAN.agents),
        "--failover-late", str(PLAN.late), "--wait-for-clients", str(clients), cwd=folder,
    )  # fmt: skip
    ports = [
        sim.wait_for(rf"simulated ICP feed on \S+ port (\d+) \(controller {c} of 2").group(1)
        for c in (1, 2)
    ]
    return sim, ports


def get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def text(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
        return str(answer.read().decode())


def test_two_controllers_are_one_floor_as_the_merge_by_hand_makes_it(
    tmp_path: Path, processes: Callable[..., testing.Twistd]
) -> None:
    expected, script = merged_reference()
    moves = script.moves()
    assert [m.within() for m in moves].count(True) == 8 and len(moves) == 10
    sim, ports = start_site(processes, tmp_path, clients=1)
    data = tmp_path / "mitel_data.json"
    daemon = processes(
        "mitelacd", "--source", f"a=rte://127.0.0.1:{ports[0]}",
        "--source", f"b=rte://127.0.0.1:{ports[1]}", "--file", str(data),
        "--http", "tcp:0:interface=127.0.0.1", "--write-interval", "0.2",
        # The window in the simulator's seconds: 30 of them.
        "--failover-seconds", str(30 / SPEED), "--history", "none", cwd=tmp_path,
    )  # fmt: skip
    port = daemon.http_port()

    def settled(doc: dict[str, Any]) -> bool:
        return all(doc[k] == expected[k] for k in ("agents", "groups", "paths"))

    doc = poll_file(data, settled)
    assert doc["agents"] == expected["agents"]
    assert doc["groups"] == expected["groups"]
    assert doc["paths"] == expected["paths"]
    assert set(doc) == {"agents", "groups", "paths", "lastUpdate"}
    # Every queue is on both controllers, merged into one.
    assert len(expected["paths"]) == 3 and len(expected["groups"]) == 4

    _, state = get(port, "/api/v1/state")
    agents = {a["id"]: a for a in state["agents"]}
    for move in moves:
        agent = agents[move.agent]
        failover = agent["failover"]
        if move.within():
            assert agent["source"] == "b", agent
            assert failover is not None and (failover["from"], failover["to"]) == ("a", "b")
        else:  # logged out, then in again: no failover
            assert agent["source"] == "b" and failover is None, agent
    for path in state["paths"]:
        assert sorted(path["sources"]) == ["a", "b"]
        parts = path["sources"].values()
        assert path["waiting"] == min(999, sum(p["waiting"] for p in parts))

    health = poll(lambda: get(port, "/healthz")[1], lambda h: h["status"] == "ok")
    assert health["status"] == "ok"
    assert sorted(health["sources"]) == ["a", "b"]
    feed = get(port, "/api/v1/feed")[1]["feed"]
    assert sorted(feed["sources"]) == ["a", "b"]
    assert all(feed["sources"][s]["connected"] for s in ("a", "b"))
    assert feed["stale_sources"] == []
    assert feed["failover_seconds"] == 30 / SPEED
    metrics = text(port, "/metrics")
    assert 'mitelacd_feed_connected{source="a"} 1.0' in metrics
    assert 'mitelacd_feed_connected{source="b"} 1.0' in metrics

    # The site goes away: /healthz names each source that is not live.
    sim.stop_cleanly()
    health = poll(lambda: get(port, "/healthz")[1], lambda h: h["status"] != "ok")
    assert health["reason"] == "source not live"
    assert "source a" in health["detail"] and "source b" in health["detail"]
    daemon.stop_cleanly()
