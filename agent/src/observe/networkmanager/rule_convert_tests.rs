//! The conversion of NetworkManager's `routing-rules` replies, on replies
//! recorded from NetworkManager 1.42 (`tests/fixtures/networkmanager/capture.py`:
//! rw-rules holds every selector and action it takes) and on spoiled ones.

use std::collections::HashMap;

use zbus::{OwnedVariant, Variant};

use super::convert::connection_from_settings;
use super::convert_tests::{entry, rw_all, s};
use super::fixtures::{applied, settings};
use crate::model::{Family, NmConnection};

/// Each rule as `PRIORITY: SELECTOR ACTION [UNCHECKED]`, in the intent's words.
fn rules(c: &NmConnection, family: Family) -> Vec<String> {
    c.ip(family)
        .rules
        .iter()
        .map(|r| {
            let mut words = vec![
                format!("{}:", r.priority.map(|p| p.to_string()).unwrap_or_default()),
                r.selector.to_string(),
                r.action.to_string(),
            ];
            words.extend(r.unchecked.iter().cloned());
            words.join(" ")
        })
        .collect()
}

#[test]
fn routing_rules_of_both_families() {
    let c = rw_all();
    assert_eq!(
        rules(&c, Family::Ipv4),
        [
            "100: from 10.0.0.0/8 table 200",
            "101: to 192.168.0.0/16 table 300"
        ]
    );
    assert_eq!(rules(&c, Family::Ipv6), ["102: from fd00::/8 table 200"]);
    assert!(c.ip(Family::Ipv6).rules.iter().all(|r| r.family == Family::Ipv6));
}

/// rw-rules as applied to ens7: every selector and action NetworkManager takes,
/// read as the node's `ip rule` listed what NetworkManager installed (`ipproto
/// tcp` is 6; `from all` is no `from`).
#[test]
fn routing_rules_every_selector_and_action() {
    let c = connection_from_settings("test", &applied("device-ens7.applied")).expect("converts");
    assert_eq!(c.id, "rw-rules");
    assert!(c.ipv4.routes.is_empty() && c.ipv6.routes.is_empty());
    assert_eq!(
        rules(&c, Family::Ipv4),
        [
            "110: from 10.1.0.0/16 to 10.2.0.0/16 iif ens7 table 210",
            "111: fwmark 0x30/0x10 oif ens7 table 211",
            "112: not from 10.3.0.0/16 table 212",
            "113: suppress_prefixlength 0 table 213",
            "114: to 10.4.0.0/16 blackhole",
            "115: from 10.5.0.0/16 prohibit",
            "116: tos 0x10 ipproto 6 sport 1000-2000 dport 53 table 216",
            "117: fwmark 0x7 table 217 uidrange 1000-2000",
        ]
    );
    assert_eq!(
        rules(&c, Family::Ipv6),
        [
            "120: from fd00:1::/64 iif ens7 table 220",
            "121: to fd00:2::/64 unreachable"
        ]
    );
}

#[test]
fn rules_changed_in_the_profile_or_the_device_only() {
    let profile = connection_from_settings("test", &settings("profile-rw-rules.settings")).expect("converts");
    let later = rules(&profile, Family::Ipv4);
    assert_eq!(
        later.last().map(String::as_str),
        Some("118: from 10.6.0.0/16 table 218"),
        "nmcli connection modify without a re-apply: in the profile only"
    );
    let ens5 = connection_from_settings("test", &applied("device-ens5.applied")).expect("converts");
    assert_eq!(rules(&ens5, Family::Ipv4), ["130: from 172.18.0.0/16 table 230"]);
    let ens5_profile =
        connection_from_settings("test", &settings("profile-ens5.settings")).expect("converts");
    assert!(
        ens5_profile.ipv4.rules.is_empty(),
        "nmcli device modify: in the applied connection only"
    );
}

/// `ipv4.routing-rules` replaced by one entry.
fn with_rule(entry: HashMap<String, OwnedVariant>) -> Result<NmConnection, super::NmError> {
    let mut map = applied("device-ens7.applied");
    let value = OwnedVariant::try_from(Variant::from(vec![entry])).expect("aa{sv}");
    map.get_mut("ipv4")
        .expect("ipv4")
        .insert("routing-rules".into(), value);
    connection_from_settings("/x", &map)
}

#[test]
fn bad_rules_are_refused_naming_the_field() {
    let base = |extra: &[(&str, OwnedVariant)]| {
        let mut fields = vec![
            ("family", OwnedVariant::from(2i32)),
            ("priority", OwnedVariant::from(5u32)),
        ];
        fields.extend(extra.iter().map(|(k, v)| (*k, v.try_clone().expect("clone"))));
        entry(&fields)
    };
    let cases = [
        (
            entry(&[("family", OwnedVariant::from(3i32))]),
            "routing-rules[0].family: 3 is neither 2 (IPv4) nor 10 (IPv6)",
        ),
        (base(&[]), "routing-rules[0].table: is missing"),
        (
            base(&[
                ("table", OwnedVariant::from(5u32)),
                ("action", OwnedVariant::from(42u8)),
            ]),
            "routing-rules[0].action: 42 is not a rule action",
        ),
        (
            base(&[("table", OwnedVariant::from(5u32)), ("iifname", s("a/b"))]),
            "routing-rules[0].iifname: invalid interface name",
        ),
        (
            base(&[
                ("table", OwnedVariant::from(5u32)),
                ("sport-start", OwnedVariant::from(9u16)),
                ("sport-end", OwnedVariant::from(8u16)),
            ]),
            "routing-rules[0].sport-end: 8 is below the start 9",
        ),
        (
            base(&[
                ("table", OwnedVariant::from(5u32)),
                ("from", s("fd00::")),
                ("from-len", OwnedVariant::from(8u8)),
            ]),
            "routing-rules[0].from: fd00::/8 is not of the rule's family ipv4",
        ),
        (
            base(&[("table", OwnedVariant::from(5u32)), ("fwmark", s("0x30"))]),
            "routing-rules[0].fwmark: has unexpected type s",
        ),
    ];
    for (bad, words) in cases {
        let err = with_rule(bad).expect_err(words);
        assert_eq!(err.kind(), "reply");
        assert!(err.to_string().contains(words), "{err} lacks {words}");
    }
}

#[test]
fn rule_defaults_nothing_invented() {
    let c = with_rule(entry(&[
        ("family", OwnedVariant::from(2i32)),
        ("table", OwnedVariant::from(7u32)),
        ("from", s("0.0.0.0")),
        ("from-len", OwnedVariant::from(0u8)),
        ("dport-start", OwnedVariant::from(53u16)),
        ("suppress-prefixlength", OwnedVariant::from(-1i32)),
    ]))
    .expect("converts");
    assert_eq!(
        rules(&c, Family::Ipv4),
        [": dport 53 table 7"],
        "no priority, from all, a single port, suppress_prefixlength unset"
    );
}
