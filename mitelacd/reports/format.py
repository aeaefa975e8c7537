"""Report rows as ``/api/v1/reports`` and ``mitelacd-report`` give them: JSON and CSV.

The rows are those of :meth:`mitelacd.reports.store.HistoryStore.report`: ``id``,
``day``, ``start``, every figure by name, what follows from them, and for
agents the not-ready seconds by reason as lists.

JSON keeps the lists. CSV, for spreadsheets, has one column per figure and
flattens the lists into a column per reason code seen in the report:
``dnd_reason_<code>_seconds`` and ``make_busy_reason_<code>_seconds``
(``..._reason_none_seconds`` for time without a code), empty where a row
has none. A value of ``null`` in JSON is an empty cell.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
from collections.abc import Sequence
from typing import Any

from mitelacd.reports.rows import FIGURES, ReportInterval, RowKind

#: The list's key in a JSON report, by what the rows are about.
PLURAL: dict[RowKind, str] = {"agent": "agents", "path": "paths", "group": "groups"}

#: What is shown beside the figures, by what the rows are about (in CSV column order).
DERIVED: dict[RowKind, tuple[str, ...]] = {
    "agent": (
        "acd_talk_average_seconds",
        "not_ready_seconds",
        "average_handle_seconds",
        "occupancy_percent",
    ),
    "path": ("mean_waiting", "average_handle_seconds"),
    "group": ("mean_waiting",),
}

_REASON_LISTS = (("dnd_by_reason", "dnd"), ("make_busy_by_reason", "make_busy"))


def _day(value: datetime.date | str) -> str:
    return value if isinstance(value, str) else value.isoformat()


def report_document(
    rows: Sequence[dict[str, Any]],
    first: datetime.date | str,
    last: datetime.date | str,
    by: RowKind,
    interval: ReportInterval,
    source: str | None = None,
) -> dict[str, Any]:
    """The JSON document of a report: what was asked, then the rows under ``agents``/``paths``/``groups``."""
    return {
        "from": _day(first),
        "to": _day(last),
        "by": by,
        "interval": interval,
        "source": source,
        "figures": [f.name for f in FIGURES[by]],
        PLURAL[by]: list(rows),
    }


def report_json(
    rows: Sequence[dict[str, Any]],
    first: datetime.date | str,
    last: datetime.date | str,
    by: RowKind,
    interval: ReportInterval,
    source: str | None = None,
) -> str:
    """:func:`report_document` as JSON text (one line)."""
    return json.dumps(
        report_document(rows, first, last, by, interval, source),
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def _reason_code(reason: int | None) -> str:
    return "none" if reason is None else str(reason)


def _reason_order(reason: int | None) -> tuple[bool, int]:
    return (reason is None, reason or 0)


def reason_columns(rows: Sequence[dict[str, Any]]) -> list[tuple[str, str, int | None]]:
    """(column, list key, reason) for each reason code in the rows, DND first, codes in order."""
    columns: list[tuple[str, str, int | None]] = []
    for key, kind in _REASON_LISTS:
        seen: set[int | None] = set()
        for row in rows:
            for entry in row.get(key) or ():
                seen.add(entry["reason"])
        for reason in sorted(seen, key=_reason_order):
            columns.append((f"{kind}_reason_{_reason_code(reason)}_seconds", key, reason))
    return columns


def report_csv(rows: Sequence[dict[str, Any]], by: RowKind) -> str:
    """The rows as CSV (RFC 4180, CRLF line ends), with a header line of column names.

    Columns: ``id``, ``day``, ``start`` (Unix time), each figure, what is
    shown beside them, then the reason columns (agents).
    """
    figures = [f.name for f in FIGURES[by]]
    plain = ["id", "day", "start", *figures, *DERIVED[by]]
    reasons = reason_columns(rows) if by == "agent" else []
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(plain + [name for name, _, _ in reasons])
    for row in rows:
        line: list[Any] = [_cell(row.get(name)) for name in plain]
        if reasons:
            by_reason = {
                (key, entry["reason"]): entry["seconds"]
                for key, _ in _REASON_LISTS
                for entry in row.get(key) or ()
            }
            line.extend(_cell(by_reason.get((key, reason))) for _, key, reason in reasons)
        writer.writerow(line)
    return out.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
