"""The history database: every interval's figures and every agent state span, kept for reports.

SQLite (a file) or PostgreSQL, through SQLAlchemy Core. Everything here is
synchronous and blocks on the database: it runs in worker threads
(:mod:`mitelacd.reports.writer`), in ``mitelacd-report`` and in
``mitelacd-replay``, never on the reactor's thread.

The tables (docs/history.md):

``agent_intervals``, ``path_intervals``, ``group_intervals``
    One row per agent, path or group and 15-minute interval (or part of
    one): ``source``, ``day``, ``interval_start``, ``hour_start``, ``id``,
    then a column per figure of :data:`~mitelacd.reports.rows.FIGURES`, named
    as the figure. There is no unique key: a daemon that restarts inside an
    interval writes a row for each part, and reports combine them by each
    figure's rule (sum or max).
``agent_reasons``
    Not-ready seconds per agent, interval, kind (``dnd``, ``make_busy``) and
    reason code (NULL when the PBX sent none).
``agent_days``, ``path_days``, ``group_days``, ``agent_reason_days``
    The same per source, day and id (and kind and reason), one row each,
    kept up to date in the transaction that writes the intervals.
``agent_hours``, ``path_hours``, ``group_hours``, ``agent_reason_hours``
    The same per hour (``hour_start``) besides, kept the same way (since
    schema version 5).
``agent_states``
    Each span an agent spent in one board state: ``start_at`` and ``end_at``
    (Unix seconds; ``start`` and ``end`` are reserved words in SQL), the
    state after it, the event that ended it, and the reason, path and
    button.
``mitelacd_schema``
    One row per migration applied; the highest ``version`` is the schema's.
``mitelacd_writes``
    The last batch written per source, so that a batch whose commit was not
    confirmed is not written twice when it is tried again.
``mitelacd_writers``
    The daemon that writes each source (host, process, since when, its last
    heartbeat), to name it to a second daemon that is refused the source.
``smdr_lines``
    Every SMDR line as received (state-model §8): ``received_at`` (Unix
    seconds), the ``layout`` it was read with, and its ``text``.
``smdr_path_intervals``
    Per path and 15-minute interval, the SMDR figures
    (:class:`~mitelacd.reports.rows.SmdrIntervalRow`). Unique on (source,
    interval_start, path): an interval is revised while it is open, and a
    write replaces the row kept.

One daemon writes a source (:meth:`HistoryStore.claim`): on PostgreSQL it
holds a session-level advisory lock on a connection of its own, on SQLite a
lock on a file beside the database (``<database>.<source>.lock``). A store
that claimed a source writes only while it holds the lock.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import socket
import time
import urllib.parse
import zlib
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DataError,
    DBAPIError,
    IntegrityError,
    SQLAlchemyError,
    StatementError,
)
from twisted.python.filepath import FilePath

from mitelacd.disk import FileLock, FileLockedError
from mitelacd.floor.render import id_key, iso_utc
from mitelacd.floor.smdr import SmdrLine
from mitelacd.reports.rows import (
    FIGURES,
    RATIO_DECIMALS,
    REPORT_INTERVALS,
    ROW_KINDS,
    SMDR_COUNTS,
    SMDR_FIELDS,
    Figure,
    IntervalRow,
    ReasonKind,
    ReportInterval,
    RowKind,
    SmdrIntervalRow,
    SmdrSums,
    StateSpan,
    answered_difference,
    handling,
)
from mitelacd.reports.smdrcalls import PROVISIONAL_FIGURES

#: How long a SQLite connection waits for another writer's lock, in milliseconds.
SQLITE_BUSY_TIMEOUT_MS: Final = 10_000

#: The most page cache one SQLite connection keeps, in KiB. SQLite keeps what
#: it has cached until the connection closes, and the daemon's connections
#: live as long as it does: a larger cache fills up as the file grows and is
#: never given back. The writer's working set (the last pages of each table
#: and index) fits easily; reports read through the system's file cache.
SQLITE_CACHE_KIB: Final = 8192

#: Interval rows turned into statements' parameters at a time (see ``_insert``).
INSERT_CHUNK = 200
#: How long connecting to PostgreSQL may take, in seconds.
CONNECT_TIMEOUT: Final = 10

#: The URL schemes of PostgreSQL that are understood (all through psycopg 3).
_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class HistoryError(Exception):
    """Something about the history database that the caller should tell as it is."""


class HistoryURLError(HistoryError, ValueError):
    """``--history`` is not a URL or path this module can use."""


class HistorySchemaError(HistoryError):
    """The database's schema is not one this mitelacd can use (newer, or not mitelacd's)."""


class HistoryMissing(HistoryError):
    """A database that was to be read does not exist."""


class HistoryFileReplaced(HistoryError):
    """The SQLite file open for writing is no longer the one at its path (deleted or replaced)."""


#: A row the history keeps: an interval's figures, an agent's state span, an SMDR line
#: as received, or a path's SMDR interval.
HistoryRow = IntervalRow | StateSpan | SmdrLine | SmdrIntervalRow


def data_error(error: BaseException) -> bool:
    """Whether ``error`` is about the rows written rather than the database.

    A value the driver cannot convert (``OverflowError``: an integer too large
    for the column), one the database refuses (``DataError``: out of range;
    ``IntegrityError``: a NULL where none may be) or a bug in making a row
    fails the same way however often it is tried: the row, not the database,
    is at fault. Anything else the database or the driver says (cannot
    connect, locked, disk full, no such table) may pass and is tried again.
    """
    if not isinstance(error, Exception) or isinstance(error, (MemoryError, OSError)):
        return False
    if isinstance(error, (DataError, IntegrityError)):
        return True
    if isinstance(error, DBAPIError):
        return False
    if isinstance(error, StatementError):
        # SQLAlchemy's wrapper of a value its own processing could not take.
        return error.orig is None or data_error(error.orig)
    return not isinstance(error, (SQLAlchemyError, HistoryError))


@attrs.frozen
class Refused:
    """A row the database would not take, and why (in words: no traceback is kept)."""

    row: HistoryRow
    #: What the driver or the database said (:func:`error_detail`).
    problem: str
    #: The name of the error's class.
    error_type: str


# --- URLs --------------------------------------------------------------------------------------


@attrs.frozen
class HistoryURL:
    """A ``--history`` value understood: what SQLAlchemy connects to, and what a log may show."""

    #: ``sqlite`` or ``postgresql``.
    backend: str
    #: The SQLAlchemy URL (with the driver, and the password).
    engine_url: sa.URL
    #: The URL as given, with any password replaced by ``***``.
    shown: str
    #: SQLite: the database file's absolute path.
    path: str | None = None


def parse_url(url: str) -> HistoryURL:
    """Understand a ``--history`` value without connecting; HistoryURLError saying why not.

    ``sqlite:///relative/file.db``, ``sqlite:////absolute/file.db`` or a bare
    filesystem path are SQLite files; ``postgresql://user@host:port/db``
    (also ``postgres://``, ``postgresql+psycopg://``) is PostgreSQL through
    psycopg 3.
    """
    text = url.strip()
    if not text:
        raise HistoryURLError("the history database URL is empty")
    if "://" not in text:
        return _sqlite_url(text, text)
    scheme = text.split("://", 1)[0].lower()
    if scheme == "sqlite":
        rest = text.split("://", 1)[1]
        if not rest.startswith("/") or rest == "/":
            raise HistoryURLError(
                f"{text!r}: a SQLite URL names a file: sqlite:///relative/path.db or"
                " sqlite:////absolute/path.db (an in-memory database would be lost at exit)"
            )
        return _sqlite_url(rest[1:], text)
    if scheme in _POSTGRES_SCHEMES:
        try:
            parsed = make_url(text)
        except ArgumentError as e:
            raise HistoryURLError(
                f"{_hide_password(text)!r} is not a PostgreSQL URL: {e}"
            ) from None
        if not parsed.database:
            raise HistoryURLError(
                f"{parsed.render_as_string(hide_password=True)!r} names no database:"
                " postgresql://user@host:port/database"
            )
        return HistoryURL(
            "postgresql",
            parsed.set(drivername="postgresql+psycopg"),
            parsed.render_as_string(hide_password=True),
        )
    raise HistoryURLError(
        f"unknown history database {_hide_password(text)!r}: use sqlite:///path/file.db,"
        " a file path, or postgresql://user@host:port/database"
    )


def _sqlite_url(path: str, given: str) -> HistoryURL:
    if path.startswith("file:") or "?" in path:
        raise HistoryURLError(f"{given!r}: give the SQLite database as a plain file path")
    absolute = os.path.abspath(os.path.expanduser(path))
    if os.path.isdir(absolute):
        raise HistoryURLError(f"{given!r} is a folder: name the database file in it")
    return HistoryURL(
        "sqlite", sa.URL.create("sqlite+pysqlite", database=absolute), given, absolute
    )


def _hide_password(text: str) -> str:
    """``scheme://user:***@host``: a password in something that looks like a URL, hidden."""
    return re.sub(r"(://[^/:@]*:)[^/@]*@", r"\1***@", text)


def redact(url: str) -> str:
    """The URL as a log or ``/api/v1/feed`` may show it: any password hidden."""
    try:
        return parse_url(url).shown
    except HistoryURLError:
        return _hide_password(url)


# --- schema and migrations ---------------------------------------------------------------------

INTERVAL_TABLES: Final[Mapping[RowKind, str]] = {
    "agent": "agent_intervals",
    "path": "path_intervals",
    "group": "group_intervals",
}


#: The same figures per day, kept up to date as intervals are written: a report
#: by day reads these rather than add up 96 intervals per id and day.
DAY_TABLES: Final[Mapping[RowKind, str]] = {
    "agent": "agent_days",
    "path": "path_days",
    "group": "group_days",
}

#: The same per hour (since schema version 5): a report by hour reads these
#: rather than add up the 4 intervals of each id and hour (and their parts).
HOUR_TABLES: Final[Mapping[RowKind, str]] = {
    "agent": "agent_hours",
    "path": "path_hours",
    "group": "group_hours",
}

#: The reason of a not-ready row that has none, in the unique key of agent_reason_days
#: and agent_reason_hours.
_NO_REASON: Final[sa.ColumnClause[Any]] = sa.literal_column("-1")


def _reason_day_key(table: sa.Table) -> tuple[Any, ...]:
    """The unique key of agent_reason_days: a missing reason is one reason, not each its own."""
    return (
        table.c.source,
        table.c.day,
        table.c.agent,
        table.c.kind,
        sa.func.coalesce(table.c.reason, _NO_REASON),
    )


def _reason_hour_key(table: sa.Table) -> tuple[Any, ...]:
    """The unique key of agent_reason_hours: that of agent_reason_days, and the hour."""
    return (
        table.c.source,
        table.c.day,
        table.c.hour_start,
        table.c.agent,
        table.c.kind,
        sa.func.coalesce(table.c.reason, _NO_REASON),
    )


#: The version that added ``mitelacd_writers``.
_WRITERS_VERSION: Final = 3
#: The version that added ``smdr_lines`` and ``smdr_path_intervals``.
_SMDR_VERSION: Final = 4
#: The version that added the hour tables (:data:`HOUR_TABLES`, ``agent_reason_hours``).
_HOURS_VERSION: Final = 5

#: The figure columns added after version 1, as (kind, figure), by the version
#: that added them to the kind's interval and day tables (and hour tables, when
#: later than :data:`_HOURS_VERSION`).
_ADDED_FIGURES: Final[Mapping[tuple[RowKind, str], int]] = {
    ("path", "wrap_up_seconds"): 2,
}


def _interval_columns(kind: RowKind, version: int | None = None) -> list[sa.Column[Any]]:
    """The columns of the kind's interval table at schema ``version`` (None: the latest)."""
    columns: list[sa.Column[Any]] = [
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("day", sa.Text, nullable=False),
        sa.Column("interval_start", sa.BigInteger, nullable=False),
        sa.Column("hour_start", sa.BigInteger, nullable=False),
        sa.Column("id", sa.Text, nullable=False),
    ]
    for figure in FIGURES[kind]:
        if version is not None and _ADDED_FIGURES.get((kind, figure.name), 1) > version:
            continue
        kind_of = sa.BigInteger if figure.integer else sa.Double
        columns.append(sa.Column(figure.name, kind_of, nullable=False, server_default=sa.text("0")))
    return columns


def _schema(version: int | None = None) -> tuple[sa.MetaData, dict[str, sa.Table]]:
    """The tables as the latest migration leaves them, or as ``version`` made them.

    Later versions have added figure columns (:data:`_ADDED_FIGURES`),
    ``mitelacd_writers`` (:data:`_WRITERS_VERSION`), ``smdr_lines`` and
    ``smdr_path_intervals`` (:data:`_SMDR_VERSION`), and the hour tables
    (:data:`_HOURS_VERSION`).
    """
    metadata = sa.MetaData()
    tables: dict[str, sa.Table] = {}
    for kind, name in INTERVAL_TABLES.items():
        tables[name] = sa.Table(
            name,
            metadata,
            *_interval_columns(kind, version),
            sa.Index(f"{name}_day_id", "day", "id"),
            sa.Index(f"{name}_interval_start", "interval_start"),
            sa.Index(f"{name}_source_day", "source", "day"),
        )
    tables["agent_reasons"] = sa.Table(
        "agent_reasons",
        metadata,
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("day", sa.Text, nullable=False),
        sa.Column("interval_start", sa.BigInteger, nullable=False),
        sa.Column("hour_start", sa.BigInteger, nullable=False),
        sa.Column("agent", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("reason", sa.Integer, nullable=True),
        sa.Column("seconds", sa.Double, nullable=False),
        sa.Index("agent_reasons_day_agent", "day", "agent"),
        sa.Index("agent_reasons_source_day", "source", "day"),
    )
    tables["agent_states"] = sa.Table(
        "agent_states",
        metadata,
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("agent", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("next_state", sa.Text, nullable=False),
        sa.Column("start_at", sa.Double, nullable=False),
        sa.Column("end_at", sa.Double, nullable=False),
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("reason", sa.Integer, nullable=True),
        sa.Column("path", sa.Text, nullable=True),
        sa.Column("button", sa.Integer, nullable=True),
        sa.Index("agent_states_start_at", "start_at"),
        sa.Index("agent_states_agent_start_at", "agent", "start_at"),
    )
    for kind, name in DAY_TABLES.items():
        tables[name] = sa.Table(
            name,
            metadata,
            sa.Column("source", sa.Text, nullable=False),
            sa.Column("day", sa.Text, nullable=False),
            sa.Column("id", sa.Text, nullable=False),
            sa.Column("first_interval_start", sa.BigInteger, nullable=False),
            *_interval_columns(kind, version)[5:],
            sa.Index(f"{name}_key", "source", "day", "id", unique=True),
            sa.Index(f"{name}_day_id", "day", "id"),
        )
    reason_days = tables["agent_reason_days"] = sa.Table(
        "agent_reason_days",
        metadata,
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("day", sa.Text, nullable=False),
        sa.Column("agent", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("reason", sa.Integer, nullable=True),
        sa.Column("seconds", sa.Double, nullable=False),
        # Covers a report by day: read in the order it groups by, table untouched.
        sa.Index("agent_reason_days_day_agent", "day", "agent", "kind", "reason", "seconds"),
    )
    sa.Index(
        "agent_reason_days_key",
        *_reason_day_key(reason_days),
        unique=True,
    )
    tables["mitelacd_writes"] = sa.Table(
        "mitelacd_writes",
        metadata,
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("batch", sa.Text, nullable=False),
        sa.Column("written_at", sa.Double, nullable=False),
    )
    if version is None or version >= _WRITERS_VERSION:
        tables["mitelacd_writers"] = sa.Table(
            "mitelacd_writers",
            metadata,
            sa.Column("source", sa.Text, primary_key=True),
            sa.Column("host", sa.Text, nullable=False),
            sa.Column("pid", sa.Integer, nullable=False),
            sa.Column("started_at", sa.Double, nullable=False),
            sa.Column("heartbeat_at", sa.Double, nullable=False),
        )
    if version is None or version >= _SMDR_VERSION:
        _smdr_tables(metadata, tables)
    if version is None or version >= _HOURS_VERSION:
        _hour_tables(metadata, tables, version)
    return metadata, tables


def _hour_tables(metadata: sa.MetaData, tables: dict[str, sa.Table], version: int | None) -> None:
    """The hour tables and ``agent_reason_hours`` (schema version 5), as ``version`` has them."""
    for kind, name in HOUR_TABLES.items():
        tables[name] = sa.Table(
            name,
            metadata,
            sa.Column("source", sa.Text, nullable=False),
            sa.Column("day", sa.Text, nullable=False),
            sa.Column("hour_start", sa.BigInteger, nullable=False),
            sa.Column("id", sa.Text, nullable=False),
            sa.Column("first_interval_start", sa.BigInteger, nullable=False),
            *_interval_columns(kind, version)[5:],
            sa.Index(f"{name}_key", "source", "day", "hour_start", "id", unique=True),
            # Read in the order a report by hour groups by.
            sa.Index(f"{name}_day_id", "day", "id", "hour_start"),
        )
    reason_hours = tables["agent_reason_hours"] = sa.Table(
        "agent_reason_hours",
        metadata,
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("day", sa.Text, nullable=False),
        sa.Column("hour_start", sa.BigInteger, nullable=False),
        sa.Column("agent", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("reason", sa.Integer, nullable=True),
        sa.Column("seconds", sa.Double, nullable=False),
        # Covers a report by hour: read in the order it groups by, table untouched.
        sa.Index(
            "agent_reason_hours_day_agent",
            "day",
            "agent",
            "kind",
            "reason",
            "hour_start",
            "seconds",
        ),
    )
    sa.Index("agent_reason_hours_key", *_reason_hour_key(reason_hours), unique=True)


def _smdr_tables(metadata: sa.MetaData, tables: dict[str, sa.Table]) -> None:
    """``smdr_lines`` and ``smdr_path_intervals`` (schema version 4)."""
    tables["smdr_lines"] = sa.Table(
        "smdr_lines",
        metadata,
        # The order lines came in, where two share a received_at (SQLite: the rowid).
        sa.Column(
            "line",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("received_at", sa.Double, nullable=False),
        sa.Column("layout", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Index("smdr_lines_source_received_at", "source", "received_at"),
        sa.Index("smdr_lines_received_at", "received_at"),
    )
    counts = [
        sa.Column(name, sa.BigInteger, nullable=False)
        for name in (*SMDR_COUNTS, "service_level_seconds", "time_to_answer_seconds")
    ]
    tables["smdr_path_intervals"] = sa.Table(
        "smdr_path_intervals",
        metadata,
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("day", sa.Text, nullable=False),
        sa.Column("interval_start", sa.BigInteger, nullable=False),
        sa.Column("hour_start", sa.BigInteger, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("open", sa.Boolean, nullable=False),
        *counts,
        sa.Column("provisional", sa.Boolean, nullable=False),
        sa.Index("smdr_path_intervals_key", "source", "interval_start", "path", unique=True),
        sa.Index("smdr_path_intervals_day_path", "day", "path"),
    )


_METADATA, TABLES = _schema()
#: The tables as version 1 made them.
_VERSION_1_METADATA, _ = _schema(1)

#: The tables of schema version 5 kept per hour.
_HOUR_KEYED: Final = (*HOUR_TABLES.values(), "agent_reason_hours")

#: The tables whose rows belong to a report day by their ``day`` column.
_DAY_KEYED: Final = (
    *INTERVAL_TABLES.values(),
    "agent_reasons",
    *DAY_TABLES.values(),
    "agent_reason_days",
    *_HOUR_KEYED,
)

_SCHEMA_METADATA = sa.MetaData()
SCHEMA_TABLE = sa.Table(
    "mitelacd_schema",
    _SCHEMA_METADATA,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("applied_at", sa.Double, nullable=False),
)


@attrs.frozen
class Migration:
    """One step of the schema: applied once, in a transaction of its own."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def _create_version_1(connection: Connection) -> None:
    # The tables as first released. A figure added to FIGURES later needs a
    # step of its own that adds its column (see _add_figures), and is named
    # in _ADDED_FIGURES so that this step goes on creating only what it did.
    _VERSION_1_METADATA.create_all(connection, checkfirst=False)


def _add_figures(version: int) -> Callable[[Connection], None]:
    """The step that adds the figure columns of ``version`` to their interval and day tables
    (and hour tables, from version 6 on).

    Each column is added as version 1 would have made it: the figure's type,
    NOT NULL, DEFAULT 0 (so the rows already there read 0).
    """

    def apply(connection: Connection) -> None:
        dialect = connection.dialect
        quote = dialect.identifier_preparer.quote
        for (kind, name), added in _ADDED_FIGURES.items():
            if added != version:
                continue
            names = [INTERVAL_TABLES[kind], DAY_TABLES[kind]]
            if version > _HOURS_VERSION:
                names.append(HOUR_TABLES[kind])
            for table in names:
                sql_type = TABLES[table].c[name].type.compile(dialect=dialect)
                connection.execute(
                    sa.text(
                        f"ALTER TABLE {quote(table)} ADD COLUMN {quote(name)} {sql_type}"
                        " NOT NULL DEFAULT 0"
                    )
                )

    return apply


def _create_writers(connection: Connection) -> None:
    TABLES["mitelacd_writers"].create(connection, checkfirst=False)


def _create_smdr(connection: Connection) -> None:
    for name in ("smdr_lines", "smdr_path_intervals"):
        TABLES[name].create(connection, checkfirst=False)


def _create_hours(connection: Connection) -> None:
    """The hour tables, filled from the interval and reason rows already there.

    As version 5 makes them (a figure added later gets its column in its own
    step): one ``INSERT ... SELECT ... GROUP BY`` per table, each figure
    combined by its rule, as the writes that follow keep them.
    """
    _, tables = _schema(_HOURS_VERSION)
    for name in _HOUR_KEYED:
        tables[name].create(connection, checkfirst=False)
    for kind, name in HOUR_TABLES.items():
        intervals, hours = tables[INTERVAL_TABLES[kind]], tables[name]
        figures = [f for f in FIGURES[kind] if f.name in hours.c]
        keys = [intervals.c[k] for k in ("source", "day", "hour_start", "id")]
        query = sa.select(
            *keys,
            sa.func.min(intervals.c.interval_start),
            *(_combined(intervals, f) for f in figures),
        ).group_by(*keys)
        names = [*(k.name for k in keys), "first_interval_start", *(f.name for f in figures)]
        connection.execute(hours.insert().from_select(names, query))
    reasons = tables["agent_reasons"]
    keys = [reasons.c[k] for k in ("source", "day", "hour_start", "agent", "kind", "reason")]
    query = sa.select(*keys, sa.func.sum(reasons.c.seconds)).group_by(*keys)
    connection.execute(
        tables["agent_reason_hours"]
        .insert()
        .from_select([*(k.name for k in keys), "seconds"], query)
    )


#: Every step, in order; the last one's version is the schema's.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "interval, reason, state and write tables", _create_version_1),
    Migration(2, "path_intervals and path_days: wrap_up_seconds", _add_figures(2)),
    Migration(3, "mitelacd_writers: the daemon writing each source", _create_writers),
    Migration(4, "smdr_lines and smdr_path_intervals: the SMDR stream", _create_smdr),
    Migration(
        _HOURS_VERSION,
        "agent_hours, path_hours, group_hours and agent_reason_hours: the figures per hour",
        _create_hours,
    ),
)

#: The schema version this code writes and reads.
SCHEMA_VERSION: Final = MIGRATIONS[-1].version

#: What PostgreSQL's advisory lock for migrations is keyed on (any constant will do).
_MIGRATION_LOCK = 0x6D6974656C616364 & 0x7FFFFFFFFFFFFFFF


# --- one writer per source ---------------------------------------------------------------------

#: The first key of PostgreSQL's advisory locks on sources (two int4 keys: this
#: class, then the source's CRC-32): ``macd``.
SOURCE_LOCK_CLASS: Final = 0x6D616364


#: The server's TCP keepalives on the connection of a source's lock: 30 s idle,
#: then 3 probes 10 s apart.
SERVER_KEEPALIVES: Final = (
    ("tcp_keepalives_idle", 30),
    ("tcp_keepalives_interval", 10),
    ("tcp_keepalives_count", 3),
)


def source_lock_key(source: str) -> tuple[int, int]:
    """The two int4 keys of the PostgreSQL advisory lock on ``source``.

    In ``pg_locks`` it shows as ``locktype = 'advisory'``, ``classid`` the
    first, ``objid`` the second (as an unsigned number) and ``objsubid = 2``.
    """
    crc = zlib.crc32(source.encode("utf-8"))
    return SOURCE_LOCK_CLASS, crc - (1 << 32) if crc >= 1 << 31 else crc


def source_lock_path(database: str, source: str) -> str:
    """The file beside a SQLite database whose lock says who writes ``source``.

    ``<database>.<source>.lock``, the source as it is where it is letters,
    digits and ``._-~``, %-escaped elsewhere (``a/b`` is ``a%2Fb``); a very
    long name is replaced by its CRC-32 and length.
    """
    name = urllib.parse.quote(source, safe="")
    if not name or len(name) > 120:
        name = f"source-{zlib.crc32(source.encode('utf-8')):08x}-{len(source)}"
    return f"{database}.{name}.lock"


@attrs.frozen
class SourceWriter:
    """A row of ``mitelacd_writers``: the daemon that writes a source, as it said last."""

    source: str
    host: str
    pid: int
    #: When it took the source (Unix time, its own clock).
    started_at: float
    #: When it last said it still writes it (every 30 s or so).
    heartbeat_at: float

    def describe(self) -> str:
        """``mitelacd on host db1, pid 4242, since 2026-03-09T08:00:00.000Z``."""
        return f"mitelacd on host {self.host}, pid {self.pid}, since {iso_utc(self.started_at)}"


class SourceTaken(HistoryError):
    """Another daemon holds the lock on the source: this one must not write it.

    ``writer`` is what the other daemon recorded in ``mitelacd_writers``
    (None when there is no row of it yet); ``pid`` what the lock file of a
    SQLite database says, when the row says nothing.
    """

    def __init__(self, source: str, writer: SourceWriter | None, pid: int | None = None) -> None:
        self.source = source
        self.writer = writer
        self.pid = pid
        if writer is not None:
            who = writer.describe()
        elif pid is not None:
            who = f"mitelacd process {pid}"
        else:
            who = "another mitelacd"
        super().__init__(f"history source {source!r} is already written by {who}")

    @property
    def problem(self) -> str:
        """In a few words, for ``/api/v1/feed`` and ``/healthz``."""
        writer = self.writer
        if writer is not None:
            detail = f" (host {writer.host}, pid {writer.pid}, since {iso_utc(writer.started_at)})"
        elif self.pid is not None:
            detail = f" (pid {self.pid})"
        else:
            detail = ""
        return f"another daemon writes history source {self.source!r}{detail}"


class SourceLock:
    """This process writes ``writer.source``, for as long as the lock is held.

    PostgreSQL: a session-level advisory lock, held by a connection of its
    own (taken out of the pool: closing it ends the session and the lock);
    writes of the source go over that connection, so that none goes through
    once the lock is gone with its session. SQLite: ``flock`` on the file of
    :func:`source_lock_path`, which the kernel lets go however the process
    ends.
    """

    def __init__(
        self,
        writer: SourceWriter,
        connection: Connection | None = None,
        file: FileLock | None = None,
    ) -> None:
        self.writer = writer
        self.connection = connection
        self.file = file

    @property
    def alive(self) -> bool:
        """Whether the lock is still held (as far as is known without asking the server)."""
        if self.file is not None:
            return self.file.held
        connection = self.connection
        return connection is not None and not connection.closed and not connection.invalidated

    def close(self) -> None:
        """Let the lock go (PostgreSQL: close its connection, which ends the session)."""
        connection, self.connection = self.connection, None
        file, self.file = self.file, None
        try:
            if connection is not None:
                with contextlib.suppress(SQLAlchemyError, OSError):
                    connection.close()
        finally:
            if file is not None:
                file.release()


# --- time helpers ------------------------------------------------------------------------------


def check_day(day: str) -> str:
    """``day`` when it is a real ``YYYY-MM-DD`` date; ValueError otherwise."""
    if not _DAY.fullmatch(day):
        raise ValueError(f"not a day: {day!r} (YYYY-MM-DD)")
    datetime.date.fromisoformat(day)
    return day


def day_bounds(
    day: str, day_starts: datetime.time = datetime.time(0), tz: datetime.tzinfo | None = None
) -> tuple[float, float]:
    """Unix times the report day ``day`` runs from and to, by ``--day-starts`` (local time)."""
    date = datetime.date.fromisoformat(check_day(day))
    start = datetime.datetime.combine(date, day_starts, tzinfo=tz)
    end = datetime.datetime.combine(date + datetime.timedelta(days=1), day_starts, tzinfo=tz)
    return start.timestamp(), end.timestamp()


# --- the store ---------------------------------------------------------------------------------


#: The columns of ``agent_states`` a span fills, in the order it is inserted.
_SPAN_COLUMNS = (
    "source",
    "agent",
    "state",
    "next_state",
    "start_at",
    "end_at",
    "code",
    "reason",
    "path",
    "button",
)


class HistoryStore:
    """The history database, open. Every method blocks; call from one or more worker threads.

    Made by :func:`open_store`. :meth:`migrate` brings the schema to
    :data:`SCHEMA_VERSION` (refusing one that is newer); the other methods
    expect it there.
    """

    def __init__(self, url: HistoryURL, engine: Engine) -> None:
        self.url = url
        self.engine = engine
        self._postgres = url.backend == "postgresql"
        #: SQLite: the device and inode of the file the first connection opened.
        self._file_identity: tuple[int, int] | None = None
        if url.path is not None:
            sa.event.listen(engine, "connect", self._connected)
        #: The source this store writes, and as whom (:meth:`claim`), and the lock on it.
        self._claim_of: tuple[str, str, int] | None = None
        self.source_lock: SourceLock | None = None
        #: PostgreSQL: the connection that asked for a lock held by another, kept to ask again.
        self._standby: Connection | None = None
        #: Whether the hour tables are there to write and read: false once :meth:`migrate`
        #: left the database at an older version (tests of the steps write at each).
        self._hours = True
        marker = "%s" if self._postgres else "?"
        self._span_insert = (
            f"INSERT INTO agent_states ({', '.join(_SPAN_COLUMNS)})"
            f" VALUES ({', '.join([marker] * len(_SPAN_COLUMNS))})"
        )

    # --- housekeeping ---

    @property
    def shown_url(self) -> str:
        return self.url.shown

    def close(self) -> None:
        """Close every pooled connection, and let go of the source's lock (see :meth:`release_source`)."""
        self._claim_of = None
        lock, self.source_lock = self.source_lock, None
        standby, self._standby = self._standby, None
        try:
            if lock is not None:
                lock.close()
            if standby is not None:
                with contextlib.suppress(SQLAlchemyError, OSError):
                    standby.close()
        finally:
            self.engine.dispose()

    def _connected(self, _dbapi_connection: Any, _record: Any) -> None:
        if self._file_identity is None and self.url.path is not None:
            with contextlib.suppress(OSError):
                found = os.stat(self.url.path)
                self._file_identity = (found.st_dev, found.st_ino)

    def replaced(self) -> bool:
        """SQLite: whether the file at the path is no longer the one open (deleted, replaced).

        Rows written then would go to a file nobody can read any more. False
        for PostgreSQL, before the first connection, and when the path cannot
        be looked at (that is for the next write to say).
        """
        path, identity = self.url.path, self._file_identity
        if path is None or identity is None:
            return False
        try:
            found = os.stat(path)
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return (found.st_dev, found.st_ino) != identity

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction (SQLite: ``BEGIN IMMEDIATE``, so it never fails half way on a lock).

        A store that claimed a source writes only while it holds the lock: a
        lock that was lost (its PostgreSQL connection broke) is taken again
        first, or :class:`SourceTaken` is raised when another daemon has it
        now. On PostgreSQL the transaction is on the lock's own connection.
        """
        if self._claim_of is not None:
            lock = self._held_lock()
            if lock.connection is not None:
                with lock.connection.begin():
                    yield lock.connection
                return
        with self._pooled_writing() as connection:
            yield connection

    @contextlib.contextmanager
    def _pooled_writing(self) -> Iterator[Connection]:
        with self.engine.connect() as connection:
            connection.execution_options(mitelacd_write=True)
            with connection.begin():
                yield connection

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A read transaction that sees one snapshot of the database.

        SQLite: the pages a report read are let go after it, rather than kept
        in the connection's cache until it closes.
        """
        with self.engine.connect() as connection:
            if self._postgres:
                connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                yield connection
            if not self._postgres:
                dbapi_connection: Any = connection.connection.dbapi_connection
                dbapi_connection.execute("PRAGMA shrink_memory")

    def version(self) -> int:
        """The schema version of the database; 0 for one mitelacd never migrated."""
        with self._reading() as connection:
            return self._version(connection)

    def _version(self, connection: Connection) -> int:
        if not sa.inspect(connection).has_table(SCHEMA_TABLE.name):
            return 0
        found = connection.execute(sa.select(sa.func.max(SCHEMA_TABLE.c.version))).scalar()
        return int(found or 0)

    def migrate(self, steps: Sequence[Migration] = MIGRATIONS) -> int:
        """Apply the steps the database lacks, each in its own transaction; the version reached.

        HistorySchemaError when the database is newer than the steps know, or
        is not empty yet has no schema table of mitelacd's.
        """
        latest = steps[-1].version if steps else 0
        version = self.version()
        if version > latest:
            raise self._too_new(version, latest)
        for step in steps:
            if step.version <= version:
                continue
            with self._writing() as connection:
                if self._postgres:
                    connection.execute(
                        sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
                    )
                SCHEMA_TABLE.create(connection, checkfirst=True)
                # Another process may have migrated meanwhile.
                version = self._version(connection)
                if version > latest:
                    raise self._too_new(version, latest)
                if step.version <= version:
                    continue
                if version == 0:
                    self._refuse_foreign(connection)
                step.apply(connection)
                connection.execute(
                    SCHEMA_TABLE.insert().values(
                        version=step.version, description=step.description, applied_at=time.time()
                    )
                )
                version = step.version
        self._hours = version >= _HOURS_VERSION
        return version

    def _refuse_foreign(self, connection: Connection) -> None:
        names = set(sa.inspect(connection).get_table_names()) - {SCHEMA_TABLE.name}
        clash = sorted(names & set(TABLES))
        if clash:
            raise HistorySchemaError(
                f"{self.url.shown} already has tables named {', '.join(clash)} but no"
                f" {SCHEMA_TABLE.name} table: it is not a mitelacd history database;"
                " use an empty database"
            )

    def _too_new(self, version: int, latest: int) -> HistorySchemaError:
        return HistorySchemaError(
            f"the history database {self.url.shown} has schema version {version}, newer than"
            f" this mitelacd knows ({latest}): upgrade mitelacd, or use another database"
        )

    def check_schema(self) -> None:
        """HistorySchemaError unless the schema is exactly the one this code reads."""
        version = self.version()
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise self._too_new(version, SCHEMA_VERSION)
        if version == 0:
            raise HistorySchemaError(f"{self.url.shown} is not a mitelacd history database")
        raise HistorySchemaError(
            f"the history database {self.url.shown} has schema version {version}; this mitelacd"
            f" reads version {SCHEMA_VERSION}: start the daemon with it once to upgrade it"
        )

    # --- one writer per source ---

    def claim(self, source: str, host: str | None = None, pid: int | None = None) -> SourceWriter:
        """Become the one writer of ``source``, or SourceTaken naming the daemon that is.

        Takes the source's lock (:class:`SourceLock`) and records this
        process (``host``, ``pid``: this machine's name and this process by
        default) in ``mitelacd_writers``. Once claimed, every write of this
        store needs the lock: one lost with its connection is taken again
        before the next write, or that write is SourceTaken. Other errors
        (the database cannot be reached) are raised as they are; claiming
        again after a SourceTaken asks again. Needs the schema migrated.
        """
        claim = (source, host or socket.gethostname(), os.getpid() if pid is None else pid)
        lock = self.source_lock
        if lock is not None and claim != (lock.writer.source, lock.writer.host, lock.writer.pid):
            # One source a store: the one claimed before is let go.
            self.source_lock = None
            lock.close()
        self._claim_of = claim
        return self._held_lock().writer

    @property
    def claimed(self) -> str | None:
        """The source this store was told to write (:meth:`claim`), whether or not it holds it."""
        return None if self._claim_of is None else self._claim_of[0]

    def _held_lock(self) -> SourceLock:
        """The lock on the claimed source, taken (again) when it is not held."""
        assert self._claim_of is not None
        lock = self.source_lock
        if lock is not None:
            if lock.alive:
                return lock
            self.source_lock = None
            lock.close()
        source, host, pid = self._claim_of
        now = time.time()
        writer = SourceWriter(source, host, pid, now, now)
        if self._postgres:
            lock = self._lock_postgresql(writer)
        else:
            lock = self._lock_file(writer)
        self.source_lock = lock
        return lock

    def _lock_postgresql(self, writer: SourceWriter) -> SourceLock:
        connection, self._standby = self._standby, None
        if connection is not None and (connection.closed or connection.invalidated):
            with contextlib.suppress(SQLAlchemyError, OSError):
                connection.close()
            connection = None
        if connection is None:
            connection = self.engine.connect()
            # Out of the pool: closing it ends the session, and with it the lock.
            connection.detach()
            self._server_keepalives(connection)
        try:
            first, second = source_lock_key(writer.source)
            got = connection.execute(
                sa.text(
                    "SELECT pg_try_advisory_lock(CAST(:first AS integer), CAST(:second AS integer))"
                ),
                {"first": first, "second": second},
            ).scalar()
            connection.commit()
            if not got:
                holder = self._writer_row(connection, writer.source)
                connection.commit()
                # Kept to ask again, without a new connection each time.
                self._standby = connection
                raise SourceTaken(writer.source, holder)
            with connection.begin():
                self._record(connection, writer)
        except SourceTaken:
            raise
        except BaseException:
            with contextlib.suppress(SQLAlchemyError, OSError):
                connection.close()
            raise
        return SourceLock(writer, connection=connection)

    def _server_keepalives(self, connection: Connection) -> None:
        """Let the server notice within a minute or so that the lock's client is gone.

        A client machine that dies, or a network that fails, sends nothing:
        the server keeps the session, and the lock, until TCP keepalives say
        the peer is gone (the system's default is two hours). Where the
        server cannot set them (a Unix socket, some systems) they are left.
        """
        for name, value in SERVER_KEEPALIVES:
            try:
                connection.execute(sa.text(f"SET {name} = {int(value)}"))
                connection.commit()
            except DBAPIError:
                connection.rollback()

    def _lock_file(self, writer: SourceWriter) -> SourceLock:
        assert self.url.path is not None
        base = source_lock_path(self.url.path, writer.source).removesuffix(".lock")
        try:
            file = FileLock.acquire(FilePath(base))
        except FileLockedError as e:
            holder = self.writer(writer.source)
            if (
                holder is not None
                and e.holder is not None
                and holder.host == writer.host
                and holder.pid != e.holder
            ):
                # A row left by a daemon that ended, and the holder has not said who it is yet.
                holder = None
            raise SourceTaken(writer.source, holder, e.holder) from None
        try:
            with self._pooled_writing() as connection:
                self._record(connection, writer)
        except BaseException:
            file.release()
            raise
        return SourceLock(writer, file=file)

    def _record(self, connection: Connection, writer: SourceWriter) -> None:
        """Put ``writer`` in ``mitelacd_writers`` in place of the source's row."""
        table = TABLES["mitelacd_writers"]
        values = attrs.asdict(writer)
        statement = self._insert_statement(table).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.source], set_={k: v for k, v in values.items() if k != "source"}
        )
        connection.execute(statement)

    def heartbeat(self) -> None:
        """Say that the claimed source is still written: ``heartbeat_at`` is now.

        Needs the lock as a write does (SourceTaken when it was lost and
        another daemon has it now). The row is made again if it is gone.
        """
        if self._claim_of is None:
            raise HistoryError("no history source is claimed")
        with self._writing() as connection:
            lock = self.source_lock
            assert lock is not None
            lock.writer = attrs.evolve(lock.writer, heartbeat_at=time.time())
            self._record(connection, lock.writer)

    def release_source(self) -> None:
        """Stop writing the claimed source: its row of ``mitelacd_writers`` goes, then the lock.

        For a clean stop; the row is left when the database cannot be
        reached (the lock goes all the same). :meth:`close` lets the lock go
        without touching the database.
        """
        self._claim_of = None
        lock, self.source_lock = self.source_lock, None
        if lock is None:
            return
        try:
            if lock.alive:
                table = TABLES["mitelacd_writers"]
                mine = table.delete().where(
                    table.c.source == lock.writer.source,
                    table.c.host == lock.writer.host,
                    table.c.pid == lock.writer.pid,
                )
                if lock.connection is not None:
                    with lock.connection.begin():
                        lock.connection.execute(mine)
                else:
                    with self._pooled_writing() as connection:
                        connection.execute(mine)
        finally:
            lock.close()

    def writer(self, source: str) -> SourceWriter | None:
        """Who writes ``source``, as ``mitelacd_writers`` says (no lock needed to read it)."""
        with self._reading() as connection:
            return self._writer_row(connection, source)

    def writers(self) -> list[SourceWriter]:
        """Every row of ``mitelacd_writers``, by source."""
        table = TABLES["mitelacd_writers"]
        with self._reading() as connection:
            found = connection.execute(sa.select(table).order_by(table.c.source)).all()
        return [_source_writer(row) for row in found]

    def _writer_row(self, connection: Connection, source: str) -> SourceWriter | None:
        table = TABLES["mitelacd_writers"]
        found = connection.execute(sa.select(table).where(table.c.source == source)).first()
        return None if found is None else _source_writer(found)

    # --- writing ---

    def write(
        self,
        source: str,
        intervals: Sequence[IntervalRow],
        spans: Sequence[StateSpan],
        batch: str | None = None,
        smdr_lines: Sequence[SmdrLine] = (),
        smdr_intervals: Sequence[SmdrIntervalRow] = (),
    ) -> None:
        """Insert the rows, all in one transaction (or none of them).

        ``batch``, when given, is recorded as the last batch of ``source`` in
        the same transaction: :meth:`last_batch` tells afterwards whether a
        write whose commit was not confirmed went through. ``smdr_lines`` are
        added; each of ``smdr_intervals`` replaces the row of its source,
        interval and path, if there is one (the last of the same interval and
        path in the rows given wins).
        """
        with self._writing() as connection:
            self._insert(connection, source, intervals, spans, smdr_lines, smdr_intervals)
            if batch is not None:
                self._mark(connection, source, batch)

    def write_apart(
        self, source: str, rows: Sequence[HistoryRow], batch: str | None = None
    ) -> list[Refused]:
        """Insert the rows the database takes, in one transaction; those it refuses, and why.

        For a batch that :meth:`write` could not write because of a row
        (:func:`data_error`): the rows are tried in halves, each in a savepoint,
        and a half that fails is halved again, down to the row at fault; a
        handful of bad rows among thousands costs a few dozen savepoints. A
        failure that is not about the rows ends it all as :meth:`write` would.
        ``batch`` is recorded as :meth:`write` does.
        """
        refused: list[Refused] = []
        with self._writing() as connection:
            parts: list[Sequence[HistoryRow]] = [rows]
            while parts:
                part = parts.pop()
                try:
                    with connection.begin_nested():
                        self._insert(connection, source, *split_rows(part))
                except Exception as e:
                    if not data_error(e):
                        raise
                    if len(part) == 1:
                        refused.append(Refused(part[0], error_detail(e), type(e).__name__))
                        continue
                    middle = len(part) // 2
                    # The first half next: the rows go in in their order.
                    parts.append(part[middle:])
                    parts.append(part[:middle])
            if batch is not None:
                self._mark(connection, source, batch)
        return refused

    def last_batch(self, source: str) -> str | None:
        """The batch of the last :meth:`write` of ``source`` that was given one."""
        table = TABLES["mitelacd_writes"]
        with self._reading() as connection:
            found = connection.execute(
                sa.select(table.c.batch).where(table.c.source == source)
            ).scalar()
        return None if found is None else str(found)

    def _mark(self, connection: Connection, source: str, batch: str) -> None:
        table = TABLES["mitelacd_writes"]
        done = connection.execute(
            table.update()
            .where(table.c.source == source)
            .values(batch=batch, written_at=time.time())
        )
        if done.rowcount == 0:
            connection.execute(
                table.insert().values(source=source, batch=batch, written_at=time.time())
            )

    def replace_days(
        self,
        source: str,
        days: Collection[str],
        intervals: Sequence[IntervalRow],
        spans: Sequence[StateSpan],
        day_starts: datetime.time = datetime.time(0),
        tz: datetime.tzinfo | None = None,
    ) -> int:
        """Put these rows in place of everything ``source`` has for ``days``; one transaction.

        Interval rows go by their day; state spans by their start, within the
        days' bounds by ``day_starts`` (local time, or ``tz``). A row or span
        outside ``days`` is a ValueError (it would be stored twice). Returns
        how many rows were deleted.
        """
        wanted = {check_day(d) for d in days}
        bounds = [day_bounds(d, day_starts, tz) for d in sorted(wanted)]
        for row in intervals:
            if row.day not in wanted:
                raise ValueError(f"an interval row of {row.day}, not one of the days replaced")
        for span in spans:
            if not any(low <= span.start < high for low, high in bounds):
                raise ValueError(
                    f"a state span starting at {span.start}, outside the days replaced"
                )
        deleted = 0
        with self._writing() as connection:
            for name in self._day_keyed():
                table = TABLES[name]
                done = connection.execute(
                    table.delete().where(table.c.source == source, table.c.day.in_(sorted(wanted)))
                )
                deleted += max(done.rowcount, 0)
            states = TABLES["agent_states"]
            for low, high in bounds:
                done = connection.execute(
                    states.delete().where(
                        states.c.source == source,
                        states.c.start_at >= low,
                        states.c.start_at < high,
                    )
                )
                deleted += max(done.rowcount, 0)
            self._insert(connection, source, intervals, spans)
        return deleted

    def _day_keyed(self) -> tuple[str, ...]:
        """The tables with rows by ``day`` (:data:`_DAY_KEYED`) that the schema has."""
        if self._hours:
            return _DAY_KEYED
        return tuple(name for name in _DAY_KEYED if name not in _HOUR_KEYED)

    def _insert(
        self,
        connection: Connection,
        source: str,
        intervals: Sequence[IntervalRow],
        spans: Sequence[StateSpan],
        smdr_lines: Sequence[SmdrLine] = (),
        smdr_intervals: Sequence[SmdrIntervalRow] = (),
    ) -> None:
        # In parts, so that what a quarter hour's close builds at once (a row per
        # agent, group and path, as dictionaries) stays small: a large peak in
        # the writer's thread stays in the process's resident size.
        for at in range(0, len(intervals), INSERT_CHUNK):
            self._insert_intervals(connection, source, intervals[at : at + INSERT_CHUNK])
        if spans:
            # The busiest statement (a row per agent event): straight to the
            # driver's executemany, without a dictionary per row.
            connection.exec_driver_sql(
                self._span_insert,
                [
                    (
                        source,
                        s.agent,
                        s.state,
                        s.next_state,
                        float(s.start),
                        float(s.end),
                        s.code,
                        s.reason,
                        s.path,
                        s.button,
                    )
                    for s in spans
                ],
            )
        if smdr_lines:
            connection.execute(
                TABLES["smdr_lines"].insert(),
                [
                    {
                        "source": source,
                        "received_at": float(line.received_at),
                        "layout": line.layout,
                        "text": line.text,
                    }
                    for line in smdr_lines
                ],
            )
        if smdr_intervals:
            self._replace_smdr_intervals(connection, source, smdr_intervals)

    def _replace_smdr_intervals(
        self, connection: Connection, source: str, rows: Sequence[SmdrIntervalRow]
    ) -> None:
        """Each row in place of the one kept for its source, interval and path."""
        latest = {(row.interval_start, row.path): row for row in rows}
        table = TABLES["smdr_path_intervals"]
        statement = self._insert_statement(table)
        new = statement.excluded
        replaced = [c.name for c in table.columns if c.name not in _SMDR_KEY]
        statement = statement.on_conflict_do_update(
            index_elements=[table.c[name] for name in _SMDR_KEY],
            set_={name: new[name] for name in replaced},
        )
        connection.execute(
            statement, [{"source": source, **_smdr_values(row)} for row in latest.values()]
        )

    def _insert_statement(self, table: sa.Table) -> Any:
        if self._postgres:
            return postgresql.insert(table)
        return sqlite.insert(table)

    def _insert_intervals(
        self, connection: Connection, source: str, intervals: Sequence[IntervalRow]
    ) -> None:
        """Interval rows, their reasons, and their days' and hours' upserts: a part at a time."""
        by_kind: dict[RowKind, list[dict[str, Any]]] = defaultdict(list)
        reasons: list[dict[str, Any]] = []
        # The batch's rows combined per day (and hour) and id (a day or hour row
        # is updated once per statement), and its reasons per day (and hour),
        # agent, kind and reason.
        days: dict[tuple[Any, ...], dict[str, Any]] = {}
        hours: dict[tuple[Any, ...], dict[str, Any]] = {}
        reason_days: dict[tuple[str, str, str, int | None], float] = {}
        reason_hours: dict[tuple[str, int, str, str, int | None], float] = {}
        keep_hours = self._hours
        for row in intervals:
            values: dict[str, Any] = {
                "source": source,
                "day": row.day,
                "interval_start": row.interval_start,
                "hour_start": row.hour_start,
                "id": row.id,
            }
            figures = row.figures
            for figure in FIGURES[row.kind]:
                value = figures.get(figure.name, 0)
                values[figure.name] = int(value) if figure.integer else float(value)
            by_kind[row.kind].append(values)
            _add_to_day(days, row.kind, values)
            if keep_hours:
                _add_to_hour(hours, row.kind, values)
            for (reason_kind, reason), seconds in row.reasons.items():
                reasons.append(
                    {
                        "source": source,
                        "day": row.day,
                        "interval_start": row.interval_start,
                        "hour_start": row.hour_start,
                        "agent": row.id,
                        "kind": reason_kind,
                        "reason": reason,
                        "seconds": float(seconds),
                    }
                )
                key = (row.day, row.id, reason_kind, reason)
                reason_days[key] = reason_days.get(key, 0.0) + float(seconds)
                if keep_hours:
                    hour_key = (row.day, row.hour_start, row.id, reason_kind, reason)
                    reason_hours[hour_key] = reason_hours.get(hour_key, 0.0) + float(seconds)
        for row_kind, rows in by_kind.items():
            connection.execute(TABLES[INTERVAL_TABLES[row_kind]].insert(), rows)
        for row_kind in ROW_KINDS:
            day_rows = [v for k, v in days.items() if k[0] == row_kind]
            if day_rows:
                self._upsert_days(connection, row_kind, day_rows)
            hour_rows = [v for k, v in hours.items() if k[0] == row_kind]
            if hour_rows:
                self._upsert_days(connection, row_kind, hour_rows, hourly=True)
        if reasons:
            connection.execute(TABLES["agent_reasons"].insert(), reasons)
            self._upsert_reason_days(connection, source, reason_days)
            if reason_hours:
                self._upsert_reason_hours(connection, source, reason_hours)

    def _upsert_days(
        self,
        connection: Connection,
        kind: RowKind,
        rows: list[dict[str, Any]],
        hourly: bool = False,
    ) -> None:
        """Add rows combined per day (or hour) and id to the kind's day (or hour) table."""
        table = TABLES[(HOUR_TABLES if hourly else DAY_TABLES)[kind]]
        key = ("source", "day", "hour_start", "id") if hourly else ("source", "day", "id")
        statement = self._insert_statement(table)
        new = statement.excluded
        larger = sa.func.greatest if self._postgres else sa.func.max
        smaller = sa.func.least if self._postgres else sa.func.min
        updates: dict[str, Any] = {
            "first_interval_start": smaller(table.c.first_interval_start, new.first_interval_start)
        }
        for figure in FIGURES[kind]:
            old, added = table.c[figure.name], new[figure.name]
            updates[figure.name] = old + added if figure.combine == "sum" else larger(old, added)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c[name] for name in key], set_=updates
        )
        connection.execute(statement, rows)

    def _upsert_reason_days(
        self,
        connection: Connection,
        source: str,
        found: Mapping[tuple[str, str, str, int | None], float],
    ) -> None:
        rows = [
            {"source": source, "day": day, "agent": agent, "kind": kind, "reason": reason,
             "seconds": seconds}
            for (day, agent, kind, reason), seconds in found.items()
        ]  # fmt: skip
        self._add_reason_seconds(connection, "agent_reason_days", _reason_day_key, rows)

    def _upsert_reason_hours(
        self,
        connection: Connection,
        source: str,
        found: Mapping[tuple[str, int, str, str, int | None], float],
    ) -> None:
        rows = [
            {"source": source, "day": day, "hour_start": hour_start, "agent": agent,
             "kind": kind, "reason": reason, "seconds": seconds}
            for (day, hour_start, agent, kind, reason), seconds in found.items()
        ]  # fmt: skip
        self._add_reason_seconds(connection, "agent_reason_hours", _reason_hour_key, rows)

    def _add_reason_seconds(
        self,
        connection: Connection,
        name: str,
        key: Callable[[sa.Table], tuple[Any, ...]],
        rows: list[dict[str, Any]],
    ) -> None:
        """Each row's seconds added to those kept under its key in table ``name``."""
        table = TABLES[name]
        statement = self._insert_statement(table)
        statement = statement.on_conflict_do_update(
            index_elements=list(key(table)),
            set_={"seconds": table.c.seconds + statement.excluded.seconds},
        )
        connection.execute(statement, rows)

    def prune(
        self,
        before_day: str,
        day_starts: datetime.time = datetime.time(0),
        tz: datetime.tzinfo | None = None,
    ) -> int:
        """Delete every source's rows of the days before ``before_day``; how many rows.

        State spans go by their start: those before ``before_day`` began (by
        ``day_starts``, local time or ``tz``); SMDR lines by when they were
        received, SMDR intervals by their day.
        """
        cutoff, _ = day_bounds(before_day, day_starts, tz)
        deleted = 0
        with self._writing() as connection:
            for name in (*self._day_keyed(), "smdr_path_intervals"):
                table = TABLES[name]
                done = connection.execute(table.delete().where(table.c.day < before_day))
                deleted += max(done.rowcount, 0)
            states = TABLES["agent_states"]
            done = connection.execute(states.delete().where(states.c.start_at < cutoff))
            deleted += max(done.rowcount, 0)
            lines = TABLES["smdr_lines"]
            done = connection.execute(lines.delete().where(lines.c.received_at < cutoff))
            deleted += max(done.rowcount, 0)
        return deleted

    # --- reading ---

    def report(
        self,
        by: RowKind,
        first_day: str,
        last_day: str,
        interval: ReportInterval = "day",
        source: str | None = None,
        ids: Collection[str] | None = None,
        live_smdr: Sequence[SmdrIntervalRow] = (),
    ) -> list[dict[str, Any]]:
        """The figures of ``first_day`` to ``last_day`` (both included) per id and bucket.

        A bucket is a 15-minute interval, an hour, or a day (``interval``);
        the rows of one id in one bucket (parts of intervals, hours, every
        source when ``source`` is None) are combined by each figure's rule.
        Each row: ``id``, ``day``, ``start`` (Unix time of the bucket's
        first interval), every figure by name, and what follows from them
        (see :func:`derived`). Ordered by ``start``, then ``id`` (numbers in
        numeric order).

        Paths also have the SMDR figures of the bucket
        (:func:`~mitelacd.reports.rows.smdr_fields`: every source's intervals
        summed, then the ratios; None where SMDR has no interval of it), and a
        path with SMDR intervals but no ACD row in a bucket has a row of its
        own, its ACD figures 0. ``live_smdr``: intervals held in memory by the
        daemon that writes ``source`` (which must be given), each in place of
        the stored row of that source with the same interval and path.
        """
        return self._report(
            by, first_day, last_day, interval, source, ids, live_smdr, hours=self._hours
        )

    def _report(
        self,
        by: RowKind,
        first_day: str,
        last_day: str,
        interval: ReportInterval,
        source: str | None,
        ids: Collection[str] | None,
        live_smdr: Sequence[SmdrIntervalRow],
        hours: bool,
    ) -> list[dict[str, Any]]:
        """:meth:`report`; by hour from the hour tables when ``hours``, else from the intervals.

        The intervals are what a database older than schema version 5 has
        (and what tests check the hour tables against).
        """
        if live_smdr and source is None:
            raise ValueError("live SMDR intervals replace the rows of a source: name it")
        query, bucket = self._report_query(by, first_day, last_day, interval, source, ids, hours)
        figures = FIGURES[by]
        # The database rounds and casts: each row is zipped with the names as it is.
        keys = ["id", "day", "start", *(f.name for f in figures)]
        out: list[dict[str, Any]] = []
        with self._reading() as connection:
            reasons = (
                self._reasons(connection, first_day, last_day, interval, source, ids, hours)
                if by == "agent"
                else {}
            )
            smdr = (
                self._smdr_buckets(
                    connection, first_day, last_day, interval, source, ids, live_smdr
                )
                if by == "path"
                else {}
            )
            # Each row made into the report's as it is read, never all of them at once
            # (a month by hour is 360,000, and 1.8 million of reasons).
            for values in connection.execute(query):
                entry: dict[str, Any] = dict(zip(keys, values))
                entry.update(derived(by, entry))
                if by == "agent":
                    key = (values[0], values[1], None if bucket is None else int(values[2]))
                    found = reasons.get(key)
                    if found is None:
                        entry["dnd_by_reason"] = []
                        entry["make_busy_by_reason"] = []
                    else:
                        entry["dnd_by_reason"], entry["make_busy_by_reason"] = found
                out.append(entry)
        if by == "path":
            _with_smdr(out, smdr, interval)
        out.sort(key=lambda e: (e["start"], id_key(e["id"])))
        return out

    def report_queries(
        self, by: RowKind, first_day: str, last_day: str, interval: ReportInterval = "day"
    ) -> list[Any]:
        """The statements :meth:`report` runs for every source (the SMDR part of paths aside).

        Its figures, and for agents the not-ready time by reason: what a
        report reads from the database before it makes its rows, for
        ``bench/history_cost.py`` to time alone.
        """
        query, _ = self._report_query(by, first_day, last_day, interval, None, None, self._hours)
        if by != "agent":
            return [query]
        reasons, _ = self._reasons_query(first_day, last_day, interval, None, None, self._hours)
        return [query, reasons]

    def _report_query(
        self,
        by: RowKind,
        first_day: str,
        last_day: str,
        interval: ReportInterval,
        source: str | None,
        ids: Collection[str] | None,
        hours: bool,
    ) -> tuple[Any, sa.Column[Any] | None]:
        """The figures of a report per id and bucket, and the column of the bucket (None by day)."""
        if by not in ROW_KINDS:
            raise ValueError(f"by must be one of {', '.join(ROW_KINDS)}, not {by!r}")
        if interval not in REPORT_INTERVALS:
            raise ValueError(
                f"interval must be one of {', '.join(REPORT_INTERVALS)}, not {interval!r}"
            )
        check_day(first_day)
        check_day(last_day)
        figures = FIGURES[by]
        bucket: sa.Column[Any] | None
        start: Any
        if interval == "day":
            # Kept per day as intervals are written: a few rows per id and day.
            table = TABLES[DAY_TABLES[by]]
            bucket = None
            start = sa.func.min(table.c.first_interval_start)
        elif interval == "1h" and hours:
            # Kept per hour the same way: a row per source, id and hour.
            table = TABLES[HOUR_TABLES[by]]
            bucket = start = table.c.hour_start
        else:
            table = TABLES[INTERVAL_TABLES[by]]
            bucket = table.c.interval_start if interval == "15m" else table.c.hour_start
            start = bucket
        columns: list[Any] = [table.c.id, table.c.day, start.label("start")]
        columns += [self._shown(_combined(table, f), f) for f in figures]
        where = [table.c.day >= first_day, table.c.day <= last_day]
        if source is not None:
            where.append(table.c.source == source)
        if ids is not None:
            where.append(table.c.id.in_(sorted(set(ids))))
        group = [table.c.day, table.c.id] + ([] if bucket is None else [bucket])
        return sa.select(*columns).where(*where).group_by(*group), bucket

    def _smdr_buckets(
        self,
        connection: Connection,
        first_day: str,
        last_day: str,
        interval: ReportInterval,
        source: str | None,
        ids: Collection[str] | None,
        live: Sequence[SmdrIntervalRow],
    ) -> dict[tuple[str, str, int], tuple[int, SmdrSums]]:
        """The SMDR intervals summed per path and bucket: (path, day, bucket) → (start, sums).

        ``bucket`` is as :func:`_bucket` keys it. The stored rows are summed
        by the database, but those that ``live`` rows may replace (of
        ``source``, from the first to the last live interval), which are read
        one by one, replaced and summed here.
        """
        table = TABLES["smdr_path_intervals"]
        wanted = None if ids is None else set(ids)
        where: list[Any] = [table.c.day >= first_day, table.c.day <= last_day]
        if source is not None:
            where.append(table.c.source == source)
        if wanted is not None:
            where.append(table.c.path.in_(sorted(wanted)))
        found: dict[tuple[str, str, int], tuple[int, SmdrSums]] = {}

        def add(key: tuple[str, str, int], start: int, sums: SmdrSums) -> None:
            had = found.get(key)
            found[key] = (start, sums) if had is None else (min(had[0], start), had[1] + sums)

        live = [
            row
            for row in live
            if first_day <= row.day <= last_day and (wanted is None or row.path in wanted)
        ]
        if live:
            overlaid = sa.and_(
                table.c.source == source,
                table.c.interval_start >= min(row.interval_start for row in live),
                table.c.interval_start <= max(row.interval_start for row in live),
            )
            parts = {
                (part.interval_start, part.path): part
                for part in map(
                    _smdr_row, connection.execute(sa.select(table).where(*where, overlaid))
                )
            }
            parts.update({(row.interval_start, row.path): row for row in live})
            for part in parts.values():
                key, start = _bucket(part, interval)
                add(key, start, SmdrSums.of(part))
            where.append(sa.not_(overlaid))
        bucket: sa.Column[Any] | None = None
        if interval != "day":
            bucket = table.c.interval_start if interval == "15m" else table.c.hour_start
        group = [table.c.day, table.c.path] + ([] if bucket is None else [bucket])
        first = sa.func.min(table.c.interval_start) if bucket is None else bucket
        flags = [
            sa.func.max(sa.case((table.c[name], 1), else_=0)) for name in ("open", "provisional")
        ]
        query = (
            sa.select(
                table.c.path,
                table.c.day,
                first,
                *(sa.func.sum(table.c[name]) for name in (*SMDR_COUNTS, "time_to_answer_seconds")),
                sa.func.max(table.c.service_level_seconds),
                *flags,
            )
            .where(*where)
            .group_by(*group)
        )
        names = (*SMDR_COUNTS, "time_to_answer_seconds", "service_level_seconds")
        for values in connection.execute(query):
            path, day, start = str(values[0]), str(values[1]), int(values[2])
            numbers = values[3 : 3 + len(names)]
            sums = SmdrSums(
                **{name: int(value or 0) for name, value in zip(names, numbers)},
                open=bool(values[-2]),
                provisional=bool(values[-1]),
            )
            add((path, day, 0 if interval == "day" else start), start, sums)
        return found

    def _shown(self, combined: Any, figure: Figure) -> Any:
        """A combined figure as a report shows it: counts as integers, seconds to the millisecond.

        Done by the database, which is faster at it than Python here (in
        PostgreSQL a sum of bigints is a numeric: cast back).
        """
        if figure.integer:
            if self._postgres and figure.combine == "sum":
                return sa.cast(combined, sa.BigInteger).label(figure.name)
            return combined
        return self._rounded(combined).label(figure.name)

    def _rounded(self, value: Any) -> Any:
        # round(x * 1000) / 1000 in floating point: PostgreSQL's round(x, 3)
        # would go through numeric, several times slower.
        thousand = sa.literal_column("1000.0", sa.Double)
        return sa.func.round(value * thousand, type_=sa.Double) / thousand

    def _reasons(
        self,
        connection: Connection,
        first_day: str,
        last_day: str,
        interval: ReportInterval,
        source: str | None,
        ids: Collection[str] | None,
        hours: bool = True,
    ) -> dict[tuple[str, str, int | None], tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
        """Per agent and bucket: the DND and the make busy seconds by reason, as reports list them."""
        query, bucket = self._reasons_query(first_day, last_day, interval, source, ids, hours)
        found: dict[tuple[str, str, int | None], tuple[list[dict[str, Any]], list[dict[str, Any]]]]
        found = {}
        for values in connection.execute(query):
            key = (values[0], values[1], None if bucket is None else int(values[4]))
            lists = found.get(key)
            if lists is None:
                lists = found[key] = ([], [])
            reason = values[3]
            lists[0 if values[2] == "dnd" else 1].append({"reason": reason, "seconds": values[-1]})
        return found

    def _reasons_query(
        self,
        first_day: str,
        last_day: str,
        interval: ReportInterval,
        source: str | None,
        ids: Collection[str] | None,
        hours: bool,
    ) -> tuple[Any, sa.Column[Any] | None]:
        """The not-ready seconds per agent, bucket, kind and reason, and the bucket's column.

        Per day from agent_reason_days, per hour from agent_reason_hours (when
        ``hours``), per interval from agent_reasons.
        """
        bucket: sa.Column[Any] | None
        if interval == "day":
            table = TABLES["agent_reason_days"]
            bucket = None
        elif interval == "1h" and hours:
            table = TABLES["agent_reason_hours"]
            bucket = table.c.hour_start
        else:
            table = TABLES["agent_reasons"]
            bucket = table.c.interval_start if interval == "15m" else table.c.hour_start
        columns: list[Any] = [table.c.agent, table.c.day, table.c.kind, table.c.reason]
        if bucket is not None:
            columns.append(bucket)
        where = [table.c.day >= first_day, table.c.day <= last_day]
        if source is not None:
            where.append(table.c.source == source)
        if ids is not None:
            where.append(table.c.agent.in_(sorted(set(ids))))
        group = [table.c.day, table.c.agent, table.c.kind, table.c.reason]
        if bucket is not None:
            group.append(bucket)
        total = self._rounded(sa.func.sum(table.c.seconds))
        # In the order the lists show them: codes in order, the time without one last.
        order = (table.c.reason.is_(None), table.c.reason)
        query = sa.select(*columns, total).where(*where).group_by(*group).order_by(*order)
        return query, bucket

    def day_rows(self, source: str, day: str) -> list[IntervalRow]:
        """What ``source`` stored for ``day``: one row per kind, id and interval, parts combined.

        Ordered by interval, kind and id; for restoring the day's totals at a
        restart.
        """
        check_day(day)
        out: list[IntervalRow] = []
        with self._reading() as connection:
            reasons = self._day_reasons(connection, source, day)
            for kind in ROW_KINDS:
                table = TABLES[INTERVAL_TABLES[kind]]
                figures = FIGURES[kind]
                query = (
                    sa.select(
                        table.c.id,
                        table.c.interval_start,
                        sa.func.min(table.c.hour_start),
                        *(_combined(table, f) for f in figures),
                    )
                    .where(table.c.source == source, table.c.day == day)
                    .group_by(table.c.interval_start, table.c.id)
                )
                for row in connection.execute(query):
                    values = tuple(row)
                    identifier, start = str(values[0]), int(values[1])
                    out.append(
                        IntervalRow(
                            kind=kind,
                            id=identifier,
                            day=day,
                            interval_start=start,
                            hour_start=int(values[2]),
                            figures={
                                f.name: (int(v or 0) if f.integer else float(v or 0.0))
                                for f, v in zip(figures, values[3:])
                            },
                            reasons=reasons.get((identifier, start), {}) if kind == "agent" else {},
                        )
                    )
        order = {kind: n for n, kind in enumerate(ROW_KINDS)}
        out.sort(key=lambda r: (r.interval_start, order[r.kind], id_key(r.id)))
        return out

    def _day_reasons(
        self, connection: Connection, source: str, day: str
    ) -> dict[tuple[str, int], dict[tuple[ReasonKind, int | None], float]]:
        table = TABLES["agent_reasons"]
        keys = (table.c.agent, table.c.interval_start, table.c.kind, table.c.reason)
        query = (
            sa.select(*keys, sa.func.sum(table.c.seconds))
            .where(table.c.source == source, table.c.day == day)
            .group_by(*keys)
        )
        found: dict[tuple[str, int], dict[tuple[ReasonKind, int | None], float]] = {}
        for row in connection.execute(query):
            agent, start, kind, reason, seconds = tuple(row)
            reason_kind: ReasonKind = "dnd" if kind == "dnd" else "make_busy"
            code = None if reason is None else int(reason)
            found.setdefault((str(agent), int(start)), {})[(reason_kind, code)] = float(seconds)
        return found

    def states(
        self, source: str | None, agent: str | None, start: float, end: float
    ) -> list[StateSpan]:
        """The state spans that began from ``start`` to before ``end``, in order of their start.

        Of one agent, or all when ``agent`` is None; of one source, or all
        when ``source`` is None.
        """
        table = TABLES["agent_states"]
        where = [table.c.start_at >= start, table.c.start_at < end]
        if source is not None:
            where.append(table.c.source == source)
        if agent is not None:
            where.append(table.c.agent == agent)
        query = (
            sa.select(
                table.c.agent,
                table.c.state,
                table.c.next_state,
                table.c.start_at,
                table.c.end_at,
                table.c.code,
                table.c.reason,
                table.c.path,
                table.c.button,
            )
            .where(*where)
            .order_by(table.c.start_at, table.c.agent)
        )
        with self._reading() as connection:
            return [
                StateSpan(
                    agent=r[0],
                    state=r[1],
                    next_state=r[2],
                    start=float(r[3]),
                    end=float(r[4]),
                    code=r[5],
                    reason=None if r[6] is None else int(r[6]),
                    path=r[7],
                    button=None if r[8] is None else int(r[8]),
                )
                for r in connection.execute(query)
            ]

    def smdr_lines(self, source: str, since: float) -> list[SmdrLine]:
        """The SMDR lines of ``source`` received from ``since`` on, in the order they came.

        For rebuilding the intervals still open at a start.
        """
        table = TABLES["smdr_lines"]
        query = (
            sa.select(table.c.received_at, table.c.text, table.c.layout)
            .where(table.c.source == source, table.c.received_at >= since)
            .order_by(table.c.received_at, table.c.line)
        )
        with self._reading() as connection:
            return [
                SmdrLine(float(received_at), str(text), str(layout))
                for received_at, text, layout in connection.execute(query)
            ]

    def smdr_intervals(
        self, source: str | None, first_day: str, last_day: str
    ) -> list[SmdrIntervalRow]:
        """The SMDR intervals kept of ``first_day`` to ``last_day`` (of every source when
        ``source`` is None), by interval, then path."""
        check_day(first_day)
        check_day(last_day)
        table = TABLES["smdr_path_intervals"]
        where = [table.c.day >= first_day, table.c.day <= last_day]
        if source is not None:
            where.append(table.c.source == source)
        query = sa.select(table).where(*where).order_by(table.c.interval_start, table.c.path)
        with self._reading() as connection:
            found = [_smdr_row(row) for row in connection.execute(query)]
        found.sort(key=lambda r: (r.interval_start, id_key(r.path)))
        return found

    def count(self, table: str, source: str | None = None) -> int:
        """How many rows ``table`` holds (of ``source``); for tests and tools."""
        found = TABLES[table]
        query = sa.select(sa.func.count()).select_from(found)
        if source is not None:
            query = query.where(found.c.source == source)
        with self._reading() as connection:
            return int(connection.execute(query).scalar() or 0)


def _bucket(part: SmdrIntervalRow, interval: ReportInterval) -> tuple[tuple[str, str, int], int]:
    """The (path, day, bucket) key of a report's bucket that ``part`` is in, and its start.

    ``bucket`` is the interval's start (15m), its hour's (1h), or 0 (day:
    the day is the bucket, and its start the first interval's).
    """
    if interval == "1h":
        start = part.hour_start
    else:
        start = part.interval_start
    return (part.path, part.day, 0 if interval == "day" else start), start


def _with_smdr(
    rows: list[dict[str, Any]],
    buckets: Mapping[tuple[str, str, int], tuple[int, SmdrSums]],
    interval: ReportInterval,
) -> None:
    """Give each path row its bucket's SMDR fields; a bucket without a row gets one.

    A row made for SMDR alone has its ACD figures 0. By day, a row starts at
    the first interval of either stream.
    """
    found = {(r["id"], r["day"], 0 if interval == "day" else int(r["start"])): r for r in rows}
    for key, (start, sums) in buckets.items():
        row = found.get(key)
        if row is None:
            path, day, _ = key
            row = found[key] = empty_row("path", path, day, start)
            rows.append(row)
        else:
            row["start"] = min(row["start"], start)
        row.update(smdr_fields(sums, row["acd_calls"]))
    for key, row in found.items():
        if key not in buckets:
            row.update(smdr_fields(None, row["acd_calls"]))


def empty_row(by: RowKind, ident: str, day: str, start: int) -> dict[str, Any]:
    """A report row of ``ident`` with every figure 0 and what follows from them."""
    row: dict[str, Any] = {"id": ident, "day": day, "start": start}
    row.update({f.name: 0 if f.integer else 0.0 for f in FIGURES[by]})
    row.update(derived(by, row))
    if by == "agent":
        row["dnd_by_reason"], row["make_busy_by_reason"] = [], []
    return row


#: The unique key of ``smdr_path_intervals``.
_SMDR_KEY: Final = ("source", "interval_start", "path")


def split_rows(
    rows: Iterable[HistoryRow],
) -> tuple[list[IntervalRow], list[StateSpan], list[SmdrLine], list[SmdrIntervalRow]]:
    """The rows by kind, each kind in the order given: what :meth:`HistoryStore.write` takes."""
    intervals: list[IntervalRow] = []
    spans: list[StateSpan] = []
    lines: list[SmdrLine] = []
    smdr: list[SmdrIntervalRow] = []
    for row in rows:
        if isinstance(row, IntervalRow):
            intervals.append(row)
        elif isinstance(row, StateSpan):
            spans.append(row)
        elif isinstance(row, SmdrLine):
            lines.append(row)
        else:
            smdr.append(row)
    return intervals, spans, lines, smdr


def _smdr_values(row: SmdrIntervalRow) -> dict[str, Any]:
    """A row's columns of ``smdr_path_intervals`` but ``source``."""
    values = attrs.asdict(row)
    for name in (*SMDR_COUNTS, "interval_start", "hour_start"):
        values[name] = int(values[name])
    values["service_level_seconds"] = int(row.service_level_seconds)
    values["time_to_answer_seconds"] = int(row.time_to_answer_seconds)
    values["open"] = bool(row.open)
    values["provisional"] = bool(row.provisional)
    return values


def _smdr_row(found: Any) -> SmdrIntervalRow:
    """A row of ``smdr_path_intervals`` as read."""
    return SmdrIntervalRow(
        path=str(found.path),
        day=str(found.day),
        interval_start=int(found.interval_start),
        hour_start=int(found.hour_start),
        open=bool(found.open),
        **{name: int(getattr(found, name)) for name in SMDR_COUNTS},
        service_level_seconds=int(found.service_level_seconds),
        time_to_answer_seconds=int(found.time_to_answer_seconds),
        provisional=bool(found.provisional),
    )


def _source_writer(row: Any) -> SourceWriter:
    return SourceWriter(
        source=str(row.source),
        host=str(row.host),
        pid=int(row.pid),
        started_at=float(row.started_at),
        heartbeat_at=float(row.heartbeat_at),
    )


def _add_to_day(
    days: dict[tuple[Any, ...], dict[str, Any]], kind: RowKind, values: dict[str, Any]
) -> None:
    """Combine one interval row's values into its day's, by each figure's rule."""
    key = (kind, values["day"], values["id"])
    _combine_into(days, key, kind, values, ("interval_start", "hour_start"))


def _add_to_hour(
    hours: dict[tuple[Any, ...], dict[str, Any]], kind: RowKind, values: dict[str, Any]
) -> None:
    """Combine one interval row's values into its hour's, by each figure's rule."""
    key = (kind, values["day"], values["hour_start"], values["id"])
    _combine_into(hours, key, kind, values, ("interval_start",))


def _combine_into(
    combined: dict[tuple[Any, ...], dict[str, Any]],
    key: tuple[Any, ...],
    kind: RowKind,
    values: dict[str, Any],
    left_out: tuple[str, ...],
) -> None:
    """Combine an interval row's values into those kept under ``key``, by each figure's rule.

    The first row of a key is kept without the columns ``left_out``, and
    with ``first_interval_start``.
    """
    found = combined.get(key)
    if found is None:
        first = {k: v for k, v in values.items() if k not in left_out}
        first["first_interval_start"] = values["interval_start"]
        combined[key] = first
        return
    found["first_interval_start"] = min(found["first_interval_start"], values["interval_start"])
    for figure in FIGURES[kind]:
        name = figure.name
        if figure.combine == "sum":
            found[name] += values[name]
        else:
            found[name] = max(found[name], values[name])


def _combined(table: sa.Table, figure: Figure) -> Any:
    column = table.c[figure.name]
    combine = sa.func.sum if figure.combine == "sum" else sa.func.max
    return combine(column).label(figure.name)


def derived(by: RowKind, figures: Mapping[str, Any]) -> dict[str, Any]:
    """What follows from a row's figures, shown beside them.

    Agents: ``acd_talk_average_seconds`` (talk time per ACD call, None
    without calls), ``not_ready_seconds`` (DND and make busy),
    ``average_handle_seconds`` and ``occupancy_percent``. Paths and groups:
    ``mean_waiting``, the time-weighted mean number of calls waiting (None
    when no report covered the time); paths also ``average_handle_seconds``.
    The handling figures are those of :func:`~mitelacd.reports.rows.handling`,
    worked out from the row's sums.
    """
    if by == "agent":
        calls = int(figures.get("acd_calls", 0) or 0)
        talk = float(figures.get("acd_talk_seconds", 0.0) or 0.0)
        not_ready = float(figures.get("dnd_seconds", 0.0) or 0.0) + float(
            figures.get("make_busy_seconds", 0.0) or 0.0
        )
        return {
            "acd_talk_average_seconds": round(talk / calls, 3) if calls else None,
            "not_ready_seconds": round(not_ready, 3),
            **handling(by, figures),
        }
    covered = float(figures.get("covered_seconds", 0.0) or 0.0)
    waiting = float(figures.get("waiting_seconds", 0.0) or 0.0)
    return {
        "mean_waiting": round(waiting / covered, 3) if covered > 0 else None,
        **handling(by, figures),
    }


def smdr_fields(sums: SmdrSums | None, acd_calls: int | float | None) -> dict[str, Any]:
    """The SMDR fields of a path's row (:data:`~mitelacd.reports.rows.SMDR_FIELDS`, and
    ``provisional_figures``), from its intervals summed (:func:`~mitelacd.reports.rows.smdr_sums`).

    The one place they are worked out, for stored and live figures alike:
    ``service_level_percent`` = answered within the target / (offered −
    short abandoned) × 100 and ``average_time_to_answer_seconds`` = time to
    answer / answered, each rounded to :data:`~mitelacd.reports.rows.RATIO_DECIMALS`
    and None when what it divides by is 0; ``answered_difference`` =
    SMDR's answered − ``acd_calls`` (the ACD stream's G/S count of the same
    path and span: the cross-check of state-model §8); ``provisional_figures``
    names :data:`~mitelacd.reports.smdrcalls.PROVISIONAL_FIGURES` when the
    sum is provisional. ``sums`` None (no SMDR interval at all: SMDR was not
    read) gives every figure None, ``open`` and ``provisional`` False.
    """
    if sums is None:
        found: dict[str, Any] = dict.fromkeys(SMDR_FIELDS)
        found.update(open=False, provisional=False, provisional_figures=[])
        return found
    served = sums.offered - sums.short_abandoned
    found = {name: getattr(sums, name) for name in SMDR_COUNTS}
    found.update(
        time_to_answer_seconds=sums.time_to_answer_seconds,
        service_level_seconds=sums.service_level_seconds,
        service_level_percent=(
            round(sums.answered_within_target / served * 100, RATIO_DECIMALS)
            if served > 0
            else None
        ),
        average_time_to_answer_seconds=(
            round(sums.time_to_answer_seconds / sums.answered, RATIO_DECIMALS)
            if sums.answered > 0
            else None
        ),
        answered_difference=answered_difference(sums.answered, acd_calls),
        open=sums.open,
        provisional=sums.provisional,
        provisional_figures=list(PROVISIONAL_FIGURES) if sums.provisional else [],
    )
    return found


# --- opening -----------------------------------------------------------------------------------


def open_store(
    url: str, create: bool = True, store_class: type[HistoryStore] = HistoryStore
) -> HistoryStore:
    """Connect to the history database at ``url`` (see :func:`parse_url`).

    Nothing is read or written yet (call :meth:`HistoryStore.migrate` or
    :meth:`HistoryStore.check_schema`). ``create=False``: a SQLite file that
    does not exist is HistoryMissing rather than made. ``store_class``: a
    subclass to make instead (tests put faults in one).
    """
    parsed = parse_url(url)
    if parsed.backend == "sqlite":
        assert parsed.path is not None
        if not create and not os.path.exists(parsed.path):
            raise HistoryMissing(f"no history database at {parsed.path}")
        engine = sa.create_engine(parsed.engine_url, pool_pre_ping=False)
        _sqlite_events(engine)
    else:
        engine = sa.create_engine(
            parsed.engine_url,
            pool_pre_ping=True,
            pool_size=3,
            max_overflow=2,
            connect_args={
                "connect_timeout": CONNECT_TIMEOUT,
                "application_name": "mitelacd",
                # A database host that vanishes is noticed within a minute or so.
                "keepalives": 1,
                "keepalives_idle": 30,
                "keepalives_interval": 10,
                "keepalives_count": 3,
            },
        )
    return store_class(parsed, engine)


def _sqlite_events(engine: Engine) -> None:
    """WAL, a busy timeout, and transactions that SQLite itself begins (DDL included)."""

    @sa.event.listens_for(engine, "connect")
    def _connected(dbapi_connection: Any, _record: Any) -> None:
        # Python's sqlite3 would begin transactions itself, and not before DDL.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        finally:
            cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        write = connection.get_execution_options().get("mitelacd_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def sqlite_memory() -> int | None:
    """Bytes the SQLite library holds in this process now, page caches included; None unknown.

    What ``sqlite3_memory_used()`` says, read from the library Python's own
    ``sqlite3`` module uses: for measuring, not for the daemon's work.
    """
    try:
        import _sqlite3
        import ctypes

        library = ctypes.CDLL(_sqlite3.__file__)
        used = library.sqlite3_memory_used
    except (ImportError, OSError, AttributeError):
        return None
    used.restype = ctypes.c_int64
    used.argtypes = []
    return int(used())


def iter_days(first_day: str, last_day: str) -> Iterable[str]:
    """Every day from ``first_day`` to ``last_day``, both included."""
    day = datetime.date.fromisoformat(check_day(first_day))
    last = datetime.date.fromisoformat(check_day(last_day))
    while day <= last:
        yield day.isoformat()
        day += datetime.timedelta(days=1)


# --- what went wrong, in words -----------------------------------------------------------------

_UNREACHABLE = (
    "connection refused",
    "could not connect",
    "connection failed",
    "server closed the connection",
    "terminating connection",
    "connection is closed",
    "connection already closed",
    "the connection is lost",
    "timeout expired",
    "timed out",
    "no route to host",
    "network is unreachable",
    "name or service not known",
    "could not translate host name",
    "temporary failure in name resolution",
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is in recovery mode",
    "consuming input failed",
    "ssl syscall error",
)


def problem_kind(error: BaseException) -> str:
    """What is wrong with the database, in a few words (the same words for the same trouble)."""
    if isinstance(error, HistoryError):
        return str(error)
    text = error_detail(error).lower()
    if "disk is full" in text or "no space left" in text or "could not extend file" in text:
        return "disk full"
    if "database is locked" in text or "database is busy" in text or "lock timeout" in text:
        return "database locked"
    if "unable to open database file" in text:
        return "cannot open the database file"
    if "readonly database" in text or "read-only" in text:
        return "read-only database"
    if "permission denied" in text:
        return "permission denied"
    if "authentication failed" in text or "no pg_hba.conf entry" in text:
        return "authentication failed"
    if "database" in text and "does not exist" in text:
        return "database does not exist"
    if any(words in text for words in _UNREACHABLE):
        return "database unreachable"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return error_detail(error)[:120] or type(error).__name__


def error_detail(error: BaseException) -> str:
    """The first line of the driver's own message (SQLAlchemy's wrapper adds the SQL)."""
    original = getattr(error, "orig", None)
    cause = original if isinstance(original, BaseException) else error
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    if not lines:
        return type(cause).__name__
    return lines[0][:300]
