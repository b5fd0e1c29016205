"""The bucket history's forms against straightforward references on random inputs: the numpy rows
(`History`, a buffer that grows with what it holds) against a plain list of every row, and the
closed form that completes an idle customer's empty buckets (`per_bucket.skip_empty`) against the
bucket-by-bucket loop it stands for, a warming customer's silence (`skip_empty_warming`) against
`complete` of each empty bucket, and a small batch's bucket sums added up in Python against
numpy's: float for float."""

from __future__ import annotations

import copy
import pickle
from itertools import accumulate, chain, repeat
from operator import add, mul

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from tests.unit.test_scoring import batches, config, traffic

from logpulse.model import Incident
from logpulse.scoring import per_bucket
from logpulse.scoring import scorer as scorer_module
from logpulse.scoring.baselines import TrafficBaseline
from logpulse.scoring.history import COLUMNS, History
from logpulse.scoring.scorer import CustomerScorer
from logpulse.scoring.state import ScorerState


@settings(max_examples=60, deadline=None)
@given(
    keep=st.integers(1, 40),
    steps=st.lists(st.tuples(st.integers(1, 90), st.integers(0, 3)), min_size=1, max_size=25),
    seed=st.integers(0, 2**31),
)
def test_history_holds_the_last_rows_as_a_list_of_every_row_does(
    keep: int, steps: list[tuple[int, int]], seed: int
) -> None:
    """Rows appended in random amounts (some extends standing for more buckets than rows they hold,
    as a long silence does): the tail is the last `keep` rows given, each row of the last extend is
    found by its number, a pickled copy holds the same; the buffer never exceeds 2 * keep rows."""
    rng = np.random.default_rng(seed)
    h = History(keep)
    given_rows: list[list[float]] = [[0.0] * COLUMNS]  # every row handed over, in order
    total = 1
    for size, extra in steps:
        rows = rng.random((size, COLUMNS))
        h.extend(rows, size + extra)
        given_rows.extend(rows.tolist())
        total += size + extra
        assert len(h.buf) <= 2 * keep
        assert h.total == total
        assert np.array_equal(h.tail(), np.array(given_rows[-keep:]))
        for j in range(min(size, keep)):
            assert h.row(total - 1 - j) == tuple(rows[size - 1 - j])
        assert h.last == tuple(given_rows[-1])
        back = pickle.loads(pickle.dumps(h))
        assert np.array_equal(back.tail(), h.tail()) and back.total == h.total and back.last == h.last


def _reference_skip_empty(s: ScorerState, k: int, end: int) -> int:
    """`skip_empty` as a plain loop over the buckets: what its iterators must compute exactly."""
    cfg, traffic_ = s.config, s.traffic
    keep_t = 1.0 - cfg.bucket_s / TrafficBaseline.LEVEL_S
    per_slot = round(900 / cfg.bucket_s)
    while k < end:
        m = min(end, (k // per_slot + 1) * per_slot) - k if 900 % cfg.bucket_s == 0 else 1
        factor = traffic_.expected(k) / traffic_.level if traffic_.level > 0 else 1.0
        counts, acc = s.cum[-1], s.cum_expected[-1]
        level = traffic_.level
        for _ in range(m):
            acc += level * factor
            level *= keep_t
            s.cum.append(counts)
            s.cum_expected.append(acc)
        s.cum_total += m
        s.latency.decay(m, s.windows.decay)
        s.errors.decay(m, s.windows.decay)
        traffic_.skip_empty(k, m, keep_t)
        s.idle += m
        k += m
    return end


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    hours=st.integers(1, 8),
    rps=st.sampled_from([0.01, 0.2, 1.0]),
    gap=st.integers(1, 400),
    bucket_s=st.sampled_from([30, 60, 40]),
)
def test_skip_empty_computes_the_loop_s_floats(seed: int, hours: int, rps: float, gap: int, bucket_s: int) -> None:
    """After random traffic (so that the level, the profile and its quarter-hour factor are learnt),
    completing `gap` empty buckets leaves every history row, the traffic baseline and the decayed
    latency and error sums exactly as the bucket-by-bucket loop does."""
    s = CustomerScorer("c", config(bucket_s=bucket_s))
    for b in batches(traffic(seed, hours * 60, rps), 50):
        s.score(b)
    assert s.next_bucket is not None
    s, ref = copy.deepcopy(s), copy.deepcopy(s)  # (a copy rebuilds its deque of rows from the numpy rows)
    s.rows_to_deque()
    ref.rows_to_deque()
    k = s.next_bucket
    assert per_bucket.skip_empty(s, k, k + gap) == _reference_skip_empty(ref, k, k + gap)
    assert list(s.cum) == list(ref.cum) and s.cum_total == ref.cum_total
    assert [x.hex() for x in s.cum_expected] == [x.hex() for x in ref.cum_expected]
    assert vars(s.traffic) == vars(ref.traffic)
    assert (s.latency.s0, s.latency.s1, s.errors.n, s.idle) == (ref.latency.s0, ref.latency.s1, ref.errors.n, ref.idle)


def test_a_new_customer_s_history_costs_what_it_holds() -> None:
    """A customer completed bucket by bucket holds no buffer of 2 * keep rows; after a snapshot its
    numpy rows hold at most `keep` rows."""
    s = CustomerScorer("c", config())
    for b in batches(traffic(3, 20, 0.05), 5):
        s.score(b)
    assert s.hist.buf.nbytes <= 8 * COLUMNS
    back = pickle.loads(pickle.dumps(s))
    assert len(back.hist.buf) <= back.windows.depth


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    minutes=st.integers(1, 40),
    rps=st.sampled_from([0.01, 0.1, 1.0]),
    gap=st.integers(1, 120),
    bucket_s=st.sampled_from([30, 60, 40]),
)
def test_skip_empty_warming_is_complete_of_each_empty_bucket_bit_for_bit(
    seed: int, minutes: int, rps: float, gap: int, bucket_s: int
) -> None:
    """A new customer's first minutes (its traffic level still warming up, not `steady`), then a
    silence before `silent_from`: `skip_empty_warming` leaves every float, row and tracker exactly as
    `complete` of one empty bucket at a time, and stops where the level becomes steady."""
    s = CustomerScorer("c", config(bucket_s=bucket_s))
    for b in batches(traffic(seed, minutes, rps), 5):
        s.score(b)
    assume(s.next_bucket is not None)
    assert s.next_bucket is not None
    s.rows_to_deque()
    k = s.next_bucket
    assume(not s.steady() and s.quiet() and k < s.silent_from)  # when the scorer takes it
    end = min(s.silent_from, k + gap)
    fast, slow = copy.deepcopy(s), copy.deepcopy(s)  # (a copy's rows are rebuilt as after a restore)
    fast.rows_to_deque()
    slow.rows_to_deque()
    stop = per_bucket.skip_empty_warming(fast, k, end)
    assert k < stop <= end and (stop == end or fast.steady())
    out: list[Incident] = []
    for j in range(k, stop):
        per_bucket.complete(slow, j, per_bucket.EMPTY, out)
    assert not out
    assert fast.cum_total == slow.cum_total and fast.idle == slow.idle
    assert list(fast.cum) == list(slow.cum)
    assert [x.hex() for x in fast.cum_expected] == [x.hex() for x in slow.cum_expected]
    assert vars(fast.latency) == vars(slow.latency) and vars(fast.errors) == vars(slow.errors)
    assert vars(fast.traffic) == vars(slow.traffic)
    assert [t.__getstate__() for t in fast.trackers.values()] == [t.__getstate__() for t in slow.trackers.values()]


@settings(max_examples=200, deadline=None)
@given(
    first=st.lists(st.integers(0, 12), min_size=0, max_size=20),
    second=st.lists(st.integers(0, 12), min_size=1, max_size=20),
    seed=st.integers(0, 2**31),
)
def test_small_batches_sum_buckets_as_numpy_does(first: list[int], second: list[int], seed: int) -> None:
    """Two batches of random buckets (repeats, out of order, some merging into pending buckets): the
    sums added up in Python for small batches are numpy's floats, bit for bit."""
    rng = np.random.default_rng(seed)

    def columns(keys: list[int]) -> tuple[np.ndarray, ...]:
        n = len(keys)
        logs = np.log(rng.lognormal(-1.5, 1.5, n))
        return np.array(keys, dtype=np.int64), logs, rng.random(n) < 0.3, rng.random(n) < 0.2

    batches_ = [columns(first), columns(second)] if first else [columns(second)]
    python, numpy_only = CustomerScorer("c", config()), CustomerScorer("c", config())
    for cols in batches_:
        as_lists = python._add(*cols)  # merged as lists (returned, not stored) when in order
        if as_lists is not None:
            python._set_pending(*as_lists)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(scorer_module, "SMALL_BATCH", 0)
            numpy_only._add(*cols)
        assert np.array_equal(python.pending_keys, numpy_only.pending_keys)
        assert python.pending.shape == numpy_only.pending.shape
        assert [float(x).hex() for x in python.pending.ravel()] == [float(x).hex() for x in numpy_only.pending.ravel()]


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    hours=st.sampled_from([2, 26]),
    minutes=st.integers(0, 14),
    rps=st.sampled_from([0.002, 0.02, 0.2]),
    gap=st.integers(1, 800),
    bucket_s=st.sampled_from([30, 60, 40]),
)
def test_skip_empty_completes_a_gap_as_the_per_bucket_path_does(
    seed: int, hours: int, minutes: int, rps: float, gap: int, bucket_s: int
) -> None:
    """Random sparse traffic (the first day: level only; past it: the quarter-hour profile), then as
    much of a silence of `gap` buckets as the scorer would skip (before `silent_from`, or while no
    drop is within reach), starting anywhere in a quarter-hour: `skip_empty` leaves the history rows,
    the baselines and the trackers as `complete` does one empty bucket at a time (the counts exactly,
    the expected requests to rounding: the per-bucket level update is `level + a * (0 - level)`), and
    every new count row is the last row itself, not a copy."""
    s = CustomerScorer("c", config(bucket_s=bucket_s))
    for b in batches(traffic(seed, hours * 60 + minutes, rps), 20):
        s.score(b)
    assert s.next_bucket is not None
    s.rows_to_deque()
    k = s.next_bucket
    end = s.silent_from if k < s.silent_from else k + per_bucket.drop_out_of_reach(s)
    assume(s.steady() and s.quiet() and end > k)  # when the scorer takes skip_empty
    end = min(end, k + gap)
    fast, slow = copy.deepcopy(s), copy.deepcopy(s)
    fast.rows_to_deque()
    slow.rows_to_deque()
    last = fast.cum[-1]
    assert per_bucket.skip_empty(fast, k, end) == end
    out: list[Incident] = []
    for j in range(k, end):
        per_bucket.complete(slow, j, per_bucket.EMPTY, out)
    assert not out
    assert fast.cum_total == slow.cum_total and fast.idle == slow.idle
    assert list(fast.cum) == list(slow.cum)
    assert all(row is last for row in list(fast.cum)[-min(end - k, fast.windows.depth) :])
    assert list(fast.cum_expected) == pytest.approx(list(slow.cum_expected), rel=1e-12, abs=1e-300)
    for a, b in ((fast.latency, slow.latency), (fast.errors, slow.errors)):
        assert list(vars(a).values()) == pytest.approx(list(vars(b).values()), rel=1e-12, abs=1e-300)
    ft, st_ = vars(fast.traffic), vars(slow.traffic)
    assert ft.pop("level") == pytest.approx(st_.pop("level"), rel=1e-12, abs=1e-300)
    assert ft.pop("profile") == pytest.approx(st_.pop("profile"), rel=1e-12)
    assert ft == st_
    assert [t.__getstate__() for t in fast.trackers.values()] == [t.__getstate__() for t in slow.trackers.values()]


@settings(max_examples=200, deadline=None)
@given(
    segments=st.lists(
        st.tuples(
            st.integers(1, 30),
            st.floats(0.0, 500.0, allow_nan=False, allow_subnormal=False),
            st.floats(0.25, 4.0, allow_nan=False),
        ),
        min_size=1,
        max_size=30,
    ),
    start=st.floats(0.0, 1e6, allow_nan=False),
    bucket_s=st.sampled_from([10.0, 30.0, 60.0]),
)
def test_a_gap_in_one_numpy_pass_adds_the_iterators_floats(
    segments: list[tuple[int, float, float]], start: float, bucket_s: float
) -> None:
    """The numpy grid a long silence's expected requests are accumulated in gives the floats of a chain
    of iterators (a level multiplied per bucket, then summed in order), bit for bit. (`skip_empty`'s
    plain loop for a short silence is checked against the per-bucket loop by
    `test_skip_empty_computes_the_loop_s_floats`, gaps of 1-400 buckets.)"""
    keep = 1.0 - bucket_s / TrafficBaseline.LEVEL_S
    added = (map(mul, accumulate(repeat(keep, m - 1), mul, initial=lv), repeat(f)) for m, lv, f in segments)
    want = list(accumulate(chain.from_iterable(added), add, initial=start))[1:]
    got = per_bucket._expected_in_one_pass(segments, keep, start, 61)
    assert [x.hex() for x in got] == [x.hex() for x in want[-61:]]
