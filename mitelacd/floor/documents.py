"""The documents the floor is read through, kept up to date change set by change set.

Each agent, group, path and extension is rendered to JSON once when it
changes, for the legacy document and for the API; a document is joined from
those fragments when somebody asks for it after a change, so one agent
changing never re-renders the other ten thousand. The file writer and the
web layer read from here; what is served is the same bytes for everyone.
"""

from __future__ import annotations

import json
from typing import Any

from zope.interface import implementer

from mitelacd.floor.changes import ENTITY_KINDS, ChangeSet, Entity, EntityKind, IFloorListener
from mitelacd.floor.render import Fragments, Once, compact, id_key, iso_utc
from mitelacd.floor.state import FloorState

_legacy_json = json.JSONEncoder().encode


def _legacy_pair(key: str, legacy: Any) -> bytes:
    # The separators of json.dumps' defaults, which the legacy file has always had.
    return (_legacy_json(key) + ": " + _legacy_json(legacy)).encode("ascii")


def _api_entity(key: str, entity: Entity) -> bytes:
    return compact(entity.view)


@implementer(IFloorListener)
class FloorDocuments:
    """The legacy document and the API documents of one floor.

    It listens to the floor and tells its own listeners after it has taken
    each change set in, so they always read documents of that change.
    """

    def __init__(self, floor: FloorState) -> None:
        self.floor = floor
        self.version = floor.version
        #: The version at which the legacy document last changed: its ETag.
        self.legacy_version = floor.version
        self.legacy_parts: dict[EntityKind, Fragments] = {
            kind: Fragments(_legacy_pair, None, (b"{", b"}"), b", ")
            for kind in ("agents", "groups", "paths")
        }
        # Once its JSON is made, an entity's view is let go: the JSON is what is served.
        self.entities: dict[EntityKind, Fragments] = {
            "agents": Fragments(_api_entity, id_key, keep=False),
            "groups": Fragments(_api_entity, str, keep=False),
            "paths": Fragments(_api_entity, str, keep=False),
            "extensions": Fragments(_api_entity, id_key, keep=False),
        }
        self.feed: dict[str, Any] = {}
        self.totals: dict[str, Any] = {}
        # The feed object's JSON without its braces (the web puts ``stale`` first).
        self._feed_members = Once(lambda: compact(self.feed)[1:-1])
        self._totals_json = Once(lambda: compact(self.totals))
        self.last_update = 0.0
        self._legacy = Once(self._render_legacy)
        self._state_head = Once(self._render_state_head)
        self._listeners: list[IFloorListener] = []
        self._apply(floor.everything())
        floor.addListener(self)

    def addListener(self, listener: IFloorListener) -> None:
        self._listeners.append(listener)

    def removeListener(self, listener: IFloorListener) -> None:
        self._listeners.remove(listener)

    def floorChanged(self, changes: ChangeSet) -> None:
        self._apply(changes)
        for listener in list(self._listeners):
            listener.floorChanged(changes)

    def _apply(self, changes: ChangeSet) -> None:
        legacy_changed = False
        for kind in ENTITY_KINDS:
            updates = changes.entities(kind)
            if not updates:
                continue
            api = self.entities[kind]
            legacy = self.legacy_parts.get(kind)
            for key, entity in updates.items():
                api.set(key, entity)
                if legacy is not None:
                    old = legacy.value(key)
                    if entity is None or old is None or old != entity.legacy:
                        legacy.set(key, None if entity is None else entity.legacy)
                        legacy_changed = True
        if changes.feed:
            self.feed.update(changes.feed)
            self._feed_members.invalidate()
        if changes.totals is not None:
            self.totals = dict(changes.totals)
            self._totals_json.invalidate()
        if changes.last_update is not None and changes.last_update != self.last_update:
            self.last_update = changes.last_update
            legacy_changed = True
        self.version = changes.version
        self._state_head.invalidate()
        if legacy_changed:
            self.legacy_version = changes.version
            self._legacy.invalidate()

    # The legacy document ---------------------------------------------------

    def legacy(self) -> bytes:
        """``mitel_data.json``, byte for byte what ``json.dumps`` made of it."""
        return self._legacy.get()

    def _render_legacy(self) -> bytes:
        parts = self.legacy_parts
        return b"".join(
            [
                b'{"agents": ',
                parts["agents"].joined(),
                b', "groups": ',
                parts["groups"].joined(),
                b', "paths": ',
                parts["paths"].joined(),
                b', "lastUpdate": ',
                _legacy_json(self.last_update).encode("ascii"),
                b"}",
            ]
        )

    # The API documents -----------------------------------------------------
    #
    # Each is a list of byte strings to be written one after the other after
    # the web layer's ``{"generated_at": ..., "stale": ...,`` envelope; the
    # large parts are shared by every request until the next change.

    def state(self, stale: bytes) -> list[bytes]:
        """The members of ``/api/v1/state`` (the rich view), ``stale`` being the feed's."""
        feed = self._feed_members.get()
        parts = [self._state_head.get(), stale, b"," if feed else b"", feed, b'},"totals":']
        parts.append(self.totals_json())
        for kind in ENTITY_KINDS:
            parts += [b',"%s":' % kind.encode("ascii"), self.entities[kind].joined()]
        parts.append(b"}")
        return parts

    def _render_state_head(self) -> bytes:
        last_update = compact(iso_utc(self.last_update or None))
        return b'"version":%d,"last_update":%s,"feed":{"stale":' % (self.version, last_update)

    def listing(self, kind: EntityKind) -> list[bytes]:
        """The members of ``/api/v1/<kind>``."""
        return [b'"%s":' % kind.encode("ascii"), self.entities[kind].joined(), b"}"]

    def feed_document(self, stale: bytes, extra: bytes = b"") -> list[bytes]:
        """The members of ``/api/v1/feed``; ``extra`` is more members of the feed object."""
        feed = self._feed_members.get()
        parts = [b'"feed":{"stale":', stale, b"," if feed else b"", feed]
        if extra:
            parts += [b",", extra]
        parts.append(b"}}")
        return parts

    def totals_json(self) -> bytes:
        return self._totals_json.get()

    def entity(self, kind: EntityKind, key: str) -> bytes | None:
        """One entity's JSON, as it stands in the lists."""
        return self.entities[kind].get(key)
