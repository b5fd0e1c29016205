"""The mergeable latency histogram of rollup points: encode, decode, merge, rank.

Shared by the rollup writer (flow) and the API reader, so the encoding lives in one place.

Two modes:

* **exact** — a sparse map of whole-millisecond values → counts. Log durations have millisecond
  resolution (3 decimals; nginx `$request_time` too), so merging the maps of any set of windows
  and ranking gives the same median and p99 as sorting every raw duration (README definitions:
  median = middle value or mean of the two middle ones; pN = value at 1-based rank
  floor(N/100·n + 0.5), at least 1 — InfluxQL's `MEDIAN` and `PERCENTILE`).
* **approximate** — DDSketch-style log buckets: bucket i holds (γ^(i-1), γ^i] seconds with
  γ = (1+α)/(1−α), α = 0.005, and is represented by 2γ^i/(γ+1), so every quantile read from it is
  within 0.5% (relative) of the value of the same rank; zeros have a bucket of their own. A
  histogram becomes approximate when a duration is finer than 1 ms or, when values are added, its
  distinct values exceed `MAX_EXACT_DISTINCT` (which keeps an encoded window far below InfluxDB's
  64 KB string limit). Merging exact with approximate gives approximate, never the reverse.

Merged histograms (the API's month of windows) are not bounded: merging never loses exactness.

Encoding (`encode`, an ASCII string for an InfluxDB string field):
    "1" mode ";" n ";" first_key ";" zeros ";" width ["z"] ";" base64([zlib](n × (key delta, count)))
mode is "e" (keys are milliseconds) or "a" (keys are bucket indices); each key is stored as its
delta from the previous one (the first delta 0, from first_key), next to its count, as unsigned
little-endian integers of the narrowest width (1, 2, 4 or 8 bytes) that holds all of them. One width
and interleaved pairs are what let `merge_many` decode thousands of windows with a handful of numpy
calls in all instead of a dozen per window (measured: ~30 µs → ~6 µs per window, mostly zlib, which
is therefore used only for payloads large enough to gain from it; "z" after the width marks it).
"""

from __future__ import annotations

import base64
import binascii
import math
import zlib
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

Int64Array = npt.NDArray[np.int64]

ALPHA = 0.005
"""Relative error bound of approximate quantiles."""
GAMMA = (1 + ALPHA) / (1 - ALPHA)
_LOG_GAMMA = math.log(GAMMA)
MAX_EXACT_DISTINCT = 4096
"""Distinct millisecond values a histogram may hold while values are added before it turns approximate
(the default; coarse rollup levels pass a larger `max_exact`)."""
MAX_ENCODED_CHARS = 60_000
"""An encoding longer than this (InfluxDB's string field limit is 64 KB) is written approximate instead."""
VERSION = "1"

_EMPTY = np.zeros(0, dtype=np.int64)
WIDTHS = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
_WIDTH_CODES = {f"{w}{z}" for w in WIDTHS for z in ("", "z")}
COMPRESS_FROM = 192
"""Payloads of at least this many bytes are zlib-compressed (when that saves a quarter): below it,
inflating costs more decode time (~4 µs per window) than the bytes it saves are worth."""
_BINCOUNT_MAX_KEY = 1 << 20  # merge by np.bincount below this key (a direct table of ~8 MB at most)


class HistogramDecodeError(ValueError):
    """The text is not an encoding this version understands."""


def _width(max_value: int) -> int:
    for w in (1, 2, 4):
        if max_value < 1 << (8 * w):
            return w
    return 8


def _combine(keys: Int64Array, counts: Int64Array) -> tuple[Int64Array, Int64Array]:
    """Sorted unique keys with the summed counts of equal keys."""
    if len(keys) == 0:
        return _EMPTY, _EMPTY
    lo = int(keys.min())
    hi = int(keys.max())
    if hi - lo < _BINCOUNT_MAX_KEY:
        table = np.bincount(keys - lo, weights=counts, minlength=hi - lo + 1)
        idx = np.flatnonzero(table)
        return (idx + lo).astype(np.int64), table[idx].astype(np.int64)
    uniq, inverse = np.unique(keys, return_inverse=True)
    return uniq.astype(np.int64), np.bincount(inverse, weights=counts).astype(np.int64)


def bucket_index(seconds: npt.NDArray[np.float64]) -> Int64Array:
    """DDSketch bucket of positive durations: ceil(log_γ(x))."""
    return np.ceil(np.log(seconds) / _LOG_GAMMA).astype(np.int64)


def _bucket_value(index: Int64Array) -> npt.NDArray[np.float64]:
    """The value that represents a bucket within ALPHA of every value in it."""
    return 2.0 * np.exp(index.astype(np.float64) * _LOG_GAMMA) / (GAMMA + 1.0)


class LatencyHistogram:
    """A mergeable histogram of request durations (seconds); exact while the input allows it.

    State: sorted unique `keys` with `counts` (milliseconds when exact, bucket indices when
    approximate) and, when approximate, `zeros` (durations of exactly 0).
    """

    __slots__ = ("_counts", "_exact", "_keys", "_max_exact", "_zeros")

    def __init__(self, max_exact: int = MAX_EXACT_DISTINCT) -> None:
        self._max_exact = max_exact
        self._exact = True
        self._keys: Int64Array = _EMPTY
        self._counts: Int64Array = _EMPTY
        self._zeros = 0

    # ----- construction ---------------------------------------------------------------------

    @classmethod
    def _of(cls, exact: bool, keys: Int64Array, counts: Int64Array, zeros: int = 0) -> LatencyHistogram:
        h = cls()
        h._exact, h._keys, h._counts, h._zeros = exact, keys, counts, zeros
        return h

    @classmethod
    def from_values(cls, values: Iterable[float]) -> LatencyHistogram:
        h = cls()
        h.add(values)
        return h

    @classmethod
    def from_text(cls, durations: Sequence[str]) -> LatencyHistogram:
        h = cls()
        h.add_text(durations)
        return h

    # ----- properties -----------------------------------------------------------------------

    @property
    def exact(self) -> bool:
        return self._exact

    @property
    def quantiles_label(self) -> str:
        """ "exact" or "approximate": what the API reports next to every median and p99."""
        return "exact" if self._exact else "approximate"

    @property
    def count(self) -> int:
        return int(self._counts.sum()) + self._zeros

    @property
    def distinct(self) -> int:
        """Stored keys (distinct milliseconds when exact, buckets when approximate)."""
        return len(self._keys) + (1 if self._zeros else 0)

    def __len__(self) -> int:
        return self.count

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LatencyHistogram):
            return NotImplemented
        return (
            self._exact == other._exact
            and self._zeros == other._zeros
            and np.array_equal(self._keys, other._keys)
            and np.array_equal(self._counts, other._counts)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"LatencyHistogram({self.quantiles_label}, count={self.count}, distinct={self.distinct})"

    def items(self) -> list[tuple[float, int]]:
        """(value in seconds, count) in ascending order; approximate values are bucket representatives."""
        values, counts = self._values_counts()
        return list(zip(values.tolist(), counts.tolist(), strict=True))

    # ----- adding ---------------------------------------------------------------------------

    def add_text(self, durations: Sequence[str]) -> None:
        """Add durations given as text in seconds (the batch's column, e.g. "0.532")."""
        if durations:
            self.add(np.fromiter(map(float, durations), np.float64, len(durations)))

    def add(self, values: Iterable[float] | npt.NDArray[np.float64]) -> None:
        """Add durations in seconds (non-negative, finite)."""
        x = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=np.float64)
        if x.size == 0:
            return
        if not np.all(np.isfinite(x)) or x.min() < 0:
            raise ValueError("durations must be finite and non-negative")
        if self._exact:
            ms = np.rint(x * 1000.0)
            if np.all(np.abs(x * 1000.0 - ms) <= 1e-6 + 1e-12 * ms):
                keys, counts = np.unique(ms.astype(np.int64), return_counts=True)
                self.add_ms_counts(keys, counts.astype(np.int64))
                return
            self._to_approximate()
        positive = x[x > 0]
        keys, counts = np.unique(bucket_index(positive), return_counts=True)
        self._merge_arrays(False, keys.astype(np.int64), counts.astype(np.int64), int(x.size - positive.size))

    def add_ms_counts(self, keys: Int64Array, counts: Int64Array) -> None:
        """Add whole-millisecond values (sorted, unique, >= 0) with their counts: the vectorised path of
        the rollup step, which counts many windows' values in one pass."""
        self._merge_arrays(True, keys.copy(), counts.copy(), 0)  # never keep a view of the caller's arrays
        if self._exact and len(self._keys) > self._max_exact:
            self._to_approximate()

    def add_buckets(self, keys: Int64Array, counts: Int64Array, zeros: int) -> None:
        """Add approximate buckets (sorted, unique) with their counts, and zeros: the histogram turns
        approximate (a writer that keeps many histograms as runs, `histogram_runs.py`)."""
        self._merge_arrays(False, keys.copy(), counts.copy(), zeros)

    def key_counts(self) -> tuple[Int64Array, Int64Array]:
        """The stored keys (milliseconds when exact, bucket indices when approximate) and counts."""
        return self._keys, self._counts

    @property
    def zeros(self) -> int:
        """Durations of exactly 0 kept apart from the keys (approximate histograms only)."""
        return self._zeros

    def merge(self, other: LatencyHistogram) -> None:
        """Add every value of `other` (in place). Exact + approximate gives approximate."""
        self._merge_arrays(other._exact, other._keys, other._counts, other._zeros)

    def _merge_arrays(self, exact: bool, keys: Int64Array, counts: Int64Array, zeros: int) -> None:
        if self._exact and not exact:
            self._to_approximate()
        elif exact and not self._exact:
            keys, counts, zeros = _exact_to_buckets(keys, counts)
        if len(self._keys) == 0:
            self._keys, self._counts = keys, counts
        elif len(keys):
            self._keys, self._counts = _combine(
                np.concatenate((self._keys, keys)), np.concatenate((self._counts, counts))
            )
        self._zeros += zeros

    def _to_approximate(self) -> None:
        if self._exact:
            self._keys, self._counts, zeros = _exact_to_buckets(self._keys, self._counts)
            self._zeros += zeros
            self._exact = False

    @classmethod
    def merge_many(cls, encoded: Iterable[str]) -> LatencyHistogram:
        """Decode and merge many encodings in one vectorised pass (the API's month of windows)."""
        by_width: dict[int, list[tuple[bool, int, int, bytes]]] = {}
        zeros = 0
        for text in encoded:
            exact, n, first, z, width, raw = _split(text)
            zeros += z
            if n:
                by_width.setdefault(width, []).append((exact, n, first, raw))
        ex_keys: list[Int64Array] = []
        ex_counts: list[Int64Array] = []
        ap_keys: list[Int64Array] = []
        ap_counts: list[Int64Array] = []
        for width, items in by_width.items():
            exact_flags, keys, counts = _unpack_many(width, items)
            if exact_flags.all():
                ex_keys.append(keys)
                ex_counts.append(counts)
            elif not exact_flags.any():
                ap_keys.append(keys)
                ap_counts.append(counts)
            else:
                ex_keys.append(keys[exact_flags])
                ex_counts.append(counts[exact_flags])
                ap_keys.append(keys[~exact_flags])
                ap_counts.append(counts[~exact_flags])
        # an exact histogram with zeros keeps them under key 0; only approximate ones count `zeros`
        if ex_keys:
            keys, counts = _combine(np.concatenate(ex_keys), np.concatenate(ex_counts))
            if not ap_keys and not zeros:
                return cls._of(True, keys, counts)
            keys, counts, z = _exact_to_buckets(keys, counts)
            ap_keys.append(keys)
            ap_counts.append(counts)
            zeros += z
        elif not ap_keys and not zeros:
            return cls()
        if ap_keys:
            keys, counts = _combine(np.concatenate(ap_keys), np.concatenate(ap_counts))
        else:
            keys, counts = _EMPTY, _EMPTY
        return cls._of(False, keys, counts, zeros)

    # ----- ranks ----------------------------------------------------------------------------

    def _values_counts(self) -> tuple[npt.NDArray[np.float64], Int64Array]:
        if self._exact:
            return self._keys / 1000.0, self._counts
        values = _bucket_value(self._keys)
        if self._zeros:
            return np.concatenate(([0.0], values)), np.concatenate(([self._zeros], self._counts)).astype(np.int64)
        return values, self._counts

    def _at_ranks(self, ranks: Sequence[int]) -> list[float]:
        values, counts = self._values_counts()
        idx = np.searchsorted(np.cumsum(counts), np.asarray(ranks, dtype=np.int64), side="left")
        return [float(v) for v in values[idx]]

    def median(self) -> float | None:
        """The middle value; the mean of the two middle values for an even count (None if empty)."""
        n = self.count
        if n == 0:
            return None
        if n % 2:
            return self._at_ranks([n // 2 + 1])[0]
        a, b = self._at_ranks([n // 2, n // 2 + 1])
        return (a + b) / 2

    def percentile(self, p: float) -> float | None:
        """Nearest rank: 1-based rank floor(p/100·n + 0.5), at least 1 (None if empty)."""
        n = self.count
        if n == 0:
            return None
        rank = min(n, max(1, math.floor(float(n) * p / 100.0 + 0.5)))
        return self._at_ranks([rank])[0]

    # ----- encoding -------------------------------------------------------------------------

    def encode(self) -> str:
        """Compact ASCII (see the module docstring); approximate if the exact form would be too long."""
        text = _encode_arrays(self._exact, self._keys, self._counts, self._zeros)
        if len(text) > MAX_ENCODED_CHARS and self._exact:
            keys, counts, zeros = _exact_to_buckets(self._keys, self._counts)
            text = _encode_arrays(False, keys, counts, zeros)
        return text

    @classmethod
    def decode(cls, text: str) -> LatencyHistogram:
        exact, n, first, zeros, width, raw = _split(text)
        if n == 0:
            return cls._of(exact, _EMPTY, _EMPTY, zeros)
        _, keys, counts = _unpack_many(width, [(exact, n, first, raw)])
        return cls._of(exact, keys, counts, zeros)


def _exact_to_buckets(keys: Int64Array, counts: Int64Array) -> tuple[Int64Array, Int64Array, int]:
    """Exact millisecond keys as approximate buckets (keys, counts, zeros)."""
    if len(keys) == 0:
        return _EMPTY, _EMPTY, 0
    zeros = int(counts[0]) if keys[0] == 0 else 0
    if zeros:
        keys, counts = keys[1:], counts[1:]
    if len(keys) == 0:
        return _EMPTY, _EMPTY, zeros
    buckets, c = _combine(bucket_index(keys / 1000.0), counts)
    return buckets, c, zeros


def _encode_arrays(exact: bool, keys: Int64Array, counts: Int64Array, zeros: int) -> str:
    mode = "e" if exact else "a"
    n = len(keys)
    if n == 0:
        return f"{VERSION}{mode};0;0;{zeros};1;"
    first = int(keys[0])
    deltas = np.empty(n, dtype=np.int64)
    deltas[0] = 0
    np.subtract(keys[1:], keys[:-1], out=deltas[1:])
    width = _width(max(int(deltas.max()), int(counts.max())))
    pairs = np.empty((n, 2), dtype=WIDTHS[width])
    pairs[:, 0] = deltas
    pairs[:, 1] = counts
    payload = pairs.tobytes()
    if len(payload) >= COMPRESS_FROM:
        packed = zlib.compress(payload, 6)
        if len(packed) * 4 < len(payload) * 3:
            body = base64.b64encode(packed).decode("ascii")
            return f"{VERSION}{mode};{n};{first};{zeros};{width}z;{body}"
    return f"{VERSION}{mode};{n};{first};{zeros};{width};{base64.b64encode(payload).decode('ascii')}"


def _split(text: str) -> tuple[bool, int, int, int, int, bytes]:
    """(exact, n, first_key, zeros, width, raw payload) of an encoding; the payload's size checked."""
    try:
        head, n_s, first_s, zeros_s, width_s, body = text.split(";", 5)
        if head != "1e" and head != "1a":
            raise HistogramDecodeError(f"unknown histogram encoding {text[:16]!r}")
        n = int(n_s)
        raw = base64.b64decode(body, validate=True)
        if width_s.endswith("z"):
            width_s = width_s[:-1]
            raw = zlib.decompress(raw)
        width = int(width_s)
        if width not in WIDTHS:
            raise HistogramDecodeError(f"bad histogram width in {text[:24]!r}")
        if len(raw) != 2 * n * width:
            raise HistogramDecodeError(f"histogram payload of {len(raw)} bytes, expected {2 * n * width}")
        return head == "1e", n, int(first_s), int(zeros_s), width, raw
    except HistogramDecodeError:
        raise
    except (ValueError, zlib.error) as exc:
        raise HistogramDecodeError(f"bad histogram encoding {text[:16]!r}: {exc}") from exc


def _unpack_many(
    width: int, items: list[tuple[bool, int, int, bytes]]
) -> tuple[npt.NDArray[np.bool_], Int64Array, Int64Array]:
    """Keys and counts of many payloads of one width, concatenated, with each key's exact flag.

    Every payload is n (delta, count) pairs; the deltas of one payload start at 0, so replacing that
    0 by the payload's first key and taking one running sum over all of them gives every key once the
    running total of the payloads before it is subtracted.
    """
    ns = np.fromiter((it[1] for it in items), np.int64, len(items))
    firsts = np.fromiter((it[2] for it in items), np.int64, len(items))
    flags = np.fromiter((it[0] for it in items), np.bool_, len(items))
    pairs = np.frombuffer(b"".join(it[3] for it in items), dtype=WIDTHS[width]).astype(np.int64).reshape(-1, 2)
    deltas = pairs[:, 0].copy()
    counts = pairs[:, 1].copy()
    key_start = np.cumsum(ns) - ns
    deltas[key_start] = firsts
    running = np.cumsum(deltas)
    keys = running - np.repeat(running[key_start] - firsts, ns)
    return np.repeat(flags, ns), keys, counts


def _split_many(
    encoded: Sequence[str],
) -> tuple[npt.NDArray[np.bool_], Int64Array, Int64Array, Int64Array, list[bytes]]:
    """`_split` of many encodings with one list comprehension per step instead of a call per text:
    (exact flags, n, first keys, widths, raw payloads). The API decodes hundreds of rows per answer
    (a 7-day 15-minute series: 672), where per-text Python calls were most of the decode time.
    Anything malformed is reported by `_split` of the first bad text, with its message."""
    try:
        parts = [text.split(";", 5) for text in encoded]
        heads = [p[0] for p in parts]
        codes = [p[4] for p in parts]
        if not {*heads} <= {"1e", "1a"} or not {*codes} <= _WIDTH_CODES or {*map(len, parts)} - {6}:
            raise ValueError("bad header")
        raws = [
            zlib.decompress(binascii.a2b_base64(p[5], strict_mode=True))
            if p[4][-1] == "z"
            else binascii.a2b_base64(p[5], strict_mode=True)
            for p in parts
        ]
        ns = np.asarray([int(p[1]) for p in parts], dtype=np.int64)
        firsts = np.asarray([int(p[2]) for p in parts], dtype=np.int64)
        widths = np.asarray([int(c[0]) for c in codes], dtype=np.int64)
        if not np.array_equal(np.fromiter(map(len, raws), np.int64, len(raws)), 2 * ns * widths) or (ns < 0).any():
            raise ValueError("bad payload size")
    except (ValueError, IndexError, zlib.error):
        for text in encoded:
            _split(text)  # raises HistogramDecodeError naming the text
        raise HistogramDecodeError("bad histogram encoding") from None  # pragma: no cover (split raised)
    exact = np.asarray([h == "1e" for h in heads], dtype=np.bool_)
    return exact, ns, firsts, widths, raws


def decode_many(
    encoded: Sequence[str],
) -> tuple[npt.NDArray[np.bool_], Int64Array, Int64Array, Int64Array]:
    """Every stored key of many encodings at once, for ranking many groups in one vectorised pass.

    Returns (exact flag per encoding, encoding index per key, keys, counts); keys are milliseconds of
    exact encodings and bucket indices of approximate ones. An approximate encoding's zeros are not
    among the keys: rank groups with approximate members through `merge_many`. (The API's series ranks
    hundreds of windows per answer: one histogram object per group costs ~0.2 ms, this ~µs per window.)
    """
    if not encoded:
        return np.ones(0, dtype=np.bool_), _EMPTY, _EMPTY, _EMPTY
    exact, ns, firsts, widths, raws = _split_many(encoded)
    total = int(ns.sum())
    if total == 0:
        return exact, _EMPTY, _EMPTY, _EMPTY
    # every payload's (delta, count) pairs widened into one int64 array, a block per width, so the
    # keys of all of them are one running sum (as `_unpack_many`, without a pass per width)
    pairs = np.empty(2 * total, dtype=np.int64)
    blocks: list[Int64Array] = []
    at = 0
    for width in np.unique(widths[ns > 0]).tolist():
        rows = np.flatnonzero((widths == width) & (ns > 0))
        block = np.frombuffer(b"".join([raws[i] for i in rows.tolist()]), dtype=WIDTHS[width])
        pairs[at : at + len(block)] = block
        at += len(block)
        blocks.append(rows)
    rows = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
    n, first = ns[rows], firsts[rows]
    key_start = np.cumsum(n) - n
    deltas = pairs[0::2]
    deltas[key_start] = first
    running = np.cumsum(deltas)
    keys = running - np.repeat(running[key_start] - first, n)
    return exact, np.repeat(rows.astype(np.int64), n), keys, pairs[1::2].copy()
