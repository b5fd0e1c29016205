"""Retention policies against a real influxd: the rollups policy's long shard groups, and the
alteration of a policy created by an older version (7-day shard groups)."""

from __future__ import annotations

from logpulse.storage import retention
from logpulse.storage.influx import InfluxWriter, quote_ident
from logpulse.storage.points import ROLLUP_RP


def shard_hours(writer: InfluxWriter, name: str) -> float:
    row = retention._policies(writer)[name]
    return retention._hours(str(row["shardGroupDuration"]))


def test_rollups_get_long_shard_groups_and_an_old_policy_is_altered(influx_writer: InfluxWriter) -> None:
    retention.ensure_database(influx_writer)
    assert shard_hours(influx_writer, ROLLUP_RP) == 52 * 168  # kept forever: 52-week shard groups
    db = quote_ident(influx_writer.conn.database)
    influx_writer.query(
        f"ALTER RETENTION POLICY {quote_ident(ROLLUP_RP)} ON {db} SHARD DURATION 7d", with_db=False
    )  # what the previous version created
    assert shard_hours(influx_writer, ROLLUP_RP) == 168
    retention.ensure_database(influx_writer)
    assert shard_hours(influx_writer, ROLLUP_RP) == 52 * 168
    retention.ensure_database(influx_writer, rollup_retention="400d")  # finite: a quarter of the retention
    row = retention._policies(influx_writer)[ROLLUP_RP]
    assert (retention._hours(str(row["duration"])), shard_hours(influx_writer, ROLLUP_RP)) == (400 * 24, 100 * 24)
    assert retention.rollup_shard_duration("2h") == "1h" and retention.rollup_shard_duration("10000w") == "8736h"
