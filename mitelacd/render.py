"""Render once per change: the two helpers every document is made of."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_compact = json.JSONEncoder(separators=(",", ":")).encode


def compact(value: Any) -> bytes:
    """JSON without spaces, as the API serves it."""
    return _compact(value).encode("ascii")


class Once(Generic[T]):
    """A value built on first use after each change, then served as it is.

    ``invalidate()`` when what it is built from changes; ``get()`` builds it
    at most once per change, however often it is asked for.
    """

    __slots__ = ("_build", "_value", "_valid")

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None
        self._valid = False

    def invalidate(self) -> None:
        self._valid = False
        self._value = None

    def get(self) -> T:
        if not self._valid:
            self._value = self._build()
            self._valid = True
        return self._value  # type: ignore[return-value]


class Fragments:
    """The rendered JSON of each entity of one kind, joined into a document part on demand.

    ``set`` renders one entity (the cost of a change); ``joined`` puts the
    fragments together once per change of any of them, in ``order`` of their
    keys when an order is given, else in the order they were first set.
    """

    def __init__(
        self,
        render: Callable[[str, Any], bytes],
        order: Callable[[str], Any] | None = None,
        brackets: tuple[bytes, bytes] = (b"[", b"]"),
        separator: bytes = b",",
    ) -> None:
        self._render = render
        self._order = order
        self._open, self._close = brackets
        self._separator = separator
        self._parts: dict[str, bytes] = {}
        self._sorted: list[str] | None = None
        self._joined = Once(self._join)

    def set(self, key: str, value: Any) -> bool:
        """Render ``value`` for ``key`` (None removes it); whether that changed anything."""
        parts = self._parts
        if value is None:
            if parts.pop(key, None) is None:
                return False
            self._sorted = None
        else:
            fragment = self._render(key, value)
            old = parts.get(key)
            if old == fragment:
                return False
            if old is None:
                self._sorted = None
            parts[key] = fragment
        self._joined.invalidate()
        return True

    def update(self, values: Iterable[tuple[str, Any]]) -> bool:
        """Set each of ``values``; whether any of them changed anything."""
        changed = False
        for key, value in values:
            changed = self.set(key, value) or changed
        return changed

    def get(self, key: str) -> bytes | None:
        return self._parts.get(key)

    def __len__(self) -> int:
        return len(self._parts)

    def joined(self) -> bytes:
        return self._joined.get()

    def _join(self) -> bytes:
        parts = self._parts
        if self._order is None:
            body = self._separator.join(parts.values())
        else:
            if self._sorted is None:
                self._sorted = sorted(parts, key=self._order)
            body = self._separator.join([parts[k] for k in self._sorted])
        return self._open + body + self._close
