"""The SMDR parser against smdr-protocol.md §1, §3, §5, §6.3 and every record of §9.

Expected values are written by hand from the document: the readings its
sources give for the published records (§9.1), the meanings it gives for the
synthetic ones (§9.2). Where a published record lost its spacing, the line as
published must be unreadable (never guessed), and the same record laid out
in the document's columns must give the source's reading.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mitelacd.floor.smdr import (
    LAYOUT_NAMES,
    OUTCOMES,
    PROVISIONAL_OUTCOMES,
    SmdrKind,
    SmdrLayout,
    SmdrRecord,
    SmdrUnreadable,
    classify,
    columns_of,
    layout_named,
    parse_smdr,
)
from mitelacd.testing.smdrlines import SYNTHETIC as SYNTHETIC_LINES

T = datetime.time
STANDARD = SmdrLayout()
TTA4 = SmdrLayout(extended_tta=True)
EDL = SmdrLayout("extended_digits")
EDL_TTA4_ANI = SmdrLayout("extended_digits", True, "ani_dnis")
LEVEL2 = SmdrLayout("level2", True)


def record(line: bytes | str, layout: SmdrLayout | None = None) -> SmdrRecord:
    result = parse_smdr(line, layout)
    assert isinstance(result, SmdrRecord), result
    return result


def unreadable(line: bytes | str, layout: SmdrLayout | None = None) -> SmdrUnreadable:
    result = parse_smdr(line, layout)
    assert isinstance(result, SmdrUnreadable), result
    return result


def reading(rec: SmdrRecord, expected: dict[str, Any]) -> dict[str, Any]:
    """The record's values for the keys ``expected`` names."""
    return {key: getattr(rec, key) for key in expected}


def lay(width: int, at: dict[int, str]) -> str:
    """A line of ``width`` blanks with each text put at its 1-based column."""
    line = [" "] * width
    for column, text in at.items():
        line[column - 1 : column - 1 + len(text)] = text
    return "".join(line)


# §9.2: the synthetic records, exact widths -------------------------------------------

S = SYNTHETIC_LINES

ANSWERED_860 = dict(path="860", groups=("610", "611", "610"), answering_group="610")
UNANSWERED_860 = dict(
    time_to_answer_seconds=None, unanswered=True, path="860", groups=("610", "611"),
    answering_group=None, called=None,
)  # fmt: skip

SYNTHETIC: list[tuple[int, SmdrLayout, dict[str, Any], str]] = [
    (1, STANDARD, dict(month=3, day=11, start=T(8, 16), duration_seconds=134, calling="T012",
        time_to_answer_seconds=4, unanswered=False, called="1001", completion="",
        completion_meaning="normal", transfer="", third_party=None, system_id="001",
        provisional=(), unread=(), **ANSWERED_860), "answered"),
    (2, STANDARD, dict(start=T(8, 17), duration_seconds=41, calling="T013", transfer="",
        provisional=("duration",), **UNANSWERED_860), "abandoned"),
    (3, STANDARD, dict(duration_seconds=3, calling="T014", **UNANSWERED_860), "short_abandoned"),
    (4, STANDARD, dict(duration_seconds=65, transfer="I", third_party="2500",
        provisional=("transfer", "duration"), **UNANSWERED_860), "interflowed"),
    (5, STANDARD, dict(month=1, day=14, start=T(9, 24), duration_seconds=59, calling="T201",
        time_to_answer_seconds=3, path="001", groups=("100", "100"), answering_group="100",
        called="1011", agent="1011", transfer="T", third_party="1405", provisional=()),
        "answered"),
    (6, STANDARD, dict(duration_seconds=760, time_to_answer_seconds=17, path="123",
        groups=("030", "031", "032", "031"), answering_group="031", called="1009"), "answered"),
    (7, STANDARD, dict(start=T(10, 5), duration_seconds=32, calling="2002",
        time_to_answer_seconds=None, unanswered=False, digits="2001", completion="I",
        completion_meaning="internal", called="2001", path=None, agent=None, unread=()),
        "not_a_path_call"),
    (8, TTA4, dict(duration_seconds=134, time_to_answer_seconds=4, called="1001",
        unread=(), **ANSWERED_860), "answered"),
    (9, EDL_TTA4_ANI, dict(duration_seconds=134, calling="T0012", time_to_answer_seconds=4,
        called="100101", agent="100101", ani="6135550142", dnis="5550100", system_id="001",
        unread=(), **ANSWERED_860), "answered"),
    (10, EDL_TTA4_ANI, dict(duration_seconds=41, calling="T0013", ani="6135550199",
        dnis="5550100", **UNANSWERED_860), "abandoned"),
    (11, STANDARD, dict(duration_seconds=0, transfer="U", third_party="2600",
        **UNANSWERED_860), "unavailable"),
    (12, STANDARD, dict(duration_seconds=22, time_to_answer_seconds=None, unanswered=True,
        called="1002", transfer="R", third_party=None, provisional=("transfer", "duration")),
        "requeued"),
]  # fmt: skip


def test_synthetic_records_are_the_documented_widths() -> None:
    assert [n for n, *_ in SYNTHETIC] == list(range(1, 13))
    assert {n: len(line) for n, line in S.items()} == {
        1: 90, 2: 90, 3: 90, 4: 90, 5: 90, 6: 90, 7: 90, 8: 90, 9: 120, 10: 120, 11: 90, 12: 90
    }  # fmt: skip


@pytest.mark.parametrize(
    "n, layout, expected, outcome", SYNTHETIC, ids=[f"S{n}" for n, *_ in SYNTHETIC]
)
def test_synthetic_record(
    n: int, layout: SmdrLayout, expected: dict[str, Any], outcome: str
) -> None:
    rec = record(S[n])
    assert rec.layout == layout and rec.detected
    assert rec.raw == rec.body == S[n]
    assert reading(rec, expected) == expected
    assert classify(rec) == outcome


@pytest.mark.parametrize(
    "n, layout, expected, outcome", SYNTHETIC, ids=[f"S{n}" for n, *_ in SYNTHETIC]
)
def test_forcing_the_detected_layout_reads_the_same(
    n: int, layout: SmdrLayout, expected: dict[str, Any], outcome: str
) -> None:
    forced = record(S[n], layout)
    assert not forced.detected
    assert reading(forced, expected) == expected
    assert forced.fields == record(S[n]).fields


def test_fields_are_kept_as_sent() -> None:
    rec = record(S[1])
    assert rec.fields == (
        ("long_call", " "), ("date", "03/11"), ("start", "08:16 "), ("duration", "00:02:14"),
        ("calling", "T012"), ("attendant", " "), ("time_to_answer", "004"),
        ("digits", "P860 610 611 610          "), ("completion", " "), ("speed_call", " "),
        ("called", "1001"), ("transfer", " "), ("third_party", "    "),
        ("account_code", " " * 12), ("route_optimization", " "), ("system_id", "001"),
    )  # fmt: skip
    assert rec.field("digits") == "P860 610 611 610          "
    assert rec.field("ani") == ""  # no such field in this layout
    assert record(S[6]).field("long_call") == "%"
    s9 = record(S[9])
    assert (s9.field("calling"), s9.field("called"), s9.field("dnis")) == (
        "T0012  ", "100101 ", "5550100",
    )  # fmt: skip


# §9.1: published records whose spacing survived ------------------------------------------

M = {
    1: "%02/04 13:13:16  0000:16:38 7411    0003 7406                      I 7406       ",
    2: " 02/04 13:31:36  0000:00:00 T3      **** 94163759                  E            ",
    3: " 02/04 13:26:40  0000:04:41 T3      0017 4207 2301                   2301       ",
    4: " 02/04 13:35:16  0000:00:10 8133         8133 8024                 A T3         ",
    5: "03/03 22:23:00  0000:00:25 2002    0001 2001                      I 2001                                  000",
}  # fmt: skip

PRESERVED: list[tuple[str, str, SmdrLayout, dict[str, Any], str]] = [
    ("M1", M[1], LEVEL2, dict(month=2, day=4, start=T(13, 13, 16), duration_seconds=998,
        calling="7411", time_to_answer_seconds=3, digits="7406", completion="I",
        completion_meaning="internal", called="7406", unread=()), "not_a_path_call"),
    ("M2", M[2], LEVEL2, dict(start=T(13, 31, 36), duration_seconds=0, calling="T3",
        time_to_answer_seconds=None, unanswered=True, digits="94163759", completion="E",
        completion_meaning="invalid_number", called=None), "not_a_path_call"),
    ("M3", M[3], LEVEL2, dict(duration_seconds=281, calling="T3", time_to_answer_seconds=17,
        digits="4207 2301", completion="", called="2301"), "not_a_path_call"),
    # No time to answer: nothing on the line says Extended Time to Answer.
    ("M4", M[4], SmdrLayout("level2"), dict(duration_seconds=10, calling="8133", time_to_answer_seconds=None,
        unanswered=False, digits="8133 8024", completion="A",
        completion_meaning="answer_supervision", called="T3"), "not_a_path_call"),
    ("M5", M[5], LEVEL2, dict(month=3, day=3, start=T(22, 23, 0), duration_seconds=25,
        calling="2002", time_to_answer_seconds=1, completion="I", called="2001",
        system_id="000", provisional=("column_1_restored",)), "not_a_path_call"),
    # Mitel's template example: placeholders (`f`, `ttt`, `h`, `k`...) are unreadable.
    ("D5", " 06/13 11:42p 00:08:29 214  fttt 6135952122xxxxxxxxxxxmmmmmAsT054k rrrr aaaaaaaaaaaas000",
     STANDARD, dict(month=6, day=13, start=T(23, 42), duration_seconds=509, calling="214",
        time_to_answer_seconds=None, completion="A", called="T054", system_id="000",
        unread=("time_to_answer", "attendant", "third_party", "digits", "transfer")),
     "not_a_path_call"),
    # Columns 1-60 align; the stored tail is compressed.
    ("D6", " 01/30 03:10P 00:02:22 T102 f008 201xxxxxxxxxxxxxxxxxxmmmmmh 201kaaa aaaas 000",
     STANDARD, dict(month=1, day=30, start=T(15, 10), duration_seconds=142, calling="T102",
        time_to_answer_seconds=8, called=None, completion="h", completion_meaning="unknown"),
     "not_a_path_call"),
    # Columns 2-64 match EDL + Extended TTA once the envelope is off; the tail does not.
    ("F1", "@20200507@ 05/07 02:36P 0000:00:42 T1      0007 190595378355#039537835      X9999 001 T11 9059537835 A0010788 A",
     SmdrLayout("extended_digits", True), dict(month=5, day=7, start=T(14, 36),
        duration_seconds=42, calling="T1", time_to_answer_seconds=7,
        digits="190595378355#039537835", called=None, third_party=None, system_id=None,
        provisional=("envelope",),
        unread=("called", "third_party", "transfer", "system_id")), "not_a_path_call"),
]  # fmt: skip


@pytest.mark.parametrize(
    "line, layout, expected, outcome",
    [p[1:] for p in PRESERVED],
    ids=[p[0] for p in PRESERVED],
)
def test_published_record_with_its_spacing(
    line: str, layout: SmdrLayout, expected: dict[str, Any], outcome: str
) -> None:
    rec = record(line)
    assert rec.layout == layout
    assert rec.raw == line
    assert reading(rec, expected) == expected
    assert classify(rec) == outcome


def test_preserved_records_are_trimmed_and_m5_lacks_column_1() -> None:
    assert [len(M[n]) for n in range(1, 6)] == [80, 80, 80, 80, 109]
    assert record(M[5]).body == " " + M[5]
    assert record(M[1]).field("long_call") == "%"


# §9.1: published records whose spacing was lost ------------------------------------------

COLLAPSED = {
    "R1": "09/23 11:45 00:02:43 T104 9806211234 7721034 A X999",
    "R2": "09/23 11:45 00:02:43 T104 002 9806211234 1034 X999",
    "R2 tail": "9806211234 1034",
    "R3": "09/23 11:45 00:00:07 T105 *** 9806211234 1005 X999",
    "R4": "09/23 11:45 T105 9806211234 7721005 X999",
    "R5": "LOGSYS info: READ completed for SMDR log with 19975 entries.",
    "R6": "07/09 10:54 00:03:02 5356 000 5334 I 53347/09 09:17 00:00:30 T100 048 5000 5020X",
    "R7": "07/09 10:53 00:03:06 5304 514254 A T100 P0110:00 T100 *** 5050 E 5020X P014",
    "D1": "09/10 08:31 00:00:20 T001 005 P123 030 031 032 031 1009",
    "D2": "09/10 08:31 00:00:20 T001 005 P123 030 031 032 000 4000",
    "D3": "09/10 08:31 00:00:20 T023 008 P001 012 013 014 115 T 1002",
    "D4": "01/14 09:24 00:00:59 T201 003 P001 100 1011T 1405",
    "D4 rssing": "01/14 09:24 00:00:59 T201 003 P001 100 1011 T 1405",
    "D7": "07/01 08:44 00:00:14 TOO2 009 PO456 05 06 051515",
    "F2": "02/17 19:05:39 0000:00:15 2002 0004 2001 I 2001 000",
    "F3": "02/04 13:34:38 0000:00:53 T1 0000 0284785439 4216 T3 010 0284785439 4216 M0100376 A",
}  # fmt: skip


@pytest.mark.parametrize("line", list(COLLAPSED.values()), ids=list(COLLAPSED))
def test_a_published_record_without_its_spacing_is_not_guessed(line: str) -> None:
    result = unreadable(line)
    assert result.raw == line
    assert result.reason.startswith("fits no layout: ")


# The same records laid out in the columns of §3.1 (base) and their sources' readings.
LAID_OUT: list[tuple[str, str, dict[str, Any], str]] = [
    ("R1", lay(90, {2: "09/23", 8: "11:45", 15: "00:02:43", 24: "T104",
        34: "9806211234 7721034", 60: "A", 62: "X999"}),
     dict(duration_seconds=163, calling="T104", time_to_answer_seconds=None, unanswered=False,
        completion="A", called="X999", path=None), "not_a_path_call"),
    ("R2", lay(90, {2: "09/23", 8: "11:45", 15: "00:02:43", 24: "T104", 30: "002",
        34: "9806211234 1034", 62: "X999"}),
     dict(time_to_answer_seconds=2, digits="9806211234 1034", called="X999"),
     "not_a_path_call"),
    ("R3", lay(90, {2: "09/23", 8: "11:45", 15: "00:00:07", 24: "T105", 30: "***",
        34: "9806211234 1005", 62: "X999"}),
     dict(duration_seconds=7, unanswered=True, time_to_answer_seconds=None,
        provisional=("duration",)), "not_a_path_call"),
    ("R6 first", lay(90, {2: "07/09", 8: "10:54", 15: "00:03:02", 24: "5356", 30: "000",
        34: "5334", 60: "I", 62: "5334"}),
     dict(duration_seconds=182, time_to_answer_seconds=0, completion_meaning="internal",
        called="5334"), "not_a_path_call"),
    ("R6 second", lay(90, {2: "07/09", 8: "09:17", 15: "00:00:30", 24: "T100", 30: "048",
        34: "5000", 62: "5020", 66: "X"}),
     dict(time_to_answer_seconds=48, called="5020", transfer="X", provisional=()),
     "not_a_path_call"),
    ("D1", lay(90, {2: "09/10", 8: "08:31", 15: "00:00:20", 24: "T001", 30: "005",
        34: "P123 030 031 032 031", 62: "1009"}),
     dict(path="123", groups=("030", "031", "032", "031"), answering_group="031",
        agent="1009", time_to_answer_seconds=5, duration_seconds=20), "answered"),
    ("D2", lay(90, {2: "09/10", 8: "08:31", 15: "00:00:20", 24: "T001", 30: "005",
        34: "P123 030 031 032 000", 62: "4000"}),
     dict(path="123", answering_group="000", called="4000"), "answered"),
    ("D3", lay(90, {2: "09/10", 8: "08:31", 15: "00:00:20", 24: "T023", 30: "008",
        34: "P001 012 013 014 115", 60: "T", 62: "1002"}),
     dict(path="001", answering_group="115", completion="T",
        completion_meaning="tafas_or_pickup", called="1002"), "answered"),
    ("D4", lay(90, {2: "01/14", 8: "09:24", 15: "00:00:59", 24: "T201", 30: "003",
        34: "P001 100", 62: "1011", 66: "T", 68: "1405"}),
     dict(path="001", groups=("100",), answering_group="100", called="1011",
        transfer="T", third_party="1405", provisional=("answering_group",)), "answered"),
    ("D7", lay(90, {2: "07/01", 8: "08:44", 15: "00:00:14", 24: "T002", 30: "009",
        34: "P0456 05 06 05", 62: "1515"}),
     dict(path="0456", groups=("05", "06", "05"), answering_group="05", agent="1515"),
     "answered"),
]  # fmt: skip


@pytest.mark.parametrize(
    "line, expected, outcome", [x[1:] for x in LAID_OUT], ids=[x[0] for x in LAID_OUT]
)
def test_published_record_laid_out_in_columns(
    line: str, expected: dict[str, Any], outcome: str
) -> None:
    rec = record(line)
    assert rec.layout == STANDARD
    assert reading(rec, expected) == expected
    assert classify(rec) == outcome


def test_r4_without_a_duration() -> None:
    # The calling party fills column 25, the spacer after an Extended Digit
    # Length duration: only the standard layout fits.
    line = lay(60, {2: "09/23", 8: "11:45", 24: "T105", 34: "9806211234 7721005"})
    rec = record(line)
    assert rec.layout == STANDARD
    assert (rec.duration_seconds, rec.calling, rec.digits) == (None, "T105", "9806211234 7721005")


def test_a_line_two_layouts_fit_is_not_placed() -> None:
    # Blank duration, no system identifier, parties where both layouts have
    # them: standard and Extended Digit Length both fit.
    line = lay(60, {2: "09/23", 8: "11:45", 26: "T1", 40: "9806211234"})
    assert "fits more than one layout" in unreadable(line).reason
    assert record(line, STANDARD).calling == "T1"
    assert record(line, EDL).calling == "T1"


# §3: every layout, forced and detected -----------------------------------------------------


def test_every_layout_has_the_documented_columns() -> None:
    def at(layout: SmdrLayout, name: str) -> tuple[int, int]:
        where = dict(columns_of(layout))[name]
        return where.start, where.stop

    edl_oli = SmdrLayout("extended_digits", tail="oli")
    level1 = SmdrLayout("level1")
    level2 = SmdrLayout("level2")
    assert [at(STANDARD, f) for f in ("duration", "calling", "time_to_answer", "digits",
        "completion", "called", "transfer", "third_party", "account_code", "system_id")] == [
        (14, 22), (23, 27), (29, 32), (33, 59), (59, 60), (61, 65), (65, 66), (67, 71),
        (72, 84), (85, 88)]  # fmt: skip
    assert [at(TTA4, f) for f in ("attendant", "time_to_answer")] == [(27, 28), (28, 32)]
    assert [at(EDL, f) for f in ("duration", "calling", "attendant", "time_to_answer",
        "digits", "completion", "called", "transfer", "third_party", "account_code",
        "system_id")] == [(14, 24), (25, 32), (33, 34), (34, 37), (38, 64), (64, 65),
        (66, 73), (73, 74), (75, 82), (83, 95), (96, 99)]  # fmt: skip
    assert [at(SmdrLayout("extended_digits", True), f) for f in ("attendant", "time_to_answer")] == [
        (32, 33), (33, 37)]  # fmt: skip
    assert [at(SmdrLayout(tail="oli"), f) for f in ("ani", "dnis", "call_id", "sequence_id",
        "associated_call_id")] == [(91, 101), (102, 112), (113, 121), (121, 122), (123, 131)]  # fmt: skip
    assert [at(edl_oli, f) for f in ("ani", "dnis", "call_id", "sequence_id",
        "associated_call_id")] == [(102, 112), (113, 120), (121, 129), (129, 130), (131, 139)]  # fmt: skip
    assert [at(level2, f) for f in ("start", "duration", "calling", "time_to_answer", "digits",
        "completion", "called", "transfer", "third_party", "system_id", "ani")] == [
        (7, 16), (17, 27), (28, 35), (37, 40), (41, 67), (67, 68), (69, 76), (76, 77),
        (78, 85), (107, 110), (113, 133)]  # fmt: skip
    assert [at(level1, f) for f in ("start", "duration", "calling", "digits", "completion",
        "called", "system_id", "ani")] == [(7, 13), (14, 24), (25, 32), (38, 64), (64, 65),
        (66, 73), (104, 107), (110, 130)]  # fmt: skip
    assert [at(SmdrLayout(meter_pulses=True), f) for f in ("digits", "meter_pulses")] == [
        (33, 54), (54, 59)]  # fmt: skip
    assert [layout.length for layout in (STANDARD, SmdrLayout(tail="ani_dnis"),
        SmdrLayout(tail="oli"), EDL, EDL_TTA4_ANI, edl_oli, level1, level2)] == [
        90, 112, 131, 101, 120, 139, 207, 207]  # fmt: skip


def test_level_records_have_no_documented_tails() -> None:
    with pytest.raises(ValueError):
        SmdrLayout("level1", tail="ani_dnis")


# S1 with the ANI/DNIS and OLI tails (§3.4, §3.5), built in the documented columns.
ANI_DNIS = S[1] + " 6135550142 5550100   "
OLI = ANI_DNIS + " A0010788A A0010787"
EDL_OLI = S[9] + " B0020042C B0020041"
# Longer than any Extended Digit Length record: something after the ANI.
LEVEL1 = lay(150, {2: "03/11", 8: "08:16", 15: "0000:02:14", 26: "T0012", 34: "0004",
    39: "P860 610 611 610", 67: "100101", 105: "001", 111: "6135550142", 141: "5550100"})  # fmt: skip


@pytest.mark.parametrize(
    "line, layout, expected",
    [
        (ANI_DNIS, SmdrLayout(tail="ani_dnis"),
         dict(ani="6135550142", dnis="5550100", call_id=None, provisional=())),
        (OLI, SmdrLayout(tail="oli"),
         dict(ani="6135550142", call_id="A0010788", sequence_id="A",
              associated_call_id="A0010787", provisional=())),
        (EDL_OLI, SmdrLayout("extended_digits", True, "oli"),
         dict(ani="6135550142", dnis="5550100", call_id="B0020042", sequence_id="C",
              associated_call_id="B0020041", provisional=("oli_columns",))),
        (LEVEL1, SmdrLayout("level1", True),
         dict(start=T(8, 16), duration_seconds=134, calling="T0012", time_to_answer_seconds=4,
              called="100101", system_id="001", ani="6135550142", dnis=None, path="860")),
    ],
    ids=["standard+ani_dnis", "standard+oli", "edl+tta4+oli", "level1+tta4"],
)  # fmt: skip
def test_tails_and_level1(line: str, layout: SmdrLayout, expected: dict[str, Any]) -> None:
    rec = record(line)
    assert rec.layout == layout
    assert reading(rec, expected) == expected
    assert record(line, layout).fields == rec.fields


def test_lengths_of_the_tail_layouts() -> None:
    assert (len(ANI_DNIS), len(OLI), len(EDL_OLI), len(LEVEL1)) == (112, 131, 139, 150)
    assert record(LEVEL1).field("rest").strip() == "5550100"


@pytest.mark.parametrize(
    "line, layout, reason",
    [
        (S[1], EDL, "no duration in columns 15-24"),
        (S[9], STANDARD, "120 characters, longer than the 90 of standard"),
        (OLI, SmdrLayout(tail="ani_dnis"), "131 characters, longer than the 112"),
        (S[1], LEVEL2, "no start time in columns 8-16"),
        (M[1], SmdrLayout("level1", True), "no start time in columns 8-13"),
        (S[1].replace(" 001  ", " 0x1  "), STANDARD, "system identifier '0x1'"),
    ],
)
def test_a_forced_layout_the_line_does_not_fit(line: str, layout: SmdrLayout, reason: str) -> None:
    result = unreadable(line, layout)
    assert reason in result.reason
    assert result.layout == layout and result.raw == line


def test_forced_layout_without_extended_tta_finds_a_four_digit_answer_time_too_wide() -> None:
    rec = record(S[8], STANDARD)
    assert rec.field("time_to_answer") == "004"
    assert rec.time_to_answer_seconds is None
    assert rec.unread == ("time_to_answer", "attendant")
    assert classify(rec) == "unclassified"


def test_meter_pulses_only_when_told() -> None:
    line = lay(90, {2: "03/11", 8: "14:02P", 15: "00:01:10", 24: "2001", 34: "6135550100",
        55: "00012", 60: "A", 62: "T020", 86: "001"})  # fmt: skip
    told = record(line, SmdrLayout(meter_pulses=True))
    assert (told.digits, told.meter_pulses, told.start) == ("6135550100", 12, T(14, 2))
    assert told.completion_meaning == "answer_supervision"
    detected = record(line)
    assert (detected.digits, detected.meter_pulses) == ("6135550100           00012", None)


@pytest.mark.parametrize(
    "text, tta4, seconds, unanswered",
    [("  004", False, 4, False), (" 0004", True, 4, False), ("  ***", False, None, True),
     (" ****", True, None, True), ("*0012", True, 12, False), (" *012", False, 12, False)],
)  # fmt: skip
def test_extended_time_to_answer_is_detected_per_line(
    text: str, tta4: bool, seconds: int | None, unanswered: bool
) -> None:
    line = S[1][:27] + text + S[1][32:]
    rec = record(line)
    assert rec.layout.extended_tta is tta4
    assert (rec.time_to_answer_seconds, rec.unanswered) == (seconds, unanswered)


# §5: every completion status ---------------------------------------------------------------


def completion_line(status: str, calling: str = "T012", called: str = "1001") -> str:
    return lay(90, {2: "03/11", 8: "08:16", 15: "00:02:14", 24: calling, 30: "004",
        34: "6135550100", 60: status, 62: called, 86: "001"})  # fmt: skip


@pytest.mark.parametrize(
    "status, calling, called, meaning, provisional",
    [
        ("A", "2001", "T020", "answer_supervision", ()),
        ("T", "2001", "T020", "toll_denied", ("completion",)),
        ("B", "T012", "1001", "busy", ()),
        ("E", "T012", "1001", "invalid_number", ()),
        ("T", "T012", "1001", "tafas_or_pickup", ()),
        ("T", "X999", "1001", "tafas_or_pickup", ()),
        ("T", "2002", "2001", "unknown", ()),
        (" ", "T012", "1001", "normal", ()),
        ("I", "2002", "2001", "internal", ()),
        ("O", "2002", "2001", "occupied", ()),
        ("D", "2002", "2001", "do_not_disturb", ("completion",)),
        ("S", "2002", "2001", "out_of_service", ("completion",)),
        ("U", "2002", "2001", "attendant_unavailable", ("completion",)),
        ("C", "T012", "1001", "caller_account_code", ("completion",)),
        ("R", "T012", "1001", "receiver_account_code", ("completion",)),
        ("Z", "T012", "1001", "unknown", ()),
        ("7", "T012", "1001", "unknown", ()),
    ],
)
def test_completion_status(
    status: str, calling: str, called: str, meaning: str, provisional: tuple[str, ...]
) -> None:
    rec = record(completion_line(status, calling, called))
    assert rec.completion == status.strip()
    assert rec.completion_meaning == meaning
    assert rec.provisional == provisional
    assert ("completion" in rec.unread) is (meaning == "unknown")


# §6.3: every rule of one record ---------------------------------------------------------------


def path_line(tta: str, duration: str = "00:00:41", called: str = "", flag: str = "",
              digits: str = "P860 610 611", tta_column: int = 30) -> str:  # fmt: skip
    return lay(90, {2: "03/11", 8: "08:17", 15: duration, 24: "T013", tta_column: tta, 34: digits,
        62: called, 66: flag, 86: "001"})  # fmt: skip


@pytest.mark.parametrize(
    "line, threshold, outcome",
    [
        (S[7], 6, "not_a_path_call"),
        (path_line("004", called="1001", digits="P860 610 611 610"), 6, "answered"),
        (path_line("004", called="4000", digits="P860 610 611 000"), 6, "answered"),
        (path_line("004", called="1011", flag="T"), 6, "answered"),  # transferred after answer
        (path_line("004", called="1011", flag="X"), 6, "answered"),
        (path_line("***", "00:00:41"), 6, "abandoned"),
        (path_line("***", "00:00:06"), 6, "short_abandoned"),  # at the threshold
        (path_line("***", "00:00:07"), 6, "abandoned"),
        (S[2], 60, "short_abandoned"),
        (S[3], 2, "abandoned"),
        (path_line("***", "00:00:41", called="1002"), 6, "abandoned"),  # rang, not answered
        (path_line("***", flag="I"), 6, "interflowed"),
        (path_line("004", called="1001", flag="I"), 6, "interflowed"),  # the marker decides
        (path_line("***", flag="R", called="1002"), 6, "requeued"),
        (path_line("***", flag="U"), 6, "unavailable"),
        (path_line("   "), 6, "unclassified"),  # no time to answer at all
        (path_line("004"), 6, "unclassified"),  # answered by nobody
        (path_line("***", "        "), 6, "unclassified"),  # abandoned, but how long?
        (path_line("004", called="1001", digits="P12345 610"), 6, "unclassified"),
        (path_line("***", flag="Q"), 6, "unclassified"),
        (path_line("0x4", called="1001"), 6, "unclassified"),
    ],
)
def test_classify(line: str, threshold: int, outcome: str) -> None:
    assert classify(record(line, STANDARD), short_abandon_seconds=threshold) == outcome


def test_outcomes_and_which_are_provisional() -> None:
    assert set(OUTCOMES) == {
        "answered", "abandoned", "short_abandoned", "interflowed", "requeued", "unavailable",
        "not_a_path_call", "unclassified",
    }  # fmt: skip
    assert PROVISIONAL_OUTCOMES == {
        "abandoned", "short_abandoned", "interflowed", "requeued", "unavailable"
    }  # fmt: skip


def test_classify_defaults_to_six_seconds() -> None:
    assert classify(record(path_line("***", "00:00:06"))) == "short_abandoned"
    assert classify(record(path_line("***", "00:00:07"))) == "abandoned"


# §1: framing variants ---------------------------------------------------------------------------

TERMINATED = [
    S[1] + "\r\n", S[1] + "\n", S[1] + "\r", S[1] + "\r\n\x00\x00", "\n" + S[1],
    S[1].rstrip(), S[1].rstrip() + "\r\n", S[1] + "     ",
]  # fmt: skip


@pytest.mark.parametrize("line", TERMINATED + [t.encode("ascii") for t in TERMINATED])
def test_terminators_and_trailing_blanks_read_the_same(line: str | bytes) -> None:
    rec = record(line)
    expected = record(S[1])
    assert rec.raw == (line.decode("ascii") if isinstance(line, bytes) else line)
    assert rec.layout == STANDARD
    assert (rec.month, rec.start, rec.duration_seconds, rec.time_to_answer_seconds) == (
        3,
        T(8, 16),
        134,
        4,
    )
    assert (rec.path, rec.groups, rec.called, rec.system_id) == (
        "860",
        ("610", "611", "610"),
        "1001",
        "001",
    )
    # Trailing blanks are absent columns: only blanks may differ.
    assert [(n, v.rstrip()) for n, v in rec.fields] == [(n, v.rstrip()) for n, v in expected.fields]


def test_a_trimmed_line_keeps_short_fields() -> None:
    rec = record(S[7].rstrip())  # ends at the system identifier
    assert rec.field("system_id") == "001"
    rec = record(S[5][:70])  # cut inside the third party
    assert (rec.field("third_party"), rec.third_party, rec.system_id) == ("140", "140", None)


@pytest.mark.parametrize(
    "line, reason",
    [
        ("", "blank line"),
        ("\r\n", "blank line"),
        ("      \r\n", "blank line"),
        (b"\x00\x00", "blank line"),
        (S[1].encode("ascii")[:40] + b"\xff" + S[1].encode("ascii")[41:], "not ASCII"),
        (S[1][:40] + "\u00e9" + S[1][41:], "control or non-ASCII"),
        (S[1][:40] + "\t" + S[1][41:], "control or non-ASCII"),
        (S[1] + "\r\n" + S[2], "control or non-ASCII"),  # two records: the framer splits them
        (S[1][:10], "fits no layout"),  # cut inside the start time
        ("hello", "fits no layout"),
        ("x" * 300, "300 characters, longer than any layout (207)"),
        (S[1].replace("03/11", "3/11 "), "fits no layout"),
        (S[1].replace("00:02:14", "100:02:1"), "fits no layout"),
    ],
)
def test_unreadable_lines_say_why(line: str | bytes, reason: str) -> None:
    result = unreadable(line)
    assert reason in result.reason
    assert result.raw == line


# Field widths: a number too wide or not digits is unreadable in its field --------------------


@pytest.mark.parametrize(
    "line, field, name, value",
    [
        (path_line("9999", called="1001"), "time_to_answer", "time_to_answer_seconds", None),
        (path_line("0x4", called="1001"), "time_to_answer", "time_to_answer_seconds", None),
        (path_line("004", called="1001", digits="P" + "9" * 20), "path", "path", None),
        (path_line("004", called="1001", digits="P860 99999999999999"), "groups", "groups", ()),
        (S[1].replace("00:02:14", "99:99:99"), "duration", "duration_seconds", None),
        (S[1].replace("00:02:14", "00:60:00"), "duration", "duration_seconds", None),
        (S[1].replace("03/11", "13/11"), "date", "month", None),
        (S[1].replace("03/11", "02/30"), "date", "day", None),
        (S[1].replace("08:16 ", "25:16 "), "start", "start", None),
        (S[1].replace("      001  ", "     9001  "), "system_id", "system_id", None),
        (S[1].replace(" 001  ", " 0011 "), "system_id", "system_id", None),
        (S[1].replace("1001", "10 1"), "called", "called", None),
        (ANI_DNIS.replace("6135550142", "613555014x"), "ani", "ani", None),
        (OLI.replace("A0010788A", "A001078 A"), "call_id", "call_id", None),
    ],
)
def test_a_field_that_cannot_be_read(line: str, field: str, name: str, value: object) -> None:
    rec = record(line)
    assert field in rec.unread
    assert getattr(rec, name) == value


def test_a_wide_answer_time_spills_into_the_attendant_flag_and_is_not_read() -> None:
    line = path_line("9999", called="1001", tta_column=29)
    rec = record(line, STANDARD)
    assert rec.field("time_to_answer") == "999"
    assert rec.time_to_answer_seconds is None and "time_to_answer" in rec.unread
    assert record(line).time_to_answer_seconds == 9999  # detected: 4 columns


def test_twelve_hour_and_twenty_four_hour_starts() -> None:
    assert record(S[1].replace("08:16 ", "12:16P")).start == T(12, 16)
    assert record(S[1].replace("08:16 ", "08:16P")).start == T(20, 16)
    assert record(S[1].replace("08:16 ", "08:16p")).start == T(20, 16)
    assert record(S[1].replace("08:16 ", "12:16A")).start == T(0, 16)
    assert record(S[1].replace("08:16 ", "20:16 ")).start == T(20, 16)


# Never raises -------------------------------------------------------------------------------------

_near = st.builds(
    lambda base, at, text: base[:at] + text + base[at + len(text) :],
    st.sampled_from([S[1], S[9], M[1], M[5], OLI, LEVEL1]),
    st.integers(0, 140),
    st.text(" 0123456789*#:/PTXIRUA\r\n", max_size=12),
)
_layouts = (
    st.none()
    | st.builds(
        SmdrLayout,
        st.sampled_from(["standard", "extended_digits"]),
        st.booleans(),
        st.sampled_from(["none", "ani_dnis", "oli"]),
        st.booleans(),
    )
    | st.builds(SmdrLayout, st.sampled_from(["level1", "level2"]), st.booleans())
)


@given(st.text(max_size=250) | _near | st.binary(max_size=250), _layouts)
def test_parse_smdr_never_raises_and_keeps_the_raw_line(
    line: str | bytes, layout: SmdrLayout | None
) -> None:
    result = parse_smdr(line, layout)
    if isinstance(result, SmdrRecord):
        assert result.raw == (line.decode("ascii") if isinstance(line, bytes) else line)
        assert classify(result) in OUTCOMES
        assert layout is None or result.layout == layout
        assert all(isinstance(value, str) for _, value in result.fields)
    else:
        assert isinstance(result, SmdrUnreadable)
        assert result.raw == line and result.reason


# §3: every layout --smdr-layout names, S1's call laid out in its columns -------------------


def laid_out(layout: SmdrLayout, rest: bool = True) -> str:
    """S1's answered call (§9.2) in the columns of ``layout``, trailing blanks trimmed.

    With a tail, its fields too; ``rest``: something after a Level 1/2 record's
    ANI, as the longer Extended Reporting records carry (§3.6).
    """
    columns = dict(columns_of(layout))
    values = {
        "date": "03/11",
        "start": "08:16:05" if layout.kind == "level2" else "08:16",
        "duration": "00:02:14" if layout.kind == "standard" else "0000:02:14",
        "calling": "T012",
        "time_to_answer": "0004" if layout.extended_tta else "004",
        "digits": "P860 610 611 610",
        "meter_pulses": "00012",
        "called": "1001",
        "system_id": "001",
        "ani": "6135550142",
        "dnis": "5550100",
        "call_id": "A0010788",
        "sequence_id": "A",
        "associated_call_id": "A0010787",
        "rest": "          5550100" if rest else "",
    }
    line = [" "] * max(where.stop for where in columns.values())
    for name, where in columns.items():
        text = values.get(name, "")
        assert len(text) <= where.stop - where.start, (name, text)
        line[where.start : where.start + len(text)] = text
    return "".join(line).rstrip()


@pytest.mark.parametrize("name", LAYOUT_NAMES)
def test_every_layout_reads_its_own_columns_forced_and_detected(name: str) -> None:
    layout = layout_named(name)
    line = laid_out(layout)
    expected: dict[str, Any] = dict(
        month=3, day=11, duration_seconds=134, calling="T012", time_to_answer_seconds=4,
        unanswered=False, path="860", groups=("610", "611", "610"), answering_group="610",
        called="1001", system_id="001", ani="6135550142", unread=(),
    )  # fmt: skip
    tails: dict[str, dict[str, Any]] = {
        "none": dict(dnis=None, call_id=None),
        "ani_dnis": dict(dnis="5550100", call_id=None),
        "oli": dict(dnis="5550100", call_id="A0010788", sequence_id="A",
                    associated_call_id="A0010787"),
    }  # fmt: skip
    tail = tails[layout.tail]
    if layout.kind in ("standard", "extended_digits") and layout.tail == "none":
        tail["ani"] = None
    expected.update(tail)
    forced = record(line, layout)
    assert reading(forced, expected) == expected
    assert forced.start == (T(8, 16, 5) if layout.kind == "level2" else T(8, 16))
    assert classify(forced) == "answered"
    detected = record(line)
    assert detected.layout == layout and detected.detected
    assert detected.fields == forced.fields


@pytest.mark.parametrize("name", ["level1", "level1+tta4"])
def test_a_level1_line_that_ends_at_its_ani_is_read_as_level1(name: str) -> None:
    # Up to the third party Level 1 has the Extended Digit Length columns, and
    # a line of 120 characters fits that layout's ANI/DNIS length too; read so,
    # its ANI columns hold Level 1's system identifier and cannot be read
    # (§3.6, §3.8), while Level 1 reads every field: detection takes Level 1.
    layout = layout_named(name)
    line = laid_out(layout, rest=False)
    assert len(line) == 120
    as_edl = record(line, SmdrLayout("extended_digits", layout.extended_tta, "ani_dnis"))
    assert "ani" in as_edl.unread
    detected = record(line)
    assert detected.layout == layout and detected.unread == ()
    assert (detected.path, detected.called, detected.time_to_answer_seconds) == ("860", "1001", 4)
    assert detected.ani == "6135550142"


@pytest.mark.parametrize("kind", ["standard", "extended_digits"])
def test_meter_pulses_are_read_when_forced_in_either_width(kind: SmdrKind) -> None:
    layout = SmdrLayout(kind, meter_pulses=True)
    line = laid_out(layout)
    rec = record(line, layout)
    assert (rec.digits, rec.meter_pulses, rec.path, rec.called) == (
        "P860 610 611 610", 12, "860", "1001",
    )  # fmt: skip
    assert record(line).meter_pulses is None  # never detected


def test_every_layout_name_reads_back() -> None:
    assert len(LAYOUT_NAMES) == 16
    assert {layout_named(name).name for name in LAYOUT_NAMES} == set(LAYOUT_NAMES)


# §9.1: the fixtures F2 and F3 laid out in the Level 2 columns (§3.6) ---------------------------

LEVEL2_LAID_OUT: list[tuple[str, str, dict[str, Any]]] = [
    # "internal MiVoice sample": 2002 → 2001, time to answer 4 s, internal.
    ("F2", lay(110, {2: "02/17", 8: "19:05:39", 18: "0000:00:15", 29: "2002", 37: "0004",
        42: "2001", 68: "I", 70: "2001", 108: "000"}),
     dict(start=T(19, 5, 39), duration_seconds=15, calling="2002", time_to_answer_seconds=4,
        digits="2001", completion="I", completion_meaning="internal", called="2001",
        system_id="000", path=None)),
    # "trunk-first external sample": trunk T1 in, answered at once, digits then T3.
    ("F3", lay(80, {2: "02/04", 8: "13:34:38", 18: "0000:00:53", 29: "T1", 37: "0000",
        42: "0284785439 4216", 70: "T3"}),
     dict(start=T(13, 34, 38), duration_seconds=53, calling="T1", time_to_answer_seconds=0,
        digits="0284785439 4216", called="T3", path=None, unread=())),
]  # fmt: skip


@pytest.mark.parametrize(
    "line, expected", [x[1:] for x in LEVEL2_LAID_OUT], ids=[x[0] for x in LEVEL2_LAID_OUT]
)
def test_fixture_laid_out_in_level2_columns(line: str, expected: dict[str, Any]) -> None:
    rec = record(line)
    assert rec.layout == LEVEL2
    assert reading(rec, expected) == expected
    assert classify(rec) == "not_a_path_call"


# Long, filled and foreign lines never overflow anything ----------------------------------------


@pytest.mark.parametrize(
    "line, reason",
    [
        (S[1] + "9" * 10_000, "10090 characters, longer than any layout (207)"),
        ("P860 " * 2_000, "9999 characters, longer than any layout (207)"),
        (S[1][:40] + "\x00" * 10_000 + S[1][40:], "control or non-ASCII"),
        (S[1][:40] + "\u00e9\u20ac" * 5_000 + S[1][40:], "control or non-ASCII"),
        (S[1].encode("ascii")[:40] + b"\xc3\xa9" * 5_000, "not ASCII"),
        ("\x00" * 10_000, "blank line"),
    ],
    ids=["digits", "path tokens", "NULs inside", "non-ASCII", "UTF-8 bytes", "only NULs"],
)
def test_a_ten_kilobyte_line_is_unreadable_with_a_short_reason(
    line: str | bytes, reason: str
) -> None:
    result = unreadable(line)
    assert reason in result.reason
    assert len(result.reason) < 200
    assert result.raw == line
    # Forced to a layout, the same.
    forced = unreadable(line, STANDARD)
    assert len(forced.reason) < 200


def test_trailing_fill_of_any_length_is_absent_columns() -> None:
    for line in (S[1] + " " * 10_000, "\x00" * 5_000 + S[1] + "\x00" * 5_000 + "\r\n"):
        rec = record(line)
        assert rec.layout == STANDARD
        assert (rec.path, rec.called, rec.time_to_answer_seconds) == ("860", "1001", 4)
        assert all(len(value) <= 26 for _, value in rec.fields)
