"""The system programs the tests drive, each with the Debian/Ubuntu package that provides it and the
tests that need it: the one table behind the tests' skip marks (`requires`, re-exported by fixtures.py)
and behind ./run_tests.sh (what to install; which tests will be skipped when it cannot install).

Standard library only, so that run_tests.sh can ask it before pytest starts, without the test helpers:
    python tests/components.py missing             apt packages of the missing components, one line
    python tests/components.py services PKG...     the system services those packages start on install
    python tests/components.py report [WHY]        one line per group of tests that will be skipped
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest


@dataclass(frozen=True)
class Component:
    name: str
    package: str
    """The apt package that provides it."""
    commands: tuple[str, ...]
    """Executable names (looked up on PATH) or absolute paths; the first found is used."""
    used_by: str
    """The tests that need it, as the pre-run report names them."""
    service: str | None = None
    """The system service the package starts on install (the tests run their own, on free ports)."""

    def path(self) -> str | None:
        for command in self.commands:
            found = command if os.path.isabs(command) and os.access(command, os.X_OK) else shutil.which(command)
            if found:
                return found
        return None

    @property
    def skip_reason(self) -> str:
        return f"{self.name} not installed (apt package {self.package}; ./run_tests.sh installs it when run as root)"


INFLUXD = Component(
    "influxd",
    "influxdb",
    ("influxd", "/usr/bin/influxd"),
    "every test under tests/integration that stores data",
    "influxdb",
)
CHROMIUM = Component(
    "chromium",
    "chromium",
    ("chromium", "chromium-browser"),
    "tests/integration/test_dashboard.py, the dashboard and /docs checks of test_first_hour.py",
)
CHROMEDRIVER = Component("chromedriver", "chromium-driver", ("chromedriver",), "tests/integration/test_dashboard.py")
NGINX = Component("nginx", "nginx-light", ("/usr/sbin/nginx", "nginx"), "tests/integration/test_nginx_e2e.py", "nginx")
LOGROTATE = Component(
    "logrotate",
    "logrotate",
    ("/usr/sbin/logrotate", "logrotate"),
    "tests/integration/test_tailing_faults.py::test_logrotate_three_schemes_with_influxdb_away_and_new_files",
)
ALERTMANAGER = Component(
    "prometheus-alertmanager",
    "prometheus-alertmanager",
    ("prometheus-alertmanager", "/usr/bin/prometheus-alertmanager"),
    "tests/integration/test_alerting.py (Alertmanager receives the alerts)",
    "prometheus-alertmanager",
)
GOACCESS = Component(
    "goaccess", "goaccess", ("goaccess",), "the benchmarks (scripts/benchmarks/) that compare with GoAccess"
)

COMPONENTS = (INFLUXD, CHROMIUM, CHROMEDRIVER, NGINX, LOGROTATE, ALERTMANAGER, GOACCESS)


def requires(*components: Component) -> pytest.MarkDecorator:
    """A skip mark for a test (or, as `pytestmark`, a module) that drives these programs."""
    import pytest  # only the tests need it: run_tests.sh runs this module without the test dependencies

    missing = [c for c in components if c.path() is None]
    return pytest.mark.skipif(bool(missing), reason="; ".join(c.skip_reason for c in missing) or "installed")


def _main(argv: list[str]) -> int:
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    missing = [c for c in COMPONENTS if c.path() is None]
    if command == "missing":
        print(" ".join(c.package for c in missing))
    elif command == "services":
        print(" ".join(c.service for c in COMPONENTS if c.package in args and c.service))
    elif command == "report":
        why = " ".join(args) or "not installed"
        for c in missing:
            print(f"will be skipped: {c.used_by}: {c.name} missing (apt package {c.package}: {why})")
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
