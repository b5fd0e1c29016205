// Shared by the dashboard pages: API calls, page state in the URL, formatting, the live status bar.
// No framework and no CDN: the pages must work offline and stay small (the overview loads no chart library).

export const $ = (id) => document.getElementById(id);

/** Live polling: how often the cheap /freshness endpoint is asked, and the least time between data refreshes. */
export const POLL_MS = 2000;

function authHeaders() {
  const key = sessionStorage.getItem("logpulse-api-key");
  return key ? { Authorization: "Bearer " + key } : {};
}

export class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let asking = null; // one prompt for the API key, however many requests got a 401 at once

/** Whether a (new) key is there to retry with: a key stored since `used` was sent, else the user's answer. */
function keyToRetry(used) {
  if ((sessionStorage.getItem("logpulse-api-key") || null) !== used) return Promise.resolve(true);
  if (asking === null) {
    asking = new Promise((resolve) => setTimeout(() => {
      const key = prompt("This logpulse API needs its API key:");
      if (key) sessionStorage.setItem("logpulse-api-key", key);
      asking = null;
      resolve(Boolean(key));
    }));
  }
  return asking;
}

/** GET a JSON answer of the API; asks once for the API key on 401; throws HttpError with the API's detail. */
export async function api(path, { signal } = {}) {
  const used = sessionStorage.getItem("logpulse-api-key") || null;
  let resp = await fetch(path, { headers: authHeaders(), signal });
  if (resp.status === 401 && (await keyToRetry(used))) {
    resp = await fetch(path, { headers: authHeaders(), signal });
  }
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail || "");
    throw new HttpError(resp.status, detail || "HTTP " + resp.status);
  }
  return body;
}

// ---- page state: everything a shared link must reproduce lives in the query string ----

export function readState(defaults) {
  const params = new URLSearchParams(location.search);
  const state = { ...defaults };
  for (const key of Object.keys(defaults)) {
    if (params.has(key)) state[key] = params.get(key);
  }
  return state;
}

/** Replace the URL's query with the non-default values of state (no history entry per keystroke). */
export function writeState(state, defaults) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(state)) {
    if (value !== undefined && value !== null && value !== "" && String(value) !== String(defaults[key])) {
      params.set(key, value);
    }
  }
  const query = params.toString();
  history.replaceState(null, "", location.pathname + (query ? "?" + query : ""));
}

/** The query string carrying only the shared range and zone, for links between the pages. */
export function rangeQuery(state) {
  const params = new URLSearchParams();
  for (const key of ["from", "to", "tz"]) if (state[key]) params.set(key, state[key]);
  const q = params.toString();
  return q ? "?" + q : "";
}

// ---- dates in the chosen time zone ----

export function validZone(tz) {
  try {
    new Intl.DateTimeFormat("en", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** Today's calendar date (YYYY-MM-DD) in zone tz. */
export function today(tz) {
  return new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" })
    .format(new Date());
}

export function addDays(isoDate, n) {
  const d = new Date(isoDate + "T00:00:00Z");
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

export function daysBetween(a, b) {
  return Math.round((Date.parse(b + "T00:00:00Z") - Date.parse(a + "T00:00:00Z")) / 86400000);
}

/** Fill the from/to/tz defaults (last 7 days in the zone) where the URL gave none. */
export function resolveRange(state) {
  if (!validZone(state.tz)) state.tz = "UTC";
  if (!state.to) state.to = today(state.tz);
  if (!state.from) state.from = addDays(state.to, -6);
  return state;
}

// ---- formatting ----

const intFmt = new Intl.NumberFormat("en");
export const fmtInt = (x) => (x === null || x === undefined ? "–" : intFmt.format(x));
export const fmtNum = (x, digits = 3) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));
export const fmtPct = (x, digits = 2) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits) + " %");

export function fmtTime(iso, tz, withDate = true) {
  if (!iso) return "–";
  const opts = { timeZone: tz, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false };
  if (withDate) Object.assign(opts, { year: "numeric", month: "2-digit", day: "2-digit" });
  return new Intl.DateTimeFormat("en-CA", opts).format(new Date(iso)).replace(",", "");
}

export function fmtAgo(seconds) {
  if (seconds < 90) return `${Math.max(0, Math.round(seconds))} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} days`;
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

/** Set text only when it changed: a live refresh must not make the page flicker or move the caret. */
export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

// ---- shared range controls ----

/** Wire the range form (from, to, tz, preset buttons) to state; onChange runs after every accepted change. */
export function rangeControls(state, onChange) {
  const from = $("from"), to = $("to"), tz = $("tz");
  from.value = state.from;
  to.value = state.to;
  tz.value = state.tz;
  const zones = $("zones");
  if (zones && typeof Intl.supportedValuesOf === "function") {
    zones.replaceChildren(...Intl.supportedValuesOf("timeZone").map((z) => new Option("", z)));
  }
  $("range").addEventListener("submit", (event) => {
    event.preventDefault();
    if (!validZone(tz.value)) {
      tz.setCustomValidity("not an IANA time zone, e.g. Europe/Berlin");
      tz.reportValidity();
      return;
    }
    tz.setCustomValidity("");
    Object.assign(state, { from: from.value, to: to.value, tz: tz.value });
    onChange();
  });
  for (const button of document.querySelectorAll("[data-days]")) {
    button.addEventListener("click", () => {
      const zone = validZone(tz.value) ? tz.value : state.tz;
      const last = today(zone);
      Object.assign(state, { from: addDays(last, 1 - Number(button.dataset.days)), to: last, tz: zone });
      from.value = state.from;
      to.value = state.to;
      onChange();
    });
  }
}

// ---- live status ----

/**
 * Polls GET /freshness every POLL_MS and shows when data was last written and whether the processor is
 * behind. Calls onNewData() when a newer write is seen (at most once per minGapMs); the callback
 * refreshes only what is on screen. Stops polling while the tab is hidden.
 */
export class Live {
  constructor(onNewData, { minGapMs = POLL_MS } = {}) {
    this.onNewData = onNewData;
    this.minGapMs = minGapMs;
    this.lastWrite = undefined;
    this.lastRefresh = 0;
    this.busy = false;
    this.info = null;
    this.el = $("live");
    this.timer = null;
    document.addEventListener("visibilitychange", () => (document.hidden ? this.stop() : this.start()));
  }

  start() {
    if (this.timer === null) {
      this.timer = setInterval(() => this.tick(), POLL_MS);
      this.tick();
    }
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }

  async tick() {
    let info;
    try {
      info = await api("/freshness");
    } catch (err) {
      this.show(null, err.message);
      return;
    }
    this.info = info;
    this.show(info);
    const changed = this.lastWrite !== undefined && info.last_write !== this.lastWrite;
    if (this.lastWrite === undefined) this.lastWrite = info.last_write;
    if (changed && !this.busy && Date.now() - this.lastRefresh >= this.minGapMs) {
      this.busy = true;
      this.lastWrite = info.last_write;
      this.lastRefresh = Date.now();
      try {
        await this.onNewData();
      } finally {
        this.busy = false;
      }
    }
  }

  show(info, error) {
    const el = this.el;
    if (!el) return;
    if (error) {
      setText(el, "Live updates paused: " + error);
      el.dataset.state = "error";
      return;
    }
    if (!info.last_write) {
      setText(el, "No data written recently");
      el.dataset.state = "idle";
      return;
    }
    const age = (Date.parse(info.checked_at) - Date.parse(info.last_write)) / 1000;
    let text = `Data last updated ${fmtAgo(age)} ago`;
    el.dataset.state = "ok";
    if (info.behind) {
      text += ` · processor behind: ${fmtBytes(info.backlog_bytes)} of log not read yet`;
      el.dataset.state = "behind";
    }
    setText(el, text);
    el.title = `last write ${info.last_write}; newest request stored ${info.newest_data}`;
  }
}
