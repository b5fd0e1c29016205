"""The stream clock advances by what the files agree on, never by one outlier; poisoned states recover."""

from __future__ import annotations

import pickle
import time

from tests.unit.test_scoring_shard import shard_item

from logpulse.config import Settings
from logpulse.model import RequestBatch, Tick
from logpulse.scoring.baselines import ScoringConfig
from logpulse.scoring.clock import IDLE_WALL_S, TICK_S, StreamClock
from logpulse.scoring.scorer import CustomerScorer
from logpulse.scoring.step import ShardLogic, ShardSnapshot

S = 10**9
T = 1_780_000_000 * S  # event time of the logs (2026-05-28), well before the wall clocks below
WALL = 1_800_000_000 * S  # the host's clock in these tests
YEAR_2100 = 4_102_444_800 * S


def last_tick(out: Tick | None) -> int | None:
    return out.time_ns if out else None


def test_a_file_running_ahead_does_not_move_the_clock() -> None:
    c = StreamClock()
    c.advance("a.log", T, WALL)
    c.advance("b.log", T, WALL)
    out = c.advance("spool.log", WALL - 60 * S, WALL + S)  # one POST dated now, logs a month behind
    assert out is None or out.time_ns <= T
    out = c.advance("a.log", T + 120 * S, WALL + 2 * S)
    assert out is None or out.time_ns <= T + 120 * S


def test_one_chunk_of_outliers_does_not_move_its_file() -> None:
    c = StreamClock()
    for i in range(5):
        c.advance("a.log", T + i * 30 * S, WALL + i * S)
    out = c.advance("a.log", T + 86400 * S, WALL + 6 * S)  # a day ahead: outvoted
    assert last_tick(out) is None or last_tick(out) <= T + 120 * S
    out = c.advance("a.log", T + 180 * S, WALL + 7 * S)
    assert last_tick(out) is None or last_tick(out) <= T + 180 * S


def test_the_clock_never_passes_the_wall_clock() -> None:
    c = StreamClock()
    out: list[Tick | None] = []
    for i in range(5):
        out.append(c.advance("a.log", WALL + 250 * S + i, WALL))  # dated 250 s ahead (within MAX_FUTURE_S)
    assert 0 < max(t.time_ns for t in out if t is not None) <= WALL


def test_a_finished_file_stops_holding_the_clock_back() -> None:
    c = StreamClock()
    c.advance("old.log", T, WALL)
    c.advance("new.log", T, WALL)
    assert c.advance("new.log", T + 600 * S, WALL + S) is None  # old.log may still deliver
    later = WALL + int((IDLE_WALL_S + 1) * S)
    out = c.advance("new.log", T + 630 * S, later)
    assert T + 500 * S <= (last_tick(out) or 0) <= T + 630 * S  # old.log no longer holds it at T


def test_a_poisoned_snapshot_recovers() -> None:
    c = StreamClock()
    c.advance("a.log", T, WALL)
    c.advance("spool.log", YEAR_2100, WALL)
    c.last_tick = YEAR_2100 // (TICK_S * S)  # what an unvalidated line from 2100 left in a snapshot
    restored = pickle.loads(pickle.dumps(c))
    assert set(restored.files) == {"a.log"} and restored.last_tick == -1
    out = restored.advance("a.log", T + 300 * S, time.time_ns())
    assert last_tick(out) is not None and last_tick(out) < T + 300 * S


def test_a_scorer_beyond_now_starts_afresh() -> None:
    """A customer restored from a snapshot whose watermark lies beyond now + MAX_FUTURE_S (a line from
    the future, stored before lines were validated) re-learns; its shard's other customers are kept."""
    config = ScoringConfig.from_settings(Settings(_env_file=None))
    poisoned, kept = CustomerScorer("c", config), CustomerScorer("d", config)
    poisoned.score(RequestBatch("c", [YEAR_2100], ["/p"], ["200"], ["0.1"]))
    kept.score(RequestBatch("d", [T], ["/p"], ["200"], ["0.1"]))
    snap = ShardSnapshot(1, -1, {s.customer_id: (pickle.dumps(s), s.watermark) for s in (poisoned, kept)})
    logic = ShardLogic(config, 1, 300 * S, snap, recoverable=True)
    assert set(logic.shard.scorers) == {"d"}
    batch = RequestBatch("c", [T + i * S for i in range(60)], ["/p"] * 60, ["200"] * 60, ["0.1"] * 60)
    logic.on_item(shard_item([batch]))
    fresh = logic.shard.scorers["c"]
    assert fresh.watermark * int(config.bucket_s * S) <= T + 60 * S
