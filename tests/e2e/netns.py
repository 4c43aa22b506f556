"""Network namespaces of the harness: create/delete, and sockets opened inside one.

`socket_in(ns, ...)` opens a socket in a named namespace from this process: a
short-lived thread calls setns(2) (allowed for CLONE_NEWNET in a threaded process;
it changes that thread only) and creates the socket, which then stays bound to the
namespace whatever thread uses it. Tests use it to reach 127.0.0.1 of a node (the
agent's and Prometheus' ports) and to read the node's kernel over netlink.
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading
from pathlib import Path
from typing import Optional

from common import HarnessError, owner_alive, run, unique_name, PREFIX

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise HarnessError(f"setns({path}) failed: {os.strerror(err)}")
    finally:
        os.close(fd)


def socket_in(netns: str, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM,
              proto: int = 0) -> socket.socket:
    """A new socket created inside network namespace `netns` (a name under /run/netns)."""
    result: dict = {}

    def body() -> None:
        try:
            _setns(NETNS_DIR / netns)
            result["sock"] = socket.socket(family, type, proto)
        except BaseException as e:  # handed to the caller's thread
            result["error"] = e

    t = threading.Thread(target=body, name=f"setns-{netns}")
    t.start()
    t.join()
    if "error" in result:
        raise result["error"]
    return result["sock"]


def connect_in(netns: str, host: str, port: int, timeout: float = 5.0) -> socket.socket:
    """A TCP connection to host:port made from inside `netns`."""
    s = socket_in(netns, socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
    except BaseException:
        s.close()
        raise
    return s


class NetNS:
    """A named network namespace with lo up; deleted by `delete()` or on context exit."""

    def __init__(self, name: Optional[str] = None):
        self.name = name or unique_name()
        run(["ip", "netns", "add", self.name])
        try:
            run(["ip", "-n", self.name, "link", "set", "lo", "up"])
        except BaseException:
            self.delete()
            raise

    @property
    def path(self) -> Path:
        """/run/netns/NAME, for --network-namespace-path and setns."""
        return NETNS_DIR / self.name

    def exec_argv(self, argv) -> list[str]:
        """`argv` prefixed to run in this namespace (ip netns exec execs in place: same PID)."""
        return ["ip", "netns", "exec", self.name, *[str(a) for a in argv]]

    def delete(self) -> None:
        """Delete the namespace (its veth ends go with it); no error if already gone."""
        if (NETNS_DIR / self.name).exists():
            run(["ip", "netns", "del", self.name], check=False)

    def __enter__(self) -> "NetNS":
        return self

    def __exit__(self, *exc) -> None:
        self.delete()


def sweep_netns_and_links() -> list[str]:
    """Delete namespaces and host links named by this harness whose owner is gone."""
    removed = []
    for p in sorted(NETNS_DIR.glob(f"{PREFIX}-*")) if NETNS_DIR.exists() else []:
        if not owner_alive(p.name):
            run(["ip", "netns", "del", p.name], check=False)
            removed.append(f"netns {p.name}")
    for link in sorted(os.listdir("/sys/class/net")):
        if link.startswith(PREFIX + "-") and not owner_alive(link):
            run(["ip", "link", "del", link], check=False)
            removed.append(f"link {link}")
    return removed
