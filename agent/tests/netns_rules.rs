//! Policy-routing rules against the real kernel, in namespaces the tests make:
//! `check` on IPv4 and IPv6 rules (fwmark/mask, iif/oif, priority collisions, a
//! rule deleted, a table left unselected), and `serve` following `ip rule del`
//! and `ip rule add` from notifications alone (the periodic re-read is an hour
//! away). Run as root.

mod support;

use std::time::Instant;

use serde_json::Value;
use support::{check_json, ip_machineconfig, Agent, NetNs, TempDir};

fn find<'a>(report: &'a Value, section: &str, what: impl Fn(&Value) -> bool) -> &'a Value {
    report[section]
        .as_array()
        .and_then(|items| items.iter().find(|v| what(v)))
        .unwrap_or_else(|| panic!("not in {section}: {report:#}"))
}

/// The verdict on the expected rule of `family` at `priority` selecting `selector`.
fn rule<'a>(report: &'a Value, family: &str, priority: u64, selector: &str) -> &'a Value {
    find(report, "rules", |r| {
        r["family"] == family && r["priority"] == priority && r["selector"] == selector
    })
}

fn route<'a>(report: &'a Value, destination: &str) -> &'a Value {
    find(report, "routes", |r| r["destination"] == destination)
}

fn codes(verdict: &Value) -> Vec<&str> {
    verdict["reason_codes"]
        .as_array()
        .map(|c| c.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

const DECLARED: [&str; 11] = [
    "rule add pref 100 from 10.0.0.0/24 fwmark 0x30/0x10 table 200",
    "rule add pref 110 iif ens5 oif ens6 table 201",
    "-6 rule add pref 100 from fd00:1::/64 table 200",
    "rule add pref 120 from 10.2.0.0/24 table 202",
    "rule add pref 130 from 10.3.0.0/24 table 203",
    "rule add pref 130 from 10.4.0.0/24 table 204",
    "rule add pref 150 fwmark 0x30/0x10 table 206",
    "route add 10.30.0.0/24 via 172.18.0.1 dev ens5 table 200",
    "route add 10.31.0.0/24 via 172.18.0.1 dev ens5 table 210",
    "-6 route add fd00:30::/64 via fd00::1 dev ens5 table 200",
    "-6 route add fd00:31::/64 via fd00::1 dev ens5 table 201",
];

fn node() -> NetNs {
    let ns = NetNs::new();
    ns.veth("ens6", "gw1", &["172.19.0.2/16"]);
    ns.ip("-6 addr add fd00::2/64 dev ens5 nodad");
    // Every declared rule but 120 and 150 as declared...
    for line in DECLARED[..6].iter().filter(|l| !l.contains("pref 120")) {
        ns.ip(line);
    }
    // ...other rules in their places.
    ns.ip("rule add pref 120 from 10.2.0.0/24 table 300");
    ns.ip("rule add pref 150 fwmark 0x30 table 206"); // another mask
    for line in &DECLARED[7..] {
        ns.ip(line);
    }
    ns
}

#[test]
fn check_judges_rules_of_both_families_and_unselected_tables() {
    let ns = node();
    let mc = ip_machineconfig(&DECLARED);
    let (code, r) = check_json(&ns, &mc);
    assert_eq!(code, Some(1), "{r:#}");
    let masked = rule(&r, "ipv4", 100, "from 10.0.0.0/24 fwmark 0x30/0x10");
    assert_eq!(masked["state"], "present", "{masked:#}");
    assert_eq!(masked["observed"][0]["table"], 200);
    assert_eq!(rule(&r, "ipv4", 110, "iif ens5 oif ens6")["state"], "present");
    assert_eq!(rule(&r, "ipv6", 100, "from fd00:1::/64")["state"], "present");
    let collision = rule(&r, "ipv4", 120, "from 10.2.0.0/24");
    assert_eq!(collision["state"], "mismatched", "{collision:#}");
    assert_eq!(collision["observed"][0]["table"], 300);
    assert_eq!(codes(collision)[0], "different-rule");
    for selector in ["from 10.3.0.0/24", "from 10.4.0.0/24"] {
        assert_eq!(
            rule(&r, "ipv4", 130, selector)["state"],
            "present",
            "two declarations sharing priority 130"
        );
    }
    let mask = rule(&r, "ipv4", 150, "fwmark 0x30/0x10");
    assert_eq!(mask["state"], "mismatched", "another mask: {mask:#}");
    assert_eq!(mask["observed"][0]["selector"], "fwmark 0x30");
    assert_eq!(route(&r, "10.30.0.0/24")["state"], "present");
    let unselected = route(&r, "10.31.0.0/24");
    assert_eq!(unselected["state"], "unselected", "{unselected:#}");
    assert_eq!(codes(unselected), ["no-rule-selects-table"]);
    assert_eq!(route(&r, "fd00:30::/64")["state"], "present");
    assert_eq!(
        route(&r, "fd00:31::/64")["state"],
        "unselected",
        "the IPv4 rule for table 201 does not select the IPv6 table"
    );

    ns.ip("rule del pref 100 from 10.0.0.0/24 fwmark 0x30/0x10 table 200");
    let (_, r) = check_json(&ns, &mc);
    let deleted = rule(&r, "ipv4", 100, "from 10.0.0.0/24 fwmark 0x30/0x10");
    assert_eq!(deleted["state"], "missing", "{deleted:#}");
    assert_eq!(deleted["observed"], Value::Array(Vec::new()));
    assert_eq!(
        codes(deleted),
        ["non-persistent"],
        "ip rule: nothing adds it again"
    );
    let left = route(&r, "10.30.0.0/24");
    assert_eq!(left["state"], "unselected", "{left:#}");
    assert_eq!(codes(left), ["no-rule-selects-table"]);
    assert_eq!(
        route(&r, "fd00:30::/64")["state"],
        "present",
        "IPv6 still selects its 200"
    );

    ns.ip("rule add pref 100 from 10.0.0.0/24 fwmark 0x30/0x10 table 200");
    ns.ip("rule del pref 120 from 10.2.0.0/24 table 300");
    ns.ip("rule add pref 120 from 10.2.0.0/24 table 202");
    ns.ip("rule del pref 150 fwmark 0x30 table 206");
    ns.ip("rule add pref 150 fwmark 0x30/0x10 table 206");
    ns.ip("rule add pref 160 to 10.31.0.0/24 table 210");
    ns.ip("-6 rule add pref 160 to fd00:31::/64 table 201");
    let (code, r) = check_json(&ns, &mc);
    assert_eq!(code, Some(0), "everything in place: {r:#}");
    assert_eq!(r["drift"], false);
}

/// The seed's route, plus a route in table 200 and the rules that select it.
fn rules_machineconfig() -> String {
    ip_machineconfig(&[
        "route add 10.50.0.0/24 via 172.18.0.1 dev ens5 table 200",
        "rule add pref 150 from 172.18.0.0/16 table 200",
        "-6 route add fd00:50::/64 via fd00::1 dev ens5 table 200",
        "-6 rule add pref 150 from fd00::/64 table 200",
    ])
}

const RULE4: &str = "selector=\"from 172.18.0.0/16\"";
const RULE6: &str = "selector=\"from fd00::/64\"";
const ROUTE4: &str = "destination=\"10.50.0.0/24\"";
const NO_RULE: &str = "reason=\"no-rule-selects-table\"";

#[test]
fn serve_follows_ip_rule_del_and_add_from_notifications() {
    let ns = NetNs::new();
    ns.ip("-6 addr add fd00::2/64 dev ens5 nodad");
    ns.ip("route add 10.50.0.0/24 via 172.18.0.1 dev ens5 table 200");
    ns.ip("rule add pref 150 from 172.18.0.0/16 table 200");
    ns.ip("-6 route add fd00:50::/64 via fd00::1 dev ens5 table 200");
    ns.ip("-6 rule add pref 150 from fd00::/64 table 200");
    let dir = TempDir::new("rules");
    let mc = dir.path.join("mc.json");
    std::fs::write(&mc, rules_machineconfig()).expect("write MachineConfig");
    let agent = Agent::start(&ns, &mc, &["--no-units", "--resync-interval", "1h"]);
    let present = "routewarden_rule_present";
    agent.wait_metric(&ns, present, &[RULE4], Some(1.0));
    agent.wait_metric(&ns, present, &[RULE6], Some(1.0));
    agent.wait_metric(&ns, "routewarden_route_present", &[ROUTE4], Some(1.0));
    agent.wait_metric(&ns, "routewarden_expected_rules", &[], Some(2.0));

    let started = Instant::now();
    ns.ip("rule del pref 150 from 172.18.0.0/16 table 200");
    agent.wait_metric(&ns, present, &[RULE4], Some(0.0));
    let seen_del = started.elapsed();
    let drift = "routewarden_route_drift_reason";
    agent.wait_metric(&ns, drift, &[ROUTE4, NO_RULE], Some(1.0));
    agent.wait_metric(&ns, "routewarden_route_present", &[ROUTE4], Some(0.0));
    agent.wait_metric(&ns, "routewarden_rules", &["state=\"missing\""], Some(1.0));
    agent.wait_metric(&ns, "routewarden_routes", &["state=\"unselected\""], Some(1.0));
    let reason = "routewarden_rule_drift_reason";
    agent.wait_metric(&ns, reason, &[RULE4, "reason=\"non-persistent\""], Some(1.0));
    assert_eq!(
        support::metric_value(&agent.metrics(&ns), present, &[RULE6]),
        Some(1.0),
        "the IPv6 rule is still there"
    );

    let started = Instant::now();
    ns.ip("rule add pref 150 from 172.18.0.0/16 table 200");
    agent.wait_metric(&ns, present, &[RULE4], Some(1.0));
    let seen_add = started.elapsed();
    agent.wait_metric(&ns, "routewarden_route_present", &[ROUTE4], Some(1.0));
    agent.wait_metric(&ns, drift, &[ROUTE4, NO_RULE], None);

    ns.ip("-6 rule del pref 150 from fd00::/64 table 200");
    agent.wait_metric(&ns, present, &[RULE6], Some(0.0));
    agent.wait_metric(&ns, drift, &["destination=\"fd00:50::/64\"", NO_RULE], Some(1.0));
    ns.ip("-6 rule add pref 150 from fd00::/64 table 200");
    agent.wait_metric(&ns, present, &[RULE6], Some(1.0));
    let (status, body) = ns.http_get(agent.port, "/drift").expect("/drift answers");
    let v: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!((status, &v["drift"]), (200, &Value::Bool(false)), "{v:#}");
    let resyncs = support::metric_value(
        &agent.metrics(&ns),
        "routewarden_resyncs_total",
        &["cause=\"periodic\""],
    );
    assert_eq!(resyncs, Some(0.0), "notifications alone, no periodic re-read");
    println!(
        "figure: serve: ip rule del seen on /metrics after {:?}, ip rule add after {:?} (polling /metrics every 20 ms)",
        seen_del, seen_add
    );
}
