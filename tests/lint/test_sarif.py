"""routewarden lint --format sarif is valid SARIF 2.1.0: the golden output and a
fresh run over every rule's firing fixture, checked against the schema."""

import json
import os
import pathlib
import subprocess

import jsonschema

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "tests/lint/sarif-schema-2.1.0.json").read_text())
BIN = os.environ.get("ROUTEWARDEN_BIN", str(ROOT / "target/debug/routewarden"))


def validate(log):
    jsonschema.Draft4Validator.check_schema(SCHEMA)
    jsonschema.Draft4Validator(SCHEMA).validate(log)


def test_golden_sarif_is_valid():
    log = json.loads((ROOT / "agent/tests/golden/lint.sarif").read_text())
    validate(log)
    assert log["version"] == "2.1.0"
    assert [r["id"] for r in log["runs"][0]["tool"]["driver"]["rules"]] == [f"RW{i:03}" for i in range(1, 11)]


def test_every_rule_in_a_valid_log():
    seen = []
    for fixture in sorted((ROOT / "tests/fixtures/lint/rules").glob("*-fire.yaml")):
        out = subprocess.run([BIN, "lint", "--format", "sarif", "--fail-on", "never", str(fixture)],
                             cwd=ROOT, capture_output=True, text=True, check=True)
        log = json.loads(out.stdout)
        validate(log)
        seen += [r["ruleId"] for r in log["runs"][0]["results"]]
    assert seen == [f"RW{i:03}" for i in range(1, 11)]


def test_an_invalid_log_is_refused():
    log = json.loads((ROOT / "agent/tests/golden/lint.sarif").read_text())
    log["runs"][0]["results"][0]["level"] = "fatal"
    try:
        validate(log)
    except jsonschema.ValidationError:
        return
    raise AssertionError("the schema accepted level 'fatal'")
