"""``mitelacd-report``: a report from the history database, on standard output.

    mitelacd-report --history /var/lib/mitelacd/history.db --from 2026-11-01 --to 2026-11-30
    mitelacd-report --history postgresql://report@db/mitelacd --from today --by path --interval 1h --csv

JSON by default (the document of ``/api/v1/reports``), CSV with ``--csv``
(see :mod:`mitelacd.reports.format`). The database is only read: a SQLite
file that does not exist is an error, not a new database. A bad command line
exits with status 64; a database that cannot be read exits with 1.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Sequence
from typing import IO, NoReturn

from sqlalchemy.exc import SQLAlchemyError

from mitelacd import __version__
from mitelacd.cli import EXIT_USAGE
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

#: The exit status of a database that cannot be read.
EXIT_UNREADABLE = 1


class _Parser(argparse.ArgumentParser):
    """Usage errors exit with 64, as every mitelacd command's do."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: {message}\n")


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


def _arguments() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mitelacd-report",
        description=(
            "Print the day's figures kept in a mitelacd history database, per agent, path"
            " or group and per 15 minutes, hour or day, as JSON (default) or CSV."
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
    parser.add_argument("--by", choices=ROW_KINDS, default="agent", help="rows per (default agent)")
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
    parser.add_argument("--csv", action="store_true", help="CSV rather than JSON")
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
    by: RowKind = args.by
    interval: ReportInterval = args.interval
    try:
        store = open_store(args.history, create=False)
    except HistoryURLError as e:
        parser.error(f"--history: {e}")
    except HistoryError as e:
        return _unreadable(args.history, e)
    try:
        store.check_schema()
        rows = store.report(
            by, first.isoformat(), last.isoformat(), interval, source=args.source, ids=args.ids
        )
    except (HistoryError, SQLAlchemyError, OSError) as e:
        return _unreadable(args.history, e)
    finally:
        store.close()
    if args.csv:
        out.write(report_csv(rows, by))
    else:
        out.write(report_json(rows, first, last, by, interval, args.source) + "\n")
    out.flush()
    return 0


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
