"""The InfluxDB sink: scored batches become line protocol, written in parallel, acknowledged, retried.

Delivery (`process`): `write_batch` returns only once InfluxDB acknowledged every point of the batch. Bytewax
closes an epoch (and commits the source offsets of its snapshot) only after every step, this sink
included, finished the epoch's items, so a resumed processor never skips data that was not
acknowledged; it may write some points again, and because point identity is deterministic
(`storage.points.point_time`) a rewrite replaces the same point instead of adding one.

While InfluxDB is unreachable or answers 5xx, each request is retried with exponential backoff and
jitter (tenacity). After `WRITE_GIVE_UP_S` of failure the sink raises `WriteGaveUp`, the processor
exits non-zero and a supervisor restarts it from its last snapshot. A stop (SIGINT/SIGTERM) ends the
retrying and the process at once (`outage.exit_stopped`): the last snapshot does not cover the points
not written, so the next start reads them again.

A point InfluxDB refuses (400: parse error, field type conflict) never stops the processor: the
body is split until the refused points are found (`flow/sinks/refused.py`); they go to the dead-letter
file with InfluxDB's reason, the others are written and the offsets advance. Only an InfluxDB that
refuses the writer itself (401/403 credentials, 404 no database) stops it, with one line saying
which setting to check.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from tenacity import RetryCallState

from logpulse import metrics
from logpulse.config import Settings
from logpulse.flow.outage import (
    OutageLog,
    StoppedDuringOutage,
    exit_stopped,
    retrying_while_unavailable,
    stopped_or,
)
from logpulse.flow.sinks.deadletter import DeadLetterFile
from logpulse.flow.sinks.refused import write_finding_refused
from logpulse.model import ParsedChunk, Reject, RequestColumns, RollupBatch, RollupRows, Scored, ScoredBatch, ScoredRows
from logpulse.storage import retention
from logpulse.storage.influx import Connection, InfluxError, InfluxUnavailable, InfluxWriter
from logpulse.storage.marks import restart_mark_line, write_mark_lines
from logpulse.storage.points import (
    MARKS_RP,
    ROLLUP_RP,
    columns_request_lines,
    incident_line,
    request_lines,
    rollup_rows_lines,
    scored_rows_lines,
)

log = logging.getLogger(__name__)
Int64Array = npt.NDArray[np.int64]


class WriteGaveUp(RuntimeError):
    """InfluxDB stayed unavailable longer than WRITE_GIVE_UP_S."""


class WriterRefused(RuntimeError):
    """InfluxDB refuses this writer (credentials, database): nothing written until settings change."""


class _WriteMarks:
    """Cache-invalidation marks (`storage/marks.py`), coalesced: at most one write per `every_s`.

    Marks are written only after the data they describe was acknowledged, and carry the time they
    are written: the API drops a cached answer computed before a mark whose range it overlaps, so a
    longer interval only lets a cached answer live longer, never makes it wrong.

    With `restarted` (tailing with recovery), the first flush also writes the writer's restart mark
    (`points.restart_mark_line`): a run resumes from its last snapshot, and data the killed run had
    acknowledged before that snapshot but not yet marked is not written again, so readers that follow
    marks would keep their old answers. Until written, it is retried with every flush. `ingest` writes
    none: an interrupted ingest is run again whole, and its marks then cover what it wrote.

    Flushes are serialised (`_flushing`): the sink's `close` flushes last and then closes the HTTP
    client, so it must wait for a timer's flush that already took its marks and is still writing them —
    otherwise that write meets a closed client and the marks are lost, and a reader that follows the
    marks (the API's day replica) would keep those customers' old rows.
    """

    MARK_EVERY_S = 0.5
    """Tailing: a dashboard sees new lines within about this long."""
    INGEST_MARK_EVERY_S = 5.0
    """`ingest` (a backfill): a mark per customer every 0.5 s made 285,749 marks beside 1,689,537 points
    of data for 1M lines of 10,000 customers, for answers about history nobody waits on by the half
    second."""

    def __init__(self, write: Callable[[list[str]], None], worker: int, every_s: float, *, restarted: bool) -> None:
        self._write = write
        self._worker = worker
        self._every_s = every_s
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._bounds: dict[str, tuple[int, int]] = {}
        self._timer: threading.Timer | None = None
        self._closed = False
        self._restart_pending = restarted
        if restarted:
            with self._lock:
                self._schedule()

    def add(self, bounds: dict[str, tuple[int, int]]) -> None:
        with self._lock:
            for c, (lo, hi) in bounds.items():
                old = self._bounds.get(c)
                self._bounds[c] = (lo, hi) if old is None else (min(lo, old[0]), max(hi, old[1]))
            self._schedule()

    def _schedule(self) -> None:
        """Start the timer of the next flush unless one is pending or the sink closed (under `_lock`)."""
        if self._timer is None and not self._closed:
            self._timer = threading.Timer(self._every_s, self._flush_quietly)
            self._timer.daemon = True
            self._timer.start()

    def _flush_quietly(self) -> None:
        with self._lock:
            self._timer = None
        try:
            self.flush()
        except Exception as exc:  # the data is safe; its marks are written with the next flush
            log.warning("could not write cache-invalidation marks (retried with the next): %s", exc)

    def flush(self) -> None:
        with self._flushing:
            with self._lock:
                bounds, self._bounds = self._bounds, {}
            now = time.time_ns()
            lines = [restart_mark_line(self._worker, now)] if self._restart_pending else []
            if bounds:
                backlog = metrics.backlog_bytes()
                # after the restart mark's nanosecond: one series per writer, so the same time would merge them
                lines += write_mark_lines(bounds, self._worker, now + len(lines), backlog)
            if lines:
                try:
                    self._write(lines)
                except Exception as exc:
                    self.add(bounds)  # not lost: a reader that follows marks would keep old rows
                    if bounds:
                        raise
                    log.warning("could not write the restart mark (retried with the next flush): %s", exc)
                    return
                self._restart_pending = False

    def close(self) -> None:
        """The last flush, once a flush already writing is done; no timer runs after it."""
        self.cancel()
        self.flush()

    def cancel(self) -> None:
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None


SinkItem = tuple[str, ScoredBatch | list[Scored] | ParsedChunk | RollupBatch]
"""What the sink writes: a customer's scored requests (and incidents), a scoring shard's output for one
chunk (its rows with their scores, `ScoredRows`, and its customers' incidents), a chunk's unscored
requests (scoring off: one item per chunk, not per customer), or rollup points."""


@dataclass(slots=True)
class _Encoded:
    raw: list[str] = field(default_factory=list)  # requests + anomalies: the configured retention policy
    rollups: list[RollupRows] = field(default_factory=list)  # retention policy ROLLUP_RP, encoded when written
    seals: list[str] = field(default_factory=list)  # ROLLUP_RP, written once everything before them is acknowledged
    rollup_points: int = 0
    requests: int = 0
    incidents: int = 0
    bounds: dict[str, tuple[int, int]] = field(default_factory=dict)

    def widen(self, customer: str, lo: int, hi: int) -> None:
        old = self.bounds.get(customer)
        self.bounds[customer] = (lo, hi) if old is None else (min(lo, old[0]), max(hi, old[1]))

    def widen_all(self, bounds: dict[str, tuple[int, int]]) -> None:
        if not self.bounds:
            self.bounds = bounds
            return
        for customer, (lo, hi) in bounds.items():
            self.widen(customer, lo, hi)


class _InfluxPartition(StatelessSinkPartition[SinkItem]):
    def __init__(self, settings: Settings, worker_index: int, pipelined: bool) -> None:
        self._store_raw = settings.store_raw
        self._worker = worker_index
        self._pipelined = pipelined
        self._pending: deque[Future[None]] = deque()
        self._max_pending = 2
        self._batches = ThreadPoolExecutor(1, thread_name_prefix=f"influx-batch-{worker_index}")
        self._batch_points = settings.write_batch_points
        self._give_up_s = settings.write_give_up_s
        self._writer = InfluxWriter(Connection.from_settings(settings), pool_size=settings.write_parallelism + 1)
        self._parallelism = settings.write_parallelism
        self._pool = ThreadPoolExecutor(settings.write_parallelism, thread_name_prefix=f"influx-write-{worker_index}")
        self._marks = _WriteMarks(
            lambda lines: self._write_durably(lines, MARKS_RP),
            worker_index,
            _WriteMarks.INGEST_MARK_EVERY_S if pipelined else _WriteMarks.MARK_EVERY_S,
            restarted=not pipelined,
        )
        self._outage = OutageLog(self._give_up_s)
        self._create_policies = settings.influxdb_create_database
        self._retention = (settings.raw_retention, settings.rollup_retention)
        self._policies_lock = threading.Lock()
        self._dead_letter_path = Path(settings.dead_letter_path)
        self._dead_letter: DeadLetterFile | None = None  # opened on the first refused point
        self._dead_letter_lock = threading.Lock()

    def _ensure_policies(self) -> None:
        with self._policies_lock:
            retention.apply(self._writer, raw_retention=self._retention[0], rollup_retention=self._retention[1])

    def _write_durably(self, lines: Sequence[str], rp: str | None = None) -> None:
        """One request, retried while InfluxDB is unavailable; raises WriteGaveUp after the give-up time."""
        retrying = retrying_while_unavailable(self._give_up_s, self._before_retry, multiplier=0.1)
        try:
            for attempt in retrying:
                with attempt:
                    started = time.perf_counter()
                    try:
                        self._writer.write(lines, rp=rp)
                    except InfluxError as exc:
                        if rp is None or "retention policy not found" not in str(exc) or not self._create_policies:
                            raise
                        self._ensure_policies()  # a database created by someone else: add ours, retry
                        raise InfluxUnavailable(str(exc)) from exc
                    metrics.WRITE_LATENCY.observe(time.perf_counter() - started)
        except InfluxUnavailable as exc:
            error = stopped_or(exc, WriteGaveUp(f"{exc}; gave up after {self._give_up_s:g} s (WRITE_GIVE_UP_S)"))
            if isinstance(error, StoppedDuringOutage):
                exit_stopped(error)
            raise error from exc

    def _before_retry(self, state: RetryCallState) -> None:
        metrics.WRITE_RETRIES.inc()
        self._outage(state)

    def write_batch(self, items: list[SinkItem]) -> None:
        enc = _encode(items, store_raw=self._store_raw)
        if not enc.raw and not enc.rollups and not enc.seals:
            metrics.LINES_WRITTEN.inc(enc.requests)  # STORE_RAW=false: the lines are in the rollup state
            return
        if self._pipelined:
            self._raise_failed()
            self._pending.append(self._batches.submit(self._write_acknowledged, enc))
            while len(self._pending) > self._max_pending:  # backpressure: bounded memory
                self._pending.popleft().result()
        else:
            self._write_acknowledged(enc)

    def _write_or_refuse(self, lines: Sequence[str], rp: str | None = None) -> None:
        """Write a body; the points InfluxDB refuses go to the dead-letter file (see the module docstring)."""
        try:
            refused = write_finding_refused(lambda part: self._write_durably(part, rp), lines)
        except InfluxError as exc:
            if isinstance(exc, InfluxUnavailable):
                raise
            raise WriterRefused(
                f"{exc} (check INFLUXDB_URL, INFLUXDB_DATABASE and the credentials INFLUXDB_USERNAME / "
                "INFLUXDB_PASSWORD / INFLUXDB_TOKEN)"
            ) from exc
        if refused:
            self._dead_letter_points(refused, rp)

    def _dead_letter_points(self, refused: list[tuple[str, str]], rp: str | None) -> None:
        where = f"InfluxDB write ({rp or 'raw'} points)"
        rejects = [Reject(where, -1, point, f"InfluxDB refused the point: {why}", "influxdb") for point, why in refused]
        with self._dead_letter_lock:
            if self._dead_letter is None:
                self._dead_letter = DeadLetterFile(self._dead_letter_path)
            self._dead_letter.append(rejects)
        log.warning("InfluxDB refused %d point(s), see %s: %s", len(refused), self._dead_letter_path, refused[0][1])

    def _write_acknowledged(self, enc: _Encoded) -> None:
        """Write all points of a batch in parallel requests, then its seals (`storage/seals.py`), then
        queue its cache-invalidation marks. Batches are written one after the other (`process`: each
        returns once acknowledged; `ingest`: one batch thread), so a seal also follows every point of
        its segment flushed in earlier batches.

        Rollup points are turned into line protocol one request at a time, while at most
        WRITE_PARALLELISM requests are in flight: a flush at 10,000 customers holds ~700,000 points,
        and their text all at once was the largest part of the processor's peak memory (measured)."""
        step = self._batch_points
        bodies = itertools.chain(
            ((enc.raw[i : i + step], None) for i in range(0, len(enc.raw), step)),
            (
                (rollup_rows_lines(rows, i, i + step), ROLLUP_RP)
                for rows in enc.rollups
                for i in range(0, len(rows), step)
            ),
        )
        in_flight: deque[Future[None]] = deque()
        for lines, rp in bodies:
            in_flight.append(self._pool.submit(self._write_or_refuse, lines, rp))
            while len(in_flight) > self._parallelism:
                in_flight.popleft().result()  # re-raises WriteGaveUp / WriterRefused from the writer thread
        for f in in_flight:
            f.result()
        if enc.seals:  # after the points they seal: a crash in between leaves no seal, never an early one
            self._write_or_refuse(enc.seals, ROLLUP_RP)
        metrics.LINES_WRITTEN.inc(enc.requests)
        metrics.INCIDENTS_WRITTEN.inc(enc.incidents)
        metrics.ROLLUP_POINTS_WRITTEN.inc(enc.rollup_points)
        self._marks.add(enc.bounds)

    def _raise_failed(self) -> None:
        while self._pending and self._pending[0].done():
            self._pending.popleft().result()

    def close(self) -> None:
        try:
            while self._pending:  # ingest: return (and exit 0) only once everything is acknowledged
                self._pending.popleft().result()
            self._marks.close()
        finally:
            self._marks.cancel()
            self._batches.shutdown(wait=True)
            self._pool.shutdown(wait=True)
            self._writer.close()
            if self._dead_letter is not None:
                self._dead_letter.close()


def _encode(items: list[SinkItem], *, store_raw: bool) -> _Encoded:
    """Line protocol of all items (request points only if `store_raw`), and each customer's time range."""
    enc = _Encoded()
    for _key, item in items:
        if isinstance(item, RollupBatch):
            enc.seals += item.seals
            for rows in item.rows:
                enc.rollups.append(rows)
                enc.rollup_points += len(rows)
                enc.widen_all(dict(rows.bounds))
        elif isinstance(item, ParsedChunk):
            _encode_chunk(enc, item, store_raw=store_raw)
        else:
            for scored in item if isinstance(item, list) else (item,):
                if isinstance(scored, ScoredRows):
                    _encode_rows(enc, scored, store_raw=store_raw)
                else:
                    _encode_scored(enc, scored, store_raw=store_raw)
    return enc


def _encode_scored(enc: _Encoded, item: ScoredBatch, *, store_raw: bool) -> None:
    """One customer's scored requests (if `store_raw`) and incidents."""
    customer, times = item.batch.customer_id, item.batch.times
    enc.requests += len(times)
    if store_raw:
        enc.raw += request_lines(item)
        if times:
            enc.widen(customer, min(times), max(times))
    for inc in item.incidents:
        enc.raw.append(incident_line(inc))
        enc.widen(customer, inc.start_ns, inc.end_ns)
    enc.incidents += len(item.incidents)


def _encode_rows(enc: _Encoded, item: ScoredRows, *, store_raw: bool) -> None:
    """A shard's scored requests (if `store_raw`), encoded in one pass over its rows, and each of its
    customers' time range (`ShardRequests.bounds`: one run of rows per customer)."""
    rows = item.requests
    enc.requests += len(rows)
    if store_raw and len(rows):
        times, paths, statuses, durations = rows.requests.taken(rows.rows)
        enc.raw += scored_rows_lines(rows.customers, rows.bounds, times, paths, statuses, durations, item.scores)
        by_row = np.fromiter(times, np.int64, len(times))
        starts = rows.bounds[:-1]
        lo, hi = np.minimum.reduceat(by_row, starts).tolist(), np.maximum.reduceat(by_row, starts).tolist()
        enc.widen_all(dict(zip(rows.customers, zip(lo, hi, strict=True), strict=True)))


def _encode_chunk(enc: _Encoded, chunk: ParsedChunk, *, store_raw: bool) -> None:
    """A chunk's unscored requests: counted, and encoded (if `store_raw`) from its columns in one pass
    over the chunk, grouped by customer."""
    r = chunk.requests
    enc.requests += len(r.times)
    if store_raw and r.times:
        order, starts = r.customer_order()
        enc.raw += columns_request_lines(r, order)
        enc.widen_all(_time_ranges(r, order, starts))


def _time_ranges(r: RequestColumns, order: Int64Array, starts: list[int]) -> dict[str, tuple[int, int]]:
    """Each customer's earliest and latest request time in a chunk (`order`, `starts`: the requests by
    customer, `RequestColumns.customer_order`): a few numpy calls for the whole chunk, which holds
    thousands of customers when there are 10,000 customers."""
    by_customer = np.fromiter(r.times, np.int64, len(r.times))[order]
    lo, hi = np.minimum.reduceat(by_customer, starts).tolist(), np.maximum.reduceat(by_customer, starts).tolist()
    return dict(zip(r.customers, zip(lo, hi, strict=True), strict=True))


class InfluxSink(DynamicSink[SinkItem]):
    """One partition per worker; each keeps its own connection pool and writer threads.

    `pipelined=False` (tailing with recovery): `write_batch` returns once InfluxDB acknowledged the
    batch, which is what lets Bytewax's snapshots cover only acknowledged data.
    `pipelined=True` (`ingest`, no recovery): the worker reads and parses the next chunk while up to
    two batches are in flight; `close()` waits for all of them, so `ingest` still exits 0 only once
    every line is acknowledged, and a failure still fails the run.
    """

    def __init__(self, settings: Settings, *, pipelined: bool = False) -> None:
        self._settings = settings
        self._pipelined = pipelined

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _InfluxPartition:
        return _InfluxPartition(self._settings, worker_index, self._pipelined)
