"""The wall board in a real browser: headless Chromium against real twistd processes.

simulator → twistd mitelacd (HTTP on a free loopback port) → the board page in
Chromium, driven by selenium through Debian's chromium-driver. Skipped where
selenium, chromium or chromedriver are missing (CI installs neither).

The tests share one browser, and no test depends on another or on their
order: each opens the page it looks at; the simulator's floor is shared by
the tests that only read it, and a test that stops or breaks a daemon or a
simulator has its own. ``MITELACD_UPDATE_SCREENSHOT=1`` also writes the
pictures of docs/board.md: docs/board.png (the floor), docs/board-group.png (a
group view), docs/board-queues.png (the cards alone), docs/board-light.png (the
light theme) and docs/board-stale.png (the PBX link down).

Every page the browser opens gets RECORD_STREAM first: it wraps ``EventSource``
and ``fetch`` to count what the board is fed (events of each stream by type,
polls of /api/v1/state) and watches which agent tiles change on each event, so
the tests can tell a board fed by deltas from one fed whole documents.

Every daemon reads a names file (``--names``): agents' names and groups,
reason texts and thresholds. Calls by button, holds, names, reasons, levels
and agents carried over from an earlier run are played on a daemon of each
test's own, whose PBX is a loopback socket the test writes records to;
floors of exactly 40 and 150 agents, for the layouts, likewise.

Where a test would wait for one of the board's timers (board.js ``TIMERS``:
polls, their timeout), it shortens it for the pages it opens
(:func:`board_timers`).
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import json
import os
import queue
import re
import shutil
import signal
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.support.ui import WebDriverWait

from mitelacd.floor.legacy import validate_legacy
from mitelacd.sim.service import FloorScript
from mitelacd.testing import TAILS, call_body, fake_pbx, stats_body, wire
from mitelacd.testing import CheckoutTwistd as Twistd

ROOT = Path(__file__).resolve().parent.parent

#: Chromium, and the twistd children it shows.
pytestmark = [pytest.mark.browser, pytest.mark.processes]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROME_ARGS = (
    "--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage"
    " --disable-background-networking --disable-component-update --disable-sync"
    " --no-first-run --no-proxy-server --window-size=1920,1080"
    " --autoplay-policy=no-user-gesture-required"
).split()
WAIT = 30.0
#: Loopback only, never through a proxy from the environment.
LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))
T = TypeVar("T")


def json_object(value: object) -> dict[str, Any]:
    """``value``, a JSON object as read from the API or returned by the page's script."""
    assert isinstance(value, dict), value
    return value


#: The screens the board is made for, and the smallest text allowed on each:
#: 20 px on 1080p, and the same size on the same TV at 720p (its pixels are
#: 1.5 times larger): 20 × 720 / 1080.
SCREENS = {(1920, 1080): 20.0, (1280, 720): 20.0 * 720 / 1080}
#: The agent states the board colours, and those it counts in its totals.
STATES = ("available", "ringing", "on_call", "on_hold", "wrap_up", "not_ready", "logged_out")
COUNTED = STATES[:-1]


@pytest.fixture(autouse=True, scope="module")
def chromium_is_installed() -> None:
    """Fail, never skip: a board nobody has looked at is not tested."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} missing: apt-get install chromium chromium-driver",
            pytrace=False,
        )


#: Installed before the board's own script on every page: records the event
#: streams the board opens and what comes on them (only real events, not the
#: ones a test dispatches), its polls of /api/v1/state (answered with
#: ``window.__fakeState`` when a test sets one), every version the page shows,
#: and agent tiles changed by an event that did not name the agent.
RECORD_STREAM = """
(() => {
  const log = window.__sse = {
    sources: [], state: 0, polls: 0, fakeServed: 0, versions: [], unexpected: [], checked: 0,
  };
  // Agent ids of the deltas since the last look at the page; "all" after a snapshot.
  let named = new Set();
  const Original = window.EventSource;
  if (typeof Original === "function") {
    window.EventSource = class extends Original {
      constructor(...args) {
        super(...args);
        const mine = {
          es: this, counts: {}, first: null, last: null, firstVersion: null, lastVersion: null,
        };
        log.sources.push(mine);
        for (const type of ["snapshot", "delta", "stale", "state", "message"]) {
          this.addEventListener(type, (event) => {
            let data = {};
            try { data = JSON.parse(event.data); } catch {}
            if (type === "snapshot") named = "all";
            else if (type === "delta" && named !== "all") {
              for (const id of Object.keys(data.agents || {})) named.add(id);
            }
            if (!event.isTrusted) return;
            if (type === "state" || type === "message") log.state += 1;
            mine.counts[type] = (mine.counts[type] || 0) + 1;
            if (!mine.first) [mine.first, mine.firstVersion] = [type, data.version ?? null];
            mine.last = type;
            if (data.version != null) mine.lastVersion = data.version;
          });
        }
      }
    };
  }
  const realFetch = window.fetch;
  window.fetch = (resource, ...rest) => {
    if (String(resource).includes("/api/v1/state")) {
      log.polls += 1;
      if (window.__fakeState) {
        log.fakeServed += 1;
        const body = JSON.stringify(window.__fakeState);
        return Promise.resolve(
          new Response(body, { status: 200, headers: { "content-type": "application/json" } }));
      }
    }
    return realFetch(resource, ...rest);
  };
  // Called after each event's handlers, with what they changed on the page.
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.target === document.body && r.attributeName === "data-version") {
        log.versions.push(document.body.dataset.version);
      }
      const node = r.target.nodeType === 1 ? r.target : r.target.parentElement;
      const tile = node && !node.closest(".a-time, .a-today") && node.closest("[data-agent]");
      // Counters tick and the day's figures come on their own; placing tiles is not changing them.
      if (!tile) continue;
      log.checked += 1;
      if (named !== "all" && !named.has(tile.dataset.agent)) log.unexpected.push(tile.dataset.agent);
    }
    named = new Set();
  }).observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
})();
"""

#: Everything the tests look at on the page, read in one script (one JS turn,
#: so one rendered version). A text the board holds in several lengths (names,
#: words) is read as all its forms, longest first, and as the one in sight.
READ_PAGE = """
const all = (sel) => [...document.querySelectorAll(sel)];
const fields = (e) => Object.fromEntries(
  [...e.querySelectorAll('[data-field]')].map((f) => [f.dataset.field, f.textContent]));
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
const queue = (e) => ({
  ...fields(e), name: e.querySelector('.q-name').firstChild?.textContent ?? '',
  level: e.dataset.level ?? 'ok',
});
const banner = document.getElementById('stale-banner');
return {
  version: document.body.dataset.version ?? null,
  live: document.body.dataset.live,
  title: document.getElementById('title').textContent,
  feed_line: document.getElementById('feed-line').textContent,
  agents: all('[data-agent]').map((e) => ({
    id: e.dataset.agent, status: e.dataset.status, state: e.dataset.state,
    activity: e.dataset.activity, calls: e.dataset.calls, on_hold: e.dataset.onHold,
    confirmed: e.dataset.confirmed, carried: e.dataset.carried,
    level: e.querySelector('.a-time')?.dataset.level ?? '',
    names: forms(e.querySelector('.a-name')), name: inSight(e.querySelector('.a-name')),
    words: forms(e.querySelector('.a-what')), what: inSight(e.querySelector('.a-what')),
    note: e.querySelector('.a-note')?.textContent ?? '',
    time: e.querySelector('.a-time')?.textContent ?? ''})),
  queue_order: all('#queues > .queue').map(
    (e) => (e.dataset.group ? `group:${e.dataset.group}` : `path:${e.dataset.path}`)),
  queues_seen: document.getElementById('queues').checkVisibility(),
  groups: Object.fromEntries(all('[data-group]').map((e) => [e.dataset.group, queue(e)])),
  paths: Object.fromEntries(all('[data-path]').map((e) => [e.dataset.path, queue(e)])),
  totals: Object.fromEntries(all('[data-total]').map((e) => [e.dataset.total, e.textContent])),
  banner: banner.hidden ? null : banner.textContent.trim().replace(/\\s+/g, ' '),
  marker: window.__loadMarker ?? null,
  navigations: performance.getEntriesByType('navigation').length,
  ...(() => {
    const sse = window.__sse;
    const cur = sse.sources[sse.sources.length - 1];
    return {
      stream: cur ? {counts: cur.counts, first: cur.first, last: cur.last,
                     first_version: cur.firstVersion, last_version: cur.lastVersion,
                     open: cur.es.readyState} : null,
      sources: sse.sources.length, state_events: sse.state, polls: sse.polls,
      unexpected: sse.unexpected.slice(0, 20), checked: sse.checked,
    };
  })(),
};
"""


@dataclass
class Board:
    """A daemon on loopback and the browser showing its board."""

    daemon: Twistd
    base: str
    driver: webdriver.Chrome
    folder: Path

    def state(self) -> dict[str, Any]:
        with LOCAL.open(self.base + "api/v1/state", timeout=5) as response:
            return json_object(json.loads(response.read()))

    def page(self) -> dict[str, Any]:
        return json_object(self.driver.execute_script(READ_PAGE))

    def open(self, query: str = "") -> dict[str, Any]:
        """The board at ``query`` (e.g. ``?groups=610``), once it shows a version."""
        self.driver.get(self.base + query)
        return self.until(lambda _: (p := self.page())["version"] is not None and p)

    def until(self, what: Callable[[Any], T | Literal[False] | None], timeout: float = WAIT) -> T:
        """What ``what`` returns once that is true (it is asked again until then)."""
        try:
            done = WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(what)
        except TimeoutException:
            page = self.page()
            seen = {k: page[k] for k in ("version", "banner", "totals", "groups", "paths")}
            raise AssertionError(f"not within {timeout} s; the page now shows {seen}") from None
        assert done is not None  # the wait returns only a true value
        return done


@dataclass
class Floor(Board):
    """The simulator's floor: a busy day, too fast to follow event by event."""

    sim: Twistd
    #: The names file's groups: group number -> IDs of its members.
    members: dict[str, set[str]]


@dataclass
class Scripted(Board):
    """A floor of the tests' own records, played as the PBX on a loopback socket."""

    pbx: socket.socket
    names: Path
    seq: int = 0

    def steps(self, spec: str, agent: str, dn: str) -> None:
        """Call events as code and tail, as :meth:`mitelacd.testing.Feeder.steps`
        takes them: ``"G01860 N01 I02"``."""
        records = []
        for token in spec.split():
            tail = token[1:] or TAILS.get(token[0], "01")
            records.append(wire(call_body(self.seq, token[0], dn, agent, tail)))
            self.seq = (self.seq + 1) % 100
        self.pbx.sendall(b"".join(records))

    def stats(self, code: str, number: str, figures: str) -> None:
        """A K (group) or Q (path) report: waiting, agents and longest wait, ``"0030020145"``."""
        self.pbx.sendall(wire(stats_body(self.seq, code, number, figures)))
        self.seq = (self.seq + 1) % 100


def make_driver(folder: Path) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in CHROME_ARGS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={folder / 'chromium-profile'}")
    # A driver path given: selenium does not run selenium-manager (no downloads).
    service = webdriver.ChromeService(
        executable_path=CHROMEDRIVER, log_output=str(folder / "chromedriver.log")
    )
    driver = webdriver.Chrome(options=options, service=service)
    screen(driver, 1920, 1080)
    return driver


@contextlib.contextmanager
def board_timers(driver: webdriver.Chrome, **ms: int) -> Iterator[None]:
    """Pages opened inside start with the board's timers (board.js ``TIMERS``,
    e.g. ``POLL_MS``) set to ``ms``, through ``window.MITELACD_TIMERS`` (inside
    another ``board_timers``, on top of its timers)."""
    source = f"window.MITELACD_TIMERS = {{...window.MITELACD_TIMERS, ...{json.dumps(ms)}}};"
    script = driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": source})
    try:
        yield
    finally:
        driver.execute_cdp_cmd(
            "Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]}
        )


def screen(driver: webdriver.Chrome, width: int, height: int) -> None:
    """The viewport of a TV exactly (--window-size counts the window's frame)."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )


def resume(child: Twistd) -> None:
    """A stopped process cannot act on SIGTERM: let it run before stopping it."""
    if child.process.poll() is None:
        child.process.send_signal(signal.SIGCONT)


# --- names files -----------------------------------------------------------------

FIRST = (
    "Ada Grace Alan Barbara Claude Dennis Edsger Frances Hedy Ivan John Ken Linus Margaret"
    " Niklaus Radia Sophie Tim Vint Whitfield Annie Katherine Donald Leslie Robin Shafi Jean"
    " Mary Bjarne Joan Carl Dorothy Evelyn Hal Irene Kay Lynn Mae Nell Ole"
).split()
LAST = (
    "Lovelace Hopper Turing Liskov Shannon Ritchie Dijkstra Allen Lamarr Sutherland McCarthy"
    " Thompson Torvalds Hamilton Wirth Perlman Wilson Cerf Diffie Easley Johnson Knuth"
    " Lamport Milner Goldwasser Sammet Keller Clarke Vaughan Abelson Hoare Kahan Backus"
).split()
GROUP_NAMES = {"610": "Sales", "620": "Support", "630": "Billing", "640": "Renewals"}
PATH_NAMES = {"860": "Sales hotline", "861": "Support line", "007": "Billing line"}
#: The reason texts of the simulator's floor. A tile is made for "Available 00:00"
#: (board.js, TILE_W): a text longer than that, alone on its line, is cut with an
#: ellipsis by design (board.css, .fits), which the layout checks count as a
#: problem. Each of these fits: "Do not disturb" for DND 0 did not, and made the
#: checks fail whenever the simulator had an agent in DND 0 at that moment.
MAKE_BUSY = {"1": "Lunch", "2": "Break", "3": "Training", "4": "Coaching", "5": "Admin",
             "6": "Meeting", "8": "Team brief", "9": "Callback"}  # fmt: skip
DND = {"0": "Away"}


def person(i: int) -> str:
    """A made-up name, different for the first few hundred ``i``."""
    return f"{FIRST[i % len(FIRST)]} {LAST[(i * 7 + i // len(FIRST)) % len(LAST)]}"


def toml_names(
    agents: dict[str, dict[str, Any]],
    groups: dict[str, str],
    paths: dict[str, str],
    reasons: dict[str, dict[str, str]],
    thresholds: str,
) -> str:
    """A names file (docs/names.md); ``thresholds`` is its [thresholds] part as written."""
    q = json.dumps  # a JSON string of ASCII text is a TOML basic string
    lines = ["[agents]"]
    for agent_id, entry in agents.items():
        parts = [f"{key} = {q(value)}" for key, value in entry.items()]
        lines.append(f"{q(agent_id)} = {{ {', '.join(parts)} }}")
    for table, entries in (("groups", groups), ("paths", paths), *reasons.items()):
        lines.append(f"[{table}]")
        lines += [f"{q(k)} = {q(v)}" for k, v in entries.items()]
    return "\n".join(lines) + "\n" + thresholds


def simulator_names(plan_of: FloorScript) -> tuple[str, dict[str, set[str]]]:
    """Names for the simulator's agents (every ninth has none) and their groups,
    as the simulator's floor plan has them; and each group's members."""
    members = {g: set(ids) for g, ids in plan_of.plan.groups.items()}
    agents: dict[str, dict[str, Any]] = {}
    everyone = sorted((a for ids in members.values() for a in ids), key=int)
    for i, agent_id in enumerate(everyone):
        entry: dict[str, Any] = {} if i % 9 == 4 else {"name": person(i)}
        entry["groups"] = sorted(g for g, ids in members.items() if agent_id in ids)
        agents[agent_id] = entry
    text = toml_names(
        agents, GROUP_NAMES, PATH_NAMES,
        {"make_busy_reasons": MAKE_BUSY, "dnd_reasons": DND},
        "[thresholds]\nwaiting = [2, 4]\nlongest_wait = [20, 40]\n"
        "[thresholds.agents]\nwrap_up = [1, 2]\non_hold = [2, 4]\n",
    )  # fmt: skip
    return text, members


# --- the simulator's floor ---------------------------------------------------------

SIM = {"seed": 3, "agents": 48, "groups": 4, "paths": 3}
#: The same floor, as the simulator plans it: who is in which group.
SIM_PLAN = FloorScript(seed=3, agents=48, groups=4, paths=3)


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """The browser of the module's tests, RECORD_STREAM installed on every page."""
    chrome = make_driver(tmp_path_factory.mktemp("chromium"))
    try:
        chrome.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_STREAM})
        yield chrome
    finally:
        chrome.quit()


@contextlib.contextmanager
def simulated_floor(
    driver: webdriver.Chrome, folder: Path, logged_in: int = 30, speed: int = 20
) -> Iterator[Floor]:
    """The simulator (SIM, at ``speed`` times the speed) and a daemon reading it,
    once ``logged_in`` agents are logged in; both stopped at the end."""
    children: list[Twistd] = []
    names, members = simulator_names(SIM_PLAN)
    (folder / "names.toml").write_text(names)
    try:
        sim = Twistd(
            "mitelacd-sim", "--port", "0", *(f"--{k}={v}" for k, v in SIM.items()),
            "--speed", str(speed), cwd=folder,
        )  # fmt: skip
        children.append(sim)
        port = sim.wait_for(r"simulated ICP feed on \S+ port (\d+)", timeout=WAIT).group(1)
        daemon = Twistd(
            "mitelacd", "--host", "127.0.0.1", "--port", port,
            "--file", str(folder / "mitel_data.json"), "--names", str(folder / "names.toml"),
            "--http", "tcp:0:interface=127.0.0.1", "--stale-after", "3", "--watchdog", "4",
            cwd=folder,
        )  # fmt: skip
        children.append(daemon)
        http = daemon.wait_for(
            r"wall board and API at http://127\.0\.0\.1:(\d+)/", timeout=WAIT
        ).group(1)
        board = Floor(daemon, f"http://127.0.0.1:{http}/", driver, folder, sim, members)
        wait_for_state(
            board, lambda s: s["totals"]["logged_in"] >= logged_in, f"{logged_in} agents logged in"
        )
        yield board
    finally:
        for child in reversed(children):
            resume(child)
            child.stop()


@pytest.fixture(scope="module")
def simulated(
    driver: webdriver.Chrome, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Floor]:
    """The simulator's floor of the tests that only read it (none stops it)."""
    with simulated_floor(driver, tmp_path_factory.mktemp("board")) as board:
        yield board


@pytest.fixture
def floor(simulated: Floor) -> Floor:
    """The simulator's floor, its board opened afresh."""
    simulated.open()
    return simulated


def wait_for_state(
    board: Board, done: Callable[[dict[str, Any]], bool], what: str, timeout: float = WAIT
) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while True:
        state = board.state()
        if done(state):
            return state
        if time.monotonic() > end:
            raise AssertionError(f"no {what} within {timeout} s: {state['totals']}")
        time.sleep(0.2)


class Recorder:
    """Fetches /api/v1/state as fast as it can and keeps the documents by version.

    The floor changes dozens of times a second at --speed 20, and the page only
    shows what the paced push sent, so the page's version is looked up here.
    """

    def __init__(self, board: Board) -> None:
        self.board = board
        self.docs: dict[int, dict[str, Any]] = {}
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while self.running:
            doc = self.board.state()
            self.docs[doc["version"]] = doc

    def __enter__(self) -> Recorder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.running = False
        self.thread.join(timeout=10)


def mmss(seconds: int | None) -> str:
    return "–" if seconds is None else f"{seconds // 60:02d}:{seconds % 60:02d}"


def number(value: int | None) -> str:
    return "–" if value is None else str(value)


def expected_queues(queues: list[dict[str, Any]], kind: str) -> dict[str, dict[str, str]]:
    return {
        q["id"]: {
            "waiting": number(q["waiting"]),
            "longest": mmss(q["longest_wait_seconds"]),
            "name": q["name"] or f"{kind} {q['id']}",
            "level": q["level"],
        }
        for q in queues
    }


def seconds_shown(text: str) -> int:
    """Seconds of a tile's time: ``mm:ss``, or ``1h05`` past an hour."""
    if "h" in text:
        hours, minutes = text.split("h")
        return 3600 * int(hours) + 60 * int(minutes)
    minutes, seconds = text.split(":")
    return 60 * int(minutes) + int(seconds)


def parse_iso(iso: str) -> float:
    return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def local_hms(iso: str) -> str:
    """How the browser (same machine, same time zone) writes a server time."""
    return datetime.datetime.fromtimestamp(parse_iso(iso)).strftime("%H:%M:%S")


def page_and_state(
    floor: Board, ready: Callable[[dict[str, Any]], bool] = lambda page: True
) -> tuple[dict[str, Any], dict[str, Any], float]:
    """A reading of the page once ``ready``, the API's document of the version it
    shows, and the time of the reading."""
    with Recorder(floor) as recorder:
        end = time.monotonic() + WAIT
        while True:
            now = time.time()
            page = floor.page()
            if ready(page) and page["version"] is not None:
                state = recorder.docs.get(int(page["version"]))
                if state is not None:
                    return page, state, now
            assert time.monotonic() < end, f"page version {page['version']} never seen by the API"
            time.sleep(0.1)


#: The data attributes of an agent's tile that say what the API says of the agent.
TILE_FLAGS = ("status", "state", "activity", "calls", "on_hold", "confirmed", "carried")


def tile_flags(agent: dict[str, Any]) -> dict[str, str]:
    """What those attributes should say of an agent of /api/v1/state."""
    return {
        "status": agent["status"],
        "state": agent["state"],
        "activity": agent["activity"],
        "calls": str(len(agent["calls"])),
        "on_hold": json.dumps(agent["on_hold"]),
        "confirmed": json.dumps(agent["confirmed"]),
        "carried": json.dumps(agent["carried"]),
    }


def expected_totals(state: dict[str, Any], agents: list[dict[str, Any]]) -> dict[str, str]:
    """The header's figures: the floor's queue totals, and ``agents`` counted by state."""
    by_state = collections.Counter(a["state"] for a in agents)
    totals = {s: str(by_state[s]) for s in COUNTED}
    totals.update(
        waiting=str(state["totals"]["waiting"]),
        longest=mmss(state["totals"]["longest_wait_seconds"]),
        logged_in=str(len(agents) - by_state["logged_out"]),
        logged_out=str(by_state["logged_out"]),
    )
    return totals


def now_figures(cards: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """A page's cards without the day's figures (calls answered), which come from the reports."""
    return {k: {f: v for f, v in c.items() if f != "answered"} for k, c in cards.items()}


def assert_page_shows(
    page: dict[str, Any],
    state: dict[str, Any],
    now: float,
    *,
    agents: int = 30,
    timed: int = 30,
    groups: int = 4,
    paths: int = 3,
) -> None:
    """The page shows exactly what /api/v1/state said at the page's version:
    at least ``agents`` agents, ``timed`` of them with a running time, and
    ``groups`` groups and ``paths`` paths."""
    everyone = state["agents"]
    listed = [a for a in everyone if a["state"] != "logged_out"]  # logged out: counted only
    assert {t["id"] for t in page["agents"]} == {a["id"] for a in listed}
    assert len(listed) >= agents
    shown = {t["id"]: {k: t[k] for k in TILE_FLAGS} for t in page["agents"]}
    assert shown == {a["id"]: tile_flags(a) for a in listed}
    assert now_figures(page["groups"]) == expected_queues(state["groups"], "Group")
    assert len(page["groups"]) == groups
    assert now_figures(page["paths"]) == expected_queues(state["paths"], "Path")
    assert len(page["paths"]) == paths
    totals = {k: v for k, v in page["totals"].items() if k != "occupancy"}
    assert totals == expected_totals(state, everyone)
    assert page["banner"] is None and page["live"] == "live"
    counted = 0
    tiles = {t["id"]: t for t in page["agents"]}
    for agent in listed:
        tile = tiles[agent["id"]]
        # The name where the names file has one, else the ID; one of its forms in sight.
        assert tile["names"][0] == (agent["name"] or agent["id"]), (tile, agent)
        assert tile["name"] in tile["names"], tile
        # Holds are in words; so is a value the PBX has not confirmed.
        assert ("on hold" in tile["words"][0].lower()) == agent["on_hold"], (tile, agent)
        assert tile["note"] == ("" if agent["confirmed"] else "?"), (tile, agent)
        # Time in state counts from `state_since` on the server's clock (same
        # machine here), and only for what the PBX confirmed.
        if agent["state_since"] is None or not agent["confirmed"]:
            assert (tile["time"], tile["level"]) == ("", ""), (tile, agent)
            continue
        assert tile["what"] in tile["words"], tile
        assert re.fullmatch(r"\d\d:\d\d|\d+h\d\d", tile["time"]), tile
        elapsed = now - parse_iso(agent["state_since"])
        assert abs(seconds_shown(tile["time"]) - elapsed) <= 2.5, (tile, agent["state_since"], now)
        assert_level(tile, agent, now)
        counted += 1
    assert counted >= timed


LEVELS = ("", "warning", "alarm")


def level_at(agent: dict[str, Any], when: float) -> str:
    """The agent's level by its thresholds at ``when``."""
    level = ""
    for name in LEVELS[1:]:
        at = (agent["attention"] or {}).get(f"{name}_at")
        if at and when >= parse_iso(at):
            level = name
    return level


def assert_level(tile: dict[str, Any], agent: dict[str, Any], now: float) -> None:
    """Warning or alarm once the clock passed the agent's thresholds (the board
    looks once a second: a second either way is not held against it)."""
    low, high = (LEVELS.index(level_at(agent, now + d)) for d in (-1.2, 1.2))
    assert low <= LEVELS.index(tile["level"]) <= high, (tile, agent, now)


def deltas(page: dict[str, Any]) -> int:
    stream = page["stream"]
    return stream["counts"].get("delta", 0) if stream else 0


def assert_fed_by_deltas(page: dict[str, Any], at_least: int) -> None:
    """The page's version is that of the last delta, on a stream that began with
    its one snapshot, and nothing else fed it: no whole states, no polls."""
    stream = page["stream"]
    assert stream is not None and stream["open"] == 1, stream  # EventSource.OPEN
    assert stream["first"] == "snapshot" and stream["counts"]["snapshot"] == 1, stream
    assert stream["counts"].get("delta", 0) >= at_least, stream
    assert stream["last"] == "delta", stream
    assert page["version"] == str(stream["last_version"]), (page["version"], stream)
    assert stream["last_version"] > stream["first_version"], stream
    assert page["state_events"] == 0 and page["polls"] == 0, page
    # Tiles changed on an event only when the event named their agent.
    assert page["checked"] > 0 and page["unexpected"] == [], page["unexpected"]


# --- the simulator's floor: the model, deltas, resyncs, polls ---------------------


def test_page_matches_the_api(floor: Floor) -> None:
    """Dozens of deltas after the snapshot, the page is exactly the API's state."""
    page, state, now = page_and_state(
        floor, lambda p: deltas(p) >= 50 and p["stream"]["last"] == "delta"
    )
    assert_fed_by_deltas(page, 50)
    assert page["sources"] == 1
    assert_page_shows(page, state, now)
    # The names file's names, not only IDs.
    assert sum(a["name"] is not None for a in state["agents"]) >= 30
    assert page["title"] == "Call centre floor" and page["feed_line"] == "Live · PBX 127.0.0.1"
    seen = layout(floor)
    assert seen["problems"] == [] and seen["min_font"] >= 20, seen


def test_changes_arrive_without_reload(floor: Floor) -> None:
    floor.driver.execute_script("window.__loadMarker = 'board-was-not-reloaded'")
    before = floor.page()
    tiles = {a["id"]: (a["status"], a["activity"]) for a in before["agents"]}

    def moved(_: Any) -> dict[str, Any] | None:
        page = floor.page()
        now = {a["id"]: (a["status"], a["activity"]) for a in page["agents"]}
        return page if page["version"] != before["version"] and now != tiles else None

    after = floor.until(moved)
    assert int(after["version"]) > int(before["version"])
    assert after["navigations"] == 1
    assert after["marker"] == "board-was-not-reloaded"


#: Dispatches a made-up delta on the board's event stream, numbered from the
#: page's version, and reads the page before and after: one JS turn, so no real
#: event comes in between.
SEND_DELTA = """
const [fromOffset, versionOffset, fields] = arguments;
const es = window.__sse.sources[window.__sse.sources.length - 1].es;
const v = Number(document.body.dataset.version);
const ids = [...document.querySelectorAll('[data-agent]')].map((e) => e.dataset.agent);
const delta = {from: v + fromOffset, version: v + versionOffset,
               generated_at: new Date().toISOString(), stale: false, ...fields};
es.dispatchEvent(new MessageEvent("delta", {data: JSON.stringify(delta)}));
const page = (() => { READ_PAGE })();
return {version: String(v), ids, closed: es.readyState === EventSource.CLOSED, page};
""".replace("READ_PAGE", READ_PAGE)

#: Totals no floor of 48 agents has.
MADE_UP_TOTALS = {
    "agents": {"in": 1, "idle": 1, "busy": 1, "timer": 1, "out": 1},
    "logged_in": 777,
    "waiting": 77,
    "longest_wait_seconds": 3599,
}


def made_up_agent(agent_id: str) -> dict[str, Any]:
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
    call = {"button": 1, "kind": "personal", "held": False, "path": None, "since": now}
    return {
        "id": agent_id, "name": f"Made Up {agent_id}", "team": None, "groups": [],
        "status": "busy", "state": "on_call", "state_since": now, "attention": None,
        "activity": "personal_call", "logged_in": True,
        "dnd": True, "dnd_reason": None, "dnd_reason_text": None,
        "make_busy": True, "make_busy_reason": 97, "make_busy_reason_text": None,
        "wrap_up": False, "on_hold": False, "ringing": None, "calls": [call],
        "fresh_login": False, "extension": "99999", "last_path": None, "since": now,
        "confirmed": True, "carried": False, "carried_since": None,
        "last_event": "dnd_on", "last_event_at": now,
    }  # fmt: skip


def shown_as(page: dict[str, Any], agent_id: str) -> list[str] | None:
    """The words of an agent's tile, all their forms."""
    return next((a["words"] for a in page["agents"] if a["id"] == agent_id), None)


def test_deltas_apply_in_order_and_a_gap_resyncs(floor: Floor) -> None:
    floor.until(lambda _: floor.page()["stream"]["last"] == "delta")
    sources = floor.page()["sources"]

    # A delta the page is already past changes nothing.
    first = floor.page()["agents"][0]["id"]
    fields = {"agents": {first: made_up_agent(first)}, "totals": MADE_UP_TOTALS}
    sent = floor.driver.execute_script(SEND_DELTA, -2, -1, fields)
    page = sent["page"]
    assert page["version"] == sent["version"]
    assert "Make busy 97" not in (shown_as(page, first) or [""])[0]
    assert page["totals"]["waiting"] != "77"
    assert not sent["closed"] and page["sources"] == sources

    # One that follows on: agents and a group come and go, agents in the order
    # of their names, cards in id order (digits as numbers, anything else after
    # them), the totals are replaced.
    gone = sent["ids"][1]
    group = {"id": "9", "name": None, "level": "alarm", "waiting": 5, "agents_logged_in": 1,
             "longest_wait_seconds": 61}  # fmt: skip
    fields = {
        "agents": {"zz9": made_up_agent("zz9"), "5": made_up_agent("5"), gone: None},
        "groups": {"9": group},
        "totals": MADE_UP_TOTALS,
    }
    sent = floor.driver.execute_script(SEND_DELTA, 0, 1, fields)
    page = sent["page"]
    assert page["version"] == str(int(sent["version"]) + 1)
    ids = [a["id"] for a in page["agents"]]
    assert sorted(ids) == sorted(["5", *(i for i in sent["ids"] if i != gone), "zz9"])
    assert ids.index("5") < ids.index("zz9")  # "Made Up 5" before "Made Up zz9"
    made_up = next(a for a in page["agents"] if a["id"] == "5")
    assert made_up["names"] == ["Made Up 5", "Made 5.", "Made"]
    assert made_up["words"] == [
        "Personal call · Make busy 97 · DND", "Personal · Busy 97 · DND", "Pers. Busy DND",
        "Pers.",
    ]  # fmt: skip
    assert page["queue_order"][:2] == ["group:9", "group:610"]
    assert page["groups"]["9"] == {
        "waiting": "5", "answered": "–", "longest": "01:01", "name": "Group 9", "level": "alarm",
    }  # fmt: skip
    assert page["totals"]["waiting"] == "77" and page["totals"]["longest"] == "59:59"

    # One from ahead of the page's version: deltas were missed. None of it is
    # shown, and the board gives that stream up for a fresh one.
    fields = {
        "agents": {"bogus": made_up_agent("bogus")},
        "totals": dict(MADE_UP_TOTALS, waiting=88),
    }
    sent = floor.driver.execute_script(SEND_DELTA, 10**6, 10**6 + 1, fields)
    page = sent["page"]
    assert sent["closed"]
    assert page["version"] == sent["version"]
    assert shown_as(page, "bogus") is None and page["totals"]["waiting"] != "88"
    # The new stream starts with a snapshot that wipes out what was made up,
    # and its deltas keep the page equal to the API.
    page, state, now = page_and_state(
        floor,
        lambda p: (
            p["sources"] == sources + 1 and deltas(p) >= 10 and p["stream"]["last"] == "delta"
        ),
    )
    assert_fed_by_deltas(page, 10)
    assert_page_shows(page, state, now)
    assert gone in [a["id"] for a in page["agents"]]


#: Sends made-up ``stale`` events (true, then false after ``arguments[0]`` ms
#: unless it is null), and reads the page before, at once, and every second
#: while stale. The feed of the simulator changes many times a second, and each
#: delta says "not stale": the board's own stream is closed for the while.
STALE_FOR_A_WHILE = """
const [ms, done] = [arguments[0], arguments[arguments.length - 1]];
const sse = window.__sse;
const es = sse.sources[sse.sources.length - 1].es;
const read = () => { READ_PAGE };
const send = (stale) => es.dispatchEvent(new MessageEvent("stale", {
  data: JSON.stringify({generated_at: new Date().toISOString(), stale})}));
const before = read();
const dims = () => getComputedStyle(document.querySelector('.totals')).opacity;
es.close(); // no real event comes in between
send(true);
const seen = [read()];
const opacity = dims();
// Two frames later the banner is laid out: tiles have the room they keep.
requestAnimationFrame(() => requestAnimationFrame(() => {
  const laidOut = read();
  const timer = setInterval(() => seen.push(read()), 1000);
  setTimeout(() => {
    clearInterval(timer);
    send(false);
    done({before, seen, laidOut, opacity, after: read()});
  }, ms);
}));
""".replace("READ_PAGE", READ_PAGE)


def test_stale_events_dim_the_board_and_stop_its_timers(floor: Floor) -> None:
    """A ``stale`` event (the feed going stale or fresh with no change of the
    floor, so no version) is shown at once: the banner, the header, everything
    dimmed, and no time counts on; fresh again, they run on. Made up here:
    with the simulator running, real ones are rare."""
    page = floor.page()
    assert page["banner"] is None and page["live"] == "live"
    floor.driver.set_script_timeout(30)
    seen = floor.driver.execute_async_script(STALE_FOR_A_WHILE, 5200)
    stale = seen["seen"][0]
    banner = r"Not live since \d\d:\d\d:\d\d · no data for \d+ s"
    assert re.fullmatch(banner, stale["banner"] or ""), stale
    assert stale["live"] == "stale" and stale["feed_line"] == "Not live · PBX 127.0.0.1"
    assert float(seen["opacity"]) <= 0.5
    assert stale["version"] == seen["before"]["version"]
    # For five seconds no figure moved, times included; confirmed agents keep theirs.
    for later in seen["seen"][1:]:
        assert later["agents"] == seen["laidOut"]["agents"], later
        assert later["totals"] == stale["totals"] == seen["laidOut"]["totals"]
    assert [a["time"] for a in seen["laidOut"]["agents"]] == [a["time"] for a in stale["agents"]]
    assert len(seen["seen"]) >= 5
    assert any(a["time"] and a["confirmed"] == "true" for a in stale["agents"])
    assert all(a["level"] == "" for a in stale["agents"])
    after = seen["after"]
    assert after["banner"] is None and after["live"] == "live"
    timed = [(a["time"], b["time"]) for a, b in zip(stale["agents"], after["agents"]) if a["time"]]
    assert any(seconds_shown(b) >= seconds_shown(a) + 4 for a, b in timed), timed
    # Its stream closed, the board opens another one.
    floor.driver.refresh()
    floor.until(lambda _: floor.page()["version"] is not None)


def test_a_poll_never_undoes_a_pushed_state(floor: Floor) -> None:
    """An EventSource error makes the board poll; an answer older than what was
    pushed (here a made-up one of version 1) is not shown, not even for a moment."""
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
    fake = {
        "generated_at": now, "stale": False, "version": 1, "last_update": now,
        "feed": {"connected": True, "stale": False, "pbx_host": "made-up"},
        "totals": MADE_UP_TOTALS, "agents": [made_up_agent("1")],
        "groups": [], "paths": [], "extensions": [],
    }  # fmt: skip
    before = floor.page()
    seen = floor.driver.execute_script(
        """
        window.__fakeState = arguments[0];
        const sse = window.__sse;
        sse.sources[sse.sources.length - 1].es.dispatchEvent(new Event("error"));
        return sse.versions.length;
        """,
        fake,
    )
    try:
        floor.until(lambda _: floor.driver.execute_script("return window.__sse.fakeServed"))
        # Its answer is read at once; let deltas come after it, and 20 versions be
        # shown (deltas in one frame are drawn once).
        floor.until(lambda _: deltas(floor.page()) >= deltas(before) + 20)
        floor.until(
            lambda _: floor.driver.execute_script(
                "return window.__sse.versions.length - arguments[0] >= 20", seen
            )
        )
    finally:
        floor.driver.execute_script("window.__fakeState = null")
    versions = floor.driver.execute_script("return window.__sse.versions.slice(arguments[0])", seen)
    assert len(versions) >= 20 and "1" not in versions
    assert [int(v) for v in versions] == sorted(int(v) for v in versions)
    page = floor.page()
    assert shown_as(page, "1") is None and page["totals"]["waiting"] != "77"
    # The pushed events that came since stopped the polling.
    polls = page["polls"]
    assert polls >= 1
    time.sleep(2.5)
    assert floor.page()["polls"] == polls


def test_polls_without_eventsource(simulated: Floor) -> None:
    """A browser without EventSource gets the state by polling every 2 s."""
    floor = simulated
    script = floor.driver.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument", {"source": "delete window.EventSource;"}
    )
    try:
        first = floor.open()
        assert floor.driver.execute_script("return typeof EventSource") == "undefined"
        later = floor.until(lambda _: (p := floor.page())["version"] != first["version"] and p)
        assert later["navigations"] == 1 and len(later["agents"]) >= 30
        assert later["sources"] == 0 and later["polls"] >= 2
    finally:
        floor.driver.execute_cdp_cmd(
            "Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]}
        )
    floor.open()
    assert floor.driver.execute_script("return typeof EventSource") == "function"


# --- views ------------------------------------------------------------------------


def members_of(state: dict[str, Any], groups: set[str]) -> list[dict[str, Any]]:
    """The agents of /api/v1/state the names file puts in any of ``groups``."""
    return [a for a in state["agents"] if groups & set(a["groups"])]


def test_a_group_view_shows_its_groups_and_their_agents(simulated: Floor) -> None:
    """``?groups=``: those groups' cards (and ``&paths=``' cards), only the agents
    the names file puts in them, the header counting those agents."""
    floor = simulated
    page = floor.open("?groups=610,620&paths=860")
    assert page["title"] == "Sales · Support"
    # Deltas of the other groups, paths and agents add no card and no tile.
    page, state, now = page_and_state(
        floor, lambda p: deltas(p) >= 50 and p["stream"]["last"] == "delta"
    )
    assert_fed_by_deltas(page, 50)
    assert page["queue_order"] == ["group:610", "group:620", "path:860"]
    inside = members_of(state, {"610", "620"})
    assert {a["id"] for a in inside} <= floor.members["610"] | floor.members["620"]
    assert 10 <= len(inside) < len(state["agents"])
    drawn = [a for a in inside if a["state"] != "logged_out"]
    assert {t["id"] for t in page["agents"]} == {a["id"] for a in drawn}
    assert {t["id"]: {k: t[k] for k in TILE_FLAGS} for t in page["agents"]} == {
        a["id"]: tile_flags(a) for a in drawn
    }
    totals = expected_totals(state, inside)
    assert {k: page["totals"][k] for k in (*STATES, "logged_in")} == {
        k: totals[k] for k in (*STATES, "logged_in")
    }
    # The floor's queue totals are not this view's: the cards say its figures.
    assert not floor.driver.execute_script(
        "return document.querySelector('[data-total=waiting]').checkVisibility()"
    )

    # A group alone: no paths.
    page = floor.open("?groups=630")
    assert page["queue_order"] == ["group:630"] and page["title"] == "Billing"
    assert {t["id"] for t in page["agents"]} <= floor.members["630"]


def test_queues_only_and_agents_only(simulated: Floor) -> None:
    floor = simulated
    page = floor.open("?view=queues")
    assert page["agents"] == [] and page["queues_seen"]
    assert len(page["queue_order"]) == 7
    # Big figures: the cards share the screen.
    sizes = floor.driver.execute_script(
        "return [...document.querySelectorAll('.queue b[data-field=waiting]')]"
        ".map((b) => parseFloat(getComputedStyle(b).fontSize))"
    )
    assert min(sizes) >= 100, sizes
    assert floor.driver.execute_script(LAYOUT)["problems"] == []

    page = floor.open("?view=agents")
    assert len(page["agents"]) >= 30 and not page["queues_seen"]
    assert floor.driver.execute_script(LAYOUT)["problems"] == []


#: The layout as a TV shows it: every element with text in sight (not hidden,
#: not clipped away by a box around it), the smallest font among them, and
#: what is wrong: text cut off (by an ellipsis or by the edge of a box), tiles,
#: cards or totals overlapping or out of the screen, a page or grid that scrolls.
LAYOUT = """
const problems = [];
const say = (what, e) => problems.push(`${what}: ${e.className || e.tagName} "${e.textContent.slice(0, 40)}"`);
// The part of an element a viewer can see: inside every box around it that clips.
const seen = (e) => {
  const r = e.getBoundingClientRect();
  let box = {left: r.left, top: r.top, right: r.right, bottom: r.bottom};
  for (let p = e.parentElement; p; p = p.parentElement) {
    const style = getComputedStyle(p);
    if (style.overflowX === 'visible' && style.overflowY === 'visible') continue;
    const c = p.getBoundingClientRect();
    box = {left: Math.max(box.left, c.left), top: Math.max(box.top, c.top),
           right: Math.min(box.right, c.right), bottom: Math.min(box.bottom, c.bottom)};
  }
  box.area = Math.max(0, box.right - box.left) * Math.max(0, box.bottom - box.top);
  return [r, box];
};
let min = Infinity, minAt = '', texts = 0;
for (const e of document.body.querySelectorAll('*')) {
  if (['SCRIPT', 'STYLE'].includes(e.tagName)) continue;
  if (![...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
  if (!e.checkVisibility({visibilityProperty: true})) continue;
  const [r, box] = seen(e);
  if (box.area < 1) continue;
  texts += 1;
  const size = parseFloat(getComputedStyle(e).fontSize);
  if (size < min) [min, minAt] = [size, `${e.className || e.tagName} "${e.textContent.slice(0, 30)}"`];
  const cut = r.left < box.left - 0.5 || r.right > box.right + 0.5
    || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5;
  if (cut) say('cut by a box', e);
  if (getComputedStyle(e).overflowX !== 'visible' && e.scrollWidth > e.clientWidth + 1) say('ellipsis', e);
  if (r.left < -0.5 || r.top < -0.5 || r.right > innerWidth + 0.5 || r.bottom > innerHeight + 0.5) {
    say('off the screen', e);
  }
}
const boxes = [...document.querySelectorAll('[data-agent], .queue, .total')]
  .filter((e) => e.checkVisibility()).map((e) => [e, e.getBoundingClientRect()]);
for (const [e, r] of boxes) {
  if (r.left < -0.5 || r.top < -0.5 || r.right > innerWidth + 0.5 || r.bottom > innerHeight + 0.5) {
    say('tile off the screen', e);
  }
}
for (let i = 0; i < boxes.length; i++) {
  for (let j = i + 1; j < boxes.length; j++) {
    const [a, b] = [boxes[i][1], boxes[j][1]];
    const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
    const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
    if (w > 0.5 && h > 0.5) say(`overlaps ${boxes[j][0].className}`, boxes[i][0]);
  }
}
const doc = document.documentElement;
const grid = document.getElementById('agents');
if (doc.scrollHeight > doc.clientHeight || doc.scrollWidth > doc.clientWidth) problems.push('the page scrolls');
if (grid.scrollHeight > grid.clientHeight + 1) problems.push('the agents scroll');
if (getComputedStyle(grid).overflowY !== 'hidden') problems.push('the agents may scroll');
// Each tile in sight shows a whole name (one of its forms, uncut).
const shown = [];
for (const [e] of boxes.filter(([e]) => e.dataset.agent)) {
  const name = e.querySelector('.a-name');
  const box = name.getBoundingClientRect();
  const form = [...name.children].find((s) => {
    const r = s.getBoundingClientRect();
    return r.height > 1 && r.top >= box.top - 0.5 && r.bottom <= box.bottom + 0.5
      && s.scrollWidth <= s.clientWidth + 1;
  });
  if (form) shown.push(e.dataset.agent); else say('no whole name', e);
}
return {
  problems: problems.slice(0, 30), min_font: min, min_at: minAt, texts,
  tiles: shown.length, shown, pages: window.mitelacdBoard?.pages ?? null,
  unit: grid.style.getPropertyValue('--unit'), columns: grid.style.getPropertyValue('--cols'),
  size: [innerWidth, innerHeight],
};
"""


def layout(board: Board) -> dict[str, Any]:
    return json_object(board.driver.execute_script(LAYOUT))


# --- a floor of the tests' own records ------------------------------------------

#: What an earlier run left in the data file: carried over at start, unconfirmed.
CARRIED = {
    "agents": {"4001": "busy", "4002": "idle"},
    "groups": {"610": {"waiting": "000", "agents": "002", "longestwait": "0000"}},
    "paths": {"860": {"waiting": "000", "agents": "002", "longestwait": "0000"}},
}

#: The scripted floor's names file, as docs/names.md has it.
SCRIPTED_NAMES = """
[agents]
"1001" = { name = "Ada Lovelace", groups = ["610"] }
"1002" = { name = "Grace Hopper", team = "Day", groups = ["610", "620"] }
"1003" = "Alan Turing"
"1004" = { name = "Edsger Dijkstra", groups = ["620"] }
"4001" = "Barbara Liskov"
[groups]
"610" = "Sales"
[paths]
"860" = "Sales hotline"
[make_busy_reasons]
"05" = "Lunch"
[dnd_reasons]
"01" = "Meeting"
[thresholds]
waiting = [3, 6]
longest_wait = [60, 120]
[thresholds.groups."610"]
longest_wait = [30, 90]
[thresholds.agents]
wrap_up = [1, 2]
"""


@contextlib.contextmanager
def scripted_floor(
    driver: Any, folder: Path, names: str, carried: dict[str, Any] | None = None
) -> Iterator[Scripted]:
    """A daemon whose PBX is a loopback socket the tests write to, reading
    ``names`` and carrying ``carried`` over from its data file. Its link is
    redialled 30 s after it drops (once a test closes the socket)."""
    data = folder / "mitel_data.json"
    if carried is not None:
        doc = dict(carried, lastUpdate=time.time())
        validate_legacy(doc)
        data.write_text(json.dumps(doc))
    names_file = folder / "names.toml"
    names_file.write_text(names)
    server, port = fake_pbx(timeout=WAIT)
    with server:
        # No keepalives come from this PBX: the watchdog must not find it silent.
        daemon = Twistd(
            "mitelacd", "--host", "127.0.0.1", "--port", str(port), "--file", str(data),
            "--names", str(names_file), "--http", "tcp:0:interface=127.0.0.1",
            "--watchdog", "600", "--stale-after", "600", "--retry-delay", "30", cwd=folder,
        )  # fmt: skip
        try:
            if carried is not None:
                count = f"carried {len(carried['agents'])} agents"
                daemon.wait_for(count, timeout=WAIT)
            http = daemon.http_port(timeout=WAIT)
            conn, _ = server.accept()
            with conn:
                daemon.wait_for(r"connected to the PBX", timeout=WAIT)
                yield Scripted(
                    daemon, f"http://127.0.0.1:{http}/", driver, folder, conn, names_file
                )
        finally:
            resume(daemon)
            daemon.stop()


@pytest.fixture
def scripted_page(driver: webdriver.Chrome, tmp_path: Path) -> Iterator[Scripted]:
    """A daemon of the test's own, in the shared browser, showing its board: it
    carries CARRIED over from its file, and its PBX is a loopback socket the
    test writes records to."""
    with scripted_floor(driver, tmp_path, SCRIPTED_NAMES, CARRIED) as board:
        board.open()
        yield board


#: Agents 1001-1004 busy on the scripted floor (what test_hold_and_several_calls
#: leaves): 1001 on an ACD call, 1002 ringing, 1003 on an ACD call with another
#: ringing, 1004 in make busy (reason 5) and DND (reason 3). By agent: its DN and steps.
BUSY = {
    "1001": ("2001", "G01860 N01 I02 J02 O01"),
    "1002": ("2002", "T01"),
    "1003": ("2003", "G01860 T02"),
    "1004": ("2004", "E05 C03"),
}


def busy(board: Scripted) -> dict[str, Any]:
    """BUSY played on ``board``; the page once it shows it."""
    for agent, (dn, spec) in BUSY.items():
        board.steps(spec, agent=agent, dn=dn)
    return shown_once(board, lambda s: agent_in(s, "1004").get("dnd"), "the busy floor")


def agent_in(state: dict[str, Any], agent_id: str) -> dict[str, Any]:
    """An agent of /api/v1/state, or {} while it is not there."""
    return next((a for a in state["agents"] if a["id"] == agent_id), {})


def tile_in(page: dict[str, Any], agent_id: str) -> dict[str, Any]:
    return next(t for t in page["agents"] if t["id"] == agent_id)


def shown_once(board: Board, done: Callable[[dict[str, Any]], Any], what: str) -> dict[str, Any]:
    """The page once it shows a version of /api/v1/state of which ``done`` holds."""
    version = wait_for_state(board, done, what)["version"]

    def caught_up(_: Any) -> dict[str, Any] | None:
        page = board.page()
        return page if page["version"] is not None and int(page["version"]) >= version else None

    return board.until(caught_up)


#: How an agent's tile looks: outline, opacity, colours, and the text of its
#: note where it can be seen, whole, inside the tile.
TILE_LOOK = """
const tile = document.querySelector(`[data-agent="${CSS.escape(arguments[0])}"]`);
const style = getComputedStyle(tile);
const time = getComputedStyle(tile.querySelector('.a-time'));
const t = tile.getBoundingClientRect();
const seen = (node) => {
  const n = node.getBoundingClientRect();
  const inside = n.width > 0 && n.left >= t.left && n.right <= t.right
    && n.top >= t.top && n.bottom <= t.bottom;
  return node.checkVisibility() && inside && node.scrollWidth <= node.clientWidth
    ? node.textContent : null;
};
return {
  outline: style.outlineStyle, opacity: Number(style.opacity), animation: style.animationName,
  background: style.backgroundColor, image: style.backgroundImage, ring: style.boxShadow,
  time_background: time.backgroundColor, note: seen(tile.querySelector('.a-note')),
};
"""

#: The board's palette, as computed colours.
PALETTE = """
const probe = document.body.appendChild(document.createElement('i'));
const colours = {};
for (const name of arguments[0]) {
  probe.style.color = `var(--${name})`;
  colours[name] = getComputedStyle(probe).color;
}
probe.remove();
return colours;
"""


def look_of(board: Board, agent_id: str) -> dict[str, Any]:
    return json_object(board.driver.execute_script(TILE_LOOK, agent_id))


def palette(board: Board, *names: str) -> dict[str, str]:
    return json_object(board.driver.execute_script(PALETTE, names))


def assert_counters_tick(board: Board) -> None:
    """Between two pushes, the times of confirmed agents count up; unconfirmed
    agents have none."""
    for _ in range(5):
        first = board.page()
        time.sleep(2.5)  # a render may have set the first figures just before a tick
        second = board.page()
        if first["version"] == second["version"]:
            pairs = [
                (a["time"], b["time"], b["confirmed"])
                for a, b in zip(first["agents"], second["agents"])
            ]
            assert all(a == b == "" for a, b, confirmed in pairs if confirmed == "false"), pairs
            timed = [(a, b) for a, b, confirmed in pairs if a and confirmed == "true"]
            assert timed and all(seconds_shown(b) > seconds_shown(a) for a, b in timed), pairs
            return
    raise AssertionError("the page never held one version for 2.5 s")


def test_hold_and_several_calls(scripted_page: Scripted) -> None:
    """A consultation: an ACD call held on key 1 while an outgoing call runs on
    key 2; then ringing, make busy and DND with their reasons."""
    board = scripted_page
    board.steps("G01860 N01 I02", agent="1001", dn="2001")
    page = shown_once(board, lambda s: len(agent_in(s, "1001").get("calls", [])) == 2, "two calls")
    tile = tile_in(page, "1001")
    assert {k: tile[k] for k in ("status", "state", "activity", "calls", "on_hold")} == {
        "status": "busy", "state": "on_call", "activity": "outgoing_call", "calls": "2",
        "on_hold": "true",
    }  # fmt: skip
    assert tile["words"] == [
        "Outgoing call · 1 on hold", "Outgoing · +1 held", "Out +1", "Out",
    ]  # fmt: skip
    assert tile["what"] == "Outgoing call · 1 on hold"  # a few tiles: room for all of it

    # The consultation hangs up: the caller is still on hold, the agent still busy.
    board.steps("J02", agent="1001", dn="2001")
    page = shown_once(board, lambda s: len(agent_in(s, "1001")["calls"]) == 1, "one call")
    tile = tile_in(page, "1001")
    assert (tile["status"], tile["state"], tile["activity"], tile["calls"], tile["on_hold"]) == (
        "busy", "on_hold", "hold", "1", "true",
    )  # fmt: skip
    assert tile["what"] == "On hold"

    board.steps("O01", agent="1001", dn="2001")
    page = shown_once(board, lambda s: not agent_in(s, "1001")["on_hold"], "the call retrieved")
    tile = tile_in(page, "1001")
    assert (tile["what"], tile["state"], tile["on_hold"]) == ("ACD call", "on_call", "false")

    board.steps("T01", agent="1002", dn="2002")
    board.steps("G01860 T02", agent="1003", dn="2003")
    board.steps("E05 C03", agent="1004", dn="2004")
    page = shown_once(board, lambda s: agent_in(s, "1004").get("dnd"), "DND")
    shown = {t["id"]: (t["what"], t["state"]) for t in page["agents"]}
    assert shown["1002"] == ("Ringing", "ringing")
    assert shown["1003"] == ("ACD call · ringing", "on_call")
    # Make busy with the names file's text for reason 5; DND 3 has none.
    assert shown["1004"] == ("Make busy: Lunch · DND 3", "not_ready")
    assert layout(board)["problems"] == []

    page, state, now = page_and_state(board)
    assert_fed_by_deltas(page, 1)
    assert_page_shows(page, state, now, agents=6, timed=4, groups=1, paths=1)


def test_names_and_reasons(scripted_page: Scripted) -> None:
    """Names instead of IDs where the names file has them; the reason's text for
    make busy and DND; names of groups and paths."""
    board = scripted_page
    busy(board)
    board.steps("A", agent="1005", dn="2005")  # not in the names file
    board.steps("C01", agent="1002", dn="2002")
    board.steps("U02 J00 E05", agent="1003", dn="2003")
    page = shown_once(
        board, lambda s: agent_in(s, "1005") and agent_in(s, "1002")["dnd"], "1005 and DND"
    )
    names = {t["id"]: t["name"] for t in page["agents"]}
    assert names["1001"] == "Ada Lovelace" and names["1002"] == "Grace Hopper"
    assert names["1004"] == "Edsger Dijkstra" and names["1005"] == "1005"
    assert tile_in(page, "1002")["what"] == "Ringing · DND: Meeting"
    board.steps("U01", agent="1002", dn="2002")
    page = shown_once(board, lambda s: agent_in(s, "1002")["state"] == "not_ready", "not ready")
    assert tile_in(page, "1002")["what"] == "DND: Meeting"
    assert tile_in(page, "1003")["what"] == "Make busy: Lunch"
    assert (page["groups"]["610"]["name"], page["paths"]["860"]["name"]) == (
        "Sales", "Sales hotline",
    )  # fmt: skip
    look = look_of(board, "1003")
    assert "repeating-linear-gradient" in look["image"], look  # not ready: hatched


def test_a_rename_reaches_the_board(scripted_page: Scripted) -> None:
    """A new names file is a delta naming the agents: the tiles change in place."""
    board = scripted_page
    busy(board)
    board.driver.execute_script("window.__loadMarker = 'not reloaded'")
    board.names.write_text(SCRIPTED_NAMES.replace("Ada Lovelace", "Ada King"))
    try:
        page = board.until(
            lambda _: (p := board.page()) and tile_in(p, "1001")["name"] == "Ada King" and p
        )
        assert page["marker"] == "not reloaded"
        assert_fed_by_deltas(page, 1)
    finally:
        board.names.write_text(SCRIPTED_NAMES)
    board.until(lambda _: tile_in(board.page(), "1001")["name"] == "Ada Lovelace")


def test_a_queue_past_its_threshold_is_an_alarm(scripted_page: Scripted) -> None:
    """Group 610 alarms at 90 s longest wait (the names file): its card and the
    queue totals in the alarm colour; below the thresholds, calm again."""
    board = scripted_page
    colours = palette(board, "alarm", "alarm-fg", "panel", "fg")
    board.stats("K", "610", "0020020135")  # 2 waiting, longest 01:35
    board.stats("Q", "860", "0020020135")
    page = shown_once(board, lambda s: s["groups"][0]["level"] == "alarm", "610 at alarm")
    assert now_figures(page["groups"])["610"] == {
        "waiting": "2", "longest": "01:35", "name": "Sales", "level": "alarm",
    }  # fmt: skip
    # Path 860 has the default thresholds: 95 s is a warning there.
    assert page["paths"]["860"]["level"] == "warning"
    card = board.driver.execute_script(
        "const s = getComputedStyle(document.querySelector('[data-group=\"610\"]'));"
        "const b = getComputedStyle(document.querySelector('[data-group=\"610\"] b'));"
        "const total = getComputedStyle(document.querySelector('.t-queue'));"
        "return [s.backgroundColor, b.color, total.backgroundColor];"
    )
    assert card == [colours["alarm"], colours["alarm-fg"], colours["alarm"]]

    board.stats("K", "610", "0000020000")
    board.stats("Q", "860", "0000020000")
    page = shown_once(board, lambda s: s["paths"][0]["level"] == "ok", "860 calm")
    assert page["groups"]["610"]["level"] == page["paths"]["860"]["level"] == "ok"
    card = board.driver.execute_script(
        "return getComputedStyle(document.querySelector('[data-group=\"610\"]')).backgroundColor"
    )
    assert card == colours["panel"]


def test_an_agent_too_long_in_wrap_up_is_an_alarm(scripted_page: Scripted) -> None:
    """Wrap-up thresholds of 1 and 2 s (the names file): the tile turns to the
    warning and then the alarm colour as the clock passes them; out of
    wrap-up, it is calm again."""
    board = scripted_page
    busy(board)
    colours = palette(board, "warning", "alarm", "wrap-up")
    board.steps("F01 D01 G01860 L01", agent="1004", dn="2004")
    page = shown_once(board, lambda s: agent_in(s, "1004")["state"] == "wrap_up", "wrap-up")
    assert tile_in(page, "1004")["level"] == ""
    assert look_of(board, "1004")["background"] == colours["wrap-up"]
    board.until(lambda _: tile_in(board.page(), "1004")["level"] == "warning", timeout=3)
    look = look_of(board, "1004")
    assert colours["warning"] in look["ring"] and look["time_background"] == colours["warning"]
    board.until(lambda _: tile_in(board.page(), "1004")["level"] == "alarm", timeout=3)
    look = look_of(board, "1004")
    assert colours["alarm"] in look["ring"] and look["time_background"] == colours["alarm"]
    board.steps("M01", agent="1004", dn="2004")
    page = shown_once(board, lambda s: agent_in(s, "1004")["state"] == "available", "available")
    assert tile_in(page, "1004")["level"] == "" and look_of(board, "1004")["ring"] == "none"


def test_a_group_view_hides_agents_outside_the_group(scripted_page: Scripted) -> None:
    """``?groups=610``: the members the names file names (1001, 1002), not 1004
    (of 620) nor the agents in no group."""
    board = scripted_page
    busy(board)
    state = board.state()
    assert {a["id"] for a in state["agents"]} >= {"1001", "1002", "1003", "1004", "4001"}
    page = board.open("?groups=610")
    assert [t["id"] for t in page["agents"]] == ["1001", "1002"]
    assert page["queue_order"] == ["group:610"] and page["title"] == "Sales"
    counted = {k: v for k, v in page["totals"].items() if k in (*COUNTED, "logged_in")}
    assert counted == {
        k: v for k, v in expected_totals(state, members_of(state, {"610"})).items() if k in counted
    }
    # An agent of the group that changes is drawn; one outside it is not.
    board.steps("H03", agent="1004", dn="2004")
    board.steps("I02", agent="1002", dn="2002")
    page = shown_once(board, lambda s: agent_in(s, "1002")["activity"] == "outgoing_call", "call")
    assert [t["id"] for t in page["agents"]] == ["1001", "1002"]
    assert tile_in(page, "1002")["state"] == "on_call"
    board.steps("J00", agent="1002", dn="2002")
    board.steps("J00", agent="1004", dn="2004")


def test_carried_agents_are_drawn_unconfirmed(scripted_page: Scripted) -> None:
    """Agents carried over from the file are never drawn as live until the PBX
    names them; then they are like any other."""
    board = scripted_page
    busy(board)
    state = board.state()
    carried = [a for a in state["agents"] if a["carried"]]
    assert [a["id"] for a in carried] == ["4001", "4002"]
    assert not any(a["confirmed"] for a in carried)
    page = shown_once(board, lambda s: s["version"] >= state["version"], "the same state")
    for agent in carried:
        tile = tile_in(page, agent["id"])
        assert {k: tile[k] for k in TILE_FLAGS} == tile_flags(agent)
        # The last known words stay, marked, with no time.
        assert (tile["note"], tile["time"]) == ("?", ""), tile
        assert tile["what"] == {"on_call": "On call", "available": "Available"}[agent["state"]]
    assert tile_in(page, "4001")["name"] == "Barbara Liskov"
    live = look_of(board, "1001")  # confirmed by BUSY
    assert (live["outline"], live["opacity"], live["note"]) == ("none", 1, None)
    look = look_of(board, "4001")
    assert look["outline"] == "dashed" and look["opacity"] < 0.8, look
    assert look["note"] == "?", look
    # In its last known colour, dimmed.
    assert look["background"] == palette(board, "on-call")["on-call"], look
    assert layout(board)["problems"] == []

    # Its first event on this connection makes it a live tile like any other.
    board.steps("H01", agent="4001", dn="2401")
    page = shown_once(board, lambda s: agent_in(s, "4001")["confirmed"], "4001 confirmed")
    tile = tile_in(page, "4001")
    assert (tile["confirmed"], tile["carried"], tile["state"], tile["what"], tile["note"]) == (
        "true", "false", "on_call", "Personal call", "",
    )  # fmt: skip
    assert re.fullmatch(r"\d\d:\d\d", tile["time"]), tile
    look = look_of(board, "4001")
    assert (look["outline"], look["opacity"], look["note"]) == ("none", 1, None)
    assert_counters_tick(board)  # 4001's time runs, 4002 still has none

    page, state, now = page_and_state(board)
    assert_fed_by_deltas(page, 1)
    # Every agent (BUSY's four and the two carried) with a running time, but 4002.
    assert_page_shows(page, state, now, agents=6, timed=5, groups=1, paths=1)


# --- floors of 40 and 150 agents: layouts and the README's pictures ---------------

#: What the agents of a staffed floor do, one after the other: every state,
#: the reasons, holds and consultations.
DAY = (
    "A", "A G01860", "A G01861", "A G01860 J01", "A H03", "A I02", "A G01860 L01", "A T01",
    "A G01860 N01", "A G01860 N01 I02", "A E01", "A C01", "A G01007", "A", "A G01860",
    "A B", "A E03", "A G01861", "A J00", "A E07",
)  # fmt: skip
#: The staffed floors' groups and paths: a real floor's six and five.
STAFF_GROUPS = {**GROUP_NAMES, "650": "Collections", "660": "Premium care"}
STAFF_PATHS = {**PATH_NAMES, "862": "Renewals line", "863": "Overflow"}
#: The groups' and paths' reports: 610 past its warning, 630 and path 007 past their alarm.
REPORTS = (
    ("K", "610", "002{agents}0040"), ("K", "620", "000{agents}0000"),
    ("K", "630", "007{agents}0215"), ("K", "640", "001{agents}0012"),
    ("K", "650", "000{agents}0000"), ("K", "660", "001{agents}0005"),
    ("Q", "007", "007{agents}0215"), ("Q", "860", "002{agents}0040"),
    ("Q", "861", "000{agents}0000"), ("Q", "862", "000{agents}0000"),
    ("Q", "863", "001{agents}0003"),
)  # fmt: skip


def staffed_names(count: int) -> str:
    """Names for agents 2001 and up (every thirteenth has none), each in one
    group and every fifth in two; reason texts; thresholds."""
    groups = list(STAFF_GROUPS)
    agents: dict[str, dict[str, Any]] = {}
    n = len(groups)
    for i in range(count):
        entry: dict[str, Any] = {} if i % 13 == 6 else {"name": person(i)}
        extra = groups[(i // 5) % n] if i % 5 == 0 else groups[i % n]
        entry["groups"] = sorted({groups[i % n], extra})
        agents[str(2001 + i)] = entry
    return toml_names(
        agents, STAFF_GROUPS, STAFF_PATHS,
        {"make_busy_reasons": {"1": "Lunch", "3": "Training"}, "dnd_reasons": {"1": "Meeting"}},
        "[thresholds]\nwaiting = [3, 6]\nlongest_wait = [60, 120]\n"
        '[thresholds.groups."610"]\nlongest_wait = [30, 90]\n'
        "[thresholds.agents]\nwrap_up = [2, 600]\non_hold = [1, 3]\n",
    )  # fmt: skip


def staff(floors: dict[int, Scripted], spread: float = 0.0) -> None:
    """On each of ``floors`` (by its number of agents), that many agents living
    DAY, in five waves ``spread`` seconds apart from first to last (times in
    state differ, as on a floor), and every group and path reporting. The
    floors are staffed together, wave by wave."""
    for wave in range(5):
        if wave:
            time.sleep(spread / 4)
        for count, board in floors.items():
            for i in range(count):
                if (i * 3) % 5 == wave:
                    board.steps(DAY[i % len(DAY)], agent=str(2001 + i), dn=str(3001 + i))
    for count, board in floors.items():
        for code, number, figures in REPORTS:
            board.stats(code, number, figures.format(agents=f"{count // 4:03d}"))
    for count, board in floors.items():
        wait_for_state(board, whole_floor(count), f"a floor of {count}")


def whole_floor(count: int) -> Callable[[dict[str, Any]], bool]:
    """Whether a state has ``count`` agents and every group and path."""
    return lambda state: (
        len(state["agents"]) == count
        and len(state["groups"]) == len(STAFF_GROUPS)
        and len(state["paths"]) == len(STAFF_PATHS)
    )


@contextlib.contextmanager
def staffed_floor(driver: Any, folder: Path, count: int, spread: float = 0.0) -> Iterator[Scripted]:
    with scripted_floor(driver, folder, staffed_names(count)) as board:
        staff({count: board}, spread)
        yield board


#: The staffed floors the tests share, by their number of agents.
STAFFED = (40, 150, 300)


@pytest.fixture(scope="module")
def staffed(
    driver: webdriver.Chrome, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[int], Scripted]]:
    """The STAFFED floors (none stopped by a test), made together when first asked for."""
    with contextlib.ExitStack() as stack:
        floors: dict[int, Scripted] = {}

        def get(count: int) -> Scripted:
            if not floors:
                for n in STAFFED:
                    folder = tmp_path_factory.mktemp(f"staffed{n}")
                    floors[n] = stack.enter_context(
                        scripted_floor(driver, folder, staffed_names(n))
                    )
                staff(floors, spread=6.0)
            return floors[count]

        yield get


def save_picture(board: Board, name: str) -> None:
    """A picture of the screen; into docs/ with MITELACD_UPDATE_SCREENSHOT=1."""
    shot = board.folder / name
    assert board.driver.save_screenshot(str(shot))
    data = shot.read_bytes()
    assert png_size(data) == (1920, 1080)
    assert len(data) > 50_000  # a board full of tiles, not a blank page
    if os.environ.get("MITELACD_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, ROOT / "docs" / name)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", data[:16]
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def in_grid(state: dict[str, Any], groups: set[str] | None = None) -> set[str]:
    """The agents a board draws a tile for: logged in, and in ``groups`` if given."""
    return {
        a["id"]
        for a in state["agents"]
        if a["state"] != "logged_out" and (groups is None or groups & set(a["groups"]))
    }


def with_query(query: str, extra: str) -> str:
    return f"{query}&{extra}" if query else f"?{extra}"


def on_page(board: Board, number: int) -> Callable[[Any], dict[str, Any] | None]:
    """The layout of ``board`` once it shows page ``number``."""

    def look(_: Any) -> dict[str, Any] | None:
        seen = layout(board)
        return seen if seen["pages"]["page"] == number else None

    return look


def assert_layouts(
    board: Scripted, expected: set[str], query: str = ""
) -> dict[tuple[int, int], Any]:
    """On each screen, on every page in turn (2 s each): every tile in sight,
    its name whole, no text cut off, nothing overlapping, no scrolling, no text
    smaller than the screen allows; and each of ``expected`` seen within one
    turn of the pages. The measures of the first page, by screen."""
    measures = {}
    for (width, height), smallest in SCREENS.items():
        screen(board.driver, width, height)
        board.open(with_query(query, "page_seconds=2"))
        board.until(lambda _: len(board.page()["agents"]) > 0)
        time.sleep(0.3)  # a resize is laid out at the next frame
        first = layout(board)
        pages = first["pages"]["pages"]
        seen: set[str] = set()
        for number in range(1, pages + 1):
            look = board.until(on_page(board, number), timeout=10)
            assert look["problems"] == [], (width, height, number, look)
            assert look["min_font"] >= smallest - 0.01, (width, height, number, look)
            assert look["tiles"] <= first["pages"]["per_page"], look
            seen |= set(look["shown"])
        assert seen == expected, (width, height, pages, sorted(expected - seen))
        measures[width, height] = dict(first, pages=pages)
    screen(board.driver, 1920, 1080)
    return measures


def assert_sorted_by_name(page: dict[str, Any], state: dict[str, Any]) -> None:
    """Tiles by name, agents without one after them by ID; logged-out agents left out."""
    agents = {a["id"]: a for a in state["agents"]}
    ids = [t["id"] for t in page["agents"]]
    named = [i for i in ids if agents[i]["name"]]
    assert ids[: len(named)] == named, "agents with a name come first"
    names = [agents[i]["name"].casefold() for i in named]
    assert names == sorted(names), names
    unnamed = ids[len(named) :]
    assert unnamed == sorted(unnamed, key=int), unnamed


def test_layouts_with_40_agents(staffed: Callable[[int], Scripted]) -> None:
    board = staffed(40)
    expected = in_grid(board.state())
    measures = assert_layouts(board, expected)
    assert all(m["pages"] == 1 and m["tiles"] == len(expected) for m in measures.values())
    print("40 agents:", {k: (m["min_font"], m["unit"], m["columns"]) for k, m in measures.items()})


def test_layouts_with_150_agents_and_pictures(staffed: Callable[[int], Scripted]) -> None:
    board = staffed(150)
    state = board.state()
    expected = in_grid(state)
    measures = assert_layouts(board, expected)
    # 1080p: the whole floor and its 11 cards on one page.
    assert measures[1920, 1080]["pages"] == 1, measures[1920, 1080]
    assert measures[1920, 1080]["min_font"] >= 20
    print(
        "150 agents:",
        {k: (m["pages"], m["min_font"], m["unit"], m["columns"]) for k, m in measures.items()},
    )
    page = board.open()
    state = board.state()
    assert_page_shows(page, state, time.time(), agents=100, timed=100, groups=6, paths=5)
    assert_sorted_by_name(page, state)
    out = sum(a["state"] == "logged_out" for a in state["agents"])
    assert out > 0 and page["totals"]["logged_out"] == str(out)
    assert {t["state"] for t in page["agents"]} == set(COUNTED)
    assert page["groups"]["630"]["level"] == page["paths"]["007"]["level"] == "alarm"
    assert page["groups"]["610"]["level"] == "warning"
    board.until(lambda _: any(t["level"] == "alarm" for t in board.page()["agents"]), timeout=5)
    board.until(lambda _: any(t["level"] == "warning" for t in board.page()["agents"]), timeout=5)
    save_picture(board, "board.png")

    # A group view, two groups of the floor.
    inside = in_grid(state, {"610", "630"})
    measures = assert_layouts(board, inside, "?groups=610,630")
    page = board.open("?groups=610,630")
    assert {t["id"] for t in page["agents"]} == inside
    assert 40 <= len(inside) < 150
    save_picture(board, "board-group.png")

    # The cards alone, and the whole floor in the light theme.
    page = board.open("?view=queues")
    assert page["agents"] == [] and len(page["queue_order"]) == 11
    assert layout(board)["problems"] == []
    save_picture(board, "board-queues.png")
    board.open("?theme=light")
    assert layout(board)["problems"] == []
    save_picture(board, "board-light.png")


def test_300_agents_turn_pages_and_each_is_seen(staffed: Callable[[int], Scripted]) -> None:
    """Too many for one page at a readable size: pages that turn by themselves,
    "page 1 of 2" in the header, and every agent on one of them."""
    board = staffed(300)
    expected = in_grid(board.state())
    measures = assert_layouts(board, expected)
    assert all(m["pages"] >= 2 for m in measures.values()), measures
    print(
        "300 agents:",
        {k: (m["pages"], m["min_font"], m["unit"], m["columns"]) for k, m in measures.items()},
    )
    page = board.open("?page_seconds=3")
    pages = layout(board)["pages"]
    line = board.driver.execute_script("return document.getElementById('page-line').textContent")
    assert line == f"page 1 of {pages['pages']}", line
    started = time.monotonic()
    board.until(lambda _: layout(board)["pages"]["page"] == 2, timeout=8)
    assert time.monotonic() - started >= 1.5  # it waited for its turn
    assert len(page["agents"]) == len(expected)


def test_sort_and_logged_out(staffed: Callable[[int], Scripted]) -> None:
    board = staffed(40)
    state = board.state()
    agents = {a["id"]: a for a in state["agents"]}
    order = list(STATES)
    page = board.open("?sort=state")
    states = [order.index(agents[t["id"]]["state"]) for t in page["agents"]]
    assert states == sorted(states), states
    page = board.open("?sort=id")
    ids = [t["id"] for t in page["agents"]]
    assert ids == sorted(in_grid(state), key=int)
    page = board.open("?out=hide")
    hidden = board.driver.execute_script(
        "return !document.querySelector('.t-out').checkVisibility()"
    )
    assert hidden and {t["id"] for t in page["agents"]} == in_grid(state)


def test_the_stale_board(driver: webdriver.Chrome, tmp_path: Path) -> None:
    """The PBX link of a floor of 150 goes down: the header says since when and
    why, every tile keeps its last state word and colour, dimmed and marked,
    every figure dims, totals included, and for 5 s nothing moves."""
    with staffed_floor(driver, tmp_path, 150) as board:
        before = board.open()
        assert before["live"] == "live" and len(before["agents"]) == len(in_grid(board.state()))
        board.pbx.close()
        page = board.until(lambda _: (p := board.page())["live"] == "stale" and p, timeout=15)
        dimmed = board.until(lambda _: unconfirmed_tiles(board.page()))
        page = board.page()
        assert re.fullmatch(r"Not live since \d\d:\d\d:\d\d · PBX link lost", page["banner"] or "")
        assert page["feed_line"] == "Not live · PBX 127.0.0.1"
        assert_last_known(before["agents"], dimmed)
        assert_dimmed(board)
        time.sleep(5)
        later = board.page()
        assert (later["agents"], later["groups"], later["paths"], later["totals"]) == (
            page["agents"], page["groups"], page["paths"], page["totals"],
        )  # fmt: skip
        seen = layout(board)
        assert seen["problems"] == [] and seen["min_font"] >= 20, seen
        save_picture(board, "board-stale.png")


#: Every element with text in the totals, the cards and the tiles, and how
#: opaque it is on the screen (its own opacity times its boxes').
OPACITY = """
const out = [];
for (const e of document.querySelectorAll('.totals *, #queues *, #agents *')) {
  if (![...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
  if (!e.checkVisibility()) continue;
  let opacity = 1, grey = false;
  for (let p = e; p; p = p.parentElement) {
    const style = getComputedStyle(p);
    opacity *= Number(style.opacity);
    grey = grey || style.filter.includes('grayscale(1)');
  }
  out.push([e.className || e.tagName, e.textContent, opacity, grey]);
}
return out;
"""


def assert_dimmed(board: Board) -> None:
    """Every figure, total and tile dimmed, in its own colours (not greyed out)."""
    seen = board.driver.execute_script(OPACITY)
    assert len(seen) > 100
    bright = [s for s in seen if s[2] > 0.55 or s[3]]
    assert bright == [], bright[:10]


def assert_last_known(live: list[dict[str, Any]], now: list[dict[str, Any]]) -> None:
    """Each tile of ``now`` (unconfirmed) still says what it said live, marked "?",
    with no time."""
    said = {t["id"]: t for t in live}
    assert {t["id"] for t in now} == set(said)
    for tile in now:
        was = said[tile["id"]]
        assert (tile["state"], tile["words"], tile["note"], tile["time"]) == (
            was["state"], was["words"], "?", "",
        ), (was, tile)  # fmt: skip


def unconfirmed_tiles(page: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Every tile of the page, once all of them are drawn as unconfirmed."""
    tiles = page["agents"]
    return tiles if tiles and all(t["confirmed"] == "false" for t in tiles) else None


def test_a_lost_server_freezes_the_board(staffed: Callable[[int], Scripted]) -> None:
    """The daemon stops answering (stopped here): the board notices (here an
    error of the stream makes it poll; polls time out), says so, dims
    everything, and keeps the times of live agents where they were."""
    board = staffed(40)
    # Polls every 0.5 s, not 2, and they time out after 1.5 s, not 5 (the board
    # is lost after two).
    with board_timers(board.driver, POLL_MS=500, POLL_TIMEOUT_MS=1500):
        board.open()
    board.daemon.process.send_signal(signal.SIGSTOP)
    try:
        board.driver.execute_script(
            "const sse = window.__sse;"
            "sse.sources[sse.sources.length - 1].es.dispatchEvent(new Event('error'));"
        )
        page = board.until(lambda _: (p := board.page())["live"] == "lost" and p, timeout=20)
        assert re.fullmatch(
            r"Not live since \d\d:\d\d:\d\d · The server does not answer", page["banner"] or ""
        ), page["banner"]
        assert page["feed_line"] == "Not live"
        assert_dimmed(board)
        timed = [t for t in page["agents"] if t["time"]]
        assert len(timed) >= 30 and all(t["confirmed"] == "true" for t in timed)
        time.sleep(5)
        later = board.page()
        assert later["agents"] == page["agents"] and later["totals"] == page["totals"]
    finally:
        board.daemon.process.send_signal(signal.SIGCONT)
    page = board.until(lambda _: (p := board.page())["live"] == "live" and p, timeout=15)
    assert page["banner"] is None


def test_stale_feed_and_lost_server_raise_the_banner(
    driver: webdriver.Chrome, tmp_path: Path
) -> None:
    """A simulator and a daemon of the test's own: it stops the simulator for a
    while, then for good, then the daemon."""
    # Three times as fast as the shared floor: its agents log in sooner.
    with simulated_floor(driver, tmp_path, speed=60) as floor:
        # The board polls every 0.5 s, not 2, once the daemon is gone.
        with board_timers(driver, POLL_MS=500):
            page = floor.open()
        assert page["banner"] is None
        floor.sim.process.send_signal(signal.SIGSTOP)
        try:
            # With --stale-after 3 the feed is stale after 3 s; at 4 s the watchdog
            # drops the link and redials (the stopped simulator's backlog still accepts).
            live = floor.page()
            text = floor.until(
                lambda _: re.search(
                    r"Not live since \d\d:\d\d:\d\d · no data for \d+ s",
                    floor.page()["banner"] or "",
                ),
                timeout=15,
            )
            assert text
            # The watchdog's drop leaves nothing confirmed: every tile keeps its
            # last words, marked, with no running time; every figure dims, and
            # for 5 s none moves.
            tiles = floor.until(lambda _: unconfirmed_tiles(floor.page()), timeout=15)
            assert all(t["note"] == "?" and t["time"] == "" and t["what"] for t in tiles), tiles
            assert {t["id"] for t in tiles} <= {t["id"] for t in live["agents"]}
            page = floor.page()
            assert page["live"] == "stale" and page["feed_line"] == "Not live · PBX 127.0.0.1"
            assert_dimmed(floor)
            time.sleep(5)
            later = floor.page()
            assert (later["agents"], later["groups"], later["paths"], later["totals"]) == (
                page["agents"], page["groups"], page["paths"], page["totals"],
            )  # fmt: skip
        finally:
            floor.sim.process.send_signal(signal.SIGCONT)
        floor.until(lambda _: floor.page()["banner"] is None, timeout=25)

        floor.sim.stop()
        banner = floor.until(
            lambda _: re.search(
                r"Not live since (\d\d:\d\d:\d\d) · PBX link lost", floor.page()["banner"] or ""
            ),
            timeout=15,
        )
        state = floor.state()
        assert not state["feed"]["connected"] and state["stale"]
        # Since the last record, which came before the link went down.
        assert banner.group(1) <= local_hms(state["feed"]["disconnected_since"])

        assert floor.daemon.stop() in (0, -signal.SIGTERM)
        floor.until(
            lambda _: re.search(
                r"· (server not answering|The server)", floor.page()["banner"] or ""
            ),
            timeout=15,
        )
        log = output(floor.daemon)
        assert "Traceback" not in log and "Unhandled" not in log, log


def output(child: Twistd) -> str:
    """Everything an exited child wrote."""
    lines = list(child.seen)
    while True:
        try:
            lines.append(child.lines.get(timeout=0.5))
        except queue.Empty:
            return "".join(lines)
