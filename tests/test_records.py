"""The record parser against docs/protocol.md §2 and every example of §4."""

from __future__ import annotations

import datetime
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mitelacd.floor.records import (
    AgentEvent,
    CallEventCode,
    Malformed,
    ParseResult,
    Refresh,
    StatsCode,
    StatsReport,
    parse_record,
)

T = datetime.time
R = TypeVar("R", AgentEvent, StatsReport, Refresh)


def body(wire: str) -> bytes:
    """What the framer hands the parser: STX and the CR LF terminator removed."""
    assert wire.startswith("\x02") and wire.endswith("\r\n")
    return wire[1:-2].encode("ascii")


def call(
    seq: int,
    code: CallEventCode,
    time: datetime.time,
    dn: str,
    agent: str,
    tail: str,
    button: int | None = None,
    reason: int | None = None,
    path: str | None = None,
    extra: str = "",
) -> AgentEvent:
    return AgentEvent(
        seq=seq, code=code, time=time, dn=dn, agent=agent, tail=tail,
        button=button, reason=reason, path=path, extra=extra,
    )  # fmt: skip


def stats(
    seq: int,
    code: StatsCode,
    time: datetime.time,
    number: str,
    waiting: str,
    agents: str,
    longest: str,
    trailing: str,
) -> StatsReport:
    return StatsReport(
        seq=seq, code=code, time=time, number=number, waiting_raw=waiting,
        agents_raw=agents, longest_raw=longest, trailing=trailing,
    )  # fmt: skip


def refresh(seq: int, time: datetime.time, date_raw: str, date: datetime.date | None) -> Refresh:
    return Refresh(seq=seq, code="R", time=time, date_raw=date_raw, date=date)


# Protocol doc §4, #1-#36: the wire literal and every field it must give.
# Code choices where the doc is unsure: C/E tails are `reason` (button None);
# G/S path = last 3 characters of the tail, button = the rest.
EXAMPLES: list[tuple[int, str, ParseResult]] = [
    (1, "\x0274R13024320140115\r\n",
     refresh(74, T(13, 2, 43), "20140115", datetime.date(2014, 1, 15))),
    (2, "\x0212A0815022001   1001   00\r\n",
     call(12, "A", T(8, 15, 2), "2001", "1001", "00", button=0)),
    (3, "\x0213D0815022001   1001   00\r\n",
     call(13, "D", T(8, 15, 2), "2001", "1001", "00", button=0)),
    (4, "\x0214K08151061000000100000000000\r\n",
     stats(14, "K", T(8, 15, 10), "610", "000", "001", "0000", "0000000")),
    (5, "\x0215Q08151086000000100000000000\r\n",
     stats(15, "Q", T(8, 15, 10), "860", "000", "001", "0000", "0000000")),
    (6, "\x0216R08151020240311\r\n",
     refresh(16, T(8, 15, 10), "20240311", datetime.date(2024, 3, 11))),
    (7, "\x0217T0816442001   1001   01\r\n",
     call(17, "T", T(8, 16, 44), "2001", "1001", "01", button=1)),
    (8, "\x0218U0816472001   1001   01\r\n",
     call(18, "U", T(8, 16, 47), "2001", "1001", "01", button=1)),
    (9, "\x0219G0816472001   1001   01860\r\n",
     call(19, "G", T(8, 16, 47), "2001", "1001", "01860", button=1, path="860")),
    (10, "\x0220N0819032001   1001   01\r\n",
     call(20, "N", T(8, 19, 3), "2001", "1001", "01", button=1)),
    (11, "\x0221O0819402001   1001   01\r\n",
     call(21, "O", T(8, 19, 40), "2001", "1001", "01", button=1)),
    (12, "\x0222L0822122001   1001   00\r\n",
     call(22, "L", T(8, 22, 12), "2001", "1001", "00", button=0)),
    (13, "\x0223M0822422001   1001   00\r\n",
     call(23, "M", T(8, 22, 42), "2001", "1001", "00", button=0)),
    (14, "\x0224J0822422001   1001   01\r\n",
     call(24, "J", T(8, 22, 42), "2001", "1001", "01", button=1)),
    (15, "\x0225I0830052001   1001   02\r\n",
     call(25, "I", T(8, 30, 5), "2001", "1001", "02", button=2)),
    (16, "\x0226J0831312001   1001   02\r\n",
     call(26, "J", T(8, 31, 31), "2001", "1001", "02", button=2)),
    (17, "\x0227H0844102001   1001   03\r\n",
     call(27, "H", T(8, 44, 10), "2001", "1001", "03", button=3)),
    (18, "\x0228N0844552001   1001   03\r\n",
     call(28, "N", T(8, 44, 55), "2001", "1001", "03", button=3)),
    (19, "\x0229P0845202001   1001   03\r\n",
     call(29, "P", T(8, 45, 20), "2001", "1001", "03", button=3)),
    (20, "\x0230E0900002001   1001   05\r\n",
     call(30, "E", T(9, 0, 0), "2001", "1001", "05", reason=5)),
    (21, "\x0231F0915002001   1001   00\r\n",
     call(31, "F", T(9, 15, 0), "2001", "1001", "00", button=0)),
    (22, "\x0232C0930002001   1001   00\r\n",
     call(32, "C", T(9, 30, 0), "2001", "1001", "00", reason=0)),
    (23, "\x0233D0934122001   1001   00\r\n",
     call(33, "D", T(9, 34, 12), "2001", "1001", "00", button=0)),
    (24, "\x0234C1001012050          00\r\n",
     call(34, "C", T(10, 1, 1), "2050", "", "00", reason=0)),
    (25, "\x0235H1002302050          01\r\n",
     call(35, "H", T(10, 2, 30), "2050", "", "01", button=1)),
    (26, "\x0236S1015002002   1002   01123\r\n",
     call(36, "S", T(10, 15, 0), "2002", "1002", "01123", button=1, path="123")),
    (27, "\x0237K10151061000300201450000000\r\n",
     stats(37, "K", T(10, 15, 10), "610", "003", "002", "0145", "0000000")),
    (28, "\x0238Q10151086001200210300000000\r\n",
     stats(38, "Q", T(10, 15, 10), "860", "012", "002", "1030", "0000000")),
    (29, "\x0239B1200002001   1001   00\r\n",
     call(39, "B", T(12, 0, 0), "2001", "1001", "00", button=0)),
    (30, "\x0240B1300002003   1003   00\r\n",
     call(40, "B", T(13, 0, 0), "2003", "1003", "00", button=0)),
    (31, "\x0241A1300002003   1004   00\r\n",
     call(41, "A", T(13, 0, 0), "2003", "1004", "00", button=0)),
    (32, "\x0299G1400015551234123456701007\r\n",
     call(99, "G", T(14, 0, 1), "5551234", "1234567", "01007", button=1, path="007")),
    (33, "\x0200J1403205551234123456701\r\n",
     call(0, "J", T(14, 3, 20), "5551234", "1234567", "01", button=1)),
    (34, "\x0201A1500002004   10045  00\r\n",
     call(1, "A", T(15, 0, 0), "2004", "10045", "00", button=0)),
    (35, "\x0202K0818106100000000000\r\n",
     stats(2, "K", T(8, 18, 10), "610", "000", "000", "0000", "")),
    (36, "\x0203Q0818108600000000000\r\n",
     stats(3, "Q", T(8, 18, 10), "860", "000", "000", "0000", "")),
]  # fmt: skip


def test_examples_cover_the_whole_table() -> None:
    assert [n for n, _, _ in EXAMPLES] == list(range(1, 37))


@pytest.mark.parametrize(
    "wire, expected", [(w, e) for _, w, e in EXAMPLES], ids=[f"#{n}" for n, _, _ in EXAMPLES]
)
def test_protocol_example(wire: str, expected: ParseResult) -> None:
    # attrs equality compares every field: seq, code, time, dn, agent, tail,
    # button, reason, path, extra / number, raw figures, trailing / date.
    assert parse_record(body(wire)) == expected


def parsed(wire: str, kind: type[R]) -> R:
    """The record ``wire`` holds, which must be a ``kind``."""
    result = parse_record(body(wire))
    assert isinstance(result, kind), result
    return result


def test_example_derived_values() -> None:
    k = parsed(EXAMPLES[26][1], StatsReport)  # #27
    assert (k.waiting, k.agents, k.longest_seconds, k.is_group) == (3, 2, 105, True)
    q = parsed(EXAMPLES[27][1], StatsReport)  # #28
    assert (q.waiting, q.agents, q.longest_seconds, q.is_group) == (12, 2, 630, False)
    r = parsed(EXAMPLES[0][1], Refresh)  # #1
    assert r.pbx_datetime == datetime.datetime(2014, 1, 15, 13, 2, 43)
    ext = parsed(EXAMPLES[23][1], AgentEvent)  # #24
    assert ext.is_extension_event and ext.name == "dnd_on"
    assert not parsed(EXAMPLES[1][1], AgentEvent).is_extension_event  # #2


def test_coalesced_and_split_examples_parse_record_by_record() -> None:
    coalesced = (
        "\x0204K08181061000000100000000000\r\n\x0205Q08181086000000100000000000\r\n"
        "\x0206R08181020240311\r\n"
    )
    parts = ["\x02" + p for p in coalesced.split("\x02")[1:]]
    results = [parse_record(body(p)) for p in parts]
    assert [type(r) for r in results] == [StatsReport, StatsReport, Refresh]
    assert [(r.seq, r.code) for r in results] == [(4, "K"), (5, "Q"), (6, "R")]
    split = parse_record(body("\x0207G0820002001   10" + "01   01860\r\n"))
    assert split == call(7, "G", T(8, 20, 0), "2001", "1001", "01860", button=1, path="860")


# Malformed input ------------------------------------------------------------

GOOD_TAIL = b"2001   1001   00"


@pytest.mark.parametrize(
    "raw, reason, code",
    [
        (b"", "shorter than a record header", None),
        (b"12A0815", "shorter than a record header", None),
        (b"12y081502" + GOOD_TAIL, "unknown function code 'y'", None),
        (b"12Z081502" + GOOD_TAIL, "unknown function code 'Z'", None),
        (b"12V081502" + GOOD_TAIL, "unknown function code 'V'", None),
        ("12A0815022001   1001   0\u00e9".encode("latin-1"), "not ASCII", None),
        ("12A0815022001   1001   0\u00e9".encode("utf-8"), "not ASCII", None),
        (b"12A081502\t2001   1001   00", "control characters", None),
        (b"12A081502" + GOOD_TAIL + b"\x00", "control characters", None),
        (b"1xA081502" + GOOD_TAIL, "record number '1x'", None),
        (b" 2A081502" + GOOD_TAIL, "record number ' 2'", None),
        (b"12A08150x" + GOOD_TAIL, "time '08150x'", "A"),
        (b"12A256199" + GOOD_TAIL, "time '256199'", "A"),
        (b"12A240000" + GOOD_TAIL, "time '240000'", "A"),
        (b"12A086000" + GOOD_TAIL, "time '086000'", "A"),
        (b"14K081510610 00001" + b"0000", "not all digits", "K"),
        (b"14Q08151086000000100x0", "not all digits", "Q"),
        (b"14K0815106100000010000"[:21], "shorter than 22", "K"),
        (b"14Q081510", "shorter than 22", "Q"),
        (b"12A081502       1001   00", "directory number '' is not", "A"),
        (b"12T081502", "directory number '' is not", "T"),
        (b"12A0815022O01   1001   00", "directory number '2O01' is not", "A"),
        (b"12A0815022001   10 01  00", "agent ID '10 01' is not 1-7 digits", "A"),
        (b"12A0815022001   1OO1   00", "agent ID '1OO1' is not 1-7 digits", "A"),
        (b"12G0815022001   -1     01860", "agent ID '-1' is not 1-7 digits", "G"),
        (b"12B0815022001   1e10   00", "agent ID '1e10' is not 1-7 digits", "B"),
    ],
)
def test_malformed(raw: bytes, reason: str, code: str | None) -> None:
    result = parse_record(raw)
    assert isinstance(result, Malformed)
    assert reason in result.reason
    assert result.raw == raw
    assert result.code == code


@pytest.mark.parametrize(
    "raw, seq",
    [
        (b"12y081502" + GOOD_TAIL, 12),
        ("47A0815022001   1001   0\u00e9".encode("latin-1"), 47),
        (b"03A08150x" + GOOD_TAIL, 3),
        (b"99A0815022001   1OO1   00", 99),
        (b"00K081510610 00001" + b"0000", 0),
        (b"55", 55),
        (b"1xA081502" + GOOD_TAIL, None),
        (b"", None),
    ],
)
def test_an_unreadable_record_keeps_a_readable_number(raw: bytes, seq: int | None) -> None:
    # A record whose number can be read counts for numbering (state-model §6).
    result = parse_record(raw)
    assert isinstance(result, Malformed)
    assert result.seq == seq


@pytest.mark.parametrize("dn", ["2001*", "#12", "*"])
def test_directory_numbers_may_hold_star_and_hash(dn: str) -> None:
    result = parse_record(f"12C081502{dn:<7}{'1001':<7}00".encode())
    assert isinstance(result, AgentEvent)
    assert result.dn == dn


def test_k_with_a_letter_in_a_figure_is_malformed() -> None:
    assert isinstance(parse_record(b"14K08151061000x0010000"), Malformed)
    # ...while the same report with digits is fine (the case above is not
    # rejected for some other reason).
    assert isinstance(parse_record(b"14K0815106100000010000"), StatsReport)


# Liberal reading --------------------------------------------------------------


@pytest.mark.parametrize("dn", ["2001", "20011", "200111", "5551234"])
@pytest.mark.parametrize("agent", ["1001", "10045", "100456", "1234567"])
def test_dn_and_agent_of_4_to_7_characters(dn: str, agent: str) -> None:
    event = parse_record(f"12A081502{dn:<7}{agent:<7}00".encode())
    assert isinstance(event, AgentEvent)
    assert (event.dn, event.agent, event.button) == (dn, agent, 0)


@pytest.mark.parametrize(
    "code, tail, button, reason, path, extra",
    [
        ("T", "", None, None, None, ""),
        ("T", "1", 1, None, None, ""),
        ("T", "001", 1, None, None, ""),
        ("H", "123", 123, None, None, ""),
        ("A", "0", 0, None, None, ""),
        ("I", "x1", None, None, None, ""),  # not a number: kept in tail only
        ("E", "", None, None, None, ""),
        ("E", "123", None, 123, None, ""),
        ("C", "7", None, 7, None, ""),
        ("G", "860", None, None, "860", ""),
        ("G", "1860", 1, None, "860", ""),
        ("G", "001007", 1, None, "007", ""),
        ("G", "01", 1, None, None, ""),
        ("S", "02123", 2, None, "123", ""),
        ("J", "0", 0, None, None, ""),
        ("J", "01", 1, None, None, ""),
        ("J", "012", 1, None, None, "2"),
        ("J", "01ACD", 1, None, None, "ACD"),
    ],
)
def test_tail_of_any_width(
    code: str, tail: str, button: int | None, reason: int | None, path: str | None, extra: str
) -> None:
    event = parse_record(f"12{code}0815022001   1001   {tail}".encode())
    assert isinstance(event, AgentEvent)
    assert (event.tail, event.button, event.reason, event.path, event.extra) == (
        tail, button, reason, path, extra,
    )  # fmt: skip


# Field widths (state-model §1, v3): a key number or a reason has 2 digits, and up
# to 4 are read; a longer number is no field of the record, never a huge integer.
HUGE = "9" * 20


@pytest.mark.parametrize(
    "code, tail, reason",
    [
        ("E", HUGE, f"reason '{HUGE}' is 20 digits, more than 4"),
        ("E", "00005", "reason '00005' is 5 digits"),
        ("C", "12345", "reason '12345' is 5 digits"),
        ("G", HUGE + "860", f"button '{HUGE}' is 20 digits"),
        ("G", HUGE, "button '99999999999999999' is 17 digits"),
        ("S", "12345123", "button '12345' is 5 digits"),
        ("J", HUGE, f"button '{HUGE}' is 20 digits"),
        ("J", "  " + HUGE, f"button '{HUGE}' is 20 digits"),
        ("J", "01234", "button '01234' is 5 digits"),
        ("N", HUGE, f"button '{HUGE}' is 20 digits"),
        ("O", HUGE, f"button '{HUGE}' is 20 digits"),
        ("P", HUGE, f"button '{HUGE}' is 20 digits"),
        ("T", HUGE, f"button '{HUGE}' is 20 digits"),
        ("U", " " + HUGE, f"button '{HUGE}' is 20 digits"),
        ("H", HUGE, f"button '{HUGE}' is 20 digits"),
        ("I", "10000", "button '10000' is 5 digits"),
        ("A", "00000", "button '00000' is 5 digits"),
        ("L", HUGE + " x", f"button '{HUGE}' is 20 digits"),
    ],
)
def test_a_number_wider_than_its_field_is_unreadable(code: str, tail: str, reason: str) -> None:
    raw = f"12{code}0815022001   1001   {tail}".encode()
    result = parse_record(raw)
    assert isinstance(result, Malformed), result
    assert reason in result.reason
    assert (result.raw, result.code, result.seq) == (raw, code, 12)


@pytest.mark.parametrize(
    "code, tail, button, reason, path, extra",
    [
        ("N", "9999", 9999, None, None, ""),
        ("T", "  0012", 12, None, None, ""),
        ("E", "9999", None, 9999, None, ""),
        ("C", "0099", None, 99, None, ""),
        ("G", "9999860", 9999, None, "860", ""),
        ("S", "0001123", 1, None, "123", ""),
        ("J", "0123", 1, None, None, "23"),
        ("J", "01 " + HUGE, 1, None, None, " " + HUGE),  # the extra field is kept raw
        ("H", "1 " + HUGE, None, None, None, ""),  # not a number: read as no button
    ],
)
def test_up_to_four_digits_are_read(
    code: str, tail: str, button: int | None, reason: int | None, path: str | None, extra: str
) -> None:
    event = parse_record(f"12{code}0815022001   1001   {tail}".encode())
    assert isinstance(event, AgentEvent), event
    assert (event.button, event.reason, event.path, event.extra) == (button, reason, path, extra)


def test_tail_is_everything_after_the_agent_field() -> None:
    # state-model §2: tail = [24:] (STX at 0) with the terminator stripped;
    # the framer has already removed trailing spaces, leading ones are data.
    event = parse_record(b"12T0815022001   1001    1")
    assert isinstance(event, AgentEvent)
    assert (event.tail, event.button) == (" 1", 1)


@pytest.mark.parametrize(
    "raw, trailing",
    [
        (b"14K0815106100030020145", ""),
        (b"14K08151061000300201450000000", "0000000"),
        (b"14Q0815108600030020145000", "000"),
    ],
)
def test_stats_with_and_without_trailing_digits(raw: bytes, trailing: str) -> None:
    report = parse_record(raw)
    assert isinstance(report, StatsReport)
    assert (report.waiting_raw, report.agents_raw, report.longest_raw) == ("003", "002", "0145")
    assert report.trailing == trailing


@pytest.mark.parametrize(
    "date_raw", ["20241340", "20240230", "2024031", "", "2024-3-1", "00000000"]
)
def test_refresh_with_invalid_date_keeps_raw(date_raw: str) -> None:
    result = parse_record(f"16R081510{date_raw}".encode())
    assert isinstance(result, Refresh)
    assert result.time == T(8, 15, 10)
    assert result.date_raw == date_raw
    assert result.date is None and result.pbx_datetime is None


@pytest.mark.parametrize("raw, dn", [(b"34C1001012050", "2050"), (b"34T1001015551234", "5551234")])
def test_stripped_blank_agent_and_tail_is_an_extension_event(raw: bytes, dn: str) -> None:
    event = parse_record(raw)
    assert isinstance(event, AgentEvent)
    assert (event.dn, event.agent, event.tail) == (dn, "", "")
    assert event.is_extension_event


# Never raises -------------------------------------------------------------------

TYPES = (AgentEvent, StatsReport, Refresh, Malformed)
_near_record = st.builds(
    lambda seq, code, time, rest: f"{seq}{code}{time}".encode("ascii") + rest,
    st.text("0123456789 x", min_size=2, max_size=2),
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZy"),
    st.text("0123456789", min_size=6, max_size=6),
    st.binary(max_size=30) | st.text(" 0123456789", max_size=30).map(str.encode),
)


@given(st.binary(max_size=80) | _near_record)
def test_parse_record_never_raises(raw: bytes) -> None:
    result = parse_record(raw)
    assert isinstance(result, TYPES)
    if isinstance(result, Malformed):
        assert result.raw == raw and result.reason
