"""``python -m mitelacd.plugincache``: bring Twisted's plugin cache up to date.

twistd finds ``twistd mitelacd`` by scanning the ``twisted/plugins`` folders
of the environment, and keeps what it found in a ``dropin.cache`` file in
each. After ``pip install`` (or an upgrade) that file is missing or older
than the plugins, and twistd writes it again at its next start. Run as the
daemon's own user in an environment it may not write to (a root-owned
virtual environment, ``ProtectSystem=strict``), it cannot, and every start
logs ``Unable to write to plugin cache ... error number 13``.

Running this once as the owner of the environment, after installing,
writes the cache; twistd then finds it fresh and writes nothing. The
systemd unit runs it with full privileges before each start, so that an
upgrade without this step heals itself; it writes only when something
changed. Exit status 0 when every cache is fresh, 1 when one could not be
written (the reason is printed).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import attrs
from twisted.logger import ILogObserver, formatEvent, globalLogPublisher
from twisted.python.filepath import FilePath
from twisted.python.modules import getModule
from zope.interface import implementer

from mitelacd.cli import EXIT_USAGE

#: The name of the cache file Twisted keeps in each plugins folder.
CACHE_NAME = "dropin.cache"


@attrs.frozen
class CacheReport:
    """What a refresh did to each plugins folder's cache."""

    #: Caches that were already fresh.
    fresh: tuple[str, ...]
    #: Caches that were (re)written.
    written: tuple[str, ...]
    #: What went wrong, in words: caches that could not be written, plugins that did not load.
    problems: tuple[str, ...]


def cache_files() -> list[FilePath[str]]:
    """The ``dropin.cache`` of every folder that holds ``twisted.plugins`` modules."""
    folders: dict[str, FilePath[str]] = {}
    for module in getModule("twisted.plugins").iterModules():
        folder = module.filePath.parent()
        folders.setdefault(folder.path, folder)
    return [folder.child(CACHE_NAME) for folder in folders.values()]


@implementer(ILogObserver)
class _Problems:
    """The complaints Twisted logs while it scans: failed writes, plugins that fail to load."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, event: dict[str, Any]) -> None:
        failure = event.get("log_failure")
        text = formatEvent(event)
        if failure is not None:
            self.lines.append(f"{text}: {failure.getErrorMessage()}".lstrip(": "))
        elif "plugin cache" in text:
            self.lines.append(text)


def refresh() -> CacheReport:
    """Scan the plugins as twistd does, writing each cache that is missing or stale."""
    from twisted.plugin import getCache

    import twisted.plugins

    before = {cache.path: _stamp(cache) for cache in cache_files()}
    problems = _Problems()
    globalLogPublisher.addObserver(problems)
    try:
        getCache(twisted.plugins)
    finally:
        globalLogPublisher.removeObserver(problems)
    fresh, written = [], []
    for path, stamp in before.items():
        if _stamp(FilePath(path)) != stamp:
            written.append(path)
        elif not any(path in line for line in problems.lines):
            fresh.append(path)
    return CacheReport(tuple(fresh), tuple(written), tuple(problems.lines))


def _stamp(cache: FilePath[str]) -> tuple[float, int] | None:
    cache.restat(reraise=False)
    if not cache.exists():
        return None
    return cache.getModificationTime(), cache.getsize()


def main(argv: Sequence[str] | None = None) -> int:
    """Refresh the caches and say what was done; 1 if something went wrong."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args:
        print(
            "usage: python -m mitelacd.plugincache (no arguments)\n"
            "Write Twisted's plugin cache, so that twistd need not (see docs/install.md).",
            file=sys.stderr,
        )
        return EXIT_USAGE
    report = refresh()
    for path in report.written:
        print(f"written: {path}")
    for path in report.fresh:
        print(f"up to date: {path}")
    for line in report.problems:
        print(f"mitelacd.plugincache: {line}", file=sys.stderr)
    return 1 if report.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
