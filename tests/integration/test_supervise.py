"""A local cluster's supervision with real child processes: one member failing stops the others."""

from __future__ import annotations

import sys
import time

from logpulse.flow.supervise import run_children


def test_one_failing_child_stops_the_others() -> None:
    ticks: list[float] = []
    started = time.monotonic()
    codes = run_children(
        [
            [sys.executable, "-c", "import time; time.sleep(0.5); raise SystemExit(3)"],
            [sys.executable, "-c", "import time; time.sleep(60)"],
        ],
        [{}, {}],
        on_tick=lambda: ticks.append(time.monotonic()),
    )
    assert codes[0] == 3 and codes[1] < 0  # the sleeper was terminated by a signal
    assert time.monotonic() - started < 30 and ticks


def test_children_get_their_environment() -> None:
    code = "import os, sys; sys.exit(0 if os.environ['X_MEMBER'] == sys.argv[1] else 1)"
    assert run_children(
        [[sys.executable, "-c", code, "a"], [sys.executable, "-c", code, "b"]], [{"X_MEMBER": "a"}, {"X_MEMBER": "b"}]
    ) == [0, 0]
