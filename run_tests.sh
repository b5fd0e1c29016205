#!/usr/bin/env bash
# The test suite, from a fresh clone: venv + package, then the gates (ruff check, ruff format --check,
# mypy --strict: the first failure stops the run and prints the command that fixes or shows it), then
# influxd (+ chromium for the dashboard test) and pytest. Tests start their own throwaway influxd on a
# free loopback port; nothing is left running.
# Usage: ./run_tests.sh            gates, then every test (tests/unit and tests/integration)
#        ./run_tests.sh unit       gates, then tests/unit only (no processes, no InfluxDB; seconds)
#        ./run_tests.sh [pytest args...]   gates, then pytest with these arguments
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

setup_influxd
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    echo "installing Debian's chromium and chromium-driver for the dashboard browser tests (best effort)"
    apt_install chromium chromium-driver || echo "chromium not installed: the dashboard browser tests will be skipped"
fi

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

.venv/bin/python -m pytest "$@"
