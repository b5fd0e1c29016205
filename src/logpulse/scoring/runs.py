"""Runs of buckets completed as arrays: what the per-bucket path does to each bucket of a quiet
customer, for many buckets at once.

While no incident is open and no test passes, the baselines follow closed recurrences: every
signal's gate and test is evaluated for every bucket of the run from baselines computed in closed
form, with the same formulas as `per_bucket.py`. Where a signal is only "still hot" the run follows
the per-bucket path through the stretch (traffic here, latency and errors in `stretches.py`, SLO
burn in `slo_run.py`). `tests/unit/test_scoring_runs.py` and `scripts.benchmarks.scoring` check,
incident by incident, that both paths decide alike.
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
    drop_tail,
    error_evidence_many,
    latency_evidence_many,
    surge_tail,
)
from logpulse.scoring.slo_run import Stretch, hot_at, slo_walk
from logpulse.scoring.state import (
    HOT_EVIDENCE,
    MIN_EXPECTED_FOR_DROP,
    MIN_SURGE_BUCKET,
    ScorerState,
)
from logpulse.scoring.stretches import BaselinePath, Gate, Tests

_INPUT_ROWS = np.array([0, 1, 2, 0, 3])  # the sums of `run`'s decayed rows, of the buckets' five
_INPUT_ROWS.flags.writeable = False

RowsAt = Callable[[np.ndarray], np.ndarray]
"""The cumulative rows (history + the run's) at the given row numbers."""


def run(s: ScorerState, k0: int, end: int, keys: np.ndarray, vals: np.ndarray) -> tuple[int, bool]:
    """Complete buckets k0..end-1 of a customer with no incident open (`may_start`) as arrays, as
    long as no incident opens; `keys`/`vals` are the run's non-empty buckets and their sums.

    The run is committed up to the first bucket where an incident opens — that bucket then goes the
    per-bucket way, returns (it, True) — or where a silence becomes long enough to be skipped
    (returns (it, False)); through buckets that are only "still hot" it goes on, and the trackers'
    runs of hot buckets at its end are set as the per-bucket path would have left them. Costs a
    number of numpy calls per run (each signal's windows are tested in one call, the "still hot"
    window as a column of its own, and a few more per hot stretch; ~1 ms of CPU a run of ~250
    buckets on the nginx fleet) plus O(buckets) array work, the special functions of the tested
    windows most of it.
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
    # and the traffic level (its own decay) in the same pass: one row per sum
    keep = 1.0 - win.decay
    a = cfg.bucket_s / TrafficBaseline.LEVEL_S
    tkeep = 1.0 - a
    start = np.array([lat.s0, lat.s1, lat.s2, err.n, err.failed, tra.level])
    inputs = np.concatenate((vals[_INPUT_ROWS], a * vals[:1]))  # n, ln d, ln² d, n, failed, a n
    prior, acc = decayed_run(start, pos, inputs, _keeps(keep, tkeep), _KEEP_ROWS)
    # traffic: the level before every bucket, the profile factor, the expected count
    mask = np.zeros(m, dtype=bool)
    mask[pos] = True
    through = np.cumsum(mask)  # non-empty buckets up to each bucket
    before = through - mask  # ... before it
    tacc = np.concatenate(([0.0], acc[5]))
    level = tkeep ** np.arange(m, dtype=np.float64) * (tra.level + tacc[before])
    sim = tra.copy()
    expected = level * sim.run_factors(k0, mask, pos, n_nz)
    # cumulative rows (history tail + this run); bucket j's row number is t0 + j
    t0, tail, last = hist.total, hist.tail(), np.array(hist.last)
    rows = np.empty((m, COLUMNS))
    sums = np.concatenate([np.zeros((1, 5)), np.cumsum(vals, axis=1).T])
    rows[:, :5] = last[:5] + sums[through]
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
    # latency and errors: through their hot stretches, up to where a test passes
    trackers = s.trackers
    lat_path = BaselinePath.of(
        keep, pos, inputs[:3], start[:3], lat.buckets, prior[:3], acc[:3], _hot_from(trackers["latency"], k0)
    )
    err_path = BaselinePath.of(
        keep, pos, inputs[3:5], start[3:5], err.buckets, prior[3:5], acc[3:5], _hot_from(trackers["errors"], k0)
    )
    tested = judged.any()
    if tested or lat_path.brewing:
        gate, tests = _latency_gate(s, judged, vals), _latency_tests(s, at, t0, k0)
        _stop_at(events, stop, lat_path.walk(stop, gate, tests, trackers["latency"].new_normal_buckets))
    if tested or err_path.brewing:
        gate, tests = _errors_gate(s, judged, vals), _errors_tests(s, at, t0, k0)
        _stop_at(events, stop, err_path.walk(stop, gate, tests, trackers["errors"].new_normal_buckets))
    # traffic: surge / drop where requests arrived; a drop also where a silence has become evidence
    hf = win.half_factor
    exp_nz = expected[pos]
    silent = ks + np.ceil(MIN_EXPECTED_FOR_DROP / np.maximum(exp_nz, 1e-9))
    silent_from = np.concatenate(([s.silent_from], silent))[before]  # as of each bucket
    gate = ~mask & (np.arange(k0, end) >= silent_from)
    gate[pos] = ((n_nz >= exp_nz * hf) & (n_nz >= MIN_SURGE_BUCKET)) | (n_nz <= exp_nz / hf)
    g = gate[:stop].nonzero()[0]
    g = g[tra.buckets + g >= 2 * cfg.warmup_buckets]
    counts = np.zeros(m)
    counts[pos] = n_nz
    hot_drop = hot_surge = np.zeros(m, dtype=bool)
    if len(g):
        n_g, expected_g = counts[g], expected[g]
        opens_drop, opens_surge, drop_g, surge_g = _traffic_events(
            s, at, g + t0, g + k0, n_g < expected_g, n_g > expected_g
        )
        events[g] |= opens_drop | opens_surge
        hot_drop, hot_surge = np.zeros(m, dtype=bool), np.zeros(m, dtype=bool)
        hot_drop[g], hot_surge[g] = drop_g, surge_g

    def traffic_at(j: np.ndarray) -> TrafficFlags:
        """Buckets j's traffic tests with both checks forced (while a drop or surge brews,
        `per_bucket._traffic`), and whether each bucket is below / above its expected count."""
        n_j, e_j = counts[j], expected[j]
        forced = tra.buckets + j >= 2 * cfg.warmup_buckets  # before: not warm, nothing tested
        return (n_j < e_j, n_j > e_j, *_traffic_events(s, at, j + t0, j + k0, forced, forced))

    # SLO burn: through its hot stretches, up to where a rule fires
    slo_hot: list[Stretch] = []
    if win.slo_target is not None:
        server_errors = pos[vals[4] > 0]
        hot_slo = _hot_from(trackers["slo_burn"], k0)
        if len(server_errors) or hot_slo is not None:

            def counts_at(row: np.ndarray) -> np.ndarray:  # (requests, 5xx): the run's rows, or older ones
                older = s.steps.at(row)
                inside = row >= t0
                older[inside] = rows[row[inside] - t0][:, [0, 4]]
                return older

            slo_stop, slo_hot = slo_walk(s, counts_at, t0, k0, server_errors, stop, win.slo_target, hot_slo)
            _stop_at(events, stop, slo_stop)
    hits = events[:stop].nonzero()[0]
    stop, stopped = (int(hits[0]), True) if len(hits) else (stop, False)
    stop, stopped, brewing = _through_hot_traffic(hot_drop, hot_surge, stop, stopped, traffic_at)
    s.trackers["traffic_drop"].run_start, s.trackers["traffic_surge"].run_start = (
        None if b is None else b + k0 for b in brewing
    )
    if stop:  # commit buckets k0 .. k0+stop-1
        done = int(np.searchsorted(pos, stop))
        (lat.s0, lat.s1, lat.s2), lat.buckets, hot_lat = lat_path.state_at(stop)
        (err.n, err.failed), err.buckets, hot_err = err_path.state_at(stop)
        s.trackers["latency"].run_start = None if hot_lat is None else hot_lat + k0
        s.trackers["errors"].run_start = None if hot_err is None else hot_err + k0
        hot_slo = hot_at(slo_hot, stop)
        s.trackers["slo_burn"].run_start = None if hot_slo is None else hot_slo + k0
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


def may_start(s: ScorerState, k: int) -> bool:
    """May a run start at bucket k while runs of hot buckets go on (`ScorerState.quiet` is False)?
    Yes where the run follows them from its start: no incident open, traffic's trackers not hot (a
    run takes their stretches only from a hot bucket of its own), and latency's and errors' baselines
    still frozen at bucket k (`Tracker.learns`: not once a stretch lasts `new_normal_buckets`)."""
    trackers = s.trackers
    if s.idle >= s.windows.keep:  # the scorer skips such a silence (quiet only), a run stops before it
        return False
    for tracker in trackers.values():
        if tracker.current is not None:
            return False
    if trackers["traffic_drop"].run_start is not None or trackers["traffic_surge"].run_start is not None:
        return False
    for kind in ("latency", "errors"):
        tracker = trackers[kind]
        if tracker.run_start is not None and k - tracker.run_start >= tracker.new_normal_buckets:
            return False
    return True


def _hot_from(tracker: Tracker, k0: int) -> int | None:
    """The tracker's run of hot buckets going on at the run's start, as an offset (<= 0) in the run."""
    return None if tracker.run_start is None else tracker.run_start - k0


def _stop_at(events: np.ndarray, stop: int, hit: int | None) -> None:
    """Mark a bucket where a walk found an incident opening (or its end), if before `stop`."""
    if hit is not None and hit < stop:
        events[hit] = True


def _latency_gate(s: ScorerState, judged: np.ndarray, vals: np.ndarray) -> Gate:
    """The per-bucket path's latency gate: judged, slower than usual by half the effect, baseline warm."""
    cfg, half = s.config, s.windows.half_ln_ratio
    mean = vals[1] / vals[0]

    def gate(prior: np.ndarray, i0: int, buckets: int) -> np.ndarray:
        n = prior.shape[1]
        s0 = prior[0]
        warm = _warm(s0, buckets, cfg.warmup_buckets)
        # mu where s0 > 0 (where not, not warm: any value does, no division by 0)
        mu = prior[1] / (s0 if s0.min() > 0 else np.where(s0 > 0, s0, 1.0))
        passes: np.ndarray = judged[i0 : i0 + n] & (mean[i0 : i0 + n] - mu >= half) & warm
        return passes

    return gate


def _latency_tests(s: ScorerState, at: RowsAt, t0: int, k0: int) -> Tests:
    """`per_bucket._latency`'s tests at buckets of the run (offsets), against the given baselines."""
    cfg, tracker = s.config, s.trackers["latency"]

    ratios = (*repeat(cfg.latency_ratio, len(s.windows.latency)), math.sqrt(cfg.latency_ratio))

    def tests(base: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s0 = base[0]
        if s0.min() > 0:  # (always: a tested bucket's baseline is warm, s0 >= 30) the same floats, fewer calls
            mu = base[1] / s0
            sigma = np.maximum(np.sqrt(np.maximum(0.0, base[2] / s0 - mu**2)), MIN_SIGMA)
        else:
            safe = np.where(s0 > 0, s0, 1.0)
            mu = np.where(s0 > 0, base[1] / safe, 0.0)
            sigma = np.where(s0 > 0, np.maximum(np.sqrt(np.maximum(0.0, base[2] / safe - mu**2)), MIN_SIGMA), MIN_SIGMA)
        sums = _window_sums(s, at, offsets + t0, offsets + k0, tracker)
        wn, ws = sums[..., 0], sums[..., 1]
        sig = sigma[:, None] * np.sqrt(1 + wn / s0[:, None])
        # an empty window (ending at an empty bucket) tests nothing: a request stands in for none
        return _opens_and_hot(
            latency_evidence_many(np.maximum(wn, 1.0), ws, mu[:, None], sig, ratios), cfg.min_evidence
        )

    return tests


def _errors_gate(s: ScorerState, judged: np.ndarray, vals: np.ndarray) -> Gate:
    """The per-bucket path's error gate: judged, failures in the bucket, baseline warm."""
    cfg = s.config
    failed = vals[3] > 0

    def gate(prior: np.ndarray, i0: int, buckets: int) -> np.ndarray:
        n = prior.shape[1]
        passes: np.ndarray = judged[i0 : i0 + n] & failed[i0 : i0 + n] & _warm(prior[0], buckets, cfg.warmup_buckets)
        return passes

    return gate


def _errors_tests(s: ScorerState, at: RowsAt, t0: int, k0: int) -> Tests:
    """`per_bucket._errors`' tests at buckets of the run (offsets), against the given baselines."""
    cfg, tracker = s.config, s.trackers["errors"]
    increases = (*repeat(cfg.error_increase, len(s.windows.latency)), cfg.error_increase / 2)

    def tests(base: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        en, ef = base[0], base[1]
        # (en > 0 always: a tested bucket's baseline is warm, n >= 30) the same floats, fewer calls
        p = (ef / en if en.min() > 0 else np.where(en > 0, ef / np.where(en > 0, en, 1.0), 0.0))[:, None]
        pc = np.maximum(p, 0.001)
        p_high = np.minimum(1.0, pc + np.sqrt(pc * (1.0 - pc) / np.maximum(en[:, None], 1.0)))
        sums = _window_sums(s, at, offsets + t0, offsets + k0, tracker)
        wn, wf = sums[..., 0], sums[..., 3]
        ev = error_evidence_many(np.maximum(wn, 1.0), wf, p, p_high, increases)
        return _opens_and_hot(ev, cfg.min_evidence)

    return tests


def _warm(s0: np.ndarray, buckets: int, warmup_buckets: int) -> np.ndarray:
    """`LatencyBaseline.warm` / `ErrorBaseline.warm` before each of a segment's buckets (`s0`: the
    baseline's count before each, `buckets`: its `buckets` before the first, one more each)."""
    warm: np.ndarray = s0 >= 30
    if buckets < warmup_buckets:
        warm[: warmup_buckets - buckets] = False
    return warm


def _opens_and_hot(evidence: np.ndarray, min_evidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Per row of window tests (the "still hot" window last): does a window open an incident (reach
    `min_evidence`), is the bucket still hot (the last window reaches `HOT_EVIDENCE`)?"""
    opens: np.ndarray = np.logical_or.reduce(evidence[:, :-1] >= min_evidence, axis=1)
    hot: np.ndarray = evidence[:, -1] >= HOT_EVIDENCE
    return opens, hot


def _window_sums(s: ScorerState, at: RowsAt, mine: np.ndarray, ks: np.ndarray, tracker: Tracker) -> np.ndarray:
    """The per-bucket path's window sums for many buckets: every history column's (requests, sum ln d,
    ...: the last axis) over each latency window, then the "still hot" window (the middle axis). One
    look-up of the rows: each bucket's own row, then the rows before its windows."""
    win = s.windows
    backs = _column((0, *win.latency, win.hot))
    if len(ks) and int(ks[0]) - tracker.resolved_at >= max(*win.latency, win.hot):
        w = backs[None, :]  # no window reaches back into the last incident (ks increase)
    else:
        w = np.minimum(backs[None, :], np.maximum(1, ks - tracker.resolved_at)[:, None])
        w[:, 0] = 0
    rows = at(np.maximum(mine[:, None] - w, 0))
    sums: np.ndarray = rows[:, :1] - rows[:, 1:]
    return sums


Brewing = tuple[int | None, int | None]
"""The first bucket (offset in the run) of the traffic drop's and surge's current run of hot buckets."""


TrafficFlags = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""Per bucket: below and above its expected count; a drop and a surge would open; a drop and a
surge are "still hot" (the last four with both checks forced)."""

TRAFFIC_BLOCK = 16  # buckets after a hot one tested per call (most cool down within a few)


def _through_hot_traffic(
    hot_drop: np.ndarray,
    hot_surge: np.ndarray,
    stop: int,
    stopped: bool,
    traffic_at: Callable[[np.ndarray], TrafficFlags],
) -> tuple[int, bool, Brewing]:
    """Carry the run through buckets where only traffic is "still hot" (no window opens an incident).

    Such a bucket changes nothing but its tracker's `run_start` (the traffic baseline learns from every
    bucket while no traffic incident is open; the other signals do not look at traffic's trackers), so
    instead of stopping there the run follows the per-bucket path's traffic steps: from a hot bucket on,
    each bucket's tests are redone with the brewing kind's check forced (`traffic_at`, a block of
    buckets per call: a kind's results count where its check holds), until it cools down (the run goes
    on) or opens an incident (the run stops there). Returns the run's end, whether it stopped at an
    event, and what brews at the end (offsets), for the trackers."""
    drop: int | None = None
    surge: int | None = None
    settled = 0  # buckets before this are decided
    for h in (hot_drop[:stop] | hot_surge[:stop]).nonzero()[0].tolist():
        if h < settled:
            continue
        drop, surge = (h if hot_drop[h] else None), (h if hot_surge[h] else None)
        j = h + 1
        while (drop is not None or surge is not None) and j < stop:
            block = zip(*(f.tolist() for f in traffic_at(np.arange(j, min(stop, j + TRAFFIC_BLOCK)))), strict=True)
            for below, above, opens_drop, opens_surge, hot_d, hot_s in block:
                check_drop, check_surge = drop is not None or below, surge is not None or above
                if (check_drop and opens_drop) or (check_surge and opens_surge):
                    return j, True, (drop, surge)
                drop = (j if drop is None else drop) if check_drop and hot_d else None
                surge = (j if surge is None else surge) if check_surge and hot_s else None
                j += 1
                if drop is None and surge is None:
                    break
        settled = j
        if drop is not None or surge is not None:
            break
    return stop, stopped, (drop, surge)


def _traffic_events(
    s: ScorerState,
    at: RowsAt,
    mine: np.ndarray,
    ks: np.ndarray,
    check_drop: np.ndarray,
    check_surge: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The per-bucket traffic signal at these buckets (`check_*`: is the drop / surge tested there):
    would a drop open, a surge, is a drop "still hot", a surge? The Poisson tails are computed only at
    the (bucket, window) pairs whose effect is large enough to give evidence (`drop_evidence` /
    `surge_evidence` return 0 elsewhere)."""
    cfg, win = s.config, s.windows
    drop, surge = s.trackers["traffic_drop"], s.trackers["traffic_surge"]
    since = drop if drop.resolved_at > surge.resolved_at else surge
    backs, ratios, limits = _traffic_columns(win.traffic, win.hot, cfg.traffic_factor, cfg.min_evidence)
    # one look-up of the rows: each bucket's own row, then the rows before its windows
    if int(ks[0]) - since.resolved_at >= max(*win.traffic, win.hot):  # no window reaches back into an incident
        first = np.maximum(mine[:, None] - backs[None, :], 0)
    else:
        sizes = backs[None, 1:]
        fresh = np.minimum(sizes, np.maximum(1, ks - since.resolved_at)[:, None])
        first = np.concatenate((mine[:, None], np.where(mine[:, None] + 1 > sizes, mine[:, None] - fresh, 0)), axis=1)
    rows = at(first)
    sums = rows[:, :1] - rows[:, 1:]
    observed, exp = sums[..., 0], sums[..., 5]
    # a drop: tested, enough expected in the window, and at most 1/ratio of it arrived
    drops = check_drop[:, None] & (exp >= MIN_EXPECTED_FOR_DROP) & (observed <= exp / ratios)
    # a surge: tested, enough requests, and at least ratio x the expected
    surges = check_surge[:, None] & (observed >= MIN_SURGE_REQUESTS) & (observed >= exp * ratios)
    opens_drop, hot_drop = _windows_pass(drops, drop_tail, observed, exp, limits)
    opens_surge, hot_surge = _windows_pass(surges, surge_tail, observed, exp, limits)
    return opens_drop, opens_surge, hot_drop, hot_surge


def _windows_pass(
    tested: np.ndarray,
    tail: Callable[[np.ndarray, np.ndarray], np.ndarray],
    observed: np.ndarray,
    exp: np.ndarray,
    limits: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per row of traffic windows (the "still hot" window last): does a window open an incident, is
    the bucket still hot? The tail evidence is computed only where `tested` (elsewhere it is 0, below
    every limit)."""
    if not tested.any():
        none = np.zeros(len(tested), dtype=bool)
        return none, none
    evidence = np.zeros(tested.shape)
    evidence[tested] = tail(observed[tested], exp[tested])
    passed = evidence >= limits
    opens: np.ndarray = np.logical_or.reduce(passed[:, :-1], axis=1)
    return opens, passed[:, -1]


@functools.lru_cache(maxsize=16)
def _traffic_columns(
    traffic: tuple[int, ...], hot: int, factor: float, min_evidence: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_traffic_events`' rows: how far back each look-up goes (0: the bucket, then each traffic
    window and the "still hot" one), and per window its effect size and evidence limit (read-only)."""
    backs = np.array([0, *traffic, hot])
    ratios = np.array([*repeat(float(factor), len(traffic)), math.sqrt(factor)])
    limits = np.array([*repeat(float(min_evidence), len(traffic)), HOT_EVIDENCE])
    for column in (backs, ratios, limits):
        column.flags.writeable = False
    return backs, ratios, limits


@functools.lru_cache(maxsize=8)
def _keeps(keep: float, traffic_keep: float) -> np.ndarray:
    """The decays per bucket of `run`'s decayed sums, as a column (read-only, shared): the baselines'
    and the traffic level's; `_KEEP_ROWS` says which is each sum's."""
    column = np.array([[keep], [traffic_keep]])
    column.flags.writeable = False
    return column


_KEEP_ROWS = np.array([0, 0, 0, 0, 0, 1])
_KEEP_ROWS.flags.writeable = False


@functools.lru_cache(maxsize=64, typed=True)  # (7, 7) and (7.0, 7.0) are different columns
def _column(values: tuple[float, ...]) -> np.ndarray:
    """Window sizes or limits as an array, made once per process (read-only: shared)."""
    column = np.array(values)
    column.flags.writeable = False
    return column
