//! What the observe stage reports: kernel routes and links, systemd unit states.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Serialize, Serializer};

use super::{IfName, RouteKey, UnitName};

/// A routing protocol number (`proto` in `ip route`), shown with iproute2's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Protocol(pub u8);

impl Protocol {
    /// iproute2's name for well-known protocol numbers.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "unspec",
            1 => "redirect",
            2 => "kernel",
            3 => "boot",
            4 => "static",
            8 => "gated",
            9 => "ra",
            10 => "mrt",
            11 => "zebra",
            12 => "bird",
            13 => "dnrouted",
            14 => "xorp",
            15 => "ntk",
            16 => "dhcp",
            42 => "babel",
            186 => "bgp",
            187 => "isis",
            188 => "ospf",
            189 => "rip",
            192 => "eigrp",
            _ => return None,
        })
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "{}", self.0),
        }
    }
}

impl Serialize for Protocol {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One next hop of a kernel route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHop {
    /// Gateway (RTA_GATEWAY or RTA_VIA), if any.
    pub gateway: Option<IpAddr>,
    /// Output interface index (RTA_OIF), if any.
    pub ifindex: Option<u32>,
}

/// A unicast route read from the kernel that can match the intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedRoute {
    /// Family, table (from RTA_TABLE) and destination.
    pub key: RouteKey,
    /// Next hops (several for a multipath route).
    pub next_hops: Vec<NextHop>,
    /// RTA_PRIORITY, when the kernel sent one.
    pub metric: Option<u32>,
    /// Who installed it.
    pub protocol: Protocol,
}

/// A network interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Name.
    pub name: IfName,
    /// Administratively up (IFF_UP).
    pub up: bool,
    /// Carrier present (IFF_LOWER_UP).
    pub carrier: bool,
    /// When an address was last added to it, in microseconds of CLOCK_MONOTONIC
    /// (from IFA_CACHEINFO), when it has any: tells when it was last configured.
    pub last_configured_usec: Option<u64>,
    /// The index of the device it is enslaved to (IFLA_MASTER: a bridge, a bond,
    /// `ovs-system`), when it is a port.
    pub master: Option<u32>,
    /// The link kind (IFLA_INFO_KIND: `veth`, `bridge`, `bond`, `openvswitch`...),
    /// when the kernel names one.
    pub kind: Option<String>,
    /// Its IPv4 and IPv6 addresses with their prefix lengths (host bits kept):
    /// the subnets it is connected to.
    pub addresses: Vec<IpNet>,
}

impl Link {
    /// A link with nothing known but its index, name and state.
    pub fn new(index: u32, name: IfName, up: bool, carrier: bool) -> Link {
        Link {
            index,
            name,
            up,
            carrier,
            last_configured_usec: None,
            master: None,
            kind: None,
            addresses: Vec::new(),
        }
    }

    /// True when `gateway` is on one of its connected subnets.
    pub fn reaches(&self, gateway: &IpAddr) -> bool {
        self.addresses.iter().any(|a| a.contains(gateway))
    }
}

/// `ActiveState` of a systemd unit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ActiveState {
    /// `active`.
    Active,
    /// `reloading`.
    Reloading,
    /// `inactive`.
    Inactive,
    /// `failed`.
    Failed,
    /// `activating`.
    Activating,
    /// `deactivating`.
    Deactivating,
    /// Any other value a newer systemd may send (`maintenance`, `refreshing`).
    Other(String),
}

impl ActiveState {
    /// The values the `routewarden_unit_state` metric has one series each for.
    pub const ALL: [ActiveState; 6] = [
        ActiveState::Active,
        ActiveState::Activating,
        ActiveState::Deactivating,
        ActiveState::Inactive,
        ActiveState::Failed,
        ActiveState::Reloading,
    ];

    /// Parse systemd's text.
    pub fn parse(s: &str) -> ActiveState {
        match s {
            "active" => ActiveState::Active,
            "reloading" => ActiveState::Reloading,
            "inactive" => ActiveState::Inactive,
            "failed" => ActiveState::Failed,
            "activating" => ActiveState::Activating,
            "deactivating" => ActiveState::Deactivating,
            other => ActiveState::Other(other.chars().take(32).collect()),
        }
    }

    /// systemd's text.
    pub fn as_str(&self) -> &str {
        match self {
            ActiveState::Active => "active",
            ActiveState::Reloading => "reloading",
            ActiveState::Inactive => "inactive",
            ActiveState::Failed => "failed",
            ActiveState::Activating => "activating",
            ActiveState::Deactivating => "deactivating",
            ActiveState::Other(s) => s,
        }
    }
}

impl Serialize for ActiveState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Properties of the `org.freedesktop.systemd1.Service` interface that matter here.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceStatus {
    /// `Type` (simple, oneshot, notify...).
    pub service_type: String,
    /// `Result` (success, exit-code, signal, timeout...).
    pub result: String,
    /// `ExecMainStatus`: exit status or signal number.
    pub exec_main_status: i32,
    /// `ExecMainCode`: 1 exited, 2 killed, 3 dumped (CLD_* codes), 0 never ran.
    pub exec_main_code: i32,
    /// `ExecMainStartTimestampMonotonic`, microseconds since boot, 0 if never.
    pub exec_main_start_usec: u64,
    /// `ExecMainExitTimestampMonotonic`, microseconds since boot, 0 if never.
    pub exec_main_exit_usec: u64,
    /// `RemainAfterExit`.
    pub remain_after_exit: bool,
}

/// The state of one unit as systemd reports it over D-Bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitStatus {
    /// Unit name.
    pub name: UnitName,
    /// `LoadState` (loaded, not-found, masked, bad-setting, error).
    pub load_state: String,
    /// `ActiveState`.
    pub active_state: ActiveState,
    /// `SubState` (dead, exited, running, failed...).
    pub sub_state: String,
    /// `UnitFileState` (enabled, disabled, masked, static, ...; empty if none).
    pub unit_file_state: String,
    /// `ConditionResult`: false when a condition skipped the last start.
    pub condition_result: bool,
    /// `ConditionTimestampMonotonic`: when conditions were last checked, 0 if never.
    pub condition_usec: u64,
    /// `InactiveExitTimestampMonotonic`: when it last left inactive, 0 if never.
    pub inactive_exit_usec: u64,
    /// Service properties, for `.service` units that are loaded.
    pub service: Option<ServiceStatus>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names() {
        assert_eq!(Protocol(4).to_string(), "static");
        assert_eq!(Protocol(77).to_string(), "77");
    }
}
