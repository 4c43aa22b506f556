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

/// A route's type (`rtm_type`), named as iproute2 names it. Only `unicast`
/// routes forward through a next hop; `blackhole`, `unreachable` and `prohibit`
/// drop the traffic, `throw` ends the lookup in this table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum RouteType {
    /// `RTN_UNICAST`: a gateway or a directly connected route.
    #[default]
    Unicast,
    /// `RTN_LOCAL`: a local address.
    Local,
    /// `RTN_BROADCAST`.
    Broadcast,
    /// `RTN_ANYCAST`.
    Anycast,
    /// `RTN_MULTICAST`.
    Multicast,
    /// `RTN_BLACKHOLE`: silently dropped.
    Blackhole,
    /// `RTN_UNREACHABLE`: dropped with "host unreachable".
    Unreachable,
    /// `RTN_PROHIBIT`: dropped with "administratively prohibited".
    Prohibit,
    /// `RTN_THROW`: the lookup continues with the next rule.
    Throw,
    /// `RTN_NAT`.
    Nat,
    /// A number iproute2 has no name for.
    Other(u8),
}

impl RouteType {
    /// From the kernel's `rtm_type` number.
    pub fn from_number(n: u8) -> RouteType {
        match n {
            1 => RouteType::Unicast,
            2 => RouteType::Local,
            3 => RouteType::Broadcast,
            4 => RouteType::Anycast,
            5 => RouteType::Multicast,
            6 => RouteType::Blackhole,
            7 => RouteType::Unreachable,
            8 => RouteType::Prohibit,
            9 => RouteType::Throw,
            10 => RouteType::Nat,
            other => RouteType::Other(other),
        }
    }

    /// iproute2's name (`unicast`, `blackhole`...); a number for others.
    pub fn name(self) -> String {
        let name = match self {
            RouteType::Unicast => "unicast",
            RouteType::Local => "local",
            RouteType::Broadcast => "broadcast",
            RouteType::Anycast => "anycast",
            RouteType::Multicast => "multicast",
            RouteType::Blackhole => "blackhole",
            RouteType::Unreachable => "unreachable",
            RouteType::Prohibit => "prohibit",
            RouteType::Throw => "throw",
            RouteType::Nat => "nat",
            RouteType::Other(n) => return n.to_string(),
        };
        name.to_owned()
    }

    /// True for the types that take a route's traffic without forwarding it
    /// (blackhole, unreachable, prohibit, throw): such a route ahead of an
    /// expected one means the expected one carries nothing.
    pub fn drops(self) -> bool {
        matches!(
            self,
            RouteType::Blackhole | RouteType::Unreachable | RouteType::Prohibit | RouteType::Throw
        )
    }
}

impl fmt::Display for RouteType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for RouteType {
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

/// A route read from the kernel whose key the intent names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedRoute {
    /// Family, table (from RTA_TABLE) and destination.
    pub key: RouteKey,
    /// Its type: unicast, blackhole, unreachable...
    pub kind: RouteType,
    /// The TOS it selects (IPv4; 0 = any): a route with a TOS carries only
    /// that traffic.
    pub tos: u8,
    /// The source prefix it selects (IPv6 `from`), when it has one: such a
    /// route carries only traffic from there.
    pub source: Option<IpNet>,
    /// Next hops (several for a multipath route; none for blackhole and the
    /// like), resolved from the next-hop object when the route uses one.
    pub next_hops: Vec<NextHop>,
    /// The next-hop object it uses (RTA_NH_ID), when it uses one.
    pub nhid: Option<u32>,
    /// RTA_PRIORITY, when the kernel sent one.
    pub metric: Option<u32>,
    /// Who installed it.
    pub protocol: Protocol,
}

impl ObservedRoute {
    /// A unicast route with nothing but its key, hops, metric and protocol.
    pub fn unicast(
        key: RouteKey,
        next_hops: Vec<NextHop>,
        metric: Option<u32>,
        protocol: Protocol,
    ) -> ObservedRoute {
        ObservedRoute {
            key,
            kind: RouteType::Unicast,
            tos: 0,
            source: None,
            next_hops,
            nhid: None,
            metric,
            protocol,
        }
    }

    /// The metric the kernel uses: RTA_PRIORITY, 0 when absent.
    pub fn kernel_metric(&self) -> u32 {
        self.metric.unwrap_or(0)
    }

    /// What the kernel tells same-key routes apart by, besides the key: the TOS
    /// (IPv4) or source prefix (IPv6), and the metric.
    pub fn slot(&self) -> (u8, Option<IpNet>, u32) {
        (self.tos, self.source, self.kernel_metric())
    }
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

/// How one command of a service last ran, from the service's `ExecStartPre`,
/// `ExecStart` or `ExecStartPost` property (systemd keeps each command's status).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandStatus {
    /// `ExecStartPre`, `ExecStart` or `ExecStartPost`.
    pub property: &'static str,
    /// Its position in that property (0-based).
    pub index: usize,
    /// It ran (its start timestamp is set).
    pub ran: bool,
    /// CLD_* code: 1 exited, 2 killed, 3 dumped; 0 while it runs or never ran.
    pub code: i32,
    /// Exit status or signal number.
    pub status: i32,
}

impl CommandStatus {
    /// It ran and did not exit 0.
    pub fn failed(&self) -> bool {
        self.ran
            && match self.code {
                1 => self.status != 0,
                2 | 3 => true,
                _ => false,
            }
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
    /// How each `ExecStartPre`/`ExecStart`/`ExecStartPost` command last ran.
    pub commands: Vec<CommandStatus>,
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
impl UnitStatus {
    /// For tests: an enabled, loaded oneshot `name` in `active` state whose main
    /// process ended with `result`, CLD code `code` and `status`, `exit_usec`
    /// after boot (also when it last left inactive).
    pub(crate) fn oneshot_for_tests(
        name: &str,
        active: &str,
        result: &str,
        (code, status): (i32, i32),
        exit_usec: u64,
    ) -> UnitStatus {
        UnitStatus {
            name: super::UnitName::new(name).expect("a unit name"),
            load_state: "loaded".into(),
            active_state: ActiveState::parse(active),
            sub_state: "dead".into(),
            unit_file_state: "enabled".into(),
            condition_result: true,
            condition_usec: 1,
            inactive_exit_usec: exit_usec,
            service: Some(ServiceStatus {
                service_type: "oneshot".into(),
                result: result.into(),
                exec_main_status: status,
                exec_main_code: code,
                exec_main_start_usec: exit_usec.saturating_sub(1),
                exec_main_exit_usec: exit_usec,
                remain_after_exit: false,
                commands: Vec::new(),
            }),
        }
    }
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
