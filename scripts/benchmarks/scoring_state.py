"""What the scoring state costs per customer, in process: the first --lines of the customer sweep's
day (`workloads.skewed_requests`, 1,000,000 lines over one day, --customers customers) go through
every shard's `ShardScorer` in 5,000-line chunks, each followed by the stream clock's tick; then
tracemalloc's figure per customer (everything allocated since the scorers were empty, divided by the
customers met) and a walk of each customer's state by attribute (shared objects, such as the window
sizes, counted once per customer: an upper bound for them).

    .venv/bin/python -m scripts.benchmarks.scoring_state --lines 200000 --customers 10000
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import sys
import tracemalloc
from collections import Counter
from typing import Any

import numpy as np

from logpulse.config import Settings
from logpulse.model import RequestColumns, Tick
from logpulse.scoring.baselines import ScoringConfig
from logpulse.scoring.shard import ShardScorer, by_shard, tick_per_shard

from .workloads import skewed_requests

CHUNK = 5000


def deep_size(o: Any, seen: set[int]) -> int:
    """Bytes of `o` and of everything it refers to that `seen` does not hold yet."""
    if id(o) in seen:
        return 0
    seen.add(id(o))
    size = sys.getsizeof(o)
    if isinstance(o, np.ndarray):
        return size if o.base is None else size + deep_size(o.base, seen)
    if isinstance(o, dict):
        return size + sum(deep_size(k, seen) + deep_size(v, seen) for k, v in o.items())
    if isinstance(o, list | tuple | set | frozenset) or type(o).__name__ == "deque":
        return size + sum(deep_size(x, seen) for x in o)
    if isinstance(o, str | int | float | bool | bytes | type(None)):
        return size
    if hasattr(o, "__dict__"):
        size += deep_size(o.__dict__, seen)
    for cls in type(o).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if hasattr(o, name):
                size += deep_size(getattr(o, name), seen)
    return size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--customers", type=int, default=10_000)
    args = ap.parse_args()
    day = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=1)
    r = skewed_requests(1_000_000, args.customers, day, 86400, 1.0, seed=args.customers)
    n = min(args.lines, len(r.times))
    times = (r.times[:n] * 1e9).astype(np.int64)
    config, shards = ScoringConfig.from_settings(Settings()), Settings().scoring_shards
    shard = {str(i): ShardScorer(config) for i in range(shards)}
    met: set[str] = set()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for a in range(0, n, CHUNK):
        names = r.customers[a : a + CHUNK].tolist()
        distinct = list(dict.fromkeys(names))
        number = {c: i for i, c in enumerate(distinct)}
        durations = [str(d) for d in r.durations[a : a + CHUNK].tolist()]
        cols = RequestColumns(
            distinct,
            np.array([number[c] for c in names], dtype=np.int64),
            times[a : a + CHUNK].tolist(),
            r.paths[a : a + CHUNK].tolist(),
            r.statuses[a : a + CHUNK].tolist(),
            durations,
        )
        for key, item in by_shard(cols, shards):
            shard[key].score(item)
        joined = tuple(c for c in distinct if c not in met)
        met.update(joined)
        for key, tick in tick_per_shard(Tick(int(times[min(a + CHUNK, n) - 1]), joined), shards):
            shard[key].tick(tick)
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    scorers = [s for sh in shard.values() for s in sh.scorers.values()]
    count = len(scorers)
    print(f"{n:,} lines, {count:,} customers: {traced / count / 1024:.2f} KB per customer (tracemalloc)")
    parts: Counter[str] = Counter()
    for s in scorers:
        seen = {id(s.config)}
        parts["(object)"] += sys.getsizeof(s)
        for name, value in vars(s).items():
            parts[name] += deep_size(value, seen)
    print(f"walk: {sum(parts.values()) / count / 1024:.2f} KB per customer; bytes per customer by attribute:")
    for name, size in parts.most_common(12):
        print(f"  {name:14s} {size / count:7,.0f}")


if __name__ == "__main__":
    main()
