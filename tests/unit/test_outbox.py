"""The alert outbox's rules, without processes: order, retries with backoff, re-posting, max age,
and that its snapshot (the recovery state) carries what is not delivered yet. Its rules read the clock
(max age, backoff, re-posting): every test runs with the clock stopped at two instants (`moved_clock`),
the incidents placed relative to it."""

from __future__ import annotations

import pickle
import time

import pytest

from logpulse.alerts.alertmanager import DeliveryError, alert
from logpulse.alerts.outbox import Outbox, Receivers
from logpulse.config import Settings
from logpulse.model import Incident

MIN = 60 * 10**9
pytestmark = pytest.mark.usefixtures("moved_clock")


class Receiver:
    """Records what a receiver accepted; refuses while `down`."""

    def __init__(self) -> None:
        self.got: list[tuple[str, str]] = []
        self.down = False

    def post(self, inc: Incident | list[Incident], status_or_now: object) -> None:
        if self.down:
            raise DeliveryError("connection refused")
        for i in inc if isinstance(inc, list) else [inc]:
            self.got.append((i.id, i.status if isinstance(status_or_now, int) else str(status_or_now)))


def receivers(**settings: object) -> tuple[Receivers, Receiver, Receiver]:
    r = Receivers(Settings(_env_file=None, **settings))  # type: ignore[arg-type]
    am, hook = Receiver(), Receiver()
    r.alertmanager, r.webhook = am, hook  # type: ignore[assignment]
    return r, am, hook


def incident(status: str = "open", start: int | None = None) -> Incident:
    """A latency incident; by default it started 10 minutes before the (stopped) clock's now."""
    start = time.time_ns() - 10 * MIN if start is None else start
    ended = start + 5 * MIN if status == "resolved" else None
    return Incident("cust_1", "latency", start, start + 5 * MIN, 9.0, 100, status, ended, "slow", start + MIN)


def test_a_resolution_seen_first_still_reaches_the_webhook_as_firing_then_resolved() -> None:
    r, am, hook = receivers()
    box = Outbox(r, None, final=True)
    box.on_item([incident("resolved")])
    assert hook.got == [(incident().id, "firing"), (incident().id, "resolved")]
    assert am.got == [(incident().id, "resolved")]
    assert box.state.pending == {} and box.notify_at() is None


def test_failures_are_retried_with_backoff_and_nothing_is_lost() -> None:
    r, am, hook = receivers()
    hook.down = am.down = True
    box = Outbox(r, None, final=False)
    box.on_item([incident("open")])
    box.on_item([incident("open"), incident("resolved")])  # a newer version: the open one is not re-queued
    first = box.state.pending[f"webhook:{incident().id}:firing"]
    waits = []
    for _ in range(4):
        box.deliver_due(force=True)
        waits.append(first.next_try - time.time())
    assert waits[3] > 2 * waits[1] > 0 and first.attempts == 5  # exponential backoff
    # the snapshot is the recovery state: a restarted outbox delivers what was pending
    restored = pickle.loads(pickle.dumps(box.snapshot()))
    hook.down = am.down = False
    r2, am2, hook2 = receivers()
    again = Outbox(r2, restored, final=True)
    again.drain(sleep=lambda s: None)
    assert hook2.got == [(incident().id, "firing"), (incident().id, "resolved")]
    assert am2.got == [(incident().id, "resolved")]  # the pending firing post was superseded


def test_firing_alerts_are_re_posted_while_open() -> None:
    r, am, _ = receivers()
    box = Outbox(r, None, final=False)
    box.on_item([incident("open")])
    assert am.got == [(incident().id, "open")]
    inc, _ = box.state.firing[incident().id]
    box.state.firing[incident().id] = (inc, time.time() - 1)  # a minute later
    box.on_notify()
    assert am.got == [(incident().id, "open")] * 2
    body = alert(incident("open"), time.time_ns())
    assert body["endsAt"] > body["startsAt"] and body["labels"]["alertname"] == "logpulse_latency"


def test_alert_max_age_skips_old_incidents() -> None:
    r, am, hook = receivers(alert_max_age_s=3600)
    box = Outbox(r, None, final=True)
    box.on_item([incident("resolved", start=time.time_ns() - 300 * MIN)])
    assert am.got == [] and hook.got == []
    box.on_item([incident("resolved")])
    assert len(hook.got) == 2
