"""The sink never dies of one point: points a real influxd refuses are dead-lettered, the rest written."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from logpulse.config import Settings
from logpulse.flow.sinks.influx import InfluxSink, WriterRefused
from logpulse.model import RequestBatch, ScoredBatch
from logpulse.storage.influx import Connection, InfluxWriter

T0 = 1_700_000_000 * 10**9


def scored(customer: str, n: int, durations: list[str] | None = None) -> tuple[str, ScoredBatch]:
    b = RequestBatch(customer, [T0 + i for i in range(n)], ["/p"] * n, ["200"] * n, durations or ["0.100"] * n)
    return customer, ScoredBatch(b)


def count(writer: InfluxWriter, customer: str) -> int:
    res = writer.query(f'SELECT COUNT("status") FROM "requests" WHERE "customer_id" = \'{customer}\'')
    series = res[0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def test_a_refused_point_is_dead_lettered_and_the_others_are_written(influx_settings: Settings) -> None:
    s = influx_settings.model_copy(update={"write_batch_points": 500})
    writer = InfluxWriter(Connection.from_settings(s))
    writer.write([f"requests,customer_id=first duration=0.1,status=200i {T0 - 1}"])  # `duration` is a float
    part = InfluxSink(s).build("out", 0, 1)
    # `t` is a boolean in line protocol (a field type conflict), `1.2.3` no value at all (a parse error)
    part.write_batch([scored("a", 700), scored("x", 1, ["t"]), scored("b", 300), scored("y", 1, ["1.2.3"])])
    part.close()
    assert count(writer, "a") == 700 and count(writer, "b") == 300
    dead = Path(s.dead_letter_path)
    entries = sorted((json.loads(line) for line in dead.read_text().splitlines()), key=lambda e: e["line"])
    assert [e["line"].split(" ")[0] for e in entries] == ["requests,customer_id=x", "requests,customer_id=y"]
    assert all(e["check"] == "influxdb" for e in entries)
    assert "field type conflict" in entries[0]["reason"] and "unable to parse" in entries[1]["reason"]
    assert stat.S_IMODE(dead.stat().st_mode) == 0o600
    writer.close()


def test_a_writer_influxdb_refuses_stops_with_one_line_naming_the_settings(influx_settings: Settings) -> None:
    s = influx_settings.model_copy(update={"influxdb_database": "no_such_database"})
    part = InfluxSink(s).build("out", 0, 1)
    with pytest.raises(WriterRefused, match="INFLUXDB_DATABASE"):
        part.write_batch([scored("a", 3)])
    part.close()
