"""The MachineConfig's life on a node: pending reboots, HyperShift's files, none at all.

A fresh node (isolation: these tests roll configs out, reboot the node and remove its
MachineConfig). Each new config adds a route and a new enabled oneshot that adds it
(`ip route add`, after network-online.target), rolled out the MCD's way: units
written, daemon-reload, then currentconfig replaced atomically, no reboot. Until the
unit runs, the route is expected and missing, and the reason is `pending-reboot`
(the config's change time is after the boot of the node's systemd, the unit has not
started since). Then, in file order:

1. the unit started by hand instead of a reboot: present, no `pending-reboot`;
2. a reboot of the node (the container stopped and booted again on the same root
   filesystem; a new agent, as the DaemonSet's pod is new after a reboot): the
   unit runs at boot, the route is present, the config was written before the boot;
3. HyperShift: an empty currentconfig and /etc/mcd-currentconfig.json: the routes
   are read from the latter, the source is up;
4. neither file: the source is `absent` (not down), the intent empty, the agent
   serves, a new agent starts, `check` exits 0.
"""

from __future__ import annotations

import copy

import mcd
from agent import (NM_UNIT, SEED_ROUTE, SEED_UNIT, Agent, Route, check, file_complaints, intent_complaints,
                   route_complaints, source_complaints, unit_complaints)
from conftest import SEED_MC
from nodeops import seed_route_fine, wait_kernel_route

ROUTE_A, UNIT_A = Route("10.71.0.0/16", "172.18.0.1", "ens5"), "rwe2e-route-a.service"
ROUTE_B, UNIT_B = Route("10.72.0.0/16", "172.18.0.1", "ens5"), "rwe2e-route-b.service"
CONFIG_A = "rendered-worker-rwe2e-lifecycle-a"
CONFIG_B = "rendered-worker-rwe2e-lifecycle-b"
CONFIG_HS = "rendered-worker-rwe2e-hypershift"
UNITS = (SEED_UNIT, NM_UNIT, UNIT_A, UNIT_B)


def route_unit(route: Route) -> str:
    """A oneshot that adds `route` once the network is online (retried while it is not), and
    after the seed's unit: its `nmcli device modify` reapplies ens5's connection, which
    drops the routes NetworkManager did not add (seen at boot: a route added just before
    was gone)."""
    return (f"[Unit]\nWants=network-online.target\nAfter=network-online.target {SEED_UNIT}\n"
            "[Service]\nType=oneshot\nRemainAfterExit=yes\nRestart=on-failure\nRestartSec=1\n"
            f"ExecStart=/usr/sbin/ip route add {route.destination} via {route.gateway} dev {route.device}\n"
            "[Install]\nWantedBy=multi-user.target\n")


def config(name: str, *routes: tuple[Route, str]) -> dict:
    """The seed's MachineConfig named `name`, plus one enabled unit per (route, unit)."""
    mc = copy.deepcopy(mcd.load(SEED_MC))
    mc["metadata"]["name"] = name
    units = mc["spec"]["config"]["systemd"]["units"]
    units += [{"name": unit, "enabled": True, "contents": route_unit(route)} for route, unit in routes]
    return mc


def pending(s, route: Route, unit: str) -> list[str]:
    """`route` missing with exactly `pending-reboot`, naming `unit`."""
    return route_complaints(s, route, present=False, codes={"pending-reboot"},
                            words=(f"after this boot; unit {unit} has not run since",))


def present(s, *routes: Route) -> list[str]:
    """Each route present, no reason."""
    return [c for r in routes for c in route_complaints(s, r, present=True, codes=set())]


def test_rebootless_update_then_the_unit_started_by_hand(seed_node, facts):
    with Agent.start(seed_node) as agent:
        seed_route_fine(agent, seed_node)
        seed_node.apply_config(config(CONFIG_A, (ROUTE_A, UNIT_A)))
        s = agent.converge("rolled out without reboot: the new route waits for it (pending-reboot)",
                           lambda s: intent_complaints(s, CONFIG_A, {SEED_ROUTE.destination, ROUTE_A.destination})
                           + pending(s, ROUTE_A, UNIT_A) + unit_complaints(s, UNIT_A, "succeeded", "not-run")
                           + present(s, SEED_ROUTE) + source_complaints(s, machineconfig=True, systemd=True)
                           + file_complaints(s, mcd.CURRENT_CONFIG, written_after_boot=True), units=UNITS)
        facts["pending_reboot_reason"] = s.route(ROUTE_A.destination)["reasons"]
        seed_node.run("systemctl", "start", UNIT_A)
        wait_kernel_route(seed_node, ROUTE_A, present=True)
        agent.converge("the unit started by hand: present, no pending-reboot",
                       lambda s: present(s, ROUTE_A, SEED_ROUTE) + unit_complaints(s, UNIT_A, "succeeded", "ok")
                       + file_complaints(s, mcd.CURRENT_CONFIG, written_after_boot=True), units=UNITS)


def test_update_then_reboot_runs_the_new_unit(seed_node, facts):
    with Agent.start(seed_node) as agent:
        seed_node.apply_config(config(CONFIG_B, (ROUTE_A, UNIT_A), (ROUTE_B, UNIT_B)))
        agent.converge("a second update: the new route waits for the reboot, the first stays present",
                       lambda s: intent_complaints(s, CONFIG_B, {SEED_ROUTE.destination, ROUTE_A.destination,
                                                                 ROUTE_B.destination})
                       + pending(s, ROUTE_B, UNIT_B) + present(s, ROUTE_A)
                       + file_complaints(s, mcd.CURRENT_CONFIG, written_after_boot=True), units=UNITS)
    seed_node.reboot()
    facts["lifecycle_reboot_seconds"] = seed_node.timings["reboot"] + seed_node.timings["reboot_network"]
    for route in (ROUTE_A, ROUTE_B):
        wait_kernel_route(seed_node, route, present=True, timeout=30)
    with Agent.start(seed_node) as agent:
        s = agent.converge("after the reboot: both units ran at boot, both routes present, written before this boot",
                           lambda s: intent_complaints(s, CONFIG_B, {SEED_ROUTE.destination, ROUTE_A.destination,
                                                                     ROUTE_B.destination})
                           + present(s, ROUTE_A, ROUTE_B) + unit_complaints(s, UNIT_B, "succeeded", "ok")
                           + source_complaints(s, machineconfig=True, netlink=True, systemd=True)
                           + file_complaints(s, mcd.CURRENT_CONFIG, written_after_boot=False), units=UNITS)
        codes = {c for r in s.drift["routes"] for c in r["reason_codes"]}
        assert "pending-reboot" not in codes, f"pending-reboot after the reboot: {codes}\n{agent.explain()}"


def test_hypershift_reads_mcd_currentconfig(seed_node):
    # Not seed_route_fine: the seed's unit reapplies ens5's connection, which drops routes A and B.
    with Agent.start(seed_node) as agent:
        mcd.write_hypershift_config(seed_node.root, config(CONFIG_HS, (ROUTE_A, UNIT_A), (ROUTE_B, UNIT_B)))
        assert (seed_node.root / mcd.CURRENT_CONFIG.lstrip("/")).stat().st_size == 0
        agent.converge("an empty currentconfig: the routes read from /etc/mcd-currentconfig.json, source up",
                       lambda s: intent_complaints(s, CONFIG_HS, {SEED_ROUTE.destination, ROUTE_A.destination,
                                                                  ROUTE_B.destination})
                       + present(s, ROUTE_A, ROUTE_B) + source_complaints(s, machineconfig=True)
                       + file_complaints(s, mcd.MCD_CURRENT_CONFIG, written_after_boot=True), units=UNITS)
    rc, report = check(seed_node)
    assert rc in (0, 1), f"check: exit {rc}: {report}"
    assert report["machineconfig_file"]["path"] == mcd.MCD_CURRENT_CONFIG, report
    assert report["sources"]["machineconfig"] == "up", report


def test_no_machineconfig_is_absent_and_the_agent_serves(seed_node):
    # Without a MachineConfig only NetworkManager declares routes (its applied
    # connection still holds the seed unit's `nmcli device modify` route), and
    # the only unit expected is NetworkManager's own.
    def no_intent_check(s):
        from_mc = [r for r in s.drift["routes"]
                   if any(src["kind"] != "networkmanager" for src in r["sources"])]
        units = [u["name"] for u in s.drift["units"] if u["name"] != "NetworkManager.service"]
        expected = s.metrics.value("routewarden_expected_routes")
        if from_mc or units or expected != float(len(s.drift["routes"])):
            return [f"routes from the MachineConfig {from_mc}, units {units}, expected_routes {expected}"]
        return []
    no_intent = ("intent empty", no_intent_check)
    with Agent.start(seed_node) as agent:
        agent.converge("a MachineConfig to start with", lambda s: source_complaints(s, machineconfig=True))
        removed = mcd.remove_node_configs(seed_node.root)
        assert removed == [mcd.CURRENT_CONFIG, mcd.MCD_CURRENT_CONFIG], removed
        agent.converge("no MachineConfig file: source absent, not down; no route or unit of the MachineConfig",
                       lambda s: source_complaints(s, machineconfig="absent", netlink=True, systemd=True)
                       + file_complaints(s, None) + no_intent[1](s), units=())
    with Agent.start(seed_node, port=9812) as agent:
        agent.converge("an agent started on a node without a MachineConfig serves: source absent",
                       lambda s: source_complaints(s, machineconfig="absent", netlink=True, systemd=True)
                       + no_intent[1](s), units=())
        assert agent.running(), agent.explain()
    rc, report = check(seed_node)
    assert rc == 0, f"check without a MachineConfig: exit {rc} (an empty intent has no drift): {report}"
    assert report["sources"]["machineconfig"] == "absent" and report["machineconfig_file"] is None, report


def test_a_plain_kubernetes_node_has_no_machineconfig_and_no_networkmanager(seed_node):
    """Neither source is there, and neither is a fault: both absent (no SourceDown),
    the agent serves, check exits 0. NetworkManager is taken off the node the way
    an uninstall leaves it: stopped, its unit file gone."""
    mcd.remove_node_configs(seed_node.root)
    unit = seed_node.root / "lib/systemd/system/NetworkManager.service"
    aside = seed_node.root / "root/NetworkManager.service.aside"
    seed_node.run("systemctl", "stop", NM_UNIT)
    unit.rename(aside)
    seed_node.run("systemctl", "daemon-reload")
    try:
        assert seed_node.systemctl_show(NM_UNIT)["LoadState"] == "not-found"
        with Agent.start(seed_node, port=9813) as agent:
            s = agent.converge("no NetworkManager on the node: its source absent, not down",
                               lambda s: source_complaints(s, machineconfig="absent", networkmanager="absent",
                                                           netlink=True, systemd=True), units=())
            assert s.metrics.value("routewarden_source_absent", source="networkmanager") == 1.0
            assert "NetworkManager is not installed on this node" in agent.log_path.read_text(), agent.log_tail()
        rc, report = check(seed_node)
        assert rc == 0 and report["sources"]["networkmanager"] == "absent", report
    finally:
        aside.rename(unit)
        seed_node.run("systemctl", "daemon-reload")
        seed_node.run("systemctl", "start", NM_UNIT)
