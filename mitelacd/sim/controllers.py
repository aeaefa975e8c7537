"""Several controllers playing one floor, and the merged floor a listener must make of them.

Larger Mitel sites run several controllers: a resilient pair, whose agents
fail over to the secondary when the primary fails, or networked ACD, where
the same path reporting number is programmed on several controllers. Each
sends its own ACD stream (and SMDR). A
:class:`~mitelacd.sim.service.FloorScript` made with ``controllers=N``
plays such a site: one floor (one seeded day) whose events go out on N
streams, each with its own record numbers, K/Q/R bursts and clock. How the
floor splits (see :mod:`mitelacd.sim.floor` for the mechanics):

* **Agents** are dealt to the controllers: each group's agents in turn,
  each group starting one controller further on, so that every group has
  agents on every controller once there are enough of them. An agent logs
  in and works on its controller only, at a set of that controller: its
  events go on that stream alone until it moves (:class:`FailoverPlan`).
  An extension event (nobody logged in) goes on the stream of its set.
* **Paths and groups** are programmed on every controller: each controller
  reports a Q for every path and a K for every group, every cycle. A caller
  arrives on one controller (drawn at random) and waits in that
  controller's part of the path's queue: a controller's ``waiting`` and
  ``longestwait`` are its own callers'. ``agents`` counts the logged-in
  agents of the path's (or group's) groups on every controller, so every
  controller reports the same number (the agents of a networked queue
  answer it wherever they are logged in). Any free agent may be rung for
  the oldest caller of any controller; its G or S goes on its own stream.
* **SMDR**: a caller's records go on the SMDR stream of the controller it
  arrived on, with that controller's system identifier (``001``, ``002``,
  ...) in the record and in its call identifier.
* **Clocks**: controller ``k`` (from 0) runs ``k * clock_skew`` seconds
  ahead of the first: the times of its records, its R dates and its SMDR
  start times.

A :class:`FailoverPlan` moves agents from one controller to another in the
middle of the day: each moving agent that is logged in logs out (B) on its
controller and logs in (A) on the other ``delay`` seconds later, or
``late_delay`` seconds later for the ``late`` last of them (outside the
failover window, that is a logout then a login). Each such pair that went
out is a :class:`Move`.

:func:`merge_legacy` is the ground truth of the merged floor: state-model.md
§9 applied by hand to what each stream has said (:class:`ControllerView`).
It is the reference a listener reading several streams as one floor is
checked against.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from mitelacd.floor.legacy import LegacyStatus
from mitelacd.sim.smdrwire import SmdrEntry

#: state-model.md §9's ``failover_seconds``: a logout then a login on another
#: controller within this many seconds is a failover, not a logout.
FAILOVER_SECONDS = 30.0
#: Seconds from logout to login of an agent the plan brings back late: outside the window.
FAILOVER_LATE_SECONDS = 60
#: The widest waiting count and agent count a K or Q record holds.
_WIDEST = 999


def _at_least(least: float) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
        if value is not None and value < least:
            raise ValueError(f"{attribute.name} must be {least} or more, not {value}")

    return check


@attrs.frozen
class FailoverPlan:
    """Agents that leave one controller for another at simulated second ``at``.

    The first ``agents`` agents of controller ``source`` (by the floor's
    order, those logged in first; None: every agent of it, as when the
    primary of a resilient pair fails) move to controller ``target``. Each
    one logged in then logs out (B) on ``source`` and logs in (A) on
    ``target`` ``delay`` seconds later, at the set it left (which moves with
    it); the ``late`` last of them log in only ``late_delay`` seconds later.
    A moving agent who is logged out at ``at`` just logs in on ``target``
    next time. A call the B cuts off ends there (its caller's record is
    sent), and a caller whose call was ringing the agent goes back to the
    head of its queue.
    """

    at: float = attrs.field(validator=_at_least(0))
    agents: int | None = attrs.field(default=None, validator=_at_least(1))
    delay: int = attrs.field(default=5, validator=_at_least(1))
    late: int = attrs.field(default=0, validator=_at_least(0))
    late_delay: int = attrs.field(default=FAILOVER_LATE_SECONDS, validator=_at_least(1))
    source: int = attrs.field(default=0, validator=_at_least(0))
    target: int = attrs.field(default=1, validator=_at_least(0))

    def check(self, controllers: int) -> None:
        """Refuse a plan that a site of ``controllers`` controllers cannot play."""
        if controllers < 2:
            raise ValueError("a failover needs two controllers or more")
        if not (self.source < controllers and self.target < controllers):
            raise ValueError(f"controllers are numbered 0 to {controllers - 1}")
        if self.source == self.target:
            raise ValueError("a failover goes to another controller")


@attrs.frozen
class Move:
    """An agent that logged out (B) on one controller and then in (A) on another.

    Controllers are indices (0: the first). Times are simulated seconds of
    the day. Whether it is a failover depends on the window
    (:meth:`within`).
    """

    agent: str
    source: int
    target: int
    logout_at: float
    login_at: float

    def within(self, failover_seconds: float = FAILOVER_SECONDS) -> bool:
        """A failover: the A came no more than ``failover_seconds`` after the B."""
        return self.login_at - self.logout_at <= failover_seconds


@attrs.frozen
class LastEvent:
    """The last event one stream sent for one agent."""

    #: Simulated second it was sent.
    t: float
    #: Its function code.
    code: str
    #: Its place among every agent event of the site (on any stream): later is larger.
    order: int
    #: The agent's legacy status on that stream just before it.
    before: LegacyStatus


@attrs.frozen
class AgentSeen:
    """What one stream says of one agent now: its legacy status there, and its last event there."""

    status: LegacyStatus
    last: LastEvent


@attrs.frozen
class ControllerView:
    """One controller's legacy view (state-model §4), with the last event of each agent."""

    agents: Mapping[str, AgentSeen]
    groups: Mapping[str, Mapping[str, str]]
    paths: Mapping[str, Mapping[str, str]]


@attrs.frozen
class SiteMoment:
    """What the controllers of a site send at one simulated second, one entry per controller."""

    t: float
    #: ACD bytes, by controller (empty: that controller sends none then).
    acd: tuple[bytes, ...]
    #: SMDR records, by controller.
    smdr: tuple[tuple[SmdrEntry, ...], ...]


# --- the merged floor (state-model.md §9) ----------------------------------------


def merge_legacy(
    views: Sequence[ControllerView], now: float, failover_seconds: float = FAILOVER_SECONDS
) -> dict[str, Any]:
    """The legacy view of the merged floor, as state-model.md §9 says a listener must make it.

    ``views`` holds what each controller's stream has said so far; ``now``
    is the simulated second the merged view is taken at. The rules, each in
    a function of its own:

    * **Agents** (:func:`merge_agents`) are keyed by agent ID across the
      streams; the latest event wins: an agent's status is the one it has
      on the stream that sent its latest event.
    * **A failover is not a logout.** A B is the end of an agent's login
      only once ``failover_seconds`` have passed with no later event of the
      agent on any stream: until then an A on another stream may still come
      and make it a failover, so the merged view keeps showing the status
      the agent had just before the B. An A within the window is a failover
      (the agent is shown logged in throughout); an A after it comes after a
      logout (the agent is shown ``out`` in between). With a single stream
      there is nowhere to fail over to, and a B is a logout at once.
    * **Paths and groups** (:func:`merge_figures`) with the same reporting
      number on several streams are one queue: ``waiting`` is the sum (at
      most 999, the width of the field), ``longestwait`` the longest and
      ``agents`` the largest (every controller counts the same agents).

    The legacy view keeps its shape; ``lastUpdate`` is left out, as
    :meth:`~mitelacd.sim.service.FloorScript.expected_legacy` leaves it.
    """
    return {
        "agents": merge_agents(views, now, failover_seconds),
        "groups": merge_figures([v.groups for v in views]),
        "paths": merge_figures([v.paths for v in views]),
    }


def merge_agents(
    views: Sequence[ControllerView], now: float, failover_seconds: float = FAILOVER_SECONDS
) -> dict[str, LegacyStatus]:
    """Each agent's merged status: the latest event wins, and a B waits out the failover window."""
    latest: dict[str, AgentSeen] = {}
    for view in views:
        for agent, seen in view.agents.items():
            if agent not in latest or seen.last.order > latest[agent].last.order:
                latest[agent] = seen
    several = len(views) > 1
    merged: dict[str, LegacyStatus] = {}
    for agent, seen in latest.items():
        last = seen.last
        pending = several and last.code == "B" and now - last.t <= failover_seconds
        merged[agent] = last.before if pending else seen.status
    return merged


def merge_figures(tables: Sequence[Mapping[str, Mapping[str, str]]]) -> dict[str, dict[str, str]]:
    """One K (or Q) table from several streams' tables: the same number is one queue.

    ``waiting`` summed (at most 999), ``longestwait`` the longest (``MMSS``
    compared as minutes and seconds), ``agents`` the largest.
    """
    numbers: dict[str, list[Mapping[str, str]]] = {}
    for table in tables:
        for number, figures in table.items():
            numbers.setdefault(number, []).append(figures)
    return {
        number: {
            "waiting": f"{min(sum(int(f['waiting']) for f in parts), _WIDEST):03d}",
            "agents": f"{max(int(f['agents']) for f in parts):03d}",
            "longestwait": max((f["longestwait"] for f in parts), key=_mmss_seconds),
        }
        for number, parts in numbers.items()
    }


def _mmss_seconds(mmss: str) -> int:
    return int(mmss[:2]) * 60 + int(mmss[2:])
