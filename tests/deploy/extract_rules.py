#!/usr/bin/env python3
"""Write the `spec` of the built PrometheusRule as a plain Prometheus rules file.

`promtool check rules` and `promtool test rules` read rule files, not Kubernetes
objects: this takes the one PrometheusRule out of a built overlay.

usage: extract_rules.py BUILT.yaml OUT.yaml
"""

import sys

import yaml


def main():
    built, out = sys.argv[1], sys.argv[2]
    with open(built) as f:
        rules = [d for d in yaml.safe_load_all(f) if d and d.get("kind") == "PrometheusRule"]
    if len(rules) != 1:
        print(f"{built}: expected one PrometheusRule, found {len(rules)}", file=sys.stderr)
        return 1
    with open(out, "w") as f:
        yaml.safe_dump(rules[0]["spec"], f, sort_keys=False, width=1000)
    alerts = [r["alert"] for g in rules[0]["spec"]["groups"] for r in g["rules"] if "alert" in r]
    print(f"  {out}: {len(alerts)} alerts ({', '.join(alerts)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
