"""The packed per-customer table of fleet-wide rollup points: round trip, widths, units, overflow."""

from __future__ import annotations

import hashlib

import pytest

from logpulse.storage import fleet_table


def test_round_trip_of_parts_with_unknown_5xx_nanosecond_sums_and_wide_counts() -> None:
    entries = [
        ("cust_1", 3, 1, 0, 1_500_000_000),  # whole milliseconds
        ("cust_2", 70_000, 9, None, 12_345),  # 5xx unknown; a sum in ns: that part stores ns
        ("cust_3", 1, 0, 1, 2**40),
        *((f"c{i}", i + 1, i % 3, i % 2, (i + 1) * 1_000_000) for i in range(300)),
    ]
    parts = fleet_table.encode_parts(entries)
    assert len(parts) == fleet_table.PARTS and parts[0] and not any(parts[1:])  # fits in one field
    assert decoded(parts) == {c: (n, f, e, s) for c, n, f, e, s in entries}
    many = [(hashlib.sha1(str(i).encode()).hexdigest(), i, 0, i % 7, i * 10**6) for i in range(8_000)]
    parts = fleet_table.encode_parts(many)  # too many for one string: split by the hash of the id
    assert sum(1 for p in parts if p) == fleet_table.PARTS
    assert decoded(parts) == {c: (n, f, e, s) for c, n, f, e, s in many}
    for i, p in enumerate(parts):
        assert {fleet_table.part_of(c) for c in fleet_table.decode_many([p]).customers} == {i}


def decoded(parts: tuple[str, ...]) -> dict[str, tuple[int, int, int | None, int]]:
    table = fleet_table.decode_many([p for p in parts if p])
    return {
        c: (int(n), int(f), None if e < 0 else int(e), int(s))
        for c, n, f, e, s in zip(
            table.customers, table.count, table.failed, table.server_errors, table.sum_ns, strict=True
        )
    }


def test_too_many_customers_for_one_string_overflow_and_readers_refuse() -> None:
    names = [f"customer-{i:07d}-{'x' * 40}" for i in range(20_000)]
    text = fleet_table.encode(names, [1] * len(names), [0] * len(names), [0] * len(names), [10**6] * len(names))
    assert text == fleet_table.OVERFLOW
    with pytest.raises(fleet_table.TableDecodeError):
        fleet_table.decode_many([text])
    good = fleet_table.encode(["a", "b"], [1, 2], [0, 0], [0, 1], [10**6, 2 * 10**6])
    head, payload = good.rsplit(";", 1)
    for bad in (good.replace(";m;", ";mz;"), f"{head};{payload[:-4]}", "2;1;1111;m;AAAA", "1;x;1111;m;"):
        with pytest.raises(fleet_table.TableDecodeError):  # garbled or foreign: readers fall back
            fleet_table.decode_many([bad])
