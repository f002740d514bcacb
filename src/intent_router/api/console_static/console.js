// The intent-router operator console: plain JS, SVG drawn by hand, no outside requests.
"use strict";

const NS = "http://www.w3.org/2000/svg";
const PALETTE = ["#3b5bdb", "#2f9e44", "#e8590c", "#9c36b5", "#0c8599", "#c2255c",
                 "#5c940d", "#f08c00", "#1971c2", "#862e9c", "#495057"];
const TRAFFIC_EVERY_MS = 1500;
const routeColours = new Map();
const KEY_STORE = "intent-router-key";
let keyAsked = false;  // asked at most once per page load (reload to try another key)

// With API keys on (serve --keys), the console's feeds need a key (or the admin key): asked
// once on the first 401, kept in this browser's sessionStorage, sent as x-api-key.
async function api(path, options = {}) {
  const send = () => {
    const key = sessionStorage.getItem(KEY_STORE);
    const headers = { ...(options.headers || {}), ...(key ? { "x-api-key": key } : {}) };
    return fetch(path, { ...options, headers });
  };
  let res = await send();
  if (res.status === 401 && !keyAsked) {
    keyAsked = true;
    const key = window.prompt("This router needs an API key (or the admin key):");
    if (key) {
      sessionStorage.setItem(KEY_STORE, key.trim());
      res = await send();
    }
  }
  return res;
}

function colour(route) {
  if (route === "none") return "#adb5bd";
  if (!routeColours.has(route)) routeColours.set(route, PALETTE[routeColours.size % PALETTE.length]);
  return routeColours.get(route);
}

function el(parent, tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  parent.appendChild(node);
  return node;
}

function html(parent, tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  parent.appendChild(node);
  return node;
}

function reset(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

function size(svg) {
  const box = svg.getBoundingClientRect();
  return [Math.max(200, box.width || 400), Math.max(40, box.height || 180)];
}

function short(text, n) {
  return text.length > n ? text.slice(0, n - 1) + "…" : text;
}

function fmtMs(ms) {
  return ms >= 1000 ? (ms / 1000).toFixed(ms >= 10000 ? 0 : 1) + " s" : ms.toFixed(ms < 10 ? 1 : 0) + " ms";
}

function fmtUsd(v) {
  return "$" + (v >= 1 ? v.toFixed(2) : v >= 0.01 ? v.toFixed(4) : v.toFixed(6));
}

// -- horizontal bars: one row per item, optional threshold tick -----------------------------

function hbars(svg, rows, { max = 1, label = 110, fmt = (v) => v.toFixed(3) } = {}) {
  reset(svg);
  const [w] = size(svg);
  const rowH = 20;
  svg.setAttribute("height", String(Math.max(40, rows.length * rowH + 8)));
  svg.style.height = Math.max(40, rows.length * rowH + 8) + "px";
  const x0 = label, x1 = w - 46;
  const scale = (v) => x0 + Math.max(0, Math.min(v, max)) / max * (x1 - x0);
  rows.forEach((r, i) => {
    const y = 4 + i * rowH;
    el(svg, "text", { x: x0 - 6, y: y + 13, "text-anchor": "end" }, short(r.label, 22));
    el(svg, "rect", { x: x0, y: y + 3, width: x1 - x0, height: 12, fill: "#f1f3f5", rx: 2 });
    el(svg, "rect", { x: x0, y: y + 3, width: Math.max(0, scale(r.value) - x0), height: 12,
                      fill: r.colour, rx: 2 }).appendChild(document.createElementNS(NS, "title"))
      .textContent = r.title || r.label;
    if (r.tick !== undefined) {
      const tx = scale(r.tick);
      el(svg, "line", { x1: tx, x2: tx, y1: y + 1, y2: y + 17, class: "thr" });
    }
    el(svg, "text", { x: x1 + 4, y: y + 13, class: "dim" }, fmt(r.shown ?? r.value));
  });
}

// -- the decision for a typed query ---------------------------------------------------------

async function ask(query) {
  const box = document.getElementById("decision");
  box.className = "decision empty";
  box.textContent = "Routing…";
  let data;
  try {
    const res = await api("/console/api/explain", {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ query }),
    });
    data = await res.json();
    if (!res.ok) throw new Error(typeof data.detail === "string" ? data.detail : res.statusText);
  } catch (err) {
    box.className = "decision error";
    box.textContent = "Could not explain this query: " + err.message;
    return;
  }
  showDecision(box, data);
  hbars(document.getElementById("scores"), data.scores.map((s) => ({
    label: s.route, value: Math.max(0, s.score), shown: s.score, tick: s.threshold,
    colour: s.matched ? colour(s.route) : "#ced4da",
    title: `${s.route}: score ${s.score.toFixed(3)}, threshold ${s.threshold.toFixed(3)}`,
  })), { max: Math.max(1, ...data.scores.map((s) => s.score)) });
  hbars(document.getElementById("nearest"), data.nearest.map((n) => ({
    label: n.text, value: Math.max(0, n.cosine), shown: n.cosine, colour: colour(n.route),
    title: `${n.route}: ${n.text}`,
  })), { label: 170 });
  showCache(data.cache);
}

function showDecision(box, d) {
  reset(box);
  box.className = d.route ? "decision" : "decision none";
  box.dataset.route = d.route || "none";
  const head = html(box, "div");
  html(head, "span", { class: "muted" }, "route ");
  html(head, "span", { class: "route" }, d.route || "none (out of scope)");
  const margin = d.score - d.threshold;
  html(box, "div", {}, `score ${d.score.toFixed(3)} vs threshold ${d.threshold.toFixed(3)} ` +
    `(${margin >= 0 ? "+" : ""}${margin.toFixed(3)})` + (d.truncated ? " · query truncated" : ""));
  html(box, "div", { class: "muted" }, "chain: " + (d.chain.length ? d.chain.join(" → ") : "—"));
}

function showCache(c) {
  const box = reset(document.getElementById("cache-preview"));
  const gauge = reset(document.getElementById("cache-gauge"));
  html(box, "span", { class: "badge " + c.action }, c.action);
  html(box, "span", {}, " " + (c.reason || ""));
  if (c.nearest) html(box, "div", { class: "muted" }, `nearest cached: “${short(c.nearest.text, 90)}”`);
  if (!c.nearest) return;
  const [w] = size(gauge);
  const x = (v) => 10 + Math.max(0, Math.min(1, v)) * (w - 20);
  el(gauge, "rect", { x: 10, y: 10, width: w - 20, height: 14, fill: "#f1f3f5", rx: 3 });
  el(gauge, "rect", { x: 10, y: 10, width: x(c.nearest.similarity) - 10, height: 14, rx: 3,
                      fill: c.action === "miss" ? "#e8a200" : "#2f9e44" });
  el(gauge, "line", { x1: x(c.threshold), x2: x(c.threshold), y1: 6, y2: 28, class: "thr" });
  el(gauge, "text", { x: x(c.threshold), y: 40, "text-anchor": "middle", class: "dim" },
     "threshold " + c.threshold.toFixed(2));
  el(gauge, "text", { x: 12, y: 21, fill: "#fff" }, "similarity " + c.nearest.similarity.toFixed(3));
}

// -- live traffic ---------------------------------------------------------------------------

function drawByRoute(svg, t) {
  reset(svg);
  const [w, h] = size(svg);
  const n = t.buckets.length, left = 30, bottom = 18;
  const max = Math.max(1, ...t.buckets.map((b) => b.requests));
  const bw = (w - left) / n;
  el(svg, "line", { x1: left, x2: w, y1: h - bottom, y2: h - bottom, class: "axis" });
  el(svg, "text", { x: left - 4, y: 10, "text-anchor": "end", class: "dim" }, String(max));
  el(svg, "text", { x: left - 4, y: h - bottom, "text-anchor": "end", class: "dim" }, "0");
  t.buckets.forEach((b, i) => {
    let y = h - bottom;
    for (const route of t.routes) {
      const count = b.by_route[route] || 0;
      if (!count) continue;
      const bh = count / max * (h - bottom - 6);
      y -= bh;
      el(svg, "rect", { x: left + i * bw + 1, y, width: Math.max(1, bw - 2), height: bh,
                        fill: colour(route), "data-route": route })
        .appendChild(document.createElementNS(NS, "title")).textContent = `${route}: ${count}`;
    }
  });
  const minutes = Math.round(n * t.bucket_s / 60);
  el(svg, "text", { x: left, y: h - 4, class: "dim" }, `−${minutes} min`);
  el(svg, "text", { x: w, y: h - 4, "text-anchor": "end", class: "dim" }, "now");
  svg.dataset.requests = String(t.buckets.reduce((s, b) => s + b.requests, 0));
  const legend = reset(document.getElementById("legend"));
  for (const route of t.routes) {
    const item = html(legend, "span");
    html(item, "i").style.background = colour(route);
    item.appendChild(document.createTextNode(route));
  }
}

function drawLatency(svg, t) {
  reset(svg);
  const models = Object.keys(t.latency);
  const [w] = size(svg);
  const rowH = 24, left = 110, right = 12;
  const hgt = Math.max(60, models.length * rowH + 26);
  svg.style.height = hgt + "px";
  if (!models.length) {
    el(svg, "text", { x: 10, y: 24, class: "dim" }, "no answered requests yet");
    return;
  }
  const hi = Math.max(10, ...models.map((m) => t.latency[m].p99_ms)) * 1.5;
  const lo = 0.5;
  const x = (ms) => left + (Math.log(Math.max(lo, ms)) - Math.log(lo)) /
    (Math.log(hi) - Math.log(lo)) * (w - left - right);
  for (const tick of [1, 10, 100, 1000, 10000, 100000]) {
    if (tick > hi) break;
    el(svg, "line", { x1: x(tick), x2: x(tick), y1: 0, y2: hgt - 16, class: "axis" });
    el(svg, "text", { x: x(tick), y: hgt - 4, "text-anchor": "middle", class: "dim" }, fmtMs(tick));
  }
  models.forEach((m, i) => {
    const p = t.latency[m], y = 12 + i * rowH;
    el(svg, "text", { x: left - 6, y: y + 4, "text-anchor": "end" }, short(m, 16));
    el(svg, "line", { x1: x(p.p50_ms), x2: x(p.p99_ms), y1: y, y2: y, stroke: "#adb5bd",
                      "stroke-width": 3 });
    el(svg, "circle", { cx: x(p.p50_ms), cy: y, r: 5, fill: "#3b5bdb" })
      .appendChild(document.createElementNS(NS, "title")).textContent =
        `${m}: p50 ${fmtMs(p.p50_ms)}, p95 ${fmtMs(p.p95_ms)}, p99 ${fmtMs(p.p99_ms)} (${p.count} answers)`;
    const d = x(p.p95_ms);
    el(svg, "path", { d: `M${d} ${y - 5}L${d + 5} ${y}L${d} ${y + 5}L${d - 5} ${y}Z`, fill: "#e8590c" });
    const t99 = x(p.p99_ms);
    el(svg, "path", { d: `M${t99} ${y - 6}L${t99 + 5} ${y + 4}L${t99 - 5} ${y + 4}Z`, fill: "#c2255c" });
  });
}

function arc(cx, cy, r, a0, a1) {
  const p = (a) => [cx + r * Math.sin(a), cy - r * Math.cos(a)];
  const [x0, y0] = p(a0), [x1, y1] = p(a1);
  return `M${x0} ${y0}A${r} ${r} 0 ${a1 - a0 > Math.PI ? 1 : 0} 1 ${x1} ${y1}`;
}

function drawCache(svg, t) {
  reset(svg);
  const [w, h] = size(svg);
  const parts = [["exact", "#2f9e44"], ["semantic", "#69db7c"], ["stale", "#e8a200"],
                 ["miss", "#dee2e6"]];
  const total = parts.reduce((s, [k]) => s + (t.cache[k] || 0), 0);
  const cx = Math.min(w / 2, 90), cy = h / 2, r = Math.min(h / 2 - 14, 60);
  if (!total) {
    el(svg, "circle", { cx, cy, r, fill: "none", stroke: "#f1f3f5", "stroke-width": 18 });
  }
  let a = 0;
  for (const [kind, fill] of parts) {
    const v = t.cache[kind] || 0;
    if (!v) continue;
    const da = v / total * 2 * Math.PI;
    const path = da >= 2 * Math.PI - 1e-6
      ? el(svg, "circle", { cx, cy, r, fill: "none", stroke: fill, "stroke-width": 18 })
      : el(svg, "path", { d: arc(cx, cy, r, a, a + da), fill: "none", stroke: fill, "stroke-width": 18 });
    path.appendChild(document.createElementNS(NS, "title")).textContent = `${kind}: ${v}`;
    a += da;
  }
  el(svg, "text", { x: cx, y: cy + 5, "text-anchor": "middle", "font-size": 16 },
     Math.round(t.totals.cache_hit_rate * 100) + "%");
  parts.forEach(([kind, fill], i) => {
    el(svg, "rect", { x: cx + r + 24, y: 30 + i * 20, width: 10, height: 10, fill });
    el(svg, "text", { x: cx + r + 40, y: 39 + i * 20 }, `${kind} ${t.cache[kind] || 0}`);
  });
  document.getElementById("hit-rate").textContent =
    `(hit rate ${(t.totals.cache_hit_rate * 100).toFixed(1)} % of ${t.totals.requests})`;
}

function drawSeries(svg, t, series) {
  reset(svg);
  const [w, h] = size(svg);
  const left = 34, bottom = 18, n = t.buckets.length;
  const max = Math.max(1e-9, ...series.flatMap((s) => t.buckets.map(s.value)));
  const x = (i) => left + i / Math.max(1, n - 1) * (w - left);
  const y = (v) => h - bottom - v / max * (h - bottom - 8);
  el(svg, "line", { x1: left, x2: w, y1: h - bottom, y2: h - bottom, class: "axis" });
  el(svg, "text", { x: left - 4, y: 12, "text-anchor": "end", class: "dim" }, series[0].fmt(max));
  series.forEach((s, k) => {
    const pts = t.buckets.map((b, i) => `${x(i)},${y(s.value(b))}`).join(" ");
    el(svg, "polyline", { points: pts, fill: "none", stroke: s.colour, "stroke-width": 2 });
    el(svg, "text", { x: left + 6 + k * 90, y: h - 4, fill: s.colour }, s.name);
  });
}

function drawBreakers(box, t) {
  reset(box);
  const names = Object.keys(t.breakers);
  if (!names.length) html(box, "span", { class: "muted" }, "no models configured");
  for (const m of names) {
    html(box, "span", { class: "breaker " + t.breakers[m], title: t.breakers[m] },
         `${m}: ${t.breakers[m].replace("_", "-")}`);
  }
}

function drawTraffic(t) {
  drawByRoute(document.getElementById("by-route"), t);
  drawLatency(document.getElementById("latency"), t);
  drawCache(document.getElementById("cache"), t);
  drawSeries(document.getElementById("failures"), t, [
    { name: "fallbacks", colour: "#e8590c", value: (b) => b.fallbacks, fmt: (v) => v.toFixed(0) },
    { name: "errors", colour: "#d9480f", value: (b) => b.errors, fmt: (v) => v.toFixed(0) },
  ]);
  drawSeries(document.getElementById("cost"), t, [
    { name: "USD per bucket", colour: "#1971c2", value: (b) => b.cost_usd, fmt: fmtUsd },
  ]);
  const costs = Object.entries(t.cost_by_route).filter(([, v]) => v > 0);
  hbars(document.getElementById("cost-routes"),
        costs.map(([route, v]) => ({ label: route, value: v, colour: colour(route) })),
        { max: Math.max(1e-9, ...costs.map(([, v]) => v)), label: 90, fmt: fmtUsd });
  drawBreakers(document.getElementById("breakers"), t);
  document.getElementById("cost-total").textContent = `(${fmtUsd(t.totals.cost_usd)} since start)`;
  document.getElementById("window").textContent =
    `(last ${Math.round(t.buckets.length * t.bucket_s / 60)} min, ${t.bucket_s} s buckets)`;
  const live = document.getElementById("live");
  live.dataset.updates = String(Number(live.dataset.updates || 0) + 1);
}

async function pollTraffic() {
  const status = document.getElementById("status");
  try {
    const res = await api("/console/api/traffic");
    if (!res.ok) throw new Error(res.statusText);
    const t = await res.json();
    drawTraffic(t);
    status.textContent = `${t.totals.requests} requests since start · updated ` +
      new Date().toLocaleTimeString();
  } catch (err) {
    status.textContent = "traffic unavailable: " + err.message;
  } finally {
    setTimeout(pollTraffic, TRAFFIC_EVERY_MS);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("ask-form");
  const input = document.getElementById("query");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = input.value.trim();
    if (query) ask(query);
  });
  pollTraffic();
});
