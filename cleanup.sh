#!/usr/bin/env bash
# Stops what ./start.sh started (if still running) and removes its state: .logpulse/ and data/.
set -uo pipefail
cd "$(dirname "$0")"
if [ -f .logpulse/pids ]; then
    while read -r pid name; do
        [ -n "${pid:-}" ] && kill -TERM "$pid" 2>/dev/null && echo "stopped ${name} (${pid})"
    done < .logpulse/pids
    sleep 2
    while read -r pid _; do [ -n "${pid:-}" ] && kill -9 "$pid" 2>/dev/null; done < .logpulse/pids
fi
rm -rf .logpulse data
echo "removed .logpulse/ and data/"
