"""Process supervision and signals: a graceful stop for this process, and a local cluster's children.

SIGINT/SIGTERM set `STOP`: every input partition ends (`dataflow.StoppableSource`), the dataflow
drains (everything read is written and acknowledged), takes its last snapshot and returns; while
InfluxDB is unavailable it does not wait for it (`outage.py`). A drain that hangs (a write sent to an
InfluxDB that stopped answering without closing the connection) ends after STOP_GRACE_S, and a
second signal ends the process at once. A parent of cluster members forwards the signals to them,
and stops all of them as soon as one fails (a cluster cannot go on without a member).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

log = logging.getLogger(__name__)
POLL_S = 0.2
STOP = threading.Event()
"""Set on SIGINT/SIGTERM: every partition ends its input, so the dataflow drains (everything read is
written and acknowledged), takes its final snapshot and returns. This module imports nothing heavy,
so `logpulse process` installs the handlers before its slow imports: a signal during start-up
stops it cleanly too (exit 0), instead of killing it."""


_grace_s: float | None = None  # set by `stop_gracefully_on_signals`: how long a drain may take


def _graceful_stop(signum: int, frame: FrameType | None) -> None:
    log.info("signal %d: draining, snapshotting and stopping (a second signal stops at once)", signum)
    STOP.set()
    if _grace_s is not None:
        _arm_grace(_grace_s)
    # the user insists: the default action ends the process in the kernel, even while every thread is
    # blocked outside Python; like kill -9, it loses nothing the last snapshot did not cover
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.SIG_DFL)


def _arm_grace(grace_s: float) -> None:
    threading.Thread(target=_stop_after, args=(grace_s,), name="stop-grace", daemon=True).start()


def _stop_after(grace_s: float) -> None:
    """End the process if the drain still runs `grace_s` after the signal: as safe as kill -9, which the
    recovery design covers (the last snapshot holds only acknowledged points; the rest is read again)."""
    time.sleep(grace_s)
    log.warning(
        "still draining %g s after the stop signal (STOP_GRACE_S): stopping now; what the last snapshot "
        "does not cover is read again at the next start",
        grace_s,
    )
    logging.shutdown()
    os._exit(0)


def stop_gracefully_on_signals(grace_s: float | None = None) -> None:
    """SIGINT/SIGTERM end this process's dataflow cleanly (see the module docstring); with `grace_s`,
    a drain still running that long after the signal ends the process."""
    global _grace_s
    if grace_s is not None:
        _grace_s = grace_s
    signal.signal(signal.SIGTERM, _graceful_stop)
    signal.signal(signal.SIGINT, _graceful_stop)
    if grace_s is not None and STOP.is_set():  # the signal came during start-up
        _arm_grace(grace_s)


@contextmanager
def _forwarding_signals(children: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    def forward(signum: int, frame: FrameType | None) -> None:
        for c in children:
            if c.poll() is None:
                c.send_signal(signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def run_children(
    commands: list[list[str]], envs: list[dict[str, str]], on_tick: Callable[[], None] | None = None
) -> list[int]:
    """Run the commands as children until all exit, forwarding SIGINT/SIGTERM to them; if one exits
    non-zero, terminate the others. `on_tick` is called every POLL_S meanwhile. Returns the exit codes.
    A stop requested before (a signal during start-up) starts no child."""
    if STOP.is_set():
        return [0] * len(commands)
    children = [subprocess.Popen(cmd, env={**os.environ, **env}) for cmd, env in zip(commands, envs, strict=True)]
    with _forwarding_signals(children):
        while True:
            codes = [c.poll() for c in children]
            if all(code is not None for code in codes):
                break
            if any(code not in (None, 0) for code in codes):
                for c in children:
                    if c.poll() is None:
                        c.terminate()
                for c in children:
                    c.wait()
                break
            if on_tick:
                on_tick()
            time.sleep(POLL_S)
    return [c.wait() for c in children]
