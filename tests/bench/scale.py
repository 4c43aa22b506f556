#!/usr/bin/python3
"""Benchmark (not a test): routewarden at 1k / 100k / 1M routes, side by side with
`ip route show` and node_exporter's route collector, in one run.

For each table size it builds the table in a fresh namespace (`ip -batch`), then
alternates `ip route show` and `routewarden check` RUNS times each and reports
their median times and largest peak RSS (`/usr/bin/time -v`); a failing command
(`check` exits 0 without drift, 1 with it, 2 when it could not read) stops the run.
When the Debian package is installed it then scrapes one node_exporter (route
collector only) RUNS times and reports the median scrape time, its VmHWM and the
response size. For the daemon (one `serve` per size) it reports the RSS after a
periodic resync, the resync duration, the delay from `ip route del` to /metrics
(tests/bench/event_latency.py's functions; median and max over the EXPECTED = 10
expected routes, deleted one by one), the CPU used while idle, and the time to
render /metrics with 1,000 expected routes. It prints one Markdown table and,
with --write, puts it in docs/performance.md with the machine it ran on (keeping
the `## ` sections after the table, written by hand).

    sudo tests/bench/scale.py [--sizes 1000,100000,1000000] [--runs 5] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE.parent / "e2e"))
sys.path.insert(0, str(HERE))
from netns import NetNS, connect_in  # noqa: E402
from event_latency import (add_routes, machineconfig, setup_namespace, start_agent, stop,  # noqa: E402
                           table_dests, time_deletions, wait_ready)

EXPECTED = 10
EXPECTED_DESTS = [f"10.200.0.{i}/32" for i in range(EXPECTED)]
RESYNC_INTERVAL_S = 5


def timed(argv: list[str], ok: tuple[int, ...]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one command, its output discarded; exits
    unless the command's status is in `ok`."""
    with tempfile.NamedTemporaryFile("r") as report, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        rc = subprocess.run(["/usr/bin/time", "-v", "-o", report.name, *argv],
                            stdout=subprocess.DEVNULL, stderr=err, check=False).returncode
        wall = time.perf_counter() - t0
        if rc not in ok:
            err.seek(0)
            raise SystemExit(f"FAILED: {' '.join(argv)} exited with status {rc} (expected {', '.join(map(str, ok))}):\n"
                             f"{err.read()[-2000:]}")
        rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", report.read()).group(1))
    return wall, rss


class Table:
    def __init__(self, size: int, binary: str, tmp: Path):
        self.ns = NetNS()
        self.size = size
        self.binary = binary
        try:
            setup_namespace(self.ns)
            self.build_s = add_routes(self.ns, table_dests(size) + EXPECTED_DESTS, tmp)
        except BaseException:
            self.ns.delete()
            raise
        self.mc = tmp / f"mc-{size}.json"
        self.mc.write_text(json.dumps(machineconfig(EXPECTED_DESTS)))

    def exec(self, *argv: str) -> list[str]:
        return self.ns.exec_argv(argv)

    def ip_show(self) -> tuple[float, int]:
        return timed(self.exec("ip", "route", "show", "table", "all"), ok=(0,))

    def check(self) -> tuple[float, int]:
        # Every expected route is in the table: anything but 0 (no drift) is a broken run.
        return timed(self.exec(self.binary, "check", "--no-units", "--no-networkmanager", "--machineconfig", str(self.mc)), ok=(0,))

    def delete(self) -> None:
        self.ns.delete()


class NodeExporterFailed(Exception):
    pass


def node_exporter_scrapes(t: Table, port: int, runs: int) -> dict | None:
    """Median scrape time, VmHWM and response bytes of one node_exporter with only
    the route collector, scraped `runs` times; None when it is not installed."""
    exe = shutil.which("prometheus-node-exporter")
    if not exe:
        return None
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(t.exec(exe, "--collector.disable-defaults", "--collector.network_route",
                                       f"--web.listen-address=127.0.0.1:{port}"),
                                stdout=subprocess.DEVNULL, stderr=err)

        def failed(what: str) -> NodeExporterFailed:
            err.seek(0)
            return NodeExporterFailed(f"{what}; its stderr ends:\n{err.read()[-2000:]}")

        try:
            deadline = time.time() + 20
            while True:
                try:
                    connect_in(t.ns.name, "127.0.0.1", port).close()
                    break
                except OSError:
                    if proc.poll() is not None:
                        raise failed(f"failed to start: exited with status {proc.returncode}")
                    if time.time() > deadline:
                        raise failed(f"failed to start: not listening on 127.0.0.1:{port} after 20 s")
                    time.sleep(0.1)
            times, size = [], 0
            for _ in range(runs):
                s = connect_in(t.ns.name, "127.0.0.1", port, timeout=120)
                try:
                    t0 = time.perf_counter()
                    s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
                    chunks = []
                    while chunk := s.recv(1 << 20):
                        chunks.append(chunk)
                    times.append(time.perf_counter() - t0)
                except OSError as e:
                    raise failed(f"scrape failed: {e}")
                finally:
                    s.close()
                response = b"".join(chunks)
                status = response.split(b"\r\n", 1)[0]
                if status.split()[1:2] != [b"200"]:
                    raise failed(f"scrape failed: {status.decode(errors='replace')!r}")
                if b"\nnode_network_route_info{" not in response:
                    raise failed("scrape failed: no node_network_route_info series")
                size = len(response)
            return {"s": statistics.median(times), "rss": peak_rss(proc.pid), "bytes": size}
        finally:
            stop(proc)


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def resyncs(body: str) -> float:
    m = re.search(r'routewarden_resyncs_total\{cause="periodic"\} (\S+)', body)
    return float(m.group(1)) if m else 0.0


def last_resync_duration(body: str) -> float | None:
    m = re.search(r"^routewarden_last_resync_duration_seconds (\S+)$", body, re.M)
    return float(m.group(1)) if m else None


def next_resync(scraper, agent: subprocess.Popen, after: float, timeout: float, what: str) -> str:
    """The /metrics body once the periodic resync count exceeds `after`."""
    deadline = time.time() + timeout
    while resyncs(body := scraper.get()) <= after:
        if agent.poll() is not None:
            raise SystemExit(f"serve exited with status {agent.returncode} while waiting for {what}")
        if time.time() > deadline:
            raise SystemExit(f"no periodic resync within {timeout:.0f} s ({what}; --resync-interval "
                             f"{RESYNC_INTERVAL_S}s; routewarden_resyncs_total{{cause=\"periodic\"}} stayed {after:g})")
        time.sleep(0.01)
    return body


def daemon_figures(t: Table, port: int) -> dict:
    """RSS after a resync, resync duration, event latency, idle CPU: one `serve`."""
    proc = start_agent(t.ns, t.binary, t.mc, port, "--resync-interval", f"{RESYNC_INTERVAL_S}s")
    out = {}
    try:
        scraper = wait_ready(t.ns, port, EXPECTED_DESTS[0], value="1", timeout=120, agent=proc)
        next_resync(scraper, proc, 0, 120, "the first periodic resync")
        out["serve_rss_kib"] = peak_rss(proc.pid)
        delays, _ = time_deletions(t.ns, scraper, EXPECTED_DESTS)
        out["event_ms"] = [d * 1000 for d in delays]
        # Idle: the 3 s that follow the end of a periodic resync (the next one is 5 s
        # away). The counter counts a resync when it starts; its duration is set
        # when it ends.
        body = scraper.get()
        previous = last_resync_duration(body)
        next_resync(scraper, proc, resyncs(body), 60, "the resync after the deletions")
        deadline = time.time() + 60
        while (duration := last_resync_duration(scraper.get())) == previous:
            if time.time() > deadline:
                raise SystemExit("routewarden_last_resync_duration_seconds unchanged 60 s after a resync began")
            time.sleep(0.01)
        out["resync_s"] = duration
        time.sleep(0.3)
        before = cpu_ticks(proc.pid)
        time.sleep(3)
        out["idle_ticks_3s"] = cpu_ticks(proc.pid) - before
    finally:
        stop(proc)
    return out


def render_time(binary: str, tmp: Path) -> float:
    """Median time of one /metrics request with 1,000 expected routes (all missing, so
    every route also has a reason series)."""
    ns = NetNS()
    proc = None
    try:
        dests = [f"10.200.{i // 256}.{i % 256}/32" for i in range(1000)]
        mc = tmp / "mc-1000.json"
        mc.write_text(json.dumps(machineconfig(dests)))
        proc = start_agent(ns, binary, mc, 19811)
        s = wait_ready(ns, 19811, dests[0], value="0", timeout=120, agent=proc)
        times = []
        for _ in range(200):
            t0 = time.perf_counter()
            s.get()
            times.append((time.perf_counter() - t0) * 1000)
        return statistics.median(times)
    finally:
        stop(proc)
        ns.delete()


def machine() -> str:
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    mem = next(int(l.split()[1]) for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal"))
    ipv = subprocess.run(["ip", "-V"], capture_output=True, text=True).stdout.strip()
    return (f"{os.cpu_count()} x {cpu}, {mem // 1024 // 1024} GiB, Linux {platform.release()}, {ipv}, "
            f"{time.strftime('%Y-%m-%d')}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,100000,1000000")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--binary", default=str(REPO / "target/release/routewarden"))
    ap.add_argument("--write", action="store_true", help="write docs/performance.md")
    args = ap.parse_args()
    rows = []
    failures = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for size in [int(s) for s in args.sizes.split(",")]:
            t = Table(size, args.binary, tmp)
            try:
                ip_runs, rw_runs = [], []
                for _ in range(args.runs):
                    ip_runs.append(t.ip_show())
                    rw_runs.append(t.check())
                try:
                    ne = node_exporter_scrapes(t, 19100, args.runs)
                except NodeExporterFailed as e:
                    msg = str(e)
                    print(f"\n*** node_exporter at {size:,} routes: {msg}\n", file=sys.stderr)
                    failures.append(f"node_exporter at {size:,} routes: {msg.split(';', 1)[0]}")
                    ne = {"error": msg.split(":", 1)[0]}
                d = daemon_figures(t, 19810)
            finally:
                t.delete()
            row = {
                "routes": size, "build_s": t.build_s,
                "ip_s": statistics.median(r[0] for r in ip_runs), "ip_rss": max(r[1] for r in ip_runs),
                "rw_s": statistics.median(r[0] for r in rw_runs), "rw_rss": max(r[1] for r in rw_runs),
                "ne": ne, "serve_rss": d["serve_rss_kib"],
                "ev_p50": statistics.median(d["event_ms"]), "ev_max": max(d["event_ms"]),
                "idle": d["idle_ticks_3s"], "resync_s": d["resync_s"],
            }
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
        render_ms = render_time(args.binary, tmp)
    text = report(rows, render_ms, args.runs)
    print(text)
    if args.write:
        (REPO / "docs").mkdir(exist_ok=True)
        path = REPO / "docs/performance.md"
        # Sections written by hand after the table (`## ...`) are kept.
        old = path.read_text() if path.exists() else ""
        kept = old[old.find("\n## "):] if "\n## " in old else ""
        path.write_text(text.rstrip("\n") + "\n" + kept)
    if failures:
        print("\n*** FAILED (shown in the table):\n" + "\n".join(f"***   {f}" for f in failures), file=sys.stderr)
        return 1
    return 0


def ne_cell(ne: dict | None) -> str:
    if ne is None:
        return "not installed"
    if "error" in ne:
        return f"**{ne['error'].upper()}**"
    return f"{ne['s']:.2f} s, {ne['rss'] / 1024:.0f} MiB, {ne['bytes'] / 1e6:.1f} MB"


def report(rows: list[dict], render_ms: float, runs: int) -> str:
    lines = [
        "# Performance",
        "",
        f"Measured by `tests/bench/scale.py` on {machine()}.",
        f"`ip route show` and `routewarden check` (under `ip netns exec`): medians of {runs} alternating runs, "
        f"and the largest peak RSS of those runs (`/usr/bin/time -v`).",
        f"node_exporter (route collector only): median of {runs} scrapes of one process, its peak RSS (VmHWM) "
        f"after them, and the size of one response.",
        f"`serve` (`--resync-interval {RESYNC_INTERVAL_S}s`): one process per size; resync is "
        f"`routewarden_last_resync_duration_seconds` after a periodic resync, RSS its peak (VmHWM) after the first "
        f"periodic resync, event to /metrics the median / max over {EXPECTED} expected routes deleted one by one, "
        f"idle CPU the user+system ticks (1/{os.sysconf('SC_CLK_TCK')} s) in the 3 s after a periodic resync has ended.",
        f"`check` reads every table of both families and keeps the {EXPECTED} expected routes.",
        "",
        "| routes | `ip route show` | `routewarden check` | check / ip | `ip` peak RSS | `check` peak RSS "
        "| node_exporter route scrape (time, RSS, bytes) | `serve` resync | `serve` RSS after resync | event to /metrics p50 / max | idle CPU ticks in 3 s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['routes']:,} | {r['ip_s']:.3f} s | {r['rw_s']:.3f} s | {r['rw_s'] / r['ip_s']:.2f}x "
            f"| {r['ip_rss'] / 1024:.1f} MiB | {r['rw_rss'] / 1024:.1f} MiB | {ne_cell(r['ne'])} | {r['resync_s']:.3f} s | {r['serve_rss'] / 1024:.1f} MiB "
            f"| {r['ev_p50']:.2f} / {r['ev_max']:.2f} ms | {r['idle']} |")
    lines += ["", f"`/metrics` with 1,000 expected routes (each missing, so with a reason series too): "
                  f"{render_ms:.2f} ms per request (median of 200, request and response included).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
