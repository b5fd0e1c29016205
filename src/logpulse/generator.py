"""Synthetic API access logs: realistic live traffic (with optional injected incidents) or the
exercise's classic random generator.

Live mode: customers `cust_1..cust_N` with their own traffic share (log-normal weights), latency
level and spread (log-normal durations), 4xx rate and 5xx rate, all drawn from the seed. A backfill of
`days` of history ending now is written first as fast as possible, then lines stamped with the
current time at `rate` lines/s. Everything is drawn with numpy per block, and every `write()` ends
on a line boundary, so a tailing processor never sees half a line for long.

Incidents (`incidents=N`): latency spikes (durations x `latency_factor`) and error bursts (5xx
probability + `error_rate_increase`) on customers with at least 1 request/s, 2 to 10 minutes long,
placed inside the generated time span without overlapping each other; the ground truth is written
to `PATH.incidents.json` as [{customer, kind, start, end}] (ISO-8601 UTC).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from faker import Faker

SUCCESS = np.array(["200", "200", "200", "200", "201", "204", "301", "304"])
CLIENT_ERRORS = np.array(["400", "401", "403", "404", "429"])
SERVER_ERRORS = np.array(["500", "502", "503"])
CLASSIC_PATHS = np.array([f"/api/v1/resource{i}" for i in range(1, 5)])
CLASSIC_STATUSES = np.array(["200", "201", "400", "401", "403", "404", "500"])
BLOCK_SECONDS = 3600.0


@dataclass
class GeneratorOptions:
    out: Path
    count: int | None = None
    rate: float = 100.0
    customers: int = 50
    days: float | None = None
    seed: int | None = None
    mode: str = "live"  # "live" | "classic"
    incidents: int = 0
    now: dt.datetime | None = None
    backfill_max_lines: int | None = 200_000  # thin the history so the demo starts in seconds
    incident_min_minutes: float = 2.0
    incident_max_minutes: float = 10.0
    latency_factor: float = 4.0
    error_rate_increase: float = 0.4
    live_seconds: float | None = None  # stop live traffic after this long (None = count or forever)
    format: str = "logpulse"  # one of FORMATS
    full_rate_minutes: float = 30.0  # with incidents: the end of a thinned backfill keeps the full rate
    resume: bool = False  # an existing file: continue after its last line instead of a new backfill


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass
class InjectedIncident:
    """An incident the generator put into the traffic: the ground truth detectors are measured against
    (what a detector reports is a `logpulse.model.Incident`)."""

    customer: str
    kind: str  # "latency" | "errors"
    start: float  # epoch seconds
    end: float

    def as_json(self) -> dict[str, str]:
        return {"customer": self.customer, "kind": self.kind, "start": _iso(self.start), "end": _iso(self.end)}


@dataclass
class Traffic:
    """Per-customer profiles and the vectorised drawing of requests for a time span."""

    rng: np.random.Generator
    customers: int
    rate: float
    paths: np.ndarray
    incidents: list[InjectedIncident] = field(default_factory=list)
    latency_factor: float = 4.0
    error_rate_increase: float = 0.4
    fmt: str = "logpulse"

    def __post_init__(self) -> None:
        w = self.rng.lognormal(0.0, 0.8, self.customers)
        self.weights = w / w.sum()
        self.names = np.array([f"cust_{i}" for i in range(1, self.customers + 1)])
        self.latency_median = self.rng.lognormal(np.log(0.25), 0.5, self.customers)
        self.latency_sigma = self.rng.uniform(0.25, 0.5, self.customers)
        # a healthy fleet: clients get 4xx now and then (0.5-4 %), the service fails rarely (5xx
        # 0.05-0.3 %), so every customer meets the default 99.5 % SLO until an incident burns budget
        self.client_error_rate = self.rng.uniform(0.005, 0.04, self.customers)
        self.server_error_rate = self.rng.uniform(0.0005, 0.003, self.customers)

    def customer_rates(self) -> np.ndarray:
        rates: np.ndarray = self.weights * self.rate
        return rates

    def draw(self, start: float, end: float, n: int) -> list[str]:
        """n requests with times uniform in [start, end), sorted, as log lines."""
        if n <= 0:
            return []
        times = np.sort(self.rng.uniform(start, end, n))
        cust = self.rng.choice(self.customers, n, p=self.weights)
        dur = self.rng.lognormal(np.log(self.latency_median[cust]), self.latency_sigma[cust])
        p_server = self.server_error_rate[cust].copy()
        for inc in self.incidents:
            if inc.end <= start or inc.start >= end:
                continue
            hit = (self.names[cust] == inc.customer) & (times >= inc.start) & (times < inc.end)
            if inc.kind == "latency":
                dur[hit] *= self.latency_factor
            else:
                p_server[hit] = np.minimum(1.0, p_server[hit] + self.error_rate_increase)
        u = self.rng.random(n)
        server = u < p_server
        client = ~server & (u < p_server + self.client_error_rate[cust])
        status = np.where(client, self.rng.choice(CLIENT_ERRORS, n), self.rng.choice(SUCCESS, n))
        status = np.where(server, self.rng.choice(SERVER_ERRORS, n), status)
        paths = self.paths[self.rng.integers(0, len(self.paths), n)]
        return format_lines(times, self.names[cust], paths, status, np.maximum(dur, 0.001), self.fmt)


_MONTHS = {
    f"{i:02d}": m
    for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)
}
FORMATS = ("logpulse", "nginx", "apache", "json")
"""Each written in logpulse's default settings for that LOG_FORMAT (nginx `combined $request_time`
and Apache's default LogFormat with the customer as the authenticated user, JSON with the default
JSON_FIELDS), so `LOG_FORMAT=X` alone reads what `generate --format X` wrote."""


def format_lines(
    times: np.ndarray,
    customers: np.ndarray,
    paths: np.ndarray,
    statuses: np.ndarray,
    durations: np.ndarray,
    fmt: str = "logpulse",
) -> list[str]:
    """Log lines from columns (times in epoch seconds, truncated to whole seconds) in format `fmt`."""
    stamps = np.datetime_as_string(np.floor(times).astype(np.int64).astype("datetime64[s]"), unit="s")
    rows = zip(stamps.tolist(), customers.tolist(), paths.tolist(), statuses.tolist(), durations.tolist(), strict=True)
    if fmt == "logpulse":
        return [f"{s[:10]} {s[11:]} {c} {p} {st} {d:.3f}\n" for s, c, p, st, d in rows]
    if fmt == "nginx":
        return [
            f'10.0.0.1 - {c} [{s[8:10]}/{_MONTHS[s[5:7]]}/{s[:4]}:{s[11:]} +0000] "GET {p} HTTP/1.1" {st} 512 '
            f'"-" "logpulse-generator" {d:.3f}\n'
            for s, c, p, st, d in rows
        ]
    if fmt == "apache":
        return [
            f'10.0.0.1 - {c} [{s[8:10]}/{_MONTHS[s[5:7]]}/{s[:4]}:{s[11:]} +0000] "GET {p} HTTP/1.1" {st} 512 '
            f'"-" "logpulse-generator" {round(d * 1e6)}\n'
            for s, c, p, st, d in rows
        ]
    if fmt == "json":
        return [
            f'{{"time":"{s}Z","customer":"{c}","path":"{p}","status":{st},"duration":{d:.3f}}}\n'
            for s, c, p, st, d in rows
        ]
    raise ValueError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")


def path_pool(rng_seed: int | None, size: int = 200) -> np.ndarray:
    """Realistic request paths (`/api/v1/<resource>/<id>`), drawn once with Faker."""
    fake = Faker()
    fake.seed_instance(rng_seed)
    resources = [fake.word() for _ in range(12)]
    return np.array([f"/api/v1/{resources[i % len(resources)]}/{fake.random_int(1, 99999)}" for i in range(size)])


def place_incidents(
    traffic: Traffic, n: int, start: float, end: float, opts: GeneratorOptions
) -> list[InjectedIncident]:
    """n non-overlapping incidents (per customer and kind) on customers with >= 1 request/s."""
    rng = traffic.rng
    rates = traffic.customer_rates()
    eligible = np.flatnonzero(rates >= 1.0)
    if len(eligible) == 0:
        eligible = np.argsort(rates)[-max(1, min(5, traffic.customers)) :]
    placed: list[InjectedIncident] = []
    attempts = 0
    while len(placed) < n and attempts < 1000 * max(1, n):
        attempts += 1
        length = rng.uniform(opts.incident_min_minutes, opts.incident_max_minutes) * 60
        if end - start < length + 1200:
            break
        # leave 20 minutes of normal traffic at the start so baselines exist
        s = float(rng.uniform(start + 1200, end - length))
        inc = InjectedIncident(
            str(traffic.names[rng.choice(eligible)]), str(rng.choice(["latency", "errors"])), s, s + length
        )
        gap = 15 * 60  # distinct incidents of one customer are at least 15 minutes apart
        if any(p.customer == inc.customer and p.start - gap < inc.end and inc.start < p.end + gap for p in placed):
            continue
        placed.append(inc)
    if len(placed) < n:
        raise ValueError(f"could not place {n} incidents in {end - start:.0f} s of traffic; use more --days")
    return sorted(placed, key=lambda i: i.start)


def _write_truth(out: Path, incidents: list[InjectedIncident]) -> None:
    truth = Path(f"{out}.incidents.json")
    existing = json.loads(truth.read_text()) if truth.exists() else []
    truth.write_text(json.dumps(existing + [i.as_json() for i in incidents], indent=1))


class _Stop:
    def __init__(self) -> None:
        self.requested = False
        for s in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not in the main thread (tests): no signal handling
                signal.signal(s, self._set)

    def _set(self, signum: int, frame: object) -> None:
        self.requested = True


def generate(opts: GeneratorOptions) -> int:
    """Append lines to opts.out as configured; returns the number of lines written."""
    if opts.format not in FORMATS:
        raise ValueError(f"unknown format {opts.format!r}: expected one of {', '.join(FORMATS)}")
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(opts.seed)
    if opts.mode == "classic":
        return _classic(opts, rng)
    if opts.mode != "live":
        raise ValueError(f"unknown mode {opts.mode!r}: expected 'live' or 'classic'")
    return _live(opts, rng)


def _classic(opts: GeneratorOptions, rng: np.random.Generator) -> int:
    """The exercise's generator: random timestamps over the past days, shuffled, uniform choices."""
    n = opts.count if opts.count is not None else 1000
    days = opts.days if opts.days is not None else 30.0
    now = (opts.now or dt.datetime.now(dt.UTC)).timestamp()
    written = 0
    with opts.out.open("a") as f:
        while written < n:
            m = min(200_000, n - written)
            times = rng.uniform(now - days * 86400, now, m)
            customers = np.array([f"cust_{i}" for i in range(1, opts.customers + 1)])[
                rng.integers(0, opts.customers, m)
            ]
            lines = format_lines(
                times,
                customers,
                CLASSIC_PATHS[rng.integers(0, 4, m)],
                CLASSIC_STATUSES[rng.integers(0, len(CLASSIC_STATUSES), m)],
                rng.uniform(0.1, 2.0, m),
                opts.format,
            )
            f.write("".join(lines))
            written += m
    return written


def _last_line_time(path: Path) -> float | None:
    """Epoch seconds of the last complete line of a logpulse-format file; None if it has none."""
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 65536))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    for line in reversed(tail.splitlines()[:-1] if not tail.endswith("\n") else tail.splitlines()):
        try:
            stamp = dt.datetime.strptime(line[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
        except ValueError:
            continue
        return stamp.timestamp()
    return None


def _segments(
    opts: GeneratorOptions, rate: float, start: float, now: float, history_s: float, *, dense: bool
) -> list[tuple[float, float, int]]:
    """The backfill as (start, end, lines) spans: thinned to `backfill_max_lines` per `history_s`
    (a resumed, shorter span gets its share), except (with `dense`) the last `full_rate_minutes`,
    which keep the full rate so injected incidents have enough requests per scoring bucket to be seen."""
    full = int(rate * (now - start))
    cap = opts.backfill_max_lines
    if cap is not None and history_s > 0:
        cap = int(cap * min(1.0, (now - start) / history_s))
    if opts.count is not None:
        cap = opts.count if cap is None else min(cap, opts.count)
    if cap is None or full <= cap:
        return [(start, now, full)]
    if not dense:
        return [(start, now, cap)]
    split = max(start, now - opts.full_rate_minutes * 60)
    return [(start, split, cap), (split, now, int(rate * (now - split)))]


def _live(opts: GeneratorOptions, rng: np.random.Generator) -> int:
    traffic = Traffic(
        rng,
        opts.customers,
        opts.rate if opts.rate > 0 else 100.0,
        path_pool(opts.seed),
        latency_factor=opts.latency_factor,
        error_rate_increase=opts.error_rate_increase,
        fmt=opts.format,
    )
    now = (opts.now or dt.datetime.now(dt.UTC)).timestamp()
    days = opts.days if opts.days is not None else 1.0
    start = now - days * 86400
    resumed = False
    if opts.resume and opts.out.exists() and opts.out.stat().st_size > 0:
        last = _last_line_time(opts.out)
        # never write history twice: continue after the last line (or skip the backfill if unknown)
        start = now if last is None else min(now, max(start, last + 1))
        resumed = True
    incidents = opts.incidents if not resumed else 0
    dense = bool(incidents) and opts.count is None
    segments = _segments(opts, traffic.rate, start, now, days * 86400, dense=dense) if days > 0 and start < now else []
    if incidents:
        lo, hi = (segments[-1][0], now) if segments else (now, now + (opts.live_seconds or 0))
        traffic.incidents = place_incidents(traffic, incidents, lo, hi, opts)
        _write_truth(opts.out, traffic.incidents)
    stop = _Stop()
    written = 0
    with opts.out.open("a") as f:
        for seg_start, seg_end, lines in segments:
            blocks = max(1, int(np.ceil((seg_end - seg_start) / BLOCK_SECONDS)))
            edges = np.linspace(seg_start, seg_end, blocks + 1)
            per_block = np.diff(np.linspace(0, lines, blocks + 1).round()).astype(int)
            for b in range(blocks):
                f.write("".join(traffic.draw(edges[b], edges[b + 1], int(per_block[b]))))
                written += int(per_block[b])
                if stop.requested:
                    return written
            f.flush()
        written += _live_tail(opts, traffic, f, written, stop)
    return written


def _live_tail(opts: GeneratorOptions, traffic: Traffic, f, written: int, stop: _Stop) -> int:  # type: ignore[no-untyped-def]
    """Lines stamped with the current time at `rate` lines/s (rate 0: as fast as possible)."""
    remaining = None if opts.count is None else opts.count - written
    if remaining is not None and remaining <= 0:
        return 0
    if opts.count is None and opts.live_seconds is None and opts.rate <= 0:
        raise ValueError("--rate 0 needs --count: it writes as fast as possible")
    began = last = time.time()
    n_total = 0
    carry = 0.0
    while not stop.requested:
        if opts.live_seconds is not None and time.time() - began >= opts.live_seconds:
            break
        if opts.rate > 0:
            time.sleep(0.1)
            t = time.time()
            carry += (t - last) * opts.rate
            n = int(carry)
            carry -= n
        else:
            t = time.time()
            n = 50_000
        if remaining is not None:
            n = min(n, remaining - n_total)
        f.write("".join(traffic.draw(last, max(t, last + 1e-6), n)))
        f.flush()
        last = t
        n_total += n
        if remaining is not None and n_total >= remaining:
            break
    return n_total


def make_lines(
    n: int, *, customers: int = 5, start: dt.datetime | None = None, seconds: float = 3600.0, seed: int = 0
) -> list[str]:
    """n time-ordered live-style log lines (with newlines) in memory, for tests."""
    rng = np.random.default_rng(seed)
    t0 = (start or dt.datetime(2024, 9, 29, tzinfo=dt.UTC)).timestamp()
    traffic = Traffic(rng, customers, max(1.0, n / seconds), path_pool(seed, 20))
    return traffic.draw(t0, t0 + seconds, n)
