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
    NmConnection, NmDevice, NmProfile, NmRoute, NmRouteType, NmView, NotExpected, Source, SourceKind, Traits,
    UnitName,
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
                if r.kind != NmRouteType::Unicast {
                    let message = format!(
                        "route {} is of type {}, not a unicast route; not checked",
                        r.destination,
                        r.kind.as_str()
                    );
                    let note = Diagnostic::warning(origin, message);
                    if !self.diagnostics.contains(&note) {
                        self.diagnostics.push(note);
                    }
                    continue;
                }
                let new = route(c, family, r, origin, device);
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

/// One route of a connection, its defaults applied.
fn route(c: &NmConnection, family: Family, r: &NmRoute, origin: &str, device: &IfName) -> ExpectedRoute {
    let ip = c.ip(family);
    let (table, metric) = (ip.table_of(r), ip.metric_of(family, r));
    let source = Source {
        kind: SourceKind::NetworkManager,
        origin: origin.to_owned(),
        unit: None,
    };
    ExpectedRoute {
        family,
        destination: r.destination,
        gateway: r.next_hop,
        device: Some(device.clone()),
        table,
        metric,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::{self, Options};
    use crate::model::{DeviceState, ProfileFlags, StateReason};
    use crate::observe::networkmanager::fixtures::recorded_view;

    const SEED: &[u8] = include_bytes!("../../../examples/seed-machineconfig.yaml");

    fn find<'a>(routes: &'a [ExpectedRoute], dest: &str, table: u32) -> &'a ExpectedRoute {
        routes
            .iter()
            .find(|r| r.destination.to_string() == dest && r.table == table)
            .unwrap_or_else(|| panic!("no {dest} table {table} in {routes:#?}"))
    }

    #[test]
    fn the_recorded_node() {
        let nm = expected(&recorded_view());
        let applied: Vec<String> = nm
            .routes
            .iter()
            .map(|r| format!("{} {}", r.destination, r.table))
            .collect();
        assert_eq!(
            applied,
            [
                "192.168.1.0/24 254",
                "10.10.0.0/16 200",
                "10.11.0.0/16 254",
                "10.13.0.0/24 254",
                "0.0.0.0/0 300",
                "fd00:99::/64 254",
                "fd00:98::/64 200",
            ],
            "ens5's applied route, then rw-all's unicast routes on ens6"
        );
        let r = find(&nm.routes, "10.10.0.0/16", 200);
        assert_eq!(
            (r.metric, r.gateway.map(|g| g.to_string())),
            (Some(77), Some("172.19.0.1".into()))
        );
        assert_eq!(
            find(&nm.routes, "10.11.0.0/16", 254).metric,
            Some(150),
            "the connection's route-metric"
        );
        assert!(find(&nm.routes, "10.13.0.0/24", 254).traits.onlink);
        assert_eq!(
            find(&nm.routes, "fd00:99::/64", 254).metric,
            None,
            "IPv6 route-metric unset: device default"
        );
        assert_eq!(
            find(&nm.routes, "fd00:98::/64", 200).metric,
            Some(1024),
            "IPv6 metric 0 is 1024"
        );
        let seed = find(&nm.routes, "192.168.1.0/24", 254);
        assert_eq!(seed.device.as_ref().map(|d| d.as_str()), Some("ens5"));
        assert_eq!(seed.source.kind, SourceKind::NetworkManager);
        assert!(
            seed.source.origin.starts_with("connection \"ens5\" ("),
            "{}",
            seed.source.origin
        );
        assert!(seed
            .source
            .origin
            .ends_with(", /etc/NetworkManager/system-connections/ens5.nmconnection)"));
        let types: Vec<&str> = nm.diagnostics.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(types.len(), 2, "{types:?}");
        assert!(
            types[0].contains("10.12.0.0/16 is of type blackhole"),
            "{types:?}"
        );
        assert!(
            types[1].contains("fd00:97::/64 is of type unreachable"),
            "{types:?}"
        );
        let connections: Vec<(&str, &str)> = nm
            .connections
            .iter()
            .map(|c| (c.connection.as_str(), c.device.as_str()))
            .collect();
        assert_eq!(connections, [("ens5", "ens5"), ("rw-all", "ens6")]);
        let why: Vec<(&str, &str)> = nm
            .not_expected
            .iter()
            .map(|n| (n.connection.split(' ').nth(1).unwrap_or_default(), n.why.as_str()))
            .collect();
        assert_eq!(
            why,
            [
                (
                    "\"rw-manual\"",
                    "autoconnect is off: its routes are there only while it is activated by hand"
                ),
                ("\"rw-nmstate\"", "it is bound to ens9, which does not exist"),
            ]
        );
    }

    fn device(name: &str, state: u32, managed: bool, applied: Option<NmConnection>) -> NmDevice {
        NmDevice {
            interface: IfName::new(name).expect("name"),
            state: DeviceState(state),
            reason: StateReason(39),
            managed,
            applied,
        }
    }

    fn connection(id: &str, device: &str, routes: &[(&str, Option<u32>)]) -> NmConnection {
        let routes: Vec<(&str, &str, Option<u32>)> =
            routes.iter().map(|(d, t)| (*d, "172.19.0.1", *t)).collect();
        NmConnection::for_tests(id, device, &routes)
    }

    fn profile(c: NmConnection, flags: u32) -> NmProfile {
        NmProfile {
            filename: Some(format!(
                "/etc/NetworkManager/system-connections/{}.nmconnection",
                c.id
            )),
            settings: c,
            flags: ProfileFlags(flags),
        }
    }

    #[test]
    fn an_inactive_autoconnect_profile_is_expected_others_say_why_not() {
        let view = NmView {
            devices: vec![
                device("ens6", 30, true, None),
                device("ens7", 10, false, None),
                device("ens8", 100, true, Some(connection("other", "ens8", &[]))),
            ],
            profiles: vec![
                profile(connection("down", "ens6", &[("10.1.0.0/16", Some(300))]), 0),
                profile(connection("unmanaged", "ens7", &[("10.2.0.0/16", None)]), 0),
                profile(connection("busy", "ens8", &[("10.3.0.0/16", None)]), 0),
                profile(connection("generated", "ens6", &[("10.4.0.0/16", None)]), 0x2),
                profile(connection("unbound", "", &[("10.5.0.0/16", None)]), 0),
            ],
            problems: vec!["/org/freedesktop/NetworkManager/Settings/9: GetSettings refused".into()],
        };
        let nm = expected(&view);
        assert_eq!(nm.routes.len(), 1, "{:#?}", nm.routes);
        assert_eq!(
            (nm.routes[0].table, nm.routes[0].traits.connection.as_deref()),
            (300, Some("uuid-down"))
        );
        let why: Vec<&str> = nm.not_expected.iter().map(|n| n.why.as_str()).collect();
        assert_eq!(
            why,
            [
                "it is bound to ens7, which NetworkManager does not manage",
                "ens8 is activated with connection \"other\"",
                "NetworkManager generated it from a device configured outside NetworkManager",
                "it is bound to no interface (connection.interface-name is empty)",
            ]
        );
        assert_eq!(nm.diagnostics.len(), 1);
        assert_eq!(nm.diagnostics[0].origin, "NetworkManager");
    }

    #[test]
    fn a_profile_changed_but_not_reapplied_adds_its_new_routes() {
        let applied = connection("ens6", "ens6", &[("10.1.0.0/16", None)]);
        let changed = connection("ens6", "ens6", &[("10.1.0.0/16", None), ("10.9.0.0/16", None)]);
        let view = NmView {
            devices: vec![device("ens6", 100, true, Some(applied))],
            profiles: vec![profile(changed, 0)],
            problems: Vec::new(),
        };
        let nm = expected(&view);
        let dests: Vec<String> = nm.routes.iter().map(|r| r.destination.to_string()).collect();
        assert_eq!(dests, ["10.1.0.0/16", "10.9.0.0/16"]);
        assert_eq!(nm.routes[0].sources.len(), 1, "one profile, one source");
        assert_eq!(nm.connections.len(), 1);
    }

    #[test]
    fn a_route_both_declare_is_one_route_with_both_sources() {
        let mc = intent::from_bytes(SEED, &Options::default()).expect("seed");
        assert_eq!(mc.units.len(), 2, "the unit and NetworkManager.service");
        let merged = merge(mc.clone(), expected(&recorded_view()));
        let seed = find(&merged.routes, "192.168.1.0/24", 254);
        let kinds: Vec<SourceKind> = seed.sources.iter().map(|s| s.kind).collect();
        assert_eq!(kinds, [SourceKind::Nmcli, SourceKind::NetworkManager]);
        assert_eq!(seed.source, seed.sources[0], "source stays the first");
        assert_eq!(
            seed.traits.connection.as_deref(),
            Some("09cf4c88-d3ae-3140-b483-09bca10af247")
        );
        assert!(seed.traits.non_persistent, "what the MachineConfig knows stays");
        assert_eq!(merged.routes.len(), 7);
        assert_eq!(
            merged.units, mc.units,
            "NetworkManager.service is not expected twice"
        );
        let alone = merge(Intent::default(), expected(&recorded_view()));
        assert_eq!(alone.units.len(), 1);
        assert_eq!(alone.units[0].name.as_str(), "NetworkManager.service");
    }
}
