"""Startup sweep: remove what crashed runs of THIS harness left behind.

Only objects named with the harness prefix (rwe2e-<pid hex>-<n hex>) whose creating
process is gone are touched: systemd-nspawn, prometheus and routewarden processes
started for such names (ended by PID: the container's PID 1 first, which ends its
PID namespace; an agent carries its node's name in --node-name), network
namespaces, host veths, rootfs copies, nspawn propagation directories, Prometheus
data and agent log directories. Objects of a run still alive are kept.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
from pathlib import Path

import netns
import rootfs
from common import PREFIX, owner_alive, wait_pid_exit

NAME_RE = re.compile(rf"\b({PREFIX}-[0-9a-f]+-[0-9a-f]+)")


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def _ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def leftover_processes() -> list[tuple[int, str, str]]:
    """(pid, program, name) of nspawn/prometheus/routewarden processes of dead harness runs
    (an agent names its node with --node-name)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        argv = _cmdline(int(entry))
        prog = os.path.basename(argv[0]) if argv else ""
        if prog not in ("systemd-nspawn", "prometheus", "routewarden"):
            continue
        m = NAME_RE.search(" ".join(argv))
        if m and not owner_alive(m.group(1)):
            found.append((int(entry), prog, m.group(1)))
    return found


def kill_leftovers() -> list[str]:
    """SIGKILL leftover processes by PID (an nspawn's container PID 1 first)."""
    done = []
    for pid, prog, name in leftover_processes():
        if prog == "systemd-nspawn":
            for child in _children_of(pid):
                _kill(child)
        _kill(pid)
        wait_pid_exit(pid, 10)
        done.append(f"process {pid} ({prog} of {name})")
    return done


def _children_of(pid: int) -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit() and _ppid(int(e)) == pid]


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def remove_dirs() -> list[str]:
    """Prometheus data dirs in /tmp and nspawn propagation dirs of dead runs."""
    removed = []
    candidates = list(Path("/tmp").glob(f"{PREFIX}-*")) + list(Path("/run/systemd/nspawn/propagate").glob(f"{PREFIX}-*"))
    for d in candidates:
        m = NAME_RE.match(d.name)
        if m and not owner_alive(m.group(1)):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(str(d))
    return removed


def sweep() -> list[str]:
    """Everything above, in a safe order; returns a description of what was removed."""
    return kill_leftovers() + rootfs.sweep_copies() + netns.sweep_netns_and_links() + remove_dirs()


if __name__ == "__main__":
    for line in sweep():
        print("removed", line)
