"""The `score` step of the dataflow: Bytewax keyed state per customer (`ScoreLogic`) and its snapshots.

Bytewax asks every customer touched in an epoch for a snapshot, and the stream clock touches every
known customer whenever it passes a bucket. Most of them have nothing to do then (`CustomerScorer.
can_wait`: the tick only moves their watermark), so a snapshot must not cost what a customer holds:
the state is pickled once after it changed and that pickle is handed out again until it changes
(with the watermark beside it) — never a deep copy of every customer's baselines and history per
epoch. A restart restores `(pickle, watermark)`; snapshots of the earlier step (a `CustomerScorer`
itself) restore too, under the same step id (`score_by_customer`).
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable, Iterable
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import operator
from bytewax.operators import StatefulLogic

from logpulse.model import RequestBatch, ScoredBatch, Tick
from logpulse.scoring.baselines import ScoringConfig
from logpulse.scoring.clock import poisoned
from logpulse.scoring.scorer import CustomerScorer

log = logging.getLogger(__name__)
ScoreItem = RequestBatch | tuple[str, Tick]
Snapshot = tuple[bytes, int]
"""A customer's pickled `CustomerScorer` and its watermark (which alone moves on most ticks)."""


def scorer_step(
    config: ScoringConfig, max_future_ns: int
) -> Callable[[CustomerScorer | None, ScoreItem], tuple[CustomerScorer | None, ScoredBatch | None]]:
    """One item of one customer: a batch is scored, a tick completes buckets (`None` state: forget it)."""
    bucket_ns = int(config.bucket_s * 1e9)

    def step(state: CustomerScorer | None, item: ScoreItem) -> tuple[CustomerScorer | None, ScoredBatch | None]:
        if state is not None and poisoned(state.watermark * bucket_ns, max_future_ns):
            log.warning(
                "customer %s: its scoring state was beyond now + MAX_FUTURE_S (a line from the future, stored "
                "in a recovery snapshot); it starts afresh and re-learns its baseline",
                state.customer_id,
            )
            state = None
        if isinstance(item, RequestBatch):
            if state is None:
                state = CustomerScorer(item.customer_id, config)
            return state, state.score(item)
        customer, tick = item
        if state is None:  # a customer this worker has not seen data of (yet)
            return None, None
        incidents = state.tick(tick)
        return state, ScoredBatch(RequestBatch(customer), [], incidents) if incidents else None

    return step


def restore(resume: Snapshot | CustomerScorer | None) -> CustomerScorer | None:
    """The state a snapshot holds (a `CustomerScorer` itself when written by the earlier step)."""
    if resume is None or isinstance(resume, CustomerScorer):
        return resume
    blob, watermark = resume
    if not blob:  # written without a recovery store: nothing to restore
        return None
    state: CustomerScorer = pickle.loads(blob)
    state.watermark, state.changed = watermark, False
    return state


class ScoreLogic(StatefulLogic[ScoreItem, ScoredBatch, Snapshot]):
    """One customer's scorer in the dataflow; its snapshot is re-pickled only after it changed."""

    def __init__(
        self, step: Callable[..., Any], resume: Snapshot | CustomerScorer | None, *, recoverable: bool = True
    ) -> None:
        self.step = step
        self.state = restore(resume)
        self.pickled = resume[0] if isinstance(resume, tuple) else b""
        self.recoverable = recoverable

    def on_item(self, value: ScoreItem) -> tuple[Iterable[ScoredBatch], bool]:
        state, out = self.step(self.state, value)
        if state is None:
            return ((), StatefulLogic.DISCARD)
        if state is not self.state:
            self.state, self.pickled = state, b""
        return ((out,) if out is not None else (), StatefulLogic.RETAIN)

    def snapshot(self) -> Snapshot:
        state = self.state
        assert state is not None
        if not self.recoverable:  # `ingest` keeps no recovery store: Bytewax asks anyway, every epoch
            return b"", state.watermark
        if state.changed or not self.pickled:
            state.changed = False
            self.pickled = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
        return self.pickled, state.watermark


@operator
def score_by_customer(
    step_id: str, up: op.KeyedStream[ScoreItem], config: ScoringConfig, max_future_ns: int, *, recoverable: bool
) -> op.KeyedStream[ScoredBatch]:
    """Score every customer's batches and ticks (keyed by customer: its state lives on one worker).
    `recoverable=False` (`ingest`, no recovery store): snapshots are not pickled at all."""
    return _recovery_scope("stateful_flat_map", up, scorer_step(config, max_future_ns), recoverable)


@operator
def _recovery_scope(
    step_id: str, up: op.KeyedStream[ScoreItem], step: Callable[..., Any], recoverable: bool
) -> op.KeyedStream[ScoredBatch]:
    """Nests the state as `op.stateful_map` did (`<step>.stateful_flat_map.stateful`): the recovery
    store finds the snapshots written before this step under the same id."""
    return op.stateful("stateful", up, lambda resume: ScoreLogic(step, resume, recoverable=recoverable))
