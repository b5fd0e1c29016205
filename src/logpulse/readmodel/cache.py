"""A short-lived cache of API answers that the processor's writes invalidate.

The sink writes `writes` marks (`storage/marks.py`: customers, [min_time, max_time], time of writing)
after InfluxDB acknowledged data. One background poll every POLL_S reads the marks of the last few
seconds and drops every cached answer that was computed before a mark of its customer whose range
overlaps the answer's range. A cached answer therefore includes all data acknowledged before the last
poll (normally under a second before the request; TRUST_S at most while InfluxDB is slow to answer
polls), and is at most STATS_CACHE_S old. If polling fails for longer, the cache is bypassed; if
polls resume after a gap longer than their look-back could bridge, every cached answer is dropped.

Each mark is applied once, by the first poll that sees it whole (a poll reads LOOKBACK_NS back, so
it sees most marks about twenty times: parsing and applying them every time was most of the API's CPU
beside a live processor). An answer whose computation started before a mark that was applied while
it ran is checked against that mark when it is stored (`put`).

Other holders of derived data (the fleet's day replica) follow the same marks: `follow` hands them
every successful poll's new marks, and the poll then runs even with STATS_CACHE_S=0.
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
from logpulse.storage.marks import ANY_CUSTOMER, EVERY_TIME, Mark, parse_row

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
T = TypeVar("T")
MarkKey = tuple[str, str, int]
"""A polled mark row: (customer tag, writer tag, time)."""


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
        self._keys_of: dict[str, set[tuple[Any, ...]]] = {}  # the keys of each entry customer
        self._healthy_until_ns = 0
        self._task: asyncio.Task[None] | None = None
        self._inflight: dict[tuple[Any, ...], asyncio.Future[Any]] = {}
        self._refreshing: set[asyncio.Task[Any]] = set()
        self._followers: list[MarkFollower] = []
        self._polled_ns: int | None = None  # start of the last successful poll
        self._applied: dict[MarkKey, int] = {}  # mark rows applied whole, within the look-back
        self._half_packed: set[MarkKey] = set()  # packed marks the last poll saw without customers
        self._recent: dict[str, list[tuple[int, int, int]]] = {}  # applied: customer -> (mark, lo, hi)
        self._newest_mark_ns = EVERY_TIME[0]  # of the marks applied within the look-back

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
        """Store an answer computed from a query that *started* at computed_ns, unless a mark applied
        since then covers it (an answer of every customer: any mark applied since then)."""
        if self._ttl_ns <= 0:
            return
        if self._newest_mark_ns > computed_ns:
            if customer == EVERY_CUSTOMER:
                return
            for of in (customer, ANY_CUSTOMER):
                for mark_ns, lo, hi in self._recent.get(of, ()):
                    if mark_ns > computed_ns and lo < end_ns and hi >= start_ns:
                        return
        if len(self._entries) > 10_000:
            self._entries.clear()
            self._keys_of.clear()
        self._entries[key] = _Entry(computed_ns, value, customer, start_ns, end_ns)
        self._keys_of.setdefault(customer, set()).add(key)

    def invalidate(self, customer: str, mark_ns: int, lo: int, hi: int) -> None:
        if not self._entries:
            return
        if customer == ANY_CUSTOMER:
            keys: list[tuple[Any, ...]] = list(self._entries)
        else:
            keys = [*self._keys_of.get(customer, ()), *self._keys_of.get(EVERY_CUSTOMER, ())]
        for key in keys:
            e = self._entries.get(key)
            if e is not None and mark_ns > e.computed_ns and lo < e.end_ns and hi >= e.start_ns:
                del self._entries[key]
                self._keys_of[e.customer].discard(key)

    def follow(self, follower: MarkFollower) -> None:
        """Hand every successful poll's marks to `follower` as well (call before `start`)."""
        self._followers.append(follower)

    async def poll_once(self, client: AsyncInfluxQuery) -> None:
        started = self.now_ns()
        results = await client.query(influxql.marks_since(started - LOOKBACK_NS))
        if self._polled_ns is not None and started - self._polled_ns > POLL_GAP_NS:
            self._entries.clear()  # marks written between the two polls may be out of this one's reach
            self._keys_of.clear()
        new = self._new_marks(series_rows(results[0]), started)
        self._polled_ns = started
        for customer, mark_ns, lo, hi in new:
            self.invalidate(customer, mark_ns, lo, hi)
        # answers computed before `started` are checked against every mark up to `started`
        self._healthy_until_ns = started + int(TRUST_S * 1e9)
        for follower in self._followers:
            follower.marks_polled(started, new)

    def _new_marks(self, rows: list[tuple[dict[str, str], dict[str, Any]]], started: int) -> list[Mark]:
        """The marks of rows not applied before. A whole row is applied once. A half-written
        per-customer row covers every time of its customer, at every poll until it is whole. A packed
        row seen without its customers is waited for one poll (this cache's answers go at once); seen
        so twice, it counts as a mark of every customer."""
        horizon = started - LOOKBACK_NS
        self._applied = {k: t for k, t in self._applied.items() if t > horizon}
        new: list[Mark] = []
        half: set[MarkKey] = set()
        for tags, row in rows:
            key = (tags.get("customer_id", ""), tags.get("writer", ""), int(row["time"]))
            if key in self._applied:
                continue
            marks, whole = parse_row(tags, row)
            if whole:
                self._applied[key] = key[2]
            elif not marks and key not in self._half_packed:
                half.add(key)
                self.invalidate(ANY_CUSTOMER, key[2], *EVERY_TIME)
                continue
            elif not marks:
                self._applied[key] = key[2]
                marks = [(ANY_CUSTOMER, key[2], *EVERY_TIME)]
            new += marks
        self._half_packed = half
        self._remember(new, horizon)
        return new

    def _remember(self, new: list[Mark], horizon: int) -> None:
        """Keep the applied marks of the look-back, by customer, for answers still being computed."""
        if self._ttl_ns <= 0:
            return
        recent = {c: kept for c, marks in self._recent.items() if (kept := [m for m in marks if m[0] > horizon])}
        for customer, mark_ns, lo, hi in new:
            recent.setdefault(customer, []).append((mark_ns, lo, hi))
        self._recent = recent
        self._newest_mark_ns = max((m[0] for marks in recent.values() for m in marks), default=EVERY_TIME[0])

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
