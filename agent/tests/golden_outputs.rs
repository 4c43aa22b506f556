//! Golden tests: the text of `routewarden check` and the metrics exposition for
//! fixed reports. Regenerate with `UPDATE_GOLDEN=1 cargo test --test golden_outputs`
//! and review the diff.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use routewarden::compare::{compare, DriftReport, Observed, RouteIndex, SourceState, Sources, UnitsSeen};
use routewarden::intent::{self, Options};
use routewarden::model::{
    ActiveState, Family, IfName, Link, NextHop, ObservedRoute, ObservedRule, Protocol, RouteKey, RuleAction,
    RuleSelector, ServiceStatus, UnitName, UnitStatus,
};
use routewarden::publish::metrics::{Format, Metrics, Snapshot};
use routewarden::publish::text::{self, Colour};

const SEED: &[u8] = include_bytes!("../../examples/seed-machineconfig.yaml");
const UNITS: &[u8] = include_bytes!("../../tests/fixtures/intent/units.yaml");
const RULES: &[u8] = include_bytes!("../../tests/fixtures/intent/rules.yaml");

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, actual).expect("write golden");
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        actual,
        expected,
        "{} differs; UPDATE_GOLDEN=1 to regenerate",
        path.display()
    );
}

fn status(name: &str, active: &str, sub: &str, result: &str, code: i32, st: i32) -> UnitStatus {
    UnitStatus {
        name: UnitName::new(name).expect("name"),
        load_state: "loaded".into(),
        active_state: ActiveState::parse(active),
        sub_state: sub.into(),
        unit_file_state: "enabled".into(),
        condition_result: true,
        condition_usec: 1,
        inactive_exit_usec: 4_000_000,
        service: Some(ServiceStatus {
            service_type: "oneshot".into(),
            result: result.into(),
            exec_main_status: st,
            exec_main_code: code,
            exec_main_start_usec: 4_000_000,
            exec_main_exit_usec: 4_100_000,
            remain_after_exit: false,
        }),
    }
}

fn links() -> Vec<Link> {
    let link = |index, name: &str, up| {
        let mut l = Link::new(index, IfName::new(name).expect("name"), up, up);
        l.last_configured_usec = Some(2_000_000);
        l
    };
    vec![link(1, "lo", true), link(2, "ens5", true), link(3, "ens6", false)]
}

fn route(table: u32, dest: &str, gw: &str, ifindex: u32, metric: Option<u32>) -> ObservedRoute {
    let hop = NextHop {
        gateway: Some(gw.parse().expect("ip")),
        ifindex: Some(ifindex),
    };
    ObservedRoute::unicast(
        RouteKey::new(table, dest.parse().expect("net")),
        vec![hop],
        metric,
        Protocol(4),
    )
}

fn sources() -> Sources {
    Sources {
        machineconfig: SourceState::Up,
        netlink: SourceState::Up,
        systemd: SourceState::Up,
    }
}

fn boot_race() -> DriftReport {
    let intent = intent::from_bytes(SEED, &Options::default()).expect("seed");
    let units = UnitsSeen::Seen(vec![
        status("nmcli-dev-modify.service", "failed", "failed", "exit-code", 1, 8),
        status("NetworkManager.service", "active", "running", "success", 0, 0),
    ]);
    let index = RouteIndex::default();
    let links = links();
    compare(
        &intent,
        Observed {
            routes: &index,
            rules: &[],
            links: Some(&links),
            units: &units,
        },
        sources(),
    )
}

fn many_states() -> DriftReport {
    let intent = intent::from_bytes(UNITS, &Options::default()).expect("units fixture");
    let index = RouteIndex::from_routes(vec![
        route(300, "10.20.0.0/16", "192.0.2.1", 3, None),
        route(254, "10.10.0.0/16", "172.18.0.1", 2, Some(100)),
        route(200, "10.11.0.0/16", "172.18.0.9", 2, None),
    ]);
    let units = UnitsSeen::Unavailable("cannot connect to unix:path=/run/dbus/system_bus_socket".into());
    let links = links();
    let mut s = sources();
    s.systemd = SourceState::Down("cannot connect to unix:path=/run/dbus/system_bus_socket".into());
    compare(
        &intent,
        Observed {
            routes: &index,
            rules: &[],
            links: Some(&links),
            units: &units,
        },
        s,
    )
}

/// A kernel rule.
fn rule(family: Family, priority: u32, selector: RuleSelector, action: RuleAction) -> ObservedRule {
    ObservedRule {
        family,
        priority,
        selector,
        action,
        l3mdev: false,
        unchecked: Vec::new(),
        protocol: Protocol(if priority == 0 || priority >= 32766 { 2 } else { 0 }),
    }
}

fn from(net: &str) -> RuleSelector {
    RuleSelector {
        from: Some(net.parse().expect("net")),
        ..RuleSelector::default()
    }
}

/// tests/fixtures/intent/rules.yaml against a kernel holding some of its rules,
/// others in their place, a route in table 200 and one in a table nothing selects.
fn rules_states() -> DriftReport {
    let intent = intent::from_bytes(RULES, &Options::default()).expect("rules fixture");
    let all = RuleSelector::default();
    let rules = vec![
        rule(Family::Ipv4, 0, all.clone(), RuleAction::Table(255)),
        rule(Family::Ipv4, 100, from("10.60.1.0/24"), RuleAction::Table(200)),
        rule(Family::Ipv4, 111, from("10.63.0.0/16"), RuleAction::Blackhole),
        rule(Family::Ipv4, 120, from("10.64.9.0/24"), RuleAction::Table(220)),
        rule(Family::Ipv4, 130, from("10.65.0.0/16"), RuleAction::Table(300)),
        rule(Family::Ipv4, 32766, all.clone(), RuleAction::Table(254)),
        rule(Family::Ipv4, 32767, all.clone(), RuleAction::Table(253)),
        rule(Family::Ipv6, 0, all.clone(), RuleAction::Table(255)),
        rule(Family::Ipv6, 32766, all, RuleAction::Table(254)),
    ];
    let units = UnitsSeen::Seen(vec![
        status("rules-ip.service", "failed", "failed", "exit-code", 1, 2),
        status("rules-nmcli.service", "inactive", "dead", "success", 1, 0),
        status("rules-set.service", "inactive", "dead", "success", 1, 0),
        status("NetworkManager.service", "active", "running", "success", 0, 0),
        status("nmstate.service", "inactive", "dead", "success", 1, 0),
    ]);
    let index = RouteIndex::from_routes(vec![route(200, "10.60.0.0/16", "192.0.2.1", 3, None)]);
    let links = links();
    compare(
        &intent,
        Observed {
            routes: &index,
            rules: &rules,
            links: Some(&links),
            units: &units,
        },
        sources(),
    )
}

#[test]
fn check_text_rules() {
    golden("check-rules.txt", &text::check(&rules_states(), Colour::Off));
}

#[test]
fn metrics_exposition_rules() {
    golden(
        "metrics-rules.prom",
        &exposition(rules_states(), Format::Prometheus),
    );
}

#[test]
fn check_text_boot_race() {
    golden("check-boot-race.txt", &text::check(&boot_race(), Colour::Off));
}

#[test]
fn check_text_many_states() {
    golden("check-many-states.txt", &text::check(&many_states(), Colour::Off));
}

fn exposition(report: DriftReport, format: Format) -> String {
    let snapshot = Snapshot {
        report,
        at: UNIX_EPOCH + Duration::from_secs(1_764_000_000),
    };
    let (_tx, rx) = tokio::sync::watch::channel(Some(Arc::new(snapshot)));
    Metrics::new(rx).render(format).replace(
        concat!("version=\"", env!("CARGO_PKG_VERSION"), "\""),
        "version=\"VERSION\"",
    )
}

#[test]
fn metrics_exposition_prometheus_text() {
    golden(
        "metrics-boot-race.prom",
        &exposition(boot_race(), Format::Prometheus),
    );
}

#[test]
fn metrics_exposition_openmetrics() {
    golden(
        "metrics-many-states.om",
        &exposition(many_states(), Format::OpenMetrics),
    );
}

#[test]
fn promtool_finds_the_exposition_clean() {
    for (name, text) in [
        ("prometheus", exposition(boot_race(), Format::Prometheus)),
        ("many", exposition(many_states(), Format::Prometheus)),
        ("rules", exposition(rules_states(), Format::Prometheus)),
    ] {
        let mut child = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("promtool is installed (Debian package prometheus; tests/run.sh installs it)");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("promtool ran");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && all.trim().is_empty(),
            "{name}: promtool: {all}"
        );
    }
}
