// logpulse dashboard: reads the API and draws with plotly.js (served by the API, works offline).
"use strict";
const $ = (id) => document.getElementById(id);
const status = (text) => { $("status").textContent = text || ""; };

function headers() {
  const key = localStorage.getItem("logpulse-api-key");
  return key ? { Authorization: "Bearer " + key } : {};
}

async function api(path) {
  let resp = await fetch(path, { headers: headers() });
  if (resp.status === 401) {
    const key = prompt("This logpulse API needs its API key:");
    if (key) { localStorage.setItem("logpulse-api-key", key); resp = await fetch(path, { headers: headers() }); }
  }
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(body.detail || ("HTTP " + resp.status));
  return body;
}

async function loadCustomers() {
  const all = [];
  let cursor = null;
  do {
    const page = await api("/customers?limit=1000" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
    all.push(...page.customers);
    cursor = page.next_cursor;
  } while (cursor);
  const select = $("customer");
  select.innerHTML = "";
  for (const c of all) {
    const opt = document.createElement("option");
    opt.value = c.customer_id;
    opt.textContent = `${c.customer_id} (${c.total_requests.toLocaleString()} requests)`;
    select.appendChild(opt);
  }
  const wanted = new URLSearchParams(location.search).get("customer");
  if (wanted) select.value = wanted;
  return all;
}

function isoDay(d) { return d.toISOString().slice(0, 10); }

function fmt(x, digits = 3) { return x === null || x === undefined ? "–" : Number(x).toFixed(digits); }

function incidentShapes(anomalies) {
  return anomalies.map((a) => ({
    type: "rect", xref: "x", yref: "paper", x0: a.start, x1: a.end, y0: 0, y1: 1,
    fillcolor: a.kind === "latency" ? "rgba(230,120,20,0.25)" : "rgba(200,30,30,0.25)",
    line: { width: 1, color: a.kind === "latency" ? "#e67814" : "#c81e1e" },
  }));
}

async function show(event) {
  if (event) event.preventDefault();
  const customer = $("customer").value;
  if (!customer) { status("No customers yet: is the processor running?"); return; }
  const q = `from=${$("from").value}&to=${$("to").value}&tz=${encodeURIComponent($("tz").value)}`;
  status("loading…");
  try {
    const [stats, anomalies] = await Promise.all([
      api(`/customers/${encodeURIComponent(customer)}/stats?${q}`),
      api(`/customers/${encodeURIComponent(customer)}/anomalies?${q}`),
    ]);
    status(stats.days.length ? "" : "No requests in this range.");
    const s = stats.summary;
    $("summary").innerHTML = [
      ["requests", s.total_requests.toLocaleString()], ["failed", s.failed_requests.toLocaleString()],
      ["uptime %", fmt(s.uptime, 2)], ["average s", fmt(s.average_latency)],
      ["median s", fmt(s.median_latency)], ["p99 s", fmt(s.p99_latency)],
      ["incidents", anomalies.anomalies.length],
    ].map(([k, v]) => `<div>${k}<b>${v}</b></div>`).join("");
    const x = stats.days.map((d) => d.date);
    const shapes = incidentShapes(anomalies.anomalies);
    const layout = (title, ytitle, extra = {}) => ({
      title: { text: title }, margin: { t: 40, l: 55, r: 15, b: 40 }, xaxis: { type: "date" },
      yaxis: { title: { text: ytitle } }, shapes, legend: { orientation: "h" }, ...extra,
    });
    const cfg = { displaylogo: false, responsive: true, displayModeBar: false };
    Plotly.react("chart-requests", [
      { x, y: stats.days.map((d) => d.successful_requests), name: "successful", type: "bar", marker: { color: "#2a9d8f" } },
      { x, y: stats.days.map((d) => d.failed_requests), name: "failed", type: "bar", marker: { color: "#e76f51" } },
    ], layout("Requests per day", "requests", { barmode: "stack" }), cfg);
    Plotly.react("chart-uptime", [
      { x, y: stats.days.map((d) => d.uptime), name: "uptime %", type: "scatter", mode: "lines+markers" },
    ], layout("Uptime", "%"), cfg);
    Plotly.react("chart-latency", [
      { x, y: stats.days.map((d) => d.average_latency), name: "average", type: "scatter", mode: "lines+markers" },
      { x, y: stats.days.map((d) => d.median_latency), name: "median", type: "scatter", mode: "lines+markers" },
      { x, y: stats.days.map((d) => d.p99_latency), name: "p99", type: "scatter", mode: "lines+markers" },
    ], layout("Latency", "seconds"), cfg);
    const body = $("incidents").querySelector("tbody");
    body.innerHTML = anomalies.anomalies.map((a) =>
      `<tr><td>${a.kind}</td><td>${a.start}</td><td>${a.end}</td><td>${fmt(a.score, 1)}</td><td>${a.requests}</td></tr>`).join("")
      || "<tr><td colspan=5>none in this range</td></tr>";
    document.body.dataset.rendered = "true";
  } catch (err) {
    status(err.message);
  }
}

async function init() {
  const params = new URLSearchParams(location.search);
  const today = new Date();
  $("to").value = params.get("to") || isoDay(today);
  $("from").value = params.get("from") || isoDay(new Date(today.getTime() - 6 * 86400000));
  if (params.get("tz")) $("tz").value = params.get("tz");
  $("controls").addEventListener("submit", show);
  try {
    await loadCustomers();
    await show();
  } catch (err) {
    status(err.message);
  }
}
init();
