"""``twistd mitelacd --simulate``: the --sim-* options, and the names made up for its floor."""

from __future__ import annotations

import contextlib
import itertools
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python import usage

from mitelacd import tap
from mitelacd.floor.names import NamesWatcher
from mitelacd.floor.state import FloorState
from mitelacd.sim.names import (
    FIRST_GROUPS,
    FIRST_NAMES,
    LAST_NAMES,
    MAKE_BUSY_REASONS,
    MORE_GROUPS,
    PEOPLE,
    floor_names,
    people,
)
from mitelacd.sim.service import FloorScript
from mitelacd.testing import capture_log


def parse(*argv: str) -> tap.Options:
    options = tap.Options()
    options.parseOptions(list(argv))
    return options


def simulate(folder: Path, *argv: str) -> tap.Options:
    """``--simulate`` with the data file in ``folder``, no history and no HTTP."""
    return parse(
        "--simulate",
        *("--file", str(folder / "mitel_data.json"), "--history", "none", "--http", "none"),
        *argv,
    )


def simulated_floor(service: tap.MitelACDService) -> tap.SimulatedFloor:
    (simulated,) = [s for s in service if isinstance(s, tap.SimulatedFloor)]
    return simulated


def script_of(service: tap.MitelACDService) -> FloorScript:
    script: FloorScript = simulated_floor(service).simulator.factory.script
    return script


def chunks(script: FloorScript, count: int) -> list[tuple[float, bytes]]:
    return list(itertools.islice(script.steps(), count))


def split_name(name: str) -> tuple[str, str] | None:
    """The first and last name a made-up name is made of, or None."""
    for first in FIRST_NAMES:
        if name.startswith(first + " ") and name[len(first) + 1 :] in LAST_NAMES:
            return first, name[len(first) + 1 :]
    return None


# --- the options -----------------------------------------------------------------


def test_the_floor_is_60_agents_in_6_groups_and_5_paths_unless_told(tmp_path: Path) -> None:
    options = simulate(tmp_path)
    sizes = [options[k] for k in ("sim-agents", "sim-groups", "sim-paths", "sim-seed")]
    assert sizes == [60, 6, 5, None]
    assert all(type(options[k]) is int for k in ("sim-agents", "sim-groups", "sim-paths"))
    options = simulate(
        tmp_path, "--sim-agents", "150", "--sim-groups", "8", "--sim-paths", "3", "--sim-seed", "0"
    )
    sizes = [options[k] for k in ("sim-agents", "sim-groups", "sim-paths", "sim-seed")]
    assert sizes == [150, 8, 3, 0]
    bounds = simulate(tmp_path, "--sim-agents", "999", "--sim-groups", "99", "--sim-paths", "1")
    assert [bounds[k] for k in ("sim-agents", "sim-groups", "sim-paths")] == [999, 99, 1]


def test_help_shows_each_option_and_its_default() -> None:
    text = tap.Options().getUsage(width=1000)
    for option, default in [("agents", "60"), ("groups", "6"), ("paths", "5")]:
        line = next(line for line in text.splitlines() if f"--sim-{option}=" in line)
        assert "With --simulate" in line and f"[default: {default}]" in line
    seed = next(line for line in text.splitlines() if "--sim-seed=" in line)
    assert "random, and logged" in seed and "[default:" not in seed


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--host", "h", "--sim-agents", "150"], r"^--sim-agents needs --simulate$"),
        (["--host", "h", "--sim-groups", "6"], r"^--sim-groups needs --simulate$"),
        (["--host", "h", "--sim-paths", "5"], r"^--sim-paths needs --simulate$"),
        (["--host", "h", "--sim-seed", "7"], r"^--sim-seed needs --simulate$"),
        # The default value given is still given.
        (["--host", "h", "--sim-agents", "60"], r"^--sim-agents needs --simulate$"),
        (["--sim-seed", "1", "--sim-paths", "2"], r"^--sim-paths, --sim-seed need --simulate$"),
        (["--simulate", "--sim-agents", "0"], r"^--sim-agents must be from 1 to 999, not 0$"),
        (["--simulate", "--sim-agents", "1000"], r"^--sim-agents must be from 1 to 999, not 1000$"),
        (
            ["--simulate", "--sim-agents", "many"],
            r"^--sim-agents must be a whole number, not 'many'$",
        ),
        (
            ["--simulate", "--sim-agents", "6.5"],
            r"^--sim-agents must be a whole number, not '6.5'$",
        ),
        (["--simulate", "--sim-groups", "0"], r"^--sim-groups must be from 1 to 99, not 0$"),
        (["--simulate", "--sim-groups", "100"], r"^--sim-groups must be from 1 to 99, not 100$"),
        (["--simulate", "--sim-paths", "-1"], r"^--sim-paths must be from 1 to 99, not -1$"),
        (["--simulate", "--sim-paths", "x"], r"^--sim-paths must be a whole number, not 'x'$"),
        (["--simulate", "--sim-seed", "-1"], r"^--sim-seed must be 0 or more, not -1$"),
        (
            ["--simulate", "--sim-seed", "lucky"],
            r"^--sim-seed must be a whole number, not 'lucky'$",
        ),
    ],
)
def test_bad_sim_options_are_usage_errors(tmp_path: Path, argv: list[str], message: str) -> None:
    with pytest.raises(usage.UsageError, match=message):
        parse(*argv, "--file", str(tmp_path / "mitel_data.json"))


def test_the_environment_stands_for_the_sim_options(tmp_path: Path) -> None:
    options = tap.options_from_environment(
        {
            "MITELACD_SIMULATE": "1",
            "MITELACD_FILE": str(tmp_path / "mitel_data.json"),
            "MITELACD_SIM_AGENTS": "150",
            "MITELACD_SIM_GROUPS": "7",
            "MITELACD_SIM_PATHS": "4",
            "MITELACD_SIM_SEED": "99",
        }
    )
    sizes = [options[k] for k in ("sim-agents", "sim-groups", "sim-paths", "sim-seed")]
    assert sizes == [150, 7, 4, 99]
    empty = tap.options_from_environment(
        {
            "MITELACD_SIMULATE": "1",
            "MITELACD_FILE": str(tmp_path / "d.json"),
            "MITELACD_SIM_SEED": "",
        }
    )
    assert [empty["sim-agents"], empty["sim-seed"]] == [60, None]


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"MITELACD_HOST": "h", "MITELACD_SIM_SEED": "3"}, "--sim-seed needs --simulate"),
        (
            {"MITELACD_SIMULATE": "1", "MITELACD_SIM_AGENTS": "5000"},
            "--sim-agents must be from 1 to 999, not 5000",
        ),
    ],
)
def test_a_bad_sim_variable_stops_the_tac_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], environ: dict[str, str], message: str
) -> None:
    with pytest.raises(SystemExit) as stopped:
        tap.options_from_environment({**environ, "MITELACD_FILE": str(tmp_path / "d.json")})
    assert stopped.value.code == tap.EXIT_USAGE
    assert f"mitelacd.tac: {message} (from the MITELACD_* environment)" in capsys.readouterr().err


# --- the floor the daemon reads --------------------------------------------------


@contextlib.contextmanager
def running(options: tap.Options) -> Iterator[tuple[tap.MitelACDService, MemoryReactorClock]]:
    """The daemon of ``options`` on a fake reactor, started, and stopped at the end."""
    reactor = MemoryReactorClock()
    service = tap.makeService(options, reactor)
    service.startService()
    try:
        yield service, reactor
    finally:
        service.stopService()


def connect_in_memory(reactor: MemoryReactorClock) -> tuple[StringTransport, Any]:
    """The simulator's listening factory and the daemon's dialling one, joined by memory."""
    # The ACD port and link come first; the SMDR ones after them.
    (_, server_factory, _, interface), _smdr_server = reactor.tcpServers
    (host, _, client_factory, _, _), _smdr_client = reactor.tcpClients
    assert (interface, host) == ("127.0.0.1", "127.0.0.1")
    address = IPv4Address("TCP", "127.0.0.1", 40000)
    server: Any = server_factory.buildProtocol(address)
    wire = StringTransport(peerAddress=address)
    server.makeConnection(wire)
    client: Any = client_factory.buildProtocol(address)
    client.makeConnection(StringTransport(peerAddress=address))
    return wire, client


def test_the_daemon_reads_a_named_floor_of_the_size_it_was_given(tmp_path: Path) -> None:
    options = simulate(
        tmp_path,
        *("--sim-agents", "150", "--sim-groups", "6", "--sim-paths", "5", "--sim-seed", "8"),
        *("--write-interval", "60"),
    )
    with running(options) as (service, reactor):
        floor: FloorState = service.floor
        names = floor.names
        plan = script_of(service).plan
        assert (len(plan.home_dns), len(plan.groups), len(plan.paths)) == (150, 6, 5)
        assert (len(names.agents), len(names.groups), len(names.paths)) == (150, 6, 5)
        assert set(names.agents) == set(plan.home_dns)
        assert list(names.groups) == list(plan.groups)
        assert list(names.paths) == list(plan.paths)
        assert [names.groups[g] for g in plan.groups][:3] == ["Sales", "Support", "Billing"]
        # Each group's members are the agents the floor puts in it, and every agent is in one.
        for group, agents in plan.groups.items():
            assert names.members(group) == agents
        assert sorted(a for g in names.groups for a in names.members(g)) == sorted(plan.home_dns)

        wire, client = connect_in_memory(reactor)
        reasons_seen = 0
        for _ in range(int(2.5 * 3600 / 15)):  # 2.5 simulated hours: every late shift is in
            reactor.advance(15)
            client.dataReceived(wire.value())
            wire.clear()
            for agent in floor.agentViews():
                if agent["make_busy"]:
                    assert agent["make_busy_reason_text"] is not None, agent
                    reasons_seen += 1
        state = floor.snapshot()
        assert len(state["agents"]) == 150 and len(floor.agents) == 150
        assert (len(state["groups"]), len(state["paths"])) == (6, 5)
        assert all(a["name"] == names.agents[a["id"]].name for a in state["agents"])
        assert len({a["name"] for a in state["agents"]}) == 150
        assert all(len(a["groups"]) == 1 for a in state["agents"])
        assert {q["id"]: q["name"] for q in state["groups"]} == dict(names.groups)
        assert {q["id"]: q["name"] for q in state["paths"]} == dict(names.paths)
        assert reasons_seen > 0


def test_a_seed_gives_the_same_floor_names_and_events_again(tmp_path: Path) -> None:
    first, second, other = tmp_path / "1", tmp_path / "2", tmp_path / "3"
    for folder in (first, second, other):
        folder.mkdir()
    made = []
    for folder, seed in [(first, "21"), (second, "21"), (other, "22")]:
        with running(simulate(folder, "--sim-seed", seed)) as (service, _):
            made.append((service.floor.names, chunks(script_of(service), 300)))
    (names, events), (again, events_again), (others, other_events) = made
    assert again == names and events_again == events
    assert [e.name for e in others.agents.values()] != [e.name for e in names.agents.values()]
    assert other_events != events


def test_without_a_seed_one_is_picked_and_logged(tmp_path: Path) -> None:
    with capture_log("mitelacd.tap") as log:
        with running(simulate(tmp_path)) as (service, _):
            names, seed = service.floor.names, script_of(service).seed
    (line,) = [line for line in log.lines() if line.startswith("simulated floor:")]
    assert line == (
        f"simulated floor: 60 agents, 6 groups, 5 paths, seed {seed}"
        f" (--sim-seed {seed} gives the same floor again)"
    )
    assert "names made up for the simulated floor: 60 agents, 6 groups, 5 paths" in log.lines()
    # The seed logged is the whole story: given back, it makes the same names.
    assert FloorScript(seed=seed, agents=60, groups=6, paths=5).names() == names


def test_with_names_the_file_wins(tmp_path: Path) -> None:
    path = tmp_path / "names.toml"
    path.write_text('[agents]\n"1001" = "Ada Lovelace"\n[groups]\n"610" = "Front desk"\n')
    options = simulate(tmp_path, "--names", str(path), "--sim-seed", "4")
    with capture_log("mitelacd.tap") as log:
        with running(options) as (service, _):
            names = service.floor.names
            assert names.source == str(path)
            assert dict(names.groups) == {"610": "Front desk"}
            assert [e.name for e in names.agents.values()] == ["Ada Lovelace"]
            assert dict(names.paths) == {}
            assert [s for s in service if isinstance(s, NamesWatcher)]
            # The floor is the seed's all the same.
            assert script_of(service).seed == 4 and len(script_of(service).plan.home_dns) == 60
    assert not [line for line in log.lines() if line.startswith("names made up")]


def test_without_simulate_there_are_no_names_made_up(tmp_path: Path) -> None:
    options = parse("--host", "127.0.0.1", "--file", str(tmp_path / "d.json"), "--http", "none")
    with running(options) as (service, _):
        assert not service.floor.names.agents and not service.floor.names.groups
        assert not [s for s in service if isinstance(s, tap.SimulatedFloor)]


# --- the names themselves ------------------------------------------------------


def test_the_lists_hold_a_few_hundred_names_from_many_places() -> None:
    assert len(FIRST_NAMES) >= 300 and len(LAST_NAMES) >= 300
    assert len(PEOPLE) >= 30
    for name in (*FIRST_NAMES, *LAST_NAMES, *FIRST_GROUPS, *MORE_GROUPS):
        assert name == name.strip() and name and "  " not in name


@pytest.mark.parametrize("agents, groups, paths", [(1, 1, 1), (60, 6, 5), (999, 99, 99)])
def test_every_agent_group_and_path_has_a_name_of_its_own(
    agents: int, groups: int, paths: int
) -> None:
    names = FloorScript(seed=3, agents=agents, groups=groups, paths=paths).names()
    assert len(names.agents) == agents and len(names.groups) == groups
    assert len(names.paths) == paths
    agent_names = [e.name for e in names.agents.values()]
    assert len(set(agent_names)) == agents
    assert all(name is not None and split_name(name) is not None for name in agent_names)
    assert len(set(names.groups.values())) == groups
    assert len(set(names.paths.values())) == paths
    assert names.source is None


def test_names_differ_between_seeds_and_not_within_one() -> None:
    def agent_names(seed: int) -> list[str | None]:
        return [e.name for e in FloorScript(seed=seed, agents=150).names().agents.values()]

    assert agent_names(1) == agent_names(1)
    by_seed = {seed: agent_names(seed) for seed in range(5)}
    assert len({tuple(n) for n in by_seed.values()}) == 5
    # Not merely shifted: few names are shared between two seeds' floors.
    assert len(set(by_seed[0]) & set(by_seed[1])) < 30
    # The groups after Sales, Support and Billing come in an order of the seed's.
    orders = {tuple(FloorScript(seed=s, groups=8).names().groups.values())[3:] for s in range(5)}
    assert len(orders) > 1


def test_most_names_come_from_one_part_of_the_world() -> None:
    names = [e.name for e in FloorScript(seed=12, agents=999).names().agents.values()]
    parts = [split_name(name) for name in names if name is not None]
    together = sum(
        1
        for found in parts
        if found is not None and any(found[0] in f and found[1] in lasts for f, lasts in PEOPLE)
    )
    assert 0.7 * len(names) <= together < len(names)


def test_paths_are_named_after_the_first_group_serving_them() -> None:
    script = FloorScript(seed=5, agents=20, groups=2, paths=5)
    names = script.names()
    by_path = [(names.groups[script.plan.paths[p][0]], names.paths[p]) for p in script.plan.paths]
    assert by_path == [
        ("Sales", "Sales line"),
        ("Support", "Support line"),
        ("Sales", "Sales priority line"),
        ("Support", "Support priority line"),
        ("Sales", "Sales overflow"),
    ]


def test_groups_past_the_list_are_numbered() -> None:
    names = FloorScript(seed=2, agents=99, groups=99, paths=1).names()
    groups = list(names.groups.values())
    assert len(set(groups)) == 99
    assert groups[: len(FIRST_GROUPS)] == list(FIRST_GROUPS)
    listed = len(FIRST_GROUPS) + len(MORE_GROUPS)
    assert groups[listed : listed + 2] == ["Sales 2", "Support 2"]


def test_every_make_busy_reason_the_floor_gives_has_a_text() -> None:
    script = FloorScript(seed=6, agents=60)
    reasons: set[int] = set()
    busy = re.compile(rb"\x02\d\dE\d{6}[0-9 ]{7}[0-9 ]{7}(\d\d)")
    for _, chunk in chunks(script, 6000):
        reasons.update(int(m.group(1)) for m in busy.finditer(chunk))
    assert reasons and reasons <= set(MAKE_BUSY_REASONS)
    assert dict(script.names().make_busy_reasons) == MAKE_BUSY_REASONS


def test_asking_for_the_names_changes_nothing_of_the_day() -> None:
    asked, untouched = FloorScript(seed=9), FloorScript(seed=9)
    assert asked.names() == asked.names()
    assert chunks(asked, 500) == chunks(untouched, 500)


def test_floor_names_is_pure_in_its_random_source() -> None:
    plan = FloorScript(seed=1, agents=40).plan
    assert floor_names(plan, random.Random(5)) == floor_names(plan, random.Random(5))
    assert floor_names(plan, random.Random(5)) != floor_names(plan, random.Random(6))


def test_people_refuses_more_names_than_there_are() -> None:
    rng = random.Random(0)
    assert len(set(people(500, rng))) == 500
    with pytest.raises(ValueError, match="cannot make up"):
        people(len(FIRST_NAMES) * len(LAST_NAMES) + 1, rng)
