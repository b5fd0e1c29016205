"""The stream clock: event time as the logs agree on it, sent to every scoring shard as `Tick`s.

A customer who stops sending requests sends no batches, so its scorer would never run again and
its silence would never be seen. The clock (one key, one worker) follows the event time of every
file and, whenever it passes a new bucket, emits a `Tick`, which goes to every shard of customers
(`scoring.shard`); the shard completes the empty buckets of each customer whose silence could now
matter, and `traffic_drop` can fire.

A tick is final (buckets it completes are judged; later lines of them count as late), so the clock
must never run ahead of what the files agree on. The rule (docs/scoring.md, "The stream clock"):

- a file's clock is the median of the starts (earliest line) of its last `FILE_CHUNKS` chunks, and
  never goes back: one chunk of outliers (a POST of a single line dated an hour ahead) does not
  move it;
- the stream clock is the earliest clock among the files still moving, minus one bucket
  (everything of a chunk reaches the scorer no earlier than the chunk's clock item, so a tick never
  completes a bucket whose requests are still on their way);
- a file stops holding the clock back when it delivered nothing for `IDLE_WALL_S` of wall-clock time,
  or when it is more than `STALE_FILE_NS` behind the *lower median* of the files' clocks (a finished
  file of an ingest). Measured against the median, not the newest file: one file running ahead
  cannot declare every other file finished;
- the stream clock never passes this host's wall clock: event time cannot be ahead of now (lines
  dated beyond now + MAX_FUTURE_S are already refused by `formats.validate`).

A clock restored from a snapshot written before these rules (a file or tick beyond now +
MAX_FUTURE_S) drops what is beyond and goes on from the files' real times.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from logpulse.model import Tick

TICK_S = 30
STALE_FILE_NS = 3600 * 1_000_000_000
IDLE_WALL_S = 60.0
FILE_CHUNKS = 5
MAX_FUTURE_NS = 300 * 1_000_000_000
"""How far ahead of this host's clock a restored time may be before it is dropped (MAX_FUTURE_S)."""
_TICK_NS = TICK_S * 1_000_000_000


@dataclass
class _FileClock:
    recent: deque[int] = field(default_factory=lambda: deque(maxlen=FILE_CHUNKS))  # starts of its last chunks
    clock: int = -1  # median of `recent`, never decreasing
    seen_wall_ns: int = 0  # wall clock of its last chunk (0: restored, not seen since)

    def add(self, earliest_ns: int, wall_ns: int) -> None:
        self.recent.append(earliest_ns)
        self.clock = max(self.clock, int(statistics.median_low(self.recent)))
        self.seen_wall_ns = wall_ns


@dataclass
class StreamClock:
    files: dict[str, _FileClock] = field(default_factory=dict)
    last_tick: int = -1  # bucket index of the last tick sent
    customers: set[str] = field(default_factory=set)  # every customer met
    joined: list[str] = field(default_factory=list)  # met since the last tick: the next tick names them

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Snapshots of the earlier clock (`files` as path -> ns, the customers it ticked) restore; times
        beyond now + MAX_FUTURE_S (a clock poisoned by a line from the future) are dropped."""
        latest = time.time_ns() + MAX_FUTURE_NS
        files: dict[str, _FileClock] = {}
        for path, value in state.get("files", {}).items():
            f = (
                value
                if isinstance(value, _FileClock)
                else _FileClock(deque([int(value)], maxlen=FILE_CHUNKS), int(value))
            )
            f.seen_wall_ns = 0  # the files get IDLE_WALL_S after the restart to deliver again
            if f.clock <= latest:
                files[path] = f
        self.files = files
        self.customers = set(state.get("customers", ()))
        self.joined = list(state.get("joined", ()))
        last = int(state.get("last_tick", -1))
        self.last_tick = last if last * _TICK_NS <= latest else -1

    def advance(self, path: str, earliest_ns: int, wall_ns: int, seen: Iterable[str] = ()) -> Tick | None:
        """One chunk of `path` starting at `earliest_ns`, with the customers `seen` in it, reached the
        clock at wall time `wall_ns`: the tick it passes, if any."""
        for customer in seen:
            if customer not in self.customers:
                self.customers.add(customer)
                self.joined.append(customer)
        f = self.files.get(path)
        if f is None:
            f = self.files[path] = _FileClock()
        f.add(earliest_ns, wall_ns)
        for other in self.files.values():
            if other.seen_wall_ns == 0:
                other.seen_wall_ns = wall_ns
        median = statistics.median_low(x.clock for x in self.files.values())
        idle_ns = int(IDLE_WALL_S * 1_000_000_000)
        moving = [
            x.clock
            for x in self.files.values()
            if x is f or (wall_ns - x.seen_wall_ns <= idle_ns and x.clock >= median - STALE_FILE_NS)
        ]
        clock = min(min(moving), wall_ns)
        bucket = clock // _TICK_NS - 1
        if bucket <= self.last_tick:
            return None
        self.last_tick = bucket
        tick = Tick(bucket * _TICK_NS, tuple(self.joined))
        self.joined = []
        return tick

    @staticmethod
    def step(state: StreamClock | None, item: tuple[str, int, list[str]]) -> tuple[StreamClock, list[Tick]]:
        """The Bytewax `stateful_flat_map` step: (file, earliest event time of its chunk, its customers)
        -> its tick."""
        clock = state or StreamClock()
        path, earliest, seen = item
        tick = clock.advance(path, earliest, wall_ns=time.time_ns(), seen=seen)
        return clock, [tick] if tick is not None else []


def poisoned(watermark_ns: int, max_future_ns: int = MAX_FUTURE_NS) -> bool:
    """A scorer whose clock is beyond now + MAX_FUTURE_S (restored from a snapshot written before
    lines were validated) has completed buckets that have not happened: it must start afresh."""
    return watermark_ns > time.time_ns() + max_future_ns
