"""Runs of buckets as arrays (`scoring.runs`) against the per-bucket path, on traffic whose volume
jumps and dips: the runs carry on through buckets where only a traffic drop or surge is "still hot"
(the trackers' runs of hot buckets), and must decide exactly as bucket by bucket."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.unit.test_scoring import T0, batches, config

from logpulse.model import Incident, RequestBatch, Tick
from logpulse.scoring import per_bucket, runs
from logpulse.scoring.scorer import CustomerScorer

HOURS = 5
Change = tuple[int, int, float]  # (start minute, minutes, rate multiplier)


def _volume_changes(seed: int, rps: float, changes: list[Change]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A customer's (times ns, durations, failed) at `rps`, the rate multiplied over each change."""
    rng = np.random.default_rng(seed)
    span = HOURS * 3600
    t = np.sort(rng.uniform(T0, T0 + span, int(span * rps * 6)))
    rate = np.ones(len(t))
    for start, length, multiplier in changes:
        inside = (t >= T0 + start * 60) & (t < T0 + (start + length) * 60)
        rate[inside] *= multiplier
    t = t[rng.random(len(t)) < rate / 6]  # thinned to rps x the multipliers (at most 6)
    d = rng.lognormal(np.log(0.2), 0.4, len(t))
    failed = rng.random(len(t)) < 0.02
    return (t * 1e9).astype(np.int64), d, failed


def _versions(scorer: CustomerScorer, bs: list[RequestBatch], ticks: list[int]) -> list[tuple[object, ...]]:
    out: list[Incident] = []
    for b in bs:
        out += scorer.score(b).incidents
    for t in ticks:
        out += scorer.tick(Tick(t))
    return [(i.kind, i.status, i.start_ns, i.end_ns, i.detected_ns, i.peak_score, i.requests) for i in out]


changes = st.lists(
    st.tuples(st.integers(60, HOURS * 60 - 10), st.integers(1, 8), st.sampled_from([0.0, 0.3, 1.8, 2.5, 4.0, 6.0])),
    max_size=6,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**16),
    rps=st.sampled_from([0.3, 1.0, 3.0]),
    volume=changes,
    size=st.sampled_from([300, 2000, 12000]),
)
def test_runs_through_hot_traffic_decide_as_bucket_by_bucket(
    seed: int, rps: float, volume: list[Change], size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every incident version, the trackers' runs of hot buckets and the baselines at the end equal
    those of the per-bucket path (runs wherever allowed, however short)."""
    from logpulse.scoring import scorer as scorer_module

    monkeypatch.setattr(scorer_module, "RUN_COST", (0.0, 0.0))
    data = _volume_changes(seed, rps, volume)
    bs = batches(data, size)
    ticks = [(T0 + HOURS * 3600 + 60 * i) * 1_000_000_000 for i in range(1, 40, 3)]  # a silence after the data
    fast, slow = CustomerScorer("c", config()), CustomerScorer("c", config(), vectorised=False)
    assert _versions(fast, bs, ticks) == _versions(slow, bs, ticks)
    for kind, tracker in slow.trackers.items():
        assert (fast.trackers[kind].run_start, fast.trackers[kind].is_open) == (tracker.run_start, tracker.is_open)
    assert fast.latency.mu == pytest.approx(slow.latency.mu, rel=1e-9)
    assert fast.traffic.level == pytest.approx(slow.traffic.level, rel=1e-9)
    assert fast.traffic.profile == pytest.approx(slow.traffic.profile, rel=1e-9)


def test_a_run_carries_on_through_a_bucket_only_traffic_finds_hot(monkeypatch: pytest.MonkeyPatch) -> None:
    """A short burst (1.6 x the volume for two minutes: above the "still hot" ratio, the square root
    of 2, below the opening one, 2) makes the surge hot without opening an incident: the run
    completes the buckets after it as arrays, and only buckets from the burst on are tested again
    (with the checks forced, a block of them per call); none goes bucket by bucket."""
    from logpulse.scoring import scorer as scorer_module

    monkeypatch.setattr(scorer_module, "RUN_COST", (0.0, 0.0))
    data = _volume_changes(7, 3.0, [(180, 2, 1.6)])
    forced: list[tuple[int, int]] = []  # first and last bucket of each block tested with the checks forced
    traffic_events = runs._traffic_events

    def watched(s, at, mine, ks, check_drop, check_surge):  # type: ignore[no-untyped-def]
        if check_drop.all() and check_surge.all() and (ks[1:] - ks[:-1] == 1).all():
            forced.append((int(ks[0]), int(ks[-1])))
        return traffic_events(s, at, mine, ks, check_drop, check_surge)

    one_by_one: list[int] = []
    complete = per_bucket.complete

    def counted(s, k, b, out):  # type: ignore[no-untyped-def]
        one_by_one.append(k)
        complete(s, k, b, out)

    monkeypatch.setattr(runs, "_traffic_events", watched)
    monkeypatch.setattr(per_bucket, "complete", counted)
    scorer = CustomerScorer("c", config())
    assert _versions(scorer, batches(data, len(data[0])), []) == []
    burst = (T0 + 180 * 60) // 30
    assert forced and all(burst < first <= burst + 12 and last < first + runs.TRAFFIC_BLOCK for first, last in forced)
    assert not [k for k in one_by_one if k >= burst]
