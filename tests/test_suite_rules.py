"""The suite's own rules (tests/conftest.py), shown on small test files run by pytester.

* A logged failure, or a Deferred whose error nobody handled, fails the test
  that caused it, although the per-test collection only walks the objects
  made since the last one (``gc.freeze()``); what a module-scoped fixture or
  a later test let go is found by the full collection at the module's end.
* A test that starts a process without the ``processes`` marker fails.

The rules are loaded into the inner run as a plugin (a copy of conftest.py
under another name, so as not to clash with this run's ``conftest`` module).
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")

#: Tests, each leaving a failure the rules must find, and two that must pass.
FAILURES = """
import gc

import pytest
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

kept = []


def failed(why):
    d = Deferred()
    d.errback(ValueError(why))
    d.cycle = d  # only the cyclic collector frees it, as a traceback's frames do
    return d


def test_clean():
    d = Deferred()
    d.addErrback(lambda f: None)
    d.errback(ValueError("handled"))


def test_unhandled():
    failed("unhandled in a cycle")


def test_unhandled_after_surviving_collections():
    d = failed("unhandled after three collections")
    for _ in range(3):
        gc.collect()  # now in the oldest generation
    del d


def test_logged():
    Logger().failure("boom", Failure(ValueError("logged with log.failure")))


def test_expected(logged_failures):
    Logger().failure("boom", Failure(ValueError("expected")))
    assert len(logged_failures) == 1
    logged_failures.clear()


def test_keeps_one_for_later():
    kept.append(failed("kept by one test, let go by the next"))


def test_lets_it_go():
    kept.clear()  # frozen at the end of the test before: found at the module's end
"""

MODULE_FIXTURE = """
import pytest
from twisted.internet.defer import Deferred


@pytest.fixture(scope="module")
def holder():
    d = Deferred()
    d.errback(ValueError("let go by a module-scoped fixture"))
    d.cycle = d
    yield d


def test_uses_it(holder):
    assert holder.called
"""

PROCESSES = """
import subprocess

import pytest


def test_unmarked():
    subprocess.run(["true"], check=True)


@pytest.mark.processes
def test_marked():
    subprocess.run(["true"], check=True)
"""


def run_with_the_rules(
    pytester: pytest.Pytester, logged_failures: list[dict[str, Any]], **files: str
) -> pytest.RunResult:
    """``files`` run in this process under a copy of the rules.

    The inner run shares this process's garbage collector and log: what is
    left over is collected before it, and what it logged is taken after.
    """
    pytester.makepyfile(suite_rules=CONFTEST.read_text(), **files)
    pytester.syspathinsert()
    gc.unfreeze()
    gc.collect()
    assert logged_failures == []
    # Without pytest-twisted (no reactor is needed), hypothesis and a cache.
    result = pytester.runpytest_inprocess(
        *("-p", "suite_rules", "-p", "no:twisted", "-p", "no:hypothesispytest"),
        *("-p", "no:cacheprovider", "-rA"),
    )
    logged_failures.clear()
    return result


def teardown_errors(result: pytest.RunResult) -> str:
    return "\n".join(line for line in result.outlines if line.startswith("ERROR "))


def test_unhandled_errors_and_logged_failures_fail_their_test(
    pytester: pytest.Pytester, logged_failures: list[dict[str, Any]]
) -> None:
    result = run_with_the_rules(pytester, logged_failures, test_failures=FAILURES)
    errors = teardown_errors(result)
    # Each failing test by its own teardown; the one let go late, at the module's end.
    for name in ("test_unhandled", "test_unhandled_after_surviving_collections", "test_logged"):
        assert f"ERROR test_failures.py::{name} - " in errors, result.stdout.str()
    assert "ERROR test_failures.py::test_lets_it_go - " in errors, result.stdout.str()
    assert errors.count("ERROR ") == 4, errors
    result.assert_outcomes(passed=7, errors=4)
    text = result.stdout.str()
    for why in (
        "unhandled in a cycle",
        "unhandled after three collections",
        "logged with log.failure",
        "kept by one test, let go by the next",
    ):
        assert f"ValueError: {why}" in text, text
    assert "failure(s) were logged by the end of the module" in text


def test_what_a_module_scoped_fixture_lets_go_is_found(
    pytester: pytest.Pytester, logged_failures: list[dict[str, Any]]
) -> None:
    result = run_with_the_rules(pytester, logged_failures, test_fixture=MODULE_FIXTURE)
    result.assert_outcomes(passed=1, errors=1)
    assert "ERROR test_fixture.py::test_uses_it - " in teardown_errors(result)
    assert "ValueError: let go by a module-scoped fixture" in result.stdout.str()


@pytest.mark.processes
def test_a_process_started_without_the_marker_fails(
    pytester: pytest.Pytester, logged_failures: list[dict[str, Any]]
) -> None:
    result = run_with_the_rules(pytester, logged_failures, test_processes=PROCESSES)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_unmarked*", "*not marked processes*"])
