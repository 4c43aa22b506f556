"""routewarden serve against a booted node: the seed's drift, as the DaemonSet sees it.

One node booted with examples/seed-machineconfig.yaml serves the scenarios in
file order; each sets up the preconditions it needs (network up, NetworkManager
running, the unit run again) rather than trusting the previous one. The agent runs
on the host in the node's network namespace with --host-root at the node's root
and --dbus-address at its system bus (agent.py), from right after boot until the
last test ends it with SIGTERM. Every check reads /drift and /metrics and compares
them with each other and with the node (`systemctl show`, the kernel's table).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import yaml

from agent import (NM_UNIT, REPO, SEED_ROUTE, SEED_UNIT, count_complaints, intent_complaints, last_configured_usec,
                   route_complaints, source_complaints, unit_complaints)
from common import run
from nodeops import (delete_route, ensure_network, ip_link, run_seed_unit, seed_route_fine,
                     seed_route_installed_after_config, since, stop_networkmanager, unit_summary, wait_kernel_route,
                     wait_monotonic_past)
from prom import Prometheus
import views

SEED_NAME = "worker-custom-route-configuration"
PROMETHEUS_RULE = REPO / "manifests" / "base" / "prometheusrule.yaml"
EXTRACT_RULES = REPO / "tests" / "deploy" / "extract_rules.py"
MARGIN_USEC = 1_000_000  # the agent's clock margin between address stamps and unit exits


def everything_agrees(s, **sources) -> list[str]:
    """Route, both units, sources and counts agree with the node (no scenario expectation)."""
    return (route_complaints(s, SEED_ROUTE) + unit_complaints(s, SEED_UNIT, "succeeded")
            + unit_complaints(s, NM_UNIT, "active") + source_complaints(s, **sources) + count_complaints(s))


# ---------------------------------------------------------------- 0: run as the DaemonSet runs it

def test_agent_runs_like_the_daemonset(seed_node, agent):
    netns_inode = os.stat(f"/run/netns/{seed_node.netns}").st_ino
    assert os.stat(f"/proc/{agent.pid}/ns/net").st_ino == netns_inode, \
        "the agent is not in the node's network namespace\n" + agent.explain()
    assert os.path.samefile(f"/proc/{agent.pid}/exe", agent.binary), agent.explain()
    for path in ("/healthz", "/readyz"):
        status, body = agent.get(path)
        assert status == 200, f"{path}: HTTP {status} {body!r}\n{agent.explain()}"
    current = seed_node.root / "etc/machine-config-daemon/currentconfig"
    assert current.is_file(), f"{current} missing\n{agent.explain()}"
    agent.converge("the seed's intent read from <host-root>/etc/machine-config-daemon/currentconfig, every source up",
                   lambda s: intent_complaints(s, SEED_NAME, {SEED_ROUTE.destination})
                   + source_complaints(s, machineconfig=True, netlink=True, systemd=True))


# ---------------------------------------------------------------- 1: the boot race, as it went

def test_boot_race_reported_as_the_node_saw_it(seed_node, agent, facts):
    boot = seed_node.boot["unit"]
    now = seed_node.systemctl_show(SEED_UNIT)
    assert unit_summary(now) == unit_summary(boot), f"the unit changed since boot: {unit_summary(now)}"
    failed = boot["ActiveState"] == "failed"
    facts["agent_boot_race"] = {"unit": unit_summary(boot),
                                "route_at_boot": SEED_ROUTE.in_kernel(seed_node.boot["routes"]),
                                "journal": seed_node.boot["journal"].strip().splitlines()[-3:]}
    if failed:
        # Exit status 8 ("NetworkManager is not running") in every boot seen so far;
        # the words must name whatever status systemd recorded.
        status = boot["ExecMainStatus"]
        s = agent.converge(
            f"boot: unit failed with exit status {status}, route missing, reason unit-failed",
            lambda s: route_complaints(s, SEED_ROUTE, present=False, codes={"unit-failed"},
                                       words=(f"unit {SEED_UNIT} failed: exit status {status}",))
            + everything_agrees(s, systemd=True))
    else:
        s = agent.converge("boot: unit succeeded, route present",
                           lambda s: route_complaints(s, SEED_ROUTE, present=True, codes=set())
                           + everything_agrees(s, systemd=True))
    facts["agent_boot_report"] = {"route": {k: s.route(SEED_ROUTE.destination)[k] for k in ("state", "reasons")},
                                  "unit": s.unit(SEED_UNIT)["state"]}


# ---------------------------------------------------------------- 2: NetworkManager stopped

def test_networkmanager_stopped_unit_fails(seed_node, agent):
    ensure_network(seed_node)
    if SEED_ROUTE.in_kernel(seed_node.ip_routes()):
        delete_route(seed_node)
    try:
        stop_networkmanager(seed_node)
        show = run_seed_unit(seed_node, expect_success=False)
        assert show["ActiveState"] == "failed" and show["ExecMainStatus"] == "8", unit_summary(show)
        assert "NetworkManager is not running" in seed_node.journal(SEED_UNIT, lines=5)
        agent.converge(
            "unit failed (exit status 8), NetworkManager inactive, route missing with both reasons",
            lambda s: route_complaints(s, SEED_ROUTE, present=False, codes={"unit-failed", "networkmanager-inactive"},
                                       words=(f"unit {SEED_UNIT} failed: exit status 8",
                                              "NetworkManager is not active (inactive)"))
            + unit_complaints(s, SEED_UNIT, "succeeded", "failed")
            + unit_complaints(s, NM_UNIT, "active", "inactive")
            + source_complaints(s, systemd=True) + count_complaints(s))
    finally:
        ensure_network(seed_node)


# ---------------------------------------------------------------- 3: NetworkManager back, unit run again

def test_networkmanager_started_unit_succeeds(seed_node, agent):
    s = seed_route_fine(agent, seed_node, "route present, unit ok, NetworkManager ok, no drift",
                        also=lambda s: count_complaints(s) + no_drift(s))
    assert s.metrics.series("routewarden_route_drift_reason") == {}, agent.explain()


def no_drift(s) -> list[str]:
    """/drift says no drift, no route carries a reason."""
    out = [] if s.drift["drift"] is False else [f"/drift drift={s.drift['drift']}"]
    return out + [f"route {r['destination']} has reasons {r['reason_codes']}"
                  for r in s.drift["routes"] if r["reason_codes"]]


# ---------------------------------------------------------------- 4: device re-activated

def reactivate_and_check(node, agent, facts, scenario: str, wait_before_usec: int, beyond_margin: bool) -> None:
    """The route back and the agent agreeing; then the unit run once more and,
    `wait_before_usec` after its exit (at once if 0), `nmcli connection up ens5`.
    Asserts that ens5's new address stamp is beyond the agent's 1 s clock margin after
    the unit's exit (`beyond_margin`) or within it, then checks the agent's
    verdict (NetworkManager's answer: not in the applied connection) and its words
    for that case."""
    seed_route_fine(agent, node)
    done = int(run_seed_unit(node)["ExecMainExitTimestampMonotonic"])
    if wait_before_usec:
        wait_monotonic_past(done + wait_before_usec, f"{wait_before_usec / 1e6} s after the unit's exit")
    node.run("nmcli", "connection", "up", "ens5")
    wait_kernel_route(node, SEED_ROUTE, present=False)
    show = node.systemctl_show(SEED_UNIT)
    assert show["ExecMainExitTimestampMonotonic"] == str(done) and show["Result"] == "success", \
        f"nmcli connection up must not touch the unit: {unit_summary(show)}"
    conf = last_configured_usec(node)
    facts[f"agent_{scenario}_stamps"] = {"unit_exit_usec": done, "ens5_configured_usec": conf,
                                         "configured_minus_exit_s": round((conf - done) / 1e6, 3)}
    stamps = (f"unit exit {done} us, ens5 configured {conf} us ({(conf - done) / 1e6:+.3f} s; the kernel's "
              "stamps run about 0.24 s behind CLOCK_MONOTONIC)")
    if beyond_margin:
        assert conf > done + MARGIN_USEC, \
            f"re-activated {wait_before_usec / 1e6} s after the unit's exit, yet not beyond the 1 s margin: {stamps}"
        words = ("the nmcli device modify that added it was undone",
                 f"ens5 was re-activated {(conf - done) // 1_000_000} s after the unit ran")
    else:
        assert done - MARGIN_USEC < conf <= done + MARGIN_USEC, \
            f"re-activated right after the unit's exit, yet not within the 1 s margin: {stamps}"
        words = ('the connection applied to ens5 ("ens5") lacks it: the nmcli device modify that added it '
                 "was undone when ens5 was re-activated",)
    facts[f"agent_{scenario}_expected_words"] = words[-1]
    agent.converge("route missing, not in the applied connection, unit still ok",
                   lambda s: route_complaints(s, SEED_ROUTE, present=False, codes={"not-in-applied-connection"},
                                              words=words)
                   + unit_complaints(s, SEED_UNIT, "succeeded", "ok") + count_complaints(s), timeout=10)


def test_reactivation_right_after_the_unit(seed_node, agent, facts):
    """The unit run, then `nmcli connection up ens5` at once: the address stamp is
    within the agent's 1 s clock margin of the unit's exit (asserted), so the agent
    cannot order the two and says when in general words."""
    reactivate_and_check(seed_node, agent, facts, "reactivation_at_once", 0, beyond_margin=False)


def test_reactivation_later_says_when(seed_node, agent, facts):
    """Re-activated 2 s after the unit ran: the address stamp is beyond the 1 s margin
    (asserted; 2 s leaves room for the kernel stamps' lag), and the words say how long
    after the unit the device was re-activated."""
    reactivate_and_check(seed_node, agent, facts, "reactivation_after_2s", 2_000_000, beyond_margin=True)


# ---------------------------------------------------------------- 5: route deleted, then device down

def test_route_deleted_then_device_down(seed_node, agent):
    ensure_network(seed_node)
    show, configured = seed_route_installed_after_config(seed_node)
    done = int(show["ExecMainExitTimestampMonotonic"])
    assert configured + MARGIN_USEC <= done, f"unit exit {done} not 1 s after ens5's configuration {configured}"
    agent.converge("route present", lambda s: route_complaints(s, SEED_ROUTE, present=True, codes=set()))
    try:
        delete_route(seed_node)
        agent.converge(
            "route deleted with ip route del: missing, NetworkManager applied it (removed outside it)",
            lambda s: route_complaints(s, SEED_ROUTE, present=False, codes={"removed-outside-networkmanager"},
                                       words=('NetworkManager applied it on ens5 (connection "ens5") and the kernel '
                                              "no longer has it",))
            + unit_complaints(s, SEED_UNIT, "succeeded", "ok") + count_complaints(s))
        seed_node.run("ip", "link", "set", "ens5", "down")
        assert "UP" not in ip_link(seed_node)["flags"], ip_link(seed_node)
        agent.converge("ens5 down: route missing, reason device-down",
                       lambda s: route_complaints(s, SEED_ROUTE, present=False, codes={"device-down"},
                                                  words=("device ens5 is down",))
                       + unit_complaints(s, SEED_UNIT, "succeeded", "ok") + count_complaints(s))
    finally:
        ensure_network(seed_node)


# ---------------------------------------------------------------- 8: the shipped alert, in a real Prometheus

def rules_for_test(tmp_path: Path) -> Path:
    """The PrometheusRule's groups from manifests/, as a rules file.

    The `for:` durations (1m to 15m) are rewritten to 2s in this copy only, so the
    alerts go pending and firing within the test; expressions, labels and
    annotations are the shipped ones.
    """
    extracted = tmp_path / "rules-extracted.yaml"
    run([sys.executable, EXTRACT_RULES, PROMETHEUS_RULE, extracted])
    shortened = yaml.safe_load(extracted.read_text())
    for group in shortened["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "2s"
    out = tmp_path / "rules.yaml"
    out.write_text(yaml.safe_dump(shortened, sort_keys=False, width=1000))
    return out


ALERT = "RoutewardenRouteMissing"
SEED_ALERT_LABELS = {"destination": SEED_ROUTE.destination}


def test_prometheus_alerts_on_deleted_route(seed_node, agent, tmp_path, facts):
    rules = rules_for_test(tmp_path)
    seed_route_fine(agent, seed_node)
    with Prometheus(seed_node.netns, f"127.0.0.1:{agent.port}", rule_files=[rules], job="routewarden") as prom:
        scraped = prom.wait_query(f'routewarden_route_present{{destination="{SEED_ROUTE.destination}"}}',
                                  lambda r: [x["value"][1] for x in r] == ["1"], "== 1 (scraped)")
        # No alert must mean the rules saw the route present, not that they never ran.
        groups = prom.wait_rules_evaluated(after=float(scraped[0]["value"][0]))
        assert {g["name"] for g in groups} == {"routewarden.drift", "routewarden.agent"}, groups
        unhealthy = [(r["name"], r["health"], r.get("lastError")) for g in groups for r in g["rules"]
                     if r["health"] != "ok"]
        assert unhealthy == [], unhealthy
        assert prom.matching_alerts(ALERT, labels=SEED_ALERT_LABELS) == [], prom.alerts()
        t0 = time.monotonic()
        delete_route(seed_node)
        s = agent.converge("route missing", lambda s: route_complaints(s, SEED_ROUTE, present=False))
        codes = s.route(SEED_ROUTE.destination)["reason_codes"]
        alert = prom.wait_alert(ALERT, states=("pending", "firing"), labels=SEED_ALERT_LABELS, interval=0.25,
                                diagnose=agent.explain)
        facts["alert_pending_or_firing_after_s"] = since(t0)
        want = {"alertname": ALERT, "severity": "warning", "job": "routewarden",
                "instance": f"127.0.0.1:{agent.port}", **SEED_ROUTE.labels}
        assert alert["labels"] == want, f"alert labels {alert['labels']}, expected {want}\n{agent.explain()}"
        firing = prom.wait_alert(ALERT, labels=SEED_ALERT_LABELS, interval=0.25)
        facts["alert_firing_after_s"] = since(t0)
        description = firing["annotations"]["description"]
        for text in (f"route {SEED_ROUTE.destination} via {SEED_ROUTE.gateway} dev {SEED_ROUTE.device} table 254",
                     SEED_NAME, f"Reasons: {', '.join(sorted(codes))}."):
            assert text in description, f"{text!r} not in the alert's description: {description!r}"
        run_seed_unit(seed_node)
        wait_kernel_route(seed_node, SEED_ROUTE, present=True)
        prom.wait_alert_resolved(ALERT, labels=SEED_ALERT_LABELS, interval=0.25)


# ---------------------------------------------------------------- 9: what people look at (views.py)

def test_dashboard_queries_in_prometheus(seed_node, agent, facts):
    """Every dashboard query, in the real Prometheus scraping this agent, with the seed
    route in place (the drift stat 0) and deleted (the missing-routes table has the
    node, the route and its reasons)."""
    views.dashboard_queries(seed_node, agent, facts)


def test_status_page_in_a_browser(seed_node, agent, facts):
    """Headless Chromium reads the status page: its route rows match /drift, and the
    deleted route shows missing with its reasons after a reload."""
    views.status_page_in_a_browser(seed_node, agent, facts)


# ---------------------------------------------------------------- 0: ended by PID

def test_agent_stops_on_sigterm(agent):
    """After every scenario above, the agent ends cleanly on SIGTERM."""
    agent.assert_stops_on_sigterm()
