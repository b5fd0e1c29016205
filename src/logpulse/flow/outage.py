"""Telling the user about an InfluxDB outage while the processor retries through it.

Retrying quietly for WRITE_GIVE_UP_S (5 minutes by default) looks like a hang, and one line per
failed request floods the log: say it at once, then every `every_s` seconds, with the time left.
"""

from __future__ import annotations

import logging
import threading
import time

from tenacity import RetryCallState

log = logging.getLogger(__name__)


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
