"""The names file: parsed and checked with the line at fault, levels, and reloads."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import Clock, deferLater
from twisted.logger import LogLevel

from mitelacd.floor.names import (  # tomllib: the standard library's, or tomli before 3.11
    AGENT_STATES,
    DEFAULT_SERVICE_LEVEL,
    LIMITED_STATES,
    NO_NAMES,
    SERVICE_LEVEL_SECONDS,
    SHORT_ABANDON_SECONDS,
    AgentEntry,
    Limits,
    Names,
    NamesError,
    NamesWatcher,
    QueueThresholds,
    ServiceLevelSettings,
    install_sighup,
    load_names,
    parse_names,
    syntax_error,
    tomllib,
    worse,
)
from mitelacd.logs import render
from mitelacd.testing import LogCapture, NamesRecorder, capture_log
from mitelacd.testing.fakes import FakeReactorFromThreads

#: The example of docs/names.md, every table in it.
EXAMPLE = """\
# Names for the Leeds floor.
[agents]
"1001" = "Ada Lovelace"                                   # a name alone, or:
"1002" = { name = "Grace Hopper", team = "Day", groups = ["610", "620"] }
"1003" = { team = "Night", groups = ["620"] }

[groups]
"610" = "Sales"
"620" = "Support"

[paths]
"860" = "Sales hotline"
"861" = "Support line"

[make_busy_reasons]
"05" = "Lunch"
"12" = "Training"

[dnd_reasons]
"01" = "Meeting"

[thresholds]                      # default for every queue: [warning, alarm]
waiting = [3, 6]
longest_wait = [60, 120]          # seconds

[thresholds.groups."610"]
longest_wait = [30, 90]

[thresholds.paths."860"]
waiting = [1, 2]
longest_wait = [20.5, 45]

[thresholds.agents]
ringing = [15, 30]
on_hold = [60, 180]
not_ready = [300, 900]
"""


def example() -> Names:
    return parse_names(EXAMPLE, "names.toml")


@pytest.fixture
def logged() -> Iterator[LogCapture]:
    with capture_log("mitelacd.floor.names") as capture:
        yield capture


# -- the file, read --------------------------------------------------------


def test_the_example_gives_every_field() -> None:
    names = example()
    assert names.source == "names.toml"
    assert dict(names.agents) == {
        "1001": AgentEntry("Ada Lovelace", None, ()),
        "1002": AgentEntry("Grace Hopper", "Day", ("610", "620")),
        "1003": AgentEntry(None, "Night", ("620",)),
    }
    assert dict(names.groups) == {"610": "Sales", "620": "Support"}
    assert dict(names.paths) == {"860": "Sales hotline", "861": "Support line"}
    assert dict(names.make_busy_reasons) == {5: "Lunch", 12: "Training"}
    assert dict(names.dnd_reasons) == {1: "Meeting"}
    assert names.default_thresholds == QueueThresholds(Limits(3, 6), Limits(60, 120))
    assert dict(names.group_thresholds) == {
        "610": QueueThresholds(Limits(3, 6), Limits(30, 90)),
    }
    assert dict(names.path_thresholds) == {
        "860": QueueThresholds(Limits(1, 2), Limits(20.5, 45)),
    }
    assert dict(names.agent_limits) == {
        "ringing": Limits(15, 30),
        "on_hold": Limits(60, 180),
        "not_ready": Limits(300, 900),
    }


def test_lookups() -> None:
    names = example()
    assert names.agent("1002") == AgentEntry("Grace Hopper", "Day", ("610", "620"))
    assert names.agent("9999") is None
    assert names.members("610") == ("1002",)
    assert names.members("620") == ("1002", "1003")
    assert names.members("630") == ()
    assert names.make_busy_reason(5) == "Lunch"
    assert names.make_busy_reason(6) is None
    assert names.make_busy_reason(None) is None
    assert names.dnd_reason(1) == "Meeting"
    assert names.dnd_reason(5) is None
    assert names.dnd_reason(None) is None
    assert names.summary() == "3 agents, 2 groups, 2 paths"


def test_the_names_cannot_be_changed_by_whoever_shows_them() -> None:
    names = example()
    with pytest.raises(TypeError):
        names.groups["610"] = "Other"  # type: ignore[index]


def test_a_name_alone_and_the_table_form_are_the_same_agent() -> None:
    alone = parse_names('[agents]\n"1001" = "Ada"\n', "f")
    table = parse_names('[agents]\n"1001" = { name = "Ada" }\n', "f")
    header = parse_names('[agents."1001"]\nname = "Ada"\n', "f")
    assert alone.agents == table.agents == header.agents == {"1001": AgentEntry("Ada")}


def test_an_agent_listing_a_group_twice_is_a_member_once() -> None:
    names = parse_names('[agents]\n"1001" = { groups = ["610", "610"] }\n', "f")
    assert names.agents["1001"].groups == ("610",)
    assert names.members("610") == ("1001",)


def test_numbers_are_kept_as_written() -> None:
    names = parse_names('[groups]\n"007" = "Bond"\n[agents]\n"0042" = "Z"\n', "f")
    assert dict(names.groups) == {"007": "Bond"}
    assert names.agent("0042") == AgentEntry("Z")
    assert names.agent("42") is None


def test_reason_codes_are_keyed_by_their_value() -> None:
    names = parse_names('[make_busy_reasons]\n"5" = "Lunch"\n"007" = "Secret"\n', "f")
    assert dict(names.make_busy_reasons) == {5: "Lunch", 7: "Secret"}


def test_an_empty_file_is_no_names_and_no_thresholds() -> None:
    names = parse_names("# nothing yet\n", "f")
    assert names == Names(source="f")
    assert names.default_thresholds == QueueThresholds(None, None)
    assert names.queue_level("group", "610", 99, 9999) == "ok"


def test_no_names_at_all() -> None:
    assert Names.empty() is NO_NAMES
    assert NO_NAMES.source is None
    assert not NO_NAMES.agents and not NO_NAMES.groups and not NO_NAMES.paths
    assert NO_NAMES.agent("1001") is None
    assert NO_NAMES.members("610") == ()
    assert NO_NAMES.make_busy_reason(5) is None
    assert NO_NAMES.dnd_reason(1) is None
    assert NO_NAMES.queue_level("path", "860", 1000, 100000) == "ok"
    assert NO_NAMES.agent_level("on_hold", 100000) == "ok"
    assert NO_NAMES.summary() == "0 agents, 0 groups, 0 paths"


def test_a_queue_table_overrides_the_default_key_by_key() -> None:
    names = parse_names(
        """\
[thresholds]
waiting = [3, 6]
longest_wait = [60, 120]
[thresholds.groups."610"]
longest_wait = [30, 90]
[thresholds.groups."620"]
waiting = [1, 2]
[thresholds.groups."630"]
[thresholds.paths."860"]
waiting = [5, 10]
longest_wait = [10, 20]
""",
        "f",
    )
    default = QueueThresholds(Limits(3, 6), Limits(60, 120))
    assert names.queue_thresholds("group", "610") == QueueThresholds(Limits(3, 6), Limits(30, 90))
    assert names.queue_thresholds("group", "620") == QueueThresholds(Limits(1, 2), Limits(60, 120))
    assert names.queue_thresholds("group", "630") == default
    assert names.queue_thresholds("group", "640") == default
    assert names.queue_thresholds("path", "860") == QueueThresholds(Limits(5, 10), Limits(10, 20))
    assert names.queue_thresholds("path", "610") == default  # a group's table is not a path's


def test_without_a_default_a_queue_has_only_its_own_levels() -> None:
    names = parse_names('[thresholds.groups."610"]\nlongest_wait = [30, 90]\n', "f")
    assert names.default_thresholds == QueueThresholds(None, None)
    assert names.group_thresholds["610"] == QueueThresholds(None, Limits(30, 90))
    assert names.queue_level("group", "610", 500, 0) == "ok"
    assert names.queue_level("group", "610", 0, 90) == "alarm"
    assert names.queue_level("group", "620", 500, 500) == "ok"


def test_thresholds_may_be_written_as_dotted_keys() -> None:
    names = parse_names(
        "thresholds.waiting = [1, 2]\nthresholds.groups.610.waiting = [4, 5]\n", "f"
    )
    assert names.default_thresholds == QueueThresholds(Limits(1, 2), None)
    assert names.group_thresholds["610"] == QueueThresholds(Limits(4, 5), None)


# -- levels ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "level"),
    [
        (None, "ok"),
        (0, "ok"),
        (2, "ok"),
        (2.99, "ok"),
        (3, "warning"),
        (5, "warning"),
        (6, "alarm"),
        (600, "alarm"),
    ],
)
def test_limits_level_at_and_around_the_boundaries(value: float | None, level: str) -> None:
    assert Limits(3, 6).level(value) == level


def test_equal_levels_go_straight_to_alarm() -> None:
    assert Limits(5, 5).level(4) == "ok"
    assert Limits(5, 5).level(5) == "alarm"
    assert Limits(0, 0).level(0) == "alarm"


@pytest.mark.parametrize(
    ("warning", "alarm"),
    [(True, 2), (1, False), ("1", 2), (-1, 2), (1, float("nan")), (1, float("inf")), (7, 3)],
)
def test_limits_refuse_what_is_not_a_pair_of_levels(warning: Any, alarm: Any) -> None:
    with pytest.raises(ValueError, match=r"^Limits\("):
        Limits(warning, alarm)


def test_worse() -> None:
    assert worse("ok", "ok") == "ok"
    assert worse("ok", "warning") == worse("warning", "ok") == "warning"
    assert worse("alarm", "warning") == worse("warning", "alarm") == "alarm"


@pytest.mark.parametrize(
    ("kind", "number", "waiting", "longest", "level"),
    [
        # the default: waiting [3, 6], longest wait [60, 120]
        ("group", "620", 0, 0, "ok"),
        ("group", "620", 2, 59, "ok"),
        ("group", "620", 3, 0, "warning"),
        ("group", "620", 0, 60, "warning"),
        ("group", "620", 6, 0, "alarm"),
        ("group", "620", 0, 120, "alarm"),
        ("group", "620", 6, 60, "alarm"),  # the worse of the two
        ("group", "620", 3, 120, "alarm"),
        ("group", "620", None, None, "ok"),  # figures the PBX did not give
        ("group", "620", None, 120, "alarm"),
        ("path", "999", 5, 0, "warning"),
        # group 610: longest wait [30, 90], waiting from the default
        ("group", "610", 0, 29, "ok"),
        ("group", "610", 0, 30, "warning"),
        ("group", "610", 0, 90, "alarm"),
        ("group", "610", 3, 0, "warning"),
        ("group", "610", 6, 0, "alarm"),
        # path 860: waiting [1, 2], longest wait [20.5, 45]
        ("path", "860", 0, 20, "ok"),
        ("path", "860", 1, 0, "warning"),
        ("path", "860", 2, 0, "alarm"),
        ("path", "860", 0, 21, "warning"),
        ("path", "860", 0, 45, "alarm"),
        ("group", "860", 1, 21, "ok"),  # group 860 has the default
    ],
)
def test_queue_levels(
    kind: Any, number: str, waiting: int | None, longest: int | None, level: str
) -> None:
    assert example().queue_level(kind, number, waiting, longest) == level


@pytest.mark.parametrize(
    ("state", "seconds", "level"),
    [
        ("ringing", 14, "ok"),
        ("ringing", 15, "warning"),
        ("ringing", 30, "alarm"),
        ("on_hold", 179.9, "warning"),
        ("not_ready", 900, "alarm"),
        ("not_ready", None, "ok"),
        ("on_call", 100000, "ok"),  # no limit for it in the file
        ("logged_out", 100000, "ok"),
    ],
)
def test_agent_levels(state: Any, seconds: float | None, level: str) -> None:
    assert example().agent_level(state, seconds) == level


def test_every_limited_state_is_an_agent_state() -> None:
    assert set(LIMITED_STATES) == set(AGENT_STATES) - {"logged_out"}
    text = "[thresholds.agents]\n" + "".join(f"{s} = [1, 2]\n" for s in LIMITED_STATES)
    assert set(parse_names(text, "f").agent_limits) == set(LIMITED_STATES)


# -- a bad file names its line ---------------------------------------------

ERRORS = [
    # TOML itself
    ('[agents]\n"1001" = Ada\n', 2, "invalid value (column 10)"),
    ('[agents]\n"1001" = "Ada"\n"1001" = "Bob"\n', 3, "cannot overwrite a value (column 15)"),
    ('[agents]\n"1001" = "Ada', 2, "unterminated string (at the end of the file)"),
    # the tables
    (
        '[agents]\n"1001" = "Ada"\n\n[colours]\nred = 1\n',
        4,
        "unknown table [colours] (expected one of agents, groups, paths, make_busy_reasons, dnd_reasons, thresholds, service_level, smdr)",
    ),
    (
        'title = "Leeds"\n',
        1,
        "unknown table [title] (expected one of agents, groups, paths, make_busy_reasons, dnd_reasons, thresholds, service_level, smdr)",
    ),
    ('# names\nagents = ["1001"]\n', 2, "[agents] must be a table"),
    # agents
    ('[agents]\n"1001" = "Ada"\n"10a2" = "Bob"\n', 3, 'agent ID "10a2" is not 1 to 7 digits'),
    ('[agents]\n"12345678" = "Bob"\n', 2, 'agent ID "12345678" is not 1 to 7 digits'),
    ('[agents]\n"1001" = 7\n', 2, 'agent "1001" must be a name or a table with name, team, groups'),
    ('[agents]\n"1001" = ""\n', 2, 'agent "1001": name must be a non-empty string'),
    ('[agents]\n"1001" = { name = 7 }\n', 2, 'agent "1001": name must be a non-empty string'),
    (
        '[agents."1001"]\nteam = "Day"\nname = ["Ada"]\n',
        3,
        'agent "1001": name must be a non-empty string',
    ),
    (
        '[agents]\n"1001" = { name = "Ada", team = 2 }\n',
        2,
        'agent "1001": team must be a non-empty string',
    ),
    (
        '[agents]\n"1001" = { name = "Ada", colour = "red" }\n',
        2,
        'agent "1001": unknown key "colour" (expected name, team, groups)',
    ),
    (
        '[agents."1001"]\nname = "Ada"\n\ncolour = "red"\n',
        4,
        'agent "1001": unknown key "colour" (expected name, team, groups)',
    ),
    (
        '[agents]\n"1001" = { groups = "610" }\n',
        2,
        'agent "1001": groups must be a list of group numbers, like ["610", "620"]',
    ),
    (
        '[agents."1001"]\ngroups = [\n  610,\n]\n',
        2,
        'agent "1001": groups must be a list of group numbers, like ["610", "620"]',
    ),
    (
        '[agents]\n"1001" = { groups = ["610", "6100"] }\n',
        2,
        'group "6100" in the groups of agent "1001": a group number is three digits,'
        ' as the PBX sends it (like "610")',
    ),
    # groups, paths
    (
        '[groups]\n"610" = "Sales"\n"61a" = "Support"\n',
        3,
        'group "61a" in [groups]: a group number is three digits, as the PBX sends it (like "610")',
    ),
    (
        '[paths]\n"8600" = "Hotline"\n',
        2,
        'path "8600" in [paths]: a path number is three digits, as the PBX sends it (like "860")',
    ),
    ('[groups]\n"610" = { name = "Sales" }\n', 2, 'group "610": name must be a non-empty string'),
    ('[paths]\n"860" = "  "\n', 2, 'path "860": name must be a non-empty string'),
    # reasons
    ('[make_busy_reasons]\nlunch = "Lunch"\n', 2, 'make-busy reason code "lunch" is not a number'),
    ('[dnd_reasons]\n"-1" = "Meeting"\n', 2, 'DND reason code "-1" is not a number'),
    (
        '[make_busy_reasons]\n"05" = "Lunch"\n"5" = "Late lunch"\n',
        3,
        'make-busy reason code "5" is the same code as "05"',
    ),
    ('[dnd_reasons]\n"01" = 1\n', 2, 'DND reason "01": text must be a non-empty string'),
    # thresholds
    (
        "[thresholds]\nwaiting = [3, 6]\nwait = [1, 2]\n",
        3,
        '[thresholds]: unknown key "wait" (expected waiting, longest_wait, groups, paths, agents)',
    ),
    (
        "[thresholds]\nwaiting = 3\n",
        2,
        "[thresholds] waiting must be a pair of numbers [warning, alarm]",
    ),
    (
        "[thresholds]\nlongest_wait = [60, 120, 180]\n",
        2,
        "[thresholds] longest_wait must be a pair of numbers [warning, alarm]",
    ),
    (
        "[thresholds]\nwaiting = [true, 6]\n",
        2,
        "[thresholds] waiting must be a pair of numbers [warning, alarm]",
    ),
    (
        '[thresholds]\nwaiting = ["3", "6"]\n',
        2,
        "[thresholds] waiting must be a pair of numbers [warning, alarm]",
    ),
    (
        "[thresholds]\nwaiting = [3, nan]\n",
        2,
        "[thresholds] waiting must be a pair of numbers [warning, alarm]",
    ),
    ("[thresholds]\nwaiting = [-1, 6]\n", 2, "[thresholds] waiting must not be negative"),
    (
        "[thresholds]\nwaiting = [6, 3]\n",
        2,
        "[thresholds] waiting has its warning 6 above its alarm 3",
    ),
    ("[thresholds]\ngroups = 1\n", 2, "[thresholds.groups] must be a table"),
    ('[thresholds.groups]\n"610" = [1, 2]\n', 2, '[thresholds.groups."610"] must be a table'),
    (
        '[thresholds]\nwaiting = [3, 6]\n\n[thresholds.groups."6100"]\nwaiting = [1, 2]\n',
        4,
        'group "6100" in [thresholds.groups]: a group number is three digits,'
        ' as the PBX sends it (like "610")',
    ),
    (
        "[thresholds.paths.hotline]\nwaiting = [1, 2]\n",
        1,
        'path "hotline" in [thresholds.paths]: a path number is three digits,'
        ' as the PBX sends it (like "860")',
    ),
    (
        '[thresholds.groups."610"]\nwaiting = [1, 2]\nagents = [1, 2]\n',
        3,
        '[thresholds.groups."610"]: unknown key "agents" (expected waiting, longest_wait)',
    ),
    (
        '[thresholds.paths."860"]\n\nlongest_wait = [90, 30]\n',
        3,
        '[thresholds.paths."860"] longest_wait has its warning 90 above its alarm 30',
    ),
    (
        "[thresholds.agents]\nringing = [15, 30]\nlunch = [1, 2]\n",
        3,
        '[thresholds.agents]: unknown agent state "lunch" (expected ringing, on_call, on_hold, wrap_up, not_ready, available)',
    ),
    (
        "[thresholds.agents]\nlogged_out = [1, 2]\n",
        2,
        '[thresholds.agents]: unknown agent state "logged_out" (expected ringing, on_call, on_hold, wrap_up, not_ready, available)',
    ),
    (
        "[thresholds.agents]\non_hold = [60]\n",
        2,
        "[thresholds.agents] on_hold must be a pair of numbers [warning, alarm]",
    ),
    ('[thresholds]\nagents = "all"\n', 2, "[thresholds.agents] must be a table"),
]


@pytest.mark.parametrize(("text", "line", "problem"), ERRORS)
def test_a_bad_file_names_the_line_and_the_problem(text: str, line: int, problem: str) -> None:
    with pytest.raises(NamesError) as caught:
        parse_names(text, "/etc/mitelacd/names.toml")
    assert str(caught.value) == f"/etc/mitelacd/names.toml, line {line}: {problem}"
    assert (caught.value.source, caught.value.line, caught.value.problem) == (
        "/etc/mitelacd/names.toml",
        line,
        problem,
    )
    assert caught.value.detail == f"line {line}: {problem}"
    assert isinstance(caught.value, ValueError)


def test_a_toml_error_without_a_position_is_given_as_it_is() -> None:
    error = syntax_error(tomllib.TOMLDecodeError("nesting too deep"), "a = 1\n", "f")
    assert (str(error), error.line) == ("f: nesting too deep", None)


def test_the_line_is_found_in_the_right_table() -> None:
    # "610" is written three times: the bad one is the one under [thresholds.groups].
    text = """\
[groups]
"610" = "Sales"

[agents]
"1002" = { name = "Grace", groups = ["610"] }

[thresholds.groups]
"620" = { waiting = [1, 2] }
"610" = { waiting = [2, 1] }
"""
    with pytest.raises(NamesError, match=r"^f, line 9: \[thresholds.groups.\"610\"\] waiting "):
        parse_names(text, "f")


def test_multi_line_strings_and_comments_do_not_confuse_the_line() -> None:
    text = '''\
[agents]
"1001" = """Ada
[paths]
"1002" = "not a key"
"""
# "1002" = "a comment"
'1002' = { name = "Bob", shoe = 9 }
'''
    with pytest.raises(NamesError, match=r'^f, line 7: agent "1002": unknown key "shoe"'):
        parse_names(text, "f")


def test_a_key_written_with_escapes_is_found() -> None:
    with pytest.raises(NamesError, match=r"^f, line 3: agent ID \"10é\" is not 1 to 7 digits$"):
        parse_names('[agents]\n"1001" = "Ada"\n"10\\u00e9" = "Bob"\n', "f")


def test_an_error_in_a_multi_line_array_points_at_its_key() -> None:
    text = "[thresholds]\nlongest_wait = [\n  60,\n  -120,\n]\n"
    with pytest.raises(NamesError, match=r"^f, line 2: \[thresholds\] longest_wait must not"):
        parse_names(text, "f")


# -- group and path numbers are three digits, as the PBX sends them ---------

#: A number written short of its zeros would never match what the PBX sends.
#: The file's text, the line named, and the problem.
SHORT_NUMBERS = [
    (
        '[agents]\n"1001" = "Ada"\n\n[groups]\n"610" = "Sales"\n"7" = "Bond"\n',
        6,
        'group "7" in [groups]: write "007", as the PBX sends it',
    ),
    (
        '[paths]\n"860" = "Hotline"\n"86" = "Short"\n',
        3,
        'path "86" in [paths]: write "086", as the PBX sends it',
    ),
    (
        '[paths]\n"0860" = "Hotline"\n',
        2,
        'path "0860" in [paths]: write "860", as the PBX sends it',
    ),
    (
        '[thresholds]\nwaiting = [3, 6]\n\n[thresholds.groups."7"]\nwaiting = [1, 2]\n',
        4,
        'group "7" in [thresholds.groups]: write "007", as the PBX sends it',
    ),
    (
        '[thresholds.paths]\n"860" = { waiting = [1, 2] }\n"60" = { waiting = [1, 2] }\n',
        3,
        'path "60" in [thresholds.paths]: write "060", as the PBX sends it',
    ),
    (
        '[agents]\n"1001" = "Ada"\n"1002" = { name = "Grace", groups = ["610", "7"] }\n',
        3,
        'group "7" in the groups of agent "1002": write "007", as the PBX sends it',
    ),
    (
        # In a list over several lines, the line of the number itself.
        '[agents."1002"]\nname = "Grace"\ngroups = [\n  "610",\n  "61",\n]\n',
        5,
        'group "61" in the groups of agent "1002": write "061", as the PBX sends it',
    ),
]


@pytest.mark.parametrize(("text", "line", "problem"), SHORT_NUMBERS)
def test_a_number_short_of_three_digits_says_how_to_write_it(
    text: str, line: int, problem: str
) -> None:
    with pytest.raises(NamesError) as caught:
        parse_names(text, "/etc/mitelacd/names.toml")
    assert (caught.value.line, caught.value.problem) == (line, problem)
    assert str(caught.value) == f"/etc/mitelacd/names.toml, line {line}: {problem}"


def test_the_number_written_as_the_pbx_sends_it_is_taken() -> None:
    names = parse_names(
        '[groups]\n"007" = "Bond"\n[paths]\n"086" = "Short"\n'
        '[agents]\n"1001" = { groups = ["007"] }\n'
        '[thresholds.groups."007"]\nwaiting = [1, 2]\n',
        "f",
    )
    assert dict(names.groups) == {"007": "Bond"} and dict(names.paths) == {"086": "Short"}
    assert names.members("007") == ("1001",)
    assert names.queue_level("group", "007", 2, None) == "alarm"


def test_the_line_of_a_short_number_is_where_it_is_first_written_under_its_table() -> None:
    # "7" is written in [agents] first; the error is of the one under [groups].
    text = '[agents]\n"1001" = { groups = ["007"] }\n"7" = "Ada"\n\n[groups]\n"7" = "Bond"\n'
    with pytest.raises(NamesError, match=r'^f, line 6: group "7" in \[groups\]: write "007"'):
        parse_names(text, "f")


# -- [service_level] and [smdr]: the SMDR figures' settings ------------------

SMDR_SETTINGS = """\
[paths]
"860" = "Sales hotline"

[service_level]
seconds = 15
short_abandon_seconds = 4

[service_level.paths."860"]
seconds = 30

[service_level.paths."001"]
seconds = 60

[smdr]
confirmed = true
"""


def test_the_smdr_settings_are_read() -> None:
    names = parse_names(SMDR_SETTINGS, "f")
    assert names.service_level == ServiceLevelSettings(15, 4, {"860": 30, "001": 60})
    assert names.smdr_confirmed is True
    assert names.service_level.target("860") == 30
    assert names.service_level.target("001") == 60
    assert names.service_level.target("870") == 15
    assert names.summary() == (
        "0 agents, 0 groups, 1 paths;"
        " SMDR: service level 15 s (2 paths their own), short abandon 4 s, confirmed"
    )
    with pytest.raises(TypeError):
        names.service_level.paths["870"] = 5  # type: ignore[index]


def test_without_the_smdr_tables_the_defaults_hold() -> None:
    for names in (NO_NAMES, example(), parse_names("", "f")):
        assert names.service_level == DEFAULT_SERVICE_LEVEL
        assert names.service_level == ServiceLevelSettings(20, 6, {})
        assert names.service_level.target("860") == 20
        assert names.smdr_confirmed is False
    assert (SERVICE_LEVEL_SECONDS, SHORT_ABANDON_SECONDS) == (20, 6)
    # The summary says nothing of them while the file leaves them alone.
    assert example().summary() == "3 agents, 2 groups, 2 paths"


@pytest.mark.parametrize(
    ("text", "level", "confirmed", "summary"),
    [
        # A table of its own with only a part: the rest stays the default.
        ("[service_level]\nshort_abandon_seconds = 0\n", ServiceLevelSettings(20, 0), False,
         "SMDR: service level 20 s, short abandon 0 s, provisional"),
        ("[smdr]\nconfirmed = false\n", DEFAULT_SERVICE_LEVEL, False, None),
        ("[smdr]\n", DEFAULT_SERVICE_LEVEL, False, None),
        ("[smdr]\nconfirmed = true\n", DEFAULT_SERVICE_LEVEL, True,
         "SMDR: service level 20 s, short abandon 6 s, confirmed"),
        # Dotted keys, the limits of the range, and a path table with no seconds.
        ("service_level.seconds = 3600\nservice_level.paths.860.seconds = 1\n",
         ServiceLevelSettings(3600, 6, {"860": 1}), False,
         "SMDR: service level 3600 s (1 path its own), short abandon 6 s, provisional"),
        ('[service_level.paths."860"]\n', DEFAULT_SERVICE_LEVEL, False, None),
        ('[service_level]\npaths = { "860" = { seconds = 25 } }\n',
         ServiceLevelSettings(20, 6, {"860": 25}), False,
         "SMDR: service level 20 s (1 path its own), short abandon 6 s, provisional"),
    ],
)  # fmt: skip
def test_smdr_settings_one_by_one(
    text: str, level: ServiceLevelSettings, confirmed: bool, summary: str | None
) -> None:
    names = parse_names(text, "f")
    assert names.service_level == level
    assert names.smdr_confirmed is confirmed
    plain = "0 agents, 0 groups, 0 paths"
    assert names.summary() == (plain if summary is None else f"{plain}; {summary}")


SMDR_ERRORS = [
    (
        "[service_level]\nseconds = 20\ntarget = 30\n",
        3,
        '[service_level]: unknown key "target" (expected seconds, short_abandon_seconds, paths)',
    ),
    (
        "[service_level]\nseconds = 20.5\n",
        2,
        "[service_level] seconds must be whole seconds from 1 to 3600, not 20.5",
    ),
    (
        "[service_level]\nseconds = 20.0\n",
        2,
        "[service_level] seconds must be whole seconds from 1 to 3600, not 20.0",
    ),
    (
        "[service_level]\nseconds = 0\n",
        2,
        "[service_level] seconds must be whole seconds from 1 to 3600, not 0",
    ),
    (
        "[service_level]\nseconds = 3601\n",
        2,
        "[service_level] seconds must be whole seconds from 1 to 3600, not 3601",
    ),
    (
        '[service_level]\nseconds = "20"\n',
        2,
        '[service_level] seconds must be whole seconds from 1 to 3600, not "20"',
    ),
    (
        "[service_level]\nseconds = true\n",
        2,
        "[service_level] seconds must be whole seconds from 1 to 3600, not true",
    ),
    (
        "[service_level]\nseconds = [20]\n",
        2,
        "[service_level] seconds must be whole seconds from 1 to 3600, not a list",
    ),
    (
        "[service_level]\n\nshort_abandon_seconds = -1\n",
        3,
        "[service_level] short_abandon_seconds must be whole seconds from 0 to 3600, not -1",
    ),
    ('service_level = 20\n', 1, "[service_level] must be a table"),
    ("[service_level]\npaths = 30\n", 2, "[service_level.paths] must be a table"),
    (
        '[service_level.paths]\n"860" = 30\n',
        2,
        '[service_level.paths."860"] must be a table with seconds',
    ),
    (
        '[service_level.paths."860"]\nseconds = 30\nshort_abandon_seconds = 3\n',
        3,
        '[service_level.paths."860"]: unknown key "short_abandon_seconds" (expected seconds)',
    ),
    (
        '[service_level]\nseconds = 20\n\n[service_level.paths."860"]\nseconds = 0\n',
        5,
        '[service_level.paths."860"] seconds must be whole seconds from 1 to 3600, not 0',
    ),
    (
        '[service_level.paths."8600"]\nseconds = 30\n',
        1,
        'path "8600" in [service_level.paths]: a path number is three digits,'
        ' as the PBX sends it (like "860")',
    ),
    (
        '[service_level.paths.P860]\nseconds = 30\n',
        1,
        'path "P860" in [service_level.paths]: a path number is three digits,'
        ' as the PBX sends it (like "860")',
    ),
    (
        '[paths]\n"860" = "Hotline"\n\n[service_level.paths."86"]\nseconds = 30\n',
        4,
        'path "86" in [service_level.paths]: write "086", as the PBX sends it',
    ),
    ("[smdr]\nconfirmed = 1\n", 2, "[smdr] confirmed must be true or false, not 1"),
    ('[smdr]\nconfirmed = "yes"\n', 2, '[smdr] confirmed must be true or false, not "yes"'),
    ("[smdr]\nconfirm = true\n", 2, '[smdr]: unknown key "confirm" (expected confirmed)'),
    ("smdr = true\n", 1, "[smdr] must be a table"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "line", "problem"), SMDR_ERRORS)
def test_a_bad_smdr_setting_names_the_line_and_the_problem(
    text: str, line: int, problem: str
) -> None:
    with pytest.raises(NamesError) as caught:
        parse_names(text, "/etc/mitelacd/names.toml")
    assert (caught.value.line, caught.value.problem) == (line, problem)
    assert str(caught.value) == f"/etc/mitelacd/names.toml, line {line}: {problem}"


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(seconds=0), dict(seconds=3601), dict(seconds=True), dict(seconds=2.5),
        dict(short_abandon_seconds=-1), dict(paths={"860": 0}),
    ],
)  # fmt: skip
def test_service_level_settings_refuse_what_the_file_would(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"^ServiceLevelSettings .* must be whole seconds"):
        ServiceLevelSettings(**kwargs)


# -- load_names ------------------------------------------------------------


def test_load_names_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "names.toml"
    path.write_text(EXAMPLE, encoding="utf-8")
    names = load_names(str(path))
    assert names.source == str(path)
    assert names == parse_names(EXAMPLE, str(path))


def test_load_names_reads_utf8_with_or_without_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "names.toml"
    path.write_bytes('[agents]\n"1001" = "Zoë Ørsted"\n'.encode())
    assert load_names(str(path)).agents["1001"].name == "Zoë Ørsted"
    path.write_bytes(b"\xef\xbb\xbf" + '[agents]\n"1001" = "Zoë"\n'.encode())
    assert load_names(str(path)).agents["1001"].name == "Zoë"


def test_a_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "names.toml")
    with pytest.raises(NamesError) as caught:
        load_names(path)
    assert str(caught.value) == f"{path}: cannot read the names file: No such file or directory"
    assert caught.value.line is None
    assert caught.value.detail == "cannot read the names file: No such file or directory"


def test_a_folder_is_not_a_names_file(tmp_path: Path) -> None:
    with pytest.raises(NamesError, match=r": cannot read the names file: Is a directory$"):
        load_names(str(tmp_path))


def test_an_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "names.toml"
    path.write_text(EXAMPLE)

    def refuse(*args: object, **kwargs: object) -> object:
        raise PermissionError(13, "Permission denied")

    # Root reads any file whatever its mode: the refusal is injected.
    monkeypatch.setattr("mitelacd.floor.names.open", refuse, raising=False)
    with pytest.raises(NamesError, match=r": cannot read the names file: Permission denied$"):
        load_names(str(path))


def test_a_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "names.toml"
    path.write_bytes(b'[agents]\n"1001" = "Ada"\n"1002" = "Zo\xeb"\n')
    with pytest.raises(NamesError) as caught:
        load_names(str(path))
    assert str(caught.value) == f"{path}, line 3: not UTF-8 text (byte 0xeb)"


# -- reloading -------------------------------------------------------------


def write(path: Path, text: str, bump: int = 1) -> None:
    """Write ``text`` and move the modification time on, as a later save would."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    later = before + bump * 1_000_000_000
    os.utime(path, ns=(later, later))


@pytest.fixture
def names_file(tmp_path: Path) -> Path:
    path = tmp_path / "names.toml"
    write(path, EXAMPLE)
    return path


def watcher(
    path: Path, clock: Clock, floor: Callable[[Names], None], **kwargs: Any
) -> NamesWatcher:
    return NamesWatcher(
        str(path), clock, floor, interval=1.0, names=load_names(str(path)), **kwargs
    )


def test_a_change_on_disk_is_reloaded_within_the_interval(
    names_file: Path, logged: LogCapture
) -> None:
    clock, floor = Clock(), NamesRecorder()
    service = watcher(names_file, clock, floor)
    service.startService()
    try:
        assert floor.applied == []  # the names given are the file as it is
        write(names_file, EXAMPLE.replace('"Sales"', '"Inside sales"'))
        clock.advance(1)
        assert [n.groups["610"] for n in floor.applied] == ["Inside sales"]
        assert service.names is floor.applied[-1]
        assert service.reloads == 1
        assert logged.lines(LogLevel.info) == [
            f"names reloaded from {names_file} (changed on disk): 3 agents, 2 groups, 2 paths"
        ]
    finally:
        service.stopService()


def test_a_same_size_save_and_a_rename_over_the_file_are_changes(names_file: Path) -> None:
    clock, floor = Clock(), NamesRecorder()
    service = watcher(names_file, clock, floor)
    service.startService()
    try:
        write(names_file, EXAMPLE.replace('"Sales"', '"Sale!"'))  # same size, later time
        clock.advance(1)
        assert len(floor.applied) == 1
        replacement = names_file.with_name("names.toml.new")
        replacement.write_text(EXAMPLE)
        info = names_file.stat()
        os.utime(replacement, ns=(info.st_atime_ns, info.st_mtime_ns))
        os.replace(replacement, names_file)  # same size and time: only the inode differs
        clock.advance(1)
        assert len(floor.applied) == 2
        assert floor.applied[-1].groups["610"] == "Sales"
    finally:
        service.stopService()


def test_nothing_is_reloaded_while_the_file_is_unchanged(
    names_file: Path, logged: LogCapture
) -> None:
    clock, floor = Clock(), NamesRecorder()
    service = watcher(names_file, clock, floor)
    service.startService()
    try:
        for _ in range(30):
            clock.advance(1)
        assert floor.applied == []
        assert service.reloads == 0
        assert logged.lines() == []
    finally:
        service.stopService()
    assert clock.getDelayedCalls() == []  # polling stops with the service


def test_without_names_the_first_poll_loads_the_file(names_file: Path, logged: LogCapture) -> None:
    clock, floor = Clock(), NamesRecorder()
    service = NamesWatcher(str(names_file), clock, floor)
    assert service.names is NO_NAMES
    service.startService()
    try:
        assert len(floor.applied) == 1
        assert floor.applied[0].groups["610"] == "Sales"
        clock.advance(1)
        assert len(floor.applied) == 1
    finally:
        service.stopService()


def test_a_bad_reload_keeps_the_old_names_and_warns_once(
    names_file: Path, logged: LogCapture
) -> None:
    clock, floor = Clock(), NamesRecorder()
    service = watcher(names_file, clock, floor)
    before = service.names
    service.startService()
    try:
        write(names_file, EXAMPLE.replace("waiting = [3, 6]", "waiting = [6, 3]"))
        for _ in range(10):
            clock.advance(1)
        assert floor.applied == []
        assert service.names is before
        assert logged.lines(LogLevel.warn) == [
            f"names file {names_file} not reloaded (changed on disk): line 23:"
            " [thresholds] waiting has its warning 6 above its alarm 3;"
            " keeping the names loaded before"
        ]
        write(names_file, EXAMPLE.replace("waiting = [3, 6]", "waiting = [4, 6]"))
        clock.advance(1)
        assert len(floor.applied) == 1
        assert service.names.default_thresholds.waiting == Limits(4, 6)
        assert len(logged.lines(LogLevel.warn)) == 1
        assert logged.lines(LogLevel.info) == [
            f"names reloaded from {names_file} (changed on disk): 3 agents, 2 groups, 2 paths"
        ]
    finally:
        service.stopService()


def test_a_reload_with_a_short_number_keeps_the_old_names_and_names_the_line(
    names_file: Path, logged: LogCapture
) -> None:
    clock, floor = Clock(), NamesRecorder()
    service = watcher(names_file, clock, floor)
    before = service.names
    service.startService()
    try:
        write(names_file, EXAMPLE.replace('"620" = "Support"', '"62" = "Support"'))
        clock.advance(1)
        assert floor.applied == [] and service.names is before
        assert logged.lines(LogLevel.warn) == [
            f"names file {names_file} not reloaded (changed on disk): line 9:"
            ' group "62" in [groups]: write "062", as the PBX sends it;'
            " keeping the names loaded before"
        ]
    finally:
        service.stopService()


def test_smdr_settings_reload_and_a_bad_one_keeps_the_names_loaded_before(
    names_file: Path, logged: LogCapture
) -> None:
    clock, floor = Clock(), NamesRecorder()
    service = watcher(names_file, clock, floor)
    service.startService()
    try:
        write(names_file, EXAMPLE + "\n[service_level]\nseconds = 30\n[smdr]\nconfirmed = true\n")
        clock.advance(1)
        assert len(floor.applied) == 1
        good = service.names
        assert (good.service_level.seconds, good.smdr_confirmed) == (30, True)
        write(names_file, EXAMPLE + "\n[service_level]\nseconds = 30.5\n[smdr]\nconfirmed = true\n")
        for _ in range(5):
            clock.advance(1)
        assert len(floor.applied) == 1 and service.names is good
        assert logged.lines(LogLevel.warn) == [
            f"names file {names_file} not reloaded (changed on disk): line 39:"
            " [service_level] seconds must be whole seconds from 1 to 3600, not 30.5;"
            " keeping the names loaded before"
        ]
    finally:
        service.stopService()


def test_a_file_gone_warns_once_and_is_read_again_when_back(
    names_file: Path, logged: LogCapture
) -> None:
    clock, floor = Clock(), NamesRecorder()
    service = watcher(names_file, clock, floor)
    service.startService()
    try:
        names_file.unlink()
        for _ in range(10):
            clock.advance(1)
        assert logged.lines(LogLevel.warn) == [
            f"names file {names_file} cannot be read (No such file or directory);"
            " keeping the names loaded before"
        ]
        assert floor.applied == []
        assert service.names.agents  # still the names from before
        write(names_file, '[groups]\n"610" = "Back"\n')
        clock.advance(1)
        assert [dict(n.groups) for n in floor.applied] == [{"610": "Back"}]
        names_file.unlink()
        clock.advance(1)
        assert len(logged.lines(LogLevel.warn)) == 2  # gone again: said again
    finally:
        service.stopService()


def test_a_reload_asked_for_reads_the_file_even_unchanged(
    names_file: Path, logged: LogCapture
) -> None:
    clock, floor = Clock(), NamesRecorder()
    service = watcher(names_file, clock, floor)
    service.startService()
    try:
        assert service.reload("SIGHUP") is True
        assert len(floor.applied) == 1
        clock.advance(1)
        assert len(floor.applied) == 1  # the poll does not read it a second time
        names_file.unlink()
        assert service.reload("SIGHUP") is False
        assert logged.lines() == [
            f"names reloaded from {names_file} (SIGHUP): 3 agents, 2 groups, 2 paths",
            f"names file {names_file} not reloaded (SIGHUP): cannot read the names file:"
            " No such file or directory; keeping the names loaded before",
        ]
    finally:
        service.stopService()


def test_names_that_cannot_be_applied_are_logged_and_not_kept(
    names_file: Path, logged: LogCapture, logged_failures: list[dict[str, Any]]
) -> None:
    def refuse(names: Names) -> None:
        raise RuntimeError("no floor")

    service = watcher(names_file, Clock(), refuse)
    before = service.names
    assert service.reload("SIGHUP") is False
    assert service.names is before
    assert [render(e) for e in logged_failures] == [f"names from {names_file} could not be applied"]
    logged_failures.clear()


def wait_for(condition: Callable[[], bool]) -> None:
    """Let a signal sent to this process be handled (Python runs handlers between bytecodes)."""
    for _ in range(1000):
        if condition():
            return
        time.sleep(0.001)
    raise AssertionError("the signal was not handled")


def test_sighup_reloads_and_the_handler_is_put_back(names_file: Path, logged: LogCapture) -> None:
    clock, floor, fake = Clock(), NamesRecorder(), FakeReactorFromThreads()
    before = signal.getsignal(signal.SIGHUP)
    service = watcher(names_file, clock, floor, reactor=fake)
    service.startService()
    try:
        installed = signal.getsignal(signal.SIGHUP)
        assert callable(installed) and installed is not before
        os.kill(os.getpid(), signal.SIGHUP)
        wait_for(lambda: bool(fake.calls))
        assert floor.applied == []  # the handler only hands the reload to the reactor
        fake.run()
        assert len(floor.applied) == 1
        assert logged.lines(LogLevel.info) == [
            f"names reloaded from {names_file} (SIGHUP): 3 agents, 2 groups, 2 paths"
        ]
    finally:
        service.stopService()
    assert signal.getsignal(signal.SIGHUP) == before


def test_a_sighup_handed_over_just_before_the_stop_does_nothing(names_file: Path) -> None:
    floor, fake = NamesRecorder(), FakeReactorFromThreads()
    service = watcher(names_file, Clock(), floor, reactor=fake)
    service.startService()
    handler = signal.getsignal(signal.SIGHUP)
    assert callable(handler)
    handler(signal.SIGHUP, None)
    service.stopService()
    fake.run()
    assert floor.applied == []


@pytest_twisted.ensureDeferred
async def test_sighup_with_the_real_reactor(names_file: Path, logged: LogCapture) -> None:
    floor = NamesRecorder()
    before = signal.getsignal(signal.SIGHUP)
    # The reactor as the clock is the reactor for the signal too.
    service = NamesWatcher(
        str(names_file), reactor, floor, interval=3600, names=load_names(str(names_file))
    )
    service.startService()
    try:
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(500):
            if floor.applied:
                break
            await deferLater(reactor, 0.01, lambda: None)
        assert len(floor.applied) == 1
        assert logged.lines(LogLevel.info) == [
            f"names reloaded from {names_file} (SIGHUP): 3 agents, 2 groups, 2 paths"
        ]
    finally:
        service.stopService()
    assert signal.getsignal(signal.SIGHUP) == before


def test_sighup_is_left_alone_when_asked_or_without_a_reactor(names_file: Path) -> None:
    before = signal.getsignal(signal.SIGHUP)
    for service in (
        watcher(names_file, reactor, NamesRecorder(), sighup=False),  # type: ignore[arg-type]
        watcher(names_file, Clock(), NamesRecorder()),
    ):
        service.startService()
        try:
            assert service.reactor is None
            assert signal.getsignal(signal.SIGHUP) == before
        finally:
            service.stopService()


def test_a_handler_installed_since_is_not_taken_away() -> None:
    before = signal.getsignal(signal.SIGHUP)
    restore = install_sighup(FakeReactorFromThreads(), lambda why: None)  # type: ignore[arg-type]
    assert restore is not None

    def other(signum: int, frame: object) -> None:
        pass

    signal.signal(signal.SIGHUP, other)
    try:
        restore()
        assert signal.getsignal(signal.SIGHUP) is other
    finally:
        signal.signal(signal.SIGHUP, before)


def test_no_handler_is_installed_outside_the_main_thread() -> None:
    before = signal.getsignal(signal.SIGHUP)
    results: list[object] = []
    thread = threading.Thread(
        target=lambda: results.append(install_sighup(FakeReactorFromThreads(), print))  # type: ignore[arg-type]
    )
    thread.start()
    thread.join()
    assert results == [None]
    assert signal.getsignal(signal.SIGHUP) == before


def test_a_line_inside_a_multi_line_array_is_not_taken_for_a_table() -> None:
    text = "[thresholds]\nagents = [\n[1, 2]]\nwait = [1, 2]\n"
    with pytest.raises(NamesError, match=r'^f, line 4: \[thresholds\]: unknown key "wait"'):
        parse_names(text, "f")


# -- docs/names.md ---------------------------------------------------------

DOCS = Path(__file__).resolve().parent.parent / "docs" / "names.md"


def docs_example() -> str:
    text = DOCS.read_text(encoding="utf-8")
    return text.split("```toml\n", 1)[1].split("```", 1)[0]


def test_the_example_of_the_docs_is_complete_and_reads() -> None:
    names = parse_names(docs_example(), "/etc/mitelacd/names.toml")
    assert names.agents and names.groups and names.paths
    assert names.make_busy_reasons and names.dnd_reasons
    assert names.default_thresholds.waiting and names.default_thresholds.longest_wait
    assert names.group_thresholds and names.path_thresholds and names.agent_limits
    assert names.members("610") == ("1002", "1004")
    assert names.group_thresholds["610"].waiting == names.default_thresholds.waiting
    assert names.service_level == ServiceLevelSettings(20, 6, {"860": 30})
    assert names.smdr_confirmed is False
    summary = names.summary()
    assert summary == (
        "4 agents, 2 groups, 2 paths;"
        " SMDR: service level 20 s (1 path its own), short abandon 6 s, provisional"
    )
    # The docs show it wrapped over two lines.
    assert f"`{summary}`" in " ".join(DOCS.read_text(encoding="utf-8").split())


def test_the_errors_shown_in_the_docs_are_the_ones_given() -> None:
    text = DOCS.read_text(encoding="utf-8")
    example = docs_example()
    with pytest.raises(NamesError) as at_start:
        parse_names(
            example.replace('{ groups = ["610"] }', '{ grups = ["610"] }'),
            "/etc/mitelacd/names.toml",
        )
    assert f"--names: {at_start.value}\n" in text
    with pytest.raises(NamesError) as on_reload:
        parse_names(example.replace("waiting = [1, 3]", "waiting = [3, 1]"), "f")
    assert f"(changed on disk): {on_reload.value.detail}; keeping" in text


def test_the_short_number_shown_in_the_docs_is_the_one_given() -> None:
    text = DOCS.read_text(encoding="utf-8")
    written = "# the Leeds floor\n" * 10 + '[groups]\n"7" = "Bond"\n'
    with pytest.raises(NamesError) as at_start:
        parse_names(written, "/etc/mitelacd/names.toml")
    assert at_start.value.line == 12
    assert f"--names: {at_start.value}\n" in text
