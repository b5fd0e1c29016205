"""A shard of customers: the state of the `score` step, which is keyed by shard, not by customer.

Why shards. Keyed by customer, every chunk became one dataflow item per customer present in it
(thousands, most holding a line or two), and every clock advance one tick per known customer; at
10,000 customers the engine's per-item cost and the ticks of customers with nothing to do were most
of the scorer's time. A shard (`shard_of`: a stable hash of the customer id modulo SCORING_SHARDS,
so that it spreads over workers and survives restarts) takes one item per chunk — the list of its
customers' batches — and one per tick.

What a tick costs. `CustomerScorer.wait_limit` says, from a customer's state alone, up to which
bucket its completion may wait; the shard keeps a due-queue (a heap of (watermark, customer)) and a
tick completes only the customers whose due watermark it reached. The others get the shard's
watermark when they are next touched (a batch, or the tick at which they fall due), which is all a
tick that waits does to them (`CustomerScorer.tick`): decisions are those of ticking every customer.
A customer is ticked only once the clock has met it (`announced`: each tick names the customers the
clock met since the one before, `Tick.joined`) and only by ticks after its scorer exists here: until
then it is `fresh` and the shard's watermark passes it by, as a per-customer tick would have. Chunks
and ticks reach a shard by different paths, so a tick can arrive before the chunk that made it, or
after a chunk of a customer the clock had not met yet when it passed: without this, a tick moved far
ahead by one file (another file not yet read) would later be applied to every customer of the shard.

A chunk reaches a shard as rows of the chunk's columns (`by_shard`, `ShardRequests`): its requests'
numbers, made once per chunk for the rollups and scoring alike (`RequestColumns.values`), are taken,
scored and clipped with a few numpy calls (`_Columns`), each customer's baseline as of before its
batch (a customer has at most one batch per chunk); the buckets are then completed per customer
(`CustomerScorer.add_columns`). The rows and their scores go on as one `ScoredRows` to the raw
points' encoder, which writes the shard's lines in one pass.
"""

from __future__ import annotations

import heapq
import itertools
import zlib
from dataclasses import dataclass, field

import numpy as np

from logpulse.model import (
    RequestBatch,
    RequestColumns,
    Scored,
    ScoredBatch,
    ScoredRows,
    Scores,
    ShardRequests,
    Tick,
)
from logpulse.scoring.baselines import ScoringConfig
from logpulse.scoring.scorer import CustomerScorer
from logpulse.scoring.state import NS


def shard_of(customer_id: str, shards: int) -> str:
    """The shard key of a customer: CRC-32 of its id modulo `shards` (Python's str hash is salted
    per process, so it would move customers between restarts)."""
    return str(zlib.crc32(customer_id.encode("utf-8", "surrogatepass")) % shards)


def tick_per_shard(tick: Tick, shards: int) -> list[tuple[str, Tick]]:
    """The tick for every shard, each naming only its own customers of those the clock met."""
    joined: dict[str, list[str]] = {}
    for customer in tick.joined:
        joined.setdefault(shard_of(customer, shards), []).append(customer)
    return [(str(i), Tick(tick.time_ns, tuple(joined.get(str(i), ())))) for i in range(shards)]


def by_shard(requests: RequestColumns, shards: int) -> list[tuple[str, ShardRequests]]:
    """A chunk's requests split into one item per shard (shards in order of their first customer in
    the chunk), each its customers' rows in order of their first request: one sort of the lines by
    (shard, customer), no step per line."""
    if not len(requests):
        return []
    names = requests.customers
    rank: dict[str, int] = {}
    keys = [rank.setdefault(shard_of(c, shards), len(rank)) for c in names]
    shard_rank = np.array(keys, dtype=np.int64)
    codes = requests.codes
    rows = np.argsort(shard_rank[codes] * len(names) + codes, kind="stable")
    by_row = codes[rows]
    starts = np.flatnonzero(np.concatenate(([True], by_row[1:] != by_row[:-1])))
    run_customer = by_row[starts]
    run_shard = shard_rank[run_customer]
    cuts = np.flatnonzero(np.concatenate(([True], run_shard[1:] != run_shard[:-1], [True]))).tolist()
    edges, customers = [*starts.tolist(), len(rows)], run_customer.tolist()
    shard_names = list(rank)
    out = []
    for a, b in itertools.pairwise(cuts):
        first, end = edges[a], edges[b]
        out.append(
            (
                shard_names[keys[customers[a]]],
                ShardRequests(
                    requests, rows[first:end], [names[c] for c in customers[a:b]], [e - first for e in edges[a : b + 1]]
                ),
            )
        )
    return out


@dataclass(slots=True)
class _Columns:
    """The numbers of a shard's requests as the scorer takes them: event times, ln(duration), failed
    and 5xx flags, and each customer's offset (`bounds[i]:bounds[i + 1]`)."""

    times: np.ndarray
    logs: np.ndarray
    failed: np.ndarray
    server: np.ndarray
    bounds: list[int]

    @classmethod
    def of(cls, item: ShardRequests) -> _Columns:
        v = item.values()
        return cls(v.times, np.log(np.maximum(v.durations, 1e-6)), v.failed, v.server_errors, item.bounds)

    def scored(self, scorers: list[CustomerScorer]) -> Scores:
        """Every request's score (0 while its customer's baseline warms up), and `logs` clipped where
        the baseline is warm — `CustomerScorer.score`'s formulas, once for all the batches."""
        scales = [s.latency_scale() for s in scorers]
        if all(x is None for x in scales):
            return np.zeros(len(self.logs))
        sizes = np.diff(self.bounds)
        mu, sigma, clip = (
            np.repeat(np.array([x[i] if x is not None else v for x in scales]), sizes)
            for i, v in ((0, 0.0), (1, 1.0), (2, np.inf))
        )
        warm = np.repeat(np.array([x is not None for x in scales]), sizes)
        scores = np.where(warm, np.round(np.maximum((self.logs - mu) / sigma, 0.0), 2), 0.0)
        self.logs = np.minimum(self.logs, clip)
        return scores


@dataclass
class ShardScorer:
    """The customers of one shard: their scorers, when each must next be ticked, the last tick."""

    config: ScoringConfig
    scorers: dict[str, CustomerScorer] = field(default_factory=dict)
    watermark: int = -1  # bucket of the last tick
    fresh: set[str] = field(default_factory=set)  # no tick has reached it yet (see the module's docstring)
    announced: set[str] = field(default_factory=set)  # met by the clock as of the last tick
    due: list[tuple[int, str]] = field(default_factory=list)  # heap; entries not in `due_at` are stale
    due_at: dict[str, int] = field(default_factory=dict)

    def score(self, item: ShardRequests) -> list[Scored]:
        """One chunk's requests of this shard's customers: their rows with their scores, then the
        incidents of each customer that has some."""
        scorers = [self._touch(c) for c in item.customers]
        cols = _Columns.of(item)
        scores = cols.scored(scorers)
        out: list[Scored] = [ScoredRows(item, scores)]
        bounds = cols.bounds
        for i, (customer, s) in enumerate(zip(item.customers, scorers, strict=True)):
            a, b = bounds[i], bounds[i + 1]
            incidents = s.add_columns(cols.times[a:b], cols.logs[a:b], cols.failed[a:b], cols.server[a:b])
            if incidents:
                out.append(ScoredBatch(RequestBatch(customer), None, incidents))
            self._schedule(customer, s)
        return out

    def tick(self, tick: Tick) -> list[Scored]:
        """The stream clock moved on: complete the customers whose buckets can no longer wait."""
        self.watermark = max(self.watermark, tick.time_ns // int(self.config.bucket_s * NS))
        self.announced.update(tick.joined)
        self.fresh -= self.announced
        out: list[Scored] = []
        due = self.due
        waiting: list[str] = []
        while due and due[0][0] <= self.watermark:
            at, customer = heapq.heappop(due)
            if self.due_at.get(customer) != at:
                continue  # rescheduled since
            del self.due_at[customer]
            if customer in self.fresh:  # the clock has not met it yet: this tick is not for it
                waiting.append(customer)
                continue
            s = self._touch(customer)
            incidents = s.tick(tick)
            if incidents:
                out.append(ScoredBatch(RequestBatch(customer), None, incidents))
            self._schedule(customer, s)
        for customer in waiting:
            self._schedule(customer, self.scorers[customer])
        if len(due) > 2 * len(self.due_at) + 64:  # drop stale entries
            self.due = [(at, c) for c, at in self.due_at.items()]
            heapq.heapify(self.due)
        return out

    def _touch(self, customer: str) -> CustomerScorer:
        """The customer's scorer, with the ticks it let wait applied (a new one if it has none)."""
        s = self.scorers.get(customer)
        if s is None:
            s = self.scorers[customer] = CustomerScorer(customer, self.config)
            self.fresh.add(customer)
        else:
            s.watermark = self.watermark_of(customer, s)
        return s

    def watermark_of(self, customer: str, s: CustomerScorer) -> int:
        """The customer's watermark with the ticks it let wait applied: the shard's, once it has data
        and the clock has met it."""
        if s.next_bucket is not None and customer not in self.fresh:
            return max(s.watermark, self.watermark)
        return s.watermark

    def _schedule(self, customer: str, s: CustomerScorer) -> None:
        """Queue the customer for the first tick at which `can_wait` no longer holds for it: the
        watermark w with w - 1 > `wait_limit` (the next tick when something is open or brewing)."""
        if s.next_bucket is None:  # no data yet: ticks do nothing to it
            self.due_at.pop(customer, None)
            return
        wait = s.wait_limit()
        at = self.watermark + 1 if wait is None else max(wait + 2, self.watermark + 1)
        if self.due_at.get(customer) != at:
            self.due_at[customer] = at
            heapq.heappush(self.due, (at, customer))

    def reschedule_all(self) -> None:
        """Rebuild the due-queue from the scorers (after a restore)."""
        self.due, self.due_at = [], {}
        for customer, s in self.scorers.items():
            self._schedule(customer, s)
