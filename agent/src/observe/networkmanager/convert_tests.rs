//! The conversion of NetworkManager replies, on replies recorded from NetworkManager
//! 1.42 (`tests/fixtures/networkmanager/capture.py` says what each holds), and on
//! recorded replies spoiled on purpose.

use std::collections::HashMap;

use zbus::{OwnedVariant, Str, Variant};

use super::convert::{connection_from_settings, device_from_properties, profile_from_reply};
use super::fixtures::{applied, properties, settings};
use crate::model::{DeviceState, Family, NmConnection, NmRoute, NmRouteType};

fn route(c: &NmConnection, family: Family, dest: &str) -> NmRoute {
    c.ip(family)
        .routes
        .iter()
        .find(|r| r.destination.to_string() == dest)
        .unwrap_or_else(|| panic!("no route to {dest} in {:?}", c.ip(family).routes))
        .clone()
}

pub(super) fn rw_all() -> NmConnection {
    connection_from_settings("test", &applied("device-ens6.applied")).expect("converts")
}

#[test]
fn applied_connection_ipv4_routes() {
    let c = rw_all();
    assert_eq!((c.id.as_str(), c.kind.as_str()), ("rw-all", "802-3-ethernet"));
    assert_eq!(c.interface_name.as_ref().map(|n| n.as_str()), Some("ens6"));
    assert!(c.autoconnect, "absent autoconnect means on");
    assert_eq!(c.ipv4.method.as_deref(), Some("manual"));
    assert_eq!((c.ipv4.route_table, c.ipv4.route_metric), (0, 150));
    assert_eq!(c.ipv4.routes.len(), 5);
    let r = route(&c, Family::Ipv4, "10.10.0.0/16");
    assert_eq!(r.next_hop, Some("172.19.0.1".parse().expect("ip")));
    assert_eq!((r.metric, r.table, r.onlink), (Some(77), Some(200), false));
    let no_hop = route(&c, Family::Ipv4, "10.11.0.0/16");
    assert_eq!((no_hop.next_hop, no_hop.metric, no_hop.table), (None, None, None));
    assert_eq!(no_hop.kind, NmRouteType::Unicast);
    let blackhole = route(&c, Family::Ipv4, "10.12.0.0/16");
    assert_eq!(blackhole.kind, NmRouteType::Other("blackhole".into()));
    assert_eq!(blackhole.table, Some(201));
    assert!(route(&c, Family::Ipv4, "10.13.0.0/24").onlink);
    assert_eq!(route(&c, Family::Ipv4, "0.0.0.0/0").table, Some(300));
}

#[test]
fn applied_connection_ipv6_routes() {
    let c = rw_all();
    assert_eq!(
        (c.ipv6.route_table, c.ipv6.route_metric),
        (0, -1),
        "defaults when absent"
    );
    let r = route(&c, Family::Ipv6, "fd00:99::/64");
    assert_eq!(
        (r.next_hop, r.metric),
        (Some("fd00:19::1".parse().expect("ip")), None)
    );
    let zero = route(&c, Family::Ipv6, "fd00:98::/64");
    assert_eq!((zero.metric, zero.table), (Some(0), Some(200)));
    let unreachable = route(&c, Family::Ipv6, "fd00:97::/64");
    assert_eq!(
        (unreachable.kind.as_str(), unreachable.next_hop),
        ("unreachable", None)
    );
}

#[test]
fn a_device_modify_is_in_the_applied_connection_only() {
    let applied = connection_from_settings("test", &applied("device-ens5.applied")).expect("converts");
    let profile = connection_from_settings("test", &settings("profile-ens5.settings")).expect("converts");
    assert_eq!(applied.uuid, profile.uuid);
    let dest = |c: &NmConnection| {
        c.ipv4
            .routes
            .iter()
            .map(|r| r.destination.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(dest(&applied), ["192.168.1.0/24"]);
    assert!(dest(&profile).is_empty());
    assert_eq!(applied.ipv6.method.as_deref(), Some("disabled"));
}

#[test]
fn devices_activated_unmanaged_and_external() {
    let ens6 = device_from_properties("ens6", &properties("device-ens6.props")).expect("converts");
    assert_eq!(ens6.device.interface.as_str(), "ens6");
    assert_eq!(ens6.device.state, DeviceState::ACTIVATED);
    assert!(ens6.device.managed);
    assert_eq!(ens6.ip_configs.len(), 2, "{:?}", ens6.ip_configs);
    assert!(ens6
        .ip_configs
        .iter()
        .all(|p| p.contains("/IP4Config/") || p.contains("/IP6Config/")));
    let peer = device_from_properties("ens6p", &properties("device-ens6p.props")).expect("converts");
    assert_eq!(
        (peer.device.state.name(), peer.device.managed),
        ("unmanaged", false)
    );
    let lo = device_from_properties("lo", &properties("device-lo.props")).expect("converts");
    assert_eq!(lo.device.state, DeviceState::ACTIVATED);
    let lo_applied = connection_from_settings("lo", &applied("device-lo.applied")).expect("converts");
    assert_eq!(
        (lo_applied.kind.as_str(), lo_applied.ipv4.routes.len()),
        ("loopback", 0)
    );
}

#[test]
fn profiles_file_flags_autoconnect_and_binding() {
    let p = |name: &str| {
        profile_from_reply(
            name,
            &settings(&format!("profile-{name}.settings")),
            &properties(&format!("profile-{name}.props")),
        )
        .expect("converts")
    };
    let manual = p("rw-manual");
    assert!(!manual.settings.autoconnect);
    assert_eq!(
        route(&manual.settings, Family::Ipv4, "10.20.0.0/16").next_hop,
        Some("172.19.0.1".parse().expect("ip"))
    );
    let nmstate = p("rw-nmstate");
    assert_eq!(
        nmstate.filename.as_deref(),
        Some("/etc/NetworkManager/system-connections/rw-nmstate.nmconnection")
    );
    assert_eq!(
        nmstate.settings.interface_name.as_ref().map(|n| n.as_str()),
        Some("ens9")
    );
    assert!(!nmstate.flags.unsaved() && !nmstate.flags.nm_generated());
    let tables: Vec<_> = nmstate
        .settings
        .ipv4
        .routes
        .iter()
        .map(|r| (r.table, r.metric))
        .collect();
    assert_eq!(tables, [(Some(254), Some(150)), (Some(1000), Some(150))]);
    assert!(
        nmstate.origin().starts_with("connection \"rw-nmstate\" ("),
        "{}",
        nmstate.origin()
    );
    assert!(nmstate
        .origin()
        .ends_with(", /etc/NetworkManager/system-connections/rw-nmstate.nmconnection)"));
    let ens5 = p("ens5");
    assert_eq!(
        ens5.filename.as_deref(),
        Some("/etc/NetworkManager/system-connections/ens5.nmconnection")
    );
    let lo = p("lo");
    assert_eq!(
        lo.filename.as_deref(),
        Some("/run/NetworkManager/system-connections/lo.nmconnection")
    );
    assert_eq!(lo.settings.kind, "loopback");
}

// ---------------------------------------------------------------- spoiled replies

pub(super) fn s(text: &str) -> OwnedVariant {
    OwnedVariant::from(Str::from(text.to_owned()))
}

/// `ipv4.route-data` replaced by one entry.
fn with_route(entry: HashMap<String, OwnedVariant>) -> Result<NmConnection, super::NmError> {
    let mut map = applied("device-ens6.applied");
    let routes: Vec<HashMap<String, OwnedVariant>> = vec![entry];
    let value = OwnedVariant::try_from(Variant::from(routes)).expect("aa{sv}");
    map.get_mut("ipv4")
        .expect("ipv4")
        .insert("route-data".into(), value);
    connection_from_settings("/org/freedesktop/NetworkManager/Devices/4 applied", &map)
}

pub(super) fn entry(fields: &[(&str, OwnedVariant)]) -> HashMap<String, OwnedVariant> {
    fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.try_clone().expect("clone")))
        .collect()
}

#[test]
fn bad_routes_are_refused_naming_the_field() {
    let cases = [
        (
            entry(&[("prefix", OwnedVariant::from(24u32))]),
            "ipv4.route-data[0].dest: is missing",
        ),
        (
            entry(&[("dest", s("10.1.0.0")), ("prefix", OwnedVariant::from(33u32))]),
            "ipv4.route-data[0].prefix: 33 is not a prefix length",
        ),
        (
            entry(&[("dest", s("ten")), ("prefix", OwnedVariant::from(8u32))]),
            "\"ten\" is not an IP address",
        ),
        (
            entry(&[("dest", s("fd00::")), ("prefix", OwnedVariant::from(8u32))]),
            "fd00::/8 is not an ipv4 network",
        ),
        (
            entry(&[
                ("dest", s("10.1.0.0")),
                ("prefix", OwnedVariant::from(16u32)),
                ("next-hop", s("fd00::1")),
            ]),
            "ipv4.route-data[0].next-hop: fd00::1 is not an ipv4 address",
        ),
        (
            entry(&[
                ("dest", s("10.1.0.0")),
                ("prefix", OwnedVariant::from(16u32)),
                ("metric", s("77")),
            ]),
            "ipv4.route-data[0].metric: has unexpected type s",
        ),
    ];
    for (bad, words) in cases {
        let err = with_route(bad).expect_err(words);
        assert_eq!(err.kind(), "reply");
        let text = err.to_string();
        assert!(
            text.starts_with("/org/freedesktop/NetworkManager/Devices/4 applied "),
            "{text}"
        );
        assert!(text.contains(words), "{text} lacks {words}");
    }
}

#[test]
fn bad_settings_and_properties_are_refused() {
    let mut map = settings("profile-rw-all.settings");
    map.get_mut("connection").expect("connection").remove("uuid");
    let err = connection_from_settings("/x", &map).expect_err("no uuid");
    assert_eq!(err.to_string(), "/x connection.uuid: is missing");
    let mut map = settings("profile-rw-all.settings");
    map.get_mut("ipv4")
        .expect("ipv4")
        .insert("route-data".into(), s("10.0.0.0/8"));
    let err = connection_from_settings("/x", &map).expect_err("route-data not aa{sv}");
    assert_eq!(err.to_string(), "/x ipv4.route-data: has unexpected type s");
    let mut props = properties("device-ens6.props");
    props.insert("Interface".into(), s("a/b"));
    let err = device_from_properties("/d", &props).expect_err("bad name");
    assert!(
        err.to_string()
            .starts_with("/d Interface: invalid interface name"),
        "{err}"
    );
    let mut props = properties("device-ens6.props");
    props.remove("Managed");
    assert_eq!(
        device_from_properties("/d", &props)
            .expect_err("no Managed")
            .to_string(),
        "/d Managed: is missing"
    );
}
