"""Render once per change: the two helpers every document is made of.

And the two every view is written with: :func:`iso_utc` for instants,
:func:`id_key` for the order of agent and extension numbers.
"""

from __future__ import annotations

import datetime
import functools
import json
import math
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_compact = json.JSONEncoder(separators=(",", ":")).encode


def compact(value: Any) -> bytes:
    """JSON without spaces, as the API serves it."""
    return _compact(value).encode("ascii")


def iso_utc(when: float | None) -> str | None:
    """Unix time as UTC ISO-8601 with a ``Z``, or None."""
    if when is None:
        return None
    return _iso_utc(when)


@functools.lru_cache(maxsize=1024)
def _iso_utc(when: float) -> str:
    # The same few instants (now, an agent's since) are rendered many times,
    # and the instants of a busy second share all but their milliseconds.
    # Microseconds as datetime rounds them (half to even), then truncated to
    # milliseconds as isoformat does.
    whole = math.floor(when)
    micros = round((when - whole) * 1e6)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    return f"{_second(whole)}.{micros // 1000:03d}Z"


@functools.lru_cache(maxsize=64)
def _second(whole: int) -> str:
    stamp = datetime.datetime.fromtimestamp(whole, datetime.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S")


def id_key(text: str) -> tuple[int, str]:
    """Digits sort as numbers (``999`` before ``1001``), anything else after."""
    return (int(text), text) if text.isdigit() else (1 << 62, text)


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
    """The JSON of each entity of one kind, joined into a document part on demand.

    ``set`` keeps an entity's new value (the cost of a change); its JSON is
    rendered once, the first time it is read after that change, and the
    joined part is rebuilt once per change of any entity. Keys come in
    ``order`` when an order is given, else in the order they were first set.
    Unless ``keep``, a value is let go once its JSON is made (``value``
    then says only that the key is there: True).
    """

    def __init__(
        self,
        render: Callable[[str, Any], bytes],
        order: Callable[[str], Any] | None = None,
        brackets: tuple[bytes, bytes] = (b"[", b"]"),
        separator: bytes = b",",
        keep: bool = True,
    ) -> None:
        self._keep = keep
        self._render = render
        self._order = order
        self._open, self._close = brackets
        self._separator = separator
        self._values: dict[str, Any] = {}
        self._parts: dict[str, bytes] = {}
        self._sorted: list[str] | None = None
        self._joined = Once(self._join)

    def set(self, key: str, value: Any) -> None:
        """Keep ``value`` for ``key``; None removes the key."""
        if value is None:
            if self._values.pop(key, None) is None:
                return
            self._sorted = None
        else:
            if key not in self._values:
                self._sorted = None
            self._values[key] = value
        self._parts.pop(key, None)
        self._joined.invalidate()

    def value(self, key: str) -> Any:
        return self._values.get(key)

    def get(self, key: str) -> bytes | None:
        """The JSON of ``key``, or None when there is no such entity."""
        part = self._parts.get(key)
        if part is None:
            value = self._values.get(key)
            if value is None:
                return None
            part = self._parts[key] = self._render(key, value)
            if not self._keep:
                self._values[key] = True
        return part

    def __len__(self) -> int:
        return len(self._values)

    def joined(self) -> bytes:
        return self._joined.get()

    def _join(self) -> bytes:
        keys: Iterable[str] = self._values
        if self._order is not None:
            if self._sorted is None:
                self._sorted = sorted(self._values, key=self._order)
            keys = self._sorted
        get = self.get
        return self._open + self._separator.join([get(k) for k in keys]) + self._close  # type: ignore[misc]
