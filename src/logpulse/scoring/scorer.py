"""One customer's scoring: request scores, event-time buckets, the signals and their incidents.

`CustomerScorer` is the state of the Bytewax `score` step (keyed by customer; small and picklable, so
it lives in recovery snapshots and a restart does not reset baselines). Per batch:

* every request gets `anomaly_score` = how many baseline standard deviations slower than usual it
  is, `max(0, (ln d - mu) / sigma)` (0 while the baseline warms up);
* requests are summed into event-time buckets (`SCORING_BUCKET_S`), ln(duration) clipped at
  usual + max(3 sigma, ln 3) (as of the batch) so that a few very slow requests do not move a
  window; a bucket is complete once event time passed its end by one more bucket (grace for
  slightly out-of-order lines). Completed buckets —
  empty ones too, which is how silence is seen — go through the signals in order (`_complete`).
  A `Tick` from the stream clock completes a silent customer's buckets while other logs move on.
* events older than the completed buckets are *late*: they feed the latency and error baselines but
  never open incidents, so shuffled traffic cannot cause an alarm storm.

Each signal tests windows of 30 s to 30 min ending at the completed bucket (a short window finds a
big change fast, a long one finds a small change surely) and feeds its `Tracker` (incidents.py).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from logpulse.model import Incident, RequestBatch, ScoredBatch, Tick
from logpulse.scoring.baselines import ErrorBaseline, LatencyBaseline, ScoringConfig, TrafficBaseline
from logpulse.scoring.incidents import Tracker
from logpulse.scoring.signals import (
    KINDS,
    MIN_LATENCY_REQUESTS,
    MIN_SURGE_REQUESTS,
    burn_rate,
    drop_evidence,
    error_evidence,
    latency_evidence,
    surge_evidence,
)

_NS = 1_000_000_000
LATENCY_WINDOWS_S = (30, 60, 120, 300, 600)
TRAFFIC_WINDOWS_S = (60, 120, 300, 600, 1800)
HOT_WINDOW_S = 120  # "is the effect still there": half the opening effect at p <= 0.01 over 2 min
HOT_EVIDENCE = 2.0
RELEARN_S = 600  # a new normal is re-learnt from its last 10 minutes
BASELINE_S = 3600.0  # time constant of the latency and error baselines
SLO_RULES = ((3600, 300, 14.4), (21600, 1800, 6.0))
"""SRE workbook pages: (long window s, short window s, burn rate) — 2% of a 30-day budget in 1 h,
5% in 6 h; both windows must burn, so the alert ends soon after the burning stops."""
SLO_MIN_REQUESTS = 50  # in the long window: a handful of requests is no evidence of burning
HISTORY_S = 21600  # the longest window (6 h)
WINSOR_SIGMAS = 3.0  # bucket sums clip ln(duration) at usual + max(3 sigma, ln 3)
_MIN_EXPECTED_FOR_DROP = HOT_EVIDENCE * math.log(10)  # below, even silence is not evidence (p(0) = e^-E)
_MIN_SURGE_BUCKET = 2  # a surge needs more than one request in a bucket


@dataclass
class _Bucket:
    n: int = 0
    log_sum: float = 0.0
    log_sq: float = 0.0
    failed: int = 0
    server_errors: int = 0


_EMPTY = _Bucket()


@dataclass
class CustomerScorer:
    """One customer's scoring state; `score` and `tick` are the Bytewax step's work."""

    customer_id: str
    config: ScoringConfig
    latency: LatencyBaseline = field(default_factory=LatencyBaseline)
    errors: ErrorBaseline = field(default_factory=ErrorBaseline)
    traffic: TrafficBaseline = field(default_factory=TrafficBaseline)
    watermark: int = -1  # highest bucket index seen (data or clock)
    next_bucket: int | None = None  # first bucket not completed yet
    open_buckets: dict[int, _Bucket] = field(default_factory=dict)
    # cumulative (n, log_sum, log_sq, failed, server_errors, expected) after each completed bucket
    cum: deque[tuple[int, float, float, int, int, float]] = field(default_factory=deque)
    trackers: dict[str, Tracker] = field(default_factory=dict)
    idle: int = 0  # consecutive empty buckets
    silent_from: int = 0  # first bucket at which the silence since the last request could be a drop
    first_bucket: int | None = None  # the first bucket judged (the start of this customer's history)

    def __post_init__(self) -> None:
        cfg = self.config
        bucket_ns = int(cfg.bucket_s * _NS)
        self.traffic.bucket_s = cfg.bucket_s
        self._keep = cfg.buckets(HISTORY_S) + 1
        self.cum = deque([(0, 0.0, 0.0, 0, 0, 0.0)], maxlen=self._keep)
        quiet, new_normal = cfg.buckets(cfg.quiet_s), cfg.buckets(cfg.new_normal_s) if cfg.new_normal_s else 0
        for kind in KINDS:
            if kind == "slo_burn":
                self.trackers[kind] = Tracker(self.customer_id, kind, bucket_ns, quiet, 0)
            else:
                self.trackers[kind] = Tracker(self.customer_id, kind, bucket_ns, quiet, new_normal)
        self._slo_target = cfg.slo_target(self.customer_id)
        self._decay = cfg.bucket_s / BASELINE_S
        self._lat_w = sorted({cfg.buckets(s) for s in LATENCY_WINDOWS_S})
        self._traffic_w = sorted({cfg.buckets(s) for s in TRAFFIC_WINDOWS_S})
        self._hot_w = cfg.buckets(HOT_WINDOW_S)
        self._slo_w = [(cfg.buckets(a), cfg.buckets(b), r) for a, b, r in SLO_RULES]
        self._half_ln_ratio = 0.5 * math.log(cfg.latency_ratio)
        self._half_factor = math.sqrt(cfg.traffic_factor)

    # --- input -----------------------------------------------------------------------------------

    def score(self, batch: RequestBatch) -> ScoredBatch:
        cfg = self.config
        times = np.asarray(batch.times, dtype=np.int64)
        logs = np.log(np.maximum(np.asarray(batch.durations, dtype=np.float64), 1e-6))
        failed = np.fromiter(map("400".__le__, batch.statuses), dtype=bool, count=len(batch.statuses))
        server = np.fromiter(map("500".__le__, batch.statuses), dtype=bool, count=len(batch.statuses))
        scores = self._request_scores(logs)
        if self.latency.warm(cfg.warmup_buckets):  # winsorized: one very slow request is not a trend
            mu, sigma = self.latency.mu, self.latency.sigma
            logs = np.minimum(logs, mu + max(WINSOR_SIGMAS * sigma, math.log(3.0)))
        out: list[Incident] = []
        if len(times) == 0:
            return ScoredBatch(batch, scores, out)
        idx = times // int(cfg.bucket_s * _NS)
        top = int(idx.max())
        if self.next_bucket is None:  # first data: at most HISTORY_S before it is judged, older is history
            self.next_bucket = self.first_bucket = max(int(idx.min()), top - self._keep + 1)
        late = idx < self.next_bucket
        if late.any():
            self._learn_late(logs[late], failed[late])
            keep = ~late
            idx, logs, failed, server = idx[keep], logs[keep], failed[keep], server[keep]
        if len(idx):
            self._add(idx, logs, failed, server)
        self.watermark = max(self.watermark, top)
        self._complete_until(self.watermark - 1, out)
        return ScoredBatch(batch, scores, _dedupe(out))

    def tick(self, tick: Tick) -> list[Incident]:
        """The stream clock moved on: complete this customer's buckets up to it, even if empty."""
        out: list[Incident] = []
        if self.next_bucket is None:
            return out
        self.watermark = max(self.watermark, tick.time_ns // int(self.config.bucket_s * _NS))
        self._complete_until(self.watermark - 1, out)
        return _dedupe(out)

    def _request_scores(self, logs: np.ndarray) -> list[float]:
        base = self.latency
        if not base.warm(self.config.warmup_buckets):
            return [0.0] * len(logs)
        z = (logs - base.mu) / base.sigma
        return np.round(np.maximum(z, 0.0), 2).tolist()  # type: ignore[no-any-return]

    def _learn_late(self, logs: np.ndarray, failed: np.ndarray) -> None:
        if not self.trackers["latency"].is_open:
            self.latency.update(len(logs), float(logs.sum()), float((logs * logs).sum()), 0.0)
        if not self.trackers["errors"].is_open:
            self.errors.update(len(logs), int(failed.sum()), 0.0)

    def _add(self, idx: np.ndarray, logs: np.ndarray, failed: np.ndarray, server: np.ndarray) -> None:
        order = np.argsort(idx, kind="stable")
        idx, logs, failed, server = idx[order], logs[order], failed[order], server[order]
        keys, starts = np.unique(idx, return_index=True)
        n = np.diff(np.append(starts, len(idx)))
        s1 = np.add.reduceat(logs, starts)
        s2 = np.add.reduceat(logs * logs, starts)
        fl = np.add.reduceat(failed.astype(np.int64), starts)
        se = np.add.reduceat(server.astype(np.int64), starts)
        for k, cnt, a, b, f, e in zip(
            keys.tolist(), n.tolist(), s1.tolist(), s2.tolist(), fl.tolist(), se.tolist(), strict=True
        ):
            bucket = self.open_buckets.get(k)
            if bucket is None:
                self.open_buckets[k] = _Bucket(cnt, a, b, f, e)
            else:
                bucket.n += cnt
                bucket.log_sum += a
                bucket.log_sq += b
                bucket.failed += f
                bucket.server_errors += e

    # --- completing buckets ----------------------------------------------------------------------

    def _complete_until(self, limit: int, out: list[Incident]) -> None:
        """Complete every bucket before `limit`, in order, empty ones included."""
        assert self.next_bucket is not None
        k = self.next_bucket
        data = sorted(b for b in self.open_buckets if b < limit)
        i = 0
        while k < limit:
            bucket = self.open_buckets.pop(k, None)
            if bucket is None:
                while i < len(data) and data[i] < k:
                    i += 1
                nxt = data[i] if i < len(data) else limit
                quiet = not any(t.is_open or t.run_start is not None for t in self.trackers.values())
                if quiet and self.idle >= self._keep:
                    k = self._fast_forward(k, nxt)
                    continue
                if quiet and k < self.silent_from and self._steady():
                    k = self._skip_empty(k, min(nxt, self.silent_from))
                    continue
            self._complete(k, bucket or _EMPTY, out)
            k += 1
        self.next_bucket = max(k, self.next_bucket)

    def _steady(self) -> bool:
        """The traffic level's weight is constant (past its warm-up): empty runs have a closed form."""
        return self.traffic.buckets * self.config.bucket_s >= TrafficBaseline.LEVEL_S

    def _skip_empty(self, k: int, end: int) -> int:
        """Complete the empty buckets k..end-1 of an idle customer in closed form: exactly what
        `_complete` does for each (no signal can fire: nothing arrived and too little is missing
        to be a drop), without a Python step of signals per 30 s. Returns end."""
        cfg, traffic = self.config, self.traffic
        keep_t = 1.0 - cfg.bucket_s / TrafficBaseline.LEVEL_S
        per_slot = round(900 / cfg.bucket_s)
        while k < end:
            m = min(end, (k // per_slot + 1) * per_slot) - k if 900 % cfg.bucket_s == 0 else 1
            factor = traffic.expected(k) / traffic.level if traffic.level > 0 else 1.0
            c = self.cum[-1]
            level, acc, rows = traffic.level, c[5], []
            for _ in range(min(m, self._keep)):
                acc += level * factor
                level *= keep_t
                rows.append((c[0], c[1], c[2], c[3], c[4], acc))
            if m > self._keep:  # only the last HISTORY_S of rows are kept anyway
                for _ in range(m - self._keep):
                    acc += level * factor
                    level *= keep_t
            self.cum.extend(rows)
            self.latency.decay(m, self._decay)
            self.errors.decay(m, self._decay)
            traffic.skip_empty(k, m, keep_t)
            self.idle += m
            k += m
        return end

    def _fast_forward(self, k: int, limit: int) -> int:
        """A customer silent for longer than every window, with nothing open: skip to its next data
        in one step (empty buckets one by one would cost a Python step per 30 s of silence)."""
        nxt = min((b for b in self.open_buckets if b >= k), default=limit)
        gap = min(nxt, limit) - k
        self.latency.decay(gap, self._decay)
        self.errors.decay(gap, self._decay)
        self.traffic.level *= (1.0 - self.config.bucket_s / TrafficBaseline.LEVEL_S) ** gap
        last = self.cum[-1]
        self.cum.extend([last] * min(gap, self._keep))
        self.idle += gap
        for t in self.trackers.values():
            t.run_start = None
        return k + gap

    def _window(self, w: int) -> tuple[int, float, float, int, int, float]:
        """Sums over the last w completed buckets."""
        cum = self.cum
        a = cum[-1]
        b = cum[-1 - w] if len(cum) > w else cum[0]
        return a[0] - b[0], a[1] - b[1], a[2] - b[2], a[3] - b[3], a[4] - b[4], a[5] - b[5]

    def _complete(self, k: int, b: _Bucket, out: list[Incident]) -> None:
        """Run the signals on completed bucket k.

        Fast paths (most buckets of most customers): a signal whose tracker is idle is only tested
        when this bucket could raise its evidence — latency when the bucket is slower than usual by
        half the effect, errors when it has failures (both only with >= 5 requests in the last
        2 minutes: fewer is no evidence of anything), a drop when it is below the expected volume and
        enough volume is expected to notice, a surge when it is above, SLO burn when it has 5xx.
        Otherwise the bucket only feeds the baselines. (Windows that merely lose old buckets are not
        re-tested: evidence comes with requests, silence with expected requests missing.)
        """
        traffic, trackers = self.traffic, self.trackers
        expected = traffic.expected(k)
        c = self.cum[-1]
        self.cum.append(
            (c[0] + b.n, c[1] + b.log_sum, c[2] + b.log_sq, c[3] + b.failed, c[4] + b.server_errors, c[5] + expected)
        )
        self.idle = self.idle + 1 if b.n == 0 else 0
        lat, err = trackers["latency"], trackers["errors"]
        cum = self.cum
        recent = cum[-1][0] - (cum[-1 - self._hot_w] if len(cum) > self._hot_w else cum[0])[0]
        judged = b.n and recent >= MIN_LATENCY_REQUESTS  # fewer requests in 2 minutes: not judged
        if (
            lat.is_open
            or lat.run_start is not None
            or (judged and b.log_sum / b.n - self.latency.mu >= self._half_ln_ratio)
        ):
            self._latency(k, b, out)
        elif self._learns(lat, k):
            self.latency.update(b.n, b.log_sum, b.log_sq, self._decay)
        if err.is_open or err.run_start is not None or (judged and b.failed):
            self._errors(k, b, out)
        elif self._learns(err, k):
            self.errors.update(b.n, b.failed, self._decay)
        drop, surge = trackers["traffic_drop"], trackers["traffic_surge"]
        if (
            drop.is_open
            or surge.is_open
            or drop.run_start is not None
            or surge.run_start is not None
            or (b.n >= expected * self._half_factor and b.n >= _MIN_SURGE_BUCKET)
            or (b.n <= expected / self._half_factor and (b.n > 0 or k >= self.silent_from))
        ):
            self._traffic(k, b, expected, out)
        else:
            traffic.update(k, b.n, learn=True)
        if b.n:  # silence is evidence only once this many requests are missing (p(0) = e^-expected)
            self.silent_from = k + math.ceil(_MIN_EXPECTED_FOR_DROP / max(expected, 1e-9))
        slo = trackers["slo_burn"]
        if self._slo_target is not None and (slo.is_open or slo.run_start is not None or b.server_errors):
            self._slo(k, b, self._slo_target, out)

    def _learns(self, tracker: Tracker, k: int) -> bool:
        """Learn from bucket k unless it belongs to an incident — open, or a run of hot buckets that
        may still become one (a mild change that stays hot longer than a new normal is learnt)."""
        if tracker.is_open:
            return False
        return tracker.run_start is None or k - tracker.run_start >= tracker.new_normal_buckets

    def _emit(self, out: list[Incident], inc: Incident | None) -> bool:
        """Collect a new incident version; True when it just became the new normal."""
        if inc is None:
            return False
        out.append(inc)
        return inc.new_normal

    def _sums(self, k: int, tracker: Tracker, windows: list[int]) -> list[tuple[int, float, int]]:
        """(requests, sum of ln durations, failed) over each window ending at bucket k, each window
        shortened so that it does not reach back into the tracker's last incident."""
        cum = self.cum
        last, size, fresh = cum[-1], len(cum), max(1, k - tracker.resolved_at)
        out = []
        for w in windows:
            w = min(w, fresh)
            first = cum[-1 - w] if size > w else cum[0]
            out.append((last[0] - first[0], last[1] - first[1], last[3] - first[3]))
        return out

    def _latency(self, k: int, b: _Bucket, out: list[Incident]) -> None:
        cfg, base, tracker = self.config, self.latency, self.trackers["latency"]
        evidence, hot = 0.0, False
        if base.warm(cfg.warmup_buckets):
            mu, sigma, s0 = base.mu, base.sigma, base.s0
            ratio, half = cfg.latency_ratio, math.sqrt(cfg.latency_ratio)
            *windows, (n, ls, _) = self._sums(k, tracker, [*self._lat_w, self._hot_w])
            hot = latency_evidence(n, ls, mu, sigma * math.sqrt(1 + n / s0), half) >= HOT_EVIDENCE
            for n, ls, _ in windows:
                evidence = max(evidence, latency_evidence(n, ls, mu, sigma * math.sqrt(1 + n / s0), ratio))
        if evidence < cfg.min_evidence:
            evidence = 0.0
        if evidence or hot or tracker.is_open or tracker.run_start is not None:
            observed = math.exp(b.log_sum / b.n) if b.n else 0.0
            if self._emit(out, tracker.step(k, evidence, hot, b.n, observed, math.exp(base.mu), weight=b.n)):
                n, ls, lq = self._window(self.config.buckets(RELEARN_S))[:3]
                base.relearn(n, ls, lq)
                return
        if self._learns(tracker, k):
            base.update(b.n, b.log_sum, b.log_sq, self._decay)

    def _errors(self, k: int, b: _Bucket, out: list[Incident]) -> None:
        cfg, base, tracker = self.config, self.errors, self.trackers["errors"]
        evidence, hot = 0.0, False
        if base.warm(cfg.warmup_buckets):
            p, p_high, inc = base.p, base.p_high, cfg.error_increase
            *windows, (n, _, f) = self._sums(k, tracker, [*self._lat_w, self._hot_w])
            hot = error_evidence(n, f, p, p_high, inc / 2) >= HOT_EVIDENCE
            for n, _, f in windows:
                evidence = max(evidence, error_evidence(n, f, p, p_high, inc))
        if evidence < cfg.min_evidence:
            evidence = 0.0
        if evidence or hot or tracker.is_open or tracker.run_start is not None:
            observed = b.failed / b.n if b.n else 0.0
            if self._emit(out, tracker.step(k, evidence, hot, b.n, observed, base.p, weight=b.n)):
                n, _, _, f, _, _ = self._window(self.config.buckets(RELEARN_S))
                base.relearn(n, f)
                return
        if self._learns(tracker, k):
            base.update(b.n, b.failed, self._decay)

    def _traffic(self, k: int, b: _Bucket, expected: float, out: list[Incident]) -> None:
        cfg, base = self.config, self.traffic
        drop, surge = self.trackers["traffic_drop"], self.trackers["traffic_surge"]
        check_drop = drop.is_open or drop.run_start is not None or b.n < expected
        check_surge = surge.is_open or surge.run_start is not None or b.n > expected
        ev_drop = ev_surge = 0.0
        hot_drop = hot_surge = False
        if base.warm(cfg.warmup_buckets):
            since = drop if drop.resolved_at > surge.resolved_at else surge
            cum = self.cum
            last, size = cum[-1], len(cum)
            factor, half = cfg.traffic_factor, math.sqrt(cfg.traffic_factor)
            for w in (*self._traffic_w, -self._hot_w):  # the last one (negative) is the "still hot" window
                first = cum[-1 - since.fresh(k, abs(w))] if size > abs(w) else cum[0]
                observed, exp = last[0] - first[0], last[5] - first[5]
                if check_drop and exp >= _MIN_EXPECTED_FOR_DROP:
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
            relearn |= self._emit(out, drop.step(k, ev, hot_drop, b.n, b.n * per_s, expected * per_s))
        if ev_surge or hot_surge or surge.is_open or surge.run_start is not None:
            ev = ev_surge if ev_surge >= cfg.min_evidence else 0.0
            relearn |= self._emit(out, surge.step(k, ev, hot_surge, b.n, b.n * per_s, expected * per_s))
        if relearn:
            w = self.config.buckets(RELEARN_S)
            base.relearn(self._window(w)[0] / min(w, len(self.cum) - 1))
        base.update(k, b.n, learn=not (drop.is_open or surge.is_open))

    def _slo(self, k: int, b: _Bucket, target: float, out: list[Incident]) -> None:
        """Fires when a rule's long and short windows both burn at its rate (and the long window's
        errors are evidence of it, p <= 0.01); stays firing (hysteresis) while the long window burns at
        the rate and the short one at half of it."""
        firing, hot, rate, threshold = False, False, 0.0, 0.0
        history = k - (self.first_bucket or 0) + 1
        for long_w, short_w, limit in self._slo_w:
            if history < long_w:  # a "1 h" rate over the first minutes of a stream is no hour
                continue
            long_n, long_e = (lambda w: (w[0], w[4]))(self._window(long_w))
            short_n, short_e = (lambda w: (w[0], w[4]))(self._window(short_w))
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
        self._emit(out, self.trackers["slo_burn"].step(k, rate if firing else 0.0, hot, b.n, rate, threshold))


def _dedupe(incidents: list[Incident]) -> list[Incident]:
    """Keep the latest version of each incident (same kind and start) from one batch, in order."""
    latest: dict[tuple[str, int], Incident] = {}
    for inc in incidents:
        latest.pop((inc.kind, inc.start_ns), None)
        latest[(inc.kind, inc.start_ns)] = inc
    return list(latest.values())
