#!/usr/bin/env bash
# The test suite, from a fresh clone: venv + package + influxd (+ chromium for the dashboard test),
# then pytest. Tests start their own throwaway influxd on a free loopback port; nothing is left running.
# Usage: ./run_tests.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup_env.sh

setup_venv "[test]"
setup_influxd
if ! command -v chromium >/dev/null 2>&1; then
    echo "installing Debian's chromium for the dashboard browser test (best effort)"
    apt_install chromium || echo "chromium not installed: the dashboard browser test will be skipped"
fi

# Whatever a test may leave behind if pytest itself is killed: influxd and logpulse processes that
# were not running before the suite started.
before="$(pgrep -f 'influxd -config|-m logpulse|bin/logpulse' || true)"
cleanup() {
    for pid in $(pgrep -f 'influxd -config|-m logpulse|bin/logpulse' || true); do
        grep -qx "$pid" <<<"$before" || kill -9 "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT

.venv/bin/python -m pytest "$@"
