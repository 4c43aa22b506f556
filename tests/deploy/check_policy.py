#!/usr/bin/env python3
"""Check a built overlay against what routewarden's deployment promises.

Schemas say a manifest is well formed; this says it is the deployment we mean:
host network, every taint tolerated, the image's architecture selected, read-only
host mounts that start the pod on every kind of node without creating anything
on it and reach every file the agent reads there, no capabilities, a declared
listener the probes reach, metrics wired from a container port through the
Service to the ServiceMonitor, objects written in an order that lets the first
pods start, alerts with severities, summaries and runbooks that exist
(policy_alerts.py), on OpenShift the TLS proxy, its authorization and an SCC
that grants nothing more (policy_openshift.py), and remediation off, or with the
remediation component, on with no more privilege than it needs
(policy_remediation.py).

usage: check_policy.py kubernetes|openshift BUILT.yaml
           (a shipped overlay: remediation off, the agent as nobody)
       check_policy.py kubernetes|openshift BUILT.yaml --remediation BASE.yaml
           (the overlay with components/remediation; BASE.yaml: built without it)
       check_policy.py order BUILT.yaml     (the apply order only, for any build)
"""

import sys

import yaml

from policy_alerts import check_rules
from policy_common import AGENT, PROXY, Checker, arg_value, containers, env_field, host_volumes, index
from policy_openshift import check_openshift
from policy_remediation import check_off, check_on, node_files

# What is on each kind of node, as far as the pod's host mounts are concerned,
# and which files the agent reads there (under --host-root). A file the agent
# reads may be missing (plain Kubernetes has none; /etc/mcd-currentconfig.json
# appears after the first in-place update): it must still be reachable, through
# a mounted directory, as soon as it appears.
MACHINECONFIG_FILES = ["/etc/machine-config-daemon/currentconfig",
                       "/etc/machine-config-daemon/currentimage",
                       "/etc/mcd-currentconfig.json", "/etc/mcs-machine-config-content.json"]
NODE_KINDS = {
    "OpenShift": {"/etc", "/run/dbus", "/etc/machine-config-daemon"},
    "HyperShift": {"/etc", "/run/dbus", "/etc/machine-config-daemon"},
    "plain Kubernetes": {"/etc", "/run/dbus"},
}
AGENT_READS = ["/run/dbus/system_bus_socket"] + MACHINECONFIG_FILES
# hostPath types that make the kubelet or the container runtime create the path
# when it is missing ("" is no check at all: the runtime creates a directory).
CREATING_TYPES = {"", "DirectoryOrCreate", "FileOrCreate"}
# Kinds the DaemonSet's pods need before they can be created and run.
BEFORE_DAEMONSET = {"Namespace", "ServiceAccount", "SecurityContextConstraints", "Role",
                    "ClusterRole", "RoleBinding", "ClusterRoleBinding", "ConfigMap", "Secret",
                    "Service"}


def check_pod(c, ds):
    pod = ds["spec"]["template"]["spec"]
    c.check(pod.get("hostNetwork") is True, "DaemonSet: hostNetwork (the node's routing table)")
    c.check(pod.get("tolerations") == [{"operator": "Exists"}], "DaemonSet: tolerates every taint")
    c.check(pod.get("priorityClassName") == "system-cluster-critical",
            "DaemonSet: priorityClassName system-cluster-critical (an add-on, as node-exporter)")
    c.check(pod.get("nodeSelector") == {"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"},
            "DaemonSet: selects linux nodes of the image's architecture (amd64)")
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
    host = host_volumes(ds)
    mounts = {m["name"]: m for m in agent.get("volumeMounts", [])}
    for name, (path, kind) in host.items():
        m = mounts.get(name, {})
        c.check(m.get("readOnly") is True and m.get("mountPath") == "/host" + path,
                f"agent: {path} mounted read-only at /host{path}")
        c.check(kind not in CREATING_TYPES,
                f"pod: hostPath {path} has type {kind or '(empty)'}, which never creates it on the host")
    others = [ctr for n, ctr in containers(ds).items() if n != AGENT]
    c.check(not any(m["name"] in host for o in others for m in o.get("volumeMounts", [])),
            "pod: only the agent mounts host paths")
    for node, dirs in NODE_KINDS.items():
        check_node_kind(c, node, dirs, host, mounts)


def check_node_kind(c, node, dirs, host, mounts):
    """The pod starts on this kind of node, creates nothing there, and sees what the agent reads."""
    missing = {name: (p, kind) for name, (p, kind) in host.items() if p not in dirs}
    stops = sorted(p for p, kind in missing.values() if kind not in CREATING_TYPES)
    creates = sorted(p for p, kind in missing.values() if kind in CREATING_TYPES)
    c.check(not stops and not creates,
            f"{node} node: the pod starts and creates nothing on the host"
            + (f" (missing, the pod does not start: {stops})" if stops else "")
            + (f" (created on the host: {creates})" if creates else ""))
    visible = [p for name, (p, _) in host.items()
               if p in dirs and mounts.get(name, {}).get("readOnly") is True]
    unreachable = [f for f in AGENT_READS if not any(f.startswith(d + "/") for d in visible)]
    c.check(not unreachable,
            f"{node} node: every file the agent reads is under a read-only mounted directory"
            + (f" (not: {unreachable})" if unreachable else ""))


def probe(agent, which):
    return agent.get(which, {}).get("httpGet", {})


def check_listener(c, overlay, ds):
    agent = containers(ds)[AGENT]
    listen = [a for a in agent["args"] if a.startswith("--listen")]
    declared = {p["containerPort"] for p in agent.get("ports", [])}
    probes = [probe(agent, p) for p in ("livenessProbe", "readinessProbe")]
    if overlay == "kubernetes":
        c.check(listen == ["--listen=$(HOST_IP):9810"] and env_field(agent, "HOST_IP") == "status.hostIP",
                "agent: listens on the node IP (status.hostIP), port 9810")
        c.check(all(p.get("host") is None and p.get("port") == 9810 for p in probes),
                "agent: probes go to the pod (node) IP and port it listens on")
        c.check(9810 in declared, "agent: its port 9810 is declared in the pod spec")
        return
    address = arg_value(agent, "--listen") or ""
    host, _, port = address.rpartition(":")
    port = int(port) if port.isdigit() else None
    c.check(host == "127.0.0.1" and port is not None and not 9000 <= port <= 9999,
            f"agent: listens on loopback only, outside 9000-9999 (OpenShift's host port "
            f"registry keeps that range for reachable ports): --listen={address}")
    c.check(port in declared, f"agent: its loopback port {port} is declared in the pod spec")
    c.check(all(p.get("host") == "127.0.0.1" and p.get("port") == port for p in probes),
            f"agent: probes go to 127.0.0.1:{port}")
    c.check(arg_value(containers(ds)[PROXY], "--upstream") == f"http://127.0.0.1:{port}/",
            f"kube-rbac-proxy: upstream is the agent's listener http://127.0.0.1:{port}/")


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


def check_order(c, ordered):
    """`kubectl apply` writes objects in the order of the build: what the pods need comes first."""
    kinds = [d["kind"] for d in ordered]
    last = kinds.index("DaemonSet")
    late = sorted({k for k in kinds[last + 1:] if k in BEFORE_DAEMONSET})
    c.check(not late, "order: the Namespace, service accounts, SCC, RBAC, ConfigMaps, Secrets and "
            f"Service come before the DaemonSet {('(after it: ' + ', '.join(late) + ')') if late else ''}")


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def main():
    args = sys.argv[1:]
    if len(args) not in (2, 4) or (len(args) == 4 and args[2] != "--remediation"):
        print(__doc__, file=sys.stderr)
        return 2
    overlay, ordered = args[0], load(args[1])
    docs = index(ordered)
    c = Checker()
    if overlay == "order":
        check_order(c, ordered)
        return 1 if c.failed else 0
    ds = docs[("DaemonSet", "routewarden")]
    check_pod(c, ds)
    check_agent(c, ds)
    check_listener(c, overlay, ds)
    check_metrics_path(c, overlay, docs)
    check_order(c, ordered)
    check_rules(c, docs)
    if overlay == "openshift":
        check_openshift(c, docs)
    if len(args) == 4:
        check_on(c, overlay, ordered, load(args[3]), node_files())
    else:
        check_off(c, ordered)
    print(f"  policy {overlay}: {c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
