"""Runs of buckets completed as arrays: what the per-bucket path does to each bucket of a quiet
customer, for many buckets at once.

While no incident is open or brewing and no test passes, no tracker changes and every baseline learns
every bucket, so all of them follow closed recurrences: every signal's gate and test is evaluated for
every bucket of the run from baselines computed in closed form, with the same formulas as
`per_bucket.py`. `tests/unit/test_scoring.py` and `scripts/bench_scoring.py` check, incident by
incident, that both paths decide alike.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from itertools import repeat

import numpy as np

from logpulse.scoring.baselines import MIN_SIGMA, TrafficBaseline, decayed_run
from logpulse.scoring.history import COLUMNS
from logpulse.scoring.incidents import Tracker
from logpulse.scoring.signals import (
    MIN_LATENCY_REQUESTS,
    MIN_SURGE_REQUESTS,
    drop_evidence_many,
    error_evidence_many,
    latency_evidence_many,
    surge_evidence_many,
)
from logpulse.scoring.state import (
    HOT_EVIDENCE,
    MIN_EXPECTED_FOR_DROP,
    MIN_SURGE_BUCKET,
    SLO_MIN_REQUESTS,
    ScorerState,
)

RowsAt = Callable[[np.ndarray], np.ndarray]
"""The cumulative rows (history + the run's) at the given row numbers."""


def run(s: ScorerState, k0: int, end: int, keys: np.ndarray, vals: np.ndarray) -> tuple[int, bool]:
    """Complete buckets k0..end-1 of a quiet customer as arrays, as long as no test passes and no
    incident could start; `keys`/`vals` are the run's non-empty buckets and their sums.

    The run is committed up to the first bucket where a test passes or a "still hot" check holds —
    that bucket then goes the per-bucket way, returns (it, True) — or where a silence becomes long
    enough to be skipped (returns (it, False)). Costs a fixed number of numpy calls per run (each signal's
    windows are tested in one call, the "still hot" window as a column of its own; ~1 ms of CPU a run
    of ~200 buckets on the nginx fleet) plus O(buckets) array work, the special functions of the
    tested windows most of it.
    """
    cfg, hist, lat, err, tra, win = s.config, s.hist, s.latency, s.errors, s.traffic, s.windows
    m = end - k0
    pos = keys - k0  # the run's non-empty buckets
    n_nz = vals[0]
    # a silence of `keep` buckets is skipped by the scorer's fast-forward instead: stop at its bucket
    stop = m
    if m + s.idle >= win.keep:  # (shorter: no silence in it can reach `keep` buckets)
        prev = np.concatenate(([-1], pos))
        first_long = np.maximum(prev + 1, prev + 1 + win.keep - np.concatenate(([s.idle], np.zeros(len(pos)))))
        long_gap = (first_long < np.concatenate((pos, [m]))).nonzero()[0]
        stop = int(first_long[long_gap[0]]) if len(long_gap) else m
    # latency and error baselines before each non-empty bucket, in closed form:
    # s(before j) = keep^j (s0 + sum over non-empty l < j of u_l keep^-(l+1))
    keep = 1.0 - win.decay
    start = np.array([lat.s0, lat.s1, lat.s2, err.n, err.failed])
    prior, acc = decayed_run(start, pos, np.vstack([n_nz, vals[1], vals[2], n_nz, vals[3]]), keep)
    # traffic: the level before every bucket, the profile factor, the expected count
    mask = np.zeros(m, dtype=bool)
    mask[pos] = True
    before = np.cumsum(mask) - mask  # non-empty buckets before each bucket
    a = cfg.bucket_s / TrafficBaseline.LEVEL_S
    tkeep = 1.0 - a
    _, tacc = decayed_run(np.array([tra.level]), pos, a * n_nz[None, :], tkeep)
    tacc = np.concatenate(([0.0], tacc[0]))
    level = tkeep ** np.arange(m, dtype=np.float64) * (tra.level + tacc[before])
    sim = tra.copy()
    expected = level * sim.run_factors(k0, mask, pos, n_nz)
    # cumulative rows (history tail + this run); bucket j's row number is t0 + j
    t0, tail, last = hist.total, hist.tail(), np.array(hist.last)
    rows = np.empty((m, COLUMNS))
    sums = np.concatenate([np.zeros((1, 5)), np.cumsum(vals, axis=1).T])
    rows[:, :5] = last[:5] + sums[before + mask]
    rows[:, 5] = last[5] + np.cumsum(expected)
    cum = np.concatenate([tail, rows])
    base = t0 - len(tail)  # row number of cum[0]

    def at(row: np.ndarray) -> np.ndarray:
        rows_at: np.ndarray = cum[row - base]
        return rows_at

    ks = pos + k0
    mine = pos + t0
    recent = rows[pos, 0] - at(np.maximum(mine - win.hot, 0))[:, 0]
    judged = recent >= MIN_LATENCY_REQUESTS
    events = np.zeros(m, dtype=bool)
    seen = np.arange(len(pos))  # non-empty buckets of the run before each
    s0 = prior[0]
    if judged.any():
        # latency
        safe = np.where(s0 > 0, s0, 1.0)
        mu = np.where(s0 > 0, prior[1] / safe, 0.0)
        sigma = np.where(s0 > 0, np.maximum(np.sqrt(np.maximum(0.0, prior[2] / safe - mu**2)), MIN_SIGMA), MIN_SIGMA)
        warm = (lat.buckets + seen >= cfg.warmup_buckets) & (s0 >= 30)
        g = (judged & (vals[1] / n_nz - mu >= win.half_ln_ratio) & warm).nonzero()[0]
        if len(g):
            wn, ws, _ = _window_sums(s, at, mine[g], ks[g], s.trackers["latency"])
            sig = sigma[g, None] * np.sqrt(1 + wn / s0[g, None])
            ratios = (*repeat(cfg.latency_ratio, wn.shape[1] - 1), math.sqrt(cfg.latency_ratio))
            events[pos[g]] |= _any_passes(latency_evidence_many(wn, ws, mu[g, None], sig, ratios), cfg.min_evidence)
        # errors
        en, ef = prior[3], prior[4]
        warm = (err.buckets + seen >= cfg.warmup_buckets) & (en >= 30)
        g = (judged & (vals[3] > 0) & warm).nonzero()[0]
        if len(g):
            p = np.where(en[g] > 0, ef[g] / np.where(en[g] > 0, en[g], 1.0), 0.0)[:, None]
            pc = np.maximum(p, 0.001)
            p_high = np.minimum(1.0, pc + np.sqrt(pc * (1.0 - pc) / np.maximum(en[g, None], 1.0)))
            wn, _, wf = _window_sums(s, at, mine[g], ks[g], s.trackers["errors"])
            inc = cfg.error_increase
            ev = error_evidence_many(wn, wf, p, p_high, (*repeat(inc, wn.shape[1] - 1), inc / 2))
            events[pos[g]] |= _any_passes(ev, cfg.min_evidence)
    # traffic: surge / drop where requests arrived; a drop also where a silence has become evidence
    hf = win.half_factor
    exp_nz = expected[pos]
    silent = ks + np.ceil(MIN_EXPECTED_FOR_DROP / np.maximum(exp_nz, 1e-9))
    silent_from = np.concatenate(([s.silent_from], silent))[before]  # as of each bucket
    gate = ~mask & (np.arange(k0, end) >= silent_from)
    gate[pos] = ((n_nz >= exp_nz * hf) & (n_nz >= MIN_SURGE_BUCKET)) | (n_nz <= exp_nz / hf)
    g = gate[:stop].nonzero()[0]
    g = g[tra.buckets + g >= 2 * cfg.warmup_buckets]
    if len(g):
        counts = np.zeros(m)
        counts[pos] = n_nz
        events[g] |= _traffic_events(s, at, g + t0, g + k0, counts[g], expected[g])
    # SLO burn: its "still hot" check already starts a run
    if win.slo_target is not None:
        g = (vals[4] > 0).nonzero()[0]
        if len(g):

            def counts_at(row: np.ndarray) -> np.ndarray:  # (requests, 5xx): the run's rows, or older ones
                older = s.steps.at(row)
                inside = row >= t0
                older[inside] = rows[row[inside] - t0][:, [0, 4]]
                return older

            events[pos[g]] |= _slo_hot(s, counts_at, mine[g], ks[g], win.slo_target)
    hits = events[:stop].nonzero()[0]
    stop, stopped = (int(hits[0]), True) if len(hits) else (stop, False)
    if stop:  # commit buckets k0 .. k0+stop-1
        done = int(np.searchsorted(pos, stop))
        total = start + (acc[:, done - 1] if done else 0.0)
        lat.s0, lat.s1, lat.s2, err.n, err.failed = (keep**stop * total).tolist()
        lat.buckets += done
        err.buckets += done
        if stop == m:
            s.traffic = tra = sim
        else:
            tra.run_factors(k0, mask[:stop], pos[:done], n_nz[:done])
        tra.level = float(tkeep**stop * (tra.level + tacc[done]))
        tra.buckets += stop
        hist.extend(rows[:stop])
        s.steps.add(pos[:done] + t0, rows[pos[:done]][:, [0, 4]])
        s.idle = stop - 1 - int(pos[done - 1]) if done else s.idle + stop
        if done:
            s.silent_from = int(silent[done - 1])
    return k0 + stop, stopped


def _window_sums(
    s: ScorerState, at: RowsAt, mine: np.ndarray, ks: np.ndarray, tracker: Tracker
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The per-bucket path's window sums for many buckets: (requests, sum ln d, failed), a column per
    latency window, then the "still hot" window."""
    windows = _column((*s.windows.latency, s.windows.hot))
    w = np.minimum(windows[None, :], np.maximum(1, ks - tracker.resolved_at)[:, None])
    last, first = at(mine), at(np.maximum(mine[:, None] - w, 0))
    return last[:, None, 0] - first[..., 0], last[:, None, 1] - first[..., 1], last[:, None, 3] - first[..., 3]


def _traffic_events(
    s: ScorerState, at: RowsAt, mine: np.ndarray, ks: np.ndarray, n: np.ndarray, expected: np.ndarray
) -> np.ndarray:
    """Would the per-bucket traffic signal open or start a drop/surge run at these buckets (trackers
    closed)?"""
    cfg = s.config
    drop, surge = s.trackers["traffic_drop"], s.trackers["traffic_surge"]
    since = drop if drop.resolved_at > surge.resolved_at else surge
    sizes = _column((*s.windows.traffic, s.windows.hot))
    fresh = np.minimum(sizes[None, :], np.maximum(1, ks - since.resolved_at)[:, None])
    first = np.where(mine[:, None] + 1 > sizes[None, :], mine[:, None] - fresh, 0)
    last, rows = at(mine), at(first)
    observed = last[:, None, 0] - rows[..., 0]
    exp = last[:, None, 5] - rows[..., 5]
    ratios = (*repeat(cfg.traffic_factor, len(sizes) - 1), math.sqrt(cfg.traffic_factor))
    check_drop = (n < expected)[:, None] & (exp >= MIN_EXPECTED_FOR_DROP)
    check_surge = (n > expected)[:, None] & (observed >= MIN_SURGE_REQUESTS)
    events = np.zeros(len(ks), dtype=bool)
    for check, many in ((check_drop, drop_evidence_many), (check_surge, surge_evidence_many)):
        tested: np.ndarray = check.max(axis=1)  # any, typed
        rows = tested.nonzero()[0]  # the tails are the cost: only where a window is tested
        if len(rows):
            ev = many(observed[rows], exp[rows], ratios)
            events[rows] |= _any_passes(np.where(check[rows], ev, 0.0), cfg.min_evidence)
    return events


def _any_passes(evidence: np.ndarray, min_evidence: float) -> np.ndarray:
    """Per row of window tests (the "still hot" window last): does a window reach `min_evidence`, or
    the last one `HOT_EVIDENCE`? (min_evidence > 0, so a window not tested, evidence 0, never does.)"""
    passes: np.ndarray = evidence >= _column((*repeat(min_evidence, evidence.shape[1] - 1), HOT_EVIDENCE))
    anywhere: np.ndarray = passes.max(axis=1)  # any, typed
    return anywhere


@functools.lru_cache(maxsize=64, typed=True)  # (7, 7) and (7.0, 7.0) are different columns
def _column(values: tuple[float, ...]) -> np.ndarray:
    """Window sizes or limits as an array, made once per process (read-only: shared)."""
    column = np.array(values)
    column.flags.writeable = False
    return column


def _slo_hot(s: ScorerState, counts_at: RowsAt, mine: np.ndarray, ks: np.ndarray, target: float) -> np.ndarray:
    """Would the per-bucket SLO signal find a rule burning (its "hot" condition) at these buckets?
    (`counts_at`: cumulative requests and 5xx at row numbers.)"""
    rules = np.array(s.windows.slo)  # a row per rule: long window, short window, burn rate
    long_w, limit = rules[:, :1], rules[:, 2:]
    # every rule's windows in one look-up: the buckets themselves, then (long, short) start rows per rule
    back = np.concatenate(([0.0], rules[:, :2].ravel())).astype(np.int64)
    counts = counts_at(np.maximum(mine[None, :] - back[:, None], 0).ravel()).reshape(len(back), len(mine), 2)
    sums = counts[0] - counts[1:]  # (requests, 5xx) per window: long and short of each rule, alternating
    long_n, long_e, short_n, short_e = sums[0::2, :, 0], sums[0::2, :, 1], sums[1::2, :, 0], sums[1::2, :, 1]
    history = ks - (s.first_bucket or 0) + 1
    counted = (history >= long_w) & (long_n >= SLO_MIN_REQUESTS) & (short_n > 0)
    # the rates of windows not `counted` do not matter: a request stands in for none (no division by 0)
    long_n, short_n = np.maximum(long_n, 1.0), np.maximum(short_n, 1.0)
    burning = ((long_e / long_n) / (1.0 - target) >= limit) & ((short_e / short_n) / (1.0 - target) >= limit / 2)
    hot: np.ndarray = (counted & burning).any(axis=0)
    return hot
