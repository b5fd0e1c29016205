"""The answer cache's poll of the `writes` marks, on the rows InfluxDB 1.x can return. It stores each
field of a point on its own, so a poll racing the write of a mark can see only one of its times: that
row must invalidate (everything of its customer), never end the poll with an exception."""

from __future__ import annotations

import asyncio
from typing import Any

from logpulse.readmodel.cache import EVERY_TIME, AnswerCache, Mark

NOW = 1_700_000_000_000_000_000


class Marks:
    """What InfluxDB answers the poll's one statement: mark rows of customers, some incomplete."""

    def __init__(self, rows: list[tuple[str, int, int | None, int | None]]) -> None:
        self.rows = rows

    async def query(self, _q: str) -> list[dict[str, Any]]:
        series = [
            {
                "name": "writes",
                "tags": {"customer_id": c},
                "columns": ["time", "min_time", "max_time"],
                "values": [[t, lo, hi]],
            }
            for c, t, lo, hi in self.rows
        ]
        return [{"statement_id": 0, "series": series}]


class Follower:
    def __init__(self) -> None:
        self.marks: list[Mark] = []

    def marks_polled(self, started_ns: int, marks: list[Mark]) -> None:
        self.marks += marks


def cache_with(entries: dict[str, tuple[int, int]]) -> AnswerCache:
    cache = AnswerCache(ttl_s=60)
    for customer, (start, end) in entries.items():
        cache.put((customer,), NOW - 10**9, f"answer of {customer}", customer, start, end)
    return cache


def poll(cache: AnswerCache, rows: list[tuple[str, int, int | None, int | None]]) -> None:
    cache.now_ns = lambda: NOW  # type: ignore[method-assign]
    asyncio.run(cache.poll_once(Marks(rows)))  # type: ignore[arg-type]


def test_a_mark_seen_half_written_invalidates_every_answer_of_its_customer() -> None:
    day = 86_400 * 10**9
    cache = cache_with({"a": (5 * day, 6 * day), "b": (0, day), "c": (5 * day, 6 * day)})
    follower = Follower()
    cache.follow(follower)
    poll(cache, [("a", NOW, None, 10), ("c", NOW, 3, None), ("b", NOW, 7 * day, 8 * day)])
    assert cache.get(("a",)) is None  # min_time missing: a's answer on day 5 goes, though max_time is day 0
    assert cache.get(("c",)) is None  # max_time missing: c's answer goes too
    assert cache.get(("b",)) is not None  # a whole mark outside b's answer leaves it
    assert follower.marks == [("a", NOW, *EVERY_TIME), ("c", NOW, *EVERY_TIME), ("b", NOW, 7 * day, 8 * day)]


def test_whole_marks_invalidate_only_what_they_overlap() -> None:
    cache = cache_with({"a": (0, 100), "b": (200, 300)})
    poll(cache, [("a", NOW, 50, 60), ("b", NOW, 400, 500)])
    assert cache.get(("a",)) is None
    assert cache.get(("b",)) is not None
