"""The message on every board (``/api/v1/message``), and the board page's version.

Over real HTTP on a loopback port: setting, reading and deleting the
message, the token, every refusal, the event reaching a stream client at
once, the snapshot and the page's version. On a fake clock: expiry at
``until``, also when the wall clock steps. On disk: kept over a restart,
and an expired, unreadable or broken file ignored with one log line.
"""

from __future__ import annotations

import errno
import json
import re
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from test_web import SSEClient, connect_sse
from twisted.internet import reactor
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel

from mitelacd import tap
from mitelacd.floor.render import iso_utc
from mitelacd.testing import BoardModel, Feeder, StreamRequest, capture_log, sse_events
from mitelacd.testing.fakes import FaultyDisk
from mitelacd.testing.loopback import Headers, WebOnLoopback
from mitelacd.web.message import (
    MAX_TEXT,
    MESSAGE_SUFFIX,
    RECHECK,
    Message,
    MessageError,
    MessageFile,
    MessageService,
    parse_put,
    parse_time,
)
from mitelacd.web.push import EventPush
from mitelacd.web.resources import BOARD_VERSION_META, BoardPage, WebSettings, board_version

TOKEN = "s3cret-board-token"
JSON: Headers = {"Content-Type": "application/json"}
#: 2026-11-22T13:00:00Z.
T0 = 1795352400.0


def body(doc: Any) -> bytes:
    return json.dumps(doc).encode("utf-8")


def later(seconds: float) -> str:
    """A time ``seconds`` from now on the real clock, as a client would write it."""
    return iso_utc(reactor.seconds() + seconds) or ""


def api_error(code: int, headers: dict[str, str], raw: bytes) -> dict[str, str]:
    """The error document, after checking that it is the API's shape."""
    assert headers["content-type"] == "application/json", (code, raw)
    doc = json.loads(raw)
    assert isinstance(doc, dict) and sorted(doc) == ["detail", "error"], doc
    return doc


@pytest_twisted.async_yield_fixture
async def live() -> AsyncIterator[WebOnLoopback]:
    board = WebOnLoopback(WebSettings())
    yield board
    await board.service.stopService()


@pytest_twisted.async_yield_fixture
async def guarded() -> AsyncIterator[WebOnLoopback]:
    board = WebOnLoopback(WebSettings(token=TOKEN))
    yield board
    await board.service.stopService()


# What a PUT may hold ----------------------------------------------------------


def test_a_message_is_text_and_an_until_with_a_time_zone() -> None:
    now = T0
    assert parse_put({"text": "  Fire drill at 3  ", "until": None}, now) == (
        "Fire drill at 3",
        None,
    )
    assert parse_put({"text": "x"}, now) == ("x", None)
    assert parse_put({"text": "x", "until": "2026-11-22T14:00:00Z"}, now) == ("x", T0 + 3600)
    assert parse_put({"text": "x", "until": "2026-11-22T15:00:00+01:00"}, now) == ("x", T0 + 3600)
    assert parse_put({"text": "x", "until": "2026-11-22T13:00:00.500z"}, now) == ("x", T0 + 0.5)
    longest = "é" * MAX_TEXT
    assert parse_put({"text": longest}, now) == (longest, None)


@pytest.mark.parametrize(
    "doc, field, detail",
    [
        (["text"], None, "the body must be a JSON object"),
        ("hello", None, "the body must be a JSON object"),
        ({"text": "x", "colour": "red"}, "colour", "colour: unknown field; only text and until"),
        ({"text": "x", "<b>" * 20: 1}, None, "unknown field; only text and until are taken"),
        ({}, "text", "text: is required"),
        ({"until": None}, "text", "text: is required"),
        ({"text": None}, "text", "text: must be a string"),
        ({"text": 42}, "text", "text: must be a string"),
        ({"text": "   "}, "text", "text: must not be empty"),
        ({"text": "x" * (MAX_TEXT + 1)}, "text", f"text: at most {MAX_TEXT} characters, not 281"),
        ({"text": "two\nlines"}, "text", "text: must be one line"),
        ({"text": "a\ttab"}, "text", "text: must be one line"),
        ({"text": "x", "until": 1795356000}, "until", "until: must be an ISO-8601 time"),
        ({"text": "x", "until": "tomorrow"}, "until", "until: must be an ISO-8601 time"),
        ({"text": "x", "until": "2026-11-22T14:00:00"}, "until", "until: has no time zone"),
        ({"text": "x", "until": "2026-11-23"}, "until", "until: has no time zone"),
        ({"text": "x", "until": "2026-11-22T12:59:59Z"}, "until", "until: 2026-11-22T12:59:59"),
        ({"text": "x", "until": "2026-11-22T13:00:00Z"}, "until", "is in the past"),
    ],
)
def test_each_mistake_is_refused_naming_its_field(doc: Any, field: str | None, detail: str) -> None:
    with pytest.raises(MessageError) as refused:
        parse_put(doc, T0)
    assert refused.value.field == field
    assert detail in refused.value.detail
    if field is not None:
        assert refused.value.detail.startswith(field + ":")


# Over HTTP --------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_put_get_and_delete_the_message(live: WebOnLoopback) -> None:
    assert await live.request("GET", "/api/v1/message") == (
        200,
        {"content-type": "application/json", "allow": "", "www-authenticate": "",
         "x-content-type-options": "nosniff"},
        b'{"message":null}',
    )  # fmt: skip
    until = later(3600)
    before = reactor.seconds()
    code, headers, raw = await live.request(
        "PUT", "/api/v1/message", JSON, body({"text": " Fire drill at 15:00 ", "until": until})
    )
    assert (code, headers["content-type"]) == (200, "application/json")
    put = json.loads(raw)
    assert list(put) == ["message"] and list(put["message"]) == ["text", "until", "set_at"]
    assert put["message"]["text"] == "Fire drill at 15:00"
    assert put["message"]["until"] == until
    set_at = put["message"]["set_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", set_at)
    assert before - 0.001 <= parse_time(set_at, "set_at") <= reactor.seconds()
    code, _, raw = await live.request("GET", "/api/v1/message")
    assert (code, json.loads(raw)) == (200, put)
    # Replaced by another, until deleted.
    code, _, raw = await live.request("PUT", "/api/v1/message", JSON, body({"text": "Welcome"}))
    assert code == 200 and json.loads(raw)["message"]["until"] is None
    assert json.loads((await live.request("GET", "/api/v1/message/"))[2])["message"]["text"] == (
        "Welcome"
    )
    code, headers, raw = await live.request("DELETE", "/api/v1/message")
    assert (code, raw) == (204, b"")
    assert (await live.request("GET", "/api/v1/message"))[2] == b'{"message":null}'
    # Deleting nothing is no mistake.
    assert (await live.request("DELETE", "/api/v1/message"))[0] == 204


@pytest_twisted.ensureDeferred
async def test_with_a_token_every_method_needs_it(guarded: WebOnLoopback) -> None:
    refused: list[tuple[str, Headers]] = [
        ("", JSON),
        ("", {**JSON, "Authorization": "Bearer wrong"}),
        ("?token=wrong", JSON),
    ]
    for query, headers in refused:
        for method in ("GET", "PUT", "DELETE"):
            code, found, raw = await guarded.request(
                method, "/api/v1/message" + query, headers, body({"text": "intruder"})
            )
            assert code == 401 and found["www-authenticate"] == 'Bearer realm="mitelacd"'
            assert api_error(code, found, raw)["error"] == "unauthorized"
    assert guarded.service.messages.message is None
    bearer: Headers = {**JSON, "Authorization": f"Bearer {TOKEN}"}
    code, _, raw = await guarded.request("PUT", "/api/v1/message", bearer, body({"text": "Hi"}))
    assert code == 200 and json.loads(raw)["message"]["text"] == "Hi"
    code, _, raw = await guarded.request(
        "PUT", f"/api/v1/message?token={TOKEN}", JSON, body({"text": "By query"})
    )
    assert code == 200 and json.loads(raw)["message"]["text"] == "By query"
    assert (await guarded.request("DELETE", f"/api/v1/message?token={TOKEN}"))[0] == 204
    assert guarded.service.messages.message is None


@pytest.mark.parametrize(
    "headers, data, code, error, detail",
    [
        ({}, b'{"text": "x"}', 415, "unsupported_media_type", "Content-Type: application/json"),
        ({"Content-Type": "text/plain"}, b'{"text": "x"}', 415, "unsupported_media_type", "JSON"),
        (JSON, b"{text: x}", 400, "bad_request", "the body is not JSON"),
        (JSON, b"\xff\xfe\xfa", 400, "bad_request", "the body is not JSON"),
        (JSON, b"[" * 100_000, 413, "too_large", "at most 16384 bytes"),
        (JSON, b"[" * 10_000, 400, "bad_request", "nested too deep"),
        (JSON, b'"text"', 400, "bad_request", "the body must be a JSON object"),
        (JSON, b'{"text": "x", "colour": "red"}', 400, "bad_request", "colour: unknown"),
        (JSON, b'{"until": null}', 400, "bad_request", "text: is required"),
        (JSON, b'{"text": ""}', 400, "bad_request", "text: must not be empty"),
        (JSON, body({"text": "x" * 281}), 400, "bad_request", "text: at most 280 characters"),
        (JSON, b'{"text": "x", "until": "soon"}', 400, "bad_request", "until: must be an ISO"),
        (
            JSON,
            b'{"text": "x", "until": "2030-01-01T00:00:00"}',
            400,
            "bad_request",
            "until: has no",
        ),
        (
            JSON,
            b'{"text": "x", "until": "2020-01-01T00:00:00Z"}',
            400,
            "bad_request",
            "in the past",
        ),
    ],
)
@pytest_twisted.ensureDeferred
async def test_a_bad_put_is_refused_in_json_and_changes_nothing(
    live: WebOnLoopback, headers: Headers, data: bytes, code: int, error: str, detail: str
) -> None:
    await live.request("PUT", "/api/v1/message", JSON, body({"text": "Standing"}))
    got, found, raw = await live.request("PUT", "/api/v1/message", headers, data)
    doc = api_error(got, found, raw)
    assert (got, doc["error"]) == (code, error)
    assert detail in doc["detail"]
    message = live.service.messages.message
    assert message is not None and message.text == "Standing"


@pytest_twisted.ensureDeferred
async def test_other_methods_are_refused_saying_what_is_served(live: WebOnLoopback) -> None:
    code, headers, raw = await live.request("POST", "/api/v1/message", JSON, b'{"text": "x"}')
    assert (code, headers["allow"]) == (405, "GET, HEAD, PUT, DELETE")
    assert api_error(code, headers, raw) == {
        "error": "method_not_allowed",
        "detail": "only GET, HEAD, PUT and DELETE are served here",
    }
    # Everything else still takes GET and HEAD only.
    code, headers, raw = await live.request("PUT", "/api/v1/state", JSON, b'{"text": "x"}')
    assert (code, headers["allow"]) == (405, "GET, HEAD")
    assert api_error(code, headers, raw)["detail"] == "only GET and HEAD are served here"
    code, headers, raw = await live.request("GET", "/api/v1/message/more")
    assert code == 404 and api_error(code, headers, raw)["error"] == "not_found"


@pytest_twisted.ensureDeferred
async def test_every_change_reaches_an_event_stream_client_within_a_second(
    live: WebOnLoopback,
) -> None:
    stream = await connect_sse(live, SSEClient())
    await stream.until(b"event: snapshot")
    until = later(600)
    changes: list[tuple[bytes | None, Any]] = [
        (body({"text": "Team meeting at 4", "until": until}), "Team meeting at 4"),
        (body({"text": "Replaced"}), "Replaced"),
        (None, None),  # deleted
    ]
    for n, (data, text) in enumerate(changes, start=1):
        started = reactor.seconds()
        if data is None:
            await live.request("DELETE", "/api/v1/message")
        else:
            await live.request("PUT", "/api/v1/message", JSON, data)
        await arrived(stream, b"event: board_message", n, started + 1)
        name, event_id, data_doc = [e for e in stream.events() if e[0] == "board_message"][-1]
        assert event_id is None and list(data_doc) == ["message"]
        if text is None:
            assert data_doc == {"message": None}
        else:
            assert data_doc["message"]["text"] == text
            assert data_doc == json.loads((await live.request("GET", "/api/v1/message"))[2])
    assert stream.events()[0][2]["message"] is None  # the snapshot, before any change


async def arrived(stream: SSEClient, marker: bytes, count: int, deadline: float) -> None:
    """Wait until ``stream`` has received ``marker`` ``count`` times, failing at ``deadline``."""
    while stream.data.count(marker) < count:
        assert reactor.seconds() < deadline, f"{marker!r} #{count} has not come in time"
        await deferLater(reactor, 0.005, lambda: None)


@pytest_twisted.ensureDeferred
async def test_the_snapshot_and_the_state_carry_the_message_and_the_board_version(
    live: WebOnLoopback,
) -> None:
    code, _, raw = await live.request("PUT", "/api/v1/message", JSON, body({"text": "Hello"}))
    message = json.loads(raw)["message"]
    stream = await connect_sse(live, SSEClient())
    await stream.until(b"event: snapshot")
    ((name, _, snapshot),) = stream.events()
    assert name == "snapshot"
    state = json.loads((await live.request("GET", "/api/v1/state"))[2])
    version = live.service.board.version
    for doc in (snapshot, state):
        assert doc["message"] == message
        assert doc["board_version"] == version
    assert set(snapshot) == set(state)
    assert re.fullmatch(r"\d+\.\d+\.\d+\+[0-9a-f]{12}", version)
    # The page served says the same version in its meta.
    code, headers, page = await live.request("GET", "/")
    assert code == 200 and headers["content-type"].startswith("text/html")
    metas = re.findall(rb'<meta name="mitelacd-board-version" content="([^"]*)">', page)
    assert metas == [version.encode("ascii")]
    assert BOARD_VERSION_META == "mitelacd-board-version"


def test_the_board_version_follows_the_board_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same files give the same version; a change to any of them, another."""
    served = board_version()
    assert served == BoardPage.load().version
    copy = tmp_path / "board"
    copy.mkdir()
    for entry in (resources.files("mitelacd.web") / "board").iterdir():
        (copy / entry.name).write_bytes(entry.read_bytes())
    monkeypatch.setattr(resources, "files", lambda package: tmp_path)
    assert board_version() == served
    (copy / "board.css").write_bytes((copy / "board.css").read_bytes() + b"\n")
    changed = board_version()
    assert changed != served
    page = BoardPage.load()
    assert page.version == changed
    assert b'<meta name="mitelacd-board-version" content="%s">' % changed.encode() in page.html


# On a fake clock --------------------------------------------------------------


class Board:
    """A message service on a fake clock, with the push feed and one stream client."""

    def __init__(self, store: MessageFile | None = None) -> None:
        self.f = Feeder(first_version=1_000_000)
        self.f.connect()
        self.clock: Clock = self.f.clock
        #: How far the wall clock is from the reactor's (monotonic) one: a test steps it.
        self.step = 0.0
        self.messages = MessageService(self.clock, self.wall, store)
        self.messages.startService()
        self.push = EventPush(
            self.f.floor,
            self.f.documents,
            self.clock,
            messages=self.messages,
            board_version="0.2.0+abc",
        )
        self.push.start()
        self.client = StreamRequest()
        self.push.subscribe(self.client)
        self.model = BoardModel()
        self.model.apply_all(sse_events(self.client.take()))

    def wall(self) -> float:
        return self.clock.seconds() + self.step

    def events(self) -> list[tuple[str, int | None, dict[str, Any]]]:
        """The board message events since the last look (the feed's ``stale`` left out)."""
        events = sse_events(self.client.take())
        self.model.apply_all(events)
        return [e for e in events if e[0] != "stale"]

    def stop(self) -> None:
        self.push.stop()
        self.messages.stopService()


def test_a_message_is_taken_down_at_its_until_and_the_boards_are_told() -> None:
    b = Board()
    now = b.wall()
    b.messages.put("Lunch is served", now + 90)
    assert b.events() == [
        ("board_message", None, {"message": {
            "text": "Lunch is served", "until": iso_utc(now + 90), "set_at": iso_utc(now)
        }})
    ]  # fmt: skip
    b.clock.advance(89.9)
    assert b.messages.message is not None and b.events() == []
    b.clock.advance(0.1)
    assert b.messages.rendered() == b"null"
    assert b.events() == [("board_message", None, {"message": None})]
    assert b.model.state is not None and b.model.state["message"] is None
    b.clock.advance(3600)
    assert b.messages.version == 2 and b.events() == []
    b.stop()


def test_a_step_of_the_wall_clock_neither_takes_it_down_early_nor_leaves_it_up() -> None:
    b = Board()
    b.messages.put("Holding", b.wall() + 30)
    b.events()
    b.step = -3600  # stepped back an hour: the wait ends early, the message stays
    b.clock.advance(30)
    assert b.messages.message is not None and b.events() == []
    b.step = 0  # stepped forward again, past its until: no longer shown, pushed at the next look
    assert b.messages.rendered() == b"null"
    b.clock.advance(RECHECK - 0.1)
    assert b.events() == []
    b.clock.advance(0.1)
    assert b.events() == [("board_message", None, {"message": None})]
    # Stepped forward past a later until: pushed within RECHECK, not two hours on.
    b.messages.put("Long one", b.wall() + 7200)
    assert [e[2]["message"]["text"] for e in b.events()] == ["Long one"]
    b.step += 7200
    b.clock.advance(RECHECK)
    assert b.events() == [("board_message", None, {"message": None})]
    b.stop()


def test_a_client_that_does_not_read_gets_the_last_message_once() -> None:
    b = Board()
    b.client.producer.pauseProducing()
    for text in ("one", "two", "three"):
        b.messages.put(text, None)
    assert b.events() == []
    b.client.producer.resumeProducing()
    events = b.events()
    assert [(name, doc["message"]["text"]) for name, _, doc in events] == [
        ("board_message", "three")
    ]
    b.stop()


def test_a_resuming_client_is_sent_the_message_only_when_it_changed() -> None:
    b = Board()
    b.f.event("A")
    b.events()
    version = b.f.floor.version
    again = StreamRequest(last_event_id=version)
    b.push.subscribe(again, last_event_id=version)
    assert [e[0] for e in sse_events(again.take())] == ["stale"]
    b.messages.put("While you were away", None)
    back = StreamRequest(last_event_id=version)
    b.push.subscribe(back, last_event_id=version)
    events = sse_events(back.take())
    assert [e[0] for e in events] == ["stale", "board_message"]
    assert events[1][2]["message"]["text"] == "While you were away"
    b.stop()


def test_whole_state_clients_get_a_state_with_the_message() -> None:
    b = Board()
    full = StreamRequest(full=True)
    b.push.subscribe(full, full=True)
    ((name, _, first),) = sse_events(full.take())
    assert name == "state" and first["message"] is None and first["board_version"] == "0.2.0+abc"
    b.messages.put("Whole", None)
    ((name, _, state),) = sse_events(full.take())
    assert name == "state" and state["message"]["text"] == "Whole"
    b.stop()


def test_a_push_without_a_message_service_sends_neither_member() -> None:
    f = Feeder(first_version=1_000_000)
    push = EventPush(f.floor, f.documents, f.clock)
    push.start()
    client = StreamRequest()
    push.subscribe(client)
    ((_, _, snapshot),) = sse_events(client.take())
    assert "message" not in snapshot and "board_version" not in snapshot
    push.stop()


# Kept over a restart ----------------------------------------------------------


def test_the_message_is_kept_over_a_restart(tmp_path: Path) -> None:
    store = MessageFile.beside(str(tmp_path / "mitel_data.json"))
    assert store.path == str(tmp_path / "mitel_data.json") + MESSAGE_SUFFIX
    clock = Clock()
    clock.advance(T0)
    first = MessageService(clock, clock.seconds, store)
    first.startService()
    kept = first.put("Fire drill at 15:00", T0 + 7200)
    first.stopService()
    assert json.loads(Path(store.path).read_text()) == {"message": kept.view()}
    clock.advance(3600)
    with capture_log("mitelacd.web.message") as log:
        second = MessageService(clock, clock.seconds, store)
        second.startService()
    assert second.message == kept
    assert log.lines() == [
        f"showing the board message kept in {store.path}, until 2026-11-22T15:00:00.000Z"
    ]
    # It still goes at its until.
    clock.advance(3600)
    assert second.rendered() == b"null"
    assert json.loads(Path(store.path).read_text()) == {"message": None}
    second.stopService()
    third = MessageService(clock, clock.seconds, store)
    third.startService()
    assert third.message is None
    third.stopService()


@pytest_twisted.ensureDeferred
async def test_a_kept_message_is_served_after_a_restart(tmp_path: Path) -> None:
    store = MessageFile.beside(str(tmp_path / "mitel_data.json"))
    first = WebOnLoopback(messages=MessageService(reactor, reactor.seconds, store))
    try:
        code, _, raw = await first.request(
            "PUT", "/api/v1/message", JSON, body({"text": "Survives", "until": later(3600)})
        )
        assert code == 200
    finally:
        await first.service.stopService()
    messages = MessageService(reactor, reactor.seconds, store)
    messages.startService()
    second = WebOnLoopback(messages=messages)
    try:
        assert json.loads((await second.request("GET", "/api/v1/message"))[2]) == json.loads(raw)
        state = json.loads((await second.request("GET", "/api/v1/state"))[2])
        assert state["message"] == json.loads(raw)["message"]
    finally:
        await second.service.stopService()
        messages.stopService()


def test_the_daemon_keeps_its_message_beside_the_data_file(tmp_path: Path) -> None:
    data = tmp_path / "mitel_data.json"
    Path(str(data) + MESSAGE_SUFFIX).write_text(
        json.dumps({"message": {"text": "From before", "until": None, "set_at": iso_utc(T0)}})
    )
    argv = ["--host", "127.0.0.1", "--file", str(data), "--http", "tcp:0:interface=127.0.0.1"]
    options = tap.Options()
    options.parseOptions(argv)
    service = tap.makeService(options, MemoryReactorClock())
    service.startService()
    (messages,) = [s for s in service if isinstance(s, MessageService)]
    try:
        assert messages.store is not None and messages.store.path == str(data) + MESSAGE_SUFFIX
        assert messages.message == Message("From before", None, T0)
    finally:
        service.stopService()


@pytest.mark.parametrize(
    "content, said",
    [
        (b"\x00\xffnot json", "it is not a message"),
        (b'{"text": "no envelope"}', 'it is not a message (no "message" member)'),
        (b'{"message": "text"}', "it is not a message"),
        (b'{"message": {"text": "", "until": null, "set_at": "2026-11-22T13:00:00Z"}}', "text:"),
        (
            b'{"message": {"text": "x", "until": "noon", "set_at": "2026-11-22T13:00:00Z"}}',
            "until:",
        ),
        (b'{"message": {"text": "x", "until": null}}', "set_at:"),
        (b"[" * 100_000, "it is not a message"),
    ],
)
def test_a_broken_file_is_ignored_with_one_line(tmp_path: Path, content: bytes, said: str) -> None:
    store = MessageFile(str(tmp_path / "m.json"))
    Path(store.path).write_bytes(content)
    clock = Clock()
    clock.advance(T0)
    with capture_log("mitelacd.web.message") as log:
        messages = MessageService(clock, clock.seconds, store)
        messages.startService()
    assert messages.message is None
    (line,) = log.lines()
    assert line.startswith(f"ignoring the board message in {store.path}: ") and said in line
    assert [e["log_level"] for e in log.events] == [LogLevel.warn]
    # The next change writes a good file over it.
    messages.put("Fresh", None)
    assert json.loads(Path(store.path).read_text())["message"]["text"] == "Fresh"
    messages.stopService()


def test_an_unreadable_or_expired_file_is_ignored_with_one_line(tmp_path: Path) -> None:
    clock = Clock()
    clock.advance(T0)
    folder = MessageFile(str(tmp_path))  # a folder: reading it fails
    expired = MessageFile(str(tmp_path / "old.json"))
    Path(expired.path).write_text(
        json.dumps({"message": {"text": "Gone", "until": iso_utc(T0 - 1), "set_at": iso_utc(0)}})
    )
    for store, said in [
        (folder, f"ignoring the board message in {tmp_path}: cannot read it"),
        (expired, f"not showing the board message kept in {expired.path}: it expired at"),
    ]:
        with capture_log("mitelacd.web.message") as log:
            messages = MessageService(clock, clock.seconds, store)
            messages.startService()
        assert messages.message is None
        (line,) = log.lines()
        assert line.startswith(said)
        messages.stopService()


def test_a_message_that_cannot_be_written_is_shown_all_the_same(tmp_path: Path) -> None:
    disk = FaultyDisk()
    store = MessageFile(str(tmp_path / "m.json"), disk.system())
    disk.fail("replace", errno.ENOSPC)
    b = Board(store=store)
    with capture_log("mitelacd.web.message") as log:
        b.messages.put("Disk full", None)
    assert b.messages.message is not None
    assert [e[2]["message"]["text"] for e in b.events()] == ["Disk full"]
    errors = log.lines(LogLevel.error)
    assert len(errors) == 1 and errors[0].startswith(f"cannot write {store.path}: ")
    assert "a restart will not keep it" in errors[0]
    assert not Path(store.path).exists() and not Path(store.path + ".tmp").exists()
    b.stop()
