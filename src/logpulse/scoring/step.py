"""The `score` step of the dataflow: Bytewax keyed state per shard of customers (`ShardLogic`) and its
snapshots.

Bytewax asks every shard touched in an epoch for a snapshot, and every tick touches every shard.
Most customers of a shard did not change since the last one (a tick that waits changes nothing but
the watermark), so a snapshot must not cost what the shard holds: each customer's state is pickled
once after it changed and that pickle is handed out again until it changes (with the customer's
watermark beside it) — never a deep copy of every customer's baselines and history per epoch.
Without a recovery store (`ingest`) nothing is pickled at all.

A restart restores each customer from `(pickle, watermark)`, drops a state beyond now +
MAX_FUTURE_S (a line from the future, stored before lines were validated: it re-learns), and keeps
only customers that still belong to this shard (SCORING_SHARDS changed: the others re-learn).
Snapshots of the per-customer step (`score_by_customer`, before scoring was sharded) are under
another step id and are not read: after that upgrade every baseline re-learns (docs/operations.md).
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Iterable
from dataclasses import dataclass, field

import bytewax.operators as op
from bytewax.dataflow import operator
from bytewax.operators import StatefulLogic

from logpulse.model import Scored, ShardRequests, Tick
from logpulse.scoring.baselines import ScoringConfig
from logpulse.scoring.clock import poisoned
from logpulse.scoring.scorer import CustomerScorer
from logpulse.scoring.shard import ShardScorer, shard_of
from logpulse.scoring.state import NS

log = logging.getLogger(__name__)
ShardItem = ShardRequests | Tick


@dataclass
class ShardSnapshot:
    """A shard's recovery snapshot: each customer's pickled `CustomerScorer` and its watermark (which
    alone moves on most ticks), the shard's last tick, its customers not ticked yet, and the shard
    count it was keyed under."""

    shards: int
    watermark: int = -1
    customers: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    fresh: list[str] = field(default_factory=list)
    announced: list[str] = field(default_factory=list)


class ShardLogic(StatefulLogic[ShardItem, list[Scored], ShardSnapshot]):
    """One shard's scorers in the dataflow; a customer's pickle is re-taken only after it changed."""

    def __init__(
        self, config: ScoringConfig, shards: int, max_future_ns: int, resume: ShardSnapshot | None, *, recoverable: bool
    ) -> None:
        self.shard = ShardScorer(config)
        self.shards = shards
        self.recoverable = recoverable
        self.pickled: dict[str, bytes] = {}
        if resume is not None:
            self._restore(resume, max_future_ns)

    def on_item(self, value: ShardItem) -> tuple[Iterable[list[Scored]], bool]:
        out = self.shard.tick(value) if isinstance(value, Tick) else self.shard.score(value)
        if not self.shard.scorers and not self.shard.announced:  # a tick to a shard that has met no one
            # (a tick naming a customer whose first batch is still on its way is kept: the clock names
            # each customer once)
            return ((), StatefulLogic.DISCARD)
        return ((out,) if out else (), StatefulLogic.RETAIN)

    def snapshot(self) -> ShardSnapshot:
        shard = self.shard
        snap = ShardSnapshot(self.shards, shard.watermark)
        if not self.recoverable:  # `ingest` keeps no recovery store: Bytewax asks anyway, every epoch
            return snap
        pickled = self.pickled
        for customer, s in shard.scorers.items():
            if s.changed or customer not in pickled:
                s.changed = False
                pickled[customer] = pickle.dumps(s, protocol=pickle.HIGHEST_PROTOCOL)
            # the watermark beside the pickle: the shard's, where a tick let this customer wait
            snap.customers[customer] = (pickled[customer], shard.watermark_of(customer, s))
        snap.fresh = sorted(shard.fresh)
        snap.announced = sorted(shard.announced)
        return snap

    def _restore(self, snap: ShardSnapshot, max_future_ns: int) -> None:
        shard = self.shard
        shard.watermark = snap.watermark
        here = shard_of(next(iter(snap.customers), ""), snap.shards)  # the key it was written under
        for customer, (blob, watermark) in snap.customers.items():
            if snap.shards != self.shards and shard_of(customer, self.shards) != here:
                log.warning("customer %s: SCORING_SHARDS changed, its scoring state starts afresh", customer)
                continue
            s: CustomerScorer = pickle.loads(blob)
            s.watermark, s.changed = watermark, False
            if poisoned(s.watermark * int(s.config.bucket_s * NS), max_future_ns):
                log.warning(
                    "customer %s: its scoring state was beyond now + MAX_FUTURE_S (a line from the future, stored "
                    "in a recovery snapshot); it starts afresh and re-learns its baseline",
                    customer,
                )
                continue
            shard.scorers[customer] = s
            self.pickled[customer] = blob
        shard.fresh = set(snap.fresh) & set(shard.scorers)
        shard.announced = set(snap.announced)
        shard.reschedule_all()


@operator
def score_by_shard(
    step_id: str,
    up: op.KeyedStream[ShardItem],
    config: ScoringConfig,
    shards: int,
    max_future_ns: int,
    *,
    recoverable: bool,
) -> op.KeyedStream[list[Scored]]:
    """Score every shard's batches and ticks (keyed by shard: its customers' state lives on one
    worker). `recoverable=False` (`ingest`, no recovery store): snapshots are not pickled at all."""
    return op.stateful(
        "stateful", up, lambda resume: ShardLogic(config, shards, max_future_ns, resume, recoverable=recoverable)
    )
