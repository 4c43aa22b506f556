"""Remediation's promises (manifests/components/remediation), in the built output.

Without the component (the shipped overlays) remediation is off: no `--remediate`
argument at all (the agent's default is off) and no MachineConfig.

With it, compared with the same overlay built without it: the agent's container
(and only it) gets one `--remediate=on` and the emptyDir at /run/routewarden, and
the DaemonSet changes in nothing else (the same read-only root, non-root user,
dropped capabilities, host paths); one MachineConfig per pool (worker, master)
installs the polkit rule and nothing else, under /etc/polkit-1/rules.d/ with mode
0644 (420), its data URL decoding byte for byte to the component's rules file;
that rule grants to the agent's user only (its UID read from the built DaemonSet,
so the two cannot drift apart) systemd's manage-units with verb restart and
NetworkManager's network-control, nothing more; on OpenShift the SCC admits the
emptyDir and nothing else.

The rules file is JavaScript that polkitd runs; the check reads it in the one shape
the component writes (comments aside): a single polkit.addRule whose function first
returns unless subject.user is the agent's, then returns polkit.Result.YES under
conditions on action.id (and systemd's verb). Any other shape fails the check: it
cannot say what such a file grants. remediation_self_test.py breaks each promise.
"""

import base64
import binascii
import copy
import re
import urllib.parse

from policy_common import AGENT, containers, host_volumes
from own_overlay import MANIFESTS

COMPONENT = MANIFESTS / "components" / "remediation"
RULES_FILE = "80-routewarden-remediation.rules"
ON = "--remediate=on"
VOLUME = "remediation-state"
STATE_DIR = "/run/routewarden"
POOLS = ["master", "worker"]
ROLE = "machineconfiguration.openshift.io/role"
RULES_DIR = "/etc/polkit-1/rules.d/"
MODE = 0o644
# What the agent's user may do: systemd's manage-units for the verb restart only,
# NetworkManager's network-control (Reapply, ActivateConnection).
GRANTS = {("org.freedesktop.systemd1.manage-units", "restart"),
          ("org.freedesktop.NetworkManager.network-control", None)}


def is_remediate(arg):
    return arg == "--remediate" or arg.startswith("--remediate=")


def machineconfigs(ordered):
    return [d for d in ordered if d["kind"] == "MachineConfig"]


def check_off(c, ordered):
    """The shipped overlays: remediation off, nothing installed on the nodes."""
    ds = next(d for d in ordered if d["kind"] == "DaemonSet")
    found = [f"{name}: {a}" for name, ctr in containers(ds).items()
             for a in ctr.get("args", []) if is_remediate(a)]
    c.check(not found, f"read-only: no --remediate argument (the default is off) {found or ''}")
    names = [d["metadata"]["name"] for d in machineconfigs(ordered)]
    c.check(not names, f"read-only: no MachineConfig {names or ''}")


def check_on(c, overlay, ordered, base_ordered, rules):
    """The component's promises in `ordered`, the overlay built with it; `base_ordered`
    is the same overlay built without it, `rules` the bytes of its rules file."""
    ds = next(d for d in ordered if d["kind"] == "DaemonSet")
    base_ds = next(d for d in base_ordered if d["kind"] == "DaemonSet")
    check_agent(c, ds, base_ds)
    for mc in check_pools(c, ordered):
        check_machineconfig(c, mc, rules)
    check_rules_file(c, rules.decode(errors="replace"), run_as_user(ds, AGENT))
    if overlay == "openshift":
        check_scc(c, ordered, base_ordered)


def run_as_user(ds, name):
    """The UID the container runs as (its own securityContext, else the pod's)."""
    pod = ds["spec"]["template"]["spec"].get("securityContext", {})
    return containers(ds)[name].get("securityContext", {}).get("runAsUser", pod.get("runAsUser"))


def check_agent(c, ds, base_ds):
    check_flag(c, containers(ds))
    check_state_mount(c, ds)
    check_security(c, ds, base_ds)
    c.check(without_component(ds) == base_ds,
            f"remediation: the DaemonSet differs from the overlay's by {ON}, the mount and "
            f"the volume {VOLUME} only")


def check_flag(c, ctrs):
    flags = [a for a in ctrs[AGENT].get("args", []) if is_remediate(a)]
    elsewhere = [n for n, ctr in ctrs.items() if n != AGENT
                 and any(is_remediate(a) for a in ctr.get("args", []))]
    ok = flags == [ON] and not elsewhere
    c.check(ok, f"remediation: exactly one {ON} on the agent's container {AGENT}, on no other"
            + ("" if ok else f" (agent: {flags}, also on: {elsewhere})"))


def check_state_mount(c, ds):
    vols = {v["name"]: v for v in ds["spec"]["template"]["spec"].get("volumes", [])}
    mounts = [(n, m) for n, ctr in containers(ds).items() for m in ctr.get("volumeMounts", [])
              if m["name"] == VOLUME or m["mountPath"].rstrip("/") == STATE_DIR]
    where = [(n, m["mountPath"]) for n, m in mounts]
    ok = where == [(AGENT, STATE_DIR)] and "emptyDir" in vols.get(VOLUME, {}) \
        and not mounts[0][1].get("readOnly")
    c.check(ok, f"remediation: the emptyDir {VOLUME} mounted writable at {STATE_DIR} on the "
            "agent's container only" + ("" if ok else f" (mounts: {where})"))


def check_security(c, ds, base_ds):
    """The agent keeps the base's confinement: the component adds no privilege to the pod."""
    sc = containers(ds)[AGENT].get("securityContext", {})
    c.check(sc.get("readOnlyRootFilesystem") is True, "remediation: the agent's root file system still read-only")
    c.check(sc.get("capabilities") == {"drop": ["ALL"]} and not sc.get("privileged")
            and sc.get("allowPrivilegeEscalation") is False,
            "remediation: the agent still drops ALL capabilities, adds none, not privileged, no escalation")
    uid, base_uid = run_as_user(ds, AGENT), run_as_user(base_ds, AGENT)
    pod = ds["spec"]["template"]["spec"].get("securityContext", {})
    nonroot = sc.get("runAsNonRoot", pod.get("runAsNonRoot"))
    ok = uid == base_uid and uid not in (None, 0) and nonroot is True
    c.check(ok, f"remediation: the agent still runs as non-root UID {base_uid}"
            + ("" if ok else f" (runs as {uid}, runAsNonRoot {nonroot})"))
    added = sorted(set(host_volumes(ds).values()) - set(host_volumes(base_ds).values()))
    c.check(not added, f"remediation: no host path added {added or ''}")


def without_component(ds):
    """A copy of the DaemonSet with what the component adds taken out."""
    out = copy.deepcopy(ds)
    pod = out["spec"]["template"]["spec"]
    for ctr in pod["containers"]:
        if ctr["name"] != AGENT:
            continue
        if ON in ctr.get("args", []):
            ctr["args"].remove(ON)
        if "volumeMounts" in ctr:
            ctr["volumeMounts"] = [m for m in ctr["volumeMounts"] if m["name"] != VOLUME]
    pod["volumes"] = [v for v in pod.get("volumes", []) if v["name"] != VOLUME]
    return out


def check_pools(c, ordered):
    """One MachineConfig per pool; returns them."""
    mcs = machineconfigs(ordered)
    roles = sorted(d["metadata"].get("labels", {}).get(ROLE, "(none)") for d in mcs)
    c.check(roles == POOLS, f"remediation: one MachineConfig per pool {POOLS}, labelled {ROLE}"
            + ("" if roles == POOLS else f" (found {roles})"))
    return mcs


def data_url_bytes(url):
    """The bytes a data URL (RFC 2397) holds, or None when it is not one."""
    if not isinstance(url, str) or not url.startswith("data:") or "," not in url:
        return None
    head, _, data = url[len("data:"):].partition(",")
    if head.endswith(";base64"):
        try:
            return base64.b64decode(urllib.parse.unquote(data), validate=True)
        except binascii.Error:
            return None
    return urllib.parse.unquote_to_bytes(data)


def check_machineconfig(c, mc, rules):
    name = mc["metadata"]["name"]
    spec = mc.get("spec", {})
    config = spec.get("config", {})
    files = config.get("storage", {}).get("files", [])
    c.check(set(spec) == {"config"} and set(config) == {"ignition", "storage"}
            and set(config["storage"]) == {"files"} and len(files) == 1,
            f"MachineConfig {name}: installs one file and nothing else (no unit, kernel "
            "argument, extension or OS image)")
    f = files[0] if files else {}
    path = f.get("path", "")
    c.check(path == RULES_DIR + RULES_FILE, f"MachineConfig {name}: the file is {RULES_DIR}{RULES_FILE}"
            + ("" if path == RULES_DIR + RULES_FILE else f" (is {path})"))
    mode = f.get("mode")
    ok = type(mode) is int and mode == MODE
    c.check(ok, f"MachineConfig {name}: mode {MODE} (0644: polkitd reads it as its own user)"
            + ("" if ok else f" (is {mode!r})"))
    data = data_url_bytes(f.get("contents", {}).get("source"))
    c.check(data == rules, f"MachineConfig {name}: its data URL decodes byte for byte to "
            f"manifests/components/remediation/{RULES_FILE}")


def parse_rules(text):
    """(user, {(action id, verb or None)}) of a rules file in the component's shape, or None."""
    code = " ".join(re.sub(r"//[^\n]*", "", text).split())
    m = re.fullmatch(r"polkit\.addRule\(function\(action, subject\) \{ (.*) \}\);", code)
    if not m:
        return None
    blocks = re.findall(r"if \((.*?)\) \{ return( polkit\.Result\.[A-Z_]+)?; \}", m.group(1))
    if not blocks or " ".join(f"if ({w}) {{ return{r}; }}" for w, r in blocks) != m.group(1):
        return None
    (guard, nothing), grants = blocks[0], set()
    user = re.fullmatch(r'subject\.user !== "([^"]*)"', guard)
    if not user or nothing:
        return None
    for when, result in blocks[1:]:
        parts = when.split(" && ")
        action = re.fullmatch(r'action\.id === "([^"]+)"', parts[0])
        verbs = [re.fullmatch(r'action\.lookup\("verb"\) === "([^"]+)"', p) for p in parts[1:]]
        if result != " polkit.Result.YES" or not action or len(parts) > 2 or not all(verbs):
            return None
        grants.add((action.group(1), verbs[0].group(1) if verbs else None))
    return user.group(1), grants


def check_rules_file(c, text, uid):
    parsed = parse_rules(text)
    c.check(parsed is not None, f"{RULES_FILE}: one polkit.addRule, returning unless subject.user is "
            "one user, then polkit.Result.YES per action (the shape this check reads)")
    user, grants = parsed or (None, set())
    c.check(user == str(uid), f"{RULES_FILE}: grants to subject.user \"{uid}\" only, the UID the "
            "DaemonSet's agent runs as" + ("" if user == str(uid) else f" (names {user!r})"))
    c.check(grants == GRANTS, f"{RULES_FILE}: grants exactly manage-units with verb restart and "
            "network-control" + ("" if grants == GRANTS else f" (grants {sorted(grants, key=str)})"))


def check_scc(c, ordered, base_ordered):
    scc = next(d for d in ordered if d["kind"] == "SecurityContextConstraints")
    base = next(d for d in base_ordered if d["kind"] == "SecurityContextConstraints")
    c.check("emptyDir" in scc.get("volumes", []), f"SCC {scc['metadata']['name']}: admits emptyDir")
    rest = copy.deepcopy(scc)
    rest["volumes"] = [v for v in rest["volumes"] if v != "emptyDir"]
    c.check(rest == base, f"SCC {scc['metadata']['name']}: differs from the overlay's by emptyDir only")
