"""The scoring benchmark's child: one revision's scorer over one log (see `scoring`).

Runs as `python -m scripts.benchmarks.scoring_child LOG` from the repository root with PYTHONPATH set
to the revision's `src`, so that `logpulse` is that revision's. It imports nothing else of this
package: `support` needs the working tree's `logpulse`, which an older revision may not match. Prints
one JSON line.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import time
from pathlib import Path
from typing import Any

CHUNK = 1 << 20
SHARDS = 64  # SCORING_SHARDS' default


def child(log: Path, repeat: int, mode: str = "") -> dict[str, Any]:
    """Score `log` `repeat` times with the `logpulse` on PYTHONPATH; its cost per line and incident digest."""
    if mode == "runs":  # runs of buckets as arrays wherever allowed, however short (equivalence check)
        from logpulse.scoring import scorer as scorer_module

        scorer_module.RUN_COST = (0.0, 0.0)
    from logpulse.config import Settings
    from logpulse.formats.logpulse import parse_chunk
    from logpulse.model import Chunk

    if os.environ.get("LOG_FORMAT", "logpulse") != "logpulse":  # another format, as LOG_FORMAT & co. say
        from logpulse.formats.registry import build_parser

        parse_chunk = build_parser(Settings(_env_file=None)).parse_chunk  # type: ignore[call-arg]

    try:  # the scorer in its own module, with the stream clock
        from logpulse.scoring.baselines import ScoringConfig
        from logpulse.scoring.clock import StreamClock
        from logpulse.scoring.scorer import CustomerScorer
    except ImportError:  # older revisions: scorer and config in baselines, no clock
        from logpulse.scoring.baselines import CustomerScorer, ScoringConfig  # type: ignore[attr-defined,no-redef]

        StreamClock = None  # type: ignore[assignment,misc]
    try:  # scoring keyed by shard of customers: the dataflow's `score` step state
        from logpulse.scoring.shard import ShardScorer, by_shard, tick_per_shard
    except ImportError:  # (or sharded before ticks named the customers the clock met: scored per customer)
        ShardScorer = None  # type: ignore[assignment,misc]

    data = log.read_bytes()
    chunks, offset = [], 0
    while offset < len(data):
        end = data.rfind(b"\n", offset, offset + CHUNK) + 1 if offset + CHUNK < len(data) else len(data)
        chunks.append(Chunk(str(log), 1, offset, data[offset:end]))
        offset = end
    t0 = time.process_time()
    parsed = [parse_chunk(c) for c in chunks]
    parse_s = time.process_time() - t0
    lines = sum(len(b) for p in parsed for b in p.batches.values())
    # the clock takes each chunk's wall time of arrival where it knows idle files (older revisions do not)
    clock_wall = StreamClock is not None and "wall_ns" in inspect.signature(StreamClock.advance).parameters
    config = ScoringConfig.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]
    best, incidents = float("inf"), {}
    if ShardScorer is not None and mode != "per-bucket":
        for _ in range(repeat):
            t0 = time.process_time()
            final, versions = _sharded(parsed, str(log), config, ShardScorer, by_shard, tick_per_shard, StreamClock())
            best = min(best, time.process_time() - t0)
            incidents = final
    for _ in range(repeat if ShardScorer is None or mode == "per-bucket" else 0):
        scorers: dict[str, Any] = {}
        clock = StreamClock() if StreamClock is not None else None
        final = {}
        versions = 0
        t0 = time.process_time()
        for p in parsed:
            for customer, batch in p.batches.items():
                scorer = scorers.get(customer)
                if scorer is None:
                    scorer = scorers[customer] = CustomerScorer(customer, config)
                    if mode == "per-bucket":
                        scorer.vectorised = False
                for inc in scorer.score(batch).incidents:
                    final[(inc.customer_id, inc.kind, inc.start_ns)] = inc
                    versions += 1
            if clock is not None and p.batches:
                earliest = min(min(b.times) for b in p.batches.values() if b.times)
                wall = {"wall_ns": time.time_ns()} if clock_wall else {}
                for customer, tick in _ticks(clock, str(log), earliest, list(p.batches), wall):
                    for inc in scorers[customer].tick(tick):
                        final[(inc.customer_id, inc.kind, inc.start_ns)] = inc
                        versions += 1
        best = min(best, time.process_time() - t0)
        incidents = final
    digest = hashlib.sha256(
        json.dumps(
            sorted(
                (i.customer_id, i.kind, i.start_ns, i.end_ns, getattr(i, "status", ""), i.peak_score, i.requests)
                for i in incidents.values()
            )
        ).encode()
    ).hexdigest()[:12]
    kinds: dict[str, int] = {}
    for i in incidents.values():
        kinds[i.kind] = kinds.get(i.kind, 0) + 1
    return {
        "lines": lines,
        "parse_us_per_line": parse_s / lines * 1e6,
        "score_us_per_line": best / lines * 1e6,
        "score_s": best,
        "incidents": len(incidents),
        "versions": versions,
        "kinds": kinds,
        "digest": digest,
    }


def _ticks(clock: Any, path: str, earliest: int, customers: list[str], wall: dict[str, int]) -> list[tuple[str, Any]]:
    """The clock's ticks to each known customer (a clock that ticks shards: the same tick to every one)."""
    if "customers" in inspect.signature(clock.advance).parameters:
        return clock.advance(path, earliest, customers, **wall)  # type: ignore[no-any-return]
    tick = clock.advance(path, earliest, **wall)
    known = clock.__dict__.setdefault("known", set())
    known.update(customers)
    return [(c, tick) for c in sorted(known)] if tick is not None else []


def _sharded(
    parsed: list[Any], path: str, config: Any, shard_scorer: Any, by_shard: Any, tick_per_shard: Any, clock: Any
) -> tuple[dict[tuple[str, str, int], Any], int]:
    """As the dataflow scores: each chunk's batches grouped by shard, then its tick to every shard."""
    shards: dict[str, Any] = {}
    final: dict[tuple[str, str, int], Any] = {}
    versions = 0
    columns = "requests" in inspect.signature(by_shard).parameters  # older revisions: per-customer batches
    for p in parsed:
        outs = []
        for key, item in by_shard(p.requests if columns else p.batches, SHARDS):
            shard = shards.get(key)
            if shard is None:
                shard = shards[key] = shard_scorer(config)
            outs += shard.score(item)
        if p.batches:
            earliest = min(min(b.times) for b in p.batches.values() if b.times)
            tick = clock.advance(path, earliest, wall_ns=time.time_ns(), seen=list(p.batches))
            for key, shard_tick in tick_per_shard(tick, SHARDS) if tick is not None else ():
                if key in shards:
                    outs += shards[key].tick(shard_tick)
        for out in outs:
            for inc in getattr(out, "incidents", ()):  # (a shard's scored rows carry none)
                final[(inc.customer_id, inc.kind, inc.start_ns)] = inc
                versions += 1
    return final, versions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("log", type=Path)
    ap.add_argument("--repeat", type=int, default=1, help="best of this many scoring passes")
    ap.add_argument("--mode", default="", help="per-bucket | runs (runs as arrays wherever allowed) | empty")
    args = ap.parse_args()
    print(json.dumps(child(args.log, args.repeat, args.mode)))


if __name__ == "__main__":
    main()
