"""The anomaly scorer: fires on clear incidents, stays quiet on noise, survives restarts and reshuffles."""

from __future__ import annotations

import dataclasses
import pickle
from array import array
from collections import deque
from pathlib import Path

import numpy as np
import pytest

from logpulse.config import Settings
from logpulse.model import Incident, RequestBatch, Tick
from logpulse.scoring.baselines import ScoringConfig
from logpulse.scoring.scorer import CustomerScorer

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


def run(scorer: CustomerScorer, bs: list[RequestBatch], ticks: list[float] = ()) -> dict[str, Incident]:
    """Final version of every incident reported (by id)."""
    final: dict[str, Incident] = {}
    for b in bs:
        for inc in scorer.score(b).incidents:
            final[inc.id] = inc
    for t in ticks:
        for inc in scorer.tick(Tick(int(t * 1e9))):
            final[inc.id] = inc
    return final


def config(**kw: object) -> ScoringConfig:
    """The default settings' scoring config (no SLOs unless given), with `kw` replaced."""
    return dataclasses.replace(ScoringConfig.from_settings(Settings(_env_file=None)), **{"slo_targets": (), **kw})


def new(**kw: object) -> CustomerScorer:
    return CustomerScorer("c", config(**kw))


def minutes(inc: Incident) -> tuple[float, float]:
    return (inc.start_ns / 1e9 - T0) / 60, (inc.end_ns / 1e9 - T0) / 60


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fires_on_latency_spike_and_error_burst(seed: int) -> None:
    data = traffic(seed, 180, 1.0, latency=(60, 63), errors=(120, 124))
    found = run(new(), batches(data, 200))
    assert sorted(i.kind for i in found.values()) == ["errors", "latency"], found
    for inc in found.values():
        lo, hi = (60, 63) if inc.kind == "latency" else (120, 124)
        s, e = minutes(inc)
        assert lo - 1 <= s and e <= hi + 3 and e - s >= 1.5, (inc.kind, s, e)
        assert inc.status == "resolved" and inc.ended_ns == inc.end_ns
        assert inc.requests > 60 and inc.peak_score >= 6
        assert (inc.detected_ns / 1e9 - T0) / 60 - lo <= 2.5  # reported within 2.5 minutes
        assert "usual" in inc.summary and f"{inc.requests:,} requests" in inc.summary


def test_small_changes_found_at_two_requests_per_second() -> None:
    lat = run(new(), batches(traffic(1, 180, 2.0, latency=(60, 72), factor=1.5), 200))
    assert [i.kind for i in lat.values()] == ["latency"]
    err = run(new(), batches(traffic(2, 180, 2.0, errors=(60, 72), increase=0.05, fail=0.01), 200))
    assert [i.kind for i in err.values()] == ["errors"]


def test_one_incident_with_a_dip_in_the_middle() -> None:
    """Hysteresis: a 1.5-minute dip inside a 12-minute spike does not split it."""
    t, d, f = traffic(3, 120, 2.0, latency=(60, 72), factor=3.0)
    minute = (t / 1e9 - T0) / 60
    d[(minute >= 66) & (minute < 67.5)] /= 3.0
    found = run(new(), batches((t, d, f), 200))
    assert len(found) == 1


def test_lasting_step_becomes_the_new_normal() -> None:
    s = new()
    found = run(s, batches(traffic(4, 240, 2.0, latency=(60, 240), factor=1.7), 200))
    assert len(found) == 1, found
    (inc,) = found.values()
    start, end = minutes(inc)
    assert inc.status == "resolved" and inc.new_normal and "new normal" in inc.summary
    assert 59 <= start <= 61 and end - start <= 60  # resolved within an hour of stream time
    assert np.exp(s.latency.mu) == pytest.approx(0.2 * 1.7, rel=0.1)  # the baseline re-learnt


def test_silent_customer_is_found_by_the_stream_clock() -> None:
    s = new()
    run(s, batches(traffic(5, 60, 2.0), 200))
    found = run(s, [], ticks=[T0 + 3600 + i for i in range(0, 1200, 30)])
    (inc,) = found.values()
    assert inc.kind == "traffic_drop" and 60 <= minutes(inc)[0] <= 61
    assert (inc.detected_ns / 1e9 - T0) / 60 <= 62


def test_traffic_surge() -> None:
    t, d, f = traffic(6, 60, 1.0)
    t2, d2, f2 = traffic(7, 10, 4.0)  # 4 more requests/s from minute 0 to 10, shifted to 40..50
    t2 = t2 + 40 * 60 * 10**9
    order = np.argsort(np.concatenate([t, t2]), kind="stable")
    data = tuple(np.concatenate(x)[order] for x in ((t, t2), (d, d2), (f, f2)))
    found = run(new(), batches(data, 200))
    assert [i.kind for i in found.values()] == ["traffic_surge"]
    assert 39.5 <= minutes(next(iter(found.values())))[0] <= 41


def test_slo_burn_multi_window() -> None:
    """2% 5xx against a 99.9% target burns 20x: the 1 h / 5 min rule fires (after enough of an hour)."""
    data = traffic(8, 120, 1.0, fail=0.02)
    found = run(CustomerScorer("c", config(slo_targets=(("default", 0.999),))), batches(data, 300))
    assert [i.kind for i in found.values()] == ["slo_burn"]
    quiet = run(CustomerScorer("c", config(slo_targets=(("default", 0.95),))), batches(data, 300))
    assert quiet == {}


@pytest.mark.parametrize("seed", [4, 5, 6, 7])
def test_quiet_on_steady_noise(seed: int) -> None:
    """A day of noisy traffic (heavy tails, 5% errors) raises no incident."""
    data = traffic(seed, 24 * 60, 1.0, sigma=0.7, fail=0.05)
    assert len(run(new(), batches(data, 500))) == 0


def test_request_scores_flag_slow_requests() -> None:
    s = new()
    run(s, batches(traffic(1, 30, 2.0), 300))
    t = [(T0 + 1800) * 10**9, (T0 + 1801) * 10**9]
    scored = s.score(RequestBatch("c", t, ["/p", "/p"], ["200", "200"], ["0.200", "5.000"]))
    assert scored.scores is not None and scored.scores[0] < 1 and scored.scores[1] > 4


def test_restart_from_pickle_gives_identical_results() -> None:
    bs = batches(traffic(8, 120, 1.0, latency=(70, 74)), 150)
    straight = run(new(), bs)
    s = new()
    first = run(s, bs[:20])
    s = pickle.loads(pickle.dumps(s))  # what a recovery snapshot does
    assert len(pickle.dumps(s)) < 60_000  # bounded state (6 h of bucket sums)
    resumed = {**first, **run(s, bs[20:])}
    assert resumed == straight and straight


def test_batch_boundaries_do_not_change_incidents() -> None:
    """Same incidents, times and states (the clip level of slow requests is the baseline's as of the
    batch, so a summary may differ in its last digit)."""
    data = traffic(9, 120, 2.0, errors=(50, 55), latency=(90, 93))

    def key(found: dict[str, Incident]) -> list[tuple[object, ...]]:
        return sorted((i.id, i.start_ns, i.end_ns, i.status, i.ended_ns, i.detected_ns) for i in found.values())

    a = run(new(), batches(data, 97))
    b = run(new(), batches(data, 1000))
    assert key(a) == key(b) and len(a) == 2


def test_shuffled_classic_traffic_causes_no_alarm_storm() -> None:
    """30 days of shuffled timestamps, uniform statuses and durations: no incident storm."""
    rng = np.random.default_rng(3)
    n = 40_000
    t = (rng.uniform(T0, T0 + 30 * 86400, n) * 1e9).astype(np.int64)
    d = rng.uniform(0.1, 2.0, n)
    f = rng.integers(0, 7, n) >= 2  # 400 401 403 404 500 of 200 201 400 401 403 404 500
    found = run(new(), batches((t, d, f), 1000))
    assert len(found) <= 1


def test_summaries_never_divide_by_a_zero_baseline() -> None:
    """A customer whose usual latency or traffic is 0 (e.g. cached answers logged as 0.000) still gets a
    summary: found by `ingest` of a benchmark log, which crashed with ZeroDivisionError."""
    from logpulse.scoring.signals import describe

    for kind in ("latency", "errors", "traffic_drop", "traffic_surge", "slo_burn"):
        text = describe(kind, 0.5, 0.0, 12)
        assert "12 requests" in text
    assert "(x2.0)" in describe("latency", 0.2, 0.1, 3)


def _versions(scorer: CustomerScorer, bs: list[RequestBatch], ticks: list[float]) -> list[Incident]:
    """Every incident version in order (batches and ticks interleaved by time, as the dataflow does)."""
    out: list[Incident] = []
    pending = sorted(ticks)
    for b in bs:
        while pending and pending[0] * 1e9 < b.times[0]:
            out += scorer.tick(Tick(int(pending.pop(0) * 1e9)))
        out += scorer.score(b).incidents
    for t in pending:
        out += scorer.tick(Tick(int(t * 1e9)))
    return out


def _days_of_traffic(seed: int, days: int, rps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse day/night traffic with a silence, a surge and a slow, failing hour on the last day."""
    rng = np.random.default_rng(seed)
    span = days * 86400
    t = np.sort(rng.uniform(T0, T0 + span, int(span * rps * 1.6)))
    t = t[rng.random(len(t)) < (1 + 0.6 * np.sin(2 * np.pi * (t - T0) / 86400)) / 1.6]  # ±60% over the day
    last = T0 + (days - 1) * 86400
    t = t[(t < last + 3 * 3600) | (t >= last + 4 * 3600)]  # an hour of silence
    t = np.sort(np.concatenate([t, rng.uniform(last + 6 * 3600, last + 6.5 * 3600, int(1800 * rps * 6))]))
    d = rng.lognormal(np.log(0.2), 0.5, len(t))
    slow = (t >= last + 9 * 3600) & (t < last + 10 * 3600)
    d[slow] *= 3
    failed = rng.random(len(t)) < np.where(slow, 0.3, 0.02)
    return (t * 1e9).astype(np.int64), d, failed


@pytest.mark.parametrize("seed", [1, 2])
def test_runs_as_arrays_decide_exactly_as_bucket_by_bucket(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The vectorised runs of quiet buckets are an optimisation only: on sparse day/night traffic
    (profile learnt, silence found by ticks, surge, latency and errors, SLO burn) and on busy traffic,
    every incident version and the final baselines equal those of the per-bucket path."""
    from logpulse.scoring import scorer as scorer_module

    monkeypatch.setattr(scorer_module, "RUN_COST", (0.0, 0.0))  # always runs where allowed
    cfg = config(slo_targets=(("default", 0.99),))
    cases = [
        (_days_of_traffic(seed, 3, 0.05), 400, [T0 + 3 * 86400 + i * 600.0 for i in range(30)]),
        (traffic(seed, 180, 2.0, latency=(60, 66), errors=(120, 126)), 2000, []),
    ]
    for data, size, ticks in cases:
        fast, slow = CustomerScorer("c", cfg), CustomerScorer("c", cfg, vectorised=False)
        bs = batches(data, size)
        half = len(bs) // 2
        got = _versions(fast, bs[:half], [])
        fast = pickle.loads(pickle.dumps(fast))  # a snapshot between runs and single buckets
        got += _versions(fast, bs[half:], ticks)
        want = _versions(slow, bs, ticks)
        assert [(i.kind, i.status, i.start_ns, i.end_ns, i.peak_score, i.requests) for i in got] == [
            (i.kind, i.status, i.start_ns, i.end_ns, i.peak_score, i.requests) for i in want
        ]
        assert {i.kind for i in want} >= ({"traffic_drop", "traffic_surge", "latency"} if ticks else {"latency"})
        assert fast.latency.mu == pytest.approx(slow.latency.mu, rel=1e-9)
        assert fast.errors.p == pytest.approx(slow.errors.p, rel=1e-9)
        assert fast.traffic.level == pytest.approx(slow.traffic.level, rel=1e-9)
        assert fast.traffic.profile == pytest.approx(slow.traffic.profile, rel=1e-9)
        assert max(fast.hist.total, fast.cum_total) == slow.cum_total


def test_snapshot_of_the_per_bucket_version_resumes() -> None:
    """A recovery snapshot written before runs-as-arrays (a deque of cumulative rows and a dict of open
    buckets, no numpy history) restores and goes on exactly like the scorer that wrote it."""
    from logpulse.scoring.scorer import _Bucket

    cfg = config(slo_targets=(("default", 0.99),))
    bs = batches(_days_of_traffic(3, 3, 0.05), 400)
    ticks = [T0 + 3 * 86400 + i * 600.0 for i in range(30)]
    half = len(bs) // 2
    writer = CustomerScorer("c", cfg, vectorised=False)
    _versions(writer, bs[:half], [])
    state = {k: v for k, v in writer.__dict__.items() if not k.startswith("_")}
    for new_field in ("hist", "pending_keys", "pending", "cum_total", "cum_from", "vectorised"):
        del state[new_field]
    # the rows were one deque of six columns (counts and expected requests together)
    rows = zip(state["cum"], state.pop("cum_expected"), strict=True)
    state["cum"] = deque(((*r, e) for r, e in rows), maxlen=writer.cum.maxlen)
    cols = writer.pending.T.tolist()
    state["open_buckets"] = {
        int(k): _Bucket(int(c[0]), c[1], c[2], int(c[3]), int(c[4]))
        for k, c in zip(writer.pending_keys.tolist(), cols, strict=True)
    }
    restored = CustomerScorer.__new__(CustomerScorer)
    restored.__setstate__(pickle.loads(pickle.dumps(state)))  # what unpickling the old layout does
    assert restored.vectorised and restored.hist.total == restored.cum_total  # row numbers from 6 h back
    got = _versions(restored, bs[half:], ticks)
    want = _versions(writer, bs[half:], ticks)
    assert [(i.kind, i.status, i.start_ns, i.end_ns, i.requests) for i in got] == [
        (i.kind, i.status, i.start_ns, i.end_ns, i.requests) for i in want
    ]
    assert want


SNAPSHOTS = Path(__file__).parent / "snapshots"


@pytest.mark.parametrize("snapshot", ["scorer_flat_layout.pickle", "scorer_profile_lists.pickle"])
def test_a_recovery_snapshot_of_an_earlier_layout_resumes(snapshot: str) -> None:
    """Scorers fed the same first half of three days, pickled by earlier code: processors upgraded
    with a recovery store must go on from them exactly like a scorer that never stopped.
    `scorer_flat_layout.pickle`: while the scorer, its history and its buckets lived in the single
    module `logpulse.scoring.scorer` (it names `logpulse.scoring.scorer._History`);
    `scorer_profile_lists.pickle`: while the traffic profile was two lists (now C arrays)."""
    cfg = config(slo_targets=(("default", 0.99),))
    bs = batches(_days_of_traffic(3, 3, 0.05), 400)
    ticks = [T0 + 3 * 86400 + i * 600.0 for i in range(30)]
    half = len(bs) // 2
    restored = pickle.loads((SNAPSHOTS / snapshot).read_bytes())
    assert isinstance(restored.traffic.profile, array) and isinstance(restored.traffic.profile_days, array)
    straight = CustomerScorer("c", cfg)
    _versions(straight, bs[:half], [])
    got = _versions(restored, bs[half:], ticks)
    want = _versions(straight, bs[half:], ticks)
    assert [(i.kind, i.status, i.start_ns, i.end_ns, i.peak_score, i.requests) for i in got] == [
        (i.kind, i.status, i.start_ns, i.end_ns, i.peak_score, i.requests) for i in want
    ]
    assert want and restored.hist.total == straight.hist.total
