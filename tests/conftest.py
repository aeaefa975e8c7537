"""Shared test fixtures: logged failures fail the test that caused them."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.logger import ILogObserver, globalLogPublisher
from zope.interface import implementer

from mitelacd.testing import Twistd
from mitelacd.testing.postgres import PostgresMissing, PostgresServer


@implementer(ILogObserver)
class FailureCollector:
    """Keeps the events that carry a failure."""

    def __init__(self) -> None:
        self.failures: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> None:
        if "log_failure" in event:
            self.failures.append(event)


@pytest.fixture(autouse=True)
def logged_failures(request: pytest.FixtureRequest) -> Iterator[list[dict[str, Any]]]:
    """Collect ``log.failure`` events and unhandled Deferred errors.

    pytest-twisted does not fail a test on them by itself. A test that
    expects a failure takes this fixture and empties the list.
    """
    observer = FailureCollector()
    failures = observer.failures
    globalLogPublisher.addObserver(observer)
    try:
        yield failures
        gc.collect()  # unhandled Deferred errors are logged on collection
    finally:
        globalLogPublisher.removeObserver(observer)
    if failures:
        details = "\n".join(e["log_failure"].getTraceback() for e in failures)
        pytest.fail(f"{len(failures)} failure(s) were logged:\n{details}", pytrace=False)


@pytest.fixture
def processes() -> Iterator[Callable[..., Twistd]]:
    """Start ``twistd`` children; each is stopped when the test ends."""
    started: list[Twistd] = []

    def start(*argv: str, cwd: Path) -> Twistd:
        started.append(Twistd(*argv, cwd=cwd))
        return started[-1]

    yield start
    for child in reversed(started):
        child.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session, in a temporary folder; gone at the end.

    Without PostgreSQL's programs the tests that need it fail (they are
    never skipped), saying which package to install.
    """
    try:
        server = PostgresServer()
    except PostgresMissing as e:
        pytest.fail(str(e), pytrace=False)
    try:
        server.start()
        yield server
    finally:
        server.close()
