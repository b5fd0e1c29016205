"""What a customer's scorer keeps and what a tick costs: the SLO windows from sparse steps, ticks that
wait — each checked against the straightforward result (the step's snapshots: test_scoring_shard)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from tests.unit.test_scoring import T0, _days_of_traffic, _versions, batches, config

from logpulse.model import Incident
from logpulse.scoring.scorer import CustomerScorer

S = 10**9
BUCKET = 30


def sparse(seed: int, hours: float, per_hour: float, fail: float = 0.1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A customer sending a few requests an hour, a tenth of them 5xx (in `batches`, failed = 503)."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(T0, T0 + hours * 3600, int(hours * per_hour)))
    return (t * S).astype(np.int64), rng.lognormal(np.log(0.2), 0.4, len(t)), rng.random(len(t)) < fail


def test_slo_windows_read_from_sparse_steps_equal_the_raw_sums() -> None:
    """The SLO rules read requests and 5xx up to 6 h back from the change points only; at every
    batch, each window's sums equal those counted from the lines themselves."""
    t, d, f = sparse(1, 20, 12)
    s = CustomerScorer("c", config(slo_targets=(("default", 0.99),)))
    bucket = t // (BUCKET * S)
    checked = 0
    for b in batches((t, d, f), 7):
        s.score(b)
        s.rows_to_deque()
        done = s.next_bucket
        assert done is not None and s.first_bucket is not None
        for w in (10, 60, 120, 720):
            inside = (bucket >= max(done - w, s.first_bucket)) & (bucket < done)
            assert s.counts(w) == (float(inside.sum()), float((inside & f).sum()))
            checked += 1
    assert checked > 100
    assert s.hist.keep == 61 and s.steps.size <= 2 * 12 * 6 + 16  # not 721 rows of 6 sums


def test_a_sparse_customer_keeps_little_state() -> None:
    """Three days of ~100 requests a day with SLOs: a few KB pickled, whatever the 6 h SLO windows."""
    s = CustomerScorer("c", config(slo_targets=(("default", 0.995),)))
    _versions(s, batches(sparse(2, 72, 4), 5), [T0 + 72 * 3600 + i * 600.0 for i in range(6)])
    assert len(pickle.dumps(s)) < 12_000


@pytest.mark.parametrize("seed", [1, 2])
def test_ticks_that_wait_decide_exactly_as_ticks_that_complete(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tick every 30 s over sparse day/night traffic (silence, surge, slow failing hour) with some
    lines arriving minutes late: the scorer whose ticks wait while nothing can happen reports every
    incident version as the one that completes each tick at once, and learns the same baselines
    (late lines count as late in both)."""
    t, d, f = _days_of_traffic(seed, 2, 0.05)
    rng = np.random.default_rng(seed)
    late = rng.random(len(t)) < 0.05
    t = np.where(late, t - (rng.uniform(60, 600, len(t)) * S).astype(np.int64), t)  # dated minutes back
    cfg = config(slo_targets=(("default", 0.99),))
    ticks = [float(x) for x in range(T0, T0 + 2 * 86400, BUCKET)]
    waiting = CustomerScorer("c", cfg)
    waited = []
    real = CustomerScorer.can_wait
    monkeypatch.setattr(CustomerScorer, "can_wait", lambda self, limit: waited.append(real(self, limit)) or waited[-1])
    got = _versions(waiting, batches((t, d, f), 3), ticks)
    assert sum(waited) > len(ticks) / 2  # most ticks had nothing to complete
    monkeypatch.setattr(CustomerScorer, "can_wait", lambda self, limit: False)
    eager = CustomerScorer("c", cfg)
    want = _versions(eager, batches((t, d, f), 3), ticks)

    def key(i: Incident) -> tuple[object, ...]:
        return i.kind, i.status, i.start_ns, i.end_ns, i.peak_score, i.requests

    assert [key(i) for i in got] == [key(i) for i in want]
    assert {i.kind for i in want} >= {"traffic_drop", "traffic_surge", "latency"}
    assert waiting.latency.s0 == pytest.approx(eager.latency.s0, rel=1e-9)
    assert waiting.errors.failed == pytest.approx(eager.errors.failed, rel=1e-9)
    assert waiting.traffic.profile == pytest.approx(eager.traffic.profile, rel=1e-9)


def test_customers_of_one_config_and_slo_target_share_their_windows() -> None:
    """Window sizes are derived from the config and the customer's SLO target only: one object for all
    the customers that have the same, another for a customer with its own target."""
    cfg = config(slo_targets=(("default", 0.99), ("gold", 0.999)))
    a, b, gold = (CustomerScorer(c, cfg) for c in ("a", "b", "gold"))
    assert a.windows is b.windows and a.windows.slo_target == 0.99
    assert gold.windows is not a.windows and gold.windows.slo_target == 0.999
    assert pickle.loads(pickle.dumps(a)).windows is a.windows
