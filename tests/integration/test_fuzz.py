"""Schema-driven fuzzing of the live API (schemathesis over /openapi.json): no 5xx on any input."""

from __future__ import annotations

import base64
import datetime as dt
import json

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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


def _cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


EXTREME_DAYS = ["0001-01-01", "1000-06-15", "1677-09-20", "1969-12-31", "2262-04-12", "2263-01-01", "3000-01-01"]
EXTREME_TIMES = ["0001-01-01T00:00:00Z", "1969-12-31T23:45:00Z", "2263-01-01T00:00:00Z", "9999-12-31T23:45:00+00:00"]


@pytest.mark.parametrize(
    "path",
    [f"/customers/cust_1/stats?from={d}&to={d}" for d in EXTREME_DAYS]
    + [f"/customers/cust_1/stats?from=2024-09-29&to={d}" for d in ["2263-01-01", "9999-12-31"]]
    + [f"/stats?from={d}&to={d}" for d in ["0001-01-01", "2263-01-01", "9999-12-31"]]
    + [f"/anomalies?from={d}&to={d}" for d in ["0001-01-01", "9999-12-31"]]
    + [f"/customers/cust_1/anomalies?from={d}&to={d}" for d in ["0001-01-01", "9999-12-31"]]
    + [f"/customers/cust_1/series?from={t}" for t in EXTREME_TIMES]
    + [f"/customers/cust_1/series?from=2024-09-29&to={t}" for t in EXTREME_TIMES[2:]]
    + [f"/customers/cust_1/series?from={d}&to={d}" for d in ["0001-01-01", "9999-12-31"]],
)
def test_times_influxdb_cannot_hold_are_422_naming_the_parameter(live_api: str, path: str) -> None:
    """InfluxDB holds 1677-09-21 … 2262-04-11 and logpulse's data starts in 1970: anything else is the
    client's mistake, answered 422 with the parameter's name, never a 5xx."""
    r = httpx.get(live_api + path, timeout=30)
    assert r.status_code == 422, (path, r.status_code, r.text)
    detail = r.json()["detail"]
    assert "'from'" in detail or "'to'" in detail, detail


@pytest.mark.parametrize(
    "cursor",
    [
        _cursor(["customer_id", "asc", [["nested"]]]),
        _cursor(["customer_id", "asc", [1]]),
        _cursor(["total_requests", "asc", ["x", 1.0, "cust_1"]]),
        _cursor(["total_requests", "asc", [0, "fast", "cust_1"]]),
        _cursor(["total_requests", "asc", [0, 1.0, 5]]),
        _cursor(["total_requests", "asc", [0, 1.0]]),
        _cursor(["total_requests", "asc", ["cust_1"]]),
        _cursor(["customer_id", "asc", [0, 1.0, "cust_1"]]),
        _cursor(["total_requests", "asc", [0, {"a": 1}, "cust_1"]]),
        _cursor({"sort": "total_requests"}),
        _cursor(["total_requests", "asc", [0, 1e400, "cust_1"]]),
        _cursor([["total_requests"], "asc", [0, 1.0, "c"]]),
        "!!!",
    ],
)
def test_crafted_fleet_cursors_are_422(live_api: str, cursor: str) -> None:
    sort = (
        "customer_id"
        if "customer_id" in base64.urlsafe_b64decode(cursor + "==").decode(errors="replace")
        else "total_requests"
    )
    r = httpx.get(
        f"{live_api}/stats", params={"from": "2024-09-29", "to": "2024-09-29", "sort": sort, "cursor": cursor}
    )
    assert r.status_code == 422, (cursor, r.status_code, r.text)
    assert "'cursor'" in r.json()["detail"]


@given(
    day=st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)),
    moment=st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)),
    offset_min=st.integers(-14 * 60, 14 * 60).map(lambda m: m - m % 15),
    tz=st.sampled_from(["UTC", "Asia/Tokyo", "America/Los_Angeles", "Asia/Kathmandu", "Pacific/Kiritimati"]),
)
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_any_date_or_time_is_answered_without_5xx(live_api: str, day, moment, offset_min, tz) -> None:  # type: ignore[no-untyped-def]
    """Every day of years 1 … 9999 and every RFC 3339 time on a quarter-hour, in zones east and west: an
    answer or a 422, never a 5xx."""
    sign = "+" if offset_min >= 0 else "-"
    stamp = moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0).isoformat()
    rfc3339 = f"{stamp}{sign}{abs(offset_min) // 60:02d}:{abs(offset_min) % 60:02d}"
    for path, params in [
        ("/customers/cust_1/stats", {"from": day.isoformat(), "to": day.isoformat(), "tz": tz}),
        ("/stats", {"from": day.isoformat(), "to": day.isoformat(), "tz": tz}),
        ("/anomalies", {"from": day.isoformat(), "tz": tz}),
        ("/customers/cust_1/series", {"from": rfc3339, "tz": tz, "interval": "1d"}),
        ("/customers/cust_1/series", {"from": "2024-09-29", "to": rfc3339, "tz": tz}),
    ]:
        r = httpx.get(live_api + path, params=params, timeout=30)
        assert r.status_code < 500, (path, params, r.status_code, r.text)
        if r.status_code == 422:
            assert "'from'" in r.text or "'to'" in r.text or "range" in r.text, r.text
