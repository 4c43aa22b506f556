"""The harness against a real node, without routewarden: the seed MachineConfig's
oneshot (`nmcli dev modify ens5 +ipv4.routes ...`) and the kernel routing table
must tell the same story in every state the unit can be driven into.

The tests share one node (module fixture) and run in file order; each one sets up
the preconditions it needs rather than trusting the previous test.
"""

from __future__ import annotations

import json

import mcd
from agent import SEED_ROUTE, SEED_UNIT
from common import run, wait_for
from ifaddr import monotonic_usec
from nodeops import unit_summary, wait_kernel_route

UNIT = SEED_UNIT


def succeeded(show: dict) -> bool:
    """A oneshot without RemainAfterExit that ran and exited 0."""
    return show["Result"] == "success" and show["ExecMainStatus"] == "0" and show["ActiveState"] in ("inactive", "active") \
        and show["ExecMainExitTimestampMonotonic"] != "0"


def failed(show: dict) -> bool:
    """The unit failed on its main process's exit code."""
    return show["ActiveState"] == "failed" and show["Result"] == "exit-code"


def ensure_networkmanager(node) -> None:
    node.run("systemctl", "start", "NetworkManager.service")
    wait_for("ens5 connected", node.ens5_connected, timeout=30,
             diagnose=lambda: node.diagnostics("NetworkManager.service"))


def test_seed_config_applied_like_mcd(seed_node):
    show = seed_node.systemctl_show(UNIT, "UnitFileState", "LoadState", "FragmentPath")
    assert show["LoadState"] == "loaded", show
    assert show["UnitFileState"] == "enabled", show
    assert show["FragmentPath"] == "/etc/systemd/system/nmcli-dev-modify.service", show
    link = seed_node.root / "etc/systemd/system/multi-user.target.wants" / UNIT
    assert link.is_symlink() and str(link.readlink()) == "/etc/systemd/system/" + UNIT
    current = json.loads((seed_node.root / "etc/machine-config-daemon/currentconfig").read_text())
    assert current == mcd.load(seed_node_config_path())
    keyfile = seed_node.root / "etc/NetworkManager/system-connections/ens5.nmconnection"
    assert keyfile.stat().st_mode & 0o777 == 0o600


def test_host_sees_the_node_like_a_daemonset_pod(seed_node):
    """The system bus through /proc/PID1/root and the routes through the netns, from the host."""
    path = "/org/freedesktop/systemd1/unit/nmcli_2ddev_2dmodify_2eservice"
    cp = run(["busctl", f"--address={seed_node.bus_address}", "--json=short", "get-property",
              "org.freedesktop.systemd1", path, "org.freedesktop.systemd1.Unit", "ActiveState"])
    assert json.loads(cp.stdout)["data"] == seed_node.systemctl_show(UNIT, "ActiveState")["ActiveState"]
    host_view = json.loads(seed_node.netns_exec(["ip", "-4", "-j", "route", "show"]).stdout)
    assert host_view == seed_node.ip_routes()
    assert seed_node.run("cat", "/proc/1/comm").stdout.strip() == "systemd"


def seed_node_config_path():
    from conftest import SEED_MC
    return SEED_MC


def test_boot_state_consistent_with_routes(seed_node, facts):
    show, routes = seed_node.boot["unit"], seed_node.boot["routes"]
    ok, bad = succeeded(show), failed(show)
    facts["boot_unit_state"] = unit_summary(show)
    facts["boot_route_present"] = SEED_ROUTE.in_kernel(routes)
    facts["boot_race"] = ("unit failed at boot (raced NetworkManager)" if bad else
                          "unit succeeded at boot" if ok else "unit in another state")
    facts["boot_unit_journal"] = seed_node.boot["journal"].strip().splitlines()[-5:]
    assert ok or bad, f"unit neither succeeded nor failed after boot: {unit_summary(show)}"
    assert SEED_ROUTE.in_kernel(routes) == ok, (
        f"route present={SEED_ROUTE.in_kernel(routes)} but unit {unit_summary(show)}; routes: {routes}")


def test_restart_with_networkmanager_adds_route(seed_node):
    ensure_networkmanager(seed_node)
    seed_node.run("systemctl", "restart", UNIT)
    show = seed_node.systemctl_show(UNIT)
    assert succeeded(show), unit_summary(show)
    assert show["UnitFileState"] == "enabled"
    route = wait_kernel_route(seed_node, SEED_ROUTE, present=True)
    assert SEED_ROUTE.matching(route)[0].get("protocol") == "static", route


def test_connection_up_drops_runtime_route(seed_node, facts):
    ensure_networkmanager(seed_node)
    seed_node.run("systemctl", "restart", UNIT)
    wait_kernel_route(seed_node, SEED_ROUTE, present=True)
    exit_usec = int(seed_node.systemctl_show(UNIT)["ExecMainExitTimestampMonotonic"])
    before = seed_node.addresses("ens5")
    # Re-activate well after the unit ran (1 s, beyond the jiffies/CLOCK_MONOTONIC skew)
    # so the record shows whether the stamps can order the two events.
    wait_for("1 s of CLOCK_MONOTONIC after the unit's exit", lambda: monotonic_usec() > exit_usec + 1_000_000,
             timeout=5)
    t0 = monotonic_usec()
    seed_node.run("nmcli", "connection", "up", "ens5")
    t1 = monotonic_usec()
    wait_kernel_route(seed_node, SEED_ROUTE, present=False)
    after = wait_for("ens5 to have its address back", lambda: seed_node.addresses("ens5"), timeout=15,
                     diagnose=lambda: seed_node.diagnostics("NetworkManager.service"))
    show = seed_node.systemctl_show(UNIT)
    assert succeeded(show), f"nmcli connection up must not change the unit's record: {unit_summary(show)}"
    assert [a.address for a in after] == ["172.18.0.2"], after
    record_cstamp_facts(facts, before[0], after[0], exit_usec, t0, t1)


def record_cstamp_facts(facts, before, after, exit_usec, t0, t1) -> None:
    """What IFA_CACHEINFO's creation stamp says about a re-activation, for the lead."""
    facts["cstamp"] = {
        "before_usec": before.created_monotonic_usec,
        "after_usec": after.created_monotonic_usec,
        "moved_forward_on_connection_up": after.cstamp_cs > before.cstamp_cs,
        "unit_exit_usec": exit_usec,
        "nmcli_up_window_usec": [t0, t1],
        "after_minus_nmcli_up_start_usec": after.created_monotonic_usec - t0,
        "after_within_nmcli_window_10ms": t0 - 10_000 <= after.created_monotonic_usec <= t1 + 10_000,
        "address_created_after_unit_exit": after.created_monotonic_usec > exit_usec,
        "address_before_created_after_unit_exit": before.created_monotonic_usec > exit_usec,
    }


def test_unit_fails_without_networkmanager(seed_node):
    ensure_networkmanager(seed_node)
    seed_node.run("nmcli", "connection", "up", "ens5")
    wait_kernel_route(seed_node, SEED_ROUTE, present=False)
    try:
        seed_node.run("systemctl", "stop", "NetworkManager.service")
        seed_node.wait_unit("NetworkManager.service", lambda s: s["ActiveState"] == "inactive", "stopped")
        cp = seed_node.run("systemctl", "restart", UNIT, check=False)
        assert cp.returncode != 0, "systemctl restart should report the unit's failure"
        show = seed_node.systemctl_show(UNIT)
        assert failed(show), unit_summary(show)
        assert show["ExecMainStatus"] == "8", unit_summary(show)
        assert not SEED_ROUTE.in_kernel(seed_node.ip_routes())
        assert "NetworkManager is not running" in seed_node.journal(UNIT, lines=5)
    finally:
        ensure_networkmanager(seed_node)


def test_rollout_without_reboot(seed_node):
    seed = mcd.load(seed_node_config_path())
    new = rollout_config(seed)
    report = seed_node.apply_config(new)
    assert "/etc/rwe2e/gzipped.conf" in report.written
    root = seed_node.root
    assert (root / "etc/rwe2e/gzipped.conf").read_bytes() == b"route 10.0.0.0/8\n" * 50
    assert (root / "etc/rwe2e/plain.conf").stat().st_mode & 0o7777 == 0o600
    show = seed_node.systemctl_show("rwe2e-extra.service", "LoadState", "UnitFileState", "DropInPaths", "Environment")
    assert show["LoadState"] == "loaded" and show["UnitFileState"] == "enabled", show
    assert show["DropInPaths"] == "/etc/systemd/system/rwe2e-extra.service.d/10-env.conf", show
    assert show["Environment"] == "RWE2E=1", show
    assert seed_node.systemctl_show("rwe2e-masked.service", "LoadState")["LoadState"] == "masked"
    assert mcd.read_current_config(root) == new
    back = seed_node.apply_config(seed)
    assert "/etc/rwe2e/gzipped.conf" in back.removed
    assert not (root / "etc/rwe2e/plain.conf").exists()
    assert seed_node.systemctl_show("rwe2e-extra.service", "LoadState")["LoadState"] == "not-found"
    assert seed_node.systemctl_show("rwe2e-masked.service", "LoadState")["LoadState"] == "not-found"
    assert mcd.read_current_config(root) == seed


def test_unreferenced_oneshot_forgets_its_run(seed_node, facts):
    """A successful oneshot nothing references is garbage-collected with its record;
    an enabled one (wanted by multi-user.target) keeps it. Facts for the agent's unit view."""
    seed = mcd.load(seed_node_config_path())
    new = rollout_config(seed)
    new["spec"]["config"]["systemd"]["units"].append(
        {"name": "rwe2e-once.service", "contents": "[Service]\nType=oneshot\nExecStart=/bin/true\n"})
    seed_node.apply_config(new)
    try:
        seed_node.run("systemctl", "start", "rwe2e-once.service", "rwe2e-extra.service")
        once = seed_node.wait_unit("rwe2e-once.service", lambda s: s["ExecMainExitTimestampMonotonic"] == "0",
                                   "its run record dropped (unit garbage-collected)", timeout=15)
        kept = seed_node.systemctl_show("rwe2e-extra.service")
        facts["unreferenced_oneshot_after_success"] = unit_summary(once)
        facts["enabled_oneshot_after_success"] = unit_summary(kept)
        assert once["ActiveState"] == "inactive" and once["Result"] == "success", unit_summary(once)
        assert succeeded(kept), unit_summary(kept)
    finally:
        seed_node.apply_config(seed)


def rollout_config(seed: dict) -> dict:
    import base64
    import copy
    import gzip
    new = copy.deepcopy(seed)
    new["metadata"]["name"] = "worker-rwe2e-rollout"
    config = new["spec"]["config"]
    gz = base64.b64encode(gzip.compress(b"route 10.0.0.0/8\n" * 50)).decode()
    config["storage"] = {"files": [
        {"path": "/etc/rwe2e/gzipped.conf", "contents": {"source": "data:;base64," + gz, "compression": "gzip"}},
        {"path": "/etc/rwe2e/plain.conf", "mode": 384, "contents": {"source": "data:,a%20b%0A"}},
    ]}
    config["systemd"]["units"] += [
        {"name": "rwe2e-extra.service", "enabled": True,
         "contents": "[Service]\nType=oneshot\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n",
         "dropins": [{"name": "10-env.conf", "contents": "[Service]\nEnvironment=RWE2E=1\n"}]},
        {"name": "rwe2e-masked.service", "mask": True},
    ]
    return new
