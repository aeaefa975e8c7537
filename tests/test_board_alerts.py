"""The wall board's alerts and themes, in a real browser.

A queue entering alarm flashes its card and, with ``?sound=1``, plays the
alarm tone (alarm.wav, inside the page as a ``data:`` address) at once and
every TONE_REPEAT_MS, until a click or a key on the board acknowledges it or
the queue leaves alarm; a queue entering alarm after that rings again.
``?sound=0`` is the default. The page tells its alerts in
``window.mitelacdBoard.alerts``; the tests shorten the tone's period
through the board's ``window.MITELACD_TIMERS``. Chromium plays without a
click first (``--autoplay-policy=no-user-gesture-required``, as a kiosk
would be started).

``?theme=dark`` (the default), ``light`` and ``contrast``: different colours,
each with text readable on its tiles, cards and bars (WCAG AA, 4.5:1),
computed in the page from its own styles.

The queues are driven on a daemon of each test's own, whose PBX is a loopback
socket the test writes group and path reports to (test_board_browser's
``scripted_page``): group 610 alarms at 90 s longest wait, path 860 at 6
waiting (the names file there).
"""

from __future__ import annotations

import base64
import datetime
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from test_board_browser import (
    CARRIED,
    LOCAL,
    RECORD_STREAM,
    ROOT,
    SCRIPTED_NAMES,
    Scripted,
    board_timers,
    chromium_is_installed,  # noqa: F401 (an autouse fixture: fail, never skip)
    json_object,
    layout,
    make_driver,
    palette,
    scripted_floor,
    shown_once,
)
from twisted.web.test.requesthelper import DummyRequest

from mitelacd.web.resources import Board

#: Chromium, and the twistd children it shows.
pytestmark = [pytest.mark.browser, pytest.mark.processes]

#: The alarm reports of the scripted floor: 610 past its 90 s longest wait,
#: 860 past its 6 waiting; and both calm again.
GROUP_ALARM = ("K", "610", "0020020135")  # 2 waiting, 2 agents, longest 01:35
PATH_ALARM = ("Q", "860", "0070020010")  # 7 waiting, 2 agents, longest 00:10
GROUP_CALM = ("K", "610", "0000020000")
PATH_CALM = ("Q", "860", "0000020000")

#: How a card looks: its animation and colour, and whether it is acknowledged.
CARD = """
const card = document.querySelector(arguments[0]);
const style = getComputedStyle(card);
return {
  animation: style.animationName, duration: parseFloat(style.animationDuration),
  state: style.animationPlayState, background: style.backgroundColor,
  level: card.dataset.level ?? null, acknowledged: 'acknowledged' in card.dataset,
};
"""

#: The tone element: where its sound comes from, how long it is, whether it plays.
TONE = """
const tone = document.getElementById('alarm-tone');
return {src: tone.currentSrc.slice(0, 22), duration: tone.duration, paused: tone.paused,
        error: tone.error && tone.error.code};
"""


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """The browser of the module's tests, test_board_browser's RECORD_STREAM on every page."""
    chrome = make_driver(tmp_path_factory.mktemp("alerts-browser"))
    try:
        chrome.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_STREAM})
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture
def scripted_page(driver: webdriver.Chrome, tmp_path: Path) -> Iterator[Scripted]:
    """A daemon of the test's own (test_board_browser's scripted floor, its PBX
    a loopback socket the test writes reports to), its board open."""
    with scripted_floor(driver, tmp_path, SCRIPTED_NAMES, CARRIED) as board:
        board.open()
        yield board


def alerts(board: Scripted) -> dict[str, Any]:
    return json_object(board.driver.execute_script("return {...window.mitelacdBoard.alerts};"))


def card(board: Scripted, selector: str) -> dict[str, Any]:
    return json_object(board.driver.execute_script(CARD, selector))


def flashing(look: dict[str, Any]) -> bool:
    return bool(look["animation"] != "none" and look["state"] == "running")


def report(board: Scripted, *reports: tuple[str, str, str]) -> None:
    for code, number, figures in reports:
        board.stats(code, number, figures)


def level_of(state: dict[str, Any], kind: str, queue_id: str) -> str:
    return str(next(q["level"] for q in state[kind] if q["id"] == queue_id))


def steady(board: Scripted, seconds: float) -> int:
    """The number of plays, once it has not changed for ``seconds``."""
    before = alerts(board)["plays"]
    time.sleep(seconds)
    after = alerts(board)["plays"]
    assert after == before, (before, after)
    return int(after)


def test_the_page_carries_its_tone() -> None:
    """alarm.wav is in the page as a data: address, which its CSP lets it play."""
    wav = (ROOT / "mitelacd" / "web" / "board" / "alarm.wav").read_bytes()
    assert wav[:4] == b"RIFF" and wav[8:16] == b"WAVEfmt " and 4000 < len(wav) < 20000
    request = DummyRequest([])
    page = Board().render_GET(cast(Any, request)).decode("utf-8")
    assert f'src="data:audio/wav;base64,{base64.b64encode(wav).decode()}"' in page
    assert "/*BOARD_TONE*/" not in page
    (policy,) = request.responseHeaders.getRawHeaders(b"content-security-policy") or [b""]
    assert b"; media-src data:;" in policy and b"default-src 'none';" in policy, policy


def test_a_queue_in_alarm_flashes_and_rings_until_acknowledged(scripted_page: Scripted) -> None:
    """With ?sound=1 the tone repeats (every second here) and the card flashes;
    a click stops both, the card staying in the alarm colour; another queue
    entering alarm rings again, and a key acknowledges that one."""
    board = scripted_page
    with board_timers(board.driver, TONE_REPEAT_MS=1000):
        board.open("?sound=1")
    assert alerts(board) == {
        "sound": True, "alarmed": [], "acknowledged": False, "plays": 0, "lastPlayError": None,
    }  # fmt: skip
    tone = json_object(board.driver.execute_script(TONE))
    assert tone["src"] == "data:audio/wav;base64," and tone["error"] is None, tone
    assert abs(tone["duration"] - 0.4) < 0.01, tone
    assert not flashing(card(board, '[data-group="610"]'))
    colours = palette(board, "alarm")

    report(board, GROUP_ALARM)
    shown_once(board, lambda s: level_of(s, "groups", "610") == "alarm", "610 at alarm")
    assert alerts(board)["alarmed"] == ["group:610"]
    look = card(board, '[data-group="610"]')
    assert flashing(look) and look["duration"] == 1 and not look["acknowledged"], look
    # At once, then again a second later, and again.
    started = time.monotonic()
    board.until(lambda _: alerts(board)["plays"] >= 3, timeout=10)
    assert time.monotonic() - started >= 1.5
    assert alerts(board)["lastPlayError"] is None

    ActionChains(board.driver).move_to_element(
        board.driver.find_element(By.CSS_SELECTOR, '[data-group="610"]')
    ).click().perform()
    state = alerts(board)
    assert state["acknowledged"] is True and state["alarmed"] == ["group:610"], state
    plays = steady(board, 2.5)
    look = card(board, '[data-group="610"]')
    assert look["animation"] == "none" and look["acknowledged"], look
    assert look["background"] == colours["alarm"], look
    assert json_object(board.driver.execute_script(TONE))["paused"] is True

    # Another queue entering alarm is news again: its card flashes, the tone
    # plays; 610, acknowledged, stays steady.
    report(board, PATH_ALARM)
    shown_once(board, lambda s: level_of(s, "paths", "860") == "alarm", "860 at alarm")
    state = alerts(board)
    assert state["alarmed"] == ["group:610", "path:860"] and state["acknowledged"] is False
    assert flashing(card(board, '[data-path="860"]'))
    assert not flashing(card(board, '[data-group="610"]'))
    board.until(lambda _: alerts(board)["plays"] >= plays + 2, timeout=10)

    # A key acknowledges as a click does.
    ActionChains(board.driver).send_keys(Keys.SPACE).perform()
    assert alerts(board)["acknowledged"] is True
    plays = steady(board, 2.5)
    assert not flashing(card(board, '[data-path="860"]'))

    # Both calm: nothing left to acknowledge; 610 in alarm again rings again.
    report(board, GROUP_CALM, PATH_CALM)
    shown_once(board, lambda s: level_of(s, "paths", "860") == "ok", "860 calm")
    assert alerts(board)["alarmed"] == [] and alerts(board)["acknowledged"] is False
    report(board, GROUP_ALARM)
    shown_once(board, lambda s: level_of(s, "groups", "610") == "alarm", "610 at alarm again")
    assert flashing(card(board, '[data-group="610"]'))
    board.until(lambda _: alerts(board)["plays"] >= plays + 1, timeout=10)


def test_the_tone_stops_when_the_queue_leaves_alarm(scripted_page: Scripted) -> None:
    """Nobody acknowledges: the tone repeats while the queue is in alarm, and
    stops, with the flashing, when it is calm again."""
    board = scripted_page
    with board_timers(board.driver, TONE_REPEAT_MS=1000):
        board.open("?sound=1")
    report(board, GROUP_ALARM)
    shown_once(board, lambda s: level_of(s, "groups", "610") == "alarm", "610 at alarm")
    board.until(lambda _: alerts(board)["plays"] >= 2, timeout=10)
    report(board, GROUP_CALM)
    shown_once(board, lambda s: level_of(s, "groups", "610") == "ok", "610 calm")
    state = alerts(board)
    assert state["alarmed"] == [] and state["acknowledged"] is False, state
    steady(board, 2.5)
    look = card(board, '[data-group="610"]')
    assert look["animation"] == "none" and look["level"] is None, look


def test_silent_by_default_and_gentle_for_reduced_motion(scripted_page: Scripted) -> None:
    """Without ?sound=1 (and with ?sound=0) the card flashes and no tone plays.
    A screen that asks for reduced motion gets a slow pulse instead."""
    board = scripted_page
    report(board, GROUP_ALARM)
    shown_once(board, lambda s: level_of(s, "groups", "610") == "alarm", "610 at alarm")
    for query in ("", "?sound=0"):
        with board_timers(board.driver, TONE_REPEAT_MS=500):
            board.open(query)
        board.until(lambda _: alerts(board)["alarmed"] == ["group:610"])
        assert flashing(card(board, '[data-group="610"]'))
        time.sleep(2)
        state = alerts(board)
        assert state["sound"] is False and state["plays"] == 0, state
        assert json_object(board.driver.execute_script(TONE))["paused"] is True

    media = {"media": "", "features": [{"name": "prefers-reduced-motion", "value": "reduce"}]}
    board.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", media)
    try:
        look = card(board, '[data-group="610"]')
        assert look["animation"] == "alarm-pulse" and look["duration"] >= 3, look
    finally:
        board.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "", "features": []})
    look = card(board, '[data-group="610"]')
    assert look["animation"] == "alarm-flash" and look["duration"] == 1, look


#: The theme's colours, and the contrast of text on what it is written on:
#: each state's tile (both stripes of a hatched one), the page, a card, an
#: alarm card and the message line, by WCAG 2's formula.
THEME = """
const rgb = (text) => (text.match(/rgba?\\([^)]*\\)/g) || []).map(
  (c) => c.match(/[\\d.]+/g).slice(0, 3).map(Number));
const luminance = ([r, g, b]) => {
  const lin = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
};
const ratio = (a, b) => {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
};
// Text on its background: the worst of the colours behind it.
const contrast = (node) => {
  const style = getComputedStyle(node);
  const fg = rgb(style.color)[0];
  // a hatched tile: the colours of its stripes; else its colour
  const behind = style.backgroundImage !== 'none' ? rgb(style.backgroundImage) : rgb(style.backgroundColor);
  return behind.length ? Math.min(...behind.map((bg) => ratio(fg, bg))) : null;
};
const probe = (html) => {
  const box = document.body.appendChild(document.createElement('div'));
  box.hidden = true;
  box.innerHTML = html;
  return box;
};
const states = ['available', 'ringing', 'on_call', 'on_hold', 'wrap_up', 'not_ready', 'logged_out'];
const box = probe(states.map((s) => `<div class="agent" data-state="${s}"></div>`).join('')
  + '<div class="queue"><b></b></div><div class="queue" data-level="alarm"><b></b></div>');
const tiles = Object.fromEntries([...box.querySelectorAll('.agent')].map((t) => [t.dataset.state, contrast(t)]));
const [plain, alarm] = [...box.querySelectorAll('.queue')];
const shown = {
  ...tiles, page: contrast(document.body), card: contrast(plain),
  alarm_card: ratio(rgb(getComputedStyle(alarm.querySelector('b')).color)[0],
                    rgb(getComputedStyle(alarm).backgroundColor)[0]),
  message: contrast(document.getElementById('message')),
};
const tile = getComputedStyle(box.querySelector('.agent'));
const result = {
  theme: document.body.dataset.theme,
  scheme: document.querySelector('meta[name="color-scheme"]').content,
  background: getComputedStyle(document.body).backgroundColor,
  fg: getComputedStyle(document.body).color,
  outline: tile.outlineStyle === 'none' ? 0 : parseFloat(tile.outlineWidth),
  contrast: shown,
};
box.remove();
return result;
"""


def test_themes(scripted_page: Scripted) -> None:
    """Three themes, three backgrounds, and text readable on everything of each."""
    board = scripted_page
    seen = {}
    for query, theme in (("", "dark"), ("?theme=light", "light"), ("?theme=contrast", "contrast"),
                         ("?theme=sepia", "dark")):  # fmt: skip
        board.open(query)
        look = json_object(board.driver.execute_script(THEME))
        assert look["theme"] == theme, look
        assert look["scheme"] == ("light" if theme == "light" else "dark"), look
        low = {k: v for k, v in look["contrast"].items() if v is None or v < 4.5}
        assert low == {}, (theme, look["contrast"])
        seen[query] = look
    assert seen[""]["background"] == seen["?theme=sepia"]["background"]
    backgrounds = {seen[q]["background"] for q in ("", "?theme=light", "?theme=contrast")}
    assert len(backgrounds) == 3, seen
    assert seen["?theme=contrast"]["background"] == "rgb(0, 0, 0)"
    assert seen["?theme=contrast"]["fg"] == "rgb(255, 255, 255)"
    assert seen["?theme=contrast"]["outline"] >= 3 and seen[""]["outline"] == 0


# --- the message line ------------------------------------------------------------

#: The message line as the page shows it.
MESSAGE = """
const bar = document.getElementById('message');
const style = getComputedStyle(bar);
const scale = Math.min(innerWidth / 1920, innerHeight / 1080);
return {
  text: bar.checkVisibility() ? bar.textContent : null, title: bar.title,
  board: window.mitelacdBoard.message,
  size: parseFloat(style.fontSize) / scale, lines: bar.clientHeight / parseFloat(style.lineHeight),
  cut: bar.scrollWidth > bar.clientWidth, below_header: bar.getBoundingClientRect().top
    >= document.querySelector('header').getBoundingClientRect().bottom - 0.5,
};
"""

#: A message pushed to the page as if the server had sent it, on the stream it reads.
FAKE_MESSAGE = """
const es = window.__sse.sources[window.__sse.sources.length - 1].es;
es.dispatchEvent(new MessageEvent('board_message', {data: JSON.stringify({message: arguments[0]})}));
"""


def message(board: Scripted) -> dict[str, Any]:
    return json_object(board.driver.execute_script(MESSAGE))


def iso_in(seconds: float) -> str:
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def put_message(board: Scripted, text: str, until: str | None = None) -> dict[str, Any]:
    body = json.dumps({"text": text, "until": until}).encode("utf-8")
    request = urllib.request.Request(
        board.base + "api/v1/message",
        data=body,
        method="PUT",
        headers={"content-type": "application/json"},
    )
    with LOCAL.open(request, timeout=5) as response:
        return json_object(json.loads(response.read()))


def delete_message(board: Scripted) -> None:
    request = urllib.request.Request(board.base + "api/v1/message", method="DELETE")
    with LOCAL.open(request, timeout=5) as response:
        assert response.status == 204


def test_a_message_shows_at_once_and_goes_at_its_until(scripted_page: Scripted) -> None:
    """A message set through the API is on an open board within a second, in
    large type under the header, and gone when its time is up; a long one
    is cut with an ellipsis, whole in its tooltip; DELETE takes it down."""
    board = scripted_page
    assert message(board)["text"] is None and message(board)["board"] is None
    text = "Fire drill at 15:00: leave by the east stairs"
    put_message(board, text, iso_in(4))
    set_at = time.monotonic()
    shown = board.until(lambda _: (m := message(board))["text"] == text and m, timeout=1.0)
    assert shown["board"] == text and shown["title"] == text, shown
    assert shown["size"] >= 28 and round(shown["lines"]) == 1 and not shown["cut"], shown
    assert shown["below_header"], shown
    # The tiles make room for it: nothing cut, nothing overlapping, nothing too small.
    assert layout(board)["problems"] == []
    board.until(lambda _: message(board)["text"] is None, timeout=6)
    assert 3.0 <= time.monotonic() - set_at <= 5.5
    assert message(board)["board"] is None

    long = "Team meeting in the big room at 16:00 for everyone on the floor, " * 4
    put_message(board, long.strip())
    shown = board.until(lambda _: (m := message(board))["text"] == long.strip() and m, timeout=1.0)
    assert shown["cut"] and round(shown["lines"]) == 1 and shown["title"] == long.strip(), shown
    delete_message(board)
    board.until(lambda _: message(board)["text"] is None, timeout=1.0)

    # A message the server never takes down (it has none): the board's clock does.
    board.driver.execute_script(
        FAKE_MESSAGE,
        {"text": "Until two seconds from now", "until": iso_in(2), "set_at": iso_in(0)},
    )
    assert message(board)["text"] == "Until two seconds from now"
    time.sleep(1.2)
    assert message(board)["text"] == "Until two seconds from now"
    board.until(lambda _: message(board)["text"] is None, timeout=2)

    # A board opened later gets it in its snapshot.
    put_message(board, text)
    board.open()
    assert message(board)["text"] == text


def test_polls_apply_the_message(scripted_page: Scripted) -> None:
    """A board without EventSource reads the message from /api/v1/state."""
    board = scripted_page
    script = board.driver.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument", {"source": "delete window.EventSource;"}
    )
    try:
        with board_timers(board.driver, POLL_MS=500):
            board.open()
        assert board.driver.execute_script("return typeof EventSource") == "undefined"
        put_message(board, "Polled message")
        board.until(lambda _: message(board)["text"] == "Polled message", timeout=3)
        delete_message(board)
        board.until(lambda _: message(board)["text"] is None, timeout=3)
        assert board.page()["polls"] >= 2
    finally:
        board.driver.execute_cdp_cmd(
            "Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]}
        )


# --- following an upgrade ----------------------------------------------------------

#: A mark on this load of the page, and the time of its last reload for a new version.
LOAD = """
return {marker: window.__loadMarker ?? null, version: window.mitelacdBoard.version,
        reloaded: Number(sessionStorage.getItem('mitelacd-board-reloaded-at')) || null,
        snapshots: window.__sse.sources.reduce((n, s) => n + (s.counts.snapshot || 0), 0)};
"""

#: An older page: its version says "old". A delta from far ahead makes the
#: board open a fresh stream, which starts with a snapshot.
OLD_PAGE_AND_RESYNC = """
document.querySelector('meta[name="mitelacd-board-version"]').content = 'old';
window.__loadMarker = arguments[0];
const es = window.__sse.sources[window.__sse.sources.length - 1].es;
const v = Number(document.body.dataset.version);
es.dispatchEvent(new MessageEvent('delta', {data: JSON.stringify(
  {from: v + 1e6, version: v + 1e6 + 1, generated_at: new Date().toISOString(), stale: false})}));
"""


def load(board: Scripted) -> dict[str, Any] | None:
    """LOAD, or None while the page is being reloaded."""
    try:
        return json_object(board.driver.execute_script(LOAD))
    except WebDriverException:
        return None


def test_an_older_page_reloads_itself_once_a_minute_at_most(scripted_page: Scripted) -> None:
    """A page older than the server's (its version differs from the snapshot's
    board_version) reloads; another mismatch soon after waits for RELOAD_MS
    (5 s here) since the last reload, then reloads."""
    board = scripted_page
    served = board.state()["board_version"]
    assert isinstance(served, str) and served, served
    with board_timers(board.driver, RELOAD_MS=5000):
        board.open()
        first = load(board)
        assert first is not None and first["version"] == served and first["reloaded"] is None
        time.sleep(1)
        assert load(board) == first  # the same version: no reload

        board.driver.execute_script(OLD_PAGE_AND_RESYNC, "first load")
        again = board.until(lambda _: (p := load(board)) and p["marker"] is None and p)
        assert again["version"] == served and again["reloaded"] is not None
        reloaded = again["reloaded"]
        board.until(lambda _: (p := load(board)) and p["snapshots"] >= 1)

        # Older again, at once: the new snapshot says so, and the board waits.
        board.driver.execute_script(OLD_PAGE_AND_RESYNC, "second load")
        board.until(lambda _: (p := load(board)) and p["snapshots"] >= 2)
        time.sleep(1)
        early = load(board)
        assert early is not None and early["marker"] == "second load", early
        assert time.time() * 1000 - reloaded < 4000, "too slow to tell a reload put off"
        last = board.until(lambda _: (p := load(board)) and p["marker"] is None and p, timeout=10)
        assert last["reloaded"] - reloaded >= 5000, (reloaded, last)
        assert last["version"] == served
