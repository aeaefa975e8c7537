"""The ``mitel_data.json`` document: its one home.

Display boards built for the 2013 listener read this file and its HTTP twin,
so its shape is frozen (docs/state-model.md §4): exactly the keys
``agents``, ``groups``, ``paths`` and ``lastUpdate``; agent values from
:data:`LEGACY_STATUSES`; queue figures as the three strings the PBX sent.
This module says what the shape is, how an agent's status is derived, and
checks a document read from disk once, into a :class:`LegacyDocument`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import attrs

LegacyStatus = Literal["in", "out", "busy", "idle", "timer"]
LEGACY_STATUSES: tuple[LegacyStatus, ...] = ("in", "out", "busy", "idle", "timer")
#: The three figures of a group or path, under the names the boards read.
QUEUE_FIELDS = ("waiting", "agents", "longestwait")
#: The top-level keys, in the order they are written.
KEYS = ("agents", "groups", "paths", "lastUpdate")


def legacy_status(
    *,
    logged_in: bool,
    engaged: bool,
    dnd: bool,
    make_busy: bool,
    wrap_up: bool,
    fresh_login: bool,
) -> LegacyStatus:
    """An agent's legacy value, in the contract's order.

    ``engaged`` is true when the agent has an activity (a call, held or not,
    or ringing).
    """
    if not logged_in:
        return "out"
    if engaged or dnd or make_busy:
        return "busy"
    if wrap_up:
        return "timer"
    if fresh_login:
        return "in"
    return "idle"


class LegacyFileError(ValueError):
    """A document that does not have the ``mitel_data.json`` shape."""


@attrs.frozen
class LegacyDocument:
    """A checked ``mitel_data.json``: what a start-up may carry over."""

    agents: Mapping[str, LegacyStatus]
    groups: Mapping[str, Mapping[str, str]]
    paths: Mapping[str, Mapping[str, str]]
    #: Unix time of the last change the document reports (0 when absent).
    last_update: float

    def as_json(self) -> dict[str, Any]:
        return {
            "agents": dict(self.agents),
            "groups": {k: dict(v) for k, v in self.groups.items()},
            "paths": {k: dict(v) for k, v in self.paths.items()},
            "lastUpdate": self.last_update,
        }


def validate_legacy(doc: Any) -> LegacyDocument:
    """Check a decoded document; raise :class:`LegacyFileError` saying what is wrong."""
    if not isinstance(doc, dict):
        raise LegacyFileError("top level is not an object")
    for key in ("agents", "groups", "paths"):
        if not isinstance(doc.get(key), dict):
            raise LegacyFileError(f"{key!r} is missing or not an object")
    for agent, status in doc["agents"].items():
        if status not in LEGACY_STATUSES:
            raise LegacyFileError(f"agent {agent!r} has unknown status {status!r}")
    queues: dict[str, dict[str, dict[str, str]]] = {}
    for key in ("groups", "paths"):
        table = queues[key] = {}
        for number, figures in doc[key].items():
            if not isinstance(figures, dict) or not all(
                isinstance(figures.get(f), str) for f in QUEUE_FIELDS
            ):
                raise LegacyFileError(f"{key[:-1]} {number!r} lacks its three figures")
            table[number] = {f: figures[f] for f in QUEUE_FIELDS}
    last = doc.get("lastUpdate", 0)
    if isinstance(last, bool) or not isinstance(last, (int, float)) or not math.isfinite(last):
        raise LegacyFileError("'lastUpdate' is not a finite number")
    return LegacyDocument(dict(doc["agents"]), queues["groups"], queues["paths"], float(last))
