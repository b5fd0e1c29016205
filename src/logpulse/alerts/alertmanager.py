"""Alertmanager's API v2: incidents become alerts with labels, firing while open, resolved with endsAt.

Like Prometheus, logpulse re-posts a firing alert every `REPOST_S` with `endsAt` a few minutes ahead:
if logpulse dies, Alertmanager resolves the alert by itself once that time passes instead of keeping a
stale alert forever. A resolved incident is posted with `endsAt` = its end (in the past), which
Alertmanager shows as resolved. Alerts are identified by their label set, which includes the incident
id, so re-posting (or a replay after a crash) updates the same alert.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from logpulse.model import Incident

REPOST_S = 60.0
FIRING_TTL_S = 300.0  # endsAt of a firing alert: now + this (Prometheus uses 4 x its resend delay)
SEVERITY = {
    "slo_burn": "page",
    "traffic_drop": "critical",
    "errors": "warning",
    "latency": "warning",
    "traffic_surge": "warning",
}


class DeliveryError(RuntimeError):
    """A receiver did not accept a notification (unreachable, timeout, non-2xx); retried later."""


TOKEN_SEGMENT_CHARS = 16
"""A path segment this long is taken for a secret: webhook receivers (Slack, Discord, Teams) put their
token in the path (`/services/T0/B0/<24 chars>`, `/webhooks/<id>/<68 chars>`), while route names
(`/api/v2/alerts`, `/hook`) are short words worth keeping in a log."""


def redacted(url: str) -> str:
    """`url` fit for a log: credentials (`user:pass@`), every query value and every token-like path
    segment replaced by `***`, since receivers are often authenticated by a token in the URL."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    path = "/".join("***" if len(s) >= TOKEN_SEGMENT_CHARS else s for s in parts.path.split("/"))
    query = urlencode([(name, "***") for name, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
    return urlunsplit((parts.scheme, netloc, path, query, ""))


def post_json(client: httpx.Client, url: str, receiver: str, body: Any, headers: dict[str, str] | None = None) -> None:
    """POST `body` as JSON; DeliveryError unless the receiver answered 2xx (both receivers share this).
    The error names the receiver's URL without its credentials (it is logged)."""
    shown = redacted(url)
    try:
        r = client.post(url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{receiver} {shown}: {str(exc).replace(url, shown)}") from exc
    if r.status_code >= 300:
        raise DeliveryError(f"{receiver} {shown} answered {r.status_code}: {r.text[:200]}")


def iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alert(inc: Incident, now_ns: int) -> dict[str, Any]:
    """One alert of the v2 API for an incident version."""
    if inc.status == "resolved" and inc.ended_ns is not None:
        ends = min(inc.ended_ns, now_ns)
    else:
        ends = now_ns + int(FIRING_TTL_S * 1e9)
    return {
        "labels": {
            "alertname": f"logpulse_{inc.kind}",
            "customer_id": inc.customer_id,
            "severity": SEVERITY.get(inc.kind, "warning"),
            "incident_id": inc.id,
        },
        "annotations": {
            "summary": inc.summary,
            "peak_score": f"{inc.peak_score:g}",
            "requests": str(inc.requests),
        },
        "startsAt": iso(inc.start_ns),
        "endsAt": iso(ends),
    }


class AlertmanagerClient:
    """POSTs alerts to `<url>/api/v2/alerts`; raises DeliveryError when they were not accepted."""

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self._url = url.rstrip("/") + "/api/v2/alerts"
        self._client = httpx.Client(timeout=timeout_s)

    def post(self, incidents: list[Incident], now_ns: int) -> None:
        post_json(self._client, self._url, "Alertmanager", [alert(inc, now_ns) for inc in incidents])

    def close(self) -> None:
        self._client.close()
