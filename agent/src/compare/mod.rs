//! Compare stage (pure): intent + observation -> [`DriftReport`]. Each expected
//! route is present, mismatched or missing; each one that is not present carries
//! reasons from a fixed set ([`ReasonKind`]) in plain words.
//!
//! The same function serves `check` (one evaluation) and `serve` (one per event):
//! lookups go through [`RouteIndex`], so an evaluation costs O(expected routes x
//! log(observed matches)), never a walk of the kernel table.

mod facts;
#[cfg(test)]
mod facts_tests;
mod reasons;
#[cfg(test)]
mod tests;
mod units;

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use crate::model::{
    Diagnostic, ExpectedRoute, IfName, Intent, Link, NmView, ObservedRoute, Protocol, RouteKey, UnitName,
    UnitStatus,
};

pub use facts::ConnectionVerdict;
pub use reasons::{Reason, ReasonKind, Reasons};
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
    /// Links, or None when they could not be read.
    pub links: Option<&'a [Link]>,
    /// Unit statuses.
    pub units: &'a UnitsSeen,
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
}

impl RouteState {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteState::Present => "present",
            RouteState::Missing => "missing",
            RouteState::Mismatched => "mismatched",
        }
    }
}

/// One next hop of a kernel route, as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedHop {
    /// Gateway.
    pub gateway: Option<IpAddr>,
    /// Device name (or `if<N>` when the index has no known name).
    pub device: Option<String>,
    /// Metric.
    pub metric: Option<u32>,
    /// Table.
    pub table: u32,
    /// Protocol.
    pub protocol: Protocol,
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
}

impl SourceState {
    /// 1 when up.
    pub fn is_up(&self) -> bool {
        *self == SourceState::Up
    }
}

impl Serialize for SourceState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SourceState::Up => s.serialize_str("up"),
            SourceState::Down(why) => s.serialize_str(&format!("down: {why}")),
            SourceState::Skipped => s.serialize_str("skipped"),
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
    /// Any route not present, or any unit not ok (unknown does not count).
    pub drift: bool,
    /// One verdict per expected route.
    pub routes: Vec<RouteVerdict>,
    /// One verdict per expected unit.
    pub units: Vec<UnitVerdict>,
    /// Whether each NetworkManager profile whose routes are expected is active.
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
    let routes: Vec<RouteVerdict> = intent
        .routes
        .iter()
        .map(|r| route_verdict(r, seen, &units))
        .collect();
    let drift = routes.iter().any(|r| r.state != RouteState::Present)
        || units
            .iter()
            .any(|u| !matches!(u.state, UnitState::Ok | UnitState::Unknown));
    DriftReport {
        machineconfig: intent.machineconfig.clone(),
        drift,
        routes,
        units,
        connections: facts::connections(intent, seen.networkmanager),
        sources,
        diagnostics: intent.diagnostics.clone(),
    }
}

fn route_verdict(expected: &ExpectedRoute, seen: Observed<'_>, units: &[UnitVerdict]) -> RouteVerdict {
    let candidates = seen.routes.get(&expected.key());
    let state = if candidates.iter().any(|c| matches(expected, c)) {
        RouteState::Present
    } else if candidates.is_empty() {
        RouteState::Missing
    } else {
        RouteState::Mismatched
    };
    let observed: Vec<ObservedHop> = candidates.iter().flat_map(|c| hops(c, seen.links)).collect();
    let reasons = match state {
        RouteState::Present => Vec::new(),
        _ => reasons::explain(expected, state, &observed, seen, units),
    };
    RouteVerdict {
        expected: expected.clone(),
        state,
        observed,
        reasons: Reasons(reasons),
    }
}

/// Same gateway (any next hop) and metric, where the intent names them. The kernel
/// omits RTA_PRIORITY for metric 0.
fn matches(expected: &ExpectedRoute, c: &ObservedRoute) -> bool {
    let gateway_ok = match expected.gateway {
        None => true,
        Some(gw) => c.next_hops.iter().any(|h| h.gateway == Some(gw)),
    };
    let metric_ok = expected.metric.is_none_or(|m| c.metric.unwrap_or(0) == m);
    gateway_ok && metric_ok
}

fn hops(route: &ObservedRoute, links: Option<&[Link]>) -> Vec<ObservedHop> {
    let hop = |gateway, ifindex: Option<u32>| ObservedHop {
        gateway,
        device: ifindex.map(|i| link_name(links, i)),
        metric: route.metric,
        table: route.key.table,
        protocol: route.protocol,
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
