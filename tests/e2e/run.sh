#!/usr/bin/env bash
# routewarden end-to-end suite: the entry CI calls.
# Installs what the suite needs (idempotent: apt only when a package is missing),
# then runs the tests under one global timeout; exits non-zero on any failure.
#   RWE2E_TIMEOUT  seconds for the whole run (default 900)
#   extra arguments go to pytest (e.g. -k prom, -x)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
timeout_s="${RWE2E_TIMEOUT:-900}"
needs=(systemd systemd-container mmdebstrap prometheus iproute2 util-linux python3 python3-pytest python3-yaml chromium)

if [ "$(id -u)" != 0 ]; then
  echo "tests/e2e/run.sh: must run as root (network namespaces, systemd-nspawn)" >&2
  exit 2
fi

missing=()
for p in "${needs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "tests/e2e/run.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # Keep maintainer scripts from starting daemons on the host (prometheus on :9090).
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && own_policy=1
  fi
  rc=0
  apt-get install -y -q --no-install-recommends "${missing[@]}" || rc=$?
  [ "$own_policy" = 1 ] && rm -f "$policy"
  [ "$rc" = 0 ] || { echo "tests/e2e/run.sh: apt-get install failed ($rc)" >&2; exit "$rc"; }
fi

cd "$here"
export PYTHONDONTWRITEBYTECODE=1
start=$(date +%s)
rc=0
# SIGTERM on timeout: conftest turns it into KeyboardInterrupt so nodes are torn down;
# whatever survives a SIGKILL is removed by the next run's startup sweep.
timeout --signal=TERM --kill-after=60 "$timeout_s" /usr/bin/python3 -m pytest -v "$@" || rc=$?
if [ "$rc" = 124 ]; then
  echo "tests/e2e/run.sh: the suite did not finish within ${timeout_s}s" >&2
fi
echo "tests/e2e/run.sh: exit $rc after $(( $(date +%s) - start ))s"
exit "$rc"
