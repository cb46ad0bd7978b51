#!/usr/bin/env bash
# The one test command. On a fresh machine it installs what the tests need (Debian packages only when
# missing, e.g. prometheus for promtool and the real-Prometheus test; cargo-nextest, a Python venv in .venv/ with the pinned official SDKs, npm packages of the
# third-party client tests), then checks formatting and lints, then runs every Rust test and every SDK
# test (the SDK tests are Rust tests that start the servers and run the Python SDK against them).
#
# Usage: scripts/test.sh [extra cargo-nextest arguments, e.g. a test filter]
# Env:   CI=true   tests that need a tool fail when it is missing instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
log() { printf '\n==> %s\n' "$*" >&2; }

# --- Debian packages, only when missing -------------------------------------------------------------
pkgs=()
command -v curl >/dev/null || pkgs+=(curl)
command -v python3 >/dev/null || pkgs+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || pkgs+=(python3-venv)
command -v node >/dev/null || pkgs+=(nodejs)
command -v npm >/dev/null || pkgs+=(npm)
command -v promtool >/dev/null && command -v prometheus >/dev/null || pkgs+=(prometheus)
command -v pkg-config >/dev/null || pkgs+=(pkg-config)
pkg-config --exists openssl 2>/dev/null || pkgs+=(libssl-dev)
command -v redis-server >/dev/null || pkgs+=(redis-server)
if ((${#pkgs[@]})); then
  log "installing Debian packages: ${pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
fi

# --- Rust tools --------------------------------------------------------------------------------------
if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

# --- Python venv with the pinned SDKs ----------------------------------------------------------------
req=tests/requirements.txt
stamp=.venv/.requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "creating .venv with the pinned SDKs ($req)"
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
fi
export LLM_TEST_PYTHON="$ROOT/.venv/bin/python"

# --- npm packages of third-party client tests --------------------------------------------------------
for pj in chaos/tests/node/package.json gateway/tests/node/package.json; do
  [ -f "$pj" ] || continue
  dir=$(dirname "$pj")
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
    log "installing npm packages in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    touch "$dir/node_modules"
  fi
done

# --- Formatting and lints ----------------------------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --quiet -- -D warnings

# --- Tests (the runner's summary is the last thing printed) -------------------------------------------
profile=default
[ "${CI:-}" = "true" ] && profile=ci
log "cargo nextest run --workspace --profile $profile"
exec cargo nextest run --workspace --profile "$profile" "$@"
