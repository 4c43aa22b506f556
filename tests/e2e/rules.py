"""Policy-routing rules on a booted node: the node's truth (`ip -j rule show`, the
routes of a table other than main) and what the agent must say of an expected rule
and of a route in such a table (agent.py's `route_complaints` reads the main table).

    RULE = Rule(150, "from 172.18.0.0/16", 200)
    agent.converge("rule present", lambda s: rule_complaints(s, node, RULE, present=True))
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

from agent import Route, Snapshot
from common import run, wait_for


@dataclass(frozen=True)
class Rule:
    """An expected IPv4 rule `priority: from PREFIX table T`, as the agent and the kernel name it."""
    priority: int
    selector: str
    table: int

    @property
    def labels(self) -> dict[str, str]:
        """The rule's labels on routewarden_rule_* series."""
        return {"family": "ipv4", "priority": str(self.priority), "selector": self.selector,
                "table": str(self.table)}

    def in_kernel(self, kernel_rules: list[dict]) -> bool:
        """True if `ip -j rule show` lists this rule (priority, source prefix, table)."""
        src, _, length = self.selector.removeprefix("from ").partition("/")
        return any(r.get("priority") == self.priority and r.get("src") == src and r.get("srclen") == int(length)
                   and r.get("table") == str(self.table) for r in kernel_rules)


def node_rules(node) -> list[dict]:
    """`ip -j rule show` in the node's namespace, parsed."""
    return json.loads(run(["ip", "-j", "-n", node.netns, "rule", "show"]).stdout or "[]")


def wait_kernel_rule(node, rule: Rule, present: bool, timeout: float = 15) -> None:
    """Wait until `rule` is (not) among the node's rules."""
    wait_for(f"rule {rule.priority}: {rule.selector} table {rule.table} {'in' if present else 'out of'} the node's rules",
             lambda: rule.in_kernel(node_rules(node)) == present, timeout=timeout,
             diagnose=lambda: json.dumps(node_rules(node)))


def drift_rule(drift: dict, rule: Rule) -> Optional[dict]:
    """/drift's verdict of `rule`."""
    return next((r for r in drift.get("rules", []) if r["family"] == "ipv4" and r["priority"] == rule.priority
                 and r["selector"] == rule.selector), None)


def rule_complaints(s: Snapshot, node, rule: Rule, *, present: bool, codes: Optional[set] = None,
                    sources: Optional[list] = None) -> list[str]:
    """What is wrong with the agent's report of `rule` (empty when all agrees): its
    /drift state is what the node's rules show, routewarden_rule_present and the
    reason series are what /drift says, a missing rule has reasons (exactly `codes`,
    when given), and the kinds of its `sources` are `sources`, when given."""
    v = drift_rule(s.drift, rule)
    if v is None:
        return [f"rule {rule.labels} is not in /drift's rules"]
    out = verdict_complaints(v, codes=codes, sources=sources)
    truth = rule.in_kernel(node_rules(node))
    if truth != present:
        out.append(f"node: rule {rule.priority} present={truth}, the scenario expects {present}")
    if v["state"] != ("present" if truth else "missing"):
        out.append(f"/drift says {v['state']}, the node's rules {'have' if truth else 'lack'} the rule")
    out += metrics_complaints(s, "rule", rule.labels, v)
    if bool(v["reason_codes"]) == truth:
        out.append(f"rule present={truth} with reasons {v['reason_codes']}")
    return out


def verdict_complaints(v: dict, *, codes: Optional[set] = None, sources: Optional[list] = None) -> list[str]:
    """A verdict (route or rule, /drift or `check` JSON) has exactly `codes` and
    sources of the kinds `sources`, in that order, each given one."""
    out = []
    if codes is not None and set(v["reason_codes"]) != codes:
        out.append(f"reason codes {v['reason_codes']}, expected {sorted(codes)}")
    kinds = [d["kind"] for d in v.get("sources", [])]
    if sources is not None and kinds != sources:
        out.append(f"sources {v.get('sources')}, expected kinds {sources}")
    return out


def table_route_complaints(s: Snapshot, node, route: Route, *, selected: bool,
                           codes: Optional[set] = None) -> list[str]:
    """What is wrong with the agent's report of `route`, in table `route.table`: found
    there it is `present` while a rule selects the table and `unselected` (reason
    no-rule-selects-table) while none does; route_present and the reason series agree."""
    v = s.route(route.destination)
    if v is None:
        return [f"route {route.destination} is not in /drift's routes"]
    out = []
    truth = route.in_kernel(node.ip_routes(table=route.table))
    if not truth:
        out.append(f"node: route {route.destination} is not in table {route.table}")
    want = "present" if selected else "unselected"
    if v["state"] != want:
        out.append(f"/drift says {v['state']}, expected {want}")
    if ("no-rule-selects-table" in v["reason_codes"]) == selected:
        out.append(f"reason codes {v['reason_codes']} with a rule selecting the table: {selected}")
    out += metrics_complaints(s, "route", route.labels, v)
    return out + verdict_complaints(v, codes=codes)


def metrics_complaints(s: Snapshot, kind: str, labels: dict, v: dict) -> list[str]:
    """routewarden_{kind}_present and the routewarden_{kind}_drift_reason series of
    `labels` say what /drift's verdict `v` says."""
    out = []
    gauge = s.metrics.value(f"routewarden_{kind}_present", **labels)
    if gauge != (1.0 if v["state"] == "present" else 0.0):
        out.append(f"routewarden_{kind}_present{labels} = {gauge}, /drift says {v['state']}")
    series = {dict(ls)["reason"]: val for ls, val in
              s.metrics.series(f"routewarden_{kind}_drift_reason", **labels).items()}
    if series != {c: 1.0 for c in v["reason_codes"]}:
        out.append(f"routewarden_{kind}_drift_reason {series} != /drift reason_codes {v['reason_codes']}")
    return out
