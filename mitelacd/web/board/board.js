// mitelacd wall board: keeps a model of /api/v1/state fed by /api/v1/events
// (Server-Sent Events: a snapshot on connect, then deltas), falling back to
// polling /api/v1/state. Plain ES2020, no dependencies; text only via textContent.
//
// Views, chosen by the address: the whole floor (default); ?groups=610,620
// (those groups' cards and their agents; &paths=860 adds paths); ?view=queues
// (the cards alone, large); ?view=agents (the tiles alone). ?title= names the
// board, ?token= is the API's access token. Each tile and card has a small
// line of the day's figures from /api/v1/reports/today/*; ?today=0 hides it.
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
  const api = (path) => (token ? `${path}?token=${encodeURIComponent(token)}` : path);

  const $ = (id) => document.getElementById(id);
  const agentsBox = $("agents");
  const queuesBox = $("queues");
  const banner = $("stale-banner");
  document.body.dataset.view = view;
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
  const tiles = new Map(); // agent id -> {root, name, what, note, time, today, since, state, shown, ...}
  const cards = new Map(); // "group:610" -> {root, name, waiting, longest, agents, today}
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

  // [long, short] words for what the agent is doing.
  const ACTIVITY = {
    acd_call: ["ACD call", "ACD"], personal_call: ["Personal call", "Personal"],
    outgoing_call: ["Outgoing call", "Outgoing"], call: ["On a call", "Call"],
    hold: ["On hold", "On hold"], ringing: ["Ringing", "Ringing"],
  };

  // Make busy or DND ([long, short] name of the flag), with the site's reason
  // text, else the PBX's code.
  function reason([flag, short], code, text) {
    if (text) return [`${flag}: ${text}`, text];
    return code == null ? [flag, short] : [`${flag} ${code}`, `${short} ${code}`];
  }

  // The words of a tile, longest first: the first that fits is shown.
  function wordsOf(a, state) {
    const parts = []; // [long, short] each
    const activity = a.activity || "none";
    if (ACTIVITY[activity] && state !== "logged_out") parts.push(ACTIVITY[activity]);
    else parts.push([STATES[state], STATES[state]]);
    const held = callsOf(a).filter((c) => c.held).length || (a.on_hold ? 1 : 0);
    if (held && activity !== "hold") parts.push([`${held} on hold`, `+${held} held`]);
    if (a.ringing != null && activity !== "ringing") parts.push(["ringing", "ringing"]);
    if (a.make_busy) parts.push(reason(["Make busy", "Busy"], a.make_busy_reason, a.make_busy_reason_text));
    if (a.dnd) parts.push(reason(["DND", "DND"], a.dnd_reason, a.dnd_reason_text));
    // Not ready with nothing else going on: the reason says it all.
    if (state === "not_ready" && activity === "none" && parts.length > 1) parts.shift();
    const long = parts.map((p) => p[0]).join(" · ");
    const short = parts.map((p) => p[1]).join(" · ");
    return [long, short, parts[0][1]];
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
    t = {
      root, name: el("div", "a-name fits", root), what: el("div", "a-what fits", root),
      time: el("div", "a-time", root), note: el("div", "a-note", root),
      today: el("div", "a-today fits", root),
      since: null, state: null, shown: false, attention: null, confirmed: true, level: "",
    };
    tiles.set(id, t);
    showTodayOf(id, t);
    return t;
  }

  const shownAgent = (a) => !onlyGroups || (Array.isArray(a.groups) && a.groups.some((g) => onlyGroups.has(String(g))));

  const timeText = (t) => (t.since == null ? "" : duration((dataNow() - t.since) / 1000));

  // One agent's tile, created if new (placeAgents puts it on the page). Says
  // whether the agent came into or left this view.
  function renderAgent(id, a) {
    const t = agentTile(id);
    const state = stateOf(a);
    const confirmed = a.confirmed !== false;
    Object.assign(t, { state, confirmed, attention: a.attention || null });
    setData(t.root, {
      state, status: a.status, activity: a.activity || "none", calls: String(callsOf(a).length),
      onHold: String(Boolean(a.on_hold)), confirmed: String(confirmed), carried: String(Boolean(a.carried)),
    });
    setForms(t.name, namesOf(id, a), 700);
    const tooltip = a.name ? `${a.name} (${id})` : id;
    if (t.root.title !== tooltip) t.root.title = tooltip;
    setForms(t.what, wordsOf(a, state), 400);
    // What the PBX has not confirmed on this connection is not timed as if live.
    setText(t.note, confirmed ? "" : "Unconfirmed");
    const since = a.state_since ?? a.since;
    t.since = confirmed && since ? Date.parse(since) : null;
    setText(t.time, timeText(t));
    showLevel(t);
    const shown = shownAgent(a);
    const moved = shown !== t.shown;
    t.shown = shown;
    count(id, shown ? state : null);
    return moved;
  }

  // On the time, which changes on its own each second; board.css rings the tile.
  function showLevel(t) {
    const level = attentionOf(t);
    if (level !== t.level) { t.level = level; setData(t.time, { level: level || null }); }
  }

  // The tiles of the model's agents in this view, in id order: after agents came or went.
  function placeAgents() {
    for (const id of [...tiles.keys()]) {
      if (!model.agents.has(id)) { tiles.delete(id); count(id, null); }
    }
    // ?view=queues counts the agents, and draws none of them.
    const ids = view === "queues" ? [] : [...tiles.keys()].filter((id) => tiles.get(id).shown).sort(byId);
    const resized = agentsBox.children.length !== ids.length;
    order(agentsBox, ids.map((id) => tiles.get(id).root));
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

  // --- the grid of tiles -------------------------------------------------

  // A tile in units of its smallest text (--u): name 1.2 high, one line of
  // words and time, a little padding; wide enough for "Available 00:00".
  const TILE_H = 2.72;
  const TILE_W = 7.4;
  const PAD_X = 0.38; // board.css .agent padding, in --u
  const LINE = 1.12;  // board.css .agent line-height
  // The line of the day's figures: smaller than the words, 20 design pixels at least.
  const TODAY_SCALE = 0.8;
  const scale = () => Math.min(innerWidth / 1920, innerHeight / 1080);

  // The largest text that lets every tile of the view fit the room there is,
  // 20 design pixels at least (the grid scrolls past that) and 44 at most.
  // The line of the day's figures is left out where tiles with it would need
  // text smaller than that.
  function fit() {
    if (view === "queues") return;
    const n = Math.max(agentsBox.children.length, 1);
    const cs = getComputedStyle(agentsBox);
    const W = agentsBox.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
    const H = agentsBox.clientHeight - parseFloat(cs.paddingTop) - parseFloat(cs.paddingBottom);
    const s = scale();
    const least = 20 * s;
    const gap = Math.max(3, Math.round(6 * s));
    const largest = (withToday) => {
      let best = 0;
      for (let cols = 1; cols <= n; cols++) {
        const rows = Math.ceil(n / cols);
        const w = (W - gap * (cols - 1)) / cols;
        const h = (H - gap * (rows - 1)) / rows;
        let unit = Math.min(w / TILE_W, h / (TILE_H + (withToday ? LINE * TODAY_SCALE : 0)));
        // Past its smallest size, the today line is 20 design pixels whatever the unit.
        if (withToday && TODAY_SCALE * unit < least) unit = Math.min(w / TILE_W, (h - LINE * least) / TILE_H);
        best = Math.max(best, unit);
      }
      return best;
    };
    let withToday = hasToday() && live();
    let unit = largest(withToday);
    if (withToday && unit < least) { withToday = false; unit = largest(false); }
    unit = Math.floor(Math.min(unit, 44 * s) * 10) / 10;
    const scrolls = unit < least;
    if (scrolls) unit = least;
    const todaySize = withToday ? Math.max(least, TODAY_SCALE * unit) : 0;
    const tileH = TILE_H + (LINE * todaySize) / unit; // in units
    // As few columns as let the rows fit (wide tiles have room for more words),
    // yet no tile twice as wide as it needs.
    const across = (width) => Math.floor((W + gap) / (width * unit + gap));
    const down = Math.max(1, Math.floor((H + gap) / (tileH * unit + gap)));
    const cols = Math.max(1, Math.min(n, across(TILE_W), Math.max(Math.ceil(n / down), across(2 * TILE_W) + 1)));
    const rows = Math.ceil(n / cols);
    const row = Math.min((H - gap * (rows - 1)) / rows, tileH * unit * 1.4);
    const width = (W - gap * (cols - 1)) / cols - 2 * PAD_X * unit;
    const time = emWidth("00:00", 700);
    const st = agentsBox.style;
    st.setProperty("--cols", cols);
    st.setProperty("--row", `${Math.floor(Math.max(row, tileH * unit))}px`);
    st.setProperty("--unit", `${unit}px`);
    st.setProperty("--gap", `${gap}px`);
    st.setProperty("--name-room", (width / (1.2 * unit)).toFixed(3));
    st.setProperty("--what-room", (width / unit - time - 0.4).toFixed(3));
    if (withToday) {
      st.setProperty("--today-size", `${todaySize}px`);
      st.setProperty("--today-room", (width / todaySize).toFixed(3));
    }
    setData(agentsBox, { today: withToday ? "" : null });
    agentsBox.classList.toggle("scrolls", scrolls);
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
  // never on a push: each tile and card gets a quiet line of the day so far.
  // A server without them (an older daemon) or one that refuses them leaves
  // the line out. While the board is not live the line gives its room to the
  // banner (board.css hides the cards'); a server out of reach keeps the
  // figures it gave, for when it is back.
  const TODAY_KINDS = { agents: view !== "queues", paths: view !== "agents", groups: view !== "agents" };
  const hasToday = () => todayOn && today.agents != null;

  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
  // An average: "2:08", past an hour "1h05".
  const minutes = (s) => {
    s = Math.max(0, Math.round(s));
    return s < 3600 ? `${Math.floor(s / 60)}:${pad(s % 60)}` : `${Math.floor(s / 3600)}h${pad(Math.floor(s / 60) % 60)}`;
  };
  const hhmm = (iso) => {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? null : `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  };
  const whole = (v) => (Number.isFinite(v) ? Math.max(0, Math.round(v)) : null);

  // [long, short] words of the ACD calls and their average talk, or null for none.
  function callsToday(f) {
    const calls = whole(f.acd_calls) ?? 0;
    if (!calls) return null;
    const average = Number.isFinite(f.acd_talk_average_seconds) ? minutes(f.acd_talk_average_seconds) : null;
    return [plural(calls, "call", "calls"), average];
  }

  // [long, middle, short] words of a queue's peak, or null for none.
  function peakOf(f) {
    const peak = whole(f.max_waiting);
    if (!peak) return null;
    const at = f.max_waiting_at ? hhmm(f.max_waiting_at) : null;
    return at
      ? [`peak ${peak} waiting at ${at}`, `peak ${peak} at ${at}`, `peak ${peak}`]
      : [`peak ${peak} waiting`, `peak ${peak}`, `peak ${peak}`];
  }

  // An agent's line, longest form first: "today: 12 calls · avg 2:08".
  function agentToday(f) {
    const calls = callsToday(f || {});
    if (!calls) return ["today: no calls", "no calls"];
    const [n, average] = calls;
    if (!average) return [`today: ${n}`, n];
    return [`today: ${n} · avg ${average}`, `${n} · avg ${average}`, `${n} · ${average}`, n];
  }

  // A path's line ("today: 40 calls · avg 2:31 · peak 5 waiting at 10:42") or
  // a group's ("today: peak 5 waiting at 10:42"), longest form first.
  function queueToday(kind, f) {
    f = f || {};
    const peak = peakOf(f);
    if (kind === "group") {
      return peak ? [`today: ${peak[0]}`, `today: ${peak[1]}`, `today: ${peak[2]}`, peak[2]] : ["today: none waited", "none waited"];
    }
    // Beside the figures of now, "today" matters more than the peak's time.
    const calls = callsToday(f);
    const n = calls ? calls[0] : "no calls";
    const talk = calls && calls[1] ? [`${n} · avg ${calls[1]}`, `${n} · ${calls[1]}`] : [n, n];
    const short = [`today: ${talk[0]}`, `today: ${talk[1]}`, talk[0], talk[1], n];
    if (!peak) return short;
    return [`today: ${talk[0]} · ${peak[0]}`, `today: ${talk[0]} · ${peak[1]}`, `today: ${talk[0]} · ${peak[2]}`, ...short];
  }

  function showTodayOf(id, t) {
    setForms(t.today, hasToday() ? agentToday(today.agents.get(id)) : [], 400);
  }

  function showTodayOfQueue(kind, id, c) {
    const figures = todayOn ? today[`${kind}s`] : null;
    setForms(c.today, figures ? queueToday(kind, figures.get(id)) : [], 400);
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
    } else {
      const cardKind = kind === "paths" ? "path" : "group";
      for (const [key, c] of cards) {
        const [k, id] = key.split(/:(.*)/s);
        if (k === cardKind) showTodayOfQueue(k, id, c);
      }
    }
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
    c = { root, name, waiting: field("waiting", "waiting"), longest: field("longest", "longest") };
    c.agents = field("agents", "agents");
    c.today = el("div", "q-today fits", root);
    cards.set(key, c);
    showTodayOfQueue(kind, id, c);
    return c;
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
    setText(c.agents, q.agents_logged_in == null ? "–" : String(q.agents_logged_in));
    setText(c.longest, mmss(q.longest_wait_seconds));
    setData(c.root, { level: levelOf(q) || null });
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
    }
    totalsDirty = false;
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
  }

  // --- feed health: the header, the banner, what is live -------------------

  // [text of the banner, server time (ms) the data stopped being live], or null while live.
  function notLive() {
    const f = (model && model.feed) || {};
    if (lostSince) {
      const why = lostWhy ? `${lostWhy}. ` : "";
      return [`Board lost contact with the server since ${clockTime(lostSince)}`, `${why}Figures are not live.`, lostSince.getTime()];
    }
    if (!model) return null;
    if (!f.connected) {
      const since = f.disconnected_since;
      const text = since ? `PBX feed disconnected since ${hms(since)}` : "PBX feed not connected";
      const why = f.disconnect_reason ? `${f.disconnect_reason.replace(/\.+$/, "")}. ` : "";
      return [text, `${why}Figures are as of then, not live.`, since ? Date.parse(since) : serverNow()];
    }
    if (model.stale ?? f.stale) {
      const heard = f.last_record_at || f.connected_since;
      const text = heard ? `No data from the PBX since ${hms(heard)}` : "No data from the PBX yet";
      return [text, "Figures are as of then, not live.", heard ? Date.parse(heard) : serverNow()];
    }
    return null;
  }

  function renderHealth() {
    const down = notLive();
    const wasLive = live();
    frozenAt = down ? Math.min(down[2], frozenAt ?? Infinity, serverNow()) : null;
    banner.hidden = down == null;
    if (down) { setText($("stale-text"), down[0]); setText($("stale-detail"), down[1]); }
    const f = (model && model.feed) || {};
    let state = "connecting";
    let line = "Connecting…";
    if (lostSince) {
      [state, line] = ["lost", `Not live: no server since ${clockTime(lostSince)}`];
    } else if (model) {
      const pbx = `PBX ${f.pbx_host || "?"}`;
      if (!down) [state, line] = ["live", `Live · ${pbx}`];
      else if (!f.connected) [state, line] = ["stale", `Not live: ${pbx} disconnected`];
      else [state, line] = ["stale", `Not live: ${pbx} silent`];
    }
    document.body.dataset.live = state;
    setText($("feed-line"), line);
    if (wasLive !== live()) {
      tickTimes(); // stop or restart the clocks now, not at the next second
      fit(); // the tiles' line of the day goes or comes back
    }
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
    if (lostSince) renderHealth();
    setTimeout(tick, 1005 - (serverNow() % 1000));
  }
  showTitle();
  tick();
  // The banner, the queue strip or the window changing size all change the room for tiles.
  new ResizeObserver(fit).observe(agentsBox);
  new ResizeObserver(fitQueues).observe(queuesBox);
  startEvents();
  if (todayOn) { refreshToday(); setInterval(refreshToday, TODAY_MS); }
})();
