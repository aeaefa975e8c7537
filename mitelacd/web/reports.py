"""``/api/v1/reports``: the day's figures live, and reports from the history.

* ``/api/v1/reports/today/agents``, ``/paths``, ``/groups``: the current
  report day's figures up to now (``?interval=current``: the current
  15-minute interval's), from :class:`~mitelacd.reports.live.FiguresService`.
* ``/api/v1/reports?from=DATE&to=DATE&by=agent|path|group&interval=15m|1h|day``:
  stored intervals combined, plus the interval still open, as JSON or as CSV
  (``Accept: text/csv`` or ``?format=csv``).
"""

from __future__ import annotations

import datetime
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request

from mitelacd.logs import Logger
from mitelacd.reports.live import FiguresService
from mitelacd.reports.rows import REPORT_INTERVALS, ROW_KINDS, ReportInterval, RowKind
from mitelacd.reports.writer import HistoryService
from mitelacd.web.resources import ApiError, json_error, not_found, render_json

log = Logger()

CSV_TYPE = b"text/csv; charset=utf-8"
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


def report_query(
    args: dict[str, str | None], today: datetime.date
) -> tuple[datetime.date, datetime.date, RowKind, ReportInterval]:
    """The days, grouping and interval a report asks for; :class:`ReportError` if wrong."""
    first = parse_day("from", args.get("from"), today)
    last = parse_day("to", args.get("to"), first if args.get("from") else today)
    if last < first:
        raise ReportError(f"to ({last}) is before from ({first})")
    by = args.get("by") or "agent"
    if by not in ROW_KINDS:
        raise ReportError(f"by must be one of {', '.join(ROW_KINDS)}, not {by!r}")
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
    return first, last, by, interval


def wants_csv(request: Request) -> bool:
    fmt = _arg(request, b"format")
    if fmt is not None:
        if fmt not in ("csv", "json"):
            raise ReportError(f"format must be csv or json, not {fmt!r}")
        return fmt == "csv"
    accept = (request.getHeader(b"accept") or b"").lower()
    return b"text/csv" in accept and b"application/json" not in accept


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
            args = {k: _arg(request, k.encode()) for k in ("from", "to", "by", "interval")}
            first, last, by, interval = report_query(args, today)
            csv = wants_csv(request)
        except ReportError as e:
            return json_error(request, http.BAD_REQUEST, "bad_request", str(e))
        d = Deferred.fromCoroutine(self._figures.report(first, last, by, interval))
        d.addCallback(self._answer, request, first, last, by, interval, csv)
        d.addErrback(self._failed, request)
        return NOT_DONE_YET

    def _answer(
        self,
        rows: list[dict[str, Any]],
        request: Request,
        first: datetime.date,
        last: datetime.date,
        by: RowKind,
        interval: ReportInterval,
        csv: bool,
    ) -> None:
        from mitelacd.reports.format import report_csv, report_document

        if request.finished or request._disconnected:
            return
        if csv:
            body = report_csv(rows, by).encode("utf-8")
            request.setHeader(b"content-type", CSV_TYPE)
            request.setHeader(
                b"content-disposition",
                b'attachment; filename="mitelacd-%s-%s-%s.csv"'
                % (by.encode(), first.isoformat().encode(), last.isoformat().encode()),
            )
            request.setHeader(b"cache-control", b"no-cache")
        else:
            source = self._history.source if self._history is not None else None
            body = render_json(request, report_document(rows, first, last, by, interval, source))
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
        request.setHeader(b"content-length", b"%d" % len(body))
        request.write(body)
        request.finish()
