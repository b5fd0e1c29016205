"""Rules for the whole run: the end of the output names every skipped test with its reason, and with
LOGPULSE_NO_SKIPS=1 (.ci/run sets it) a skip fails the run. Where every component can be installed
(CI: root, apt), a skipped test is a test that silently stopped testing.

`moved_clock`: a test of code that reads the clock runs once at each of two instants months apart,
the clock stopped there (time-machine), so that what it asserts holds on any day, not just today.
Plain helpers live in fixtures.py; the folders' own conftest.py files hold their other fixtures."""

from __future__ import annotations

import datetime as dt
import os
import signal
from collections.abc import Iterator

import pytest
import time_machine
from hypothesis import HealthCheck, settings

# Property tests assert behaviour, never speed: on a shared, loaded machine Hypothesis's timing checks
# (an example's deadline, slow data generation) fail a run whose every assertion held.
settings.register_profile("logpulse", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("logpulse")

CLOCK_INSTANTS = [
    # early in a UTC day: still yesterday in New York, the day New York and Berlin are 5 h apart
    pytest.param(dt.datetime(2026, 3, 29, 0, 30, tzinfo=dt.UTC), id="2026-03-29"),
    # late in a UTC day in another year: already tomorrow in Kathmandu
    pytest.param(dt.datetime(2027, 1, 15, 23, 30, tzinfo=dt.UTC), id="2027-01-15"),
]


@pytest.fixture(params=CLOCK_INSTANTS)
def moved_clock(request: pytest.FixtureRequest) -> Iterator[dt.datetime]:
    """The clock of this process stopped at an instant; yields that instant (UTC)."""
    with time_machine.travel(request.param, tick=False):
        yield request.param


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C reaches what the tests start, as it does from a terminal. A shell that runs a command in
    the background (`nohup`, `cmd &` without job control) starts it with SIGINT ignored; every child
    inherits that, and a shell script cannot trap a signal ignored on entry, so tests that press Ctrl-C
    on ./start.sh would test nothing. A handler here resets the children to the default."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


NO_SKIPS = "LOGPULSE_NO_SKIPS"
_skipped: dict[str, str] = {}  # node id -> reason, in the order the tests ran


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # (path, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _no_skips() -> bool:
    return os.environ.get(NO_SKIPS, "") not in ("", "0")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.setdefault(report.nodeid, _reason(report))


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.skipped:  # a whole module skipped while it was collected
        _skipped.setdefault(report.nodeid, _reason(report))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped and _no_skips() and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _skipped:
        return
    terminalreporter.section(f"{len(_skipped)} skipped", sep="-", yellow=True)
    for nodeid, reason in _skipped.items():
        terminalreporter.line(f"SKIPPED {nodeid}: {reason}")
    if _no_skips():
        terminalreporter.line(
            f"FAILED: {len(_skipped)} test(s) skipped while {NO_SKIPS}=1: a skip is a failure here "
            "(install what the reasons name, or fix the test)",
            red=True,
            bold=True,
        )
