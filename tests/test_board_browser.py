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
"""

from __future__ import annotations

import datetime
import json
import os
import queue
import re
import shutil
import signal
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
    what: e.querySelector('.a-what')?.textContent ?? '',
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
class Floor:
    sim: Twistd
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
        board = Floor(sim, daemon, f"http://127.0.0.1:{http}/", driver, folder)
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
    board: Floor, done: Callable[[dict[str, Any]], bool], what: str, timeout: float = WAIT
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

    def __init__(self, board: Floor) -> None:
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
    floor: Floor, ready: Callable[[dict[str, Any]], bool] = lambda page: True
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


def assert_page_shows(page: dict[str, Any], state: dict[str, Any], now: float) -> None:
    """The page shows exactly what /api/v1/state said at the page's version."""
    agents = state["agents"]
    assert [a["id"] for a in page["agents"]] == [a["id"] for a in agents]
    assert len(agents) >= 30
    shown = {a["id"]: (a["status"], a["activity"]) for a in page["agents"]}
    assert shown == {a["id"]: (a["status"], a["activity"]) for a in agents}
    assert page["groups"] == expected_queues(state["groups"])
    assert len(page["groups"]) == 4
    assert page["paths"] == expected_queues(state["paths"])
    assert len(page["paths"]) == 3
    totals = state["totals"]
    expected_totals = {k: str(v) for k, v in totals["agents"].items()}
    expected_totals.update(
        waiting=str(totals["waiting"]),
        logged_in=str(totals["logged_in"]),
        longest=mmss(totals["longest_wait_seconds"]),
    )
    assert page["totals"] == expected_totals
    assert page["banner"] is None
    # Time in state counts from `since` on the server's clock (same machine here).
    timed = 0
    for tile, agent in zip(page["agents"], agents):
        if agent["since"] is None:
            assert tile["time"] == ""
            continue
        assert re.fullmatch(r"(\d+:)?\d\d:\d\d", tile["time"]), tile
        elapsed = now - parse_iso(agent["since"])
        assert abs(seconds_shown(tile["time"]) - elapsed) <= 2.5, (tile, agent["since"], now)
        timed += 1
    assert timed >= 30


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
    return {
        "id": agent_id, "status": "busy", "activity": "personal_call", "logged_in": True,
        "dnd": True, "make_busy": True, "make_busy_reason": 97, "wrap_up": False,
        "on_hold": False, "fresh_login": False, "extension": "99999", "last_path": None,
        "since": now, "confirmed": True, "last_event": "dnd_on", "last_event_at": now,
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
    assert "reason 97" not in shown_as(page, first)
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
    assert shown_as(page, "5") == "Personal call · Make busy (reason 97) · DND"
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


def assert_counters_tick(floor: Floor) -> None:
    """Between two pushes (few come while the simulator is stopped), times count up."""
    for _ in range(5):
        first = floor.page()
        time.sleep(2.5)  # a render may have set the first figures just before a tick
        second = floor.page()
        if first["version"] == second["version"]:
            pairs = [(a["time"], b["time"]) for a, b in zip(first["agents"], second["agents"])]
            timed = [(a, b) for a, b in pairs if a]
            assert timed and all(seconds_shown(b) > seconds_shown(a) for a, b in timed), pairs
            return
    raise AssertionError("the page never held one version for 2.5 s")


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
        assert_counters_tick(floor)
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


def output(child: Twistd) -> str:
    """Everything an exited child wrote."""
    lines = list(child.seen)
    while True:
        try:
            lines.append(child.lines.get(timeout=0.5))
        except queue.Empty:
            return "".join(lines)
