// Fleet overview: every customer from GET /stats in one sortable, searchable, paged table, fleet totals,
// a 24 h sparkline per visible row, live refresh. Only the visible page is in the DOM.
import {
  $, HttpError, Live, addDays, api, fmtInt, fmtNum, fmtPct, rangeControls, rangeQuery, readState,
  resolveRange, setText, today, writeState,
} from "./common.js";
import { sparkline } from "./sparkline.js";

const PAGE_SIZE = 50;
const SPARK_CONCURRENCY = 6;
const DEFAULTS = { from: "", to: "", tz: "UTC", sort: "uptime", order: "asc", q: "", page: "1" };
// columns whose natural first click is "worst first"
const DESC_FIRST = new Set(["total_requests", "failed_requests", "median_latency", "p99_latency", "open_incidents"]);

const state = resolveRange(readState(DEFAULTS));
let fleet = { rows: [], total: null };
let openByCustomer = null; // Map customer_id -> open incidents, or null when the API has no fleet incidents
let view = []; // rows after search and sort
const sparkCache = new Map(); // "customer@window start" -> Promise of its <svg>
let firstRender = true;

function saveState() {
  writeState(state, { ...DEFAULTS, from: "", to: "" }); // from/to always: a shared link shows the same days
}

function rangeParams() {
  return `from=${state.from}&to=${state.to}&tz=${encodeURIComponent(state.tz)}`;
}

/** Every customer's figures over the range: GET /stats, 1,000 customers per request. */
async function loadFleet() {
  const rows = [];
  let cursor = null;
  let total = null;
  do {
    const page = await api(`/stats?${rangeParams()}&limit=1000` + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""));
    rows.push(...page.customers);
    total = page.total;
    cursor = page.next_cursor;
  } while (cursor);
  return { rows, total };
}

/** Days back that open incidents are looked for: "open now" should not depend on the chosen range. */
const OPEN_LOOKBACK_DAYS = 90;

/**
 * Open incidents per customer from the fleet GET /anomalies?status=open: those that started in the last
 * OPEN_LOOKBACK_DAYS, or in the page's range if the server's MAX_RANGE_DAYS allows less.
 */
async function loadOpenIncidents() {
  const last = today("UTC");
  let body;
  try {
    body = await api(`/anomalies?status=open&limit=5000&from=${addDays(last, 1 - OPEN_LOOKBACK_DAYS)}&to=${last}`);
  } catch (err) {
    if (!(err instanceof HttpError && err.status === 422)) throw err;
    body = await api(`/anomalies?status=open&limit=5000&${rangeParams()}`);
  }
  const counts = new Map();
  for (const a of body.anomalies) {
    if (a.status === "open") counts.set(a.customer_id, (counts.get(a.customer_id) || 0) + 1);
  }
  return counts;
}

function compare(key, order) {
  const dir = order === "desc" ? -1 : 1;
  return (a, b) => {
    const x = a[key], y = b[key];
    const xNull = x === null || x === undefined, yNull = y === null || y === undefined;
    if (xNull || yNull) return xNull && yNull ? a.customer_id.localeCompare(b.customer_id) : xNull ? 1 : -1;
    if (x < y) return -dir;
    if (x > y) return dir;
    return a.customer_id.localeCompare(b.customer_id);
  };
}

function applyView() {
  const needle = state.q.trim().toLowerCase();
  view = fleet.rows.filter((r) => !needle || r.customer_id.toLowerCase().includes(needle));
  view.sort(compare(state.sort, state.order));
  const pages = Math.max(1, Math.ceil(view.length / PAGE_SIZE));
  state.page = String(Math.min(Math.max(1, Number(state.page) || 1), pages));
}

const hasBudget = () => fleet.rows.some((r) => r.error_budget_remaining !== undefined && r.error_budget_remaining !== null);

function renderTotals() {
  const t = fleet.total || {};
  const openTotal = openByCustomer ? [...openByCustomer.values()].reduce((a, b) => a + b, 0) : null;
  const hurting = openByCustomer ? [...openByCustomer.values()].filter((n) => n > 0).length : null;
  const cards = [
    ["customers", "Customers", fleet.partial ? "…" : fmtInt(fleet.rows.length), "customers with requests in the range"],
    ["total_requests", "Requests", fmtInt(t.total_requests), "all customers' requests in the range"],
    ["failed_requests", "Failed", fmtInt(t.failed_requests), "requests with status ≥ 400"],
    ["uptime", "Uptime", fmtPct(t.uptime), "successful ÷ total × 100 over the whole fleet"],
    ["p99_latency", "p99 (s)", fmtNum(t.p99_latency), "99th percentile of all requests' durations"],
    ["open_incidents", "Open incidents",
      openTotal === null ? "–" : `${fmtInt(openTotal)} (${fmtInt(hurting)} customer${hurting === 1 ? "" : "s"})`,
      "incidents not yet resolved, whatever the range"],
  ];
  const dl = $("totals");
  if (dl.children.length !== cards.length) {
    dl.replaceChildren(...cards.map(([key]) => {
      const div = document.createElement("div");
      div.dataset.total = key;
      div.append(document.createElement("dt"), document.createElement("dd"));
      return div;
    }));
  }
  cards.forEach(([, label, value, help], i) => {
    const div = dl.children[i];
    setText(div.children[0], label);
    setText(div.children[1], value);
    div.title = help;
  });
}

function renderHeader() {
  for (const th of document.querySelectorAll("#fleet th[data-sort]")) {
    const key = th.dataset.sort;
    if (key === state.sort) th.setAttribute("aria-sort", state.order === "desc" ? "descending" : "ascending");
    else th.removeAttribute("aria-sort");
  }
  document.body.classList.toggle("no-budget", !hasBudget());
}

function rowCells(tr) {
  if (tr.cells.length) return tr.cells;
  for (const col of ["customer_id", "total_requests", "failed_requests", "uptime", "median_latency", "p99_latency",
    "open_incidents", "error_budget_remaining", "spark"]) {
    const td = document.createElement(col === "customer_id" ? "th" : "td");
    if (col === "customer_id") {
      td.scope = "row";
      td.appendChild(document.createElement("a"));
    }
    td.dataset.col = col;
    if (!["customer_id", "spark"].includes(col)) td.className = "num";
    if (col === "error_budget_remaining") td.classList.add("budget");
    if (col === "spark") td.className = "spark";
    tr.appendChild(td);
  }
  return tr.cells;
}

function renderRows() {
  const start = (Number(state.page) - 1) * PAGE_SIZE;
  const rows = view.slice(start, start + PAGE_SIZE);
  const body = $("fleet").tBodies[0];
  while (body.rows.length > rows.length) body.deleteRow(-1);
  while (body.rows.length < rows.length) body.insertRow();
  const link = rangeQuery(state);
  rows.forEach((r, i) => {
    const tr = body.rows[i];
    const cells = rowCells(tr);
    if (tr.dataset.customer !== r.customer_id) {
      tr.dataset.customer = r.customer_id;
      cells[8].replaceChildren();
    }
    const a = cells[0].firstChild;
    setText(a, r.customer_id);
    a.href = `/dashboard/customers/${encodeURIComponent(r.customer_id)}${link}`;
    setText(cells[1], fmtInt(r.total_requests));
    setText(cells[2], fmtInt(r.failed_requests));
    setText(cells[3], fmtPct(r.uptime));
    setText(cells[4], fmtNum(r.median_latency));
    setText(cells[5], fmtNum(r.p99_latency));
    setText(cells[6], r.open_incidents === null ? "–" : fmtInt(r.open_incidents));
    cells[6].classList.toggle("alert", r.open_incidents > 0);
    const budget = r.error_budget_remaining;
    setText(cells[7], budget === null || budget === undefined ? "–" : fmtPct(budget * 100, 1));
    cells[7].classList.toggle("alert", budget !== null && budget !== undefined && budget <= 0);
  });
  const pages = Math.max(1, Math.ceil(view.length / PAGE_SIZE));
  const of = fleet.partial ? "…" : fmtInt(view.length);
  setText($("page-info"), view.length ? `${fmtInt(start + 1)}–${fmtInt(start + rows.length)} of ${of}` : "");
  $("prev").disabled = Number(state.page) <= 1;
  $("next").disabled = Number(state.page) >= pages;
  const filtered = view.length === fleet.rows.length ? "" : ` (${fmtInt(view.length)} match “${state.q}”)`;
  setText($("count"), fleet.partial ? "loading every customer…" : `${fmtInt(fleet.rows.length)} customers${filtered}`);
  if (!view.length) setText($("page-info"), fleet.rows.length ? "No customer id matches the search." : "No requests in this range.");
}

function render() {
  applyView();
  renderTotals();
  renderHeader();
  renderRows();
  saveState();
  if (firstRender) {
    firstRender = false;
    performance.mark("logpulse-first-render");
    document.body.dataset.rendered = "true";
  }
  document.body.dataset.version = String(Number(document.body.dataset.version || 0) + 1);
  loadSparklines();
}

/** The 24 h window of the sparklines: whole hours, so every row and every refresh within the hour share URLs. */
function sparkWindow() {
  const to = new Date();
  to.setUTCMinutes(0, 0, 0);
  to.setUTCHours(to.getUTCHours() + 1);
  return { fromMs: to.getTime() - 86400000, toMs: to.getTime() };
}

let sparkSlots = SPARK_CONCURRENCY;
const sparkQueue = [];

/** Run fn when one of SPARK_CONCURRENCY slots is free: a page of rows must not open 50 requests at once. */
async function limited(fn) {
  if (sparkSlots === 0) await new Promise((resolve) => sparkQueue.push(resolve));
  else sparkSlots -= 1;
  try {
    return await fn();
  } finally {
    const next = sparkQueue.shift();
    if (next) next();
    else sparkSlots += 1;
  }
}

/** The sparkline of one customer for window w, fetched once per window (the promise is cached). */
function sparkFor(id, w) {
  const key = `${id}@${w.fromMs}`;
  if (!sparkCache.has(key)) {
    const iso = (ms) => new Date(ms).toISOString().replace(".000Z", "Z");
    const q = `from=${iso(w.fromMs)}&to=${iso(w.toMs)}&interval=1h&tz=UTC`;
    sparkCache.set(key, limited(() => api(`/customers/${encodeURIComponent(id)}/series?${q}`)).then(
      (body) => sparkline(body.points, w.fromMs, w.toMs),
    ));
  }
  return sparkCache.get(key);
}

async function loadSparklines() {
  const w = sparkWindow();
  const jobs = [...$("fleet").tBodies[0].rows].map((tr) => {
    const id = tr.dataset.customer;
    return sparkFor(id, w).then(
      (svg) => {
        if (svg && tr.dataset.customer === id && tr.cells[8].firstChild !== svg) tr.cells[8].replaceChildren(svg);
      },
      (err) => {
        if (tr.dataset.customer === id) {
          tr.cells[8].textContent = "–";
          tr.cells[8].title = err.message;
        }
      },
    );
  });
  await Promise.all(jobs);
  document.body.dataset.sparklines = "true";
}

function applyOpen() {
  for (const r of fleet.rows) r.open_incidents = openByCustomer ? openByCustomer.get(r.customer_id) || 0 : null;
}


/** Fleet figures and open incidents are fetched together; the table renders as soon as the figures are in. */
/** Sort keys GET /stats sorts by itself (ties by customer id, as compare() does). */
const SERVER_SORTS = new Set(["customer_id", "total_requests", "failed_requests", "uptime", "median_latency",
  "p99_latency", "error_budget_remaining"]);
/** Live refreshes of a server-sorted first page re-read that page only; the whole fleet at most this often. */
const FULL_REFRESH_MS = 30000;
let lastFull = 0;

/** The view is the server's first page: no search, page 1, a sort /stats knows. */
const serverPageView = () => !state.q.trim() && Number(state.page) === 1 && SERVER_SORTS.has(state.sort);

/** GET /stats for the visible page only: the server computes quantiles for these customers alone. */
async function loadFirstPage() {
  return api(`/stats?${rangeParams()}&sort=${state.sort}&order=${state.order}&limit=${PAGE_SIZE}`);
}

/** Put a page's figures into the fleet (same customers replaced, new ones added) and take its total. */
function merge(page) {
  const byId = new Map(fleet.rows.map((r, i) => [r.customer_id, i]));
  for (const row of page.customers) {
    const i = byId.get(row.customer_id);
    if (i === undefined) fleet.rows.push(row);
    else fleet.rows[i] = row;
  }
  fleet.total = page.total;
}

async function withOpenIncidents(open) {
  openByCustomer = await open;
  applyOpen();
  setText($("note"), openByCustomer === null ? "Open incidents could not be read (see the API's log)." : "");
  render();
  document.body.dataset.incidents = "true";
  document.body.dataset.loaded = "true";
}

/**
 * Everything, for a new range or zone. On a first visit whose view is the server's first page, that page
 * is asked for first and drawn at once (a fleet answer with every customer's quantiles costs the server
 * several times more), then the whole fleet for search, other sorts and paging.
 */
async function load({ firstPageFirst = false } = {}) {
  setText($("error"), "");
  const open = loadOpenIncidents().catch(() => null);
  try {
    if (firstPageFirst && serverPageView()) {
      const first = await loadFirstPage();
      fleet = { rows: first.customers, total: first.total, partial: true };
      applyOpen();
      render();
    }
    fleet = await loadFleet();
    lastFull = Date.now();
    applyOpen(); // the previous open counts until the new ones arrive (none on the first load)
    render();
    await withOpenIncidents(open);
  } catch (err) {
    setText($("error"), err.message);
    document.body.dataset.error = err.message;
  }
}

/** New data was written: re-read what is on screen, cheaply when the view is the server's first page. */
async function refresh() {
  if (!serverPageView() || Date.now() - lastFull >= FULL_REFRESH_MS) return load();
  const open = loadOpenIncidents().catch(() => null);
  try {
    merge(await loadFirstPage());
    applyOpen();
    render();
    await withOpenIncidents(open);
  } catch (err) {
    setText($("error"), err.message);
  }
}

function wire() {
  rangeControls(state, () => {
    state.page = "1";
    sparkCache.clear();
    load();
  });
  const search = $("search");
  search.value = state.q;
  search.addEventListener("input", () => {
    state.q = search.value;
    state.page = "1";
    render();
  });
  for (const th of document.querySelectorAll("#fleet th[data-sort]")) {
    th.querySelector("button").addEventListener("click", () => {
      const key = th.dataset.sort;
      if (state.sort === key) state.order = state.order === "asc" ? "desc" : "asc";
      else {
        state.sort = key;
        state.order = DESC_FIRST.has(key) ? "desc" : "asc";
      }
      render();
    });
  }
  $("prev").addEventListener("click", () => { state.page = String(Number(state.page) - 1); render(); });
  $("next").addEventListener("click", () => { state.page = String(Number(state.page) + 1); render(); });
  new Live(() => {
    sparkCache.clear();
    return refresh();
  }, { minGapMs: 5000 }).start();
}

wire();
load({ firstPageFirst: true });
