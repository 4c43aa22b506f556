"""pytest wiring of the e2e harness: startup sweep, SIGTERM -> teardown, facts, fixtures.

Facts are observations worth keeping that are not pass/fail (which way the boot
race went, timings, address stamps). Tests add them with the `facts` fixture; they
are printed in the terminal summary and written as JSON to $RWE2E_FACTS
(default /tmp/rwe2e-facts.json).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import rootfs  # noqa: E402
import sweep  # noqa: E402
from agent import Agent  # noqa: E402
from node import Node  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SEED_MC = REPO / "examples" / "seed-machineconfig.yaml"
FACTS: dict[str, object] = {}
_T0 = time.monotonic()


def _terminate(signum, frame):
    # `timeout` in run.sh sends SIGTERM: unwind like Ctrl-C so fixtures tear nodes down.
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_sessionstart(session):
    signal.signal(signal.SIGTERM, _terminate)
    removed = sweep.sweep()
    FACTS["sweep_removed_at_start"] = removed
    for line in removed:
        print(f"rwe2e sweep: removed {line}", file=sys.stderr)


def pytest_terminal_summary(terminalreporter):
    FACTS["session_seconds"] = round(time.monotonic() - _T0, 1)
    terminalreporter.section("routewarden e2e facts")
    for key, value in FACTS.items():
        terminalreporter.write_line(f"{key}: {json.dumps(value, default=str)}")
    path = os.environ.get("RWE2E_FACTS", "/tmp/rwe2e-facts.json")
    Path(path).write_text(json.dumps(FACTS, indent=2, default=str) + "\n")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test that uses the agent gets the agent's /drift and log and the node's
    state in its report, unless the failure message carries them already."""
    outcome = yield
    rep = outcome.get_result()
    agent = getattr(item, "funcargs", {}).get("agent")
    if agent is None or not rep.failed or hasattr(rep, "wasxfail"):
        return
    if call.excinfo is not None and "--- agent /drift:" in str(call.excinfo.value):
        return
    rep.sections.append(("routewarden agent and node at the failure", agent.explain()))


@pytest.fixture(scope="session")
def facts() -> dict:
    """Session-wide observations, reported at the end of the run."""
    return FACTS


@pytest.fixture(scope="session")
def base_rootfs(facts):
    """The cached base rootfs (built on first use), with how long getting it took."""
    t0 = time.monotonic()
    base = rootfs.ensure_base()
    facts["rootfs_base_seconds"] = round(time.monotonic() - t0, 1)
    facts["rootfs_base_build_seconds_when_built"] = rootfs.base_manifest(base).get("build_seconds")
    facts["rootfs_base"] = str(base)
    return base


@pytest.fixture(scope="module")
def seed_node(base_rootfs, facts):
    """A node booted with examples/seed-machineconfig.yaml; `.boot` holds its state right after boot."""
    with Node(machineconfig=SEED_MC) as node:
        node.boot = {
            "unit": node.systemctl_show("nmcli-dev-modify.service"),
            "routes": node.ip_routes(),
            "journal": node.journal("nmcli-dev-modify.service", lines=20),
        }
        facts["seed_node_timings"] = dict(node.timings)
        yield node


@pytest.fixture(scope="module")
def agent(seed_node):
    """`routewarden serve` for the module's seed node, run as the DaemonSet runs it
    (agent.py); started once the node has booted, ended by PID at the module's end."""
    with Agent.start(seed_node) as a:
        yield a
