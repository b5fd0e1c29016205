#!/usr/bin/env bash
# The demo: private InfluxDB + generator + processor + API, on this machine, stopped by Ctrl-C.
# Usage: ./start.sh     State lives in .logpulse/ and data/: running it again continues where it
#                       stopped (history is written once); ./cleanup.sh stops everything and removes it.
# Demo size (environment only): DEMO_DAYS (1) days of history, DEMO_RATE (8) lines/s of history
# and live traffic alike (never thinned: the scorer's baselines, volume included, see one steady
# rate), DEMO_INCIDENTS (3) injected incidents, DEMO_CUSTOMERS (10).
set -euo pipefail
cd "$(dirname "$0")"

# One demo per directory: the lock is held by this script and inherited by every component, so it
# stays taken until the last of them is gone (even if this script was killed).
mkdir -p .logpulse
exec 9<>.logpulse/lock
if ! flock -n 9; then
    holder=""
    for _ in 1 2 3 4 5; do holder="$(cat .logpulse/lock 2>/dev/null || true)"; [ -n "$holder" ] && break; sleep 0.2; done
    if [ -n "$holder" ] && kill -0 "$holder" 2>/dev/null; then
        echo "logpulse is already running (pid ${holder}) — stop it with Ctrl-C or ./cleanup.sh" >&2
    else
        echo "logpulse is already running: components of an earlier ./start.sh are still up — stop them with ./cleanup.sh" >&2
    fi
    exit 1
fi
echo "$$" >.logpulse/lock
export LOGPULSE_DEMO_DIR="$(pwd -P)"  # marks every process of this demo (cleanup.sh finds them by it)

pids=()
names=()
stop_all() {  # stop_all STATUS: stop what was started (api, generator, processor, influxd), exit STATUS
    local status="$1" i
    trap '' INT TERM  # a second Ctrl-C must not leave influxd behind; ./cleanup.sh is the hard stop
    trap - EXIT
    if [ "${#pids[@]}" -gt 0 ]; then
        echo; echo "stopping..."
        # the API, the generator and the processor at once (each ends within STOP_GRACE_S), then
        # influxd, which the processor's drain writes to until it ends
        for i in "${!names[@]}"; do [ "${names[i]}" = influxd ] || signal_stop "${pids[i]}"; done
        for name in api generator processor influxd; do
            for i in "${!names[@]}"; do
                [ "${names[i]}" = "$name" ] || continue
                [ "$name" != influxd ] || signal_stop "${pids[i]}"
                awaited "${pids[i]}" "$name" || { [ "$status" != 0 ] || status=1; }
            done
        done
        : >.logpulse/pids
        echo "stopped. Data stays in .logpulse/ and data/: ./start.sh continues from here, ./cleanup.sh removes it."
    fi
    exit "$status"
}
signal_stop() {  # signal_stop PID: SIGTERM once (a second one would mean "stop at once")
    kill -TERM "$1" 2>/dev/null || true
    kill -CONT "$1" 2>/dev/null || true  # a frozen (SIGSTOPped) process gets the TERM only once running
}
awaited() {  # awaited PID NAME: up to 30 s to finish after signal_stop, then SIGKILL; false if it failed
    local pid="$1" name="$2" code=0
    for _ in $(seq 300); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
        echo "${name} did not stop within 30 s; killed"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || code=$?
    case "$code" in
        0|130|143|127) return 0 ;;  # clean, or stopped by the signal before it could handle it
        *) echo "${name} stopped with status ${code}; see .logpulse/logs/${name}.log"; return 1 ;;
    esac
}
alive() {  # a process that exists and is not a zombie
    [ -r "/proc/$1/stat" ] && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]
}
trap 'stop_all 0' INT TERM   # Ctrl-C / kill: a clean stop, status 0
trap 'stop_all $?' EXIT      # any other exit keeps its status

source scripts/setup_env.sh
setup_venv ""
setup_influxd
export PATH="$PWD/.venv/bin:$PATH"
export LOGPULSE_ENV_FILE="${LOGPULSE_ENV_FILE:-.env.local}"
DEMO_DAYS="${DEMO_DAYS:-1}" DEMO_RATE="${DEMO_RATE:-8}"
DEMO_INCIDENTS="${DEMO_INCIDENTS:-3}" DEMO_CUSTOMERS="${DEMO_CUSTOMERS:-10}"
export DEMO_DAYS

# Settings as the processes will see them (.env.local, overridden by the environment), checked
# before anything starts: bad settings and taken ports end here, with the setting to change.
preflight="$(python - <<'PY'
import signal; signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C here: quietly
import datetime as dt, os, shlex, sys
from pathlib import Path
from urllib.parse import urlparse
from logpulse.config import SettingsError, load_settings
from logpulse.ports import free_port, port_in_use

try:
    s = load_settings()
except SettingsError as exc:
    sys.exit("\n".join(f"error: {line}" for line in str(exc).splitlines()))
if port_in_use(s.api_port, s.api_host):
    sys.exit(f"error: port {s.api_port} (API_PORT) on {s.api_host} is already in use: set API_PORT to a free "
             "port in the environment or .env.local, or stop what listens there")
if s.metrics_port and port_in_use(s.metrics_port, "0.0.0.0"):
    sys.exit(f"error: port {s.metrics_port} (METRICS_PORT) is already in use: set METRICS_PORT to a free port or 0")
port = urlparse(s.influxdb_url).port or 8086
if port_in_use(port):
    free = free_port()
    print(f"note: port {port} (from INFLUXDB_URL) is in use; the demo's private InfluxDB uses {free}", file=sys.stderr)
    port = free
log_file = s.log_globs()[0]
# What this demo creates, for ./cleanup.sh (which removes nothing else): paths that do not exist yet,
# as "file PATH", "tree PATH" (a directory only logpulse writes into) or "dir PATH" (removed if empty).
created = Path(".logpulse/created")
known = {line.split(" ", 1)[1] for line in created.read_text().splitlines()} if created.exists() else set()
new = []
spool = [("file", s.ingest_spool_path)] if s.ingest_spool_path.strip() else []  # POST /ingest's lines
for kind, p in (("file", log_file), ("file", f"{log_file}.incidents.json"), ("file", s.dead_letter_path),
                ("tree", s.recovery_dir), *spool):
    path = Path(p)
    for q, k in [*((d, "dir") for d in reversed(path.parents)), (path, kind)]:
        if str(q) not in (".", "/") and not q.exists() and str(q) not in known:
            new.append(f"{k} {q}"); known.add(str(q))
with created.open("a") as f:
    f.writelines(f"{line}\n" for line in new)
since = dt.datetime.now(dt.UTC) - dt.timedelta(days=float(os.environ["DEMO_DAYS"]))
print(f"INFLUX_PORT={port} API_HOST={shlex.quote(s.api_host)} API_PORT={s.api_port}")
print(f"LOG_FILE={shlex.quote(log_file)} FROM={since:%Y-%m-%d}")
PY
)" || exit $?
eval "$preflight"
export INFLUXDB_URL="http://127.0.0.1:${INFLUX_PORT}"
API="http://${API_HOST}:${API_PORT}"
mkdir -p .logpulse/logs

start() {  # start NAME CMD...: in its own session (Ctrl-C reaches only this script, which stops
           # the components in order), output in .logpulse/logs/NAME.log
    local name="$1"; shift
    setsid "$@" >".logpulse/logs/${name}.log" 2>&1 &
    pids+=("$!")
    names+=("$name")
    echo "$! ${name}" >>.logpulse/pids
}
died() {  # died: the name of a component that is no longer running, if any
    local i
    for i in "${!pids[@]}"; do alive "${pids[i]}" || { echo "${names[i]}"; return 0; }; done
    return 1
}
fail() {  # fail NAME: a component stopped on its own; say why and stop the rest
    local code=0 i
    for i in "${!names[@]}"; do [ "${names[i]}" != "$1" ] || wait "${pids[i]}" || code=$?; done
    echo "error: the ${1} exited on its own (status ${code}); last lines of .logpulse/logs/${1}.log:" >&2
    tail -n 5 ".logpulse/logs/${1}.log" 2>/dev/null | sed 's/^/    /' >&2
    exit 1
}
: >.logpulse/pids

start influxd logpulse influxd --data-dir .logpulse/influxdb --port "$INFLUX_PORT"
for _ in $(seq 150); do
    curl -fs "${INFLUXDB_URL}/ping" >/dev/null && break
    if gone="$(died)"; then fail "$gone"; fi
    sleep 0.2
done
curl -fs "${INFLUXDB_URL}/ping" >/dev/null || { echo "error: influxd did not start in 30 s; see .logpulse/logs/influxd.log" >&2; exit 1; }

# --resume: a file from an earlier run is continued after its last line, never backfilled again
generator_started="$(date +%s)"
start generator logpulse generate --out "$LOG_FILE" --days "$DEMO_DAYS" --rate "$DEMO_RATE" \
    --incidents "$DEMO_INCIDENTS" --customers "$DEMO_CUSTOMERS" --resume --max-backfill-lines 0
start processor logpulse process
start api logpulse serve

echo "reading ${DEMO_DAYS} day(s) of history..."
for _ in $(seq 600); do  # until the newest request stored is recent: the history has been read
    if gone="$(died)"; then fail "$gone"; fi
    last="$(curl -fs "${API}/customers?limit=1000" 2>/dev/null | grep -Eo '"last_request": *"[^"]*"' |
        cut -d'"' -f4 | sort | tail -n 1 || true)"
    [ -n "$last" ] && [ "$(date -d "$last" +%s)" -ge "$(( generator_started - 60 ))" ] && break
    sleep 0.2
done
answer="$(curl -fs "${API}/customers/cust_1/stats?from=${FROM}" 2>/dev/null || true)"
cat <<MSG

logpulse is running (logs in .logpulse/logs/):
  dashboard   ${API}/dashboard
  API docs    ${API}/docs
  InfluxDB    ${INFLUXDB_URL}  (database from INFLUXDB_DATABASE)
  example     curl "${API}/customers/cust_1/stats?from=${FROM}"

MSG
python - "$answer" "${LOG_FILE}.incidents.json" "$API" "$FROM" <<'PY' || true
import json, sys
answer, truth, api, since = sys.argv[1:]
try:
    days = json.loads(answer)["days"]
except (ValueError, KeyError, TypeError):
    print("No numbers yet: the processor is still reading the history. Try the example in a few seconds.")
    days = []
if days:
    print("cust_1 per day (UTC):")
    print(f"  {'date':<10}  {'requests':>8}  {'failed':>6}  {'uptime %':>8}  {'avg s':>6}  {'median s':>8}  {'p99 s':>6}")
    for d in days:
        print(f"  {d['date']:<10}  {d['total_requests']:>8,}  {d['failed_requests']:>6,}  {d['uptime']:>8.2f}  "
              f"{d['average_latency']:>6.3f}  {d['median_latency']:>8.3f}  {d['p99_latency']:>6.3f}")
try:
    incidents = json.load(open(truth))
except (OSError, ValueError):
    incidents = []
if incidents:
    print("\nInjected incidents (found by the processor within seconds of being read):")
    for i in incidents[-6:]:
        print(f"  {i['customer']:<8} {i['kind']:<8} {i['start'][:10]} {i['start'][11:19]}-{i['end'][11:19]} UTC  "
              f"curl \"{api}/customers/{i['customer']}/anomalies?from={since}\"")
PY
echo
echo "Press Ctrl-C to stop everything."

wait -n "${pids[@]}" || true
gone="$(died)" || gone=component
fail "$gone"
