# Sourced by start.sh and run_tests.sh: venv, package, InfluxDB. Idempotent and quiet when done.
# Works on a fresh Debian/Ubuntu clone with only Python >= 3.11; installs Debian's influxdb as root.

_pick_python() {
    for py in python3.13 python3.12 python3.11 python3; do
        if command -v "$py" >/dev/null 2>&1 &&
            "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
            echo "$py"; return 0
        fi
    done
    echo "error: Python >= 3.11 is required (found none on PATH)" >&2
    return 1
}

setup_venv() {  # $1 = pip extras, e.g. "[test]"
    local extras="${1:-}"
    if [ ! -x .venv/bin/python ]; then
        local py; py="$(_pick_python)" || return 1
        echo "creating .venv with $py"
        "$py" -m venv .venv
    fi
    local stamp=".venv/.installed${extras}"
    if [ -z "$extras" ] && [ -f ".venv/.installed[test]" ] && [ ! pyproject.toml -nt ".venv/.installed[test]" ]; then
        return 0  # the test install includes the plain one
    fi
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        echo "installing logpulse${extras} into .venv"
        .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
        .venv/bin/python -m pip install -q -e ".${extras}"
        touch "$stamp"
    fi
}

apt_unavailable() {  # why apt_install cannot work here, on stdout; empty (and status 1) when it can
    if [ -n "${LOGPULSE_NO_APT:-}" ] && [ "$LOGPULSE_NO_APT" != 0 ]; then
        echo "LOGPULSE_NO_APT=$LOGPULSE_NO_APT: installing is turned off"
    elif [ "$(id -u)" != 0 ]; then
        echo "not root (as root: apt-get install -y $*)"
    elif ! command -v apt-get >/dev/null 2>&1; then
        echo "no apt-get on this system (install $* with its package manager)"
    else
        return 1
    fi
}

apt_install() {  # best effort apt-get install as root (one apt-get update per shell); non-zero on failure
    apt_unavailable "$@" >/dev/null && return 1
    if [ -z "${_LOGPULSE_APT_UPDATED:-}" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || true
        _LOGPULSE_APT_UPDATED=1
    fi
    local out
    if ! out="$(DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" 2>&1)"; then
        echo "apt-get install $* failed:" >&2
        printf '%s\n' "$out" | tail -n 5 >&2
        return 1
    fi
}

setup_influxd() {
    if command -v influxd >/dev/null 2>&1 || [ -x /usr/bin/influxd ]; then
        return 0
    fi
    echo "installing Debian's influxdb package"
    if ! apt_install influxdb; then
        echo "error: influxd is missing; install it with: apt-get install -y influxdb (as root)" >&2
        return 1
    fi
    # The package may start a system-wide influxd; logpulse runs its own private one.
    (command -v systemctl >/dev/null 2>&1 && systemctl stop influxdb >/dev/null 2>&1) || true
}
