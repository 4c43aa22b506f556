"""The harness's own plumbing: names, the leftover sweep, the rtnetlink address parser."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
from pathlib import Path

import ifaddr
import sweep
from agent import NODE_BINARY
from common import PREFIX, owner_alive, owner_pid, run, unique_name
from netns import NetNS


def dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_unique_names_fit_an_interface_and_encode_the_owner():
    a, b = unique_name(), unique_name()
    assert a != b and len(a) <= 15 and a.startswith(PREFIX + "-")
    assert owner_pid(a) == os.getpid() and owner_alive(a)
    assert owner_pid("eth0") is None


def test_sweep_removes_only_leftovers_of_dead_runs():
    pid = dead_pid()
    leftover, peer = f"{PREFIX}-{pid:x}-0", f"{PREFIX}-{pid:x}-1"
    run(["ip", "netns", "add", leftover])
    run(["ip", "link", "add", leftover, "type", "veth", "peer", "name", peer])
    live = NetNS()
    try:
        removed = sweep.sweep()
        assert f"netns {leftover}" in removed and f"link {leftover}" in removed
        assert not Path(f"/run/netns/{leftover}").exists()
        assert not Path(f"/sys/class/net/{leftover}").exists()
        assert live.path.exists(), "a live run's namespace must survive the sweep"
    finally:
        live.delete()
        run(["ip", "netns", "del", leftover], check=False)
        run(["ip", "link", "del", leftover], check=False)


def test_parse_newaddr():
    attrs = b""
    for atype, value in ((ifaddr.IFA_LOCAL, socket.inet_aton("172.18.0.2")), (ifaddr.IFA_LABEL, b"ens5\0"),
                         (ifaddr.IFA_CACHEINFO, struct.pack("=IIII", 100, 200, 12345, 12400))):
        rta = struct.pack("=HH", 4 + len(value), atype) + value
        attrs += rta + b"\0" * (-len(rta) % 4)
    payload = struct.pack("=BBBBI", socket.AF_INET, 16, 0, 0, 2) + attrs
    a = ifaddr.parse_newaddr(payload)
    assert (a.address, a.prefixlen, a.label, a.ifindex) == ("172.18.0.2", 16, "ens5", 2)
    assert (a.preferred_lft, a.valid_lft, a.created_monotonic_usec, a.updated_monotonic_usec) == (100, 200, 123_450_000, 124_000_000)


def test_address_dump_in_a_namespace_matches_ip(facts):
    with NetNS() as ns:
        before = ifaddr.monotonic_usec()
        run(["ip", "-n", ns.name, "addr", "add", "10.9.8.7/24", "dev", "lo"])
        after = ifaddr.monotonic_usec()
        got = [a for a in ifaddr.dump_addrs(ns.name) if a.address == "10.9.8.7"]
        assert len(got) == 1 and got[0].prefixlen == 24 and got[0].label == "lo"
        # cstamp counts jiffies since boot in 1/100 s: the CLOCK_MONOTONIC origin up to a
        # machine-specific skew (about -0.24 s on this project's VMs), far below 2 s.
        assert before - 2_000_000 <= got[0].created_monotonic_usec <= after + 2_000_000, (before, got[0], after)
        facts["cstamp_minus_monotonic_usec_on_addr_add"] = got[0].created_monotonic_usec - (before + after) // 2


def test_sweep_ends_agents_of_dead_runs():
    """An agent names its node with --node-name: one left by a dead run is ended (run from
    the host, or as the unprivileged copy inside a node), a live run's is kept."""
    pid = dead_pid()
    dead, dead_copy, live = f"{PREFIX}-{pid:x}-0", f"{PREFIX}-{pid:x}-1", unique_name()
    # Stand-ins with the agents' argv[0] and arguments.
    procs = {name: subprocess.Popen([argv0, "-c", "import time; time.sleep(60)", "serve", "--node-name", name],
                                    executable=sys.executable, stdin=subprocess.DEVNULL)
             for name, argv0 in ((dead, "routewarden"), (dead_copy, NODE_BINARY), (live, "routewarden"))}
    try:
        removed = sweep.kill_leftovers()
        for name in (dead, dead_copy):
            assert any(f"routewarden of {name}" in r for r in removed), removed
            assert procs[name].wait(timeout=10) == -9
        assert procs[live].poll() is None, "a live run's agent must survive the sweep"
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)
