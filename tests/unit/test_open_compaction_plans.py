"""Seals and the compaction of open windows, without InfluxDB: the rollup step seals an identity only
once its values are final (replays and re-chunking included), `Seals.sealed` matches a source to its
seal only inside the windows that identity wrote, and what `open_compaction` merges and deletes in an
open window (sealed sources only, one generation number per window, deletes at exact times only when
every customer's source there is covered)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from test_compaction import hist
from test_rollups import chunks_of, emitted, make_log

from logpulse.model import RollupBatch
from logpulse.rollups.compaction import Row
from logpulse.rollups.open_compaction import open_deletes, plan_open_window
from logpulse.rollups.step import RollupLogic
from logpulse.storage import compacted, seals
from logpulse.storage.points import ROLLUP_LEVELS

LEVEL = ROLLUP_LEVELS[-1]
W = LEVEL.window_ns
START = 20_000 * W
Key = tuple[str, str, int]  # measurement, customer, time


def seals_of(batches: list[RollupBatch]) -> list[seals.Seal]:
    out = []
    for batch in batches:
        for line in batch.seals:
            head, first, t = line.split(" ")
            level = head.split("=")[1]
            window = next(lvl.window_ns for lvl in ROLLUP_LEVELS if lvl.measurement == level)
            first_window = int(first.split("=")[1].rstrip("i"))
            out.append(seals.Seal(level, int(t) % window, first_window, int(t) - int(t) % window))
    return out


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32), st.integers(50, 300), st.integers(200, 3000), st.integers(0, 3))
def test_a_sealed_identity_is_never_written_other_values_after_its_seal(
    seed: int, n: int, unit: int, crashes: int
) -> None:
    rng = random.Random(seed)
    data = make_log(rng, n, 3 * 86400)
    build = RollupLogic.builder(unit, 1.0, 3600.0)
    logic, pos, snap = build(None), 0, build(None).snapshot()
    stored: dict[Key, int] = {}
    final: dict[Key, int] = {}  # the points of sealed identities as they stood when sealed
    sealed: set[tuple[str, int]] = set()

    def write(batches: list[RollupBatch]) -> None:
        for batch in batches:  # the sink: points first, then the batch's seals
            for p in batch.points:
                stored[(p.measurement, p.customer_id, p.time_ns)] = p.count
                if (p.measurement, p.time_ns % p.window_ns) in sealed:
                    assert final.get((p.measurement, p.customer_id, p.time_ns)) == p.count  # a rewrite, the same
            for s in seals_of([batch]):
                sealed.add((s.level, s.offset_ns))
                window = next(lvl.window_ns for lvl in ROLLUP_LEVELS if lvl.measurement == s.level)
                mine = {k: v for k, v in stored.items() if k[0] == s.level and k[2] % window == s.offset_ns}
                assert mine and all(s.first_window_ns <= k[2] - s.offset_ns <= s.last_window_ns for k in mine)
                final.update(mine)

    chunks = chunks_of(data, 0, rng, 700)
    for _ in range(crashes):  # run, snapshot, run on, crash, resume from the snapshot: a replay
        k = rng.randrange(len(chunks) + 1)
        write(emitted(logic, chunks[:k], unit))
        if k:
            pos, snap = chunks[k - 1].offset + len(chunks[k - 1].data), logic.snapshot()
        write(emitted(logic, chunks[k : k + rng.randrange(len(chunks) - k + 1)], unit))
        logic = build(snap)
        chunks = chunks_of(data, pos, rng, 900)
    write(emitted(logic, chunks, unit))
    write(logic.on_eof()[0])  # the end of input writes the last segments' points, and seals none
    last_segment = (data.rfind(b"\n", 0, len(data) - 1) + 1) // unit  # a line's segment is its first byte's
    for i, level in enumerate(ROLLUP_LEVELS):
        seg = logic.state.segments[i]
        assert seg is not None and seg.index == last_segment // level.segment_factor
        assert (level.measurement, seg.ident_ns) not in sealed
    assert sealed or last_segment == 0  # a line that begins past the first segment seals its 15m identities


def test_a_seal_matches_only_the_windows_its_identity_wrote() -> None:
    s = seals.Seals(LEVEL, {5_000: [(START, START + 2 * W)]})
    assert s.sealed(START, 5_000) and s.sealed(START + 2 * W, 5_000)
    assert not s.sealed(START + 3 * W, 5_000)  # another identity whose offset collides, later
    assert not s.sealed(START - W, 5_000) and not s.sealed(START, 6_000)
    assert seals.Seal(LEVEL.measurement, 5_000, START, START + 2 * W).line() == (
        f"rollup_seals,level=rollups_1d first_window={START}i {START + 2 * W + 5_000}"
    )


S1, S2, S3, OPEN = 3_000_000, 9_000_000_000, 12_000_000_000, 50_000_000_000
SEALS = seals.Seals(LEVEL, {o: [(START, START)] for o in (S1, S2, S3)})


def source(offset: int, ms: list[int]) -> Row:
    return Row(START + offset, len(ms), 0, 0, sum(ms) / 1000, hist(ms))


def generation(g: int, covers: dict[int, int], ms: list[int]) -> Row:
    text = compacted.encode_covers(list(covers), list(covers.values()))
    return Row(START + g, len(ms), 0, 0, sum(ms) / 1000, hist(ms), (), compacted.TAG_VALUE, text)


def test_an_open_window_merges_its_sealed_sources_only_and_waits_for_enough() -> None:
    rows = {
        "a": [source(S1, [10, 20]), source(S2, [30]), source(OPEN, [40, 40, 40])],
        "b": [source(S2, [50]), source(S3, [60])],
    }
    assert plan_open_window(LEVEL, START, rows, SEALS, 4) == []  # 3 sealed identities: waits
    planned = {
        p.customer_id: (p, compacted.decode_covers(c)) for p, c in plan_open_window(LEVEL, START, rows, SEALS, 3)
    }
    assert planned.keys() == {"a", "b"}
    a, covers_a = planned["a"]
    assert (a.time_ns, a.count, covers_a) == (START, 3, {S1: 2, S2: 1})  # not the open segment's source
    b, covers_b = planned["b"]
    assert (b.time_ns, b.count, covers_b) == (START, 2, {S2: 1, S3: 1})

    # written: the next read deletes the sealed sources at their exact times, never the open one
    written = {c: [*rs, generation(0, planned[c][1], [0] * planned[c][0].count)] for c, rs in rows.items()}
    deletes = open_deletes(LEVEL, START, written, SEALS)
    assert deletes == [
        f'DELETE FROM "rollups_1d" WHERE "compacted" = \'\' AND time = {START + o}' for o in (S1, S2, S3)
    ]


def test_open_deletes_only_what_every_customer_has_covered() -> None:
    covers = {S1: 2}
    rows = {
        "a": [source(S1, [1, 2]), generation(0, covers, [1, 2])],
        "b": [source(S1, [5])],  # not covered for b (its generation not written yet): S1 stays for everyone
    }
    assert open_deletes(LEVEL, START, rows, SEALS) == []
    rows["b"].append(generation(0, {S1: 1}, [5]))
    assert len(open_deletes(LEVEL, START, rows, SEALS)) == 1
    rows["a"][0] = source(S1, [1, 2, 3])  # grown after it was covered: kept (readers ignore it)
    assert open_deletes(LEVEL, START, rows, SEALS) == []
    unsealed = {"a": [source(OPEN, [1]), generation(0, {OPEN: 1}, [1])]}  # covered but not sealed
    assert open_deletes(LEVEL, START, unsealed, SEALS) == []


def test_one_generation_number_per_window_and_the_older_ones_deleted_at_once() -> None:
    rows = {
        "a": [generation(0, {S1: 1}, [7]), source(S2, [8]), source(S3, [9])],
        "b": [generation(0, {S1: 2}, [1, 2])],  # nothing new: its generation is copied forward
        "c": [source(OPEN, [3])],  # only an open source: nothing written
    }
    planned = plan_open_window(LEVEL, START, rows, SEALS, 2)
    assert {(p.customer_id, p.time_ns - START, p.count) for p, _ in planned} == {("a", 1, 3), ("b", 1, 2)}
    for p, covers in planned:
        rows[p.customer_id].append(generation(1, compacted.decode_covers(covers), [0] * p.count))
    deletes = open_deletes(LEVEL, START, rows, SEALS)
    m = '"rollups_1d"'
    assert f"DELETE FROM {m} WHERE \"compacted\" = '1' AND time >= {START} AND time < {START + 1}" in deletes
    assert len([d for d in deletes if "\"compacted\" = ''" in d]) == 2  # S2 and S3
    rows["b"] = rows["b"][:1]  # b's copy not written (a pass cut short): b's generation 0 must stay
    deletes = open_deletes(LEVEL, START, rows, SEALS)
    assert f"\"customer_id\" = 'a' AND time >= {START} AND time < {START + 1}" in " ".join(deletes)
    assert not any(f"time >= {START} AND time < {START + 1}" in d and "customer_id" not in d for d in deletes)
