#!/usr/bin/env python3
"""Break each promise of the remediation component one at a time: the checks of
policy_remediation.py must name each breakage (they can fail).

    remediation_self_test.py BASE.yaml BUILT.yaml WORKDIR
        BASE.yaml: manifests/overlays/openshift built; BUILT.yaml: the same with
        components/remediation (OpenShift: the pod has a second container, the SCC).

Most breakages change a copy of the build (and of the component's node files, the
MachineConfigs re-encoded so that only the breakage differs). The component's
JSON-patch `test` op is tried for real, with kustomize in WORKDIR: with the agent
moved after the proxy, the shipped component must not build, and a copy of it
without the op builds with --remediate=on on the proxy, which the checks must catch.
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
from policy_remediation import (COMPONENT, INSTALLED, NOBODY, ON, RULES_DIR, RULES_FILE, SYSUSERS_FILE,
                                SYSUSERS_PATH, UNIT_FILE, VOLUME, check_off, check_on, machineconfigs,
                                node_files, parse_rules, parse_sysusers)

MOVE_AGENT_LAST = {
    "target": {"group": "apps", "version": "v1", "kind": "DaemonSet", "name": "routewarden"},
    "patch": "- op: move\n  from: /spec/template/spec/containers/0\n"
             "  path: /spec/template/spec/containers/-\n",
}
TEST_FAILED = "testing value /spec/template/spec/containers/0/name failed"
RULES_PATH = RULES_DIR + RULES_FILE


class Build:
    """A copy of a build and of the component's node files (text by name), to break."""

    def __init__(self, ordered, files):
        self.ordered, self.files = copy.deepcopy(ordered), dict(files)

    def kind(self, kind):
        return next(d for d in self.ordered if d["kind"] == kind)

    def pod(self):
        return self.kind("DaemonSet")["spec"]["template"]["spec"]

    def container(self, name):
        return containers(self.kind("DaemonSet"))[name]

    def pool(self, role):
        return next(mc for mc in machineconfigs(self.ordered)
                    if mc["metadata"]["labels"].get("machineconfiguration.openshift.io/role") == role)

    def entries(self, role):
        return self.pool(role)["spec"]["config"]["storage"]["files"]

    def file(self, role, path):
        return next(f for f in self.entries(role) if f["path"] == path)

    def unit(self, role):
        return self.pool(role)["spec"]["config"]["systemd"]["units"][0]

    def set_file(self, name, text):
        """A node file of another content, installed as such by every MachineConfig."""
        self.files[name] = text
        for mc in machineconfigs(self.ordered):
            config = mc["spec"]["config"]
            for f in config["storage"]["files"]:
                if INSTALLED.get(f["path"]) == name:
                    f["contents"]["source"] = data_url(text)
            for unit in config["systemd"]["units"]:
                if unit["name"] == name:
                    unit["contents"] = text

    def edit(self, name, old, new):
        assert old in self.files[name], f"{old!r} not in {name}: the self-test is out of date"
        self.set_file(name, self.files[name].replace(old, new))

    def run_as(self, uid, gid):
        self.pod()["securityContext"].update(runAsUser=uid, runAsGroup=gid)

    def encoded(self):
        return {name: text.encode() for name, text in self.files.items()}


def data_url(text):
    return "data:," + urllib.parse.quote(text, safe="")


def user_line(b):
    return next(line for line in b.files[SYSUSERS_FILE].splitlines() if line.startswith("u "))


def edit_user_line(b, old, new):
    line = user_line(b)
    b.edit(SYSUSERS_FILE, line, line.replace(old, new))


def other_user(b):
    user = parse_rules(b.files[RULES_FILE])[0]
    b.edit(RULES_FILE, f'"{user}"', f'"{user}2"')


def uid(b):
    return parse_sysusers(b.files[SYSUSERS_FILE])[1]


def other_uid(b):
    edit_user_line(b, f" {uid(b)} ", f" {uid(b) + 1} ")


def grant_to(b, user, user_uid, run_as):
    """The rule and the sysusers line naming `user` with `user_uid`, the agent running as `run_as`."""
    name, made = parse_sysusers(b.files[SYSUSERS_FILE])
    b.edit(RULES_FILE, f'"{name}"', f'"{user}"')
    edit_user_line(b, f"u {name} {made} ", f"u {user} {user_uid} ")
    b.run_as(run_as, run_as)


def uid_on_container(b):
    sc = b.pod()["securityContext"]
    own = {"runAsUser": sc["runAsUser"], "runAsGroup": sc["runAsGroup"]}
    b.run_as(NOBODY, NOBODY)
    b.container(AGENT)["securityContext"].update(own)


def grant_before(b, at, action):
    """A rule that grants `action` to everyone, inserted before `at`."""
    block = f'    if (action.id === "{action}") {{\n        return polkit.Result.YES;\n    }}\n'
    b.set_file(RULES_FILE, b.files[RULES_FILE].replace(at, block + at, 1))


def host_path(b):
    b.pod()["volumes"].append({"name": "host-run", "hostPath": {"path": "/run", "type": "Directory"}})
    b.container(AGENT)["volumeMounts"].append({"name": "host-run", "mountPath": "/host/run",
                                               "readOnly": True})


GUARD = "    if (subject.user"
SYSUSERS_SHAPE = f"{SYSUSERS_FILE}: one line"
UNIT_RUNS = f"{UNIT_FILE}: a oneshot that runs systemd-sysusers on"
# what -> (how, words of the check that must fail).
USER_BREAKAGES = {
    "the rule names another user than the sysusers line": (other_user, "grants to subject.user the user"),
    "a sysusers UID other than the agent's runAsUser": (other_uid, "is the agent's runAsUser and runAsGroup"),
    "the agent runs as another UID than the sysusers line gives":
        (lambda b: b.run_as(65533, 65533), "is the agent's runAsUser and runAsGroup"),
    f"runAsGroup left at {NOBODY}":
        (lambda b: b.pod()["securityContext"].update(runAsGroup=NOBODY), "runAsGroup = runAsUser"),
    f"the component granting to nobody (u nobody {NOBODY}, runAsUser {NOBODY})":
        (lambda b: grant_to(b, "nobody", NOBODY, NOBODY), f"is not the base's {NOBODY}"),
    "the rule and the sysusers line naming a user the node has (nobody) with the agent's UID":
        (lambda b: grant_to(b, "nobody", uid(b), uid(b)), "makes the agent's own user"),
    "a sysusers group line, not a user": (lambda b: edit_user_line(b, "u ", "g "), SYSUSERS_SHAPE),
    "a sysusers UID:GID": (lambda b: edit_user_line(b, f" {uid(b)} ", f" {uid(b)}:{uid(b)} "), SYSUSERS_SHAPE),
    "a sysusers home other than /":
        (lambda b: edit_user_line(b, " / ", " /var/lib/routewarden "), SYSUSERS_SHAPE),
    "a sysusers login shell": (lambda b: edit_user_line(b, "/usr/sbin/nologin", "/bin/bash"), SYSUSERS_SHAPE),
    "a second sysusers line (the user in wheel)":
        (lambda b: b.set_file(SYSUSERS_FILE, b.files[SYSUSERS_FILE] + "m routewarden wheel\n"), SYSUSERS_SHAPE),
    "another action granted":
        (lambda b: grant_before(b, "});", "org.freedesktop.login1.reboot"), "grants exactly"),
    "systemd's verb not checked":
        (lambda b: b.edit(RULES_FILE, ' && action.lookup("verb") === "restart"', ""), "grants exactly"),
    "a grant before the user is checked":
        (lambda b: grant_before(b, GUARD, "org.freedesktop.NetworkManager.network-control"),
         "(the shape this check reads)"),
}


def add_unit(b):
    b.pool("worker")["spec"]["config"]["systemd"]["units"].append({"name": "x.service", "enabled": True})


DROP_IN_LINE = "ExecStartPost=/usr/bin/chmod 0666 /etc/passwd"
DROP_IN = {"name": "x.conf", "contents": f"[Service]\n{DROP_IN_LINE}\n"}
NODE_BREAKAGES = {
    "a data URL that differs from the rules file":
        (lambda b: b.file("worker", RULES_PATH)["contents"].update(
            source=data_url(b.files[RULES_FILE].replace("verb", "vreb"))),
         f"the data URL of {RULES_PATH} decodes byte for byte"),
    "a data URL that differs from the sysusers file":
        (lambda b: b.file("master", SYSUSERS_PATH)["contents"].update(
            source=data_url(b.files[SYSUSERS_FILE].replace(" / ", " /root "))),
         f"the data URL of {SYSUSERS_PATH} decodes byte for byte"),
    "mode 0644 written as 644 (decimal)":
        (lambda b: b.file("master", RULES_PATH).update(mode=644), f"{RULES_PATH} has mode 420"),
    "the sysusers file world-writable (0666)":
        (lambda b: b.file("worker", SYSUSERS_PATH).update(mode=0o666), f"{SYSUSERS_PATH} has mode 420"),
    "the rules file owned by the agent's user (it could rewrite its grants)":
        (lambda b: b.file("worker", RULES_PATH).update(user={"name": "routewarden"}), "owned by root"),
    "a line appended to the sysusers file":
        (lambda b: b.file("master", SYSUSERS_PATH).update(append=[{"source": data_url("m routewarden wheel\n")}]),
         "written whole"),
    "the rules file outside rules.d":
        (lambda b: b.file("master", RULES_PATH).update(path="/etc/polkit-1/localauthority/" + RULES_FILE),
         "installs exactly the files"),
    "the sysusers file missing from the worker pool's MachineConfig":
        (lambda b: b.entries("worker").remove(b.file("worker", SYSUSERS_PATH)), "installs exactly the files"),
    "a kernel argument in a MachineConfig":
        (lambda b: b.pool("master")["spec"].update(kernelArguments=["selinux=0"]),
         "installs files and units and nothing else"),
    "a second unit in a MachineConfig": (add_unit, "exactly one unit"),
    "the unit missing from the master pool's MachineConfig":
        (lambda b: b.pool("master")["spec"]["config"].pop("systemd"), "exactly one unit"),
    "the unit disabled": (lambda b: b.unit("worker").update(enabled=False), f"{UNIT_FILE} enabled"),
    "the unit masked": (lambda b: b.unit("master").update(mask=True), "not masked"),
    "a drop-in on the unit": (lambda b: b.unit("worker").update(dropins=[DROP_IN]), "no drop-in"),
    "the unit's contents differ from the file":
        (lambda b: b.unit("master").update(contents=b.files[UNIT_FILE].replace("oneshot", "simple")),
         f"the contents of {UNIT_FILE} are"),
    "the unit runs sysusers on every sysusers.d file":
        (lambda b: b.edit(UNIT_FILE, f"systemd-sysusers {SYSUSERS_PATH}", "systemd-sysusers"), UNIT_RUNS),
    "the unit runs a command more":
        (lambda b: b.edit(UNIT_FILE, "\n\n[Install]", f"\n{DROP_IN_LINE}\n\n[Install]"), UNIT_RUNS),
    "the unit wanted by no target": (lambda b: b.edit(UNIT_FILE, "WantedBy=multi-user.target", ""), UNIT_RUNS),
    "the master pool's MachineConfig missing":
        (lambda b: b.ordered.remove(b.pool("master")), "one MachineConfig per pool"),
    "a MachineConfig without its role label":
        (lambda b: b.pool("worker")["metadata"]["labels"].pop("machineconfiguration.openshift.io/role"),
         "one MachineConfig per pool"),
}
POD_BREAKAGES = {
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
    "root": (lambda b: b.run_as(0, 0), "still runs non-root"),
    "runAsNonRoot false": (lambda b: b.pod()["securityContext"].update(runAsNonRoot=False), "still runs non-root"),
    "the UID set on the agent's container, the pod's left as the base's":
        (uid_on_container, "differs from the overlay's"),
    "another change to the DaemonSet":
        (lambda b: b.container(AGENT)["resources"]["limits"].update(memory="128Mi"), "differs from the overlay's"),
    "the SCC without emptyDir":
        (lambda b: b.kind("SecurityContextConstraints")["volumes"].remove("emptyDir"), "admits emptyDir"),
}
ON_BREAKAGES = {**USER_BREAKAGES, **NODE_BREAKAGES, **POD_BREAKAGES}
OFF_BREAKAGES = {
    "--remediate=dry-run in a shipped overlay":
        (lambda b: b.container(AGENT)["args"].append("--remediate=dry-run"), "no --remediate argument"),
    "a MachineConfig in a shipped overlay":
        (lambda b: b.ordered.append({"kind": "MachineConfig", "metadata": {"name": "x"}}), "no MachineConfig"),
    "a shipped overlay running as 65532 (no passwd entry on the node)":
        (lambda b: b.run_as(65532, 65532), "runs as nobody"),
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


def broken(build, what, breaker):
    """`build` broken by `breaker`, or None (said) when the breaker no longer applies."""
    try:
        breaker(build)
    except Exception as e:  # a breaker that no longer fits the component: say which
        print(f"  FAIL {what}: the breakage does not apply ({type(e).__name__}: {e}); "
              "the self-test is out of date")
        return None
    return build


def in_memory(base, built, files):
    ok = True
    for what, (breaker, expected) in ON_BREAKAGES.items():
        b = broken(Build(built, files), what, breaker)
        if b is None or (b.ordered, b.files) == (built, files):
            if b is not None:
                print(f"  FAIL {what}: the breakage changes nothing (the self-test is out of date)")
            ok = False
            continue
        ok &= caught(what, failures(check_on, "openshift", b.ordered, base, b.encoded()), expected)
    for what, (breaker, expected) in OFF_BREAKAGES.items():
        b = broken(Build(base, files), what, breaker)
        ok &= b is not None and caught(what, failures(check_off, b.ordered), expected)
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


def test_op(work, files):
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
        failures(check_on, "openshift", built, base, files)
    return caught("the agent not the first container, without the test op", found,
                  f"exactly one {ON}") and ok


def load(path):
    return [d for d in yaml.safe_load_all(Path(path).read_text()) if d]


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    base, built = load(argv[0]), load(argv[1])
    files = node_files()
    shipped = failures(check_on, "openshift", built, base, files) + failures(check_off, base)
    print(f"  {'FAIL' if shipped else 'ok  '} nothing broken: the checks pass"
          + (f" (failed: {shipped})" if shipped else ""))
    ok = not shipped
    ok &= in_memory(base, built, {name: data.decode() for name, data in files.items()})
    ok &= test_op(Path(argv[2]).resolve(), files)
    n = len(ON_BREAKAGES) + len(OFF_BREAKAGES) + 2
    print(f"  remediation self-test: {n} breakages, {'all caught' if ok else 'NOT ALL CAUGHT'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
