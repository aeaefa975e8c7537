"""Real processes on loopback: the simulator's own count of its day equals the daemon's reports."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from test_end_to_end import daemon_argv, expected_after, poll, poll_file

from mitelacd.sim.service import FloorScript
from mitelacd.testing import Twistd

COUNTS = ("acd_calls", "personal_calls", "outgoing_calls", "wrap_ups")


def fetch(port: int, path: str, accept: str | None = None) -> tuple[str, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if accept is not None:
        request.add_header("Accept", accept)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.headers.get("content-type", ""), response.read()


def fetch_json(port: int, path: str) -> dict[str, Any]:
    _, body = fetch(port, path)
    doc: dict[str, Any] = json.loads(body)
    return doc


def per_agent(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for row in rows:
        mine = out.setdefault(row["id"], dict.fromkeys(COUNTS, 0))
        for name in COUNTS:
            mine[name] += int(row[name])
    return {agent: counts for agent, counts in out.items() if any(counts.values())}


def test_the_simulators_day_equals_the_reports(
    tmp_path: Path, processes: Callable[..., Twistd]
) -> None:
    seed, events = 11, 1500
    sim_argv = ["--port", "0", "--seed", str(seed), "--events", str(events), "--speed", "400"]
    sim = processes("mitelacd-sim", *sim_argv, cwd=tmp_path)
    port = sim.wait_for(r"simulated ICP feed on \S+ port (\d+)").group(1)
    data = tmp_path / "mitel_data.json"
    daemon = processes(*daemon_argv(port, data, "--write-interval", "0.2"), cwd=tmp_path)
    script = FloorScript(seed=seed, events=events)
    expected = expected_after(script)
    truth = {a: c for a, c in script.day_counts().items() if any(c.values())}
    assert sum(c["acd_calls"] for c in truth.values()) >= 50  # the day did take calls
    poll_file(data, lambda doc: doc["agents"] == expected["agents"])
    http = daemon.http_port()

    # Live: today's figures.
    today = poll(
        lambda: fetch_json(http, "/api/v1/reports/today/agents"),
        lambda doc: per_agent(doc["agents"]) == truth,
    )
    assert per_agent(today["agents"]) == truth
    paths = fetch_json(http, "/api/v1/reports/today/paths")["paths"]
    assert {p["id"]: p["acd_calls"] for p in paths if p["acd_calls"]} == (script.answered_by_path())

    # From the history with the interval under way, as JSON and as CSV.
    report = fetch_json(http, "/api/v1/reports?by=agent&interval=15m")
    assert per_agent(report["agents"]) == truth
    kind, body = fetch(http, "/api/v1/reports?by=agent&interval=day", accept="text/csv")
    assert kind.startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(body.decode("utf-8"))))
    assert per_agent(table) == truth

    # The history's health is in the feed, and the figures' counters in /metrics.
    history_health = fetch_json(http, "/api/v1/feed")["feed"]["history"]
    assert history_health["ok"] is True and history_health["dropped_rows"] == 0
    assert history_health["written_rows"] > 0
    _, metrics = fetch(http, "/metrics")
    counted = {
        line.split('"')[1]: float(line.rsplit(" ", 1)[1])
        for line in metrics.decode().splitlines()
        if line.startswith("mitelacd_path_acd_calls_total{")
    }
    # A counter grows when a call is answered: every call of the day is in it.
    assert {p: int(n) for p, n in counted.items() if n} == script.answered_by_path()

    # Stopped: every interval is in the database, and says the same.
    daemon.stop_cleanly()
    history = tmp_path / "mitelacd-history.db"
    with sqlite3.connect(history) as db:
        stored = db.execute(
            "select id, sum(acd_calls), sum(personal_calls), sum(outgoing_calls), sum(wrap_ups)"
            " from agent_intervals group by id"
        ).fetchall()
    kept = {row[0]: dict(zip(COUNTS, row[1:])) for row in stored if any(row[1:])}
    assert kept == truth
