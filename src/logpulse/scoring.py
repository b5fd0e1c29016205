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
    def from_settings(cls, s: Settings) -> "ScoringConfig":
        return cls(bucket_s=s.scoring_bucket_s, latency_ratio=s.scoring_latency_ratio,
                   error_increase=s.scoring_error_increase, min_z=s.scoring_min_z,
                   min_bucket_requests=s.scoring_min_bucket_requests, min_incident_s=s.scoring_min_incident_s,
                   warmup_buckets=s.scoring_warmup_buckets, alpha=s.scoring_alpha)


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
        failed = np.asarray(batch.statuses) >= "400"
        scores = self._request_scores(logs)

        bucket_ns = int(cfg.bucket_s * _NS)
        idx = times // bucket_ns
        late = idx < self.watermark - 1  # older than the grace bucket: baseline only
        out: list[Incident] = []
        if late.any():
            self.baseline.update(int(late.sum()), float(logs[late].sum()), float((logs[late] ** 2).sum()),
                                 int(failed[late].sum()), cfg.alpha)
            keep = ~late
            idx, logs, failed = idx[keep], logs[keep], failed[keep]
        if len(idx):
            order = np.argsort(idx, kind="stable")
            idx, logs, failed = idx[order], logs[order], failed[order]
            keys, starts = np.unique(idx, return_index=True)
            n = np.diff(np.append(starts, len(idx)))
            log_sum = np.add.reduceat(logs, starts)
            log_sq = np.add.reduceat(logs * logs, starts)
            fails = np.add.reduceat(failed.astype(np.int64), starts)
            for k, cnt, s1, s2, fl in zip(keys.tolist(), n.tolist(), log_sum.tolist(), log_sq.tolist(), fails.tolist()):
                self._finalize_before(k - 1, out)
                b = self.open_buckets.get(k)
                if b is None:
                    b = self.open_buckets[k] = _Bucket()
                b.n += cnt
                b.log_sum += s1
                b.log_sq += s2
                b.failed += fl
                self.watermark = max(self.watermark, k)
        return ScoredBatch(batch, scores, _dedupe(out))

    def _request_scores(self, logs: np.ndarray) -> list[float]:
        if self.baseline.buckets < self.config.warmup_buckets:
            return [0.0] * len(logs)
        z = (logs - self.baseline.mu) / self.baseline.sigma
        return np.round(np.maximum(z, 0.0), 3).tolist()

    def _finalize_before(self, limit: int, out: list[Incident]) -> None:
        """Complete every open bucket with index < limit (event time has moved past its grace)."""
        if not self.open_buckets or min(self.open_buckets) >= limit:
            return
        for k in sorted(b for b in self.open_buckets if b < limit):
            self._finalize(k, self.open_buckets.pop(k), out)

    def _finalize(self, k: int, b: _Bucket, out: list[Incident]) -> None:
        cfg, base = self.config, self.baseline
        anomalous: dict[str, float] = {}
        if base.buckets >= cfg.warmup_buckets and b.n >= cfg.min_bucket_requests:
            shift = b.log_sum / b.n - base.mu
            z_lat = shift / (base.sigma / math.sqrt(b.n))
            if shift >= math.log(cfg.latency_ratio) and z_lat >= cfg.min_z:
                anomalous["latency"] = z_lat
            p = max(base.p, _MIN_P)
            rate = b.failed / b.n
            z_err = (rate - p) / math.sqrt(p * (1 - p) / b.n)
            if rate - p >= cfg.error_increase and z_err >= cfg.min_z:
                anomalous["errors"] = z_err
        if not anomalous:
            base.update(b.n, b.log_sum, b.log_sq, b.failed, cfg.alpha)
        for kind in ("latency", "errors"):
            self._track(kind, k, b.n, anomalous.get(kind), out)

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
            out.append(Incident(self.customer_id, kind, inc.first * bucket_ns, (inc.last + 1) * bucket_ns,
                                round(inc.peak, 3), inc.requests))


def _dedupe(incidents: list[Incident]) -> list[Incident]:
    """Keep the latest version of each incident (same customer, kind, start) from one batch."""
    latest: dict[tuple[str, int], Incident] = {}
    for inc in incidents:
        latest[(inc.kind, inc.start_ns)] = inc
    return list(latest.values())
