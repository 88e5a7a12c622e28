// Hoist dashboard: a client of the controller's JSON API (/v1/...), served by the controller
// itself from files compiled into its binary. Plain JavaScript, no build step, no framework.
//
// It polls the view on screen at most once a second (paused while the tab is hidden) and, when
// the controller serves the event stream (GET /v1/events, found in /v1/openapi.json), refreshes
// on events instead, with a slow safety poll. Routes the controller does not serve are never
// requested: a failed request is a console error in a browser. Markup is built with DOM calls
// only (the Content-Security-Policy forbids inline script and style); tables are keyed so that a
// refresh of 1,000 services touches only the rows that changed.
"use strict";

(() => {
  const POLL_MS = 1000; // the most often a view is fetched
  const STREAM_POLL_MS = 5000; // safety poll while the event stream is live
  const MAX_EVENTS = 200;
  const BACKLOG_MS = 15 * 60 * 1000; // events shown when the page opens
  const EVENTS_PATH = "/v1/events";
  const AUTOSCALE_PATH = "/v1/services/{name}/autoscale";

  const $ = (id) => document.getElementById(id);

  // ---------- small DOM helpers ----------

  // el("td", {class: "x", title: "t"}, child, "text", ...)
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, ...children) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") e.textContent = v;
      else e.setAttribute(k, String(v));
    }
    for (const c of children) e.append(c);
    return e;
  }

  function badge(text, cls) {
    return el("span", { class: "badge " + cls }, text);
  }

  // ---------- formatting ----------

  function pad(n) {
    return String(n).padStart(2, "0");
  }

  function clock(ms) {
    if (!ms) return "—";
    const d = new Date(ms);
    const now = new Date();
    const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    if (d.toDateString() === now.toDateString()) return time;
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
  }

  function ago(ms) {
    if (ms === null || ms === undefined) return "never";
    const s = Math.round(ms / 1000);
    if (s < 120) return `${s}s ago`;
    if (s < 7200) return `${Math.round(s / 60)}m ago`;
    return `${Math.round(s / 3600)}h ago`;
  }

  function bytes(n) {
    if (!n) return "0";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return `${n >= 10 || i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
  }

  function cpus(millis) {
    return millis ? `${+(millis / 1000).toFixed(2)}` : "0";
  }

  function origin(o) {
    if (typeof o === "string") return o;
    if (o && o.rollback) return `rollback of ${o.rollback.from}`;
    return JSON.stringify(o);
  }

  // ---------- the API ----------

  class ApiError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  // ---------- credentials ----------
  //
  // Every API route needs an operator token (a viewer's is enough). It comes once in the URL's
  // fragment (`/ui#token=HOISTOP1-...`, never sent to the server) or from the sign-in form, and
  // is kept for this tab only (sessionStorage).

  const TOKEN_KEY = "hoist-token";

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  function takeTokenFromUrl() {
    const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    if (!m) return;
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", `${location.pathname}#/`);
  }

  function headers(extra) {
    const h = Object.assign({}, extra);
    if (token()) h.authorization = `Bearer ${token()}`;
    return h;
  }

  let signInShown = false;

  function needToken(message) {
    if (signInShown) return;
    signInShown = true;
    const input = el("input", {
      id: "token",
      type: "password",
      placeholder: "HOISTOP1-…",
      "aria-label": "operator token",
      autocomplete: "off",
    });
    const form = el(
      "form",
      { id: "sign-in", class: "sign-in" },
      el("p", {}, message || "This dashboard needs an operator token (a viewer's is enough): "),
      input,
      el("button", { type: "submit" }, "Sign in"),
    );
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      location.reload();
    });
    $("problem").replaceChildren(form);
    $("problem").hidden = false;
  }

  async function api(path) {
    const r = await fetch(path, { headers: headers({ accept: "application/json" }), cache: "no-store" });
    if (r.status === 401 || r.status === 403) {
      let message = "";
      try {
        message = (await r.json()).message || "";
      } catch (_) {
        // not JSON
      }
      needToken(token() ? `The token was refused (${message}). Another one: ` : undefined);
      throw new ApiError(message || `HTTP ${r.status}`, r.status);
    }
    if (!r.ok) {
      let message = `${path}: HTTP ${r.status}`;
      try {
        const body = await r.json();
        if (body && body.message) message = body.message;
      } catch (_) {
        // not JSON: keep the status
      }
      throw new ApiError(message, r.status);
    }
    return r.json();
  }

  // ---------- state ----------

  const state = {
    paths: new Set(), // the routes the controller documents
    streaming: false,
    events: [], // newest last
    eventIds: new Set(),
    view: "overview",
    service: null, // the service on screen
    openSlots: new Set(),
    servicesSeen: null, // name → summary, for observed changes when there is no stream
    nodesSeen: null,
    replicasSig: "",
    versionsSig: "",
    decisionsSig: "",
  };

  // What the page did, for whoever looks (the tests read it).
  const stats = (window.hoistDashboard = { refreshes: 0, lastRenderMs: 0, maxRenderMs: 0, lastFetchMs: 0, streamEvents: 0, lastEventAt: 0 });

  // ---------- keyed tables ----------

  // Keeps tbody's rows in the order of `items`, rebuilding a row only when its cells changed.
  // cells(item) answers [{text, cls, href, title, data, node}] and is compared as JSON.
  function syncRows(tbody, cache, items, key, cells, decorate) {
    const seen = new Set();
    let i = 0;
    for (const item of items) {
      const k = key(item);
      seen.add(k);
      const spec = cells(item);
      const sig = JSON.stringify(spec);
      let row = cache.get(k);
      if (!row) {
        row = { tr: el("tr"), sig: "" };
        cache.set(k, row);
      }
      if (row.sig !== sig) {
        row.tr.replaceChildren(...spec.map(cell));
        row.sig = sig;
        if (decorate) decorate(row.tr, item);
      }
      if (tbody.children[i] !== row.tr) tbody.insertBefore(row.tr, tbody.children[i] || null);
      i++;
    }
    for (const [k, row] of cache) {
      if (!seen.has(k)) {
        row.tr.remove();
        cache.delete(k);
      }
    }
  }

  function cell(spec) {
    const td = el("td", { class: spec.cls, title: spec.title });
    for (const [k, v] of Object.entries(spec.data || {})) td.dataset[k] = v;
    if (spec.href) td.append(el("a", { href: spec.href }, spec.text));
    else if (spec.badge) td.append(badge(spec.text, spec.badge));
    else if (spec.labels) {
      for (const l of spec.labels) td.append(el("span", { class: "label" }, l));
    } else td.textContent = spec.text === undefined ? "" : String(spec.text);
    return td;
  }

  // ---------- problems ----------

  function showProblem(e) {
    if (signInShown) return;
    const p = $("problem");
    p.textContent = `Cannot reach the cluster: ${e.message}. Retrying…`;
    p.hidden = false;
  }

  function clearProblem() {
    if (!signInShown) $("problem").hidden = true;
  }

  // ---------- the header ----------

  function renderCluster(s) {
    const leader = s.leader === null || s.leader === undefined ? "none" : `member ${s.leader}`;
    $("cluster").textContent =
      `member ${s.id} (${s.role}) · leader ${leader} · term ${s.term} · ` +
      `${(s.members || []).length} members · ${s.services} services · Hoist ${s.version} · format ${s.cluster_format}`;
  }

  function renderLive() {
    const live = $("live");
    live.textContent = state.streaming ? "live: event stream" : "live: polling every 1 s";
    live.className = state.streaming ? "live streaming" : "live";
  }

  // ---------- overview ----------

  const nodeRows = new Map();
  const serviceRows = new Map();

  function nodeState(n) {
    if (n.status !== "ready") return ["down", "bad"];
    if (n.availability !== "active") return [n.availability, "warn"];
    return ["ready", "ok"];
  }

  function renderNodes(views) {
    views.sort((a, b) => a.node.hostname.localeCompare(b.node.hostname));
    $("nodes-count").textContent = `(${views.length})`;
    $("nodes-empty").hidden = views.length > 0;
    syncRows(
      $("nodes").tBodies[0],
      nodeRows,
      views,
      (v) => v.node.id,
      (v) => {
        const n = v.node;
        const [word, cls] = nodeState(n);
        const cap = n.capacity || {};
        const res = v.reserved || {};
        return [
          { text: `${n.hostname} · ${n.id}`, title: `agent ${n.agent_version}` },
          { text: n.address },
          { text: word, badge: cls },
          { text: v.tasks },
          { text: `${cpus(res.cpu_millis)} / ${cpus(cap.cpu_millis)}` },
          { text: `${bytes(res.memory_bytes)} / ${bytes(cap.memory_bytes)}` },
          { text: ago(v.last_heartbeat_ms_ago) },
          { labels: Object.entries(n.labels || {}).map(([k, val]) => `${k}=${val}`) },
        ];
      },
      (tr, v) => {
        tr.dataset.node = v.node.id;
      },
    );
  }

  // The service's health in a word: its replicas running and passing their health checks
  // (`healthy`, which counts those without a check too) against those wanted.
  function serviceHealth(s) {
    if (s.desired === 0) return ["scaled to 0", "idle"];
    if (s.running === 0) return ["none running", "bad"];
    const healthy = typeof s.healthy === "number" ? s.healthy : s.running;
    if (healthy < s.running) return [`${s.running - healthy} unhealthy`, "bad"];
    if (s.running < s.desired) return ["degraded", "warn"];
    return ["healthy", "ok"];
  }

  function renderServices(list) {
    list.sort((a, b) => a.name.localeCompare(b.name));
    $("services-count").textContent = `(${list.length})`;
    $("services-empty").hidden = list.length > 0;
    const filter = $("filter").value.trim().toLowerCase();
    syncRows(
      $("services").tBodies[0],
      serviceRows,
      list,
      (s) => s.name,
      (s) => {
        const [word, cls] = serviceHealth(s);
        return [
          { text: s.name, href: `#/service/${encodeURIComponent(s.name)}`, cls: "name" },
          {
            text: `${s.running}/${s.desired}`,
            cls: "replicas " + (s.running >= s.desired ? "ok" : s.running ? "warn" : "bad"),
            data: { running: s.running, desired: s.desired },
          },
          { text: word, badge: cls },
          { text: s.version, cls: "version" },
          { text: s.spec.image },
          { text: s.vip || "—" },
          { text: clock(s.updated_ms) },
        ];
      },
      (tr, s) => {
        tr.dataset.service = s.name;
        tr.dataset.search = `${s.name} ${s.spec.image}`.toLowerCase();
        tr.hidden = filter !== "" && !tr.dataset.search.includes(filter);
      },
    );
  }

  function applyFilter() {
    const filter = $("filter").value.trim().toLowerCase();
    for (const { tr } of serviceRows.values()) {
      tr.hidden = filter !== "" && !tr.dataset.search.includes(filter);
    }
  }

  // Without the event stream, the changes the page itself saw between two polls.
  function observe(services, nodes) {
    const now = Date.now();
    const note = (type, service, node, message) =>
      addEvent({ id: `observed-${now}-${type}-${service || node}`, time_ms: now, type, service, node, message, observed: true });
    const next = new Map(services.map((s) => [s.name, s]));
    if (state.servicesSeen) {
      for (const [name, s] of next) {
        const before = state.servicesSeen.get(name);
        if (!before) note("service.created", name, null, `version ${s.version}, ${s.desired} replicas wanted`);
        else {
          if (before.desired !== s.desired) note("service.scaled", name, null, `${before.desired} → ${s.desired} replicas wanted`);
          if (before.version !== s.version) note("service.updated", name, null, `version ${before.version} → ${s.version}`);
          if (before.running !== s.running) note("replicas.running", name, null, `${before.running} → ${s.running} running`);
        }
      }
      for (const name of state.servicesSeen.keys()) {
        if (!next.has(name)) note("service.removed", name, null, "removed");
      }
    }
    state.servicesSeen = next;
    const nodesNext = new Map(nodes.map((v) => [v.node.id, nodeState(v.node)[0]]));
    if (state.nodesSeen) {
      for (const [id, word] of nodesNext) {
        const before = state.nodesSeen.get(id);
        if (before !== word) note("node." + word, null, id, before ? `${before} → ${word}` : `joined, ${word}`);
      }
    }
    state.nodesSeen = nodesNext;
  }

  async function loadOverview(gen) {
    const t0 = performance.now();
    const [status, nodes, services] = await Promise.all([
      api("/v1/cluster/status"),
      api("/v1/nodes"),
      api("/v1/services"),
    ]);
    if (gen !== generation) return;
    const t1 = performance.now();
    renderCluster(status);
    renderNodes(nodes);
    renderServices(services);
    if (!state.streaming) observe(services, nodes);
    renderEvents($("events"), $("events-note"), state.events);
    stats.lastFetchMs = t1 - t0;
    stats.lastRenderMs = performance.now() - t1;
    stats.maxRenderMs = Math.max(stats.maxRenderMs, stats.lastRenderMs);
  }

  // ---------- one service ----------

  function renderFacts(svc, ps) {
    const spec = svc.spec;
    const current = ps.replicas.map((r) => r.task).filter(Boolean);
    const running = current.filter((t) => t.state === "running").length;
    const health = {};
    for (const t of current) {
      if (t.state === "running") health[t.health] = (health[t.health] || 0) + 1;
    }
    const desired = spec.mode === "global" ? current.length : spec.replicas;
    const facts = [
      ["Image", spec.image],
      ["Version", svc.version],
      ["Mode", spec.mode || "replicated"],
      ["Replicas", `${running} running / ${desired} desired`],
      ["Health", Object.entries(health).map(([h, n]) => `${n} ${h === "none" ? "unchecked" : h}`).join(", ") || "—"],
      ["VIP", svc.vip || "—"],
      ["Ports", (spec.ports || []).map((p) => `${p.published ? p.published + "→" : ""}${p.target}/${p.protocol || "tcp"}`).join(", ") || "—"],
      ["Autoscale", spec.autoscale ? `${spec.autoscale.min} to ${spec.autoscale.max}` : "—"],
      ["Created", clock(svc.created_ms)],
      ["Updated", clock(svc.updated_ms)],
    ];
    const dl = $("svc-facts");
    dl.replaceChildren();
    for (const [k, v] of facts) {
      const dd = el("dd", {}, v);
      if (k === "Replicas") {
        dd.id = "svc-replicas";
        dd.dataset.running = running;
        dd.dataset.desired = desired;
      }
      dl.append(el("dt", {}, k), dd);
    }
  }

  function rolloutClass(s) {
    if (s === "completed") return "ok";
    if (s === "updating") return "warn";
    return "bad";
  }

  function renderRollout(r) {
    const bar = $("rollout-bar");
    bar.max = Math.max(1, r.total);
    bar.value = r.updated;
    const text = $("rollout-text");
    const change = r.from_version ? `version ${r.from_version} → ${r.version}` : `version ${r.version}`;
    text.replaceChildren(
      badge(r.state.replace("_", " "), rolloutClass(r.state)),
      ` ${change}: ${r.updated}/${r.total} updated` +
        (r.failures ? `, ${r.failures} failed` : "") +
        (r.rollback_of ? ` (rolling back version ${r.rollback_of})` : ""),
    );
    $("rollout-message").textContent = r.message || "";
  }

  function taskCells(t, slot, pending, toggle) {
    const health = t ? t.health : "";
    const hcls = { healthy: "ok", starting: "warn", unhealthy: "bad" }[health] || "idle";
    const scls = { running: "ok", pending: "warn", failed: "bad" }[t ? t.state : "pending"] || "idle";
    const why = pending || (t && (t.message || (t.exit_code !== null && t.exit_code !== undefined ? `exit ${t.exit_code}` : ""))) || "";
    return [
      el("td", {}, slot, toggle || ""),
      el("td", {}, badge(t ? t.state : "pending", scls)),
      el("td", {}, t && t.health !== "none" ? badge(t.health, hcls) : "—"),
      el("td", {}, t ? t.node : "—"),
      el("td", {}, (t && t.address) || "—"),
      el("td", {}, t ? t.service_version : "—"),
      el("td", {}, t ? t.restarts : ""),
      el("td", {}, t ? clock(t.updated_ms) : ""),
      el("td", { class: "why" }, why),
    ];
  }

  function renderReplicas(ps) {
    const sig = JSON.stringify(ps.replicas) + [...state.openSlots].join(",");
    if (sig === state.replicasSig) return;
    state.replicasSig = sig;
    const rows = [];
    for (const r of ps.replicas) {
      let toggle = null;
      if (r.history.length) {
        const open = state.openSlots.has(r.slot);
        toggle = el("button", { class: "toggle", type: "button", "aria-expanded": open },
          ` ${open ? "▾" : "▸"} ${r.history.length} earlier`);
        toggle.addEventListener("click", () => {
          if (state.openSlots.has(r.slot)) state.openSlots.delete(r.slot);
          else state.openSlots.add(r.slot);
          renderReplicas(ps);
        });
      }
      const tr = el("tr", { "data-slot": r.slot }, ...taskCells(r.task, r.slot, r.pending, toggle));
      rows.push(tr);
      if (state.openSlots.has(r.slot)) {
        for (const t of r.history) {
          rows.push(el("tr", { class: "history" }, ...taskCells(t, "", null, el("code", {}, t.id))));
        }
      }
    }
    $("replicas").tBodies[0].replaceChildren(...rows);
  }

  function renderVersions(history) {
    const sig = JSON.stringify(history.map((v) => [v.version, v.created_ms]));
    if (sig === state.versionsSig) return;
    state.versionsSig = sig;
    $("versions").tBodies[0].replaceChildren(
      ...history
        .slice()
        .reverse()
        .map((v) =>
          el("tr", {},
            el("td", {}, v.version),
            el("td", {}, origin(v.origin)),
            el("td", {}, clock(v.created_ms)),
            el("td", {}, v.spec.image),
            el("td", {}, v.spec.mode === "global" ? "global" : v.spec.replicas),
          ),
        ),
    );
  }

  // The replica count over time as a step line, from the decisions (newest last) and the
  // current count; the bounds as dashed lines.
  function chart(data, createdMs) {
    const W = 640, H = 170, L = 36, R = 12, T = 12, B = 24;
    const now = Date.now();
    const ds = data.decisions || [];
    // From a minute (or ten, without decisions) before the first decision, not before the
    // service existed.
    let start = ds.length ? Math.min(ds[0].time_ms, now - 60000) : now - 600000;
    if (createdMs) start = Math.min(Math.max(start, createdMs), ds.length ? ds[0].time_ms : now - 1000);
    const pts = [[start, ds.length ? ds[0].from : data.replicas]];
    for (const d of ds) pts.push([d.time_ms, d.from], [d.time_ms, d.to]);
    pts.push([now, data.replicas]);
    const bounds = data.autoscale ? [data.autoscale.min, data.autoscale.max].filter((b) => typeof b === "number") : [];
    const top = Math.max(1, ...pts.map((p) => p[1]), ...bounds);
    const x = (t) => L + ((t - start) / Math.max(1, now - start)) * (W - L - R);
    const y = (v) => T + (1 - v / top) * (H - T - B);
    const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": "replicas over time" });
    g.append(
      svg("line", { class: "axis", x1: L, y1: y(0), x2: W - R, y2: y(0) }),
      svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: y(0) }),
      svg("text", { x: 4, y: y(top) + 4, text: String(top) }),
      svg("text", { x: 4, y: y(0) + 4, text: "0" }),
      svg("text", { x: L, y: H - 6, text: clock(start) }),
      svg("text", { x: W - R - 28, y: H - 6, text: "now" }),
    );
    for (const b of bounds) {
      g.append(svg("line", { class: "bound", x1: L, y1: y(b), x2: W - R, y2: y(b) }, svg("title", { text: `bound ${b}` })));
    }
    g.append(svg("polyline", { class: "line", points: pts.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" ") }));
    for (const d of ds) {
      g.append(svg("circle", { class: "dot", cx: x(d.time_ms).toFixed(1), cy: y(d.to).toFixed(1), r: 3 },
        svg("title", { text: `${clock(d.time_ms)} ${d.source}: ${d.from} → ${d.to} (${d.reason})` })));
    }
    return g;
  }

  // The [autoscale] section in one line.
  function policy(a, replicas) {
    const parts = [`${replicas} replicas now, between ${a.min} and ${a.max}`];
    if (a.query) parts.push(`pulls ${a.query} toward ${a.target_value} every ${a.interval || "15s"}`);
    if (a.target) parts.push(`pushed values scale toward ${a.target}`);
    else parts.push(`a pushed step is ${a.step || 1}`);
    parts.push(`cooldown up ${a.cooldown_up || "30s"}`, `stabilization down ${a.stabilization_down || "300s"}`);
    return parts.join("; ") + ".";
  }

  function renderAutoscale(data, createdMs) {
    const note = $("autoscale-note");
    const table = $("decisions");
    const box = $("autoscale-chart");
    const decisions = (data && data.decisions) || [];
    if (!data || (!data.autoscale && !decisions.length)) {
      note.textContent = data === undefined
        ? "No autoscaling: this controller does not serve autoscaling history."
        : "No autoscaling: the service's spec has no [autoscale] section.";
      box.replaceChildren();
      table.hidden = true;
      state.decisionsSig = "";
      return;
    }
    const a = data.autoscale;
    note.textContent = a
      ? policy(a, data.replicas)
      : `No autoscaling policy (the spec has no [autoscale] section); ${data.replicas} replicas. Its scale decisions:`;
    box.replaceChildren(chart(data, createdMs));
    const sig = JSON.stringify(decisions.map((d) => d.index));
    if (sig === state.decisionsSig) return;
    state.decisionsSig = sig;
    table.hidden = decisions.length === 0;
    table.tBodies[0].replaceChildren(
      ...decisions
        .slice(-50)
        .reverse()
        .map((d) =>
          el("tr", {},
            el("td", {}, clock(d.time_ms)),
            el("td", {}, d.source),
            el("td", {}, d.from === d.to ? `${d.from} (held)` : `${d.from} → ${d.to}`),
            el("td", {}, d.reason || ""),
            el("td", { class: "why" }, typeof d.detail === "string" ? d.detail : d.detail ? JSON.stringify(d.detail) : ""),
          ),
        ),
    );
  }

  async function loadService(gen) {
    const name = state.service;
    const base = `/v1/services/${encodeURIComponent(name)}`;
    const wantAutoscale = state.paths.has(AUTOSCALE_PATH);
    let svc;
    try {
      svc = await api(base);
    } catch (e) {
      if (gen !== generation) return;
      if (e.status === 404) {
        const gone = $("svc-gone");
        gone.textContent = `Service ${name} does not exist (any more).`;
        gone.hidden = false;
        return;
      }
      throw e;
    }
    const [ps, rollout, history, autoscale] = await Promise.all([
      api(`${base}/ps`),
      api(`${base}/rollout`),
      api(`${base}/history`),
      wantAutoscale ? api(`${base}/autoscale`).catch((e) => (e.status === 404 ? null : Promise.reject(e))) : undefined,
    ]);
    if (gen !== generation) return;
    const t1 = performance.now();
    $("svc-gone").hidden = true;
    renderFacts(svc, ps);
    renderRollout(rollout);
    renderReplicas(ps);
    renderVersions(history);
    renderAutoscale(autoscale, svc.created_ms);
    renderEvents($("svc-events"), $("svc-events-note"), state.events.filter((e) => e.service === name));
    stats.lastRenderMs = performance.now() - t1;
  }

  // ---------- events ----------

  function addEvent(e) {
    const id = e.id !== undefined ? String(e.id) : `${e.index}-${e.type}-${e.time_ms}`;
    if (state.eventIds.has(id)) return;
    state.eventIds.add(id);
    state.events.push(e);
    while (state.events.length > MAX_EVENTS) {
      const old = state.events.shift();
      state.eventIds.delete(old.id !== undefined ? String(old.id) : `${old.index}-${old.type}-${old.time_ms}`);
    }
  }

  function renderEvents(list, note, events) {
    note.textContent = state.streaming
      ? events.length ? "" : "No events since this page opened."
      : "This controller serves no event stream: these are the changes this page saw between its polls." +
        (events.length ? "" : " None yet.");
    const shown = events.slice(-100).reverse();
    list.hidden = shown.length === 0;
    list.replaceChildren(
      ...shown.map((e) =>
        el("li", { class: e.type && e.type.startsWith("events.") ? "muted" : null },
          el("span", { class: "when" }, clock(e.time_ms)),
          el("span", { class: "type" }, e.type || "event"),
          e.service ? el("a", { href: `#/service/${encodeURIComponent(e.service)}` }, e.service) : "",
          e.node && !(e.message || "").includes(e.node) ? ` on ${e.node}` : "",
          e.message ? ` — ${e.message}` : "",
        ),
      ),
    );
  }

  function onStreamEvent(msg) {
    let e;
    try {
      e = JSON.parse(msg.data);
    } catch (_) {
      return; // not an event of ours (a comment or keep-alive)
    }
    if (!e || typeof e !== "object") return;
    if (e.id === undefined && msg.lastEventId) e.id = msg.lastEventId;
    if (!e.type && msg.type && msg.type !== "message") e.type = msg.type;
    addEvent(e);
    stats.streamEvents++;
    stats.lastEventAt = Date.now();
    if (state.view === "overview" || !e.service || e.service === state.service) kick();
  }

  // One server-sent event stream, read with fetch (EventSource cannot send a token): the last
  // quarter of an hour first, then a reconnect resumes after the last id (Last-Event-ID).
  async function connectStream() {
    let lastId = "";
    for (;;) {
      const url = lastId ? EVENTS_PATH : `${EVENTS_PATH}?since_ms=${Date.now() - BACKLOG_MS}`;
      const h = headers({ accept: "text/event-stream" });
      if (lastId) h["last-event-id"] = lastId;
      try {
        const r = await fetch(url, { headers: h, cache: "no-store" });
        if (r.status === 401 || r.status === 403) {
          needToken();
          return;
        }
        if (!r.ok || !r.body) throw new Error(`HTTP ${r.status}`);
        state.streaming = true;
        renderLive();
        lastId = await readEvents(r.body, lastId);
      } catch (_) {
        // dropped: reconnect below
      }
      state.streaming = false;
      renderLive();
      await new Promise((done) => setTimeout(done, 3000));
    }
  }

  // Reads `text/event-stream` until it ends; answers the last event id seen.
  async function readEvents(body, lastId) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    let msg = { data: [], type: "message", id: "" };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return lastId;
      buf += value;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        let line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.endsWith("\r")) line = line.slice(0, -1);
        if (line === "") {
          if (msg.id) lastId = msg.id;
          if (msg.data.length) {
            onStreamEvent({ data: msg.data.join("\n"), type: msg.type, lastEventId: lastId });
          }
          msg = { data: [], type: "message", id: "" };
          continue;
        }
        if (line.startsWith(":")) continue; // a comment (keep-alive)
        const i = line.indexOf(":");
        const field = i < 0 ? line : line.slice(0, i);
        let v = i < 0 ? "" : line.slice(i + 1);
        if (v.startsWith(" ")) v = v.slice(1);
        if (field === "data") msg.data.push(v);
        else if (field === "event") msg.type = v;
        else if (field === "id") msg.id = v;
      }
    }
  }

  // ---------- refresh loop ----------

  let generation = 0;
  let timer = 0;
  let inflight = false;
  let again = null; // a delay to refresh after the one in flight
  let lastStart = 0;

  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(tick, Math.max(0, ms));
  }

  async function tick() {
    if (document.hidden) return; // visibilitychange starts it again
    if (inflight) {
      again = again === null ? POLL_MS : again;
      return;
    }
    inflight = true;
    lastStart = Date.now();
    try {
      await (state.view === "service" ? loadService(generation) : loadOverview(generation));
      clearProblem();
      stats.refreshes++;
    } catch (e) {
      showProblem(e);
    } finally {
      inflight = false;
    }
    if (again !== null) {
      const soon = again === 0 ? 0 : lastStart + POLL_MS - Date.now();
      again = null;
      schedule(soon);
    } else {
      schedule(state.streaming ? STREAM_POLL_MS : POLL_MS);
    }
  }

  // Something changed: refresh as soon as the once-a-second limit allows.
  function kick() {
    if (inflight) {
      if (again === null) again = POLL_MS;
      return;
    }
    schedule(lastStart + POLL_MS - Date.now());
  }

  function route() {
    const m = /^#\/service\/(.+)$/.exec(location.hash);
    generation++;
    if (m) {
      const name = decodeURIComponent(m[1]);
      if (state.service !== name) {
        state.openSlots.clear();
        state.replicasSig = state.versionsSig = state.decisionsSig = "";
        for (const id of ["svc-facts", "rollout-text", "rollout-message", "svc-events"]) $(id).replaceChildren();
        $("replicas").tBodies[0].replaceChildren();
        $("versions").tBodies[0].replaceChildren();
      }
      state.view = "service";
      state.service = name;
      $("svc-name").textContent = name;
      document.title = `${name} · Hoist`;
    } else {
      state.view = "overview";
      state.service = null;
      document.title = "Hoist";
    }
    $("overview").hidden = state.view !== "overview";
    $("service").hidden = state.view !== "service";
    if (inflight) again = 0;
    else schedule(0);
  }

  async function start() {
    takeTokenFromUrl();
    try {
      const doc = await api("/v1/openapi.json");
      state.paths = new Set(Object.keys(doc.paths || {}));
    } catch (e) {
      showProblem(e);
    }
    $("filter").addEventListener("input", applyFilter);
    window.addEventListener("hashchange", route);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) schedule(0);
    });
    renderLive();
    if (state.paths.has(EVENTS_PATH)) connectStream();
    route();
  }

  start();
})();
