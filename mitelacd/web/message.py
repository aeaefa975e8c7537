"""The message on every board: one line across the top, until a time or until deleted.

``PUT /api/v1/message`` sets it, ``DELETE`` takes it down (docs/api.md).
:func:`parse_put` checks what is asked for; :class:`MessageService` holds
the current :class:`Message`, tells its listeners (the push feed) of every
change, takes it down by itself at its ``until``, and keeps it in a
:class:`MessageFile` beside the data file, so that it outlives a restart.

Two clocks: ``until`` and ``set_at`` are wall time (what people set and
read), while the wait for ``until`` is a ``callLater`` of the daemon's
reactor, which waits on a monotonic clock. The delay is reckoned from the
wall clock, and the message is looked at again when the call fires (and at
least every :data:`RECHECK` seconds), so a step of the wall clock neither
takes it down early nor leaves it up for long.
"""

from __future__ import annotations

import datetime
import json
import unicodedata
from collections.abc import Callable
from typing import Any

import attrs
from twisted.application.service import Service
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from mitelacd.disk import SYSTEM, SystemCalls, replace_file
from mitelacd.floor.render import compact, iso_utc
from mitelacd.logs import Logger

log = Logger()

#: The longest message, in characters, once stripped of the spaces around it.
MAX_TEXT = 280
#: The message's file is named after the data file (``--file``) with this added.
MESSAGE_SUFFIX = ".message.json"
#: The longest wait before the expiry is looked at again, in seconds.
RECHECK = 60.0
#: The members a PUT body may have.
FIELDS = ("text", "until")
#: Characters a one-line message may not hold: controls (tabs, line breaks) and separators.
_NOT_ONE_LINE = frozenset({"Cc", "Zl", "Zp"})
_TIME_EXAMPLE = "an ISO-8601 time with a time zone, such as 2026-11-22T17:00:00Z or +01:00"


class MessageError(ValueError):
    """What is wrong with a message, in words that start with the field they are about."""

    def __init__(self, field: str | None, detail: str) -> None:
        super().__init__(detail)
        #: The member of the body at fault; None for the body as a whole.
        self.field = field
        self.detail = detail


@attrs.frozen
class Message:
    """The message boards show: its text, until when (Unix time, None: until deleted), set when."""

    text: str
    until: float | None
    set_at: float

    def expired(self, now: float) -> bool:
        return self.until is not None and self.until <= now

    def view(self) -> dict[str, Any]:
        """The message as the API shows it: times in UTC ISO-8601."""
        return {"text": self.text, "until": iso_utc(self.until), "set_at": iso_utc(self.set_at)}


def check_text(value: object) -> str:
    """A message's text, stripped: a non-empty string of one line, at most :data:`MAX_TEXT`."""
    if not isinstance(value, str):
        raise MessageError("text", "text: must be a string")
    text = value.strip()
    if not text:
        raise MessageError("text", "text: must not be empty")
    if len(text) > MAX_TEXT:
        raise MessageError("text", f"text: at most {MAX_TEXT} characters, not {len(text)}")
    if any(unicodedata.category(ch) in _NOT_ONE_LINE for ch in text):
        raise MessageError("text", "text: must be one line, without line breaks, tabs or controls")
    return text


def parse_time(value: object, field: str) -> float:
    """An ISO-8601 time with a time zone (``Z`` or an offset) as Unix time."""
    if not isinstance(value, str) or len(value) > 64:
        raise MessageError(field, f"{field}: must be {_TIME_EXAMPLE}, or null")
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"  # Python before 3.11 does not read Z
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise MessageError(field, f"{field}: must be {_TIME_EXAMPLE}, or null") from None
    if when.utcoffset() is None:
        raise MessageError(
            field, f"{field}: has no time zone; end it with Z (UTC) or an offset such as +01:00"
        )
    try:
        return when.timestamp()
    except (OverflowError, ValueError):
        raise MessageError(field, f"{field}: is out of range") from None


def parse_put(doc: object, now: float) -> tuple[str, float | None]:
    """The text and ``until`` of a ``PUT /api/v1/message`` body, or :class:`MessageError`."""
    if not isinstance(doc, dict):
        raise MessageError(None, 'the body must be a JSON object: {"text": ..., "until": ...}')
    for name in doc:
        if name in FIELDS:
            continue
        # A name is echoed only when it could be a field's.
        if name.isidentifier() and len(name) <= 32:
            raise MessageError(name, f"{name}: unknown field; only text and until are taken")
        raise MessageError(None, "unknown field; only text and until are taken")
    if "text" not in doc:
        raise MessageError("text", "text: is required")
    text = check_text(doc["text"])
    raw = doc.get("until")
    if raw is None:
        return text, None
    until = parse_time(raw, "until")
    if until <= now:
        raise MessageError("until", f"until: {iso_utc(until)} is in the past")
    return text, until


@attrs.frozen
class MessageFile:
    """The message kept beside the data file: ``{"message": ...}`` as the API shows it."""

    path: str
    system: SystemCalls = SYSTEM

    @classmethod
    def beside(cls, data_file: str) -> MessageFile:
        """The message file of the data file ``data_file`` (``--file``)."""
        return cls(data_file + MESSAGE_SUFFIX)

    def save(self, message: Message | None) -> None:
        """Replace the file atomically; an OSError is raised as it is."""
        body = compact({"message": None if message is None else message.view()})
        replace_file(self.path, body + b"\n", self.system)

    def load(self, now: float) -> Message | None:
        """The message an earlier run kept, unless it has expired by ``now``.

        No file, or one that says there is no message, gives None. One that
        cannot be read or is not a message is ignored, and so is a message
        whose ``until`` has passed, each with one line in the log: the
        message is lost, the daemon starts all the same.
        """
        try:
            with open(self.path, "rb") as file:
                content = file.read(64 * 1024)
        except FileNotFoundError:
            return None
        except OSError as e:
            log.warn(
                "ignoring the board message in {path}: cannot read it ({error})",
                path=self.path,
                error=e,
            )
            return None
        try:
            message = self._message(content)
        except (ValueError, RecursionError) as e:
            log.warn(
                "ignoring the board message in {path}: it is not a message ({problem})",
                path=self.path,
                problem=e,
            )
            return None
        if message is None:
            return None
        if message.expired(now):
            log.info(
                "not showing the board message kept in {path}: it expired at {until}",
                path=self.path,
                until=iso_utc(message.until),
            )
            return None
        log.info(
            "showing the board message kept in {path}, until {until}",
            path=self.path,
            until=iso_utc(message.until) or "deleted",
        )
        return message

    @staticmethod
    def _message(content: bytes) -> Message | None:
        doc = json.loads(content)
        if not isinstance(doc, dict) or "message" not in doc:
            raise ValueError('no "message" member')
        kept = doc["message"]
        if kept is None:
            return None
        if not isinstance(kept, dict):
            raise ValueError('"message" is neither an object nor null')
        text = check_text(kept.get("text"))
        until = kept.get("until")
        return Message(
            text,
            None if until is None else parse_time(until, "until"),
            parse_time(kept.get("set_at"), "set_at"),
        )


class MessageService(Service):
    """The current message, its expiry, its file and the listeners told of each change.

    ``clock`` times the wait for ``until``; ``wall`` (Unix time) is what
    ``until`` and ``set_at`` are read against. ``store``, when given, is
    read at start and written at each change. ``version`` counts changes
    since start: 0 while the message is the one read at start (or none).
    """

    def __init__(
        self,
        clock: IReactorTime,
        wall: Callable[[], float],
        store: MessageFile | None = None,
    ) -> None:
        self.clock = clock
        self.wall = wall
        self.store = store
        self.version = 0
        self._message: Message | None = None
        self._expiry: IDelayedCall | None = None
        self._listeners: list[Callable[[], object]] = []

    def startService(self) -> None:
        super().startService()
        if self.store is not None:
            self._message = self.store.load(self.wall())
        self._schedule()

    def stopService(self) -> Any:
        self._cancel()
        return super().stopService()

    def addListener(self, listener: Callable[[], object]) -> None:
        """Call ``listener`` after every change (set, replaced, deleted, expired)."""
        self._listeners.append(listener)

    def removeListener(self, listener: Callable[[], object]) -> None:
        self._listeners.remove(listener)

    @property
    def message(self) -> Message | None:
        """The message boards show now; None when there is none (or it has just expired)."""
        message = self._message
        if message is None or message.expired(self.wall()):
            return None
        return message

    def rendered(self) -> bytes:
        """The message as JSON (``null`` for none), as the API and the push feed send it."""
        message = self.message
        return b"null" if message is None else compact(message.view())

    def put(self, text: str, until: float | None) -> Message:
        """Show ``text`` until ``until`` (None: until deleted), in place of any message before."""
        message = Message(text, until, self.wall())
        log.info(
            "the board message is now {text!r}, until {until}",
            text=text,
            until=iso_utc(until) or "deleted",
        )
        self._change(message)
        return message

    def delete(self) -> bool:
        """Take the message down; whether there was one."""
        if self._message is None:
            return False
        log.info("the board message is deleted")
        self._change(None)
        return True

    def _change(self, message: Message | None) -> None:
        self._message = message
        self.version += 1
        self._save(message)
        self._schedule()
        for listener in list(self._listeners):
            listener()

    def _save(self, message: Message | None) -> None:
        if self.store is None:
            return
        try:
            self.store.save(message)
        except OSError as e:
            log.error(
                "cannot write {path}: {error}; the boards show the change,"
                " but a restart will not keep it",
                path=self.store.path,
                error=e,
            )

    # Expiry ----------------------------------------------------------------

    def _schedule(self) -> None:
        self._cancel()
        message = self._message
        if not self.running or message is None or message.until is None:
            return
        delay = min(max(0.0, message.until - self.wall()), RECHECK)
        self._expiry = self.clock.callLater(delay, self._check)

    def _check(self) -> None:
        self._expiry = None
        message = self._message
        if message is not None and message.expired(self.wall()):
            log.info("the board message expired at {until}", until=iso_utc(message.until))
            self._change(None)
        else:
            self._schedule()

    def _cancel(self) -> None:
        if self._expiry is not None and self._expiry.active():
            self._expiry.cancel()
        self._expiry = None
