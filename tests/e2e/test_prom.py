"""prom.py against a real Prometheus in a fresh network namespace (no node needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from common import pid_running, wait_for
from netns import NetNS
from prom import Prometheus, http_get

HERE = Path(__file__).parent
RULES = """groups:
- name: rwe2e-smoke
  rules:
  - alert: SmokeValueHigh
    expr: rwe2e_smoke_value > 40
    labels: {severity: info}
"""


@pytest.fixture
def netns_with_metric():
    """A namespace with a metric server on 127.0.0.1:9101 serving rwe2e_smoke_value 42."""
    with NetNS() as ns:
        server = subprocess.Popen(ns.exec_argv([sys.executable, HERE / "metric_server.py", "9101", "42"]),
                                  stdin=subprocess.DEVNULL)
        try:
            wait_for("the metric server in the netns", lambda: http_get(ns.name, "127.0.0.1", 9101, "/metrics")[0] == 200,
                     timeout=15)
            yield ns
        finally:
            server.terminate()
            server.wait(timeout=10)


def test_prometheus_scrapes_and_alerts(netns_with_metric, tmp_path, facts):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    with Prometheus(netns_with_metric.name, "127.0.0.1:9101", rule_files=[rules]) as prom:
        assert os.path.basename(os.readlink(f"/proc/{prom.pid}/exe")) == "prometheus"
        prom.wait_query('up{job="target"}', lambda r: [x["value"][1] for x in r] == ["1"], "== 1")
        assert prom.query_values("rwe2e_smoke_value") == [42.0]
        alert = prom.wait_alert("SmokeValueHigh", "firing")
        assert alert["labels"]["severity"] == "info"
        facts["prometheus_version"] = prom.api("status/buildinfo")["version"]
        pid, data_dir = prom.pid, prom.dir
    assert not pid_running(pid)
    assert not data_dir.exists()

