"""The node's root filesystem: built once with mmdebstrap, cached, copied per boot.

The base tree lives under CACHE_ROOT/rootfs-<key>/, where <key> hashes everything
that decides its content (suite, mirrors, package list, recipe version), so a second
run reuses it and a changed package list builds a new one. A node never boots the
base: each boot gets a fresh copy (an overlayfs over the base, or `cp -a` where
overlayfs is not available) under CACHE_ROOT/nodes/<name>/, removed at teardown.

Command line: `python3 rootfs.py` builds (or finds) the base and prints its path.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

from common import HarnessError, ensure_packages, owner_alive, run

CACHE_ROOT = Path(os.environ.get("RWE2E_CACHE", "/var/cache/routewarden-e2e"))
SUITE = "bookworm"
MIRRORS = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
# polkitd: what systemd and NetworkManager ask whether an unprivileged caller may
# act (the remediation component's rule), as on RHCOS. dbus-broker: RHCOS's system
# bus, installed and left off (dbus-daemon is Debian's); a node may switch to it.
PACKAGES = ("systemd", "systemd-sysv", "dbus", "network-manager", "iproute2", "udev", "polkitd", "dbus-broker")
# Bump when the customization below changes what a base tree holds.
RECIPE_VERSION = 3
HOST_PACKAGES = ("mmdebstrap", "systemd-container", "iproute2", "util-linux")


def cache_key(packages=PACKAGES, suite=SUITE, mirrors=MIRRORS) -> str:
    """A short hash of everything that decides the base tree's content."""
    recipe = {"suite": suite, "mirrors": list(mirrors), "packages": sorted(set(packages)),
              "variant": "minbase", "recipe": RECIPE_VERSION}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def ensure_base(packages=PACKAGES) -> Path:
    """The path of the cached base tree for `packages`, building it if absent.

    Concurrent callers serialize on a lock file; the tree appears under its final
    name only once complete (built in a temporary directory, then renamed).
    """
    key = cache_key(packages)
    base = CACHE_ROOT / f"rootfs-{key}"
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    with open(CACHE_ROOT / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (base / ".rwe2e-complete").exists():
            return base
        ensure_packages(HOST_PACKAGES)
        _build(base, packages, key)
    return base


def _build(base: Path, packages, key: str) -> None:
    tmp = CACHE_ROOT / f"building-{key}-{os.getpid()}"
    for stale in (tmp, base):
        if stale.exists():
            shutil.rmtree(stale)
    started = time.monotonic()
    argv = ["mmdebstrap", "--variant=minbase", "--include=" + ",".join(sorted(set(packages))),
            "--customize-hook=" + _CUSTOMIZE, SUITE, str(tmp), *MIRRORS]
    try:
        run(argv, timeout=1200)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    manifest = {"key": key, "packages": sorted(set(packages)), "suite": SUITE,
                "build_seconds": round(time.monotonic() - started, 1)}
    (tmp / ".rwe2e-complete").write_text(json.dumps(manifest) + "\n")
    os.rename(tmp, base)


# Run by mmdebstrap with "$1" = the new tree. An empty machine-id lets systemd make
# one per boot (nspawn hands it a fresh one); no login prompt on a passive console;
# no timers (apt-daily and friends would reach for the network mid-test); dbus-broker
# installed but not the bus (its package makes itself dbus.service): Debian's
# dbus-daemon stays, a node that wants RHCOS's bus links dbus.service to it.
_CUSTOMIZE = "; ".join([
    'rm -f "$1/etc/systemd/system/dbus.service"',
    'rm -f "$1"/etc/systemd/system/timers.target.wants/*',
    'echo -n > "$1/etc/machine-id"',
    'rm -f "$1/var/lib/dbus/machine-id"',
    'ln -sf /dev/null "$1/etc/systemd/system/getty@.service"',
    'ln -sf /dev/null "$1/etc/systemd/system/console-getty.service"',
])


def base_manifest(base: Path) -> dict:
    """What ensure_base recorded about a base tree (key, packages, build time)."""
    return json.loads((base / ".rwe2e-complete").read_text())


class RootfsCopy:
    """A fresh, writable copy of a base tree for one boot; `remove()` deletes it.

    mode "overlay" mounts an overlayfs (upper layer in the copy's directory) over
    the read-only base; mode "copy" uses `cp -a`. Default: $RWE2E_ROOTFS_MODE, else
    overlay when the kernel has it.
    """

    def __init__(self, base: Path, name: str, mode: str | None = None):
        self.base = base
        self.name = name
        self.dir = CACHE_ROOT / "nodes" / name
        self.mode = mode or os.environ.get("RWE2E_ROOTFS_MODE") or _default_mode()
        self.path = self.dir / ("merged" if self.mode == "overlay" else "root")
        self._make()

    def _make(self) -> None:
        self.dir.mkdir(parents=True)
        try:
            if self.mode not in ("overlay", "copy"):
                raise HarnessError(f"unknown rootfs copy mode {self.mode!r} (overlay or copy)")
            if self.mode == "overlay" and not self._mount_overlay():
                self.mode, self.path = "copy", self.dir / "root"  # e.g. /var/cache itself on overlayfs
            if self.mode == "copy":
                run(["cp", "-a", "--reflink=auto", self.base, self.path], timeout=600)
        except BaseException:
            remove_copy_dir(self.dir)
            raise

    def _mount_overlay(self) -> bool:
        for d in ("upper", "work", "merged"):
            (self.dir / d).mkdir()
        opts = f"lowerdir={self.base},upperdir={self.dir / 'upper'},workdir={self.dir / 'work'}"
        return run(["mount", "-t", "overlay", "overlay", "-o", opts, self.path], check=False).returncode == 0

    def remove(self) -> None:
        """Unmount (if an overlay) and delete the copy."""
        remove_copy_dir(self.dir)


def _default_mode() -> str:
    with open("/proc/filesystems") as f:
        return "overlay" if any(line.split()[-1] == "overlay" for line in f if line.strip()) else "copy"


def remove_copy_dir(d: Path) -> None:
    """Unmount whatever is mounted under `d` (deepest first), then delete it."""
    for mnt in sorted(_mounts_under(d), key=len, reverse=True):
        run(["umount", "-l", mnt], check=False)
    shutil.rmtree(d, ignore_errors=True)
    if d.exists():
        raise HarnessError(f"could not remove rootfs copy {d}")


def _mounts_under(d: Path) -> list[str]:
    prefix = str(d).rstrip("/") + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p.startswith(prefix) or p == str(d)]


def sweep_copies() -> list[str]:
    """Remove rootfs copies and half-built bases left by dead runs; return their paths."""
    removed = []
    for d in sorted((CACHE_ROOT / "nodes").glob("*")) if (CACHE_ROOT / "nodes").exists() else []:
        if not owner_alive(d.name):
            remove_copy_dir(d)
            removed.append(str(d))
    for d in CACHE_ROOT.glob("building-*") if CACHE_ROOT.exists() else []:
        pid = d.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(str(d))
    return removed


if __name__ == "__main__":
    t0 = time.monotonic()
    b = ensure_base()
    print(f"{b} ({time.monotonic() - t0:.1f}s; {base_manifest(b)})", file=sys.stderr)
    print(b)
