"""The per-bucket path: the signals run on one completed bucket at a time.

It is the reference for what the scorer decides (the runs of buckets as arrays, `runs.py`, must decide
exactly alike) and takes over wherever something could happen: an incident open or brewing, a test
that passes. Busy customers go this way too: their batches hold too few buckets to pay for a run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import repeat

import numpy as np

from logpulse.model import Incident
from logpulse.scoring.baselines import MAX_FACTOR, SLOT_S, TrafficBaseline
from logpulse.scoring.incidents import Tracker
from logpulse.scoring.signals import (
    MIN_LATENCY_REQUESTS,
    MIN_SURGE_REQUESTS,
    burn_rate,
    drop_evidence,
    error_evidence,
    latency_evidence,
    surge_evidence,
)
from logpulse.scoring.state import (
    HOT_EVIDENCE,
    MIN_EXPECTED_FOR_DROP,
    MIN_SURGE_BUCKET,
    SLO_MIN_REQUESTS,
    ScorerState,
)


@dataclass  # not slotted: snapshots of the per-bucket-only layout hold instances
class Bucket:
    """The sums of one bucket's requests."""

    n: int = 0
    log_sum: float = 0.0
    log_sq: float = 0.0
    failed: int = 0
    server_errors: int = 0


EMPTY = Bucket()


def complete(s: ScorerState, k: int, b: Bucket, out: list[Incident]) -> None:
    """Run the signals on completed bucket k.

    Fast paths (most buckets of most customers): a signal whose tracker is idle is only tested
    when this bucket could raise its evidence — latency when the bucket is slower than usual by
    half the effect, errors when it has failures (both only with >= 5 requests in the last
    2 minutes: fewer is no evidence of anything), a drop when it is below the expected volume and
    enough volume is expected to notice, a surge when it is above, SLO burn when it has 5xx.
    Otherwise the bucket only feeds the baselines. (Windows that merely lose old buckets are not
    re-tested: evidence comes with requests, silence with expected requests missing.)
    """
    signals(s, k, b, append_row(s, k, b.n, b.log_sum, b.log_sq, b.failed, b.server_errors), out)


def append_row(s: ScorerState, k: int, n: int, log_sum: float, log_sq: float, failed: int, server: int) -> float:
    """`complete`'s first step: bucket k's cumulative row (its sums: n requests, ...) appended to
    the history, whatever the signals; returns the requests expected in it."""
    expected = s.traffic.expected(k)
    cum, cum_expected = s.cum, s.cum_expected
    c = cum[-1]
    cum_expected.append(cum_expected[-1] + expected)
    s.cum_total += 1
    if n:
        row = (c[0] + n, c[1] + log_sum, c[2] + log_sq, c[3] + failed, c[4] + server)
        cum.append(row)
        s.steps.add_one(s.cum_total - 1, row[0], row[4])
    else:  # the same sums: the same row
        cum.append(c)
    s.idle = s.idle + 1 if n == 0 else 0
    return expected


def signals(s: ScorerState, k: int, b: Bucket, expected: float, out: list[Incident]) -> None:
    """`complete`'s signals on bucket k, once its row is appended (`expected`: its expected requests)."""
    traffic, trackers, win, cum = s.traffic, s.trackers, s.windows, s.cum
    lat, err = trackers["latency"], trackers["errors"]
    recent = cum[-1][0] - (cum[-1 - win.hot] if len(cum) > win.hot else cum[0])[0]
    judged = b.n and recent >= MIN_LATENCY_REQUESTS  # fewer requests in 2 minutes: not judged
    if lat.is_open or lat.run_start is not None or (judged and b.log_sum / b.n - s.latency.mu >= win.half_ln_ratio):
        _latency(s, k, b, out)
    elif lat.learns(k):
        s.latency.update(b.n, b.log_sum, b.log_sq, win.decay)
    if err.is_open or err.run_start is not None or (judged and b.failed):
        _errors(s, k, b, out)
    elif err.learns(k):
        s.errors.update(b.n, b.failed, win.decay)
    drop, surge = trackers["traffic_drop"], trackers["traffic_surge"]
    if (
        drop.is_open
        or surge.is_open
        or drop.run_start is not None
        or surge.run_start is not None
        or (b.n >= expected * win.half_factor and b.n >= MIN_SURGE_BUCKET)
        or (b.n <= expected / win.half_factor and (b.n > 0 or k >= s.silent_from))
    ):
        _traffic(s, k, b, expected, out)
    else:
        traffic.update(k, b.n, learn=True)
    if b.n:  # silence is evidence only once this many requests are missing (p(0) = e^-expected)
        s.silent_from = k + math.ceil(MIN_EXPECTED_FOR_DROP / max(expected, 1e-9))
    slo = trackers["slo_burn"]
    if win.slo_target is not None and (slo.is_open or slo.run_start is not None or b.server_errors):
        _slo(s, k, b, win.slo_target, out)


def drop_out_of_reach(s: ScorerState) -> int:
    """How many empty buckets from now on no traffic window can expect `MIN_EXPECTED_FOR_DROP`
    requests in (an idle customer, steady level): there `complete`'s drop test computes no evidence,
    so its buckets may take `skip_empty` even past `silent_from`. Bound: the expected requests the
    longest window holds now, plus the most each new bucket can add (the level, which only decays
    while nothing arrives, times the largest time-of-day factor), with a margin for rounding."""
    expected, w = s.cum_expected, max(*s.windows.traffic, s.windows.hot)
    held = expected[-1] - (expected[-1 - w] if len(expected) > w else expected[0])
    room, per = 0.999 * (MIN_EXPECTED_FOR_DROP - held), MAX_FACTOR * s.traffic.level
    if room <= 0:
        return 0
    return s.windows.keep if per <= room / s.windows.keep else int(room / per)


def skip_empty(s: ScorerState, k: int, end: int) -> int:
    """Complete the empty buckets k..end-1 of an idle customer in closed form: exactly what
    `complete` does for each (no signal can fire: nothing arrived and too little is missing
    to be a drop), without a Python step of signals per 30 s. Returns end.

    The counts do not change, so every new row of `cum` is its last row again (`repeat`: no new
    objects); only the expected requests grow, one float per bucket. The baselines move once per
    quarter-hour (the profile factor changes there). At 10,000 customers this runs about once per
    request, mostly over a few dozen buckets: its fixed cost is what counts, so a short gap's floats
    are added in a plain loop (a chain of iterators costs ~4 µs to set up, more than the loop over
    20 buckets), a long one's in one numpy pass."""
    traffic, lat, errors, win = s.traffic, s.latency, s.errors, s.windows
    keep_t, decay, per_slot, gap = win.keep_level, win.decay, win.per_slot, end - k
    expected = s.cum_expected
    if gap >= LONG_GAP and per_slot > 1:
        segments = []  # (buckets, level at the first, profile factor) per quarter-hour
        while k < end:
            m = min(end, (k // per_slot + 1) * per_slot) - k
            level = traffic.level
            segments.append((m, level, traffic.expected(k) / level if level > 0 else 1.0))
            lat.decay(m, decay, errors)
            traffic.skip_empty(k, m, keep_t)
            k += m
        expected.extend(_expected_in_one_pass(segments, keep_t, expected[-1], win.depth))
    else:  # a plain loop, a quarter-hour at a time, without the list of segments
        # the baselines' calls of the long branch written out (`TrafficBaseline.expected`,
        # `LatencyBaseline.decay`, `TrafficBaseline.skip_empty`): the same floats in the same order,
        # without five calls per quarter-hour, which cost more than a short gap's buckets
        acc, append = expected[-1], expected.append
        keep_d, bucket_s = 1.0 - decay, traffic.bucket_s
        while k < end:
            m = min(end, (k // per_slot + 1) * per_slot) - k
            level = traffic.level
            slot = int(k * bucket_s) // SLOT_S
            if level <= 0:
                factor = 1.0
            elif traffic.learnt:
                if slot != traffic.factor_slot:
                    traffic.factor_at(k)
                factor = level * traffic.factor / level
            else:
                factor = level / level
            keep = keep_d**m
            lat.s0, lat.s1, lat.s2 = lat.s0 * keep, lat.s1 * keep, lat.s2 * keep
            errors.n, errors.failed = errors.n * keep, errors.failed * keep
            traffic.level *= keep_t**m
            traffic.buckets += m
            if slot != traffic.slot:
                traffic.start_slot(slot)
            traffic.slot_buckets += m
            k += m
            for _ in range(m):
                acc += level * factor
                append(acc)
                level *= keep_t
    s.cum.extend(repeat(s.cum[-1], min(gap, win.depth)))
    s.cum_total += gap
    s.idle += gap
    return end


def skip_empty_warming(s: ScorerState, k: int, end: int) -> int:
    """Complete the empty buckets k..end-1 of a quiet customer whose traffic level still warms up
    (not `steady`, so `skip_empty`'s closed form does not hold), all before `silent_from`: exactly
    `complete`'s steps for each (no signal's gate opens — nothing arrived, nothing open or brewing,
    silence not yet evidence — so only the baselines learn), without its gates and its caller's loop
    per bucket. Stops where the level becomes steady; returns the first bucket not completed.

    A new customer's first `TrafficBaseline.LEVEL_S` of buckets go this way: at 10,000 customers, a
    day's ~600,000 calls of `complete`."""
    traffic, lat, err, cum, cum_expected = s.traffic, s.latency, s.errors, s.cum, s.cum_expected
    decay, c, start = s.windows.decay, cum[-1], k
    bucket_s = s.config.bucket_s
    while k < end and traffic.buckets * bucket_s < TrafficBaseline.LEVEL_S:  # not `ScorerState.steady`
        cum_expected.append(cum_expected[-1] + traffic.expected(k))
        cum.append(c)
        lat.update(0, 0.0, 0.0, decay)
        err.update(0, 0, decay)
        traffic.update(k, 0, learn=True)
        k += 1
    s.cum_total += k - start
    s.idle += k - start
    return k


LONG_GAP = 96
"""Empty buckets from which one numpy pass over a gap costs less than the iterators (a fixed ~10
numpy calls against ~0.1 µs a bucket), measured; it returns only the rows `cum` keeps."""


def _expected_in_one_pass(
    segments: list[tuple[int, float, float]], keep: float, start: float, rows: int
) -> list[float]:
    """`skip_empty`'s cumulative expected requests over a gap of whole and partial quarter-hours, the
    last `rows` of them. numpy's `accumulate` is sequential like `itertools.accumulate` (not pairwise
    like `sum`): a quarter-hour per row of a grid, its levels multiplied along the row, the same floats."""
    sizes = np.array([m for m, _, _ in segments])
    grid = np.full((len(segments), int(sizes.max())), keep)
    grid[:, 0] = [level for _, level, _ in segments]
    added = np.multiply.accumulate(grid, axis=1) * np.array([f for _, _, f in segments])[:, None]
    flat = added[np.arange(grid.shape[1])[None, :] < sizes[:, None]]  # row by row: in bucket order
    cumulative: list[float] = np.add.accumulate(np.concatenate(([start], flat)))[-min(rows, len(flat)) :].tolist()
    return cumulative


def _emit(out: list[Incident], inc: Incident | None) -> bool:
    """Collect a new incident version; True when it just became the new normal."""
    if inc is None:
        return False
    out.append(inc)
    return inc.new_normal


def _sums(s: ScorerState, k: int, tracker: Tracker, windows: list[int]) -> list[tuple[float, float, float]]:
    """(requests, sum of ln durations, failed) over each window ending at bucket k, each window
    shortened so that it does not reach back into the tracker's last incident."""
    cum = s.cum
    last, size, fresh = cum[-1], len(cum), max(1, k - tracker.resolved_at)
    out = []
    for w in windows:
        w = min(w, fresh)
        first = cum[-1 - w] if size > w else cum[0]
        out.append((last[0] - first[0], last[1] - first[1], last[3] - first[3]))
    return out


def _latency(s: ScorerState, k: int, b: Bucket, out: list[Incident]) -> None:
    cfg, base, tracker = s.config, s.latency, s.trackers["latency"]
    evidence, hot = 0.0, False
    if base.warm(cfg.warmup_buckets):
        mu, sigma, s0 = base.mu, base.sigma, base.s0
        ratio, half = cfg.latency_ratio, math.sqrt(cfg.latency_ratio)
        *windows, (n, ls, _) = _sums(s, k, tracker, [*s.windows.latency, s.windows.hot])
        hot = latency_evidence(n, ls, mu, sigma * math.sqrt(1 + n / s0), half) >= HOT_EVIDENCE
        for n, ls, _ in windows:
            evidence = max(evidence, latency_evidence(n, ls, mu, sigma * math.sqrt(1 + n / s0), ratio))
    if evidence < cfg.min_evidence:
        evidence = 0.0
    if evidence or hot or tracker.is_open or tracker.run_start is not None:
        observed = math.exp(b.log_sum / b.n) if b.n else 0.0
        if _emit(out, tracker.step(k, evidence, hot, b.n, observed, math.exp(base.mu), weight=b.n)):
            n, ls, lq = s.window(s.windows.relearn)[:3]
            base.relearn(n, ls, lq)
            return
    if tracker.learns(k):
        base.update(b.n, b.log_sum, b.log_sq, s.windows.decay)


def _errors(s: ScorerState, k: int, b: Bucket, out: list[Incident]) -> None:
    cfg, base, tracker = s.config, s.errors, s.trackers["errors"]
    evidence, hot = 0.0, False
    if base.warm(cfg.warmup_buckets):
        p, p_high, inc = base.p, base.p_high, cfg.error_increase
        *windows, (n, _, f) = _sums(s, k, tracker, [*s.windows.latency, s.windows.hot])
        hot = error_evidence(n, f, p, p_high, inc / 2) >= HOT_EVIDENCE
        for n, _, f in windows:
            evidence = max(evidence, error_evidence(n, f, p, p_high, inc))
    if evidence < cfg.min_evidence:
        evidence = 0.0
    if evidence or hot or tracker.is_open or tracker.run_start is not None:
        observed = b.failed / b.n if b.n else 0.0
        if _emit(out, tracker.step(k, evidence, hot, b.n, observed, base.p, weight=b.n)):
            n, _, _, f, _, _ = s.window(s.windows.relearn)
            base.relearn(n, f)
            return
    if tracker.learns(k):
        base.update(b.n, b.failed, s.windows.decay)


def _traffic(s: ScorerState, k: int, b: Bucket, expected: float, out: list[Incident]) -> None:
    cfg, base = s.config, s.traffic
    drop, surge = s.trackers["traffic_drop"], s.trackers["traffic_surge"]
    check_drop = drop.is_open or drop.run_start is not None or b.n < expected
    check_surge = surge.is_open or surge.run_start is not None or b.n > expected
    ev_drop = ev_surge = 0.0
    hot_drop = hot_surge = False
    if base.warm(cfg.warmup_buckets):
        since = drop if drop.resolved_at > surge.resolved_at else surge
        cum, cum_expected = s.cum, s.cum_expected
        last, last_expected, size = cum[-1][0], cum_expected[-1], len(cum)
        factor, half = cfg.traffic_factor, math.sqrt(cfg.traffic_factor)
        for w in (*s.windows.traffic, -s.windows.hot):  # the last one (negative) is the "still hot" window
            i = -1 - since.fresh(k, abs(w)) if size > abs(w) else 0
            observed, exp = last - cum[i][0], last_expected - cum_expected[i]
            if check_drop and exp >= MIN_EXPECTED_FOR_DROP:
                if w > 0:
                    ev_drop = max(ev_drop, drop_evidence(observed, exp, factor))
                else:
                    hot_drop = drop_evidence(observed, exp, half) >= HOT_EVIDENCE
            if check_surge and observed >= MIN_SURGE_REQUESTS:
                if w > 0:
                    ev_surge = max(ev_surge, surge_evidence(observed, exp, factor))
                else:
                    hot_surge = surge_evidence(observed, exp, half) >= HOT_EVIDENCE
    per_s = 1.0 / cfg.bucket_s
    relearn = False
    if ev_drop or hot_drop or drop.is_open or drop.run_start is not None:
        ev = ev_drop if ev_drop >= cfg.min_evidence else 0.0
        relearn |= _emit(out, drop.step(k, ev, hot_drop, b.n, b.n * per_s, expected * per_s))
    if ev_surge or hot_surge or surge.is_open or surge.run_start is not None:
        ev = ev_surge if ev_surge >= cfg.min_evidence else 0.0
        relearn |= _emit(out, surge.step(k, ev, hot_surge, b.n, b.n * per_s, expected * per_s))
    if relearn:
        w = s.windows.relearn
        base.relearn(s.window(w)[0] / min(w, len(s.cum) - 1))
    base.update(k, b.n, learn=not (drop.is_open or surge.is_open))


def _slo(s: ScorerState, k: int, b: Bucket, target: float, out: list[Incident]) -> None:
    """Fires when a rule's long and short windows both burn at its rate (and the long window's
    errors are evidence of it, p <= 0.01); stays firing (hysteresis) while the long window burns at
    the rate and the short one at half of it."""
    firing, hot, rate, threshold = False, False, 0.0, 0.0
    history = k - (s.first_bucket or 0) + 1
    for long_w, short_w, limit in s.windows.slo:
        if history < long_w:  # a "1 h" rate over the first minutes of a stream is no hour
            continue
        (long_n, long_e), (short_n, short_e) = s.counts(long_w), s.counts(short_w)
        if long_n < SLO_MIN_REQUESTS or short_n == 0:
            continue
        long_rate, short_rate = burn_rate(long_n, long_e, target), burn_rate(short_n, short_e, target)
        if long_rate >= limit and short_rate >= limit / 2:
            hot = True
            # opening also needs evidence (p <= 0.01) that the long window's true rate burns at the
            # limit: 5 errors in 160 requests "burn 6x" at 99.5 % but are noise for a 2 % customer
            p_limit = min(1.0, limit * (1.0 - target))
            sure = error_evidence(long_n, long_e, p_limit, p_limit, 0.0) >= HOT_EVIDENCE
            firing = firing or (short_rate >= limit and sure)
            if long_rate > rate:
                rate, threshold = long_rate, limit
    _emit(out, s.trackers["slo_burn"].step(k, rate if firing else 0.0, hot, b.n, rate, threshold))
