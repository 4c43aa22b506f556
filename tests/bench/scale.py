#!/usr/bin/python3
"""Benchmark (not a test): routewarden at 1k / 100k / 1M routes, side by side with
`ip route show` and node_exporter's route collector, in one run.

For each table size it builds the table in a fresh namespace (`ip -batch`), then
alternates `ip route show` and `routewarden check` (and a node_exporter scrape
when the Debian package is installed), RUNS times each, and reports medians and
peak RSS (`/usr/bin/time -v`). For the daemon it reports the RSS after a full
resync, the delay from `ip route del` to /metrics (tests/bench/event_latency.py
logic, p50/p99 over 100 deletions), the CPU used while idle, and the time to
render /metrics with 1,000 expected routes. It prints one Markdown table and,
with --write, puts it in docs/performance.md with the machine it ran on.

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
from event_latency import Scraper, present  # noqa: E402

EXPECTED = 10


def route_lines(n: int) -> list[str]:
    return [f"route add 10.{64 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}/32 via 172.18.0.1 dev ens5" for i in range(n)]


def machineconfig(expected: int) -> dict:
    execs = "".join(f"ExecStart=/usr/sbin/ip route add 10.200.{i // 256}.{i % 256}/32 via 172.18.0.1 dev ens5\n"
                    for i in range(expected))
    unit = f"[Service]\nType=oneshot\n{execs}[Install]\nWantedBy=multi-user.target\n"
    return {"kind": "MachineConfig", "metadata": {"name": "bench"},
            "spec": {"config": {"ignition": {"version": "3.2.0"},
                                "systemd": {"units": [{"name": "bench.service", "enabled": True, "contents": unit}]}}}}


def timed(argv: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one command, its output discarded."""
    with tempfile.NamedTemporaryFile("r") as report:
        t0 = time.perf_counter()
        subprocess.run(["/usr/bin/time", "-v", "-o", report.name, *argv],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        wall = time.perf_counter() - t0
        rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", report.read()).group(1))
    return wall, rss


class Table:
    def __init__(self, size: int, binary: str, tmp: Path):
        self.ns = NetNS()
        self.size = size
        self.binary = binary
        ip = lambda *a: subprocess.run(["ip", "-n", self.ns.name, *a], check=True)  # noqa: E731
        ip("link", "add", "ens5", "type", "veth", "peer", "name", "gw0")
        ip("link", "set", "ens5", "up")
        ip("link", "set", "gw0", "up")
        ip("addr", "add", "172.18.0.2/16", "dev", "ens5")
        batch = tmp / f"batch-{size}"
        lines = route_lines(size) + [f"route add 10.200.0.{i}/32 via 172.18.0.1 dev ens5" for i in range(EXPECTED)]
        batch.write_text("\n".join(lines) + "\n")
        t0 = time.perf_counter()
        ip("-batch", str(batch))
        self.build_s = time.perf_counter() - t0
        batch.unlink()
        self.mc = tmp / f"mc-{size}.json"
        self.mc.write_text(json.dumps(machineconfig(EXPECTED)))

    def exec(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns.name, *argv]

    def ip_show(self) -> tuple[float, int]:
        return timed(self.exec("ip", "route", "show", "table", "all"))

    def check(self) -> tuple[float, int]:
        return timed(self.exec(self.binary, "check", "--no-units", "--machineconfig", str(self.mc)))

    def delete(self) -> None:
        self.ns.delete()


def node_exporter_scrape(t: Table, port: int) -> tuple[float, int, int] | None:
    exe = shutil.which("prometheus-node-exporter")
    if not exe:
        return None
    proc = subprocess.Popen(t.exec(exe, "--collector.disable-defaults", "--collector.network_route",
                                   f"--web.listen-address=127.0.0.1:{port}"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 20
        while True:
            try:
                s = connect_in(t.ns.name, "127.0.0.1", port, timeout=120)
                break
            except OSError:
                if time.time() > deadline:
                    return None
                time.sleep(0.1)
        t0 = time.perf_counter()
        s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        size = 0
        while chunk := s.recv(1 << 20):
            size += len(chunk)
        wall = time.perf_counter() - t0
        rss = peak_rss(proc.pid)
        return wall, rss, size
    finally:
        proc.terminate()
        proc.wait()


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def daemon_figures(t: Table, port: int) -> dict:
    """RSS after a resync, event latency p50/p99, idle CPU."""
    proc = subprocess.Popen(t.exec(t.binary, "serve", "--no-units", "--machineconfig", str(t.mc),
                                   "--listen", f"127.0.0.1:{port}", "--resync-interval", "5s"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = {}
    try:
        scraper = wait_scraper(t.ns.name, port, "10.200.0.0/32")
        body = scraper.get()
        deadline = time.time() + 120
        while resyncs(body) < 1:
            if time.time() > deadline:
                raise SystemExit("no periodic resync")
            time.sleep(0.5)
            body = scraper.get()
        out["serve_rss_kib"] = peak_rss(proc.pid)
        deleter = subprocess.Popen(["ip", "-n", t.ns.name, "-batch", "-"], stdin=subprocess.PIPE, text=True)
        delays = []
        for i in range(EXPECTED):
            dest = f"10.200.0.{i}/32"
            t0 = time.perf_counter()
            deleter.stdin.write(f"route del {dest}\n")
            deleter.stdin.flush()
            while present(scraper.get(), dest) != "0":
                if time.perf_counter() - t0 > 10:
                    raise SystemExit(f"{dest} not seen deleted")
            delays.append((time.perf_counter() - t0) * 1000)
        deleter.stdin.close()
        deleter.wait()
        out["event_ms"] = delays
        # Idle: the 3 s that follow a periodic resync (the next one is 5 s away).
        seen = resyncs(scraper.get())
        while resyncs(body := scraper.get()) == seen:
            time.sleep(0.01)
        m = re.search(r"^routewarden_last_resync_duration_seconds (\S+)$", body, re.M)
        out["resync_s"] = float(m.group(1)) if m else float("nan")
        time.sleep(0.3)
        before = cpu_ticks(proc.pid)
        time.sleep(3)
        out["idle_ticks_3s"] = cpu_ticks(proc.pid) - before
    finally:
        proc.terminate()
        proc.wait()
    return out


def resyncs(body: str) -> float:
    m = re.search(r'routewarden_resyncs_total\{cause="periodic"\} (\S+)', body)
    return float(m.group(1)) if m else 0.0


def wait_scraper(ns: str, port: int, dest: str) -> Scraper:
    deadline = time.time() + 120
    while True:
        try:
            s = Scraper(ns, port)
            if present(s.get(), dest) is not None:
                return s
        except OSError:
            pass
        if time.time() > deadline:
            raise SystemExit("agent not ready")
        time.sleep(0.1)


def render_time(binary: str, tmp: Path) -> float:
    """Median time of one /metrics request with 1,000 expected routes (all missing, so
    every route also has a reason series)."""
    ns = NetNS()
    proc = None
    try:
        mc = tmp / "mc-1000.json"
        mc.write_text(json.dumps(machineconfig(1000)))
        proc = subprocess.Popen(["ip", "netns", "exec", ns.name, binary, "serve", "--no-units",
                                 "--machineconfig", str(mc), "--listen", "127.0.0.1:19811"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        s = wait_scraper(ns.name, 19811, "10.200.0.0/32")
        times = []
        for _ in range(200):
            t0 = time.perf_counter()
            s.get()
            times.append((time.perf_counter() - t0) * 1000)
        return statistics.median(times)
    finally:
        if proc:
            proc.terminate()
            proc.wait()
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
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for size in [int(s) for s in args.sizes.split(",")]:
            t = Table(size, args.binary, tmp)
            try:
                ip_runs, rw_runs = [], []
                for _ in range(args.runs):
                    ip_runs.append(t.ip_show())
                    rw_runs.append(t.check())
                ne = node_exporter_scrape(t, 19100)
                d = daemon_figures(t, 19810)
            finally:
                t.delete()
            ev = sorted(d["event_ms"])
            row = {
                "routes": size, "build_s": t.build_s,
                "ip_s": statistics.median(r[0] for r in ip_runs), "ip_rss": max(r[1] for r in ip_runs),
                "rw_s": statistics.median(r[0] for r in rw_runs), "rw_rss": max(r[1] for r in rw_runs),
                "ne": ne, "serve_rss": d["serve_rss_kib"], "ev_p50": ev[len(ev) // 2], "ev_max": ev[-1],
                "idle": d["idle_ticks_3s"], "resync_s": d["resync_s"],
            }
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
        render_ms = render_time(args.binary, tmp)
    text = report(rows, render_ms, args.runs)
    print(text)
    if args.write:
        (REPO / "docs").mkdir(exist_ok=True)
        (REPO / "docs/performance.md").write_text(text)
    return 0


def report(rows: list[dict], render_ms: float, runs: int) -> str:
    lines = [
        "# Performance",
        "",
        f"Measured by `tests/bench/scale.py` on {machine()}.",
        f"Medians of {runs} alternating runs; RSS is the peak (`/usr/bin/time -v`, VmHWM for servers).",
        f"`check` reads every table of both families and keeps the {EXPECTED} expected routes.",
        "",
        "| routes | `ip route show` | `routewarden check` | check / ip | `ip` peak RSS | `check` peak RSS "
        "| node_exporter route scrape (time, RSS, bytes) | `serve` resync | `serve` RSS after resync | event to /metrics p50 / max | idle CPU ticks in 3 s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        ne = r["ne"]
        ne_text = f"{ne[0]:.2f} s, {ne[1] / 1024:.0f} MiB, {ne[2] / 1e6:.1f} MB" if ne else "not installed"
        lines.append(
            f"| {r['routes']:,} | {r['ip_s']:.3f} s | {r['rw_s']:.3f} s | {r['rw_s'] / r['ip_s']:.2f}x "
            f"| {r['ip_rss'] / 1024:.1f} MiB | {r['rw_rss'] / 1024:.1f} MiB | {ne_text} | {r['resync_s']:.3f} s | {r['serve_rss'] / 1024:.1f} MiB "
            f"| {r['ev_p50']:.2f} / {r['ev_max']:.2f} ms | {r['idle']} |")
    lines += ["", f"`/metrics` with 1,000 expected routes (each missing, so with a reason series too): "
                  f"{render_ms:.2f} ms per request (median of 200, request and response included).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
