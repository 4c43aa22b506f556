//! Intent stage, NetworkManager as a declaration form: its view (devices, applied
//! connections, profiles; [`NmView`]) -> the routes and policy-routing rules it is
//! expected to keep. Pure.
//!
//! Expected: the routes and rules (`route-data`, `routing-rules`) of the
//! connection applied to every activated device (NetworkManager put them there;
//! DHCP and router advertisement routes are not in `route-data`) and those its
//! profile has since gained (`nmcli connection modify` without a re-apply), and
//! those of a profile that autoconnects, bound to a device that exists, is
//! managed and has no connection active: that the profile is not active is then
//! the drift. Profiles with routes or rules that are bound to no device, to an
//! absent or unmanaged one, that do not autoconnect, or that NetworkManager
//! generated from a device configured outside it are listed as not expected, with
//! why. [`merge`] joins this with the MachineConfig's intent: a route (or rule)
//! both declare is one route (or rule) with both sources. Rules are built as the
//! keyfile and nmcli forms build them ([`RuleSpec`]).
//!
//! Defaults as NetworkManager applies them: a route without `table` goes to the
//! connection's `route-table` (0: main), one without `metric` gets the
//! connection's `route-metric`, else the device's default (unknown here, so not
//! checked); an IPv6 metric of 0 is 1024 in the kernel.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

use super::rules::{not_checked, RuleSpec};
use crate::model::{
    DeviceState, Diagnostic, Expect, ExpectedConnection, ExpectedRoute, ExpectedRule, ExpectedUnit, Family,
    IfName, Intent, Manager, NmConnection, NmDevice, NmProfile, NmRoute, NmRouteType, NmRule, NmView,
    NotExpected, RouteType, Source, SourceKind, Traits, UnitName,
};

/// What NetworkManager's view says the node must have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NmIntent {
    /// Expected routes, device by device, then profile by profile.
    pub routes: Vec<ExpectedRoute>,
    /// Expected policy-routing rules, in the same order.
    pub rules: Vec<ExpectedRule>,
    /// Profiles whose routes or rules are expected, with their device.
    pub connections: Vec<ExpectedConnection>,
    /// Profiles with routes or rules that are not expected, and why.
    pub not_expected: Vec<NotExpected>,
    /// Routes not checked (not unicast) and objects NetworkManager's replies did
    /// not let us read.
    pub diagnostics: Vec<Diagnostic>,
}

/// The routes and rules NetworkManager is expected to keep, from its view.
pub fn expected(view: &NmView) -> NmIntent {
    let mut out = NmIntent::default();
    for device in &view.devices {
        if let Some(applied) = device
            .applied
            .as_ref()
            .filter(|_| device.state == DeviceState::ACTIVATED)
        {
            let generated = view
                .profile(&applied.uuid)
                .is_some_and(|p| p.flags.nm_generated());
            if !generated {
                out.add(applied, &origin(view, applied), &device.interface);
            }
        }
    }
    for profile in view.profiles.iter().filter(|p| p.settings.declares()) {
        match judge(view, profile) {
            Judgement::Applied(device) | Judgement::Expected(device) => {
                out.add(&profile.settings, &profile.origin(), device)
            }
            Judgement::NotExpected(why) => out.not_expected.push(NotExpected {
                connection: profile.origin(),
                device: profile.settings.interface_name.clone(),
                why,
            }),
        }
    }
    for problem in &view.problems {
        out.diagnostics
            .push(Diagnostic::warning("NetworkManager", problem.clone()));
    }
    out
}

/// Join NetworkManager's intent to the MachineConfig's: a route both declare
/// (same family, destination, gateway, device and table) is one route whose
/// `sources` name both, and so is a rule (same family, priority, selector and
/// action); NetworkManager.service is expected active when it keeps any route or
/// rule.
pub fn merge(mut intent: Intent, nm: NmIntent) -> Intent {
    let mut known: HashMap<Identity, usize> = intent
        .routes
        .iter()
        .enumerate()
        .map(|(i, r)| (identity(r), i))
        .collect();
    for route in nm.routes {
        match known.get(&identity(&route)) {
            Some(&i) => join(&mut intent.routes[i], route),
            None => {
                known.insert(identity(&route), intent.routes.len());
                intent.routes.push(route);
            }
        }
    }
    for rule in nm.rules {
        match intent.rules.iter_mut().find(|known| known.same_rule(&rule)) {
            Some(known) => join_rule(known, rule),
            None => intent.rules.push(rule),
        }
    }
    let kept = |sources: &[Source]| sources.iter().any(|s| s.kind == SourceKind::NetworkManager);
    let needs_nm =
        intent.routes.iter().any(|r| kept(&r.sources)) || intent.rules.iter().any(|r| kept(&r.sources));
    let nm_unit = UnitName::new("NetworkManager.service").ok();
    if let Some(name) = nm_unit.filter(|n| needs_nm && !intent.units.iter().any(|u| &u.name == n)) {
        intent.units.push(ExpectedUnit {
            name,
            enabled: None,
            expect: Expect::Active,
        });
    }
    intent.connections.extend(nm.connections);
    intent.not_expected.extend(nm.not_expected);
    intent.diagnostics.extend(nm.diagnostics);
    intent
}

enum Judgement<'a> {
    /// Active on this device: its routes and rules are expected there (the
    /// applied connection's are already).
    Applied(&'a IfName),
    /// Its routes and rules are expected, on this device.
    Expected(&'a IfName),
    /// Not expected, and why.
    NotExpected(String),
}

/// Whether a profile that is not applied anywhere is expected to be.
fn judge<'a>(view: &'a NmView, profile: &'a NmProfile) -> Judgement<'a> {
    let s = &profile.settings;
    if profile.flags.nm_generated() {
        return Judgement::NotExpected(
            "NetworkManager generated it from a device configured outside NetworkManager".into(),
        );
    }
    let applied_on = |d: &&NmDevice| d.applied.as_ref().is_some_and(|a| a.uuid == s.uuid);
    if let Some(device) = view.devices.iter().find(applied_on) {
        return Judgement::Applied(&device.interface);
    }
    if !s.autoconnect {
        return Judgement::NotExpected(
            "autoconnect is off: its routes are there only while it is activated by hand".into(),
        );
    }
    let Some(name) = &s.interface_name else {
        return Judgement::NotExpected(
            "it is bound to no interface (connection.interface-name is empty)".into(),
        );
    };
    let Some(device) = view.device(name) else {
        return Judgement::NotExpected(format!("it is bound to {name}, which does not exist"));
    };
    if !device.managed {
        return Judgement::NotExpected(format!(
            "it is bound to {name}, which NetworkManager does not manage"
        ));
    }
    if let Some(other) = &device.applied {
        return Judgement::NotExpected(format!("{name} is activated with connection \"{}\"", other.id));
    }
    Judgement::Expected(&device.interface)
}

impl NmIntent {
    /// The routes and rules of one connection on one device.
    fn add(&mut self, c: &NmConnection, origin: &str, device: &IfName) {
        let routes = self.add_routes(c, origin, device);
        let rules = self.add_rules(c, origin, device);
        let known = self
            .connections
            .iter()
            .any(|x| x.uuid == c.uuid && &x.device == device);
        if (routes || rules) && !known {
            self.connections.push(ExpectedConnection {
                connection: c.id.clone(),
                uuid: c.uuid.clone(),
                device: device.clone(),
            });
        }
    }

    /// The routes of one connection; true when it has any routewarden checks.
    fn add_routes(&mut self, c: &NmConnection, origin: &str, device: &IfName) -> bool {
        let mut any = false;
        for family in [Family::Ipv4, Family::Ipv6] {
            for r in &c.ip(family).routes {
                let Ok(kind) = route_type(&r.kind) else {
                    let message = format!(
                        "route {} is of type {}, which routewarden does not know; not checked",
                        r.destination,
                        r.kind.as_str()
                    );
                    let note = Diagnostic::warning(origin, message);
                    if !self.diagnostics.contains(&note) {
                        self.diagnostics.push(note);
                    }
                    continue;
                };
                let new = route(c, family, r, kind, origin, device);
                match self
                    .routes
                    .iter_mut()
                    .find(|known| identity(known) == identity(&new))
                {
                    Some(known) => join(known, new),
                    None => self.routes.push(new),
                }
                any = true;
            }
        }
        any
    }

    /// The rules of one connection; true when it has any.
    fn add_rules(&mut self, c: &NmConnection, origin: &str, device: &IfName) -> bool {
        let all = c.ipv4.rules.iter().chain(&c.ipv6.rules);
        for new in all.map(|r| rule(c, r, origin, device)) {
            match self.rules.iter_mut().find(|known| known.same_rule(&new)) {
                Some(known) => join_rule(known, new),
                None => self.rules.push(new),
            }
        }
        !c.ipv4.rules.is_empty() || !c.ipv6.rules.is_empty()
    }
}

/// A route type in NetworkManager's words.
fn route_type(kind: &NmRouteType) -> Result<RouteType, String> {
    match kind {
        NmRouteType::Unicast => Ok(RouteType::Unicast),
        NmRouteType::Other(t) => super::spec::nm_route_type(t),
    }
}

/// One route of a connection, its defaults applied (an IPv6 metric of 0 is
/// 1024, as the kernel stores it).
fn route(
    c: &NmConnection,
    family: Family,
    r: &NmRoute,
    kind: RouteType,
    origin: &str,
    device: &IfName,
) -> ExpectedRoute {
    let ip = c.ip(family);
    let table = ip.table_of(r);
    let metric = match (family, ip.metric_of(family, r)) {
        (Family::Ipv6, Some(0)) => Some(super::spec::IPV6_DEFAULT_METRIC),
        (_, m) => m,
    };
    let source = source(origin);
    ExpectedRoute {
        family,
        destination: r.destination,
        gateway: r.next_hop,
        kind,
        device: Some(device.clone()),
        table,
        metric,
        tos: 0,
        source_prefix: None,
        nhid: None,
        next_hops: Vec::new(),
        sources: vec![source.clone()],
        source,
        notes: Vec::new(),
        traits: Traits {
            onlink: r.onlink,
            ..traits(c, device)
        },
    }
}

/// One rule of a connection, as the keyfile and nmcli forms build theirs.
fn rule(c: &NmConnection, r: &NmRule, origin: &str, device: &IfName) -> ExpectedRule {
    let spec = RuleSpec {
        family: r.family,
        priority: r.priority,
        selector: r.selector.clone(),
        action: r.action,
        notes: r.unchecked.iter().map(|u| not_checked(u)).collect(),
    };
    spec.into_expected(source(origin), traits(c, device))
}

/// A declaration by NetworkManager's view, named as `origin` says.
fn source(origin: &str) -> Source {
    Source {
        kind: SourceKind::NetworkManager,
        origin: origin.to_owned(),
        unit: None,
    }
}

/// What explains drift of what connection `c` declares on `device`.
fn traits(c: &NmConnection, device: &IfName) -> Traits {
    Traits {
        manager: Manager::NetworkManager,
        connection: Some(c.uuid.clone()),
        device: Some(device.clone()),
        ..Traits::default()
    }
}

/// How route sources name a connection: with its file when a profile has it.
fn origin(view: &NmView, c: &NmConnection) -> String {
    match view.profile(&c.uuid) {
        Some(p) => p.origin(),
        None => format!("connection \"{}\" ({}, no profile)", c.id, c.uuid),
    }
}

/// A route in the kernel's terms (the labels of its metric series).
type Identity = (Family, IpNet, Option<IpAddr>, Option<IfName>, u32);

fn identity(r: &ExpectedRoute) -> Identity {
    (r.family, r.destination, r.gateway, r.device.clone(), r.table)
}

/// A second declaration of a known route: its source joins, and what it knows
/// that the first did not (the metric, the profile) fills in.
fn join(known: &mut ExpectedRoute, other: ExpectedRoute) {
    join_sources(&mut known.sources, other.sources);
    join_traits(&mut known.traits, other.traits);
    match (known.metric, other.metric) {
        (None, Some(m)) => known.metric = Some(m),
        (Some(a), Some(b)) if a != b => known.notes.push(format!(
            "NetworkManager applies it with metric {b}; metric {a} is checked"
        )),
        _ => {}
    }
}

/// A second declaration of a known rule: its source joins, and what it knows
/// that the first did not (the profile, its device) fills in.
fn join_rule(known: &mut ExpectedRule, other: ExpectedRule) {
    join_sources(&mut known.sources, other.sources);
    join_traits(&mut known.traits, other.traits);
}

fn join_sources(known: &mut Vec<Source>, other: Vec<Source>) {
    for source in other {
        if !known.contains(&source) {
            known.push(source);
        }
    }
}

fn join_traits(known: &mut Traits, other: Traits) {
    known.connection = known.connection.take().or(other.connection);
    known.device = known.device.take().or(other.device);
    known.onlink |= other.onlink;
    if known.manager == Manager::None {
        known.manager = Manager::NetworkManager;
    }
}
