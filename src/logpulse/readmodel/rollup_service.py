"""Stats, series and the fleet view answered from rollups: read windows, group them, merge.

Every answer reads at most a few rows per local interval (see `plan.plan`), whatever the traffic;
`windows` parses them, `merge` adds them up and ranks their histograms, `paging` sorts and pages the
fleet view.

The fleet view adds counts up inside InfluxDB for every customer and reads histograms only for the
customers it shows (for everyone only when sorting by p99): histogram bytes are what InfluxDB is slow
at (measured ≈ 40 ns per byte), and 1,000 customers × 30 days of them are ~10 MB.

`exact=true` on stats recomputes from the raw `requests` points, but only when a merged histogram
had to be approximate; when the raw points of the range are not all stored (`STORE_RAW=false`, or
retention dropped them), it says so with a 422 instead of returning numbers from partial data.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson

from logpulse.readmodel import fleet_quantiles, fleet_tables, influxql, row_sums
from logpulse.readmodel.batch import Handle, QueryBatch
from logpulse.readmodel.cache import EVERY_CUSTOMER, AnswerCache
from logpulse.readmodel.counting import OpenWindows, counted_read
from logpulse.readmodel.customers import Service
from logpulse.readmodel.day_replica import ANSWERS, DayReplica
from logpulse.readmodel.errors import BadRequest
from logpulse.readmodel.fleet_quantiles import with_quantiles
from logpulse.readmodel.localtime import DateRange, IntArray, bucket_of, interval_starts, iso_locals, local_midnight_ns
from logpulse.readmodel.merge import NO_REQUESTS, Decoded, figures, merge, raw_figures
from logpulse.readmodel.paging import QUANTILE_SORTS, after_key, decode_cursor, encode_cursor, sort_rows
from logpulse.readmodel.plan import FIELDS, LEVELS, Plan, Who, plan, plan_ranges
from logpulse.readmodel.schemas import Day, Figures, Fleet, FleetCustomer, Stats, Summary
from logpulse.readmodel.windows import Windows, concat, in_pairs, read_windows, take
from logpulse.slo import Slo, budget_remaining, trailing_budgets
from logpulse.storage.influx import AsyncInfluxQuery, series_rows
from logpulse.storage.points import FLEET_CUSTOMER, TAG_CUSTOMER, RollupLevel

MAX_POINTS = 10_000
_SLO_FIELDS = ("count", "server_errors")
REPLICA_PAGE = 200
"""Fleet pages of more rows (by another sort than median or p99) load the replica's days if missing."""
APPROXIMATE_PREFIX = "1a"
"""How an approximate histogram's encoding starts (storage.histogram: version "1", mode "a")."""


def day_bounds(r: DateRange) -> IntArray:
    """UTC ns of the local midnights from r.first to the day after r.last (days + 1 entries)."""
    days = (r.last - r.first).days + 1
    return np.asarray([local_midnight_ns(r.first + dt.timedelta(days=i), r.tz) for i in range(days + 1)], np.int64)


@dataclass
class _WindowsRead:
    """The statements of one windows read queued on a batch (a handle per level), and what parsing
    their results needs."""

    plan: Plan
    levels: tuple[RollupLevel, ...]
    who: Who
    fields: tuple[str, ...]
    handles: dict[RollupLevel, Handle]

    @classmethod
    def queue(
        cls,
        batch: QueryBatch,
        p: Plan,
        levels: tuple[RollupLevel, ...],
        who: Who,
        fields: tuple[str, ...],
        open_windows: OpenWindows,
    ) -> _WindowsRead:
        handles = {
            lvl: batch.add(open_windows.statements(lvl, p.ranges(lvl), who, fields))
            for lvl in levels
            if p.runs.get(lvl)
        }
        return cls(p, levels, who, fields, handles)


class RollupService:
    """Reads rollups for the stats, series and fleet routes. The InfluxDB client and the answer cache are
    the application's (shared with `customers.Service`, which knows the customers)."""

    def __init__(
        self,
        client: AsyncInfluxQuery,
        cache: AnswerCache,
        customers: Service,
        levels: tuple[RollupLevel, ...] = LEVELS,
        slo: Slo | None = None,
        replica: DayReplica | None = None,
        kept: fleet_tables.KeptWindows | None = None,
        open_windows: OpenWindows | None = None,
    ) -> None:
        self.client = client
        self.cache = cache
        self.customers = customers
        self.levels = levels
        self.slo = slo or Slo()
        self.replica = replica  # whole days of every customer's histograms, for the fleet by median or p99
        self.kept = kept  # the fleet-wide points' verified tables per window, for every fleet answer
        self.open_windows = open_windows or OpenWindows()  # where reads take `covers` at once (`counting`)

    # ----- reading --------------------------------------------------------------------------

    async def windows(self, bounds: IntArray, who: Who, fields: tuple[str, ...] = FIELDS) -> Windows:
        """Every rollup row of `who` inside [bounds[0], bounds[-1]), read at the coarsest fitting level."""
        return await self._read(plan(bounds, self.levels), self.levels, who, fields)

    async def _read(self, p: Plan, levels: tuple[RollupLevel, ...], who: Who, fields: tuple[str, ...]) -> Windows:
        """Read a plan: every level's statements in one request."""
        batch = QueryBatch()
        read = _WindowsRead.queue(batch, p, levels, who, fields, self.open_windows)
        await batch.send(self.client)
        return await self._collect(read)

    async def _collect(self, read: _WindowsRead) -> Windows:
        """The rows of a sent `_WindowsRead`, exact where the input allows it: a coarse window whose
        histogram had to be approximate (more distinct values than a coarse point may hold) is read again
        from the finer levels, whose windows may still be exact."""
        levels = read.levels
        out: list[Windows] = []
        for i, level in enumerate(levels):
            handle = read.handles.get(level)
            if handle is None:
                continue
            w = await read_windows(self.client, handle.results, level, read.plan, read.who, read.fields)
            approximate = np.asarray([h is not None and h.startswith(APPROXIMATE_PREFIX) for h in w.hist], bool)
            if i + 1 < len(levels) and approximate.any():
                pairs = set(
                    zip(np.asarray(w.customer)[approximate].tolist(), w.start[approximate].tolist(), strict=True)
                )
                ranges = sorted({(s, s + level.window_ns) for _, s in pairs})
                finer = await self._read(plan_ranges(ranges, levels[i + 1 :]), levels[i + 1 :], read.who, read.fields)
                out.append(take(finer, in_pairs(finer, level, pairs)))
                w = take(w, ~in_pairs(w, level, pairs))
            out.append(w)
        return concat(out)

    @staticmethod
    def _incidents_per_day(result: dict[str, Any], bounds: IntArray) -> IntArray:
        starts = np.asarray([row["time"] for _, row in series_rows(result)], np.int64)
        return np.bincount(bucket_of(starts, bounds), minlength=len(bounds) - 1)

    @dataclass
    class _SloRead:
        """A customer's per-day SLO counts, queued on the stats request's batch: a handle per level."""

        bounds: IntArray  # local midnights from the SLO window's first day to the day after r.last
        plan: Plan
        handles: list[tuple[RollupLevel, Handle]]

    def _slo_read(self, batch: QueryBatch, customer: str, r: DateRange, target: float | None) -> _SloRead | None:
        """Requests and server errors per local day, from the SLO window's first day to r.last: numbers
        only, no histograms (cheap for a month more). None without a target."""
        if target is None:
            return None
        bounds = day_bounds(DateRange(self.slo.first_day(r.first), r.last, r.tz))
        p = plan(bounds, self.levels)
        used = [lvl for lvl in self.levels if p.runs.get(lvl)]
        statements = {lvl: self.open_windows.statements(lvl, p.ranges(lvl), customer, _SLO_FIELDS) for lvl in used}
        handles = [(lvl, batch.add(s)) for lvl, s in statements.items()]
        return self._SloRead(bounds, p, handles)

    async def _budgets(self, customer: str, slo: _SloRead, target: float) -> list[float | None]:
        """The budget left at the end of each day (trailing SLO window) from the `_slo_read` results;
        rollup points lacking `server_errors` (written before rollups counted 5xx) make a window unknown."""
        fields = _SLO_FIELDS
        n_days = len(slo.bounds) - 1
        out = [np.zeros(n_days, np.int64) for _ in range(3)]
        for level, handle in slo.handles:
            rows = await counted_read(self.client, handle.results, level, customer, fields, slo.plan)
            if not len(rows):
                continue
            server = rows.cols["server_errors"]
            day = bucket_of(rows.starts(level), slo.bounds)
            columns = ([n or 0 for n in rows.cols["count"]], [e or 0 for e in server], [e is None for e in server])
            for acc, col in zip(out, columns, strict=True):
                acc += np.bincount(day, weights=np.asarray(col, np.int64), minlength=n_days).astype(np.int64)
        requests, errors, unknown = out
        return trailing_budgets(requests, errors, unknown, self.slo.window_days, target)

    # ----- stats ----------------------------------------------------------------------------

    async def stats(self, customer: str, r: DateRange, *, exact: bool = False) -> Stats:
        """Daily figures and the range's summary, local days of r.tz (23/24/25 hours)."""

        target = self.slo.target(customer)

        async def compute() -> tuple[Stats, str, int, int]:
            await self.customers.require_customer(customer)
            bounds = day_bounds(r)
            # the windows, the incidents and the SLO counts in one /query request
            batch = QueryBatch()
            windows = _WindowsRead.queue(
                batch, plan(bounds, self.levels), self.levels, customer, FIELDS, self.open_windows
            )
            starts = batch.add([influxql.incident_starts(customer, int(bounds[0]), int(bounds[-1]))])
            slo = self._slo_read(batch, customer, r, target)
            await batch.send(self.client)
            w = await self._collect(windows)
            incidents = self._incidents_per_day(starts.results[0], bounds)
            budgets = None if slo is None or target is None else await self._budgets(customer, slo, target)
            d = Decoded.of(w.hist)
            per_day = merge(w, d, bucket_of(w.start, bounds), len(bounds) - 1)
            whole = merge(w, d, np.zeros(len(w.start), np.int64), 1)
            days = [
                Day(
                    date=(r.first + dt.timedelta(days=i)).isoformat(),
                    **per_day.figures(i),
                    anomalies=int(incidents[i]),
                    error_budget_remaining=None if budgets is None else budgets[i],
                )
                for i in per_day.nonempty()
            ]
            answer = Stats(
                customer_id=customer,
                from_=r.first.isoformat(),
                to=r.last.isoformat(),
                tz=r.tz.key,
                days=days,
                summary=Summary(
                    **whole.figures(0),
                    slo_target=None if target is None else target * 100,
                    error_budget_remaining=None if budgets is None else budgets[-1],
                ),
            )
            # the SLO window reaches back before the range: writes there change the answer too
            start_ns = r.start_ns if target is None else local_midnight_ns(self.slo.first_day(r.first), r.tz)
            return answer, customer, start_ns, r.end_ns

        answer: Stats = await self.cache.fetch(("rollup-stats", customer, r.first, r.last, r.tz.key), compute)
        if exact and answer.summary.quantiles != "exact":
            return await self._exact_from_raw(answer, customer, r)
        return answer

    async def _exact_from_raw(self, answer: Stats, customer: str, r: DateRange) -> Stats:
        """Replace rollup figures by figures computed from the raw points, if every raw point is stored."""
        results = await asyncio.gather(*(self.client.query(q) for q in influxql.raw_stats(customer, r)))
        day_rows, whole_rows = (series_rows(res[0]) for res in results)
        raw_days = {r.local_date(row["time"]).isoformat(): raw_figures(row) for _, row in day_rows}
        summary = raw_figures(whole_rows[0][1] if whole_rows else None)
        expected = answer.summary.total_requests
        if summary["total_requests"] != expected:
            raise BadRequest(
                f"exact=true needs the raw request points, and {expected - summary['total_requests']} of the "
                f"{expected} requests in this range are not stored as raw points (STORE_RAW=false, or "
                "RAW_RETENTION dropped them): ask without 'exact' for the rollup figures, whose approximate "
                "quantiles are within 0.5%"
            )
        days = [d.model_copy(update=raw_days.get(d.date, {})) for d in answer.days]
        return answer.model_copy(update={"days": days, "summary": answer.summary.model_copy(update=summary)})

    # ----- series ---------------------------------------------------------------------------

    async def series_json(self, customer: str, start_ns: int, end_ns: int, interval: str, tz: ZoneInfo) -> bytes:
        """Points per local interval of [start_ns, end_ns); intervals without requests left out.

        The answer is the `Series` schema already serialised (orjson): building and validating
        hundreds of `Point` models, then FastAPI validating them again, cost more than merging
        their histograms (a 7-day 15-minute series: 672 points, ~1.5 ms of ~9). The route declares
        `Series` as its response model, so the OpenAPI document is the same; tests validate the
        bytes against it.
        """
        starts = interval_starts(start_ns, end_ns, interval, tz)
        if len(starts) > MAX_POINTS:
            raise BadRequest(
                f"'from'/'to' and 'interval' give {len(starts):,} points of {interval}, more than "
                f"{MAX_POINTS:,}: shorten the range or use a longer interval"
            )

        async def compute() -> tuple[bytes, str, int, int]:
            await self.customers.require_customer(customer)
            bounds = np.append(starts, np.int64(end_ns))
            w = await self.windows(bounds, customer)
            m = merge(w, Decoded.of(w.hist), bucket_of(w.start, bounds), len(starts))
            shown = m.nonempty()
            texts = iso_locals(starts[shown], tz)
            points = [{**m.figures(i), "start": text} for i, text in zip(shown, texts, strict=True)]
            answer = {"customer_id": customer, "interval": interval, "tz": tz.key, "points": points}
            return orjson.dumps(answer), customer, start_ns, end_ns

        series: bytes = await self.cache.fetch(("series", customer, start_ns, end_ns, interval, tz.key), compute)
        return series

    # ----- fleet ----------------------------------------------------------------------------

    async def fleet(self, r: DateRange, sort: str, order: str, limit: int, cursor: str | None) -> Fleet:
        """Every customer's figures over the range, and all of them together, sorted and paged.

        Counts, failures and sums of every customer are added up in InfluxDB (numbers only, cheap);
        histograms, the costly part, are read for the page's customers only — for every customer
        only when sorting by median_latency or p99_latency. The total's quantiles come from the
        fleet-wide rollups (customer `*`) when the processor writes them, else from every customer's
        histograms.
        """
        after = decode_cursor(cursor, sort, order) if cursor else None
        bounds = np.asarray([r.start_ns, r.end_ns], np.int64)

        slo_start = local_midnight_ns(self.slo.first_day(r.last), r.tz)

        async def compute() -> tuple[Fleet, str, int, int]:
            # everything that does not depend on the sums runs concurrently with them: the total's
            # `*` histograms and, for sort=customer_id, the histograms of the page to be expected
            # from the known customers (rows without requests in the range are fetched afterwards);
            # for a sort by median or p99 every customer's histograms (None: everyone)
            guess = None if sort in QUANTILE_SORTS else await self._page_guess(sort, order, limit, after)
            tables = fleet_tables.TableReads(self.client, self.levels, self.kept)
            wanted = guess is None or limit > REPLICA_PAGE  # answers as costly from InfluxDB as loading days
            replica = self._replica_for(wanted, bounds)
            read_first = [] if replica else guess  # histograms read beside the sums (None: everyone's)
            sums, slo_sums, fleet_w, guessed, replicated = await asyncio.gather(
                self._customer_sums(plan(bounds, self.levels), tables),
                self._slo_sums(slo_start, r.end_ns, tables),
                self._decoded(bounds, FLEET_CUSTOMER),
                self._decoded(bounds, read_first),
                self._replicated(replica, bounds),
            )
            rows = [
                _number_row(c, v) | self._budget(c, slo_sums.get(c)) for c, v in sums.items() if c != FLEET_CUSTOMER
            ]
            everyone = None
            if self.replica is not None and (wanted or replica is not None):
                ANSWERS.labels("replica" if replicated is not None else "influxdb").inc()
            read = functools.partial(self.windows, bounds, fields=("count", "hist"))
            if replicated is not None and guess is None:  # every customer's quantiles from the replica
                rows = await replicated.fill(rows, read)
            elif guess is None:  # a sort by median or p99: the order needs every customer's quantiles
                everyone, decoded = guessed if replica is None else await self._decoded(bounds, None)
                rows = with_quantiles(everyone, rows, decoded)
            ordered = sort_rows(rows, sort, order)
            if after is not None:
                ordered = [row for row in ordered if after_key(row, sort, order, after)]
            page = ordered[:limit]
            if replicated is not None and guess is not None:
                page = await replicated.fill(page, read)
            elif guess is not None and page:  # the page's quantiles, unless the sort needed everyone's
                fetched = set(read_first or ())
                missing = [row["customer_id"] for row in page if row["customer_id"] not in fetched]
                if missing:
                    w = concat([guessed[0], await self.windows(bounds, missing, ("count", "hist"))])
                    page = with_quantiles(w, page)
                else:
                    page = with_quantiles(guessed[0], page, guessed[1])
            answer = Fleet(
                from_=r.first.isoformat(),
                to=r.last.isoformat(),
                tz=r.tz.key,
                total=await self._fleet_total(bounds, rows, sums.get(FLEET_CUSTOMER), everyone, fleet_w),
                customers=[FleetCustomer(**row) for row in page],
                next_cursor=encode_cursor(page[-1], sort, order) if len(ordered) > limit else None,
            )
            return answer, EVERY_CUSTOMER, min(r.start_ns, slo_start) if self.slo.targets else r.start_ns, r.end_ns

        fleet: Fleet = await self.cache.fetch(("fleet", r.first, r.last, r.tz.key, sort, order, limit, after), compute)
        return fleet

    def _replica_for(self, wanted: bool, bounds: IntArray) -> DayReplica | None:
        """The replica, if it may answer: while it follows the marks, for a sort by median or p99 or a
        page of more than REPLICA_PAGE rows (as costly to read as loading the days), else only if it
        holds the range already."""
        if self.replica is None or not self.replica.trusted():
            return None
        return self.replica if wanted or self.replica.holds(*fleet_quantiles.split(bounds, self.levels)) else None

    async def _replicated(self, replica: DayReplica | None, bounds: IntArray) -> fleet_quantiles.Replicated | None:
        if replica is None:
            return None
        return await fleet_quantiles.replicated(
            replica, bounds, self.levels, lambda p, who: self._read(p, self.levels, who, ("count", "hist"))
        )

    async def _decoded(self, bounds: IntArray, who: Who) -> tuple[Windows, Decoded]:
        """Histogram rows of `who` (none for an empty list; None: everyone), decoded as they arrive, so that the
        decoding overlaps the other statements InfluxDB is still answering."""
        w = Windows.empty() if who == [] else await self.windows(bounds, who, ("count", "hist"))
        return w, Decoded.of(w.hist)

    async def _page_guess(self, sort: str, order: str, limit: int, after: tuple[Any, ...] | None) -> list[str]:
        """For sort=customer_id, the page's customers as the known-customer list predicts them (a known
        customer without requests in the range is not a row: the page then reaches further, and those
        customers' histograms are read after the sums)."""
        if sort != "customer_id":
            return []
        known = await self.customers.known_customers()
        ordered = known[::-1] if order == "desc" else known
        if after is not None:
            ordered = [c for c in ordered if after_key({"customer_id": c}, sort, order, after)]
        return ordered[:limit]

    async def _customer_sums(self, p: Plan, tables: fleet_tables.TableReads) -> dict[str, list[float]]:
        """{customer: [count, failed, sum]} (and `*`: [count of every customer]) over the plan's runs:
        from the fleet-wide points' tables when they hold every request, else summed per customer."""
        t = await tables.sums(p)
        if t is None:
            return await self._sums(p)
        out = {
            c: [n, f, s]
            for c, n, f, s in zip(t.customers, t.count.tolist(), t.failed.tolist(), t.seconds.tolist(), strict=True)
        }
        out[FLEET_CUSTOMER] = [float(t.count.sum()), 0.0, 0.0]
        return out

    async def _sums(self, p: Plan) -> dict[str, list[float]]:
        """{customer: [count, failed, sum]} over the plan's runs, summed in InfluxDB per level (added up
        here where compacted points are: `row_sums`)."""
        if await row_sums.holds_compacted(self.client, p, self.levels):
            found = await row_sums.sums(self.client, p, self.levels, FIELDS[:3], self.open_windows)
            return {c: v[:3] for c, v in found.items()}
        used = [lvl for lvl in self.levels if p.runs.get(lvl)]
        results = await asyncio.gather(
            *(self.client.query("; ".join(influxql.sums_statements(lvl, p.runs[lvl]))) for lvl in used)
        )
        out: dict[str, list[float]] = {}
        for result in (res for level_results in results for res in level_results):
            for tags, row in series_rows(result):
                acc = out.setdefault(tags.get(TAG_CUSTOMER, ""), [0.0, 0.0, 0.0])
                for i, f in enumerate(("count", "failed", "sum")):
                    acc[i] += row.get(f) or 0
        return out

    async def _slo_sums(self, start_ns: int, end_ns: int, tables: fleet_tables.TableReads) -> dict[str, list[int]]:
        """{customer: [requests, server errors, points, points with server_errors]} over the SLO
        window [start_ns, end_ns), summed in InfluxDB; {} without SLO targets."""
        if not self.slo.targets:
            return {}
        p = plan(np.asarray([start_ns, end_ns], np.int64), self.levels)
        t = await tables.sums(p)
        if t is not None:  # one "point" per customer; "counted" 0 when some 5xx count is unknown
            return {
                c: [n, e, 1, int(u == 0)]
                for c, n, e, u in zip(
                    t.customers, t.count.tolist(), t.server_errors.tolist(), t.unknown.tolist(), strict=True
                )
            }
        if await row_sums.holds_compacted(self.client, p, self.levels):
            found = await row_sums.sums(self.client, p, self.levels, _SLO_FIELDS, self.open_windows)
            return {c: [int(v[0]), int(v[1]), int(v[2]), int(v[4])] for c, v in found.items()}
        used = [lvl for lvl in self.levels if p.runs.get(lvl)]
        results = await asyncio.gather(
            *(self.client.query("; ".join(influxql.budget_statements(lvl, p.runs[lvl]))) for lvl in used)
        )
        out: dict[str, list[int]] = {}
        for result in (res for level_results in results for res in level_results):
            for tags, row in series_rows(result):
                acc = out.setdefault(tags.get(TAG_CUSTOMER, ""), [0, 0, 0, 0])
                for i, f in enumerate(("count", "server_errors", "points", "counted")):
                    acc[i] += int(row.get(f) or 0)
        return out

    def _budget(self, customer: str, slo_sums: list[int] | None) -> dict[str, float | None]:
        """slo_target (percent) and error_budget_remaining of a fleet row (None without a target, or
        when a point of the window lacks server_errors)."""
        target = self.slo.target(customer)
        if target is None:
            return {"slo_target": None, "error_budget_remaining": None}
        requests, errors, points, counted = slo_sums or [0, 0, 0, 0]
        budget = budget_remaining(errors, requests, target) if points == counted else None
        return {"slo_target": target * 100, "error_budget_remaining": budget}

    async def _fleet_total(
        self,
        bounds: IntArray,
        rows: list[dict[str, Any]],
        fleet_sums: list[float] | None,
        everyone: Windows | None,
        fleet_w: tuple[Windows, Decoded],
    ) -> Figures:
        """All customers together: numbers added up; quantiles from the fleet-wide rollups when they
        hold every request of the range, else from every customer's histograms."""
        total = sum(row["total_requests"] for row in rows)
        failed = sum(row["failed_requests"] for row in rows)
        seconds = sum(row["_seconds"] for row in rows)
        if total == 0:
            return NO_REQUESTS
        if fleet_sums is not None and int(fleet_sums[0]) == total:
            w, d = fleet_w  # the `*` rows (read and decoded concurrently with the sums)
        else:  # no fleet-wide rollups (or not all of them yet)
            w = everyone if everyone is not None else await self.windows(bounds, None, ("count", "hist"))
            w = take(w, np.asarray([c != FLEET_CUSTOMER for c in w.customer], dtype=bool))
            d = Decoded.of(w.hist)
        m = merge(w, d, np.zeros(len(w.start), np.int64), 1)
        return Figures(**figures(total, failed, seconds / total, m.median[0], m.p99[0], exact=bool(m.exact[0])))


def _number_row(customer: str, sums: list[float]) -> dict[str, Any]:
    """A fleet row from summed numbers; quantiles are filled in for the rows that are shown."""
    total, failed, seconds = int(sums[0]), int(sums[1]), float(sums[2])
    average = seconds / total if total else None
    return {"customer_id": customer, **figures(total, failed, average, None, None, exact=True), "_seconds": seconds}
