#!/usr/bin/env bash
# The project's test command (the README's second command; .ci/run calls it).
#
# On a fresh Debian machine it installs what the tests need, then runs the same gates as CI:
#   1. Debian packages: nginx-light (real-peer tests put nginx in front of our code), curl.
#   2. A project-local virtualenv .venv with the Python packages the WSGI tests load
#      (scripts/requirements-test.txt), made with the python3 that pyo3 links against.
#   3. cargo fmt --check, cargo clippy -D warnings, cargo test for the whole workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }

# 1. System packages.
need=()
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then need+=(nginx-light); fi
if ! command -v curl >/dev/null 2>&1; then need+=(curl); fi
if [ ${#need[@]} -gt 0 ]; then
  log "installing Debian packages: ${need[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# 2. Python test environment.
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  python3 -m venv .venv
fi
if ! cmp -s scripts/requirements-test.txt .venv/.requirements-installed 2>/dev/null; then
  log "installing scripts/requirements-test.txt into .venv"
  .venv/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
  cp scripts/requirements-test.txt .venv/.requirements-installed
fi
export FERRULE_TEST_VENV="$PWD/.venv"

# 3. Rust gates.
log "cargo fmt --check"
cargo fmt --all --check
log "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
log "cargo test"
cargo test --workspace
