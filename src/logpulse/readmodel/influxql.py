"""InfluxQL: the only place the read model's statements are written. Aggregation happens in InfluxDB.

Every customer id is validated before it gets here and is still quoted as a string literal; zone
names are validated IANA names; times are integers. Nothing from a request is pasted raw.
"""

from __future__ import annotations

from logpulse.formats.logpulse import CUSTOMER_ID_RE
from logpulse.readmodel.localtime import DateRange
from logpulse.readmodel.plan import Who
from logpulse.storage import compacted
from logpulse.storage.influx import quote_ident, quote_literal
from logpulse.storage.points import (
    ANOMALIES,
    FLEET_CUSTOMER,
    MARKS_RP,
    REQUESTS,
    ROLLUP_LEVELS,
    TAG_CUSTOMER,
    WRITES,
    RollupLevel,
    rollup_from,
)

_FIGURES = (
    'COUNT("duration") AS "total", SUM("failed") AS "failed", MEAN("duration") AS "average", '
    'MEDIAN("duration") AS "median", PERCENTILE("duration", 99) AS "p99"'
)


def _where(customer: str, start_ns: int, end_ns: int) -> str:
    return f"{quote_ident(TAG_CUSTOMER)} = {quote_literal(customer)} AND time >= {start_ns} AND time < {end_ns}"


def raw_stats(customer: str, r: DateRange) -> tuple[str, str]:
    """Per local day and for the whole range, from the raw `requests` points (the `exact=true` path).

    Two separate queries so the API can run them concurrently: InfluxDB 1.x executes the
    statements of one request one after another, and each exact MEDIAN/PERCENTILE reads every
    duration of the range (measured at 10M stored, one client: 30-day call p50 0.50 s sequential, 0.37 s concurrent).
    """
    where = _where(customer, r.start_ns, r.end_ns)
    per_day = f"GROUP BY time(1d) fill(none) tz({quote_literal(r.tz.key)})"
    return (
        f"SELECT {_FIGURES} FROM {quote_ident(REQUESTS)} WHERE {where} {per_day}",
        f"SELECT {_FIGURES} FROM {quote_ident(REQUESTS)} WHERE {where}",
    )


_INCIDENT_FIELDS = '"end", "score", "requests", "id", "status", "summary", "detected", "ended"'


def anomalies(customer: str, r: DateRange) -> str:
    return (
        f"SELECT {_INCIDENT_FIELDS} FROM {quote_ident(ANOMALIES)} "
        f"WHERE {_where(customer, r.start_ns, r.end_ns)} GROUP BY {quote_ident('kind')} ORDER BY time ASC"
    )


def fleet_anomalies(r: DateRange, customer: str | None, kind: str | None, status: str | None, limit: int) -> str:
    """Incidents of every customer that started in the range, optionally filtered (values validated)."""
    where = f"time >= {r.start_ns} AND time < {r.end_ns}"
    if customer is not None:
        where += f" AND {quote_ident(TAG_CUSTOMER)} = {quote_literal(customer)}"
    if kind is not None:
        where += f" AND {quote_ident('kind')} = {quote_literal(kind)}"
    if status is not None:
        where += f" AND {quote_ident('status')} = {quote_literal(status)}"
    return (
        f"SELECT {_INCIDENT_FIELDS} FROM {quote_ident(ANOMALIES)} WHERE {where} "
        f"GROUP BY {quote_ident(TAG_CUSTOMER)}, {quote_ident('kind')} ORDER BY time ASC LIMIT {int(limit)}"
    )


def customer_ids() -> str:
    """Customers with raw points or rollups (with STORE_RAW=false only rollups are stored)."""
    return (
        f"SHOW TAG VALUES FROM {quote_ident(REQUESTS)}, {rollup_from(ROLLUP_LEVELS[0])} "
        f"WITH KEY = {quote_ident(TAG_CUSTOMER)}"
    )


def customer_summary(customer: str) -> list[str]:
    """A customer's total requests, first and last request time (three statements)."""
    where = f"WHERE {quote_ident(TAG_CUSTOMER)} = {quote_literal(customer)}"
    return [
        f'SELECT COUNT("duration") AS "total" FROM {quote_ident(REQUESTS)} {where}',
        f'SELECT FIRST("status") FROM {quote_ident(REQUESTS)} {where}',
        f'SELECT LAST("status") FROM {quote_ident(REQUESTS)} {where}',
    ]


def rollup_customer_summary(customer: str) -> list[str]:
    """As `customer_summary`, from the rollups, for a customer without raw points (STORE_RAW=false, or
    raw retention dropped them): total from the 1d level, first and last 15-minute window."""
    fifteen, day = rollup_from(ROLLUP_LEVELS[0]), rollup_from(ROLLUP_LEVELS[-1])
    where = f"WHERE {quote_ident(TAG_CUSTOMER)} = {quote_literal(customer)}"
    return [
        f'SELECT SUM("count") AS "total" FROM {day} {where}',
        f'SELECT FIRST("count") FROM {fifteen} {where}',
        f'SELECT LAST("count") FROM {fifteen} {where}',
    ]


_MARKS = f"{quote_ident(MARKS_RP)}.{quote_ident(WRITES)}"
"""The `writes` marks live in their own 1-hour retention policy (storage.retention)."""


def marks_since(since_ns: int) -> str:
    return (
        f'SELECT "min_time", "max_time", "every", "customers" FROM {_MARKS} WHERE time > {since_ns} '
        f'GROUP BY {quote_ident(TAG_CUSTOMER)}, "writer"'
    )


def freshness(since_ns: int | None) -> str:
    """The newest `writes` mark (time = acknowledged), the newest request time written and each writer's
    last backlog since since_ns. Without since_ns only the first statement, over all marks kept."""
    if since_ns is None:
        return f'SELECT LAST("max_time") AS "max_time" FROM {_MARKS}'
    where = f"WHERE time > {since_ns}"
    return (
        f'SELECT LAST("max_time") AS "max_time" FROM {_MARKS} {where}; '
        f'SELECT MAX("max_time") AS "max_time" FROM {_MARKS} {where}; '
        f'SELECT LAST("backlog_bytes") AS "backlog" FROM {_MARKS} {where} GROUP BY "writer"'
    )


def incident_starts(customer: str, start_ns: int, end_ns: int) -> str:
    """The start times of a customer's incidents in [start_ns, end_ns) (the stats' per-day counts)."""
    who = f"{quote_ident(TAG_CUSTOMER)} = {quote_literal(customer)}"
    return f'SELECT "score" FROM {quote_ident(ANOMALIES)} WHERE {who} AND time >= {start_ns} AND time < {end_ns}'


# ----- rollups: the plan (plan.py) says which level reads which ranges -----------------------


OR_MAX = 16
"""Lists of up to this many customers are matched by `customer_id = 'a' OR …`; longer ones by one
anchored regular expression per REGEX_BATCH ids. InfluxDB matches an OR chain id by id against every
series (measured on 1,200 customers × 1 day, loaded machine: 600 ids 440–1,100 ms as an OR chain,
160–350 ms as a regex, every customer 250–750 ms)."""
REGEX_BATCH = 500
"""Ids per regular expression (one statement each): keeps each expression a few kilobytes."""


def _who(who: Who) -> list[tuple[str, str]]:
    """(WHERE prefix, GROUP BY suffix) for `who`: one pair per statement needed (several for a long
    list of customers)."""
    tag = quote_ident(TAG_CUSTOMER)
    if isinstance(who, str):
        return [(f"{tag} = {quote_literal(who)} AND ", "")]
    if who is None:
        return [("", f" GROUP BY {tag}")]
    if len(who) > OR_MAX and all(CUSTOMER_ID_RE.match(c) for c in who):
        batches = [who[i : i + REGEX_BATCH] for i in range(0, len(who), REGEX_BATCH)]
        return [(f"{tag} =~ /^(?:{'|'.join(map(_regex_literal, b))})$/ AND ", f" GROUP BY {tag}") for b in batches]
    return [("(" + " OR ".join(f"{tag} = {quote_literal(c)}" for c in who) + ") AND ", f" GROUP BY {tag}")]


def _regex_literal(customer: str) -> str:
    """A valid customer id (letters, digits, `_`, `.`, `-`) as a literal of an InfluxQL (Go) regex."""
    return customer.replace(".", r"\.").replace("-", r"\-")


def _per_range(
    level: RollupLevel, ranges: list[tuple[int, int]], select: str, where: str = "", group: str = ""
) -> list[str]:
    """`SELECT {select}` over the level's rows, one statement per time range (InfluxDB 1.x cannot OR
    time ranges: such a WHERE silently matches nothing)."""
    return [
        f"SELECT {select} FROM {rollup_from(level)} WHERE {where}time >= {a} AND time < {b}{group}" for a, b in ranges
    ]


def windows_statements(
    level: RollupLevel,
    ranges: list[tuple[int, int]],
    who: Who,
    fields: tuple[str, ...],
    *,
    covers_from: int | None = None,
) -> list[str]:
    """The level's rows of `who` in the ranges, with the `compacted` tag that tells compacted points from
    sources, and `covers` (which sources a compacted point holds) for the windows from `covers_from` on
    (a window start; None: for none). `counting` asks for it in the windows that can still be open,
    which hold a compacted point beside their unsealed sources, and in a second read for the others
    only where they hold both kinds; a range crossing `covers_from` is read by two statements."""
    cut = max((b for _, b in ranges), default=0) if covers_from is None else covers_from
    plain = [(a, min(b, cut)) for a, b in ranges if a < cut]
    covered = [(max(a, cut), b) for a, b in ranges if b > cut]
    base = (*fields, compacted.TAG)
    return [
        s
        for columns, part in ((base, plain), ((*base, compacted.FIELD), covered))
        if part
        for where, group in _who(who)
        for s in _per_range(level, part, ", ".join(quote_ident(f) for f in columns), where, group)
    ]


def sums_statements(level: RollupLevel, runs: list[tuple[int, int]]) -> list[str]:
    """Per customer, the summed counts, failures and durations of the level's runs, added up in InfluxDB.

    Runs, not coalesced ranges: a sum cannot drop the windows between two runs afterwards.
    """
    select = 'SUM("count") AS "count", SUM("failed") AS "failed", SUM("sum") AS "sum"'
    return _per_range(level, runs, select, group=f" GROUP BY {quote_ident(TAG_CUSTOMER)}")


def budget_statements(level: RollupLevel, runs: list[tuple[int, int]]) -> list[str]:
    """Per customer, requests and server errors (the SLO's counts) of the level's runs, summed in
    InfluxDB, with the number of points and of points carrying `server_errors` (fewer when some were
    written before rollups counted 5xx: the budget is then unknown)."""
    select = (
        'SUM("count") AS "count", SUM("server_errors") AS "server_errors", COUNT("count") AS "points", '
        'COUNT("server_errors") AS "counted"'
    )
    return _per_range(level, runs, select, group=f" GROUP BY {quote_ident(TAG_CUSTOMER)}")


def customers_count_statements(level: RollupLevel, ranges: list[tuple[int, int]]) -> list[str]:
    """The summed count of every customer's points (the fleet-wide `*` series left out) per window of
    the level in the ranges, not per customer: the check that the `*` points hold every request (older
    data may lack them). Windows without points come back with no count (`fill(none)` drops them)."""
    where = f"{quote_ident(TAG_CUSTOMER)} != {quote_literal(FLEET_CUSTOMER)} AND "
    group = f" GROUP BY time({level.window_ns // 10**9}s) fill(none)"
    return _per_range(level, ranges, 'SUM("count") AS "count"', where, group)


def compacted_count_statements(level: RollupLevel, ranges: list[tuple[int, int]]) -> list[str]:
    """How many compacted points the ranges hold: their `count` (an integer) counted in the compacted
    series only, so InfluxDB reads no `covers` text."""
    where = f"{quote_ident(compacted.TAG)} = {quote_literal(compacted.TAG_VALUE)} AND "
    return _per_range(level, ranges, 'COUNT("count")', where)
