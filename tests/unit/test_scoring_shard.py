"""A shard of customers decides exactly as one scorer per customer ticked one by one (the oracle):
same scores, same incident versions, same baselines — while a tick completes only the customers it
is due for; and its snapshots cost what changed."""

from __future__ import annotations

import pickle
from collections import Counter

import numpy as np
import pytest
from tests.unit.test_scoring import T0, _days_of_traffic, config
from tests.unit.test_scoring_state import sparse

from logpulse.model import Incident, RequestBatch, RequestColumns, Scored, ScoredBatch, ScoredRows, ShardRequests, Tick
from logpulse.scoring.scorer import CustomerScorer
from logpulse.scoring.shard import ShardScorer, by_shard, shard_of
from logpulse.scoring.step import ShardLogic

S = 10**9
BUCKET = 30
CHUNK_S = 600  # event time per chunk


def fleet(seed: int) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Two days of: a busy customer (silence, surge, slow failing hour, some lines minutes late),
    sparse ones, one that joins on the second day and one that goes silent for good (a drop, open
    over several ticks until its silence is the new normal)."""
    t, d, f = _days_of_traffic(seed, 2, 0.05)
    rng = np.random.default_rng(seed)
    late = rng.random(len(t)) < 0.03
    t = np.sort(np.where(late, t - (rng.uniform(60, 600, len(t)) * S).astype(np.int64), t))
    out = {"busy": (t, d, f)}
    for i in range(8):
        out[f"sparse{i}"] = sparse(seed * 100 + i, 48, 2 + 6 * i)
    t, d, f = sparse(seed * 100 + 50, 24, 40)
    out["joiner"] = (t + 24 * 3600 * S, d, f)
    t, d, f = sparse(seed * 100 + 51, 30, 200)
    out["quitter"] = (t, d, f)
    return out


def chunks(data: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> list[dict[str, RequestBatch]]:
    """Each CHUNK_S of arrival order as one chunk: per customer, a batch of its lines."""
    out = []
    for start in range(T0, T0 + 2 * 86400, CHUNK_S):
        batches = {}
        for c, (t, d, f) in data.items():
            sl = (t >= start * S) & (t < (start + CHUNK_S) * S)
            if sl.any():
                batches[c] = RequestBatch(
                    c,
                    t[sl].tolist(),
                    ["/p"] * int(sl.sum()),
                    ["503" if x else "200" for x in f[sl]],
                    [f"{x:.3f}" for x in d[sl]],
                )
        out.append(batches)
    return out


def shard_item(batches: list[RequestBatch]) -> ShardRequests:
    """A chunk of these customers' lines, batch after batch, as the dataflow gives it to the scorer
    (`by_shard` with one shard)."""
    lines = [
        (b.customer_id, *line) for b in batches for line in zip(b.times, b.paths, b.statuses, b.durations, strict=True)
    ]
    customers, times, paths, statuses, durations = (list(column) for column in zip(*lines, strict=True))
    [(_, item)] = by_shard(RequestColumns.of_lines(customers, times, paths, statuses, durations), 1)
    return item


def tick_of(batches: dict[str, RequestBatch], met: set[str]) -> Tick:
    """As the stream clock: the chunk's earliest line, minus one bucket, naming the customers it met
    first in this chunk (`met`: those it met before, updated)."""
    earliest = min(min(b.times) for b in batches.values())
    joined = tuple(c for c in batches if c not in met)
    met.update(joined)
    return Tick((earliest // (BUCKET * S) - 1) * BUCKET * S, joined)


Outputs = dict[str, list[tuple[object, ...]]]


def record(out: Outputs, scored: list[Scored]) -> None:
    """Each customer's scores and incidents, per batch: a shard's rows are split into its customers'
    batches, each with the incidents the shard emitted for that customer beside the rows."""
    rows = [item for item in scored if isinstance(item, ScoredRows)]
    batches = [item for item in scored if isinstance(item, ScoredBatch)]
    if rows:
        (item,) = rows
        beside = {sb.batch.customer_id: sb.incidents for sb in batches}
        bounds = item.requests.bounds
        batches = [
            ScoredBatch(b, item.scores[bounds[i] : bounds[i + 1]], beside.pop(b.customer_id, []))
            for i, b in enumerate(item.requests.batches())
        ]
        assert not beside  # incidents only of customers in the rows
    for sb in batches:
        incidents = [(i.kind, i.status, i.start_ns, i.end_ns, i.peak_score, i.requests) for i in sb.incidents]
        scores = [] if sb.scores is None else sb.scores.tolist()
        out.setdefault(sb.batch.customer_id, []).append((scores, incidents))


def oracle(stream: list[dict[str, RequestBatch]], cfg: object) -> tuple[Outputs, dict[str, CustomerScorer]]:
    """One scorer per customer; every tick to every customer seen so far (the per-customer step)."""
    scorers: dict[str, CustomerScorer] = {}
    out: Outputs = {}
    for batches in stream:
        for c, b in batches.items():
            s = scorers.setdefault(c, CustomerScorer(c, cfg))  # type: ignore[arg-type]
            record(out, [s.score(b)])
        tick = tick_of(batches, set(scorers))
        for c, s in scorers.items():
            incidents = s.tick(tick)
            if incidents:
                record(out, [ScoredBatch(RequestBatch(c), None, incidents)])
    return out, scorers


def test_a_shard_decides_exactly_as_customers_ticked_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config(slo_targets=(("default", 0.99),))
    stream = chunks(fleet(1))
    want, scorers = oracle(stream, cfg)

    ticked: Counter[str] = Counter()
    real_tick = CustomerScorer.tick
    monkeypatch.setattr(
        CustomerScorer, "tick", lambda self, tick: ticked.update([self.customer_id]) or real_tick(self, tick)
    )
    shard = ShardScorer(cfg)
    got: Outputs = {}
    met: set[str] = set()
    for i, batches in enumerate(stream):
        record(got, shard.score(shard_item(list(batches.values()))))
        if i == len(stream) // 2:  # a restart mid-stream: the snapshot restored goes on alike
            logic = ShardLogic(cfg, 1, 300 * S, None, recoverable=True)
            logic.shard = shard
            shard = ShardLogic(cfg, 1, 300 * S, pickle.loads(pickle.dumps(logic.snapshot())), recoverable=True).shard
        record(got, shard.tick(tick_of(batches, met)))

    assert got == want
    for c, s in scorers.items():
        mine = shard.scorers[c]
        assert (mine.latency.s0, mine.errors.failed, mine.traffic.level) == pytest.approx(
            (s.latency.s0, s.errors.failed, s.traffic.level), rel=1e-12
        )
    kinds = Counter(k for out in want.values() for _, incidents in out for k, *_ in incidents)
    assert {"traffic_drop", "traffic_surge", "latency"} <= set(kinds)
    drops = [x for _, incidents in want["quitter"] for x in incidents if x[0] == "traffic_drop"]
    assert len(drops) >= 3 and drops[0][1] == "open"  # updated by the ticks while open, then resolved
    assert "joiner" in want and not any(c == "joiner" for b in stream[:100] for c in b)
    # the oracle ticks every known customer after each chunk; the shard only those it is due for
    seen: set[str] = set()
    oracle_ticks = sum(len(seen.update(b) or seen) for b in stream)
    assert sum(ticked.values()) < 0.6 * oracle_ticks
    assert ticked["quitter"] > ticked["sparse0"]


def test_shards_are_stable_and_spread() -> None:
    """CRC-32, not the per-process salted str hash: the same shard in every process and restart."""
    assert [shard_of(c, 64) for c in ("acme", "cust_7", "ü")] == ["62", "2", "21"]  # zlib.crc32 % 64, in any process
    counts = Counter(shard_of(f"cust_{i}", 64) for i in range(10_000))
    assert len(counts) == 64 and max(counts.values()) < 2 * 10_000 / 64
    names = ["d", "a", "c", "a", "b", "d", "c"]
    chunk = RequestColumns.of_lines(names, list(range(7)), ["/p"] * 7, ["200"] * 7, ["0.1"] * 7)
    grouped = by_shard(chunk, 2)
    assert sorted(c for _, item in grouped for c in item.customers) == ["a", "b", "c", "d"]
    assert all(shard_of(c, 2) == key for key, item in grouped for c in item.customers)
    # each customer's lines, in line order, as its batch of the chunk
    assert {b.customer_id: b for _, item in grouped for b in item.batches()} == chunk.batches()


def test_a_shard_item_pickles_only_its_own_rows() -> None:
    """Between cluster workers a shard's item carries its customers' lines, not the whole chunk's,
    and arrives with the same batches and the same numbers."""
    names = [f"c{i % 10}" for i in range(100)]
    chunk = RequestColumns.of_lines(names, list(range(100)), ["/p"] * 100, ["503", "200"] * 50, ["0.25"] * 100)
    grouped = by_shard(chunk, 4)
    assert len(grouped) > 1
    for _, item in grouped:
        back = pickle.loads(pickle.dumps(item))
        assert len(back.requests) == len(item) < len(chunk)
        assert back.batches() == item.batches() and back.customers == item.customers
        mine, theirs = item.values(), back.values()
        assert np.array_equal(mine.times, theirs.times) and np.array_equal(mine.failed, theirs.failed)
        assert np.array_equal(mine.durations, theirs.durations)


def _incident_keys(incidents: list[Incident]) -> list[tuple[str, int]]:
    return [(i.kind, i.start_ns) for i in incidents]


def test_a_snapshot_repickles_only_changed_customers() -> None:
    """A tick that lets every customer wait changes no pickle; a batch re-pickles its customer only.
    Without a recovery store nothing is pickled."""
    cfg = config()
    logic = ShardLogic(cfg, 1, 300 * S, None, recoverable=True)
    stream = chunks({c: sparse(i, 6, 120) for i, c in enumerate("abc")})[:30]
    met: set[str] = set()
    for batches in stream:
        logic.on_item(shard_item(list(batches.values())))
        logic.on_item(tick_of(batches, met))
    first = logic.snapshot()
    last = max(t for b in stream[-1].values() for t in b.times) // (BUCKET * S)
    logic.on_item(Tick((last + 3) * BUCKET * S))  # completes the last requests' buckets
    second = logic.snapshot()
    logic.on_item(Tick((last + 4) * BUCKET * S))  # nothing to complete: all wait
    third = logic.snapshot()
    assert all(third.customers[c][0] is second.customers[c][0] for c in "abc")
    assert all(third.customers[c][1] == second.customers[c][1] + 1 for c in "abc")
    logic.on_item(shard_item([RequestBatch("a", [(last + 5) * BUCKET * S], ["/p"], ["200"], ["0.100"])]))
    fourth = logic.snapshot()
    assert fourth.customers["a"][0] is not third.customers["a"][0]
    assert fourth.customers["b"][0] is third.customers["b"][0] and first.customers

    ingest = ShardLogic(cfg, 1, 300 * S, None, recoverable=False)
    for batches in stream:
        ingest.on_item(shard_item(list(batches.values())))
    snap = ingest.snapshot()
    assert snap.customers == {} and snap.watermark == ingest.shard.watermark
    assert ShardLogic(cfg, 1, 300 * S, snap, recoverable=False).shard.scorers == {}


def test_changing_the_shard_count_keeps_only_customers_still_in_the_shard() -> None:
    cfg = config()
    logic = ShardLogic(cfg, 4, 300 * S, None, recoverable=True)
    customers = [c for c in (f"c{i}" for i in range(40)) if shard_of(c, 4) == "1"]
    logic.on_item(shard_item([RequestBatch(c, [T0 * S], ["/p"], ["200"], ["0.1"]) for c in customers]))
    restored = ShardLogic(cfg, 8, 300 * S, logic.snapshot(), recoverable=True)
    assert set(restored.shard.scorers) == {c for c in customers if shard_of(c, 8) == "1"}
    assert 0 < len(restored.shard.scorers) < len(customers)


def test_a_tick_passes_by_customers_the_clock_had_not_met() -> None:
    """A tick can reach a shard after a chunk the clock had not seen when it passed (chunks and ticks
    travel by different paths): run far ahead by one file (a line dated now while the other logs are
    two years behind), it must not complete the buckets of a customer it never named, which would
    judge that customer silent up to now (a false traffic_drop) and make its next lines late."""
    cfg = config()
    shard = ShardScorer(cfg)
    day = chunks({"steady": sparse(0, 200, 120)})
    shard.score(shard_item(list(day[0].values())))  # the first chunk of the 2024 log, before the clock saw it
    now_bucket = (T0 + 2 * 365 * 86400) // BUCKET
    assert shard.tick(Tick(now_bucket * BUCKET * S, ("intruder",))) == []  # the clock met only the intruder
    for batches in day[1:40]:
        for sb in shard.score(shard_item(list(batches.values()))):
            assert isinstance(sb, ScoredRows)  # no incident: the rows alone
    steady = shard.scorers["steady"]
    assert steady.watermark < now_bucket - 1000 and steady.next_bucket is not None
    assert steady.next_bucket < now_bucket - 1000  # its buckets were judged from its own lines only
    shard.tick(Tick((now_bucket + 1) * BUCKET * S, ("steady",)))  # named: from now on it is ticked
    assert shard.scorers["steady"].watermark >= now_bucket


def test_a_tick_that_names_a_customer_before_its_first_batch_is_kept() -> None:
    """The tick that names a customer can reach its shard before the customer's first batch (they
    travel by different paths), when the shard holds no scorer yet: the shard must keep what the tick
    said (the customer is met, the time), or the clock, which names each customer once, never names it
    again and its buckets are never completed by ticks (a silence would never become a traffic_drop)."""
    cfg = config()
    logic = ShardLogic(cfg, 64, 10**18, None, recoverable=True)

    def feed(item: Tick | ShardRequests) -> None:
        nonlocal logic
        _out, keep = logic.on_item(item)
        if keep == ShardLogic.DISCARD:  # what Bytewax does: the next item gets a new logic
            logic = ShardLogic(cfg, 64, 10**18, None, recoverable=True)

    day = chunks({"steady": sparse(0, 200, 120)})
    first = day[0]["steady"]
    feed(Tick(first.times[-1], ("steady",)))  # the clock named it; its batch is still on the way
    feed(shard_item([first]))
    later = (max(first.times) // (BUCKET * S) + 1000) * BUCKET * S
    feed(Tick(later, ()))
    assert "steady" not in logic.shard.fresh
    assert logic.shard.scorers["steady"].watermark >= later // (BUCKET * S) - 1
