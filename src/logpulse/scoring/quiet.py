"""A quiet customer's buckets one by one, without the general loop's bookkeeping per bucket.

At 10,000 customers most batches belong to customers sending a request every few minutes: each
batch completes two or three buckets holding a request or two, and the silences between them. For
those customers nothing is open or brewing, and for nearly every such bucket every signal's gate of
`per_bucket.complete` stays closed: the bucket only feeds the baselines. `stretch` walks such a
customer's buckets in one loop — its gates evaluated as `complete` evaluates them for idle trackers,
the baselines fed by the same calls in the same order, silences taken by `per_bucket.skip_empty`
exactly where `CustomerScorer._complete_until` takes it — and hands back to the general loop as soon
as something is open or brewing, or a silence could be skipped in one step. A bucket whose gate
opens takes `per_bucket.signals`, the reference, so decisions are those of the general loop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from logpulse.model import Incident
from logpulse.scoring import per_bucket
from logpulse.scoring.per_bucket import EMPTY, Bucket
from logpulse.scoring.signals import MIN_LATENCY_REQUESTS
from logpulse.scoring.state import MIN_EXPECTED_FOR_DROP, MIN_SURGE_BUCKET, ScorerState


def stretch(
    s: ScorerState,
    k: int,
    limit: int,
    keys: list[int],
    columns: Sequence[Sequence[float]],
    i: int,
    out: list[Incident],
) -> int:
    """Complete buckets k, k+1, ... before `limit` of a quiet, steady customer whose `cum` is up to
    date (`keys`: the pending buckets' indexes, sorted, from `i` on; `columns`: their sums); returns the first
    bucket not completed: `limit`, or where the customer is no longer quiet or has been silent for
    longer than every window (`CustomerScorer._fast_forward`'s case)."""
    win, traffic, lat, err = s.windows, s.traffic, s.latency, s.errors
    cum = s.cum
    hot, half_ln, half_factor, decay = win.hot, win.half_ln_ratio, win.half_factor, win.decay
    slo = win.slo_target is not None
    size = len(keys)
    while k < limit:
        while i < size and keys[i] < k:
            i += 1
        if i == size or keys[i] != k:  # a silence: in one step where no drop can be seen yet
            if s.idle >= win.keep:
                return k
            end = s.silent_from if k < s.silent_from else k + per_bucket.drop_out_of_reach(s)
            end = min(keys[i] if i < size else limit, end)
            if end > k:
                k = per_bucket.skip_empty(s, k, end)
                continue
            per_bucket.complete(s, k, EMPTY, out)
            k += 1
            if not s.quiet():
                return k
            continue
        n_, log_sum, log_sq, f_, e_ = columns[i]
        n, failed, server = int(n_), int(f_), int(e_)
        # `complete` with idle trackers: the row, then the gates
        expected = per_bucket.append_row(s, k, n, log_sum, log_sq, failed, server)
        total = cum[-1][0]
        recent = total - (cum[-1 - hot] if len(cum) > hot else cum[0])[0]
        judged = recent >= MIN_LATENCY_REQUESTS
        if (
            (judged and (failed or log_sum / n - lat.mu >= half_ln))
            or (n >= expected * half_factor and n >= MIN_SURGE_BUCKET)
            or n <= expected / half_factor
            or (slo and server)
        ):
            per_bucket.signals(s, k, Bucket(n, log_sum, log_sq, failed, server), expected, out)
            k += 1
            if not s.quiet():
                return k
            continue
        lat.update(n, log_sum, log_sq, decay)
        err.update(n, failed, decay)
        traffic.update(k, n, learn=True)
        s.silent_from = k + math.ceil(MIN_EXPECTED_FOR_DROP / max(expected, 1e-9))
        k += 1
    return k
