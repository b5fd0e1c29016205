"""The anomaly benchmark's scenarios: logs with known incidents, and the incidents they hold.

Two families: the generator's (`logpulse generate --incidents N`: latency x3-4 / errors +30-50 points,
2-10 min) and synthetic ones written here (per-customer Poisson traffic with optional ±60% day/night
swings and heavy-tailed latency; traffic drops, surges, latency and error shifts, lasting steps).
`anomaly` ingests them and compares what the API reports with the truth; `scoring` times the scorer
on the same logs, so two revisions that print the same digests there report the same incidents.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from logpulse.generator import GeneratorOptions, format_lines, generate

NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)


@dataclass
class Scenario:
    """The generator's scenarios (today's benchmark)."""

    name: str
    seed: int
    customers: int
    rate: float
    days: float
    incidents: int
    latency_factor: float = 3.0
    error_increase: float = 0.3
    mode: str = "live"


@dataclass
class Synthetic:
    """Traffic written here: `effect` is drop0 | drop10 | surge5 | latency1.5 | errors5 | step1.7 | none."""

    name: str
    seed: int
    customers: int
    rate: float
    days: float
    effect: str
    incidents: int = 0
    min_rate: float = 2.0  # incidents only on customers with at least this many requests/s
    diurnal: float = 0.0  # amplitude of the day/night volume swing (0.6 = ±60%)
    heavy_tails: bool = False
    minutes: tuple[float, float] = (10.0, 20.0)
    mode: str = "synthetic"


SCENARIOS: list[Scenario | Synthetic] = [
    Scenario("20 customers, 60 req/s, x3 / +30 pts", 1, 20, 60, 0.25, 12),
    Scenario("10 customers, 30 req/s, x3 / +30 pts", 2, 10, 30, 0.25, 8),
    Scenario("40 customers, 150 req/s, x4 / +50 pts", 3, 40, 150, 0.25, 16, 4.0, 0.5),
    Scenario("5 customers, 10 req/s, x3 / +30 pts", 4, 5, 10, 0.5, 6),
    Scenario("quiet: 20 customers, 40 req/s, 1 day", 5, 20, 40, 1.0, 0),
    Scenario("classic shuffled, 50 customers, 30 days", 6, 50, 0, 30.0, 0, mode="classic"),
    Synthetic("traffic drop to 0", 11, 12, 40, 0.4, "drop0", 12, min_rate=1.0),
    Synthetic("traffic drop to 10%", 12, 12, 40, 0.4, "drop10", 12, min_rate=1.0),
    Synthetic("traffic surge x5", 13, 12, 40, 0.4, "surge5", 12, min_rate=1.0),
    Synthetic("latency x1.5, >= 2 req/s", 14, 12, 40, 0.4, "latency1.5", 12),
    Synthetic("errors +5 pts, >= 2 req/s", 15, 12, 40, 0.4, "errors5", 12),
    Synthetic("diurnal ±60%, heavy tails, 1 day", 16, 20, 30, 1.0, "none", diurnal=0.6, heavy_tails=True),
    Synthetic("lasting x1.7 latency step", 17, 8, 30, 0.25, "step1.7", 4, minutes=(180.0, 180.0)),
]

KIND = {
    "drop0": "traffic_drop",
    "drop10": "traffic_drop",
    "surge5": "traffic_surge",
    "latency1.5": "latency",
    "errors5": "errors",
    "step1.7": "latency",
}


def ts(s: str) -> float:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass
class _Profile:
    rate: np.ndarray
    median: np.ndarray
    sigma: np.ndarray
    fail: np.ndarray
    names: list[str] = field(default_factory=list)


def synthesize(sc: Synthetic, out: Path) -> tuple[int, list[dict]]:
    """Write the scenario's log (time-ordered) and return (lines, ground truth)."""
    rng = np.random.default_rng(sc.seed)
    w = rng.lognormal(0.0, 0.8, sc.customers)
    prof = _Profile(
        rate=w / w.sum() * sc.rate,
        median=rng.lognormal(np.log(0.25), 0.5, sc.customers),
        sigma=rng.uniform(0.25, 0.5, sc.customers),
        fail=rng.uniform(0.005, 0.05, sc.customers),
        names=[f"cust_{i}" for i in range(1, sc.customers + 1)],
    )
    end = NOW.timestamp()
    start = end - sc.days * 86400
    truth: list[dict] = []
    eligible = [i for i in range(sc.customers) if prof.rate[i] >= sc.min_rate]
    if sc.incidents and not eligible:
        raise ValueError(f"{sc.name}: no customer with >= {sc.min_rate} req/s")
    busy: dict[int, list[tuple[float, float]]] = {}
    tries = 0
    while len(truth) < sc.incidents and tries < 10_000:
        tries += 1
        i = int(rng.choice(eligible))
        length = rng.uniform(*sc.minutes) * 60
        if sc.effect == "step1.7":
            s = float(rng.uniform(start + 3600, end - length))
            e = end
        else:
            s = float(rng.uniform(start + 3600, end - length - 1800))  # an hour of history, 30 min after
            e = s + length
        if any(a - 1800 < e and s < b + 1800 for a, b in busy.get(i, [])):
            continue
        busy.setdefault(i, []).append((s, e))
        truth.append({"customer": prof.names[i], "kind": KIND[sc.effect], "start": iso(s), "end": iso(e), "c": i})
    lines = 0
    with out.open("w") as f:
        for b0 in np.arange(start, end, 3600.0):
            b1 = min(b0 + 3600.0, end)
            f.write("".join(_draw(rng, sc, prof, truth, b0, b1)))
    for t in truth:
        del t["c"]
    lines = sum(1 for _ in out.open())
    return lines, truth


def _draw(
    rng: np.random.Generator, sc: Synthetic, prof: _Profile, truth: list[dict], b0: float, b1: float
) -> list[str]:
    """One hour of every customer's requests: Poisson by thinning (day/night swing), then incidents."""
    peak = 1.0 + sc.diurnal
    times, cust = [], []
    for i in range(sc.customers):
        n = rng.poisson(prof.rate[i] * peak * (b1 - b0))
        t = rng.uniform(b0, b1, n)
        if sc.diurnal:
            factor = 1.0 + sc.diurnal * np.sin(2 * np.pi * ((t % 86400) / 86400 - 0.25))  # low at 00:00 UTC
            t = t[rng.random(n) < factor / peak]
        for inc in truth:
            if inc["c"] != i or sc.effect not in ("drop0", "drop10", "surge5"):
                continue
            s, e = ts(inc["start"]), ts(inc["end"])
            if e <= b0 or s >= b1:
                continue
            inside = (t >= s) & (t < e)
            if sc.effect == "drop0":
                t = t[~inside]
            elif sc.effect == "drop10":
                t = t[~inside | (rng.random(len(t)) < 0.1)]
            else:  # 4 x more requests on top: x5
                lo, hi = max(s, b0), min(e, b1)
                t = np.concatenate([t, rng.uniform(lo, hi, rng.poisson(4 * prof.rate[i] * (hi - lo)))])
        times.append(t)
        cust.append(np.full(len(t), i))
    t = np.concatenate(times)
    c = np.concatenate(cust).astype(np.int64)
    order = np.argsort(t)
    t, c = t[order], c[order]
    n = len(t)
    d = rng.lognormal(np.log(prof.median[c]), prof.sigma[c])
    if sc.heavy_tails:  # 2% of requests 1-50x slower (Pareto tail)
        d *= np.where(rng.random(n) < 0.02, np.minimum(50.0, rng.pareto(1.5, n) + 1.0), 1.0)
    p = prof.fail[c].copy()
    for inc in truth:
        s, e = ts(inc["start"]), ts(inc["end"])
        hit = (c == inc["c"]) & (t >= s) & (t < e)
        if sc.effect in ("latency1.5", "step1.7"):
            d[hit] *= 1.5 if sc.effect == "latency1.5" else 1.7
        elif sc.effect == "errors5":
            p[hit] += 0.05
    failed = rng.random(n) < p
    status = np.where(failed, rng.choice(["500", "502", "404", "429"], n), "200")
    names = np.array(prof.names)[c]
    return format_lines(t, names, np.array(["/api/v1/items"] * n), status, np.maximum(d, 0.001))


def write_log(sc: Scenario | Synthetic, log: Path) -> tuple[int, list]:
    """Write the scenario's log; (its line count, the injected incidents it holds)."""
    if isinstance(sc, Synthetic):
        return synthesize(sc, log)
    if sc.mode == "classic":
        lines = generate(
            GeneratorOptions(
                out=log, count=300_000, mode="classic", customers=sc.customers, days=sc.days, seed=sc.seed, now=NOW
            )
        )
        return lines, []
    lines = generate(
        GeneratorOptions(
            out=log,
            rate=sc.rate,
            customers=sc.customers,
            days=sc.days,
            seed=sc.seed,
            incidents=sc.incidents,
            now=NOW,
            backfill_max_lines=None,
            live_seconds=0,
            latency_factor=sc.latency_factor,
            error_rate_increase=sc.error_increase,
        )
    )
    return lines, json.loads(Path(f"{log}.incidents.json").read_text()) if sc.incidents else []
