"""Captures of the PBX stream: the bytes as read, with their arrival times.

The format is in docs/capture.md: a header line, then one entry per line,
``TIME KIND ...``. This module reads and writes it, and holds the
:class:`CaptureRecorder` behind ``--record DIR``: one file per PBX day,
compressed when the day is over, kept ``--record-days`` days.

The recorder sits on the feed's path, so it only ever appends to a list
there. The list is turned into lines and written a second later (sooner
when it grows large), with plain ``write`` calls. A write that fails (full
disk, folder gone, permissions) keeps the lines in memory, up to a bound,
and is retried with a growing pause, like the data file. Beyond the bound
the oldest lines are dropped, counted, and marked in the file by a ``gap``
entry when writing works again, so a replay knows what is missing.
"""

from __future__ import annotations

import contextlib
import datetime
import gzip
import io
import json
import math
import os
import re
import shutil
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal

import attrs
from twisted.application.service import Service
from twisted.internet import threads
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from zope.interface import implementer

from mitelacd import __version__
from mitelacd.disk import SYSTEM, FailingWrites, SystemCalls, duration_words, failure_kind
from mitelacd.floor.changes import ChangeSet, IFloorListener
from mitelacd.floor.render import iso_utc
from mitelacd.floor.state import FloorState
from mitelacd.logs import Logger, Throttle

log = Logger()

#: The first word of a capture's header line, and the version this module writes.
FORMAT = "mitelacd-capture"
VERSION = 1
HEADER = f"{FORMAT} {VERSION}\n".encode("ascii")

#: The default of ``--record-days``.
DEFAULT_KEEP_DAYS = 31
#: Bytes kept in memory while writing fails, before the oldest are dropped.
DEFAULT_MAX_PENDING = 64 << 20
#: Seconds between writes of what was captured meanwhile.
DEFAULT_FLUSH_INTERVAL = 1.0
#: Captured bytes that make a write come at once rather than on the timer.
FLUSH_SOON_BYTES = 1 << 20
#: How long the first lines wait for the PBX to say its date before the local date is used.
DATE_WAIT = 30.0
#: The longest pause between retries of a failing write, in seconds.
MAX_RETRY_DELAY = 30.0


class CaptureError(Exception):
    """A file that cannot be read as a capture at all (missing, unreadable, not a capture)."""


# --- entries ----------------------------------------------------------------------------------


@attrs.frozen
class Started:
    """A daemon started recording (``program`` names it and its version)."""

    time: float
    program: str


@attrs.frozen
class Stopped:
    """The daemon stopped recording; a connection it had ends here."""

    time: float
    why: str


#: Which of the PBX's streams a connection or a read is of: the ACD real time
#: events, or SMDR (written as the kinds ``smdr-connected``, ``smdr-data``...).
Stream = Literal["acd", "smdr"]
STREAMS: tuple[Stream, ...] = ("acd", "smdr")


@attrs.frozen
class Connected:
    """A connection to the PBX was made (``continued``: it was already open when this file began)."""

    time: float
    host: str
    port: int
    continued: bool = False
    stream: Stream = "acd"


@attrs.frozen
class Data:
    """One read from the PBX, exactly as it came; ``time`` is when the daemon had taken it in."""

    time: float
    data: bytes
    stream: Stream = "acd"


@attrs.frozen
class Lost:
    """The connection was lost, and why."""

    time: float
    why: str
    stream: Stream = "acd"


@attrs.frozen
class Gap:
    """Entries the recorder had to drop (``time`` to ``until``); a connection ends here."""

    time: float
    until: float
    entries: int
    data_bytes: int


Entry = Started | Stopped | Connected | Data | Lost | Gap
Kind = Literal["start", "stop", "connected", "continued", "data", "lost", "gap"]

#: Every byte but printable ASCII and the backslash is written as ``\xHH``.
_UNSAFE = re.compile(rb"[^\x20-\x5b\x5d-\x7e]+")
_ESCAPES = [b"\\x%02x" % b for b in range(256)]
_ESCAPES[0x5C] = b"\\\\"
_ESCAPED = re.compile(rb"\\(x[0-9a-f]{2}|\\)?")
_NOT_TEXT = re.compile(rb"[^\x20-\x7e]")


def escape(data: bytes) -> bytes:
    """``data`` as the printable ASCII of a ``data`` entry (docs/capture.md)."""
    return _UNSAFE.sub(lambda m: b"".join([_ESCAPES[b] for b in m.group()]), data)


def _unescape_one(match: re.Match[bytes]) -> bytes:
    code = match.group(1)
    if code is None:
        raise ValueError("a backslash that starts no escape")
    return b"\\" if code == b"\\" else bytes([int(code[1:], 16)])


def unescape(text: bytes) -> bytes:
    """The bytes of a ``data`` entry's text; ValueError if it is not well formed."""
    if _NOT_TEXT.search(text):
        raise ValueError("a byte that must be escaped is not")
    return _ESCAPED.sub(_unescape_one, text)


def _time(value: float) -> bytes:
    # repr: the shortest text that reads back as the very same float.
    return repr(float(value)).encode("ascii")


def _text(value: str) -> bytes:
    return json.dumps(value, ensure_ascii=True).encode("ascii")


def encode_entry(entry: Entry) -> bytes:
    """One entry as its line, with the LF that ends it."""
    match entry:
        case Data(time, data, stream):
            return b"%s %sdata %s\n" % (_time(time), _PREFIX[stream], escape(data))
        case Connected(time, host, port, continued, stream):
            kind = b"continued" if continued else b"connected"
            return b"%s %s%s %s %d\n" % (_time(time), _PREFIX[stream], kind, _host(host), port)
        case Lost(time, why, stream):
            return b"%s %slost %s\n" % (_time(time), _PREFIX[stream], _text(why))
        case Started(time, program):
            return b"%s start %s\n" % (_time(time), _text(program))
        case Stopped(time, why):
            return b"%s stop %s\n" % (_time(time), _text(why))
        case Gap(time, until, entries, data_bytes):
            return b"%s gap %d %d %s\n" % (_time(time), entries, data_bytes, _time(until))
    raise TypeError(f"not a capture entry: {entry!r}")


#: What the kinds of a stream's entries start with.
_PREFIX: dict[Stream, bytes] = {"acd": b"", "smdr": b"smdr-"}


def _host(host: str) -> bytes:
    encoded = host.encode("ascii", "replace")
    if not encoded or _NOT_TEXT.search(encoded) or b" " in encoded:
        raise ValueError(f"not a host name: {host!r}")
    return encoded


class UnknownEntry(ValueError):
    """A well-formed line of a kind this version does not know: skipped."""


def parse_entry(line: bytes) -> Entry | None:
    """The entry of one line (without its LF); None for a header line.

    ValueError when the line is damaged; :class:`UnknownEntry` (a
    ValueError) for a kind a later version may have added.
    """
    if line.startswith(FORMAT.encode("ascii")):
        _check_header(line)
        return None
    when, kind, rest = (line.split(b" ", 2) + [b"", b""])[:3]
    time = float(when)
    if not math.isfinite(time):
        raise ValueError("a time that is not a number")
    stream: Stream = "acd"
    if kind.startswith(b"smdr-"):
        stream, kind = "smdr", kind[5:]
        if kind not in (b"data", b"connected", b"continued", b"lost"):
            raise UnknownEntry(f"unknown entry kind smdr-{kind.decode('ascii', 'replace')!r}")
    match kind:
        case b"data":
            return Data(time, unescape(rest), stream)
        case b"connected" | b"continued":
            host, port = rest.split(b" ")
            if _NOT_TEXT.search(host) or not host:
                raise ValueError("a bad host")
            return Connected(time, host.decode("ascii"), int(port), kind == b"continued", stream)
        case b"lost":
            return Lost(time, _json_text(rest), stream)
        case b"start":
            return Started(time, _json_text(rest))
        case b"stop":
            return Stopped(time, _json_text(rest))
        case b"gap":
            entries, data_bytes, until = rest.split(b" ")
            return Gap(time, float(until), int(entries), int(data_bytes))
    if re.fullmatch(rb"[a-z][a-z0-9-]*", kind) and not any(k.startswith(kind) for k in _KINDS):
        raise UnknownEntry(f"unknown entry kind {kind.decode('ascii')!r}")
    raise ValueError("not an entry")


_KINDS = (b"data", b"connected", b"continued", b"lost", b"start", b"stop", b"gap")


def _json_text(raw: bytes) -> str:
    value = json.loads(raw)
    if not isinstance(value, str):
        raise ValueError("not a text")
    return value


def _check_header(line: bytes) -> None:
    words = line.split(b" ")
    if len(words) < 2 or words[0] != FORMAT.encode("ascii") or not words[1].isdigit():
        raise ValueError("not a capture header")
    version = int(words[1])
    if version > VERSION:
        raise CaptureError(
            f"capture format version {version} is newer than this mitelacd reads ({VERSION})"
        )


@attrs.define
class ReadReport:
    """What reading a capture file found besides its entries."""

    path: str
    entries: int = 0
    #: Lines that could not be read (a crash mid-line, followed by more): skipped.
    damaged_lines: int = 0
    #: Entries of kinds this version does not know: skipped.
    unknown_entries: int = 0
    #: Bytes after the last complete line (a file cut mid-write): not read.
    dropped_bytes: int = 0
    #: Why a compressed file ended early, or None.
    cut_short: str | None = None
    #: Line numbers of the first damaged lines, for messages.
    damaged_at: list[int] = attrs.Factory(list)

    def problems(self) -> list[str]:
        """What went wrong, in words; empty for a whole file."""
        found = []
        if self.damaged_lines:
            where = ", ".join(str(n) for n in self.damaged_at)
            more = ", ..." if self.damaged_lines > len(self.damaged_at) else ""
            found.append(f"{self.damaged_lines} damaged line(s) skipped (line {where}{more})")
        if self.unknown_entries:
            found.append(f"{self.unknown_entries} entry(ies) of an unknown kind skipped")
        if self.cut_short is not None:
            found.append(f"the compressed data ends early ({self.cut_short})")
        if self.dropped_bytes:
            found.append(f"an incomplete last line of {self.dropped_bytes} bytes dropped")
        return found


_READ_SIZE = 1 << 16
_GZIP_MAGIC = b"\x1f\x8b"


class CaptureReader:
    """The entries of one capture file, plain or gzip-compressed, read as they are needed.

    Opening checks that the file is there, readable and a capture (an empty
    file is an empty capture); :class:`CaptureError` says why not. Reading
    accepts everything up to the last complete line, and :attr:`report`
    tells what it skipped or dropped.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.report = ReadReport(path)
        try:
            raw = open(path, "rb")  # noqa: SIM115 - closed by the iteration or close()
        except OSError as e:
            raise CaptureError(f"cannot read {path}: {e.strerror or e}") from None
        self._raw = raw
        try:
            magic = raw.read(2)
            raw.seek(0)
            self._stream: io.BufferedIOBase = (
                gzip.GzipFile(fileobj=raw, mode="rb") if magic == _GZIP_MAGIC else raw
            )
            self._first = self._stream.read(len(FORMAT) + 1)
        except (OSError, EOFError, zlib.error) as e:
            raw.close()
            raise CaptureError(f"cannot read {path}: {e}") from None
        marker = FORMAT.encode("ascii") + b" "
        if not (self._first.startswith(marker) or marker.startswith(self._first)):
            # (A file cut inside its header line is an empty capture.)
            raw.close()
            raise CaptureError(f"{path} is not a mitelacd capture (no '{FORMAT}' header)")

    def close(self) -> None:
        self._raw.close()

    def __iter__(self) -> Iterator[Entry]:
        try:
            yield from self._entries()
        finally:
            self.close()

    def _entries(self) -> Iterator[Entry]:
        report = self.report
        rest = self._first
        number = 0
        while True:
            try:
                chunk = self._stream.read(_READ_SIZE)
            except (OSError, EOFError, zlib.error) as e:
                report.cut_short = str(e) or type(e).__name__
                break
            if not chunk:
                break
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for line in lines:
                number += 1
                entry = self._parse(line, number)
                if entry is not None:
                    report.entries += 1
                    yield entry
        report.dropped_bytes = len(rest)

    def _parse(self, line: bytes, number: int) -> Entry | None:
        report = self.report
        try:
            return parse_entry(line)
        except UnknownEntry:
            report.unknown_entries += 1
        except CaptureError as e:
            raise CaptureError(f"{self.path}, line {number}: {e}") from None
        except ValueError:
            report.damaged_lines += 1
            if len(report.damaged_at) < 5:
                report.damaged_at.append(number)
        return None


def first_time(path: str) -> float | None:
    """The time of a capture's first entry, or None when it has none."""
    reader = CaptureReader(path)
    try:
        for entry in reader:
            return entry.time
    finally:
        reader.close()
    return None


def write_capture(path: str, entries: Iterable[Entry], compress: bool = False) -> None:
    """Write ``entries`` as a whole capture file (for tests and tools)."""
    body = HEADER + b"".join(encode_entry(e) for e in entries)
    if compress:
        body = gzip.compress(body, mtime=0)
    with open(path, "wb") as f:
        f.write(body)


# --- file names ------------------------------------------------------------------------------

_NAME = re.compile(r"mitelacd-(\d{4}-\d{2}-\d{2})\.capture(\.gz)?")


def capture_name(day: datetime.date) -> str:
    """The name of a day's capture file while it is written; ``.gz`` is added when done."""
    return f"mitelacd-{day.isoformat()}.capture"


def capture_day(name: str) -> tuple[datetime.date, bool] | None:
    """The day a capture file's name stands for and whether it is compressed; None if not one."""
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    try:
        day = datetime.date.fromisoformat(match.group(1))
    except ValueError:
        return None
    return day, match.group(2) is not None


def compress_capture(path: str) -> tuple[int, int]:
    """Compress a finished day's file to ``<path>.gz`` and remove it; the sizes before and after.

    An existing ``.gz`` (the same day written again after it was compressed)
    is kept and the new lines are added to it as one more gzip member, which
    every gzip reader reads as one stream. The result appears under its name
    only once complete and on disk; on failure the plain file is left as it
    was and the OSError raised.
    """
    target = path + ".gz"
    tmp = target + ".tmp"
    try:
        with open(tmp, "wb") as out:
            with contextlib.suppress(FileNotFoundError), open(target, "rb") as earlier:
                shutil.copyfileobj(earlier, out)
            with (
                open(path, "rb") as plain,
                gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as packed,
            ):
                shutil.copyfileobj(plain, packed, _READ_SIZE)
            out.flush()
            os.fsync(out.fileno())
            size = out.tell()
        before = os.path.getsize(path)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.unlink(path)
    return before, size


@attrs.frozen
class SweepResult:
    """What one pass of compression and retention did."""

    compressed: list[tuple[str, int, int]]
    deleted: list[str]
    failed: list[tuple[str, str]]


def sweep(folder: str, compress: list[str], delete: list[str]) -> SweepResult:
    """Compress and delete the files named (run off the reactor thread)."""
    compressed, deleted, failed = [], [], []
    for name in compress:
        path = os.path.join(folder, name)
        try:
            before, after = compress_capture(path)
        except OSError as e:
            failed.append((name, f"{failure_kind(e)} ({e})"))
        else:
            compressed.append((name, before, after))
    for name in delete:
        try:
            os.unlink(os.path.join(folder, name))
        except FileNotFoundError:
            continue
        except OSError as e:
            failed.append((name, f"{failure_kind(e)} ({e})"))
        else:
            deleted.append(name)
    return SweepResult(compressed, deleted, failed)


# --- the recorder ----------------------------------------------------------------------------

#: How a line moves the connection at the point where it is written: opened to
#: (host, port), closed, or left as it was.
_Link = tuple[str, int] | Literal["closed", "same"]


@attrs.frozen
class _Line:
    data: bytes
    time: float
    #: The bytes read from the PBX that the line holds (data entries only).
    size: int = 0
    link: _Link = "same"
    #: The opening lines of a file and a line already partly written: never dropped.
    keep: bool = False


@attrs.frozen
class _Switch:
    """From here on, lines go to the file of ``day``."""

    day: datetime.date


@attrs.define
class _GapMark:
    """Lines dropped here, to be written as one ``gap`` entry."""

    time: float
    until: float
    entries: int = 0
    data_bytes: int = 0


_Queued = _Line | _Switch | _GapMark
Runner = Callable[[Callable[[], SweepResult]], Deferred[SweepResult]]


def _local_day(when: float) -> datetime.date:
    return datetime.date.fromtimestamp(when)


@implementer(IFloorListener)
class CaptureRecorder(Service):
    """Keep what the PBX sends in ``folder``, one file per PBX day (``--record``).

    The protocol calls :meth:`connected`, :meth:`received` (once it has
    handled the read, so that the time kept is the one its idle flush counts
    from) and :meth:`lost`.

    The day is the PBX's, from its keep-alives (the floor's ``pbx_time``):
    the read that brings the first keep-alive of a new date is the first in
    the new day's file. Until the PBX has said a date the first lines wait
    up to ``date_wait`` seconds for it, then the local date is used. Once
    the PBX has said a date the file only moves forward: a PBX clock set
    back stays in the current file. Files of days before the current one
    are compressed, and files of days ``keep_days`` or more before it (or
    before the local date, if that is earlier) deleted, at start, when the
    day changes and once a day, off the reactor thread.
    """

    def __init__(
        self,
        folder: str,
        clock: IReactorTime,
        floor: FloorState | None = None,
        keep_days: int = DEFAULT_KEEP_DAYS,
        *,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        max_pending: int = DEFAULT_MAX_PENDING,
        date_wait: float = DATE_WAIT,
        system: SystemCalls = SYSTEM,
        run: Runner | None = None,
        local_day: Callable[[float], datetime.date] = _local_day,
    ) -> None:
        if keep_days < 1:
            raise ValueError("keep_days must be 1 or more")
        self.folder = os.path.abspath(folder)
        self.floor = floor
        self.keep_days = keep_days
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self.date_wait = date_wait
        self._clock = clock
        self._system = system
        self._run = run
        self._local_day = local_day
        # What the feed appended since the last flush: (time, bytes) of a
        # read, or an entry's line, or a change of file.
        self._incoming: list[tuple[float, bytes, Stream] | _Line | _Switch] = []
        self._incoming_size = 0
        # Lines waiting to be written, in order.
        self._queue: deque[_Queued] = deque()
        self._queued_size = 0
        self._flush_call: IDelayedCall | None = None
        self._flush_soon = False
        self._stopped = True
        self._started_at = 0.0
        #: The day lines are for now; None until decided.
        self._day: datetime.date | None = None
        self._pbx_day_known = False
        self._pbx_stamp: str | None = None
        #: The day of the open (or next opened) file, and its descriptor.
        self._file_day: datetime.date | None = None
        self._fd: int | None = None
        self._fresh_day = False
        #: The connection as the lines written so far leave it.
        self._written_link: tuple[str, int] | None = None
        self._torn = False
        # Failing writes, as the data file's writer keeps them.
        self._failures = FailingWrites(clock, flush_interval, MAX_RETRY_DELAY)
        # Counters.
        self.written_bytes = 0
        self.reads = 0
        self.dropped_bytes = 0
        self.dropped_entries = 0
        self.gaps = 0
        self._dropped_since_logged = 0
        self._drop_log = Throttle(clock, burst=1, interval=60.0)
        # Compression and retention.
        self._daily: LoopingCall | None = None
        self._sweeping: Deferred[SweepResult] | None = None
        self._sweep_again = False
        self._busy_days: set[datetime.date] = set()
        self._swept_for: tuple[datetime.date, datetime.date] | None = None

    # --- what the protocol calls -------------------------------------------------------------

    def connected(self, host: str, port: int, stream: Stream = "acd") -> None:
        if self._stopped:
            return
        now = self._clock.seconds()
        entry = encode_entry(Connected(now, host, port, stream=stream))
        # Only the ACD link is announced again at the top of a new day's file:
        # an SMDR line is whole in itself and needs no connection to be read.
        self._add(_Line(entry, now, link=(host, port) if stream == "acd" else "same"))

    def received(self, data: bytes, stream: Stream = "acd") -> None:
        """One read from the PBX: appended, written later."""
        if self._stopped:
            return
        self._incoming.append((self._clock.seconds(), data, stream))
        self._incoming_size += len(data)
        if self._flush_call is None:
            self._schedule_flush(self.flush_interval)
        elif self._incoming_size > FLUSH_SOON_BYTES and not self._flush_soon:
            self._schedule_flush(0)

    def lost(self, why: str, stream: Stream = "acd") -> None:
        if self._stopped:
            return
        now = self._clock.seconds()
        entry = encode_entry(Lost(now, why, stream))
        self._add(_Line(entry, now, link="closed" if stream == "acd" else "same"))

    def of(self, stream: Stream) -> StreamCapture:
        """What a stream's protocol calls to be kept: this recorder, tagging ``stream``."""
        return StreamCapture(self, stream)

    # --- the PBX's date ----------------------------------------------------------------------

    def floorChanged(self, changes: ChangeSet) -> None:
        stamp = changes.feed.get("pbx_time")
        if not stamp or self._stopped or stamp[:10] == self._pbx_stamp:
            return
        self._pbx_stamp = stamp[:10]
        try:
            day = datetime.date.fromisoformat(stamp[:10])
        except (TypeError, ValueError):
            return
        self._day_seen(day, from_pbx=True)

    def _day_seen(self, day: datetime.date, from_pbx: bool) -> None:
        first_from_pbx = from_pbx and not self._pbx_day_known
        if from_pbx:
            self._pbx_day_known = True
        current = self._day
        if current is None:
            self._day = day
            if from_pbx:
                self._sweep()  # yesterday's file, left plain at start, is over now
            return
        if day == current or (day < current and not first_from_pbx):
            return
        if day in self._busy_days:
            return  # being compressed just now: stay in the current file
        self._day = day
        self._incoming.append(_Switch(day))
        self._schedule_flush(0)

    # --- service -----------------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._stopped = False
        now = self._started_at = self._clock.seconds()
        log.info(
            "recording the PBX stream in {folder}: a file per PBX day, compressed when the day"
            " is over, kept {days} days",
            folder=self.folder,
            days=self.keep_days,
        )
        if self.floor is not None:
            self.floor.addListener(self)
        self._add(_Line(encode_entry(Started(now, f"mitelacd {__version__}")), now, link="closed"))
        self._sweep()
        daily = self._daily = LoopingCall(self._hourly)
        daily.clock = self._clock
        daily.start(3600.0, now=False)

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        if self.floor is not None:
            with contextlib.suppress(ValueError):
                self.floor.removeListener(self)
        if self._daily is not None and self._daily.running:
            self._daily.stop()
        self._daily = None
        self._failures.cancel()
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        self._flush_call = None
        now = self._clock.seconds()
        self._add(_Line(encode_entry(Stopped(now, "stopped")), now, link="closed"), schedule=False)
        self._stopped = True
        self._encode()
        if self._file_day is None and self._day is None:
            self._day = self._local_day(now)
        self._write()
        left = self._queued_size
        if left:
            log.error(
                "stopping with {size} bytes of the capture not written ({problem})",
                size=left,
                problem=self._failures.problem,
            )
        self._close()
        sweeping = self._sweeping
        if sweeping is None:
            return None
        done: Deferred[None] = Deferred()
        sweeping.addBoth(lambda _: done.callback(None))
        return done

    def health(self) -> dict[str, Any]:
        """The capture's state, for the log and ``/api/v1/feed``."""
        return {
            "folder": self.folder,
            "file": self.current_path,
            "writing": self.failed_attempts == 0,
            "problem": self._failures.problem,
            "failing_since": iso_utc(self._failures.since),
            "failed_attempts": self.failed_attempts,
            "pending_bytes": self.pending_bytes,
            "written_bytes": self.written_bytes,
            "dropped_bytes": self.dropped_bytes,
            "gaps": self.gaps,
        }

    @property
    def current_path(self) -> str | None:
        """The file lines go to now, or None before the first is opened."""
        if self._file_day is None:
            return None
        return os.path.join(self.folder, capture_name(self._file_day))

    @property
    def pending_bytes(self) -> int:
        """Bytes captured and not yet written."""
        return self._incoming_size + self._queued_size

    # --- writing -----------------------------------------------------------------------------

    def _add(self, item: _Line, schedule: bool = True) -> None:
        self._incoming.append(item)
        self._incoming_size += len(item.data)
        if schedule and self._flush_call is None:
            self._schedule_flush(self.flush_interval)

    def _schedule_flush(self, delay: float) -> None:
        if self._stopped:
            return
        if self._flush_call is not None and self._flush_call.active():
            if delay > 0 or self._flush_soon:
                return
            self._flush_call.cancel()
        self._flush_soon = delay == 0
        self._flush_call = self._clock.callLater(delay, self.flush)

    def flush(self) -> None:
        """Write what was captured since the last time (unless writes are failing and wait)."""
        self._flush_call = None
        self._flush_soon = False
        if self._stopped:
            return
        self._encode()
        if self._failures.retrying():
            self._bound()
            return
        if not self._write():
            self._bound()

    def _encode(self) -> None:
        """Turn what the feed appended into lines."""
        incoming, self._incoming, self._incoming_size = self._incoming, [], 0
        queue = self._queue
        size = 0
        for item in incoming:
            if isinstance(item, tuple):
                when, data, stream = item
                text = b"%s %sdata %s\n" % (_time(when), _PREFIX[stream], escape(data))
                line = _Line(text, when, len(data))
                queue.append(line)
                size += len(line.data)
                self.reads += 1
            else:
                queue.append(item)
                if isinstance(item, _Line):
                    size += len(item.data)
        self._queued_size += size

    def _write(self) -> bool:
        """Write the queue out; False when a write failed (the rest stays queued)."""
        try:
            self._write_queue()
        except OSError as e:
            self._failed(e)
            return False
        if self.failed_attempts:
            self._recovered()
        return True

    def _write_queue(self) -> None:
        queue = self._queue
        while queue:
            head = queue[0]
            if isinstance(head, _Switch):
                self._switch(head.day)
                queue.popleft()
                continue
            if self._fd is None and not self._open():
                return  # the day is not known yet: wait for it
            batch: list[bytes] = []
            lines: list[_Line | _GapMark] = []
            total = 0
            for item in queue:
                if isinstance(item, _Switch) or total >= FLUSH_SOON_BYTES:
                    break
                data = item.data if isinstance(item, _Line) else self._gap_line(item)
                batch.append(data)
                lines.append(item)
                total += len(data)
            self._write_lines(b"".join(batch), lines)

    def _gap_line(self, mark: _GapMark) -> bytes:
        return encode_entry(Gap(mark.time, mark.until, mark.entries, mark.data_bytes))

    def _write_lines(self, body: bytes, lines: list[_Line | _GapMark]) -> None:
        assert self._fd is not None
        done = 0
        try:
            while done < len(body):
                done += self._system.write(self._fd, body[done:])
        finally:
            self._written(done, lines)

    def _written(self, done: int, lines: list[_Line | _GapMark]) -> None:
        """Take the first ``done`` bytes of ``lines`` off the queue."""
        self.written_bytes += done
        queue = self._queue
        for item in lines:
            if isinstance(item, _GapMark):
                length = len(self._gap_line(item))
                if done < length:
                    if done:
                        # Rare: finish the line as written, and count no gap twice.
                        rest = self._gap_line(item)[done:]
                        queue[0] = _Line(rest, item.time, link="closed", keep=True)
                        self._queued_size += len(rest)
                        self._torn = True
                        self.gaps += 1
                        self._written_link = None
                    return
                done -= length
                queue.popleft()
                self.gaps += 1
                self._written_link = None
                continue
            length = len(item.data)
            if done < length:
                if done:
                    rest = item.data[done:]
                    queue[0] = _Line(rest, item.time, item.size, item.link, keep=True)
                    self._queued_size -= done
                    self._torn = True
                return
            done -= length
            queue.popleft()
            self._queued_size -= length
            self._torn = False
            if item.link == "closed":
                self._written_link = None
            elif item.link != "same":
                self._written_link = item.link

    def _open(self) -> bool:
        """Open the file of the current day; False while the day is not known yet."""
        if self._file_day is None:
            if self._day is None:
                if self._clock.seconds() - self._started_at < self.date_wait and not self._stopped:
                    self._schedule_flush(self.flush_interval)
                    return False
                self._day = self._local_day(self._clock.seconds())
            self._file_day = self._day
            self._fresh_day = True
        path = os.path.join(self.folder, capture_name(self._file_day))
        fd = self._system.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            ends_line = size == 0 or os.pread(fd, 1, size - 1) == b"\n"
        except OSError:
            self._system.close(fd)
            raise
        self._fd = fd
        opening: list[_Line] = []
        if size == 0:
            opening.append(_Line(HEADER, 0.0, keep=True))
            if self._torn:
                # The file that held the start of the line is gone: so is the line.
                torn = self._queue.popleft()
                assert isinstance(torn, _Line)
                self._queued_size -= len(torn.data)
                self._torn = False
                self._mark_gap(0, torn)
        elif not ends_line and not self._torn:
            opening.append(_Line(b"\n", 0.0, keep=True))
        if (size == 0 or self._fresh_day) and self._written_link is not None:
            host, port = self._written_link
            when = self._next_time()
            line = encode_entry(Connected(when, host, port, continued=True))
            opening.append(_Line(line, when, keep=True))
        self._fresh_day = False
        for first in reversed(opening):
            self._queue.appendleft(first)
            self._queued_size += len(first.data)
        if size == 0:
            log.info("capture file {path} started", path=path)
        return True

    def _next_time(self) -> float:
        for item in self._queue:
            if isinstance(item, (_Line, _GapMark)) and item.time:
                return item.time
        return self._clock.seconds()

    def _switch(self, day: datetime.date) -> None:
        """Close the file of the day that is over and go on in ``day``'s."""
        self._close()
        previous, self._file_day = self._file_day, day
        self._fresh_day = True
        if previous is not None:
            log.info(
                "the PBX date is {day}: capture file {previous} is closed",
                day=day.isoformat(),
                previous=os.path.join(self.folder, capture_name(previous)),
            )
        self._sweep()

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                self._system.close(fd)

    # --- a failing disk ----------------------------------------------------------------------

    @property
    def failed_attempts(self) -> int:
        """Failed attempts since the last write that worked."""
        return self._failures.attempts

    def _failed(self, error: OSError) -> None:
        problem = self._failures.failed(error, self._clock.seconds())
        # Reopened for the next attempt: the folder may be back by then.
        self._close()
        if problem is not None:
            log.error(
                "cannot write the capture in {folder}: {problem} ({error}); what the PBX"
                " sends is kept in memory (up to {bound} MiB) and writing is retried,"
                " at most {max_delay} s apart",
                folder=self.folder,
                problem=problem,
                error=error,
                bound=self.max_pending >> 20,
                max_delay=int(MAX_RETRY_DELAY),
            )
        if not self._stopped:
            self._failures.retry(self.flush)

    def _recovered(self) -> None:
        attempts, lasted = self._failures.ended(self._clock.seconds())
        if self._dropped_since_logged:
            lost = f"{self._dropped_since_logged} bytes from the PBX were dropped (marked as a gap)"
        else:
            lost = "nothing was lost"
        log.info(
            "the capture in {folder} is written again, after {attempts} failed attempt(s)"
            " over {duration}; {lost}",
            folder=self.folder,
            attempts=attempts,
            duration=duration_words(lasted),
            lost=lost,
        )
        self._dropped_since_logged = 0

    def _bound(self) -> None:
        """Drop the oldest lines while more than ``max_pending`` bytes wait."""
        queue = self._queue
        dropped_now = 0
        index = 0
        while self._queued_size > self.max_pending and index < len(queue):
            item = queue[index]
            if not isinstance(item, _Line) or item.keep:
                index += 1
                continue
            del queue[index]
            self._queued_size -= len(item.data)
            dropped_now += item.size
            index = self._mark_gap(index, item)
        if dropped_now:
            self._dropped_since_logged += dropped_now
            allowed, _held = self._drop_log.allow()
            if allowed:
                log.warn(
                    "the capture cannot be written and over {bound} MiB wait: dropping the"
                    " oldest ({dropped} bytes from the PBX so far); a gap is marked in the file",
                    bound=self.max_pending >> 20,
                    dropped=self.dropped_bytes,
                )

    def _mark_gap(self, index: int, line: _Line) -> int:
        """Count ``line`` as dropped at ``index``; the index after the gap mark."""
        queue = self._queue
        self.dropped_entries += 1
        self.dropped_bytes += line.size
        before = queue[index - 1] if index > 0 else None
        if isinstance(before, _GapMark):
            before.until = max(before.until, line.time)
            before.entries += 1
            before.data_bytes += line.size
            return index
        queue.insert(index, _GapMark(line.time, line.time, 1, line.size))
        return index + 1

    # --- compression and retention -----------------------------------------------------------

    def _hourly(self) -> None:
        today = self._local_day(self._clock.seconds())
        if not self._pbx_day_known and self._day is not None:
            self._day_seen(today, from_pbx=False)
        if self._swept_for != (self._reference_day(), today):
            self._sweep()

    def _reference_day(self) -> datetime.date:
        return self._day if self._day is not None else self._local_day(self._clock.seconds())

    def _sweep(self) -> None:
        """Compress the days that are over and delete those past ``keep_days``."""
        if self._sweeping is not None:
            self._sweep_again = True
            return
        current = self._reference_day()
        today = self._local_day(self._clock.seconds())
        self._swept_for = (current, today)
        # A PBX behind the local clock may still be on yesterday's date.
        compress_before = current - datetime.timedelta(days=0 if self._pbx_day_known else 1)
        # Counted from the earlier of the two dates, so that a PBX clock set
        # years ahead cannot empty the folder.
        delete_upto = min(current, today) - datetime.timedelta(days=self.keep_days)
        try:
            names = os.listdir(self.folder)
        except OSError as e:
            log.warn("cannot list {folder}: {error}", folder=self.folder, error=e)
            return
        compress, delete, busy = [], [], set()
        for name in sorted(names):
            found = capture_day(name)
            if found is None:
                continue
            day, packed = found
            if day == self._file_day or day == self._day:
                continue
            if day <= delete_upto:
                delete.append(name)
                busy.add(day)
            elif not packed and day < compress_before:
                compress.append(name)
                busy.add(day)
        if not compress and not delete:
            return
        self._busy_days = busy
        job = self._runner()(lambda: sweep(self.folder, compress, delete))
        self._sweeping = job
        job.addCallbacks(self._swept, self._sweep_failed)

    def _runner(self) -> Runner:
        if self._run is not None:
            return self._run
        reactor: Any = self._clock
        return lambda work: threads.deferToThreadPool(reactor, reactor.getThreadPool(), work)

    def _swept(self, result: SweepResult) -> None:
        for name, before, after in result.compressed:
            log.info(
                "compressed capture {name} ({before} kB to {after} kB)",
                name=os.path.join(self.folder, name + ".gz"),
                before=before // 1024,
                after=after // 1024,
            )
        for name in result.deleted:
            log.info(
                "deleted capture {name}: older than {days} days",
                name=os.path.join(self.folder, name),
                days=self.keep_days,
            )
        for name, problem in result.failed:
            log.error(
                "cannot compress or delete capture {name}: {problem}; tried again later",
                name=os.path.join(self.folder, name),
                problem=problem,
            )
        self._after_sweep()

    def _sweep_failed(self, failure: Any) -> None:
        log.failure("capture compression failed", failure)
        self._after_sweep()

    def _after_sweep(self) -> None:
        self._sweeping = None
        self._busy_days = set()
        if self._sweep_again and not self._stopped:
            self._sweep_again = False
            self._sweep()


@attrs.frozen
class StreamCapture:
    """A :class:`CaptureRecorder` as one stream's protocol sees it (``recorder.of("smdr")``)."""

    recorder: CaptureRecorder
    stream: Stream

    def connected(self, host: str, port: int) -> None:
        self.recorder.connected(host, port, self.stream)

    def received(self, data: bytes) -> None:
        self.recorder.received(data, self.stream)

    def lost(self, why: str) -> None:
        self.recorder.lost(why, self.stream)
