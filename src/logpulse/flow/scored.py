"""The dataflow's scoring branch (SCORING_ENABLED): the stream clock, scoring by shard, the outbox.

A module of its own so that `dataflow.build_flow` imports it only when scoring is on: the scorer's
imports (`scipy.special`, which clones all of numpy, and the alert receivers) were ~10 % of the CPU
time of an unscored `ingest` of 1M lines (py-spy), and a process that scores nothing needs none of them.

    parsed -> by_shard (SCORING_SHARDS, a stable hash of the customer id; scoring/shard.py)
                                                      -> (shard, ShardRequests: its rows of the chunk)
    parsed -> clock (one key: the stream's event-time clock) -> (shard, Tick) for every shard
    score (keyed by shard: its customers' baselines live on one worker, in recovery snapshots; a tick
           completes only customers it is due for; scoring/step.py) -> (shard, [ScoredRows, ScoredBatch of
           each customer with incidents])
    outbox (stateful, keyed: alerts not yet delivered, in recovery snapshots) -> Alertmanager / webhook
"""

from __future__ import annotations

import bytewax.operators as op
from bytewax.dataflow import Stream

from logpulse.alerts.outbox import log_delivered, outbox_builder
from logpulse.config import Settings
from logpulse.model import Incident, ParsedChunk, Scored, ScoredBatch
from logpulse.scoring.baselines import ScoringConfig
from logpulse.scoring.clock import StreamClock
from logpulse.scoring.shard import by_shard, tick_per_shard
from logpulse.scoring.step import ShardItem, score_by_shard


def _clock_item(parsed: ParsedChunk) -> tuple[str, tuple[str, int, list[str]]] | None:
    """What the clock needs of a chunk: its file, its earliest event time, its customers."""
    requests = parsed.requests
    if not requests.times:
        return None
    return "clock", (parsed.path, min(requests.times), list(requests.customers))


def _incidents(kv: tuple[str, list[Scored]]) -> list[tuple[str, list[Incident]]]:
    """A shard's incidents, keyed by customer (the outbox's key); most items carry none."""
    return [(s.batch.customer_id, s.incidents) for s in kv[1] if isinstance(s, ScoredBatch) and s.incidents]


def scored_stream(settings: Settings, parsed: Stream[ParsedChunk], *, follow: bool) -> op.KeyedStream[list[Scored]]:
    """Each shard's scored rows and incidents of each chunk (one item per shard and chunk), and the outbox's
    delivery of their incidents when a receiver is configured."""
    scoring_shards = settings.scoring_shards
    # the scorer's input: each shard's rows of the chunk's columns (`ShardRequests`)
    keyed = op.flat_map("by_shard", parsed, lambda p: by_shard(p.requests, scoring_shards))
    clock = op.stateful_flat_map("clock", op.filter_map("clock_in", parsed, _clock_item), StreamClock.step)
    ticks = op.flat_map("tick_shards", clock, lambda kv: tick_per_shard(kv[1], scoring_shards))
    items: op.KeyedStream[ShardItem] = op.merge("batches_and_ticks", keyed, ticks)
    scored = score_by_shard(
        "score",
        items,
        ScoringConfig.from_settings(settings),
        scoring_shards,
        int(settings.max_future_s * 1e9),
        recoverable=follow,  # `ingest` runs without a recovery store
    )
    receivers = outbox_builder(settings, final=not follow)
    if settings.alertmanager_url or settings.webhook_url:
        delivered = op.stateful("outbox", op.flat_map("incidents", scored, _incidents), receivers)
        op.inspect("alerts_delivered", delivered, log_delivered)
    return scored
