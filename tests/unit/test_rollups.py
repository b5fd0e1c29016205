"""The rollup step's identity design without a database: whatever the chunking, the crashes and the
replays, the last value written under each point time, summed per window, equals the lines."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logpulse.formats.logpulse import parse_chunk
from logpulse.model import Chunk, RollupBatch, RollupPoint
from logpulse.rollups.aggregate import pair_totals, rollup_part
from logpulse.rollups.identity import split_at_segments
from logpulse.rollups.step import RollupLogic
from logpulse.storage import fleet_table
from logpulse.storage.histogram import LatencyHistogram
from logpulse.storage.points import FLEET_CUSTOMER, ROLLUP_LEVELS, rollup_line
from logpulse.tailing.source import file_fingerprint

BASE = 1_790_000_000  # seconds; a multiple of 900 is not needed


def make_log(rng: random.Random, n: int, spread_s: int) -> bytes:
    lines = []
    for _ in range(n):
        t = BASE + rng.randrange(spread_s)
        sec = t % 60
        mins = t // 60
        stamp = f"2026-09-21 {mins // 60 % 24:02d}:{mins % 60:02d}:{sec:02d}"
        status = rng.choice(["200", "200", "404", "500"])
        lines.append(f"{stamp} c{rng.randrange(3)} /p {status} {rng.randrange(0, 3000) / 1000:.3f}\n")
    return "".join(lines).encode()


def chunks_of(data: bytes, start: int, rng: random.Random, max_chunk: int, path: str = "f.log") -> list[Chunk]:
    """Complete-line chunks from `start`, of random sizes (as a source might read them) of the file at
    `path` (by default none: no file size, so nothing is held back while catching up)."""
    key = file_fingerprint(data[: data.index(b"\n") + 1])  # as the source identifies files
    out = []
    pos = start
    while pos < len(data):
        end = data.rfind(b"\n", pos, pos + rng.randint(1, max_chunk)) + 1
        if end <= pos:
            end = data.index(b"\n", pos) + 1
        out.append(Chunk(path, key, pos, data[pos:end]))
        pos = end
    return out


class FakeDb:
    """InfluxDB's rule for points: (measurement, tags, time) is the identity, the last write wins."""

    def __init__(self) -> None:
        self.points: dict[tuple[str, str, int], tuple[int, int, int | None, int, str]] = {}
        self.tables: dict[tuple[str, int], tuple[str, ...]] = {}  # (measurement, time) of `*` points

    def write(self, batches: list[RollupBatch]) -> None:
        for b in batches:
            for p in b.points:
                if p.customer_id == FLEET_CUSTOMER:
                    self.tables[(p.measurement, p.time_ns)] = p.tables
                self.points[(p.measurement, p.customer_id, p.time_ns)] = (
                    p.count,
                    p.failed,
                    p.server_errors,
                    p.sum_ns,
                    p.hist,
                )

    def windows(
        self, measurement: str, window_ns: int
    ) -> dict[tuple[str, int], tuple[int, int, int, int, LatencyHistogram]]:
        acc: dict[tuple[str, int], list] = defaultdict(lambda: [0, 0, 0, 0, []])  # type: ignore[type-arg]
        for (m, c, t), (n, f, e, s, h) in self.points.items():
            if m == measurement:
                a = acc[(c, t - t % window_ns)]
                a[0] += n
                a[1] += f
                a[2] += e
                a[3] += s
                a[4].append(h)
        return {k: (a[0], a[1], a[2], a[3], LatencyHistogram.merge_many(a[4])) for k, a in acc.items()}

    def tabled(self, measurement: str, window_ns: int) -> dict[tuple[str, int], tuple[int, int, int, int]]:
        """count, failed, server errors, sum per customer-window, from the `*` points' packed tables."""
        acc: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for (m, t), parts in self.tables.items():
            if m == measurement:
                table = fleet_table.decode_many([x for x in parts if x])
                for i, c in enumerate(table.customers):
                    a = acc[(c, t - t % window_ns)]
                    a[0] += int(table.count[i])
                    a[1] += int(table.failed[i])
                    a[2] += int(table.server_errors[i])
                    a[3] += int(table.sum_ns[i])
        return {k: (a[0], a[1], a[2], a[3]) for k, a in acc.items()}


def expected(data: bytes, window_ns: int) -> dict[tuple[str, int], tuple[int, int, int, int, LatencyHistogram]]:
    acc: dict[tuple[str, int], list] = defaultdict(lambda: [0, 0, 0, 0, []])  # type: ignore[type-arg]
    for line in data.decode().splitlines():
        parsed = parse_chunk(Chunk("x", 0, 0, (line + "\n").encode()))
        (b,) = parsed.batches.values()
        t = b.times[0] // 10**9 * 10**9
        for customer in (b.customer_id, FLEET_CUSTOMER):  # each customer, and all of them together
            a = acc[(customer, t - t % window_ns)]
            a[0] += 1
            a[1] += int(b.statuses[0]) >= 400
            a[2] += int(b.statuses[0]) >= 500
            a[3] += round(float(b.durations[0]) * 1e9)
            a[4].append(b.durations[0])
    return {k: (a[0], a[1], a[2], a[3], LatencyHistogram.from_text(a[4])) for k, a in acc.items()}


def emitted(logic: RollupLogic, chunks: list[Chunk], unit: int) -> list[RollupBatch]:
    """What the step emits for `chunks`, cut at segments and parsed as the dataflow does, in order."""
    out: list[RollupBatch] = []
    for chunk in chunks:
        for piece in split_at_segments(chunk, unit):
            parsed = parse_chunk(piece)
            parsed.path = piece.path
            parsed.span = (piece.file_key, piece.offset, piece.offset + len(piece.data))
            item = rollup_part(parsed)
            if item is not None:
                out += logic.on_batch([item[1]])[0]
    return out


def feed(logic: RollupLogic, chunks: list[Chunk], unit: int, db: FakeDb) -> None:
    db.write(emitted(logic, chunks, unit))


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 2**32),
    st.integers(50, 400),
    st.sampled_from([600, 7200, 3 * 86400]),
    st.integers(200, 3000),
    st.integers(0, 3),
)
def test_replays_and_rechunking_rewrite_the_same_points(
    seed: int, n: int, spread_s: int, unit: int, crashes: int
) -> None:
    rng = random.Random(seed)
    data = make_log(rng, n, spread_s)
    db = FakeDb()
    build = RollupLogic.builder(unit, 1.0, 3600.0)
    logic = build(None)
    pos = 0  # the source offset that goes with the last snapshot
    snap = logic.snapshot()
    chunks = chunks_of(data, 0, rng, 700)
    for _ in range(crashes):  # run a while, snapshot, run on, crash, resume from the snapshot
        k = rng.randrange(len(chunks) + 1)
        feed(logic, chunks[:k], unit, db)
        if k:
            pos, snap = chunks[k - 1].offset + len(chunks[k - 1].data), logic.snapshot()
        m = rng.randrange(len(chunks) - k + 1)
        feed(logic, chunks[k : k + m], unit, db)
        if rng.random() < 0.5:
            db.write(logic.on_notify()[0])  # a flush before the crash
        logic = build(snap)  # kill -9: back to the snapshot, the source back to `pos`
        chunks = chunks_of(data, pos, rng, 900)  # other chunk boundaries after the resume
    feed(logic, chunks, unit, db)
    db.write(logic.on_eof()[0])
    # the same file ingested again from the start, in yet other chunks: rewrites only
    again = build(None)
    feed(again, chunks_of(data, 0, rng, 1100), unit, db)
    db.write(again.on_eof()[0])
    for level in ROLLUP_LEVELS:
        want = expected(data, level.window_ns)
        assert db.windows(level.measurement, level.window_ns) == want, level.measurement
        customers = {k: v[:4] for k, v in want.items() if k[0] != FLEET_CUSTOMER}
        assert db.tabled(level.measurement, level.window_ns) == customers, level.measurement


def assert_windows_equal_lines(db: FakeDb, data: bytes, when: str) -> None:
    for level in ROLLUP_LEVELS:
        assert db.windows(level.measurement, level.window_ns) == expected(data, level.window_ns), (level, when)


def test_a_restart_stopped_before_its_replay_caught_up_takes_no_line_out(tmp_path: Path) -> None:
    """The flaky e2e kill -9 test's sequence: a run reads on past its last snapshot and writes every
    line, is killed; the next run restores the snapshot, replays a little and is stopped (SIGTERM).
    Its cumulative values are older than the stored ones: writing them took lines out of InfluxDB
    (rollups short of the raw points) until some later run caught up again."""
    rng = random.Random(11)
    data = make_log(rng, 600, 3 * 3600)
    log = tmp_path / "api.log"
    log.write_bytes(data)
    unit = 2048  # many segments of every level, so the replay crosses several of them
    build = RollupLogic.builder(unit, 1.0, 3600.0)
    chunks = chunks_of(data, 0, rng, 700, str(log))
    db = FakeDb()
    first = build(None)
    k = len(chunks) // 3
    feed(first, chunks[:k], unit, db)
    pos, snap = chunks[k - 1].offset + len(chunks[k - 1].data), first.snapshot()  # the last snapshot
    feed(first, chunks[k:], unit, db)  # reads on to the end of the file
    db.write(first.on_notify()[0])  # and writes it all; then kill -9
    assert_windows_equal_lines(db, data, "the killed run wrote every line")
    restarted = build(snap)  # back to `pos`
    db.write(restarted.on_notify()[0])  # a flush due at once (the snapshot's time has passed)
    replay = chunks_of(data, pos, rng, 900, str(log))
    feed(restarted, replay[:4], unit, db)  # replays a little...
    db.write(restarted.on_notify()[0])
    db.write(restarted.on_eof()[0])  # ...and is stopped (SIGTERM: end of input, final snapshot)
    assert_windows_equal_lines(db, data, "after a stop during the replay")
    resumed = build(restarted.snapshot())
    feed(resumed, chunks_of(data, replay[4].offset, rng, 800, str(log)), unit, db)
    db.write(resumed.on_notify()[0])
    assert_windows_equal_lines(db, data, "caught up again")


def test_held_back_points_are_written_at_ingest_end_and_at_an_idle_close(tmp_path: Path) -> None:
    """Holding back is only while an earlier run may be ahead: `ingest` (no snapshot) read to its end
    writes all, one stopped before it caught up writes nothing held back (an earlier ingest of the file
    keeps its complete values), and a state dropped after ROLLUP_IDLE_CLOSE_S writes its last values first."""
    rng = random.Random(5)
    data = make_log(rng, 300, 7200)
    log = tmp_path / "api.log"
    log.write_bytes(data)
    head = chunks_of(data, 0, rng, 700, str(log))[:3]  # the file holds more than was read
    whole, db = RollupLogic.builder(2048, 1.0, 3600.0, recoverable=False)(None), FakeDb()
    feed(whole, chunks_of(data, 0, rng, 700, str(log)), 2048, db)
    written, discard = whole.on_eof()
    db.write(written)
    assert_windows_equal_lines(db, data, "ingest read to its end")
    # nothing follows an ingest's end, not even a snapshot: each level's state is let go once written
    assert discard is True and whole.state.segments == [None] * len(ROLLUP_LEVELS)
    again = RollupLogic.builder(2048, 1.0, 3600.0, recoverable=False)(None)
    feed(again, head, 2048, db)
    assert again.on_notify()[0] == []  # held back: the file is longer than what was read
    db.write(again.on_eof()[0])  # stopped by a signal before catching up
    assert_windows_equal_lines(db, data, "an interrupted second ingest")
    follow, db = RollupLogic.builder(2048, 1.0, 3600.0)(None), FakeDb()
    feed(follow, head, 2048, db)
    assert follow.on_eof()[0] == []  # a stop: kept for the next run (in the snapshot)
    follow.state.last_data -= 3600
    written, discard = follow.on_notify()
    db.write(written)
    assert discard is True
    assert_windows_equal_lines(db, data[: head[-1].offset + len(head[-1].data)], "idle close")
    log.write_bytes(data + b"2026-09-21 00:00:01 c1 /p 2")  # a last line still being written
    live, db = RollupLogic.builder(2048, 1.0, 3600.0)(None), FakeDb()
    feed(live, chunks_of(data, 0, rng, 700, str(log)), 2048, db)
    db.write(live.on_notify()[0])  # caught up: every complete line read
    assert_windows_equal_lines(db, data, "caught up to the last complete line")


def test_split_at_segments_cuts_at_the_first_line_start_of_each_segment() -> None:
    data = b"aaaa\nbbbb\ncccc\ndddd\n"  # lines start at 0, 5, 10, 15
    pieces = split_at_segments(Chunk("f", 1, 100, data), unit=8)  # boundaries 104, 112, 120
    assert [(p.offset, p.data) for p in pieces] == [(100, b"aaaa\n"), (105, b"bbbb\ncccc\n"), (115, b"dddd\n")]
    assert split_at_segments(Chunk("f", 1, 0, data), unit=1 << 20) == [Chunk("f", 1, 0, data)]
    assert b"".join(p.data for p in split_at_segments(Chunk("f", 1, 7, data), unit=3)) == data


def test_a_state_restored_after_long_downtime_waits_for_its_replay() -> None:
    """Idle close counts from the restart: closing a restored state before its replay arrives would
    give the replayed lines a new identity while the old points already contain them."""
    rng = random.Random(1)
    data = make_log(rng, 200, 3600)
    build = RollupLogic.builder(4096, 1.0, 3600.0)
    logic = build(None)
    db = FakeDb()
    feed(logic, chunks_of(data, 0, rng, 700)[:3], 4096, db)
    logic.state.last_data -= 7200  # the processor then stayed down for two hours
    restored = build(logic.snapshot())
    _, discard = restored.on_notify()
    assert discard is False
    restored.state.last_data -= 3600
    _, discard = restored.on_notify()
    assert discard is True  # an hour without data in this execution: closed


SNAPSHOTS = Path(__file__).parent / "snapshots"
OBJECT_LAYOUT_SPLIT = 7200
"""`snapshots/rollup_object_layout*.pickle` are states of `rollup_object_layout.log` read up to this byte
(segments of 1 MB, nothing flushed yet), pickled while a segment held one object per customer-window:
as it was, with its aggregates stripped of `server_errors` (the layout before that field), and
without the fleet-wide aggregates (the layout before them). The rest of the log is a later day."""


def resume_object_layout(name: str) -> tuple[FakeDb, bytes, bytes]:
    """Restore an object-layout snapshot, read the rest of the log, and write everything at the end."""
    data = (SNAPSHOTS / "rollup_object_layout.log").read_bytes()
    first, later = data[:OBJECT_LAYOUT_SPLIT], data[OBJECT_LAYOUT_SPLIT:]
    key = file_fingerprint(first.split(b"\n", 1)[0])
    restored = RollupLogic.builder(1 << 20, 1.0, 3600.0)((SNAPSHOTS / name).read_bytes())
    assert restored.state.next_offset == OBJECT_LAYOUT_SPLIT
    db = FakeDb()
    feed(restored, [Chunk("f.log", key, len(first), later)], 1 << 20, db)
    db.write(restored.on_eof()[0])
    return db, first, later


def test_a_snapshot_of_one_object_per_customer_window_resumes_exactly() -> None:
    db, first, later = resume_object_layout("rollup_object_layout.pickle")
    assert_windows_equal_lines(db, first + later, "resumed from the object-layout snapshot")
    for level in ROLLUP_LEVELS:
        want = {k: v[:4] for k, v in expected(first + later, level.window_ns).items() if k[0] != FLEET_CUSTOMER}
        assert db.tabled(level.measurement, level.window_ns) == want, level.measurement


def test_a_snapshot_from_before_server_errors_writes_those_points_without_the_field() -> None:
    """Upgrading a processor restores aggregates pickled without `server_errors`: their 5xx count is
    unknown, so their points leave the field out (readers then null the SLO budget) instead of a
    partial count; aggregates begun after the restart carry it."""
    db, first, later = resume_object_layout("rollup_object_layout_no_server_errors.pickle")
    for level in ROLLUP_LEVELS:
        old = expected(first, level.window_ns)
        new = expected(later, level.window_ns)
        assert not old.keys() & new.keys()  # the later lines are another day: other windows, every level
        got = {
            (c, t - t % level.window_ns): (v[0], v[2]) for (m, c, t), v in db.points.items() if m == level.measurement
        }
        assert got == {k: (v[0], None) for k, v in old.items()} | {k: (v[0], v[2]) for k, v in new.items()}
        for (m, c, t), v in db.points.items():
            if m == level.measurement:
                line = rollup_line(RollupPoint(m, c, t, level.window_ns, v[0], v[1], v[2], v[3], v[4]))
                assert ("server_errors=" in line) == (v[2] is not None), line


def test_a_snapshot_from_before_fleet_rollups_gets_complete_fleet_points() -> None:
    """A state restored from a snapshot without the fleet-wide (`*`) aggregates rebuilds them from the
    customers' aggregates of the open segments: the `*` points then hold every line, not only those
    read after the restart."""
    db, first, later = resume_object_layout("rollup_object_layout_no_fleet.pickle")
    assert_windows_equal_lines(db, first + later, "resumed from a snapshot without fleet aggregates")


@pytest.mark.parametrize("scale", [1, 2**40])  # 2**40: the combined key overflows, the sorted-pairs path
def test_pair_totals_counts_and_sums_each_distinct_pair(scale: int) -> None:
    rng = np.random.default_rng(7)
    a = rng.integers(0, 5, 400).astype(np.int64) * scale
    b = rng.integers(0, 30, 400).astype(np.int64) * scale
    w = rng.integers(1, 9, 400).astype(np.int64)
    seen = Counter(zip(a.tolist(), b.tolist(), strict=True))
    weighted: Counter[tuple[int, int]] = Counter()
    for x, y, n in zip(a.tolist(), b.tolist(), w.tolist(), strict=True):
        weighted[(x, y)] += n
    ua, ub, counts = pair_totals(a, b)
    assert list(zip(ua.tolist(), ub.tolist(), strict=True)) == sorted(seen)
    assert counts.tolist() == [seen[p] for p in sorted(seen)]
    assert pair_totals(a, b, w)[2].tolist() == [weighted[p] for p in sorted(seen)]
    assert [len(x) for x in pair_totals(a[:0], b[:0])] == [0, 0, 0]


def test_a_recovery_snapshot_of_the_flat_module_layout_resumes() -> None:
    """`snapshots/rollup_flat_layout.pickle` is the state of `snapshots/rollup_flat_layout.log` read up
    to byte 4968 (segments of 2048 bytes), pickled while the rollup step lived in the single module
    `logpulse.flow.rollups`: a processor upgraded with a recovery store resumes from it and its points
    still sum to the lines."""
    data = (SNAPSHOTS / "rollup_flat_layout.log").read_bytes()
    restored = RollupLogic.builder(2048, 1.0, 3600.0)((SNAPSHOTS / "rollup_flat_layout.pickle").read_bytes())
    assert restored.state.next_offset == 4968
    db = FakeDb()
    killed = RollupLogic.builder(2048, 1.0, 3600.0)(None)  # the run that wrote the snapshot, killed later
    feed(killed, [c for c in chunks_of(data, 0, random.Random(6), 700) if c.offset < 4968], 2048, db)
    db.write(killed.on_notify()[0])
    feed(restored, chunks_of(data, 4968, random.Random(7), 900), 2048, db)  # the source resumes at 4968
    db.write(restored.on_eof()[0])
    assert_windows_equal_lines(db, data, "resumed from the flat-layout snapshot")
