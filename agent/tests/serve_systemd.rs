//! `routewarden serve` with a real systemd (a user manager on its own bus): unit
//! signals reach /metrics, and when the bus dies the systemd source goes down,
//! routes are still watched, and the agent reconnects when the bus is back.

mod common;
mod support;

use common::systemd_units::{start_systemd, FAILS, SUCCEEDS};
use support::{machineconfig, Agent, NetNs};

fn wait_metric(ns: &NetNs, agent: &Agent, metric: &str, needles: &[&str], want: Option<f64>) {
    agent.wait_metric(ns, metric, needles, want);
}

#[test]
fn unit_changes_and_bus_outage() {
    let sd = start_systemd(
        &[("r-ok.service", SUCCEEDS), ("r-fail.service", FAILS)],
        &["r-ok.service", "r-fail.service"],
    );
    sd.systemctl_ok(&["start", "r-ok.service"]).expect("r-ok starts");
    let ns = NetNs::new();
    ns.ip("route add 10.1.0.0/24 via 172.18.0.1 dev ens5");
    let dir = support::TempDir::new("mc");
    let mc = dir.path.join("currentconfig");
    std::fs::write(&mc, machineconfig(&["r-ok.service", "r-fail.service"])).expect("write");
    let agent = Agent::start(&ns, &mc, &["--dbus-address", sd.bus_address()]);
    let ok = "routewarden_unit_ok";
    wait_metric(&ns, &agent, ok, &["r-ok.service"], Some(1.0));
    wait_metric(&ns, &agent, "routewarden_source_up", &["systemd"], Some(1.0));
    wait_metric(&ns, &agent, ok, &["r-fail.service"], Some(0.0));
    wait_metric(
        &ns,
        &agent,
        "routewarden_route_drift_reason",
        &["10.1.1.0/24", "unit-not-run"],
        Some(1.0),
    );

    let _ = sd.systemctl(&["start", "r-fail.service"]);
    wait_metric(
        &ns,
        &agent,
        "routewarden_route_drift_reason",
        &["10.1.1.0/24", "unit-failed"],
        Some(1.0),
    );
    wait_metric(
        &ns,
        &agent,
        "routewarden_unit_state",
        &["r-fail.service", "state=\"failed\""],
        Some(1.0),
    );

    sd.kill_bus().expect("bus killed");
    wait_metric(&ns, &agent, "routewarden_source_up", &["systemd"], Some(0.0));
    wait_metric(&ns, &agent, ok, &["r-ok.service"], None);
    wait_metric(
        &ns,
        &agent,
        "routewarden_route_present",
        &["10.1.0.0/24"],
        Some(1.0),
    );
    ns.ip("route del 10.1.0.0/24");
    wait_metric(
        &ns,
        &agent,
        "routewarden_route_present",
        &["10.1.0.0/24"],
        Some(0.0),
    );

    sd.systemctl_ok(&["start", "dbus.socket"])
        .expect("bus socket back");
    wait_metric(&ns, &agent, "routewarden_source_up", &["systemd"], Some(1.0));
    wait_metric(&ns, &agent, ok, &["r-ok.service"], Some(1.0));
}
