"""Shared test fixtures and the suite's rules (tests/README.md).

* A logged failure, or a Deferred error nobody handled, fails the test that
  caused it.
* The markers ``browser`` (drives Chromium) and ``processes`` (starts
  twistd or another program, or uses a real PostgreSQL): ``pytest -m "not
  browser and not processes"`` is the inner loop. A test that starts a
  process without the ``processes`` marker fails, so the inner loop stays
  free of them.

tests/test_suite_rules.py shows both rules at work.
"""

from __future__ import annotations

import gc
import itertools
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.logger import ILogObserver, globalLogPublisher
from zope.interface import implementer

from mitelacd.testing import Twistd
from mitelacd.testing.postgres import PostgresMissing, PostgresServer

#: pytester runs small test files under these rules (tests/test_suite_rules.py).
pytest_plugins = ["pytester"]

# --- markers ------------------------------------------------------------------------
# Modules of their own mark themselves (``pytestmark``, or ``@pytest.mark.processes``
# on a test). A test taking one of PROCESS_FIXTURES is marked here, and so are the
# tests of these other modules that start processes, by module or by test name
# (parameters left out); the rule below keeps the list honest.

#: Fixtures that start processes or stand for a real PostgreSQL.
PROCESS_FIXTURES = ("processes", "postgres_server")
#: Parametrized fixtures whose parameter says PostgreSQL (they ask for postgres_server then).
PROCESS_PARAMS = {"history_url": "postgresql"}
#: Modules whose every test starts processes.
PROCESS_MODULES = (
    "test_end_to_end.py",
    "test_packaging.py",
    "test_plugincache.py",
    "test_reports_end_to_end.py",
)
#: Single tests that start processes, in the modules not listed above.
PROCESS_TESTS = {
    "test_bench.py": ("test_the_suite_lists_its_phases",),
    "test_history.py": ("test_postgresql_stopped_mid_day_loses_nothing",),
    "test_history_safety.py": ("test_postgresql_down_at_stop_loses_nothing",),
    "test_history_tools.py": ("test_the_console_script_is_installed",),
    "test_openfiles.py": (
        "test_under_a_low_limit_event_clients_beyond_the_cap_get_503_and_the_rest_keeps_working",
    ),
    "test_sdnotify.py": (
        "test_daemon_tells_systemd",
        "test_daemon_serves_a_socket_from_systemd",
        "test_a_systemd_endpoint_without_a_socket_is_a_usage_error",
    ),
    "test_systemd_unit.py": (
        "test_verify_is_clean",
        "test_verify_complains_of_a_missing_twistd",
        "test_security_exposure_is_ok",
        "test_a_usage_error_is_not_restarted",
    ),
    "test_tap.py": (
        "test_twistd_help_lists_the_plugins",
        "test_a_usage_error_exits_64_and_says_what_is_wrong",
        "test_a_bad_environment_for_the_tac_file_exits_64",
        "test_a_failure_that_is_not_a_usage_error_is_not_64",
        "test_version_is_mitelacds",
    ),
    "test_tls.py": (
        "test_twistd_without_the_tls_extra_exits_64_naming_it",
        "test_twistd_serves_https",
    ),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.path.name
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec is not None else {}
        name = getattr(item, "originalname", item.name)
        if (
            module in PROCESS_MODULES
            or name in PROCESS_TESTS.get(module, ())
            or any(f in getattr(item, "fixturenames", ()) for f in PROCESS_FIXTURES)
            or any(params.get(f) == value for f, value in PROCESS_PARAMS.items())
        ):
            item.add_marker(pytest.mark.processes)


class ProcessNotMarked(Exception):
    """A test not marked ``processes`` tried to start a process."""


@pytest.fixture(autouse=True)
def processes_are_marked(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test not marked ``processes`` (or ``browser``) that starts a process fails.

    Process starts are caught where Python makes them: ``subprocess.Popen``
    and ``os.fork``/``posix_spawn``/``posix_spawnp`` (Twisted's
    ``spawnProcess``). Module- and session-scoped fixtures start before
    this: a test taking ``postgres_server`` is marked by its fixture.
    """
    node = request.node
    if node.get_closest_marker("processes") or node.get_closest_marker("browser"):
        yield
        return
    tried: list[str] = []

    def refuse(what: str) -> None:
        tried.append(what)
        raise ProcessNotMarked(
            f"{node.nodeid} started a process ({what}) but is not marked processes:"
            " mark it (tests/README.md) so that the inner loop leaves it out"
        )

    popen_init = subprocess.Popen.__init__

    def guarded_popen(self: subprocess.Popen[Any], args: Any, *rest: Any, **kw: Any) -> None:
        refuse(f"subprocess.Popen({args!r})")

    originals = {name: getattr(os, name) for name in ("fork", "posix_spawn", "posix_spawnp")}

    def guarded(name: str) -> Callable[..., Any]:
        def start(*args: Any, **kw: Any) -> Any:
            refuse(f"os.{name}{args[:2]!r}")

        return start

    subprocess.Popen.__init__ = guarded_popen  # type: ignore[method-assign]
    for name in originals:
        setattr(os, name, guarded(name))
    try:
        yield
    finally:
        subprocess.Popen.__init__ = popen_init  # type: ignore[method-assign]
        for name, original in originals.items():
            setattr(os, name, original)
    call = node.stash.get(CALL_REPORT, None)
    if tried and call is not None and call.passed:  # refused where the test did not see it
        pytest.fail(f"started a process but is not marked processes: {tried}", pytrace=False)


CALL_REPORT = pytest.StashKey[pytest.TestReport]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[CALL_REPORT] = report
    return report


@implementer(ILogObserver)
class FailureCollector:
    """Keeps the events that carry a failure."""

    def __init__(self) -> None:
        self.failures: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> None:
        if "log_failure" in event:
            self.failures.append(event)


def fail_on(failures: list[dict[str, Any]], where: str = "") -> None:
    if failures:
        details = "\n".join(e["log_failure"].getTraceback() for e in failures)
        pytest.fail(f"{len(failures)} failure(s) were logged{where}:\n{details}", pytrace=False)


def collect_new_garbage() -> None:
    """Collect every object made since the last call that is now garbage, and only those.

    Twisted logs an unhandled Deferred error when the failed Deferred is
    collected (``DebugInfo.__del__``), and a failure's traceback usually
    makes a reference cycle, so only the cyclic collector finds it. A full
    ``gc.collect()`` walks every object Python tracks: with the suite's
    imports (Twisted, SQLAlchemy, hypothesis, selenium) that took 0.15 s a
    test, 200 s of the whole suite. What survives a collection is frozen
    (``gc.freeze()``: never walked again), so each collection walks only the
    objects made since: all of them, whatever generation they reached.
    """
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def logged_failures(request: pytest.FixtureRequest) -> Iterator[list[dict[str, Any]]]:
    """Collect ``log.failure`` events and unhandled Deferred errors.

    pytest-twisted does not fail a test on them by itself. A test that
    expects a failure takes this fixture and empties the list.
    """
    observer = FailureCollector()
    globalLogPublisher.addObserver(observer)
    try:
        yield observer.failures
        collect_new_garbage()
    finally:
        globalLogPublisher.removeObserver(observer)
    fail_on(observer.failures)


@pytest.fixture(autouse=True, scope="module")
def garbage_of_the_module(request: pytest.FixtureRequest) -> Iterator[None]:
    """At the end of each module (after its module-scoped fixtures): a full collection.

    An object frozen while in use (held by a module-scoped fixture, or
    by a test to the next) that became garbage later is found here: the
    frozen objects are thawed, everything is collected, and what survives
    is frozen again. An unhandled error found here fails the module's
    last test, at its teardown.
    """
    yield
    # pytest lets go of the fixture values its tests took only after this.
    for item in request.session.items:
        if item.path == request.path and getattr(item, "funcargs", None):
            item.funcargs.clear()  # type: ignore[attr-defined]
    observer = FailureCollector()
    globalLogPublisher.addObserver(observer)
    try:
        gc.unfreeze()
        collect_new_garbage()
    finally:
        globalLogPublisher.removeObserver(observer)
    fail_on(observer.failures, " by the end of the module")


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


_databases = itertools.count(1)


@pytest.fixture(params=["sqlite", "postgresql"])
def history_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty history database, on each backend in turn (a SQLite file, or
    a database of its own in the session's PostgreSQL server)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'history.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    name = f"{module}_{next(_databases)}"
    url = server.create_database(name)
    try:
        yield url
    finally:
        server.drop_database(name)
