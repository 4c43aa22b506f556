"""The PrometheusRule's promises: every alert named and labelled by OpenShift's
conventions with a runbook that exists, built only on metrics the agent exports
(or will: the contracts of the open issues), robust to missed scrapes, and the
description of the drift alerts naming what drifted and why.

What the alerts do over time is tested by promtool (rules_test*.yaml); this
checks what a reader of the rules file can see."""

import pathlib
import re

REPO = pathlib.Path(__file__).resolve().parents[2]
RUNBOOK_URL = "https://github.com/routewarden/routewarden/blob/main/docs/runbooks/{}.md"
# The agent's metric contract (the names the alerts may use), with the additions
# of the open issues: NetworkManager (12), rules (13), MachineConfig lifecycle
# (14), remediation (15), first use (21).
METRICS = {
    "routewarden_route_present", "routewarden_route_drift_reason", "routewarden_routes",
    "routewarden_expected_routes", "routewarden_unit_ok", "routewarden_unit_state",
    "routewarden_source_up", "routewarden_machineconfig_info", "routewarden_build_info",
    "routewarden_intent_diagnostics", "routewarden_evaluations_total",
    "routewarden_evaluation_duration_seconds", "routewarden_last_evaluation_timestamp_seconds",
    "routewarden_route_events_total", "routewarden_resyncs_total",
    "routewarden_last_resync_duration_seconds",
    "routewarden_route_declared", "routewarden_connection_active",
    "routewarden_rule_present", "routewarden_rule_drift_reason", "routewarden_rules",
    "routewarden_expected_rules",
    "routewarden_source_absent", "routewarden_machineconfig_written_after_boot",
    "routewarden_remediations_total", "routewarden_remediation_next_attempt_timestamp_seconds",
}
REQUIRED_ALERTS = {
    "RoutewardenRouteMissing", "RoutewardenRuleMissing", "RoutewardenRouteUnitFailed",
    "RoutewardenIntentUnreadable", "RoutewardenRemediationFailing", "RoutewardenSourceDown",
    "RoutewardenAgentDown", "RoutewardenAgentAbsent", "RoutewardenAgentMissingOnNodes",
}
# Alerts on the agent's state: a failed scrape (every series stale) must not reset
# them, so each of the agent's series is read over a range (last_over_time).
GAP_ROBUST = {"RoutewardenRouteMissing", "RoutewardenRuleMissing", "RoutewardenRouteUnitFailed",
              "RoutewardenSourceDown", "RoutewardenIntentUnreadable"}
SELECTOR = re.compile(r"\b(routewarden_[a-z_]+)(\{[^}]*\})?\s*(\[)?")


def metric_names(expr):
    return set(re.findall(r"\b(routewarden_[a-z_]+?)(?:_bucket|_sum|_count)?\b", expr))


def instant_selectors(expr):
    """The agent's series the expression reads at an instant, not over a range."""
    return sorted({m.group(1) for m in SELECTOR.finditer(expr) if not m.group(3)})


def check_alert(c, rule):
    name, labels, ann = rule["alert"], rule.get("labels", {}), rule.get("annotations", {})
    c.check(re.fullmatch(r"Routewarden[A-Z][A-Za-z]+", name) is not None,
            f"{name}: CamelCase with the Routewarden prefix")
    c.check(labels.get("severity") in ("warning", "critical"), f"{name}: severity warning|critical")
    c.check(bool(ann.get("summary")) and bool(ann.get("description")),
            f"{name}: summary and description")
    url = ann.get("runbook_url")
    book = REPO / "docs" / "runbooks" / f"{name}.md"
    c.check(url == RUNBOOK_URL.format(name) and book.is_file(),
            f"{name}: runbook_url -> docs/runbooks/{name}.md (exists)")
    unknown = metric_names(rule["expr"] + "".join(ann.values())) - METRICS
    c.check(not unknown, f"{name}: uses only the agent's metric names {sorted(unknown) or ''}")
    if name in GAP_ROBUST:
        instant = instant_selectors(rule["expr"])
        c.check(not instant, f"{name}: reads the agent's series over a range, robust to missed "
                f"scrapes {('(at an instant: ' + ', '.join(instant) + ')') if instant else ''}")
    if name != "RoutewardenAgentAbsent" and name != "RoutewardenAgentMissingOnNodes":
        c.check("$labels.node" in ann.get("description", ""), f"{name}: description names the node")


def check_rules(c, docs):
    rules = [r for g in docs[("PrometheusRule", "routewarden")]["spec"]["groups"]
             for r in g["rules"]]
    alerts = {r["alert"]: r for r in rules if "alert" in r}
    c.check(REQUIRED_ALERTS <= alerts.keys(), f"alerts include {sorted(REQUIRED_ALERTS)}")
    c.check(len(alerts) == len([r for r in rules if "alert" in r]), "one rule per alert name")
    for rule in rules:
        check_alert(c, rule)
    check_descriptions(c, alerts)
    absent = alerts.get("RoutewardenAgentAbsent", {})
    c.check(re.search(r'absent\(up\{[^}]*namespace="[a-z0-9-]+"', absent.get("expr", "")) is not None
            or "namespace" in absent.get("labels", {}),
            "RoutewardenAgentAbsent: has a namespace label on every platform")
    missing = alerts.get("RoutewardenAgentMissingOnNodes", {}).get("expr", "")
    c.check("kube_daemonset_status_desired_number_scheduled" in missing and "kube_node" not in missing,
            "RoutewardenAgentMissingOnNodes: counts the nodes the DaemonSet selects "
            "(its desired count), not every node")


def description(alerts, name):
    return alerts.get(name, {}).get("annotations", {}).get("description", "")


def check_descriptions(c, alerts):
    text = description(alerts, "RoutewardenRouteMissing")
    c.check(all(f"$labels.{k}" in text for k in ("destination", "gateway", "device", "table"))
            and "routewarden_route_drift_reason" in text,
            "RoutewardenRouteMissing: description names the route and its drift reasons")
    c.check("no-rule-selects-table" in text and "pending-reboot" in text,
            "RoutewardenRouteMissing: description explains no-rule-selects-table and pending-reboot")
    text = description(alerts, "RoutewardenRuleMissing")
    c.check(all(f"$labels.{k}" in text for k in ("priority", "selector", "table", "family"))
            and "routewarden_rule_drift_reason" in text,
            "RoutewardenRuleMissing: description names the rule and its drift reasons")
