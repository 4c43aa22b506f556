"""What the agent scenarios do to a node, each step checked on the node itself.

Every scenario sets up its own preconditions with these (the network up and
NetworkManager running, the seed's unit run again), so a failed scenario does not
decide the next one's outcome.
"""

from __future__ import annotations

import json
import time
from typing import Callable, Optional

from agent import (NM_UNIT, SEED_ROUTE, SEED_UNIT, Route, Snapshot, last_configured_usec, route_complaints,
                   source_complaints, unit_complaints)
from common import HarnessError, wait_for
from ifaddr import monotonic_usec


def ensure_network(node, timeout: float = 30) -> None:
    """ens5 up, NetworkManager running, ens5 connected (re-activated by hand if it does not come back)."""
    node.run("ip", "link", "set", "ens5", "up")
    node.run("systemctl", "start", NM_UNIT)
    try:
        wait_for("ens5 connected", node.ens5_connected, timeout=10, interval=0.3)
        return
    except HarnessError:
        pass
    node.run("nmcli", "--wait", str(int(timeout)), "connection", "up", "ens5", check=False, timeout=timeout + 5)
    wait_for(f"ens5 connected in node {node.name}", node.ens5_connected, timeout=timeout, interval=0.3,
             diagnose=lambda: node.diagnostics(NM_UNIT))


def stop_networkmanager(node) -> None:
    """Stop NetworkManager and wait until systemd reports it inactive."""
    node.run("systemctl", "stop", NM_UNIT)
    node.wait_unit(NM_UNIT, lambda s: s["ActiveState"] == "inactive", "stopped")


def run_seed_unit(node, expect_success: bool = True) -> dict:
    """`systemctl restart` the seed's unit; return its `systemctl show` once it finished as expected.

    The scenarios run the unit more often than systemd's default start limit (5 starts
    in 10 s) allows: `reset-failed` first clears that counter (and a failed state).
    """
    node.run("systemctl", "reset-failed", SEED_UNIT, check=False)
    cp = node.run("systemctl", "restart", SEED_UNIT, check=False)
    show = node.systemctl_show(SEED_UNIT)
    ok = cp.returncode == 0 and show["Result"] == "success" and show["ExecMainExitTimestampMonotonic"] != "0"
    if ok != expect_success:
        raise AssertionError(f"{SEED_UNIT} {'failed' if expect_success else 'succeeded'} "
                             f"(systemctl restart exit {cp.returncode}): {unit_summary(show)}\n"
                             f"{node.diagnostics(SEED_UNIT)}")
    return show


def seed_route_fine(agent, node, what: str = "route present, units ok, every source up",
                    also: Optional[Callable[[Snapshot], list[str]]] = None) -> Snapshot:
    """The network up, the seed's unit run fine, its route in the kernel, and the agent
    agreeing: route present without reasons, the unit and NetworkManager ok, every
    source up (plus whatever `also` complains of). Returns the agent's snapshot."""
    ensure_network(node)
    run_seed_unit(node)
    wait_kernel_route(node, SEED_ROUTE, present=True)
    return agent.converge(what, lambda s: route_complaints(s, SEED_ROUTE, present=True, codes=set())
                          + unit_complaints(s, SEED_UNIT, "succeeded", "ok") + unit_complaints(s, NM_UNIT, "active", "ok")
                          + source_complaints(s, machineconfig=True, netlink=True, systemd=True)
                          + (also(s) if also else []))


def unit_summary(show: dict) -> dict:
    """The properties of a `systemctl show` worth printing."""
    keys = ("ActiveState", "SubState", "Result", "ExecMainCode", "ExecMainStatus",
            "ExecMainExitTimestampMonotonic", "UnitFileState")
    return {k: show.get(k) for k in keys}


def wait_kernel_route(node, route: Route, present: bool, timeout: float = 15) -> list[dict]:
    """Wait until `route` is (not) in the node's main table; return the table."""
    def probe():
        routes = node.ip_routes()
        return {"routes": routes} if route.in_kernel(routes) == present else None
    return wait_for(f"route {route.destination} {'in' if present else 'out of'} the node's main table", probe,
                    timeout=timeout, diagnose=lambda: node.diagnostics(SEED_UNIT))["routes"]


def delete_route(node, route: Route = SEED_ROUTE) -> None:
    """`ip route del` inside the node."""
    node.run("ip", "route", "del", route.destination, "via", route.gateway, "dev", route.device)
    wait_kernel_route(node, route, present=False)


def wait_monotonic_past(usec: int, what: str) -> None:
    """Wait until CLOCK_MONOTONIC (the clock of systemd's and the kernel's stamps) passes `usec`."""
    wait_for(what, lambda: monotonic_usec() > usec, timeout=max(5.0, (usec - monotonic_usec()) / 1e6 + 5),
             interval=0.05)


def seed_route_installed_after_config(node, margin_usec: int = 1_500_000) -> tuple[dict, int]:
    """Run the seed's unit at least `margin_usec` after ens5 was last configured, so its
    exit and the device's configuration are ordered beyond the agent's 1 s clock margin.
    Returns (the unit's show, ens5's last configuration stamp)."""
    configured = last_configured_usec(node)
    if configured is None:
        raise HarnessError(f"ens5 in node {node.name} has no address")
    wait_monotonic_past(configured + margin_usec, "1.5 s after ens5 was configured")
    show = run_seed_unit(node)
    wait_kernel_route(node, SEED_ROUTE, present=True)
    return show, configured


def ip_link(node, ifname: str = "ens5") -> dict:
    """`ip -j link show IFNAME` inside the node."""
    return json.loads(node.run("ip", "-j", "link", "show", ifname).stdout)[0]


def nm_connections(node) -> list[str]:
    """NetworkManager's connection profiles as NAME:FILENAME lines."""
    return node.run("nmcli", "-t", "-f", "NAME,FILENAME", "connection", "show").stdout.splitlines()


def since(t0: float) -> float:
    """Seconds since `t0` (time.monotonic), rounded for facts."""
    return round(time.monotonic() - t0, 3)
