"""Names, reasons, thresholds and the board's agent states in the typed views."""

from __future__ import annotations

import json

import pytest

from mitelacd.floor.names import parse_names
from mitelacd.testing import Feeder

NAMES = parse_names(
    """
[agents]
"1001" = "Ada Lovelace"
"1002" = { name = "Grace Hopper", team = "Day", groups = ["610", "620"] }
[groups]
"610" = "Sales"
[paths]
"860" = "Sales hotline"
[make_busy_reasons]
"05" = "Lunch"
[dnd_reasons]
"01" = "Meeting"
[thresholds]
waiting = [3, 6]
longest_wait = [60, 120]
[thresholds.groups."610"]
longest_wait = [30, 90]
[thresholds.paths."860"]
waiting = [1, 2]
[thresholds.agents]
wrap_up = [60, 120]
""",
    "names.toml",
)


@pytest.fixture
def f() -> Feeder:
    feeder = Feeder()
    feeder.floor.setNames(NAMES)
    return feeder


def test_agents_carry_their_names_team_and_groups(f: Feeder) -> None:
    f.event("A", agent="1001")
    f.event("A", agent="1002")
    f.event("A", agent="1003")
    views = {v["id"]: v for v in f.floor.agentViews()}
    assert (views["1001"]["name"], views["1001"]["team"], views["1001"]["groups"]) == (
        "Ada Lovelace",
        None,
        [],
    )
    assert (views["1002"]["name"], views["1002"]["team"], views["1002"]["groups"]) == (
        "Grace Hopper",
        "Day",
        ["610", "620"],
    )
    assert (views["1003"]["name"], views["1003"]["groups"]) == (None, [])


def test_names_never_reach_the_legacy_document(f: Feeder) -> None:
    f.event("A", agent="1001")
    f.stats("K", "610", "0000010000")
    assert json.loads(f.floor.legacyJSON())["agents"] == {"1001": "in"}
    assert (
        "Ada" not in f.floor.legacyJSON().decode() and "Sales" not in f.documents.legacy().decode()
    )


@pytest.mark.parametrize(
    "steps, text",
    [("E05", ("make_busy_reason_text", "Lunch")), ("C01", ("dnd_reason_text", "Meeting"))],
)
def test_reasons_are_given_as_text(f: Feeder, steps: str, text: tuple[str, str]) -> None:
    f.steps(steps)
    assert f.view()[text[0]] is None  # the view without names
    assert f.floor.agentViews()[0][text[0]] == text[1]


def test_an_unknown_reason_has_no_text(f: Feeder) -> None:
    f.steps("E07 C09")
    view = f.floor.agentViews()[0]
    assert (view["make_busy_reason"], view["make_busy_reason_text"]) == (7, None)
    assert (view["dnd_reason"], view["dnd_reason_text"]) == (9, None)


@pytest.mark.parametrize(
    "code, number, figures, level",
    [
        # default: waiting [3, 6], longest wait [60, 120] s
        ("K", "620", "0020010059", "ok"),
        ("K", "620", "0030010000", "warning"),
        ("K", "620", "0060010000", "alarm"),
        ("K", "620", "0000010100", "warning"),  # 60 s
        ("K", "620", "0000010200", "alarm"),  # 120 s
        ("K", "620", "0050010200", "alarm"),  # the worse of the two
        # group 610 overrides the longest wait only: [30, 90]
        ("K", "610", "0000010029", "ok"),
        ("K", "610", "0000010030", "warning"),
        ("K", "610", "0000010130", "alarm"),
        ("K", "610", "0030010000", "warning"),  # the default waiting still applies
        # path 860: waiting [1, 2]
        ("Q", "860", "0010010000", "warning"),
        ("Q", "860", "0020010000", "alarm"),
        ("Q", "861", "0020010000", "ok"),
        # the same number as a path uses the path thresholds, not the group's
        ("Q", "610", "0000010030", "ok"),
    ],
)
def test_queue_levels(f: Feeder, code: str, number: str, figures: str, level: str) -> None:
    f.stats(code, number, figures)
    table = f.floor.groups if code == "K" else f.floor.paths
    view = f.floor.queueViews(table)[0]
    assert view["level"] == level


def test_queue_names(f: Feeder) -> None:
    f.stats("K", "610", "0000010000")
    f.stats("Q", "860", "0000010000")
    f.stats("Q", "007", "0000010000")
    assert f.floor.queueViews(f.floor.groups)[0]["name"] == "Sales"
    assert [v["name"] for v in f.floor.queueViews(f.floor.paths)] == [None, "Sales hotline"]


@pytest.mark.parametrize(
    "steps, state",
    [
        ("B", "logged_out"),
        ("A", "available"),
        ("T01", "ringing"),
        ("G", "on_call"),
        ("G N01", "on_hold"),
        ("G N01 I02", "on_call"),
        ("C", "not_ready"),
        ("E05", "not_ready"),
        ("L", "wrap_up"),
        ("L C", "not_ready"),
        ("C G", "on_call"),
        ("L M", "available"),
    ],
)
def test_agent_states(f: Feeder, steps: str, state: str) -> None:
    f.steps(steps)
    assert f.view()["state"] == state


def test_state_since_and_attention(f: Feeder) -> None:
    f.steps("G")
    f.clock.advance(100)
    f.steps("L")
    view = f.floor.agentViews()[0]
    assert view["state"] == "wrap_up"
    assert view["state_since"] == "2023-11-14T22:15:00.000Z"
    assert view["attention"] == {
        "warning_at": "2023-11-14T22:16:00.000Z",
        "alarm_at": "2023-11-14T22:17:00.000Z",
    }
    f.clock.advance(5)
    f.steps("C")  # still busy in the legacy view, but a new state
    view = f.floor.agentViews()[0]
    assert (view["state"], view["attention"]) == ("not_ready", None)
    assert view["state_since"] == "2023-11-14T22:15:05.000Z"


def test_new_names_reach_every_view_in_one_change(f: Feeder) -> None:
    f.event("A", agent="1001")
    f.stats("K", "610", "0000010000")
    f.recorder.take()
    renamed = parse_names('[agents]\n"1001" = "Ada King"\n[groups]\n"610" = "Sales EMEA"\n', "n")
    f.floor.setNames(renamed)
    (changes,) = f.recorder.take()
    agent = changes.agents["1001"]
    group = changes.groups["610"]
    assert agent is not None and agent.view["name"] == "Ada King"
    assert group is not None and group.view["name"] == "Sales EMEA"
    assert b'"name":"Ada King"' in b"".join(f.documents.state(b"false"))
