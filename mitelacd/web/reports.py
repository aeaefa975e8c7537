"""``/api/v1/reports``: the day's figures live, and reports from the history.

* ``/api/v1/reports/today/agents``, ``/paths``, ``/groups``: the current
  report day's figures up to now (``?interval=current``: the current
  15-minute interval's), from :class:`~mitelacd.reports.live.FiguresService`;
  paths with the SMDR figures the daemon holds (docs/reports.md, "Calls per
  path from SMDR").
* ``/api/v1/reports?from=DATE&to=DATE&by=agent|path|group&interval=15m|1h|day``:
  stored intervals combined, plus the interval still open (and, by path,
  the SMDR intervals the daemon holds in place of those stored), as JSON, as CSV
  (``Accept: text/csv`` or ``?format=csv``) or as an XLSX workbook
  (``?format=xlsx``, ``by`` then may name several kinds: a sheet each).
  Names come from the daemon's names file as loaded now; CSV and XLSX
  times are in the daemon's local zone (the one its days are cut in), or
  UTC with ``?tz=UTC``; ``?excel=1`` starts CSV with a byte-order mark.
"""

from __future__ import annotations

import datetime
from typing import Literal

import attrs
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request

from mitelacd.logs import Logger
from mitelacd.reports.live import FiguresService
from mitelacd.reports.rows import REPORT_INTERVALS, ROW_KINDS, ReportInterval, RowKind
from mitelacd.reports.workbook import (
    XLSX_TYPE,
    Sheet,
    TooManyRows,
    XlsxUnavailable,
    check_size,
    xlsx_available,
)
from mitelacd.reports.writer import HistoryService, HistoryUnavailable
from mitelacd.web.resources import ApiError, json_error, not_found, render_json

log = Logger()

CSV_TYPE = b"text/csv; charset=utf-8"
#: What a report comes as.
ReportFormat = Literal["json", "csv", "xlsx"]
FORMATS: tuple[ReportFormat, ...] = ("json", "csv", "xlsx")
#: The longest span one report may cover, by its interval: a report by 15
#: minutes or by hour has a row per id and interval, and is read whole.
MAX_REPORT_DAYS: dict[str, int] = {"15m": 31, "1h": 31, "day": 400}

_TODAY: dict[bytes, RowKind] = {b"agents": "agent", b"paths": "path", b"groups": "group"}


class ReportError(ValueError):
    """A report's parameters are wrong; the message says which and how."""


class Today(Resource):
    """``/api/v1/reports/today/<kind>``."""

    def __init__(self, figures: FiguresService) -> None:
        super().__init__()
        self._figures = figures

    def getChild(self, path: bytes, request: Request) -> IResource:
        kind = _TODAY.get(path)
        if kind is None or request.postpath:
            return not_found(request)
        return TodayOf(self._figures, kind)

    def render(self, request: Request) -> bytes:
        return not_found(request).render(request)


class TodayOf(Resource):
    isLeaf = True

    def __init__(self, figures: FiguresService, kind: RowKind) -> None:
        super().__init__()
        self._figures = figures
        self._kind = kind

    def render_GET(self, request: Request) -> bytes:
        interval = _arg(request, b"interval")
        if interval not in (None, "current", "day"):
            return json_error(
                request,
                http.BAD_REQUEST,
                "bad_request",
                f"interval must be 'current' or 'day', not {interval!r}",
            )
        return render_json(request, self._figures.today(self._kind, interval == "current"))


def _arg(request: Request, name: bytes) -> str | None:
    values: list[bytes] | None = (request.args or {}).get(name)
    if not values:
        return None
    return values[0].decode("utf-8", "replace")


def parse_day(name: str, text: str | None, default: datetime.date) -> datetime.date:
    if text is None or text == "":
        return default
    if text == "today":
        return default
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise ReportError(f"{name} must be a date as YYYY-MM-DD, not {text!r}") from None


def report_kinds(text: str | None) -> tuple[RowKind, ...]:
    """``by``: one kind of row, or several comma-separated (``agent,path``), each once."""
    kinds: list[RowKind] = []
    for by in (text or "agent").split(","):
        if by not in ROW_KINDS:
            raise ReportError(f"by must be one of {', '.join(ROW_KINDS)}, not {by!r}")
        if by not in kinds:
            kinds.append(by)
    return tuple(kinds)


def report_query(
    args: dict[str, str | None], today: datetime.date
) -> tuple[datetime.date, datetime.date, RowKind, ReportInterval]:
    """The days, grouping and interval a report asks for; :class:`ReportError` if wrong."""
    first, last, kinds, interval = report_span(args, today)
    if len(kinds) > 1:
        raise ReportError("by may name several kinds only with format=xlsx (a sheet each)")
    return first, last, kinds[0], interval


def report_span(
    args: dict[str, str | None], today: datetime.date
) -> tuple[datetime.date, datetime.date, tuple[RowKind, ...], ReportInterval]:
    """:func:`report_query`, with every kind of row ``by`` names."""
    first = parse_day("from", args.get("from"), today)
    last = parse_day("to", args.get("to"), first if args.get("from") else today)
    if last < first:
        raise ReportError(f"to ({last}) is before from ({first})")
    kinds = report_kinds(args.get("by"))
    interval = args.get("interval") or "day"
    if interval not in REPORT_INTERVALS:
        raise ReportError(
            f"interval must be one of {', '.join(REPORT_INTERVALS)}, not {interval!r}"
        )
    most = MAX_REPORT_DAYS[interval]
    if (last - first).days + 1 > most:
        raise ReportError(
            f"a report by {interval} covers at most {most} days"
            " (mitelacd-report reads longer spans)"
        )
    return first, last, kinds, interval


def report_format(request: Request) -> ReportFormat:
    """``?format=``, else what ``Accept`` prefers: CSV or XLSX asked without JSON."""
    fmt = _arg(request, b"format")
    if fmt is not None:
        if fmt not in FORMATS:
            raise ReportError(f"format must be json, csv or xlsx, not {fmt!r}")
        return fmt
    accept = (request.getHeader(b"accept") or b"").lower()
    if b"application/json" in accept:
        return "json"
    if b"text/csv" in accept:
        return "csv"
    if XLSX_TYPE.encode() in accept:
        return "xlsx"
    return "json"


def wants_utc(request: Request) -> bool:
    """``?tz=UTC`` (True) or ``?tz=local``, the default (False)."""
    tz = _arg(request, b"tz")
    if tz is None or tz.lower() in ("", "local"):
        return False
    if tz.upper() == "UTC":
        return True
    raise ReportError(f"tz must be local or UTC, not {tz!r}")


def flag(request: Request, name: str) -> bool:
    """A yes-or-no parameter: ``1``, ``true``, ``yes`` (or no value) or ``0``, ``false``, ``no``."""
    value = _arg(request, name.encode())
    if value is None:
        return False
    if value.lower() in ("", "1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise ReportError(f"{name} must be 1 or 0, not {value!r}")


@attrs.frozen
class Asked:
    """What a report request asks for, checked."""

    first: datetime.date
    last: datetime.date
    kinds: tuple[RowKind, ...]
    interval: ReportInterval
    format: ReportFormat
    utc: bool = False
    excel: bool = False

    def filename(self, extension: str) -> bytes:
        kinds = "-".join(self.kinds)
        return f"mitelacd-{kinds}-{self.first}-{self.last}.{extension}".encode()


def asked_for(request: Request, today: datetime.date) -> Asked:
    """What ``request`` asks for; :class:`ReportError` saying which parameter is wrong."""
    args = {k: _arg(request, k.encode()) for k in ("from", "to", "by", "interval")}
    first, last, kinds, interval = report_span(args, today)
    fmt = report_format(request)
    if len(kinds) > 1 and fmt != "xlsx":
        raise ReportError("by may name several kinds only with format=xlsx (a sheet each)")
    return Asked(first, last, kinds, interval, fmt, wants_utc(request), flag(request, "excel"))


class Reports(Resource):
    """``/api/v1/reports``: a report over days, and ``today/`` below it."""

    def __init__(self, figures: FiguresService, history: HistoryService | None) -> None:
        super().__init__()
        self._figures = figures
        self._history = history
        self.putChild(b"today", Today(figures))

    def getChild(self, path: bytes, request: Request) -> IResource:
        if path == b"":
            return self
        return not_found(request)

    def render_GET(self, request: Request) -> bytes | int:
        if self._history is None:
            return ApiError(
                http.SERVICE_UNAVAILABLE,
                "no_history",
                "this daemon keeps no history (--history none); see /api/v1/reports/today/",
            ).render(request)
        today = self._figures.figures.day or datetime.date.today()
        try:
            asked = asked_for(request, today)
        except ReportError as e:
            return json_error(request, http.BAD_REQUEST, "bad_request", str(e))
        if asked.format == "xlsx" and not xlsx_available():
            return json_error(
                request, http.NOT_IMPLEMENTED, "xlsx_unavailable", str(XlsxUnavailable())
            )
        d = Deferred.fromCoroutine(self._read(asked))
        d.addCallback(self._answer, request, asked)
        d.addErrback(self._failed, request)
        return NOT_DONE_YET

    async def _read(self, asked: Asked) -> list[Sheet]:
        sheets: list[Sheet] = []
        for kind in asked.kinds:
            rows = await self._figures.report(asked.first, asked.last, kind, asked.interval)
            sheets.append((kind, rows))
        return sheets

    def _zone(self, asked: Asked) -> datetime.tzinfo | None:
        """The zone of the times: UTC, or the one the daemon's days are cut in (None: local)."""
        return datetime.timezone.utc if asked.utc else self._figures.figures.days.tz

    def _answer(self, sheets: list[Sheet], request: Request, asked: Asked) -> None:
        from mitelacd.reports.format import report_csv, report_document

        if request.finished or request._disconnected:
            return
        # The names as loaded now: a reload (SIGHUP, a change on disk) shows at once.
        names = self._figures.floor.names
        if asked.format == "xlsx":
            self._workbook(sheets, request, asked)
            return
        ((by, rows),) = sheets
        if asked.format == "csv":
            text = report_csv(rows, by, names, self._zone(asked), excel=asked.excel)
            self._send(request, text.encode("utf-8"), CSV_TYPE, asked.filename("csv"))
            return
        source = self._history.source if self._history is not None else None
        doc = report_document(rows, asked.first, asked.last, by, asked.interval, source, names)
        self._finish(request, render_json(request, doc))

    def _workbook(self, sheets: list[Sheet], request: Request, asked: Asked) -> None:
        """Made in one of the history's reading threads: a big one takes seconds."""
        from mitelacd.reports.workbook import report_xlsx_bytes

        try:
            check_size(sheets)
        except TooManyRows as e:
            self._finish(request, json_error(request, http.BAD_REQUEST, "bad_request", str(e)))
            return
        assert self._history is not None
        names, tz = self._figures.floor.names, self._zone(asked)
        made = self._history.query(lambda _store: report_xlsx_bytes(sheets, names, tz))
        made.addCallback(
            lambda body: self._send(request, body, XLSX_TYPE.encode(), asked.filename("xlsx"))
        )
        made.addErrback(self._not_made, request)

    def _send(self, request: Request, body: bytes, kind: bytes, filename: bytes) -> None:
        if request.finished or request._disconnected:
            return
        request.setHeader(b"content-type", kind)
        request.setHeader(b"content-disposition", b'attachment; filename="%s"' % filename)
        request.setHeader(b"cache-control", b"no-cache")
        self._finish(request, body)

    def _finish(self, request: Request, body: bytes) -> None:
        request.setHeader(b"content-length", b"%d" % len(body))
        request.write(body)
        request.finish()

    def _failed(self, failure: Failure, request: Request) -> None:
        if request.finished or request._disconnected:
            return
        log.warn("a report could not be read: {why}", why=failure.getErrorMessage())
        body = json_error(
            request,
            http.SERVICE_UNAVAILABLE,
            "history_unavailable",
            f"the history could not be read: {failure.getErrorMessage()}",
        )
        self._finish(request, body)

    def _not_made(self, failure: Failure, request: Request) -> None:
        if failure.check(HistoryUnavailable):
            self._failed(failure, request)
            return
        log.failure("a report's workbook could not be made", failure=failure)
        if request.finished or request._disconnected:
            return
        body = json_error(
            request,
            http.INTERNAL_SERVER_ERROR,
            "internal_error",
            "the workbook could not be made; see the log",
        )
        self._finish(request, body)
