// mitelacd wall board: keeps a model of /api/v1/state fed by /api/v1/events
// (Server-Sent Events: a snapshot on connect, then deltas), falling back to
// polling /api/v1/state. Plain ES2020, no dependencies; text only via textContent.
"use strict";
(() => {
  const POLL_MS = 2000;          // polling period when SSE is unavailable or failing
  const SSE_RETRY_MS = 30000;    // how soon a given-up EventSource is tried again
  const SILENCE_MS = 30000;      // no data for this long: check the server with a poll
  const RESYNC_MS = 1000;        // at least this long between two fresh event streams

  const params = new URLSearchParams(location.search);
  const token = params.get("token");
  const only = (name) => {
    const raw = params.get(name);
    return raw ? new Set(raw.split(",").map((s) => s.trim()).filter(Boolean)) : null;
  };
  const onlyGroups = only("groups");
  const onlyPaths = only("paths");
  const api = (path) => (token ? `${path}?token=${encodeURIComponent(token)}` : path);

  const $ = (id) => document.getElementById(id);
  const agentsBox = $("agents");
  const queuesBox = $("queues");
  const banner = $("stale-banner");
  const title = params.get("title");
  if (title) { $("title").textContent = title; document.title = title; }

  // The floor as the server last told it: the /api/v1/state document with its
  // lists turned into Maps keyed by id, kept up to date by deltas.
  let model = null;
  let skews = [];         // [second, browser clock minus server clock (ms)]: best of each second
  let lostSince = null;   // Date the page lost the server, or null
  let lostWhy = "";       // what the server said, if it answered at all
  let lastData = 0;       // Date.now() of the last document or event received
  let polling = null;     // interval id while polling
  let pollFailures = 0;   // failed polls in a row
  let pollsBehind = 0;    // poll answers in a row older than the model
  const tiles = new Map(); // agent id -> {root, what, ext, count, note, time, since}
  const cards = new Map(); // "group:610" -> {root, waiting, longest, agents}

  // --- formatting --------------------------------------------------------

  const pad = (n) => String(n).padStart(2, "0");
  const mmss = (s) => (s == null ? "–" : `${pad(Math.floor(s / 60))}:${pad(s % 60)}`);
  const duration = (s) => {
    s = Math.max(0, Math.floor(s));
    const h = Math.floor(s / 3600);
    return h ? `${h}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}` : mmss(s);
  };
  const clockTime = (d) => `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const hms = (iso) => clockTime(new Date(iso));
  const skew = () => (skews.length ? Math.min(...skews.map((s) => s[1])) : 0);
  const serverNow = () => Date.now() - skew();

  const ACTIVITY = {
    ringing: "Ringing", hold: "On hold", acd_call: "ACD call", personal_call: "Personal call",
    outgoing_call: "Outgoing call", call: "Call",
  };
  const STATUS = {
    out: ["out", "Logged out"], idle: ["avail", "Available"],
    in: ["avail", "Logged in"], timer: ["wrap", "Wrap-up"],
  };

  const callsOf = (a) => (Array.isArray(a.calls) ? a.calls : []);
  // A reason is the PBX's code, shown as sent.
  const withReason = (name, reason) => (reason == null ? name : `${name} ${reason}`);

  // [tone for the colour, words for the tile]
  function describe(a) {
    if (STATUS[a.status]) return STATUS[a.status];
    const activity = a.activity || "none";
    const words = [];
    if (ACTIVITY[activity]) words.push(ACTIVITY[activity]);
    if (a.on_hold && activity !== "hold") {
      // Talking on one call while others wait on hold.
      words.push(`${callsOf(a).filter((c) => c.held).length || 1} on hold`);
    }
    if (a.ringing != null && activity !== "ringing") words.push("ringing");
    if (a.make_busy) words.push(withReason("Make busy", a.make_busy_reason));
    if (a.dnd) words.push(withReason("DND", a.dnd_reason));
    const aside = activity === "none" && (a.dnd || a.make_busy); // busy by choice, not on a call
    const tone = activity === "ringing" ? "ring" : aside ? "aux" : "call";
    return [tone, words.join(" · ") || "Busy"];
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
  const setData = (node, values) => {
    for (const [k, v] of Object.entries(values)) if (node.dataset[k] !== v) node.dataset[k] = v;
  };

  // Put `nodes` into `box` in this order, moving only what is out of place.
  function order(box, nodes) {
    nodes.forEach((node, i) => {
      if (box.children[i] !== node) box.insertBefore(node, box.children[i] || null);
    });
    while (box.children.length > nodes.length) box.lastChild.remove();
  }

  // --- agents ------------------------------------------------------------

  function agentTile(id) {
    let t = tiles.get(id);
    if (t) return t;
    const root = el("div", "agent");
    root.dataset.agent = id;
    el("div", "a-id", root, id);
    const what = el("div", "a-what", root);
    const bot = el("div", "a-bot", root);
    t = { root, what, since: null, ext: el("span", "a-ext", bot), count: el("span", "a-calls", bot) };
    t.note = el("span", "a-note", bot);
    t.time = el("span", "a-time", bot);
    tiles.set(id, t);
    return t;
  }

  const timeText = (t, now) => (t.since == null ? "" : duration((now - t.since) / 1000));

  // One agent's tile, created if new (placeAgents puts it on the page).
  function renderAgent(id, a) {
    const t = agentTile(id);
    const [tone, words] = describe(a);
    const confirmed = a.confirmed !== false;
    const calls = callsOf(a).length;
    setData(t.root, {
      status: a.status, activity: a.activity || "none", tone, calls: String(calls),
      onHold: String(Boolean(a.on_hold)), confirmed: String(confirmed), carried: String(Boolean(a.carried)),
    });
    setText(t.count, calls > 1 ? `${calls} calls` : "");
    if (t.what.textContent !== words) {
      t.what.textContent = words;
      t.what.style.setProperty("--fit", Math.min(1, 11 / words.length).toFixed(2));
    }
    setText(t.ext, a.extension ? `x${a.extension}` : "");
    // What the PBX has not confirmed on this connection is not timed as if live.
    setText(t.note, confirmed ? "" : "Unconfirmed");
    t.since = confirmed && a.since ? Date.parse(a.since) : null;
    setText(t.time, timeText(t, serverNow()));
  }

  // The tiles of the model's agents in id order: after agents came or went.
  function placeAgents() {
    const ids = [...model.agents.keys()].sort(byId);
    for (const id of [...tiles.keys()]) if (!model.agents.has(id)) tiles.delete(id);
    const resized = agentsBox.children.length !== ids.length;
    order(agentsBox, ids.map((id) => tiles.get(id).root));
    // One size for every id, small enough for the longest.
    const longest = Math.max(4, ...ids.map((id) => id.length));
    agentsBox.style.setProperty("--idfit", Math.min(1, 5.5 / longest).toFixed(2));
    if (resized) fit();
  }

  function tickTimes() {
    const now = serverNow();
    for (const t of tiles.values()) setText(t.time, timeText(t, now));
  }

  // Columns and tile size so that every agent fits the screen without scrolling.
  function fit() {
    const n = Math.max(tiles.size, 1);
    const cs = getComputedStyle(agentsBox);
    const W = agentsBox.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
    const H = agentsBox.clientHeight - parseFloat(cs.paddingTop) - parseFloat(cs.paddingBottom);
    const gap = Math.max(4, Math.round(W / 220));
    let best = { unit: 0, cols: 1, row: H };
    for (let cols = 1; cols <= n; cols++) {
      const rows = Math.ceil(n / cols);
      const w = (W - gap * (cols - 1)) / cols;
      const row = Math.min((H - gap * (rows - 1)) / rows, w * 0.75);
      const unit = Math.min(w / 9, row / 4.5);
      if (unit > best.unit) best = { unit, cols, row };
    }
    const s = agentsBox.style;
    s.setProperty("--cols", best.cols);
    s.setProperty("--row", `${Math.floor(best.row)}px`);
    s.setProperty("--unit", `${best.unit.toFixed(1)}px`);
    s.setProperty("--gap", `${gap}px`);
  }

  // --- groups, paths, totals ---------------------------------------------

  const QUEUES = [["group", "groups"], ["path", "paths"]]; // [kind, list of the model]
  const shown = (kind, id) => {
    const filter = kind === "group" ? onlyGroups : onlyPaths;
    return !filter || filter.has(id);
  };

  function queueCard(kind, id) {
    const key = `${kind}:${id}`;
    let c = cards.get(key);
    if (c) return c;
    const root = el("div", `queue ${kind}`);
    root.dataset[kind] = id;
    el("div", "q-name", root, `${kind === "group" ? "Group" : "Path"} ${id}`);
    const field = (name, label) => {
      const box = el("div", null, root);
      const value = el("b", null, box, "–");
      value.dataset.field = name;
      el("span", null, box, label);
      return value;
    };
    c = { root, waiting: field("waiting", "waiting"), longest: field("longest", "longest") };
    c.agents = field("agents", "agents");
    cards.set(key, c);
    return c;
  }

  // One group's or path's card, created if new (placeQueues puts it on the page).
  function renderQueue(kind, id, q) {
    if (!shown(kind, id)) return;
    const c = queueCard(kind, id);
    setText(c.waiting, q.waiting == null ? "–" : String(q.waiting));
    setText(c.agents, q.agents_logged_in == null ? "–" : String(q.agents_logged_in));
    setText(c.longest, mmss(q.longest_wait_seconds));
    if (c.root.classList.contains("hot") !== q.waiting > 0) c.root.classList.toggle("hot");
  }

  // The cards of the model's groups, then paths, in id order: after queues came or went.
  function placeQueues() {
    const keys = [];
    for (const [kind, list] of QUEUES) {
      for (const id of [...model[list].keys()].sort(byId)) {
        if (shown(kind, id)) keys.push(`${kind}:${id}`);
      }
    }
    const wanted = new Set(keys);
    for (const key of [...cards.keys()]) if (!wanted.has(key)) cards.delete(key);
    const resized = queuesBox.children.length !== keys.length;
    order(queuesBox, keys.map((key) => cards.get(key).root));
    if (resized) fit();
  }

  function renderTotals() {
    const t = model.totals || {};
    const by = t.agents || {};
    const values = {
      waiting: t.waiting, longest: t.longest_wait_seconds == null ? null : mmss(t.longest_wait_seconds),
      logged_in: t.logged_in, in: by.in, idle: by.idle, busy: by.busy, timer: by.timer, out: by.out,
    };
    for (const node of document.querySelectorAll("[data-total]")) {
      const v = values[node.dataset.total];
      setText(node, v == null ? "–" : String(v));
    }
    const hot = (t.waiting || 0) > 0;
    for (const box of document.querySelectorAll(".t-waiting, .t-longest")) {
      if (box.classList.contains("hot") !== hot) box.classList.toggle("hot");
    }
  }

  // --- feed health and the banner ----------------------------------------

  function renderHealth() {
    let text = null;
    let detail = "Figures below may be out of date.";
    const f = (model && model.feed) || {};
    if (lostSince) {
      text = `Board lost contact with the server since ${clockTime(lostSince)}`;
      if (lostWhy) detail = `${lostWhy}. ${detail}`;
    } else if (model && !f.connected) {
      const since = f.disconnected_since;
      text = since ? `PBX feed disconnected since ${hms(since)}` : "PBX feed not connected";
      if (f.disconnect_reason) detail = `${f.disconnect_reason.replace(/\.+$/, "")}. ${detail}`;
    } else if (model && (model.stale ?? f.stale)) {
      const heard = f.last_record_at || f.connected_since;
      text = heard ? `No data from the PBX since ${hms(heard)}` : "No data from the PBX yet";
    }
    banner.hidden = text == null;
    document.body.classList.toggle("degraded", text != null);
    if (text != null) { setText($("stale-text"), text); setText($("stale-detail"), detail); }
    let line = "Connecting…";
    if (model) {
      line = `PBX ${f.pbx_host || "?"} · ${f.connected ? "connected" : "not connected"}`;
      if (f.last_record_at) line += ` · last record ${hms(f.last_record_at)}`;
    }
    setText($("feed-line"), line);
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
    for (const [id, a] of model.agents) renderAgent(id, a);
    placeAgents();
    for (const [kind, list] of QUEUES) for (const [id, q] of model[list]) renderQueue(kind, id, q);
    placeQueues();
    renderTotals();
    renderHealth();
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
    let agentsMoved = false;
    for (const [id, a] of Object.entries(d.agents || {})) {
      if (a == null) {
        agentsMoved = model.agents.delete(id) || agentsMoved;
      } else {
        agentsMoved = agentsMoved || !model.agents.has(id);
        model.agents.set(id, a);
        renderAgent(id, a);
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
    for (const [dn, x] of Object.entries(d.extensions || {})) {
      if (x == null) model.extensions.delete(dn);
      else model.extensions.set(dn, x);
    }
    if (d.totals) { model.totals = d.totals; renderTotals(); }
    if (d.feed) Object.assign(model.feed, d.feed);
    model.feed.stale = model.stale; // one flag, not always among the feed's changes
    if (d.feed || model.stale !== staleBefore) renderHealth();
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
      const response = await fetch(api("/api/v1/state"), { cache: "no-store" });
      if (response.status === 401 || response.status === 403) {
        throw new Error("The server refused the board: check ?token= in its address");
      }
      if (!response.ok) throw new Error(`The server answered HTTP ${response.status}`);
      onPolled(await response.json());
    } catch (e) {
      pollFailures += 1; // one miss may be a server restart; two are an outage
      if (pollFailures >= 2) lost(e instanceof TypeError ? "" : e.message);
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
    tickTimes();
    if (!polling && lastData && Date.now() - lastData > SILENCE_MS) { lastData = Date.now(); poll(); }
    if (lostSince) renderHealth();
    setTimeout(tick, 1005 - (serverNow() % 1000));
  }
  tick();
  // The banner, the queue strip or the window changing size all change the room for tiles.
  new ResizeObserver(fit).observe(agentsBox);
  startEvents();
})();
