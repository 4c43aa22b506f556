//! What NetworkManager says over D-Bus, validated: its devices (state, whether it
//! manages them, the connection applied to each activated one) and its connection
//! profiles (settings, file, flags). The observe stage builds these; the intent
//! stage turns them into expected routes; the compare stage explains drift with them.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use super::{ExpectedRule, Family, IfName, RuleAction, RuleSelector};

/// `NMDeviceState`: where a device is in its life with NetworkManager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceState(pub u32);

impl DeviceState {
    /// Managed but not usable (no carrier, missing firmware...).
    pub const UNAVAILABLE: DeviceState = DeviceState(20);
    /// The device is managed, up, and its connection is active.
    pub const ACTIVATED: DeviceState = DeviceState(100);

    /// NetworkManager's name for the state (as `nmcli -f GENERAL.STATE` shows it).
    pub fn name(self) -> &'static str {
        match self.0 {
            10 => "unmanaged",
            20 => "unavailable",
            30 => "disconnected",
            40 => "prepare",
            50 => "config",
            60 => "need-auth",
            70 => "ip-config",
            80 => "ip-check",
            90 => "secondaries",
            100 => "activated",
            110 => "deactivating",
            120 => "failed",
            _ => "unknown",
        }
    }
}

impl fmt::Display for DeviceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `NMDeviceStateReason`: why a device last changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StateReason(pub u32);

impl StateReason {
    /// NetworkManager's meaning of the reasons a server sees, in a few words;
    /// others are shown by number.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "no reason given",
            1 => "unknown error",
            2 => "now managed",
            3 => "now unmanaged",
            4 => "the device could not be readied for configuration",
            5 => "IP configuration could not be reserved",
            6 => "the IP configuration expired",
            15 => "the DHCP client failed to start",
            16 => "DHCP client error",
            17 => "the DHCP client failed",
            35 => "firmware missing",
            36 => "the device was removed",
            37 => "NetworkManager went to sleep",
            38 => "its active connection disappeared",
            39 => "disconnected by a user or client",
            40 => "carrier or link changed",
            41 => "its existing connection was assumed",
            50 => "a dependency of the connection failed",
            54 => "a secondary connection failed",
            60 => "a new activation was enqueued",
            61 => "its parent changed",
            62 => "its parent's management changed",
            63 => "the Open vSwitch database failed",
            64 => "a duplicate IP address was detected",
            65 => "the IP method is not supported",
            _ => return None,
        })
    }
}

impl fmt::Display for StateReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(words) => write!(f, "{words} ({})", self.0),
            None => write!(f, "reason {}", self.0),
        }
    }
}

/// `type` of a route in `route-data`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NmRouteType {
    /// `unicast` (the default when absent).
    Unicast,
    /// Any other: `local`, `blackhole`, `unreachable`, `prohibit`, `throw`.
    Other(String),
}

impl NmRouteType {
    /// NetworkManager's word for it.
    pub fn as_str(&self) -> &str {
        match self {
            NmRouteType::Unicast => "unicast",
            NmRouteType::Other(t) => t,
        }
    }
}

/// One route of `ipv4.route-data` or `ipv6.route-data`, as declared (the
/// connection's defaults not applied yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NmRoute {
    /// Destination, host bits cleared.
    pub destination: IpNet,
    /// `next-hop`, when there is one.
    pub next_hop: Option<IpAddr>,
    /// `metric`, when given (else the connection's `route-metric`).
    pub metric: Option<u32>,
    /// `table`, when given (else the connection's `route-table`).
    pub table: Option<u32>,
    /// `type`.
    pub kind: NmRouteType,
    /// `onlink`: the gateway is taken as on the link whatever the subnets.
    pub onlink: bool,
}

/// One policy routing rule of `routing-rules`, in the intent's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NmRule {
    /// `family`.
    pub family: Family,
    /// `priority`, when given.
    pub priority: Option<u32>,
    /// What it matches (`from`, `to`, `iifname`, `oifname`, `fwmark`/`fwmask`,
    /// `tos`, `ipproto`, ports, `suppress-prefixlength`, `invert`).
    pub selector: RuleSelector,
    /// What it does (`action`, and `table` for a lookup).
    pub action: RuleAction,
    /// What it selects that routewarden does not compare, as nmcli writes it
    /// (`uidrange 1000-2000`).
    pub unchecked: Vec<String>,
}

impl NmRule {
    /// Whether it is the expected rule (a declaration without a priority takes
    /// any).
    pub fn is(&self, r: &ExpectedRule) -> bool {
        let priority = r.priority.or(self.priority);
        r.is(self.family, priority, &self.selector, self.action)
    }
}

/// The `ipv4` or `ipv6` setting of a connection: what routewarden reads of it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NmIpSettings {
    /// `method` (`manual`, `auto`, `disabled`...), when present.
    pub method: Option<String>,
    /// `route-data`.
    pub routes: Vec<NmRoute>,
    /// `route-table`: 0 = not set (the main table).
    pub route_table: u32,
    /// `route-metric`: -1 = not set (the device's default).
    pub route_metric: i64,
    /// `routing-rules`.
    pub rules: Vec<NmRule>,
}

impl NmIpSettings {
    /// The table a route of this setting goes to: its own, else the setting's
    /// `route-table`; 0 is the main table.
    pub fn table_of(&self, route: &NmRoute) -> u32 {
        match route.table.unwrap_or(self.route_table) {
            0 => super::TABLE_MAIN,
            t => t,
        }
    }

    /// The metric a route of this setting gets, when it can be known: its own,
    /// else the setting's `route-metric` (unset: the device's default, not known
    /// here). The kernel takes an IPv6 metric of 0 as 1024.
    pub fn metric_of(&self, family: Family, route: &NmRoute) -> Option<u32> {
        let metric = route.metric.or_else(|| u32::try_from(self.route_metric).ok());
        match (family, metric) {
            (Family::Ipv6, Some(0)) => Some(1024),
            (_, m) => m,
        }
    }
}

/// The settings of a connection, as `GetSettings` (a profile) and
/// `GetAppliedConnection` (what a device runs) give them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NmConnection {
    /// `connection.id`: the name nmcli shows.
    pub id: String,
    /// `connection.uuid`.
    pub uuid: String,
    /// `connection.type` (`802-3-ethernet`, `bond`, `ovs-interface`...).
    pub kind: String,
    /// `connection.interface-name`: the device it is bound to, when bound.
    pub interface_name: Option<IfName>,
    /// `connection.autoconnect` (true when absent).
    pub autoconnect: bool,
    /// The `ipv4` setting.
    pub ipv4: NmIpSettings,
    /// The `ipv6` setting.
    pub ipv6: NmIpSettings,
}

impl NmConnection {
    /// The setting of one family.
    pub fn ip(&self, family: Family) -> &NmIpSettings {
        match family {
            Family::Ipv4 => &self.ipv4,
            Family::Ipv6 => &self.ipv6,
        }
    }

    /// Whether it declares a route to `destination` through `gateway` (any, when
    /// None) in `table`.
    pub fn has_route(&self, destination: &IpNet, gateway: Option<IpAddr>, table: u32) -> bool {
        let ip = self.ip(Family::of_net(destination));
        ip.routes.iter().any(|r| {
            r.destination == *destination
                && ip.table_of(r) == table
                && gateway.is_none_or(|g| r.next_hop == Some(g))
        })
    }

    /// Whether its `routing-rules` of the rule's family hold the rule.
    pub fn has_rule(&self, rule: &ExpectedRule) -> bool {
        self.ip(rule.family).rules.iter().any(|r| r.is(rule))
    }

    /// Whether it declares any route or rule.
    pub fn declares(&self) -> bool {
        [&self.ipv4, &self.ipv6]
            .iter()
            .any(|ip| !ip.routes.is_empty() || !ip.rules.is_empty())
    }
}

/// `NMSettingsConnectionFlags` of a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProfileFlags(pub u32);

impl ProfileFlags {
    /// Not saved to disk (in memory only, or changed since it was saved).
    pub fn unsaved(self) -> bool {
        self.0 & 0x1 != 0
    }

    /// Generated by NetworkManager (an externally configured device it took over).
    pub fn nm_generated(self) -> bool {
        self.0 & 0x2 != 0
    }

    /// Deleted when it disconnects.
    pub fn volatile(self) -> bool {
        self.0 & 0x4 != 0
    }
}

/// A connection profile NetworkManager has loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NmProfile {
    /// Its settings.
    pub settings: NmConnection,
    /// The file it was loaded from (`Filename`), when it has one.
    pub filename: Option<String>,
    /// `Flags`.
    pub flags: ProfileFlags,
}

impl NmProfile {
    /// `connection "ens5" (uuid, file)`, as route sources and reasons name it.
    pub fn origin(&self) -> String {
        let file = match (&self.filename, self.flags.unsaved()) {
            (Some(f), false) => f.clone(),
            (Some(f), true) => format!("{f}, changed in memory"),
            (None, _) => "in memory".to_owned(),
        };
        format!(
            "connection \"{}\" ({}, {file})",
            self.settings.id, self.settings.uuid
        )
    }
}

/// A device NetworkManager knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NmDevice {
    /// `Interface`.
    pub interface: IfName,
    /// `State`.
    pub state: DeviceState,
    /// The reason of `StateReason`.
    pub reason: StateReason,
    /// `Managed`.
    pub managed: bool,
    /// The connection applied to it (`GetAppliedConnection`), when it is activated.
    pub applied: Option<NmConnection>,
}

/// Everything read from NetworkManager at one time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NmView {
    /// Devices.
    pub devices: Vec<NmDevice>,
    /// Connection profiles.
    pub profiles: Vec<NmProfile>,
    /// Objects that could not be read or understood, each named (the rest is kept).
    pub problems: Vec<String>,
}

impl NmView {
    /// The device with this interface name.
    pub fn device(&self, name: &IfName) -> Option<&NmDevice> {
        self.devices.iter().find(|d| &d.interface == name)
    }

    /// The profile with this uuid.
    pub fn profile(&self, uuid: &str) -> Option<&NmProfile> {
        self.profiles.iter().find(|p| p.settings.uuid == uuid)
    }

    /// The profile loaded from this file.
    pub fn profile_from_file(&self, path: &str) -> Option<&NmProfile> {
        self.profiles.iter().find(|p| p.filename.as_deref() == Some(path))
    }
}

#[cfg(test)]
impl NmConnection {
    /// For tests: an ethernet connection `uuid-<id>` bound to `device`, with these
    /// IPv4 routes (destination, next hop, table), defaults otherwise.
    pub(crate) fn for_tests(id: &str, device: &str, routes: &[(&str, &str, Option<u32>)]) -> NmConnection {
        let routes = routes
            .iter()
            .map(|(dest, hop, table)| NmRoute {
                destination: dest.parse().expect("a network"),
                next_hop: Some(hop.parse().expect("an address")),
                metric: None,
                table: *table,
                kind: NmRouteType::Unicast,
                onlink: false,
            })
            .collect();
        NmConnection {
            id: id.into(),
            uuid: format!("uuid-{id}"),
            kind: "802-3-ethernet".into(),
            interface_name: IfName::new(device).ok(),
            autoconnect: true,
            ipv4: NmIpSettings {
                routes,
                route_metric: -1,
                ..NmIpSettings::default()
            },
            ipv6: NmIpSettings::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_reasons_read_as_words() {
        assert_eq!(DeviceState(30).to_string(), "disconnected");
        assert_eq!(DeviceState(7).name(), "unknown");
        assert_eq!(
            StateReason(39).to_string(),
            "disconnected by a user or client (39)"
        );
        assert_eq!(StateReason(9999).to_string(), "reason 9999");
    }

    #[test]
    fn flags() {
        let f = ProfileFlags(0x5);
        assert!(f.unsaved() && !f.nm_generated() && f.volatile());
    }

    #[test]
    fn a_profile_names_its_file_and_whether_it_is_saved() {
        let mut p = NmProfile {
            settings: NmConnection::for_tests("ens5", "ens5", &[]),
            filename: Some("/etc/NetworkManager/system-connections/ens5.nmconnection".into()),
            flags: ProfileFlags(0),
        };
        let file = "connection \"ens5\" (uuid-ens5, /etc/NetworkManager/system-connections/ens5.nmconnection";
        assert_eq!(p.origin(), format!("{file})"));
        p.flags = ProfileFlags(0x1);
        assert_eq!(p.origin(), format!("{file}, changed in memory)"));
        p.filename = None;
        assert_eq!(p.origin(), "connection \"ens5\" (uuid-ens5, in memory)");
    }

    #[test]
    fn defaults_of_a_setting_apply_to_its_routes() {
        let c = NmConnection::for_tests("x", "ens5", &[("10.1.0.0/16", "172.18.0.1", None)]);
        let mut ip = c.ipv4.clone();
        let r = &ip.routes[0].clone();
        assert_eq!((ip.table_of(r), ip.metric_of(Family::Ipv4, r)), (254, None));
        ip.route_table = 300;
        ip.route_metric = 0;
        assert_eq!((ip.table_of(r), ip.metric_of(Family::Ipv4, r)), (300, Some(0)));
        assert_eq!(ip.metric_of(Family::Ipv6, r), Some(1024), "IPv6 metric 0 is 1024");
        assert!(c.has_route(&"10.1.0.0/16".parse().expect("net"), None, 254));
        assert!(!c.has_route(
            &"10.1.0.0/16".parse().expect("net"),
            Some("172.18.0.9".parse().expect("ip")),
            254
        ));
        assert!(!c.has_route(&"10.1.0.0/16".parse().expect("net"), None, 300));
    }
}
