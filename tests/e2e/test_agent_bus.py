"""routewarden serve while the node's system bus goes away and comes back.

A fresh node (isolation: NetworkManager does not survive its bus going away). The
agent's D-Bus connection to the node's bus breaks when dbus-daemon stops; the
systemd source must go down on /metrics and /drift and come back by itself,
while routes stay watched over netlink the whole time.
"""

from __future__ import annotations

import subprocess
import time

from agent import (NM_UNIT, SEED_ROUTE, SEED_UNIT, count_complaints, route_complaints, source_complaints,
                   unit_complaints)
from nodeops import delete_route, seed_route_fine, since, wait_kernel_route

BUS_UNITS = ("dbus.socket", "dbus.service")


def sample(agent) -> dict:
    """One look at both endpoints: the systemd source and the seed route on each."""
    s = agent.snapshot(units=())
    return {"t": time.monotonic(), "systemd_up": s.metrics.value("routewarden_source_up", source="systemd"),
            "systemd": s.drift["sources"]["systemd"], "route_present": s.metrics.value(
                "routewarden_route_present", **SEED_ROUTE.labels), "route_state": s.route(SEED_ROUTE.destination)["state"],
            "unit": s.unit(SEED_UNIT)["state"]}


def test_bus_restart_source_drops_and_recovers(seed_node, agent, facts):
    seed_route_fine(agent, seed_node)
    samples = []
    restart = subprocess.Popen(seed_node.node_argv(["systemctl", "restart", "dbus.service"]), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < 30:
            agent.check_alive()
            samples.append(sample(agent))
            down_seen = any(x["systemd_up"] == 0 for x in samples)
            if restart.poll() is not None and down_seen and samples[-1]["systemd_up"] == 1:
                break
            time.sleep(0.05)
    finally:
        out, _ = restart.communicate(timeout=30)
    summary = [(round(x["t"] - t0, 2), x["systemd_up"], x["route_present"]) for x in samples]
    context = f"samples (s, systemd_up, route_present): {summary}\n{agent.explain()}"
    assert restart.returncode == 0, f"systemctl restart dbus: {restart.returncode} {out!r}"
    down = [x for x in samples if x["systemd_up"] == 0]
    assert down, "routewarden_source_up{source=systemd} never dropped to 0 while the bus restarted\n" + context
    assert all(x["systemd"].startswith("down: ") for x in down), "/drift sources.systemd disagrees\n" + context
    assert all(x["unit"] == "unknown" for x in down), "units must be unknown while systemd is down\n" + context
    assert samples[-1]["systemd_up"] == 1, "routewarden_source_up{source=systemd} did not come back to 1\n" + context
    assert all(x["route_present"] == 1 and x["route_state"] == "present" for x in samples), \
        "route metrics changed during the bus outage although the route stayed\n" + context
    wait_kernel_route(seed_node, SEED_ROUTE, present=True)
    up_again = next(x for x in samples if x["t"] > down[0]["t"] and x["systemd_up"] == 1)
    nm_after = seed_node.systemctl_show(NM_UNIT, "ActiveState")["ActiveState"]
    facts["agent_bus_restart"] = {"samples": len(samples), "down_seconds": round(up_again["t"] - down[0]["t"], 2),
                                  "networkmanager_after": nm_after}
    agent.converge("after the bus restart: units known again and agreeing with systemd",
                   lambda s: route_complaints(s, SEED_ROUTE, present=True)
                   + unit_complaints(s, SEED_UNIT, "succeeded", "ok") + unit_complaints(s, NM_UNIT, "active")
                   + source_complaints(s, machineconfig=True, netlink=True, systemd=True) + count_complaints(s))


def unknown_units(s) -> list[str]:
    """Units unknown on /drift, absent from routewarden_unit_ok and routewarden_unit_state."""
    out = [f"unit {u['name']} is {u['state']}, expected unknown" for u in s.drift["units"] if u["state"] != "unknown"]
    for name in ("routewarden_unit_ok", "routewarden_unit_state"):
        if s.metrics.series(name):
            out.append(f"{name} has series while systemd is down: {s.metrics.series(name)}")
    return out


def test_bus_down_routes_still_watched(seed_node, agent, facts):
    seed_route_fine(agent, seed_node)
    try:
        seed_node.run("systemctl", "stop", *BUS_UNITS)
        t0 = time.monotonic()
        agent.converge("bus stopped: systemd source down, units unknown, route still present",
                       lambda s: source_complaints(s, machineconfig=True, netlink=True, systemd=False)
                       + unknown_units(s) + route_complaints(s, SEED_ROUTE, present=True, codes=set()),
                       units=())
        delete_route(seed_node)
        agent.converge("route deleted while the bus is down: missing, reason unit-unknown",
                       lambda s: source_complaints(s, systemd=False) + unknown_units(s)
                       + route_complaints(s, SEED_ROUTE, present=False, codes={"unit-unknown"},
                                          words=(f"state of unit {SEED_UNIT} is unknown",))
                       + count_complaints(s), units=())
    finally:
        seed_node.run("systemctl", "start", *BUS_UNITS)
    t1 = time.monotonic()
    s = agent.converge("bus back: systemd source up, units agreeing with systemd, route still missing",
                       lambda s: source_complaints(s, machineconfig=True, netlink=True, systemd=True)
                       + route_complaints(s, SEED_ROUTE, present=False)
                       + unit_complaints(s, SEED_UNIT, "succeeded", "ok") + unit_complaints(s, NM_UNIT, "active")
                       + count_complaints(s), timeout=45)
    codes = s.route(SEED_ROUTE.destination)["reason_codes"]
    assert "unit-unknown" not in codes, f"unit-unknown after the bus came back: {codes}\n{agent.explain()}"
    facts["agent_bus_stop"] = {"outage_seconds": round(t1 - t0, 2), "recovered_after_start_s": since(t1),
                               "reasons_after": codes}


def test_agent_stops_on_sigterm(agent):
    """After losing and regaining the bus twice, this module's agent still ends cleanly on SIGTERM."""
    agent.assert_stops_on_sigterm()

