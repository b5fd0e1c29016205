"""Line-protocol encoding: what InfluxDB receives for each request and incident."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from logpulse.model import Incident, RequestBatch, RequestColumns, RollupRows, ScoredBatch
from logpulse.scoring.shard import by_shard
from logpulse.storage.points import (
    columns_request_lines,
    incident_line,
    request_lines,
    rollup_line,
    rollup_rows_lines,
    scored_rows_lines,
)


def test_request_fields_and_failed_flag() -> None:
    b = RequestBatch("cust_1", [10, 20, 30], ["/a", "/b", "/c"], ["200", "399", "400"], ["0.5", "1", "2.250"])
    lines = request_lines(ScoredBatch(b))
    assert lines[0] == 'requests,customer_id=cust_1 path="/a",status=200i,failed=0i,duration=0.5 10'
    assert "status=399i,failed=0i,duration=1 20" in lines[1]
    assert lines[2].endswith("status=400i,failed=1i,duration=2.250 30")


def test_string_field_escaping() -> None:
    b = RequestBatch("c", [1, 2], ['/q"x', "/a\\b"], ["200", "200"], ["1", "1"])
    lines = request_lines(ScoredBatch(b))
    assert 'path="/q\\"x"' in lines[0]
    assert 'path="/a\\\\b"' in lines[1]


def test_scores_and_incidents() -> None:
    b = RequestBatch("c", [5], ["/a"], ["500"], ["3"])
    assert request_lines(ScoredBatch(b, np.array([12.34567])))[0].endswith(",anomaly_score=12.35 5")
    inc = Incident("c", "errors", 100, 200, 7.5, 42, summary='errors 9% "now"', detected_ns=150)
    assert incident_line(inc) == (
        "anomalies,customer_id=c,kind=errors end=200i,score=7.5,requests=42i,"
        f'id="{inc.id}",status="open",summary="errors 9% \\"now\\"",detected=150i 100'
    )
    resolved = Incident("c", "errors", 100, 200, 7.5, 42, status="resolved", ended_ns=200)
    assert resolved.id == inc.id and len(inc.id) == 16  # identity: customer, kind, start
    assert ',status="resolved",' in incident_line(resolved) and incident_line(resolved).endswith(",ended=200i 100")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=1e5, allow_nan=False), max_size=50))
def test_score_column_encodes_as_each_score_formatted(raw: list[float]) -> None:
    """The scorer's column (rounded to 0.01, as the scorer rounds) gives each line the text of
    `f"{score:.2f}"`, whether the score is looked up (below 100) or formatted."""
    scores = np.round(np.array(raw, dtype=np.float64), 2)
    n = len(raw)
    b = RequestBatch("c", list(range(n)), ["/p"] * n, ["200"] * n, ["0.1"] * n)
    expected = [
        f'requests,customer_id=c path="/p",status=200i,failed=0i,duration=0.1,anomaly_score={x:.2f} {t}'
        for t, x in enumerate(scores.tolist())
    ]
    assert request_lines(ScoredBatch(b, scores)) == expected


def test_request_batch_pickles_compactly_and_exactly() -> None:
    import pickle

    b = RequestBatch("c", [1, 2**62], ["/a", "/é b"], ["200", "503"], ["0.5", "12"])
    assert pickle.loads(pickle.dumps(b)) == b
    assert pickle.loads(pickle.dumps(RequestBatch("empty"))) == RequestBatch("empty")


def test_request_columns_pickle_compactly_and_exactly() -> None:
    import pickle

    columns = RequestColumns.of_lines(
        ["c", "d", "c"], [1, 2**62, 3], ["/a", "/é b", ""], ["200", "503", "404"], ["0.5", "12", "1"]
    )
    assert pickle.loads(pickle.dumps(columns)) == columns
    assert len(pickle.dumps(columns)) < len(pickle.dumps(columns.__getstate__()))  # one string per column
    for odd in (  # values the compact form cannot carry are kept as they are
        RequestColumns.of_lines(["c"], [2**64], ["/a"], ["200"], ["0.5"]),
        RequestColumns.of_lines(["c", "c"], [1, 2], ["/a\nb", "/"], ["200", "200"], ["0.5", "1"]),
    ):
        assert pickle.loads(pickle.dumps(odd)) == odd
    assert pickle.loads(pickle.dumps(RequestColumns())) == RequestColumns()


def test_a_chunk_encodes_its_columns_as_the_lines_of_each_customers_batch() -> None:
    """The unscored path encodes a whole chunk's columns at once: the lines of each customer's batch,
    one customer after the other in order of first request, escaping decided over the chunk (one
    customer's quote must not change another's bytes, and must be escaped)."""
    requests = RequestColumns.of_lines(
        ["a", "b", "c", "a", "c", "c"],
        [3, 2, 7, 1, 8, 9],
        ["/x", '/q"x', "/a\\b", "/y", "/", "/z"],
        ["200", "404", "301", "503", "500", "200"],
        ["0.5", "0", "9", "1.250", "0.001", "12"],
    )
    batches = requests.batches()
    assert list(batches) == ["a", "b", "c"] and batches["a"].times == [3, 1]
    expected = [line for b in batches.values() for line in request_lines(ScoredBatch(b))]
    order, starts = requests.customer_order()
    assert columns_request_lines(requests, order) == expected
    assert starts == [0, 2, 3]
    one = RequestColumns.of_lines(["a"], [3], ["/x"], ["200"], ["0.5"])
    assert columns_request_lines(one, one.customer_order()[0]) == request_lines(ScoredBatch(one.batches()["a"]))
    empty = RequestColumns()
    assert columns_request_lines(empty, empty.customer_order()[0]) == []


def random_rows(rng: random.Random, n: int, measurement: str, window_ns: int) -> RollupRows:
    customers = [rng.choice(["a", "b-1", "c.d", "*"]) for _ in range(n)]
    sums = [rng.choice([0, 1_000_000, rng.randrange(10**15), rng.randrange(2**53, 2**80)]) for _ in range(n)]
    tables = {
        i: tuple(rng.choice(["", "1;2;1111;m;AAAA"]) for _ in range(rng.randrange(0, 9)))
        for i, c in enumerate(customers)
        if c == "*"
    }
    return RollupRows(
        measurement,
        window_ns,
        customers,
        [rng.randrange(2**62) for _ in range(n)],
        [rng.randrange(1, 10**6) for _ in range(n)],
        [rng.randrange(0, 10**3) for _ in range(n)],
        [rng.choice([-1, 0, 7, 10**6]) for _ in range(n)],
        sums,
        [rng.choice(["2e;1;5;0;1;AAE=", "2a;x"]) for _ in range(n)],
        tables,
    )


def test_rollup_rows_encode_byte_for_byte_as_each_point() -> None:
    """The bulk encoding of the rollup step's columns is `rollup_line` of every point: unknown
    server errors left out, sums past 2**53 and int64, fleet points with their tables."""
    rng = random.Random(5)
    for n in (0, 1, 2, 50):
        for known in (True, False):
            rows = random_rows(rng, n, "rollups_1h", 3600 * 10**9)
            if known:
                rows.server_errors = [max(e, 0) for e in rows.server_errors]
            expected = [rollup_line(rows.point(i)) for i in range(n)]
            assert rollup_rows_lines(rows) == expected
            for line, errors in zip(expected, rows.server_errors, strict=True):
                assert (",server_errors=" in line) == (errors >= 0)


def test_rollup_rows_encode_a_range_as_those_points() -> None:
    """The sink encodes a large flush one write request at a time: each range is the same bytes
    as those points of the whole encoding, fleet points (and their tables) in any range included."""
    rng = random.Random(11)
    rows = random_rows(rng, 60, "rollups", 900 * 10**9)
    whole = rollup_rows_lines(rows)
    assert rows.tables, "the sample holds fleet points"
    for start, stop in ((0, 60), (0, 7), (7, 31), (31, 60), (59, 60), (60, 60), (13, 200)):
        assert rollup_rows_lines(rows, start, stop) == whole[start:stop]
    assert [line for i in range(0, 60, 7) for line in rollup_rows_lines(rows, i, i + 7)] == whole


def test_a_shard_s_scored_rows_encode_as_the_lines_of_each_customers_scored_batch() -> None:
    """The scorer hands the sink a shard's rows with their scores (`ScoredRows`): encoded in one pass,
    they must be the lines of each customer's scored batch, one customer after the other, escaping
    and scores (also those of 100 and more, formatted rather than looked up) as per batch."""
    requests = RequestColumns.of_lines(
        ["a", "b", "c", "a", "c", "c", "d"],
        [3, 2, 7, 1, 8, 9, 4],
        ["/x", '/q"x', "/a\\b", "/y", "/", "/z", "/w"],
        ["200", "404", "301", "503", "500", "200", "200"],
        ["0.5", "0", "9", "1.250", "0.001", "12", "3"],
    )
    (_, item), *others = by_shard(requests, 1)
    assert not others and item.customers == ["a", "b", "c", "d"]
    scores = np.array([0.0, 1.25, 123.456, 0.004, 7.0, 99.995, 2.5])
    expected = []
    for i, b in enumerate(item.batches()):
        expected += request_lines(ScoredBatch(b, scores[item.bounds[i] : item.bounds[i + 1]]))
    times, paths, statuses, durations = requests.taken(item.rows)
    got = scored_rows_lines(item.customers, item.bounds, times, paths, statuses, durations, scores)
    assert got == expected
    assert any('\\"' in line for line in got) and any(",anomaly_score=123.46 " in line for line in got)
