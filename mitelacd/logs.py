"""Logging that a burst of PBX records cannot be slowed down by.

Two pieces:

* :class:`Logger`, used by every mitelacd module: a ``twisted.logger.Logger``
  that drops events below the daemon's ``--log-level`` before any event is
  built, so a line nobody will read costs one comparison.
* :func:`journal`, the observer behind ``--logger mitelacd.logs.journal``
  for running under systemd: one plain ``<priority>message`` line per event
  (journald stamps the time itself), written through a buffer that is
  flushed a moment after the last line, at once for warnings and worse, and
  at exit. Debug events are left out.

    twistd --nodaemon --pidfile= --logger mitelacd.logs.journal mitelacd ...
"""

from __future__ import annotations

import atexit
import sys
import time
from typing import IO, Any

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


@implementer(ILogObserver)
class JournalLineObserver:
    """Write ``<priority>message`` lines, with the traceback of a failure.

    Events below ``level`` are left out. Lines are buffered. ``flush_delay`` seconds after the first unflushed
    line (on the reactor given, or the global one) they are written out, so a
    burst of thousands of lines costs one write; a warning or worse flushes
    at once, and so does the end of the process.
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
        prefix = _PREFIX[priority]
        if "\n" in text:
            self._buffer.extend(prefix + line + "\n" for line in text.rstrip("\n").splitlines())
        else:
            self._buffer.append(prefix + text + "\n")
        if priority <= 4 or self._flush_delay <= 0:
            self.flush()
        elif not self._scheduled:
            self._schedule()

    def _schedule(self) -> None:
        reactor = self._reactor
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = self._reactor = global_reactor
        self._scheduled = True
        reactor.callLater(self._flush_delay, self.flush)

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
