"""``mitelacd-smdr-check FILE...``: what every SMDR record says, for a site to confirm its markers.

An installer makes a few test calls (answered, abandoned, requeued,
interflowed...), records the SMDR stream (``--record``) or saves what the
controller sent as text, and runs this on it. Every record is shown with
the layout it was read with, its fields and what it says of its path call
(smdr-protocol.md §6.3), with the readings it rests on that the protocol
notes mark [verify]; then the figures per path, as the daemon counts them
(:class:`~mitelacd.reports.smdrcalls.SmdrDay`, with the names file's
settings); then every line that could not be read or classified, and why.
docs/smdr.md says what to look at before setting ``[smdr] confirmed``.

Input: each FILE is a capture (``mitelacd-capture`` header, plain or gzip;
its ``smdr-data`` entries), or text, one SMDR line per line (plain or gzip);
``-`` is standard input. Lines are cut as the daemon cuts them
(:mod:`mitelacd.feed.smdr`): at CR, LF or CR LF, NUL fill and blank lines
left out, a line may run over several reads. A line that an SMDR
connection's end (or the capture's) cut short is not read: it is counted and
reported and changes no figure, since what is missing may be the very marker
that decides its outcome.

Times: SMDR dates have no year (§4). A capture's line is received at the
time of the read that ended it, as it was live, so a record that came more
than 2 h after its interval ended is not counted, as in the daemon. A text
file has no arrival times: its dates take the year that puts them on or
before ``--date`` (default: the file's modification date; today for
standard input), and each record counts as received at its own start.

Exit status: 0 when every line was read and every path record classified,
1 when any was not (an unreadable line, a cut line, an unclassified or
unplaced path record), 2 when a file cannot be read or the command line is
wrong.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import json
import os
import re
import sys
import tempfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any, Literal, NoReturn

import attrs

from mitelacd import __version__
from mitelacd.cli import CommandParser
from mitelacd.feed.capture import (
    FORMAT,
    CaptureError,
    CaptureReader,
    Connected,
    Data,
    Gap,
    Lost,
    Started,
    Stopped,
    escape,
)
from mitelacd.feed.smdr import MAX_LINE
from mitelacd.floor.names import NamesError, load_names
from mitelacd.floor.smdr import (
    LAYOUT_NAMES,
    PROVISIONAL_OUTCOMES,
    Outcome,
    SmdrLayout,
    SmdrRecord,
    SmdrResult,
    SmdrUnreadable,
    classify,
    layout_named,
    parse_smdr,
)
from mitelacd.reports.rows import RATIO_DECIMALS, SMDR_COUNTS
from mitelacd.reports.smdrcalls import (
    PROVISIONAL_FIGURES,
    Added,
    PathInterval,
    SmdrDay,
    SmdrSettings,
    record_date,
)
from mitelacd.reports.smdrsettings import smdr_settings

PROG = "mitelacd-smdr-check"
#: Every line read, every path record classified.
EXIT_OK = 0
#: A line unreadable or cut, a path record unclassified or unplaced.
EXIT_PROBLEMS = 1
#: A file that cannot be read, or a bad command line.
EXIT_UNREADABLE = 2

#: Bytes of a line kept to show; the rest is only counted.
KEEP_BYTES = 4096
#: Characters of a line shown in the text output.
SHOWN_CHARACTERS = 120

#: What a problem is. ``unreadable``: the line fits no layout (or not the one
#: forced); ``cut``: a connection's end cut it short; ``unclassified``: a
#: path record that fits no rule of §6.3; ``unplaced``: a path record whose
#: date, start, path or call identifier cannot be read, so it is no call;
#: ``too_late``: a capture's record that came after its interval closed.
ProblemKind = Literal["unreadable", "cut", "unclassified", "unplaced", "too_late"]
#: The problems that make the exit status 1 (``too_late`` is how the daemon counts).
FAILING: frozenset[ProblemKind] = frozenset(("unreadable", "cut", "unclassified", "unplaced"))

#: The figures of one path, in the order they are shown: the counts history keeps.
COUNT_FIGURES = SMDR_COUNTS

#: What a reading the parser marks provisional rests on (smdr-protocol.md).
READINGS: dict[str, str] = {
    "envelope": "the @yyyymmdd@ envelope before the record is seen in one third-party"
    " fixture only (§1)",
    "column_1_restored": "the line starts at the date: its column 1 (long call flag) is taken"
    " as missing (§3.8)",
    "completion": "this completion letter comes from a cut-off Mitel text or a third-party"
    " list (§5)",
    "transfer": "I / R / U in the transfer flag read as interflow / requeue / queue"
    " unavailable (§6.2)",
    "answering_group": "one group after the path: is the answering group repeated? (§6.2)",
    "duration": "the duration of an unanswered call read as the time before it ended (§4)",
    "oli_columns": "the OLI columns of the 139-character record come from a third party's"
    " table (§3.5)",
}
#: What an outcome rests on, beyond the record's own provisional readings.
OUTCOME_READINGS: dict[str, tuple[str, str]] = {
    "answered": (
        "time_to_answer",
        "time to answer: ring time only, or queue and ring? It decides service level and"
        " average time to answer (§7)",
    ),
    "abandoned": (
        "abandon",
        "*** with no ACD marker read as an abandon (§6.3)",
    ),
    "short_abandoned": (
        "abandon",
        "*** with no ACD marker read as an abandon (§6.3)",
    ),
}


# --- lines -------------------------------------------------------------------------------


@attrs.frozen
class Line:
    """One SMDR line as read from a file, without its end.

    ``number``: the line of a text file, or the count of a capture's SMDR
    lines. ``received_at``: a capture's read time; None for text.
    ``length``: the line's true length (``raw`` keeps :data:`KEEP_BYTES`).
    ``cut``: why the line has no end, or None.
    """

    source: str
    number: int
    received_at: float | None
    raw: bytes
    length: int
    cut: str | None = None


@attrs.frozen
class FileRead:
    """What one FILE was, and what reading it found besides its lines."""

    source: str
    kind: Literal["capture", "text"]
    lines: int
    #: The day a text file's dates are read on (its year).
    reference: datetime.date | None
    notes: tuple[str, ...] = ()


_LINE_END = re.compile(rb"\r\n|\r|\n")
_FILL = b"\x00"


def _blank(line: bytes) -> bool:
    return not line.strip(_FILL).strip()


class _Framer:
    """Cuts a capture's SMDR reads into lines, as :class:`mitelacd.feed.smdr.SMDRReceiver` does."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.count = 0
        self._pending = bytearray()
        self._length = 0
        self._last: float | None = None

    def feed(self, data: bytes, when: float) -> Iterator[Line]:
        parts = data.replace(b"\r", b"\n").split(b"\n")
        for part in parts[:-1]:
            line = self._take(part, when)
            if line is not None:
                yield line
        self._add(parts[-1])
        if self._length:
            self._last = when

    def cut(self, why: str, when: float | None) -> Iterator[Line]:
        """The line left without its end, if any: ``why`` it ended there."""
        if self._length and not _blank(bytes(self._pending)):
            self.count += 1
            yield Line(
                self.source,
                self.count,
                when if when is not None else self._last,
                bytes(self._pending).strip(_FILL),
                self._length,
                why,
            )
        self._pending.clear()
        self._length = 0

    def _add(self, part: bytes) -> None:
        room = KEEP_BYTES - len(self._pending)
        if room > 0:
            self._pending += part[:room]
        self._length += len(part)

    def _take(self, part: bytes, when: float) -> Line | None:
        self._add(part)
        raw, length = bytes(self._pending), self._length
        self._pending.clear()
        self._length = 0
        if _blank(raw):
            return None
        self.count += 1
        return Line(self.source, self.count, when, raw.strip(_FILL), length)


def capture_lines(reader: CaptureReader, source: str) -> tuple[list[Line], list[str]]:
    """The SMDR lines of a capture, and what else reading it found (in words)."""
    framer = _Framer(source)
    lines: list[Line] = []
    connections = 0
    for entry in reader:
        ended: str | None = None
        match entry:
            case Data(when, data, "smdr"):
                lines.extend(framer.feed(data, when))
            case Connected(_, _, _, continued, "smdr"):
                connections += 1
                if not continued:
                    ended = "a new SMDR connection began"
            case Lost(_, why, "smdr"):
                ended = f"the SMDR connection ended ({why})"
            case Started():
                ended = "the daemon started again"
            case Stopped():
                ended = "the daemon stopped"
            case Gap(_, _, _, data_bytes):
                ended = f"the capture lost {data_bytes} bytes"
        if ended is not None:
            lines.extend(framer.cut(f"{ended} before the line's end", entry.time))
    lines.extend(framer.cut("the capture ends before the line's end", None))
    notes = list(reader.report.problems())
    if not lines and not connections:
        notes.append("no SMDR in this capture (was the daemon run with --smdr?)")
    return lines, notes


def text_lines(data: bytes, source: str) -> list[Line]:
    """The lines of a text file; a last line without its end is a line."""
    parts = _LINE_END.split(data)
    if parts and parts[-1] == b"":
        parts.pop()
    found = []
    for number, part in enumerate(parts, 1):
        if _blank(part):
            continue
        found.append(Line(source, number, None, part.strip(_FILL)[:KEEP_BYTES], len(part)))
    return found


class FileProblem(Exception):
    """A FILE that cannot be read at all."""


_GZIP_MAGIC = b"\x1f\x8b"


def _decompressed(data: bytes, name: str) -> bytes:
    """``data``, gunzipped if it is gzip."""
    if not data.startswith(_GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        raise FileProblem(f"cannot read {name}: {e}") from None


def _is_capture(start: bytes) -> bool:
    return start.startswith(f"{FORMAT} ".encode("ascii"))


def read_file(
    path: str, date: datetime.date | None, stdin: IO[bytes] | None = None
) -> tuple[list[Line], FileRead]:
    """The lines of one FILE (``-``: ``stdin``), and what it was.

    A text file's dates are read on ``date``, else on the day it was last
    modified (standard input: today). :class:`FileProblem` when the file
    cannot be read at all.
    """
    if path == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        try:
            data = _decompressed(stream.read(), "standard input")
        except OSError as e:
            raise FileProblem(f"cannot read standard input: {e.strerror or e}") from None
        if _is_capture(data):
            return _capture_bytes(data)
        lines = text_lines(data, path)
        return lines, FileRead(path, "text", len(lines), date or datetime.date.today())
    try:
        with open(path, "rb") as opened:
            start = opened.read(len(FORMAT) + 1)
            if start.startswith(_GZIP_MAGIC):
                opened.seek(0)
                start = gzip.GzipFile(fileobj=opened, mode="rb").read(len(FORMAT) + 1)
            if not _is_capture(start):
                opened.seek(0)
                data = _decompressed(opened.read(), path)
                modified = os.fstat(opened.fileno()).st_mtime
                lines = text_lines(data, path)
                reference = date or datetime.date.fromtimestamp(modified)
                return lines, FileRead(path, "text", len(lines), reference)
    except (OSError, EOFError, zlib.error) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else e
        raise FileProblem(f"cannot read {path}: {reason}") from None
    try:
        lines, notes = capture_lines(CaptureReader(path), path)
    except CaptureError as e:
        raise FileProblem(str(e)) from None
    return lines, FileRead(path, "capture", len(lines), None, tuple(notes))


def _capture_bytes(data: bytes) -> tuple[list[Line], FileRead]:
    """A capture on standard input: read through a file, as captures are."""
    with tempfile.TemporaryDirectory(prefix="mitelacd-smdr-check-") as folder:
        path = os.path.join(folder, "stdin.capture")
        with open(path, "wb") as f:
            f.write(data)
        try:
            lines, notes = capture_lines(CaptureReader(path), "-")
        except CaptureError as e:
            raise FileProblem(str(e).replace(path, "standard input")) from None
    return lines, FileRead("-", "capture", len(lines), None, tuple(notes))


# --- checking ------------------------------------------------------------------------------


@attrs.frozen
class Problem:
    """A line that could not be read or a record that could not be counted, and why."""

    kind: ProblemKind
    why: str


@attrs.frozen
class Checked:
    """One line, read, classified and added to the day."""

    line: Line
    result: SmdrResult
    #: What the record says of its path call; None for an unreadable line.
    outcome: Outcome | None
    added: Added
    received_at: float
    #: The call's start as placed (local time), when it could be.
    start: datetime.datetime | None
    #: (key, words) of each reading the outcome rests on that is marked [verify].
    verify: tuple[tuple[str, str], ...]
    problems: tuple[Problem, ...]


@attrs.frozen
class PathTotals:
    """One path's figures over everything read."""

    path: str
    service_level_seconds: int
    offered: int
    answered: int
    abandoned: int
    short_abandoned: int
    interflowed: int
    requeued: int
    unavailable: int
    unclassified: int
    answered_within_target: int
    time_to_answer_seconds: int
    service_level_percent: float | None
    average_time_to_answer_seconds: float | None
    intervals: tuple[PathInterval, ...]


@attrs.frozen
class Report:
    """Everything a check found."""

    files: tuple[FileRead, ...]
    layout: SmdrLayout | None
    settings: SmdrSettings
    checked: tuple[Checked, ...]
    totals: tuple[PathTotals, ...]
    counts: dict[str, int]
    layouts: dict[str, int]
    outcomes: dict[str, int]

    @property
    def problems(self) -> list[Checked]:
        return [c for c in self.checked if c.problems]

    @property
    def status(self) -> int:
        failing = any(p.kind in FAILING for c in self.checked for p in c.problems)
        return EXIT_PROBLEMS if failing else EXIT_OK


def _placed(
    record: SmdrRecord, received: datetime.date, tz: datetime.tzinfo | None
) -> datetime.datetime | None:
    if record.month is None or record.day is None or record.start is None:
        return None
    date = record_date(record.month, record.day, received)
    if date is None:
        return None
    return datetime.datetime.combine(date, record.start, tzinfo=tz)


def why_unclassified(record: SmdrRecord) -> str:
    """Why a path record fits no rule of §6.3, in words."""
    if record.path is None:
        return f"the path in Digits Dialed cannot be read ({record.digits!r})"
    if "transfer" in record.unread:
        return f"the transfer flag {record.transfer!r} is none of T X C I R U"
    if record.unanswered:
        return "unanswered (***) with no duration: abandoned or short abandon cannot be told"
    if record.time_to_answer_seconds is not None:
        return "a time to answer but no called party (agent): answered by whom?"
    if "time_to_answer" in record.unread:
        return f"the time to answer {record.field('time_to_answer').strip()!r} cannot be read"
    return "no time to answer and no ACD marker (I, R, U): neither answered nor abandoned"


def _why_unplaced(record: SmdrRecord) -> str:
    if record.path is None:
        return f"the path in Digits Dialed cannot be read ({record.digits!r}): no call"
    if "call_id" in record.unread:
        return (
            f"the OLI call identifier {record.field('call_id').strip()!r} cannot be read: no call"
        )
    return "its date or start time cannot be read: no call to put it in"


def _verify(record: SmdrRecord, outcome: Outcome) -> tuple[tuple[str, str], ...]:
    found = [(key, READINGS.get(key, key)) for key in record.provisional]
    extra = OUTCOME_READINGS.get(outcome)
    if extra is not None:
        found.append(extra)
    return tuple(found)


def check(
    lines: Iterable[tuple[Line, datetime.date | None]],
    settings: SmdrSettings,
    layout: SmdrLayout | None = None,
    tz: datetime.tzinfo | None = None,
) -> tuple[list[Checked], SmdrDay]:
    """Read, classify and add every line; text lines come with the day their dates are read on."""
    day = SmdrDay(datetime.time(0, 0), tz, settings)
    checked = []
    for line, reference in lines:
        if line.cut is not None:
            # Never read: what is missing may be the very marker that decides (§6.3).
            result: SmdrResult = SmdrUnreadable(line.raw, f"cut: {line.cut}", layout)
        elif line.length > MAX_LINE:
            result = SmdrUnreadable(
                line.raw,
                f"{line.length} bytes without a line end: more than the {MAX_LINE} the daemon"
                " takes, dropped as noise",
                layout,
            )
        else:
            result = parse_smdr(line.raw, layout)
        outcome = None
        start = None
        verify: tuple[tuple[str, str], ...] = ()
        if isinstance(result, SmdrRecord):
            outcome = classify(result, settings.short_abandon_seconds)
            verify = _verify(result, outcome)
        if line.received_at is not None:
            received = line.received_at
            if isinstance(result, SmdrRecord):
                start = _placed(result, day.days.local(received).date(), tz)
        else:
            assert reference is not None
            if isinstance(result, SmdrRecord):
                start = _placed(result, reference, tz)
            # A text line counts as received at its own start: never too late.
            moment = start or datetime.datetime.combine(reference, datetime.time(12), tzinfo=tz)
            received = moment.timestamp()
        added = day.add(result, received)
        problems: list[Problem] = []
        if line.cut is not None:
            problems.append(Problem("cut", f"{line.cut}: not read, not counted"))
        elif isinstance(result, SmdrUnreadable):
            problems.append(Problem("unreadable", result.reason))
        if isinstance(result, SmdrRecord):
            if outcome == "unclassified":
                problems.append(Problem("unclassified", why_unclassified(result)))
            elif added == "unplaced":
                problems.append(Problem("unplaced", _why_unplaced(result)))
            if added == "too_late":
                problems.append(
                    Problem(
                        "too_late",
                        "received more than 2 h after its interval ended: not counted,"
                        " as in the daemon",
                    )
                )
        checked.append(
            Checked(line, result, outcome, added, received, start, verify, tuple(problems))
        )
    return checked, day


def path_totals(figures: Iterable[PathInterval], settings: SmdrSettings) -> list[PathTotals]:
    """Each path's intervals added up, with its ratios worked out again over the sums."""
    by_path: dict[str, list[PathInterval]] = {}
    for interval in figures:
        by_path.setdefault(interval.path, []).append(interval)
    totals = []
    for path in sorted(by_path):
        intervals = by_path[path]
        sums = {name: sum(getattr(i, name) for i in intervals) for name in COUNT_FIGURES}
        waited = sum(i.time_to_answer_seconds for i in intervals)
        served = sums["offered"] - sums["short_abandoned"]
        answered = sums["answered"]
        totals.append(
            PathTotals(
                path=path,
                service_level_seconds=settings.target(path),
                time_to_answer_seconds=waited,
                service_level_percent=(
                    round(sums["answered_within_target"] / served * 100, RATIO_DECIMALS)
                    if served > 0
                    else None
                ),
                average_time_to_answer_seconds=(
                    round(waited / answered, RATIO_DECIMALS) if answered > 0 else None
                ),
                intervals=tuple(intervals),
                **sums,
            )
        )
    return totals


def run_check(
    reads: Sequence[tuple[list[Line], FileRead]],
    settings: SmdrSettings,
    layout: SmdrLayout | None = None,
    tz: datetime.tzinfo | None = None,
) -> Report:
    """Everything the files say: records, figures per path, problems."""
    pairs = [(line, read.reference) for lines, read in reads for line in lines]
    checked, day = check(pairs, settings, layout, tz)
    now = max((c.received_at for c in checked), default=0.0)
    layouts: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    for c in checked:
        if isinstance(c.result, SmdrRecord):
            layouts[c.result.layout.name] += 1
        if c.outcome is not None:
            outcomes[c.outcome] += 1
    problems = Counter(p.kind for c in checked for p in c.problems)
    counts = {
        "lines": len(checked),
        "records": sum(isinstance(c.result, SmdrRecord) for c in checked),
        "path_records": sum(c.outcome not in (None, "not_a_path_call") for c in checked),
        "calls": day.counts["call"],
        "not_a_path_call": day.counts["not_a_path_call"],
        "unreadable": day.counts["unreadable"] - problems["cut"],
        "cut": problems["cut"],
        "unclassified": outcomes["unclassified"],
        "unplaced": day.counts["unplaced"],
        "too_late": day.counts["too_late"],
    }
    return Report(
        files=tuple(read for _, read in reads),
        layout=layout,
        settings=settings,
        checked=tuple(checked),
        totals=tuple(path_totals(day.figures(now), settings)),
        counts=counts,
        layouts=dict(layouts.most_common()),
        outcomes=dict(outcomes),
    )


# --- the text -------------------------------------------------------------------------------


def shown(raw: bytes | str, limit: int = SHOWN_CHARACTERS, length: int | None = None) -> str:
    """A line as printable ASCII (``\\xHH`` for other bytes), cut at ``limit`` characters.

    ``length``: the line's true length in bytes, when ``raw`` is only its start.
    """
    data = raw.encode("latin-1", "replace") if isinstance(raw, str) else raw
    text = escape(data).decode("ascii")
    size = len(data) if length is None else length
    if len(text) > limit or size > len(data):
        return f"{text[:limit]}... ({size} bytes)"
    return text


def _field_text(record: SmdrRecord) -> str:
    parts = []
    for name, value in record.fields:
        value = value.strip()
        if value:
            parts.append(f"{name}={json.dumps(value) if ' ' in value else value}")
    return " ".join(parts)


def _time(when: float, tz: datetime.tzinfo | None) -> str:
    return datetime.datetime.fromtimestamp(when, tz).strftime("%Y-%m-%d %H:%M:%S")


def _where(c: Checked, tz: datetime.tzinfo | None) -> str:
    line = c.line
    if line.received_at is None:
        return f"{line.source}:{line.number}"
    return f"{line.source} SMDR line {line.number}, received {_time(line.received_at, tz)}"


def describe(record: SmdrRecord, outcome: Outcome, settings: SmdrSettings) -> str:
    """What the record says of its call, in words."""
    path = f"path {record.path}"
    if outcome == "answered":
        tta = record.time_to_answer_seconds
        target = settings.target(record.path or "")
        within = "within" if tta is not None and tta <= target else "not within"
        group = f", answering group {record.answering_group}" if record.answering_group else ""
        words = (
            f"answered: {path}, agent {record.called}{group}, time to answer {tta} s"
            f" ({within} the {target} s target)"
        )
        if record.transfer in ("T", "X", "C"):
            words += f"; then transferred ({record.transfer}) to {record.third_party or '?'}"
        return words
    if outcome in ("abandoned", "short_abandoned"):
        limit = settings.short_abandon_seconds
        kind = "short abandon" if outcome == "short_abandoned" else "abandoned"
        compare = "<=" if outcome == "short_abandoned" else ">"
        return (
            f"{kind}: {path}, after {record.duration_seconds} s"
            f" ({compare} the {limit} s short-abandon threshold)"
        )
    if outcome == "interflowed":
        return f"interflowed: {path}, to {record.third_party or '?'}"
    if outcome == "requeued":
        return f"requeued: {path}, agent {record.called or '?'} did not answer"
    if outcome == "unavailable":
        return f"queue unavailable: {path}, routed to {record.third_party or '?'}"
    if outcome == "unclassified":
        return f"unclassified: {why_unclassified(record)}"
    meaning = record.completion_meaning.replace("_", " ")
    return f"not a path call (no P token in Digits Dialed; completion: {meaning})"


def _number(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:.1f} {unit}"


def _totals_lines(report: Report, intervals: bool, tz: datetime.tzinfo | None) -> list[str]:
    out = ["Per path, over everything read:"]
    if not report.totals:
        out.append("  no path calls")
    for t in report.totals:
        out.append(f"  path {t.path} (service level target {t.service_level_seconds} s)")
        out.append("    " + "  ".join(f"{name} {getattr(t, name)}" for name in COUNT_FIGURES[:5]))
        out.append("    " + "  ".join(f"{name} {getattr(t, name)}" for name in COUNT_FIGURES[5:]))
        out.append(
            f"    service_level {_number(t.service_level_percent, '%')}"
            f"  average_time_to_answer {_number(t.average_time_to_answer_seconds, 's')}"
        )
        if intervals:
            for i in t.intervals:
                start = datetime.datetime.fromtimestamp(i.start, tz).strftime("%Y-%m-%d %H:%M")
                end = datetime.datetime.fromtimestamp(i.end, tz).strftime("%H:%M")
                figures = " ".join(f"{name} {getattr(i, name)}" for name in COUNT_FIGURES)
                out.append(
                    f"    {start}-{end}  {figures}"
                    f"  service_level {_number(i.service_level_percent, '%')}"
                    f"  average_time_to_answer {_number(i.average_time_to_answer_seconds, 's')}"
                )
    if not report.settings.confirmed and report.totals:
        out.append(f"  provisional until [smdr] confirmed = true: {', '.join(PROVISIONAL_FIGURES)}")
    counts = report.counts
    out.append(
        f"Read: {counts['lines']} lines, {counts['records']} records"
        f" ({counts['path_records']} of path calls, {counts['calls']} in the figures),"
        f" {counts['unreadable']} unreadable, {counts['cut']} cut,"
        f" {counts['unclassified']} unclassified, {counts['unplaced']} unplaced,"
        f" {counts['too_late']} too late"
    )
    if report.layouts:
        how = f"forced with --layout {report.layout.name}" if report.layout else "detected"
        seen = ", ".join(f"{name} {n}" for name, n in report.layouts.items())
        out.append(f"Layouts ({how}): {seen}")
    return out


def _problem_lines(report: Report, tz: datetime.tzinfo | None) -> list[str]:
    problems = report.problems
    if not problems:
        return ["Problems: none"]
    out = [f"Problems ({len(problems)}):"]
    for c in problems:
        for p in c.problems:
            out.append(f"  {_where(c, tz)}: {p.kind}: {p.why}")
        out.append(f"    | {shown(c.line.raw, length=c.line.length)}")
    return out


def _record_lines(c: Checked, report: Report, tz: datetime.tzinfo | None) -> list[str]:
    result = c.result
    out = []
    if isinstance(result, SmdrUnreadable):
        out.append(f"{_where(c, tz)}  unreadable: {result.reason}")
        out.append(f"  | {shown(c.line.raw, length=c.line.length)}")
    else:
        how = "detected" if result.detected else "forced"
        start = f"  call start {c.start:%Y-%m-%d %H:%M:%S}" if c.start is not None else ""
        out.append(f"{_where(c, tz)}  layout {result.layout.name} ({how}){start}")
        out.append(f"  | {shown(c.line.raw, 250, c.line.length)}")
        out.append(f"  {_field_text(result)}")
        assert c.outcome is not None
        out.append(f"  {describe(result, c.outcome, report.settings)}")
        if c.outcome in PROVISIONAL_OUTCOMES and not report.settings.confirmed:
            out.append("  (a provisional outcome)")
        for _, words in c.verify:
            out.append(f"  [verify] {words}")
        if result.unread:
            out.append(f"  unread fields: {', '.join(result.unread)}")
    for p in c.problems:
        if p.kind == "too_late":
            out.append(f"  {p.kind}: {p.why}")
    return out


#: The outcomes a site's test calls should show before it confirms.
TEST_OUTCOMES = (
    "answered",
    "abandoned",
    "short_abandoned",
    "requeued",
    "interflowed",
    "unavailable",
)


def _checklist(report: Report) -> list[str]:
    seen = [o for o in TEST_OUTCOMES if report.outcomes.get(o)]
    missing = [o for o in TEST_OUTCOMES if not report.outcomes.get(o)]
    layouts = ", ".join(report.layouts) or "none"
    return [
        "Before setting [smdr] confirmed = true in the names file (docs/smdr.md,"
        ' "Confirming the markers"):',
        f"  1. No problems above, and every record read with one layout (here: {layouts}),"
        " the one the controller's SMDR options give.",
        "  2. Each test call shows the outcome you made it have, from the records above:"
        f" seen {', '.join(seen) or 'none'}; not seen {', '.join(missing) or 'none'}.",
        "  3. The time to answer of the call you timed: ring time only, or queue and ring"
        " (docs/smdr.md).",
        "  4. Answered per path as the ACD stream counts the same calls"
        " (answered_difference in the reports by path).",
    ]


def render_text(
    report: Report,
    quiet: bool = False,
    intervals: bool = False,
    tz: datetime.tzinfo | None = None,
) -> str:
    """The report as the text an installer reads: records, totals, problems, what to check."""
    out: list[str] = []
    if not quiet:
        for c in report.checked:
            out.extend(_record_lines(c, report, tz))
            out.append("")
    out.extend(_totals_lines(report, intervals, tz))
    out.append("")
    out.extend(_problem_lines(report, tz))
    if not quiet and not report.settings.confirmed:
        out.append("")
        out.extend(_checklist(report))
    return "\n".join(out) + "\n"


# --- JSON --------------------------------------------------------------------------------------


def _reading(record: SmdrRecord) -> dict[str, Any]:
    return {
        "month": record.month,
        "day": record.day,
        "start": None if record.start is None else record.start.isoformat(),
        "duration_seconds": record.duration_seconds,
        "time_to_answer_seconds": record.time_to_answer_seconds,
        "unanswered": record.unanswered,
        "calling": record.calling,
        "digits": record.digits,
        "called": record.called,
        "third_party": record.third_party,
        "completion": record.completion,
        "completion_meaning": record.completion_meaning,
        "transfer": record.transfer,
        "path": record.path,
        "groups": list(record.groups),
        "answering_group": record.answering_group,
        "system_id": record.system_id,
        "ani": record.ani,
        "dnis": record.dnis,
        "meter_pulses": record.meter_pulses,
        "call_id": record.call_id,
        "sequence_id": record.sequence_id,
        "associated_call_id": record.associated_call_id,
    }


def _record_json(c: Checked, report: Report) -> dict[str, Any]:
    result = c.result
    found: dict[str, Any] = {
        "file": c.line.source,
        "line": c.line.number,
        "received_at": c.line.received_at,
        "raw": shown(c.line.raw, KEEP_BYTES * 4, c.line.length),
        "length": c.line.length,
        "cut": c.line.cut,
        "added": c.added,
        "problems": [{"kind": p.kind, "why": p.why} for p in c.problems],
    }
    if isinstance(result, SmdrUnreadable):
        found.update(readable=False, reason=result.reason, layout=None)
        return found
    found.update(
        readable=True,
        layout=result.layout.name,
        detected=result.detected,
        call_start=None if c.start is None else c.start.isoformat(),
        fields={name: value.rstrip() for name, value in result.fields},
        reading=_reading(result),
        outcome=c.outcome,
        description=describe(result, c.outcome or "unclassified", report.settings),
        verify=[{"reading": key, "says": words} for key, words in c.verify],
        unread=list(result.unread),
    )
    return found


def _interval_json(i: PathInterval) -> dict[str, Any]:
    return {
        "start": i.start,
        "end": i.end,
        "day": i.day.isoformat(),
        **{name: getattr(i, name) for name in COUNT_FIGURES},
        "service_level_seconds": i.service_level_seconds,
        "time_to_answer_seconds": i.time_to_answer_seconds,
        "service_level_percent": i.service_level_percent,
        "average_time_to_answer_seconds": i.average_time_to_answer_seconds,
    }


def render_json(report: Report, quiet: bool = False, intervals: bool = False) -> str:
    """The report as one JSON document (``--json``); ``quiet`` leaves the records out."""
    settings = report.settings
    totals = []
    for t in report.totals:
        entry: dict[str, Any] = {
            "path": t.path,
            "service_level_seconds": t.service_level_seconds,
            **{name: getattr(t, name) for name in COUNT_FIGURES},
            "time_to_answer_seconds": t.time_to_answer_seconds,
            "service_level_percent": t.service_level_percent,
            "average_time_to_answer_seconds": t.average_time_to_answer_seconds,
            "provisional": [] if settings.confirmed else list(PROVISIONAL_FIGURES),
        }
        if intervals:
            entry["intervals"] = [_interval_json(i) for i in t.intervals]
        totals.append(entry)
    document = {
        "program": f"{PROG} {__version__}",
        "files": [
            {
                "file": f.source,
                "kind": f.kind,
                "lines": f.lines,
                "date": None if f.reference is None else f.reference.isoformat(),
                "notes": list(f.notes),
            }
            for f in report.files
        ],
        "layout": None if report.layout is None else report.layout.name,
        "settings": {
            "service_level_seconds": settings.service_level_seconds,
            "path_service_level_seconds": dict(settings.path_service_level_seconds),
            "short_abandon_seconds": settings.short_abandon_seconds,
            "confirmed": settings.confirmed,
        },
        "records": [] if quiet else [_record_json(c, report) for c in report.checked],
        "totals": totals,
        "counts": report.counts,
        "layouts": report.layouts,
        "outcomes": report.outcomes,
        "problems": [
            {
                "file": c.line.source,
                "line": c.line.number,
                "received_at": c.line.received_at,
                "kind": p.kind,
                "why": p.why,
                "raw": shown(c.line.raw, 300, c.line.length),
            }
            for c in report.problems
            for p in c.problems
        ],
        "status": report.status,
    }
    return json.dumps(document, indent=1) + "\n"


# --- the command --------------------------------------------------------------------------------


def _layout(value: str) -> SmdrLayout:
    try:
        return layout_named(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(
            f"{e}; the layouts are {', '.join(LAYOUT_NAMES)}"
        ) from None


def _date(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {value!r} (YYYY-MM-DD)") from None


def arguments() -> CommandParser:
    # A bad command line exits 2, as a file that cannot be read does (as mitelacd-replay).
    parser = CommandParser(
        usage_status=EXIT_UNREADABLE,
        prog=PROG,
        description=(
            "Show what every SMDR record in captures (from --record) or text files says:"
            " the layout it was read with, its fields, its outcome and the readings it rests"
            " on; then the figures per path and every line that could not be read or"
            " classified. Exit status 0: all read; 1: some line unreadable, cut or"
            " unclassified; 2: a file or option that cannot be used. See docs/smdr.md."
        ),
    )
    parser.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="captures or text files of SMDR lines, plain or .gz; '-' is standard input",
    )
    parser.add_argument(
        "--layout",
        type=_layout,
        default=None,
        metavar="NAME",
        help="read every line with this layout (as the daemon's --smdr-layout); default:"
        " each line's own, by its length and markers",
    )
    parser.add_argument(
        "--names",
        default=None,
        metavar="FILE",
        help="the names file whose [service_level] and [smdr] settings to count with"
        " (default: a 20 s target, 6 s short abandons, provisional)",
    )
    parser.add_argument(
        "--date",
        type=_date,
        default=None,
        metavar="YYYY-MM-DD",
        help="the day text files were saved: their mm/dd dates take the year that puts"
        " them on or before it (default: each file's modification date)",
    )
    parser.add_argument(
        "--intervals", action="store_true", help="also give each path's figures per 15 minutes"
    )
    parser.add_argument(
        "--quiet", action="store_true", help="only the figures and the problems, no records"
    )
    parser.add_argument(
        "--json", action="store_true", help="one JSON document: records, totals, problems"
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser


def main(
    argv: Sequence[str] | None = None,
    stdout: IO[str] | None = None,
    stdin: IO[bytes] | None = None,
    tz: datetime.tzinfo | None = None,
) -> int:
    """The command; returns the exit status. ``tz``: the controller's time zone (local)."""
    out = stdout or sys.stdout
    parser = arguments()
    args = parser.parse_args(argv)
    if args.files.count("-") > 1:
        parser.error("'-' (standard input) may be given once")
    settings = SmdrSettings()
    if args.names is not None:
        try:
            settings = smdr_settings(load_names(args.names))
        except NamesError as e:
            parser.error(f"--names: {e}")
    reads = []
    for path in args.files:
        try:
            reads.append(read_file(path, args.date, stdin))
        except FileProblem as e:
            sys.stderr.write(f"{PROG}: {e}\n")
            return EXIT_UNREADABLE
    for _, read in reads:
        for note in read.notes:
            sys.stderr.write(f"{PROG}: {read.source}: {note}\n")
    report = run_check(reads, settings, args.layout, tz)
    if args.json:
        out.write(render_json(report, args.quiet, args.intervals))
    else:
        out.write(render_text(report, args.quiet, args.intervals, tz))
    out.flush()
    return report.status


def run(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of the ``mitelacd-smdr-check`` console script."""
    raise SystemExit(main(argv))


if __name__ == "__main__":
    run()
