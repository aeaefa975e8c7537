"""Reports as XLSX workbooks: ``/api/v1/reports?format=xlsx`` and ``mitelacd-report --xlsx``.

One sheet per kind of row asked for (``agents``, ``paths``, ``groups``), with
the columns of CSV (:func:`mitelacd.reports.format.report_table`) and the
header in bold on the first row. The panes are frozen below the header and
right of ``name``, so the IDs and names stay in view. Cells are typed:

* ``id``, ``name``, ``team``: text, always (a name that starts with ``=`` is
  text, never a formula, and is marked to stay text when edited);
* ``day``: a date; ``start``: a date and time in the zone asked (local or
  UTC), without a zone, as spreadsheets keep them, followed by
  ``utc_offset`` (``+01:00``), which tells the hours of a change of summer
  time apart;
* figures: numbers; each ``…_hms`` column a time cell (the seconds / 86400,
  shown ``[h]:mm:ss``), so that sums and averages of it are durations;
* ``open`` and ``provisional`` (paths): TRUE or FALSE.

openpyxl writes the file; it is the ``xlsx`` extra (``pip install
mitelacd[xlsx]``), imported only when a workbook is made.
"""

from __future__ import annotations

import datetime
import io
from collections.abc import Sequence
from typing import IO, Any

from mitelacd.floor.names import NO_NAMES, Names
from mitelacd.reports.format import PLURAL, Column, local_time, looks_like_formula, report_table
from mitelacd.reports.rows import RowKind

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: What installs openpyxl with mitelacd.
INSTALL = "pip install mitelacd[xlsx]"
#: The rows of figures one sheet holds: a spreadsheet's 1,048,576 rows less the header.
MAX_SHEET_ROWS = 1_048_575

TIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
DAY_FORMAT = "yyyy-mm-dd"
HMS_FORMAT = "[h]:mm:ss"
SECONDS_PER_DAY = 86400

#: Column widths, in characters.
_WIDEST = 40
_WIDTHS = {"day": 12, "time": 20}

#: One sheet: the kind of its rows, and the rows.
Sheet = tuple[RowKind, Sequence[dict[str, Any]]]


class XlsxUnavailable(RuntimeError):
    """openpyxl, which writes XLSX files, is not installed."""

    def __init__(self) -> None:
        super().__init__(f"XLSX needs openpyxl, which is not installed: {INSTALL}")


class TooManyRows(ValueError):
    """A sheet would have more rows than a spreadsheet holds."""


def xlsx_available() -> bool:
    """Whether openpyxl can be imported."""
    try:
        import openpyxl  # noqa: F401
    except ImportError:
        return False
    return True


def check_size(sheets: Sequence[Sheet]) -> None:
    """:class:`TooManyRows` when a sheet would not fit in a spreadsheet."""
    for kind, rows in sheets:
        if len(rows) > MAX_SHEET_ROWS:
            raise TooManyRows(
                f"the report has {len(rows)} {kind} rows, more than a sheet holds"
                f" ({MAX_SHEET_ROWS}): ask for fewer days or a longer interval"
            )


def utc_offset(moment: datetime.datetime) -> str:
    """``+01:00``: how far ``moment``'s zone is ahead of UTC."""
    offset = moment.utcoffset() or datetime.timedelta(0)
    minutes = round(offset.total_seconds() / 60)
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


def report_xlsx(
    sheets: Sequence[Sheet],
    target: str | IO[bytes],
    names: Names = NO_NAMES,
    tz: datetime.tzinfo | None = None,
) -> None:
    """Write the reports to ``target`` (a path or a binary file) as one workbook.

    ``tz`` is the zone of the times (None: this machine's). Raises
    :class:`XlsxUnavailable` without openpyxl, :class:`TooManyRows` when a
    sheet would not fit.
    """
    try:
        from openpyxl import Workbook
    except ImportError:
        raise XlsxUnavailable() from None
    check_size(sheets)
    if isinstance(target, str):
        # Opened first: a file that cannot be written fails before any work.
        with open(target, "wb") as out:
            report_xlsx(sheets, out, names, tz)
        return
    book = Workbook(write_only=True)
    for kind, rows in sheets:
        _sheet(book, kind, rows, names, tz)
    book.save(target)


def report_xlsx_bytes(
    sheets: Sequence[Sheet], names: Names = NO_NAMES, tz: datetime.tzinfo | None = None
) -> bytes:
    """:func:`report_xlsx` into memory."""
    out = io.BytesIO()
    report_xlsx(sheets, out, names, tz)
    return out.getvalue()


def _sheet(
    book: Any,
    kind: RowKind,
    rows: Sequence[dict[str, Any]],
    names: Names,
    tz: datetime.tzinfo | None,
) -> None:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    sheet = book.create_sheet(PLURAL[kind])
    columns = report_table(rows, kind, names)
    header: list[str] = []
    for column in columns:
        header.append(column.name)
        if column.kind == "time":
            header.append("utc_offset")

    def text(value: Any) -> Any:
        clean = ILLEGAL_CHARACTERS_RE.sub("", str(value))
        if not looks_like_formula(clean) and not clean.startswith("#"):
            return clean  # openpyxl takes any other text for text
        cell = WriteOnlyCell(sheet, clean)
        cell.data_type = "s"  # never a formula (=) or an error value (#N/A)
        cell.quotePrefix = True
        return cell

    def formatted(value: Any, number_format: str) -> Any:
        cell = WriteOnlyCell(sheet, value)
        cell.number_format = number_format
        return cell

    def cells(column: Column, value: Any) -> list[Any]:
        if value is None:
            return [None, None] if column.kind == "time" else [None]
        if column.kind == "text":
            return [text(value)]
        if column.kind == "day":
            day = value if isinstance(value, datetime.date) else datetime.date.fromisoformat(value)
            return [formatted(day, DAY_FORMAT)]
        if column.kind == "time":
            moment = local_time(value, tz)
            return [formatted(moment.replace(tzinfo=None), TIME_FORMAT), utc_offset(moment)]
        if column.kind == "hms":
            return [formatted(value / SECONDS_PER_DAY, HMS_FORMAT)]
        if column.kind == "flag":
            return [bool(value)]
        return [value]

    # Widths and panes go before the first row: the sheet is written as it goes.
    widths = _widths(columns, rows)
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = f"{get_column_letter(header.index('name') + 2)}2"
    bold = Font(bold=True)
    titles = []
    for name in header:
        cell = WriteOnlyCell(sheet, name)
        cell.data_type = "s"
        cell.font = bold
        titles.append(cell)
    sheet.append(titles)
    for row in rows:
        line: list[Any] = []
        for column in columns:
            line.extend(cells(column, column.value(row)))
        sheet.append(line)


def _widths(columns: Sequence[Column], rows: Sequence[dict[str, Any]]) -> list[float]:
    """Each column's width: its header's, a text column's longest value's, at most 40."""
    widths: list[float] = []
    for column in columns:
        width = len(column.name)
        if column.kind == "text":
            for row in rows:
                value = column.value(row)
                if value is not None:
                    width = max(width, len(str(value)))
        width = max(width + 2, _WIDTHS.get(column.kind, 10))
        widths.append(min(width, _WIDEST))
        if column.kind == "time":
            widths.append(len("utc_offset") + 2)
    return widths
