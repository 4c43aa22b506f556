//! Golden tests: the text of `routewarden check` and the metrics exposition for
//! fixed reports. Regenerate with `UPDATE_GOLDEN=1 cargo test --test golden_outputs`
//! and review the diff.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use routewarden::compare::{compare, DriftReport, Observed, RouteIndex, SourceState, Sources, UnitsSeen};
use routewarden::intent::networkmanager::{expected, merge};
use routewarden::intent::{self, Options};
use routewarden::model::{
    ActiveState, Boot, ConfigFile, DeviceState, Family, IfName, Intent, Link, NextHop, NmConnection,
    NmDevice, NmIpSettings, NmProfile, NmRoute, NmRouteType, NmRule, NmView, ObservedRoute, ObservedRule,
    ProfileFlags, Protocol, RouteKey, RuleAction, RuleSelector, ServiceStatus, StateReason, UnitName,
    UnitStatus,
};
use routewarden::publish::metrics::{Format, Metrics, Snapshot};
use routewarden::publish::text::{self, Colour};

const SEED: &[u8] = include_bytes!("../../examples/seed-machineconfig.yaml");
const UNITS: &[u8] = include_bytes!("../../tests/fixtures/intent/units.yaml");
const RULES: &[u8] = include_bytes!("../../tests/fixtures/intent/rules.yaml");
const MULTIPATH: &[u8] = include_bytes!("../../tests/fixtures/intent/multipath.yaml");

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
            commands: Vec::new(),
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
        networkmanager: SourceState::Skipped,
    }
}

/// What the kernel and systemd show: no rules, no boot time, no NetworkManager
/// view unless the caller sets them.
fn observed<'a>(routes: &'a RouteIndex, units: &'a UnitsSeen, links: Option<&'a [Link]>) -> Observed<'a> {
    Observed {
        routes,
        rules: &[],
        links,
        units,
        boot: None,
        networkmanager: None,
    }
}

/// ens5 activated with its profile, which has one route of its own (in the kernel).
fn networkmanager_view() -> NmView {
    let connection = NmConnection {
        id: "ens5".into(),
        uuid: "09cf4c88-d3ae-3140-b483-09bca10af247".into(),
        kind: "802-3-ethernet".into(),
        interface_name: IfName::new("ens5").ok(),
        autoconnect: true,
        ipv4: NmIpSettings {
            routes: vec![NmRoute {
                destination: "10.99.0.0/16".parse().expect("net"),
                next_hop: Some("172.18.0.1".parse().expect("ip")),
                metric: None,
                table: None,
                kind: NmRouteType::Unicast,
                onlink: false,
            }],
            route_metric: 100,
            ..NmIpSettings::default()
        },
        ipv6: NmIpSettings::default(),
    };
    NmView {
        devices: vec![NmDevice {
            interface: IfName::new("ens5").expect("name"),
            state: DeviceState::ACTIVATED,
            reason: StateReason(0),
            managed: true,
            applied: Some(connection.clone()),
        }],
        profiles: vec![NmProfile {
            settings: connection,
            filename: Some("/etc/NetworkManager/system-connections/ens5.nmconnection".into()),
            flags: ProfileFlags(0),
        }],
        problems: Vec::new(),
    }
}

fn boot_race() -> DriftReport {
    let view = networkmanager_view();
    let intent = merge(
        intent::from_bytes(SEED, &Options::default()).expect("seed"),
        expected(&view),
    );
    let units = UnitsSeen::Seen(vec![
        status("nmcli-dev-modify.service", "failed", "failed", "exit-code", 1, 8),
        status("NetworkManager.service", "active", "running", "success", 0, 0),
    ]);
    let index = RouteIndex::from_routes(vec![route(254, "10.99.0.0/16", "172.18.0.1", 2, Some(100))]);
    let links = links();
    let mut s = sources();
    s.networkmanager = SourceState::Up;
    let seen = Observed {
        networkmanager: Some(&view),
        ..observed(&index, &units, Some(&links))
    };
    compare(&intent, seen, s)
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
    s.networkmanager = SourceState::Down("cannot connect to unix:path=/run/dbus/system_bus_socket".into());
    compare(&intent, observed(&index, &units, Some(&links)), s)
}

/// The seed's config written after this boot (a layered node); its unit never ran.
fn pending_reboot() -> DriftReport {
    let mut intent = intent::from_bytes(SEED, &Options::default()).expect("seed");
    intent.file = Some(ConfigFile {
        path: "/etc/machine-config-daemon/currentconfig".into(),
        changed_usec: 1_764_000_060_000_000,
        image: Some("quay.io/example/rhcos@sha256:0123abcd".into()),
        from_node: true,
    });
    let mut never_ran = status("nmcli-dev-modify.service", "inactive", "dead", "success", 0, 0);
    never_ran.inactive_exit_usec = 0;
    never_ran.service = Some(ServiceStatus::default());
    let units = UnitsSeen::Seen(vec![
        never_ran,
        status("NetworkManager.service", "active", "running", "success", 0, 0),
    ]);
    let index = RouteIndex::default();
    let links = links();
    let boot = Boot {
        monotonic_usec: 1_000_000,
        realtime_usec: 1_764_000_000_000_000,
    };
    let seen = Observed {
        boot: Some(boot),
        ..observed(&index, &units, Some(&links))
    };
    compare(&intent, seen, sources())
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
    let seen = Observed {
        rules: &rules,
        ..observed(&index, &units, Some(&links))
    };
    compare(&intent, seen, sources())
}

/// A node without a MachineConfig.
fn absent() -> DriftReport {
    let (index, units) = (RouteIndex::default(), UnitsSeen::Seen(Vec::new()));
    let mut s = sources();
    s.machineconfig = SourceState::Absent;
    compare(&Intent::default(), observed(&index, &units, None), s)
}

#[test]
fn check_text_pending_reboot() {
    golden(
        "check-pending-reboot.txt",
        &text::check(&pending_reboot(), Colour::Off),
    );
}

/// The boot race with remediation on: two failed restarts counted, the owner
/// waiting for its next attempt. (One series a family: a family's series come
/// out in no set order.)
fn remediation_exposition() -> String {
    use routewarden::publish::metrics::{OwnerLabels, RemediationLabels};
    let metrics = metrics_of(boot_race());
    let owner = "nmcli-dev-modify.service".to_owned();
    let labels = RemediationLabels {
        action: "restart-unit",
        owner: owner.clone(),
        result: "failed",
    };
    metrics.remediations.get_or_create(&labels).inc_by(2);
    metrics
        .remediation_next_attempt
        .get_or_create(&OwnerLabels { owner })
        .set(1_764_000_240.0);
    rendered(&metrics, Format::Prometheus)
}

#[test]
fn metrics_remediation() {
    golden("metrics-remediation.prom", &remediation_exposition());
}

#[test]
fn metrics_pending_reboot() {
    golden(
        "metrics-pending-reboot.prom",
        &exposition(pending_reboot(), Format::Prometheus),
    );
}

#[test]
fn metrics_and_text_of_an_absent_machineconfig() {
    let text = exposition(absent(), Format::Prometheus);
    for line in [
        "routewarden_source_up{source=\"machineconfig\"} 0\n",
        "routewarden_source_absent{source=\"machineconfig\"} 1\n",
        "routewarden_source_absent{source=\"netlink\"} 0\n",
        "routewarden_machineconfig_info{name=\"\",path=\"\",image=\"\"} 1\n",
        "routewarden_expected_routes 0.0\n",
    ] {
        assert!(text.contains(line), "no {line:?} in\n{text}");
    }
    assert!(
        !text.contains("\nroutewarden_machineconfig_written_after_boot "),
        "unknown: no sample\n{text}"
    );
    let out = routewarden::publish::text::check(&absent(), Colour::Off);
    assert!(
        out.starts_with("MachineConfig: (none)\nResult: no drift\nSources: machineconfig absent,"),
        "{out}"
    );
}

/// The seed's intent with NetworkManager's: a route both declare, one only
/// NetworkManager does, a rule of its own, and a profile that is not expected.
fn expected_with_networkmanager() -> routewarden::model::Intent {
    let mut view = networkmanager_view();
    let applied = view.devices[0].applied.as_mut().expect("applied");
    applied.ipv4.rules.push(NmRule {
        family: Family::Ipv4,
        priority: Some(150),
        selector: RuleSelector {
            fwmark: Some((0x30, 0x10)),
            ..from("172.18.0.0/16")
        },
        action: RuleAction::Table(200),
        unchecked: vec!["uidrange 1000-2000".into()],
    });
    applied.ipv4.routes.push(NmRoute {
        destination: "192.168.1.0/24".parse().expect("net"),
        next_hop: Some("172.18.0.1".parse().expect("ip")),
        metric: None,
        table: None,
        kind: NmRouteType::Unicast,
        onlink: false,
    });
    let mut manual = view.profiles[0].clone();
    manual.settings.id = "manual".into();
    manual.settings.uuid = "5d6f4f0e-0000-4000-8000-000000000001".into();
    manual.settings.autoconnect = false;
    manual.filename = Some("/etc/NetworkManager/system-connections/manual.nmconnection".into());
    view.profiles.push(manual);
    merge(
        intent::from_bytes(SEED, &Options::default()).expect("seed"),
        expected(&view),
    )
}

#[test]
fn expected_text_with_networkmanager() {
    golden(
        "expected-networkmanager.txt",
        &text::expected(&expected_with_networkmanager()),
    );
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

/// tests/fixtures/intent/multipath.yaml against a kernel where 10.90.0.0/16 lost
/// its second hop, 10.91.0.0/16 has both (in the other order) and
/// 2001:db8:90::/64 has one hop more than declared.
fn multipath_states() -> DriftReport {
    let intent = intent::from_bytes(MULTIPATH, &Options::default()).expect("multipath fixture");
    let multipath = |dest: &str, hops: &[(&str, u32)]| {
        let mut r = route(254, dest, hops[0].0, hops[0].1, None);
        r.next_hops = hops
            .iter()
            .map(|(gw, i)| NextHop {
                gateway: Some(gw.parse().expect("ip")),
                ifindex: Some(*i),
            })
            .collect();
        r
    };
    let index = RouteIndex::from_routes(vec![
        multipath("10.90.0.0/16", &[("172.18.0.1", 2)]),
        multipath("10.91.0.0/16", &[("172.18.0.1", 2), ("172.19.0.1", 3)]),
        multipath(
            "2001:db8:90::/64",
            &[("fe80::1", 2), ("fe80::2", 2), ("fe80::3", 2)],
        ),
    ]);
    let units = UnitsSeen::Seen(vec![status(
        "multipath-routes.service",
        "inactive",
        "dead",
        "success",
        1,
        0,
    )]);
    let mut links = links();
    links[2].up = true;
    links[2].carrier = true;
    compare(&intent, observed(&index, &units, Some(&links)), sources())
}

#[test]
fn check_text_and_json_of_multipath_routes() {
    let report = multipath_states();
    golden("check-multipath.txt", &text::check(&report, Colour::Off));
    let routes = serde_json::to_string_pretty(&report.routes).expect("json") + "\n";
    golden("check-multipath-routes.json", &routes);
    let intent = intent::from_bytes(MULTIPATH, &Options::default()).expect("multipath fixture");
    golden("expected-multipath.txt", &text::expected(&intent));
}

#[test]
fn check_text_many_states() {
    golden("check-many-states.txt", &text::check(&many_states(), Colour::Off));
}

/// The registry with `report` as its latest snapshot, evaluated at a fixed time.
fn metrics_of(report: DriftReport) -> Metrics {
    let snapshot = Snapshot {
        report,
        at: UNIX_EPOCH + Duration::from_secs(1_764_000_000),
    };
    let (_tx, rx) = tokio::sync::watch::channel(Some(Arc::new(snapshot)));
    Metrics::new(rx)
}

/// The exposition, with the build's version replaced by `VERSION`.
fn rendered(metrics: &Metrics, format: Format) -> String {
    metrics.render(format).replace(
        concat!("version=\"", env!("CARGO_PKG_VERSION"), "\""),
        "version=\"VERSION\"",
    )
}

fn exposition(report: DriftReport, format: Format) -> String {
    rendered(&metrics_of(report), format)
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
        ("pending", exposition(pending_reboot(), Format::Prometheus)),
        ("absent", exposition(absent(), Format::Prometheus)),
        ("rules", exposition(rules_states(), Format::Prometheus)),
        ("remediation", remediation_exposition()),
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
