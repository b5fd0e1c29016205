"""A plain JSON webhook: one POST per incident transition (firing, resolved), safe to receive twice.

Delivery is at-least-once, so the same transition can arrive again (a retry whose answer was lost, a
replay after a crash); the `Idempotency-Key: <id>:<status>` header lets the receiver drop repeats.
"""

from __future__ import annotations

from typing import Any

import httpx

from logpulse.alerts.alertmanager import iso, post_json
from logpulse.model import Incident


def payload(inc: Incident, status: str) -> dict[str, Any]:
    """The webhook body; `status` is "firing" or "resolved"."""
    return {
        "id": inc.id,
        "customer_id": inc.customer_id,
        "kind": inc.kind,
        "status": status,
        "started_at": iso(inc.start_ns),
        "ended_at": iso(inc.ended_ns) if status == "resolved" and inc.ended_ns is not None else None,
        "summary": inc.summary,
        "details": {
            "peak_score": inc.peak_score,
            "requests": inc.requests,
            "detected_at": iso(inc.detected_ns) if inc.detected_ns else None,
            "new_normal": inc.new_normal,
        },
    }


class WebhookClient:
    """POSTs one transition; raises DeliveryError unless the receiver answered 2xx."""

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self._url = url
        self._client = httpx.Client(timeout=timeout_s)

    def post(self, inc: Incident, status: str) -> None:
        headers = {"Idempotency-Key": f"{inc.id}:{status}"}
        post_json(self._client, self._url, "webhook", payload(inc, status), headers)

    def close(self) -> None:
        self._client.close()
