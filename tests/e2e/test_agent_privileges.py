"""Least privilege: routewarden needs no root and no capability.

The agent runs as UID 65534 with every capability dropped (setpriv), like the
DaemonSet's container (runAsUser 65532, drop ALL), against a booted node, in the
node's network and mount namespaces (a non-root process may not enter
/proc/PID1/root; the DaemonSet sees the same files through hostPath mounts).
Routes (netlink), units and their signals (D-Bus, Subscribe included) and the
MachineConfig must all still be read.
"""

from __future__ import annotations

from pathlib import Path

from agent import NM_UNIT, SEED_ROUTE, Agent, route_complaints, unit_complaints
from nodeops import delete_route, ensure_network, seed_route_fine

NOBODY = 65534


def test_unprivileged_agent_reads_routes_units_and_signals(seed_node, facts):
    with Agent.start(seed_node, port=9811, uid=NOBODY) as a:
        status = Path(f"/proc/{a.pid}/status").read_text()
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        cap_eff = next(line for line in status.splitlines() if line.startswith("CapEff:"))
        assert uid_line.split()[1:] == [str(NOBODY)] * 4, uid_line
        assert int(cap_eff.split()[1], 16) == 0, cap_eff
        seed_route_fine(a, seed_node, "unprivileged: route present, units ok, every source up")
        delete_route(seed_node, SEED_ROUTE)
        a.converge("unprivileged: a netlink event reaches the report",
                   lambda s: route_complaints(s, SEED_ROUTE, present=False))
        seed_node.run("systemctl", "stop", "NetworkManager.service")
        a.converge("unprivileged: a systemd signal reaches the report",
                   lambda s: unit_complaints(s, NM_UNIT, "active", "inactive"))
        seed_node.run("systemctl", "start", "NetworkManager.service")
        ensure_network(seed_node)
        facts["unprivileged_agent"] = {"uid": NOBODY, "CapEff": cap_eff.split()[1], "sources": "all up"}
