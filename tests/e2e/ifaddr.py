"""Kernel address records over rtnetlink, with the fields `ip` does not print.

`ip -j -d addr` shows valid_life_time/preferred_life_time but not the creation and
update stamps of IFA_CACHEINFO (struct ifa_cacheinfo: ifa_prefered, ifa_valid,
cstamp, tstamp). The kernel reports cstamp/tstamp in hundredths of a second since
boot (jiffies - INITIAL_JIFFIES, scaled), the same clock origin as CLOCK_MONOTONIC
and /proc/uptime (no suspend on these machines), so `cstamp * 10_000` is directly
comparable with systemd's *TimestampMonotonic properties (microseconds).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import time
from dataclasses import dataclass
from typing import Optional

from netns import socket_in

RTM_NEWADDR, RTM_GETADDR = 20, 22
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_CACHEINFO = 1, 2, 3, 6
NLMSG_HDR = struct.Struct("=IHHII")
IFADDRMSG = struct.Struct("=BBBBI")
RTATTR = struct.Struct("=HH")
CACHEINFO = struct.Struct("=IIII")


@dataclass(frozen=True)
class AddrInfo:
    """One address of one link as the kernel reports it."""
    ifindex: int
    label: Optional[str]
    address: str
    prefixlen: int
    preferred_lft: int
    valid_lft: int
    cstamp_cs: int  # creation, 1/100 s since boot
    tstamp_cs: int  # last update, 1/100 s since boot

    @property
    def created_monotonic_usec(self) -> int:
        """Creation time on CLOCK_MONOTONIC in microseconds (10 ms resolution)."""
        return self.cstamp_cs * 10_000

    @property
    def updated_monotonic_usec(self) -> int:
        """Last update time on CLOCK_MONOTONIC in microseconds (10 ms resolution)."""
        return self.tstamp_cs * 10_000


def dump_addrs(netns: str, family: int = socket.AF_INET) -> list[AddrInfo]:
    """Every address of `family` in network namespace `netns` (RTM_GETADDR dump)."""
    s = socket_in(netns, socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    with s:
        s.bind((0, 0))
        body = IFADDRMSG.pack(family, 0, 0, 0, 0)
        s.send(NLMSG_HDR.pack(NLMSG_HDR.size + len(body), RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + body)
        return _read_dump(s)


def _read_dump(s: socket.socket) -> list[AddrInfo]:
    out: list[AddrInfo] = []
    while True:
        data = s.recv(65536)
        off = 0
        while off + NLMSG_HDR.size <= len(data):
            length, mtype, _flags, _seq, _pid = NLMSG_HDR.unpack_from(data, off)
            if mtype == NLMSG_DONE:
                return out
            if mtype == NLMSG_ERROR:
                err = -struct.unpack_from("=i", data, off + NLMSG_HDR.size)[0]
                raise OSError(err, f"RTM_GETADDR dump failed: {os.strerror(err)}")
            if mtype == RTM_NEWADDR:
                out.append(parse_newaddr(data[off + NLMSG_HDR.size: off + length]))
            off += (length + 3) & ~3


def parse_newaddr(payload: bytes) -> AddrInfo:
    """Parse the payload of one RTM_NEWADDR message (pure)."""
    family, prefixlen, _flags, _scope, ifindex = IFADDRMSG.unpack_from(payload, 0)
    attrs = _attrs(payload[IFADDRMSG.size:])
    raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS) or b""
    pref, valid, cst, tst = CACHEINFO.unpack(attrs[IFA_CACHEINFO][:16]) if IFA_CACHEINFO in attrs else (0, 0, 0, 0)
    label = attrs[IFA_LABEL].rstrip(b"\0").decode() if IFA_LABEL in attrs else None
    return AddrInfo(ifindex, label, str(ipaddress.ip_address(raw)), prefixlen, pref, valid, cst, tst)


def _attrs(buf: bytes) -> dict[int, bytes]:
    attrs, off = {}, 0
    while off + RTATTR.size <= len(buf):
        length, atype = RTATTR.unpack_from(buf, off)
        if length < RTATTR.size:
            break
        attrs[atype] = buf[off + RTATTR.size: off + length]
        off += (length + 3) & ~3
    return attrs


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC now, in microseconds (the clock of systemd's *Monotonic stamps)."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
