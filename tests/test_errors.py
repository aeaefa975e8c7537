"""Every error of the HTTP API is the JSON shape of docs/api.md, over a real socket."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_twisted

from mitelacd.floor.documents import FloorDocuments
from mitelacd.testing.loopback import Headers, WebOnLoopback
from mitelacd.web.resources import WebSettings

TOKEN = "s3cret-board-token"
ALL_METHODS_BUT_GET = ["POST", "PUT", "DELETE", "PATCH"]


@pytest_twisted.async_yield_fixture
async def live() -> AsyncIterator[WebOnLoopback]:
    board = WebOnLoopback(WebSettings())
    yield board
    await board.service.stopService()


@pytest_twisted.async_yield_fixture
async def guarded() -> AsyncIterator[WebOnLoopback]:
    board = WebOnLoopback(WebSettings(token=TOKEN, max_push_clients=0))
    yield board
    await board.service.stopService()


def api_error(code: int, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The error document, after checking that it is the API's shape."""
    assert headers["content-type"] == "application/json", (code, body)
    doc = json.loads(body)
    assert isinstance(doc, dict) and sorted(doc) == ["detail", "error"], doc
    assert isinstance(doc["error"], str) and isinstance(doc["detail"], str) and doc["detail"]
    assert b"<html" not in body.lower() and b"Traceback" not in body
    return doc


@pytest.mark.parametrize(
    "path, detail",
    [
        ("/api", "nothing is served at this path"),
        ("/api/", "nothing is served at this path"),
        ("/api/v1", "nothing is served at this path"),
        ("/api/v2/state", "nothing is served at this path"),
        ("/api/v1/nope", "nothing is served at this path"),
        ("/api/v1/nope?token=x", "nothing is served at this path"),
        ("/api/v1/agents/4242", "agent '4242' has not been seen"),
        ("/api/v1/agents/4242/calls", "no such resource"),
        ("/nope", "nothing is served at this path"),
        ("/board.js", "nothing is served at this path"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_404_is_json(live: WebOnLoopback, path: str, detail: str) -> None:
    code, headers, body = await live.request("GET", path)
    assert code == 404
    assert api_error(code, headers, body) == {"error": "not_found", "detail": detail}


@pytest.mark.parametrize(
    "path",
    ["/api/v1/%3Cscript%3Ealert(1)%3C%2Fscript%3E", "/%3Cimg%20src=x%3E", "/api/v1/agents/<b>"],
)
@pytest_twisted.ensureDeferred
async def test_a_404_never_echoes_what_the_client_sent(live: WebOnLoopback, path: str) -> None:
    code, headers, body = await live.request("GET", path)
    assert code == 404
    assert b"<" not in body and b"script" not in body and b"img" not in body, body
    assert headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "path", ["/api/v1/state", "/mitel_data.json", "/healthz", "/api/v1/nope", "/metrics"]
)
@pytest_twisted.ensureDeferred
async def test_every_answer_says_nosniff(live: WebOnLoopback, path: str) -> None:
    _, headers, _ = await live.request("GET", path)
    assert headers["x-content-type-options"] == "nosniff"


@pytest_twisted.ensureDeferred
async def test_head_of_a_missing_path_has_the_json_headers_and_no_body(live: WebOnLoopback) -> None:
    code, headers, body = await live.request("HEAD", "/api/v1/nope")
    assert (code, headers["content-type"], body) == (404, "application/json", b"")


@pytest.mark.parametrize("method", ALL_METHODS_BUT_GET)
@pytest.mark.parametrize("path", ["/api/v1/state", "/api/v1/nope", "/mitel_data.json", "/healthz"])
@pytest_twisted.ensureDeferred
async def test_405_is_json_with_allow(live: WebOnLoopback, method: str, path: str) -> None:
    code, headers, body = await live.request(method, path)
    assert code == 405
    assert headers["allow"] == "GET, HEAD"
    doc = api_error(code, headers, body)
    assert doc == {"error": "method_not_allowed", "detail": "only GET and HEAD are served here"}


@pytest.mark.parametrize(
    "path",
    ["/api/v1/state", "/api/v1/agents/1", "/api/v1/events", "/api/v1/nope", "/mitel_data.json"],
)
@pytest_twisted.ensureDeferred
async def test_401_is_json_with_www_authenticate(guarded: WebOnLoopback, path: str) -> None:
    refused: list[Headers] = [{}, {"Authorization": "Bearer wrong"}]
    for headers in refused:
        code, found, body = await guarded.request("GET", path, headers)
        assert code == 401
        assert found["www-authenticate"] == 'Bearer realm="mitelacd"'
        doc = api_error(code, found, body)
        assert doc == {"error": "unauthorized", "detail": "a valid access token is required"}
    code, found, body = await guarded.request("GET", path + "?token=wrong")
    assert code == 401 and api_error(code, found, body)["error"] == "unauthorized"


@pytest_twisted.ensureDeferred
async def test_the_token_still_opens_the_api(guarded: WebOnLoopback) -> None:
    code, headers, body = await guarded.request(
        "GET", "/api/v1/state", {"Authorization": f"Bearer {TOKEN}"}
    )
    assert code == 200 and headers["content-type"] == "application/json"
    code, headers, body = await guarded.request("GET", f"/api/v1/nope?token={TOKEN}")
    assert code == 404 and api_error(code, headers, body)["error"] == "not_found"


@pytest_twisted.ensureDeferred
async def test_503_is_json(guarded: WebOnLoopback) -> None:
    # No room for one more event stream client.
    code, headers, body = await guarded.request("GET", f"/api/v1/events?token={TOKEN}")
    assert code == 503
    doc = api_error(code, headers, body)
    assert doc == {"error": "busy", "detail": "too many event stream clients"}


@pytest_twisted.ensureDeferred
async def test_500_is_json_and_the_failure_is_logged(
    monkeypatch: pytest.MonkeyPatch, logged_failures: list[dict[str, Any]]
) -> None:
    def broken(self: FloorDocuments, stale: bytes) -> list[bytes]:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(FloorDocuments, "feed_document", broken)
    live = WebOnLoopback(WebSettings())
    try:
        code, headers, body = await live.request("GET", "/api/v1/feed")
    finally:
        await live.service.stopService()
    assert code == 500
    assert api_error(code, headers, body) == {
        "error": "internal_error",
        "detail": "the request failed; see the log",
    }
    assert b"secret internals" not in body
    assert [str(e["log_failure"].value) for e in logged_failures] == ["secret internals"]
    logged_failures.clear()


@pytest_twisted.ensureDeferred
async def test_the_board_page_answers_people_in_html(guarded: WebOnLoopback) -> None:
    code, headers, body = await guarded.request("GET", "/")
    assert code == 401 and headers["content-type"].startswith("text/html")
    assert headers["www-authenticate"] == 'Bearer realm="mitelacd"'
    assert b"A valid access token is required." in body
    code, headers, body = await guarded.request("POST", f"/?token={TOKEN}")
    assert code == 405 and headers["allow"] == "GET, HEAD"
    assert headers["content-type"].startswith("text/html")
