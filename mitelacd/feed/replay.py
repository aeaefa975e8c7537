"""``mitelacd-replay FILE...``: run captures through the parser and the floor, offline.

Every read of a capture goes through the same :class:`~mitelacd.feed.protocol.ACDReceiver`
and :class:`~mitelacd.floor.state.FloorState` as in the daemon, on a
:class:`~twisted.internet.task.Clock` moved to the read's arrival time, so
that the idle flush of a record without an end, and every time the floor
keeps, come out as they did live. The final legacy document (the daemon's
``mitel_data.json`` at that point) is printed on standard output.

With ``--history URL`` the day's figures are counted from the replay instead,
as the daemon counts them, and the days the captures cover put in place of
what the history database holds for them (``mitelacd-replay --history URL
FILE...``): a report can be worked out again after a fix. A day the captures
cover only in part is left alone unless named with ``--day``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from collections.abc import Iterable, Sequence
from typing import IO, Any, cast

import attrs
from sqlalchemy.exc import SQLAlchemyError
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, globalLogBeginner
from twisted.python.failure import Failure

from mitelacd import __version__, logs
from mitelacd.cli import CommandParser
from mitelacd.feed.capture import (
    CaptureError,
    CaptureReader,
    Connected,
    Data,
    Entry,
    Gap,
    Lost,
    ReadReport,
    Started,
    Stopped,
    first_time,
)
from mitelacd.feed.protocol import IDLE_FLUSH, ACDReceiver, PBXClientFactory
from mitelacd.feed.smdr import SmdrClientFactory, SMDRReceiver
from mitelacd.floor.documents import FloorDocuments
from mitelacd.floor.render import iso_utc
from mitelacd.floor.smdr import SmdrLayout, layout_named, parse_smdr
from mitelacd.floor.state import FloorState
from mitelacd.reports.rows import IntervalRow, StateSpan
from mitelacd.reports.smdrcalls import PathInterval, SmdrDay, SmdrSettings
from mitelacd.reports.store import (
    HistoryError,
    HistoryURLError,
    day_bounds,
    error_detail,
    parse_url,
    problem_kind,
    redact,
)

#: The exit status of a file that cannot be read, and of a bad command line.
EXIT_UNREADABLE = 2

#: The exit status of a history database that cannot be written.
EXIT_HISTORY = 1

#: How far the captures may start after a day's start, or end before its end,
#: for the day to count as covered whole (seconds).
DAY_SLACK = 60.0


class ReplayedLoss(Exception):
    """A connection loss as the capture tells it; its message is the reason recorded."""


@attrs.define
class ReplaySummary:
    """What a replay went through."""

    files: int = 0
    reads: int = 0
    data_bytes: int = 0
    connections: int = 0
    losses: int = 0
    runs: int = 0
    gaps: int = 0
    gap_bytes: int = 0
    #: Entries of the SMDR stream (connections and reads).
    smdr_entries: int = 0
    first: float | None = None
    last: float | None = None
    #: The PBX address of the first connection in the captures.
    first_host: str | None = None
    reports: list[ReadReport] = attrs.Factory(list)

    def words(self) -> str:
        span = ""
        if self.first is not None and self.last is not None:
            span = f", from {iso_utc(self.first)} to {iso_utc(self.last)}"
        return (
            f"{self.files} file(s), {self.reads} reads ({self.data_bytes} bytes),"
            f" {self.connections} connection(s), {self.gaps} gap(s)"
            f" ({self.gap_bytes} bytes missing), {self.runs} daemon start(s){span}"
            + (f", {self.smdr_entries} SMDR entries" if self.smdr_entries else "")
        )


class Replayer:
    """A floor fed from capture entries, on a clock moved to each entry's time.

    Connections follow the capture: ``connected`` makes one (ending any still
    open), ``lost``, ``stop``, ``start`` and ``gap`` end it, and a read that
    comes while none is open (a file that begins mid-connection, or after a
    gap) opens one to the last PBX seen. The watchdog is off: a connection
    the daemon dropped for silence is in the capture as a loss.
    """

    def __init__(self, flush_after: float = IDLE_FLUSH) -> None:
        self.clock = Clock()
        self.floor = FloorState(self.clock)
        self.documents = FloorDocuments(self.floor)
        self.factory = PBXClientFactory(
            self.floor, self.clock, idle_timeout=None, flush_after=flush_after
        )
        self.flush_after = flush_after
        self.summary = ReplaySummary()
        #: What SMDR entries go to; None: they are counted and passed over.
        self.smdr: ReplayedSmdr | None = None
        self._receiver: ACDReceiver | None = None
        self._peer: tuple[str, int] = ("pbx", 15373)

    def _advance(self, when: float) -> None:
        # A capture's times never go back; if one does, time stands still.
        if when > self.clock.seconds():
            self.clock.advance(when - self.clock.seconds())

    def feed(self, entry: Entry) -> None:
        summary = self.summary
        if summary.first is None:
            summary.first = entry.time
            self.clock.advance(entry.time - self.clock.seconds())
        self._advance(entry.time)
        summary.last = max(summary.last or entry.time, entry.time)
        if getattr(entry, "stream", "acd") == "smdr":
            summary.smdr_entries += 1
            if self.smdr is not None:
                self.smdr.feed(entry)
            return
        match entry:
            case Data(_, data):
                if self._receiver is None:
                    self._connect(*self._peer)
                assert self._receiver is not None
                summary.reads += 1
                summary.data_bytes += len(data)
                self._receiver.dataReceived(data)
            case Connected(_, host, port, continued):
                if summary.first_host is None:
                    summary.first_host = host
                if continued and self._receiver is not None:
                    return
                self._lose("a new connection was made")
                self._connect(host, port)
            case Lost(_, why):
                self._lose(why)
            case Started():
                summary.runs += 1
                self._lose("mitelacd started again", flush=False)
            case Stopped(_, why):
                self._lose(f"mitelacd {why}", flush=False)
            case Gap(_, _, _, data_bytes):
                summary.gaps += 1
                summary.gap_bytes += data_bytes
                self._lose(f"capture gap: {data_bytes} bytes not recorded", flush=False)

    def feed_all(self, entries: Iterable[Entry]) -> None:
        for entry in entries:
            self.feed(entry)

    def finish(self, until: float | None = None) -> None:
        """Let time pass after the last entry: a record without an end is flushed, as live."""
        end = self.clock.seconds() + self.flush_after * 2
        self._advance(end if until is None else until)

    def legacy(self) -> bytes:
        """The legacy document now, byte for byte as the daemon writes its file."""
        return self.documents.legacy()

    def _connect(self, host: str, port: int) -> None:
        address = (IPv6Address if ":" in host else IPv4Address)("TCP", host, port)
        receiver = ACDReceiver()
        receiver.factory = self.factory
        receiver.makeConnection(StringTransport(peerAddress=address))
        self._receiver = receiver
        self._peer = (host, port)
        self.summary.connections += 1

    def _lose(self, why: str, flush: bool = True) -> None:
        """End the connection; ``flush``: apply a record still waiting for its end, as live.

        When the daemon stopped, its file was written before the connection
        closed, so a record left waiting then never reached the file; after
        a gap, the rest of that record is missing. Such a record is dropped.
        """
        receiver, self._receiver = self._receiver, None
        if receiver is not None:
            self.summary.losses += 1
            if not flush:
                receiver.clearLineBuffer()
            receiver.connectionLost(Failure(ReplayedLoss(why)))


def replay_files(
    paths: Sequence[str], until: float | None = None, replayer: Replayer | None = None
) -> Replayer:
    """Replay the captures at ``paths`` (ordered by their first entry) up to ``until``.

    CaptureError when a file cannot be read at all.
    """
    replayer = replayer or Replayer()
    ordered = sorted(paths, key=lambda p: _sort_key(p))
    for path in ordered:
        reader = CaptureReader(path)
        replayer.summary.files += 1
        replayer.summary.reports.append(reader.report)
        for entry in reader:
            if until is not None and entry.time > until:
                reader.close()
                break
            replayer.feed(entry)
    replayer.finish(until)
    return replayer


class ReplayedSmdr:
    """The SMDR lines of a replay, read into calls and per-path figures as the daemon does.

    Hung on a :class:`Replayer` (``replayer.smdr``) before the captures are
    fed. Each SMDR connection of the capture is cut into lines by the
    daemon's own :class:`~mitelacd.feed.smdr.SMDRReceiver`; each line is
    added at the time of the read that ended it.
    """

    def __init__(
        self,
        replayer: Replayer,
        day_starts: datetime.time = datetime.time(0),
        tz: datetime.tzinfo | None = None,
        layout: SmdrLayout | None = None,
        settings: SmdrSettings | None = None,
    ) -> None:
        self.replayer = replayer
        self.layout = layout
        self.day = SmdrDay(day_starts, tz, settings)
        self.lines = 0
        self.noise = 0
        self._factory = SmdrClientFactory(self, replayer.clock)
        self._receiver: SMDRReceiver | None = None
        replayer.smdr = self

    def feed(self, entry: Entry) -> None:
        match entry:
            case Connected(_, host, port, continued):
                if continued and self._receiver is not None:
                    return
                self._lose()
                self._connect(host, port)
            case Data(_, data):
                if self._receiver is None:
                    self._connect("pbx", 1752)
                assert self._receiver is not None
                self._receiver.dataReceived(data)
            case Lost():
                self._lose()

    def finish(self) -> list[PathInterval]:
        """The figures of every interval, as of the end of the replay."""
        self._lose()
        return self.day.figures(self.replayer.clock.seconds())

    def _connect(self, host: str, port: int) -> None:
        address = (IPv6Address if ":" in host else IPv4Address)("TCP", host, port)
        receiver = cast(SMDRReceiver, self._factory.buildProtocol(address))
        receiver.makeConnection(StringTransport(peerAddress=address))
        self._receiver = receiver

    def _lose(self) -> None:
        receiver, self._receiver = self._receiver, None
        if receiver is not None:
            receiver.connectionLost(Failure(ReplayedLoss("replayed loss")))

    # What the receiver tells (mitelacd.feed.smdr.SmdrSink).

    def smdrConnected(self, host: str, port: int) -> None:
        pass

    def smdrLine(self, line: bytes) -> None:
        self.lines += 1
        self.day.add(parse_smdr(line, self.layout), self.replayer.clock.seconds())

    def smdrNoise(self, data: bytes, reason: str) -> None:
        self.noise += 1

    def smdrDisconnected(self, why: str) -> None:
        pass

    def smdrConnectFailed(self, host: str, port: int, why: str) -> None:
        pass


def smdr_document(intervals: Sequence[PathInterval]) -> dict[str, Any]:
    """The per-path SMDR figures of a replay, as ``mitelacd-replay --smdr`` prints them."""
    rows = []
    for interval in intervals:
        row = attrs.asdict(interval)
        row["day"] = interval.day.isoformat()
        row["interval_start"] = iso_utc(interval.start)
        row["interval_end"] = iso_utc(interval.end)
        row["provisional"] = list(interval.provisional)
        rows.append(row)
    return {"paths": rows}


@attrs.define
class FigureRows:
    """What the day's figures closed during a replay: interval rows and agent state spans."""

    intervals: list[IntervalRow] = attrs.Factory(list)
    spans: list[StateSpan] = attrs.Factory(list)

    def __call__(self, intervals: Sequence[IntervalRow], spans: Sequence[StateSpan]) -> None:
        self.intervals.extend(intervals)
        self.spans.extend(spans)


class ReplayedFigures:
    """The day's figures counted from a replay, as the daemon counts them live.

    Hung on the replayer's floor before the captures are fed; :meth:`finish`
    closes the interval under way at the end of the replay.
    """

    def __init__(
        self,
        replayer: Replayer,
        day_starts: datetime.time = datetime.time(0),
        tz: datetime.tzinfo | None = None,
    ) -> None:
        from mitelacd.floor.days import DayClock
        from mitelacd.reports.figures import DayFigures

        self.replayer = replayer
        self.rows = FigureRows()
        self.days = DayClock(day_starts, tz)
        self.day_starts = day_starts
        self.tz = tz
        self.figures = DayFigures(day_starts, tz, sink=self.rows)
        replayer.floor.addListener(self.figures)

    def finish(self) -> FigureRows:
        self.figures.finish(self.replayer.clock.seconds())
        return self.rows

    def day_of(self, when: float) -> str:
        return self.days.day(when).isoformat()

    def days_covered(self, slack: float = DAY_SLACK) -> tuple[list[str], list[str]]:
        """The days with rows the captures cover whole, and those they cover only in part.

        Whole: the captures run from the day's start to its end, give or
        take ``slack`` seconds.
        """
        summary = self.replayer.summary
        found = {r.day for r in self.rows.intervals} | {
            self.day_of(s.start) for s in self.rows.spans
        }
        whole: list[str] = []
        partial: list[str] = []
        for day in sorted(found):
            low, high = day_bounds(day, self.day_starts, self.tz)
            if (
                summary.first is not None
                and summary.last is not None
                and summary.first <= low + slack
                and summary.last >= high - slack
            ):
                whole.append(day)
            else:
                partial.append(day)
        return whole, partial

    def of_days(self, days: Sequence[str]) -> tuple[list[IntervalRow], list[StateSpan]]:
        """The rows and spans that belong to ``days``."""
        wanted = set(days)
        intervals = [r for r in self.rows.intervals if r.day in wanted]
        spans = [s for s in self.rows.spans if self.day_of(s.start) in wanted]
        return intervals, spans


def rebuild_history(
    figures: ReplayedFigures,
    url: str,
    source: str,
    days: Sequence[str] | None = None,
    report: IO[str] | None = None,
) -> list[str]:
    """Put the replay's rows of ``days`` (default: the days covered whole) in the history.

    One transaction: the database holds the old days or the new ones. The
    days replaced are returned; what was done is told on ``report``.
    """
    from mitelacd.reports.store import open_store

    tell = report or sys.stderr
    whole, partial = figures.days_covered()
    chosen = sorted(set(days)) if days else whole
    if not days:
        for day in partial:
            tell.write(
                f"mitelacd-replay: {day} is only partly in the captures: left as it is"
                f" (name it with --day {day} to replace it all the same)\n"
            )
    if not chosen:
        tell.write("mitelacd-replay: no whole day in the captures; the history is unchanged\n")
        return []
    intervals, spans = figures.of_days(chosen)
    store = open_store(url)
    try:
        store.migrate()
        deleted = store.replace_days(
            source, chosen, intervals, spans, figures.day_starts, figures.tz
        )
    finally:
        store.close()
    tell.write(
        f"mitelacd-replay: {', '.join(chosen)} of source {source!r} in {store.url.shown}:"
        f" {deleted} rows replaced by {len(intervals)} interval rows and {len(spans)} state spans\n"
    )
    return chosen


def _sort_key(path: str) -> float:
    first = first_time(path)
    return float("inf") if first is None else first


def parse_time(value: str) -> float:
    """``--at``: Unix seconds, or an ISO 8601 date and time (local time unless it says)."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {value!r} (Unix seconds or ISO 8601, e.g. 2026-03-09T17:30:00)"
        ) from None
    return when.timestamp()


def _arguments() -> argparse.ArgumentParser:
    # A bad command line exits 2, as a capture that cannot be read does.
    parser = CommandParser(
        usage_status=EXIT_UNREADABLE,
        prog="mitelacd-replay",
        description=(
            "Run mitelacd captures (from --record) through the parser and the floor"
            " offline, and print the final legacy document (mitel_data.json) on"
            " standard output. A summary goes to standard error."
        ),
    )
    parser.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="capture files, plain or .gz; replayed in the order of their first entry",
    )
    parser.add_argument(
        "--at",
        type=parse_time,
        default=None,
        metavar="TIME",
        help="stop at this time (Unix seconds or ISO 8601) and print the document as it was",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no summary on standard error (warnings still)"
    )
    parser.add_argument(
        "--history",
        default=None,
        metavar="URL",
        help=(
            "count the day's figures from the captures and put the days they cover whole in"
            " this history database (a SQLite file or postgresql://user@host/db) in place of"
            " what it holds for them; the legacy document is then not printed"
        ),
    )
    parser.add_argument(
        "--source",
        default=None,
        help=(
            "with --history: the source the rows go under, the daemon's --history-source"
            " (default: the PBX address of the captures' first connection, else 'replay')"
        ),
    )
    parser.add_argument(
        "--day-starts",
        type=_day_starts,
        default=datetime.time(0),
        metavar="HH:MM",
        help="with --history: when a report day starts, as the daemon's --day-starts (00:00)",
    )
    parser.add_argument(
        "--day",
        dest="days",
        action="append",
        type=_day,
        default=None,
        metavar="DATE",
        help=(
            "with --history: replace this day (YYYY-MM-DD; may be given more than once)"
            " even if the captures cover only part of it"
        ),
    )
    parser.add_argument(
        "--smdr",
        action="store_true",
        help=(
            "print the SMDR figures of the captures (per path and 15-minute interval, as"
            " JSON) in place of the legacy document"
        ),
    )
    parser.add_argument(
        "--smdr-layout",
        type=_smdr_layout,
        default=None,
        metavar="LAYOUT",
        help="with --smdr: read every SMDR line with this layout (default: each line's own)",
    )
    parser.add_argument("--version", action="version", version=f"mitelacd-replay {__version__}")
    return parser


def _day_starts(value: str) -> datetime.time:
    from mitelacd.reports.figures import parse_day_starts

    try:
        return parse_day_starts(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _smdr_layout(value: str) -> SmdrLayout:
    try:
        return layout_named(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _day(value: str) -> str:
    try:
        return datetime.date.fromisoformat(value).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a day: {value!r} (YYYY-MM-DD)") from None


def _warnings_to(stream: IO[str]) -> Any:
    def observe(event: dict[str, Any]) -> None:
        if event.get("log_level") in (LogLevel.warn, LogLevel.error, LogLevel.critical):
            stream.write(f"mitelacd-replay: {logs.render(event)}\n")

    return observe


def main(argv: Sequence[str] | None = None, stdout: IO[str] | None = None) -> int:
    """The console script; returns the exit status."""
    out = stdout or sys.stdout
    parser = _arguments()
    args = parser.parse_args(argv)
    replayer = Replayer()
    figures: ReplayedFigures | None = None
    if args.history is not None:
        try:
            parse_url(args.history)
        except HistoryURLError as e:
            parser.error(f"--history: {e}")
        figures = ReplayedFigures(replayer, args.day_starts)
    elif args.source is not None or args.days is not None:
        parser.error("--source and --day go with --history")
    smdr: ReplayedSmdr | None = None
    if args.smdr:
        if args.history is not None:
            parser.error("--smdr prints figures: it does not go with --history")
        smdr = ReplayedSmdr(replayer, args.day_starts, layout=args.smdr_layout)
    elif args.smdr_layout is not None:
        parser.error("--smdr-layout goes with --smdr")
    try:
        replayer = replay_files(args.files, args.at, replayer)
    except CaptureError as e:
        sys.stderr.write(f"mitelacd-replay: {e}\n")
        return EXIT_UNREADABLE
    summary = replayer.summary
    for report in summary.reports:
        for problem in report.problems():
            sys.stderr.write(f"mitelacd-replay: {report.path}: {problem}\n")
    if not args.quiet:
        sys.stderr.write(f"mitelacd-replay: {summary.words()}\n")
    if figures is not None:
        figures.finish()
        source = args.source or summary.first_host or "replay"
        try:
            rebuild_history(figures, args.history, source, args.days)
        except (HistoryError, SQLAlchemyError, OSError) as e:
            sys.stderr.write(
                f"mitelacd-replay: cannot write the history database {redact(args.history)}:"
                f" {problem_kind(e)} ({error_detail(e)})\n"
            )
            return EXIT_HISTORY
        return 0
    if smdr is not None:
        document = smdr_document(smdr.finish())
        if not args.quiet:
            sys.stderr.write(
                f"mitelacd-replay: {smdr.lines} SMDR lines, {smdr.day.counts['unreadable']}"
                f" unreadable, {smdr.day.counts['unclassified']} unclassified,"
                f" {len(document['paths'])} path intervals\n"
            )
        out.write(json.dumps(document, indent=1) + "\n")
        out.flush()
        return 0
    out.write(replayer.legacy().decode("ascii") + "\n")
    out.flush()
    return 0


def run() -> None:
    """Entry point of the ``mitelacd-replay`` console script."""
    # The floor's own warnings (numbering gaps, unreadable records) are worth
    # seeing; its line per event is not.
    logs.set_level(LogLevel.warn)
    globalLogBeginner.beginLoggingTo([_warnings_to(sys.stderr)], redirectStandardIO=False)
    raise SystemExit(main())


if __name__ == "__main__":
    run()
