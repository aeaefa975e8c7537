"""The journald-friendly observer behind ``--logger mitelacd.logs.journal``."""

from __future__ import annotations

import io

from twisted.logger import Logger, LogLevel

from mitelacd.logs import journal


def test_lines_carry_a_priority_and_no_time_stamp() -> None:
    out = io.StringIO()
    log = Logger(observer=journal(out))
    log.info("agent {agent} logged in at {dn}", agent="1001", dn="2001")
    log.warn("record number jumped from {a:02d} to {b:02d}", a=98, b=3)
    assert (
        out.getvalue() == "<6>agent 1001 logged in at 2001\n<4>record number jumped from 98 to 03\n"
    )


def test_debug_is_left_out_unless_asked_for() -> None:
    out = io.StringIO()
    Logger(observer=journal(out)).debug("keep-alive")
    assert out.getvalue() == ""
    Logger(observer=journal(out, level=LogLevel.debug)).debug("keep-alive")
    assert out.getvalue() == "<7>keep-alive\n"


def test_a_failure_brings_its_traceback_at_the_same_priority() -> None:
    out = io.StringIO()
    log = Logger(observer=journal(out))
    try:
        raise ValueError("bad record")
    except ValueError:
        log.failure("handling failed")
    lines = out.getvalue().splitlines()
    assert lines[0] == "<2>handling failed"
    assert lines[-1] == "<2>builtins.ValueError: bad record"
    assert all(line.startswith("<2>") for line in lines)
