"""Logging that a burst of PBX records cannot be slowed down by.

Three pieces:

* :class:`Logger`, used by every mitelacd module: a ``twisted.logger.Logger``
  that drops events below the daemon's ``--log-level`` before any event is
  built, so a line nobody will read costs one comparison.
* :class:`Throttle`, for a line a hostile stream could repeat without end
  (an unparsable record, a refused write): a burst of them per interval,
  and a count of the rest.
* :func:`journal`, the observer behind ``--logger mitelacd.logs.journal``
  for running under systemd: one plain ``<priority>message`` line per event
  (journald stamps the time itself), written through a buffer that is
  flushed a moment after the last line, at once for warnings and worse, and
  at exit. Debug events are left out, and the lines a listening port logs
  on every try while out of file descriptors get through once a minute.

    twistd --nodaemon --pidfile= --logger mitelacd.logs.journal mitelacd ...
"""

from __future__ import annotations

import atexit
import sys
import time
from typing import IO, Any

from twisted.internet.interfaces import IReactorTime
from twisted.logger import ILogObserver, LogLevel, formatEvent
from twisted.logger import Logger as _TwistedLogger
from zope.interface import implementer

#: Names accepted by ``--log-level``.
LEVEL_NAMES = ("debug", "info", "warn", "error", "critical")

_RANK = {
    LogLevel.debug: 0,
    LogLevel.info: 1,
    LogLevel.warn: 2,
    LogLevel.error: 3,
    LogLevel.critical: 4,
}
_PRIORITY = {
    LogLevel.debug: 7,
    LogLevel.info: 6,
    LogLevel.warn: 4,
    LogLevel.error: 3,
    LogLevel.critical: 2,
}

# Twisted's level constants read as Any (constantly's descriptors are
# untyped); this table says what they are.
_BY_NAME: dict[str, LogLevel] = {level.name: level for level in _RANK}

_PREFIX = {priority: f"<{priority}>" for priority in range(8)}

#: The least severe level mitelacd's own loggers emit.
_threshold = _RANK[LogLevel.debug]


def set_level(level: LogLevel) -> None:
    """Make every mitelacd logger drop events below ``level`` (``--log-level``)."""
    global _threshold
    _threshold = _RANK[level]


def level_named(name: str) -> LogLevel:
    """The LogLevel for a ``--log-level`` value; ValueError for anything else."""
    level = _BY_NAME.get(name)
    if level is None:
        raise ValueError(f"unknown log level {name!r} (one of {', '.join(LEVEL_NAMES)})")
    return level


def enabled(level: LogLevel) -> bool:
    """Whether an event at ``level`` would be emitted at all."""
    return _RANK[level] >= _threshold


class Logger(_TwistedLogger):
    """A Logger that emits nothing below the daemon's ``--log-level``.

    It builds the same events as Twisted's, less the check that the level
    is one of LogLevel's (which costs more than the rest of an event).
    """

    def emit(self, level: LogLevel, format: str | None = None, **kwargs: object) -> None:
        rank = _RANK.get(level)
        if rank is None:
            super().emit(level, format, **kwargs)  # Twisted says what is wrong with it
            return
        if rank < _threshold:
            return
        kwargs.update(
            log_logger=self,
            log_level=level,
            log_namespace=self.namespace,
            log_source=self.source,
            log_format=format,
            log_time=time.time(),
        )
        if "log_trace" in kwargs:
            kwargs["log_trace"].append((self, self.observer))  # type: ignore[attr-defined]
        self.observer(kwargs)


def render(event: dict[str, Any]) -> str:
    """The text of an event: ``str.format_map`` when it can, Twisted's formatter otherwise.

    The two agree on the plain PEP 3101 formats this project logs with; only
    Twisted's extras (``{method()}``, a missing field) need the slow path.
    """
    form = event.get("log_format")
    if form is not None:
        try:
            return str(form.format_map(event))
        except Exception:
            pass
    return formatEvent(event)


class Throttle:
    """Let a burst of log lines through per interval; count the rest."""

    def __init__(self, clock: IReactorTime, burst: int = 5, interval: float = 60.0):
        self._clock = clock
        self._burst = burst
        self._interval = interval
        self._window_start = -interval
        self._used = 0
        self.suppressed = 0

    def allow(self) -> tuple[bool, int]:
        """Whether to log now, and how many lines were held back before it."""
        now = self._clock.seconds()
        if now - self._window_start >= self._interval:
            self._window_start = now
            self._used = 0
        if self._used < self._burst:
            self._used += 1
            held, self.suppressed = self.suppressed, 0
            return True, held
        self.suppressed += 1
        return False, 0


#: Lines that Twisted's listening ports log on every attempt to accept while
#: the process is out of file descriptors (EMFILE) or buffers, by how they
#: begin: thousands a second, as the port is readable again at once.
REPEATED_LINES = (
    "Could not accept new connection",
    "EMFILE encountered; releasing reserved file descriptor",
    "EMFILE recovery: Closed socket from",
    "Re-reserving EMFILE recovery file descriptor",
)
#: One line of each kind of :data:`REPEATED_LINES` gets through per this many seconds.
REPEAT_INTERVAL = 60.0


class RepeatLimiter:
    """Lets one line of each kind through per ``interval`` seconds and counts the rest.

    The next line let through of a kind says how many were held back since
    the last one. Times are whatever clock the caller reads.
    """

    def __init__(
        self, interval: float = REPEAT_INTERVAL, kinds: tuple[str, ...] = REPEATED_LINES
    ) -> None:
        self.interval = interval
        self.kinds = kinds
        self._shown: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def kind(self, text: str) -> str | None:
        """The kind of a line that is limited; None for every other line."""
        return next((kind for kind in self.kinds if text.startswith(kind)), None)

    def admit(self, kind: str, text: str, now: float) -> str | None:
        """The line to write for ``text`` of ``kind`` at ``now``; None when it is held back."""
        last = self._shown.get(kind)
        if last is not None and now - last < self.interval:
            self._held[kind] = self._held.get(kind, 0) + 1
            return None
        self._shown[kind] = now
        held = self._held.pop(kind, 0)
        if held and last is not None:
            return f"{text} ({held} more like it held back in the {now - last:.0f} s before)"
        return text


@implementer(ILogObserver)
class JournalLineObserver:
    """Write ``<priority>message`` lines, with the traceback of a failure.

    Events below ``level`` are left out. Lines are buffered. ``flush_delay`` seconds after the first unflushed
    line (on the reactor given, or the global one) they are written out, so a
    burst of thousands of lines costs one write; a warning or worse flushes
    at once, and so does the end of the process.

    Lines that a listening port repeats while out of file descriptors
    (:data:`REPEATED_LINES`) are let through once a minute, on the same
    reactor's clock; the next one says how many were held back.
    """

    def __init__(
        self,
        stream: IO[str],
        flush_delay: float = 0.1,
        reactor: Any = None,
        level: LogLevel = LogLevel.info,
    ) -> None:
        self._stream = stream
        self._least = _RANK[level]
        self._flush_delay = flush_delay
        self._reactor = reactor
        self._buffer: list[str] = []
        self._scheduled = False
        self._repeats = RepeatLimiter()
        atexit.register(self.flush)

    def __call__(self, event: dict[str, Any]) -> None:
        level = event.get("log_level", LogLevel.info)
        if _RANK.get(level, 4) < self._least:
            return
        priority = _PRIORITY.get(level, 6)
        text = render(event)
        failure = event.get("log_failure")
        if failure is not None:
            text = f"{text}\n{failure.getTraceback()}"
        else:
            kind = self._repeats.kind(text)
            if kind is not None:
                admitted = self._repeats.admit(kind, text, self._clock().seconds())
                if admitted is None:
                    return
                text = admitted
        prefix = _PREFIX[priority]
        if "\n" in text:
            self._buffer.extend(prefix + line + "\n" for line in text.rstrip("\n").splitlines())
        else:
            self._buffer.append(prefix + text + "\n")
        if priority <= 4 or self._flush_delay <= 0:
            self.flush()
        elif not self._scheduled:
            self._schedule()

    def _clock(self) -> Any:
        """The reactor given, or the global one (looked up when first needed)."""
        if self._reactor is None:
            from twisted.internet import reactor as global_reactor

            self._reactor = global_reactor
        return self._reactor

    def _schedule(self) -> None:
        self._scheduled = True
        self._clock().callLater(self._flush_delay, self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if self._buffer:
            lines, self._buffer = self._buffer, []
            try:
                self._stream.write("".join(lines))
                self._stream.flush()
            except (OSError, ValueError):
                pass  # a closed stdout at exit: nowhere left to say it


def journal(
    stream: IO[str] | None = None,
    level: LogLevel = LogLevel.info,
    flush_delay: float = 0.1,
    reactor: Any = None,
) -> ILogObserver:
    """The observer factory named by ``--logger mitelacd.logs.journal``."""
    return JournalLineObserver(stream or sys.stdout, flush_delay, reactor, level)
