"""The fake ICP's SMDR wire: one record's values laid out in the columns of a layout.

* :class:`SmdrEntry` holds what one SMDR record says about an ACD path call
  (smdr-protocol.md §4, §6.2), before it is laid out.
* :func:`format_smdr` places it in the columns that
  :func:`mitelacd.floor.smdr.columns_of` gives a layout (§3), so that
  :func:`mitelacd.floor.smdr.parse_smdr` reads the same values back, with
  that layout given or (but for Level 1, see below) found from the line;
  :func:`encode_smdr` gives the line as ASCII bytes ending in CR LF (§1).

How the fields are written:

* Lines are untrimmed: every line has its layout's full length (§11 item 2).
* The start time is the controller's clock: ``hh:mm`` (``hh:mm:ss`` in Level
  2) with a 12-hour clock by default: ``P`` after noon, ``A`` in the hour
  after midnight (``12:30A``), blank in the morning; ``clock24`` gives
  ``00``-``23`` and a blank suffix.
* Durations are ``hh:mm:ss``, or ``hhhh:mm:ss`` in the Extended Digit Length
  and Level layouts; a standard duration of 100 hours or more is
  ``99:99:99`` (§3.1). Column 1 is the long call flag of the duration.
* Time to answer has 3 digits (4 with Extended Time to Answer), zero
  padded, or ``***`` / ``****`` when nobody answered.
* Digits Dialed holds ``P`` and the path, the groups the call was offered
  to and, for an answered call, the answering group last (§6.2).
* Parties, ANI, DNIS and digits are left-justified in their fields.

Fields the layout does not have (ANI and DNIS without their tail, the OLI
call identifiers without theirs, meter pulses) are not sent. A value too
wide for its field raises ValueError, unless ``fit`` is given:
then a party, ANI or DNIS keeps its last characters (no public record shows
what the controller does with an agent ID wider than the field), and Digits
Dialed keeps as many of the offered groups as leave room for the answering
group.

Level 1 shares every column up to the third party with Extended Digit
Length, and a Level 1 line as laid out here (its account code, LDN and the
columns after the ANI left blank) also fits Extended Digit Length:
``parse_smdr`` without a layout reads it with the shorter one. Give the
layout to read it as Level 1.
"""

from __future__ import annotations

import datetime

import attrs

from mitelacd.floor.smdr import SmdrLayout, columns_of

#: What ends every record (§1: CR LF is the likely terminator).
SMDR_EOL = b"\r\n"
#: The 90-column standard record, the default layout.
STANDARD = SmdrLayout()


@attrs.frozen
class SmdrEntry:
    """What one SMDR record says about an ACD path call.

    ``start``: when the call reached the path, on the controller's clock
    (only its date and time of day are sent). ``time_to_answer_seconds``
    None: unanswered (``***``). ``groups``: the groups the call was offered
    to; ``answering_group`` goes after them. ``transfer``: the transfer /
    conference flag (``I`` interflow, ``R`` requeue, ``U`` queue
    unavailable, §6.2). ``call_id`` and ``sequence_id`` are sent in the
    Standardized Network OLI tail only; ``ani`` and ``dnis`` in the layouts
    that have them.
    """

    start: datetime.datetime
    duration_seconds: int
    calling: str
    path: str
    groups: tuple[str, ...] = ()
    time_to_answer_seconds: int | None = None
    answering_group: str | None = None
    called: str | None = None
    transfer: str = ""
    third_party: str | None = None
    completion: str = ""
    system_id: str = "001"
    ani: str | None = None
    dnis: str | None = None
    call_id: str | None = None
    sequence_id: str | None = None
    associated_call_id: str | None = None
    meter_pulses: int | None = None

    def digits(self) -> str:
        """Digits Dialed in full: ``P860 610 620 610``."""
        answering = () if self.answering_group is None else (self.answering_group,)
        return " ".join((f"P{self.path}", *self.groups, *answering))


def long_call_flag(duration_seconds: int) -> str:
    """Column 1: blank under 5 minutes, ``-`` to 10, ``%`` to 30, ``+`` from 30 (§3.1)."""
    if duration_seconds < 300:
        return " "
    if duration_seconds < 600:
        return "-"
    if duration_seconds < 1800:
        return "%"
    return "+"


def start_text(when: datetime.datetime | datetime.time, seconds: bool, clock24: bool) -> str:
    """The start time field: ``hh:mm`` or ``hh:mm:ss``, then the suffix (see the module notes)."""
    hour, suffix = when.hour, " "
    if not clock24:
        if hour == 0:
            hour, suffix = 12, "A"
        elif hour == 12:
            suffix = "P"
        elif hour > 12:
            hour, suffix = hour - 12, "P"
    text = f"{hour:02d}:{when.minute:02d}"
    if seconds:
        text += f":{when.second:02d}"
    return text + suffix


def duration_text(seconds: int, long: bool) -> str:
    """``hh:mm:ss`` (``99:99:99`` from 100 hours), or ``hhhh:mm:ss`` when ``long``."""
    if seconds < 0:
        raise ValueError(f"a duration is not negative: {seconds}")
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if not long and hours > 99:
        return "99:99:99"
    if hours > 9999:
        raise ValueError(f"a duration of {seconds} s does not fit hhhh:mm:ss")
    return f"{hours:0{4 if long else 2}d}:{minutes:02d}:{secs:02d}"


def answer_text(seconds: int | None, width: int) -> str:
    """Time to answer: zero padded, or ``*`` across the field when nobody answered."""
    if seconds is None:
        return "*" * width
    if not 0 <= seconds < 10**width:
        raise ValueError(f"a time to answer of {seconds} s does not fit {width} digits")
    return f"{seconds:0{width}d}"


def _digits(entry: SmdrEntry, width: int, fit: bool) -> str:
    full = entry.digits()
    if len(full) <= width or not fit:
        return full
    groups = list(entry.groups)
    while groups:
        groups.pop()
        shorter = attrs.evolve(entry, groups=tuple(groups)).digits()
        if len(shorter) <= width:
            return shorter
    return attrs.evolve(entry, groups=()).digits()


def format_smdr(
    entry: SmdrEntry,
    layout: SmdrLayout = STANDARD,
    *,
    clock24: bool = False,
    fit: bool = False,
) -> str:
    """The record body of ``entry`` in ``layout``: ``layout.length`` characters, no terminator."""
    columns = dict(columns_of(layout))
    long = layout.kind != "standard"
    values: dict[str, str | None] = {
        "long_call": long_call_flag(entry.duration_seconds),
        "date": f"{entry.start.month:02d}/{entry.start.day:02d}",
        "start": start_text(entry.start, layout.kind == "level2", clock24),
        "duration": duration_text(entry.duration_seconds, long),
        "calling": entry.calling,
        "time_to_answer": answer_text(
            entry.time_to_answer_seconds, _width(columns["time_to_answer"])
        ),
        "digits": _digits(entry, _width(columns["digits"]), fit),
        "completion": entry.completion,
        "called": entry.called,
        "transfer": entry.transfer,
        "third_party": entry.third_party,
        "system_id": entry.system_id,
        "ani": entry.ani,
        "dnis": entry.dnis,
        "call_id": entry.call_id,
        "sequence_id": entry.sequence_id,
        "associated_call_id": entry.associated_call_id,
    }
    if "meter_pulses" in columns:
        values["meter_pulses"] = f"{entry.meter_pulses or 0:05d}"
    line = [" "] * layout.length
    for name, where in columns.items():
        value = values.get(name)
        if not value:
            continue
        width = _width(where)
        if len(value) > width:
            if not (fit and name in _FIT_KEEPS_LAST):
                raise ValueError(
                    f"{name} {value!r} does not fit the {width} columns of {layout.name}"
                )
            value = value[-width:]
        line[where.start : where.start + len(value)] = value
    return "".join(line)


#: Fields that keep their last characters when ``fit`` is given.
_FIT_KEEPS_LAST = frozenset(("calling", "called", "third_party", "ani", "dnis"))


def _width(where: slice) -> int:
    return int(where.stop) - int(where.start)


def encode_smdr(
    entry: SmdrEntry,
    layout: SmdrLayout = STANDARD,
    *,
    clock24: bool = False,
    fit: bool = False,
) -> bytes:
    """The record as it goes on the wire: ASCII, ending in CR LF."""
    return format_smdr(entry, layout, clock24=clock24, fit=fit).encode("ascii") + SMDR_EOL
