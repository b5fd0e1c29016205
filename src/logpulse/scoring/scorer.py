"""One customer's scoring: request scores, event-time buckets, the signals and their incidents.

`CustomerScorer` is one customer's part of the Bytewax `score` step's state (keyed by shard of
customers, `shard.py`; small and picklable, so it lives in recovery snapshots and a restart does not
reset baselines). Per batch:

* every request gets `anomaly_score` = how many baseline standard deviations slower than usual it
  is, `max(0, (ln d - mu) / sigma)` (0 while the baseline warms up);
* requests are summed into event-time buckets (`SCORING_BUCKET_S`), ln(duration) clipped at
  usual + max(3 sigma, ln 3) (as of the batch) so that a few very slow requests do not move a
  window; a bucket is complete once event time passed its end by one more bucket (grace for
  slightly out-of-order lines). Completed buckets —
  empty ones too, which is how silence is seen — go through the signals in order (`per_bucket.complete`).
  A `Tick` from the stream clock completes a silent customer's buckets while other logs move on.
* events older than the completed buckets are *late*: they feed the latency and error baselines but
  never open incidents, so shuffled traffic cannot cause an alarm storm.

Each signal tests windows of 30 s to 30 min ending at the completed bucket (a short window finds a
big change fast, a long one finds a small change surely) and feeds its `Tracker` (incidents.py).

Where things live: the state and its pickled form in `state.py` (the bucket history's numpy form and
the SLO windows' sparse steps in `history.py`), the dataflow step and its snapshots in `step.py`, the
per-bucket path in `per_bucket.py` (a quiet customer's buckets in one loop: `quiet.py`), runs of
buckets as arrays in `runs.py`, the incident lifecycle in `incidents.py`; this module takes batches
and ticks and decides which buckets go which way, and which ticks may wait (`can_wait`).

Cost. Most buckets of most customers are uneventful: no incident open or brewing, no test passing.
While that holds, baselines follow closed recurrences, so a run of buckets is completed as arrays
(`runs.run`: every signal's gate and test for every bucket at once, the same formulas as the per-bucket
path, which is kept as the reference and takes over at the first bucket where an incident would
open; runs follow the "still hot" stretches themselves). A run costs a fixed number of numpy calls
(~1 ms of CPU a run in the nginx fleet, profiled), so it is used only when the call has enough
buckets to pay for them (`RUN_COST` vs `STEP_COST`: sparse backfills, long ticks); a busy
customer's batch of ~40 buckets goes bucket by bucket, where the tests themselves are the cost.
`python -m scripts.benchmarks.scoring` measures both and checks, by incident digest, that they decide alike.
"""

from __future__ import annotations

import math
import sys
from bisect import bisect_left
from collections.abc import Sequence
from itertools import repeat

import numpy as np

from logpulse.model import Incident, RequestBatch, ScoredBatch, Scores, Tick
from logpulse.scoring import per_bucket, runs
from logpulse.scoring.baselines import TrafficBaseline
from logpulse.scoring.history import History
from logpulse.scoring.incidents import latest_versions
from logpulse.scoring.per_bucket import EMPTY, Bucket
from logpulse.scoring.quiet import stretch as quiet_stretch
from logpulse.scoring.state import NO_KEYS, NO_SUMS, NS, ScorerState

WINSOR_SIGMAS = 3.0  # bucket sums clip ln(duration) at usual + max(3 sigma, ln 3)
MAX_RUN = 2400  # buckets completed as arrays in one step (20 h of 30 s buckets: < 1 day, bounds memory)
RUN_COST = (700.0, 0.3)  # µs per run of buckets as arrays, + per bucket (measured, `scripts.benchmarks.scoring`)
STEP_COST = (12.0, 1.0)  # µs per bucket one by one: with requests, + per bucket (empty ones are cheap)

SMALL_BATCH = 16  # lines: up to this, a batch's bucket sums are added up in Python when they can be exactly


Listed = tuple[list[int], list[Sequence[float]]]
"""Buckets as lists: their sorted indexes, and each one's sums (requests, ln d, ln² d, failed, 5xx)."""


def _few_per_bucket(idx: list[int], logs: np.ndarray, failed: np.ndarray, server: np.ndarray) -> Listed | None:
    """A small batch's (bucket keys, sums) when no bucket holds more than two of its lines, else None.

    The sums are the floats `np.add.reduceat` gives (its reduction adds the first element to the
    sum of the others, started at 0.0: x + (0.0 + y) for two), without its dozen numpy calls, which
    are most of a sparse customer's batch."""
    lines: dict[int, list[int]] = {}
    for j, key in enumerate(idx):
        at = lines.setdefault(key, [])
        if len(at) == 2:
            return None
        at.append(j)
    lg, fl, sv = logs.tolist(), failed.tolist(), server.tolist()
    keys = sorted(lines)
    cols: list[Sequence[float]] = []
    for key in keys:
        a, *more = lines[key]
        x = lg[a]
        if not more:
            cols.append((1.0, x, x * x, float(fl[a]), float(sv[a])))
        else:
            b = more[0]
            y = lg[b]
            cols.append((2.0, x + (0.0 + y), x * x + (0.0 + y * y), float(fl[a] + fl[b]), float(sv[a] + sv[b])))
    return keys, cols


# Recovery snapshots name classes by module path: those written while the history and the bucket
# sums were classes of this module find them under these names.
_History = History
_Bucket = Bucket


class CustomerScorer(ScorerState):
    """One customer's scoring state; `score` and `tick` are the Bytewax step's work.

    `vectorised=False` completes every bucket through the per-bucket path (the reference the
    vectorised runs are tested against)."""

    def score(self, batch: RequestBatch) -> ScoredBatch:
        times = np.asarray(batch.times, dtype=np.int64)
        logs = np.log(np.maximum(np.asarray(batch.durations, dtype=np.float64), 1e-6))
        failed = np.fromiter(map("400".__le__, batch.statuses), dtype=bool, count=len(batch.statuses))
        server = np.fromiter(map("500".__le__, batch.statuses), dtype=bool, count=len(batch.statuses))
        scale = self.latency_scale()
        scores: Scores
        if scale is None:
            scores = np.zeros(len(logs))
        else:  # winsorized: one very slow request is not a trend
            mu, sigma, clip = scale
            scores = np.round(np.maximum((logs - mu) / sigma, 0.0), 2).astype(np.float64)
            logs = np.minimum(logs, clip)
        return self.score_columns(batch, times, logs, failed, server, scores)

    def latency_scale(self) -> tuple[float, float, float] | None:
        """(mu, sigma, clip) of the latency baseline once warm: a request's score is
        `max(0, (ln d - mu) / sigma)`, rounded to 0.01, and bucket sums clip ln d at `clip`."""
        base = self.latency
        if not base.warm(self.config.warmup_buckets):
            return None
        mu, sigma = base.mu, base.sigma
        return mu, sigma, mu + max(WINSOR_SIGMAS * sigma, math.log(3.0))

    def score_columns(
        self,
        batch: RequestBatch,
        times: np.ndarray,
        logs: np.ndarray,
        failed: np.ndarray,
        server: np.ndarray,
        scores: Scores,
    ) -> ScoredBatch:
        """`score` on the batch's columns: event times (ns), ln(duration) already clipped, failed and
        5xx flags, the requests' scores (`latency_scale` as of before this batch). A shard of
        customers computes these for all its batches of a chunk at once (`scoring.shard`)."""
        return ScoredBatch(batch, scores, self.add_columns(times, logs, failed, server))

    def add_columns(
        self, times: np.ndarray, logs: np.ndarray, failed: np.ndarray, server: np.ndarray
    ) -> list[Incident]:
        """`score_columns` without the batch: the incidents its requests complete."""
        cfg = self.config
        out: list[Incident] = []
        if len(times) == 0:
            return out
        self.changed = True
        if self.next_bucket is not None:  # buckets a tick let wait are completed before anything is added
            self._complete_until(self.watermark - 1, out)
        idx = times // int(cfg.bucket_s * NS)
        # a small batch (most batches at 10,000 customers) is looked at as a list: numpy's reductions
        # cost microseconds each on arrays of one or two elements
        keys = idx.tolist() if len(idx) <= SMALL_BATCH else None
        top, low = (max(keys), min(keys)) if keys is not None else (int(idx.max()), int(idx.min()))
        if self.next_bucket is None:  # first data: at most HISTORY_S before it is judged, older is history
            self.next_bucket = self.first_bucket = max(low, top - self.windows.keep + 1)
        if low < self.next_bucket:
            late = idx < self.next_bucket
            self._learn_late(logs[late], failed[late])
            keep = ~late
            idx, logs, failed, server = idx[keep], logs[keep], failed[keep], server[keep]
            keys = idx.tolist() if keys is not None else None
        # a small batch's buckets merged into the pending ones as lists, not stored yet (None: stored)
        listed = self._add(idx, logs, failed, server, keys) if len(idx) else None
        self.watermark = max(self.watermark, top)
        self._complete_until(self.watermark - 1, out, listed)
        return latest_versions(out)

    def tick(self, tick: Tick) -> list[Incident]:
        """The stream clock moved on: complete this customer's buckets up to it, even if empty."""
        out: list[Incident] = []
        if self.next_bucket is None:
            return out
        self.watermark = max(self.watermark, tick.time_ns // int(self.config.bucket_s * NS))
        if self.can_wait(self.watermark - 1):
            return out
        self.changed = True
        self._complete_until(self.watermark - 1, out)
        return latest_versions(out)

    def can_wait(self, limit: int) -> bool:
        """May the buckets before `limit` stay uncompleted until the next batch or a later tick?

        Yes when they are all empty, nothing is open or brewing and they all lie before `silent_from`
        or where no drop is within reach (`per_bucket.drop_out_of_reach`):
        then completing them can only feed the baselines (no signal's gate opens: `per_bucket.complete`),
        so doing it later, before anything else touches this customer, decides exactly alike — and a
        customer that sends a few requests an hour costs a tick almost nothing (and its snapshot is
        the cached one, `changed` stays False). `score` completes them before adding its requests, so
        lines of those buckets count as late as they would have."""
        wait = self.wait_limit()
        return wait is not None and limit <= wait

    def wait_limit(self) -> int | None:
        """The largest `limit` for which `can_wait(limit)` holds (None: none, something is open or
        brewing). The state alone decides it, so a shard of customers (`scoring.shard`) knows from it
        at which tick each customer must next be completed, and leaves the others be."""
        if not self.quiet():
            return None
        first_pending = int(self.pending_keys[0]) if len(self.pending_keys) else sys.maxsize
        reach = self.silent_from
        if self.steady() and self.next_bucket is not None:
            if self.hist.total > self.cum_total:  # `cum` behind the rows of a run: bring it up to date
                self.rows_to_deque()
            reach = max(reach, self.next_bucket + per_bucket.drop_out_of_reach(self))
        return min(first_pending, reach)

    def _learn_late(self, logs: np.ndarray, failed: np.ndarray) -> None:
        if not self.trackers["latency"].is_open:
            self.latency.update(len(logs), float(logs.sum()), float((logs * logs).sum()), 0.0)
        if not self.trackers["errors"].is_open:
            self.errors.update(len(logs), int(failed.sum()), 0.0)

    def _add(
        self, idx: np.ndarray, logs: np.ndarray, failed: np.ndarray, server: np.ndarray, listed: list[int] | None = None
    ) -> Listed | None:
        """Sum the requests into their (not yet completed) buckets (`listed`: `idx` as a list, when the
        caller has it). A small batch whose buckets come in order is merged as lists and returned, not
        stored (`_pending_with`: the caller hands them to `_complete_until`, which stores the buckets it
        leaves pending); otherwise the pending buckets are stored as arrays and None is returned."""
        if listed is None and len(idx) <= SMALL_BATCH:
            listed = idx.tolist()
        small = _few_per_bucket(listed, logs, failed, server) if listed is not None else None
        in_order = self._pending_with(small) if small is not None else None
        if in_order is not None:  # most batches of most customers at 10,000 of them: a line or two a bucket
            return in_order
        if small is not None:
            keys, sums = np.array(small[0], dtype=np.int64), np.array(small[1], dtype=np.float64).T
        else:
            order = np.argsort(idx, kind="stable")
            idx, logs = idx[order], logs[order]
            starts = np.flatnonzero(np.concatenate(([True], idx[1:] != idx[:-1])))  # np.diff(prepend=): 5x slower
            keys = idx[starts]
            sums = np.add.reduceat(
                np.vstack([np.ones(len(idx)), logs, logs * logs, failed[order], server[order]]), starts, axis=1
            )
        old_keys, old = self.pending_keys, self.pending
        if len(old_keys) and keys[0] >= old_keys[-1]:  # in order (the usual case): append
            if keys[0] == old_keys[-1]:
                old = old.copy()
                old[:, -1] += sums[:, 0]
                keys, sums = keys[1:], sums[:, 1:]
            keys, sums = np.concatenate([old_keys, keys]), np.concatenate([old, sums], axis=1)
        elif len(old_keys):  # merge two sorted sets of buckets (each without repeats)
            both = np.union1d(old_keys, keys)
            merged = np.zeros((5, len(both)))
            merged[:, np.searchsorted(both, old_keys)] = old
            merged[:, np.searchsorted(both, keys)] += sums
            keys, sums = both, merged
        self.pending_keys, self.pending = keys, sums
        return None

    def _pending_with(self, small: Listed) -> Listed | None:
        """The pending buckets with a small batch's (`_few_per_bucket`) added, as lists, when its
        buckets come in order (none before the last pending one; the usual case), else None. Not
        stored: `_complete_until` takes them as they are and stores only the buckets it leaves
        pending — a quiet customer's batch never turns its few buckets into arrays and back."""
        keys, cols = small
        if not len(self.pending_keys):
            return keys, cols
        old_keys: list[int] = self.pending_keys.tolist()
        if keys[0] < old_keys[-1]:
            return None
        old: list[Sequence[float]] = self.pending.T.tolist()
        if keys[0] == old_keys[-1]:  # numpy's `old[:, -1] += sums[:, 0]`: the same float additions
            old[-1] = [a + b for a, b in zip(old[-1], cols[0], strict=True)]
            keys, cols = keys[1:], cols[1:]
        return old_keys + keys, old + cols

    def _set_pending(self, keys: list[int], cols: list[Sequence[float]]) -> None:
        if keys:
            self.pending_keys, self.pending = np.array(keys, dtype=np.int64), np.array(cols, dtype=np.float64).T
        else:
            self.pending_keys, self.pending = NO_KEYS, NO_SUMS

    # --- completing buckets ----------------------------------------------------------------------

    def _complete_until(self, limit: int, out: list[Incident], listed: Listed | None = None) -> None:
        """Complete every bucket before `limit`, in order, empty ones included.

        While no incident is open or brewing (or only what a run follows brews: `runs.may_start`),
        runs of buckets are completed as arrays (`runs.run`), which stops at the first bucket where
        an incident would open; that bucket takes the per-bucket path (`per_bucket.complete`). A long
        silence is skipped in one step.

        `listed`: the pending buckets as lists (`_pending_with`), standing for `pending_keys` and
        `pending`, which do not hold them yet."""
        assert self.next_bucket is not None
        k = self.next_bucket
        keys_a, vals = NO_KEYS, NO_SUMS
        columns: Sequence[Sequence[float]] = []
        if listed is not None:
            keys, columns = listed
            cut = bisect_left(keys, limit) if k < limit else 0
            self._set_pending(keys[cut:], columns[cut:])
            keys, columns = keys[:cut], columns[:cut]
            if k >= limit:
                return
        else:
            if k >= limit:
                return
            keys = self.pending_keys.tolist()  # a list: numpy's calls cost more on a few buckets
            if keys:
                cut = bisect_left(keys, limit)
                keys_a, vals, keys = self.pending_keys[:cut], self.pending[:, :cut], keys[:cut]
                if cut == len(self.pending_keys):
                    self.pending_keys, self.pending = NO_KEYS, NO_SUMS
                else:
                    self.pending_keys, self.pending = self.pending_keys[cut:], self.pending[:, cut:]
                columns = vals.T.tolist()
        m = min(limit - k, MAX_RUN)  # worth it? (runs cost a fixed number of numpy calls)
        use_runs = (
            self.vectorised and RUN_COST[0] + RUN_COST[1] * m < STEP_COST[0] * min(len(keys), m) + STEP_COST[1] * m
        )
        if use_runs and listed is not None and keys:
            keys_a, vals = np.array(keys, dtype=np.int64), np.array(columns, dtype=np.float64).T
        i, force = 0, False
        ahead = self.hist.total > self.cum_total  # runs appended rows `cum` has not got yet
        quiet: bool | None = None  # `self.quiet()`, asked again only after a step that may move a tracker
        hot = False  # not quiet, but a run may start (`runs.may_start`)
        while k < limit:
            while i < len(keys) and keys[i] < k:
                i += 1
            if not (use_runs or force or ahead) and self.vectorised:  # a quiet customer: `quiet.stretch`
                quiet = self.quiet() if quiet is None else quiet
                if quiet and self.steady():
                    start, k = k, quiet_stretch(self, k, limit, keys, columns, i, out)
                    quiet = None
                    if k > start:
                        continue
            has = i < len(keys) and keys[i] == k
            may_skip = not force and (use_runs or not has)
            if may_skip and quiet is None:
                quiet = self.quiet()
                hot = not quiet and use_runs and runs.may_start(self, k)  # a run follows what brews
            if may_skip and (quiet or hot):
                nxt = keys[i] if i < len(keys) else limit
                if quiet and not has and self.idle >= self.windows.keep:
                    k = self._fast_forward(k, nxt)
                    continue
                if use_runs and self.steady():
                    end = min(limit, k + MAX_RUN)
                    j = i + int(np.searchsorted(keys_a[i:], end))
                    self.rows_to_numpy()
                    k, force = runs.run(self, k, end, keys_a[i:j], vals[:, i:j])
                    ahead = self.hist.total > self.cum_total
                    quiet = None
                    continue
                if ahead:
                    self.rows_to_deque()
                    ahead = False
                if hot:
                    pass  # bucket by bucket
                elif not has and self.steady():  # no drop can be seen yet: before silent_from, or out of reach
                    end = self.silent_from if k < self.silent_from else k + per_bucket.drop_out_of_reach(self)
                    if min(nxt, end) > k:
                        k = per_bucket.skip_empty(self, k, min(nxt, end))
                        continue
                elif not has and k < self.silent_from:  # the level warms up: no closed form, no gate opens
                    k = per_bucket.skip_empty_warming(self, k, min(nxt, self.silent_from))
                    continue
            force = False
            if ahead:
                self.rows_to_deque()
                ahead = False
            if has:
                n, a, b, f, e = columns[i]
                per_bucket.complete(self, k, Bucket(int(n), a, b, int(f), int(e)), out)
            else:
                per_bucket.complete(self, k, EMPTY, out)
            quiet = None
            k += 1
        self.next_bucket = max(k, self.next_bucket)

    def _fast_forward(self, k: int, limit: int) -> int:
        """A customer silent for longer than every window, with nothing open: skip to `limit` (its
        next data or the end) in one step (one by one would cost a Python step per 30 s of silence)."""
        gap, keep, decay = limit - k, self.windows.depth, self.windows.decay
        self.latency.decay(gap, decay)
        self.errors.decay(gap, decay)
        self.traffic.level *= (1.0 - self.config.bucket_s / TrafficBaseline.LEVEL_S) ** gap
        if self.hist.total > self.cum_total:  # the rows of runs are the newer: extend those
            self.hist.extend(np.repeat(np.array([self.hist.last]), min(gap, keep), axis=0), gap)
        else:
            self.cum.extend(repeat(self.cum[-1], min(gap, keep)))
            self.cum_expected.extend(repeat(self.cum_expected[-1], min(gap, keep)))
            self.cum_total += gap
        self.idle += gap
        for t in self.trackers.values():
            t.run_start = None
        return k + gap
