"""Shared test fixtures: logged failures fail the test that caused them."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from twisted.logger import globalLogPublisher


@pytest.fixture(autouse=True)
def logged_failures(request: pytest.FixtureRequest) -> Iterator[list[dict[str, Any]]]:
    """Collect ``log.failure`` events and unhandled Deferred errors.

    pytest-twisted does not fail a test on them by itself. A test that
    expects a failure takes this fixture and empties the list.
    """
    failures: list[dict[str, Any]] = []

    def observer(event: dict[str, Any]) -> None:
        if "log_failure" in event:
            failures.append(event)

    globalLogPublisher.addObserver(observer)
    try:
        yield failures
        gc.collect()  # unhandled Deferred errors are logged on collection
    finally:
        globalLogPublisher.removeObserver(observer)
    if failures:
        details = "\n".join(e["log_failure"].getTraceback() for e in failures)
        pytest.fail(f"{len(failures)} failure(s) were logged:\n{details}", pytrace=False)
