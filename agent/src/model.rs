//! Domain types shared by every stage of the pipeline
//! (intent -> observe -> compare -> publish).
//!
//! Values are validated when they are built: after parsing, an interface or unit
//! name is never a bare `String`, a destination is always a normalized [`IpNet`].

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Serialize, Serializer};

/// The main routing table (`ip route` calls it `main`).
pub const TABLE_MAIN: u32 = 254;
/// The local routing table.
pub const TABLE_LOCAL: u32 = 255;
/// The table iproute2 calls `default`.
pub const TABLE_DEFAULT: u32 = 253;

/// Address family of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4 (`AF_INET`).
    Ipv4,
    /// IPv6 (`AF_INET6`).
    Ipv6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }

    /// The family of a network.
    pub fn of_net(net: &IpNet) -> Family {
        match net {
            IpNet::V4(_) => Family::Ipv4,
            IpNet::V6(_) => Family::Ipv6,
        }
    }

    /// `ipv4` or `ipv6`, as in metric labels and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what}: it {why}")]
pub struct InvalidName {
    /// "interface name" or "unit name".
    pub what: &'static str,
    /// The refused text (a name, never file contents).
    pub name: String,
    /// Why it was refused.
    pub why: &'static str,
}

/// A Linux network interface name, as the kernel accepts it (1 to 15 bytes, no
/// `/`, no whitespace, not `.` or `..`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IfName(String);

impl IfName {
    /// Validate a kernel interface name.
    pub fn new(name: &str) -> Result<IfName, InvalidName> {
        let bad = |why| InvalidName {
            what: "interface name",
            name: name.chars().take(64).collect(),
            why,
        };
        if name.is_empty() || name.len() > 15 {
            return Err(bad("is not 1 to 15 bytes long"));
        }
        if name == "." || name == ".." {
            return Err(bad("is a reserved name"));
        }
        if name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
        {
            return Err(bad("contains '/', ':', whitespace or a control character"));
        }
        Ok(IfName(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for IfName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A systemd unit name with its type suffix (`nmcli-dev-modify.service`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitName(String);

const UNIT_SUFFIXES: &[&str] = &[
    ".service",
    ".socket",
    ".target",
    ".timer",
    ".path",
    ".mount",
    ".automount",
    ".swap",
    ".slice",
    ".scope",
    ".device",
];

impl UnitName {
    /// Validate a unit name as systemd does (allowed characters, a known suffix,
    /// at most 255 bytes).
    pub fn new(name: &str) -> Result<UnitName, InvalidName> {
        let bad = |why| InvalidName {
            what: "unit name",
            name: name.chars().take(64).collect(),
            why,
        };
        if name.is_empty() || name.len() > 255 {
            return Err(bad("is not 1 to 255 bytes long"));
        }
        let Some(suffix) = UNIT_SUFFIXES.iter().find(|s| name.ends_with(*s)) else {
            return Err(bad("has no unit type suffix such as .service"));
        };
        let stem = &name[..name.len() - suffix.len()];
        if stem.is_empty() {
            return Err(bad("has an empty name before the suffix"));
        }
        let ok = |c: char| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c);
        if !stem.chars().all(ok) {
            return Err(bad("contains a character systemd does not allow"));
        }
        Ok(UnitName(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for `.service` units (they have `Result`, `ExecMainStatus`...).
    pub fn is_service(&self) -> bool {
        self.0.ends_with(".service")
    }

    /// The D-Bus object path systemd gives this unit
    /// (`/org/freedesktop/systemd1/unit/nmcli_2ddev_2dmodify_2eservice`).
    pub fn object_path(&self) -> String {
        let mut path = String::from("/org/freedesktop/systemd1/unit/");
        for b in self.0.bytes() {
            if b.is_ascii_alphanumeric() {
                path.push(char::from(b));
            } else {
                path.push_str(&format!("_{b:02x}"));
            }
        }
        path
    }
}

impl fmt::Display for UnitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for UnitName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// What identifies a route in the kernel: family, table and destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteKey {
    /// Address family.
    pub family: Family,
    /// Routing table id (254 = main).
    pub table: u32,
    /// Destination, host bits cleared (`0.0.0.0/0` for default).
    pub destination: IpNet,
}

impl RouteKey {
    /// Build a key, clearing host bits of the destination.
    pub fn new(table: u32, destination: IpNet) -> RouteKey {
        RouteKey {
            family: Family::of_net(&destination),
            table,
            destination: destination.trunc(),
        }
    }
}

/// How a route was declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// `nmcli device|connection modify ... ipv4.routes`.
    Nmcli,
    /// `ip route add|replace|append`.
    IpRoute,
    /// A NetworkManager keyfile (`*.nmconnection`).
    Keyfile,
    /// Legacy `/etc/sysconfig/network-scripts/route-IFACE`.
    Ifcfg,
    /// An nmstate file under `/etc/nmstate/`.
    Nmstate,
}

/// Which program keeps a route in the kernel; decides which services must run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Manager {
    /// Installed once by a command (`ip route add`); nothing restores it.
    #[default]
    None,
    /// NetworkManager owns it (nmcli, keyfile, ifcfg).
    NetworkManager,
    /// nmstate applies it through NetworkManager.
    Nmstate,
}

/// Where a route was declared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    /// The declaration form.
    pub kind: SourceKind,
    /// `unit NAME` or `file PATH`, with the line when known.
    pub origin: String,
    /// The unit that installs the route, when one does.
    pub unit: Option<UnitName>,
}

/// Facts about a declaration that explain drift later; not part of the JSON.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Traits {
    /// Declared with `nmcli device modify` (or `--temporary`): lost when the device
    /// is re-activated.
    pub non_persistent: bool,
    /// The file that declares it is one NetworkManager refuses (keyfile mode), with
    /// its path and mode.
    pub refused_file: Option<(String, u32)>,
    /// Which program keeps the route in place.
    pub manager: Manager,
}

/// A route the MachineConfig says the node must have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpectedRoute {
    /// Address family.
    pub family: Family,
    /// Destination, normalized.
    #[serde(serialize_with = "ser_display")]
    pub destination: IpNet,
    /// Next hop, when the declaration names one.
    pub gateway: Option<IpAddr>,
    /// Output device, when known (a connection name is not a device name).
    pub device: Option<IfName>,
    /// Routing table (254 = main).
    pub table: u32,
    /// Metric, when the declaration names one (unknown is not 0).
    pub metric: Option<u32>,
    /// Where it was declared.
    pub source: Source,
    /// Plain-words remarks about the declaration.
    pub notes: Vec<String>,
    /// Facts used to explain drift.
    #[serde(skip)]
    pub traits: Traits,
}

impl ExpectedRoute {
    /// The kernel identity of this route.
    pub fn key(&self) -> RouteKey {
        RouteKey {
            family: self.family,
            table: self.table,
            destination: self.destination,
        }
    }
}

/// What a unit is expected to have done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// A oneshot: ran this boot and succeeded.
    Succeeded,
    /// A long-running service: active.
    Active,
}

/// A unit the intent depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpectedUnit {
    /// Unit name.
    pub name: UnitName,
    /// Whether the MachineConfig enables it (None: it says nothing).
    pub enabled: Option<bool>,
    /// What it should have done.
    pub expect: Expect,
}

/// Severity of a diagnostic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something a person should look at; the rest is still read.
    Warning,
    /// Something that could not be read.
    Error,
}

/// A remark about the input: what could not be read, or will not work on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Severity.
    pub severity: Severity,
    /// Where: `unit NAME line N`, `file PATH line N`, a JSON path.
    pub origin: String,
    /// What, in plain words (never file contents).
    pub message: String,
}

impl Diagnostic {
    /// A warning.
    pub fn warning(origin: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            origin: origin.into(),
            message: message.into(),
        }
    }

    /// An error.
    pub fn error(origin: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            origin: origin.into(),
            message: message.into(),
        }
    }
}

/// Everything the node is supposed to have.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Intent {
    /// `metadata.name` of the MachineConfig, when there is one.
    pub machineconfig: Option<String>,
    /// Expected routes, in declaration order.
    pub routes: Vec<ExpectedRoute>,
    /// Units the routes depend on.
    pub units: Vec<ExpectedUnit>,
    /// Remarks about the input.
    pub diagnostics: Vec<Diagnostic>,
}

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

fn ser_display<T: fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifname_rules() {
        assert!(IfName::new("ens5").is_ok());
        assert!(IfName::new("br-ex").is_ok());
        assert!(IfName::new("").is_err());
        assert!(IfName::new("a-very-long-name0").is_err());
        assert!(IfName::new("eth/0").is_err());
        assert!(IfName::new("eth 0").is_err());
        assert!(IfName::new("..").is_err());
    }

    #[test]
    fn unit_name_rules_and_object_path() {
        let u = UnitName::new("nmcli-dev-modify.service").expect("valid");
        assert_eq!(
            u.object_path(),
            "/org/freedesktop/systemd1/unit/nmcli_2ddev_2dmodify_2eservice"
        );
        assert!(u.is_service());
        assert!(UnitName::new("foo").is_err());
        assert!(UnitName::new(".service").is_err());
        assert!(UnitName::new("a b.service").is_err());
        assert!(UnitName::new("getty@tty1.service").is_ok());
    }

    #[test]
    fn route_key_clears_host_bits() {
        let k = RouteKey::new(254, "192.168.1.7/24".parse().expect("net"));
        assert_eq!(k.destination.to_string(), "192.168.1.0/24");
        assert_eq!(k.family, Family::Ipv4);
    }

    #[test]
    fn protocol_names() {
        assert_eq!(Protocol(4).to_string(), "static");
        assert_eq!(Protocol(77).to_string(), "77");
    }
}
