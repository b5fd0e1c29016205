"""Per-customer anomaly scoring: each batch scored against that customer's own baseline.

Method (chosen because it adapts to every customer's level and noise and costs a few numpy calls
per batch, not Python per event):

* Baseline: exponentially weighted moving averages, per customer, of the mean and variance of
  log(duration) and of the failure rate, updated once per *event-time bucket* (`SCORING_BUCKET_S`,
  30 s). Log-durations make "3x slower" the same shift for a 50 ms and a 2 s customer. Anomalous
  buckets do not update the baseline, so an incident is not learnt as the new normal.
* Request score (`anomaly_score` of every request point): how many baseline standard deviations
  slower than the customer's normal the request is, `max(0, (ln d - mu) / sigma)`; 0 during warm-up.
* Bucket tests, when a bucket is complete (event time passed its end plus one bucket of grace):
  latency anomalous if the bucket's geometric-mean latency is >= `SCORING_LATENCY_RATIO` x the
  baseline and its z-score (standard error of the mean) >= `SCORING_MIN_Z`; errors anomalous if the
  failure rate is >= baseline + `SCORING_ERROR_INCREASE` and the binomial z-score >= `SCORING_MIN_Z`.
  Both need `SCORING_MIN_BUCKET_REQUESTS` requests in the bucket and a warmed-up baseline.
* Incidents: anomalous buckets of one kind, at most one quiet bucket apart, merge into an incident;
  it is reported once it spans `SCORING_MIN_INCIDENT_S`, then re-emitted as it grows (its identity is
  customer, kind and start bucket, so the point is rewritten in place, and a replay after a crash
  rewrites the same point).

Out-of-order events: each batch is sorted by time; buckets are keyed by event time, so batch
boundaries do not change them. Events older than the customer's event-time watermark minus the
grace bucket are "late": they get request scores and feed the baseline, but never open incidents.
Shuffled traffic (the classic generator) therefore cannot cause an alarm storm.

The state (baseline, open buckets within the grace window, open incidents) is small and picklable;
it lives in Bytewax state and recovery snapshots, so a restart does not reset baselines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from logpulse.config import Settings
from logpulse.model import Incident, RequestBatch, ScoredBatch

_NS = 1_000_000_000
_MIN_SIGMA = 0.05
_MIN_P = 0.005


@dataclass(frozen=True)
class ScoringConfig:
    bucket_s: float = 30.0
    latency_ratio: float = 2.0
    error_increase: float = 0.15
    min_z: float = 4.0
    min_bucket_requests: int = 5
    min_incident_s: float = 60.0
    warmup_buckets: int = 10
    alpha: float = 0.05

    @classmethod
    def from_settings(cls, s: Settings) -> ScoringConfig:
        return cls(
            bucket_s=s.scoring_bucket_s,
            latency_ratio=s.scoring_latency_ratio,
            error_increase=s.scoring_error_increase,
            min_z=s.scoring_min_z,
            min_bucket_requests=s.scoring_min_bucket_requests,
            min_incident_s=s.scoring_min_incident_s,
            warmup_buckets=s.scoring_warmup_buckets,
            alpha=s.scoring_alpha,
        )


@dataclass
class _Bucket:
    n: int = 0
    log_sum: float = 0.0
    log_sq: float = 0.0
    failed: int = 0


@dataclass
class _OpenIncident:
    kind: str
    first: int  # bucket index
    last: int
    peak: float
    requests: int
    anomalous_buckets: int


@dataclass
class Baseline:
    """EWMA of log-latency mean/variance and failure rate, per customer."""

    mu: float = 0.0
    var: float = 0.0
    p: float = 0.0
    buckets: int = 0

    def update(self, n: int, log_sum: float, log_sq: float, failed: int, alpha: float) -> None:
        if n <= 0:
            return
        mean = log_sum / n
        var = max(0.0, log_sq / n - mean * mean)
        a = max(alpha, 1.0 / (self.buckets + 1))  # plain average while warming up
        self.mu += a * (mean - self.mu)
        self.var += a * (var - self.var)
        self.p += a * (failed / n - self.p)
        self.buckets += 1

    @property
    def sigma(self) -> float:
        return max(math.sqrt(self.var), _MIN_SIGMA)


@dataclass
class CustomerScorer:
    """One customer's scoring state; `score` is the Bytewax stateful_map step's work."""

    customer_id: str
    config: ScoringConfig
    baseline: Baseline = field(default_factory=Baseline)
    watermark: int = -1  # highest bucket index seen
    open_buckets: dict[int, _Bucket] = field(default_factory=dict)
    incidents: dict[str, _OpenIncident] = field(default_factory=dict)

    def score(self, batch: RequestBatch) -> ScoredBatch:
        cfg = self.config
        times = np.asarray(batch.times, dtype=np.int64)
        logs = np.log(np.maximum(np.asarray(batch.durations, dtype=np.float64), 1e-6))
        failed = np.fromiter(map("400".__le__, batch.statuses), dtype=bool, count=len(batch.statuses))
        scores = self._request_scores(logs)

        bucket_ns = int(cfg.bucket_s * _NS)
        idx = times // bucket_ns
        late = idx < self.watermark - 1  # older than the grace bucket: baseline only
        out: list[Incident] = []
        if late.any():
            self.baseline.update(
                int(late.sum()),
                float(logs[late].sum()),
                float((logs[late] ** 2).sum()),
                int(failed[late].sum()),
                cfg.alpha,
            )
            keep = ~late
            idx, logs, failed = idx[keep], logs[keep], failed[keep]
        if len(idx):
            self._add_buckets(idx, logs, failed, out)
        return ScoredBatch(batch, scores, _dedupe(out))

    def _add_buckets(self, idx: np.ndarray, logs: np.ndarray, failed: np.ndarray, out: list[Incident]) -> None:
        """Merge the batch into event-time buckets; complete (and judge) every bucket that event time
        has passed by more than one bucket. Equivalent to feeding the requests one by one in time
        order, so batch boundaries do not matter."""
        order = np.argsort(idx, kind="stable")
        idx, logs, failed = idx[order], logs[order], failed[order]
        keys, starts = np.unique(idx, return_index=True)
        n = np.diff(np.append(starts, len(idx)))
        s1 = np.add.reduceat(logs, starts)
        s2 = np.add.reduceat(logs * logs, starts)
        fl = np.add.reduceat(failed.astype(np.int64), starts)
        for k in list(self.open_buckets):  # requests for buckets still open from earlier batches
            i = int(np.searchsorted(keys, k))
            if i == len(keys) or keys[i] != k:
                continue
            b = self.open_buckets.pop(k)
            n[i] += b.n
            s1[i] += b.log_sum
            s2[i] += b.log_sq
            fl[i] += b.failed
        self.watermark = max(self.watermark, int(keys[-1]))
        limit = self.watermark - 1
        # buckets still open from earlier batches that are complete now come first (lower indices)
        for k in sorted(k for k in self.open_buckets if k < limit):
            b = self.open_buckets.pop(k)
            self._finalize(k, b.n, b.log_sum, b.log_sq, b.failed, out)
        done = int(np.searchsorted(keys, limit))
        self._finalize_many(keys[:done], n[:done], s1[:done], s2[:done], fl[:done], out)
        for k, cnt, a, b2, f in zip(
            keys[done:].tolist(),
            n[done:].tolist(),
            s1[done:].tolist(),
            s2[done:].tolist(),
            fl[done:].tolist(),
            strict=True,
        ):
            self.open_buckets[k] = _Bucket(cnt, a, b2, f)

    def _finalize_many(
        self, keys: np.ndarray, n: np.ndarray, s1: np.ndarray, s2: np.ndarray, fl: np.ndarray, out: list[Incident]
    ) -> None:
        """Complete buckets in order. Runs of buckets too small to be judged, once the baseline's
        weight is constant, update it in one vectorised step (sparse traffic has ~1 request per
        bucket: a Python step per bucket would be a Python step per request)."""
        cfg = self.config
        i, m = 0, len(keys)
        small = n < cfg.min_bucket_requests
        steady_from = math.ceil(1 / cfg.alpha)  # Baseline.update's weight is alpha from here on
        while i < m:
            if small[i] and self.baseline.buckets >= steady_from:
                j = i + int(np.argmax(~small[i:])) if not small[i:].all() else m
                self._ewma_run(n[i:j], s1[i:j], s2[i:j], fl[i:j])
                for kind in ("latency", "errors"):
                    self._track(kind, int(keys[j - 1]), 0, None, out)
                i = j
            else:
                self._finalize(int(keys[i]), int(n[i]), float(s1[i]), float(s2[i]), int(fl[i]), out)
                i += 1

    def _ewma_run(self, n: np.ndarray, s1: np.ndarray, s2: np.ndarray, fl: np.ndarray) -> None:
        """Baseline.update applied to each bucket in turn, in closed form (constant weight alpha)."""
        a, base, m = self.config.alpha, self.baseline, len(n)
        mean = s1 / n
        var = np.maximum(0.0, s2 / n - mean * mean)
        decay = (1 - a) ** np.arange(m - 1, -1, -1, dtype=np.float64)
        keep = (1 - a) ** m
        base.mu = keep * base.mu + a * float(decay @ mean)
        base.var = keep * base.var + a * float(decay @ var)
        base.p = keep * base.p + a * float(decay @ (fl / n))
        base.buckets += m

    def _request_scores(self, logs: np.ndarray) -> list[float]:
        if self.baseline.buckets < self.config.warmup_buckets:
            return [0.0] * len(logs)
        z = (logs - self.baseline.mu) / self.baseline.sigma
        scores: list[float] = np.round(np.maximum(z, 0.0), 2).tolist()
        return scores

    def _finalize(self, k: int, n: int, log_sum: float, log_sq: float, failed: int, out: list[Incident]) -> None:
        """Judge one complete bucket against the baseline, then learn from it unless anomalous."""
        cfg, base = self.config, self.baseline
        anomalous: dict[str, float] = {}
        if base.buckets >= cfg.warmup_buckets and n >= cfg.min_bucket_requests:
            shift = log_sum / n - base.mu
            z_lat = shift / (base.sigma / math.sqrt(n))
            if shift >= math.log(cfg.latency_ratio) and z_lat >= cfg.min_z:
                anomalous["latency"] = z_lat
            p = max(base.p, _MIN_P)
            rate = failed / n
            z_err = (rate - p) / math.sqrt(p * (1 - p) / n)
            if rate - p >= cfg.error_increase and z_err >= cfg.min_z:
                anomalous["errors"] = z_err
        if not anomalous:
            base.update(n, log_sum, log_sq, failed, cfg.alpha)
        for kind in ("latency", "errors"):
            self._track(kind, k, n, anomalous.get(kind), out)

    def _track(self, kind: str, k: int, n: int, z: float | None, out: list[Incident]) -> None:
        inc = self.incidents.get(kind)
        if inc is not None and k - inc.last > 2:  # more than one quiet bucket: the incident is over
            del self.incidents[kind]
            inc = None
        if z is None:
            return
        if inc is None:
            inc = self.incidents[kind] = _OpenIncident(kind, k, k, z, 0, 0)
        inc.last, inc.peak = k, max(inc.peak, z)
        inc.requests += n
        inc.anomalous_buckets += 1
        bucket_ns = int(self.config.bucket_s * _NS)
        if (inc.last - inc.first + 1) * self.config.bucket_s >= self.config.min_incident_s:
            out.append(
                Incident(
                    self.customer_id,
                    kind,
                    inc.first * bucket_ns,
                    (inc.last + 1) * bucket_ns,
                    round(inc.peak, 3),
                    inc.requests,
                )
            )


def _dedupe(incidents: list[Incident]) -> list[Incident]:
    """Keep the latest version of each incident (same customer, kind, start) from one batch."""
    latest: dict[tuple[str, int], Incident] = {}
    for inc in incidents:
        latest[(inc.kind, inc.start_ns)] = inc
    return list(latest.values())
