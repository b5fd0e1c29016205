"""The private influxd: start, data survives a restart on the same dir/port, stop really stops it."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from fixtures import requires_influxd
from logpulse.storage import retention
from logpulse.storage.influx import Connection, InfluxUnavailable, InfluxWriter
from logpulse.storage.influxd import LocalInfluxd

pytestmark = requires_influxd


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _writer(url: str, db: str) -> InfluxWriter:
    return InfluxWriter(Connection(url=url, database=db))


def test_start_write_query_restart_stop(tmp_path: Path) -> None:
    data_dir = tmp_path / "influxdb"
    with LocalInfluxd.start(data_dir) as db:
        assert db.url == f"http://127.0.0.1:{db.port}"
        assert httpx.get(f"{db.url}/ping", timeout=5).status_code == 204
        assert (data_dir / "influxd.conf").read_text().count(f'"127.0.0.1:{db.port}"') == 1
        first_pid = db.pid
        assert first_pid is not None

        writer = _writer(db.url, "roundtrip")
        try:
            retention.ensure_database(writer)
            # two points of one customer in the same second differ by timestamp ns, both must survive
            writer.write(
                [
                    "requests,customer_id=cust_1 duration=0.5,status=200i 1727571600000000000",
                    "requests,customer_id=cust_1 duration=1.5,status=500i 1727571600000000001",
                ]
            )
            rows = writer.query('SELECT COUNT("duration"), SUM("duration") FROM "requests"')
            values = rows[0]["series"][0]["values"][0]
            assert values[1:] == [2, 2.0]

            db.stop()
            assert not _alive(first_pid)
            with pytest.raises(InfluxUnavailable):
                writer.query('SELECT COUNT("duration") FROM "requests"')

            db.restart()
            assert db.pid != first_pid
            rows = writer.query('SELECT COUNT("duration") FROM "requests"')
            assert rows[0]["series"][0]["values"][0][1] == 2
        finally:
            writer.close()
        last_pid = db.pid
    assert last_pid is not None and not _alive(last_pid)
    assert data_dir.exists(), "a caller-supplied data dir is kept"


def test_kill_then_restart_and_temp_dir_removed() -> None:
    db = LocalInfluxd.start()
    temp_dir = db.data_dir
    try:
        pid = db.pid
        assert pid is not None
        db.kill()
        assert not _alive(pid)
        db.restart()
        assert httpx.get(f"{db.url}/ping", timeout=5).status_code == 204
    finally:
        db.close()
    assert not temp_dir.exists(), "a temporary data dir is removed on close"
