"""routewarden's dashboard: the Grafana JSON model (the source, current schema), the
OpenShift console's copy derived from it, their queries, and the checks on both.

    python3 tests/deploy/dashboards.py console     # rewrite the console's copy from the Grafana model
    python3 tests/deploy/dashboards.py check       # structure, metric names, the copy in sync, the README
    python3 tests/deploy/dashboards.py self-test   # each kind of breakage is caught by `check`
    python3 tests/deploy/dashboards.py rules OUT   # every query, variables substituted, as a rules file
                                                   # (for `promtool check rules`: each one is valid PromQL)
    python3 tests/deploy/dashboards.py overlay DIR OVERLAY COMPONENT
                                                   # DIR/kustomization.yaml: manifests/overlays/OVERLAY
                                                   # with manifests/components/COMPONENT added
                                                   # (own_overlay.py)
    python3 tests/deploy/dashboards.py built BUILT.yaml COMPONENT
                                                   # the built overlay holds the component's ConfigMap
                                                   # where Grafana's sidecar or the console finds it

Edit the Grafana model (in Grafana, then export it, or by hand), then run `console`.
The console (Observe > Dashboards, openshift/monitoring-plugin's legacy dashboards)
draws only the older panel types (singlestat, graph, table with `styles`, row),
substitutes `$name` but not `${name}`, offers a variable's values one at a time with
All as `.+`, and has no data source variable (it always asks the cluster's
Prometheus): `console()` turns the model into that form, queries unchanged.

The end-to-end suite (tests/e2e/dashboard.py) runs every query against a real
Prometheus that scrapes a real agent.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import own_overlay

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "manifests/components/dashboard-grafana/routewarden-static-routes.json"
CONSOLE = REPO / "manifests/components/dashboard-openshift/routewarden-static-routes.json"
README = REPO / "README.md"
TITLE = "routewarden / Static routes"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# The agent's metric names (a contract: README, Metrics), those other work adds
# included; queries may read these and Prometheus' own per-target series only.
METRICS = {
    "routewarden_route_present", "routewarden_route_drift_reason", "routewarden_routes",
    "routewarden_expected_routes", "routewarden_unit_ok", "routewarden_unit_state", "routewarden_source_up",
    "routewarden_source_absent", "routewarden_machineconfig_info", "routewarden_intent_diagnostics",
    "routewarden_evaluations_total", "routewarden_evaluation_duration_seconds",
    "routewarden_last_evaluation_timestamp_seconds", "routewarden_route_events_total", "routewarden_resyncs_total",
    "routewarden_last_resync_duration_seconds", "routewarden_build_info", "routewarden_rule_present",
    "routewarden_rule_drift_reason", "routewarden_rules", "routewarden_expected_rules",
    "routewarden_route_declared", "routewarden_connection_active", "routewarden_remediations_total",
    "routewarden_remediation_next_attempt_timestamp_seconds",
    "up", "scrape_duration_seconds",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
PANEL_TYPES = {"stat": "singlestat", "timeseries": "graph", "table": "table", "row": "row"}
# Units the console formats (monitoring-plugin format.tsx); others show as plain numbers.
CONSOLE_UNITS = {"dtdurations": "s", "s": "s", "ms": "ms", "bytes": "bytes", "percentunit": "percentunit"}


@dataclass(frozen=True)
class Query:
    """One target of one panel."""
    panel: str
    ref: str
    expr: str
    instant: bool


def load(path: Path) -> dict:
    """A dashboard JSON model."""
    return json.loads(path.read_text())


def panels(board: dict) -> list[dict]:
    """Every panel that is not a row, in order (collapsed rows' panels included)."""
    out = []
    for p in board.get("panels", []):
        if p.get("type") == "row":
            out.extend(p.get("panels", []))
        else:
            out.append(p)
    return out


def queries(board: dict) -> list[Query]:
    """Every panel's targets."""
    return [Query(p["title"], t["refId"], t["expr"], bool(t.get("instant")))
            for p in panels(board) for t in p.get("targets", [])]


def regex_escape(value: str) -> str:
    """A variable's value in a `=~"..."` matcher, as Grafana escapes it."""
    return re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\\\1", value)


def substitute(expr: str, node: str | None, interval: str = "1m", rate_interval: str = "2m") -> str:
    """The query as the dashboards send it: `$node` as All (`.+`) when `node` is None,
    else that one node; `$__interval` and `$__rate_interval` as given."""
    out = expr.replace("$__rate_interval", rate_interval).replace("$__interval", interval)
    return out.replace("$node", ".+" if node is None else regex_escape(node))


def metric_names(expr: str) -> set[str]:
    """The series names a query reads (label names and functions left out)."""
    no_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    no_groupings = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", no_strings)
    names = set()
    for m in re.finditer(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{|\[|\))", no_groupings):
        names.add(m.group(1))
    return {n for n in names if n.startswith("routewarden_") or n in METRICS}


def base_metric(name: str) -> str:
    """`x_bucket` -> `x` for a histogram of the contract."""
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in METRICS:
            return name[: -len(suffix)]
    return name


# ---------------------------------------------------------------- the console's copy

def console(board: dict) -> dict:
    """The OpenShift console's form of the Grafana model (same queries)."""
    node = next(v for v in board["templating"]["list"] if v["name"] == "node")
    query = node["query"]["query"] if isinstance(node["query"], dict) else node["query"]
    out = {
        "title": board["title"],
        "uid": board["uid"],
        "description": board.get("description", ""),
        "tags": board.get("tags", []),
        "schemaVersion": board["schemaVersion"],
        "refresh": board.get("refresh", "30s"),
        "time": board.get("time", {}),
        "templating": {"list": [{
            "type": "query", "name": "node", "label": node.get("label", "node"), "query": query,
            "includeAll": True, "multi": False, "hide": 0, "options": [],
        }]},
        "panels": [],
    }
    for p in board["panels"]:
        out["panels"].append(_console_panel(p))
        for inner in p.get("panels", []):
            out["panels"].append(_console_panel(inner))
    return out


def _console_panel(p: dict) -> dict:
    kind = PANEL_TYPES.get(p["type"], p["type"])
    out = {"id": p["id"], "type": kind, "title": p["title"]}
    if kind == "row":
        out.update({"showTitle": True, "collapse": False, "panels": []})
        return out
    out["description"] = p.get("description", "")
    out["span"] = max(1, round(p["gridPos"]["w"] / 2))
    out["targets"] = [{k: t[k] for k in ("expr", "refId", "legendFormat") if k in t} for t in p["targets"]]
    defaults = p.get("fieldConfig", {}).get("defaults", {})
    if kind == "singlestat":
        out.update(_singlestat(defaults))
    elif kind == "table":
        out["styles"] = _styles(p)
    elif kind == "graph":
        unit = CONSOLE_UNITS.get(defaults.get("unit", "short"), "short")
        out.update({"legend": {"show": True}, "stack": False,
                    "yaxes": [{"format": unit, "min": 0, "show": True}, {"format": "short", "show": False}]})
    return out


def _singlestat(defaults: dict) -> dict:
    """Thresholds as the console reads them: a value takes the colour of the last
    threshold strictly below it, so Grafana's `>= v` (counts: integers) becomes `v - 0.5`."""
    steps = defaults.get("thresholds", {}).get("steps", [])
    thresholds = [{"value": -1 if s["value"] is None else s["value"] - 0.5, "color": s["color"]} for s in steps]
    return {"format": CONSOLE_UNITS.get(defaults.get("unit", "none"), "none"),
            "decimals": defaults.get("decimals", 0),
            "options": {"fieldOptions": {"thresholds": thresholds}},
            "valueMaps": [{"op": "=", "value": "null", "text": defaults.get("noValue", "-")}]}


def _styles(p: dict) -> list[dict]:
    """The table's columns, from its `organize` transformation: labels in order, then
    the value (one query: the console names it `Value #A`)."""
    organize = next(t["options"] for t in p.get("transformations", []) if t["id"] == "organize")
    order = sorted(organize.get("indexByName", {}).items(), key=lambda kv: kv[1])
    rename = organize.get("renameByName", {})
    overrides = {o["matcher"]["options"]: {prop["id"]: prop["value"] for prop in o["properties"]}
                 for o in p.get("fieldConfig", {}).get("overrides", [])}
    styles = []
    for name, _ in order:
        alias = rename.get(name, name)
        if name == "Value":
            props = overrides.get(alias, {})
            styles.append({"pattern": "Value #A", "alias": alias, "type": "number",
                           "unit": CONSOLE_UNITS.get(props.get("unit", "short"), "short"),
                           "decimals": props.get("decimals", 0)})
        else:
            styles.append({"pattern": name, "alias": alias, "type": "string"})
    return styles


# ---------------------------------------------------------------- checks

def problems(board: dict, copy: dict, readme: str) -> list[str]:
    """Everything wrong with the Grafana model and the console's copy (empty: fine)."""
    out = []
    if board.get("title") != TITLE:
        out.append(f"title {board.get('title')!r}, expected {TITLE!r}")
    if board.get("schemaVersion", 0) < 36:
        out.append(f"schemaVersion {board.get('schemaVersion')}: not the current schema")
    out += _variable_problems(board)
    out += [f"hard-coded data source {ds}" for ds in _datasources(board) if ds.get("uid") != "${datasource}"]
    out += _panel_problems(board, readme)
    if copy != console(board):
        out.append(f"{CONSOLE.relative_to(REPO)} is not console() of the Grafana model: "
                   "run python3 tests/deploy/dashboards.py console")
    return out


def _variable_problems(board: dict) -> list[str]:
    names = [v["name"] for v in board.get("templating", {}).get("list", [])]
    if names != ["datasource", "node"]:
        return [f"variables {names}, expected ['datasource', 'node']"]
    ds, node = board["templating"]["list"]
    out = []
    if ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        out.append("variable datasource: not a Prometheus data source variable")
    want = {"type": "query", "multi": True, "includeAll": True, "allValue": ".+", "datasource": DATASOURCE}
    out += [f"variable node: {k} is {node.get(k)!r}, expected {v!r}" for k, v in want.items() if node.get(k) != v]
    return out


def _datasources(value) -> list[dict]:
    """Every `datasource` object in the model."""
    found = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "datasource" and isinstance(v, dict):
                found.append(v)
            found += _datasources(v)
    elif isinstance(value, list):
        for v in value:
            found += _datasources(v)
    return found


def _panel_problems(board: dict, readme: str) -> list[str]:
    out = []
    every = [p for p in board["panels"]] + [i for p in board["panels"] for i in p.get("panels", [])]
    titles = [p["title"] for p in every]
    out += [f"panel title {t!r} used twice" for t in set(titles) if titles.count(t) > 1]
    ids = [p["id"] for p in every]
    out += [f"panel id {i} used twice" for i in set(ids) if ids.count(i) > 1]
    for p in panels(board):
        where = f"panel {p['title']!r}"
        if p["type"] not in PANEL_TYPES:
            out.append(f"{where}: type {p['type']!r} has no console form")
        if f"**{p['title']}**" not in readme:
            out.append(f"{where}: not described in the README (as **{p['title']}**)")
        if p["type"] == "table" and not any(t["id"] == "organize" for t in p.get("transformations", [])):
            out.append(f"{where}: a table needs an organize transformation (its columns)")
        if not p.get("targets"):
            out.append(f"{where}: no query")
        for t in p.get("targets", []):
            out += [f"{where} {t.get('refId')}: {e}" for e in _query_problems(t.get("expr", ""))]
    return out


def _query_problems(expr: str) -> list[str]:
    out = []
    if not expr:
        return ["no expression"]
    if "${" in expr:
        out.append("uses ${name}: the console substitutes $name only")
    names = {base_metric(n) for n in metric_names(expr)}
    out += [f"reads {n}, not a routewarden metric name" for n in sorted(names - METRICS)]
    if not names:
        out.append("reads no routewarden series")
    for m in re.finditer(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\{([^}]*)\}", expr):
        if 'job="routewarden"' not in m.group(1) or 'node=~"$node"' not in m.group(1):
            out.append(f"selector {m.group(0)!r} lacks job=\"routewarden\" or node=~\"$node\"")
    return out


def self_test() -> list[str]:
    """Break the model one way at a time: `problems` must name each breakage."""
    import copy as copying
    board, readme = load(GRAFANA), README.read_text()

    def first_target(b):
        return panels(b)[0]["targets"][0]

    def uid(b):
        panels(b)[1]["datasource"] = {"type": "prometheus", "uid": "P1809F7CD0C75ACF3"}

    def no_node(b):
        first_target(b)["expr"] = first_target(b)["expr"].replace(',node=~"$node"', "")

    def braces(b):
        first_target(b)["expr"] = first_target(b)["expr"].replace("$node", "${node}")

    def renamed(b):
        first_target(b)["expr"] = first_target(b)["expr"].replace("routewarden_unit_ok", "routewarden_units_ok")

    def single(b):
        b["templating"]["list"][1]["multi"] = False

    def new_type(b):
        panels(b)[2]["type"] = "piechart"

    breakages = {
        "a hard-coded data source uid": (uid, "hard-coded data source", None),
        "a query without the node variable": (no_node, 'lacks job="routewarden" or node=~"$node"', None),
        "${node} instead of $node": (braces, "substitutes $name only", None),
        "a metric name not in the contract": (renamed, "routewarden_units_ok, not a routewarden metric", None),
        "node not multi-valued": (single, "variable node: multi", None),
        "a panel type the console cannot draw": (new_type, "has no console form", None),
        "a panel the README does not describe": (None, "not described in the README", "**Agents**"),
    }
    failures = []
    for what, (mutate, expected, drop) in breakages.items():
        broken = copying.deepcopy(board)
        if mutate:
            mutate(broken)
        text = readme.replace(drop, "") if drop else readme
        found = problems(broken, console(broken), text)
        if not any(expected in f for f in found):
            failures.append(f"{what}: not caught ({found})")
    stale = copying.deepcopy(console(board))
    stale["panels"][1]["title"] += " (old)"
    if not any("is not console()" in f for f in problems(board, stale, readme)):
        failures.append("a console copy out of date: not caught")
    if problems(board, console(board), readme):
        failures.append("the shipped model has problems itself")
    return failures


# ---------------------------------------------------------------- the components

# Where each component's ConfigMap goes and the label its reader selects.
COMPONENTS = {
    "dashboard-grafana": ("routewarden", "grafana_dashboard", "1", GRAFANA),
    "dashboard-openshift": ("openshift-config-managed", "console.openshift.io/dashboard", "true", CONSOLE),
}
# kubectl apply keeps the whole object in an annotation, at most 256 KiB.
MAX_BYTES = 200 * 1024


def built_problems(built: list[dict], component: str) -> list[str]:
    """What is wrong with the component's ConfigMap in a built overlay."""
    namespace, label, value, source = COMPONENTS[component]
    maps = [d for d in built if d and d.get("kind") == "ConfigMap"
            and d["metadata"].get("labels", {}).get(label) == value]
    if len(maps) != 1:
        return [f"{len(maps)} ConfigMaps labelled {label}={value!r}, expected 1"]
    meta, data = maps[0]["metadata"], maps[0].get("data", {})
    out = []
    if meta.get("namespace") != namespace:
        out.append(f"ConfigMap {meta['name']} in namespace {meta.get('namespace')!r}, expected {namespace!r}")
    if list(data) != [source.name] or json.loads(data[source.name]) != load(source):
        out.append(f"ConfigMap {meta['name']} does not hold {source.relative_to(REPO)} as its one key")
    size = sum(len(v.encode()) for v in data.values())
    if size > MAX_BYTES:
        out.append(f"ConfigMap {meta['name']} holds {size} bytes: more than kubectl apply can annotate")
    return out


# ---------------------------------------------------------------- command line

def _rules(out: Path) -> None:
    rules = []
    for path in (GRAFANA, CONSOLE):
        for i, q in enumerate(queries(load(path))):
            for mode, node in (("all", None), ("one", "worker-1.example.com")):
                name = f"routewarden_dashboard:{path.parent.name.replace('-', '_')}:q{i}_{mode}"
                rules.append({"record": name, "expr": substitute(q.expr, node)})
    out.write_text(json.dumps({"groups": [{"name": "routewarden-dashboard-queries", "rules": rules}]}, indent=1))
    print(f"{len(rules)} queries written to {out}")


def main(argv: list[str]) -> int:
    if argv[:1] == ["console"]:
        CONSOLE.write_text(json.dumps(console(load(GRAFANA)), indent=2) + "\n")
        print(f"wrote {CONSOLE.relative_to(REPO)}")
        return 0
    if argv[:1] == ["check"]:
        found = problems(load(GRAFANA), load(CONSOLE), README.read_text())
        for p in found:
            print(f"dashboard: {p}", file=sys.stderr)
        n = len(panels(load(GRAFANA)))
        print(f"{n} panels, {len(queries(load(GRAFANA)))} queries: {len(found)} problems")
        return 1 if found else 0
    if argv[:1] == ["self-test"]:
        failures = self_test()
        for f in failures:
            print(f"self-test: {f}", file=sys.stderr)
        print(f"self-test: {len(failures)} breakages not caught")
        return 1 if failures else 0
    if argv[:1] == ["rules"] and len(argv) == 2:
        _rules(Path(argv[1]))
        return 0
    if argv[:1] == ["overlay"] and len(argv) == 4:
        own_overlay.shipped(Path(argv[1]).resolve(), argv[2], [argv[3]])
        return 0
    if argv[:1] == ["built"] and len(argv) == 3:
        import yaml
        found = built_problems(list(yaml.safe_load_all(Path(argv[1]).read_text())), argv[2])
        for p in found:
            print(f"{argv[2]}: {p}", file=sys.stderr)
        print(f"{argv[2]}: {len(found)} problems")
        return 1 if found else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
