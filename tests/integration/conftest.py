"""Shared pytest fixtures: a throwaway influxd per test session, a fresh database per test.
Plain helpers live in fixtures.py; tests never import this module."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures import INFLUXD
from logpulse import config
from logpulse.config import Settings
from logpulse.storage import retention
from logpulse.storage.influx import Connection, InfluxWriter
from logpulse.storage.influxd import LocalInfluxd


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalInfluxd]:
    """One private influxd on a free loopback port for the whole session."""
    if INFLUXD.path() is None:
        pytest.skip(INFLUXD.skip_reason)
    db = LocalInfluxd.start(tmp_path_factory.mktemp("influxd"))
    yield db
    db.close()


@pytest.fixture()
def influx_settings(influxd: LocalInfluxd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings (also exported to the environment) pointing at a fresh database of the session influxd."""
    env = {
        "LOGPULSE_ENV_FILE": "/nonexistent",
        "INFLUXDB_URL": influxd.url,
        "INFLUXDB_DATABASE": f"t_{uuid.uuid4().hex[:12]}",
        "DEAD_LETTER_PATH": str(tmp_path / "rejected.jsonl"),
        "RECOVERY_DIR": str(tmp_path / "recovery"),
        "LOG_PATH": str(tmp_path / "api_requests.log"),
        "INGEST_SPOOL_PATH": str(tmp_path / "ingest_spool.log"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config.get_settings.cache_clear()
    settings = Settings(_env_file=None)
    writer = InfluxWriter(Connection.from_settings(settings))
    retention.ensure_database(writer)
    writer.close()
    yield settings
    config.get_settings.cache_clear()


@pytest.fixture()
def influx_writer(influx_settings: Settings) -> Iterator[InfluxWriter]:
    writer = InfluxWriter(Connection.from_settings(influx_settings))
    yield writer
    writer.close()
