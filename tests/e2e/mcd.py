"""Apply a MachineConfig to a node's root filesystem the way machine-config-daemon does.

- storage.files: source is an RFC 2397 data URL (percent-encoded or ;base64),
  optionally `compression: gzip`; written atomically (temp file + rename) with
  `mode` (decimal in JSON, 420 = 0644; default 0644), owner from user/group
  (name or id, looked up in the node's /etc/passwd and /etc/group; default root),
  parent directories created 0755.
- systemd.units: `contents` -> /etc/systemd/system/NAME, `dropins` ->
  /etc/systemd/system/NAME.d/DROPIN; `mask: true` -> NAME is a symlink to /dev/null;
  `enabled: true` -> a symlink in TARGET.wants/ (TARGET.requires/) for each
  WantedBy= (RequiredBy=) of the unit's [Install] section, plus Alias= links, as
  `systemctl enable` makes; `enabled: false` -> those symlinks removed.
- the whole MachineConfig object, as JSON, in /etc/machine-config-daemon/currentconfig
  (`write_hypershift_config`: in /etc/mcd-currentconfig.json, currentconfig empty, as
  on a HyperShift node; `remove_node_configs`: no MachineConfig file at all).

`apply_offline(root, mc)` prepares a tree before boot. `rollout(root, mc, reload)`
updates a running node without reboot: files and units of the previous config
(read from currentconfig) that the new one drops are removed, changed ones written,
then `reload()` (systemctl daemon-reload inside the node), then currentconfig is
replaced atomically, last, as the MCD does once an update is complete.

Paths are resolved inside `root` like chroot would (absolute symlinks stay in the
tree). Nothing here prints file contents: real MachineConfigs hold the pull secret.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import posixpath
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

SYSTEMD_DIR = "/etc/systemd/system"
CURRENT_CONFIG = "/etc/machine-config-daemon/currentconfig"
# HyperShift: currentconfig is empty, the daemon reads these in this order.
MCD_CURRENT_CONFIG = "/etc/mcd-currentconfig.json"
MCS_CONTENT = "/etc/mcs-machine-config-content.json"
NODE_CONFIGS = (CURRENT_CONFIG, MCD_CURRENT_CONFIG, MCS_CONTENT)
UNIT_SEARCH_PATH = ("/etc/systemd/system", "/run/systemd/system", "/lib/systemd/system",
                    "/usr/lib/systemd/system")
DEFAULT_FILE_MODE = 0o644
DIR_MODE = 0o755


class MachineConfigError(ValueError):
    """The MachineConfig cannot be applied; the message names the field."""


@dataclass
class ApplyReport:
    """What an apply changed, by path inside the node (no contents)."""
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- loading

def load(path: str | os.PathLike) -> dict:
    """Read one MachineConfig from a YAML or JSON file and check its kind."""
    text = Path(path).read_text()
    if text.lstrip().startswith("{"):
        mc = json.loads(text)
    else:
        import yaml  # Debian python3-yaml
        mc = yaml.safe_load(text)
    if not isinstance(mc, dict) or mc.get("kind") != "MachineConfig":
        raise MachineConfigError(f"{path}: not a single MachineConfig (kind={mc.get('kind') if isinstance(mc, dict) else type(mc).__name__})")
    return mc


def ignition(mc: dict) -> dict:
    """spec.config of a MachineConfig (the Ignition config), {} if absent."""
    return ((mc.get("spec") or {}).get("config") or {})


def files_of(mc: dict) -> list[dict]:
    """storage.files of the MachineConfig; other storage sections are refused."""
    storage = ignition(mc).get("storage") or {}
    for unsupported in ("directories", "links", "disks", "filesystems", "raid", "luks"):
        if storage.get(unsupported):
            raise MachineConfigError(f"storage.{unsupported} is not supported by this MCD emulation")
    return list(storage.get("files") or [])


def units_of(mc: dict) -> list[dict]:
    """systemd.units of the MachineConfig."""
    return list((ignition(mc).get("systemd") or {}).get("units") or [])


def merge(base: dict, *more: dict) -> dict:
    """MachineConfigs merged as the MCO renders a pool's config: files by path and
    units by name, a later config replacing an earlier one's; `base` names it."""
    out = json.loads(json.dumps(base))
    files = {f["path"]: f for f in files_of(out)}
    units = {u["name"]: u for u in units_of(out)}
    for mc in more:
        files.update({f["path"]: f for f in files_of(mc)})
        units.update({u["name"]: u for u in units_of(mc)})
    config = out.setdefault("spec", {}).setdefault("config", {})
    config.setdefault("storage", {})["files"] = list(files.values())
    config.setdefault("systemd", {})["units"] = list(units.values())
    return out


# ---------------------------------------------------------------- decoding (pure)

def decode_data_url(url: str) -> bytes:
    """The bytes of an RFC 2397 data URL: data:[<mediatype>][;base64],<data>."""
    if not url.startswith("data:"):
        raise MachineConfigError(f"only data: URLs are supported as file sources, got scheme {url.split(':', 1)[0]!r}")
    header, sep, data = url[5:].partition(",")
    if not sep:
        raise MachineConfigError("data URL without a ',' separating header and data")
    if header.split(";")[-1].strip().lower() == "base64":
        try:
            return base64.b64decode(urllib.parse.unquote(data), validate=True)
        except ValueError as e:
            raise MachineConfigError(f"data URL has invalid base64: {e}") from None
    return urllib.parse.unquote_to_bytes(data)


def file_bytes(entry: dict) -> bytes:
    """Decoded contents of one storage.files entry (data URL, optional gzip)."""
    if entry.get("append"):
        raise MachineConfigError(f"{entry.get('path')}: append is not supported by the MCD")
    contents = entry.get("contents") or {}
    source = contents.get("source")
    raw = decode_data_url(source) if source else b""
    compression = contents.get("compression") or ""
    if compression == "gzip":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise MachineConfigError(f"{entry.get('path')}: gzip contents do not decompress: {e}") from None
    if compression:
        raise MachineConfigError(f"{entry.get('path')}: unsupported compression {compression!r}")
    return raw


def file_mode(entry: dict) -> int:
    """Permission bits of one storage.files entry (decimal in JSON), default 0644."""
    mode = entry.get("mode")
    if mode is None:
        return DEFAULT_FILE_MODE
    if not isinstance(mode, int) or not 0 <= mode <= 0o7777:
        raise MachineConfigError(f"{entry.get('path')}: invalid mode {mode!r}")
    return mode


def install_section(unit_text: str) -> dict[str, list[str]]:
    """Keys of a unit file's [Install] section, each with its space-separated values.

    An empty assignment resets the list, as systemd does.
    """
    section, out = None, {}
    for line in _logical_lines(unit_text):
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif section == "Install" and "=" in line:
            key, value = (s.strip() for s in line.split("=", 1))
            out[key] = out.get(key, []) + value.split() if value else []
    return out


def _logical_lines(text: str):
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        yield pending + line
        pending = ""


def template_of(name: str) -> str:
    """foo@bar.service -> foo@.service; other names unchanged."""
    if "@" not in name:
        return name
    prefix, rest = name.split("@", 1)
    return f"{prefix}@{rest[rest.rfind('.'):]}" if "." in rest else name


# ---------------------------------------------------------------- paths inside the root

def resolve_in_root(root: Path, path: str, follow_last: bool = False, _depth: int = 0) -> Path:
    """Host path of `path` inside `root`, following symlinks as if root were /.

    The last component is followed only with follow_last (writers replace it).
    """
    if not path.startswith("/") or ".." in path.split("/"):
        raise MachineConfigError(f"path {path!r} must be absolute and free of '..'")
    parts = [p for p in path.split("/") if p]
    current = "/"
    for i, part in enumerate(parts):
        candidate = posixpath.join(current, part)
        host = Path(str(root) + candidate)
        last = i == len(parts) - 1
        if host.is_symlink() and (follow_last or not last):
            if _depth > 40:
                raise MachineConfigError(f"too many symlinks resolving {path!r}")
            target = os.readlink(host)
            target = target if target.startswith("/") else posixpath.join(current, target)
            current = str(resolve_in_root(root, posixpath.normpath(target), True, _depth + 1))[len(str(root)):] or "/"
        else:
            current = candidate
    return Path(str(root) + current)


def _makedirs(root: Path, directory: str) -> Path:
    host = resolve_in_root(root, directory, follow_last=True)
    if not host.is_dir():
        parent = posixpath.dirname(directory.rstrip("/"))
        if parent != directory:
            _makedirs(root, parent)
        host = resolve_in_root(root, directory, follow_last=True)
        host.mkdir(mode=DIR_MODE, exist_ok=True)
    return host


def write_atomic(root: Path, path: str, data: bytes, mode: int, uid: int = 0, gid: int = 0) -> bool:
    """Write `data` to `path` inside `root` via temp file + rename; False if already so."""
    directory = _makedirs(root, posixpath.dirname(path))
    target = directory / posixpath.basename(path)
    if _same_file(target, data, mode, uid, gid):
        return False
    tmp = directory / f".{target.name}.rwe2e-tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, data)
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, target)
    return True


def _same_file(target: Path, data: bytes, mode: int, uid: int, gid: int) -> bool:
    try:
        st = os.lstat(target)
        if not os.path.isfile(target) or os.path.islink(target):
            return False
        return (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (mode, uid, gid) and target.read_bytes() == data
    except FileNotFoundError:
        return False


def _symlink(root: Path, link: str, target: str) -> None:
    directory = _makedirs(root, posixpath.dirname(link))
    host = directory / posixpath.basename(link)
    if host.is_symlink() and os.readlink(host) == target:
        return
    tmp = directory / f".{host.name}.rwe2e-tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp)
    os.rename(tmp, host)


def _remove(root: Path, path: str) -> bool:
    host = resolve_in_root(root, path)
    if host.is_symlink() or host.is_file():
        host.unlink()
        return True
    return False


# ---------------------------------------------------------------- ownership

def _lookup_id(root: Path, db: str, spec: Optional[dict]) -> int:
    if not spec:
        return 0
    if spec.get("id") is not None:
        return int(spec["id"])
    name = spec.get("name")
    if not name:
        return 0
    for line in resolve_in_root(root, f"/etc/{db}", True).read_text().splitlines():
        fields = line.split(":")
        if len(fields) > 2 and fields[0] == name:
            return int(fields[2])
    raise MachineConfigError(f"{db} entry {name!r} not found in the node's /etc/{db}")


# ---------------------------------------------------------------- writing a config

def write_files(root: Path, mc: dict, report: ApplyReport) -> None:
    """Write every storage.files entry of `mc` into `root`."""
    for entry in files_of(mc):
        path = entry.get("path") or ""
        data, mode = file_bytes(entry), file_mode(entry)
        uid, gid = _lookup_id(root, "passwd", entry.get("user")), _lookup_id(root, "group", entry.get("group"))
        changed = write_atomic(root, path, data, mode, uid, gid)
        (report.written if changed else report.unchanged).append(path)


def write_units(root: Path, mc: dict, report: ApplyReport) -> None:
    """Write, mask, enable or disable every systemd.units entry of `mc` in `root`."""
    for unit in units_of(mc):
        name = unit.get("name") or ""
        if not name or "/" in name:
            raise MachineConfigError(f"invalid unit name {name!r}")
        _write_dropins(root, name, unit.get("dropins") or [], report)
        path = f"{SYSTEMD_DIR}/{name}"
        if unit.get("mask"):
            _symlink(root, path, "/dev/null")
            report.links.append(path)
            continue
        _unmask(root, path, report)
        if unit.get("contents") is not None:
            changed = write_atomic(root, path, unit["contents"].encode(), DEFAULT_FILE_MODE)
            (report.written if changed else report.unchanged).append(path)
        if unit.get("enabled") is True:
            enable_unit(root, name, report)
        elif unit.get("enabled") is False:
            disable_unit(root, name, report)


def _write_dropins(root: Path, name: str, dropins: list[dict], report: ApplyReport) -> None:
    for d in dropins:
        dname = d.get("name") or ""
        if not dname or "/" in dname:
            raise MachineConfigError(f"unit {name}: invalid dropin name {dname!r}")
        if d.get("contents") is None:
            continue
        path = f"{SYSTEMD_DIR}/{name}.d/{dname}"
        changed = write_atomic(root, path, d["contents"].encode(), DEFAULT_FILE_MODE)
        (report.written if changed else report.unchanged).append(path)


def _unmask(root: Path, path: str, report: ApplyReport) -> None:
    host = resolve_in_root(root, path)
    if host.is_symlink() and os.readlink(host) == "/dev/null":
        host.unlink()
        report.removed.append(path)


def find_unit_file(root: Path, name: str) -> Optional[str]:
    """The node path of the unit file for `name` (or its template), first in search order."""
    for candidate in dict.fromkeys((name, template_of(name))):
        for directory in UNIT_SEARCH_PATH:
            path = f"{directory}/{candidate}"
            host = resolve_in_root(root, path)
            if host.exists() and not (host.is_symlink() and os.readlink(host) == "/dev/null"):
                return path
    return None


def enable_unit(root: Path, name: str, report: ApplyReport) -> None:
    """Make the symlinks `systemctl enable NAME` makes, from the unit's [Install]."""
    unit_path = find_unit_file(root, name)
    if unit_path is None:
        raise MachineConfigError(f"unit {name}: enabled but no unit file found in {UNIT_SEARCH_PATH}")
    install = install_section(resolve_in_root(root, unit_path, True).read_text())
    for key, suffix in (("WantedBy", ".wants"), ("RequiredBy", ".requires")):
        for target in install.get(key, []):
            link = f"{SYSTEMD_DIR}/{target}{suffix}/{name}"
            _symlink(root, link, unit_path)
            report.links.append(link)
    for alias in install.get("Alias", []):
        _symlink(root, f"{SYSTEMD_DIR}/{alias}", unit_path)
        report.links.append(f"{SYSTEMD_DIR}/{alias}")


def disable_unit(root: Path, name: str, report: ApplyReport) -> None:
    """Remove the .wants/.requires symlinks to `name` under /etc/systemd/system."""
    etc = resolve_in_root(root, SYSTEMD_DIR, True)
    for dep_dir in sorted(etc.glob("*.wants")) + sorted(etc.glob("*.requires")):
        link = dep_dir / name
        if link.is_symlink():
            link.unlink()
            report.removed.append(f"{SYSTEMD_DIR}/{dep_dir.name}/{name}")


def remove_dropped(root: Path, previous: dict, mc: dict, report: ApplyReport) -> None:
    """Delete files, units and dropins that `previous` declared and `mc` does not."""
    new_files = {f.get("path") for f in files_of(mc)}
    for f in files_of(previous):
        if f.get("path") not in new_files and _remove(root, f["path"]):
            report.removed.append(f["path"])
    new_units = {u.get("name"): u for u in units_of(mc)}
    for u in units_of(previous):
        name = u.get("name")
        kept = new_units.get(name)
        new_dropins = {d.get("name") for d in (kept or {}).get("dropins") or []}
        for d in u.get("dropins") or []:
            path = f"{SYSTEMD_DIR}/{name}.d/{d.get('name')}"
            if d.get("name") not in new_dropins and _remove(root, path):
                report.removed.append(path)
        if kept is None:
            disable_unit(root, name, report)
            if (u.get("contents") is not None or u.get("mask")) and _remove(root, f"{SYSTEMD_DIR}/{name}"):
                report.removed.append(f"{SYSTEMD_DIR}/{name}")


def write_current_config(root: Path, mc: dict) -> None:
    """Replace /etc/machine-config-daemon/currentconfig (JSON) atomically."""
    write_atomic(root, CURRENT_CONFIG, json.dumps(mc, separators=(",", ":")).encode(), DEFAULT_FILE_MODE)


def write_hypershift_config(root: Path, mc: dict) -> None:
    """Lay the config out as on a HyperShift node: /etc/mcd-currentconfig.json holds it,
    then currentconfig is emptied (both atomically)."""
    write_atomic(root, MCD_CURRENT_CONFIG, json.dumps(mc, separators=(",", ":")).encode(), DEFAULT_FILE_MODE)
    write_atomic(root, CURRENT_CONFIG, b"", DEFAULT_FILE_MODE)


def remove_node_configs(root: Path) -> list[str]:
    """Remove every file a node's MachineConfig is read from; return those that existed."""
    return [path for path in NODE_CONFIGS if _remove(root, path)]


def read_current_config(root: Path) -> Optional[dict]:
    """The MachineConfig in the node's currentconfig, or None if there is none."""
    host = resolve_in_root(root, CURRENT_CONFIG, True)
    text = host.read_text() if host.exists() else ""
    return json.loads(text) if text.strip() else None


def apply_offline(root: Path, mc: dict) -> ApplyReport:
    """Apply `mc` to a tree that is not booted (as the first boot would find it)."""
    report = ApplyReport()
    write_files(root, mc, report)
    write_units(root, mc, report)
    write_current_config(root, mc)
    return report


def rollout(root: Path, mc: dict, reload: Callable[[], None]) -> ApplyReport:
    """Update a running node to `mc` without reboot; `reload` runs daemon-reload in it."""
    report = ApplyReport()
    previous = read_current_config(root)
    if previous is not None:
        remove_dropped(root, previous, mc, report)
    write_files(root, mc, report)
    write_units(root, mc, report)
    reload()
    write_current_config(root, mc)
    return report
