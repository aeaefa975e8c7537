"""The ACD Real Time Events wire format, turned into typed records.

Pure: bytes in, frozen records out. No Twisted, no clock, no I/O, and no
exceptions for bad input: anything that cannot be read becomes a
:class:`Malformed` value that the caller counts.

Offsets below are *body* offsets: the record with its STX removed, so they are
one less than the STX-based offsets of the protocol notes (agent ID at STX
offset 17 is body offset 16).
"""

from __future__ import annotations

import datetime
import functools
from typing import Literal, get_args

import attrs

STX = b"\x02"

#: Function codes that describe something an agent (or a set) did.
CallEventCode = Literal[
    "A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "L", "M", "N", "O", "P", "S", "T", "U"
]  # fmt: skip
#: Statistics reports: K for an agent skill group, Q for an ACD path.
StatsCode = Literal["K", "Q"]
#: The keep-alive that carries the PBX's date.
RefreshCode = Literal["R"]
#: Every function code a readable record has.
FunctionCode = CallEventCode | StatsCode | RefreshCode

CALL_EVENT_CODES: frozenset[CallEventCode] = frozenset(get_args(CallEventCode))
STATS_CODES: frozenset[StatsCode] = frozenset(get_args(StatsCode))
REFRESH_CODE: RefreshCode = "R"
#: Codes whose tail ends with the 3-digit path reporting number.
PATH_CODES: frozenset[CallEventCode] = frozenset(("G", "S"))
#: Codes whose tail is a make-busy (or DND) reason rather than a key number.
REASON_CODES: frozenset[CallEventCode] = frozenset(("C", "E"))

# Looking a character up here both tells whether it is a code of that kind
# and gives it the code's type.
_CALL_EVENT_CODE: dict[str, CallEventCode] = {code: code for code in CALL_EVENT_CODES}
_STATS_CODE: dict[str, StatsCode] = {code: code for code in STATS_CODES}

EVENT_NAMES: dict[FunctionCode, str] = {
    "A": "login",
    "B": "logout",
    "C": "dnd_on",
    "D": "dnd_off",
    "E": "make_busy_on",
    "F": "make_busy_off",
    "G": "acd_answer",
    "H": "personal_answer",
    "I": "originate",
    "J": "idle",
    "K": "group_report",
    "L": "work_timer_start",
    "M": "work_timer_end",
    "N": "hold",
    "O": "retrieve",
    "P": "hold_abandon",
    "Q": "path_report",
    "R": "refresh",
    "S": "remote_acd_answer",
    "T": "ringing",
    "U": "ringing_end",
}

# Body offsets (STX removed).
_SEQ = slice(0, 2)
_CODE = 2
_TIME = slice(3, 9)
_DN = slice(9, 16)
_AGENT = slice(16, 23)
_TAIL_START = 23
_NUMBER = slice(9, 12)
_WAITING = slice(12, 15)
_AGENTS = slice(15, 18)
_LONGEST = slice(18, 22)
_TRAILING_START = 22
_DATE = slice(9, 17)

#: An agent ID is 1-7 of these (blank: no agent at the set).
_DIGITS = frozenset("0123456789")
#: A directory number is 1-7 of these.
_DN_CHARS = frozenset("0123456789*#")

#: J may carry one more field after a key number of this width.
_BUTTON_WIDTH = 2
#: The most digits a key number or reason may have: 2 are sent, up to 4 are
#: read (state-model §1). A longer number is no field of the record.
_FIELD_MAX_DIGITS = 4


def _number(raw: str) -> int | None:
    """A zero-padded decimal field, or None when it is blank or not digits."""
    raw = raw.strip()
    if raw.isascii() and raw.isdigit():
        return int(raw)
    return None


def _overlong(raw: str) -> str | None:
    """The number a field starts with, when it has more digits than a field may.

    Leading spaces aside, so that padding cannot hide a number too wide to be
    a key number or a reason.
    """
    text = raw.lstrip(" ")
    digits = text[: len(text) - len(text.lstrip("0123456789"))]
    return digits if len(digits) > _FIELD_MAX_DIGITS else None


def mmss_seconds(raw: str) -> int:
    """``MMSS`` as seconds. Seconds above 59 are taken as they come (no fail)."""
    return int(raw[:2]) * 60 + int(raw[2:])


@attrs.frozen
class AgentEvent:
    """A call event: something happened at a set, usually to a logged-in agent.

    ``agent`` is empty when the agent field was blank: such a record is an
    *extension event* and speaks of the set only.
    """

    seq: int
    code: CallEventCode
    time: datetime.time
    dn: str
    agent: str
    #: Everything after the agent field, exactly as sent (terminator removed).
    tail: str
    #: Line appearance (key) number, when the tail gives one.
    button: int | None = None
    #: Make-busy (E) or DND (C) reason code from the tail.
    reason: int | None = None
    #: Path reporting number of an answered ACD call (G, S), kept as sent.
    path: str | None = None
    #: Characters after the key number of a J record, kept raw.
    extra: str = ""

    @property
    def name(self) -> str:
        return EVENT_NAMES[self.code]

    @property
    def is_extension_event(self) -> bool:
        return not self.agent


@attrs.frozen
class StatsReport:
    """A K (group) or Q (path) statistics report."""

    seq: int
    code: StatsCode
    time: datetime.time
    #: Group or path reporting number exactly as sent (``"007"`` stays so).
    number: str
    waiting_raw: str
    agents_raw: str
    longest_raw: str
    #: Digits after the longest-wait field; meaning unknown, kept raw.
    trailing: str = ""

    @property
    def waiting(self) -> int:
        return int(self.waiting_raw)

    @property
    def agents(self) -> int:
        return int(self.agents_raw)

    @property
    def longest_seconds(self) -> int:
        return mmss_seconds(self.longest_raw)

    @property
    def is_group(self) -> bool:
        return self.code == "K"


@attrs.frozen
class Refresh:
    """The R keep-alive, carrying the PBX's date."""

    seq: int
    code: RefreshCode
    time: datetime.time
    date_raw: str
    #: The PBX date, when ``date_raw`` is a valid ``YYYYMMDD``.
    date: datetime.date | None

    @property
    def pbx_datetime(self) -> datetime.datetime | None:
        if self.date is None:
            return None
        return datetime.datetime.combine(self.date, self.time)


@attrs.frozen
class Malformed:
    """Input that is not a record we can read. Counted, never raised."""

    raw: bytes
    reason: str
    #: The function code when it could be read, for per-code counters.
    code: str | None = None
    #: The record number when it could be read: it still counts for numbering.
    seq: int | None = None


Record = AgentEvent | StatsReport | Refresh
ParseResult = AgentEvent | StatsReport | Refresh | Malformed


@functools.lru_cache(maxsize=4096)
def _parse_time(raw: str) -> datetime.time | None:
    # Many records share a second: the same few strings come again and again.
    if len(raw) != 6 or not raw.isdigit():
        return None
    try:
        return datetime.time(int(raw[0:2]), int(raw[2:4]), int(raw[4:6]))
    except ValueError:
        return None


def _parse_date(raw: str) -> datetime.date | None:
    if len(raw) != 8 or not raw.isdigit():
        return None
    try:
        return datetime.date(int(raw[0:4]), int(raw[4:6]), int(raw[6:8]))
    except ValueError:
        return None


def parse_record(body: bytes) -> ParseResult:
    """Read one record body: the bytes after STX, terminator already removed."""
    head = body[:2]
    # The number is read first: a record it belongs to counts for numbering
    # even when the rest cannot be read.
    seq = int(head) if len(head) == 2 and head.isdigit() else None
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        return Malformed(body, "not ASCII", None, seq)
    if not text.isprintable():
        return Malformed(body, "control characters inside the record", None, seq)
    if len(text) < 9:
        return Malformed(body, "shorter than a record header", None, seq)
    code, time_raw = text[_CODE], text[_TIME]
    if seq is None:
        return Malformed(body, f"record number {text[_SEQ]!r} is not two digits")
    time = _parse_time(time_raw)
    if time is None:
        return Malformed(body, f"time {time_raw!r} is not HHMMSS", code, seq)
    call_code = _CALL_EVENT_CODE.get(code)
    if call_code is not None:
        return _call_event(body, text, seq, call_code, time)
    stats_code = _STATS_CODE.get(code)
    if stats_code is not None:
        return _stats(body, text, seq, stats_code, time)
    if code == REFRESH_CODE:
        # Anything after the 8-digit date is kept raw but does not spoil it.
        date_raw = text[_DATE.start :]
        return Refresh(seq, REFRESH_CODE, time, date_raw, _parse_date(text[_DATE]))
    return Malformed(body, f"unknown function code {code!r}", None, seq)


def _call_event(
    body: bytes, text: str, seq: int, code: CallEventCode, time: datetime.time
) -> ParseResult:
    dn = text[_DN].strip()
    if not _DN_CHARS.issuperset(dn) or not dn:
        return Malformed(body, f"directory number {dn!r} is not 1-7 digits, * or #", code, seq)
    # A blank agent and an empty tail may have lost their spaces to the
    # terminator strip: a short record is read as if padded.
    agent = text[_AGENT].strip()
    if agent and not _DIGITS.issuperset(agent):
        return Malformed(body, f"agent ID {agent!r} is not 1-7 digits", code, seq)
    tail = text[_TAIL_START:].rstrip()
    button: int | None = None
    reason: int | None = None
    path: str | None = None
    extra = ""
    # The path is the last 3 characters: only the field before it can be too wide.
    has_path = code in PATH_CODES and len(tail.strip()) >= 3
    field = tail[:-3] if has_path else tail
    wide = _overlong(field)
    if wide is not None:
        what = "reason" if code in REASON_CODES else "button"
        return Malformed(
            body,
            f"{what} {wide!r} is {len(wide)} digits, more than {_FIELD_MAX_DIGITS}",
            code,
            seq,
        )
    if code in PATH_CODES:
        if has_path:
            path = tail[-3:]
            button = _number(field)
        else:
            button = _number(tail)
    elif code in REASON_CODES:
        reason = _number(tail)
    elif code == "J" and len(tail.strip()) > _BUTTON_WIDTH:
        button = _number(tail[:_BUTTON_WIDTH])
        extra = tail[_BUTTON_WIDTH:]
    else:
        button = _number(tail)
    return AgentEvent(seq, code, time, dn, agent, tail, button, reason, path, extra)


def _stats(body: bytes, text: str, seq: int, code: StatsCode, time: datetime.time) -> ParseResult:
    if len(text) < _TRAILING_START:
        return Malformed(body, "statistics report shorter than 22 characters", code, seq)
    fields = (text[_NUMBER], text[_WAITING], text[_AGENTS], text[_LONGEST])
    if not all(_DIGITS.issuperset(f) for f in fields):
        return Malformed(body, "statistics fields are not all digits", code, seq)
    number, waiting, agents, longest = fields
    return StatsReport(seq, code, time, number, waiting, agents, longest, text[_TRAILING_START:])
