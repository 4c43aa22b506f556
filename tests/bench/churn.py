#!/usr/bin/python3
"""Benchmark (not a test): route churn, as a node running BGP sees it.

Churn: a namespace holds a table of N routes (default 100,000) besides the
expected ones; `routewarden serve` and `ip monitor route` listen to the same
namespace while `ip -batch` deletes and re-adds the whole table R times (default
3, so 2*N*R notifications). Printed: the CPU (user + system) each listener spent,
the notifications per second, the agent's resyncs and evaluations during the
churn, its peak RSS, and the delay from deleting an expected route in the middle
of the churn to its change in /metrics (p50/p99/max over the deletions).

Overrun: a table of M routes (default 1,000,000) is flushed and
loaded again while `serve` runs as the DaemonSet runs it (UID 65534, no
capabilities: its receive buffer is `net.core.rmem_max`, so notifications are
lost when they come faster than it reads them): printed are the resyncs (full
re-reads) by cause during the storm, the peak RSS, and whether /metrics is right
when it ends. With a large `net.core.rmem_max` the agent may keep up with the whole
storm; `--overrun-cpus 0.05` runs it again with the agent held to 5% of a CPU (a
cgroup quota, as on a busy node), which forces overruns.

    sudo tests/bench/churn.py [--routes 100000] [--rounds 3] [--table 1000000]
                              [--churn-only | --overrun-only] [--overrun-cpus 0.05]
                              [--binary PATH] [--write]

`--write` adds the figures to docs/performance.md (replacing an earlier churn
section). The pieces come from event_latency.py and scale.py.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))
from event_latency import (REPO, Scraper, add_routes, machineconfig, present, route_add,  # noqa: E402
                           setup_namespace, start_agent, stop, table_dests, wait_ready)
from netns import NetNS  # noqa: E402
from scale import cpu_ticks, machine, peak_rss  # noqa: E402

EXPECTED = [f"192.168.{i}.0/24" for i in range(40)]
PROBED = EXPECTED[:30]
CLK_TCK = 100
PORT = 19812
SECTION = "## Route churn"


def counter(body: str, name: str, label: str = "") -> float:
    """The sum of the series of `name` (whose labels contain `label`)."""
    total = 0.0
    for line in body.splitlines():
        if line.startswith(name) and label in line and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def resyncs_by_cause(body: str) -> dict[str, int]:
    return {m.group(1): int(float(m.group(2)))
            for m in re.finditer(r'routewarden_resyncs_total\{cause="([^"]+)"\} (\S+)', body)}


def metrics(ns: NetNS) -> str:
    """/metrics over a new connection (an idle keep-alive one is closed after 10 s)."""
    scraper = Scraper(ns.name, PORT)
    try:
        return scraper.get()
    finally:
        scraper.close()


def sample_resyncs(ns: NetNS, stop_at: threading.Event, samples: list[tuple[float, int]]) -> None:
    """Every 50 ms: the time and the total of full re-reads."""
    t0 = time.perf_counter()
    while not stop_at.is_set():
        try:
            samples.append((time.perf_counter() - t0, sum(resyncs_by_cause(metrics(ns)).values())))
        except OSError:
            pass
        time.sleep(0.05)


def rmem_max() -> str:
    return Path("/proc/sys/net/core/rmem_max").read_text().strip() + " bytes"


def churn_batch(dests: list[str], rounds: int, path: Path) -> None:
    lines = []
    for _ in range(rounds):
        lines += [f"route del {d}" for d in dests]
        lines += [route_add(d) for d in dests]
    path.write_text("\n".join(lines) + "\n")


def start_on(ns: NetNS, binary: str, table: list[str], tmp: Path, unprivileged: bool = False) -> subprocess.Popen:
    """The namespace with the EXPECTED routes and `table` in the kernel, and the
    agent started in it on PORT (not yet ready)."""
    setup_namespace(ns)
    add_routes(ns, EXPECTED + table, tmp)
    mc = tmp / "mc.json"
    mc.write_text(json.dumps(machineconfig(EXPECTED)))
    return start_agent(ns, binary, mc, PORT, unprivileged=unprivileged)


def probe(ns: NetNS, port: int, stop_at: threading.Event, delays: list[float]) -> None:
    """While the churn runs: delete one expected route, wait for /metrics to say
    so, put it back and wait again; record the first delay."""
    scraper = Scraper(ns.name, port)
    try:
        for dest in PROBED:
            if stop_at.is_set():
                return
            subprocess.run(["ip", "-n", ns.name, "route", "del", dest], check=True)
            t0 = time.perf_counter()  # the route is gone: from here it is the agent's delay
            while present(scraper.get(), dest) != "0":
                if time.perf_counter() - t0 > 30:
                    raise SystemExit(f"{dest}: no change in /metrics after 30 s")
            delays.append(time.perf_counter() - t0)
            subprocess.run(["ip", "-n", ns.name] + route_add(dest).split(), check=True)
            while present(scraper.get(), dest) != "1":
                time.sleep(0.001)
            time.sleep(0.2)
    finally:
        scraper.close()


def churn(binary: str, routes: int, rounds: int, tmp: Path, perf: str | None = None) -> dict:
    ns = NetNS()
    agent = monitor = None
    try:
        table = table_dests(routes)
        agent = start_on(ns, binary, table, tmp)
        scraper = wait_ready(ns, PORT, EXPECTED[0], value="1", timeout=120, agent=agent)
        monitor = subprocess.Popen(["ip", "-n", ns.name, "monitor", "route"], stdout=subprocess.DEVNULL)
        time.sleep(0.5)
        batch = tmp / "churn.batch"
        churn_batch(table, rounds, batch)
        before = scraper.get()
        a0, m0 = cpu_ticks(agent.pid), cpu_ticks(monitor.pid)
        delays: list[float] = []
        done = threading.Event()
        prober = threading.Thread(target=probe, args=(ns, PORT, done, delays))
        profiler = perf and subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "1999", "-g",
                                              "-p", str(agent.pid), "-o", perf], stdout=subprocess.DEVNULL)
        t0 = time.perf_counter()
        churner = subprocess.Popen(["ip", "-n", ns.name, "-batch", str(batch)])
        time.sleep(0.5)
        prober.start()
        churner.wait()
        elapsed = time.perf_counter() - t0
        if profiler:
            time.sleep(1)
            profiler.send_signal(2)
            profiler.wait()
        done.set()
        prober.join()
        time.sleep(1)  # both listeners drain their queues
        a1, m1 = cpu_ticks(agent.pid), cpu_ticks(monitor.pid)
        after = metrics(ns)
        notifications = 2 * routes * rounds
        ok = all(present(after, d) == "1" for d in EXPECTED)
        return {
            "routes": routes, "rounds": rounds, "notifications": notifications, "seconds": elapsed,
            "agent_cpu_s": (a1 - a0) / CLK_TCK, "monitor_cpu_s": (m1 - m0) / CLK_TCK,
            "events": counter(after, "routewarden_route_events_total") - counter(before, "routewarden_route_events_total"),
            "evaluations": counter(after, "routewarden_evaluations_total") - counter(before, "routewarden_evaluations_total"),
            "resyncs": {k: v - resyncs_by_cause(before).get(k, 0) for k, v in resyncs_by_cause(after).items()
                        if v - resyncs_by_cause(before).get(k, 0)},
            "rss_kib": peak_rss(agent.pid), "delays_ms": [d * 1000 for d in delays], "right_after": ok,
        }
    finally:
        stop(monitor)
        stop(agent)
        ns.delete()


class CpuQuota:
    """A cgroup that holds its processes to `cpus` of one CPU (cgroup v2 `cpu.max`,
    else v1 `cpu.cfs_quota_us`), as a busy node holds an agent to the share its
    CPU request buys; removed on exit. `None` cpus: no cgroup."""

    def __init__(self, cpus: float | None):
        self.path: Path | None = None
        if not cpus:
            return
        period = 100_000
        v2 = Path("/sys/fs/cgroup/cgroup.controllers")
        root = Path("/sys/fs/cgroup") if v2.exists() else Path("/sys/fs/cgroup/cpu")
        self.path = root / f"routewarden-bench-{os.getpid()}"
        self.path.mkdir()
        if v2.exists():
            (self.path / "cpu.max").write_text(f"{int(cpus * period)} {period}")
        else:
            (self.path / "cpu.cfs_period_us").write_text(str(period))
            (self.path / "cpu.cfs_quota_us").write_text(str(int(cpus * period)))

    def add(self, pid: int) -> None:
        if self.path:
            (self.path / "cgroup.procs").write_text(str(pid))

    def remove(self) -> None:
        if self.path:
            self.path.rmdir()


def overrun(binary: str, size: int, tmp: Path, cpus: float | None) -> dict:
    ns = NetNS()
    agent = None
    quota = CpuQuota(cpus)
    try:
        table = table_dests(size)
        agent = start_on(ns, binary, table, tmp, unprivileged=True)
        scraper = wait_ready(ns, PORT, EXPECTED[0], value="1", timeout=300, agent=agent)
        quota.add(agent.pid)
        before = resyncs_by_cause(scraper.get())
        stop_sampling = threading.Event()
        samples: list[tuple[float, int]] = []
        sampler = threading.Thread(target=sample_resyncs, args=(ns, stop_sampling, samples))
        sampler.start()
        t0 = time.perf_counter()
        subprocess.run(["ip", "-n", ns.name, "route", "flush", "root", "10.64.0.0/10"], check=True,
                       stdout=subprocess.DEVNULL)
        add_routes(ns, table, tmp)
        storm = time.perf_counter() - t0
        deadline = time.time() + 300
        while True:
            body = metrics(ns)
            if all(present(body, d) == "1" for d in EXPECTED) and "routewarden_evaluations_total" in body:
                break
            if time.time() > deadline:
                raise SystemExit("the state was not right 300 s after the storm")
            time.sleep(0.05)
        time.sleep(2)
        stop_sampling.set()
        sampler.join()
        after = resyncs_by_cause(metrics(ns))
        starts = [t for (t, n), (_, prev) in zip(samples[1:], samples) if n > prev]
        gaps = [b - a for a, b in zip(starts, starts[1:])]
        return {"size": size, "storm_s": storm, "rss_kib": peak_rss(agent.pid), "rcvbuf": rmem_max(),
                "resyncs": {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)},
                "min_gap_s": min(gaps) if gaps else None, "right_after": True, "cpus": cpus,
                "settled_s": time.perf_counter() - t0 - storm - 2}
    finally:
        stop(agent)
        quota.remove()
        ns.delete()


def report(c: dict | None, overruns: list[dict]) -> str:
    lines = [SECTION, "", f"Measured on {machine()} by `tests/bench/churn.py`.", ""]
    if c:
        d = sorted(c["delays_ms"])
        p99 = d[min(len(d) - 1, int(round(0.99 * (len(d) - 1))))] if d else float("nan")
        lines += [
            f"Churn: {c['routes']:,} routes deleted and re-added {c['rounds']} times ({c['notifications']:,} "
            f"notifications in {c['seconds']:.1f} s, {c['notifications'] / c['seconds']:,.0f}/s), the agent and "
            "`ip monitor route` listening to the same namespace.", "",
            "| | CPU (user + system) | per notification |", "| --- | --- | --- |",
            f"| routewarden serve | {c['agent_cpu_s']:.2f} s | {c['agent_cpu_s'] / c['notifications'] * 1e6:.2f} µs |",
            f"| ip monitor route | {c['monitor_cpu_s']:.2f} s | {c['monitor_cpu_s'] / c['notifications'] * 1e6:.2f} µs |",
            "",
            f"- agent/ip monitor CPU: {c['agent_cpu_s'] / max(c['monitor_cpu_s'], 0.01):.2f}",
            f"- notifications counted by the agent: {c['events']:,.0f}; evaluations during the churn: "
            f"{c['evaluations']:,.0f}; full re-reads: {c['resyncs'] or 'none'}",
            f"- peak RSS: {c['rss_kib'] / 1024:.1f} MiB",
            f"- an expected route deleted mid-churn, to /metrics: p50 {statistics.median(d):.1f} ms, "
            f"p99 {p99:.1f} ms, max {max(d):.1f} ms over {len(d)} deletions" if d else "- no deletion timed",
            f"- every expected route right after the churn: {'yes' if c['right_after'] else 'NO'}", "",
        ]
    for o in overruns:
        lines += [
            f"Overrun: a table of {o['size']:,} routes flushed and loaded again while serving, the agent "
            f"unprivileged (receive buffer {o['rcvbuf']}"
            + (f", held to {o['cpus']:g} CPU by a cgroup quota" if o['cpus'] else "") + ") "
            f"({o['storm_s']:.1f} s): full re-reads {o['resyncs'] or 'none'}"
            + (f", never less than {o['min_gap_s']:.2f} s apart" if o['min_gap_s'] is not None else "")
            + f"; peak RSS {o['rss_kib'] / 1024:.1f} MiB; "
            f"state right when it ended: {'yes' if o['right_after'] else 'NO'} "
            f"({o['settled_s']:.1f} s after it).", "",
        ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--routes", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--churn-only", action="store_true")
    ap.add_argument("--overrun-only", action="store_true")
    ap.add_argument("--table", type=int, default=1_000_000)
    ap.add_argument("--binary", default=str(REPO / "target/release/routewarden"))
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--overrun-cpus", type=float, action="append",
                    help="also run the overrun with the agent held to this share of a CPU (cgroup quota); repeatable")
    ap.add_argument("--perf", metavar="FILE", help="record a CPU profile of the agent during the churn (perf record)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        tmp.chmod(0o755)  # the unprivileged agent reads its MachineConfig here
        c = None if args.overrun_only else churn(args.binary, args.routes, args.rounds, tmp, args.perf)
        o = [] if args.churn_only else [overrun(args.binary, args.table, tmp, cpus)
                                        for cpus in [None, *(args.overrun_cpus or [])]]
    text = report(c, o)
    print(text)
    if args.write:
        doc = REPO / "docs/performance.md"
        old = doc.read_text()
        start = old.find(SECTION)
        kept = old if start < 0 else old[:start].rstrip() + "\n"
        doc.write_text(kept.rstrip() + "\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
