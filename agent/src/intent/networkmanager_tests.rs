//! NetworkManager as a declaration form, on the node recorded in
//! `tests/fixtures/networkmanager/` and on hand-built views.

use super::networkmanager::*;
use crate::intent::rules::with_nm_rules;
use crate::intent::{self, Options};
use crate::model::{
    DeviceState, ExpectedRoute, ExpectedRule, IfName, Intent, Manager, NmConnection, NmDevice, NmProfile,
    NmView, ProfileFlags, RouteType, SourceKind, StateReason,
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
    assert_eq!(
        connections,
        [("ens5", "ens5"), ("rw-all", "ens6"), ("rw-rules", "ens7")],
        "a profile with rules alone is expected too"
    );
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

/// `PRIORITY: SELECTOR ACTION`, each rule.
fn rule_texts(rules: &[ExpectedRule]) -> Vec<String> {
    rules
        .iter()
        .map(|r| format!("{}: {} {}", r.priority.unwrap_or_default(), r.selector, r.action))
        .collect()
}

#[test]
fn the_recorded_node_rules() {
    let nm = expected(&recorded_view());
    assert_eq!(
        rule_texts(&nm.rules),
        [
            "130: from 172.18.0.0/16 table 230",
            "100: from 10.0.0.0/8 table 200",
            "101: to 192.168.0.0/16 table 300",
            "102: from fd00::/8 table 200",
            "110: from 10.1.0.0/16 to 10.2.0.0/16 iif ens7 table 210",
            "111: fwmark 0x30/0x10 oif ens7 table 211",
            "112: not from 10.3.0.0/16 table 212",
            "113: suppress_prefixlength 0 table 213",
            "114: to 10.4.0.0/16 blackhole",
            "115: from 10.5.0.0/16 prohibit",
            "116: tos 0x10 ipproto 6 sport 1000-2000 dport 53 table 216",
            "117: fwmark 0x7 table 217",
            "120: from fd00:1::/64 iif ens7 table 220",
            "121: to fd00:2::/64 unreachable",
            "118: from 10.6.0.0/16 table 218",
        ],
        "ens5's applied rule (nmcli device modify), rw-all's and rw-rules' applied \
         rules, then the rule rw-rules' profile gained without a re-apply"
    );
    let uid = nm.rules.iter().find(|r| r.priority == Some(117)).expect("117");
    assert_eq!(uid.notes, ["uidrange 1000-2000 is not checked"]);
    let later = nm.rules.iter().find(|r| r.priority == Some(118)).expect("118");
    let applied = nm.rules.iter().find(|r| r.priority == Some(110)).expect("110");
    assert_eq!(later.source, applied.source, "one profile, one origin");
    assert_eq!(later.sources, std::slice::from_ref(&later.source));
    assert_eq!(later.source.kind, SourceKind::NetworkManager);
    assert!(
        later.source.origin.starts_with("connection \"rw-rules\" (")
            && later.source.origin.ends_with("/rw-rules.nmconnection)"),
        "{}",
        later.source.origin
    );
    assert_eq!(later.traits.device.as_ref().map(|d| d.as_str()), Some("ens7"));
    assert_eq!(later.traits.manager, Manager::NetworkManager);
    assert!(later.traits.connection.is_some());
    assert!(!later.traits.non_persistent);
    let ens5 = &nm.rules[0];
    assert_eq!(ens5.traits.device.as_ref().map(|d| d.as_str()), Some("ens5"));
}

#[test]
fn profiles_with_rules_alone_are_judged_as_those_with_routes() {
    let mut manual = with_nm_rules(
        connection("manual", "ens6", &[]),
        &["priority 7 from 10.7.0.0/16 table 7"],
    );
    manual.autoconnect = false;
    let view = NmView {
        devices: vec![device("ens6", 30, true, None)],
        profiles: vec![
            profile(
                with_nm_rules(
                    connection("down", "ens6", &[]),
                    &["priority 6 from 10.6.0.0/16 table 6"],
                ),
                0,
            ),
            profile(manual, 0),
            profile(connection("nothing", "ens6", &[]), 0),
        ],
        problems: Vec::new(),
    };
    let nm = expected(&view);
    assert_eq!(rule_texts(&nm.rules), ["6: from 10.6.0.0/16 table 6"]);
    assert!(nm.routes.is_empty());
    assert_eq!(nm.connections.len(), 1);
    assert_eq!(nm.connections[0].connection, "down");
    let why: Vec<&str> = nm
        .not_expected
        .iter()
        .map(|n| n.connection.split(' ').nth(1).unwrap_or_default())
        .collect();
    assert_eq!(
        why,
        ["\"manual\""],
        "a profile that declares nothing is not listed"
    );
}

/// ens5's keyfile with a route in table 200 and the rule that selects it, as
/// the MachineConfig writes it.
const RULE_KEYFILE: &str = "[connection]\nid=ens5\ntype=ethernet\ninterface-name=ens5\n\
    [ipv4]\nmethod=manual\naddress1=172.18.0.2/16\nroute1=10.43.0.0/16,172.18.0.1\n\
    route1_options=table=200\nrouting-rule1=priority 150 from 172.18.0.0/16 table 200\n";

fn keyfile_intent() -> Intent {
    let path = "/etc/NetworkManager/system-connections/ens5.nmconnection";
    intent::file_intent_for_tests(path, 0o600, RULE_KEYFILE)
}

#[test]
fn a_rule_both_declare_is_one_rule_with_both_sources() {
    let mc = keyfile_intent();
    assert_eq!(mc.rules.len(), 1, "{:?}", mc.diagnostics);
    let kf = &mc.rules[0];
    assert_eq!(
        kf.traits.device.as_ref().map(|d| d.as_str()),
        Some("ens5"),
        "the keyfile's interface-name"
    );
    assert_eq!(kf.sources, std::slice::from_ref(&kf.source));
    let applied = with_nm_rules(
        connection("ens5", "ens5", &[]),
        &[
            "priority 150 from 172.18.0.0/16 table 200",
            "priority 151 fwmark 0x1 table 201",
        ],
    );
    let view = NmView {
        devices: vec![device("ens5", 100, true, Some(applied.clone()))],
        profiles: vec![profile(applied, 0)],
        problems: Vec::new(),
    };
    let merged = merge(mc.clone(), expected(&view));
    assert_eq!(
        rule_texts(&merged.rules),
        ["150: from 172.18.0.0/16 table 200", "151: fwmark 0x1 table 201"]
    );
    let both = &merged.rules[0];
    let kinds: Vec<SourceKind> = both.sources.iter().map(|s| s.kind).collect();
    assert_eq!(kinds, [SourceKind::Keyfile, SourceKind::NetworkManager]);
    assert_eq!(both.source, both.sources[0], "source stays the first");
    assert_eq!(
        both.traits.connection.as_deref(),
        Some("uuid-ens5"),
        "NetworkManager's profile joins"
    );
    assert_eq!(
        both.traits.keyfile.as_deref(),
        Some("/etc/NetworkManager/system-connections/ens5.nmconnection"),
        "what the MachineConfig knows stays"
    );
    assert_eq!(merged.rules[1].sources.len(), 1);
    let nm_units: Vec<&str> = merged.units.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(
        nm_units,
        ["NetworkManager.service"],
        "NetworkManager keeps the rules"
    );
    let alone = merge(Intent::default(), expected(&view));
    assert_eq!(alone.rules.len(), 2);
    assert_eq!(alone.units.len(), 1, "rules alone need NetworkManager running");
}
