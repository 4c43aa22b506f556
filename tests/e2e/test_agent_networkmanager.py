"""NetworkManager as a source of truth, on one booted node, scenarios in file order.

The node boots with the seed's MachineConfig and no automatic "Wired connection"
profiles; ens6 and ens7 are veths added after boot. The module's one agent runs as
UID 65534 with no capability (as the DaemonSet's container does) in the node's
namespaces, and every scenario reads it: a keyfile profile as kubernetes-nmstate
writes it (present; `ip route del`: removed-outside-networkmanager; `nmcli device
reapply`: present), the seed's unit then `nmcli connection up ens5`
(not-in-applied-connection), an autoconnect profile whose device is disconnected
(connection-inactive), `nmcli connection add` while serving (expected, no
restart), an off-link gateway (gateway-unreachable for a unit's `ip route add`
whose failure is ignored; NetworkManager reaches such a gateway itself), `expected` and `check` as the
same user, and NetworkManager stopped and started again (source down, routes
still checked, back). Timings are facts, not assertions.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from agent import NM_UNIT, SEED_ROUTE, SEED_UNIT, Agent, Route, http_get, route_complaints, source_complaints
import mcd
from common import wait_for
from nmprofiles import add_veth, nmstate_keyfile, no_auto_default, write_keyfile
from node import Node
from nodeops import ensure_network, seed_route_fine, since, stop_networkmanager, wait_kernel_route

SEED_MC = Path(__file__).resolve().parents[2] / "examples" / "seed-machineconfig.yaml"
NOBODY = 65534
NMSTATE_ROUTE = Route("10.77.0.0/24", "172.19.0.1", "ens6")
ADDED_ROUTE = Route("10.78.0.0/24", "172.21.0.1", "ens7")
OFF_LINK_ROUTE = Route("10.79.0.0/24", "192.0.2.1", "ens7")
NM_OFF_LINK_ROUTE = Route("10.82.0.0/24", "192.0.2.2", "ens7")
OFF_LINK_UNIT = "off-link-route.service"
NMSTATE_FILE = "/etc/NetworkManager/system-connections/rw-nmstate.nmconnection"


def machineconfig() -> dict:
    """The seed's MachineConfig plus a unit whose `ip route add` through an off-link
    gateway fails, the failure ignored (`-`): the unit succeeds, the route is not there."""
    mc = mcd.load(SEED_MC)
    mc["spec"]["config"]["systemd"]["units"].append({
        "name": OFF_LINK_UNIT, "enabled": True,
        "contents": "[Unit]\nAfter=network-online.target\n[Service]\nType=oneshot\n"
                    f"ExecStart=-/usr/sbin/ip route add {OFF_LINK_ROUTE.destination} via {OFF_LINK_ROUTE.gateway} "
                    f"dev {OFF_LINK_ROUTE.device}\n[Install]\nWantedBy=multi-user.target\n"})
    return mc


@pytest.fixture(scope="module")
def nm_node(base_rootfs, facts):
    """The seed's node (plus OFF_LINK_UNIT) without automatic profiles, plus ens6 and ens7."""
    with Node(machineconfig=machineconfig(), prepare=no_auto_default) as node:
        add_veth(node, "ens6")
        add_veth(node, "ens7")
        facts["nm_node_timings"] = dict(node.timings)
        yield node


@pytest.fixture(scope="module")
def agent(nm_node):
    """The module's agent: UID 65534, no capabilities, in the node's namespaces."""
    with Agent.start(nm_node, port=9812, uid=NOBODY) as a:
        yield a


def declared(s, route: Route, sources: set[str], origin: str = "") -> list[str]:
    """/drift's sources of `route` are of these kinds (one origin holding `origin`), and
    routewarden_route_declared has one series per source of truth."""
    v = s.route(route.destination)
    if v is None:
        return [f"route {route.destination} is not in /drift"]
    out = []
    kinds = {x["kind"] if x["kind"] == "networkmanager" else "machineconfig" for x in v["sources"]}
    if kinds != sources:
        out.append(f"/drift sources {v['sources']}, expected sources of truth {sorted(sources)}")
    if v["source"] != v["sources"][0]:
        out.append(f"/drift source {v['source']} is not the first of sources {v['sources']}")
    if origin and not any(origin in x["origin"] for x in v["sources"]):
        out.append(f"no source of {route.destination} has origin {origin!r}: {v['sources']}")
    series = {dict(ls)["source"]: val for ls, val in s.metrics.series("routewarden_route_declared", **route.labels).items()}
    if series != {src: 1.0 for src in sources}:
        out.append(f"routewarden_route_declared {series}, expected {sorted(sources)}")
    return out


def connection_active(s, connection: str, device: str, active: bool) -> list[str]:
    value = s.metrics.value("routewarden_connection_active", connection=connection, device=device)
    want = 1.0 if active else 0.0
    return [] if value == want else [f"routewarden_connection_active{{{connection},{device}}} = {value}, expected {want}"]


def nm_up(s) -> list[str]:
    return source_complaints(s, machineconfig=True, netlink=True, systemd=True, networkmanager=True)


def nmstate_up(node) -> None:
    """rw-nmstate active on ens6 and its route in the kernel."""
    node.run("nmcli", "--wait", "20", "connection", "up", "rw-nmstate", timeout=30)
    wait_kernel_route(node, NMSTATE_ROUTE, present=True)


def test_unprivileged_agent_sees_networkmanager(nm_node, agent):
    status = Path(f"/proc/{agent.pid}/status").read_text()
    uid = next(line for line in status.splitlines() if line.startswith("Uid:"))
    cap_eff = next(line for line in status.splitlines() if line.startswith("CapEff:"))
    assert uid.split()[1:] == [str(NOBODY)] * 4 and int(cap_eff.split()[1], 16) == 0, f"{uid} {cap_eff}"
    seed_route_fine(agent, nm_node, "every source up, networkmanager too; the seed route present",
                    also=lambda s: nm_up(s) + declared(s, SEED_ROUTE, {"machineconfig", "networkmanager"},
                                                       'connection "ens5"'))


def test_nmstate_profile_route_deleted_then_reapplied(nm_node, agent, facts):
    profile = nmstate_keyfile("rw-nmstate", "ens6", "172.19.0.2/16", [("10.77.0.0/24", "172.19.0.1", 150, 254)])
    write_keyfile(nm_node, "rw-nmstate.nmconnection", profile)
    nmstate_up(nm_node)
    agent.converge("a profile only NetworkManager declares: expected, present, its connection active",
                   lambda s: route_complaints(s, NMSTATE_ROUTE, present=True, codes=set())
                   + declared(s, NMSTATE_ROUTE, {"networkmanager"}, f'connection "rw-nmstate" (')
                   + declared(s, NMSTATE_ROUTE, {"networkmanager"}, NMSTATE_FILE)
                   + connection_active(s, "rw-nmstate", "ens6", True) + nm_up(s))
    t0 = time.monotonic()
    nm_node.run("ip", "route", "del", NMSTATE_ROUTE.destination, "via", NMSTATE_ROUTE.gateway, "dev", "ens6")
    wait_for("/drift to call the deleted route removed-outside-networkmanager",
             lambda: "removed-outside-networkmanager" in (agent.drift_route(NMSTATE_ROUTE.destination) or {})
             .get("reason_codes", []), timeout=10, interval=0.01, diagnose=agent.explain)
    facts["nm_route_deleted_to_reason_seconds"] = since(t0)
    agent.converge("ip route del: missing, removed outside NetworkManager",
                   lambda s: route_complaints(s, NMSTATE_ROUTE, present=False, codes={"removed-outside-networkmanager"},
                                              words=("NetworkManager applied it on ens6 (connection \"rw-nmstate\")",
                                                     "nmcli device reapply ens6"))
                   + connection_active(s, "rw-nmstate", "ens6", True))
    nm_node.run("nmcli", "device", "reapply", "ens6")
    wait_kernel_route(nm_node, NMSTATE_ROUTE, present=True)
    agent.converge("nmcli device reapply: present again",
                   lambda s: route_complaints(s, NMSTATE_ROUTE, present=True, codes=set()))


def test_device_modify_undone_by_connection_up(nm_node, agent):
    seed_route_fine(agent, nm_node, also=nm_up)
    nm_node.run("nmcli", "connection", "up", "ens5")
    wait_kernel_route(nm_node, SEED_ROUTE, present=False)
    agent.converge("nmcli connection up ens5: missing, not in the applied connection (NetworkManager's answer)",
                   lambda s: route_complaints(s, SEED_ROUTE, present=False, codes={"not-in-applied-connection"},
                                              words=('the connection applied to ens5 ("ens5") lacks it',
                                                     "the nmcli device modify that added it was undone"))
                   + declared(s, SEED_ROUTE, {"machineconfig"}) + nm_up(s))


def test_autoconnect_profile_on_a_disconnected_device(nm_node, agent):
    nmstate_up(nm_node)
    nm_node.run("nmcli", "device", "disconnect", "ens6")
    wait_kernel_route(nm_node, NMSTATE_ROUTE, present=False)
    try:
        agent.converge("ens6 disconnected: rw-nmstate's route missing, its connection inactive",
                       lambda s: route_complaints(s, NMSTATE_ROUTE, present=False, codes={"connection-inactive"},
                                                  words=('connection "rw-nmstate" is not active on ens6: '
                                                         "ens6 is disconnected (disconnected by a user or client (39))",))
                       + connection_active(s, "rw-nmstate", "ens6", False))
    finally:
        nmstate_up(nm_node)
    agent.converge("connection up again: present, active",
                   lambda s: route_complaints(s, NMSTATE_ROUTE, present=True, codes=set())
                   + connection_active(s, "rw-nmstate", "ens6", True))


def test_connection_added_while_serving(nm_node, agent, facts):
    pid = agent.pid
    intent_resyncs = agent.metrics().value("routewarden_resyncs_total", cause="intent") or 0
    nm_node.run("nmcli", "connection", "add", "type", "ethernet", "ifname", "ens7", "con-name", "rw-added",
                "ipv4.method", "manual", "ipv4.addresses", "172.21.0.2/16",
                "ipv4.routes", f"{ADDED_ROUTE.destination} {ADDED_ROUTE.gateway}")
    wait_kernel_route(nm_node, ADDED_ROUTE, present=True)
    s = agent.converge("nmcli connection add: the new route expected and present, no restart",
                       lambda s: route_complaints(s, ADDED_ROUTE, present=True, codes=set())
                       + declared(s, ADDED_ROUTE, {"networkmanager"}, 'connection "rw-added" (')
                       + connection_active(s, "rw-added", "ens7", True))
    assert agent.pid == pid and agent.running(), "the agent was restarted\n" + agent.explain()
    facts["nm_added_intent_resyncs"] = (s.metrics.value("routewarden_resyncs_total", cause="intent") or 0) - intent_resyncs


def test_gateway_off_link(nm_node, agent, facts):
    nm_node.run("systemctl", "restart", OFF_LINK_UNIT)
    show = nm_node.systemctl_show(OFF_LINK_UNIT)
    assert show["Result"] == "success", show
    agent.converge("ip route add through 192.0.2.1 on ens7 (172.21.0.0/16), failure ignored: gateway-unreachable",
                   lambda s: route_complaints(s, OFF_LINK_ROUTE, present=False, codes={"gateway-unreachable"},
                                              words=("gateway 192.0.2.1 is on no subnet of ens7 (172.21.0.0/16)",)),
                   units=(SEED_UNIT, NM_UNIT, OFF_LINK_UNIT))
    nm_node.run("nmcli", "connection", "modify", "rw-added", "+ipv4.routes",
                f"{NM_OFF_LINK_ROUTE.destination} {NM_OFF_LINK_ROUTE.gateway}")
    nm_node.run("nmcli", "device", "reapply", "ens7")
    wait_kernel_route(nm_node, NM_OFF_LINK_ROUTE, present=True)
    host = [r for r in nm_node.ip_routes() if r.get("dst") == NM_OFF_LINK_ROUTE.gateway]
    facts["nm_adds_route_to_off_link_gateway"] = host
    agent.converge("the same through NetworkManager: it adds a route to the gateway, the route is present",
                   lambda s: route_complaints(s, NM_OFF_LINK_ROUTE, present=True, codes=set())
                   + route_complaints(s, ADDED_ROUTE, present=True, codes=set()))


def as_nobody(node, *args) -> dict:
    """The agent's binary (copied into the node) run as UID 65534 without capabilities, JSON out."""
    cp = node.run("setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--inh-caps=-all",
                  "--bounding-set=-all", "/usr/local/bin/routewarden", *args, "--host-root", "/",
                  "--node-name", node.name, "--format", "json", check=False)
    assert cp.returncode in (0, 1), f"routewarden {args}: exit {cp.returncode}\n{cp.stderr}"
    return json.loads(cp.stdout)


def test_expected_and_check_read_networkmanager(nm_node, agent):
    nm_node.run("nmcli", "connection", "add", "type", "ethernet", "ifname", "ens6", "con-name", "rw-manual",
                "connection.autoconnect", "no", "ipv4.method", "manual", "ipv4.addresses", "172.19.0.3/16",
                "ipv4.routes", "10.80.0.0/24 172.19.0.1")
    write_keyfile(nm_node, "rw-absent.nmconnection",
                  nmstate_keyfile("rw-absent", "ens9", "172.22.0.2/16", [("10.81.0.0/24", "172.22.0.1", 150, 254)]))
    expected = as_nobody(nm_node, "expected")
    why = {n["connection"].split('"')[1]: n["why"] for n in expected["not_expected"]}
    assert why.get("rw-manual") == "autoconnect is off: its routes are there only while it is activated by hand", why
    assert why.get("rw-absent") == "it is bound to ens9, which does not exist", why
    routes = {r["destination"]: r for r in expected["routes"]}
    assert {NMSTATE_ROUTE.destination, ADDED_ROUTE.destination, SEED_ROUTE.destination} <= set(routes), routes
    assert routes[NMSTATE_ROUTE.destination]["sources"][0]["kind"] == "networkmanager", routes[NMSTATE_ROUTE.destination]
    check = as_nobody(nm_node, "check", "--dbus-address", "unix:path=/run/dbus/system_bus_socket")
    assert check["sources"]["networkmanager"] == "up", check["sources"]
    verdicts = {(c["connection"], c["device"]): c["active"] for c in check["connections"]}
    assert verdicts.get(("rw-nmstate", "ens6")) is True and verdicts.get(("rw-added", "ens7")) is True, verdicts
    mc_only = as_nobody(nm_node, "expected", "--intent", "machineconfig")
    mc_routes = [r["destination"] for r in mc_only["routes"]]
    assert mc_routes == [SEED_ROUTE.destination, OFF_LINK_ROUTE.destination], mc_only["routes"]
    assert all(x["kind"] != "networkmanager" for r in mc_only["routes"] for x in r["sources"]), mc_only["routes"]


def test_networkmanager_stopped_then_started(nm_node, agent, facts):
    nmstate_up(nm_node)
    agent.converge("before: every source up", lambda s: nm_up(s) + route_complaints(s, NMSTATE_ROUTE, present=True))
    t0 = time.monotonic()
    stop_networkmanager(nm_node)
    try:
        agent.converge("NetworkManager stopped: its source down, its routes still expected and present",
                       lambda s: source_complaints(s, machineconfig=True, netlink=True, systemd=True,
                                                   networkmanager=False)
                       + route_complaints(s, NMSTATE_ROUTE, present=True, codes=set())
                       + route_complaints(s, ADDED_ROUTE, present=True, codes=set()))
        facts["nm_stopped_to_source_down_seconds"] = since(t0)
        nm_node.run("ip", "route", "del", NMSTATE_ROUTE.destination, "via", NMSTATE_ROUTE.gateway, "dev", "ens6")
        agent.converge("a route deleted while NetworkManager is stopped: missing, networkmanager-inactive",
                       lambda s: route_complaints(s, NMSTATE_ROUTE, present=False, codes={"networkmanager-inactive"})
                       + source_complaints(s, networkmanager=False))
        down = agent.drift()["sources"]["networkmanager"]
        assert down.startswith("down: NetworkManager is not running"), down
    finally:
        t1 = time.monotonic()
        ensure_network(nm_node)
    agent.converge("NetworkManager started: its source up again",
                   lambda s: nm_up(s) + route_complaints(s, NMSTATE_ROUTE), timeout=30)
    facts["nm_started_to_source_up_seconds"] = since(t1)
    facts["nm_restart_restored_deleted_route"] = NMSTATE_ROUTE.in_kernel(nm_node.ip_routes())


def test_agent_stops_on_sigterm(agent):
    agent.assert_stops_on_sigterm()
