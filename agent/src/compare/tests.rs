//! The compare stage on hand-built observations of the seed's intent.

use super::*;
use crate::intent::{self, Options};
use crate::model::{NextHop, ServiceStatus, UnitStatus};

const SEED: &[u8] = include_bytes!("../../../examples/seed-machineconfig.yaml");
const ENS5: u32 = 2;

fn seed() -> Intent {
    intent::from_bytes(SEED, &Options::default()).expect("seed parses")
}

/// A kernel route to `dest` in main, via `gw` out of `ifindex`.
pub(super) fn route(dest: &str, gw: Option<&str>, ifindex: u32, metric: Option<u32>) -> ObservedRoute {
    kernel_route(254, dest, gw, ifindex, metric)
}

/// A kernel unicast route of one hop (protocol static), the compare tests' one
/// builder of them.
pub(super) fn kernel_route(
    table: u32,
    dest: &str,
    gw: Option<&str>,
    ifindex: u32,
    metric: Option<u32>,
) -> ObservedRoute {
    let hop = NextHop {
        gateway: gw.map(|g| g.parse().expect("ip")),
        ifindex: Some(ifindex),
    };
    ObservedRoute::unicast(
        RouteKey::new(table, dest.parse().expect("net")),
        vec![hop],
        metric,
        Protocol(4),
    )
}

fn link(index: u32, name: &str, up: bool, configured: Option<u64>) -> Link {
    let mut l = Link::new(index, IfName::new(name).expect("name"), up, up);
    l.last_configured_usec = configured;
    l
}

fn status(name: &str, active: &str, result: &str, code: i32, st: i32, exit_usec: u64) -> UnitStatus {
    UnitStatus::oneshot_for_tests(name, active, result, (code, st), exit_usec)
}

fn nm(active: &str) -> UnitStatus {
    status("NetworkManager.service", active, "success", 0, 0, 0)
}

fn unit_ok(exit_usec: u64) -> UnitStatus {
    status("nmcli-dev-modify.service", "inactive", "success", 1, 0, exit_usec)
}

fn up() -> Sources {
    Sources {
        machineconfig: SourceState::Up,
        netlink: SourceState::Up,
        systemd: SourceState::Up,
        networkmanager: SourceState::Skipped,
    }
}

fn run(routes: Vec<ObservedRoute>, links: Vec<Link>, units: UnitsSeen) -> DriftReport {
    run_on(&seed(), routes, links, units)
}

/// `intent` against these routes, links and units (every other source up).
fn run_on(intent: &Intent, routes: Vec<ObservedRoute>, links: Vec<Link>, units: UnitsSeen) -> DriftReport {
    let index = RouteIndex::from_routes(routes);
    compare(
        intent,
        Observed {
            routes: &index,
            rules: &[],
            links: Some(&links),
            units: &units,
            boot: None,
            networkmanager: None,
        },
        up(),
    )
}

fn codes(report: &DriftReport) -> Vec<&'static str> {
    report.routes[0].reasons.0.iter().map(|r| r.kind.code()).collect()
}

fn texts(report: &DriftReport) -> Vec<String> {
    report.routes[0]
        .reasons
        .0
        .iter()
        .map(|r| r.text.clone())
        .collect()
}

fn healthy_units() -> UnitsSeen {
    UnitsSeen::Seen(vec![unit_ok(10_000_000), nm("active")])
}

#[test]
fn present_route_and_ok_units_is_no_drift() {
    let r = run(
        vec![route("192.168.1.0/24", Some("172.18.0.1"), ENS5, Some(100))],
        vec![link(ENS5, "ens5", true, Some(1))],
        healthy_units(),
    );
    assert_eq!(r.routes[0].state, RouteState::Present);
    assert!(codes(&r).is_empty());
    assert_eq!(r.routes[0].observed[0].device.as_deref(), Some("ens5"));
    assert!(r.units.iter().all(|u| u.state == UnitState::Ok));
    assert!(!r.drift);
}

#[test]
fn boot_race_unit_failed_with_exit_status() {
    let units = UnitsSeen::Seen(vec![
        status("nmcli-dev-modify.service", "failed", "exit-code", 1, 8, 5),
        nm("active"),
    ]);
    let r = run(vec![], vec![link(ENS5, "ens5", true, Some(1))], units);
    assert_eq!(r.routes[0].state, RouteState::Missing);
    assert_eq!(texts(&r), ["unit nmcli-dev-modify.service failed: exit status 8"]);
    assert_eq!(r.units[0].state, UnitState::Failed);
    assert_eq!(r.units[0].exec_main_status, Some(8));
    assert!(r.drift);
}

#[test]
fn networkmanager_stopped_is_named_too() {
    let units = UnitsSeen::Seen(vec![
        status("nmcli-dev-modify.service", "failed", "exit-code", 1, 8, 5),
        nm("inactive"),
    ]);
    let r = run(vec![], vec![link(ENS5, "ens5", true, Some(1))], units);
    assert_eq!(codes(&r), ["unit-failed", "networkmanager-inactive"]);
}

#[test]
fn reactivated_device_loses_non_persistent_route() {
    let r = run(
        vec![],
        vec![link(ENS5, "ens5", true, Some(50_000_000))],
        healthy_units(),
    );
    assert_eq!(codes(&r), ["non-persistent"]);
    assert!(
        texts(&r)[0].contains("re-activated 40 s after the unit ran"),
        "{:?}",
        texts(&r)
    );
}

#[test]
fn deleted_after_the_unit_ran_is_unexplained() {
    let r = run(
        vec![],
        vec![link(ENS5, "ens5", true, Some(1_000_000))],
        healthy_units(),
    );
    assert_eq!(codes(&r), ["unexplained"]);
    assert!(texts(&r)[0].contains("ip route del"));
}

#[test]
fn device_down_or_missing() {
    let r = run(vec![], vec![link(ENS5, "ens5", false, Some(1))], healthy_units());
    assert_eq!(codes(&r), ["device-down"]);
    let r = run(vec![], vec![link(3, "eth0", true, None)], healthy_units());
    assert_eq!(codes(&r), ["device-missing"]);
}

#[test]
fn other_gateway_is_mismatched() {
    let r = run(
        vec![route("192.168.1.0/24", Some("172.18.0.9"), ENS5, None)],
        vec![link(ENS5, "ens5", true, Some(1))],
        healthy_units(),
    );
    assert_eq!(r.routes[0].state, RouteState::Mismatched);
    assert_eq!(codes(&r), ["different-route"]);
    assert!(texts(&r)[0].contains("via 172.18.0.9 dev ens5 metric 0"));
}

#[test]
fn device_moved_to_br_ex_is_present_and_shown() {
    // OVN-Kubernetes: ens5 became a port of ovs-system, br-ex holds its address.
    let mut ens5 = link(ENS5, "ens5", true, Some(1));
    ens5.master = Some(6);
    let mut ovs = link(6, "ovs-system", false, None);
    ovs.kind = Some("openvswitch".into());
    let mut br_ex = link(7, "br-ex", true, Some(1));
    br_ex.kind = Some("openvswitch".into());
    br_ex.addresses = vec!["172.18.0.2/16".parse().expect("net")];
    let moved = || vec![route("192.168.1.0/24", Some("172.18.0.1"), 7, Some(48))];
    let r = run(moved(), vec![ens5, ovs, br_ex.clone()], healthy_units());
    assert_eq!(r.routes[0].state, RouteState::Present);
    assert_eq!(r.routes[0].observed[0].device.as_deref(), Some("br-ex"));
    let r = run(
        moved(),
        vec![link(ENS5, "ens5", true, Some(1)), br_ex],
        healthy_units(),
    );
    assert_eq!(
        r.routes[0].state,
        RouteState::Mismatched,
        "ens5 is no port: br-ex is another device"
    );
}

#[test]
fn any_next_hop_of_multipath_matches() {
    let mut mp = route("192.168.1.0/24", Some("10.0.0.1"), 7, None);
    mp.next_hops.push(NextHop {
        gateway: Some("172.18.0.1".parse().expect("ip")),
        ifindex: Some(ENS5),
    });
    let r = run(vec![mp], vec![link(ENS5, "ens5", true, Some(1))], healthy_units());
    assert_eq!(r.routes[0].state, RouteState::Present);
    assert_eq!(r.routes[0].observed.len(), 2);
}

#[test]
fn other_table_does_not_count() {
    let mut other = route("192.168.1.0/24", Some("172.18.0.1"), ENS5, None);
    other.key.table = 200;
    let r = run(
        vec![other],
        vec![link(ENS5, "ens5", true, Some(1))],
        healthy_units(),
    );
    assert_eq!(r.routes[0].state, RouteState::Missing);
}

#[test]
fn metric_is_compared_when_declared() {
    let mut intent = seed();
    intent.routes[0].metric = Some(100);
    let index = RouteIndex::from_routes(vec![route("192.168.1.0/24", Some("172.18.0.1"), ENS5, None)]);
    let units = healthy_units();
    let links = vec![link(ENS5, "ens5", true, Some(1))];
    let r = compare(
        &intent,
        Observed {
            routes: &index,
            rules: &[],
            links: Some(&links),
            units: &units,
            boot: None,
            networkmanager: None,
        },
        up(),
    );
    assert_eq!(r.routes[0].state, RouteState::Mismatched);
}

#[test]
fn no_dbus_means_unknown_units_and_routes_still_checked() {
    let r = run(
        vec![],
        vec![link(ENS5, "ens5", true, Some(1))],
        UnitsSeen::Unavailable("no socket".into()),
    );
    assert_eq!(r.routes[0].state, RouteState::Missing);
    assert!(codes(&r).contains(&"unit-unknown"));
    assert!(r.units.iter().all(|u| u.state == UnitState::Unknown));
    assert!(r.drift);
}

#[test]
fn refused_keyfile_is_a_reason() {
    let mut intent = seed();
    intent.routes[0].source.unit = None;
    intent.routes[0].traits.keyfile = Some("/etc/NetworkManager/system-connections/x.nmconnection".into());
    intent.routes[0].traits.refused_mode = Some(0o644);
    let index = RouteIndex::default();
    let units = healthy_units();
    let links = vec![link(ENS5, "ens5", true, Some(1))];
    let r = compare(
        &intent,
        Observed {
            routes: &index,
            rules: &[],
            links: Some(&links),
            units: &units,
            boot: None,
            networkmanager: None,
        },
        up(),
    );
    assert_eq!(codes(&r), ["keyfile-mode"]);
    assert!(texts(&r)[0].contains("mode 0644"));
}

#[test]
fn json_has_the_contract_fields() {
    let r = run(vec![], vec![link(ENS5, "ens5", true, Some(1))], healthy_units());
    let v = serde_json::to_value(&r).expect("serializes");
    let route = &v["routes"][0];
    for field in [
        "family",
        "destination",
        "gateway",
        "device",
        "table",
        "metric",
        "source",
        "notes",
        "state",
        "observed",
        "reasons",
    ] {
        assert!(route.get(field).is_some(), "missing {field}: {route}");
    }
    assert_eq!(route["state"], "missing");
    assert_eq!(v["drift"], true);
    assert_eq!(v["sources"]["systemd"], "up");
    let unit = &v["units"][0];
    for field in [
        "name",
        "state",
        "active_state",
        "sub_state",
        "result",
        "exec_main_status",
        "unit_file_state",
    ] {
        assert!(unit.get(field).is_some(), "missing {field}: {unit}");
    }
}

#[test]
fn reactivation_within_the_clock_margin_is_not_claimed() {
    let r = run(
        vec![],
        vec![link(ENS5, "ens5", true, Some(10_500_000))],
        healthy_units(),
    );
    assert_eq!(codes(&r), ["non-persistent"]);
    assert!(!texts(&r)[0].contains("s after the unit ran"), "{:?}", texts(&r));
}

mod lifecycle;

/// A route a unit declares persistently (`nmcli connection modify`), missing
/// while the unit succeeded: no cause is found, and the reason says what was
/// checked (not that the route was installed: it may never have been).
#[test]
fn unexplained_says_what_was_checked_not_that_it_was_installed() {
    let unit = "[Service]\nType=oneshot\nExecStart=/usr/bin/nmcli connection modify uplink +ipv4.routes \"192.168.1.0/24 172.18.0.1\"\n";
    let mc = serde_json::json!({"kind": "MachineConfig", "metadata": {"name": "x"},
        "spec": {"config": {"ignition": {"version": "3.2.0"},
            "systemd": {"units": [{"name": "nmcli-dev-modify.service", "enabled": true, "contents": unit}]}}}});
    let intent = intent::from_bytes(mc.to_string().as_bytes(), &Options::default()).expect("parses");
    let r = run_on(
        &intent,
        vec![],
        vec![link(ENS5, "ens5", true, Some(1))],
        healthy_units(),
    );
    assert_eq!(codes(&r), ["unexplained"]);
    let text = &texts(&r)[0];
    assert!(text.starts_with("no cause was found (checked: unit nmcli-dev-modify.service ran and succeeded, no other route to 192.168.1.0/24 in table 254)"), "{text}");
    assert!(text.contains("may never have been added"), "{text}");
    assert!(!text.contains("after it was installed"), "{text}");
}

#[test]
fn a_multipath_route_without_its_declared_hops_names_them() {
    let mut intent = seed();
    let r0 = &mut intent.routes[0];
    let ens6 = IfName::new("ens6").expect("name");
    r0.next_hops = vec![
        crate::model::ExpectedHop {
            gateway: r0.gateway,
            device: r0.device.clone(),
            weight: None,
        },
        crate::model::ExpectedHop {
            gateway: Some("172.19.0.1".parse().expect("ip")),
            device: Some(ens6),
            weight: Some(2),
        },
    ];
    let (dest, gw, metric) = (r0.destination.to_string(), r0.gateway, r0.metric);
    let links = vec![link(ENS5, "ens5", true, Some(1)), link(3, "ens6", true, Some(1))];
    let kernel = |hops: &[(Option<IpAddr>, u32)]| {
        let mut r = route(&dest, None, ENS5, metric);
        r.next_hops = hops
            .iter()
            .map(|(gateway, i)| NextHop {
                gateway: *gateway,
                ifindex: Some(*i),
            })
            .collect();
        r
    };
    let other: Option<IpAddr> = Some("172.19.0.1".parse().expect("ip"));
    let both = run_on(
        &intent,
        vec![kernel(&[(other, 3), (gw, ENS5)])],
        links.clone(),
        healthy_units(),
    );
    assert_eq!(both.routes[0].state, RouteState::Present);
    let one = run_on(
        &intent,
        vec![kernel(&[(gw, ENS5)])],
        links.clone(),
        healthy_units(),
    );
    assert_eq!(one.routes[0].state, RouteState::Mismatched);
    assert_eq!(codes(&one), ["different-route"]);
    assert!(
        texts(&one)[0].ends_with("not with the declared next hops: missing via 172.19.0.1 dev ens6"),
        "{:?}",
        texts(&one)
    );
    let extra: Option<IpAddr> = Some("172.19.0.9".parse().expect("ip"));
    let three = run_on(
        &intent,
        vec![kernel(&[(gw, ENS5), (other, 3), (extra, 3)])],
        links,
        healthy_units(),
    );
    assert_eq!(codes(&three), ["different-route"]);
    assert!(
        texts(&three)[0].ends_with("not declared via 172.19.0.9 dev ens6"),
        "{:?}",
        texts(&three)
    );
}
