//! NetworkManager as a declaration form, on the node recorded in
//! `tests/fixtures/networkmanager/` and on hand-built views.

use super::networkmanager::*;
use crate::intent::{self, Options};
use crate::model::{
    DeviceState, ExpectedRoute, IfName, Intent, NmConnection, NmDevice, NmProfile, NmView, ProfileFlags,
    RouteType, SourceKind, StateReason,
};
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
            "10.12.0.0/16 201",
            "10.13.0.0/24 254",
            "0.0.0.0/0 300",
            "fd00:99::/64 254",
            "fd00:98::/64 200",
            "fd00:97::/64 254",
        ],
        "ens5's applied route, then rw-all's routes on ens6, of every type"
    );
    assert_eq!(find(&nm.routes, "10.12.0.0/16", 201).kind, RouteType::Blackhole);
    assert_eq!(find(&nm.routes, "fd00:97::/64", 254).kind, RouteType::Unreachable);
    assert_eq!(find(&nm.routes, "10.11.0.0/16", 254).kind, RouteType::Unicast);
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
    let notes: Vec<&str> = nm.diagnostics.iter().map(|d| d.message.as_str()).collect();
    assert!(notes.is_empty(), "every type is known: {notes:?}");
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
    let routes: Vec<(&str, &str, Option<u32>)> = routes.iter().map(|(d, t)| (*d, "172.19.0.1", *t)).collect();
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
    assert_eq!(merged.routes.len(), 9);
    assert_eq!(
        merged.units, mc.units,
        "NetworkManager.service is not expected twice"
    );
    let alone = merge(Intent::default(), expected(&recorded_view()));
    assert_eq!(alone.units.len(), 1);
    assert_eq!(alone.units[0].name.as_str(), "NetworkManager.service");
}
