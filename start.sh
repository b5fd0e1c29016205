#!/usr/bin/env bash
# The demo: private InfluxDB + generator + processor + API, on this machine, stopped by Ctrl-C.
# Usage: ./start.sh            (state in .logpulse/ and data/; ./cleanup.sh removes it)
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup_env.sh

setup_venv ""
setup_influxd
mkdir -p .logpulse/logs data
: > .logpulse/pids
export PATH="$PWD/.venv/bin:$PATH"
export LOGPULSE_ENV_FILE="${LOGPULSE_ENV_FILE:-.env.local}"

# Settings as the processes will see them (.env.local, overridden by the environment).
eval "$(python - <<'PY'
import shlex, socket
from urllib.parse import urlparse
from logpulse.config import Settings
s = Settings()
port = urlparse(s.influxdb_url).port or 8086
with socket.socket() as sock:  # the configured port is taken: use a free one for the private influxd
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.bind(("127.0.0.1", 0)); port = sock.getsockname()[1]
print(f"INFLUX_PORT={port}")
print(f"API_HOST={shlex.quote(s.api_host)} API_PORT={s.api_port} LOG_PATH={shlex.quote(s.log_path)}")
PY
)"
export INFLUXDB_URL="http://127.0.0.1:${INFLUX_PORT}"
export LOG_PATH
API="http://${API_HOST}:${API_PORT}"

pids=()
start() {  # start NAME CMD...: background process, log in .logpulse/logs/NAME.log
    local name="$1"; shift
    "$@" >".logpulse/logs/${name}.log" 2>&1 &
    pids+=("$!")
    echo "$! ${name}" >>.logpulse/pids
}
stop_all() {  # stop_all STATUS: stop everything, then exit with STATUS
    local status="$1"
    trap - INT TERM EXIT
    echo; echo "stopping..."
    # api and generator first, then the processor (it drains into InfluxDB), then influxd
    for ((i=${#pids[@]}-1; i>=0; i--)); do
        kill -TERM "${pids[i]}" 2>/dev/null || true
        wait "${pids[i]}" 2>/dev/null || true
    done
    : > .logpulse/pids
    echo "stopped. Data stays in .logpulse/ and data/ (./cleanup.sh removes it)."
    exit "$status"
}
trap 'stop_all 0' INT TERM   # Ctrl-C / kill: a clean stop
trap 'stop_all $?' EXIT      # any other exit keeps its status

start influxd logpulse influxd --data-dir .logpulse/influxdb --port "$INFLUX_PORT"
for _ in $(seq 100); do curl -fs "${INFLUXDB_URL}/ping" >/dev/null && break; sleep 0.2; done
curl -fs "${INFLUXDB_URL}/ping" >/dev/null || { echo "influxd did not start; see .logpulse/logs/influxd.log"; exit 1; }

start generator logpulse generate --out "${LOG_PATH%%,*}" --days 2 --rate 200 --incidents 3
start processor logpulse process
start api logpulse serve

FROM="$(date -u -d '2 days ago' +%F)"
CURL="curl \"${API}/customers/cust_1/stats?from=${FROM}\""
echo "waiting for the first numbers..."
for _ in $(seq 150); do
    if curl -fs "${API}/customers/cust_1/stats?from=${FROM}" 2>/dev/null | grep -q '"date"'; then break; fi
    sleep 0.2
done
cat <<MSG

logpulse is running (logs in .logpulse/logs/):
  dashboard   ${API}/dashboard
  API docs    ${API}/docs
  InfluxDB    ${INFLUXDB_URL}  (database from INFLUXDB_DATABASE)
  example     ${CURL}

$(curl -fs "${API}/customers/cust_1/stats?from=${FROM}" | head -c 600)

Press Ctrl-C to stop everything.
MSG
wait -n "${pids[@]}" || true
echo "a component exited on its own; see .logpulse/logs/"
exit 1  # the EXIT trap stops the rest
