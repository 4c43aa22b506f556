#!/usr/bin/env bash
# Every test of routewarden, on a fresh Debian 12 machine, as root: installs what
# the tests need (idempotently), then lints and runs the unit, integration,
# deployment and end-to-end suites. CI runs exactly this (.ci/run).
#   RW_SKIP_E2E=1    skip the booted-node suite (tests/e2e)
#   RW_SKIP_IMAGE=1  skip the container image build (tests/deploy/image.sh)
#   RW_SKIP_FUZZ=1   skip the bounded fuzzing run (tests/fuzz.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
step() { printf '\n==> %s (%ss)\n' "$*" "$(( $(date +%s) - started ))"; }

step "packages"
needs=(iproute2 dbus systemd prometheus buildah systemd-container mmdebstrap
       util-linux python3 python3-pytest python3-yaml python3-pip python3-jsonschema time)
missing=()
for pkg in "${needs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Maintainer scripts must not start daemons on the host (prometheus on :9090).
  policy=/usr/sbin/policy-rc.d own_policy=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod 755 "$policy"; own_policy=1; fi
  rc=0
  apt-get install -y -qq --no-install-recommends "${missing[@]}" || rc=$?
  [ "$own_policy" = 1 ] && rm -f "$policy"
  [ "$rc" = 0 ] || exit "$rc"
fi

step "format and lints"
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings

step "unit and integration tests (real kernel, real systemd user manager)"
cargo test --workspace --locked

if [ -z "${RW_SKIP_FUZZ:-}" ]; then
  step "fuzzing the intent path (${FUZZ_SECONDS:-60} s)"
  bash tests/fuzz.sh
fi

step "lint output: SARIF against the SARIF 2.1.0 schema"
cargo build --locked
ROUTEWARDEN_BIN="$PWD/target/debug/routewarden" /usr/bin/python3 -m pytest -q tests/lint

step "deployment: manifests, schemas, alert rule tests"
bash tests/deploy/run.sh

if [ -z "${RW_SKIP_IMAGE:-}" ]; then
  step "container image"
  bash tests/deploy/image.sh
fi

if [ -z "${RW_SKIP_E2E:-}" ]; then
  step "end to end: a booted node (systemd, D-Bus, NetworkManager) and Prometheus"
  cargo build --locked
  ROUTEWARDEN_BIN="$PWD/target/debug/routewarden" bash tests/e2e/run.sh
fi

step "all tests passed"
