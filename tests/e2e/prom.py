"""A real Prometheus (Debian package `prometheus`) on 127.0.0.1 inside a network namespace.

It scrapes one target (host:port, reachable from that namespace) every second and
evaluates the given rule files every second, keeping its data in a temporary
directory (/tmp/rwe2e-<pid>-<n>-prometheus/) removed by `stop()`. It is started and
ended by PID. Queries go over a socket opened inside the namespace (netns.connect_in),
so nothing listens outside it.

    with Prometheus(node.netns, "127.0.0.1:9105", rule_files=["deploy/alerts.yaml"]) as prom:
        prom.wait_query("routewarden_up", lambda r: r and r[0]["value"][1] == "1")
        prom.wait_alert("RouteMissing")
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import signal
import subprocess
import urllib.parse
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable, Optional

from common import FatalError, HarnessError, ensure_packages, run, unique_name, wait_for
from netns import connect_in

TMP_ROOT = Path("/tmp")


class _NetnsHTTPConnection(http.client.HTTPConnection):
    def __init__(self, netns: str, host: str, port: int, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._netns = netns

    def connect(self) -> None:
        self.sock = connect_in(self._netns, self.host, self.port, self.timeout)


def http_get(netns: str, host: str, port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET http://host:port/path from inside `netns`; (status, body)."""
    conn = _NetnsHTTPConnection(netns, host, port, timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class Prometheus:
    """One Prometheus server; a context manager (start on enter, stop on exit)."""

    def __init__(self, netns: str, target: str, *, rule_files: Iterable[str | Path] = (),
                 port: int = 9090, job: str = "target", metrics_path: str = "/metrics",
                 labels: Optional[dict[str, str]] = None, ready_timeout: float = 60):
        """`labels`: added to every series of the target, as a ServiceMonitor's
        relabelling adds `node` (none by default)."""
        self.netns = netns
        self.target = target
        self.rule_files = [Path(r).resolve() for r in rule_files]
        self.port = port
        self.job = job
        self.metrics_path = metrics_path
        self.labels = dict(labels or {})
        self.ready_timeout = ready_timeout
        self.dir = TMP_ROOT / f"{unique_name()}-prometheus"
        self.proc: Optional[subprocess.Popen] = None

    def __enter__(self) -> "Prometheus":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def config_text(self) -> str:
        """The generated prometheus.yml (JSON is valid YAML)."""
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
            "rule_files": [str(r) for r in self.rule_files],
            "scrape_configs": [{"job_name": self.job, "metrics_path": self.metrics_path,
                                "static_configs": [{"targets": [self.target],
                                                    **({"labels": self.labels} if self.labels else {})}]}],
        }
        return json.dumps(config, indent=2) + "\n"

    def start(self) -> None:
        """Write the config, check it with promtool, start Prometheus, wait for /-/ready."""
        ensure_packages(["prometheus"])
        for r in self.rule_files:
            if not r.is_file():
                raise HarnessError(f"Prometheus rule file {r} does not exist")
        self.dir.mkdir(parents=True)
        try:
            config = self.dir / "prometheus.yml"
            config.write_text(self.config_text())
            run(["promtool", "check", "config", config], timeout=60)
            self._spawn(config)
            wait_for(f"Prometheus in netns {self.netns} on 127.0.0.1:{self.port} to be ready (/-/ready)",
                     self._ready, timeout=self.ready_timeout, interval=0.2, diagnose=self.log_tail)
        except BaseException:
            self.stop()
            raise

    def _spawn(self, config: Path) -> None:
        argv = ["ip", "netns", "exec", self.netns, "prometheus", f"--config.file={config}",
                f"--storage.tsdb.path={self.dir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=info"]
        with open(self.dir / "prometheus.log", "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise _Died(f"Prometheus exited with {self.proc.returncode}\n{self.log_tail()}")
        status, _ = http_get(self.netns, "127.0.0.1", self.port, "/-/ready")
        return status == 200

    @property
    def pid(self) -> Optional[int]:
        """PID of the Prometheus process (`ip netns exec` execs in place)."""
        return self.proc.pid if self.proc else None

    def log_tail(self, limit: int = 3000) -> str:
        """The end of Prometheus' own log."""
        try:
            return "prometheus log (tail):\n" + (self.dir / "prometheus.log").read_text(errors="replace")[-limit:]
        except OSError:
            return "(no prometheus log)"

    # ------------------------------------------------------------ HTTP API

    def api(self, path: str, **params: str) -> object:
        """GET /api/v1/PATH?params and return its `data`; raise unless status is success."""
        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        status, body = http_get(self.netns, "127.0.0.1", self.port, f"/api/v1/{path}{query}")
        try:
            doc = json.loads(body)
        except ValueError:
            raise HarnessError(f"Prometheus /api/v1/{path}: HTTP {status}, not JSON: {body[:300]!r}") from None
        if status != 200 or doc.get("status") != "success":
            raise HarnessError(f"Prometheus /api/v1/{path}{query}: HTTP {status}: {doc.get('error', doc)}")
        return doc["data"]

    def query(self, expr: str) -> list[dict]:
        """Instant query; the result list ({"metric": {...}, "value": [t, "v"]} for vectors)."""
        return self.api("query", query=expr)["result"]

    def query_values(self, expr: str) -> list[float]:
        """Instant query of a vector, as the list of its sample values."""
        return [float(r["value"][1]) for r in self.query(expr)]

    def alerts(self) -> list[dict]:
        """Active alerts (/api/v1/alerts): each has labels, annotations, state, activeAt."""
        return self.api("alerts")["alerts"]

    def targets(self) -> list[dict]:
        """Active scrape targets with health and lastError."""
        return self.api("targets")["activeTargets"]

    def wait_query(self, expr: str, predicate: Callable[[list[dict]], bool], what: str = "",
                   timeout: float = 30) -> list[dict]:
        """Poll `expr` until predicate(result) holds; return that result."""
        def probe():
            result = self.query(expr)
            return result if predicate(result) else None
        return wait_for(f"Prometheus query {expr!r} {what}".strip(), probe, timeout=timeout, interval=0.5,
                        diagnose=self._diagnose)

    def matching_alerts(self, name: str, *, states: Iterable[str] = ("pending", "firing"),
                        labels: Optional[dict[str, str]] = None) -> list[dict]:
        """Active alerts named `name`, in one of `states`, whose labels include `labels`."""
        want = set((labels or {}).items())
        return [a for a in self.alerts() if a["labels"].get("alertname") == name and a["state"] in states
                and want <= set(a["labels"].items())]

    def wait_alert(self, name: str, state: str = "firing", timeout: float = 30, *,
                   states: Optional[Iterable[str]] = None, labels: Optional[dict[str, str]] = None,
                   interval: float = 0.5, diagnose: Optional[Callable[[], str]] = None) -> dict:
        """Wait until alert `name` is in `state` (or any of `states`: pending, firing) with
        labels including `labels`; return it. `diagnose` adds to the failure's diagnostics."""
        states = tuple(states) if states is not None else (state,)
        what = f"alert {name}{labels or ''} to be {' or '.join(states)}"
        return wait_for(what, lambda: next(iter(self.matching_alerts(name, states=states, labels=labels)), None),
                        timeout=timeout, interval=interval, diagnose=self._with(diagnose))

    def wait_alert_resolved(self, name: str, timeout: float = 30, *, labels: Optional[dict[str, str]] = None,
                            interval: float = 0.5, diagnose: Optional[Callable[[], str]] = None) -> None:
        """Wait until no alert `name` with labels including `labels` is pending or firing."""
        wait_for(f"alert {name}{labels or ''} resolved", lambda: not self.matching_alerts(name, labels=labels),
                 timeout=timeout, interval=interval, diagnose=self._with(diagnose))

    def wait_rules_evaluated(self, after: float, timeout: float = 30) -> list[dict]:
        """Wait until every rule group was evaluated at a time covering samples scraped up to
        `after` (Unix seconds, Prometheus's clock); return the groups.

        A group's evaluation timestamp is aligned to its interval, so it may precede the
        group's lastEvaluation (wall time) by up to one interval: the wait is for
        lastEvaluation past `after` plus the group's interval.
        """
        def probe():
            groups = self.api("rules")["groups"]
            if groups and all(_unix_seconds(g["lastEvaluation"]) > after + float(g["interval"]) for g in groups):
                return groups
            return None
        return wait_for(f"every rule group evaluated after {after}", probe, timeout=timeout, interval=0.25,
                        diagnose=self._diagnose)

    def _with(self, diagnose: Optional[Callable[[], str]]) -> Callable[[], str]:
        return self._diagnose if diagnose is None else (lambda: self._diagnose() + "\n" + diagnose())

    def _diagnose(self) -> str:
        try:
            targets = json.dumps([{k: t.get(k) for k in ("scrapeUrl", "health", "lastError")} for t in self.targets()])
            alerts = json.dumps([{"labels": a["labels"], "state": a["state"]} for a in self.alerts()])
        except (HarnessError, OSError) as e:
            targets, alerts = f"(unavailable: {e})", ""
        return f"targets: {targets}\nalerts: {alerts}\n{self.log_tail(1500)}"

    # ------------------------------------------------------------ teardown

    def stop(self) -> None:
        """SIGTERM by PID, SIGKILL after 15 s, then delete the data directory."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


class _Died(FatalError):
    """Prometheus exited while the harness waited for it."""


def _unix_seconds(rfc3339: str) -> float:
    """Prometheus's RFC 3339 time (nanoseconds, Z) as Unix seconds; the zero time gives a negative number."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", rfc3339)
    if not m:
        raise HarnessError(f"not an RFC 3339 time: {rfc3339!r}")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    whole = datetime.fromisoformat(m.group(1) + zone).timestamp()
    return whole + float("0." + (m.group(2) or "0"))
