"""The wall board in a real browser: headless Chromium against real twistd processes.

simulator → twistd mitelacd (HTTP on a free loopback port) → the board page in
Chromium, driven by selenium through Debian's chromium-driver. Skipped where
selenium, chromium or chromedriver are missing (CI installs neither).

The tests share one floor and one browser and run in file order: the last one
stops the simulator. ``MITELACD_UPDATE_SCREENSHOT=1`` also writes docs/board.png.

Every page the browser opens gets RECORD_STREAM first: it wraps ``EventSource``
and ``fetch`` to count what the board is fed (events of each stream by type,
polls of /api/v1/state) and watches which agent tiles change on each event, so
the tests can tell a board fed by deltas from one fed whole documents.

Calls by button, holds and agents carried over from an earlier run are played
on a second daemon, whose PBX is a loopback socket the tests write records to.
"""

from __future__ import annotations

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
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.support.ui import WebDriverWait
from test_end_to_end import ROOT, Twistd

from mitelacd.legacy import validate_legacy
from mitelacd.testing import TAILS, call_body, fake_pbx, wire

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROME_ARGS = (
    "--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage"
    " --disable-background-networking --disable-component-update --disable-sync"
    " --no-first-run --no-proxy-server --window-size=1920,1080"
).split()
WAIT = 30.0
#: Loopback only, never through a proxy from the environment.
LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


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
      const tile = node && !node.closest(".a-time") && node.closest("[data-agent]");
      if (!tile) continue; // counters tick on their own; placing tiles is not changing them
      log.checked += 1;
      if (named !== "all" && !named.has(tile.dataset.agent)) log.unexpected.push(tile.dataset.agent);
    }
    named = new Set();
  }).observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
})();
"""

#: Everything the tests look at on the page, read in one script (one JS turn,
#: so one rendered version).
READ_PAGE = """
const all = (sel) => [...document.querySelectorAll(sel)];
const fields = (e) => Object.fromEntries(
  [...e.querySelectorAll('[data-field]')].map((f) => [f.dataset.field, f.textContent]));
const banner = document.getElementById('stale-banner');
return {
  version: document.body.dataset.version ?? null,
  agents: all('[data-agent]').map((e) => ({
    id: e.dataset.agent, status: e.dataset.status, activity: e.dataset.activity,
    tone: e.dataset.tone, calls: e.dataset.calls, on_hold: e.dataset.onHold,
    confirmed: e.dataset.confirmed, carried: e.dataset.carried,
    count: e.querySelector('.a-calls')?.textContent ?? '',
    what: e.querySelector('.a-what')?.textContent ?? '',
    note: e.querySelector('.a-note')?.textContent ?? '',
    time: e.querySelector('.a-time')?.textContent ?? ''})),
  queue_order: all('#queues > .queue').map(
    (e) => (e.dataset.group ? `group:${e.dataset.group}` : `path:${e.dataset.path}`)),
  groups: Object.fromEntries(all('[data-group]').map((e) => [e.dataset.group, fields(e)])),
  paths: Object.fromEntries(all('[data-path]').map((e) => [e.dataset.path, fields(e)])),
  totals: Object.fromEntries(all('[data-total]').map((e) => [e.dataset.total, e.textContent])),
  banner: banner.hidden ? null : banner.textContent.trim(),
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
    driver: Any
    folder: Path

    def state(self) -> dict[str, Any]:
        with LOCAL.open(self.base + "api/v1/state", timeout=5) as response:
            return json.loads(response.read())

    def page(self) -> dict[str, Any]:
        return self.driver.execute_script(READ_PAGE)

    def until(self, what: Callable[[Any], Any], timeout: float = WAIT) -> Any:
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(what)
        except TimeoutException:
            page = self.page()
            seen = {k: page[k] for k in ("version", "banner", "totals", "groups", "paths")}
            raise AssertionError(f"not within {timeout} s; the page now shows {seen}") from None


@dataclass
class Floor(Board):
    """The simulator's floor: a busy day, too fast to follow event by event."""

    sim: Twistd


@dataclass
class Scripted(Board):
    """A floor of the tests' own records, played as the PBX on a loopback socket."""

    pbx: socket.socket
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


def make_driver(folder: Path) -> Any:
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
    # The viewport of a 1080p TV exactly (--window-size counts the window's frame).
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1920, "height": 1080, "deviceScaleFactor": 1, "mobile": False},
    )
    return driver


def resume(child: Twistd) -> None:
    """A stopped process cannot act on SIGTERM: let it run before stopping it."""
    if child.process.poll() is None:
        child.process.send_signal(signal.SIGCONT)


@pytest.fixture(scope="module")
def floor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Floor]:
    folder = tmp_path_factory.mktemp("board")
    children: list[Twistd] = []
    driver = None
    try:
        sim = Twistd(
            "mitelacd-sim", "--port", "0", "--seed", "3", "--agents", "48", "--groups", "4",
            "--paths", "3", "--speed", "20", cwd=folder,
        )  # fmt: skip
        children.append(sim)
        port = sim.wait_for(r"simulated ICP feed on \S+ port (\d+)", timeout=WAIT).group(1)
        daemon = Twistd(
            "mitelacd", "--host", "127.0.0.1", "--port", port,
            "--file", str(folder / "mitel_data.json"),
            "--http", "tcp:0:interface=127.0.0.1", "--watchdog", "3", cwd=folder,
        )  # fmt: skip
        children.append(daemon)
        http = daemon.wait_for(
            r"wall board and API at http://127\.0\.0\.1:(\d+)/", timeout=WAIT
        ).group(1)
        driver = make_driver(folder)
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_STREAM})
        board = Floor(daemon, f"http://127.0.0.1:{http}/", driver, folder, sim)
        wait_for_state(board, lambda s: s["totals"]["logged_in"] >= 30, "30 agents logged in")
        driver.get(board.base)
        board.until(lambda d: board.page()["version"] is not None)
        yield board
    finally:
        if driver is not None:
            driver.quit()
        for child in reversed(children):
            resume(child)
            child.stop()


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


def expected_queues(queues: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {
        q["id"]: {
            "waiting": number(q["waiting"]),
            "agents": number(q["agents_logged_in"]),
            "longest": mmss(q["longest_wait_seconds"]),
        }
        for q in queues
    }


def seconds_shown(text: str) -> int:
    parts = [int(p) for p in text.split(":")]
    return parts[-1] + 60 * parts[-2] + (3600 * parts[0] if len(parts) == 3 else 0)


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
TILE_FLAGS = ("status", "activity", "calls", "on_hold", "confirmed", "carried")


def tile_flags(agent: dict[str, Any]) -> dict[str, str]:
    """What those attributes should say of an agent of /api/v1/state."""
    return {
        "status": agent["status"],
        "activity": agent["activity"],
        "calls": str(len(agent["calls"])),
        "on_hold": json.dumps(agent["on_hold"]),
        "confirmed": json.dumps(agent["confirmed"]),
        "carried": json.dumps(agent["carried"]),
    }


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
    listed = state["agents"]
    assert [a["id"] for a in page["agents"]] == [a["id"] for a in listed]
    assert len(listed) >= agents
    shown = {t["id"]: {k: t[k] for k in TILE_FLAGS} for t in page["agents"]}
    assert shown == {a["id"]: tile_flags(a) for a in listed}
    assert page["groups"] == expected_queues(state["groups"])
    assert len(page["groups"]) == groups
    assert page["paths"] == expected_queues(state["paths"])
    assert len(page["paths"]) == paths
    totals = state["totals"]
    expected_totals = {k: str(v) for k, v in totals["agents"].items()}
    expected_totals.update(
        waiting=str(totals["waiting"]),
        logged_in=str(totals["logged_in"]),
        longest=mmss(totals["longest_wait_seconds"]),
    )
    assert page["totals"] == expected_totals
    assert page["banner"] is None
    counted = 0
    for tile, agent in zip(page["agents"], listed):
        # Holds and several calls are in words; so is a value the PBX has not confirmed.
        assert ("on hold" in tile["what"].lower()) == agent["on_hold"], (tile, agent)
        calls = len(agent["calls"])
        assert tile["count"] == (f"{calls} calls" if calls > 1 else ""), (tile, agent)
        assert tile["note"] == ("" if agent["confirmed"] else "Unconfirmed"), (tile, agent)
        # Time in state counts from `since` on the server's clock (same machine
        # here), and only for what the PBX confirmed.
        if agent["since"] is None or not agent["confirmed"]:
            assert tile["time"] == "", (tile, agent)
            continue
        assert re.fullmatch(r"(\d+:)?\d\d:\d\d", tile["time"]), tile
        elapsed = now - parse_iso(agent["since"])
        assert abs(seconds_shown(tile["time"]) - elapsed) <= 2.5, (tile, agent["since"], now)
        counted += 1
    assert counted >= timed


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


def test_page_matches_the_api(floor: Floor) -> None:
    """Dozens of deltas after the snapshot, the page is exactly the API's state."""
    page, state, now = page_and_state(
        floor, lambda p: deltas(p) >= 50 and p["stream"]["last"] == "delta"
    )
    assert_fed_by_deltas(page, 50)
    assert page["sources"] == 1
    assert_page_shows(page, state, now)


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
        "id": agent_id, "status": "busy", "activity": "personal_call", "logged_in": True,
        "dnd": True, "dnd_reason": None, "make_busy": True, "make_busy_reason": 97,
        "wrap_up": False, "on_hold": False, "ringing": None, "calls": [call],
        "fresh_login": False, "extension": "99999", "last_path": None, "since": now,
        "confirmed": True, "carried": False, "carried_since": None,
        "last_event": "dnd_on", "last_event_at": now,
    }  # fmt: skip


def shown_as(page: dict[str, Any], agent_id: str) -> str | None:
    return next((a["what"] for a in page["agents"] if a["id"] == agent_id), None)


def test_deltas_apply_in_order_and_a_gap_resyncs(floor: Floor) -> None:
    floor.until(lambda _: floor.page()["stream"]["last"] == "delta")
    sources = floor.page()["sources"]

    # A delta the page is already past changes nothing.
    first = floor.page()["agents"][0]["id"]
    fields = {"agents": {first: made_up_agent(first)}, "totals": MADE_UP_TOTALS}
    sent = floor.driver.execute_script(SEND_DELTA, -2, -1, fields)
    page = sent["page"]
    assert page["version"] == sent["version"]
    assert "Make busy 97" not in shown_as(page, first)
    assert page["totals"]["logged_in"] != "777"
    assert not sent["closed"] and page["sources"] == sources

    # One that follows on: agents and a group come and go, each in id order
    # (digits as numbers, anything else after them), the totals are replaced.
    gone = sent["ids"][1]
    fields = {
        "agents": {"zz9": made_up_agent("zz9"), "5": made_up_agent("5"), gone: None},
        "groups": {"9": {"id": "9", "waiting": 5, "agents_logged_in": 1, "longest_wait_seconds": 61}},
        "totals": MADE_UP_TOTALS,
    }  # fmt: skip
    sent = floor.driver.execute_script(SEND_DELTA, 0, 1, fields)
    page = sent["page"]
    assert page["version"] == str(int(sent["version"]) + 1)
    assert [a["id"] for a in page["agents"]] == ["5", *(i for i in sent["ids"] if i != gone), "zz9"]
    assert shown_as(page, "5") == "Personal call · Make busy 97 · DND"
    assert page["queue_order"][:2] == ["group:9", "group:610"]
    assert page["groups"]["9"] == {"waiting": "5", "agents": "1", "longest": "01:01"}
    assert page["totals"]["logged_in"] == "777" and page["totals"]["longest"] == "59:59"

    # One from ahead of the page's version: deltas were missed. None of it is
    # shown, and the board gives that stream up for a fresh one.
    fields = {
        "agents": {"bogus": made_up_agent("bogus")},
        "totals": dict(MADE_UP_TOTALS, logged_in=888),
    }
    sent = floor.driver.execute_script(SEND_DELTA, 10**6, 10**6 + 1, fields)
    page = sent["page"]
    assert sent["closed"]
    assert page["version"] == sent["version"]
    assert shown_as(page, "bogus") is None and page["totals"]["logged_in"] != "888"
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


def test_stale_events_raise_and_lower_the_banner(floor: Floor) -> None:
    """A ``stale`` event (the feed going stale or fresh with no change of the
    floor, so no version) is shown at once. Made up here: with the simulator
    running, real ones are rare."""
    assert floor.page()["banner"] is None
    seen = floor.driver.execute_script("""
        const es = window.__sse.sources[window.__sse.sources.length - 1].es;
        const banner = document.getElementById('stale-banner');
        const send = (stale) => es.dispatchEvent(new MessageEvent("stale", {
          data: JSON.stringify({generated_at: new Date().toISOString(), stale})}));
        const version = document.body.dataset.version;
        send(true);
        const raised = banner.hidden ? null : banner.textContent.trim();
        const degraded = document.body.classList.contains('degraded');
        const then = document.body.dataset.version;
        send(false);
        return {version, then, raised, degraded, lowered: banner.hidden};
    """)  # fmt: skip
    assert re.match(r"No data from the PBX since \d\d:\d\d:\d\d", seen["raised"] or ""), seen
    assert seen["degraded"] and seen["lowered"], seen
    assert seen["then"] == seen["version"], seen


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
        # Its answer is read at once; let deltas come after it.
        floor.until(lambda _: deltas(floor.page()) >= deltas(before) + 20)
    finally:
        floor.driver.execute_script("window.__fakeState = null")
    versions = floor.driver.execute_script("return window.__sse.versions.slice(arguments[0])", seen)
    assert len(versions) >= 20 and "1" not in versions
    assert [int(v) for v in versions] == sorted(int(v) for v in versions)
    page = floor.page()
    assert shown_as(page, "1") is None and page["totals"]["logged_in"] != "777"
    # The pushed events that came since stopped the polling.
    polls = page["polls"]
    assert polls >= 1
    time.sleep(2.5)
    assert floor.page()["polls"] == polls


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", data[:16]
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


#: Parts of agent tiles cut off: their text overflows them, or they stick out of
#: their tile. Words and extensions give way by design (an ellipsis), the rest never.
CUT_OFF = """
const cut = [];
for (const tile of document.querySelectorAll('[data-agent]')) {
  const t = tile.getBoundingClientRect();
  for (const part of tile.querySelectorAll('.a-id, .a-calls, .a-note, .a-time')) {
    if (!part.checkVisibility()) continue;
    const p = part.getBoundingClientRect();
    const out = p.left < t.left || p.right > t.right + 0.5 || p.bottom > t.bottom + 0.5;
    if (out || part.scrollWidth > part.clientWidth + 1) cut.push(`${tile.dataset.agent} ${part.className}`);
  }
}
return cut;
"""


def test_screenshot_of_a_full_board(floor: Floor) -> None:
    def full(_: Any) -> bool:
        page = floor.page()
        return len(page["agents"]) >= 40 and len(page["groups"]) == 4 and page["banner"] is None

    floor.until(full)
    # A more telling picture has calls queueing; wait a little for one, not more.
    try:
        floor.until(lambda _: full(_) and floor.page()["totals"]["waiting"] not in ("0", "–"), 15)
    except AssertionError:
        pass
    # Everything fits a 1080p screen: no scrolling on a wall.
    overflow = floor.driver.execute_script(
        "const e = document.documentElement;"
        "const last = [...document.querySelectorAll('[data-agent]')].pop().getBoundingClientRect();"
        "return [e.scrollHeight - e.clientHeight, e.scrollWidth - e.clientWidth, last.bottom];"
    )
    assert overflow[0] <= 0 and overflow[1] <= 0 and overflow[2] <= 1080, overflow
    assert floor.driver.execute_script(CUT_OFF) == []
    shot = floor.folder / "board.png"
    assert floor.driver.save_screenshot(str(shot))
    data = shot.read_bytes()
    assert png_size(data) == (1920, 1080)
    assert len(data) > 50_000  # a board full of tiles, not a blank page
    if os.environ.get("MITELACD_UPDATE_SCREENSHOT") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(shot, ROOT / "docs" / "board.png")


def test_groups_and_paths_can_be_chosen(floor: Floor) -> None:
    floor.driver.get(floor.base + "?groups=610,620&paths=860")
    page = floor.until(lambda _: (p := floor.page())["version"] is not None and p)
    assert set(page["groups"]) == {"610", "620"}
    assert set(page["paths"]) == {"860"}
    assert len(page["agents"]) >= 30  # agents carry no group: all of them stay
    # Deltas of the other groups and paths add no card.
    page = floor.until(lambda _: deltas(p := floor.page()) >= 50 and p)
    assert page["queue_order"] == ["group:610", "group:620", "path:860"]
    floor.driver.get(floor.base)
    floor.until(lambda _: floor.page()["version"] is not None)


def test_polls_without_eventsource(floor: Floor) -> None:
    """A browser without EventSource gets the state by polling every 2 s."""
    script = floor.driver.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument", {"source": "delete window.EventSource;"}
    )
    try:
        floor.driver.get(floor.base)
        first = floor.until(lambda _: (p := floor.page())["version"] is not None and p)
        assert floor.driver.execute_script("return typeof EventSource") == "undefined"
        later = floor.until(lambda _: (p := floor.page())["version"] != first["version"] and p)
        assert later["navigations"] == 1 and len(later["agents"]) >= 30
        assert later["sources"] == 0 and later["polls"] >= 2
    finally:
        floor.driver.execute_cdp_cmd(
            "Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]}
        )
    floor.driver.get(floor.base)
    floor.until(lambda _: floor.page()["version"] is not None)
    assert floor.driver.execute_script("return typeof EventSource") == "function"


# --- a floor of the tests' own records ------------------------------------------

#: What an earlier run left in the data file: carried over at start, unconfirmed.
CARRIED = {
    "agents": {"4001": "busy", "4002": "idle"},
    "groups": {"610": {"waiting": "000", "agents": "002", "longestwait": "0000"}},
    "paths": {"860": {"waiting": "000", "agents": "002", "longestwait": "0000"}},
}


@pytest.fixture(scope="module")
def scripted(floor: Floor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scripted]:
    """A second daemon, in the same browser: it carries CARRIED over from its
    file, and its PBX is a loopback socket the tests write records to."""
    folder = tmp_path_factory.mktemp("scripted")
    data = folder / "mitel_data.json"
    doc = dict(CARRIED, lastUpdate=time.time())
    assert sorted(validate_legacy(doc).agents) == ["4001", "4002"]
    data.write_text(json.dumps(doc))
    server, port = fake_pbx(timeout=WAIT)
    with server:
        # No keepalives come from this PBX: the watchdog must not find it silent.
        daemon = Twistd(
            "mitelacd", "--host", "127.0.0.1", "--port", str(port), "--file", str(data),
            "--http", "tcp:0:interface=127.0.0.1", "--watchdog", "600", cwd=folder,
        )  # fmt: skip
        try:
            daemon.wait_for(r"carried 2 agents, 1 groups and 1 paths over", timeout=WAIT)
            http = daemon.http_port(timeout=WAIT)
            conn, _ = server.accept()
            with conn:
                daemon.wait_for(r"connected to the PBX", timeout=WAIT)
                yield Scripted(daemon, f"http://127.0.0.1:{http}/", floor.driver, folder, conn)
        finally:
            daemon.stop()


@pytest.fixture
def scripted_page(scripted: Scripted, floor: Floor) -> Iterator[Scripted]:
    """The scripted floor's board in the browser; the simulator's again after."""
    scripted.driver.get(scripted.base)
    scripted.until(lambda _: scripted.page()["version"] is not None)
    yield scripted
    floor.driver.get(floor.base)
    floor.until(lambda _: floor.page()["version"] is not None)


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


#: How an agent's tile looks: outline, opacity, animation, and the text of its
#: note and its count of calls where they can be seen, whole, inside the tile.
TILE_LOOK = """
const tile = document.querySelector(`[data-agent="${CSS.escape(arguments[0])}"]`);
const style = getComputedStyle(tile);
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
  note: seen(tile.querySelector('.a-note')), count: seen(tile.querySelector('.a-calls')),
};
"""


def look_of(board: Board, agent_id: str) -> dict[str, Any]:
    return board.driver.execute_script(TILE_LOOK, agent_id)


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
    assert {k: tile[k] for k in ("status", "activity", "tone", "calls", "on_hold")} == {
        "status": "busy", "activity": "outgoing_call", "tone": "call", "calls": "2", "on_hold": "true",
    }  # fmt: skip
    assert (tile["what"], tile["count"]) == ("Outgoing call · 1 on hold", "2 calls")
    assert look_of(board, "1001")["count"] == "2 calls"

    # The consultation hangs up: the caller is still on hold, the agent still busy.
    board.steps("J02", agent="1001", dn="2001")
    page = shown_once(board, lambda s: len(agent_in(s, "1001")["calls"]) == 1, "one call")
    tile = tile_in(page, "1001")
    assert (tile["status"], tile["activity"], tile["calls"], tile["on_hold"]) == (
        "busy", "hold", "1", "true",
    )  # fmt: skip
    assert (tile["what"], tile["count"]) == ("On hold", "")

    board.steps("O01", agent="1001", dn="2001")
    page = shown_once(board, lambda s: not agent_in(s, "1001")["on_hold"], "the call retrieved")
    tile = tile_in(page, "1001")
    assert (tile["what"], tile["activity"], tile["on_hold"]) == ("ACD call", "acd_call", "false")

    board.steps("T01", agent="1002", dn="2002")
    board.steps("G01860 T02", agent="1003", dn="2003")
    board.steps("E05 C03", agent="1004", dn="2004")
    page = shown_once(board, lambda s: agent_in(s, "1004").get("dnd"), "DND")
    shown = {t["id"]: (t["what"], t["tone"]) for t in page["agents"]}
    assert shown["1002"] == ("Ringing", "ring")
    assert shown["1003"] == ("ACD call · ringing", "call")
    assert shown["1004"] == ("Make busy 5 · DND 3", "aux")
    assert board.driver.execute_script(CUT_OFF) == []

    page, state, now = page_and_state(board)
    assert_fed_by_deltas(page, 1)
    assert_page_shows(page, state, now, agents=6, timed=4, groups=1, paths=1)


def test_carried_agents_are_drawn_unconfirmed(scripted_page: Scripted) -> None:
    """Agents carried over from the file are never drawn as live until the PBX
    names them; then they are like any other."""
    board = scripted_page
    state = board.state()
    carried = [a for a in state["agents"] if a["carried"]]
    assert [a["id"] for a in carried] == ["4001", "4002"]
    assert not any(a["confirmed"] for a in carried)
    page = shown_once(board, lambda s: s["version"] >= state["version"], "the same state")
    for agent in carried:
        tile = tile_in(page, agent["id"])
        assert {k: tile[k] for k in TILE_FLAGS} == tile_flags(agent)
        assert (tile["note"], tile["time"]) == ("Unconfirmed", ""), tile
    live = look_of(board, "1001")  # confirmed by the test before
    assert live == {
        "outline": "none", "opacity": 1, "animation": "none", "note": None, "count": None,
    }  # fmt: skip
    look = look_of(board, "4001")
    assert look["outline"] == "dashed" and look["opacity"] < 0.8, look
    assert look["note"] == "Unconfirmed", look
    assert board.driver.execute_script(CUT_OFF) == []

    # Its first event on this connection makes it a live tile like any other.
    board.steps("H01", agent="4001", dn="2401")
    page = shown_once(board, lambda s: agent_in(s, "4001")["confirmed"], "4001 confirmed")
    tile = tile_in(page, "4001")
    assert (tile["confirmed"], tile["carried"], tile["activity"], tile["what"], tile["note"]) == (
        "true", "false", "personal_call", "Personal call", "",
    )  # fmt: skip
    assert re.fullmatch(r"\d\d:\d\d", tile["time"]), tile
    assert look_of(board, "4001") == live
    assert_counters_tick(board)  # 4001's time runs, 4002 still has none

    page, state, now = page_and_state(board)
    assert_fed_by_deltas(page, 1)
    assert_page_shows(page, state, now, agents=6, timed=5, groups=1, paths=1)


def test_stale_feed_and_lost_server_raise_the_banner(floor: Floor) -> None:
    """Runs last: it stops the simulator, then the daemon."""
    assert floor.page()["banner"] is None
    floor.sim.process.send_signal(signal.SIGSTOP)
    try:
        # With --watchdog 3 the feed is stale after 3 s; the watchdog then drops
        # the link and redials (the stopped simulator's backlog still accepts).
        text = floor.until(
            lambda _: re.search(
                r"No data from the PBX since \d\d:\d\d:\d\d", floor.page()["banner"] or ""
            ),
            timeout=15,
        )
        assert text
        # The watchdog's drop leaves nothing confirmed: every tile says so, and
        # none has a running time, not even a second later.
        for _ in range(2):
            tiles = floor.until(lambda _: unconfirmed_tiles(floor.page()), timeout=15)
            assert all(t["note"] == "Unconfirmed" and t["time"] == "" for t in tiles), tiles
            time.sleep(1.5)
    finally:
        floor.sim.process.send_signal(signal.SIGCONT)
    floor.until(lambda _: floor.page()["banner"] is None, timeout=25)

    floor.sim.stop()
    banner = floor.until(
        lambda _: re.search(
            r"PBX feed disconnected since (\d\d:\d\d:\d\d)", floor.page()["banner"] or ""
        ),
        timeout=15,
    )
    state = floor.state()
    assert not state["feed"]["connected"] and state["stale"]
    assert banner.group(1) == local_hms(state["feed"]["disconnected_since"])

    assert floor.daemon.stop() in (0, -signal.SIGTERM)
    floor.until(
        lambda _: "lost contact with the server" in (floor.page()["banner"] or ""), timeout=15
    )
    log = output(floor.daemon)
    assert "Traceback" not in log and "Unhandled" not in log, log


def unconfirmed_tiles(page: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Every tile of the page, once all of them are drawn as unconfirmed."""
    tiles = page["agents"]
    return tiles if tiles and all(t["confirmed"] == "false" for t in tiles) else None


def output(child: Twistd) -> str:
    """Everything an exited child wrote."""
    lines = list(child.seen)
    while True:
        try:
            lines.append(child.lines.get(timeout=0.5))
        except queue.Empty:
            return "".join(lines)
