"""``mitelacd-report``: a report from the history database, on standard output.

    mitelacd-report --history /var/lib/mitelacd/history.db --from 2026-11-01 --to 2026-11-30
    mitelacd-report --history postgresql://report@db/mitelacd --from today --by path --interval 1h --csv

    mitelacd-report --history history.db --from yesterday --names names.toml --csv --excel
    mitelacd-report --history history.db --from 2026-11-01 --by agent,path --xlsx november.xlsx

Rows by path have the SMDR figures kept beside the ACD stream's (as last
written: an interval still open may be revised by the daemon). JSON by
default (the document of ``/api/v1/reports``), CSV with ``--csv``
(see :mod:`mitelacd.reports.format`), an XLSX workbook with ``--xlsx FILE``
(see :mod:`mitelacd.reports.workbook`). ``--names FILE`` gives IDs and
reasons their names, as the daemon's ``--names``. The database is only read:
a SQLite file that does not exist is an error, not a new database. A bad
command line (or names file) exits with status 64; a database that cannot be
read, or a workbook that cannot be written, exits with 1.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Sequence
from typing import IO

from sqlalchemy.exc import SQLAlchemyError

from mitelacd import __version__
from mitelacd.cli import CommandParser
from mitelacd.floor.names import NO_NAMES, Names, NamesError, load_names
from mitelacd.reports.format import report_csv, report_json
from mitelacd.reports.rows import REPORT_INTERVALS, ROW_KINDS, ReportInterval, RowKind
from mitelacd.reports.store import (
    HistoryError,
    HistoryURLError,
    error_detail,
    open_store,
    problem_kind,
    redact,
)
from mitelacd.reports.workbook import TooManyRows, XlsxUnavailable, report_xlsx, xlsx_available

#: The exit status of a database that cannot be read (or a workbook that cannot be written).
EXIT_UNREADABLE = 1


def parse_report_day(value: str, today: datetime.date | None = None) -> datetime.date:
    """``YYYY-MM-DD``, ``today`` or ``yesterday`` (local date)."""
    today = today or datetime.date.today()
    if value == "today":
        return today
    if value == "yesterday":
        return today - datetime.timedelta(days=1)
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a day: {value!r} (YYYY-MM-DD, today or yesterday)"
        ) from None


def parse_kinds(value: str) -> tuple[RowKind, ...]:
    """``agent``, or several kinds comma-separated (``agent,path``), each once."""
    kinds: list[RowKind] = []
    for part in value.split(","):
        kind = part.strip()
        if kind not in ROW_KINDS:
            raise argparse.ArgumentTypeError(
                f"invalid choice: {kind!r} (choose from {', '.join(ROW_KINDS)})"
            )
        if kind not in kinds:
            kinds.append(kind)
    return tuple(kinds)


def _arguments() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="mitelacd-report",
        description=(
            "Print the day's figures kept in a mitelacd history database, per agent, path"
            " or group and per 15 minutes, hour or day, as JSON (default), CSV or an XLSX"
            " workbook. In CSV and XLSX times are local (--utc: UTC), each duration has"
            " an h:mm:ss column beside its seconds, and with --names IDs and reasons have"
            " their names."
        ),
    )
    parser.add_argument(
        "--history",
        required=True,
        metavar="URL",
        help="the database: a SQLite file (path or sqlite:///path) or postgresql://user@host/db",
    )
    parser.add_argument(
        "--from",
        dest="first",
        required=True,
        type=parse_report_day,
        metavar="DATE",
        help="the first report day (YYYY-MM-DD, today, yesterday)",
    )
    parser.add_argument(
        "--to",
        dest="last",
        type=parse_report_day,
        default=None,
        metavar="DATE",
        help="the last report day, included (default: the first)",
    )
    parser.add_argument(
        "--by",
        type=parse_kinds,
        default=("agent",),
        metavar="{agent,path,group}",
        help="rows per (default agent); with --xlsx several, comma-separated"
        " (agent,path): a sheet each",
    )
    parser.add_argument(
        "--interval", choices=REPORT_INTERVALS, default="day", help="one row per (default day)"
    )
    parser.add_argument(
        "--source", default=None, help="only this daemon's rows (default: every source, combined)"
    )
    parser.add_argument(
        "--id",
        dest="ids",
        action="append",
        default=None,
        metavar="ID",
        help="only this agent, path or group (may be given more than once)",
    )
    parser.add_argument(
        "--names",
        metavar="FILE",
        default=None,
        help="the names file (as the daemon's --names): a name column beside each ID,"
        " team for agents, reason columns named by their text",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--csv", action="store_true", help="CSV rather than JSON")
    output.add_argument(
        "--xlsx",
        metavar="FILE",
        default=None,
        help="write an XLSX workbook to FILE rather than JSON to standard output"
        " (needs openpyxl: pip install mitelacd[xlsx])",
    )
    parser.add_argument(
        "--utc",
        action="store_true",
        help="with --csv or --xlsx: times in UTC rather than this machine's local time",
    )
    parser.add_argument(
        "--excel",
        action="store_true",
        help="with --csv: start with a byte-order mark, so that Excel reads names as UTF-8",
    )
    parser.add_argument("--version", action="version", version=f"mitelacd-report {__version__}")
    return parser


def main(argv: Sequence[str] | None = None, stdout: IO[str] | None = None) -> int:
    """The console script; returns the exit status."""
    out = stdout or sys.stdout
    parser = _arguments()
    args = parser.parse_args(argv)
    first: datetime.date = args.first
    last: datetime.date = args.last or first
    if last < first:
        parser.error(f"--to {last} is before --from {first}")
    kinds: tuple[RowKind, ...] = args.by
    interval: ReportInterval = args.interval
    if len(kinds) > 1 and args.xlsx is None:
        parser.error("--by with several kinds goes with --xlsx (a sheet each)")
    if args.excel and not args.csv:
        parser.error("--excel goes with --csv")
    if args.utc and not (args.csv or args.xlsx is not None):
        parser.error("--utc goes with --csv or --xlsx")
    names: Names = NO_NAMES
    if args.names is not None:
        try:
            names = load_names(args.names)
        except NamesError as e:
            parser.error(f"--names: {e}")
    if args.xlsx is not None and not xlsx_available():
        return _fail(str(XlsxUnavailable()))
    tz = datetime.timezone.utc if args.utc else None
    try:
        store = open_store(args.history, create=False)
    except HistoryURLError as e:
        parser.error(f"--history: {e}")
    except HistoryError as e:
        return _unreadable(args.history, e)
    try:
        store.check_schema()
        sheets = [
            (
                kind,
                store.report(
                    kind,
                    first.isoformat(),
                    last.isoformat(),
                    interval,
                    source=args.source,
                    ids=args.ids,
                ),
            )
            for kind in kinds
        ]
    except (HistoryError, SQLAlchemyError, OSError) as e:
        return _unreadable(args.history, e)
    finally:
        store.close()
    if args.xlsx is not None:
        try:
            report_xlsx(sheets, args.xlsx, names, tz)
        except (TooManyRows, XlsxUnavailable) as e:
            return _fail(str(e))
        except OSError as e:
            return _fail(f"cannot write {args.xlsx}: {e.strerror or e}")
        return 0
    ((by, rows),) = sheets
    if args.csv:
        text = report_csv(rows, by, names, tz, excel=args.excel)
        if stdout is None and hasattr(out, "buffer"):
            # UTF-8 whatever the locale: the byte-order mark says so.
            out.flush()
            out.buffer.write(text.encode("utf-8"))
        else:
            out.write(text)
    else:
        out.write(report_json(rows, first, last, by, interval, args.source, names) + "\n")
    out.flush()
    return 0


def _fail(message: str) -> int:
    sys.stderr.write(f"mitelacd-report: {message}\n")
    sys.stderr.flush()
    return EXIT_UNREADABLE


def _unreadable(url: str, error: BaseException) -> int:
    kind = problem_kind(error)
    detail = error_detail(error)
    words = kind if detail == kind or isinstance(error, HistoryError) else f"{kind} ({detail})"
    sys.stderr.write(f"mitelacd-report: cannot read the history database {redact(url)}: {words}\n")
    sys.stderr.flush()
    return EXIT_UNREADABLE


def run() -> None:
    """Entry point of the ``mitelacd-report`` console script."""
    raise SystemExit(main())


if __name__ == "__main__":
    run()
