#!/usr/bin/python3
"""Benchmark (not a test): the delay from `ip route del` to the change in /metrics.

Builds a namespace with N expected routes (a MachineConfig whose oneshot unit adds
them with `ip route add`), optionally a background table of M other routes, starts
`routewarden serve` inside it, then deletes the expected routes one at a time
through a long-running `ip -batch -` and polls /metrics over a keep-alive
connection until the route's series reads 0. Prints p50/p99/max.

    sudo tests/bench/event_latency.py [--routes 100] [--table 0] [--binary PATH]

The pieces (namespace, `ip -batch`, MachineConfig, agent start, wait until ready,
timed changes) are functions that scale.py, churn.py and rule_latency.py use too.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))
from netns import NetNS, connect_in  # noqa: E402

REPO = Path(__file__).resolve().parent.parent.parent
GATEWAY = "172.18.0.1"
DEVICE = "ens5"


def route_add(dest: str) -> str:
    """One `ip -batch` line adding `dest` via the namespace's gateway."""
    return f"route add {dest} via {GATEWAY} dev {DEVICE}"


def table_dests(n: int) -> list[str]:
    """`n` distinct /32s under 10.64.0.0/10: the background table."""
    return [f"10.{64 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}/32" for i in range(n)]


def machineconfig(dests: list[str]) -> dict:
    """A MachineConfig whose oneshot unit adds each of `dests` via the gateway."""
    execs = "".join(f"ExecStart=/usr/sbin/ip {route_add(d)}\n" for d in dests)
    unit = f"[Service]\nType=oneshot\n{execs}[Install]\nWantedBy=multi-user.target\n"
    return {"kind": "MachineConfig", "metadata": {"name": "bench"},
            "spec": {"config": {"ignition": {"version": "3.2.0"},
                                "systemd": {"units": [{"name": "bench-routes.service", "enabled": True, "contents": unit}]}}}}


def setup_namespace(ns: NetNS) -> None:
    """A veth pair ens5/gw0 (both up) and 172.18.0.2/16 on ens5: the gateway is on-link."""
    ip = lambda *a: subprocess.run(["ip", "-n", ns.name, *a], check=True)  # noqa: E731
    ip("link", "add", DEVICE, "type", "veth", "peer", "name", "gw0")
    for dev in (DEVICE, "gw0"):
        ip("link", "set", dev, "up")
    ip("addr", "add", "172.18.0.2/16", "dev", DEVICE)


def ip_batch(ns: NetNS, lines: list[str], tmp: Path) -> float:
    """Run `lines` with one `ip -batch` file in the namespace; the seconds it took."""
    batch = tmp / f"batch-{ns.name}"
    batch.write_text("".join(line + "\n" for line in lines))
    try:
        t0 = time.perf_counter()
        subprocess.run(["ip", "-n", ns.name, "-batch", str(batch)], check=True)
        return time.perf_counter() - t0
    finally:
        batch.unlink()


def add_routes(ns: NetNS, dests: list[str], tmp: Path) -> float:
    """Add `dests` with one `ip -batch` file; the seconds `ip -batch` took."""
    return ip_batch(ns, [route_add(d) for d in dests], tmp)


UNPRIVILEGED = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]


def start_agent(ns: NetNS, binary: str, mc: Path, port: int, *extra: str,
                unprivileged: bool = False) -> subprocess.Popen:
    """`routewarden serve --no-units --no-networkmanager` inside `ns`, listening on
    127.0.0.1:`port`; as the DaemonSet runs it (UID 65534, no capabilities: its
    netlink receive buffer is then `net.core.rmem_max`) when `unprivileged`."""
    prefix = UNPRIVILEGED if unprivileged else []
    return subprocess.Popen(["ip", "netns", "exec", ns.name, *prefix, binary, "serve", "--no-units",
                             "--no-networkmanager",
                             "--machineconfig", str(mc), "--listen", f"127.0.0.1:{port}", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen | None) -> None:
    if proc is not None:
        proc.terminate()
        proc.wait()


class Scraper:
    """GET /metrics over one keep-alive connection made inside the namespace."""

    def __init__(self, ns: str, port: int):
        self.sock = connect_in(ns, "127.0.0.1", port)
        self.buf = b""

    def _recv(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the agent closed the connection")
        self.buf += chunk

    def get(self, path: str = "/metrics") -> str:
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        while b"\r\n\r\n" not in self.buf:
            self._recv()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status = head.split(b"\r\n", 1)[0]
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        while len(self.buf) < length:
            self._recv()
        body, self.buf = self.buf[:length], self.buf[length:]
        if status.split()[1:2] != [b"200"]:
            raise SystemExit(f"GET {path}: {status.decode(errors='replace')}")
        return body.decode()

    def close(self) -> None:
        self.sock.close()


def sample(body: str, metric: str, label: str) -> str | None:
    """The value of the first `metric` series whose labels hold `label` (`key="value"`)."""
    for line in body.splitlines():
        if line.startswith(metric + "{") and label in line:
            return line.rsplit(" ", 1)[1]
    return None


def present(body: str, dest: str) -> str | None:
    return sample(body, "routewarden_route_present", f'destination="{dest}"')


def wait_ready(ns: NetNS, port: int, dest: str, value: str | None = None, timeout: float = 60,
               agent: subprocess.Popen | None = None) -> Scraper:
    """A Scraper once /metrics has a routewarden_route_present series for `dest`
    (reading `value`, if given); exits if that takes `timeout` s or `agent` exits."""
    def ready(body: str) -> bool:
        v = present(body, dest)
        return v is not None and (value is None or v == value)
    return wait_until(ns, port, ready, timeout, agent)


def wait_until(ns: NetNS, port: int, ready: Callable[[str], bool], timeout: float = 60,
               agent: subprocess.Popen | None = None) -> Scraper:
    """A Scraper once `ready` holds of /metrics; exits if that takes `timeout` s or `agent` exits."""
    deadline = time.time() + timeout
    while True:
        s = None
        try:
            s = Scraper(ns.name, port)
            if ready(s.get()):
                return s
        except OSError:
            pass
        if s is not None:
            s.close()
        if agent is not None and agent.poll() is not None:
            raise SystemExit(f"agent exited with status {agent.returncode} before it was ready")
        if time.time() > deadline:
            raise SystemExit(f"agent not ready in {timeout:.0f} s")
        time.sleep(0.05)


def time_deletions(ns: NetNS, scraper: Scraper, dests: list[str], timeout: float = 10) -> tuple[list[float], list[float]]:
    """Delete `dests` one at a time, each time polling /metrics until its
    route_present reads 0. Returns the delays (s) and the duration of every
    scrape made (s)."""
    changes = [(f"route del {d}", lambda body, d=d: present(body, d) == "0") for d in dests]
    return time_changes(ns, scraper, changes, timeout)


def time_changes(ns: NetNS, scraper: Scraper, changes: list[tuple[str, Callable[[str], bool]]],
                 timeout: float = 10) -> tuple[list[float], list[float]]:
    """Send each `ip -batch` line of `changes` in turn through one `ip -batch -`,
    each time polling /metrics until its check holds. Returns the delays (s) and
    the duration of every scrape made (s)."""
    changer = subprocess.Popen(["ip", "-n", ns.name, "-batch", "-"], stdin=subprocess.PIPE, text=True)
    delays: list[float] = []
    scrape_times: list[float] = []
    try:
        for line, done in changes:
            t0 = time.perf_counter()
            changer.stdin.write(line + "\n")
            changer.stdin.flush()
            while True:
                s0 = time.perf_counter()
                body = scraper.get()
                scrape_times.append(time.perf_counter() - s0)
                if done(body):
                    break
                if time.perf_counter() - t0 > timeout:
                    raise SystemExit(f"{line}: no change in /metrics after {timeout:.0f} s")
            delays.append(time.perf_counter() - t0)
    finally:
        changer.stdin.close()
        changer.wait()
    if changer.returncode != 0:
        raise SystemExit(f"ip -batch - exited with status {changer.returncode}")
    return delays, scrape_times


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--routes", type=int, default=100, help="expected routes, deleted one by one (1-256)")
    ap.add_argument("--table", type=int, default=0, help="other routes in the table")
    ap.add_argument("--binary", default=str(REPO / "target/release/routewarden"))
    args = ap.parse_args()
    if not 1 <= args.routes <= 256:
        ap.error("--routes must be 1-256 (10.200.N.0/24)")
    expected = [f"10.200.{i}.0/24" for i in range(args.routes)]
    ns = NetNS()
    agent = None
    try:
        setup_namespace(ns)
        with tempfile.TemporaryDirectory() as tmpdir:
            tmp = Path(tmpdir)
            add_routes(ns, expected + table_dests(args.table), tmp)
            mc = tmp / "currentconfig"
            mc.write_text(json.dumps(machineconfig(expected)))
            port = 19900
            agent = start_agent(ns, args.binary, mc, port)
            scraper = wait_ready(ns, port, expected[0], value="1", timeout=60, agent=agent)
            delays, scrape_times = time_deletions(ns, scraper, expected)
    finally:
        stop(agent)
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
