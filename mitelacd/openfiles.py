"""The open file limit: raised as far as it goes at start, and the room it leaves for event streams.

Every event stream client holds a socket for as long as it stays. Under the
usual soft limit of 1,024 open files, a thousand of them leave nothing for
the PBX link, the data file, the history and the other HTTP requests:
accepting fails with EMFILE, and ``/healthz`` and the API go down with the
rest. So, at start:

* the soft limit is raised to the hard limit (``LimitNOFILE=`` in the
  systemd unit sets both; ``ulimit -Hn`` shows the hard one), and the log
  says what it is;
* the event stream clients served at once are at most the soft limit less
  :data:`RESERVE`, and at most the configured cap; the ones beyond get a
  503 (:class:`mitelacd.web.resources.Events`).
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from typing import Any

import attrs

from mitelacd.logs import Logger

log = Logger()

#: Descriptors kept for everything but event stream clients. The daemon
#: itself holds about 20 (the PBX link, the listening port, the data file's
#: lock, a SQLite history's three files, a capture file, the event loop's
#: own, standard streams) and a few more for moments (writing the data file,
#: compressing a capture, reading the names file, a PostgreSQL link); the
#: rest is for other HTTP requests: boards polling ``/mitel_data.json`` and
#: the API, ``/healthz``, ``/metrics`` and reports, each a socket while it lasts.
RESERVE = 128
#: A reactor built on ``select()`` cannot watch descriptors from 1,024 on:
#: its soft limit is raised no further.
SELECT_LIMIT = 1024
#: What to raise the soft limit to when the hard one is unlimited (not on Linux).
UNLIMITED_TARGET = 65536

GetLimit = Callable[[int], tuple[int, int]]
SetLimit = Callable[[int, tuple[int, int]], None]


@attrs.frozen
class Limits:
    """Where the open file limit is read and set: this process's, or a test's stand-in."""

    getrlimit: GetLimit = resource.getrlimit
    setrlimit: SetLimit = resource.setrlimit


@attrs.frozen
class OpenFiles:
    """The open file limit the daemon runs with."""

    soft: int
    hard: int
    #: The soft limit the daemon was started with.
    before: int
    #: The descriptors it can use: the soft limit, or less when the reactor cannot watch more.
    usable: int

    def push_clients(self, most: int) -> int:
        """Event stream clients that fit: ``most`` at most, with :data:`RESERVE` left over."""
        return max(0, min(most, self.usable - RESERVE))


def _shown(limit: int) -> str:
    return "unlimited" if limit == resource.RLIM_INFINITY else str(limit)


def _count(limit: int) -> int:
    """A limit as a number to compare: unlimited is more than any."""
    return 1 << 62 if limit == resource.RLIM_INFINITY else limit


def raise_open_files(limits: Limits | None = None, ceiling: int | None = None) -> OpenFiles:
    """Raise the soft limit of open files to the hard limit (or ``ceiling``), and say so."""
    limits = Limits() if limits is None else limits
    soft, hard = limits.getrlimit(resource.RLIMIT_NOFILE)
    before = soft
    target = UNLIMITED_TARGET if hard == resource.RLIM_INFINITY else hard
    if ceiling is not None:
        target = min(target, ceiling)
    if _count(soft) < target:
        try:
            limits.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (OSError, ValueError) as e:
            log.warn(
                "open files: cannot raise the soft limit from {soft} to {target} ({error});"
                " it stays {soft}",
                soft=soft,
                target=target,
                error=e,
            )
        else:
            soft, hard = limits.getrlimit(resource.RLIMIT_NOFILE)
            log.info(
                "open files: soft limit raised from {before} to {soft} (hard limit {hard})",
                before=before,
                soft=_shown(soft),
                hard=_shown(hard),
            )
    else:
        log.info(
            "open files: soft limit {soft} (hard limit {hard})",
            soft=_shown(soft),
            hard=_shown(hard),
        )
    usable = _count(soft) if ceiling is None else min(_count(soft), ceiling)
    return OpenFiles(soft=soft, hard=hard, before=before, usable=usable)


def ceiling_of(reactor: Any) -> int | None:
    """The most descriptors ``reactor`` can watch, when it has a limit of its own."""
    from twisted.internet.selectreactor import SelectReactor

    return SELECT_LIMIT if isinstance(reactor, SelectReactor) else None


def at_start(reactor: Any, limits: Limits | None = None) -> OpenFiles:
    """The daemon's open files: the soft limit raised as far as the hard one and ``reactor`` allow."""
    return raise_open_files(limits, ceiling_of(reactor))


def push_client_cap(files: OpenFiles, most: int) -> int:
    """The event stream clients to serve at once (at most ``most``), said in the log."""
    clients = files.push_clients(most)
    if clients < most:
        log.warn(
            "open files: room for {clients} event stream clients, not {most}: {reserve} of"
            " the {usable} open files allowed are kept for the PBX link, the files, the"
            " history and other HTTP requests; raise the limit (LimitNOFILE=) for more",
            clients=clients,
            most=most,
            reserve=RESERVE,
            usable=files.usable,
        )
    else:
        log.info(
            "up to {clients} event stream clients at once, {left} open files left for the rest",
            clients=clients,
            left=files.usable - clients,
        )
    return clients
