#!/usr/bin/env bash
# The test suite, from a fresh clone: venv + package, then the gates (ruff check, ruff format --check,
# mypy --strict: the first failure stops the run and prints the command that fixes or shows it), then
# the system programs the tests drive (tests/components.py: influxdb, chromium, nginx-light, logrotate,
# prometheus-alertmanager, goaccess; apt-get as root, one update, nothing when all are there), then
# pytest. What cannot be installed (not root, no apt, LOGPULSE_NO_APT=1) is said before pytest starts,
# one line per group of tests it skips; the run ends with the list of skipped tests. LOGPULSE_NO_SKIPS=1
# (.ci/run) makes a skip fail the run. Tests start their own throwaway influxd, nginx, Alertmanager on
# free loopback ports; nothing is left running. docs/development.md says more.
# Usage: ./run_tests.sh            gates, then every test (tests/unit and tests/integration)
#        ./run_tests.sh unit       gates, then tests/unit only (no processes, no installs; seconds)
#        ./run_tests.sh [pytest args...]   gates, installs, then pytest with these arguments
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup_env.sh

setup_venv "[test]"
if [ "${1:-}" = unit ]; then
    shift
    set -- tests/unit "$@"
    unit_only=1
fi

gate() {  # $1 = how to fix, rest = the check
    local fix="$1"
    shift
    echo "gate: $*"
    if ! "$@"; then
        echo "FAILED: $*" >&2
        echo "  fix: $fix" >&2
        exit 1
    fi
}
gate ".venv/bin/ruff check --fix src tests scripts  (then fix what it reports by hand)" \
    .venv/bin/ruff check src tests scripts
gate ".venv/bin/ruff format src tests scripts" .venv/bin/ruff format --check src tests scripts
gate "fix the reported types; .venv/bin/mypy lists them (settings: [tool.mypy] in pyproject.toml)" .venv/bin/mypy

if [ -n "${unit_only:-}" ]; then
    exec .venv/bin/python -m pytest "$@"
fi

install_components() {  # the missing system programs; then one line per group of tests still skipped
    local missing why services svc
    missing="$(.venv/bin/python tests/components.py missing)"
    [ -n "$missing" ] || return 0
    # shellcheck disable=SC2086  # one word per package
    if why="$(apt_unavailable $missing)"; then
        why="cannot install: $why"
    else
        echo "installing the system programs the tests drive: $missing"
        # one apt-get for all; if that fails, each on its own so that one unavailable package stops no other
        apt_install $missing || for pkg in $missing; do apt_install "$pkg" || true; done
        # a package may start its system-wide service; the tests run their own on free ports
        services="$(.venv/bin/python tests/components.py services $missing)"
        for svc in $services; do
            (command -v systemctl >/dev/null 2>&1 && systemctl stop "$svc" >/dev/null 2>&1) || true
        done
        why="apt-get install failed (see above)"
    fi
    .venv/bin/python tests/components.py report "$why"
}
install_components

# Whatever a test may leave behind if pytest itself is killed: every process started by this run
# (they inherit LOGPULSE_TEST_RUN), and nothing else: other runs and other users' servers share the
# machine.
export LOGPULSE_TEST_RUN="$$-$(date +%s%N)-$RANDOM"
cleanup() {
    local env pid
    for env in /proc/[0-9]*/environ; do
        pid="${env#/proc/}"
        pid="${pid%/environ}"
        [ "$pid" = "$$" ] && continue
        if grep -qzx "LOGPULSE_TEST_RUN=$LOGPULSE_TEST_RUN" "$env" 2>/dev/null; then
            kill -9 "$pid" 2>/dev/null || true
        fi
    done
}
trap cleanup EXIT

# The suite mostly waits on real processes (influxd, start.sh, kill -9 and restart): its test files run
# side by side, one worker more than there are cores, at most 5 (pytest-xdist; each worker has its own
# influxd; a file stays on one worker, so a module's fixture is built once). On 2 cores: 3 workers
# 5:34, 2 workers 6:16, 1 about 7. LOGPULSE_TEST_WORKERS=0 runs them one after the other.
workers="${LOGPULSE_TEST_WORKERS:-$(( $(nproc) + 1 < 5 ? $(nproc) + 1 : 5 ))}"
.venv/bin/python -m pytest -n "$workers" --dist loadfile --durations=20 "$@"
