"""Shared plumbing of the e2e harness: commands, waits, names, packages.

Every name this harness gives to a host object (network namespace, veth, machine,
rootfs copy, temporary directory) starts with PREFIX and carries the PID of the
Python process that made it, so `owner_alive()` can tell leftovers of a crashed
run from objects of a run still going on.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shlex
import signal
import subprocess
import time
from typing import Callable, Iterable, Optional, TypeVar

T = TypeVar("T")

PREFIX = "rwe2e"
_counter = itertools.count()


class HarnessError(RuntimeError):
    """A step of the harness failed; the message names the step and its state."""


class WaitTimeout(HarnessError):
    """A condition did not hold within its timeout."""


class FatalError(HarnessError):
    """A failure that no amount of waiting can fix: wait_for re-raises it at once."""


def unique_name() -> str:
    """A name unique on this host for this process: rwe2e-<pid hex>-<n hex>.

    At most 15 characters (IFNAMSIZ - 1), so it also serves as a link name.
    """
    name = f"{PREFIX}-{os.getpid():x}-{next(_counter):x}"
    if len(name) > 15:
        raise HarnessError(f"generated name {name!r} is longer than an interface name may be")
    return name


def owner_pid(name: str) -> Optional[int]:
    """The PID encoded in a harness name, or None if the name is not ours."""
    parts = name.split("-")
    if len(parts) < 3 or parts[0] != PREFIX:
        return None
    try:
        return int(parts[1], 16)
    except ValueError:
        return None


def owner_alive(name: str) -> bool:
    """True if the process that made `name` still runs (so it is not a leftover)."""
    pid = owner_pid(name)
    return pid is not None and os.path.exists(f"/proc/{pid}")


def run(argv: Iterable[str], *, check: bool = True, timeout: float = 60,
        input: Optional[str] = None, env: Optional[dict] = None) -> subprocess.CompletedProcess:
    """Run a command, capture text output, raise HarnessError with its output on failure.

    On timeout (or an interrupt) the command's own children are killed before it, so
    a wrapper that forked into another PID namespace (nsenter -a) reaps its child
    instead of leaving a zombie that only the host's init could collect (such a zombie
    stalls the node's poweroff for 10 s). Commands get their own session so a signal
    to our process group (`timeout` in run.sh) reaches only us; we abort them here.
    """
    argv = [str(a) for a in argv]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        out, err = proc.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        out, err = _abort(proc)
        raise HarnessError(f"command timed out after {timeout}s: {shlex.join(argv)}\n"
                           f"stdout: {_tail(out)}\nstderr: {_tail(err)}") from None
    except BaseException:
        _abort(proc)
        raise
    cp = subprocess.CompletedProcess(argv, proc.returncode, out, err)
    if check and cp.returncode != 0:
        raise HarnessError(f"command failed with exit code {cp.returncode}: {shlex.join(argv)}\n"
                           f"stdout: {_tail(cp.stdout)}\nstderr: {_tail(cp.stderr)}")
    return cp


def _abort(proc: subprocess.Popen) -> tuple[str, str]:
    for child in children(proc.pid):
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        return proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


def children(pid: int) -> list[int]:
    """Direct children of `pid` (empty if it is gone)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


def _tail(text, limit: int = 4000) -> str:
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return text if len(text) <= limit else "..." + text[-limit:]


def wait_for(what: str, probe: Callable[[], T], *, timeout: float = 60, interval: float = 0.2,
             diagnose: Optional[Callable[[], str]] = None) -> T:
    """Poll `probe` until it returns a truthy value and return that value.

    On timeout raise WaitTimeout naming `what`, the last value or exception the probe
    gave, and the text of `diagnose()` (the state worth seeing: unit status, journal,
    routes). Probe exceptions of type HarnessError/OSError count as "not yet",
    except FatalError, which ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            last = probe()
            if last:
                return last  # type: ignore[return-value]
        except FatalError:
            raise
        except (HarnessError, OSError) as e:
            last = e
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    detail = ""
    if diagnose is not None:
        try:
            detail = "\n" + diagnose()
        except Exception as e:  # diagnostics must never hide the timeout itself
            detail = f"\n(diagnostics failed: {e!r})"
    raise WaitTimeout(f"timed out after {timeout}s waiting for {what}; last probe result: {last!r}{detail}")


def wait_pid_exit(pid: int, timeout: float) -> bool:
    """Wait until process `pid` (a child or not) is gone or a zombie; True if it is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_running(pid):
            return True
        time.sleep(0.1)
    return not pid_running(pid)


def pid_running(pid: int) -> bool:
    """True if `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def missing_packages(packages: Iterable[str]) -> list[str]:
    """The Debian packages of `packages` that dpkg does not report as installed."""
    missing = []
    for p in packages:
        cp = subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True)
        if cp.returncode != 0 or "install ok installed" not in cp.stdout:
            missing.append(p)
    return missing


def ensure_packages(packages: Iterable[str]) -> None:
    """Install the missing ones of `packages` with apt-get (idempotent, quiet if none)."""
    missing = missing_packages(packages)
    if not missing:
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update"], timeout=600, env=env)
    with _no_service_starts():
        run(["apt-get", "install", "-y", "--no-install-recommends", *missing], timeout=1200, env=env)


@contextlib.contextmanager
def _no_service_starts():
    """Keep maintainer scripts from starting daemons (prometheus would take :9090).

    Installs a policy-rc.d that denies every start, unless one exists already.
    """
    path = "/usr/sbin/policy-rc.d"
    if os.path.exists(path):
        yield
        return
    with open(path, "w") as f:
        f.write("#!/bin/sh\n# written by routewarden tests/e2e for one apt-get install\nexit 101\n")
    os.chmod(path, 0o755)
    try:
        yield
    finally:
        os.unlink(path)
