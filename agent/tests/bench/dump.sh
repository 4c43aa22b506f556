#!/bin/sh
# Benchmark (not a test): the streaming route dump against `ip route show`.
#
# For each table size (default: 100000 and 1000000 IPv4 host routes in the main
# table, loaded with `ip -batch` into a throwaway namespace), runs each program
# RUNS times inside the namespace under /usr/bin/time and prints the median
# wall time and the median peak RSS side by side:
#   ip route show             main table only (iproute2 asks the kernel to filter)
#   ip route show table all   every table, like the agent
#   dump_routes               agent/examples/dump_routes.rs, 10 wanted keys
# Needs root. Usage: agent/tests/bench/dump.sh [SIZE...]   (env RUNS, default 5)
set -eu
cd "$(dirname "$0")/../.."
runs=${RUNS:-5}
sizes=${*:-100000 1000000}
ns=rw-bench-$$
work=$(mktemp -d)
cleanup() { ip netns del "$ns" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM

cargo build --quiet --release --example dump_routes
bin=$(cargo metadata --format-version 1 --no-deps | sed 's/.*"target_directory":"\([^"]*\)".*/\1/')/release/examples/dump_routes

# Five keys present in every table size, five absent.
keys="254:10.0.0.1/32 254:10.0.1.7/32 254:10.0.200.9/32 254:10.1.0.0/32 254:10.1.134.159/32
      254:10.200.0.0/24 254:192.0.2.0/24 1000:10.0.0.1/32 254:2001:db8::/64 200:0.0.0.0/0"

# median of the numbers on stdin
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# measure NAME COMMAND...: RUNS timed runs in the namespace, prints one row
measure() {
    name=$1; shift
    : > "$work/times"
    i=0
    while [ "$i" -lt "$runs" ]; do
        ip netns exec "$ns" /usr/bin/time -a -o "$work/times" -f "%e %M" "$@" > "$work/out"
        i=$((i + 1))
    done
    secs=$(cut -d' ' -f1 "$work/times" | median)
    rss=$(cut -d' ' -f2 "$work/times" | median)
    printf '%-26s %10s s %10s KiB\n' "$name" "$secs" "$rss"
}

for n in $sizes; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip -n "$ns" link add ens5 type veth peer name gw0
    ip -n "$ns" link set ens5 up
    ip -n "$ns" link set gw0 up
    ip -n "$ns" addr add 172.18.0.2/16 dev ens5
    awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++)
        printf "route add 10.%d.%d.%d/32 via 172.18.0.1 dev ens5\n", int(i / 65536), int(i / 256) % 256, i % 256 }' \
        > "$work/batch"
    start=$(date +%s.%N)
    ip -n "$ns" -batch "$work/batch"
    loaded=$(echo "$(date +%s.%N) - $start" | bc)
    echo "== $n routes (loaded in ${loaded} s), median of $runs runs"
    printf '%-26s %12s %14s\n' program "wall time" "peak RSS"
    measure "ip route show" ip route show
    measure "ip route show table all" ip route show table all
    # shellcheck disable=SC2086
    measure "dump_routes (10 keys)" "$bin" $keys
    tail -n 1 "$work/out"
    ip netns del "$ns"
done
