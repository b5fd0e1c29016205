"""The `writes` marks: how a writer tells readers that data changed, and how readers read them back.

A writer (the sink, `flow/sinks/influx.py`) writes marks after InfluxDB acknowledged the data they
describe; readers that keep derived data (the API's answer cache and the fleet's day replica) poll
them and drop what a newer mark overlaps (`readmodel/cache.py`).

One mark point per writer and flush, not one per customer: the point packs every customer the flush
touched with the range of request times it wrote, `customer,min_ns,max_ns` entries separated by
spaces in the string field `customers` (customer ids hold no comma or space: `formats.logpulse`
rule, and `*`). Beside a live processor, per-customer points were ~1,400 marks a second for 2,000
lines a second over 1,200 customers, and every poll (twice a second, over the last 10 s) read and
parsed all of them: most of the API's CPU under that load (profiled). Packed, a flush is one point of
a few KB, and a reader splits it only the first time it sees it whole. A flush touching more
customers is split into several points (consecutive nanoseconds) of at most PACK_CHARS characters,
well under InfluxDB 1.x's 64 KB limit on a string field.

Fields: `min_time`/`max_time` (the union of the packed ranges, for `GET /freshness`), `backlog_bytes`
(what the writer had not read yet), `customers`. A writer's **restart mark** has only `every=true`
and no customers: it covers every customer and every time.

Reading (`parse_row`): InfluxDB 1.x stores each field of a point on its own, so a poll racing the
write of a mark can see some of its fields and not others. A mark row whose `customers` (packed
form) or whose `min_time`/`max_time` (the per-customer form of earlier versions, still read) is
missing is **half-written**: the reader decides what it covers (`readmodel/cache.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from logpulse.storage.points import TAG_CUSTOMER, WRITES

Mark = tuple[str, int, int, int]
"""A mark as readers apply it: (customer, time of writing ns, min_time ns, max_time ns)."""
EVERY_TIME = (-(2**63), 2**63 - 1)
ANY_CUSTOMER = ""
"""The customer of a mark that names none: a writer's restart mark, or a packed mark seen without its
customers; it covers every customer."""
FIELD_CUSTOMERS = "customers"
PACK_CHARS = 16_000
"""Characters of packed customers per mark point (InfluxDB 1.x refuses string fields over 64 KB)."""


def restart_mark_line(writer: int, now_ns: int) -> str:
    """A `writes` mark of no customer, written when a writer starts: what it wrote before it was killed
    may have been acknowledged but never marked (marks follow the data by up to a few seconds), so it
    covers every customer and every time (field `every`, not `min_time`/`max_time`: those are the
    newest request time written, for `GET /freshness`)."""
    return f"{WRITES},writer={writer} every=true {now_ns}"


def write_mark_lines(
    bounds: dict[str, tuple[int, int]], writer: int, now_ns: int, backlog_bytes: int | None = None
) -> list[str]:
    """The marks of one flush: these customers' data between their (min_ns, max_ns) changed at now_ns."""
    backlog = "" if backlog_bytes is None else f",backlog_bytes={backlog_bytes}i"
    lines: list[str] = []
    for n, (packed, lo, hi) in enumerate(_packs(bounds)):
        lines.append(
            f'{WRITES},writer={writer} min_time={lo}i,max_time={hi}i{backlog},{FIELD_CUSTOMERS}="{packed}" {now_ns + n}'
        )
    return lines


def _packs(bounds: dict[str, tuple[int, int]]) -> Iterator[tuple[str, int, int]]:
    """The entries in groups of at most PACK_CHARS characters, each with its union range."""
    entries: list[str] = []
    size, lo, hi = 0, EVERY_TIME[1], EVERY_TIME[0]
    for customer, (c_lo, c_hi) in bounds.items():
        entry = f"{customer},{c_lo},{c_hi}"
        if entries and size + len(entry) >= PACK_CHARS:
            yield " ".join(entries), lo, hi
            entries, size, lo, hi = [], 0, EVERY_TIME[1], EVERY_TIME[0]
        entries.append(entry)
        size += len(entry) + 1
        lo, hi = min(lo, c_lo), max(hi, c_hi)
    if entries:
        yield " ".join(entries), lo, hi


def parse_row(tags: dict[str, str], row: dict[str, Any]) -> tuple[list[Mark], bool]:
    """The marks of one polled row (columns time, min_time, max_time, every, customers; tag
    customer_id) and whether the row was whole. A half-written per-customer row covers every time of
    its customer; a half-written or unreadable packed row yields nothing (the caller decides). A
    restart mark is one mark of ANY_CUSTOMER, every time."""
    at = int(row["time"])
    customer = tags.get(TAG_CUSTOMER, "")
    lo, hi = row.get("min_time"), row.get("max_time")
    if customer:  # the per-customer form
        if lo is None or hi is None:
            return [(customer, at, *EVERY_TIME)], False
        return [(customer, at, int(lo), int(hi))], True
    if row.get("every"):
        return [(ANY_CUSTOMER, at, *EVERY_TIME)], True
    packed = row.get(FIELD_CUSTOMERS)
    if not isinstance(packed, str) or lo is None or hi is None:
        return [], False
    marks: list[Mark] = []
    try:
        for entry in packed.split(" "):
            name, e_lo, e_hi = entry.split(",")
            marks.append((name, at, int(e_lo), int(e_hi)))
    except ValueError:  # not what a writer writes: read as a mark of everything, never as a crash
        return [(ANY_CUSTOMER, at, *EVERY_TIME)], True
    return marks, True
