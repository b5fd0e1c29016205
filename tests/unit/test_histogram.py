"""LatencyHistogram against a sort-based reference (README definitions, InfluxQL's MEDIAN / PERCENTILE)."""

from __future__ import annotations

import base64
import math
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logpulse.storage.histogram import (
    ALPHA,
    MAX_ENCODED_CHARS,
    MAX_EXACT_DISTINCT,
    HistogramDecodeError,
    LatencyHistogram,
    decode_many,
)
from logpulse.storage.histogram_runs import HistogramColumns


def ref_median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def ref_percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    i = math.floor(float(len(s)) * p / 100.0 + 0.5) - 1  # InfluxDB 1.x: ReducePercentile
    return s[min(len(s) - 1, max(0, i))]


millis = st.integers(min_value=0, max_value=120_000)
ms_lists = st.lists(millis, min_size=1, max_size=400)
percentiles = st.sampled_from([0.1, 1, 25, 50, 90, 95, 99, 99.9, 100])


def as_text(ms: list[int]) -> list[str]:
    """The log's text form: seconds with 3 decimals (what the batch's duration column holds)."""
    return [f"{m // 1000}.{m % 1000:03d}" for m in ms]


@settings(deadline=None)  # a loaded shared machine must not fail a correctness test
@given(ms_lists, percentiles)
def test_exact_quantiles_equal_sorting(ms: list[int], p: float) -> None:
    text = as_text(ms)
    values = [float(t) for t in text]
    h = LatencyHistogram.from_text(text)
    assert h.exact and h.quantiles_label == "exact"
    assert h.count == len(ms)
    assert h.median() == ref_median(values)
    assert h.percentile(p) == ref_percentile(values, p)


@settings(deadline=None)  # a loaded shared machine must not fail a correctness test
@given(st.lists(ms_lists, min_size=1, max_size=8), percentiles)
def test_exact_merge_of_parts_equals_whole(parts: list[list[int]], p: float) -> None:
    """Windows merged (in place, and through encode → merge_many) rank like all raw durations sorted."""
    whole = [float(t) for part in parts for t in as_text(part)]
    merged = LatencyHistogram()
    encoded = []
    for part in parts:
        h = LatencyHistogram.from_text(as_text(part))
        merged.merge(h)
        encoded.append(h.encode())
    many = LatencyHistogram.merge_many(encoded)
    assert merged == many
    assert many.exact and many.count == len(whole)
    assert many.median() == ref_median(whole)
    assert many.percentile(p) == ref_percentile(whole, p)
    assert merged == LatencyHistogram.from_values(whole)


@settings(deadline=None)  # a loaded shared machine must not fail a correctness test
@given(ms_lists)
def test_encode_decode_round_trip(ms: list[int]) -> None:
    h = LatencyHistogram.from_text(as_text(ms))
    text = h.encode()
    assert text.isascii() and '"' not in text and "\\" not in text and "\n" not in text
    assert LatencyHistogram.decode(text) == h


fine = st.floats(min_value=1e-6, max_value=100.0, allow_nan=False, allow_infinity=False)


@settings(deadline=None)  # a loaded shared machine must not fail a correctness test
@given(st.lists(st.one_of(fine, millis.map(lambda m: m / 1000)), min_size=1, max_size=400), percentiles)
def test_approximate_within_relative_error(values: list[float], p: float) -> None:
    """With finer-than-ms durations the histogram is approximate and every rank is within ALPHA."""
    h = LatencyHistogram.from_values(values)
    if not h.exact:
        assert h.quantiles_label == "approximate"
    assert h.count == len(values)
    want = ref_percentile(values, p)
    got = h.percentile(p)
    assert got is not None
    assert abs(got - want) <= ALPHA * want + 1e-12
    med = h.median()
    assert med is not None
    assert abs(med - ref_median(values)) <= ALPHA * ref_median(values) + 1e-12
    assert LatencyHistogram.decode(h.encode()) == h


@settings(deadline=None)  # a loaded shared machine must not fail a correctness test
@given(st.lists(ms_lists, min_size=1, max_size=5), st.lists(fine, min_size=1, max_size=50), percentiles)
def test_exact_merged_with_approximate_is_approximate(parts: list[list[int]], extra: list[float], p: float) -> None:
    approx = LatencyHistogram.from_values(extra)
    encoded = [LatencyHistogram.from_text(as_text(part)).encode() for part in parts]
    many = LatencyHistogram.merge_many([*encoded, approx.encode()])
    values = [float(t) for part in parts for t in as_text(part)] + extra
    assert many.count == len(values)
    if not approx.exact:
        assert not many.exact
    got = many.percentile(p)
    want = ref_percentile(values, p)
    assert got is not None and abs(got - want) <= ALPHA * want + 1e-12


def test_finer_than_a_millisecond_turns_approximate() -> None:
    h = LatencyHistogram.from_text(["0.532", "0.5321"])
    assert not h.exact and h.quantiles_label == "approximate"
    assert h.count == 2


def test_zero_durations_are_kept_in_both_modes() -> None:
    h = LatencyHistogram.from_text(["0.000", "0.000", "0.004"])
    assert h.exact and h.median() == 0.0 and h.percentile(99) == 0.004
    h.add([0.0001])
    assert not h.exact and h.count == 4 and h.percentile(50) == 0.0
    assert h.median() == pytest.approx(0.00005, rel=ALPHA)


def test_too_many_distinct_values_turn_approximate_but_merges_do_not() -> None:
    many_values = [m / 1000 for m in range(MAX_EXACT_DISTINCT + 1)]
    assert not LatencyHistogram.from_values(many_values).exact
    half = len(many_values) // 2
    a = LatencyHistogram.from_values(many_values[:half])
    a.merge(LatencyHistogram.from_values(many_values[half:]))
    assert a.exact and a.count == len(many_values)  # a month of windows stays exact


def test_an_encoding_stays_under_the_string_field_limit() -> None:
    wide = LatencyHistogram.merge_many(
        [
            LatencyHistogram.from_values([m * 7919 % 10_000_000 / 1000 for m in range(i, 200_000, 50)]).encode()
            for i in range(50)
        ]
    )
    assert wide.exact
    text = wide.encode()
    assert len(text) <= MAX_ENCODED_CHARS
    assert LatencyHistogram.decode(text).count == wide.count


def test_empty() -> None:
    h = LatencyHistogram()
    assert h.count == 0 and h.median() is None and h.percentile(99) is None
    assert LatencyHistogram.decode(h.encode()) == h
    assert LatencyHistogram.merge_many([]) == h


@pytest.mark.parametrize(
    "bad", ["", "2e;1;0;0;1;AA", "1e;1;0;0;1;not-base64!", "1e;2;0;0;1;eJxjYAAAAAIAAQ==", "1e;1;0;0;3;"]
)
def test_bad_encodings_raise_a_clear_error(bad: str) -> None:
    with pytest.raises(HistogramDecodeError):
        LatencyHistogram.decode(bad)
    good = LatencyHistogram.from_values([0.1, 0.2]).encode()
    with pytest.raises(HistogramDecodeError):
        decode_many([good, bad, good])


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(min_value=0, max_value=70_000), max_size=300).map(lambda ms: [m / 1000 for m in ms])
        | st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), min_size=1, max_size=50),
        max_size=12,
    )
)
def test_decode_many_equals_decoding_each(windows: list[list[float]]) -> None:
    """Exact and approximate, 1- to 4-byte widths, zlib'd or not, empty: the batch decode is per-text decode."""
    encoded = [LatencyHistogram.from_values(w).encode() for w in windows]
    exact, row, keys, counts = decode_many(encoded)
    for i, text in enumerate(encoded):
        one = LatencyHistogram.decode(text)
        assert exact[i] == one.exact
        mine = row == i
        assert keys[mine].tolist() == one._keys.tolist() and counts[mine].tolist() == one._counts.tolist()


def test_negative_or_nan_durations_are_refused() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        LatencyHistogram.from_values([-0.001])
    with pytest.raises(ValueError, match="finite"):
        LatencyHistogram.from_values([float("nan")])


@settings(max_examples=20, deadline=None)
@given(st.integers(min_value=1, max_value=2**40), st.booleans())
def test_large_counts_survive_encoding(n: int, compressed: bool) -> None:
    payload = b"\x00" * 8 + n.to_bytes(8, "little")  # one (delta 0, count n) pair, 8-byte width
    body = base64.b64encode(zlib.compress(payload) if compressed else payload).decode()
    h = LatencyHistogram.decode(f"1e;1;532;0;8{'z' if compressed else ''};{body}")
    assert h.count == n and h.percentile(99) == 0.532
    assert LatencyHistogram.decode(h.encode()) == h


def test_many_windows_of_mixed_widths_and_modes_merge_like_one() -> None:
    rng = np.random.default_rng(7)
    windows = [np.round(rng.lognormal(-1.5, 1.0, int(rng.integers(1, 3000))), 3) for _ in range(200)]
    windows[17] = windows[17] + 1e-4  # one approximate window
    whole = np.concatenate(windows).tolist()
    many = LatencyHistogram.merge_many(LatencyHistogram.from_values(w).encode() for w in windows)
    assert not many.exact and many.count == len(whole)
    for p in (50, 90, 99, 99.9):
        want = ref_percentile(whole, p)
        assert abs(many.percentile(p) - want) <= ALPHA * want  # type: ignore[operator]
    exact_only = windows[:17] + windows[18:]
    whole = np.concatenate(exact_only).tolist()
    many = LatencyHistogram.merge_many(LatencyHistogram.from_values(w).encode() for w in exact_only)
    assert many.exact and many.median() == ref_median(whole) and many.percentile(99) == ref_percentile(whole, 99)


def test_many_rows_encode_as_each_histogram_alone() -> None:
    """`HistogramColumns.encode` builds the texts of many rows in bulk; each must be byte for byte what
    one `LatencyHistogram` of the same values gives: rows of every payload width (counts and gaps
    up to 2**40), rows too small to compress, compressible ones, incompressible large ones (random
    keys), ones past `max_exact`, and one whose exact text passes MAX_ENCODED_CHARS."""
    rng = np.random.default_rng(11)
    max_exact = 16384
    shapes: list[tuple[np.ndarray, np.ndarray]] = []
    for row in range(400):
        kind = row % 8
        n = int(rng.integers(1, 4)) if kind < 3 else int(rng.integers(40, 600))
        if kind == 6:
            n = max_exact + 5  # past max_exact: approximate
        top = [200, 60_000, 2**31, 2**40][row % 4] if kind != 5 else 5_000
        keys = np.unique(rng.integers(0, top, n))
        counts = rng.integers(1, [3, 300, 70_000, 2**33][(row // 4) % 4], len(keys))
        shapes.append((keys, counts))
    wide = np.arange(0, 12_000 * 2**33, 2**33)  # 8-byte deltas, 12,000 distinct: past 60,000 characters
    shapes.append((wide, np.full(len(wide), 2**40)))
    cols = HistogramColumns()
    for row, (keys, counts) in enumerate(shapes):
        cols.add_ms(np.full(len(keys), row, dtype=np.int64), keys.astype(np.int64), counts.astype(np.int64))
    order = rng.permutation(len(shapes)).astype(np.int64)
    texts = cols.encode(order, max_exact)
    for row, text in zip(order.tolist(), texts, strict=True):
        h = LatencyHistogram(max_exact)
        h.add_ms_counts(shapes[row][0].astype(np.int64), shapes[row][1].astype(np.int64))
        assert text == h.encode(), row
    assert any(";8z;" in t or ";2z;" in t for t in texts) and any(t.startswith("1a;") for t in texts)
