#!/usr/bin/env python3
"""Break one alert of a rules file, to prove the rule tests notice.

Modes:
  never    the alert's expression can never return anything: a test that
           expects it to fire must fail.
  instant  the alert's `for` is removed: a test that expects it to stay quiet
           through a short blip must fail.
  window   every last_over_time(x[w]) becomes x, an instant read: a test with
           failed scrapes (stale series) must fail.

usage: mutate_rules.py RULES.yaml ALERT never|instant|window OUT.yaml
"""

import re
import sys

import yaml


# last_over_time(selector[w] [offset d]) -> selector [offset d]
WINDOW = re.compile(r"last_over_time\(([^()\[\]]+)\[\w+\]((?:\s+offset\s+\w+)?)\)")


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
        # On lines of their own: the expression may end with a PromQL comment.
        rule["expr"] = f"(\n{rule['expr']}\n) and on() vector(0) > 1"
    elif mode == "instant":
        rule.pop("for", None)
    elif mode == "window":
        rule["expr"] = WINDOW.sub(r"\1\2", rule["expr"])
    else:
        print(f"unknown mode {mode}", file=sys.stderr)
        return 1
    with open(out, "w") as f:
        yaml.safe_dump(spec, f, sort_keys=False, width=1000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
