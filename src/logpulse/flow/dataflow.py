"""The Bytewax dataflow: the one place where the steps are wired together, in the order data flows.

    read (LogSource: files discovered, by content)    -> Chunk of complete lines
    segments (cut at rollup segment boundaries)       -> Chunk
    parse (LOG_FORMAT's parser, formats.registry)     -> ParsedChunk
      rejects ------------------------------------------> dead_letter (DeadLetterSink)
    scoring on (flow/scored.py, imported only then):
    by_shard (SCORING_SHARDS, a stable hash of the
              customer id; scoring/shard.py)          -> (shard, ShardRequests: its rows of the chunk)
    clock (one key: the stream's event-time clock)    -> (shard, Tick) for every shard
    score (keyed by shard: its customers' baselines
           live on one worker, in recovery snapshots;
           a tick completes only customers it is due
           for; scoring/step.py)                      -> (shard, [ScoredRows, ScoredBatch of each customer
                                                          with incidents])
      or, scoring off: unscored                       -> (file, ParsedChunk): whole chunks, no key per customer
    rollup_parts -> rollup (stateful_batch keyed by file) -> (file, RollupBatch: columns)   [rollups/]
    influxdb (InfluxSink: acknowledged, retried; scored and rollup streams merged)
    outbox (stateful, keyed: alerts not yet delivered,
            in recovery snapshots)                    -> Alertmanager / webhook

Items are whole chunks, per-shard lists of batches and per-customer batches, never single lines:
per-item engine overhead is what limits a Python stream processor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from logpulse import metrics
from logpulse.config import Settings
from logpulse.flow.sinks.deadletter import DeadLetterSink
from logpulse.flow.sinks.influx import InfluxSink
from logpulse.flow.supervise import STOP
from logpulse.formats.registry import NO_CUSTOMER, LineParser, build_parser
from logpulse.model import Chunk, ParsedChunk, Reject, RollupBatch, Scored
from logpulse.rollups.aggregate import rollup_part
from logpulse.rollups.identity import split_at_segments
from logpulse.rollups.step import RollupLogic
from logpulse.tailing.source import LogSource

log = logging.getLogger(__name__)
X = TypeVar("X")
S = TypeVar("S")
INGEST_ROLLUP_FLUSH_S = 30.0
"""`ingest` rewrites a growing rollup window at most this often (re-encoding coarse histograms every
second cost ~9 % of the processor's main thread in a py-spy profile)."""


class _StoppablePartition(StatefulSourcePartition[X, S]):
    """Ends a partition's input when STOP is set; otherwise the wrapped partition decides."""

    def __init__(self, inner: StatefulSourcePartition[X, S]) -> None:
        self._inner = inner

    def next_batch(self) -> Iterable[X]:
        if STOP.is_set():
            raise StopIteration()
        return self._inner.next_batch()

    def next_awake(self) -> datetime | None:
        return None if STOP.is_set() else self._inner.next_awake()

    def snapshot(self) -> S:
        return self._inner.snapshot()

    def close(self) -> None:
        self._inner.close()


class StoppableSource(FixedPartitionedSource[X, S]):
    """A source whose partitions all end cleanly once STOP is set (graceful shutdown)."""

    def __init__(self, inner: FixedPartitionedSource[X, S]) -> None:
        self._inner = inner

    def list_parts(self) -> list[str]:
        return self._inner.list_parts()

    def build_part(self, step_id: str, for_part: str, resume_state: S | None) -> _StoppablePartition[X, S]:
        return _StoppablePartition(self._inner.build_part(step_id, for_part, resume_state))


def _parser(parser: LineParser) -> Callable[[Chunk], ParsedChunk]:
    def parse(chunk: Chunk) -> ParsedChunk:
        parsed = parser.parse_chunk(chunk)
        parsed.path = chunk.path  # the stream clock is kept per file
        parsed.span = (chunk.file_key, chunk.offset, chunk.offset + len(chunk.data))  # rollup identity
        metrics.BYTES_READ.inc(len(chunk.data))
        metrics.LINES_READ.inc(parsed.lines)
        if parsed.rejects:
            no_customer = sum(1 for r in parsed.rejects if r.reason.startswith(NO_CUSTOMER))
            if no_customer:
                metrics.LINES_NO_CUSTOMER.inc(no_customer)
        return parsed

    return parse


def _rejects(parsed: ParsedChunk) -> list[Reject] | None:
    return parsed.rejects or None


def _unscored(parsed: ParsedChunk) -> tuple[str, ParsedChunk] | None:
    """Scoring off: a chunk's requests go to the sink whole (keyed by file), one item per chunk, as
    the columns the parser made: per-customer items or batches cost an engine item or an object for
    each customer of each chunk (with 10,000 customers, thousands per chunk), even with
    STORE_RAW=false, when they carry nothing to write but their count."""
    return (str(parsed.span[0]), parsed) if parsed.requests.times else None


def build_flow(settings: Settings, patterns: list[str], *, follow: bool, shards: int = 1) -> Dataflow:
    """The processing dataflow over `patterns` (tail them if `follow`, else read to their end), read by
    `shards` partitions per group of files (see `tailing.discovery`)."""
    flow = Dataflow("logpulse")
    source = LogSource.from_settings(settings, patterns, follow=follow, shards=shards)
    chunks = op.input("read", flow, StoppableSource(source))
    unit = settings.rollup_segment_bytes
    chunks = op.flat_map("segments", chunks, lambda c: split_at_segments(c, unit))  # rollup identity
    parsed = op.map("parse", chunks, _parser(build_parser(settings)))
    op.output(
        "dead_letter", op.filter_map("rejects", parsed, _rejects), DeadLetterSink(Path(settings.dead_letter_path))
    )
    # one item per shard and chunk (its rows with their scores, its customers' incidents), or whole chunks unscored
    scored: op.KeyedStream[list[Scored]] | op.KeyedStream[ParsedChunk]
    if settings.scoring_enabled:
        from logpulse.flow.scored import scored_stream  # only here: the scorer's imports are costly

        scored = scored_stream(settings, parsed, follow=follow)
    else:
        scored = op.filter_map("unscored", parsed, _unscored)
    # rollups: one keyed state per file (rollups/step.py), identities by byte offsets (rollups/identity.py)
    parts = op.filter_map("rollup_parts", parsed, rollup_part)
    rollups = op.stateful_batch(
        "rollup",
        parts,
        # ingest: nobody waits for a window's interim values, rewrite them rarely (segment end, EOF)
        RollupLogic.builder(
            unit,
            settings.rollup_flush_s if follow else max(settings.rollup_flush_s, INGEST_ROLLUP_FLUSH_S),
            settings.rollup_idle_close_s,
            recoverable=follow,
        ),
    )
    to_write: op.KeyedStream[list[Scored] | ParsedChunk | RollupBatch] = op.merge("to_influxdb", scored, rollups)
    op.output("influxdb", to_write, InfluxSink(settings, pipelined=not follow))
    return flow
