// The Herald dashboard: totals, a chart of deliveries per second and a per-host table read
// from this engine's API (/v1/hosts, /v1/rates) with the bearer token, which this page keeps
// in the tab's sessionStorage only (docs/dashboard.md). No external assets; every text from
// the API is set with textContent.
"use strict";
(function () {
  const KEY = "herald.token";
  const POLL_MS = 2000, ROW_H = 24, OVERSCAN = 12;
  const $ = (id) => document.getElementById(id);
  const COLS = [
    ["host", "Host", (h) => h.host, false],
    ["backlog", "Backlog", (h) => h.backlog, true],
    ["in_flight", "In flight", (h) => h.in_flight, true],
    ["window", "Window", (h) => h.window, true],
    ["rate", "Deliv/s", (h) => h.rate, true],
    ["p50", "p50 ms", (h) => h.p50_ms, true],
    ["p99", "p99 ms", (h) => h.p99_ms, true],
    ["err5m", "Err 5m", (h) => h.err5m, true],
    ["errrate", "Err/s 5m", (h) => h.errrate, true],
    ["classes", "Errors by class (5m)", (h) => h.classes, false],
    ["breaker", "Breaker", (h) => (h.dead ? "dead" : h.breaker), false],
    ["last_error", "Last error", (h) => h.last_error, false],
  ];
  let token = sessionStorage.getItem(KEY);
  let hosts = [], view = [], prev = new Map(), prevT = 0;
  let sortKey = "backlog", sortDesc = true, timer = 0, updates = 0;

  function fmt(n, d) {
    if (n === undefined || n === null || Number.isNaN(n)) return "-";
    return typeof n === "number" ? n.toLocaleString("en-US", { maximumFractionDigits: d ?? 0 }) : String(n);
  }

  function status(text, error) {
    $("status").textContent = text;
    $("status").className = error ? "error" : "";
  }

  function showLogin(msg) {
    clearTimeout(timer);
    $("main").hidden = true;
    $("forget").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = msg || "";
    status("no token");
    $("token").focus();
  }

  function showMain() {
    $("login").hidden = true;
    $("main").hidden = false;
    $("forget").hidden = false;
    poll();
  }

  async function get(path) {
    const r = await fetch(path, { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
    if (r.status === 401) throw Object.assign(new Error("token refused"), { unauthorized: true });
    if (!r.ok) throw new Error(path + " answered " + r.status);
    return r.json();
  }

  async function poll() {
    clearTimeout(timer);
    try {
      const [hv, rates] = await Promise.all([get("/v1/hosts"), get("/v1/rates")]);
      update(hv, rates);
      updates++;
      document.body.dataset.updates = String(updates);
      status("updated " + new Date(hv.now_ms).toLocaleTimeString() + " (every 2 s)");
    } catch (e) {
      if (e.unauthorized) {
        sessionStorage.removeItem(KEY);
        token = null;
        showLogin("The engine refused this token.");
        return;
      }
      status(String(e.message || e), true);
    }
    timer = setTimeout(poll, POLL_MS);
  }

  function update(hv, rates) {
    const now = hv.now_ms, dt = prevT ? (now - prevT) / 1000 : 0;
    const next = new Map();
    let err5m = 0, open = 0;
    hosts = hv.hosts.map((h) => {
      const p = prev.get(h.host);
      h.rate = p !== undefined && dt > 0 && h.live_done >= p ? (h.live_done - p) / dt : 0;
      next.set(h.host, h.live_done);
      const w = h.errors ? h.errors["5m"] : null;
      h.err5m = w ? w.total : 0;
      h.errrate = w ? w.per_s : 0;
      h.classes = w ? Object.entries(w.by_class).sort((a, b) => b[1].count - a[1].count)
        .map(([k, v]) => k + " " + v.count).join(", ") : "";
      err5m += h.err5m;
      if (h.breaker !== "closed" || h.dead) open++;
      return h;
    });
    prev = next;
    prevT = now;
    const t = hv.totals, last = rates.done_per_s.length ? rates.done_per_s[rates.done_per_s.length - 1] : 0;
    totals([
      ["hosts", "hosts", t.hosts], ["queued", "queued", t.queued], ["retrying", "retrying", t.retrying],
      ["in_flight", "in flight", t.in_flight], ["delivered", "delivered by this engine", t.delivered],
      ["rate", "deliveries/s", last, 1], ["failed", "dead letters", t.failed],
      ["errors", "failed attempts, 5 min", err5m], ["breakers", "breakers open or dead", open],
    ]);
    document.body.dataset.delivered = String(t.delivered);
    chart(rates);
    refresh();
  }

  function totals(items) {
    const box = $("totals");
    if (box.children.length !== items.length) {
      box.textContent = "";
      for (const [id, label] of items) {
        const d = document.createElement("div");
        d.className = "total";
        d.id = "total-" + id;
        d.append(document.createElement("b"), document.createElement("span"));
        d.lastChild.textContent = label;
        box.append(d);
      }
    }
    items.forEach(([id, , v, digits], i) => { box.children[i].firstChild.textContent = fmt(v, digits); });
  }

  function chart(rates) {
    const c = $("chart"), g = c.getContext("2d"), W = c.width, H = c.height, L = 50, B = 20, N = 600;
    const d = rates.done_per_s, f = rates.failed_per_s;
    const max = Math.max(1, ...d, ...f) * 1.1;
    g.clearRect(0, 0, W, H);
    g.strokeStyle = "#e2e2e7";
    g.fillStyle = "#6e6e73";
    g.font = "11px system-ui, sans-serif";
    for (let k = 0; k <= 4; k++) {
      const y = H - B - (H - B - 8) * k / 4;
      g.beginPath(); g.moveTo(L, y); g.lineTo(W, y); g.stroke();
      g.fillText(fmt(max * k / 4, max < 10 ? 1 : 0), 4, y + 4);
    }
    for (let m = 0; m <= 10; m += 2) g.fillText("-" + m + " min", W - (W - L) * m / 10 - (m ? 20 : 40), H - 5);
    const line = (a, colour) => {
      g.strokeStyle = colour; g.lineWidth = 1.5; g.beginPath();
      a.forEach((v, i) => {
        const x = L + (W - L) * (N - a.length + i) / (N - 1), y = H - B - (H - B - 8) * v / max;
        if (i) g.lineTo(x, y); else g.moveTo(x, y);
      });
      g.stroke();
    };
    line(f, "#c62828");
    line(d, "#1a7f37");
    c.dataset.points = String(d.length);
  }

  function header() {
    const head = $("thead");
    head.textContent = "";
    for (const [key, label, , num] of COLS) {
      const d = document.createElement("div");
      d.textContent = label;
      d.dataset.key = key;
      d.setAttribute("role", "columnheader");
      if (num) d.className = "num";
      if (key === sortKey) d.setAttribute("aria-sort", sortDesc ? "descending" : "ascending");
      d.addEventListener("click", () => {
        sortDesc = key === sortKey ? !sortDesc : num;
        sortKey = key;
        header();
        refresh();
      });
      head.append(d);
    }
  }

  // Filters and sorts the hosts into view, then draws the rows in sight.
  function refresh() {
    const q = $("filter").value.trim().toLowerCase(), failing = $("failing").checked;
    const col = COLS.find((c) => c[0] === sortKey), val = col[2], num = col[3];
    view = hosts.filter((h) => (!q || h.host.includes(q)) &&
      (!failing || h.err5m > 0 || h.breaker !== "closed" || h.dead));
    view.sort((a, b) => {
      const x = val(a), y = val(b);
      const c = num ? x - y : String(x).localeCompare(String(y));
      return (sortDesc ? -c : c) || a.host.localeCompare(b.host);
    });
    $("count").textContent = fmt(view.length) + " of " + fmt(hosts.length) + " hosts";
    $("spacer").style.height = view.length * ROW_H + "px";
    draw();
  }

  // Virtual rows: only those in the viewport (and a few around) exist in the page.
  function draw() {
    const vp = $("viewport"), rows = $("rows");
    const first = Math.max(0, Math.floor(vp.scrollTop / ROW_H) - OVERSCAN);
    const last = Math.min(view.length, Math.ceil((vp.scrollTop + vp.clientHeight) / ROW_H) + OVERSCAN);
    rows.style.transform = "translateY(" + first * ROW_H + "px)";
    while (rows.children.length > last - first) rows.lastChild.remove();
    for (let i = first; i < last; i++) {
      let r = rows.children[i - first];
      if (!r) {
        r = document.createElement("div");
        r.className = "row";
        r.setAttribute("role", "row");
        for (const c of COLS) {
          const d = document.createElement("div");
          d.setAttribute("role", "cell");
          if (c[3]) d.className = "num";
          r.append(d);
        }
        rows.append(r);
      }
      const h = view[i];
      r.dataset.host = h.host;
      COLS.forEach(([key, , val], k) => {
        const v = val(h), cell = r.children[k];
        cell.textContent = key === "rate" || key === "p50" || key === "p99" ? fmt(v, 1)
          : key === "errrate" ? (v ? v.toPrecision(2) : "-") : fmt(v);
        if (key === "breaker") cell.className = h.dead ? "dead" : "breaker-" + h.breaker;
        if (key === "classes") cell.className = v ? "errs" : "";
        cell.title = typeof v === "string" ? v : "";
      });
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    header();
    $("viewport").addEventListener("scroll", () => requestAnimationFrame(draw), { passive: true });
    $("filter").addEventListener("input", refresh);
    $("failing").addEventListener("change", refresh);
    $("login").addEventListener("submit", (ev) => {
      ev.preventDefault();
      token = $("token").value.trim();
      $("token").value = "";
      if (!token) return;
      sessionStorage.setItem(KEY, token);
      showMain();
    });
    $("forget").addEventListener("click", () => {
      sessionStorage.removeItem(KEY);
      token = null;
      hosts = [];
      refresh();
      showLogin("");
    });
    if (token) showMain(); else showLogin("");
  });
})();
