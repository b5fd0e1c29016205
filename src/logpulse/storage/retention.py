"""Retention policies: raw points, rollups and cache marks age out inside InfluxDB, not by deletes.

    default RP of the database (or INFLUXDB_RETENTION_POLICY)  requests, anomalies  RAW_RETENTION
    "rollups"                                                  rollups, rollups_1h, rollups_1d  ROLLUP_RETENTION
    "marks"                                                    writes (cache marks)  1 hour

InfluxDB drops whole shard groups once they are older than the duration, so the shard group length
of raw points and marks is chosen from the duration as InfluxDB's documentation recommends (< 2 days:
1 h; < 6 months: 1 d; else 7 d). Rollups get long shard groups (`rollup_shard_duration`): InfluxDB
pays per series *and per shard* when a statement reads many series — the fleet view's sums over
1,000 customers × 30 days took 430 ms with 7-day shard groups and 190 ms with one (measured on
influxd 1.6.7) — and rollups are small, so a year per shard group costs nothing on disk. `apply` is
idempotent: it creates what is missing and alters what differs; InfluxDB applies a changed shard
duration to shard groups created afterwards only (existing shards keep theirs until they expire).
"""

from __future__ import annotations

import re
from typing import Any

from logpulse.storage.influx import InfluxWriter, quote_ident
from logpulse.storage.points import MARKS_RETENTION, MARKS_RP, ROLLUP_RP

_UNIT_H = {"h": 1, "d": 24, "w": 168}


def normalize(duration: str) -> str:
    """`keep`/`inf` → `INF`; `30d` stays `30d`."""
    return "INF" if duration.lower() in ("inf", "keep", "") else duration


def shard_duration(duration: str) -> str:
    m = re.fullmatch(r"(\d+)([hdw])", normalize(duration))
    if m is None:
        return "7d"
    hours = int(m.group(1)) * _UNIT_H[m.group(2)]
    return "1h" if hours < 48 else "1d" if hours < 24 * 183 else "7d"


ROLLUP_SHARD_MAX_H = 52 * 168
"""Longest shard group of the rollups policy: 52 weeks."""


def rollup_shard_duration(duration: str) -> str:
    """Shard group length of the rollups policy: 52 weeks when rollups are kept forever, else a quarter
    of the retention (at least 1 h, at most 52 w), so that dropping whole shard groups keeps data at
    most ~25% longer than ROLLUP_RETENTION while a month's range still spans few shards."""
    d = normalize(duration)
    if d == "INF":
        return f"{ROLLUP_SHARD_MAX_H}h"
    return f"{min(ROLLUP_SHARD_MAX_H, max(1, int(_wanted_hours(d)) // 4))}h"


def _policies(writer: InfluxWriter) -> dict[str, dict[str, Any]]:
    db = quote_ident(writer.conn.database)
    result = writer.query(f"SHOW RETENTION POLICIES ON {db}", with_db=False)
    out: dict[str, dict[str, Any]] = {}
    for s in result[0].get("series", []) or []:
        for values in s.get("values", []) or []:
            row = dict(zip(s["columns"], values, strict=True))
            out[row["name"]] = row
    return out


def _hours(influx_duration: str) -> float:
    """InfluxDB's own duration text (`720h0m0s`, `0s` = INF) in hours."""
    if influx_duration in ("0s", "0"):
        return float("inf")
    total = 0.0
    for value, unit in re.findall(r"(\d+)([hms])", influx_duration):
        total += int(value) / {"h": 1, "m": 60, "s": 3600}[unit]
    return total


def _wanted_hours(duration: str) -> float:
    d = normalize(duration)
    if d == "INF":
        return float("inf")
    return int(d[:-1]) * _UNIT_H[d[-1]]


def ensure_policy(writer: InfluxWriter, name: str, duration: str, shard: str | None = None) -> None:
    """Create retention policy `name` with `duration` (and shard group length `shard`, default from
    the duration), or alter it if it exists with another duration or shard group length."""
    db = quote_ident(writer.conn.database)
    d = normalize(duration)
    shard = shard or shard_duration(d)
    clause = f"DURATION {d} REPLICATION 1 SHARD DURATION {shard}"
    existing = _policies(writer).get(name)
    if existing is None:
        writer.query(f"CREATE RETENTION POLICY {quote_ident(name)} ON {db} {clause}", with_db=False)
    elif _hours(str(existing.get("duration"))) != _wanted_hours(d) or _hours(
        str(existing.get("shardGroupDuration"))
    ) != _wanted_hours(shard):
        writer.query(f"ALTER RETENTION POLICY {quote_ident(name)} ON {db} {clause}", with_db=False)


def raw_policy(writer: InfluxWriter) -> str:
    """The retention policy raw points go to: INFLUXDB_RETENTION_POLICY, else the database default."""
    if writer.conn.retention_policy:
        return writer.conn.retention_policy
    for name, row in _policies(writer).items():
        if row.get("default"):
            return name
    return "autogen"


def ensure_database(writer: InfluxWriter, *, raw_retention: str = "INF", rollup_retention: str = "INF") -> None:
    """The database and its retention policies as the settings say. CREATE DATABASE is idempotent on
    1.x; on 2.x/3.x the bucket mapping must exist already."""
    writer.query(f"CREATE DATABASE {quote_ident(writer.conn.database)}", with_db=False)
    apply(writer, raw_retention=raw_retention, rollup_retention=rollup_retention)


def apply(writer: InfluxWriter, *, raw_retention: str = "INF", rollup_retention: str = "INF") -> None:
    """Make the three policies match the settings (the database must exist)."""
    ensure_policy(writer, ROLLUP_RP, rollup_retention, rollup_shard_duration(rollup_retention))
    ensure_policy(writer, MARKS_RP, MARKS_RETENTION)
    ensure_policy(writer, raw_policy(writer), raw_retention)
