//! The kernel's own semantics, one deterministic case per class of issue 20 that
//! the random walk of `differential.rs` only reaches by chance: an IPv6 gateway
//! on another link and a link renamed under a route, an IPv6 route replaced by
//! one of another type, a next-hop group losing members, a multipath route
//! losing a hop, `prepend` then `replace`. Each step is judged twice, by a fresh `check` and by `serve`'s
//! `/drift` (and `/metrics`), which must agree. `serve` runs with a periodic
//! re-read an hour away, so only its notifications can move it. In network
//! namespaces the tests make; run as root.

mod support;

use std::process::Command;

use serde_json::Value;
use support::verdicts::agreed;
use support::{ip_machineconfig, metric_value, Agent, NetNs, TempDir};

const PRESENT: &str = "routewarden_route_present";
const REASON: &str = "routewarden_route_drift_reason";

/// `serve` on MachineConfig text `mc`, as `check_json` reads it (no units, no
/// NetworkManager), with no periodic re-read during the test.
fn serve(ns: &NetNs, mc: &str) -> (TempDir, Agent) {
    let dir = TempDir::new("semantics");
    let path = dir.path.join("mc.json");
    std::fs::write(&path, mc).expect("write MachineConfig");
    let flags = ["--no-units", "--no-networkmanager", "--resync-interval", "1h"];
    let agent = Agent::start(ns, &path, &flags);
    (dir, agent)
}

/// Only notifications moved the agent: no periodic re-read happened.
fn assert_no_periodic_resync(ns: &NetNs, agent: &Agent) {
    let body = agent.metrics(ns);
    let periodic = metric_value(&body, "routewarden_resyncs_total", &["cause=\"periodic\""]);
    assert_eq!(periodic.unwrap_or(0.0), 0.0, "{body}");
}

/// The verdict on the route to `dest` in table main.
fn verdict<'a>(report: &'a Value, dest: &str) -> &'a Value {
    support::verdicts::verdict(report, dest, 254)
}

/// The `gateway dev device` of each observed hop, sorted.
fn hops(verdict: &Value) -> Vec<String> {
    let mut hops: Vec<String> = verdict["observed"]
        .as_array()
        .map(|o| {
            o.iter()
                .map(|h| {
                    format!(
                        "{} dev {}",
                        h["gateway"].as_str().unwrap_or("-"),
                        h["device"].as_str().unwrap_or("-")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    hops.sort();
    hops
}

fn destination(dest: &str) -> String {
    format!("destination=\"{dest}\"")
}

/// `routewarden_route_present` of `dest` reaches `want`.
fn wait_present(ns: &NetNs, agent: &Agent, dest: &str, want: f64) {
    agent.wait_metric(ns, PRESENT, &[&destination(dest)], Some(want));
}

/// `ip link set OLD name NEW` while the link is up. Kernels that refuse to
/// rename a running link (EBUSY) get it down, renamed and up, and `readd` puts
/// back the route its going down took.
fn rename_running(ns: &NetNs, old: &str, new: &str, readd: &str) {
    let live = Command::new("ip")
        .args(["-n", &ns.name, "link", "set", old, "name", new])
        .status()
        .expect("spawn ip");
    if !live.success() {
        ns.ip(&format!("link set {old} down"));
        ns.ip(&format!("link set {old} name {new}"));
        ns.ip(&format!("link set {new} up"));
        ns.ip(readd);
    }
}

#[test]
fn an_ipv6_gateway_on_another_link_and_a_renamed_link() {
    const OTHER: &str = "2001:db8:10::/64";
    const HERE: &str = "2001:db8:11::/64";
    let ns = NetNs::new();
    ns.veth("ens6", "gw1", &["172.19.0.2/16"]);
    ns.ip("-6 route add 2001:db8:10::/64 via fe80::1 dev ens6");
    ns.ip("-6 route add 2001:db8:11::/64 via fe80::1 dev ens5");
    let mc = ip_machineconfig(&[
        "-6 route add 2001:db8:10::/64 via fe80::1 dev ens5",
        "-6 route add 2001:db8:11::/64 via fe80::1 dev ens5",
    ]);
    let (_dir, agent) = serve(&ns, &mc);
    let r = agreed(&ns, &agent, &mc, "the start");
    let other = verdict(&r, OTHER);
    assert_eq!(
        other["state"], "mismatched",
        "fe80::1 on ens6 is another router than fe80::1 on ens5: {other}"
    );
    assert_eq!(hops(other), ["fe80::1 dev ens6"]);
    assert_eq!(verdict(&r, HERE)["state"], "present");
    wait_present(&ns, &agent, OTHER, 0.0);
    wait_present(&ns, &agent, HERE, 1.0);
    rename_running(
        &ns,
        "ens5",
        "ens9",
        "-6 route replace 2001:db8:11::/64 via fe80::1 dev ens9",
    );
    let r = agreed(&ns, &agent, &mc, "ens5 renamed ens9");
    let renamed = verdict(&r, HERE);
    assert_eq!(renamed["state"], "mismatched", "{renamed}");
    assert_eq!(hops(renamed), ["fe80::1 dev ens9"]);
    assert!(
        renamed["reason_codes"]
            .as_array()
            .is_some_and(|c| c.contains(&"device-missing".into())),
        "{renamed}"
    );
    wait_present(&ns, &agent, HERE, 0.0);
    let missing = [destination(HERE), "reason=\"device-missing\"".to_owned()];
    let needles: Vec<&str> = missing.iter().map(String::as_str).collect();
    agent.wait_metric(&ns, REASON, &needles, Some(1.0));
    assert_no_periodic_resync(&ns, &agent);
}

#[test]
fn an_ipv6_route_replaced_by_one_of_another_type_shows_at_once() {
    const DEST: &str = "2001:db8:20::/64";
    let ns = NetNs::new();
    ns.ip("-6 addr add fd00::2/64 dev ens5 nodad");
    ns.ip("-6 route add 2001:db8:20::/64 via fd00::1 dev ens5");
    let mc = ip_machineconfig(&["-6 route add 2001:db8:20::/64 via fd00::1 dev ens5"]);
    let (_dir, agent) = serve(&ns, &mc);
    assert_eq!(
        verdict(&agreed(&ns, &agent, &mc, "the start"), DEST)["state"],
        "present"
    );
    wait_present(&ns, &agent, DEST, 1.0);
    for kind in ["unreachable", "prohibit", "blackhole"] {
        let step = format!("-6 route replace {kind} {DEST}");
        ns.ip(&step);
        let r = agreed(&ns, &agent, &mc, &step);
        let v = verdict(&r, DEST);
        assert_ne!(v["state"], "present", "{v}");
        assert_eq!(v["observed"].as_array().map(Vec::len), Some(1), "{v}");
        assert_eq!(v["observed"][0]["type"], kind, "{v}");
        wait_present(&ns, &agent, DEST, 0.0);
    }
    ns.ip("-6 route replace 2001:db8:20::/64 via fd00::1 dev ens5");
    let r = agreed(&ns, &agent, &mc, "the unicast route replaced back");
    assert_eq!(verdict(&r, DEST)["state"], "present");
    wait_present(&ns, &agent, DEST, 1.0);
    assert_no_periodic_resync(&ns, &agent);
}

#[test]
fn a_next_hop_group_losing_its_members() {
    const BOTH: &str = "10.60.0.0/24";
    const SECOND: &str = "10.61.0.0/24";
    const OBJECT: &str = "10.62.0.0/24";
    let ns = NetNs::new();
    ns.veth("ens6", "gw1", &["172.19.0.2/16"]);
    ns.ip("nexthop add id 1 via 172.18.0.1 dev ens5");
    ns.ip("nexthop add id 2 via 172.19.0.1 dev ens6");
    ns.ip("nexthop add id 10 group 1/2");
    for dest in [BOTH, SECOND, OBJECT] {
        ns.ip(&format!("route add {dest} nhid 10"));
    }
    let mc = ip_machineconfig(&[
        "route add 10.60.0.0/24 nexthop via 172.18.0.1 dev ens5 nexthop via 172.19.0.1 dev ens6",
        "route add 10.61.0.0/24 via 172.19.0.1 dev ens6",
        "route add 10.62.0.0/24 nhid 10",
    ]);
    let (_dir, agent) = serve(&ns, &mc);
    let r = agreed(&ns, &agent, &mc, "the start");
    for dest in [BOTH, SECOND, OBJECT] {
        let v = verdict(&r, dest);
        assert_eq!(v["state"], "present", "{v}");
        assert_eq!(
            hops(v),
            ["172.18.0.1 dev ens5", "172.19.0.1 dev ens6"],
            "nhid 10 resolved to its group's hops: {v}"
        );
        wait_present(&ns, &agent, dest, 1.0);
    }
    ns.ip("nexthop del id 2");
    let r = agreed(&ns, &agent, &mc, "nexthop del id 2, a member of group 10");
    for dest in [BOTH, OBJECT] {
        assert_eq!(hops(verdict(&r, dest)), ["172.18.0.1 dev ens5"], "{r}");
    }
    let object = verdict(&r, OBJECT);
    assert_eq!(
        object["state"], "present",
        "the group is what was declared: {object}"
    );
    let both = verdict(&r, BOTH);
    assert_eq!(both["state"], "mismatched", "a declared hop left: {both}");
    wait_present(&ns, &agent, BOTH, 0.0);
    let second = verdict(&r, SECOND);
    assert_ne!(second["state"], "present", "its hop left the group: {second}");
    wait_present(&ns, &agent, SECOND, 0.0);
    // The group's last member: the group goes, and its IPv4 routes with it,
    // without an RTM_DELROUTE.
    ns.ip("nexthop del id 1");
    let r = agreed(&ns, &agent, &mc, "nexthop del id 1, the group's last member");
    for dest in [BOTH, SECOND, OBJECT] {
        let v = verdict(&r, dest);
        assert_eq!(v["state"], "missing", "{v}");
        assert_eq!(v["observed"], serde_json::json!([]), "{v}");
        wait_present(&ns, &agent, dest, 0.0);
    }
    assert_no_periodic_resync(&ns, &agent);
}

#[test]
fn prepend_then_replace_replaces_the_first_route_of_the_slot() {
    const DEST: &str = "10.81.0.0/16";
    let ns = NetNs::new();
    let mc = ip_machineconfig(&["route add 10.81.0.0/16 via 172.18.0.1 dev ens5"]);
    let (_dir, agent) = serve(&ns, &mc);
    assert_eq!(
        verdict(&agreed(&ns, &agent, &mc, "the start"), DEST)["state"],
        "missing"
    );
    // Each step, and the gateways the kernel then holds for the destination.
    let steps: [(&str, &[&str]); 5] = [
        ("route add 10.81.0.0/16 via 172.18.0.1 dev ens5", &["172.18.0.1"]),
        (
            "route prepend 10.81.0.0/16 via 172.18.0.9 dev ens5",
            &["172.18.0.1", "172.18.0.9"],
        ),
        // The kernel replaces the first route (.9), not the one added first.
        (
            "route replace 10.81.0.0/16 via 172.18.0.8 dev ens5",
            &["172.18.0.1", "172.18.0.8"],
        ),
        (
            "route replace 10.81.0.0/16 via 172.18.0.7 dev ens5",
            &["172.18.0.1", "172.18.0.7"],
        ),
        ("route del 10.81.0.0/16 via 172.18.0.1", &["172.18.0.7"]),
    ];
    for (step, gateways) in steps {
        ns.ip(step);
        let r = agreed(&ns, &agent, &mc, step);
        let v = verdict(&r, DEST);
        let want: Vec<String> = gateways.iter().map(|g| format!("{g} dev ens5")).collect();
        assert_eq!(hops(v), want, "after {step}: {v}");
        let present = gateways.contains(&"172.18.0.1");
        assert_eq!(v["state"] == "present", present, "after {step}: {v}");
        wait_present(&ns, &agent, DEST, if present { 1.0 } else { 0.0 });
    }
    assert_no_periodic_resync(&ns, &agent);
}

/// A multipath route of each family: where, as declared (and first
/// installed), with its first hop only, and with both hops the other way round.
struct Multipath {
    dest: &'static str,
    declared: &'static str,
    first_only: &'static str,
    swapped: &'static str,
    hops: [&'static str; 2],
}

const MULTIPATH: [Multipath; 2] = [
    Multipath {
        dest: "10.90.0.0/16",
        declared:
            "route add 10.90.0.0/16 nexthop via 172.18.0.1 dev ens5 weight 2 nexthop via 172.19.0.1 dev ens6",
        first_only: "route replace 10.90.0.0/16 via 172.18.0.1 dev ens5",
        swapped: "route replace 10.90.0.0/16 nexthop via 172.19.0.1 dev ens6 nexthop via 172.18.0.1 dev ens5",
        hops: ["172.18.0.1 dev ens5", "172.19.0.1 dev ens6"],
    },
    Multipath {
        dest: "2001:db8:90::/64",
        declared:
            "-6 route add 2001:db8:90::/64 nexthop via fe80::1 dev ens5 weight 2 nexthop via fe80::2 dev ens6",
        first_only: "-6 route replace 2001:db8:90::/64 via fe80::1 dev ens5",
        swapped:
            "-6 route replace 2001:db8:90::/64 nexthop via fe80::2 dev ens6 nexthop via fe80::1 dev ens5",
        hops: ["fe80::1 dev ens5", "fe80::2 dev ens6"],
    },
];

#[test]
fn a_multipath_route_losing_a_hop_is_mismatched() {
    let ns = NetNs::new();
    ns.veth("ens6", "gw1", &["172.19.0.2/16"]);
    let declared: Vec<&str> = MULTIPATH.iter().map(|m| m.declared).collect();
    let mc = ip_machineconfig(&declared);
    declared.iter().for_each(|d| ns.ip(d));
    let (_dir, agent) = serve(&ns, &mc);
    let r = agreed(&ns, &agent, &mc, "the start");
    for m in &MULTIPATH {
        let v = verdict(&r, m.dest);
        assert_eq!(hops(v), m.hops, "{v}");
        assert_eq!(v["state"], "present", "{v}");
        wait_present(&ns, &agent, m.dest, 1.0);
    }
    for m in &MULTIPATH {
        ns.ip(m.first_only);
        let r = agreed(&ns, &agent, &mc, m.first_only);
        let v = verdict(&r, m.dest);
        assert_eq!(hops(v), [m.hops[0]], "{v}");
        assert_eq!(v["state"], "mismatched", "half the paths are gone: {v}");
        assert_eq!(v["reason_codes"], serde_json::json!(["different-route"]), "{v}");
        let why = v["reasons"][0].as_str().unwrap_or_default();
        assert!(why.ends_with(&format!("missing via {}", m.hops[1])), "{v}");
        wait_present(&ns, &agent, m.dest, 0.0);
        let reason = [destination(m.dest), "reason=\"different-route\"".to_owned()];
        let needles: Vec<&str> = reason.iter().map(String::as_str).collect();
        agent.wait_metric(&ns, REASON, &needles, Some(1.0));
    }
    // Both hops again, the other way round: the order is not compared.
    for m in &MULTIPATH {
        ns.ip(m.swapped);
        let r = agreed(&ns, &agent, &mc, m.swapped);
        let v = verdict(&r, m.dest);
        assert_eq!(hops(v), m.hops, "{v}");
        assert_eq!(v["state"], "present", "{v}");
        // The declared hops, in the JSON beside the first one's gateway and device.
        assert_eq!(v["next_hops"][0]["weight"], 2, "{v}");
        assert_eq!(v["next_hops"][1]["device"], "ens6", "{v}");
        wait_present(&ns, &agent, m.dest, 1.0);
    }
    assert_no_periodic_resync(&ns, &agent);
}
