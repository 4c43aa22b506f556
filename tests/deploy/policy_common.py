"""What the policy checks share: a result counter and readers of built objects."""

AGENT = "routewarden"
PROXY = "kube-rbac-proxy"


class Checker:
    """Collects named pass/fail results and prints them (quiet: keeps the failures
only, for the self-tests that expect a given check to fail)."""

    def __init__(self, quiet=False):
        self.failed = 0
        self.passed = 0
        self.quiet = quiet
        self.failures = []

    def check(self, ok, what):
        if not self.quiet:
            print(f"  {'ok  ' if ok else 'FAIL'} {what}")
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            self.failures.append(what)
        return ok


def index(docs):
    """(kind, name) -> object."""
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def containers(ds):
    return {c["name"]: c for c in ds["spec"]["template"]["spec"]["containers"]}


def host_volumes(ds):
    """name -> (host path, type) of the pod's hostPath volumes."""
    return {v["name"]: (v["hostPath"]["path"].rstrip("/") or "/", v["hostPath"].get("type", ""))
            for v in ds["spec"]["template"]["spec"].get("volumes", []) if "hostPath" in v}


def env_field(container, name):
    for e in container.get("env", []):
        if e["name"] == name:
            return e.get("value") or e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    return None


def arg_value(container, flag):
    """The value of `--flag=value` in the container's args, or None."""
    values = [a.split("=", 1)[1] for a in container.get("args", []) if a.startswith(flag + "=")]
    return values[0] if len(values) == 1 else None


def bound_rules(docs, sa):
    """(apiGroup|nonResourceURL, resource, verb) granted to ServiceAccount sa by the built roles."""
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
