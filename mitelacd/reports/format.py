"""Report rows as ``/api/v1/reports`` and ``mitelacd-report`` give them: JSON, CSV and a table.

The rows are those of :meth:`mitelacd.reports.store.HistoryStore.report`: ``id``,
``day``, ``start``, every figure by name, what follows from them, and for
agents the not-ready seconds by reason as lists.

JSON keeps the lists, and gives each row its ``name`` (and ``team`` for
agents) from the names file. CSV and XLSX (:mod:`mitelacd.reports.workbook`)
are for spreadsheets and share one table, :func:`report_table` (docs/reports.md,
"Spreadsheets"):

* ``id``, ``name`` (``team`` for agents), ``day`` and ``start``, the bucket's
  start as a local time;
* one column per figure and per value worked out from them, each duration
  (``…_seconds``, but ``waiting_seconds``, which is calls × seconds) followed
  by its ``…_hms`` twin;
* for paths, then, the SMDR fields (:data:`~mitelacd.reports.rows.SMDR_FIELDS`),
  ``open`` and ``provisional`` as ``true``/``false`` (``provisional_figures``
  is in JSON only);
* for agents, the reason lists flattened into a column per reason seen in
  the report, named by the reason's text in the names file
  (``make_busy_lunch_seconds``) or else by its code
  (``make_busy_reason_5_seconds``; ``…_reason_none_seconds`` for time
  without a code), see :func:`reason_columns`.

A value of ``null`` in JSON is an empty cell. Text that a spreadsheet would
run as a formula is written inert.
"""

from __future__ import annotations

import collections
import csv
import datetime
import io
import json
import math
import re
import unicodedata
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Literal

import attrs

from mitelacd.floor.names import NO_NAMES, Names
from mitelacd.reports.rows import FIGURES, SMDR_FIELDS, ReportInterval, RowKind

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

#: Columns named ``…_seconds`` that are not a duration: calls waiting × seconds.
NOT_DURATIONS = frozenset({"waiting_seconds"})

#: The columns of a yes or no.
FLAGS = frozenset({"open", "provisional"})

#: The first character of a text a spreadsheet would take for a formula (OWASP's list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

#: UTF-8's byte-order mark: with it Excel reads a CSV file as UTF-8.
BOM = "\ufeff"

_REASON_LISTS: tuple[tuple[str, Literal["dnd", "make_busy"]], ...] = (
    ("dnd_by_reason", "dnd"),
    ("make_busy_by_reason", "make_busy"),
)


def _day(value: datetime.date | str) -> str:
    return value if isinstance(value, str) else value.isoformat()


# --- JSON --------------------------------------------------------------------------------------


def named_rows(rows: Sequence[dict[str, Any]], by: RowKind, names: Names) -> list[dict[str, Any]]:
    """The rows with ``name`` (and ``team`` for agents) after ``id``, from ``names``."""
    out = []
    for row in rows:
        name, team = row_name(by, row["id"], names)
        named: dict[str, Any] = {"id": row["id"], "name": name}
        if by == "agent":
            named["team"] = team
        named.update(row)
        out.append(named)
    return out


def row_name(by: RowKind, ident: str, names: Names) -> tuple[str | None, str | None]:
    """The name (and the team, for an agent) the names file gives ``ident``."""
    if by == "agent":
        entry = names.agent(ident)
        return (entry.name, entry.team) if entry is not None else (None, None)
    table = names.paths if by == "path" else names.groups
    return table.get(ident), None


def report_document(
    rows: Sequence[dict[str, Any]],
    first: datetime.date | str,
    last: datetime.date | str,
    by: RowKind,
    interval: ReportInterval,
    source: str | None = None,
    names: Names | None = None,
) -> dict[str, Any]:
    """The JSON document of a report: what was asked, then the rows under ``agents``/``paths``/``groups``.

    With ``names``, each row has its ``name`` (and ``team``) after ``id``.
    """
    return {
        "from": _day(first),
        "to": _day(last),
        "by": by,
        "interval": interval,
        "source": source,
        "figures": [f.name for f in FIGURES[by]],
        PLURAL[by]: list(rows) if names is None else named_rows(rows, by, names),
    }


def report_json(
    rows: Sequence[dict[str, Any]],
    first: datetime.date | str,
    last: datetime.date | str,
    by: RowKind,
    interval: ReportInterval,
    source: str | None = None,
    names: Names | None = None,
) -> str:
    """:func:`report_document` as JSON text (one line)."""
    return json.dumps(
        report_document(rows, first, last, by, interval, source, names),
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


# --- the table of CSV and XLSX -----------------------------------------------------------------

#: What a column holds, and so how CSV and XLSX write it: ``text`` (IDs, names),
#: ``day`` (``YYYY-MM-DD``), ``time`` (Unix time), ``number``, ``hms`` (seconds
#: shown as a duration), ``flag`` (yes or no: ``true``/``false`` in CSV).
ColumnKind = Literal["text", "day", "time", "number", "hms", "flag"]


@attrs.frozen
class Column:
    name: str
    kind: ColumnKind
    #: The column's raw value in a row (None: an empty cell).
    value: Callable[[Mapping[str, Any]], Any]


def is_duration(name: str) -> bool:
    """Whether a column holds a duration, and so is followed by an ``_hms`` twin."""
    return name.endswith("_seconds") and name not in NOT_DURATIONS


def hms_name(name: str) -> str:
    """``make_busy_lunch_seconds`` → ``make_busy_lunch_hms``."""
    return name.removesuffix("_seconds") + "_hms"


def slug(text: str) -> str:
    """A column name's part from a text: ``Pause café`` → ``pause_cafe``.

    Lower case, letters folded to ASCII (accents dropped), every run of
    anything else one ``_``, none at either end; empty when nothing is left.
    """
    folded = unicodedata.normalize("NFKD", text.casefold())
    ascii_text = folded.encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "_", ascii_text).strip("_")


def _reason_code(reason: int | None) -> str:
    return "none" if reason is None else str(reason)


def _reason_order(reason: int | None) -> tuple[bool, int]:
    return (reason is None, reason or 0)


_CODE_PART = re.compile(r"reason_([0-9]+|none)")


def _reason_names(
    kind: str, texts: Mapping[int, str], codes: Collection[int | None], taken: Collection[str]
) -> dict[int | None, str]:
    """The column of each reason code of one kind: by its text where that names it alone.

    A code without a text, whose text leaves no name (no letter or digit) or
    reads like a code's column (``Reason 5``), whose name another of the
    kind's texts (in the names file) or a code also makes, or that is another
    column's name, is named by its code.
    """
    fallback = {code: f"{kind}_reason_{_reason_code(code)}_seconds" for code in (*texts, *codes)}
    chosen = dict(fallback)
    for code, text in texts.items():
        part = slug(text)
        # A text that reads like a code's column (``Reason 5``) would pass for that code.
        if part and not _CODE_PART.fullmatch(part):
            chosen[code] = f"{kind}_{part}_seconds"
    while True:
        counts = collections.Counter(chosen.values())
        clashing = [
            code
            for code, name in chosen.items()
            if name != fallback[code] and (counts[name] > 1 or name in taken)
        ]
        if not clashing:
            return {code: chosen[code] for code in codes}
        for clash in clashing:
            chosen[clash] = fallback[clash]


def reason_columns(
    rows: Sequence[dict[str, Any]], names: Names = NO_NAMES, taken: Collection[str] = ()
) -> list[tuple[str, str, int | None]]:
    """(column, list key, reason) for each reason code in the rows, DND first, codes in order.

    Columns are named by the reason's text in ``names`` where they can be
    (:func:`_reason_names`), else by the code; ``taken`` are the report's
    other columns.
    """
    columns: list[tuple[str, str, int | None]] = []
    for key, kind in _REASON_LISTS:
        seen: set[int | None] = set()
        for row in rows:
            for entry in row.get(key) or ():
                seen.add(entry["reason"])
        codes = sorted(seen, key=_reason_order)
        texts = names.dnd_reasons if kind == "dnd" else names.make_busy_reasons
        named = _reason_names(kind, texts, codes, taken)
        columns.extend((named[reason], key, reason) for reason in codes)
    return columns


def _field(name: str) -> Callable[[Mapping[str, Any]], Any]:
    return lambda row: row.get(name)


def _reason_value(key: str, reason: int | None) -> Callable[[Mapping[str, Any]], Any]:
    def value(row: Mapping[str, Any]) -> Any:
        for entry in row.get(key) or ():
            if entry["reason"] == reason:
                return entry["seconds"]
        return None

    return value


def _with_hms(name: str, value: Callable[[Mapping[str, Any]], Any]) -> list[Column]:
    column = Column(name, "number", value)
    return [column, Column(hms_name(name), "hms", value)] if is_duration(name) else [column]


def report_table(
    rows: Sequence[dict[str, Any]], by: RowKind, names: Names = NO_NAMES
) -> list[Column]:
    """The columns of a report as a table, in order (the module's docstring says which)."""
    columns = [Column("id", "text", _field("id"))]
    columns.append(Column("name", "text", lambda row: row_name(by, row["id"], names)[0]))
    if by == "agent":
        columns.append(Column("team", "text", lambda row: row_name(by, row["id"], names)[1]))
    columns += [Column("day", "day", _field("day")), Column("start", "time", _field("start"))]
    for name in (*(f.name for f in FIGURES[by]), *DERIVED[by]):
        columns += _with_hms(name, _field(name))
    if by == "path":
        for name in SMDR_FIELDS:
            if name in FLAGS:
                columns.append(Column(name, "flag", _field(name)))
            else:
                columns += _with_hms(name, _field(name))
    if by == "agent":
        taken = {c.name for c in columns}
        for name, key, reason in reason_columns(rows, names, taken):
            columns += _with_hms(name, _reason_value(key, reason))
    return columns


def local_time(when: float, tz: datetime.tzinfo | None = None) -> datetime.datetime:
    """Unix time ``when`` in ``tz`` (None: this machine's time zone), with its offset."""
    if tz is None:
        return datetime.datetime.fromtimestamp(float(when)).astimezone()
    return datetime.datetime.fromtimestamp(float(when), tz)


def hms(seconds: float) -> str:
    """Seconds as ``h:mm:ss``, to the nearest second; hours go past 24 (``27:03:09``)."""
    sign = "-" if seconds < 0 else ""
    total = math.floor(abs(seconds) + 0.5)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours}:{minutes:02d}:{secs:02d}"


def looks_like_formula(text: str) -> bool:
    """Whether a spreadsheet would take ``text`` for a formula (OWASP, "CSV injection")."""
    return text.startswith(FORMULA_STARTS)


def inert(text: str) -> str:
    """``text`` as a CSV cell no spreadsheet runs: a formula-like text gets a leading ``'``."""
    return "'" + text if looks_like_formula(text) else text


def _csv_cell(column: Column, value: Any, tz: datetime.tzinfo | None) -> Any:
    if value is None:
        return ""
    if column.kind == "text":
        return inert(str(value))
    if column.kind == "time":
        return local_time(value, tz).isoformat()
    if column.kind == "hms":
        return hms(value)
    if column.kind == "flag":
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def report_csv(
    rows: Sequence[dict[str, Any]],
    by: RowKind,
    names: Names = NO_NAMES,
    tz: datetime.tzinfo | None = None,
    excel: bool = False,
) -> str:
    """The rows as CSV (RFC 4180, CRLF line ends), with a header line of column names.

    The columns of :func:`report_table`; ``start`` as ISO-8601 in ``tz``
    (None: this machine's time zone) with its offset. ``excel`` starts the
    text with a byte-order mark, so that Excel reads it as UTF-8.
    """
    columns = report_table(rows, by, names)
    out = io.StringIO()
    if excel:
        out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.name for c in columns])
    for row in rows:
        writer.writerow([_csv_cell(c, c.value(row), tz) for c in columns])
    return out.getvalue()
