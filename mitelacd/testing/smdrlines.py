"""SMDR lines laid out by hand, column by column, as smdr-protocol.md §3.1 places them.

:func:`standard_line` makes a 90-column standard record of an ACD path call
(answered by default), :func:`abandoned_line` an unanswered one, and
:func:`lay` any line from texts at Mitel's 1-based columns;
:data:`SYNTHETIC` holds the synthetic records of smdr-protocol.md §9.2.
"""

from __future__ import annotations

#: The synthetic records of smdr-protocol.md §9.2 (S1 to S12), exact widths.
SYNTHETIC: dict[int, str] = {
    1: " 03/11 08:16  00:02:14 T012  004 P860 610 611 610            1001                    001  ",
    2: " 03/11 08:17  00:00:41 T013  *** P860 610 611                                        001  ",
    3: " 03/11 08:18  00:00:03 T014  *** P860 610 611                                        001  ",
    4: " 03/11 08:20  00:01:05 T015  *** P860 610 611                    I 2500              001  ",
    5: " 01/14 09:24  00:00:59 T201  003 P001 100 100                1011T 1405              001  ",
    6: "%03/11 09:02  00:12:40 T016  017 P123 030 031 032 031        1009                    001  ",
    7: " 03/11 10:05  00:00:32 2002      2001                      I 2001                    001  ",
    8: " 03/11 08:16  00:02:14 T012 0004 P860 610 611 610            1001                    001  ",
    9: " 03/11 08:16  0000:02:14 T0012   0004 P860 610 611 610            100101                        001   6135550142 5550100",
    10: " 03/11 08:17  0000:00:41 T0013   **** P860 610 611                                              001   6135550199 5550100",
    11: " 03/11 08:25  00:00:00 T017  *** P860 610 611                    U 2600              001  ",
    12: " 03/11 08:30  00:00:22 T018  *** P860 610 611                1002R                   001  ",
}  # fmt: skip


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
