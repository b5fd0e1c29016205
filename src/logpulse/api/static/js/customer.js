// Customer page: summary, sub-day series (15 min / 1 h / 1 day picked by the zoomed range) with incident
// bands, daily charts, error budget burn-down when an SLO is set, incidents; refreshed live.
// Charts by plotly.js, served by the API itself (/vendor/plotly.min.js), so the page works offline.
import {
  $, Live, api, daysBetween, fmtInt, fmtNum, fmtPct, fmtTime, rangeControls, rangeQuery, readState,
  resolveRange, setText, writeState,
} from "./common.js";

const DEFAULTS = { from: "", to: "", tz: "UTC", zfrom: "", zto: "" };
const customer = decodeURIComponent(location.pathname.split("/").pop());
const state = resolveRange(readState(DEFAULTS));
const PLOT_CONFIG = { displaylogo: false, responsive: true, displayModeBar: false };
const COLORS = { ok: "#1b7f79", failed: "#c0392b", median: "#1d4e89", p99: "#8e44ad", average: "#7f8c8d" };
const KIND_COLORS = {
  latency: "rgba(230,126,34,0.24)", errors: "rgba(192,57,43,0.20)", slo_burn: "rgba(142,68,173,0.16)",
  traffic_drop: "rgba(29,78,137,0.16)", traffic_surge: "rgba(29,78,137,0.16)",
};
let incidents = [];
let syncing = false;

// ---- time zone arithmetic: plotly's date axes know no zones, so times are drawn as wall clock in state.tz ----

function zoneOffsetMs(ms, tz) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-US", {
    timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  const asUtc = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/** An absolute time (ISO string or ms) as "YYYY-MM-DD HH:MM:SS" wall clock in tz. */
function wall(t, tz) {
  const ms = typeof t === "number" ? t : Date.parse(t);
  return new Date(ms + zoneOffsetMs(ms, tz)).toISOString().slice(0, 19).replace("T", " ");
}

/** A wall-clock time in tz (as plotly reports a zoom) back to an absolute ISO time. */
function unwall(text, tz) {
  const guess = Date.parse(String(text).replace(" ", "T").slice(0, 19) + "Z");
  let ms = guess - zoneOffsetMs(guess, tz);
  ms = guess - zoneOffsetMs(ms, tz); // second pass settles DST edges
  return new Date(ms).toISOString();
}

/** 15m up to 2 days, 1h up to 31 days, else 1d: a few hundred points whatever the zoom. */
export function intervalFor(spanMs) {
  const days = spanMs / 86400000;
  if (days <= 2) return "15m";
  if (days <= 31) return "1h";
  return "1d";
}

// ---- data ----

const enc = encodeURIComponent(customer);
const rangeParams = () => `from=${state.from}&to=${state.to}&tz=${encodeURIComponent(state.tz)}`;

function seriesRange() {
  if (state.zfrom && state.zto) {
    return { from: state.zfrom, to: state.zto, spanMs: Date.parse(state.zto) - Date.parse(state.zfrom) };
  }
  return { from: state.from, to: state.to, spanMs: (daysBetween(state.from, state.to) + 1) * 86400000 };
}

let seriesAsked = 0; // answers to older series requests (a zoom overtaken by the next one) are dropped

async function loadSeries() {
  const seq = ++seriesAsked;
  const r = seriesRange();
  const interval = intervalFor(r.spanMs);
  const q = `from=${encodeURIComponent(r.from)}&to=${encodeURIComponent(r.to)}&interval=${interval}&tz=${encodeURIComponent(state.tz)}`;
  const body = await api(`/customers/${enc}/series?${q}`);
  return { interval, body, seq };
}

/** One incident as the page uses it; `end` is null while it is open (its band then reaches now). */
function normalizeIncident(a) {
  const status = a.status || "resolved"; // an API without the incident lifecycle reports finished stretches
  const end = status === "open" ? null : a.ended || a.end || null;
  const summary = a.summary
    || `peak score ${fmtNum(a.score, 1)}${a.requests !== undefined ? `, ${fmtInt(a.requests)} requests` : ""}`;
  return { kind: a.kind, status, start: a.start, end, summary, id: a.id };
}

// ---- rendering ----

function bands() {
  const now = Date.now();
  return incidents.map((a) => ({
    type: "rect", xref: "x", yref: "paper", y0: 0, y1: 1, layer: "below",
    x0: wall(a.start, state.tz), x1: wall(a.end ? Date.parse(a.end) : now, state.tz),
    fillcolor: KIND_COLORS[a.kind] || "rgba(120,120,120,0.2)", line: { width: 0 },
  }));
}

/** One label per band at its top left; labels of overlapping incidents are stacked, not drawn over each other. */
function bandLabels() {
  const now = Date.now();
  const ends = [];
  return incidents.map((a) => {
    const start = Date.parse(a.start);
    const level = ends.filter((end) => end > start).length;
    ends.push(a.end ? Date.parse(a.end) : now);
    return {
      x: wall(a.start, state.tz), y: 1, xref: "x", yref: "paper", yanchor: "top", xanchor: "left", showarrow: false,
      yshift: -14 * level, text: a.kind.replace("_", " "), font: { size: 11, color: "#3d2a00" },
      bgcolor: "rgba(255,255,255,0.75)", hovertext: a.summary,
    };
  });
}

function layout(title, ytitle, extra = {}) {
  return {
    title: { text: title, font: { size: 15 } }, margin: { t: 42, l: 58, r: 12, b: 40 },
    xaxis: { type: "date" }, yaxis: { title: { text: ytitle }, rangemode: "tozero" },
    legend: { orientation: "h", y: -0.18 }, hovermode: "x unified", ...extra,
  };
}

function drawSeries({ interval, body, seq }) {
  if (seq !== seriesAsked) return;
  const info = $("series-info");
  const pts = body.points;
  const x = pts.map((p) => wall(p.start, state.tz));
  const label = { "15m": "15 minutes", "1h": "hour", "1d": "day" }[interval];
  const approx = pts.some((p) => p.quantiles === "approximate") ? " · some quantiles approximate (≤ 0.5 %)" : "";
  setText(info, `${fmtInt(pts.length)} points per ${label}${approx}`);
  $("series-requests").dataset.points = String(pts.length);
  $("series-requests").dataset.interval = interval;
  const r = seriesRange();
  $("series-requests").dataset.range = `${state.zfrom}|${state.zto}`;
  const xrange = state.zfrom && state.zto ? [wall(r.from, state.tz), wall(r.to, state.tz)] : undefined;
  const xaxis = { type: "date", range: xrange, autorange: xrange ? false : true };
  const shapes = bands();
  const common = { shapes, annotations: bandLabels(), xaxis, uirevision: `${state.zfrom}|${state.zto}|${state.from}|${state.to}` };
  syncing = true;
  Plotly.react("series-requests", [
    { x, y: pts.map((p) => p.successful_requests), name: "successful", type: "bar", marker: { color: COLORS.ok } },
    { x, y: pts.map((p) => p.failed_requests), name: "failed", type: "bar", marker: { color: COLORS.failed } },
  ], layout(`Requests per ${label}`, "requests", { barmode: "stack", ...common }), PLOT_CONFIG);
  Plotly.react("series-latency", [
    { x, y: pts.map((p) => p.median_latency), name: "median", mode: "lines", line: { color: COLORS.median } },
    { x, y: pts.map((p) => p.p99_latency), name: "p99", mode: "lines", line: { color: COLORS.p99 } },
    { x, y: pts.map((p) => p.average_latency), name: "average", mode: "lines", line: { color: COLORS.average, dash: "dot" } },
  ], layout(`Latency per ${label}`, "seconds", common), PLOT_CONFIG);
  syncing = false;
  for (const id of ["series-requests", "series-latency"]) {
    const el = $(id);
    if (!el.dataset.wired) {
      el.on("plotly_relayout", onRelayout); // plotly's own event emitter, there once the chart exists
      el.dataset.wired = "true";
    }
  }
}

function drawDaily(stats) {
  const days = stats.days;
  const x = days.map((d) => d.date);
  const base = { xaxis: { type: "date", tickformat: "%b %d" }, uirevision: "daily" };
  Plotly.react("daily-requests", [
    { x, y: days.map((d) => d.successful_requests), name: "successful", type: "bar", marker: { color: COLORS.ok } },
    { x, y: days.map((d) => d.failed_requests), name: "failed", type: "bar", marker: { color: COLORS.failed } },
  ], layout("Requests per day", "requests", { barmode: "stack", ...base }), PLOT_CONFIG);
  Plotly.react("daily-latency", [
    { x, y: days.map((d) => d.median_latency), name: "median", mode: "lines+markers", line: { color: COLORS.median } },
    { x, y: days.map((d) => d.p99_latency), name: "p99", mode: "lines+markers", line: { color: COLORS.p99 } },
    { x, y: days.map((d) => d.average_latency), name: "average", mode: "lines+markers", line: { color: COLORS.average, dash: "dot" } },
  ], layout("Latency per day", "seconds", base), PLOT_CONFIG);
  drawBudget(stats);
}

const known = (v) => v !== undefined && v !== null;

/**
 * The error budget burn-down: the API's `error_budget_remaining` of each day (the fraction of the SLO
 * window's budget left at the end of that day). Drawn when the customer has an SLO (`slo_target`, percent)
 * and some day's budget is known (a day whose window holds rollups older than the 5xx count is null: a
 * gap). The budget counts 5xx responses only (4xx are the caller's), which the days' `failed_requests`
 * (status >= 400) cannot tell apart, so the page never computes it itself.
 */
function drawBudget(stats) {
  const target = stats.summary.slo_target;
  const days = stats.days;
  const fig = $("budget");
  if (!known(target) || !days.some((d) => known(d.error_budget_remaining))) {
    fig.hidden = true;
    return;
  }
  fig.hidden = false;
  Plotly.react("budget", [
    { x: days.map((d) => d.date), y: days.map((d) => (known(d.error_budget_remaining) ? d.error_budget_remaining * 100 : null)),
      name: "budget left", mode: "lines+markers", line: { color: COLORS.median }, fill: "tozeroy", connectgaps: false },
  ], layout(`Error budget left (SLO ${target} %)`, "% of budget", {
    xaxis: { type: "date", tickformat: "%b %d" }, uirevision: "budget",
    shapes: [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: 0, y1: 0, line: { color: COLORS.failed, dash: "dash" } }],
  }), PLOT_CONFIG);
}

function drawSummary(stats) {
  const s = stats.summary;
  const open = incidents.filter((a) => a.status === "open").length;
  const target = known(s.slo_target) ? s.slo_target : null;
  const budget = s.error_budget_remaining;
  const cards = [
    ["total_requests", "Requests", fmtInt(s.total_requests)],
    ["failed_requests", "Failed", fmtInt(s.failed_requests)],
    ["uptime", "Uptime", fmtPct(s.uptime)],
    ["average_latency", "Average (s)", fmtNum(s.average_latency)],
    ["median_latency", "Median (s)", fmtNum(s.median_latency)],
    ["p99_latency", "p99 (s)", fmtNum(s.p99_latency)],
    ["incidents", "Incidents", `${fmtInt(incidents.length)}${open ? ` (${open} open)` : ""}`],
  ];
  if (target !== null) {
    cards.push(["slo_target", "SLO", fmtPct(target, 2)]);
    cards.push(["error_budget_remaining", "Budget left", budget === null || budget === undefined ? "–" : fmtPct(budget * 100, 1)]);
  }
  const dl = $("summary");
  const keys = [...dl.children].map((d) => d.dataset.key).join();
  if (keys !== cards.map((c) => c[0]).join()) {
    dl.replaceChildren(...cards.map(([key]) => {
      const div = document.createElement("div");
      div.dataset.key = key;
      div.append(document.createElement("dt"), document.createElement("dd"));
      return div;
    }));
  }
  cards.forEach(([, label, value], i) => {
    setText(dl.children[i].children[0], label);
    setText(dl.children[i].children[1], value);
  });
}

function drawIncidents() {
  const body = $("incidents").tBodies[0];
  const rows = incidents.map((a) => {
    const tr = document.createElement("tr");
    tr.dataset.kind = a.kind;
    tr.dataset.status = a.status;
    if (a.id) tr.dataset.id = a.id;
    for (const text of [a.kind, a.status, fmtTime(a.start, state.tz), a.end ? fmtTime(a.end, state.tz) : "ongoing", a.summary]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    const td = document.createElement("td");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Zoom";
    button.setAttribute("aria-label", `Zoom the series to the ${a.kind} incident of ${fmtTime(a.start, state.tz)}`);
    button.addEventListener("click", () => {
      const start = Date.parse(a.start), end = a.end ? Date.parse(a.end) : Date.now();
      const pad = Math.max(3600000, (end - start) / 2);
      zoomTo(new Date(start - pad).toISOString(), new Date(end + pad).toISOString());
    });
    td.appendChild(button);
    tr.appendChild(td);
    return tr;
  });
  if (!rows.length) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = 6;
    td.textContent = "No incidents in this range.";
    tr.appendChild(td);
    rows.push(tr);
  }
  // a live refresh that changes nothing leaves the table alone
  const html = rows.map((r) => r.outerHTML).join("");
  if (body.dataset.html !== html) {
    body.replaceChildren(...rows);
    body.dataset.html = html;
  }
}

const QUARTER_MS = 900000;
const isoSeconds = (ms) => new Date(ms).toISOString().replace(".000Z", "Z");

/** Zoom the series to [from, to), widened to 15-minute boundaries (rollups are 15-minute windows). */
async function zoomTo(from, to) {
  if (from && to) {
    const lo = Math.floor(Date.parse(from) / QUARTER_MS) * QUARTER_MS;
    const hi = Math.max(lo + QUARTER_MS, Math.ceil(Date.parse(to) / QUARTER_MS) * QUARTER_MS);
    from = isoSeconds(lo);
    to = isoSeconds(hi);
  }
  state.zfrom = from;
  state.zto = to;
  writeState(state, { ...DEFAULTS, from: "", to: "" });
  drawSeries(await loadSeries());
}

async function load() {
  setText($("error"), "");
  try {
    const [stats, anomalies, series] = await Promise.all([
      api(`/customers/${enc}/stats?${rangeParams()}`),
      api(`/customers/${enc}/anomalies?${rangeParams()}`),
      loadSeries(),
    ]);
    incidents = anomalies.anomalies.map(normalizeIncident);
    drawSummary(stats);
    drawIncidents();
    drawSeries(series);
    drawDaily(stats);
    writeState(state, { ...DEFAULTS, from: "", to: "" });
    if (!document.body.dataset.rendered) {
      performance.mark("logpulse-first-render");
      document.body.dataset.rendered = "true";
      document.body.dataset.loaded = "true";
    }
    document.body.dataset.version = String(Number(document.body.dataset.version || 0) + 1);
  } catch (err) {
    setText($("error"), err.message);
    document.body.dataset.error = err.message;
  }
}

function onRelayout(event) {
  if (syncing) return;
  const r0 = event["xaxis.range[0]"] ?? (event["xaxis.range"] || [])[0];
  const r1 = event["xaxis.range[1]"] ?? (event["xaxis.range"] || [])[1];
  if (r0 !== undefined && r1 !== undefined) zoomTo(unwall(r0, state.tz), unwall(r1, state.tz));
  else if (event["xaxis.autorange"]) zoomTo("", "");
}

function wire() {
  document.title = `logpulse · ${customer}`;
  setText($("customer-title"), customer);
  $("back").href = "/dashboard" + rangeQuery(state);
  rangeControls(state, () => {
    state.zfrom = state.zto = "";
    $("back").href = "/dashboard" + rangeQuery(state);
    load();
  });
  $("reset-zoom").addEventListener("click", () => zoomTo("", ""));
  new Live(load, { minGapMs: 2000 }).start();
}

wire();
load();
