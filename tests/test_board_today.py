"""The wall board's figures of the day, in a real browser.

The board fetches ``/api/v1/reports/today/agents`` (in every view: a
group's figures are its members') and ``/api/v1/reports/today/paths``
(unless ``?view=agents``) when it starts and every 30 s, never on a push
(the test of that period shortens it, through the board's
``window.MITELACD_TIMERS``); it never asks for ``/groups``. From them:

* each agent tile: the agent's ACD calls today, a bare number in the tile's
  top-right corner beside the name ("0" for an agent the report leaves out);
* each group and path card: the calls answered (a path's own; a group's, the
  sum of its members'; "–" with nothing to go on), and a line of the agents
  available and logged in and the average handle time, in the longest form
  that fits;
* the header: the occupancy of the agents of the view.

While the data is not live the figures stay, dimmed with the rest of the
board; ``?today=0`` leaves them out, and so does a server without the
reports (an older daemon: 404), the board working on.

Two servers are used: a stand-in (``twistd web`` serving the board page and
JSON files the tests write, so every figure is known and can be changed, or
removed for a 404) and the real daemon, fed a scripted stream of ACD calls
of known length on its loopback PBX socket. What the board should show is
worked out here from the documents served, by the board's rules
(:func:`expected_day`).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
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
    person,
    resume,
    screen,
    scripted_floor,
    shown_once,
    wait_for_state,
)

from mitelacd.web.resources import board_page

#: Chromium, and the twistd children it shows.
pytestmark = [pytest.mark.browser, pytest.mark.processes]

#: Installed before the board's script: counts the board's fetches of the
#: reports and their answers, and keeps the errors the page's scripts throw.
RECORD_TODAY = """
(() => {
  const log = window.__today = [];
  const errors = window.__errors = [];
  const realFetch = window.fetch;
  window.fetch = (resource, ...rest) => {
    const url = String(resource);
    if (!url.includes("/reports/")) return realFetch(resource, ...rest);
    log.push([Date.now(), new URL(url, location.href).pathname]);
    return realFetch(resource, ...rest).finally(() => { log.answered = (log.answered || 0) + 1; });
  };
  window.addEventListener("error", (e) => errors.push(String(e.message)));
  window.addEventListener("unhandledrejection", (e) => errors.push(String(e.reason)));
})();
"""

#: The day's figures as the page shows them: per tile the calls and where
#: they are drawn, per card the figures and the forms of its line (longest
#: first) with the one in sight, the header's occupancy (null while its box
#: is not shown), and the reports fetched.
READ_TODAY = """
const all = (sel) => [...document.querySelectorAll(sel)];
const forms = (node) => [...node.children].map((s) => s.textContent);
// The form of a text held in several lengths that is in sight, whole, in its line.
const formInSight = (node) => {
  if (!node.checkVisibility()) return null;
  const box = node.getBoundingClientRect();
  return [...node.children].find((s) => {
    const r = s.getBoundingClientRect();
    return r.height > 1 && r.top >= box.top - 0.5 && r.bottom <= box.bottom + 0.5;
  }) ?? null;
};
// Where a node's text is drawn (a form's span is as wide as its line, its text is not).
const ink = (node) => {
  const range = document.createRange();
  range.selectNodeContents(node);
  return range.getBoundingClientRect();
};
const tile = (e) => {
  const t = e.getBoundingClientRect();
  const calls = e.querySelector('.a-today');
  const c = calls.getBoundingClientRect();
  const name = formInSight(e.querySelector('.a-name'));
  const n = name ? ink(name) : null;
  const seen = calls.checkVisibility() && c.width > 1 && c.height > 1
    && c.left >= t.left - 0.5 && c.right <= t.right + 0.5
    && c.top >= t.top - 0.5 && c.bottom <= t.bottom + 0.5;
  return {
    calls: calls.textContent, in_sight: e.checkVisibility(), seen,
    // At the top right, no further from either edge than it is high.
    corner: seen && t.right - c.right < c.height && c.top - t.top < c.height,
    // On the name's line, right of the name's text.
    beside: seen && n !== null && n.right <= c.left + 0.5
      && Math.min(n.bottom, c.bottom) - Math.max(n.top, c.top) > 1,
  };
};
const card = (e) => {
  const line = e.querySelector('.q-line');
  const field = (name) => e.querySelector(`b[data-field=${name}]`).textContent;
  return {
    waiting: field('waiting'), answered: field('answered'), longest: field('longest'),
    forms: forms(line), seen: formInSight(line)?.textContent ?? '',
  };
};
const occupancy = document.querySelector('.t-occupancy');
const banner = document.getElementById('stale-banner');
const opacity = (sel) => Number(getComputedStyle(document.querySelector(sel)).opacity);
return {
  version: document.body.dataset.version ?? null,
  live: document.body.dataset.live,
  banner: banner.hidden ? null : banner.textContent.trim().replace(/\\s+/g, ' '),
  banner_in_header: banner.checkVisibility() && banner.closest('header .sub') !== null,
  today: document.getElementById('agents').dataset.today !== undefined,
  agents: Object.fromEntries(all('[data-agent]').map((e) => [e.dataset.agent, tile(e)])),
  groups: Object.fromEntries(all('[data-group]').map((e) => [e.dataset.group, card(e)])),
  paths: Object.fromEntries(all('[data-path]').map((e) => [e.dataset.path, card(e)])),
  occupancy: occupancy.checkVisibility()
    ? occupancy.querySelector('[data-total=occupancy]').textContent : null,
  opacity: {agents: opacity('#agents'), queues: opacity('#queues'), totals: opacity('.totals')},
  fetches: window.__today.map(([at, path]) => path),
  fetched_at: window.__today.map(([at, path]) => at),
  answered: window.__today.answered ?? 0,
  polls: window.__sse.polls,
  errors: window.__errors.slice(0, 10),
};
"""

AGENTS_REPORT = "/api/v1/reports/today/agents"
PATHS_REPORT = "/api/v1/reports/today/paths"


def read_today(board: Board) -> dict[str, Any]:
    return json_object(board.driver.execute_script(READ_TODAY))


def day_on(page: dict[str, Any]) -> dict[str, Any]:
    """The day's figures a page shows, as :func:`expected_day` gives them."""
    cards = {
        kind: {k: {"answered": c["answered"], "forms": c["forms"]} for k, c in page[kind].items()}
        for kind in ("groups", "paths")
    }
    calls = {k: t["calls"] for k, t in page["agents"].items()}
    return {"calls": calls, **cards, "occupancy": page["occupancy"]}


def now_iso(offset: float = 0.0) -> str:
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- the board's rules -------------------------------------------------------------


def figure(value: Any) -> float | None:
    """A figure of a report row as the board takes it: a finite number, else none."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def rounded(value: float) -> int:
    """JavaScript's Math.round: halves up."""
    return math.floor(value + 0.5)


def whole(value: Any) -> int | None:
    number = figure(value)
    return None if number is None else max(0, rounded(number))


def seconds(row: dict[str, Any], *names: str) -> float:
    """The sum of the row's figures ``names``, in that order; a missing one is 0."""
    total = 0.0
    for name in names:
        total += figure(row.get(name)) or 0.0
    return total


def handled(row: dict[str, Any]) -> float:
    """Time an agent or a path spent on ACD calls: talk, hold and wrap-up."""
    return seconds(row, "acd_talk_seconds", "hold_seconds", "wrap_up_seconds")


def minutes(value: float) -> str:
    """An average as the board writes it (halves up): ``2:08``, past an hour ``1h05``."""
    s = max(0, rounded(value))
    return f"{s // 60}:{s % 60:02d}" if s < 3600 else f"{s // 3600}h{s // 60 % 60:02d}"


def members_of(state: dict[str, Any], group: str) -> list[dict[str, Any]]:
    """The agents of /api/v1/state in ``group``, in the document's order."""
    return [a for a in state["agents"] if group in [str(g) for g in a.get("groups") or []]]


def expected_day(
    state: dict[str, Any],
    agents: list[dict[str, Any]] | None,
    paths: list[dict[str, Any]] | None,
    tiles: bool = True,
) -> dict[str, Any]:
    """What the board shows of the day, for the floor ``state`` and the rows of
    the agents and paths reports (None: no report); ``tiles``: the view draws them.

    Each tile: the agent's ACD calls ("0" when the report leaves it out; ""
    without the report). Each card: the calls answered and its line's forms,
    long, short and shortest: members available (groups with members), agents
    logged in, average handle time (a path's own, else its handled time over
    its calls; a group's members' handled time over their calls), and first, for
    a path whose row has SMDR figures (``offered`` not null), its service level
    and abandoned calls, marked "≈" while provisional. The header:
    the occupancy of the agents counted (all of the floor, here), or None
    without the report (its box is not shown).
    """
    rows = None if agents is None else {r["id"]: r for r in agents}
    path_rows = None if paths is None else {r["id"]: r for r in paths}
    day: dict[str, Any] = {"calls": {}, "groups": {}, "paths": {}, "occupancy": None}
    if tiles:
        for a in state["agents"]:
            if a["state"] == "logged_out":
                continue
            calls = None if rows is None else whole(rows.get(a["id"], {}).get("acd_calls"))
            day["calls"][a["id"]] = "" if rows is None else str(calls or 0)
    for kind, queues in (("groups", state["groups"]), ("paths", state["paths"])):
        for q in queues:
            answered: tuple[int, float | None] | None = None
            members = members_of(state, q["id"]) if kind == "groups" else []
            if rows is None:
                pass
            elif kind == "paths":
                if path_rows is not None:
                    row = path_rows.get(q["id"])
                    if row is None:
                        answered = (0, None)
                    else:
                        calls = whole(row.get("acd_calls")) or 0
                        aht = figure(row.get("average_handle_seconds"))
                        if aht is None and calls:
                            aht = handled(row) / calls
                        answered = (calls, aht)
            elif members:
                calls, time_ = 0, 0.0
                for member in members:
                    row = rows.get(member["id"])
                    if row is not None:
                        calls += whole(row.get("acd_calls")) or 0
                        time_ += handled(row)
                answered = (calls, time_ / calls if calls else None)
            parts: list[tuple[str, str, str | None]] = []
            smdr = (path_rows or {}).get(q["id"]) if kind == "paths" and rows is not None else None
            if smdr is not None and smdr.get("offered") is not None:
                # SMDR's service level and abandoned calls first, "≈" while provisional.
                mark = "≈" if smdr.get("provisional") is True else ""
                level = figure(smdr.get("service_level_percent"))
                sl = "–" if level is None else f"{mark}{rounded(level)}%"
                gave_up = whole(smdr.get("abandoned")) or 0
                parts.append((f"SL {sl}", f"SL {sl}", f"SL {sl}"))
                parts.append((f"{mark}{gave_up} abandoned", f"{mark}{gave_up} aband.", None))
            if members:
                free = sum(m["state"] == "available" for m in members)
                parts.append((f"{free} available", f"{free} avail", f"{free} avail"))
            if q.get("agents_logged_in") is not None:
                n = q["agents_logged_in"]
                parts.append((f"{n} logged in", f"{n} in", None))
            if answered is not None and answered[1] is not None:
                m = minutes(answered[1])
                parts.append((f"AHT {m}", f"AHT {m}", m))
            forms: list[str] = []
            for i in range(3):
                form = " · ".join(text for p in parts if (text := p[i]))
                if form and form not in forms:
                    forms.append(form)
            day[kind][q["id"]] = {
                "answered": "–" if answered is None else str(answered[0]),
                "forms": forms,
            }
    if rows is not None:
        busy = ready = 0.0
        for a in state["agents"]:
            row = rows.get(a["id"])
            if row is not None:
                busy += handled(row) + seconds(row, "personal_seconds", "outgoing_seconds")
                ready += seconds(row, "logged_in_seconds") - seconds(row, "not_ready_seconds")
        day["occupancy"] = f"{rounded(100 * busy / ready)}%" if ready > 0 else "–"
    return day


# --- the stand-in server ---------------------------------------------------------


def agent_doc(
    agent_id: str, name: str | None, state: str = "on_call", groups: list[str] | None = None
) -> dict[str, Any]:
    """An agent as /api/v1/state has it (docs/api.md), on a call for a minute."""
    since = now_iso(-60)
    calls = [{"button": 1, "kind": "acd", "held": False, "path": "860", "since": since}]
    return {
        "id": agent_id, "name": name, "team": None, "groups": groups or [],
        "status": "busy" if state == "on_call" else "idle", "state": state,
        "state_since": since, "attention": None,
        "activity": "acd_call" if state == "on_call" else "none", "logged_in": True,
        "dnd": False, "dnd_reason": None, "dnd_reason_text": None,
        "make_busy": False, "make_busy_reason": None, "make_busy_reason_text": None,
        "wrap_up": False, "on_hold": False, "ringing": None,
        "calls": calls if state == "on_call" else [],
        "since": since, "confirmed": True, "carried": False,
    }  # fmt: skip


def queue_doc(queue_id: str, name: str, waiting: int, logged_in: int) -> dict[str, Any]:
    return {
        "id": queue_id, "name": name, "level": "ok", "waiting": waiting,
        "agents_logged_in": logged_in, "longest_wait_seconds": 12 * waiting,
        "reported_at": now_iso(), "confirmed": True,
    }  # fmt: skip


#: The stand-in's floor: agents 1001-1004 and as many more as a test asks for
#: (names of all lengths, as a names file has them; every other one on a
#: call, from 1001), in groups as MEMBERS says (agents
#: after 1004 in none), and group 630 without members. Agents logged in by
#: group and path, as their K and Q reports say.
NAMES = {"1001": "Ann Lee", "1002": "Bob Stone", "1003": "Cy Young", "1004": None}
MEMBERS = {"1001": ["610"], "1002": ["610"], "1003": ["620"], "1004": ["610", "620"]}
GROUPS = {"610": "Sales", "620": "Support", "630": "Billing"}
PATHS = {"860": "Sales hotline", "861": "Support line"}
LOGGED_IN = {"610": 4, "620": 2, "630": 0, "860": 3, "861": 1}


def report(kind: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    day_start = datetime.datetime.now().replace(hour=0, minute=0, second=0, microsecond=0)
    return {
        "day": day_start.date().isoformat(),
        "day_start": day_start.astimezone(datetime.timezone.utc).isoformat(),
        "as_of": now_iso(),
        kind: rows,
    }


def agent_figures(
    agent_id: str,
    calls: int,
    talk: float,
    *,
    hold: float = 30.0,
    wrap_up: float = 45.5,
    personal: float = 40.0,
    outgoing: float = 60.0,
    logged_in: float = 3600.0,
    not_ready: float = 600.0,
) -> dict[str, Any]:
    """An agent's row of the agents report (docs/api.md)."""
    return {
        "id": agent_id, "name": NAMES.get(agent_id), "first_seen": now_iso(-3600),
        "acd_calls": calls, "acd_talk_seconds": talk,
        "acd_talk_average_seconds": round(talk / calls, 3) if calls else None,
        "holds": 1 if hold else 0, "hold_seconds": hold,
        "wrap_ups": calls, "wrap_up_seconds": wrap_up,
        "personal_calls": 1 if personal else 0, "personal_seconds": personal,
        "outgoing_calls": 1 if outgoing else 0, "outgoing_seconds": outgoing,
        "dnd_seconds": 0.0, "make_busy_seconds": not_ready, "not_ready_seconds": not_ready,
        "logged_in_seconds": logged_in, "rang_unanswered": 0,
    }  # fmt: skip


def path_figures(
    path_id: str,
    calls: int,
    talk: float,
    hold: float,
    wrap_up: float,
    average_handle: float | None = None,
) -> dict[str, Any]:
    """A path's row of the paths report; ``average_handle``: its own average,
    else the row has none (the board works it out)."""
    row: dict[str, Any] = {
        "id": path_id, "name": None, "acd_calls": calls, "acd_talk_seconds": talk,
        "acd_talk_average_seconds": round(talk / calls, 3) if calls else None,
        "hold_seconds": hold, "wrap_up_seconds": wrap_up,
        "max_waiting": 5, "max_waiting_at": now_iso(-600), "max_longest_wait_seconds": 210,
        "mean_waiting": 1.3,
    }  # fmt: skip
    if average_handle is not None:
        row["average_handle_seconds"] = average_handle
    return row


def group_figures(group_id: str, peak: int) -> dict[str, Any]:
    """A group's row of the groups report, which the board never asks for."""
    return {
        "id": group_id, "name": None, "max_waiting": peak, "max_waiting_at": now_iso(-600),
        "max_longest_wait_seconds": 210, "mean_waiting": 1.3,
    }  # fmt: skip


#: The day as the stand-in first tells it: 1001 12 calls, 1002 one, 1003 none
#: (logged in and never ready), 1004 not in the report at all; path 860 40
#: calls with its own average handle time (3:20, where its sums would make
#: 3:11: the report's counts what is under way), path 861 3 calls and no
#: average of its own.
FIRST_DAY = {
    "agents": [
        agent_figures("1001", 12, 1534.2),
        agent_figures("1002", 1, 61.0, hold=0.0, wrap_up=12.5, personal=0.0, outgoing=0.0,
                      logged_in=1800.0, not_ready=0.0),
        agent_figures("1003", 0, 0.0, hold=0.0, wrap_up=0.0, personal=120.0, outgoing=0.0,
                      logged_in=900.0, not_ready=900.0),
    ],
    "paths": [
        path_figures("860", 40, 40 * 151.2, hold=400.0, wrap_up=1200.0, average_handle=200.0),
        path_figures("861", 3, 300.0, hold=20.0, wrap_up=40.0),
    ],
    "groups": [group_figures("610", 5), group_figures("620", 0)],
}  # fmt: skip
#: Later: 1001 14 calls, 1002 gone from the report, 1003 one call; path 861 gone.
SECOND_DAY = {
    "agents": [
        agent_figures("1001", 14, 14 * 130.4),
        agent_figures("1003", 1, 4.0, hold=0.0, wrap_up=0.0, personal=0.0, outgoing=0.0,
                      logged_in=1000.0, not_ready=0.0),
    ],
    "paths": [path_figures("860", 41, 41 * 152.0, hold=400.0, wrap_up=1250.0,
                           average_handle=210.0)],
    "groups": [group_figures("610", 7), group_figures("620", 1)],
}  # fmt: skip


@dataclass
class StandIn(Board):
    """``twistd web`` serving the board page and the JSON files of :attr:`root`."""

    root: Path
    agents: int = 4
    version: int = 1
    #: The /api/v1/state document served, and the day's reports (None: 404).
    doc: dict[str, Any] = field(default_factory=dict)
    day: dict[str, list[dict[str, Any]]] | None = None

    def write(self, path: str, doc: dict[str, Any]) -> None:
        """A file served at ``/path``, replaced whole (never read half written)."""
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        part.write_text(json.dumps(doc))
        os.replace(part, target)

    def floor(self, agents: int = 4, stale: bool = False) -> None:
        """A new version of the floor: ``agents`` agents, 1001 and up, every
        other one on a call, and the groups and paths; ``stale``: the PBX
        has gone silent."""
        self.agents = agents
        self.version += 1
        ids = [str(1001 + i) for i in range(agents)]
        people = [
            agent_doc(
                i, NAMES.get(i, person(n)), "on_call" if n % 2 == 0 else "available",
                MEMBERS.get(i),
            )
            for n, i in enumerate(ids)
        ]  # fmt: skip
        self.doc = {
            "generated_at": now_iso(), "stale": stale, "version": self.version,
            "last_update": now_iso(),
            "feed": {
                "connected": True, "stale": stale, "pbx_host": "127.0.0.1",
                "last_record_at": now_iso(-30),
            },
            "totals": {"logged_in": agents, "waiting": 5, "longest_wait_seconds": 60},
            "agents": people,
            "groups": [queue_doc(k, v, 2, LOGGED_IN[k]) for k, v in GROUPS.items()],
            "paths": [queue_doc(k, v, 3, LOGGED_IN[k]) for k, v in PATHS.items()],
            "extensions": [],
        }  # fmt: skip
        self.write("api/v1/state", self.doc)

    def reports(self, day: dict[str, list[dict[str, Any]]] | None) -> None:
        """The day's figures served as ``day`` says; None: no reports (404)."""
        self.day = day
        for kind in ("agents", "paths", "groups"):
            path = self.root / "api/v1/reports/today" / kind
            if day is None:
                path.unlink(missing_ok=True)
            else:
                self.write(f"api/v1/reports/today/{kind}", report(kind, day[kind]))

    def expected(self, today: bool = True, tiles: bool = True) -> dict[str, Any]:
        """What the board shows of the day served (``today``: not ``?today=0``)."""
        day = self.day if today else None
        agents, paths = (None, None) if day is None else (day["agents"], day["paths"])
        return expected_day(self.doc, agents, paths, tiles)


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


#: The period of the day's figures in the tests that do not look at it: long
#: enough that every fetch they see is one of the board's start, however slow
#: the machine.
QUIET_MS = 600_000


def open_standin(board: StandIn, query: str = "", today_ms: int = QUIET_MS) -> dict[str, Any]:
    """The stand-in's board at ``query``, once it shows the floor.

    The stand-in has no event stream: the board polls, every 0.25 s here (2 s
    on a real board without one, as tests/test_board_browser.py shows).
    """
    with board_timers(board.driver, POLL_MS=250, TODAY_MS=today_ms):
        board.driver.get(board.base + query)
    return board.until(
        lambda _: (
            (p := read_today(board))["version"] is not None
            and len(p["agents"]) == (0 if "view=queues" in query else board.agents)
            and p
        )
    )


def shows(board: Board, wanted: dict[str, Any]) -> dict[str, Any]:
    """The page once it shows the day's figures ``wanted`` (:func:`expected_day`;
    only its keys are compared)."""

    def seen(page: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in day_on(page).items() if k in wanted}

    try:
        return board.until(lambda _: (p := read_today(board)) and seen(p) == wanted and p)
    except AssertionError:
        raise AssertionError(f"{seen(read_today(board))} != {wanted}") from None


def assert_in_sight(page: dict[str, Any], longest: bool = True) -> None:
    """Every tile in sight shows its calls in its top-right corner beside the
    name, when the page has the agents report, and none without; every card
    shows a form of its line (``longest``: the longest), none without one."""
    in_sight = {k: t for k, t in page["agents"].items() if t["in_sight"]}
    assert in_sight or not page["agents"], page["agents"]
    for agent, tile in in_sight.items():
        if page["today"]:
            assert tile["seen"] and tile["corner"] and tile["beside"], (agent, tile)
        else:
            assert not tile["seen"], (agent, tile)
    for card in [*page["groups"].values(), *page["paths"].values()]:
        if not card["forms"]:
            assert card["seen"] == "", card
        elif longest:
            assert card["seen"] == card["forms"][0], card
        else:
            assert card["seen"] in card["forms"], card


def layout_problems(board: Board) -> dict[str, Any]:
    seen = json_object(board.driver.execute_script(LAYOUT))
    return {k: seen[k] for k in ("problems", "min_font", "min_at", "tiles", "pages", "unit")}


# --- against the stand-in --------------------------------------------------------


def test_each_tile_and_card_says_the_day(standin: StandIn) -> None:
    """Calls per tile; answered, average handle time and agents available and
    logged in per card; occupancy in the header; the agents and paths reports
    asked for once each, when the board starts; all of it in sight, uncut,
    never under the screen's smallest text."""
    standin.floor(4)
    standin.reports(FIRST_DAY)
    open_standin(standin)
    wanted = standin.expected()
    page = shows(standin, wanted)
    # The rules, by hand: 1004 is not in the report; group 610 is 1001, 1002
    # and 1004 (1002 and 1004 available): 13 calls, (1534.2 + 30 + 45.5 +
    # 61 + 12.5) / 13 s each; 620 is 1003 and 1004, no calls; 630 has no members.
    assert wanted["calls"] == {"1001": "12", "1002": "1", "1003": "0", "1004": "0"}
    assert wanted["groups"] == {
        "610": {"answered": "13", "forms": [
            "2 available · 4 logged in · AHT 2:09", "2 avail · 4 in · AHT 2:09", "2 avail · 2:09",
        ]},
        "620": {"answered": "0", "forms": ["1 available · 2 logged in", "1 avail · 2 in", "1 avail"]},
        "630": {"answered": "–", "forms": ["0 logged in", "0 in"]},
    }  # fmt: skip
    # 860 by its own average, 861 by its sums: (300 + 20 + 40) / 3.
    assert wanted["paths"] == {
        "860": {"answered": "40", "forms": ["3 logged in · AHT 3:20", "3 in · AHT 3:20", "3:20"]},
        "861": {"answered": "3", "forms": ["1 logged in · AHT 2:00", "1 in · AHT 2:00", "2:00"]},
    }  # fmt: skip
    # Busy (1609.7 + 100) + 73.5 + 120 s of ready 3000 + 1800 + 0 s.
    assert wanted["occupancy"] == "40%"
    assert page["today"] and page["banner"] is None, page
    assert_in_sight(page)
    # The figures of now are there too, from the floor.
    assert {k: c["waiting"] for k, c in page["paths"].items()} == {"860": "3", "861": "3"}
    assert sorted(page["fetches"]) == [AGENTS_REPORT, PATHS_REPORT]
    for width, height in SCREENS:
        screen(standin.driver, width, height)
        time.sleep(0.3)  # a resize is laid out at the next frame
        seen = layout_problems(standin)
        assert seen["problems"] == [] and seen["min_font"] >= SCREENS[width, height] - 0.01, seen
        page = read_today(standin)
        assert day_on(page) == wanted, (width, height)
        assert_in_sight(page, longest=width == 1920)
    screen(standin.driver, 1920, 1080)
    assert len(read_today(standin)["fetches"]) == 2


def test_path_cards_lead_with_service_level_and_abandoned_from_smdr(standin: StandIn) -> None:
    """With SMDR figures in the paths report, each path card's line starts with
    its service level and abandoned calls today; while provisional each is
    marked "≈" (and the card says why); a path without SMDR figures (null,
    as a daemon without --smdr reports them) shows none."""
    smdr = {
        "860": {"offered": 52, "abandoned": 3, "short_abandoned": 2,
                "service_level_percent": 86.6, "provisional": True},
        "861": {"offered": 4, "abandoned": 0, "short_abandoned": 0,
                "service_level_percent": 100.0, "provisional": False},
    }  # fmt: skip
    day = {**FIRST_DAY, "paths": [{**row, **smdr[row["id"]]} for row in FIRST_DAY["paths"]]}
    standin.floor(4)
    standin.reports(day)
    open_standin(standin)
    wanted = standin.expected()
    assert wanted["paths"] == {
        "860": {"answered": "40", "forms": [
            "SL ≈87% · ≈3 abandoned · 3 logged in · AHT 3:20",
            "SL ≈87% · ≈3 aband. · 3 in · AHT 3:20",
            "SL ≈87% · 3:20",
        ]},
        "861": {"answered": "3", "forms": [
            "SL 100% · 0 abandoned · 1 logged in · AHT 2:00",
            "SL 100% · 0 aband. · 1 in · AHT 2:00",
            "SL 100% · 2:00",
        ]},
    }  # fmt: skip
    page = shows(standin, wanted)
    assert_in_sight(page, longest=False)
    marks = standin.driver.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('[data-path]')].map((e) =>"
        " [e.dataset.path, [e.dataset.serviceLevel, e.dataset.abandoned,"
        " 'provisional' in e.dataset, e.title.startsWith('≈')]]));"
    )
    assert marks == {"860": ["87", "3", True, True], "861": ["100", "0", False, False]}
    # SMDR off: the fields are null, and the cards are as before.
    off = {**FIRST_DAY, "paths": [
        {**row, **dict.fromkeys(smdr["860"], None)} for row in FIRST_DAY["paths"]
    ]}  # fmt: skip
    standin.reports(off)
    open_standin(standin)
    shows(standin, standin.expected())
    assert standin.expected()["paths"]["861"]["forms"][0] == "1 logged in · AHT 2:00"


def test_figures_that_come_before_the_floor(standin: StandIn) -> None:
    """The reports may answer before the board has the floor (its first
    snapshot or poll): the figures are kept for it, and nothing throws."""
    standin.floor(4)
    standin.reports(FIRST_DAY)
    (standin.root / "api/v1/state").unlink()
    try:
        with board_timers(standin.driver, POLL_MS=250, TODAY_MS=QUIET_MS):
            standin.driver.get(standin.base)
        standin.until(lambda _: read_today(standin)["answered"] == 2)
        time.sleep(0.5)  # the board reads the answers
        page = read_today(standin)
        assert page["version"] is None and page["agents"] == {}, page
    finally:
        standin.floor(4)
    page = shows(standin, standin.expected())
    assert sorted(page["fetches"]) == [AGENTS_REPORT, PATHS_REPORT]
    assert page["errors"] == [], page["errors"]


#: The board's timers as board.js has them, for a real board.
BOARD_JS = ROOT / "mitelacd" / "web" / "board" / "board.js"


def test_a_real_board_fetches_the_figures_every_30_s() -> None:
    """The period the test below shortens is 30 s on a real board (and the
    poll's 2 s it shortens too)."""
    timers = dict(re.findall(r"^\s+([A-Z_]+_MS): (\d+),", BOARD_JS.read_text(), re.M))
    assert (timers["TODAY_MS"], timers["POLL_MS"]) == ("30000", "2000"), timers


#: The period of the day's figures in the test below: 8 s, not 30 (and the
#: floor polled every 0.25 s, not 2, as open_standin does).
TODAY_MS = 8000


def test_the_figures_are_fetched_every_30_s_not_on_each_change(standin: StandIn) -> None:
    """The floor changes several times a second; the reports are asked for again
    only TODAY_MS (30 s, shortened here) after the first time, and their new
    figures are then shown."""
    standin.floor(4)
    standin.reports(FIRST_DAY)
    page = open_standin(standin, today_ms=TODAY_MS)
    first = standin.expected()
    shows(standin, first)
    standin.reports(SECOND_DAY)
    start = read_today(standin)["fetched_at"][0] / 1000
    versions = set()
    while time.time() < start + 0.9 * TODAY_MS / 1000:
        standin.floor(4)  # a new version: the board, polling, shows it
        time.sleep(0.3)
        page = read_today(standin)
        versions.add(page["version"])
        assert len(page["fetches"]) == 2, page["fetches"]
        assert day_on(page) == first
    assert len(versions) >= 10 and page["polls"] >= 10, (versions, page["polls"])
    second = standin.expected()
    # 1002 gone from the report: 0 calls; 610 is 1001 alone now (14); 861 answered none.
    assert second["calls"] == {"1001": "14", "1002": "0", "1003": "1", "1004": "0"}
    assert {k: c["answered"] for k, c in second["groups"].items()} == {
        "610": "14", "620": "1", "630": "–",
    }  # fmt: skip
    assert second["paths"]["861"] == {"answered": "0", "forms": ["1 logged in", "1 in"]}
    page = shows(standin, second)
    # Agents then paths, each time.
    assert page["fetches"] == [AGENTS_REPORT, PATHS_REPORT] * 2, page["fetches"]
    gaps = [b - a for a, b in zip(page["fetched_at"][:2], page["fetched_at"][2:])]
    assert all(TODAY_MS - 1000 <= gap <= TODAY_MS + 1500 for gap in gaps), gaps


def test_a_board_not_live_keeps_the_figures(standin: StandIn) -> None:
    """The feed goes silent: the banner comes in the header, and the figures
    stay, dimmed with the rest of the board; live again, they are as they were,
    without asking again."""
    standin.floor(4)
    standin.reports(FIRST_DAY)
    open_standin(standin)
    wanted = standin.expected()
    page = shows(standin, wanted)
    assert page["opacity"] == {"agents": 1, "queues": 1, "totals": 1}, page["opacity"]
    standin.floor(4, stale=True)
    page = standin.until(lambda _: (p := read_today(standin))["live"] == "stale" and p)
    assert page["banner"] and page["banner_in_header"], page["banner"]
    assert day_on(page) == wanted and page["today"]
    assert_in_sight(page)
    assert all(v < 1 for v in page["opacity"].values()), page["opacity"]
    assert layout_problems(standin)["problems"] == []
    time.sleep(1)  # the banner counts on; the figures stay
    assert day_on(read_today(standin)) == wanted
    standin.floor(4)
    page = standin.until(lambda _: (p := read_today(standin))["live"] == "live" and p)
    assert page["banner"] is None and day_on(page) == wanted
    assert page["opacity"] == {"agents": 1, "queues": 1, "totals": 1}, page["opacity"]
    assert_in_sight(page)
    assert sorted(page["fetches"]) == [AGENTS_REPORT, PATHS_REPORT]


def assert_without_the_day(board: StandIn, page: dict[str, Any]) -> None:
    """No calls on the tiles, "–" answered, no average handle time, no
    occupancy: the floor's own figures only."""
    wanted = board.expected(today=False)
    assert set(wanted["calls"].values()) == {""}
    assert {c["answered"] for k in ("groups", "paths") for c in wanted[k].values()} == {"–"}
    assert not any(
        "AHT" in f for k in ("groups", "paths") for c in wanted[k].values() for f in c["forms"]
    )
    assert wanted["occupancy"] is None
    assert day_on(page) == wanted
    assert not page["today"]
    assert_in_sight(page)
    assert layout_problems(board)["problems"] == []


def test_today_0_leaves_the_figures_out(standin: StandIn) -> None:
    standin.floor(4)
    standin.reports(FIRST_DAY)
    open_standin(standin, "?today=0")
    shows(standin, standin.expected(today=False))
    time.sleep(2)
    page = read_today(standin)
    assert page["fetches"] == []
    assert_without_the_day(standin, page)


def test_an_older_server_without_reports(standin: StandIn) -> None:
    """404 for the reports: no figures of the day, no banner, and the board
    keeps following the floor."""
    standin.floor(4)
    standin.reports(None)
    try:
        open_standin(standin)
        standin.until(lambda _: len(read_today(standin)["fetches"]) == 2)
        time.sleep(1)
        page = read_today(standin)
        assert sorted(page["fetches"]) == [AGENTS_REPORT, PATHS_REPORT]
        assert page["banner"] is None and page["live"] == "live", page
        assert_without_the_day(standin, page)
        # Still live: a fifth agent comes, and is drawn.
        standin.floor(5)
        page = standin.until(lambda _: (p := read_today(standin))["agents"].get("1005") and p)
        assert page["banner"] is None and page["live"] == "live"
        assert_without_the_day(standin, page)
    finally:
        standin.reports(FIRST_DAY)


def test_the_calls_on_every_tile_in_sight(standin: StandIn) -> None:
    """40 and 150 tiles on both screens: each tile in sight has its calls in
    its corner, beside a whole name, and nothing is cut or scrolls. The cards
    alone, large (?view=queues): answered and average handle time, from the
    agents report too."""
    standin.reports(FIRST_DAY)
    for count in (40, 150):
        standin.floor(count)
        open_standin(standin)
        wanted = standin.expected()
        assert wanted["calls"]["1040"] == "0"
        shows(standin, wanted)
        for width, height in SCREENS:
            screen(standin.driver, width, height)
            time.sleep(0.3)
            seen = layout_problems(standin)
            assert seen["tiles"] == count, seen
            assert seen["problems"] == [], (count, width, height, seen)
            assert seen["min_font"] >= SCREENS[width, height] - 0.01, seen
            page = read_today(standin)
            assert page["today"] and day_on(page) == wanted, (count, width, height)
            assert sum(t["in_sight"] for t in page["agents"].values()) == count
            assert_in_sight(page, longest=False)
        screen(standin.driver, 1920, 1080)
    standin.floor(4)
    open_standin(standin, "?view=queues")
    wanted = standin.expected(tiles=False)
    page = shows(standin, wanted)
    assert sorted(page["fetches"]) == [AGENTS_REPORT, PATHS_REPORT]
    assert page["groups"]["610"]["answered"] == "13" and page["occupancy"] == "40%"
    assert_in_sight(page, longest=False)
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


def percent(text: str) -> int:
    assert re.fullmatch(r"\d+%", text), text
    return int(text[:-1])


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
    1002 logs in and takes none; path 860 and group 610 report agents logged
    in. The tiles and cards say what the daemon's reports say, and pushes do
    not fetch them again."""
    board = daemon
    board.steps("A", agent="1001", dn="2001")
    board.steps("A", agent="1002", dn="2002")
    for seconds_ in (1.0, 2.0):
        board.steps("G01860", agent="1001", dn="2001")
        time.sleep(seconds_)
        board.steps("J01", agent="1001", dn="2001")
    board.stats("Q", "860", "0030020045")
    board.stats("K", "610", "0020020030")
    state = wait_for_state(
        board,
        lambda s: len(s["agents"]) == 2 and len(s["paths"]) == 1 and len(s["groups"]) >= 1,
        "the floor",
    )
    agents = fetch_json(board, "api/v1/reports/today/agents")
    paths = fetch_json(board, "api/v1/reports/today/paths")
    ada, p860 = row_of(agents, "agents", "1001"), row_of(paths, "paths", "860")
    assert (ada["acd_calls"], p860["acd_calls"]) == (2, 2), (ada, p860)
    assert 2.9 <= ada["acd_talk_seconds"] <= 4.5, ada
    # The time logged in counts on: the occupancy the board shows is of a
    # moment between the report read before it opened and the one after.
    wanted = expected_day(state, agents["agents"], paths["paths"])
    occupancy = wanted.pop("occupancy")
    assert wanted["calls"] == {"1001": "2", "1002": "0"}
    assert wanted["paths"]["860"]["answered"] == wanted["groups"]["610"]["answered"] == "2"
    aht = minutes(p860["average_handle_seconds"])
    free = sum(a["state"] == "available" for a in members_of(state, "610"))
    assert wanted["paths"]["860"]["forms"][0] == f"2 logged in · AHT {aht}"
    assert wanted["groups"]["610"]["forms"][0].startswith(f"{free} available · 2 logged in · AHT ")
    with board_timers(board.driver, TODAY_MS=QUIET_MS):
        board.open()
    page = shows(board, wanted)
    after = expected_day(board.state(), fetch_json(board, "api/v1/reports/today/agents")["agents"],
                         paths["paths"])["occupancy"]  # fmt: skip
    assert percent(after) <= percent(page["occupancy"]) <= percent(occupancy), (
        after, page["occupancy"], occupancy,
    )  # fmt: skip
    assert page["today"] and page["banner"] is None
    assert_in_sight(page)
    assert layout_problems(board)["problems"] == []
    # Pushes keep coming (make busy on and off): the reports are not fetched again.
    first = int(page["version"])
    for code in "EFEF":
        board.steps(code, agent="1002", dn="2002")
        time.sleep(0.3)
    shown_once(board, lambda s: s["version"] > first, "a newer version")
    # The floor's figures follow the pushes (1002 available again); the day's
    # stay those of the board's one fetch.
    later = expected_day(board.state(), agents["agents"], paths["paths"])
    page = shows(board, later | {"occupancy": page["occupancy"]})
    assert int(page["version"]) > first
    assert sorted(page["fetches"]) == [AGENTS_REPORT, PATHS_REPORT]
