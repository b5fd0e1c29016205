"""The values that flow through the dataflow, in the order they flow.

source  --Chunk-->  LOG_FORMAT parser  --ParsedChunk (RequestColumns across customers)-->
        rollups, and the sink (scoring off) or (shard, ShardRequests: its rows of the chunk) --scoring-->
        ScoredRows per shard (+ a ScoredBatch per customer with incidents) --> sink (line protocol to InfluxDB)
The chunk's numbers (`RequestValues`) are made once, for the rollups and scoring alike.
Rejected lines leave as `Reject` to the dead-letter file.

Batches are columnar (one list per field) because per-item engine overhead and per-line Python calls
dominate the cost of a stream processor written in Python: a few items of many lines each are cheap.
"""

from __future__ import annotations

import hashlib
import itertools
import operator
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Chunk:
    """Complete lines read from one file: what the source emits.

    `file_key` identifies the file's content (a fingerprint of its first line), so that the same line
    read again (replay after a crash, the same file ingested twice, a renamed file picked up again)
    maps to the same InfluxDB point. `offset` is the byte offset of `data[0]` in that file.
    """

    path: str
    file_key: int
    offset: int
    data: bytes


@dataclass(slots=True)
class RequestBatch:
    """One customer's requests from one chunk, as columns.

    `times` are nanoseconds since the epoch, already made unique per point (see `formats.logpulse.point_time`).
    `statuses` and `durations` keep the validated text of the log so that encoding them again costs
    nothing; `status_codes` / `duration_values` give numbers for scoring.
    """

    customer_id: str
    times: list[int] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    durations: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.times)

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        """Compact pickling for the exchange between cluster processes (keyed by shard or customer): one
        string per text column and the times as raw int64 bytes, not one object per value."""
        return _unpack_batch, (
            self.customer_id,
            array("q", self.times).tobytes(),
            "\n".join(self.paths),
            "\n".join(self.statuses),
            "\n".join(self.durations),
        )


def _unpack_batch(customer_id: str, times: bytes, paths: str, statuses: str, durations: str) -> RequestBatch:
    if not times:
        return RequestBatch(customer_id)
    t = array("q")
    t.frombytes(times)
    return RequestBatch(customer_id, t.tolist(), paths.split("\n"), statuses.split("\n"), durations.split("\n"))


@dataclass(frozen=True, slots=True)
class Reject:
    """A line that was refused: where it is, what it was, why, and which check refused it.

    `kind` is `format` (the line does not fit LOG_FORMAT), a field name (`time`, `status`,
    `duration`, `customer_id`, `path`: the line parsed but a value is not plausible, see
    `formats.validate`) or `influxdb` (InfluxDB refused the point; `line` is then the point)."""

    path: str
    offset: int
    line: str
    reason: str
    kind: str = "format"


@dataclass(slots=True, eq=False)
class RequestColumns:
    """A chunk's accepted requests across all its customers, as columns in line order.

    Why across customers: with 10,000 customers a chunk holds thousands of customers of one or two
    lines each, and a `RequestBatch` per customer cost more than parsing their lines (profiled). The
    rollups, the scorer (a shard's rows of them, `ShardRequests`) and the raw points' encoder read
    these columns; per-customer batches are built (`batches`) for a scored shard's output and for
    reading one line back (`LineRecord`).

    `customers` are the distinct stored customer ids, numbered in the order of their first request
    here; `codes` gives each request's customer number. `times` are Python ints (a time beyond int64
    nanoseconds is possible until `formats.validate` refuses it); the text columns are as in
    `RequestBatch`."""

    customers: list[str] = field(default_factory=list)
    codes: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    times: list[int] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    durations: list[str] = field(default_factory=list)
    _values: RequestValues | None = field(default=None, repr=False, kw_only=True)

    def __len__(self) -> int:
        return len(self.times)

    def values(self) -> RequestValues:
        """The requests as numbers, made on first use and shared by the rollups and scoring (the
        columns are never changed once parsed: a step that changes them makes new `RequestColumns`)."""
        if self._values is None:
            self._values = RequestValues.of(self)
        return self._values

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        """Compact pickling for the exchange between cluster processes (a chunk keyed by file): one
        string per text column and the times as raw int64 bytes, as `RequestBatch` does; the plain
        columns when a value would not survive that (a newline in a text, a time beyond int64)."""
        texts = ["\n".join(column) for column in (self.customers, self.paths, self.statuses, self.durations)]
        fits = not self.times or (min(self.times) >= -(2**63) and max(self.times) < 2**63)
        lengths = (len(self.customers), len(self.times), len(self.times), len(self.times))
        if not fits or any(t.count("\n") != max(n - 1, 0) for t, n in zip(texts, lengths, strict=True)):
            return RequestColumns, (self.customers, self.codes, self.times, self.paths, self.statuses, self.durations)
        return _unpack_columns, (self.codes, array("q", self.times).tobytes(), *texts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RequestColumns):
            return NotImplemented
        return (
            self.customers == other.customers
            and np.array_equal(self.codes, other.codes)
            and (self.times, self.paths, self.statuses, self.durations)
            == (other.times, other.paths, other.statuses, other.durations)
        )

    @classmethod
    def of_lines(
        cls, customers: list[str], times: list[int], paths: list[str], statuses: list[str], durations: list[str]
    ) -> RequestColumns:
        """From one customer id per request: numbered in order of first request, in C-level passes."""
        numbers: dict[str, int] = dict.fromkeys(customers, 0)
        for i, name in enumerate(numbers):
            numbers[name] = i
        codes = np.fromiter(map(numbers.__getitem__, customers), np.int64, len(customers))
        return cls(list(numbers), codes, times, paths, statuses, durations)

    @classmethod
    def concat(cls, parts: list[RequestColumns]) -> RequestColumns:
        """The requests of `parts` one after the other, customers numbered again in order of first request."""
        if len(parts) == 1:
            return parts[0]
        chain = itertools.chain.from_iterable
        return cls.of_lines(
            list(chain(map(p.customers.__getitem__, p.codes.tolist()) for p in parts)),
            list(chain(p.times for p in parts)),
            list(chain(p.paths for p in parts)),
            list(chain(p.statuses for p in parts)),
            list(chain(p.durations for p in parts)),
        )

    def renamed(self, names: list[str]) -> RequestColumns:
        """The same requests with customer i called `names[i]` (two numbers may get one name)."""
        if len(set(names)) == len(names):
            return RequestColumns(names, self.codes, self.times, self.paths, self.statuses, self.durations)
        return RequestColumns.of_lines(
            list(map(names.__getitem__, self.codes.tolist())), self.times, self.paths, self.statuses, self.durations
        )

    def customer_order(self) -> tuple[npt.NDArray[np.int64], list[int]]:
        """The requests sorted by customer, each customer's in line order (a stable sort), and where
        each customer's run starts in that order (customers all have one, in number order)."""
        order = np.argsort(self.codes, kind="stable")
        sorted_codes = self.codes[order]
        starts = np.flatnonzero(np.concatenate(([True], sorted_codes[1:] != sorted_codes[:-1])))
        return order, starts.tolist()

    def taken(self, order: npt.NDArray[np.int64]) -> tuple[list[int], list[str], list[str], list[str]]:
        """The times, paths, statuses and durations taken in `order` (e.g. `customer_order`'s)."""
        ordered = order.tolist()
        if not ordered:
            return [], [], [], []
        pick = operator.itemgetter(*ordered) if len(ordered) > 1 else (lambda column: (column[ordered[0]],))
        return list(pick(self.times)), list(pick(self.paths)), list(pick(self.statuses)), list(pick(self.durations))

    def batches(self) -> dict[str, RequestBatch]:
        """One `RequestBatch` per customer, in line order, in order of the customers' first requests:
        what appending each line to its customer's batch gives."""
        if not self.times:
            return {}
        order, starts = self.customer_order()
        times, paths, statuses, durations = self.taken(order)
        ends = [*starts[1:], len(order)]
        return {
            name: RequestBatch(name, times[a:b], paths[a:b], statuses[a:b], durations[a:b])
            for name, a, b in zip(self.customers, starts, ends, strict=True)
        }


@dataclass(slots=True)
class RequestValues:
    """A chunk's requests as numbers, in line order: what the rollups and scoring compute with.

    Why shared: turning every line's time, status and duration text into numbers is a per-line cost,
    and both the rollup step and the scorer need the same numbers of the same chunk."""

    times: npt.NDArray[np.int64]
    failed: npt.NDArray[np.bool_]  # status >= 400
    server_errors: npt.NDArray[np.bool_]  # status >= 500
    durations: npt.NDArray[np.float64]  # seconds

    @classmethod
    def of(cls, requests: RequestColumns) -> RequestValues:
        n = len(requests.times)
        failed, server_errors = _status_flags(requests.statuses)
        return cls(
            np.fromiter(requests.times, np.int64, n),
            failed,
            server_errors,
            np.fromiter(map(float, requests.durations), np.float64, n),
        )

    def take(self, rows: npt.NDArray[np.int64]) -> RequestValues:
        return RequestValues(self.times[rows], self.failed[rows], self.server_errors[rows], self.durations[rows])


def _status_flags(statuses: list[str]) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """(status >= 400, status >= 500) per line: statuses are 3 digits, so the first byte of each decides
    (one join and numpy comparisons instead of a Python call per line; measured 9x faster)."""
    n = len(statuses)
    joined = "".join(statuses).encode("ascii", "replace")
    if len(joined) == 3 * n:
        first = np.frombuffer(joined, dtype=np.uint8)[0::3]
        return first >= ord("4"), first >= ord("5")
    return (
        np.fromiter(map("400".__le__, statuses), np.bool_, n),
        np.fromiter(map("500".__le__, statuses), np.bool_, n),
    )


@dataclass(slots=True, eq=False)
class ShardRequests:
    """One scoring shard's requests of a chunk: rows of the chunk's columns, customer by customer.

    A view, not a copy: `rows` index the chunk's `RequestColumns` (and its `values()`), so splitting a
    chunk between shards costs a sort of its customer numbers, not a step per line. `customers` are
    the shard's customers in order of their first request in the chunk, customer i's requests are
    `rows[bounds[i]:bounds[i + 1]]`, in line order. Pickled (the exchange between cluster workers,
    keyed by shard) it carries only its own rows."""

    requests: RequestColumns
    rows: npt.NDArray[np.int64]
    customers: list[str]
    bounds: list[int]

    def __len__(self) -> int:
        return len(self.rows)

    def values(self) -> RequestValues:
        return self.requests.values().take(self.rows)

    def batches(self) -> list[RequestBatch]:
        """One `RequestBatch` per customer, in `customers` order."""
        times, paths, statuses, durations = self.requests.taken(self.rows)
        return [
            RequestBatch(name, times[a:b], paths[a:b], statuses[a:b], durations[a:b])
            for name, a, b in zip(self.customers, self.bounds, self.bounds[1:], strict=False)
        ]

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        if len(self.rows) == len(self.requests):  # all of the chunk's rows: nothing to leave out
            return ShardRequests, (self.requests, self.rows, self.customers, self.bounds)
        codes = np.repeat(np.arange(len(self.customers), dtype=np.int64), np.diff(self.bounds))
        own = RequestColumns(self.customers, codes, *self.requests.taken(self.rows))
        return ShardRequests, (own, np.arange(len(self.rows), dtype=np.int64), self.customers, self.bounds)


def _unpack_columns(
    codes: npt.NDArray[np.int64], times: bytes, customers: str, paths: str, statuses: str, durations: str
) -> RequestColumns:
    if not times:
        return RequestColumns(customers.split("\n") if customers else [], codes)
    t = array("q")
    t.frombytes(times)
    return RequestColumns(
        customers.split("\n"), codes, t.tolist(), paths.split("\n"), statuses.split("\n"), durations.split("\n")
    )


@dataclass(slots=True)
class ParsedChunk:
    """The result of parsing one chunk: accepted lines as columns across customers, and the rejects."""

    requests: RequestColumns
    rejects: list[Reject]
    lines: int  # lines seen (accepted + rejected)
    path: str = ""  # the file read (set by the dataflow; the stream clock is kept per file)
    span: tuple[int, int, int] = (0, 0, 0)  # (file_key, first byte, end byte) of the chunk: rollup identity

    _batches: tuple[RequestColumns, dict[str, RequestBatch]] | None = field(default=None, repr=False, compare=False)

    @property
    def batches(self) -> dict[str, RequestBatch]:
        """The accepted lines grouped by customer: built on first use, then the same objects until
        `requests` is replaced."""
        cached = self._batches
        if cached is None or cached[0] is not self.requests:
            cached = self._batches = (self.requests, self.requests.batches())
        return cached[1]


INCIDENT_KINDS = ("latency", "errors", "traffic_drop", "traffic_surge", "slo_burn")
INCIDENT_STATUSES = ("open", "resolved")


@dataclass(frozen=True, slots=True)
class Incident:
    """A stretch of anomalous behaviour of one customer, stored in the `anomalies` measurement.

    Its identity is (customer_id, kind, start_ns), and `id` is derived from it: an incident that grows
    is rewritten in place, a replay after a crash rewrites the same point and re-sends the same
    alert id (receivers deduplicate on it).
    """

    customer_id: str
    kind: str  # "latency" | "errors" | "traffic_drop" | "traffic_surge" | "slo_burn"
    start_ns: int
    end_ns: int  # end of the last anomalous bucket so far
    peak_score: float
    requests: int
    # lifecycle: the same incident is written again as it grows and resolves
    status: str = "open"  # "open" | "resolved"
    ended_ns: int | None = None  # set once resolved
    summary: str = ""
    detected_ns: int = 0  # stream time at which the incident was first reported
    new_normal: bool = False  # resolved because the change lasted: the baseline re-learnt it

    @property
    def id(self) -> str:
        """Stable across restarts and replays: a hash of customer, kind and start."""
        return incident_id(self.customer_id, self.kind, self.start_ns)


def incident_id(customer_id: str, kind: str, start_ns: int) -> str:
    return hashlib.blake2b(f"{customer_id}|{kind}|{start_ns}".encode(), digest_size=8).hexdigest()


Scores = npt.NDArray[np.float64]
"""Anomaly scores, one per request, rounded to 0.01."""


@dataclass(slots=True)
class ScoredBatch:
    """A customer's batch after scoring: one anomaly score per request plus incidents to upsert."""

    batch: RequestBatch
    scores: Scores | None = None
    incidents: list[Incident] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class ScoredRows:
    """A shard's requests of one chunk after scoring: its rows of the chunk (`ShardRequests`) and one
    anomaly score per row, in the same order. The raw points are encoded from it in one pass over
    the shard, not per customer (at 10,000 customers most customers have a line or two per chunk, and
    a batch object and an encoding call each cost more than their lines). Incidents travel beside it
    as `ScoredBatch`es of their customers."""

    requests: ShardRequests
    scores: Scores


Scored = ScoredBatch | ScoredRows
"""What the `score` step emits, a list per shard and item."""


@dataclass(frozen=True, slots=True)
class Tick:
    """The stream clock reached `time_ns` (event time): sent to every scoring shard, so that a
    customer who went silent is still scored (its empty buckets complete) while others' logs move on.

    `joined`: the customers the clock met since its previous tick (a shard's share of them once fanned
    out): a tick completes only customers the clock had met when it passed, as chunks and ticks reach
    a shard by different paths and a tick may overtake the chunk that made it."""

    time_ns: int
    joined: tuple[str, ...] = ()


# ----- rollups ---------------------------------------------------------------------------------


@dataclass(slots=True)
class RollupPoint:
    """One rollup point: the cumulative aggregate of one identity (see rollups/identity.py) in one window.

    `time_ns` = window start + identity offset; `sum_ns` is the exact sum of durations in nanoseconds;
    `hist` is `LatencyHistogram.encode()`. `server_errors` (status >= 500, the SLO's count) is None
    only when unknown (a state restored from a snapshot taken before the field existed): the point is
    then written without it, so readers see the gap instead of a made-up 0.

    Not frozen, though never changed once built: a frozen dataclass's `__init__` sets each field
    through `object.__setattr__`, 5x the cost (measured 2.9 µs vs 0.5 µs), and the rollup step builds
    one per customer-window (~700,000 for a day of 10,000 customers).
    """

    measurement: str
    customer_id: str
    time_ns: int
    window_ns: int
    count: int
    failed: int
    server_errors: int | None
    sum_ns: int
    hist: str
    tables: tuple[str, ...] = ()
    """Fleet-wide (`*`) points only: the packed per-customer table parts (`storage.fleet_table`)."""


@dataclass(slots=True)
class RollupRows:
    """Rollup points of one level as columns, one entry per point: what the rollup step emits.

    Columns rather than a `RollupPoint` per point: one flush at 10,000 customers holds ~700,000 points,
    and building an object per point cost more than encoding its line (profiled); the sink encodes all
    of them in one pass (`storage.points.rollup_rows_lines`). The step emits them grouped by series
    (customer) and in time order within each, the order in which InfluxDB stores points cheapest.
    `server_errors` is -1 where unknown (the point is then written without the field, see
    `RollupPoint`); `tables` holds the packed tables of the fleet-wide (`*`) points, by index.
    The step gives the numbers as `array("q")` (8 bytes a number; a list of ints costs ~40 for a
    time or a sum, ~45 MB of a flush's peak at 10,000 customers), `sum_ns` as a list only when a
    sum passes int64."""

    measurement: str
    window_ns: int
    customers: list[str]
    time_ns: Sequence[int]
    count: Sequence[int]
    failed: Sequence[int]
    server_errors: Sequence[int]
    sum_ns: Sequence[int]
    hists: list[str]
    tables: dict[int, tuple[str, ...]] = field(default_factory=dict)
    bounds: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Per customer: the first and the last nanosecond of the windows of its points (for the sink's
    cache-invalidation marks)."""

    def __len__(self) -> int:
        return len(self.customers)

    def point(self, i: int) -> RollupPoint:
        server = self.server_errors[i]
        return RollupPoint(
            self.measurement,
            self.customers[i],
            self.time_ns[i],
            self.window_ns,
            self.count[i],
            self.failed[i],
            None if server < 0 else server,
            self.sum_ns[i],
            self.hists[i],
            self.tables.get(i, ()),
        )


@dataclass(slots=True)
class RollupBatch:
    """Rollup points emitted together (one flush of one file's rollup state), one `RollupRows` per
    level and segment flushed, and the seals of the segments that closed (`storage/seals.py`): the sink
    writes those only once every point before them is acknowledged."""

    rows: list[RollupRows]
    seals: list[str] = field(default_factory=list)
    """Line protocol of the seals (`storage.seals.Seal.line`)."""

    @property
    def points(self) -> list[RollupPoint]:
        """The points as objects (for readers that want one value per point, not the sink)."""
        return [r.point(i) for r in self.rows for i in range(len(r))]
