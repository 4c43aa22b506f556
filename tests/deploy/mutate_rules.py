#!/usr/bin/env python3
"""Break one alert of a rules file, to prove the rule tests notice.

Modes:
  never    the alert's expression can never return anything: a test that
           expects it to fire must fail.
  instant  the alert's `for` is removed: a test that expects it to stay quiet
           through a short blip must fail.

usage: mutate_rules.py RULES.yaml ALERT never|instant OUT.yaml
"""

import sys

import yaml


def main():
    rules_file, alert, mode, out = sys.argv[1:5]
    with open(rules_file) as f:
        spec = yaml.safe_load(f)
    found = [r for g in spec["groups"] for r in g["rules"] if r.get("alert") == alert]
    if len(found) != 1:
        print(f"{rules_file}: expected one alert {alert}, found {len(found)}", file=sys.stderr)
        return 1
    rule = found[0]
    if mode == "never":
        rule["expr"] = f"({rule['expr']}) and on() vector(0) > 1"
    elif mode == "instant":
        rule.pop("for", None)
    else:
        print(f"unknown mode {mode}", file=sys.stderr)
        return 1
    with open(out, "w") as f:
        yaml.safe_dump(spec, f, sort_keys=False, width=1000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
