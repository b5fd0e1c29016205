"""A quiet customer's buckets in one loop (`scoring.quiet.stretch`) against the per-bucket path: on
sparse traffic in small batches (what most customers look like at 10,000 of them), with surges,
slow and failing stretches that open gates and incidents, the state after every batch and every
incident version must be exactly those of the reference."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.unit.test_scoring import T0, batches, config

from logpulse.model import Incident, Tick
from logpulse.scoring import quiet
from logpulse.scoring import scorer as scorer_module
from logpulse.scoring.scorer import CustomerScorer

HOURS = 8


def _sparse(seed: int, per_min: float, burst: tuple[int, int, float], slow_from: int) -> tuple[Any, Any, Any]:
    """(times ns, durations, failed): `per_min` requests a minute, `burst` = (start minute, minutes,
    rate multiplier), durations 5x slower and half failing from minute `slow_from` on for 20 minutes."""
    rng = np.random.default_rng(seed)
    span = HOURS * 60
    minute = np.arange(span)
    rate = np.full(span, per_min)
    start, length, multiplier = burst
    rate[start : start + length] *= multiplier
    counts = rng.poisson(rate)
    t = np.sort(np.concatenate([T0 + 60 * (m + rng.random(c)) for m, c in zip(minute, counts, strict=True)]))
    slow = (t >= T0 + slow_from * 60) & (t < T0 + (slow_from + 20) * 60)
    d = rng.lognormal(np.log(0.2), 0.3, len(t)) * np.where(slow, 5.0, 1.0)
    failed = rng.random(len(t)) < np.where(slow, 0.5, 0.02)
    return (t * 1e9).astype(np.int64), d, failed


def _state(s: CustomerScorer) -> tuple[object, ...]:
    """Everything the next bucket's decisions read, as exact values."""
    return (
        s.next_bucket,
        s.watermark,
        s.idle,
        s.silent_from,
        s.cum_total,
        list(s.cum),
        list(s.cum_expected),
        s.pending_keys.tolist(),
        s.pending.tolist(),
        (s.latency.s0, s.latency.s1, s.latency.s2, s.latency.buckets),
        (s.errors.n, s.errors.failed, s.errors.buckets),
        {k: v for k, v in s.traffic.__dict__.items() if k not in ("profile", "profile_days")},
        list(s.traffic.profile),
        list(s.traffic.profile_days),
        {k: (t.current, t.run_start, t.resolved_at) for k, t in s.trackers.items()},
    )


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**16),
    per_min=st.sampled_from([0.1, 0.5, 2.0]),
    burst=st.tuples(st.integers(60, HOURS * 60 - 30), st.integers(1, 10), st.sampled_from([1.0, 8.0, 40.0])),
    slow_from=st.integers(60, HOURS * 60 - 30),
    size=st.sampled_from([1, 3, 8]),
)
def test_a_quiet_stretch_decides_and_learns_exactly_as_bucket_by_bucket(
    seed: int,
    per_min: float,
    burst: tuple[int, int, float],
    slow_from: int,
    size: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Runs as arrays are switched off (their floats are their own), so the two scorers differ only
    by `quiet.stretch`: after every batch and tick their states are equal, as are their incidents."""
    monkeypatch.setattr(scorer_module, "RUN_COST", (1e12, 0.0))
    calls = []
    stretch = quiet.stretch

    def counted(*args: Any) -> int:
        calls.append(args[1])
        return stretch(*args)

    monkeypatch.setattr(scorer_module, "quiet_stretch", counted)
    cfg = config(slo_targets=(("default", 99.5),))
    fast, slow = CustomerScorer("c", cfg), CustomerScorer("c", cfg, vectorised=False)
    seen: list[list[Incident]] = [[], []]
    for i, b in enumerate(batches(_sparse(seed, per_min, burst, slow_from), size)):
        for s, out in zip((fast, slow), seen, strict=True):
            out += s.score(b).incidents
            if i % 5 == 4:  # the stream clock, a little behind the batch's last request
                out += s.tick(Tick(b.times[-1] - 60_000_000_000))
        assert _state(fast) == _state(slow)
    end = (T0 + HOURS * 3600) * 1_000_000_000
    for minutes in (5, 30, 90, 400):  # then silence: drops, and a silence longer than every window
        for s, out in zip((fast, slow), seen, strict=True):
            out += s.tick(Tick(end + minutes * 60_000_000_000))
        assert _state(fast) == _state(slow)
    assert seen[0] == seen[1]
    assert calls  # the loop did the work
