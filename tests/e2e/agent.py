"""routewarden's agent run against a booted node, the way its DaemonSet runs it.

`Agent.start(node)` runs `routewarden serve` on the host in the node's network and
PID namespaces (nsenter; `Agent.pid` is the agent's own PID, nsenter's child), with
`--host-root` at the node's root (/proc/PID1/root: the MachineConfig
is read from <root>/etc/machine-config-daemon/currentconfig), `--dbus-address` at
the node's system bus socket and `--listen 127.0.0.1:9810` (the DaemonSet's port;
each node has its own namespace). In the node's PID namespace because the node's
NetworkManager, like a host's, answers only callers whose process it can see (a
DaemonSet pod's PID namespace is a child of the host's; the container's is not a
child of ours). `--node-name` is the node's harness name, so the
startup sweep can find an agent a crashed run left behind. Its stderr goes to a
log file in /tmp/rwe2e-<pid>-<n>-agent/.

Every wait compares the agent's two views (/drift and /metrics) with each other
and with the node's truth (`systemctl show`, the kernel's routes and addresses),
and a failure shows the agent's /drift, its log and the node's state:

    with Agent.start(node) as agent:
        snap = agent.converge("route missing, unit failed",
                              lambda s: route_complaints(s, SEED_ROUTE, present=False,
                                                         codes={"unit-failed"}))
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from common import FatalError, HarnessError, WaitTimeout, children, run, unique_name, wait_for
from ifaddr import dump_addrs
from prom import http_get

REPO = Path(__file__).resolve().parents[2]
PORT = 9810
SEED_UNIT = "nmcli-dev-modify.service"
NM_UNIT = "NetworkManager.service"
TMP_ROOT = Path("/tmp")
# Where the unprivileged agent's copy of the binary goes in the node: named
# routewarden, so the startup sweep (sweep.py) recognises it as an agent.
NODE_BINARY = "/usr/local/bin/routewarden"
UNIT_STATES = ("active", "activating", "deactivating", "inactive", "failed", "reloading")


# ---------------------------------------------------------------- the binary

def agent_binary() -> Path:
    """$ROUTEWARDEN_BIN as given (tests/run.sh builds it and sets it), else the worktree's
    binary after `cargo build` (a no-op when up to date), so a stale binary is never tested."""
    env = os.environ.get("ROUTEWARDEN_BIN")
    if env:
        path = Path(env)
        if not path.is_absolute() or not os.access(path, os.X_OK):
            raise HarnessError(f"ROUTEWARDEN_BIN={env!r} is not an absolute path to an executable")
        return path
    return _worktree_binary()


@functools.cache
def _worktree_binary() -> Path:
    """`cargo build` once per session; the debug binary in the (possibly relocated) target dir."""
    run(["cargo", "build", "--quiet", "--locked", "--manifest-path", REPO / "Cargo.toml"], timeout=1800,
        env=dict(os.environ, CARGO_TERM_COLOR="never"))
    # A relative CARGO_TARGET_DIR is relative to the working directory, as for cargo.
    return Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target").resolve() / "debug" / "routewarden"


# ---------------------------------------------------------------- /metrics, parsed

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> dict[tuple[str, frozenset], float]:
    """Prometheus text exposition -> {(name, frozenset(label items)): value} (pure)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise HarnessError(f"/metrics line does not parse: {line!r}")
        labels = {k: _unescape(v) for k, v in _LABEL.findall(m.group(2) or "")}
        out[(m.group(1), frozenset(labels.items()))] = float(m.group(3))
    return out


def _unescape(v: str) -> str:
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n" else m.group(1), v)


@dataclass(frozen=True)
class Metrics:
    """One scrape of /metrics."""
    samples: dict

    def series(self, name: str, **labels: str) -> dict[frozenset, float]:
        """Every sample of `name` whose labels include `labels`."""
        want = set(labels.items())
        return {ls: v for (n, ls), v in self.samples.items() if n == name and want <= ls}

    def value(self, name: str, **labels: str) -> Optional[float]:
        """The value of the one sample of `name` with exactly these labels, None if absent."""
        return self.samples.get((name, frozenset(labels.items())))


# ---------------------------------------------------------------- the node's truth

@dataclass(frozen=True)
class Route:
    """An expected IPv4 route in the main table, as both the kernel and the agent name it."""
    destination: str
    gateway: str
    device: str
    table: str = "254"

    @property
    def labels(self) -> dict[str, str]:
        """The route's labels on routewarden_route_* series."""
        return {"family": "ipv4", "destination": self.destination, "gateway": self.gateway,
                "device": self.device, "table": self.table}

    def matching(self, kernel_routes: list[dict]) -> list[dict]:
        """The entries of `ip -j route show` that are this route (destination, gateway, device)."""
        return [r for r in kernel_routes if r.get("dst") == self.destination and r.get("gateway") == self.gateway
                and r.get("dev") == self.device]

    def in_kernel(self, kernel_routes: list[dict]) -> bool:
        """True if `ip -j route show` lists this route (destination, gateway, device)."""
        return bool(self.matching(kernel_routes))


SEED_ROUTE = Route("192.168.1.0/24", "172.18.0.1", "ens5")


def last_configured_usec(node, ifname: str = "ens5") -> Optional[int]:
    """The newest address creation stamp (IPv4 and IPv6) of `ifname`, in us since boot:
    what the agent compares with a unit's exit time."""
    link = json.loads(run(["ip", "-j", "-n", node.netns, "link", "show", ifname]).stdout)[0]
    stamps = [a.created_monotonic_usec for fam in (socket.AF_INET, socket.AF_INET6)
              for a in dump_addrs(node.netns, fam) if a.ifindex == link["ifindex"]]
    return max(stamps) if stamps else None


def expected_unit_state(show: dict, expect: str) -> str:
    """The verdict a unit's `systemctl show` calls for (expect: succeeded | active)."""
    if show.get("LoadState") == "not-found":
        return "not-found"
    if show.get("ActiveState") == "failed" or show.get("Result") not in ("", "success", None):
        return "failed"
    if expect == "active":
        return "ok" if show.get("ActiveState") in ("active", "reloading") else "inactive"
    ran = show.get("ExecMainExitTimestampMonotonic", "0") != "0" or show.get("ActiveState") == "active"
    return "ok" if ran else "not-run"


# ---------------------------------------------------------------- one look at both sides

@dataclass
class Snapshot:
    """The agent's /drift and /metrics and the node's truth, read one after the other."""
    drift: dict
    metrics: Metrics
    kernel: list[dict]
    units: dict[str, dict] = field(default_factory=dict)

    def route(self, destination: str) -> Optional[dict]:
        """The /drift verdict of the expected route to `destination`."""
        return next((r for r in self.drift.get("routes", []) if r["destination"] == destination), None)

    def unit(self, name: str) -> Optional[dict]:
        """The /drift verdict of unit `name`."""
        return next((u for u in self.drift.get("units", []) if u["name"] == name), None)


def route_complaints(s: Snapshot, route: Route, *, present: Optional[bool] = None,
                     codes: Optional[set] = None, words: tuple[str, ...] = ()) -> list[str]:
    """What is wrong with the agent's report of `route` (empty when all agrees).

    Always: /drift's state is what the kernel shows, route_present and the reason
    series on /metrics are what /drift says. `present`: what the scenario expects of
    the kernel; `codes`: the exact reason codes; `words`: texts some reason must hold.
    """
    v = s.route(route.destination)
    if v is None:
        return [f"route {route.destination} is not in /drift's routes"]
    out = []
    truth = route.in_kernel(s.kernel)
    if present is not None and truth != present:
        out.append(f"kernel: route {route.destination} present={truth}, the scenario expects {present}")
    if v["state"] != ("present" if truth else "missing"):
        out.append(f"/drift says {v['state']}, the kernel's main table {'has' if truth else 'lacks'} the route")
    gauge = s.metrics.value("routewarden_route_present", **route.labels)
    if gauge != (1.0 if v["state"] == "present" else 0.0):
        out.append(f"routewarden_route_present{route.labels} = {gauge}, /drift says {v['state']}")
    series = {dict(ls)["reason"]: val for ls, val in
              s.metrics.series("routewarden_route_drift_reason", **route.labels).items()}
    if series != {c: 1.0 for c in v["reason_codes"]}:
        out.append(f"routewarden_route_drift_reason series {series} != /drift reason_codes {v['reason_codes']}")
    if len(v["reasons"]) != len(v["reason_codes"]):
        out.append(f"/drift has {len(v['reasons'])} reasons for {len(v['reason_codes'])} codes")
    if truth and v["reason_codes"]:
        out.append(f"route present but reasons given: {v['reason_codes']}")
    kernel_hops = sorted((r.get("gateway"), r.get("dev"), r.get("metric", 0), r.get("protocol", "boot"))  # ip -j omits proto boot
                         for r in s.kernel if r.get("dst") == route.destination)
    agent_hops = sorted((h["gateway"], h["device"], h["metric"] or 0, h["protocol"]) for h in v["observed"])
    if agent_hops != kernel_hops:
        out.append(f"/drift observed (gateway, device, metric, protocol) {agent_hops}, the kernel has {kernel_hops}")
    if codes is not None and set(v["reason_codes"]) != set(codes):
        out.append(f"reason codes {v['reason_codes']}, expected {sorted(codes)}")
    for w in words:
        if not any(w in text for text in v["reasons"]):
            out.append(f"no reason says {w!r}: {v['reasons']}")
    return out


def unit_complaints(s: Snapshot, name: str, expect: str, state: Optional[str] = None) -> list[str]:
    """What is wrong with the agent's report of unit `name` against `systemctl show`.

    The properties on /drift must equal systemd's, the verdict must be the one
    systemd's properties call for (and `state` if given), and /metrics must agree.
    """
    v, show = s.unit(name), s.units[name]
    if v is None:
        return [f"unit {name} is not in /drift's units"]
    out = []
    ran = show.get("ExecMainCode", "0") != "0"
    pairs = {"active_state": show["ActiveState"], "sub_state": show["SubState"],
             "result": show.get("Result"), "unit_file_state": show["UnitFileState"],
             "exec_main_status": int(show["ExecMainStatus"]) if ran else None}
    for key, want in pairs.items():
        if v.get(key) != want:
            out.append(f"/drift {name} {key}={v.get(key)!r}, systemctl show says {want!r}")
    truth = expected_unit_state(show, expect)
    if v["state"] != truth:
        out.append(f"/drift {name} state={v['state']!r}, systemd's properties call for {truth!r}")
    if state is not None and truth != state:
        out.append(f"node: {name} is {truth!r} by systemd's properties, the scenario expects {state!r}")
    ok = s.metrics.value("routewarden_unit_ok", unit=name)
    if ok != (1.0 if v["state"] == "ok" else 0.0):
        out.append(f"routewarden_unit_ok{{unit={name!r}}} = {ok}, /drift state {v['state']!r}")
    states = {dict(ls)["state"]: val for ls, val in s.metrics.series("routewarden_unit_state", unit=name).items()}
    if states != {st: float(st == show["ActiveState"]) for st in UNIT_STATES}:
        out.append(f"routewarden_unit_state{{unit={name!r}}} {states}, ActiveState {show['ActiveState']!r}")
    return out


def source_complaints(s: Snapshot, **expected) -> list[str]:
    """/drift's sources, routewarden_source_up and routewarden_source_absent agree, and each
    named one is up (True), not up (False), or in the state named ("absent", "down", ...)."""
    out = []
    for source, text in s.drift["sources"].items():
        for metric, state in (("routewarden_source_up", "up"), ("routewarden_source_absent", "absent")):
            gauge = s.metrics.value(metric, source=source)
            if gauge != float(text == state):
                out.append(f"{metric}{{source={source!r}}} = {gauge}, /drift says {text!r}")
    for source, want in expected.items():
        got = s.drift["sources"].get(source)
        word = (got or "").split(":")[0]
        if (word == want) if isinstance(want, str) else ((got == "up") == want):
            continue
        out.append(f"source {source} is {got!r}, expected {want if isinstance(want, str) else ('up' if want else 'down')}")
    return out


def file_complaints(s: Snapshot, path: Optional[str], written_after_boot: Optional[bool] = None) -> list[str]:
    """/drift's machineconfig_file and routewarden_machineconfig_info name the node file `path`
    (None: no file read), and routewarden_machineconfig_written_after_boot is what /drift says
    (and `written_after_boot` when given)."""
    out = []
    got = (s.drift.get("machineconfig_file") or {}).get("path")
    if got != path:
        out.append(f"/drift machineconfig_file.path {got!r}, expected {path!r}")
    info = [dict(ls) for ls in s.metrics.series("routewarden_machineconfig_info")]
    if [i.get("path") for i in info] != [path or ""]:
        out.append(f"routewarden_machineconfig_info {info}, expected path={path or ''!r}")
    after = s.drift.get("machineconfig_written_after_boot")
    gauge = s.metrics.value("routewarden_machineconfig_written_after_boot")
    if gauge != (None if after is None else float(after)):
        out.append(f"routewarden_machineconfig_written_after_boot = {gauge}, /drift says {after!r}")
    if written_after_boot is not None and after != written_after_boot:
        out.append(f"machineconfig_written_after_boot {after!r}, expected {written_after_boot}")
    return out


def intent_complaints(s, name: str, destinations: set) -> list[str]:
    """/drift and routewarden_machineconfig_info name `name`, and the intent holds `destinations`."""
    out = []
    if s.drift["machineconfig"] != name:
        out.append(f"/drift machineconfig {s.drift['machineconfig']!r}, expected {name!r}")
    info = {dict(ls)["name"]: v for ls, v in s.metrics.series("routewarden_machineconfig_info").items()}
    if info != {name: 1.0}:
        out.append(f"routewarden_machineconfig_info {info}, expected {{{name!r}: 1}}")
    got = {r["destination"] for r in s.drift["routes"]}
    if got != destinations:
        out.append(f"/drift routes {sorted(got)}, expected {sorted(destinations)}")
    if s.metrics.value("routewarden_expected_routes") != float(len(destinations)):
        out.append(f"routewarden_expected_routes {s.metrics.value('routewarden_expected_routes')}")
    return out


def count_complaints(s: Snapshot) -> list[str]:
    """routewarden_routes{state} counts the /drift verdicts."""
    counts = {st: float(sum(r["state"] == st for r in s.drift["routes"]))
              for st in ("present", "missing", "mismatched", "unselected")}
    got = {dict(ls)["state"]: v for ls, v in s.metrics.series("routewarden_routes").items()}
    return [] if got == counts else [f"routewarden_routes {got}, /drift counts {counts}"]


# ---------------------------------------------------------------- the agent process

def check(node, *args: str) -> tuple[int, dict]:
    """`routewarden check --format json` run as the agent runs (node's netns and PID
    namespace, so that NetworkManager answers; --host-root, --dbus-address): its exit
    code and report."""
    argv = ["nsenter", "-t", str(node.pid1), "-p", "-n", "--", str(agent_binary()), "check",
            "--host-root", str(node.root), "--dbus-address", node.bus_address, "--format", "json", *args]
    cp = run(argv, check=False)
    try:
        return cp.returncode, json.loads(cp.stdout)
    except ValueError:
        raise HarnessError(f"routewarden check exited {cp.returncode} without a JSON report: "
                           f"{cp.stdout[:300]!r} {cp.stderr[-1000:]!r}") from None


class AgentDied(FatalError):
    """The agent exited while a test waited on it."""


class Agent:
    """One `routewarden serve` for one node; a context manager that ends it by PID."""

    def __init__(self, node, port: int = PORT, *, uid: Optional[int] = None):
        """`uid`: run as that user with every capability dropped (setpriv), as the
        DaemonSet's non-root, capability-less container does. A non-root process may
        not enter /proc/PID1/root, so it then runs in the node's mount namespace
        too (the binary copied in), seeing the node's files and bus socket at their
        own paths, as the DaemonSet's hostPath mounts show them."""
        self.node = node
        self.port = port
        self.binary = agent_binary()
        self.dir = TMP_ROOT / f"{unique_name()}-agent"
        self.uid = uid
        self.agent_pid: Optional[int] = None
        if uid is None:
            head = [str(self.binary), "serve", "--host-root", str(node.root), "--dbus-address", node.bus_address]
        else:
            shutil.copy2(self.binary, f"{node.rootfs_dir}{NODE_BINARY}")
            head = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
                    "--bounding-set=-all", NODE_BINARY, "serve", "--host-root", "/",
                    "--dbus-address", "unix:path=/run/dbus/system_bus_socket"]
        self.argv = [*head, "--listen", f"127.0.0.1:{port}", "--node-name", node.name]
        self.proc: Optional[subprocess.Popen] = None

    @classmethod
    def start(cls, node, **kwargs) -> "Agent":
        """Start the agent and wait until /readyz answers 200 (its first evaluation)."""
        agent = cls(node, **kwargs)
        agent.dir.mkdir(parents=True)
        try:
            agent._spawn()
            wait_for(f"routewarden (PID {agent.pid}) in netns {node.netns} to be ready (/readyz 200)",
                     agent._ready, timeout=30, interval=0.1, diagnose=agent.log_tail)
        except BaseException:
            agent.stop()
            raise
        return agent

    def _spawn(self) -> None:
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "NO_COLOR": "1"}
        mount = [] if self.uid is None else ["-m"]
        argv = ["nsenter", "-t", str(self.node.pid1), "-p", *mount, "-n", "--", *self.argv]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         env=env, start_new_session=True)
        # nsenter -p forks the agent into the node's PID namespace and waits for it.
        self.agent_pid = wait_for(f"the agent forked by nsenter {self.proc.pid}", self._forked, timeout=10,
                                  interval=0.02, diagnose=self.log_tail)

    def _forked(self) -> Optional[int]:
        self.check_alive()
        kids = children(self.proc.pid)
        return kids[0] if kids else None

    def _ready(self) -> bool:
        self.check_alive()
        return http_get(self.node.netns, "127.0.0.1", self.port, "/readyz")[0] == 200

    def __enter__(self) -> "Agent":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def pid(self) -> Optional[int]:
        """The agent's PID on the host (nsenter's child)."""
        return self.agent_pid

    @property
    def log_path(self) -> Path:
        """The agent's stderr and stdout."""
        return self.dir / "agent.log"

    def running(self) -> bool:
        """True while the agent process runs."""
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        """Raise AgentDied (ends any wait at once) if the agent exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise AgentDied(f"routewarden exited with {self.proc.returncode}\n{self.log_tail()}")

    # ------------------------------------------------------------ endpoints

    def get(self, path: str) -> tuple[int, bytes]:
        """GET a path of the agent's HTTP endpoint from inside the node's namespace."""
        return http_get(self.node.netns, "127.0.0.1", self.port, path)

    def drift(self) -> dict:
        """/drift, parsed."""
        status, body = self.get("/drift")
        if status != 200:
            raise HarnessError(f"/drift answered HTTP {status}: {body[:300]!r}")
        return json.loads(body)

    def drift_route(self, destination: str) -> Optional[dict]:
        """/drift's verdict of the route to `destination` (one request, no node reads)."""
        return next((r for r in self.drift().get("routes", []) if r["destination"] == destination), None)

    def metrics(self) -> Metrics:
        """/metrics, parsed."""
        status, body = self.get("/metrics")
        if status != 200:
            raise HarnessError(f"/metrics answered HTTP {status}: {body[:300]!r}")
        return Metrics(parse_metrics(body.decode()))

    def snapshot(self, units: tuple[str, ...] = (SEED_UNIT, NM_UNIT)) -> Snapshot:
        """The agent's views and the node's truth, read in that order."""
        self.check_alive()
        drift, metrics = self.drift(), self.metrics()
        return Snapshot(drift, metrics, self.node.ip_routes(),
                        {u: self.node.systemctl_show(u) for u in units})

    # ------------------------------------------------------------ waiting and explaining

    def converge(self, what: str, check: Callable[[Snapshot], list[str]], timeout: float = 15,
                 units: tuple[str, ...] = (SEED_UNIT, NM_UNIT)) -> Snapshot:
        """Poll until `check(snapshot)` has no complaints; return that snapshot.

        On timeout raise AssertionError with the last complaints, the agent's
        /drift and log, and the node's state.
        """
        last: dict = {"complaints": ["(no snapshot taken)"]}

        def probe() -> Optional[Snapshot]:
            s = self.snapshot(units)
            last["complaints"] = check(s)
            return None if last["complaints"] else s
        try:
            return wait_for(what, probe, timeout=timeout, interval=0.2)
        except WaitTimeout as e:
            complaints = "\n  ".join(last["complaints"])
            raise AssertionError(f"{e}\ncomplaints:\n  {complaints}\n{self.explain()}") from None

    def explain(self, unit: str = SEED_UNIT) -> str:
        """The agent's /drift and log, and the node's state: attached to every failure."""
        try:
            drift = json.dumps(self.drift(), indent=1)
        except (HarnessError, OSError, ValueError) as e:
            drift = f"(unavailable: {e})"
        try:
            node = self.node.diagnostics(unit)
        except Exception as e:  # diagnostics must not hide the failure
            node = f"(unavailable: {e!r})"
        return f"--- agent /drift:\n{drift}\n--- {self.log_tail()}\n--- node state:\n{node}"

    def log_tail(self, limit: int = 6000) -> str:
        """The end of the agent's log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no agent log)"
        return "agent log (tail):\n" + (text if len(text) <= limit else "..." + text[-limit:])

    # ------------------------------------------------------------ ending it

    def terminate(self, timeout: float = 1.0) -> tuple[Optional[int], float]:
        """SIGTERM by PID; (exit code or None if still running after `timeout`, seconds taken)."""
        if not self.running():
            return (self.proc.returncode if self.proc else None), 0.0
        t0 = time.monotonic()
        self._signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = None
        return rc, time.monotonic() - t0

    def stop(self) -> None:
        """End the agent by PID (SIGTERM, SIGKILL after 5 s) and remove its directory."""
        self.terminate(timeout=5)
        if self.running():
            self._signal(signal.SIGKILL)
            self.proc.kill()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def _signal(self, sig: int) -> None:
        """Signal the agent itself, by PID (nsenter passes no signal on)."""
        if self.agent_pid is not None:
            try:
                os.kill(self.agent_pid, sig)
            except ProcessLookupError:
                pass

    def assert_stops_on_sigterm(self, within: float = 1.0) -> None:
        """SIGTERM by PID: the agent must exit 0 within `within` seconds."""
        rc, seconds = self.terminate(timeout=within)
        assert rc == 0 and seconds < within, \
            f"SIGTERM: exit {rc} after {seconds:.3f}s (want 0 within {within} s)\n{self.log_tail()}"
