"""The incident lifecycle of one customer and kind: closed → open → resolved.

* **Open** when a signal's test passes (evidence >= the sensitivity threshold). The incident starts
  at the first bucket of the current run of "hot" buckets (see below), not at the bucket where the
  evidence became overwhelming, so `started_at` is when the change began.
* **Hysteresis.** While open, a bucket is *hot* when its effect is at least half the opening effect
  (e.g. latency >= sqrt(1.3) x usual when 1.3 x opens). The incident stays open until
  `quiet_buckets` consecutive buckets are not hot; a brief dip therefore does not split one incident
  into several, and `ended_at` is the end of the last hot bucket.
* **New normal.** An incident still hot after `new_normal_buckets` is a level change, not an
  incident: it is resolved (the summary says so) and the caller re-learns the baseline from the
  recent buckets (the change point is the incident's start, found as in CUSUM: the first bucket of
  the hot run).

Every change is emitted as a new version of the same `Incident` (same id): on open, on every hot
bucket while open (its end, peak and summary grow), and once resolved.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Any

from logpulse.model import Incident
from logpulse.scoring.signals import describe


@dataclass
class _Open:
    first: int  # first bucket (start)
    last: int  # last hot bucket
    detected: int  # bucket at which the incident was opened
    peak: float
    requests: int = 0
    quiet: int = 0
    observed: float = 0.0  # weighted sums for the summary
    usual: float = 0.0
    weight: float = 0.0


@dataclass(slots=True)
class Tracker:
    """One customer's incidents of one kind (at most one open at a time).

    Slotted: every customer has five, and the scorer reads two fields of each for every batch (is
    anything open or brewing), so at thousands of customers they are as much cache misses as
    memory; no per-instance dict halves both."""

    customer_id: str
    kind: str
    bucket_ns: int
    quiet_buckets: int
    new_normal_buckets: int  # 0: never (slo_burn is a policy, not a baseline)
    current: _Open | None = None
    run_start: int | None = None  # first bucket of the current run of hot buckets
    _k: int = 0
    resolved_at: int = -(10**12)  # bucket of the last resolution: later windows start after it

    def __getstate__(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """The fields by name: the form snapshots of the unslotted class hold (its `__dict__`) too; a
        field such a snapshot lacks gets its default."""
        for f in fields(self):
            if f.name in state:
                setattr(self, f.name, state[f.name])
            elif f.default is not MISSING:
                setattr(self, f.name, f.default)

    def fresh(self, k: int, w: int) -> int:
        """Window length w, shortened so that it does not reach back into the last incident."""
        return max(1, min(w, k - self.resolved_at))

    @property
    def is_open(self) -> bool:
        return self.current is not None

    def learns(self, k: int) -> bool:
        """May the baseline learn from bucket k? Not while it belongs to an incident — open, or a run
        of hot buckets that may still become one (a mild change that stays hot longer than a new
        normal is learnt)."""
        if self.current is not None:
            return False
        return self.run_start is None or k - self.run_start >= self.new_normal_buckets

    def step(
        self,
        k: int,
        evidence: float,
        hot: bool,
        requests: int,
        observed: float,
        usual: float,
        weight: float = 1.0,
    ) -> Incident | None:
        """Feed completed bucket k; return the incident's new version when it changed.

        `evidence` > 0 means the opening test passed for a window ending at k; `hot` says whether
        bucket k itself still shows the effect; observed/usual are this bucket's levels (for the
        summary), weighted by `weight` (requests or 1).
        """
        self._k = k
        if hot:
            if self.run_start is None:
                self.run_start = k
        else:
            self.run_start = None
        cur = self.current
        if cur is None:
            if evidence <= 0:
                return None
            first = self.run_start if self.run_start is not None else k
            cur = self.current = _Open(first=first, last=k, detected=k, peak=evidence)
            self._accumulate(cur, requests, observed, usual, weight)
            return self._version(cur)
        if hot:
            cur.last, cur.quiet = k, 0
            cur.peak = max(cur.peak, evidence)
            self._accumulate(cur, requests, observed, usual, weight)
            if self.new_normal_buckets and k - cur.first + 1 >= self.new_normal_buckets:
                return self._resolve(new_normal=True)
            return self._version(cur)
        cur.quiet += 1
        if cur.quiet >= self.quiet_buckets:
            return self._resolve(new_normal=False)
        return None

    @staticmethod
    def _accumulate(cur: _Open, requests: int, observed: float, usual: float, weight: float) -> None:
        cur.requests += requests
        cur.observed += observed * weight
        cur.usual += usual * weight
        cur.weight += weight

    def _resolve(self, *, new_normal: bool) -> Incident:
        cur = self.current
        assert cur is not None
        self.current = None
        self.run_start = None
        self.resolved_at = self._k
        return self._version(cur, resolved=True, new_normal=new_normal)

    def _version(self, cur: _Open, *, resolved: bool = False, new_normal: bool = False) -> Incident:
        w = cur.weight or 1.0
        summary = describe(self.kind, cur.observed / w, cur.usual / w, cur.requests)
        if new_normal:
            minutes = (cur.last - cur.first + 1) * self.bucket_ns / 60e9
            summary += f"; lasted {minutes:.0f} min and became the new normal (baseline re-learnt)"
        end = (cur.last + 1) * self.bucket_ns
        return Incident(
            customer_id=self.customer_id,
            kind=self.kind,
            start_ns=cur.first * self.bucket_ns,
            end_ns=end,
            peak_score=round(cur.peak, 3),
            requests=cur.requests,
            status="resolved" if resolved else "open",
            ended_ns=end if resolved else None,
            summary=summary,
            detected_ns=(cur.detected + 2) * self.bucket_ns,  # bucket k completes at the start of k + 2
            new_normal=new_normal,
        )


def latest_versions(incidents: list[Incident]) -> list[Incident]:
    """Keep the latest version of each incident (same kind and start) from one batch, in order."""
    if len(incidents) < 2:  # most batches: nothing to merge
        return incidents
    latest: dict[tuple[str, int], Incident] = {}
    for inc in incidents:
        latest.pop((inc.kind, inc.start_ns), None)
        latest[(inc.kind, inc.start_ns)] = inc
    return list(latest.values())
