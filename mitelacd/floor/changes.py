"""What one change of the floor did: the unit that flows from the state to its listeners.

The floor applies records (one at a time, or a whole read of them in one
batch) and then hands every listener one :class:`ChangeSet` naming exactly
the agents, groups, paths, extensions and feed fields that changed, with
their new values. Consumers keep their own views from these and never walk
the whole floor for a change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, Literal, TypeVar

import attrs
from zope.interface import Interface

from mitelacd.floor.legacy import LegacyStatus
from mitelacd.floor.names import AgentState

#: The kinds of entity a change set speaks of, in the order documents list them.
EntityKind = Literal["agents", "groups", "paths", "extensions"]
ENTITY_KINDS: tuple[EntityKind, ...] = ("agents", "groups", "paths", "extensions")


#: What an entity is in the legacy document.
L = TypeVar("L", covariant=True)


class Entity(Generic[L]):
    """The new value of one agent, group, path or extension.

    ``view`` is the rich view of the API, a fresh dict never changed after
    it is made. It may be given, or made on first use by ``render``: the
    floor hands over agents that way, so that a change whose consumers
    never read the rich view (the data file needs only ``legacy``) does not
    pay for it. The floor sees to it that ``render`` is called before the
    thing it renders changes again (:meth:`freeze`).
    """

    __slots__ = ("_render", "_view", "legacy")

    def __init__(
        self,
        view: Mapping[str, Any] | None,
        legacy: L,
        render: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        if (view is None) == (render is None):
            raise ValueError("an entity has a view, or what renders it: one of them")
        self._view = view
        self._render = render
        #: Its value in the legacy document: an agent's status, the three raw
        #: figures of a group or path; None for extensions, which it lacks.
        self.legacy = legacy

    @property
    def view(self) -> Mapping[str, Any]:
        view = self._view
        if view is None:
            assert self._render is not None
            view = self._view = self._render()
            self._render = None
        return view

    def freeze(self) -> None:
        """Render the view now: what it is made from is about to change."""
        if self._view is None:
            self.view  # noqa: B018

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Entity):
            return NotImplemented
        return bool(self.legacy == other.legacy and self.view == other.view)

    def __hash__(self) -> int:
        raise TypeError("an Entity is not hashable")

    def __repr__(self) -> str:
        shown = "(not rendered yet)" if self._view is None else repr(self._view)
        return f"Entity(view={shown}, legacy={self.legacy!r})"


@attrs.frozen
class CallOnKey:
    """One call on an agent's set as it stands after an event."""

    button: int
    #: ``acd``, ``personal``, ``outgoing`` or ``unknown``.
    kind: str
    held: bool
    path: str | None


@attrs.frozen
class AgentStep:
    """One agent event as the floor applied it, with the agent as it left it.

    Change sets carry these in order, so that a listener that counts (the
    day's figures) sees each event even when one read held many for the
    same agent.
    """

    #: When the floor applied it (its clock, Unix time).
    at: float
    agent: str
    code: str
    #: The event's button (key) as sent, its reason and its path.
    button: int | None
    reason: int | None
    path: str | None
    #: The agent after the event: board state, flags and calls by key.
    state: AgentState
    logged_in: bool
    dnd: bool
    dnd_reason: int | None
    make_busy: bool
    make_busy_reason: int | None
    wrap_up: bool
    ringing: int | None
    calls: tuple[CallOnKey, ...]


@attrs.frozen
class QueueStep:
    """One K or Q report as the floor applied it."""

    at: float
    kind: Literal["group", "path"]
    number: str
    #: None when the field was not a number (kept raw in the rich view).
    waiting: int | None
    longest_seconds: int | None


Step = AgentStep | QueueStep


#: An agent's new value, or None when it is gone; and so on for each kind.
AgentUpdate = Entity[LegacyStatus] | None
QueueUpdate = Entity[Mapping[str, str]] | None
ExtensionUpdate = Entity[None] | None
#: The new value of an entity of any kind, or None when it is gone.
Update = Entity[Any] | None


@attrs.frozen
class ChangeSet:
    """One change of the floor, from version ``previous`` to ``version``.

    Only what changed is present. ``feed`` holds the feed fields whose value
    changed; ``totals`` the whole totals when any of them changed;
    ``last_update`` the legacy ``lastUpdate`` when it moved.
    """

    previous: int
    version: int
    #: When the change was made, by the floor's clock (Unix time).
    at: float
    agents: Mapping[str, AgentUpdate] = attrs.field(factory=dict)
    groups: Mapping[str, QueueUpdate] = attrs.field(factory=dict)
    paths: Mapping[str, QueueUpdate] = attrs.field(factory=dict)
    extensions: Mapping[str, ExtensionUpdate] = attrs.field(factory=dict)
    feed: Mapping[str, Any] = attrs.field(factory=dict)
    totals: Mapping[str, Any] | None = None
    last_update: float | None = None
    #: The agent events and queue reports applied, in order.
    steps: tuple[Step, ...] = ()

    def entities(self, kind: EntityKind) -> Mapping[str, Update]:
        match kind:
            case "agents":
                return self.agents
            case "groups":
                return self.groups
            case "paths":
                return self.paths
            case "extensions":
                return self.extensions

    def merge(self, later: ChangeSet) -> ChangeSet:
        """One change set that does what ``self`` then ``later`` did."""
        if later.previous != self.version:
            raise ValueError(
                f"change {later.previous}->{later.version} does not follow {self.version}"
            )
        return ChangeSet(
            previous=self.previous,
            version=later.version,
            at=later.at,
            agents={**self.agents, **later.agents},
            groups={**self.groups, **later.groups},
            paths={**self.paths, **later.paths},
            extensions={**self.extensions, **later.extensions},
            feed={**self.feed, **later.feed},
            totals=later.totals if later.totals is not None else self.totals,
            last_update=later.last_update if later.last_update is not None else self.last_update,
            steps=self.steps + later.steps,
        )


class IFloorListener(Interface):
    """Something that wants to hear what changed on the floor."""

    def floorChanged(changes: ChangeSet) -> None:
        """Called once after every change (a record, or a batch of them)."""


class PendingChanges:
    """Change sets gathered between two paced actions, merged key by key.

    Cheaper than :meth:`ChangeSet.merge` for long runs: each change costs
    what it changed, whatever has gathered before it. Of the entities it
    keeps only which changed (in order): what they are now is the
    documents' to say, and holding the values would hold every view.
    """

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.previous: int | None = None
        self.version: int | None = None
        self.entities: dict[EntityKind, dict[str, None]] = {k: {} for k in ENTITY_KINDS}
        self.feed: dict[str, Any] = {}
        self.totals: Mapping[str, Any] | None = None
        self.last_update: float | None = None

    def add(self, changes: ChangeSet) -> None:
        if self.previous is None:
            self.previous = changes.previous
        self.version = changes.version
        for kind in ENTITY_KINDS:
            updates = changes.entities(kind)
            if updates:
                self.entities[kind].update(dict.fromkeys(updates))
        if changes.feed:
            self.feed.update(changes.feed)
        if changes.totals is not None:
            self.totals = changes.totals
        if changes.last_update is not None:
            self.last_update = changes.last_update

    def __bool__(self) -> bool:
        return self.version is not None
