"""SMDR records into calls and per-path interval figures, against state-model.md §8.

Every record is a real SMDR line in the standard layout of smdr-protocol.md
§3.1 (one kind with the §3.5 OLI tail), read by the real parser. Expected
figures are worked out by hand. Times are UTC on 11 March 2024 unless a test
says otherwise; the report day starts at 00:00.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from mitelacd.floor.smdr import parse_smdr
from mitelacd.reports.smdrcalls import (
    Added,
    PathInterval,
    SmdrDay,
    SmdrSettings,
    record_date,
)
from mitelacd.testing.smdrlines import abandoned_line as abandon
from mitelacd.testing.smdrlines import standard_line as line

UTC = datetime.timezone.utc
DAY = datetime.date(2024, 3, 11)


def at(hhmm: str, day: datetime.date = DAY) -> float:
    """Unix time of ``HH:MM`` (or ``HH:MM:SS``) UTC on ``day``."""
    when = datetime.time.fromisoformat(hhmm)
    return datetime.datetime.combine(day, when, tzinfo=UTC).timestamp()


def with_oli(body: str, call_id: str, sequence: str) -> str:
    """``body`` with the ANI/DNIS tail (§3.4) and the OLI tail (§3.5): 131 columns."""
    return f"{body} {'6135550142':<10} {'5550100':<10} {call_id}{sequence} {'':8}"


def test_the_line_helper_lays_out_the_documents_record() -> None:
    s1 = (
        " 03/11 08:16  00:02:14 T012  004 P860 610 611 610            1001                    001  "
    )
    assert line("08:16") == s1
    assert len(with_oli(s1, "A0010788", "A")) == 131


Events = list[tuple[str, str]]


def run(events: Events, settings: SmdrSettings | None = None) -> tuple[SmdrDay, list[Added]]:
    day = SmdrDay(datetime.time(0, 0), UTC, settings)
    added = [day.add(parse_smdr(text + "\r\n"), at(received)) for text, received in events]
    return day, added


def table(figures: list[PathInterval]) -> dict[tuple[str, str], PathInterval]:
    """Figures by (path, interval start as HH:MM UTC)."""
    return {
        (f.path, datetime.datetime.fromtimestamp(f.start, UTC).strftime("%H:%M")): f
        for f in figures
    }


def check(figures: list[PathInterval], expected: dict[tuple[str, str], dict[str, Any]]) -> None:
    found = table(figures)
    assert sorted(found) == sorted(expected)
    for key, values in expected.items():
        assert {name: getattr(found[key], name) for name in values} == values, key


ZERO = dict(
    offered=0, answered=0, abandoned=0, short_abandoned=0, interflowed=0, requeued=0,
    unavailable=0, unclassified=0, answered_within_target=0,
)  # fmt: skip


def counts(**values: Any) -> dict[str, Any]:
    return {**ZERO, **values}


# One table row per rule of §8: records in arrival order, the settings, the
# figures they make. ---------------------------------------------------------

CASES: list[tuple[str, Events, SmdrSettings, dict[tuple[str, str], dict[str, Any]]]] = [
    (
        "plain answered call",
        [(line("08:16", tta="004"), "08:19")],
        SmdrSettings(),
        {
            ("860", "08:15"): counts(
                offered=1, answered=1, answered_within_target=1,
                service_level_percent=100.0, average_time_to_answer_seconds=4.0,
                time_to_answer_seconds=4, service_level_seconds=20,
            ),
        },
    ),
    (
        "answered after 25 s against the 20 s target",
        [(line("08:16", tta="025"), "08:19")],
        SmdrSettings(),
        {
            ("860", "08:15"): counts(
                offered=1, answered=1, answered_within_target=0,
                service_level_percent=0.0, average_time_to_answer_seconds=25.0,
                service_level_seconds=20,
            ),
        },
    ),
    (
        "answered after 25 s, path 860 has a 30 s target, 870 the default",
        [
            (line("08:16", tta="025"), "08:19"),
            (line("08:16", tta="025", digits="P870 620 620", calling="T013"), "08:19"),
        ],
        SmdrSettings(path_service_level_seconds={"860": 30}),
        {
            ("860", "08:15"): counts(
                offered=1, answered=1, answered_within_target=1,
                service_level_percent=100.0, service_level_seconds=30,
            ),
            ("870", "08:15"): counts(
                offered=1, answered=1, answered_within_target=0,
                service_level_percent=0.0, service_level_seconds=20,
            ),
        },
    ),
    (
        "answered exactly at the target counts within it",
        [(line("08:16", tta="020"), "08:19")],
        SmdrSettings(),
        {("860", "08:15"): counts(offered=1, answered=1, answered_within_target=1)},
    ),
    (
        "abandoned after 7 s: a long abandon",
        [(abandon("08:17", "00:00:07"), "08:18")],
        SmdrSettings(),
        {
            ("860", "08:15"): counts(
                offered=1, abandoned=1,
                service_level_percent=0.0, average_time_to_answer_seconds=None,
            ),
        },
    ),
    (
        "abandoned after 6 s: a short abandon, not in abandoned",
        [(abandon("08:17", "00:00:06"), "08:18")],
        SmdrSettings(),
        {
            ("860", "08:15"): counts(
                offered=1, short_abandoned=1,
                service_level_percent=None, average_time_to_answer_seconds=None,
            ),
        },
    ),
    (
        "abandoned after 6 s with a 5 s threshold: a long abandon",
        [(abandon("08:17", "00:00:06"), "08:18")],
        SmdrSettings(short_abandon_seconds=5),
        {("860", "08:15"): counts(offered=1, abandoned=1, service_level_percent=0.0)},
    ),
    (
        "interflowed (§9.2 S4)",
        [(abandon("08:20", "00:01:05", transfer="I", third="2500"), "08:21")],
        SmdrSettings(),
        {("860", "08:15"): counts(offered=1, interflowed=1, service_level_percent=0.0)},
    ),
    (
        "queue unavailable (§9.2 S11)",
        [(abandon("08:25", "00:00:00", transfer="U", third="2600"), "08:25")],
        SmdrSettings(),
        {("860", "08:15"): counts(offered=1, unavailable=1)},
    ),
    (
        "requeued, no later record yet: the call's last record is a requeue",
        [(line("08:30", tta="***", called="1002", transfer="R", duration="00:00:22"), "08:31")],
        SmdrSettings(),
        {("860", "08:30"): counts(offered=1, requeued=1, average_time_to_answer_seconds=None)},
    ),
    (
        "requeued then answered: one offered call, answered",
        [
            (line("08:30", tta="***", called="1002", transfer="R", duration="00:00:22"), "08:31"),
            (line("08:30", tta="030", called="1003", duration="00:03:00"), "08:34"),
        ],
        SmdrSettings(),
        {
            ("860", "08:30"): counts(
                offered=1, answered=1, requeued=0, answered_within_target=0,
                service_level_percent=0.0, average_time_to_answer_seconds=30.0,
            ),
        },
    ),
    (
        "answered then transferred: one call, answered, time to answer of the first answer",
        [
            (
                line("09:24", tta="003", called="1011", transfer="T", third="1405",
                     digits="P001 100 100", calling="T201", duration="00:00:59"),
                "09:25",
            ),
            (
                line("09:24", tta="015", called="1405", digits="P001 100 100",
                     calling="T201", duration="00:04:00"),
                "09:29",
            ),
        ],  # fmt: skip
        SmdrSettings(),
        {
            ("001", "09:15"): counts(
                offered=1, answered=1, answered_within_target=1,
                average_time_to_answer_seconds=3.0, service_level_percent=100.0,
            ),
        },
    ),
    (
        "requeued, then abandoned: one offered call, abandoned, not requeued",
        [
            (line("08:30", tta="***", called="1002", transfer="R", duration="00:00:22"), "08:31"),
            (abandon("08:30", "00:01:10"), "08:32"),
        ],
        SmdrSettings(),
        {
            ("860", "08:30"): counts(
                offered=1, abandoned=1, service_level_percent=0.0,
                average_time_to_answer_seconds=None,
            ),
        },
    ),
    (
        "requeued twice, then answered: one call, answered, its time to answer the answer's",
        [
            (line("08:30", tta="***", called="1002", transfer="R", duration="00:00:22"), "08:31"),
            (line("08:30", tta="***", called="1004", transfer="R", duration="00:00:40"), "08:32"),
            (line("08:30", tta="012", called="1003", duration="00:02:00"), "08:35"),
        ],
        SmdrSettings(),
        {
            ("860", "08:30"): counts(
                offered=1, answered=1, answered_within_target=1,
                service_level_percent=100.0, average_time_to_answer_seconds=12.0,
            ),
        },
    ),
    (
        "answered, transferred, and the transfer target's record: one call, answered",
        [
            (line("08:40", tta="006", called="1001", transfer="T", third="1405"), "08:42"),
            (line("08:40", tta="006", called="1001", transfer="X", third="1406"), "08:43"),
        ],
        SmdrSettings(),
        {
            ("860", "08:30"): counts(
                offered=1, answered=1, answered_within_target=1,
                average_time_to_answer_seconds=6.0,
            ),
        },
    ),
    (
        "two calls on one trunk in different minutes are two calls",
        [
            (abandon("08:16", "00:00:09"), "08:17"),
            (line("08:17", tta="012"), "08:20"),
        ],
        SmdrSettings(),
        {
            ("860", "08:15"): counts(
                offered=2, answered=1, abandoned=1, answered_within_target=1,
                service_level_percent=50.0, average_time_to_answer_seconds=12.0,
            ),
        },
    ),
    (
        "a call that starts at 08:44 and is answered at 08:50 stays in 08:30",
        [(line("08:44", tta="040", duration="00:05:00"), "08:50")],
        SmdrSettings(),
        {("860", "08:30"): counts(offered=1, answered=1, average_time_to_answer_seconds=40.0)},
    ),
    (
        "mixed: short abandons leave the service level divisor",
        [
            (line("10:00", tta="005", calling="T001"), "10:05"),
            (line("10:01", tta="020", calling="T002"), "10:05"),
            (line("10:02", tta="021", calling="T003"), "10:05"),
            (abandon("10:03", "00:00:02", calling="T004"), "10:05"),
            (abandon("10:04", "00:00:40", calling="T005"), "10:05"),
        ],
        SmdrSettings(),
        {
            ("860", "10:00"): counts(
                offered=5, answered=3, short_abandoned=1, abandoned=1,
                answered_within_target=2, time_to_answer_seconds=46,
                service_level_percent=50.0, average_time_to_answer_seconds=15.333,
            ),
        },
    ),
    (
        "a path call that fits no rule: offered, outcome unclassified, never guessed",
        [(line("08:16", tta="", called=""), "08:19")],
        SmdrSettings(),
        {
            ("860", "08:15"): counts(
                offered=1, unclassified=1,
                service_level_percent=0.0, average_time_to_answer_seconds=None,
            ),
        },
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("events", "settings", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_figures_by_rule(
    events: Events, settings: SmdrSettings, expected: dict[tuple[str, str], dict[str, Any]]
) -> None:
    day, added = run(events, settings)
    assert added == ["call"] * len(events)
    check(day.figures(at("11:00")), expected)


# Grouping by OLI call identifier (§6.4, option 1) ------------------------------------

REQUEUE = line("08:44", tta="***", called="1002", transfer="R", duration="00:00:22")
ANSWER = line("08:45", tta="030", called="1003", duration="00:03:00")


def test_without_call_ids_records_of_different_minutes_are_different_calls() -> None:
    day, _ = run([(ANSWER, "08:49"), (REQUEUE, "08:50")])
    check(
        day.figures(at("09:00")),
        {
            ("860", "08:30"): counts(offered=1, requeued=1),
            ("860", "08:45"): counts(offered=1, answered=1),
        },
    )


def test_a_call_id_groups_records_ordered_by_sequence_and_bucketed_by_the_first() -> None:
    # The answer (sequence B) arrives before the requeue (sequence A): the
    # call starts with A, at 08:44, and its outcome is B's.
    day, added = run(
        [
            (with_oli(ANSWER, "A0010788", "B"), "08:49"),
            (with_oli(REQUEUE, "A0010788", "A"), "08:50"),
        ]
    )
    assert added == ["call", "call"]
    check(
        day.figures(at("09:00")),
        {
            ("860", "08:30"): counts(
                offered=1, answered=1, requeued=0, average_time_to_answer_seconds=30.0
            )
        },
    )


def test_a_call_interflowed_to_another_path_is_a_call_of_each() -> None:
    out = abandon("08:20", "00:01:05", transfer="I", third="2500")
    answered = line("08:20", tta="070", called="2001", digits="P870 620 620")
    day, _ = run(
        [(with_oli(out, "A0010790", "A"), "08:21"), (with_oli(answered, "A0010790", "B"), "08:25")]
    )
    check(
        day.figures(at("09:00")),
        {
            ("860", "08:15"): counts(offered=1, interflowed=1),
            ("870", "08:15"): counts(offered=1, answered=1, average_time_to_answer_seconds=70.0),
        },
    )


# Open intervals and late records (§8: open until 2 h after the end) ----------------


def test_late_records_revise_an_open_interval_and_not_a_closed_one() -> None:
    day, _ = run([(line("08:31", tta="004", calling="T001"), "08:33")])
    assert table(day.figures(at("08:40")))["860", "08:30"].open is True

    # 10:00: a call of 08:35 ends; the interval is revised.
    assert day.add(parse_smdr(line("08:35", tta="010", calling="T002")), at("10:00")) == "call"
    # 10:44:59, the last second it is open: one more lands.
    assert (
        day.add(parse_smdr(abandon("08:40", "00:00:30", calling="T003")), at("10:44:59")) == "call"
    )
    interval = table(day.figures(at("10:44:59")))["860", "08:30"]
    assert (interval.open, interval.offered, interval.answered, interval.abandoned) == (
        True, 3, 2, 1,
    )  # fmt: skip

    # 10:45: closed; a record for it is refused and counted.
    assert day.add(parse_smdr(line("08:36", tta="004", calling="T004")), at("10:45")) == "too_late"
    # So is the next record of a call it already holds.
    assert (
        day.add(
            parse_smdr(line("08:31", tta="004", calling="T001", transfer="T", third="1405")),
            at("11:00"),
        )
        == "too_late"
    )
    interval = table(day.figures(at("10:45")))["860", "08:30"]
    assert (interval.open, interval.offered, interval.answered, interval.abandoned) == (
        False, 3, 2, 1,
    )  # fmt: skip
    assert day.counts["too_late"] == 2


def test_a_late_record_opens_an_interval_that_had_no_calls() -> None:
    day, _ = run([(line("09:05", tta="004"), "09:06")])
    assert sorted(table(day.figures(at("09:10")))) == [("860", "09:00")]
    day.add(parse_smdr(line("08:50", tta="004", calling="T099")), at("10:30"))
    found = table(day.figures(at("10:30")))
    assert sorted(found) == [("860", "08:45"), ("860", "09:00")]
    assert (found["860", "08:45"].offered, found["860", "08:45"].open) == (1, True)
    assert found["860", "08:45"].end == at("09:00")


def test_pop_closed_hands_on_closed_intervals_and_forgets_them() -> None:
    day, _ = run([(line("08:16", tta="004"), "08:19"), (line("09:05", tta="004"), "09:06")])
    closed = day.pop_closed(at("10:30"))
    assert [(f.path, f.start, f.open, f.offered) for f in closed] == [
        ("860", int(at("08:15")), False, 1)
    ]
    assert sorted(table(day.figures(at("10:30")))) == [("860", "09:00")]


# Provisional until confirmed ----------------------------------------------------------


def test_figures_are_provisional_until_the_site_confirms() -> None:
    events = [(line("08:16"), "08:19")]
    provisional = run(events)[0].figures(at("09:00"))[0].provisional
    assert provisional == (
        "abandoned", "short_abandoned", "interflowed", "requeued", "unavailable",
        "service_level_percent", "average_time_to_answer_seconds",
    )  # fmt: skip
    confirmed = run(events, SmdrSettings(confirmed=True))[0].figures(at("09:00"))[0]
    assert confirmed.provisional == ()
    assert confirmed.answered == 1


# What is not a call -------------------------------------------------------------------


def test_unreadable_and_unplaced_lines_are_counted_not_guessed() -> None:
    day = SmdrDay(datetime.time(0, 0), UTC)
    internal = (
        " 03/11 10:05  00:00:32 2002      2001                      I 2001                    001  "
    )
    results = [
        day.add(parse_smdr(b"garbage\r\n"), at("10:06")),
        day.add(parse_smdr(b"\xff\xfe\r\n"), at("10:06")),
        day.add(parse_smdr(internal), at("10:06")),
        # 13/45 is no date: a path record that cannot be placed.
        day.add(parse_smdr(line("10:00", date="13/45")), at("10:06")),
        # a path token too wide to be a path (§6.2): unreadable path.
        day.add(parse_smdr(line("10:00", digits="P12345 610")), at("10:06")),
    ]
    assert results == ["unreadable", "unreadable", "not_a_path_call", "unplaced", "unplaced"]
    assert day.figures(at("10:06")) == []
    assert day.counts == {
        "call": 0, "unreadable": 2, "not_a_path_call": 1, "unplaced": 2, "too_late": 0,
        "unclassified": 3,
    }  # fmt: skip


def test_a_path_record_that_fits_no_rule_is_counted_unclassified() -> None:
    day, added = run([(line("08:16", tta="", called=""), "08:19"), (line("08:17"), "08:19")])
    assert added == ["call", "call"]
    assert day.counts["unclassified"] == 1
    assert table(day.figures(at("08:20")))["860", "08:15"].unclassified == 1


#: Lines that are no record: counted as unreadable, and no figure moves.
GARBAGE: list[bytes] = [
    b"garbage",
    b"LOGSYS info: READ completed for SMDR log with 19975 entries.",
    b" 03/11 08:",  # a record cut inside its start time
    b" 03/11 08:16  00:0",  # cut inside its duration
    b"9" * 10_000,
    b" 03/11 08:16  00:02:14 T012  004 P860 610" + b"\x00" * 10_000 + b" 1001",
    " 03/11 08:16  00:02:14 T012  004 P860 6\u00e9\u00e9 610            1001".encode(),
    b"\xff\xfe" * 5_000,
    b"\x1b[2J\x1b[H",
    b" 03/11 08:16  00:02:14 T012  004 P860 610 611 610\t           1001",
]


def test_garbage_and_cut_lines_are_counted_and_change_no_figure() -> None:
    clean = [
        (line("10:00", tta="005", calling="T001"), "10:05"),
        (abandon("10:03", "00:00:02", calling="T004"), "10:05"),
        (abandon("10:04", "00:00:40", calling="T005"), "10:06"),
        (
            line(
                "10:00", tta="***", called="1002", transfer="R", duration="00:00:22", calling="T006"
            ),
            "10:07",
        ),  # fmt: skip
        (line("10:00", tta="031", calling="T006"), "10:08"),
    ]
    day, added = run(clean)
    expected = day.figures(at("11:00"))

    noisy = SmdrDay(datetime.time(0, 0), UTC)
    results = []
    for i, (text, received) in enumerate(clean):
        for junk in GARBAGE[i * 2 : i * 2 + 2]:
            results.append(noisy.add(parse_smdr(junk + b"\r\n"), at(received)))
        results.append(noisy.add(parse_smdr(text + "\r\n"), at(received)))
    assert results.count("unreadable") == len(GARBAGE)
    assert [r for r in results if r != "unreadable"] == added == ["call"] * len(clean)
    assert noisy.figures(at("11:00")) == expected
    assert noisy.counts == {
        **day.counts, "unreadable": len(GARBAGE), "unclassified": len(GARBAGE),
    }  # fmt: skip
    (interval,) = expected
    assert (interval.offered, interval.answered, interval.short_abandoned) == (4, 2, 1)


# Dates: mm/dd without a year (smdr-protocol.md §4) ------------------------------------


@pytest.mark.parametrize(
    ("month", "day", "today", "expected"),
    [
        (3, 11, datetime.date(2024, 3, 11), datetime.date(2024, 3, 11)),
        (3, 10, datetime.date(2024, 3, 11), datetime.date(2024, 3, 10)),
        # 31 Dec read on 1 Jan: last year's.
        (12, 31, datetime.date(2025, 1, 1), datetime.date(2024, 12, 31)),
        # 1 Jan read on 31 Dec: a controller clock a little ahead, tomorrow.
        (1, 1, datetime.date(2024, 12, 31), datetime.date(2025, 1, 1)),
        # More than a day ahead: not in the future, so last year's.
        (3, 13, datetime.date(2024, 3, 11), datetime.date(2023, 3, 13)),
        (2, 29, datetime.date(2024, 3, 1), datetime.date(2024, 2, 29)),
        (2, 29, datetime.date(2025, 3, 1), datetime.date(2024, 2, 29)),
        (2, 29, datetime.date(2023, 3, 1), None),
    ],
)
def test_record_date(
    month: int, day: int, today: datetime.date, expected: datetime.date | None
) -> None:
    assert record_date(month, day, today) == expected


def test_a_call_of_new_years_eve_read_after_midnight_is_last_years() -> None:
    day = SmdrDay(datetime.time(0, 0), UTC)
    added = day.add(parse_smdr(line("23:50", date="12/31")), at("00:05", datetime.date(2025, 1, 1)))
    assert added == "call"
    (interval,) = day.figures(at("00:05", datetime.date(2025, 1, 1)))
    assert interval.start == at("23:45", datetime.date(2024, 12, 31))
    assert interval.day == datetime.date(2024, 12, 31)


def test_intervals_are_local_quarter_hours_and_days_start_at_day_starts() -> None:
    # UTC+05:30: 08:16 local is 02:46 UTC; the day starts at 06:00 local.
    tz = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    day = SmdrDay(datetime.time(6, 0), tz)
    received = datetime.datetime(2024, 3, 11, 8, 20, tzinfo=tz).timestamp()
    early = datetime.datetime(2024, 3, 11, 7, 55, tzinfo=tz).timestamp()
    assert day.add(parse_smdr(line("05:59", calling="T099")), early) == "call"
    assert day.add(parse_smdr(line("08:16")), received) == "call"
    found = {f.start: f for f in day.figures(received)}
    at_816 = datetime.datetime(2024, 3, 11, 8, 15, tzinfo=tz).timestamp()
    at_545 = datetime.datetime(2024, 3, 11, 5, 45, tzinfo=tz).timestamp()
    assert sorted(found) == [at_545, at_816]
    assert found[int(at_816)].day == datetime.date(2024, 3, 11)
    assert found[int(at_545)].day == datetime.date(2024, 3, 10)
