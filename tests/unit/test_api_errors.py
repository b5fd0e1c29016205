"""The API's error answers in-process (no InfluxDB): one body shape, the parameter named, the status
of each mapped exception."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from logpulse.api.app import create_app
from logpulse.config import Settings


@pytest.fixture()
def client() -> Iterator[TestClient]:
    # port 9 (discard) refuses connections: nothing here may reach an InfluxDB; no cache, so no polling
    settings = Settings(_env_file=None, api_key="k", influxdb_url="http://127.0.0.1:9", stats_cache_s=0)
    with TestClient(create_app(settings), base_url="http://localhost", headers={"Authorization": "Bearer k"}) as client:
        yield client


@pytest.mark.parametrize(
    "url, status, words",
    [
        ("/customers?limit=0", 422, "invalid 'limit'"),
        ("/customers?cursor=" + "x" * 201, 422, "invalid 'cursor'"),
        ("/customers/a%20b/stats?from=2024-01-01&to=2024-01-02", 422, "invalid customer id"),
        ("/customers/a%0A/stats?from=2024-01-01&to=2024-01-02", 422, "invalid customer id"),  # `$` allows a final \n
        ("/customers/a/stats?from=2024-01-01&to=2024-01-02&tz=Mars/Base", 422, "unknown time zone"),
        ("/customers/a/anomalies", 422, "missing 'from'"),
    ],
)
def test_errors_are_one_string_naming_the_problem(client: TestClient, url: str, status: int, words: str) -> None:
    r = client.get(url)
    assert r.status_code == status
    assert set(r.json()) == {"detail"} and isinstance(r.json()["detail"], str) and words in r.json()["detail"]


def test_missing_key_is_401_with_challenge(client: TestClient) -> None:
    r = client.get("/customers", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer" and "API key" in r.json()["detail"]


def test_every_route_documents_its_errors_as_problem(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path, ops in spec["paths"].items():
        if path.startswith("/customers"):
            for status in ("401", "404", "422", "503"):
                assert ops["get"]["responses"][status]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/Problem"
                }
