"""The wall board in a real browser: headless Chromium against real twistd processes.

simulator → twistd mitelacd (HTTP on a free loopback port) → the board page in
Chromium, driven by selenium through Debian's chromium-driver. Skipped where
selenium, chromium or chromedriver are missing (CI installs neither).

The tests share one floor and one browser and run in file order: the last one
stops the simulator. ``MITELACD_UPDATE_SCREENSHOT=1`` also writes docs/board.png.
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
    time: e.querySelector('.a-time')?.textContent ?? ''})),
  groups: Object.fromEntries(all('[data-group]').map((e) => [e.dataset.group, fields(e)])),
  paths: Object.fromEntries(all('[data-path]').map((e) => [e.dataset.path, fields(e)])),
  totals: Object.fromEntries(all('[data-total]').map((e) => [e.dataset.total, e.textContent])),
  banner: banner.hidden ? null : banner.textContent.trim(),
  marker: window.__loadMarker ?? null,
  navigations: performance.getEntriesByType('navigation').length,
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


def test_page_matches_the_api(floor: Floor) -> None:
    with Recorder(floor) as recorder:
        end = time.monotonic() + WAIT
        while True:
            page = floor.page()
            state = recorder.docs.get(int(page["version"]))
            if state is not None:
                break
            assert time.monotonic() < end, f"page version {page['version']} never seen by the API"
            time.sleep(0.1)
    now = time.time()
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
