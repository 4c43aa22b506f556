#!/usr/bin/env python3
"""Break each promise of the remediation component one at a time: the checks of
policy_remediation.py must name each breakage (they can fail).

    remediation_self_test.py BASE.yaml BUILT.yaml WORKDIR
        BASE.yaml: manifests/overlays/openshift built; BUILT.yaml: the same with
        components/remediation (OpenShift: the pod has a second container, the SCC).

Most breakages change a copy of the build (and of the rules file, its data URLs
re-encoded so that only the breakage differs). The component's JSON-patch `test`
op is tried for real, with kustomize in WORKDIR: with the agent moved after the
proxy, the shipped component must not build, and a copy of it without the op
builds with --remediate=on on the proxy, which the checks must catch.
"""

import copy
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

import yaml

import own_overlay
from policy_common import AGENT, PROXY, Checker, containers
from policy_remediation import (COMPONENT, ON, RULES_FILE, VOLUME, check_off, check_on,
                                machineconfigs, parse_rules)

MOVE_AGENT_LAST = {
    "target": {"group": "apps", "version": "v1", "kind": "DaemonSet", "name": "routewarden"},
    "patch": "- op: move\n  from: /spec/template/spec/containers/0\n"
             "  path: /spec/template/spec/containers/-\n",
}
TEST_FAILED = "testing value /spec/template/spec/containers/0/name failed"


class Build:
    """A copy of a build and of the rules file, to break."""

    def __init__(self, ordered, rules):
        self.ordered, self.rules = copy.deepcopy(ordered), rules

    def kind(self, kind):
        return next(d for d in self.ordered if d["kind"] == kind)

    def pod(self):
        return self.kind("DaemonSet")["spec"]["template"]["spec"]

    def container(self, name):
        return containers(self.kind("DaemonSet"))[name]

    def pool(self, role):
        return next(mc for mc in machineconfigs(self.ordered)
                    if mc["metadata"]["labels"].get("machineconfiguration.openshift.io/role") == role)

    def file(self, role):
        return self.pool(role)["spec"]["config"]["storage"]["files"][0]

    def set_rules(self, text):
        """A rules file of another content, installed as such by every MachineConfig."""
        self.rules = text
        for mc in machineconfigs(self.ordered):
            mc["spec"]["config"]["storage"]["files"][0]["contents"]["source"] = data_url(text)


def data_url(text):
    return "data:," + urllib.parse.quote(text, safe="")


def other_uid(b):
    user = parse_rules(b.rules)[0]
    b.set_rules(b.rules.replace(f'"{user}"', f'"{int(user) + 1}"'))


def grant_before(b, at, action):
    """A rule that grants `action` to everyone, inserted before `at`."""
    block = f'    if (action.id === "{action}") {{\n        return polkit.Result.YES;\n    }}\n'
    b.rules = b.rules.replace(at, block + at, 1)
    b.set_rules(b.rules)


def host_path(b):
    b.pod()["volumes"].append({"name": "host-run", "hostPath": {"path": "/run", "type": "Directory"}})
    b.container(AGENT)["volumeMounts"].append({"name": "host-run", "mountPath": "/host/run",
                                               "readOnly": True})


GUARD = "    if (subject.user"
# what -> (how, words of the check that must fail).
ON_BREAKAGES = {
    "the rule names another UID": (other_uid, "grants to subject.user"),
    "the agent runs as another UID than the rule names":
        (lambda b: b.pod()["securityContext"].update(runAsUser=65533), "grants to subject.user"),
    "a data URL that differs from the rules file":
        (lambda b: b.file("worker")["contents"].update(source=data_url(b.rules.replace("verb", "vreb"))),
         "decodes byte for byte"),
    "mode 0644 written as 644 (decimal)": (lambda b: b.file("master").update(mode=644), "mode 420"),
    "the rules file outside rules.d":
        (lambda b: b.file("master").update(path="/etc/polkit-1/localauthority/" + RULES_FILE),
         "the file is /etc/polkit-1/rules.d/"),
    "a unit in a MachineConfig":
        (lambda b: b.pool("worker")["spec"]["config"].update(
            systemd={"units": [{"name": "x.service", "enabled": True}]}), "installs one file and nothing else"),
    "the master pool's MachineConfig missing":
        (lambda b: b.ordered.remove(b.pool("master")), "one MachineConfig per pool"),
    "a MachineConfig without its role label":
        (lambda b: b.pool("worker")["metadata"]["labels"].pop("machineconfiguration.openshift.io/role"),
         "one MachineConfig per pool"),
    "another action granted":
        (lambda b: grant_before(b, "});", "org.freedesktop.login1.reboot"), "grants exactly"),
    "systemd's verb not checked":
        (lambda b: b.set_rules(b.rules.replace(' && action.lookup("verb") === "restart"', "")),
         "grants exactly"),
    "a grant before the user is checked":
        (lambda b: grant_before(b, GUARD, "org.freedesktop.NetworkManager.network-control"),
         "the shape this check reads"),
    f"{ON} twice": (lambda b: b.container(AGENT)["args"].append(ON), f"exactly one {ON}"),
    f"{ON} on the proxy too": (lambda b: b.container(PROXY)["args"].append(ON), f"exactly one {ON}"),
    "the state volume mounted in the proxy too":
        (lambda b: b.container(PROXY)["volumeMounts"].append({"name": VOLUME, "mountPath": "/run/routewarden"}),
         "on the agent's container only"),
    "the state volume mounted read-only":
        (lambda b: next(m for m in b.container(AGENT)["volumeMounts"] if m["name"] == VOLUME)
         .update(readOnly=True), "mounted writable"),
    "a host path added": (host_path, "no host path added"),
    "the root file system writable":
        (lambda b: b.container(AGENT)["securityContext"].update(readOnlyRootFilesystem=False), "still read-only"),
    "a capability added":
        (lambda b: b.container(AGENT)["securityContext"]["capabilities"].update(add=["NET_ADMIN"]),
         "drops ALL capabilities"),
    "privileged": (lambda b: b.container(AGENT)["securityContext"].update(privileged=True),
                   "drops ALL capabilities"),
    "root": (lambda b: b.pod()["securityContext"].update(runAsUser=0), "non-root UID"),
    "another change to the DaemonSet":
        (lambda b: b.container(AGENT)["resources"]["limits"].update(memory="128Mi"), "differs from the overlay's"),
    "the SCC without emptyDir":
        (lambda b: b.kind("SecurityContextConstraints")["volumes"].remove("emptyDir"), "admits emptyDir"),
}
OFF_BREAKAGES = {
    "--remediate=dry-run in a shipped overlay":
        (lambda b: b.container(AGENT)["args"].append("--remediate=dry-run"), "no --remediate argument"),
    "a MachineConfig in a shipped overlay":
        (lambda b: b.ordered.append({"kind": "MachineConfig", "metadata": {"name": "x"}}), "no MachineConfig"),
}


def failures(check, *args):
    c = Checker(quiet=True)
    check(c, *args)
    return c.failures


def caught(what, found, expected):
    """One line for the breakage; True when a failed check has the expected words."""
    hit = next((f for f in found if expected in f), None)
    print(f"  {'ok  ' if hit else 'FAIL'} {what}: "
          + (f"caught ({hit})" if hit else f"NOT CAUGHT by \"{expected}\" (failed: {found})"))
    return hit is not None


def in_memory(base, built, rules):
    ok = True
    for what, (breaker, expected) in ON_BREAKAGES.items():
        b = Build(built, rules)
        breaker(b)
        if (b.ordered, b.rules) == (built, rules):
            print(f"  FAIL {what}: the breakage changes nothing (the self-test is out of date)")
            ok = False
            continue
        ok &= caught(what, failures(check_on, "openshift", b.ordered, base, b.rules.encode()), expected)
    for what, (breaker, expected) in OFF_BREAKAGES.items():
        b = Build(base, rules)
        breaker(b)
        ok &= caught(what, failures(check_off, b.ordered), expected)
    return ok


def kustomize(directory):
    run = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True)
    docs = [d for d in yaml.safe_load_all(run.stdout) if d] if run.returncode == 0 else None
    return docs, run.stderr.strip()


def without_test_ops(out):
    """A copy of the component with its JSON-patch `test` ops taken out."""
    shutil.copytree(COMPONENT, out, dirs_exist_ok=True)
    doc = yaml.safe_load((out / "kustomization.yaml").read_text())
    for patch in doc["patches"]:
        ops = yaml.safe_load(patch["patch"])
        patch["patch"] = yaml.safe_dump([op for op in ops if op.get("op") != "test"])
    (out / "kustomization.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


def test_op(work, rules):
    """The agent moved after the proxy: the shipped component refuses to build, a
    copy without its `test` op puts the flag on the proxy and is caught."""
    reordered = own_overlay.write(work / "reordered", own_overlay.MANIFESTS / "overlays" / "openshift",
                                  patches=[MOVE_AGENT_LAST])
    base, why = kustomize(reordered)
    if base is None:
        print(f"  FAIL the openshift overlay with the agent moved after the proxy does not build: {why}")
        return False
    shipped = own_overlay.write(work / "shipped", reordered, [COMPONENT])
    built, why = kustomize(shipped)
    ok = caught("the agent not the first container, with the test op",
                [f"the build fails: {why}"] if built is None else [], TEST_FAILED)
    copied = own_overlay.write(work / "without-test", reordered, [without_test_ops(work / "component")])
    built, why = kustomize(copied)
    found = [f"the copy does not build: {why}"] if built is None else \
        failures(check_on, "openshift", built, base, rules)
    return caught("the agent not the first container, without the test op", found,
                  f"exactly one {ON}") and ok


def load(path):
    return [d for d in yaml.safe_load_all(Path(path).read_text()) if d]


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    base, built = load(argv[0]), load(argv[1])
    rules = (COMPONENT / RULES_FILE).read_bytes()
    shipped = failures(check_on, "openshift", built, base, rules) + failures(check_off, base)
    print(f"  {'FAIL' if shipped else 'ok  '} nothing broken: the checks pass"
          + (f" (failed: {shipped})" if shipped else ""))
    ok = not shipped
    ok &= in_memory(base, built, rules.decode())
    ok &= test_op(Path(argv[2]).resolve(), rules)
    n = len(ON_BREAKAGES) + len(OFF_BREAKAGES) + 2
    print(f"  remediation self-test: {n} breakages, {'all caught' if ok else 'NOT ALL CAUGHT'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
