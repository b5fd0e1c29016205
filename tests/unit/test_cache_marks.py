"""The answer cache's poll of the `writes` marks, on the rows InfluxDB 1.x can return. It stores each
field of a point on its own, so a poll racing the write of a mark can see only one of its times: that
row must invalidate (everything of its customer), never end the poll with an exception."""

from __future__ import annotations

import asyncio
from typing import Any

from logpulse.readmodel.cache import EVERY_CUSTOMER, EVERY_TIME, AnswerCache, Mark

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


class Packed:
    """What InfluxDB answers for packed marks (`storage/marks.py`): one row per (writer, time)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, int, str | None]] = []  # writer, time, customers (None: not visible yet)

    async def query(self, _q: str) -> list[dict[str, Any]]:
        series = [
            {
                "name": "writes",
                "tags": {"customer_id": "", "writer": w},
                "columns": ["time", "min_time", "max_time", "every", "customers"],
                "values": [[t, 0, 2**62, None, packed]],
            }
            for w, t, packed in self.rows
        ]
        return [{"statement_id": 0, "series": series}]


def polled(cache: AnswerCache, source: Packed, at: int) -> list[Mark]:
    follower = Follower()
    cache._followers = [follower]  # only this poll's marks
    cache.now_ns = lambda: at  # type: ignore[method-assign]
    asyncio.run(cache.poll_once(source))  # type: ignore[arg-type]
    return follower.marks


def test_each_mark_is_handed_on_once_though_every_poll_reads_it_again() -> None:
    source, cache = Packed(), AnswerCache(ttl_s=60)
    source.rows = [("0", NOW - 10, "a,1,2 b,3,4")]
    assert polled(cache, source, NOW) == [("a", NOW - 10, 1, 2), ("b", NOW - 10, 3, 4)]
    source.rows.append(("1", NOW - 10, "a,5,6"))  # another writer, same nanosecond: another mark
    assert polled(cache, source, NOW + 500_000_000) == [("a", NOW - 10, 5, 6)]
    assert polled(cache, source, NOW + 10**9) == []


def test_a_packed_mark_seen_without_its_customers_waits_one_poll_then_covers_everyone() -> None:
    day = 86_400 * 10**9
    source, cache = Packed(), cache_with({"a": (0, day), "b": (day, 2 * day)})
    source.rows = [("0", NOW - 10, None)]
    assert polled(cache, source, NOW) == []  # followers wait for the next poll...
    assert cache.get(("a",)) is None and cache.get(("b",)) is None  # ...the cache's own answers go at once
    source.rows = [("0", NOW - 10, "a,1,2")]  # whole by the next poll: applied as written
    assert polled(cache, source, NOW + 1) == [("a", NOW - 10, 1, 2)]
    source.rows = [("0", NOW - 5, None)]
    assert polled(cache, source, NOW + 2) == []
    assert polled(cache, source, NOW + 3) == [("", NOW - 5, *EVERY_TIME)]  # still half: every customer
    assert polled(cache, source, NOW + 4) == []


def test_an_answer_computed_before_a_mark_applied_while_it_ran_is_not_stored() -> None:
    """The mark is applied once; an answer whose query started before it and that is stored after the
    poll must not outlive it (it may lack the mark's data)."""
    source, cache = Packed(), AnswerCache(ttl_s=60)
    source.rows = [("0", NOW - 10, "a,100,200")]
    polled(cache, source, NOW)
    cache.put(("a", 1), NOW - 20, "missed the mark's data", "a", 150, 300)
    cache.put(("a", 2), NOW - 20, "outside the mark's range", "a", 300, 400)
    cache.put(("b",), NOW - 20, "another customer", "b", 150, 300)
    cache.put(("a", 3), NOW - 5, "started after the mark", "a", 150, 300)
    cache.put(("fleet",), NOW - 20, "every customer", EVERY_CUSTOMER, 0, 10)
    assert cache.get(("a", 1)) is None and cache.get(("fleet",)) is None
    assert all(cache.get(k) is not None for k in [("a", 2), ("b",), ("a", 3)])
