//! `routewarden check` end to end on one machine: the real kernel (a network
//! namespace the test makes) and a real systemd (a user manager with its own bus,
//! which exposes the same org.freedesktop.systemd1 API as PID 1). Run as root.

mod common;
mod support;

use std::process::Output;

use common::systemd_units::{start_systemd, systemctl_start, FAILS, SKIPPED, SUCCEEDS};
use serde_json::Value;
use support::{machineconfig, NetNs};

fn check(ns: &NetNs, mc: &str, extra: &[&str]) -> (Output, Value) {
    let path = std::env::temp_dir().join(format!("{}-mc.json", ns.name));
    std::fs::write(&path, mc).expect("write machineconfig");
    let out = ns
        .command(support::agent())
        .args([
            "check",
            "--format",
            "json",
            "--machineconfig",
            path.to_str().expect("utf-8"),
        ])
        .args(extra)
        .output()
        .expect("run check");
    let _ = std::fs::remove_file(&path);
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out, json)
}

fn route<'a>(report: &'a Value, dest: &str) -> &'a Value {
    report["routes"]
        .as_array()
        .and_then(|r| r.iter().find(|x| x["destination"] == dest))
        .expect("route in report")
}

fn unit<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["units"]
        .as_array()
        .and_then(|u| u.iter().find(|x| x["name"] == name))
        .expect("unit in report")
}

fn codes(route: &Value) -> Vec<String> {
    route["reason_codes"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

#[test]
fn unit_states_explain_missing_routes() {
    let names = [
        "r-ok.service",
        "r-fail.service",
        "r-never.service",
        "r-disabled.service",
        "r-skipped.service",
        "r-gone.service",
    ];
    let sd = start_systemd(
        &[
            ("r-ok.service", SUCCEEDS),
            ("r-fail.service", FAILS),
            ("r-never.service", SUCCEEDS),
            ("r-disabled.service", SUCCEEDS),
            ("r-skipped.service", SKIPPED),
        ],
        &[
            "r-ok.service",
            "r-fail.service",
            "r-never.service",
            "r-skipped.service",
        ],
    );
    assert!(systemctl_start(&sd, "r-ok.service"));
    assert!(!systemctl_start(&sd, "r-fail.service"));
    systemctl_start(&sd, "r-skipped.service");
    let ns = NetNs::new();
    ns.ip("route add 10.1.0.0/24 via 172.18.0.1 dev ens5");
    let (out, report) = check(&ns, &machineconfig(&names), &["--dbus-address", sd.bus_address()]);
    assert_eq!(out.status.code(), Some(1), "drift exits 1: {report}");
    assert_eq!(report["drift"], true);
    assert_eq!(report["sources"]["systemd"], "up");

    assert_eq!(route(&report, "10.1.0.0/24")["state"], "present");
    assert_eq!(unit(&report, "r-ok.service")["state"], "ok");

    let failed = route(&report, "10.1.1.0/24");
    assert_eq!(failed["state"], "missing");
    assert_eq!(failed["reasons"][0], "unit r-fail.service failed: exit status 8");
    assert_eq!(unit(&report, "r-fail.service")["state"], "failed");
    assert_eq!(unit(&report, "r-fail.service")["exec_main_status"], 8);

    assert_eq!(codes(route(&report, "10.1.2.0/24")), ["unit-not-run"]);
    assert_eq!(unit(&report, "r-never.service")["state"], "not-run");

    assert_eq!(codes(route(&report, "10.1.3.0/24")), ["unit-disabled"]);
    assert_eq!(unit(&report, "r-disabled.service")["state"], "disabled");
    assert_eq!(unit(&report, "r-disabled.service")["unit_file_state"], "disabled");

    assert_eq!(codes(route(&report, "10.1.4.0/24")), ["unit-not-run"]);
    assert!(route(&report, "10.1.4.0/24")["reasons"][0]
        .as_str()
        .is_some_and(|r| r.contains("condition")));

    assert_eq!(codes(route(&report, "10.1.5.0/24")), ["unit-not-found"]);
    assert_eq!(unit(&report, "r-gone.service")["state"], "not-found");
}

#[test]
fn no_drift_exits_zero_and_text_is_readable() {
    let sd = start_systemd(&[("r-ok.service", SUCCEEDS)], &["r-ok.service"]);
    assert!(systemctl_start(&sd, "r-ok.service"));
    let ns = NetNs::new();
    ns.ip("route add 10.1.0.0/24 via 172.18.0.1 dev ens5");
    let (out, report) = check(
        &ns,
        &machineconfig(&["r-ok.service"]),
        &["--dbus-address", sd.bus_address()],
    );
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert_eq!(report["drift"], false);
    let path = std::env::temp_dir().join(format!("{}-mc.json", ns.name));
    std::fs::write(&path, machineconfig(&["r-ok.service"])).expect("write");
    let text = ns
        .command(support::agent())
        .args([
            "check",
            "--machineconfig",
            path.to_str().expect("utf-8"),
            "--dbus-address",
            sd.bus_address(),
        ])
        .output()
        .expect("run");
    let _ = std::fs::remove_file(&path);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Result: no drift"), "{text}");
    assert!(text.contains("present  ipv4    10.1.0.0/24"), "{text}");
    assert!(!text.contains('\x1b'), "no colour when not a terminal");
}

#[test]
fn without_dbus_units_are_unknown_and_routes_still_checked() {
    let ns = NetNs::new();
    ns.ip("route add 10.1.0.0/24 via 172.18.0.1 dev ens5");
    let mc = machineconfig(&["r-ok.service", "r-fail.service"]);
    let (out, report) = check(&ns, &mc, &["--dbus-address", "unix:path=/nonexistent/bus"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(report["sources"]["systemd"]
        .as_str()
        .is_some_and(|s| s.starts_with("down: ") && s.contains("/nonexistent/bus")));
    assert_eq!(route(&report, "10.1.0.0/24")["state"], "present");
    assert_eq!(route(&report, "10.1.1.0/24")["state"], "missing");
    assert_eq!(unit(&report, "r-fail.service")["state"], "unknown");
    let (out, report) = check(&ns, &mc, &["--no-units", "--no-networkmanager"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(report["sources"]["systemd"], "skipped");
}

#[test]
fn unreadable_input_exits_two_with_the_place() {
    let ns = NetNs::new();
    let (out, _) = {
        let path = std::env::temp_dir().join(format!("{}-bad.json", ns.name));
        std::fs::write(&path, "{\"spec\": {\"config\": {\"storage\": {\"files\": 7}}}}").expect("write");
        let out = ns
            .command(support::agent())
            .args([
                "check",
                "--no-units",
                "--no-networkmanager",
                "--machineconfig",
                path.to_str().expect("utf-8"),
            ])
            .output()
            .expect("run");
        let _ = std::fs::remove_file(&path);
        (out, ())
    };
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("spec.config.storage.files"), "{err}");
}

#[test]
fn a_failed_command_behind_the_dash_prefix_is_the_reason() {
    // The second command fails ("Cannot find device") and touches nothing; its
    // `-` prefix lets the unit succeed.
    let contents = "[Service]\nType=oneshot\nExecStart=/bin/true\nExecStart=-/usr/sbin/ip route add 10.7.0.0/24 via 172.18.0.1 dev rw-nodev0\n[Install]\nWantedBy=default.target\n";
    let sd = start_systemd(&[("r-ignored.service", contents)], &["r-ignored.service"]);
    assert!(systemctl_start(&sd, "r-ignored.service"), "the unit succeeds");
    let mc = serde_json::json!({
        "kind": "MachineConfig", "metadata": {"name": "dash-prefix"},
        "spec": {"config": {"ignition": {"version": "3.2.0"},
            "systemd": {"units": [{"name": "r-ignored.service", "enabled": true, "contents": contents}]}}}
    })
    .to_string();
    let ns = NetNs::new();
    let (_, report) = check(&ns, &mc, &["--dbus-address", sd.bus_address()]);
    assert_eq!(unit(&report, "r-ignored.service")["state"], "ok", "{report}");
    let r = route(&report, "10.7.0.0/24");
    assert_eq!(r["state"], "missing");
    assert_eq!(
        codes(r),
        ["command-failed", "device-missing"],
        "the command's failure first: {r}"
    );
    let words = r["reasons"][0].as_str().unwrap_or("");
    assert!(
        words.contains("ExecStart=") && words.contains("line 4") && words.contains("'-' prefix"),
        "{words}"
    );
    assert!(!words.contains("removed"), "not 'removed since': {words}");
}
