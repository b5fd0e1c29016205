"""Sorting and keyset cursors of the fleet view: a page continues after the last row's sort key."""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any

from logpulse.readmodel.errors import BadRequest

SORT_KEYS = (
    "customer_id",
    "total_requests",
    "failed_requests",
    "uptime",
    "median_latency",
    "p99_latency",
    "error_budget_remaining",
)
QUANTILE_SORTS = ("median_latency", "p99_latency")
"""Sort keys that need every customer's merged histogram to order the fleet (the costly reads)."""


def _sort_value(row: dict[str, Any], sort: str, order: str) -> tuple[Any, ...]:
    """Ascending key: rows without a value last in either order (a customer without requests is
    neither the best nor the worst), then the sort field (negated for desc), ties by customer id."""
    if sort == "customer_id":
        return (row["customer_id"],)
    v = row.get(sort)
    if v is None:
        return (1, 0.0, row["customer_id"])
    return (0, float(v) if order == "asc" else -float(v), row["customer_id"])


def sort_rows(rows: list[dict[str, Any]], sort: str, order: str) -> list[dict[str, Any]]:
    reverse = sort == "customer_id" and order == "desc"
    return sorted(rows, key=lambda row: _sort_value(row, sort, order), reverse=reverse)


def after_key(row: dict[str, Any], sort: str, order: str, key: tuple[Any, ...]) -> bool:
    k = _sort_value(row, sort, order)
    return k < key if sort == "customer_id" and order == "desc" else k > key


def encode_cursor(row: dict[str, Any], sort: str, order: str) -> str:
    """Opaque keyset cursor: the sort, the order and the last row's key (stable while data changes)."""
    raw = json.dumps([sort, order, list(_sort_value(row, sort, order))], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _is_sort_key(key: object, sort: object) -> bool:
    """Whether a decoded cursor key has the shape `_sort_value` makes for `sort`: [customer] by customer_id,
    else [0|1, finite number, customer] (anything else would fail, or compare wrongly, against the rows' keys)."""
    if not isinstance(key, list):
        return False
    if sort == "customer_id":
        return len(key) == 1 and isinstance(key[0], str)
    return (
        len(key) == 3
        and key[0] in (0, 1)
        and type(key[0]) is int
        and type(key[1]) in (int, float)
        and math.isfinite(key[1])
        and isinstance(key[2], str)
    )


def decode_cursor(cursor: str, sort: str, order: str) -> tuple[Any, ...]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
        c_sort, c_order, key = json.loads(raw)
        if not (isinstance(c_sort, str) and isinstance(c_order, str) and _is_sort_key(key, c_sort)):
            raise ValueError
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
        raise BadRequest("invalid 'cursor': pass the next_cursor of a previous page") from None
    if (c_sort, c_order) != (sort, order):
        raise BadRequest(
            f"'cursor' belongs to sort={c_sort}&order={c_order}, not sort={sort}&order={order}: "
            "keep sort and order while paging"
        )
    return tuple(key)
