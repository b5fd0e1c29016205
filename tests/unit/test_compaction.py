"""Compaction's pure parts: which stored rows a reader counts (`storage.compacted.counted_rows`) in every
state a pass or a crash can leave, and what `rollups.compaction.plan_window` merges (numbers added,
histograms merged exactly, fleet tables added per customer)."""

from __future__ import annotations

import numpy as np

from logpulse.rollups.compaction import Row, plan_window
from logpulse.storage import compacted, fleet_table
from logpulse.storage.histogram import LatencyHistogram
from logpulse.storage.points import ROLLUP_LEVELS

LEVEL = ROLLUP_LEVELS[-1]
W = LEVEL.window_ns
START = 20_000 * W


def rows_counted(rows: list[tuple[str, int, str | None, str | None, bool]]) -> list[bool]:
    """rows: (customer, time, compacted tag, covers, complete)."""
    mask = compacted.counted_rows(
        [r[0] for r in rows],
        np.asarray([r[1] for r in rows], np.int64),
        W,
        [r[2] for r in rows],
        [r[3] for r in rows],
        np.asarray([r[4] for r in rows], bool),
    )
    return mask.tolist()


def test_covers_round_trip() -> None:
    text = compacted.encode_covers([5_000_000_000, 2_000_000], [7, 3])
    assert compacted.decode_covers(text) == {2_000_000: 3, 5_000_000_000: 7}


def test_a_reader_counts_each_source_once_in_every_state() -> None:
    s1, s2, late = START + 3_000_000, START + 9_000_000_000, START + 50_000_000_000
    gen0 = compacted.encode_covers([s1 - START, s2 - START], [4, 5])
    gen1 = compacted.encode_covers([s1 - START, s2 - START, late - START], [4, 5, 2])
    sources = [("a", s1, None, None, True), ("a", s2, None, None, True)]
    assert rows_counted(sources) == [True, True]  # before compaction
    g0 = ("a", START, "1", gen0, True)
    assert rows_counted([*sources, g0]) == [False, False, True]  # written, sources not deleted yet
    assert rows_counted([*sources, ("a", START, "1", gen0, False)]) == [True, True, False]  # still being written
    assert rows_counted([g0]) == [True]  # sources deleted
    assert rows_counted([g0, ("a", late, None, None, True)]) == [True, True]  # late data: a new identity
    g1 = ("a", START + 1, "1", gen1, True)
    assert rows_counted([g0, ("a", late, None, None, True), g1]) == [False, False, True]
    assert rows_counted([g0, ("a", late, None, None, True), ("a", START + 1, "1", gen1, False)]) == [
        True,
        True,
        False,
    ]
    # another customer's window and the same window's rewritten (re-ingested) sources
    other = ("b", s1, None, None, True)
    assert rows_counted([g0, *sources, other]) == [True, False, False, True]


def hist(ms: list[int]) -> str:
    return LatencyHistogram.from_values([m / 1000 for m in ms]).encode()


def test_plan_merges_exactly_and_covers_what_it_merged() -> None:
    a, b = [12, 15, 15, 300], [15, 99]
    tables_a = fleet_table.encode_parts([("x", 3, 1, 0, 42_000_000), ("y", 1, 0, 0, 300_000_000)])
    tables_b = fleet_table.encode_parts([("x", 2, 0, 1, 114_000_000)])
    rows = [
        Row(START + 5_000_000, 4, 1, 0, 0.342, hist(a), tables_a),
        Row(START + 7_000_000, 2, 0, 1, 0.114, hist(b), tables_b),
    ]
    plan = plan_window("*", LEVEL, START, rows)
    assert plan is not None and plan.write is not None and plan.deletable and plan.generation == 0
    p = plan.write
    assert (p.count, p.failed, p.server_errors, p.sum_ns, p.time_ns) == (6, 1, 1, 456_000_000, START)
    assert LatencyHistogram.decode(p.hist) == LatencyHistogram.from_values([m / 1000 for m in a + b])
    table = fleet_table.decode_many([t for t in p.tables if t])
    got = dict(zip(table.customers, zip(table.count.tolist(), table.sum_ns.tolist(), strict=True), strict=True))
    assert got == {"x": (5, 156_000_000), "y": (1, 300_000_000)}
    assert compacted.decode_covers(plan.covers) == {5_000_000: 4, 7_000_000: 2}

    # the compacted point written: the next pass only deletes; a late source makes generation 1
    done = Row(START, 6, 1, 1, 0.456, p.hist, p.tables, "1", plan.covers)
    again = plan_window("*", LEVEL, START, [*rows, done])
    assert again is not None and again.write is None and again.deletable
    assert plan_window("*", LEVEL, START, [done]) is None
    late = Row(START + 8_000_000_000, 1, 0, 0, 0.01, hist([10]))
    nxt = plan_window("*", LEVEL, START, [done, late])
    assert nxt is not None and nxt.write is not None and nxt.generation == 1 and nxt.old_generations
    assert nxt.write.count == 7 and nxt.write.time_ns == START + 1


def test_a_source_grown_after_compaction_is_never_added_twice() -> None:
    rows = [Row(START + 5_000_000, 4, 0, 0, 0.1, hist([25] * 4)), Row(START + 6_000_000, 1, 0, 0, 0.1, hist([100]))]
    plan = plan_window("c", LEVEL, START, rows)
    assert plan is not None and plan.write is not None
    done = Row(START, 5, 0, 0, 0.2, plan.write.hist, (), "1", plan.covers)
    grown = Row(START + 5_000_000, 6, 0, 0, 0.15, hist([25] * 6))
    p = plan_window("c", LEVEL, START, [done, grown])
    assert p is None or (p.write is None and not p.deletable)
    assert rows_counted([("c", START, "1", plan.covers, True), ("c", grown.time_ns, None, None, True)]) == [True, False]
