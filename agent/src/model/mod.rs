//! Domain types shared by every stage of the pipeline
//! (intent -> observe -> compare -> publish).
//!
//! Values are validated when they are built: after parsing, an interface or unit
//! name is never a bare `String`, a destination is always a normalized [`IpNet`].

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Serialize, Serializer};

mod lifecycle;
mod names;
mod networkmanager;
mod observed;
mod observed_rule;
mod place;
mod remediation;
mod rules;

pub use lifecycle::{rfc3339, Boot, ConfigFile};
pub use names::{IfName, InvalidName, UnitName};
pub use networkmanager::{
    DeviceState, NmConnection, NmDevice, NmIpSettings, NmProfile, NmRoute, NmRouteType, NmRule, NmView,
    ProfileFlags, StateReason,
};
pub use observed::{
    ActiveState, CommandStatus, Link, NextHop, ObservedRoute, Protocol, RouteType, ServiceStatus, UnitStatus,
};
pub use observed_rule::ObservedRule;
pub use place::Place;
pub use remediation::{ActionKind, Attempt, AttemptResult, RouteRemediation};
pub use rules::{ExpectedRule, RuleAction, RuleSelector, FWMASK_ALL};

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
    /// An nmstate file under `/etc/nmstate/`, or a plain nmstate document.
    Nmstate,
    /// `ip [-4|-6] rule add|append|prepend`.
    IpRule,
    /// A NodeNetworkConfigurationPolicy (kubernetes-nmstate) `desiredState`.
    Nncp,
    /// A connection NetworkManager has applied or will activate (its D-Bus view,
    /// whatever wrote the profile: kubernetes-nmstate, `nmcli`, a keyfile).
    #[serde(rename = "networkmanager")]
    NetworkManager,
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

/// Where a route was declared. In JSON, `origin_detail` beside `origin`: the
/// unit or file and the line ([`Place`]), null for other origins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The declaration form.
    pub kind: SourceKind,
    /// `unit NAME` or `file PATH`, with the line when known.
    pub origin: String,
    /// The unit that installs the route, when one does.
    pub unit: Option<UnitName>,
}

/// Which `Exec*=` command of a unit declares a route: systemd reports each
/// command's last exit status in the `ExecStartPre`, `ExecStart` and
/// `ExecStartPost` properties, in the order the unit lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRef {
    /// `ExecStartPre`, `ExecStart` or `ExecStartPost`.
    pub property: &'static str,
    /// Its position among the commands of that property (0-based).
    pub index: usize,
    /// Behind systemd's `-` prefix: a failure does not fail the unit.
    pub ignore_failure: bool,
    /// Where it is written (`unit NAME line N`).
    pub origin: String,
}

/// Facts about a declaration that explain drift later; not part of the JSON.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Traits {
    /// Declared with `nmcli device modify` (or `--temporary`): lost when the device
    /// is re-activated.
    pub non_persistent: bool,
    /// The mode of its [`keyfile`](Traits::keyfile), when NetworkManager refuses
    /// the file for it (group or others may read or write it).
    pub refused_mode: Option<u32>,
    /// Which program keeps the route in place.
    pub manager: Manager,
    /// The unit command that runs the declaration (directly or through the
    /// script it calls).
    pub exec: Option<ExecRef>,
    /// The NetworkManager profile or device the declaration belongs to
    /// (`connection NAME`, `device NAME`): a later `nmcli ... ipvN.routes`
    /// without `+` replaces its routes.
    pub declared_by: Option<String>,
    /// The keyfile that declares it, when one does: NetworkManager must have
    /// loaded it.
    pub keyfile: Option<String>,
    /// The uuid of the NetworkManager profile that declares it, when one does.
    pub connection: Option<String>,
    /// Declared `onlink`: the kernel takes the gateway as on the link whatever
    /// the device's subnets.
    pub onlink: bool,
    /// The device whose NetworkManager connection holds a rule, when the
    /// declaration tells (a keyfile's `interface-name`, `nmcli device modify`,
    /// NetworkManager's view). A rule has no device of its own; a route's is its
    /// `device`.
    pub device: Option<IfName>,
}

/// A route the MachineConfig says the node must have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpectedRoute {
    /// Address family.
    pub family: Family,
    /// Destination, normalized.
    #[serde(serialize_with = "ser_display")]
    pub destination: IpNet,
    /// The route's type: `unicast`, or `blackhole`, `unreachable`... as declared.
    #[serde(rename = "type")]
    pub kind: RouteType,
    /// Next hop, when the declaration names one.
    pub gateway: Option<IpAddr>,
    /// Output device, when known (a connection name is not a device name).
    pub device: Option<IfName>,
    /// Routing table (254 = main).
    pub table: u32,
    /// Metric, when the declaration names one (unknown is not 0; an IPv6
    /// metric of 0 is stored as 1024, as the kernel stores it).
    pub metric: Option<u32>,
    /// The TOS it selects (IPv4 `tos`; 0 = any).
    #[serde(skip_serializing_if = "is_zero")]
    pub tos: u8,
    /// The source prefix it selects (IPv6 `from`).
    #[serde(
        rename = "from",
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_opt_display"
    )]
    pub source_prefix: Option<IpNet>,
    /// The next-hop object it forwards through (`nhid`): its hops are the
    /// object's, not compared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nhid: Option<u32>,
    /// Every declared hop of a multipath route (`nexthop ... nexthop ...`), the
    /// first being `gateway` and `device`; empty for a route of one hop.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub next_hops: Vec<ExpectedHop>,
    /// Where it was declared (the first of `sources`).
    pub source: Source,
    /// Every declaration of this route, `source` first.
    pub sources: Vec<Source>,
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

    /// `DEST [via GW] [dev DEV] table T`, as log lines name the route.
    pub fn describe(&self) -> String {
        let mut out = self.destination.to_string();
        if let Some(gw) = self.gateway {
            out.push_str(&format!(" via {gw}"));
        }
        if let Some(dev) = &self.device {
            out.push_str(&format!(" dev {dev}"));
        }
        out.push_str(&format!(" table {}", self.table));
        out
    }

    /// `via GW dev DEV [weight W], ...` of a multipath route's declared hops;
    /// None for a route of one hop.
    pub fn describe_hops(&self) -> Option<String> {
        let hop = |h: &ExpectedHop| match h.weight {
            Some(w) => format!("{} weight {w}", h.describe()),
            None => h.describe(),
        };
        let hops: Vec<String> = self.next_hops.iter().map(hop).collect();
        (!hops.is_empty()).then(|| hops.join(", "))
    }
}

/// One declared next hop of a multipath route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpectedHop {
    /// Gateway, when the hop names one.
    pub gateway: Option<IpAddr>,
    /// Output device, when the hop names one.
    pub device: Option<IfName>,
    /// Its `weight`, when declared (not compared: the kernel's is not read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}

impl ExpectedHop {
    /// `via GW dev DEV`, as `ip route` shows a hop.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(gw) = self.gateway {
            parts.push(format!("via {gw}"));
        }
        if let Some(dev) = &self.device {
            parts.push(format!("dev {dev}"));
        }
        parts.join(" ")
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

/// What a diagnostic is about, for tools that act on some of them (`lint`); not
/// part of the JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Concern {
    /// Anything else.
    #[default]
    General,
    /// A route or rule whose text is not literal (variables, substitutions,
    /// specifiers): it cannot be known before it runs.
    NotLiteral,
    /// A route declared again with another metric.
    Redeclared,
}

/// A remark about the input: what could not be read, or will not work on a
/// node. In JSON, `origin_detail` beside `origin`, as for [`Source`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Severity.
    pub severity: Severity,
    /// Where: `unit NAME line N`, `file PATH line N`, a JSON path.
    pub origin: String,
    /// What, in plain words (never file contents).
    pub message: String,
    /// What it is about.
    pub concern: Concern,
}

impl Diagnostic {
    /// A warning.
    pub fn warning(origin: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            origin: origin.into(),
            message: message.into(),
            concern: Concern::General,
        }
    }

    /// An error.
    pub fn error(origin: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            origin: origin.into(),
            message: message.into(),
            concern: Concern::General,
        }
    }

    /// The same diagnostic, marked as being about `concern`.
    pub fn about(mut self, concern: Concern) -> Diagnostic {
        self.concern = concern;
        self
    }
}

/// Everything the node is supposed to have.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Intent {
    /// `metadata.name` of the MachineConfig, when there is one.
    pub machineconfig: Option<String>,
    /// Expected routes, in declaration order.
    pub routes: Vec<ExpectedRoute>,
    /// Expected policy-routing rules, in declaration order.
    pub rules: Vec<ExpectedRule>,
    /// Units the routes depend on.
    pub units: Vec<ExpectedUnit>,
    /// Remarks about the input.
    pub diagnostics: Vec<Diagnostic>,
    /// The file it was read from, when it was read from a node or a named file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<ConfigFile>,
    /// NetworkManager profiles whose routes or rules are expected, with their device.
    pub connections: Vec<ExpectedConnection>,
    /// NetworkManager profiles with routes that are not expected, and why.
    pub not_expected: Vec<NotExpected>,
}

/// A NetworkManager profile whose routes or rules are expected: it must be active on its device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpectedConnection {
    /// `connection.id`.
    pub connection: String,
    /// `connection.uuid`.
    pub uuid: String,
    /// The device it is (to be) active on.
    pub device: IfName,
}

/// A NetworkManager profile with routes that routewarden does not expect, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotExpected {
    /// `connection "id" (uuid, file)`.
    pub connection: String,
    /// The device it is bound to, when bound.
    pub device: Option<IfName>,
    /// Why its routes are not expected, in plain words.
    pub why: String,
}

fn ser_display<T: fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

fn ser_opt_display<T: fmt::Display, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

fn is_zero(v: &u8) -> bool {
    *v == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_key_clears_host_bits() {
        let k = RouteKey::new(254, "192.168.1.7/24".parse().expect("net"));
        assert_eq!(k.destination.to_string(), "192.168.1.0/24");
        assert_eq!(k.family, Family::Ipv4);
    }
}
