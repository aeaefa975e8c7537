"""Sites through a real Mosquitto: a central daemon's floor is the one read directly.

Two simulated controllers; a site daemon on each (``--source a=rte://...``
and ``--source b=rte://...``, each publishing with ``--mqtt``); a daemon
reading both controllers directly; and a central daemon reading the two
sites through the broker (``--source site1=mqtt://.../acme/site1`` ...).
The central floor must settle on the direct one, which is the merge by
hand; then the broker is stopped for 30 s while the controllers go on, and
once it is back the central daemon must have read every record the sites
read, each once.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_end_to_end import poll, poll_file
from test_sources_end_to_end import merged_reference, start_site

from mitelacd import testing
from mitelacd.testing.mosquitto import MosquittoBroker

pytestmark = pytest.mark.processes

OUTAGE = 30.0
#: Simulated seconds a second: the failover window is 30 of them, still far above the
#: broker's delay; the test checks the merged floor, not which moves were failovers.
SPEED = 80.0


@pytest.fixture
def broker() -> Iterator[MosquittoBroker]:
    """A broker that keeps its sessions over a restart; its log is shown when the test fails."""
    server = MosquittoBroker(persistence=True)
    try:
        server.start()
        yield server
    finally:
        print(f"--- mosquitto log ---\n{server.log_text()}")
        server.close()


def get(port: int, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
        document: dict[str, Any] = json.loads(answer.read())
        return document


def counts(port: int) -> dict[str, tuple[dict[str, int], int, int]]:
    """Each ACD source's records by code, gaps and duplicates, as a daemon read them."""
    sources = get(port, "/api/v1/feed")["feed"]["sources"]
    return {
        name: (view["records_by_code"], view["sequence_gaps"], view["sequence_duplicates"])
        for name, view in sources.items()
        if view["records_by_code"]
    }


def floor_of(port: int) -> dict[str, Any]:
    """The rich view's agents (id, status, source) and queues (id, figures, parts)."""
    state = get(port, "/api/v1/state")

    def parts(queue: dict[str, Any]) -> dict[str, Any]:
        return {
            name: (part["waiting"], part["agents_logged_in"], part["longest_wait_seconds"])
            for name, part in queue["sources"].items()
        }

    return {
        "agents": [(a["id"], a["status"], a["source"]) for a in state["agents"]],
        "paths": [(q["id"], q["waiting"], parts(q)) for q in state["paths"]],
        "groups": [(q["id"], q["waiting"], parts(q)) for q in state["groups"]],
    }


def test_a_central_daemon_reads_two_sites_through_the_broker_and_loses_nothing(
    tmp_path: Path, processes: Callable[..., testing.Twistd], broker: MosquittoBroker
) -> None:
    expected, _ = merged_reference()
    # Two clients on each controller: its site's daemon and the direct one.
    sim, ports = start_site(processes, tmp_path, clients=2, speed=SPEED)
    common = ["--http", "tcp:0:interface=127.0.0.1", "--write-interval", "0.2"]
    common += ["--failover-seconds", str(30 / SPEED), "--history", "none"]
    # Back on the broker soon after its outage: the backoff is capped at 2 s.
    common += ["--max-retry-delay", "2"]
    files = {
        name: tmp_path / name / "mitel_data.json" for name in ("central", "direct", "s1", "s2")
    }
    for file in files.values():
        file.parent.mkdir()
    # The central daemon first: its sessions exist before the sites publish.
    central = processes(
        "mitelacd", "--source", f"site1=mqtt://{broker_address(broker)}/acme/site1",
        "--source", f"site2=mqtt://{broker_address(broker)}/acme/site2",
        "--file", str(files["central"]), *common, cwd=files["central"].parent,
    )  # fmt: skip
    central_port = central.http_port()
    for _ in range(2):
        central.wait_for(r"connected to the MQTT broker \S+: a new session", timeout=20)
    sites = [
        processes(
            "mitelacd",
            "--source",
            f"{source}=rte://127.0.0.1:{port}",
            "--mqtt",
            f"mqtt://{broker_address(broker)}/acme/{site}",
            "--file",
            str(files[short]),
            *common,
            cwd=files[short].parent,
        )  # fmt: skip
        for source, port, site, short in (
            ("a", ports[0], "site1", "s1"),
            ("b", ports[1], "site2", "s2"),
        )
    ]
    direct = processes(
        "mitelacd", "--source", f"a=rte://127.0.0.1:{ports[0]}",
        "--source", f"b=rte://127.0.0.1:{ports[1]}",
        "--file", str(files["direct"]), *common, cwd=files["direct"].parent,
    )  # fmt: skip
    direct_port = direct.http_port()
    site_ports = [site.http_port() for site in sites]

    def settled(doc: dict[str, Any]) -> bool:
        return all(doc[k] == expected[k] for k in ("agents", "groups", "paths"))

    for name in ("direct", "central"):
        doc = poll_file(files[name], settled)
        assert {k: doc[k] for k in ("agents", "groups", "paths")} == {
            k: expected[k] for k in ("agents", "groups", "paths")
        }, name
    # Not only the legacy view: the agents' sources and the queues' parts too.
    floors = poll(
        lambda: {"central": floor_of(central_port), "direct": floor_of(direct_port)},
        lambda f: f["central"] == f["direct"],
    )
    assert floors["central"] == floors["direct"]
    assert {source for _, _, source in floors["central"]["agents"]} == {"a", "b"}

    # The broker goes away for 30 s while the controllers go on.
    broker.stop()
    time.sleep(OUTAGE)
    assert not broker.running
    broker.start()
    # Then the controllers stop: every record read at the sites must reach the centre.
    sim.stop_cleanly()

    def read_at_sites() -> dict[str, tuple[dict[str, int], int, int]]:
        return {**counts(site_ports[0]), **counts(site_ports[1])}

    at_sites = poll(read_at_sites, lambda c: set(c) == {"a", "b"})
    arrived = poll(lambda: counts(central_port), lambda c: c == at_sites, timeout=60)
    assert arrived == at_sites
    for name, (by_code, gaps, duplicates) in arrived.items():
        assert (gaps, duplicates) == (0, 0), name
        assert sum(by_code.values()) > 500, by_code
    central.wait_for(r"connected to the MQTT broker \S+ after .*kept the session", timeout=5)
    for daemon in (central, direct, *sites):
        daemon.stop_cleanly()


def broker_address(broker: MosquittoBroker) -> str:
    return f"127.0.0.1:{broker.port}"
