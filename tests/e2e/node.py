"""A booted node: systemd as PID 1, the system bus and NetworkManager in a container.

The recipe is /work/shared/notes/node-in-a-box.md section 3: a network namespace
holding ens5 (its veth peer on the host is the gateway 172.18.0.1/16, both ends up
before boot), a NetworkManager keyfile for ens5, and systemd-nspawn booting a fresh
copy of the cached rootfs into that namespace without registering with machined.

    with Node(machineconfig="examples/seed-machineconfig.yaml") as node:
        node.systemctl_show("nmcli-dev-modify.service")["ActiveState"]
        node.ip_routes()
        node.netns_exec(["routewarden", "check", ...])   # a host program in the node's netns

From the host the node is what a hostNetwork DaemonSet pod with a hostPath D-Bus
socket sees: routes via the netns (`netns`), the bus via `bus_address`, files via
`root` (/proc/PID1/root).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, Optional, TypeVar

import mcd
import rootfs
from common import FatalError, HarnessError, children, run, unique_name, wait_for, wait_pid_exit
from ifaddr import AddrInfo, dump_addrs
from netns import NetNS

GATEWAY = "172.18.0.1/16"
NODE_ADDRESS = "172.18.0.2/16"
KEYFILE_PATH = "/etc/NetworkManager/system-connections/ens5.nmconnection"
ENS5_KEYFILE = """[connection]
id=ens5
type=ethernet
interface-name=ens5

[ipv4]
method=manual
address1=172.18.0.2/16

[ipv6]
method=disabled
"""
T = TypeVar("T")
NODE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0", "TERM": "dumb"}


class Node:
    """One booted node; a context manager that tears everything down on exit.

    machineconfig: a MachineConfig dict or a path to a YAML/JSON file, applied to
    the rootfs before boot (mcd.apply_offline); prepare: a callable given the rootfs
    directory, run after that and before boot.
    """

    def __init__(self, machineconfig=None, *, packages=rootfs.PACKAGES, boot_timeout: float = 120,
                 network_timeout: float = 60, prepare: Optional[Callable[[Path], None]] = None, rootfs_mode: Optional[str] = None):
        if isinstance(machineconfig, (str, os.PathLike)):
            machineconfig = mcd.load(machineconfig)
        self.machineconfig: Optional[dict] = machineconfig
        self.packages = packages
        self.boot_timeout = boot_timeout
        self.network_timeout = network_timeout
        self.prepare = prepare
        self.rootfs_mode = rootfs_mode
        self.name = unique_name()
        self.netns = self.name          # network namespace name (/run/netns/NAME)
        self.host_veth = self.name      # the gateway end on the host
        self.pid1: Optional[int] = None
        self.nspawn: Optional[subprocess.Popen] = None
        self.copy: Optional[rootfs.RootfsCopy] = None
        self._ns: Optional[NetNS] = None
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------ lifecycle

    def __enter__(self) -> "Node":
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.stop(raise_errors=exc_type is None)

    def start(self) -> None:
        """Copy the rootfs, wire the network, apply the config, boot, wait until up."""
        try:
            base = self._timed("rootfs_base", lambda: rootfs.ensure_base(self.packages))
            self.copy = self._timed("rootfs_copy", lambda: rootfs.RootfsCopy(base, self.name, self.rootfs_mode))
            self._wire_network()
            self._prepare_tree()
            self._timed("boot", self._boot)
            self._timed("network", self._wait_network)
        except BaseException:
            self.stop(raise_errors=False)
            raise

    def _timed(self, what: str, fn: Callable[[], T]) -> T:
        t0 = time.monotonic()
        result = fn()
        self.timings[what] = round(time.monotonic() - t0, 2)
        return result

    @property
    def rootfs_dir(self) -> Path:
        """The node's root directory on the host (the rootfs copy)."""
        if self.copy is None:
            raise HarnessError(f"node {self.name}: no rootfs copy yet")
        return self.copy.path

    @property
    def root(self) -> Path:
        """The node's / as seen from the host through its PID 1 (includes its /run)."""
        if self.pid1 is None:
            raise HarnessError(f"node {self.name}: not booted")
        return Path(f"/proc/{self.pid1}/root")

    @property
    def bus_address(self) -> str:
        """D-Bus address of the node's system bus, usable from the host."""
        return f"unix:path={self.root}/run/dbus/system_bus_socket"

    def _wire_network(self) -> None:
        self._ns = NetNS(self.netns)
        run(["ip", "link", "add", "ens5", "netns", self.netns, "type", "veth", "peer", "name", self.host_veth])
        run(["ip", "addr", "add", GATEWAY, "dev", self.host_veth])
        run(["ip", "link", "set", self.host_veth, "up"])
        run(["ip", "-n", self.netns, "link", "set", "ens5", "up"])

    def _prepare_tree(self) -> None:
        root = self.rootfs_dir
        mcd.write_atomic(root, KEYFILE_PATH, ENS5_KEYFILE.encode(), 0o600)
        if self.machineconfig is not None:
            mcd.apply_offline(root, self.machineconfig)
        if self.prepare is not None:
            self.prepare(root)

    def _boot(self) -> None:
        log = open(self.copy.dir / "nspawn.log", "wb")
        argv = ["systemd-nspawn", "-D", str(self.rootfs_dir), "--capability=all",
                f"--network-namespace-path={self._ns.path}", "-b", "--console=passive",
                "-M", self.name, "--register=no", "--keep-unit"]
        env = dict(os.environ, SYSTEMD_NSPAWN_API_VFS_WRITABLE="network")
        with log:
            self.nspawn = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                           env=env, start_new_session=True)
        self.pid1 = wait_for(f"the PID 1 of node {self.name} (child of systemd-nspawn {self.nspawn.pid})",
                             self._find_pid1, timeout=30, diagnose=self._nspawn_log)
        wait_for(f"node {self.name} to finish booting (systemctl is-system-running --wait: running|degraded)",
                 self._system_state_ok, timeout=self.boot_timeout, interval=0.5, diagnose=self.diagnostics)

    def _find_pid1(self) -> Optional[int]:
        if self.nspawn.poll() is not None:
            raise NodeDied(f"systemd-nspawn exited with {self.nspawn.returncode} before PID 1 appeared\n"
                           + self._nspawn_log())
        for pid in children(self.nspawn.pid):
            if _nspid(pid)[-1:] == [1]:
                return pid
        return None

    def _system_state_ok(self) -> Optional[str]:
        self._check_alive()
        cp = self.run("systemctl", "is-system-running", "--wait", check=False, timeout=self.boot_timeout)
        state = cp.stdout.strip()
        return state if state in ("running", "degraded") else None

    def ens5_connected(self) -> bool:
        """NetworkManager reports ens5 connected."""
        out = self.run("nmcli", "-t", "-f", "DEVICE,STATE", "device", check=False).stdout
        return "ens5:connected" in out.splitlines()

    def _wait_network(self) -> None:
        wait_for(f"NetworkManager in node {self.name} to report ens5 connected", self.ens5_connected,
                 timeout=self.network_timeout, interval=0.3,
                 diagnose=lambda: self.diagnostics("NetworkManager.service"))

    def _check_alive(self) -> None:
        if self.nspawn is not None and self.nspawn.poll() is not None:
            raise NodeDied(f"systemd-nspawn of node {self.name} exited with {self.nspawn.returncode}\n"
                           + self._nspawn_log())

    def _nspawn_log(self) -> str:
        try:
            text = (self.copy.dir / "nspawn.log").read_text(errors="replace")
        except (OSError, AttributeError):
            return "(no nspawn log)"
        return "systemd-nspawn output (tail):\n" + text[-3000:]

    # ------------------------------------------------------------ inside the node

    def run(self, *args, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a command inside the node (all of PID 1's namespaces) and capture its output."""
        if self.pid1 is None:
            raise HarnessError(f"node {self.name}: not booted")
        return run(self.node_argv(args), check=check, timeout=timeout, env=NODE_ENV)

    def node_argv(self, args) -> list[str]:
        """`args` wrapped to run inside the node: nsenter into all of PID 1's namespaces,
        with setpriv making the command die with nsenter (a killed or timed-out call
        leaves no orphan in the node to slow its poweroff)."""
        return ["nsenter", "-t", str(self.pid1), "-a", "setpriv", "--pdeathsig", "KILL", "--", *map(str, args)]

    def systemctl_show(self, unit: str, *properties: str) -> dict[str, str]:
        """`systemctl show UNIT` inside the node as a dict (only `properties` if given)."""
        argv = ["systemctl", "show", unit, "--no-pager"]
        if properties:
            argv.append("--property=" + ",".join(properties))
        out = self.run(*argv).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def journal(self, unit: Optional[str] = None, lines: int = 40) -> str:
        """The node journal's last lines (of `unit` if given), monotonic timestamps."""
        argv = ["journalctl", "--no-pager", "-o", "short-monotonic", "-n", str(lines)]
        if unit:
            argv += ["-u", unit]
        return self.run(*argv, check=False).stdout

    def diagnostics(self, unit: Optional[str] = None) -> str:
        """State worth reading when a wait fails: unit status and journal, routes, devices."""
        parts = []
        cmds = [("systemctl", "is-system-running"), ("systemctl", "--failed", "--no-pager"),
                ("nmcli", "-t", "device"), ("ip", "route", "show", "table", "all")]
        if unit:
            cmds.insert(0, ("systemctl", "status", "--no-pager", "-l", unit))
        for cmd in cmds:
            try:
                cp = self.run(*cmd, check=False, timeout=15)
                parts.append(f"$ {shlex.join(cmd)}\n{cp.stdout}{cp.stderr}")
            except HarnessError as e:
                parts.append(f"$ {shlex.join(cmd)}\n{e}")
        try:
            parts.append(f"journal{' of ' + unit if unit else ''}:\n{self.journal(unit)}")
        except HarnessError as e:
            parts.append(f"journal: {e}")
        return "\n".join(parts)

    def wait_unit(self, unit: str, predicate: Callable[[dict], bool], what: str, timeout: float = 30) -> dict:
        """Wait until `predicate(systemctl_show(unit))` holds; return that show dict."""
        def probe():
            show = self.systemctl_show(unit)
            return show if predicate(show) else None
        return wait_for(f"{unit} in node {self.name}: {what}", probe, timeout=timeout,
                        diagnose=lambda: self.diagnostics(unit))

    # ------------------------------------------------------------ the node's network namespace

    def ip_routes(self, table: Optional[str | int] = None, family: str = "-4") -> list[dict]:
        """`ip -j route show [table T]` in the node's namespace, parsed."""
        argv = ["ip", family, "-j", "-n", self.netns, "route", "show"]
        if table is not None:
            argv += ["table", str(table)]
        return json.loads(run(argv).stdout or "[]")

    def addresses(self, ifname: Optional[str] = None) -> list[AddrInfo]:
        """IPv4 addresses in the node's namespace over rtnetlink, with creation stamps."""
        return [a for a in dump_addrs(self.netns) if ifname is None or a.label == ifname]

    def netns_argv(self, argv) -> list[str]:
        """`argv` wrapped to run on the host inside the node's network namespace."""
        return ["ip", "netns", "exec", self.netns, *map(str, argv)]

    def netns_exec(self, argv, *, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a host program in the node's network namespace (as the agent runs)."""
        return run(self.netns_argv(argv), check=check, timeout=timeout)

    def netns_popen(self, argv, **kwargs) -> subprocess.Popen:
        """Start a host program in the node's namespace; `ip netns exec` execs, so the PID is the program's."""
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.Popen(self.netns_argv(argv), **kwargs)

    # ------------------------------------------------------------ config rollout

    def apply_config(self, machineconfig) -> mcd.ApplyReport:
        """Roll a new MachineConfig out to the running node (no reboot), as the MCD does."""
        if isinstance(machineconfig, (str, os.PathLike)):
            machineconfig = mcd.load(machineconfig)
        report = mcd.rollout(self.root, machineconfig, lambda: self.run("systemctl", "daemon-reload"))
        self.machineconfig = machineconfig
        return report

    # ------------------------------------------------------------ reboot

    def reboot(self) -> None:
        """Power the node off and boot it again on the same root filesystem, as a reboot
        does: files stay, the kernel state of its network (ens5's addresses and the routes
        through it) is reset, a new PID 1 starts (`root` and `bus_address` change with it)."""
        self._stop_container()
        self._reset_network()
        self._timed("reboot", self._boot)
        self._timed("reboot_network", self._wait_network)

    def _reset_network(self) -> None:
        # Down drops every IPv4 route through ens5, in every table; its addresses go
        # with the flush. Up again before the boot, or NetworkManager leaves it unavailable.
        run(["ip", "-n", self.netns, "link", "set", "ens5", "down"])
        run(["ip", "-n", self.netns, "addr", "flush", "dev", "ens5"])
        run(["ip", "-n", self.netns, "link", "set", "ens5", "up"])

    # ------------------------------------------------------------ teardown

    def stop(self, raise_errors: bool = True) -> None:
        """Power off, end nspawn (by PID after a timeout), delete netns, veth and rootfs copy."""
        errors = []
        for step in (self._stop_container, self._delete_network, self._remove_copy):
            try:
                step()
            except Exception as e:
                errors.append(f"{step.__name__}: {e}")
        if errors and raise_errors:
            raise HarnessError(f"teardown of node {self.name} failed: " + "; ".join(errors))

    def _stop_container(self) -> None:
        if self.nspawn is None:
            return
        if self.nspawn.poll() is None and self.pid1 is not None:
            self.run("systemctl", "poweroff", "--no-block", check=False, timeout=15)
            if not wait_pid_exit(self.nspawn.pid, 30):
                _kill_container(self.nspawn.pid, self.pid1)
        try:
            self.nspawn.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise HarnessError(f"systemd-nspawn {self.nspawn.pid} still running after SIGKILL") from None
        self.pid1 = None

    def _delete_network(self) -> None:
        if self._ns is not None:
            self._ns.delete()
        if os.path.exists(f"/sys/class/net/{self.host_veth}"):
            run(["ip", "link", "del", self.host_veth], check=False)
        _remove_propagate_dir(self.name)

    def _remove_copy(self) -> None:
        if self.copy is not None:
            self.copy.remove()
            self.copy = None


class NodeDied(FatalError):
    """systemd-nspawn ended while the harness waited on the node."""


def _nspid(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return [int(x) for x in line.split()[1:]]
    except FileNotFoundError:
        pass
    return []


def _kill_container(nspawn_pid: int, pid1: Optional[int]) -> None:
    """SIGTERM nspawn (it asks the container to halt); then SIGKILL PID 1 and nspawn."""
    _signal(nspawn_pid, signal.SIGTERM)
    if wait_pid_exit(nspawn_pid, 10):
        return
    if pid1 is not None and pid1 in children(nspawn_pid):
        _signal(pid1, signal.SIGKILL)  # ends the whole PID namespace
    _signal(nspawn_pid, signal.SIGKILL)
    wait_pid_exit(nspawn_pid, 10)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _remove_propagate_dir(name: str) -> None:
    d = Path("/run/systemd/nspawn/propagate") / name
    if d.is_dir():
        try:
            for p in d.iterdir():
                p.unlink()
            d.rmdir()
        except OSError:
            pass
