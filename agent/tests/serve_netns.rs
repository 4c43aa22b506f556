//! `routewarden serve` against the real kernel, in network namespaces the tests
//! create: events reach /metrics, link down, an overrun burst, the MachineConfig
//! replaced or broken on disk, SIGTERM. Run as root.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::{metric_value, Agent, NetNs};

const PRESENT: &str = "routewarden_route_present";
const SEED_ROUTE: &str = "destination=\"192.168.1.0/24\"";

fn seed_dir() -> (support::TempDir, PathBuf) {
    let dir = support::TempDir::new("serve");
    let path = dir.path.join("currentconfig");
    let seed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/seed-machineconfig.yaml");
    std::fs::copy(seed, &path).expect("copy seed");
    (dir, path)
}

fn wait_value(ns: &NetNs, agent: &Agent, metric: &str, needles: &[&str], want: f64) {
    agent.wait_metric(ns, metric, needles, Some(want));
}

fn add_seed_route(ns: &NetNs) {
    ns.ip("route add 192.168.1.0/24 via 172.18.0.1 dev ens5 proto static metric 100");
}

#[test]
fn route_deleted_readded_and_link_down() {
    let ns = NetNs::new();
    add_seed_route(&ns);
    let (_dir, mc) = seed_dir();
    let agent = Agent::start(&ns, &mc, &["--no-units", "--no-networkmanager"]);
    wait_value(&ns, &agent, PRESENT, &[SEED_ROUTE], 1.0);
    ns.ip("route del 192.168.1.0/24");
    wait_value(&ns, &agent, PRESENT, &[SEED_ROUTE], 0.0);
    wait_value(&ns, &agent, "routewarden_routes", &["state=\"missing\""], 1.0);
    add_seed_route(&ns);
    wait_value(&ns, &agent, PRESENT, &[SEED_ROUTE], 1.0);
    ns.ip("link set ens5 down");
    wait_value(&ns, &agent, PRESENT, &[SEED_ROUTE], 0.0);
    wait_value(
        &ns,
        &agent,
        "routewarden_route_drift_reason",
        &[SEED_ROUTE, "reason=\"device-down\""],
        1.0,
    );
    ns.ip("link set ens5 up");
    add_seed_route(&ns);
    wait_value(&ns, &agent, PRESENT, &[SEED_ROUTE], 1.0);
    let body = agent.metrics(&ns);
    assert_eq!(
        metric_value(&body, "routewarden_route_drift_reason", &[SEED_ROUTE]),
        None,
        "{body}"
    );
}

#[test]
fn a_replacement_of_another_type_and_a_deleted_next_hop_object_show_at_once() {
    let ns = NetNs::new();
    add_seed_route(&ns);
    let (_dir, mc) = seed_dir();
    let agent = Agent::start(&ns, &mc, &["--no-units"]);
    wait_value(&ns, &agent, PRESENT, &[SEED_ROUTE], 1.0);
    // A blackhole in the seed route's place: a notification of another type.
    ns.ip("route replace blackhole 192.168.1.0/24 metric 100");
    wait_value(&ns, &agent, PRESENT, &[SEED_ROUTE], 0.0);
    wait_value(
        &ns,
        &agent,
        "routewarden_route_drift_reason",
        &[SEED_ROUTE, "reason=\"different-route\""],
        1.0,
    );
    ns.ip("route del blackhole 192.168.1.0/24 metric 100");
    // The route through a next-hop object; deleting the object deletes the
    // IPv4 route without any RTM_DELROUTE.
    ns.ip("nexthop add id 7 via 172.18.0.1 dev ens5");
    ns.ip("route add 192.168.1.0/24 nhid 7 proto static metric 100");
    wait_value(&ns, &agent, PRESENT, &[SEED_ROUTE], 1.0);
    ns.ip("nexthop replace id 7 via 172.18.0.9 dev ens5");
    wait_value(&ns, &agent, PRESENT, &[SEED_ROUTE], 0.0);
    ns.ip("nexthop replace id 7 via 172.18.0.1 dev ens5");
    wait_value(&ns, &agent, PRESENT, &[SEED_ROUTE], 1.0);
    ns.ip("nexthop del id 7");
    wait_value(&ns, &agent, PRESENT, &[SEED_ROUTE], 0.0);
    wait_value(&ns, &agent, "routewarden_routes", &["state=\"missing\""], 1.0);
}

#[test]
fn overrun_burst_is_corrected_by_a_resync() {
    let ns = NetNs::new();
    add_seed_route(&ns);
    let (_dir, mc) = seed_dir();
    let agent = Agent::start(&ns, &mc, &["--no-units", "--no-networkmanager"]);
    wait_value(&ns, &agent, PRESENT, &[SEED_ROUTE], 1.0);
    let mut lines: Vec<String> = (0..200_000u32)
        .map(|i| {
            format!(
                "route add 10.{}.{}.{}/32 via 172.18.0.1 dev ens5",
                64 + (i >> 16),
                (i >> 8) & 0xff,
                i & 0xff
            )
        })
        .collect();
    lines.push("route del 192.168.1.0/24".into());
    // Stopped, the agent cannot read: the socket's buffer overflows (ENOBUFS).
    agent.signal("STOP");
    ns.ip_batch(&(lines.join("\n") + "\n"));
    agent.signal("CONT");
    wait_value(
        &ns,
        &agent,
        "routewarden_resyncs_total",
        &["cause=\"overrun\""],
        1.0,
    );
    wait_value(&ns, &agent, PRESENT, &[SEED_ROUTE], 0.0);
    let body = agent.metrics(&ns);
    let events = metric_value(&body, "routewarden_route_events_total", &[]).unwrap_or(0.0);
    println!("figure: overrun: agent stopped during a 200,001-route burst: the socket overflowed, {events} notifications handled (the stale rest dropped), a full re-read made the metrics right");
    add_seed_route(&ns);
    wait_value(&ns, &agent, PRESENT, &[SEED_ROUTE], 1.0);
    let series = agent
        .metrics(&ns)
        .lines()
        .filter(|l| l.starts_with(PRESENT))
        .count();
    assert_eq!(series, 1, "cardinality follows the intent, not the table");
    // A resync's read is part of the evaluation that follows it, not a sample of its own.
    let body = agent.metrics(&ns);
    let evaluations = metric_value(&body, "routewarden_evaluations_total", &[]);
    let samples = metric_value(&body, "routewarden_evaluation_duration_seconds_count", &[]);
    assert!(evaluations.is_some_and(|n| n >= 3.0), "{body}");
    assert_eq!(samples, evaluations, "one duration sample per evaluation");
}

#[test]
fn machineconfig_replaced_then_broken() {
    let ns = NetNs::new();
    add_seed_route(&ns);
    ns.ip("route add 10.99.0.0/16 via 172.18.0.1 dev ens5");
    let (dir, mc) = seed_dir();
    let agent = Agent::start(&ns, &mc, &["--no-units", "--no-networkmanager"]);
    wait_value(&ns, &agent, PRESENT, &[SEED_ROUTE], 1.0);
    let text = std::fs::read_to_string(&mc).expect("read");
    let new = text
        .replace("192.168.1.0/24 172.18.0.1", "10.99.0.0/16 172.18.0.1")
        .replace(
            "name: worker-custom-route-configuration",
            "name: rendered-worker-2",
        );
    let tmp = dir.path.join(".currentconfig.new");
    std::fs::write(&tmp, new).expect("write");
    std::fs::rename(&tmp, &mc).expect("atomic replace");
    wait_value(&ns, &agent, PRESENT, &["destination=\"10.99.0.0/16\""], 1.0);
    wait_value(
        &ns,
        &agent,
        "routewarden_machineconfig_info",
        &["rendered-worker-2"],
        1.0,
    );
    let body = agent.metrics(&ns);
    assert_eq!(
        metric_value(&body, PRESENT, &[SEED_ROUTE]),
        None,
        "the old route's series is gone:\n{body}"
    );
    std::fs::write(&mc, "{ this is not a machineconfig").expect("write garbage");
    wait_value(
        &ns,
        &agent,
        "routewarden_source_up",
        &["source=\"machineconfig\""],
        0.0,
    );
    let body = agent.metrics(&ns);
    assert_eq!(
        metric_value(&body, PRESENT, &["destination=\"10.99.0.0/16\""]),
        Some(1.0),
        "last good intent kept"
    );
    assert!(
        agent.logs().contains("keeping the last good intent"),
        "{}",
        agent.logs()
    );
}

#[test]
fn endpoints_and_sigterm() {
    let ns = NetNs::new();
    let (_dir, mc) = seed_dir();
    let mut agent = Agent::start(&ns, &mc, &["--no-units", "--no-networkmanager"]);
    let (status, body) = ns.http_get(agent.port, "/drift").expect("drift answers");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("drift is JSON");
    assert_eq!(v["routes"][0]["state"], "missing");
    assert_eq!(v["sources"]["systemd"], "skipped");
    assert_eq!(ns.http_get(agent.port, "/healthz").map(|r| r.0), Some(200));
    assert_eq!(ns.http_get(agent.port, "/nope").map(|r| r.0), Some(404));
    let post = "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    assert_eq!(ns.http_raw(agent.port, post).map(|r| r.0), Some(405));
    let om = "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text;version=1.0.0\r\nConnection: close\r\n\r\n";
    let (_, body) = ns.http_raw(agent.port, om).expect("openmetrics");
    assert!(body.trim_end().ends_with("# EOF"), "OpenMetrics ends with # EOF");
    let started = Instant::now();
    assert_eq!(agent.stop(), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "stopped in {:?}",
        started.elapsed()
    );
}

#[test]
fn address_removed_flushes_routes_silently() {
    let ns = NetNs::new();
    add_seed_route(&ns);
    let (_dir, mc) = seed_dir();
    let agent = Agent::start(&ns, &mc, &["--no-units", "--no-networkmanager"]);
    wait_value(&ns, &agent, PRESENT, &[SEED_ROUTE], 1.0);
    // An IPv6 address going (a pod's veth takes its link-local one) flushes
    // nothing silently: no re-read for it.
    ns.ip("-6 addr add 2001:db8:9::2/64 dev ens5 nodad");
    ns.ip("-6 addr del 2001:db8:9::2/64 dev ens5");
    // What `nmcli connection up` does to the device's address: the kernel drops the
    // routes via gateways it made reachable and sends no RTM_DELROUTE for them.
    ns.ip("addr del 172.18.0.2/16 dev ens5");
    ns.ip("addr add 172.18.0.2/16 dev ens5");
    wait_value(&ns, &agent, PRESENT, &[SEED_ROUTE], 0.0);
    let address = ["cause=\"address\""];
    wait_value(&ns, &agent, "routewarden_resyncs_total", &address, 1.0);
    let body = agent.metrics(&ns);
    assert_eq!(
        metric_value(&body, "routewarden_resyncs_total", &address),
        Some(1.0),
        "one re-read, for the IPv4 address only"
    );
}
