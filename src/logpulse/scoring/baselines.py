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

`decayed_run` gives the same decayed sums for a whole run of buckets at once (the scorer completes
runs of quiet buckets as arrays), in closed form: s[j] = keep^(j+1) (s0 + sum_i<=j x[i] keep^-(i+1)),
touching only the buckets that received requests; runs are short enough (< 1 day) that keep^-j stays
far from overflow (relative error ~1e-14 against the per-bucket recurrence). (`scipy.signal.lfilter`
would do it too, but importing scipy.signal costs ~1 s per process.)
"""

from __future__ import annotations

import itertools
import math
from array import array
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from logpulse.config import Settings, parse_slo_targets, slo_target_of

MIN_SIGMA = 0.05
"""The least latency spread a baseline assumes (ln units): a customer whose requests all take the same
time would otherwise make every slower request infinitely unusual."""
MAX_FACTOR = 4.0
"""The most the time-of-day profile scales the level by (and 1/4 the least)."""
_SLOTS = 96  # quarter-hours per day
SLOT_S = 86400 // _SLOTS
LOOP_SLOTS = 48
"""Up to this many quarter-hours, `TrafficBaseline.run_factors` takes them one by one in Python (a few µs
each) rather than as arrays (~60 numpy calls whatever the run's length): measured on runs of 2 h."""


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


def decayed_run(
    start: np.ndarray, pos: np.ndarray, inputs: np.ndarray, keep: float | np.ndarray, rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Decayed sums over a run of buckets 0, 1, ... of which only `pos` (sorted) received `inputs`
    (one row per sum): returns (the sums just before each of those buckets, the scaled cumulative
    inputs `acc`). The sums after bucket j, with `done` inputs at positions <= j, are
    keep^(j+1) * (start + acc[:, done - 1]) (`start` when done = 0). `keep` is one decay for every
    row or a column of one per row (elementwise, so each row's floats are those of its own call);
    with `rows`, a column of the distinct decays and each row's index in it (rows of one decay share
    its powers, the costliest part: the same floats)."""
    power = keep ** pos.astype(np.float64)
    if rows is not None:
        power, keep = power[rows], keep[rows]  # type: ignore[index]
    scaled = inputs / (power * keep)
    acc = np.cumsum(scaled, axis=1)
    before: np.ndarray = power * (start[:, None] + acc - scaled)
    return before, acc


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

    def decay(self, buckets: int, decay: float, errors: ErrorBaseline | None = None) -> None:
        """`buckets` empty buckets; `errors`' too when given (one power for both, the same floats)."""
        keep = (1.0 - decay) ** buckets
        self.s0, self.s1, self.s2 = self.s0 * keep, self.s1 * keep, self.s2 * keep
        if errors is not None:
            errors.n, errors.failed = errors.n * keep, errors.failed * keep

    def relearn(self, n: float, log_sum: float, log_sq: float) -> None:
        if n:
            self.s0, self.s1, self.s2 = float(n), log_sum, log_sq

    @property
    def mu(self) -> float:
        return self.s1 / self.s0 if self.s0 > 0 else 0.0

    @property
    def sigma(self) -> float:
        if self.s0 <= 0:
            return MIN_SIGMA
        return max(math.sqrt(max(0.0, self.s2 / self.s0 - self.mu**2)), MIN_SIGMA)

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

    def relearn(self, n: float, failed: float) -> None:
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
    # C arrays, not lists: 96 floats as Python objects cost ~3 KB a customer, as doubles 0.8 KB
    profile: array[float] = field(default_factory=lambda: array("d", bytes(8 * _SLOTS)))
    profile_days: array[int] = field(default_factory=lambda: array("i", bytes(4 * _SLOTS)))
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
        return int(k * self.bucket_s) // SLOT_S

    def expected(self, k: int) -> float:
        """Requests expected in bucket k."""
        if not self.learnt:  # the first day: the level alone
            return self.level
        if int(k * self.bucket_s) // SLOT_S != self.factor_slot:  # changes once per quarter-hour
            self.factor_at(k)
        return self.level * self.factor

    def factor_at(self, k: int) -> float:
        """profile[now] / profile[LEVEL_S ago] for bucket k (1.0 before any quarter-hour is learnt)."""
        if not self.learnt:
            return 1.0
        slot = self._slot(k)
        if slot != self.factor_slot:  # the factor changes once per quarter-hour
            lag = self._slot(k - round(self.LEVEL_S / self.bucket_s)) % _SLOTS
            now = slot % _SLOTS
            self.factor, self.factor_slot = 1.0, slot
            if self.profile_days[now] and self.profile_days[lag] and self.profile[lag] > 0:
                self.factor = min(MAX_FACTOR, max(1 / MAX_FACTOR, self.profile[now] / self.profile[lag]))
        return self.factor

    def update(self, k: int, count: int, *, learn: bool) -> None:
        if learn:
            a = max(self.bucket_s / self.LEVEL_S, 1.0 / (self.buckets + 1))
            self.level += a * (count - self.level)
            self.buckets += 1
        self.account(self._slot(k), count, 1, tainted=not learn)

    def account(self, slot: int, count: float, buckets: int, *, tainted: bool = False) -> None:
        """Add `buckets` buckets holding `count` requests to quarter-hour `slot` (the profile's input)."""
        if slot != self.slot:
            self.start_slot(slot)
        self.slot_count += count
        self.slot_buckets += buckets
        self.slot_tainted = self.slot_tainted or tainted

    def run_factors(self, k0: int, mask: np.ndarray, pos: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """For a run of learnt buckets k0, k0+1, ... (`counts` requests at offsets `pos`, `mask` marks
        them): the profile factor of each bucket as `expected` applies it, and the run accounted into
        the profile. The level is the caller's (`decayed_run`).

        The profile changes only when a quarter-hour closes, and a factor reads the profile of its own
        quarter-hour (as of before the run) and of the one 30 minutes earlier (already closed): so all
        closes and factors of a run shorter than a day are computed as arrays. The first day (nothing
        learnt yet), unusual bucket sizes and runs of a few quarter-hours take the per-quarter-hour loop."""
        m = len(mask)
        exact = self.LEVEL_S == 2 * SLOT_S and SLOT_S % self.bucket_s == 0  # 30 min ago = 2 slots ago
        per = round(SLOT_S / self.bucket_s)
        bounds = [0, *range(per - k0 % per if k0 % per else per, m, per), m] if exact else []
        if exact and len(bounds) - 1 <= LOOP_SLOTS:  # a few quarter-hours: the loop, from Python lists
            first = k0 // per
            counted = np.bincount((pos + k0) // per - first, weights=counts, minlength=len(bounds) - 1)
            return self._run_factors_loop(
                k0,
                bounds[:-1],
                [b - a for a, b in itertools.pairwise(bounds)],
                list(range(first, first + len(bounds) - 1)),
                counted.tolist(),
            )
        if exact:  # slot boundaries every `per` buckets
            first = k0 // per
            starts = np.concatenate(([0], np.arange(per - k0 % per if k0 % per else per, m, per)))
            seg = np.arange(first, first + len(starts))
            slot_of_pos = (pos + k0) // per
        else:
            slots = (np.arange(k0, k0 + m) * self.bucket_s).astype(np.int64) // SLOT_S
            starts = np.flatnonzero(np.diff(slots, prepend=slots[0] - 1))
            seg, slot_of_pos = slots[starts], slots[pos]
        sizes = np.diff(np.append(starts, m))
        totals = np.bincount(slot_of_pos - seg[0], weights=counts, minlength=len(seg))
        cont = int(seg[0]) == self.slot  # the run continues the quarter-hour being accumulated
        alias = not cont and self.slot >= 0 and bool(np.any(seg % _SLOTS == self.slot % _SLOTS))
        if not self.learnt or not exact or alias or len(seg) > _SLOTS - 4 or len(seg) <= LOOP_SLOTS:
            return self._run_factors_loop(k0, starts.tolist(), sizes.tolist(), seg.tolist(), totals.tolist())
        old = np.array(self.profile, dtype=np.float64)
        old_days = np.array(self.profile_days, dtype=np.intc)
        # the quarter-hours that close during the run, in order: the open one (unless continued), then
        # every segment but the last (the open one's sums carry into the first segment when continued)
        c_slot, c_count, c_size = seg[:-1], totals[:-1].copy(), sizes[:-1].copy()
        c_taint = np.zeros(len(c_slot), dtype=bool)
        if cont and len(c_slot):
            c_count[0] += self.slot_count
            c_size[0] += self.slot_buckets
            c_taint[0] = self.slot_tainted
        elif not cont:
            c_slot = np.concatenate(([self.slot], c_slot))
            c_count = np.concatenate(([self.slot_count], c_count))
            c_size = np.concatenate(([self.slot_buckets], c_size))
            c_taint = np.concatenate(([self.slot_tainted], c_taint))
        close = (c_slot >= 0) & (c_size >= SLOT_S / self.bucket_s) & ~c_taint
        idx = c_slot[close] % _SLOTS
        prof, days = old.copy(), old_days.copy()
        mean = c_count[close] / c_size[close]
        w = np.where(days[idx] > 0, self.PROFILE_WEIGHT, 1.0)
        prof[idx] += w * (mean - prof[idx])
        days[idx] += 1
        # factor of each segment: its own slot as before the run (the open slot's close aside), the lag
        # slot after the closes (it closed before the segment began)
        base, base_days = old.copy(), old_days.copy()
        if not cont and len(close) and close[0]:
            base[idx[0]], base_days[idx[0]] = prof[idx[0]], days[idx[0]]
        now, lag = seg % _SLOTS, (seg - 2) % _SLOTS
        ok = (base_days[now] > 0) & (days[lag] > 0) & (prof[lag] > 0)
        ratio = base[now] / np.where(prof[lag] > 0, prof[lag], 1.0)
        factors = np.where(ok, np.clip(ratio, 1 / MAX_FACTOR, MAX_FACTOR), 1.0)
        ok0 = old_days[now[0]] > 0 and old_days[lag[0]] > 0 and old[lag[0]] > 0  # the first: before any close
        factors[0] = min(MAX_FACTOR, max(1 / MAX_FACTOR, old[now[0]] / old[lag[0]])) if ok0 else 1.0
        if int(seg[0]) == self.factor_slot:
            factors[0] = self.factor
        self.profile, self.profile_days = array("d", prof.tobytes()), array("i", days.tobytes())
        if len(seg) == 1 and cont:
            self.slot_count += float(totals[0])
            self.slot_buckets += int(sizes[0])
        else:
            self.slot, self.slot_count = int(seg[-1]), float(totals[-1])
            self.slot_buckets, self.slot_tainted = int(sizes[-1]), False
        self.factor, self.factor_slot = float(factors[-1]), int(seg[-1])
        return np.repeat(factors, sizes)

    def _run_factors_loop(
        self, k0: int, starts: list[int], sizes: list[int], seg: list[int], totals: list[float]
    ) -> np.ndarray:
        """`run_factors` one quarter-hour at a time, as `expected` and `update` do it per bucket."""
        factors, lens = [], []
        for slot, first, size, total in zip(seg, starts, sizes, totals, strict=True):
            factors.append(self.factor_at(k0 + first))
            was_learnt = self.learnt
            self.account(slot, total, size)
            if not was_learnt and self.learnt and size > 1:  # learnt from the 2nd bucket of this slot on
                factors.append(self.factor_at(k0 + first + 1))
                lens += [1, size - 1]
            else:
                lens.append(size)
        return np.repeat(factors, lens)

    def copy(self) -> TrafficBaseline:
        """A copy that can be advanced without touching this one (profile arrays copied)."""
        new = TrafficBaseline(**{**self.__dict__})
        new.profile, new.profile_days = array("d", self.profile), array("i", self.profile_days)
        return new

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Snapshots written while the profile was two lists restore as arrays."""
        self.__dict__.update(state)
        self.profile, self.profile_days = array("d", self.profile), array("i", self.profile_days)

    def skip_empty(self, k: int, m: int, keep: float) -> None:
        """`update(j, 0, learn=True)` for j = k..k+m-1, all in one quarter-hour, steady weight."""
        self.level *= keep**m
        self.buckets += m
        slot = self._slot(k)
        if slot != self.slot:
            self.start_slot(slot)
        self.slot_buckets += m

    def start_slot(self, slot: int) -> None:
        """Close the quarter-hour being accumulated (the profile learns it) and start `slot`."""
        self._close_slot()
        self.slot, self.slot_count, self.slot_buckets, self.slot_tainted = slot, 0.0, 0, False

    def _close_slot(self) -> None:
        whole = self.slot_buckets >= SLOT_S / self.bucket_s
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
