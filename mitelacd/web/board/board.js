// mitelacd wall board: keeps a model of /api/v1/state fed by /api/v1/events
// (Server-Sent Events: a snapshot on connect, then deltas), falling back to
// polling /api/v1/state. Plain ES2020, no dependencies; text only via textContent.
//
// Views, chosen by the address: the whole floor (default); ?groups=610,620
// (those groups' cards and their agents; &paths=860 adds paths); ?view=queues
// (the cards alone, large); ?view=agents (the tiles alone). ?title= names the
// board, ?token= is the API's access token. Tiles are sorted by name
// (?sort=name|state|id); logged-out agents are counted, not drawn (?out=hide:
// not even counted). Tiles that do not fit at a readable size are shown in
// pages that turn every ?page_seconds= (10). The day's figures come from
// /api/v1/reports/today/*; ?today=0 leaves them out.
"use strict";
(() => {
  // The board's timers, in ms. For tests only: a script run before this one
  // may set window.MITELACD_TIMERS = { TODAY_MS: 3000, ... } to shorten any of
  // them (the test suite does, through Chromium's addScriptToEvaluateOnNewDocument);
  // names not listed here and values that are not positive numbers are ignored.
  // Nothing in the page or the daemon sets it: a real board keeps these.
  const TIMERS = {
    POLL_MS: 2000,          // polling period when SSE is unavailable or failing
    SSE_RETRY_MS: 30000,    // how soon a given-up EventSource is tried again
    SILENCE_MS: 30000,      // no data for this long: check the server with a poll
    RESYNC_MS: 1000,        // at least this long between two fresh event streams
    POLL_TIMEOUT_MS: 5000,  // a poll not answered by then failed: the server hangs
    TODAY_MS: 30000,        // how often the day's figures are fetched again
    TONE_REPEAT_MS: 30000,  // how often the alarm tone plays until someone acknowledges it
    RELOAD_MS: 60000,       // at least this long between two reloads for a new board version
  };
  for (const [name, ms] of Object.entries(window.MITELACD_TIMERS || {})) {
    const known = Object.prototype.hasOwnProperty.call(TIMERS, name);
    if (known && Number.isFinite(ms) && ms > 0) TIMERS[name] = ms;
  }
  const { POLL_MS, SSE_RETRY_MS, SILENCE_MS, RESYNC_MS, POLL_TIMEOUT_MS, TODAY_MS } = TIMERS;

  const params = new URLSearchParams(location.search);
  const token = params.get("token");
  const only = (name) => {
    const raw = params.get(name);
    return raw ? new Set(raw.split(",").map((s) => s.trim()).filter(Boolean)) : null;
  };
  const onlyGroups = only("groups");
  const onlyPaths = only("paths");
  const VIEWS = ["floor", "queues", "agents"];
  const view = VIEWS.includes(params.get("view")) ? params.get("view") : "floor";
  const title = params.get("title");
  const todayOn = params.get("today") !== "0";
  const SORTS = ["name", "state", "id"];
  const sortBy = SORTS.includes(params.get("sort")) ? params.get("sort") : "name";
  const outHidden = params.get("out") === "hide";
  const pageMs = (() => {
    const seconds = Number(params.get("page_seconds"));
    return 1000 * (Number.isFinite(seconds) && seconds >= 2 ? seconds : 10);
  })();
  // What the board shows, for whoever looks at the page from outside (tests, a kiosk's tools).
  const board = (window.mitelacdBoard = window.mitelacdBoard || {});
  const api = (path) => (token ? `${path}?token=${encodeURIComponent(token)}` : path);

  const $ = (id) => document.getElementById(id);
  const agentsBox = $("agents");
  const queuesBox = $("queues");
  const banner = $("stale-banner");
  document.body.dataset.view = view;
  if (outHidden) document.body.dataset.out = "hide";
  if (onlyGroups || onlyPaths) document.body.dataset.filtered = "";
  if (title) document.title = title;

  // The floor as the server last told it: the /api/v1/state document with its
  // lists turned into Maps keyed by id, kept up to date by deltas.
  let model = null;
  let skews = [];         // [second, browser clock minus server clock (ms)]: best of each second
  let lostSince = null;   // Date the page lost the server, or null
  let lostWhy = "";       // what the server said, if it answered at all
  let frozenAt = null;    // while the data is not live: the server time it stopped (ms)
  let lastData = 0;       // Date.now() of the last document or event received
  let polling = null;     // interval id while polling
  let pollFailures = 0;   // failed polls in a row
  let pollsBehind = 0;    // poll answers in a row older than the model
  const tiles = new Map(); // agent id -> {root, name, calls, what, note, time, since, state, shown, inGrid, ...}
  const cards = new Map(); // "group:610" -> {root, name, waiting, answered, longest, line}
  const counted = new Map(); // agent id -> state, for the agents the totals count
  // The day's figures by id, per kind ("agents", "paths", "groups"): a Map, or
  // null while the server has given none (an older server has no such report).
  const today = { agents: null, paths: null, groups: null };

  // --- formatting --------------------------------------------------------

  const pad = (n) => String(n).padStart(2, "0");
  const mmss = (s) => (s == null ? "–" : `${pad(Math.floor(s / 60))}:${pad(s % 60)}`);
  // Under an hour "mm:ss", then "1h05": never wider than "00:00".
  const duration = (s) => {
    s = Math.max(0, Math.floor(s));
    return s < 3600 ? mmss(s) : `${Math.floor(s / 3600)}h${pad(Math.floor(s / 60) % 60)}`;
  };
  const clockTime = (d) => `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const hms = (iso) => clockTime(new Date(iso));
  const skew = () => (skews.length ? Math.min(...skews.map((s) => s[1])) : 0);
  const serverNow = () => Date.now() - skew();
  // The time timers count to: now while live, else the moment the data stopped.
  const dataNow = () => frozenAt ?? serverNow();
  const live = () => frozenAt == null;

  // --- what an agent is doing, in words ------------------------------------

  // The API's `state`: the board's colours.
  const STATES = {
    available: "Available", ringing: "Ringing", on_call: "On call", on_hold: "On hold",
    wrap_up: "Wrap-up", not_ready: "Not ready", logged_out: "Logged out",
  };
  const CARRIED = { out: "logged_out", in: "available", idle: "available", busy: "on_call", timer: "wrap_up" };
  const callsOf = (a) => (Array.isArray(a.calls) ? a.calls : []);

  // `state`, or the same rules from the flags for a daemon that does not send it.
  function stateOf(a) {
    if (STATES[a.state]) return a.state;
    if (a.carried) return CARRIED[a.status] || "logged_out";
    if (a.logged_in === false || a.status === "out") return "logged_out";
    const calls = callsOf(a);
    if (calls.length) return calls.some((c) => !c.held) ? "on_call" : "on_hold";
    if (a.ringing != null) return "ringing";
    if (a.dnd || a.make_busy) return "not_ready";
    if (a.wrap_up) return "wrap_up";
    return "available";
  }

  // [long, short, shortest] words for what the agent is doing.
  const ACTIVITY = {
    acd_call: ["ACD call", "ACD", "ACD"], personal_call: ["Personal call", "Personal", "Pers."],
    outgoing_call: ["Outgoing call", "Outgoing", "Out"], call: ["On a call", "Call", "Call"],
    hold: ["On hold", "Hold", "Hold"], ringing: ["Ringing", "Ringing", "Ring"],
  };

  // Make busy or DND ([long, short] name of the flag), with the site's reason
  // text, else the PBX's code: "Make busy: Lunch", "Lunch", "Busy".
  function reason([flag, short], code, text) {
    if (text) return [`${flag}: ${text}`, text, short];
    return code == null ? [flag, short, short] : [`${flag} ${code}`, `${short} ${code}`, short];
  }

  // The words of a tile, longest first: the first that fits is shown, and the
  // last is a word or two that fits any tile.
  function wordsOf(a, state) {
    const parts = []; // [long, short, shortest] each
    const activity = a.activity || "none";
    if (ACTIVITY[activity] && state !== "logged_out") parts.push(ACTIVITY[activity]);
    else parts.push([STATES[state], STATES[state], STATES[state]]);
    const held = callsOf(a).filter((c) => c.held).length || (a.on_hold ? 1 : 0);
    if (held && activity !== "hold") parts.push([`${held} on hold`, `+${held} held`, `+${held}`]);
    if (a.ringing != null && activity !== "ringing") parts.push(["ringing", "ringing", "ring"]);
    if (a.make_busy) parts.push(reason(["Make busy", "Busy"], a.make_busy_reason, a.make_busy_reason_text));
    if (a.dnd) parts.push(reason(["DND", "DND"], a.dnd_reason, a.dnd_reason_text));
    // Not ready with nothing else going on: the reason says it all.
    if (state === "not_ready" && activity === "none" && parts.length > 1) parts.shift();
    const joined = (i, between) => parts.map((p) => p[i]).join(between);
    return [joined(0, " · "), joined(1, " · "), joined(2, " "), parts[0][2]];
  }

  // "Grace Hopper", "Grace H.", "Grace"; the ID when the agent has no name.
  function namesOf(id, a) {
    const name = typeof a.name === "string" ? a.name.trim() : "";
    if (!name) return [id];
    const words = name.split(/\s+/);
    if (words.length < 2) return [name];
    return [name, `${words[0]} ${words[words.length - 1][0]}.`, words[0]];
  }

  // A queue's level from the thresholds; a daemon that sends none: calls waiting are a warning.
  function levelOf(q) {
    if (q.level === undefined) return q.waiting > 0 ? "warning" : "";
    return q.level === "warning" || q.level === "alarm" ? q.level : "";
  }

  // Warning or alarm once the clock passes the thresholds the API gave; only while live.
  function attentionOf(t) {
    if (!t.attention || !t.confirmed || !live()) return "";
    const now = serverNow();
    const at = (iso) => (iso ? Date.parse(iso) : NaN);
    if (now >= at(t.attention.alarm_at)) return "alarm";
    if (now >= at(t.attention.warning_at)) return "warning";
    return "";
  }

  // --- the order of ids, as the server sorts its lists ---------------------

  // Strings by code point, as Python compares them.
  function byCodePoint(a, b) {
    for (let i = 0; i < a.length && i < b.length;) {
      const x = a.codePointAt(i);
      const y = b.codePointAt(i);
      if (x !== y) return x < y ? -1 : 1;
      i += x > 0xffff ? 2 : 1;
    }
    return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
  }
  const DIGITS = /^[0-9]+$/;
  // Digits as numbers of any length ("999" before "1001", "07" just before "7"),
  // anything else after them as text.
  function byId(a, b) {
    const da = DIGITS.test(a);
    if (da !== DIGITS.test(b)) return da ? -1 : 1;
    if (da) {
      const na = a.replace(/^0+/, "");
      const nb = b.replace(/^0+/, "");
      if (na.length !== nb.length) return na.length < nb.length ? -1 : 1;
      const c = byCodePoint(na, nb);
      if (c) return c;
    }
    return byCodePoint(a, b);
  }

  // --- DOM helpers -------------------------------------------------------

  function el(tag, cls, parent, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text != null) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }
  const setText = (node, text) => { if (node.textContent !== text) node.textContent = text; };
  // Data attributes, written only when they change; null removes one.
  const setData = (node, values) => {
    for (const [k, v] of Object.entries(values)) {
      if (v == null) delete node.dataset[k];
      else if (node.dataset[k] !== v) node.dataset[k] = v;
    }
  };

  // Put `nodes` into `box` in this order, moving only what is out of place.
  function order(box, nodes) {
    nodes.forEach((node, i) => {
      if (box.children[i] !== node) box.insertBefore(node, box.children[i] || null);
    });
    while (box.children.length > nodes.length) box.lastChild.remove();
  }

  // Widths of text in em of the board's font, measured once per text.
  const ruler = document.createElement("canvas").getContext("2d");
  const FAMILY = getComputedStyle(document.body).fontFamily;
  const widths = new Map();
  function emWidth(text, weight) {
    const key = `${weight} ${text}`;
    let width = widths.get(key);
    if (width == null) {
      if (widths.size > 10000) widths.clear();
      ruler.font = `${weight} condensed 100px ${FAMILY}`;
      width = ruler.measureText(text).width / 100;
      widths.set(key, width);
    }
    return width;
  }

  // A line holding a text in several lengths, longest first. Each knows its
  // width (--need, in em); the grid says how much room a line has (--room, set
  // by fit). Forms that do not fit have no height, so the first that fits
  // heads the line and the rest are out of sight below it (board.css, .fits).
  // Writing it only when the text changes keeps tiles untouched by a re-layout.
  function setForms(node, forms, weight) {
    forms = forms.filter((f, i) => f && forms.indexOf(f) === i);
    const key = forms.join("\n");
    if (node.dataset.forms === key) return;
    node.dataset.forms = key;
    node.replaceChildren(...forms.map((form) => {
      const span = el("span", null, null, form);
      span.style.setProperty("--need", emWidth(form, weight).toFixed(3));
      return span;
    }));
  }

  // --- agents ------------------------------------------------------------

  function agentTile(id) {
    let t = tiles.get(id);
    if (t) return t;
    const root = el("div", "agent");
    root.dataset.agent = id;
    // The name and the day's ACD calls over what the agent does and for how long.
    t = {
      root, name: el("div", "a-name fits", root), calls: el("div", "a-today", root),
      what: el("div", "a-what fits", root), time: el("div", "a-time", root), note: el("div", "a-note", root),
      since: null, state: null, shown: false, inGrid: false, sortName: "", groups: null, attention: null,
      confirmed: true, level: "",
    };
    tiles.set(id, t);
    showTodayOf(id, t);
    return t;
  }

  const shownAgent = (a) => !onlyGroups || (Array.isArray(a.groups) && a.groups.some((g) => onlyGroups.has(String(g))));

  const timeText = (t) => (t.since == null ? "" : duration((dataNow() - t.since) / 1000));

  // One agent's tile, created if new (placeAgents puts it on the page). Says
  // whether the tiles need placing again: the agent came into or left the
  // grid, or moved in its order.
  function renderAgent(id, a) {
    const t = agentTile(id);
    const state = stateOf(a);
    const confirmed = a.confirmed !== false;
    const sortName = typeof a.name === "string" ? a.name.trim() : "";
    const resorted = (sortBy === "name" && sortName !== t.sortName) || (sortBy === "state" && state !== t.state);
    Object.assign(t, { state, confirmed, sortName, attention: a.attention || null });
    setData(t.root, {
      state, status: a.status, activity: a.activity || "none", calls: String(callsOf(a).length),
      onHold: String(Boolean(a.on_hold)), confirmed: String(confirmed), carried: String(Boolean(a.carried)),
    });
    setForms(t.name, namesOf(id, a), 700);
    const tooltip = (a.name ? `${a.name} (${id})` : id) + (confirmed ? "" : ": unconfirmed");
    if (t.root.title !== tooltip) t.root.title = tooltip;
    setForms(t.what, wordsOf(a, state), 400);
    // What the PBX has not confirmed on this connection keeps its last words and
    // colour, marked, and is not timed as if live.
    setText(t.note, confirmed ? "" : "?");
    const since = a.state_since ?? a.since;
    t.since = confirmed && since ? Date.parse(since) : null;
    setText(t.time, timeText(t));
    showLevel(t);
    // A change of groups changes the groups' cards: who is available, the calls answered.
    const groups = Array.isArray(a.groups) ? a.groups.join(",") : "";
    if (groups !== t.groups) { t.groups = groups; members = null; totalsDirty = true; }
    const shown = shownAgent(a);
    const inGrid = shown && state !== "logged_out";
    const moved = inGrid !== t.inGrid || (inGrid && resorted);
    Object.assign(t, { shown, inGrid });
    count(id, shown ? state : null);
    return moved;
  }

  // On the time, which changes on its own each second; board.css rings the tile.
  function showLevel(t) {
    const level = attentionOf(t);
    if (level !== t.level) { t.level = level; setData(t.time, { level: level || null }); }
  }

  // Tiles by name (those without one after, by ID), by state then name, or by ID.
  const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
  const STATE_ORDER = Object.keys(STATES);
  function compareTiles([ida, a], [idb, b]) {
    if (sortBy === "state") {
      const d = STATE_ORDER.indexOf(a.state) - STATE_ORDER.indexOf(b.state);
      if (d) return d;
    }
    if (sortBy !== "id") {
      if (!a.sortName !== !b.sortName) return a.sortName ? -1 : 1;
      const c = collator.compare(a.sortName, b.sortName);
      if (c) return c;
    }
    return byId(ida, idb);
  }

  // The tiles of the agents in the grid, in order: after agents came, went or moved.
  function placeAgents() {
    for (const id of [...tiles.keys()]) {
      if (!model.agents.has(id)) { tiles.delete(id); count(id, null); }
    }
    // ?view=queues counts the agents, and draws none of them; logged-out agents are counted only.
    const inGrid = view === "queues" ? [] : [...tiles].filter(([, t]) => t.inGrid).sort(compareTiles);
    const resized = agentsBox.children.length !== inGrid.length;
    order(agentsBox, inGrid.map(([, t]) => t.root));
    if (resized) fit();
    renderTotals();
  }

  // Once a second: times count, thresholds pass.
  function tickTimes() {
    for (const t of tiles.values()) {
      if (!t.shown) continue;
      setText(t.time, timeText(t));
      showLevel(t);
    }
  }

  // --- the grid of tiles, in pages -----------------------------------------

  // A tile in units of its smallest text (--u): the name (NAME high) over one
  // line of words and time, a little padding; wide enough for "Available 00:00".
  const TILE_W = 7.4;
  const PAD_X = 0.38; // board.css .agent padding, in --u
  const PAD_Y = 0.12;
  const LINE = 1.12;  // board.css .agent line-height
  const tileH = (name) => (name + 1) * LINE + 2 * PAD_Y;
  const scale = () => Math.min(innerWidth / 1920, innerHeight / 1080);
  const legend = $("legend");
  const pageStyle = document.head.appendChild(document.createElement("style"));
  let pages = 1;          // pages of tiles
  let perPage = Infinity; // tiles on each
  let pageAt = 0;         // the page in sight
  let pageTimer = null;

  // The largest text that lets every tile of the view fit the room there is,
  // at most 44 design pixels. Under 20 the names shrink to the size of the
  // words, then the legend gives its room, and if the tiles still do not fit
  // at 20 they are shared out evenly over as few pages as hold them.
  function fit() {
    if (view === "queues") return;
    const n = Math.max(agentsBox.children.length, 1);
    const cs = getComputedStyle(agentsBox);
    const W = agentsBox.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
    const legendShown = !legend.hidden && legend.checkVisibility();
    if (legendShown) legendHeight = legend.offsetHeight;
    const roomBelow = legendShown ? legendHeight : 0; // the legend's room, when it is not there
    const H0 = agentsBox.clientHeight - parseFloat(cs.paddingTop) - parseFloat(cs.paddingBottom);
    const s = scale();
    const least = 20 * s;
    const gap = Math.max(3, Math.round(4 * s));
    const largest = (H, name) => {
      let best = 0;
      for (let cols = 1; cols <= n; cols++) {
        const rows = Math.ceil(n / cols);
        const w = (W - gap * (cols - 1)) / cols;
        const h = (H - gap * (rows - 1)) / rows;
        best = Math.max(best, Math.min(w / TILE_W, h / tileH(name)));
      }
      return best;
    };
    // With the legend: large names, then names as large as the words.
    const withLegend = H0 - (legendShown ? 0 : legendHeight);
    const withoutLegend = H0 + roomBelow;
    let [H, name, unit] = [withLegend, 1.2, 0];
    for (const [h, nm] of [[withLegend, 1.2], [withLegend, 1], [withoutLegend, 1]]) {
      [H, name, unit] = [h, nm, largest(h, nm)];
      if (unit >= least) break;
    }
    const showLegend = H === withLegend;
    if (legend.hidden === showLegend) legend.hidden = !showLegend;
    unit = Math.floor(Math.min(unit, 44 * s) * 10) / 10;
    const th = tileH(name);
    const across = (width) => Math.floor((W + gap) / (width * unit + gap));
    let count = n;
    if (unit < least) {
      unit = least;
      const down = Math.max(1, Math.floor((H + gap) / (th * unit + gap)));
      pages = Math.ceil(n / Math.max(1, across(TILE_W) * down));
      count = Math.ceil(n / pages);
    } else {
      pages = 1;
    }
    perPage = count;
    // As few columns as let the rows fit (wide tiles have room for more words),
    // yet no tile twice as wide as it needs.
    const down = Math.max(1, Math.floor((H + gap) / (th * unit + gap)));
    const cols = Math.max(1, Math.min(count, across(TILE_W), Math.max(Math.ceil(count / down), across(2 * TILE_W) + 1)));
    const rows = Math.ceil(count / cols);
    const row = Math.min((H - gap * (rows - 1)) / rows, th * unit * 1.4);
    const width = (W - gap * (cols - 1)) / cols - 2 * PAD_X * unit;
    const time = emWidth("00:00", 700);
    const calls = hasToday() ? emWidth("999", 700) + 0.7 : 0; // the day's calls, in the name's corner
    const st = agentsBox.style;
    st.setProperty("--cols", cols);
    st.setProperty("--row", `${Math.floor(Math.max(row, th * unit))}px`);
    st.setProperty("--unit", `${unit}px`);
    st.setProperty("--name", name);
    st.setProperty("--gap", `${gap}px`);
    st.setProperty("--name-room", ((width / unit - calls) / name).toFixed(3));
    st.setProperty("--what-room", (width / unit - time - 0.4).toFixed(3));
    setData(agentsBox, { today: hasToday() ? "" : null });
    showPage();
  }
  let legendHeight = 0;

  // Only the tiles of the page in sight are drawn (a rule on their places in
  // the grid: the tiles themselves are not touched), and the header says which.
  function showPage() {
    if (pageAt >= pages) pageAt = 0;
    const first = pageAt * perPage;
    pageStyle.textContent = pages > 1
      ? `#agents > :not(:nth-child(n+${first + 1}):nth-child(-n+${first + perPage})) { display: none; }`
      : "";
    const line = $("page-line");
    setText(line, pages > 1 ? `page ${pageAt + 1} of ${pages}` : "");
    line.hidden = pages <= 1;
    if (pages > 1 && !pageTimer) pageTimer = setInterval(turnPage, pageMs);
    if (pages <= 1 && pageTimer) { clearInterval(pageTimer); pageTimer = null; }
    board.pages = { page: pageAt + 1, pages, per_page: pages > 1 ? perPage : agentsBox.children.length, seconds: pageMs / 1000 };
  }

  function turnPage() {
    pageAt = (pageAt + 1) % pages;
    showPage();
  }

  // ?view=queues: columns for cards about twice as wide as high.
  function fitQueues() {
    if (view !== "queues") return;
    const n = Math.max(queuesBox.children.length, 1);
    const aspect = queuesBox.clientWidth / Math.max(1, queuesBox.clientHeight);
    queuesBox.style.setProperty("--qcols", Math.max(1, Math.min(n, Math.round(Math.sqrt((n * aspect) / 2)))));
  }

  // --- the day's figures --------------------------------------------------

  // Fetched from the reports when the board starts and every TODAY_MS after,
  // never on a push: each tile gets the agent's ACD calls today, each card the
  // calls answered and the average handle time, the header the occupancy of
  // the agents shown. A server without them (an older daemon) or one that
  // refuses them leaves them out; a server out of reach keeps the figures it
  // gave, for when it is back.
  const TODAY_KINDS = { agents: true, paths: view !== "agents", groups: false };
  const hasToday = () => todayOn && today.agents != null;

  // An average: "2:08", past an hour "1h05".
  const minutes = (s) => {
    s = Math.max(0, Math.round(s));
    return s < 3600 ? `${Math.floor(s / 60)}:${pad(s % 60)}` : `${Math.floor(s / 3600)}h${pad(Math.floor(s / 60) % 60)}`;
  };
  const whole = (v) => (Number.isFinite(v) ? Math.max(0, Math.round(v)) : null);
  const seconds = (v) => (Number.isFinite(v) ? v : 0);
  const handled = (f) => seconds(f.acd_talk_seconds) + seconds(f.hold_seconds) + seconds(f.wrap_up_seconds);

  function showTodayOf(id, t) {
    const f = hasToday() ? today.agents.get(id) : null;
    setText(t.calls, hasToday() ? String(whole(f?.acd_calls) ?? 0) : "");
  }

  // [calls answered, average handle seconds or null] of a path (its own
  // figures) or of a group (the sum of its members' figures, when the names
  // file lists them); null when there is nothing to go on.
  function answeredOf(kind, id) {
    if (!hasToday()) return null;
    if (kind === "path") {
      const f = today.paths?.get(id);
      if (!f) return today.paths ? [0, null] : null;
      const calls = whole(f.acd_calls) ?? 0;
      const aht = Number.isFinite(f.average_handle_seconds) ? f.average_handle_seconds : calls ? handled(f) / calls : null;
      return [calls, aht];
    }
    const members = membersOf(id);
    if (!members.length) return null;
    let [calls, time] = [0, 0];
    for (const agent of members) {
      const f = today.agents.get(agent);
      if (!f) continue;
      calls += whole(f.acd_calls) ?? 0;
      time += handled(f);
    }
    return [calls, calls ? time / calls : null];
  }

  // A path's service level and abandoned calls today, from SMDR: null when the
  // daemon reads no SMDR (the report's figures are null then). Provisional
  // figures (the site has not confirmed its SMDR markers) are shown with "≈".
  function smdrOf(kind, id) {
    if (kind !== "path" || !hasToday()) return null;
    const f = today.paths?.get(id);
    if (!f || f.offered == null) return null;
    const sl = Number.isFinite(f.service_level_percent) ? Math.round(f.service_level_percent) : null;
    return { sl, abandoned: whole(f.abandoned) ?? 0, provisional: f.provisional === true };
  }

  // Occupancy of the agents counted in this view: time on calls, held and in
  // wrap-up, personal and outgoing calls, over the time logged in and ready.
  function occupancy() {
    if (!hasToday()) return null;
    let [busy, ready] = [0, 0];
    for (const id of counted.keys()) {
      const f = today.agents.get(id);
      if (!f) continue;
      busy += handled(f) + seconds(f.personal_seconds) + seconds(f.outgoing_seconds);
      ready += seconds(f.logged_in_seconds) - seconds(f.not_ready_seconds);
    }
    return ready > 0 ? Math.round((100 * busy) / ready) : null;
  }

  async function fetchToday(kind) {
    let figures = today[kind];
    try {
      const response = await fetch(api(`/api/v1/reports/today/${kind}`), {
        cache: "no-store", signal: AbortSignal.timeout(POLL_TIMEOUT_MS),
      });
      if (!response.ok) {
        figures = null; // not on this server, or not for this board
      } else {
        const list = (await response.json())[kind];
        figures = Array.isArray(list) ? new Map(list.filter((e) => e && e.id != null).map((e) => [String(e.id), e])) : null;
      }
    } catch (e) {
      if (e instanceof SyntaxError) figures = null; // an answer that is not JSON
    }
    const had = today[kind] != null;
    today[kind] = figures;
    if (kind === "agents") {
      for (const [id, t] of tiles) showTodayOf(id, t);
      if (had !== (figures != null)) fit();
    }
    if (!model) return; // the figures wait for the floor: the first document draws them
    showQueueFigures();
    renderTotals();
  }

  function refreshToday() {
    for (const [kind, wanted] of Object.entries(TODAY_KINDS)) if (wanted) fetchToday(kind);
  }

  // --- groups, paths, totals ---------------------------------------------

  const QUEUES = [["group", "groups"], ["path", "paths"]]; // [kind, list of the model]
  const LABEL = { group: "Group", path: "Path" };
  // With ?groups= or ?paths=, exactly the cards named; else all of them.
  const shownQueue = (kind, id) => {
    if (!onlyGroups && !onlyPaths) return true;
    const filter = kind === "group" ? onlyGroups : onlyPaths;
    return Boolean(filter && filter.has(id));
  };

  function queueCard(kind, id) {
    const key = `${kind}:${id}`;
    let c = cards.get(key);
    if (c) return c;
    const root = el("div", `queue ${kind}`);
    root.dataset[kind] = id;
    const name = el("div", "q-name", root);
    const field = (field, label) => {
      const box = el("div", null, root);
      const value = el("b", null, box, "–");
      value.dataset.field = field;
      el("span", null, box, label);
      return value;
    };
    c = { root, name, waiting: field("waiting", "waiting"), answered: field("answered", "answered") };
    c.longest = field("longest", "longest");
    // Agents available and logged in, and the average handle time: a line in the longest form that fits.
    c.line = el("div", "q-line fits", root);
    c.kind = kind;
    c.id = id;
    c.loggedIn = null;
    cards.set(key, c);
    return c;
  }

  // Agent IDs by group, from the groups the names file gives each agent.
  let members = null;
  function membersOf(group) {
    if (!members) {
      members = new Map();
      for (const [id, a] of model.agents) {
        for (const g of Array.isArray(a.groups) ? a.groups : []) {
          const key = String(g);
          if (!members.has(key)) members.set(key, []);
          members.get(key).push(id);
        }
      }
    }
    return members.get(group) || [];
  }

  // The figures of a card that come from the agents and the day's reports.
  function showQueueFigure(c) {
    const figures = answeredOf(c.kind, c.id);
    setText(c.answered, figures ? String(figures[0]) : "–");
    const parts = []; // [long, short, shortest]
    const smdr = smdrOf(c.kind, c.id);
    if (smdr) {
      const mark = smdr.provisional ? "≈" : "";
      const sl = smdr.sl == null ? "–" : `${mark}${smdr.sl}%`;
      parts.push([`SL ${sl}`, `SL ${sl}`, `SL ${sl}`]);
      parts.push([`${mark}${smdr.abandoned} abandoned`, `${mark}${smdr.abandoned} aband.`, null]);
    }
    setData(c.root, {
      serviceLevel: smdr?.sl == null ? null : String(smdr.sl),
      abandoned: smdr ? String(smdr.abandoned) : null,
      provisional: smdr?.provisional ? "" : null,
    });
    const title = smdr?.provisional ? "≈: provisional, until the site confirms its SMDR markers" : "";
    if (c.root.title !== title) c.root.title = title;
    const group = c.kind === "group" ? membersOf(c.id) : [];
    if (group.length) {
      const free = group.filter((id) => tiles.get(id)?.state === "available").length;
      parts.push([`${free} available`, `${free} avail`, `${free} avail`]);
    }
    if (c.loggedIn != null) parts.push([`${c.loggedIn} logged in`, `${c.loggedIn} in`, null]);
    if (figures && figures[1] != null) parts.push([`AHT ${minutes(figures[1])}`, `AHT ${minutes(figures[1])}`, minutes(figures[1])]);
    const form = (i) => parts.map((p) => p[i]).filter(Boolean).join(" · ");
    setForms(c.line, parts.length ? [form(0), form(1), form(2)] : [], 400);
  }

  function showQueueFigures() {
    if (!model) return;
    members = null;
    for (const c of cards.values()) showQueueFigure(c);
  }

  const queueName = (kind, id, q) => (q && q.name ? q.name : `${LABEL[kind]} ${id}`);

  // One group's or path's card, created if new (placeQueues puts it on the page).
  function renderQueue(kind, id, q) {
    if (!shownQueue(kind, id)) return;
    const c = queueCard(kind, id);
    const name = queueName(kind, id, q);
    if (c.name.firstChild?.textContent !== name) {
      c.name.replaceChildren(name, ...(q.name ? [el("small", null, null, id)] : []));
    }
    setText(c.waiting, q.waiting == null ? "–" : String(q.waiting));
    setText(c.longest, mmss(q.longest_wait_seconds));
    setData(c.root, { level: levelOf(q) || null });
    const loggedIn = q.agents_logged_in ?? null;
    if (loggedIn !== c.loggedIn || !c.root.isConnected) { c.loggedIn = loggedIn; showQueueFigure(c); }
  }

  // The cards of the model's groups, then paths, in id order: after queues came or went.
  function placeQueues() {
    const keys = [];
    for (const [kind, list] of QUEUES) {
      for (const id of [...model[list].keys()].sort(byId)) {
        if (shownQueue(kind, id)) keys.push(`${kind}:${id}`);
      }
    }
    const wanted = new Set(keys);
    for (const key of [...cards.keys()]) if (!wanted.has(key)) cards.delete(key);
    const resized = queuesBox.children.length !== keys.length;
    order(queuesBox, keys.map((key) => cards.get(key).root));
    if (resized) { fit(); fitQueues(); }
    showTitle();
  }

  // ?title=, else the names of the groups shown, else the floor.
  function showTitle() {
    let text = title || "Call centre floor";
    if (!title && onlyGroups && model) {
      const names = [...onlyGroups].sort(byId).map((id) => queueName("group", id, model.groups.get(id)));
      text = names.join(" · ");
    }
    setText($("title"), text);
    if (!title) document.title = text;
  }

  // The totals count agents by state, those of this view only.
  function count(id, state) {
    if (counted.get(id) === state) return;
    if (state == null) counted.delete(id);
    else counted.set(id, state);
    totalsDirty = true;
  }
  let totalsDirty = true;

  function renderTotals() {
    const t = model.totals || {};
    const values = { waiting: t.waiting, longest: t.longest_wait_seconds == null ? null : mmss(t.longest_wait_seconds) };
    if (totalsDirty) {
      const by = Object.fromEntries(Object.keys(STATES).map((s) => [s, 0]));
      for (const state of counted.values()) by[state] += 1;
      Object.assign(values, by, { logged_in: counted.size - by.logged_out });
      showQueueFigures(); // agents available per group
    }
    totalsDirty = false;
    const occupied = occupancy();
    values.occupancy = occupied == null ? null : `${occupied}%`;
    for (const box of document.querySelectorAll(".t-occupancy")) box.hidden = !hasToday();
    for (const node of document.querySelectorAll("[data-total]")) {
      const key = node.dataset.total;
      if (key in values) setText(node, values[key] == null ? "–" : String(values[key]));
    }
    // The queue totals take the worst level of the cards.
    let level = "";
    for (const [, list] of QUEUES) {
      for (const q of model[list].values()) {
        const l = levelOf(q);
        if (l === "alarm" || (l === "warning" && !level)) level = l;
      }
    }
    for (const box of document.querySelectorAll(".t-queue")) setData(box, { level: level || null });
    alerts.update();
  }

  // --- feed health: the header, the banner, what is live -------------------

  // [plain reason, server time (ms) the data stopped being live], or null while live.
  function notLive() {
    const f = (model && model.feed) || {};
    if (lostSince) return [lostWhy || "server not answering", lostSince.getTime()];
    if (!model) return null;
    if (!f.connected) {
      const since = f.disconnected_since;
      return [f.connected_since || since ? "PBX link lost" : "PBX not connected", since ? Date.parse(since) : serverNow()];
    }
    if (model.stale ?? f.stale) {
      const heard = f.last_record_at || f.connected_since;
      const silent = heard ? Math.max(0, Math.round((serverNow() - Date.parse(heard)) / 1000)) : null;
      return [silent == null ? "no data from the PBX yet" : `no data for ${silent} s`, heard ? Date.parse(heard) : serverNow()];
    }
    return null;
  }

  // Live: "Live · PBX 10.1.1.5". Not live: the header says since when and why,
  // and every tile keeps its last state, dimmed, its time stopped.
  function renderHealth() {
    const down = notLive();
    const wasLive = live();
    frozenAt = down ? Math.min(down[1], frozenAt ?? Infinity, serverNow()) : null;
    banner.hidden = down == null;
    if (down) {
      setText($("stale-text"), `Not live since ${clockTime(new Date(frozenAt))}`);
      setText($("stale-detail"), down[0]);
    }
    const f = (model && model.feed) || {};
    let state = "connecting";
    let line = "Connecting…";
    if (lostSince) {
      [state, line] = ["lost", "Not live"];
    } else if (model) {
      const pbx = `PBX ${f.pbx_host || "?"}`;
      if (!down) [state, line] = ["live", `Live · ${pbx}`];
      else [state, line] = ["stale", `Not live · ${pbx}`];
    }
    document.body.dataset.live = state;
    setText($("feed-line"), line);
    if (wasLive !== live()) tickTimes(); // stop or restart the clocks now, not at the next second
  }

  // --- the model ---------------------------------------------------------

  const ENTITIES = { agents: "id", groups: "id", paths: "id", extensions: "dn" };

  function modelOf(doc) {
    const m = {
      version: doc.version, generated_at: doc.generated_at, stale: doc.stale,
      last_update: doc.last_update ?? null, feed: { ...doc.feed }, totals: doc.totals || {},
    };
    for (const [list, key] of Object.entries(ENTITIES)) {
      m[list] = new Map((doc[list] || []).map((e) => [String(e[key]), e]));
    }
    return m;
  }

  const showVersion = () => { document.body.dataset.version = String(model.version); };

  // Anything from the server: it is there, and its clock is sampled.
  function heard(doc) {
    lastData = Date.now();
    pollFailures = 0;
    const generated = Date.parse(doc.generated_at);
    if (!Number.isNaN(generated)) {
      // The smallest difference of a second is the one least delayed on the way.
      const second = Math.floor(lastData / 1000);
      const sample = lastData - generated;
      const last = skews[skews.length - 1];
      if (last && last[0] === second) last[1] = Math.min(last[1], sample);
      else skews = [...skews.slice(-9), [second, sample]];
    }
    if (lostSince) { lostSince = null; renderHealth(); }
  }

  // A whole document (a snapshot, or a poll's answer): replace the model, draw it all.
  function replace(doc) {
    model = modelOf(doc);
    renderHealth(); // first: whether timers run
    for (const [id, a] of model.agents) renderAgent(id, a);
    placeAgents();
    for (const [kind, list] of QUEUES) for (const [id, q] of model[list]) renderQueue(kind, id, q);
    placeQueues();
    renderTotals();
    showVersion();
  }

  function onSnapshot(doc) {
    heard(doc);
    fromServer(doc);
    replace(doc);
  }

  // Only what the delta holds is changed, and only that is drawn again.
  function onDelta(d) {
    heard(d);
    if (!model || !(d.from <= model.version)) { resync(); return; } // something was missed
    if (!(d.version > model.version)) return; // the model has all of it, and newer
    const staleBefore = model.stale;
    Object.assign(model, { version: d.version, generated_at: d.generated_at, stale: d.stale });
    if ("last_update" in d) model.last_update = d.last_update;
    if (d.feed) Object.assign(model.feed, d.feed);
    model.feed.stale = model.stale; // one flag, not always among the feed's changes
    if (d.feed || model.stale !== staleBefore) renderHealth();
    let agentsMoved = false;
    for (const [id, a] of Object.entries(d.agents || {})) {
      if (a == null) {
        agentsMoved = model.agents.delete(id) || agentsMoved;
      } else {
        agentsMoved = !model.agents.has(id) || agentsMoved;
        model.agents.set(id, a);
        agentsMoved = renderAgent(id, a) || agentsMoved;
      }
    }
    if (agentsMoved) placeAgents();
    let queuesMoved = false;
    for (const [kind, list] of QUEUES) {
      for (const [id, q] of Object.entries(d[list] || {})) {
        if (q == null) {
          queuesMoved = model[list].delete(id) || queuesMoved;
        } else {
          queuesMoved = queuesMoved || !model[list].has(id);
          model[list].set(id, q);
          renderQueue(kind, id, q);
        }
      }
    }
    if (queuesMoved) placeQueues();
    else if (onlyGroups && d.groups) showTitle(); // a group renamed
    for (const [dn, x] of Object.entries(d.extensions || {})) {
      if (x == null) model.extensions.delete(dn);
      else model.extensions.set(dn, x);
    }
    if (d.totals) model.totals = d.totals;
    if (d.totals || d.groups || d.paths || totalsDirty) renderTotals();
    showVersion();
  }

  // The feed went stale or fresh without any change of the floor.
  function onStale(s) {
    heard(s);
    if (!model) return; // a snapshot comes first
    Object.assign(model, { stale: s.stale, generated_at: s.generated_at });
    model.feed.stale = s.stale;
    renderHealth();
  }

  // A poll's answer never undoes a newer pushed state: versions only grow. Only
  // when every poll for a while answers older (a server whose clock went back)
  // does the board follow it.
  function onPolled(doc) {
    heard(doc);
    fromServer(doc);
    if (model && doc.version < model.version && ++pollsBehind < 3) return;
    pollsBehind = 0;
    replace(doc);
  }

  function lost(why) {
    if (!lostSince) lostSince = new Date(serverNow());
    lostWhy = why;
    renderHealth();
  }

  // --- polling -----------------------------------------------------------

  async function poll() {
    try {
      const response = await fetch(api("/api/v1/state"), {
        cache: "no-store", signal: AbortSignal.timeout(POLL_TIMEOUT_MS),
      });
      if (response.status === 401 || response.status === 403) {
        throw new Error("The server refused the board: check ?token= in its address");
      }
      if (!response.ok) throw new Error(`The server answered HTTP ${response.status}`);
      onPolled(await response.json());
    } catch (e) {
      pollFailures += 1; // one miss may be a server restart; two are an outage
      const why = e.name === "TimeoutError" ? "The server does not answer" : e instanceof TypeError ? "" : e.message;
      if (pollFailures >= 2) lost(why);
    }
  }
  function startPolling() {
    if (!polling) { polling = setInterval(poll, POLL_MS); poll(); }
  }
  function stopPolling() {
    clearInterval(polling);
    polling = null;
  }

  // --- the event stream --------------------------------------------------

  let source = null;
  let sseFailures = 0;
  let resyncing = null;   // timer of a fresh stream to open
  let lastFresh = 0;      // Date.now() the last fresh stream was opened for a resync

  function startEvents() {
    if (typeof EventSource !== "function") { startPolling(); return; }
    const es = new EventSource(api("/api/v1/events"));
    source = es;
    const on = (type, handle) => es.addEventListener(type, (event) => {
      if (es !== source) return; // from a stream given up
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        resync(); // an event that cannot be read is one missed
        return;
      }
      sseFailures = 0;
      pollsBehind = 0;
      stopPolling();
      handle(data);
    });
    on("snapshot", onSnapshot);
    on("delta", onDelta);
    on("stale", onStale);
    on("board_message", onMessage);
    es.onerror = () => {
      if (es !== source) return;
      sseFailures += 1;
      startPolling(); // keeps the board fed, and tells whether the server is gone
      if (sseFailures >= 3 || es.readyState === EventSource.CLOSED) {
        stopEvents();
        setTimeout(startEvents, SSE_RETRY_MS);
      }
    };
  }

  function stopEvents() {
    if (source) source.close();
    source = null;
  }

  // Deltas were missed: a new stream, without Last-Event-ID, starts with a
  // snapshot, and its deltas follow that snapshot on the same connection.
  function resync() {
    if (resyncing) return;
    stopEvents();
    resyncing = setTimeout(() => {
      resyncing = null;
      lastFresh = Date.now();
      startEvents();
    }, Math.max(0, lastFresh + RESYNC_MS - Date.now()));
  }

  // Once a second, on the server's second, so that every counter turns together.
  function tick() {
    setText($("clock"), clockTime(new Date(serverNow())));
    if (live()) tickTimes();
    if (!polling && lastData && Date.now() - lastData > SILENCE_MS) { lastData = Date.now(); poll(); }
    if (!live()) renderHealth(); // "no data for 45 s" counts on
    setTimeout(tick, 1005 - (serverNow() % 1000));
  }

  // --- what the page tells of itself -----------------------------------------

  // window.mitelacdBoard: the state of the alerts, the message line and the
  // board's version, for the tests and for a look from the browser's console.
  // The board writes it; writing to it changes nothing.
  const exposed = (window.mitelacdBoard = window.mitelacdBoard || {});

  // What a whole document (a snapshot, or a poll's answer) says besides the floor.
  function fromServer(doc) {
    upgrade.check(doc);
    messageLine.apply(doc);
  }

  // The message line was set or taken back (a `board_message` event): {message: {...} | null}.
  function onMessage(data) {
    heard(data);
    messageLine.apply(data);
  }

  // --- themes -------------------------------------------------------------------

  // ?theme=dark (the default), light (for a bright room) or contrast (black,
  // pure white and saturated colours with thick outlines, for weak eyes):
  // board.css holds each theme's colours. The browser is told whether the
  // page is light or dark (its scroll bars, its own controls).
  const THEMES = { dark: "dark", light: "light", contrast: "dark" }; // theme: its color-scheme
  const theme = Object.prototype.hasOwnProperty.call(THEMES, params.get("theme")) ? params.get("theme") : "dark";
  document.body.dataset.theme = theme;
  const scheme = document.querySelector('meta[name="color-scheme"]');
  if (scheme) scheme.content = THEMES[theme];

  // --- alerts -------------------------------------------------------------------

  // A queue of the view entering alarm flashes its card (board.css) and, with
  // ?sound=1, plays the alarm tone (alarm.wav, inside the page) at once and
  // every TONE_REPEAT_MS after, until someone acknowledges it with a click or
  // a key on the board, or until the queue leaves alarm. Acknowledged cards
  // stay in the alarm colour, steady; a queue entering alarm after that is
  // news again. Data that is not live plays no tone (board.css: nor flashes).
  const alerts = (() => {
    const tone = $("alarm-tone");
    const state = {
      sound: params.get("sound") === "1", alarmed: [], acknowledged: false, plays: 0, lastPlayError: null,
    };
    exposed.alerts = state;
    let acked = new Set(); // the queues in alarm someone acknowledged ("group:610")
    let repeating = null;  // interval of the tone

    tone.addEventListener("playing", () => { state.plays += 1; });

    function play() {
      if (!live()) return;
      tone.currentTime = 0;
      const started = tone.play();
      if (!started) return; // an older browser, which tells nothing
      started.then(
        () => { state.lastPlayError = null; },
        // Refused (a browser that plays nothing before a click on the page), or
        // cut short by the board itself (AbortError, not worth telling).
        (e) => { if (e.name !== "AbortError") state.lastPlayError = `${e.name}: ${e.message}`; },
      );
    }

    function ring() {
      clearInterval(repeating);
      repeating = null;
      if (!state.sound) return;
      repeating = setInterval(play, TIMERS.TONE_REPEAT_MS);
      play();
    }

    function silence() {
      clearInterval(repeating);
      repeating = null;
      if (!tone.paused) tone.pause();
    }

    const mark = () => {
      for (const [key, c] of cards) setData(c.root, { acknowledged: acked.has(key) ? "" : null });
    };

    // After the queues changed (renderTotals): which of the view are in alarm.
    function update() {
      const now = [];
      if (model) {
        for (const [kind, list] of QUEUES) {
          for (const [id, q] of model[list]) {
            if (shownQueue(kind, id) && levelOf(q) === "alarm") now.push(`${kind}:${id}`);
          }
        }
      }
      now.sort();
      const entered = now.some((key) => !state.alarmed.includes(key));
      acked = new Set(now.filter((key) => acked.has(key)));
      state.alarmed = now;
      state.acknowledged = now.length > 0 && acked.size === now.length;
      mark();
      if (!now.length) silence();
      else if (entered) ring();
    }

    function acknowledge() {
      if (!state.alarmed.length || state.acknowledged) return;
      acked = new Set(state.alarmed);
      state.acknowledged = true;
      mark();
      silence();
    }
    document.addEventListener("click", acknowledge);
    document.addEventListener("keydown", acknowledge);

    return { update };
  })();

  // --- the message line -----------------------------------------------------------

  // A line for the whole floor, set through the API (PUT /api/v1/message), in
  // a bright bar under the header: one line, cut with an ellipsis when too
  // long (the whole text in its tooltip). It goes when the server takes it
  // back, or when its `until` passes on the server's clock: the board takes
  // it down itself then, whether or not an event comes.
  const messageLine = (() => {
    const bar = $("message");
    let current = null; // {text, until: server time (ms) or null}
    let timer = null;
    exposed.message = null;

    function show() {
      clearTimeout(timer);
      timer = null;
      const left = current && current.until != null ? current.until - serverNow() : Infinity;
      const text = current && left > 0 ? current.text : null;
      bar.hidden = text == null;
      setText(bar, text ?? "");
      if (text == null) bar.removeAttribute("title");
      else if (bar.title !== text) bar.title = text;
      exposed.message = text;
      // Looked at again when it ends, and each minute before (the clocks' skew may move).
      if (text != null && left !== Infinity) timer = setTimeout(show, Math.min(left + 20, 60000));
    }

    // The `message` of a document or an event; one without it (an older
    // server) leaves the line as it is.
    function apply(doc) {
      if (!doc || typeof doc !== "object" || !("message" in doc)) return;
      const m = doc.message;
      const text = m && typeof m.text === "string" && m.text.trim() ? m.text : null;
      const until = m && m.until ? Date.parse(m.until) : NaN;
      current = text == null ? null : { text, until: Number.isNaN(until) ? null : until };
      show();
    }

    return { apply };
  })();

  // --- following an upgrade ---------------------------------------------------------

  // The page says which board it is (<meta name="mitelacd-board-version">),
  // the server's snapshots and states which board it serves (`board_version`).
  // A board left open across an upgrade of the daemon reloads itself when the
  // two differ, at most once per RELOAD_MS: the time of its last reload is kept
  // for the tab (sessionStorage), so that a server that keeps disagreeing can
  // never make it reload in a loop. Where that cannot be kept, it does not reload.
  const upgrade = (() => {
    const KEY = "mitelacd-board-reloaded-at";
    const mine = () => document.querySelector('meta[name="mitelacd-board-version"]')?.content || "";
    Object.defineProperty(exposed, "version", { get: () => mine() || null, enumerable: true, configurable: true });
    let served = ""; // what the server last said
    let later = null; // timer of a reload put off

    function reload() {
      later = null;
      if (!served || !mine() || served === mine()) return;
      try {
        const last = Number(sessionStorage.getItem(KEY)) || 0;
        const wait = last + TIMERS.RELOAD_MS - Date.now();
        if (wait > 0 && wait <= TIMERS.RELOAD_MS) { later = setTimeout(reload, wait); return; }
        sessionStorage.setItem(KEY, String(Date.now()));
      } catch {
        return;
      }
      location.reload();
    }

    function check(doc) {
      if (!doc || typeof doc.board_version !== "string") return;
      served = doc.board_version;
      if (!later) reload();
    }

    return { check };
  })();

  showTitle();
  tick();
  // The banner, the queue strip or the window changing size all change the room for tiles.
  new ResizeObserver(fit).observe(agentsBox);
  new ResizeObserver(fitQueues).observe(queuesBox);
  startEvents();
  if (todayOn) { refreshToday(); setInterval(refreshToday, TODAY_MS); }
})();
