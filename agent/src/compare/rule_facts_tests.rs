//! Reasons from NetworkManager's view for expected rules, as routes have them:
//! rules a keyfile, `nmcli ... ipvN.routing-rules` or NetworkManager alone
//! declares, on hand-built views and on the node recorded in
//! `tests/fixtures/networkmanager/`, and their precedence over the other reasons.

use super::facts_tests::{connection, ens5, profile, report, units, view, KEYFILE};
use super::*;
use crate::intent::networkmanager::{expected, merge};
use crate::intent::rules::{parse, with_nm_rules, Dialect};
use crate::intent::{self, Options};
use crate::model::{ActiveState, Family, NmView};
use crate::observe::networkmanager::fixtures::recorded_view;

const RULE: &str = "priority 150 from 172.18.0.0/16 table 200";

/// A MachineConfig writing ens5's keyfile (mode `mode`) with routing-rule1=RULE.
fn keyfile_mc(mode: u32) -> Intent {
    let text = format!(
        "[connection]\nid=ens5\ninterface-name=ens5\n[ipv4]\nmethod=manual\naddress1=172.18.0.2/16\nrouting-rule1={RULE}\n"
    );
    intent::file_intent_for_tests(KEYFILE, mode, &text)
}

/// The seed's unit, declaring RULE with `nmcli device modify` instead of a route.
fn device_modify_mc() -> Intent {
    let unit = format!(
        "[Unit]\nAfter=network-online.target\n[Service]\nType=oneshot\nExecStart=/usr/bin/nmcli device modify ens5 +ipv4.routing-rules \"{RULE}\"\n[Install]\nWantedBy=multi-user.target\n"
    );
    let mc = serde_json::json!({
        "kind": "MachineConfig", "metadata": {"name": "device-modify"},
        "spec": {"config": {"ignition": {"version": "3.2.0"},
            "systemd": {"units": [{"name": "nmcli-dev-modify.service", "enabled": true, "contents": unit}]}}}
    });
    intent::from_bytes(mc.to_string().as_bytes(), &Options::default()).expect("parses")
}

/// The verdict on the rule at `priority`, the kernel holding its defaults and
/// `kernel`: (state, codes, texts).
fn judge_with(
    intent: &Intent,
    nm: Option<&NmView>,
    kernel: &[ObservedRule],
    units: &UnitsSeen,
    priority: u32,
) -> (&'static str, Vec<&'static str>, Vec<String>) {
    let link = ens5(15_000_000, &["172.18.0.2/16"]);
    let report = report(intent, nm, link, kernel, units);
    let v = report
        .rules
        .iter()
        .find(|r| r.expected.priority == Some(priority))
        .unwrap_or_else(|| panic!("no rule {priority} in {:#?}", report.rules));
    let codes = v.reasons.0.iter().map(|r| r.kind.code()).collect();
    let texts = v.reasons.0.iter().map(|r| r.text.clone()).collect();
    (v.state.as_str(), codes, texts)
}

fn judge(
    intent: &Intent,
    nm: Option<&NmView>,
    priority: u32,
) -> (&'static str, Vec<&'static str>, Vec<String>) {
    judge_with(intent, nm, &[], &units(10_000_000), priority)
}

/// ens5 activated with `applied`, whose profile is `profile_rules`' version of it.
fn ens5_view(applied: &[&str], profile_rules: &[&str]) -> NmView {
    let applied = with_nm_rules(connection("ens5", &[]), applied);
    let saved = with_nm_rules(connection("ens5", &[]), profile_rules);
    view(100, true, Some(applied), vec![profile(&saved, KEYFILE)])
}

#[test]
fn applied_but_deleted_is_removed_outside_networkmanager() {
    let v = ens5_view(&[RULE], &[RULE]);
    let intent = merge(keyfile_mc(0o600), expected(&v));
    assert_eq!(intent.rules.len(), 1, "one rule, both sources");
    let (state, codes, texts) = judge(&intent, Some(&v), 150);
    assert_eq!(
        (state, codes.as_slice()),
        ("missing", &["removed-outside-networkmanager"][..])
    );
    assert!(
        texts[0].starts_with(
            "NetworkManager applied it on ens5 (connection \"ens5\") and the kernel no longer has it"
        ),
        "{texts:?}"
    );
    assert!(texts[0].contains("nmcli device reapply ens5"), "{texts:?}");
    let (_, codes, _) = judge(&keyfile_mc(0o600), None, 150);
    assert_eq!(
        codes,
        ["unexplained"],
        "without NetworkManager's view: the old inference"
    );
    let alone = merge(Intent::default(), expected(&v));
    let (_, codes, _) = judge(&alone, Some(&v), 150);
    assert_eq!(
        codes,
        ["removed-outside-networkmanager"],
        "declared by NetworkManager's view alone"
    );
}

#[test]
fn a_keyfile_rule_networkmanager_has_not_loaded() {
    let v = ens5_view(&[], &[]);
    let (_, codes, texts) = judge(&keyfile_mc(0o600), Some(&v), 150);
    assert_eq!(codes, ["profile-not-loaded"]);
    assert!(
        texts[0].contains("the file changed since NetworkManager loaded it"),
        "{texts:?}"
    );
    let none = view(100, true, Some(connection("ens5", &[])), Vec::new());
    let (_, codes, texts) = judge(&keyfile_mc(0o600), Some(&none), 150);
    assert_eq!(codes, ["profile-not-loaded"]);
    assert!(
        texts[0].starts_with(&format!("NetworkManager has not loaded keyfile {KEYFILE}")),
        "{texts:?}"
    );
    let (_, codes, _) = judge(&keyfile_mc(0o644), Some(&none), 150);
    assert_eq!(
        codes,
        ["keyfile-mode"],
        "a mode NetworkManager refuses stands alone"
    );
}

#[test]
fn a_device_modify_undone_by_reactivation_is_not_in_the_applied_connection() {
    let mc = device_modify_mc();
    assert_eq!(mc.rules.len(), 1, "{:?}", mc.diagnostics);
    assert_eq!(
        mc.rules[0].traits.device.as_ref().map(|d| d.as_str()),
        Some("ens5")
    );
    let v = ens5_view(&[], &[]);
    let (_, codes, texts) = judge(&mc, Some(&v), 150);
    assert_eq!(codes, ["not-in-applied-connection"]);
    assert_eq!(
        texts[0],
        "the connection applied to ens5 (\"ens5\") lacks it: the nmcli device modify that added it was undone when ens5 was re-activated 5 s after the unit ran"
    );
    let (_, codes, _) = judge(&mc, None, 150);
    assert_eq!(
        codes,
        ["non-persistent"],
        "without NetworkManager's view: the old inference"
    );
    let applied = ens5_view(&[RULE], &[]);
    let (_, codes, _) = judge(&mc, Some(&applied), 150);
    assert_eq!(codes, ["removed-outside-networkmanager"]);
}

#[test]
fn a_profile_changed_but_not_reapplied() {
    let v = ens5_view(&[], &[RULE]);
    let intent = merge(Intent::default(), expected(&v));
    let (_, codes, texts) = judge(&intent, Some(&v), 150);
    assert_eq!(codes, ["not-in-applied-connection"]);
    assert!(
        texts[0].ends_with(
            "connection \"ens5\" has it but was not re-applied since it changed (nmcli device reapply ens5)"
        ),
        "{texts:?}"
    );
}

#[test]
fn an_inactive_or_unmanaged_connection() {
    let p = with_nm_rules(connection("rw", &[]), &[RULE]);
    let down = view(30, true, None, vec![profile(&p, "/x")]);
    let intent = merge(Intent::default(), expected(&down));
    assert_eq!(
        intent.connections.len(),
        1,
        "a profile with a rule alone is expected"
    );
    let (_, codes, texts) = judge(&intent, Some(&down), 150);
    assert_eq!(codes, ["connection-inactive"]);
    assert_eq!(
        texts[0],
        "connection \"rw\" is not active on ens5: ens5 is disconnected (disconnected by a user or client (39))"
    );
    let other = connection("other", &[]);
    let busy = view(
        100,
        true,
        Some(other.clone()),
        vec![profile(&p, "/x"), profile(&other, "/y")],
    );
    let (_, codes, texts) = judge(&intent, Some(&busy), 150);
    assert_eq!(codes, ["connection-inactive"]);
    assert!(texts[0].ends_with("ens5 runs connection \"other\""), "{texts:?}");
    let unmanaged = view(10, false, None, vec![profile(&p, "/x")]);
    let (_, codes, texts) = judge(&intent, Some(&unmanaged), 150);
    assert_eq!(codes, ["device-unmanaged"]);
    assert_eq!(
        texts[0],
        "NetworkManager does not manage ens5 (state unmanaged): it installs none of its rules"
    );
}

#[test]
fn a_failed_unit_or_networkmanager_stopped_stands_alone() {
    let mc = device_modify_mc();
    let v = ens5_view(&[RULE], &[]);
    let UnitsSeen::Seen(mut statuses) = units(10_000_000) else {
        panic!("seen")
    };
    let failed = statuses
        .iter_mut()
        .find(|u| u.name.as_str() == "nmcli-dev-modify.service")
        .expect("the unit");
    failed.active_state = ActiveState::parse("failed");
    if let Some(svc) = failed.service.as_mut() {
        svc.result = "exit-code".into();
        svc.exec_main_status = 8;
    }
    let (_, codes, _) = judge_with(&mc, Some(&v), &[], &UnitsSeen::Seen(statuses), 150);
    assert_eq!(codes, ["unit-failed"]);
    let UnitsSeen::Seen(mut statuses) = units(10_000_000) else {
        panic!("seen")
    };
    let nm = statuses
        .iter_mut()
        .find(|u| u.name.as_str() == "NetworkManager.service")
        .expect("NetworkManager");
    nm.active_state = ActiveState::parse("inactive");
    let mut intent = merge(mc, expected(&v));
    intent
        .units
        .retain(|u| u.name.as_str() != "nmcli-dev-modify.service");
    let (_, codes, _) = judge_with(&intent, Some(&v), &[], &UnitsSeen::Seen(statuses), 150);
    assert_eq!(codes, ["networkmanager-inactive"]);
}

#[test]
fn another_rule_in_its_place_and_the_facts() {
    let v = ens5_view(&[RULE], &[RULE]);
    let intent = merge(keyfile_mc(0o600), expected(&v));
    let words: Vec<&str> = "from 172.18.0.0/16 table 300".split_whitespace().collect();
    let other = parse(&words, Some(Family::Ipv4), Dialect::Iproute2, &Default::default()).expect("rule");
    let kernel = [ObservedRule {
        family: Family::Ipv4,
        priority: 150,
        selector: other.selector,
        action: other.action,
        l3mdev: false,
        unchecked: Vec::new(),
        protocol: Protocol(4),
    }];
    let (state, codes, _) = judge_with(&intent, Some(&v), &kernel, &units(10_000_000), 150);
    assert_eq!(state, "mismatched");
    assert_eq!(codes, ["different-rule", "removed-outside-networkmanager"]);
}

#[test]
fn an_ip_rule_in_a_unit_is_not_networkmanager_s() {
    let mc = super::rules_tests::intent(&[&format!("rule add {RULE}")]);
    let v = ens5_view(&[], &[]);
    let (_, codes, _) = judge_with(&mc, Some(&v), &[], &UnitsSeen::Skipped, 150);
    assert_eq!(
        codes,
        ["non-persistent"],
        "NetworkManager's view says nothing of it"
    );
}

/// The recorded node: nothing of rw-rules in the kernel, every rule explained
/// from what NetworkManager answered.
#[test]
fn the_recorded_node() {
    let v = recorded_view();
    let intent = merge(Intent::default(), expected(&v));
    let (_, codes, _) = judge(&intent, Some(&v), 110);
    assert_eq!(codes, ["removed-outside-networkmanager"], "applied to ens7");
    let (_, codes, texts) = judge(&intent, Some(&v), 118);
    assert_eq!(
        codes,
        ["not-in-applied-connection"],
        "in the profile since, not re-applied"
    );
    assert!(texts[0].contains("connection \"rw-rules\" has it"), "{texts:?}");
    let (_, codes, _) = judge(&intent, Some(&v), 130);
    assert_eq!(
        codes,
        ["removed-outside-networkmanager"],
        "the device modify on ens5"
    );
}
