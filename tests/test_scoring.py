"""The anomaly scorer: fires on clear incidents, stays quiet on noise, survives restarts and reshuffles."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from logpulse.model import Incident, RequestBatch
from logpulse.scoring.baselines import CustomerScorer, ScoringConfig

T0 = 1_727_568_000  # a multiple of 30 s


def traffic(
    seed: int,
    minutes: int,
    rps: float,
    *,
    median: float = 0.2,
    sigma: float = 0.4,
    fail: float = 0.02,
    latency: tuple[int, int] | None = None,
    errors: tuple[int, int] | None = None,
    factor: float = 3.0,
    increase: float = 0.3,
    shuffle: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times ns, durations, failed) for one customer; incidents given as (start_min, end_min)."""
    rng = np.random.default_rng(seed)
    n = int(minutes * 60 * rps)
    t = np.sort(rng.uniform(T0, T0 + minutes * 60, n))
    d = rng.lognormal(np.log(median), sigma, n)
    p = np.full(n, fail)
    minute = (t - T0) / 60
    if latency:
        d[(minute >= latency[0]) & (minute < latency[1])] *= factor
    if errors:
        p[(minute >= errors[0]) & (minute < errors[1])] += increase
    failed = rng.random(n) < p
    if shuffle:
        perm = rng.permutation(n)
        t, d, failed = t[perm], d[perm], failed[perm]
    return (t * 1e9).astype(np.int64), d, failed


def batches(data, size: int) -> list[RequestBatch]:
    t, d, f = data
    out = []
    for i in range(0, len(t), size):
        sl = slice(i, i + size)
        out.append(
            RequestBatch(
                "c",
                t[sl].tolist(),
                ["/p"] * len(t[sl]),
                ["503" if x else "200" for x in f[sl]],
                [f"{x:.3f}" for x in d[sl]],
            )
        )
    return out


def run(scorer: CustomerScorer, bs: list[RequestBatch]) -> dict[tuple[str, int], Incident]:
    """Final version of every incident reported."""
    final: dict[tuple[str, int], Incident] = {}
    for b in bs:
        for inc in scorer.score(b).incidents:
            final[(inc.kind, inc.start_ns)] = inc
    return final


def new() -> CustomerScorer:
    return CustomerScorer("c", ScoringConfig())


def minutes(inc: Incident) -> tuple[float, float]:
    return (inc.start_ns / 1e9 - T0) / 60, (inc.end_ns / 1e9 - T0) / 60


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fires_on_latency_spike_and_error_burst(seed: int) -> None:
    data = traffic(seed, 180, 1.0, latency=(60, 63), errors=(120, 124))
    found = run(new(), batches(data, 200))
    kinds = sorted((k, round(minutes(i)[0])) for (k, _), i in found.items())
    assert [k for k, _ in kinds] == ["errors", "latency"], kinds
    for (kind, _), inc in found.items():
        lo, hi = (60, 63) if kind == "latency" else (120, 124)
        s, e = minutes(inc)
        assert lo - 1 <= s and e <= hi + 1.5 and e - s >= 1.5
        assert inc.requests > 60 and inc.peak_score >= 4


@pytest.mark.parametrize("seed", [4, 5, 6, 7])
def test_quiet_on_steady_noise(seed: int) -> None:
    """A day of noisy traffic (heavy tails, 5% errors) raises at most one incident."""
    data = traffic(seed, 24 * 60, 1.0, sigma=0.7, fail=0.05)
    assert len(run(new(), batches(data, 500))) <= 1


def test_request_scores_flag_slow_requests() -> None:
    s = new()
    run(s, batches(traffic(1, 30, 2.0), 300))
    t = [(T0 + 3600) * 10**9, (T0 + 3601) * 10**9]
    scored = s.score(RequestBatch("c", t, ["/p", "/p"], ["200", "200"], ["0.200", "5.000"]))
    assert scored.scores is not None and scored.scores[0] < 1 and scored.scores[1] > 4


def test_restart_from_pickle_gives_identical_results() -> None:
    bs = batches(traffic(8, 120, 1.0, latency=(70, 74)), 150)
    straight = run(new(), bs)
    s = new()
    first = run(s, bs[:20])
    s = pickle.loads(pickle.dumps(s))  # what a recovery snapshot does
    assert len(pickle.dumps(s)) < 5000  # bounded state
    resumed = {**first, **run(s, bs[20:])}
    assert resumed == straight and straight


def test_batch_boundaries_do_not_change_incidents() -> None:
    data = traffic(9, 120, 2.0, errors=(50, 55), latency=(90, 93))
    a = run(new(), batches(data, 97))
    b = run(new(), batches(data, 1000))
    assert a == b and len(a) == 2


def test_shuffled_classic_traffic_causes_no_alarm_storm() -> None:
    """30 days of shuffled timestamps, uniform statuses and durations: no incident storm."""
    rng = np.random.default_rng(3)
    n = 40_000
    t = (rng.uniform(T0, T0 + 30 * 86400, n) * 1e9).astype(np.int64)
    d = rng.uniform(0.1, 2.0, n)
    f = rng.integers(0, 7, n) >= 2  # 400 401 403 404 500 of 200 201 400 401 403 404 500
    found = run(new(), batches((t, d, f), 1000))
    assert len(found) <= 1


def test_sparse_traffic_vectorised_baseline_equals_step_by_step() -> None:
    """~1 request per bucket: the closed-form baseline update matches one bucket at a time."""
    data = traffic(10, 600, 0.05)  # 10 hours, one request every 20 s
    one_by_one, together = new(), new()
    run(one_by_one, batches(data, 1))
    run(together, batches(data, 10_000))
    for field in ("mu", "var", "p", "buckets"):
        assert getattr(together.baseline, field) == pytest.approx(getattr(one_by_one.baseline, field), rel=1e-9)
