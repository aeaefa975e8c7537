"""Logging: the journald-friendly observer behind ``--logger mitelacd.logs.journal``,
and the ``--log-level`` gate of mitelacd's own loggers."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from twisted.internet.task import Clock
from twisted.logger import Logger as TwistedLogger
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.python import log as legacy_log

from mitelacd import logs
from mitelacd.logs import journal, render
from mitelacd.testing import LogCapture


def test_lines_carry_a_priority_and_no_time_stamp() -> None:
    out = io.StringIO()
    log = TwistedLogger(observer=journal(out, flush_delay=0))
    log.info("agent {agent} logged in at {dn}", agent="1001", dn="2001")
    log.warn("record number jumped from {a:02d} to {b:02d}", a=98, b=3)
    assert (
        out.getvalue() == "<6>agent 1001 logged in at 2001\n<4>record number jumped from 98 to 03\n"
    )


def test_info_lines_are_buffered_and_a_warning_flushes_at_once() -> None:
    out, clock = io.StringIO(), Clock()
    log = TwistedLogger(observer=journal(out, flush_delay=0.1, reactor=clock))
    for n in range(1000):
        log.info("agent {agent} is idle", agent=n)
    assert out.getvalue() == ""  # a burst costs no write yet...
    assert len(clock.getDelayedCalls()) == 1  # ...and one flush is due
    clock.advance(0.1)
    assert out.getvalue().count("\n") == 1000
    log.info("agent {agent} is idle", agent="last")
    log.error("cannot write {path}", path="/x")
    assert out.getvalue().endswith("<6>agent last is idle\n<3>cannot write /x\n")


def test_debug_is_left_out_unless_asked_for() -> None:
    out = io.StringIO()
    TwistedLogger(observer=journal(out, flush_delay=0)).debug("keep-alive")
    assert out.getvalue() == ""
    TwistedLogger(observer=journal(out, level=LogLevel.debug, flush_delay=0)).debug("keep-alive")
    assert out.getvalue() == "<7>keep-alive\n"


def test_a_failure_brings_its_traceback_at_the_same_priority() -> None:
    out = io.StringIO()
    log = TwistedLogger(observer=journal(out, flush_delay=0))
    try:
        raise ValueError("bad record")
    except ValueError:
        log.failure("handling failed")
    lines = out.getvalue().splitlines()
    assert lines[0] == "<2>handling failed"
    assert lines[-1] == "<2>builtins.ValueError: bad record"
    assert all(line.startswith("<2>") for line in lines)


@pytest.mark.parametrize(
    "form, fields",
    [
        ("agent {agent} logged in at {dn}", {"agent": "1001", "dn": "2001"}),
        ("jumped from {last:02d} to {seq:02d}", {"last": 98, "seq": 3}),
        ("unreadable input: {raw!r}", {"raw": b"\x02zz"}),
        ("a call {thing()}", {"thing": lambda: "made"}),  # Twisted's own extension
        ("missing {nothing}", {}),
        ("braces {{literal}} {x}", {"x": 1}),
    ],
)
def test_fast_rendering_says_what_twisted_says(form: str, fields: dict[str, Any]) -> None:
    event = {"log_format": form, **fields}
    assert render(event) == formatEvent(event)


@pytest.fixture
def level() -> Iterator[None]:
    yield
    logs.set_level(LogLevel.debug)


def test_log_level_drops_events_before_they_are_built(level: None) -> None:
    seen = LogCapture("mitelacd.levels")
    log = logs.Logger(namespace="mitelacd.levels", observer=seen)
    logs.set_level(logs.level_named("warn"))
    log.info("agent {agent} is idle", agent="1001")
    log.warn("stale")
    assert [e["log_format"] for e in seen.events] == ["stale"]
    assert not logs.enabled(LogLevel.info) and logs.enabled(LogLevel.error)
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        logs.level_named("loud")


ACCEPT_FAILED = "Could not accept new connection ({acceptError})"


def test_accept_failures_get_through_once_a_minute_with_a_count_of_the_rest() -> None:
    """As Twisted's tcp.Port logs them while out of file descriptors: 5,913 in 35 s."""
    out, clock = io.StringIO(), Clock()
    port_log = TwistedLogger(
        namespace="twisted.internet.tcp.Port", observer=journal(out, flush_delay=0, reactor=clock)
    )
    for _ in range(5913):
        port_log.info(ACCEPT_FAILED, acceptError="EMFILE")
        clock.advance(35 / 5913)
    assert out.getvalue() == "<6>Could not accept new connection (EMFILE)\n"
    clock.advance(24.9)  # 59.9 s after the first
    port_log.info(ACCEPT_FAILED, acceptError="EMFILE")
    assert out.getvalue().count("\n") == 1
    clock.advance(0.2)
    port_log.info(ACCEPT_FAILED, acceptError="EMFILE")
    port_log.info(ACCEPT_FAILED, acceptError="EMFILE")
    assert out.getvalue().splitlines() == [
        "<6>Could not accept new connection (EMFILE)",
        "<6>Could not accept new connection (EMFILE) (5913 more like it held back"
        " in the 60 s before)",
    ]
    clock.advance(600)  # a line after a quiet spell says nothing of the one held back
    port_log.info(ACCEPT_FAILED, acceptError="ENFILE")
    assert out.getvalue().splitlines()[-1] == (
        "<6>Could not accept new connection (ENFILE) (1 more like it held back in the 600 s before)"
    )


def test_other_lines_and_each_kind_of_repeat_are_not_held_back_by_another() -> None:
    out, clock = io.StringIO(), Clock()
    observer = journal(out, flush_delay=0, reactor=clock)
    log = TwistedLogger(namespace="twisted.internet.tcp.Port", observer=observer)
    for _ in range(3):
        log.info("EMFILE encountered; releasing reserved file descriptor.")
        log.info("EMFILE recovery: Closed socket from {address}", address=("127.0.0.1", 4))
        log.info(ACCEPT_FAILED, acceptError="EMFILE")
        log.info("agent {agent} is idle", agent="1001")
    assert out.getvalue().splitlines() == [
        "<6>EMFILE encountered; releasing reserved file descriptor.",
        "<6>EMFILE recovery: Closed socket from ('127.0.0.1', 4)",
        "<6>Could not accept new connection (EMFILE)",
        "<6>agent 1001 is idle",
        "<6>agent 1001 is idle",
        "<6>agent 1001 is idle",
    ]


def test_the_legacy_log_is_limited_too() -> None:
    """A ``twisted.python.log.msg`` line, as older Twisted's ports wrote it, reaches us as text."""
    out, clock = io.StringIO(), Clock()
    observer = journal(out, flush_delay=0, reactor=clock)
    globalLogPublisher.addObserver(observer)
    try:
        for _ in range(100):
            legacy_log.msg("Could not accept new connection (EMFILE)")
    finally:
        globalLogPublisher.removeObserver(observer)
    assert out.getvalue() == "<6>Could not accept new connection (EMFILE)\n"
