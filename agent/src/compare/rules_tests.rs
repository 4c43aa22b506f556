//! The compare stage on policy-routing rules: present, mismatched, missing, their
//! reasons, and routes in a table no rule selects.

use super::*;
use crate::intent::rules::{parse, Dialect};
use crate::intent::spec::Tables;
use crate::intent::{self, Options};
use crate::model::{ActiveState, Family, ObservedRule, RuleAction};

/// One unit `r.service` running `ip LINE` for each line (routes and rules).
pub(super) fn intent(lines: &[&str]) -> Intent {
    let execs: String = lines
        .iter()
        .map(|l| format!("ExecStart=/usr/sbin/ip {l}\n"))
        .collect();
    let unit = format!("[Service]\nType=oneshot\n{execs}[Install]\nWantedBy=multi-user.target\n");
    let mc = serde_json::json!({
        "kind": "MachineConfig", "metadata": {"name": "rules"},
        "spec": {"config": {"ignition": {"version": "3.2.0"},
                            "systemd": {"units": [{"name": "r.service", "enabled": true, "contents": unit}]}}}
    });
    let intent = intent::from_bytes(mc.to_string().as_bytes(), &Options::default()).expect("parses");
    assert!(intent.diagnostics.is_empty(), "{:?}", intent.diagnostics);
    intent
}

/// A kernel rule as `ip [-6] rule add WORDS` would make it, at `priority`.
fn kernel(family: Family, priority: u32, words: &str) -> ObservedRule {
    let words: Vec<&str> = words.split_whitespace().collect();
    let spec = parse(&words, Some(family), Dialect::Iproute2, &Tables::default()).expect("rule words");
    ObservedRule {
        family,
        priority,
        selector: spec.selector,
        action: spec.action,
        l3mdev: false,
        unchecked: Vec::new(),
        protocol: Protocol(4),
    }
}

fn v4(priority: u32, words: &str) -> ObservedRule {
    kernel(Family::Ipv4, priority, words)
}

/// The kernel's own rules of both families.
fn defaults() -> Vec<ObservedRule> {
    vec![
        v4(0, "table local"),
        v4(32766, "table main"),
        v4(32767, "table default"),
        kernel(Family::Ipv6, 0, "table local"),
        kernel(Family::Ipv6, 32766, "table main"),
    ]
}

fn run_with(
    intent: &Intent,
    routes: Vec<ObservedRoute>,
    rules: &[ObservedRule],
    units: &UnitsSeen,
) -> DriftReport {
    let index = RouteIndex::from_routes(routes);
    let sources = Sources {
        machineconfig: SourceState::Up,
        netlink: SourceState::Up,
        systemd: SourceState::Skipped,
        networkmanager: SourceState::Skipped,
    };
    let seen = Observed {
        routes: &index,
        rules,
        links: None,
        units,
        boot: None,
        networkmanager: None,
    };
    compare(intent, seen, sources)
}

fn run(intent: &Intent, routes: Vec<ObservedRoute>, extra: &[ObservedRule]) -> DriftReport {
    let mut rules = defaults();
    rules.extend_from_slice(extra);
    rules.sort_by_key(|r| (r.family, r.priority));
    run_with(intent, routes, &rules, &UnitsSeen::Skipped)
}

fn states(r: &DriftReport) -> Vec<&'static str> {
    r.rules.iter().map(|v| v.state.as_str()).collect()
}

fn codes(v: &RuleVerdict) -> Vec<&'static str> {
    v.reasons.0.iter().map(|r| r.kind.code()).collect()
}

#[test]
fn present_when_selectors_action_and_declared_priority_agree() {
    let i = intent(&[
        "rule add priority 100 from 10.0.0.0/24 fwmark 0x30/0x10 table 200",
        "rule add iif ens5 oif ens6 lookup 201",
        "-6 rule add pref 100 from fd00:1::/64 table 200",
    ]);
    let r = run(
        &i,
        vec![],
        &[
            v4(100, "from 10.0.0.0/24 fwmark 0x30/0x10 table 200"),
            v4(32765, "iif ens5 oif ens6 table 201"),
            kernel(Family::Ipv6, 100, "from fd00:1::/64 table 200"),
        ],
    );
    assert_eq!(states(&r), ["present", "present", "present"], "{r:#?}");
    assert!(r
        .rules
        .iter()
        .all(|v| v.reasons.0.is_empty() && v.observed.len() == 1));
    assert!(!r.drift);
    assert_eq!(r.rules[0].table, Some(200));
}

#[test]
fn any_other_selector_action_family_or_priority_is_another_rule() {
    let i = intent(&["rule add priority 100 from 10.0.0.0/24 fwmark 0x30/0x10 table 200"]);
    for other in [
        v4(100, "from 10.0.0.0/24 fwmark 0x30 table 200"),
        v4(100, "from 10.0.0.0/24 fwmark 0x30/0x10 iif ens5 table 200"),
        v4(100, "not from 10.0.0.0/24 fwmark 0x30/0x10 table 200"),
        v4(100, "from 10.0.0.0/24 fwmark 0x30/0x10 table 300"),
        v4(100, "from 10.0.0.0/24 fwmark 0x30/0x10 blackhole"),
        v4(101, "from 10.0.0.0/24 fwmark 0x30/0x10 table 200"),
    ] {
        let r = run(&i, vec![], std::slice::from_ref(&other));
        let v = &r.rules[0];
        assert_eq!(v.state, RuleState::Mismatched, "{}", other.describe());
        assert_eq!(v.observed, std::slice::from_ref(&other));
        assert_eq!(codes(v)[0], "different-rule");
        assert!(v.reasons.0[0].text.contains(&other.describe()), "{:?}", v.reasons);
        assert!(r.drift);
    }
    let v6 = kernel(Family::Ipv6, 100, "table 200");
    let r = run(&intent(&["rule add priority 100 table 200"]), vec![], &[v6]);
    assert_eq!(states(&r), ["missing"], "another family is not in its place");
}

#[test]
fn a_rule_without_priority_matches_at_any_and_ignores_unchecked_selectors() {
    let i = intent(&["rule add from 10.1.0.0/16 table 210"]);
    let mut k = v4(32765, "from 10.1.0.0/16 table 210");
    k.unchecked = vec!["uidrange 1-2".into()];
    assert_eq!(states(&run(&i, vec![], &[k])), ["present"]);
    let mut vrf = v4(1000, "from 10.1.0.0/16 table 0");
    vrf.l3mdev = true;
    assert_eq!(
        states(&run(&i, vec![], &[vrf])),
        ["mismatched"],
        "an l3mdev rule is not a table rule"
    );
}

#[test]
fn missing_with_reasons_from_the_unit() {
    let i = intent(&["rule add priority 100 from 10.0.0.0/24 table 200"]);
    let r = run(&i, vec![], &[]);
    let v = &r.rules[0];
    assert_eq!((v.state, v.observed.len()), (RuleState::Missing, 0));
    assert_eq!(codes(v), ["non-persistent"], "ip rule: nothing keeps it");
    assert!(v.reasons.0[0].text.contains("ip rule del"), "{:?}", v.reasons);
    let failed = UnitStatus {
        name: UnitName::new("r.service").expect("name"),
        load_state: "loaded".into(),
        active_state: ActiveState::Failed,
        sub_state: "failed".into(),
        unit_file_state: "enabled".into(),
        condition_result: true,
        condition_usec: 1,
        inactive_exit_usec: 1,
        service: None,
    };
    let r = run_with(&i, vec![], &defaults(), &UnitsSeen::Seen(vec![failed]));
    assert_eq!(codes(&r.rules[0]), ["unit-failed"]);
}

#[test]
fn a_priority_shared_with_another_expected_rule_is_no_collision() {
    let i = intent(&[
        "rule add priority 100 from 10.0.0.0/24 table 200",
        "rule add priority 100 from 10.0.1.0/24 table 201",
    ]);
    let a = v4(100, "from 10.0.0.0/24 table 200");
    let b = v4(100, "from 10.0.1.0/24 table 201");
    assert_eq!(
        states(&run(&i, vec![], &[a.clone(), b.clone()])),
        ["present", "present"]
    );
    let r = run(&i, vec![], &[b]);
    assert_eq!(states(&r), ["missing", "present"], "b is the other declaration");
    let stranger = v4(100, "from 10.0.2.0/24 table 202");
    let r = run(&i, vec![], &[a, stranger.clone()]);
    assert_eq!(states(&r), ["present", "mismatched"]);
    assert_eq!(
        r.rules[1].observed,
        [stranger],
        "the present one is not listed as in its place"
    );
}

#[test]
fn default_rules_are_in_the_place_of_an_all_rule_only_by_priority() {
    let r = run(&intent(&["rule add table 200"]), vec![], &[]);
    assert_eq!(states(&r), ["missing"], "{:?}", r.rules[0].observed);
    let r = run(&intent(&["rule add priority 32766 table 200"]), vec![], &[]);
    assert_eq!(states(&r), ["mismatched"]);
    assert_eq!(r.rules[0].observed[0].describe(), "32766: all table 254");
}

fn route_in(table: u32, dest: &str) -> ObservedRoute {
    super::tests::kernel_route(table, dest, Some("172.18.0.1"), 2, None)
}

fn route_codes(r: &DriftReport, n: usize) -> Vec<&'static str> {
    r.routes[n].reasons.0.iter().map(|x| x.kind.code()).collect()
}

#[test]
fn a_route_in_a_table_no_rule_selects_is_drift_whatever_the_table_holds() {
    let i = intent(&[
        "route add 10.30.0.0/24 via 172.18.0.1 table 200",
        "route add 10.31.0.0/24 via 172.18.0.1 table 200",
        "route add 10.32.0.0/24 via 172.18.0.1",
        "-6 route add fd00:30::/64 via fd00::1 table 200",
    ]);
    let held = vec![route_in(200, "10.30.0.0/24"), route_in(254, "10.32.0.0/24")];
    let r = run(&i, held.clone(), &[]);
    assert_eq!(r.routes[0].state, RouteState::Unselected);
    assert_eq!(route_codes(&r, 0), ["no-rule-selects-table"]);
    assert!(
        r.routes[0].reasons.0[0]
            .text
            .starts_with("the route is in table 200, but no ipv4 routing rule looks up table 200"),
        "{:?}",
        r.routes[0].reasons
    );
    assert_eq!(r.routes[1].state, RouteState::Missing);
    assert_eq!(route_codes(&r, 1), ["non-persistent", "no-rule-selects-table"]);
    assert_eq!(r.routes[2].state, RouteState::Present, "main is always selected");
    assert!(r.drift);
    let any_rule = [v4(500, "not fwmark 0x1 table 200")];
    let r = run(&i, held.clone(), &any_rule);
    assert_eq!(
        r.routes[0].state,
        RouteState::Present,
        "any rule looking the table up, expected or not"
    );
    assert_eq!(route_codes(&r, 1), ["non-persistent"]);
    assert_eq!(
        route_codes(&r, 3),
        ["non-persistent", "no-rule-selects-table"],
        "an IPv4 rule does not select the IPv6 table"
    );
    let mut goto = v4(500, "goto 32766");
    goto.action = RuleAction::Goto(32766);
    let r = run(&i, held.clone(), &[goto]);
    assert_eq!(
        r.routes[0].state,
        RouteState::Unselected,
        "a goto selects no table"
    );
    let mut vrf = v4(1000, "table 0");
    vrf.l3mdev = true;
    assert_eq!(
        run(&i, held, &[vrf]).routes[0].state,
        RouteState::Present,
        "l3mdev: any table"
    );
}

#[test]
fn json_has_a_rules_section_shaped_like_routes() {
    let i = intent(&["rule add priority 100 from 10.0.0.0/24 fwmark 0x30/0x10 table 200"]);
    let v = serde_json::to_value(run(&i, vec![], &[v4(100, "from 10.0.0.0/24 table 300")])).expect("json");
    let rule = &v["rules"][0];
    for field in [
        "family",
        "priority",
        "selector",
        "table",
        "action",
        "source",
        "state",
        "observed",
        "reasons",
        "reason_codes",
    ] {
        assert!(rule.get(field).is_some(), "missing {field}: {rule}");
    }
    assert_eq!(rule["selector"], "from 10.0.0.0/24 fwmark 0x30/0x10");
    assert_eq!(
        (&rule["table"], &rule["action"]),
        (&200.into(), &"table 200".into())
    );
    assert_eq!(rule["state"], "mismatched");
    assert_eq!(rule["observed"][0]["table"], 300);
    assert_eq!(rule["reason_codes"][0], "different-rule");
    assert_eq!(v["drift"], true);
}

/// A MachineConfig writing one keyfile with a route in table 200 and its rule.
fn keyfile_intent(mode: u32) -> Intent {
    let keyfile = "[connection]\nid=ens5\ntype=ethernet\ninterface-name=ens5\n[ipv4]\nmethod=manual\naddress1=172.18.0.2/16\nroute1=10.43.0.0/16,172.18.0.1\nroute1_options=table=200\nrouting-rule1=priority 150 from 172.18.0.0/16 table 200\n";
    let mc = serde_json::json!({
        "kind": "MachineConfig", "metadata": {"name": "keyfile"},
        "spec": {"config": {"ignition": {"version": "3.2.0"}, "storage": {"files": [{
            "path": "/etc/NetworkManager/system-connections/ens5.nmconnection", "mode": mode,
            "contents": {"source": format!("data:,{}", keyfile.replace('\n', "%0A").replace(' ', "%20"))}}]}}}
    });
    intent::from_bytes(mc.to_string().as_bytes(), &Options::default()).expect("parses")
}

#[test]
fn rules_networkmanager_keeps_have_its_reasons() {
    let i = keyfile_intent(0o600);
    assert_eq!(i.rules.len(), 1, "{:?}", i.diagnostics);
    let r = run(&i, vec![route_in(200, "10.43.0.0/16")], &[]);
    let v = &r.rules[0];
    assert_eq!((v.state, codes(v)), (RuleState::Missing, vec!["unexplained"]));
    assert!(
        v.reasons.0[0].text.contains("may not be applied yet"),
        "{:?}",
        v.reasons
    );
    assert_eq!(r.routes[0].state, RouteState::Unselected);
    let nm_down = UnitStatus {
        name: UnitName::new("NetworkManager.service").expect("name"),
        load_state: "loaded".into(),
        active_state: ActiveState::Inactive,
        sub_state: "dead".into(),
        unit_file_state: "enabled".into(),
        condition_result: true,
        condition_usec: 1,
        inactive_exit_usec: 1,
        service: None,
    };
    let mut i_nm = i.clone();
    i_nm.units.push(crate::model::ExpectedUnit {
        name: nm_down.name.clone(),
        enabled: None,
        expect: crate::model::Expect::Active,
    });
    let r = run_with(&i_nm, vec![], &defaults(), &UnitsSeen::Seen(vec![nm_down]));
    assert_eq!(codes(&r.rules[0]), ["networkmanager-inactive"]);
    assert!(
        r.rules[0].reasons.0[0].text.ends_with("installs this rule"),
        "{:?}",
        r.rules[0].reasons
    );
    let refused = run(&keyfile_intent(0o644), vec![], &[]);
    assert_eq!(codes(&refused.rules[0]), ["keyfile-mode"]);
    let rule = v4(150, "from 172.18.0.0/16 table 200");
    let r = run(&i, vec![route_in(200, "10.43.0.0/16")], &[rule]);
    assert_eq!(states(&r), ["present"]);
    assert_eq!(
        r.routes[0].state,
        RouteState::Present,
        "{:?}",
        r.routes[0].reasons
    );
    assert!(!r.drift);
}
