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

Cost. Most buckets of most customers are uneventful: no incident open or brewing, no test passing.
While that holds, baselines follow closed recurrences, so a run of buckets is completed as arrays
(`_run`: every signal's gate and test for every bucket at once, the same formulas as the per-bucket
path, which is kept as the reference and takes over at the first bucket where a test passes or an
incident could start). A run costs a fixed ~100 numpy calls, so it is used only when the call has
enough buckets to pay for them (`RUN_COST` vs `STEP_COST`: sparse backfills, long ticks); a busy
customer's batch of ~40 buckets goes bucket by bucket, where the tests themselves are the cost.
`python -m scripts.benchmarks.scoring` measures both and checks, by incident digest, that they decide alike.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from logpulse.model import Incident, RequestBatch, ScoredBatch, Tick
from logpulse.scoring.baselines import (
    _MIN_SIGMA,
    ErrorBaseline,
    LatencyBaseline,
    ScoringConfig,
    TrafficBaseline,
    decayed_run,
)
from logpulse.scoring.incidents import Tracker
from logpulse.scoring.signals import (
    KINDS,
    MIN_LATENCY_REQUESTS,
    MIN_SURGE_REQUESTS,
    burn_rate,
    drop_evidence,
    drop_evidence_many,
    error_evidence,
    error_evidence_many,
    latency_evidence,
    latency_evidence_many,
    surge_evidence,
    surge_evidence_many,
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


@dataclass  # not slotted: snapshots of the per-bucket version hold instances
class _Bucket:
    n: int = 0
    log_sum: float = 0.0
    log_sq: float = 0.0
    failed: int = 0
    server_errors: int = 0


_EMPTY = _Bucket()
_COLUMNS = 6  # history columns: requests, sum ln d, sum ln² d, failed, 5xx, expected requests
SHORT_ROWS = 64  # rows `cum` gets after a run: more than any window but `_window`'s (SLO, relearn)
MAX_RUN = 2400  # buckets completed as arrays in one step (20 h of 30 s buckets: < 1 day, bounds memory)
RUN_COST = (700.0, 0.3)  # µs per run of buckets as arrays, + per bucket (measured, `scripts.benchmarks.scoring`)
STEP_COST = (12.0, 1.0)  # µs per bucket one by one: with requests, + per bucket (empty ones are cheap)


class _History:
    """Cumulative sums after each completed bucket — (requests, sum of ln d, of ln² d, failed, 5xx,
    expected requests) — of the last `keep` buckets (HISTORY_S), as a numpy buffer for the runs of
    buckets completed as arrays: a window's sums are the difference of two rows. (The per-bucket path
    keeps the same rows as a deque of tuples — reading one numpy row costs more than the test on it —
    and the two are synced lazily when the scorer switches between them.) `total` counts every row
    ever appended; row 0 is the zero row."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.buf = np.zeros((2 * keep, _COLUMNS))
        self.size = 1  # rows of buf in use
        self.total = 1
        self.last: tuple[float, ...] = (0.0,) * _COLUMNS

    def extend(self, rows: np.ndarray, count: int | None = None) -> None:
        """Append the rows of `count` (default: len(rows)) buckets; `rows` may hold only the newest."""
        if len(rows) == 0:
            return
        self.total += len(rows) if count is None else count
        rows = rows[-self.keep :]  # older rows are out of every window: never read
        if self.size + len(rows) > len(self.buf):
            start = max(0, self.size - self.keep)
            self.buf[: self.size - start] = self.buf[start : self.size].copy()
            self.size -= start
        self.buf[self.size : self.size + len(rows)] = rows
        self.size += len(rows)
        self.last = tuple(rows[-1].tolist())

    def tail(self, count: int | None = None) -> np.ndarray:
        """The last min(total, keep, count) rows (the last is `last`)."""
        count = self.keep if count is None else min(count, self.keep)
        return self.buf[max(0, self.size - count) : self.size]

    def __getstate__(self) -> dict[str, Any]:
        """Snapshots hold the last `keep` rows only."""
        return {"keep": self.keep, "rows": self.tail().copy(), "total": self.total}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.keep, rows = state["keep"], state["rows"]
        self.buf = np.zeros((2 * self.keep, _COLUMNS))
        self.buf[: len(rows)] = rows
        self.size, self.total = len(rows), state["total"]
        self.last = tuple(rows[-1].tolist())


@dataclass
class CustomerScorer:
    """One customer's scoring state; `score` and `tick` are the Bytewax step's work.

    `vectorised=False` completes every bucket through the per-bucket path (the reference the
    vectorised runs are tested against)."""

    customer_id: str
    config: ScoringConfig
    latency: LatencyBaseline = field(default_factory=LatencyBaseline)
    errors: ErrorBaseline = field(default_factory=ErrorBaseline)
    traffic: TrafficBaseline = field(default_factory=TrafficBaseline)
    watermark: int = -1  # highest bucket index seen (data or clock)
    next_bucket: int | None = None  # first bucket not completed yet
    # buckets not completed yet: sorted bucket indexes and their sums (requests, ln d, ln² d, failed, 5xx)
    pending_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pending: np.ndarray = field(default_factory=lambda: np.zeros((5, 0)))
    trackers: dict[str, Tracker] = field(default_factory=dict)
    idle: int = 0  # consecutive empty buckets
    silent_from: int = 0  # first bucket at which the silence since the last request could be a drop
    first_bucket: int | None = None  # the first bucket judged (the start of this customer's history)
    # cumulative (n, log_sum, log_sq, failed, server_errors, expected) after each completed bucket, for
    # the per-bucket path; `hist` holds the same rows for runs (see `_History`)
    cum: deque[tuple[float, ...]] = field(default_factory=deque)
    cum_total: int = 1  # rows ever appended to `cum`
    cum_from: int = 0  # the oldest row `cum` holds up to date (older ones are read from `hist`)
    vectorised: bool = True

    def __post_init__(self) -> None:
        cfg = self.config
        bucket_ns = int(cfg.bucket_s * _NS)
        self.traffic.bucket_s = cfg.bucket_s
        self._keep = cfg.buckets(HISTORY_S) + 1
        self.cum = deque([(0, 0.0, 0.0, 0, 0, 0.0)], maxlen=self._keep)
        self.hist = _History(self._keep)
        quiet, new_normal = cfg.buckets(cfg.quiet_s), cfg.buckets(cfg.new_normal_s) if cfg.new_normal_s else 0
        for kind in KINDS:
            if kind == "slo_burn":
                self.trackers[kind] = Tracker(self.customer_id, kind, bucket_ns, quiet, 0)
            else:
                self.trackers[kind] = Tracker(self.customer_id, kind, bucket_ns, quiet, new_normal)
        self._derived()

    def _derived(self) -> None:
        """Constants derived from the config (recomputed after unpickling)."""
        cfg = self.config
        self._keep = cfg.buckets(HISTORY_S) + 1
        self._slo_target = cfg.slo_target(self.customer_id)
        self._decay = cfg.bucket_s / BASELINE_S
        self._lat_w = sorted({cfg.buckets(s) for s in LATENCY_WINDOWS_S})
        self._traffic_w = sorted({cfg.buckets(s) for s in TRAFFIC_WINDOWS_S})
        self._hot_w = cfg.buckets(HOT_WINDOW_S)
        self._slo_w = [(cfg.buckets(a), cfg.buckets(b), r) for a, b, r in SLO_RULES]
        self._half_ln_ratio = 0.5 * math.log(cfg.latency_ratio)
        self._half_factor = math.sqrt(cfg.traffic_factor)

    def __getstate__(self) -> dict[str, Any]:
        """Snapshots hold the bucket history once (as numpy rows); `cum` is rebuilt from it."""
        self._to_numpy()
        state = dict(self.__dict__)
        state["cum"] = deque(maxlen=self._keep)
        state["cum_total"] = self.hist.total - min(self.hist.total, self._keep)
        state["cum_from"] = 0
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Snapshots of the per-bucket version (a deque `cum`, a dict `open_buckets`) still restore."""
        self.__dict__.update(state)
        if "hist" not in state:
            self.hist = _History(self.cum.maxlen or 1)
            self.hist.extend(np.array(self.cum, dtype=np.float64), len(self.cum) - 1)
            self.cum_total = self.hist.total
        if "open_buckets" in state:
            old = sorted(state.pop("open_buckets").items())
            self.pending_keys = np.array([k for k, _ in old], dtype=np.int64)
            self.pending = np.array(
                [[b.n, b.log_sum, b.log_sq, b.failed, b.server_errors] for _, b in old], dtype=np.float64
            ).T.reshape(5, len(old))
            self.__dict__.pop("open_buckets", None)
        self.__dict__.setdefault("vectorised", True)
        self._derived()

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
        """Sum the requests into their (not yet completed) buckets, as arrays."""
        order = np.argsort(idx, kind="stable")
        idx, logs = idx[order], logs[order]
        starts = np.flatnonzero(np.diff(idx, prepend=idx[0] - 1))
        keys = idx[starts]
        sums = np.add.reduceat(
            np.vstack([np.ones(len(idx)), logs, logs * logs, failed[order], server[order]]), starts, axis=1
        )
        old_keys, old = self.pending_keys, self.pending
        if len(old_keys) and keys[0] >= old_keys[-1]:  # in order (the usual case): append
            if keys[0] == old_keys[-1]:
                old = old.copy()
                old[:, -1] += sums[:, 0]
                keys, sums = keys[1:], sums[:, 1:]
            keys, sums = np.concatenate([old_keys, keys]), np.concatenate([old, sums], axis=1)
        elif len(old_keys):  # merge two sorted sets of buckets (each without repeats)
            both = np.union1d(old_keys, keys)
            merged = np.zeros((5, len(both)))
            merged[:, np.searchsorted(both, old_keys)] = old
            merged[:, np.searchsorted(both, keys)] += sums
            keys, sums = both, merged
        self.pending_keys, self.pending = keys, sums

    # --- completing buckets ----------------------------------------------------------------------

    def _quiet(self) -> bool:
        return not any(t.is_open or t.run_start is not None for t in self.trackers.values())

    def _complete_until(self, limit: int, out: list[Incident]) -> None:
        """Complete every bucket before `limit`, in order, empty ones included.

        While no incident is open or brewing, runs of buckets are completed as arrays (`_run`), which
        stops at the first bucket where a signal's test would pass or an incident could start; that
        bucket takes the per-bucket path (`_complete`). A long silence is skipped in one step."""
        assert self.next_bucket is not None
        k = self.next_bucket
        if k >= limit:
            return
        cut = int(np.searchsorted(self.pending_keys, limit))
        keys_a, vals = self.pending_keys[:cut], self.pending[:, :cut]
        self.pending_keys, self.pending = self.pending_keys[cut:], self.pending[:, cut:]
        keys, columns = keys_a.tolist(), vals.T.tolist()
        m = min(limit - k, MAX_RUN)  # worth it? (runs cost a fixed number of numpy calls)
        runs = self.vectorised and RUN_COST[0] + RUN_COST[1] * m < STEP_COST[0] * min(len(keys), m) + STEP_COST[1] * m
        i, force = 0, False
        ahead = self.hist.total > self.cum_total  # runs appended rows `cum` has not got yet
        while k < limit:
            while i < len(keys) and keys[i] < k:
                i += 1
            has = i < len(keys) and keys[i] == k
            if not force and (runs or not has) and self._quiet():
                nxt = keys[i] if i < len(keys) else limit
                if not has and self.idle >= self._keep:
                    k = self._fast_forward(k, nxt)
                    continue
                if runs and self._steady():
                    end = min(limit, k + MAX_RUN)
                    j = i + int(np.searchsorted(keys_a[i:], end))
                    self._to_numpy()
                    k, force = self._run(k, end, keys_a[i:j], vals[:, i:j], out)
                    ahead = self.hist.total > self.cum_total
                    continue
                if ahead:
                    self._to_deque()
                    ahead = False
                if not has and k < self.silent_from and self._steady():
                    k = self._skip_empty(k, min(nxt, self.silent_from))
                    continue
            force = False
            if ahead:
                self._to_deque()
                ahead = False
            if has:
                n, a, b, f, e = columns[i]
                self._complete(k, _Bucket(int(n), a, b, int(f), int(e)), out)
            else:
                self._complete(k, _EMPTY, out)
            k += 1
        self.next_bucket = max(k, self.next_bucket)

    def _to_deque(self) -> None:
        """Bring `cum` up to date with rows appended by runs: the newest `SHORT_ROWS` at most (every
        window but the SLO's long ones, which `_window` reads from `hist`); converting all 6 h of rows
        after every run that stops would cost more than the run."""
        behind = self.hist.total - self.cum_total
        if behind > 0:
            if behind > SHORT_ROWS:  # what `cum` held is older than the run: of no use (and memory)
                behind = SHORT_ROWS
                self.cum_from = self.hist.total - SHORT_ROWS
                self.cum.clear()
            self.cum.extend(zip(*self.hist.tail(behind).T.tolist(), strict=True))
            self.cum_total = self.hist.total

    def _to_numpy(self) -> None:
        """Bring `hist` up to date with rows appended one by one."""
        behind = self.cum_total - self.hist.total
        if behind > 0:
            rows = list(self.cum)[-behind:]
            self.hist.extend(np.array(rows, dtype=np.float64), behind)

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
            self.cum_total += m
            self.latency.decay(m, self._decay)
            self.errors.decay(m, self._decay)
            traffic.skip_empty(k, m, keep_t)
            self.idle += m
            k += m
        return end

    def _fast_forward(self, k: int, limit: int) -> int:
        """A customer silent for longer than every window, with nothing open: skip to `limit` (its
        next data or the end) in one step (one by one would cost a Python step per 30 s of silence)."""
        gap = limit - k
        self.latency.decay(gap, self._decay)
        self.errors.decay(gap, self._decay)
        self.traffic.level *= (1.0 - self.config.bucket_s / TrafficBaseline.LEVEL_S) ** gap
        if self.hist.total > self.cum_total:  # the rows of runs are the newer: extend those
            self.hist.extend(np.repeat(np.array([self.hist.last]), min(gap, self._keep), axis=0), gap)
        else:
            last = self.cum[-1]
            self.cum.extend([last] * min(gap, self._keep))
            self.cum_total += gap
        self.idle += gap
        for t in self.trackers.values():
            t.run_start = None
        return k + gap

    def _run(self, k0: int, end: int, keys: np.ndarray, vals: np.ndarray, out: list[Incident]) -> tuple[int, bool]:
        """Complete buckets k0..end-1 of a quiet customer as arrays: what `_complete` does to each,
        as long as no test passes and no incident could start (then no tracker changes and every
        baseline learns every bucket, so all of them follow closed recurrences).

        Every signal's gate and test is evaluated for every bucket of the run at once (latency and
        errors only where requests arrived, a drop also where expected requests are missing), from
        baselines computed for all buckets in closed form; the run is committed up to the first
        bucket where a test passes or a "still hot" check holds — that bucket then goes the
        per-bucket way, returns (it, True) — or where a silence becomes long enough to be skipped
        (returns (it, False)). Costs a fixed ~50 numpy calls per run plus O(buckets) array work.
        """
        cfg, hist, lat, err, tra = self.config, self.hist, self.latency, self.errors, self.traffic
        m = end - k0
        pos = keys - k0  # the run's non-empty buckets
        n_nz = vals[0]
        # a silence of `keep` buckets is skipped by `_fast_forward` instead: stop at its bucket
        prev = np.concatenate(([-1], pos))
        first_long = np.maximum(prev + 1, prev + 1 + self._keep - np.concatenate(([self.idle], np.zeros(len(pos)))))
        long_gap = np.flatnonzero(first_long < np.concatenate((pos, [m])))
        stop = int(first_long[long_gap[0]]) if len(long_gap) else m
        # latency and error baselines before each non-empty bucket, in closed form:
        # s(before j) = keep^j (s0 + sum over non-empty l < j of u_l keep^-(l+1))
        keep = 1.0 - self._decay
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
        rows = np.empty((m, _COLUMNS))
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
        recent = rows[pos, 0] - at(np.maximum(mine - self._hot_w, 0))[:, 0]
        judged = recent >= MIN_LATENCY_REQUESTS
        events = np.zeros(m, dtype=bool)
        seen = np.arange(len(pos))  # non-empty buckets of the run before each
        s0 = prior[0]
        if judged.any():
            # latency
            safe = np.where(s0 > 0, s0, 1.0)
            mu = np.where(s0 > 0, prior[1] / safe, 0.0)
            sigma = np.where(
                s0 > 0, np.maximum(np.sqrt(np.maximum(0.0, prior[2] / safe - mu**2)), _MIN_SIGMA), _MIN_SIGMA
            )
            warm = (lat.buckets + seen >= cfg.warmup_buckets) & (s0 >= 30)
            g = np.flatnonzero(judged & (vals[1] / n_nz - mu >= self._half_ln_ratio) & warm)
            if len(g):
                wn, ws, _ = self._window_sums(at, mine[g], ks[g], self.trackers["latency"])
                sig = sigma[g, None] * np.sqrt(1 + wn / s0[g, None])
                ev = latency_evidence_many(wn[:, :-1], ws[:, :-1], mu[g, None], sig[:, :-1], cfg.latency_ratio)
                hot = latency_evidence_many(wn[:, -1], ws[:, -1], mu[g], sig[:, -1], math.sqrt(cfg.latency_ratio))
                events[pos[g]] |= (ev.max(axis=1) >= cfg.min_evidence) | (hot >= HOT_EVIDENCE)
            # errors
            en, ef = prior[3], prior[4]
            warm = (err.buckets + seen >= cfg.warmup_buckets) & (en >= 30)
            g = np.flatnonzero(judged & (vals[3] > 0) & warm)
            if len(g):
                p = np.where(en[g] > 0, ef[g] / np.where(en[g] > 0, en[g], 1.0), 0.0)
                pc = np.maximum(p, 0.001)
                p_high = np.minimum(1.0, pc + np.sqrt(pc * (1.0 - pc) / np.maximum(en[g], 1.0)))
                wn, _, wf = self._window_sums(at, mine[g], ks[g], self.trackers["errors"])
                inc, width = cfg.error_increase, wn.shape[1] - 1
                ev = error_evidence_many(
                    wn[:, :-1].ravel(), wf[:, :-1].ravel(), np.repeat(p, width), np.repeat(p_high, width), inc
                )
                hot = error_evidence_many(wn[:, -1], wf[:, -1], p, p_high, inc / 2)
                events[pos[g]] |= (ev.reshape(-1, width).max(axis=1) >= cfg.min_evidence) | (hot >= HOT_EVIDENCE)
        # traffic: surge / drop where requests arrived; a drop also where a silence has become evidence
        hf = self._half_factor
        exp_nz = expected[pos]
        silent = ks + np.ceil(_MIN_EXPECTED_FOR_DROP / np.maximum(exp_nz, 1e-9))
        silent_from = np.concatenate(([self.silent_from], silent))[before]  # as of each bucket
        gate = ~mask & (np.arange(k0, end) >= silent_from)
        gate[pos] = ((n_nz >= exp_nz * hf) & (n_nz >= _MIN_SURGE_BUCKET)) | (n_nz <= exp_nz / hf)
        g = np.flatnonzero(gate[:stop])
        g = g[tra.buckets + g >= 2 * cfg.warmup_buckets]
        if len(g):
            counts = np.zeros(m)
            counts[pos] = n_nz
            events[g] |= self._traffic_events(at, g + t0, g + k0, counts[g], expected[g])
        # SLO burn: its "still hot" check already starts a run
        if self._slo_target is not None:
            g = np.flatnonzero(vals[4] > 0)
            if len(g):
                events[pos[g]] |= self._slo_hot(at, mine[g], ks[g], self._slo_target)
        hits = np.flatnonzero(events[:stop])
        stop, stopped = (int(hits[0]), True) if len(hits) else (stop, False)
        if stop:  # commit buckets k0 .. k0+stop-1
            done = int(np.searchsorted(pos, stop))
            total = start + (acc[:, done - 1] if done else 0.0)
            lat.s0, lat.s1, lat.s2, err.n, err.failed = (keep**stop * total).tolist()
            lat.buckets += done
            err.buckets += done
            if stop == m:
                self.traffic = tra = sim
            else:
                tra.run_factors(k0, mask[:stop], pos[:done], n_nz[:done])
            tra.level = float(tkeep**stop * (tra.level + tacc[done]))
            tra.buckets += stop
            hist.extend(rows[:stop])
            self.idle = stop - 1 - int(pos[done - 1]) if done else self.idle + stop
            if done:
                self.silent_from = int(silent[done - 1])
        return k0 + stop, stopped

    def _window_sums(
        self, at: Any, mine: np.ndarray, ks: np.ndarray, tracker: Tracker
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`_sums` for many buckets: (requests, sum ln d, failed), a column per latency window, then
        the "still hot" window."""
        windows = np.array([*self._lat_w, self._hot_w])
        w = np.minimum(windows[None, :], np.maximum(1, ks - tracker.resolved_at)[:, None])
        last, first = at(mine), at(np.maximum(mine[:, None] - w, 0))
        return last[:, None, 0] - first[..., 0], last[:, None, 1] - first[..., 1], last[:, None, 3] - first[..., 3]

    def _traffic_events(
        self, at: Any, mine: np.ndarray, ks: np.ndarray, n: np.ndarray, expected: np.ndarray
    ) -> np.ndarray:
        """Would `_traffic` open or start a drop/surge run at these buckets (trackers closed)?"""
        cfg = self.config
        drop, surge = self.trackers["traffic_drop"], self.trackers["traffic_surge"]
        since = drop if drop.resolved_at > surge.resolved_at else surge
        sizes = np.array([*self._traffic_w, self._hot_w])
        fresh = np.minimum(sizes[None, :], np.maximum(1, ks - since.resolved_at)[:, None])
        first = np.where(mine[:, None] + 1 > sizes[None, :], mine[:, None] - fresh, 0)
        last, rows = at(mine), at(first)
        observed = last[:, None, 0] - rows[..., 0]
        exp = last[:, None, 5] - rows[..., 5]
        factor, half = cfg.traffic_factor, math.sqrt(cfg.traffic_factor)
        check_drop = (n < expected)[:, None] & (exp >= _MIN_EXPECTED_FOR_DROP)
        check_surge = (n > expected)[:, None] & (observed >= MIN_SURGE_REQUESTS)
        events = np.zeros(len(ks), dtype=bool)
        for check, many in ((check_drop, drop_evidence_many), (check_surge, surge_evidence_many)):
            if not check.any():
                continue
            ev = np.where(check[:, :-1], many(observed[:, :-1], exp[:, :-1], factor), 0.0)
            hot = check[:, -1] & (many(observed[:, -1], exp[:, -1], half) >= HOT_EVIDENCE)
            events |= (ev.max(axis=1) >= cfg.min_evidence) | hot
        return events

    def _slo_hot(self, at: Any, mine: np.ndarray, ks: np.ndarray, target: float) -> np.ndarray:
        """Would `_slo` find a rule burning (its "hot" condition) at these buckets?"""
        hot = np.zeros(len(ks), dtype=bool)
        history = ks - (self.first_bucket or 0) + 1
        last = at(mine)
        for long_w, short_w, limit in self._slo_w:
            lw, sw = at(np.maximum(mine - long_w, 0)), at(np.maximum(mine - short_w, 0))
            long_n, long_e = last[:, 0] - lw[:, 0], last[:, 4] - lw[:, 4]
            short_n, short_e = last[:, 0] - sw[:, 0], last[:, 4] - sw[:, 4]
            with np.errstate(divide="ignore", invalid="ignore"):
                burning = ((long_e / long_n) / (1.0 - target) >= limit) & (
                    (short_e / short_n) / (1.0 - target) >= limit / 2
                )
            hot |= (history >= long_w) & (long_n >= SLO_MIN_REQUESTS) & (short_n > 0) & burning
        return hot

    def _window(self, w: int) -> tuple[float, ...]:
        """Sums over the last w completed buckets."""
        cum = self.cum
        a = cum[-1]
        row = max(self.cum_total - 1 - w, 0)
        if row >= self.cum_from:
            b = cum[-1 - w] if len(cum) > w else cum[0]
        else:  # older than the rows converted after the last run (see `_to_deque`)
            hist = self.hist
            b = tuple(hist.buf[row - hist.total + hist.size].tolist())
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
        self.cum_total += 1
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

    def _sums(self, k: int, tracker: Tracker, windows: list[int]) -> list[tuple[float, float, float]]:
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
