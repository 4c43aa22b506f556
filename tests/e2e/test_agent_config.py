"""routewarden serve follows a MachineConfig update rolled out without reboot.

A fresh node (isolation: these tests replace ens5's NetworkManager keyfile). Each
new rendered config adds a keyfile for ens5 with an extra route (10.42.0.0/16 via
172.18.0.1) and is written to currentconfig by the harness's MCD-style rollout;
the agent, started once, must take the new intent and check it. NetworkManager
reads keyfiles at start, so after the rollout `nmcli connection reload` (and `up`)
stands in for the reboot the MCD would do.

Order: first the keyfile with mode 0644, which NetworkManager refuses (the route
never appears: reason keyfile-mode), then the same keyfile with mode 0600 (the
route appears once applied), then a keyfile that adds a route in table 200 and the
routing rule that selects it (policy routing), with three more rules of other
selectors and actions: all present once applied, each one rule declared by both
the keyfile and NetworkManager's applied connection (the keyfile's text,
NetworkManager's D-Bus reply and the kernel's rule read as the same rule); `ip
rule del` makes the rule missing, `removed-outside-networkmanager` from
NetworkManager's view, and the route `no-rule-selects-table` (the time the agent
took is a fact); `routewarden check --intent networkmanager` finds the rule in
NetworkManager's applied connection alone, with the same reason; `nmcli device
reapply` brings both back.
"""

from __future__ import annotations

import time
import urllib.parse

import mcd
from agent import (SEED_ROUTE, SEED_UNIT, Route, intent_complaints, route_complaints, source_complaints,
                   unit_complaints)
from agent import check
from common import wait_for
from conftest import SEED_MC
from node import ENS5_KEYFILE, KEYFILE_PATH
from nodeops import nm_connections, since, wait_kernel_route
from rules import (Rule, drift_rule, node_rules, rule_complaints, table_route_complaints, verdict_complaints,
                   wait_kernel_rule)

KEYFILE_ROUTE = Route("10.42.0.0/16", "172.18.0.1", "ens5")
KEYFILE = ENS5_KEYFILE.replace("address1=172.18.0.2/16\n",
                               f"address1=172.18.0.2/16\nroute1={KEYFILE_ROUTE.destination},{KEYFILE_ROUTE.gateway}\n")
assert KEYFILE != ENS5_KEYFILE
# Policy routing: a route in table 200 and the rule that selects it, for traffic from ens5's subnet.
TABLE_ROUTE = Route("10.43.0.0/16", "172.18.0.1", "ens5", table="200")
RULE = Rule(150, "from 172.18.0.0/16", 200)
# Other selectors and actions, as the keyfile writes them and as the agent names them
# (selector, action); none looks up table 200, so that deleting RULE leaves it unselected.
MORE_RULES = {
    "priority 151 from 172.18.0.0/16 fwmark 0x30/0x10 iif ens5 table 201":
        (151, "from 172.18.0.0/16 fwmark 0x30/0x10 iif ens5", "table 201"),
    "priority 152 not to 10.44.0.0/16 oif ens5 suppress_prefixlength 0 table 201":
        (152, "not to 10.44.0.0/16 oif ens5 suppress_prefixlength 0", "table 201"),
    "priority 153 to 10.44.0.0/16 type blackhole": (153, "to 10.44.0.0/16", "blackhole"),
}
RULES_KEYFILE = KEYFILE.replace(
    "route1=", f"route2={TABLE_ROUTE.destination},{TABLE_ROUTE.gateway}\nroute2_options=table=200\n"
    f"routing-rule1=priority {RULE.priority} {RULE.selector} table {RULE.table}\n"
    + "".join(f"routing-rule{i}={text}\n" for i, text in enumerate(MORE_RULES, start=2)) + "route1=")
assert RULES_KEYFILE != KEYFILE


def keyfile_config(name: str, mode: int, keyfile: str = KEYFILE) -> dict:
    """The seed's MachineConfig plus the ens5 keyfile (KEYFILE_ROUTE, unless another is given), with `mode`."""
    mc = mcd.load(SEED_MC)
    mc["metadata"]["name"] = name
    mc["spec"]["config"]["storage"] = {"files": [{
        "path": KEYFILE_PATH, "mode": mode, "overwrite": True,
        "contents": {"source": "data:," + urllib.parse.quote(keyfile)}}]}
    return mc


def both_routes(s, name: str) -> list[str]:
    return intent_complaints(s, name, {SEED_ROUTE.destination, KEYFILE_ROUTE.destination})


def test_keyfile_with_mode_0644_is_refused(seed_node, agent):
    pid = agent.pid
    name = "rendered-worker-rwe2e-keyfile-0644"
    intent_resyncs = agent.metrics().value("routewarden_resyncs_total", cause="intent")
    seed_node.apply_config(keyfile_config(name, 0o644))
    assert (seed_node.root / KEYFILE_PATH.lstrip("/")).stat().st_mode & 0o777 == 0o644
    seed_node.run("nmcli", "connection", "reload")
    wait_for("NetworkManager to drop the 0644 keyfile's connection",
             lambda: not any(line.endswith(":" + KEYFILE_PATH) for line in nm_connections(seed_node)),
             timeout=15, diagnose=lambda: "\n".join(nm_connections(seed_node)))
    s = agent.converge(
        "new intent with the keyfile route, missing: reason keyfile-mode",
        lambda s: both_routes(s, name)
        + route_complaints(s, KEYFILE_ROUTE, present=False, codes={"keyfile-mode"},
                           words=(f"keyfile {KEYFILE_PATH} has mode 0644: NetworkManager ignores it",))
        + diagnostics_complaints(s, warnings=1) + source_complaints(s, machineconfig=True))
    warning = s.drift["diagnostics"][0]
    assert warning["origin"] == f"file {KEYFILE_PATH}" and "mode 0644" in warning["message"], warning
    after = s.metrics.value("routewarden_resyncs_total", cause="intent")
    assert after == (intent_resyncs or 0) + 1, \
        f"a new expected route re-reads the table once: resyncs_total{{cause=intent}} {intent_resyncs} -> {after}"
    assert agent.pid == pid and agent.running(), "the agent was restarted\n" + agent.explain()


def diagnostics_complaints(s, warnings: int) -> list[str]:
    """/drift diagnostics and routewarden_intent_diagnostics count `warnings` warnings, no error."""
    got = [d["severity"] for d in s.drift["diagnostics"]]
    out = [] if got == ["warning"] * warnings else [f"/drift diagnostics {s.drift['diagnostics']}"]
    for severity, want in (("warning", warnings), ("error", 0)):
        value = s.metrics.value("routewarden_intent_diagnostics", severity=severity)
        if value != float(want):
            out.append(f"routewarden_intent_diagnostics{{severity={severity!r}}} = {value}, expected {want}")
    return out


def test_keyfile_route_checked_once_applied(seed_node, agent, facts):
    pid = agent.pid
    name = "rendered-worker-rwe2e-keyfile-0600"
    report = seed_node.apply_config(keyfile_config(name, 0o600))
    assert KEYFILE_PATH in report.written, report
    s = agent.converge("new intent with the keyfile route, not reloaded yet: missing, profile-not-loaded",
                       lambda s: both_routes(s, name)
                       + route_complaints(s, KEYFILE_ROUTE, present=False, codes={"profile-not-loaded"},
                                          words=(KEYFILE_PATH,))
                       + diagnostics_complaints(s, warnings=0))
    facts["agent_keyfile_route_before_applied"] = s.route(KEYFILE_ROUTE.destination)["reasons"]
    seed_node.run("nmcli", "connection", "reload")
    seed_node.run("nmcli", "--wait", "30", "connection", "up", "ens5", timeout=40)
    wait_for("ens5 connected", seed_node.ens5_connected, timeout=30)
    routes = wait_kernel_route(seed_node, KEYFILE_ROUTE, present=True)
    kernel = next(r for r in routes if r["dst"] == KEYFILE_ROUTE.destination)
    assert kernel.get("protocol") == "static" and kernel.get("metric") == 100, kernel
    agent.converge("the keyfile route present once NetworkManager applied it",
                   lambda s: both_routes(s, name)
                   + route_complaints(s, KEYFILE_ROUTE, present=True, codes=set())
                   + unit_complaints(s, SEED_UNIT, "succeeded") + source_complaints(s, machineconfig=True))
    assert agent.pid == pid and agent.running(), "the agent was restarted\n" + agent.explain()


def rule_and_route(node, *, present: bool, codes=None, rule_codes=None):
    """The check of RULE and TABLE_ROUTE: RULE present (or missing), one rule that the
    keyfile and NetworkManager both declare, TABLE_ROUTE in its table, selected while
    RULE is there; the other rules present, each declared by both too."""
    return lambda s: (rule_complaints(s, node, RULE, present=present, codes=rule_codes,
                                      sources=["keyfile", "networkmanager"])
                      + table_route_complaints(s, node, TABLE_ROUTE, selected=present, codes=codes)
                      + more_rules_complaints(s.drift["rules"]))


def more_rules_complaints(verdicts: list[dict], sources=("keyfile", "networkmanager")) -> list[str]:
    """MORE_RULES present, each one verdict with `sources`."""
    out = []
    for priority, selector, action in MORE_RULES.values():
        found = [v for v in verdicts if v["priority"] == priority and v["selector"] == selector
                 and v["action"] == action]
        if len(found) != 1:
            out.append(f"rule {priority}: {selector} {action}: {len(found)} verdicts in {verdicts}")
            continue
        if found[0]["state"] != "present":
            out.append(f"rule {priority}: {found[0]['state']} {found[0]['reasons']}")
        out += verdict_complaints(found[0], sources=list(sources))
    return out


def test_keyfile_rule_deleted_then_reapplied(seed_node, agent, facts):
    pid = agent.pid
    name = "rendered-worker-rwe2e-keyfile-rules"
    seed_node.apply_config(keyfile_config(name, 0o600, RULES_KEYFILE))
    seed_node.run("nmcli", "connection", "reload")
    seed_node.run("nmcli", "--wait", "30", "connection", "up", "ens5", timeout=40)
    wait_for("ens5 connected", seed_node.ens5_connected, timeout=30)
    wait_kernel_rule(seed_node, RULE, present=True)
    s = agent.converge("the keyfile's rule and its table-200 route present",
                       lambda s: intent_complaints(s, name, {SEED_ROUTE.destination, KEYFILE_ROUTE.destination,
                                                             TABLE_ROUTE.destination})
                       + rule_and_route(seed_node, present=True, codes=set())(s))
    assert s.metrics.value("routewarden_expected_rules") == 1.0 + len(MORE_RULES), \
        s.metrics.series("routewarden_expected_rules")

    t0 = time.monotonic()
    seed_node.run("ip", "rule", "del", "priority", str(RULE.priority), *RULE.selector.split(),
                  "table", str(RULE.table))
    wait_for("/drift: the rule missing and the route unselected", lambda: (
        (drift_rule(d := agent.drift(), RULE) or {}).get("state") == "missing"
        and next(r for r in d["routes"] if r["destination"] == TABLE_ROUTE.destination)["state"] == "unselected"),
        timeout=15, interval=0.02)
    facts["agent_ip_rule_del_to_drift_seconds"] = since(t0)
    wait_kernel_rule(seed_node, RULE, present=False)
    agent.converge("ip rule del: the rule missing (removed-outside-networkmanager), the route no-rule-selects-table",
                   rule_and_route(seed_node, present=False, codes={"no-rule-selects-table"},
                                  rule_codes={"removed-outside-networkmanager"}))
    check_networkmanager_alone(seed_node)

    seed_node.run("nmcli", "device", "reapply", "ens5", timeout=40)
    wait_kernel_rule(seed_node, RULE, present=True)
    agent.converge("nmcli device reapply: the rule and the route's table back",
                   rule_and_route(seed_node, present=True, codes=set()))
    assert agent.pid == pid and agent.running(), "the agent was restarted\n" + agent.explain()


def check_networkmanager_alone(node) -> None:
    """`routewarden check --intent networkmanager` while RULE is deleted: RULE comes from
    NetworkManager's applied connection alone, missing, removed-outside-networkmanager;
    TABLE_ROUTE, from the same connection, unselected; the other rules present."""
    code, report = check(node, "--intent", "networkmanager")
    rule = drift_rule(report, RULE)
    complaints = [] if code == 1 else [f"exit {code}, expected 1 (drift)"]
    if report["sources"]["machineconfig"] != "skipped":
        complaints.append(f"sources {report['sources']}: the MachineConfig is not read")
    if rule is None:
        complaints.append(f"rule {RULE} not in {report['rules']}")
    else:
        complaints += verdict_complaints(rule, codes={"removed-outside-networkmanager"}, sources=["networkmanager"])
        origin = rule["sources"][0]["origin"] if rule["sources"] else ""
        if not (origin.startswith('connection "ens5" (') and origin.endswith(f", {KEYFILE_PATH})")):
            complaints.append(f"origin {origin!r}: the ens5 connection from {KEYFILE_PATH}")
        if rule["state"] != "missing" or "nmcli device reapply ens5" not in " ".join(rule["reasons"]):
            complaints.append(f"rule {rule['state']} {rule['reasons']}")
    route = next((r for r in report["routes"] if r["destination"] == TABLE_ROUTE.destination), None)
    if route is None or route["state"] != "unselected" or [s["kind"] for s in route["sources"]] != ["networkmanager"]:
        complaints.append(f"route {TABLE_ROUTE.destination}: {route}")
    complaints += more_rules_complaints(report["rules"], sources=["networkmanager"])
    assert not complaints, "\n".join(complaints) + f"\nnode rules: {node_rules(node)}\ncheck: {report}"


def test_agent_stops_on_sigterm(agent):
    """After the rollouts, this module's agent still ends cleanly on SIGTERM."""
    agent.assert_stops_on_sigterm()
