"""Retrying through an InfluxDB outage, telling the user about it, and stopping in the middle of one.

Retrying quietly for WRITE_GIVE_UP_S (5 minutes by default) looks like a hang, and one line per
failed request floods the log: say it at once, then every `every_s` seconds, with the time left.

A stop (SIGINT/SIGTERM, `supervise.STOP`) ends the retrying at once: waiting out the give-up time
would make Ctrl-C take minutes. Nothing is lost by not waiting: the dataflow's snapshots only cover
what InfluxDB acknowledged, so the points not written are read again at the next start.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    stop_when_event_set,
    wait_random_exponential,
)

from logpulse.flow.supervise import STOP
from logpulse.storage.influx import InfluxUnavailable

log = logging.getLogger(__name__)


class StoppedDuringOutage(RuntimeError):
    """A stop was requested while InfluxDB was unavailable: the retrying ended without the points."""


class OutageLog:
    """A tenacity `before_sleep` hook shared by every retry loop of one process (thread-safe)."""

    def __init__(self, give_up_s: float, every_s: float = 5.0) -> None:
        self._give_up_s = give_up_s
        self._every_s = every_s
        self._lock = threading.Lock()
        self._last = -float("inf")

    def __call__(self, state: RetryCallState) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last < self._every_s:
                return
            self._last = now
        exc = state.outcome.exception() if state.outcome else None
        left = max(0.0, self._give_up_s - (state.seconds_since_start or 0.0))
        log.warning("%s; retrying, giving up in %.0f s (WRITE_GIVE_UP_S)", exc, left)

    def recovered(self) -> None:
        """Forget the outage, so that the next one is reported at once."""
        with self._lock:
            self._last = -float("inf")


def retrying_while_unavailable(
    give_up_s: float, before_sleep: Callable[[RetryCallState], None], *, multiplier: float
) -> Retrying:
    """Retry on `InfluxUnavailable` with exponential backoff and jitter, until `give_up_s` have passed
    or a stop is requested (the backoff sleep wakes up for it); the last error is re-raised."""
    return Retrying(
        retry=retry_if_exception_type(InfluxUnavailable),
        wait=wait_random_exponential(multiplier=multiplier, max=5.0),
        stop=stop_after_delay(give_up_s) | stop_when_event_set(STOP),
        sleep=_sleep_unless_stopping,
        before_sleep=before_sleep,
        reraise=True,
    )


def _sleep_unless_stopping(seconds: float) -> None:
    STOP.wait(seconds)


def stopped_or(exc: InfluxUnavailable, gave_up: Exception) -> Exception:
    """What to raise once `retrying_while_unavailable` ended with `exc`: `StoppedDuringOutage` if a stop
    ended it, else `gave_up`."""
    if STOP.is_set():
        return StoppedDuringOutage(f"{exc}; not retried further: stopping")
    return gave_up


def exit_stopped(cause: StoppedDuringOutage) -> None:
    """End the process now, with status 0: a stop during an outage (from any thread).

    Raising through the dataflow instead makes Bytewax abort with a panic. Ending here is as safe as
    kill -9, which the recovery design already covers: the last snapshot holds only acknowledged
    points, so what was not written is read again at the next start."""
    log.warning(
        "stopped without waiting for InfluxDB (%s): what it did not acknowledge is not in the last "
        "snapshot and is read again at the next start",
        cause,
    )
    logging.shutdown()
    os._exit(0)
