"""Schema-driven fuzzing of the live API (schemathesis over /openapi.json): no 5xx on any input."""

from __future__ import annotations

import datetime as dt

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from fixtures import running_api, subprocess_env, write_requests

DAY = dt.datetime(2024, 9, 29, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def live_api(influxd, tmp_path_factory):
    """One API process over a small real data set for the whole module."""
    from logpulse.config import Settings
    from logpulse.storage import retention
    from logpulse.storage.influx import Connection, InfluxWriter

    tmp = tmp_path_factory.mktemp("fuzz")
    s = Settings(
        _env_file=None,
        influxdb_url=influxd.url,
        influxdb_database="fuzz",
        dead_letter_path=str(tmp / "rej.jsonl"),
        recovery_dir=str(tmp / "rec"),
    )
    w = InfluxWriter(Connection.from_settings(s))
    retention.ensure_database(w)
    w.close()
    write_requests(s, "cust_1", [(DAY + dt.timedelta(minutes=m), 200 if m % 5 else 500, 0.2) for m in range(50)])
    with running_api(subprocess_env(s)) as client:
        yield str(client.base_url).rstrip("/")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors_on_any_input(live_api: str, mode: GenerationMode) -> None:
    """Every operation of the OpenAPI spec, with valid-looking and invalid inputs: never a 5xx."""
    api_schema = schemathesis.openapi.from_url(f"{live_api}/openapi.json")
    failures: list[str] = []
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call(base_url=live_api, timeout=30)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} {case.query} -> {response.status_code}: {response.text[:200]}"
                )

        try:
            run()
        except Unsatisfiable:  # nothing invalid can be sent to an operation without parameters
            assert mode is GenerationMode.NEGATIVE
    assert not failures, "\n".join(failures[:10])
