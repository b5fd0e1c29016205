"""Which rows of the fleet's day replica the `writes` marks make it read again: a mark seen
half-written (one of its times missing, as a poll racing its write can see it) waits one poll for
its whole self instead of dropping the customer's every day, and covers every time only if that poll
does not show it whole; a mark polled while a day is read again whole applies to the table that read
replaces it with. Against a stand-in for InfluxDB's answers to the replica's reads (one row per
customer and day), which records what was asked and can hold reads back; timing races with a real
InfluxDB are too narrow to hit on purpose (the integration test checks the settled answers)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from logpulse.readmodel.cache import EVERY_TIME
from logpulse.readmodel.day_replica import DAY_NS, DayReplica
from logpulse.readmodel.plan import LEVELS
from logpulse.storage.histogram import LatencyHistogram

T0 = 1_700_000_000_000_000_000
DAYS = [20_000 * DAY_NS + i * DAY_NS for i in range(3)]
POLL = 500_000_000


class Days:
    """Answers each statement of a windows read with one row a day of every customer it names (every
    customer when it names none), and keeps the (customers, days) each statement asked for."""

    def __init__(self, customers: list[str]) -> None:
        self.customers = customers
        self.asked: list[tuple[tuple[str, ...], tuple[int, ...]]] = []
        self.hist = LatencyHistogram.from_values([0.005]).encode()
        self.answering = asyncio.Event()  # cleared: reads wait (a slow InfluxDB) until it is set
        self.answering.set()
        self.waiting = asyncio.Event()  # set once a read waits

    async def query(self, q: str) -> list[dict[str, Any]]:
        if not self.answering.is_set():
            self.waiting.set()
            await self.answering.wait()
        results = []
        for statement in q.split("; "):
            lo, hi = (int(t) for t in re.search(r"time >= (\d+) AND time < (\d+)", statement).groups())  # type: ignore[union-attr]
            who = tuple(re.findall(r"= '([^']*)'", statement)) or tuple(self.customers)
            days = tuple(d for d in DAYS if lo <= d < hi)
            self.asked.append((who, days))
            series = [
                {
                    "name": LEVELS[0].measurement,
                    "tags": {"customer_id": c},
                    "columns": ["time", "count", "hist", "compacted"],
                    "values": [[d + 1, 1, self.hist, None] for d in days],
                }
                for c in who
            ]
            results.append({"statement_id": 0, "series": series})
        return results


class Polled:
    """A replica over `Days` on a clock that each poll of the marks advances by POLL."""

    def __init__(self) -> None:
        self.influx = Days(["a", "b", "c"])
        self.replica = DayReplica(self.influx, LEVELS[0], 10**6)  # type: ignore[arg-type]
        self.now = T0
        self.replica.now_ns = lambda: self.now  # type: ignore[method-assign]

    def poll(self, *marks: tuple[str, int, int, int]) -> None:
        self.now += POLL
        self.replica.marks_polled(self.now, list(marks))


def test_a_half_written_mark_waits_a_poll_for_its_whole_self() -> None:
    polled = Polled()
    influx, replica, poll = polled.influx, polled.replica, polled.poll

    async def reads() -> list[tuple[tuple[str, ...], tuple[int, ...]]]:
        """What the next answer reads."""
        before = len(influx.asked)
        assert await replica.tables(DAYS) is not None
        return sorted(influx.asked[before:])

    async def run() -> None:
        poll()
        assert await reads() == [(("a", "b", "c"), tuple(DAYS))]  # the first answer loads the days
        poll(("a", polled.now + 1, *EVERY_TIME))  # seen half-written
        assert await reads() == []
        poll(("a", polled.now - POLL + 1, DAYS[1] + 5, DAYS[1] + 9))  # the next poll shows it whole
        assert await reads() == [(("a",), (DAYS[1],))]
        poll(("b", polled.now + 1, *EVERY_TIME))
        poll()  # not shown whole a poll later: it covers every time
        assert await reads() == [(("b",), (d,)) for d in DAYS]
        poll(("c", polled.now + 1, DAYS[2], DAYS[2]))
        assert await reads() == [(("c",), (DAYS[2],))]

    asyncio.run(run())


def test_a_mark_polled_while_a_whole_day_is_read_again_leaves_its_customer_dirty() -> None:
    """The read may have run before the mark's data was written: the mark must apply to what it loads,
    also when it replaces the day's table (a whole-day read: more than 90 % of the day dirty)."""
    polled = Polled()
    influx, replica, poll = polled.influx, polled.replica, polled.poll

    async def run() -> None:
        poll()
        assert await replica.tables(DAYS) is not None
        poll(*((c, polled.now + 1, DAYS[0], DAYS[0]) for c in "abc"))  # every customer of day 0: read whole
        influx.answering.clear()
        answer = asyncio.create_task(replica.tables(DAYS))
        await influx.waiting.wait()
        poll(("b", polled.now + 1, DAYS[0] + 3, DAYS[0] + 3))  # newer than the read's start
        influx.answering.set()
        assert await answer is not None
        before = len(influx.asked)
        assert await replica.tables(DAYS) is not None
        assert influx.asked[before:] == [(("b",), (DAYS[0],))]

    asyncio.run(run())
