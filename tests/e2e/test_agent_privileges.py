"""Least privilege, and what it takes to act: reading needs no root and no
capability; remediation (`serve --remediate`) acts only through the route's owner
and only with the privilege the remediation component grants.

The unprivileged agent runs as UID 65534 with every capability dropped (setpriv),
like the DaemonSet's container (runAsUser 65534, drop ALL), against a booted node,
in the node's network and mount namespaces (a non-root process may not enter
/proc/PID1/root; the DaemonSet sees the same files through hostPath mounts).
Routes (netlink), units and their signals (D-Bus, Subscribe included) and the
MachineConfig must all still be read.

The remediation scenarios (issue 15) share the same node, in file order, each
setting up its own preconditions: the seed's boot race healed, `ip route del` of
the seed's route and of a profile route put back, a unit that always fails given
up on, an autoconnect profile left inactive on its device (`nmcli connection down`,
`nmcli device disconnect`) activated again, dry-run changing nothing, UID 65534
failing without the privilege, and the component's MachineConfig (installed the way
the MCO installs it: the agent's user routewarden, UID 65532, and its polkit rule)
letting that user restart units, re-apply and activate connections, and nothing
more. Timings: the agent acts after 2 s of absence, backoff 1, 2, 4 s.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import pytest
import yaml

import mcd
from conftest import SEED_MC
from nmprofiles import autoconnect_profile, device_connection, no_auto_default
from node import Node
from agent import NM_UNIT, REPO, SEED_ROUTE, SEED_UNIT, Agent, Route, check, route_complaints, unit_complaints
from nodeops import delete_route, ensure_network, run_seed_unit, seed_route_fine, since, stop_networkmanager, \
    wait_kernel_route

NOBODY = 65534


def use_dbus_broker(root: Path) -> None:
    """The node's system bus is dbus-broker, as on RHCOS (RHEL 9), rather than
    Debian's dbus-daemon (`systemctl enable dbus-broker`, offline)."""
    (root / "etc/systemd/system/dbus.service").symlink_to("/lib/systemd/system/dbus-broker.service")


def prepare_node(root: Path) -> None:
    """RHCOS's bus, and no automatic "Wired connection N" profiles: the device the
    activation scenarios add stays disconnected when its profile is brought down,
    rather than activating one NetworkManager made for it."""
    use_dbus_broker(root)
    no_auto_default(root)


@pytest.fixture(scope="module")
def seed_node(base_rootfs, facts):
    """This module's node: the seed's, with RHCOS's bus (dbus-broker) and polkit."""
    with Node(machineconfig=SEED_MC, prepare=prepare_node) as node:
        bus = node.run("systemctl", "show", "-p", "Id", "dbus.service").stdout.strip()
        assert bus == "Id=dbus-broker.service", bus
        facts["privileges_node_bus"] = bus
        yield node


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


# ---------------------------------------------------------------- remediation (issue 15)

COMPONENT = REPO / "manifests" / "components" / "remediation"
AGENT_UID = 65532  # the runAsUser the component gives the agent: its user routewarden
PROFILE_ROUTE = Route("10.77.0.0/16", "172.18.0.1", "ens5")
ACTIVATE_PROFILE = "rw-autoconnect"
ACTIVATE_OWNER = f"connection/{ACTIVATE_PROFILE}"
ACTIVATE_ROUTE = Route("10.79.0.0/16", "172.19.0.1", "ens6")
# What the agent's log says it activates for (decide.rs): the device and the reason.
ACTIVATE_WHY = f"on {ACTIVATE_ROUTE.device}, as nmcli connection up does (connection-inactive)"
FAILING_UNIT = "rw-always-fails.service"
FAILING_ROUTE = Route("10.78.0.0/16", "172.18.0.1", "ens5")


def counted(s, result: str, owner: str = SEED_UNIT, action: str = "restart-unit") -> float:
    """routewarden_remediations_total for (action, owner, result), 0 when absent."""
    return s.metrics.value("routewarden_remediations_total", action=action, owner=owner, result=result) or 0.0


def at_least(result: str, n: float, owner: str = SEED_UNIT, action: str = "restart-unit"):
    def complaints(s) -> list[str]:
        got = counted(s, result, owner, action)
        return [] if got >= n else [f"remediations_total{{{action},{owner},{result}}} {got}, want >= {n}"]
    return complaints


def fail_seed_unit_as_at_boot(node) -> dict:
    """The seed's boot race, as it goes at boot: the unit runs while NetworkManager
    is not running and fails (exit status 8); then NetworkManager comes up."""
    ensure_network(node)
    stop_networkmanager(node)
    show = run_seed_unit(node, expect_success=False)
    ensure_network(node)
    wait_kernel_route(node, SEED_ROUTE, present=False)
    return show


def test_remediation_heals_the_boot_race_and_a_deleted_route(seed_node, facts):
    show = fail_seed_unit_as_at_boot(seed_node)
    assert show["ExecMainStatus"] == "8", show
    with Agent.start(seed_node, port=9813, remediate="on") as a:
        t0 = time.monotonic()
        s = a.converge("the failed unit restarted once NetworkManager is up: route back, success counted",
                       lambda s: route_complaints(s, SEED_ROUTE, present=True, codes=set())
                       + at_least("success", 1)(s), timeout=30)
        facts["remediation_boot_race_healed_seconds"] = since(t0)
        assert seed_node.systemctl_show(SEED_UNIT)["Result"] == "success"
        assert "remediation" not in s.drift["routes"][0], "a present route has no remediation"
        delete_route(seed_node, SEED_ROUTE)
        t0 = time.monotonic()
        a.converge("ip route del: the unit restarted, the route back",
                   lambda s: route_complaints(s, SEED_ROUTE, present=True, codes=set())
                   + at_least("success", 2)(s), timeout=30)
        facts["remediation_route_deleted_healed_seconds"] = since(t0)
        record = json.loads(a.remediation_state.read_text())
        assert record["mode"] == "on", record
        last = record["owners"][SEED_UNIT]["last_attempt"]
        assert (last["action"], last["result"]) == ("restart-unit", "success"), record
        log = a.log_path.read_text()
        assert "remediation done" in log and SEED_UNIT in log, a.log_tail()
        kept = a.remediation_state.read_bytes()
    # The agent gone (its directory with it), its record kept: check shows the
    # last attempt on each missing route's owner.
    with tempfile.TemporaryDirectory() as d:
        state = Path(d) / "remediation.json"
        state.write_bytes(kept)
        delete_route(seed_node, SEED_ROUTE)
        rc, report = check(seed_node, "--remediation-state", str(state))
    route = next(r for r in report["routes"] if r["destination"] == SEED_ROUTE.destination)
    assert rc == 1 and route["state"] == "missing", report
    remediation = route["remediation"]
    assert remediation["action"] == "restart-unit" and remediation["owner"] == SEED_UNIT, \
        json.dumps({"route": route, "sources": report["sources"]}, indent=1)
    assert remediation["last_attempt"]["result"] == "success", remediation
    run_seed_unit(seed_node)


def seed_route_ok(s) -> list[str]:
    return route_complaints(s, SEED_ROUTE, present=True, codes=set())


def profile_route_ok(s) -> list[str]:
    return route_complaints(s, PROFILE_ROUTE, present=True, codes=set())


def profile_route_reapplied(node, a) -> float:
    """ens5's profile gets a route (re-applying it drops what nmcli device modify
    added: the seed's route, which the agent puts back through the unit); the
    profile route deleted by hand is re-applied by the agent. Returns how long
    that took; the profile is as it was after."""
    node.run("nmcli", "connection", "modify", "ens5", "+ipv4.routes",
             f"{PROFILE_ROUTE.destination} {PROFILE_ROUTE.gateway}")
    node.run("nmcli", "device", "reapply", "ens5")
    try:
        a.converge("a profile route, and the seed's route put back after the re-apply",
                   lambda s: profile_route_ok(s) + seed_route_ok(s), timeout=30)
        node.run("ip", "route", "del", PROFILE_ROUTE.destination)
        t0 = time.monotonic()
        a.converge("ip route del of the profile route: NetworkManager re-applies it",
                   lambda s: profile_route_ok(s) + seed_route_ok(s)
                   + at_least("success", 1, owner="connection/ens5", action="reapply")(s), timeout=30)
        return since(t0)
    finally:
        node.run("nmcli", "connection", "modify", "ens5", "-ipv4.routes",
                 f"{PROFILE_ROUTE.destination} {PROFILE_ROUTE.gateway}")
        node.run("nmcli", "device", "reapply", "ens5")
        a.converge("the profile route gone from the intent, the seed's route back",
                   lambda s: seed_route_ok(s) + ([] if all(r["destination"] != PROFILE_ROUTE.destination
                                                           for r in s.drift["routes"]) else ["profile route expected"]),
                   timeout=30)


def test_remediation_reapplies_a_profile_route_deleted_by_hand(seed_node, facts):
    ensure_network(seed_node)
    run_seed_unit(seed_node)
    with Agent.start(seed_node, port=9814, remediate="on") as a:
        facts["remediation_reapply_healed_seconds"] = profile_route_reapplied(seed_node, a)


def activate_route_ok(s) -> list[str]:
    """ACTIVATE_ROUTE present without reasons, its connection active by the agent's metric."""
    active = s.metrics.value("routewarden_connection_active", connection=ACTIVATE_PROFILE,
                             device=ACTIVATE_ROUTE.device)
    return route_complaints(s, ACTIVATE_ROUTE, present=True, codes=set()) + (
        [] if active == 1.0 else [f"routewarden_connection_active{{{ACTIVATE_PROFILE}}} = {active}, want 1"])


def activated(node, a, n: int, what: str) -> None:
    """The agent activated ACTIVATE_PROFILE (its n-th success on it) for
    connection-inactive: active on its device again, its route back."""
    a.converge(f"{what}: the agent activates {ACTIVATE_PROFILE}, its route back, success counted",
               lambda s: activate_route_ok(s) + at_least("success", n, ACTIVATE_OWNER, "activate")(s), timeout=30)
    on_device = device_connection(node, ACTIVATE_ROUTE.device)
    assert on_device["connection"] == ACTIVATE_PROFILE, on_device
    acting = [line for line in a.log_path.read_text().splitlines()
              if "remediation: acting" in line and "action=activate" in line]
    assert len(acting) >= n and all(ACTIVATE_WHY in line and ACTIVATE_OWNER in line for line in acting), \
        a.log_tail()


def profile_activated(node, a, *down: str, n: int) -> float:
    """`nmcli DOWN...` leaves ACTIVATE_PROFILE inactive on its device (NetworkManager
    blocks autoconnect after it), its route gone; the agent activates it again (its
    n-th success on it). Returns how long that took."""
    a.converge("the autoconnect profile active, its route present", activate_route_ok, timeout=30)
    node.run("nmcli", *down)
    t0 = time.monotonic()
    wait_kernel_route(node, ACTIVATE_ROUTE, present=False)
    activated(node, a, n, f"nmcli {' '.join(down)}")
    return since(t0)


def test_remediation_activates_an_autoconnect_profile_left_inactive(seed_node, facts):
    ensure_network(seed_node)
    run_seed_unit(seed_node)
    with autoconnect_profile(seed_node, ACTIVATE_PROFILE, ACTIVATE_ROUTE, "172.19.0.2/16"):
        # Nothing acts yet: after a manual down NetworkManager does not autoconnect
        # the profile again, and check says why the route is missing and what the
        # agent would do.
        seed_node.run("nmcli", "connection", "down", ACTIVATE_PROFILE)
        wait_kernel_route(seed_node, ACTIVATE_ROUTE, present=False)
        rc, report = check(seed_node)
        route = next((r for r in report["routes"] if r["destination"] == ACTIVATE_ROUTE.destination), None)
        assert rc == 1 and route is not None and route["state"] == "missing", json.dumps(report, indent=1)
        assert route["reason_codes"] == ["connection-inactive"], route
        remediation = route["remediation"]
        assert (remediation["action"], remediation["owner"]) == ("activate", ACTIVATE_OWNER), remediation
        facts["remediation_activate_after_connection_down"] = {
            "reason": route["reasons"][0], "device": device_connection(seed_node, ACTIVATE_ROUTE.device)}
        with Agent.start(seed_node, port=9819, remediate="on") as a:
            t0 = time.monotonic()
            activated(seed_node, a, 1, "nmcli connection down")
            facts["remediation_activate_connection_down_healed_seconds"] = since(t0)
            facts["remediation_activate_device_disconnect_healed_seconds"] = profile_activated(
                seed_node, a, "device", "disconnect", ACTIVATE_ROUTE.device, n=2)
            facts["remediation_activate_successes_for_two_downs"] = counted(
                a.snapshot(), "success", ACTIVATE_OWNER, "activate")
            record = json.loads(a.remediation_state.read_text())
            last = record["owners"][ACTIVATE_OWNER]["last_attempt"]
            assert (last["action"], last["result"]) == ("activate", "success"), record


def failing_unit_config(node) -> dict:
    unit = {"name": FAILING_UNIT, "enabled": True, "contents": (
        "[Unit]\nAfter=NetworkManager.service\n[Service]\nType=oneshot\nExecStart=/bin/false\n"
        f"ExecStart=/usr/sbin/ip route add {FAILING_ROUTE.destination} via {FAILING_ROUTE.gateway} "
        f"dev {FAILING_ROUTE.device}\n[Install]\nWantedBy=multi-user.target\n")}
    extra = {"spec": {"config": {"systemd": {"units": [unit]}}}}
    return mcd.merge(node.machineconfig, extra)


def test_remediation_gives_up_on_a_unit_that_always_fails(seed_node, facts):
    node_config = seed_node.machineconfig
    seed_node.apply_config(failing_unit_config(seed_node))
    try:
        ensure_network(seed_node)
        run_seed_unit(seed_node)  # started since the new config: no pending reboot
        seed_node.run("systemctl", "start", FAILING_UNIT, check=False)
        assert seed_node.systemctl_show(FAILING_UNIT)["Result"] == "exit-code"
        units = (SEED_UNIT, NM_UNIT, FAILING_UNIT)
        with Agent.start(seed_node, port=9815, remediate="on") as a:
            t0 = time.monotonic()
            a.converge("three restarts, each failed, then given up",
                       lambda s: at_least("failed", 3, owner=FAILING_UNIT)(s)
                       + at_least("gave-up", 1, owner=FAILING_UNIT)(s), timeout=40, units=units)
            facts["remediation_gave_up_after_seconds"] = since(t0)
            time.sleep(6)  # longer than the next backoff (8 s after the third restart, from its start)
            s = a.snapshot(units)
            assert counted(s, "failed", FAILING_UNIT) == 3 and counted(s, "gave-up", FAILING_UNIT) == 1, \
                a.explain(FAILING_UNIT)
            assert counted(s, "success", FAILING_UNIT) == 0
            labels = dict(destination=FAILING_ROUTE.destination, family="ipv4", gateway=FAILING_ROUTE.gateway,
                          device=FAILING_ROUTE.device, table="254")
            # What RoutewardenRouteMissing reads: still missing, still unit-failed.
            assert s.metrics.value("routewarden_route_present", **labels) == 0.0, a.explain(FAILING_UNIT)
            assert s.metrics.value("routewarden_route_drift_reason", **labels, reason="unit-failed") == 1.0
            route = next(r for r in s.drift["routes"] if r["destination"] == FAILING_ROUTE.destination)
            assert route["remediation"]["action"] is None and "gave up" in route["remediation"]["why"], route
            assert s.metrics.series("routewarden_remediation_next_attempt_timestamp_seconds",
                                    owner=FAILING_UNIT) == {}, "no next attempt once given up"
            assert "gave-up" in a.log_path.read_text(), a.log_tail()
    finally:
        seed_node.apply_config(node_config)
        run_seed_unit(seed_node)


def test_remediation_dry_run_changes_nothing(seed_node, facts):
    ensure_network(seed_node)
    before = run_seed_unit(seed_node)
    with Agent.start(seed_node, port=9816, remediate="dry-run") as a:
        delete_route(seed_node, SEED_ROUTE)
        s = a.converge("dry-run: the restart counted, not done",
                       lambda s: at_least("dry-run", 1)(s) + route_complaints(s, SEED_ROUTE, present=False),
                       timeout=20)
        assert counted(s, "success") == 0 and counted(s, "failed") == 0
        assert "dry-run" in a.log_path.read_text(), a.log_tail()
        time.sleep(2)
        after = seed_node.systemctl_show(SEED_UNIT)
        assert after["InactiveExitTimestampMonotonic"] == before["InactiveExitTimestampMonotonic"], \
            "dry-run started the unit"
        assert not SEED_ROUTE.in_kernel(seed_node.ip_routes()), "dry-run put the route back"
    run_seed_unit(seed_node)


def test_remediation_without_the_privilege_fails_and_goes_on(seed_node, facts):
    ensure_network(seed_node)
    run_seed_unit(seed_node)
    with Agent.start(seed_node, port=9817, uid=NOBODY, remediate="on") as a:
        delete_route(seed_node, SEED_ROUTE)
        a.converge("UID 65534 may not restart units: failed, counted",
                   lambda s: at_least("failed", 1)(s) + route_complaints(s, SEED_ROUTE, present=False), timeout=20)
        log = a.log_path.read_text()
        assert "was refused" in log and "denied" in log, a.log_tail()
        facts["remediation_unprivileged_error"] = next(
            (line for line in log.splitlines() if "remediation failed" in line), "")[-300:]
        assert a.running(), a.log_tail()
    run_seed_unit(seed_node)


def component_machineconfig() -> dict:
    return yaml.safe_load((COMPONENT / "machineconfig-worker.yaml").read_text())


def as_agent_uid(node, *argv: str):
    return node.run("setpriv", f"--reuid={AGENT_UID}", f"--regid={AGENT_UID}", "--clear-groups",
                    "--inh-caps=-all", "--bounding-set=-all", *argv, check=False)


def test_the_components_machineconfig_lets_the_agent_restart_reapply_activate_and_nothing_more(seed_node, facts):
    node_config = seed_node.machineconfig
    report = seed_node.apply_config(mcd.merge(node_config, component_machineconfig()))
    for name, path in (("80-routewarden-remediation.rules", "etc/polkit-1/rules.d/80-routewarden-remediation.rules"),
                       ("routewarden.sysusers.conf", "etc/sysusers.d/routewarden.conf")):
        assert (seed_node.root / path).read_bytes() == (COMPONENT / name).read_bytes(), report
    try:
        # What the next boot does: the unit the MachineConfig enabled makes the user.
        seed_node.run("systemctl", "start", "routewarden-sysusers.service")
        user = seed_node.run("getent", "passwd", "routewarden").stdout.strip()
        assert user.split(":")[2:4] == [str(AGENT_UID), str(AGENT_UID)], user
        facts["remediation_user"] = user
        ensure_network(seed_node)
        run_seed_unit(seed_node)
        stop = as_agent_uid(seed_node, "systemctl", "--no-ask-password", "stop", SEED_UNIT)
        assert stop.returncode != 0, f"UID {AGENT_UID} may stop units: {stop.stdout} {stop.stderr}"
        facts["remediation_polkit_stop_refused"] = (stop.stderr or stop.stdout).strip()[-200:]
        with Agent.start(seed_node, port=9818, uid=AGENT_UID, remediate="on") as a:
            delete_route(seed_node, SEED_ROUTE)
            t0 = time.monotonic()
            a.converge(f"UID {AGENT_UID} with the component's polkit rule: restarted, route back",
                       lambda s: seed_route_ok(s) + at_least("success", 1)(s), timeout=30)
            facts["remediation_polkit_healed_seconds"] = since(t0)
            facts["remediation_polkit_reapply_seconds"] = profile_route_reapplied(seed_node, a)
            with autoconnect_profile(seed_node, ACTIVATE_PROFILE, ACTIVATE_ROUTE, "172.19.0.2/16"):
                facts["remediation_polkit_activate_seconds"] = profile_activated(
                    seed_node, a, "connection", "down", ACTIVATE_PROFILE, n=1)
    finally:
        seed_node.apply_config(node_config)
        run_seed_unit(seed_node)
