"""The dashboard's queries against a real Prometheus scraping the agent on a booted node.

Every panel query of the dashboard (manifests/components/dashboard-grafana; the
console's copy has the same queries, tests/deploy checks that) is run with its
variables substituted the ways the dashboards do: All (`.+`), the node selected
(regex-escaped), and a node that does not exist. Each must be valid PromQL (the
real Prometheus answers, no error), return what EXPECT says for the state the node
is in, and return nothing (or the 0 of a count) for the other node: no query
ignores the node variable.

    with Prometheus(node.netns, f"127.0.0.1:{agent.port}", job="routewarden",
                    labels={"node": node.name}) as prom:
        results = run_all(prom, node.name, agent.metrics(), "well")
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from common import HarnessError

REPO = Path(__file__).resolve().parents[2]
sys.path.append(str(REPO / "tests" / "deploy"))  # after the harness's own modules
import dashboards  # noqa: E402  (tests/deploy/dashboards.py: the model, its queries, substitution)

INTERVAL = "1s"        # $__interval: the test Prometheus scrapes every second
RATE_INTERVAL = "5s"   # $__rate_interval: Grafana's floor, 4 scrape intervals, and a margin
RANGE_SECONDS = 20     # a timeseries panel's queries run as range queries over this
OTHER_NODE = "no-such-node.example.com"

Expect = Union[int, str]
# What each query (panel title, refId) returns on the seed node, with every route in
# place ("well") and with the seed route deleted ("drift"): a number (the one value
# of a count), "series" (some), "empty" (none), or "exported" (some if the agent
# exports every routewarden_ series the query reads, else none: the panels of rules,
# NetworkManager and remediation before those metrics exist).
EXPECT: dict[tuple[str, str], dict[str, Expect]] = {
    ("Nodes with drift", "A"): {"well": 0, "drift": 1},
    ("Routes missing", "A"): {"well": 0, "drift": 1},
    ("Routes mismatched", "A"): {"well": 0, "drift": 0},
    ("Units not ok", "A"): {"well": 0, "drift": 0},
    ("Agents down", "A"): {"well": 0, "drift": 0},
    ("Sources down", "A"): {"well": 0, "drift": 0},
    ("Routes not present, by node", "A"): {"well": "empty", "drift": "series"},
    ("Units not ok, by node", "A"): {"well": "empty", "drift": "empty"},
    ("Sources down, by node", "A"): {"well": "empty", "drift": "empty"},
    ("Drift over time by node", "A"): {"well": "series", "drift": "series"},
    ("Drift over time by node", "B"): {"well": "exported", "drift": "exported"},
    ("Drift over time by node", "C"): {"well": "empty", "drift": "empty"},
    ("Rules not present", "A"): {"well": "exported", "drift": "exported"},
    ("Rules not present, by node", "A"): {"well": "empty", "drift": "empty"},
    ("Who declares the routes not present", "A"): {"well": "empty", "drift": "exported"},
    ("Connections not active", "A"): {"well": "empty", "drift": "empty"},
    ("Remediations by action and result", "A"): {"well": "exported", "drift": "exported"},
    ("Next remediation attempts", "A"): {"well": "exported", "drift": "exported"},
    ("Evaluations and route events", "A"): {"well": "series", "drift": "series"},
    ("Evaluations and route events", "B"): {"well": "series", "drift": "series"},
    ("Resyncs by cause", "A"): {"well": "series", "drift": "series"},
    ("Evaluation duration", "A"): {"well": "series", "drift": "series"},
    ("Evaluation duration", "B"): {"well": "series", "drift": "series"},
    ("Evaluation duration", "C"): {"well": "series", "drift": "series"},
    ("Evaluation duration", "D"): {"well": "series", "drift": "series"},
    ("Scrape duration", "A"): {"well": "series", "drift": "series"},
    ("Agents", "A"): {"well": "series", "drift": "series"},
}


@dataclass(frozen=True)
class Ran:
    """One query run: the substituted expression and Prometheus' result."""
    query: "dashboards.Query"
    node: str | None
    expr: str
    result: list[dict]


def board() -> dict:
    """The Grafana model."""
    return dashboards.load(dashboards.GRAFANA)


def query(panel: str, ref: str = "A"):
    """The target `ref` of the panel titled `panel`."""
    found = [q for q in dashboards.queries(board()) if (q.panel, q.ref) == (panel, ref)]
    if len(found) != 1:
        raise HarnessError(f"the dashboard has {len(found)} queries {panel!r} {ref}")
    return found[0]


def run(prom, query, node: str | None) -> Ran:
    """Run one query as its panel does (instant, or a range for a time series)."""
    expr = dashboards.substitute(query.expr, node, INTERVAL, RATE_INTERVAL)
    try:
        if query.instant:
            result = prom.query(expr)
        else:
            end = time.time()
            result = prom.api("query_range", query=expr, start=str(end - RANGE_SECONDS), end=str(end),
                              step="1")["result"]
    except HarnessError as e:
        raise AssertionError(f"panel {query.panel!r} {query.ref}: Prometheus refused the query: {e}\n{expr}") from None
    return Ran(query, node, expr, result)


def exported_names(metrics) -> set[str]:
    """Series names on the agent's /metrics (agent.Metrics)."""
    return {name for name, _ in metrics.samples}


def complaints(ran: Ran, state: str, exported: set[str]) -> list[str]:
    """What is wrong with one result for the node in `state` ("well" or "drift")."""
    key = (ran.query.panel, ran.query.ref)
    if key not in EXPECT:
        return [f"panel {key}: no expectation in tests/e2e/dashboard.py EXPECT (a new panel?)"]
    want = EXPECT[key][state]
    if want == "exported":
        reads = {n for n in dashboards.metric_names(ran.query.expr) if n.startswith("routewarden_")}
        want = "series" if reads <= exported else "empty"
    values = [r["value"][1] if "value" in r else r["values"][-1][1] for r in ran.result]
    ok = {"series": bool(ran.result), "empty": not ran.result}.get(want) if isinstance(want, str) \
        else values == [str(want)]
    if ok:
        return []
    return [f"{state}, node {ran.node or 'All'}: panel {key} expected {want!r}, got {len(ran.result)} series "
            f"{[r['metric'] for r in ran.result][:3]} values {values[:3]}\n    {ran.expr}"]


def other_node_complaints(ran: Ran) -> list[str]:
    """For a node that does not exist: nothing, or the single 0 of a count."""
    values = [r["value"][1] if "value" in r else r["values"][-1][1] for r in ran.result]
    if values in ([], ["0"]):
        return []
    return [f"node {OTHER_NODE}: panel {(ran.query.panel, ran.query.ref)} returned {ran.result[:2]}: "
            f"the query ignores the node variable\n    {ran.expr}"]


def run_all(prom, node: str, metrics, state: str) -> dict[tuple[str, str], Ran]:
    """Every query with All, with `node` selected and with another node; assert all
    expectations at once (every complaint listed). The results with `node` selected,
    by (panel title, refId)."""
    exported = exported_names(metrics)
    found, out = [], {}
    for q in dashboards.queries(board()):
        for choice in (None, node):
            ran = run(prom, q, choice)
            found += complaints(ran, state, exported)
            out[(q.panel, q.ref)] = ran
        found += other_node_complaints(run(prom, q, OTHER_NODE))
    assert not found, f"{len(found)} dashboard queries wrong:\n" + "\n".join(found)
    return out


def missing_rows(ran: Ran) -> list[dict]:
    """The rows of the missing-routes table: labels plus `missing_for` (seconds)."""
    return [{**r["metric"], "missing_for": float(r["value"][1])} for r in ran.result]
