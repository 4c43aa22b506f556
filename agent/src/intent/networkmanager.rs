//! Intent stage, NetworkManager as a declaration form: its view (devices, applied
//! connections, profiles; [`NmView`]) -> the routes it is expected to keep. Pure.
//!
//! Expected: the routes of the connection applied to every activated device
//! (NetworkManager put them there; DHCP and router advertisement routes are not
//! in `route-data`) and those its profile has since gained (`nmcli connection
//! modify` without a re-apply), and the routes of a profile that autoconnects,
//! bound to a device that exists, is managed and has no connection active: that
//! the profile is not active is then the drift. Profiles with routes that are bound to no
//! device, to an absent or unmanaged one, that do not autoconnect, or that
//! NetworkManager generated from a device configured outside it are listed as not
//! expected, with why. [`merge`] joins this with the MachineConfig's intent: a
//! route both declare is one route with both sources.
//!
//! Defaults as NetworkManager applies them: a route without `table` goes to the
//! connection's `route-table` (0: main), one without `metric` gets the
//! connection's `route-metric`, else the device's default (unknown here, so not
//! checked); an IPv6 metric of 0 is 1024 in the kernel.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::model::{
    Diagnostic, Expect, ExpectedConnection, ExpectedRoute, ExpectedUnit, Family, IfName, Intent, Manager,
    NmConnection, NmDevice, NmProfile, NmRoute, NmRouteType, NmView, NotExpected, RouteType, Source,
    SourceKind, Traits, UnitName,
};

/// What NetworkManager's view says the node must have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NmIntent {
    /// Expected routes, device by device, then profile by profile.
    pub routes: Vec<ExpectedRoute>,
    /// Profiles whose routes are expected, with their device.
    pub connections: Vec<ExpectedConnection>,
    /// Profiles with routes that are not expected, and why.
    pub not_expected: Vec<NotExpected>,
    /// Routes not checked (not unicast) and objects NetworkManager's replies did
    /// not let us read.
    pub diagnostics: Vec<Diagnostic>,
}

/// The routes NetworkManager is expected to keep, from its view.
pub fn expected(view: &NmView) -> NmIntent {
    let mut out = NmIntent::default();
    for device in &view.devices {
        if let Some(applied) = device.applied.as_ref().filter(|_| device.state.0 == 100) {
            let generated = view
                .profile(&applied.uuid)
                .is_some_and(|p| p.flags.nm_generated());
            if !generated {
                out.add(applied, &origin(view, applied), &device.interface);
            }
        }
    }
    for profile in view.profiles.iter().filter(|p| has_routes(&p.settings)) {
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
/// `sources` name both; NetworkManager.service is expected active when it keeps
/// any route.
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
    let needs_nm = intent
        .routes
        .iter()
        .any(|r| r.sources.iter().any(|s| s.kind == SourceKind::NetworkManager));
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
    /// Active on this device: its routes are expected there (the applied
    /// connection's are already).
    Applied(&'a IfName),
    /// Its routes are expected, on this device.
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
    /// The routes of one connection on one device.
    fn add(&mut self, c: &NmConnection, origin: &str, device: &IfName) {
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
        let known = self
            .connections
            .iter()
            .any(|x| x.uuid == c.uuid && &x.device == device);
        if any && !known {
            self.connections.push(ExpectedConnection {
                connection: c.id.clone(),
                uuid: c.uuid.clone(),
                device: device.clone(),
            });
        }
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
    let source = Source {
        kind: SourceKind::NetworkManager,
        origin: origin.to_owned(),
        unit: None,
    };
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
        sources: vec![source.clone()],
        source,
        notes: Vec::new(),
        traits: Traits {
            manager: Manager::NetworkManager,
            connection: Some(c.uuid.clone()),
            onlink: r.onlink,
            ..Traits::default()
        },
    }
}

/// How route sources name a connection: with its file when a profile has it.
fn origin(view: &NmView, c: &NmConnection) -> String {
    match view.profile(&c.uuid) {
        Some(p) => p.origin(),
        None => format!("connection \"{}\" ({}, no profile)", c.id, c.uuid),
    }
}

fn has_routes(c: &NmConnection) -> bool {
    !c.ipv4.routes.is_empty() || !c.ipv6.routes.is_empty()
}

/// A route in the kernel's terms (the labels of its metric series).
type Identity = (Family, IpNet, Option<IpAddr>, Option<IfName>, u32);

fn identity(r: &ExpectedRoute) -> Identity {
    (r.family, r.destination, r.gateway, r.device.clone(), r.table)
}

/// A second declaration of a known route: its source joins, and what it knows
/// that the first did not (the metric, the profile) fills in.
fn join(known: &mut ExpectedRoute, other: ExpectedRoute) {
    for source in other.sources {
        if !known.sources.contains(&source) {
            known.sources.push(source);
        }
    }
    known.traits.connection = known.traits.connection.take().or(other.traits.connection);
    known.traits.onlink |= other.traits.onlink;
    match (known.metric, other.metric) {
        (None, Some(m)) => known.metric = Some(m),
        (Some(a), Some(b)) if a != b => known.notes.push(format!(
            "NetworkManager applies it with metric {b}; metric {a} is checked"
        )),
        _ => {}
    }
    if known.traits.manager == Manager::None {
        known.traits.manager = Manager::NetworkManager;
    }
}
