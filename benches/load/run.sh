#!/usr/bin/env bash
# Load harness: runs ferrule and its peers side by side on loopback, one worker each, and
# prints requests/s, p99 latency and the ratio to ferrule for each scenario.
#
#   bash benches/load/run.sh [scenario ...]      (default: every scenario that can run)
#
# Installs what it needs: Debian's nginx-light, wrk and libev-dev (bjoern builds against
# libev), and the Python peers into target/load-venv. Builds ferrule in release mode.
# Every server listens on 127.0.0.1 or a unix socket in a temp dir and is stopped by pid.
set -euo pipefail
cd "$(dirname "$0")/../.."

need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
{ command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; } || need+=(nginx-light)
dpkg -s libev-dev >/dev/null 2>&1 || need+=(libev-dev)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

venv=target/load-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! cmp -s benches/load/requirements.txt "$venv/.requirements-installed" 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r benches/load/requirements.txt
  cp benches/load/requirements.txt "$venv/.requirements-installed"
fi

if cargo metadata --no-deps --format-version 1 2>/dev/null | grep -q '"name":"ferrule"'; then
  cargo build --release -p ferrule --bins 2>&1 | tail -1 || true
fi

exec "$venv/bin/python" benches/load/harness.py --venv "$venv" "$@"
