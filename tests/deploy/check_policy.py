#!/usr/bin/env python3
"""Check a built overlay against what routewarden's deployment promises.

Schemas say a manifest is well formed; this says it is the deployment we mean:
host network, every taint tolerated, read-only host mounts of exactly what the
agent reads under /host, no capabilities, probes that reach the listener, metrics
wired from a container port through the Service to the ServiceMonitor, alerts
with severities, summaries and runbooks that exist, and on OpenShift the TLS proxy,
its RBAC and an SCC that grants nothing more.

usage: check_policy.py kubernetes|openshift BUILT.yaml
"""

import pathlib
import re
import sys

import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
RUNBOOK_URL = "https://github.com/routewarden/routewarden/blob/main/docs/runbooks/{}.md"
HOST_PATHS = {"/run/dbus", "/etc/machine-config-daemon"}
AGENT = "routewarden"
PROXY = "kube-rbac-proxy"
# The agent's metric contract (the names the alerts may use).
METRICS = {
    "routewarden_route_present", "routewarden_route_drift_reason", "routewarden_routes",
    "routewarden_expected_routes", "routewarden_unit_ok", "routewarden_unit_state",
    "routewarden_source_up", "routewarden_machineconfig_info", "routewarden_build_info",
    "routewarden_evaluations_total", "routewarden_evaluation_duration_seconds",
    "routewarden_last_evaluation_timestamp_seconds", "routewarden_route_events_total",
    "routewarden_resyncs_total",
}
REQUIRED_ALERTS = {
    "RoutewardenRouteMissing", "RoutewardenRouteUnitFailed", "RoutewardenSourceDown",
    "RoutewardenAgentDown", "RoutewardenAgentAbsent",
}


class Checker:
    """Collects named pass/fail results and prints them."""

    def __init__(self):
        self.failed = 0
        self.passed = 0

    def check(self, ok, what):
        print(f"  {'ok  ' if ok else 'FAIL'} {what}")
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        return ok


def index(docs):
    """(kind, name) -> object."""
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def containers(ds):
    return {c["name"]: c for c in ds["spec"]["template"]["spec"]["containers"]}


def env_field(container, name):
    for e in container.get("env", []):
        if e["name"] == name:
            return e.get("value") or e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    return None


def check_pod(c, ds):
    pod = ds["spec"]["template"]["spec"]
    c.check(pod.get("hostNetwork") is True, "DaemonSet: hostNetwork (the node's routing table)")
    c.check(pod.get("tolerations") == [{"operator": "Exists"}], "DaemonSet: tolerates every taint")
    c.check(pod.get("priorityClassName") == "system-node-critical",
            "DaemonSet: priorityClassName system-node-critical")
    strategy = ds["spec"].get("updateStrategy", {})
    c.check(strategy.get("type") == "RollingUpdate"
            and "maxUnavailable" in strategy.get("rollingUpdate", {}),
            "DaemonSet: rolling update with maxUnavailable")
    sc = pod.get("securityContext", {})
    c.check(sc.get("runAsNonRoot") is True and sc.get("runAsUser", 0) != 0,
            "DaemonSet: runs as a non-root user")
    c.check(pod.get("automountServiceAccountToken") is False,
            "DaemonSet: no API token mounted by default (the agent needs none)")
    for name, ctr in containers(ds).items():
        csc = ctr.get("securityContext", {})
        c.check(csc.get("readOnlyRootFilesystem") is True
                and csc.get("allowPrivilegeEscalation") is False
                and csc.get("capabilities") == {"drop": ["ALL"]}
                and not csc.get("privileged"),
                f"container {name}: read-only root, no escalation, drops ALL, adds none")


def check_agent(c, ds):
    agent = containers(ds)[AGENT]
    args = agent.get("args", [])
    c.check(args[:1] == ["serve"] and "--host-root=/host" in args,
            "agent: `serve --host-root=/host`")
    c.check("--node-name=$(NODE_NAME)" in args and env_field(agent, "NODE_NAME") == "spec.nodeName",
            "agent: --node-name from spec.nodeName")
    c.check(env_field(agent, "DBUS_SYSTEM_BUS_ADDRESS")
            == "unix:path=/host/run/dbus/system_bus_socket",
            "agent: DBUS_SYSTEM_BUS_ADDRESS is the host's bus under /host")
    c.check(agent.get("resources") == {"requests": {"cpu": "5m", "memory": "24Mi"},
                                       "limits": {"memory": "64Mi"}},
            "agent: requests 5m/24Mi, limit 64Mi (sized from docs/performance.md)")
    c.check(agent.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz"
            and agent.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz",
            "agent: liveness /healthz, readiness /readyz")
    c.check(agent.get("image", "").startswith("quay.io/routewarden/routewarden:"),
            "agent: image is the placeholder quay.io/routewarden/routewarden (kustomize images:)")
    check_host_mounts(c, ds, agent)


def check_host_mounts(c, ds, agent):
    volumes = {v["name"]: v for v in ds["spec"]["template"]["spec"].get("volumes", [])}
    host = {n: v["hostPath"]["path"] for n, v in volumes.items() if "hostPath" in v}
    c.check(set(host.values()) == HOST_PATHS,
            f"pod: hostPath volumes are exactly {sorted(HOST_PATHS)}")
    mounts = {m["name"]: m for m in agent.get("volumeMounts", [])}
    for name, path in host.items():
        m = mounts.get(name, {})
        c.check(m.get("readOnly") is True and m.get("mountPath") == "/host" + path,
                f"agent: {path} mounted read-only at /host{path}")
    others = [ctr for n, ctr in containers(ds).items() if n != AGENT]
    c.check(not any(m["name"] in host for o in others for m in o.get("volumeMounts", [])),
            "pod: only the agent mounts host paths")


def probe_hosts(agent):
    return {agent[p]["httpGet"].get("host") for p in ("livenessProbe", "readinessProbe")}


def check_listener(c, overlay, ds):
    agent = containers(ds)[AGENT]
    listen = [a for a in agent["args"] if a.startswith("--listen")]
    if overlay == "kubernetes":
        c.check(listen == ["--listen=$(HOST_IP):9810"] and env_field(agent, "HOST_IP") == "status.hostIP",
                "agent: listens on the node IP (status.hostIP), port 9810")
        c.check(probe_hosts(agent) == {None}, "agent: probes go to the pod (node) IP it listens on")
    else:
        c.check(listen == [], "agent: keeps the default --listen=127.0.0.1:9810")
        c.check(probe_hosts(agent) == {"127.0.0.1"}, "agent: probes go to 127.0.0.1")


def check_metrics_path(c, overlay, docs):
    svc, sm, ds = docs[("Service", "routewarden")], docs[("ServiceMonitor", "routewarden")], \
        docs[("DaemonSet", "routewarden")]
    port = next(p for p in svc["spec"]["ports"] if p["name"] == "metrics")
    owners = [n for n, ctr in containers(ds).items()
              for p in ctr.get("ports", []) if p.get("name") == port["targetPort"]]
    expected = [AGENT] if overlay == "kubernetes" else [PROXY]
    c.check(owners == expected, f"Service port metrics -> container port of {expected[0]}")
    selector = svc["spec"]["selector"]
    labels = ds["spec"]["template"]["metadata"]["labels"]
    c.check(selector.items() <= labels.items(), "Service selects the DaemonSet's pods")
    c.check(sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items(),
            "ServiceMonitor selects the Service")
    ep = sm["spec"]["endpoints"][0]
    c.check(ep["port"] == "metrics", "ServiceMonitor scrapes the port named metrics")
    c.check({"action": "replace", "sourceLabels": ["__meta_kubernetes_pod_node_name"],
             "targetLabel": "node"} in ep.get("relabelings", []),
            "ServiceMonitor: node label from __meta_kubernetes_pod_node_name")
    scheme = "http" if overlay == "kubernetes" else "https"
    c.check(ep.get("scheme") == scheme, f"ServiceMonitor: scheme {scheme}")


def metric_names(expr):
    return set(re.findall(r"\b(routewarden_[a-z_]+?)(?:_bucket|_sum|_count)?\b", expr))


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


def check_rules(c, docs):
    rules = [r for g in docs[("PrometheusRule", "routewarden")]["spec"]["groups"]
             for r in g["rules"]]
    alerts = {r["alert"] for r in rules if "alert" in r}
    c.check(REQUIRED_ALERTS <= alerts, f"alerts include {sorted(REQUIRED_ALERTS)}")
    for rule in rules:
        check_alert(c, rule)
        desc = rule["annotations"]["description"]
        if rule["alert"].startswith("RoutewardenRoute") or rule["alert"] in (
                "RoutewardenSourceDown", "RoutewardenAgentDown"):
            c.check("$labels.node" in desc, f"{rule['alert']}: description names the node")
    missing = next(r for r in rules if r["alert"] == "RoutewardenRouteMissing")
    text = missing["annotations"]["description"]
    c.check(all(f"$labels.{k}" in text for k in ("destination", "gateway", "device", "table"))
            and "routewarden_route_drift_reason" in text,
            "RoutewardenRouteMissing: description names the route and its drift reasons")


def check_openshift(c, docs):
    ns = docs[("Namespace", "routewarden")]["metadata"]
    c.check(ns["labels"].get("openshift.io/user-monitoring") == "true"
            and "openshift.io/cluster-monitoring" not in ns["labels"],
            "Namespace: user workload monitoring, not cluster-monitoring")
    ds = docs[("DaemonSet", "routewarden")]
    ctrs = containers(ds)
    c.check(ctrs[AGENT]["securityContext"].get("seLinuxOptions") == {"type": "spc_t"}
            and "seLinuxOptions" not in ctrs[PROXY]["securityContext"],
            "SELinux: spc_t on the agent only")
    check_proxy(c, docs, ds, ctrs[PROXY])
    check_scraper(c, docs)
    check_scc(c, docs, ds)


def check_proxy(c, docs, ds, proxy):
    args = proxy["args"]
    c.check("--upstream=http://127.0.0.1:9810/" in args
            and "--secure-listen-address=[$(HOST_IP)]:9810" in args
            and env_field(proxy, "HOST_IP") == "status.hostIP",
            "kube-rbac-proxy: node IP :9810 (TLS) -> 127.0.0.1:9810")
    c.check("--allow-paths=/metrics" in args, "kube-rbac-proxy: lets through /metrics only")
    svc = docs[("Service", "routewarden")]
    secret = svc["metadata"].get("annotations", {}).get(
        "service.beta.openshift.io/serving-cert-secret-name")
    vols = {v["name"]: v for v in ds["spec"]["template"]["spec"]["volumes"]}
    tls = [m for m in proxy["volumeMounts"] if m["mountPath"] == "/etc/tls/private"]
    c.check(bool(secret) and bool(tls) and vols[tls[0]["name"]]["secret"]["secretName"] == secret,
            "kube-rbac-proxy: serves the service CA certificate of the Service's annotation")
    sa = ds["spec"]["template"]["spec"]["serviceAccountName"]
    c.check(bound_rules(docs, sa) >= {("authentication.k8s.io", "tokenreviews", "create"),
                                      ("authorization.k8s.io", "subjectaccessreviews", "create")},
            f"kube-rbac-proxy: ServiceAccount {sa} may create TokenReviews and SubjectAccessReviews")
    token = [m for m in proxy["volumeMounts"]
             if m["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount"]
    c.check(bool(token) and "projected" in vols[token[0]["name"]],
            "kube-rbac-proxy: API token projected into the proxy only")


def bound_rules(docs, sa):
    """(apiGroup|nonResourceURL, resource, verb) granted to ServiceAccount sa by ClusterRoles."""
    granted = set()
    for (kind, _), b in docs.items():
        if kind not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        if not any(s["kind"] == "ServiceAccount" and s["name"] == sa for s in b["subjects"]):
            continue
        role = docs.get((b["roleRef"]["kind"], b["roleRef"]["name"]), {"rules": []})
        for r in role["rules"]:
            for verb in r["verbs"]:
                granted |= {(g, res, verb) for g in r.get("apiGroups", [])
                            for res in r.get("resources", [])}
                granted |= {("nonResourceURL", u, verb) for u in r.get("nonResourceURLs", [])}
    return granted


def check_scraper(c, docs):
    ep = docs[("ServiceMonitor", "routewarden")]["spec"]["endpoints"][0]
    tls = ep.get("tlsConfig", {})
    cm = docs.get(("ConfigMap", tls.get("ca", {}).get("configMap", {}).get("name")), {})
    c.check(cm.get("metadata", {}).get("annotations", {}).get(
        "service.beta.openshift.io/inject-cabundle") == "true"
        and tls["ca"]["configMap"]["key"] == "service-ca.crt",
        "ServiceMonitor: CA from the service CA bundle ConfigMap")
    c.check(tls.get("serverName") == "routewarden.routewarden.svc",
            "ServiceMonitor: serverName routewarden.routewarden.svc")
    c.check("caFile" not in tls and "bearerTokenFile" not in ep,
            "ServiceMonitor: no file paths (user workload monitoring refuses them)")
    cred = ep.get("authorization", {}).get("credentials", {})
    secret = docs.get(("Secret", cred.get("name")), {})
    sa = secret.get("metadata", {}).get("annotations", {}).get("kubernetes.io/service-account.name")
    c.check(secret.get("type") == "kubernetes.io/service-account-token" and cred.get("key") == "token",
            "ServiceMonitor: bearer token from a service-account-token Secret")
    c.check(bool(sa) and ("nonResourceURL", "/metrics", "get") in bound_rules(docs, sa),
            f"ServiceMonitor: the token's ServiceAccount {sa} may get /metrics")


def check_scc(c, docs, ds):
    scc = next(d for (k, _), d in docs.items() if k == "SecurityContextConstraints")
    name = scc["metadata"]["name"]
    c.check(scc["allowHostNetwork"] and scc["allowHostDirVolumePlugin"]
            and scc["readOnlyRootFilesystem"] and not scc["allowPrivilegedContainer"]
            and not scc["allowHostPID"] and not scc["allowHostIPC"]
            and scc.get("allowPrivilegeEscalation") is False,
            f"SCC {name}: hostNetwork, hostPath, read-only root; not privileged, no host PID/IPC")
    c.check(not scc["allowedCapabilities"] and not scc["defaultAddCapabilities"]
            and scc["requiredDropCapabilities"] == ["ALL"], f"SCC {name}: no capabilities")
    c.check(scc["runAsUser"]["type"] in ("MustRunAsNonRoot", "MustRunAsRange"),
            f"SCC {name}: non-root users only")
    c.check(not scc.get("users") and not scc.get("groups"), f"SCC {name}: granted by RBAC only")
    pod = ds["spec"]["template"]["spec"]
    kinds = {k for v in pod["volumes"] for k in v if k != "name"}
    c.check(kinds <= set(scc["volumes"]) and set(scc["volumes"]) <= kinds,
            f"SCC {name}: volume types are exactly the pod's {sorted(kinds)}")
    sa = pod["serviceAccountName"]
    c.check(("security.openshift.io", "securitycontextconstraints", "use") in bound_rules(docs, sa),
            f"SCC {name}: ServiceAccount {sa} may use it")
    c.check(ds["spec"]["template"]["metadata"]["annotations"].get("openshift.io/required-scc") == name,
            f"DaemonSet: openshift.io/required-scc {name}")


def main():
    overlay, built = sys.argv[1], sys.argv[2]
    with open(built) as f:
        docs = index(d for d in yaml.safe_load_all(f) if d)
    c = Checker()
    ds = docs[("DaemonSet", "routewarden")]
    check_pod(c, ds)
    check_agent(c, ds)
    check_listener(c, overlay, ds)
    check_metrics_path(c, overlay, docs)
    check_rules(c, docs)
    if overlay == "openshift":
        check_openshift(c, docs)
    print(f"  policy {overlay}: {c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
