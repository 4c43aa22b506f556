"""The OpenShift overlay's promises: the namespace's monitoring labels, the TLS
proxy in front of the agent (its static authorization of exactly the scraper, its
TLS profile), the scraper's identity granting nothing else, and an SCC that
allows no more than the pod uses."""

import base64

import yaml

from policy_common import AGENT, PROXY, arg_value, bound_rules, containers, env_field

# OpenShift's intermediate TLS profile for TLS 1.2, in Go's names: ECDHE key
# exchange with AES-GCM or ChaCha20-Poly1305 (what the platform's own
# kube-rbac-proxies pass).
INTERMEDIATE_CIPHERS = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
}


def check_openshift(c, docs):
    labels = docs[("Namespace", "routewarden")]["metadata"].get("labels", {})
    # User workload monitoring selects every namespace not labelled "false": the
    # label is dropped rather than kept as a no-op "true".
    c.check("openshift.io/user-monitoring" not in labels
            and "openshift.io/cluster-monitoring" not in labels,
            "Namespace: no openshift.io/user-monitoring (a no-op unless \"false\") "
            "nor cluster-monitoring label")
    ds = docs[("DaemonSet", "routewarden")]
    ctrs = containers(ds)
    c.check(ctrs[AGENT]["securityContext"].get("seLinuxOptions") == {"type": "spc_t"}
            and "seLinuxOptions" not in ctrs[PROXY]["securityContext"],
            "SELinux: spc_t on the agent only")
    check_proxy(c, docs, ds, ctrs[PROXY])
    check_proxy_authorization(c, docs, ds, ctrs[PROXY])
    check_proxy_tls(c, ctrs[PROXY])
    check_scraper(c, docs)
    check_scc(c, docs, ds)


def check_proxy(c, docs, ds, proxy):
    args = proxy["args"]
    c.check("--secure-listen-address=[$(HOST_IP)]:9810" in args
            and env_field(proxy, "HOST_IP") == "status.hostIP",
            "kube-rbac-proxy: listens on the node IP, port 9810 (TLS)")
    c.check("--allow-paths=/metrics" in args, "kube-rbac-proxy: lets through /metrics only")
    svc = docs[("Service", "routewarden")]
    secret = svc["metadata"].get("annotations", {}).get(
        "service.beta.openshift.io/serving-cert-secret-name")
    tls = mounted_secret(ds, proxy, "/etc/tls/private")
    c.check(bool(secret) and tls == secret,
            "kube-rbac-proxy: serves the service CA certificate of the Service's annotation")
    sa = ds["spec"]["template"]["spec"]["serviceAccountName"]
    c.check(bound_rules(docs, sa) >= {("authentication.k8s.io", "tokenreviews", "create"),
                                      ("authorization.k8s.io", "subjectaccessreviews", "create")},
            f"kube-rbac-proxy: ServiceAccount {sa} may create TokenReviews and SubjectAccessReviews")
    vols = {v["name"]: v for v in ds["spec"]["template"]["spec"]["volumes"]}
    token = [m for m in proxy["volumeMounts"]
             if m["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount"]
    c.check(bool(token) and "projected" in vols[token[0]["name"]],
            "kube-rbac-proxy: API token projected into the proxy only")


def mounted_secret(ds, container, directory):
    """The name of the Secret the container mounts at `directory`, or None."""
    vols = {v["name"]: v for v in ds["spec"]["template"]["spec"]["volumes"]}
    for m in container.get("volumeMounts", []):
        if m["mountPath"].rstrip("/") == directory.rstrip("/"):
            return vols.get(m["name"], {}).get("secret", {}).get("secretName")
    return None


def secret_file(docs, name, key):
    """The text of `key` in the built Secret `name` (data or stringData), or None."""
    secret = docs.get(("Secret", name), {})
    if key in secret.get("stringData", {}):
        return secret["stringData"][key]
    if key in secret.get("data", {}):
        return base64.b64decode(secret["data"][key]).decode()
    return None


def scraper_identity(docs):
    """(namespace, service account) whose token the ServiceMonitor scrapes with."""
    ep = docs[("ServiceMonitor", "routewarden")]["spec"]["endpoints"][0]
    cred = ep.get("authorization", {}).get("credentials", {})
    secret = docs.get(("Secret", cred.get("name")), {}).get("metadata", {})
    return secret.get("namespace"), secret.get("annotations", {}).get(
        "kubernetes.io/service-account.name")


def check_proxy_authorization(c, docs, ds, proxy):
    """--config-file authorizes exactly the scraper to get /metrics, statically."""
    path = arg_value(proxy, "--config-file")
    directory, _, key = (path or "").rpartition("/")
    name = mounted_secret(ds, proxy, directory) if path else None
    text = secret_file(docs, name, key) if name else None
    c.check(text is not None,
            f"kube-rbac-proxy: --config-file={path} is a key of a Secret the proxy mounts ({name})")
    config = yaml.safe_load(text or "{}") or {}
    namespace, sa = scraper_identity(docs)
    want = [{"user": {"name": f"system:serviceaccount:{namespace}:{sa}"}, "verb": "get",
             "path": "/metrics", "resourceRequest": False}]
    static = config.get("authorization", {}).get("static")
    c.check(static == want and set(config) == {"authorization"}
            and set(config["authorization"]) == {"static"},
            f"kube-rbac-proxy: the static rule names exactly system:serviceaccount:{namespace}:{sa}, "
            "get /metrics, non-resource (and nothing else)")


def check_proxy_tls(c, proxy):
    suites = set((arg_value(proxy, "--tls-cipher-suites") or "").split(","))
    c.check(arg_value(proxy, "--tls-min-version") == "VersionTLS12",
            "kube-rbac-proxy: --tls-min-version=VersionTLS12")
    c.check(suites == INTERMEDIATE_CIPHERS,
            "kube-rbac-proxy: --tls-cipher-suites is the intermediate profile "
            "(ECDHE with AES-GCM or ChaCha20-Poly1305)")


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
    _, sa = scraper_identity(docs)
    c.check(secret.get("type") == "kubernetes.io/service-account-token" and cred.get("key") == "token"
            and bool(sa), f"ServiceMonitor: bearer token of ServiceAccount {sa} from its token Secret")
    c.check(not any(g == "nonResourceURL" for g, _, _ in bound_rules(docs, sa)),
            f"RBAC: the scraper {sa} is granted no non-resource URL (not the cluster's /metrics)")
    granting = sorted(name for (kind, name), d in docs.items() if kind in ("ClusterRole", "Role")
                      and any(r.get("nonResourceURLs") for r in d.get("rules", [])))
    c.check(not granting, f"RBAC: no role of the overlay grants a non-resource URL {granting or ''}")


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
