"""Real processes on loopback: simulator → twistd mitelacd → mitel_data.json."""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mitelacd import testing
from mitelacd.sim.service import FloorScript
from mitelacd.testing import CheckoutTwistd, fake_pbx

ROOT = Path(__file__).parent.parent
DEADLINE = 60.0


#: tests/test_board_browser.py and tests/test_board_today.py import it from here by this name.
Twistd = CheckoutTwistd


def poll(
    read: Callable[[], dict[str, Any]],
    done: Callable[[dict[str, Any]], bool],
    timeout: float = DEADLINE,
) -> dict[str, Any]:
    """What ``read`` gives once ``done`` says so, or the last of it at the deadline."""
    end = time.monotonic() + timeout
    doc: dict[str, Any] = {}
    while time.monotonic() < end:
        doc = read()
        if doc and done(doc):
            return doc
        time.sleep(0.1)
    return doc


def poll_file(
    path: Path, done: Callable[[dict[str, Any]], bool], timeout: float = DEADLINE
) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        try:
            doc: dict[str, Any] = json.loads(path.read_bytes())
        except FileNotFoundError:
            return {}
        return doc

    return poll(read, done, timeout)


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


def test_simulator_to_daemon_to_file(
    tmp_path: Path, processes: Callable[..., testing.Twistd]
) -> None:
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


def test_sigterm_writes_the_last_state(
    tmp_path: Path, processes: Callable[..., testing.Twistd]
) -> None:
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
    tmp_path: Path, processes: Callable[..., testing.Twistd]
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


# --- terminators, faults and noise, end to end ----------------------------------------------

#: What a listener counts of a stream's faults, under the names of ``/api/v1/feed``.
FAULT_COUNTERS = (
    "sequence_gaps",
    "records_missed",
    "sequence_duplicates",
    "sequence_resyncs",
    "noise",
)


def get_json(port: int | str, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        doc: dict[str, Any] = json.loads(response.read())
    return doc


def poll_feed(
    port: int, done: Callable[[dict[str, Any]], bool], timeout: float = DEADLINE
) -> dict[str, Any]:
    """The daemon's ``/api/v1/feed`` object, once ``done`` says so (or at the deadline)."""
    return poll(lambda: get_json(port, "/api/v1/feed")["feed"], done, timeout)


def frozen_stream(script: FloorScript, bursts: int) -> tuple[dict[str, Any], bytes]:
    """Run the script until its floor is frozen, then ``bursts`` more K/Q/R bursts.

    The ground truth then, and every byte sent until then.
    """
    steps = script.steps()
    chunks = []
    while not script.frozen:
        chunks.append(next(steps)[1])
    chunks += [next(steps)[1] for _ in range(bursts)]
    return script.expected_legacy(), b"".join(chunks)


def keys_by_agent(stream: bytes) -> dict[str, list[str]]:
    """Each agent's call events in a stream, as code and key (``"N01"``)."""
    event = re.compile(rb"\x02\d\d([A-JL-PSTU])\d{6}[0-9 ]{7}([0-9 ]{7})(\d\d)")
    out: dict[str, list[str]] = {}
    for match in event.finditer(stream):
        agent = match.group(2).strip().decode()
        if agent:
            out.setdefault(agent, []).append((match.group(1) + match.group(3)).decode())
    return out


def start_floor(
    tmp_path: Path, processes: Callable[..., testing.Twistd], sim_argv: list[str]
) -> tuple[Path, int]:
    """The simulator with ``sim_argv``, a daemon reading it; the data file and the HTTP port."""
    sim = processes("mitelacd-sim", *sim_argv, cwd=tmp_path)
    port = sim.wait_for(r"simulated ICP feed on \S+ port (\d+)").group(1)
    data = tmp_path / "mitel_data.json"
    daemon = processes(*daemon_argv(port, data, "--write-interval", "0.2"), cwd=tmp_path)
    return data, daemon.http_port()


@pytest.mark.parametrize(
    "eol, faults", [("cr", True), ("none", False)], ids=["eol-cr-faults", "eol-none"]
)
def test_terminators_faults_and_noise_reach_the_file_unharmed(
    tmp_path: Path, processes: Callable[..., testing.Twistd], eol: str, faults: bool
) -> None:
    seed, events = 7, 400
    sim_argv = ["--port", "0", "--seed", str(seed), "--events", str(events), "--speed", "200"]
    sim_argv += ["--eol", eol, *(["--faults"] if faults else [])]
    data, http = start_floor(tmp_path, processes, sim_argv)
    script = FloorScript(seed=seed, events=events, eol=eol, faults=faults)  # type: ignore[arg-type]
    expected, stream = frozen_stream(script, bursts=1)
    injected = script.faults.feed_counters()

    # The stream did exercise what state-model v2 is about.
    keys = keys_by_agent(stream)
    assert len(expected["agents"]) >= 20
    assert any(k.startswith("S") for ks in keys.values() for k in ks)  # networked ACD
    assert any(
        a == "N01" and b[0] == "I" and c == "J" + b[1:]  # consultation over, caller held
        for ks in keys.values()
        for a, b, c in zip(ks, ks[1:], ks[2:])
    )
    assert any(k[0] in "HI" and int(k[1:]) > 3 for ks in keys.values() for k in ks)
    assert re.search(rb"\x02\d\d[KQ]\d{19}\x02", stream.replace(b"\r", b""))  # no trailing digits
    if faults:
        assert all(injected[name] for name in FAULT_COUNTERS if name != "sequence_resyncs")
        assert b"\x00" in stream
    else:
        assert not any(injected.values())

    def settled(doc: dict[str, Any]) -> bool:
        return all(doc[k] == expected[k] for k in ("agents", "groups", "paths"))

    doc = poll_file(data, settled)
    assert doc["agents"] == expected["agents"]
    assert doc["groups"] == expected["groups"]
    assert doc["paths"] == expected["paths"]
    # Faults stop when the floor freezes, so the counts are final by now.
    feed = poll_feed(http, lambda f: {k: f.get(k) for k in FAULT_COUNTERS} == injected)
    assert {k: feed.get(k) for k in FAULT_COUNTERS} == injected
    assert feed["unparsable_records"] == 0
    assert feed["connections"] == 1


def test_the_last_record_without_a_terminator_is_applied_after_a_silence(
    tmp_path: Path, processes: Callable[..., testing.Twistd]
) -> None:
    """No terminator and no report cycle after the floor freezes: only the idle flush applies
    the last record (state-model §1)."""
    seed, events = 5, 300
    sim_argv = ["--port", "0", "--seed", str(seed), "--events", str(events), "--speed", "200"]
    sim_argv += ["--eol", "none", "--cycle", "86400"]
    data, http = start_floor(tmp_path, processes, sim_argv)
    script = FloorScript(seed=seed, events=events, eol="none", cycle=86400)
    expected, stream = frozen_stream(script, bursts=0)
    assert stream[-1:].isdigit()  # the last record has no terminator

    def settled(doc: dict[str, Any]) -> bool:
        return all(doc[k] == expected[k] for k in ("agents", "groups", "paths"))

    doc = poll_file(data, settled)
    assert {k: doc[k] for k in ("agents", "groups", "paths")} == expected
    # Every record was applied, the last one included.
    feed = poll_feed(http, lambda f: f["records_this_connection"] == script.wire.records)
    assert feed["records_this_connection"] == script.wire.records
    assert feed["unparsable_records"] == 0


def test_a_rename_reaches_the_api_on_change_and_on_sighup(
    tmp_path: Path, processes: Callable[..., testing.Twistd]
) -> None:
    server, port = fake_pbx()
    names = tmp_path / "names.toml"
    names.write_text('[agents]\n"1001" = "Ada Lovelace"\n[make_busy_reasons]\n"05" = "Lunch"\n')
    data = tmp_path / "mitel_data.json"
    daemon = processes(*daemon_argv(port, data, "--names", str(names)), cwd=tmp_path)
    conn, _ = server.accept()
    with conn, server:
        http = daemon.http_port()
        conn.sendall(b"\x0212E0815022001   1001   05\r\n")

        def agent() -> dict[str, Any]:
            # The record may not have reached the floor yet: 404 until it has.
            try:
                doc: dict[str, Any] = get_json(http, "/api/v1/agents/1001")["agent"]
            except urllib.error.HTTPError as e:
                if e.code != 404:
                    raise
                return {}
            return doc

        ada = poll(agent, lambda a: a["name"] == "Ada Lovelace")
        assert (ada["name"], ada["make_busy_reason_text"]) == ("Ada Lovelace", "Lunch")
        # A change on disk is picked up by itself...
        names.write_text('[agents]\n"1001" = "Ada King"\n[make_busy_reasons]\n"05" = "Break"\n')
        renamed = poll(agent, lambda a: a["name"] == "Ada King", timeout=10)
        assert renamed["make_busy_reason_text"] == "Break"
        daemon.wait_for(r"names reloaded from .*names\.toml \(changed on disk\)", timeout=5)
        # ...a bad file keeps the names there are...
        names.write_text('[agents]\n"1001" = 7\n')
        daemon.wait_for(r"names file .*names\.toml not reloaded .*line 2", timeout=10)
        assert agent()["name"] == "Ada King"
        # ...and SIGHUP reads the file again.
        names.write_text('[agents]\n"1001" = "Countess of Lovelace"\n')
        daemon.process.send_signal(signal.SIGHUP)
        hupped = poll(agent, lambda a: a["name"] == "Countess of Lovelace", timeout=10)
        assert hupped["name"] == "Countess of Lovelace"
        assert json.loads(data.read_bytes())["agents"] == {"1001": "busy"}  # never a name
        daemon.stop_cleanly()
