"""The stream clock: event time as the logs tell it, sent to every customer as `Tick`s.

A customer who stops sending requests sends no batches, so its scorer would never run again and
its silence would never be seen. The clock (one key, one worker) follows the event time of every
file and, whenever it passes a new bucket, emits a `Tick` for every customer seen so far; the scorer
then completes that customer's empty buckets and `traffic_drop` can fire.

The clock is the *earliest* recent chunk start among files that are still moving (a file that fell
an hour behind the newest is treated as finished, not as holding time back), minus one bucket:
everything of a chunk reaches the scorer no earlier than the chunk's clock item, so a tick never
completes a bucket whose requests are still on their way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from logpulse.model import Tick

TICK_S = 30
STALE_FILE_NS = 3600 * 1_000_000_000


@dataclass
class StreamClock:
    files: dict[str, int] = field(default_factory=dict)  # path -> start of its latest chunk (ns)
    customers: set[str] = field(default_factory=set)
    last_tick: int = -1  # bucket index of the last tick sent

    def advance(self, path: str, earliest_ns: int, customers: list[str]) -> list[tuple[str, Tick]]:
        self.files[path] = max(earliest_ns, self.files.get(path, earliest_ns))
        self.customers.update(customers)
        newest = max(self.files.values())
        clock = min(t for t in self.files.values() if t >= newest - STALE_FILE_NS)
        bucket = clock // (TICK_S * 1_000_000_000) - 1
        if bucket <= self.last_tick:
            return []
        self.last_tick = bucket
        tick = Tick(bucket * TICK_S * 1_000_000_000)
        return [(c, tick) for c in sorted(self.customers)]

    @staticmethod
    def step(state: StreamClock | None, item: tuple[str, int, list[str]]) -> tuple[StreamClock, list[tuple[str, Tick]]]:
        """The Bytewax `stateful_flat_map` step."""
        clock = state or StreamClock()
        return clock, clock.advance(*item)
