"""The controller's SMDR records, read by layout into typed values (pure).

One SMDR line in, one :class:`SmdrRecord` or :class:`SmdrUnreadable` out, as
docs/smdr-protocol.md describes the stream: fixed-width text whose columns
depend on the site's SMDR options (§2, §3). :func:`parse_smdr` reads a line
with a layout it is given, or with the one the line's own length and markers
point to (§3.8); :func:`classify` says what one record means for an ACD path
(§6.3). Grouping several records into one call (§6.4) is not done here.

Pure: text in, frozen values out. No Twisted, no clock, no I/O, and no
exceptions for bad input. A record keeps its raw text and every field of its
layout as sent; each typed value is ``None`` when its field is blank or
cannot be read, never a guess. Readings that rest on what the protocol notes
mark [verify] are named in the record's ``provisional``.

Slices below are 0-based and half-open, counted on the record body (the line
without its terminator), as the tables of smdr-protocol.md §3 give them.
"""

from __future__ import annotations

import datetime
import functools
import re
from typing import Literal, get_args

import attrs

#: The record bodies of §3: the 90-column standard record, Extended Digit
#: Length (101), and Extended Reporting Level 1 and Level 2 (both with the
#: Extended Digit Length widths, as the only published columns have them).
SmdrKind = Literal["standard", "extended_digits", "level1", "level2"]
#: What follows a standard or Extended Digit Length body: nothing, the
#: ANI/DNIS tail (§3.4), or the ANI/DNIS tail and the Standardized Network
#: OLI tail (§3.5).
SmdrTail = Literal["none", "ani_dnis", "oli"]

KINDS: tuple[SmdrKind, ...] = get_args(SmdrKind)
TAILS: tuple[SmdrTail, ...] = get_args(SmdrTail)

#: The longest record any option gives (SMDR-Miner's list, §2).
LONGEST = 207

#: Untrimmed record lengths per body and tail (§2, §3.8). Level 1 and 2 run
#: up to :data:`LONGEST`; their tails have no documented columns.
_LENGTHS: dict[tuple[SmdrKind, SmdrTail], int] = {
    ("standard", "none"): 90,
    ("standard", "ani_dnis"): 112,
    ("standard", "oli"): 131,
    ("extended_digits", "none"): 101,
    ("extended_digits", "ani_dnis"): 120,
    ("extended_digits", "oli"): 139,
    ("level1", "none"): LONGEST,
    ("level2", "none"): LONGEST,
}


def _tail_allowed(instance: SmdrLayout, attribute: attrs.Attribute[str], tail: str) -> None:
    if (instance.kind, tail) not in _LENGTHS:
        raise ValueError(f"{instance.kind} records have no {tail} tail")


@attrs.frozen
class SmdrLayout:
    """The SMDR options that place the columns of a record.

    ``extended_tta``: Extended Time to Answer (4 digits, §3.3).
    ``meter_pulses``: Report Meter Pulses, the last 5 columns of Digits
    Dialed (§2); never detected, only set by the caller.
    """

    kind: SmdrKind = "standard"
    extended_tta: bool = False
    tail: SmdrTail = attrs.field(default="none", validator=_tail_allowed)
    meter_pulses: bool = False

    @property
    def length(self) -> int:
        """The untrimmed length of a record with these options."""
        return _LENGTHS[(self.kind, self.tail)]

    @property
    def name(self) -> str:
        """A short name: ``standard``, ``extended_digits+tta4+ani_dnis``..."""
        parts: list[str] = [self.kind]
        if self.extended_tta:
            parts.append("tta4")
        if self.tail != "none":
            parts.append(self.tail)
        if self.meter_pulses:
            parts.append("meter")
        return "+".join(parts)


def layout_named(name: str) -> SmdrLayout:
    """The layout :attr:`SmdrLayout.name` gives ``name`` (``--smdr-layout``).

    Raises ValueError naming the parts it takes when ``name`` is not one.
    """
    kind, *options = name.strip().lower().split("+")
    if kind not in KINDS:
        raise ValueError(
            f"no SMDR layout {name!r}: it starts with one of {', '.join(KINDS)},"
            " then +tta4, +ani_dnis or +oli, +meter (standard+tta4+ani_dnis)"
        )
    unknown = [o for o in options if o not in ("tta4", "meter", *TAILS[1:])]
    if unknown:
        raise ValueError(f"no SMDR layout option {unknown[0]!r}: tta4, ani_dnis, oli or meter")
    tails = [o for o in options if o in TAILS]
    if len(tails) > 1:
        raise ValueError(f"an SMDR layout has one tail, not {' and '.join(tails)}")
    try:
        layout = SmdrLayout(
            kind,
            "tta4" in options,
            tails[0] if tails else "none",
            "meter" in options,
        )
    except ValueError as e:
        raise ValueError(f"no SMDR layout {name!r}: {e}") from None
    return layout


#: Every layout without meter pulses, by name: what ``--smdr-layout`` lists.
LAYOUT_NAMES: tuple[str, ...] = tuple(
    SmdrLayout(kind, tta, tail).name for kind, tail in _LENGTHS for tta in (False, True)
)


@attrs.frozen
class SmdrLine:
    """One line of the SMDR stream as it came, with when and how it was read.

    What history keeps of every record (state-model §8): ``text`` is the line
    without its terminator (bytes beyond ASCII kept as Latin-1, one character
    each; a NUL inside it, which no database text column takes, as U+2400
    SYMBOL FOR NULL, which reads as unreadable as the NUL did), ``layout``
    the :attr:`SmdrLayout.name` it was read with, or ``"unreadable"`` when
    it fits none.
    """

    received_at: float
    text: str
    layout: str

    @classmethod
    def of(cls, received_at: float, raw: bytes, result: SmdrResult) -> SmdrLine:
        """The line ``raw`` (terminator and all) as read into ``result``."""
        text = raw.rstrip(b"\r\n\x00").decode("latin-1").replace("\x00", "\u2400")
        layout = result.layout.name if isinstance(result, SmdrRecord) else UNREADABLE
        return cls(received_at, text, layout)


#: The layout of a line that fits none.
UNREADABLE = "unreadable"


#: What a call completion status character means (§5). ``normal``: blank,
#: an answered incoming call or an outgoing one without supervision.
CompletionMeaning = Literal[
    "normal", "answer_supervision", "busy", "invalid_number", "toll_denied",
    "tafas_or_pickup", "internal", "occupied", "do_not_disturb",
    "out_of_service", "attendant_unavailable", "caller_account_code",
    "receiver_account_code", "unknown",
]  # fmt: skip

_COMPLETION: dict[str, CompletionMeaning] = {
    "": "normal",
    "A": "answer_supervision",
    "B": "busy",
    "E": "invalid_number",
    "I": "internal",
    "O": "occupied",
    "D": "do_not_disturb",
    "S": "out_of_service",
    "U": "attendant_unavailable",
    "C": "caller_account_code",
    "R": "receiver_account_code",
}
#: Completion letters whose meaning comes from a cut-off Mitel text or a
#: third-party list only (§5, [verify]).
_COMPLETION_VERIFY = frozenset("DSUCR")

#: Transfer / conference flag values (§3.1 column 66): ``T``, ``X``, ``C``
#: from Mitel's texts; ``I``, ``R``, ``U`` the ACD markers of §6.2.
TRANSFER_FLAGS = frozenset("TXCIRU")
#: The ACD markers in the transfer flag: interflow, requeue, queue unavailable
#: (§6.2, all [verify]).
ACD_MARKERS = frozenset("IRU")

#: What one record says about an ACD path call (§6.3).
Outcome = Literal[
    "answered", "abandoned", "short_abandoned", "interflowed", "requeued",
    "unavailable", "not_a_path_call", "unclassified",
]  # fmt: skip
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
#: Outcomes that rest on [verify] points of the protocol notes: figures built
#: from them are provisional (state-model §8).
PROVISIONAL_OUTCOMES: frozenset[Outcome] = frozenset(
    ("abandoned", "short_abandoned", "interflowed", "requeued", "unavailable")
)
#: MiContact Center's default short-abandon threshold (§6.3, state-model §8).
SHORT_ABANDON_SECONDS = 6

_Columns = tuple[tuple[str, slice], ...]


def _body_columns(kind: SmdrKind, extended_tta: bool, meter: bool) -> list[tuple[str, slice]]:
    """The fields of a record body, before any tail (§3.1, §3.2, §3.3, §3.6)."""
    if kind == "standard":
        start, duration, calling, flag, ttt = (7, 13), (14, 22), (23, 27), 28, (29, 32)
    elif kind == "level2":
        start, duration, calling, flag, ttt = (7, 16), (17, 27), (28, 35), 36, (37, 40)
    else:  # Extended Digit Length and Level 1 share every column up to the third party.
        start, duration, calling, flag, ttt = (7, 13), (14, 24), (25, 32), 33, (34, 37)
    if extended_tta:  # the flag moves one column left, the answer time gains it
        flag, ttt = flag - 1, (ttt[0] - 1, ttt[1])
    d = ttt[1] + 1  # Digits Dialed: 26 columns after a spacer
    party = 4 if kind == "standard" else 7
    called = d + 26 + 2
    third = called + party + 1
    columns = [
        ("long_call", slice(0, 1)),
        ("date", slice(1, 6)),
        ("start", slice(*start)),
        ("duration", slice(*duration)),
        ("calling", slice(*calling)),
        ("attendant", slice(flag, flag + 1)),
        ("time_to_answer", slice(*ttt)),
    ]
    if meter:
        columns += [("digits", slice(d, d + 21)), ("meter_pulses", slice(d + 21, d + 26))]
    else:
        columns.append(("digits", slice(d, d + 26)))
    columns += [
        ("completion", slice(d + 26, d + 27)),
        ("speed_call", slice(d + 27, d + 28)),
        ("called", slice(called, called + party)),
        ("transfer", slice(called + party, called + party + 1)),
        ("third_party", slice(third + 1, third + 1 + party)),
    ]
    end = third + 1 + party  # 71 standard, 82 Extended Digit Length / Level 1, 85 Level 2
    if kind in ("standard", "extended_digits"):
        columns += [
            ("account_code", slice(end + 1, end + 13)),
            ("route_optimization", slice(end + 13, end + 14)),
            ("system_id", slice(end + 14, end + 17)),
        ]
    else:
        # Account code and LDN lie here, in columns no public text gives [verify].
        columns += [
            ("account_code_and_ldn", slice(end + 1, end + 22)),
            ("system_id", slice(end + 22, end + 25)),
            ("ani", slice(end + 28, end + 48)),
            ("rest", slice(end + 48, LONGEST)),
        ]
    return columns


@functools.lru_cache(maxsize=64)
def columns_of(layout: SmdrLayout) -> _Columns:
    """Every field of a layout and its slice, in column order."""
    columns = _body_columns(layout.kind, layout.extended_tta, layout.meter_pulses)
    standard = layout.kind == "standard"
    if layout.tail in ("ani_dnis", "oli"):
        if standard:
            columns += [("ani", slice(91, 101)), ("dnis", slice(102, 112))]
        else:
            columns += [("ani", slice(102, 112)), ("dnis", slice(113, 120))]
    if layout.tail == "oli":
        base = 113 if standard else 121
        columns += [
            ("call_id", slice(base, base + 8)),
            ("sequence_id", slice(base + 8, base + 9)),
            ("associated_call_id", slice(base + 10, base + 18)),
        ]
    return tuple(columns)


@attrs.frozen
class SmdrRecord:
    """One SMDR record, read with one layout.

    ``raw`` is the line as given (terminator included); ``body`` the text the
    columns were counted on (terminator removed, an envelope taken off, a
    missing column 1 restored). ``fields`` holds every field of the layout as
    sent; a line that stops early has short or empty fields at its end.
    Party, digit and identifier values are stripped of blanks, ``None`` when
    blank. ``unread`` names the fields that are not blank but cannot be read.
    """

    raw: str
    body: str
    layout: SmdrLayout
    #: True when the layout came from the line itself, False when it was given.
    detected: bool
    fields: tuple[tuple[str, str], ...]
    #: ``mm/dd``: the record carries no year (§4).
    month: int | None
    day: int | None
    #: Start time on the controller's clock: a ``P`` suffix moves 01-11 to the
    #: afternoon; seconds only in Level 2 records.
    start: datetime.time | None
    duration_seconds: int | None
    #: Seconds to answer; None when blank, unanswered or unreadable.
    time_to_answer_seconds: int | None
    #: The time to answer is ``***`` or ``****``: nobody answered.
    unanswered: bool
    calling: str | None
    #: Digits Dialed, stripped (path and groups for ACD path calls).
    digits: str | None
    called: str | None
    third_party: str | None
    #: Call completion status character, ``""`` when blank (§5).
    completion: str
    completion_meaning: CompletionMeaning
    #: Transfer / conference flag, ``""`` when blank.
    transfer: str
    #: ACD path reporting number as sent (``"860"``), from the ``P`` token.
    path: str | None
    #: Group reporting numbers after the path, as sent, answering group last.
    groups: tuple[str, ...]
    #: The group that answered, for an answered path call (``"000"``: a non-agent).
    answering_group: str | None
    system_id: str | None
    ani: str | None
    dnis: str | None
    meter_pulses: int | None
    #: Standardized Network OLI: call identifier, sequence, associated call.
    call_id: str | None
    sequence_id: str | None
    associated_call_id: str | None
    #: Readings that rest on a [verify] point of the protocol notes.
    provisional: tuple[str, ...] = ()
    unread: tuple[str, ...] = ()

    def field(self, name: str) -> str:
        """A field's text as sent; ``""`` for a field the layout does not have."""
        return dict(self.fields).get(name, "")

    @property
    def is_path_call(self) -> bool:
        """Digits Dialed holds a ``P`` token, readable or not."""
        return self.path is not None or "path" in self.unread

    @property
    def agent(self) -> str | None:
        """The agent ID that answered a path call (the called party, §4)."""
        return self.called if self.is_path_call else None


@attrs.frozen
class SmdrUnreadable:
    """A line that fits no layout, or not the one given. Counted, never raised."""

    raw: bytes | str
    reason: str
    #: The layout the line was checked against, when one was given.
    layout: SmdrLayout | None = None


SmdrResult = SmdrRecord | SmdrUnreadable

_DATE = re.compile(r"\d\d/\d\d")
_START = re.compile(r"(\d\d):(\d\d)([ PpAa])")
_START_SECONDS = re.compile(r"(\d\d):(\d\d):(\d\d)([ PpAa])")
_DURATION = re.compile(r"(\d\d):(\d\d):(\d\d)")
_DURATION_LONG = re.compile(r"(\d{4}):(\d\d):(\d\d)")
_SYSTEM_ID = re.compile(r"\d{3}")
_ENVELOPE = re.compile(r"@\d{8}@")
#: A party: an extension or agent ID, ``Tnnn``/``Xnnn`` trunk, ``ATTm`` console.
_PARTY = re.compile(r"[0-9A-Z*#]+")
_PATH = re.compile(r"P(\d+)")
#: 3-digit group reporting numbers (3300); 2 digits on the SX-200 (§6.2).
_GROUP = re.compile(r"\d{2,3}")
_OLI_CALL = re.compile(r"[A-Z]\d{3}[A-Z0-9]{4}")
_DIALLED = re.compile(r"[0-9*#A-Z ]+")
#: The widest path reporting number: 3 digits on the 3300, 4 on the SX-200.
_PATH_MAX_DIGITS = 4
_LINE_ENDS = "\r\n\x00"

_DETECT_ORDER: tuple[SmdrKind, ...] = ("standard", "extended_digits", "level1", "level2")


def parse_smdr(line: bytes | str, layout: SmdrLayout | None = None) -> SmdrResult:
    """Read one SMDR line with ``layout``, or with the layout it shows (§3.8).

    The line may still carry its CR, LF or CR LF and trailing NULs (§1);
    trailing blanks are absent columns, so a trimmed line reads as the
    untrimmed one.
    """
    if isinstance(line, bytes):
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            return SmdrUnreadable(line, "not ASCII", layout)
    else:
        text = line
    body = text.strip(_LINE_ENDS)
    if not (body.isascii() and body.isprintable()):
        return SmdrUnreadable(line, "control or non-ASCII characters inside the line", layout)
    if not body.strip():
        return SmdrUnreadable(line, "blank line", layout)
    provisional: list[str] = []
    envelope = _ENVELOPE.match(body)
    if envelope:
        # A dated envelope seen in one fixture of unknown origin (§1, [verify]).
        body = body[envelope.end() :]
        provisional.append("envelope")
    if _DATE.match(body):
        # The line starts at the date: column 1 (the long call flag) is missing,
        # as in M5 and Mitel's examples (§9.1); it is restored as a blank.
        body = " " + body
        provisional.append("column_1_restored")
    if layout is not None:
        reason = _misfit(body, layout)
        if reason is not None:
            return SmdrUnreadable(line, reason, layout)
        return _read(text, body, layout, False, provisional)
    found = _detect(body)
    if isinstance(found, str):
        return SmdrUnreadable(line, found)
    return _read(text, body, found, True, provisional)


def _used(body: str) -> int:
    """The length that counts: trailing blanks are columns left empty."""
    return len(body.rstrip(" "))


def _misfit(body: str, layout: SmdrLayout) -> str | None:
    """Why ``body`` is not a record of ``layout``, or None when it is."""
    used = _used(body)
    if used > layout.length:
        return f"{used} characters, longer than the {layout.length} of {layout.name}"
    cols = dict(columns_of(layout))
    padded = body.ljust(LONGEST)
    date = padded[cols["date"]]
    if not _DATE.fullmatch(date) or padded[6] != " ":
        return f"no date mm/dd in columns 2-6 for {layout.name}: {date!r}"
    start = padded[cols["start"]]
    pattern = _START_SECONDS if layout.kind == "level2" else _START
    if not pattern.fullmatch(start) or padded[cols["start"].stop] != " ":
        return f"no start time in {_span(cols['start'])} for {layout.name}: {start!r}"
    duration = padded[cols["duration"]]
    pattern = _DURATION if layout.kind == "standard" else _DURATION_LONG
    after = padded[cols["duration"].stop]
    if (duration.strip() and not pattern.fullmatch(duration)) or after != " ":
        return f"no duration in {_span(cols['duration'])} for {layout.name}: {duration!r}"
    system_id = padded[cols["system_id"]]
    if system_id.strip() and not _SYSTEM_ID.fullmatch(system_id):
        return f"system identifier {system_id!r} in {_span(cols['system_id'])} is not 3 digits"
    return None


def _span(columns: slice) -> str:
    """A slice as Mitel's 1-based columns."""
    return f"columns {columns.start + 1}-{columns.stop}"


def _tail_for(kind: SmdrKind, used: int) -> SmdrTail | None:
    """The shortest tail a line of ``used`` characters fits, if any."""
    for tail in TAILS:
        length = _LENGTHS.get((kind, tail))
        if length is not None and used <= length:
            return tail
    return None


def _extended_tta(body: str, kind: SmdrKind) -> bool:
    """Whether the line's time to answer has 4 columns (§3.3).

    Four digits or ``****``, or an attendant flag in the spacer before them,
    say so; ``****`` is read as the 4-column unanswered marker because an
    attendant who answered leaves a numeric time to answer.
    """
    four = dict(columns_of(SmdrLayout(kind, True)))["time_to_answer"]
    window = body.ljust(LONGEST)[four]
    return window[0].isdigit() or window == "****" or body.ljust(LONGEST)[four.start - 1] == "*"


def _detect(body: str) -> SmdrLayout | str:
    """The layout a line shows by its length and markers (§3.8), or why none."""
    used = _used(body)
    if used > LONGEST:
        return f"{used} characters, longer than any layout ({LONGEST})"
    fits: list[SmdrLayout] = []
    reasons: list[str] = []
    for kind in _DETECT_ORDER:
        tail = _tail_for(kind, used)
        if tail is None:
            reasons.append(f"{used} characters, longer than {kind} records")
            continue
        candidate = SmdrLayout(kind, _extended_tta(body, kind), tail)
        reason = _misfit(body, candidate)
        if reason is None:
            fits.append(candidate)
        else:
            reasons.append(reason)
    if not fits:
        return "fits no layout: " + "; ".join(reasons)
    kinds = {layout.kind for layout in fits}
    if "extended_digits" in kinds and "level1" in kinds:
        # Level 1 shares every column up to the third party. A line that fits
        # both is read as Extended Digit Length, unless that leaves fields it
        # cannot read (Level 1's system identifier and ANI sit where its ANI
        # and DNIS would) and Level 1 reads every field.
        def unread(kind: SmdrKind) -> int:
            layout = next(layout for layout in fits if layout.kind == kind)
            return len(_read(body, body, layout, True, []).unread)

        level1 = unread("extended_digits") > 0 and unread("level1") == 0
        fits = [
            layout for layout in fits if layout.kind != ("extended_digits" if level1 else "level1")
        ]
    if len(fits) > 1:
        names = ", ".join(layout.name for layout in fits)
        return f"fits more than one layout ({names}): the duration is blank"
    return fits[0]


def _read(
    raw: str, body: str, layout: SmdrLayout, detected: bool, provisional: list[str]
) -> SmdrRecord:
    columns = columns_of(layout)
    fields = tuple((name, body[where]) for name, where in columns)
    padded = body.ljust(LONGEST)
    text = {name: padded[where] for name, where in columns}
    where = dict(columns)
    unread: list[str] = []

    def number(name: str, spacer_before: bool = True) -> int | None:
        """A field of digits, None when blank; unread when not digits, or when
        a digit in the column next to it says the number is wider than its field."""
        value = text[name].strip()
        if not value:
            return None
        span = where[name]
        wider = padded[span.stop].isdigit()
        if spacer_before:
            wider = wider or padded[span.start - 1 : span.start].isdigit()
        if not value.isdigit() or wider:
            unread.append(name)
            return None
        return int(value)

    def party(name: str) -> str | None:
        if name not in text:
            return None
        value = text[name].strip()
        if value and not _PARTY.fullmatch(value):
            unread.append(name)
            return None
        return value or None

    month, day = _date(text["date"], unread)
    start = _start(text["start"], unread)
    duration = _duration(text["duration"], unread)
    tta_raw = text["time_to_answer"].strip()
    unanswered = tta_raw in ("***", "****")
    tta = None if unanswered else number("time_to_answer")
    if text["attendant"] not in (" ", "*"):
        unread.append("attendant")
    calling = party("calling")
    called = party("called")
    third_party = party("third_party")
    digits = text["digits"].strip() or None
    if digits is not None and not _DIALLED.fullmatch(digits):
        unread.append("digits")
    path, groups = _path(digits, unread)
    completion = text["completion"].strip()
    meaning = _meaning(completion, calling, called)
    if meaning == "unknown":
        unread.append("completion")
    elif completion in _COMPLETION_VERIFY or meaning == "toll_denied":
        provisional.append("completion")
    transfer = text["transfer"].strip()
    if transfer and transfer not in TRANSFER_FLAGS:
        unread.append("transfer")
    elif transfer in ACD_MARKERS:
        provisional.append("transfer")
    answering_group = None
    if path is not None and groups and tta is not None and called is not None:
        answering_group = groups[-1]
        if len(groups) == 1:
            # KB 51881 lists one group only: repeated or left out? (§6.2, [verify])
            provisional.append("answering_group")
    if unanswered and duration is not None:
        # The duration of an unanswered call is not defined by Mitel (§4, [verify]).
        provisional.append("duration")
    system_id = text["system_id"].strip() or None
    # Level 1 and 2 records have the account code and LDN before it, not a flag.
    separate = layout.kind in ("standard", "extended_digits")
    if system_id is not None and number("system_id", separate) is None:
        system_id = None
    ani = _digits_field(text, "ani", unread)
    dnis = _digits_field(text, "dnis", unread)
    meter = number("meter_pulses") if "meter_pulses" in text else None
    call_id = _oli(text, "call_id", unread)
    associated = _oli(text, "associated_call_id", unread)
    sequence = text.get("sequence_id", "").strip() or None
    if layout.tail == "oli" and layout.kind == "extended_digits":
        # The OLI columns of the 139-character record: a third party's table (§3.5).
        provisional.append("oli_columns")
    return SmdrRecord(
        raw=raw, body=body, layout=layout, detected=detected, fields=fields,
        month=month, day=day, start=start, duration_seconds=duration,
        time_to_answer_seconds=tta, unanswered=unanswered, calling=calling,
        digits=digits, called=called, third_party=third_party,
        completion=completion, completion_meaning=meaning, transfer=transfer,
        path=path, groups=groups, answering_group=answering_group,
        system_id=system_id, ani=ani, dnis=dnis, meter_pulses=meter,
        call_id=call_id, sequence_id=sequence, associated_call_id=associated,
        provisional=tuple(provisional), unread=tuple(unread),
    )  # fmt: skip


def _date(raw: str, unread: list[str]) -> tuple[int | None, int | None]:
    month, day = int(raw[0:2]), int(raw[3:5])
    try:
        datetime.date(2000, month, day)  # a leap year: 02/29 is a date
    except ValueError:
        unread.append("date")
        return None, None
    return month, day


def _start(raw: str, unread: list[str]) -> datetime.time | None:
    match = _START_SECONDS.fullmatch(raw) or _START.fullmatch(raw)
    assert match is not None  # the layout check has seen it
    *numbers, suffix = match.groups()
    hour, minute = int(numbers[0]), int(numbers[1])
    second = int(numbers[2]) if len(numbers) == 3 else 0
    if suffix in "Pp" and hour < 12:
        hour += 12
    elif suffix in "Aa" and hour == 12:
        hour = 0
    try:
        return datetime.time(hour, minute, second)
    except ValueError:
        unread.append("start")
        return None


def _duration(raw: str, unread: list[str]) -> int | None:
    match = _DURATION.fullmatch(raw) or _DURATION_LONG.fullmatch(raw)
    if match is None:  # blank: the layout check lets nothing else through
        return None
    hours, minutes, seconds = (int(part) for part in match.groups())
    if minutes > 59 or seconds > 59:
        # 99:99:99 says "over 100 hours" (§3.1): no number of seconds.
        unread.append("duration")
        return None
    return hours * 3600 + minutes * 60 + seconds


def _path(digits: str | None, unread: list[str]) -> tuple[str | None, tuple[str, ...]]:
    """The path and the group tokens after it, from Digits Dialed (§6.2)."""
    if digits is None:
        return None, ()
    tokens = digits.split()
    for i, token in enumerate(tokens):
        match = _PATH.fullmatch(token)
        if match is None:
            continue
        if len(match.group(1)) > _PATH_MAX_DIGITS:
            unread.append("path")
            return None, ()
        groups = []
        for group in tokens[i + 1 :]:
            if not _GROUP.fullmatch(group):
                unread.append("groups")
                break
            groups.append(group)
        return match.group(1), tuple(groups)
    return None, ()


def _meaning(completion: str, calling: str | None, called: str | None) -> CompletionMeaning:
    if completion != "T":
        return _COMPLETION.get(completion, "unknown")
    # T means TAFAS or Call Pickup on an incoming call, toll denial on an
    # outgoing one (§5).
    if calling is not None and _is_trunk(calling):
        return "tafas_or_pickup"
    if called is not None and _is_trunk(called):
        return "toll_denied"
    return "unknown"


def _is_trunk(party: str) -> bool:
    return party[0] in "TX" and party[1:].isdigit()


def _digits_field(text: dict[str, str], name: str, unread: list[str]) -> str | None:
    value = text.get(name, "").strip()
    if not value:
        return None
    if not _DIALLED.fullmatch(value) or " " in value:
        unread.append(name)
        return None
    return value


def _oli(text: dict[str, str], name: str, unread: list[str]) -> str | None:
    value = text.get(name, "").strip()
    if not value:
        return None
    if not _OLI_CALL.fullmatch(value):
        unread.append(name)
        return None
    return value


def classify(record: SmdrRecord, short_abandon_seconds: int = SHORT_ABANDON_SECONDS) -> Outcome:
    """What one record says about its path call, by the rules of §6.3 only.

    ``short_abandoned``: abandoned within ``short_abandon_seconds`` of
    duration. A path call that meets no rule, or whose deciding fields cannot
    be read, is ``unclassified``; see :data:`PROVISIONAL_OUTCOMES`.
    """
    if not record.is_path_call:
        return "not_a_path_call"
    if record.path is None or "transfer" in record.unread:
        return "unclassified"
    if record.transfer == "I":
        return "interflowed"
    if record.transfer == "R":
        return "requeued"
    if record.transfer == "U":
        return "unavailable"
    if record.time_to_answer_seconds is not None and record.called is not None:
        return "answered"
    if record.unanswered:
        if record.duration_seconds is None:
            return "unclassified"
        if record.duration_seconds <= short_abandon_seconds:
            return "short_abandoned"
        return "abandoned"
    return "unclassified"
