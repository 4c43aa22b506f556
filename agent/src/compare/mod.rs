//! Compare stage (pure): intent + observation -> [`DriftReport`]. Each expected
//! route is present, mismatched or missing (or unselected: in a table no rule
//! looks up), each expected rule present, mismatched or missing (`rules.rs`);
//! each one that is not present carries reasons from a fixed set
//! ([`ReasonKind`]) in plain words.
//!
//! The same function serves `check` (one evaluation) and `serve` (one per event):
//! lookups go through [`RouteIndex`], so an evaluation costs O(expected routes x
//! log(observed matches)), never a walk of the kernel table.

mod facts;
#[cfg(test)]
mod facts_tests;
mod lifecycle;
mod matching;
mod reasons;
#[cfg(test)]
mod rule_facts_tests;
mod rule_reasons;
mod rules;
#[cfg(test)]
mod rules_tests;
#[cfg(test)]
mod tests;
mod unexplained;
mod units;

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use crate::model::{
    Boot, ConfigFile, Diagnostic, ExpectedRoute, IfName, Intent, Link, NmView, ObservedRoute, ObservedRule,
    Protocol, RouteKey, RouteRemediation, RouteType, UnitName, UnitStatus,
};
use matching::Found;

pub(crate) use facts::kept_by_networkmanager;
pub use facts::ConnectionVerdict;
pub use lifecycle::{pending_reboot, written_after_boot};
pub use reasons::{Reason, ReasonKind, Reasons};
pub use rules::{RuleState, RuleVerdict};
pub use units::{UnitState, UnitVerdict};

/// Kernel routes that can match the intent, by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteIndex(BTreeMap<RouteKey, Vec<ObservedRoute>>);

impl RouteIndex {
    /// Index a list of routes.
    pub fn from_routes(routes: impl IntoIterator<Item = ObservedRoute>) -> RouteIndex {
        let mut idx = RouteIndex::default();
        for r in routes {
            idx.0.entry(r.key).or_default().push(r);
        }
        idx
    }

    /// Routes with this key.
    pub fn get(&self, key: &RouteKey) -> &[ObservedRoute] {
        self.0.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Mutable access for incremental updates.
    pub fn entry(&mut self, key: RouteKey) -> &mut Vec<ObservedRoute> {
        self.0.entry(key).or_default()
    }

    /// Drop a key with no routes left.
    pub fn prune(&mut self, key: &RouteKey) {
        if self.0.get(key).is_some_and(Vec::is_empty) {
            self.0.remove(key);
        }
    }

    /// Number of routes held.
    pub fn len(&self) -> usize {
        self.0.values().map(Vec::len).sum()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What systemd told us, or why it could not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitsSeen {
    /// Statuses of the expected units.
    Seen(Vec<UnitStatus>),
    /// D-Bus unreachable; the reason.
    Unavailable(String),
    /// `--no-units`.
    Skipped,
}

/// Everything observed on the node for one evaluation.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// Kernel routes that can match.
    pub routes: &'a RouteIndex,
    /// Every IPv4 and IPv6 policy-routing rule of the kernel, in its order.
    pub rules: &'a [ObservedRule],
    /// Links, or None when they could not be read.
    pub links: Option<&'a [Link]>,
    /// Unit statuses.
    pub units: &'a UnitsSeen,
    /// When this boot began, when systemd could be asked.
    pub boot: Option<Boot>,
    /// NetworkManager's view, when it could be read.
    pub networkmanager: Option<&'a NmView>,
}

/// Route verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteState {
    /// In the kernel as declared.
    Present,
    /// Not in the kernel at all.
    Missing,
    /// A route to the destination exists in the table, with another gateway or metric.
    Mismatched,
    /// In its table as declared, but no rule looks that table up: it carries no
    /// traffic (reason `no-rule-selects-table`).
    Unselected,
}

impl RouteState {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteState::Present => "present",
            RouteState::Missing => "missing",
            RouteState::Mismatched => "mismatched",
            RouteState::Unselected => "unselected",
        }
    }
}

/// One next hop of a kernel route, as shown.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ObservedHop {
    /// The route's type (`unicast`, `blackhole`...).
    #[serde(rename = "type")]
    pub kind: RouteType,
    /// Metric (none stored is the kernel's 0: JSON says 0, as the text does).
    #[serde(serialize_with = "metric_or_zero")]
    pub metric: Option<u32>,
    /// The route's TOS selector (IPv4), when it has one.
    #[serde(skip_serializing_if = "is_zero")]
    pub tos: u8,
    /// The route's source prefix selector (IPv6 `from`), when it has one.
    #[serde(rename = "from", skip_serializing_if = "Option::is_none")]
    pub source: Option<IpNet>,
    /// Gateway.
    pub gateway: Option<IpAddr>,
    /// Device name (or `if<N>` when the index has no known name).
    pub device: Option<String>,
    /// Table.
    pub table: u32,
    /// Protocol.
    pub protocol: Protocol,
    /// The next-hop object the route uses, when it uses one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nhid: Option<u32>,
}

impl ObservedHop {
    /// `blackhole tos 0x10 from P via G dev D metric M`, as `ip route` shows it.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.kind != RouteType::Unicast {
            parts.push(self.kind.to_string());
        }
        if self.tos != 0 {
            parts.push(format!("tos {:#04x}", self.tos));
        }
        if let Some(from) = self.source {
            parts.push(format!("from {from}"));
        }
        if let Some(id) = self.nhid {
            parts.push(format!("nhid {id}"));
        }
        if let Some(gw) = self.gateway {
            parts.push(format!("via {gw}"));
        }
        if let Some(dev) = &self.device {
            parts.push(format!("dev {dev}"));
        }
        parts.push(format!("metric {}", self.metric.unwrap_or(0)));
        parts.join(" ")
    }
}

fn metric_or_zero<S: serde::Serializer>(metric: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u32(metric.unwrap_or(0))
}

fn is_zero(v: &u8) -> bool {
    *v == 0
}

/// The verdict on one expected route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteVerdict {
    /// The expectation.
    #[serde(flatten)]
    pub expected: ExpectedRoute,
    /// Present, missing or mismatched.
    pub state: RouteState,
    /// Kernel routes to the same destination in the same table.
    pub observed: Vec<ObservedHop>,
    /// Why it is not present: `reasons` (plain words) and `reason_codes` (the
    /// fixed codes used as metric labels) in JSON.
    #[serde(flatten)]
    pub reasons: Reasons,
    /// What is done about it (`serve --remediate`), or would be (`check`);
    /// absent while it is present. The compare stage leaves it empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remediation: Option<RouteRemediation>,
}

/// State of a source of truth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceState {
    /// Read fine.
    Up,
    /// Could not be read, with why.
    Down(String),
    /// Not asked (`--no-units`).
    Skipped,
    /// Not there, and that is no fault: a node without a MachineConfig.
    Absent,
}

impl SourceState {
    /// 1 when up.
    pub fn is_up(&self) -> bool {
        *self == SourceState::Up
    }

    /// 1 when absent.
    pub fn is_absent(&self) -> bool {
        *self == SourceState::Absent
    }
}

impl Serialize for SourceState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SourceState::Up => s.serialize_str("up"),
            SourceState::Down(why) => s.serialize_str(&format!("down: {why}")),
            SourceState::Skipped => s.serialize_str("skipped"),
            SourceState::Absent => s.serialize_str("absent"),
        }
    }
}

/// The sources of truth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sources {
    /// The MachineConfig file.
    pub machineconfig: SourceState,
    /// The kernel over netlink.
    pub netlink: SourceState,
    /// systemd over D-Bus.
    pub systemd: SourceState,
    /// NetworkManager over D-Bus.
    pub networkmanager: SourceState,
}

/// The result of one evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriftReport {
    /// MachineConfig name.
    pub machineconfig: Option<String>,
    /// The file the MachineConfig was read from (path, layered image, when written).
    pub machineconfig_file: Option<ConfigFile>,
    /// Whether that file was written after this boot began (None while unknown).
    pub machineconfig_written_after_boot: Option<bool>,
    /// Any route or rule not present, or any unit not ok (unknown does not count).
    pub drift: bool,
    /// One verdict per expected route.
    pub routes: Vec<RouteVerdict>,
    /// One verdict per expected policy-routing rule.
    pub rules: Vec<RuleVerdict>,
    /// One verdict per expected unit.
    pub units: Vec<UnitVerdict>,
    /// Whether each NetworkManager profile whose routes or rules are expected is active.
    pub connections: Vec<ConnectionVerdict>,
    /// How each source fared.
    pub sources: Sources,
    /// The intent's diagnostics.
    pub diagnostics: Vec<Diagnostic>,
}

/// Compare the intent with what was observed.
pub fn compare(intent: &Intent, seen: Observed<'_>, sources: Sources) -> DriftReport {
    let units: Vec<UnitVerdict> = intent
        .units
        .iter()
        .map(|u| units::verdict(u, seen.units))
        .collect();
    let mut routes: Vec<RouteVerdict> = intent
        .routes
        .iter()
        .map(|r| route_verdict(r, seen, &units))
        .collect();
    lifecycle::mark_pending(&mut routes, &units, intent.file.as_ref(), seen.boot);
    rules::mark_unselected(&mut routes, seen.rules);
    let rules = rules::verdicts(intent, seen, &units);
    let drift = routes.iter().any(|r| r.state != RouteState::Present)
        || rules.iter().any(|r| r.state != RuleState::Present)
        || units
            .iter()
            .any(|u| u.state.is_known() && u.state != UnitState::Ok);
    DriftReport {
        machineconfig: intent.machineconfig.clone(),
        machineconfig_file: intent.file.clone(),
        machineconfig_written_after_boot: written_after_boot(intent.file.as_ref(), seen.boot),
        drift,
        routes,
        rules,
        units,
        connections: facts::connections(intent, seen.networkmanager),
        sources,
        diagnostics: intent.diagnostics.clone(),
    }
}

fn route_verdict(expected: &ExpectedRoute, seen: Observed<'_>, units: &[UnitVerdict]) -> RouteVerdict {
    let candidates = seen.routes.get(&expected.key());
    let found = matching::find(expected, candidates, seen.links);
    let state = match found {
        Found::Carries => RouteState::Present,
        Found::NoMatch if candidates.is_empty() => RouteState::Missing,
        Found::NoMatch | Found::Shadowed(_) => RouteState::Mismatched,
    };
    let mut observed: Vec<ObservedHop> = candidates.iter().flat_map(|c| hops(c, seen.links)).collect();
    observed.sort();
    let instead = match found {
        Found::Carries => None,
        Found::Shadowed(by) => Some(reasons::shadowed(&hops(by, seen.links).swap_remove(0))),
        Found::NoMatch => matching::other_hops(expected, candidates, seen.links)
            .map(|d| reasons::different_hops(&d, |i| link_name(seen.links, i))),
    };
    let reasons = match found {
        Found::Carries => Vec::new(),
        _ => reasons::explain(expected, state, &observed, instead, seen, units),
    };
    RouteVerdict {
        expected: expected.clone(),
        state,
        observed,
        reasons: Reasons(reasons),
        remediation: None,
    }
}

/// The route's hops as shown (one, without gateway or device, for a route that
/// has none).
fn hops(route: &ObservedRoute, links: Option<&[Link]>) -> Vec<ObservedHop> {
    let hop = |gateway, ifindex: Option<u32>| ObservedHop {
        kind: route.kind,
        metric: route.metric,
        tos: route.tos,
        source: route.source,
        gateway,
        device: ifindex.map(|i| link_name(links, i)),
        table: route.key.table,
        protocol: route.protocol,
        nhid: route.nhid,
    };
    if route.next_hops.is_empty() {
        return vec![hop(None, None)];
    }
    route
        .next_hops
        .iter()
        .map(|h| hop(h.gateway, h.ifindex))
        .collect()
}

fn link_name(links: Option<&[Link]>, index: u32) -> String {
    links
        .and_then(|ls| ls.iter().find(|l| l.index == index))
        .map(|l| l.name.to_string())
        .unwrap_or_else(|| format!("if{index}"))
}

/// The link with this name.
pub(crate) fn find_link<'a>(links: Option<&'a [Link]>, name: &IfName) -> Option<&'a Link> {
    links?.iter().find(|l| &l.name == name)
}

/// The verdict of a unit by name.
pub(crate) fn unit<'a>(units: &'a [UnitVerdict], name: &UnitName) -> Option<&'a UnitVerdict> {
    units.iter().find(|u| &u.name == name)
}
