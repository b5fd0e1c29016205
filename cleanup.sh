#!/usr/bin/env bash
# Stops what ./start.sh started in this directory and removes what it created: .logpulse/ (private
# InfluxDB, logs) and the paths listed in .logpulse/created (the generated log, its incidents file,
# the dead letters, the recovery dir with the checkpoints and the alert outbox, the ingest spool;
# their directories only if empty). Nothing else.
# Usage: ./cleanup.sh [-y]     (-y: do not ask)
set -uo pipefail
cd "$(dirname "$0")"
here="$(pwd -P)"
case "${1:-}" in
    -y|--yes) yes=1 ;;
    "") yes="" ;;
    *) echo "usage: ./cleanup.sh [-y]" >&2; exit 2 ;;
esac

demo_pids() {  # processes started by this directory's start.sh: they carry LOGPULSE_DEMO_DIR=$PWD
    grep -lzxF "LOGPULSE_DEMO_DIR=${here}" /proc/[0-9]*/environ 2>/dev/null |
        sed 's|^/proc/\([0-9]*\)/environ$|\1|' | grep -vx "$$"
}
starter() {  # the running ./start.sh of this directory (pid in .logpulse/lock), if any
    local pid
    pid="$(cat .logpulse/lock 2>/dev/null)" || return 1
    [ -n "$pid" ] && [ "$(readlink "/proc/${pid}/cwd" 2>/dev/null)" = "$here" ] &&
        tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null | grep -q 'start\.sh' && echo "$pid"
}
alive() {  # a process that exists and is not a zombie
    [ -r "/proc/$1/stat" ] && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]
}
wait_gone() {  # wait_gone SECONDS PID...: until none of the pids runs
    local n="$1" pid; shift
    for _ in $(seq $(( n * 10 ))); do
        for pid in "$@"; do alive "$pid" && break; pid=""; done
        [ -z "${pid:-}" ] && return 0
        sleep 0.1
    done
    return 1
}

# What would be removed
targets=()
[ -d .logpulse ] && targets+=(".logpulse/")
if [ -f .logpulse/created ]; then
    while read -r kind path; do
        [ -e "$path" ] && [ "$kind" != dir ] && targets+=("$path")
    done <.logpulse/created
else  # state of an older start.sh without the list: its fixed default paths
    for path in data/api_requests.log data/api_requests.log.incidents.json data/rejected.jsonl data/recovery \
        data/ingest_spool.log; do
        [ -e "$path" ] && targets+=("$path")
    done
fi
running="$(starter; demo_pids)"
if [ "${#targets[@]}" -eq 0 ] && [ -z "$running" ]; then
    echo "nothing to clean up: no demo state here and nothing of it running"
    exit 0
fi

echo "This stops the demo${running:+ (running)} and removes:"
for t in "${targets[@]}"; do echo "  $t"; done
if [ -z "$yes" ]; then
    read -r -p "Remove them? [y/N] " answer || answer=""
    case "$answer" in
        y|Y|yes) ;;
        *) echo "nothing removed (answer y, or run ./cleanup.sh -y)"; exit 1 ;;
    esac
fi

# Stop: ./start.sh itself stops its components in order; anything left (e.g. start.sh was killed)
# is found by its marker: everything but influxd first (the processor drains into it), then the rest.
if pid="$(starter)"; then
    kill -TERM "$pid" 2>/dev/null && echo "stopping ./start.sh (pid ${pid})"
    wait_gone 45 "$pid" || kill -KILL "$pid" 2>/dev/null
fi
left=()
for pid in $(demo_pids); do
    tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null | grep -q influxd || left+=("$pid")
done
if [ "${#left[@]}" -gt 0 ]; then
    echo "stopping leftover processes: ${left[*]}"
    kill -TERM "${left[@]}" 2>/dev/null
    wait_gone 20 "${left[@]}" || kill -KILL "${left[@]}" 2>/dev/null
fi
left=($(demo_pids))
if [ "${#left[@]}" -gt 0 ]; then
    echo "stopping leftover processes: ${left[*]}"
    kill -TERM "${left[@]}" 2>/dev/null
    wait_gone 10 "${left[@]}" || kill -KILL "${left[@]}" 2>/dev/null
fi

# Remove: listed files and trees, then listed directories deepest first if empty, then .logpulse/
if [ -f .logpulse/created ]; then
    while read -r kind path; do
        case "$kind" in file|tree) rm -rf -- "$path" ;; esac
    done <.logpulse/created
    tac .logpulse/created | while read -r kind path; do
        [ "$kind" = dir ] && rmdir -- "$path" 2>/dev/null
    done
else
    for t in "${targets[@]}"; do [ "$t" != .logpulse/ ] && rm -rf -- "$t"; done
    rmdir data 2>/dev/null
fi
rm -rf .logpulse
echo "removed: ${targets[*]}"
