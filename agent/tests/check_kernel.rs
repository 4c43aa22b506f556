//! `routewarden check` against the real kernel in a namespace the test makes:
//! present, missing, mismatched, other tables, multipath, IPv6, a route found on
//! another device or on the bridge its device became a port of, link down. Run
//! as root.

mod support;

use support::verdicts::verdict;
use support::NetNs;

use support::{check_json as check, ip_machineconfig as machineconfig};

#[test]
fn states_tables_multipath_ipv6_moved_device() {
    let ns = NetNs::new();
    ns.veth("br-ex", "br-peer", &["10.20.0.2/16"]);
    ns.ip("-6 addr add fd00::2/64 dev ens5 nodad");
    ns.ip("route add 10.1.0.0/24 via 172.18.0.1 dev ens5 metric 100");
    ns.ip("route add 10.2.0.0/24 via 172.18.0.9 dev ens5");
    ns.ip("route add 10.3.0.0/24 via 172.18.0.1 dev ens5 table 200");
    ns.ip("route add 10.4.0.0/24 via 172.18.0.1 dev ens5 table 1000");
    // Routes in tables other than main carry traffic only while a rule selects
    // their table (any rule: these are not in the intent).
    ns.ip("rule add from 10.0.0.0/8 lookup 200 pref 1000");
    ns.ip("rule add fwmark 0x1 lookup 1000 pref 1001");
    ns.ip("route add 10.5.0.0/24 nexthop via 10.20.0.1 dev br-ex nexthop via 172.18.0.1 dev ens5");
    ns.ip("-6 route add fd00:1::/64 via fd00::1 dev ens5 metric 512");
    ns.ip("route add 10.7.0.0/24 via 10.20.0.1 dev br-ex");
    ns.ip("route add blackhole 10.8.0.0/24");
    let mc = machineconfig(&[
        "route add 10.1.0.0/24 via 172.18.0.1 dev ens5 metric 100",
        "route add 10.2.0.0/24 via 172.18.0.1 dev ens5",
        "route add 10.3.0.0/24 via 172.18.0.1 dev ens5 table 200",
        "route add 10.4.0.0/24 via 172.18.0.1 dev ens5 table 1000",
        "route add 10.4.0.0/24 via 172.18.0.1 dev ens5",
        "route add 10.5.0.0/24 via 172.18.0.1 dev ens5",
        "-6 route add fd00:1::/64 via fd00::1 dev ens5 metric 512",
        "route add 10.7.0.0/24 via 10.20.0.1 dev ens5",
        "route add 10.8.0.0/24 dev ens5",
        "route add 10.1.0.0/24 via 172.18.0.1 dev ens5 metric 50 table 300",
    ]);
    let (code, r) = check(&ns, &mc);
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(verdict(&r, "10.1.0.0/24", 254)["state"], "present");
    assert_eq!(verdict(&r, "10.1.0.0/24", 254)["observed"][0]["metric"], 100);
    let other_gw = verdict(&r, "10.2.0.0/24", 254);
    assert_eq!(other_gw["state"], "mismatched");
    assert_eq!(other_gw["reason_codes"][0], "different-route");
    assert_eq!(other_gw["observed"][0]["gateway"], "172.18.0.9");
    assert_eq!(verdict(&r, "10.3.0.0/24", 200)["state"], "present");
    assert_eq!(
        verdict(&r, "10.4.0.0/24", 1000)["state"],
        "present",
        "table id above 255 from RTA_TABLE"
    );
    assert_eq!(
        verdict(&r, "10.4.0.0/24", 254)["state"],
        "missing",
        "the same route in another table does not count"
    );
    let mp = verdict(&r, "10.5.0.0/24", 254);
    assert_eq!(mp["state"], "present", "any next hop of a multipath route");
    assert_eq!(mp["observed"].as_array().map(Vec::len), Some(2));
    let v6 = verdict(&r, "fd00:1::/64", 254);
    assert_eq!(v6["state"], "present");
    assert_eq!(v6["family"], "ipv6");
    let elsewhere = verdict(&r, "10.7.0.0/24", 254);
    assert_eq!(
        elsewhere["state"], "mismatched",
        "another device is another route: ens5 is no port of br-ex"
    );
    assert_eq!(elsewhere["observed"][0]["device"], "br-ex");
    let black = verdict(&r, "10.8.0.0/24", 254);
    assert_eq!(
        black["state"], "mismatched",
        "a blackhole is not the unicast route"
    );
    assert_eq!(black["observed"][0]["type"], "blackhole");
    assert_eq!(verdict(&r, "10.1.0.0/24", 300)["state"], "missing");
}

#[test]
fn a_port_s_route_on_its_bridge_is_present() {
    let ns = NetNs::new();
    ns.ip("link add br0 type bridge");
    ns.ip("link set br0 up");
    ns.veth("ens7", "ens7p", &[]);
    ns.ip("link set ens7 master br0");
    ns.ip("addr add 10.30.0.2/16 dev br0");
    ns.ip("route add 10.31.0.0/24 via 10.30.0.1 dev br0");
    ns.ip("route add 10.32.0.0/24 via 172.18.0.1 dev ens5");
    let mc = machineconfig(&[
        "route add 10.31.0.0/24 via 10.30.0.1 dev ens7",
        "route add 10.32.0.0/24 via 172.18.0.1 dev ens6",
    ]);
    let (_, r) = check(&ns, &mc);
    let bridged = verdict(&r, "10.31.0.0/24", 254);
    assert_eq!(bridged["state"], "present", "{bridged}");
    assert_eq!(bridged["observed"][0]["device"], "br0");
    let other = verdict(&r, "10.32.0.0/24", 254);
    assert_eq!(other["state"], "mismatched", "{other}");
    assert!(
        other["reason_codes"]
            .as_array()
            .is_some_and(|c| c.contains(&"device-missing".into())),
        "{other}"
    );
}

#[test]
fn routes_that_do_not_carry_the_traffic_and_ipv6_metric_zero() {
    let ns = NetNs::new();
    ns.ip("-6 addr add fd00::2/64 dev ens5 nodad");
    ns.ip("route add 10.40.0.0/24 via 172.18.0.1 dev ens5 metric 100");
    ns.ip("route add blackhole 10.40.0.0/24 metric 10");
    ns.ip("route add 10.41.0.0/24 via 172.18.0.1 dev ens5 tos 0x10");
    ns.ip("-6 route add 2001:db8:42::/64 from 2001:db8:9::/64 via fd00::1 dev ens5");
    ns.ip("-6 route add 2001:db8:43::/64 via fd00::1 dev ens5 metric 0");
    ns.ip("route add 10.44.0.0/24 via 172.18.0.1 dev ens5 metric 100");
    ns.ip("route add unreachable 10.44.0.0/24 metric 200");
    let mc = machineconfig(&[
        "route add 10.40.0.0/24 via 172.18.0.1 dev ens5 metric 100",
        "route add 10.41.0.0/24 via 172.18.0.1 dev ens5",
        "-6 route add 2001:db8:42::/64 via fd00::1 dev ens5",
        "-6 route add 2001:db8:43::/64 via fd00::1 dev ens5 metric 0",
        "route add 10.44.0.0/24 via 172.18.0.1 dev ens5 metric 100",
    ]);
    let (_, r) = check(&ns, &mc);
    let shadowed = verdict(&r, "10.40.0.0/24", 254);
    assert_eq!(
        shadowed["state"], "mismatched",
        "a blackhole with a lower metric: {shadowed}"
    );
    assert!(
        shadowed["reasons"][0]
            .as_str()
            .is_some_and(|w| w.contains("blackhole") && w.contains("metric 10")),
        "the reason names the blackhole: {shadowed}"
    );
    assert_eq!(
        verdict(&r, "10.41.0.0/24", 254)["state"],
        "mismatched",
        "a TOS route is another route"
    );
    assert_eq!(
        verdict(&r, "2001:db8:42::/64", 254)["state"],
        "mismatched",
        "a route from a source prefix is another route"
    );
    let zero = verdict(&r, "2001:db8:43::/64", 254);
    assert_eq!(zero["state"], "present", "IPv6 metric 0 is 1024: {zero}");
    assert_eq!(zero["metric"], 1024);
    assert_eq!(
        verdict(&r, "10.44.0.0/24", 254)["state"],
        "present",
        "an unreachable route with a higher metric takes nothing"
    );
}

#[test]
fn link_down_and_missing_device() {
    let ns = NetNs::new();
    ns.ip("route add 10.1.0.0/24 via 172.18.0.1 dev ens5");
    let mc = machineconfig(&[
        "route add 10.1.0.0/24 via 172.18.0.1 dev ens5",
        "route add 10.9.0.0/24 dev eth9",
    ]);
    let (_, r) = check(&ns, &mc);
    assert_eq!(verdict(&r, "10.1.0.0/24", 254)["state"], "present");
    assert_eq!(
        verdict(&r, "10.9.0.0/24", 254)["reason_codes"][0],
        "device-missing"
    );
    ns.ip("link set ens5 down");
    let (code, r) = check(&ns, &mc);
    assert_eq!(code, Some(1));
    let down = verdict(&r, "10.1.0.0/24", 254);
    assert_eq!(down["state"], "missing");
    assert_eq!(down["reason_codes"][0], "device-down");
    assert_eq!(down["reasons"][0], "device ens5 is down");
}
