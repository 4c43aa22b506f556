#!/usr/bin/env python3
"""The README's Install section, as an overlay of your own, built for real.

    readme_overlay.py write README.md REPO DIR
        DIR/plain/kustomization.yaml: the overlay of step 1 (`cat >
        kustomization.yaml <<'EOF'`), its ../manifests pointed at REPO's
        (relative: kustomize refuses absolute paths);
        DIR/patched/kustomization.yaml: the same with every `patches:` block of the
        Install section added (the severity override, the architecture selector
        dropped).
    readme_overlay.py check-patched BUILT.yaml
        the patches did what the README says: RoutewardenRouteMissing is critical,
        every other alert still warning, and the DaemonSet selects no architecture.

run.sh builds both with kubectl kustomize and checks the plain one's apply order
with check_policy.py.
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
    for name in ("plain", "patched"):
        path = pathlib.Path(out) / name
        path.mkdir(parents=True, exist_ok=True)
        # Kustomize wants relative paths: ../manifests from DIR/NAME to REPO.
        manifests = os.path.relpath(pathlib.Path(repo) / "manifests", path)
        doc = yaml.safe_load(text.replace("../manifests", manifests))
        if name == "patched":
            doc["patches"] = patches
        (path / "kustomization.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    print(f"  {out}/plain and {out}/patched ({len(patches)} patches from the README)")


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


def main():
    if sys.argv[1:2] == ["write"] and len(sys.argv) == 5:
        write(*sys.argv[2:5])
        return 0
    if sys.argv[1:2] == ["check-patched"] and len(sys.argv) == 3:
        return check_patched(sys.argv[2])
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
