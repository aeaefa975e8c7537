"""Real processes on loopback: simulator → twistd mitelacd → mitel_data.json."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mitelacd import testing
from mitelacd.simulator import FloorScript
from mitelacd.testing import fake_pbx

ROOT = Path(__file__).parent.parent
DEADLINE = 60.0


class Twistd(testing.Twistd):
    """A ``twistd -n`` child running this checkout's code."""

    def __init__(self, *argv: str, cwd: Path) -> None:
        super().__init__(*argv, cwd=cwd, pythonpath=ROOT)


@pytest.fixture
def processes() -> Iterator[Callable[..., Twistd]]:
    started: list[Twistd] = []

    def start(*argv: str, cwd: Path) -> Twistd:
        started.append(Twistd(*argv, cwd=cwd))
        return started[-1]

    yield start
    for child in reversed(started):
        child.stop()


def poll_file(
    path: Path, done: Callable[[dict[str, Any]], bool], timeout: float = DEADLINE
) -> dict[str, Any]:
    end = time.monotonic() + timeout
    doc: dict[str, Any] = {}
    while time.monotonic() < end:
        try:
            doc = json.loads(path.read_bytes())
        except FileNotFoundError:
            pass
        if doc and done(doc):
            return doc
        time.sleep(0.1)
    return doc


def daemon_argv(port: int | str, data: Path, *extra: str) -> list[str]:
    return [
        "mitelacd",
        *("--host", "127.0.0.1", "--port", str(port), "--file", str(data)),
        *("--http", "tcp:0:interface=127.0.0.1", *extra),
    ]


def expected_after(script: FloorScript) -> dict[str, Any]:
    """Run the script until its floor is frozen and one more burst has gone out."""
    steps = script.steps()
    while not script.frozen:
        next(steps)
    next(steps)
    return script.expected_legacy()


def test_simulator_to_daemon_to_file(tmp_path: Path, processes: Callable[..., Twistd]) -> None:
    seed, events = 7, 400
    sim_argv = ["--port", "0", "--seed", str(seed), "--events", str(events), "--speed", "200"]
    sim = processes("mitelacd-sim", *sim_argv, cwd=tmp_path)
    port = sim.wait_for(r"simulated ICP feed on \S+ port (\d+)").group(1)
    data = tmp_path / "mitel_data.json"
    daemon = processes(*daemon_argv(port, data, "--write-interval", "0.2"), cwd=tmp_path)
    expected = expected_after(FloorScript(seed=seed, events=events))
    assert len(expected["agents"]) >= 20  # the script did exercise the floor

    def settled(doc: dict[str, Any]) -> bool:
        return all(doc[k] == expected[k] for k in ("agents", "groups", "paths"))

    doc = poll_file(data, settled)
    assert doc["agents"] == expected["agents"]
    assert doc["groups"] == expected["groups"]
    assert doc["paths"] == expected["paths"]
    assert set(doc) == {"agents", "groups", "paths", "lastUpdate"}
    assert abs(doc["lastUpdate"] - time.time()) < DEADLINE + 10
    daemon.wait_for(r"connected to the PBX at 127\.0\.0\.1:" + port, timeout=5)
    daemon.stop_cleanly()
    assert json.loads(data.read_bytes())["agents"] == expected["agents"]


def test_sigterm_writes_the_last_state(tmp_path: Path, processes: Callable[..., Twistd]) -> None:
    """With a write interval of an hour, only shutdown can write the second state."""
    server, port = fake_pbx()
    data = tmp_path / "mitel_data.json"
    daemon = processes(*daemon_argv(port, data, "--write-interval", "3600"), cwd=tmp_path)
    conn, _ = server.accept()
    with conn, server:
        daemon.wait_for(r"connected to the PBX")
        conn.sendall(b"\x0212A0815022001   1001   00\r\n")
        # The first change is written at once...
        assert poll_file(data, lambda doc: doc["agents"] == {"1001": "in"})["agents"]
        conn.sendall(b"\x0213C0815102001   1001   00\r\n\x0214K08151061000300201450000000\r\n")
        daemon.wait_for(r"group 610: 3 waiting, 2 agents, longest 01:45")
        # ...and the next not within the hour.
        time.sleep(0.2)
        assert json.loads(data.read_bytes())["agents"] == {"1001": "in"}
        daemon.stop_cleanly()
    last = json.loads(data.read_bytes())
    assert last["agents"] == {"1001": "busy"}
    assert last["groups"] == {"610": {"waiting": "003", "agents": "002", "longestwait": "0145"}}


def test_reconnects_keeps_state_and_backs_off(
    tmp_path: Path, processes: Callable[..., Twistd]
) -> None:
    """A PBX that drops the link, then one that accepts and hangs up at once."""
    server, port = fake_pbx()
    data = tmp_path / "mitel_data.json"
    extra = ("--write-interval", "0.1", "--retry-delay", "0.05", "--max-retry-delay", "5")
    daemon = processes(*daemon_argv(port, data, *extra), cwd=tmp_path)
    with server:
        conn, _ = server.accept()
        conn.sendall(b"\x0212A0815022001   1001   00\r\n\x0213G0815102001   1001   01860\r\n")
        daemon.wait_for(r"agent 1001 answered an ACD call from path 860 at 2001")
        conn.close()
        daemon.wait_for(r"lost the PBX link")
        daemon.wait_for(r"retrying 127\.0\.0\.1:\d+ in")
        # Second connection: accept and hang up, several times, timing the redials.
        accepted = []
        for _ in range(4):
            conn, _ = server.accept()
            accepted.append(time.monotonic())
            conn.close()
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"\x0214K08151061000300201450000000\r\n")
            doc = poll_file(data, lambda d: "610" in d["groups"])
    assert doc["agents"] == {"1001": "busy"}  # kept across the reconnections
    gaps = [b - a for a, b in zip(accepted, accepted[1:])]
    # Backoff (first 0.05 s, factor e, jitter ~12 %): every wait clearly longer than the last.
    assert all(later > 1.5 * earlier for earlier, later in zip(gaps, gaps[1:])), gaps
