"""The names file's SMDR settings, as the SMDR figures take them (state-model §8).

``smdr_settings`` hands ``[service_level]`` and ``[smdr]`` to ``SmdrDay``;
the path keys the names file takes are the paths the SMDR records send, so
a path's own target is the one its calls are counted against.
"""

from __future__ import annotations

import datetime

import pytest

from mitelacd.floor import smdr as floor_smdr
from mitelacd.floor.names import (
    NO_NAMES,
    SERVICE_LEVEL_SECONDS,
    SHORT_ABANDON_SECONDS,
    parse_names,
)
from mitelacd.floor.smdr import SmdrRecord, parse_smdr
from mitelacd.reports import smdrcalls
from mitelacd.reports.smdrcalls import PROVISIONAL_FIGURES, SmdrDay, SmdrSettings
from mitelacd.reports.smdrsettings import smdr_settings

UTC = datetime.timezone.utc

NAMES = """\
[service_level]
seconds = 15
short_abandon_seconds = 4

[service_level.paths."860"]
seconds = 30

[service_level.paths."001"]
seconds = 2

[smdr]
confirmed = true
"""


def test_the_defaults_are_the_figures_defaults() -> None:
    assert smdr_settings(NO_NAMES) == SmdrSettings()
    assert smdr_settings(parse_names("", "f")) == SmdrSettings()
    assert SERVICE_LEVEL_SECONDS == smdrcalls.SERVICE_LEVEL_SECONDS == 20
    assert SHORT_ABANDON_SECONDS == floor_smdr.SHORT_ABANDON_SECONDS == 6


def test_the_file_settings_are_handed_on() -> None:
    settings = smdr_settings(parse_names(NAMES, "f"))
    assert settings.service_level_seconds == 15
    assert settings.short_abandon_seconds == 4
    assert dict(settings.path_service_level_seconds) == {"860": 30, "001": 2}
    assert settings.confirmed is True
    assert (settings.target("860"), settings.target("001"), settings.target("870")) == (30, 2, 15)
    with pytest.raises(TypeError):
        settings.path_service_level_seconds["870"] = 1  # type: ignore[index]


def lay(at: dict[int, str]) -> str:
    """A 90-column standard record (smdr-protocol.md §3.1), texts at 1-based columns."""
    line = [" "] * 90
    for column, text in at.items():
        line[column - 1 : column - 1 + len(text)] = text
    return "".join(line)


def answered(path_token: str, tta: str, calling: str) -> str:
    return lay({2: "03/11", 8: "08:16", 15: "00:02:14", 24: calling, 30: tta,
        34: f"{path_token} 610 610", 62: "1001", 86: "001"})  # fmt: skip


def abandoned(duration: str, calling: str) -> str:
    return lay({2: "03/11", 8: "08:17", 15: duration, 24: calling, 30: "***",
        34: "P870 610", 86: "001"})  # fmt: skip


@pytest.mark.parametrize(("token", "path"), [("P860", "860"), ("P001", "001"), ("P870", "870")])
def test_the_path_a_record_sends_is_the_key_the_file_takes(token: str, path: str) -> None:
    record = parse_smdr(answered(token, "004", "T012"))
    assert isinstance(record, SmdrRecord)
    assert record.path == path
    # The same text the names file takes under [service_level.paths] (three digits).
    parse_names(f'[service_level.paths."{path}"]\nseconds = 5\n', "f")


def test_each_path_is_counted_against_its_own_target_and_the_file_threshold() -> None:
    day = SmdrDay(datetime.time(0), UTC, smdr_settings(parse_names(NAMES, "f")))
    received = datetime.datetime(2024, 3, 11, 8, 20, tzinfo=UTC).timestamp()
    lines = [
        answered("P860", "025", "T001"),  # within 860's 30 s
        answered("P001", "003", "T002"),  # not within 001's 2 s
        answered("P870", "015", "T003"),  # within the default 15 s
        answered("P870", "016", "T004"),  # not within it
        abandoned("00:00:04", "T005"),  # a short abandon at the file's 4 s
        abandoned("00:00:05", "T006"),  # an abandon
    ]
    assert [day.add(parse_smdr(line), received) for line in lines] == ["call"] * 6
    found = {f.path: f for f in day.figures(received)}
    assert {p: (f.service_level_seconds, f.answered_within_target) for p, f in found.items()} == {
        "001": (2, 0),
        "860": (30, 1),
        "870": (15, 1),
    }
    assert (found["870"].short_abandoned, found["870"].abandoned) == (1, 1)
    # confirmed: nothing is provisional
    assert {f.provisional for f in found.values()} == {()}


def test_unconfirmed_figures_are_provisional() -> None:
    day = SmdrDay(datetime.time(0), UTC, smdr_settings(parse_names("[smdr]\n", "f")))
    received = datetime.datetime(2024, 3, 11, 8, 20, tzinfo=UTC).timestamp()
    day.add(parse_smdr(answered("P860", "025", "T001")), received)
    (interval,) = day.figures(received)
    assert interval.provisional == PROVISIONAL_FIGURES
    assert (interval.service_level_seconds, interval.answered_within_target) == (20, 0)
