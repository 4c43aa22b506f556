#!/usr/bin/env python3
"""Validate built manifests offline against schemas.

Built-in kinds: the Kubernetes JSON schemas that the `kubernetes-validate` package
ships (no network), in strict mode (unknown fields fail), for every Kubernetes
version given. Custom resources (ServiceMonitor, PrometheusRule,
SecurityContextConstraints, MachineConfig): the schemas in tests/deploy/schemas/.
A kind with no schema fails.

usage: validate_manifests.py --k8s-version 1.27.0 [--k8s-version ...] [--self-test] FILE...

--self-test also breaks a copy of each object in a known way (a misspelt field, a
bad duration, a namespace on a cluster-scoped object, a misspelt field in a
MachineConfig's Ignition config) and fails unless every broken copy is rejected:
the validation can fail.
"""

import argparse
import copy
import pathlib
import sys

import jsonschema
import kubernetes_validate
import referencing
import yaml

SCHEMAS = pathlib.Path(__file__).resolve().parent / "schemas"

# (apiVersion, kind) -> schema file under SCHEMAS.
CUSTOM = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor-monitoring-v1.yaml",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule-monitoring-v1.yaml",
    ("security.openshift.io/v1", "SecurityContextConstraints"):
        "securitycontextconstraints-security-v1.yaml",
    ("machineconfiguration.openshift.io/v1", "MachineConfig"):
        "machineconfig-machineconfiguration-v1.yaml",
}


def load_registry():
    """All shipped schemas, addressable by file name for their $refs."""
    resources = []
    for path in sorted(SCHEMAS.glob("*.yaml")):
        contents = yaml.safe_load(path.read_text())
        resource = referencing.Resource.from_contents(contents)
        resources.append((contents["$id"], resource))
    return referencing.Registry().with_resources(resources)


def custom_validator(registry, file_name):
    schema = registry.contents(f"https://routewarden.invalid/schemas/{file_name}")
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, registry=registry)


def describe(doc):
    meta = doc.get("metadata", {})
    where = f"{meta.get('namespace')}/" if meta.get("namespace") else ""
    return f"{doc.get('kind')} {where}{meta.get('name')}"


def custom_errors(validator, doc):
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in validator.iter_errors(doc)]


def builtin_errors(doc, version):
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.SchemaNotFoundError as e:
        return [e.message]
    except kubernetes_validate.ValidationError as e:
        path = "/".join(map(str, e.path)) or "<root>"
        return [f"{path}: {e.message}"]
    return []


def validate_doc(doc, versions, validators):
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in CUSTOM:
        errors = custom_errors(validators[key], doc)
        return errors, "schema " + CUSTOM[key]
    errors = []
    for version in versions:
        errors += [f"[k8s {version}] {m}" for m in builtin_errors(doc, version)]
    return errors, "kubernetes " + ", ".join(versions) + " (strict)"


def _container(doc):
    return doc["spec"]["template"]["spec"]["containers"][0]


def _ignition_file(doc):
    """The first file of a MachineConfig's Ignition config (one is added if it has none)."""
    storage = doc["spec"].setdefault("config", {}).setdefault("storage", {})
    return storage.setdefault("files", [{"path": "/etc/routewarden-self-test"}])[0]


# kind -> (what is broken, how). Each must make a valid object invalid.
BREAKERS = {
    "Namespace": ("label value not a string",
                  lambda d: d["metadata"].setdefault("labels", {}).update({"x": 1})),
    "ServiceAccount": ("misspelt automountServiceAccountTokens",
                       lambda d: d.update({"automountServiceAccountTokens": False})),
    "Service": ("port as a string", lambda d: d["spec"]["ports"][0].update({"port": "9810"})),
    "DaemonSet": ("misspelt readOnlyRootFileSystem",
                  lambda d: _container(d)["securityContext"].update(
                      {"readOnlyRootFileSystem": True})),
    "ConfigMap": ("data value not a string", lambda d: d.update({"data": {"k": 1}})),
    "Secret": ("misspelt stringdata", lambda d: d.update({"stringdata": {}})),
    "ClusterRole": ("rule without verbs", lambda d: d["rules"][0].pop("verbs")),
    "ClusterRoleBinding": ("roleRef without name", lambda d: d["roleRef"].pop("name")),
    "RoleBinding": ("roleRef without name", lambda d: d["roleRef"].pop("name")),
    "ServiceMonitor": ("scrapeTimeout '10 s'",
                       lambda d: d["spec"]["endpoints"][0].update({"scrapeTimeout": "10 s"})),
    "PrometheusRule": ("misspelt `fro` in a rule",
                       lambda d: d["spec"]["groups"][0]["rules"][0].update({"fro": "1m"})),
    "SecurityContextConstraints": ("a namespace on a cluster-scoped object",
                                   lambda d: d["metadata"].update({"namespace": "x"})),
    "MachineConfig": ("misspelt `overwite` on an Ignition file",
                      lambda d: _ignition_file(d).update({"overwite": True})),
}


def self_test(doc, versions, validators):
    """Break a copy of doc; True when the validators reject it."""
    if doc["kind"] not in BREAKERS:
        print(f"  FAIL {describe(doc)}: no self-test breaks a {doc['kind']}; add one")
        return False
    reason, breaker = BREAKERS[doc["kind"]]
    broken = copy.deepcopy(doc)
    breaker(broken)
    errors, _ = validate_doc(broken, versions, validators)
    status = "ok" if errors else "FAIL"
    print(f"  {status:4} {describe(doc)} with {reason}: "
          f"{'rejected' if errors else 'ACCEPTED (the validation cannot fail here)'}")
    return bool(errors)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--k8s-version", action="append", required=True)
    parser.add_argument("--self-test", action="store_true")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    registry = load_registry()
    validators = {key: custom_validator(registry, f) for key, f in CUSTOM.items()}
    failed = 0
    for name in args.files:
        with open(name) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        for doc in docs:
            errors, against = validate_doc(doc, args.k8s_version, validators)
            status = "FAIL" if errors else "ok"
            print(f"  {status:4} {describe(doc)}: {against}")
            for message in errors:
                print(f"       {message}")
            failed += bool(errors)
            if args.self_test:
                failed += not self_test(doc, args.k8s_version, validators)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
