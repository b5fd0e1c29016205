"""A short-lived cache of API answers that the processor's writes invalidate.

The sink writes a `writes` mark (customer, [min_time, max_time], time of writing) after InfluxDB
acknowledged data. One background poll every POLL_S reads the marks of the last few seconds and
drops every cached answer that was computed before a mark of its customer whose range overlaps the
answer's range. A cached answer therefore includes all data acknowledged before the last poll
(normally under a second before the request; TRUST_S at most while InfluxDB is slow to answer
polls), and is at most STATS_CACHE_S old. If polling fails for longer, the cache is bypassed; if
polls resume after a gap longer than their look-back could bridge, every cached answer is dropped.

Other holders of derived data (the fleet's day replica) follow the same marks: `follow` hands them
every successful poll's marks, and the poll then runs even with STATS_CACHE_S=0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

from logpulse.readmodel import influxql
from logpulse.storage.influx import AsyncInfluxQuery, InfluxError, series_rows

log = logging.getLogger(__name__)
POLL_S = 0.5
LOOKBACK_NS = 10 * 1_000_000_000  # marks may become visible a little after their timestamp
TRUST_S = 5.0  # serve cached answers only while the last successful poll started at most this long ago
POLL_GAP_NS = LOOKBACK_NS // 2
"""Successful polls further apart than this may have missed marks (a mark becomes visible up to a few
seconds after its timestamp, and a poll reads LOOKBACK_NS back): what was derived before is dropped."""
EVERY_CUSTOMER = "(every customer)"
"""The customer of a cached answer built from every customer's data: any customer's write mark
invalidates it. Not a customer id (unlike `*`, the customer of the fleet-wide rollup points)."""
ANY_CUSTOMER = ""
"""The customer of a mark that has none: a writer's restart mark (`points.restart_mark_line`), which
covers every customer and every time."""
T = TypeVar("T")
EVERY_TIME = (-(2**63), 2**63 - 1)
Mark = tuple[str, int, int, int]
"""A `writes` mark: (customer, time of writing ns, min_time ns, max_time ns)."""


def _mark(tags: dict[str, str], row: dict[str, Any]) -> Mark:
    """A mark row as polled. InfluxDB 1.x stores each field of a point on its own, so a poll racing the
    write of a mark can see one of its two times missing: such a mark counts as covering every time
    (what it invalidates is read again; the next poll sees it whole)."""
    lo, hi = row.get("min_time"), row.get("max_time")
    if lo is None or hi is None:
        lo, hi = EVERY_TIME
    return tags.get("customer_id", ""), int(row["time"]), int(lo), int(hi)


class MarkFollower(Protocol):
    def marks_polled(self, started_ns: int, marks: list[Mark]) -> None:
        """A poll that started at started_ns succeeded and found these marks."""


@dataclass
class _Entry:
    computed_ns: int
    value: Any
    customer: str
    start_ns: int
    end_ns: int


class AnswerCache:
    """Answers by key, their ranges, and single-flight computation (one query per key at a time)."""

    def __init__(self, ttl_s: float) -> None:
        self._ttl_ns = int(ttl_s * 1e9)
        self._entries: dict[tuple[Any, ...], _Entry] = {}
        self._healthy_until_ns = 0
        self._task: asyncio.Task[None] | None = None
        self._inflight: dict[tuple[Any, ...], asyncio.Future[Any]] = {}
        self._refreshing: set[asyncio.Task[Any]] = set()
        self._followers: list[MarkFollower] = []
        self._polled_ns: int | None = None  # start of the last successful poll

    async def fetch(self, key: tuple[Any, ...], compute: Callable[[], Awaitable[tuple[T, str, int, int]]]) -> T:
        """The cached answer for key, else compute() once however many requests wait for it.

        compute returns (answer, customer, start_ns, end_ns). A stale answer is returned at once and
        refreshed in the background (stale-while-revalidate)."""
        hit = self.get(key)
        if hit is not None:
            value, fresh = hit
            if not fresh and key not in self._inflight:
                task = asyncio.create_task(self._compute(key, compute))
                self._refreshing.add(task)
                task.add_done_callback(self._refreshing.discard)
            return cast(T, value)
        if key in self._inflight:
            return cast(T, await asyncio.shield(self._inflight[key]))
        return await self._compute(key, compute)

    async def _compute(self, key: tuple[Any, ...], compute: Callable[[], Awaitable[tuple[T, str, int, int]]]) -> T:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        started = self.now_ns()
        try:
            value, customer, start_ns, end_ns = await compute()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            self._inflight.pop(key, None)
        self.put(key, started, value, customer, start_ns, end_ns)
        future.set_result(value)
        return value

    @staticmethod
    def now_ns() -> int:
        return time.time_ns()

    def get(self, key: tuple[Any, ...]) -> tuple[Any, bool] | None:
        """(answer, fresh) if a valid answer is cached. An answer no write has touched stays correct;
        past STATS_CACHE_S it is still served once more but marked stale, so the caller refreshes it."""
        e = self._entries.get(key)
        now = self.now_ns()
        if e is None or now > self._healthy_until_ns:
            return None
        return e.value, now - e.computed_ns <= self._ttl_ns

    def put(
        self, key: tuple[Any, ...], computed_ns: int, value: Any, customer: str, start_ns: int, end_ns: int
    ) -> None:
        """Store an answer computed from a query that *started* at computed_ns."""
        if self._ttl_ns <= 0:
            return
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[key] = _Entry(computed_ns, value, customer, start_ns, end_ns)

    def invalidate(self, customer: str, mark_ns: int, lo: int, hi: int) -> None:
        for key, e in list(self._entries.items()):
            if (
                (customer == ANY_CUSTOMER or e.customer in (customer, EVERY_CUSTOMER))
                and mark_ns > e.computed_ns
                and lo < e.end_ns
                and hi >= e.start_ns
            ):
                self._entries.pop(key, None)

    def follow(self, follower: MarkFollower) -> None:
        """Hand every successful poll's marks to `follower` as well (call before `start`)."""
        self._followers.append(follower)

    async def poll_once(self, client: AsyncInfluxQuery) -> None:
        started = self.now_ns()
        results = await client.query(influxql.marks_since(started - LOOKBACK_NS))
        marks = [_mark(tags, row) for tags, row in series_rows(results[0])]
        if self._polled_ns is not None and started - self._polled_ns > POLL_GAP_NS:
            self._entries.clear()  # marks written between the two polls may be out of this one's reach
        self._polled_ns = started
        for customer, mark_ns, lo, hi in marks:
            self.invalidate(customer, mark_ns, lo, hi)
        # answers computed before `started` are checked against every mark up to `started`
        self._healthy_until_ns = started + int(TRUST_S * 1e9)
        for follower in self._followers:
            follower.marks_polled(started, marks)

    async def run(self, client: AsyncInfluxQuery) -> None:
        while True:
            try:
                await self.poll_once(client)
            except InfluxError as exc:
                log.debug("cache invalidation poll failed: %s", exc)
            except Exception:  # a bug must not end polling: answers would then bypass the cache for good
                log.exception("cache invalidation poll failed")
            await asyncio.sleep(POLL_S)

    def start(self, client: AsyncInfluxQuery) -> None:
        if self._ttl_ns > 0 or self._followers:
            self._task = asyncio.create_task(self.run(client))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
