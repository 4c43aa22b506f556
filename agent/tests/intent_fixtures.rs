//! The intent stage on fixture MachineConfigs written for each declaration form
//! (tests/fixtures/intent/), bad inputs included, and on the seed document.

use std::path::PathBuf;

use routewarden::input::{self, InputPath};
use routewarden::intent::Options;
use routewarden::model::{Intent, Severity};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(name)
}

fn load(name: &str) -> Intent {
    let options = Options {
        node_name: Some("worker-0.example.com".into()),
        ..Options::default()
    };
    match input::load(&InputPath::File(fixture(name)), &options) {
        Ok(i) => i,
        Err(e) => panic!("{name}: {e}"),
    }
}

/// `family dest via gw dev D table T metric M kind unit` per route.
fn routes(intent: &Intent) -> Vec<String> {
    intent
        .routes
        .iter()
        .map(|r| {
            let o = |v: Option<String>| v.unwrap_or_else(|| "-".into());
            format!(
                "{} {} via {} dev {} table {} metric {} {:?} {}",
                r.family,
                r.destination,
                o(r.gateway.map(|g| g.to_string())),
                o(r.device.as_ref().map(|d| d.to_string())),
                r.table,
                o(r.metric.map(|m| m.to_string())),
                r.source.kind,
                o(r.source.unit.as_ref().map(|u| u.to_string())),
            )
        })
        .collect()
}

fn units(intent: &Intent) -> Vec<String> {
    intent
        .units
        .iter()
        .map(|u| format!("{} {:?} {:?}", u.name, u.enabled, u.expect))
        .collect()
}

fn diagnostics(intent: &Intent) -> Vec<String> {
    intent
        .diagnostics
        .iter()
        .map(|d| format!("{:?} {}: {}", d.severity, d.origin, d.message))
        .collect()
}

fn has_diag(intent: &Intent, severity: Severity, origin: &str, words: &str) -> bool {
    intent
        .diagnostics
        .iter()
        .any(|d| d.severity == severity && d.origin.starts_with(origin) && d.message.contains(words))
}

#[test]
fn seed_machineconfig_yields_exactly_its_route_and_unit() {
    let intent = load("examples/seed-machineconfig.yaml");
    assert_eq!(
        intent.machineconfig.as_deref(),
        Some("worker-custom-route-configuration")
    );
    assert_eq!(
        routes(&intent),
        ["ipv4 192.168.1.0/24 via 172.18.0.1 dev ens5 table 254 metric - Nmcli nmcli-dev-modify.service"]
    );
    assert_eq!(
        intent.routes[0].source.origin,
        "unit nmcli-dev-modify.service line 7"
    );
    assert!(intent.routes[0].traits.non_persistent);
    assert!(intent.routes[0].notes.iter().any(|n| n.contains("re-activated")));
    assert_eq!(
        units(&intent),
        [
            "nmcli-dev-modify.service Some(true) Succeeded",
            "NetworkManager.service None Active"
        ]
    );
    assert!(intent.diagnostics.is_empty(), "{:?}", diagnostics(&intent));
}

#[test]
fn units_in_every_shape() {
    let intent = load("tests/fixtures/intent/units.yaml");
    let r = routes(&intent);
    let expected = [
        "ipv4 10.20.0.0/16 via 192.0.2.1 dev ens6 table 300 metric - Nmcli routes-con.service",
        "ipv4 10.21.0.0/16 via 192.0.2.1 dev - table 254 metric 20 Nmcli routes-con.service",
        "ipv4 10.22.0.0/16 via 192.0.2.1 dev - table 1000 metric - IpRoute routes-con.service",
        "ipv4 10.10.0.0/16 via 172.18.0.1 dev ens5 table 254 metric 100 Nmcli routes-dev.service",
        "ipv4 10.11.0.0/16 via 172.18.0.1 dev ens5 table 200 metric - Nmcli routes-dev.service",
        "ipv6 fd00:10::/64 via fd00::1 dev ens5 table 254 metric - Nmcli routes-dev.service",
        "ipv4 10.12.0.0/16 via 172.18.0.1 dev ens5 table 250 metric - IpRoute routes-dev.service",
        "ipv6 fd00:12::/64 via - dev ens5 table 254 metric 50 IpRoute routes-dev.service",
        "ipv4 10.50.0.0/16 via 172.18.0.1 dev - table 254 metric - IpRoute routes-not-enabled.service",
        "ipv4 10.31.0.0/16 via 172.18.0.1 dev - table 254 metric - IpRoute routes-override.service",
    ];
    assert_eq!(r, expected);
    assert!(!r
        .iter()
        .any(|l| l.contains("10.30.0.0") || l.contains("10.40.0.0")));
    assert_eq!(
        units(&intent),
        [
            "routes-con.service Some(true) Succeeded",
            "routes-dev.service Some(true) Succeeded",
            "routes-not-enabled.service None Active",
            "routes-override.service Some(true) Succeeded",
            "NetworkManager.service None Active",
        ]
    );
    assert!(has_diag(
        &intent,
        Severity::Warning,
        "unit routes-masked.service",
        "masked"
    ));
    assert!(has_diag(
        &intent,
        Severity::Warning,
        "unit routes-not-enabled.service",
        "does not enable"
    ));
    assert!(has_diag(
        &intent,
        Severity::Error,
        "unit routes-unreadable.service line 4",
        "not literal"
    ));
    assert!(has_diag(
        &intent,
        Severity::Error,
        "unit routes-unreadable.service line 5",
        "the routing table \"unknown-table\" is a name that is not defined in the MachineConfig's rt_tables"
    ));
    assert!(has_diag(
        &intent,
        Severity::Error,
        "unit routes-unreadable.service line 6",
        "the destination \"10.62.0.0/33\" is not"
    ));
    assert!(has_diag(
        &intent,
        Severity::Error,
        "unit routes-unreadable.service line 7",
        "does not know"
    ));
    assert_eq!(intent.diagnostics.len(), 6, "{:?}", diagnostics(&intent));
    let con = &intent.routes[1];
    assert!(con
        .notes
        .iter()
        .any(|n| n.contains("not defined in the MachineConfig")));
    assert!(!con.traits.non_persistent);
    assert!(intent.routes[3].traits.non_persistent);
}

#[test]
fn scripts_dispatcher_and_nmstatectl() {
    let intent = load("tests/fixtures/intent/scripts.json");
    assert_eq!(
        intent.machineconfig.as_deref(),
        Some("rendered-worker-0123456789abcdef")
    );
    assert_eq!(
        routes(&intent),
        [
            "ipv4 10.80.0.0/16 via 172.18.0.1 dev ens5 table 100 metric - IpRoute -",
            "ipv4 10.70.0.0/16 via 172.18.0.1 dev ens5 table 254 metric - IpRoute add-routes.service",
            "ipv4 10.71.0.0/16 via 172.18.0.1 dev ens5 table 254 metric 300 IpRoute add-routes.service",
            "ipv4 10.72.0.0/16 via 172.18.0.1 dev ens5 table 254 metric 150 Nmcli add-routes.service",
            "ipv6 fd00:73::/64 via fd00::1 dev ens5 table 254 metric - IpRoute add-routes.service",
            "ipv4 10.90.0.0/16 via 172.18.0.1 dev ens5 table 254 metric - Nmstate apply-nmstate.service",
        ]
    );
    assert_eq!(
        intent.routes[1].source.origin,
        "file /usr/local/bin/add-routes.sh line 5"
    );
    assert!(
        !intent.routes[0].traits.non_persistent,
        "dispatcher scripts run on every activation"
    );
    assert!(has_diag(
        &intent,
        Severity::Error,
        "file /usr/local/bin/add-routes.sh line 10",
        "not literal"
    ));
    assert_eq!(intent.diagnostics.len(), 1, "{:?}", diagnostics(&intent));
    assert_eq!(
        units(&intent),
        [
            "add-routes.service Some(true) Succeeded",
            "apply-nmstate.service Some(true) Succeeded",
            "NetworkManager.service None Active",
            "nmstate.service None Succeeded",
        ]
    );
}

#[test]
fn keyfiles_with_options_and_refused_mode() {
    let intent = load("tests/fixtures/intent/keyfiles.yaml");
    assert_eq!(
        routes(&intent),
        [
            "ipv4 192.168.10.0/24 via 172.18.0.1 dev ens5 table 254 metric 100 Keyfile -",
            "ipv4 192.168.11.0/24 via 172.18.0.1 dev ens5 table 200 metric - Keyfile -",
            "ipv6 fd00:1::/64 via fd00::1 dev ens5 table 254 metric 512 Keyfile -",
            "ipv4 192.168.20.0/24 via 10.0.0.1 dev ens6 table 254 metric - Keyfile -",
        ]
    );
    assert_eq!(intent.routes[0].traits.refused_mode, None);
    let refused = &intent.routes[3].traits;
    assert_eq!(
        (refused.keyfile.as_deref(), refused.refused_mode),
        (
            Some("/etc/NetworkManager/system-connections/ens6.nmconnection"),
            Some(0o644)
        )
    );
    assert!(has_diag(
        &intent,
        Severity::Warning,
        "file /etc/NetworkManager/system-connections/ens6",
        "0644"
    ));
    assert_eq!(intent.diagnostics.len(), 1, "{:?}", diagnostics(&intent));
    assert_eq!(units(&intent), ["NetworkManager.service None Active"]);
}

#[test]
fn ifcfg_and_nmstate_files() {
    let intent = load("tests/fixtures/intent/files.yaml");
    assert_eq!(
        routes(&intent),
        [
            "ipv4 10.100.0.0/16 via 172.18.0.1 dev ens5 table 254 metric 10 Ifcfg -",
            "ipv4 10.101.0.0/16 via 172.18.0.1 dev ens5 table 201 metric - Ifcfg -",
            "ipv4 10.102.0.0/16 via 172.18.0.1 dev ens6 table 254 metric - Ifcfg -",
            "ipv4 0.0.0.0/0 via 172.18.0.254 dev ens6 table 202 metric - Ifcfg -",
            "ipv6 fd00:104::/64 via fd00::1 dev ens5 table 254 metric 1024 Ifcfg -",
            "ipv6 2001:db8:115::/64 via fd00::1 dev ens5 table 254 metric - Nmstate -",
            "ipv4 10.110.0.0/16 via 172.18.0.1 dev ens5 table 254 metric - Nmstate -",
            "ipv4 10.112.0.0/16 via 172.18.0.1 dev ens5 table 203 metric 200 Nmstate -",
        ]
    );
    assert!(has_diag(
        &intent,
        Severity::Warning,
        "file /etc/nmstate/ens5-extra.yaml",
        ".yml"
    ));
    assert!(has_diag(
        &intent,
        Severity::Warning,
        "file /etc/nmstate/openshift/worker-0.example.com.yml",
        "fully qualified"
    ));
    assert_eq!(intent.diagnostics.len(), 2, "{:?}", diagnostics(&intent));
    assert_eq!(
        units(&intent),
        [
            "NetworkManager.service None Active",
            "nmstate.service None Succeeded"
        ]
    );
}

#[test]
fn nmstate_without_a_matching_host_file_says_so() {
    let options = Options {
        node_name: Some("worker-7".into()),
        ..Options::default()
    };
    let intent = input::load(
        &InputPath::File(fixture("tests/fixtures/intent/files.yaml")),
        &options,
    )
    .expect("fixture loads");
    assert!(!routes(&intent)
        .iter()
        .any(|r| r.contains("10.112.0.0") || r.contains("10.113.0.0")));
    assert!(has_diag(
        &intent,
        Severity::Warning,
        "/etc/nmstate/openshift/",
        "worker-7"
    ));
}

#[test]
fn list_merges_by_name_later_wins() {
    let intent = load("tests/fixtures/intent/list.json");
    assert_eq!(intent.machineconfig.as_deref(), Some("50-a,99-b"));
    assert_eq!(
        routes(&intent),
        ["ipv4 10.121.0.0/16 via 172.18.0.1 dev - table 254 metric - IpRoute r.service"]
    );
    assert_eq!(units(&intent), ["r.service Some(true) Succeeded"]);
}

#[test]
fn multiple_yaml_documents_and_octal_mode() {
    let intent = load("tests/fixtures/intent/multidoc.yaml");
    assert_eq!(intent.machineconfig.as_deref(), Some("10-first,20-second"));
    assert_eq!(intent.routes.len(), 2);
    assert!(
        intent.diagnostics.is_empty(),
        "mode 0600 in YAML is octal: {:?}",
        diagnostics(&intent)
    );
}

#[test]
fn bare_ignition_3_and_2() {
    let intent = load("tests/fixtures/intent/ignition-3.5.json");
    assert_eq!(intent.machineconfig, None);
    assert_eq!(
        routes(&intent),
        ["ipv4 10.130.0.0/16 via 172.18.0.1 dev ens5 table 254 metric - Nmcli r.service"]
    );
    let intent = load("tests/fixtures/intent/ignition-2.2.json");
    assert_eq!(
        routes(&intent),
        [
            "ipv4 10.140.0.0/16 via 172.18.0.1 dev ens5 table 254 metric - Ifcfg -",
            "ipv4 10.142.0.0/16 via 172.18.0.1 dev - table 254 metric - IpRoute r.service",
        ]
    );
    assert!(has_diag(
        &intent,
        Severity::Warning,
        "storage.files[1]",
        "filesystem"
    ));
}

#[test]
fn broken_files_are_diagnostics_and_good_routes_survive() {
    let intent = load("tests/fixtures/intent/bad/bad-contents.yaml");
    assert_eq!(
        routes(&intent),
        ["ipv4 10.151.0.0/16 via 172.18.0.1 dev ens7 table 254 metric - Ifcfg -"]
    );
    assert!(has_diag(
        &intent,
        Severity::Error,
        "file /etc/sysconfig/network-scripts/route-ens5",
        "base64"
    ));
    assert!(has_diag(
        &intent,
        Severity::Error,
        "file /etc/sysconfig/network-scripts/route-ens6",
        "gzip"
    ));
    assert!(has_diag(
        &intent,
        Severity::Error,
        "file /etc/sysconfig/network-scripts/route-ens7 line 1",
        "destination"
    ));
}

#[test]
fn unreadable_inputs_are_errors_naming_the_place_without_values() {
    let cases = [
        (
            "bad/invalid.json",
            "spec.config.storage.files[0] (line 1 column 69)",
        ),
        ("bad/invalid.yaml", "line 8"),
        ("bad/empty.yaml", "no MachineConfig"),
        ("bad/not-machineconfig.yaml", "no MachineConfig"),
        ("bad/wrong-type.json", "spec.config.storage.files[0].mode"),
        ("bad/wrong-type-units.json", "spec.config.systemd.units"),
    ];
    for (name, place) in cases {
        let path = fixture(&format!("tests/fixtures/intent/{name}"));
        let err = match input::load(&InputPath::File(path), &Options::default()) {
            Ok(_) => panic!("{name} was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(place), "{name}: {err}");
        assert!(err.contains(name), "{name}: the message names the file: {err}");
        assert!(
            !err.contains("secret") && !err.contains("SECRET"),
            "{name} echoes a value: {err}"
        );
    }
}

#[test]
fn a_file_over_the_limit_is_refused_without_reading_it_all() {
    let path = std::env::temp_dir().join(format!("rw-huge-{}.json", std::process::id()));
    let file = std::fs::File::create(&path).expect("create");
    file.set_len(input::MAX_INPUT_BYTES + 1024).expect("sparse file");
    let err = input::load(&InputPath::File(path.clone()), &Options::default()).map(|_| ());
    let _ = std::fs::remove_file(&path);
    match err {
        Err(e) => assert_eq!(e.kind(), "too-large", "{e}"),
        Ok(()) => panic!("a file over the limit was accepted"),
    }
}

/// `family priority selector => action kind unit` per rule.
fn rules(intent: &Intent) -> Vec<String> {
    intent
        .rules
        .iter()
        .map(|r| {
            let o = |v: Option<String>| v.unwrap_or_else(|| "-".into());
            format!(
                "{} {} {} => {} {:?} {}",
                r.family,
                o(r.priority.map(|p| p.to_string())),
                r.selector,
                r.action,
                r.source.kind,
                o(r.source.unit.as_ref().map(|u| u.to_string())),
            )
        })
        .collect()
}

#[test]
fn routing_rules_in_every_form() {
    let intent = load("tests/fixtures/intent/rules.yaml");
    assert_eq!(
        rules(&intent),
        [
            "ipv4 100 from 10.60.1.0/24 => table 200 Keyfile -",
            "ipv4 110 from 10.61.0.0/16 => table 210 Nmstate -",
            "ipv4 111 from 10.63.0.0/16 => blackhole Nmstate -",
            "ipv4 - not fwmark 0xca6c => table 51820 IpRule rules-ip.service",
            "ipv4 150 to 10.68.0.0/16 => unreachable IpRule rules-ip.service",
            "ipv4 130 from 10.65.0.0/16 => table 200 Nmcli rules-nmcli.service",
            "ipv4 131 to 10.66.0.0/16 => table 230 Nmcli rules-nmcli.service",
            "ipv4 132 from 10.67.0.0/16 => table 231 Nmcli rules-nmcli.service",
            "ipv4 120 from 10.64.0.0/16 => table 220 IpRule rules-nmcli.service",
            "ipv6 121 iif ens5 => table 221 IpRule rules-nmcli.service",
            "ipv6 140 to fd00:61::/64 => table 240 Nmcli rules-set.service",
        ],
        "the keyfile's priority-101 rule is removed by `-ipv4.routing-rules`, its IPv6 rule replaced by rules-set; the masked unit's rule is not expected"
    );
    let by_origin = |o: &str| intent.rules.iter().find(|r| r.source.origin == o);
    assert!(by_origin("unit rules-nmcli.service line 7").is_some_and(|r| r.traits.non_persistent));
    assert!(by_origin("unit rules-nmcli.service line 5").is_some_and(|r| !r.traits.non_persistent));
    assert!(by_origin("file /usr/local/bin/rules.sh line 3").is_some_and(|r| r.traits.non_persistent));
    let errors = [
        (
            "file /etc/NetworkManager/system-connections/uplink.nmconnection line 11",
            "without a priority",
        ),
        ("file /etc/nmstate/rules.yml route-rules.config[3]", "ip-from"),
        ("unit rules-ip.service line 8", "rt_tables"),
        ("unit rules-nmcli.service line 8", "rule 2 of ipv4.routing-rules"),
        ("file /usr/local/bin/rules.sh line 5", "not literal"),
    ];
    for (origin, words) in errors {
        assert!(
            has_diag(&intent, Severity::Error, origin, words),
            "{origin}: {:?}",
            diagnostics(&intent)
        );
    }
    assert!(has_diag(
        &intent,
        Severity::Warning,
        "unit rules-masked.service",
        "masked"
    ));
    assert_eq!(intent.diagnostics.len(), 6, "{:?}", diagnostics(&intent));
    assert_eq!(
        units(&intent),
        [
            "rules-ip.service Some(true) Succeeded",
            "rules-nmcli.service Some(true) Succeeded",
            "rules-set.service Some(true) Succeeded",
            "NetworkManager.service None Active",
            "nmstate.service None Succeeded",
        ]
    );
}

#[test]
fn expected_lists_rules_next_to_routes_in_text_and_json() {
    let intent = load("tests/fixtures/intent/rules.yaml");
    let text = routewarden::publish::text::expected(&intent);
    assert!(
        text.contains("Expected rules: 11\nFAMILY  PRIORITY  SELECTOR"),
        "{text}"
    );
    assert!(
        text.contains(
            "ipv4    -         not fwmark 0xca6c  table 51820  ip-rule: unit rules-ip.service, line 6 of the unit"
        ),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&routewarden::publish::json(&intent)).expect("json");
    assert_eq!(json["rules"][0]["selector"], "from 10.60.1.0/24");
    assert_eq!(json["rules"][0]["action"], "table 200");
    assert_eq!(json["rules"][0]["priority"], 100);
    assert_eq!(json["rules"][3]["source"]["kind"], "ip-rule");
    assert_eq!(json["rules"][4]["action"], "unreachable");
}

#[test]
fn nncp_and_plain_nmstate_documents_by_node_labels() {
    let path = InputPath::File(fixture("tests/fixtures/intent/nncp.yaml"));
    let all = input::load(&path, &Options::default()).expect("fixture loads");
    assert_eq!(
        routes(&all),
        [
            "ipv4 198.51.100.0/24 via 192.0.2.1 dev ens6 table 200 metric 150 Nncp -",
            "ipv4 10.200.0.0/16 via 192.0.2.1 dev br-ex table 254 metric - Nncp -",
            "ipv6 2001:db8:7::/64 via fd00::1 dev ens7 table 254 metric - Nmstate -",
        ],
        "without labels every policy applies; absent entries are not expected"
    );
    assert_eq!(
        rules(&all),
        [
            "ipv4 1000 from 192.0.2.0/24 => table 200 Nncp -",
            "ipv6 1001 to 2001:db8:7::/64 => table 254 Nmstate -",
        ]
    );
    assert!(has_diag(
        &all,
        Severity::Error,
        "NodeNetworkConfigurationPolicy workers-secondary desiredState routes.config[2]",
        "capture"
    ));
    assert_eq!(all.diagnostics.len(), 1, "{:?}", diagnostics(&all));
    assert_eq!(units(&all), ["NetworkManager.service None Active"]);
    let worker = Options {
        node_labels: Some([("node-role.kubernetes.io/worker".to_owned(), String::new())].into()),
        ..Options::default()
    };
    let picked = input::load(&path, &worker).expect("fixture loads");
    assert!(
        !routes(&picked).iter().any(|r| r.contains("10.200.0.0")),
        "infra-only does not select a worker"
    );
    assert_eq!(picked.routes.len(), 2);
}

#[test]
fn yaml_merge_keys_are_merged_as_oc_merges_them() {
    let intent = load("tests/fixtures/intent/merge-keys.yaml");
    assert_eq!(
        units(&intent),
        [
            "routes-a.service Some(true) Succeeded",
            "routes-b.service Some(true) Succeeded",
            "routes-c.service Some(false) Succeeded"
        ],
        "enabled comes from the anchor unless written beside the merge"
    );
    let declared: Vec<String> = intent
        .routes
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r.destination,
                r.source.unit.as_ref().map(|u| u.to_string()).unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        declared,
        ["10.71.0.0/16 routes-a.service", "10.72.0.0/16 routes-b.service"],
        "routes-c's contents come from the anchor: the same route, declared once"
    );
}
