"""The packed per-customer table of a fleet-wide rollup point: every customer's numbers of one identity
and window in a few string fields, so that the fleet view reads one series instead of one per customer.

Why: InfluxDB 1.x pays per series and per shard when a statement reads many series; `SUM(...) GROUP BY
customer_id` over 1,000 customers × 30 days of `rollups_1d` took 375–475 ms (7-day shard groups, a
loaded 2-core machine), while reading the `*` series' tables of the same range is a few hundred KB.

Each fleet-wide (`customer_id=*`) rollup point carries, besides its own count/failed/sum/hist, the fields
`table_0` … `table_{PARTS-1}`: the customers of that identity-window — all in `table_0` while they fit
in one string, else partitioned by a stable hash of the id (`part_of`); unused fields are "" — each
part encoded as

    "1;" n ";" widths ";" unit ["z"] ";" base64([zlib](ids joined by "\\n" + "\\0" + columns))

with the columns count, failed, server_errors + 1 (0 = unknown: an aggregate restored from a snapshot
older than the field), sum of durations — each as little-endian unsigned integers of the narrowest
width (widths: four digits of 1, 2, 4 or 8); unit "m" when every sum is whole milliseconds (stored in
ms), else "n" (ns); "z" after the unit when the body is zlib-compressed (from 192 bytes). A part
whose encoding would exceed `MAX_ENCODED_CHARS` (InfluxDB's 64 KB string limit) is written as
`OVERFLOW` instead, and readers then fall back to per-customer statements. One field holds ~4,000
customers; with 8 parts the overflow happens above ~30,000 in one identity-window.

The table is cumulative like the rest of the point (the same segment state, rewritten as it grows), so
it stays exact under replays and double ingest; its counts add up to the point's `count`.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

PARTS = 8
FIELDS = tuple(f"table_{i}" for i in range(PARTS))
VERSION = "1"
OVERFLOW = "!"
MAX_ENCODED_CHARS = 60_000
_WIDTHS = (1, 2, 4, 8)
_COMPRESS_FROM = 192
"""Bodies of at least this many bytes are zlib-compressed (level 1: the table is rebuilt at every flush
of a growing window); smaller ones gain nothing worth the inflate."""

Int64Array = npt.NDArray[np.int64]


def part_of(customer: str) -> int:
    """The table field a customer's entry goes to (stable across processes and versions)."""
    return zlib.crc32(customer.encode()) % PARTS


def _width(max_value: int) -> int:
    for w in _WIDTHS[:3]:
        if max_value < 1 << (8 * w):
            return w
    return 8


@dataclass
class Table:
    """Entries of one or more parts (several points' entries concatenated; ids may repeat)."""

    customers: list[str]
    count: Int64Array
    failed: Int64Array
    server_errors: Int64Array  # -1: unknown
    sum_ns: Int64Array


def encode(
    customers: Sequence[str],
    count: Sequence[int] | Int64Array,
    failed: Sequence[int] | Int64Array,
    server: Sequence[int | None] | Int64Array,
    sum_ns: Sequence[int] | npt.NDArray[Any],
) -> str:
    """One part's encoding ("" for no customers; OVERFLOW when too long for an InfluxDB string).
    `server` may be an int64 array with -1 for unknown (a writer's column, no step per entry)."""
    if not len(customers):
        return ""
    sums = np.asarray(sum_ns, dtype=np.int64)
    in_ms = bool(np.all(sums % 1_000_000 == 0))
    known = (
        np.asarray(server, dtype=np.int64)
        if isinstance(server, np.ndarray)
        else np.asarray([-1 if s is None else s for s in server], dtype=np.int64)
    )
    cols = (
        np.asarray(count, dtype=np.int64),
        np.asarray(failed, dtype=np.int64),
        known + 1,
        sums // 1_000_000 if in_ms else sums,
    )
    widths = [_width(int(c.max())) for c in cols]
    body = (
        "\n".join(customers).encode()
        + b"\0"
        + b"".join(c.astype(f"<u{w}").tobytes() for c, w in zip(cols, widths, strict=True))
    )
    unit = "m" if in_ms else "n"
    if len(body) >= _COMPRESS_FROM:
        body, unit = zlib.compress(body, 1), unit + "z"
    text = f"{VERSION};{len(customers)};{''.join(map(str, widths))};{unit};" + base64.b64encode(body).decode("ascii")
    return text if len(text) <= MAX_ENCODED_CHARS else OVERFLOW


def encode_parts(entries: Sequence[tuple[str, int, int, int | None, int]]) -> tuple[str, ...]:
    """The PARTS field values of a point from (customer, count, failed, server_errors, sum_ns) entries:
    all in the first field while they fit (one encoding: a window of a few customers costs one numpy
    pass, not eight), else split by `part_of`. Unused fields are "" — written, so that a field filled
    by an earlier (larger) version of the point is cleared, never left stale."""
    if not entries:
        return ("",) * PARTS
    c, n, f, s, t = zip(*sorted(entries), strict=True)
    whole = encode(c, n, f, s, t)
    if whole != OVERFLOW:
        return (whole,) + ("",) * (PARTS - 1)
    parts: list[list[tuple[str, int, int, int | None, int]]] = [[] for _ in range(PARTS)]
    for e in entries:
        parts[part_of(e[0])].append(e)
    out = []
    for part in parts:
        if not part:
            out.append("")
            continue
        c, n, f, s, t = zip(*sorted(part), strict=True)
        out.append(encode(c, n, f, s, t))
    return tuple(out)


def encode_sorted(
    customers: list[str], count: Int64Array, failed: Int64Array, server: Int64Array, sum_ns: npt.NDArray[Any]
) -> tuple[str, ...]:
    """`encode_parts` of entries given as columns (`server` -1 where unknown), already sorted by
    (distinct) customer id: a writer holding thousands of customers' numbers in arrays builds no
    tuple per entry, and a table too large for one field is split by masks (each part keeps the
    sorted order), not by sorting tuples again."""
    whole = encode(customers, count, failed, server, sum_ns)
    if whole != OVERFLOW:
        return (whole,) + ("",) * (PARTS - 1)
    part = np.fromiter(map(part_of, customers), np.int64, len(customers))
    out = []
    for i in range(PARTS):
        which = np.flatnonzero(part == i)
        names = [customers[j] for j in which.tolist()]
        out.append(encode(names, count[which], failed[which], server[which], sum_ns[which]))
    return tuple(out)


class TableDecodeError(ValueError):
    """Not an encoding this version understands (or an overflow marker)."""


def decode_many(texts: Sequence[str]) -> Table:
    """Decode and concatenate parts (raises TableDecodeError for OVERFLOW or a foreign encoding)."""
    customers: list[str] = []
    columns: list[list[Int64Array]] = [[], [], [], []]
    for text in texts:
        try:
            version, n_text, widths, unit, payload = text.split(";", 4)
            n = int(n_text)
            if version != VERSION or len(widths) != 4 or unit not in ("m", "n", "mz", "nz"):
                raise ValueError(text[:20])
            raw = base64.b64decode(payload)
            if unit.endswith("z"):
                raw = zlib.decompress(raw)
            cut = raw.index(b"\0")
            ids = raw[:cut].decode().split("\n")
            pos = cut + 1
            cols = []
            for i, w in enumerate(map(int, widths)):
                col = np.frombuffer(raw, dtype=f"<u{w}", count=n, offset=pos).astype(np.int64)
                pos += w * n
                cols.append(col * 1_000_000 if i == 3 and unit[0] == "m" else col)
            if len(ids) != n or pos != len(raw):
                raise ValueError("length")
        except (ValueError, TypeError, zlib.error) as exc:  # UnicodeDecodeError is a ValueError
            raise TableDecodeError(f"fleet table: {text[:20]!r}") from exc
        customers += ids
        for i, col in enumerate(cols):
            columns[i].append(col)
    empty = np.zeros(0, dtype=np.int64)
    count, failed, server, sums = (np.concatenate(c) if c else empty for c in columns)
    return Table(customers, count, failed, server - 1, sums)
