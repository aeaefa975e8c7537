// mitelacd wall board: renders /api/v1/state, kept live by /api/v1/events (SSE),
// falling back to polling. Plain ES2020, no dependencies; text only via textContent.
"use strict";
(() => {
  const POLL_MS = 2000;          // polling period when SSE is unavailable or failing
  const SSE_RETRY_MS = 30000;    // how soon a given-up EventSource is tried again
  const SILENCE_MS = 30000;      // no data for this long: check the server with a poll

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

  let state = null;       // last rendered document
  let skews = [];         // browser clock minus server clock (ms), recent samples
  let lostSince = null;   // Date the page lost the server, or null
  let lostWhy = "";       // what the server said, if it answered at all
  let lastData = 0;       // Date.now() of the last document received
  let polling = null;     // interval id while polling
  let pollFailures = 0;   // failed polls in a row
  const tiles = new Map(); // agent id -> {root, id, time, what, ext, since}
  const cards = new Map(); // "group:610" -> {root, fields}

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
  const skew = () => (skews.length ? Math.min(...skews) : 0);
  const serverNow = () => Date.now() - skew();

  const ACTIVITY = {
    ringing: "Ringing", acd_call: "ACD call", personal_call: "Personal call",
    outgoing_call: "Outgoing call", call: "Call",
  };
  const STATUS = {
    out: ["out", "Logged out"], idle: ["avail", "Available"],
    in: ["avail", "Logged in"], timer: ["wrap", "Wrap-up"],
  };

  // [tone for the colour, words for the tile]
  function describe(a) {
    if (STATUS[a.status]) return STATUS[a.status];
    const words = [];
    if (a.on_hold) words.push("Hold");
    else if (ACTIVITY[a.activity]) words.push(ACTIVITY[a.activity]);
    if (a.make_busy) {
      words.push(a.make_busy_reason == null ? "Make busy" : `Make busy (reason ${a.make_busy_reason})`);
    }
    if (a.dnd) words.push("DND");
    const onCall = a.on_hold || (a.activity && a.activity !== "none");
    const aside = !onCall && (a.dnd || a.make_busy); // busy by choice, not on a call
    const tone = a.activity === "ringing" && !a.on_hold ? "ring" : aside ? "aux" : "call";
    return [tone, words.join(" · ") || "Busy"];
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
    t = { root, what, since: null, ext: el("span", "a-ext", bot), time: el("span", "a-time", bot) };
    tiles.set(id, t);
    return t;
  }

  function renderAgents(agents) {
    const seen = new Set();
    const nodes = agents.map((a) => {
      const id = String(a.id);
      seen.add(id);
      const t = agentTile(id);
      const [tone, words] = describe(a);
      const confirmed = String(a.confirmed !== false);
      Object.assign(t.root.dataset, { status: a.status, activity: a.activity || "none", tone, confirmed });
      if (t.what.textContent !== words) {
        t.what.textContent = words;
        t.what.style.setProperty("--fit", Math.min(1, 11 / words.length).toFixed(2));
      }
      setText(t.ext, a.extension ? `x${a.extension}` : "");
      t.since = a.since ? Date.parse(a.since) : null;
      return t.root;
    });
    for (const id of [...tiles.keys()]) if (!seen.has(id)) tiles.delete(id);
    const resized = agentsBox.children.length !== nodes.length;
    order(agentsBox, nodes);
    // One size for every id, small enough for the longest.
    const longest = Math.max(4, ...[...tiles.keys()].map((id) => id.length));
    agentsBox.style.setProperty("--idfit", Math.min(1, 5.5 / longest).toFixed(2));
    if (resized) fit();
  }

  function tickTimes() {
    const now = serverNow();
    for (const t of tiles.values()) {
      setText(t.time, t.since == null ? "" : duration((now - t.since) / 1000));
    }
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

  function renderQueues(groups, paths) {
    const nodes = [];
    const seen = new Set();
    const add = (kind, list, filter) => {
      for (const q of list || []) {
        const id = String(q.id);
        if (filter && !filter.has(id)) continue;
        const c = queueCard(kind, id);
        seen.add(`${kind}:${id}`);
        setText(c.waiting, q.waiting == null ? "–" : String(q.waiting));
        setText(c.agents, q.agents_logged_in == null ? "–" : String(q.agents_logged_in));
        setText(c.longest, mmss(q.longest_wait_seconds));
        c.root.classList.toggle("hot", q.waiting > 0);
        nodes.push(c.root);
      }
    };
    add("group", groups, onlyGroups);
    add("path", paths, onlyPaths);
    for (const key of [...cards.keys()]) if (!seen.has(key)) cards.delete(key);
    const resized = queuesBox.children.length !== nodes.length;
    order(queuesBox, nodes);
    if (resized) fit();
  }

  function renderTotals(s) {
    const t = s.totals || {};
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
      box.classList.toggle("hot", hot);
    }
  }

  // --- feed health and the banner ----------------------------------------

  function renderHealth() {
    let text = null;
    let detail = "Figures below may be out of date.";
    const f = (state && state.feed) || {};
    if (lostSince) {
      text = `Board lost contact with the server since ${clockTime(lostSince)}`;
      if (lostWhy) detail = `${lostWhy}. ${detail}`;
    } else if (state && !f.connected) {
      const since = f.disconnected_since;
      text = since ? `PBX feed disconnected since ${hms(since)}` : "PBX feed not connected";
      if (f.disconnect_reason) detail = `${f.disconnect_reason.replace(/\.+$/, "")}. ${detail}`;
    } else if (state && (state.stale ?? f.stale)) {
      const heard = f.last_record_at || f.connected_since;
      text = heard ? `No data from the PBX since ${hms(heard)}` : "No data from the PBX yet";
    }
    banner.hidden = text == null;
    document.body.classList.toggle("degraded", text != null);
    if (text != null) { setText($("stale-text"), text); setText($("stale-detail"), detail); }
    let line = "Connecting…";
    if (state) {
      line = `PBX ${f.pbx_host || "?"} · ${f.connected ? "connected" : "not connected"}`;
      if (f.last_record_at) line += ` · last record ${hms(f.last_record_at)}`;
    }
    setText($("feed-line"), line);
  }

  // --- receiving documents -----------------------------------------------

  function accept(s) {
    lastData = Date.now();
    lostSince = null;
    pollFailures = 0;
    const generated = Date.parse(s.generated_at);
    if (!Number.isNaN(generated)) skews = [...skews.slice(-9), lastData - generated];
    // A late poll answer must not undo a newer SSE document (a restarted server starts at 0).
    if (state && s.version < state.version && generated <= Date.parse(state.generated_at)) return;
    state = s;
    renderAgents(s.agents || []);
    renderQueues(s.groups, s.paths);
    renderTotals(s);
    renderHealth();
    tickTimes();
    document.body.dataset.version = String(s.version);
  }

  function lost(why) {
    if (!lostSince) lostSince = new Date(serverNow());
    lostWhy = why;
    renderHealth();
  }

  async function poll() {
    try {
      const response = await fetch(api("/api/v1/state"), { cache: "no-store" });
      if (response.status === 401 || response.status === 403) {
        throw new Error("The server refused the board: check ?token= in its address");
      }
      if (!response.ok) throw new Error(`The server answered HTTP ${response.status}`);
      accept(await response.json());
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

  let source = null;
  let sseFailures = 0;
  function startEvents() {
    if (typeof EventSource !== "function") { startPolling(); return; }
    source = new EventSource(api("/api/v1/events"));
    source.addEventListener("state", (event) => {
      sseFailures = 0;
      stopPolling();
      accept(JSON.parse(event.data));
    });
    source.onerror = () => {
      sseFailures += 1;
      startPolling(); // keeps the board fed, and tells whether the server is gone
      if (sseFailures >= 3 || source.readyState === EventSource.CLOSED) {
        source.close();
        source = null;
        setTimeout(startEvents, SSE_RETRY_MS);
      }
    };
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
