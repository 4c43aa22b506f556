"""NetworkManager profiles and devices for the scenarios that read NetworkManager.

- `add_veth(node, name)`: a second ethernet device in the node's namespace (a veth
  whose peer, `<name>p`, stays in the node too, without address, unmanaged).
- `NMSTATE_KEYFILE`: a keyfile profile in the shape kubernetes-nmstate (NM backend,
  NetworkManager 1.42) leaves in /etc/NetworkManager/system-connections/:
  routes as `routeN` + `routeN_options=table=...`, `addr-gen-mode`, `dhcp-*`
  defaults, `autoconnect-slaves`, and its `[user]` marker.
- `write_keyfile(node, ...)`: a keyfile written into the running node (0600) and loaded.
- `no_auto_default(root)`: no "Wired connection N" profiles (set before boot).
- `autoconnect_profile(node, ...)`: a device and an autoconnect keyfile profile bound
  to it, active, its route in the kernel; both deleted after.
- `device_connection(node, device)`: NetworkManager's state of a device and the
  connection active on it.
"""

from __future__ import annotations

import uuid as uuidlib
from contextlib import contextmanager
from pathlib import Path

import mcd
from agent import Route
from common import run, wait_for
from nodeops import wait_kernel_route

KEYFILE_DIR = "/etc/NetworkManager/system-connections"

NMSTATE_KEYFILE = """[connection]
id={id}
uuid={uuid}
type=ethernet
autoconnect-slaves=1
interface-name={device}
lldp=0
permissions=

[ethernet]

[ipv4]
address1={address}
dhcp-client-id=mac
dns-search=
method=manual
{routes}
[ipv6]
addr-gen-mode=eui64
dhcp-duid=ll
dhcp-iaid=mac
dns-search=
method=disabled

[proxy]

[user]
nmstate.interface.description=routewarden e2e
"""


def nmstate_keyfile(profile: str, device: str, address: str, routes: list[tuple[str, str, int, int]],
                    profile_uuid: str | None = None) -> str:
    """The keyfile text: `routes` as (destination, next hop, metric, table)."""
    lines = []
    for i, (dest, hop, metric, table) in enumerate(routes, start=1):
        lines.append(f"route{i}={dest},{hop},{metric}")
        lines.append(f"route{i}_options=table={table}")
    return NMSTATE_KEYFILE.format(id=profile, uuid=profile_uuid or str(uuidlib.uuid4()), device=device,
                                  address=address, routes="\n".join(lines) + ("\n" if lines else ""))


def add_veth(node, name: str) -> None:
    """A veth `name` in the node's namespace, up; its peer `<name>p` up and unmanaged."""
    peer = f"{name}p"
    run(["ip", "-n", node.netns, "link", "add", name, "type", "veth", "peer", "name", peer])
    for link in (name, peer):
        run(["ip", "-n", node.netns, "link", "set", link, "up"])
    wait_for(f"NetworkManager in node {node.name} to know {peer}",
             lambda: node.run("nmcli", "device", "set", peer, "managed", "no", check=False).returncode == 0,
             timeout=15, interval=0.3)


def write_keyfile(node, filename: str, text: str, mode: int = 0o600) -> str:
    """Write a keyfile into the running node and `nmcli connection load` it; its path."""
    path = f"{KEYFILE_DIR}/{filename}"
    mcd.write_atomic(node.root, path, text.encode(), mode)
    node.run("nmcli", "connection", "load", path)
    return path


def no_auto_default(root: Path) -> None:
    """NetworkManager configuration: no automatic "Wired connection N" profiles."""
    mcd.write_atomic(root, "/etc/NetworkManager/conf.d/90-rwe2e-no-auto-default.conf",
                     b"[main]\nno-auto-default=*\n", 0o644)


@contextmanager
def autoconnect_profile(node, profile: str, route: Route, address: str):
    """A veth `route.device` and `profile`, a keyfile as kubernetes-nmstate writes it
    (no autoconnect key: NetworkManager's default, yes) bound to it with `address`
    and `route` (metric 150); active, the route in the kernel. Deleted after, the
    device with it. Without automatic profiles (`no_auto_default`), the device stays
    disconnected while `profile` is not active."""
    try:
        add_veth(node, route.device)
        write_keyfile(node, f"{profile}.nmconnection",
                      nmstate_keyfile(profile, route.device, address,
                                      [(route.destination, route.gateway, 150, int(route.table))]))
        autoconnect = node.run("nmcli", "-g", "connection.autoconnect", "connection", "show", profile).stdout.strip()
        assert autoconnect == "yes", f"{profile}: connection.autoconnect {autoconnect!r}"
        node.run("nmcli", "--wait", "20", "connection", "up", profile, timeout=30)
        wait_kernel_route(node, route, present=True)
        yield
    finally:
        node.run("nmcli", "connection", "delete", profile, check=False)
        node.run("ip", "link", "del", route.device, check=False)


def device_connection(node, device: str) -> dict:
    """NetworkManager's state of `device` and the connection active on it ('' when none)."""
    lines = node.run("nmcli", "-g", "GENERAL.STATE,GENERAL.CONNECTION", "device", "show", device).stdout.splitlines()
    state, connection = (lines + ["", ""])[:2]
    return {"state": state, "connection": connection}
