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
from logpulse.scoring import per_bucket, runs, stretches
from logpulse.scoring.baselines import ScoringConfig
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
    _assert_alike(config(), batches(_volume_changes(seed, rps, volume), size), monkeypatch)


def _assert_alike(cfg: ScoringConfig, bs: list[RequestBatch], monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs wherever allowed, however short, and the per-bucket path, over `bs` then a silence: the
    same incident versions, trackers' runs of hot buckets and baselines at the end."""
    from logpulse.scoring import scorer as scorer_module

    monkeypatch.setattr(scorer_module, "RUN_COST", (0.0, 0.0))
    ticks = [(T0 + HOURS * 3600 + 60 * i) * 1_000_000_000 for i in range(1, 40, 3)]  # a silence after the data
    fast, slow = CustomerScorer("c", cfg), CustomerScorer("c", cfg, vectorised=False)
    assert _versions(fast, bs, ticks) == _versions(slow, bs, ticks)
    for kind, tracker in slow.trackers.items():
        assert (fast.trackers[kind].run_start, fast.trackers[kind].is_open) == (tracker.run_start, tracker.is_open)
    assert (fast.latency.buckets, fast.errors.buckets) == (slow.latency.buckets, slow.errors.buckets)
    assert fast.latency.mu == pytest.approx(slow.latency.mu, rel=1e-9)
    assert fast.latency.sigma == pytest.approx(slow.latency.sigma, rel=1e-9)
    assert fast.errors.p == pytest.approx(slow.errors.p, rel=1e-9)
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


Shift = tuple[int, int, float, float]  # (start minute, minutes, latency multiplier, failure rate)


def _shifted(seed: int, rps: float, shifts: list[Shift]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A customer's (times ns, durations, failed) at `rps`, slower and failing more over each shift."""
    t, d, failed = _volume_changes(seed, rps, [])
    rng = np.random.default_rng(seed + 1)
    seconds = t / 1e9
    for start, length, slower, failing in shifts:
        inside = (seconds >= T0 + start * 60) & (seconds < T0 + (start + length) * 60)
        d[inside] *= slower
        failed[inside] |= rng.random(int(inside.sum())) < failing
    return t, d, failed


shifts = st.lists(
    st.tuples(
        st.integers(60, HOURS * 60 - 10),
        st.integers(1, 40),
        st.sampled_from([1.0, 1.1, 1.2, 1.35, 1.6, 3.0]),
        st.sampled_from([0.0, 0.03, 0.06, 0.15, 0.5]),
    ),
    max_size=6,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**16),
    rps=st.sampled_from([0.3, 1.0, 3.0]),
    changes=shifts,
    size=st.sampled_from([300, 2000, 12000]),
    new_normal_s=st.sampled_from([1800.0, 600.0, 0.0]),
    block=st.sampled_from([1, 3, stretches.STRETCH_BLOCK]),
)
def test_runs_through_hot_latency_errors_and_slo_decide_as_bucket_by_bucket(
    seed: int,
    rps: float,
    changes: list[Shift],
    size: int,
    new_normal_s: float,
    block: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Slow and failing stretches, mild ones (hot, no incident) and strong ones, with an SLO: every
    incident version, the trackers' runs of hot buckets and the baselines at the end equal those of
    the per-bucket path (runs wherever allowed, however short; also where new normals come early or
    never, which ends or forbids following a frozen baseline; and whatever the first block of a hot
    stretch's buckets tested at once, so that stretches cross several blocks)."""
    monkeypatch.setattr(stretches, "STRETCH_BLOCK", block)
    cfg = config(slo_targets=(("default", 0.99),), new_normal_s=new_normal_s)
    _assert_alike(cfg, batches(_shifted(seed, rps, changes), size), monkeypatch)


@pytest.mark.parametrize(("slower", "failing", "kind"), [(1.2, 0.0, "latency"), (1.0, 0.02, "errors")])
def test_a_run_carries_on_through_a_hot_stretch_of_latency_or_errors(
    slower: float, failing: float, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten minutes a little slower (1.2 x: above the "still hot" ratio, the square root of 1.3, below
    the opening one) or failing a little more (4 % instead of 2 %): the tracker's runs of hot buckets
    start and end within runs of buckets as arrays, none of their buckets goes bucket by bucket, no
    incident opens, and the tracker ends as bucket by bucket."""
    from logpulse.scoring import scorer as scorer_module

    monkeypatch.setattr(scorer_module, "RUN_COST", (0.0, 0.0))
    data = _shifted(7, 3.0, [(180, 10, slower, failing)])
    started: list[tuple[str, int]] = []  # (the walk's signal, a hot stretch's first bucket)
    walk = stretches.BaselinePath.walk

    def watched(self, stop, gate, tests, longest):  # type: ignore[no-untyped-def]
        hit = walk(self, stop, gate, tests, longest)
        signal = "errors" if "_errors_" in tests.__qualname__ else "latency"
        started.extend((signal, part.h) for part in self.parts if isinstance(part, stretches._Stretch))
        return hit

    one_by_one: list[int] = []
    complete = per_bucket.complete

    def counted(s, k, b, out):  # type: ignore[no-untyped-def]
        if s.vectorised:
            one_by_one.append(k)
        complete(s, k, b, out)

    monkeypatch.setattr(stretches.BaselinePath, "walk", watched)
    monkeypatch.setattr(per_bucket, "complete", counted)
    scorer = CustomerScorer("c", config())
    slow = CustomerScorer("c", config(), vectorised=False)
    assert _versions(scorer, batches(data, len(data[0])), []) == []
    assert _versions(slow, batches(data, len(data[0])), []) == []
    assert [h for signal, h in started if signal == kind], f"no hot stretch of {kind}"
    warm = (T0 + 3600) // 30  # the first half hour goes bucket by bucket: the traffic level warms up
    assert one_by_one and not [k for k in one_by_one if k >= warm]
    assert scorer.trackers[kind].run_start == slow.trackers[kind].run_start
