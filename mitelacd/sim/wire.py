"""The fake ICP's wire: exact record bytes, record numbers, terminators and faults.

* The ``encode_*`` functions give one record exactly as docs/protocol.md
  lays it out (benchmarks build their streams from them too).
* :class:`Wire` is one outgoing stream. It numbers the records, ends them
  with the chosen terminator, injects the faults a real link shows (NULs,
  line noise, numbering gaps, duplicates), counts what it injected in
  :class:`FaultCounts`, and keeps what it has said about groups, paths and
  agents: the part of the ground truth that the floor does not hold.

Faults come from a random generator of their own, so the same seed gives the
same day on the floor whatever the terminator or fault settings.
"""

from __future__ import annotations

import datetime
import random
import string
from collections.abc import Callable
from typing import Literal

import attrs

Eol = Literal["crlf", "lf", "cr", "none"]
#: What ends a record for each ``--eol``; with ``none`` the next STX does.
TERMINATORS: dict[Eol, bytes] = {"crlf": b"\r\n", "lf": b"\n", "cr": b"\r", "none": b""}
EOLS: tuple[Eol, ...] = ("crlf", "lf", "cr", "none")
CRLF = TERMINATORS["crlf"]
STX = b"\x02"

#: Codes that change nothing when applied a second time in a row (state-model
#: §3): the only records sent twice, since a listener applies a duplicate
#: again. J and P remove a call, and the second one would remove the rest.
REPEATABLE = frozenset("ABCDEFGHILMNOSTU") | {"K", "Q", "R"}

# How often each fault comes, per record.
GAP_RATE = 0.01
DUPLICATE_RATE = 0.012
NUL_RATE = 0.03
NOISE_RATE = 0.006
#: Line noise is drawn from these: no STX, no LF, nothing a framer strips.
_GARBAGE = string.ascii_letters + string.punctuation


# --- one record -----------------------------------------------------------------


def _header(recnum: int, code: str, when: datetime.datetime) -> bytes:
    if not 0 <= recnum <= 99:
        raise ValueError(f"record number out of range: {recnum}")
    return b"\x02%02d%s%s" % (recnum, code.encode("ascii"), when.strftime("%H%M%S").encode("ascii"))


def mmss(seconds: float) -> str:
    """Longest-wait field: ``MMSS``, clamped at ``9959`` (4 digits are all there is)."""
    whole = max(0, int(seconds))
    minutes, secs = divmod(whole, 60)
    return "9959" if minutes > 99 else f"{minutes:02d}{secs:02d}"


def encode_call_event(
    recnum: int,
    code: str,
    when: datetime.datetime,
    dn: str,
    agent: str,
    button: int,
    path: str | None = None,
    *,
    end: bytes = CRLF,
) -> bytes:
    """A call event; ``agent=""`` gives the 7 blanks of an extension event."""
    if len(dn) > 7 or len(agent) > 7 or not 0 <= button <= 99:
        raise ValueError(f"field too wide: dn={dn!r} agent={agent!r} button={button}")
    if path is not None and not (len(path) == 3 and path.isdigit()):
        raise ValueError(f"path must be 3 digits: {path!r}")
    tail = b"%02d%s" % (button, (path or "").encode("ascii"))
    return (
        _header(recnum, code, when)
        + dn.ljust(7).encode("ascii")
        + agent.ljust(7).encode("ascii")
        + tail
        + end
    )


def encode_stats(
    recnum: int,
    code: str,
    when: datetime.datetime,
    number: str,
    waiting: int,
    agents: int,
    longest: float,
    *,
    trailing: bool = True,
    end: bytes = CRLF,
) -> bytes:
    """A K (group) or Q (path) report.

    ``trailing`` adds the 7 zeros seen after the figures on non-networked
    systems; the live capture of a group showed none, so both must be read.
    """
    if code not in ("K", "Q") or not (len(number) == 3 and number.isdigit()):
        raise ValueError(f"bad statistics record: {code!r} {number!r}")
    if not (0 <= waiting <= 999 and 0 <= agents <= 999):
        raise ValueError(f"counts must fit 3 digits: {waiting} {agents}")
    body = b"%s%03d%03d%s%s" % (
        number.encode("ascii"),
        waiting,
        agents,
        mmss(longest).encode("ascii"),
        b"0000000" if trailing else b"",
    )
    return _header(recnum, code, when) + body + end


def encode_refresh(recnum: int, when: datetime.datetime, *, end: bytes = CRLF) -> bytes:
    """The R keep-alive: time, then ``YYYYMMDD``."""
    return _header(recnum, "R", when) + when.strftime("%Y%m%d").encode("ascii") + end


# --- one stream -------------------------------------------------------------------


@attrs.define
class FaultCounts:
    """What a :class:`Wire` injected so far."""

    #: Jumps in the record numbers.
    gaps: int = 0
    #: Numbers skipped over by those jumps (no record was lost).
    records_skipped: int = 0
    #: Records sent twice in a row under the same number.
    duplicates: int = 0
    #: Short lines of garbage before a record.
    noise_lines: int = 0
    #: Runs of NUL bytes between records, and their bytes; a listener drops them silently.
    nul_runs: int = 0
    nul_bytes: int = 0

    def feed_counters(self) -> dict[str, int]:
        """What a listener must have counted, under the names of ``/api/v1/feed``.

        Valid only when the listener heard the stream from its first record:
        numbering is checked against the record before.
        """
        return {
            "sequence_gaps": self.gaps,
            "records_missed": self.records_skipped,
            "sequence_duplicates": self.duplicates,
            "sequence_resyncs": 0,
            "noise": self.noise_lines,
        }


class Wire:
    """One outgoing stream, and what it has told a listener so far."""

    def __init__(
        self,
        seed: int,
        start: datetime.datetime,
        eol: Eol = "crlf",
        faults: bool = False,
        noise: bool = False,
        *,
        stream: str = "",
    ) -> None:
        """``stream`` names one of a site's streams: its faults are drawn apart from the others'."""
        if eol not in TERMINATORS:
            raise ValueError(f"eol must be one of {', '.join(EOLS)}, not {eol!r}")
        self.start, self.eol, self.end = start, eol, TERMINATORS[eol]
        self.faults, self.noise = faults, noise
        self.counts = FaultCounts()
        #: Records sent, duplicates included.
        self.records = 0
        #: Agent IDs some record named, first mention first.
        self.named: dict[str, None] = {}
        #: The last K and Q figures sent, as the legacy view holds them.
        self.groups: dict[str, dict[str, str]] = {}
        self.paths: dict[str, dict[str, str]] = {}
        self._rng = random.Random(
            f"wire faults {seed} {stream}" if stream else f"wire faults {seed}"
        )
        self._recnum = 0
        self._out: list[bytes] = []

    def when(self, t: float) -> datetime.datetime:
        """PBX wall-clock time at simulated second ``t``."""
        return self.start + datetime.timedelta(seconds=int(t))

    def stop_faults(self) -> None:
        """A clean stream from here on, so counters can be compared at leisure."""
        self.faults = self.noise = False

    def take(self) -> bytes:
        """The bytes sent since the last take."""
        chunk = b"".join(self._out)
        self._out.clear()
        return chunk

    # --- records ---------------------------------------------------------------

    def call_event(
        self, t: float, code: str, dn: str, agent: str, button: int, path: str | None = None
    ) -> None:
        when, end = self.when(t), self.end
        self._send(
            code,
            lambda n: encode_call_event(n, code, when, dn, agent, button, path, end=end),
        )
        if agent:
            self.named[agent] = None

    def stats(
        self,
        t: float,
        code: str,
        number: str,
        waiting: int,
        agents: int,
        longest: float,
        trailing: bool,
    ) -> None:
        when, end = self.when(t), self.end
        self._send(
            code,
            lambda n: encode_stats(
                n, code, when, number, waiting, agents, longest, trailing=trailing, end=end
            ),
        )
        (self.groups if code == "K" else self.paths)[number] = {
            "waiting": f"{waiting:03d}",
            "agents": f"{agents:03d}",
            "longestwait": mmss(longest),
        }

    def refresh(self, t: float) -> None:
        when, end = self.when(t), self.end
        self._send("R", lambda n: encode_refresh(n, when, end=end))

    def _send(self, code: str, encode: Callable[[int], bytes]) -> None:
        rng, counts, out = self._rng, self.counts, self._out
        if self.noise:
            if rng.random() < NUL_RATE:
                run = rng.randint(1, 8)
                out.append(b"\x00" * run)
                counts.nul_runs += 1
                counts.nul_bytes += run
            if rng.random() < NOISE_RATE:
                out.append(self._noise_line())
                counts.noise_lines += 1
        # Never before the first record: a listener has nothing to measure a gap from.
        if self.faults and self.records and rng.random() < GAP_RATE:
            skipped = rng.randint(1, 3)
            self._recnum = (self._recnum + skipped) % 100
            counts.gaps += 1
            counts.records_skipped += skipped
        record = encode(self._recnum)
        self._recnum = (self._recnum + 1) % 100
        out.append(record)
        self.records += 1
        if self.faults and code in REPEATABLE and rng.random() < DUPLICATE_RATE:
            out.append(record)
            counts.duplicates += 1
            self.records += 1

    def _noise_line(self) -> bytes:
        """A short line of garbage, never containing an STX.

        A listener ends a record only at LF or at the next STX (state-model
        §1), so with a terminator that has no LF the garbage starts on a new
        line; otherwise it would be read as the end of the record before it.
        """
        garbage = "".join(self._rng.choice(_GARBAGE) for _ in range(self._rng.randint(3, 24)))
        lead = b"" if self.end.endswith(b"\n") else b"\n"
        return lead + garbage.encode("ascii") + self.end
