"""The alert outbox: a Bytewax stateful step whose state is the list of notifications not yet delivered.

Why a dataflow step and not a queue in memory: its state is part of the flow's recovery snapshots.
A notification queued before a snapshot is in the snapshot (and delivered after a restart, even a
kill -9); one queued after the last snapshot is re-created on resume, because the input after the
snapshot is replayed through the deterministic scorer. Either way nothing is lost — and something may
be sent twice, which receivers absorb (Alertmanager by labels, webhooks by `Idempotency-Key`).

Per customer (the step is keyed like `score`), the state holds:
* `pending`: notifications in order, each for one receiver, retried with exponential backoff
  (0.5 s doubling to 60 s, jitter) until accepted;
* `firing`: open incidents, re-posted to Alertmanager every minute while they fire.

`ingest` (`final=True`) does not return at end of input before every notification was accepted; if
that takes longer than ALERT_GIVE_UP_S it raises `AlertsGaveUp` and `ingest` exits non-zero.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from bytewax.operators import StatefulLogic

from logpulse import metrics
from logpulse.alerts.alertmanager import REPOST_S, AlertmanagerClient, DeliveryError
from logpulse.alerts.webhook import WebhookClient
from logpulse.config import Settings
from logpulse.model import Incident

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 60.0


class AlertsGaveUp(RuntimeError):
    """Alerts could not be delivered within ALERT_GIVE_UP_S (ingest only)."""


@dataclass
class Notice:
    """One notification for one receiver: `dest` "alertmanager" | "webhook", `status` "firing" | "resolved"."""

    dest: str
    status: str
    incident: Incident
    attempts: int = 0
    next_try: float = 0.0  # wall-clock seconds

    @property
    def key(self) -> str:
        return f"{self.dest}:{self.incident.id}:{self.status}"


@dataclass
class OutboxState:
    pending: dict[str, Notice] = field(default_factory=dict)
    firing: dict[str, tuple[Incident, float]] = field(default_factory=dict)  # id -> (latest, next re-post)
    notified: dict[str, str] = field(default_factory=dict)  # id -> last status queued


class Receivers:
    """The configured receivers of one process (HTTP clients are not part of the snapshot)."""

    def __init__(self, settings: Settings) -> None:
        self.alertmanager = AlertmanagerClient(settings.alertmanager_url) if settings.alertmanager_url else None
        self.webhook = WebhookClient(settings.webhook_url) if settings.webhook_url else None
        self.max_age_s = settings.alert_max_age_s
        self.give_up_s = settings.alert_give_up_s
        self.deadline: float | None = None  # ingest: one give-up deadline for all customers

    @property
    def any(self) -> bool:
        return self.alertmanager is not None or self.webhook is not None

    def dests(self) -> list[str]:
        return [d for d, c in (("alertmanager", self.alertmanager), ("webhook", self.webhook)) if c is not None]


class Outbox(StatefulLogic[list[Incident], str, OutboxState]):
    """The outbox of one customer (see the module docstring)."""

    def __init__(self, receivers: Receivers, state: OutboxState | None, *, final: bool) -> None:
        self.r = receivers
        self.state = state or OutboxState()
        self.final = final
        metrics.ALERTS_QUEUED.inc(len(self.state.pending))

    # --- Bytewax callbacks --------------------------------------------------------------------------

    def on_item(self, value: list[Incident]) -> tuple[Iterable[str], bool]:
        for inc in value:
            self._queue(inc)
        return self.deliver_due(), StatefulLogic.RETAIN

    def on_notify(self) -> tuple[Iterable[str], bool]:
        return self.deliver_due(), StatefulLogic.RETAIN

    def on_eof(self) -> tuple[Iterable[str], bool]:
        if self.final:
            return self.drain(), StatefulLogic.RETAIN
        # a graceful stop: one more try; what is left stays in the final snapshot
        return self.deliver_due(force=True), StatefulLogic.RETAIN

    def notify_at(self) -> dt.datetime | None:
        times = [n.next_try for n in self.state.pending.values()]
        times += [t for _, t in self.state.firing.values()]
        if not times:
            return None
        return dt.datetime.fromtimestamp(min(times), dt.UTC)

    def snapshot(self) -> OutboxState:
        return copy.deepcopy(self.state)

    # --- work ---------------------------------------------------------------------------------------

    def _queue(self, inc: Incident) -> None:
        s = self.state
        if self.r.max_age_s > 0 and time.time() - inc.end_ns / 1e9 > self.r.max_age_s:
            return  # ALERT_MAX_AGE_S: an old incident of a backfill is stored, not alerted
        before = s.notified.get(inc.id)
        if inc.status == "open":
            if self.r.alertmanager is not None:
                s.firing[inc.id] = (inc, s.firing.get(inc.id, (inc, time.time() + REPOST_S))[1])
            if before is None:
                self._add("firing", inc)
                s.notified[inc.id] = "open"
        elif before != "resolved":
            if before is None and self.r.webhook is not None:  # resolved before anyone heard of it
                self._add_one(Notice("webhook", "firing", inc))
            s.firing.pop(inc.id, None)
            if s.pending.pop(f"alertmanager:{inc.id}:firing", None) is not None:  # superseded
                metrics.ALERTS_QUEUED.dec()
            self._add("resolved", inc)
            s.notified[inc.id] = "resolved"

    def _add(self, status: str, inc: Incident) -> None:
        for dest in self.r.dests():
            self._add_one(Notice(dest, status, inc))

    def _add_one(self, notice: Notice) -> None:
        if notice.key not in self.state.pending:
            metrics.ALERTS_QUEUED.inc()
        self.state.pending[notice.key] = notice

    def deliver_due(self, *, force: bool = False) -> list[str]:
        """Send every notification whose time has come (all with force); re-post firing alerts.
        Returns the keys of the notifications delivered."""
        now = time.time()
        s = self.state
        delivered: list[str] = []
        for inc_id, (inc, at) in list(s.firing.items()):
            if at <= now:
                self._add_one(Notice("alertmanager", "firing", inc))
                s.firing[inc_id] = (inc, now + REPOST_S)
        due = [n for n in s.pending.values() if force or n.next_try <= now]
        if not due:
            return delivered
        blocked: set[tuple[str, str]] = set()  # (dest, id) with an earlier notification failing
        am = [n for n in due if n.dest == "alertmanager"]
        if am and self.r.alertmanager is not None:
            try:
                self.r.alertmanager.post([n.incident for n in am], time.time_ns())
                delivered += self._done(am)
            except DeliveryError as exc:
                self._failed(am, exc)
        for n in due:
            if n.dest != "webhook" or self.r.webhook is None:
                continue
            if (n.dest, n.incident.id) in blocked:
                continue
            try:
                self.r.webhook.post(n.incident, n.status)
                delivered += self._done([n])
            except DeliveryError as exc:
                blocked.add((n.dest, n.incident.id))
                self._failed([n], exc)
        for n in due:  # receivers no longer configured (settings changed between runs)
            if n.dest not in self.r.dests() and s.pending.pop(n.key, None) is not None:
                metrics.ALERTS_QUEUED.dec()
        return delivered

    def _done(self, notices: list[Notice]) -> list[str]:
        for n in notices:
            if self.state.pending.get(n.key) is n:
                del self.state.pending[n.key]
                metrics.ALERTS_QUEUED.dec()
            metrics.ALERTS_SENT.labels(n.dest).inc()
        resolved = {n.incident.id for n in notices if n.status == "resolved"}
        for inc_id in resolved:  # forget an incident once every receiver has its resolution
            if not any(p.incident.id == inc_id for p in self.state.pending.values()):
                self.state.notified.pop(inc_id, None)
        return [n.key for n in notices]

    def _failed(self, notices: list[Notice], exc: Exception) -> None:
        now = time.time()
        for n in notices:
            n.attempts += 1
            n.next_try = now + min(MAX_BACKOFF_S, 0.5 * 2 ** (n.attempts - 1)) * random.uniform(0.8, 1.2)
            metrics.ALERTS_FAILED.labels(n.dest).inc()
        if notices[0].attempts in (1, 5) or notices[0].attempts % 20 == 0:
            log.warning("alert delivery failed (attempt %d, will retry): %s", notices[0].attempts, exc)

    def drain(self, sleep: Callable[[float], None] = time.sleep) -> list[str]:
        """Deliver everything pending before returning (ingest), or raise AlertsGaveUp."""
        if self.r.deadline is None:
            self.r.deadline = time.monotonic() + self.r.give_up_s
        deadline = self.r.deadline
        delivered = self.deliver_due(force=True)
        while self.state.pending:
            if time.monotonic() >= deadline:
                raise AlertsGaveUp(
                    f"{len(self.state.pending)} alert(s) not delivered after {self.r.give_up_s:g} s (ALERT_GIVE_UP_S)"
                )
            wait = min(n.next_try for n in self.state.pending.values()) - time.time()
            sleep(max(0.0, min(wait, deadline - time.monotonic())))
            delivered += self.deliver_due()
        return delivered


def log_delivered(step_id: str, item: tuple[str, str]) -> None:
    """The outbox's downstream: Bytewax runs a stateful step's end-of-input only for steps that lead
    to an output or inspect step, so the delivered keys end here (logged at debug level)."""
    log.debug("alert delivered: %s", item[1])


def outbox_builder(settings: Settings, *, final: bool) -> Callable[[OutboxState | None], Outbox]:
    """The `op.stateful` builder: one Outbox per customer, sharing this process's receivers."""
    receivers = Receivers(settings)

    def build(state: OutboxState | None) -> Outbox:
        return Outbox(receivers, state, final=final)

    return build
