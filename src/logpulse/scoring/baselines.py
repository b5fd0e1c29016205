"""What "usual" means for one customer: latency, failure-rate and traffic baselines, and the config.

All baselines are updated once per completed event-time bucket (`SCORING_BUCKET_S`, 30 s) and never
from buckets inside an open incident of their kind, so an incident is not learnt as normal — until it
has lasted long enough to *be* the new normal, when `relearn` replaces the baseline by the recent level.

* `LatencyBaseline`: exponentially decayed sums (count, sum and sum of squares of log-duration), time
  constant 1 h. Log-durations make "3x slower" the same shift for a 50 ms and a 2 s customer; decayed
  *sums* (not an average of bucket averages) weigh every request equally, so sparse customers with one
  request per bucket get an honest variance.
* `ErrorBaseline`: decayed failed / total counts (1 h); `p_high`, one standard error higher, is
  used in the exact test, so a customer with little history is not judged against a lucky estimate.
* `TrafficBaseline`: requests per bucket, a short EWMA level (30 min) scaled by a time-of-day profile
  (96 quarter-hours, learnt across days): expected(now) = level x profile[now] / profile[30 min ago].
  The level follows slow day/night swings; the profile anticipates steep ones once a day is learnt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from logpulse.config import Settings, parse_slo_targets, slo_target_of

_MIN_SIGMA = 0.05
_SLOTS = 96  # quarter-hours per day
_SLOT_S = 86400 // _SLOTS


@dataclass(frozen=True)
class ScoringConfig:
    """The scorer's knobs. Built by `from_settings` (the SCORING_* settings hold the defaults); tests
    vary a field with `dataclasses.replace`."""

    bucket_s: float
    min_evidence: float  # -log10 p an incident needs (sensitivity)
    latency_ratio: float
    error_increase: float
    traffic_factor: float
    new_normal_s: float
    slo_targets: tuple[tuple[str, float], ...]
    quiet_s: float = 300.0  # not a setting
    warmup_buckets: int = 10  # not a setting

    @classmethod
    def from_settings(cls, s: Settings) -> ScoringConfig:
        return cls(
            bucket_s=s.scoring_bucket_s,
            min_evidence=SENSITIVITY[s.scoring_sensitivity],
            latency_ratio=s.scoring_latency_ratio,
            error_increase=s.scoring_error_increase,
            traffic_factor=s.scoring_traffic_factor,
            new_normal_s=s.scoring_new_normal_s,
            slo_targets=tuple(parse_slo_targets(s.slo_targets).items()),
        )

    def slo_target(self, customer_id: str) -> float | None:
        """The customer's availability target as a fraction (0.995), or None when it has none."""
        return slo_target_of(self.slo_targets, customer_id)

    def buckets(self, seconds: float) -> int:
        return max(1, round(seconds / self.bucket_s))


SENSITIVITY = {"low": 9.0, "medium": 7.0, "high": 5.0}
"""SCORING_SENSITIVITY → the evidence (-log10 p) an incident needs: p <= 1e-9, 1e-7, 1e-5 (each test;
about a million windows are tested per customer-month, hence the small p)."""


@dataclass
class LatencyBaseline:
    """Decayed count / sum / sum of squares of log-durations."""

    s0: float = 0.0
    s1: float = 0.0
    s2: float = 0.0
    buckets: int = 0

    def update(self, n: int, log_sum: float, log_sq: float, decay: float) -> None:
        keep = 1.0 - decay
        self.s0 = self.s0 * keep + n
        self.s1 = self.s1 * keep + log_sum
        self.s2 = self.s2 * keep + log_sq
        if n:
            self.buckets += 1

    def decay(self, buckets: int, decay: float) -> None:
        keep = (1.0 - decay) ** buckets
        self.s0, self.s1, self.s2 = self.s0 * keep, self.s1 * keep, self.s2 * keep

    def relearn(self, n: int, log_sum: float, log_sq: float) -> None:
        if n:
            self.s0, self.s1, self.s2 = float(n), log_sum, log_sq

    @property
    def mu(self) -> float:
        return self.s1 / self.s0 if self.s0 > 0 else 0.0

    @property
    def sigma(self) -> float:
        if self.s0 <= 0:
            return _MIN_SIGMA
        return max(math.sqrt(max(0.0, self.s2 / self.s0 - self.mu**2)), _MIN_SIGMA)

    def warm(self, warmup_buckets: int) -> bool:
        return self.buckets >= warmup_buckets and self.s0 >= 30


@dataclass
class ErrorBaseline:
    """Decayed failed / total request counts."""

    n: float = 0.0
    failed: float = 0.0
    buckets: int = 0

    def update(self, n: int, failed: int, decay: float) -> None:
        keep = 1.0 - decay
        self.n = self.n * keep + n
        self.failed = self.failed * keep + failed
        if n:
            self.buckets += 1

    def decay(self, buckets: int, decay: float) -> None:
        keep = (1.0 - decay) ** buckets
        self.n, self.failed = self.n * keep, self.failed * keep

    def relearn(self, n: int, failed: int) -> None:
        if n:
            self.n, self.failed = float(n), float(failed)

    @property
    def p(self) -> float:
        return self.failed / self.n if self.n > 0 else 0.0

    @property
    def p_high(self) -> float:
        """A cautious usual failure rate (one standard error up, at least 1 failure in 1,000)."""
        p = max(self.p, 0.001)
        return min(1.0, p + math.sqrt(p * (1.0 - p) / max(self.n, 1.0)))

    def warm(self, warmup_buckets: int) -> bool:
        return self.buckets >= warmup_buckets and self.n >= 30


@dataclass
class TrafficBaseline:
    """Requests per bucket: a short EWMA level and a time-of-day profile learnt across days."""

    bucket_s: float = 30.0
    level: float = 0.0
    buckets: int = 0
    profile: list[float] = field(default_factory=lambda: [0.0] * _SLOTS)
    profile_days: list[int] = field(default_factory=lambda: [0] * _SLOTS)
    slot: int = -1  # slot being accumulated (absolute quarter-hour index)
    slot_count: float = 0.0
    slot_buckets: int = 0
    slot_tainted: bool = False  # a traffic incident was open in this quarter-hour: not learnt
    learnt: bool = False  # some quarter-hour of the profile is learnt
    factor: float = 1.0  # profile[now] / profile[LEVEL_S ago], cached per quarter-hour
    factor_slot: int = -1

    LEVEL_S = 1800.0  # time constant of the level
    PROFILE_WEIGHT = 0.3  # weight of the newest day in a quarter-hour's profile

    def _slot(self, k: int) -> int:
        return int(k * self.bucket_s) // _SLOT_S

    def expected(self, k: int) -> float:
        """Requests expected in bucket k."""
        if not self.learnt:  # the first day: the level alone
            return self.level
        slot = self._slot(k)
        if slot != self.factor_slot:  # the factor changes once per quarter-hour
            lag = self._slot(k - round(self.LEVEL_S / self.bucket_s)) % _SLOTS
            now = slot % _SLOTS
            self.factor, self.factor_slot = 1.0, slot
            if self.profile_days[now] and self.profile_days[lag] and self.profile[lag] > 0:
                self.factor = min(4.0, max(0.25, self.profile[now] / self.profile[lag]))
        return self.level * self.factor

    def update(self, k: int, count: int, *, learn: bool) -> None:
        if learn:
            a = max(self.bucket_s / self.LEVEL_S, 1.0 / (self.buckets + 1))
            self.level += a * (count - self.level)
            self.buckets += 1
        slot = self._slot(k)
        if slot != self.slot:
            self._close_slot()
            self.slot, self.slot_count, self.slot_buckets, self.slot_tainted = slot, 0.0, 0, False
        self.slot_count += count
        self.slot_buckets += 1
        self.slot_tainted = self.slot_tainted or not learn

    def skip_empty(self, k: int, m: int, keep: float) -> None:
        """`update(j, 0, learn=True)` for j = k..k+m-1, all in one quarter-hour, steady weight."""
        self.level *= keep**m
        self.buckets += m
        slot = self._slot(k)
        if slot != self.slot:
            self._close_slot()
            self.slot, self.slot_count, self.slot_buckets, self.slot_tainted = slot, 0.0, 0, False
        self.slot_buckets += m

    def _close_slot(self) -> None:
        whole = self.slot_buckets >= _SLOT_S / self.bucket_s
        if self.slot < 0 or not whole or self.slot_tainted:  # only whole, normal quarter-hours
            return
        i = self.slot % _SLOTS
        mean = self.slot_count / self.slot_buckets
        w = self.PROFILE_WEIGHT if self.profile_days[i] else 1.0
        self.profile[i] += w * (mean - self.profile[i])
        self.profile_days[i] += 1
        self.learnt = True

    def relearn(self, per_bucket: float) -> None:
        self.level = per_bucket

    def warm(self, warmup_buckets: int) -> bool:
        return self.buckets >= 2 * warmup_buckets
