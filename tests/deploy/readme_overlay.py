#!/usr/bin/env python3
"""The README's Install section, as an overlay of your own, built for real.

    readme_overlay.py write README.md REPO DIR
        DIR/plain/kustomization.yaml: the overlay of step 1 (`cat >
        kustomization.yaml <<'EOF'`), its ../manifests pointed at REPO's
        (relative: kustomize refuses absolute paths);
        DIR/patched/kustomization.yaml: the same with every `patches:` block of the
        Install section added (the severity override, the architecture selector
        dropped);
        DIR/reordered/kustomization.yaml: the patches after a patch that moves the
        first alert rule to the end, as a later version could reorder them: the
        severity override's `test` must make the build fail;
        DIR/runbooks/: the README's runbook URL replacement (its `runbooks.yaml`
        and `replacements:` block) on the plain overlay.
    readme_overlay.py check-patched BUILT.yaml
        the patches did what the README says: RoutewardenRouteMissing is critical,
        every other alert still warning, and the DaemonSet selects no architecture.
    readme_overlay.py check-runbooks BUILT.yaml DIR
        every alert's runbook_url is the README's base + /docs/runbooks/ALERT.md,
        and the local ConfigMap that holds the base is not in the output.

run.sh builds them with kubectl kustomize (the reordered one must fail) and
checks the plain one's apply order with check_policy.py.
"""

import os
import pathlib
import re
import sys

import yaml


def install_section(readme):
    text = pathlib.Path(readme).read_text()
    start = text.index("## Install\n")
    return text[start:text.index("\n## ", start + 1)]


# Moves the first rule of the first group to the end: a reordering.
REORDER = {
    "target": {"group": "monitoring.coreos.com", "kind": "PrometheusRule", "name": "routewarden"},
    "patch": "- op: move\n  from: /spec/groups/0/rules/0\n  path: /spec/groups/0/rules/-\n",
}


def runbook_parts(section):
    """The README's `runbooks.yaml` (heredoc) and its `replacements:` block."""
    files = re.findall(r"cat > runbooks.yaml <<'EOF'\n(.*?)\nEOF\n", section, re.S)
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", section, re.S)]
    replacements = [r for b in blocks if isinstance(b, dict) for r in b.get("replacements", [])]
    if len(files) != 1 or not replacements:
        sys.exit("README: expected one `cat > runbooks.yaml <<'EOF'` block and a `replacements:` block")
    return files[0] + "\n", replacements


def write(readme, repo, out):
    section = install_section(readme)
    found = re.findall(r"cat > kustomization.yaml <<'EOF'\n(.*?)\nEOF\n", section, re.S)
    if len(found) != 1:
        sys.exit(f"{readme}: expected one `cat > kustomization.yaml <<'EOF'` block, found {len(found)}")
    text = found[0]
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", section, re.S)]
    patches = [p for b in blocks if isinstance(b, dict) for p in b.get("patches", [])]
    if len(patches) < 2:
        sys.exit(f"{readme}: expected the severity and architecture patches, found {len(patches)}")
    runbooks, replacements = runbook_parts(section)
    for name in ("plain", "patched", "reordered", "runbooks"):
        path = pathlib.Path(out) / name
        path.mkdir(parents=True, exist_ok=True)
        # Kustomize wants relative paths: ../manifests from DIR/NAME to REPO.
        manifests = os.path.relpath(pathlib.Path(repo) / "manifests", path)
        doc = yaml.safe_load(text.replace("../manifests", manifests))
        if name == "patched":
            doc["patches"] = patches
        if name == "reordered":
            doc["patches"] = [REORDER] + patches
        if name == "runbooks":
            doc["resources"].append("runbooks.yaml")
            doc["replacements"] = replacements
            (path / "runbooks.yaml").write_text(runbooks)
        (path / "kustomization.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    print(f"  {out}/plain, patched ({len(patches)} patches from the README), reordered, runbooks")


def check_patched(built):
    docs = [d for d in yaml.safe_load_all(pathlib.Path(built).read_text()) if d]
    rule = next(d for d in docs if d["kind"] == "PrometheusRule")
    severity = {r["alert"]: r["labels"]["severity"] for g in rule["spec"]["groups"]
                for r in g["rules"] if "alert" in r}
    ds = next(d for d in docs if d["kind"] == "DaemonSet")
    selector = ds["spec"]["template"]["spec"].get("nodeSelector", {})
    checks = [
        (severity.get("RoutewardenRouteMissing") == "critical",
         "the severity patch makes RoutewardenRouteMissing critical"),
        (all(v == "warning" for k, v in severity.items() if k != "RoutewardenRouteMissing"),
         "and no other alert"),
        (selector == {"kubernetes.io/os": "linux"},
         f"the architecture patch leaves the selector {selector}"),
    ]
    for ok, what in checks:
        print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    return 0 if all(ok for ok, _ in checks) else 1


def check_runbooks(built, out):
    base = yaml.safe_load((pathlib.Path(out) / "runbooks" / "runbooks.yaml").read_text())["data"]["base"]
    docs = [d for d in yaml.safe_load_all(pathlib.Path(built).read_text()) if d]
    rule = next(d for d in docs if d["kind"] == "PrometheusRule")
    urls = {r["alert"]: r["annotations"]["runbook_url"] for g in rule["spec"]["groups"]
            for r in g["rules"] if "alert" in r}
    wrong = {a: u for a, u in urls.items() if u != f"{base}/docs/runbooks/{a}.md"}
    checks = [
        (len(urls) > 0 and not wrong, f"every runbook_url under {base}: {wrong or len(urls)}"),
        (not any(d["kind"] == "ConfigMap" and d["metadata"]["name"] == "routewarden-runbooks" for d in docs),
         "the local ConfigMap holding the base is not applied"),
    ]
    for ok, what in checks:
        print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    return 0 if all(ok for ok, _ in checks) else 1


def main():
    if sys.argv[1:2] == ["write"] and len(sys.argv) == 5:
        write(*sys.argv[2:5])
        return 0
    if sys.argv[1:2] == ["check-patched"] and len(sys.argv) == 3:
        return check_patched(sys.argv[2])
    if sys.argv[1:2] == ["check-runbooks"] and len(sys.argv) == 4:
        return check_runbooks(sys.argv[2], sys.argv[3])
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
