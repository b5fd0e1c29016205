"""The HTTP API against a real influxd: validation, injection attempts, auth, errors, cache, paging."""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from fixtures import ns, running_api, subprocess_env, write_requests
from logpulse.config import Settings
from logpulse.model import Incident
from logpulse.storage.points import incident_line

DAY = dt.datetime(2024, 9, 29, tzinfo=dt.UTC)


@pytest.fixture()
def api(influx_settings: Settings):
    write_requests(
        influx_settings,
        "cust_a",
        [(DAY + dt.timedelta(hours=h), 200 if h % 3 else 500, 0.1 * (h + 1)) for h in range(24)],
    )
    write_requests(influx_settings, "cust_b", [(DAY, 200, 1.0)])
    with running_api(subprocess_env(influx_settings)) as client:
        yield client


def test_stats_shape_and_from_date_alias(api: httpx.Client) -> None:
    a = api.get("/customers/cust_a/stats", params={"from": "2024-09-29", "to": "2024-09-29"}).json()
    b = api.get("/customers/cust_a/stats", params={"from_date": "2024-09-29", "to": "2024-09-29"}).json()
    assert a == b
    assert a["days"][0]["total_requests"] == 24 and a["days"][0]["failed_requests"] == 8
    assert a["summary"]["uptime"] == pytest.approx(16 / 24 * 100)
    assert a["days"][0]["anomalies"] == 0


@pytest.mark.parametrize(
    "params, words",
    [
        ({"from": "2024-13-01"}, "invalid 'from' date"),
        ({"from": "2024-02-30"}, "invalid 'from' date"),
        ({"from": "2024-9-1"}, "invalid 'from' date"),
        ({"from": "2024-09-30", "to": "2024-09-01"}, "is after"),
        ({"from": "2000-01-01", "to": "2024-09-01"}, "maximum"),
        ({"from": "2024-09-01", "to": "2024-09-02", "tz": "Mars/Base"}, "unknown time zone"),
        ({"from": "2024-09-01", "to": "2024-09-02", "tz": "../../etc/passwd"}, "unknown time zone"),
        ({}, "missing 'from'"),
    ],
)
def test_bad_parameters_get_422_with_a_message(api: httpx.Client, params: dict, words: str) -> None:
    r = api.get("/customers/cust_a/stats", params=params)
    assert r.status_code == 422 and words in r.json()["detail"]


@pytest.mark.parametrize(
    "bad_id",
    [
        "x' OR '1'='1",
        "cust_a'; DROP DATABASE x; --",
        'a"b',
        "a\\b",
        "a b",
        "cust_.*",
        "c" * 65,
        "ü",
        "a;b",
    ],
)
def test_injection_attempts_are_refused_and_change_nothing(api: httpx.Client, bad_id: str) -> None:
    r = api.get(
        f"/customers/{httpx.URL(bad_id)}/stats".replace("//", "/"), params={"from": "2024-09-29", "to": "2024-09-29"}
    )
    assert r.status_code in (404, 422), r.text
    assert api.get("/customers/cust_a/stats", params={"from": "2024-09-29", "to": "2024-09-29"}).status_code == 200


def test_unknown_customer_404(api: httpx.Client) -> None:
    r = api.get("/customers/nobody/stats", params={"from": "2024-09-29", "to": "2024-09-29"})
    assert r.status_code == 404 and "unknown customer" in r.json()["detail"]


def test_write_into_cached_range_is_visible_at_next_call(api: httpx.Client, influx_settings: Settings) -> None:
    params = {"from": "2024-09-29", "to": "2024-09-29"}
    first = api.get("/customers/cust_b/stats", params=params).json()
    assert api.get("/customers/cust_b/stats", params=params).json() == first  # served again (maybe cached)
    write_requests(influx_settings, "cust_b", [(DAY + dt.timedelta(hours=5), 503, 2.0)], worker=1)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # marks are polled every 0.5 s
        now = api.get("/customers/cust_b/stats", params=params).json()
        if now["summary"]["total_requests"] == 2:
            break
        time.sleep(0.1)
    assert now["summary"]["total_requests"] == 2 and now["summary"]["failed_requests"] == 1


def test_anomalies_sorted_and_counted_per_day(api: httpx.Client, influx_settings: Settings) -> None:
    lines = [
        incident_line(
            Incident(
                "cust_a", kind, ns(DAY + dt.timedelta(hours=h)), ns(DAY + dt.timedelta(hours=h, minutes=5)), 9.5, 300
            )
        )
        for kind, h in (("latency", 10), ("errors", 2))
    ]
    httpx.post(
        f"{influx_settings.influxdb_url}/write",
        params={"db": influx_settings.influxdb_database},
        content="\n".join(lines),
    ).raise_for_status()
    body = api.get("/customers/cust_a/anomalies", params={"from": "2024-09-29", "to": "2024-09-29"}).json()
    assert [a["kind"] for a in body["anomalies"]] == ["errors", "latency"]
    assert body["anomalies"][0]["start"] == "2024-09-29T02:00:00+00:00" and body["anomalies"][0]["requests"] == 300
    stats = api.get("/customers/cust_a/stats", params={"from": "2024-09-29", "to": "2024-09-30", "tz": "UTC"}).json()
    assert stats["days"][0]["anomalies"] == 2


def test_customers_paged(api: httpx.Client, influx_settings: Settings) -> None:
    for i in range(5):
        write_requests(influx_settings, f"cust_p{i}", [(DAY, 200, 0.5), (DAY + dt.timedelta(days=1), 200, 0.5)])
    seen, cursor = [], None
    while True:
        page = api.get("/customers", params={"limit": 3, **({"cursor": cursor} if cursor else {})}).json()
        seen += page["customers"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [c["customer_id"] for c in seen] == sorted(["cust_a", "cust_b"] + [f"cust_p{i}" for i in range(5)])
    p0 = next(c for c in seen if c["customer_id"] == "cust_p0")
    assert p0["total_requests"] == 2 and p0["first_request"].startswith("2024-09-29T00:00:00")
    assert p0["last_request"].startswith("2024-09-30T00:00:00")
    assert api.get("/customers", params={"cursor": "!!!"}).status_code == 422
    assert api.get("/customers", params={"limit": 0}).status_code == 422


def test_health_metrics_and_docs(api: httpx.Client) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").status_code == 200
    api.get("/customers/cust_a/stats", params={"from": "2024-09-29", "to": "2024-09-29"})
    metrics = api.get("/metrics").text
    assert "http_requests_total" in metrics and "/customers/{customer_id}/stats" in metrics
    assert api.get("/docs").status_code == 200
    spec = api.get("/openapi.json").json()
    assert "example" in str(spec["components"]["schemas"]["Stats"])
    assert api.get("/", follow_redirects=False).headers["location"] == "/dashboard"


def test_api_key(influx_settings: Settings) -> None:
    write_requests(influx_settings, "cust_k", [(DAY, 200, 1.0)])
    with running_api(subprocess_env(influx_settings, API_KEY="s3cret")) as api:
        params = {"from": "2024-09-29", "to": "2024-09-29"}
        assert api.get("/customers/cust_k/stats", params=params).status_code == 401
        assert (
            api.get("/customers/cust_k/stats", params=params, headers={"Authorization": "Bearer nope"}).status_code
            == 401
        )
        assert (
            api.get("/customers/cust_k/stats", params=params, headers={"Authorization": "Bearer s3cret"}).status_code
            == 200
        )
        assert api.get("/metrics").status_code == 401
        assert api.get("/healthz").status_code == 200 and api.get("/readyz").status_code == 200


def test_influxdb_down_gives_503_and_recovers(tmp_path, influx_settings: Settings) -> None:
    from logpulse.storage.influxd import LocalInfluxd

    db = LocalInfluxd.start(tmp_path / "own-influx")
    try:
        settings = influx_settings.model_copy(update={"influxdb_url": db.url})
        httpx.post(f"{db.url}/query", params={"q": f'CREATE DATABASE "{influx_settings.influxdb_database}"'})
        write_requests(settings, "cust_d", [(DAY, 200, 1.0)])
        with running_api(subprocess_env(settings)) as api:
            params = {"from": "2024-09-29", "to": "2024-09-29"}
            assert api.get("/customers/cust_d/stats", params=params).status_code == 200
            db.stop()
            r = api.get("/customers/cust_d/stats", params={**params, "tz": "Europe/Berlin"})
            assert r.status_code == 503 and r.headers["retry-after"] and "unreachable" in r.json()["detail"]
            assert "127.0.0.1" not in r.text and "http" not in r.text  # InfluxDB's URL only in the log
            ready = api.get("/readyz")
            assert ready.status_code == 503 and "127.0.0.1" not in ready.text
            db.restart()
            assert api.get("/customers/cust_d/stats", params={**params, "tz": "Europe/Berlin"}).status_code == 200
            assert api.get("/readyz").status_code == 200
    finally:
        db.close()


def test_two_workers_keep_cache_and_customer_list_correct(influx_settings: Settings) -> None:
    """API_WORKERS=2: each process has its own answer cache and known-customer list; both follow the
    writes' marks, so every answer after a write shows it, whichever process serves it."""
    write_requests(influx_settings, "cust_b", [(DAY, 200, 1.0)])
    env = {**subprocess_env(influx_settings), "API_WORKERS": "2", "STATS_CACHE_S": "60"}
    params = {"from": "2024-09-29", "to": "2024-09-29"}

    def total(customer: str) -> int:
        with httpx.Client(base_url=api.base_url, timeout=30) as own:  # a connection of its own
            r = own.get(f"/customers/{customer}/stats", params=params)
        return int(r.json()["summary"]["total_requests"]) if r.status_code == 200 else -r.status_code

    def totals(customer: str) -> list[int]:
        """12 calls at once: a lone connection is accepted by whichever process wakes first, usually
        the same one; concurrent ones are spread over both."""
        with ThreadPoolExecutor(12) as pool:
            return list(pool.map(total, [customer] * 12))

    with running_api(env) as api:
        assert totals("cust_b") == [1] * 12  # and now cached in every process that answered
        assert totals("cust_new") == [-404] * 12
        write_requests(influx_settings, "cust_b", [(DAY + dt.timedelta(hours=5), 503, 2.0)], worker=1)
        write_requests(influx_settings, "cust_new", [(DAY, 200, 0.5)], worker=1)
        time.sleep(1.5)  # marks are polled every 0.5 s by each process
        assert totals("cust_b") == [2] * 12
        assert totals("cust_new") == [1] * 12
