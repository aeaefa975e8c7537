"""The wall board's line of the day's figures, in a real browser.

Each agent tile and each group and path card gets a quiet line from
``/api/v1/reports/today/{agents,paths,groups}``: ACD calls and average talk
time, and a queue's peak. The board fetches those when it starts and every
30 s, never on a push (the test of that period shortens it, through the
board's ``window.MITELACD_TIMERS``); ``?today=0`` hides the line; a server
without the reports (an older daemon: 404) leaves it out and the board
works on.

Two servers are used: a stand-in (``twistd web`` serving the board page and
JSON files the tests write, so every figure is known and can be changed, or
removed for a 404) and the real daemon, fed a scripted stream of ACD calls
of known length on its loopback PBX socket.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from test_board_browser import (
    LAYOUT,
    LOCAL,
    RECORD_STREAM,
    ROOT,
    SCREENS,
    WAIT,
    Board,
    Scripted,
    Twistd,
    board_timers,
    chromium_is_installed,  # noqa: F401 (an autouse fixture: fail, never skip)
    json_object,
    make_driver,
    parse_iso,
    resume,
    screen,
    scripted_floor,
    shown_once,
    wait_for_state,
)

from mitelacd.web.resources import board_page

#: Chromium, and the twistd children it shows.
pytestmark = [pytest.mark.browser, pytest.mark.processes]

#: Installed before the board's script: counts the board's fetches of the reports.
RECORD_TODAY = """
(() => {
  const log = window.__today = [];
  const realFetch = window.fetch;
  window.fetch = (resource, ...rest) => {
    const url = String(resource);
    if (url.includes("/reports/")) log.push([Date.now(), new URL(url, location.href).pathname]);
    return realFetch(resource, ...rest);
  };
})();
"""

#: Every tile's and card's line of the day: its forms, longest first, and the
#: one in sight; with sizes and opacity against the text above it.
READ_TODAY = """
const forms = (node) => (node ? [...node.children].map((s) => s.textContent) : []);
const inSight = (node) => {
  if (!node || !node.checkVisibility()) return '';
  const box = node.getBoundingClientRect();
  const seen = [...node.children].find((s) => {
    const r = s.getBoundingClientRect();
    return r.height > 1 && r.top >= box.top - 0.5 && r.bottom <= box.bottom + 0.5;
  });
  return seen ? seen.textContent : '';
};
const line = (e, sel, above) => {
  const node = e.querySelector(sel);
  const upper = e.querySelector(above);
  return {
    forms: forms(node), seen: inSight(node),
    size: parseFloat(getComputedStyle(node).fontSize),
    above: parseFloat(getComputedStyle(upper).fontSize),
    opacity: Number(getComputedStyle(node).opacity),
    colour: getComputedStyle(node.firstElementChild || node).color,
    above_colour: getComputedStyle(upper).color,
  };
};
const all = (sel) => [...document.querySelectorAll(sel)];
return {
  version: document.body.dataset.version ?? null,
  live: document.body.dataset.live,
  banner: document.getElementById('stale-banner').hidden ? null
    : document.getElementById('stale-banner').textContent.trim(),
  strip: document.getElementById('agents').dataset.today !== undefined,
  agents: Object.fromEntries(all('[data-agent]').map(
    (e) => [e.dataset.agent, {...line(e, '.a-today', '.a-what'),
                              what: e.querySelector('.a-what').textContent}])),
  groups: Object.fromEntries(all('[data-group]').map(
    (e) => [e.dataset.group, line(e, '.q-today', '.q-name')])),
  paths: Object.fromEntries(all('[data-path]').map(
    (e) => [e.dataset.path, line(e, '.q-today', '.q-name')])),
  fetches: window.__today.map(([at, path]) => path),
  fetched_at: window.__today.map(([at, path]) => at),
  polls: window.__sse.polls,
};
"""


def read_today(board: Board) -> dict[str, Any]:
    return json_object(board.driver.execute_script(READ_TODAY))


def today_lines(page: dict[str, Any], kind: str) -> dict[str, str]:
    """The line in sight on each tile or card of ``kind``."""
    return {key: line["seen"] for key, line in page[kind].items()}


def now_iso(offset: float = 0.0) -> str:
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def local_hhmm(iso: str) -> str:
    """How the browser (same machine, same time zone) writes a server time to the minute."""
    return datetime.datetime.fromtimestamp(parse_iso(iso)).strftime("%H:%M")


def average(seconds: float) -> str:
    """An average talk time as the board writes it (halves up): ``2:08``."""
    whole = math.floor(seconds + 0.5)
    return f"{whole // 60}:{whole % 60:02d}"


# --- the stand-in server ---------------------------------------------------------


def agent_doc(agent_id: str, name: str | None, state: str = "on_call") -> dict[str, Any]:
    """An agent as /api/v1/state has it (docs/api.md), on a call for a minute."""
    since = now_iso(-60)
    calls = [{"button": 1, "kind": "acd", "held": False, "path": "860", "since": since}]
    return {
        "id": agent_id, "name": name, "team": None, "groups": ["610"],
        "status": "busy" if state == "on_call" else "idle", "state": state,
        "state_since": since, "attention": None,
        "activity": "acd_call" if state == "on_call" else "none", "logged_in": True,
        "dnd": False, "dnd_reason": None, "dnd_reason_text": None,
        "make_busy": False, "make_busy_reason": None, "make_busy_reason_text": None,
        "wrap_up": False, "on_hold": False, "ringing": None,
        "calls": calls if state == "on_call" else [],
        "since": since, "confirmed": True, "carried": False,
    }  # fmt: skip


def queue_doc(queue_id: str, name: str, waiting: int) -> dict[str, Any]:
    return {
        "id": queue_id, "name": name, "level": "ok", "waiting": waiting,
        "agents_logged_in": 3, "longest_wait_seconds": 12 * waiting,
        "reported_at": now_iso(), "confirmed": True,
    }  # fmt: skip


#: The stand-in's floor: agents 1001-1004 and as many more as a test asks for.
NAMES = {"1001": "Ann Lee", "1002": "Bob Stone", "1003": "Cy Young", "1004": None}
GROUPS = {"610": "Sales", "620": "Support"}
PATHS = {"860": "Sales hotline", "861": "Support line"}
#: The peak of path 860 and group 610, at 10:42 local time today.
PEAK_AT = (
    datetime.datetime.now()
    .replace(hour=10, minute=42, second=17, microsecond=0)
    .astimezone(datetime.timezone.utc)
    .isoformat()
    .replace("+00:00", "Z")
)


def report(kind: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    day_start = datetime.datetime.now().replace(hour=0, minute=0, second=0, microsecond=0)
    return {
        "day": day_start.date().isoformat(),
        "day_start": day_start.astimezone(datetime.timezone.utc).isoformat(),
        "as_of": now_iso(),
        kind: rows,
    }


def agent_figures(agent_id: str, calls: int, talk: float) -> dict[str, Any]:
    return {
        "id": agent_id, "name": NAMES.get(agent_id), "first_seen": now_iso(-3600),
        "acd_calls": calls, "acd_talk_seconds": talk,
        "acd_talk_average_seconds": round(talk / calls, 3) if calls else None,
        "hold_seconds": 30.0, "holds": 1, "wrap_up_seconds": 45.5, "logged_in_seconds": 3600.0,
        "personal_calls": 0, "outgoing_calls": 1, "dnd_seconds": 0.0, "make_busy_seconds": 0.0,
        "rang_unanswered": 0,
    }  # fmt: skip


def queue_figures(
    queue_id: str, peak: int, peak_at: str | None, calls: int | None = None, talk: float = 0.0
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": queue_id, "name": None, "max_waiting": peak, "max_waiting_at": peak_at,
        "max_longest_wait_seconds": 210, "mean_waiting": 1.3,
    }  # fmt: skip
    if calls is not None:
        row.update(
            acd_calls=calls,
            acd_talk_seconds=talk,
            acd_talk_average_seconds=round(talk / calls, 3) if calls else None,
        )
    return row


#: The day as the stand-in first tells it: 1001 12 calls of 127.85 s on
#: average (2:08), 1002 one call, 1003 none, 1004 not in the report at all;
#: path 860 40 calls of 2:31 and a peak of 5 at 10:42, path 861 no calls and
#: a peak without a time; group 610 a peak of 5 at 10:42, group 620 none.
FIRST_DAY = {
    "agents": [
        agent_figures("1001", 12, 1534.2),
        agent_figures("1002", 1, 61.0),
        agent_figures("1003", 0, 0.0),
    ],
    "paths": [
        queue_figures("860", 5, PEAK_AT, calls=40, talk=40 * 151.2),
        queue_figures("861", 2, None, calls=0),
    ],
    "groups": [queue_figures("610", 5, PEAK_AT), queue_figures("620", 0, None)],
}
FIRST_LINES = {
    "agents": {
        "1001": "today: 12 calls · avg 2:08",
        "1002": "today: 1 call · avg 1:01",
        "1003": "today: no calls",
        "1004": "today: no calls",
    },
    "paths": {
        "860": "today: 40 calls · avg 2:31 · peak 5 waiting at 10:42",
        "861": "today: no calls · peak 2 waiting",
    },
    "groups": {"610": "today: peak 5 waiting at 10:42", "620": "today: none waited"},
}


@dataclass
class StandIn(Board):
    """``twistd web`` serving the board page and the JSON files of :attr:`root`."""

    root: Path
    agents: int = 4
    version: int = 1

    def write(self, path: str, doc: dict[str, Any]) -> None:
        """A file served at ``/path``, replaced whole (never read half written)."""
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        part.write_text(json.dumps(doc))
        os.replace(part, target)

    def floor(self, agents: int = 4, stale: bool = False) -> None:
        """A new version of the floor: ``agents`` agents, 1001 and up, every
        other one on a call, and the two groups and paths; ``stale``: the PBX
        has gone silent."""
        self.agents = agents
        self.version += 1
        ids = [str(1001 + i) for i in range(agents)]
        people = [
            agent_doc(i, NAMES.get(i, f"Agent {i}"), "on_call" if n % 2 == 0 else "available")
            for n, i in enumerate(ids)
        ]
        self.write(
            "api/v1/state",
            {
                "generated_at": now_iso(), "stale": stale, "version": self.version,
                "last_update": now_iso(),
                "feed": {
                    "connected": True, "stale": stale, "pbx_host": "127.0.0.1",
                    "last_record_at": now_iso(-30),
                },
                "totals": {"logged_in": agents, "waiting": 5, "longest_wait_seconds": 60},
                "agents": people,
                "groups": [queue_doc(k, v, 2) for k, v in GROUPS.items()],
                "paths": [queue_doc(k, v, 3) for k, v in PATHS.items()],
                "extensions": [],
            },
        )  # fmt: skip

    def reports(self, day: dict[str, list[dict[str, Any]]] | None) -> None:
        """The day's figures served as ``day`` says; None: no reports (404)."""
        for kind in ("agents", "paths", "groups"):
            path = self.root / "api/v1/reports/today" / kind
            if day is None:
                path.unlink(missing_ok=True)
            else:
                self.write(f"api/v1/reports/today/{kind}", report(kind, day[kind]))


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    folder = tmp_path_factory.mktemp("today-browser")
    chrome = make_driver(folder)
    try:
        for script in (RECORD_STREAM, RECORD_TODAY):
            chrome.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": script})
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture(scope="module")
def standin(
    driver: webdriver.Chrome, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StandIn]:
    folder = tmp_path_factory.mktemp("standin")
    root = folder / "site"
    root.mkdir()
    (root / "index.html").write_bytes(board_page())
    child = Twistd("web", "--listen", "tcp:0:interface=127.0.0.1", "--path", str(root), cwd=folder)
    try:
        port = child.wait_for(r"Site starting on (\d+)", timeout=WAIT).group(1)
        board = StandIn(child, f"http://127.0.0.1:{port}/", driver, folder, root)
        board.floor()
        board.reports(FIRST_DAY)
        yield board
    finally:
        resume(child)
        child.stop()


def open_standin(board: StandIn, query: str = "") -> dict[str, Any]:
    """The stand-in's board at ``query``, once it shows the floor.

    The stand-in has no event stream: the board polls, every 0.25 s here (2 s
    on a real board without one, as tests/test_board_browser.py shows).
    """
    with board_timers(board.driver, POLL_MS=250):
        board.driver.get(board.base + query)
    return board.until(
        lambda _: (
            (p := read_today(board))["version"] is not None
            and len(p["agents"]) == (0 if "view=queues" in query else board.agents)
            and p
        )
    )


def all_lines(board: Board, wanted: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The page once every tile and card shows the line ``wanted`` has for it."""

    def shown(_: Any) -> dict[str, Any] | None:
        page = read_today(board)
        seen = {kind: today_lines(page, kind) for kind in wanted}
        return page if seen == wanted else None

    try:
        return board.until(shown, timeout=WAIT)
    except AssertionError:
        page = read_today(board)
        raise AssertionError(
            f"{ {kind: today_lines(page, kind) for kind in wanted} } != {wanted}"
        ) from None


def layout_problems(board: Board) -> dict[str, Any]:
    seen = json_object(board.driver.execute_script(LAYOUT))
    return {k: seen[k] for k in ("problems", "min_font", "min_at", "tiles", "unit")}


# --- against the stand-in --------------------------------------------------------


def test_each_tile_and_card_says_the_day(standin: StandIn) -> None:
    """Calls and average talk per agent and path, peaks per path and group, in
    the longest form that fits; smaller and quieter than the text above it."""
    standin.floor(4)
    standin.reports(FIRST_DAY)
    open_standin(standin)
    page = all_lines(standin, FIRST_LINES)
    assert page["strip"] and page["banner"] is None
    assert page["agents"]["1001"]["forms"] == [
        "today: 12 calls · avg 2:08", "12 calls · avg 2:08", "12 calls · 2:08", "12 calls",
    ]  # fmt: skip
    # Shortened, "today" is kept longest on the cards (beside the figures of now).
    assert page["paths"]["860"]["forms"] == [
        "today: 40 calls · avg 2:31 · peak 5 waiting at 10:42",
        "today: 40 calls · avg 2:31 · peak 5 at 10:42",
        "today: 40 calls · avg 2:31 · peak 5",
        "today: 40 calls · avg 2:31",
        "today: 40 calls · 2:31",
        "40 calls · avg 2:31",
        "40 calls · 2:31",
        "40 calls",
    ]
    assert page["groups"]["610"]["forms"] == [
        "today: peak 5 waiting at 10:42", "today: peak 5 at 10:42", "today: peak 5", "peak 5",
    ]  # fmt: skip
    for line in [*page["agents"].values(), *page["groups"].values(), *page["paths"].values()]:
        # Secondary: no larger than the line above, never under 20 px, quieter.
        assert 20 <= line["size"] <= line["above"], line
        assert line["opacity"] < 1 or line["colour"] != line["above_colour"], line
    for tile in page["agents"].values():
        assert tile["size"] < tile["above"], tile
    # Only the three reports were asked for, once each, when the board started.
    assert sorted(page["fetches"]) == [
        "/api/v1/reports/today/agents", "/api/v1/reports/today/groups",
        "/api/v1/reports/today/paths",
    ]  # fmt: skip
    for width, height in SCREENS:
        screen(standin.driver, width, height)
        time.sleep(0.3)  # a resize is laid out at the next frame
        seen = layout_problems(standin)
        assert seen["problems"] == [] and seen["min_font"] >= SCREENS[width, height] - 0.01, seen
        assert read_today(standin)["strip"], (width, height)
    screen(standin.driver, 1920, 1080)


#: The board's timers as board.js has them, for a real board.
BOARD_JS = ROOT / "mitelacd" / "web" / "board" / "board.js"


def test_a_real_board_fetches_the_figures_every_30_s() -> None:
    """The period the test below shortens is 30 s on a real board (and the
    poll's 2 s it shortens too)."""
    timers = dict(re.findall(r"^\s+([A-Z_]+_MS): (\d+),", BOARD_JS.read_text(), re.M))
    assert (timers["TODAY_MS"], timers["POLL_MS"]) == ("30000", "2000"), timers


#: The board's timers in the test below: the day's figures every 8 s, not 30,
#: and the floor polled every 0.25 s, not 2 (as open_standin does).
TODAY_MS, POLL_MS = 8000, 250


def test_the_figures_are_fetched_every_30_s_not_on_each_change(standin: StandIn) -> None:
    """The floor changes several times a second; the reports are asked for again
    only TODAY_MS (30 s, shortened here) after the first time, and their new
    figures are then shown."""
    standin.floor(4)
    standin.reports(FIRST_DAY)
    with board_timers(standin.driver, TODAY_MS=TODAY_MS, POLL_MS=POLL_MS):
        page = open_standin(standin)
    all_lines(standin, FIRST_LINES)
    second = {
        "agents": [agent_figures("1001", 13, 13 * 130.4), agent_figures("1003", 1, 4.0)],
        "paths": [queue_figures("860", 7, PEAK_AT, calls=41, talk=41 * 152.0)],
        "groups": [queue_figures("610", 7, PEAK_AT), queue_figures("620", 1, PEAK_AT)],
    }
    standin.reports(second)
    start = read_today(standin)["fetched_at"][0] / 1000
    versions = set()
    while time.time() < start + 0.9 * TODAY_MS / 1000:
        standin.floor(4)  # a new version: the board, polling, shows it
        time.sleep(0.3)
        page = read_today(standin)
        versions.add(page["version"])
        assert len(page["fetches"]) == 3, page["fetches"]
        assert today_lines(page, "agents") == FIRST_LINES["agents"]
    assert len(versions) >= 10 and page["polls"] >= 10, (versions, page["polls"])
    page = all_lines(
        standin,
        {
            "agents": {
                "1001": "today: 13 calls · avg 2:10",
                "1002": "today: no calls",
                "1003": "today: 1 call · avg 0:04",
                "1004": "today: no calls",
            },
            "paths": {
                "860": "today: 41 calls · avg 2:32 · peak 7 waiting at 10:42",
                "861": "today: no calls",
            },
            "groups": {
                "610": "today: peak 7 waiting at 10:42",
                "620": f"today: peak 1 waiting at {local_hhmm(PEAK_AT)}",
            },
        },
    )
    assert len(page["fetches"]) == 6, page["fetches"]
    gaps = [b - a for a, b in zip(page["fetched_at"][:3], page["fetched_at"][3:])]
    assert all(TODAY_MS - 1000 <= gap <= TODAY_MS + 1500 for gap in gaps), gaps


def test_a_board_not_live_gives_the_line_s_room_to_the_banner(standin: StandIn) -> None:
    """The feed goes silent: the banner comes, the lines go; live again, they
    are back with the figures the board had, without asking again."""
    standin.floor(4)
    standin.reports(FIRST_DAY)
    open_standin(standin)
    all_lines(standin, FIRST_LINES)
    standin.floor(4, stale=True)
    page = standin.until(lambda _: (p := read_today(standin))["live"] == "stale" and p)
    assert page["banner"] and not page["strip"]
    lines = [*page["agents"].values(), *page["groups"].values(), *page["paths"].values()]
    assert all(line["seen"] == "" for line in lines), lines
    assert page["agents"]["1001"]["forms"][0] == FIRST_LINES["agents"]["1001"]
    assert layout_problems(standin)["problems"] == []
    standin.floor(4)
    page = all_lines(standin, FIRST_LINES)
    assert page["live"] == "live" and page["strip"] and page["banner"] is None
    assert len(page["fetches"]) == 3, page["fetches"]


def test_today_0_hides_the_line(standin: StandIn) -> None:
    standin.floor(4)
    standin.reports(FIRST_DAY)
    page = open_standin(standin, "?today=0")
    time.sleep(2)
    page = read_today(standin)
    assert page["fetches"] == []
    assert not page["strip"]
    lines = [*page["agents"].values(), *page["groups"].values(), *page["paths"].values()]
    assert len(lines) == 8 and all(line["forms"] == [] for line in lines), lines
    assert layout_problems(standin)["problems"] == []


def test_an_older_server_without_reports(standin: StandIn) -> None:
    """404 for the reports: no line, no banner, and the board keeps following the floor."""
    standin.floor(4)
    standin.reports(None)
    try:
        page = open_standin(standin)
        standin.until(lambda _: len(read_today(standin)["fetches"]) == 3)
        time.sleep(1)
        page = read_today(standin)
        assert page["banner"] is None and page["live"] == "live", page
        assert not page["strip"]
        lines = [*page["agents"].values(), *page["groups"].values(), *page["paths"].values()]
        assert all(line["forms"] == [] and line["seen"] == "" for line in lines), lines
        assert layout_problems(standin)["problems"] == []
        # Still live: a fifth agent comes, and is drawn.
        standin.floor(5)
        page = standin.until(lambda _: (p := read_today(standin))["agents"].get("1005") and p)
        assert page["banner"] is None and page["live"] == "live"
        assert page["agents"]["1005"]["forms"] == []
    finally:
        standin.reports(FIRST_DAY)


def test_the_line_where_there_is_room(standin: StandIn) -> None:
    """40 tiles have room for the line on both screens; 150 at 1080p have not
    (it would need text under 20 px): the line gives way, nothing scrolls."""
    for count, room in ((40, True), (150, False)):
        standin.floor(count)
        page = open_standin(standin)
        page = standin.until(lambda _: (p := read_today(standin))["agents"]["1001"]["forms"] and p)
        for width, height in SCREENS:
            screen(standin.driver, width, height)
            time.sleep(0.3)
            seen = layout_problems(standin)
            assert seen["tiles"] == count, seen
            assert seen["problems"] == [], (count, width, height, seen)
            assert seen["min_font"] >= SCREENS[width, height] - 0.01, seen
            page = read_today(standin)
            assert page["strip"] == room, (count, width, height, seen)
            if room:
                assert all(t["seen"] for t in page["agents"].values())
        screen(standin.driver, 1920, 1080)
    # The cards alone, large: their lines too.
    standin.floor(4)
    page = open_standin(standin, "?view=queues")
    page = all_lines(standin, {k: FIRST_LINES[k] for k in ("paths", "groups")})
    assert "/api/v1/reports/today/agents" not in page["fetches"]
    assert layout_problems(standin)["problems"] == []


# --- against the daemon -----------------------------------------------------------

#: The daemon's names file: two agents of group 610, path 860.
DAEMON_NAMES = """
[agents]
"1001" = { name = "Ada Lovelace", groups = ["610"] }
"1002" = { name = "Grace Hopper", groups = ["610"] }
[groups]
"610" = "Sales"
[paths]
"860" = "Sales hotline"
"""


def fetch_json(board: Board, path: str) -> dict[str, Any]:
    with LOCAL.open(board.base + path, timeout=5) as response:
        return json_object(json.loads(response.read()))


def row_of(doc: dict[str, Any], kind: str, key: str) -> dict[str, Any]:
    return next(r for r in doc[kind] if r["id"] == key)


@pytest.fixture(scope="module")
def daemon(
    driver: webdriver.Chrome, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scripted]:
    """The daemon, its PBX a loopback socket the test writes records to."""
    folder = tmp_path_factory.mktemp("today-daemon")
    with scripted_floor(driver, folder, DAEMON_NAMES) as board:
        yield board


def test_the_daemon_s_figures_reach_the_tiles(daemon: Scripted) -> None:
    """Agent 1001 answers two ACD calls on path 860, of about 1 s and 2 s;
    1002 logs in and takes none; path 860 and group 610 report calls waiting.
    The tiles and cards say what the reports say, and pushes do not fetch them."""
    board = daemon
    board.steps("A", agent="1001", dn="2001")
    board.steps("A", agent="1002", dn="2002")
    for seconds in (1.0, 2.0):
        board.steps("G01860", agent="1001", dn="2001")
        time.sleep(seconds)
        board.steps("J01", agent="1001", dn="2001")
    board.stats("Q", "860", "0030020045")
    board.stats("K", "610", "0020020030")
    wait_for_state(board, lambda s: len(s["agents"]) == 2 and len(s["paths"]) == 1, "the floor")
    agents = fetch_json(board, "api/v1/reports/today/agents")
    paths = fetch_json(board, "api/v1/reports/today/paths")
    groups = fetch_json(board, "api/v1/reports/today/groups")
    ada, p860, g610 = (
        row_of(agents, "agents", "1001"),
        row_of(paths, "paths", "860"),
        row_of(groups, "groups", "610"),
    )
    assert (ada["acd_calls"], p860["acd_calls"]) == (2, 2), (ada, p860)
    assert 2.9 <= ada["acd_talk_seconds"] <= 4.5, ada
    assert (p860["max_waiting"], g610["max_waiting"]) == (3, 2), (p860, g610)
    talk = average(ada["acd_talk_average_seconds"])
    wanted = {
        "agents": {"1001": f"today: 2 calls · avg {talk}", "1002": "today: no calls"},
        "paths": {
            "860": f"today: 2 calls · avg {average(p860['acd_talk_average_seconds'])}"
            f" · peak 3 waiting at {local_hhmm(p860['max_waiting_at'])}"
        },
        "groups": {"610": f"today: peak 2 waiting at {local_hhmm(g610['max_waiting_at'])}"},
    }
    board.open()
    page = all_lines(board, wanted)
    assert page["strip"] and page["banner"] is None
    assert layout_problems(board)["problems"] == []
    # Pushes keep coming (make busy on and off): the reports are not fetched again.
    first = int(page["version"])
    for code in "EFEF":
        board.steps(code, agent="1002", dn="2002")
        time.sleep(0.3)
    shown_once(board, lambda s: s["version"] > first, "a newer version")
    page = read_today(board)
    assert int(page["version"]) > first
    assert sorted(page["fetches"]) == [
        "/api/v1/reports/today/agents", "/api/v1/reports/today/groups",
        "/api/v1/reports/today/paths",
    ]  # fmt: skip
    assert today_lines(page, "agents") == wanted["agents"]
