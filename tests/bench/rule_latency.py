#!/usr/bin/python3
"""Benchmark (not a test): the delay from `ip rule del` to the change in /metrics.

Builds a namespace with N expected rules (a MachineConfig whose oneshot unit adds
them with `ip rule add`), M other rules and optionally a table of other routes,
starts `routewarden serve` inside it with the periodic re-read an hour away, then
deletes the expected rules one at a time through a long-running `ip -batch -` and
polls /metrics over a keep-alive connection until the rule's series reads 0. A
rule notification makes the agent read every rule again (tests/bench/scale.py
covers routes): this shows what that costs as the rule table grows. Prints
p50/p99/max.

    sudo tests/bench/rule_latency.py [--rules 50] [--other-rules 1000] [--table 0] [--binary PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "e2e"))
sys.path.insert(0, str(HERE))
from netns import NetNS  # noqa: E402
from event_latency import (REPO, add_routes, ip_batch, sample, setup_namespace, start_agent, stop,  # noqa: E402
                           table_dests, time_changes, wait_until)


def rule_add(i: int) -> str:
    """One `ip -batch` line adding expected rule `i`: priority 1000+i, from 10.201.i.0/24, table 200."""
    return f"rule add pref {1000 + i} from 10.201.{i}.0/24 table 200"


def machineconfig(n: int) -> dict:
    """A MachineConfig whose oneshot unit adds expected rules 0..n-1."""
    execs = "".join(f"ExecStart=/usr/sbin/ip {rule_add(i)}\n" for i in range(n))
    unit = f"[Service]\nType=oneshot\n{execs}[Install]\nWantedBy=multi-user.target\n"
    return {"kind": "MachineConfig", "metadata": {"name": "bench-rules"},
            "spec": {"config": {"ignition": {"version": "3.2.0"},
                                "systemd": {"units": [{"name": "bench-rules.service", "enabled": True,
                                                       "contents": unit}]}}}}


def rule_present(body: str, i: int) -> str | None:
    return sample(body, "routewarden_rule_present", f'selector="from 10.201.{i}.0/24"')


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", type=int, default=50, help="expected rules, deleted one by one (1-256)")
    ap.add_argument("--other-rules", type=int, default=1000, help="other rules in the kernel")
    ap.add_argument("--table", type=int, default=0, help="other routes in the table")
    ap.add_argument("--binary", default=str(REPO / "target/release/routewarden"))
    args = ap.parse_args()
    if not 1 <= args.rules <= 256:
        ap.error("--rules must be 1-256 (10.201.N.0/24)")
    ns = NetNS()
    agent = None
    try:
        setup_namespace(ns)
        with tempfile.TemporaryDirectory() as tmpdir:
            tmp = Path(tmpdir)
            others = [f"rule add pref {40000 + i} fwmark {i + 1} table 300" for i in range(args.other_rules)]
            ip_batch(ns, [rule_add(i) for i in range(args.rules)] + others, tmp)
            if args.table:
                add_routes(ns, table_dests(args.table), tmp)
            mc = tmp / "currentconfig"
            mc.write_text(json.dumps(machineconfig(args.rules)))
            port = 19901
            agent = start_agent(ns, args.binary, mc, port, "--resync-interval", "1h")
            scraper = wait_until(ns, port, lambda body: rule_present(body, 0) == "1", agent=agent)
            deletions = [(rule_add(i).replace("rule add", "rule del"), lambda body, i=i: rule_present(body, i) == "0")
                         for i in range(args.rules)]
            delays, _ = time_changes(ns, scraper, deletions)
    finally:
        stop(agent)
        ns.delete()
    ms = sorted(d * 1000 for d in delays)
    q = lambda p: ms[min(len(ms) - 1, int(round(p * (len(ms) - 1))))]  # noqa: E731
    print(f"ip rule del -> /metrics, {len(ms)} deletions, {args.rules} expected rules, "
          f"{args.other_rules} other rules, {args.table} other routes")
    print(f"  p50 {q(0.5):.2f} ms   p99 {q(0.99):.2f} ms   max {ms[-1]:.2f} ms   mean {statistics.mean(ms):.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
