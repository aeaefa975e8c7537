"""The names file (``--names FILE``): what the PBX does not say, in one TOML file.

The stream gives agent IDs, group and path reporting numbers and reason
codes; people read names. The file gives agents their names (and team and
groups: the stream never says who belongs to which group), names groups and
paths, puts words on make-busy and DND reason codes, and sets the levels at
which a queue, or an agent in one state, needs attention. docs/names.md
describes it with a complete example.

A bad file is refused as a whole, with the line that is wrong: at start the
daemon does not start, on a reload the names loaded before stay. The
:class:`NamesWatcher` reloads the file when it changes on disk and on SIGHUP.

The file also holds the site's settings for the SMDR figures (state-model §8):
``[service_level]`` (the service level target, per path if need be, and the
short-abandon threshold) and ``[smdr]`` (``confirmed``: the site has checked
the SMDR markers on its own capture). They are read here, with the rest of
the file; :func:`mitelacd.reports.smdrsettings.smdr_settings` turns them into
what the SMDR figures take.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from types import FrameType, MappingProxyType
from typing import Any, Literal, cast

import attrs
from twisted.application.service import Service
from twisted.internet.interfaces import IReactorFromThreads, IReactorTime
from twisted.internet.task import LoopingCall

from mitelacd.logs import Logger

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

log = Logger()

Level = Literal["ok", "warning", "alarm"]
AgentState = Literal[
    "logged_out", "available", "ringing", "on_call", "on_hold", "wrap_up", "not_ready"
]
AGENT_STATES: tuple[AgentState, ...] = (
    "logged_out",
    "available",
    "ringing",
    "on_call",
    "on_hold",
    "wrap_up",
    "not_ready",
)
#: The states ``[thresholds.agents]`` may limit (time logged out needs no attention).
LIMITED_STATES: tuple[AgentState, ...] = (
    "ringing",
    "on_call",
    "on_hold",
    "wrap_up",
    "not_ready",
    "available",
)

_RANK: dict[Level, int] = {"ok": 0, "warning": 1, "alarm": 2}

TABLES = (
    "agents",
    "groups",
    "paths",
    "make_busy_reasons",
    "dnd_reasons",
    "thresholds",
    "service_level",
    "smdr",
)
_AGENT_KEYS = ("name", "team", "groups")
_QUEUE_KEYS = ("waiting", "longest_wait")
_THRESHOLD_KEYS = (*_QUEUE_KEYS, "groups", "paths", "agents")
_SERVICE_LEVEL_KEYS = ("seconds", "short_abandon_seconds", "paths")
_PATH_SERVICE_LEVEL_KEYS = ("seconds",)
_SMDR_KEYS = ("confirmed",)

#: The default service level target: answered within 20 s (state-model §8).
SERVICE_LEVEL_SECONDS = 20
#: The default short-abandon threshold, MiContact Center's (state-model §8).
SHORT_ABANDON_SECONDS = 6
#: The longest target or short-abandon threshold the file takes: one hour.
MAX_SMDR_SECONDS = 3600

_AGENT_ID = re.compile(r"[0-9]{1,7}")
#: A group or path reporting number, as the PBX sends it: three digits, ``"007"``.
_QUEUE_NUMBER = re.compile(r"[0-9]{3}")
_DIGITS = re.compile(r"[0-9]+")
#: A reporting number of each kind, for the messages.
_NUMBER_EXAMPLES = {"group": "610", "path": "860"}
_REASON_CODE = re.compile(r"[0-9]+")


def worse(a: Level, b: Level) -> Level:
    """The level that needs more attention of the two."""
    return a if _RANK[a] >= _RANK[b] else b


def _is_number(value: object) -> bool:
    # TOML booleans are Python bools, which are ints: a level of ``true`` is a mistake.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _shown(value: object) -> str:
    """A value as TOML writes it, for a message."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (int, float)):
        return repr(value)
    return f"a {type(value).__name__}"


def _seconds_problem(value: object, low: int) -> str | None:
    """What is wrong with a number of whole seconds from ``low`` up to an hour, or None."""
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= MAX_SMDR_SECONDS:
        return None
    return f"must be whole seconds from {low} to {MAX_SMDR_SECONDS}, not {_shown(value)}"


def _limits_problem(warning: object, alarm: object) -> str | None:
    """What is wrong with a pair of levels, or None."""
    if not (_is_number(warning) and _is_number(alarm)):
        return "must be a pair of numbers [warning, alarm]"
    low, high = cast(float, warning), cast(float, alarm)
    if low < 0 or high < 0:
        return "must not be negative"
    if low > high:
        return f"has its warning {low} above its alarm {high}"
    return None


@attrs.frozen
class Limits:
    """The value at which something deserves a look, and the one at which it needs action."""

    warning: float
    alarm: float

    def __attrs_post_init__(self) -> None:
        problem = _limits_problem(self.warning, self.alarm)
        if problem is not None:
            raise ValueError(f"Limits({self.warning!r}, {self.alarm!r}) {problem}")

    def level(self, value: float | None) -> Level:
        """``alarm`` from the alarm value up, ``warning`` from the warning value; unknown is ok."""
        if value is None:
            return "ok"
        if value >= self.alarm:
            return "alarm"
        if value >= self.warning:
            return "warning"
        return "ok"


def _level(limits: Limits | None, value: float | None) -> Level:
    return "ok" if limits is None else limits.level(value)


@attrs.frozen
class QueueThresholds:
    """The levels of one queue (group or path): calls waiting and the longest wait."""

    waiting: Limits | None = None
    longest_wait: Limits | None = None

    def level(self, waiting: int | None, longest_wait_seconds: int | None) -> Level:
        """The worse of the two: one long wait needs attention however short the queue."""
        return worse(_level(self.waiting, waiting), _level(self.longest_wait, longest_wait_seconds))


NO_THRESHOLDS = QueueThresholds()


@attrs.frozen
class AgentEntry:
    """What the file says about one agent; any of it may be missing."""

    name: str | None = None
    team: str | None = None
    groups: tuple[str, ...] = ()


def _frozen(mapping: Mapping[Any, Any]) -> Mapping[Any, Any]:
    """A read-only copy: one Names is shared by everything that shows it."""
    return MappingProxyType(dict(mapping))


def _group_members(agents: Mapping[str, AgentEntry]) -> Mapping[str, tuple[str, ...]]:
    members: dict[str, list[str]] = {}
    for agent_id, entry in agents.items():
        for group in entry.groups:
            members.setdefault(group, []).append(agent_id)
    return MappingProxyType({group: tuple(ids) for group, ids in members.items()})


@attrs.frozen
class ServiceLevelSettings:
    """``[service_level]``: what the SMDR figures count against (state-model §8).

    ``seconds``: a call answered within this many seconds is answered within
    target, unless its path has its own in ``paths`` (by path reporting
    number, three digits as the PBX sends it). ``short_abandon_seconds``: a
    call abandoned within this many seconds is a short abandon, not counted
    as abandoned. Whole seconds; the target from 1, the threshold from 0, both
    up to :data:`MAX_SMDR_SECONDS`.
    """

    seconds: int = SERVICE_LEVEL_SECONDS
    short_abandon_seconds: int = SHORT_ABANDON_SECONDS
    paths: Mapping[str, int] = attrs.field(factory=dict, converter=_frozen)

    def __attrs_post_init__(self) -> None:
        checks = [
            ("seconds", self.seconds, 1),
            ("short_abandon_seconds", self.short_abandon_seconds, 0),
        ]
        checks += [(f"paths[{path!r}]", value, 1) for path, value in self.paths.items()]
        for name, value, low in checks:
            problem = _seconds_problem(value, low)
            if problem is not None:
                raise ValueError(f"ServiceLevelSettings {name} {problem}")

    def target(self, path: str) -> int:
        """The service level target of ``path``, in seconds."""
        return self.paths.get(path, self.seconds)


DEFAULT_SERVICE_LEVEL = ServiceLevelSettings()


@attrs.frozen
class Names:
    """Everything one names file says, checked; :data:`NO_NAMES` when there is no file.

    Group and path numbers are kept as written; reason codes are keyed by
    their value, as the stream gives them. ``group_thresholds`` and
    ``path_thresholds`` hold the levels in force for each queue the file
    names, the default already filled in key by key.
    """

    agents: Mapping[str, AgentEntry] = attrs.field(factory=dict, converter=_frozen)
    groups: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen)
    paths: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen)
    make_busy_reasons: Mapping[int, str] = attrs.field(factory=dict, converter=_frozen)
    dnd_reasons: Mapping[int, str] = attrs.field(factory=dict, converter=_frozen)
    default_thresholds: QueueThresholds = NO_THRESHOLDS
    group_thresholds: Mapping[str, QueueThresholds] = attrs.field(factory=dict, converter=_frozen)
    path_thresholds: Mapping[str, QueueThresholds] = attrs.field(factory=dict, converter=_frozen)
    agent_limits: Mapping[AgentState, Limits] = attrs.field(factory=dict, converter=_frozen)
    #: ``[service_level]``: the SMDR figures' target and short-abandon threshold.
    service_level: ServiceLevelSettings = DEFAULT_SERVICE_LEVEL
    #: ``[smdr] confirmed``: the site has checked its SMDR capture, so the
    #: SMDR figures are no longer provisional.
    smdr_confirmed: bool = False
    #: The file the names came from, or None.
    source: str | None = None
    _members: Mapping[str, tuple[str, ...]] = attrs.field(
        init=False, eq=False, repr=False, hash=False
    )

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_members", _group_members(self.agents))

    @classmethod
    def empty(cls) -> Names:
        """No names and no thresholds: every level is ok."""
        return NO_NAMES

    def agent(self, agent_id: str) -> AgentEntry | None:
        return self.agents.get(agent_id)

    def members(self, group: str) -> tuple[str, ...]:
        """The IDs of the agents the file puts in ``group``, in the file's order."""
        return self._members.get(group, ())

    def make_busy_reason(self, code: int | None) -> str | None:
        return None if code is None else self.make_busy_reasons.get(code)

    def dnd_reason(self, code: int | None) -> str | None:
        return None if code is None else self.dnd_reasons.get(code)

    def queue_thresholds(self, kind: Literal["group", "path"], number: str) -> QueueThresholds:
        """The levels in force for one group or path: its own, else the default."""
        table = self.group_thresholds if kind == "group" else self.path_thresholds
        return table.get(number, self.default_thresholds)

    def queue_level(
        self,
        kind: Literal["group", "path"],
        number: str,
        waiting: int | None,
        longest_wait_seconds: int | None,
    ) -> Level:
        return self.queue_thresholds(kind, number).level(waiting, longest_wait_seconds)

    def agent_level(self, state: AgentState, seconds: float | None) -> Level:
        """How long an agent has been in ``state`` against ``[thresholds.agents]``."""
        return _level(self.agent_limits.get(state), seconds)

    def summary(self) -> str:
        """``12 agents, 3 groups, 2 paths``, for the log.

        A file that sets ``[service_level]`` or ``[smdr]`` has them added:
        ``...; SMDR: service level 20 s (1 path its own), short abandon 6 s,
        confirmed``.
        """
        names = f"{len(self.agents)} agents, {len(self.groups)} groups, {len(self.paths)} paths"
        level = self.service_level
        if level == DEFAULT_SERVICE_LEVEL and not self.smdr_confirmed:
            return names
        own = ""
        if level.paths:
            count = len(level.paths)
            own = (
                f" ({count} path{'s' if count != 1 else ''} {'their' if count != 1 else 'its'} own)"
            )
        confirmed = "confirmed" if self.smdr_confirmed else "provisional"
        return (
            f"{names}; SMDR: service level {level.seconds} s{own},"
            f" short abandon {level.short_abandon_seconds} s, {confirmed}"
        )


NO_NAMES = Names()


class NamesError(ValueError):
    """A names file that cannot be used, with the file and line that say why."""

    def __init__(self, source: str, line: int | None, problem: str) -> None:
        self.source = source
        self.line = line
        self.problem = problem
        where = source if line is None else f"{source}, line {line}"
        super().__init__(f"{where}: {problem}")

    @property
    def detail(self) -> str:
        """The message without the file's name, for a line that already gives it."""
        return self.problem if self.line is None else f"line {self.line}: {self.problem}"


# -- where a key is written -------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def _read_key(text: str, pos: int) -> tuple[tuple[str, ...], int] | None:
    """A dotted TOML key starting at ``pos``, and where it ends; None if there is none."""
    parts: list[str] = []
    while True:
        pos = _skip_space(text, pos)
        if pos >= len(text):
            return None
        quote = text[pos]
        if quote in "\"'":
            end = pos + 1
            while end < len(text) and text[end] != quote:
                end += 2 if quote == '"' and text[end] == "\\" else 1
            if end >= len(text):
                return None
            parts.append(_unescape(text[pos + 1 : end]) if quote == '"' else text[pos + 1 : end])
            pos = end + 1
        else:
            bare = _BARE_KEY.match(text, pos)
            if bare is None:
                return None
            parts.append(bare.group())
            pos = bare.end()
        pos = _skip_space(text, pos)
        if pos < len(text) and text[pos] == ".":
            pos += 1
            continue
        return tuple(parts), pos


def _unescape(raw: str) -> str:
    if "\\" not in raw:
        return raw
    try:
        return str(tomllib.loads(f'k = "{raw}"')["k"])
    except tomllib.TOMLDecodeError:
        return raw


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'')


def _depth(value: str) -> int:
    """How many more brackets a line of values opens than it closes."""
    bare = _STRING.sub("", value).split("#", 1)[0]
    return bare.count("[") + bare.count("{") - bare.count("]") - bare.count("}")


class _Lines:
    """The line each table and key of a (valid) TOML text is first written on.

    Enough of TOML to point at a line: table headers, dotted and quoted
    keys, with multi-line strings and arrays skipped. A key inside an inline
    table or an array is found at the line of the key holding it.
    """

    def __init__(self, text: str) -> None:
        self._first: dict[tuple[str, ...], int] = {}
        # TOML ends lines at \n only; str.splitlines would also split at \f and others.
        self._text = text.split("\n")
        table: tuple[str, ...] = ()
        closing: str | None = None
        depth = 0
        for number, line in enumerate(self._text, 1):
            if closing is not None:
                if line.count(closing) % 2:
                    closing = None
                continue
            if depth > 0:
                depth += _depth(line)
                continue
            stripped = line.lstrip()
            if stripped.startswith("["):
                opening = 2 if stripped.startswith("[[") else 1
                header = _read_key(stripped, opening)
                if header is not None:
                    table = header[0]
                    self._note(table, number)
                continue
            key = _read_key(stripped, 0)
            if key is None or not stripped[key[1] :].startswith("="):
                continue
            self._note(table + key[0], number)
            value = stripped[key[1] + 1 :]
            for quotes in ('"""', "'''"):
                if value.count(quotes) % 2:
                    closing = quotes
                    break
            else:
                depth = _depth(value)

    def _note(self, path: tuple[str, ...], number: int) -> None:
        for length in range(1, len(path) + 1):
            self._first.setdefault(path[:length], number)

    def of(self, *path: str) -> int:
        """The line of ``path``, else of the nearest table or key holding it."""
        for length in range(len(path), 0, -1):
            found = self._first.get(path[:length])
            if found is not None:
                return found
        return 1

    def of_value(self, value: str, *path: str) -> int:
        """The line of the string ``value`` in the array at ``path``: the first line,
        from the key holding it on, where it is written in quotes; else the key's line."""
        start = self.of(*path)
        quoted = (f'"{value}"', f"'{value}'")
        for number, line in enumerate(self._text[start - 1 :], start):
            if any(q in line for q in quoted):
                return number
        return start


# -- reading ----------------------------------------------------------------

_TOML_POSITION = re.compile(
    r"^(?P<what>.*?) \((?:at line (?P<line>\d+), column (?P<column>\d+)|at end of document)\)$",
    re.DOTALL,
)


def syntax_error(error: tomllib.TOMLDecodeError, text: str, source: str) -> NamesError:
    """A TOML error as a NamesError at its line, worded as the rest of the file's errors."""
    message = str(error)
    found = _TOML_POSITION.match(message)
    if found is None:
        return NamesError(source, None, message)
    what = found["what"]
    if what[:1].isupper() and what[1:2].islower():
        what = what[0].lower() + what[1:]
    if found["line"] is None:
        last = text.rstrip("\n").count("\n") + 1
        return NamesError(source, last, f"{what} (at the end of the file)")
    return NamesError(source, int(found["line"]), f"{what} (column {found['column']})")


def _quoted(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else f'"{key}"'


def _header(path: Iterable[str]) -> str:
    return "[" + ".".join(_quoted(key) for key in path) + "]"


class _Reader:
    """Checks a parsed file part by part, raising NamesError at the line at fault."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.lines = _Lines(text)

    def error(self, path: tuple[str, ...], problem: str) -> NamesError:
        return NamesError(self.source, self.lines.of(*path), problem)

    def table(self, value: object, path: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(path, f"{_header(path)} must be a table")
        return value

    def text(self, value: object, path: tuple[str, ...], what: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.error(path, f"{what} must be a non-empty string")
        return value

    def number(self, key: str, line: int, kind: str, where: str) -> str:
        """A group or path number, three digits; ``where`` says where it is written."""
        if _QUEUE_NUMBER.fullmatch(key):
            return key
        said = f'{kind} "{key}" {where}'
        if _DIGITS.fullmatch(key) and int(key) <= 999:
            problem = f'{said}: write "{int(key):03d}", as the PBX sends it'
        else:
            problem = (
                f"{said}: a {kind} number is three digits, as the PBX sends it"
                f' (like "{_NUMBER_EXAMPLES[kind]}")'
            )
        raise NamesError(self.source, line, problem)

    def names(self, document: dict[str, Any]) -> Names:
        for key in document:
            if key not in TABLES:
                raise self.error(
                    (key,), f"unknown table [{key}] (expected one of {', '.join(TABLES)})"
                )
        parts = {key: self.table(value, (key,)) for key, value in document.items()}
        thresholds = self.thresholds(parts.get("thresholds", {}))
        return Names(
            agents=self.agents(parts.get("agents", {})),
            groups=self.queue_names(parts.get("groups", {}), "groups", "group"),
            paths=self.queue_names(parts.get("paths", {}), "paths", "path"),
            make_busy_reasons=self.reasons(
                parts.get("make_busy_reasons", {}), "make_busy_reasons", "make-busy"
            ),
            dnd_reasons=self.reasons(parts.get("dnd_reasons", {}), "dnd_reasons", "DND"),
            default_thresholds=thresholds[0],
            group_thresholds=thresholds[1],
            path_thresholds=thresholds[2],
            agent_limits=thresholds[3],
            service_level=self.service_level(parts.get("service_level", {})),
            smdr_confirmed=self.smdr(parts.get("smdr", {})),
            source=self.source,
        )

    def unknown_keys(
        self, table: dict[str, Any], path: tuple[str, ...], known: Iterable[str]
    ) -> None:
        expected = tuple(known)
        for key in table:
            if key not in expected:
                raise self.error(
                    (*path, key),
                    f'{_header(path)}: unknown key "{key}" (expected {", ".join(expected)})',
                )

    def seconds(self, value: object, path: tuple[str, ...], low: int) -> int:
        """Whole seconds from ``low`` to :data:`MAX_SMDR_SECONDS`."""
        problem = _seconds_problem(value, low)
        if problem is not None:
            raise self.error(path, f"{_header(path[:-1])} {path[-1]} {problem}")
        return cast(int, value)

    def service_level(self, table: dict[str, Any]) -> ServiceLevelSettings:
        top = ("service_level",)
        self.unknown_keys(table, top, _SERVICE_LEVEL_KEYS)
        seconds = SERVICE_LEVEL_SECONDS
        if "seconds" in table:
            seconds = self.seconds(table["seconds"], (*top, "seconds"), 1)
        short = SHORT_ABANDON_SECONDS
        if "short_abandon_seconds" in table:
            short = self.seconds(table["short_abandon_seconds"], (*top, "short_abandon_seconds"), 0)
        paths: dict[str, int] = {}
        where = (*top, "paths")
        for number, value in self.table(table.get("paths", {}), where).items():
            path = (*where, number)
            self.number(number, self.lines.of(*path), "path", "in [service_level.paths]")
            if not isinstance(value, dict):
                raise self.error(path, f"{_header(path)} must be a table with seconds")
            own = cast(dict[str, Any], value)
            self.unknown_keys(own, path, _PATH_SERVICE_LEVEL_KEYS)
            if "seconds" in own:
                paths[number] = self.seconds(own["seconds"], (*path, "seconds"), 1)
        return ServiceLevelSettings(seconds, short, paths)

    def smdr(self, table: dict[str, Any]) -> bool:
        top = ("smdr",)
        self.unknown_keys(table, top, _SMDR_KEYS)
        confirmed = table.get("confirmed", False)
        if not isinstance(confirmed, bool):
            raise self.error(
                (*top, "confirmed"),
                f"[smdr] confirmed must be true or false, not {_shown(confirmed)}",
            )
        return confirmed

    def agents(self, table: dict[str, Any]) -> dict[str, AgentEntry]:
        agents = {}
        for agent_id, value in table.items():
            path = ("agents", agent_id)
            if not _AGENT_ID.fullmatch(agent_id):
                raise self.error(path, f'agent ID "{agent_id}" is not 1 to 7 digits')
            agents[agent_id] = self.agent(agent_id, value, path)
        return agents

    def agent(self, agent_id: str, value: object, path: tuple[str, ...]) -> AgentEntry:
        label = f'agent "{agent_id}"'
        if isinstance(value, str):
            return AgentEntry(name=self.text(value, path, f"{label}: name"))
        if not isinstance(value, dict):
            raise self.error(
                path, f"{label} must be a name or a table with {', '.join(_AGENT_KEYS)}"
            )
        for key in value:
            if key not in _AGENT_KEYS:
                raise self.error(
                    (*path, key),
                    f'{label}: unknown key "{key}" (expected {", ".join(_AGENT_KEYS)})',
                )
        name = team = None
        if "name" in value:
            name = self.text(value["name"], (*path, "name"), f"{label}: name")
        if "team" in value:
            team = self.text(value["team"], (*path, "team"), f"{label}: team")
        groups = value.get("groups", [])
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise self.error(
                (*path, "groups"),
                f'{label}: groups must be a list of group numbers, like ["610", "620"]',
            )
        for group in groups:
            line = self.lines.of_value(group, *path, "groups")
            self.number(group, line, "group", f"in the groups of {label}")
        return AgentEntry(name=name, team=team, groups=tuple(dict.fromkeys(groups)))

    def queue_names(self, table: dict[str, Any], part: str, kind: str) -> dict[str, str]:
        named = {}
        for number, value in table.items():
            path = (part, number)
            self.number(number, self.lines.of(*path), kind, f"in [{part}]")
            named[number] = self.text(value, path, f'{kind} "{number}": name')
        return named

    def reasons(self, table: dict[str, Any], part: str, kind: str) -> dict[int, str]:
        reasons: dict[int, str] = {}
        written: dict[int, str] = {}
        for key, value in table.items():
            path = (part, key)
            if not _REASON_CODE.fullmatch(key):
                raise self.error(path, f'{kind} reason code "{key}" is not a number')
            code = int(key)
            if code in written:
                raise self.error(
                    path, f'{kind} reason code "{key}" is the same code as "{written[code]}"'
                )
            written[code] = key
            reasons[code] = self.text(value, path, f'{kind} reason "{key}": text')
        return reasons

    def limits(self, value: object, path: tuple[str, ...]) -> Limits:
        pair = value if isinstance(value, list) and len(value) == 2 else [None, None]
        problem = _limits_problem(*pair)
        if problem is not None:
            raise self.error(path, f"{_header(path[:-1])} {path[-1]} {problem}")
        return Limits(*pair)

    def queue(
        self, table: dict[str, Any], path: tuple[str, ...], default: QueueThresholds
    ) -> QueueThresholds:
        for key in table:
            if key not in _QUEUE_KEYS:
                raise self.error(
                    (*path, key),
                    f'{_header(path)}: unknown key "{key}" (expected {", ".join(_QUEUE_KEYS)})',
                )
        return QueueThresholds(
            waiting=(
                self.limits(table["waiting"], (*path, "waiting"))
                if "waiting" in table
                else default.waiting
            ),
            longest_wait=(
                self.limits(table["longest_wait"], (*path, "longest_wait"))
                if "longest_wait" in table
                else default.longest_wait
            ),
        )

    def thresholds(
        self, table: dict[str, Any]
    ) -> tuple[
        QueueThresholds,
        dict[str, QueueThresholds],
        dict[str, QueueThresholds],
        dict[AgentState, Limits],
    ]:
        top = ("thresholds",)
        for key in table:
            if key not in _THRESHOLD_KEYS:
                raise self.error(
                    (*top, key),
                    f'[thresholds]: unknown key "{key}" (expected {", ".join(_THRESHOLD_KEYS)})',
                )
        default = self.queue(
            {key: table[key] for key in _QUEUE_KEYS if key in table}, top, NO_THRESHOLDS
        )
        per_queue: list[dict[str, QueueThresholds]] = []
        for part, kind in (("groups", "group"), ("paths", "path")):
            path = (*top, part)
            queues = {}
            for number, value in self.table(table.get(part, {}), path).items():
                line = self.lines.of(*path, number)
                self.number(number, line, kind, f"in [thresholds.{part}]")
                queues[number] = self.queue(
                    self.table(value, (*path, number)), (*path, number), default
                )
            per_queue.append(queues)
        path = (*top, "agents")
        agent_limits: dict[AgentState, Limits] = {}
        for state, value in self.table(table.get("agents", {}), path).items():
            if state not in LIMITED_STATES:
                raise self.error(
                    (*path, state),
                    f'[thresholds.agents]: unknown agent state "{state}"'
                    f" (expected {', '.join(LIMITED_STATES)})",
                )
            agent_limits[state] = self.limits(value, (*path, state))
        return default, per_queue[0], per_queue[1], agent_limits


def parse_names(text: str, source: str) -> Names:
    """The names in ``text``, or NamesError naming ``source`` and the line at fault."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise syntax_error(e, text, source) from None
    return _Reader(text, source).names(document)


def load_names(path: str) -> Names:
    """Read the names file at ``path`` (UTF-8), or NamesError saying why it cannot be used."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise NamesError(path, None, f"cannot read the names file: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise NamesError(path, line, f"not UTF-8 text (byte 0x{data[e.start]:02x})") from None
    return parse_names(text, path)


# -- reloading --------------------------------------------------------------

#: What a file looks like from outside: a save changes at least one of these.
Signature = tuple[int, int, int]


def _signature(path: str) -> Signature:
    info = os.stat(path)
    return (info.st_mtime_ns, info.st_size, info.st_ino)


def install_sighup(
    reactor: IReactorFromThreads, reload: Callable[[str], object]
) -> Callable[[], None] | None:
    """Have SIGHUP call ``reload("SIGHUP")`` on the reactor; returns what puts things back.

    Signal handlers can only be set from the main thread: elsewhere nothing
    is installed and None is returned. The handler only hands the reload to
    the reactor, which runs it between two events like any other call.
    """
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: FrameType | None) -> None:
        reactor.callFromThread(reload, "SIGHUP")

    previous = signal.signal(signal.SIGHUP, handler)

    def restore() -> None:
        # Someone who replaced the handler since keeps theirs.
        if signal.getsignal(signal.SIGHUP) is handler:
            signal.signal(signal.SIGHUP, previous if previous is not None else signal.SIG_DFL)

    return restore


class NamesWatcher(Service):
    """Reload the names file when it changes on disk, and on SIGHUP.

    Every ``interval`` seconds the file's modification time, size and inode
    are compared with the last seen (a rename over it, as editors and
    configuration tools save, changes the inode). A file that reads and
    checks is handed to ``apply`` and logged; one that does not is logged
    as a warning, once, and the names loaded before stay. ``names`` are the
    names already read from the file at start; without them the first poll
    loads the file.

    While running, SIGHUP reloads too: the handler goes through ``reactor``,
    or through ``clock`` when that is a reactor (has ``callFromThread``).
    ``sighup=False`` leaves the signal alone.
    """

    def __init__(
        self,
        path: str,
        clock: IReactorTime,
        apply: Callable[[Names], None],
        interval: float = 1.0,
        names: Names | None = None,
        *,
        reactor: IReactorFromThreads | None = None,
        sighup: bool = True,
    ) -> None:
        self.path = path
        self.clock = clock
        self.apply = apply
        self.interval = interval
        if reactor is None and sighup and hasattr(clock, "callFromThread"):
            reactor = cast(IReactorFromThreads, clock)
        self.reactor = reactor if sighup else None
        self.names = names if names is not None else NO_NAMES
        self.reloads = 0
        self._seen: Signature | None = None
        self._missing = False
        if names is not None:
            try:
                self._seen = _signature(path)
            except OSError:
                pass
        self._poll = LoopingCall(self.poll)
        self._poll.clock = clock
        self._restore_sighup: Callable[[], None] | None = None

    def startService(self) -> None:
        super().startService()
        self._poll.start(self.interval, now=True)
        if self.reactor is not None:
            self._restore_sighup = install_sighup(self.reactor, self._sighup)

    def stopService(self) -> None:
        if self._restore_sighup is not None:
            self._restore_sighup()
            self._restore_sighup = None
        if self._poll.running:
            self._poll.stop()
        super().stopService()

    def _sighup(self, why: str) -> None:
        if self.running:  # a signal handed over just before the stop
            self.reload(why)

    def poll(self) -> None:
        """Reload if the file looks different from the last time it was read."""
        try:
            seen = _signature(self.path)
        except OSError as e:
            if not self._missing:
                self._missing = True
                log.warn(
                    "names file {path} cannot be read ({error}); keeping the names loaded before",
                    path=self.path,
                    error=e.strerror or e,
                )
            return
        self._missing = False
        if seen != self._seen:
            self.reload("changed on disk")

    def reload(self, why: str) -> bool:
        """Read the file again and apply it; on any fault keep the names there are.

        ``why`` goes in the log line (``SIGHUP``, ``changed on disk``).
        Returns whether the new names were applied.
        """
        try:
            seen: Signature | None = _signature(self.path)
        except OSError:
            seen = None
        # Even a file that fails is seen: it is not reported again until it changes.
        self._seen = seen
        try:
            names = load_names(self.path)
        except NamesError as e:
            log.warn(
                "names file {path} not reloaded ({why}): {error}; keeping the names loaded before",
                path=self.path,
                why=why,
                error=e.detail,
            )
            return False
        try:
            self.apply(names)
        except Exception:
            log.failure("names from {path} could not be applied", path=self.path)
            return False
        self._missing = False
        self.names = names
        self.reloads += 1
        log.info(
            "names reloaded from {path} ({why}): {agents} agents, {groups} groups, {paths} paths",
            path=self.path,
            why=why,
            agents=len(names.agents),
            groups=len(names.groups),
            paths=len(names.paths),
        )
        return True
