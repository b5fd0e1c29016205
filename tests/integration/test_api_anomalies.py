"""GET /anomalies (the fleet's incidents, filtered) and the lifecycle fields of the per-customer route."""

from __future__ import annotations

import datetime as dt

from fixtures import running_api, subprocess_env
from logpulse.config import Settings
from logpulse.model import Incident, RequestBatch, ScoredBatch
from logpulse.storage.influx import InfluxWriter
from logpulse.storage.points import incident_line, request_lines

T = int(dt.datetime(2024, 9, 29, 10, tzinfo=dt.UTC).timestamp()) * 10**9
MIN = 60 * 10**9


def test_fleet_anomalies_filters_and_lifecycle_fields(influx_settings: Settings, influx_writer: InfluxWriter) -> None:
    resolved = Incident("cust_1", "latency", T, T + 5 * MIN, 27.5, 591, "resolved", T + 5 * MIN, "latency x3", T + MIN)
    open_drop = Incident(
        "cust_2", "traffic_drop", T + 9 * MIN, T + 12 * MIN, 300.0, 0, "open", None, "silent", T + 10 * MIN
    )
    lines = [incident_line(resolved), incident_line(open_drop)]
    for c in ("cust_1", "cust_2"):  # customers exist once they have requests
        lines += request_lines(ScoredBatch(RequestBatch(c, [T], ["/a"], ["200"], ["0.1"])))
    influx_writer.write(lines)
    with running_api(subprocess_env(influx_settings)) as api:
        day = {"from": "2024-09-29", "to": "2024-09-29"}
        body = api.get("/anomalies", params=day).json()
        assert [(a["customer_id"], a["kind"], a["status"]) for a in body["anomalies"]] == [
            ("cust_1", "latency", "resolved"),
            ("cust_2", "traffic_drop", "open"),
        ]
        first = body["anomalies"][0]
        assert first["id"] == resolved.id and first["summary"] == "latency x3"
        assert first["ended"] == "2024-09-29T10:05:00+00:00" and first["detected"] == "2024-09-29T10:01:00+00:00"
        assert body["anomalies"][1]["ended"] is None

        def ids(**params: str) -> list[str]:
            r = api.get("/anomalies", params={**day, **params})
            assert r.status_code == 200, r.text
            return [a["id"] for a in r.json()["anomalies"]]

        assert ids(status="open") == [open_drop.id]
        assert ids(kind="latency") == [resolved.id]
        assert ids(customer_id="cust_2") == [open_drop.id]
        assert ids(status="resolved", kind="traffic_drop") == []
        assert ids(**{"from": "2024-09-30", "to": "2024-09-30"}) == []

        for bad, name in (
            ({"status": "closed"}, "status"),
            ({"kind": "cpu"}, "kind"),
            ({"customer_id": "a b"}, "customer"),
        ):
            r = api.get("/anomalies", params={**day, **bad})
            assert r.status_code == 422 and name in r.json()["detail"], r.text

        per_customer = api.get("/customers/cust_2/anomalies", params=day).json()["anomalies"]
        assert per_customer[0]["status"] == "open" and per_customer[0]["summary"] == "silent"
