"""Remediation's promises (manifests/components/remediation), in the built output.

Without the component (the shipped overlays) remediation is off: no `--remediate`
argument at all (the agent's default is off), no MachineConfig, and the agent runs
as nobody (65534:65534), a UID every node has a passwd entry for (NetworkManager
answers no other caller), shared and never granted anything.

With it, compared with the same overlay built without it: the agent's container
(and only it) gets one `--remediate=on` and the emptyDir at /run/routewarden, the
pod's runAsUser and runAsGroup are replaced by one UID of the agent's own, still
non-root (runAsNonRoot), and the DaemonSet changes in nothing else (the same
read-only root, dropped capabilities, host paths). One MachineConfig per pool
(worker, master) installs exactly two files, each with mode 0644 (420), written
whole and owned by root, its data URL decoding byte for byte to the component's
file: the polkit rule in /etc/polkit-1/rules.d/ and the user's sysusers.d line in
/etc/sysusers.d/routewarden.conf; and exactly one unit, routewarden-sysusers.service,
enabled, its contents the component's file byte for byte, which runs
systemd-sysusers on that file at boot; nothing else. The rule grants to one user by
name, the one the sysusers line makes (routewarden: sysusers leaves a user the node
already has as it is, so another name would grant to whoever has it), whose UID is
the built DaemonSet's runAsUser and runAsGroup (so they cannot drift apart) and not
the base's (nobody); it grants systemd's manage-units with verb restart and
NetworkManager's network-control, nothing more. On OpenShift the SCC admits the
emptyDir and nothing else.

The rules file is JavaScript that polkitd runs; the check reads it in the one shape
the component writes (comments aside): a single polkit.addRule whose function first
returns unless subject.user is the agent's, then returns polkit.Result.YES under
conditions on action.id (and systemd's verb). The sysusers file is read as one line
(comments aside) `u NAME UID "GECOS" / nologin`. Any other shape fails the check: it
cannot say what such a file grants or makes. remediation_self_test.py breaks each
promise.
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
SYSUSERS_FILE = "routewarden.sysusers.conf"
UNIT_FILE = "routewarden-sysusers.service"
ON = "--remediate=on"
VOLUME = "remediation-state"
STATE_DIR = "/run/routewarden"
POOLS = ["master", "worker"]
ROLE = "machineconfiguration.openshift.io/role"
RULES_DIR = "/etc/polkit-1/rules.d/"
SYSUSERS_PATH = "/etc/sysusers.d/routewarden.conf"
# Where each MachineConfig installs each of the component's files (the unit aside).
INSTALLED = {RULES_DIR + RULES_FILE: RULES_FILE, SYSUSERS_PATH: SYSUSERS_FILE}
# What a file entry may say: written whole (no append), owned by root (no user or
# group: the agent's user must not be able to rewrite its own grants).
FILE_KEYS = {"path", "mode", "overwrite", "contents"}
MODE = 0o644
# The shipped overlays' user: nobody, shared, read-only.
NOBODY = 65534
# The agent's own user, made by the component.
USER = "routewarden"
# What the agent's user may do: systemd's manage-units for the verb restart only,
# NetworkManager's network-control (Reapply, ActivateConnection).
GRANTS = {("org.freedesktop.systemd1.manage-units", "restart"),
          ("org.freedesktop.NetworkManager.network-control", None)}
# u NAME UID "GECOS" / nologin, the one line the component's sysusers file holds.
SYSUSERS_LINE = re.compile(r'u\s+([a-z_][a-z0-9_-]*)\s+([0-9]+)\s+"[^"]+"\s+/\s+/(?:usr/)?sbin/nologin')
# What routewarden-sysusers.service must run, in its [Service] section.
SYSUSERS_RUN = {"Type": ["oneshot"], "ExecStart": [f"/usr/bin/systemd-sysusers {SYSUSERS_PATH}"]}


def node_files():
    """The bytes of the component's files that the MachineConfigs install, by file name."""
    return {name: (COMPONENT / name).read_bytes() for name in (RULES_FILE, SYSUSERS_FILE, UNIT_FILE)}


def is_remediate(arg):
    return arg == "--remediate" or arg.startswith("--remediate=")


def machineconfigs(ordered):
    return [d for d in ordered if d["kind"] == "MachineConfig"]


def check_off(c, ordered):
    """The shipped overlays: remediation off, nothing installed on the nodes, nobody."""
    ds = next(d for d in ordered if d["kind"] == "DaemonSet")
    found = [f"{name}: {a}" for name, ctr in containers(ds).items()
             for a in ctr.get("args", []) if is_remediate(a)]
    c.check(not found, f"read-only: no --remediate argument (the default is off) {found or ''}")
    names = [d["metadata"]["name"] for d in machineconfigs(ordered)]
    c.check(not names, f"read-only: no MachineConfig {names or ''}")
    ids = run_as(ds)
    c.check(ids == (NOBODY, NOBODY), f"read-only: the agent runs as nobody ({NOBODY}:{NOBODY}), which "
            "has a passwd entry on every node (NetworkManager answers no other caller)"
            + ("" if ids == (NOBODY, NOBODY) else f" (runs as {ids[0]}:{ids[1]})"))


def check_on(c, overlay, ordered, base_ordered, files):
    """The component's promises in `ordered`, the overlay built with it; `base_ordered`
    is the same overlay built without it, `files` the bytes of the component's node
    files by name (node_files())."""
    ds = next(d for d in ordered if d["kind"] == "DaemonSet")
    base_ds = next(d for d in base_ordered if d["kind"] == "DaemonSet")
    check_agent(c, ds, base_ds)
    for mc in check_pools(c, ordered):
        check_machineconfig(c, mc, files)
    check_unit_file(c, files[UNIT_FILE].decode(errors="replace"))
    check_user(c, files, run_as(ds), run_as(base_ds)[0])
    if overlay == "openshift":
        check_scc(c, ordered, base_ordered)


def run_as(ds):
    """(runAsUser, runAsGroup) of the agent's container (its own securityContext, else the pod's)."""
    pod = ds["spec"]["template"]["spec"].get("securityContext", {})
    own = containers(ds)[AGENT].get("securityContext", {})
    return tuple(own.get(k, pod.get(k)) for k in ("runAsUser", "runAsGroup"))


def check_agent(c, ds, base_ds):
    check_flag(c, containers(ds))
    check_state_mount(c, ds)
    check_security(c, ds, base_ds)
    c.check(without_component(ds, base_ds) == base_ds,
            f"remediation: the DaemonSet differs from the overlay's by {ON}, the mount and "
            f"the volume {VOLUME}, the pod's runAsUser and runAsGroup only")


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
    """The agent keeps the base's confinement: the component adds no privilege to the pod,
    and its one UID (which check_user ties to the rule) is not root."""
    sc = containers(ds)[AGENT].get("securityContext", {})
    c.check(sc.get("readOnlyRootFilesystem") is True, "remediation: the agent's root file system still read-only")
    c.check(sc.get("capabilities") == {"drop": ["ALL"]} and not sc.get("privileged")
            and sc.get("allowPrivilegeEscalation") is False,
            "remediation: the agent still drops ALL capabilities, adds none, not privileged, no escalation")
    uid, gid = run_as(ds)
    pod = ds["spec"]["template"]["spec"].get("securityContext", {})
    nonroot = sc.get("runAsNonRoot", pod.get("runAsNonRoot"))
    ok = uid == gid and uid not in (None, 0) and nonroot is True
    c.check(ok, "remediation: the agent still runs non-root (runAsNonRoot), runAsGroup = runAsUser"
            + ("" if ok else f" (runs as {uid}:{gid}, runAsNonRoot {nonroot})"))
    added = sorted(set(host_volumes(ds).values()) - set(host_volumes(base_ds).values()))
    c.check(not added, f"remediation: no host path added {added or ''}")


def without_component(ds, base_ds):
    """A copy of the DaemonSet with what the component adds taken out and the pod's
    runAsUser and runAsGroup put back as the base has them."""
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
    sc = pod.get("securityContext", {})
    base_sc = base_ds["spec"]["template"]["spec"].get("securityContext", {})
    for key in ("runAsUser", "runAsGroup"):
        if key in base_sc:
            sc[key] = base_sc[key]
        else:
            sc.pop(key, None)
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


def check_machineconfig(c, mc, files):
    name = mc["metadata"]["name"]
    spec = mc.get("spec", {})
    config = spec.get("config", {})
    c.check(set(spec) == {"config"} and set(config) == {"ignition", "storage", "systemd"}
            and set(config["storage"]) == {"files"} and set(config["systemd"]) == {"units"},
            f"MachineConfig {name}: installs files and units and nothing else (no kernel argument, "
            "extension, OS image, directory or link)")
    check_files(c, name, config.get("storage", {}).get("files", []), files)
    check_unit(c, name, config.get("systemd", {}).get("units", []), files[UNIT_FILE])


def check_files(c, name, entries, files):
    paths = sorted(f.get("path", "") for f in entries)
    c.check(paths == sorted(INSTALLED), f"MachineConfig {name}: installs exactly the files {sorted(INSTALLED)}"
            + ("" if paths == sorted(INSTALLED) else f" (installs {paths})"))
    for f in (f for f in entries if f.get("path") in INSTALLED):
        path, source = f["path"], INSTALLED[f["path"]]
        mode = f.get("mode")
        ok = type(mode) is int and mode == MODE
        c.check(ok, f"MachineConfig {name}: {path} has mode {MODE} (0644: root writes it, "
                "every user may read it)" + ("" if ok else f" (is {mode!r})"))
        ok = set(f) <= FILE_KEYS and set(f.get("contents", {})) == {"source"}
        c.check(ok, f"MachineConfig {name}: {path} written whole and owned by root (no append, user, "
                "group, compression or verification)"
                + ("" if ok else f" (says {sorted(f)}, contents {sorted(f.get('contents', {}))})"))
        data = data_url_bytes(f.get("contents", {}).get("source"))
        c.check(data == files[source], f"MachineConfig {name}: the data URL of {path} decodes byte "
                f"for byte to manifests/components/remediation/{source}")


def check_unit(c, name, units, contents):
    names = [u.get("name") for u in units]
    c.check(names == [UNIT_FILE], f"MachineConfig {name}: exactly one unit, {UNIT_FILE}"
            + ("" if names == [UNIT_FILE] else f" (units: {names})"))
    unit = units[0] if names == [UNIT_FILE] else {}
    ok = unit.get("enabled") is True and set(unit) == {"name", "enabled", "contents"}
    c.check(ok, f"MachineConfig {name}: {UNIT_FILE} enabled (it runs at each boot), no drop-in, "
            "not masked" + ("" if ok else f" (says {sorted(unit)}, enabled {unit.get('enabled')!r})"))
    text = unit.get("contents")
    c.check(isinstance(text, str) and text.encode() == contents, f"MachineConfig {name}: the "
            f"contents of {UNIT_FILE} are manifests/components/remediation/{UNIT_FILE} byte for byte")


def unit_sections(text):
    """{section: {key: [values]}} of a unit file (comments and blank lines aside)."""
    sections, current = {}, None
    for line in (raw.strip() for raw in text.splitlines()):
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
        elif current is not None and "=" in line:
            key, _, value = line.partition("=")
            current.setdefault(key.strip(), []).append(value.strip())
    return sections


def check_unit_file(c, text):
    sections = unit_sections(text)
    service = {k: v for k, v in sections.get("Service", {}).items()
               if k in SYSUSERS_RUN or k.startswith("Exec")}
    wanted = sections.get("Install", {}).get("WantedBy", [])
    ok = service == SYSUSERS_RUN and "multi-user.target" in " ".join(wanted).split()
    c.check(ok, f"{UNIT_FILE}: a oneshot that runs systemd-sysusers on {SYSUSERS_PATH} only, "
            "wanted by multi-user.target (enabled, it runs at boot)"
            + ("" if ok else f" (Service: {service}, WantedBy: {wanted})"))


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


def parse_sysusers(text):
    """(name, UID) of a sysusers.d file in the component's shape, or None."""
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    m = SYSUSERS_LINE.fullmatch(lines[0]) if len(lines) == 1 else None
    return (m.group(1), int(m.group(2))) if m else None


def check_user(c, files, ids, base_uid):
    """The rule grants exactly what remediation needs to the user the sysusers line
    makes, with the agent's UID (`ids`: its runAsUser and runAsGroup), not the base's."""
    parsed = parse_rules(files[RULES_FILE].decode(errors="replace"))
    c.check(parsed is not None, f"{RULES_FILE}: one polkit.addRule, returning unless subject.user is "
            "one user, then polkit.Result.YES per action (the shape this check reads)")
    user, grants = parsed or (None, set())
    c.check(grants == GRANTS, f"{RULES_FILE}: grants exactly manage-units with verb restart and "
            "network-control" + ("" if grants == GRANTS else f" (grants {sorted(grants, key=str)})"))
    made = parse_sysusers(files[SYSUSERS_FILE].decode(errors="replace"))
    c.check(made is not None, f"{SYSUSERS_FILE}: one line `u NAME UID \"GECOS\" / nologin` (the "
            "shape this check reads: a numeric UID, home /, no login)")
    name, uid = made or (None, None)
    c.check(user is not None and user == name, f"{RULES_FILE}: grants to subject.user the user "
            f"{SYSUSERS_FILE} makes" + ("" if user == name else f" (names {user!r}, makes {name!r})"))
    c.check(name == USER, f"{SYSUSERS_FILE}: makes the agent's own user {USER} (sysusers leaves a user "
            "the node has as it is: the rule would grant to it)" + ("" if name == USER else f" (makes {name!r})"))
    ok = uid is not None and (uid, uid) == ids
    c.check(ok, f"{SYSUSERS_FILE}: the user's UID is the agent's runAsUser and runAsGroup"
            + ("" if ok else f" (UID {uid}, the agent runs as {ids[0]}:{ids[1]})"))
    c.check(uid != base_uid, f"{SYSUSERS_FILE}: the user's UID is not the base's {base_uid} (nobody: "
            "shared, never granted anything)")


def check_scc(c, ordered, base_ordered):
    scc = next(d for d in ordered if d["kind"] == "SecurityContextConstraints")
    base = next(d for d in base_ordered if d["kind"] == "SecurityContextConstraints")
    c.check("emptyDir" in scc.get("volumes", []), f"SCC {scc['metadata']['name']}: admits emptyDir")
    rest = copy.deepcopy(scc)
    rest["volumes"] = [v for v in rest["volumes"] if v != "emptyDir"]
    c.check(rest == base, f"SCC {scc['metadata']['name']}: differs from the overlay's by emptyDir only")
