#!/usr/bin/env bash
# Fuzz the whole intent path (bytes -> MachineConfig -> routes) for a bounded time
# with cargo fuzz (libFuzzer), seeded with every fixture and the crashers of past
# runs (tests/fixtures/fuzz-regressions). Fails on a crash, a timeout (hang) or
# memory over the limit. The stable toolchain builds it with RUSTC_BOOTSTRAP=1.
#   FUZZ_SECONDS  how long to run (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet
export RUSTC_BOOTSTRAP=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" tests/fixtures/fuzz-regressions
cp examples/*.yaml tests/fixtures/intent/*.* tests/fixtures/intent/bad/* "$work/corpus/"
cp tests/fixtures/fuzz-regressions/* "$work/corpus/" 2>/dev/null || true
cd fuzz
cargo fuzz build -O intent
rc=0
cargo fuzz run -O intent "$work/corpus" -- -max_total_time="$seconds" -rss_limit_mb=512 -timeout=10 \
  -max_len=262144 -print_final_stats=1 2>&1 | tee "$work/log" | grep -E "^(Done|#[0-9]+[[:space:]]+DONE|stat::|==|SUMMARY|artifact_prefix)" || rc=${PIPESTATUS[0]}
if [ "$rc" != 0 ] || grep -q "^==.*ERROR\|SUMMARY: libFuzzer" "$work/log"; then
  echo "tests/fuzz.sh: the fuzzer found a failure; the input is under fuzz/artifacts/intent/ (add it to tests/fixtures/fuzz-regressions/)" >&2
  tail -40 "$work/log" >&2
  exit 1
fi
