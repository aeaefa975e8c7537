"""A log observer for running under systemd: one plain line per event.

    twistd --nodaemon --pidfile= --logger mitelacd.logs.journal mitelacd ...

journald stamps the time itself, so lines carry none; the syslog-style
``<N>`` prefix gives each line its priority. Debug events are left out.
"""

from __future__ import annotations

import sys
from typing import IO, Any

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
)
from zope.interface import implementer

_PRIORITY = {
    LogLevel.debug: 7,
    LogLevel.info: 6,
    LogLevel.warn: 4,
    LogLevel.error: 3,
    LogLevel.critical: 2,
}


@implementer(ILogObserver)
class JournalLineObserver:
    """Write ``<priority>message`` lines, with the traceback of a failure."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def __call__(self, event: dict[str, Any]) -> None:
        priority = _PRIORITY.get(event.get("log_level", LogLevel.info), 6)
        text = formatEvent(event)
        failure = event.get("log_failure")
        if failure is not None:
            text = f"{text}\n{failure.getTraceback()}"
        for line in text.rstrip("\n").splitlines() or [""]:
            self._stream.write(f"<{priority}>{line}\n")
        self._stream.flush()


def journal(stream: IO[str] | None = None, level: LogLevel = LogLevel.info) -> ILogObserver:
    """The observer factory named by ``--logger mitelacd.logs.journal``."""
    return FilteringLogObserver(
        JournalLineObserver(stream or sys.stdout),
        [LogLevelFilterPredicate(defaultLogLevel=level)],
    )
