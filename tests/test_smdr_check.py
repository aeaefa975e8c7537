"""mitelacd-smdr-check: every record of smdr-protocol.md §9.2, read, classified and counted.

The tool runs in-process through ``main`` on text files and captures
written here (one test runs it as ``python -m``). Expected figures are
worked out by hand from the records' meanings in §9.2; times are UTC.
"""

from __future__ import annotations

import configparser
import datetime
import gzip
import importlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mitelacd.feed import smdrcheck
from mitelacd.feed.capture import Connected, Data, Entry, Gap, Lost, Started, Stopped, write_capture
from mitelacd.feed.smdr import MAX_LINE
from mitelacd.floor.smdr import layout_named
from mitelacd.testing.smdrlines import SYNTHETIC

ROOT = Path(__file__).resolve().parent.parent
UTC = datetime.timezone.utc

#: smdr-protocol.md §9.2, exact widths.
S = SYNTHETIC

#: The layout and what each record says (§9.2's "Meaning" column).
READ = {
    1: ("standard", "answered: path 860, agent 1001, answering group 610, time to answer 4 s"),
    2: ("standard", "abandoned: path 860, after 41 s"),
    3: ("standard", "short abandon: path 860, after 3 s"),
    4: ("standard", "interflowed: path 860, to 2500"),
    5: ("standard", "answered: path 001, agent 1011, answering group 100, time to answer 3 s"),
    6: ("standard", "answered: path 123, agent 1009, answering group 031, time to answer 17 s"),
    7: ("standard", "not a path call (no P token in Digits Dialed; completion: internal)"),
    8: ("standard+tta4", "answered: path 860, agent 1001, answering group 610, time to answer 4 s"),
    9: ("extended_digits+tta4+ani_dnis",
        "answered: path 860, agent 100101, answering group 610, time to answer 4 s"),
    10: ("extended_digits+tta4+ani_dnis", "abandoned: path 860, after 41 s"),
    11: ("standard", "queue unavailable: path 860, routed to 2600"),
    12: ("standard", "requeued: path 860, agent 1002 did not answer"),
}  # fmt: skip

ZERO = dict.fromkeys(smdrcheck.COUNT_FIGURES, 0)

#: The totals of S1-S12 read on 12 March 2024. S8 is S1 with Extended Time
#: to Answer: the same trunk, minute and path, so a record of the same call.
TOTALS = {
    "860": {
        **ZERO, "offered": 8, "answered": 2, "abandoned": 2, "short_abandoned": 1,
        "interflowed": 1, "requeued": 1, "unavailable": 1, "answered_within_target": 2,
        "service_level_seconds": 20, "time_to_answer_seconds": 8,
        # 2 within 20 s of 8 offered less 1 short abandon
        "service_level_percent": 28.571, "average_time_to_answer_seconds": 4.0,
    },
    "001": {
        **ZERO, "offered": 1, "answered": 1, "answered_within_target": 1,
        "service_level_seconds": 20, "time_to_answer_seconds": 3,
        "service_level_percent": 100.0, "average_time_to_answer_seconds": 3.0,
    },
    "123": {
        **ZERO, "offered": 1, "answered": 1, "answered_within_target": 1,
        "service_level_seconds": 20, "time_to_answer_seconds": 17,
        "service_level_percent": 100.0, "average_time_to_answer_seconds": 17.0,
    },
}  # fmt: skip


def check(argv: list[str], stdin: bytes | None = None) -> tuple[int, str]:
    """The exit status and standard output of the command, in UTC."""
    out = io.StringIO()
    status = smdrcheck.main(
        argv, stdout=out, stdin=None if stdin is None else io.BytesIO(stdin), tz=UTC
    )
    return status, out.getvalue()


def check_json(argv: list[str], stdin: bytes | None = None) -> tuple[int, dict[str, Any]]:
    status, text = check([*argv, "--json"], stdin)
    document = json.loads(text)
    assert document["status"] == status
    return status, document


def totals(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The totals by path, without the path and the provisional list."""
    found = {}
    for entry in document["totals"]:
        values = dict(entry)
        path = values.pop("path")
        values.pop("provisional")
        values.pop("intervals", None)
        found[path] = values
    return found


def text_file(tmp_path: Path, lines: list[str | bytes], end: bytes = b"\r\n") -> str:
    path = tmp_path / "smdr.txt"
    data = b"".join((ln.encode("ascii") if isinstance(ln, str) else ln) + end for ln in lines)
    path.write_bytes(data)
    return str(path)


def all_records(tmp_path: Path) -> str:
    return text_file(tmp_path, [S[n] for n in sorted(S)])


# A text file of the document's records ---------------------------------------------------


def test_every_record_of_the_document_is_read_classified_and_counted(tmp_path: Path) -> None:
    path = all_records(tmp_path)
    status, text = check([path, "--date", "2024-03-12"])
    assert status == smdrcheck.EXIT_OK == 0
    blocks = text.split("\n\n")
    for n, (layout, outcome) in READ.items():
        block = blocks[n - 1]
        assert block.startswith(f"{path}:{n}  layout {layout} (detected)"), block
        assert f"  | {S[n]}\n" in block
        assert f"\n  {outcome}" in block, block
    # Fields: compact, blank ones left out, values with blanks quoted.
    assert (
        "  date=03/11 start=08:16 duration=00:02:14 calling=T012 time_to_answer=004"
        ' digits="P860 610 611 610" called=1001 system_id=001\n'
    ) in blocks[0]
    # The call start, dated on the reference day's year.
    assert "call start 2024-01-14 09:24:00" in blocks[4]
    assert "call start 2024-03-11 08:16:00" in blocks[0]
    assert "Problems: none" in text
    assert "Read: 12 lines, 12 records (11 of path calls, 11 in the figures), 0 unreadable" in text
    assert (
        "Layouts (detected): standard 9, extended_digits+tta4+ani_dnis 2, standard+tta4 1" in text
    )


@pytest.mark.parametrize(
    "n, verify",
    [
        (1, ["time to answer: ring time only, or queue and ring?"]),
        (2, ["the duration of an unanswered call", "*** with no ACD marker read as an abandon"]),
        (3, ["the duration of an unanswered call", "*** with no ACD marker read as an abandon"]),
        (4, ["I / R / U in the transfer flag", "the duration of an unanswered call"]),
        (7, []),
        (11, ["I / R / U in the transfer flag", "the duration of an unanswered call"]),
        (12, ["I / R / U in the transfer flag", "the duration of an unanswered call"]),
    ],
)
def test_each_outcome_says_what_it_rests_on(tmp_path: Path, n: int, verify: list[str]) -> None:
    status, text = check([text_file(tmp_path, [S[n]]), "--date", "2024-03-12"])
    assert status == 0
    said = [line for line in text.splitlines() if line.startswith("  [verify] ")]
    assert len(said) == len(verify)
    for line, start in zip(said, verify):
        assert line.startswith(f"  [verify] {start}")
    provisional = "  (a provisional outcome)" in text
    assert provisional is (n in (2, 3, 4, 11, 12))


def test_the_totals_per_path_are_the_figures_worked_out_by_hand(tmp_path: Path) -> None:
    status, document = check_json([all_records(tmp_path), "--date", "2024-03-12"])
    assert status == 0
    assert totals(document) == TOTALS
    assert [t["path"] for t in document["totals"]] == ["001", "123", "860"]
    assert all(t["provisional"] == list(smdrcheck.PROVISIONAL_FIGURES) for t in document["totals"])
    assert document["counts"] == {
        "lines": 12, "records": 12, "path_records": 11, "calls": 11, "not_a_path_call": 1,
        "unreadable": 0, "cut": 0, "unclassified": 0, "unplaced": 0, "too_late": 0,
    }  # fmt: skip
    assert document["outcomes"] == {
        "answered": 5, "abandoned": 2, "short_abandoned": 1, "interflowed": 1,
        "not_a_path_call": 1, "unavailable": 1, "requeued": 1,
    }  # fmt: skip
    assert document["problems"] == []
    assert document["files"] == [
        {"file": str(tmp_path / "smdr.txt"), "kind": "text", "lines": 12, "date": "2024-03-12",
         "notes": []},
    ]  # fmt: skip


def test_a_record_in_json(tmp_path: Path) -> None:
    _, document = check_json([text_file(tmp_path, [S[12]]), "--date", "2024-03-12"])
    (record,) = document["records"]
    assert {key: record[key] for key in ("file", "line", "received_at", "raw", "layout")} == {
        "file": str(tmp_path / "smdr.txt"), "line": 1, "received_at": None, "raw": S[12],
        "layout": "standard",
    }  # fmt: skip
    assert record["detected"] is True and record["readable"] is True
    assert record["outcome"] == "requeued"
    assert record["call_start"] == "2024-03-11T08:30:00+00:00"
    assert record["fields"]["transfer"] == "R" and record["fields"]["called"] == "1002"
    assert record["reading"]["path"] == "860"
    assert record["reading"]["groups"] == ["610", "611"]
    assert record["reading"]["unanswered"] is True
    assert [v["reading"] for v in record["verify"]] == ["transfer", "duration"]
    assert record["problems"] == [] and record["added"] == "call"


def test_intervals(tmp_path: Path) -> None:
    path = all_records(tmp_path)
    status, text = check([path, "--date", "2024-03-12", "--intervals"])
    assert "    2024-03-11 08:15-08:30  offered 7 answered 2 abandoned 2 short_abandoned 1" in text
    assert "    2024-03-11 08:30-08:45  offered 1 answered 0 abandoned 0" in text
    _, document = check_json([path, "--date", "2024-03-12", "--intervals"])
    by_path = {t["path"]: t["intervals"] for t in document["totals"]}
    assert [(i["start"], i["offered"], i["requeued"]) for i in by_path["860"]] == [
        (int(datetime.datetime(2024, 3, 11, 8, 15, tzinfo=UTC).timestamp()), 7, 0),
        (int(datetime.datetime(2024, 3, 11, 8, 30, tzinfo=UTC).timestamp()), 1, 1),
    ]
    assert [i["day"] for i in by_path["001"]] == ["2024-01-14"]
    assert "intervals" not in check_json([path, "--date", "2024-03-12"])[1]["totals"][0]


def test_quiet_gives_only_the_figures_and_the_problems(tmp_path: Path) -> None:
    path = text_file(tmp_path, [S[1], "garbage"])
    status, text = check([path, "--quiet"])
    assert status == 1
    assert text.startswith("Per path, over everything read:\n  path 860")
    assert "  | " + S[1] not in text and "layout standard (detected)" not in text
    assert f"  {path}:2: unreadable: fits no layout" in text
    assert "Before setting [smdr] confirmed" not in text
    _, document = check_json([path, "--quiet"])
    assert document["records"] == [] and len(document["problems"]) == 1


# Settings from the names file --------------------------------------------------------------


def test_the_names_file_sets_the_targets_the_threshold_and_confirmed(tmp_path: Path) -> None:
    names = tmp_path / "names.toml"
    names.write_text(
        "[service_level]\nseconds = 15\nshort_abandon_seconds = 2\n"
        '[service_level.paths."860"]\nseconds = 3\n[smdr]\nconfirmed = true\n'
    )
    path = all_records(tmp_path)
    status, document = check_json([path, "--date", "2024-03-12", "--names", str(names)])
    assert status == 0
    assert document["settings"] == {
        "service_level_seconds": 15, "path_service_level_seconds": {"860": 3},
        "short_abandon_seconds": 2, "confirmed": True,
    }  # fmt: skip
    found = totals(document)
    # 860: answered after 4 s twice, against 3 s; S3's 3 s is now a long abandon.
    assert {k: found["860"][k] for k in ("abandoned", "short_abandoned",
        "answered_within_target", "service_level_seconds", "service_level_percent")} == {
        "abandoned": 3, "short_abandoned": 0, "answered_within_target": 0,
        "service_level_seconds": 3, "service_level_percent": 0.0,
    }  # fmt: skip
    # 123: answered after 17 s against the file's 15 s.
    assert (found["123"]["service_level_seconds"], found["123"]["answered_within_target"]) == (
        15, 0,
    )  # fmt: skip
    assert {tuple(t["provisional"]) for t in document["totals"]} == {()}
    status, text = check([path, "--date", "2024-03-12", "--names", str(names)])
    assert "provisional" not in text and "Before setting [smdr] confirmed" not in text
    assert "path 860 (service level target 3 s)" in text


def test_without_names_the_text_says_what_to_look_at(tmp_path: Path) -> None:
    _, text = check([all_records(tmp_path), "--date", "2024-03-12"])
    checklist = text.split("Before setting [smdr] confirmed = true in the names file", 1)[1]
    assert "here: standard, extended_digits+tta4+ani_dnis, standard+tta4" in checklist
    assert (
        "seen answered, abandoned, short_abandoned, requeued, interflowed, unavailable;"
        " not seen none" in checklist
    )
    assert "ring time only, or queue and ring" in checklist
    _, text = check([text_file(tmp_path, [S[1]]), "--date", "2024-03-12"])
    assert "seen answered; not seen abandoned, short_abandoned, requeued" in text
    assert "  provisional until [smdr] confirmed = true: abandoned, short_abandoned," in text
    # The document the text points to has the section.
    assert "## Confirming the markers" in (ROOT / "docs" / "smdr.md").read_text()


# Lines that are not records -----------------------------------------------------------------


def test_garbage_cut_long_and_foreign_lines_are_problems_and_change_no_figure(
    tmp_path: Path,
) -> None:
    good = [S[n] for n in sorted(S)]
    bad: list[str | bytes] = [
        "garbage",
        S[1][:10],  # cut inside the start time
        "9" * 10_000,
        S[1][:40].encode() + b"\x00" * 500 + S[1][40:].encode(),
        S[2][:40].encode() + "\u00e9".encode() * 3 + S[2][43:].encode(),
        b"\x1b[2J",
        "LOGSYS info: READ completed for SMDR log with 19975 entries.",
    ]
    mixed: list[str | bytes] = [line for pair in zip(good, bad + [""] * 12) for line in pair]
    path = text_file(tmp_path, mixed)
    status, document = check_json([path, "--date", "2024-03-12"])
    assert status == smdrcheck.EXIT_PROBLEMS == 1
    assert totals(document) == TOTALS
    assert document["counts"]["unreadable"] == len(bad)
    assert document["counts"]["lines"] == 12 + len(bad)  # blank lines are left out
    assert [(p["line"], p["kind"]) for p in document["problems"]] == [
        (2 * i + 2, "unreadable") for i in range(len(bad))
    ]
    reasons = [p["why"] for p in document["problems"]]
    assert reasons[2] == (
        f"10000 bytes without a line end: more than the {MAX_LINE} the daemon takes,"
        " dropped as noise"
    )
    assert "control or non-ASCII" in reasons[3]
    assert reasons[4] == "not ASCII"
    # Nothing overflows: every line of the text is short, a long line shown cut.
    status, text = check([path, "--date", "2024-03-12"])
    assert status == 1
    assert max(len(line) for line in text.splitlines()) < 500
    assert "    | " + "9" * 120 + "... (10000 bytes)" in text
    assert "\\x00\\x00" in text and "\\xc3\\xa9" in text and "\\x1b[2J" in text


def test_an_unclassified_and_an_unplaced_path_record_are_problems(tmp_path: Path) -> None:
    no_agent = S[1].replace("1001", "    ")  # a time to answer, answered by nobody
    no_date = S[2].replace("03/11", "13/45")
    bad_flag = S[4].replace(" I ", " Q ")
    path = text_file(tmp_path, [no_agent, no_date, bad_flag, S[6]])
    status, document = check_json([path, "--date", "2024-03-12"])
    assert status == 1
    assert [(p["line"], p["kind"], p["why"]) for p in document["problems"]] == [
        (1, "unclassified", "a time to answer but no called party (agent): answered by whom?"),
        (2, "unplaced", "its date or start time cannot be read: no call to put it in"),
        (3, "unclassified", "the transfer flag 'Q' is none of T X C I R U"),
    ]
    assert document["counts"]["unclassified"] == 2 and document["counts"]["unplaced"] == 1
    found = totals(document)
    assert (found["860"]["offered"], found["860"]["unclassified"]) == (2, 2)
    assert found["123"]["answered"] == 1


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (S[1].replace("P860 ", "P8600"), "the path in Digits Dialed cannot be read"),
        (S[2].replace("00:00:41", "        "), "unanswered (***) with no duration"),
        (S[1].replace(" 004 ", " 0x4 "), "the time to answer '0x4' cannot be read"),
        (S[1].replace(" 004 ", "     "), "no time to answer and no ACD marker"),
    ],
)
def test_why_a_path_record_is_unclassified(tmp_path: Path, line: str, why: str) -> None:
    _, document = check_json([text_file(tmp_path, [line]), "--date", "2024-03-12"])
    (problem,) = document["problems"]
    assert problem["kind"] in ("unclassified", "unplaced")
    assert document["records"][0]["outcome"] == "unclassified"
    assert why in document["records"][0]["description"]


def test_a_forced_layout(tmp_path: Path) -> None:
    path = text_file(tmp_path, [S[1], S[9]])
    status, text = check([path, "--layout", "standard"])
    assert status == 1
    assert f"{path}:1  layout standard (forced)" in text
    assert f"{path}:2: unreadable: 120 characters, longer than the 90 of standard" in text
    assert "Layouts (forced with --layout standard): standard 1" in text
    status, text = check([path, "--layout", "extended_digits+tta4+ani_dnis"])
    assert f"{path}:2  layout extended_digits+tta4+ani_dnis (forced)" in text
    assert f"{path}:1: unreadable: no duration in columns 15-24" in text


# Line ends, dates, standard input, compressed files ---------------------------------------------


@pytest.mark.parametrize(
    "end", [b"\r\n", b"\n", b"\r", b"\r\n\x00\x00"], ids=["CRLF", "LF", "CR", "NUL fill"]
)
def test_every_line_end_the_daemon_takes(tmp_path: Path, end: bytes) -> None:
    path = text_file(tmp_path, [S[1], S[2], S[12]], end)
    status, document = check_json([path, "--date", "2024-03-12"])
    assert status == 0
    assert [(r["line"], r["outcome"]) for r in document["records"]] == [
        (1, "answered"), (2, "abandoned"), (3, "requeued"),
    ]  # fmt: skip


def test_a_last_line_without_its_end_is_read(tmp_path: Path) -> None:
    path = tmp_path / "smdr.txt"
    path.write_bytes(f"{S[1]}\r\n{S[2]}".encode())
    status, document = check_json([str(path), "--date", "2024-03-12"])
    assert status == 0 and document["counts"]["records"] == 2


def test_the_year_comes_from_the_date_or_the_files_modification(tmp_path: Path) -> None:
    new_year = S[1].replace("03/11", "12/31")
    path = text_file(tmp_path, [new_year])
    _, document = check_json([path, "--date", "2025-01-01"])
    assert document["records"][0]["call_start"] == "2024-12-31T08:16:00+00:00"
    _, document = check_json([path, "--date", "2025-12-31"])
    assert document["records"][0]["call_start"] == "2025-12-31T08:16:00+00:00"
    modified = datetime.datetime(2023, 1, 5, 12, 0).timestamp()
    os.utime(path, (modified, modified))
    _, document = check_json([path])
    assert document["records"][0]["call_start"] == "2022-12-31T08:16:00+00:00"
    assert document["files"][0]["date"] == "2023-01-05"


def test_standard_input(tmp_path: Path) -> None:
    data = f"{S[1]}\r\n{S[12]}\r\n".encode()
    status, document = check_json(["-", "--date", "2024-03-12"], stdin=data)
    assert status == 0
    assert [(r["file"], r["line"], r["outcome"]) for r in document["records"]] == [
        ("-", 1, "answered"), ("-", 2, "requeued"),
    ]  # fmt: skip
    status, text = check(["-", "--date", "2024-03-12"], stdin=gzip.compress(data))
    assert status == 0 and text.startswith("-:1  layout standard (detected)")


def test_a_compressed_text_file(tmp_path: Path) -> None:
    path = tmp_path / "smdr.txt.gz"
    path.write_bytes(gzip.compress(f"{S[5]}\n{S[6]}\n".encode()))
    status, document = check_json([str(path), "--date", "2024-03-12"])
    assert status == 0
    assert sorted(totals(document)) == ["001", "123"]


# Captures ---------------------------------------------------------------------------------------

T0 = datetime.datetime(2024, 3, 11, 8, 19, tzinfo=UTC).timestamp()


def capture(tmp_path: Path, entries: list[Entry], compress: bool = False) -> str:
    path = tmp_path / ("day.capture.gz" if compress else "day.capture")
    write_capture(str(path), entries, compress)
    return str(path)


def smdr(when: float, data: str | bytes) -> Data:
    return Data(T0 + when, data.encode() if isinstance(data, str) else data, "smdr")


def test_a_captures_smdr_lines_cut_as_the_daemon_cuts_them(tmp_path: Path) -> None:
    entries: list[Entry] = [
        Started(T0, "mitelacd 0.3.0"),
        Connected(T0, "10.1.2.3", 15373),
        Connected(T0, "10.1.2.3", 1752, stream="smdr"),
        Data(T0 + 1, b"\x0200K0800006100000000000\r\n"),  # ACD: never read here
        smdr(2, S[1] + "\r\n" + S[2][:30]),  # one read, a record and a half
        smdr(3, S[2][30:] + "\r"),  # the CR here, its LF in the next read
        smdr(4, "\n" + S[12] + "\r\n\x00\x00" + S[4] + "\r\n"),  # coalesced, NUL fill
        Data(T0 + 5, b"\x0201K0800006200010020104\r\n"),
        smdr(6, S[11][:50]),
        Lost(T0 + 7, "Connection was closed cleanly.", "smdr"),  # S11 cut short
        Connected(T0 + 20, "10.1.2.3", 1752, stream="smdr"),
        smdr(21, S[3] + "\r\n"),
        smdr(22, S[6][:20]),  # the capture stops here
    ]
    path = capture(tmp_path, entries, compress=True)
    status, document = check_json([path])
    assert status == 1
    lines = [
        (r["line"], r["received_at"] - T0, r.get("outcome"), r["cut"] is not None)
        for r in document["records"]
    ]
    assert lines == [
        (1, 2.0, "answered", False),
        (2, 3.0, "abandoned", False),
        (3, 4.0, "requeued", False),
        (4, 4.0, "interflowed", False),
        (5, 7.0, None, True),
        (6, 21.0, "short_abandoned", False),
        (7, 22.0, None, True),
    ]
    assert [(p["line"], p["kind"]) for p in document["problems"]] == [(5, "cut"), (7, "cut")]
    assert document["problems"][0]["why"] == (
        "the SMDR connection ended (Connection was closed cleanly.) before the line's end:"
        " not read, not counted"
    )
    assert document["problems"][1]["why"].startswith("the capture ends before the line's end")
    # The cut S11 would have read as a plain abandon: it is in no figure.
    assert totals(document)["860"]["offered"] == 5
    assert totals(document)["860"]["unavailable"] == 0
    assert document["counts"]["cut"] == 2 and document["counts"]["unreadable"] == 0
    assert document["files"][0]["kind"] == "capture"
    _, text = check([path])
    assert f"{path} SMDR line 1, received 2024-03-11 08:19:02  layout standard (detected)" in text


@pytest.mark.parametrize(
    "end",
    [
        Connected(T0 + 9, "10.1.2.3", 1752, stream="smdr"),
        Started(T0 + 9, "mitelacd 0.3.0"),
        Stopped(T0 + 9, "stopped"),
        Gap(T0 + 9, T0 + 10, 3, 300),
    ],
    ids=["connected", "start", "stop", "gap"],
)
def test_whatever_ends_a_connection_cuts_its_line(tmp_path: Path, end: Entry) -> None:
    path = capture(tmp_path, [smdr(1, S[1][:60]), end, smdr(10, S[2] + "\r\n")])
    status, document = check_json([path])
    assert status == 1
    assert [(p["line"], p["kind"]) for p in document["problems"]] == [(1, "cut")]
    assert document["problems"][0]["received_at"] == T0 + 9
    assert [r.get("outcome") for r in document["records"]] == [None, "abandoned"]


def test_acd_connections_and_continued_smdr_ones_do_not_cut(tmp_path: Path) -> None:
    path = capture(
        tmp_path,
        [
            smdr(1, S[1][:60]),
            Lost(T0 + 2, "Connection lost.", "acd"),
            Connected(T0 + 3, "10.1.2.3", 15373),
            Connected(T0 + 3, "10.1.2.3", 1752, continued=True, stream="smdr"),
            smdr(4, S[1][60:] + "\r\n"),
        ],
    )
    status, document = check_json([path])
    assert status == 0
    assert [(r["line"], r["received_at"] - T0, r["outcome"]) for r in document["records"]] == [
        (1, 4.0, "answered")
    ]


def test_a_line_longer_than_the_daemon_takes_is_noise(tmp_path: Path) -> None:
    path = capture(tmp_path, [smdr(1, "X" * 2000), smdr(2, "Y" * 8000 + "\r\n" + S[1] + "\r\n")])
    status, document = check_json([path])
    assert status == 1
    (problem,) = document["problems"]
    assert problem["why"] == (
        f"10000 bytes without a line end: more than the {MAX_LINE} the daemon takes,"
        " dropped as noise"
    )
    # Only its start is kept, and said to be only that.
    raw = document["records"][0]["raw"]
    assert raw == "X" * 2000 + "Y" * (smdrcheck.KEEP_BYTES - 2000) + "... (10000 bytes)"
    assert document["records"][0]["length"] == 10_000
    assert document["records"][1]["outcome"] == "answered"


def test_a_record_that_came_after_its_interval_closed_is_not_counted(tmp_path: Path) -> None:
    # 08:16's interval ends 08:30 and closes 10:30; the record comes at 10:31.
    late = datetime.datetime(2024, 3, 11, 10, 31, tzinfo=UTC).timestamp() - T0
    path = capture(tmp_path, [smdr(0, S[2] + "\r\n"), smdr(late, S[1] + "\r\n")])
    status, document = check_json([path])
    assert status == 0  # read and classified: the daemon would not count it either
    assert [(p["line"], p["kind"]) for p in document["problems"]] == [(2, "too_late")]
    assert totals(document)["860"]["offered"] == 1
    assert document["counts"]["too_late"] == 1


def test_a_capture_without_smdr_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = capture(tmp_path, [Connected(T0, "10.1.2.3", 15373), Data(T0 + 1, b"\x0200K08\r\n")])
    status, text = check([path])
    assert status == 0
    assert "no path calls" in text
    assert capsys.readouterr().err == (
        f"mitelacd-smdr-check: {path}: no SMDR in this capture (was the daemon run with --smdr?)\n"
    )


def test_a_capture_on_standard_input(tmp_path: Path) -> None:
    path = capture(tmp_path, [smdr(1, S[1] + "\r\n" + S[12] + "\r\n")], compress=True)
    status, document = check_json(["-"], stdin=Path(path).read_bytes())
    assert status == 0
    assert document["files"][0]["kind"] == "capture"
    assert [(r["file"], r["outcome"]) for r in document["records"]] == [
        ("-", "answered"), ("-", "requeued"),
    ]  # fmt: skip


def test_captures_and_text_files_together_in_the_order_given(tmp_path: Path) -> None:
    path = capture(tmp_path, [smdr(1, S[12] + "\r\n")])
    text = text_file(tmp_path, [S[12].replace("*** ", "030 ").replace("1002R", "1003 ")])
    _, document = check_json([path, text, "--date", "2024-03-12"])
    # The requeue then the answer of the same call: one call, answered.
    assert totals(document)["860"]["offered"] == 1
    assert totals(document)["860"]["answered"] == 1
    assert [f["kind"] for f in document["files"]] == ["capture", "text"]


# The command line ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: FILE"),
        (["f", "--layout", "wide"], "argument --layout: no SMDR layout 'wide'"),
        (["f", "--layout", "standard+ani"], "argument --layout: no SMDR layout option 'ani'"),
        (["f", "--date", "11/03/2024"], "argument --date: not a date: '11/03/2024' (YYYY-MM-DD)"),
        (["-", "-"], "'-' (standard input) may be given once"),
        (["f", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_a_bad_command_line_says_the_error_then_where_the_help_is(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as stopped:
        smdrcheck.main(argv, stdout=io.StringIO())
    assert stopped.value.code == smdrcheck.EXIT_UNREADABLE == 2
    first, pointer = capsys.readouterr().err.splitlines()
    assert first.startswith(f"mitelacd-smdr-check: {message}"), first
    assert pointer == "Run 'mitelacd-smdr-check --help' for the options."


def test_the_layouts_are_listed_when_one_is_wrong(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        smdrcheck.main(["f", "--layout", "wide"], stdout=io.StringIO())
    assert "the layouts are standard, standard+tta4, standard+ani_dnis" in capsys.readouterr().err


def test_a_bad_names_file_is_named_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = tmp_path / "names.toml"
    names.write_text("[smdr]\nconfirmed = 1\n")
    with pytest.raises(SystemExit) as stopped:
        smdrcheck.main([all_records(tmp_path), "--names", str(names)], stdout=io.StringIO())
    assert stopped.value.code == 2
    first, pointer = capsys.readouterr().err.splitlines()
    assert first == (
        f"mitelacd-smdr-check: --names: {names}, line 2:"
        " [smdr] confirmed must be true or false, not 1"
    )
    assert pointer == "Run 'mitelacd-smdr-check --help' for the options."


@pytest.mark.parametrize("kind", ["missing", "folder", "bad gzip", "bad capture"])
def test_a_file_that_cannot_be_read_is_named_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    path = tmp_path / "f"
    if kind == "folder":
        path.mkdir()
    elif kind == "bad gzip":
        path.write_bytes(b"\x1f\x8b" + b"not gzip at all")
    elif kind == "bad capture":
        path.write_bytes(b"mitelacd-capture 99\n")
    good = all_records(tmp_path)
    out = io.StringIO()
    status = smdrcheck.main([good, str(path)], stdout=out)
    assert status == 2
    assert out.getvalue() == ""  # nothing printed for the files that could be read
    error = capsys.readouterr().err
    assert error.startswith(f"mitelacd-smdr-check: {path}") or error.startswith(
        f"mitelacd-smdr-check: cannot read {path}"
    ), error
    assert error.count("\n") == 1
    if kind == "missing":
        assert error == f"mitelacd-smdr-check: cannot read {path}: No such file or directory\n"


def test_the_console_script_is_declared() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    scripts = dict(
        line.split(" = ")
        for line in config["options.entry_points"]["console_scripts"].strip().splitlines()
    )
    module, name = scripts["mitelacd-smdr-check"].split(":")
    assert getattr(importlib.import_module(module), name) is smdrcheck.run


@pytest.mark.processes
def test_python_m_runs_it(tmp_path: Path) -> None:
    path = text_file(tmp_path, [S[1], "garbage"])
    done = subprocess.run(
        [sys.executable, "-m", "mitelacd.feed.smdrcheck", path, "--quiet"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "  path 860 (service level target 20 s)" in done.stdout
    assert f"{path}:2: unreadable: fits no layout" in done.stdout
    assert done.stderr == ""


# docs/smdr.md -------------------------------------------------------------------------------

DOCS = ROOT / "docs" / "smdr.md"


def test_every_option_is_in_the_docs() -> None:
    text = DOCS.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(--[a-z-]+)[^`]*` \|", text, re.MULTILINE))
    options = {
        option
        for action in smdrcheck.arguments()._actions
        for option in action.option_strings
        if option.startswith("--") and option not in ("--help", "--version")
    }
    assert documented == options


def test_the_settings_example_of_the_docs_reads() -> None:
    from mitelacd.floor.names import ServiceLevelSettings, parse_names

    example = DOCS.read_text(encoding="utf-8").split("```toml\n", 1)[1].split("```", 1)[0]
    names = parse_names(example, "names.toml")
    assert names.service_level == ServiceLevelSettings(20, 6, {"860": 30})
    assert names.smdr_confirmed is False


def test_every_layout_of_the_docs_is_one_the_daemon_takes() -> None:
    text = DOCS.read_text(encoding="utf-8").split("## Layouts", 1)[1].split("\n## ", 1)[0]
    kinds = set(re.findall(r"^\| `([a-z0-9_]+)` \|", text, re.MULTILINE))
    options = set(re.findall(r"^\| `\+([a-z0-9_]+)` \|", text, re.MULTILINE))
    assert kinds == {"standard", "extended_digits", "level1", "level2"}
    assert options == {"tta4", "ani_dnis", "oli", "meter"}
    for name in re.findall(r"`((?:standard|extended_digits|level[12])(?:\+[a-z0-9_]+)+)`", text):
        layout_named(name)
