#!/usr/bin/python3
"""Benchmark (not a test): the delay from `ip route del` to the change in /metrics.

Builds a namespace with N expected routes (a MachineConfig whose oneshot unit adds
them with `ip route add`), optionally a background table of M other routes, starts
`routewarden serve` inside it, then deletes the expected routes one at a time
through a long-running `ip -batch -` and polls /metrics over a keep-alive
connection until the route's series reads 0. Prints p50/p99/max.

    sudo tests/bench/event_latency.py [--routes 100] [--table 0] [--binary PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))
from netns import NetNS, connect_in  # noqa: E402

REPO = Path(__file__).resolve().parent.parent.parent


def machineconfig(n: int) -> dict:
    execs = "".join(f"ExecStart=/usr/sbin/ip route add 10.200.{i}.0/24 via 172.18.0.1 dev ens5\n" for i in range(n))
    unit = f"[Service]\nType=oneshot\n{execs}[Install]\nWantedBy=multi-user.target\n"
    return {"kind": "MachineConfig", "metadata": {"name": "bench"},
            "spec": {"config": {"ignition": {"version": "3.2.0"},
                                "systemd": {"units": [{"name": "bench-routes.service", "enabled": True, "contents": unit}]}}}}


class Scraper:
    """GET /metrics over one keep-alive connection made inside the namespace."""

    def __init__(self, ns: str, port: int):
        self.sock = connect_in(ns, "127.0.0.1", port)
        self.buf = b""

    def get(self, path: str = "/metrics") -> str:
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(65536)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        while len(self.buf) < length:
            self.buf += self.sock.recv(65536)
        body, self.buf = self.buf[:length], self.buf[length:]
        return body.decode()


def present(body: str, dest: str) -> str | None:
    key = f'destination="{dest}"'
    for line in body.splitlines():
        if line.startswith("routewarden_route_present{") and key in line:
            return line.rsplit(" ", 1)[1]
    return None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--routes", type=int, default=100)
    ap.add_argument("--table", type=int, default=0, help="other routes in the table")
    ap.add_argument("--binary", default=str(REPO / "target/release/routewarden"))
    args = ap.parse_args()
    ns = NetNS()
    agent = None
    try:
        ip = lambda *a: subprocess.run(["ip", "-n", ns.name, *a], check=True)  # noqa: E731
        ip("link", "add", "ens5", "type", "veth", "peer", "name", "gw0")
        for dev in ("ens5", "gw0"):
            ip("link", "set", dev, "up")
        ip("addr", "add", "172.18.0.2/16", "dev", "ens5")
        with tempfile.TemporaryDirectory() as tmp:
            batch = Path(tmp) / "batch"
            lines = [f"route add 10.200.{i}.0/24 via 172.18.0.1 dev ens5" for i in range(args.routes)]
            lines += [f"route add 10.{64 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}/32 via 172.18.0.1 dev ens5" for i in range(args.table)]
            batch.write_text("\n".join(lines) + "\n")
            ip("-batch", str(batch))
            mc = Path(tmp) / "currentconfig"
            mc.write_text(json.dumps(machineconfig(args.routes)))
            port = 19900
            agent = subprocess.Popen(["ip", "netns", "exec", ns.name, args.binary, "serve", "--no-units",
                                      "--machineconfig", str(mc), "--listen", f"127.0.0.1:{port}"],
                                     stderr=subprocess.DEVNULL)
            deadline = time.time() + 60
            scraper = None
            while scraper is None:
                try:
                    s = Scraper(ns.name, port)
                    if present(s.get(), "10.200.0.0/24") == "1":
                        scraper = s
                except OSError:
                    pass
                if time.time() > deadline:
                    raise SystemExit("agent not ready in 60 s")
                time.sleep(0.05)
            deleter = subprocess.Popen(["ip", "-n", ns.name, "-batch", "-"], stdin=subprocess.PIPE, text=True)
            delays = []
            scrape_times = []
            for i in range(args.routes):
                dest = f"10.200.{i}.0/24"
                t0 = time.perf_counter()
                deleter.stdin.write(f"route del {dest}\n")
                deleter.stdin.flush()
                while True:
                    s0 = time.perf_counter()
                    body = scraper.get()
                    scrape_times.append(time.perf_counter() - s0)
                    if present(body, dest) == "0":
                        break
                    if time.perf_counter() - t0 > 10:
                        raise SystemExit(f"{dest}: no change in /metrics after 10 s")
                delays.append(time.perf_counter() - t0)
            deleter.stdin.close()
            deleter.wait()
    finally:
        if agent is not None:
            agent.terminate()
            agent.wait()
        ns.delete()
    ms = sorted(d * 1000 for d in delays)
    q = lambda p: ms[min(len(ms) - 1, int(round(p * (len(ms) - 1))))]  # noqa: E731
    print(f"ip route del -> /metrics, {len(ms)} deletions, {args.routes} expected routes, {args.table} other routes")
    print(f"  p50 {q(0.5):.2f} ms   p99 {q(0.99):.2f} ms   max {ms[-1]:.2f} ms   mean {statistics.mean(ms):.2f} ms")
    sc = sorted(t * 1000 for t in scrape_times)
    print(f"  one scrape (request + render + read): median {statistics.median(sc):.3f} ms over {len(sc)} scrapes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
