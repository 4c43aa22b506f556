#!/usr/bin/env python3
"""Overlays of one's own, written for the checks the way the README tells a reader
to write theirs: a shipped overlay (or any kustomization) as the one resource,
components added, paths relative (kustomize refuses absolute ones), and the
included kustomization's sortOptions carried over (kustomize reads them from the
kustomization it builds only: without them the SCC comes after the DaemonSet).

    own_overlay.py DIR OVERLAY COMPONENT...
        DIR/kustomization.yaml: manifests/overlays/OVERLAY with each
        manifests/components/COMPONENT added

Used by dashboards.py (its components) and policy_remediation.py (the remediation
component, and the broken copies its self-test builds).
"""

import os
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"


def write(out: Path, base: Path, components=(), patches=()) -> Path:
    """out/kustomization.yaml: the kustomization in `base` with `components` (directories)
    and `patches` (kustomize patch entries) added. Returns out."""
    out.mkdir(parents=True, exist_ok=True)
    doc = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
           "resources": [os.path.relpath(base, out)]}
    if components:
        doc["components"] = [os.path.relpath(c, out) for c in components]
    if patches:
        doc["patches"] = list(patches)
    included = yaml.safe_load((base / "kustomization.yaml").read_text()) or {}
    if "sortOptions" in included:
        doc["sortOptions"] = included["sortOptions"]
    out.joinpath("kustomization.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


def shipped(out: Path, overlay: str, components) -> Path:
    """A shipped overlay with shipped components added, by name."""
    return write(out, MANIFESTS / "overlays" / overlay,
                 [MANIFESTS / "components" / c for c in components])


def main(argv) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    shipped(Path(argv[0]).resolve(), argv[1], argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
