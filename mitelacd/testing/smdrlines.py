"""SMDR lines laid out by hand, column by column, as smdr-protocol.md §3.1 places them.

:func:`standard_line` makes a 90-column standard record of an ACD path call
(answered by default), :func:`abandoned_line` an unanswered one, and
:func:`lay` any line from texts at Mitel's 1-based columns.
"""

from __future__ import annotations


def lay(width: int, at: dict[int, str]) -> str:
    """A line of ``width`` blanks with each text put at its 1-based column."""
    line = [" "] * width
    for column, text in at.items():
        line[column - 1 : column - 1 + len(text)] = text
    return "".join(line)


def standard_line(
    start: str,
    *,
    tta: str = "004",
    called: str = "1001",
    duration: str = "00:02:14",
    calling: str = "T012",
    digits: str = "P860 610 611 610",
    transfer: str = "",
    third: str = "",
    date: str = "03/11",
) -> str:
    """A 90-character standard record (§3.1): by default path 860 answered by agent 1001."""
    return lay(
        90,
        {
            2: date,
            8: start,
            15: duration,
            24: calling,
            30: tta,
            34: digits,
            62: called,
            66: transfer,
            68: third,
            86: "001",
        },
    )


def abandoned_line(start: str, duration: str, **fields: str) -> str:
    """An unanswered path call: ``***``, no agent (§9.2 S2)."""
    return standard_line(
        start, tta="***", called="", duration=duration, digits="P860 610 611", **fields
    )
